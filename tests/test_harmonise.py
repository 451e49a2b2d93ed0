import logging

import numpy as np
import pandas as pd
import pytest

from conftest import FORMAT, real_fixture
from morphotx import schema as S
from morphotx.data.harmonise import harmonise, parse_moa, recode_dose
from morphotx.io import MorphotxInputError
from morphotx.settings import HarmoniseSettings, MoaSettings


def test_recode_dose():
    rec, ok = recode_dose(np.array([0.041152, 3.3333, 19.999, 0.0041152, 1.0, 0.0, np.nan, -666, 1000.0]))
    assert rec[:5].tolist() == [0.04, 3.33, 20.0, 0.04, 1.11]
    assert ok.tolist() == [True] * 5 + [False] * 4


def test_parse_moa():
    assert parse_moa(pd.Series(["B|A", "-666", None, " X ", "A|A"])) == [["A", "B"], [], [], ["X"], ["A"]]


def test_demo_keys_match_across_modalities(tiny_processed):
    cp = pd.read_parquet(tiny_processed["cp_h"])
    l1k = pd.read_parquet(tiny_processed["l1k_h"])
    assert set(cp[S.TREATMENT]) == set(l1k[S.TREATMENT])
    assert (cp.loc[cp[S.IS_CONTROL], S.TREATMENT] == "DMSO").all()
    assert (l1k.loc[l1k[S.IS_CONTROL], S.TREATMENT] == "DMSO").all()
    assert cp[S.TREATMENT].str.match(r"^(DMSO|BRD-[A-Z]\d{8}_(0\.04|0\.12|0\.37|1\.11|3\.33|10|20))$").all()
    assert set(cp.loc[~cp[S.IS_CONTROL], S.DOSE_RECODE]) <= {0.04, 0.12, 0.37, 1.11, 3.33, 10.0, 20.0}
    feats = S.feature_columns(cp)
    assert all(cp[f].dtype == np.float32 for f in feats)
    assert all(c.startswith("Metadata_") for c in S.meta_columns(cp))
    assert isinstance(cp[S.MOA].iloc[-1], (list, np.ndarray))


def test_missing_required_column(tmp_path, tiny_raw):
    df = pd.read_csv(tiny_raw["l1000"]).drop(columns=["pert_dose"])
    f = tmp_path / "l1k.csv"
    df.to_csv(f, index=False)
    out = tmp_path / "out.parquet"
    with pytest.raises(MorphotxInputError, match=r"l1k.csv.*\['pert_dose'\]"):
        harmonise(f, out, FORMAT, "l1000")
    assert not out.exists()


def _l1000_with(tmp_path, tiny_raw, column, value):
    """The tiny demo's L1000 file with ``value`` in ``column`` of its first treated row, as l1k.csv."""
    df = pd.read_csv(tiny_raw["l1000"])
    column = column(df) if callable(column) else column
    df[column] = df[column].astype(object)
    df.loc[df.index[df.pert_type_x == "trt_cp"][0], column] = value
    f = tmp_path / "l1k.csv"
    df.to_csv(f, index=False)
    return f, df


def _first_probe(df):
    return next(c for c in df.columns if c.endswith("_at"))


def _refused_then_accepted(f, tmp_path, caplog, match, **option):
    """Harmonise ``f`` (L1000): an error matching ``match`` and nothing written by default, then
    a result with ``option`` set (warnings captured)."""
    out = tmp_path / "out.parquet"
    with pytest.raises(MorphotxInputError, match=match):
        harmonise(f, out, FORMAT, "l1000")
    assert not out.exists()
    caplog.set_level(logging.WARNING)
    return harmonise(f, out, FORMAT, "l1000", HarmoniseSettings(**option))


def test_bad_dose_error_then_drop(tmp_path, tiny_raw, caplog):
    f, df = _l1000_with(tmp_path, tiny_raw, "pert_dose", 5000.0)
    res = _refused_then_accepted(f, tmp_path, caplog, r"l1k.csv.*'pert_dose'.*on_bad_dose", on_bad_dose="drop")
    assert len(res) == len(df) - 1 and "Dropping" in caplog.text


def test_text_dose_is_shown_as_written(tmp_path, tiny_raw):
    f, _ = _l1000_with(tmp_path, tiny_raw, "pert_dose", "10 uM")
    with pytest.raises(MorphotxInputError, match=r"'dose': '10 uM'"):
        harmonise(f, tmp_path / "out.parquet", FORMAT, "l1000")


def test_inf_becomes_nan_and_is_logged(tmp_path, tiny_raw, caplog):
    df = pd.read_csv(tiny_raw["l1000"])
    probe = [c for c in df.columns if c.endswith("_at")][3]
    df.loc[5, probe] = np.inf
    f = tmp_path / "l1k.csv"
    df.to_csv(f, index=False)
    caplog.set_level(logging.WARNING)
    res = harmonise(f, tmp_path / "o.parquet", FORMAT, "l1000")
    assert np.isnan(res.loc[5, probe]) and "inf value" in caplog.text


def test_compound_without_moa_kept_and_logged(tmp_path, tiny_raw, caplog):
    df = pd.read_csv(tiny_raw["cell_painting"])
    pid = df.Metadata_pert_id.dropna().iloc[0]
    df.loc[df.Metadata_pert_id == pid, "Metadata_moa"] = np.nan
    f = tmp_path / "cp.csv"
    df.to_csv(f, index=False)
    caplog.set_level(logging.WARNING)
    res = harmonise(f, tmp_path / "o.parquet", FORMAT, "cell_painting")
    sub = res[res[S.PERT] == pid]
    assert len(sub) > 0 and all(len(m) == 0 for m in sub[S.MOA])
    assert "have no MoA" in caplog.text


def test_treated_row_without_id(tmp_path, tiny_raw):
    df = pd.read_csv(tiny_raw["cell_painting"])
    i = df.index[df.Metadata_broad_sample != "DMSO"][0]
    df.loc[i, ["Metadata_pert_id", "Metadata_broad_sample"]] = [np.nan, "unknown"]
    f = tmp_path / "cp.csv"
    df.to_csv(f, index=False)
    with pytest.raises(MorphotxInputError, match=r"cp.csv.*no compound id"):
        harmonise(f, tmp_path / "o.parquet", FORMAT, "cell_painting")


def test_duplicated_wells(tmp_path, tiny_raw):
    df = pd.read_csv(tiny_raw["cell_painting"])
    df = pd.concat([df, df.iloc[[0]]])
    f = tmp_path / "cp.csv"
    df.to_csv(f, index=False)
    with pytest.raises(MorphotxInputError, match=r"duplicated profile id"):
        harmonise(f, tmp_path / "o.parquet", FORMAT, "cell_painting")


def test_moa_from_external_map(tmp_path, tiny_raw):
    a = harmonise(tiny_raw["l1000"], tmp_path / "a.parquet", FORMAT, "l1000")
    b = harmonise(tiny_raw["l1000"], tmp_path / "b.parquet", FORMAT, "l1000", moa=MoaSettings(source="map"),
                  moa_map=tiny_raw["moa_map"])
    assert [list(x) for x in a[S.MOA]] == [list(x) for x in b[S.MOA]]


def test_all_dmso_plate_is_kept_and_logged(tmp_path, tiny_raw, caplog):
    df = pd.read_csv(tiny_raw["cell_painting"])
    ctl = df[df.Metadata_broad_sample == "DMSO"].head(10).copy()
    ctl["Metadata_Plate"] = "SQ99999999"
    f = tmp_path / "cp.csv"
    pd.concat([df, ctl]).to_csv(f, index=False)
    caplog.set_level(logging.WARNING)
    res = harmonise(f, tmp_path / "o.parquet", FORMAT, "cell_painting")
    assert (res[S.PLATE] == "SQ99999999").sum() == 10 and "only controls" in caplog.text


def test_real_cell_painting_plate(tmp_path):
    path = real_fixture("lincs_cp_plate_SQ00015054_normalized_feature_select.csv.gz")
    res = harmonise(path, tmp_path / "cp.parquet", FORMAT, "cell_painting")
    assert len(res) == 384 and len(S.feature_columns(res)) == 454
    assert res[S.IS_CONTROL].sum() == 24
    assert (res.loc[res[S.IS_CONTROL], S.TREATMENT] == "DMSO").all()
    trt = res[~res[S.IS_CONTROL]]
    assert trt[S.PERT].str.match(r"^BRD-[A-Z]\d{8}$").all()
    assert set(trt[S.DOSE_RECODE]) <= {0.04, 0.12, 0.37, 1.11, 3.33, 10.0, 20.0}
    # 3.3333 uM -> key ..._3.33; multi-MoA kept as a list
    row = trt[trt[S.DOSE].round(4) == 3.3333].iloc[0]
    assert row[S.TREATMENT] == f"{row[S.PERT]}_3.33"
    assert any(len(m) == 2 for m in trt[S.MOA])
    # the source file's own MoA text is reproduced by joining the list
    raw = pd.read_csv(path)
    raw_trt = raw[raw.Metadata_broad_sample != "DMSO"].reset_index(drop=True)
    joined = ["|".join(m) for m in trt[S.MOA]]
    expect = ["|".join(sorted(str(x).split("|"))) if isinstance(x, str) else "" for x in raw_trt.Metadata_moa]
    assert joined == expect


def test_real_moa_map(tmp_path):
    from morphotx.data.harmonise import moa_from_map

    mp = real_fixture("repurposing_info_external_moa_map_resolved.tsv")
    cp = real_fixture("lincs_cp_plate_SQ00015054_normalized_feature_select.csv.gz")
    res = harmonise(cp, tmp_path / "cp.parquet", FORMAT, "cell_painting")
    trt = res[~res[S.IS_CONTROL]]
    from_map = moa_from_map(trt[S.PERT], mp)
    from_file = [list(m) for m in trt[S.MOA]]
    agree = np.mean([a == b for a, b in zip(from_map, from_file) if b])
    assert agree > 0.9  # the plate's MoA column comes from the same Repurposing Hub release


def test_extreme_values_stop_harmonise_or_become_missing(tmp_path, tiny_raw, caplog):
    """1e30 in a treated well (a sentinel or unit error) is named; `on_extreme: nan` treats it as
    missing with a warning. Heavy tails and mostly-constant features are not flagged."""
    from morphotx.data.harmonise import extreme_values

    f, df = _l1000_with(tmp_path, tiny_raw, _first_probe, 1e30)
    probe = _first_probe(df)
    res = _refused_then_accepted(f, tmp_path, caplog,
                                 rf"1 feature value\(s\) in 1 feature\(s\).*{probe} = 1e\+30.*on_extreme: nan",
                                 on_extreme="nan")
    assert res[probe].isna().sum() == 1 and "on_extreme: nan" in caplog.text
    rng = np.random.default_rng(0)
    ok = pd.DataFrame({"tail": rng.standard_t(1, 5000) * 3,  # Cauchy tails: huge, but not sentinels
                       "mostly_zero": np.where(rng.random(5000) < 0.9, 0.0, rng.random(5000)),
                       "constant": np.ones(5000)})
    assert not extreme_values(ok).any()
    ok.loc[7, "constant"] = 1e20
    ok.loc[8, "mostly_zero"] = -1e12
    assert extreme_values(ok).sum() == 2


def test_renamed_feature_prefix_is_an_error_and_one_stray_column_a_counted_warning(tmp_path, tiny_raw, caplog):
    """Schema drift: ``Cells_`` renamed ``Cell_`` would turn a third of the features into metadata
    without a word; columns matching no feature rule and no known metadata column are counted and
    named, and above ``max_unknown_columns`` × the feature count they stop the run."""
    df = pd.read_csv(tiny_raw["cell_painting"])
    drift = df.rename(columns=lambda c: "Cell_" + c[len("Cells_"):] if c.startswith("Cells_") else c)
    n_renamed = sum(c.startswith("Cell_") for c in drift.columns)
    drift.to_csv(tmp_path / "drift.csv", index=False)
    with pytest.raises(MorphotxInputError, match=rf"{n_renamed} column\(s\) match no feature rule.*Cell_.*renamed"):
        harmonise(tmp_path / "drift.csv", tmp_path / "drift.parquet", FORMAT, "cell_painting")
    assert not (tmp_path / "drift.parquet").exists()
    df.assign(plate_note="x").to_csv(tmp_path / "note.csv", index=False)
    caplog.set_level(logging.WARNING)
    out = harmonise(tmp_path / "note.csv", tmp_path / "note.parquet", FORMAT, "cell_painting")
    assert "1 column(s) match no feature rule and no known metadata column" in caplog.text
    assert "plate_note" in caplog.text and "Metadata_plate_note" in out.columns
    with pytest.raises(MorphotxInputError, match="max_unknown_columns"):
        harmonise(tmp_path / "note.csv", tmp_path / "n2.parquet", FORMAT, "cell_painting",
                  HarmoniseSettings(max_unknown_columns=0))


def test_extreme_values_on_a_large_table_flag_exactly_the_sentinels():
    """Above EXTREME_ROWS rows the median and spread come from evenly spaced rows; the mask is
    still computed for every row and flags the same sentinels as statistics over all rows (NaN
    features, a feature without spread and heavy tails included)."""
    from morphotx.data.harmonise import EXTREME_ROWS, extreme_values

    n = EXTREME_ROWS + 2_345
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"tail": rng.standard_t(1, n) * 3, "normal": rng.normal(size=n),
                       "mostly_nan": np.where(rng.random(n) < 0.7, np.nan, rng.normal(size=n)),
                       "all_nan": np.full(n, np.nan), "constant": np.ones(n)})
    bad = {(n - 1, "normal"): 1e30, (3, "mostly_nan"): -9999e9, (n - 5, "constant"): 1e20, (11, "tail"): 1e40}
    for (i, c), v in bad.items():
        df.loc[i, c] = v
    mask = extreme_values(df)
    assert mask.shape == df.shape
    assert sorted(zip(*np.nonzero(mask))) == sorted((i, df.columns.get_loc(c)) for i, c in bad)


def test_missing_plate_or_well_is_named(tmp_path, tiny_raw):
    """A profile id is built from the format's id columns (plate + well): a row without one is an
    error naming the column, not a Python TypeError."""
    cp = pd.read_csv(tiny_raw["cell_painting"]).astype({"Metadata_Well": object})
    cp.iloc[3, cp.columns.get_loc("Metadata_Well")] = None
    cp.to_csv(tmp_path / "cp.csv", index=False)
    out = tmp_path / "harmonised.parquet"
    with pytest.raises(MorphotxInputError, match=r"cp.csv: 1 row\(s\) have no value in profile-id column\(s\) "
                                                 r"\['Metadata_Well'\]"):
        harmonise(tmp_path / "cp.csv", out, FORMAT, "cell_painting")
    assert not out.exists()
