"""morphotx: joint embeddings of Cell Painting and L1000 profiles, and MoA prediction.

The workflow (Snakefile) runs every step; the same steps are functions for a notebook. They are
imported on first use, so ``import morphotx`` stays light (no torch until a model is touched):

>>> import morphotx
>>> emb = morphotx.embed_profiles("results/demo/models/cwcl/fold0/seed0/checkpoint.pt", cp=profiles, view="cp")

=====================  =================================================================
name                   what it does (module)
=====================  =================================================================
``harmonise``          one replicate-level file → the harmonised schema (data.harmonise)
``map_probes_frame``   L1000 probe columns → genes, on a DataFrame (data.probes)
``split_compounds_frame``  compounds → train / validation / test, folds (prepare.split)
``select_features``    pycytominer's feature-selection operations (prepare.preprocess)
``normalize_to_controls``  per-plate normalisation against DMSO (prepare.preprocess)
``pair_index``         the Cartesian pair index of two modalities (prepare.pairing)
``set_table``          each treatment's replicate sets in both modalities (prepare.pairing)
``train_model``        train one model from the workflow's files (models)
``embed_model``        a checkpoint's embeddings of the workflow's files (models)
``embed_profiles``     a checkpoint applied to new preprocessed profiles (models)
``embed_file``         a checkpoint applied to a whole Parquet file, in row batches (models)
``classify_table``     the four classifiers on one table (evaluate.classify)
``headline_frame``     the headline table from evaluation tables (report.headline)
=====================  =================================================================
"""

from importlib import import_module

_EXPORTS = {
    "harmonise": "data.harmonise", "map_probes_frame": "data.probes", "split_compounds_frame": "prepare.split",
    "select_features": "prepare.preprocess", "normalize_to_controls": "prepare.preprocess", "pair_index": "prepare.pairing",
    "set_table": "prepare.pairing",
    "train_model": "models", "embed_model": "models", "embed_profiles": "models",
    "embed_file": "models",
    "classify_table": "evaluate.classify", "headline_frame": "report.headline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'morphotx' has no attribute {name!r}")
