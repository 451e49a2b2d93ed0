"""Preprocess profiles: Cell Painting feature selection, normalisation and sphering with
pycytominer; optional per-plate standardisation of L1000.

Leakage rule: every fitted statistic sees only training-split compounds and DMSO wells. Feature
selection is fitted on ``train ∪ DMSO`` rows; scaling and sphering on DMSO wells (which belong to
no compound). Validation and test compounds are transformed, never fitted on.

Cell Painting recipes (``recipe``):

``standard`` (default; the cytomining / LINCS profiling recipe)
    1. drop non-cell-intrinsic features by name pattern (locations, centres, object numbers,
       parent/child links);
    2. drop features with zero dispersion in the DMSO wells of some plate (their robust scale is
       0, so normalisation would divide by ~0);
    3. normalise against DMSO wells, per plate by default (``normalize.by: plate``) with
       ``mad_robustize``, ``robustize`` (scikit-learn RobustScaler) or ``standardize``;
    4. feature selection with pycytominer's operations (NaN-heavy columns, frequency and
       variance thresholds, r > 0.9 correlation, the pycytominer blocklist), fitted on
       train ∪ DMSO rows; the operations run in order, each on the features the earlier ones
       kept, exactly as ``pycytominer.feature_select`` does (and keeping the same features; the
       correlation step computes pycytominer's matrix with BLAS, see ``pairwise_complete_corr``);
    5. residual NaN (rare missing measurements) set to 0, i.e. the plate's DMSO median;
    6. sphering (ZCA by default) fitted on DMSO wells.

``study`` (the study's recipe, Saha 2025)
    variance < 0.01 and r > 0.9 on raw features (fitted on train ∪ DMSO), then one
    RobustScaler fitted on all DMSO wells (no per-plate step), then ZCA fitted on DMSO wells.
    Steps 1, 2 and 5 above apply too; other ``feature_select`` and ``normalize`` keys are ignored.

Outputs: the Parquet profiles (with ``Metadata_split``), ``<name>.features.json`` (kept features,
dropped features by reason, resolved settings) and ``<name>.params.npz`` (per-plate centre and
scale, sphering matrix and mean).
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict

import numpy as np
import pandas as pd
from pycytominer.cyto_utils import get_blocklist_features
from pycytominer.operations import (
    correlation_threshold,
    get_na_columns,
    variance_threshold,
)
from pycytominer.operations.transform import RobustMAD, Spherize
from sklearn.preprocessing import RobustScaler, StandardScaler

from .. import schema as S
from ..io import MorphotxInputError, atomic_outputs, read_table, write_json, write_parquet
from ..settings import FeatureSelectSettings, L1000PreprocessSettings, NormalizeSettings, SphereSettings

log = logging.getLogger(__name__)

DEFAULT_DROP_PATTERNS = [
    r"_Location_", r"_AreaShape_Center_", r"_Center_[XYZ]", r"_Number_Object_Number",
    r"_Parent_", r"_Children_", r"^Image_", r"_ObjectNumber",
]
DEFAULT_OPERATIONS = FeatureSelectSettings().operations  # preprocess.cell_painting.feature_select's default
OPERATIONS = frozenset(DEFAULT_OPERATIONS)


def attach_split(profiles: pd.DataFrame, split: pd.DataFrame, source: str = "") -> pd.DataFrame:
    """Add ``Metadata_split`` (controls: ``control``). Compounds absent from the split table are
    an error: the split was made from other files.

    A well-holdout split table (one row per profile, with ``Metadata_profile_id``; see
    :mod:`morphotx.prepare.split`) is mapped by profile id, and every treated profile's treatment key gets
    ``@<split>`` appended, so that pairing, treatment sets and collapsed profiles keep the
    replicates of one compound-dose in different splits apart.
    """
    by_profile = S.PROFILE_ID in split.columns
    key = S.PROFILE_ID if by_profile else S.PERT
    mapping = dict(zip(split[key].astype(str), split[S.SPLIT]))
    is_ctl = profiles[S.IS_CONTROL].astype(bool).to_numpy()
    sp = profiles[key].astype(str).map(mapping)
    missing = ~is_ctl & sp.isna().to_numpy()
    if missing.any():
        what = "profiles not in the well-holdout split table" if by_profile else "profile(s) of compounds not in the split table"
        raise MorphotxInputError(
            f"{source}: {int(missing.sum())} {what} "
            f"(e.g. {profiles.loc[missing, key].unique()[:5].tolist()}); re-run the split rule on these files.")
    out = profiles.copy()
    out[S.SPLIT] = pd.Series(np.where(is_ctl, "control", sp.astype(object)), index=out.index, dtype="string")
    if S.MOA in split.columns and S.MOA in out.columns:
        out[S.MOA] = _split_spellings(out[S.MOA], split[S.MOA])
    if by_profile:
        trt = out[S.TREATMENT].astype(str)
        out[S.TREATMENT] = np.where(is_ctl, trt, trt + "@" + out[S.SPLIT].astype(str))
    return out


def _split_spellings(moas: pd.Series, split_moas: pd.Series) -> pd.Series:
    """Each MoA of ``moas`` written as the split table writes it: the split table unified the
    spellings (letter case, whitespace) across both modalities (:func:`morphotx.prepare.split.compound_table`),
    while each harmonised file was unified on its own, so the modalities could still differ.
    """
    from ..data.harmonise import moa_key

    spelling = {moa_key(m): m for v in split_moas.dropna() for m in str(v).split("|") if m}
    if not spelling:
        return moas

    def respell(m):
        if m is None or not len(m):
            return m
        return sorted({spelling.get(moa_key(x), x) for x in m})

    return moas.map(respell)


def _scaler(method: str):
    if method == "mad_robustize":
        return RobustMAD()
    if method == "robustize":
        return RobustScaler()
    if method == "standardize":
        return StandardScaler()
    raise ValueError(f"normalize.method must be mad_robustize, robustize or standardize, got {method!r}")


def _center_scale(fitted, method: str):
    if method == "mad_robustize":
        return fitted.median.to_numpy(), fitted.mad.to_numpy() + fitted.epsilon
    if method == "robustize":
        return fitted.center_, fitted.scale_
    return fitted.mean_, fitted.scale_


def normalize_to_controls(profiles: pd.DataFrame, features: list[str], method: str = "mad_robustize",
                          by: str = "plate"):
    """Scale ``features`` against DMSO wells, per plate or globally.

    Returns ``(normalised_feature_frame, centers, scales, group_names)``; the fitted scaler is
    pycytominer's ``RobustMAD`` or scikit-learn's ``RobustScaler``/``StandardScaler`` — the same
    objects ``pycytominer.normalize`` uses.
    """
    X = profiles[features].astype("float64")
    is_ctl = profiles[S.IS_CONTROL].astype(bool).to_numpy()
    groups = profiles[S.PLATE].astype(str).to_numpy() if by == "plate" else np.full(len(profiles), "all")
    if by not in ("plate", "global"):
        raise ValueError(f"normalize.by must be 'plate' or 'global', got {by!r}")
    out = np.empty(X.shape, dtype="float64")
    names, centers, scales = [], [], []
    for g in pd.unique(groups):
        rows = groups == g
        fit_rows = rows & is_ctl
        if fit_rows.sum() < 2:
            raise MorphotxInputError(
                f"plate {g} has {int(fit_rows.sum())} DMSO well(s); per-plate normalisation needs at least 2. "
                "Set preprocess.cell_painting.normalize.by: global, or remove the plate.")
        fitted = _scaler(method).fit(X.loc[fit_rows])
        res = fitted.transform(X.loc[rows])
        out[rows] = np.asarray(res, dtype="float64")
        c, s = _center_scale(fitted, method)
        names.append(g)
        centers.append(np.asarray(c, dtype="float64"))
        scales.append(np.asarray(s, dtype="float64"))
    return pd.DataFrame(out, columns=features, index=profiles.index), np.stack(centers), np.stack(scales), names


def zero_dispersion_features(profiles: pd.DataFrame, features: list[str], by: str = "plate") -> list[str]:
    """Features whose DMSO median absolute deviation is 0 in at least one plate (or globally)."""
    ctl = profiles.loc[profiles[S.IS_CONTROL].astype(bool), [S.PLATE] + features]
    key = ctl[S.PLATE] if by == "plate" else pd.Series("all", index=ctl.index)
    med = ctl[features].groupby(key).transform("median")
    mad = (ctl[features] - med).abs().groupby(key).median()
    return [f for f in features if (mad[f].fillna(0) <= 0).any()]


def pairwise_complete_corr(X: pd.DataFrame) -> np.ndarray:
    """Pearson correlation matrix of the columns of ``X``, each pair on the rows where both are
    present — the matrix ``pycytominer.cyto_utils.get_pairwise_correlation`` computes.

    Why not pycytominer's own call: with any NaN in the table it falls back to
    ``DataFrame.corr``, a scalar O(rows·columns²) loop (minutes on LINCS-size fit rows with one
    feature missing in some wells). Here the matrix is ``np.corrcoef`` of the table — the very call
    pycytominer makes on NaN-free tables, so there the matrices are bit-identical — and only the rows and
    columns of features with missing values are redone with BLAS sums over the pairwise-complete
    rows (on columns centred by their mean, so no catastrophic cancellation). As in pandas, a
    pair with zero variance on its common rows is NaN. ``tests/test_preprocess.py`` checks the
    matrix against ``DataFrame.corr`` and the kept features against ``pycytominer.feature_select``.
    """
    with np.errstate(invalid="ignore", divide="ignore"):  # constant columns: NaN, as in pandas
        R = np.atleast_2d(np.corrcoef(X.transpose())) if X.shape[1] else np.empty((0, 0))
    A = X.to_numpy(dtype="float64")
    valid = ~np.isnan(A)
    K = np.flatnonzero(~valid.all(axis=0))
    if K.size:
        R[K, :] = _incomplete_rows(A, valid, K)
        R[:, K] = R[K, :].T
    return R


def _incomplete_rows(A: np.ndarray, valid: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Rows ``K`` (the features with NaN) of the pairwise-complete correlation matrix of ``A``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        X0 = A - np.nanmean(A, axis=0)  # all-NaN column: NaN mean, its rows come out NaN below
    X0[~valid] = 0.0
    Mk = valid[:, K].astype("float64")
    Xk = X0[:, K]
    complete = valid.all(axis=0)
    # sums over the rows where feature k and feature j are both present (j complete: k's rows)
    n = np.where(complete, Mk.sum(0)[:, None], Mk.T @ valid)
    sx = np.where(complete, Xk.sum(0)[:, None], Xk.T @ valid)
    sxx = np.where(complete, (Xk * Xk).sum(0)[:, None], (Xk * Xk).T @ valid)
    sxy = Xk.T @ X0
    sy = Mk.T @ X0
    np.square(X0, out=X0)
    syy = Mk.T @ X0
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sy / n
        vx, vy = sxx - sx * sx / n, syy - sy * sy / n
        r = cov / np.sqrt(vx * vy)
    r[(n < 1) | (vx <= 0) | (vy <= 0)] = np.nan
    return r


def low_frequency_features(fit_df: pd.DataFrame, features: list[str], freq_cut: float = 0.05,
                           unique_cut: float = 0.01) -> list[str]:
    """``pycytominer.operations.frequency_threshold`` from one sort of the table: a feature goes
    when (count of its 2nd most common value) / (count of its most common) < ``freq_cut`` (0 with
    fewer than two distinct values) or (distinct values) / (rows) < ``unique_cut``; NaN is not a
    value, as in ``value_counts``/``nunique``. pycytominer runs ``value_counts`` per column through
    ``DataFrame.apply`` (most of the selection's time at LINCS size); the counts here are the run
    lengths of each sorted column — the same numbers. Checked against pycytominer in
    ``tests/test_preprocess.py``.
    """
    if not (0 <= freq_cut <= 1 and 0 <= unique_cut <= 1):
        raise ValueError("freq_cut and unique_cut must be between 0 and 1")
    A = np.sort(fit_df.loc[:, features].to_numpy(dtype="float64"), axis=0)  # NaN sort last
    n_valid = (~np.isnan(A)).sum(axis=0)
    out = []
    for j, f in enumerate(features):
        col = A[: n_valid[j], j]
        starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]]) if col.size else np.empty(0, int)
        counts = np.diff(np.r_[starts, col.size])
        top = np.sort(counts)[-2:] if counts.size >= 2 else None
        freq = 0.0 if top is None else top[0] / top[1]
        if freq < freq_cut or counts.size / len(A) < unique_cut:
            out.append(f)
    return out


def high_correlation_features(fit_df: pd.DataFrame, features: list[str], threshold: float = 0.9) -> list[str]:
    """``pycytominer.operations.correlation_threshold`` (Pearson) without its per-pair
    ``DataFrame.apply``: every pair with r > ``threshold`` excludes the member with the larger
    sum of |r| over all features (pycytominer's ``determine_high_cor_pair``; the ranking is the
    same ``abs().sum().sort_values()`` call). The matrix is :func:`pairwise_complete_corr`.
    """
    check_corr_threshold(threshold)
    X = fit_df.loc[:, features]
    if np.isinf(X.to_numpy(dtype="float64")).any():  # pycytominer's pandas path, kept for exactness
        return correlation_threshold(X, features=features, threshold=threshold)
    return correlated_losers(pairwise_complete_corr(X), features, threshold)


def check_corr_threshold(threshold: float) -> None:
    """pycytominer's check of ``corr_threshold``."""
    if not 0 <= threshold <= 1:
        raise ValueError("corr_threshold must be between 0 and 1")


def correlated_losers(R: np.ndarray, features: list[str], threshold: float) -> list[str]:
    """The features the correlation filter drops, given their correlation matrix ``R``: every pair
    with r > ``threshold`` drops the member with the larger sum of |r| (pycytominer's
    ``determine_high_cor_pair``, ranked by the same ``abs().sum().sort_values()`` call).
    """
    ranked = pd.DataFrame(R, index=features, columns=features).abs().sum().sort_values().index
    rank = ranked.get_indexer(features)
    with np.errstate(invalid="ignore"):
        a, b = np.nonzero(np.tril(R > threshold, k=-1))  # pycytominer's pair_a (row), pair_b (column)
    loser = np.where(rank[a] > rank[b], a, b)
    return sorted({features[i] for i in loser})


def _exclusions(op: str, fit_df: pd.DataFrame, features: list[str], kw: dict) -> list[str]:
    if op == "drop_na_columns":
        return get_na_columns(fit_df, features=features, cutoff=kw["na_cutoff"])
    if op == "frequency_threshold":
        return low_frequency_features(fit_df, features, kw["freq_cut"], kw["unique_cut"])
    if op == "variance_threshold":
        return variance_threshold(fit_df, features=features, min_variance=kw["min_variance"])
    if op == "correlation_threshold":
        return high_correlation_features(fit_df, features, kw["corr_threshold"])
    if op == "blocklist":
        return [f for f in get_blocklist_features(population_df=fit_df[features]) if f in features]
    raise ValueError(f"unknown feature-selection operation {op!r}")


def select_features(fit_df: pd.DataFrame, features: list[str], operations: list[str], na_cutoff=0.05,
                    freq_cut=0.05, unique_cut=0.01, min_variance=1e-6, corr_threshold=0.9) -> dict[str, list[str]]:
    """``pycytominer.feature_select`` on ``fit_df``, returning the excluded features by
    operation. As there, the operations run in the given order and each sees only the features
    the earlier ones kept (a feature is reported under the first operation that drops it).
    pycytominer's operations are called as they are, except correlation and frequency (same
    results, faster): see :func:`high_correlation_features` and :func:`low_frequency_features`.
    """
    kw = {"na_cutoff": na_cutoff, "freq_cut": freq_cut, "unique_cut": unique_cut, "min_variance": min_variance,
          "corr_threshold": corr_threshold}
    for op in operations:
        if op not in OPERATIONS:
            raise ValueError(f"unknown feature-selection operation {op!r}")
    dropped: dict[str, list[str]] = {}
    left = list(features)
    for op in operations:
        ex = set(_exclusions(op, fit_df, left, kw)) if left else set()
        dropped[op] = sorted(ex)
        left = [f for f in left if f not in ex]
    return dropped


def _fit_one_blas_thread(estimator, X):
    """Fit with one BLAS thread; pycytominer's ``Spherize`` with the thin SVD of the DMSO wells
    (the same W without an n × n matrix): :func:`morphotx.prepare.spherize.fit`.
    """
    from .spherize import fit

    return fit(estimator, X)


def candidate_features(df: pd.DataFrame, patterns: list[str], na_cutoff: float | None = 0.05, by: str = "plate"):
    """The Cell Painting features that go to normalisation and feature selection: name patterns
    (non-intrinsic), then NaN-heavy columns in the fit rows (skipped when ``na_cutoff`` is None),
    then features with zero DMSO dispersion. Returns ``(all_features, candidates, dropped,
    fit_mask)``; ``fit_mask`` marks the train ∪ DMSO rows every fitted step uses.
    """
    features = S.cp_feature_columns(S.feature_columns(df))
    other = [c for c in S.feature_columns(df) if c not in features]
    if other:
        log.warning("%d non-CellProfiler column(s) ignored (e.g. %s)", len(other), other[:5])
    dropped: dict[str, list[str]] = {}
    rx = re.compile("|".join(patterns)) if patterns else None
    dropped["non_intrinsic"] = [f for f in features if rx and rx.search(f)]
    feats = [f for f in features if f not in set(dropped["non_intrinsic"])]
    # NaN-heavy columns go before the dispersion check (a 40%-missing column has no stable MAD)
    fit_mask = df[S.SPLIT].isin(["train", "control"]).to_numpy()
    if na_cutoff is not None:
        dropped["drop_na_columns"] = sorted(get_na_columns(df.loc[fit_mask], features=feats, cutoff=na_cutoff))
        feats = [f for f in feats if f not in set(dropped["drop_na_columns"])]
    dropped["zero_dispersion_in_dmso"] = zero_dispersion_features(df, feats, by)
    feats = [f for f in feats if f not in set(dropped["zero_dispersion_in_dmso"])]
    return features, feats, dropped, fit_mask


def recipe_settings(recipe: str = "standard", feature_select: dict | None = None, normalize: dict | None = None,
                    sphere: dict | None = None) -> tuple[dict, dict, dict]:
    """The feature-selection, normalisation and sphering settings of a recipe, defaults filled:
    ``standard`` (the given settings) or ``study`` (the study's own: variance < 0.01 and r > 0.9
    on raw features, one RobustScaler on DMSO, ZCA on DMSO).
    """
    fs = {**asdict(FeatureSelectSettings()), **(feature_select or {})}  # defaults: morphotx.settings
    norm = {**asdict(NormalizeSettings()), **(normalize or {})}
    sph = {**asdict(SphereSettings()), **(sphere or {})}
    if recipe == "study":
        fs = {**fs, "operations": ["variance_threshold", "correlation_threshold"], "min_variance": 0.01,
              "corr_threshold": 0.9}
        norm = {"method": "robustize", "by": "global"}
        sph = {"method": "ZCA", "epsilon": sph["epsilon"]}
        log.info("recipe 'study': variance < 0.01, r > 0.9 on raw features; RobustScaler on DMSO; ZCA on DMSO")
    elif recipe != "standard":
        raise ValueError(f"recipe must be 'standard' or 'study', got {recipe!r}")
    return fs, norm, sph


def _select_and_normalize(df: pd.DataFrame, feats: list[str], fit_mask: np.ndarray, recipe: str, fs: dict,
                          norm: dict, dropped: dict):
    """Feature selection and normalisation in the recipe's order (``study``: select on raw
    features, then normalise; ``standard``: normalise, then select); ``dropped`` gains the
    selection's exclusions. Returns ``(X, kept features, centres, scales, groups)``.
    """
    ops = [o for o in fs["operations"] if o != "drop_na_columns"]
    kw = {k: fs[k] for k in ("na_cutoff", "freq_cut", "unique_cut", "min_variance", "corr_threshold")}
    if recipe == "study":
        ex = select_features(df.loc[fit_mask, feats], feats, ops, **kw)
        gone = set().union(*ex.values())
        feats = [f for f in feats if f not in gone]
        X, centers, scales, groups = normalize_to_controls(df, feats, norm["method"], norm["by"])
    else:
        X, centers, scales, groups = normalize_to_controls(df, feats, norm["method"], norm["by"])
        ex = select_features(X.loc[fit_mask], feats, ops, **kw)
        gone = set().union(*ex.values())
        keep = [i for i, f in enumerate(feats) if f not in gone]
        feats = [feats[i] for i in keep]
        X, centers, scales = X[feats], centers[:, keep], scales[:, keep]
    dropped.update(ex)
    return X, feats, centers, scales, groups


def _sphere(X: pd.DataFrame, ctl: np.ndarray, sph: dict, params: dict) -> pd.DataFrame:
    """pycytominer's Spherize fitted on the DMSO rows, applied to every row; its parameters join
    ``params``.
    """
    n_ctl, feats = int(ctl.sum()), list(X.columns)
    if n_ctl < 2 * len(feats):
        log.warning("sphering fitted on %d DMSO wells for %d features; the estimate is regularised by "
                    "epsilon=%g but noisy (more DMSO wells or fewer features help)", n_ctl, len(feats), sph["epsilon"])
    sp = Spherize(method=sph["method"], epsilon=float(sph["epsilon"]), center=True, return_numpy=True)
    _fit_one_blas_thread(sp, X.loc[ctl])
    out = pd.DataFrame(np.asarray(sp.transform(X)), columns=feats, index=X.index)
    params["sphere_W"] = sp.W
    params["sphere_mean"] = sp.mean_centerer.mean_ if hasattr(sp, "mean_centerer") else sp.standard_scaler.mean_
    if hasattr(sp, "standard_scaler"):
        params["sphere_scale"] = sp.standard_scaler.scale_
    return out


def _write_preprocessed(out: pd.DataFrame, report: dict, params: dict, output: str, features_json: str,
                        params_npz: str) -> None:
    """The profiles (Parquet), the report of kept and dropped features (JSON) and the fitted
    parameters (NPZ), written together or not at all.
    """
    with atomic_outputs(output, features_json, params_npz) as (t_out, t_json, t_npz):
        write_parquet(out, t_out)
        write_json(report, t_json)
        with open(t_npz, "wb") as fh:
            np.savez(fh, **params)


def preprocess_cp(
    profiles: str, split: str, preprocessed: str, features_json: str, params_npz: str,
    recipe: str = "standard", drop_patterns: list[str] | None = None, feature_select: dict | None = None,
    normalize: dict | None = None, sphere: dict | None = None,
) -> pd.DataFrame:
    """Harmonised Cell Painting profiles → selected, DMSO-normalised, sphered profiles of one
    fold (selection fitted on training compounds and DMSO, normalisation and sphering on DMSO);
    see the module docstring for the recipes.

    Parameters
    ----------
    profiles : str
        The harmonised profiles (Parquet) of every fold.
    split : str
        The fold's compound split (``split/fold<f>/compound_split.parquet``): each compound's
        ``train`` / ``validation`` / ``test``, attached as ``Metadata_split``.
    preprocessed : str
        The fold's preprocessed profiles (Parquet) written.
    features_json : str
        The JSON report written beside it: kept features, dropped features by reason, resolved
        settings.
    params_npz : str
        The fitted parameters (NPZ) written beside it: features and, where fitted, per-group centre
        and scale, sphering matrix and mean.
    recipe : {"standard", "study"}, default "standard"
        The preprocessing recipe (module docstring); ``study`` overrides most of the three settings
        below (:func:`recipe_settings`).
    drop_patterns : list of str, optional
        Regular expressions of feature names dropped first; None: :data:`DEFAULT_DROP_PATTERNS`
        (locations, centres, object numbers, parent / child links).
    feature_select, normalize, sphere : dict, optional
        The ``preprocess.cell_painting`` config's subsections; keys left out (or None) take the
        defaults of :class:`morphotx.settings.FeatureSelectSettings`, ``NormalizeSettings`` and
        ``SphereSettings``.

    Returns
    -------
    pandas.DataFrame
        The preprocessed profiles as written: metadata columns, then float32 features.
    """
    fs, norm, sph = recipe_settings(recipe, feature_select, normalize, sphere)
    patterns = DEFAULT_DROP_PATTERNS if drop_patterns is None else drop_patterns
    df = attach_split(read_table(profiles), read_table(split), profiles)
    features, feats, dropped, fit_mask = candidate_features(
        df, patterns, fs["na_cutoff"] if "drop_na_columns" in fs["operations"] or recipe == "study" else None,
        norm["by"])
    X, feats, centers, scales, groups = _select_and_normalize(df, feats, fit_mask, recipe, fs, norm, dropped)
    if not feats:
        raise MorphotxInputError(f"{profiles}: no Cell Painting feature survived selection; relax the "
                                 "preprocess.cell_painting.feature_select thresholds.")
    n_nan = int(X.isna().to_numpy().sum())
    if n_nan:
        log.info("%d missing value(s) in %d feature(s) set to 0 (the DMSO centre)", n_nan, int(X.isna().any().sum()))
        X = X.fillna(0.0)
    params = {"features": np.array(feats), "groups": np.array(groups), "center": centers, "scale": scales}
    if sph["method"] != "none":
        X = _sphere(X, df[S.IS_CONTROL].astype(bool).to_numpy(), sph, params)
    out = pd.concat([df[S.meta_columns(df)], X.astype("float32")], axis=1)
    settings = {"recipe": recipe, "drop_patterns": patterns, "feature_select": fs, "normalize": norm, "sphere": sph}
    report = {"n_input_features": len(features), "n_kept": len(feats), "kept": feats,
              "dropped": {k: v for k, v in dropped.items()}, "settings": settings,
              "fit_rows": {"feature_select": int(fit_mask.sum()), "dmso": int(df[S.IS_CONTROL].sum())}}
    _write_preprocessed(out, report, params, preprocessed, features_json, params_npz)
    log.info("Cell Painting: %d -> %d features (%s); %d profiles", len(features), len(feats),
             {k: len(v) for k, v in dropped.items()}, len(out))
    return out


def preprocess_l1000(profiles: str, split: str, preprocessed: str, features_json: str, params_npz: str,
                     settings: L1000PreprocessSettings = L1000PreprocessSettings()) -> pd.DataFrame:
    """L1000 is kept as provided (level 4 is already plate-normalised); optionally z-score each
    plate against its DMSO wells (``dmso``) or all its wells (``all``; transductive, as CMap's
    own level-4 step): the entry point of rule ``preprocess_l1000``.

    Parameters
    ----------
    profiles, split, preprocessed, features_json : str
        As in :func:`preprocess_cp`.
    params_npz : str
        The fitted parameters (NPZ) written beside it: features and, where fitted, per-group centre
        and scale (per plate).
    settings : L1000PreprocessSettings, default L1000PreprocessSettings()
        The ``preprocess.l1000`` config section: ``plate_standardise`` (``none``, ``dmso``,
        ``all``), per-plate z-scoring: none, against the plate's DMSO wells, or against all its
        wells.

    Returns
    -------
    pandas.DataFrame
        The preprocessed profiles as written: metadata columns, then float32 features.
    """
    plate_standardise = settings.plate_standardise
    df = attach_split(read_table(profiles), read_table(split), profiles)
    feats = S.feature_columns(df)
    X = df[feats].astype("float64")
    params = {"features": np.array(feats)}
    if plate_standardise in ("dmso", "all"):
        ctl = df[S.IS_CONTROL].astype(bool).to_numpy()
        groups, centers, scales = [], [], []
        for plate, rows in df.groupby(S.PLATE, sort=True).indices.items():
            fit = rows[ctl[rows]] if plate_standardise == "dmso" else rows
            if len(fit) < 2:
                raise MorphotxInputError(f"L1000 plate {plate}: {len(fit)} fitting profile(s) for "
                                         f"plate_standardise: {plate_standardise}; use 'all' or 'none'.")
            sc = StandardScaler().fit(X.iloc[fit])
            X.iloc[rows] = sc.transform(X.iloc[rows])
            groups.append(plate)
            centers.append(sc.mean_)
            scales.append(sc.scale_)
        params.update(groups=np.array(groups), center=np.stack(centers), scale=np.stack(scales))
    elif plate_standardise != "none":
        raise ValueError(f"plate_standardise must be none, dmso or all, got {plate_standardise!r}")
    n_nan = int(X.isna().to_numpy().sum())
    if n_nan:
        log.info("L1000: %d missing value(s) set to 0", n_nan)
        X = X.fillna(0.0)
    out = pd.concat([df[S.meta_columns(df)], X.astype("float32")], axis=1)
    report = {"n_kept": len(feats), "kept": feats, "settings": {"plate_standardise": plate_standardise}}
    _write_preprocessed(out, report, params, preprocessed, features_json, params_npz)
    log.info("L1000: %d profiles x %d genes (plate_standardise=%s)", len(out), len(feats), plate_standardise)
    return out
