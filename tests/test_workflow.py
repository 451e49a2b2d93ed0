"""The Snakefile end to end on the tiny demo, in a temporary working directory."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import DEFAULT_MODELS, REPO, SNAKEMAKE, TEST_MODELS, snakemake  # noqa: F401

RULES = ["demo_data", "convert_cp", "convert_l1000", "harmonise_cp", "harmonise_l1000", "map_probes", "headline"]
FOLD_RULES = ["split_compounds", "preprocess_cp", "preprocess_l1000", "pair"]


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    d = tmp_path_factory.mktemp("wf_a")
    res = snakemake(d)
    assert res.returncode == 0, res.stderr[-4000:]
    return d


FILES_CFG = {"dataset": {"name": "mine", "source": "files"}, "moa": {"source": "map"}, "split": {"folds": 3}}
PERTURBED_FOLD = 1  # the fold whose test compounds test_test_compounds_decide_nothing replaces by noise
FILES_HEADLINE = "results/mine/leaderboard/headline.parquet"


@pytest.fixture(scope="module")
def files_run(tmp_path_factory, tiny_raw):
    """dataset.source: files on the tiny demo's files (MoA from a map), three folds; shared by the
    files-source test and the test-compounds-decide-nothing test (its unperturbed run). Every table
    up to the headline; the figures are run_a's (the same rules on the demo's files)."""
    d = tmp_path_factory.mktemp("wf_files")
    cfg = {**FILES_CFG, "inputs": {k: str(tiny_raw[k]) for k in ("cell_painting", "l1000", "probe_map", "moa_map")}}
    res = snakemake(d, FILES_HEADLINE, config=cfg)
    assert res.returncode == 0, res.stderr[-4000:]
    return d, cfg


@pytest.mark.workflow
def test_real_files_source(files_run):
    """dataset.source: files runs the same rules on user files (here: the tiny demo's files, MoA from a map)."""
    d, _ = files_run
    assert (d / "results" / "mine" / "leaderboard" / "headline.md").exists()
    assert not (d / "results" / "mine" / "raw").exists()  # nothing simulated


@pytest.mark.workflow
def test_full_run_outputs_logs_benchmarks(run_a):
    out = run_a / "results" / "tiny"
    for fold in (0, 1):
        for rel in ["profiles/fold{f}/cp_harmonised_preprocessed.parquet",
                    "profiles/fold{f}/cp_harmonised_preprocessed.features.json",
                    "profiles/fold{f}/cp_harmonised_preprocessed.params.npz",
                    "profiles/fold{f}/l1000_harmonised_genes_preprocessed.parquet", "split/fold{f}/compound_split.parquet",
                    "pairs/fold{f}/pair_index.parquet", "pairs/fold{f}/treatment_sets.parquet",
                    "pairs/fold{f}/cp_collapsed.parquet", "pairs/fold{f}/l1000_collapsed.parquet"]:
            assert (out / rel.format(f=fold)).exists(), rel
        for rule in FOLD_RULES:
            assert (out / "benchmarks" / rule / f"fold{fold}.tsv").exists(), rule
            assert (out / "logs" / rule / f"fold{fold}.log").stat().st_size > 0, rule
    assert (out / "raw" / "ground_truth.parquet").exists()
    for rule in RULES:
        assert (out / "benchmarks" / f"{rule}.tsv").exists(), rule
        assert (out / "logs" / f"{rule}.log").stat().st_size > 0, rule
    assert "Cartesian pairs" in (out / "logs" / "pair" / "fold0.log").read_text()
    tests = [set(pd.read_parquet(out / "split" / f"fold{f}" / "compound_split.parquet").query(
        "Metadata_split == 'test'")["Metadata_pert_id"]) for f in (0, 1)]
    assert tests[0] and tests[1] and not tests[0] & tests[1]  # each compound is a test compound in one fold
    for name in TEST_MODELS:
        for rel in ["checkpoint.pt", "history.csv", "params.json"]:
            assert (out / "models" / name / "fold1" / "seed0" / rel).stat().st_size > 0, (name, rel)
        # one training, embedding and evaluation job per model and seed covers every fold
        assert (out / "benchmarks" / "train_model" / f"{name}_seed0.tsv").exists()
        assert "best epoch" in (out / "logs" / "train_model" / f"{name}_seed0.log").read_text()
        assert (out / "logs" / "embed" / f"{name}_seed0.log").stat().st_size > 0
        assert (out / "logs" / "evaluate" / f"{name}_seed0.log").stat().st_size > 0
        assert (out / "embeddings" / name / "fold1" / "seed0").is_dir()
    views = {"supcon": ["both", "cp"], "vae_mmd_cp": ["cp"], "set_cwcl": ["both", "cp", "l1000"]}
    for name, vs in views.items():
        got = sorted(p.name for p in (out / "embeddings" / name / "fold0" / "seed0").iterdir())
        assert got == sorted(f"{v}_{lvl}.parquet" for v in vs for lvl in ("collapsed", "uncollapsed")), name
    assert not list(out.rglob(".*.tmp*")), "temporary files left behind"
    # every job's log ends with its CPU seconds (the benchmarks' per-rule CPU; morphotx.smk.usage_line)
    for log in (out / "logs").rglob("*.log"):
        last = log.read_text().strip().splitlines()[-1]
        assert re.search(r"job resources: cpu_s=[0-9.]+ user_s=[0-9.]+ system_s=[0-9.]+ max_rss_mb=\d+$", last), log
    assert "fontTools" not in (out / "logs" / "figures" / "leaderboard.log").read_text()
    import hashlib
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    raw = out / "raw" / "CellPainting" / "replicate_level_cp_augmented.csv.gz"
    assert manifest["inputs"]["cell_painting"]["sha256"] == hashlib.sha256(raw.read_bytes()).hexdigest()
    assert manifest["config"]["dataset"]["name"] == "tiny" and manifest["packages"]["torch"]
    assert len(manifest["git"]["commit"] or "") == 40 or manifest["git"]["commit"] is None


@pytest.mark.workflow
def test_evaluation_leaderboard_and_figures(run_a):
    out = run_a / "results" / "tiny"
    board = pd.read_parquet(out / "leaderboard" / "leaderboard.parquet")
    sources = set(board["source"])
    assert sources == set(TEST_MODELS) | {"raw"}
    raw = board[board["source"] == "raw"]
    assert {"cp", "l1000", "both", "late_fusion"} <= set(raw["view"])
    assert set(board["classifier"]) == {"knn", "mlp", "gmm", "logreg"}
    sup = board[board["source"] == "supcon"]
    assert set(sup["variant"]) == {"uncollapsed", "collapsed", "raw+uncollapsed", "raw+collapsed"}
    assert board["status"].notna().all() and board["macro_f1_mean"].notna().any()
    # contrastive models get cross-modal Recall@k, VAEs latent arithmetic
    assert board.loc[board["source"] == "set_cwcl", "recall@1_cp_to_l1000_mean"].notna().all()
    assert (out / "arithmetic" / "vae_mmd_cp" / "fold0" / "seed0" / "traversal.parquet").exists()
    assert not (out / "arithmetic" / "vae_mmd_cp" / "fold1").exists()  # arithmetic: first fold only
    recon = pd.read_parquet(out / "leaderboard" / "all_reconstruction.parquet")
    assert set(recon["model"]) == {"vae_mmd_cp"} and recon["r2"].notna().any()  # decoders' held-out R²
    assert (recon["emd_simulated"] > 0).all()
    samples = pd.read_parquet(out / "leaderboard" / "all_reconstruction_samples.parquet")
    curves = pd.read_parquet(out / "leaderboard" / "all_reconstruction_curves.parquet")
    assert set(samples["data"]) == set(curves["data"]) == {"real", "shuffled"}  # Chow 2022's shuffled control
    assert (samples.groupby("data").size() == recon["n_treatments"].iloc[0]).all()
    zs = pd.read_parquet(out / "leaderboard" / "all_arithmetic_zscores.parquet")
    assert set(zip(zs["variant"], zs["input"])) == {("mmd", "cp")}
    md = (out / "leaderboard" / "leaderboard.md").read_text()
    assert md.startswith("# morphotx leaderboard") and "late_fusion" in md and "Exploratory" in md
    for fig in ["headline", "loss_curves", "leaderboard", "enrichment", "knn_vs_k", "map_distributions", "arithmetic_distances",
                "traversal_heatmaps", "reconstruction_r2", "moaprofiler_summary", "reconstruction_distributions",
                "shuffled_control_curves", "arithmetic_modalities"]:
        assert (out / "figures" / f"{fig}.png").stat().st_size > 10_000, fig
        assert (out / "figures" / f"{fig}.pdf").read_bytes().startswith(b"%PDF"), fig  # vector copy
    assert (out / "figures" / "per_moa_f1" / "supcon_both.png").exists()
    assert (out / "figures" / "per_moa_f1" / "supcon_both.pdf").exists()
    maps = sorted(p.name for p in (out / "figures" / "embedding_maps").iterdir() if not p.name.startswith("."))
    assert maps == sorted([f"{m}.{ext}" for m in ["supcon_both", "vae_mmd_cp_cp", "set_cwcl_both", "raw_cp",
                                                   "raw_l1000"] for ext in ("png", "pdf", "screen.png")])


@pytest.mark.workflow
def test_report_is_one_html_with_every_figure(run_a):
    res = snakemake(run_a, "--report", "report.html")
    assert res.returncode == 0, res.stderr[-3000:]
    html = (run_a / "report.html").read_text(errors="replace")
    for needle in ["loss_curves.screen.png", "knn_vs_k.screen.png", "leaderboard.tsv", "Latent arithmetic",
                   "headline.tsv", "0. Headline", "arithmetic_modalities.screen.png",
                   "reconstruction_distributions.screen.png", "shuffled_control_curves.screen.png"]:
        assert needle in html, needle
    front = (run_a / "results" / "tiny" / "report" / "front_page.rst").read_text()  # the report opens with it
    assert "**Headline**" in front and "raw late fusion" in front and "supcon" in front
    _embeds_only_screen_renditions(html, run_a / "results" / "tiny" / "figures")


def _embeds_only_screen_renditions(html: str, figures: Path):
    """Every image the report embeds is a figure's 100 dpi palette rendition (``<name>.screen.png``,
    plotting.save_figure), byte for byte, and every figure of the run is embedded once: the 300 dpi PNGs
    and the PDFs stay files beside the report."""
    import base64
    import io

    from PIL import Image

    embedded = {}
    for name, data in re.findall(r"data:image/png;charset=[^;\"]*;filename=([^;\"]+);base64,([A-Za-z0-9+/=]+)", html):
        embedded.setdefault(name, []).append(base64.b64decode(data))
    screens = sorted(figures.rglob("*.screen.png"))
    assert sorted(embedded) == sorted({p.name for p in screens})  # per-model directories: one name per model
    assert sum(len(v) for v in embedded.values()) == len(screens)  # each once (names repeat across directories)
    for blobs in embedded.values():
        for blob in blobs:
            with Image.open(io.BytesIO(blob)) as im:
                assert np.allclose(im.info["dpi"], (100, 100), atol=0.01) and im.mode == "P"
    assert {b for v in embedded.values() for b in v} == {p.read_bytes() for p in screens}


@pytest.mark.workflow
def test_same_config_same_tables(run_a, tmp_path):
    """Every Parquet table of a second run (every table up to the headline, and the training
    summary; no figures) equals the first run's, except the wall-clock columns
    (``leaderboard.WALL_CLOCK_COLUMNS``: the training summary's ``seconds``)."""
    from morphotx.report.leaderboard import WALL_CLOCK_COLUMNS

    res = snakemake(tmp_path, "results/tiny/leaderboard/headline.parquet", "results/tiny/leaderboard/training.parquet")
    assert res.returncode == 0, res.stderr[-4000:]
    root_a, root_b = run_a / "results" / "tiny", tmp_path / "results" / "tiny"
    tables = sorted(p.relative_to(root_b) for p in root_b.rglob("*.parquet"))
    for rel in ["split/fold0/compound_split.parquet", "profiles/fold1/cp_harmonised_preprocessed.parquet",
                "pairs/fold1/pair_index.parquet", "leaderboard/headline.parquet", "leaderboard/training.parquet",
                "embeddings/set_cwcl/fold1/seed0/cp_uncollapsed.parquet", "leaderboard/all_classification.parquet",
                "leaderboard/all_reconstruction_samples.parquet"]:
        assert Path(rel) in tables, rel
    varied = []
    for rel in tables:
        a, b = pd.read_parquet(root_a / rel), pd.read_parquet(root_b / rel)
        clock = [c for c in WALL_CLOCK_COLUMNS if c in b.columns]
        varied += [(str(rel), c) for c in clock]
        pd.testing.assert_frame_equal(a.drop(columns=clock), b.drop(columns=clock), check_exact=True, obj=str(rel))
    assert len(tables) > 100 and varied == [("leaderboard/training.parquet", "seconds")], (len(tables), varied)


@pytest.mark.workflow
def test_unknown_key_stops_before_any_job(tmp_path):
    res = snakemake(tmp_path, config={"split": {"sead": 1}})
    assert res.returncode != 0
    assert "sead" in res.stderr and "validat" in res.stderr.lower()
    # one line naming the key and the nearest valid one, not a schema dump
    assert "unknown config key 'split.sead'; did you mean 'split.seed'?" in res.stderr
    assert len(res.stderr.splitlines()) < 40, len(res.stderr.splitlines())
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
def test_fractions_not_summing_to_one_stop_before_any_job(tmp_path):
    res = snakemake(tmp_path, config={"split": {"folds": 1, "fractions": {"train": 0.7, "validation": 0.2,
                                                                           "test": 0.2}}})
    assert res.returncode != 0
    assert "split.fractions" in res.stderr and "sum to 1" in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
def test_bad_value_names_the_key(tmp_path):
    res = snakemake(tmp_path, config={"split": {"mode": "by_plate"}})
    assert res.returncode != 0
    assert "by_plate" in res.stderr and "mode" in res.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
def test_moa_disjoint_runs_to_a_zero_shot_headline(tmp_path):
    """``split.mode: moa_disjoint`` (bad-input case 30): the split honours the fractions, SupCon
    (the family that needs MoA labels) trains, classifiers are recorded as not applicable with the
    reason, and the headline is chosen on validation MoA mAP and reports the test MoA mAP."""
    res = snakemake(tmp_path, models=["supcon"],  # make run's targets, figures included
                    config={"split": {"folds": 2, "mode": "moa_disjoint",
                                      "fractions": {"train": 0.5, "validation": 0.3, "test": 0.2}}})
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "results" / "tiny"
    _ran_to_the_end(out)
    for fold in (0, 1):
        split = pd.read_parquet(out / "split" / f"fold{fold}" / "compound_split.parquet")
        counts = split["Metadata_split"].value_counts()
        assert (counts.reindex(["train", "validation", "test"]) > 0).all(), counts
        moa_split = split[split["Metadata_split"] != "excluded"].assign(
            m=lambda d: d["Metadata_moa"].str.split("|")).explode("m").groupby("m")["Metadata_split"].nunique()
        assert (moa_split == 1).all()  # no MoA in two splits
    cls = pd.read_parquet(out / "leaderboard" / "all_classification.parquet")
    assert set(cls["status"]) == {"not_applicable"} and cls["reason"].str.contains("MoA-disjoint").all()
    head = pd.read_parquet(out / "leaderboard" / "headline.parquet")
    assert "validation_moa_map" in head.columns and set(head["classifier"]) == {"retrieval"}
    assert head.loc[head["entry"] == "supcon", "moa_map"].notna().all()
    assert "late fusion" not in " ".join(head["entry"])


def _ran_to_the_end(out: Path):
    """Every figure and report table of ``make run`` is there, and no temporary file."""
    for fig in ["headline", "leaderboard", "loss_curves", "enrichment", "knn_vs_k", "map_distributions"]:
        assert (out / "figures" / f"{fig}.png").stat().st_size > 10_000, fig
        assert (out / "figures" / f"{fig}.pdf").read_bytes().startswith(b"%PDF"), fig
    for rel in ["leaderboard/headline.md", "leaderboard/leaderboard.md", "leaderboard/training.parquet", "manifest.json"]:
        assert (out / rel).stat().st_size > 0, rel
    assert not list(out.rglob(".*.tmp*")), "temporary files left behind"


# a small pilot: every compound its own MoA (no test MoA has a training compound), one fold, one model
ONE_COMPOUND_PER_MOA = {"demo": {"scale": "tiny", "seed": 11, "overrides": {"n_moas": 36, "multi_moa_fraction": 0}},
                        "split": {"folds": 1}, "evaluate": {"classifiers": ["knn"]}}


@pytest.mark.workflow
def test_one_compound_per_moa_runs_to_the_end_and_says_why_nothing_is_classified(tmp_path):
    """Bad-input case 9 end to end: with one compound per MoA no classifier can predict a test
    compound's MoA; every model trains, and the headline and its figures say why there is no
    macro-F1 (each entry's status) instead of failing."""
    res = snakemake(tmp_path, models=["vae_mmd_cp"], config=ONE_COMPOUND_PER_MOA)
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "results" / "tiny"
    split = pd.read_parquet(out / "split" / "fold0" / "compound_split.parquet")
    assert split["Metadata_moa"].nunique() == len(split) == 36
    _ran_to_the_end(out)
    head = pd.read_parquet(out / "leaderboard" / "headline.parquet")
    assert len(head) and head["macro_f1"].isna().all()
    assert head["status"].str.contains("no validation or test MoA has a training compound").all(), head["status"]
    assert "no validation or test MoA has a training compound" in (out / "leaderboard" / "headline.md").read_text()


@pytest.mark.workflow
def test_well_holdout_runs_to_the_end(tmp_path):
    """``split.mode: well_holdout`` (Wong 2023's scheme) through make run's targets: the headline
    scores held-out wells and says on every row that it is not an unseen-compound test."""
    res = snakemake(tmp_path, models=["vae_mmd_cp"],
                    config={"split": {"folds": 1, "mode": "well_holdout",
                                      "fractions": {"train": 0.6, "validation": 0.1, "test": 0.3}},
                            "evaluate": {"classifiers": ["knn"]}})
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "results" / "tiny"
    _ran_to_the_end(out)
    split = pd.read_parquet(out / "split" / "fold0" / "compound_split.parquet")
    assert {"train", "validation", "test"} <= set(split["Metadata_split"]) and "Metadata_profile_id" in split
    head = pd.read_parquet(out / "leaderboard" / "headline.parquet")
    assert head["macro_f1"].notna().all() and head["protocol"].str.contains("NOT an unseen-compound test").all()


@pytest.mark.workflow
@pytest.mark.parametrize("name", ["..", ".hidden", "a/b"])
def test_dataset_name_cannot_leave_results(tmp_path, name):
    res = snakemake(tmp_path, "-n", config={"dataset": {"name": name}})
    err = res.stdout + res.stderr
    assert res.returncode != 0 and "does not match" in err and repr(name) in err, err[-2000:]
    assert not any(tmp_path.iterdir()) or {p.name for p in tmp_path.iterdir()} <= {"cfg.yaml", ".snakemake"}


@pytest.mark.workflow
def test_files_source_without_paths_is_named(tmp_path):
    res = snakemake(tmp_path, "-n", config={"dataset": {"name": "x", "source": "files"}})
    assert res.returncode != 0 and "config key inputs." in res.stdout + res.stderr and "is not set" in res.stdout


@pytest.mark.workflow
def test_dry_run_and_lint(tmp_path):
    res = snakemake(tmp_path, "-n")
    assert res.returncode == 0, res.stderr[-3000:]
    for rule in ["demo_data", "harmonise", "map_probes", "split_compounds", "preprocess_cp", "pair", "headline"]:
        assert rule in res.stdout
    assert "NOT an unseen-compound test" not in res.stderr
    # Wong 2023's well holdout is accepted, and the workflow says at start-up what it is not
    well = snakemake(tmp_path / "well", "-n", config={"split": {"mode": "well_holdout", "folds": 1, "fractions": {
        "train": 0.6, "validation": 0.1, "test": 0.3}}})
    assert well.returncode == 0 and "NOT an unseen-compound test" in well.stderr, well.stderr[-3000:]
    lint = snakemake(tmp_path, "--lint")
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]
    assert "Congratulations" in lint.stdout + lint.stderr or "lints" not in (lint.stdout + lint.stderr).lower()
    fmt = subprocess.run([str(Path(sys.executable).with_name("snakefmt")), "--check", str(REPO / "workflow" / "Snakefile"),
                          str(REPO / "workflow" / "rules")], capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    ruff = subprocess.run([str(Path(sys.executable).with_name("ruff")), "check", "src", "tests", "workflow/scripts", "benchmarks"],
                          capture_output=True, text=True, cwd=str(REPO))
    assert ruff.returncode == 0, ruff.stdout[-3000:] + ruff.stderr


@pytest.mark.workflow
def test_every_default_model_is_in_the_dag(tmp_path):
    res = snakemake(tmp_path, "-n", "--quiet", "rules", config={"train": {"seeds": [0, 1]}}, models=list(DEFAULT_MODELS))
    assert res.returncode == 0, res.stderr[-3000:]
    text = res.stdout + res.stderr
    assert re.search(rf"train_model\s+{2 * len(DEFAULT_MODELS)}\b", text), text[-3000:]  # a job per seed (2 folds each)
    assert re.search(rf"evaluate_model\s+{2 * len(DEFAULT_MODELS)}\b", text), text[-3000:]
    for name in DEFAULT_MODELS:
        assert re.search(rf"embed_model_{name}\s+2\b", text), name


@pytest.mark.workflow
def test_upstream_and_longest_jobs_are_started_first(tmp_path):
    # on few cores a long job started late ends the run alone: training and embedding (which unlock
    # everything downstream; the pair-level SupCon / CLIP / CWCL first) and the embedding maps
    # (ready only when every model is embedded) go before the evaluation (the two-encoder models'
    # first), the evaluation before the rest
    every = yaml.safe_load((REPO / "config" / "all_models.yaml").read_text())["models"]  # `make run-all`'s 16
    enabled = [n for n, m in DEFAULT_MODELS.items() if {**m, **every.get(n, {})}.get("enabled", True)]
    res = snakemake(tmp_path, "-n", models=enabled)
    assert res.returncode == 0, res.stderr[-3000:]
    prio = {}
    for rule, body in re.findall(r"rule (\w+):\n((?:    .*\n)+)", res.stdout + res.stderr):
        model = re.search(r"model=(\w+)", body)
        p = re.search(r"priority: (\d+)", body)
        prio[(rule, model.group(1) if model else None)] = int(p.group(1)) if p else 0
    train = {m: p for (r, m), p in prio.items() if r == "train_model"}
    assert set(train) == set(enabled)
    heavy = {"supcon", "clip", "cwcl"}
    assert min(train[m] for m in heavy) > max(p for m, p in train.items() if m not in heavy)
    upstream = min(p for (r, _), p in prio.items() if r == "train_model" or r.startswith("embed_model_")
                   or r == "figure_embedding_maps")
    evaluation = {m: p for (r, m), p in prio.items() if r in ("evaluate_model", "evaluate_raw")}
    assert upstream > max(evaluation.values()) and min(evaluation.values()) > prio[("headline", None)]
    two_encoders = {"clip", "cwcl", "set_clip", "set_cwcl", "bimodal_ae"}  # also late fusion and Recall@k
    assert min(evaluation[m] for m in two_encoders) > max(p for m, p in evaluation.items() if m not in two_encoders)
    assert prio[("figure_embedding_maps", None)] > prio[("figure_per_moa_f1", None)]


@pytest.mark.workflow
@pytest.mark.parametrize("models,needle", [
    ({"m": {"family": "gan"}}, "gan"),
    ({"m": {"family": "supcon", "tempreature": 0.1}}, "tempreature"),
    ({"m": {"family": "supcon", "temperature": -1}}, "temperature"),
    ({"m": {"family": "vae", "variant": "gamma"}}, "gamma"),
    ({"m": {"family": "contrastive", "loss": "infonce"}}, "infonce"),
])
def test_bad_model_config_is_a_schema_error_naming_the_key(tmp_path, models, needle):
    res = snakemake(tmp_path, "-n", config={"models": {**{n: {"enabled": False} for n in DEFAULT_MODELS}, **models}})
    assert res.returncode != 0
    err = res.stdout + res.stderr
    assert "validat" in err.lower() and needle in err and "'m'" in err, err[-2000:]


@pytest.mark.workflow
def test_adding_a_seed_retrains_only_that_seed(run_a):
    res = snakemake(run_a, "-n", "--quiet", "rules", config={"train": {"seeds": [0, 1], "max_epochs": 3, "patience": 2,
                                                                         "progress": False}})
    assert res.returncode == 0, res.stderr[-3000:]
    text = res.stdout + res.stderr
    assert re.search(rf"train_model\s+{len(TEST_MODELS)}\b", text), text[-3000:]  # seed 1 (both folds, one job)
    assert "preprocess_cp" not in text


@pytest.mark.workflow
def test_resources_come_from_config_and_cuda_requests_a_gpu(tmp_path):
    cfg = {"resources": {"train": {"mem_mb": 64000, "runtime": 600, "slurm_partition": "gpu"}},
           "train": {"seeds": [0], "device": "cuda"}}
    res = snakemake(tmp_path, "-n", "--forceall", config=cfg)
    assert res.returncode == 0, res.stderr[-3000:]
    text = res.stdout + res.stderr
    block = text[text.index("rule train_model"):][:1500]
    line = next(ln for ln in block.splitlines() if "resources:" in ln)
    for needle in ["runtime=600", "slurm_partition=gpu", "gpu=1", "mem_mb=64000"]:
        assert needle in line, (needle, line)
    # the reconstruction job trains the VAEs' shuffled controls on the same device
    block = text[text.index("rule reconstruction"):][:1500]
    line = next(ln for ln in block.splitlines() if "resources:" in ln)
    for needle in ["runtime=600", "slurm_partition=gpu", "gpu=1", "mem_mb=64000"]:
        assert needle in line, (needle, line)
    pre = text[text.index("rule preprocess_cp"):][:1500]
    assert "mem_mb=8000" in next(ln for ln in pre.splitlines() if "resources:" in ln)


def _perturb_test_compounds(src: Path, dst: Path, pert_col: str, test_ids: set, is_feature, seed: int):
    """A copy of a Rosetta CSV in which the features of ``test_ids`` are replaced by noise."""
    import numpy as np

    df = pd.read_csv(src)
    rows = df[pert_col].isin(test_ids).to_numpy()
    feats = [c for c in df.columns if is_feature(c)]
    df[feats] = df[feats].astype(float)
    rng = np.random.default_rng(seed)
    df.loc[rows, feats] = rng.normal(size=(int(rows.sum()), len(feats))) * df[feats].std().to_numpy() + df[
        feats].mean().to_numpy()
    df.to_csv(dst, index=False)
    return int(rows.sum())


@pytest.mark.workflow
def test_test_compounds_decide_nothing(files_run, tmp_path, tiny_raw):
    """The nested protocol with three folds: replacing fold f's test compounds' features (both
    modalities) by noise changes no trained weight of fold f, none of its validation scores and
    none of its choices (every entry's configuration, the raw baseline chosen on validation, the
    learned entry chosen per input); it changes fold f's test scores. (Those compounds are training
    and validation compounds of the other folds, whose scores and choices may change: they are not
    fold f's. That a fold's choice reads only that fold's validation rows, for every fold, is
    tests/test_headline.py's.)"""
    a_dir, base = files_run
    b_dir = tmp_path / "b"
    out_a = a_dir / "results" / "mine"
    f = PERTURBED_FOLD
    split = pd.read_parquet(out_a / "split" / f"fold{f}" / "compound_split.parquet")
    test_ids = set(split.loc[split["Metadata_split"] == "test", "Metadata_pert_id"])
    assert test_ids
    b_dir.mkdir()
    n_cp = _perturb_test_compounds(tiny_raw["cell_painting"], b_dir / "cp.csv", "Metadata_pert_id", test_ids,
                                   lambda c: c.startswith(("Cells_", "Cytoplasm_", "Nuclei_")), 1)
    n_l1 = _perturb_test_compounds(tiny_raw["l1000"], b_dir / "l1000.csv", "pert_id", test_ids,
                                   lambda c: c.endswith("_at"), 2)
    assert n_cp > 0 and n_l1 > 0
    cfg_b = {**base, "inputs": {**base["inputs"], "cell_painting": str(b_dir / "cp.csv"),
                                "l1000": str(b_dir / "l1000.csv")}}
    res = snakemake(b_dir, FILES_HEADLINE, config=cfg_b)
    assert res.returncode == 0, res.stderr[-4000:]
    out_b = b_dir / "results" / "mine"
    # the trained models: same history (validation metric, losses) and the same best epoch
    for name in TEST_MODELS:
        ha = pd.read_csv(out_a / "models" / name / f"fold{f}" / "seed0" / "history.csv").drop(columns="seconds")
        hb = pd.read_csv(out_b / "models" / name / f"fold{f}" / "seed0" / "history.csv").drop(columns="seconds")
        pd.testing.assert_frame_equal(ha, hb, obj=name)
    # every validation score of fold f equal, some test score of fold f different
    keys = ["source", "fold", "seed", "split", "view", "level", "variant", "classifier"]
    ca, cb = (c[c["fold"] == f].sort_values(keys) for c in
              (pd.read_parquet(o / "leaderboard" / "all_classification.parquet") for o in (out_a, out_b)))
    va, vb = (c[c["split"] == "validation"].reset_index(drop=True) for c in (ca, cb))
    assert len(va) > 50
    pd.testing.assert_frame_equal(va, vb, obj="validation scores")
    ta, tb = (c[c["split"] == "test"]["macro_f1"].to_numpy() for c in (ca, cb))
    assert not (ta == tb).all(), "test scores should change when test features change"
    # fold f's choices, entry by entry, are the same (the learned entries chosen per input and the
    # raw baseline chosen on validation included)
    cols = ["entry", "source", "configuration", "score"]
    ha, hb = (c[c["fold"] == f][cols].sort_values("entry").reset_index(drop=True) for c in
              (pd.read_parquet(o / "leaderboard" / "headline_choices.parquet") for o in (out_a, out_b)))
    assert {"raw, chosen on validation", "learned, chosen on validation (Cell Painting only)",
            "Cell Painting recipe"} <= set(ha["entry"])
    pd.testing.assert_frame_equal(ha, hb, obj="fold f's choices")
    other = pd.read_parquet(out_a / "leaderboard" / "headline_choices.parquet")
    assert (other["fold"] != f).any()  # the other folds were chosen too (and may differ)


@pytest.mark.workflow
def test_tune_runs_per_split_and_each_split_trains_with_its_own_values(tmp_path):
    """tune_all searches every split (split f's search reads its training and validation
    compounds only: tests/test_tune.py); with tune.apply, split f's model trains with split f's
    best.yaml, and the default run is unchanged without it."""
    res = snakemake(tmp_path, "tune_all", "-n", "--quiet", "rules", config={"tune": {"models": ["supcon", "set_cwcl"]}})
    assert res.returncode == 0, res.stderr[-3000:]
    text = res.stdout + res.stderr
    assert re.search(r"\btune\s+4\b", text) and "train_model" not in text, text[-2000:]  # 2 models × 2 splits
    bad = snakemake(tmp_path, "-n", "tune_all", config={"tune": {"models": ["nosuch"]}})
    assert bad.returncode != 0 and "tune.models" in bad.stdout + bad.stderr
    plain = snakemake(tmp_path, "results/tiny/models/supcon/fold0/seed0/params.json", "-n", "--quiet", "rules")
    assert plain.returncode == 0 and not re.search(r"\btune\s+\d", plain.stdout + plain.stderr)
    cfg = {"tune": {"apply": True, "models": ["supcon"], "n_trials": 2, "max_epochs": 2,
                    "space": {"supcon": {"embedding_dim": {"choices": [8, 16, 24]},
                                         "lr": {"low": 1.0e-4, "high": 3.0e-3, "log": True}}}}}
    targets = [f"results/tiny/models/supcon/fold{f}/seed0/params.json" for f in (0, 1)]
    run = snakemake(tmp_path, *targets, config=cfg)
    assert run.returncode == 0, run.stderr[-4000:]
    out = tmp_path / "results" / "tiny"
    for f in (0, 1):
        best = yaml.safe_load((out / "tune" / "supcon" / f"fold{f}" / "best.yaml").read_text())["models"]["supcon"]
        assert f"split {f}" in (out / "tune" / "supcon" / f"fold{f}" / "best.yaml").read_text()
        params = json.loads((out / "models" / "supcon" / f"fold{f}" / "seed0" / "params.json").read_text())
        for k in ("embedding_dim", "lr"):
            assert params["hyperparameters"][k] == pytest.approx(best[k]), (f, k)


@pytest.mark.workflow
def test_noop_rerun_and_a_classifier_setting_reruns_only_evaluation(run_a):
    """A finished workflow reruns nothing; a changed evaluation setting reruns the evaluation and
    what reads it (leaderboard, headline, figures), never the data steps, training or embedding."""
    res = snakemake(run_a, "-n")
    assert res.returncode == 0 and "Nothing to be done" in res.stdout + res.stderr, (res.stdout + res.stderr)[-2000:]
    res = snakemake(run_a, "-n", "--quiet", "rules", config={"evaluate": {"knn_k_max": 50}})
    assert res.returncode == 0, res.stderr[-3000:]
    text = res.stdout + res.stderr
    rules = set(re.findall(r"^(\w+)\s+\d+\s*$", text, flags=re.M)) - {"total"}
    assert {"evaluate_model", "evaluate_raw"} <= rules, text[-3000:]
    upstream = {"demo_data", "convert_cp", "convert_l1000", "harmonise_cp", "harmonise_l1000", "map_probes",
                "split_compounds", "preprocess_cp", "preprocess_l1000", "pair", "train_model", "arithmetic"}
    assert not rules & upstream and not any(r.startswith("embed_") for r in rules), sorted(rules)


@pytest.mark.workflow
def test_a_changed_typed_setting_reruns_its_rule(run_a):
    """Rules pass typed settings (dataclasses, which Snakemake's params rerun-trigger skips) with
    their repr beside them (``typed_params``): a changed pairing setting reruns pairing and what
    reads it, not the split or the preprocessing; a changed hyperparameter of one model retrains
    that model only."""
    res = snakemake(run_a, "-n", "--quiet", "rules", config={"pairing": {"include_controls": True}})
    assert res.returncode == 0, res.stderr[-3000:]
    rules = set(re.findall(r"^(\w+)\s+\d+\s*$", res.stdout + res.stderr, flags=re.M)) - {"total"}
    assert "pair" in rules and not rules & {"split_compounds", "preprocess_cp", "preprocess_l1000"}, sorted(rules)
    name = TEST_MODELS[0]
    cfg = yaml.safe_load((run_a / "cfg.yaml").read_text())
    entry = {**cfg["models"][name], "lr": 0.0123}
    res = snakemake(run_a, "-n", "--quiet", "rules", config={"models": {**cfg["models"], name: entry}})
    assert res.returncode == 0, res.stderr[-3000:]
    text = res.stdout + res.stderr
    assert re.search(r"^train_model\s+1\s*$", text, flags=re.M), text[-3000:]
    assert "pair" not in set(re.findall(r"^(\w+)\s+\d+\s*$", text, flags=re.M)), text[-3000:]
