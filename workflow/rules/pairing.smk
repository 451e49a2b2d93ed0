rule pair:
    """Pair modalities by treatment: pair index, set table, collapsed profiles."""
    input:
        cp=rules.preprocess_cp.output.profiles,
        l1000=rules.preprocess_l1000.output.profiles,
    output:
        pairs=f"{OUT}/pairs/pair_index.parquet",
        sets=f"{OUT}/pairs/treatment_sets.parquet",
        cp_collapsed=f"{OUT}/pairs/cp_collapsed.parquet",
        l1000_collapsed=f"{OUT}/pairs/l1000_collapsed.parquet",
    log:
        f"{LOGS}/pair.log",
    benchmark:
        f"{BENCH}/pair.tsv"
    conda:
        ENVS["data"]
    threads: THREADS
    resources:
        **RES["heavy"],
    params:
        **config["pairing"],
    script:
        "../../scripts/pair.py"
