"""Evaluation and leaderboard on the tiny demo: baselines, variants, bad input recorded not dropped."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from morphotx import schema as S
from morphotx.evaluate.jobs import evaluate_model, evaluate_raw
from morphotx.evaluate.tables import OUTPUTS, cyclic_pairs
from morphotx.report.leaderboard import build, markdown
from morphotx.settings import EvaluateSettings
from morphotx.settings import EvaluateSettings as D

FAST = EvaluateSettings(classifiers=["knn", "logreg"], knn_k_max=5, cv_folds=3, map_null_size=200, curve_k_max=5,
                        min_compounds_per_moa=1)


def _outs(tmp_path, tag):
    return {k: str(tmp_path / f"{tag}_{k}.parquet") for k in OUTPUTS}


def _fake_embedding(src: str, dst, dim=8, seed=0, nan_rows=0):
    df = pd.read_parquet(src)
    X = df[S.feature_columns(df)].to_numpy(float)
    Z = X @ np.random.default_rng(seed).normal(size=(X.shape[1], dim))
    train = np.flatnonzero((df[S.SPLIT] == "train").to_numpy() & (df[S.MOA].map(len) == 1).to_numpy())
    Z[train[:nan_rows]] = np.nan  # rows the classifiers use
    out = pd.concat([df[S.meta_columns(df)].reset_index(drop=True),
                     pd.DataFrame(Z.astype(np.float32), columns=[f"emb_{i:03d}" for i in range(dim)])], axis=1)
    out.to_parquet(dst)
    return str(dst)


def _raw(p):
    return dict(cp=str(p["cp_p"]), l1000=str(p["l1k_p"]), cp_collapsed=str(p["cp_c"]), l1000_collapsed=str(p["l1k_c"]))


@pytest.fixture(scope="module")
def raw_frames(tiny_processed, tmp_path_factory):
    d = tmp_path_factory.mktemp("ev_raw")
    return evaluate_raw(0, **_raw(tiny_processed), outputs=_outs(d, "raw"), settings=FAST)


def test_raw_baselines_on_the_same_split(raw_frames, tiny_processed):
    c = raw_frames["classification"]
    assert set(c["view"]) == {"cp", "l1000", "both", "late_fusion"}
    assert set(c["classifier"]) == {"knn", "logreg"}
    fused = c[c["view"].isin(["both", "late_fusion"])]
    assert set(c["split"]) == {"validation", "test"}  # one fit, two scored splits
    for s in ("validation", "test"):
        assert fused.loc[fused["split"] == s, "n_scored"].nunique() == 1 and (fused["level"] == "collapsed").all()
    assert (c["n_scored"] > 0).all()
    assert (c["status"].isin(["ok", "not_converged"])).all(), c[["view", "status", "reason"]]
    assert c["macro_f1"].between(0, 1).all()
    em = raw_frames["embedding_metrics"]
    rep = em[(em["metric"] == "replicate_map") & (em["view"] == "cp")]
    assert len(rep) == 1 and 0 <= rep["value"].iloc[0] <= 1  # DMSO rows make replicate mAP possible
    assert {"enrichment", "knn_f1"} <= set(raw_frames["curves"]["curve"])
    cv = raw_frames["curves"][raw_frames["curves"]["curve"] == "knn_validation_macro_f1"]  # the curve that picks k
    chosen = c[(c["classifier"] == "knn") & (c["view"] == "cp") & (c["variant"] == "collapsed")]
    mine = cv[(cv["view"] == "cp") & (cv["variant"] == "collapsed")]
    assert mine["x"].tolist() == list(range(1, len(mine) + 1)) and mine["value"].between(0, 1).all()
    assert mine.loc[mine["value"].idxmax(), "x"] == chosen["param_k"].iloc[0]
    # the validation row's score is cross-fitted (each half of the validation compounds scored with
    # the k chosen on the other half), so it is not the curve's maximum over k on the same rows
    val = chosen[chosen["split"] == "validation"].iloc[0]
    assert 0 <= val["macro_f1"] <= 1
    assert chosen["param_validation_macro_f1"].to_numpy() == pytest.approx(mine["value"].max())
    assert (em["metric"] == "percent_replicating").any()
    # Ha 2025's cluster quality: replicates scored; MoAs only where two MoAs have two test compounds
    got = em[(em["view"] == "cp") & (em["level"] == "uncollapsed")].set_index("metric")
    assert (got.loc[["replicate_silhouette", "replicate_ami", "replicate_ari"], "status"] == "ok").all(), got
    assert -1 <= got.loc["replicate_silhouette", "value"] <= 1 and got.loc["replicate_ami", "value"] <= 1
    col = pd.read_parquet(tiny_processed["cp_c"])
    single = col[(col[S.SPLIT] == "test") & (col[S.MOA].map(len) == 1)]
    n_cpd = single.groupby(single[S.MOA].map(lambda m: m[0]))[S.PERT].nunique()
    got = em[(em["view"] == "cp") & (em["level"] == "collapsed")].set_index("metric")
    if (n_cpd >= 2).sum() >= 2:
        assert got.loc["moa_cluster_n_groups", "value"] == (n_cpd >= 2).sum()
    else:
        assert got.loc["moa_silhouette", "status"] == "too_few_classes"
        assert got.loc["moa_silhouette", "reason"].startswith(f"{int((n_cpd >= 2).sum())} MoA(s)")


def test_worker_processes_give_the_same_tables(raw_frames, tiny_processed, tmp_path):
    """threads > 1 runs the tables' tasks in forked workers (one BLAS thread each), costliest first;
    every table equals the one-process run's, row for row (each task is seeded on its own, and
    every process keeps one BLAS thread: more change float sums, and lbfgs can then end elsewhere)."""
    par = evaluate_raw(0, **_raw(tiny_processed), outputs=_outs(tmp_path, "raw2"), settings=FAST, threads=2)
    for k in OUTPUTS:
        pd.testing.assert_frame_equal(par[k], raw_frames[k], obj=k)
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"raw2_{k}.parquet"), par[k], obj=k)
    assert len(par["classification"]) and len(par["embedding_metrics"]) and len(par["map"])


def test_one_task_per_table_variant_and_classifier(tiny_processed, tmp_path, caplog):
    """The classifiers of one table are separate tasks (so workers fit them side by side): one
    ``task classify`` log line per (view, level, variant, classifier) scored, none per table."""
    import logging

    with caplog.at_level(logging.INFO, logger="morphotx.evaluate"):
        frames = evaluate_raw(0, **_raw(tiny_processed), outputs=_outs(tmp_path, "raw1"), settings=FAST)
    got = sorted(tuple(r.getMessage().split(":")[0].split()[2:]) for r in caplog.records
                 if r.getMessage().startswith("task classify"))
    c = frames["classification"]
    c = c[c["view"] != "late_fusion"].drop_duplicates(["view", "level", "variant", "classifier"])
    want = sorted(zip(c["view"], c["level"], c["variant"], c["classifier"]))
    assert got == want and {g[-1] for g in got} == set(FAST.classifiers), (got, want)


def test_late_fusion_averages_the_modality_probabilities(tiny_processed, raw_frames):
    """Late fusion's kNN predictions equal argmax of the mean of the two kNN probability tables."""
    from morphotx.evaluate.classify import classify_table
    from morphotx.evaluate.tables import RawFeatures, moa_labels, single_moa_rows

    raw = RawFeatures(**_raw(tiny_processed))
    both = raw.table("both", "collapsed")
    cfg = replace(FAST, classifiers=["knn"])
    _, _, p1, _ = classify_table(both.meta, raw.lookup("cp_collapsed", both.meta[S.TREATMENT]), ["knn"], 0, cfg)
    _, _, p2, _ = classify_table(both.meta, raw.lookup("l1000_collapsed", both.meta[S.TREATMENT]), ["knn"], 0, cfg)
    (c1, q1), (_, q2) = p1["knn"]["test"], p2["knn"]["test"]
    pred = c1[np.argmax((q1 + q2) / 2, axis=1)]
    te = single_moa_rows(both.meta) & (both.meta[S.SPLIT] == "test").to_numpy()
    y = moa_labels(both.meta)[te]
    lf = raw_frames["classification"]
    lf = lf[(lf["view"] == "late_fusion") & (lf["classifier"] == "knn") & (lf["split"] == "test")].iloc[0]
    assert lf["accuracy"] == pytest.approx((pred == y).mean())


def _count_fits(monkeypatch):
    """Count classify_table calls in the evaluation's tasks and late fusion (each fits every
    classifier it is given)."""
    from morphotx.evaluate import fusion, tasks

    calls, real = [], tasks.classify_table

    def counting(meta, X, classifiers, *a, **k):
        calls.append(len(classifiers))
        return real(meta, X, classifiers, *a, **k)

    monkeypatch.setattr(tasks, "classify_table", counting)
    monkeypatch.setattr(fusion, "classify_table", counting)
    return calls


def test_late_fusion_reuses_the_modality_classifiers_and_equals_a_refit(tiny_processed, raw_frames, tmp_path,
                                                                        monkeypatch):
    """Late fusion averages the probabilities of the collapsed cp and l1000 tables' own classifiers
    when its rows are theirs (no second fit), and the result is the refit's, row for row; when a
    treatment lacks one modality (other rows), it fits on the paired rows instead."""
    from morphotx.evaluate.fusion import late_fusion
    from morphotx.evaluate.tables import RawFeatures

    calls = _count_fits(monkeypatch)
    frames = evaluate_raw(0, **_raw(tiny_processed), outputs=_outs(tmp_path, "reuse"), settings=FAST)
    tasks = frames["classification"].query("view != 'late_fusion'").drop_duplicates(
        ["view", "level", "variant", "classifier"])
    assert len(calls) == len(tasks) and set(calls) == {1}  # one fit per table task, none for the fusion
    refit, _ = late_fusion(RawFeatures(**_raw(tiny_processed)), 0, FAST)  # fitted afresh
    assert len(calls) == len(tasks) + 2  # the refit fitted both modalities
    got = frames["classification"].query("view == 'late_fusion'").reset_index(drop=True)
    pd.testing.assert_frame_equal(got[refit.columns], refit)
    # one L1000 treatment missing: the fusion's rows are no longer the cp table's, so it refits
    l1k = pd.read_parquet(tiny_processed["l1k_c"])
    gone = np.flatnonzero((l1k[S.SPLIT] == "test").to_numpy() & (l1k[S.MOA].map(len) == 1).to_numpy())[0]
    l1k.drop(index=l1k.index[gone]).to_parquet(tmp_path / "l1k_c.parquet")
    raw = {**_raw(tiny_processed), "l1000_collapsed": str(tmp_path / "l1k_c.parquet")}
    calls.clear()
    frames = evaluate_raw(0, **raw, outputs=_outs(tmp_path, "short"), settings=FAST)
    tasks = frames["classification"].query("view != 'late_fusion'").drop_duplicates(
        ["view", "level", "variant", "classifier"])
    assert len(calls) == len(tasks) + 1 and calls[-1] == len(FAST.classifiers)  # cp refitted; l1000 reused
    got = frames["classification"].query("view == 'late_fusion'").reset_index(drop=True)
    refit, _ = late_fusion(RawFeatures(**raw), 0, FAST)
    pd.testing.assert_frame_equal(got[refit.columns], refit)
    before = raw_frames["classification"].query("view == 'late_fusion' and split == 'test'")["n_scored"]
    assert (got.query("split == 'test'")["n_scored"].to_numpy() == before.to_numpy() - 1).all()


def test_two_encoder_model_gets_late_fusion_of_its_views(tiny_processed, tmp_path):
    """A model with collapsed cp and l1000 embeddings is also scored as the late fusion of the two,
    exactly as the raw baseline fuses the raw profiles, for both collapsed variants."""
    from morphotx.evaluate.classify import classify_table
    from morphotx.evaluate.tables import RawFeatures, moa_labels, single_moa_rows

    p = tiny_processed
    emb = {"emb_cp_collapsed": _fake_embedding(p["cp_c"], tmp_path / "cc.parquet", seed=1),
           "emb_l1000_collapsed": _fake_embedding(p["l1k_c"], tmp_path / "lc.parquet", seed=2)}
    cfg = replace(FAST, classifiers=["knn"])
    f = evaluate_model("toy", 0, emb, **_raw(p), outputs=_outs(tmp_path, "toy"), settings=cfg)
    lf = f["classification"][f["classification"]["view"] == "late_fusion"]
    assert set(lf["variant"]) == {"collapsed", "raw+collapsed"} and set(lf["level"]) == {"collapsed"}
    assert (lf["status"] == "ok").all() and set(lf["split"]) == {"validation", "test"}
    assert len(f["per_moa"][f["per_moa"]["view"] == "late_fusion"])
    # the embedding-alone variant: argmax of the mean of the two kNN probability tables, on the
    # treatments measured in both modalities (the raw late fusion's rows)
    raw = RawFeatures(**_raw(p))
    meta = raw.table("both", "collapsed").meta
    Z = {m: pd.read_parquet(emb[f"emb_{m}_collapsed"]).set_index(S.TREATMENT) for m in ("cp", "l1000")}
    X = {m: Z[m].loc[meta[S.TREATMENT], [c for c in Z[m].columns if c.startswith("emb_")]].to_numpy(float)
         for m in Z}
    full = cfg
    (c1, q1), (_, q2) = (classify_table(meta, X[m], ["knn"], 0, full)[2]["knn"]["test"] for m in ("cp", "l1000"))
    te = single_moa_rows(meta) & (meta[S.SPLIT] == "test").to_numpy()
    got = lf[(lf["variant"] == "collapsed") & (lf["split"] == "test")].iloc[0]
    assert got["accuracy"] == pytest.approx((c1[np.argmax((q1 + q2) / 2, axis=1)] == moa_labels(meta)[te]).mean())
    assert got["n_scored"] == int(te.sum())


def test_model_variants_and_nan_embedding(tiny_processed, tmp_path):
    p = tiny_processed
    emb = {"emb_cp_collapsed": _fake_embedding(p["cp_c"], tmp_path / "cc.parquet"),
           "emb_cp_uncollapsed": _fake_embedding(p["cp_p"], tmp_path / "cu.parquet", nan_rows=2)}
    f = evaluate_model("toy", 0, emb, **_raw(p), outputs=_outs(tmp_path, "toy"), settings=FAST)
    c = f["classification"]
    assert set(c["variant"]) == {"uncollapsed", "collapsed", "raw+uncollapsed", "raw+collapsed"}
    col = c[(c["variant"] == "collapsed")]
    rawplus = c[(c["variant"] == "raw+collapsed")]
    n_raw = len(S.feature_columns(pd.read_parquet(p["cp_c"])))
    assert (col["dim"] == 8).all() and (rawplus["dim"] == 8 + n_raw).all()
    # the NaN rows are recorded, with the reason, for every classifier of the uncollapsed variants
    bad = c[c["level"] == "uncollapsed"]
    assert (bad["status"] == "nan_embedding").all() and bad["reason"].str.contains("NaN").all()
    assert bad["macro_f1"].isna().all()
    em = f["embedding_metrics"]
    assert (em[em["level"] == "uncollapsed"]["status"] == "nan_embedding").any()
    # ...and reach the leaderboard instead of disappearing
    board = build(c, em, pd.DataFrame())
    row = board[(board["variant"] == "uncollapsed") & (board["classifier"] == "knn")].iloc[0]
    assert row["status"].startswith("nan_embedding (1/1 repetitions)")
    assert "nan_embedding" in markdown(board, 1)


def test_moa_without_training_compound_is_named(tiny_processed, tmp_path):
    p = tiny_processed
    cp_c = pd.read_parquet(p["cp_c"])
    # give one test compound a MoA of its own: it has one compound and none in training
    test_cpd = cp_c.loc[cp_c[S.SPLIT] == "test", S.PERT].iloc[0]
    cp_c[S.MOA] = [["lonely MoA"] if c == test_cpd else m for c, m in zip(cp_c[S.PERT], cp_c[S.MOA])]
    cp_c.to_parquet(tmp_path / "cp_c.parquet")
    emb = {"emb_cp_collapsed": _fake_embedding(tmp_path / "cp_c.parquet", tmp_path / "cc.parquet")}
    raw = {**_raw(p), "cp_collapsed": str(tmp_path / "cp_c.parquet")}
    f = evaluate_model("toy", 0, emb, **raw, outputs=_outs(tmp_path, "lonely"), settings=FAST)
    per = f["per_moa"]
    row = per[(per["moa"] == "lonely MoA") & (per["variant"] == "collapsed")].iloc[0]
    assert not row["in_training"] and row["f1"] == 0 and row["n_compounds_total"] == 1
    assert "1 compound(s), none in the training split" in row["note"]


def test_cyclic_pairs_cover_every_replicate_once():
    rows = [("t1", f"c{i}", f"l{j}") for i in range(2) for j in range(3)] + \
           [("t2", f"d{i}", f"m{j}") for i in range(4) for j in range(2)]
    meta = pd.DataFrame(rows, columns=[S.TREATMENT, "Metadata_cp_profile_id", "Metadata_l1000_profile_id"])
    keep = cyclic_pairs(meta)
    kept = meta[keep]
    for t, m, n in (("t1", 2, 3), ("t2", 4, 2)):
        g = kept[kept[S.TREATMENT] == t]
        assert len(g) == max(m, n)
        assert g["Metadata_cp_profile_id"].nunique() == m and g["Metadata_l1000_profile_id"].nunique() == n


def test_leaderboard_mean_sd_and_status():
    rows = []
    for seed, (f1, st) in enumerate([(0.5, "ok"), (0.7, "not_converged"), (0.6, "ok")]):
        rows.append({"source": "m", "seed": seed, "view": "both", "level": "collapsed", "variant": "collapsed",
                     "classifier": "mlp", "status": st, "reason": "hit max_iter" if st != "ok" else "",
                     "macro_f1": f1, "weighted_f1": f1, "accuracy": f1, "n_moas_nonzero_f1": 3})
    board = build(pd.DataFrame(rows), pd.DataFrame(), pd.DataFrame())
    r = board.iloc[0]
    assert r["macro_f1_mean"] == pytest.approx(0.6) and r["macro_f1_sd"] == pytest.approx(np.std([.5, .7, .6], ddof=1))
    assert r["status"] == "not_converged (1/3 repetitions): hit max_iter" and r["n_repetitions"] == 3


def test_training_summary_reads_fold_from_the_path(tmp_path):
    import json

    from morphotx.report.leaderboard import training_summary

    paths = []
    for fold, best in ((0, 1), (1, 4)):
        d = tmp_path / "models" / "m" / f"fold{fold}" / "seed0"
        d.mkdir(parents=True)
        (d / "params.json").write_text(json.dumps({"model": "m", "seed": 0, "best_epoch": best, "epochs_run": best + 8,
                                                   "select_on": "downstream", "best_validation_score": 0.3}))
        paths.append(str(d / "params.json"))
    t = training_summary(paths, str(tmp_path / "t.parquet"), str(tmp_path / "t.tsv"))
    assert list(t["fold"]) == [0, 1] and list(t["best_epoch"]) == [1, 4]
    assert pd.read_parquet(tmp_path / "t.parquet").equals(t)


def test_map_without_positive_pairs_is_recorded_not_raised():
    """copairs raises when no profile has a positive pair (one replicate per treatment, or no two
    test compounds of a MoA); the evaluation records the metric as ``no_pairs`` with the reason."""
    from morphotx import schema as S
    from morphotx.evaluate.embedding_metrics import map_metrics
    from morphotx.evaluate.tables import Table

    rng = np.random.default_rng(0)
    n_t, n_c = 6, 4
    meta = pd.DataFrame({S.TREATMENT: [f"t{i}" for i in range(n_t)] + ["DMSO"] * n_c,
                         S.PERT: [f"c{i}" for i in range(n_t)] + ["DMSO"] * n_c,
                         S.SPLIT: ["test"] * n_t + ["control"] * n_c,
                         S.IS_CONTROL: [False] * n_t + [True] * n_c, S.PLATE: "p0",
                         S.MOA: [np.array([f"m{i}"], dtype=object) for i in range(n_t)] + [np.array([], dtype=object)] * n_c})
    X = rng.normal(size=(n_t + n_c, 5))
    for level, metric in (("uncollapsed", "replicate_map"), ("collapsed", "moa_map")):
        rows, maps = map_metrics(Table("cp", level, meta, X), D(map_null_size=50), seed=0)
        row = next(r for r in rows if r["metric"] == metric) if level == "uncollapsed" else rows[0]
        assert row["status"] in ("no_pairs", "too_few_classes") and np.isnan(row["value"]), rows
        assert not maps
    rows, _ = map_metrics(Table("cp", "uncollapsed", meta, X), D(map_null_size=50), seed=0)
    got = {r["metric"]: r for r in rows}
    assert got["replicate_map"]["status"] == "no_pairs" and "copairs" in got["replicate_map"]["reason"], rows
    assert got["percent_replicating"]["status"] == "too_few_classes", rows  # no treatment with two replicates
    rows, _ = map_metrics(Table("cp", "uncollapsed", meta.drop(columns=S.PLATE), X), D(), seed=0)
    got = {r["metric"]: r for r in rows}  # negatives by plate, and no plate column: said, not raised
    assert got["replicate_map"]["status"] == "not_applicable" and "replicate_negatives" in got["replicate_map"]["reason"]


def test_zero_shot_split_skips_classifiers_and_scores_validation_and_test_map():
    """A MoA-disjoint split: no validation or test MoA has a training compound. The classifiers are
    recorded ``not_applicable`` with the reason (not fitted: F1 would be 0 by construction), and the
    MoA mAP is computed among the validation compounds and among the test compounds."""
    from morphotx.evaluate.classify import classify_table
    from morphotx.evaluate.embedding_metrics import map_metrics
    from morphotx.evaluate.tables import Table

    rng = np.random.default_rng(0)
    split = ["train"] * 12 + ["validation"] * 6 + ["test"] * 6
    moa = [f"tr{i % 3}" for i in range(12)] + [f"va{i % 2}" for i in range(6)] + [f"te{i % 2}" for i in range(6)]
    meta = pd.DataFrame({S.TREATMENT: [f"t{i}" for i in range(24)], S.PERT: [f"c{i}" for i in range(24)],
                         S.SPLIT: split, S.IS_CONTROL: False,
                         S.MOA: [np.array([m], dtype=object) for m in moa]})
    X = rng.normal(size=(24, 5)) + np.unique(moa, return_inverse=True)[1][:, None]
    rows, per, probas, cv = classify_table(meta, X, ["knn"], 0, D(knn_k_max=3, cv_folds=2))
    assert {r["status"] for r in rows} == {"not_applicable"} and not per and not probas and not cv
    assert "MoA-disjoint" in rows[0]["reason"]
    mrows, maps = map_metrics(Table("cp", "collapsed", meta, X), D(map_null_size=50), seed=0, validation_map=True)
    got = {r["metric"]: r for r in mrows}
    assert got["moa_map"]["status"] == got["validation_moa_map"]["status"] == "ok"
    assert np.isfinite(got["validation_moa_map"]["value"]) and np.isfinite(got["moa_map"]["value"])
    assert len(maps) == 1 and set(maps[0]["group"]) == {"te0", "te1"}  # the per-MoA table is the test split's


def test_moaprofiler_paper_preprocessing_standardises_to_plate_dmso_and_keeps_one_dose():
    """Wong 2023: every feature minus the mean of the same plate's DMSO wells, divided by their SD;
    LINCS metrics on 10 µM only. Checked by hand on a two-plate toy; tables without DMSO rows are
    recorded not applicable rather than scored unstandardised."""
    from morphotx.evaluate.embedding_metrics import moaprofiler_table
    from morphotx.evaluate.tables import Table

    meta = pd.DataFrame({S.PLATE: ["p1"] * 4 + ["p2"] * 4,
                         S.IS_CONTROL: [True, True, False, False] * 2,
                         S.DOSE_RECODE: [np.nan, np.nan, 10.0, 3.33] * 2,
                         S.TREATMENT: ["DMSO", "DMSO", "a_10", "a_3.33", "DMSO", "DMSO", "b_10", "b_3.33"]})
    X = np.array([[1.0, 0.0], [3.0, 0.0], [5.0, 7.0], [2.0, 1.0],
                  [10.0, 4.0], [20.0, 4.0], [25.0, 4.0], [15.0, 6.0]])
    cfg = D(moaprofiler_dmso="plate", moaprofiler_dose_uM=10)
    out, why = moaprofiler_table(Table("cp", "uncollapsed", meta, X), cfg)
    assert why == "" and list(out.meta[S.TREATMENT]) == ["DMSO", "DMSO", "a_10", "DMSO", "DMSO", "b_10"]
    # plate p1: DMSO mean (2, 0), SD (1, 0 -> 1); plate p2: mean (15, 4), SD (5, 0 -> 1)
    np.testing.assert_allclose(out.X[[2, 5]], [[(5 - 2) / 1, 7.0], [(25 - 15) / 5, 0.0]])
    same, _ = moaprofiler_table(Table("cp", "uncollapsed", meta, X), D())  # the default: as they are
    np.testing.assert_array_equal(same.X, X)
    none, why = moaprofiler_table(Table("both", "collapsed", meta.assign(**{S.IS_CONTROL: False}), X), cfg)
    assert none is None and "DMSO" in why


def test_batch_correction_tvn_before_retrieval_and_not_applicable_without_dmso():
    """``batch_correction: tvn`` (Lu 2025): the cp uncollapsed table is corrected with each plate's
    DMSO rows (plate B = plate A + 10: after correction the replicates coincide), its collapsed
    table becomes the mean of the corrected replicate rows, and the pair view (no DMSO rows) is
    scored as it is with a ``not_applicable`` reason. ``none`` leaves every table as it is."""
    from morphotx.evaluate.embedding_metrics import batch_correct
    from morphotx.evaluate.tables import Table

    one = lambda m: np.array([m], dtype=object)  # noqa: E731
    meta = pd.DataFrame({S.PLATE: ["A"] * 4 + ["B"] * 4,
                         S.IS_CONTROL: [True, True, False, False] * 2,
                         S.TREATMENT: ["DMSO", "DMSO", "t1", "t2"] * 2,
                         S.PERT: ["DMSO", "DMSO", "c1", "c2"] * 2,
                         S.SPLIT: ["control", "control", "test", "test"] * 2,
                         S.MOA: [np.array([], dtype=object)] * 2 + [one("m1"), one("m2")]
                         + [np.array([], dtype=object)] * 2 + [one("m1"), one("m2")]})
    X = np.array([[0.0], [2.0], [3.0], [5.0], [10.0], [12.0], [13.0], [15.0]])
    unc = Table("cp", "uncollapsed", meta, X)
    col_meta = meta.iloc[[0, 2, 3]].reset_index(drop=True)
    col = Table("cp", "collapsed", col_meta, np.array([[6.0], [8.0], [10.0]]))
    pair = Table("both", "uncollapsed", meta[~meta[S.IS_CONTROL]].reset_index(drop=True), X[[2, 3, 6, 7]])
    out = batch_correct([col, unc, pair], D(batch_correction="tvn"))
    Z, row = out[("cp", "uncollapsed")]
    assert row["status"] == "ok" and "2 plates" in row["reason"]
    # DMSO mean 1 / 11, SD 1 on each plate: t1 -> ±2, t2 -> ±4 on both plates
    np.testing.assert_allclose(np.abs(Z.X[[2, 6, 3, 7], 0]), [2, 2, 4, 4])
    assert Z.X[2, 0] == pytest.approx(Z.X[6, 0])
    C, crow = out[("cp", "collapsed")]
    assert crow["status"] == "ok"
    np.testing.assert_allclose(C.X[1:], Z.X[[2, 3]])  # mean of two identical corrected replicates
    np.testing.assert_allclose(C.X[0], Z.X[meta[S.IS_CONTROL].to_numpy()].mean(0))
    P, prow = out[("both", "uncollapsed")]
    assert prow["status"] == "not_applicable" and "DMSO" in prow["reason"] and P is pair
    plain = batch_correct([col, unc, pair], D())
    assert all(t is orig and r == {} for (t, r), orig in zip(plain.values(), [col, unc, pair]))
    with pytest.raises(ValueError, match="batch_correction"):
        batch_correct([unc], D(batch_correction="sphere"))


def test_cluster_metrics_score_test_replicates_and_test_compounds_per_moa():
    """Ha 2025's cluster quality: replicates by treatment (uncollapsed) and MoAs by compound
    (collapsed; the doses of a compound become one row, so a compound alone cannot make a cluster).
    Toy: two MoAs, two test compounds each, two doses per compound pointing the same way."""
    from morphotx.evaluate.embedding_metrics import cluster_metrics
    from morphotx.evaluate.tables import Table

    e = np.eye(3)
    cpds = ["c1", "c1", "c2", "c2", "c3", "c3", "c4", "c4", "v1", "m1"]
    moas = [["A"]] * 4 + [["B"]] * 4 + [["A"], ["A", "B"]]
    X = np.array([e[0], 2 * e[0], e[0] + 0.1 * e[2], e[0], e[1], 3 * e[1], e[1] + 0.1 * e[2], e[1], e[1], e[2]])
    meta = pd.DataFrame({S.TREATMENT: [f"{c}_{i % 2}" for i, c in enumerate(cpds)], S.PERT: cpds,
                         S.SPLIT: ["test"] * 8 + ["validation", "test"], S.IS_CONTROL: False,
                         S.MOA: [np.array(m, dtype=object) for m in moas]})
    got = {r["metric"]: r for r in cluster_metrics(Table("cp", "collapsed", meta, X), D())}
    # a validation compound and a multi-MoA compound left out; four compound rows, two MoAs
    assert got["moa_cluster_n_rows"]["value"] == 4 and got["moa_cluster_n_groups"]["value"] == 2
    assert got["moa_ami"]["value"] == pytest.approx(1.0) and got["moa_ari"]["value"] == pytest.approx(1.0)
    assert 0.9 < got["moa_silhouette"]["value"] < 1.0
    flipped = meta.assign(**{S.MOA: [np.array(m, dtype=object) for m in [["A"], ["A"], ["B"], ["B"]] * 2 + moas[8:]]})
    got = {r["metric"]: r for r in cluster_metrics(Table("cp", "collapsed", flipped, X), D())}
    assert got["moa_silhouette"]["value"] < 0 and got["moa_ari"]["value"] < 1
    # replicates: treatments with two test replicates; controls and singletons left out
    rep = meta.assign(**{S.TREATMENT: cpds})
    rows = cluster_metrics(Table("cp", "uncollapsed", rep, X), D())
    got = {r["metric"]: r for r in rows}
    assert got["replicate_cluster_n_rows"]["value"] == 8 and got["replicate_cluster_n_groups"]["value"] == 4
    assert np.isfinite(got["replicate_silhouette"]["value"]) and got["replicate_silhouette"]["status"] == "ok"
    few = cluster_metrics(Table("cp", "uncollapsed", rep.iloc[:2], X[:2]), D())
    assert {r["status"] for r in few} == {"too_few_classes"} and "1 test treatment" in few[0]["reason"]
    bad = cluster_metrics(Table("cp", "collapsed", meta, np.where(np.arange(10)[:, None] == 0, np.nan, X)), D())
    assert {r["status"] for r in bad} == {"nan_embedding"}
