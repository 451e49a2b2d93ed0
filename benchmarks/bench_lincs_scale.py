"""Benchmark: LINCS-Pilot1-size data (1,571 compounds, ~52k Cell Painting wells x ~1.8k columns,
~28k L1000 profiles) through harmonise -> probe map -> split -> preprocess -> pair.

The data are simulated at that scale (demo.scale: lincs); the simulation itself is timed
separately and is not part of the target. Targets: <= 10 min and <= 6 GB peak RSS per step.
Usage: .venv/bin/python benchmarks/bench_lincs_scale.py [--cores 2] [--keep DIR]
"""

import argparse
import tempfile
from pathlib import Path

from _common import rule_table, run_workflow

ap = argparse.ArgumentParser()
ap.add_argument("--cores", type=int, default=2)
ap.add_argument("--keep", help="work in this directory and keep it")
args = ap.parse_args()
cfg = {"dataset": {"name": "lincs"}, "demo": {"scale": "lincs"}}
ctx = tempfile.TemporaryDirectory() if not args.keep else None
work = Path(args.keep or ctx.name)
out = work / "results" / "lincs"
sim = run_workflow(work, cfg, ["results/lincs/raw/ground_truth.parquet"], cores=args.cores)
steps = run_workflow(work, cfg, ["results/lincs/pairs/fold0/pair_index.parquet"], cores=args.cores)  # one fold
table = rule_table(out / "benchmarks")
pipeline = table[table.rule != "demo_data"]
print(table.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
print(f"simulation (not part of the target): {sim:.1f} s")
print(f"harmonise + map + split + preprocess + pair: {steps:.1f} s wall with {args.cores} cores "
      f"(sum of rule times {pipeline.wall_s.sum():.1f} s); peak RSS of any step {pipeline.max_rss_mb.max():.0f} MB")
print("targets: <= 600 s, <= 6144 MB")
