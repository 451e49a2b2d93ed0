# Reporting: the exploratory leaderboard (mean ± sd over the repetitions: folds × seeds), the
# headline, the training summary, the run manifest and the figures.
LEADERBOARD = f"{OUT}/leaderboard"


rule leaderboard:
    """Every score of every model, baseline and seed in one table (Parquet, Markdown, TSV)."""
    input:
        **{
            f"eval_{k}": [
                evaluation_files(s, fold, seed)[k]
                for s in [*MODELS, "raw"]
                for fold in FOLDS
                for seed in SEEDS
            ]
            for k in EVAL_TABLES
        },
        **{
            # latent arithmetic: the first fold only (it is not part of the headline)
            f"arith_{k}": [
                arithmetic_files(n, FOLDS[0], seed)[k] for n in VAES for seed in SEEDS
            ]
            for k in ARITH_TABLES
        },
        **{
            f"eval_{'' if k == 'reconstruction' else 'reconstruction_'}{k}": [
                reconstruction_files(n, FOLDS[0], seed)[k]
                for n in DECODERS
                for seed in SEEDS
            ]
            for k in RECON_TABLES
        },
    output:
        **{k: f"{LEADERBOARD}/all_{k}.parquet" for k in EVAL_TABLES},
        **{
            f"arithmetic_{k}": f"{LEADERBOARD}/all_arithmetic_{k}.parquet"
            for k in ARITH_TABLES
        },
        reconstruction=f"{LEADERBOARD}/all_reconstruction.parquet",
        reconstruction_samples=f"{LEADERBOARD}/all_reconstruction_samples.parquet",
        reconstruction_curves=f"{LEADERBOARD}/all_reconstruction_curves.parquet",
        leaderboard=f"{LEADERBOARD}/leaderboard.parquet",
        markdown=f"{LEADERBOARD}/leaderboard.md",
        tsv=report(
            f"{LEADERBOARD}/leaderboard.tsv",
            caption="../report/leaderboard.rst",
            category="1. Leaderboard",
        ),
    log:
        f"{LOGS}/leaderboard.log",
    benchmark:
        f"{BENCH}/leaderboard.tsv"
    conda:
        ENVS["evaluate"]
    threads: THREADS
    resources:
        **RES["default"],
    params:
        repetitions=len(SEEDS) * len(FOLDS),
    script:
        "../scripts/leaderboard.py"


rule headline:
    """The result to quote: each model's configuration chosen on validation compounds, its test
    scores with 95 % CIs over the repetitions, and the paired difference to the raw baselines.
    """
    input:
        classification=[rules.leaderboard.output.classification],
        embedding_metrics=[rules.leaderboard.output.embedding_metrics],
        predictions=[rules.leaderboard.output.predictions],
        recipes=expand(rules.preprocess_cp.output.choice, fold=FOLDS),
    output:
        parquet=f"{LEADERBOARD}/headline.parquet",
        md=f"{LEADERBOARD}/headline.md",
        choices=f"{LEADERBOARD}/headline_choices.parquet",
        tsv=report(
            f"{LEADERBOARD}/headline.tsv",
            caption="../report/headline.rst",
            category="0. Headline",
        ),
    log:
        f"{LOGS}/headline.log",
    benchmark:
        f"{BENCH}/headline.tsv"
    conda:
        ENVS["evaluate"]
    threads: THREADS
    resources:
        **RES["default"],
    params:
        **typed_params(settings=SETTINGS.headline, split=SETTINGS.split),
    script:
        "../scripts/headline.py"


rule training_summary:
    """Best (validation-chosen) epoch, epochs run and selection score of every training run."""
    input:
        params_json=[
            f"{OUT}/models/{m}/fold{f}/seed{s}/params.json"
            for m in MODELS
            for f in FOLDS
            for s in SEEDS
        ],
    output:
        parquet=f"{LEADERBOARD}/training.parquet",
        tsv=report(
            f"{LEADERBOARD}/training.tsv",
            caption="../report/training.rst",
            category="2. Training",
        ),
    log:
        f"{LOGS}/training_summary.log",
    conda:
        ENVS["evaluate"]
    threads: THREADS
    resources:
        **RES["default"],
    script:
        "../scripts/training_summary.py"


rule manifest:
    """What produced these results: config, git commit, platform, packages, raw input checksums."""
    input:
        **moa_map_input(),
        cell_painting=raw_input("cell_painting"),
        l1000=raw_input("l1000"),
        probe_map=raw_input("probe_map"),
    output:
        output=report(
            f"{OUT}/manifest.json",
            caption="../report/manifest.rst",
            category="0. Headline",
        ),
    log:
        f"{LOGS}/manifest.log",
    conda:
        ENVS["train"]  # torch: the manifest names the GPU
    threads: THREADS
    resources:
        **RES["default"],
    params:
        config=config,
        git=GIT,
    script:
        "../scripts/manifest.py"


# Figures of the study, drawn from the leaderboard's long tables; each is in the HTML report
# (`make report`) with its caption from workflow/report/. Every figure is a 300 dpi PNG (the
# output `out`, the function's parameter) plus, beside it, a PDF vector copy and a 100 dpi
# palette PNG `<name>.screen.png` (unnamed outputs: plotting.save_figure writes all three; in the
# per-model directories, three per model). The report embeds the screen rendition only, so that
# report.html stays small; the 300 dpi PNG and the PDF are files in results/<name>/figures/.
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
        f"{FIG}/loss_curves.pdf",  # the PDF copy (written beside the PNG by plotting.save_figure)
        report(  # the screen rendition (plotting.save_figure), the one the report embeds
            f"{FIG}/loss_curves.screen.png",
            caption=f"{REPORT}/loss_curves.rst",
            category="2. Training",
        ),
        out=f"{FIG}/loss_curves.png",
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
        "../scripts/figure.py"


rule figure_per_moa_f1:
    input:
        per_moa=rules.leaderboard.output.per_moa,
    output:
        outdir=report(
            directory(f"{FIG}/per_moa_f1"),
            patterns=["{name}.screen.png"],  # the screen renditions only
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
        "../scripts/figure.py"


rule figure_leaderboard:
    input:
        board=rules.leaderboard.output.leaderboard,
    output:
        f"{FIG}/leaderboard.pdf",  # the PDF copy (written beside the PNG by plotting.save_figure)
        report(  # the screen rendition (plotting.save_figure), the one the report embeds
            f"{FIG}/leaderboard.screen.png",
            caption=f"{REPORT}/leaderboard_chart.rst",
            category="1. Leaderboard",
        ),
        out=f"{FIG}/leaderboard.png",
    log:
        f"{LOGS}/figures/leaderboard.log",
    benchmark:
        f"{BENCH}/figures/leaderboard.tsv"
    conda:
        ENVS["figures"]
    resources:
        **RES["default"],
    script:
        "../scripts/figure.py"


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
            patterns=["{name}.screen.png"],  # the screen renditions only
            caption=f"{REPORT}/embedding_maps.rst",
            category="4. Embeddings",
            subcategory="UMAP and t-SNE",
        ),
    log:
        f"{LOGS}/figures/embedding_maps.log",
    benchmark:
        f"{BENCH}/figures/embedding_maps.tsv"
    # the longest figure job, ready only when the last model is embedded (common.smk: priorities)
    priority: PRIORITY_UPSTREAM
    conda:
        ENVS["figures"]
    resources:
        **RES["default"],
    params:
        **typed_params(settings=SETTINGS.figures),
    script:
        "../scripts/figure.py"


rule figure_headline:
    input:
        table=rules.headline.output.parquet,
    output:
        f"{FIG}/headline.pdf",  # the PDF copy (written beside the PNG by plotting.save_figure)
        report(  # the screen rendition (plotting.save_figure), the one the report embeds
            f"{FIG}/headline.screen.png",
            caption=f"{REPORT}/headline_chart.rst",
            category="0. Headline",
        ),
        out=f"{FIG}/headline.png",
    log:
        f"{LOGS}/figures/headline.log",
    benchmark:
        f"{BENCH}/figures/headline.tsv"
    conda:
        ENVS["figures"]
    resources:
        **RES["default"],
    script:
        "../scripts/figure.py"


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
    (
        "reconstruction_distributions",
        "samples",
        "reconstruction_samples",
        "7. Latent arithmetic",
    ),
    ("shuffled_control_curves", "curves", "reconstruction_curves", "2. Training"),
    ("arithmetic_modalities", "zscores", "arithmetic_zscores", "7. Latent arithmetic"),
]:

    rule:
        name:
            f"figure_{_fig}"
        input:
            **{_arg: getattr(rules.leaderboard.output, _table)},
        output:
            f"{FIG}/{_fig}.pdf",  # the PDF copy (written beside the PNG by plotting.save_figure)
            report(  # the screen rendition (plotting.save_figure), the one the report embeds
                f"{FIG}/{_fig}.screen.png",
                caption=f"{REPORT}/{_fig}.rst",
                category=_cat,
            ),
            out=f"{FIG}/{_fig}.png",
        log:
            f"{LOGS}/figures/{_fig}.log",
        benchmark:
            f"{BENCH}/figures/{_fig}.tsv"
        conda:
            ENVS["figures"]
        resources:
            **RES["default"],
        script:
            "../scripts/figure.py"


FIGURES = [
    f"{FIG}/{f}.{ext}"
    for ext in ("png", "pdf", "screen.png")
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
        "reconstruction_distributions",
        "shuffled_control_curves",
        "arithmetic_modalities",
    ]
] + [f"{FIG}/per_moa_f1", f"{FIG}/embedding_maps"]
