"""Controls of the headline statistic where the answer is known (``make bench-controls``).

The headline says whether a learned embedding beats the raw profiles. Before a "no gain" can be
read as evidence, the statistic must (a) rarely call a gain where there is none and (b) call a
gain where one was planted, at a screen size a user can plan for. This benchmark runs the
headline's own machinery — the compound split with re-drawn partitions
(:func:`morphotx.prepare.split.split_compounds_frame`), the evaluation's classifiers with validation-chosen
k and C (:func:`morphotx.evaluate.classify.classify_table`), the nested per-split selection and both
interval methods of :func:`morphotx.report.headline.headline_frame` — on data drawn here, where the
truth is known. Model training is not part of it: the "learned" views are built with a known
amount of MoA information, so the controls test the statistic, not the models.

**Data** (the second generator's model, ``benchmarks/independent_data.py``, at feature level and
with a planted view): MoAs of uneven size (Zipf-like, ≥ 2 compounds each) with per-MoA strengths;
a compound's latent state is its MoA prototype × strength plus a compound deviation; Cell
Painting is a random two-layer tanh network of it with Student-t noise (df 4) per replicate
(3 replicates); L1000 a sparse linear map with Gaussian noise (2 replicates). The **planted
view** of a compound is its raw profile beside a block carrying its MoA prototype (compound and
replicate noise added) scaled by ``gain``: information the raw profile lacks, as cross-modal
training would transfer it from L1000. ``gain = 0`` makes the block pure noise.

**Entries.** Raw Cell Painting, raw L1000 and raw early fusion (source ``raw``); the planted view
of Cell Painting (``cp``) and of early fusion (``both``) (source ``planted``). The headline's
primary comparisons are then "learned, chosen on validation (Cell Painting only)" vs raw Cell
Painting and "(Cell Painting + L1000)" vs the raw configuration chosen on validation. Classifiers
(``--classifiers``): kNN by default, at the replicate and the compound level (2 configurations per
view, chosen per split on validation; k chosen on validation).

**Negative control.** The planted data set (gain > 0), its MoA labels permuted across compounds
(the same permutation for every entry), ``--permutations`` times: no entry can predict permuted
labels, so every "above its baseline" is a false positive. Printed: the rate of "above" and of
any rejection (CI excluding zero either way), with Wilson 95 % intervals, for the compound
bootstrap and for the corrected t over splits.

**Positive control.** ``--replicates`` data sets per size in ``--sizes`` (compounds), drawn with
``--gain``: the rate of "above its baseline" per method and size, the mean Δ (its mean over the
data sets at the largest size is the planted gain's size) and the mean minimum detectable effect.

Writes ``<out>/controls.tsv`` (one row per data set and comparison) and ``<out>/controls.md``
(the tables printed). Seeded: the same arguments give the same tables.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from independent_data import _moa_sizes  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from morphotx import schema as S  # noqa: E402
from morphotx.evaluate.classify import classify_table  # noqa: E402
from morphotx.prepare.split import fold_of, split_compounds_frame  # noqa: E402
from morphotx.report import headline as H  # noqa: E402
from morphotx.report import selection  # noqa: E402
from morphotx.settings import EvaluateSettings  # noqa: E402

EVAL = EvaluateSettings(knn_k_max=30, logreg_c=[1.0, 100.0])
PRIMARY = {"cp": selection.chosen_name("cp"), "both": selection.chosen_name("both")}
# method: (table, column prefix, label); the naive bootstrap is printed to show what the
# rescaling changes
METHODS = {"naive": ("naive", "delta_boot"), "boot": ("rescaled", "delta_boot"), "cs": ("rescaled", "delta_cs"),
           "fold": ("rescaled", "delta_fold")}
LABELS = {"naive": "compound bootstrap, naive strata", "boot": "compound bootstrap (Rao–Wu rescaled)",
          "cs": "compound + split (τ²)", "fold": "corrected t over splits"}


def simulate(n_compounds: int, seed: int, gain: float, n_moas: int | None = None) -> dict:
    """One data set: replicate metadata and the matrices of every view (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_moas = n_moas or max(4, n_compounds // 8)
    sizes = _moa_sizes(rng, n_compounds, n_moas)
    moa = np.repeat(np.arange(n_moas), sizes)
    latent, p_cp, g_l1 = 6, 40, 60
    proto = rng.normal(size=(n_moas, latent))
    strength = rng.uniform(0.3, 1.2, n_moas)
    z = proto[moa] * strength[moa, None] + 0.6 * rng.normal(size=(n_compounds, latent))
    a, b, c = rng.normal(size=(latent, 32)), rng.normal(size=32), rng.normal(size=(32, p_cp)) / np.sqrt(32)
    sparse = rng.normal(size=(latent, g_l1)) * (rng.random((latent, g_l1)) < 0.15)
    planted = proto[moa] + 0.7 * rng.normal(size=(n_compounds, latent))  # MoA information raw lacks
    rows, cp, l1, block = [], [], [], []
    for r in range(3):
        cp.append(np.tanh(z @ a + b) @ c + 0.9 * rng.standard_t(4, size=(n_compounds, p_cp)))
        l1.append(z @ sparse + 1.2 * rng.normal(size=(n_compounds, g_l1)))
        block.append(planted + 0.7 * rng.normal(size=(n_compounds, latent)))
        rows.append(pd.DataFrame({S.PERT: [f"C{i:04d}" for i in range(n_compounds)], "replicate": r}))
    meta = pd.concat(rows, ignore_index=True)
    cp, l1, block = np.vstack(cp), np.vstack(l1), np.vstack(block)
    std = lambda x: (x - x.mean(0)) / x.std(0)  # noqa: E731
    views = {"cp": std(cp), "l1000": std(l1), "both": np.hstack([std(cp), std(l1)])}
    extra = gain * std(block)
    return {"meta": meta, "moa": np.array([f"MOA{m:02d}" for m in moa]), "raw": views,
            "planted": {"cp": np.hstack([views["cp"], extra]), "both": np.hstack([views["both"], extra])}}


def evaluate(data: dict, labels: np.ndarray, folds: int, repeats: int, seed: int,
             classifiers: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The classification and prediction tables of every view in every split (training seed 0)."""
    meta = data["meta"]
    compounds = pd.DataFrame({S.PERT: meta[S.PERT].unique(), S.MOA: labels})
    cls, preds = [], []
    for index in range(folds * repeats):
        _, fold, split_seed = fold_of(index, folds, seed)
        split = split_compounds_frame(compounds, {"validation": 0.15}, split_seed, folds=folds, fold=fold)
        rep = meta.merge(split, on=S.PERT, how="left")
        rep[S.MOA] = rep[S.MOA].map(lambda m: (m,))
        rep[S.IS_CONTROL] = False
        col = rep.drop_duplicates(S.PERT).reset_index(drop=True)
        for source, views in (("raw", data["raw"]), ("planted", data["planted"])):
            for view, X in views.items():
                for level, (m, Xl) in {"uncollapsed": (rep, X),
                                       "collapsed": (col, X.reshape(3, len(col), -1).mean(0))}.items():
                    keys = dict(source=source, fold=index, seed=0, view=view, level=level, variant=level)
                    p: list[pd.DataFrame] = []
                    rows, _, _, _ = classify_table(m, Xl, classifiers, 0, EVAL, predictions=p)
                    cls.append(pd.DataFrame(rows).assign(**keys))
                    preds += [x.assign(**keys) for x in p]
    return pd.concat(cls, ignore_index=True), pd.concat(preds, ignore_index=True)


def one(task: dict) -> list[dict]:
    """One data set (a control replicate): its primary comparisons under both interval methods."""
    with threadpool_limits(1):
        data = simulate(task["n"], task["data_seed"], task["gain"])
        per_compound = data["moa"]
        if task["permute"]:
            per_compound = np.random.default_rng(task["perm_seed"]).permutation(per_compound)
        cls, preds = evaluate(data, per_compound, task["folds"], task["repeats"], task["split_seed"],
                              task["classifiers"])
        tables = {scheme: H.headline_frame(cls, pd.DataFrame(), predictions=preds, bootstrap=task["draws"],
                                           seed=task["perm_seed"], resample=scheme)
                  for scheme in ("rescaled", "naive")}
    out = []
    for inp, name in PRIMARY.items():
        table = tables["rescaled"]
        r = table[table["entry"] == name].iloc[0]
        naive = tables["naive"].set_index("entry").loc[name]
        row = {**{k: task[k] for k in ("control", "n", "gain", "data_seed", "perm_seed")}, "input": inp,
               "delta": r["delta_vs_baseline"], "baseline": r["baseline"],
               "baseline_score": table.loc[table["entry"] == r["baseline"], "macro_f1"].iloc[0],
               "tau2": r["delta_tau2"]}
        for m, (src, prefix) in METHODS.items():
            x = naive if src == "naive" else r
            row.update({f"{m}_low": x[f"{prefix}_ci_low"], f"{m}_high": x[f"{prefix}_ci_high"],
                        f"{m}_mde": x[f"{prefix}_mde"]})
        out.append(row)
    return out


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson's 95 % interval of a proportion k/n."""
    if n == 0:
        return np.nan, np.nan
    z, p = 1.959964, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def rate(flags: pd.Series) -> str:
    k, n = int(flags.sum()), int(flags.size)
    lo, hi = wilson(k, n)
    return f"{k}/{n} = {k / n:.2f} [{lo:.2f}, {hi:.2f}]" if n else "—"


def summarise(df: pd.DataFrame) -> str:
    """The two tables (negative, positive) as Markdown."""
    for m in METHODS:
        df[f"{m}_above"] = df[f"{m}_low"] > 0
        df[f"{m}_reject"] = (df[f"{m}_low"] > 0) | (df[f"{m}_high"] < 0)
    tables = {
        "negative": ("**Negative control** (MoA labels permuted across compounds; nominal two-sided α = 0.05, "
                     "so at most 0.025 \"above\"):", [], ["\"above its baseline\"", "any rejection"],
                     lambda g: [], lambda g, m: [rate(g[f"{m}_above"]), rate(g[f"{m}_reject"])]),
        "positive": ("**Positive control** (planted gain; the detection rate is the share of data sets whose verdict "
                     "is \"above its baseline\"):", ["mean baseline macro-F1", "mean Δ"], ["detected"],
                     lambda g: [f"{g['baseline_score'].mean():.3f}", f"{g['delta'].mean():+.3f}"],
                     lambda g, m: [rate(g[f"{m}_above"])]),
    }
    lines = []
    for control, (title, before, after, data_cells, method_cells) in tables.items():
        sub = df[df["control"] == control]
        if sub.empty:
            continue
        head = ["comparison", "compounds", "data sets", *before, "method", *after, "mean MDE"]
        lines += [title, "", f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
        for (inp, n), g in sub.groupby(["input", "n"]):
            for m, name in LABELS.items():
                row = [inp, n, len(g), *data_cells(g), name, *method_cells(g, m), f"{g[f'{m}_mde'].mean():.3f}"]
                lines.append(f"| {' | '.join(map(str, row))} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/controls")
    ap.add_argument("--permutations", type=int, default=200)
    ap.add_argument("--negative-sizes", type=int, nargs="*", default=[240])
    ap.add_argument("--sizes", type=int, nargs="*", default=[120, 240, 480])
    ap.add_argument("--replicates", type=int, default=10)
    ap.add_argument("--gain", type=float, default=0.6)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--classifiers", nargs="+", default=["knn"], choices=["knn", "logreg"],
                    help="classifiers of every view (kNN alone: 4 CPU-s per data set of 240 compounds; with "
                         "logistic regression 10 CPU-s)")
    a = ap.parse_args(argv)
    base = dict(gain=a.gain, folds=a.folds, repeats=a.repeats, draws=a.draws, classifiers=a.classifiers)
    tasks = [dict(base, control="negative", n=n, data_seed=a.seed + k, perm_seed=a.seed + 1 + i,
                  split_seed=a.seed + 1000 * (i + 1), permute=True)
             for k, n in enumerate(a.negative_sizes) for i in range(a.permutations)]
    tasks += [dict(base, control="positive", n=n, data_seed=a.seed + 100 + i, perm_seed=a.seed + i,
                   split_seed=a.seed + 1000 * (i + 1), permute=False) for n in a.sizes for i in range(a.replicates)]
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(a.cores) as pool:
        rows = [r for rs in pool.map(one, tasks, chunksize=1) for r in rs]
    df = pd.DataFrame(rows)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "controls.tsv", sep="\t", index=False)
    text = summarise(df)
    settings = (f"{a.folds} folds × {a.repeats} partitions, {a.draws} bootstrap draws, gain {a.gain}, "
                f"classifiers {', '.join(a.classifiers)}, "
                f"{len(tasks)} data sets, {time.perf_counter() - t0:.0f} s on {a.cores} cores")
    (out / "controls.md").write_text(f"Controls ({settings}):\n\n{text}")
    print(f"Controls ({settings}):\n\n{text}")
    print(f"Tables: {out / 'controls.md'}, {out / 'controls.tsv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
