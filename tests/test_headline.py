import numpy as np
import pandas as pd
import pytest
from scipy import stats

from morphotx.report import headline as H
from morphotx.report import headline_text, print_headline, selection, statistics
from morphotx.settings import HeadlineSettings, SplitSettings

REPS = [(0, 0), (1, 0), (2, 0)]


def rows(source, view, variant, classifier, split, values, level=None, reps=REPS, n_train=100, n_scored=25,
         status=None, reason=""):
    """One classification row per repetition; ``values`` are macro-F1 (NaN = failed)."""
    level = level or variant.split("+")[-1]
    out = []
    for (fold, seed), v in zip(reps, values):
        st = status or ("ok" if np.isfinite(v) else "failed")
        out.append({"source": source, "fold": fold, "seed": seed, "split": split, "view": view, "level": level,
                    "variant": variant, "classifier": classifier, "macro_f1": v,
                    "accuracy": v + 0.1 if np.isfinite(v) else np.nan, "weighted_f1": v,
                    "n_moas_nonzero_f1": 3.0 if np.isfinite(v) else np.nan, "status": st,
                    "reason": reason if st != "ok" else "", "n_train": n_train, "n_scored": n_scored})
    return out


def config(source, view, variant, classifier, val, test, **kw):
    return rows(source, view, variant, classifier, "validation", val, **kw) + \
        rows(source, view, variant, classifier, "test", test, **kw)


def flat_raw_baselines(reps):
    """Raw baseline rows of every view (kNN, collapsed) over ``reps``, nearly flat across folds."""
    out = []
    for view, t in {"cp": 0.3, "l1000": 0.2, "both": 0.5, "late_fusion": 0.1}.items():
        out += config("raw", view, "collapsed", "knn", [t] * len(reps), [t, t + 0.01, t - 0.01, t, t], reps=reps)
    return out


def raw_rows(cp=(0.3, 0.3), l1000=(0.2, 0.2), both=(0.25, 0.25), late=(0.1, 0.1)):
    """Raw baselines: (validation, test) macro-F1, constant over repetitions."""
    out = []
    for view, (v, t) in {"cp": cp, "l1000": l1000, "both": both, "late_fusion": late}.items():
        out += config("raw", view, "collapsed", "knn", [v] * 3, [t] * 3)
    return out


def emb(source, view, variant, values, reps=REPS):
    return [{"source": source, "fold": f, "seed": s, "view": view, "level": "collapsed", "variant": variant,
             "metric": "moa_map", "value": v, "status": "ok", "reason": ""} for (f, s), v in zip(reps, values)]


def table(cls, em=()):
    em = pd.DataFrame(list(em)) if em else pd.DataFrame(
        columns=["source", "fold", "seed", "view", "level", "variant", "metric", "value", "status", "reason"])
    return H.headline_frame(pd.DataFrame(cls), em)


def row(t, entry):
    hit = t[t["entry"] == entry]
    assert len(hit) == 1, (entry, list(t["entry"]))
    return hit.iloc[0]


# ---------------------------------------------------------------------------------------------
# selection
# ---------------------------------------------------------------------------------------------
def selection_fixture():
    cls = raw_rows()
    cls += config("supcon", "both", "collapsed", "knn", [0.5, 0.5, 0.5], [0.3, 0.3, 0.3])   # best on validation
    cls += config("supcon", "both", "collapsed", "mlp", [0.4, 0.4, 0.4], [0.6, 0.6, 0.6])   # best on test
    cls += config("supcon", "cp", "uncollapsed", "knn", [0.45, 0.45, 0.45], [0.7, 0.7, 0.7])
    return cls


def test_selection_uses_validation_not_test():
    t = table(selection_fixture())
    s = row(t, "supcon")
    assert (s["view"], s["variant"], s["classifier"]) == ("both", "collapsed", "knn")
    assert s["configuration"] == "both · collapsed · collapsed · knn"
    assert s["validation_macro_f1"] == pytest.approx(0.5)
    assert s["macro_f1"] == pytest.approx(0.3)
    assert s["input"] == "both" and s["kind"] == "model"
    assert row(t, "supcon (Cell Painting only)")["classifier"] == "knn"


def test_perturbing_test_metrics_changes_no_choice():
    cls = pd.DataFrame(selection_fixture())
    em = pd.DataFrame(emb("supcon", "both", "collapsed", [0.2, 0.2, 0.2]))
    base = H.headline_frame(cls, em)
    rng = np.random.default_rng(0)
    choice_cols = ["entry", "view", "level", "variant", "classifier", "configuration", "input", "baseline",
                   "validation_macro_f1", "n_validation_repetitions", "best_of_input"]
    for _ in range(5):
        pert = cls.copy()
        te = pert["split"] == "test"
        for m in ["macro_f1", "accuracy", "weighted_f1", "n_moas_nonzero_f1"]:
            pert.loc[te, m] = rng.random(te.sum())
        out = H.headline_frame(pert, em)
        a = base[choice_cols].sort_values("entry").reset_index(drop=True)
        b = out[choice_cols].sort_values("entry").reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)


def test_configuration_failing_in_one_fold_is_not_chosen_there_and_failures_are_reported():
    """No "complete in every repetition first" rule: a configuration without a validation score in
    a fold cannot be chosen in that fold, and the other folds still choose it; a failure of a
    configuration that was not chosen in a fold is not the entry's failure, a test failure of a
    chosen one is, and a fold with nothing to choose is reported as such."""
    cls = raw_rows()
    cls += config("clip", "both", "collapsed", "mlp", [0.9, np.nan, 0.9], [0.9, 0.8, 0.7], reason="boom")
    cls += config("clip", "both", "collapsed", "knn", [0.4, 0.4, 0.4], [0.4, 0.5, 0.6])
    cls += config("vae_beta_cp", "cp", "collapsed", "gmm", [0.3, 0.3, 0.3], [0.3, np.nan, 0.3],
                  reason="singular covariance")
    cls += config("vae_tiny", "cp", "collapsed", "gmm", [0.3, np.nan, 0.3], [0.3, np.nan, 0.3], reason="no fit")
    t = table(cls)
    c = row(t, "clip")
    assert c["classifier"] == "mlp"  # the most frequent choice
    assert c["choices"] == "both · collapsed · collapsed · mlp (2/3); both · collapsed · collapsed · knn (1/3)"
    assert c["macro_f1"] == pytest.approx(np.mean([0.9, 0.5, 0.7]))  # fold 1: knn's test score, not mlp's 0.8
    assert c["validation_macro_f1"] == pytest.approx(np.mean([0.9, 0.4, 0.9]))
    assert c["status"] == "ok" and c["n_repetitions"] == 3 and c["n_validation_repetitions"] == 3
    v = row(t, "vae_beta_cp")  # chosen in every fold, its test failed in one
    assert v["status"] == "failed in 1/3 splits: singular covariance"
    assert v["validation_macro_f1"] == pytest.approx(0.3)
    assert v["n_repetitions"] == 2 and v["n_validation_repetitions"] == 3
    tiny = row(t, "vae_tiny")  # nothing to choose in fold 1
    assert tiny["status"] == "no choice in 1/3 splits"
    assert tiny["n_repetitions"] == 2 and tiny["n_validation_repetitions"] == 2
    assert "no configuration with a validation score in 1 of 3 splits" in tiny["note"]
    chosen = selection.select(pd.DataFrame(cls)[lambda d: d["source"] == "clip"])
    assert list(chosen["fold"]) == [0, 1, 2] and list(chosen["classifier"]) == ["mlp", "knn", "mlp"]


def test_validation_scores_tie_broken_by_configuration_string():
    cls = pd.DataFrame(config("m", "both", "collapsed", "mlp", [0.5] * 3, [0.1] * 3)
                       + config("m", "both", "collapsed", "knn", [0.5] * 3, [0.9] * 3))
    chosen = selection.select(cls)
    assert list(chosen["fold"]) == [0, 1, 2] and (chosen["classifier"] == "knn").all()
    # per fold: where mlp is strictly better on validation, it wins that fold only
    cls.loc[(cls["classifier"] == "mlp") & (cls["split"] == "validation") & (cls["fold"] == 1), "macro_f1"] = 0.6
    assert list(selection.select(cls)["classifier"]) == ["knn", "mlp", "knn"]
    scores = selection.validation_scores(cls)
    assert list(scores.loc[scores["fold"] == 0, "configuration"]) == ["both · collapsed · collapsed · knn",
                                                                     "both · collapsed · collapsed · mlp"]


def nested_fixture(n_folds=4, seed=0):
    """Three configurations of one model and two raw ones, random validation and test scores in
    every fold (distinct, so that no fold's choice is a tie)."""
    rng = np.random.default_rng(seed)
    reps = [(f, 0) for f in range(n_folds)]
    cls = []
    for source, view, clf in [("m", "both", "knn"), ("m", "both", "mlp"), ("m", "cp", "knn"),
                              ("raw", "cp", "knn"), ("raw", "both", "knn")]:
        cls += config(source, view, "collapsed", clf, list(rng.uniform(0.2, 0.8, n_folds)),
                      list(rng.uniform(0.2, 0.8, n_folds)), reps=reps)
    return pd.DataFrame(cls)


def test_a_fold_s_choice_depends_on_its_own_validation_rows_only():
    """Nested selection: for every fold f, scrambling the validation and test rows of every other
    fold and the test rows of f leaves f's choice unchanged; changing f's own validation rows
    can change it. The entry's test score is the mean over folds of each fold's own choice's."""
    cls = nested_fixture()
    folds = sorted(cls["fold"].unique())
    assert len(folds) >= 3
    base = selection.select(cls[cls["source"] == "m"]).set_index("fold")["configuration"]
    assert base.nunique() > 1  # the folds do not all agree, so a pooled choice would differ somewhere
    rng = np.random.default_rng(1)
    for f in folds:
        for _ in range(5):
            pert = cls.copy()
            hit = (pert["fold"] != f) | (pert["split"] == "test")
            pert.loc[hit, "macro_f1"] = rng.uniform(0, 1, hit.sum())
            got = selection.select(pert[pert["source"] == "m"]).set_index("fold")["configuration"]
            assert got[f] == base[f], (f, got[f], base[f])
        # its own validation rows do decide: lift the runner-up of fold f above the choice
        scores = selection.validation_scores(cls[cls["source"] == "m"])
        second = scores[scores["fold"] == f].iloc[1]
        own = cls.copy()
        lift = ((own["fold"] == f) & (own["split"] == "validation") & (own["view"] == second["view"])
                & (own["classifier"] == second["classifier"]) & (own["source"] == "m"))
        own.loc[lift, "macro_f1"] = 0.99
        assert selection.select(own[own["source"] == "m"]).set_index("fold")["configuration"][f] == second["configuration"]
    t = H.headline_frame(cls, pd.DataFrame())
    m = row(t, "m")
    test = cls[(cls["source"] == "m") & (cls["split"] == "test")]
    want = [test.loc[(test["fold"] == f) & (test["view"] + " · collapsed · collapsed · " + test["classifier"]
                                            == base[f]), "macro_f1"].item() for f in folds]
    assert m["macro_f1"] == pytest.approx(np.mean(want))
    assert m["n_repetitions"] == len(folds)
    assert m["choices"].count("/4)") == base.nunique()


def test_training_seeds_are_averaged_within_a_fold_not_counted_as_repetitions():
    """3 folds × 2 training seeds: J = 3 splits; selection compares seed means and the test
    score per fold is the mean of the chosen configuration's seeds, one value per fold in the CI."""
    reps = [(f, s) for f in range(3) for s in range(2)]
    # a: seed means 0.45 (one lucky seed at 0.8); b: 0.5 — b is chosen though a has the highest single seed
    cls = config("m", "both", "collapsed", "a", [0.1, 0.8] * 3, [0.9] * 6, reps=reps)
    cls += config("m", "both", "collapsed", "b", [0.5, 0.5] * 3, [0.2, 0.4, 0.3, 0.5, 0.6, 0.8], reps=reps)
    t = H.headline_frame(pd.DataFrame(cls), pd.DataFrame())
    m = row(t, "m")
    assert m["classifier"] == "b" and m["choices"] == "both · collapsed · collapsed · b (3/3)"
    assert m["n_repetitions"] == 3 and m["n_validation_repetitions"] == 3
    per_fold = [0.3, 0.4, 0.7]
    mean, lo, hi = statistics.interval(per_fold, 0.25)
    assert m["macro_f1"] == pytest.approx(mean)
    assert (m["macro_f1_ci_low"], m["macro_f1_ci_high"]) == pytest.approx((lo, hi))
    assert m["validation_macro_f1"] == pytest.approx(0.5)
    text = headline_text.repetitions_text(pd.DataFrame(cls))
    assert text.startswith("J = 3 splits") and "2 training seed(s) per split (averaged" in text
    assert headline_text.repetitions_text(pd.DataFrame(cls), folds=3).startswith("J = 3 splits: 1 partition(s) × 3 folds")


def test_the_chosen_entry_picks_per_fold_across_sources():
    """The learned entry chosen on validation chooses in every fold among every model's
    configurations: a model best on validation in folds 0 and 1 and another best in fold 2 both
    appear in its choices, and its test score mixes them fold by fold."""
    cls = raw_rows()
    cls += config("alpha", "both", "collapsed", "knn", [0.6, 0.6, 0.4], [0.50, 0.52, 0.10])
    cls += config("beta", "both", "collapsed", "knn", [0.5, 0.5, 0.7], [0.90, 0.90, 0.30])
    t = table(cls)
    name = selection.chosen_name("both")
    assert name == "learned, chosen on validation (Cell Painting + L1000)"
    c = row(t, name)
    assert (c["kind"], c["input"], c["source"], bool(c["best_of_input"])) == ("chosen", "both", "chosen", True)
    assert c["choices"] == "alpha: both · collapsed · collapsed · knn (2/3); beta: both · collapsed · collapsed · knn (1/3)"
    assert c["configuration"] == "alpha: both · collapsed · collapsed · knn"
    assert c["macro_f1"] == pytest.approx(np.mean([0.50, 0.52, 0.30]))
    assert c["validation_macro_f1"] == pytest.approx(np.mean([0.6, 0.6, 0.7]))
    assert c["baseline"] == selection.RAW_CHOSEN
    # each model alone keeps its own configuration in every fold
    assert row(t, "alpha")["macro_f1"] == pytest.approx(np.mean([0.50, 0.52, 0.10]))
    assert not row(t, "alpha")["best_of_input"] and not row(t, "beta")["best_of_input"]


# ---------------------------------------------------------------------------------------------
# intervals
# ---------------------------------------------------------------------------------------------
def test_corrected_t_matches_hand_formula():
    v = [0.1, 0.2, 0.3, 0.4, 0.5]
    s2 = np.var(v, ddof=1)  # 0.025
    half = stats.t.ppf(0.975, 4) * np.sqrt((1 / 5 + 0.25) * s2)
    mean, lo, hi = statistics.interval(v, ratio=0.25, ci="corrected_t")
    assert mean == pytest.approx(0.3)
    assert (lo, hi) == pytest.approx((0.3 - half, 0.3 + half))
    _, tlo, thi = statistics.interval(v, ratio=0.25, ci="t")
    assert (tlo, thi) == pytest.approx((0.3 - stats.t.ppf(0.975, 4) * np.sqrt(s2 / 5),
                                        0.3 + stats.t.ppf(0.975, 4) * np.sqrt(s2 / 5)))
    assert thi - tlo < hi - lo
    assert np.isnan(statistics.interval([0.4], 0.25)[1:]).all()
    with pytest.raises(ValueError):
        statistics.interval(v, 0.25, ci="bootstrap")


def test_headline_ci_uses_n_scored_over_n_train():
    reps = [(f, 0) for f in range(5)]
    vals = [0.1, 0.2, 0.3, 0.4, 0.5]
    cls = config("m", "both", "collapsed", "knn", [0.5] * 5, vals, reps=reps, n_train=80, n_scored=20)
    t = H.headline_frame(pd.DataFrame(cls), pd.DataFrame())
    r = row(t, "m")
    half = stats.t.ppf(0.975, 4) * np.sqrt((1 / 5 + 0.25) * 0.025)
    assert r["n_test_over_n_train"] == pytest.approx(0.25)
    assert (r["macro_f1_ci_low"], r["macro_f1_ci_high"]) == pytest.approx((0.3 - half, 0.3 + half))
    tt = row(H.headline_frame(pd.DataFrame(cls), pd.DataFrame(), ci="t"), "m")
    assert tt["macro_f1_ci_high"] - tt["macro_f1_ci_low"] < r["macro_f1_ci_high"] - r["macro_f1_ci_low"]
    assert (tt["ci_method"], r["ci_method"]) == ("t", "corrected_t")


def test_single_repetition_gives_nan_ci_and_note():
    cls = config("m", "both", "collapsed", "knn", [0.5], [0.4], reps=[(0, 0)])
    r = row(table(cls), "m")
    assert r["macro_f1"] == pytest.approx(0.4)
    assert np.isnan(r["macro_f1_ci_low"]) and np.isnan(r["macro_f1_ci_high"])
    assert "no CI" in r["note"]


# ---------------------------------------------------------------------------------------------
# baselines and paired differences
# ---------------------------------------------------------------------------------------------
def test_paired_delta_and_baseline_for_both_chosen_on_validation():
    """A two-assay entry is compared with ``raw, chosen on validation``: in every fold the raw
    configuration (any view) best on that fold's validation rows; baselines get no Δ."""
    # raw cp best on validation in folds 0 and 1, early fusion in fold 2; early fusion is best on test
    cls = [r for r in raw_rows() if r["view"] not in ("cp", "both")]
    cls += config("raw", "cp", "collapsed", "knn", [0.6, 0.6, 0.4], [0.4, 0.4, 0.2])
    cls += config("raw", "both", "collapsed", "knn", [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    cls += config("supcon", "both", "collapsed", "knn", [0.5] * 3, [0.5, 0.6, 0.7])
    t = table(cls)
    raw = row(t, selection.RAW_CHOSEN)
    assert raw["kind"] == "baseline" and raw["input"] == "both"
    assert raw["choices"] == "cp · collapsed · collapsed · knn (2/3); both · collapsed · collapsed · knn (1/3)"
    assert raw["macro_f1"] == pytest.approx(np.mean([0.4, 0.4, 0.5]))
    s = row(t, "supcon")
    assert s["baseline"] == selection.RAW_CHOSEN
    d = [0.1, 0.2, 0.2]
    mean, lo, hi = statistics.interval(d, 0.25)
    assert s["delta_vs_baseline"] == pytest.approx(mean)
    assert (s["delta_ci_low"], s["delta_ci_high"]) == pytest.approx((lo, hi))
    assert (s["delta_fold_ci_low"], s["delta_fold_ci_high"]) == pytest.approx((lo, hi))
    assert s["delta_p"] == pytest.approx(statistics.paired_p(d, 0.25)) and s["delta_method"] == "fold_t"
    assert s["delta_mde"] == pytest.approx(statistics.fold_mde(d, 0.25)) and s["delta_mde"] > 0
    assert np.isnan(s["delta_boot_p"])  # no predictions: no compound bootstrap
    assert s["ratio_vs_baseline"] == pytest.approx(0.6 / (1.3 / 3))
    # baselines: no difference, not even to one another
    for entry in ("raw Cell Painting", "raw early fusion", selection.RAW_CHOSEN):
        b = row(t, entry)
        assert pd.isna(b["baseline"]) and np.isnan(b["delta_vs_baseline"]) and np.isnan(b["delta_p_holm"])
    assert "every split's best raw configuration" in raw["note"]


def test_cp_only_entries_use_raw_cell_painting_and_pair_on_shared_repetitions():
    cls = raw_rows(cp=(0.3, 0.3), both=(0.5, 0.5))  # early fusion best on validation
    cls = [r for r in cls if not (r["view"] == "cp" and r["split"] == "test")]
    cls += rows("raw", "cp", "collapsed", "knn", "test", [0.3, 0.3], reps=REPS[:2])  # one repetition missing
    cls += config("clip", "both", "collapsed", "knn", [0.6] * 3, [0.6] * 3)
    cls += config("clip", "cp", "collapsed", "knn", [0.4] * 3, [0.35, 0.45, 0.9])
    cls += config("vae_beta_cp", "cp", "collapsed", "knn", [0.3] * 3, [0.4] * 3)
    t = table(cls)
    assert row(t, "clip")["baseline"] == selection.RAW_CHOSEN
    assert row(t, selection.RAW_CHOSEN)["configuration"] == "both · collapsed · collapsed · knn"
    c = row(t, "clip (Cell Painting only)")
    assert (c["kind"], c["input"], c["baseline"]) == ("cp_only", "cp", "raw Cell Painting")
    assert c["configuration"] == "cp · collapsed · collapsed · knn"
    assert c["n_delta_repetitions"] == 2
    assert c["delta_vs_baseline"] == pytest.approx(np.mean([0.05, 0.15]))
    v = row(t, "vae_beta_cp")
    assert (v["kind"], v["input"], v["baseline"]) == ("model", "cp", "raw Cell Painting")
    assert "vae_beta_cp (Cell Painting only)" not in set(t["entry"])
    cp_chosen = row(t, selection.chosen_name("cp"))  # among clip's cp configurations and vae_beta_cp's
    assert cp_chosen["configuration"] == "clip: cp · collapsed · collapsed · knn"
    assert (cp_chosen["input"], cp_chosen["baseline"]) == ("cp", "raw Cell Painting")
    assert set(t["entry"]) == {"raw Cell Painting", "raw L1000", "raw early fusion", "raw late fusion", selection.RAW_CHOSEN,
                               selection.chosen_name("both"), selection.chosen_name("cp"), "clip", "clip (Cell Painting only)",
                               "vae_beta_cp"}
    # order: baselines first, then the chosen entries by input, then the rest by test macro-F1 descending
    assert list(t["kind"][:5]) == ["baseline"] * 5
    assert list(t["entry"][5:]) == [selection.chosen_name("both"), selection.chosen_name("cp"), "clip",
                                    "clip (Cell Painting only)", "vae_beta_cp"]


def test_moa_map_from_collapsed_variant_and_late_fusion_note():
    cls = raw_rows()
    cls += config("supcon", "both", "raw+uncollapsed", "knn", [0.5] * 3, [0.5] * 3)
    em = emb("supcon", "both", "raw+collapsed", [0.2, 0.3, 0.4]) + emb("supcon", "both", "collapsed", [0.9] * 3)
    em += emb("raw", "cp", "collapsed", [0.1] * 3)
    em += [{"source": "supcon", "fold": 0, "seed": 0, "view": "both", "level": "collapsed", "variant": np.nan,
            "metric": "moa_map", "value": 5.0, "status": "ok", "reason": ""},
           {"source": "supcon", "fold": 0, "seed": 0, "view": "both", "level": "collapsed",
            "variant": "raw+collapsed", "metric": "moa_map", "value": 7.0, "status": "failed", "reason": "x"}]
    t = table(cls, em)
    assert row(t, "supcon")["moa_map"] == pytest.approx(0.3)
    assert row(t, "raw Cell Painting")["moa_map"] == pytest.approx(0.1)
    late = row(t, "raw late fusion")
    assert np.isnan(late["moa_map"]) and "late fusion" in late["note"]
    assert late["input"] == "both"


# ---------------------------------------------------------------------------------------------
# text and files
# ---------------------------------------------------------------------------------------------
def verdict_fixture():
    cls = raw_rows(cp=(0.3, 0.3), both=(0.5, 0.5))
    cls += config("good", "both", "collapsed", "knn", [0.6] * 3, [0.70, 0.72, 0.74])  # clearly above
    cls += config("flat", "both", "collapsed", "knn", [0.6] * 3, [0.40, 0.60, 0.50])  # includes zero
    return cls


def test_markdown_has_table_method_and_verdict():
    t = table(verdict_fixture())
    md = headline_text.markdown(t, "J = 3 splits: 3 fold(s)")
    assert md.startswith("# morphotx headline")
    assert "Nadeau & Bengio 2003" in md and "J = 3 splits" in md
    assert "**Nested selection.**" in md and "no other split's compounds take part" in md
    assert "| good" in md and "| raw late fusion" in md and f"| ▶ {selection.chosen_name('both')}" in md
    assert "0.720 [" in md and "+0.220 [" in md
    base = selection.RAW_CHOSEN
    assert f"**good** vs {base}: Δ = +0.220" in md and "above its baseline" in md
    assert "(exploratory; Holm-adjusted" in md and "(primary; Holm over the inputs" in md
    flat = next(x for x in md.splitlines() if x.startswith(f"- **flat** vs {base}"))
    assert "not distinguishable" in flat and "minimum detectable effect" in flat
    assert f"a true gain below {row(t, 'flat')['delta_mde']:.3f}" in flat
    assert "- " + headline_text.BEST_OF_INPUT_INTRO in md
    assert "- Exploratory (every model, 2 comparisons): better than the raw baseline of the same input: good." in md
    assert "Not distinguishable from (or not comparable with) the raw baseline: flat." in md
    assert "vs nan" not in md and "**raw early fusion** vs" not in md and f"**{base}** vs" not in md
    lines = headline_text.summary_lines(t)
    assert len(lines) == len(t) and lines[6].startswith("good")
    assert "delta +0.220" in lines[6] and f"vs {base}" in lines[6] and "MDE" in lines[6]
    assert "delta" not in lines[2] and lines[2].startswith("raw early fusion")
    assert lines[5].startswith(selection.chosen_name("both")) and "Holm p" in lines[5]


def test_markdown_states_negative_result():
    cls = raw_rows(both=(0.5, 0.5)) + config("flat", "both", "collapsed", "knn", [0.6] * 3, [0.3, 0.31, 0.32])
    md = headline_text.markdown(table(cls), "J = 3")
    assert "below its baseline" in md
    assert "Exploratory (every model, 1 comparisons): no learned embedding is better than the raw baseline" in md
    assert "Worse than the raw baseline of the same input: flat." in md
    assert "Better than" not in md


def test_write_headline_round_trips(tmp_path):
    cls = pd.DataFrame(verdict_fixture())
    em = pd.DataFrame(emb("good", "both", "collapsed", [0.2, 0.3, 0.4]))
    paths = []
    for i, part in enumerate([cls.iloc[:10], cls.iloc[10:], cls.iloc[:0]]):
        p = tmp_path / f"classification_{i}.parquet"
        part.to_parquet(p)
        paths.append(str(p))
    em_path = tmp_path / "embedding.parquet"
    em.to_parquet(em_path)
    out, md = tmp_path / "out" / "headline.parquet", tmp_path / "out" / "headline.md"
    tsv = tmp_path / "out" / "headline.tsv"
    got = H.headline(paths, [str(em_path)], str(out), str(md), HeadlineSettings(), SplitSettings(folds=3),
                     tsv=str(tsv))
    back = pd.read_parquet(out)
    pd.testing.assert_frame_equal(back, got, check_dtype=False)
    # the settings' defaults (metric auto: macro_f1 for a compound split) are headline_frame's
    pd.testing.assert_frame_equal(got, H.headline_frame(cls, em), check_dtype=False)
    assert row(got, "good")["moa_map"] == pytest.approx(0.3)
    text = md.read_text()
    assert "# morphotx headline" in text and "J = 3 splits: 1 partition(s) × 3 folds" in text
    assert list(pd.read_csv(tsv, sep="\t")["entry"]) == list(headline_text.compact(got)["entry"])
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_empty_input_gives_empty_table():
    t = H.headline_frame(pd.DataFrame(), pd.DataFrame())
    assert t.empty and "delta_ci_low" in t.columns
    assert "# morphotx headline" in headline_text.markdown(t, "J = 0")


def test_moa_map_metric_selects_on_validation_map_without_classifiers():
    """``metric="moa_map"`` (the zero-shot protocol): configurations are (view, level, variant,
    retrieval), chosen on ``validation_moa_map`` and reported with the test ``moa_map``; the
    classification rows (not applicable in a MoA-disjoint split) only give n_test / n_train; late
    fusion has no embedding and no entry."""
    cls = []
    for source, view in (("raw", "cp"), ("raw", "late_fusion"), ("m", "cp")):
        cls += config(source, view, "collapsed", "knn", [np.nan] * 3, [np.nan] * 3, status="not_applicable",
                      n_train=80, n_scored=20)

    def both(source, variant, val, test):
        out = []
        for metric, values in (("validation_moa_map", val), ("moa_map", test)):
            out += [{**r, "metric": metric} for r in emb(source, "cp", variant, values)]
        return out

    em = (both("raw", "collapsed", [0.3] * 3, [0.30, 0.31, 0.32])
          + both("m", "collapsed", [0.2] * 3, [0.90, 0.90, 0.90])  # best on test, worse on validation
          + both("m", "raw+collapsed", [0.4] * 3, [0.40, 0.42, 0.44]))
    t = H.headline_frame(pd.DataFrame(cls), pd.DataFrame(em), metric="moa_map")
    # no late fusion entry (and no raw chosen among one raw view)
    assert list(t["entry"]) == ["raw Cell Painting", selection.chosen_name("cp"), "m"]
    m = row(t, "m")
    assert m["classifier"] == selection.RETRIEVAL and m["variant"] == "raw+collapsed"  # chosen on validation
    assert m["moa_map"] == pytest.approx(0.42) and m["validation_moa_map"] == pytest.approx(0.4)
    assert m["delta_vs_baseline"] == pytest.approx(0.42 - 0.31)
    assert m["n_test_over_n_train"] == pytest.approx(20 / 80)
    c = row(t, selection.chosen_name("cp"))
    assert c["configuration"] == "m: cp · collapsed · raw+collapsed · retrieval" and c["moa_map"] == pytest.approx(0.42)
    assert "MoA mAP" in headline_text.markdown(t, "J = 3") and "Zero-shot" in headline_text.markdown(t, "J = 3")


def test_headline_metric_auto_follows_the_split_mode():
    from morphotx.configcheck import resolve_headline_metric
    from morphotx.io import MorphotxInputError

    for mode, want in (("compound", "macro_f1"), ("moa_disjoint", "moa_map")):
        assert resolve_headline_metric("auto", mode) == want
    with pytest.raises(MorphotxInputError, match="headline.metric: moa_map"):
        resolve_headline_metric("macro_f1", "moa_disjoint")


def test_well_holdout_headline_says_it_is_not_an_unseen_compound_test(capsys, tmp_path):
    """``split.mode: well_holdout``: every row's ``protocol`` says the test rows are wells of
    training compounds; the Markdown page opens with that warning, the display table has a
    protocol column, the verdict speaks of held-out wells, and the terminal summary warns. The
    default (compound) headline has none of it."""
    cls = raw_rows(both=(0.5, 0.5)) + config("flat", "both", "collapsed", "knn", [0.6] * 3, [0.3, 0.31, 0.32])
    t = H.headline_frame(pd.DataFrame(cls), pd.DataFrame(), split_mode="well_holdout")
    assert (t["protocol"] == selection.PROTOCOLS["well_holdout"]).all() and "NOT an unseen-compound test" in t["protocol"][0]
    md = headline_text.markdown(t, "J = 3")
    assert md.split("\n")[2].startswith("**Well holdout") and "not an unseen-compound test" in md
    assert "on held-out wells" in md and "on held-out compounds" not in md
    assert "no other split's wells take part" in md and "best on its validation wells" in md
    assert "- " + headline_text.best_of_input_intro(t) in md and "validation wells" in headline_text.best_of_input_intro(t)
    assert "test compounds" not in md and "validation compounds" not in md
    assert "protocol" in headline_text.compact(t).columns
    t.to_parquet(tmp_path / "h.parquet")
    assert print_headline.main([str(tmp_path / "h.parquet")]) == 0
    assert "NOT an unseen-compound test" in capsys.readouterr().out
    plain = H.headline_frame(pd.DataFrame(cls), pd.DataFrame())
    assert (plain["protocol"] == "held-out compounds").all()
    assert "Well holdout" not in headline_text.markdown(plain, "J = 3") and "protocol" not in headline_text.compact(plain).columns
    with pytest.raises(ValueError, match="split_mode"):
        H.headline_frame(pd.DataFrame(cls), pd.DataFrame(), split_mode="plates")


# ---------------------------------------------------------------------------------------------
# multiplicity: p-values of the differences and Holm's adjustment over the learned entries
# ---------------------------------------------------------------------------------------------
def test_paired_p_is_the_interval_s_t_test():
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = rng.normal(rng.uniform(-0.05, 0.05), 0.04, size=5)
        mean, lo, hi = statistics.interval(v, 0.25)
        p = statistics.paired_p(v, 0.25)
        assert (lo > 0 or hi < 0) == (p < 0.05)  # the CI excludes zero exactly when p < 1 - confidence
    v = [0.1, 0.2, 0.3, 0.4, 0.5]
    t = 0.3 / np.sqrt((1 / 5 + 0.25) * np.var(v, ddof=1))
    assert statistics.paired_p(v, 0.25) == pytest.approx(2 * stats.t.sf(t, 4))
    assert statistics.paired_p(v, ci="t") < statistics.paired_p(v, 0.25)
    assert np.isnan(statistics.paired_p([0.2], 0.25)) and np.isnan(statistics.paired_p([0.1, np.nan], 0.25))
    assert statistics.paired_p([0.25, 0.25, 0.25], 0.25) == 0.0 and statistics.paired_p([0.0, 0.0], 0.25) == 1.0


def test_holm_matches_the_hand_computation():
    got = statistics.holm([0.01, 0.04, 0.03, 0.2, np.nan])
    np.testing.assert_allclose(got[:4], [0.04, 0.09, 0.09, 0.2])  # 4·0.01, 3·0.03, max(2·0.04, 0.09), 0.2
    assert np.isnan(got[4])
    np.testing.assert_allclose(statistics.holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1, monotone in the raw p
    assert statistics.holm([]).size == 0 and np.isnan(statistics.holm([np.nan])).all()


def test_headline_adjusts_for_every_learned_entry_compared():
    reps = [(f, 0) for f in range(5)]
    cls = flat_raw_baselines(reps)
    # one learned entry clearly above its baseline, one marginally (its CI alone excludes zero), eight flat
    cls += config("good", "both", "collapsed", "knn", [0.6] * 5, [0.70, 0.72, 0.74, 0.71, 0.73], reps=reps)
    cls += config("lucky", "both", "collapsed", "knn", [0.6] * 5, [0.53, 0.56, 0.51, 0.57, 0.54], reps=reps)
    for i in range(8):
        cls += config(f"flat{i}", "both", "collapsed", "knn", [0.6] * 5,
                      list(0.5 + 0.03 * np.sin(np.arange(5) + i)), reps=reps)
    t = table(cls)
    learned = t[t["kind"].isin(["model", "cp_only"])]
    assert len(learned) == 10 and learned["delta_p"].notna().all()
    np.testing.assert_allclose(learned["delta_p_holm"], statistics.holm(learned["delta_p"]))
    assert t.loc[t["kind"] == "baseline", "delta_p_holm"].isna().all()
    # the chosen entry is the primary comparison: not in the exploratory family, Holm over the inputs only
    chosen = row(t, selection.chosen_name("both"))
    assert np.isnan(chosen["delta_p_holm"]) and chosen["delta_p"] == pytest.approx(chosen["delta_p_holm_best"])
    assert learned["delta_p_holm_best"].isna().all()
    lucky, good = row(t, "lucky"), row(t, "good")
    assert lucky["delta_ci_low"] > 0 and lucky["delta_p"] < 0.05 <= lucky["delta_p_holm"]
    assert good["delta_p_holm"] < 0.05
    lines = headline_text.verdict(t)
    better = [x for x in lines if x.startswith("Exploratory (every model, 10 comparisons): better than")]
    assert better and "good" in better[0] and "lucky" in better[0]
    assert "After Holm's correction for the 10 learned entries compared (family-wise error 5 %): good remains." \
        in better[0]
    assert any(x.startswith(f"**lucky** vs {selection.RAW_CHOSEN}") and "(exploratory; Holm-adjusted" in x for x in lines)
    md = headline_text.markdown(t, "J = 5")
    assert "p (Holm)" in md and "Every other learned entry is exploratory: its p (Holm) is adjusted over all" in md
    shown = headline_text.compact(t).set_index("entry")["p (Holm)"]
    assert shown["lucky"] == f"{lucky['delta_p_holm']:.3f}" and shown["lucky"] != f"{lucky['delta_p']:.3f}"
    assert any("Holm p" in x for x in headline_text.summary_lines(t) if x.startswith("lucky"))


def test_front_page_keeps_every_summary_line_of_the_verdict():
    # better, worse and flat entries: four summary sentences after the per-entry lines
    cls = verdict_fixture() + config("bad", "both", "collapsed", "knn", [0.6] * 3, [0.30, 0.31, 0.32])
    t = table(cls)
    summary = [v for v in headline_text.verdict(t) if not v.startswith("**")]
    starts = [headline_text.BEST_OF_INPUT_INTRO,
              "Exploratory (every model, 3 comparisons): better than the raw baseline of the same input: good.",
              "Worse than the raw baseline of the same input: bad.",
              "Not distinguishable from (or not comparable with) the raw baseline: flat."]
    assert len(summary) == len(starts) and all(v.startswith(s) for v, s in zip(summary, starts)), summary
    page = headline_text.front_page_rst(t, "intro")
    assert all(f"- {v}" in page for v in summary)
    assert "- **good** vs" not in page  # the per-entry sentences stay in headline.md


def test_the_learned_entry_to_quote_is_chosen_on_validation_per_input(capsys, tmp_path):
    """"The best learned model" is the learned configuration best on validation, chosen per fold
    and per input among every model, never the test column's maximum; its Holm adjustment counts
    only those compared; the verdict and the terminal summary name it."""
    cls = raw_rows(cp=(0.3, 0.3), both=(0.5, 0.5))
    cls += config("val_best", "both", "collapsed", "knn", [0.7] * 3, [0.45, 0.50, 0.55])  # best on validation
    cls += config("test_best", "both", "collapsed", "knn", [0.6] * 3, [0.80, 0.82, 0.84])  # best on test
    cls += config("test_best", "cp", "collapsed", "knn", [0.35] * 3, [0.30, 0.31, 0.32])
    cls += config("val_best", "cp", "collapsed", "knn", [0.35] * 3, [0.50, 0.52, 0.54])  # tie on validation: by name
    t = table(cls)
    best = t[t["best_of_input"]]
    assert sorted(zip(best["input"], best["entry"], best["configuration"])) == [
        ("both", selection.chosen_name("both"), "val_best: both · collapsed · collapsed · knn"),
        ("cp", selection.chosen_name("cp"), "test_best: cp · collapsed · collapsed · knn")]
    assert (best["kind"] == "chosen").all() and not t.loc[t["kind"] != "chosen", "best_of_input"].any()
    assert row(t, selection.chosen_name("both"))["macro_f1"] == pytest.approx(0.5)  # val_best's, not test_best's 0.82
    np.testing.assert_allclose(best["delta_p_holm_best"], statistics.holm(best["delta_p"]))
    assert t.loc[~t["best_of_input"], "delta_p_holm_best"].isna().all()
    # the test scores decide nothing: scrambling them moves no choice
    pert = pd.DataFrame(cls)
    te = pert["split"] == "test"
    pert.loc[te, "macro_f1"] = np.random.default_rng(1).random(te.sum())
    moved = H.headline_frame(pert, pd.DataFrame(columns=["source", "fold", "seed", "view", "level", "variant",
                                                          "metric", "value", "status", "reason"]))
    assert sorted(moved.loc[moved["best_of_input"], "choices"]) == sorted(best["choices"])
    line = headline_text.best_of_input_line(t)
    assert line in headline_text.verdict(t) and line in headline_text.front_page_rst(t, "intro")
    assert line.startswith(headline_text.BEST_OF_INPUT_INTRO + " — ")
    assert "**Cell Painting + L1000**: chose val_best: both · collapsed · collapsed · knn (3/3); validation " \
           "macro-F1 0.700, test 0.500 [" in line
    assert "**Cell Painting only**: chose test_best: cp · collapsed · collapsed · knn (3/3)" in line
    assert "Holm over the 2 inputs" in line and "not distinguishable from its baseline" in line
    shown = headline_text.compact(t).set_index("entry")["validation macro-F1"]
    assert shown[f"▶ {selection.chosen_name('both')}"] == "0.700" and shown["raw early fusion"] == "0.500"
    assert "▶ val_best" not in shown.index and "test_best" in shown.index
    header = next(x for x in headline_text.markdown(t, "J = 3").splitlines() if x.startswith("| entry"))
    assert [c.strip() for c in header.split("|")][2:4] == [
        "configuration (view · level · variant · classifier; most frequent choice of the splits)",
        "validation macro-F1"]
    assert headline_text.best_of_input_line(t.drop(columns="best_of_input")) is None
    t.to_parquet(tmp_path / "h.parquet")  # make run's printout: one line per input after the table
    assert print_headline.main([str(tmp_path / "h.parquet")]) == 0
    out = capsys.readouterr().out.splitlines()
    i = out.index(headline_text.BEST_OF_INPUT_INTRO + ":")
    assert out[i + 1].startswith("  Cell Painting + L1000: chose val_best: both · ")
    assert not any("**" in x or "−" in x for x in out[i:])  # plain text, ASCII minus signs
    assert out[i + 2].startswith("  Cell Painting only: chose test_best: cp · ") and len(out) == i + 3


# ---------------------------------------------------------------------------------------------
# compound bootstrap (predictions)
# ---------------------------------------------------------------------------------------------
def bootstrap_fixture():
    """60 test compounds of 6 MoAs over 3 folds, 2 wells each; model ``m`` (Cell Painting only)
    predicts every well right, raw Cell Painting at random; the classification rows' test
    macro-F1 are those of the predictions."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    moas = [f"moa{k}" for k in range(6)]
    compounds = pd.DataFrame({"compound": [f"c{i:02d}" for i in range(60)], "moa": [moas[i % 6] for i in range(60)],
                              "fold": [(i // 6) % 3 for i in range(60)]})
    wells = compounds.loc[compounds.index.repeat(2)].reset_index(drop=True)
    preds, cls = [], []
    for source, right in (("m", True), ("raw", False)):
        p = wells.assign(source=source, seed=0, view="cp", level="collapsed", variant="collapsed", classifier="knn",
                         split="test", predicted=wells["moa"] if right else rng.choice(moas, len(wells)))
        preds.append(p)
        per_fold = [f1_score(g["moa"], g["predicted"], labels=sorted(set(g["moa"])), average="macro", zero_division=0)
                    for _, g in p.groupby("fold")]
        cls += config(source, "cp", "collapsed", "knn", [0.5] * 3, per_fold)
    return pd.DataFrame(cls), pd.concat(preds, ignore_index=True)


def test_compound_bootstrap_beside_the_fold_t_and_primary_only_when_asked():
    """With predictions the compound bootstrap is computed beside the fold-level t; the primary
    columns are compound + split's by default (headline.delta), the t's or the bootstrap's when asked."""
    cls, preds = bootstrap_fixture()
    default = row(H.headline_frame(cls, pd.DataFrame(), predictions=preds, bootstrap=400, seed=3), "m")
    assert default["delta_method"] == "compound_split" and np.isfinite(default["delta_boot_p"])
    assert (default["delta_ci_low"], default["delta_p"]) == (default["delta_cs_ci_low"], default["delta_cs_p"])
    fold = row(H.headline_frame(cls, pd.DataFrame(), predictions=preds, bootstrap=400, seed=3, delta="fold_t"), "m")
    assert fold["delta_method"] == "fold_t"
    assert (fold["delta_ci_low"], fold["delta_p"]) == (fold["delta_fold_ci_low"], fold["delta_fold_p"])
    t = H.headline_frame(cls, pd.DataFrame(), predictions=preds, bootstrap=400, seed=3, delta="compound_bootstrap")
    m = row(t, "m")
    assert m["baseline"] == "raw Cell Painting" and m["delta_method"] == "compound_bootstrap"
    for k in ("ci_low", "ci_high", "p", "mde"):
        assert m[f"delta_{k}"] == m[f"delta_boot_{k}"]
        assert np.isfinite(m[f"delta_fold_{k}"])  # the fold-level t is kept beside it
    raw = row(t, "raw Cell Painting")
    assert m["delta_vs_baseline"] == pytest.approx(m["macro_f1"] - raw["macro_f1"])  # same numbers both ways
    assert 0 < m["delta_ci_low"] < m["delta_vs_baseline"] < m["delta_ci_high"] and m["delta_p"] < 0.05
    assert 0 < m["delta_mde"] < m["delta_vs_baseline"]
    assert row(t, selection.chosen_name("cp"))["delta_method"] == "compound_bootstrap"
    assert "paired bootstrap over the test compounds" in headline_text.markdown(t, "J = 3")
    again = H.headline_frame(cls, pd.DataFrame(), predictions=preds, bootstrap=400, seed=3, delta="compound_bootstrap")
    assert row(again, "m")["delta_ci_low"] == m["delta_ci_low"]  # reproducible by seed
    off = row(H.headline_frame(cls, pd.DataFrame(), predictions=preds, bootstrap=0, delta="compound_bootstrap"), "m")
    assert off["delta_method"] == "fold_t" and np.isnan(off["delta_boot_p"])
    assert (off["delta_ci_low"], off["delta_p"]) == (off["delta_fold_ci_low"], off["delta_fold_p"])


def test_compound_split_is_the_bootstrap_plus_the_between_split_variance():
    """``delta="compound_split"``: Δ's CI, p and MDE are the compound bootstrap's widened by the
    between-split variance (morphotx.report.compound_bootstrap), with the fold t and the plain bootstrap beside."""
    cls, preds = bootstrap_fixture()
    t = H.headline_frame(cls, pd.DataFrame(), predictions=preds, bootstrap=400, seed=3, delta="compound_split")
    m = row(t, "m")
    assert m["delta_method"] == "compound_split"
    for k in ("ci_low", "ci_high", "p", "mde"):
        assert m[f"delta_{k}"] == m[f"delta_cs_{k}"]
        assert np.isfinite(m[f"delta_boot_{k}"]) and np.isfinite(m[f"delta_fold_{k}"])
    assert m["delta_tau2"] >= 0
    assert m["delta_cs_ci_high"] - m["delta_cs_ci_low"] >= 0.9 * (m["delta_boot_ci_high"] - m["delta_boot_ci_low"])
    assert 0 < m["delta_ci_low"] < m["delta_vs_baseline"] < m["delta_ci_high"]
    assert "between splits" in headline_text.markdown(t, "J = 3")
    with pytest.raises(ValueError, match="delta must be one of"):
        H.headline_frame(cls, pd.DataFrame(), predictions=preds, delta="other")
    # the naive resampling is narrower than the rescaled one (small MoAs: 10 compounds each here)
    naive = row(H.headline_frame(cls, pd.DataFrame(), predictions=preds, bootstrap=2000, seed=3, resample="naive"), "m")
    wide = row(H.headline_frame(cls, pd.DataFrame(), predictions=preds, bootstrap=2000, seed=3), "m")
    assert naive["delta_boot_mde"] < wide["delta_boot_mde"]
