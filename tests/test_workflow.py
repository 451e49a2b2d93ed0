"""The Snakefile end to end on the tiny demo, in a temporary working directory."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
RULES = ["demo_data", "harmonise_cp", "harmonise_l1000", "map_probes", "split_compounds", "preprocess_cp",
         "preprocess_l1000", "pair", "baseline_knn"]


def snakemake(workdir: Path, *args, config: dict | None = None):
    cfg = {"dataset": {"name": "tiny"}, "demo": {"scale": "tiny", "seed": 11},
           "baseline": {"cv_folds": 3, "k_grid": [1, 3, 5]}}
    cfg.update(config or {})
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile",
           str(workdir / "cfg.yaml"), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    d = tmp_path_factory.mktemp("wf_a")
    res = snakemake(d)
    assert res.returncode == 0, res.stderr[-4000:]
    return d


@pytest.mark.workflow
def test_full_run_outputs_logs_benchmarks(run_a):
    out = run_a / "results" / "tiny"
    for rel in ["profiles/cp_harmonised_preprocessed.parquet", "profiles/cp_harmonised_preprocessed.features.json",
                "profiles/cp_harmonised_preprocessed.params.npz", "profiles/l1000_harmonised_genes_preprocessed.parquet",
                "split/compound_split.parquet", "pairs/pair_index.parquet", "pairs/treatment_sets.parquet",
                "pairs/cp_collapsed.parquet", "pairs/l1000_collapsed.parquet", "baseline/knn_summary.md",
                "baseline/knn_per_moa.parquet", "raw/ground_truth.parquet"]:
        assert (out / rel).exists(), rel
    for rule in RULES:
        assert (out / "benchmarks" / f"{rule}.tsv").exists(), rule
        assert (out / "logs" / f"{rule}.log").stat().st_size > 0, rule
    assert "Cartesian pairs" in (out / "logs" / "pair.log").read_text()
    assert "raw_early_fusion" in (out / "logs" / "baseline_knn.log").read_text()
    assert not list(out.rglob(".*.tmp*")), "temporary files left behind"


@pytest.mark.workflow
def test_same_config_same_tables(run_a, tmp_path):
    res = snakemake(tmp_path)
    assert res.returncode == 0, res.stderr[-4000:]
    for rel in ["split/compound_split.parquet", "profiles/cp_harmonised_preprocessed.parquet",
                "profiles/l1000_harmonised_genes_preprocessed.parquet", "pairs/pair_index.parquet",
                "pairs/cp_collapsed.parquet", "baseline/knn_summary.parquet", "baseline/knn_per_moa.parquet"]:
        a = pd.read_parquet(run_a / "results" / "tiny" / rel)
        b = pd.read_parquet(tmp_path / "results" / "tiny" / rel)
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=rel)


@pytest.mark.workflow
def test_unknown_key_stops_before_any_job(tmp_path):
    res = snakemake(tmp_path, config={"split": {"sead": 1}})
    assert res.returncode != 0
    assert "sead" in res.stderr and "validat" in res.stderr.lower()
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
def test_bad_value_names_the_key(tmp_path):
    res = snakemake(tmp_path, config={"split": {"mode": "by_plate"}})
    assert res.returncode != 0
    assert "by_plate" in res.stderr and "mode" in res.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
def test_files_source_without_paths_is_named(tmp_path):
    res = snakemake(tmp_path, "-n", config={"dataset": {"name": "x", "source": "files"}})
    assert res.returncode != 0 and "config key inputs." in res.stdout + res.stderr and "is not set" in res.stdout


@pytest.mark.workflow
def test_dry_run_and_lint(tmp_path):
    res = snakemake(tmp_path, "-n")
    assert res.returncode == 0, res.stderr[-3000:]
    for rule in ["demo_data", "harmonise", "map_probes", "split_compounds", "preprocess_cp", "pair", "baseline_knn"]:
        assert rule in res.stdout
    lint = snakemake(tmp_path, "--lint")
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]
    assert "Congratulations" in lint.stdout + lint.stderr or "lints" not in (lint.stdout + lint.stderr).lower()


@pytest.mark.workflow
def test_real_files_source(tmp_path, tiny_raw):
    """dataset.source: files runs the same rules on user files (here: the tiny demo's files, MoA from a map)."""
    cfg = {"dataset": {"name": "mine", "source": "files"},
           "inputs": {k: str(tiny_raw[k]) for k in ("cell_painting", "l1000", "probe_map", "moa_map")},
           "moa": {"source": "map"}}
    res = snakemake(tmp_path, config=cfg)
    assert res.returncode == 0, res.stderr[-4000:]
    assert (tmp_path / "results" / "mine" / "baseline" / "knn_summary.md").exists()
    assert not (tmp_path / "results" / "mine" / "raw").exists()  # nothing simulated
