import numpy as np
import pandas as pd
import pytest
from scipy import stats

from morphotx import headline as H

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


def test_incomplete_configuration_loses_to_complete_one_and_failure_is_reported():
    cls = raw_rows()
    cls += config("clip", "both", "collapsed", "mlp", [0.9, np.nan, 0.9], [0.9, 0.9, 0.9], reason="boom")
    cls += config("clip", "both", "collapsed", "knn", [0.4, 0.4, 0.4], [0.4, 0.4, 0.4])
    cls += config("vae_beta_cp", "cp", "collapsed", "gmm", [0.3, np.nan, 0.3], [0.3, np.nan, 0.3],
                  reason="singular covariance")
    t = table(cls)
    assert row(t, "clip")["classifier"] == "knn"
    assert row(t, "clip")["status"] == "ok"
    v = row(t, "vae_beta_cp")
    assert v["status"] == "failed in 1/3 repetitions: singular covariance"
    assert v["validation_macro_f1"] == pytest.approx(0.3)
    assert v["n_repetitions"] == 2 and v["n_validation_repetitions"] == 2
    assert "chosen among those scored in 2" in v["note"]


def test_validation_scores_tie_broken_by_configuration_string():
    cls = pd.DataFrame(config("m", "both", "collapsed", "mlp", [0.5] * 3, [0.1] * 3)
                       + config("m", "both", "collapsed", "knn", [0.5] * 3, [0.9] * 3))
    assert H.select(cls)["classifier"] == "knn"


# ---------------------------------------------------------------------------------------------
# intervals
# ---------------------------------------------------------------------------------------------
def test_corrected_t_matches_hand_formula():
    v = [0.1, 0.2, 0.3, 0.4, 0.5]
    s2 = np.var(v, ddof=1)  # 0.025
    half = stats.t.ppf(0.975, 4) * np.sqrt((1 / 5 + 0.25) * s2)
    mean, lo, hi = H.interval(v, ratio=0.25, ci="corrected_t")
    assert mean == pytest.approx(0.3)
    assert (lo, hi) == pytest.approx((0.3 - half, 0.3 + half))
    _, tlo, thi = H.interval(v, ratio=0.25, ci="t")
    assert (tlo, thi) == pytest.approx((0.3 - stats.t.ppf(0.975, 4) * np.sqrt(s2 / 5),
                                        0.3 + stats.t.ppf(0.975, 4) * np.sqrt(s2 / 5)))
    assert thi - tlo < hi - lo
    assert np.isnan(H.interval([0.4], 0.25)[1:]).all()
    with pytest.raises(ValueError):
        H.interval(v, 0.25, ci="bootstrap")


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
    # raw cp best on validation (0.6) though early fusion is best on test
    cls = raw_rows(cp=(0.6, 0.2), both=(0.5, 0.5))
    cls = [r for r in cls if not (r["source"] == "raw" and r["view"] == "cp" and r["split"] == "test")]
    cls += rows("raw", "cp", "collapsed", "knn", "test", [0.4, 0.4, 0.5])
    cls += config("supcon", "both", "collapsed", "knn", [0.5] * 3, [0.5, 0.6, 0.7])
    t = table(cls)
    s = row(t, "supcon")
    assert s["baseline"] == "raw Cell Painting"
    d = [0.1, 0.2, 0.2]
    mean, lo, hi = H.interval(d, 0.25)
    assert s["delta_vs_baseline"] == pytest.approx(mean)
    assert (s["delta_ci_low"], s["delta_ci_high"]) == pytest.approx((lo, hi))
    assert s["ratio_vs_baseline"] == pytest.approx(0.6 / (1.3 / 3))
    # baseline rows: delta to the best raw baseline, NaN for that one itself
    best = row(t, "raw Cell Painting")
    assert pd.isna(best["baseline"]) and np.isnan(best["delta_vs_baseline"])
    assert "best raw baseline" in best["note"]
    ef = row(t, "raw early fusion")
    assert ef["baseline"] == "raw Cell Painting"
    assert ef["delta_vs_baseline"] == pytest.approx(np.mean([0.1, 0.1, 0.0]))


def test_cp_only_entries_use_raw_cell_painting_and_pair_on_shared_repetitions():
    cls = raw_rows(cp=(0.3, 0.3), both=(0.5, 0.5))  # early fusion best on validation
    cls = [r for r in cls if not (r["view"] == "cp" and r["split"] == "test")]
    cls += rows("raw", "cp", "collapsed", "knn", "test", [0.3, 0.3], reps=REPS[:2])  # one repetition missing
    cls += config("clip", "both", "collapsed", "knn", [0.6] * 3, [0.6] * 3)
    cls += config("clip", "cp", "collapsed", "knn", [0.4] * 3, [0.35, 0.45, 0.9])
    cls += config("vae_beta_cp", "cp", "collapsed", "knn", [0.4] * 3, [0.4] * 3)
    t = table(cls)
    assert row(t, "clip")["baseline"] == "raw early fusion"
    c = row(t, "clip (Cell Painting only)")
    assert (c["kind"], c["input"], c["baseline"]) == ("cp_only", "cp", "raw Cell Painting")
    assert c["n_delta_repetitions"] == 2
    assert c["delta_vs_baseline"] == pytest.approx(np.mean([0.05, 0.15]))
    v = row(t, "vae_beta_cp")
    assert (v["kind"], v["input"], v["baseline"]) == ("model", "cp", "raw Cell Painting")
    assert "vae_beta_cp (Cell Painting only)" not in set(t["entry"])
    assert set(t["entry"]) == {"raw Cell Painting", "raw L1000", "raw early fusion", "raw late fusion", "clip",
                               "clip (Cell Painting only)", "vae_beta_cp"}
    # order: baselines first, then by test macro-F1 descending
    assert list(t["kind"][:4]) == ["baseline"] * 4
    assert list(t["entry"][4:]) == ["clip", "clip (Cell Painting only)", "vae_beta_cp"]


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
    md = H.markdown(t, "J = 3: 3 fold(s) × 1 seed(s)")
    assert md.startswith("# morphotx headline")
    assert "Nadeau & Bengio 2003" in md and "validation compounds only" in md and "J = 3" in md
    assert "| good" in md and "| raw late fusion" in md
    assert "0.720 [" in md and "+0.220 [" in md
    assert "**good** vs raw early fusion: Δ = +0.220" in md and "above its baseline" in md
    assert "**flat** vs raw early fusion" in md and "not distinguishable" in md
    assert "Better than the raw baseline of the same input: good." in md
    assert "Not distinguishable from (or not comparable with) the raw baseline: flat." in md
    assert "vs nan" not in md and "**raw early fusion** vs" not in md
    lines = H.summary_lines(t)
    assert len(lines) == len(t) and lines[4].startswith("good")
    assert "delta +0.220" in lines[4]
    assert "delta" not in lines[2] and lines[2].startswith("raw early fusion")


def test_markdown_states_negative_result():
    cls = raw_rows(both=(0.5, 0.5)) + config("flat", "both", "collapsed", "knn", [0.6] * 3, [0.3, 0.31, 0.32])
    md = H.markdown(table(cls), "J = 3")
    assert "below its baseline" in md
    assert "No learned embedding is better than the raw baseline" in md
    assert "Worse than the raw baseline of the same input: flat." in md


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
    got = H.headline(paths, [str(em_path)], str(out), str(md))
    back = pd.read_parquet(out)
    pd.testing.assert_frame_equal(back, got, check_dtype=False)
    pd.testing.assert_frame_equal(got, H.headline_frame(cls, em), check_dtype=False)
    text = md.read_text()
    assert "# morphotx headline" in text and "J = 3: 3 fold(s) × 1 seed(s)" in text
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_empty_input_gives_empty_table():
    t = H.headline_frame(pd.DataFrame(), pd.DataFrame())
    assert t.empty and "delta_ci_low" in t.columns
    assert "# morphotx headline" in H.markdown(t, "J = 0")


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
    assert list(t["entry"]) == ["raw Cell Painting", "m"]  # no late fusion entry
    m = row(t, "m")
    assert m["classifier"] == H.RETRIEVAL and m["variant"] == "raw+collapsed"  # chosen on validation
    assert m["moa_map"] == pytest.approx(0.42) and m["validation_moa_map"] == pytest.approx(0.4)
    assert m["delta_vs_baseline"] == pytest.approx(0.42 - 0.31)
    assert m["n_test_over_n_train"] == pytest.approx(20 / 80)
    assert "MoA mAP" in H.markdown(t, "J = 3") and "Zero-shot" in H.markdown(t, "J = 3")


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
    assert (t["protocol"] == H.PROTOCOLS["well_holdout"]).all() and "NOT an unseen-compound test" in t["protocol"][0]
    md = H.markdown(t, "J = 3")
    assert md.split("\n")[2].startswith("**Well holdout") and "not an unseen-compound test" in md
    assert "on held-out wells" in md and "on held-out compounds" not in md and "validation wells only" in md
    assert "- Chosen on validation wells, one learned entry per input" in md and "test compounds" not in md
    assert "protocol" in H.compact(t).columns
    t.to_parquet(tmp_path / "h.parquet")
    assert H.main([str(tmp_path / "h.parquet")]) == 0
    assert "NOT an unseen-compound test" in capsys.readouterr().out
    plain = H.headline_frame(pd.DataFrame(cls), pd.DataFrame())
    assert (plain["protocol"] == "held-out compounds").all()
    assert "Well holdout" not in H.markdown(plain, "J = 3") and "protocol" not in H.compact(plain).columns
    with pytest.raises(ValueError, match="split_mode"):
        H.headline_frame(pd.DataFrame(cls), pd.DataFrame(), split_mode="plates")


# ---------------------------------------------------------------------------------------------
# multiplicity: p-values of the differences and Holm's adjustment over the learned entries
# ---------------------------------------------------------------------------------------------
def test_paired_p_is_the_interval_s_t_test():
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = rng.normal(rng.uniform(-0.05, 0.05), 0.04, size=5)
        mean, lo, hi = H.interval(v, 0.25)
        p = H.paired_p(v, 0.25)
        assert (lo > 0 or hi < 0) == (p < 0.05)  # the CI excludes zero exactly when p < 1 - confidence
    v = [0.1, 0.2, 0.3, 0.4, 0.5]
    t = 0.3 / np.sqrt((1 / 5 + 0.25) * np.var(v, ddof=1))
    assert H.paired_p(v, 0.25) == pytest.approx(2 * stats.t.sf(t, 4))
    assert H.paired_p(v, ci="t") < H.paired_p(v, 0.25)
    assert np.isnan(H.paired_p([0.2], 0.25)) and np.isnan(H.paired_p([0.1, np.nan], 0.25))
    assert H.paired_p([0.25, 0.25, 0.25], 0.25) == 0.0 and H.paired_p([0.0, 0.0], 0.25) == 1.0


def test_holm_matches_the_hand_computation():
    got = H.holm([0.01, 0.04, 0.03, 0.2, np.nan])
    np.testing.assert_allclose(got[:4], [0.04, 0.09, 0.09, 0.2])  # 4·0.01, 3·0.03, max(2·0.04, 0.09), 0.2
    assert np.isnan(got[4])
    np.testing.assert_allclose(H.holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1, monotone in the raw p
    assert H.holm([]).size == 0 and np.isnan(H.holm([np.nan])).all()


def test_headline_adjusts_for_every_learned_entry_compared():
    reps = [(f, 0) for f in range(5)]
    cls = []
    for view, t in {"cp": 0.3, "l1000": 0.2, "both": 0.5, "late_fusion": 0.1}.items():
        cls += config("raw", view, "collapsed", "knn", [t] * 5, [t, t + 0.01, t - 0.01, t, t], reps=reps)
    # one learned entry clearly above its baseline, one marginally (its CI alone excludes zero), eight flat
    cls += config("good", "both", "collapsed", "knn", [0.6] * 5, [0.70, 0.72, 0.74, 0.71, 0.73], reps=reps)
    cls += config("lucky", "both", "collapsed", "knn", [0.6] * 5, [0.53, 0.56, 0.51, 0.57, 0.54], reps=reps)
    for i in range(8):
        cls += config(f"flat{i}", "both", "collapsed", "knn", [0.6] * 5,
                      list(0.5 + 0.03 * np.sin(np.arange(5) + i)), reps=reps)
    t = table(cls)
    learned = t[t["kind"] != "baseline"]
    assert len(learned) == 10 and learned["delta_p"].notna().all()
    np.testing.assert_allclose(learned["delta_p_holm"], H.holm(learned["delta_p"]))
    assert t.loc[t["kind"] == "baseline", "delta_p_holm"].isna().all()
    lucky, good = row(t, "lucky"), row(t, "good")
    assert lucky["delta_ci_low"] > 0 and lucky["delta_p"] < 0.05 <= lucky["delta_p_holm"]
    assert good["delta_p_holm"] < 0.05
    lines = H.verdict(t)
    better = [x for x in lines if x.startswith("Better than")]
    assert better and "good" in better[0] and "lucky" in better[0]
    assert "After Holm's correction for the 10 learned entries compared (family-wise error 5 %): good remains." \
        in better[0]
    assert any(x.startswith("**lucky** vs raw early fusion") and "Holm-adjusted" in x for x in lines)
    md = H.markdown(t, "J = 5")
    assert "p (Holm)" in md and "Holm's method over every learned entry" in md
    assert any("Holm p" in x for x in H.summary_lines(t) if x.startswith("lucky"))


def test_front_page_keeps_every_summary_line_of_the_verdict():
    # better, worse and flat entries: three summary sentences after the per-entry lines
    cls = verdict_fixture() + config("bad", "both", "collapsed", "knn", [0.6] * 3, [0.30, 0.31, 0.32])
    t = table(cls)
    summary = [v for v in H.verdict(t) if not v.startswith("**")]
    starts = ["Chosen on validation compounds, one learned entry per input",
              "Better than the raw baseline of the same input:",
              "Worse than the raw baseline of the same input:",
              "Not distinguishable from (or not comparable with) the raw baseline:"]
    assert len(summary) == len(starts) and all(v.startswith(s) for v, s in zip(summary, starts)), summary
    page = H.front_page_rst(t, "intro")
    assert all(f"- {v}" in page for v in summary)
    assert "- **good** vs" not in page  # the per-entry sentences stay in headline.md


def test_the_learned_entry_to_quote_is_chosen_on_validation_per_input(capsys, tmp_path):
    """"The best learned model" is the learned entry best on validation, one per input, never the
    test column's maximum; its Holm adjustment counts only those compared; the verdict and the
    terminal summary name it."""
    cls = raw_rows(cp=(0.3, 0.3), both=(0.5, 0.5))
    cls += config("val_best", "both", "collapsed", "knn", [0.7] * 3, [0.45, 0.50, 0.55])  # best on validation
    cls += config("test_best", "both", "collapsed", "knn", [0.6] * 3, [0.80, 0.82, 0.84])  # best on test
    cls += config("test_best", "cp", "collapsed", "knn", [0.35] * 3, [0.30, 0.31, 0.32])
    cls += config("val_best", "cp", "collapsed", "knn", [0.35] * 3, [0.50, 0.52, 0.54])  # tie on validation: by name
    t = table(cls)
    best = t[t["best_of_input"]]
    assert sorted(zip(best["input"], best["entry"])) == [("both", "val_best"),
                                                          ("cp", "test_best (Cell Painting only)")]
    assert not t.loc[t["kind"] == "baseline", "best_of_input"].any()
    np.testing.assert_allclose(best["delta_p_holm_best"], H.holm(best["delta_p"]))
    assert t.loc[~t["best_of_input"], "delta_p_holm_best"].isna().all()
    # the test scores decide nothing: scrambling them moves no flag
    pert = pd.DataFrame(cls)
    te = pert["split"] == "test"
    pert.loc[te, "macro_f1"] = np.random.default_rng(1).random(te.sum())
    moved = H.headline_frame(pert, pd.DataFrame(columns=["source", "fold", "seed", "view", "level", "variant",
                                                          "metric", "value", "status", "reason"]))
    assert sorted(moved.loc[moved["best_of_input"], "entry"]) == sorted(best["entry"])
    line = H.best_of_input_line(t)
    assert line in H.verdict(t) and line in H.front_page_rst(t, "intro")
    assert "Cell Painting + L1000: **val_best** (both · collapsed · collapsed · knn; validation macro-F1 0.700, " \
           "the highest of 2) scores 0.500 [" in line
    assert "Cell Painting only: **test_best (Cell Painting only)**" in line and "test_best**" not in line
    assert "Holm over the 2 compared" in line and "not distinguishable from its baseline" in line
    shown = H.compact(t).set_index("entry")["validation macro-F1"]
    assert shown["▶ val_best"] == "0.700" and shown["raw early fusion"] == "0.500" and "test_best" in shown
    header = next(x for x in H.markdown(t, "J = 3").splitlines() if x.startswith("| entry"))
    assert [c.strip() for c in header.split("|")][2:4] == ["configuration (view · level · variant · classifier)",
                                                           "validation macro-F1"]
    assert H.best_of_input_line(t.drop(columns="best_of_input")) is None
    t.to_parquet(tmp_path / "h.parquet")  # make run's printout: one line per input after the table
    assert H.main([str(tmp_path / "h.parquet")]) == 0
    out = capsys.readouterr().out.splitlines()
    i = out.index(H.BEST_OF_INPUT_INTRO + ":")
    assert out[i + 1].startswith("  Cell Painting + L1000: val_best (")
    assert not any("**" in x or "−" in x for x in out[i:])  # plain text, ASCII minus signs
    assert out[i + 2].startswith("  Cell Painting only: test_best (Cell Painting only) (") and len(out) == i + 3
