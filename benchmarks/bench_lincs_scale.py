"""Benchmark: LINCS-Pilot1-size data (1,571 compounds, ~52k Cell Painting wells x ~1.8k columns,
~28k L1000 profiles) through harmonise -> probe map -> split -> preprocess -> pair.

The data are simulated at that scale (demo.scale: lincs); the simulation itself is timed
separately and is not part of the target. Targets (issue 13): <= 90 s wall on 2 cores, <= 4 GB peak
RSS of any step. Then, on the same data, the feature-selection step against pycytominer's
``feature_select`` standalone (bench_feature_select.py; target ratio <= 1.5, identical features).
Usage: .venv/bin/python benchmarks/bench_lincs_scale.py [--cores 2] [--keep DIR] [--nan-free-only]
"""

import argparse
import tempfile
from pathlib import Path

from bench_feature_select import report

from _common import rule_table, run_workflow

ap = argparse.ArgumentParser()
ap.add_argument("--cores", type=int, default=2)
ap.add_argument("--keep", help="work in this directory and keep it")
ap.add_argument("--nan-free-only", action="store_true", help="feature selection: skip pycytominer's slow NaN case")
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
print("targets: <= 90 s, <= 4096 MB")
print("feature selection, same LINCS-size table (normalised train + DMSO rows), one process, one after the other:")
report(out / "profiles" / "cp_harmonised.parquet", out / "split" / "fold0" / "compound_split.parquet", args.nan_free_only)
