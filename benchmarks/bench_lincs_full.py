"""Benchmark: the LINCS-Pilot1-size demo (demo.scale: lincs) end to end, `make bench-lincs-full`.

Simulates the data (timed apart, not part of the target), then runs the chosen target: by default the
leaderboard and the headline (training, embedding, evaluation of every enabled model), or only the
models' training (`--target models`), or — in a directory kept by an earlier run (`--keep DIR`, same
`--models` and `--folds`), embeddings in place — only the evaluation again (`--target evaluation`:
evaluate_model and evaluate_raw forced, then the leaderboard and the headline; nothing else reruns,
so checkpoints trained on a GPU machine can be scored on a CPU one). Prints per-rule wall time and
peak RSS (Snakemake `benchmark:` files, start-up included), per model the epochs run and the kept
epoch, and total wall and CPU seconds.

Defaults: one seed, one fold (train/validation/test = 0.65/0.15/0.2 of the compounds), every model.
Usage: .venv/bin/python benchmarks/bench_lincs_full.py [--cores 2] [--device auto|cpu|cuda]
       [--models supcon,clip] [--folds 1] [--target leaderboard|models|evaluation] [--gpu-jobs 1] [--eval-threads 1]
       [--keep DIR]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import yaml

from _common import REPO, cpu_seconds, model_table, rule_summary, rule_table, run_workflow

ap = argparse.ArgumentParser()
ap.add_argument("--cores", type=int, default=2)
ap.add_argument("--device", default="auto", help="train.device")
ap.add_argument("--models", help="comma-separated model names (default: the enabled models of config/config.yaml)")
ap.add_argument("--folds", type=int, default=1, help="split.folds (1: one train/validation/test split)")
ap.add_argument("--target", choices=["leaderboard", "models", "evaluation"], default="leaderboard",
                help="evaluation: score a finished run kept in --keep DIR again (its evaluation jobs only)")
ap.add_argument("--gpu-jobs", type=int, default=1, help="training jobs sharing the GPU at once (--resources gpu=N)")
ap.add_argument("--eval-threads", type=int, default=1,
                help="threads.evaluate: worker processes per evaluation job (on many cores, more shortens the longest)")
ap.add_argument("--keep", help="work in this directory and keep it")
ap.add_argument("--scale", default="lincs", help="demo.scale (tiny: a smoke test of this script)")
args = ap.parse_args()

all_models = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["models"]
chosen = args.models.split(",") if args.models else [m for m, c in all_models.items() if c.get("enabled", True)]
unknown = sorted(set(chosen) - set(all_models))
if unknown:
    ap.error(f"--models: unknown {unknown}; known: {sorted(all_models)}")
cfg = {"dataset": {"name": "lincs"}, "demo": {"scale": args.scale}, "split": {"folds": args.folds},
       "train": {"device": args.device, "seeds": [0]}, "threads": {"evaluate": args.eval_threads},
       "models": {m: {"enabled": m in chosen} for m in all_models}}
if args.device == "cuda":
    cfg["train"]["mixed_precision"] = True  # bf16 autocast, as a GPU user would run it
ctx = tempfile.TemporaryDirectory() if not args.keep else None
work = Path(args.keep or ctx.name)
out = work / "results" / "lincs"
extra = ["--resources", f"gpu={args.gpu_jobs}"]
if args.target == "evaluation":
    if not (out / "embeddings").is_dir():
        ap.error(f"--target evaluation scores a finished run again: --keep DIR must hold one ({out / 'embeddings'} is missing)")
    # only the forced evaluation jobs and what reads them: mtime alone decides what else is out of date
    extra += ["--forcerun", "evaluate_model", "evaluate_raw", "--rerun-triggers", "mtime"]
    sim = None
else:
    sim = run_workflow(work, cfg, ["results/lincs/raw/ground_truth.parquet"], cores=args.cores)
if args.target == "models":
    targets = [f"results/lincs/models/{m}/fold{f}/seed0/params.json" for m in chosen for f in range(args.folds)]
else:
    targets = ["results/lincs/leaderboard/leaderboard.parquet", "results/lincs/leaderboard/headline.parquet",
               "results/lincs/leaderboard/training.parquet"]
cpu0, t0, started = cpu_seconds(), time.perf_counter(), time.time()
wall = run_workflow(work, cfg, targets, cores=args.cores, extra=extra)
cpu = cpu_seconds() - cpu0
table = rule_table(out / "benchmarks", since=started if args.target == "evaluation" else None)
fmt = {"float_format": lambda x: f"{x:.1f}", "index": False}
print(f"LINCS-scale demo, target {args.target}, {len(chosen)} models, {args.folds} fold(s), 1 seed, "
      f"train.device {args.device}, threads.evaluate {args.eval_threads}, {args.cores} cores ({os.cpu_count()} CPUs on the machine)")
print(rule_summary(table[table.rule != "demo_data"]).to_string(**fmt))
print()
print("models (fit loop only):")
print(model_table(out / "models").to_string(**fmt))
print()
print("simulation: not run (--target evaluation)" if sim is None else f"simulation (not part of the target): {sim:.1f} s")
print(f"target {args.target}: {wall:.1f} s wall, {cpu:.0f} CPU-s (user + sys of all jobs); "
      f"peak RSS of any step {table[table.rule != 'demo_data'].max_rss_mb.max():.0f} MB")
if (out / "leaderboard" / "headline.md").exists():
    print((out / "leaderboard" / "headline.md").read_text())
