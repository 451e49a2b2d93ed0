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
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.model_selection import GroupKFold
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.preprocessing import StandardScaler, normalize

from . import schema as S
from .scores import macro_f1
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


@dataclass
class KnnSearch:
    """Result of :func:`knn_cv`: the chosen k, its CV score and the whole CV curve."""

    best_k: int
    best_score_: float
    curve: pd.DataFrame  # k, mean_macro_f1, sd_macro_f1


def knn_cv(X: np.ndarray, y: np.ndarray, groups: np.ndarray, k_grid, folds: int, seed: int):
    """Fit kNN (cosine) with k chosen by grouped cross-validation (macro F1); returns the fitted
    scikit-learn model and a :class:`KnnSearch`.

    Same answer as ``GridSearchCV(KNeighborsClassifier(metric="cosine"), {"n_neighbors": grid},
    cv=GroupKFold(...), scoring=macro F1)`` (tested), but the neighbours of each fold are computed
    once for the largest k and every k is scored from that list: GridSearchCV recomputes them for
    each of the 100 k of the study's grid, which made kNN the slowest step of the evaluation.
    Votes are tied the way scikit-learn ties them (the lowest class label wins)."""
    y = np.asarray(y)
    n_groups = len(np.unique(groups))
    folds = max(2, min(folds, n_groups))
    cv = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(cv.split(X, y, groups))
    max_k = min(len(tr) for tr, _ in splits)
    grid = sorted({int(k) for k in k_grid if 1 <= int(k) <= max_k}) or [1]
    classes, yi = np.unique(y, return_inverse=True)
    scores = np.zeros((len(splits), len(grid)))
    for f, (tr, te) in enumerate(splits):
        nn = NearestNeighbors(n_neighbors=grid[-1], metric="cosine", algorithm="brute").fit(X[tr])
        ind = nn.kneighbors(X[te], return_distance=False)
        counts = np.zeros((len(te), len(classes)), np.int32)
        ar = np.arange(len(te))
        gi = 0
        for k in range(1, grid[-1] + 1):
            counts[ar, yi[tr][ind[:, k - 1]]] += 1
            if k == grid[gi]:
                scores[f, gi] = macro_f1(yi[te], counts.argmax(1), len(classes))
                gi += 1
    mean = scores.mean(0)
    best = int(np.argmax(mean))
    curve = pd.DataFrame({"k": grid, "mean_macro_f1": mean, "sd_macro_f1": scores.std(0)})
    model = KNeighborsClassifier(n_neighbors=grid[best], metric="cosine", algorithm="brute").fit(X, y)
    return model, KnnSearch(grid[best], float(mean[best]), curve)


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
