rule pair:
    """Pair modalities by treatment: pair index, set table, collapsed profiles."""
    input:
        cp=rules.preprocess_cp.output.preprocessed,
        l1000=rules.preprocess_l1000.output.preprocessed,
    output:
        pairs=f"{OUT}/pairs/fold{{fold}}/pair_index.parquet",
        sets=f"{OUT}/pairs/fold{{fold}}/treatment_sets.parquet",
        cp_collapsed=f"{OUT}/pairs/fold{{fold}}/cp_collapsed.parquet",
        l1000_collapsed=f"{OUT}/pairs/fold{{fold}}/l1000_collapsed.parquet",
    log:
        f"{LOGS}/pair/fold{{fold}}.log",
    benchmark:
        f"{BENCH}/pair/fold{{fold}}.tsv"
    conda:
        ENVS["data"]
    threads: THREADS
    resources:
        **RES["heavy"],
    params:
        **config["pairing"],
    script:
        "../scripts/pair.py"
