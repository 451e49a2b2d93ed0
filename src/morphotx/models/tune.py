"""Hyperparameter search with Optuna on the validation compounds.

:func:`tune` runs an Optuna study (TPE sampler seeded from ``tune.seed``, direction
maximise) over the search space of the model's family (``tune.space.<family>``). Each trial trains
the model with the trainer of :mod:`morphotx.models.train` (:func:`~morphotx.models.train.fit_model`,
in memory, at most ``tune.max_epochs`` epochs, the training seed is ``tune.seed``) and scores it by
its ``best_validation_score``: the validation MoA mAP of its chosen epoch (or minus the validation
loss where the trainer falls back to the loss, see ``train.select_on``). Only the training and
validation compounds are read; the test compounds never are, so the search does not leak into the
scores of the evaluation.

A space entry is ``{low: .., high: .., log: true|false}`` or ``{choices: [...]}``; its key must be
a hyperparameter of the family. A range is sampled as integers when ``low`` and ``high`` are both
integers and the hyperparameter is not a float (``hidden: {low: 64, high: 512}``), else as floats. Entries that
do nothing for the model (``beta`` unless ``variant: beta``, ``mmd_lambda`` / ``mmd_bandwidth``
unless ``variant: mmd``) are skipped.

Outputs: a table with one row per trial (number, state, value, every sampled hyperparameter,
best epoch, seconds) and a YAML file ``models: {<name>: {<the model's config>, <best params>}}``
to pass with ``--configfile`` to train the tuned model. **The default run does not use tuned
values**: the models train with the hyperparameters of ``config.yaml`` unless that file is passed.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, fields

import pandas as pd
import torch
import yaml

from ..io import MorphotxInputError, atomic_outputs, write_parquet
from ..settings import TrainSettings
from .config import FAMILIES, HyperParameters, with_overrides
from .data import ModelData
from .train import fit_model

log = logging.getLogger(__name__)

# hyperparameters that only act in some configurations of a family: (family, key) -> is it used?
USED_WHEN = {
    ("vae", "beta"): lambda hp: hp.variant == "beta",
    ("vae", "mmd_lambda"): lambda hp: hp.variant == "mmd",
    ("vae", "mmd_bandwidth"): lambda hp: hp.variant == "mmd",
}


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_entry(where: str, spec) -> None:
    if not isinstance(spec, dict):
        raise MorphotxInputError(f"{where}: expected {{low, high, log}} or {{choices: [...]}}, got {spec!r}")
    if "choices" in spec:
        if set(spec) != {"choices"} or not isinstance(spec["choices"], list) or not spec["choices"]:
            raise MorphotxInputError(f"{where}: 'choices' must be a non-empty list and come alone")
        return
    if not {"low", "high"} <= set(spec) or set(spec) - {"low", "high", "log"}:
        raise MorphotxInputError(f"{where}: expected keys low, high and optionally log; got {sorted(spec)}")
    low, high = spec["low"], spec["high"]
    if not (_number(low) and _number(high)) or low > high:
        raise MorphotxInputError(f"{where}: low and high must be numbers with low <= high (got {low!r}, {high!r}; "
                                 "write 1.0e-4, not 1e-4, for YAML to read a number)")
    if not isinstance(spec.get("log", False), bool) or (spec.get("log") and low <= 0):
        raise MorphotxInputError(f"{where}: log must be true or false, and a log scale needs low > 0")


def check_space(family: str, space: dict | None) -> dict:
    """The search space of ``family`` after checks, each range marked ``int`` (sampled as integers)
    or not; errors name the key ``tune.space.<family>.<key>``.
    """
    defaults = {f.name: f.default for f in fields(FAMILIES[family]) if f.name != "family"}
    out = {}
    for key, spec in (space or {}).items():
        where = f"tune.space.{family}.{key}"
        if key not in defaults:
            raise MorphotxInputError(f"{where}: {key!r} is not a hyperparameter of family {family}; "
                                     f"known: {sorted(defaults)}")
        _check_entry(where, spec)
        out[key] = dict(spec)
        if "choices" not in spec:
            ints = all(isinstance(spec[b], int) for b in ("low", "high"))
            out[key]["int"] = ints and not isinstance(defaults[key], (float, type(None)))
    return out


def _suggest(trial, key: str, spec: dict):
    if "choices" in spec:
        return trial.suggest_categorical(key, spec["choices"])
    log_scale = bool(spec.get("log", False))
    if spec["int"]:
        return trial.suggest_int(key, spec["low"], spec["high"], log=log_scale)
    return trial.suggest_float(key, float(spec["low"]), float(spec["high"]), log=log_scale)


def _used_space(name: str, hp: HyperParameters, space: dict) -> dict:
    used = {k: v for k, v in space.items() if USED_WHEN.get((hp.family, k), lambda _: True)(hp)}
    if set(space) - set(used):
        log.info("%s: not searched (no effect for this model): %s", name, sorted(set(space) - set(used)))
    return used


def _trials_table(study, keys: list[str]) -> pd.DataFrame:
    rows = []
    for t in study.trials:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else math.nan
        rows.append({"number": t.number, "state": t.state.name,
                     "value": math.nan if t.value is None else float(t.value),
                     **{k: t.params.get(k) for k in keys}, "best_epoch": t.user_attrs.get("best_epoch"),
                     "select_on": t.user_attrs.get("select_on"), "seconds": seconds})
    return pd.DataFrame(rows)


def _best_yaml(name: str, hp: HyperParameters, best, seed: int, n_trials: int, max_epochs: int | None,
               split_name: str = "split 0") -> str:
    cfg = asdict(with_overrides(name, hp, best.params))  # every hyperparameter, as resolved
    what = ("validation MoA mAP" if best.user_attrs.get("select_on") == "downstream"
            else "minus the validation loss")
    header = (f"# Hyperparameters of model {name} chosen by Optuna (TPE sampler, seed {seed}, {n_trials} trials"
              f"{f', at most {max_epochs} epochs each' if max_epochs else ''})\n"
              f"# on the validation compounds of {split_name}; its test compounds were never read.\n"
              f"# Best trial {best.number}: {what} {best.value:.4f} at epoch {best.user_attrs.get('best_epoch')}.\n"
              f"# With tune.apply the run trains {split_name}'s model with these values (and only that\n"
              "# split's: the other splits' test compounds are among the compounds this search read).\n")
    return header + yaml.safe_dump({"models": {name: cfg}}, sort_keys=False)


def tune(name: str, hp: HyperParameters, train: TrainSettings, search_space: dict, n_trials: int, seed: int,
         cp: str, l1000: str, pairs: str, sets: str, trials_out: str, best_out: str, threads: int = 1,
         max_epochs: int | None = None, trials_tsv: str | None = None, split_name: str = "split 0") -> pd.DataFrame:
    """Search the hyperparameters of model ``name`` with Optuna (TPE) and write the trials and the
    best configuration; each trial trains the model and is scored on the validation compounds.

    Parameters
    ----------
    name : str
        The model's name in ``models``.
    hp : HyperParameters
        The model's resolved hyperparameters (:func:`morphotx.models.resolve`); a trial overrides
        them with its suggestions.
    train : TrainSettings
        The ``train`` config section.
    search_space : dict
        The ``tune.space`` entry of the model's family: ``{hyperparameter: {low, high[, log]}}`` or
        ``{hyperparameter: {choices}}`` (:func:`check_space`).
    n_trials : int
        Number of Optuna trials.
    seed : int
        Seeds the sampler and every trial's training.
    cp, l1000, pairs, sets : str
        The split's preprocessed profiles, pairing index and treatment sets (Parquet).
    trials_out : str
        The trials table written (Parquet).
    best_out : str
        The best configuration written (YAML; with ``tune.apply`` the split's models train with it).
    threads : int, default 1
        PyTorch CPU threads.
    max_epochs : int, optional
        Each trial's epoch limit (config ``tune.max_epochs``); None: the model's or the trainer's.
    trials_tsv : str, optional
        The trials table also as TSV (for the HTML report).
    split_name : str, default "split 0"
        The split searched, named in the best configuration's header.

    Returns
    -------
    pandas.DataFrame
        The trials table.

    Raises
    ------
    MorphotxInputError
        No trial completed.
    """
    import optuna

    space = _used_space(name, hp, check_space(hp.family, search_space))
    budget = {"max_epochs": int(max_epochs)} if max_epochs else {}
    torch.set_num_threads(max(1, int(threads)))
    data = ModelData(cp, l1000, pairs, sets)

    def objective(trial):
        params = {k: _suggest(trial, k, spec) for k, spec in space.items()}
        fit = fit_model(name, with_overrides(name, hp, {**params, **budget}), train, data, seed)
        trial.set_user_attr("best_epoch", fit.best_epoch)
        trial.set_user_attr("select_on", fit.select_on)
        return fit.best_score

    def report(study, trial):
        log.info("%s trial %d (%s): %s -> %s", name, trial.number, trial.state.name, trial.params, trial.value)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=int(seed)))
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=int(n_trials), catch=(FloatingPointError,), callbacks=[report])
    table = _trials_table(study, list(space))
    if not (table["state"] == "COMPLETE").any():
        raise MorphotxInputError(f"tune {name}: none of {n_trials} trials completed (see the log); narrow "
                                 f"tune.space.{hp.family} (e.g. lower lr)")
    best = study.best_trial
    text = _best_yaml(name, hp, best, seed, int(n_trials), budget.get("max_epochs"), split_name)
    outs = [trials_out, best_out] + ([trials_tsv] if trials_tsv else [])
    with atomic_outputs(*outs) as tmps:
        write_parquet(table, tmps[0])
        tmps[1].write_text(text)
        if trials_tsv:
            table.to_csv(tmps[2], sep="\t", index=False)
    log.info("%s: best trial %d of %d, validation score %.4f, %s (%.0f s)", name, best.number, len(table),
             best.value, best.params, time.perf_counter() - t0)
    return table
