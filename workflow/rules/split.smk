rule split_compounds:
    """Compounds -> train / validation / test (a compound in one split only); split.mode
    well_holdout: replicate wells instead (compounds shared, not an unseen-compound test).
    """
    input:
        profiles=[
            f"{OUT}/profiles/cp_harmonised.parquet",
            f"{OUT}/profiles/l1000_harmonised_genes.parquet",
        ],
    output:
        output=f"{OUT}/split/fold{{fold}}/compound_split.parquet",
    log:
        f"{LOGS}/split_compounds/fold{{fold}}.log",
    benchmark:
        f"{BENCH}/split_compounds/fold{{fold}}.tsv"
    wildcard_constraints:
        fold=r"\d+",
    conda:
        ENVS["data"]
    threads: THREADS
    resources:
        **RES["default"],
    params:
        **config["split"],
    script:
        "../scripts/split_compounds.py"
