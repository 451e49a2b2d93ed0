# Hyperparameter search (Optuna) of the models named in tune.models, once per split, on that split's
# training and validation compounds. `make tune` (= snakemake tune_all) runs it alone; with
# tune.apply the default run trains split f's models with split f's best values.
TUNE = config["tune"]


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
        name=lambda w: w.model,
        model_cfg=lambda w: MODELS[w.model],
        train_cfg=TRAIN,
        split_name=lambda w: f"split {w.fold}",
        search_space=lambda w: TUNE["space"].get(HP[w.model].family, {}),
        n_trials=TUNE["n_trials"],
        seed=TUNE["seed"],
        max_epochs=TUNE["max_epochs"],
    script:
        "../scripts/tune.py"


rule tune_all:
    """Hyperparameter search of every model in tune.models (not part of the default target)."""
    input:
        tune_targets,
