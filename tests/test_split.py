import numpy as np
import pandas as pd
import pytest

from morphotx import schema as S
from morphotx.io import MorphotxInputError
from morphotx.prepare.split import compound_table, split_compounds_frame
from morphotx.settings import SplitSettings


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


def test_compound_table_merges_moa_spellings_across_compounds_and_modalities(caplog):
    """Case 33: one MoA written in two letter cases by different compounds (here: one in each
    modality) is one class in the split table, with a counted warning."""
    cp = pd.DataFrame({S.PERT: ["A", "B", "D"], S.IS_CONTROL: [False] * 3,
                       S.MOA: [["CDK inhibitor"], ["CDK inhibitor"], ["x"]]})
    l1 = pd.DataFrame({S.PERT: ["A", "C"], S.IS_CONTROL: [False, False], S.MOA: [["CDK inhibitor"], ["cdk inhibitor"]]})
    with caplog.at_level("WARNING"):
        t = compound_table(cp, l1)
    assert t.set_index(S.PERT)[S.MOA].to_dict() == {"A": "CDK inhibitor", "B": "CDK inhibitor", "C": "CDK inhibitor",
                                                    "D": "x"}
    assert any("1 MoA label(s) are written in more than one way" in r.getMessage() and "'cdk inhibitor'" in
               r.getMessage() for r in caplog.records)


def test_preprocessing_writes_each_moa_as_the_split_table_does():
    """Case 33 across files: each modality's file was unified on its own, so L1000 may still write
    a MoA as ``cdk inhibitor`` where Cell Painting writes ``CDK inhibitor``; the profiles take the
    split table's spelling, so both modalities (and the late fusion of their classifiers) share one
    class. Other labels are left as they are."""
    from morphotx.prepare.preprocess import attach_split

    split = pd.DataFrame({S.PERT: ["A", "C"], S.MOA: ["CDK inhibitor", "x|y"], S.SPLIT: ["train", "test"]})
    l1 = pd.DataFrame({S.PERT: ["A", "C", "DMSO"], S.IS_CONTROL: [False, False, True],
                       S.MOA: [["cdk  inhibitor"], ["x", "y"], []]})
    got = attach_split(l1, split, "l1000")
    assert got[S.MOA].tolist() == [["CDK inhibitor"], ["x", "y"], []]
    assert got[S.SPLIT].tolist() == ["train", "test", "control"]


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
    from morphotx.configcheck import check_split_config

    with pytest.raises(MorphotxInputError, match=needle.replace(".", r"\.")):
        check_split_config(split)
    check_split_config({"folds": 5, "fractions": {"train": 0.65, "validation": 0.15, "test": 0.2}})


def _wells(n_cpd=8, n_doses=2, n_rep=10):
    """Two assays; compounds c0..c7 with MoAs A A B B C C D E (D and E: one compound each),
    ``n_doses`` doses × ``n_rep`` replicates per assay, and four DMSO wells."""
    moas = ["A", "A", "B", "B", "C", "C", "D", "E"][:n_cpd]
    tables = []
    for assay in ("cp", "l1k"):
        rows = []
        for c in range(n_cpd):
            for d in range(n_doses):
                for r in range(n_rep):
                    rows.append({S.PROFILE_ID: f"{assay}:{c}:{d}:{r}", S.PERT: f"c{c}", S.TREATMENT: f"c{c}_{d}",
                                 S.IS_CONTROL: False, S.MOA: np.array([moas[c]], dtype=object)})
        rows += [{S.PROFILE_ID: f"{assay}:dmso{i}", S.PERT: "DMSO", S.TREATMENT: "DMSO", S.IS_CONTROL: True,
                  S.MOA: np.array([], dtype=object)} for i in range(4)]
        tables.append(pd.DataFrame(rows))
    return tables


W = {"train": 0.6, "validation": 0.1, "test": 0.3}


def test_well_holdout_splits_each_compound_60_10_30_and_keeps_test_moas_multi_compound():
    """Wong 2023's well holdout on a toy whose answer is known by hand: every compound has 20
    replicate slots (2 doses × 10), so a split stratified by compound gives each compound 12 / 2 / 6
    slots; the single-compound MoAs D and E lose their 6 test slots to ``excluded``; every
    compound is in train and test at once (that is the scheme: not an unseen-compound test); a
    treatment's replicate i is in the same split in both assays; the seed decides."""
    from morphotx.prepare.split import split_wells, well_table

    wells = well_table(*_wells())
    assert len(wells) == 2 * 8 * 20 and set(wells[S.PERT]) == {f"c{i}" for i in range(8)}  # no DMSO
    out = split_wells(wells, W, seed=0)
    per = out[out[S.PROFILE_ID].str.startswith("cp:")].groupby(S.PERT)[S.SPLIT].value_counts().unstack(fill_value=0)
    for c in ("c0", "c1", "c2", "c3", "c4", "c5"):
        assert per.loc[c, ["train", "validation", "test"]].tolist() == [12, 2, 6], per
    for c in ("c6", "c7"):
        assert per.loc[c, ["train", "validation", "excluded"]].tolist() == [12, 2, 6], per
        assert per.loc[c].get("test", 0) == 0
    test = out[out[S.SPLIT] == "test"]
    assert set(test[S.MOA]) == {"A", "B", "C"}  # every test MoA has two compounds
    assert set(test[S.PERT]) <= set(out.loc[out[S.SPLIT] == "train", S.PERT])  # compounds shared
    # replicate i of a treatment: the same split in both assays
    key = out[S.PROFILE_ID].str.split(":", n=1).str[1]
    assert out.assign(k=key).groupby("k")[S.SPLIT].nunique().eq(1).all()
    again = split_wells(well_table(*_wells()), W, seed=0)
    assert again.equals(out)
    assert not split_wells(wells, W, seed=1)[S.SPLIT].equals(out[S.SPLIT])


def test_well_holdout_folds_and_profile_table_through_preprocessing(tmp_path):
    """With folds the slots of each compound are dealt to K folds (each slot a test slot once);
    split_compounds writes one row per treated profile, attach_split maps it by profile id and
    appends ``@<split>`` to the treatment key (controls untouched); duplicate ids across the
    assays are a named error."""
    from morphotx.prepare.preprocess import attach_split
    from morphotx.prepare.split import split_compounds, split_wells, well_table

    wells = well_table(*_wells(n_cpd=6))
    tested = []
    for fold in range(4):
        out = split_wells(wells, {"validation": 0.1}, seed=0, folds=4, fold=fold)
        per = out.groupby(S.PERT)[S.SPLIT].apply(lambda s: (s == "test").sum())
        assert (per == 10).all(), per  # 40 profiles per compound (2 assays × 20), a quarter each fold
        tested += out.loc[out[S.SPLIT] == "test", S.PROFILE_ID].tolist()
    assert sorted(tested) == sorted(wells[S.PROFILE_ID])
    cp, l1k = _wells()
    paths = []
    for name, t in (("cp", cp), ("l1k", l1k)):
        paths.append(str(tmp_path / f"{name}.parquet"))
        t.to_parquet(paths[-1])
    table = split_compounds(paths, str(tmp_path / "split.parquet"),
                            SplitSettings(fractions=W, seed=0, mode="well_holdout", folds=1))
    got = attach_split(cp, table, "cp")
    ctl = got[S.IS_CONTROL].to_numpy()
    assert (got.loc[ctl, S.SPLIT] == "control").all() and (got.loc[ctl, S.TREATMENT] == "DMSO").all()
    t = got[~ctl]
    assert (t[S.TREATMENT] == cp.loc[~ctl, S.TREATMENT] + "@" + t[S.SPLIT]).all()
    l1k[S.PROFILE_ID] = l1k[S.PROFILE_ID].str.replace("l1k:", "cp:")
    l1k.to_parquet(paths[1])
    with pytest.raises(MorphotxInputError, match="unique across both assays"):
        split_compounds(paths, str(tmp_path / "split.parquet"),
                        SplitSettings(fractions=W, seed=0, mode="well_holdout", folds=1))


def test_well_holdout_mode_is_accepted_with_a_warning(caplog):
    from morphotx.configcheck import check_split_config

    check_split_config({"mode": "well_holdout", "folds": 1, "fractions": W})
    assert "NOT an unseen-compound test" in caplog.text
    with pytest.raises(MorphotxInputError, match="split_wells"):
        split_compounds_frame(_compounds(), F, seed=0, mode="well_holdout")
