rule split_compounds:
    """Compounds -> train / validation / test (a compound in one split only)."""
    input:
        f"{OUT}/profiles/cp_harmonised.parquet",
        f"{OUT}/profiles/l1000_harmonised_genes.parquet",
    output:
        f"{OUT}/split/compound_split.parquet",
    log:
        f"{LOGS}/split_compounds.log",
    benchmark:
        f"{BENCH}/split_compounds.tsv"
    conda:
        ENVS["data"]
    threads: THREADS
    resources:
        **RES["default"],
    params:
        **config["split"],
    script:
        "../../scripts/split_compounds.py"
