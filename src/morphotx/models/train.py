"""One trainer for every model family.

* device from ``train.device``: ``auto`` = CUDA when ``torch.cuda.is_available()``, else CPU;
  ``cuda`` without a GPU is an error (not a silent CPU run);
* optional bf16 autocast on CUDA (``train.mixed_precision``; ignored on CPU);
* seeds for Python, NumPy and torch; deterministic algorithms requested (warn-only) so two CPU
  runs with the same seed give identical weights;
* early stopping with ``patience`` on the loss over the **validation compounds** (the test
  compounds are never read here); the best-validation weights are restored and checkpointed;
* per-epoch history (train and validation loss and each loss term, seconds) and the resolved
  hyperparameters are written next to the checkpoint;
* checkpoints are plain dicts of tensors and builtins, loaded with ``torch.load(weights_only=True)``
  and refused when their family, model name or fingerprint (hyperparameters + trainer settings +
  input feature names) does not match the config.
"""

from __future__ import annotations

import copy
import logging
import os
import random
import sys
import time
from dataclasses import asdict

import numpy as np
import pandas as pd
import torch

from ..io import MorphotxInputError, atomic_outputs, write_json
from .config import FORMAT_VERSION, fingerprint, resolve, resolve_train
from .data import ModelData
from .families import family_of

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "morphotx-checkpoint"


def select_device(setting: str) -> torch.device:
    if setting == "cpu":
        return torch.device("cpu")
    if setting == "cuda":
        if not torch.cuda.is_available():
            raise MorphotxInputError("train.device is 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
        return torch.device("cuda")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
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


def train_model(name: str, model_cfg: dict, train_cfg: dict, cp: str, l1000: str, pairs: str, sets: str,
                checkpoint: str, history: str, params: str, seed: int, threads: int = 1) -> pd.DataFrame:
    """Train model ``name`` with ``seed``; write checkpoint, history CSV and resolved params JSON."""
    hp = resolve(name, model_cfg)
    ts = resolve_train(train_cfg)
    torch.set_num_threads(max(1, int(threads)))
    device = select_device(ts.device)
    amp = bool(ts.mixed_precision and device.type == "cuda")
    seed_everything(int(seed))
    data = ModelData(cp, l1000, pairs, sets)
    fam = family_of(hp, ts.input_clip)
    train_items, val_items = fam.items(data, "train"), fam.items(data, "validation")
    if len(train_items) < 2:
        raise MorphotxInputError(f"models.{name}: {len(train_items)} training unit(s) of kind {hp.unit!r}; "
                                 "check the split (split.fractions.train) and the pairing")
    if len(val_items) == 0:
        raise MorphotxInputError(f"models.{name}: no validation units: early stopping needs validation compounds "
                                 "(set split.fractions.validation > 0)")
    model = fam.build(data, train_items).to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=hp.lr,
                            weight_decay=hp.weight_decay)
    rng = np.random.default_rng(int(seed))
    val_batches = fam.eval_batches(data, val_items, np.random.default_rng(int(seed) + 1))
    max_epochs = hp.max_epochs or ts.max_epochs
    log.info("%s (%s, unit=%s, seed=%d): %d training / %d validation units, %d parameters, device %s%s",
             name, hp.family, hp.unit, seed, len(train_items), len(val_items),
             sum(p.numel() for p in model.parameters()), device, " (bf16 autocast)" if amp else "")
    rows, best, best_state, best_epoch, wait = [], float("inf"), None, 0, 0
    t_start = time.perf_counter()
    for epoch in _progress(range(1, max_epochs + 1), ts.progress, name):
        t0 = time.perf_counter()
        tr = _epoch(fam, model, data, train_items, fam.batches(data, train_items, rng), device, amp, opt)
        va = _epoch(fam, model, data, val_items, val_batches, device, amp)
        row = {"epoch": epoch, **{f"train_{k}": v for k, v in tr.items()}, **{f"val_{k}": v for k, v in va.items()},
               "seconds": time.perf_counter() - t0}
        improved = va["loss"] < best - ts.min_delta
        row["best"] = improved
        rows.append(row)
        log.info("epoch %d: train %.4f, validation %.4f%s", epoch, tr["loss"], va["loss"], " *" if improved else "")
        if not np.isfinite(tr["loss"]):
            raise FloatingPointError(f"models.{name}: training loss is {tr['loss']} at epoch {epoch}; lower lr "
                                     "or check the inputs")
        if improved:
            best, best_epoch, wait = va["loss"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            wait += 1
            if wait >= ts.patience:
                log.info("early stop at epoch %d: no validation improvement for %d epochs (best epoch %d, %.4f)",
                         epoch, ts.patience, best_epoch, best)
                break
    model.load_state_dict(best_state)
    seconds = time.perf_counter() - t_start
    hist = pd.DataFrame(rows)
    features = {m: data.features(m) for m in ("cp", "l1000")}
    ckpt = {
        "format": CHECKPOINT_FORMAT, "version": FORMAT_VERSION, "model": name, "family": hp.family,
        "fingerprint": fingerprint(hp, ts, features), "hyperparameters": asdict(hp), "seed": int(seed),
        "features": features, "moa_vocab": list(data.moa_vocab), "best_epoch": int(best_epoch),
        "device": str(device), "torch": str(torch.__version__),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    resolved = {"model": name, "hyperparameters": asdict(hp), "train": asdict(ts), "seed": int(seed),
                "device": str(device), "mixed_precision": amp, "threads": int(threads),
                "n_train_units": len(train_items), "n_validation_units": len(val_items),
                "epochs_run": int(len(hist)), "best_epoch": int(best_epoch), "best_validation_loss": float(best),
                "stopped_early": bool(len(hist) < max_epochs), "seconds": round(seconds, 3),
                "train_samples_per_second": round(float(len(train_items) * len(hist) / max(seconds, 1e-9)), 1),
                "fingerprint": ckpt["fingerprint"], "torch": str(torch.__version__)}
    with atomic_outputs(checkpoint, history, params) as (t_ck, t_hist, t_par):
        torch.save(ckpt, t_ck)
        hist.to_csv(t_hist, index=False)
        write_json(resolved, t_par)
    log.info("%s: best epoch %d of %d, validation loss %.4f, %.1f s", name, best_epoch, len(hist), best, seconds)
    return hist


def load_checkpoint(path: str, name: str, model_cfg: dict, train_cfg: dict, features: dict | None = None):
    """Load a checkpoint (``weights_only=True``) and check it belongs to model ``name`` as configured
    now; returns ``(checkpoint dict, resolved hyperparameters, trainer settings)``."""
    hp, ts = resolve(name, model_cfg), resolve_train(train_cfg)
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files
        raise MorphotxInputError(f"{path}: not a loadable morphotx checkpoint ({exc}); retrain the model") from exc
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise MorphotxInputError(f"{path}: not a morphotx checkpoint; retrain model {name}")
    if ck.get("version") != FORMAT_VERSION:
        raise MorphotxInputError(f"{path}: checkpoint format version {ck.get('version')} but this morphotx reads "
                                 f"{FORMAT_VERSION}; retrain model {name}")
    if ck.get("family") != hp.family or ck.get("model") != name:
        raise MorphotxInputError(f"{path}: checkpoint of model {ck.get('model')!r} (family {ck.get('family')!r}), "
                                 f"not of models.{name} (family {hp.family!r}); retrain or point at the right file")
    feats = features if features is not None else ck.get("features")
    expect = fingerprint(hp, ts, feats)
    if ck.get("fingerprint") != expect:
        raise MorphotxInputError(f"{path}: checkpoint was trained with other hyperparameters, trainer settings or "
                                 f"input features than models.{name} has now (fingerprint {ck.get('fingerprint')} "
                                 f"≠ {expect}); retrain it (snakemake reruns it when the config changes)")
    return ck, hp, ts
