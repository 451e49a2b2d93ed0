"""Fold-level statistics of the headline: intervals, paired p-values, minimum detectable effects, Holm.

One number per split (J = repeats × folds splits): the corrected repeated k-fold t of Nadeau &
Bengio (2003) and Bouckaert & Frank (2004), or the plain t. The compound-level paired bootstrap is
:mod:`morphotx.report.compound_bootstrap`.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .compound_bootstrap import mde_t

CI_METHODS = {
    "corrected_t": "corrected resampled t (Nadeau & Bengio 2003, Machine Learning 52:239–281): "
                   "variance (1/J + n_test/n_train) · s², J − 1 degrees of freedom",
    "t": "Student t over repetitions, variance s²/J (not corrected for the training compounds the "
         "repetitions share, so too narrow)",
}


def interval(values, ratio: float = np.nan, ci: str = "corrected_t",
             confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and confidence interval of per-split values.

    Parameters
    ----------
    values : array-like
        One value per split (fold of a partition); non-finite values are dropped.
    ratio : float
        ``n_test / n_train`` of the splits (used by ``corrected_t`` only).
    ci : {"corrected_t", "t"}
        ``corrected_t``: the corrected repeated k-fold t (Nadeau & Bengio 2003; Bouckaert & Frank
        2004 for r repeats of k folds), variance ``(1/J + ratio) · s²`` with J = r · k; ``t``:
        variance ``s²/J``. Both use a t quantile with J − 1 degrees of freedom.
    confidence : float
        Two-sided confidence level.

    Returns
    -------
    tuple of float
        ``(mean, low, high)``; the interval is NaN with fewer than 2 values (or a NaN ``ratio``
        for ``corrected_t``).
    """
    mean, var, j = _mean_and_variance(values, ratio, ci)
    if j < 2:
        return mean, np.nan, np.nan
    half = float(stats.t.ppf((1 + confidence) / 2, j - 1)) * np.sqrt(var)
    return mean, mean - half, mean + half


def _mean_and_variance(values, ratio: float, ci: str) -> tuple[float, float, int]:
    """The finite ``values``' mean, the variance of that mean by ``ci`` (NaN below 2 values) and
    their number J: the shared basis of :func:`interval`, :func:`paired_p` and the MDE.
    """
    if ci not in CI_METHODS:
        raise ValueError(f"ci must be one of {sorted(CI_METHODS)}, got {ci!r}")
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return (float(v.mean()) if v.size else np.nan), np.nan, int(v.size)
    j, s2 = v.size, float(v.var(ddof=1))
    return float(v.mean()), (1 / j + ratio) * s2 if ci == "corrected_t" else s2 / j, j


def paired_p(values, ratio: float = np.nan, ci: str = "corrected_t") -> float:
    """Two-sided p-value of "the mean of the per-split ``values`` is zero", with the variance
    and the J − 1 degrees of freedom of :func:`interval` (so :func:`interval`'s CI at confidence
    c excludes zero exactly when the p-value is below 1 − c). NaN with fewer than 2 finite values.
    """
    mean, var, j = _mean_and_variance(values, ratio, ci)
    if j < 2 or not np.isfinite(var):
        return np.nan
    if var == 0:  # identical differences: no sampling variation to weigh them against
        return 1.0 if mean == 0 else 0.0
    return float(2 * stats.t.sf(abs(mean) / np.sqrt(var), j - 1))


def fold_mde(values, ratio: float = np.nan, ci: str = "corrected_t", confidence: float = 0.95,
             power: float = 0.8) -> float:
    """The smallest true mean difference the fold-level test detects with probability ``power``
    at two-sided level 1 − ``confidence``: ``(t_{1−α/2} + t_{power}) · SE`` with J − 1 degrees of
    freedom and the SE of :func:`interval` (the observed spread taken as the true one).
    """
    _, var, j = _mean_and_variance(values, ratio, ci)
    return mde_t(float(np.sqrt(var)) if np.isfinite(var) else np.nan, j - 1, 1 - confidence, power)


def holm(pvalues) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values; NaN entries stay NaN and are not counted.

    Hand-written because SciPy offers only the false-discovery-rate adjustments
    (``scipy.stats.false_discovery_control``) and statsmodels is not a dependency: the
    i-th smallest of m p-values becomes ``max_{k ≤ i} min(1, (m − k + 1) · p_(k))``.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out
