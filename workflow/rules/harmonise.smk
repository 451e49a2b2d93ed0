rule harmonise:
    """One modality's replicate-level file -> typed Parquet in the harmonised schema."""
    input:
        **moa_map_input(),
        profiles=f"{OUT}/profiles/{{assay}}.parquet",
        format_path=FORMAT,
    output:
        output=f"{OUT}/profiles/{{assay}}_harmonised.parquet",
    log:
        f"{LOGS}/harmonise_{{assay}}.log",
    benchmark:
        f"{BENCH}/harmonise_{{assay}}.tsv"
    wildcard_constraints:
        assay="cp|l1000",
    conda:
        ENVS["data"]
    threads: HEAVY
    resources:
        **RES["heavy"],
    params:
        modality=lambda w: MODALITY[w.assay],
        settings=config["harmonise"],
        moa=config["moa"],
    script:
        "../scripts/harmonise.py"


rule map_probes:
    """L1000 affy probe columns -> gene symbols."""
    input:
        profiles=f"{OUT}/profiles/l1000_harmonised.parquet",
        probe_map=raw_input("probe_map"),
    output:
        output=f"{OUT}/profiles/l1000_harmonised_genes.parquet",
    log:
        f"{LOGS}/map_probes.log",
    benchmark:
        f"{BENCH}/map_probes.tsv"
    conda:
        ENVS["data"]
    threads: THREADS
    resources:
        **RES["default"],
    params:
        settings=config["probe_map"],
    script:
        "../scripts/map_probes.py"
