"""Compound-level inference for the headline: a paired bootstrap over test compounds.

The fold-level interval of :mod:`morphotx.report.headline` (Nadeau & Bengio's corrected resampled t
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
        raise ValueError("compound_bootstrap.counts: a compound of the predictions is not in the compound index")
    here, local = np.unique(comp, return_inverse=True)
    true = classes.get_indexer(predictions["moa"].astype(str))
    pred = classes.get_indexer(predictions["predicted"].astype(str))
    if (true < 0).any():
        raise ValueError("compound_bootstrap.counts: a true MoA of the predictions is not in the class index")
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


RESAMPLING = ("rescaled", "naive")


def stratified_weights(compound_moa: pd.Series, draws: int, seed: int, scheme: str = "rescaled") -> np.ndarray:
    """Bootstrap weights: each MoA's compounds resampled with replacement within the MoA.

    Parameters
    ----------
    compound_moa : pandas.Series
        The MoA (stratum) of every compound, indexed by compound; its order is the weight axis.
    draws : int
        Number of bootstrap draws.
    seed : int
        Seed of the draws (``headline.seed``).
    scheme : {"rescaled", "naive"}, default "rescaled"
        ``rescaled``: Rao & Wu's (1988) rescaling bootstrap with ``m_h = n_h − 1``: an MoA of
        ``n_h`` compounds gets ``n_h − 1`` draws, each drawn compound the weight
        ``count · n_h / (n_h − 1)`` (the MoA keeps its total weight ``n_h``). The naive
        bootstrap's variance of a stratum mean is ``(n_h − 1)/n_h`` of the unbiased one — half
        for an MoA of 2 compounds — and macro-F1 weighs every MoA alike, so small MoAs, the
        rule in screens, make it too narrow; the rescaled one is unbiased for stratum means.
        An MoA of one compound keeps weight 1 (no variance can be estimated within it).
        ``naive``: ``n_h`` draws, weight = count.

    Returns
    -------
    numpy.ndarray
        ``(draws, n_compounds)`` weights.
    """
    if scheme not in RESAMPLING:
        raise ValueError(f"inference: scheme must be one of {RESAMPLING}, got {scheme!r}")
    rng = np.random.default_rng(seed)
    w = np.zeros((draws, len(compound_moa)))
    codes, _ = pd.factorize(compound_moa.astype(str), sort=True)
    rows = np.arange(draws)[:, None]
    for s in range(codes.max() + 1 if len(codes) else 0):
        members = np.flatnonzero(codes == s)
        n = len(members)
        if scheme == "rescaled" and n == 1:
            w[:, members] = 1.0
            continue
        m, scale = (n - 1, n / (n - 1)) if scheme == "rescaled" else (n, 1.0)
        pick = members[rng.integers(0, n, size=(draws, m))]
        np.add.at(w, (np.broadcast_to(rows, pick.shape), pick), scale)
    return w


def _by_split(splits) -> dict:
    """``{split: [Counts, …]}`` from such a mapping or from a list (one split per item)."""
    return dict(splits) if isinstance(splits, dict) else {i: [c] for i, c in enumerate(splits)}


def split_values(splits, weights: np.ndarray, metric: str) -> dict:
    """Each split's metric under every weight row, training seeds averaged within the split.

    Parameters
    ----------
    splits : dict or list
        ``{split: [Counts per training seed]}``, or a list of :class:`Counts` (one split each).
    weights : numpy.ndarray
        ``(draws, n_compounds)`` weights.
    metric : str
        One of :data:`METRICS`.

    Returns
    -------
    dict
        ``{split: (draws,) values}`` (NaN for a draw in which the split has no weight).
    """
    out = {}
    for key, seeds in _by_split(splits).items():
        vals = np.vstack([metric_of(c, weights, metric) for c in seeds])
        with np.errstate(invalid="ignore"):
            out[key] = np.nanmean(vals, axis=0) if np.isfinite(vals).any() else np.full(len(weights), np.nan)
    return out


@dataclass
class PairedBootstrap:
    """The result of :func:`paired_bootstrap`.

    ``low``, ``high``, ``p``, ``se``, ``mde``: the compound bootstrap (conditional on the
    models and choices). ``cs_*``: the compound bootstrap plus the between-split variance
    ``tau2`` (see :func:`paired_bootstrap`), with ``cs_df`` its Satterthwaite degrees of freedom.
    """

    delta: float
    low: float
    high: float
    p: float
    se: float
    mde: float
    draws: int
    splits: int = 0
    tau2: float = np.nan
    cs_low: float = np.nan
    cs_high: float = np.nan
    cs_p: float = np.nan
    cs_se: float = np.nan
    cs_mde: float = np.nan
    cs_df: float = np.nan


def mde_z(se: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable effect of a two-sided z-test: ``(z_{1−α/2} + z_{power}) · se``."""
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * se)


def mde_t(se: float, df: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable effect of a two-sided t-test with ``df`` degrees of freedom (NaN below 1;
    ``df = inf`` is the z-test).
    """
    if not df >= 1 or not np.isfinite(se):
        return np.nan
    if np.isinf(df):
        return mde_z(se, alpha, power)
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * se)


def paired_bootstrap(entry, baseline, weights: np.ndarray, metric: str, confidence: float = 0.95,
                     power: float = 0.8, ratio: float = np.nan) -> PairedBootstrap:
    """The paired compound bootstrap of an entry against its baseline, alone and with the
    between-split variance added.

    **Compound bootstrap** (``low, high, p, se, mde``). Δ* is, per draw, the mean over the
    splits both sides have of the entry's minus the baseline's metric under the draw's compound
    weights; the CI is its percentile interval, p its dual. It holds the trained models and the
    validation choices fixed.

    **Compound + split** (``cs_*``). The models and choices differ between splits, and a
    split's Δ varies with them beyond its test compounds: per split j the bootstrap gives the
    within-split variance ``w_j`` of its Δ_j; the moment estimate of the between-split
    variance is ``τ² = max(0, s² − mean(w_j))`` with ``s²`` the observed Δ_j's variance (the
    DerSimonian & Laird 1986 idea, unweighted). The splits' training sets overlap, so τ² enters
    the mean over J splits with Nadeau & Bengio's (2003) correlation correction:
    ``Var(Δ) = SE*² + τ² · (1/J + n_test/n_train)``. The interval is Δ ± t·√Var with the
    Satterthwaite degrees of freedom ``Var² / ((τ² (1/J + ratio))² / (J − 1))`` (infinite when
    τ² = 0: the compound bootstrap's variance is taken as known). With τ² = 0 it is the compound
    bootstrap's normal interval; with a large τ² it tends to the corrected t over splits.

    Parameters
    ----------
    entry, baseline : dict or list
        ``{split: [Counts per training seed]}`` for each side, or lists of :class:`Counts` (one
        split each, paired by position). Only the splits both sides have are compared.
    weights : numpy.ndarray
        :func:`stratified_weights` (the same draws for every comparison of a table).
    metric : str
        One of :data:`METRICS`.
    confidence : float
        Two-sided confidence level of the intervals; α = 1 − confidence for the MDE.
    power : float
        Power at which the minimum detectable effect is stated.
    ratio : float
        ``n_test / n_train`` of the splits (NaN: the ``cs_*`` fields stay NaN).

    Returns
    -------
    PairedBootstrap
        Observed Δ (mean over the common splits), both intervals, p-values, SEs and MDEs.
    """
    e, b = _by_split(entry), _by_split(baseline)
    common = [k for k in e if k in b]
    # row 0: the observed score (every compound weight 1); rows 1…: the draws
    rows = np.vstack([np.ones((1, weights.shape[1])), weights])
    val_e, val_b = (split_values({k: x[k] for k in common}, rows, metric) for x in (e, b))
    d_obs = np.array([val_e[k][0] - val_b[k][0] for k in common], dtype=float)
    keep = np.isfinite(d_obs)
    if not keep.any():
        return PairedBootstrap(np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, 0)
    d_obs = d_obs[keep]
    d_draw = np.vstack([val_e[k][1:] - val_b[k][1:] for k, ok in zip(common, keep) if ok])  # (J, draws)
    delta = float(d_obs.mean())
    with np.errstate(invalid="ignore"):
        d = np.nanmean(d_draw, axis=0)
    d = d[np.isfinite(d)]
    j = int(d_obs.size)
    if d.size < 2:
        return PairedBootstrap(delta, np.nan, np.nan, np.nan, np.nan, np.nan, int(d.size), j)
    a = 1 - confidence
    low, high = np.quantile(d, [a / 2, 1 - a / 2])
    p = min(1.0, 2 * min((np.sum(d <= 0) + 1) / (d.size + 1), (np.sum(d >= 0) + 1) / (d.size + 1)))
    se = float(d.std(ddof=1))
    res = PairedBootstrap(delta, float(low), float(high), float(p), se, mde_z(se, a, power), int(d.size), j)
    if j >= 2 and np.isfinite(ratio):
        with np.errstate(invalid="ignore"):
            within = float(np.nanmean(np.nanvar(d_draw, axis=1, ddof=1)))
        tau2 = max(0.0, float(d_obs.var(ddof=1)) - within)
        between = tau2 * (1 / j + ratio)
        var = se**2 + between
        df = var**2 / (between**2 / (j - 1)) if between > 0 else np.inf
        cs_se = float(np.sqrt(var))
        q = stats.t.ppf(1 - a / 2, df) if np.isfinite(df) else stats.norm.ppf(1 - a / 2)
        cs_p = (2 * (stats.t.sf(abs(delta) / cs_se, df) if np.isfinite(df) else stats.norm.sf(abs(delta) / cs_se))
                if cs_se > 0 else (1.0 if delta == 0 else 0.0))
        res.tau2, res.cs_se, res.cs_df = tau2, cs_se, float(df)
        res.cs_low, res.cs_high, res.cs_p = delta - q * cs_se, delta + q * cs_se, float(cs_p)
        res.cs_mde = mde_t(cs_se, df, a, power)
    return res
