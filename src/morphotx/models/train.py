"""One trainer for every model family.

* device from ``train.device``: ``auto`` = CUDA when ``torch.cuda.is_available()``, else CPU;
  ``cuda`` without a GPU is an error (not a silent CPU run);
* optional bf16 autocast on CUDA (``train.mixed_precision``; ignored on CPU);
* seeds for Python, NumPy and torch; deterministic algorithms requested (warn-only) so two CPU
  runs with the same seed give identical weights;
* checkpoint choice and early stopping (``patience`` epochs without an improvement larger than
  ``min_delta``) on the **validation compounds** only (the test compounds are never read here),
  by ``train.select_on``:

  - ``downstream`` (default): the validation MoA mAP (:class:`ValidationMAP`): every epoch each
    validation treatment's embedding queries the training treatments' embeddings; contrastive
    models memorise training compounds after an epoch or two while their validation *loss* still
    says little about MoA retrieval of unseen compounds. When no validation treatment shares a MoA
    with a training treatment (e.g. ``split.mode: moa_disjoint``) the mAP is undefined and the
    trainer falls back to the loss, with a warning;
  - ``loss``: the validation loss;

  the best weights are restored and checkpointed. With ``train.full_curve`` training goes on to
  ``max_epochs`` after the epoch early stopping stops at, for the loss curve without early stopping
  (Saha 2025, Fig 1b); those later epochs are recorded (``past_early_stop``) but never kept, so the
  checkpoint is the one early stopping gives;
* per-epoch history (train and validation loss and each loss term, validation mAP, seconds) and
  the resolved hyperparameters are written next to the checkpoint;
* checkpoints are plain dicts of tensors and builtins, loaded with ``torch.load(weights_only=True)``
  and refused when their family, model name or fingerprint (hyperparameters + trainer settings +
  input feature names) does not match the config.

:func:`fit_model` trains in memory (the hyperparameter search, :mod:`morphotx.models.tune`, calls it);
:func:`train_model` is it plus the files.
"""

from __future__ import annotations

import copy
import logging
import os
import random
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from .. import schema as S
from ..io import MorphotxInputError, atomic_outputs, write_json
from ..settings import TrainSettings
from .config import FORMAT_VERSION, HyperParameters, fingerprint, primary_view, with_tuned
from .data import Items, ModelData
from .families import family_of

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "morphotx-checkpoint"


def select_device(setting: str) -> torch.device:
    """The torch device of ``train.device``: ``cpu``, ``cuda``, or ``auto`` (CUDA when available, else CPU).

    Raises
    ------
    MorphotxInputError
        If ``cuda`` is asked for and torch sees no CUDA device.
    """
    if setting == "cpu":
        return torch.device("cpu")
    if setting == "cuda":
        if not torch.cuda.is_available():
            raise MorphotxInputError("train.device is 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
        return torch.device("cuda")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators with ``seed`` and ask torch for deterministic
    algorithms (warn-only; cuBLAS's workspace setting is set when unset), so two CPU runs with the
    same seed give identical weights.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, file=sys.stderr, mininterval=2.0, leave=False)


def _epoch(fam, model, data, items, batches, device, amp: bool, opt=None) -> dict[str, float]:
    train = opt is not None
    model.train(train)
    sums: dict[str, float] = {}
    n = 0
    with torch.set_grad_enabled(train):
        for idx in batches:
            if train and len(idx) < 2:  # BatchNorm needs two samples
                continue
            batch = data.gather(items, idx)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                parts = fam.step(model, batch, device)
            if train:
                opt.zero_grad(set_to_none=True)
                parts["loss"].backward()
                opt.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach().float()) * len(idx)
            n += len(idx)
    return {k: v / max(n, 1) for k, v in sums.items()}


def mean_average_precision(queries: np.ndarray, database: np.ndarray, query_labels: np.ndarray,
                           database_labels: np.ndarray, exclude: np.ndarray | None = None) -> float:
    """Mean over queries of the average precision of ranking ``database`` by cosine similarity to
    each query; a database item is a positive when it shares at least one label with the query
    (multi-hot ``*_labels``). ``exclude`` (queries × database, bool) removes items from a query's
    ranking (e.g. the query's own compound when queries and database are one set). Queries without
    any positive are left out; NaN when none has one. Ties keep the database order. Plain numpy:
    cheaper than copairs once per epoch, and copairs does not offer a query/database split.
    """
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    d = database / np.maximum(np.linalg.norm(database, axis=1, keepdims=True), 1e-12)
    sim = q @ d.T
    pos = (query_labels @ database_labels.T) > 0
    if exclude is not None:
        sim = np.where(exclude, -np.inf, sim)
        pos = pos & ~exclude
    order = np.argsort(-sim, axis=1, kind="stable")
    hits = np.take_along_axis(pos, order, axis=1)
    n_pos = hits.sum(1)
    keep = n_pos > 0
    if not keep.any():
        return float("nan")
    precision = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    return float(((precision * hits).sum(1)[keep] / n_pos[keep]).mean())


class ValidationMAP:
    """The downstream score of ``train.select_on: downstream``: MoA mAP of the validation
    treatments (queries) against the training treatments (database) in the model's primary view,
    one embedding per treatment (compound × dose): the attention-pooled set embedding for set-level
    contrastive models, else the embedding of the treatment's median profile. Treatments with an
    empty set in a modality of the view are skipped. Treatments are taken by their split column
    (train and validation only; the test split is never read).

    When no validation treatment shares a MoA with a training one (``split.mode: moa_disjoint``,
    the zero-shot case), the database is the validation treatments themselves, leaving out the
    query's own compound: the score is then how well the embedding groups *unseen* MoAs.
    """

    def __init__(self, fam, hp, data: ModelData, device, amp: bool):
        self.fam, self.data, self.device, self.amp = fam, data, device, amp
        self.view = primary_view(hp)
        self.pooled = hp.family == "contrastive" and hp.unit == "sets"
        mods = S.modalities(self.view)
        unit = "sets" if self.pooled else "collapsed"
        self.items = {s: data.items(unit, s, mods) for s in ("train", "validation")}
        self.labels = {s: data.labels[it.treat] for s, it in self.items.items()}
        cpd = data.compound[self.items["validation"].treat]
        self.zero_shot = not ((self.labels["validation"] @ self.labels["train"].T) > 0).any()
        self.exclude = cpd[:, None] == cpd[None, :] if self.zero_shot else None

    def undefined(self) -> str | None:
        """Why the score cannot be computed, or None."""
        if not len(self.items["validation"]) or not len(self.items["train"]):
            return f"no training or validation treatment has the {self.view!r} view's data"
        lab = self.labels["validation"]
        if self.zero_shot and not ((lab @ lab.T > 0) & ~self.exclude).any():
            return ("no validation treatment shares a MoA with a training treatment or with another "
                    "validation compound")
        return None

    @torch.no_grad()
    def _embed(self, model, items: Items, batch: int = 256) -> np.ndarray:
        out = []
        for i in range(0, len(items), batch):
            arrays = self.data.gather(items, np.arange(i, min(i + batch, len(items))))
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                z = (self.fam.pool(model, self.view, arrays, self.device) if self.pooled
                     else self.fam.encode(model, self.view, arrays, self.device))
            out.append(z.float().cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    def __call__(self, model) -> float:
        """The score of ``model`` (put in eval mode)."""
        model.eval()
        z = {s: self._embed(model, it) for s, it in self.items.items()}
        db = "validation" if self.zero_shot else "train"
        return mean_average_precision(z["validation"], z[db], self.labels["validation"], self.labels[db],
                                      self.exclude)


@dataclass
class Fit:
    """A trained model (best weights restored) and how it was chosen."""

    model: torch.nn.Module
    history: pd.DataFrame
    select_on: str  # what chose the checkpoint: downstream | loss (after a fallback)
    best_epoch: int
    best_score: float  # validation mAP, or minus the validation loss; higher is better
    best_loss: float  # validation loss of the best epoch
    best_map: float  # validation mAP of the best epoch (NaN when undefined)
    n_train: int
    n_validation: int
    device: torch.device
    amp: bool
    seconds: float
    early_stop_epoch: int | None = None  # the epoch early stopping stopped (or, with full_curve, would stop) at


def _setup(name: str, hp, ts, data: ModelData, seed: int):
    device = select_device(ts.device)
    amp = bool(ts.mixed_precision and device.type == "cuda")
    seed_everything(int(seed))
    fam = family_of(hp, ts.input_clip)
    if getattr(hp, "shuffle_features", False):  # Chow 2022's shuffled control (VAEs)
        data = data.permuted(fam.modalities, np.random.default_rng([int(seed), 2]))
        log.info("%s: shuffle_features: every feature permuted across the training rows and across the "
                 "validation rows (seed %d)", name, seed)
    train_items, val_items = fam.items(data, "train"), fam.items(data, "validation")
    if len(train_items) < 2:
        raise MorphotxInputError(f"models.{name}: {len(train_items)} training unit(s) of kind {hp.unit!r}; "
                                 "check the split (split.fractions.train) and the pairing")
    if len(val_items) == 0:
        raise MorphotxInputError(f"models.{name}: no validation units: early stopping needs validation compounds "
                                 "(set split.fractions.validation > 0)")
    return device, amp, fam, train_items, val_items, data


def _select_on(name: str, ts, reason: str | None) -> str:
    if ts.select_on == "downstream" and reason:
        log.warning("models.%s: train.select_on is 'downstream' but the validation MoA mAP is undefined: %s; "
                    "choosing the checkpoint on the validation loss instead", name, reason)
        return "loss"
    return ts.select_on


def fit_model(name: str, hp, ts, data: ModelData, seed: int) -> Fit:
    """Train model ``name`` (resolved hyperparameters ``hp``, trainer settings ``ts``) on ``data``
    with ``seed``; early stopping and the returned weights follow ``ts.select_on``. Writes nothing.
    """
    device, amp, fam, train_items, val_items, data = _setup(name, hp, ts, data, seed)
    model = fam.build(data, train_items).to(device)
    # fused: one kernel for the whole update (CPU and CUDA); the per-tensor loop was ~30 % of a CPU
    # training step of the pair-level contrastive models, the fused update about a seventh of it
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=hp.lr,
                            weight_decay=hp.weight_decay, fused=True)
    rng = np.random.default_rng(int(seed))
    val_batches = fam.eval_batches(data, val_items, np.random.default_rng(int(seed) + 1))
    scorer = ValidationMAP(fam, hp, data, device, amp)
    reason = scorer.undefined()
    select_on, has_map = _select_on(name, ts, reason), reason is None
    max_epochs = hp.max_epochs or ts.max_epochs
    log.info("%s (%s, unit=%s, seed=%d): %d training / %d validation units, %d parameters, device %s%s; "
             "checkpoint chosen on %s", name, hp.family, hp.unit, seed, len(train_items), len(val_items),
             sum(p.numel() for p in model.parameters()), device, " (bf16 autocast)" if amp else "",
             "validation MoA mAP" if select_on == "downstream" else "validation loss")
    rows, best, best_state, best_row, wait, stop_epoch = [], -float("inf"), None, None, 0, None
    t_start = time.perf_counter()
    for epoch in _progress(range(1, max_epochs + 1), ts.progress, name):
        t0 = time.perf_counter()
        tr = _epoch(fam, model, data, train_items, fam.batches(data, train_items, rng), device, amp, opt)
        va = _epoch(fam, model, data, val_items, val_batches, device, amp)
        val_map = scorer(model) if has_map else float("nan")
        row = {"epoch": epoch, **{f"train_{k}": v for k, v in tr.items()}, **{f"val_{k}": v for k, v in va.items()},
               "val_map": val_map, "seconds": time.perf_counter() - t0}
        score = val_map if select_on == "downstream" else -va["loss"]
        # after the epoch early stopping stops at (train.full_curve), epochs are recorded, never kept
        row["best"] = improved = bool(stop_epoch is None and score > best + ts.min_delta)
        row["past_early_stop"] = stop_epoch is not None
        rows.append(row)
        log.info("epoch %d: train %.4f, validation %.4f, validation mAP %.4f%s", epoch, tr["loss"], va["loss"],
                 val_map, " *" if improved else "")
        if not np.isfinite(tr["loss"]):
            raise FloatingPointError(f"models.{name}: training loss is {tr['loss']} at epoch {epoch}; lower lr "
                                     "or check the inputs")
        if improved:
            best, best_row, wait = score, row, 0
            best_state = copy.deepcopy(model.state_dict())
        elif stop_epoch is None:
            wait += 1
            if wait >= ts.patience:
                log.info("early stop at epoch %d: no validation improvement for %d epochs (best epoch %d, %.4f)%s",
                         epoch, ts.patience, best_row["epoch"] if best_row else 0, best,
                         "; training on to max_epochs for the full curve (train.full_curve)" if ts.full_curve else "")
                stop_epoch = epoch
                if not ts.full_curve:
                    break
    if best_state is None:
        raise FloatingPointError(f"models.{name}: the validation score was never finite; lower lr or check the inputs")
    model.load_state_dict(best_state)
    hist = pd.DataFrame(rows)
    return Fit(model, hist, select_on, int(best_row["epoch"]), float(best), float(best_row["val_loss"]),
               float(best_row["val_map"]), len(train_items), len(val_items), device, amp,
               time.perf_counter() - t_start, stop_epoch)


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def train_model(name: str, hp: HyperParameters, train: TrainSettings, cp: str, l1000: str, pairs: str, sets: str,
                checkpoint: str, history: str, params: str, seed: int, threads: int = 1,
                tuned: str | None = None) -> pd.DataFrame:
    """Train model ``name`` with ``seed``; write checkpoint, history CSV and resolved params JSON.

    Parameters
    ----------
    name : str
        The model's name in ``models``.
    hp : object
        The model's resolved hyperparameters (:func:`morphotx.models.resolve`: a dataclass of
        :mod:`morphotx.models.config`).
    train : TrainSettings
        The ``train`` config section (the trainer: device, epochs, early stopping, ...).
    cp, l1000 : str
        The fold's preprocessed Cell Painting and L1000 profiles (Parquet).
    pairs, sets : str
        The fold's pairing index and treatment sets (``pairs/fold<f>/pair_index.parquet``,
        ``treatment_sets.parquet``).
    checkpoint, history, params : str
        The files written together: the best-validation weights with the model's fingerprint
        (``checkpoint.pt``), the per-epoch history (CSV) and the resolved settings and training
        summary (JSON).
    seed : int
        The training seed (the rule's wildcard): weight initialisation, batches, dropout.
    threads : int, default 1
        PyTorch CPU threads (the rule's ``threads``, config ``threads.train``).
    tuned : str, optional
        The split's ``best.yaml`` of ``tune`` (``tune.apply``), applied over ``hp``.

    Returns
    -------
    pandas.DataFrame
        The per-epoch history.
    """
    hp = with_tuned(name, hp, tuned)
    torch.set_num_threads(max(1, int(threads)))
    data = ModelData(cp, l1000, pairs, sets)
    fit = fit_model(name, hp, train, data, seed)
    hist = fit.history
    features = {m: data.features(m) for m in ("cp", "l1000")}
    ckpt = {
        "format": CHECKPOINT_FORMAT, "version": FORMAT_VERSION, "model": name, "family": hp.family,
        "fingerprint": fingerprint(hp, train, features), "hyperparameters": asdict(hp), "seed": int(seed),
        "features": features, "moa_vocab": list(data.moa_vocab), "best_epoch": fit.best_epoch,
        "select_on": fit.select_on, "device": str(fit.device), "torch": str(torch.__version__),
        "input_clip": float(train.input_clip),
        "state_dict": {k: v.detach().cpu() for k, v in fit.model.state_dict().items()},
    }
    resolved = {"model": name, "hyperparameters": asdict(hp), "train": asdict(train), "seed": int(seed),
                "device": str(fit.device), "mixed_precision": fit.amp, "threads": int(threads),
                "n_train_units": fit.n_train, "n_validation_units": fit.n_validation,
                "epochs_run": int(len(hist)), "select_on": fit.select_on, "best_epoch": fit.best_epoch,
                "best_validation_score": fit.best_score, "best_validation_loss": fit.best_loss,
                "best_validation_map": _finite_or_none(fit.best_map),
                "stopped_early": fit.early_stop_epoch is not None, "early_stop_epoch": fit.early_stop_epoch,
                "full_curve": bool(train.full_curve), "seconds": round(fit.seconds, 3),
                "train_samples_per_second": round(float(fit.n_train * len(hist) / max(fit.seconds, 1e-9)), 1),
                "fingerprint": ckpt["fingerprint"], "torch": str(torch.__version__)}
    with atomic_outputs(checkpoint, history, params) as (t_ck, t_hist, t_par):
        torch.save(ckpt, t_ck)
        hist.to_csv(t_hist, index=False)
        write_json(resolved, t_par)
    log.info("%s: best epoch %d of %d (%s), validation loss %.4f, validation mAP %.4f, %.1f s", name, fit.best_epoch,
             len(hist), fit.select_on, fit.best_loss, fit.best_map, fit.seconds)
    return hist


def read_checkpoint(path: str, name: str | None = None) -> dict:
    """A morphotx checkpoint dict read with ``weights_only=True``; an unreadable file, another
    format or another format version is an error saying to retrain (model ``name``).
    """
    retrain = f"retrain model {name}" if name else "retrain the model"
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files
        raise MorphotxInputError(f"{path}: not a loadable morphotx checkpoint ({exc}); retrain the model") from exc
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise MorphotxInputError(f"{path}: not a morphotx checkpoint; {retrain}")
    if ck.get("version") != FORMAT_VERSION:
        raise MorphotxInputError(f"{path}: checkpoint format version {ck.get('version')} but this morphotx reads "
                                 f"{FORMAT_VERSION}; {retrain}")
    return ck


def load_checkpoint(path: str, name: str, hp: HyperParameters, train: TrainSettings, features: dict | None = None):
    """Load a checkpoint (:func:`read_checkpoint`) and check it belongs to model ``name`` as
    configured now (resolved hyperparameters ``hp``, trainer settings ``train``); returns
    ``(checkpoint dict, hp, train)``.
    """
    ck = read_checkpoint(path, name)
    if ck.get("family") != hp.family or ck.get("model") != name:
        raise MorphotxInputError(f"{path}: checkpoint of model {ck.get('model')!r} (family {ck.get('family')!r}), "
                                 f"not of models.{name} (family {hp.family!r}); retrain or point at the right file")
    feats = features if features is not None else ck.get("features")
    expect = fingerprint(hp, train, feats)
    if ck.get("fingerprint") != expect:
        raise MorphotxInputError(f"{path}: checkpoint was trained with other hyperparameters, trainer settings or "
                                 f"input features than models.{name} has now (fingerprint {ck.get('fingerprint')} "
                                 f"≠ {expect}); retrain it (snakemake reruns it when the config changes)")
    return ck, hp, train


def build_model(ck: dict, hp, clip: float, shapes, device=None):
    """The network of checkpoint ``ck`` (hyperparameters ``hp``), built with its family's shapes
    (``shapes.dim(modality)``), weights loaded, in eval mode; returns ``(model, family)``.
    """
    from .families import family_of

    fam = family_of(hp, clip)
    model = fam.build(shapes, None)  # the right shapes; weights and input scaling come from the checkpoint
    model.load_state_dict(ck["state_dict"])
    model.to(device or torch.device("cpu")).eval()
    return model, fam


def load_model(name: str, hp: HyperParameters, train: TrainSettings, checkpoint: str, data: ModelData, device=None):
    """The trained model of ``checkpoint`` (checked against the config and ``data``'s features, as
    :func:`load_checkpoint`), built with its family's shapes, weights loaded, in eval mode.
    Returns ``(model, family, hyperparameters, trainer settings)``.
    """
    ck, hp, ts = load_checkpoint(checkpoint, name, hp, train, {m: data.features(m) for m in ("cp", "l1000")})
    model, fam = build_model(ck, hp, ts.input_clip, data, device)
    return model, fam, hp, ts
