"""Hyperparameter search (morphotx.models.tune): trials table, best config, determinism, space errors,
validation-only reading, and the config/schema defaults of the ``tune`` section."""

import math

import pandas as pd
import pytest
import yaml

from morphotx.io import MorphotxInputError
from morphotx.models import resolve
from morphotx.models.tune import check_space, tune
from morphotx.settings import TrainSettings

FAST = TrainSettings(max_epochs=2, patience=2, progress=False, device="cpu")
CFG = {"family": "vae", "variant": "beta", "input": "cp", "beta": 0.3}
SPACE = {"lr": {"low": 1.0e-4, "high": 3.0e-3, "log": True}, "latent_dim": {"choices": [4, 8]},
         "hidden": {"low": 16, "high": 64}, "beta": {"low": 0.1, "high": 2.0},
         "mmd_lambda": {"low": 10.0, "high": 100.0}}  # mmd_lambda: no effect for a beta VAE, skipped


def _tune(p, out, space=SPACE, seed=0):
    paths = dict(trials_out=str(out / "trials.parquet"), best_out=str(out / "best.yaml"),
                 trials_tsv=str(out / "trials.tsv"))
    table = tune("vae_beta", resolve("vae_beta", CFG), FAST, space, 3, seed, str(p["cp_p"]), str(p["l1k_p"]), str(p["pairs"]),
                       str(p["sets"]), max_epochs=2, **paths)
    return table, paths


def test_search_writes_trials_and_a_usable_best_config(tiny_processed, tmp_path, splits_read):
    (tmp_path / "a").mkdir()
    table, paths = _tune(tiny_processed, tmp_path / "a")
    assert set(splits_read) == {"train", "validation"}  # the test compounds are never read
    trials = pd.read_parquet(paths["trials_out"])
    pd.testing.assert_frame_equal(trials, table)
    assert len(trials) == 3 and (trials["state"] == "COMPLETE").all()
    assert trials["value"].map(math.isfinite).all()
    assert {"number", "value", "lr", "latent_dim", "hidden", "beta", "best_epoch", "seconds"} <= set(trials.columns)
    assert "mmd_lambda" not in trials.columns
    assert trials["hidden"].map(lambda h: isinstance(h, int) and 16 <= h <= 64).all()
    assert len(pd.read_csv(paths["trials_tsv"], sep="\t")) == 3

    text = open(paths["best_out"]).read()
    assert text.startswith("#") and "validation compounds of split 0" in text and "seed 0, 3 trials" in text
    best_cfg = yaml.safe_load(text)["models"]["vae_beta"]
    hp = resolve("vae_beta", best_cfg)
    best = trials.loc[trials["value"].idxmax()]
    assert hp.family == "vae" and hp.variant == "beta" and hp.input == "cp"
    assert hp.latent_dim == best["latent_dim"] and hp.hidden == best["hidden"]
    assert hp.lr == pytest.approx(best["lr"]) and hp.beta == pytest.approx(best["beta"])


def test_same_seed_same_trials(tiny_processed, tmp_path):
    tables = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        tables.append(_tune(tiny_processed, tmp_path / run)[0].drop(columns="seconds"))
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)


def test_bad_space_key_is_an_error_naming_it(tiny_processed, tmp_path):
    with pytest.raises(MorphotxInputError, match=r"tune\.space\.vae\.learning_rate"):
        _tune(tiny_processed, tmp_path, space={"learning_rate": {"low": 1.0e-4, "high": 1.0e-3}})
    with pytest.raises(MorphotxInputError, match=r"tune\.space\.supcon\.lr.*number"):
        check_space("supcon", {"lr": {"low": "1e-4", "high": 1.0e-3}})
    with pytest.raises(MorphotxInputError, match=r"tune\.space\.supcon\.lr.*log"):
        check_space("supcon", {"lr": {"low": 0.0, "high": 1.0e-3, "log": True}})
    with pytest.raises(MorphotxInputError, match=r"tune\.space\.supcon\.dropout"):
        check_space("supcon", {"dropout": {"choices": []}})


def test_default_spaces_are_valid():
    """The default search spaces (tune.space; tests/test_settings.py checks them against the
    schema) pass the space checks."""
    from morphotx.settings import TuneSettings

    for family, space in TuneSettings().space.items():
        check_space(family, space)
    assert check_space("vae", TuneSettings().space["vae"])["mmd_lambda"]["int"] is False
    assert check_space("contrastive", {"hidden": {"low": 64, "high": 512}})["hidden"]["int"] is True
