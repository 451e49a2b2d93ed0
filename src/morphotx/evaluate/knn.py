"""kNN with k chosen on training compounds (grouped cross-validation) or on validation compounds.

Used by the evaluation's kNN classifier (:mod:`morphotx.evaluate.classify`) for embeddings and raw
baselines alike.

* :func:`knn_cv` — scikit-learn kNN with cosine distance; k chosen by cross-validation on the
  training rows with folds grouped by compound (a compound's doses never straddle a fold), scored
  by macro F1; all k of the grid from one neighbour search per fold (the study's setting);
* :func:`knn_validation` — the same kNN with k chosen on the validation compounds' rows (the
  default, ``evaluate.knn_k_selection: validation``; why: see the function);
* :func:`crossfit_choice` — a setting of any classifier chosen on the validation compounds,
  with each validation row scored by the setting chosen on the other half of them (used for
  logistic regression's C, :func:`morphotx.evaluate.classify.logreg_validation`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Normalizer, normalize

from .scores import macro_f1, macro_f1_of_true

log = logging.getLogger(__name__)


@dataclass
class KnnSearch:
    """Result of :func:`knn_cv`: the chosen k, its CV score and the whole CV curve."""

    best_k: int
    best_score_: float
    curve: pd.DataFrame  # k, mean_macro_f1, sd_macro_f1
    val_k: np.ndarray | None = None  # knn_validation: each validation row's cross-fitted k
    val_proba: np.ndarray | None = None  # knn_validation: the validation rows' votes with val_k


def cosine_knn(k: int) -> Pipeline:
    """kNN classifier by cosine distance: L2-normalise the rows, then scikit-learn's brute-force
    *euclidean* search. Same neighbours as ``metric="cosine"`` (for unit vectors
    ‖a − b‖² = 2 − 2·cos(a, b), so the order is the same; tested), but scikit-learn computes the
    euclidean search in chunks, while ``metric="cosine"`` builds the whole query × training
    distance matrix: 2.5 GB more for 7,000 × 25,770 LINCS-size rows, 5.3 GB peak for one fit.
    """
    return make_pipeline(Normalizer(), KNeighborsClassifier(n_neighbors=k, algorithm="brute"))


def knn_cv(X: np.ndarray, y: np.ndarray, groups: np.ndarray, k_grid, folds: int, seed: int):
    """Fit kNN (cosine) with k chosen by grouped cross-validation (macro F1); returns the fitted
    scikit-learn model and a :class:`KnnSearch`.

    Same answer as ``GridSearchCV(KNeighborsClassifier(metric="cosine"), {"n_neighbors": grid},
    cv=GroupKFold(...), scoring=macro F1)`` (tested), but the neighbours of each fold are computed
    once for the largest k and every k is scored from that list: GridSearchCV recomputes them for
    each of the 100 k of the study's grid, which made kNN the slowest step of the evaluation.
    Votes are tied the way scikit-learn ties them (the lowest class label wins).
    """
    y = np.asarray(y)
    n_groups = len(np.unique(groups))
    folds = max(2, min(folds, n_groups))
    cv = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(cv.split(X, y, groups))
    max_k = min(len(tr) for tr, _ in splits)
    grid = _grid(k_grid, max_k)
    classes, yi = np.unique(y, return_inverse=True)
    scores = np.stack([_f1_by_k(X[tr], yi[tr], X[te], yi[te], grid, len(classes), macro_f1) for tr, te in splits])
    mean = scores.mean(0)
    best = int(np.argmax(mean))
    curve = pd.DataFrame({"k": grid, "mean_macro_f1": mean, "sd_macro_f1": scores.std(0)})
    model = cosine_knn(grid[best]).fit(X, y)
    return model, KnnSearch(grid[best], float(mean[best]), curve)


def knn_validation(X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray, k_grid,
                   groups_val=None, seed: int = 0):
    """Fit kNN (cosine) on the training rows with k chosen by the macro F1 of the *validation*
    compounds' rows (ties: the smallest k); returns the fitted model and a :class:`KnnSearch`
    whose curve is the validation macro-F1 of every k (``sd_macro_f1`` is NaN: one split).

    Why not cross-validation on the training compounds (:func:`knn_cv`, the study's setting): a
    learned embedding has seen the training compounds, so their neighbourhoods are tighter than a
    new compound's (SupCon's grouped CV macro-F1 on the demo is ≈ 0.97 while its validation
    macro-F1 is ≈ 0.4), and the k that suits them does not suit unseen compounds. The validation
    compounds are unseen by the model and by the classifier, as the test compounds are; the test
    compounds still decide nothing. The score is the macro F1 over the validation rows' MoAs, as
    the headline reports it; validation MoAs without a training compound count as misses for
    every k, so they do not move the choice.

    With ``groups_val`` (the validation rows' compounds) the search also gives ``val_k``: for each
    validation row, the k chosen on the *other* half of the validation compounds (two halves,
    grouped by compound, drawn with ``seed``). Scoring each validation row with that k makes kNN's
    validation score an honest estimate (a maximum over k on the scored rows themselves would be
    optimistic), so that choosing among classifiers on validation does not favour kNN.
    """
    classes, yi = np.unique(np.asarray(y), return_inverse=True)
    yv, n_labels = encode_validation(classes, y_val)
    grid = _grid(k_grid, len(X))
    ind = _neighbours(X, X_val, grid[-1])  # one search; the halves below reuse its rows
    scores = _f1_curve(ind, yi, yv, grid, n_labels, macro_f1_of_true)
    best = int(np.argmax(scores))
    curve = pd.DataFrame({"k": grid, "mean_macro_f1": scores, "sd_macro_f1": np.nan})
    model = cosine_knn(grid[best]).fit(X, y)
    search = KnnSearch(grid[best], float(scores[best]), curve)
    if groups_val is not None and len(np.unique(groups_val)) >= 2:
        search.val_k = np.empty(len(X_val), int)
        for other, half in GroupKFold(n_splits=2, shuffle=True, random_state=seed).split(X_val, yv, groups_val):
            # the rows of one half are scored with the k that is best on the other half
            other_scores = _f1_curve(ind[other], yi, yv[other], grid, n_labels, macro_f1_of_true)
            search.val_k[half] = grid[int(np.argmax(other_scores))]
        search.val_proba = knn_votes(ind, yi, search.val_k, len(classes))
    return model, search


def encode_validation(classes: np.ndarray, y_val) -> tuple[np.ndarray, int]:
    """The validation labels as indices: a training class's index in ``classes``, and indices
    from ``len(classes)`` up for validation MoAs without a training compound (no classifier can
    predict them, so they count as misses); returns the indices and the number of labels.
    """
    index = {c: i for i, c in enumerate(classes)}
    unseen = {v: len(classes) + j for j, v in enumerate(sorted(set(np.asarray(y_val)) - set(classes)))}
    return np.array([index[v] if v in index else unseen[v] for v in np.asarray(y_val)], int), len(classes) + len(unseen)


def crossfit_choice(preds: np.ndarray, y_val: np.ndarray, n_labels: int, groups_val, seed: int = 0):
    """Choose one of several candidate settings by the validation compounds' macro-F1, and score
    the validation rows honestly.

    Parameters
    ----------
    preds : array, shape (n_candidates, n_validation_rows)
        Each candidate's predicted label indices (as :func:`encode_validation` numbers them).
    y_val : array, shape (n_validation_rows,)
        The validation rows' label indices (:func:`encode_validation`).
    n_labels : int
        Number of labels, unseen validation MoAs included.
    groups_val : array or None
        The validation rows' compounds.
    seed : int
        Draws the two halves of the validation compounds.

    Returns
    -------
    tuple
        ``(best, scores, row_choice)``: the index of the candidate with the best macro-F1 on all
        validation rows (ties: the first), every candidate's score, and for each validation row
        the candidate best on the *other* half of the validation compounds (two halves grouped by
        compound, as :func:`knn_validation` draws them), or None when there are fewer than two
        validation compounds. Scoring each row with its ``row_choice`` gives a validation score
        that is not a maximum over the scored rows themselves.
    """
    scores = np.array([macro_f1_of_true(y_val, p, n_labels) for p in preds])
    best = int(np.argmax(scores))
    if groups_val is None or len(np.unique(groups_val)) < 2:
        return best, scores, None
    choice = np.empty(len(y_val), int)
    for other, half in GroupKFold(n_splits=2, shuffle=True, random_state=seed).split(preds.T, y_val, groups_val):
        choice[half] = int(np.argmax([macro_f1_of_true(y_val[other], p[other], n_labels) for p in preds]))
    return best, scores, choice


def knn_votes(ind: np.ndarray, y_fit: np.ndarray, ks: np.ndarray, n_classes: int) -> np.ndarray:
    """Class probabilities of kNN with uniform weights (scikit-learn's ``predict_proba``: the
    share of each class among the first ``ks[i]`` neighbours ``ind[i]`` of row ``i``), from one
    neighbour search; ``y_fit``: the training rows' class indices (< ``n_classes``).
    """
    ks = np.asarray(ks)
    first = np.arange(ind.shape[1]) < ks[:, None]
    counts = np.zeros((len(ind), n_classes))
    np.add.at(counts, (np.repeat(np.arange(len(ind)), first.sum(1)), y_fit[ind[first]]), 1.0)
    return counts / ks[:, None]


def _grid(k_grid, max_k: int) -> list[int]:
    return sorted({int(k) for k in k_grid if 1 <= int(k) <= max_k}) or [1]


def _f1_by_k(X_fit, y_fit, X_query, y_query, grid: list[int], n_classes: int, score) -> np.ndarray:
    """``score(y_query, votes, n_classes)`` of the query rows' kNN votes for every k of ``grid``, from
    one neighbour search (labels are class indices < n_classes).
    """
    return _f1_curve(_neighbours(X_fit, X_query, grid[-1]), y_fit, y_query, grid, n_classes, score)


def _neighbours(X_fit, X_query, k: int) -> np.ndarray:
    """Indices of the ``k`` nearest rows of ``X_fit`` (cosine) for every query row (a chunked
    euclidean search on L2-normalised rows: see :func:`cosine_knn`).
    """
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(normalize(X_fit))
    return nn.kneighbors(normalize(X_query), return_distance=False)


def _f1_curve(ind: np.ndarray, y_fit, y_query, grid: list[int], n_classes: int, score) -> np.ndarray:
    """``score`` of the majority votes among the first k neighbours ``ind`` for every k of ``grid``."""
    counts = np.zeros((len(ind), n_classes), np.int32)
    ar = np.arange(len(ind))
    out, gi = np.zeros(len(grid)), 0
    for k in range(1, grid[-1] + 1):
        counts[ar, y_fit[ind[:, k - 1]]] += 1
        if k == grid[gi]:
            out[gi] = score(y_query, counts.argmax(1), n_classes)
            gi += 1
    return out
