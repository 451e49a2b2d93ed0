rule harmonise:
    """One modality's replicate-level file -> typed Parquet in the harmonised schema."""
    input:
        profiles=f"{OUT}/profiles/{{modality}}.parquet",
        fmt=FORMAT,
        moa_map=moa_map_input(),
    output:
        f"{OUT}/profiles/{{modality}}_harmonised.parquet",
    log:
        f"{LOGS}/harmonise_{{modality}}.log",
    benchmark:
        f"{BENCH}/harmonise_{{modality}}.tsv"
    wildcard_constraints:
        modality="cp|l1000",
    conda:
        ENVS["data"]
    threads: HEAVY
    resources:
        **RES["heavy"],
    params:
        modality=lambda w: MODALITY[w.modality],
        harmonise=config["harmonise"],
        moa=config["moa"],
    script:
        "../../scripts/harmonise.py"


rule map_probes:
    """L1000 affy probe columns -> gene symbols."""
    input:
        profiles=f"{OUT}/profiles/l1000_harmonised.parquet",
        probe_map=raw_input("probe_map"),
    output:
        f"{OUT}/profiles/l1000_harmonised_genes.parquet",
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
        **config["probe_map"],
    script:
        "../../scripts/map_probes.py"
