"""Shared helpers of the benchmark scripts: run Snakemake in a scratch dir, read benchmark TSVs."""

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def run_workflow(workdir: Path, config: dict, targets: list[str], cores: int = 2) -> float:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cfg.yaml").write_text(yaml.safe_dump(config))
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile",
           str(workdir / "cfg.yaml"), "--cores", str(cores), "--quiet", "all", "--", *(targets or ["all"])]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def rule_table(bench_dir: Path) -> pd.DataFrame:
    rows = []
    for f in sorted(bench_dir.glob("*.tsv")):
        b = pd.read_csv(f, sep="\t")
        rows.append({"rule": f.stem, "wall_s": float(b["s"].iloc[0]), "max_rss_mb": float(b["max_rss"].iloc[0])})
    return pd.DataFrame(rows)
