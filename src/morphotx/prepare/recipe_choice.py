"""The Cell Painting preprocessing recipe of a split, chosen on that split's validation compounds.

The recipe (sphering or not, how to normalise against DMSO, …) can move the raw baseline more
than any model does, so it is a choice like the classifier's k: made per split, from that split's
training and validation compounds only, by the raw baseline. ``preprocess.cell_painting.candidates``
names the recipes to try, each as overrides of the configured ``preprocess.cell_painting``
settings (an empty mapping: the configured recipe itself). For every candidate the split's
profiles are preprocessed (:func:`morphotx.prepare.preprocess_stream.preprocess_cp`, the bounded-memory form of
:func:`morphotx.prepare.preprocess.preprocess_cp` with the same results: selection fitted on
training compounds and DMSO, normalisation and sphering on DMSO wells), the raw Cell Painting
baseline is fitted on the training compounds and scored on the validation compounds
(:func:`morphotx.evaluate.classify.classify_table`, each classifier of ``choose_with`` at the replicate
and the treatment level, kNN's k and the C of logistic regression chosen as the evaluation
chooses them), and the candidate whose best configuration scores highest on validation
macro-F1 is kept (the first named on a tie). Its files become the split's preprocessed profiles,
which every model of the split trains on and every evaluation reads; the scores of all candidates
are written beside them (``choice``), and the headline names the recipe of every split.

Test compounds decide nothing: classifiers are fitted on training rows, only validation rows are
scored for the choice, and preprocessing fits nothing on test compounds. With one candidate (the
default) nothing is scored and the configured recipe is used, as before.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from morphotx import schema as S
from morphotx.evaluate.classify import classify_table
from morphotx.io import MorphotxInputError, atomic_outputs, read_table
from morphotx.prepare import preprocess_stream
from morphotx.prepare.pairing import collapse
from morphotx.settings import CellPaintingPreprocessSettings, EvaluateSettings, build

log = logging.getLogger(__name__)

CHOICE_COLUMNS = ["recipe", "overrides", "validation_macro_f1", "best_configuration", "chosen"]


def merged_settings(base: CellPaintingPreprocessSettings, overrides: dict,
                    name: str = "candidate") -> CellPaintingPreprocessSettings:
    """``base`` with one candidate's ``overrides`` applied one level deep
    (``{"sphere": {"method": "none"}}`` replaces only the sphering method).

    Parameters
    ----------
    base : CellPaintingPreprocessSettings
        The configured ``preprocess.cell_painting`` settings.
    overrides : dict
        One candidate's overrides: keys ``recipe``, ``drop_patterns``, ``feature_select``,
        ``normalize``, ``sphere`` (checked as the config's are: an unknown key or a value outside a
        setting's choices is an error naming ``preprocess.cell_painting.candidates.<name>``).
    name : str, default "candidate"
        The candidate's name, for errors.

    Returns
    -------
    CellPaintingPreprocessSettings
        The candidate's settings.
    """
    where = f"preprocess.cell_painting.candidates.{name}"
    nested = sorted({"candidates", "choose_with"} & set(overrides))
    if nested:
        raise MorphotxInputError(f"{where}: {nested} cannot be set per candidate; set them once in "
                                 "preprocess.cell_painting")
    return build(CellPaintingPreprocessSettings, overrides, where, base=base)


def recipe_arguments(settings: CellPaintingPreprocessSettings) -> dict:
    """The recipe keywords of :func:`morphotx.prepare.preprocess_stream.preprocess_cp` (and of
    :func:`morphotx.prepare.preprocess.preprocess_cp`) from typed settings.
    """
    return dict(recipe=settings.recipe, drop_patterns=settings.drop_patterns,
                feature_select=asdict(settings.feature_select), normalize=asdict(settings.normalize),
                sphere=asdict(settings.sphere))


def validation_score(profiles: pd.DataFrame, classifiers: list[str], seed: int,
                     evaluate: EvaluateSettings) -> tuple[float, str]:
    """The raw Cell Painting baseline's best validation macro-F1 on preprocessed profiles.

    Parameters
    ----------
    profiles : pandas.DataFrame
        One split's preprocessed Cell Painting profiles (with ``Metadata_split``).
    classifiers : list of str
        Classifiers tried (``preprocess.cell_painting.choose_with``).
    seed : int
        Seed of the classifiers (``split.seed``).
    evaluate : EvaluateSettings
        The ``evaluate`` settings (k range, C grid, …).

    Returns
    -------
    tuple of (float, str)
        The best validation macro-F1 over classifiers × levels (NaN when none could be scored,
        e.g. a MoA-disjoint split) and that configuration's name.
    """
    treated = profiles[~profiles[S.IS_CONTROL].astype(bool)].reset_index(drop=True)
    levels = {"replicate": treated, "treatment": collapse(treated, include_controls=False)}
    best, where = np.nan, ""
    for level, df in levels.items():
        rows, _, _, _ = classify_table(df, df[S.feature_columns(df)].to_numpy(np.float64), classifiers, seed, evaluate)
        for r in rows:
            v = r.get("macro_f1", np.nan)
            if r["split"] == "validation" and r.get("status") == "ok" and np.isfinite(v) and not v <= best:
                best, where = float(v), f"{r['classifier']}, {level}"
    return best, where


def preprocess_cp(profiles: str, split: str, preprocessed: str, features_json: str, params_npz: str,
                  choice: str, settings: CellPaintingPreprocessSettings = CellPaintingPreprocessSettings(),
                  seed: int = 0, evaluate: EvaluateSettings = EvaluateSettings()) -> pd.DataFrame:
    """Preprocess one split's Cell Painting profiles with every candidate recipe and keep the one
    the raw baseline scores best on the split's validation compounds (see the module docstring):
    the entry point of rule ``preprocess_cp``. With one candidate it is
    :func:`morphotx.prepare.preprocess.preprocess_cp` with the configured settings (and a choice table).

    Parameters
    ----------
    profiles, split : str
        Harmonised Cell Painting profiles and the split's compound table.
    preprocessed, features_json, params_npz : str
        Outputs of :func:`morphotx.prepare.preprocess.preprocess_cp` for the chosen recipe.
    choice : str
        Output TSV: one row per candidate (``recipe``, ``overrides`` as JSON,
        ``validation_macro_f1``, ``best_configuration``, ``chosen``).
    settings : CellPaintingPreprocessSettings, default CellPaintingPreprocessSettings()
        The ``preprocess.cell_painting`` section: the configured recipe, its ``candidates``
        (``{name: overrides}``; empty: the configured recipe only, unscored) and ``choose_with``
        (the classifiers of the choice).
    seed : int, default 0
        Seed of the classifiers (the rule passes ``split.seed``).
    evaluate : EvaluateSettings, default EvaluateSettings()
        Settings of the classifiers (k range, C grid). The workflow passes none (the defaults),
        so that a changed evaluation setting reruns the evaluation only, not preprocessing and
        training.

    Returns
    -------
    pandas.DataFrame
        The choice table.
    """
    candidates = dict(settings.candidates) or {"configured": {}}
    choose_with = list(settings.choose_with)
    recipes = {name: recipe_arguments(merged_settings(settings, over, name)) for name, over in candidates.items()}
    outputs = [preprocessed, features_json, params_npz]
    if len(candidates) == 1:
        (name, over), = candidates.items()
        preprocess_stream.preprocess_cp(profiles, split, *outputs, **recipes[name])
        table = pd.DataFrame([[name, json.dumps(over, sort_keys=True), np.nan, "", True]], columns=CHOICE_COLUMNS)
        with atomic_outputs(choice) as (tmp,):
            table.to_csv(tmp, sep="\t", index=False)
        return table
    rows = []
    Path(preprocessed).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=Path(preprocessed).parent, prefix=".recipes-") as tmpdir:
        for i, (name, over) in enumerate(candidates.items()):
            paths = [str(Path(tmpdir) / f"{i}_{Path(p).name}") for p in outputs]
            try:
                preprocess_stream.preprocess_cp(profiles, split, *paths, **recipes[name])
            except (ValueError, np.linalg.LinAlgError) as e:  # e.g. sphering with fewer DMSO wells than features
                log.warning("recipe %s could not be applied to this split, left out of the choice: %s", name, e)
                rows.append([name, json.dumps(over, sort_keys=True), np.nan, f"failed: {e}", False])
                continue
            t0 = time.perf_counter()
            out = read_table(paths[0])
            score, where = validation_score(out, choose_with, seed, evaluate)
            del out
            log.info("recipe %s: validation macro-F1 %.4f (%s; scored in %.1f s)", name, score,
                     where or "not scored", time.perf_counter() - t0)
            rows.append([name, json.dumps(over, sort_keys=True), score, where, False])
        table = pd.DataFrame(rows, columns=CHOICE_COLUMNS)
        scores = table["validation_macro_f1"].to_numpy(float)
        ok = ~table["best_configuration"].str.startswith("failed")
        if not ok.any():
            raise MorphotxInputError(f"{profiles}: no candidate of preprocess.cell_painting.candidates could be "
                                     f"applied to split {split} (see the log); add a recipe that applies")
        pick = int(np.nanargmax(scores)) if np.isfinite(scores).any() else int(np.flatnonzero(ok)[0])
        if not np.isfinite(scores).any():
            log.warning("no candidate recipe could be scored on validation compounds; the first that applies "
                        "(%s) is used", table.loc[pick, "recipe"])
        table.loc[pick, "chosen"] = True
        with atomic_outputs(*outputs, choice) as tmps:
            for j, t in enumerate(tmps[:3]):
                shutil.copyfile(Path(tmpdir) / f"{pick}_{Path(outputs[j]).name}", t)
            table.to_csv(tmps[3], sep="\t", index=False)
    log.info("chosen recipe: %s", table.loc[pick, "recipe"])
    return table
