"""Split compounds into train / validation / test; a compound lives in one split only.

``mode: compound`` (default) — compounds are split at random, stratified by their MoA label
(the sorted ``|``-joined MoA set). Labels with too few compounds to be spread over the three
splits are pooled into one "rare" stratum, so stratification holds where it is possible and the
split still works for rare MoAs. Unannotated compounds form their own stratum.

``folds: K`` (K ≥ 2) — repetitions for the headline protocol: compound-grouped K-fold
cross-validation (Haghighi et al. 2022 used stratified group k-fold over compounds). The
compounds are dealt to K folds (stratified by MoA in ``compound`` mode, by connected MoA group in
``moa_disjoint`` mode); fold ``f`` is the test set of repetition ``f``; from the other compounds a
share ``fractions.validation`` (of all compounds) becomes the validation set (stratified likewise)
and the rest is training. The test share is then 1/K, so ``fractions.train`` and
``fractions.test`` are not used. Every compound is a test compound in exactly one fold.
``folds: 1`` is a single split by ``fractions``.

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
from sklearn.model_selection import GroupKFold, StratifiedKFold, train_test_split

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
                    stratify: bool = True, folds: int = 1, fold: int = 0) -> pd.DataFrame:
    """Assign every compound to ``train`` / ``validation`` / ``test``.

    ``folds == 1``: one split by ``fractions``. ``folds ≥ 2``: repetition ``fold`` of a
    compound-grouped K-fold (see the module docstring); test = fold ``fold``."""
    if mode not in ("compound", "moa_disjoint"):
        raise MorphotxInputError(f"split.mode must be 'compound' or 'moa_disjoint', got {mode!r}")
    folds, fold = int(folds), int(fold)
    if folds < 1 or not 0 <= fold < folds:
        raise MorphotxInputError(f"split.folds is {folds} and fold {fold} was asked; folds must be ≥ 1 and "
                                 "the fold in 0..folds-1")
    cpd = compounds.sort_values(S.PERT).reset_index(drop=True)
    if folds == 1:
        f = _check_fractions(fractions)
        if len(cpd) < 3:
            raise MorphotxInputError(f"only {len(cpd)} compound(s) in the data; at least 3 are needed to split.")
        split = (_split_stratified(cpd, f, seed, stratify) if mode == "compound"
                 else _split_moa_disjoint(cpd, f, seed))
    else:
        split = _split_fold(cpd, float(fractions.get("validation", 0.0)), seed, mode, stratify, folds, fold)
    out = cpd.assign(**{S.SPLIT: split})
    counts = out[S.SPLIT].value_counts().reindex(S.SPLITS, fill_value=0).to_dict()
    log.info("split (%s, seed %d, fold %d of %d): %s compounds", mode, seed, fold, folds, counts)
    return out


def _components(cpd: pd.DataFrame) -> np.ndarray:
    """Connected component of each compound in the compound–MoA graph (MoAs shared by several
    compounds tie them together; an unannotated compound is its own component)."""
    moa_lists = [m.split("|") if m else [f"__none__{p}"] for m, p in zip(cpd[S.MOA], cpd[S.PERT])]
    moas = sorted({m for ms in moa_lists for m in ms})
    mi = {m: i for i, m in enumerate(moas)}
    rows = [i for i, ms in enumerate(moa_lists) for _ in ms]
    cols = [len(cpd) + mi[m] for ms in moa_lists for m in ms]
    n = len(cpd) + len(moas)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1][: len(cpd)]


def _check_validation_share(f_val: float, folds: int) -> None:
    if not 0 <= f_val < 1 - 1 / folds:
        raise MorphotxInputError(f"split.fractions.validation is {f_val}; with {folds} folds it must be in "
                                 f"[0, {1 - 1 / folds:.2f})")


def check_split_config(split: dict) -> None:
    """The checks of the ``split`` config section that need no data (run when the workflow starts,
    so a bad value stops it before any job): the mode, the fold count, and the fractions (all three
    with ``folds: 1``; the validation share with ``folds ≥ 2``)."""
    if split.get("mode", "compound") not in ("compound", "moa_disjoint"):
        raise MorphotxInputError(f"split.mode must be 'compound' or 'moa_disjoint', got {split.get('mode')!r}")
    folds = int(split.get("folds", 1))
    if folds < 1:
        raise MorphotxInputError(f"split.folds is {folds}; it must be ≥ 1")
    if folds == 1:
        _check_fractions(split["fractions"])
    else:
        _check_validation_share(float(split["fractions"].get("validation", 0.0)), folds)


def _split_fold(cpd: pd.DataFrame, f_val: float, seed: int, mode: str, stratify: bool, folds: int,
                fold: int) -> np.ndarray:
    if len(cpd) < 2 * folds:
        raise MorphotxInputError(f"split.folds is {folds} but the data hold {len(cpd)} compounds; use at most "
                                 f"{max(1, len(cpd) // 2)} folds")
    _check_validation_share(f_val, folds)
    idx = np.arange(len(cpd))
    if mode == "compound":
        labels = cpd[S.MOA].replace("", "__unannotated__")
        strata = _strata(labels, folds) if stratify else np.zeros(len(cpd))
        kf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        test = list(kf.split(idx, strata))[fold][1]
    else:
        comp = _components(cpd)
        if len(np.unique(comp)) < folds:
            raise MorphotxInputError(f"split.mode moa_disjoint: only {len(np.unique(comp))} group(s) of MoAs linked "
                                     f"by shared compounds, fewer than split.folds = {folds}")
        # GroupKFold is deterministic in the group sizes: shuffle the group ids with the seed first
        perm = np.random.default_rng(seed).permutation(int(comp.max()) + 1)
        test = list(GroupKFold(n_splits=folds).split(idx, groups=perm[comp]))[fold][1]
    split = np.full(len(cpd), "train", dtype=object)
    split[test] = "test"
    n_val = int(round(f_val * len(cpd)))
    rest = np.setdiff1d(idx, test)
    if n_val > 0:
        rest_cpd = cpd.iloc[rest].reset_index(drop=True)
        if mode == "compound":
            val = _split_stratified_two(rest_cpd, n_val, seed, stratify)
        else:
            val = _split_moa_disjoint(rest_cpd, (1 - n_val / len(rest), n_val / len(rest), 0.0), seed)
            val = np.flatnonzero(val == "validation")
        split[rest[val]] = "validation"
    return split


def _split_stratified_two(cpd: pd.DataFrame, n_hold: int, seed: int, stratify: bool) -> np.ndarray:
    """Positions of ``n_hold`` compounds drawn from ``cpd`` stratified by MoA where possible."""
    labels = cpd[S.MOA].replace("", "__unannotated__")
    idx = np.arange(len(cpd))
    try:
        return train_test_split(idx, test_size=n_hold, random_state=seed,
                                stratify=_strata(labels, 2) if stratify else None)[1]
    except ValueError as err:
        log.info("validation: cannot stratify by MoA (%s); drawn at random", err)
        return train_test_split(idx, test_size=n_hold, random_state=seed)[1]


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
    comp = _components(cpd)
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
                stratify: bool = True, folds: int = 1, fold: int = 0) -> pd.DataFrame:
    """Read the harmonised tables ``inputs``, split their compounds, write ``output``."""
    tables = [read_table(p, columns=[S.PERT, S.IS_CONTROL, S.MOA]) for p in inputs]
    out = split_compounds(compound_table(*tables), fractions, seed, mode, stratify, folds, fold)
    save_parquet(out, output)
    return out
