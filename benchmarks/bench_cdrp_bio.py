"""The headline at the size of CDRP-bio, on simulated files (make bench-cdrp-bio).

Writes CDRP-shaped files with morphotx.data.cdrp_demo at the size of the real CDRPBIO-BBBC036-Bray
(the bioactive subset of CDRP, config/cdrp_bio.yaml), runs the whole workflow on them through the
real CDRP column map (config/cdrp_bio.yaml's resources/datasets/cdrp_bray.yaml, MoA from the
generator's Repurposing-Hub-style map by Broad id) with config/cdrp_bio_sim.yaml layered on top,
and writes what it measured: the headline (every entry's test macro-F1 with its 95 % CI over the
splits, Δ to its raw baseline with the compound + split CI, p and minimum detectable effect), the
sizes, and the cost of every rule (Snakemake's benchmark files, the jobs' own CPU seconds) and of
the whole run (``/usr/bin/time -v``).

Size. The generator's preset ``full`` is the real CDRP's 30,000 compounds, 1,783 Cell Painting
features and 978 probes; at scale 1 it writes 157,908 Cell Painting wells (docs/benchmarks.md,
"CDRP-shaped preparation up to the real size"). The real CDRP-bio Cell Painting file is
298,941,736 bytes compressed, the full CDRP's 2,183,033,139 (the published listing,
../shared/design/rosetta_format.md): the same columns written by the same pipeline, so the same
bytes per well, and CDRP-bio has 298,941,736 / 2,183,033,139 = 0.1369 of CDRP's wells (≈ 21,600).
The generator prints fewer digits than the real files (8.7 kB per well against 13.8 kB), so its
bytes cannot be matched to the real file's; its wells can: ``scale`` = 0.1369 of the preset's
compounds (4,108), the preset's layout giving the wells.

Annotation. In the full CDRP ~5 % of compounds have an MoA in the Repurposing Hub (the preset's
``annotated_fraction`` 0.05). CDRP-bio is the screen's known-bioactive compounds, far more of
which are annotated; ``annotated_fraction`` 0.5 here, an assumption (the real fraction is known
only once the real file is joined to the Hub map; harmonise logs it), with the preset's 60 MoAs.
Nothing else of the simulator's biology is changed (``params_for("full", scale,
annotated_fraction=0.5)``).

    python benchmarks/bench_cdrp_bio.py [--scale 1] [--name cdrp_bio_sim] [--raw-only] [--cores 2]
        [--report-only] [--doc docs/benchmarks.md]

``--scale`` multiplies the CDRP-bio size (0.1: a tenth, to find failures fast); ``--name`` is the
run's results/<name>/ (the generated files go to results/<name>_data/, the measurements to
results/<name>_bench/); ``--report-only`` writes the report of a finished run again;
``--doc`` rewrites the block between ``<!-- results:<name>:begin -->`` and ``<!-- results:<name>:end -->``
of that Markdown file with the report.
"""

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from _common import REPO, SNAKEMAKE, rule_summary, rule_table
from morphotx.data.cdrp_demo import cdrp_data, params_for
from morphotx.report.headline_text import number_text, p_text, with_ci_text
from morphotx.report.readme_numbers import replace_block

REAL_CDRP_CP_BYTES = 2_183_033_139  # CDRP-BBBC047-Bray replicate_level_cp_augmented.csv.gz
REAL_BIO_CP_BYTES = 298_941_736  # CDRPBIO-BBBC036-Bray replicate_level_cp_augmented.csv.gz
BIO_SCALE = REAL_BIO_CP_BYTES / REAL_CDRP_CP_BYTES  # of the preset `full`'s 30,000 compounds
ANNOTATED_FRACTION = 0.5
SEED = 0
FILES = {"cell_painting": "cp.csv.gz", "l1000": "l1000.csv.gz", "probe_map": "probes.tsv", "moa_map": "moa.tsv"}
LEARNED = ["vae_beta_cp", "bimodal_ae"]  # config/cdrp_bio_sim.yaml's enabled models


def generate(data: Path, scale: float) -> dict:
    """Write the files (once: an existing summary.json with the same parameters is reused)."""
    p = params_for("full", BIO_SCALE * scale, annotated_fraction=ANNOTATED_FRACTION)
    want = {"preset": "full", "scale": BIO_SCALE * scale, "seed": SEED, "params": p.__dict__}
    js = data / "summary.json"
    if js.exists() and json.loads(js.read_text()).get("request") == json.loads(json.dumps(want)):
        return json.loads(js.read_text())
    data.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    s = cdrp_data({k: data / f for k, f in FILES.items()}, preset="full", scale=BIO_SCALE * scale, seed=SEED,
                  annotated_fraction=ANNOTATED_FRACTION)
    s = {k: v for k, v in s.items() if not isinstance(v, list)} | {"cp_only": len(s["cp_only"]),
                                                                 "l1000_only": len(s["l1000_only"])}
    s |= {"request": want, "generate_wall_s": time.perf_counter() - t0, "generate_cpu_s": time.process_time() - c0,
          "bytes": {k: (data / f).stat().st_size for k, f in FILES.items()}}
    js.write_text(json.dumps(s, indent=1))
    return s


def run(name: str, data: Path, bench: Path, cores: int, raw_only: bool, repeats: int | None = None,
        extend: str | None = None) -> None:
    """The workflow on the files, under /usr/bin/time -v (its report: bench/time.txt); ``extend``: start
    from a copy of the finished run ``results/<extend>`` (same files, fewer partitions), Snakemake
    deciding on modification times only, so that its splits, preprocessing and pairs are reused.
    """
    override = {"dataset": {"name": name}, "inputs": {k: str(data / f) for k, f in FILES.items()}}
    if repeats is not None:
        override["split"] = {"repeats": repeats}
    if raw_only:
        override["models"] = {m: {"enabled": False} for m in LEARNED}
    bench.mkdir(parents=True, exist_ok=True)
    (bench / "override.yaml").write_text(yaml.safe_dump(override))
    extra = []
    if extend is not None:
        out = REPO / "results" / name
        if not out.exists():
            subprocess.run(["cp", "-a", str(REPO / "results" / extend), str(out)], check=True)
            (out / "manifest.json").unlink(missing_ok=True)  # written again with this run's config
        extra = ["--rerun-triggers", "mtime"]
        (bench / "extend.txt").write_text(extend + "\n")
    cmd = ["/usr/bin/time", "-v", "-o", str(bench / "time.txt"), *SNAKEMAKE, "--cores", str(cores), *extra,
           "--configfile", "config/cdrp_bio.yaml", "config/cdrp_bio_sim.yaml", str(bench / "override.yaml"), "--",
           "all"]
    (bench / "command.txt").write_text(" ".join(cmd) + "\n")
    print(" ".join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, cwd=REPO, check=True)
    (bench / "run.json").write_text(json.dumps({"start": start, "end": time.time()}))


def _time_v(path: Path) -> dict:
    text = path.read_text() if path.exists() else ""

    def get(label):
        m = re.search(rf"{re.escape(label)}: (.+)", text)
        return m.group(1).strip() if m else None

    wall = get("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    secs = None
    if wall:
        parts = [float(x) for x in wall.split(":")]
        secs = sum(x * 60 ** i for i, x in enumerate(reversed(parts)))
    user, system, rss = get("User time (seconds)"), get("System time (seconds)"), get("Maximum resident set size (kbytes)")
    return {"wall_s": secs, "cpu_s": float(user) + float(system) if user else None,
            "max_rss_mb": int(rss) / 1024 if rss else None}


def _machine() -> str:
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return f"{cpu}, {os.cpu_count()} CPUs, {mem:.0f} GiB, {platform.platform()}, no GPU used"


def _text(x) -> str:
    return "—" if x is None or (isinstance(x, float) and pd.isna(x)) else str(x)


def _scored(out: Path) -> str:
    """Test compounds (and their MoAs) the raw baselines' classifiers scored, per split: min–max."""
    p = pd.read_parquet(out / "leaderboard" / "all_predictions.parquet", columns=["source", "split", "fold", "compound",
                                                                                  "moa"])
    t = p[(p["source"] == "raw") & (p["split"] == "test")].groupby("fold").agg(c=("compound", "nunique"),
                                                                               m=("moa", "nunique"))
    def span(s):
        return f"{s.min():,}" if s.min() == s.max() else f"{s.min():,}–{s.max():,}"

    return f"{span(t['c'])} annotated test compounds of {span(t['m'])} MoAs scored per split"


def _verdict(r: dict) -> str:
    if pd.isna(r["delta_ci_low"]):
        return "—"
    return ("above its baseline" if r["delta_ci_low"] > 0 else "below its baseline" if r["delta_ci_high"] < 0
            else "not distinguishable")


def headline_markdown(table: pd.DataFrame) -> list[str]:
    """Every headline entry: test macro-F1 [95 % CI] over the splits, Δ to its baseline with its
    primary CI (the method in ``delta_method``), the MDE of that method and of the corrected t, p (Holm).
    """
    metric = next(c for c in table.columns if c.startswith("validation_")).removeprefix("validation_")
    lines = [f"| entry | kind | input | most frequent choice | n splits | test {metric} [95 % CI] | baseline "
             f"| Δ [95 % CI] | Δ's method | MDE (80 %) | MDE, corrected t over splits | p (Holm) | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        p = r["delta_p_holm_best"] if r["kind"] == "chosen" else r["delta_p_holm"]
        lines.append(
            f"| {'▶ ' if r['kind'] == 'chosen' else ''}{r['entry']} | {r['kind']} | {r['input']} | {str(r.get('choices') or '—').split('; ')[0]} | "
            f"{r['n_repetitions']} | "
            f"{with_ci_text(r[metric], r[f'{metric}_ci_low'], r[f'{metric}_ci_high'])} | {_text(r['baseline'])} | "
            f"{with_ci_text(r['delta_vs_baseline'], r['delta_ci_low'], r['delta_ci_high'], signed=True)} | "
            f"{_text(r['delta_method'])} | {number_text(r['delta_mde'])} | {number_text(r['delta_fold_mde'])} | "
            f"{p_text(p)} | {_verdict(r)} |")
    return lines


def same_as(table: pd.DataFrame, other: str) -> str:
    """One line: whether ``table`` (a headline) equals ``results/<other>``'s, value for value."""
    o = pd.read_parquet(REPO / "results" / other / "leaderboard" / "headline.parquet")
    if list(o["entry"]) != list(table["entry"]) or list(o.columns) != list(table.columns):
        return f"Its headline table has other entries or columns than `results/{other}`'s."
    num = table.select_dtypes("number").columns
    diff = (table[num].astype(float) - o[num].astype(float)).abs().max().max()
    rest = [c for c in table.columns if c not in num]
    equal_text = table[rest].astype(str).equals(o[rest].astype(str))
    return (f"Its headline table against `results/{other}`'s: the same {len(table)} entries, largest difference of a "
            f"number {diff:.3g} over {len(num)} numeric columns, the other {len(rest)} columns "
            f"{'identical' if equal_text else 'differing'}.")


def _data_arg(name: str, data: Path) -> str:
    default = REPO / "results" / f"{name}_data"
    return "" if data.resolve() == default.resolve() else f"--data {data.resolve().relative_to(REPO)} "


def report(name: str, data: Path, bench: Path, other: str | None = None) -> str:
    """The Markdown report of the finished run ``results/<name>`` (``other``: a run to compare its headline with)."""
    out = REPO / "results" / name
    table = pd.read_parquet(out / "leaderboard" / "headline.parquet")
    s = json.loads((data / "summary.json").read_text())
    moa = pd.read_csv(data / "moa.tsv", sep="\t")
    moas = sorted({m for x in moa["moa"].dropna() for m in str(x).split("|")})
    cfg = json.loads((out / "manifest.json").read_text()).get("config", {})
    folds, repeats = int(cfg["split"]["folds"]), int(cfg["split"]["repeats"])
    models = sorted(n for n, m in cfg["models"].items() if m.get("enabled", True))
    manifest = json.loads((out / "manifest.json").read_text())
    commit = manifest.get("git", {}).get("commit", "?")
    dirty = " (with uncommitted changes)" if manifest.get("git", {}).get("dirty") else ""
    when = dt.datetime.fromtimestamp((out / "leaderboard" / "headline.parquet").stat().st_mtime, dt.UTC)
    total = _time_v(bench / "time.txt")
    since = json.loads((bench / "run.json").read_text())["start"] if (bench / "run.json").exists() else None
    rules = rule_summary(rule_table(out / "benchmarks", since=since))  # this run's jobs only
    choices = pd.read_parquet(out / "leaderboard" / "headline_choices.parquet")
    recipes = choices[choices["entry"] == "Cell Painting recipe"] if "entry" in choices.columns else choices.iloc[:0]
    mb = {k: v / 1e6 for k, v in s["bytes"].items()}
    extend = (bench / "extend.txt").read_text().strip() if (bench / "extend.txt").exists() else None
    whole = (f"this run, which started from a copy of `results/{extend}` (its splits' preparation reused; the new "
             f"splits' preparation, all training, evaluation and figures run again)" if extend else "the whole run")
    lines = [
        f"Run `results/{name}`: commit `{str(commit)[:10]}`{dirty}; {_machine()}; headline written "
        f"{when:%Y-%m-%d %H:%M} UTC. Command: `{(bench / 'command.txt').read_text().strip()}` "
        f"(written by `benchmarks/bench_cdrp_bio.py`; this block: `python benchmarks/bench_cdrp_bio.py --name {name} "
        f"{_data_arg(name, data)}{f'--same-as {other} ' if other else ''}--report-only --doc docs/benchmarks.md`).", "",
        f"**Data** (`morphotx.data.cdrp_demo`, preset `full`, scale {s['request']['scale']:.4f}, "
        f"annotated_fraction {ANNOTATED_FRACTION}, seed {SEED}): {s['compounds']:,} compounds, {s['annotated']:,} of "
        f"them in the MoA map ({len(moas)} MoAs); {s['cp_wells']:,} Cell Painting wells ({s['cp_treatments']:,} "
        f"treatments, {s['cp_features']:,} features), {s['l1000_profiles']:,} L1000 profiles ({s['l1000_treatments']:,} "
        f"treatments, {s['probes']} probes); {s['cp_only']:,} compounds in Cell Painting only, {s['l1000_only']:,} in "
        f"L1000 only; {_scored(out)}. Files: {mb['cell_painting']:.0f} MB Cell Painting gzip, {mb['l1000']:.0f} MB L1000 gzip "
        f"(generated in {s['generate_wall_s']:.0f} s, not part of the run).", "",
        f"**Protocol**: J = {repeats * folds} splits ({repeats} partition(s) × {folds} compound-grouped folds), "
        f"learned models: {', '.join(models) or 'none (raw baselines only)'} (CPU); Cell Painting recipe chosen per "
        f"split among {len(cfg['preprocess']['cell_painting']['candidates'])} candidates"
        + (f" ({', '.join(f'{k} {v}' for k, v in recipes['configuration'].value_counts().items())})" if len(recipes)
           else "") + ".", "",
        *headline_markdown(table), "",
        *([same_as(table, other), ""] if other else []),
        f"**Cost** ({whole}, `/usr/bin/time -v` of Snakemake and its jobs): {number_text(total['wall_s'], 0)} s "
        f"wall, {number_text(total['cpu_s'], 0)} CPU-s, largest single process {number_text(total['max_rss_mb'], 0)} "
        f"MB RSS. Per rule (Snakemake's benchmark files; CPU-s from the jobs' logs):", "",
        "| rule | jobs | wall s (sum) | CPU-s (sum) | largest job s | peak RSS MB |", "|---|---|---|---|---|---|",
    ]
    for r in rules.to_dict("records"):
        lines.append(f"| {r['rule']} | {r['jobs']} | {r['wall_s']:.0f} | {number_text(r['cpu_s'], 0)} | "
                     f"{r['max_job_s']:.0f} | {r['max_rss_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="× the CDRP-bio size")
    ap.add_argument("--name", default="cdrp_bio_sim")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--raw-only", action="store_true", help="switch the two learned models off too")
    ap.add_argument("--repeats", type=int, help="split.repeats (partitions; default config/cdrp_bio_sim.yaml's)")
    ap.add_argument("--extend", help="a finished run's name: start from a copy of its results (--data: its files)")
    ap.add_argument("--data", type=Path, help="the generated files' folder (default results/<name>_data)")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--same-as", help="another run's name: say whether this run's headline table equals its")
    ap.add_argument("--doc", type=Path, help="Markdown file with results:<name> markers to rewrite")
    a = ap.parse_args()
    data, bench = a.data or REPO / "results" / f"{a.name}_data", REPO / "results" / f"{a.name}_bench"
    if not a.report_only:
        s = generate(data, a.scale)
        print(json.dumps({k: v for k, v in s.items() if k != "request"}), flush=True)
        run(a.name, data, bench, a.cores, a.raw_only, a.repeats, a.extend)
    text = report(a.name, data, bench, a.same_as)
    (bench / "summary.md").write_text(text)
    print(text)
    if a.doc is not None:
        a.doc.write_text(replace_block(a.doc.read_text(), a.name, text))
        print(f"{a.doc}: results:{a.name} rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
