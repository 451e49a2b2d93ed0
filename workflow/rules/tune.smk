# Hyperparameter search (Optuna) of the models named in tune.models, on the validation compounds.
# Not part of the default target: `make tune` (= snakemake tune_all). The default run does not use
# the tuned values; pass results/<name>/tune/<model>/best.yaml with --configfile to train them.
TUNE = config["tune"]
# the search reads the first fold's training and validation compounds (never its test compounds)
TUNE_INPUTS = {
    k: expand(v, fold=0, allow_missing=True)[0] for k, v in MODEL_INPUTS.items()
}


rule tune:
    """Optuna search of one model's hyperparameters on the validation compounds: trials and best config."""
    input:
        **TUNE_INPUTS,
    output:
        trials_out=f"{OUT}/tune/{{model}}/trials.parquet",
        trials_tsv=report(
            f"{OUT}/tune/{{model}}/trials.tsv",
            caption="../report/tune.rst",
            category="8. Hyperparameter search",
            subcategory="{model}",
        ),
        best_out=f"{OUT}/tune/{{model}}/best.yaml",
    log:
        f"{LOGS}/tune/{{model}}.log",
    benchmark:
        f"{BENCH}/tune/{{model}}.tsv"
    wildcard_constraints:
        model="|".join(MODELS) or "(?!x)x",
    conda:
        ENVS["train"]
    threads: SETTINGS.threads.train
    resources:
        **RES["train"],
        gpu=GPU,
    params:
        name=lambda w: w.model,
        model_cfg=lambda w: MODELS[w.model],
        train_cfg=TRAIN,
        search_space=lambda w: TUNE["space"].get(HP[w.model].family, {}),
        n_trials=TUNE["n_trials"],
        seed=TUNE["seed"],
        max_epochs=TUNE["max_epochs"],
    script:
        "../../scripts/tune.py"


rule tune_all:
    """Hyperparameter search of every model in tune.models (not part of the default target)."""
    input:
        tune_targets,
