"""How far a run's headline moves on another machine: every entry of run B against run A's intervals.

Reads ``leaderboard/headline.parquet`` of two finished runs of the same config (e.g. ``make run``
here and in a fresh clone elsewhere) and prints, per entry, A's and B's test score and Δ to the
baseline, the difference B − A, whether B's value lies inside A's 95 % interval, and whether the
verdict (Δ's CI above / below / spanning zero) is the same. The summary gives the largest
movement of each and the share inside A's intervals. ``--out DIR`` writes the table
(``compare.tsv``) and the summary with both runs' commit, machine and date (``summary.md``, which
``make readme-numbers --machines DIR`` puts into the README); ``--note`` adds a line saying how
run B was made (e.g. which CPU kernels it was forced to).

Usage::

    python benchmarks/compare_runs.py results/demo /elsewhere/results/demo [--out results/machines] [--note TEXT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd


def _verdict(lo: float, hi: float) -> str:
    if np.isnan(lo) or np.isnan(hi):
        return ""
    return "above" if lo > 0 else "below" if hi < 0 else "spans 0"


def compare(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per entry present in both headlines: A's and B's score and Δ and their agreement."""
    m = a.merge(b, on="entry", suffixes=("_a", "_b"))
    rows = []
    for _, r in m.iterrows():
        row = {"entry": r["entry"], "kind": r["kind_a"],
               "score_a": r[f"{metric}_a"], "score_b": r[f"{metric}_b"],
               "score_moved": r[f"{metric}_b"] - r[f"{metric}_a"],
               "score_b_inside_a_ci": r[f"{metric}_ci_low_a"] <= r[f"{metric}_b"] <= r[f"{metric}_ci_high_a"],
               "same_configuration": r["configuration_a"] == r["configuration_b"]}
        if not np.isnan(r["delta_vs_baseline_a"]):
            row.update({"delta_a": r["delta_vs_baseline_a"], "delta_b": r["delta_vs_baseline_b"],
                        "delta_moved": r["delta_vs_baseline_b"] - r["delta_vs_baseline_a"],
                        "delta_b_inside_a_ci": r["delta_ci_low_a"] <= r["delta_vs_baseline_b"] <= r["delta_ci_high_a"],
                        "ci_halfwidth_a": (r["delta_ci_high_a"] - r["delta_ci_low_a"]) / 2,
                        "verdict_a": _verdict(r["delta_ci_low_a"], r["delta_ci_high_a"]),
                        "verdict_b": _verdict(r["delta_ci_low_b"], r["delta_ci_high_b"])})
        rows.append(row)
    return pd.DataFrame(rows)


def _describe(run: Path) -> str:
    m = json.loads((run / "manifest.json").read_text())
    written = pd.Timestamp((run / "leaderboard" / "headline.parquet").stat().st_mtime, unit="s")
    cpu = m.get("device", {}).get("cpus", "?")
    return (f"`{run}`, commit `{m.get('git', {}).get('commit', '?')[:10]}`, {m.get('platform', '?')}, {cpu} CPUs, "
            f"tables written {written:%Y-%m-%d %H:%M} UTC")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a", type=Path, help="results/<name> of the reference run (its CIs are the yardstick)")
    ap.add_argument("run_b", type=Path, help="results/<name> of the same config run elsewhere")
    ap.add_argument("--metric", default="macro_f1")
    ap.add_argument("--out", type=Path, help="a folder for compare.tsv and summary.md")
    ap.add_argument("--note", help="how run B was made (goes into summary.md)")
    args = ap.parse_args(argv)
    a, b = (pd.read_parquet(r / "leaderboard" / "headline.parquet") for r in (args.run_a, args.run_b))
    t = compare(a, b, args.metric)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_rows", 200,
                           "display.float_format", "{:.3f}".format):
        print(t.to_string(index=False))
    d = t.dropna(subset=["delta_a"]) if "delta_a" in t else t.iloc[:0]
    lines = [f"{len(t)} entries in both runs: identical scores {int((t['score_moved'].abs() < 1e-12).sum())}; "
             f"largest |score B − A| {t['score_moved'].abs().max():.3f} (median {t['score_moved'].abs().median():.3f}); "
             f"B's score inside A's 95 % CI: {int(t['score_b_inside_a_ci'].sum())}/{len(t)}; "
             f"same configuration chosen (most frequent): {int(t['same_configuration'].sum())}/{len(t)}."]
    if len(d):
        lines.append(f"{len(d)} Δs to the baseline: largest |Δ B − A| {d['delta_moved'].abs().max():.3f} (median "
                     f"{d['delta_moved'].abs().median():.3f}; A's CI half-widths {d['ci_halfwidth_a'].min():.3f}–"
                     f"{d['ci_halfwidth_a'].max():.3f}); B's Δ inside A's 95 % CI: "
                     f"{int(d['delta_b_inside_a_ci'].sum())}/{len(d)}; same verdict: "
                     f"{int((d['verdict_a'] == d['verdict_b']).sum())}/{len(d)}.")
    print("\n" + "\n".join(lines))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        t.to_csv(args.out / "compare.tsv", sep="\t", index=False)
        head = ["Run A (the yardstick): " + _describe(args.run_a) + ".",
                "Run B: " + _describe(args.run_b) + "." + (f" {args.note}" if args.note else "")]
        (args.out / "summary.md").write_text("\n".join(head) + "\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
