"""The headline: whether a learned embedding beats the raw profiles on compounds it has never seen.

Protocol (no split's test compounds decide anything about that split; docs/evaluation.md):

* **Splits.** The ``fold`` of the classification rows is a split: a fold of one of
  ``split.repeats`` re-drawn partitions (:func:`morphotx.prepare.split.fold_of`). Training seeds are
  averaged within a split, never counted as repetitions.
* **Entries** (:func:`~.selection.entries`). One per raw view, ``raw, chosen on validation`` among every raw
  view (the baseline of two-assay entries), one per model (all of its views; input ``both`` when
  they use both assays), one "<model> (Cell Painting only)" per model with cp and other views,
  and per input the primary comparison ``learned, chosen on validation (<input>)`` choosing among
  every learned configuration of that input.
* **Nested selection** (:func:`~.selection.select`). In every split, the configuration ``(source, view,
  level, variant, classifier)`` with the best validation metric of that split alone; ties by
  configuration string. An entry's test value is the mean over splits of its own choices'.
* **Intervals.** Mean and CI over the splits by the corrected repeated k-fold t (Nadeau & Bengio
  2003; Bouckaert & Frank 2004), or the plain t (``ci="t"``). Δ to the raw baseline of the same
  input, paired by split, with its p-value and minimum detectable effect (:func:`~.statistics.fold_mde`); the
  paired compound bootstrap of :mod:`morphotx.report.compound_bootstrap` beside it (``delta_boot_*``; primary
  only with ``delta="compound_bootstrap"``).
* **Retrieval (``metric="moa_map"``, the zero-shot protocol).** No classifier: a configuration is
  ``(view, level, variant, "retrieval")``, chosen on the validation compounds' copairs MoA mAP.
* **Multiplicity.** ``delta_p_holm_best``: Holm over the primary comparisons (one per input);
  ``delta_p_holm``: Holm over every other learned entry (exploratory).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..configcheck import resolve_headline_metric
from ..io import atomic_outputs, read_tables, write_parquet
from ..settings import HeadlineSettings, SplitSettings
from . import compound_bootstrap
from .headline_text import compact, is_well_holdout, markdown, recipe_text, repetitions_text, summary_lines
from .selection import (
    BASELINE_OF_INPUT,
    CONFIG,
    PROTOCOLS,
    RAW_CHOSEN,
    Entry,
    choice_counts,
    entries,
    entry_rows,
    recipe_choices,
    retrieval_rows,
    select,
)
from .statistics import CI_METHODS, fold_mde, holm, interval, paired_p

log = logging.getLogger(__name__)

REPORTED = ["macro_f1", "accuracy", "n_moas_nonzero_f1", "moa_map"]
COLLAPSED = {"uncollapsed": "collapsed", "raw+uncollapsed": "raw+collapsed"}
KIND_ORDER = {"baseline": 0, "chosen": 1, "model": 2, "cp_only": 2}
DELTA_METHODS = ("fold_t", "compound_bootstrap", "compound_split")


def _chosen_rows(rows: pd.DataFrame, choices: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``rows`` (any split) of each fold's chosen (source, configuration)."""
    keys = ["fold", "source", *CONFIG]
    return rows.merge(choices[keys], on=keys, how="inner")


def _moa_map(embedding: pd.DataFrame, choices: pd.DataFrame) -> pd.Series:
    """Per fold, the test MoA mAP of the collapsed form of each fold's chosen variant (mean over seeds)."""
    if embedding.empty or "variant" not in embedding.columns or choices.empty:
        return pd.Series(dtype=float)
    e = embedding[(embedding["metric"] == "moa_map") & (embedding["status"] == "ok") & embedding["variant"].notna()]
    want = choices.assign(variant=choices["variant"].map(lambda v: COLLAPSED.get(v, v)))[["fold", "source", "view",
                                                                                            "variant"]]
    e = e.merge(want, on=["fold", "source", "view", "variant"], how="inner")
    return e.groupby("fold")["value"].mean()


def _ratio(test: pd.DataFrame) -> float:
    if not {"n_scored", "n_train"} <= set(test.columns) or test.empty:
        return np.nan
    with np.errstate(all="ignore"):
        r = test["n_scored"].astype(float) / test["n_train"].astype(float)
    r = r[np.isfinite(r)]
    return float(r.mean()) if len(r) else np.nan


def reported_values(rows: pd.DataFrame, choices: pd.DataFrame, embedding: pd.DataFrame,
                    metrics: list[str]) -> tuple[pd.DataFrame, float]:
    """Per-split test values of each split's chosen configuration and their ``n_test/n_train``.

    Parameters
    ----------
    rows : pandas.DataFrame
        Classification rows of the entry.
    choices : pandas.DataFrame
        :func:`select`'s choices (one per fold).
    embedding : pandas.DataFrame
        The concatenated ``embedding_metrics`` (for ``moa_map``).
    metrics : list of str
        Classification metrics to report; ``moa_map`` comes from ``embedding``.

    Returns
    -------
    tuple
        A frame indexed by ``fold`` with one column per metric (the mean over the fold's training
        seeds), and the mean of ``n_scored / n_train`` over the chosen test rows.
    """
    test = _chosen_rows(rows[rows["split"] == "test"], choices)
    cls = [m for m in metrics if m != "moa_map"]
    present = [m for m in cls if m in test.columns]
    per_fold = test.groupby("fold")[present].mean().reindex(index=choices["fold"].tolist(), columns=cls)
    if "moa_map" in metrics:
        per_fold["moa_map"] = _moa_map(embedding, choices).reindex(per_fold.index)
    return per_fold[metrics], _ratio(test)


def _status(rows: pd.DataFrame, choices: pd.DataFrame, metric: str) -> str:
    """``ok``, or per problem ``"<status> in k/n splits: <first reason>"`` over the splits of the
    entry (the chosen configuration's rows, either split).
    """
    folds = sorted(rows["fold"].unique())
    mine = _chosen_rows(rows, choices)
    problems: dict[str, list] = {}
    for fold in folds:
        r = mine[mine["fold"] == fold]
        bad = r[r["status"] != "ok"] if "status" in r.columns else r.iloc[:0]
        if r.empty:
            problems.setdefault("no choice", []).append("")
        elif len(bad):
            reason = bad["reason"].iloc[0] if "reason" in bad.columns else ""
            problems.setdefault(str(bad["status"].iloc[0]), []).append(reason)
        elif not (r["split"] == "test").any():
            problems.setdefault("no test row", []).append("")
        elif r[metric].isna().any():
            problems.setdefault("no score", []).append("")
    parts = []
    for st, reasons in problems.items():
        first = next((str(x) for x in reasons if isinstance(x, str) and x), "")
        parts.append(f"{st} in {len(reasons)}/{len(folds)} splits" + (f": {first}" if first else ""))
    return "; ".join(parts) if parts else "ok"


@dataclass
class EntryResult:
    """What :func:`headline_frame` keeps of one entry: its table row, its per-split test values
    of the metric, and its chosen test predictions as ``(fold, Counts)`` pairs
    (:class:`morphotx.report.compound_bootstrap.Counts`, one per split and training seed; empty without
    predictions).
    """

    row: dict
    per_fold: pd.Series
    counts: dict
    choices: pd.DataFrame | None = None


def _entry_result(entry: Entry, classification: pd.DataFrame, embedding: pd.DataFrame, metric: str,
                  reported: list[str], ci: str, confidence: float, predictions: pd.DataFrame | None,
                  axes: tuple | None) -> EntryResult:
    rows = entry_rows(classification, entry)
    res = {"entry": entry.name, "kind": entry.kind, "source": entry.source, "input": entry.input}
    notes = []
    choices = select(rows, metric, with_source=len(entry.sources) > 1 or entry.kind == "chosen")
    if choices.empty:
        bad = rows[rows["split"] == "validation"]
        reason = str(bad["reason"].dropna().iloc[0]) if "reason" in bad.columns and bad["reason"].notna().any() else ""
        res.update(status="no validation score" + (f": {reason}" if reason else ""), note=[])
        return EntryResult(res, pd.Series(dtype=float), {})
    top = choices.iloc[choices["configuration"].map(choices["configuration"].value_counts()).to_numpy().argmax()]
    res.update({k: top[k] for k in CONFIG}, configuration=str(top["configuration"]),
               choices=choice_counts(choices), n_validation_repetitions=len(choices),
               **{f"validation_{metric}": float(choices["score"].mean())})
    n_folds = rows["fold"].nunique()
    if len(choices) < n_folds:
        notes.append(f"no configuration with a validation score in {n_folds - len(choices)} of {n_folds} splits")
    per_fold, ratio = reported_values(rows, choices, embedding, reported)
    res["n_test_over_n_train"] = ratio
    for m in reported:
        res[m], res[f"{m}_ci_low"], res[f"{m}_ci_high"] = interval(per_fold[m], ratio, ci, confidence)
    res["n_repetitions"] = int(per_fold[metric].notna().sum())
    if res["n_repetitions"] < 2:
        notes.append(f"{res['n_repetitions']} test split(s): no CI")
    if (choices["view"] == "late_fusion").all():
        notes.append("late fusion has no embedding: no MoA mAP")
    elif "moa_map" in reported and per_fold["moa_map"].isna().all():
        notes.append("no MoA mAP for this configuration")
    res["status"], res["note"] = _status(rows, choices, metric), notes
    counts: dict = {}
    if predictions is not None and axes is not None and not predictions.empty:
        chosen = _chosen_rows(predictions[predictions["split"] == "test"], choices)
        for (fold, _), g in chosen.groupby(["fold", "seed"], sort=True):
            counts.setdefault(fold, []).append(compound_bootstrap.counts(g, *axes))
    chosen_test = per_fold[metric].rename(f"test_{metric}").reset_index()
    return EntryResult(res, per_fold[metric], counts, choices.merge(chosen_test, on="fold", how="left"))


# ---------------------------------------------------------------------------------------------
# paired differences
# ---------------------------------------------------------------------------------------------
def _add_delta(res: dict, base: EntryResult | None, mine: EntryResult, metric: str, ci: str, confidence: float,
               weights: np.ndarray | None, power: float, delta: str = "compound_split") -> None:
    """Δ to the baseline by split (corrected t) and by compound (paired bootstrap); the primary
    columns ``delta_ci_*``, ``delta_p`` and ``delta_mde`` are ``delta``'s (the bootstrap's only
    when it ran).
    """
    nan = np.nan
    res.update(baseline=None, delta_vs_baseline=nan, delta_ci_low=nan, delta_ci_high=nan, delta_p=nan,
               delta_mde=nan, delta_method=None, n_delta_repetitions=0, ratio_vs_baseline=nan,
               delta_fold_ci_low=nan, delta_fold_ci_high=nan, delta_fold_p=nan, delta_fold_mde=nan,
               delta_boot_ci_low=nan, delta_boot_ci_high=nan, delta_boot_p=nan, delta_boot_mde=nan,
               delta_cs_ci_low=nan, delta_cs_ci_high=nan, delta_cs_p=nan, delta_cs_mde=nan, delta_tau2=nan)
    if base is None:
        return
    res["baseline"] = base.row["entry"]
    d = (mine.per_fold - base.per_fold).dropna()  # paired by split
    ratio = res.get("n_test_over_n_train", nan)
    mean, res["delta_fold_ci_low"], res["delta_fold_ci_high"] = interval(d, ratio, ci, confidence)
    res["delta_fold_p"] = paired_p(d, ratio, ci)
    res["delta_fold_mde"] = fold_mde(d, ratio, ci, confidence, power)
    res["n_delta_repetitions"] = int(len(d))
    denom = base.row.get(metric, nan)
    if pd.notna(denom) and denom != 0:
        res["ratio_vs_baseline"] = res.get(metric, nan) / denom
    res["delta_vs_baseline"] = mean
    res.update(delta_ci_low=res["delta_fold_ci_low"], delta_ci_high=res["delta_fold_ci_high"],
               delta_p=res["delta_fold_p"], delta_mde=res["delta_fold_mde"], delta_method="fold_t")
    common = set(d.index)  # the splits both sides have, as the fold-level difference pairs them
    mine_c, base_c = ({f: c for f, c in r.counts.items() if f in common} for r in (mine, base))
    if weights is not None and mine_c and base_c:
        b = compound_bootstrap.paired_bootstrap(mine_c, base_c, weights, metric, confidence, power, ratio)
        res.update(delta_boot_ci_low=b.low, delta_boot_ci_high=b.high, delta_boot_p=b.p, delta_boot_mde=b.mde,
                   delta_cs_ci_low=b.cs_low, delta_cs_ci_high=b.cs_high, delta_cs_p=b.cs_p, delta_cs_mde=b.cs_mde,
                   delta_tau2=b.tau2)
        if np.isfinite(b.low) and delta == "compound_bootstrap":
            res.update(delta_vs_baseline=b.delta, delta_ci_low=b.low, delta_ci_high=b.high, delta_p=b.p,
                       delta_mde=b.mde, delta_method="compound_bootstrap")
        if np.isfinite(b.cs_low) and delta == "compound_split":
            res.update(delta_vs_baseline=b.delta, delta_ci_low=b.cs_low, delta_ci_high=b.cs_high, delta_p=b.cs_p,
                       delta_mde=b.cs_mde, delta_method="compound_split")
    if len(d) < 2 and res["delta_method"] == "fold_t":
        res["note"].append(f"{len(d)} paired split(s) with {base.row['entry']}: no CI for the difference")


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------
def _columns(metric: str, reported: list[str]) -> list[str]:
    return (["entry", "kind", "source", "input", *CONFIG, "configuration", "choices", "n_repetitions",
             "n_validation_repetitions", f"validation_{metric}"]
            + [f"{m}{s}" for m in reported for s in ("", "_ci_low", "_ci_high")]
            + ["n_test_over_n_train", "baseline", "delta_vs_baseline", "delta_ci_low", "delta_ci_high",
               "delta_p", "delta_mde", "delta_method", "delta_p_holm", "n_delta_repetitions", "ratio_vs_baseline",
               "delta_fold_ci_low", "delta_fold_ci_high", "delta_fold_p", "delta_fold_mde",
               "delta_boot_ci_low", "delta_boot_ci_high", "delta_boot_p", "delta_boot_mde",
               "delta_cs_ci_low", "delta_cs_ci_high", "delta_cs_p", "delta_cs_mde", "delta_tau2",
               "best_of_input", "delta_p_holm_best", "ci_method", "confidence", "status", "note"])


def _order(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Baselines first (in entry order), then the entries chosen on validation (input order),
    then the rest by test ``metric`` descending (display only).
    """
    table = table.assign(_k=table["kind"].map(KIND_ORDER), _pos=range(len(table)),
                         _m=np.where(table["kind"].isin(["baseline", "chosen"]), 0.0, -table[metric].astype(float)))
    table = table.sort_values(["_k", "_m", "_pos"], na_position="last")
    return table.drop(columns=["_k", "_m", "_pos"]).reset_index(drop=True)


def _bootstrap_axes(predictions: pd.DataFrame | None, metric: str, draws: int, seed: int,
                    resample: str = "rescaled"):
    """The compound and class axes and the stratified weights of the compound bootstrap, or
    ``(None, None)`` when there are no test predictions or the metric is not one of
    :data:`morphotx.report.compound_bootstrap.METRICS`.
    """
    if predictions is None or predictions.empty or metric not in compound_bootstrap.METRICS or draws < 2:
        return None, None
    test = predictions[predictions["split"] == "test"]
    if test.empty:
        return None, None
    moa = test.groupby("compound")["moa"].first().sort_index()
    classes = pd.Index(sorted(set(test["moa"].astype(str)) | set(test["predicted"].astype(str))))
    return (pd.Index(moa.index.astype(str)), classes), compound_bootstrap.stratified_weights(moa, draws, seed, resample)


def headline_frame(classification: pd.DataFrame, embedding_metrics: pd.DataFrame, metric: str = "macro_f1",
                   ci: str = "corrected_t", confidence: float = 0.95, split_mode: str = "compound",
                   predictions: pd.DataFrame | None = None, bootstrap: int = 2000, seed: int = 0,
                   power: float = 0.8, delta: str = "compound_split", resample: str = "rescaled") -> pd.DataFrame:
    """The headline table: one row per model, Cell-Painting-only model view, raw baseline, and
    per input the learned entry chosen on validation (:func:`headline_tables`' first table).
    """
    return headline_tables(classification, embedding_metrics, metric, ci, confidence, split_mode, predictions,
                           bootstrap, seed, power, delta, resample)[0]


def headline_tables(classification: pd.DataFrame, embedding_metrics: pd.DataFrame, metric: str = "macro_f1",
                    ci: str = "corrected_t", confidence: float = 0.95, split_mode: str = "compound",
                    predictions: pd.DataFrame | None = None, bootstrap: int = 2000, seed: int = 0,
                    power: float = 0.8, delta: str = "compound_split",
                    resample: str = "rescaled") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The headline table and every split's choices.

    Parameters
    ----------
    classification : pandas.DataFrame
        Every evaluation job's classification rows (``source, fold, seed, split, view, level,
        variant, classifier``, metrics, ``status``, ``reason``, ``n_train``, ``n_scored``).
    embedding_metrics : pandas.DataFrame
        Every evaluation job's embedding metrics (long); ``moa_map`` rows with status ok and a
        variant are used.
    metric : str
        Selection metric (validation) and the metric of the paired difference and ratio (test).
    ci : {"corrected_t", "t"}
        Interval method over splits, see :func:`interval`.
    confidence : float
        Two-sided confidence level of every interval; 1 − ``confidence`` is the α of the MDE.
    split_mode : str
        ``split.mode``; written to the ``protocol`` column (``well_holdout`` says that the test
        rows are wells of training compounds, not unseen compounds).
    predictions : pandas.DataFrame, optional
        Every evaluation job's ``predictions`` table; with it (and a classification metric) the
        paired compound bootstrap (:mod:`morphotx.report.compound_bootstrap`) is computed beside the corrected t
        over splits (columns ``delta_boot_*``).
    bootstrap : int
        Bootstrap draws (``headline.bootstrap``; 0 turns the compound bootstrap off).
    seed : int
        Seed of the bootstrap draws (``headline.seed``).
    power : float
        Power at which the minimum detectable effect ``delta_mde`` is stated.
    delta : {"fold_t", "compound_bootstrap", "compound_split"}
        The method of Δ's primary interval, p-value and MDE (``headline.delta``): the corrected t
        over splits, the paired compound bootstrap (conditional on the models), or that bootstrap
        plus the between-split variance (:func:`morphotx.report.compound_bootstrap.paired_bootstrap`). All three
        are in the table (``delta_fold_*``, ``delta_boot_*``, ``delta_cs_*``); ``make
        bench-controls`` measures their error rates and power (docs/evaluation.md).
    resample : {"rescaled", "naive"}
        How the bootstrap resamples compounds within MoAs (:func:`morphotx.report.compound_bootstrap.stratified_weights`).

    Returns
    -------
    pandas.DataFrame
        ``entry, kind, source, input``, the most frequently chosen ``view, level, variant,
        classifier`` and ``configuration``, ``choices`` (every split's choice, counted),
        ``n_repetitions`` (splits with a finite test ``metric``), ``n_validation_repetitions``,
        ``validation_<metric>`` (mean over splits of the chosen configuration's), per reported
        metric the mean over splits with ``_ci_low`` / ``_ci_high`` (corrected t),
        ``n_test_over_n_train``, ``baseline``, ``delta_vs_baseline``, its primary
        ``delta_ci_low`` / ``delta_ci_high`` / ``delta_p`` / ``delta_mde`` and ``delta_method``,
        ``delta_p_holm`` (Holm over every learned entry), ``n_delta_repetitions``,
        ``ratio_vs_baseline``, both methods' columns (``delta_fold_*``, ``delta_boot_*``),
        ``best_of_input`` (the entries chosen on validation per input: the primary comparisons)
        and ``delta_p_holm_best`` (Holm over those), ``ci_method``, ``confidence``, ``protocol``,
        ``status`` and ``note``. Second table: one row per entry and split with a choice:
        ``entry, fold, source``, the chosen ``view, level, variant, classifier``,
        ``configuration``, its validation ``score`` and ``test_<metric>``.
    """
    if ci not in CI_METHODS:
        raise ValueError(f"ci must be one of {sorted(CI_METHODS)}, got {ci!r}")
    if split_mode not in PROTOCOLS:
        raise ValueError(f"split_mode must be one of {sorted(PROTOCOLS)}, got {split_mode!r}")
    if delta not in DELTA_METHODS:
        raise ValueError(f"delta must be one of {DELTA_METHODS}, got {delta!r}")
    embedding = embedding_metrics if embedding_metrics is not None else pd.DataFrame()
    reported = list(dict.fromkeys([metric, *REPORTED]))
    if metric == "moa_map":
        classification = retrieval_rows(classification if classification is not None else pd.DataFrame(),
                                        embedding)
        reported = ["moa_map"]
    cols = _columns(metric, reported)
    choice_cols = ["entry", "fold", "source", *CONFIG, "configuration", "score", f"test_{metric}"]
    if classification is None or classification.empty:
        return pd.DataFrame(columns=cols).assign(protocol=pd.Series(dtype=object)), pd.DataFrame(columns=choice_cols)
    if metric not in classification.columns:
        if "status" in classification.columns and (classification["status"] == "ok").any():
            raise ValueError(f"headline: metric {metric!r} is not a column of the classification table")
        # no row was scored (e.g. one compound per MoA: no test MoA has a training compound); every
        # entry then gets the evaluation's reason as its status
        classification = classification.assign(**{metric: np.nan})
    axes, weights = _bootstrap_axes(predictions, metric, bootstrap, seed, resample)
    results = {e.name: _entry_result(e, classification, embedding, metric, reported, ci, confidence,
                                     predictions if axes else None, axes) for e in entries(classification)}
    for r in results.values():
        r.row.setdefault("note", [])
        base = BASELINE_OF_INPUT.get(r.row["input"]) if r.row["kind"] != "baseline" else None
        _add_delta(r.row, results.get(base), r, metric, ci, confidence, weights, power, delta)
        if r.row["kind"] != "baseline" and base not in results:
            r.row["note"].append(f"no raw baseline for input {r.row['input']}")
        if r.row["entry"] == RAW_CHOSEN:
            r.row["note"].append("the baseline of the two-assay entries: every split's best raw configuration "
                                 "on validation")
        r.row["note"] = "; ".join(r.row["note"]) if isinstance(r.row["note"], list) else r.row["note"]
    table = pd.DataFrame([r.row for r in results.values()]).reindex(columns=cols)
    table["best_of_input"] = table["kind"] == "chosen"
    learned = (table["kind"].isin(["model", "cp_only"])).to_numpy()
    table["delta_p_holm"] = np.nan
    table.loc[learned, "delta_p_holm"] = holm(table.loc[learned, "delta_p"].astype(float))
    best = table["best_of_input"].to_numpy()
    table["delta_p_holm_best"] = np.nan
    table.loc[best, "delta_p_holm_best"] = holm(table.loc[best, "delta_p"].astype(float))
    table["ci_method"], table["confidence"] = ci, confidence
    table["protocol"] = PROTOCOLS[split_mode]
    chosen = [r.choices.assign(entry=name) for name, r in results.items() if r.choices is not None and len(r.choices)]
    choices = pd.concat(chosen, ignore_index=True)[choice_cols] if chosen else pd.DataFrame(columns=choice_cols)
    return _order(table, metric), choices


def headline(classification: list[str], embedding_metrics: list[str], parquet: str, md: str,
             settings: HeadlineSettings = HeadlineSettings(), split: SplitSettings = SplitSettings(),
             tsv: str | None = None, predictions: list[str] | None = None, choices: str | None = None,
             recipes: list[str] | None = None) -> pd.DataFrame:
    """Read every evaluation job's tables, build the headline (:func:`headline_frame`) and write it
    atomically: the entry point of rule ``headline``.

    Parameters
    ----------
    classification, embedding_metrics : list of str
        Parquet files of the ``classification`` and ``embedding_metrics`` tables (empty ones
        are skipped).
    parquet, md : str
        Output paths of the table (Parquet) and the Markdown page.
    settings : HeadlineSettings, default HeadlineSettings()
        The ``headline`` config section: ``metric`` (``auto``: resolved for ``split.mode`` by
        :func:`morphotx.configcheck.resolve_headline_metric`), ``ci``, ``confidence``,
        ``bootstrap``, ``seed``, ``delta`` and ``resample``, as in :func:`headline_frame`.
    split : SplitSettings, default SplitSettings()
        The ``split`` config section: its ``mode`` (the protocol) and ``folds`` (for the
        description of the splits, :func:`~.headline_text.repetitions_text`).
    tsv : str, optional
        Output path of the display table (:func:`~.headline_text.compact`) as TSV, for the HTML report.
    predictions : list of str, optional
        Parquet files of the ``predictions`` tables (the compound bootstrap's input).
    choices : str, optional
        Output path of every split's choices (:func:`headline_tables`' second table, with the
        Cell Painting recipe of every split when ``recipes`` are given).
    recipes : list of str, optional
        Every split's ``cp_recipe_choice.tsv`` (:mod:`morphotx.prepare.recipe_choice`).

    Returns
    -------
    pandas.DataFrame
        The headline table.
    """
    cls = read_tables(classification)
    embedding = read_tables(embedding_metrics)
    preds = read_tables(predictions) if predictions else None
    h = settings
    table, chosen = headline_tables(cls, embedding, metric=resolve_headline_metric(h.metric, split.mode), ci=h.ci,
                                    confidence=h.confidence, split_mode=split.mode, predictions=preds,
                                    bootstrap=h.bootstrap, seed=h.seed, delta=h.delta, resample=h.resample)
    recipe_rows = recipe_choices(recipes) if recipes else pd.DataFrame()
    if len(recipe_rows):
        chosen = pd.concat([chosen, recipe_rows.reindex(columns=chosen.columns)], ignore_index=True)
    text = markdown(table, repetitions_text(cls, split.folds), recipe_text(recipe_rows))
    outs = [parquet, md] + ([tsv] if tsv else []) + ([choices] if choices else [])
    with atomic_outputs(*outs) as tmps:
        write_parquet(table, tmps[0])
        with open(tmps[1], "w") as fh:
            fh.write(text)
        if tsv:
            compact(table).to_csv(tmps[2], sep="\t", index=False)
        if choices:
            write_parquet(chosen, tmps[-1])
    if is_well_holdout(table):
        log.warning("headline: %s", PROTOCOLS["well_holdout"])
    for line in summary_lines(table):
        log.info("headline: %s", line)
    return table
