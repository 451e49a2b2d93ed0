"""F1 / precision / recall from label indices in one pass of NumPy.

The kNN curves score up to 100 values of k for every cross-validation fold and every embedding;
scikit-learn's ``f1_score`` re-validates and re-encodes its inputs on each call, which
made scoring slower than the neighbour search. These functions compute the same numbers from a
confusion count (tested equal to ``sklearn.metrics`` with ``zero_division=0``):

* :func:`macro_f1` — labels = the union of true and predicted labels (scikit-learn's default);
* :func:`macro_f1_of_true` — labels = the true labels (what :func:`morphotx.evaluate.knn.score_predictions`
  reports as ``macro_f1``);
* :func:`weighted_prf` — labels = the true labels, averages weighted by support.
"""

from __future__ import annotations

import numpy as np


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
