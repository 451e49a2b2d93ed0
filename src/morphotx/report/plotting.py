"""How every figure is saved and drawn alike: files, colours, panels, legends, curve panels.

Every figure is written by :func:`save_figure`: a 300 dpi PNG, a PDF vector copy and a screen
rendition (``<name>.screen.png``, 100 dpi: the one the HTML report embeds) beside it. A model and
view keep one colour in every figure (:func:`source_colour`); an empty input draws a panel that
says what is missing (:func:`empty_panel`) instead of failing.
"""

from __future__ import annotations

import io
import logging
import os
import textwrap
import zlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..io import atomic_outputs  # noqa: E402

log = logging.getLogger(__name__)

VARIANT_COLORS = {"uncollapsed": "tab:blue", "raw+uncollapsed": "tab:orange", "collapsed": "tab:green",
                  "raw+collapsed": "tab:pink"}  # the study's Fig 2/3 colours


DPI = 300  # the PNG's resolution (publication grade; a file beside the report, not in it)
VECTOR = ".pdf"  # every figure also as a vector file beside its PNG (text kept as editable text)
# The report's copy: Snakemake's --report embeds every file it shows, and the 300 dpi figures
# made report.html slow to open (docs/benchmarks.md). The screen rendition is drawn at 100 dpi
# (1/9 of the pixels) and stored with a 256-colour palette, which shrinks the file several times
# more without visible change to lines, text or the 256-entry colour maps.
SCREEN_DPI = 100
SCREEN = ".screen.png"
SCREEN_COLORS = 256
plt.rcParams["pdf.fonttype"] = 42  # TrueType fonts in the PDF: text stays text in an editor


def vector_path(png: str) -> str:
    """The vector copy of the figure written at ``png``: the same name with ``.pdf``."""
    return os.path.splitext(png)[0] + VECTOR


def screen_path(png: str) -> str:
    """The screen rendition of the figure written at ``png`` (what the HTML report embeds): the
    same name with ``.screen.png``, drawn at :data:`SCREEN_DPI`.
    """
    return os.path.splitext(png)[0] + SCREEN


def save_figure(fig, path: str):
    """Write ``fig`` as a 300 dpi PNG at ``path``, a PDF (:func:`vector_path`) and a 100 dpi PNG for
    the report (:func:`screen_path`) beside it, all atomically (renamed into place together) with
    the same permissions as the other outputs.
    """
    try:
        with atomic_outputs(path, vector_path(path), screen_path(path)) as (png, vector, screen):
            fig.savefig(png, dpi=DPI, bbox_inches="tight")
            fig.savefig(vector, bbox_inches="tight")
            _save_screen(fig, screen)
    finally:
        plt.close(fig)


def _save_screen(fig, path):
    """Write ``fig`` at ``path`` as the report's PNG: :data:`SCREEN_DPI`, :data:`SCREEN_COLORS`-colour
    palette (Pillow's fast octree quantizer), recorded as 100 dpi in the file.
    """
    from PIL import Image  # matplotlib's own dependency

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=SCREEN_DPI, bbox_inches="tight")
    buf.seek(0)
    with Image.open(buf) as im:
        pal = im.convert("RGB").quantize(SCREEN_COLORS, method=Image.Quantize.FASTOCTREE)
    pal.save(path, format="PNG", optimize=True, dpi=(SCREEN_DPI, SCREEN_DPI))


def legend_outside(fig, axes, title: str | None = None, fontsize=7):
    """One legend for every panel of ``fig``, below the panels (never on the data; a constrained
    layout makes room): the labelled lines of all ``axes``, each label once, in the order first
    drawn, in up to five columns.
    """
    seen = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncols=min(5, len(seen)),
                   fontsize=fontsize, title=title, title_fontsize=fontsize, frameon=False)


def empty_panel(ax, text):
    """``ax`` as a panel that says ``text`` (what is missing) instead of data."""
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_axis_off()


def source_colour(source: str, view: str = ""):
    """One colour per model and view in every figure and panel: a stable hash of the name into
    matplotlib's tab20 (raw features: greys).
    """
    if source == "raw":
        return {"cp": "0.15", "l1000": "0.45", "both": "0.65"}.get(view, "0.3")
    return plt.get_cmap("tab20")(zlib.crc32(f"{source}|{view}".encode()) % 20)


def source_label(source: str, view: str) -> str:
    """The legend label of a source and view (``raw cp``, ``<model> (<view>)``)."""
    return f"raw {view}" if source == "raw" else f"{source} ({view})"


def panel_grid(n: int, ncols: int = 4, size=(3.6, 2.8)):
    """A figure of ``n`` panels in up to ``ncols`` columns (the unused ones hidden): ``(fig, axes)``."""
    ncols = max(1, min(ncols, n))
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    return fig, axes.flat


CURVE_LABELS = {"knn_cv_macro_f1": "grouped-CV macro-F1 (training compounds)",
                "knn_validation_macro_f1": "macro-F1 (validation compounds)"}
BAND_MAX_LINES = 8  # a panel with more lines draws no ± sd bands: overlapping bands hide each other


def curve_plot(curves: pd.DataFrame, names: list[str], levels, ylabel, xlabel, title, out, logy=False):
    """One panel per curve (rows) and level (columns), one line per source and view in its
    :func:`source_colour` (mean over repetitions; a ± sd band where a panel has at most
    ``BAND_MAX_LINES`` lines and the axis is linear), and one legend for all panels below them.
    """
    fig, axes = plt.subplots(len(names), len(levels), figsize=(5.2 * len(levels), 3.4 * len(names)), squeeze=False,
                             layout="constrained")
    for r, curve in enumerate(names):
        for c, level in enumerate(levels):
            ax = axes[r, c]
            d = curves[(curves["curve"] == curve) & (curves["level"] == level)] if len(curves) else curves
            if d is None or d.empty:
                empty_panel(ax, f"no {curve} curve at the {level} level")
                continue
            d = d.replace([np.inf, -np.inf], np.nan)
            groups = d.groupby(["source", "view"])
            bands = not logy and groups.ngroups <= BAND_MAX_LINES  # a mean − sd band is meaningless on a log axis
            for (source, view), g in groups:
                m = g.groupby("x")["value"].agg(["mean", "std"])
                ls = "--" if source == "raw" else "-"
                col = source_colour(source, view)
                ax.plot(m.index, m["mean"], ls=ls, lw=1.2, color=col, label=source_label(source, view))
                if bands:
                    ax.fill_between(m.index, m["mean"] - m["std"].fillna(0), m["mean"] + m["std"].fillna(0),
                                    color=col, alpha=0.10)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            short = CURVE_LABELS.get(curve, curve.split("_")[-1])
            ax.set_title(f"{level} embeddings" + (f": {short}" if len(names) > 1 else ""), fontsize=9)
            if logy:
                ax.set_yscale("log")
    legend_outside(fig, axes.flat, title="source (view); dashed = raw features")
    fig.suptitle(textwrap.fill(title, 110), fontsize=10)
    save_figure(fig, out)


def model_panels(t: pd.DataFrame, empty_text: str, size):
    """One panel per model of a long table with a ``model`` column: (fig, [(ax, model, rows)])."""
    models = sorted(t["model"].unique()) if len(t) else []
    fig, axes = panel_grid(max(1, len(models)), ncols=3, size=size)
    if not models:
        empty_panel(axes[0], empty_text)
    return fig, [(ax, m, t[t["model"] == m]) for ax, m in zip(axes, models)]
