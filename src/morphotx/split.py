"""Split compounds into train / validation / test; a compound lives in one split only.

``mode: compound`` (default) — compounds are split at random, stratified by their MoA label
(the sorted ``|``-joined MoA set). Labels with too few compounds to be spread over the three
splits are pooled into one "rare" stratum, so stratification holds where it is possible and the
split still works for rare MoAs. Unannotated compounds form their own stratum.

``mode: moa_disjoint`` — the zero-shot setting: no MoA appears in two splits. A compound with
two MoAs ties them together, so the unit of assignment is a connected component of the
compound–MoA graph; components are dealt to splits (largest first, then at random) so that each
split's compound count approaches its target fraction.

The table has one row per compound in either modality: ``Metadata_pert_id``, ``Metadata_moa``
(``|``-joined), ``Metadata_split``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import train_test_split

from . import schema as S
from .io import MorphotxInputError, read_table, save_parquet

log = logging.getLogger(__name__)


def compound_table(*profiles: pd.DataFrame) -> pd.DataFrame:
    """One row per treated compound with its MoA string. Where modalities disagree on a
    compound's MoA, the first table (Cell Painting) wins and the conflict is logged."""
    parts = []
    for i, df in enumerate(profiles):
        t = df.loc[~df[S.IS_CONTROL].astype(bool), [S.PERT, S.MOA]].copy()
        t[S.MOA] = t[S.MOA].map(S.moa_string)
        t = t.drop_duplicates(S.PERT)
        t["source"] = i
        parts.append(t)
    allc = pd.concat(parts, ignore_index=True)
    per = allc.groupby(S.PERT)[S.MOA].nunique()
    conflict = per.index[per > 1]
    if len(conflict):
        log.warning("%d compound(s) have different MoAs in the two modalities; the Cell Painting annotation "
                    "is used (e.g. %s)", len(conflict), list(conflict[:5]))
    return allc.sort_values([S.PERT, "source"]).drop_duplicates(S.PERT)[[S.PERT, S.MOA]].reset_index(drop=True)


def _check_fractions(fractions: dict) -> tuple[float, float, float]:
    f = tuple(float(fractions[k]) for k in S.SPLITS)
    if any(x < 0 for x in f) or abs(sum(f) - 1) > 1e-6 or f[0] == 0 or f[2] == 0:
        raise MorphotxInputError(f"split.fractions {dict(zip(S.SPLITS, f))} must be non-negative, sum to 1, "
                                 "and give train and test a positive share.")
    return f


def split_compounds(compounds: pd.DataFrame, fractions: dict, seed: int, mode: str = "compound",
                    stratify: bool = True) -> pd.DataFrame:
    f_train, f_val, f_test = _check_fractions(fractions)
    cpd = compounds.sort_values(S.PERT).reset_index(drop=True)
    if len(cpd) < 3:
        raise MorphotxInputError(f"only {len(cpd)} compound(s) in the data; at least 3 are needed to split.")
    if mode == "compound":
        split = _split_stratified(cpd, (f_train, f_val, f_test), seed, stratify)
    elif mode == "moa_disjoint":
        split = _split_moa_disjoint(cpd, (f_train, f_val, f_test), seed)
    else:
        raise ValueError(f"split.mode must be 'compound' or 'moa_disjoint', got {mode!r}")
    out = cpd.assign(**{S.SPLIT: split})
    counts = out[S.SPLIT].value_counts().reindex(S.SPLITS, fill_value=0).to_dict()
    log.info("split (%s, seed %d): %s compounds", mode, seed, counts)
    return out


def _strata(labels: pd.Series, min_count: int) -> np.ndarray:
    counts = labels.value_counts()
    rare = counts.index[counts < min_count]
    strata = labels.where(~labels.isin(rare), "__rare__").to_numpy()
    if (strata == "__rare__").sum() and (strata == "__rare__").sum() < min_count:
        # too few rare compounds for a stratum of their own: join the largest stratum
        strata[strata == "__rare__"] = counts.index[0]
    return strata


def _split_stratified(cpd: pd.DataFrame, f, seed: int, stratify: bool) -> np.ndarray:
    idx = np.arange(len(cpd))
    labels = cpd[S.MOA].replace("", "__unannotated__")
    n_val, n_test = int(round(f[1] * len(cpd))), max(1, int(round(f[2] * len(cpd))))

    def tts(ix, size, lab, stage):
        strat = _strata(lab, 2) if stratify else None
        try:
            return train_test_split(ix, test_size=size, random_state=seed, stratify=strat)
        except ValueError as err:  # more strata than compounds on one side: fall back to random
            log.info("%s: cannot stratify by MoA (%s); split at random", stage, err)
            return train_test_split(ix, test_size=size, random_state=seed)

    train, hold = tts(idx, n_val + n_test, labels, "train vs held-out")
    split = np.empty(len(cpd), dtype=object)
    split[train] = "train"
    if n_val == 0:
        split[hold] = "test"
        return split
    val, test = tts(hold, n_test, labels.iloc[hold].reset_index(drop=True), "validation vs test")
    split[val] = "validation"
    split[test] = "test"
    return split


def _split_moa_disjoint(cpd: pd.DataFrame, f, seed: int) -> np.ndarray:
    moa_lists = [m.split("|") if m else [f"__none__{p}"] for m, p in zip(cpd[S.MOA], cpd[S.PERT])]
    moas = sorted({m for ms in moa_lists for m in ms})
    mi = {m: i for i, m in enumerate(moas)}
    rows = [i for i, ms in enumerate(moa_lists) for _ in ms]
    cols = [len(cpd) + mi[m] for ms in moa_lists for m in ms]
    n = len(cpd) + len(moas)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    comp = comp[: len(cpd)]
    sizes = pd.Series(comp).value_counts()
    rng = np.random.default_rng(seed)
    # largest components first (ties at random), each to the split furthest below its target
    order = sorted(sizes.index, key=lambda c: (-sizes[c], rng.random()))
    target = np.array(f) * len(cpd)
    filled = np.zeros(3)
    assign = {}
    for c in order:
        k = int(np.argmax((target - filled) / np.maximum(target, 1e-9)))
        assign[c] = k
        filled[k] += sizes[c]
    if sizes.iloc[0] > target[0]:
        log.warning("moa_disjoint: one group of MoAs linked by multi-MoA compounds holds %d of %d compounds; "
                    "split fractions will be off target", sizes.iloc[0], len(cpd))
    return np.array([S.SPLITS[assign[c]] for c in comp], dtype=object)


def split_files(inputs: list[str], output: str, fractions: dict, seed: int, mode: str = "compound",
                stratify: bool = True) -> pd.DataFrame:
    tables = [read_table(p, columns=[S.PERT, S.IS_CONTROL, S.MOA]) for p in inputs]
    out = split_compounds(compound_table(*tables), fractions, seed, mode, stratify)
    save_parquet(out, output)
    return out
