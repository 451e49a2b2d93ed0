"""`make quick`'s config (config/quick.yaml): a subset of `make run`, never a different protocol."""

import os
import re
import subprocess

import pytest
import yaml

from conftest import DEFAULT_MODELS, NO_SLURM_BIN, REPO, SNAKEMAKE

QUICK = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
# the models `make quick` trains: config/config.yaml's, with quick.yaml's overrides merged in
KEPT = {n for n, m in DEFAULT_MODELS.items() if {**m, **QUICK.get("models", {}).get(n, {})}.get("enabled", True)}


def test_quick_only_switches_models_off_and_drops_partitions():
    # anything else (data, split seed, folds, trainer, variants, classifiers, headline) would make
    # its per-split rows differ from `make run`'s, which config/quick.yaml promises they do not;
    # fewer partitions keep the first ones (the partition of repeat r is drawn with split.seed + r)
    assert set(QUICK) == {"dataset", "split", "models"}
    assert QUICK["dataset"] == {"name": "quick"}
    assert set(QUICK["split"]) == {"repeats"}
    assert 1 <= QUICK["split"]["repeats"] < yaml.safe_load((REPO / "config" / "config.yaml").read_text())["split"]["repeats"]
    for name, override in QUICK["models"].items():
        assert name in DEFAULT_MODELS, f"config/quick.yaml names {name!r}, which config/config.yaml does not have"
        assert override == {"enabled": False}, name
        assert DEFAULT_MODELS[name].get("enabled", True), f"{name} is not one of `make run`'s models"


def test_quick_keeps_one_model_of_every_family():
    assert KEPT == {"supcon", "translator", "vae_beta_cp", "set_clip", "bimodal_ae"}, (
        "a model was added to or removed from config/config.yaml: decide whether `make quick` runs it, "
        "then update config/quick.yaml, its comment and this test")
    families = {DEFAULT_MODELS[n]["family"] for n in KEPT}
    assert families == {m["family"] for m in DEFAULT_MODELS.values() if m.get("enabled", True)}


@pytest.mark.workflow
def test_quick_dag_trains_and_scores_only_the_kept_models(tmp_path):
    env = {**os.environ, "PATH": f"{NO_SLURM_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    res = subprocess.run([SNAKEMAKE, "-s", str(REPO / "workflow" / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                          str(REPO / "config" / "quick.yaml"), "--cores", "2", "-n", "--quiet", "rules"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    text = res.stdout + res.stderr
    n = len(KEPT)
    assert re.search(rf"train_model\s+{n}\b", text), text[-3000:]  # one job per model (all folds, one seed)
    assert re.search(rf"evaluate_model\s+{n}\b", text), text[-3000:]
    for name in DEFAULT_MODELS:
        assert bool(re.search(rf"embed_model_{name}\s+1\b", text)) == (name in KEPT), name


def test_all_models_adds_to_make_run_and_changes_nothing_else():
    # config/all_models.yaml (`make run-all`) may only switch models on and widen the variants: every
    # model of config/config.yaml except the papers' own settings and SupCon at 6 dimensions
    every = yaml.safe_load((REPO / "config" / "all_models.yaml").read_text())
    assert set(every) == {"dataset", "evaluate", "models"}
    assert every["dataset"] == {"name": "demo_all"}
    assert set(every["evaluate"]["variants"]) == {"uncollapsed", "collapsed", "raw+uncollapsed", "raw+collapsed"}
    assert all(v == {"enabled": True} for v in every["models"].values())
    enabled = {n for n, m in DEFAULT_MODELS.items() if {**m, **every["models"].get(n, {})}.get("enabled", True)}
    assert enabled == {n for n in DEFAULT_MODELS if not n.endswith("_paper") and n != "supcon_study6"}
    assert len(enabled) == 16
