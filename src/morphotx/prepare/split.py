"""Split compounds (or, in ``well_holdout`` mode, wells) into train / validation / test; in the
compound modes a compound lives in one split only.

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

``repeats: R`` — repeated K-fold with re-drawn partitions: the workflow's fold index ``f`` runs
over ``R × K`` splits; split ``f`` is fold ``f mod K`` of the partition drawn with seed
``seed + f // K`` (:func:`fold_of`). A repetition of the headline is such a split: a new
partition of the compounds, never a new training seed.

``mode: moa_disjoint`` — the zero-shot setting: no MoA appears in two splits. A compound with
two MoAs ties them together, so the unit of assignment is a connected component of the
compound–MoA graph; units are dealt to splits (largest first, then at random) so that each
split's compound count approaches its target fraction. Multi-MoA compounds often link most MoAs
into one component (the demo's and LINCS's annotations do); a component larger than half the
smallest split's target is therefore broken into its MoAs, and a compound whose MoAs then land in
two splits is left out of every split (``Metadata_split = excluded``: not trained on, not scored;
counted in a warning). With folds, the MoAs are dealt to the folds the same way: the test set of
fold ``f`` holds the compounds whose MoAs all lie in fold ``f``; the compounds with no MoA there
are the training and validation candidates; the others are excluded in that fold.

``mode: well_holdout`` — Wong 2023's well-holdout scheme (MOAProfiler's main analysis): wells,
not compounds, are held out, so **the test compounds are also training compounds and this is not
an unseen-compound test** (a warning says so when the workflow starts, and the headline carries
it). The unit is a replicate slot: the i-th replicate (by profile id) of a treatment in each
modality, so a treatment's Cell Painting and L1000 replicate i land in the same split and the
pair views keep same-split pairs. Slots are split stratified by compound (scikit-learn's
stratified ``train_test_split`` / ``StratifiedKFold``; compounds with too few slots pooled as
above), so every compound's slots are spread ~``fractions`` over the splits (Wong 2023: 60/10/30,
``folds: 1``; with ``folds ≥ 2`` each fold of the slots is the test set once). The paper removed
the test wells of MoAs represented by one compound (a single-compound MoA cannot be told apart
from its compound); here a test slot of a compound whose MoAs do not all have two or more
compounds (and of an unannotated compound) is ``excluded``: trained on nowhere, scored nowhere.
The table then has one row per treated profile: ``Metadata_profile_id``, ``Metadata_pert_id``,
``Metadata_pert_id_dose``, ``Metadata_moa``, ``Metadata_split``; preprocessing maps the split by
profile id and appends ``@<split>`` to the treatment key, so pairing, treatment sets and collapsed
profiles never mix the splits of one compound-dose.

In the compound modes the table has one row per compound in either modality: ``Metadata_pert_id``, ``Metadata_moa``
(``|``-joined), ``Metadata_split`` (``train`` / ``validation`` / ``test``, and ``excluded`` in
``moa_disjoint`` mode).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import StratifiedKFold, train_test_split

from .. import schema as S
from ..configcheck import (
    WELL_HOLDOUT_WARNING,
    check_fractions,
    check_mode,
    check_validation_share,
)
from ..data.harmonise import unify_moa_spellings
from ..io import MorphotxInputError, read_table, save_parquet
from ..settings import SplitSettings

log = logging.getLogger(__name__)


def compound_table(*profiles: pd.DataFrame) -> pd.DataFrame:
    """One row per treated compound with its MoA string. Where modalities disagree on a
    compound's MoA, the first table (Cell Painting) wins and the conflict is logged.
    """
    parts = []
    for i, df in enumerate(profiles):
        t = df.loc[~df[S.IS_CONTROL].astype(bool), [S.PERT, S.MOA]].copy()
        t[S.MOA] = t[S.MOA].map(S.moa_string)
        t = t.drop_duplicates(S.PERT)
        t["source"] = i
        parts.append(t)
    allc = pd.concat(parts, ignore_index=True)
    # one spelling per MoA across the modalities too (each file was unified when harmonised)
    lists = [m.split("|") if m else [] for m in allc[S.MOA]]
    allc[S.MOA] = [S.moa_string(m) for m in unify_moa_spellings(lists, allc[S.PERT], "the two modalities")]
    per = allc.groupby(S.PERT)[S.MOA].nunique()
    conflict = per.index[per > 1]
    if len(conflict):
        log.warning("%d compound(s) have different MoAs in the two modalities; the Cell Painting annotation "
                    "is used (e.g. %s)", len(conflict), list(conflict[:5]))
    return allc.sort_values([S.PERT, "source"]).drop_duplicates(S.PERT)[[S.PERT, S.MOA]].reset_index(drop=True)


def split_compounds_frame(compounds: pd.DataFrame, fractions: dict, seed: int, mode: str = "compound",
                          stratify: bool = True, folds: int = 1, fold: int = 0) -> pd.DataFrame:
    """Assign every compound to ``train`` / ``validation`` / ``test``.

    ``folds == 1``: one split by ``fractions``. ``folds ≥ 2``: repetition ``fold`` of a
    compound-grouped K-fold (see the module docstring); test = fold ``fold``. The compound modes
    only; ``well_holdout`` splits profiles (:func:`split_wells`).
    """
    if mode not in ("compound", "moa_disjoint"):
        raise MorphotxInputError(f"split_compounds: split.mode must be 'compound' or 'moa_disjoint', got {mode!r}"
                                 + ("; well_holdout splits profiles: use split_wells" if mode == "well_holdout" else ""))
    folds, fold = int(folds), int(fold)
    if folds < 1 or not 0 <= fold < folds:
        raise MorphotxInputError(f"split.folds is {folds} and fold {fold} was asked; folds must be ≥ 1 and "
                                 "the fold in 0..folds-1")
    cpd = compounds.sort_values(S.PERT).reset_index(drop=True)
    if folds == 1:
        f = check_fractions(fractions)
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


EXCLUDED = "excluded"


def fold_of(index: int, folds: int, seed: int) -> tuple[int, int, int]:
    """The split behind the workflow's fold ``index`` under ``split.repeats``.

    Parameters
    ----------
    index : int
        The workflow's fold index (``0 … repeats × folds − 1``).
    folds : int
        ``split.folds`` (K, the folds of one partition).
    seed : int
        ``split.seed`` (the seed of the first partition).

    Returns
    -------
    tuple of int
        ``(repeat, fold, split_seed)``: partition ``index // folds``, its fold ``index % folds``,
        drawn with seed ``seed + repeat``.
    """
    folds = max(int(folds), 1)
    repeat, fold = divmod(int(index), folds)
    return repeat, fold, int(seed) + repeat


def _moa_lists(cpd: pd.DataFrame) -> list[list[str]]:
    """The MoAs of each compound; an unannotated compound is a MoA of its own."""
    return [m.split("|") if m else [f"__none__{p}"] for m, p in zip(cpd[S.MOA], cpd[S.PERT])]


def _components(moa_lists: list[list[str]]) -> tuple[np.ndarray, dict[str, int]]:
    """Connected component of each compound in the compound–MoA graph (MoAs shared by several
    compounds tie them together), and the component of each MoA.
    """
    moas = sorted({m for ms in moa_lists for m in ms})
    mi = {m: i for i, m in enumerate(moas)}
    n_c = len(moa_lists)
    rows = [i for i, ms in enumerate(moa_lists) for _ in ms]
    cols = [n_c + mi[m] for ms in moa_lists for m in ms]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_c + len(moas), n_c + len(moas)))
    labels = connected_components(graph, directed=False)[1]
    return labels[:n_c], {m: int(labels[n_c + i]) for m, i in mi.items()}


def _deal_moas(moa_lists: list[list[str]], fractions, seed: int) -> dict[str, int]:
    """Assign every MoA to a split index so that no MoA is in two splits and each split's compound
    count approaches ``fractions`` (see the module docstring): connected components are the units,
    except components above half the smallest positive target, which are broken into their MoAs.
    A compound weighs ``1/len(its MoAs)`` on each of its MoAs.
    """
    target = np.asarray(fractions, dtype=float) * len(moa_lists)
    comp, moa_comp = _components(moa_lists)
    comp_size = np.bincount(comp)
    limit = 0.5 * target[target > 0].min()
    weight: dict[str, float] = {}
    for ms in moa_lists:
        for m in ms:
            weight[m] = weight.get(m, 0.0) + 1 / len(ms)
    units: dict[object, list[str]] = {}
    for m in sorted(weight):
        c = moa_comp[m]
        units.setdefault(m if comp_size[c] > limit else c, []).append(m)
    rng = np.random.default_rng(seed)
    keys = sorted(units, key=str)
    ties = dict(zip(keys, rng.random(len(keys))))
    unit_weight = {k: sum(weight[m] for m in units[k]) for k in keys}
    filled = np.zeros(len(target))
    assign = {}
    for k in sorted(keys, key=lambda k: (-unit_weight[k], ties[k])):
        j = int(np.argmax(np.where(target > 0, (target - filled) / np.maximum(target, 1e-9), -np.inf)))
        filled[j] += unit_weight[k]
        assign.update({m: j for m in units[k]})
    return assign


def _place(moa_lists: list[list[str]], moa_split: dict[str, int], names) -> np.ndarray:
    """A compound's split: the one all its MoAs are in, else ``excluded``."""
    out = []
    for ms in moa_lists:
        where = {moa_split[m] for m in ms}
        out.append(names[where.pop()] if len(where) == 1 else EXCLUDED)
    return np.array(out, dtype=object)


def _warn_excluded(cpd: pd.DataFrame, split: np.ndarray, what: str) -> None:
    ex = split == EXCLUDED
    if ex.any():
        log.warning("moa_disjoint%s: %d of %d compounds have MoAs in two splits and are left out "
                    "(Metadata_split = excluded; e.g. %s)", what, int(ex.sum()), len(split),
                    cpd.loc[ex, S.PERT].head(5).tolist())


def _split_fold(cpd: pd.DataFrame, f_val: float, seed: int, mode: str, stratify: bool, folds: int,
                fold: int) -> np.ndarray:
    if len(cpd) < 2 * folds:
        raise MorphotxInputError(f"split.folds is {folds} but the data hold {len(cpd)} compounds; use at most "
                                 f"{max(1, len(cpd) // 2)} folds")
    check_validation_share(f_val, folds)
    idx = np.arange(len(cpd))
    if mode == "compound":
        labels = cpd[S.MOA].replace("", "__unannotated__")
        strata = _strata(labels, folds) if stratify else np.zeros(len(cpd))
        kf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        test = list(kf.split(idx, strata))[fold][1]
    else:
        return _split_fold_moa_disjoint(cpd, f_val, seed, folds, fold)
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
    moa_lists = _moa_lists(cpd)
    split = _place(moa_lists, _deal_moas(moa_lists, f, seed), S.SPLITS)
    _warn_excluded(cpd, split, "")
    return split


def _split_fold_moa_disjoint(cpd: pd.DataFrame, f_val: float, seed: int, folds: int, fold: int) -> np.ndarray:
    moa_lists = _moa_lists(cpd)
    moa_fold = _deal_moas(moa_lists, np.full(folds, 1 / folds), seed)
    in_fold = [{moa_fold[m] == fold for m in ms} for ms in moa_lists]
    split = np.array(["test" if s == {True} else "train" if s == {False} else EXCLUDED for s in in_fold],
                     dtype=object)
    rest = np.flatnonzero(split == "train")
    n_val = int(round(f_val * len(cpd)))
    if n_val > 0 and len(rest):
        share = min(n_val / len(rest), 0.99)
        sub = [moa_lists[i] for i in rest]
        split[rest] = _place(sub, _deal_moas(sub, (1 - share, share, 0.0), seed), S.SPLITS)
    if not (split == "test").any() or not (split == "train").any():
        raise MorphotxInputError(
            f"split.mode moa_disjoint, fold {fold} of {folds}: no {'test' if not (split == 'test').any() else 'training'} "
            "compound once compounds whose MoAs span folds are left out; use fewer split.folds or split.mode: compound")
    _warn_excluded(cpd, split, f" (fold {fold})")
    return split


def well_table(*profiles: pd.DataFrame) -> pd.DataFrame:
    """The treated profiles, the input of :func:`split_wells`.

    Parameters
    ----------
    *profiles : pandas.DataFrame
        Harmonised tables (Cell Painting first) with ``Metadata_profile_id``,
        ``Metadata_pert_id``, ``Metadata_pert_id_dose``, ``Metadata_is_control``, ``Metadata_moa``.

    Returns
    -------
    pandas.DataFrame
        One row per treated profile: its id, compound, treatment, the compound's MoA string (as
        in :func:`compound_table`) and ``slot`` = ``<treatment>#<i>``, the profile's rank ``i`` by
        profile id among its treatment's profiles of the same table (the unit of the split).
    """
    moa = compound_table(*profiles).set_index(S.PERT)[S.MOA]
    parts = []
    for df in profiles:
        t = df.loc[~df[S.IS_CONTROL].astype(bool), [S.PROFILE_ID, S.PERT, S.TREATMENT]].astype(str)
        t = t.sort_values([S.TREATMENT, S.PROFILE_ID])
        t["slot"] = t[S.TREATMENT] + "#" + t.groupby(S.TREATMENT).cumcount().astype(str)
        parts.append(t)
    out = pd.concat(parts, ignore_index=True)
    out[S.MOA] = out[S.PERT].map(moa).to_numpy()
    return out[[S.PROFILE_ID, S.PERT, S.TREATMENT, S.MOA, "slot"]]


def split_wells(wells: pd.DataFrame, fractions: dict, seed: int, stratify: bool = True, folds: int = 1,
                fold: int = 0) -> pd.DataFrame:
    """Wong 2023's well-holdout split of the profiles of :func:`well_table`.

    Parameters
    ----------
    wells : pandas.DataFrame
        :func:`well_table`'s rows.
    fractions : dict
        ``train`` / ``validation`` / ``test`` shares of the replicate slots (``folds: 1``; seed
        001: 0.6 / 0.1 / 0.3); with ``folds ≥ 2`` only ``validation`` is used.
    seed : int
        ``split.seed``.
    stratify : bool
        Stratify by compound (each compound's slots spread over the splits by ``fractions``).
    folds, fold : int
        K-fold over the slots (stratified by compound); fold ``fold`` is the test set.

    Returns
    -------
    pandas.DataFrame
        ``wells`` without ``slot``, with ``Metadata_split``: ``train`` / ``validation`` / ``test``,
        or ``excluded`` for the test slots of compounds not in a multi-compound MoA (see the
        module docstring).
    """
    folds, fold = int(folds), int(fold)
    if folds < 1 or not 0 <= fold < folds:
        raise MorphotxInputError(f"split.folds is {folds} and fold {fold} was asked; folds must be ≥ 1 and "
                                 "the fold in 0..folds-1")
    slots = wells.drop_duplicates("slot").sort_values("slot").reset_index(drop=True)
    # the stratified helpers split "compounds" by their "MoA" column: here the units are the slots
    # and the strata are their compounds
    units = pd.DataFrame({S.PERT: slots["slot"].to_numpy(), S.MOA: slots[S.PERT].to_numpy()})
    if folds == 1:
        f = check_fractions(fractions)
        if len(units) < 3:
            raise MorphotxInputError(f"only {len(units)} treated profile slot(s) in the data; at least 3 are needed.")
        split = _split_stratified(units, f, seed, stratify)
    else:
        split = _split_fold(units, float(fractions.get("validation", 0.0)), seed, "compound", stratify, folds, fold)
    moa_lists = [m.split("|") if m else [] for m in slots[S.MOA]]
    n_cpd: dict[str, set] = {}
    for ms, c in zip(moa_lists, slots[S.PERT]):
        for m in ms:
            n_cpd.setdefault(m, set()).add(c)
    shared = np.array([bool(ms) and all(len(n_cpd[m]) >= 2 for m in ms) for ms in moa_lists])
    split = np.where((split == "test") & ~shared, EXCLUDED, split)
    out = wells.merge(pd.DataFrame({"slot": slots["slot"], S.SPLIT: split}), on="slot", how="left")
    counts = out[S.SPLIT].value_counts().reindex([*S.SPLITS, EXCLUDED], fill_value=0).to_dict()
    log.info("split (well_holdout, seed %d, fold %d of %d): %s profiles; %d compounds in both training and test",
             seed, fold, folds, counts,
             len(set(out.loc[out[S.SPLIT] == "train", S.PERT]) & set(out.loc[out[S.SPLIT] == "test", S.PERT])))
    log.warning(WELL_HOLDOUT_WARNING)
    return out.drop(columns="slot")


def split_compounds(profiles: list[str], output: str, split: SplitSettings = SplitSettings(),
                    fold: int = 0) -> pd.DataFrame:
    """Read the harmonised tables ``profiles``, split their compounds (:func:`split_compounds_frame`;
    or, ``mode: well_holdout``, their profiles: :func:`split_wells`), write ``output``: the entry
    point of rule ``split_compounds``.

    Parameters
    ----------
    profiles : list of str
        The harmonised Cell Painting and L1000 tables (Parquet); their compounds (or, for
        ``well_holdout``, their profiles) are split.
    output : str
        The split table written (Parquet): per compound (or profile) its split, ``train`` /
        ``validation`` / ``test``.
    split : SplitSettings, default SplitSettings()
        The ``split`` config section: ``fractions`` (``train``, ``validation``, ``test``; with
        ``folds`` > 1 the test set is the fold and ``validation`` the fraction drawn from the rest),
        ``seed`` (of the first partition; partition ``r`` uses ``seed + r``), ``mode``
        (``compound``: held-out compounds, MoAs shared; ``moa_disjoint``: held-out MoAs, zero-shot;
        ``well_holdout``: held-out replicate wells, compounds shared, not an unseen-compound test),
        ``stratify`` (by MoA where class sizes allow), ``folds`` K of one partition (1: a single
        split by ``fractions``) and ``repeats`` (re-drawn partitions).
    fold : int, default 0
        The workflow's fold index over ``repeats × folds`` splits (:func:`fold_of`; the rule's
        wildcard): the partition's seed and fold are derived from it.

    Returns
    -------
    pandas.DataFrame
        The split table as written.

    Raises
    ------
    MorphotxInputError
        ``fold`` is outside ``repeats × folds``, or (``well_holdout``) a profile id occurs twice.
    """
    fractions, seed, mode, stratify = split.fractions, split.seed, split.mode, split.stratify
    folds, repeats = split.folds, split.repeats
    check_mode(mode)
    if not 0 <= int(fold) < int(repeats) * max(int(folds), 1):
        raise MorphotxInputError(f"split: fold {fold} was asked but split.repeats × split.folds is "
                                 f"{int(repeats) * max(int(folds), 1)}")
    _, fold, seed = fold_of(fold, folds, seed)
    if mode != "well_holdout":
        tables = [read_table(p, columns=[S.PERT, S.IS_CONTROL, S.MOA]) for p in profiles]
        out = split_compounds_frame(compound_table(*tables), fractions, seed, mode, stratify, folds, fold)
    else:
        tables = [read_table(p, columns=[S.PROFILE_ID, S.PERT, S.TREATMENT, S.IS_CONTROL, S.MOA]) for p in profiles]
        ids = pd.concat([t[S.PROFILE_ID].astype(str) for t in tables])
        if ids.duplicated().any():
            raise MorphotxInputError(
                f"split.mode well_holdout splits profiles by Metadata_profile_id, but {int(ids.duplicated().sum())} "
                f"id(s) occur twice in {profiles} (e.g. {ids[ids.duplicated()].head(3).tolist()}); profile ids must "
                "be unique across both assays (check the dataset format's profile id columns)")
        out = split_wells(well_table(*tables), fractions, seed, stratify, folds, fold)
    save_parquet(out, output)
    return out
