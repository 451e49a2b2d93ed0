"""Retrieval metrics against hand computations on toys whose answer is known."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from morphotx import schema as S
from morphotx.evaluate.retrieval import moa_map, recall_at_k, replicate_map


def test_recall_at_k_known_ranks():
    P = np.eye(4)
    assert recall_at_k(P, P, ks=(1,)) == {"recall@1_cp_to_l1000": 1.0, "recall@1_l1000_to_cp": 1.0}
    # q_1 = (0.8, 0.6): every p still finds its own q first (p_1·q_1 = 0.6 beats 0), but q_1 is
    # closer to p_0 (0.8) than to p_1 (0.6), so L1000 → CP ranks p_1 second for q_1
    Q = np.eye(4)
    Q[1] = [0.8, 0.6, 0, 0]
    r = recall_at_k(P, Q, ks=(1, 2))
    assert r["recall@1_cp_to_l1000"] == 1.0
    assert r["recall@1_l1000_to_cp"] == 0.75 and r["recall@2_l1000_to_cp"] == 1.0


def _profiles():
    rng = np.random.default_rng(0)
    rows, X = [], []
    centres = {"t1": [5, 0, 0], "t2": [0, 5, 0]}
    for t, c in centres.items():
        for r in range(3):
            rows.append({S.TREATMENT: t, S.IS_CONTROL: False, S.PLATE: f"p{r % 2}"})
            X.append(np.array(c) + rng.normal(size=3) * 0.1)
    for r in range(6):
        rows.append({S.TREATMENT: "DMSO", S.IS_CONTROL: True, S.PLATE: f"p{r % 2}"})
        X.append(rng.normal(size=3) * 3)
    df = pd.DataFrame(rows)
    return pd.concat([df, pd.DataFrame(np.array(X), columns=["emb_0", "emb_1", "emb_2"])], axis=1)


@pytest.mark.parametrize("negatives", ["plate", "all"])
def test_replicate_map_equals_hand_ap_against_dmso(negatives):
    """Positives: the other replicates (any plate); negatives: the DMSO profiles of the same plate
    (``plate``) or every DMSO profile (``all``)."""
    df = _profiles()
    ap, maps = replicate_map(df, null_size=200, seed=0, negatives=negatives)
    X = df[["emb_0", "emb_1", "emb_2"]].to_numpy()
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    ctl = df[S.IS_CONTROL].to_numpy()
    plate = df[S.PLATE].to_numpy()
    for i in np.flatnonzero(~ctl):
        neg = ctl & ((plate == plate[i]) if negatives == "plate" else True)
        cand = [j for j in range(len(df)) if j != i and (neg[j] or df[S.TREATMENT][j] == df[S.TREATMENT][i])]
        assert sum(neg[cand]) == (3 if negatives == "plate" else 6)
        y = [0 if ctl[j] else 1 for j in cand]
        ref = average_precision_score(y, Xn[cand] @ Xn[i])
        got = ap.loc[ap.index == i, "average_precision"]
        assert len(got) == 1 and got.iloc[0] == pytest.approx(ref)
    assert set(maps[S.TREATMENT]) == {"t1", "t2"}
    assert (maps["mean_average_precision"] > 0.9).all() and "corrected_p_value" in maps


def test_replicate_map_by_plate_needs_the_plate_column():
    with pytest.raises(ValueError, match="Metadata_Plate"):
        replicate_map(_profiles().drop(columns=S.PLATE), null_size=50, negatives="plate")


def test_moa_map_uses_other_compounds_and_single_moa_only():
    rows = [("c1", ["A"], [1, 0]), ("c2", ["A"], [0.9, 0.1]), ("c3", ["B"], [0, 1]), ("c4", ["B"], [0.2, 0.9]),
            ("c5", ["A", "B"], [0.5, 0.5]), ("DMSO", [], [0.3, 0.3])]
    df = pd.DataFrame({S.PERT: [r[0] for r in rows], S.TREATMENT: [r[0] for r in rows], S.MOA: [r[1] for r in rows],
                       S.IS_CONTROL: [r[0] == "DMSO" for r in rows]})
    df[["emb_0", "emb_1"]] = np.array([r[2] for r in rows], float)
    ap, maps = moa_map(df, null_size=100)
    assert len(ap) == 4 and set(maps["Metadata_moa_label"]) == {"A", "B"}
    assert np.allclose(ap["average_precision"], 1.0)


@pytest.mark.parametrize("which", ["moa", "replicate"])
def test_cosine_matrix_lookup_gives_copairs_own_scores(which, monkeypatch):
    """The cosine-matrix lookup handed to copairs (tables up to COSINE_MATRIX_MAX rows) gives the
    APs, mAPs and p-values of copairs' own pairwise cosine, which the larger tables still use."""
    from morphotx.evaluate import retrieval

    rng = np.random.default_rng(3)
    n, d = 1100, 20  # more rows than one block of the matrix (1,024)
    moa = rng.choice(list("ABCDEF"), n)
    centres = {m: rng.normal(size=d) for m in "ABCDEF"}
    X = np.array([centres[m] for m in moa]) * 0.3 + rng.normal(size=(n, d))
    ctl = np.arange(n) >= n - 100
    df = pd.DataFrame({S.PERT: [f"c{i // 3}" for i in range(n)], S.TREATMENT: [f"t{i // 3}" for i in range(n)],
                       S.MOA: [[] if c else [m] for m, c in zip(moa, ctl)], S.IS_CONTROL: ctl,
                       S.PLATE: [f"p{i % 4}" for i in range(n)]})
    df = pd.concat([df, pd.DataFrame(X, columns=[f"emb_{i:02d}" for i in range(d)])], axis=1)
    score = (lambda: moa_map(df, null_size=500, seed=1)) if which == "moa" else (
        lambda: replicate_map(df, null_size=500, seed=1))
    ap_lookup, maps_lookup = score()
    monkeypatch.setattr(retrieval, "COSINE_MATRIX_MAX", 0)  # every table through copairs' own cosine
    ap_own, maps_own = score()
    assert len(ap_own) > 50 and ap_own["average_precision"].nunique() > 10
    pd.testing.assert_frame_equal(ap_lookup, ap_own)
    pd.testing.assert_frame_equal(maps_lookup, maps_own)


def test_percent_replicating_on_toys_with_known_answers():
    """Replicates that are copies of one profile plus small noise replicate (100 %); replicates
    drawn independently do not (about the null's 5 %); half and half gives 50 %. The threshold
    is the 95th percentile of median correlations of groups with no two profiles of one treatment."""
    from morphotx.evaluate.retrieval import percent_replicating

    rng = np.random.default_rng(0)
    n_trt, reps, d = 40, 3, 30
    centres = rng.normal(size=(n_trt, d))

    def table(noise):
        X = np.repeat(centres, reps, axis=0) + noise * rng.normal(size=(n_trt * reps, d))
        meta = pd.DataFrame({S.TREATMENT: np.repeat([f"t{i}" for i in range(n_trt)], reps), S.IS_CONTROL: False})
        return pd.concat([meta, pd.DataFrame(X, columns=[f"emb_{i:03d}" for i in range(d)])], axis=1)

    strong = percent_replicating(table(0.1), null_size=500)
    assert strong["percent_replicating"] == 1.0 and strong["n_treatments"] == n_trt
    weak = table(0.0)
    weak[[f"emb_{i:03d}" for i in range(d)]] = rng.normal(size=(n_trt * reps, d))  # no replicate signal
    assert percent_replicating(weak, null_size=500)["percent_replicating"] <= 0.15
    half = table(0.1)
    cols = [f"emb_{i:03d}" for i in range(d)]
    half.loc[half.index[: n_trt * reps // 2], cols] = rng.normal(size=(n_trt * reps // 2, d))
    assert 0.4 <= percent_replicating(half, null_size=500)["percent_replicating"] <= 0.6
    one = table(0.1).iloc[:reps]  # one treatment: no null
    assert np.isnan(percent_replicating(one)["percent_replicating"])


def test_typical_variation_normalisation_removes_a_plate_offset_exactly():
    """Lu 2025's control-based correction on a 1-D toy solved by hand. Plate A: DMSO 0 and 2,
    treatment t at 3; plate B is plate A shifted by 10. PCA on the four DMSO rows only centres
    (and may flip the sign); each plate's DMSO rows then have mean 1 (A) / 11 (B) and SD 1, so t
    becomes ±(3 - 1) / 1 = ±2 on both plates: the offset is gone and replicates coincide."""
    from morphotx.evaluate.retrieval import typical_variation_normalisation

    X = np.array([[0.0], [2.0], [3.0], [10.0], [12.0], [13.0]])
    ctl = np.array([True, True, False] * 2)
    plate = np.array(["A"] * 3 + ["B"] * 3)
    Z = typical_variation_normalisation(X, ctl, plate)
    assert Z.shape == (6, 1)
    assert abs(Z[2, 0]) == pytest.approx(2.0) and Z[5, 0] == pytest.approx(Z[2, 0])
    np.testing.assert_allclose(np.abs(Z[ctl, 0]), 1.0)


def test_typical_variation_normalisation_multi_dimensional_offsets_and_scales():
    """3-D toy: each plate is the same DMSO cloud and the same two treatments, shifted by its own
    offset and (plate C) scaled by 2. After correction each plate's DMSO rows have mean 0 and SD 1
    on every component, and a treatment's rows are identical across plates; a plate with a single
    DMSO row is scaled by all DMSO rows."""
    from morphotx.evaluate.retrieval import typical_variation_normalisation

    rng = np.random.default_rng(0)
    dmso, treated = rng.normal(size=(8, 3)), rng.normal(size=(2, 3)) + 4
    base = np.vstack([dmso, treated])
    offsets = {"A": np.array([0.0, 0, 0]), "B": np.array([5.0, -3, 1]), "C": np.array([-2.0, 7, 2])}
    X = np.vstack([base * (2.0 if p == "C" else 1.0) + o for p, o in offsets.items()])
    ctl = np.tile(np.r_[np.ones(8, bool), np.zeros(2, bool)], 3)
    plate = np.repeat(list(offsets), 10)
    Z = typical_variation_normalisation(X, ctl, plate)
    for p in offsets:
        on = (plate == p) & ctl
        np.testing.assert_allclose(Z[on].mean(0), 0, atol=1e-10)
        np.testing.assert_allclose(Z[on].std(0), 1, atol=1e-10)
    t = np.flatnonzero(~ctl)
    np.testing.assert_allclose(Z[t[[0, 2, 4]]], Z[t[[0, 0, 0]]], atol=1e-10)
    np.testing.assert_allclose(Z[t[[1, 3, 5]]], Z[t[[1, 1, 1]]], atol=1e-10)
    with pytest.raises(ValueError, match="two or more control rows"):
        typical_variation_normalisation(X, np.eye(1, len(X), dtype=bool)[0], plate)
    one = ctl.copy()
    one[(plate == "B") & ctl] = False
    one[np.flatnonzero(plate == "B")[0]] = True  # plate B keeps one DMSO row
    Zb = typical_variation_normalisation(X, one, plate)
    assert np.isfinite(Zb).all()


def test_cluster_quality_on_toys_with_known_answers():
    from morphotx.evaluate.retrieval import cluster_quality

    # hand-computed silhouette (cosine distances): p1 = p2 = e1 (group a), p3 = e2, p4 = (e1 + e2)/√2 (b).
    # d(p1, p4) = d(p3, p4) = 1 - 1/√2, d(p1, p3) = 1. s(p1) = s(p2) = 1; s(p3) = (1 - (1 - 1/√2)) / 1;
    # s(p4): own-group distance 1 - 1/√2 equals the mean distance to group a, so 0
    X = np.array([[1, 0], [1, 0], [0, 1], [1 / np.sqrt(2), 1 / np.sqrt(2)]])
    got = cluster_quality(X, ["a", "a", "b", "b"])
    assert got["silhouette"] == pytest.approx((2 + 1 / np.sqrt(2)) / 4)
    assert got["n_groups"] == 2 and got["n_rows"] == 4
    # four groups in four orthogonal directions, at different norms (cosine ignores the norm)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 10)
    X = (np.eye(4)[labels] + rng.normal(scale=0.01, size=(40, 4))) * rng.uniform(0.5, 5, size=(40, 1))
    sep = cluster_quality(X, labels)
    assert sep["silhouette"] > 0.95 and sep["ami"] == pytest.approx(1.0) and sep["ari"] == pytest.approx(1.0)
    shuffled = cluster_quality(X, rng.permutation(labels))
    assert shuffled["silhouette"] < 0.05 and abs(shuffled["ami"]) < 0.15 and abs(shuffled["ari"]) < 0.15
    # undefined: one group, or as many groups as rows
    assert np.isnan(cluster_quality(X[:5], ["a"] * 5)["silhouette"])
    assert np.isnan(cluster_quality(X[:3], ["a", "b", "c"])["ami"])


def test_cluster_quality_equals_scikit_learns_precomputed_clustering():
    """The condensed-distance implementation gives scikit-learn's average-linkage clustering into
    k clusters and its silhouette on the n × n cosine distance matrix."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, silhouette_score
    from sklearn.metrics.pairwise import cosine_distances

    from morphotx.evaluate.retrieval import cluster_quality

    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(12), 5)
    X = rng.normal(size=(12, 8))[labels] + rng.normal(size=(60, 8)) * 0.8
    D = cosine_distances(X)
    np.fill_diagonal(D, 0.0)
    D = np.clip((D + D.T) / 2, 0.0, None)
    pred = AgglomerativeClustering(n_clusters=12, metric="precomputed", linkage="average").fit_predict(D)
    got = cluster_quality(X, labels.astype(str))
    assert got["ari"] == pytest.approx(adjusted_rand_score(labels, pred))
    assert got["ami"] == pytest.approx(adjusted_mutual_info_score(labels, pred))
    assert got["silhouette"] == pytest.approx(silhouette_score(D, labels, metric="precomputed"))
    assert 0 < got["ari"] < 1  # neither trivial nor perfect: the comparison has teeth
    from scipy.spatial.distance import pdist, squareform

    from morphotx.evaluate.retrieval import _condensed_cosine
    np.testing.assert_allclose(_condensed_cosine(X, block=7), pdist(X, "cosine"), atol=1e-12)  # blocks of 7 rows
    np.testing.assert_allclose(squareform(_condensed_cosine(X, block=7)), D, atol=1e-12)
