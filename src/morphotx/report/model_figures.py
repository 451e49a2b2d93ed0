"""Figures of the models themselves: training curves, embedding maps, latent arithmetic and
reconstruction (one function per figure rule, drawn from the workflow's tables).
"""

from __future__ import annotations

import logging
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .. import schema as S  # noqa: E402
from ..io import atomic_directory, read_table  # noqa: E402
from ..settings import FigureSettings  # noqa: E402
from .plotting import (  # noqa: E402
    empty_panel,
    model_panels,
    panel_grid,
    save_figure,
)

log = logging.getLogger(__name__)


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
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``save_figure``).
    """
    by_model = {m: [p for p in histories if f"/models/{m}/" in p] for m in models}
    fig, axes = panel_grid(len(by_model))
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
    save_figure(fig, out)


UMAP_JIT_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.distances")


def cache_umap_jit() -> int:
    """Turn numba's on-disk cache on for umap-learn's jitted functions that the library leaves
    uncached; returns how many it turned on (0 where numba cannot cache, e.g. a read-only install
    with no user cache directory: then they compile as before).

    Why: every process that fits its first UMAP compiles them, the maps job's largest single
    cost on the demo. With the cache, the first maps job
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
            save_figure(fig, os.path.join(tmp, f"{name}.png"))


def arithmetic_distances(distances: str, out: str):
    """Chow 2022's latent arithmetic, one panel per VAE: box plots of the L2 distance between the
    predicted (A − DMSO + B) and the real A∩B mean profile, in VAE, PCA and raw space, each with its
    label-shuffled control.

    Parameters
    ----------
    distances : str
        The combined latent-arithmetic ``distances`` table.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``save_figure``).
    """
    fig, panels = model_panels(read_table(distances), "no latent arithmetic: no compound with two MoAs that both "
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
    save_figure(fig, out)


def _cluster_order(M: np.ndarray) -> np.ndarray:
    """Leaf order of an average-linkage clustering of the rows of ``M`` (identity below 3 rows)."""
    from scipy.cluster.hierarchy import leaves_list, linkage

    if len(M) < 3 or not np.isfinite(M).all():
        return np.arange(len(M))
    return leaves_list(linkage(M, method="average", metric="euclidean"))


def traversal_heatmaps(traversal: str, out: str):
    """Chow 2022's traversal heatmaps: per latent unit, the decoded difference per feature group,
    each unit's row scaled to its largest absolute value, latent units and groups ordered by
    hierarchical clustering.

    Parameters
    ----------
    traversal : str
        The leaderboard's combined ``all_arithmetic_traversal`` table (Parquet) of every arithmetic job.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``save_figure``).
    """
    fig, panels = model_panels(read_table(traversal), "no VAE with Cell Painting input", (5.5, 4.2))
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
    fig.suptitle("Latent traversal (Chow 2022): Cell Painting feature groups (compartment × channel) moved by each "
                 "latent unit")
    save_figure(fig, out)


def reconstruction_r2(table: str, out: str):
    """Per-feature R² on held-out treatments: the translator's Cell Painting predictions from
    L1000 (Saha 2025) and each VAE's reconstruction of its input (Chow 2022), first seed; beside it
    Chow 2022's distribution comparison per feature: the earth mover's distance between the real
    held-out values and the reconstructed ones, and (VAEs) profiles simulated from the prior.

    Parameters
    ----------
    table : str
        The leaderboard's combined ``all_reconstruction`` table (Parquet) of every reconstruction job.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``save_figure``).
    """
    t = read_table(table)
    n_models = t["model"].nunique() if "model" in t.columns else 0  # no decoder model: a table without columns
    width = max(5.0, 0.7 * max(n_models, 1) + 2)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(2 * width, 4.2), layout="constrained")
    if t.empty:
        empty_panel(ax, "no translator or VAE")
        ax2.set_axis_off()
        save_figure(fig, out)
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
                      "reconstructed (blue), real vs decoded N(0, I) draws (orange; Chow 2022 Fig 2)", fontsize=8)
    else:
        ax2.set_axis_off()
    fig.suptitle("Reconstruction: translator L1000 → Cell Painting (Saha 2025) and VAE reconstructions (Chow 2022)")
    save_figure(fig, out)


def reconstruction_distributions(samples: str, out: str):
    """Chow 2022 Table 1: per held-out treatment, the earth mover's distance between its real and
    reconstructed feature values, for each model and (VAEs) its shuffled control; whiskers at the
    5th and 95th percentiles (the table's range), mean EMD and MSE under each box.

    Parameters
    ----------
    samples : str
        The leaderboard's combined ``all_reconstruction_samples`` table (Parquet) of every reconstruction job.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``save_figure``).
    """
    t = read_table(samples)
    fig, panels = model_panels(t, "no translator or VAE", (4.2, 3.6))
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
    fig.suptitle("Reconstruction of held-out treatments vs the shuffled control (Chow 2022, Table 1): real vs "
                 "reconstructed feature values per sample; whiskers 5–95 %; model's scaled units")
    save_figure(fig, out)


def shuffled_control_curves(curves: str, out: str):
    """Chow 2022 S1–S3 Figs: training and validation loss per epoch of each VAE on real profiles
    and of its shuffled control (every feature permuted across rows), first fold, first seed.

    Parameters
    ----------
    curves : str
        The leaderboard's combined ``all_reconstruction_curves`` table (Parquet) of every reconstruction job.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``save_figure``).
    """
    t = read_table(curves)
    t = t[t["family"] == "vae"] if len(t) else t
    fig, panels = model_panels(t, "no VAE (or reconstruction.shuffled_control is off)", (4.2, 3.4))
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
    fig.suptitle("VAE loss on real vs feature-shuffled profiles (Chow 2022, S1–S3 Figs; first fold)")
    save_figure(fig, out)


def cross_modality(zscores: pd.DataFrame, metric: str = "l2_z", max_sd: float = 3.0) -> pd.DataFrame:
    """Chow 2022's Fig 5 comparison (the data of :func:`arithmetic_modalities`; here, not in
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
    """Chow 2022 Fig 5: per polypharmacology combination A∩B, the latent-arithmetic z-score (L2
    distance to the real A∩B against the label-shuffled predictions) of the L1000 VAE against the
    Cell Painting VAE of the same variant (mean over seeds), points beyond 3 SD excluded, the five
    best-predicted combinations (lowest sum of the two z-scores) labelled.

    Parameters
    ----------
    zscores : str
        The leaderboard's combined ``all_arithmetic_zscores`` table (Parquet) of every arithmetic job.
    out : str
        The 300 dpi PNG; the PDF and the report's screen rendition are written beside it (``save_figure``).
    """
    t = cross_modality(read_table(zscores))
    pairs = list(t[["model_cp", "model_l1000"]].drop_duplicates().itertuples(index=False, name=None))
    fig, axes = panel_grid(max(1, len(pairs)), ncols=3, size=(4.4, 4.0))
    if not pairs:
        empty_panel(axes[0], "needs a Cell Painting VAE and an L1000 VAE of the same variant with latent arithmetic")
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
    fig.suptitle("Latent arithmetic per A∩B combination, L1000 vs Cell Painting VAEs (Chow 2022, Fig 5); z < 0: "
                 "better than the label-shuffled controls; five best labelled")
    save_figure(fig, out)
