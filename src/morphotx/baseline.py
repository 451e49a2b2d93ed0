"""kNN with k chosen by compound-grouped cross-validation, and the scoring of MoA predictions.

Used by every classifier evaluation (:mod:`morphotx.classify`, :mod:`morphotx.evaluate`); the raw
baselines are scored by :func:`morphotx.evaluate.evaluate_raw` like the embeddings, so there is
one scoring path.

* :func:`knn_cv` — scikit-learn kNN with cosine distance; k chosen by cross-validation on the
  training rows with folds grouped by compound (a compound's doses never straddle a fold), scored
  by macro F1; all k of the grid from one neighbour search per fold;
* :func:`score_predictions` — per-MoA F1 with support, macro and weighted F1, accuracy, number
  of MoAs with non-zero F1; scored MoAs absent from training cannot be predicted and are counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support
from sklearn.model_selection import GroupKFold
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from .scores import macro_f1

log = logging.getLogger(__name__)


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
    """Macro- and support-weighted F1 over the MoAs present in ``y_true``, accuracy, and the per-MoA
    table; the averages are taken from one ``precision_recall_fscore_support`` call (equal to
    ``f1_score(average=...)`` with the same labels, tested)."""
    labels = sorted(set(y_true))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    seen = set(train_labels)
    per = pd.DataFrame({"moa": labels, "precision": p, "recall": r, "f1": f, "support": s,
                        "in_training": [m in seen for m in labels]})
    summary = {
        "macro_f1": float(f.mean()) if len(f) else 0.0,
        "weighted_f1": float((f * s).sum() / s.sum()) if s.sum() else 0.0,
        "accuracy": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else 0.0,
        "n_moas_nonzero_f1": int((f > 0).sum()),
        "n_test_moas": len(labels),
        "n_test_moas_unseen_in_training": int((~per["in_training"]).sum()),
    }
    return summary, per
