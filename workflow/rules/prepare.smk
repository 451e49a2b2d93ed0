# Preparation, per split (fold): compounds -> train / validation / test, preprocessing fitted on
# training compounds, the two modalities paired by treatment (src/morphotx/prepare/).
rule split_compounds:
    """Compounds -> train / validation / test (a compound in one split only); split.mode
    well_holdout: replicate wells instead (compounds shared, not an unseen-compound test).
    """
    input:
        profiles=[
            f"{OUT}/profiles/cp_harmonised.parquet",
            f"{OUT}/profiles/l1000_harmonised_genes.parquet",
        ],
    output:
        output=f"{OUT}/split/fold{{fold}}/compound_split.parquet",
    log:
        f"{LOGS}/split_compounds/fold{{fold}}.log",
    benchmark:
        f"{BENCH}/split_compounds/fold{{fold}}.tsv"
    wildcard_constraints:
        fold=r"\d+",
    conda:
        ENVS["data"]
    threads: THREADS
    resources:
        **RES["default"],
    params:
        **typed_params(split=SETTINGS.split),
    script:
        "../scripts/split_compounds.py"


rule preprocess_cp:
    """Cell Painting: feature selection, DMSO normalisation, sphering (pycytominer), the recipe
    chosen among preprocess.cell_painting.candidates on the split's validation compounds.
    """
    input:
        profiles=f"{OUT}/profiles/cp_harmonised.parquet",
        split=f"{OUT}/split/fold{{fold}}/compound_split.parquet",
    output:
        preprocessed=f"{OUT}/profiles/fold{{fold}}/cp_harmonised_preprocessed.parquet",
        features_json=f"{OUT}/profiles/fold{{fold}}/cp_harmonised_preprocessed.features.json",
        params_npz=f"{OUT}/profiles/fold{{fold}}/cp_harmonised_preprocessed.params.npz",
        choice=f"{OUT}/profiles/fold{{fold}}/cp_recipe_choice.tsv",
    log:
        f"{LOGS}/preprocess_cp/fold{{fold}}.log",
    benchmark:
        f"{BENCH}/preprocess_cp/fold{{fold}}.tsv"
    conda:
        ENVS["preprocess"]
    threads: HEAVY
    resources:
        **RES["heavy"],
    params:
        **typed_params(settings=SETTINGS.preprocess.cell_painting),
        seed=SETTINGS.split.seed,
    script:
        "../scripts/preprocess_cp.py"


rule preprocess_l1000:
    """L1000: kept as provided, optional per-plate standardisation."""
    input:
        profiles=f"{OUT}/profiles/l1000_harmonised_genes.parquet",
        split=f"{OUT}/split/fold{{fold}}/compound_split.parquet",
    output:
        preprocessed=f"{OUT}/profiles/fold{{fold}}/l1000_harmonised_genes_preprocessed.parquet",
        features_json=f"{OUT}/profiles/fold{{fold}}/l1000_harmonised_genes_preprocessed.features.json",
        params_npz=f"{OUT}/profiles/fold{{fold}}/l1000_harmonised_genes_preprocessed.params.npz",
    log:
        f"{LOGS}/preprocess_l1000/fold{{fold}}.log",
    benchmark:
        f"{BENCH}/preprocess_l1000/fold{{fold}}.tsv"
    conda:
        ENVS["preprocess"]
    threads: THREADS
    resources:
        **RES["heavy"],
    params:
        **typed_params(settings=SETTINGS.preprocess.l1000),
    script:
        "../scripts/preprocess_l1000.py"


rule pair:
    """Pair modalities by treatment: pair index, set table, collapsed profiles."""
    input:
        cp=rules.preprocess_cp.output.preprocessed,
        l1000=rules.preprocess_l1000.output.preprocessed,
    output:
        pairs=f"{OUT}/pairs/fold{{fold}}/pair_index.parquet",
        sets=f"{OUT}/pairs/fold{{fold}}/treatment_sets.parquet",
        cp_collapsed=f"{OUT}/pairs/fold{{fold}}/cp_collapsed.parquet",
        l1000_collapsed=f"{OUT}/pairs/fold{{fold}}/l1000_collapsed.parquet",
    log:
        f"{LOGS}/pair/fold{{fold}}.log",
    benchmark:
        f"{BENCH}/pair/fold{{fold}}.tsv"
    conda:
        ENVS["data"]
    threads: THREADS
    resources:
        **RES["heavy"],
    params:
        **typed_params(pairing=SETTINGS.pairing),
    script:
        "../scripts/pair.py"
