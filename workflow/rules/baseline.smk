rule baseline_knn:
    """Raw-feature kNN baselines on collapsed test-compound profiles."""
    input:
        cp=rules.pair.output.cp_collapsed,
        l1000=rules.pair.output.l1000_collapsed,
    output:
        summary=f"{OUT}/baseline/knn_summary.parquet",
        summary_md=f"{OUT}/baseline/knn_summary.md",
        per_moa=f"{OUT}/baseline/knn_per_moa.parquet",
        per_moa_md=f"{OUT}/baseline/knn_per_moa.md",
    log:
        f"{LOGS}/baseline_knn.log",
    benchmark:
        f"{BENCH}/baseline_knn.tsv"
    conda:
        ENVS["preprocess"]
    threads: HEAVY
    resources:
        **RES["heavy"],
    params:
        **config["baseline"],
    script:
        "../../scripts/baseline_knn.py"
