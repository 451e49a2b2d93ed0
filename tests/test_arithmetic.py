"""Latent-space arithmetic and traversals on toys whose answers are known by hand."""

import numpy as np
import pandas as pd
import pytest

from morphotx import schema as S
from morphotx.evaluate.arithmetic import arithmetic_groups, feature_group, latent_arithmetic, latent_traversal
from morphotx.report.figures import cross_modality


def toy_meta_and_profiles(noise=0.0, seed=0, d=6):
    rng = np.random.default_rng(seed)
    base = {"DMSO": rng.normal(size=d), "A": rng.normal(size=d) * 3, "B": rng.normal(size=d) * 3,
            "C": rng.normal(size=d) * 3}
    groups = [("DMSO", [], True), ("A", ["A"], False), ("B", ["B"], False), ("C", ["C"], False),
              ("AB", ["B", "A"], False), ("AD", ["A", "D"], False), ("ABC", ["A", "B", "C"], False)]
    rows, X = [], []
    for name, moas, ctl in groups:
        for r in range(6):
            if name == "AB":  # the additive hypothesis holds exactly in the means
                v = base["A"] - base["DMSO"] + base["B"]
            else:
                v = base.get(name, rng.normal(size=d))
            X.append(v + noise * rng.normal(size=d))
            rows.append({S.MOA: moas, S.IS_CONTROL: ctl, S.PERT: f"{name}{r % 2}"})
    return pd.DataFrame(rows), np.array(X)


def test_groups_follow_the_paper_rules():
    meta, _ = toy_meta_and_profiles()
    labels, combos = arithmetic_groups(meta)
    assert combos == [("A", "B", "A|B")]  # A|D has no single-MoA D; three MoAs are out
    assert set(labels) == {"DMSO", "A", "B", "A|B", ""}
    assert (labels[meta[S.MOA].map(len) == 3] == "").all()
    assert (labels[(meta[S.MOA].map(tuple) == ("C",)).to_numpy()] == "").all()  # C is in no kept pair


def test_exact_additive_toy_gives_zero_distance_and_shuffles_do_worse():
    meta, X = toy_meta_and_profiles(noise=0.0)
    W = np.random.default_rng(1).normal(size=(X.shape[1], X.shape[1]))  # an invertible linear "VAE"
    Winv = np.linalg.inv(W)
    dist, z = latent_arithmetic(X @ W, X, meta, lambda v: np.asarray(v) @ Winv, shuffles=10, pca_components=6, seed=0)
    real = dist[dist["shuffle"] < 0].set_index("method")
    for method in ("vae", "pca", "raw"):
        assert real.loc[method, "l2"] == pytest.approx(0, abs=1e-8)
        assert real.loc[method, "pearson"] == pytest.approx(1)
    shuffled = dist[dist["shuffle"] >= 0]
    assert len(shuffled) == 3 * 10 and (shuffled["l2"] > 0.1).all()
    assert (z["l2_z"] < 0).all() and (z["pearson_z"] > 0).all()
    zz = z.set_index("method").loc["raw"]
    null = shuffled[shuffled["method"] == "raw"]["l2"]
    assert zz["l2_z"] == pytest.approx((0 - null.mean()) / null.std(ddof=1), abs=1e-6)


def test_no_combination_is_an_empty_table_not_a_crash():
    meta, X = toy_meta_and_profiles()
    keep = meta[S.MOA].map(len) <= 1
    dist, z = latent_arithmetic(X[keep.to_numpy()], X[keep.to_numpy()], meta[keep].reset_index(drop=True),
                                lambda v: v)
    assert dist.empty and z.empty


@pytest.mark.parametrize("name, group", [
    ("Cells_Intensity_MeanIntensity_DNA", "Cells_DNA"),
    ("Nuclei_AreaShape_Area", "Nuclei_AreaShape"),
    ("Cytoplasm_Correlation_Correlation_ER_Mito", "Cytoplasm_ER"),
    ("Cells_Texture_Contrast_AGP_3_00", "Cells_AGP"),
    ("Cells_Granularity_1_RNA", "Cells_RNA"),
    ("Cells_Neighbors_NumberOfNeighbors_5", "Cells_Other"),
    ("Nuclei_Location_Center_X", "Nuclei_Other"),
])
def test_feature_groups(name, group):
    assert feature_group(name) == group


def test_traversal_of_a_linear_decoder():
    feats = ["Cells_Intensity_MeanIntensity_DNA", "Cells_Intensity_MaxIntensity_DNA", "Nuclei_AreaShape_Area",
             "GAPDH"]
    W = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [5.0, 5.0]])  # feature × latent
    Z = np.random.default_rng(0).normal(size=(200, 2)) * [1.0, 2.0]
    t = latent_traversal(lambda z: np.asarray(z) @ W.T, Z, feats, k=3.0, scale="empirical", difference="signed")
    sd = Z.std(0)
    got = t.set_index(["latent", "group"])["mean_difference"]
    assert got[(0, "Cells_DNA")] == pytest.approx(6 * sd[0] * 2.0)  # mean of 1 and 3
    assert got[(1, "Nuclei_AreaShape")] == pytest.approx(6 * sd[1] * 2.0)
    assert got[(0, "Nuclei_AreaShape")] == pytest.approx(0)
    assert set(t["group"]) == {"Cells_DNA", "Nuclei_AreaShape"}  # L1000 genes are not Cell Painting groups


def test_traversal_is_the_papers_by_default_absolute_at_plus_minus_three():
    """Chow 2022: z_j = ±3 (the prior's SD is 1) with the other units at 0, absolute difference of
    the decoded profiles, mean per feature group. Two features of one group moving in opposite
    directions cancel in the signed mean but not in the paper's absolute one."""
    feats = ["Cells_Intensity_MeanIntensity_DNA", "Cells_Intensity_MaxIntensity_DNA"]
    W = np.array([[2.0], [-2.0]])
    Z = np.random.default_rng(0).normal(size=(50, 1)) * 5.0  # the data's spread must not matter
    t = latent_traversal(lambda z: np.asarray(z) @ W.T, Z, feats)
    assert t["mean_difference"].tolist() == pytest.approx([12.0])  # |2·3 − 2·(−3)| = 12, both features
    signed = latent_traversal(lambda z: np.asarray(z) @ W.T, Z, feats, difference="signed")
    assert signed["mean_difference"].tolist() == pytest.approx([0.0])


def test_cross_modality_pairs_variants_averages_seeds_and_flags_outliers():
    combos = [f"M{i:02d}|N{i:02d}" for i in range(11)]
    rows = []
    for model, variant, inp, values in [
            ("cp_mmd", "mmd", "cp", [0.0] * 10 + [10.0]),  # one point 3.16 population SDs out
            ("l1k_mmd", "mmd", "l1000", [1.0] * 11),
            ("cp_beta", "beta", "cp", [2.0] * 11)]:  # no L1000 β-VAE: no pair
        for seed, shift in ((0, -1.0), (1, 1.0)):  # two seeds, mean = the value
            rows += [{"method": "vae", "model": model, "variant": variant, "input": inp, "seed": seed,
                      "combination": c, "l2_z": v + shift} for c, v in zip(combos, values)]
    rows.append({"method": "pca", "model": "cp_mmd", "variant": "mmd", "input": "cp", "seed": 0,
                 "combination": "X|Y", "l2_z": -50.0})  # other methods are not the VAE's arithmetic
    t = cross_modality(pd.DataFrame(rows))
    assert set(zip(t["model_cp"], t["model_l1000"])) == {("cp_mmd", "l1k_mmd")} and len(t) == 11
    g = t.set_index("combination")
    assert g["cp"].tolist() == [0.0] * 10 + [10.0] and (g["l1000"] == 1.0).all()
    # mean 10/11, population SD sqrt(1000/121) ≈ 2.87: |10 − 0.91| / 2.87 ≈ 3.16 > 3, the zeros 0.32
    assert g["outlier"].tolist() == [False] * 10 + [True]
    assert cross_modality(pd.DataFrame(rows).drop(columns=["variant"])).empty  # older tables: no pairing
