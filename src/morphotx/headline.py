"""The headline: whether a learned embedding beats the raw profiles on compounds it has never seen.

Protocol (test compounds decide nothing):

* **Entries.** One per model (``source != raw``), choosing among all of its configurations
  ``(view, level, variant, classifier)`` (for two-encoder models the views include
  ``late_fusion``, the fusion of their ``cp`` and ``l1000`` embeddings' classifiers, input both);
  one "<model> (Cell Painting only)" per model that has ``view == cp`` rows *and* other views, choosing among its cp configurations only (a model whose
  only view is cp is already Cell-Painting-only and is not duplicated); one per raw baseline view
  (raw Cell Painting ``cp``, raw L1000 ``l1000``, early fusion ``both``, late fusion
  ``late_fusion``), choosing among its ``(level, variant, classifier)``.
* **Selection, on validation compounds only.** A configuration's score is the mean over
  repetitions (fold × seed) of its ``split == validation`` metric. Configurations scored (finite
  metric) in more repetitions come first, so a configuration complete in every repetition of its
  entry beats any incomplete one whatever their scores; then the higher score; then the smaller
  configuration string. Test rows are never read for the choice.
* **Reporting, on test compounds, once per chosen configuration.** Per repetition: test macro-F1,
  accuracy, MoAs with F1 > 0, and the test-compound MoA mAP of the collapsed form of the variant
  (from ``embedding_metrics``; none for late fusion). Mean and CI over the repetitions: the
  corrected resampled t of Nadeau & Bengio (2003), variance ``(1/J + n_test/n_train) · s²`` with
  J − 1 degrees of freedom (``ci="corrected_t"``), or the plain t-interval ``s²/J`` (``ci="t"``).
* **Retrieval (``metric="moa_map"``, the zero-shot protocol of ``split.mode: moa_disjoint``).**
  No classifier: a configuration is ``(view, level, variant, "retrieval")``, chosen on the
  validation compounds' copairs MoA mAP (``validation_moa_map``) and reported with the test
  compounds' MoA mAP. Late fusion has no embedding and no entry.
* **Paired difference** to the best raw baseline of the same input (cp → raw Cell Painting,
  l1000 → raw L1000, both → the raw entry with the highest validation score): per repetition
  shared by both, then mean and CI with the same method, and the two-sided p-value of the same
  t statistic (``delta_p``: the CI excludes zero exactly when ``delta_p < 1 − confidence``).
* **Multiplicity.** The table compares every learned entry (models and their Cell-Painting-only
  views: 22 on the demo) with a baseline, so some CIs exclude zero by chance alone.
  ``delta_p_holm`` is Holm's step-down adjustment of ``delta_p`` over all learned entries with a
  difference (valid under any dependence between them, as here, where entries share baselines
  and folds); the verdict says which differences survive it at the family-wise level
  ``1 − confidence``. Baselines compared with the best baseline are not in the family.
* **The learned entry chosen on validation, per input** (``best_of_input``). "The best learned
  model" read off the table's test column would be chosen on the test compounds. Instead, per
  input (both, Cell Painting, L1000) the learned entry with the highest validation score (ties by
  name) is the one compared: its test score and Δ are a single comparison with its baseline,
  chosen without the test compounds. ``delta_p_holm_best`` adjusts those (one per input) by Holm;
  the verdict and ``make run`` report them first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .io import atomic_outputs, read_tables, write_parquet

log = logging.getLogger(__name__)

CONFIG = ["view", "level", "variant", "classifier"]
REPETITION = ["fold", "seed"]
REPORTED = ["macro_f1", "accuracy", "n_moas_nonzero_f1", "moa_map"]
RAW_VIEWS = {"cp": "raw Cell Painting", "l1000": "raw L1000", "both": "raw early fusion",
             "late_fusion": "raw late fusion"}
INPUT_OF_VIEW = {"late_fusion": "both"}
INPUT_LABELS = {"both": "Cell Painting + L1000", "cp": "Cell Painting only", "l1000": "L1000 only"}
COLLAPSED = {"uncollapsed": "collapsed", "raw+uncollapsed": "raw+collapsed"}
CI_METHODS = {
    "corrected_t": "corrected resampled t (Nadeau & Bengio 2003, Machine Learning 52:239–281): "
                   "variance (1/J + n_test/n_train) · s², J − 1 degrees of freedom",
    "t": "Student t over repetitions, variance s²/J (not corrected for the training compounds the "
         "repetitions share, so too narrow)",
}
KIND_ORDER = {"baseline": 0, "model": 1, "cp_only": 1}
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
    """One row of the headline: a display ``name``, its ``kind`` (``model``, ``cp_only``,
    ``baseline``), its ``source`` and the ``views`` it may choose among (``None``: all).
    """

    name: str
    kind: str
    source: str
    views: tuple[str, ...] | None = None


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
        Raw baselines first (cp, l1000, both, late_fusion, then any other raw view), then per
        model (sorted by name) the model entry and, for a model with cp and other views, its
        Cell-Painting-only entry.
    """
    if classification.empty:
        return []
    views = classification.groupby("source")["view"].agg(lambda v: sorted(set(v)))
    raw = views.get("raw", [])
    out = [Entry(RAW_VIEWS.get(v, f"raw {v}"), "baseline", "raw", (v,))
           for v in [*[v for v in RAW_VIEWS if v in raw], *[v for v in raw if v not in RAW_VIEWS]]]
    for source in sorted(s for s in views.index if s != "raw"):
        out.append(Entry(str(source), "model", str(source)))
        if "cp" in views[source] and len(views[source]) > 1:
            out.append(Entry(f"{source} (Cell Painting only)", "cp_only", str(source), ("cp",)))
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
    rows = classification[classification["source"] == entry.source]
    return rows if entry.views is None else rows[rows["view"].isin(entry.views)]


def configuration_string(config) -> str:
    """The readable name of a configuration.

    Parameters
    ----------
    config : mapping
        A dict or row with the ``view``, ``level``, ``variant`` and ``classifier`` keys.

    Returns
    -------
    str
        ``"view · level · variant · classifier"``.
    """
    return " · ".join(str(config[k]) for k in CONFIG)


def validation_scores(rows: pd.DataFrame, metric: str = "macro_f1") -> pd.DataFrame:
    """Every configuration's validation score, from ``split == "validation"`` rows only.

    Parameters
    ----------
    rows : pandas.DataFrame
        Classification rows of one entry.
    metric : str
        The selection metric.

    Returns
    -------
    pandas.DataFrame
        One row per configuration: ``CONFIG`` columns, ``configuration``, ``score`` (mean over
        the repetitions with a finite value), ``n_scored`` (those repetitions), ``n_repetitions``
        (repetitions with any validation row of the entry) and ``complete``; sorted best first:
        most repetitions scored, then highest score, then configuration string.
    """
    val = rows[rows["split"] == "validation"]
    cols = CONFIG + ["configuration", "score", "n_scored", "n_repetitions", "complete"]
    if val.empty:
        return pd.DataFrame(columns=cols)
    per_rep = val.groupby(CONFIG + REPETITION)[metric].mean()  # NaN (failed) stays NaN
    g = per_rep.groupby(level=CONFIG)
    out = pd.DataFrame({"score": g.mean(), "n_scored": g.count()}).reset_index()
    out["configuration"] = [configuration_string(r) for r in out.to_dict("records")]
    out["n_repetitions"] = len(val[REPETITION].drop_duplicates())
    out["complete"] = out["n_scored"] == out["n_repetitions"]
    out = out.sort_values(["n_scored", "score", "configuration"], ascending=[False, False, True],
                          na_position="last")
    return out[cols].reset_index(drop=True)


def select(rows: pd.DataFrame, metric: str = "macro_f1") -> pd.Series | None:
    """The chosen configuration of one entry, from validation rows only.

    Parameters
    ----------
    rows : pandas.DataFrame
        Classification rows of one entry (test rows may be present; they are not read).
    metric : str
        The selection metric.

    Returns
    -------
    pandas.Series or None
        The first row of :func:`validation_scores` with a finite score, or ``None`` when no
        configuration has a validation score.
    """
    scores = validation_scores(rows, metric)
    scores = scores[scores["score"].notna()]
    return None if scores.empty else scores.iloc[0]


# ---------------------------------------------------------------------------------------------
# intervals
# ---------------------------------------------------------------------------------------------
def interval(values, ratio: float = np.nan, ci: str = "corrected_t",
             confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and confidence interval of per-repetition values.

    Parameters
    ----------
    values : array-like
        One value per repetition; non-finite values are dropped.
    ratio : float
        ``n_test / n_train`` of the repetitions (used by ``corrected_t`` only).
    ci : {"corrected_t", "t"}
        ``corrected_t``: Nadeau & Bengio (2003) corrected resampled t, variance
        ``(1/J + ratio) · s²``; ``t``: variance ``s²/J``. Both use a t quantile with J − 1
        degrees of freedom.
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
    their number J: the shared basis of :func:`interval` and :func:`paired_p`.
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
    """Two-sided p-value of "the mean of the per-repetition ``values`` is zero", with the variance
    and the J − 1 degrees of freedom of :func:`interval` (so :func:`interval`'s CI at confidence
    c excludes zero exactly when the p-value is below 1 − c). NaN with fewer than 2 finite values.
    """
    mean, var, j = _mean_and_variance(values, ratio, ci)
    if j < 2 or not np.isfinite(var):
        return np.nan
    if var == 0:  # identical differences: no sampling variation to weigh them against
        return 1.0 if mean == 0 else 0.0
    return float(2 * stats.t.sf(abs(mean) / np.sqrt(var), j - 1))


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
# test numbers of a chosen configuration
# ---------------------------------------------------------------------------------------------
def _config_rows(rows: pd.DataFrame, choice: pd.Series) -> pd.DataFrame:
    mask = np.logical_and.reduce([rows[k] == choice[k] for k in CONFIG])
    return rows[mask]


def _moa_map(embedding: pd.DataFrame, source: str, view: str, variant: str) -> pd.Series:
    if embedding.empty or "variant" not in embedding.columns:
        return pd.Series(dtype=float)
    e = embedding[(embedding["metric"] == "moa_map") & (embedding["status"] == "ok")
                  & embedding["variant"].notna() & (embedding["source"] == source)
                  & (embedding["view"] == view) & (embedding["variant"] == COLLAPSED.get(variant, variant))]
    return e.groupby(REPETITION)["value"].mean()


def _ratio(test: pd.DataFrame) -> float:
    if not {"n_scored", "n_train"} <= set(test.columns) or test.empty:
        return np.nan
    with np.errstate(all="ignore"):
        r = test["n_scored"].astype(float) / test["n_train"].astype(float)
    r = r[np.isfinite(r)]
    return float(r.mean()) if len(r) else np.nan


def reported_values(rows: pd.DataFrame, choice: pd.Series, embedding: pd.DataFrame, source: str,
                metrics: list[str]) -> tuple[pd.DataFrame, float]:
    """Per-repetition test values of the chosen configuration and its ``n_test/n_train``.

    Parameters
    ----------
    rows : pandas.DataFrame
        Classification rows of the entry.
    choice : pandas.Series
        The chosen configuration (``CONFIG`` keys).
    embedding : pandas.DataFrame
        The concatenated ``embedding_metrics`` (for ``moa_map``).
    source : str
        The entry's source.
    metrics : list of str
        Classification metrics to report; ``moa_map`` comes from ``embedding``.

    Returns
    -------
    tuple
        A frame indexed by ``(fold, seed)`` with one column per metric, and the mean of
        ``n_scored / n_train`` over the configuration's test rows.
    """
    test = _config_rows(rows, choice)
    test = test[test["split"] == "test"]
    cls = [m for m in metrics if m != "moa_map"]
    present = [m for m in cls if m in test.columns]
    per_rep = test.groupby(REPETITION)[present].mean().reindex(columns=cls)
    if "moa_map" in metrics:
        per_rep["moa_map"] = _moa_map(embedding, source, choice["view"], choice["variant"]).reindex(per_rep.index)
    return per_rep[metrics], _ratio(test)


def _status(rows: pd.DataFrame, choice: pd.Series, metric: str) -> str:
    """``ok``, or per problem ``"<status> in k/n repetitions: <first reason>"`` over the
    repetitions of the entry (either split).
    """
    reps = rows[REPETITION].drop_duplicates().sort_values(REPETITION)
    mine = _config_rows(rows, choice)
    problems: dict[str, list] = {}
    for fold, seed in reps.itertuples(index=False):
        r = mine[(mine["fold"] == fold) & (mine["seed"] == seed)]
        bad = r[r["status"] != "ok"] if "status" in r.columns else r.iloc[:0]
        if r.empty:
            problems.setdefault("missing", []).append("")
        elif len(bad):
            reason = bad["reason"].iloc[0] if "reason" in bad.columns else ""
            problems.setdefault(str(bad["status"].iloc[0]), []).append(reason)
        elif r[metric].isna().any():
            problems.setdefault("no score", []).append("")
    parts = []
    for st, reasons in problems.items():
        first = next((str(x) for x in reasons if isinstance(x, str) and x), "")
        parts.append(f"{st} in {len(reasons)}/{len(reps)} repetitions" + (f": {first}" if first else ""))
    return "; ".join(parts) if parts else "ok"


def _entry_result(entry: Entry, classification: pd.DataFrame, embedding: pd.DataFrame, metric: str,
                  reported: list[str], ci: str, confidence: float) -> tuple[dict, pd.Series]:
    rows = _entry_rows(classification, entry)
    res = {"entry": entry.name, "kind": entry.kind, "source": entry.source}
    notes = []
    choice = select(rows, metric)
    if choice is None:
        bad = rows[rows["split"] == "validation"]
        reason = str(bad["reason"].dropna().iloc[0]) if "reason" in bad.columns and bad["reason"].notna().any() else ""
        res.update(status="no validation score" + (f": {reason}" if reason else ""), note=[])
        return res, pd.Series(dtype=float)
    view = str(choice["view"])
    res.update({k: choice[k] for k in CONFIG}, input=INPUT_OF_VIEW.get(view, view),
               configuration=choice["configuration"], n_validation_repetitions=int(choice["n_scored"]),
               **{f"validation_{metric}": float(choice["score"])})
    if not choice["complete"]:
        notes.append(f"no configuration scored in all {int(choice['n_repetitions'])} validation repetitions; "
                     f"chosen among those scored in {int(choice['n_scored'])}")
    per_rep, ratio = reported_values(rows, choice, embedding, entry.source, reported)
    res["n_test_over_n_train"] = ratio
    for m in reported:
        res[m], res[f"{m}_ci_low"], res[f"{m}_ci_high"] = interval(per_rep[m], ratio, ci, confidence)
    res["n_repetitions"] = int(per_rep[metric].notna().sum())
    if res["n_repetitions"] < 2:
        notes.append(f"{res['n_repetitions']} test repetition(s): no CI")
    if view == "late_fusion":
        notes.append("late fusion has no embedding: no MoA mAP")
    elif "moa_map" in reported and per_rep["moa_map"].isna().all():
        notes.append("no MoA mAP for this configuration")
    res["status"], res["note"] = _status(rows, choice, metric), notes
    return res, per_rep[metric]


# ---------------------------------------------------------------------------------------------
# baselines and paired differences
# ---------------------------------------------------------------------------------------------
def _best_raw(results: list[dict], metric: str) -> str | None:
    raw = [r for r in results if r["kind"] == "baseline" and pd.notna(r.get(f"validation_{metric}", np.nan))]
    if not raw:
        return None
    return sorted(raw, key=lambda r: (-r[f"validation_{metric}"], r["entry"]))[0]["entry"]


def _baseline_of(res: dict, best: str | None) -> str | None:
    if res["kind"] == "baseline":
        return None if res["entry"] == best else best
    return {"cp": RAW_VIEWS["cp"], "l1000": RAW_VIEWS["l1000"], "both": best}.get(res.get("input"))


def _add_delta(res: dict, base: dict | None, per_rep: dict[str, pd.Series], metric: str, ci: str,
               confidence: float) -> None:
    res.update(baseline=None, delta_vs_baseline=np.nan, delta_ci_low=np.nan, delta_ci_high=np.nan,
               delta_p=np.nan, n_delta_repetitions=0, ratio_vs_baseline=np.nan)
    if base is None:
        return
    res["baseline"] = base["entry"]
    d = (per_rep[res["entry"]] - per_rep[base["entry"]]).dropna()  # pairs by (fold, seed)
    ratio = res.get("n_test_over_n_train", np.nan)
    res["delta_vs_baseline"], res["delta_ci_low"], res["delta_ci_high"] = interval(d, ratio, ci, confidence)
    res["delta_p"] = paired_p(d, ratio, ci)
    res["n_delta_repetitions"] = int(len(d))
    denom = base.get(metric, np.nan)
    if pd.notna(denom) and denom != 0:
        res["ratio_vs_baseline"] = res.get(metric, np.nan) / denom
    if len(d) < 2:
        res["note"].append(f"{len(d)} paired repetition(s) with {base['entry']}: no CI for the difference")


def _baseline_notes(res: dict, best: str | None) -> None:
    if res["kind"] == "baseline" and res["entry"] == best:
        res["note"].append("best raw baseline (chosen on validation)")
    elif "input" in res and res.get("baseline") is None:
        res["note"].append(f"no raw baseline for input {res['input']}")


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------
def _columns(metric: str, reported: list[str]) -> list[str]:
    return (["entry", "kind", "source", "input", *CONFIG, "configuration", "n_repetitions",
             "n_validation_repetitions", f"validation_{metric}"]
            + [f"{m}{s}" for m in reported for s in ("", "_ci_low", "_ci_high")]
            + ["n_test_over_n_train", "baseline", "delta_vs_baseline", "delta_ci_low", "delta_ci_high",
               "delta_p", "delta_p_holm", "n_delta_repetitions", "ratio_vs_baseline", "best_of_input",
               "delta_p_holm_best", "ci_method", "confidence", "status", "note"])


def _candidates(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The learned entries that may be chosen per input: a baseline to compare with and a
    validation score.
    """
    val = f"validation_{metric}"
    return table[(table["kind"] != "baseline") & table["baseline"].notna() & table[val].notna()]


def _chosen(table: pd.DataFrame) -> pd.Series:
    """``best_of_input`` as a boolean mask (all False for tables written before the column)."""
    if "best_of_input" not in table.columns:
        return pd.Series(False, index=table.index)
    return table["best_of_input"].fillna(False).astype(bool)


def _mark_best_of_input(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Flag, per input, the learned entry with a baseline and the highest validation ``metric``
    (ties by entry name) as ``best_of_input``; ``delta_p_holm_best`` is Holm's adjustment of
    their ``delta_p`` over those flagged (one comparison per input, chosen without test compounds).
    """
    table["best_of_input"], table["delta_p_holm_best"] = False, np.nan
    cand = _candidates(table, metric)
    cand = cand.assign(_neg=-cand[f"validation_{metric}"].astype(float)).sort_values(["input", "_neg", "entry"])
    best = cand.groupby("input", sort=True).head(1).index
    table.loc[best, "best_of_input"] = True
    table.loc[best, "delta_p_holm_best"] = holm(table.loc[best, "delta_p"].astype(float))
    return table


def _order(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Baselines first (in entry order), then the rest by test ``metric`` descending (display only)."""
    table = table.assign(_k=table["kind"].map(KIND_ORDER), _pos=range(len(table)),
                         _m=np.where(table["kind"] == "baseline", 0.0, -table[metric].astype(float)))
    table = table.sort_values(["_k", "_m", "_pos"], na_position="last")
    return table.drop(columns=["_k", "_m", "_pos"]).reset_index(drop=True)


def headline_frame(classification: pd.DataFrame, embedding_metrics: pd.DataFrame, metric: str = "macro_f1",
                   ci: str = "corrected_t", confidence: float = 0.95, split_mode: str = "compound") -> pd.DataFrame:
    """The headline table: one row per model, Cell-Painting-only model view and raw baseline.

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
        Interval method, see :func:`interval`.
    confidence : float
        Two-sided confidence level of every interval.
    split_mode : str
        ``split.mode``; written to the ``protocol`` column (``well_holdout`` says that the test
        rows are wells of training compounds, not unseen compounds).

    Returns
    -------
    pandas.DataFrame
        ``entry, kind, source, input``, the chosen ``view, level, variant, classifier`` and
        ``configuration``, ``n_repetitions`` (test repetitions with a finite ``metric``),
        ``n_validation_repetitions``, ``validation_<metric>``, per reported metric (``metric``,
        macro-F1, accuracy, ``n_moas_nonzero_f1``, ``moa_map``) the mean with ``_ci_low`` /
        ``_ci_high``, ``n_test_over_n_train``, ``baseline``, ``delta_vs_baseline``,
        ``delta_ci_low``, ``delta_ci_high``, ``delta_p`` (two-sided, :func:`paired_p`),
        ``delta_p_holm`` (:func:`holm` over the learned entries; NaN for baselines),
        ``n_delta_repetitions``, ``ratio_vs_baseline``, ``best_of_input`` (the learned entry of its
        input best on validation) and ``delta_p_holm_best`` (Holm over those),
        ``ci_method``, ``confidence``, ``protocol``, ``status`` and ``note``. Baselines first, then the other entries by test ``metric`` descending.
    """
    if ci not in CI_METHODS:
        raise ValueError(f"ci must be one of {sorted(CI_METHODS)}, got {ci!r}")
    if split_mode not in PROTOCOLS:
        raise ValueError(f"split_mode must be one of {sorted(PROTOCOLS)}, got {split_mode!r}")
    embedding = embedding_metrics if embedding_metrics is not None else pd.DataFrame()
    reported = list(dict.fromkeys([metric, *REPORTED]))
    if metric == "moa_map":
        classification = retrieval_rows(classification if classification is not None else pd.DataFrame(),
                                        embedding)
        reported = ["moa_map"]
    cols = _columns(metric, reported)
    if classification is None or classification.empty:
        return pd.DataFrame(columns=cols).assign(protocol=pd.Series(dtype=object))
    if metric not in classification.columns:
        if "status" in classification.columns and (classification["status"] == "ok").any():
            raise ValueError(f"headline: metric {metric!r} is not a column of the classification table")
        # no row was scored (e.g. one compound per MoA: no test MoA has a training compound); every
        # entry then gets the evaluation's reason as its status
        classification = classification.assign(**{metric: np.nan})
    results, per_rep = [], {}
    for e in entries(classification):
        res, values = _entry_result(e, classification, embedding, metric, reported, ci, confidence)
        results.append(res)
        per_rep[e.name] = values
    by_name = {r["entry"]: r for r in results}
    best = _best_raw(results, metric)
    for res in results:
        res.setdefault("note", [])
        base = _baseline_of(res, best)
        _add_delta(res, by_name.get(base) if base else None, per_rep, metric, ci, confidence)
        _baseline_notes(res, best)
        res["note"] = "; ".join(res["note"])
    table = pd.DataFrame(results).reindex(columns=cols)
    learned = (table["kind"] != "baseline").to_numpy()
    table["delta_p_holm"] = np.nan
    table.loc[learned, "delta_p_holm"] = holm(table.loc[learned, "delta_p"].astype(float))
    table = _mark_best_of_input(table, metric)
    table["ci_method"], table["confidence"] = ci, confidence
    table["protocol"] = PROTOCOLS[split_mode]
    return _order(table, metric)


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
        if r["kind"] != "baseline" and pd.notna(r.get("delta_p_holm", np.nan)):
            head += f", p = {_p(r['delta_p'])} (Holm-adjusted {_p(r['delta_p_holm'])})"
        lines.append(f"{head}; {_finding(r, level)}.")
        if pd.notna(r["delta_vs_baseline"]) and r["delta_ci_low"] > 0:
            above.append(r)
        elif pd.notna(r["delta_vs_baseline"]) and r["delta_ci_high"] < 0:
            below.append(r)
    learned = [r for r in table.to_dict("records") if r["kind"] != "baseline" and _has_baseline(r)]
    best = best_of_input_line(table)
    if best:
        lines.append(best)
    if learned:
        up = [r["entry"] for r in above if r["kind"] != "baseline"]
        down = [r["entry"] for r in below if r["kind"] != "baseline"]
        lines.append(f"Better than the raw baseline of the same input: {', '.join(up)}.{_holm_text(table, up)}"
                     if up else
                     f"No learned embedding is better than the raw baseline of its input on "
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
    return "not distinguishable from its baseline (the CI includes zero)"


def best_of_input_parts(table: pd.DataFrame, minus: str = "−", bold: bool = True) -> list[str]:
    """Per input, in the order both, Cell Painting, L1000: the learned entry flagged
    ``best_of_input`` (the one best on validation compounds) with its test score, Δ with CI, p,
    Holm-adjusted p over those compared, and whether its CI excludes zero. Empty when the table
    flags none.
    """
    chosen = table[_chosen(table)]
    if chosen.empty:
        return []
    metric, level = _metric_of(table), _confidence_text(table)
    n = _candidates(table, metric)["input"].value_counts()
    parts = []
    for inp in [i for i in INPUT_LABELS if i in set(chosen["input"])] + sorted(set(chosen["input"]) - set(INPUT_LABELS)):
        r = chosen[chosen["input"] == inp].iloc[0].to_dict()
        name = f"**{r['entry']}**" if bold else r["entry"]
        parts.append(
            f"{INPUT_LABELS.get(inp, inp)}: {name} ({r['configuration']}; validation {_label(metric)} "
            f"{_num(r[f'validation_{metric}'], minus=minus)}, the highest of {n.get(inp, 0)}) "
            f"scores {_with_ci(r[metric], r[f'{metric}_ci_low'], r[f'{metric}_ci_high'], minus=minus)} on test, "
            f"Δ = {_with_ci(r['delta_vs_baseline'], r['delta_ci_low'], r['delta_ci_high'], signed=True, minus=minus)} "
            f"vs {r['baseline']} (ratio {_num(r['ratio_vs_baseline'], 2, minus=minus)}), p = {_p(r['delta_p'])}, "
            f"Holm over the {len(chosen)} compared: {_p(r['delta_p_holm_best'])}; {_finding(r, level)}")
    return parts


BEST_OF_INPUT_INTRO = ("Chosen on validation compounds, one learned entry per input (the entry to quote as \"the best "
                       "learned model\": the test column's maximum would be chosen on the test compounds)")


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
        "configuration (view · level · variant · classifier)": table["configuration"].fillna("—"),
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
    if "delta_p_holm" in table.columns:
        t["p (Holm)"] = [_p(x) for x in table["delta_p_holm"]]
    t["baseline"] = table["baseline"].fillna("—")
    t["ratio"] = [_num(x, 2) for x in table["ratio_vs_baseline"]]
    if (table["status"] != "ok").any():
        t["status"] = table["status"]
    if _well_holdout(table):
        t["protocol"] = "well holdout: not unseen compounds"
    return t


def markdown(table: pd.DataFrame, repetitions_text: str) -> str:
    """The headline as a Markdown page: method paragraph, compact table, verdict.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`headline_frame` (one row per model view and raw baseline, with its
        validation-chosen configuration).
    repetitions_text : str
        How many repetitions, e.g. ``"J = 15: 5 folds × 3 seeds"``.

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
    unit, folds = ("wells", "folds of the wells") if well else ("compounds", "compound-grouped folds")
    lines = [
        "# morphotx headline",
        "",
        *([WELL_HOLDOUT_TEXT, ""] if well else []),
        f"For every entry the configuration (view, level, variant, classifier) was chosen on validation "
        f"{unit} only, by the mean validation {_label(metric)} over repetitions (configurations scored in "
        f"every repetition first, ties by name); test {unit} were scored once per chosen configuration. "
        f"Numbers are the mean and {level} confidence interval over the repetitions ({repetitions_text}; "
        f"repetitions = {folds} × training seeds), by the {CI_METHODS.get(method, method)}. "
        f"Δ is the paired difference of test {_label(metric)} (same fold and seed) to the best raw baseline of "
        f"the same input: raw Cell Painting for Cell Painting input, raw L1000 for L1000, and for both inputs the "
        f"raw entry best on validation; ratio = mean test {_label(metric)} / the baseline's. p (Holm): the "
        f"two-sided p-value of Δ by the same t statistic, adjusted by Holm's method over every learned entry "
        f"compared (the table makes that many comparisons; a CI that excludes zero on its own may not survive "
        f"it). ▶ marks, per input, the learned entry chosen on validation: the one to quote (its "
        f"comparison is the verdict's first summary line; rows are listed by test score for display only). "
        f"Full table: headline.parquet."
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
            if r["kind"] != "baseline" and pd.notna(r.get("delta_p_holm", np.nan)):
                line += f"  (Holm p {_p(r['delta_p_holm']).replace('< ', '<')})"
        if r.get("status") not in (None, "ok") and not pd.isna(r.get("status")):
            line += f"  ({r['status']})"
        out.append(line)
    return out


def repetitions_text(classification: pd.DataFrame) -> str:
    """How many repetitions the classification rows hold.

    Parameters
    ----------
    classification : pandas.DataFrame
        The concatenated classification tables (``fold`` and ``seed`` columns).

    Returns
    -------
    str
        E.g. ``"J = 15: 5 fold(s) × 3 seed(s)"``.
    """
    if classification.empty:
        return "J = 0"
    reps = classification[REPETITION].drop_duplicates()
    return (f"J = {len(reps)}: {reps['fold'].nunique()} fold(s) × {reps['seed'].nunique()} seed(s)")


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------
def headline(classification: list[str], embedding_metrics: list[str], parquet: str, md: str,
             metric: str = "macro_f1", ci: str = "corrected_t", confidence: float = 0.95,
             tsv: str | None = None, split_mode: str = "compound") -> pd.DataFrame:
    """Read every evaluation job's tables, build the headline (:func:`headline_frame`) and write it
    atomically (``tsv``: also the display table as TSV, for the HTML report).

    Parameters
    ----------
    classification, embedding_metrics : list of str
        Parquet files of the ``classification`` and ``embedding_metrics`` tables (empty ones
        are skipped).
    parquet, md : str
        Output paths of the table (Parquet) and the Markdown page.
    metric, ci, confidence, split_mode
        As in :func:`headline_frame`.

    Returns
    -------
    pandas.DataFrame
        The headline table.
    """
    cls = read_tables(classification)
    embedding = read_tables(embedding_metrics)
    table = headline_frame(cls, embedding, metric=metric, ci=ci, confidence=confidence, split_mode=split_mode)
    text = markdown(table, repetitions_text(cls))
    outs = [parquet, md] + ([tsv] if tsv else [])
    with atomic_outputs(*outs) as tmps:
        write_parquet(table, tmps[0])
        with open(tmps[1], "w") as fh:
            fh.write(text)
        if tsv:
            compact(table).to_csv(tmps[2], sep="\t", index=False)
    if _well_holdout(table):
        log.warning("headline: %s", PROTOCOLS["well_holdout"])
    for line in summary_lines(table):
        log.info("headline: %s", line)
    return table


def front_page_rst(table: pd.DataFrame, intro: str) -> str:
    """The report's first page: ``intro`` (reStructuredText) then the headline as a grid table and
    its verdict, so the HTML report opens with the answer.
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
    """``python -m morphotx.headline results/<name>/leaderboard/headline.parquet``: print the
    headline for a terminal (what ``make run`` ends with).
    """
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m morphotx.headline <headline.parquet>", file=sys.stderr)
        return 2
    table = pd.read_parquet(args[0])
    print(f"Headline ({args[0].removesuffix('.parquet')}.md): configurations chosen on validation compounds; "
          "test scores with CIs over the repetitions")
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
