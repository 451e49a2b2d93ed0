"""Late fusion: one classifier per modality, their class probabilities averaged.

The raw late-fusion baseline (:func:`late_fusion`, Haghighi et al. 2022) and its learned
counterpart for two-encoder models (:func:`embedding_late_fusion`) share
:func:`fuse_probabilities`, which reuses the modality classifiers an evaluation job already fitted
on the same rows (:class:`Fitted`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import schema as S
from ..settings import EvaluateSettings
from .classify import classify_table, per_moa_notes, prediction_frame
from .scores import score_predictions
from .tables import (
    EVAL_SPLITS,
    ZERO_SHOT_REASON,
    RawFeatures,
    Table,
    is_zero_shot,
    keyed_frame,
    moa_compound_counts,
    moa_labels,
    single_moa_rows,
    variant_matrix,
)


@dataclass
class Fitted:
    """The class probabilities of one table's classifiers as :func:`classify_table` returns them
    (``{classifier: {split: (classes, proba)}}``) and the metadata of the rows they were fitted and
    scored on.
    """

    meta: pd.DataFrame
    probas: dict


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two metadata tables list the same treatments in the same order with the same
    compound, split, control flag and MoA labels: :func:`classify_table` then fits the same
    classifiers on both and scores the same rows.
    """
    if len(a) != len(b):
        return False
    same = all(np.array_equal(a[c].astype(str).to_numpy(), b[c].astype(str).to_numpy())
               for c in (S.TREATMENT, S.PERT, S.SPLIT))
    return same and np.array_equal(single_moa_rows(a), single_moa_rows(b)) and np.array_equal(moa_labels(a), moa_labels(b))


def fuse_probabilities(meta: pd.DataFrame, X_cp: np.ndarray, X_l1000: np.ndarray, seed: int, cfg: EvaluateSettings,
                       moa_cpds: pd.Series | None = None,
                       fitted: dict[str, Fitted | None] | None = None,
                       predictions: list | None = None) -> tuple[list[dict], list[pd.DataFrame]]:
    """Late fusion of one classifier per modality: each classifier is fitted on the training rows
    of ``X_cp`` and of ``X_l1000`` (rows aligned with ``meta``: treatments measured in both), and
    a validation or test row's MoA is the argmax of the two class-probability tables' mean.

    ``fitted`` (``{"cp": Fitted, "l1000": Fitted}``, from :func:`evaluate_tables`): a modality's
    classifiers already fitted and scored on exactly these rows (:func:`_same_rows`; the same
    matrix is the caller's to guarantee) are not fitted again; their probabilities are averaged.
    Fitting is deterministic, so the fusion is the same either way (tested). Raw late fusion then
    fits nothing of its own; a two-encoder model's fusion fits only its ``l1000`` side when
    ``evaluate.views`` is ``primary`` (its ``l1000`` view is not scored on its own).

    ``predictions``, when given, receives the fused predictions (:func:`prediction_frame`).

    Returns
    -------
    tuple
        The classification rows (one per classifier and split; ``dim`` is the two inputs' width)
        and the test per-MoA tables.
    """
    fitted = fitted or {}
    got = {}
    for m, X in (("cp", X_cp), ("l1000", X_l1000)):
        f = fitted.get(m)
        got[m] = (f.probas if f is not None and _same_rows(f.meta, meta)
                  else classify_table(meta, X, cfg.classifiers, seed, cfg)[2])
    zero_shot, p_cp, p_l1 = is_zero_shot(meta), got["cp"], got["l1000"]
    y = moa_labels(meta)
    use = single_moa_rows(meta)
    split = meta[S.SPLIT].to_numpy()
    tr = use & (split == "train")
    moa_cpds = moa_compound_counts(meta) if moa_cpds is None else moa_cpds
    rows, per = [], []
    for name in cfg.classifiers:
        base = {"classifier": name, "n_train": int(tr.sum()), "dim": int(X_cp.shape[1] + X_l1000.shape[1])}
        for s in EVAL_SPLITS:
            row = {**base, "split": s, "n_scored": int((use & (split == s)).sum())}
            a, b = p_cp.get(name, {}).get(s), p_l1.get(name, {}).get(s)
            if a is None or b is None:
                rows.append({**row, "status": "not_applicable", "reason": ZERO_SHOT_REASON} if zero_shot else
                            {**row, "status": "failed", "reason": "a per-modality classifier gave no probabilities"})
                continue
            if list(a[0]) != list(b[0]):
                rows.append({**row, "status": "failed", "reason": "modalities saw different classes"})
                continue
            pred = a[0][np.argmax((a[1] + b[1]) / 2, axis=1)]
            summary, pm = score_predictions(y[use & (split == s)], pred, y[tr])
            if predictions is not None:
                predictions.append(prediction_frame(meta[use & (split == s)], y[use & (split == s)], pred, name, s))
            rows.append({**row, "status": "ok", "reason": "", **summary})
            if s == "test":
                per.append(per_moa_notes(pm, moa_cpds).assign(classifier=name))
    return rows, per


def late_fusion(raw: RawFeatures, seed: int, cfg: EvaluateSettings, fold: int = 0,
                fitted: dict | None = None, predictions: list | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Average the Cell Painting and L1000 classifiers' class probabilities (collapsed level),
    on the treatments measured in both modalities; validation and test scored alike. ``fitted``:
    :func:`evaluate_tables`'s probabilities of the raw collapsed tables, used where their rows are
    the fusion's (:func:`fuse_probabilities`). ``predictions``, when given, receives the fused
    predictions with their keys.
    """
    meta = raw.paired_meta()
    fitted = fitted or {}
    preds: list[pd.DataFrame] = []
    rows, per = fuse_probabilities(meta, raw.lookup("cp_collapsed", meta[S.TREATMENT]),
                                   raw.lookup("l1000_collapsed", meta[S.TREATMENT]), seed, cfg,
                                   fitted={m: fitted.get((m, "collapsed")) for m in ("cp", "l1000")}, predictions=preds)
    keys = dict(source="raw", fold=fold, seed=seed, view="late_fusion", level="collapsed", variant="collapsed")
    if predictions is not None:
        predictions += [p.assign(**keys) for p in preds]
    return keyed_frame(rows, **keys), (pd.concat(per, ignore_index=True).assign(**keys) if per else pd.DataFrame())


def embedding_late_fusion(source: str, cp: Table, l1000: Table, raw: RawFeatures, seed: int, cfg: EvaluateSettings,
                          fold: int = 0, fitted: dict | None = None,
                          predictions: list | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Late fusion of a two-encoder model's collapsed ``cp`` and ``l1000`` embeddings, exactly as
    the raw late-fusion baseline fuses the raw profiles (:func:`fuse_probabilities`, on the same
    treatments: those measured in both modalities), for each collapsed variant in
    ``cfg.variants`` (``raw+collapsed``: each modality's embedding beside its own raw profile).
    View ``late_fusion``: the headline compares it with raw late fusion like any configuration of
    the model, chosen on validation compounds. ``fitted``: :func:`evaluate_tables`'s probabilities
    of the model's collapsed ``cp`` and ``l1000`` tables, used where their rows are the fusion's.
    ``predictions``, when given, receives the fused predictions with their keys.
    """
    fitted = fitted or {}
    meta = raw.paired_meta()
    ids = meta[S.TREATMENT].astype(str)
    idx = {m: pd.Index(t.meta[S.TREATMENT].astype(str)).get_indexer(ids) for m, t in (("cp", cp), ("l1000", l1000))}
    keep = (idx["cp"] >= 0) & (idx["l1000"] >= 0)
    meta = meta[keep].reset_index(drop=True)
    tables = {m: Table(m, "collapsed", meta, t.X[idx[m][keep]]) for m, t in (("cp", cp), ("l1000", l1000))}
    moa_cpds = moa_compound_counts(meta)
    frames, pers = [], []
    for variant in [v for v in cfg.variants if v.split("+")[-1] == "collapsed"]:
        X = {m: variant_matrix(t, variant, raw) for m, t in tables.items()}
        preds: list[pd.DataFrame] = []
        rows, per = fuse_probabilities(meta, X["cp"], X["l1000"], seed, cfg, moa_cpds,
                                       fitted={m: fitted.get((m, variant)) for m in ("cp", "l1000")}, predictions=preds)
        keys = dict(source=source, fold=fold, seed=seed, view="late_fusion", level="collapsed", variant=variant)
        if predictions is not None:
            predictions += [p.assign(**keys) for p in preds]
        frames.append(keyed_frame(rows, **keys))
        pers += [p.assign(**keys) for p in per]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(),
            pd.concat(pers, ignore_index=True) if pers else pd.DataFrame())
