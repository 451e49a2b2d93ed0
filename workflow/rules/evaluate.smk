# Scoring: every model's embeddings and the raw-feature baselines on the compound-held-out split,
# latent arithmetic of the VAEs and the reconstruction of the generative models (the leaderboard
# and headline that read their tables: report.smk).
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
        **typed_params(settings=SETTINGS.evaluate),
        source=lambda w: w.model,
        per_fold=FOLDS,
        views=lambda w: eval_views(w.model),
        validation_map=VALIDATION_MAP,
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
        **typed_params(settings=SETTINGS.evaluate),
        per_fold=FOLDS,
        validation_map=VALIDATION_MAP,
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
        **typed_params(
            hp=lambda w: HP[w.model], train=TRAIN, settings=SETTINGS.arithmetic
        ),
        name=lambda w: w.model,
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
        **typed_params(
            hp=lambda w: HP[w.model], train=TRAIN, settings=SETTINGS.reconstruction
        ),
        name=lambda w: w.model,
    script:
        "../scripts/reconstruction.py"
