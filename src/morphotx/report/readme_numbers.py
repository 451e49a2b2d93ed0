"""The README's result numbers, written from ``results/`` by one command (``make readme-numbers``).

Every number the README quotes about a run comes from that run's tables, never typed by hand: this
module reads a finished run (``results/<name>/leaderboard/headline.parquet``,
``headline_choices.parquet`` and ``manifest.json``) and, optionally, the controls of ``make
bench-controls`` (``results/controls/controls.md``), and rewrites the text between the markers
``<!-- results:<key>:begin -->`` and ``<!-- results:<key>:end -->`` of a Markdown file. The block
names the commit, the machine (platform, CPU count, GPU) and the date the tables were written.

Usage::

    python -m morphotx.report.readme_numbers README.md docs/evaluation.md --run results/demo [--run results/quick] \
        [--controls results/controls] [--machines results/machines]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd

from ..prepare.split import fold_of
from .headline_text import number_text, p_text, with_ci_text
from .selection import INPUT_LABELS, RECIPE_ENTRY, choice_counts
from .statistics import fold_mde


def _machine(manifest: dict) -> str:
    dev = manifest.get("device", {})
    gpu = f", GPU {dev['gpu']}" if dev.get("gpu") else ", no GPU"
    return f"{manifest.get('platform', '?')}, {dev.get('cpus', '?')} CPUs{gpu}, Python {manifest.get('python', '?')}"


def _first_partition_mde(choices: pd.DataFrame, table: pd.DataFrame, entry: str, folds: int, metric: str) -> float:
    """The MDE (80 %, α 0.05) of the corrected t over the first partition's folds only: what the
    protocol of one partition, fold-level CI, could detect for the same comparison.
    """
    r = table[table["entry"] == entry].iloc[0]
    col = f"test_{metric}"
    mine = choices[choices["entry"] == entry].set_index("fold")[col]
    base = choices[choices["entry"] == r["baseline"]].set_index("fold")[col]
    d = (mine - base).dropna()
    d = d[[fold_of(f, folds, 0)[0] == 0 for f in d.index]]
    return fold_mde(d.to_numpy(), float(r["n_test_over_n_train"]))


def demo_block(run: Path) -> str:
    """The README's block for the run in ``run`` (``results/<name>``)."""
    lb = run / "leaderboard"
    table = pd.read_parquet(lb / "headline.parquet")
    choices = pd.read_parquet(lb / "headline_choices.parquet")
    manifest = json.loads((run / "manifest.json").read_text())
    cfg = manifest.get("config", {})
    folds = int(cfg.get("split", {}).get("folds", 1))
    repeats = int(cfg.get("split", {}).get("repeats", 1))
    seeds = cfg.get("train", {}).get("seeds", [0])
    metric = next(c for c in table.columns if c.startswith("validation_")).removeprefix("validation_")
    when = dt.datetime.fromtimestamp((lb / "headline.parquet").stat().st_mtime, dt.UTC)
    commit = manifest.get("git", {}).get("commit", "?")
    lines = [
        f"Run `{run}`: commit `{str(commit)[:10]}`{' (with uncommitted changes)' if manifest.get('git', {}).get('dirty') else ''}, "
        f"{_machine(manifest)}, tables written {when:%Y-%m-%d %H:%M} UTC. J = {repeats * folds} splits "
        f"({repeats} partition(s) × {folds} folds), {len(seeds)} training seed(s) per split.", "",
        f"| comparison (▶ primary: chosen on validation in every split) | most frequent choice | test {metric} [95 % CI] "
        f"| baseline | Δ [95 % CI] | MDE (80 %) | MDE, corrected t over splits | MDE, one partition, t over folds "
        f"| p (Holm) | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table[table["kind"] == "chosen"].to_dict("records"):
        verdict = ("above its baseline" if r["delta_ci_low"] > 0 else "below its baseline" if r["delta_ci_high"] < 0
                   else "not distinguishable")
        first = str(r.get("choices") or "").split("; ")[0]
        lines.append(
            f"| ▶ {INPUT_LABELS.get(r['input'], r['input'])} | {first} | "
            f"{with_ci_text(r[metric], r[f'{metric}_ci_low'], r[f'{metric}_ci_high'])} | {r['baseline']} "
            f"{number_text(table.loc[table['entry'] == r['baseline'], metric].iloc[0])} | "
            f"{with_ci_text(r['delta_vs_baseline'], r['delta_ci_low'], r['delta_ci_high'], signed=True)} | "
            f"{number_text(r['delta_mde'])} | {number_text(r.get('delta_fold_mde'))} | "
            f"{number_text(_first_partition_mde(choices, table, r['entry'], folds, metric))} | "
            f"{p_text(r['delta_p_holm_best'])} | {verdict} |")
    learned = table[table["kind"].isin(["model", "cp_only"]) & table["baseline"].notna()]
    above = learned[(learned["delta_ci_low"] > 0)]
    below = learned[(learned["delta_ci_high"] < 0)]
    holm_kept = learned[learned["delta_p_holm"] < 1 - float(table["confidence"].dropna().iloc[0])]
    mde = learned["delta_mde"].dropna()
    lines += ["",
              f"Exploratory, every learned entry ({len(learned)} comparisons): {len(above)} above and {len(below)} below "
              f"their baseline by their own CI, {len(holm_kept)} significant after Holm's correction "
              f"({', '.join(holm_kept['entry']) or 'none'}); their minimum detectable effects "
              f"{number_text(mde.min()) if len(mde) else '—'}–{number_text(mde.max()) if len(mde) else '—'} "
              f"(Δ's method: {', '.join(sorted(set(learned['delta_method'].dropna())))})."]
    recipes = choices[choices["entry"] == RECIPE_ENTRY]
    if len(recipes):
        lines += ["", f"Cell Painting recipe chosen per split on validation compounds: {choice_counts(recipes)}."]
    return "\n".join(lines)


def controls_block(controls: Path) -> str:
    """The controls' tables as ``make bench-controls`` wrote them, with their date."""
    md = controls / "controls.md"
    when = dt.datetime.fromtimestamp(md.stat().st_mtime, dt.UTC)
    return f"From `{md}` (written {when:%Y-%m-%d %H:%M} UTC):\n\n" + md.read_text().strip()


def replace_block(text: str, key: str, body: str) -> str:
    """``text`` with the lines between its ``results:<key>`` markers replaced by ``body``."""
    pattern = re.compile(rf"(<!-- results:{re.escape(key)}:begin[^>]*-->\n)(.*?)(<!-- results:{re.escape(key)}:end -->)",
                         re.S)
    if not pattern.search(text):
        raise ValueError(f"no <!-- results:{key}:begin --> … <!-- results:{key}:end --> markers")
    return pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(3), text)


def main(argv: list[str] | None = None) -> int:
    """Rewrite the result blocks of the Markdown files named (see the module docstring)."""
    ap = argparse.ArgumentParser(description="Write the README's result numbers from results/.")
    ap.add_argument("files", nargs="+", type=Path, help="Markdown files with results:<key> markers")
    ap.add_argument("--run", type=Path, action="append", default=[],
                    help="a finished run, results/<name> (block key: the run's name); repeatable")
    ap.add_argument("--controls", type=Path, help="make bench-controls' output folder (block key: controls)")
    ap.add_argument("--machines", type=Path,
                    help="benchmarks/compare_runs.py's output folder: a run against the same config run on "
                         "another machine (block key: machines, from its summary.md)")
    a = ap.parse_args(argv)
    blocks = {}
    for run in a.run:
        blocks[run.name] = demo_block(run)
    if a.controls is not None and (a.controls / "controls.md").exists():
        blocks["controls"] = controls_block(a.controls)
    if a.machines is not None and (a.machines / "summary.md").exists():
        blocks["machines"] = (a.machines / "summary.md").read_text()
    for f in a.files:
        text = f.read_text()
        for key, body in blocks.items():
            if f"results:{key}:begin" in text:
                text = replace_block(text, key, body)
                print(f"{f}: results:{key} rewritten")
        f.write_text(text)
    return 0 if blocks else 2


if __name__ == "__main__":
    raise SystemExit(main())
