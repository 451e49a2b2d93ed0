import json

import numpy as np
import pandas as pd
import pycytominer
import pytest

from conftest import FORMAT, real_fixture
from morphotx import schema as S
from morphotx.data.demo import junk_feature_names
from morphotx.data.harmonise import harmonise
from morphotx.io import MorphotxInputError
from morphotx.prepare.preprocess import (
    DEFAULT_OPERATIONS,
    low_frequency_features,
    normalize_to_controls,
    pairwise_complete_corr,
    preprocess_cp,
    select_features,
)


def _run(tmp_path, profiles, split, name="cp", **kw):
    out = {k: tmp_path / f"{name}{s}" for k, s in [("p", ".parquet"), ("j", ".features.json"), ("n", ".params.npz")]}
    df = preprocess_cp(profiles, split, out["p"], out["j"], out["n"], **kw)
    return df, json.loads(out["j"].read_text()), dict(np.load(out["n"]))


def test_junk_dropped_and_split_attached(tiny_processed):
    rep = json.loads(tiny_processed["cp_json"].read_text())
    junk = junk_feature_names()
    kept = set(rep["kept"])
    assert not kept & set(junk["location"]) and not kept & set(junk["nan_heavy"]) and not kept & set(junk["constant"])
    assert set(junk["location"]) <= set(rep["dropped"]["non_intrinsic"])
    assert rep["dropped"]["correlation_threshold"] and rep["dropped"]["blocklist"]
    cp = pd.read_parquet(tiny_processed["cp_p"])
    assert set(cp[S.SPLIT]) == {"train", "validation", "test", "control"}
    assert not cp[S.feature_columns(cp)].isna().any().any()


def test_no_leakage_from_held_out_compounds(tmp_path, tiny_processed):
    """Changing validation/test compounds' features changes nothing that was fitted."""
    h = pd.read_parquet(tiny_processed["cp_h"])
    split = pd.read_parquet(tiny_processed["split"])
    held = split.loc[split[S.SPLIT] != "train", S.PERT]
    feats = S.feature_columns(h)
    rows = h[S.PERT].isin(held).to_numpy()
    noisy = h.copy()
    noisy.loc[rows, feats] = noisy.loc[rows, feats].to_numpy() * 3.0 + 7.0
    noisy_path = tmp_path / "noisy.parquet"
    noisy.to_parquet(noisy_path)
    a_df, a_rep, a_par = _run(tmp_path, tiny_processed["cp_h"], tiny_processed["split"], "a")
    b_df, b_rep, b_par = _run(tmp_path, noisy_path, tiny_processed["split"], "b")
    assert a_rep["kept"] == b_rep["kept"]
    for k in ("center", "scale", "sphere_W", "sphere_mean"):
        np.testing.assert_array_equal(a_par[k], b_par[k])
    train = ~rows
    np.testing.assert_array_equal(a_df.loc[train, a_rep["kept"]].to_numpy(), b_df.loc[train, b_rep["kept"]].to_numpy())


def test_normalisation_matches_pycytominer(tiny_processed):
    h = pd.read_parquet(tiny_processed["cp_h"])
    feats = [f for f in S.cp_feature_columns(S.feature_columns(h)) if "_Location_" not in f][:40]
    ours, centers, scales, plates = normalize_to_controls(h, feats, "mad_robustize", "plate")
    for plate in plates[:2]:
        sub = h[h[S.PLATE] == plate].copy()
        sub["Metadata_ctl"] = sub[S.IS_CONTROL].map({True: "yes", False: "no"})
        ref = pycytominer.normalize(sub[["Metadata_ctl"] + feats], features=feats, meta_features=["Metadata_ctl"],
                                    samples="Metadata_ctl == 'yes'", method="mad_robustize")
        np.testing.assert_allclose(ours.loc[sub.index, feats].to_numpy(), ref[feats].to_numpy(), rtol=1e-5, atol=1e-5)  # float32 input


def test_study_recipe(tmp_path, tiny_processed):
    df, rep, par = _run(tmp_path, tiny_processed["cp_h"], tiny_processed["split"], "study", recipe="study")
    assert rep["settings"]["feature_select"]["min_variance"] == 0.01
    assert rep["settings"]["normalize"] == {"method": "robustize", "by": "global"}
    assert par["center"].shape[0] == 1  # one global RobustScaler
    assert "frequency_threshold" not in rep["dropped"] and "blocklist" not in rep["dropped"]


def test_plate_without_dmso_is_an_error(tmp_path, tiny_processed):
    h = pd.read_parquet(tiny_processed["cp_h"])
    plate = h[S.PLATE].iloc[0]
    h = h[~((h[S.PLATE] == plate) & h[S.IS_CONTROL])]
    p = tmp_path / "h.parquet"
    h.to_parquet(p)
    with pytest.raises(MorphotxInputError, match=f"plate {plate}.*normalize.by: global"):
        _run(tmp_path, p, tiny_processed["split"])
    assert not (tmp_path / "cp.parquet").exists()
    _run(tmp_path, p, tiny_processed["split"], normalize={"by": "global"})  # the named fix works


def _same_selection_as_pycytominer(h):
    feats = S.feature_columns(h)
    ours = select_features(h, feats, DEFAULT_OPERATIONS)
    ours_excluded = set().union(*ours.values())
    ref = pycytominer.feature_select(h, features=feats, operation=DEFAULT_OPERATIONS)
    assert set(feats) - ours_excluded == set(S.feature_columns(ref)) & set(feats)
    return ours


def test_feature_selection_matches_pycytominer(tiny_processed):
    h = pd.read_parquet(tiny_processed["cp_h"])
    ours = _same_selection_as_pycytominer(h[S.meta_columns(h) + S.cp_feature_columns(S.feature_columns(h))])
    assert ours["correlation_threshold"] and ours["blocklist"] and ours["drop_na_columns"]


def test_real_plate_feature_selection_matches_pycytominer(tmp_path):
    path = real_fixture("lincs_cp_plate_SQ00015054_normalized_feature_select.csv.gz")
    h = harmonise(path, tmp_path / "h.parquet", FORMAT, "cell_painting")
    ours = _same_selection_as_pycytominer(h)
    # the plate was feature-selected upstream with the same thresholds: no |r| > 0.9 pair is left
    assert ours["correlation_threshold"] == []


def test_real_plate_through_preprocessing(tmp_path):
    path = real_fixture("lincs_cp_plate_SQ00015054_normalized_feature_select.csv.gz")
    h = harmonise(path, tmp_path / "h.parquet", FORMAT, "cell_painting")
    cpds = sorted(h.loc[~h[S.IS_CONTROL], S.PERT].unique())
    split = pd.DataFrame({S.PERT: cpds, S.MOA: "", S.SPLIT: ["test" if i % 5 == 0 else "train" for i in range(len(cpds))]})
    sp = tmp_path / "split.parquet"
    split.to_parquet(sp)
    df, rep, par = _run(tmp_path, tmp_path / "h.parquet", sp, sphere={"method": "none"})
    kept = rep["kept"]
    assert 0 < len(kept) < 454
    # after per-plate robust scaling, DMSO wells are centred at 0 with unit MAD, as pycytominer makes them
    ctl = df.loc[df[S.IS_CONTROL], kept]
    np.testing.assert_allclose(ctl.median().to_numpy(), 0, atol=1e-5)
    ref = pycytominer.normalize(h.assign(Metadata_ctl=h[S.IS_CONTROL].astype(str)), features=kept,
                                meta_features=["Metadata_ctl"], samples="Metadata_ctl == 'True'",
                                method="mad_robustize")
    np.testing.assert_allclose(df[kept].to_numpy(), ref[kept].to_numpy(dtype="float32"), rtol=1e-4, atol=1e-4)


def _selection_table(n=1500, seed=0, sporadic_nan=True):
    """Features of every kind the operations act on: correlated groups (r > 0.9 within a group,
    and r < -0.9 mirror features, which pycytominer keeps), low-variance, few-valued, NaN-heavy
    and sporadically missing features, and names on pycytominer's default blocklist."""
    from pycytominer.cyto_utils import get_blocklist_features

    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 12))
    cols = {}
    for g in range(12):
        for k in range(5):
            noise = (0.15 + 0.1 * k) * rng.normal(size=n)  # within-group r from ~0.98 down to ~0.7
            cols[f"Cells_Intensity_Group{g}_{k}"] = 100.0 + 20.0 * (latent[:, g] + noise)
        cols[f"Nuclei_Texture_Mirror_{g}"] = -latent[:, g] + 0.2 * rng.normal(size=n)
    for k in range(25):
        cols[f"Cytoplasm_Granularity_Free_{k}"] = rng.normal(size=n)
    for k in range(3):
        cols[f"Cells_Texture_LowVar_{k}"] = 5.0 + 1e-4 * rng.normal(size=n)
        cols[f"Cells_Number_FewValues_{k}"] = np.where(rng.random(n) < 0.98, 1.0, rng.integers(2, 4, n))
        cols[f"Cells_Number_Levels_{k}"] = rng.integers(0, 5 + 20 * k, n) / 7.0  # 5, 25, 45 values: unique_cut
    for i, name in enumerate(get_blocklist_features()[:6]):  # half in a group: correlation and blocklist overlap
        cols[name] = (latent[:, 0] if i < 3 else 0.0) + 0.1 * rng.normal(size=n)
    df = pd.DataFrame(cols)
    for k in range(2):
        df.loc[rng.random(n) < 0.3, f"Cytoplasm_Granularity_Free_{k}"] = np.nan  # NaN-heavy
    if sporadic_nan:
        for c in ["Cells_Intensity_Group0_0", "Cells_Intensity_Group0_1", "Cells_Intensity_Group3_2"]:
            df.loc[rng.random(n) < 0.02, c] = np.nan  # pandas' pairwise-complete path in pycytominer
    meta = pd.DataFrame({"Metadata_Plate": "P1", "Metadata_Well": [f"W{i}" for i in range(n)]})
    return pd.concat([meta, df], axis=1)


@pytest.mark.parametrize("operations, kw", [
    (DEFAULT_OPERATIONS, {}),
    (["variance_threshold", "correlation_threshold"], {"min_variance": 0.01}),  # the study recipe
    (["correlation_threshold", "blocklist", "drop_na_columns", "frequency_threshold"], {"corr_threshold": 0.8}),
])
@pytest.mark.parametrize("sporadic_nan", [True, False])
def test_selected_features_equal_pycytominer_feature_select(operations, kw, sporadic_nan):
    """The kept features are exactly those ``pycytominer.feature_select`` keeps for the same
    operations and thresholds on the same rows (with and without missing values, which send
    pycytominer's correlation to pandas' pairwise-complete ``DataFrame.corr``)."""
    df = _selection_table(sporadic_nan=sporadic_nan)
    feats = S.cp_feature_columns(list(df.columns))
    ours = select_features(df, feats, operations, **kw)
    ours_kept = [f for f in feats if f not in set().union(*ours.values())]
    ref = pycytominer.feature_select(df, features=feats, operation=operations, **kw)
    assert ours_kept == [c for c in ref.columns if c in set(feats)]
    assert all(ours[op] for op in operations), ours  # every operation had something to drop
    n_corr = len(ours["correlation_threshold"])
    assert 0 < n_corr < 12 * 6  # some, not all, of each correlated group went
    assert not any(f.startswith("Nuclei_Texture_Mirror_") for f in ours["correlation_threshold"])  # r < -0.9 kept


def test_pairwise_complete_corr_is_pandas_corr():
    df = _selection_table(n=400, seed=3)
    X = df[S.cp_feature_columns(list(df.columns))]
    ours, ref = pairwise_complete_corr(X), X.corr().to_numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    # 1e-9: np.corrcoef and pandas' one-pass loop differ by ~1e-12 on the near-constant features
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
    full = X.dropna(axis="columns")
    np.testing.assert_array_equal(pairwise_complete_corr(full), np.corrcoef(full.transpose()))  # pycytominer's call


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_low_frequency_features_equal_pycytominer(dtype):
    from pycytominer.operations import frequency_threshold

    df = _selection_table(n=800, seed=5)
    feats = S.cp_feature_columns(list(df.columns))
    X = df[feats].astype(dtype)
    for freq_cut, unique_cut in [(0.05, 0.01), (0.5, 0.05), (0.0, 0.0)]:
        ref = frequency_threshold(X, features=feats, freq_cut=freq_cut, unique_cut=unique_cut)
        ours = low_frequency_features(X, feats, freq_cut, unique_cut)
        assert sorted(ours) == sorted(ref)
        assert ours or freq_cut == 0.0
