"""Benchmark: the whole demo workflow (`make run`'s target, every model, every fold and seed) from nothing;
with ``--config config/quick.yaml``, `make quick`'s (that file layered on the default, as `make quick` does).

Prints per-rule wall time and peak RSS (Snakemake `benchmark:` files, start-up included), then per
model the training time of the fit loop and training samples/s (mean over folds and seeds), then total wall.
Usage: .venv/bin/python benchmarks/bench_demo.py [--cores 2] [--keep DIR] [--config FILE]
"""

import argparse
import contextlib
import os
import tempfile
from pathlib import Path

import yaml

from _common import cpu_seconds, model_table, rule_summary, rule_table, run_workflow

ap = argparse.ArgumentParser()
ap.add_argument("--cores", type=int, default=2)
ap.add_argument("--keep", help="work in this (empty) directory and keep it")
ap.add_argument("--config", help="a config file layered on the default (e.g. config/quick.yaml)")
args = ap.parse_args()
config = yaml.safe_load(Path(args.config).read_text()) if args.config else {}
config.setdefault("dataset", {}).setdefault("name", "demo")
name = config["dataset"]["name"]
with (tempfile.TemporaryDirectory() if not args.keep else contextlib.nullcontext(args.keep)) as d:
    cpu0 = cpu_seconds()
    total = run_workflow(Path(d), config, [], cores=args.cores)
    cpu = cpu_seconds() - cpu0
    noop = run_workflow(Path(d), config, [], cores=args.cores)  # nothing to do
    table = rule_table(Path(d) / "results" / name / "benchmarks")
    models = model_table(Path(d) / "results" / name / "models")
print(f"{name} workflow ({args.config or 'config/config.yaml'}), {args.cores} cores, {os.cpu_count()} CPUs on the machine")
print(rule_summary(table).to_string(index=False, float_format=lambda x: f"{x:.1f}"))
print()
print("models (fit loop only; mean over folds and seeds):")
print(models.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
print(f"sum of per-rule wall times: {table['wall_s'].sum():.1f} s")
print(f"total: {total:.1f} s wall (target <= 300 s), {cpu:.0f} CPU-s user + sys of all jobs (target <= 600)")
print(f"no-op rerun: {noop:.1f} s wall (target <= 15 s)")
