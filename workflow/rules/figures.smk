# Figures of the study, drawn from the leaderboard's long tables; each is in the HTML report
# (`make report`) with its caption from workflow/report/.
FIG = f"{OUT}/figures"
REPORT = "../report"


rule figure_loss_curves:
    input:
        histories=[
            f"{OUT}/models/{m}/fold{FOLDS[0]}/seed{s}/history.csv"
            for m in MODELS
            for s in SEEDS
        ],
    output:
        out=report(
            f"{FIG}/loss_curves.png",
            caption=f"{REPORT}/loss_curves.rst",
            category="2. Training",
        ),
    log:
        f"{LOGS}/figures/loss_curves.log",
    benchmark:
        f"{BENCH}/figures/loss_curves.tsv"
    conda:
        ENVS["figures"]
    resources:
        **RES["default"],
    params:
        models=list(MODELS),
    script:
        "../../scripts/figure.py"


rule figure_per_moa_f1:
    input:
        per_moa=rules.leaderboard.output.per_moa,
    output:
        outdir=report(
            directory(f"{FIG}/per_moa_f1"),
            patterns=["{name}.png"],
            caption=f"{REPORT}/per_moa_f1.rst",
            category="3. Classification",
            subcategory="Per-MoA F1",
        ),
    log:
        f"{LOGS}/figures/per_moa_f1.log",
    benchmark:
        f"{BENCH}/figures/per_moa_f1.tsv"
    conda:
        ENVS["figures"]
    resources:
        **RES["default"],
    script:
        "../../scripts/figure.py"


rule figure_leaderboard:
    input:
        board=rules.leaderboard.output.leaderboard,
    output:
        out=report(
            f"{FIG}/leaderboard.png",
            caption=f"{REPORT}/leaderboard_chart.rst",
            category="1. Leaderboard",
        ),
    log:
        f"{LOGS}/figures/leaderboard.log",
    benchmark:
        f"{BENCH}/figures/leaderboard.tsv"
    conda:
        ENVS["figures"]
    resources:
        **RES["default"],
    script:
        "../../scripts/figure.py"


rule figure_embedding_maps:
    input:
        unpack(
            lambda w: {
                **{
                    f"{m}_{primary_view(HP[m])}": f"{OUT}/embeddings/{m}/fold{FOLDS[0]}/seed{SEEDS[0]}/{primary_view(HP[m])}_collapsed.parquet"
                    for m in MODELS
                },
                "raw_cp": f"{OUT}/pairs/fold{FOLDS[0]}/cp_collapsed.parquet",
                "raw_l1000": f"{OUT}/pairs/fold{FOLDS[0]}/l1000_collapsed.parquet",
            }
        ),
    output:
        outdir=report(
            directory(f"{FIG}/embedding_maps"),
            patterns=["{name}.png"],
            caption=f"{REPORT}/embedding_maps.rst",
            category="4. Embeddings",
            subcategory="UMAP and t-SNE",
        ),
    log:
        f"{LOGS}/figures/embedding_maps.log",
    benchmark:
        f"{BENCH}/figures/embedding_maps.tsv"
    conda:
        ENVS["figures"]
    resources:
        **RES["default"],
    params:
        **config["figures"],
    script:
        "../../scripts/figure.py"


rule figure_headline:
    input:
        table=rules.headline.output.parquet,
    output:
        out=report(
            f"{FIG}/headline.png",
            caption=f"{REPORT}/headline_chart.rst",
            category="0. Headline",
        ),
    log:
        f"{LOGS}/figures/headline.log",
    benchmark:
        f"{BENCH}/figures/headline.tsv"
    conda:
        ENVS["figures"]
    resources:
        **RES["default"],
    script:
        "../../scripts/figure.py"


# figure, its function's table parameter, the leaderboard table it draws, report category
for _fig, _arg, _table, _cat in [
    ("enrichment", "curves", "curves", "5. MOAProfiler metrics"),
    ("knn_vs_k", "curves", "curves", "5. MOAProfiler metrics"),
    ("moaprofiler_summary", "metrics", "embedding_metrics", "5. MOAProfiler metrics"),
    ("map_distributions", "maps", "map", "6. Retrieval (mAP)"),
    (
        "arithmetic_distances",
        "distances",
        "arithmetic_distances",
        "7. Latent arithmetic",
    ),
    ("traversal_heatmaps", "traversal", "arithmetic_traversal", "7. Latent arithmetic"),
    ("reconstruction_r2", "table", "reconstruction", "7. Latent arithmetic"),
]:

    rule:
        name:
            f"figure_{_fig}"
        input:
            **{_arg: getattr(rules.leaderboard.output, _table)},
        output:
            out=report(
                f"{FIG}/{_fig}.png",
                caption=f"{REPORT}/{_fig}.rst",
                category=_cat,
            ),
        log:
            f"{LOGS}/figures/{_fig}.log",
        benchmark:
            f"{BENCH}/figures/{_fig}.tsv"
        conda:
            ENVS["figures"]
        resources:
            **RES["default"],
        script:
            "../../scripts/figure.py"


FIGURES = [
    f"{FIG}/{f}.png"
    for f in [
        "headline",
        "loss_curves",
        "leaderboard",
        "enrichment",
        "knn_vs_k",
        "moaprofiler_summary",
        "map_distributions",
        "arithmetic_distances",
        "traversal_heatmaps",
        "reconstruction_r2",
    ]
] + [f"{FIG}/per_moa_f1", f"{FIG}/embedding_maps"]
