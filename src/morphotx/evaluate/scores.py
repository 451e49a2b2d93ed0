"""Scores of MoA predictions: the evaluation's summary and per-MoA table, and F1 / precision /
recall from label indices in one pass of NumPy.

:func:`score_predictions` — per-MoA F1 with support, macro and weighted F1, accuracy, number of MoAs
with non-zero F1; scored MoAs absent from training cannot be predicted and are counted. Every
classifier's predictions (embeddings and raw baselines alike) are scored by it: one scoring path.

The kNN curves score up to 100 values of k for every cross-validation fold and every embedding;
scikit-learn's ``f1_score`` re-validates and re-encodes its inputs on each call, which
made scoring slower than the neighbour search. These functions compute the same numbers from a
confusion count (tested equal to ``sklearn.metrics`` with ``zero_division=0``):

* :func:`macro_f1` — labels = the union of true and predicted labels (scikit-learn's default);
* :func:`macro_f1_of_true` — labels = the true labels (what :func:`score_predictions`
  reports as ``macro_f1``);
* :func:`weighted_prf` — labels = the true labels, averages weighted by support.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support


def _counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int):
    tp = np.bincount(y_true[y_true == y_pred], minlength=n_classes).astype(float)
    n_true = np.bincount(y_true, minlength=n_classes).astype(float)
    n_pred = np.bincount(y_pred, minlength=n_classes).astype(float)
    return tp, n_true, n_pred


def _div(a, b):
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """``f1_score(y_true, y_pred, average="macro", zero_division=0)`` for integer labels < n_classes."""
    tp, n_true, n_pred = _counts(y_true, y_pred, n_classes)
    present = (n_true + n_pred) > 0
    return float(_div(2 * tp, n_true + n_pred)[present].mean()) if present.any() else 0.0


def macro_f1_of_true(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """``f1_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0)``
    for integer labels < n_classes.
    """
    tp, n_true, n_pred = _counts(y_true, y_pred, n_classes)
    present = n_true > 0
    return float(_div(2 * tp, n_true + n_pred)[present].mean()) if present.any() else 0.0


def weighted_prf(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """Support-weighted F1, precision and recall over the true labels (scikit-learn's
    ``average="weighted"`` with ``labels=sorted(set(y_true))``, ``zero_division=0``).
    """
    tp, n_true, n_pred = _counts(y_true, y_pred, n_classes)
    w = n_true / n_true.sum()
    prec, rec = _div(tp, n_pred), _div(tp, n_true)
    f1 = _div(2 * tp, n_true + n_pred)
    return {"f1": float((w * f1).sum()), "precision": float((w * prec).sum()), "recall": float((w * rec).sum())}


def score_predictions(y_true, y_pred, train_labels) -> tuple[dict, pd.DataFrame]:
    """Macro- and support-weighted F1 over the MoAs present in ``y_true``, accuracy, and the per-MoA
    table; the averages are taken from one ``precision_recall_fscore_support`` call (equal to
    ``f1_score(average=...)`` with the same labels, tested).
    """
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
