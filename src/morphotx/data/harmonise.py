"""Harmonise one modality's replicate-level file into the typed schema of :mod:`morphotx.schema`.

What a dataset looks like is described by a format file (``resources/datasets/*.yaml``): a map
from source column to harmonised column, which source columns are required, how controls are
recognised and how features are recognised (name prefixes or suffixes). Adding a dataset means
writing one such file.

Documented handling of imperfect input (each reported in the log):

* ``inf``/``-inf`` feature values become NaN (feature selection drops NaN-heavy columns; the
  rest are imputed after normalisation, see :mod:`morphotx.prepare.preprocess`).
* L1000's missing-value code ``-666`` is read as missing.
* A compound without a MoA keeps an empty MoA list: it is split, preprocessed and paired like any
  other compound, and left out of MoA-supervised steps.
* A plate holding only controls is kept (its DMSO wells help normalisation).

Format options beyond the column map (CDRP-Bray, ``resources/datasets/cdrp_bray.yaml``):
``treatment`` (the file's own treatment-key column; the dose is then kept as written, not recoded
to ``harmonise.doses_uM``), ``control`` as a list of rules (a control when any matches),
``pert_id_chars`` (Broad ids cut to the compound id) and ``_row`` in ``profile_id`` (files without a
well or sample id).

Errors (one message naming file, column and fix; nothing written): missing required, control,
treatment-key or feature columns, duplicated column names, a treated row without a compound id or
treatment key, a treatment key naming two compounds, a dose that does not recode (unless
``on_bad_dose: drop``), duplicated profile ids, feature values 10⁶ robust SDs from
their feature's median (unless ``on_extreme: nan``; see :func:`extreme_values`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import schema as S
from ..io import NULLS, MorphotxInputError, read_table, require_columns, save_parquet
from ..settings import HarmoniseSettings, MoaSettings
from .formats import (
    _check_unknown,
    check_columns,
    control_rules,
    first_present,
    load_format,
    read_columns,
    source_columns,
    unknown_columns,
)

log = logging.getLogger(__name__)

STANDARD_DOSES = HarmoniseSettings().doses_uM  # harmonise.doses_uM's default
MISSING_CODES = {"-666", "-666.0", *NULLS}  # L1000's missing-value code and the null tokens of morphotx.io


def recode_dose(dose: np.ndarray, doses: Sequence[float] = STANDARD_DOSES, max_fold: float = 10.0):
    """Nearest standard dose (absolute difference, as the Rosetta scripts do).

    Returns ``(recoded, ok)``; ``ok`` is False for non-finite or non-positive doses and for doses
    more than ``max_fold`` away (ratio) from the dose they would be recoded to.
    """
    dose = np.asarray(dose, dtype=float)
    grid = np.asarray(sorted(doses), dtype=float)
    idx = np.abs(dose[:, None] - grid[None, :]).argmin(axis=1)
    rec = grid[idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        fold = np.maximum(dose / rec, rec / dose)
    ok = np.isfinite(dose) & (dose > 0) & (fold <= max_fold)
    return np.where(ok, rec, np.nan), ok


def treatment_key(pert_id: pd.Series, dose_recode: np.ndarray, is_control: np.ndarray) -> np.ndarray:
    """``<pert_id>_<dose:g>`` (e.g. ``BRD-K12345678_3.33``); ``DMSO`` for controls."""
    keys = [f"{p}_{d:g}" if not c else S.CONTROL for p, d, c in zip(pert_id, dose_recode, is_control)]
    return np.asarray(keys, dtype=object)


def parse_moa(values: pd.Series) -> list[list[str]]:
    """``'A|B'`` → ``['A', 'B']`` (sorted, unique, stripped, inner whitespace collapsed to one
    space); missing codes → ``[]``.
    """
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() in MISSING_CODES:
            out.append([])
        else:
            parts = (" ".join(m.split()) for m in str(v).split("|"))
            out.append(sorted({m for m in parts if m and m not in MISSING_CODES}))
    return out


def moa_key(moa: str) -> str:
    """What two spellings of one MoA share: letter case folded, whitespace collapsed."""
    return " ".join(moa.casefold().split())


def unify_moa_spellings(moas: list[list[str]], pert_ids, path: Path | str) -> list[list[str]]:
    """MoA lists with every MoA written one way: labels that differ only in letter case or
    whitespace (``CDK inhibitor`` / ``cdk  inhibitor``) would otherwise become separate classes.
    Each such group takes the spelling used by the most compounds (ties: the one that sorts first);
    the lists are re-sorted and de-duplicated afterwards. A warning counts and names the merged
    spellings.
    """
    compounds: dict[str, set] = {}
    for m, p in zip(moas, pert_ids):
        for x in m:
            compounds.setdefault(x, set()).add(p)
    groups: dict[str, list[str]] = {}
    for x in compounds:
        groups.setdefault(moa_key(x), []).append(x)
    canon, merged = {}, []
    for spellings in groups.values():
        best = min(spellings, key=lambda x: (-len(compounds[x]), x))
        canon.update({x: best for x in spellings})
        if len(spellings) > 1:
            merged.append((best, sorted(x for x in spellings if x != best)))
    if not merged:
        return moas
    merged.sort()
    shown = "; ".join(f"{others} -> {best!r}" for best, others in merged[:10])
    log.warning("%s: %d MoA label(s) are written in more than one way (letter case or whitespace) and were "
                "merged into one class each, the spelling used by most compounds kept: %s. Write each MoA one "
                "way in the source to silence this.", Path(path).name, len(merged), shown)
    return [sorted({canon[x] for x in m}) for m in moas]


def moa_from_map(pert_ids: pd.Series, map_path: str | Path, key_column: str = "broad_id",
                 moa_column: str = "moa") -> list[list[str]]:
    """MoA lists from an external annotation table (Drug Repurposing Hub layout).

    Several rows of one compound (salts, batches) contribute the union of their MoAs.
    """
    mp = read_table(map_path)
    require_columns(mp, (key_column, moa_column), map_path, "MoA map", "moa.map_key / moa.map_column")
    keys = mp[key_column].astype(str).str.slice(0, 13)
    lists = parse_moa(mp[moa_column])
    table: dict[str, set] = {}
    for k, m in zip(keys, lists):
        table.setdefault(k, set()).update(m)
    return [sorted(table.get(p, ())) for p in pert_ids]


EXTREME_SD = 1e6  # robust SDs from the median beyond which a value is a sentinel or unit error
EXTREME_ABS = 1e15  # the bound for features without spread (MAD 0)
EXTREME_ROWS = 10_000  # rows (evenly spaced) that estimate each feature's median and spread


def _columnwise(plain, nan_aware, X: np.ndarray) -> np.ndarray:
    """``nan_aware(X, axis=0)`` with the columns without NaN computed by ``plain`` in one call:
    the same values, but NumPy's NaN-aware median and quantile loop over columns one at a time
    whenever any value is NaN (several times slower at LINCS Cell Painting size).
    """
    has_nan = np.isnan(X).any(axis=0)
    if not has_nan.any():
        return plain(X, axis=0)
    first = plain(X[:, :1], axis=0)  # the output's shape: (columns,) or (quantiles, columns)
    out = np.empty(first.shape[:-1] + (X.shape[1],))
    if (~has_nan).any():
        out[..., ~has_nan] = plain(X[:, ~has_nan], axis=0)
    out[..., has_nan] = nan_aware(X[:, has_nan], axis=0)
    return out


def extreme_values(feats: pd.DataFrame) -> np.ndarray:
    """Boolean mask of values more than ``EXTREME_SD`` robust SDs from their feature's median (the
    SD: 1.4826 × MAD, at least 1/1000 of the feature's 1–99 % range; median, MAD and range from at
    most ``EXTREME_ROWS`` evenly spaced rows), or beyond ``EXTREME_ABS`` in a feature without spread. CellProfiler and
    L1000 features have heavy tails, but not 10⁶ robust SDs: such values are sentinels (1e30,
    -9999 in a 0–1 feature) or unit errors, and a few of them in DMSO wells break sphering.
    """
    X = feats.to_numpy(dtype=np.float64)
    if not len(X):
        return np.zeros(X.shape, bool)
    # the centre and spread from at most EXTREME_ROWS evenly spaced rows (deterministic): a value
    # 10⁶ robust SDs out is flagged whether the SD is estimated from 10,000 rows or from 50,000,
    # and the medians over every row of a LINCS-size table are slow
    S_ = X if len(X) <= EXTREME_ROWS else X[np.linspace(0, len(X) - 1, EXTREME_ROWS).astype(np.int64)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN features
        med = _columnwise(np.median, np.nanmedian, S_)
        lo, hi = _columnwise(lambda a, axis: np.quantile(a, [0.01, 0.99], axis=axis),
                             lambda a, axis: np.nanquantile(a, [0.01, 0.99], axis=axis), S_)
        # the spread: the MAD, but at least a thousandth of the central 98 % range, so that a
        # feature that is mostly one value (MAD 0 or tiny) is not judged by a near-zero MAD
        scale = np.maximum(1.4826 * _columnwise(np.median, np.nanmedian, np.abs(S_ - med)), 1e-3 * (hi - lo))
    # row blocks: no full-size temporaries (each was ~0.6 GB at LINCS size)
    spread = scale > 0  # False also where the scale is NaN (an all-NaN feature)
    limit = np.where(spread, EXTREME_SD * scale, np.inf)
    far = np.empty(X.shape, bool)
    for i in range(0, len(X), 8192):
        block = X[i:i + 8192]
        with np.errstate(invalid="ignore"):
            f = np.abs(block - med) > limit
            if not spread.all():
                f[:, ~spread] = np.abs(block[:, ~spread]) > EXTREME_ABS
        far[i:i + 8192] = f & np.isfinite(block)
    return far


def _check_extreme(feats: pd.DataFrame, ids: pd.Series, path: Path, on_extreme: str) -> pd.DataFrame:
    if on_extreme not in ("error", "nan"):
        raise ValueError(f"harmonise.on_extreme must be 'error' or 'nan', got {on_extreme!r}")
    far = extreme_values(feats)
    if not far.any():
        return feats
    rows, cols = np.nonzero(far)
    ex = [f"{feats.columns[c]} = {feats.iat[r, c]:.3g} in {ids.iloc[r]}" for r, c in zip(rows[:3], cols[:3])]
    msg = (f"{path}: {int(far.sum())} feature value(s) in {len(set(cols))} feature(s) are more than "
           f"{EXTREME_SD:.0e} robust SDs from their feature's median (e.g. {ex}): sentinels or unit errors?")
    if on_extreme == "error":
        raise MorphotxInputError(msg + " Fix them, or set harmonise.on_extreme: nan to treat them as missing.")
    log.warning("%s Set to NaN (harmonise.on_extreme: nan).", msg)
    return feats.mask(far)


def _controls_and_ids(df: pd.DataFrame, out: pd.DataFrame, fmt: dict, header, colmap: dict,
                      path: Path) -> np.ndarray:
    """Set ``Metadata_pert_id`` (controls: ``DMSO``; an empty id: the first 13 characters of
    broad_sample; with the format's ``pert_id_chars``, Broad ids cut to that many characters) and
    ``Metadata_is_control`` on ``out``; a treated row without id is an error. A row is a control
    when any of the format's control rules (:func:`morphotx.data.formats.control_rules`) matches.
    """
    is_control = np.zeros(len(df), bool)
    ctl_cols = []
    for rule in control_rules(fmt):
        col = first_present(rule["column"], header)
        if col in df.columns:
            ctl_cols.append(col)
            is_control |= df[col].astype(str).isin([str(v) for v in rule["values"]]).to_numpy()
    pert = out[S.PERT] if S.PERT in out else pd.Series([None] * len(out), dtype=object)
    pert = pert.astype(object).where(~pert.astype(str).isin(MISSING_CODES) & pert.notna(), None)
    if "broad_sample" in fmt:
        bs = df[fmt["broad_sample"]].astype(str).str.slice(0, 13)
        pert = pert.fillna(pd.Series(np.where(bs.str.startswith("BRD-"), bs, None), index=pert.index))
    if fmt.get("pert_id_chars"):  # e.g. a full sample id BRD-K12345678-001-01-1 -> its compound BRD-K12345678
        n = int(fmt["pert_id_chars"])
        pert = pert.map(lambda p: p[:n] if isinstance(p, str) and p.startswith("BRD-") else p)
    pert = pd.Series(np.where(is_control, S.CONTROL, pert), dtype=object)
    no_id = pert.isna().to_numpy()
    if no_id.any():
        col = next(c for c, h in colmap.items() if h == S.PERT) if S.PERT in colmap.values() else fmt.get("broad_sample")
        raise MorphotxInputError(
            f"{path}: {int(no_id.sum())} treated row(s) have no compound id in column '{col}' "
            f"(first rows: {list(np.where(no_id)[0][:5])}). Fill the id, mark them as controls in "
            f"{' or '.join(repr(c) for c in ctl_cols)}, or remove them.")
    out[S.PERT] = pert.to_numpy()
    out[S.IS_CONTROL] = is_control
    return is_control


def _doses(df: pd.DataFrame, out: pd.DataFrame, colmap: dict, is_control: np.ndarray, path: Path, doses,
           max_dose_fold: float, on_bad_dose: str, treatment_col: str | None = None) -> np.ndarray:
    """Set the dose, recoded dose and treatment key on ``out``; return the rows to drop (doses
    that do not recode, under ``on_bad_dose: drop``; otherwise they are an error).

    Without ``treatment_col`` (LINCS) the key is ``<pert_id>_<dose recoded to doses>``. With it
    (the format's ``treatment``; CDRP: ``Metadata_Sample_Dose`` / ``pert_sample_dose``, the columns
    the data set's authors pair on) the key is that column as written, and the recoded dose is the
    dose as written (no grid: CDRP's doses are per-compound concentrations, mostly one per compound);
    a treated row needs a key and a positive dose, and one key must name one compound.
    """
    dose_src = next(c for c, h in colmap.items() if h == S.DOSE)
    dose = pd.to_numeric(df[dose_src], errors="coerce").to_numpy(dtype=float, copy=True)
    dose[dose == -666] = np.nan
    if treatment_col is None:
        rec, ok = recode_dose(dose, doses, max_dose_fold)
        rule = f"does not recode to the standard doses {list(doses)} within {max_dose_fold}-fold"
        fix = "Fix the doses, extend harmonise.doses_uM, or set harmonise.on_bad_dose: drop to drop these rows."
    else:
        ok = np.isfinite(dose) & (dose > 0)
        rec = np.where(ok, dose, np.nan)
        rule = "is missing, not a number or not positive"
        fix = "Fix the doses, or set harmonise.on_bad_dose: drop to drop these rows."
    bad = ~ok & ~is_control
    if bad.any():
        ex = pd.DataFrame({"pert_id": out.loc[bad, S.PERT], "dose": df.loc[bad, dose_src].to_numpy()})  # as written
        ex = ex.drop_duplicates().head(5)
        msg = f"{path}: {int(bad.sum())} treated row(s) have a dose in '{dose_src}' that {rule} (e.g. {ex.to_dict('records')})."
        if on_bad_dose != "drop":
            raise MorphotxInputError(f"{msg} {fix}")
        log.warning("%s Dropping them (harmonise.on_bad_dose: drop).", msg)
    out[S.DOSE] = np.where(is_control, np.nan, dose)
    out[S.DOSE_RECODE] = np.where(is_control, np.nan, rec)
    if treatment_col is None:
        out[S.TREATMENT] = treatment_key(out[S.PERT], rec, is_control)
    else:
        out[S.TREATMENT] = _file_treatment(df[treatment_col], out[S.PERT], is_control, treatment_col, path)
    return bad


def _file_treatment(key: pd.Series, pert: pd.Series, is_control: np.ndarray, column: str, path: Path) -> np.ndarray:
    """The treatment key as the file writes it (controls: ``DMSO``); errors for a treated row without
    a key and for a key shared by two compounds (pairing and the compound split would disagree).
    """
    key = key.astype("string").str.strip()
    missing = (key.isna() | key.isin(list(MISSING_CODES))).to_numpy() & ~is_control
    if missing.any():
        raise MorphotxInputError(
            f"{path}: {int(missing.sum())} treated row(s) have no treatment key in column '{column}' (first rows: "
            f"{list(np.where(missing)[0][:5])}). Fill the key, mark them as controls, or remove them.")
    trt = ~is_control
    per_key = pd.DataFrame({"key": key[trt].to_numpy(), "pert": pert[trt].to_numpy()}).groupby("key")["pert"].nunique()
    shared = per_key[per_key > 1]
    if len(shared):
        ex = {k: sorted(set(pert[trt][key[trt] == k]))[:3] for k in shared.index[:3]}
        raise MorphotxInputError(
            f"{path}: {len(shared)} treatment key(s) in column '{column}' name more than one compound (e.g. {ex}); "
            "a key must be one compound at one dose. Fix the keys or the compound ids (the format's pert_id column).")
    return np.where(is_control, S.CONTROL, key.to_numpy(dtype=object, na_value=None)).astype(object)


def _moas(out: pd.DataFrame, is_control: np.ndarray, path: Path, modality: str, moa_source: str, moa_map,
          moa_map_key: str, moa_map_column: str) -> None:
    """Set ``Metadata_moa`` (a list per row; controls empty) from the file or the MoA map; warn with
    the count of compounds without one.
    """
    if moa_source == "map":
        if moa_map is None:
            raise MorphotxInputError("moa.source is 'map' but moa.map is not set; name the annotation table.")
        moas = moa_from_map(out[S.PERT], moa_map, moa_map_key, moa_map_column)
    elif S.MOA in out:
        moas = parse_moa(out[S.MOA])
    else:
        raise MorphotxInputError(
            f"{path}: no MoA column mapped to {S.MOA} for {modality}; set moa.source: map and moa.map.")
    moas = [[] if c else m for m, c in zip(moas, is_control)]
    out[S.MOA] = unify_moa_spellings(moas, out[S.PERT], moa_map if moa_source == "map" else path)
    n_trt_cpd = out.loc[~is_control, S.PERT].nunique()
    no_moa = out.loc[~is_control & (out[S.MOA].str.len() == 0), S.PERT].unique()
    if len(no_moa):
        log.warning("%s: %d of %d compounds have no MoA annotation; kept, and left out of MoA-supervised "
                    "steps (e.g. %s)", path.name, len(no_moa), n_trt_cpd, list(no_moa[:5]))


ROW_TOKEN = "_row"  # in a format's profile_id: the row's position in the file


def _profile_ids(df: pd.DataFrame, out: pd.DataFrame, fmt: dict, path: Path) -> None:
    if S.PROFILE_ID not in out:
        id_cols = fmt.get("profile_id", [])
        if id_cols:  # column-wise string concatenation (a row-wise join is far slower at LINCS size)
            # ROW_TOKEN: the row's position in the file (files without a well or sample id: CDRP L1000)
            parts = [pd.Series(np.arange(len(df)), index=df.index).astype(str) if c == ROW_TOKEN else df[c].astype(str)
                     for c in id_cols]
            ids = parts[0]
            for p in parts[1:]:
                ids = ids + ":" + p
            if ids.isna().any():
                empty = [c for c in id_cols if c != ROW_TOKEN and df[c].isna().any()]
                raise MorphotxInputError(f"{path}: {int(ids.isna().sum())} row(s) have no value in profile-id "
                                         f"column(s) {empty}; every profile needs {' + '.join(id_cols)}")
            out[S.PROFILE_ID] = ids
        else:
            out[S.PROFILE_ID] = np.arange(len(df)).astype(str)
    dup = out[S.PROFILE_ID].duplicated()
    if dup.any():
        raise MorphotxInputError(
            f"{path}: {int(dup.sum())} duplicated profile id(s) (e.g. {out.loc[dup, S.PROFILE_ID].head(3).tolist()}); "
            "each plate/well (or cid) must appear once.")


def _features(df: pd.DataFrame, features: list[str], ids: pd.Series, path: Path, on_extreme: str) -> pd.DataFrame:
    """The feature block as float32: inf → NaN (warned), absurd values checked, NaN counted."""
    feats = df[features].astype("float32")
    inf = np.isinf(feats.to_numpy())
    if inf.any():
        cols = feats.columns[inf.any(axis=0)]
        log.warning("%s: %d inf value(s) in %d feature(s) (e.g. %s) set to NaN: written as inf in the source, or "
                    "beyond float32's ±3.4e38 (overflowed when read)", path.name, int(inf.sum()), len(cols),
                    list(cols[:5]))
        feats = feats.mask(np.isinf(feats))
    feats = _check_extreme(feats, ids, path, on_extreme)
    na = feats.isna().sum()
    if na.any():
        log.warning("%s: %d missing value(s) in %d feature(s) (most: %s); feature selection drops NaN-heavy "
                    "features, the rest are set to the DMSO centre after normalisation", path.name, int(na.sum()),
                    int((na > 0).sum()), na.sort_values(ascending=False).head(5).to_dict())
    return feats


def _warn_plates(out: pd.DataFrame, path: Path) -> None:
    plates = out.groupby(S.PLATE)[S.IS_CONTROL].agg(["all", "any"])
    for plate in plates.index[plates["all"]]:
        log.warning("%s: plate %s holds only controls; kept (used for normalisation only)", path.name, plate)
    for plate in plates.index[~plates["any"]]:
        log.warning("%s: plate %s has no control wells; per-plate normalisation cannot use it", path.name, plate)


def harmonise(
    profiles: str | Path,
    output: str | Path,
    format_path: str | Path,
    modality: str,
    settings: HarmoniseSettings = HarmoniseSettings(),
    moa: MoaSettings = MoaSettings(),
    moa_map: str | Path | None = None,
    source: str | Path | None = None,
) -> pd.DataFrame:
    """Read one replicate-level file of ``modality``, ``profiles``, write the harmonised Parquet to
    ``output`` and return it.

    Parameters
    ----------
    profiles : str or Path
        The converted file (Parquet, from the ``convert`` step).
    output : str or Path
        The harmonised Parquet written: the common metadata schema (:mod:`morphotx.schema`), then
        the features.
    format_path : str or Path
        The data set's format file (``resources/datasets/*.yaml``): which source column is which
        metadata column.
    modality : {"cell_painting", "l1000"}
        The section of ``format_path`` that applies.
    settings : HarmoniseSettings, default HarmoniseSettings()
        The ``harmonise`` config section: dose recoding to the nearest of ``doses_uM`` (within
        ``max_dose_fold``), bad doses (``error`` or ``drop``), extreme values (``error`` or ``nan``)
        and the largest fraction of unknown columns (0.02).
    moa : MoaSettings, default MoaSettings()
        The ``moa`` config section: MoAs from the profiles' own column (``file``) or from
        ``moa_map`` (``map``, joined on ``map_key``, read from ``map_column``).
    moa_map : str or Path, optional
        The MoA table, needed when ``moa.source`` is ``map``.
    source : str or Path, optional
        The user's file that ``profiles`` was converted from, named in every message about its
        content; by default the one the ``convert`` step recorded in the Parquet file
        (:func:`morphotx.data.convert.converted_from`), else ``profiles`` itself.

    Returns
    -------
    pandas.DataFrame
        The harmonised table as written.
    """
    from .convert import converted_from

    s = settings
    path = Path(profiles)
    named = Path(source) if source is not None else (converted_from(path) or path)  # what messages name
    fmt = load_format(format_path, modality)
    header = read_columns(path)
    features = check_columns(header, fmt, named, format_path, modality)
    _check_unknown(unknown_columns(header, features, fmt), len(features), named, format_path, s.max_unknown_columns)
    colmap = source_columns(header, fmt["columns"])
    present = [c for c in colmap if c in header]
    extra_meta = [c for c in header if c not in features and c not in fmt["columns"]]
    df = read_table(path, feature_columns=features, string_columns=[c for c in present + extra_meta
                                                                     if colmap.get(c) != S.DOSE])
    out = pd.DataFrame({colmap[c]: df[c] for c in present})
    for c in extra_meta:  # keep other annotations, prefixed (never over a harmonised column)
        name = c if c.startswith(S.META_PREFIX) else S.META_PREFIX + c
        if name not in out:
            out[name] = df[c]
    is_control = _controls_and_ids(df, out, fmt, header, colmap, named)
    bad = _doses(df, out, colmap, is_control, named, s.doses_uM, s.max_dose_fold, s.on_bad_dose, fmt.get("treatment"))
    _moas(out, is_control, named, modality, moa.source, moa_map, moa.map_key, moa.map_column)
    _profile_ids(df, out, fmt, named)
    feats = _features(df, features, out[S.PROFILE_ID], named, s.on_extreme)
    _warn_plates(out, named)

    order = [S.PROFILE_ID, S.PLATE, S.WELL, S.PERT, S.IS_CONTROL, S.DOSE, S.DOSE_RECODE, S.TREATMENT, S.MOA]
    meta = [c for c in order if c in out] + sorted(c for c in out.columns if c not in order)
    result = pd.concat([out[meta].reset_index(drop=True), feats.reset_index(drop=True)], axis=1)
    result = result.loc[~bad].reset_index(drop=True)
    for c in meta:
        if c not in (S.IS_CONTROL, S.DOSE, S.DOSE_RECODE, S.MOA):
            result[c] = result[c].astype("string")
    save_parquet(result, output)
    log.info("%s: %s %d profiles (%d controls), %d compounds, %d treatments, %d features -> %s", named.name, modality,
             len(result), int(result[S.IS_CONTROL].sum()), result.loc[~result[S.IS_CONTROL], S.PERT].nunique(),
             result.loc[~result[S.IS_CONTROL], S.TREATMENT].nunique(),
             len(features), output)
    return result
