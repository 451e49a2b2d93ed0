"""A first scored result: raw-feature kNN baselines on collapsed, compound-held-out profiles.

Baselines: Cell Painting only, L1000 only, early fusion (both, concatenated). Protocol:

* unit: collapsed (median) profile per treatment; training rows come from training compounds,
  scored rows from test compounds (validation compounds are not used here);
* all three baselines are scored on the *same* test treatments: those measured in both
  modalities, so the numbers are comparable;
* labels: compounds with exactly one MoA (multi-MoA compounds have no single right answer and
  are left out of classification; compounds without MoA too);
* features: each modality block is standardised (fitted on training rows) and L2-normalised, and
  early fusion concatenates the blocks, so each modality weighs the same in the cosine;
* classifier: scikit-learn kNN with cosine distance; k chosen by cross-validation on the
  training rows with folds grouped by compound (a compound's doses never straddle a fold),
  scored by macro F1;
* metrics: per-MoA F1 with support, macro and weighted F1, accuracy, number of MoAs with
  non-zero F1. Test MoAs absent from training cannot be predicted; they are counted.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import accuracy_score, f1_score, make_scorer, precision_recall_fscore_support
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler, normalize

from . import schema as S
from .io import atomic_outputs, read_table, write_parquet

log = logging.getLogger(__name__)


def _blocks(tables: dict[str, pd.DataFrame], names: list[str], keys: pd.Index, train: np.ndarray) -> np.ndarray:
    parts = []
    for name in names:
        t = tables[name].set_index(S.TREATMENT).loc[keys]
        X = t[S.feature_columns(t.reset_index())].to_numpy(dtype="float64")
        X = StandardScaler().fit(X[train]).transform(X)
        parts.append(normalize(X))
    return np.hstack(parts)


def knn_cv(X: np.ndarray, y: np.ndarray, groups: np.ndarray, k_grid, folds: int, seed: int):
    """Fit kNN (cosine) with k chosen by grouped cross-validation; returns the fitted model."""
    n_groups = len(np.unique(groups))
    folds = max(2, min(folds, n_groups))
    cv = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    max_k = int(len(y) * (folds - 1) / folds)
    grid = sorted({int(k) for k in k_grid if int(k) <= max_k}) or [1]
    scorer = make_scorer(f1_score, average="macro", zero_division=0)
    search = GridSearchCV(KNeighborsClassifier(metric="cosine"), {"n_neighbors": grid}, cv=cv, scoring=scorer,
                          n_jobs=1, error_score="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", UserWarning)  # classes missing from a fold
        search.fit(X, y, groups=groups)
    return search.best_estimator_, search


def score_predictions(y_true, y_pred, train_labels) -> tuple[dict, pd.DataFrame]:
    labels = sorted(set(y_true))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    per = pd.DataFrame({"moa": labels, "precision": p, "recall": r, "f1": f, "support": s,
                        "in_training": [m in set(train_labels) for m in labels]})
    summary = {
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "n_moas_nonzero_f1": int((f > 0).sum()),
        "n_test_moas": len(labels),
        "n_test_moas_unseen_in_training": int((~per["in_training"]).sum()),
    }
    return summary, per


def run_baselines(cp_collapsed: str, l1000_collapsed: str, summary_parquet: str, summary_md: str,
                  per_moa_parquet: str, per_moa_md: str, k_grid=(1, 3, 5, 10, 15, 20, 30, 50), cv_folds: int = 5,
                  seed: int = 0) -> pd.DataFrame:
    tables = {k: t[~t[S.IS_CONTROL].astype(bool)] for k, t in
              {"cell_painting": read_table(cp_collapsed), "l1000": read_table(l1000_collapsed)}.items()}
    ref = tables["cell_painting"].set_index(S.TREATMENT)
    common = ref.index.intersection(tables["l1000"].set_index(S.TREATMENT).index)
    meta = ref.loc[common, [S.PERT, S.SPLIT, S.MOA]]
    n_moa = meta[S.MOA].map(len)
    use = (n_moa == 1) & meta[S.SPLIT].isin(["train", "test"])
    log.info("baselines: %d treatments in both modalities; %d single-MoA train/test treatments used "
             "(%d multi-MoA, %d unannotated left out)", len(common), int(use.sum()), int((n_moa > 1).sum()),
             int((n_moa == 0).sum()))
    meta = meta[use]
    keys = meta.index
    y = meta[S.MOA].map(lambda m: m[0]).to_numpy()
    train = (meta[S.SPLIT] == "train").to_numpy()
    groups = meta[S.PERT].astype(str).to_numpy()
    rows, per_rows = [], []
    for name, blocks in [("raw_cell_painting", ["cell_painting"]), ("raw_l1000", ["l1000"]),
                         ("raw_early_fusion", ["cell_painting", "l1000"])]:
        X = _blocks(tables, blocks, keys, train)
        model, search = knn_cv(X[train], y[train], groups[train], k_grid, cv_folds, seed)
        pred = model.predict(X[~train])
        summary, per = score_predictions(y[~train], pred, y[train])
        rows.append({"baseline": name, "classifier": "knn_cosine", "k": int(model.n_neighbors),
                     "cv_macro_f1": float(search.best_score_), **summary,
                     "n_train_treatments": int(train.sum()), "n_test_treatments": int((~train).sum()),
                     "n_features": X.shape[1]})
        per_rows.append(per.assign(baseline=name))
        log.info("%s: k=%d macro F1 %.3f, weighted F1 %.3f, accuracy %.3f, %d/%d MoAs with F1 > 0", name,
                 model.n_neighbors, summary["macro_f1"], summary["weighted_f1"], summary["accuracy"],
                 summary["n_moas_nonzero_f1"], summary["n_test_moas"])
    summary = pd.DataFrame(rows)
    per_moa = pd.concat(per_rows, ignore_index=True)[["baseline", "moa", "support", "in_training", "precision",
                                                       "recall", "f1"]]
    wide = per_moa.pivot_table(index=["moa", "support"], columns="baseline", values="f1").reset_index()
    with atomic_outputs(summary_parquet, summary_md, per_moa_parquet, per_moa_md) as (a, b, c, d):
        write_parquet(summary, a)
        with open(b, "w") as fh:
            fh.write("# Raw-feature baselines: kNN (cosine) on collapsed test-compound profiles\n\n")
            fh.write(summary.to_markdown(index=False, floatfmt=".3f") + "\n")
        write_parquet(per_moa, c)
        with open(d, "w") as fh:
            fh.write("# Per-MoA F1 of the raw-feature baselines (test compounds)\n\n")
            fh.write(wide.to_markdown(index=False, floatfmt=".3f") + "\n")
    return summary
