"""Shared helpers of the benchmark scripts: run Snakemake in a scratch dir, read benchmark TSVs."""

import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from morphotx.smk import USAGE_PREFIX

REPO = Path(__file__).resolve().parents[1]
# `python -m snakemake`: also where Snakemake is installed with `pip --target` (no script next to python)
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def cpu_seconds() -> float:
    """User + system CPU seconds of this process's finished children so far (Snakemake and its jobs)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_workflow(workdir: Path, config: dict, targets: list[str], cores: int = 2, extra: list[str] = ()) -> float:
    """Run the workflow on ``targets`` in ``workdir`` with ``config``; the wall seconds it took."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cfg.yaml").write_text(yaml.safe_dump(config))
    cmd = [*SNAKEMAKE, "-s", str(REPO / "workflow" / "Snakefile"), "--directory", str(workdir), "--configfile",
           str(workdir / "cfg.yaml"), "--cores", str(cores), "--quiet", "all", *extra, "--", *(targets or ["all"])]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def job_cpu(log: Path) -> float:
    """The CPU seconds a job's log reports on its last ``job resources:`` line
    (:func:`morphotx.smk.usage_line`), NaN when there is none (no log, or not a script job).
    Snakemake's own ``cpu_time`` column is sampled and undercounts (15.6 s for a ~42 CPU-s job).
    """
    if not log.exists():
        return float("nan")
    hits = re.findall(re.escape(USAGE_PREFIX) + r" cpu_s=([0-9.]+)", log.read_text(errors="replace"))
    return float(hits[-1]) if hits else float("nan")


def rule_table(bench_dir: Path, since: float | None = None) -> pd.DataFrame:
    """One row per job: its benchmark file's wall seconds and peak RSS, and the CPU seconds of its
    log file (the same path under ``bench_dir``'s sibling ``logs``); with ``since`` (a
    ``time.time()``), only the jobs whose benchmark file was written after it.
    """
    logs_dir = bench_dir.parent / "logs"
    rows = []
    for f in sorted(bench_dir.rglob("*.tsv")):
        if since is not None and f.stat().st_mtime < since:
            continue
        b = pd.read_csv(f, sep="\t")
        rel = f.relative_to(bench_dir).with_suffix("")
        rows.append({"rule": str(rel), "wall_s": float(b["s"].iloc[0]), "max_rss_mb": float(b["max_rss"].iloc[0]),
                     "cpu_s": job_cpu(logs_dir / rel.with_suffix(".log"))})
    return pd.DataFrame(rows)


def rule_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per rule (benchmark folder): jobs, summed and largest wall seconds, summed CPU seconds
    (from the jobs' logs; start-up included), largest peak RSS.
    """
    t = table.assign(rule=table["rule"].str.split("/").str[0])
    return (t.groupby("rule", sort=False).agg(jobs=("wall_s", "size"), wall_s=("wall_s", "sum"),
                                               cpu_s=("cpu_s", lambda c: c.sum(min_count=1)),
                                               max_job_s=("wall_s", "max"), max_rss_mb=("max_rss_mb", "max"))
            .reset_index().sort_values("wall_s", ascending=False))


def model_table(models_dir: Path) -> pd.DataFrame:
    """Per model (mean over folds and seeds) from the trainer's params.json: epochs run, best epoch, training
    seconds (the fit loop only, no start-up), training samples/s."""
    import json

    rows = []
    for f in sorted(models_dir.glob("*/fold*/seed*/params.json")):
        p = json.loads(f.read_text())
        rows.append({"model": p["model"], "family": p["hyperparameters"]["family"], "unit": p["hyperparameters"]["unit"],
                     "seed": p["seed"], "train_units": p["n_train_units"], "epochs": p["epochs_run"],
                     "best_epoch": p["best_epoch"], "fit_s": p["seconds"],
                     "samples_per_s": p["train_samples_per_second"], "device": p["device"]})
    t = pd.DataFrame(rows)
    if t.empty:
        return t
    return (t.groupby(["model", "family", "unit", "device"], sort=False)
            .agg(seeds=("seed", "count"), train_units=("train_units", "first"), epochs=("epochs", "mean"),
                 best_epoch=("best_epoch", "mean"), fit_s=("fit_s", "mean"), samples_per_s=("samples_per_s", "mean"))
            .reset_index())
