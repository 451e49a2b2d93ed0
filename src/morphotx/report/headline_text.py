"""The headline in words: numbers with their intervals, verdicts, Markdown, the report's front page.

Everything here reads the headline table (:func:`morphotx.report.headline.headline_tables`) and
writes text: the Markdown page (:func:`markdown`), its display table (:func:`compact`), the
sentences of the verdict (:func:`verdict`), the log and terminal lines (:func:`summary_lines`,
:func:`best_of_input_parts`) and the HTML report's first page (:func:`front_page_rst`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .selection import INPUT_LABELS, PROTOCOLS, RAW_CHOSEN, choice_counts
from .statistics import CI_METHODS

WELL_HOLDOUT_TEXT = ("**Well holdout (Wong 2023, `split.mode: well_holdout`): the test rows are held-out wells of "
                     "compounds that are also in training. This is not an unseen-compound test: its scores "
                     "measure something else than the compound-held-out headline and must not be compared "
                     "with it.**")


def _chosen(table: pd.DataFrame) -> pd.Series:
    """``best_of_input`` as a boolean mask (all False for tables written before the column)."""
    if "best_of_input" not in table.columns:
        return pd.Series(False, index=table.index)
    return table["best_of_input"].fillna(False).astype(bool)


def number_text(x, digits: int = 3, signed: bool = False, minus: str = "−") -> str:
    """``x`` with ``digits`` decimals (a sign with ``signed``), ``minus`` as the minus sign; "—" for a missing value."""
    if x is None or pd.isna(x):
        return "—"
    s = f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
    return s.replace("-", minus)


def with_ci_text(mean, low, high, digits: int = 3, signed: bool = False, minus: str = "−") -> str:
    """``mean [low, high]`` (:func:`number_text`); the interval left out where it is missing."""
    if mean is None or pd.isna(mean):
        return "—"
    s = number_text(mean, digits, signed, minus)
    if pd.notna(low) and pd.notna(high):
        s += f" [{number_text(low, digits, False, minus)}, {number_text(high, digits, False, minus)}]"
    return s


def _has_baseline(r: dict) -> bool:
    return isinstance(r.get("baseline"), str) and bool(r["baseline"])


def metric_label(metric: str) -> str:
    """The display name of a metric (``macro_f1`` → "macro-F1")."""
    return {"macro_f1": "macro-F1", "weighted_f1": "weighted F1", "moa_map": "MoA mAP"}.get(metric, metric)


def metric_of(table: pd.DataFrame) -> str:
    """The metric a headline table chose configurations by (its ``validation_<metric>`` column)."""
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
        d = with_ci_text(r["delta_vs_baseline"], r["delta_ci_low"], r["delta_ci_high"], signed=True)
        head = f"**{r['entry']}** vs {r['baseline']}: Δ = {d}"
        if r["kind"] in ("model", "cp_only") and pd.notna(r.get("delta_p_holm", np.nan)):
            head += f", p = {p_text(r['delta_p'])} (exploratory; Holm-adjusted {p_text(r['delta_p_holm'])})"
        elif r["kind"] == "chosen":
            head += f", p = {p_text(r['delta_p'])} (primary; Holm over the inputs {p_text(r.get('delta_p_holm_best'))})"
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
                     f"{'held-out wells' if is_well_holdout(table) else 'held-out compounds'} "
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
    unseen = (f"; a true gain below {number_text(mde)} would have been missed more often than not (its minimum "
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
    metric, level = metric_of(table), _confidence_text(table)
    parts = []
    for inp in [i for i in INPUT_LABELS if i in set(chosen["input"])] + sorted(set(chosen["input"]) - set(INPUT_LABELS)):
        r = chosen[chosen["input"] == inp].iloc[0].to_dict()
        name = INPUT_LABELS.get(inp, inp)
        choice = str(r.get("choices") or r.get("configuration") or "—").split("; ")
        most = choice[0] + (f" and {len(choice) - 1} other configuration(s)" if len(choice) > 1 else "")
        parts.append(
            f"{f'**{name}**' if bold else name}: chose {most}; validation {metric_label(metric)} "
            f"{number_text(r[f'validation_{metric}'], minus=minus)}, test "
            f"{with_ci_text(r[metric], r[f'{metric}_ci_low'], r[f'{metric}_ci_high'], minus=minus)}, "
            f"Δ = {with_ci_text(r['delta_vs_baseline'], r['delta_ci_low'], r['delta_ci_high'], signed=True, minus=minus)} "
            f"vs {r['baseline']} (ratio {number_text(r['ratio_vs_baseline'], 2, minus=minus)}), p = {p_text(r['delta_p'])}, "
            f"Holm over the {len(chosen)} inputs: {p_text(r['delta_p_holm_best'])}, minimum detectable effect "
            f"{number_text(r.get('delta_mde'), minus=minus)}; {_finding(r, level)}")
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
    return BEST_OF_INPUT_INTRO.replace(" compounds", " wells") if is_well_holdout(table) else BEST_OF_INPUT_INTRO


def p_text(x) -> str:
    """A p-value for display ("< 0.001" below 0.001)."""
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


def is_well_holdout(table: pd.DataFrame) -> bool:
    """Whether a headline table comes from ``split.mode: well_holdout`` (not an unseen-compound test)."""
    return "protocol" in table.columns and (table["protocol"] == PROTOCOLS["well_holdout"]).any()


def _confidence_text(table: pd.DataFrame) -> str:
    c = table["confidence"].dropna() if "confidence" in table.columns else pd.Series(dtype=float)
    return f"{100 * float(c.iloc[0]):g} %" if len(c) else "95 %"


def compact(table: pd.DataFrame) -> pd.DataFrame:
    """The headline's display columns, numbers formatted as "mean [low, high]" (Markdown, TSV); "▶"
    marks the learned entry of each input chosen on validation (``best_of_input``).
    """
    metric, level = metric_of(table), _confidence_text(table)
    t = pd.DataFrame({
        "entry": [f"▶ {e}" if b else e for e, b in zip(table["entry"], _chosen(table))],  # chosen on validation, per input
        "configuration (view · level · variant · classifier; most frequent choice of the splits)":
            [str(c).split("; ")[0] if isinstance(c, str) and c else (str(f) if isinstance(f, str) else "—")
             for c, f in zip(table["choices"] if "choices" in table.columns else [None] * len(table),
                             table["configuration"])],
        f"validation {metric_label(metric)}": [number_text(x) for x in table[f"validation_{metric}"]],
        f"test {metric_label(metric)} [{level} CI]": [with_ci_text(r[metric], r[f"{metric}_ci_low"], r[f"{metric}_ci_high"])
                                               for r in table.to_dict("records")],
    })
    for m, name, digits in [("accuracy", "accuracy", 3), ("n_moas_nonzero_f1", "MoAs with F1 > 0", 1),
                            ("moa_map", "MoA mAP", 3)]:
        if m != metric and m in table.columns:
            t[name] = [with_ci_text(r[m], r[f"{m}_ci_low"], r[f"{m}_ci_high"], digits) for r in table.to_dict("records")]
    t["Δ vs baseline"] = [with_ci_text(a, b, c, signed=True) for a, b, c in
                          zip(table["delta_vs_baseline"], table["delta_ci_low"], table["delta_ci_high"])]
    if "delta_mde" in table.columns:
        t["MDE (80 %)"] = [number_text(x) for x in table["delta_mde"]]
    if "delta_p_holm" in table.columns:
        t["p (Holm)"] = [p_text(h if k in ("model", "cp_only") else b) for h, b, k in
                         zip(table["delta_p_holm"], table.get("delta_p_holm_best", table["delta_p_holm"]),
                             table["kind"])]
    t["baseline"] = table["baseline"].fillna("—")
    t["ratio"] = [number_text(x, 2) for x in table["ratio_vs_baseline"]]
    if (table["status"] != "ok").any():
        t["status"] = table["status"]
    if is_well_holdout(table):
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
    metric, level = metric_of(table), _confidence_text(table)
    method = table["ci_method"].dropna().iloc[0] if "ci_method" in table.columns and table["ci_method"].notna().any() \
        else "corrected_t"
    t = compact(table)
    well = is_well_holdout(table)
    unit = "wells" if well else "compounds"
    methods = set(table["delta_method"].dropna()) if "delta_method" in table.columns else set()
    alpha = number_text(_family_alpha(table), 2)
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
        f"Δ is the difference of test {metric_label(metric)} to the raw baseline of the same input (raw Cell Painting for "
        f"Cell Painting input, raw L1000 for L1000, and for both assays `{RAW_CHOSEN}`: every split's raw "
        f"configuration best on its validation {unit}); ratio = mean test {metric_label(metric)} / the baseline's. " + how
    )
    lines = [
        "# morphotx headline",
        "",
        *([WELL_HOLDOUT_TEXT, ""] if well else []),
        f"**Nested selection.** In every split (fold of a partition) each entry's configuration (view, level, "
        f"variant, classifier) was chosen by that split's validation {metric_label(metric)} alone (training seeds "
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
    metric = metric_of(table)
    width = max([len(str(e)) for e in table["entry"]] + [5])
    out = []
    for r in table.to_dict("records"):
        line = (f"{r['entry']:<{width}}  {metric_label(metric)} "
                f"{with_ci_text(r[metric], r[f'{metric}_ci_low'], r[f'{metric}_ci_high'], minus='-')}")
        if _has_baseline(r):
            d = with_ci_text(r["delta_vs_baseline"], r["delta_ci_low"], r["delta_ci_high"], signed=True, minus="-")
            line += f"  delta {d} vs {r['baseline']}"
            holm_p = r.get("delta_p_holm_best") if r["kind"] == "chosen" else r.get("delta_p_holm", np.nan)
            if pd.notna(holm_p):
                line += f"  (Holm p {p_text(holm_p).replace('< ', '<')}, MDE {number_text(r.get('delta_mde'), minus='-')})"
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
    lines = [intro.rstrip(), ""] + ([WELL_HOLDOUT_TEXT.replace("`", ""), ""] if is_well_holdout(table) else []) + [
             f"**Headline** (configurations chosen on validation compounds; test "
             f"{metric_label(metric_of(table))} and differences with 95 % CIs over the repetitions; full table in "
             "category 0):", "",
             tabulate(t.values.tolist(), headers=list(t.columns), tablefmt="grid"), ""]
    lines += [f"- {v}" for v in verdict(table) if not v.startswith("**")]  # the summary, not the per-entry lines
    return "\n".join(lines) + "\n"
