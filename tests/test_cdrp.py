"""CDRP-Bray: the column map resources/datasets/cdrp_bray.yaml (as the data set's authors read these
files: shared design notes, "Columns of the CDRP-Bray files") on files of morphotx.data.cdrp_demo, the
CDRP-shaped generator; its bad inputs; pairing of a one-dose design with compounds missing from one
modality."""

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from morphotx import schema as S
from morphotx.data import convert, harmonise, probes
from morphotx.data.cdrp_demo import cdrp_data
from morphotx.io import MorphotxInputError
from morphotx.prepare import pairing, preprocess, split
from morphotx.settings import HarmoniseSettings, MoaSettings, SplitSettings

FORMAT = REPO / "resources" / "datasets" / "cdrp_bray.yaml"
MOA = MoaSettings(source="map", map_key="broad_id")


@pytest.fixture(scope="module")
def cdrp(tmp_path_factory):
    d = tmp_path_factory.mktemp("cdrp")
    out = {"cell_painting": d / "cp.csv.gz", "l1000": d / "l1k.csv.gz", "probe_map": d / "probes.tsv",
           "moa_map": d / "moa.tsv"}
    summary = cdrp_data(out, preset="test", seed=5)
    return out, summary


@pytest.fixture(scope="module")
def harmonised(cdrp, tmp_path_factory):
    out, _ = cdrp
    d = tmp_path_factory.mktemp("cdrp_h")
    h = {}
    for mod, key in [("cp", "cell_painting"), ("l1000", "l1000")]:
        convert.convert(out[key], d / f"{mod}.parquet", FORMAT, key)
        h[mod] = harmonise.harmonise(d / f"{mod}.parquet", d / f"{mod}_h.parquet", FORMAT, key, moa=MOA,
                                     moa_map=out["moa_map"])
    h["dir"] = d
    return h


def test_generator_writes_the_cdrp_columns_and_design(cdrp):
    out, s = cdrp
    cp, l1k = pd.read_csv(out["cell_painting"]), pd.read_csv(out["l1000"])
    for col in ["Metadata_Plate", "Metadata_Well", "Metadata_Assay_Plate_Barcode", "Metadata_Plate_Map_Name",
                "Metadata_broad_sample", "Metadata_pert_id", "Metadata_Sample_Dose", "Metadata_mmoles_per_liter2",
                "Metadata_pert_type", "Metadata_broad_sample_type", "Metadata_moa", "Metadata_target"]:
        assert col in cp.columns, col
    assert "Metadata_mmoles_per_liter" not in cp.columns  # only the authors' "2" column
    for col in ["pert_id", "pert_dose", "pert_sample_dose", "det_plate", "CPD_NAME", "CPD_TYPE", "CPD_SMILES",
                "BROAD_CPD_ID"]:
        assert col in l1k.columns, col
    assert not {"det_well", "cid", "pert_type", "pert_type_x"} & set(l1k.columns)
    assert sum(c.endswith("_at") for c in l1k.columns) == 978
    # one dose for most compounds, a few with more
    trt = cp[cp.Metadata_ASSAY_WELL_ROLE == "treated"]
    doses = trt.groupby("Metadata_pert_id")["Metadata_mmoles_per_liter2"].nunique()
    assert (doses == 1).mean() > 0.8 and (doses > 1).any()
    # 64 mock wells per 384-well plate, 4 replicate plates per plate map, several plate maps
    per_plate = cp.groupby("Metadata_Plate")["Metadata_ASSAY_WELL_ROLE"].apply(lambda r: (r == "mock").sum())
    assert (per_plate == 64).all()
    assert (cp.groupby("Metadata_Plate_Map_Name")["Metadata_Plate"].nunique() == 4).all()
    assert cp.Metadata_Plate_Map_Name.nunique() >= 2
    # compounds missing from one modality, compounds without MoA in the map
    assert s["cp_only"] and s["l1000_only"]
    assert not set(s["cp_only"]) & set(l1k.BROAD_CPD_ID) and not set(s["l1000_only"]) & set(cp.Metadata_pert_id)
    hub = pd.read_csv(out["moa_map"], sep="\t")
    assert 0 < s["annotated"] < 0.6 * s["compounds"] and hub.broad_id.nunique() == s["annotated"] + 1
    assert set(hub.broad_id) - set(cp.Metadata_pert_id) - set(l1k.BROAD_CPD_ID) == {"BRD-K00000001"}  # not screened


def test_cdrp_files_harmonise_as_the_authors_read_them(cdrp, harmonised):
    out, s = cdrp
    raw_cp, raw_l1k = pd.read_csv(out["cell_painting"]), pd.read_csv(out["l1000"])
    cp, l1k = harmonised["cp"], harmonised["l1000"]
    # controls: the mock wells (Metadata_ASSAY_WELL_ROLE) / DMSO samples (pert_id)
    assert cp[S.IS_CONTROL].sum() == (raw_cp.Metadata_ASSAY_WELL_ROLE == "mock").sum()
    assert l1k[S.IS_CONTROL].sum() == (raw_l1k.pert_id == "DMSO").sum()
    # treatment key: the file's own column, as written
    trt = ~cp[S.IS_CONTROL]
    assert (cp.loc[trt, S.TREATMENT] == cp.loc[trt, "Metadata_Sample_Dose"]).all()
    assert (l1k.loc[~l1k[S.IS_CONTROL], S.TREATMENT] == l1k.loc[~l1k[S.IS_CONTROL], "Metadata_pert_sample_dose"]).all()
    assert set(cp.loc[~trt, S.TREATMENT]) == {S.CONTROL}
    # dose from Metadata_mmoles_per_liter2, not recoded to the LINCS grid
    np.testing.assert_allclose(cp.loc[trt, S.DOSE_RECODE], raw_cp.loc[raw_cp.Metadata_ASSAY_WELL_ROLE == "treated",
                                                                        "Metadata_mmoles_per_liter2"].to_numpy())
    # L1000 pert_id (a full sample id) cut to the compound id, the same as Cell Painting's and the map's
    assert (l1k.loc[~l1k[S.IS_CONTROL], S.PERT] == l1k.loc[~l1k[S.IS_CONTROL], "Metadata_BROAD_CPD_ID"]).all()
    assert l1k[S.PERT].str.len().max() == 13
    # no well or cid: profile ids from plate + row, unique
    assert l1k[S.PROFILE_ID].is_unique and l1k[S.PROFILE_ID].str.match(r"^CPC\d+_U2OS_6H_X\d_B\d+:\d+$").all()
    # MoA from the Repurposing Hub map by Broad id; unannotated compounds kept with an empty list
    hub = pd.read_csv(out["moa_map"], sep="\t")
    annotated = cp.loc[trt & (cp[S.MOA].str.len() > 0), S.PERT].unique()
    assert set(annotated) <= set(hub.broad_id) and len(annotated) > 10
    assert (cp.loc[trt, S.MOA].str.len() == 0).any()


def test_pairing_one_dose_and_missing_modality(cdrp, harmonised):
    out, s = cdrp
    d = harmonised["dir"]
    probes.map_probes(d / "l1000_h.parquet", d / "l1000_g.parquet", out["probe_map"])
    split.split_compounds([d / "cp_h.parquet", d / "l1000_g.parquet"], d / "split.parquet",
                          SplitSettings(fractions={"train": 0.6, "validation": 0.2, "test": 0.2}, seed=1, folds=1))
    preprocess.preprocess_cp(d / "cp_h.parquet", d / "split.parquet", d / "cp_p.parquet", d / "cp.json", d / "cp.npz")
    preprocess.preprocess_l1000(d / "l1000_g.parquet", d / "split.parquet", d / "l1k_p.parquet", d / "l.json",
                                d / "l.npz")
    pairing.pair(d / "cp_p.parquet", d / "l1k_p.parquet", d / "pairs.parquet", d / "sets.parquet",
                 d / "cpc.parquet", d / "l1kc.parquet")
    sets = pd.read_parquet(d / "sets.parquet")
    cp_only = sets.loc[(sets.n_cp > 0) & (sets.n_l1000 == 0), S.PERT]
    l1k_only = sets.loc[(sets.n_cp == 0) & (sets.n_l1000 > 0), S.PERT]
    assert set(s["cp_only"]) <= set(cp_only) and set(s["l1000_only"]) <= set(l1k_only)
    both = sets[(sets.n_cp > 0) & (sets.n_l1000 > 0)]
    assert len(both) > 0.7 * len(sets)
    assert (both.n_cp % 4 == 0).all() and (both.n_l1000 % 3 == 0).all()  # 4 CP, 3 L1000 replicates
    pairs = pd.read_parquet(d / "pairs.parquet")
    assert len(pairs) == int((both.n_cp * both.n_l1000).sum())


# ------------------------------------------------------------------------------------------- bad inputs
def _cp_frame(cdrp) -> pd.DataFrame:
    return pd.read_csv(cdrp[0]["cell_painting"])


def _harm(df: pd.DataFrame, tmp_path, cdrp, settings=HarmoniseSettings()):
    path = tmp_path / "cp.csv"
    df.to_csv(path, index=False)
    return harmonise.harmonise(path, tmp_path / "h.parquet", FORMAT, "cell_painting", settings=settings, moa=MOA,
                               moa_map=cdrp[0]["moa_map"])


def test_lincs_spelling_of_the_dose_is_refused_naming_the_column(cdrp, tmp_path):
    df = _cp_frame(cdrp).rename(columns={"Metadata_mmoles_per_liter2": "Metadata_mmoles_per_liter"})
    with pytest.raises(MorphotxInputError, match=r"required column\(s\) \['Metadata_mmoles_per_liter2'\] missing"):
        _harm(df, tmp_path, cdrp)
    assert not (tmp_path / "h.parquet").exists()


def test_missing_treatment_key_column_or_value_is_an_error(cdrp, tmp_path):
    df = _cp_frame(cdrp)
    with pytest.raises(MorphotxInputError, match=r"'Metadata_Sample_Dose'"):
        _harm(df.drop(columns="Metadata_Sample_Dose"), tmp_path, cdrp)
    trt = df.index[df.Metadata_ASSAY_WELL_ROLE == "treated"][:2]
    df.loc[trt, "Metadata_Sample_Dose"] = np.nan
    with pytest.raises(MorphotxInputError, match=r"2 treated row\(s\) have no treatment key in column 'Metadata_Sample_Dose'"):
        _harm(df, tmp_path, cdrp)


def test_a_key_naming_two_compounds_is_an_error(cdrp, tmp_path):
    df = _cp_frame(cdrp)
    trt = df[df.Metadata_ASSAY_WELL_ROLE == "treated"]
    a, b = trt.Metadata_pert_id.unique()[:2]
    df.loc[df.Metadata_pert_id == b, "Metadata_Sample_Dose"] = trt.loc[trt.Metadata_pert_id == a, "Metadata_Sample_Dose"].iat[0]
    with pytest.raises(MorphotxInputError, match=r"1 treatment key\(s\) in column 'Metadata_Sample_Dose' name more than one compound"):
        _harm(df, tmp_path, cdrp)


def test_no_control_column_and_bad_dose(cdrp, tmp_path):
    df = _cp_frame(cdrp)
    no_ctl = df.drop(columns="Metadata_ASSAY_WELL_ROLE").assign(Metadata_broad_sample=df.Metadata_broad_sample.str.replace("DMSO", "x"))
    # the role column gone, DMSO still names the controls in Metadata_broad_sample: the second rule
    h = _harm(df.drop(columns="Metadata_ASSAY_WELL_ROLE"), tmp_path, cdrp)
    assert h[S.IS_CONTROL].sum() == (df.Metadata_ASSAY_WELL_ROLE == "mock").sum()
    with pytest.raises(MorphotxInputError, match=r"Metadata_ASSAY_WELL_ROLE or Metadata_broad_sample \(control wells\)"):
        _harm(no_ctl.drop(columns="Metadata_broad_sample"), tmp_path, cdrp)
    bad = df.copy()
    bad.loc[bad.index[bad.Metadata_ASSAY_WELL_ROLE == "treated"][0], "Metadata_mmoles_per_liter2"] = -1
    with pytest.raises(MorphotxInputError, match=r"1 treated row\(s\) have a dose in 'Metadata_mmoles_per_liter2' that is "
                                                 r"missing, not a number or not positive.*on_bad_dose: drop"):
        _harm(bad, tmp_path, cdrp)
    kept = _harm(bad, tmp_path, cdrp, HarmoniseSettings(on_bad_dose="drop"))
    assert len(kept) == len(df) - 1
