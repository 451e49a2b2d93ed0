"""Benchmark: the whole demo workflow (`make run`'s target) from nothing, on this machine.

Prints total wall time and per-rule wall time and peak RSS (from Snakemake's `benchmark:` files).
Usage: .venv/bin/python benchmarks/bench_demo.py [--cores 2]
"""

import argparse
import os
import tempfile
from pathlib import Path

from _common import rule_table, run_workflow

ap = argparse.ArgumentParser()
ap.add_argument("--cores", type=int, default=2)
args = ap.parse_args()
with tempfile.TemporaryDirectory() as d:
    total = run_workflow(Path(d), {"dataset": {"name": "demo"}}, [], cores=args.cores)
    table = rule_table(Path(d) / "results" / "demo" / "benchmarks")
print(f"demo workflow, {args.cores} cores, {os.cpu_count()} CPUs on the machine")
print(table.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
print(f"total wall time: {total:.1f} s (target <= 300 s)")
