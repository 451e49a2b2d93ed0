"""The tables an evaluation job scores: embedding tables, the raw profiles beside them, variants.

An embedding table (:class:`Table`) is read from the embedding rule's Parquet file
(:func:`load_embedding`); :class:`RawFeatures` looks up the preprocessed profile each row came from,
for the raw baselines and the ``raw+`` variants (:func:`variant_matrix`). The row selections every
scorer shares (single-MoA rows, their label) live here too; the evaluation's settings are
:class:`morphotx.settings.EvaluateSettings`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler, normalize

from .. import schema as S
from ..io import read_table

log = logging.getLogger(__name__)

LEVELS = ("uncollapsed", "collapsed")
VARIANTS = ("uncollapsed", "collapsed", "raw+uncollapsed", "raw+collapsed")
OUTPUTS = ("classification", "per_moa", "embedding_metrics", "curves", "map", "predictions")
EVAL_SPLITS = ("validation", "test")
ZERO_SHOT_REASON = ("no validation or test MoA has a training compound (a MoA-disjoint split): a classifier "
                    "cannot predict unseen MoAs; the zero-shot score is the MoA mAP (headline.metric: moa_map)")

@dataclass
class Table:
    """One embedding (or raw-feature) table: metadata rows and the matching matrix."""

    view: str
    level: str
    meta: pd.DataFrame
    X: np.ndarray


def cyclic_pairs(meta: pd.DataFrame) -> np.ndarray:
    """Rows of a Cartesian pair table kept by a cyclic matching: within each treatment, the i-th
    Cell Painting replicate is paired with the (i mod n)-th L1000 replicate (and, when L1000 has
    more replicates, the j-th L1000 one with the (j mod m)-th Cell Painting one). Every replicate
    of both modalities appears, max(m, n) pairs per treatment instead of m × n, so no replicate is
    counted several times in the scores.
    """
    cp_id, l1_id = meta["Metadata_cp_profile_id"].astype(str), meta["Metadata_l1000_profile_id"].astype(str)
    t = meta[S.TREATMENT].astype(str)
    ci = cp_id.groupby(t).rank(method="dense").astype(int) - 1
    li = l1_id.groupby(t).rank(method="dense").astype(int) - 1
    m = ci.groupby(t).transform("max") + 1
    n = li.groupby(t).transform("max") + 1
    return ((li == ci % n) | (ci == li % m)).to_numpy()


def load_embedding(path: str, view: str, level: str, pairs: str = "all") -> Table:
    """An embedding table; ``pairs="cyclic"`` keeps a cyclic matching of a pair table's rows
    (:func:`cyclic_pairs`), ``"all"`` every Cartesian pair.
    """
    df = read_table(path)
    emb = [c for c in df.columns if c.startswith("emb_")]
    if not emb:
        raise ValueError(f"{path}: no emb_* columns; is this an embedding table written by embed_model?")
    if pairs not in ("cyclic", "all"):
        raise ValueError(f"evaluate.uncollapsed_pairs must be cyclic or all, got {pairs!r}")
    if pairs == "cyclic" and "Metadata_cp_profile_id" in df.columns:
        keep = cyclic_pairs(df)
        log.info("%s: %d of %d Cartesian pair rows kept by cyclic matching", path, int(keep.sum()), len(df))
        df = df[keep]
    return Table(view, level, df[S.meta_columns(df)].reset_index(drop=True), df[emb].to_numpy(np.float64))


def single_moa_rows(meta: pd.DataFrame) -> np.ndarray:
    """The rows of treated (non-control) profiles with exactly one MoA."""
    return (~meta[S.IS_CONTROL].astype(bool) & (meta[S.MOA].map(len) == 1)).to_numpy()


def moa_labels(meta: pd.DataFrame) -> np.ndarray:
    """Each row's MoA where it has one, else ``""``."""
    return meta[S.MOA].map(lambda m: m[0] if len(m) == 1 else "").to_numpy().astype(str)


# ---------------------------------------------------------------------------------------------
# raw features: the profiles each embedding row came from
# ---------------------------------------------------------------------------------------------
class RawFeatures:
    """Preprocessed replicate profiles and collapsed profiles of both modalities, looked up by the
    ids an embedding row carries.
    """

    def __init__(self, cp: str, l1000: str, cp_collapsed: str, l1000_collapsed: str):
        # each table is kept as its metadata and its feature matrix in the file's own dtype
        # (float32 for the preprocessed profiles): half the memory of a float64 copy, and a
        # lookup converts only the rows it returns
        self.tables, self._features = {}, {}
        for key, path in (("cp", cp), ("l1000", l1000), ("cp_collapsed", cp_collapsed),
                          ("l1000_collapsed", l1000_collapsed)):
            df = read_table(path)
            self._features[key] = df[S.feature_columns(df)].to_numpy()
            self.tables[key] = df[S.meta_columns(df)]
        self._index = {k: pd.Index(t[S.TREATMENT if k.endswith("collapsed") else S.PROFILE_ID].astype(str))
                       for k, t in self.tables.items()}

    def matrix(self, key: str) -> np.ndarray:
        """The feature matrix (float64) of one table: ``cp``, ``l1000``, ``cp_collapsed`` or ``l1000_collapsed``."""
        return self._features[key].astype(np.float64)

    def lookup(self, key: str, ids) -> np.ndarray:
        """Rows of table ``key``'s feature matrix for the given ids (profile ids, or treatments for
        the collapsed tables), in their order.

        Raises
        ------
        ValueError
            If an id has no row in the table (the embeddings were made from other preprocessed tables).
        """
        idx = self._index[key].get_indexer(pd.Index(np.asarray(ids).astype(str)))
        if (idx < 0).any():
            missing = np.asarray(ids)[idx < 0][:3]
            raise ValueError(f"{int((idx < 0).sum())} embedding row(s) have no {key} profile (e.g. {list(missing)}); "
                             "were the embeddings made from other preprocessed tables? Re-run the workflow.")
        return self._features[key][idx].astype(np.float64)

    def width(self, view: str) -> int:
        """The number of raw feature columns beside a ``view``'s embedding in the ``raw+`` variants."""
        return sum(self._features[m].shape[1] for m in S.modalities(view))

    def blocks(self, t: Table) -> list[np.ndarray]:
        """Raw feature blocks aligned with the rows of ``t`` (one per modality of its view)."""
        out = []
        for m in S.modalities(t.view):
            if t.level == "collapsed":
                out.append(self.lookup(f"{m}_collapsed", t.meta[S.TREATMENT]))
            elif t.view == "both":
                out.append(self.lookup(m, t.meta[f"Metadata_{m}_profile_id"]))
            else:
                out.append(self.lookup(m, t.meta[S.PROFILE_ID]))
        return out

    def paired_meta(self) -> pd.DataFrame:
        """Metadata of the treatments measured in both modalities (collapsed level), in the Cell
        Painting table's order: the rows of early and late fusion.
        """
        cp, l1k = self.tables["cp_collapsed"], self.tables["l1000_collapsed"]
        common = pd.Index(cp[S.TREATMENT].astype(str)).intersection(pd.Index(l1k[S.TREATMENT].astype(str)))
        return cp.set_index(cp[S.TREATMENT].astype(str)).loc[common].reset_index(drop=True)

    def table(self, view: str, level: str) -> Table:
        """The raw-feature baseline table of a modality (``cp`` / ``l1000``) or of early fusion
        (``both``, collapsed only: each block standardised on training rows, L2-normalised).
        """
        if view in ("cp", "l1000"):
            key = view if level == "uncollapsed" else f"{view}_collapsed"
            return Table(view, level, self.tables[key].reset_index(drop=True), self.matrix(key))
        meta = self.paired_meta()
        t = Table("both", "collapsed", meta, np.zeros((len(meta), 0)))
        train = (meta[S.SPLIT] == "train").to_numpy()
        t.X = np.hstack([_scale_block(b, train, copy=False) for b in self.blocks(t)])
        return t


def _scale_block(X: np.ndarray, train: np.ndarray, copy: bool = True) -> np.ndarray:
    """``X`` standardised on its ``train`` rows (all rows when none), then L2-normalised; in place
    with ``copy=False`` (a float64 block of one's own: LINCS-size raw blocks are ~0.5 GB each).
    """
    fit = X[train] if train.any() else X
    return normalize(StandardScaler(copy=copy).fit(fit).transform(X), copy=copy)


def variant_matrix(t: Table, variant: str, raw: RawFeatures) -> np.ndarray:
    """The matrix the classifiers see for one variant of an embedding table.

    Parameters
    ----------
    t : Table
        The embedding table.
    variant : str
        One of :data:`VARIANTS`; ``uncollapsed`` / ``collapsed`` use the embedding alone.
    raw : RawFeatures
        The preprocessed profiles the ``raw+`` variants append.

    Returns
    -------
    numpy.ndarray
        ``t.X`` for the embedding-only variants; for ``raw+`` ones the embedding and the matching raw
        feature blocks (:meth:`RawFeatures.blocks`), each standardised on training rows and
        L2-normalised, side by side (left unscaled when the embedding has NaN/inf, so the classifiers
        record those rows with a reason).
    """
    if not variant.startswith("raw+"):
        return t.X
    train = (t.meta[S.SPLIT] == "train").to_numpy()
    blocks = raw.blocks(t)
    if not np.isfinite(t.X).all():  # left unscaled: the classifiers record the NaN rows with a reason
        return np.hstack([t.X] + blocks)
    return np.hstack([_scale_block(t.X, train)] + [_scale_block(b, train, copy=False) for b in blocks])




def moa_compound_counts(meta: pd.DataFrame) -> pd.Series:
    """Number of distinct compounds of each single MoA, all splits."""
    m = meta[single_moa_rows(meta)]
    return m.assign(_m=moa_labels(m)).groupby("_m")[S.PERT].nunique()


def is_zero_shot(meta: pd.DataFrame) -> bool:
    """Whether there are single-MoA test rows but no validation or test MoA is among the training
    MoAs: the classifiers are then ``not_applicable`` (``split.mode: moa_disjoint``).
    """
    use, split, y = single_moa_rows(meta), meta[S.SPLIT].to_numpy(), moa_labels(meta)
    seen = set(y[use & (split == "train")])
    return bool((use & (split == "test")).any()) and not any(set(y[use & (split == s)]) & seen for s in EVAL_SPLITS)


def keyed_frame(rows, **keys) -> pd.DataFrame:
    """``rows`` as a frame with the ``keys`` columns added (an empty frame when there are none)."""
    return pd.DataFrame(rows).assign(**keys) if rows else pd.DataFrame()


def concat_nonempty(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The non-empty ``frames`` concatenated (an empty frame when there are none)."""
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

