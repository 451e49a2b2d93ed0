"""How well the generative models reproduce profiles of compounds they never saw.

* **Translator** (Saha 2025, L1000 → Cell Painting): a predictor, so it is scored as one — the
  Cell Painting profile predicted from each held-out treatment's median L1000 profile against its
  measured median Cell Painting profile.
* **VAEs** (Chow 2022, the per-feature reconstruction analysis of its supplementary figures): each
  held-out treatment's median input profile encoded (posterior mean), decoded, compared with itself.

Per feature, over the treatments of the ``split`` (test by default): the coefficient of
determination R² = 1 − SS_res / SS_tot (0 = no better than the held-out mean, negative = worse)
and the mean squared error, both in the model's scaled units (z-scores, or 0–1 with a VAE's
``input_scale: minmax``; R² does not depend on them). Cell Painting features carry their
compartment × channel group (:func:`arithmetic.feature_group`).

**Distribution comparison** (Chow 2022, Table 1 and Fig 2), in the same units:

* per sample (held-out treatment): the squared error averaged over features (MSE) and the
  earth mover's (1-D Wasserstein) distance between the real profile's feature values and the
  reconstructed profile's — Table 1 reports the mean over samples with its 5th–95th percentiles;
* per feature: the earth mover's distance between the feature's real values over the held-out
  treatments and its reconstructed values (``emd_reconstructed``), and its values in as many
  profiles *simulated* by decoding draws from the prior N(0, I) (``emd_simulated``, VAEs only;
  Fig 2 shows the same three sets in a UMAP of the test set).

**Shuffled control** (Chow 2022, Table 1 and S1–S3 Figs; VAEs, ``reconstruction.shuffled_control``):
the same VAE (same hyperparameters, trainer and seed) trained on profiles whose every feature is
permuted independently across the training rows and across the validation rows
(:meth:`.models.data.ModelData.permuted`, Chow 2022's "independently shuffling the rows of each
column"), scored on the held-out treatments permuted the same way. Its per-sample scores go in the
per-sample table (``data: shuffled``) and its training history beside the model's own
(``data: real``) for the loss-curve comparison.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from scipy import stats

from .. import schema as S
from ..io import atomic_outputs, write_parquet
from ..models.config import HyperParameters
from ..settings import ReconstructionSettings, TrainSettings
from .arithmetic import feature_group

log = logging.getLogger(__name__)


def r2_per_feature(target: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R² and MSE of each column of ``pred`` against ``target`` (rows: treatments); R² is NaN for a
    column without variance.
    """
    res = ((target - pred) ** 2).sum(0)
    tot = ((target - target.mean(0)) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(tot > 0, 1 - res / tot, np.nan)
    return r2, res / max(len(target), 1)


def sample_scores(target: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """Per row: mean squared error over the features and the earth mover's (1-D Wasserstein)
    distance between the row's feature values in ``target`` and in ``pred`` (Chow 2022, Table 1).
    """
    emd = [float(stats.wasserstein_distance(t, p)) for t, p in zip(target, pred)]
    return pd.DataFrame({"mse": ((target - pred) ** 2).mean(1), "emd": emd})


def feature_emd(target: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per column: the earth mover's distance between its values in ``target`` and in ``other``
    (row counts may differ).
    """
    return np.array([stats.wasserstein_distance(target[:, j], other[:, j]) for j in range(target.shape[1])])


def _treatments(data, split: str, mods) -> np.ndarray:
    """Positions (in ``data.treatments``) of the split's treatments measured in every modality."""
    in_split = data.treatments[S.SPLIT].astype(str).to_numpy() == split
    ok = np.logical_and.reduce([np.isfinite(data.collapsed(m)).all(1) for m in mods])
    return np.flatnonzero(in_split & ok)


@torch.no_grad()
def reconstruct(model, hp, data, split: str = "test", seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores of the model's output on the ``split``'s treatments (median profiles): per feature
    (R², MSE, earth mover's distances to the reconstructed and, for VAEs, simulated values) and
    per sample (MSE, earth mover's distance; ``data: real``). ``seed`` draws the simulated latent
    codes. Returns ``(per-feature table, per-sample table)``.
    """
    if hp.family == "translator":
        rows = _treatments(data, split, ("l1000", "cp"))
        x = torch.from_numpy(data.collapsed("l1000")[rows])
        target = model.norm_cp(torch.from_numpy(data.collapsed("cp")[rows]))
        pred, features, modality = model(x), data.features("cp"), "cp"
    elif hp.family == "vae":
        mods = S.modalities(hp.input)
        rows = _treatments(data, split, mods)
        x = torch.from_numpy(np.hstack([data.collapsed(m)[rows] for m in mods]))
        pred, target = model(x)[0], model.norm(x)
        features = [f for m in mods for f in data.features(m)]
        modality = hp.input
    else:
        raise ValueError(f"reconstruction needs a translator or a VAE; got family {hp.family!r}")
    target, pred = target.double().numpy(), pred.double().numpy()
    r2, mse = r2_per_feature(target, pred)
    cp_feats = set(data.features("cp"))
    table = pd.DataFrame({"feature": features, "modality": [("cp" if f in cp_feats else "l1000") for f in features],
                          "group": [feature_group(f) if f in cp_feats else "L1000 gene" for f in features],
                          "r2": r2, "mse": mse, "emd_reconstructed": feature_emd(target, pred),
                          "emd_simulated": np.nan})
    if hp.family == "vae" and len(rows):
        z = np.random.default_rng([int(seed), 3]).standard_normal((len(rows), hp.latent_dim))
        simulated = model.decoder(torch.as_tensor(z, dtype=torch.float32)).double().numpy()
        table["emd_simulated"] = feature_emd(target, simulated)
    samples = sample_scores(target, pred).assign(treatment=data.treatments[S.TREATMENT].to_numpy()[rows], data="real")
    return table.assign(target=modality, split=split, n_treatments=len(rows)), samples


def shuffled_control(name: str, hp, ts, data, seed: int, split: str = "test") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Chow 2022's shuffled control of VAE ``name``: trained like it (``hp`` with
    ``shuffle_features``, trainer ``ts``, ``seed``) on feature-permuted training and validation
    rows, scored on the ``split``'s treatments permuted the same way. Returns ``(per-sample
    table with data: shuffled, training history)``.
    """
    from dataclasses import replace

    from ..models.train import fit_model

    fit = fit_model(f"{name} (shuffled control)", replace(hp, shuffle_features=True), ts, data, seed)
    held_out = data.permuted(("cp", "l1000"), np.random.default_rng([int(seed), 4]), splits=(split,))
    fit.model.cpu().eval()
    _, samples = reconstruct(fit.model, hp, held_out, split, seed)
    return samples.assign(data="shuffled"), fit.history


def reconstruction(name: str, hp: HyperParameters, train: TrainSettings, checkpoint: str, cp: str, l1000: str,
                   pairs: str, sets: str, output: str, samples_out: str | None = None, history: str | None = None,
                   curves_out: str | None = None,
                   settings: ReconstructionSettings = ReconstructionSettings(), seed: int = 0, fold: int = 0,
                   threads: int = 1) -> pd.DataFrame:
    """Load the checkpoint of model ``name``, score its reconstructions of the test treatments,
    write ``output`` (one row per feature) and ``samples_out`` (one row per test treatment). For a
    VAE with ``settings.shuffled_control``, also train its shuffled control (:func:`shuffled_control`) and write its
    history beside the model's own to ``curves_out``.

    Parameters
    ----------
    name, hp, train
        As in :func:`morphotx.models.train.train_model`.
    checkpoint : str
        The trained weights.
    cp, l1000 : str
        The fold's preprocessed Cell Painting and L1000 profiles (Parquet).
    pairs, sets : str
        The fold's pairing index and treatment sets (``pairs/fold<f>/pair_index.parquet``,
        ``treatment_sets.parquet``).
    output : str
        Per-feature R² and distribution distances on the test treatments (Parquet).
    samples_out : str, optional
        Per test treatment: MSE and earth mover's distance, real and (VAEs) shuffled control.
    history : str, optional
        The model's ``history.csv``, copied into ``curves_out`` as the ``real`` curve.
    curves_out : str, optional
        Loss curves of the model and its shuffled control (Parquet, without wall-clock times).
    settings : ReconstructionSettings, default ReconstructionSettings()
        The ``reconstruction`` config section: ``shuffled_control``, train the VAE's shuffled
        control (ignored for the translator).
    seed : int, default 0
        The training seed (the rule's wildcard): seeds the reconstruction sampling and the control.
    fold : int, default 0
        The fold (the rule's wildcard), recorded in every row.
    threads : int, default 1
        PyTorch CPU threads.

    Returns
    -------
    pandas.DataFrame
        The per-feature table as written.
    """
    from ..models.data import ModelData
    from ..models.train import load_model

    torch.set_num_threads(max(1, int(threads)))
    data = ModelData(cp, l1000, pairs, sets)
    model, _, hp, ts = load_model(name, hp, train, checkpoint, data)
    table, samples = reconstruct(model, hp, data, seed=seed)
    curves = [pd.read_csv(history).assign(data="real")] if history else []
    if settings.shuffled_control and hp.family == "vae":
        ctl_samples, ctl_hist = shuffled_control(name, hp, ts, data, seed)
        samples = pd.concat([samples, ctl_samples], ignore_index=True)
        curves.append(ctl_hist.assign(data="shuffled"))
    ids = dict(model=name, family=hp.family, fold=fold, seed=seed)
    table, samples = table.assign(**ids), samples.assign(**ids)
    curves = pd.concat(curves, ignore_index=True).assign(**ids) if curves else pd.DataFrame(columns=list(ids))
    # an epoch's wall time is a measurement, not a result: the same config gives the same tables
    curves = curves.drop(columns="seconds", errors="ignore")
    log.info("%s: reconstruction of %d test treatments, median per-feature R² %.3f (%d features)", name,
             int((samples["data"] == "real").sum()), float(np.nanmedian(table["r2"])) if len(table) else float("nan"),
             len(table))
    for d, g in samples.groupby("data"):
        log.info("%s, %s data: per-sample MSE %.4f, earth mover's distance %.4f (5–95 %%: %.4f–%.4f)", name, d,
                 g["mse"].mean(), g["emd"].mean(), g["emd"].quantile(0.05), g["emd"].quantile(0.95))
    files = [(o, tab) for o, tab in ((output, table), (samples_out, samples), (curves_out, curves)) if o]
    with atomic_outputs(*[o for o, _ in files]) as tmps:
        for (_, tab), tmp in zip(files, tmps):
            write_parquet(tab, tmp)
    return table
