"""Training data for the models: feature matrices, units of training, labels, batches.

Everything is gathered batch by batch from the preprocessed per-modality matrices through row
positions; no Cartesian feature matrix is ever built.

Units of training (``unit`` in a model's config):

``replicates``  single-modality replicate profiles (Cell Painting wells or L1000 samples).
``pairs``       rows of the pair index (one Cell Painting replicate × one L1000 replicate of the
                same treatment: the study's Cartesian pairing, as positions).
``collapsed``   one item per treatment: the median profile of its replicates in each modality
                (computed here from the same matrices the model reads).
``sets``        one item per treatment: all its replicates in each modality (padded + masked),
                for set-level models with attention pooling.

Only treated compounds with a split (``train`` / ``validation`` / ``test``) are units; DMSO wells
are embedded later but never trained on. A treatment whose set is empty in a modality the unit
needs is skipped and counted in the log.

MoA labels are multi-hot over the MoAs of training treatments (``moa_vocab``) followed by the
MoAs only validation treatments have (so a MoA-disjoint split still has validation positives for
the validation loss and mAP); a test compound's MoA absent from both has no column (the test
split's labels are never read), and a treatment without any known MoA gets an all-zero row (no
positive in SupCon).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import schema as S
from ..io import MorphotxInputError, read_table

log = logging.getLogger(__name__)


@dataclass
class Modality:
    """One preprocessed modality: its feature matrix, metadata, feature names and each row's treatment code."""

    X: np.ndarray  # float32, profiles × features
    meta: pd.DataFrame
    features: list[str]
    treat: np.ndarray  # treatment code per row (-1: control / not a treatment of the table)


@dataclass
class Items:
    """A list of training units of one split. ``rows[m]`` is an int array of row positions into
    the matrix ``source[m]`` (``replicates`` / ``pairs`` / ``collapsed``) or a list of int arrays
    (``sets``).
    """

    unit: str
    treat: np.ndarray
    rows: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    split: str = ""  # train | validation | ... (for messages)

    def __len__(self) -> int:
        return len(self.treat)


class ModelData:
    """The two preprocessed modalities, the pair index and the treatment table."""

    def __init__(self, cp_path: str, l1000_path: str, pairs_path: str, sets_path: str):
        self.sets = read_table(sets_path)
        self.pairs = read_table(pairs_path)
        self.treatments = self.sets[[S.TREATMENT, S.PERT, S.DOSE_RECODE, S.MOA, S.SPLIT]].reset_index(drop=True)
        self._code = code = {t: i for i, t in enumerate(self.treatments[S.TREATMENT])}
        self.compound = pd.factorize(self.treatments[S.PERT].astype(str))[0]  # compound code per treatment
        self.mod: dict[str, Modality] = {}
        for m, path in (("cp", cp_path), ("l1000", l1000_path)):
            df = read_table(path)
            feats = S.feature_columns(df)
            # row-major: every batch gathers rows, much slower from pandas' column-major copy
            X = np.ascontiguousarray(df[feats].to_numpy(dtype=np.float32, na_value=np.nan))
            if not np.isfinite(X).all():
                raise MorphotxInputError(f"{path}: {int((~np.isfinite(X)).sum())} non-finite feature value(s); "
                                         "the preprocessing step should have removed them — re-run it.")
            treat = df[S.TREATMENT].astype(str).map(code).fillna(-1).astype(int).to_numpy()
            self.mod[m] = Modality(X, df[S.meta_columns(df)].reset_index(drop=True), feats, treat)
        split = self.treatments[S.SPLIT].astype(str).to_numpy()
        self.moa_vocab = sorted({m for moas in self.treatments.loc[split == "train", S.MOA] for m in list(moas)})
        val_only = sorted({m for moas in self.treatments.loc[split == "validation", S.MOA] for m in list(moas)}
                          - set(self.moa_vocab))
        index = {m: i for i, m in enumerate(self.moa_vocab + val_only)}
        self.labels = np.zeros((len(self.treatments), len(index)), np.float32)
        for i, moas in enumerate(self.treatments[S.MOA]):
            if split[i] not in ("train", "validation"):
                continue
            for m in list(moas):
                if m in index:
                    self.labels[i, index[m]] = 1.0
        self._collapsed: dict[str, np.ndarray] = {}
        self._set_rows = {m: [np.asarray(list(v), dtype=np.int64) for v in self.sets[f"{m}_rows"]]
                          for m in S.MODALITIES}

    # -----------------------------------------------------------------------------------------
    def dim(self, m: str) -> int:
        """Number of input features of modality ``m`` (``cp`` or ``l1000``)."""
        return self.mod[m].X.shape[1]

    def features(self, m: str) -> list[str]:
        """Input feature names of modality ``m``, in matrix column order."""
        return self.mod[m].features

    def collapsed(self, m: str) -> np.ndarray:
        """Median profile per treatment (rows aligned with ``self.treatments``; NaN when absent)."""
        if m not in self._collapsed:
            X = self.mod[m].X
            out = np.full((len(self.treatments), X.shape[1]), np.nan, np.float32)
            for i, rows in enumerate(self._set_rows[m]):
                if len(rows):
                    out[i] = np.median(X[rows], axis=0)
            self._collapsed[m] = out
        return self._collapsed[m]

    def matrix(self, source: str) -> np.ndarray:
        """The matrix behind an item source: ``<m>:rows`` (replicate profiles) or ``<m>:collapsed``
        (:meth:`collapsed`).
        """
        m, kind = source.split(":")
        return self.mod[m].X if kind == "rows" else self.collapsed(m)

    def permuted(self, modalities: tuple[str, ...], rng: np.random.Generator,
                 splits: tuple[str, ...] = ("train", "validation")) -> ModelData:
        """A copy whose profiles of ``modalities`` have every feature permuted independently across
        the rows of each split in ``splits`` (Chow 2022's shuffled control: "independently shuffling
        the rows of each column, thus removing all correlation between features"); each feature
        keeps its values and its distribution within the split, rows of other splits are unchanged.
        Collapsed profiles are recomputed from the permuted rows.
        """
        import copy

        out = copy.copy(self)
        out.mod, out._collapsed = dict(self.mod), {}
        split = self.treatments[S.SPLIT].astype(str).to_numpy()
        for m in modalities:
            mod = self.mod[m]
            X = mod.X.copy()
            for s in splits:
                rows = np.flatnonzero((mod.treat >= 0) & (split[np.maximum(mod.treat, 0)] == s))
                for j in range(X.shape[1]):
                    X[rows, j] = X[rows[rng.permutation(len(rows))], j]
            out.mod[m] = Modality(X, mod.meta, mod.features, mod.treat)
        return out

    # -----------------------------------------------------------------------------------------
    def items(self, unit: str, split: str, modalities: tuple[str, ...]) -> Items:
        """Training units of ``split`` that have data in every modality of ``modalities``."""
        items = self._items(unit, split, modalities)
        items.split = split
        return items

    def _items(self, unit: str, split: str, modalities: tuple[str, ...]) -> Items:
        in_split = self.treatments[S.SPLIT].astype(str).to_numpy() == split
        if unit == "replicates":
            if len(modalities) != 1:
                raise ValueError("unit 'replicates' is for single-modality models; use pairs, collapsed or sets")
            m = modalities[0]
            t = self.mod[m].treat
            rows = np.flatnonzero((t >= 0) & in_split[np.maximum(t, 0)])
            return Items(unit, t[rows], {m: rows}, {m: f"{m}:rows"})
        if unit == "pairs":
            keep = self.pairs[S.SPLIT].astype(str).to_numpy() == split
            treat = self.pairs.loc[keep, S.TREATMENT].astype(str).map(self._code).to_numpy().astype(np.int64)
            rows = {"cp": self.pairs.loc[keep, "cp_row"].to_numpy(np.int64),
                    "l1000": self.pairs.loc[keep, "l1000_row"].to_numpy(np.int64)}
            return Items(unit, treat, {m: rows[m] for m in modalities}, {m: f"{m}:rows" for m in modalities})
        if unit in ("collapsed", "sets"):
            have = np.ones(len(self.treatments), bool)
            for m in modalities:
                have &= self.sets[f"n_{m}"].to_numpy() > 0
            skipped = int((in_split & ~have).sum())
            if skipped:
                log.info("%s/%s: %d %s treatment(s) skipped: empty replicate set in %s", unit, split, skipped,
                         split, " or ".join(modalities))
            idx = np.flatnonzero(in_split & have)
            if unit == "collapsed":
                return Items(unit, idx, {m: idx for m in modalities}, {m: f"{m}:collapsed" for m in modalities})
            return Items(unit, idx, {m: [self._set_rows[m][i] for i in idx] for m in modalities},
                         {m: f"{m}:rows" for m in modalities})
        raise ValueError(f"unknown unit {unit!r}; expected replicates, pairs, collapsed or sets")

    def gather(self, items: Items, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Arrays of one batch: ``{m}`` (B×d, or B×S×d with ``{m}_mask`` for sets), ``labels``,
        ``treat``, ``compound`` (the compound code of each item).
        """
        out: dict[str, np.ndarray] = {"treat": items.treat[idx], "labels": self.labels[items.treat[idx]],
                                      "compound": self.compound[items.treat[idx]]}
        for m, rows in items.rows.items():
            X = self.matrix(items.source[m])
            if items.unit == "sets":
                sets = [rows[i] for i in idx]
                smax = max(len(s) for s in sets)
                arr = np.zeros((len(sets), smax, X.shape[1]), np.float32)
                mask = np.zeros((len(sets), smax), bool)
                for j, s in enumerate(sets):
                    arr[j, :len(s)] = X[s]
                    mask[j, :len(s)] = True
                out[m], out[f"{m}_mask"] = arr, mask
            else:
                out[m] = X[rows[idx]]
        return out

    def fit_rows(self, items: Items, m: str) -> np.ndarray:
        """The training profiles of modality ``m`` behind ``items`` (for input standardisation)."""
        rows = items.rows[m]
        X = self.matrix(items.source[m])
        if items.unit == "sets":
            return X[np.unique(np.concatenate(rows))]
        return X[np.unique(rows)]


# ---------------------------------------------------------------------------------------------
# batch samplers
# ---------------------------------------------------------------------------------------------
def random_batches(n: int, batch_size: int, rng: np.random.Generator, shuffle: bool = True) -> list[np.ndarray]:
    """Batches of ``batch_size`` item indices out of ``range(n)`` (shuffled by ``rng`` unless
    ``shuffle`` is False); the last batch may be smaller.
    """
    order = rng.permutation(n) if shuffle else np.arange(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def moa_batches(labels: np.ndarray, moas_per_batch: int, per_moa: int, n_batches: int,
                rng: np.random.Generator, split: str = "train") -> list[np.ndarray]:
    """Batches of ``moas_per_batch`` MoAs × ``per_moa`` items each, so every item drawn has at
    least ``per_moa - 1`` same-MoA partners in its batch. Items are indexed under each of their
    MoAs (multi-MoA items can be drawn for any of them); a MoA with fewer items than ``per_moa``
    is drawn with replacement. Items without a MoA are never drawn.
    """
    by_moa = [np.flatnonzero(labels[:, c] > 0) for c in range(labels.shape[1])]
    classes = np.array([c for c, rows in enumerate(by_moa) if len(rows) >= 1])
    if len(classes) == 0:
        raise MorphotxInputError(
            f"no {split} item has a MoA label: SupCon's batches need MoA-annotated {split} compounds "
            "(check the MoA annotations of the split, e.g. with moa.source / split.mode)")
    k = min(moas_per_batch, len(classes))
    out = []
    for _ in range(n_batches):
        chosen = rng.choice(classes, size=k, replace=False)
        parts = [rng.choice(by_moa[c], size=per_moa, replace=len(by_moa[c]) < per_moa) for c in chosen]
        out.append(np.concatenate(parts))
    return out


def distinct_compound_batches(compound: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches in which no compound appears twice (``compound``: the compound code of each item).

    A contrastive loss counts every other item of a batch as a negative. Doses of one compound share
    their MoA and usually their phenotype; counting them as negatives teaches the model to separate
    doses rather than mechanisms (and replicates of one treatment would be negatives of each other).
    Each round draws one random item per compound, shuffled and cut into batches; there are as many
    rounds as needed for one pass over the items on average.
    """
    groups = pd.Series(np.arange(len(compound))).groupby(compound).indices
    members = list(groups.values())
    n_rounds = max(1, int(np.ceil(len(compound) / max(len(members), 1))))
    out = []
    for _ in range(n_rounds):
        pick = np.array([g[rng.integers(len(g))] for g in members])
        pick = pick[rng.permutation(len(pick))]
        out.extend(pick[i:i + batch_size] for i in range(0, len(pick), batch_size))
    return out
