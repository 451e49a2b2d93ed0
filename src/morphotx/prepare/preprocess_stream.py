"""Cell Painting preprocessing in bounded memory: :func:`morphotx.prepare.preprocess.preprocess_cp`'s
recipes, computed from the harmonised Parquet file in row batches, so that a CDRP-size file
(~160,000 wells × 1,783 features) is preprocessed on a 24 GB machine.

The whole-table path holds the profiles several times over (float32 as read, float64 while
normalising, the normalised table, the sphered table, the written copy): ≈ 0.1 MB per well, 15 GB
at CDRP size. Here the file is read three times, batch by batch, and only what a fitted statistic
needs is held:

1. metadata of every row (the split attached); the DMSO wells' raw features (normalisation is
   fitted on them, per plate or globally; so are the zero-dispersion check and sphering); the
   count of missing values per feature in the fit rows (``drop_na_columns``);
2. the fit rows (training compounds ∪ DMSO), normalised (``standard``) or raw (``study``), as
   one matrix, in file order: feature selection runs on it with the same functions as the
   whole-table path (:func:`morphotx.prepare.preprocess.select_features`: pycytominer's operations);
3. every batch normalised with the fitted per-plate centre and scale, reduced to the kept
   features, missing values set to 0, sphered with the fitted pycytominer ``Spherize`` and
   written as one Parquet row group.

Every fitted statistic sees the same rows in the same order as in the whole-table path, and the
per-row transforms are the same element-wise float64 operations, so the selected features, centres,
scales and sphering matrix are identical; the sphered profiles differ from the whole-table path's
only by the order of the matrix product's sums (batches instead of one product), i.e. at float32
rounding (``tests/test_preprocess_stream.py`` checks both). Peak memory is about the fit-row
matrix (fit rows × candidate features × 8 bytes) plus what feature selection allocates on it.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pycytominer.operations.transform import Spherize

from .. import schema as S
from ..io import MorphotxInputError, atomic_outputs, parquet_options, read_table, write_json
from .preprocess import (
    DEFAULT_DROP_PATTERNS,
    _center_scale,
    _fit_one_blas_thread,
    _scaler,
    attach_split,
    check_corr_threshold,
    correlated_losers,
    recipe_settings,
    zero_dispersion_features,
)

log = logging.getLogger(__name__)

BATCH_ROWS = 8192  # rows per batch read and per row group written


def _batches(pf: pq.ParquetFile, columns: list[str], batch_rows: int):
    """``(first_row, float32 matrix)`` of ``columns``, batch by batch, in file order. Read a row
    group at a time (``iter_batches`` decodes far ahead: 1.4 GB held for a 1 GB file; a row group
    of :data:`morphotx.io.ROW_GROUP_ROWS` rows is ~110 MB).
    """
    start = 0
    for g in range(pf.metadata.num_row_groups):
        group = pf.read_row_group(g, columns=columns, use_threads=True)
        for b in group.to_batches(max_chunksize=batch_rows):
            X = np.empty((b.num_rows, len(columns)), dtype=np.float32)
            for j, col in enumerate(b.columns):
                X[:, j] = col.to_numpy(zero_copy_only=False)
            yield start, X
            start += b.num_rows
        del group


def _read_rows(pf: pq.ParquetFile, columns: list[str], mask: np.ndarray, batch_rows: int) -> np.ndarray:
    """The rows of ``mask`` (file order) of ``columns``, float32."""
    out = np.empty((int(mask.sum()), len(columns)), dtype=np.float32)
    at = 0
    for start, X in _batches(pf, columns, batch_rows):
        m = mask[start:start + len(X)]
        n = int(m.sum())
        out[at:at + n] = X[m]
        at += n
    return out


def pairwise_complete_corr_blocks(A: np.ndarray, cols: np.ndarray, block_rows: int = BATCH_ROWS) -> np.ndarray:
    """:func:`morphotx.prepare.preprocess.pairwise_complete_corr` of the columns ``cols`` of ``A``, its
    sums accumulated over blocks of ``block_rows`` rows: no temporary of the matrix's size (the
    whole-table function holds ~3 more copies of it: 4 GB at CDRP size). The same quantities (the
    Pearson matrix of the complete columns as ``np.corrcoef`` computes it; for columns with NaN, the
    pairwise-complete sums on columns centred by their mean); the sums' order differs, so values
    agree to float64 rounding.
    """
    n, p = len(A), len(cols)
    total, count = np.zeros(p), np.zeros(p)
    for i in range(0, n, block_rows):
        B = A[i:i + block_rows, cols]
        v = ~np.isnan(B)
        total += np.where(v, B, 0.0).sum(axis=0)
        count += v.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count  # all-NaN column: NaN, its rows come out NaN below
    K = np.flatnonzero(count < n)
    C = np.zeros((p, p))
    acc = {k: np.zeros((K.size, p)) for k in ("n", "sx", "sxx", "sxy", "sy", "syy")}
    for i in range(0, n, block_rows):
        B = A[i:i + block_rows, cols]
        v = ~np.isnan(B)
        X0 = B - mean
        X0[~v] = 0.0
        C += X0.T @ X0
        if K.size:
            V = v.astype(np.float64)
            Mk, Xk = V[:, K], X0[:, K]
            acc["n"] += Mk.T @ V
            acc["sx"] += Xk.T @ V
            acc["sxx"] += (Xk * Xk).T @ V
            acc["sxy"] += Xk.T @ X0
            acc["sy"] += Mk.T @ X0
            acc["syy"] += Mk.T @ (X0 * X0)
    with np.errstate(invalid="ignore", divide="ignore"):  # np.corrcoef's steps; constant columns: NaN
        d = np.sqrt(np.diag(C))
        R = C / d[:, None]
        R /= d[None, :]
        np.clip(R, -1, 1, out=R)
        if K.size:
            nk, sx, sy = acc["n"], acc["sx"], acc["sy"]
            cov = acc["sxy"] - sx * sy / nk
            vx, vy = acc["sxx"] - sx * sx / nk, acc["syy"] - sy * sy / nk
            r = cov / np.sqrt(vx * vy)
            r[(nk < 1) | (vx <= 0) | (vy <= 0)] = np.nan
            R[K, :] = r
            R[:, K] = R[K, :].T
    return R


def _high_correlation(F: np.ndarray, features: list[str], left: list[str], threshold: float,
                      block_rows: int) -> list[str]:
    """:func:`morphotx.prepare.preprocess.high_correlation_features` of the features ``left`` (columns of
    ``F``, named ``features``) with the matrix of :func:`pairwise_complete_corr_blocks` and the same rule
    (:func:`morphotx.prepare.preprocess.correlated_losers`).
    """
    check_corr_threshold(threshold)
    cols = np.asarray([features.index(f) for f in left]) if left != features else np.arange(len(features))
    return correlated_losers(pairwise_complete_corr_blocks(F, cols, block_rows), left, threshold)


def select_features_lean(F: np.ndarray, features: list[str], operations: list[str], block_rows: int = BATCH_ROWS,
                         **kw) -> dict[str, list[str]]:
    """:func:`morphotx.prepare.preprocess.select_features` on the fit-row matrix ``F`` (columns
    ``features``), in the same order with the same operations (pycytominer's, through
    ``preprocess._exclusions``), except that the correlation matrix is accumulated over row
    blocks (:func:`pairwise_complete_corr_blocks`) instead of being computed on copies of ``F``.
    """
    from .preprocess import OPERATIONS, _exclusions, select_features

    for op in operations:
        if op not in OPERATIONS:
            raise ValueError(f"unknown feature-selection operation {op!r}")
    df = pd.DataFrame(F, columns=features, copy=False)
    dropped: dict[str, list[str]] = {}
    left = list(features)
    for op in operations:
        if not left:
            ex: set = set()
        elif op == "correlation_threshold":
            if any(np.isinf(F[i:i + block_rows]).any() for i in range(0, len(F), block_rows)):
                ex = set(select_features(df[left], left, [op], **kw)[op])  # pycytominer's pandas path for inf
            else:
                ex = set(_high_correlation(F, features, left, kw["corr_threshold"], block_rows))
        else:
            ex = set(_exclusions(op, df, left, kw))
        dropped[op] = sorted(ex)
        left = [f for f in left if f not in ex]
    return dropped


class _Normaliser:
    """Per-group centre and scale, fitted as :func:`morphotx.prepare.preprocess.normalize_to_controls`
    fits them (the same scaler objects on the same DMSO rows), applied to any rows.
    """

    def __init__(self, groups: np.ndarray, ctl: np.ndarray, ctl_X: pd.DataFrame, method: str, by: str):
        if by not in ("plate", "global"):
            raise ValueError(f"normalize.by must be 'plate' or 'global', got {by!r}")
        self.codes, names = pd.factorize(groups, sort=False)  # pd.unique's order, as the whole-table path
        ctl_codes = self.codes[ctl]
        centers, scales = [], []
        for i, g in enumerate(names):
            rows = ctl_codes == i
            if rows.sum() < 2:
                raise MorphotxInputError(
                    f"plate {g} has {int(rows.sum())} DMSO well(s); per-plate normalisation needs at least 2. "
                    "Set preprocess.cell_painting.normalize.by: global, or remove the plate.")
            fitted = _scaler(method).fit(ctl_X.loc[rows])
            c, s = _center_scale(fitted, method)
            centers.append(np.asarray(c, dtype="float64"))
            scales.append(np.asarray(s, dtype="float64"))
        self.names = [str(g) for g in names]
        self.centers, self.scales = np.stack(centers), np.stack(scales)

    def keep(self, idx: list[int]) -> None:
        self.centers, self.scales = self.centers[:, idx], self.scales[:, idx]

    def __call__(self, X: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """``(X - centre) / scale`` of each row's group, float64 (the scalers' own arithmetic)."""
        out = X.astype(np.float64)
        for g in np.unique(codes):
            rows = codes == g
            out[rows] = (out[rows] - self.centers[g]) / self.scales[g]
        return out


def preprocess_cp(
    profiles: str, split: str, preprocessed: str, features_json: str, params_npz: str,
    recipe: str = "standard", drop_patterns: list[str] | None = None, feature_select: dict | None = None,
    normalize: dict | None = None, sphere: dict | None = None, batch_rows: int = BATCH_ROWS,
) -> dict:
    """:func:`morphotx.prepare.preprocess.preprocess_cp` in bounded memory (module docstring): the same
    outputs, computed in row batches from the harmonised Parquet file.

    Parameters
    ----------
    profiles : str
        The harmonised profiles (Parquet) of every fold.
    split : str
        The fold's compound split; each compound's ``train`` / ``validation`` / ``test`` is
        attached as ``Metadata_split``.
    preprocessed : str
        The fold's preprocessed profiles (Parquet, one row group per batch) written.
    features_json : str
        The JSON report written beside it (kept features, dropped features by reason, settings).
    params_npz : str
        The fitted parameters (NPZ) written beside it.
    recipe : {"standard", "study"}, default "standard"
        The preprocessing recipe (:mod:`morphotx.prepare.preprocess`).
    drop_patterns : list of str, optional
        Regular expressions of feature names dropped first; None: ``DEFAULT_DROP_PATTERNS``.
    feature_select, normalize, sphere : dict, optional
        The ``preprocess.cell_painting`` subsections (defaults: :mod:`morphotx.settings`).
    batch_rows : int, default 8192
        Rows per batch read and per row group written.

    Returns
    -------
    dict
        The report written to ``features_json``.
    """
    fs, norm, sph = recipe_settings(recipe, feature_select, normalize, sphere)
    patterns = DEFAULT_DROP_PATTERNS if drop_patterns is None else drop_patterns
    try:
        pf = pq.ParquetFile(profiles)
    except (pa.ArrowInvalid, OSError) as err:
        raise MorphotxInputError(f"{profiles}: not a readable Parquet file ({err}); re-run the harmonise rule.") from err
    names = pf.schema_arrow.names
    meta_cols = [c for c in names if c.startswith(S.META_PREFIX)]
    meta = attach_split(read_table(profiles, columns=meta_cols), read_table(split), profiles)
    all_feats = S.cp_feature_columns([c for c in names if not c.startswith(S.META_PREFIX)])
    other = [c for c in names if not c.startswith(S.META_PREFIX) and c not in all_feats]
    if other:
        log.warning("%d non-CellProfiler column(s) ignored (e.g. %s)", len(other), other[:5])
    ctl = meta[S.IS_CONTROL].astype(bool).to_numpy()
    fit_mask = meta[S.SPLIT].isin(["train", "control"]).to_numpy()
    groups = meta[S.PLATE].astype(str).to_numpy() if norm["by"] == "plate" else np.full(len(meta), "all")

    # pass 1: DMSO wells (raw) and missing values per feature in the fit rows
    dropped: dict[str, list[str]] = {}
    rx = re.compile("|".join(patterns)) if patterns else None
    dropped["non_intrinsic"] = [f for f in all_feats if rx and rx.search(f)]
    feats = [f for f in all_feats if f not in set(dropped["non_intrinsic"])]
    ctl_raw = np.empty((int(ctl.sum()), len(feats)), dtype=np.float32)
    n_na = np.zeros(len(feats), dtype=np.int64)
    at = 0
    for start, X in _batches(pf, feats, batch_rows):
        rows = slice(start, start + len(X))
        n_na += np.isnan(X[fit_mask[rows]]).sum(axis=0)
        c = X[ctl[rows]]
        ctl_raw[at:at + len(c)] = c
        at += len(c)
    if "drop_na_columns" in fs["operations"] or recipe == "study":  # pycytominer's get_na_columns: NaN share > cutoff
        prop = pd.Series(n_na, index=feats) / int(fit_mask.sum())
        dropped["drop_na_columns"] = sorted(prop.index[prop > fs["na_cutoff"]])
    ctl_df = pd.DataFrame(ctl_raw, columns=feats)
    ctl_df.insert(0, S.PLATE, meta.loc[ctl, S.PLATE].to_numpy())
    ctl_df.insert(1, S.IS_CONTROL, True)
    del ctl_raw
    keep = [f for f in feats if f not in set(dropped.get("drop_na_columns", []))]
    dropped["zero_dispersion_in_dmso"] = zero_dispersion_features(ctl_df, keep, norm["by"])
    feats = [f for f in keep if f not in set(dropped["zero_dispersion_in_dmso"])]
    ctl_X = ctl_df[feats].astype("float64")
    del ctl_df
    codes_all = pd.factorize(groups, sort=False)[0]

    # pass 2: the fit rows, then feature selection on them (pycytominer's operations)
    ops = [o for o in fs["operations"] if o != "drop_na_columns"]
    kw = {k: fs[k] for k in ("na_cutoff", "freq_cut", "unique_cut", "min_variance", "corr_threshold")}
    if recipe == "study":  # selection on raw features (float32, as read), then one global scaler
        F = _read_rows(pf, feats, fit_mask, batch_rows)
        ex = select_features_lean(F, feats, ops, batch_rows, **kw)
        del F
        gone = set().union(*ex.values())
        idx = [i for i, f in enumerate(feats) if f not in gone]
        feats = [feats[i] for i in idx]
        ctl_X = ctl_X[feats]
        scaler = _Normaliser(groups, ctl, ctl_X, norm["method"], norm["by"])
    else:  # normalise, then select on the normalised fit rows (float64)
        scaler = _Normaliser(groups, ctl, ctl_X, norm["method"], norm["by"])
        F = np.empty((int(fit_mask.sum()), len(feats)), dtype=np.float64)
        at = 0
        for start, X in _batches(pf, feats, batch_rows):
            m = fit_mask[start:start + len(X)]
            n = int(m.sum())
            F[at:at + n] = scaler(X[m], codes_all[start:start + len(X)][m])
            at += n
        ex = select_features_lean(F, feats, ops, batch_rows, **kw)
        del F
        gone = set().union(*ex.values())
        idx = [i for i, f in enumerate(feats) if f not in gone]
        feats = [feats[i] for i in idx]
        scaler.keep(idx)
        ctl_X = ctl_X[feats]
    dropped.update(ex)
    if not feats:
        raise MorphotxInputError(f"{profiles}: no Cell Painting feature survived selection; relax the "
                                 "preprocess.cell_painting.feature_select thresholds.")
    params = {"features": np.array(feats), "groups": np.array(scaler.names), "center": scaler.centers,
              "scale": scaler.scales}

    sp = None
    if sph["method"] != "none":  # fitted on the DMSO wells, normalised, missing values 0
        Xc = pd.DataFrame(scaler(ctl_X.to_numpy(np.float32), codes_all[ctl]), columns=feats).fillna(0.0)
        if len(Xc) < 2 * len(feats):
            log.warning("sphering fitted on %d DMSO wells for %d features; the estimate is regularised by "
                        "epsilon=%g but noisy (more DMSO wells or fewer features help)", len(Xc), len(feats),
                        sph["epsilon"])
        sp = Spherize(method=sph["method"], epsilon=float(sph["epsilon"]), center=True, return_numpy=True)
        _fit_one_blas_thread(sp, Xc)
        params["sphere_W"] = sp.W
        params["sphere_mean"] = sp.mean_centerer.mean_ if hasattr(sp, "mean_centerer") else sp.standard_scaler.mean_
        if hasattr(sp, "standard_scaler"):
            params["sphere_scale"] = sp.standard_scaler.scale_
        del Xc
    del ctl_X

    # pass 3: every batch normalised, selected, sphered, written as one row group
    out_meta = meta[S.meta_columns(meta)]
    meta_tbl = pa.Table.from_pandas(out_meta, preserve_index=False)
    zero = pd.DataFrame(np.zeros((0, len(feats)), np.float32), columns=feats)
    pandas_md = pa.Table.from_pandas(pd.concat([out_meta.iloc[:0], zero], axis=1), preserve_index=False).schema.metadata
    schema = pa.schema(list(meta_tbl.schema) + [pa.field(f, pa.float32()) for f in feats], metadata=pandas_md)
    settings = {"recipe": recipe, "drop_patterns": patterns, "feature_select": fs, "normalize": norm, "sphere": sph}
    report = {"n_input_features": len(all_feats), "n_kept": len(feats), "kept": feats,
              "dropped": dict(dropped), "settings": settings,
              "fit_rows": {"feature_select": int(fit_mask.sum()), "dmso": int(ctl.sum())}}
    n_nan, nan_feats = 0, np.zeros(len(feats), bool)
    with atomic_outputs(preprocessed, features_json, params_npz) as (t_out, t_json, t_npz):
        with pq.ParquetWriter(t_out, schema, **parquet_options(schema)) as writer:
            for start, X in _batches(pf, feats, batch_rows):
                Z = scaler(X, codes_all[start:start + len(X)])
                nan = np.isnan(Z)
                n_nan += int(nan.sum())
                nan_feats |= nan.any(axis=0)
                Z[nan] = 0.0
                if sp is not None:
                    Z = sp.transform(pd.DataFrame(Z, columns=feats, copy=False))
                cols = list(meta_tbl.slice(start, len(X)).columns)
                cols += [pa.array(np.ascontiguousarray(Z[:, j], dtype=np.float32)) for j in range(len(feats))]
                writer.write_table(pa.Table.from_arrays(cols, schema=schema))
        write_json(report, t_json)
        with open(t_npz, "wb") as fh:
            np.savez(fh, **params)
    if n_nan:
        log.info("%d missing value(s) in %d feature(s) set to 0 (the DMSO centre)", n_nan, int(nan_feats.sum()))
    log.info("Cell Painting (streamed): %d -> %d features (%s); %d profiles", len(all_feats), len(feats),
             {k: len(v) for k, v in dropped.items()}, len(meta))
    return report
