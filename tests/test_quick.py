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


def test_quick_only_switches_models_off_and_narrows_the_variants():
    # anything else (data, split, folds, trainer, classifiers, headline) would make its rows differ
    # from `make run`'s, which config/quick.yaml promises they do not
    assert set(QUICK) == {"dataset", "evaluate", "models"}
    assert QUICK["dataset"] == {"name": "quick"}
    assert set(QUICK["evaluate"]) == {"variants"}
    assert set(QUICK["evaluate"]["variants"]) < {"uncollapsed", "collapsed", "raw+uncollapsed", "raw+collapsed"}
    for name, override in QUICK["models"].items():
        assert name in DEFAULT_MODELS, f"config/quick.yaml names {name!r}, which config/config.yaml does not have"
        assert override == {"enabled": False}, name


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
