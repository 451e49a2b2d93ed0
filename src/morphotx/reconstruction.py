"""How well the generative models reproduce profiles of compounds they never saw.

* **Translator** (study 000, L1000 → Cell Painting): a predictor, so it is scored as one — the
  Cell Painting profile predicted from each held-out treatment's median L1000 profile against its
  measured median Cell Painting profile.
* **VAEs** (seed 002, the per-feature reconstruction analysis of its supplementary figures): each
  held-out treatment's median input profile encoded (posterior mean), decoded, compared with itself.

Per feature, over the treatments of the ``split`` (test by default): the coefficient of
determination R² = 1 − SS_res / SS_tot (0 = no better than the held-out mean, negative = worse)
and the mean squared error, both in the model's standardised units (R² does not depend on them).
Cell Painting features carry their compartment × channel group (:func:`arithmetic.feature_group`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from . import schema as S
from .arithmetic import feature_group
from .io import atomic_outputs, write_parquet

log = logging.getLogger(__name__)


def r2_per_feature(target: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R² and MSE of each column of ``pred`` against ``target`` (rows: treatments); R² is NaN for a
    column without variance."""
    res = ((target - pred) ** 2).sum(0)
    tot = ((target - target.mean(0)) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(tot > 0, 1 - res / tot, np.nan)
    return r2, res / max(len(target), 1)


def _treatments(data, split: str, mods) -> np.ndarray:
    """Positions (in ``data.treatments``) of the split's treatments measured in every modality."""
    in_split = data.treatments[S.SPLIT].astype(str).to_numpy() == split
    ok = np.logical_and.reduce([np.isfinite(data.collapsed(m)).all(1) for m in mods])
    return np.flatnonzero(in_split & ok)


@torch.no_grad()
def reconstruct(model, hp, data, split: str = "test") -> tuple[pd.DataFrame, int]:
    """Per-feature R² and MSE of the model's output on the ``split``'s treatments (median
    profiles); returns ``(table, number of treatments)``."""
    if hp.family == "translator":
        rows = _treatments(data, split, ("l1000", "cp"))
        x = torch.from_numpy(data.collapsed("l1000")[rows])
        target = model.norm_cp(torch.from_numpy(data.collapsed("cp")[rows]))
        pred, features, modality = model(x), data.features("cp"), "cp"
    elif hp.family == "vae":
        mods = ("cp", "l1000") if hp.input == "concat" else (hp.input,)
        rows = _treatments(data, split, mods)
        x = torch.from_numpy(np.hstack([data.collapsed(m)[rows] for m in mods]))
        pred, target = model(x)[0], model.norm(x)
        features = [f for m in mods for f in data.features(m)]
        modality = hp.input
    else:
        raise ValueError(f"reconstruction needs a translator or a VAE; got family {hp.family!r}")
    r2, mse = r2_per_feature(target.double().numpy(), pred.double().numpy())
    cp_feats = set(data.features("cp"))
    table = pd.DataFrame({"feature": features, "modality": [("cp" if f in cp_feats else "l1000") for f in features],
                          "group": [feature_group(f) if f in cp_feats else "L1000 gene" for f in features],
                          "r2": r2, "mse": mse})
    return table.assign(target=modality, split=split, n_treatments=len(rows)), len(rows)


def reconstruction(name: str, model_cfg: dict, train_cfg: dict, checkpoint: str, cp: str, l1000: str,
                   pairs: str, sets: str, output: str, seed: int = 0, fold: int = 0, threads: int = 1) -> pd.DataFrame:
    """Load the checkpoint of model ``name``, score its reconstructions of the test treatments,
    write ``output`` (one row per feature)."""
    from .models.data import ModelData
    from .models.train import load_model

    torch.set_num_threads(max(1, int(threads)))
    data = ModelData(cp, l1000, pairs, sets)
    model, _, hp, _ = load_model(name, model_cfg, train_cfg, checkpoint, data)
    table, n = reconstruct(model, hp, data)
    table = table.assign(model=name, family=hp.family, fold=fold, seed=seed)
    log.info("%s: reconstruction of %d test treatments, median per-feature R² %.3f (%d features)", name, n,
             float(np.nanmedian(table["r2"])) if len(table) else float("nan"), len(table))
    with atomic_outputs(output) as (tmp,):
        write_parquet(table, tmp)
    return table
