"""Embeddings of every treatment and replicate, in all splits, from a trained checkpoint.

For each view of the model (``both`` / ``cp`` / ``l1000``, see :mod:`.families`) two tables:

``uncollapsed``  one row per replicate (``cp`` / ``l1000`` views: every well or sample, DMSO
                 included) or per pair of the pair index (``both``: every Cell Painting × L1000
                 replicate pair of a treatment).
``collapsed``    one row per treatment (DMSO: one row). ``collapse="features"`` (default, study
                 000's definition): the embedding of the treatment's median profile (``both``: of
                 its median Cell Painting and median L1000 profiles) — the input the
                 concatenation VAEs were trained on, and what checkpoint selection scores.
                 ``collapse="embeddings"``: the median of its uncollapsed embeddings. Set-level models (``unit: sets``) always use the model's own
                 attention-pooled embedding of all the treatment's replicates — the quantity the
                 model was trained to align.

Columns: ``Metadata_*`` (treatment, compound, dose, MoA list, split, control flag, profile ids,
number of profiles) then ``emb_000`` … float32.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from .. import schema as S
from ..io import MorphotxInputError, atomic_outputs, write_parquet
from ..settings import EvaluateSettings, TrainSettings
from .config import HyperParameters, views, with_tuned
from .data import ModelData
from .train import load_model, select_device

log = logging.getLogger(__name__)

REPLICATE_META = [S.PROFILE_ID, S.PLATE, S.WELL, S.PERT, S.TREATMENT, S.DOSE_RECODE, S.MOA, S.SPLIT, S.IS_CONTROL]
TREATMENT_META = [S.TREATMENT, S.PERT, S.DOSE_RECODE, S.MOA, S.SPLIT, S.IS_CONTROL]


def _emb_frame(meta: pd.DataFrame, Z: np.ndarray) -> pd.DataFrame:
    cols = pd.DataFrame(Z.astype(np.float32), columns=[f"emb_{i:03d}" for i in range(Z.shape[1])])
    return pd.concat([meta.reset_index(drop=True), cols], axis=1)


@torch.no_grad()
def _encode_rows(fam, model, view, arrays: dict[str, np.ndarray], device, rows: dict[str, np.ndarray] | None = None,
                 batch: int = 4096) -> np.ndarray:
    """Encode ``arrays`` a batch at a time; with ``rows``, the rows ``arrays[m][rows[m]]``, gathered per batch
    (the pairs of the ``both`` view: 141,390 × 2,142 values at LINCS size are never materialised at once).
    """
    n = len(next(iter((rows or arrays).values())))
    out = []
    for i in range(0, n, batch):
        chunk = {m: a[rows[m][i:i + batch]] if rows else a[i:i + batch] for m, a in arrays.items()}
        out.append(fam.encode(model, view, chunk, device).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _uncollapsed(fam, model, data: ModelData, view: str, device) -> pd.DataFrame:
    if view in ("cp", "l1000"):
        mod = data.mod[view]
        Z = _encode_rows(fam, model, view, {view: mod.X}, device)
        meta = mod.meta[[c for c in REPLICATE_META if c in mod.meta.columns]].copy()
        meta["Metadata_n_profiles"] = 1
        return _emb_frame(meta, Z)
    pairs = data.pairs
    arrays = {m: data.mod[m].X for m in ("cp", "l1000")}
    rows = {m: pairs[f"{m}_row"].to_numpy() for m in ("cp", "l1000")}
    Z = _encode_rows(fam, model, view, arrays, device, rows=rows)
    tmeta = data.treatments.set_index(S.TREATMENT)
    meta = pd.DataFrame({
        "Metadata_cp_profile_id": pairs["cp_id"].to_numpy(), "Metadata_l1000_profile_id": pairs["l1000_id"].to_numpy(),
        S.PERT: pairs[S.PERT].to_numpy(), S.TREATMENT: pairs[S.TREATMENT].to_numpy(),
        S.DOSE_RECODE: pairs[S.TREATMENT].map(tmeta[S.DOSE_RECODE]).to_numpy(),
        S.MOA: pairs[S.TREATMENT].map(tmeta[S.MOA]).to_numpy(),
        S.SPLIT: pairs[S.SPLIT].to_numpy(),
        S.IS_CONTROL: (pairs[S.TREATMENT].astype(str) == S.CONTROL).to_numpy(),
        "Metadata_n_profiles": 2,
    })
    return _emb_frame(meta, Z)


COLLAPSE = ("features", "embeddings")


def _treatment_meta(unc: pd.DataFrame, keys, n_profiles) -> pd.DataFrame:
    first = unc.assign(_k=unc[S.TREATMENT].astype(str)).drop_duplicates("_k").set_index("_k").loc[list(keys)]
    meta = first[[c for c in TREATMENT_META if c in first.columns]].reset_index(drop=True)
    meta["Metadata_n_profiles"] = np.asarray(n_profiles, dtype=np.int64)
    return meta


def _median_collapse(unc: pd.DataFrame) -> pd.DataFrame:
    """The median of each treatment's uncollapsed embeddings (``collapse="embeddings"``)."""
    emb = [c for c in unc.columns if c.startswith("emb_")]
    keys = unc[S.TREATMENT].astype(str)
    med = unc.groupby(keys, sort=True)[emb].median()
    return _emb_frame(_treatment_meta(unc, med.index, unc.groupby(keys, sort=True).size()), med.to_numpy())


def _treatment_rows(data: ModelData, mods) -> dict[str, dict[str, np.ndarray]]:
    return {m: data.mod[m].meta[S.TREATMENT].astype(str).groupby(data.mod[m].meta[S.TREATMENT].astype(str)).indices
            for m in mods}


def _feature_collapse(fam, model, data: ModelData, view: str, unc: pd.DataFrame, device) -> pd.DataFrame:
    """The embedding of each treatment's median profile(s) (``collapse="features"``): the
    treatments of ``unc`` (``both``: those with a pair), DMSO included where ``unc`` has it.
    """
    mods = S.modalities(view)
    groups = _treatment_rows(data, mods)
    keys = sorted(set(unc[S.TREATMENT].astype(str)).intersection(*[set(g) for g in groups.values()]))
    arrays = {m: np.stack([np.median(data.mod[m].X[groups[m][k]], axis=0) for k in keys]).astype(np.float32)
              if keys else np.zeros((0, data.dim(m)), np.float32) for m in mods}
    Z = _encode_rows(fam, model, view, arrays, device)
    return _emb_frame(_treatment_meta(unc, keys, [sum(len(groups[m][k]) for m in mods) for k in keys]), Z)


def _set_chunks(order: list[str], size: dict[str, int], batch: int, max_rows: int):
    """Consecutive chunks of ``order`` (sorted by set size) of at most ``batch`` sets and at most ``max_rows``
    padded rows (sets × the largest set of the chunk); a set larger than ``max_rows`` is a chunk of its own.
    Without the row cap, the last chunk pads 255 sets to the size of the DMSO set (every control well):
    3.9 GB for one array at LINCS size.
    """
    chunk, smax = [], 0
    for k in order:
        if chunk and (len(chunk) >= batch or (len(chunk) + 1) * max(smax, size[k]) > max_rows):
            yield chunk
            chunk, smax = [], 0
        chunk.append(k)
        smax = max(smax, size[k])
    if chunk:
        yield chunk


@torch.no_grad()
def _pooled_collapse(fam, model, data: ModelData, view: str, unc: pd.DataFrame, device, batch: int = 256,
                     max_rows: int = 65536):
    mods = S.modalities(view)
    groups = _treatment_rows(data, mods)
    keys = sorted(set.intersection(*[set(g) for g in groups.values()]))
    if view == "both":
        paired = set(unc[S.TREATMENT].astype(str))
        keys = [k for k in keys if k in paired]
    # chunks of similar set size, so a large set (DMSO: every control well) pads nothing else
    order = sorted(keys, key=lambda k: (sum(len(groups[m][k]) for m in mods), k))
    size = {k: max(len(groups[m][k]) for m in mods) for k in order}
    Z = []
    for chunk in _set_chunks(order, size, batch, max_rows):
        sets = {}
        for m in mods:
            rows = [groups[m][k] for k in chunk]
            smax = max(len(r) for r in rows)
            X = data.mod[m].X
            arr = np.zeros((len(rows), smax, X.shape[1]), np.float32)
            mask = np.zeros((len(rows), smax), bool)
            for j, r in enumerate(rows):
                arr[j, :len(r)], mask[j, :len(r)] = X[r], True
            sets[m], sets[f"{m}_mask"] = arr, mask
        Z.append(fam.pool(model, view, sets, device).float().cpu().numpy())
    pos = {k: i for i, k in enumerate(order)}
    Z = np.concatenate(Z)[[pos[k] for k in keys]] if order else np.zeros((0, 0), np.float32)
    return _emb_frame(_treatment_meta(unc, keys, [sum(len(groups[m][k]) for m in mods) for k in keys]), Z)


def embed_model(name: str, hp: HyperParameters, train: TrainSettings, checkpoint: str, cp: str, l1000: str,
                pairs: str, sets: str, outputs: dict[str, str], threads: int = 1,
                collapse: str = EvaluateSettings.collapse, tuned: str | None = None) -> dict[str, pd.DataFrame]:
    """Write ``outputs[f"{view}_{level}"]`` for every view of the model and level
    (``uncollapsed`` / ``collapsed``).

    Parameters
    ----------
    name, hp, train
        As in :func:`.train.train_model`.
    checkpoint : str
        The trained weights (``checkpoint.pt``; checked against the model and its inputs).
    cp, l1000 : str
        The fold's preprocessed Cell Painting and L1000 profiles (Parquet).
    pairs, sets : str
        The fold's pairing index and treatment sets (``pairs/fold<f>/pair_index.parquet``,
        ``treatment_sets.parquet``).
    outputs : dict of str to str
        ``{view}_{level}`` → Parquet path, for exactly the model's views
        (:func:`morphotx.models.views`) and both levels; written together.
    threads : int, default 1
        PyTorch CPU threads.
    collapse : {"features", "embeddings"}, default: ``EvaluateSettings.collapse``
        How the collapsed level is formed (config ``evaluate.collapse``; see the module docstring):
        the embedding of each treatment's median profile, or the median of its uncollapsed
        embeddings. Set-pooling contrastive models always pool their sets.
    tuned : str, optional
        The split's ``best.yaml`` of ``tune`` the model was trained with (``tune.apply``).

    Returns
    -------
    dict of str to pandas.DataFrame
        The tables as written, by ``{view}_{level}``.

    Raises
    ------
    ValueError
        ``collapse`` is unknown, or ``outputs`` does not match the model's views.
    """
    hp = with_tuned(name, hp, tuned)
    if collapse not in COLLAPSE:
        raise ValueError(f"evaluate.collapse must be one of {COLLAPSE}, got {collapse!r}")
    torch.set_num_threads(max(1, int(threads)))
    data = ModelData(cp, l1000, pairs, sets)
    device = select_device(train.device)
    model, fam, hp, ts = load_model(name, hp, train, checkpoint, data, device)
    frames: dict[str, pd.DataFrame] = {}
    for view in views(hp):
        unc = _uncollapsed(fam, model, data, view, device)
        pooled = hp.family == "contrastive" and hp.unit == "sets"
        col = (_pooled_collapse(fam, model, data, view, unc, device) if pooled
               else _feature_collapse(fam, model, data, view, unc, device) if collapse == "features"
               else _median_collapse(unc))
        frames[f"{view}_uncollapsed"], frames[f"{view}_collapsed"] = unc, col
        log.info("%s view %s: %d uncollapsed rows, %d treatments, dimension %d", name, view, len(unc), len(col),
                 unc.shape[1] - sum(c.startswith("Metadata_") for c in unc.columns))
    missing = sorted(set(outputs) - set(frames))
    extra = sorted(set(frames) - set(outputs))
    if missing or extra:
        raise ValueError(f"{name}: outputs {sorted(outputs)} do not match the model's views {sorted(frames)}")
    keys = sorted(outputs)
    with atomic_outputs(*[outputs[k] for k in keys]) as tmps:
        for k, t in zip(keys, tmps):
            write_parquet(frames[k], t)
    return frames


class _Shapes:
    """What a family's ``build`` reads of the training data: the input dimension per modality."""

    def __init__(self, features: dict[str, list[str]]):
        self.features_ = features

    def dim(self, m: str) -> int:
        return len(self.features_[m])


def _aligned(df: pd.DataFrame, features: list[str], what: str) -> np.ndarray:
    missing = [f for f in features if f not in df.columns]
    if missing:
        raise MorphotxInputError(
            f"{what}: {len(missing)} of the model's {len(features)} input features are missing (e.g. {missing[:5]}); "
            "embed profiles preprocessed like the model's training data (same feature selection)")
    X = df[features].to_numpy(np.float32, na_value=np.nan)
    if not np.isfinite(X).all():
        raise MorphotxInputError(f"{what}: {int((~np.isfinite(X).all(1)).sum())} row(s) with NaN/inf features")
    return X


def embed_profiles(checkpoint: str, cp: pd.DataFrame | None = None, l1000: pd.DataFrame | None = None,
                   view: str = "cp") -> pd.DataFrame:
    """Embed new profiles with a trained model, outside the workflow.

    Ha 2025's use case: a new compound measured in Cell Painting only, embedded by a model trained
    on both assays (``view="cp"``: the Cell Painting encoder of the contrastive models, SupCon with
    the L1000 branch zeroed, a Cell Painting VAE). ``view="l1000"`` takes ``l1000``; ``view="both"``
    takes both, row ``i`` of ``cp`` paired with row ``i`` of ``l1000``.

    Parameters
    ----------
    checkpoint : str
        A ``models/<model>/fold<f>/seed<s>/checkpoint.pt`` written by the workflow.
    cp, l1000 : pandas.DataFrame, optional
        Preprocessed profiles (the workflow's ``profiles/fold<f>/*_preprocessed.parquet`` or profiles
        processed with the same recipe): every input feature of the model must be a column; other
        columns (metadata) are carried over.
    view : {"cp", "l1000", "both"}
        Which encoder; the model must have it (:func:`morphotx.models.views`).

    Returns
    -------
    pandas.DataFrame
        The metadata columns of the input (``Metadata_*``; of ``cp`` for ``both``) and ``emb_000`` …
    """
    from .config import resolve
    from .train import build_model, read_checkpoint

    ck = read_checkpoint(checkpoint)
    hp = resolve(ck["model"], {k: v for k, v in ck["hyperparameters"].items() if v is not None})
    if view not in views(hp):
        raise MorphotxInputError(f"model {ck['model']!r} ({hp.family}) has the views {views(hp)}, not {view!r}")
    needs = {"cp": ("cp",), "l1000": ("l1000",), "both": ("cp", "l1000")}[view]
    given = {"cp": cp, "l1000": l1000}
    absent = [m for m in needs if given[m] is None]
    if absent:
        raise MorphotxInputError(f"view {view!r} needs the {' and '.join(absent)} profiles")
    if view == "both" and len(cp) != len(l1000):
        raise MorphotxInputError(f"view 'both' pairs row i of cp with row i of l1000; got {len(cp)} and {len(l1000)} rows")
    model, fam = build_model(ck, hp, float(ck.get("input_clip", 10.0)), _Shapes(ck["features"]))
    arrays = {m: _aligned(given[m], ck["features"][m], f"{m} profiles") for m in needs}
    Z = _encode_rows(fam, model, view, arrays, torch.device("cpu"))
    meta_src = given[needs[0]]
    return _emb_frame(meta_src[[c for c in meta_src.columns if c.startswith(S.META_PREFIX)]], Z)

