"""Figures: a 300 dpi PNG plus a PDF and a small screen PNG (the report's) for each, and multi-model panels
with one legend off the data."""

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from morphotx.report import figures as F
from morphotx.report import plotting, score_figures


def _curves(n_sources: int) -> pd.DataFrame:
    rows = [{"curve": "enrichment", "level": level, "source": f"m{i}", "view": "both", "variant": level,
             "x": x, "value": 1.0 + i + x, "seed": seed}
            for i in range(n_sources) for level in ("uncollapsed", "collapsed") for x in (1, 2, 3) for seed in (0, 1)]
    return pd.DataFrame(rows)


def test_multi_model_figure_writes_png_and_pdf_with_one_legend_outside_the_panels(tmp_path, monkeypatch):
    """18 models on two panels: no legend on any panel, one figure legend naming each model once,
    lying outside every panel; written as a 300 dpi PNG and a PDF."""
    table = tmp_path / "curves.parquet"
    _curves(18).to_parquet(table)
    seen = {}
    save = plotting.save_figure

    def inspect_then_save(fig, path):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        seen["axes_legends"] = [ax.get_legend() for ax in fig.axes]
        seen["labels"] = [[t.get_text() for t in leg.get_texts()] for leg in fig.legends]
        boxes = [ax.get_window_extent(renderer) for ax in fig.axes]
        seen["overlaps"] = [leg.get_window_extent(renderer).overlaps(b) for leg in fig.legends for b in boxes]
        save(fig, path)

    monkeypatch.setattr(plotting, "save_figure", inspect_then_save)
    out = tmp_path / "figures" / "enrichment.png"
    F.enrichment(str(table), str(out))
    assert seen["axes_legends"] == [None, None]
    assert seen["labels"] == [sorted(f"m{i} (both)" for i in range(18))]  # drawing order: sorted sources
    assert not any(seen["overlaps"])
    with Image.open(out) as im:
        assert np.allclose(im.info["dpi"], (300, 300), atol=0.01)
    assert out.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    # no temporaries
    assert sorted(p.name for p in out.parent.iterdir()) == ["enrichment.pdf", "enrichment.png", "enrichment.screen.png"]


def test_screen_rendition_is_a_third_of_the_pixels_in_a_palette(tmp_path):
    """The report's copy of a figure (``<name>.screen.png``) is the same drawing at 100 dpi: a third
    of the 300 dpi PNG's width and height, a 256-colour palette, and a small fraction of its bytes."""
    table = tmp_path / "curves.parquet"
    _curves(18).to_parquet(table)
    out = tmp_path / "knn_vs_k.png"
    F.knn_vs_k(str(table), str(out))
    screen = Path(plotting.screen_path(str(out)))
    assert screen == tmp_path / "knn_vs_k.screen.png"
    with Image.open(out) as full, Image.open(screen) as small:
        assert np.allclose(small.info["dpi"], (100, 100), atol=0.01)
        assert small.mode == "P" and len(small.getpalette()) // 3 <= 256
        assert all(abs(3 * s - f) <= 3 for s, f in zip(small.size, full.size)), (small.size, full.size)
        # same picture: the small one, scaled up, is close to the full one (white background, dark ink)
        up = np.asarray(small.convert("L").resize(full.size, Image.Resampling.BILINEAR), dtype=float)
        ref = np.asarray(full.convert("L"), dtype=float)
        assert np.abs(up - ref).mean() < 10
    assert screen.stat().st_size < out.stat().st_size / 5


def test_headline_forest_plot_names_each_learned_entry_s_holm_p(tmp_path, monkeypatch):
    from test_headline import config, flat_raw_baselines  # the headline tests' classification rows

    from morphotx.report import headline as H

    reps = [(f, 0) for f in range(5)]
    cls = flat_raw_baselines(reps)
    cls += config("good", "both", "collapsed", "knn", [0.65] * 5, [0.70, 0.72, 0.74, 0.71, 0.73], reps=reps)
    cls += config("flat", "both", "collapsed", "knn", [0.6] * 5, [0.40, 0.60, 0.50, 0.55, 0.45], reps=reps)
    table = tmp_path / "headline.parquet"
    H.headline_frame(pd.DataFrame(cls), None).to_parquet(table)
    seen = {}
    save = plotting.save_figure

    def inspect_then_save(fig, path):
        seen["labels"] = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        seen["bold"] = [t.get_text() for t in fig.axes[0].get_yticklabels() if t.get_fontweight() == "bold"]
        seen["title"] = fig._suptitle.get_text()
        save(fig, path)

    monkeypatch.setattr(score_figures, "save_figure", inspect_then_save)
    F.headline(str(table), str(tmp_path / "headline.png"))
    chosen = [x for x in seen["labels"] if x.startswith("▶ learned, chosen on validation")]  # primary: marked, bold
    good = [x for x in seen["labels"] if x.startswith("good")]
    flat = [x for x in seen["labels"] if x.startswith("flat")]
    assert len(chosen) == 1 and chosen[0].endswith(" *") and "Holm p 0.00" in chosen[0]
    assert good and good[0].endswith(" *") and "Holm p 0.00" in good[0]
    assert flat and "Holm p" in flat[0] and not flat[0].endswith("*")
    assert seen["bold"] == chosen and "▶ bold: primary comparisons" in seen["title"]
    assert not any("Holm" in x for x in seen["labels"] if x.startswith("raw"))
    assert "over every learned entry (exploratory) (* below 0.05)" in seen["title"]


def test_headline_forest_plot_of_moa_map_and_of_a_headline_without_scores(tmp_path, monkeypatch):
    """``split.mode: moa_disjoint`` (the headline in MoA mAP) and one compound per MoA (no
    classifier applicable, so no macro-F1 column at all): the figure draws the table's own metric,
    or says that nothing was scored and why, instead of failing (bad-input cases 30 and 9)."""
    from test_headline import config

    from morphotx.report import headline as H

    reps = [(f, 0) for f in range(3)]
    cls = []
    for view, t in {"cp": 0.3, "l1000": 0.2, "both": 0.5}.items():
        cls += config("raw", view, "collapsed", "knn", [t] * 3, [t, t + 0.01, t - 0.01], reps=reps)
    cls += config("good", "both", "collapsed", "knn", [0.65] * 3, [0.70, 0.72, 0.74], reps=reps)
    t = H.headline_frame(pd.DataFrame(cls), None)
    as_map = t.drop(columns=[c for c in t.columns if c.startswith("moa_map")]).rename(
        columns=lambda c: c.replace("macro_f1", "moa_map"))  # the same numbers as a zero-shot headline
    as_map.to_parquet(tmp_path / "map.parquet")
    seen = {}
    save = plotting.save_figure

    def inspect_then_save(fig, path):
        seen[Path(path).stem] = [ax.get_xlabel() for ax in fig.axes] + [t.get_text() for t in fig.texts]
        save(fig, path)

    monkeypatch.setattr(score_figures, "save_figure", inspect_then_save)
    F.headline(str(tmp_path / "map.parquet"), str(tmp_path / "map.png"))
    assert seen["map"][1] == "test MoA mAP (mean over splits, 95 % CI)", seen["map"]
    # every classifier not applicable: no metric column; each entry's status carries the reason
    reason = "no validation or test MoA has a training compound (a MoA-disjoint split)"
    none = pd.DataFrame(cls).drop(columns=["macro_f1"]).assign(status="not_applicable", reason=reason)
    table = H.headline_frame(none, None)
    assert table["status"].str.contains(reason, regex=False).all() and table["macro_f1"].isna().all()
    table.to_parquet(tmp_path / "none.parquet")
    F.headline(str(tmp_path / "none.parquet"), str(tmp_path / "none.png"))
    assert "no entry has a test macro-F1" in seen["none"][-1] and "training compound" in seen["none"][-1]
    assert (tmp_path / "none.png").stat().st_size > 0 and (tmp_path / "none.pdf").exists()


def _umap_cosine_in_a_new_process() -> list[str]:
    """In a fresh interpreter: turn the cache on, call one of umap-learn's jitted functions, and
    print how many functions were turned on, the result, and the function's cache hits."""
    import subprocess
    import sys

    code = ("import numpy as np, umap.distances as d; from morphotx.report.figures import cache_umap_jit; "
            "n = cache_umap_jit(); x = np.arange(1.0, 6.0); v = d.cosine(x, x[::-1].copy()); "
            "print(n, repr(float(v)), sum(d.cosine.stats.cache_hits.values()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_umap_jit_compiled_once_then_loaded_from_numba_s_cache():
    """cache_umap_jit turns numba's disk cache on for umap-learn's uncached jitted functions: what
    one process compiles, the next one loads (a cache hit) and computes the same value with."""
    first, second = _umap_cosine_in_a_new_process(), _umap_cosine_in_a_new_process()
    assert int(first[0]) >= 5 and first[:2] == second[:2]  # the same functions turned on, the same value
    assert int(second[2]) >= 1  # loaded from the cache the first process wrote (or found)
