"""The evaluation's work units and the forked worker pool that runs them.

:func:`evaluate_tables <morphotx.evaluate.jobs.evaluate_tables>` splits its work into tasks
(:func:`task_list`): one per (table, variant, classifier), one per ``raw+collapsed`` variant's MoA
mAP and one per table's metrics. :func:`run_tasks` runs them in this process or in forked worker
processes, which inherit the job's tables (:data:`_WORK`) instead of receiving a pickled copy.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from ..settings import EvaluateSettings
from .classify import classify_table
from .embedding_metrics import cluster_metrics, map_metrics, moaprofiler_metrics, moaprofiler_table
from .tables import OUTPUTS, RawFeatures, Table, keyed_frame, variant_matrix

log = logging.getLogger(__name__)


def _variant_matrix(i: int, variant: str) -> np.ndarray:
    """Table ``i``'s matrix in ``variant``, kept for the next task of this process: the tasks of
    one (table, variant) follow one another when they run in order, so it is built once, not once
    per classifier (a LINCS-size ``raw+uncollapsed`` matrix takes seconds). Read-only for its users.
    """
    cache = _WORK["cache"]
    if (i, variant) not in cache:
        cache.clear()  # one matrix at a time: memory as when each task built its own
        t = _WORK["tables"][i]
        X = variant_matrix(t, variant, _WORK["raw"])
        if X is not t.X:  # a raw+ matrix, shared by the next tasks: an in-place change is an error
            X.flags.writeable = False
        cache[(i, variant)] = X
    return cache[(i, variant)]


def _classify_task(i: int, variant: str, classifier: str) -> dict[str, list]:
    """One ``classifier`` on table ``i`` of the shared work (:data:`_WORK`) in one ``variant``."""
    w = _WORK
    t, cfg, keys = w["tables"][i], w["cfg"], w["keys"][i]
    out = {k: [] for k in OUTPUTS}
    X = _variant_matrix(i, variant)
    preds: list[pd.DataFrame] = []
    rows, per, probas, cv = classify_table(t.meta, X, [classifier], w["seed"], cfg, w["moa_compounds"][i], preds)
    out["predictions"] += [p.assign(**keys, variant=variant) for p in preds]
    if t.level == "collapsed" and t.view in ("cp", "l1000"):  # the modality classifiers late fusion averages
        out["fitted"] = [(i, variant, classifier, probas.get(classifier))]
    out["curves"] += [c.assign(**keys, variant=variant) for c in cv]
    out["classification"].append(keyed_frame(rows, **keys, variant=variant))
    out["per_moa"] += [p.assign(**keys, variant=variant) for p in per]
    log.info("%s fold %d seed %d %s %s %s (validation | test): %s", keys["source"], keys["fold"], keys["seed"], t.view,
             variant, classifier, ", ".join(f"{r.get('macro_f1', float('nan')):.3f}" for r in rows))
    return out


def _variant_map_task(i: int, variant: str) -> dict[str, list]:
    """The MoA mAP of table ``i``'s ``raw+collapsed`` variant (the headline reports the mAP of the
    chosen variant).
    """
    w = _WORK
    t, cfg, keys = w["tables"][i], w["cfg"], w["keys"][i]
    X = _variant_matrix(i, variant)
    vrows, _ = map_metrics(Table(t.view, t.level, t.meta, X), cfg, w["seed"], w["validation_map"])
    if cfg.batch_correction != "none":
        vrows.append({"metric": "batch_correction", "value": 0.0, "status": "not_applicable",
                      "reason": "the raw+collapsed variant is scored as it is (tvn corrects the "
                                "embedding's own rows only)"})
    return {**{k: [] for k in OUTPUTS}, "embedding_metrics": [keyed_frame(vrows, **keys, variant=variant)]}


def _metrics_task(i: int) -> dict[str, list]:
    """MOAProfiler metrics, mAP (batch-corrected table) and cluster quality of table ``i``."""
    w = _WORK
    w["cache"].clear()
    t, cfg, keys = w["tables"][i], w["cfg"], w["keys"][i]
    out = {k: [] for k in OUTPUTS}
    mp_t, why = moaprofiler_table(t, cfg)
    rows, curves = (moaprofiler_metrics(mp_t, cfg) if mp_t is not None else
                    ([{"metric": "moaprofiler", "value": np.nan, "status": "not_applicable", "reason": why}], []))
    ct, bc = w["corrected"][(t.view, t.level)]
    mrows, maps = map_metrics(ct, cfg, w["seed"], w["validation_map"])
    if bc:
        mrows.append({"metric": "batch_correction", **bc})
    crows = cluster_metrics(t, cfg)
    out["embedding_metrics"].append(keyed_frame(rows + mrows + crows, **keys, variant=t.level))
    out["curves"] += [c.assign(**keys) for c in curves]
    out["map"] += [m.assign(**keys) for m in maps]
    return out


# the tables, raw features and settings of the evaluate_tables call in progress: forked worker
# processes inherit them instead of receiving a pickled copy of gigabytes per task
_WORK: dict = {}

# rough cost of each task per matrix cell, relative to the MLP, from one profiled evaluation fold
# (docs/benchmarks.md); they only order the tasks (a classifier not named here counts as the MLP)
_TASK_COST = {"mlp": 1.0, "logreg": 0.5, "gmm": 0.1, "knn": 0.1, "variant_map": 0.05, "metrics": 0.5}


def _run_task(task: tuple) -> dict[str, list]:
    """One task of :func:`evaluate_tables`; its wall and CPU seconds go to the log."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = _TASKS[task[0]](*task[1:])
    t = _WORK["tables"][task[1]]
    log.info("task %s %s %s%s: %.1f s, %.1f CPU-s", task[0], t.view, t.level, "".join(f" {a}" for a in task[2:]),
             time.perf_counter() - t0, time.process_time() - c0)
    return out


_TASKS = {"classify": _classify_task, "variant_map": _variant_map_task, "metrics": _metrics_task}


def _worker_init() -> None:
    from ..smk import cap_threads

    cap_threads(1)


def _run_tasks(tasks: list[tuple], threads: int, cost: list[float]) -> list[dict[str, list]]:
    """Each task's result, in the order of ``tasks``: in this process when ``threads`` is 1, else
    in ``threads`` forked worker processes (one BLAS thread each), the costliest tasks first.
    """
    if threads <= 1 or len(tasks) <= 1:
        return [_run_task(t) for t in tasks]
    import multiprocessing

    order = sorted(range(len(tasks)), key=lambda k: -cost[k])
    with multiprocessing.get_context("fork").Pool(min(threads, len(tasks)), initializer=_worker_init) as pool:
        done = dict(zip(order, pool.map(_run_task, [tasks[k] for k in order], chunksize=1)))
    return [done[k] for k in range(len(tasks))]



def task_list(tables: list[Table], raw: RawFeatures, cfg: EvaluateSettings) -> tuple[list[tuple], list[float]]:
    """The tasks of one evaluation job and their rough costs (rows × columns × a per-task weight).

    Parameters
    ----------
    tables : list of Table
        The job's tables.
    raw : RawFeatures
        The raw profiles the ``raw+`` variants append (their width counts in the cost).
    cfg : EvaluateSettings
        The evaluation settings (``variants``, ``classifiers``).

    Returns
    -------
    tuple
        The tasks (``("classify", i, variant, classifier)``, ``("variant_map", i, variant)``,
        ``("metrics", i)``, with ``i`` the table's index) and their costs, in the same order.
    """
    tasks, cost = [], []
    for i, t in enumerate(tables):
        for variant in [v for v in cfg.variants if v.split("+")[-1] == t.level]:
            size = len(t.meta) * (t.X.shape[1] + (raw.width(t.view) if variant.startswith("raw+") else 0))
            for name in cfg.classifiers:
                tasks.append(("classify", i, variant, name))
                cost.append(size * _TASK_COST.get(name, 1.0))
            if variant == "raw+collapsed":
                tasks.append(("variant_map", i, variant))
                cost.append(size * _TASK_COST["variant_map"])
        tasks.append(("metrics", i))
        cost.append(len(t.meta) * t.X.shape[1] * _TASK_COST["metrics"])
    return tasks, cost


def run_tasks(work: dict, tasks: list[tuple], threads: int, cost: list[float]) -> list[dict[str, list]]:
    """Each task's result, in the order of ``tasks``, with ``work`` (the job's tables, raw
    features, settings, seed, batch-corrected tables and keys) shared by every task as
    :data:`_WORK` while they run.

    Parameters
    ----------
    work : dict
        The job's shared state (keys ``tables``, ``raw``, ``cfg``, ``seed``, ``corrected``,
        ``cache``, ``moa_compounds``, ``keys``).
    tasks : list of tuple
        The tasks of :func:`task_list`.
    threads : int
        Worker processes; 1 runs every task in this process.
    cost : list of float
        The tasks' costs: the costliest start first.

    Returns
    -------
    list of dict
        Each task's frames by output table (and ``fitted`` for the classifiers late fusion reuses).
    """
    global _WORK
    _WORK = work
    try:
        return _run_tasks(tasks, threads, cost)
    finally:
        _WORK = {}
