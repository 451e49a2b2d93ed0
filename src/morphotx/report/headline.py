"""The headline: whether a learned embedding beats the raw profiles on compounds it has never seen.

Protocol (no split's test compounds decide anything about that split; docs/evaluation.md):

* **Splits.** The ``fold`` of the classification rows is a split: a fold of one of
  ``split.repeats`` re-drawn partitions (:func:`morphotx.prepare.split.fold_of`). Training seeds are
  averaged within a split, never counted as repetitions.
* **Entries** (:func:`entries`). One per raw view, ``raw, chosen on validation`` among every raw
  view (the baseline of two-assay entries), one per model (all of its views; input ``both`` when
  they use both assays), one "<model> (Cell Painting only)" per model with cp and other views,
  and per input the primary comparison ``learned, chosen on validation (<input>)`` choosing among
  every learned configuration of that input.
* **Nested selection** (:func:`select`). In every split, the configuration ``(source, view,
  level, variant, classifier)`` with the best validation metric of that split alone; ties by
  configuration string. An entry's test value is the mean over splits of its own choices'.
* **Intervals.** Mean and CI over the splits by the corrected repeated k-fold t (Nadeau & Bengio
  2003; Bouckaert & Frank 2004), or the plain t (``ci="t"``). Δ to the raw baseline of the same
  input, paired by split, with its p-value and minimum detectable effect (:func:`fold_mde`); the
  paired compound bootstrap of :mod:`morphotx.report.compound_bootstrap` beside it (``delta_boot_*``; primary
  only with ``delta="compound_bootstrap"``).
* **Retrieval (``metric="moa_map"``, the zero-shot protocol).** No classifier: a configuration is
  ``(view, level, variant, "retrieval")``, chosen on the validation compounds' copairs MoA mAP.
* **Multiplicity.** ``delta_p_holm_best``: Holm over the primary comparisons (one per input);
  ``delta_p_holm``: Holm over every other learned entry (exploratory).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..io import atomic_outputs, read_tables, write_parquet
from . import compound_bootstrap as inference
from .compound_bootstrap import mde_t

log = logging.getLogger(__name__)

CONFIG = ["view", "level", "variant", "classifier"]
REPORTED = ["macro_f1", "accuracy", "n_moas_nonzero_f1", "moa_map"]
RAW_VIEWS = {"cp": "raw Cell Painting", "l1000": "raw L1000", "both": "raw early fusion",
             "late_fusion": "raw late fusion"}
INPUT_LABELS = {"both": "Cell Painting + L1000", "cp": "Cell Painting only", "l1000": "L1000 only"}
COLLAPSED = {"uncollapsed": "collapsed", "raw+uncollapsed": "raw+collapsed"}
CI_METHODS = {
    "corrected_t": "corrected resampled t (Nadeau & Bengio 2003, Machine Learning 52:239–281): "
                   "variance (1/J + n_test/n_train) · s², J − 1 degrees of freedom",
    "t": "Student t over repetitions, variance s²/J (not corrected for the training compounds the "
         "repetitions share, so too narrow)",
}
KIND_ORDER = {"baseline": 0, "chosen": 1, "model": 2, "cp_only": 2}
RECIPE_ENTRY = "Cell Painting recipe"
DELTA_METHODS = ("fold_t", "compound_bootstrap", "compound_split")
PROTOCOLS = {
    "compound": "held-out compounds",
    "moa_disjoint": "held-out compounds of held-out MoAs (zero-shot)",
    "well_holdout": "held-out wells of training compounds (seed 001's well holdout): NOT an unseen-compound test",
}
WELL_HOLDOUT_TEXT = ("**Well holdout (seed 001, `split.mode: well_holdout`): the test rows are held-out wells of "
                     "compounds that are also in training. This is not an unseen-compound test: its scores "
                     "measure something else than the compound-held-out headline and must not be compared "
                     "with it.**")
RETRIEVAL = "retrieval"  # the classifier slot of a configuration scored by MoA mAP


@dataclass(frozen=True)
class Entry:
    """One row of the headline: a display ``name``, its ``kind`` (``baseline``, ``model``,
    ``cp_only``, or ``chosen``: the entry chosen on validation among several), the ``sources`` and
    ``views`` whose configurations it may choose among (``None``: all views), and its ``input``
    (``both``, ``cp`` or ``l1000``: the assays it may use, which fixes its raw baseline).
    """

    name: str
    kind: str
    sources: tuple[str, ...]
    views: tuple[str, ...] | None
    input: str

    @property
    def source(self) -> str:
        """The single source, or ``"chosen"`` for an entry that chooses among several."""
        return self.sources[0] if len(self.sources) == 1 else "chosen"


MODALITIES = {"cp": {"cp"}, "l1000": {"l1000"}, "both": {"cp", "l1000"}, "late_fusion": {"cp", "l1000"}}
RAW_CHOSEN = "raw, chosen on validation"
BASELINE_OF_INPUT = {"cp": RAW_VIEWS["cp"], "l1000": RAW_VIEWS["l1000"], "both": RAW_CHOSEN}


def input_of_views(views) -> str:
    """``both`` when the views use both assays (together or apart), else the one assay they use."""
    mods = set().union(*[MODALITIES.get(v, {v}) for v in views]) if len(views) else set()
    return "both" if {"cp", "l1000"} <= mods else (next(iter(mods)) if len(mods) == 1 else "both")


def chosen_name(inp: str) -> str:
    """The display name of the learned entry chosen on validation for input ``inp``."""
    return f"learned, chosen on validation ({INPUT_LABELS.get(inp, inp)})"


# ---------------------------------------------------------------------------------------------
# entries and selection
# ---------------------------------------------------------------------------------------------
def entries(classification: pd.DataFrame) -> list[Entry]:
    """The headline's entries, from the sources and views present in ``classification``.

    Parameters
    ----------
    classification : pandas.DataFrame
        The concatenated classification tables (columns ``source`` and ``view`` at least).

    Returns
    -------
    list of Entry
        Raw baselines (one per raw view, then ``raw, chosen on validation`` among every raw view:
        the baseline of the two-assay entries), then per model (sorted by name) the model entry
        (all of its views; input ``both`` when they use both assays) and, for a model with cp and
        other views, its Cell-Painting-only entry; last, per input, the learned entry chosen on
        validation among every learned configuration of that input (the primary comparison).
    """
    if classification.empty:
        return []
    views = classification.groupby("source")["view"].agg(lambda v: sorted(set(v)))
    raw = views.get("raw", [])
    out = [Entry(RAW_VIEWS.get(v, f"raw {v}"), "baseline", ("raw",), (v,), input_of_views([v]))
           for v in [*[v for v in RAW_VIEWS if v in raw], *[v for v in raw if v not in RAW_VIEWS]]]
    if len(raw) > 1:
        out.append(Entry(RAW_CHOSEN, "baseline", ("raw",), None, input_of_views(raw)))
    learned: dict[str, list[tuple[str, tuple | None]]] = {}
    for source in sorted(s for s in views.index if s != "raw"):
        inp = input_of_views(views[source])
        out.append(Entry(str(source), "model", (str(source),), None, inp))
        learned.setdefault(inp, []).append(str(source))
        if "cp" in views[source] and len(views[source]) > 1:
            out.append(Entry(f"{source} (Cell Painting only)", "cp_only", (str(source),), ("cp",), "cp"))
            learned.setdefault("cp", []).append(str(source))
    for inp in [i for i in INPUT_LABELS if i in learned]:
        out.append(Entry(chosen_name(inp), "chosen", tuple(learned[inp]), ("cp",) if inp == "cp" else None, inp))
    return out


def retrieval_rows(classification: pd.DataFrame, embedding: pd.DataFrame) -> pd.DataFrame:
    """The selection rows of ``metric="moa_map"``: one per (source, fold, seed, view, level,
    variant) and split, from the ``validation_moa_map`` (``split`` validation) and ``moa_map``
    (test) embedding metrics, classifier ``retrieval``; ``n_train`` / ``n_scored`` (for the
    corrected t) from the classification rows of the same source, repetition, view, level and split.

    Parameters
    ----------
    classification : pandas.DataFrame
        The concatenated classification tables.
    embedding : pandas.DataFrame
        The concatenated ``embedding_metrics`` tables.

    Returns
    -------
    pandas.DataFrame
        Rows shaped like classification rows, with a ``moa_map`` column (NaN where not ``ok``).
    """
    keys = ["source", "fold", "seed", "view", "level"]
    if embedding.empty or "variant" not in embedding.columns:
        return pd.DataFrame(columns=keys + ["variant", "classifier", "split", "moa_map", "status", "reason"])
    e = embedding[embedding["metric"].isin(["moa_map", "validation_moa_map"]) & embedding["variant"].notna()]
    out = e.assign(split=np.where(e["metric"] == "moa_map", "test", "validation"), classifier=RETRIEVAL,
                   moa_map=e["value"].where(e["status"] == "ok"))
    if {"n_train", "n_scored"} <= set(classification.columns):
        sizes = classification.groupby(keys + ["split"])[["n_train", "n_scored"]].max().reset_index()
        out = out.merge(sizes, on=keys + ["split"], how="left")
    return out.drop(columns=["metric", "value"]).reset_index(drop=True)


def _entry_rows(classification: pd.DataFrame, entry: Entry) -> pd.DataFrame:
    rows = classification[classification["source"].isin(entry.sources)]
    return rows if entry.views is None else rows[rows["view"].isin(entry.views)]


def configuration_string(config, with_source: bool = False) -> str:
    """The readable name of a configuration.

    Parameters
    ----------
    config : mapping
        A dict or row with the ``view``, ``level``, ``variant`` and ``classifier`` keys (and
        ``source`` when ``with_source``).
    with_source : bool
        Prefix the source (for an entry that chooses among several sources).

    Returns
    -------
    str
        ``"view · level · variant · classifier"`` (``"source: …"`` with the source).
    """
    s = " · ".join(str(config[k]) for k in CONFIG)
    return f"{config['source']}: {s}" if with_source else s


def validation_scores(rows: pd.DataFrame, metric: str = "macro_f1", with_source: bool = False) -> pd.DataFrame:
    """Every configuration's validation score in every split, from ``split == "validation"`` rows only.

    Parameters
    ----------
    rows : pandas.DataFrame
        Classification rows of one entry (test rows may be present; they are not read).
    metric : str
        The selection metric.
    with_source : bool
        Name configurations with their source (:func:`configuration_string`).

    Returns
    -------
    pandas.DataFrame
        One row per (fold, configuration) with a finite score: ``fold``, ``source``, ``CONFIG``,
        ``configuration``, ``score`` (the mean over the fold's training seeds with a finite
        value); sorted per fold best first: highest score, then configuration string.
    """
    val = rows[rows["split"] == "validation"]
    cols = ["fold", "source", *CONFIG, "configuration", "score"]
    if val.empty:
        return pd.DataFrame(columns=cols)
    per = val.groupby(["fold", "source", *CONFIG])[metric].mean().dropna().rename("score").reset_index()
    per["configuration"] = [configuration_string(r, with_source) for r in per.to_dict("records")]
    per = per.sort_values(["fold", "score", "configuration"], ascending=[True, False, True])
    return per[cols].reset_index(drop=True)


def select(rows: pd.DataFrame, metric: str = "macro_f1", with_source: bool = False) -> pd.DataFrame:
    """The configuration chosen in every split, each from that split's validation rows only.

    Parameters
    ----------
    rows : pandas.DataFrame
        Classification rows of one entry (test rows may be present; they are not read).
    metric : str
        The selection metric.
    with_source : bool
        As in :func:`validation_scores`.

    Returns
    -------
    pandas.DataFrame
        One row per fold with a finite validation score: the first row of that fold in
        :func:`validation_scores`. A fold's choice reads only the validation rows of that fold, so
        no other fold's compounds (whose test compounds may be this fold's validation compounds)
        take part in it.
    """
    return validation_scores(rows, metric, with_source).groupby("fold", sort=True).head(1).reset_index(drop=True)


def choice_counts(choices: pd.DataFrame) -> str:
    """The configurations chosen over the splits with their counts, most frequent first."""
    if choices.empty:
        return ""
    n = choices["configuration"].value_counts()
    n = n.sort_index().sort_values(ascending=False, kind="stable")
    return "; ".join(f"{c} ({k}/{len(choices)})" for c, k in n.items())


# ---------------------------------------------------------------------------------------------
# intervals
# ---------------------------------------------------------------------------------------------
def interval(values, ratio: float = np.nan, ci: str = "corrected_t",
             confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and confidence interval of per-split values.

    Parameters
    ----------
    values : array-like
        One value per split (fold of a partition); non-finite values are dropped.
    ratio : float
        ``n_test / n_train`` of the splits (used by ``corrected_t`` only).
    ci : {"corrected_t", "t"}
        ``corrected_t``: the corrected repeated k-fold t (Nadeau & Bengio 2003; Bouckaert & Frank
        2004 for r repeats of k folds), variance ``(1/J + ratio) · s²`` with J = r · k; ``t``:
        variance ``s²/J``. Both use a t quantile with J − 1 degrees of freedom.
    confidence : float
        Two-sided confidence level.

    Returns
    -------
    tuple of float
        ``(mean, low, high)``; the interval is NaN with fewer than 2 values (or a NaN ``ratio``
        for ``corrected_t``).
    """
    mean, var, j = _mean_and_variance(values, ratio, ci)
    if j < 2:
        return mean, np.nan, np.nan
    half = float(stats.t.ppf((1 + confidence) / 2, j - 1)) * np.sqrt(var)
    return mean, mean - half, mean + half


def _mean_and_variance(values, ratio: float, ci: str) -> tuple[float, float, int]:
    """The finite ``values``' mean, the variance of that mean by ``ci`` (NaN below 2 values) and
    their number J: the shared basis of :func:`interval`, :func:`paired_p` and the MDE.
    """
    if ci not in CI_METHODS:
        raise ValueError(f"ci must be one of {sorted(CI_METHODS)}, got {ci!r}")
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return (float(v.mean()) if v.size else np.nan), np.nan, int(v.size)
    j, s2 = v.size, float(v.var(ddof=1))
    return float(v.mean()), (1 / j + ratio) * s2 if ci == "corrected_t" else s2 / j, j


def paired_p(values, ratio: float = np.nan, ci: str = "corrected_t") -> float:
    """Two-sided p-value of "the mean of the per-split ``values`` is zero", with the variance
    and the J − 1 degrees of freedom of :func:`interval` (so :func:`interval`'s CI at confidence
    c excludes zero exactly when the p-value is below 1 − c). NaN with fewer than 2 finite values.
    """
    mean, var, j = _mean_and_variance(values, ratio, ci)
    if j < 2 or not np.isfinite(var):
        return np.nan
    if var == 0:  # identical differences: no sampling variation to weigh them against
        return 1.0 if mean == 0 else 0.0
    return float(2 * stats.t.sf(abs(mean) / np.sqrt(var), j - 1))


def fold_mde(values, ratio: float = np.nan, ci: str = "corrected_t", confidence: float = 0.95,
             power: float = 0.8) -> float:
    """The smallest true mean difference the fold-level test detects with probability ``power``
    at two-sided level 1 − ``confidence``: ``(t_{1−α/2} + t_{power}) · SE`` with J − 1 degrees of
    freedom and the SE of :func:`interval` (the observed spread taken as the true one).
    """
    _, var, j = _mean_and_variance(values, ratio, ci)
    return mde_t(float(np.sqrt(var)) if np.isfinite(var) else np.nan, j - 1, 1 - confidence, power)


def holm(pvalues) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values; NaN entries stay NaN and are not counted.

    Hand-written because SciPy offers only the false-discovery-rate adjustments
    (``scipy.stats.false_discovery_control``) and statsmodels is not a dependency: the
    i-th smallest of m p-values becomes ``max_{k ≤ i} min(1, (m − k + 1) · p_(k))``.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


# ---------------------------------------------------------------------------------------------
# test numbers of the chosen configurations
# ---------------------------------------------------------------------------------------------
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
    rows = _entry_rows(classification, entry)
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
            counts.setdefault(fold, []).append(inference.counts(g, *axes))
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
        b = inference.paired_bootstrap(mine_c, base_c, weights, metric, confidence, power, ratio)
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


def _chosen(table: pd.DataFrame) -> pd.Series:
    """``best_of_input`` as a boolean mask (all False for tables written before the column)."""
    if "best_of_input" not in table.columns:
        return pd.Series(False, index=table.index)
    return table["best_of_input"].fillna(False).astype(bool)


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
    if predictions is None or predictions.empty or metric not in inference.METRICS or draws < 2:
        return None, None
    test = predictions[predictions["split"] == "test"]
    if test.empty:
        return None, None
    moa = test.groupby("compound")["moa"].first().sort_index()
    classes = pd.Index(sorted(set(test["moa"].astype(str)) | set(test["predicted"].astype(str))))
    return (pd.Index(moa.index.astype(str)), classes), inference.stratified_weights(moa, draws, seed, resample)


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


# ---------------------------------------------------------------------------------------------
# text
# ---------------------------------------------------------------------------------------------
def _num(x, digits: int = 3, signed: bool = False, minus: str = "−") -> str:
    if x is None or pd.isna(x):
        return "—"
    s = f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
    return s.replace("-", minus)


def _with_ci(mean, low, high, digits: int = 3, signed: bool = False, minus: str = "−") -> str:
    if mean is None or pd.isna(mean):
        return "—"
    s = _num(mean, digits, signed, minus)
    if pd.notna(low) and pd.notna(high):
        s += f" [{_num(low, digits, False, minus)}, {_num(high, digits, False, minus)}]"
    return s


def _has_baseline(r: dict) -> bool:
    return isinstance(r.get("baseline"), str) and bool(r["baseline"])


def _label(metric: str) -> str:
    return {"macro_f1": "macro-F1", "weighted_f1": "weighted F1", "moa_map": "MoA mAP"}.get(metric, metric)


def _metric_of(table: pd.DataFrame) -> str:
    val = [c for c in table.columns if c.startswith("validation_")]
    return val[0][len("validation_"):] if val else "macro_f1"


def verdict(table: pd.DataFrame) -> list[str]:
    """The verdict, generated from the numbers only.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`headline_frame`.

    Returns
    -------
    list of str
        One sentence per entry with a baseline (above / below / not distinguishable, by whether
        the difference's CI excludes zero), then the learned entries chosen on validation, one
        per input (:func:`best_of_input_line`), then which learned embeddings (``model`` and
        ``cp_only`` entries) are better, worse or not distinguishable.
    """
    lines, above, below, level = [], [], [], _confidence_text(table)
    for r in table.to_dict("records"):
        if not _has_baseline(r):
            continue
        d = _with_ci(r["delta_vs_baseline"], r["delta_ci_low"], r["delta_ci_high"], signed=True)
        head = f"**{r['entry']}** vs {r['baseline']}: Δ = {d}"
        if r["kind"] in ("model", "cp_only") and pd.notna(r.get("delta_p_holm", np.nan)):
            head += f", p = {_p(r['delta_p'])} (exploratory; Holm-adjusted {_p(r['delta_p_holm'])})"
        elif r["kind"] == "chosen":
            head += f", p = {_p(r['delta_p'])} (primary; Holm over the inputs {_p(r.get('delta_p_holm_best'))})"
        lines.append(f"{head}; {_finding(r, level)}.")
        if pd.notna(r["delta_vs_baseline"]) and r["delta_ci_low"] > 0:
            above.append(r)
        elif pd.notna(r["delta_vs_baseline"]) and r["delta_ci_high"] < 0:
            below.append(r)
    learned = [r for r in table.to_dict("records") if r["kind"] in ("model", "cp_only") and _has_baseline(r)]
    best = best_of_input_line(table)
    if best:
        lines.append(best)
    if learned:
        up = [r["entry"] for r in above if r["kind"] in ("model", "cp_only")]
        down = [r["entry"] for r in below if r["kind"] in ("model", "cp_only")]
        lines.append(f"Exploratory (every model, {len(learned)} comparisons): better than the raw baseline of the "
                     f"same input: {', '.join(up)}.{_holm_text(table, up)}"
                     if up else
                     f"Exploratory (every model, {len(learned)} comparisons): no learned embedding is better than the raw baseline of its input on "
                     f"{'held-out wells' if _well_holdout(table) else 'held-out compounds'} "
                     f"(no {level} CI of the difference lies above zero).")
        if down:
            lines.append(f"Worse than the raw baseline of the same input: {', '.join(down)}.{_holm_text(table, down)}")
        flat = [r["entry"] for r in learned if r["entry"] not in up + down]
        if flat:
            lines.append(f"Not distinguishable from (or not comparable with) the raw baseline: {', '.join(flat)}.")
    return lines


def _finding(r: dict, level: str) -> str:
    """What a row's difference to its baseline says: above, below, not distinguishable (by whether
    its CI excludes zero), or why there is no conclusion.
    """
    if pd.isna(r["delta_vs_baseline"]):
        return "no paired repetitions"
    if pd.isna(r["delta_ci_low"]) or pd.isna(r["delta_ci_high"]):
        return "no interval (fewer than 2 paired repetitions), no conclusion"
    if r["delta_ci_low"] > 0:
        return f"above its baseline (the {level} CI excludes zero)"
    if r["delta_ci_high"] < 0:
        return f"below its baseline (the {level} CI excludes zero)"
    mde = r.get("delta_mde", np.nan)
    unseen = (f"; a true gain below {_num(mde)} would have been missed more often than not (its minimum "
              f"detectable effect at 80 % power)" if pd.notna(mde) else "")
    return f"not distinguishable from its baseline (the CI includes zero){unseen}"


def best_of_input_parts(table: pd.DataFrame, minus: str = "−", bold: bool = True) -> list[str]:
    """Per input, in the order both, Cell Painting, L1000: the learned entry chosen on validation
    (``best_of_input``: in every split, the learned configuration of that input best on that
    split's validation compounds) with its most frequent choice, its test score, Δ with CI, p,
    Holm-adjusted p over the inputs, its minimum detectable effect, and whether its CI excludes
    zero. Empty when the table has none.
    """
    chosen = table[_chosen(table)]
    if chosen.empty:
        return []
    metric, level = _metric_of(table), _confidence_text(table)
    parts = []
    for inp in [i for i in INPUT_LABELS if i in set(chosen["input"])] + sorted(set(chosen["input"]) - set(INPUT_LABELS)):
        r = chosen[chosen["input"] == inp].iloc[0].to_dict()
        name = INPUT_LABELS.get(inp, inp)
        choice = str(r.get("choices") or r.get("configuration") or "—").split("; ")
        most = choice[0] + (f" and {len(choice) - 1} other configuration(s)" if len(choice) > 1 else "")
        parts.append(
            f"{f'**{name}**' if bold else name}: chose {most}; validation {_label(metric)} "
            f"{_num(r[f'validation_{metric}'], minus=minus)}, test "
            f"{_with_ci(r[metric], r[f'{metric}_ci_low'], r[f'{metric}_ci_high'], minus=minus)}, "
            f"Δ = {_with_ci(r['delta_vs_baseline'], r['delta_ci_low'], r['delta_ci_high'], signed=True, minus=minus)} "
            f"vs {r['baseline']} (ratio {_num(r['ratio_vs_baseline'], 2, minus=minus)}), p = {_p(r['delta_p'])}, "
            f"Holm over the {len(chosen)} inputs: {_p(r['delta_p_holm_best'])}, minimum detectable effect "
            f"{_num(r.get('delta_mde'), minus=minus)}; {_finding(r, level)}")
    return parts


BEST_OF_INPUT_INTRO = ("Primary comparisons, one per input: in every split the learned configuration best on that "
                       "split's validation compounds (the performance of choosing on validation, as nested "
                       "cross-validation reports it; the test column's maximum would be chosen on the test compounds)")


def best_of_input_line(table: pd.DataFrame) -> str | None:
    """:func:`best_of_input_parts` as one sentence of the verdict; None when the table flags none."""
    parts = best_of_input_parts(table)
    return f"{best_of_input_intro(table)} — " + "; ".join(parts) + "." if parts else None


def best_of_input_intro(table: pd.DataFrame) -> str:
    """:data:`BEST_OF_INPUT_INTRO`, speaking of wells under ``split.mode: well_holdout``."""
    return BEST_OF_INPUT_INTRO.replace(" compounds", " wells") if _well_holdout(table) else BEST_OF_INPUT_INTRO


def _p(x) -> str:
    return "—" if pd.isna(x) else ("< 0.001" if x < 0.001 else f"{x:.3f}")


def _holm_text(table: pd.DataFrame, names: list[str]) -> str:
    """Which of ``names`` (entries whose CI excludes zero) keep their difference after Holm's
    correction over every learned entry of ``table``.
    """
    learned = table[(table["kind"] != "baseline") & table["delta_p_holm"].notna()] \
        if "delta_p_holm" in table.columns else table.iloc[:0]
    if learned.empty:
        return ""
    alpha = _family_alpha(table)
    kept = [n for n in names if (learned.loc[learned["entry"] == n, "delta_p_holm"] < alpha).any()]
    survive = f"{', '.join(kept)} {'remain' if len(kept) > 1 else 'remains'}" if kept else "none remains"
    return (f" After Holm's correction for the {len(learned)} learned entries compared (family-wise error "
            f"{100 * alpha:g} %): {survive}.")


def _family_alpha(table: pd.DataFrame) -> float:
    """The family-wise error level of ``table``'s ``delta_p_holm``: 1 − its ``confidence`` (0.05
    when the table has none).
    """
    conf = table["confidence"].dropna() if "confidence" in table.columns else pd.Series(dtype=float)
    return 1 - (float(conf.iloc[0]) if len(conf) else 0.95)


def _well_holdout(table: pd.DataFrame) -> bool:
    return "protocol" in table.columns and (table["protocol"] == PROTOCOLS["well_holdout"]).any()


def _confidence_text(table: pd.DataFrame) -> str:
    c = table["confidence"].dropna() if "confidence" in table.columns else pd.Series(dtype=float)
    return f"{100 * float(c.iloc[0]):g} %" if len(c) else "95 %"


def compact(table: pd.DataFrame) -> pd.DataFrame:
    """The headline's display columns, numbers formatted as "mean [low, high]" (Markdown, TSV); "▶"
    marks the learned entry of each input chosen on validation (``best_of_input``).
    """
    metric, level = _metric_of(table), _confidence_text(table)
    t = pd.DataFrame({
        "entry": [f"▶ {e}" if b else e for e, b in zip(table["entry"], _chosen(table))],  # chosen on validation, per input
        "configuration (view · level · variant · classifier; most frequent choice of the splits)":
            [str(c).split("; ")[0] if isinstance(c, str) and c else (str(f) if isinstance(f, str) else "—")
             for c, f in zip(table["choices"] if "choices" in table.columns else [None] * len(table),
                             table["configuration"])],
        f"validation {_label(metric)}": [_num(x) for x in table[f"validation_{metric}"]],
        f"test {_label(metric)} [{level} CI]": [_with_ci(r[metric], r[f"{metric}_ci_low"], r[f"{metric}_ci_high"])
                                               for r in table.to_dict("records")],
    })
    for m, name, digits in [("accuracy", "accuracy", 3), ("n_moas_nonzero_f1", "MoAs with F1 > 0", 1),
                            ("moa_map", "MoA mAP", 3)]:
        if m != metric and m in table.columns:
            t[name] = [_with_ci(r[m], r[f"{m}_ci_low"], r[f"{m}_ci_high"], digits) for r in table.to_dict("records")]
    t["Δ vs baseline"] = [_with_ci(a, b, c, signed=True) for a, b, c in
                          zip(table["delta_vs_baseline"], table["delta_ci_low"], table["delta_ci_high"])]
    if "delta_mde" in table.columns:
        t["MDE (80 %)"] = [_num(x) for x in table["delta_mde"]]
    if "delta_p_holm" in table.columns:
        t["p (Holm)"] = [_p(h if k in ("model", "cp_only") else b) for h, b, k in
                         zip(table["delta_p_holm"], table.get("delta_p_holm_best", table["delta_p_holm"]),
                             table["kind"])]
    t["baseline"] = table["baseline"].fillna("—")
    t["ratio"] = [_num(x, 2) for x in table["ratio_vs_baseline"]]
    if (table["status"] != "ok").any():
        t["status"] = table["status"]
    if _well_holdout(table):
        t["protocol"] = "well holdout: not unseen compounds"
    return t


def markdown(table: pd.DataFrame, repetitions_text: str, recipes_text: str | None = None) -> str:
    """The headline as a Markdown page: method paragraph, compact table, verdict.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`headline_frame` (one row per model view and raw baseline, with its
        validation-chosen configuration).
    repetitions_text : str
        How many repetitions, e.g. ``"J = 15: 5 folds × 3 seeds"``.
    recipes_text : str, optional
        The Cell Painting recipes chosen per split (:func:`recipe_text`).

    Returns
    -------
    str
        The page.
    """
    metric, level = _metric_of(table), _confidence_text(table)
    method = table["ci_method"].dropna().iloc[0] if "ci_method" in table.columns and table["ci_method"].notna().any() \
        else "corrected_t"
    t = compact(table)
    well = _well_holdout(table)
    unit = "wells" if well else "compounds"
    methods = set(table["delta_method"].dropna()) if "delta_method" in table.columns else set()
    alpha = _num(_family_alpha(table), 2)
    if "compound_split" in methods:
        how = (f"Δ's CI, p and MDE (the smallest true gain detected with 80 % power at α = {alpha}) combine a paired "
               "bootstrap over the test compounds (resampled within MoAs, Rao–Wu rescaled; the same draws for both "
               "sides) with the variance between splits that the test compounds cannot show (the models and choices "
               "differ by split; Nadeau–Bengio-corrected): morphotx.report.compound_bootstrap.paired_bootstrap. ")
    elif "compound_bootstrap" in methods:
        how = (f"Δ's CI and p come from a paired bootstrap over the test compounds, resampled within MoAs, the "
               f"same draws for both sides of every comparison (morphotx.report.compound_bootstrap), holding the trained models "
               f"fixed; MDE is the smallest true gain it detects with 80 % power at α = {alpha}. ")
    else:
        how = ("Δ's CI, p and MDE (80 % power) come from the same t statistic over the splits (the compound-level "
               "methods are in headline.parquet, `delta_boot_*` and `delta_cs_*`). ")
    delta_text = (
        f"Δ is the difference of test {_label(metric)} to the raw baseline of the same input (raw Cell Painting for "
        f"Cell Painting input, raw L1000 for L1000, and for both assays `{RAW_CHOSEN}`: every split's raw "
        f"configuration best on its validation {unit}); ratio = mean test {_label(metric)} / the baseline's. " + how
    )
    lines = [
        "# morphotx headline",
        "",
        *([WELL_HOLDOUT_TEXT, ""] if well else []),
        f"**Nested selection.** In every split (fold of a partition) each entry's configuration (view, level, "
        f"variant, classifier) was chosen by that split's validation {_label(metric)} alone (training seeds "
        f"averaged); no other split's {unit} take part, so no test {unit[:-1]} of any split decides anything "
        f"about its own split. An entry's test score is the mean over splits of its own choices' scores (the "
        f"performance of the selection procedure, as nested cross-validation reports it); the configuration "
        f"shown is the most frequent choice, with its count (all choices: headline.parquet, `choices`). "
        f"Scores are the mean over the splits ({repetitions_text}) with {level} CIs by the "
        f"{CI_METHODS.get(method, method)}. " + delta_text +
        "▶ marks the primary comparisons, one per input: the learned configuration best on validation in "
        "every split; their p (Holm) is adjusted over the inputs. Every other learned entry is exploratory: "
        "its p (Holm) is adjusted over all of them. Rows are listed by test score for display only."
        + (f" **Cell Painting preprocessing**, chosen per split on its validation compounds by the raw Cell Painting "
           f"baseline (the models of the split train on it): {recipes_text}." if recipes_text else "")
        + (" Zero-shot protocol: the score is the copairs MoA mAP among the split's own compounds (no "
           "classifier, shown as 'retrieval'); late fusion has no embedding and no entry." if metric == "moa_map"
           else ""),
        "",
        t.to_markdown(index=False) if len(t) else "(no evaluation rows)",
        "",
        "## Verdict",
        "",
        *[f"- {line}" for line in verdict(table)],
        "",
    ]
    return "\n".join(lines)


def summary_lines(table: pd.DataFrame) -> list[str]:
    """The headline (:func:`headline_frame`'s table) for a terminal, ASCII minus signs: one line per
    entry with its test metric and CI, the difference to its baseline with CI, and the status
    when it is not ok.
    """
    metric = _metric_of(table)
    width = max([len(str(e)) for e in table["entry"]] + [5])
    out = []
    for r in table.to_dict("records"):
        line = (f"{r['entry']:<{width}}  {_label(metric)} "
                f"{_with_ci(r[metric], r[f'{metric}_ci_low'], r[f'{metric}_ci_high'], minus='-')}")
        if _has_baseline(r):
            d = _with_ci(r["delta_vs_baseline"], r["delta_ci_low"], r["delta_ci_high"], signed=True, minus="-")
            line += f"  delta {d} vs {r['baseline']}"
            holm_p = r.get("delta_p_holm_best") if r["kind"] == "chosen" else r.get("delta_p_holm", np.nan)
            if pd.notna(holm_p):
                line += f"  (Holm p {_p(holm_p).replace('< ', '<')}, MDE {_num(r.get('delta_mde'), minus='-')})"
        if r.get("status") not in (None, "ok") and not pd.isna(r.get("status")):
            line += f"  ({r['status']})"
        out.append(line)
    return out


def repetitions_text(classification: pd.DataFrame, folds: int | None = None) -> str:
    """How many splits the classification rows hold, and how they were drawn.

    Parameters
    ----------
    classification : pandas.DataFrame
        The concatenated classification tables (``fold`` and ``seed`` columns).
    folds : int, optional
        ``split.folds`` (K): the fold indices are then read as partitions × K
        (:func:`morphotx.prepare.split.fold_of`).

    Returns
    -------
    str
        E.g. ``"J = 10 splits: 2 partitions × 5 folds; 1 training seed per split (averaged, not
        counted as a repetition)"``.
    """
    if classification.empty:
        return "J = 0"
    j = classification["fold"].nunique()
    seeds = classification["seed"].nunique()
    drawn = (f"{-(-int(classification['fold'].max() + 1) // int(folds))} partition(s) × {folds} folds"
             if folds else f"{j} fold(s)")
    return (f"J = {j} splits: {drawn}; {seeds} training seed(s) per split "
            f"({'averaged, ' if seeds > 1 else ''}not counted as repetitions)")


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------
def headline(classification: list[str], embedding_metrics: list[str], parquet: str, md: str,
             metric: str = "macro_f1", ci: str = "corrected_t", confidence: float = 0.95,
             tsv: str | None = None, split_mode: str = "compound", predictions: list[str] | None = None,
             bootstrap: int = 2000, seed: int = 0, folds: int | None = None,
             choices: str | None = None, delta: str = "compound_split", recipes: list[str] | None = None,
             resample: str = "rescaled") -> pd.DataFrame:
    """Read every evaluation job's tables, build the headline (:func:`headline_frame`) and write it
    atomically.

    Parameters
    ----------
    classification, embedding_metrics : list of str
        Parquet files of the ``classification`` and ``embedding_metrics`` tables (empty ones
        are skipped).
    parquet, md : str
        Output paths of the table (Parquet) and the Markdown page.
    metric, ci, confidence, split_mode, bootstrap, seed, delta
        As in :func:`headline_frame` (defaults: ``"macro_f1"``, ``"corrected_t"``, 0.95,
        ``"compound"``, 2000, 0, ``"fold_t"``; the rule passes the resolved config).
    tsv : str, optional
        Output path of the display table (:func:`compact`) as TSV, for the HTML report.
    predictions : list of str, optional
        Parquet files of the ``predictions`` tables (the compound bootstrap's input).
    folds : int, optional
        ``split.folds``, for the description of the splits (:func:`repetitions_text`).
    choices : str, optional
        Output path of every split's choices (:func:`headline_tables`' second table, with the
        Cell Painting recipe of every split when ``recipes`` are given).
    recipes : list of str, optional
        Every split's ``cp_recipe_choice.tsv`` (:mod:`morphotx.prepare.recipe_choice`).
    resample : str
        As in :func:`headline_frame` (``headline.resample``).

    Returns
    -------
    pandas.DataFrame
        The headline table.
    """
    cls = read_tables(classification)
    embedding = read_tables(embedding_metrics)
    preds = read_tables(predictions) if predictions else None
    table, chosen = headline_tables(cls, embedding, metric=metric, ci=ci, confidence=confidence,
                                    split_mode=split_mode, predictions=preds, bootstrap=bootstrap, seed=seed,
                                    delta=delta, resample=resample)
    recipe_rows = recipe_choices(recipes) if recipes else pd.DataFrame()
    if len(recipe_rows):
        chosen = pd.concat([chosen, recipe_rows.reindex(columns=chosen.columns)], ignore_index=True)
    text = markdown(table, repetitions_text(cls, folds), recipe_text(recipe_rows))
    outs = [parquet, md] + ([tsv] if tsv else []) + ([choices] if choices else [])
    with atomic_outputs(*outs) as tmps:
        write_parquet(table, tmps[0])
        with open(tmps[1], "w") as fh:
            fh.write(text)
        if tsv:
            compact(table).to_csv(tmps[2], sep="\t", index=False)
        if choices:
            write_parquet(chosen, tmps[-1])
    if _well_holdout(table):
        log.warning("headline: %s", PROTOCOLS["well_holdout"])
    for line in summary_lines(table):
        log.info("headline: %s", line)
    return table


def recipe_choices(paths: list[str]) -> pd.DataFrame:
    """Every split's Cell Painting recipe choice (:mod:`morphotx.prepare.recipe_choice`) as rows of the
    choices table: ``entry`` "Cell Painting recipe", ``fold`` (from the ``fold<f>`` directory of
    the path, else the position), ``configuration`` the recipe, ``score`` its validation macro-F1.
    """
    rows = []
    for i, path in enumerate(paths):
        t = pd.read_csv(path, sep="\t")
        m = re.search(r"fold(\d+)", str(path))
        chosen = t[t["chosen"].astype(bool)].iloc[0]
        rows.append({"entry": RECIPE_ENTRY, "fold": int(m.group(1)) if m else i, "configuration": chosen["recipe"],
                     "score": chosen["validation_macro_f1"]})
    return pd.DataFrame(rows)


def recipe_text(recipes: pd.DataFrame) -> str | None:
    """``"configured (7/10), no_sphering (3/10)"``, or None with a single unscored recipe."""
    if recipes is None or recipes.empty:
        return None
    if recipes["configuration"].nunique() == 1 and recipes["score"].isna().all():
        return None
    return choice_counts(recipes)


def front_page_rst(table: pd.DataFrame, intro: str) -> str:
    """The report's first page: ``intro`` (reStructuredText) then the headline as a grid table and
    its verdict, so the HTML report opens with the answer.

    Parameters
    ----------
    table : pandas.DataFrame
        The headline table (:func:`headline`'s ``parquet``).
    intro : str
        The page's opening text (reStructuredText; the workflow's ``workflow/report/workflow.rst``).
    """
    from tabulate import tabulate

    t = compact(table)
    t = t[[c for c in t.columns if c.startswith(("entry", "test ", "Δ", "p (", "baseline"))]]  # narrow: beside the DAG
    lines = [intro.rstrip(), ""] + ([WELL_HOLDOUT_TEXT.replace("`", ""), ""] if _well_holdout(table) else []) + [
             f"**Headline** (configurations chosen on validation compounds; test "
             f"{_label(_metric_of(table))} and differences with 95 % CIs over the repetitions; full table in "
             "category 0):", "",
             tabulate(t.values.tolist(), headers=list(t.columns), tablefmt="grid"), ""]
    lines += [f"- {v}" for v in verdict(table) if not v.startswith("**")]  # the summary, not the per-entry lines
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m morphotx.report.headline results/<name>/leaderboard/headline.parquet``: print the
    headline for a terminal (what ``make run`` ends with).
    """
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m morphotx.report.headline <headline.parquet>", file=sys.stderr)
        return 2
    table = pd.read_parquet(args[0])
    print(f"Headline ({args[0].removesuffix('.parquet')}.md): configurations chosen per split on its validation "
          "compounds; test scores with CIs; delta with its CI and minimum detectable effect (MDE)")
    if _well_holdout(table):
        print("  WARNING: split.mode well_holdout — test rows are wells of training compounds; NOT an unseen-compound test")
    for line in summary_lines(table):
        print("  " + line)
    parts = best_of_input_parts(table, minus="-", bold=False)
    if parts:
        print(f"{best_of_input_intro(table)}:")
        for part in parts:
            print("  " + part)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
