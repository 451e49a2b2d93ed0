"""Compound-level inference for the headline: a paired bootstrap over test compounds.

The fold-level interval of :mod:`morphotx.headline` (Nadeau & Bengio's corrected resampled t
over J = repeats × folds splits) uses one number per split, so with J − 1 degrees of freedom it
can only see large differences. Every test compound, though, is scored once per partition: the
information is in the compounds. This module resamples them.

**Statistic.** An entry's score is the mean over splits (fold × repeat; training seeds averaged
within a split) of the metric (macro-F1, accuracy or weighted F1) of its chosen configuration's
test predictions in that split, exactly the number of the classification table. The paired
difference Δ is the entry's score minus its baseline's.

**Resampling.** One bootstrap draw resamples the test compounds with replacement *within MoA
strata* (each MoA keeps its number of compounds, as the stratified splits keep it) and gives each
compound its draw count as a weight on all of its rows, in every split where it is a test compound
and for both the entry and the baseline (paired). Each split's metric is recomputed from the
weighted per-compound confusion counts; Δ* is the mean over splits of the entry's minus the
baseline's. The percentile interval of Δ* is the CI (Efron & Tibshirani 1993, ch. 13; the paired
bootstrap of two systems on the same test items, Koehn 2004, resampled here by compound, the unit
of the split). The p-value is the dual of that interval, ``2 · min(P*(Δ* ≤ 0), P*(Δ* ≥ 0))``
(with the +1 correction of Davison & Hinkley 1997, eq. 4.11), so the CI at level c excludes zero
about when p < 1 − c. The minimum detectable effect at 80 % power and two-sided level α is
``(z_{1−α/2} + z_{0.8}) · SE*`` with SE* the bootstrap standard deviation of Δ*.

**What it conditions on.** The trained models and the configurations chosen on validation
compounds are held fixed: the interval is about new compounds from the same population scored by
these models, averaged over the splits' models. Variation between training sets enters only
through that average, not the interval; the negative control of ``make bench-controls`` (MoA
labels permuted across compounds) measures whether the error rate holds all the same.

Hand-written because the metric is a ratio of confusion counts recomputed under compound weights
for every split at once: scikit-learn's ``f1_score`` with ``sample_weight`` gives the same number
for one draw (tested) but would be called draws × splits × entries times; SciPy's
``scipy.stats.bootstrap`` resamples rows, not groups within strata.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

METRICS = ("macro_f1", "accuracy", "weighted_f1")


@dataclass
class Counts:
    """One split's predictions of one configuration as per-compound confusion counts.

    ``compounds`` indexes the compound axis of the bootstrap weights; ``tp``, ``fp``, ``fn`` are
    ``(n_compounds_here, n_classes)`` counts of that split's rows; ``n`` and ``correct`` are the
    per-compound row and correct-prediction counts for accuracy. One training seed's predictions
    make one :class:`Counts`; a split with several seeds contributes one per seed, and the mean
    over all of them is the mean over splits of the seed-averaged metric.
    """

    compounds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    n: np.ndarray
    correct: np.ndarray


def counts(predictions: pd.DataFrame, compound_index: pd.Index, classes: pd.Index) -> Counts:
    """Per-compound confusion counts of one split's predictions.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Rows with ``compound``, ``moa`` (true label) and ``predicted``.
    compound_index : pandas.Index
        Every compound of the bootstrap (the weight vector's axis).
    classes : pandas.Index
        Every MoA label (the class axis).

    Returns
    -------
    Counts
        The counts on the compounds present in ``predictions``.
    """
    comp = compound_index.get_indexer(predictions["compound"].astype(str))
    if (comp < 0).any():
        raise ValueError("inference.counts: a compound of the predictions is not in the compound index")
    here, local = np.unique(comp, return_inverse=True)
    true = classes.get_indexer(predictions["moa"].astype(str))
    pred = classes.get_indexer(predictions["predicted"].astype(str))
    if (true < 0).any():
        raise ValueError("inference.counts: a true MoA of the predictions is not in the class index")
    k = len(classes)
    shape = (len(here), k)
    hit = true == pred
    tp, fp, fn = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    np.add.at(tp, (local[hit], true[hit]), 1.0)
    np.add.at(fn, (local[~hit], true[~hit]), 1.0)
    ok = ~hit & (pred >= 0)  # a predicted label outside the class index is a miss, not a false positive
    np.add.at(fp, (local[ok], pred[ok]), 1.0)
    n = np.bincount(local, minlength=len(here)).astype(float)
    correct = np.bincount(local, weights=hit.astype(float), minlength=len(here))
    return Counts(here, tp, fp, fn, n, correct)


def metric_of(c: Counts, weights: np.ndarray, metric: str) -> np.ndarray:
    """The metric of a split under compound weights, one value per weight row.

    Parameters
    ----------
    c : Counts
        One split's counts (:func:`counts`).
    weights : numpy.ndarray
        ``(draws, n_compounds)`` weights on the full compound axis (a row of ones: the observed
        score).
    metric : {"macro_f1", "accuracy", "weighted_f1"}
        Macro-F1 averages over the classes with weighted support > 0 (the classes present among
        the scored rows, as ``sklearn.metrics.f1_score(labels=present)``), F1 = 0 where a class
        is never predicted right.

    Returns
    -------
    numpy.ndarray
        ``(draws,)`` values (NaN for a draw without rows).
    """
    w = weights[:, c.compounds]
    if metric == "accuracy":
        with np.errstate(invalid="ignore", divide="ignore"):
            return (w @ c.correct) / (w @ c.n)
    tp, fp, fn = w @ c.tp, w @ c.fp, w @ c.fn
    support = tp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(support > 0, np.nan_to_num(2 * tp / (2 * tp + fp + fn)), np.nan)
    present = support > 0
    if metric == "macro_f1":
        with np.errstate(invalid="ignore"):
            return np.nansum(f1, axis=1) / present.sum(axis=1)
    if metric == "weighted_f1":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nansum(np.nan_to_num(f1) * support, axis=1) / support.sum(axis=1)
    raise ValueError(f"inference: metric must be one of {METRICS}, got {metric!r}")


def stratified_weights(compound_moa: pd.Series, draws: int, seed: int) -> np.ndarray:
    """Bootstrap weights: each MoA's compounds resampled with replacement within the MoA.

    Parameters
    ----------
    compound_moa : pandas.Series
        The MoA (stratum) of every compound, indexed by compound; its order is the weight axis.
    draws : int
        Number of bootstrap draws.
    seed : int
        Seed of the draws (``headline.seed``).

    Returns
    -------
    numpy.ndarray
        ``(draws, n_compounds)`` draw counts.
    """
    rng = np.random.default_rng(seed)
    w = np.zeros((draws, len(compound_moa)))
    codes, _ = pd.factorize(compound_moa.astype(str), sort=True)
    rows = np.arange(draws)[:, None]
    for s in range(codes.max() + 1 if len(codes) else 0):
        members = np.flatnonzero(codes == s)
        pick = members[rng.integers(0, len(members), size=(draws, len(members)))]
        np.add.at(w, (np.broadcast_to(rows, pick.shape), pick), 1.0)
    return w


def mean_over_splits(splits: list[Counts], weights: np.ndarray, metric: str) -> np.ndarray:
    """The mean over splits of each split's metric, one value per weight row (a split whose
    compounds all have weight 0 is left out of that row's mean).
    """
    if not splits:
        return np.full(len(weights), np.nan)
    vals = np.vstack([metric_of(c, weights, metric) for c in splits])
    with np.errstate(invalid="ignore"):
        return np.nanmean(vals, axis=0) if np.isfinite(vals).any() else np.full(len(weights), np.nan)


@dataclass
class PairedBootstrap:
    """The result of :func:`paired_bootstrap`."""

    delta: float
    low: float
    high: float
    p: float
    se: float
    mde: float
    draws: int


def mde_z(se: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable effect of a two-sided z-test: ``(z_{1−α/2} + z_{power}) · se``."""
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * se)


def mde_t(se: float, df: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable effect of a two-sided t-test with ``df`` degrees of freedom (NaN below 1)."""
    if df < 1 or not np.isfinite(se):
        return np.nan
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * se)


def paired_bootstrap(entry: list[Counts], baseline: list[Counts], weights: np.ndarray, metric: str,
                     confidence: float = 0.95, power: float = 0.8) -> PairedBootstrap:
    """The paired compound bootstrap of an entry against its baseline.

    Parameters
    ----------
    entry, baseline : list of Counts
        One :class:`Counts` per split for each side (the splits need not coincide: each side's
        score is the mean over its own splits, as the point estimate is).
    weights : numpy.ndarray
        :func:`stratified_weights` (the same draws for every comparison of a table).
    metric : str
        One of :data:`METRICS`.
    confidence : float
        Two-sided confidence level of the percentile interval; α = 1 − confidence for the MDE.
    power : float
        Power at which the minimum detectable effect is stated.

    Returns
    -------
    PairedBootstrap
        Observed Δ, the percentile CI, the two-sided p-value, the bootstrap SE, the MDE and the
        number of finite draws.
    """
    ones = np.ones((1, weights.shape[1]))
    delta = float(mean_over_splits(entry, ones, metric)[0] - mean_over_splits(baseline, ones, metric)[0])
    d = mean_over_splits(entry, weights, metric) - mean_over_splits(baseline, weights, metric)
    d = d[np.isfinite(d)]
    if d.size < 2 or not np.isfinite(delta):
        return PairedBootstrap(delta, np.nan, np.nan, np.nan, np.nan, np.nan, int(d.size))
    a = 1 - confidence
    low, high = np.quantile(d, [a / 2, 1 - a / 2])
    p = min(1.0, 2 * min((np.sum(d <= 0) + 1) / (d.size + 1), (np.sum(d >= 0) + 1) / (d.size + 1)))
    se = float(d.std(ddof=1))
    return PairedBootstrap(delta, float(low), float(high), float(p), se, mde_z(se, a, power), int(d.size))
