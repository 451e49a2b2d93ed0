import numpy as np
import pandas as pd
import pytest

from morphotx import schema as S
from morphotx.io import MorphotxInputError
from morphotx.split import compound_table, split_compounds_frame


def _compounds(n=200, n_moa=10, seed=0):
    rng = np.random.default_rng(seed)
    moa = [f"M{i % n_moa}" for i in range(n)]
    moa = [m + (f"|M{(int(m[1:]) + 1) % n_moa}" if rng.random() < 0.1 else "") for m in moa]
    return pd.DataFrame({S.PERT: [f"BRD-K{i:08d}" for i in range(n)], S.MOA: moa})


F = {"train": 0.7, "validation": 0.1, "test": 0.2}


def test_disjoint_complete_deterministic():
    c = _compounds()
    a = split_compounds_frame(c, F, seed=3)
    b = split_compounds_frame(c.sample(frac=1, random_state=1), F, seed=3)
    assert a.equals(b)  # input order does not matter, the seed does
    assert a[S.PERT].is_unique and set(a[S.PERT]) == set(c[S.PERT])
    counts = a[S.SPLIT].value_counts()
    assert counts["train"] == 140 and counts["validation"] == 20 and counts["test"] == 40
    assert not split_compounds_frame(c, F, seed=4)[S.SPLIT].equals(a[S.SPLIT])


def test_stratified_by_moa():
    a = split_compounds_frame(_compounds(), F, seed=0)
    single = a[~a[S.MOA].str.contains("|", regex=False)]
    per = single.groupby(S.MOA)[S.SPLIT].apply(lambda s: (s == "train").mean())
    assert per.between(0.5, 0.9).all()  # every MoA keeps ~70% of its compounds in train


def _assert_moa_disjoint(a):
    moa_split = {}
    for moas, sp in zip(a[S.MOA], a[S.SPLIT]):
        if sp == "excluded":
            continue
        for m in moas.split("|"):
            moa_split.setdefault(m, set()).add(sp)
    assert all(len(v) == 1 for v in moa_split.values())
    assert set(a[S.SPLIT]) - {"excluded"} == {"train", "validation", "test"}


def test_moa_disjoint():
    a = split_compounds_frame(_compounds(n=300, n_moa=30), F, seed=0, mode="moa_disjoint")
    _assert_moa_disjoint(a)


def test_moa_disjoint_honours_fractions_when_multi_moa_compounds_link_every_moa(caplog):
    """Multi-MoA compounds chain the MoAs into one component holding 90 % of the compounds (as in
    the demo and LINCS): the split breaks it, leaves out the compounds whose MoAs straddle two
    splits, says how many, and keeps the fractions near target."""
    c = _compounds(n=200, n_moa=10)
    with caplog.at_level("WARNING"):
        a = split_compounds_frame(c, F, seed=0, mode="moa_disjoint")
    _assert_moa_disjoint(a)
    counts = a[S.SPLIT].value_counts()
    assert 0 < counts["excluded"] <= 0.1 * len(c)
    kept = len(c) - counts["excluded"]
    for split, share in F.items():
        assert abs(counts[split] / kept - share) < 0.08, counts.to_dict()
    assert f"{counts['excluded']} of 200 compounds have MoAs in two splits" in caplog.text
    straddle = a[a[S.SPLIT] == "excluded"]
    assert straddle[S.MOA].str.contains("|", regex=False).all()  # only multi-MoA compounds are left out


def test_bad_fractions():
    with pytest.raises(MorphotxInputError, match="sum to 1"):
        split_compounds_frame(_compounds(), {"train": 0.7, "validation": 0.2, "test": 0.2}, seed=0)


def test_compound_table_prefers_cell_painting_moa():
    cp = pd.DataFrame({S.PERT: ["A", "B", "DMSO"], S.IS_CONTROL: [False, False, True], S.MOA: [["x"], ["y"], []]})
    l1 = pd.DataFrame({S.PERT: ["A", "C"], S.IS_CONTROL: [False, False], S.MOA: [["z"], ["w"]]})
    t = compound_table(cp, l1)
    assert t.set_index(S.PERT)[S.MOA].to_dict() == {"A": "x", "B": "y", "C": "w"}


def test_folds_partition_compounds_and_stratify():
    c = _compounds()
    tests, splits = [], []
    for f in range(5):
        a = split_compounds_frame(c, F, seed=2, folds=5, fold=f)
        assert set(a[S.PERT]) == set(c[S.PERT])
        counts = a[S.SPLIT].value_counts()
        assert counts["test"] == 40 and counts["validation"] == 20 and counts["train"] == 140
        tests.append(set(a.loc[a[S.SPLIT] == "test", S.PERT]))
        splits.append(a)
    assert set.union(*tests) == set(c[S.PERT]) and sum(map(len, tests)) == len(c)  # each compound tested once
    single = splits[0][~splits[0][S.MOA].str.contains("|", regex=False)]
    per = single.groupby(S.MOA)[S.SPLIT].apply(lambda s: (s == "test").mean())
    assert per.between(0.1, 0.3).all()  # every MoA keeps ~1/5 of its compounds in the test fold
    assert split_compounds_frame(c, F, seed=2, folds=5, fold=3).equals(splits[3])  # deterministic
    assert not split_compounds_frame(c, F, seed=9, folds=5, fold=3)[S.SPLIT].equals(splits[3][S.SPLIT])


def test_folds_moa_disjoint_keep_moas_apart():
    c = _compounds(n=300, n_moa=30)
    tested, sizes = [], []
    for f in range(3):
        a = split_compounds_frame(c, F, seed=0, mode="moa_disjoint", folds=3, fold=f)
        _assert_moa_disjoint(a)
        tested.append(set(a.loc[a[S.SPLIT] == "test", S.PERT]))
        sizes.append(len(tested[-1]))
    assert sum(sizes) == len(set.union(*tested))  # no compound tested twice
    single = set(c.loc[~c[S.MOA].str.contains("|", regex=False), S.PERT])
    assert single <= set.union(*tested)  # every single-MoA compound is tested once
    assert min(sizes) > 0.25 * len(c)


def test_bad_folds_are_named():
    with pytest.raises(MorphotxInputError, match="split.folds"):
        split_compounds_frame(_compounds(n=6), F, seed=0, folds=5, fold=0)
    with pytest.raises(MorphotxInputError, match="fold 5"):
        split_compounds_frame(_compounds(), F, seed=0, folds=5, fold=5)
    with pytest.raises(MorphotxInputError, match="validation"):
        split_compounds_frame(_compounds(), {**F, "validation": 0.9}, seed=0, folds=5, fold=0)


@pytest.mark.parametrize("split,needle", [
    ({"folds": 1, "fractions": {"train": 0.7, "validation": 0.2, "test": 0.2}}, "sum to 1"),
    ({"folds": 5, "fractions": {"train": 0.6, "validation": 0.85, "test": 0.2}}, "fractions.validation"),
    ({"folds": 0, "fractions": {"train": 0.6, "validation": 0.2, "test": 0.2}}, "split.folds"),
    ({"mode": "zero_shot", "folds": 2, "fractions": {"validation": 0.1}}, "split.mode"),
])
def test_split_config_is_checked_without_data(split, needle):
    from morphotx.split import check_split_config

    with pytest.raises(MorphotxInputError, match=needle.replace(".", r"\.")):
        check_split_config(split)
    check_split_config({"folds": 5, "fractions": {"train": 0.65, "validation": 0.15, "test": 0.2}})
