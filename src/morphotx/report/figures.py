"""The study's figures, drawn from the leaderboard's long tables (labelled axes, legends).

One function per figure; each takes table paths and writes one figure (or a directory of figures,
one per model) atomically, each as a 300 dpi PNG plus a PDF vector copy and a screen rendition
(``<name>.screen.png``, 100 dpi: the one the HTML report embeds) beside it (``_save``). An empty
input draws a panel that says what is missing instead of failing.
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

from .. import schema as S  # noqa: E402
from ..io import atomic_directory, atomic_outputs, read_table  # noqa: E402
from ..settings import FigureSettings  # noqa: E402

log = logging.getLogger(__name__)

VARIANT_COLORS = {"uncollapsed": "tab:blue", "raw+uncollapsed": "tab:orange", "collapsed": "tab:green",
                  "raw+collapsed": "tab:pink"}  # the study's Fig 2/3 colours


DPI = 300  # the PNG's resolution (publication grade; a file beside the report, not in it)
VECTOR = ".pdf"  # every figure also as a vector file beside its PNG (text kept as editable text)
# The report's copy: Snakemake's --report embeds every file it shows, and 62 figures at 300 dpi
# made the demo's report.html ~51 MB (slow to open). The screen rendition is drawn at 100 dpi
# (1/9 of the pixels) and stored with a 256-colour palette (matplotlib's own PNG at 100 dpi is
# still ~1/4 of the 300 dpi file; the palette cuts it ~4× more, without visible change to lines,
# text or the 256-entry colour maps).
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


def _save(fig, path: str):
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


def _legend_outside(fig, axes, title: str | None = None, fontsize=7):
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


def _empty(ax, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_axis_off()


def source_colour(source: str, view: str = ""):
    """One colour per model and view in every figure and panel: a stable hash of the name into
    matplotlib's tab20 (raw features: greys).
    """
    if source == "raw":
        return {"cp": "0.15", "l1000": "0.45", "both": "0.65"}.get(view, "0.3")
    return plt.get_cmap("tab20")(zlib.crc32(f"{source}|{view}".encode()) % 20)


def _label(source: str, view: str) -> str:
    return f"raw {view}" if source == "raw" else f"{source} ({view})"


def _grid(n: int, ncols: int = 4, size=(3.6, 2.8)):
    ncols = max(1, min(ncols, n))
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    return fig, axes.flat


# ---------------------------------------------------------------------------------------------
def loss_curves(histories: list[str], models: list[str], out: str):
    """Training and validation loss per epoch, one panel per model, one line pair per seed; the
    validation MoA mAP (the checkpoint-selection metric, right axis, dotted) where recorded, with
    the kept epoch marked. ``histories``: the ``history.csv`` files, each under
    ``.../models/<model>/``; one panel per name in ``models``.

    Parameters
    ----------
    histories : list of str
        The ``history.csv`` files to draw (the rule: every seed's, first fold), each under
        ``.../models/<model>/``; a file is drawn in the panel of the model named in its path.
    models : list of str
        The models, one panel each (in sorted order); a model without a history gets a panel without lines.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``_save``).
    """
    by_model = {m: [p for p in histories if f"/models/{m}/" in p] for m in models}
    fig, axes = _grid(len(by_model))
    for ax, (model, paths) in zip(axes, sorted(by_model.items())):
        right = None
        for i, p in enumerate(sorted(paths)):
            h = pd.read_csv(p)
            seed = os.path.basename(os.path.dirname(p))
            ax.plot(h["epoch"], h["train_loss"], color=f"C{i}", lw=1, label=f"train {seed}")
            if "val_loss" in h:
                ax.plot(h["epoch"], h["val_loss"], color=f"C{i}", lw=1, ls="--", label=f"validation {seed}")
            if "best" in h and h["best"].any():
                ax.axvline(int(h.loc[h["best"].astype(bool), "epoch"].iloc[-1]), color=f"C{i}", lw=0.6, alpha=0.6)
            if "past_early_stop" in h and h["past_early_stop"].astype(bool).any():  # train.full_curve
                stop = int(h.loc[~h["past_early_stop"].astype(bool), "epoch"].iloc[-1])
                ax.axvline(stop, color=f"C{i}", lw=0.8, ls="-.", alpha=0.8)
                ax.axvspan(stop, int(h["epoch"].iloc[-1]), color="0.9", zorder=0)
            if "val_map" in h and h["val_map"].notna().any():
                right = right or ax.twinx()
                right.plot(h["epoch"], h["val_map"], color=f"C{i}", lw=1, ls=":")
                right.set_ylabel("validation MoA mAP (dotted)", fontsize=7)
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend(fontsize=6)
    fig.suptitle("Training (solid) and validation (dashed) loss, validation MoA mAP (dotted); vertical line = "
                 "kept epoch;\ndash-dot line and grey = where early stopping stops and the epochs after it "
                 "(train.full_curve); validation = held-out validation compounds (first fold)")
    _save(fig, out)


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
                    _empty(ax, f"{_label(source, view)}, {clf}: no MoA with F1 > 0")
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
                ax.set_title(f"Per-MoA F1 on test compounds, {clf}: {_label(source, view)}", fontsize=9)
            fig.tight_layout()
            _save(fig, os.path.join(tmp, f"{source}_{view}.png"))


# umap-learn's jitted functions that its own code leaves uncached (pinned umap-learn 0.5.12)
UMAP_JIT_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.distances")


def cache_umap_jit() -> int:
    """Turn numba's on-disk cache on for umap-learn's jitted functions that the library leaves
    uncached; returns how many it turned on (0 where numba cannot cache, e.g. a read-only install
    with no user cache directory: then they compile as before).

    Why: every process that fits its first UMAP compiles them, ~12 CPU-s on the development
    machine (the maps job's largest single cost on the demo). With the cache, the first maps job
    after installing compiles them once and numba writes the machine code beside umap-learn's
    source (its ``__pycache__``, or numba's user cache directory when that is read-only), as it
    does for pynndescent's functions, which the library marks ``cache=True`` itself; later jobs
    load it in under a second. The same numba mechanism (``Dispatcher.enable_caching``, what
    ``cache=True`` calls), the same machine code, so the maps are the same (tested). Must run
    before the process's first UMAP fit.
    """
    import importlib

    try:  # numba's internals (stable since 0.49); another numba only means no cache
        from numba.core.caching import NullCache
        from numba.core.registry import CPUDispatcher
    except ImportError as e:
        log.info("numba's cache is not reachable here (%s); umap-learn compiles in every process", e)
        return 0
    n = 0
    for name in UMAP_JIT_MODULES:
        mod = importlib.import_module(name)
        for f in vars(mod).values():
            if isinstance(f, CPUDispatcher) and f.__module__ == name and isinstance(getattr(f, "_cache", None), NullCache):
                try:
                    f.enable_caching()
                except RuntimeError as e:  # numba: "cannot cache function ...: no locator available"
                    log.info("numba cannot cache umap-learn's %s (%s); it compiles in every process", name, e)
                    return n
                n += 1
    return n


def embedding_maps(inputs: dict[str, str], outdir: str, settings: FigureSettings = FigureSettings()):
    """UMAP and t-SNE of collapsed embeddings (treatments, DMSO left out), coloured by MoA; circles
    are training compounds, crosses test compounds, grey multi-MoA or unannotated. ``inputs``:
    one map per ``{name: table}``; ``settings``: the ``figures`` config section (seed, UMAP
    neighbours, t-SNE perplexity).

    Parameters
    ----------
    inputs : dict of str to str
        ``{name: path}`` of collapsed embedding (or raw profile) tables, one figure ``<name>.png`` each
        (the rule: every model's primary view, first fold and seed, and the raw Cell Painting and
        L1000 profiles).
    outdir : str
        The directory written (atomically, replacing an earlier one), with each figure's PDF and
        screen rendition.
    settings : FigureSettings, default FigureSettings()
        The ``figures`` config section: the random seed of UMAP and t-SNE (0), UMAP's number of
        neighbours (15) and t-SNE's perplexity (30).
    """
    import umap
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import normalize

    cache_umap_jit()
    with atomic_directory(outdir) as tmp:
        for name, path in sorted(inputs.items()):
            df = read_table(path)
            df = df[~df[S.IS_CONTROL].astype(bool)].reset_index(drop=True)
            cols = [c for c in df.columns if c.startswith("emb_")] or S.feature_columns(df)
            X = normalize(np.nan_to_num(df[cols].to_numpy(np.float64)))
            moa = df[S.MOA].map(lambda m: m[0] if len(m) == 1 else "").to_numpy()
            names = sorted(set(moa) - {""})
            cmap = plt.get_cmap("tab20", max(len(names), 1))
            color = {m: cmap(i) for i, m in enumerate(names)}
            test = (df[S.SPLIT] == "test").to_numpy()
            fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
            seed = settings.seed
            maps = {"UMAP": umap.UMAP(n_neighbors=min(settings.umap_neighbors, len(X) - 1), random_state=seed,
                                      n_jobs=1, metric="cosine").fit_transform(X),
                    "t-SNE": TSNE(perplexity=min(settings.tsne_perplexity, (len(X) - 1) / 3), random_state=seed,
                                  init="pca").fit_transform(X)}
            for ax, (title, Y) in zip(axes, maps.items()):
                multi = moa == ""
                ax.scatter(Y[multi, 0], Y[multi, 1], s=6, c="lightgrey", label="multi-MoA / unannotated")
                for m in names:
                    sel = moa == m
                    ax.scatter(Y[sel & ~test, 0], Y[sel & ~test, 1], s=9, color=color[m], label=m)
                    ax.scatter(Y[sel & test, 0], Y[sel & test, 1], s=22, color=color[m], marker="x")
                ax.set_title(f"{title} of collapsed embeddings: {name}")
                ax.set_xlabel(f"{title} 1")
                ax.set_ylabel(f"{title} 2")
            handles, labels = axes[0].get_legend_handles_labels()
            fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7,
                       title="MoA (x = test compound)")
            _save(fig, os.path.join(tmp, f"{name}.png"))


CURVE_LABELS = {"knn_cv_macro_f1": "grouped-CV macro-F1 (training compounds)",
                "knn_validation_macro_f1": "macro-F1 (validation compounds)"}
BAND_MAX_LINES = 8  # a panel with more lines draws no ± sd bands: overlapping bands hide each other


def _curve_plot(curves: pd.DataFrame, names: list[str], levels, ylabel, xlabel, title, out, logy=False):
    """One panel per curve (rows) and level (columns), one line per source and view in its
    :func:`source_colour` (mean over repetitions; a ± sd band where a panel has at most
    ``BAND_MAX_LINES`` lines and the axis is linear), and one legend for all panels below them.
    """
    import textwrap

    fig, axes = plt.subplots(len(names), len(levels), figsize=(5.2 * len(levels), 3.4 * len(names)), squeeze=False,
                             layout="constrained")
    for r, curve in enumerate(names):
        for c, level in enumerate(levels):
            ax = axes[r, c]
            d = curves[(curves["curve"] == curve) & (curves["level"] == level)] if len(curves) else curves
            if d is None or d.empty:
                _empty(ax, f"no {curve} curve at the {level} level")
                continue
            d = d.replace([np.inf, -np.inf], np.nan)
            groups = d.groupby(["source", "view"])
            bands = not logy and groups.ngroups <= BAND_MAX_LINES  # a mean − sd band is meaningless on a log axis
            for (source, view), g in groups:
                m = g.groupby("x")["value"].agg(["mean", "std"])
                ls = "--" if source == "raw" else "-"
                col = source_colour(source, view)
                ax.plot(m.index, m["mean"], ls=ls, lw=1.2, color=col, label=_label(source, view))
                if bands:
                    ax.fill_between(m.index, m["mean"] - m["std"].fillna(0), m["mean"] + m["std"].fillna(0),
                                    color=col, alpha=0.10)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            short = CURVE_LABELS.get(curve, curve.split("_")[-1])
            ax.set_title(f"{level} embeddings" + (f": {short}" if len(names) > 1 else ""), fontsize=9)
            if logy:
                ax.set_yscale("log")
    _legend_outside(fig, axes.flat, title="source (view); dashed = raw features")
    fig.suptitle(textwrap.fill(title, 110), fontsize=10)
    _save(fig, out)


def enrichment(curves: str, out: str):
    """MOAProfiler's enrichment figure: the odds ratio that strongly correlated pairs share a MoA vs
    the PCC percentile threshold, per level, source and view (log scale; dashed = raw features).

    Parameters
    ----------
    curves : str
        The combined ``curves`` table of every evaluation job (rows ``curve == "enrichment"``).
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``_save``).
    """
    c = read_table(curves)
    _curve_plot(c, ["enrichment"], ["uncollapsed", "collapsed"], "enrichment (odds ratio, one-sided Fisher)",
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
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``_save``).
    """
    c = read_table(curves)
    picks = [n for n in ("knn_validation_macro_f1", "knn_cv_macro_f1") if len(c) and (c["curve"] == n).any()]
    pick = picks[0] if picks else "knn_validation_macro_f1"
    if len(c) and "variant" in c.columns:  # the selection curve of the embedding alone, not of embedding + raw
        c = c[(c["curve"] != pick) | (c["variant"] == c["level"])]
    where = "validation compounds" if pick == "knn_validation_macro_f1" else "grouped CV on training compounds"
    _curve_plot(c, ["knn_f1", "knn_precision", "knn_recall", pick], ["uncollapsed", "collapsed"],
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
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``_save``).
    """
    m = read_table(maps)
    fig, axes = plt.subplots(1, 2, figsize=(15, 6.5), layout="constrained")
    for ax, (kind, title) in zip(axes, [("replicate", "Replicate retrieval vs DMSO (per test treatment)"),
                                        ("moa", "MoA retrieval across compounds (per MoA)")]):
        d = m[m["kind"] == kind] if len(m) else m
        if d.empty:
            _empty(ax, f"no {kind} mAP (needs DMSO rows / MoAs with two test compounds)")
            continue
        groups = sorted(d.groupby(["source", "view"]).groups)
        data = [d[(d["source"] == s) & (d["view"] == v)]["mean_average_precision"].dropna().to_numpy() for s, v in groups]
        ax.boxplot(data, vert=False, tick_labels=[_label(s, v) for s, v in groups])
        ax.set_xlabel("mean average precision (copairs)")
        ax.set_title(title)
        ax.set_xlim(0, 1)
    fig.suptitle("mAP distributions, all repetitions pooled")
    _save(fig, out)


def _model_panels(t: pd.DataFrame, empty_text: str, size):
    """One panel per model of a long table with a ``model`` column: (fig, [(ax, model, rows)])."""
    models = sorted(t["model"].unique()) if len(t) else []
    fig, axes = _grid(max(1, len(models)), ncols=3, size=size)
    if not models:
        _empty(axes[0], empty_text)
    return fig, [(ax, m, t[t["model"] == m]) for ax, m in zip(axes, models)]


def arithmetic_distances(distances: str, out: str):
    """Seed 002's latent arithmetic, one panel per VAE: box plots of the L2 distance between the
    predicted (A − DMSO + B) and the real A∩B mean profile, in VAE, PCA and raw space, each with its
    label-shuffled control.

    Parameters
    ----------
    distances : str
        The combined latent-arithmetic ``distances`` table.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``_save``).
    """
    fig, panels = _model_panels(read_table(distances), "no latent arithmetic: no compound with two MoAs that both "
                                "occur alone", (4.8, 3.6))
    for ax, model, g in panels:
        data, labels = [], []
        for method in ("vae", "pca", "raw"):
            for shuffled in (False, True):
                x = g[(g["method"] == method) & ((g["shuffle"] >= 0) == shuffled)]["l2"].to_numpy()
                data.append(x)
                labels.append(f"{method}{' shuffled' if shuffled else ''}")
        ax.boxplot(data, tick_labels=labels)
        ax.tick_params(axis="x", rotation=45, labelsize=7)
        ax.set_ylabel("L2 distance to real A∩B mean")
        ax.set_title(model, fontsize=9)
    fig.suptitle("Latent arithmetic A − DMSO + B vs real A∩B (lower is better; shuffled = label-permuted control)")
    _save(fig, out)


def _cluster_order(M: np.ndarray) -> np.ndarray:
    """Leaf order of an average-linkage clustering of the rows of ``M`` (identity below 3 rows)."""
    from scipy.cluster.hierarchy import leaves_list, linkage

    if len(M) < 3 or not np.isfinite(M).all():
        return np.arange(len(M))
    return leaves_list(linkage(M, method="average", metric="euclidean"))


def traversal_heatmaps(traversal: str, out: str):
    """Seed 002's traversal heatmaps: per latent unit, the decoded difference per feature group,
    each unit's row scaled to its largest absolute value, latent units and groups ordered by
    hierarchical clustering.

    Parameters
    ----------
    traversal : str
        The leaderboard's combined ``all_arithmetic_traversal`` table (Parquet) of every arithmetic job.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``_save``).
    """
    fig, panels = _model_panels(read_table(traversal), "no VAE with Cell Painting input", (5.5, 4.2))
    for ax, model, tm in panels:
        tm = tm[tm["seed"] == tm["seed"].min()]  # latent units of different seeds are not the same units
        g = tm.groupby(["latent", "group"])["mean_difference"].mean().unstack("group")
        M = g.to_numpy()
        peak = np.nanmax(np.abs(M), axis=1, keepdims=True)
        M = M / np.where(peak > 0, peak, 1)
        rows, cols = _cluster_order(M), _cluster_order(M.T)
        absolute = "difference" not in tm or (tm["difference"] == "absolute").all()
        im = ax.imshow(M[rows][:, cols].T, cmap="viridis" if absolute else "RdBu_r", vmin=0 if absolute else -1,
                       vmax=1, aspect="auto")
        ax.set_yticks(range(M.shape[1]), g.columns[cols], fontsize=6)
        ax.set_xticks(range(M.shape[0]), g.index[rows])
        ax.set_xlabel("latent unit (clustered)")
        ax.set_title(f"{model} (seed {tm['seed'].min()})", fontsize=9)
        fig.colorbar(im, ax=ax, label=("|decoded(+k) − decoded(−k)|" if absolute else "decoded(+k) − decoded(−k)")
                     + ", per unit / its maximum")
    fig.suptitle("Latent traversal (seed 002): Cell Painting feature groups (compartment × channel) moved by each "
                 "latent unit")
    _save(fig, out)


def reconstruction_r2(table: str, out: str):
    """Per-feature R² on held-out treatments: the translator's Cell Painting predictions from
    L1000 (study 000) and each VAE's reconstruction of its input (seed 002), first seed; beside it
    seed 002's distribution comparison per feature: the earth mover's distance between the real
    held-out values and the reconstructed ones, and (VAEs) profiles simulated from the prior.

    Parameters
    ----------
    table : str
        The leaderboard's combined ``all_reconstruction`` table (Parquet) of every reconstruction job.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``_save``).
    """
    t = read_table(table)
    n_models = t["model"].nunique() if "model" in t.columns else 0  # no decoder model: a table without columns
    width = max(5.0, 0.7 * max(n_models, 1) + 2)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(2 * width, 4.2), layout="constrained")
    if t.empty:
        _empty(ax, "no translator or VAE")
        ax2.set_axis_off()
        _save(fig, out)
        return
    t = t[t["seed"] == t["seed"].min()]
    models = sorted(t["model"].unique(), key=lambda m: (t.loc[t["model"] == m, "family"].iloc[0], m))
    data = [t.loc[t["model"] == m, "r2"].dropna().clip(-1, 1).to_numpy() for m in models]
    ax.boxplot(data, tick_labels=models, showfliers=False)
    for i, d in enumerate(data, start=1):
        if len(d):
            ax.text(i, 1.02, f"{np.median(d):.2f}", ha="center", va="bottom", fontsize=7)
    ax.axhline(0, color="grey", lw=0.8, ls="--")
    ax.set_ylim(-1.05, 1.12)
    ax.tick_params(axis="x", rotation=45, labelsize=7)
    n = int(t["n_treatments"].iloc[0])
    ax.set_ylabel("per-feature R² (clipped to [−1, 1])")
    ax.set_title(f"Held-out treatments (test split, fold {int(t['fold'].iloc[0])}, {n} treatments);\n"
                 "median above each box", fontsize=8)
    if "emd_reconstructed" in t:
        data, labels, colours = [], [], []
        for i, m in enumerate(models):
            g = t[t["model"] == m]
            for col, what, c in (("emd_reconstructed", "reconstructed", "tab:blue"),
                                 ("emd_simulated", "simulated", "tab:orange")):
                if g[col].notna().any():
                    data.append(g[col].dropna().to_numpy())
                    labels.append(f"{m} {what}")
                    colours.append(c)
        box = ax2.boxplot(data, tick_labels=labels, showfliers=False, patch_artist=True)
        for patch, c in zip(box["boxes"], colours):
            patch.set_facecolor(c)
            patch.set_alpha(0.5)
        ax2.tick_params(axis="x", rotation=60, labelsize=6)
        ax2.set_ylabel("per-feature EMD to the real values")
        ax2.set_title("Each feature's values over the held-out treatments, earth mover's distance:\nreal vs "
                      "reconstructed (blue), real vs decoded N(0, I) draws (orange; seed 002 Fig 2)", fontsize=8)
    else:
        ax2.set_axis_off()
    fig.suptitle("Reconstruction: translator L1000 → Cell Painting (study 000) and VAE reconstructions (seed 002)")
    _save(fig, out)


def reconstruction_distributions(samples: str, out: str):
    """Seed 002 Table 1: per held-out treatment, the earth mover's distance between its real and
    reconstructed feature values, for each model and (VAEs) its shuffled control; whiskers at the
    5th and 95th percentiles (the table's range), mean EMD and MSE under each box.

    Parameters
    ----------
    samples : str
        The leaderboard's combined ``all_reconstruction_samples`` table (Parquet) of every reconstruction job.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``_save``).
    """
    t = read_table(samples)
    fig, panels = _model_panels(t, "no translator or VAE", (4.2, 3.6))
    for ax, model, g in panels:
        g = g[g["seed"] == g["seed"].min()]
        kinds = [d for d in ("real", "shuffled") if (g["data"] == d).any()]
        data = [g.loc[g["data"] == d, "emd"].to_numpy() for d in kinds]
        names = {"real": "model", "shuffled": "shuffled control"}
        labels = [f"{names[d]}\nmean EMD {g.loc[g['data'] == d, 'emd'].mean():.3g}\n"
                  f"mean MSE {g.loc[g['data'] == d, 'mse'].mean():.3g}" for d in kinds]
        ax.boxplot(data, tick_labels=labels, whis=(5, 95), showfliers=False)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_ylabel("per-sample earth mover's distance")
        ax.set_title(f"{model} (seed {g['seed'].min()}, {int((g['data'] == 'real').sum())} treatments)", fontsize=9)
    fig.suptitle("Reconstruction of held-out treatments vs the shuffled control (seed 002, Table 1): real vs "
                 "reconstructed feature values per sample; whiskers 5–95 %; model's scaled units")
    _save(fig, out)


def shuffled_control_curves(curves: str, out: str):
    """Seed 002 S1–S3 Figs: training and validation loss per epoch of each VAE on real profiles
    and of its shuffled control (every feature permuted across rows), first fold, first seed.

    Parameters
    ----------
    curves : str
        The leaderboard's combined ``all_reconstruction_curves`` table (Parquet) of every reconstruction job.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``_save``).
    """
    t = read_table(curves)
    t = t[t["family"] == "vae"] if len(t) else t
    fig, panels = _model_panels(t, "no VAE (or reconstruction.shuffled_control is off)", (4.2, 3.4))
    for ax, model, g in panels:
        g = g[g["seed"] == g["seed"].min()]
        for d, colour, label in (("real", "tab:blue", "real"), ("shuffled", "tab:orange", "shuffled")):
            h = g[g["data"] == d].sort_values("epoch")
            if len(h):
                ax.plot(h["epoch"], h["train_loss"], color=colour, lw=1, label=f"{label} training")
                ax.plot(h["epoch"], h["val_loss"], color=colour, lw=1, ls="--", label=f"{label} validation")
        losses = g[["train_loss", "val_loss"]].to_numpy(float)
        if len(g) and (losses > 0).all() and losses.max() > 10 * losses.min():  # log only for a wide range
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (reconstruction + regulariser)")
        ax.set_title(model, fontsize=9)
        ax.legend(fontsize=6)
    fig.suptitle("VAE loss on real vs feature-shuffled profiles (seed 002, S1–S3 Figs; first fold)")
    _save(fig, out)


def cross_modality(zscores: pd.DataFrame, metric: str = "l2_z", max_sd: float = 3.0) -> pd.DataFrame:
    """Seed 002's Fig 5 comparison (the data of :func:`arithmetic_modalities`; here, not in
    :mod:`morphotx.evaluate.arithmetic`, so that the figures need no PyTorch): every Cell Painting VAE paired with every L1000 VAE of the
    same variant (``zscores`` rows of method ``vae`` with ``model``, ``variant``, ``input``,
    ``combination`` and ``metric``), one row per pair and combination both predicted: the mean
    ``metric`` over seeds of each (``cp``, ``l1000``) and ``outlier`` — beyond ``max_sd`` population
    SDs from the pair's mean in either modality (the paper leaves those out of its scatter).
    """
    cols = ["variant", "model_cp", "model_l1000", "combination", "cp", "l1000", "outlier"]
    if zscores.empty or not {"variant", "input"} <= set(zscores.columns):
        return pd.DataFrame(columns=cols)
    z = zscores[zscores["method"] == "vae"]
    means = z.groupby(["model", "combination"])[metric].mean()
    frames = []
    for v in ("mmd", "beta", "vanilla"):
        models = {i: sorted(z.loc[(z["variant"] == v) & (z["input"] == i), "model"].unique()) for i in ("cp", "l1000")}
        for a in models["cp"]:
            for b in models["l1000"]:
                d = pd.DataFrame({"cp": means[a], "l1000": means[b]}).dropna()
                sd = d.std(ddof=0).replace(0, np.inf)
                d["outlier"] = ((d - d.mean()).abs() > max_sd * sd).any(axis=1)
                frames.append(d.rename_axis("combination").reset_index().assign(variant=v, model_cp=a, model_l1000=b))
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def arithmetic_modalities(zscores: str, out: str):
    """Seed 002 Fig 5: per polypharmacology combination A∩B, the latent-arithmetic z-score (L2
    distance to the real A∩B against the label-shuffled predictions) of the L1000 VAE against the
    Cell Painting VAE of the same variant (mean over seeds), points beyond 3 SD excluded, the five
    best-predicted combinations (lowest sum of the two z-scores) labelled.

    Parameters
    ----------
    zscores : str
        The leaderboard's combined ``all_arithmetic_zscores`` table (Parquet) of every arithmetic job.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``_save``).
    """
    t = cross_modality(read_table(zscores))
    pairs = list(t[["model_cp", "model_l1000"]].drop_duplicates().itertuples(index=False, name=None))
    fig, axes = _grid(max(1, len(pairs)), ncols=3, size=(4.4, 4.0))
    if not pairs:
        _empty(axes[0], "needs a Cell Painting VAE and an L1000 VAE of the same variant with latent arithmetic")
    for ax, (a, b) in zip(axes, pairs):
        g = t[(t["model_cp"] == a) & (t["model_l1000"] == b)].set_index("combination")
        d, n_out = g[~g["outlier"].astype(bool)], int(g["outlier"].astype(bool).sum())
        ax.scatter(d["l1000"], d["cp"], s=12, alpha=0.7)
        for name, row in d.assign(total=d["cp"] + d["l1000"]).nsmallest(5, "total").iterrows():
            ax.annotate(name.replace("|", " ∩ "), (row["l1000"], row["cp"]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
        ax.axhline(0, color="grey", lw=0.6)
        ax.axvline(0, color="grey", lw=0.6)
        r = d["cp"].corr(d["l1000"]) if len(d) > 2 else np.nan
        ax.set_xlabel(f"{b}: L2 z-score (L1000)")
        ax.set_ylabel(f"{a}: L2 z-score (Cell Painting)")
        ax.set_title(f"{len(d)} combinations ({n_out} beyond 3 SD left out); Pearson r {r:.2f}",
                     fontsize=8)
    fig.suptitle("Latent arithmetic per A∩B combination, L1000 vs Cell Painting VAEs (seed 002, Fig 5); z < 0: "
                 "better than the label-shuffled controls; five best labelled")
    _save(fig, out)


MOAPROFILER_PANELS = [
    ("PCC of profile pairs by group (seed 001, Fig 3f)",
     [("pcc_same_compound", "same compound"), ("pcc_other_compound_same_moa", "other compound, same MoA"),
      ("pcc_other_compound_other_moa", "other compound, other MoA")]),
    ("PCC delta: same-MoA minus other-MoA pairs (seed 001)", [("pcc_delta", "PCC delta")]),
    ("Class-latent assignment, weighted F1 (seed 001)", [("class_latent_f1", "weighted F1")]),
    ("Held-out-compound votes, accuracy (seed 001, Fig 4)",
     [("individual_vote_accuracy", "individual vote"), ("aggregated_vote_accuracy", "aggregated vote")]),
]


def moaprofiler_summary(metrics: str, out: str):
    """Seed 001's embedding analyses side by side for every source and view: the three-group PCC
    comparison, the PCC delta, class-latent assignment and the held-out votes (test compounds,
    uncollapsed rows as the paper's well-level profiles; mean ± sd over repetitions).

    Parameters
    ----------
    metrics : str
        The leaderboard's combined ``all_embedding_metrics`` table (Parquet) of every evaluation job.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``_save``).
    """
    e = read_table(metrics)
    fig, axes = plt.subplots(len(MOAPROFILER_PANELS), 1, figsize=(11, 3.2 * len(MOAPROFILER_PANELS)),
                             layout="constrained")
    if len(e):
        e = e[(e["level"] == "uncollapsed") & (e["variant"] == "uncollapsed") & (e["status"] == "ok")]
    for ax, (title, metrics_) in zip(axes, MOAPROFILER_PANELS):
        d = e[e["metric"].isin([m for m, _ in metrics_]) & e["value"].notna()] if len(e) else e
        if d.empty:
            _empty(ax, f"{title}: no values")
            continue
        stats_ = d.groupby(["source", "view", "metric"])["value"].agg(["mean", "std"]).reset_index()
        names = sorted({(s, v) for s, v in zip(stats_["source"], stats_["view"])}, key=lambda t: (t[0] != "raw", t))
        x = np.arange(len(names))
        w = 0.8 / len(metrics_)
        for j, (m, label) in enumerate(metrics_):
            sm = stats_[stats_["metric"] == m].set_index(["source", "view"]).reindex(names)
            ax.bar(x + j * w - 0.4 + w / 2, sm["mean"], w, yerr=sm["std"].fillna(0), capsize=2, label=label)
        ax.set_xticks(x, [_label(s, v) for s, v in names], rotation=45, ha="right", fontsize=7)
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_title(title, fontsize=9)
        if len(metrics_) > 1:
            ax.legend(fontsize=7)
    fig.suptitle("MOAProfiler analyses on held-out compounds (uncollapsed rows; mean ± sd over repetitions)")
    _save(fig, out)


def leaderboard(board: str, out: str, top: int = 30):
    """Bar chart of the exploratory leaderboard's top rows by test macro-F1 (mean ± sd over
    repetitions; grey = raw baselines).

    Parameters
    ----------
    board : str
        The leaderboard Parquet file.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``_save``).
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
        _empty(ax, "empty leaderboard" if b.empty else "no classifier scored any test compound"
               + (":\n" + "\n".join(textwrap.wrap(reason.mode().iloc[0], 90)) if len(reason) else ""))
    else:
        b = scored.head(top).iloc[::-1]
        labels = [f"{_label(s, v)} · {var} · {c}" for s, v, var, c in zip(b["source"], b["view"], b["variant"],
                                                                           b["classifier"])]
        colors = ["tab:grey" if s == "raw" else "tab:blue" for s in b["source"]]
        ax.barh(range(len(b)), b["macro_f1_mean"], xerr=b["macro_f1_sd"].fillna(0), color=colors, capsize=2)
        ax.set_yticks(range(len(b)), labels, fontsize=7)
        ax.set_xlabel("macro F1 on test compounds (mean ± sd over repetitions)")
        ax.set_title(f"Exploratory leaderboard, top {len(b)} rows by test score (grey = raw baselines);\n"
                     "a maximum over many test scores — quote the headline instead", fontsize=10)
    _save(fig, out)


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
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``_save``).
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
        _save(fig, out)
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
    _save(fig, out)
