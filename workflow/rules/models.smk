# Training and embedding rules. One generic training rule (wildcards: model, seed); one embedding
# rule per model, because the views a model writes (both / cp / l1000) depend on its family.
MODEL_INPUTS = dict(
    cp=rules.preprocess_cp.output.profiles,
    l1000=rules.preprocess_l1000.output.profiles,
    pairs=rules.pair.output.pairs,
    sets=rules.pair.output.sets,
)


rule train_model:
    """Train one model with one seed: best checkpoint, per-epoch history, resolved params."""
    input:
        **MODEL_INPUTS,
    output:
        checkpoint=f"{OUT}/models/{{model}}/fold{{fold}}/seed{{seed}}/checkpoint.pt",
        history=f"{OUT}/models/{{model}}/fold{{fold}}/seed{{seed}}/history.csv",
        params=f"{OUT}/models/{{model}}/fold{{fold}}/seed{{seed}}/params.json",
    log:
        f"{LOGS}/train_model/{{model}}_fold{{fold}}_seed{{seed}}.log",
    benchmark:
        f"{BENCH}/train_model/{{model}}_fold{{fold}}_seed{{seed}}.tsv"
    wildcard_constraints:
        model="|".join(MODELS) or "(?!x)x",
        seed=r"\d+",
        fold=r"\d+",
    conda:
        ENVS["train"]
    threads: config["threads"]["train"]
    resources:
        **RES["train"],
        gpu=GPU,
    params:
        model_cfg=lambda w: MODELS[w.model],
        train=TRAIN,
    script:
        "../../scripts/train_model.py"


for _name in MODELS:

    rule:
        name:
            f"embed_{_name}"
        input:
            **MODEL_INPUTS,
            checkpoint=f"{OUT}/models/{_name}/fold{{fold}}/seed{{seed}}/checkpoint.pt",
        output:
            **{
                f"{v}_{l}": f"{OUT}/embeddings/{_name}/fold{{fold}}/seed{{seed}}/{v}_{l}.parquet"
                for v in VIEWS[_name]
                for l in LEVELS
            },
        log:
            f"{LOGS}/embed/{_name}_fold{{fold}}_seed{{seed}}.log",
        benchmark:
            f"{BENCH}/embed/{_name}_fold{{fold}}_seed{{seed}}.tsv"
        wildcard_constraints:
            seed=r"\d+",
            fold=r"\d+",
        conda:
            ENVS["train"]
        threads: THREADS
        resources:
            **RES["train"],
            gpu=GPU,
        params:
            model=_name,
            model_cfg=MODELS[_name],
            train=TRAIN,
        script:
            "../../scripts/embed_model.py"


rule models:
    """Every enabled model, every seed: checkpoints and embeddings."""
    input:
        [embedding_files(n, f, s) for n in MODELS for f in FOLDS for s in SEEDS],
