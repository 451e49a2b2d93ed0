import hashlib

import numpy as np
import pandas as pd

from morphotx.data.demo import demo_data, junk_feature_names, params_for, simulate
from morphotx.settings import DemoSettings


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_same_seed_same_bytes(tmp_path, tiny_raw):
    out = {k: str(tmp_path / v.name) for k, v in tiny_raw.items()}
    demo_data(out, DemoSettings(scale="tiny", seed=3))
    for k in ("cell_painting", "l1000", "probe_map", "moa_map"):
        assert _sha(out[k]) == _sha(tiny_raw[k]), k


def test_other_seed_other_data():
    a = simulate(params_for("tiny"), 1)["l1000"]
    b = simulate(params_for("tiny"), 2)["l1000"]
    assert not np.allclose(a.filter(like="_at").to_numpy(), b.filter(like="_at").to_numpy())


def test_rosetta_schema_and_layout(tiny_raw):
    cp = pd.read_csv(tiny_raw["cell_painting"])
    l1k = pd.read_csv(tiny_raw["l1000"])
    for c in ["Metadata_Plate", "Metadata_Well", "Metadata_Plate_Map_Name", "Metadata_broad_sample",
              "Metadata_pert_id", "Metadata_mmoles_per_liter", "Metadata_dose_recode", "Metadata_pert_id_dose",
              "Metadata_moa", "Metadata_alternative_moa", "pert_iname", "Metadata_broad_sample_type"]:
        assert c in cp.columns, c
    for c in ["cid", "pert_id", "pert_iname_x", "pert_type_x", "det_plate", "det_well", "pert_dose", "nearest_dose",
              "pert_id_dose", "moa", "x_smiles", "cell_id", "pert_time", "mfc_plate_name"]:
        assert c in l1k.columns, c
    assert cp["Metadata_Plate"].str.match(r"^SQ\d{8}$").all()
    assert l1k["det_plate"].str.match(r"^REP\.A\d{3}_A549_24H_X\d_B\d+$").all()
    assert (l1k.filter(regex="_at$").shape[1]) == 978
    # DMSO on every plate of both assays
    assert cp.groupby("Metadata_Plate")["Metadata_broad_sample"].apply(lambda s: (s == "DMSO").sum()).min() > 0
    assert l1k.groupby("det_plate")["pert_type_x"].apply(lambda s: (s == "ctl_vehicle").sum()).min() > 0
    assert set(l1k.loc[l1k.pert_type_x == "ctl_vehicle", "pert_id_dose"]) == {"DMSO_-666"}
    trt = cp[cp.Metadata_broad_sample != "DMSO"]
    assert trt.groupby("Metadata_pert_id")["Metadata_mmoles_per_liter"].nunique().eq(6).all()  # 6 doses
    assert trt["Metadata_broad_sample"].str.match(r"^BRD-[A-Z]\d{8}-\d{3}-\d{2}-\d$").all()
    # replicates: CP across plates (tiny: 3), L1000: 3
    reps = trt.groupby("Metadata_pert_id_dose")["Metadata_Plate"].nunique()
    assert reps.min() == params_for("tiny").cp_replicates
    assert l1k[l1k.pert_type_x == "trt_cp"].groupby("pert_id_dose").size().eq(3).all()
    # multi-MoA compounds exist, joined by |
    assert trt["Metadata_moa"].str.contains("|", regex=False).any()


def test_cellprofiler_features_and_junk(tiny_raw):
    cp = pd.read_csv(tiny_raw["cell_painting"])
    feats = [c for c in cp.columns if c.startswith(("Cells_", "Cytoplasm_", "Nuclei_"))]
    for family in ("AreaShape", "Intensity", "Texture", "Correlation", "Granularity", "RadialDistribution"):
        assert any(f"_{family}_" in f for f in feats), family
    for ch in ("DNA", "RNA", "ER", "AGP", "Mito"):
        assert any(f.endswith(f"_{ch}") or f"_{ch}_" in f for f in feats), ch
    junk = junk_feature_names()
    assert set(junk["location"]) <= set(cp.columns)
    assert cp[junk["nan_heavy"]].isna().mean().min() > 0.2
    assert all(cp[c].nunique() <= 2 for c in junk["constant"])
    # heavy-tailed positive raw values (log-normal families)
    area = cp["Cells_AreaShape_Area"].dropna() if "Cells_AreaShape_Area" in cp else cp.filter(like="Intensity_Integrated").iloc[:, 0]
    assert (area > 0).all() and area.skew() > 0.3


def test_ground_truth(tiny_raw):
    gt = pd.read_parquet(tiny_raw["ground_truth"])
    cp = pd.read_csv(tiny_raw["cell_painting"])
    assert set(gt["pert_id"]) == set(cp["Metadata_pert_id"].dropna())
    assert {"moa", "responder_cell_painting", "responder_l1000", "effect_shared", "ec50_cell_painting_uM"} <= set(gt.columns)
    # responders in one modality only exist
    assert (gt.responder_cell_painting & ~gt.responder_l1000).any() or (~gt.responder_cell_painting & gt.responder_l1000).any()


def test_nonresponder_has_no_signal():
    """A compound flagged non-responder in Cell Painting is no further from DMSO than noise."""
    d = simulate(params_for("demo"), 5)
    cp, gt = d["cell_painting"], d["ground_truth"]
    feats = [c for c in cp.columns if ("_Intensity_" in c or "_Granularity_" in c) and cp[c].notna().all()]
    logv = np.log(cp[feats].to_numpy(dtype=float))
    for plate in cp.Metadata_Plate.unique():  # centre each plate on its DMSO wells
        on = cp.Metadata_Plate.eq(plate).to_numpy()
        logv[on] -= np.nanmedian(logv[on & cp.Metadata_broad_sample.eq("DMSO").to_numpy()], axis=0)
    top = cp.Metadata_dose_recode.eq(10).to_numpy()

    def distance(pid):  # norm of the compound's mean top-dose profile, relative to DMSO
        return np.linalg.norm(np.nanmean(logv[cp.Metadata_pert_id.eq(pid).to_numpy() & top], axis=0))

    non = np.median([distance(p) for p in gt.loc[~gt.responder_cell_painting, "pert_id"]])
    resp = np.median([distance(p) for p in gt.loc[gt.responder_cell_painting & (gt.ec50_cell_painting_uM < 1), "pert_id"]])
    # null: the same statistic for groups of 5 DMSO wells
    rng = np.random.default_rng(0)
    dmso = np.where(cp.Metadata_broad_sample.eq("DMSO").to_numpy())[0]
    null = np.median([np.linalg.norm(np.nanmean(logv[rng.choice(dmso, 5, replace=False)], axis=0)) for _ in range(200)])
    assert 0.8 < non / null < 1.25  # non-responders look like DMSO
    assert resp > 1.3 * null
