"""MOAProfiler metrics against references: scipy's Fisher test, scikit-learn's scores, hand toys."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact
from sklearn.metrics import f1_score, precision_score, recall_score
from sklearn.neighbors import KNeighborsClassifier

from morphotx.evaluate import moaprofiler as mp
from morphotx.evaluate.scores import macro_f1, weighted_prf


def toy(n_moa=4, cpds=3, reps=4, d=20, noise=0.6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_moa, d))
    X, moa, cpd = [], [], []
    for m in range(n_moa):
        for c in range(cpds):
            shift = centres[m] + 0.5 * rng.normal(size=d)
            for _ in range(reps):
                X.append(shift + noise * rng.normal(size=d))
                moa.append(f"moa{m}")
                cpd.append(f"c{m}_{c}")
    return np.array(X), np.array(moa), np.array(cpd)


def test_pcc_matrix_is_pearson():
    X, _, _ = toy()
    np.testing.assert_allclose(mp.pcc_matrix(X), np.corrcoef(X), atol=1e-12)


def test_enrichment_equals_fisher_on_the_pair_table():
    X, moa, cpd = toy()
    P = np.corrcoef(X)
    i, j = np.triu_indices(len(X), 1)
    keep = cpd[i] != cpd[j]
    vals, same = P[i, j][keep], (moa[i] == moa[j])[keep]
    got = mp.enrichment(X, moa, cpd)
    assert list(got["percentile"]) == pytest.approx([98.0, 98.2, 98.4, 98.6, 98.8, 99.0, 99.2, 99.4, 99.6, 99.8])
    for _, r in got.iterrows():
        thr = np.percentile(vals, r["percentile"])
        strong = vals >= thr
        table = [[(strong & same).sum(), (strong & ~same).sum()], [(~strong & same).sum(), (~strong & ~same).sum()]]
        assert [[r["a"], r["b"]], [r["c"], r["d"]]] == table
        ref = fisher_exact(table, alternative="greater")
        assert r["odds_ratio"] == pytest.approx(ref.statistic)
        assert r["p_value"] == pytest.approx(ref.pvalue)
        a, b, c, d = table[0] + table[1]
        if b and c:
            assert r["odds_ratio"] == pytest.approx((a / b) / (c / d))


def test_enrichment_hand_table():
    # four profiles: PCC(0,1)=1 (same MoA), every other pair lower
    X = np.array([[1, 2, 3, 4], [2, 4, 6, 8.1], [4, 3, 2, 1], [1, 3, 2, 4]], float)
    moa = np.array(["a", "a", "b", "b"])
    cpd = np.array(["1", "2", "3", "4"])
    r = mp.enrichment(X, moa, cpd, percentiles=[90]).iloc[0]
    # 6 pairs; the 90th percentile keeps only the best pair (0,1), which is same-MoA
    assert (r["a"], r["b"], r["c"], r["d"]) == (1, 0, 1, 4)
    assert r["odds_ratio"] == np.inf


def test_pcc_delta_and_three_groups_by_hand():
    X, moa, cpd = toy()
    P = np.corrcoef(X)
    i, j = np.triu_indices(len(X), 1)
    same_cpd, same_moa = cpd[i] == cpd[j], moa[i] == moa[j]
    d = mp.pcc_delta(X, moa, cpd, same_compound="exclude")
    assert d["intra_moa_pcc"] == pytest.approx(P[i, j][~same_cpd & same_moa].mean())
    assert d["inter_moa_pcc"] == pytest.approx(P[i, j][~same_moa].mean())
    d_inc = mp.pcc_delta(X, moa, cpd, same_compound="include")
    assert d_inc["intra_moa_pcc"] == pytest.approx(P[i, j][same_moa].mean())
    g, tests = mp.three_groups(X, moa, cpd)
    g = g.set_index("group")
    assert g.loc["same_compound", "mean_pcc"] == pytest.approx(P[i, j][same_cpd].mean())
    assert g.loc["same_compound", "mean_pcc"] > g.loc["other_compound_same_moa", "mean_pcc"] > \
        g.loc["other_compound_other_moa", "mean_pcc"]
    a, b = P[i, j][same_cpd], P[i, j][~same_cpd & same_moa]
    z = (a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert tests.iloc[0]["z"] == pytest.approx(z)
    assert (tests["p_value"] < 1e-4).all()


def test_knn_curve_matches_sklearn_leave_one_out():
    """include-mode kNN at each k equals scikit-learn's kNN on a precomputed PCC distance with the
    query removed, scored with sklearn's weighted metrics."""
    X, moa, cpd = toy(n_moa=2, noise=2.0, seed=2)  # two classes and odd k: no tied votes
    curve = mp.knn_curve(X, moa, cpd, k_max=9, same_compound="include").set_index("k")
    D = 1 - np.corrcoef(X)
    for k in (1, 3, 9):
        pred = []
        for q in range(len(X)):
            rest = np.delete(np.arange(len(X)), q)
            clf = KNeighborsClassifier(n_neighbors=k, metric="precomputed").fit(D[np.ix_(rest, rest)], moa[rest])
            pred.append(clf.predict(D[q, rest][None, :])[0])
        kw = dict(average="weighted", zero_division=0)
        assert 0.5 < curve.loc[k, "f1"] < 1.0  # neither trivial nor perfect
        assert curve.loc[k, "f1"] == pytest.approx(f1_score(moa, pred, **kw), abs=1e-12)
        assert curve.loc[k, "precision"] == pytest.approx(precision_score(moa, pred, **kw), abs=1e-12)
        assert curve.loc[k, "recall"] == pytest.approx(recall_score(moa, pred, **kw), abs=1e-12)


def test_knn_curve_exact_on_hand_toy():
    # an explicit PCC matrix, so the neighbours are known by hand
    moa = np.array(["a", "a", "b", "b", "b"])
    cpd = np.array(["1", "2", "3", "4", "5"])
    P = np.array([[1, .9, .1, .0, .2],
                  [.9, 1, .3, .2, .1],
                  [.1, .3, 1, .8, .7],
                  [.0, .2, .8, 1, .6],
                  [.2, .1, .7, .6, 1]])
    c = mp.knn_curve(None, moa, cpd, same_compound="include", pcc=P).set_index("k")
    assert c.loc[1, "f1"] == 1.0  # every nearest neighbour has the right MoA
    # k=3: row0 neighbours 1(a),4(b),2(b) → b; row1: 0(a),2(b),3(b) → b; b rows all right
    pred = np.array(["b", "b", "b", "b", "b"])
    assert c.loc[3, "f1"] == pytest.approx(f1_score(moa, pred, average="weighted", zero_division=0))
    # k=2 tie (one a, one b) for row 0: the nearest (1, a) wins
    assert c.loc[2, "recall"] == 1.0


def test_knn_exclude_same_compound():
    moa = np.array(["a", "a", "b", "b"])
    cpd = np.array(["1", "1", "2", "3"])  # rows 0,1 are replicates of one compound
    P = np.array([[1, .99, .5, .4], [.99, 1, .5, .4], [.5, .5, 1, .9], [.4, .4, .9, 1]])
    inc = mp.knn_curve(None, moa, cpd, k_max=1, same_compound="include", pcc=P)
    exc = mp.knn_curve(None, moa, cpd, k_max=1, same_compound="exclude", pcc=P)
    assert inc["recall"].iloc[0] == 1.0  # the replicate answers for the query
    assert exc["recall"].iloc[0] == 0.5  # without it, rows 0 and 1 only see MoA b


def test_class_latent_assignment_hand_toy():
    # MoA a: rows 0,1 near (1,0,0,..); MoA b: rows 2,3 near (0,1,..); row 4 is an a that looks like b
    X = np.array([[5, 0, 0, 1], [4, 0, 1, 0], [0, 5, 0, 1], [0, 4, 1, 0], [0, 6, 0, 0.5]], float)
    moa = np.array(["a", "a", "b", "b", "a"])
    cpd = np.array(["1", "2", "3", "4", "5"])
    res = mp.class_latent_assignment(X, moa, cpd, same_compound="exclude")
    assert list(res["pred"]) == ["a", "a", "b", "b", "b"]
    assert res["recall"] == pytest.approx(recall_score(moa, res["pred"], average="weighted"))


def test_class_latent_leaves_the_query_out():
    # a single-row MoA cannot be predicted for its own row (its MLE without the query is empty)
    X = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.2]], float)
    moa = np.array(["a", "a", "b", "c"])
    res = mp.class_latent_assignment(X, moa, np.array(["1", "2", "3", "4"]))
    assert res["pred"][2] != "b" and res["pred"][3] != "c"


def test_heldout_votes_hand_toy():
    Xtr = np.array([[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0, 1, 0.1]], float)
    ytr = np.array(["a", "a", "b", "b"])
    # compound x: two rows look like a, one like b → individual vote a; compound y: b-like
    # compound z's MoA c has no training compound: kept in the table, not scored (Wong 2023)
    Xte = np.array([[1, 0, 0.05], [0.9, 0, 0], [0, 1, 0], [0.1, 1, 0], [0, 1.2, 0], [0, 0, 1]], float)
    yte = np.array(["a", "a", "a", "b", "b", "c"])
    cte = np.array(["x", "x", "x", "y", "y", "z"])
    summary, per = mp.heldout_votes(Xtr, ytr, Xte, yte, cte)
    per = per.set_index("compound")
    assert per.loc["x", "individual_vote"] == "a" and per.loc["y", "individual_vote"] == "b"
    assert per.loc["y", "aggregated_vote"] == "b" and not per.loc["z", "moa_in_training"]
    assert summary["individual_vote_accuracy"] == 1.0 and summary["aggregated_vote_accuracy"] == 1.0
    assert summary["n_compounds"] == 2 and summary["n_compounds_unseen_moa"] == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_scores_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, 300)
    p = np.where(rng.random(300) < 0.4, y, rng.integers(0, 9, 300))
    assert macro_f1(y, p, 9) == pytest.approx(f1_score(y, p, average="macro", zero_division=0))
    w = weighted_prf(y, p, 9)
    labels = sorted(set(y))
    kw = dict(labels=labels, average="weighted", zero_division=0)
    assert w["f1"] == pytest.approx(f1_score(y, p, **kw))
    assert w["precision"] == pytest.approx(precision_score(y, p, **kw))
    assert w["recall"] == pytest.approx(recall_score(y, p, **kw))


def test_bad_same_compound_mode():
    X, moa, cpd = toy()
    with pytest.raises(ValueError, match="same_compound"):
        mp.pcc_delta(X, moa, cpd, same_compound="maybe")


@pytest.mark.parametrize("same", ["exclude", "include"])
def test_blocked_pairs_and_knn_equal_the_full_matrix(same):
    """The pair table and the kNN curve are built a block of rows at a time (no n² matrix at LINCS
    scale); with blocks of 7 rows they equal the computation on the full PCC matrix."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(45, 6))
    moa = np.array([f"m{i % 4}" for i in range(45)])
    cpd = np.array([f"c{i // 3}" for i in range(45)])
    P = mp.pcc_matrix(X)
    full, blocked = mp.all_pairs(moa, cpd, P), mp.all_pairs(moa, cpd, X=X, block=7)
    i, j = np.triu_indices(45, k=1)
    np.testing.assert_allclose(blocked[0], P[i, j], atol=1e-12)
    for a, b in zip(full, blocked):
        np.testing.assert_allclose(a, b, atol=1e-12)
    pd.testing.assert_frame_equal(mp.knn_curve(X, moa, cpd, k_max=10, same_compound=same, block=7),
                                  mp.knn_curve(None, moa, cpd, k_max=10, same_compound=same, pcc=P))
