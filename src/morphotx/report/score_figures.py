"""Figures of the evaluation's scores: the headline, the leaderboard, per-MoA F1, curves, mAP and
MOAProfiler's metrics (one function per figure rule, drawn from the leaderboard's long tables).
"""

from __future__ import annotations

import logging
import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..io import atomic_directory, read_table  # noqa: E402
from .plotting import (  # noqa: E402
    BAND_MAX_LINES,
    VARIANT_COLORS,
    curve_plot,
    empty_panel,
    save_figure,
    source_label,
)

log = logging.getLogger(__name__)


def per_moa_f1(per_moa: str, outdir: str, classifiers: tuple[str, ...] = ("knn", "gmm")):
    """Per model and view: F1 of each MoA with non-zero F1 on test compounds (mean over
    repetitions), bars grouped by variant, one panel per classifier — kNN and GMM, the study's
    two per-MoA figures (Fig 2 and 3).

    Parameters
    ----------
    per_moa : str
        The leaderboard's combined per-MoA table (``all_per_moa.parquet``; columns ``classifier``,
        ``source``, ``view``, ``variant``, ``moa``, ``f1``).
    outdir : str
        The directory written (atomically, replacing an earlier one): ``<source>_<view>.png`` per
        model and view, each with its PDF and screen rendition; empty when the table is.
    classifiers : tuple of str, default ("knn", "gmm")
        The classifiers drawn, one panel each, in this order; those absent from the table are left out.
    """
    df = read_table(per_moa)
    with atomic_directory(outdir) as tmp:
        if not len(df):
            return
        df = df[df["classifier"].isin(classifiers)]
        for (source, view), g in df.groupby(["source", "view"]):
            present = [c for c in classifiers if c in set(g["classifier"])]
            fig, axes = plt.subplots(len(present), 1, figsize=(max(6, 0.45 * g["moa"].nunique() + 2), 4 * len(present)),
                                     squeeze=False)
            for ax, clf in zip(axes[:, 0], present):
                m = g[g["classifier"] == clf].groupby(["variant", "moa"])["f1"].mean().unstack("variant").fillna(0)
                m = m.loc[(m > 0).any(axis=1)]
                if m.empty:
                    empty_panel(ax, f"{source_label(source, view)}, {clf}: no MoA with F1 > 0")
                    continue
                cols = [v for v in VARIANT_COLORS if v in m.columns]
                w = 0.8 / len(cols)
                x = np.arange(len(m))
                for j, v in enumerate(cols):
                    ax.bar(x + j * w - 0.4 + w / 2, m[v], w, color=VARIANT_COLORS[v], label=v)
                ax.set_xticks(x, m.index, rotation=60, ha="right", fontsize=7)
                ax.set_ylabel(f"F1 ({clf}, mean over repetitions)")
                ax.set_xlabel("MoA (non-zero F1 only)")
                ax.set_ylim(0, 1)
                ax.legend(title="variant", fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
                ax.set_title(f"Per-MoA F1 on test compounds, {clf}: {source_label(source, view)}", fontsize=9)
            fig.tight_layout()
            save_figure(fig, os.path.join(tmp, f"{source}_{view}.png"))


# umap-learn's jitted functions that its own code leaves uncached (pinned umap-learn 0.5.12)


def enrichment(curves: str, out: str):
    """MOAProfiler's enrichment figure: the odds ratio that strongly correlated pairs share a MoA vs
    the PCC percentile threshold, per level, source and view (log scale; dashed = raw features).

    Parameters
    ----------
    curves : str
        The combined ``curves`` table of every evaluation job (rows ``curve == "enrichment"``).
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``save_figure``).
    """
    c = read_table(curves)
    curve_plot(c, ["enrichment"], ["uncollapsed", "collapsed"], "enrichment (odds ratio, one-sided Fisher)",
                "PCC percentile threshold", "Enrichment of same-MoA pairs among strongly correlated pairs "
                "(test compounds; mean over repetitions; dashed = raw features)", out, logy=True)


def knn_vs_k(curves: str, out: str):
    """MOAProfiler's leave-one-out kNN scores vs k on test compounds (rows 1–3) and the curve that
    picked the kNN classifier's k (row 4; embeddings alone): macro-F1 vs k of the validation
    compounds (``evaluate.knn_k_selection: validation``) or the grouped cross-validation on
    training compounds (``cv``: the study's "kNN cross-validation score vs k").

    Parameters
    ----------
    curves : str
        The leaderboard's combined ``all_curves`` table (Parquet) of every evaluation job (rows of the kNN curves).
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``save_figure``).
    """
    c = read_table(curves)
    picks = [n for n in ("knn_validation_macro_f1", "knn_cv_macro_f1") if len(c) and (c["curve"] == n).any()]
    pick = picks[0] if picks else "knn_validation_macro_f1"
    if len(c) and "variant" in c.columns:  # the selection curve of the embedding alone, not of embedding + raw
        c = c[(c["curve"] != pick) | (c["variant"] == c["level"])]
    where = "validation compounds" if pick == "knn_validation_macro_f1" else "grouped CV on training compounds"
    curve_plot(c, ["knn_f1", "knn_precision", "knn_recall", pick], ["uncollapsed", "collapsed"],
                "score", "k (nearest neighbours)",
                "kNN vs k: leave-one-out on test compounds by PCC (MOAProfiler; weighted F1, precision, recall) and "
                f"the classifier's macro-F1 on {where} (the curve that picks k); mean over repetitions "
                f"(± sd band in panels with at most {BAND_MAX_LINES} lines)", out)


def map_distributions(maps: str, out: str):
    """Box plots of copairs per-group mAP by source and view, all repetitions pooled: replicate
    retrieval against DMSO per test treatment (left) and MoA retrieval per MoA (right).

    Parameters
    ----------
    maps : str
        The combined ``map`` table of every evaluation job.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``save_figure``).
    """
    m = read_table(maps)
    fig, axes = plt.subplots(1, 2, figsize=(15, 6.5), layout="constrained")
    for ax, (kind, title) in zip(axes, [("replicate", "Replicate retrieval vs DMSO (per test treatment)"),
                                        ("moa", "MoA retrieval across compounds (per MoA)")]):
        d = m[m["kind"] == kind] if len(m) else m
        if d.empty:
            empty_panel(ax, f"no {kind} mAP (needs DMSO rows / MoAs with two test compounds)")
            continue
        groups = sorted(d.groupby(["source", "view"]).groups)
        data = [d[(d["source"] == s) & (d["view"] == v)]["mean_average_precision"].dropna().to_numpy() for s, v in groups]
        ax.boxplot(data, vert=False, tick_labels=[source_label(s, v) for s, v in groups])
        ax.set_xlabel("mean average precision (copairs)")
        ax.set_title(title)
        ax.set_xlim(0, 1)
    fig.suptitle("mAP distributions, all repetitions pooled")
    save_figure(fig, out)


MOAPROFILER_PANELS = [
    ("PCC of profile pairs by group (Wong 2023, Fig 3f)",
     [("pcc_same_compound", "same compound"), ("pcc_other_compound_same_moa", "other compound, same MoA"),
      ("pcc_other_compound_other_moa", "other compound, other MoA")]),
    ("PCC delta: same-MoA minus other-MoA pairs (Wong 2023)", [("pcc_delta", "PCC delta")]),
    ("Class-latent assignment, weighted F1 (Wong 2023)", [("class_latent_f1", "weighted F1")]),
    ("Held-out-compound votes, accuracy (Wong 2023, Fig 4)",
     [("individual_vote_accuracy", "individual vote"), ("aggregated_vote_accuracy", "aggregated vote")]),
]


def moaprofiler_summary(metrics: str, out: str):
    """Wong 2023's embedding analyses side by side for every source and view: the three-group PCC
    comparison, the PCC delta, class-latent assignment and the held-out votes (test compounds,
    uncollapsed rows as the paper's well-level profiles; mean ± sd over repetitions).

    Parameters
    ----------
    metrics : str
        The leaderboard's combined ``all_embedding_metrics`` table (Parquet) of every evaluation job.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``save_figure``).
    """
    e = read_table(metrics)
    fig, axes = plt.subplots(len(MOAPROFILER_PANELS), 1, figsize=(11, 3.2 * len(MOAPROFILER_PANELS)),
                             layout="constrained")
    if len(e):
        e = e[(e["level"] == "uncollapsed") & (e["variant"] == "uncollapsed") & (e["status"] == "ok")]
    for ax, (title, metrics_) in zip(axes, MOAPROFILER_PANELS):
        d = e[e["metric"].isin([m for m, _ in metrics_]) & e["value"].notna()] if len(e) else e
        if d.empty:
            empty_panel(ax, f"{title}: no values")
            continue
        stats_ = d.groupby(["source", "view", "metric"])["value"].agg(["mean", "std"]).reset_index()
        names = sorted({(s, v) for s, v in zip(stats_["source"], stats_["view"])}, key=lambda t: (t[0] != "raw", t))
        x = np.arange(len(names))
        w = 0.8 / len(metrics_)
        for j, (m, label) in enumerate(metrics_):
            sm = stats_[stats_["metric"] == m].set_index(["source", "view"]).reindex(names)
            ax.bar(x + j * w - 0.4 + w / 2, sm["mean"], w, yerr=sm["std"].fillna(0), capsize=2, label=label)
        ax.set_xticks(x, [source_label(s, v) for s, v in names], rotation=45, ha="right", fontsize=7)
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_title(title, fontsize=9)
        if len(metrics_) > 1:
            ax.legend(fontsize=7)
    fig.suptitle("MOAProfiler analyses on held-out compounds (uncollapsed rows; mean ± sd over repetitions)")
    save_figure(fig, out)


def leaderboard(board: str, out: str, top: int = 30):
    """Bar chart of the exploratory leaderboard's top rows by test macro-F1 (mean ± sd over
    repetitions; grey = raw baselines).

    Parameters
    ----------
    board : str
        The leaderboard Parquet file.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``save_figure``).
    top : int
        Number of rows drawn.
    """
    b = read_table(board)
    scored = b.dropna(subset=["macro_f1_mean"]) if "macro_f1_mean" in b.columns else b.iloc[:0]
    fig, ax = plt.subplots(figsize=(9, 0.28 * min(top, max(len(scored), 4)) + 1.5))
    if scored.empty:
        # e.g. split.mode moa_disjoint or one compound per MoA: every classifier is not applicable
        reason = b["status"].dropna().astype(str) if "status" in b.columns else pd.Series(dtype=str)
        reason = reason[reason != "ok"]
        empty_panel(ax, "empty leaderboard" if b.empty else "no classifier scored any test compound"
               + (":\n" + "\n".join(textwrap.wrap(reason.mode().iloc[0], 90)) if len(reason) else ""))
    else:
        b = scored.head(top).iloc[::-1]
        labels = [f"{source_label(s, v)} · {var} · {c}" for s, v, var, c in zip(b["source"], b["view"], b["variant"],
                                                                           b["classifier"])]
        colors = ["tab:grey" if s == "raw" else "tab:blue" for s in b["source"]]
        ax.barh(range(len(b)), b["macro_f1_mean"], xerr=b["macro_f1_sd"].fillna(0), color=colors, capsize=2)
        ax.set_yticks(range(len(b)), labels, fontsize=7)
        ax.set_xlabel("macro F1 on test compounds (mean ± sd over repetitions)")
        ax.set_title(f"Exploratory leaderboard, top {len(b)} rows by test score (grey = raw baselines);\n"
                     "a maximum over many test scores — quote the headline instead", fontsize=10)
    save_figure(fig, out)


def headline(table: str, out: str):
    """The headline as a forest plot: per entry, the paired difference in the headline metric (test
    macro-F1, or MoA mAP under ``split.mode: moa_disjoint``) to its raw baseline with its 95 % CI
    (left), and the test metric with CI (right); configurations chosen on validation compounds.
    Without any score (e.g. no test MoA has a training compound) the figure says so and why.

    Parameters
    ----------
    table : str
        The headline table (``leaderboard/headline.parquet``, :func:`morphotx.report.headline.headline`).
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``save_figure``).
    """
    from .headline_text import metric_label, metric_of

    t = read_table(table)
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.32 * max(len(t), 1) + 1.8), sharey=True, layout="constrained")
    metric = metric_of(t)
    if t.empty or metric not in t.columns or not np.isfinite(t[metric].to_numpy(float)).any():
        why = "empty headline" if t.empty else f"no entry has a test {metric_label(metric)}"
        status = t["status"].dropna().astype(str) if "status" in t.columns else pd.Series(dtype=str)
        status = status[status != "ok"]
        if len(status):
            why += ":\n" + "\n".join(textwrap.wrap(status.mode().iloc[0], 90))
        for ax in axes:
            ax.set_axis_off()
        fig.text(0.5, 0.5, why, ha="center", va="center")
        save_figure(fig, out)
        return
    t = t.iloc[::-1].reset_index(drop=True)
    y = np.arange(len(t))
    # green: every learned entry whose input is Cell Painting only — a model's cp view (kind
    # cp_only) and a model of Cell Painting alone (the Cell Painting VAEs)
    c = ["tab:grey" if k == "baseline" else "tab:green" if i == "cp" else "tab:blue"
         for k, i in zip(t["kind"], t["input"])]
    for ax, mid, lo, hi, label in [
            (axes[0], "delta_vs_baseline", "delta_ci_low", "delta_ci_high",
             f"Δ test {metric_label(metric)} vs raw baseline"),
            (axes[1], metric, f"{metric}_ci_low", f"{metric}_ci_high", f"test {metric_label(metric)}")]:
        m = t[mid].to_numpy(float)
        err = np.vstack([m - t[lo].to_numpy(float), t[hi].to_numpy(float) - m])
        ok = np.isfinite(m)
        ax.errorbar(m[ok], y[ok], xerr=np.nan_to_num(err[:, ok]), fmt="none", ecolor="0.4", capsize=2, lw=1)
        ax.scatter(m[ok], y[ok], c=[c[i] for i in np.flatnonzero(ok)], zorder=3, s=22)
        ax.set_xlabel(f"{label} (mean over splits, 95 % CI)")
    axes[0].axvline(0, color="k", lw=0.8)
    # Holm-adjusted p of the difference: over the inputs for the primary comparisons, over every
    # learned entry for the exploratory ones; older headline tables have no column
    holm = t["delta_p_holm"].to_numpy(float) if "delta_p_holm" in t.columns else np.full(len(t), np.nan)
    if "delta_p_holm_best" in t.columns:
        holm = np.where(t["kind"].to_numpy() == "chosen", t["delta_p_holm_best"].to_numpy(float), holm)
    conf = t["confidence"].dropna() if "confidence" in t.columns else pd.Series(dtype=float)
    alpha = 1 - float(conf.iloc[0]) if len(conf) else 0.05
    labels = [(f"{e}  (vs {b})" if isinstance(b, str) else e) + (f"  Holm p {p:.2f}" if np.isfinite(p) else "")
              + (" *" if np.isfinite(p) and p < alpha else "") for e, b, p in zip(t["entry"], t["baseline"], holm)]
    # the learned entry of each input chosen on validation (headline.best_of_input): the one to quote
    best = t["best_of_input"].fillna(False).astype(bool).to_numpy() if "best_of_input" in t.columns \
        else np.zeros(len(t), bool)
    labels = [f"▶ {lab}" if b else lab for lab, b in zip(labels, best)]
    axes[0].set_yticks(y, labels, fontsize=7)
    for tick, b in zip(axes[0].get_yticklabels(), best):
        tick.set_fontweight("bold" if b else "normal")
    fig.suptitle("Headline: every split's configurations chosen on its validation compounds; blue = learned, "
                 "green = learned from Cell Painting only, grey = raw baselines; ▶ bold: primary comparisons, per "
                 f"input the learned configuration chosen on validation in every split\nHolm p: the difference's "
                 f"p-value adjusted over the inputs (▶) or over every learned entry (exploratory) (* below {alpha:g})",
                 fontsize=10)
    save_figure(fig, out)
