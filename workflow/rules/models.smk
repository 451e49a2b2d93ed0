# Training, embedding and hyperparameter search rules (src/morphotx/models/). One generic training
# rule (wildcards: model, seed); one embedding rule per model, because the views a model writes
# (both / cp / l1000) depend on its family.
MODEL_INPUTS = dict(
    cp=rules.preprocess_cp.output.preprocessed,
    l1000=rules.preprocess_l1000.output.preprocessed,
    pairs=rules.pair.output.pairs,
    sets=rules.pair.output.sets,
)


# One training job per model and seed trains every fold's model in turn (one process, not one per
# fold; a new seed still trains only that seed).
rule train_model:
    """Train one model with one seed on every fold: best checkpoint, per-epoch history, resolved params."""
    input:
        unpack(tuned_inputs),
        **per_fold(MODEL_INPUTS),
    output:
        **{
            f"{k}_fold{f}": f"{OUT}/models/{{model}}/fold{f}/seed{{seed}}/{name}"
            for f in FOLDS
            for k, name in [
                ("checkpoint", "checkpoint.pt"),
                ("history", "history.csv"),
                ("params", "params.json"),
            ]
        },
    log:
        f"{LOGS}/train_model/{{model}}_seed{{seed}}.log",
    benchmark:
        f"{BENCH}/train_model/{{model}}_seed{{seed}}.tsv"
    wildcard_constraints:
        model="|".join(MODELS) or "(?!x)x",
        seed=r"\d+",
    priority: train_priority
    conda:
        ENVS["train"]
    threads: SETTINGS.threads.train
    resources:
        **RES["train"],
        gpu=GPU,
    params:
        **typed_params(hp=lambda w: HP[w.model], train=TRAIN),
        name=lambda w: w.model,
        per_fold=FOLDS,
    script:
        "../scripts/train_model.py"


# One embedding job per model and seed writes every fold's embeddings (one process, not one per fold).
for _name in MODELS:

    rule:
        name:
            f"embed_model_{_name}"
        input:
            **per_fold(MODEL_INPUTS),
            **{
                f"checkpoint_fold{f}": f"{OUT}/models/{_name}/fold{f}/seed{{seed}}/checkpoint.pt"
                for f in FOLDS
            },
            **tuned_files(_name),
        output:
            **{
                f"{v}_{l}_fold{f}": f"{OUT}/embeddings/{_name}/fold{f}/seed{{seed}}/{v}_{l}.parquet"
                for v in VIEWS[_name]
                for l in LEVELS
                for f in FOLDS
            },
        log:
            f"{LOGS}/embed/{_name}_seed{{seed}}.log",
        benchmark:
            f"{BENCH}/embed/{_name}_seed{{seed}}.tsv"
        wildcard_constraints:
            seed=r"\d+",
        priority: PRIORITY_UPSTREAM
        conda:
            ENVS["train"]
        threads: THREADS
        resources:
            **RES["train"],
            gpu=GPU,
        params:
            **typed_params(hp=HP[_name], train=TRAIN),
            name=_name,
            per_fold=FOLDS,
            collapse=SETTINGS.evaluate.collapse,
        script:
            "../scripts/embed_model.py"


rule models:
    """Every enabled model, every seed: checkpoints and embeddings."""
    input:
        [embedding_files(n, f, s) for n in MODELS for f in FOLDS for s in SEEDS],


# Hyperparameter search (Optuna) of the models named in tune.models, once per split, on that split's
# training and validation compounds. `make tune` (= snakemake tune_all) runs it alone; with
# tune.apply the default run trains split f's models with split f's best values.


rule tune:
    """Optuna search of one model's hyperparameters on one split's validation compounds: trials and best config."""
    input:
        **MODEL_INPUTS,
    output:
        trials_out=f"{OUT}/tune/{{model}}/fold{{fold}}/trials.parquet",
        trials_tsv=report(
            f"{OUT}/tune/{{model}}/fold{{fold}}/trials.tsv",
            caption="../report/tune.rst",
            category="8. Hyperparameter search",
            subcategory="{model}",
        ),
        best_out=f"{OUT}/tune/{{model}}/fold{{fold}}/best.yaml",
    log:
        f"{LOGS}/tune/{{model}}_fold{{fold}}.log",
    benchmark:
        f"{BENCH}/tune/{{model}}_fold{{fold}}.tsv"
    wildcard_constraints:
        model="|".join(MODELS) or "(?!x)x",
        fold=r"\d+",
    conda:
        ENVS["train"]
    threads: SETTINGS.threads.train
    resources:
        **RES["train"],
        gpu=GPU,
    params:
        **typed_params(hp=lambda w: HP[w.model], train=TRAIN),
        name=lambda w: w.model,
        split_name=lambda w: f"split {w.fold}",
        search_space=lambda w: SETTINGS.tune.space.get(HP[w.model].family, {}),
        n_trials=SETTINGS.tune.n_trials,
        seed=SETTINGS.tune.seed,
        max_epochs=SETTINGS.tune.max_epochs,
    script:
        "../scripts/tune.py"


rule tune_all:
    """Hyperparameter search of every model in tune.models (not part of the default target)."""
    input:
        tune_targets,
