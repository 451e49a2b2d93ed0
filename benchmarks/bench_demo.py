"""Benchmark: the whole demo workflow (`make run`'s target, every model, every fold and seed) from nothing.

Prints per-rule wall time and peak RSS (Snakemake `benchmark:` files, start-up included), then per
model the training time of the fit loop and training samples/s (mean over folds and seeds), then total wall.
Usage: .venv/bin/python benchmarks/bench_demo.py [--cores 2]
"""

import argparse
import os
import tempfile
from pathlib import Path

from _common import model_table, rule_table, run_workflow

ap = argparse.ArgumentParser()
ap.add_argument("--cores", type=int, default=2)
args = ap.parse_args()
with tempfile.TemporaryDirectory() as d:
    total = run_workflow(Path(d), {"dataset": {"name": "demo"}}, [], cores=args.cores)
    table = rule_table(Path(d) / "results" / "demo" / "benchmarks")
    models = model_table(Path(d) / "results" / "demo" / "models")
print(f"demo workflow, {args.cores} cores, {os.cpu_count()} CPUs on the machine")
print(table.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
print()
print("models (fit loop only; mean over folds and seeds):")
print(models.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
print(f"sum of per-rule wall times: {table['wall_s'].sum():.1f} s")
print(f"total wall time: {total:.1f} s (target <= 300 s)")
