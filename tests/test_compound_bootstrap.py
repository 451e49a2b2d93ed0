import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score

from morphotx.report import compound_bootstrap as I

MOAS = [f"moa{k}" for k in range(6)]


def wells(n_compounds=40, seed=0, right=0.5, extra=("zzz",)):
    """1–4 wells per compound, the compound's MoA, and a prediction right with probability
    ``right``, else any MoA or a label no compound has (``extra``)."""
    rng = np.random.default_rng(seed)
    compounds = [f"c{i:03d}" for i in range(n_compounds)]
    moa = {c: MOAS[rng.integers(len(MOAS))] for c in compounds}
    rows = []
    for c in compounds:
        for _ in range(rng.integers(1, 5)):
            hit = rng.random() < right
            rows.append({"compound": c, "moa": moa[c],
                         "predicted": moa[c] if hit else rng.choice(MOAS + list(extra))})
    return pd.DataFrame(rows)


def sk(y, p, metric, sample_weight=None):
    labels = sorted(set(np.asarray(y)[np.asarray(sample_weight) > 0] if sample_weight is not None else y))
    if metric == "accuracy":
        return accuracy_score(y, p, sample_weight=sample_weight)
    return f1_score(y, p, labels=labels, average=metric.split("_")[0], zero_division=0, sample_weight=sample_weight)


def axes(df, extra_compounds=()):
    index = pd.Index(sorted(set(df["compound"])) + list(extra_compounds))
    classes = pd.Index(sorted(set(df["moa"]) | set(df["predicted"])))
    return index, classes


@pytest.mark.parametrize("metric", I.METRICS)
def test_metric_of_a_row_of_ones_is_scikit_learn_s(metric):
    df = wells()
    assert (df["predicted"] == "zzz").any() and (df["predicted"] == df["moa"]).any()
    index, classes = axes(df, extra_compounds=["unused"])  # a compound of another split: no effect
    c = I.counts(df, index, classes)
    got = I.metric_of(c, np.ones((1, len(index))), metric)
    assert got.shape == (1,)
    assert got[0] == pytest.approx(sk(df["moa"], df["predicted"], metric))
    # a predicted label outside the class axis is a miss, as sklearn's labels=present counts it
    inside = I.counts(df, index, pd.Index(sorted(set(df["moa"]))))
    assert I.metric_of(inside, np.ones((1, len(index))), metric)[0] == pytest.approx(got[0])


@pytest.mark.parametrize("metric", I.METRICS)
def test_metric_of_integer_weights_is_scikit_learn_on_repeated_rows(metric):
    df = wells(seed=1)
    index, classes = axes(df)
    c = I.counts(df, index, classes)
    rng = np.random.default_rng(2)
    weights = rng.integers(0, 4, size=(5, len(index))).astype(float)
    weights[0, :] = 0
    weights[0, :3] = 2  # few compounds: some classes lose all support and drop out of the macro average
    got = I.metric_of(c, weights, metric)
    pos = index.get_indexer(df["compound"])
    for d, w in enumerate(weights):
        rep = df.loc[df.index.repeat(w[pos].astype(int))]
        want = sk(rep["moa"], rep["predicted"], metric)
        assert got[d] == pytest.approx(want), d
        assert got[d] == pytest.approx(sk(df["moa"], df["predicted"], metric, sample_weight=w[pos])), d
    assert len(set(np.round(got, 9))) > 1  # the draws differ: the weights are read
    assert np.isnan(I.metric_of(c, np.zeros((1, len(index))), metric)).all()  # no rows in the draw


@pytest.mark.parametrize("scheme", I.RESAMPLING)
def test_stratified_weights_keep_every_moa_s_count_and_are_reproducible(scheme):
    sizes = {"a": 1, "b": 2, "c": 7, "d": 20}
    moa = pd.Series([m for m, n in sizes.items() for _ in range(n)])
    moa.index = [f"x{i}" for i in range(len(moa))]
    moa = moa.sample(frac=1, random_state=1)  # the weight axis is the Series order, not sorted
    w = I.stratified_weights(moa, draws=300, seed=7, scheme=scheme)
    assert w.shape == (300, len(moa))
    assert (w >= 0).all()
    for m, n in sizes.items():
        np.testing.assert_allclose(w[:, (moa == m).to_numpy()].sum(axis=1), n)
        # naive: integer counts; rescaled: counts of n − 1 draws times n/(n − 1)
        unit = 1.0 if scheme == "naive" or n == 1 else n / (n - 1)
        x = w[:, (moa == m).to_numpy()] / unit
        np.testing.assert_allclose(x, np.round(x), atol=1e-12)
    assert (w[:, (moa == "a").to_numpy()] == 1).all()  # a singleton MoA keeps its one compound
    assert (w != 1).any(axis=1).all()  # every draw resamples
    assert w.mean() == pytest.approx(1.0)
    np.testing.assert_array_equal(w, I.stratified_weights(moa, draws=300, seed=7, scheme=scheme))
    assert not np.array_equal(w, I.stratified_weights(moa, draws=300, seed=8, scheme=scheme))
    assert I.stratified_weights(moa.iloc[:0], 5, 0, scheme=scheme).shape == (5, 0)
    with pytest.raises(ValueError, match="scheme"):
        I.stratified_weights(moa, 5, 0, scheme="other")


@pytest.mark.parametrize("n", [2, 3, 8])
def test_rescaled_weights_give_the_unbiased_variance_of_a_stratum_mean_and_naive_ones_do_not(n):
    """For a mean over one MoA's n compounds the unbiased variance is s²/n; the naive bootstrap
    gives (n − 1)/n of it (half for n = 2), the Rao–Wu rescaled one all of it."""
    rng = np.random.default_rng(n)
    y = rng.normal(size=n)
    moa = pd.Series(["m"] * n, index=[f"c{i}" for i in range(n)])
    want = y.var(ddof=1) / n
    got = {s: ((I.stratified_weights(moa, 40000, 1, scheme=s) @ y) / n).var() for s in I.RESAMPLING}
    assert got["rescaled"] == pytest.approx(want, rel=0.05)
    assert got["naive"] == pytest.approx(want * (n - 1) / n, rel=0.05)


def split_counts(n_compounds=60, n_folds=3, right=True, seed=0):
    """One :class:`Counts` per fold: the compounds of 6 MoAs dealt over the folds, 2 wells each,
    predicted right (``right``) or at random."""
    rng = np.random.default_rng(seed)
    comp = pd.DataFrame({"compound": [f"c{i:02d}" for i in range(n_compounds)],
                         "moa": [MOAS[i % len(MOAS)] for i in range(n_compounds)]})
    comp["fold"] = (np.arange(n_compounds) // len(MOAS)) % n_folds
    df = comp.loc[comp.index.repeat(2)].reset_index(drop=True)
    df["predicted"] = df["moa"] if right else rng.choice(MOAS, len(df))
    moa = comp.set_index("compound")["moa"]
    index, classes = pd.Index(moa.index), pd.Index(MOAS)
    splits = [I.counts(g, index, classes) for _, g in df.groupby("fold")]
    return splits, moa, df


def test_paired_bootstrap_of_an_entry_against_itself_is_zero():
    splits, moa, _ = split_counts(right=False)
    w = I.stratified_weights(moa, 500, 0)
    b = I.paired_bootstrap(splits, splits, w, "macro_f1")
    assert b.delta == 0 and b.low <= 0 <= b.high
    assert b.p == pytest.approx(1.0) and b.se == 0 and b.mde == 0 and b.draws == 500


def test_paired_bootstrap_finds_a_planted_gain():
    entry, moa, df = split_counts(right=True)
    base, _, dfb = split_counts(right=False, seed=1)
    w = I.stratified_weights(moa, 1000, 0)
    b = I.paired_bootstrap(entry, base, w, "macro_f1")
    # the observed Δ is the mean over folds of the folds' sklearn macro-F1 differences
    want = np.mean([sk(g["moa"], g["predicted"], "macro_f1") - sk(h["moa"], h["predicted"], "macro_f1")
                    for (_, g), (_, h) in zip(df.groupby("fold"), dfb.groupby("fold"))])
    assert b.delta == pytest.approx(want) and b.delta > 0.5
    assert 0 < b.low < b.delta < b.high and b.p < 0.05
    assert 0 < b.mde < b.delta
    assert b.mde == pytest.approx(I.mde_z(b.se, 0.05, 0.8))
    assert b.draws == 1000
    # the same draws give the opposite difference the other way round
    r = I.paired_bootstrap(base, entry, w, "macro_f1")
    assert (r.delta, r.low, r.high) == pytest.approx((-b.delta, -b.high, -b.low))
    # a wider confidence level widens the interval
    wide = I.paired_bootstrap(entry, base, w, "macro_f1", confidence=0.99)
    assert wide.low <= b.low and wide.high >= b.high and wide.mde > b.mde


def test_paired_bootstrap_without_splits_gives_nan():
    entry, moa, _ = split_counts()
    b = I.paired_bootstrap(entry, [], I.stratified_weights(moa, 50, 0), "accuracy")
    assert np.isnan(b.delta) and np.isnan(b.low) and np.isnan(b.p) and np.isnan(b.mde)


def test_mde_matches_the_closed_forms():
    se = 0.013
    assert I.mde_z(se) == pytest.approx((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * se)
    assert I.mde_z(se) == pytest.approx(2.8016 * se, rel=1e-4)
    assert I.mde_z(se, alpha=0.01, power=0.9) == pytest.approx((stats.norm.ppf(0.995) + stats.norm.ppf(0.9)) * se)
    for df in (1, 4, 14, 100):
        assert I.mde_t(se, df) == pytest.approx((stats.t.ppf(0.975, df) + stats.t.ppf(0.8, df)) * se)
        assert I.mde_t(se, df) > I.mde_z(se)  # heavier tails, larger effect needed
    assert I.mde_t(se, 4, alpha=0.1, power=0.5) == pytest.approx(stats.t.ppf(0.95, 4) * se)
    assert np.isnan(I.mde_t(se, 0)) and np.isnan(I.mde_t(np.nan, 4))


def shifted_splits(shifts, seed=0, n_compounds=120):
    """Six splits of the same compounds (two partitions of three folds) whose entry is right with
    probability 0.5 + the split's ``shift`` and whose baseline is right with probability 0.5:
    per-split model effects that test compounds cannot show."""
    rng = np.random.default_rng(seed)
    moa = pd.Series([MOAS[i % len(MOAS)] for i in range(n_compounds)],
                    index=[f"c{i:03d}" for i in range(n_compounds)])
    index, classes = pd.Index(moa.index), pd.Index(MOAS)
    entry, base = {}, {}
    partitions = [rng.permutation(n_compounds) % 3 for _ in range(-(-len(shifts) // 3))]
    for j, shift in enumerate(shifts):
        test = moa[partitions[j // 3] == j % 3]
        rows = pd.DataFrame({"compound": np.repeat(test.index, 2), "moa": np.repeat(test.to_numpy(), 2)})
        for side, p in ((entry, 0.5 + shift), (base, 0.5)):
            hit = rng.random(len(rows)) < p
            wrong = rng.choice(MOAS, len(rows))
            side[j] = [I.counts(rows.assign(predicted=np.where(hit, rows["moa"], wrong)), index, classes)]
    return entry, base, moa


def test_compound_split_adds_the_between_split_variance_the_bootstrap_cannot_see():
    calm, base, moa = shifted_splits([0.0] * 6)
    w = I.stratified_weights(moa, 1000, 0)
    b = I.paired_bootstrap(calm, base, w, "macro_f1", ratio=0.5)
    # no model effect: τ² near 0 and the interval near the bootstrap's
    assert b.splits == 6 and b.tau2 >= 0
    assert b.cs_se == pytest.approx(b.se, rel=0.35)
    stormy, base2, moa2 = shifted_splits([0.3, -0.3, 0.3, -0.3, 0.3, -0.3], seed=1)
    s = I.paired_bootstrap(stormy, base2, I.stratified_weights(moa2, 1000, 0), "macro_f1", ratio=0.5)
    assert s.tau2 > 0.01  # the splits disagree far beyond their test compounds' noise
    assert s.cs_se > 2 * s.se and s.cs_low < s.low and s.cs_high > s.high
    assert s.cs_p > s.p and np.isfinite(s.cs_df) and 1 <= s.cs_df < 10
    assert s.cs_mde == pytest.approx(I.mde_t(s.cs_se, s.cs_df))
    # the variance is SE*² + τ² (1/J + ratio)
    assert s.cs_se**2 == pytest.approx(s.se**2 + s.tau2 * (1 / 6 + 0.5))
    # without the ratio the combined interval is not computed
    assert np.isnan(I.paired_bootstrap(stormy, base2, I.stratified_weights(moa2, 200, 0), "macro_f1").cs_low)


def test_seeds_are_averaged_within_a_split_not_counted_as_splits():
    entry, moa, _ = split_counts(right=True)
    base, _, _ = split_counts(right=False, seed=1)
    w = I.stratified_weights(moa, 300, 0)
    one = I.paired_bootstrap(dict(enumerate([[c] for c in entry])), dict(enumerate([[c] for c in base])), w,
                             "macro_f1", ratio=0.5)
    two = I.paired_bootstrap(dict(enumerate([[c, c] for c in entry])), dict(enumerate([[c] for c in base])), w,
                             "macro_f1", ratio=0.5)
    assert two.splits == one.splits == 3
    assert (two.delta, two.low, two.high, two.cs_low) == pytest.approx((one.delta, one.low, one.high, one.cs_low))
