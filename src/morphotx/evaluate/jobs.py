"""Score one model's embeddings (or the raw-feature baselines) on the compound-held-out split.

One call per (model, seed) writes five tidy Parquet tables that the leaderboard and figures read:

``classification``     one row per (view, level, variant, classifier): macro / weighted F1,
                       accuracy, MoAs with non-zero F1, status and reason (``ok``,
                       ``not_converged``, ``nan_embedding``, ``too_few_classes``, ``failed``).
``per_moa``            per-MoA F1 / precision / recall with support, and why a MoA cannot be
                       predicted (no training compound).
``embedding_metrics``  long table (view, level, metric, value, status, reason): MOAProfiler
                       metrics, held-out votes, copairs mAP, cluster quality of replicates and
                       MoAs (Ha 2025), cross-modal Recall@k.
``curves``             enrichment vs PCC percentile, kNN weighted F1/precision/recall vs k, the
                       curve that chose the classifier's k (validation compounds, or grouped CV).
``map``                copairs per-group mAP with p-values (replicate retrieval per treatment,
                       MoA retrieval per MoA), for distributions.
``predictions``        one row per scored validation or test row and classifier: the row's
                       compound, its MoA and the predicted MoA. The headline's compound-level
                       statistics (:mod:`morphotx.report.compound_bootstrap`) resample compounds from it.

Protocol (the same for every model and baseline):

* **Rows.** Classifiers are fitted on training-compound rows and scored, separately, on the
  validation-compound rows and on the test-compound rows (column ``split``). The validation scores
  choose the configuration of each model in the headline (:mod:`morphotx.report.headline`); the test
  scores of every configuration stay in the exploratory leaderboard. One evaluation job is one
  repetition (``fold`` of the compound split × training ``seed``). Classification and the MOAProfiler metrics use
  **single-MoA** compounds (a multi-MoA compound has no single right class); multi-MoA compounds
  are used by latent-space arithmetic (:mod:`morphotx.evaluate.arithmetic`). DMSO is excluded except as the
  negative set of replicate mAP.
* **Variants** (Saha 2025): ``uncollapsed`` (every replicate; for the ``both`` view, pairs of a
  Cell Painting and an L1000 replicate of the treatment: by default a cyclic matching in which
  every replicate appears, not all m × n Cartesian pairs, see :func:`~.tables.cyclic_pairs`), ``collapsed`` (one row per compound-dose), ``raw+uncollapsed`` and
  ``raw+collapsed``: the embedding and the matching preprocessed raw features, each block
  standardised on training rows and L2-normalised, then concatenated.
* **Classifiers** (:mod:`morphotx.evaluate.classify`) see L2-normalised rows.
* **MOAProfiler metrics** (:mod:`morphotx.evaluate.moaprofiler`) run on the test rows of MoAs with at
  least ``min_compounds_per_moa`` test compounds (the paper drops single-compound MoAs); held-out
  votes use training MLEs and the single-MoA test compounds whose MoA has a training compound
  (Wong 2023; the others are counted as ``n_compounds_unseen_moa``).
* **Batch correction before retrieval** (``batch_correction: tvn``, Lu 2025): replicate mAP,
  percent replicating and MoA mAP are computed on embeddings corrected with the DMSO rows of each
  plate (:func:`morphotx.evaluate.retrieval.typical_variation_normalisation`); collapsed rows are then the
  mean of the corrected replicate rows of the treatment (Lu 2025 corrects per batch, then
  aggregates with the mean). Tables without DMSO replicate rows (pair views, and the collapsed
  tables of views whose uncollapsed table has none) are scored as they are, and a
  ``batch_correction`` row records ``not_applicable`` with the reason. Classification and the
  MOAProfiler metrics do not use it (Wong 2023's own DMSO step is ``moaprofiler_dmso``).
* **Baselines** (``source = raw``): raw Cell Painting and raw L1000 at both levels, early fusion
  (blocks standardised, L2-normalised, concatenated) and late fusion (the average of the Cell
  Painting and L1000 classifiers' probabilities, Haghighi et al. 2022) at the collapsed level,
  where both modalities describe the same treatments. Fusion at the uncollapsed level would need
  the Cartesian pair rows, which are not one biological sample each; it is left out.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pandas as pd
from threadpoolctl import threadpool_limits

from ..io import atomic_outputs, write_parquet
from ..settings import EvaluateSettings
from .embedding_metrics import batch_correct, recall_metrics
from .fusion import Fitted, embedding_late_fusion, late_fusion
from .tables import (
    LEVELS,
    OUTPUTS,
    RawFeatures,
    Table,
    concat_nonempty,
    keyed_frame,
    load_embedding,
    moa_compound_counts,
)
from .tasks import run_tasks, task_list

log = logging.getLogger(__name__)

# the columns every table's rows carry (evaluate_tables keeps them last in the classification table)
_KEY_COLUMNS = ("source", "fold", "seed", "view", "level", "variant")


def evaluate_tables(source: str, seed: int, tables: list[Table], raw: RawFeatures, cfg: EvaluateSettings,
                    recall_pair: tuple[Table, Table] | None = None, fold: int = 0,
                    threads: int = 1, fitted: dict | None = None,
                    validation_map: bool = False) -> dict[str, pd.DataFrame]:
    """Every table's classification (validation and test) and test-set embedding metrics;
    ``raw+collapsed`` variants also get their own MoA mAP (the headline reports the mAP of the
    chosen variant). ``fitted``, when given, receives the class probabilities of the collapsed
    ``cp`` and ``l1000`` tables' classifiers, ``{(view, variant): Fitted}``, for late fusion
    (:func:`~morphotx.evaluate.fusion.fuse_probabilities` averages them instead of fitting the same classifiers again).

    The work is one task per (table, variant, classifier), one per ``raw+collapsed`` variant's mAP
    and one per table's metrics. With ``threads`` > 1 they run in as many forked processes, one
    BLAS thread each, costliest first (rows × columns × a rough per-classifier weight): the
    job's wall time is then bounded by its costliest single fit (the MLP of the largest table)
    rather than by all four classifiers of that table in a row. Every task is seeded on its own,
    so the tables are the same for any ``threads`` (tested). Memory grows with ``threads``: each
    process builds its own matrices.
    :func:`evaluate_model` and :func:`evaluate_raw` keep their own process at one BLAS/OpenMP
    thread as well: the same arithmetic for any ``threads``, and no multi-threaded OpenMP pool
    in a process that forks (GNU OpenMP's is not fork-safe). ``validation_map``: also the MoA mAP
    among validation compounds (for a headline that selects on it).
    """
    tasks, cost = task_list(tables, raw, cfg)
    work = {"tables": tables, "raw": raw, "cfg": cfg, "seed": seed, "corrected": batch_correct(tables, cfg), "cache": {},
            "validation_map": bool(validation_map),
            "moa_compounds": [moa_compound_counts(t.meta) for t in tables],
            "keys": [dict(source=source, fold=fold, seed=seed, view=t.view, level=t.level) for t in tables]}
    results = run_tasks(work, tasks, threads, cost)
    out = {k: [f for r in results for f in r[k]] for k in OUTPUTS}
    if fitted is not None:
        for i, variant, name, proba in (f for r in results for f in r.get("fitted", [])):
            got = fitted.setdefault((tables[i].view, variant), Fitted(tables[i].meta, {}))
            if proba is not None:
                got.probas[name] = proba
    if recall_pair is not None:
        rows = recall_metrics(*recall_pair, cfg.recall_k)
        out["embedding_metrics"].append(keyed_frame(rows, source=source, fold=fold, seed=seed, view="cp+l1000",
                                               level="collapsed", variant="collapsed"))
    frames = {k: pd.concat([f for f in v if len(f)], ignore_index=True) if any(len(f) for f in v) else pd.DataFrame()
              for k, v in out.items()}
    # one frame per classifier: a parameter only a later classifier has (param_C) would land after
    # the key columns; keep the keys last, as in one frame per table and variant
    c = frames["classification"]
    frames["classification"] = c[[k for k in c.columns if k not in _KEY_COLUMNS] +
                                 [k for k in _KEY_COLUMNS if k in c.columns]]
    return frames


def _write(frames: dict[str, pd.DataFrame], outputs: dict[str, str]):
    keys = list(OUTPUTS)
    with atomic_outputs(*[outputs[k] for k in keys]) as tmps:
        for k, tmp in zip(keys, tmps):
            write_parquet(frames[k], tmp)


def evaluate_model(source: str, seed: int, inputs: dict[str, str], cp: str, l1000: str, cp_collapsed: str,
                   l1000_collapsed: str, outputs: dict[str, str],
                   settings: EvaluateSettings = EvaluateSettings(), validation_map: bool = False,
                   views: list[str] | None = None, fold: int = 0, threads: int = 1) -> dict[str, pd.DataFrame]:
    """Score one model's embeddings of one fold and seed: classifiers, MOAProfiler metrics, mAP;
    write the tables of :data:`OUTPUTS`.

    Models with a Cell Painting and an L1000 encoder also get cross-modal Recall@k from their
    collapsed ``cp`` and ``l1000`` views, and the late fusion of those two views
    (:func:`embedding_late_fusion`, view ``late_fusion``), the learned counterpart of the raw
    late-fusion baseline.

    Parameters
    ----------
    source : str
        The model's name (the ``source`` column of every table).
    seed : int
        The training seed of the embeddings; also seeds the classifiers.
    inputs : dict of str to str
        Every named input of the job; the embeddings are those named ``emb_<view>_<level>`` (as
        written by the embedding rule), other keys are ignored.
    cp, l1000 : str
        The fold's preprocessed Cell Painting and L1000 profiles (Parquet): the raw-feature
        variants' rows (``raw+uncollapsed``) and the raw baselines.
    cp_collapsed, l1000_collapsed : str
        The fold's treatment-level (collapsed) raw profiles (``pairs/fold<f>/*_collapsed.parquet``).
    outputs : dict of str to str
        The Parquet file of each table in :data:`OUTPUTS` (``classification``, ``per_moa``,
        ``embedding_metrics``, ``curves``, ``map``, ``predictions``), written together.
    settings : EvaluateSettings, default EvaluateSettings()
        The ``evaluate`` config section (classifiers, variants, k selection, metrics ...; its
        ``views`` and ``collapse`` are the rules').
    validation_map : bool, default False
        Also compute the MoA mAP among validation compounds (the workflow sets it when
        ``headline.metric`` is ``moa_map``, which selects on it).
    views : list of str, optional
        The views to score (the rule: all the model's views, or with ``evaluate.views: primary``
        its primary view and its Cell Painting view); None: all.
    fold : int, default 0
        The workflow's fold index, recorded in every table's rows (the rule runs every fold, one
        call each).
    threads : int, default 1
        Worker processes for the tables' classifiers and metrics (:func:`evaluate_tables`; the
        rule's ``threads``, config ``threads.evaluate``).

    Returns
    -------
    dict of str to pandas.DataFrame
        The tables as written, by name.
    """
    with threadpool_limits(1):  # one BLAS/OpenMP thread in this process too (see evaluate_tables)
        embeddings = {k.removeprefix("emb_"): v for k, v in inputs.items() if k.startswith("emb_")}
        raw = RawFeatures(cp, l1000, cp_collapsed, l1000_collapsed)
        pairs = settings.uncollapsed_pairs
        tables = []
        for key, path in sorted(embeddings.items()):
            view, level = key.rsplit("_", 1)
            if level not in LEVELS:
                raise ValueError(f"embedding key {key!r} is not <view>_<level> with level in {LEVELS}")
            if views is None or view in views:
                tables.append(load_embedding(path, view, level, pairs))
        recall_pair = None
        if "cp_collapsed" in embeddings and "l1000_collapsed" in embeddings:
            recall_pair = (load_embedding(embeddings["cp_collapsed"], "cp", "collapsed"),
                           load_embedding(embeddings["l1000_collapsed"], "l1000", "collapsed"))
        fitted = {}
        frames = evaluate_tables(source, seed, tables, raw, settings, recall_pair, fold, threads, fitted,
                                 validation_map)
        if recall_pair is not None:
            preds = [frames["predictions"]]
            lf, lf_per = embedding_late_fusion(source, *recall_pair, raw, seed, settings, fold, fitted, preds)
            frames["classification"] = pd.concat([frames["classification"], lf], ignore_index=True)
            frames["per_moa"] = pd.concat([frames["per_moa"], lf_per], ignore_index=True)
            frames["predictions"] = concat_nonempty(preds)
        _write(frames, outputs)
        return frames


def evaluate_raw(seed: int, cp: str, l1000: str, cp_collapsed: str, l1000_collapsed: str, outputs: dict[str, str],
                 settings: EvaluateSettings = EvaluateSettings(), validation_map: bool = False, fold: int = 0,
                 threads: int = 1) -> dict[str, pd.DataFrame]:
    """The raw-feature baselines of one fold, scored exactly like the embeddings (``source = raw``):
    Cell Painting, L1000 (each uncollapsed and collapsed), their early fusion (``both``,
    collapsed) and late fusion.

    Parameters
    ----------
    seed : int
        Seeds the classifiers (the rule's seed wildcard: the same seeds as the models').
    cp, l1000, cp_collapsed, l1000_collapsed, outputs, validation_map, fold, threads
        As in :func:`evaluate_model`.
    settings : EvaluateSettings, default EvaluateSettings()
        As in :func:`evaluate_model`; its ``raw+`` variants are left out (these are raw features
        already).

    Returns
    -------
    dict of str to pandas.DataFrame
        The tables as written, by name.
    """
    with threadpool_limits(1):  # one BLAS/OpenMP thread in this process too (see evaluate_tables)
        raw = RawFeatures(cp, l1000, cp_collapsed, l1000_collapsed)
        tables = [raw.table(v, l) for v in ("cp", "l1000") for l in LEVELS] + [raw.table("both", "collapsed")]
        plain = replace(settings, variants=[v for v in settings.variants if not v.startswith("raw+")])
        fitted = {}
        frames = evaluate_tables("raw", seed, tables, raw, plain, fold=fold, threads=threads, fitted=fitted,
                                 validation_map=validation_map)
        preds = [frames["predictions"]]
        lf, lf_per = late_fusion(raw, seed, settings, fold, fitted, preds)
        frames["classification"] = pd.concat([frames["classification"], lf], ignore_index=True)
        frames["per_moa"] = pd.concat([frames["per_moa"], lf_per], ignore_index=True)
        frames["predictions"] = concat_nonempty(preds)
        _write(frames, outputs)
        return frames
