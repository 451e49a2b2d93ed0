# Scoring: every model's embeddings and the raw-feature baselines on the compound-held-out split,
# latent arithmetic of the VAEs, and one leaderboard (mean ± sd over seeds).
RAW_PROFILES = dict(
    cp=rules.preprocess_cp.output.preprocessed,
    l1000=rules.preprocess_l1000.output.preprocessed,
    cp_collapsed=rules.pair.output.cp_collapsed,
    l1000_collapsed=rules.pair.output.l1000_collapsed,
)


# One evaluation job per model and seed scores every fold (one process instead of one per fold:
# start-up and imports cost ~2 s a job).
rule evaluate_model:
    """Classifiers, MOAProfiler metrics, mAP and Recall@k of one model's embeddings, every fold, one seed."""
    input:
        unpack(
            lambda w: {
                **per_fold(RAW_PROFILES),
                **{
                    f"emb_{v}_{l}_fold{f}": f"{OUT}/embeddings/{w.model}/fold{f}/seed{w.seed}/{v}_{l}.parquet"
                    for v in VIEWS[w.model]
                    for l in LEVELS
                    for f in FOLDS
                },
            }
        ),
    output:
        **evaluation_outputs("{model}"),
    log:
        f"{LOGS}/evaluate/{{model}}_seed{{seed}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{model}}_seed{{seed}}.tsv"
    wildcard_constraints:
        model="|".join(MODELS) or "(?!x)x",
        seed=r"\d+",
    # the longest jobs after training: before the small ones (common.smk: priorities)
    priority: evaluate_priority
    conda:
        ENVS["evaluate"]
    threads: EVAL_THREADS
    resources:
        **RES["evaluate"],
    params:
        source=lambda w: w.model,
        per_fold=FOLDS,
        views=lambda w: eval_views(w.model),
        cfg=EVAL_CFG,
    script:
        "../scripts/evaluate_model.py"


rule evaluate_raw:
    """The raw-feature baselines (Cell Painting, L1000, early and late fusion), scored alike, every fold."""
    input:
        **per_fold(RAW_PROFILES),
    output:
        **evaluation_outputs("raw"),
    log:
        f"{LOGS}/evaluate/raw_seed{{seed}}.log",
    benchmark:
        f"{BENCH}/evaluate/raw_seed{{seed}}.tsv"
    wildcard_constraints:
        seed=r"\d+",
    priority: PRIORITY_EVALUATE
    conda:
        ENVS["evaluate"]
    threads: EVAL_THREADS
    resources:
        **RES["evaluate"],
    params:
        per_fold=FOLDS,
        cfg=EVAL_CFG,
    script:
        "../scripts/evaluate_raw.py"


rule arithmetic:
    """Latent-space arithmetic (A − DMSO + B vs A∩B) and latent traversals of one VAE, one seed."""
    input:
        **MODEL_INPUTS,
        cp_collapsed=rules.pair.output.cp_collapsed,
        l1000_collapsed=rules.pair.output.l1000_collapsed,
        checkpoint=f"{OUT}/models/{{model}}/fold{{fold}}/seed{{seed}}/checkpoint.pt",
    output:
        **{
            k: f"{OUT}/arithmetic/{{model}}/fold{{fold}}/seed{{seed}}/{k}.parquet"
            for k in ARITH_TABLES
        },
    log:
        f"{LOGS}/arithmetic/{{model}}_fold{{fold}}_seed{{seed}}.log",
    benchmark:
        f"{BENCH}/arithmetic/{{model}}_fold{{fold}}_seed{{seed}}.tsv"
    wildcard_constraints:
        model="|".join(VAES) or "(?!x)x",
        seed=r"\d+",
        fold=r"\d+",
    conda:
        ENVS["train"]
    threads: THREADS
    resources:
        **RES["evaluate"],
    params:
        settings=config["arithmetic"],
        name=lambda w: w.model,
        model_cfg=lambda w: MODELS[w.model],
        train_cfg=TRAIN,
    script:
        "../scripts/arithmetic.py"


rule reconstruction:
    """Per-feature R² and the distribution comparison of the translator's Cell Painting predictions
    and the VAEs' reconstructions on the test treatments, with each VAE's shuffled control (first
    fold, every seed)."""
    input:
        **MODEL_INPUTS,
        checkpoint=f"{OUT}/models/{{model}}/fold{{fold}}/seed{{seed}}/checkpoint.pt",
        history=f"{OUT}/models/{{model}}/fold{{fold}}/seed{{seed}}/history.csv",
    output:
        output=reconstruction_files("{model}", "{fold}", "{seed}")["reconstruction"],
        samples_out=reconstruction_files("{model}", "{fold}", "{seed}")["samples"],
        curves_out=reconstruction_files("{model}", "{fold}", "{seed}")["curves"],
    log:
        f"{LOGS}/reconstruction/{{model}}_fold{{fold}}_seed{{seed}}.log",
    benchmark:
        f"{BENCH}/reconstruction/{{model}}_fold{{fold}}_seed{{seed}}.tsv"
    wildcard_constraints:
        model="|".join(DECODERS) or "(?!x)x",
        seed=r"\d+",
        fold=r"\d+",
    conda:
        ENVS["train"]
    threads: THREADS
    resources:
        **RECON_RES,
    params:
        name=lambda w: w.model,
        model_cfg=lambda w: MODELS[w.model],
        train_cfg=TRAIN,
        control=config["reconstruction"]["shuffled_control"],
    script:
        "../scripts/reconstruction.py"


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
        seeds=len(SEEDS) * len(FOLDS),
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
        **config["headline"],
        split_mode=config["split"]["mode"],
        folds=config["split"]["folds"],
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
