# Data: the demo or the configured (downloaded) files -> typed Parquet -> the harmonised schema, and
# L1000 probes -> genes (src/morphotx/data/).
rule demo_data:
    """Simulate the LINCS-shaped demo in the Rosetta file schemas (seeded)."""
    output:
        **DEMO_RAW,
    log:
        f"{LOGS}/demo_data.log",
    benchmark:
        f"{BENCH}/demo_data.tsv"
    conda:
        ENVS["data"]
    threads: THREADS
    resources:
        **RES["default"],
    params:
        **typed_params(demo=SETTINGS.demo),
    script:
        "../scripts/demo_data.py"


rule download:
    """One entry of download.sources: S3 or HTTP, resumed, verified, then renamed into place."""
    output:
        dest=f"{OUT}/download/{{item}}/{{filename}}",
    log:
        f"{LOGS}/download/{{item}}/{{filename}}.log",
    benchmark:
        f"{BENCH}/download/{{item}}/{{filename}}.tsv"
    wildcard_constraints:
        item="cell_painting|l1000|probe_map|moa_map",
    retries: 0
    conda:
        ENVS["data"]
    threads: 1
    resources:
        **RES["default"],
    params:
        **typed_params(settings=replace(SETTINGS.download, sources={})),
        entry=lambda w: SOURCES[w.item],
        # the entry is the item's own; the other sources are left out, so editing one reruns only it
    script:
        "../scripts/download.py"


rule convert:
    """One modality's input (CSV.gz, TSV, Parquet, GCT, GCTX) -> typed Parquet, streamed."""
    input:
        profiles=lambda w: raw_input(MODALITY[w.assay]),
        format_path=FORMAT,
    output:
        output=f"{OUT}/profiles/{{assay}}.parquet",
    log:
        f"{LOGS}/convert_{{assay}}.log",
    benchmark:
        f"{BENCH}/convert_{{assay}}.tsv"
    wildcard_constraints:
        assay="cp|l1000",
    conda:
        ENVS["data"]
    threads: THREADS
    resources:
        **RES["default"],
    params:
        modality=lambda w: MODALITY[w.assay],
    script:
        "../scripts/convert.py"


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
        **typed_params(settings=SETTINGS.harmonise, moa=SETTINGS.moa),
        modality=lambda w: MODALITY[w.assay],
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
        **typed_params(settings=SETTINGS.probe_map),
    script:
        "../scripts/map_probes.py"
