"""Conversion throughput and peak memory on a real-size Cell Painting file (make bench-convert).

Generates a CSV.gz in the Rosetta LINCS-Pilot1 Cell Painting schema at the real size (52,223 wells ×
26 metadata + 1,779 CellProfiler feature columns, values printed with 3 decimals,
which gives about the published file's compressed size), then converts it (morphotx.data.convert.convert) and harmonises it
(morphotx.data.harmonise.harmonise), each in a fresh process, and prints wall time, MB/s of
compressed input and the child's peak RSS.

    python benchmarks/bench_convert.py [--rows 52223] [--features 1779] [--keep DIR]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

REPO = Path(__file__).resolve().parents[1]
FORMAT = REPO / "resources" / "datasets" / "lincs_pilot1.yaml"
META = ["Metadata_plate_map_name", "Metadata_broad_sample", "Metadata_mg_per_ml", "Metadata_mmoles_per_liter",
        "Metadata_solvent", "Metadata_pert_id", "Metadata_pert_mfc_id", "Metadata_pert_well", "Metadata_pert_id_vendor",
        "Metadata_cell_id", "Metadata_broad_sample_type", "Metadata_pert_vehicle", "Metadata_pert_type",
        "Metadata_broad_id", "Metadata_InChIKey14", "Metadata_moa", "Metadata_target", "Metadata_broad_date",
        "Metadata_alternative_moa", "Metadata_alternative_target", "Metadata_Plate", "Metadata_Well",
        "Metadata_Assay_Plate_Barcode", "Metadata_Plate_Map_Name", "Metadata_Batch_Number", "Metadata_Batch_Date"]
DOSES = [0.041152, 0.123457, 0.37037, 1.1111, 3.3333, 10.0]


def generate(path: Path, rows: int, n_feat: int, seed: int = 0, chunk: int = 2000) -> None:
    rng = np.random.default_rng(seed)
    comps = ["Cells_", "Cytoplasm_", "Nuclei_"]
    feats = [f"{comps[i % 3]}Feature_{i:04d}_{['DNA', 'RNA', 'ER', 'AGP', 'Mito'][i % 5]}" for i in range(n_feat)]
    cpds = [f"BRD-K{n:08d}" for n in rng.choice(10**8, 1571, replace=False)]
    with pa.CompressedOutputStream(str(path), "gzip") as out:
        writer = None
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            idx = np.arange(start, start + n)
            ctl = rng.random(n) < 0.1
            cpd = np.asarray(cpds)[rng.integers(0, len(cpds), n)]
            cols = {m: pa.array([f"{m[9:]}_{i % 97}" for i in idx]) for m in META}
            cols["Metadata_broad_sample"] = pa.array(np.where(ctl, "DMSO", np.char.add(cpd, "-001-01-1")))
            cols["Metadata_pert_id"] = pa.array(np.where(ctl, "", cpd))
            cols["Metadata_mmoles_per_liter"] = pa.array(np.where(ctl, 0.0, np.asarray(DOSES)[rng.integers(0, 6, n)]))
            cols["Metadata_Plate"] = pa.array([f"SQ{15000 + i // 384:08d}" for i in idx])
            cols["Metadata_Well"] = pa.array([f"{'ABCDEFGHIJKLMNOP'[(i % 384) // 24]}{(i % 24) + 1:02d}" for i in idx])
            cols["Metadata_moa"] = pa.array(["A inhibitor|B agonist" if i % 7 else "" for i in idx])
            x = rng.lognormal(3.0, 1.0, size=(n, n_feat))
            x = np.round(x, 3)  # 3 decimals: ~5 significant digits at the typical magnitude
            for j, f in enumerate(feats):
                cols[f] = pa.array(x[:, j])
            table = pa.table(cols)
            if writer is None:
                writer = pacsv.CSVWriter(out, table.schema)
            writer.write_table(table)
        writer.close()


CHILD = """
import json, sys, time, resource, logging
sys.path.insert(0, {src!r})
logging.basicConfig(level=logging.WARNING)
from morphotx.data.convert import convert
from morphotx.data.harmonise import harmonise
t = time.perf_counter()
if {step!r} == "convert":
    convert({inp!r}, {out!r}, {fmt!r}, "cell_painting")
else:
    harmonise({inp!r}, {out!r}, {fmt!r}, "cell_painting")
print(json.dumps({{"s": time.perf_counter() - t, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def child(step: str, inp: Path, out: Path) -> dict:
    code = CHILD.format(src=str(REPO / "src"), step=step, inp=str(inp), out=str(out), fmt=str(FORMAT))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=52223)
    ap.add_argument("--features", type=int, default=1779)
    ap.add_argument("--keep", type=Path, default=None, help="write files here instead of a temporary dir")
    args = ap.parse_args()
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="morphotx-bench-convert-"))
    tmp.mkdir(parents=True, exist_ok=True)
    src = tmp / "replicate_level_cp_augmented.csv.gz"
    t = time.perf_counter()
    if not src.exists():
        part = src.with_name(src.name + ".part")
        generate(part, args.rows, args.features)
        part.rename(src)
    mb = src.stat().st_size / 1e6
    print(f"input: {args.rows} rows × {len(META) + args.features} columns, {mb:.1f} MB gzip "
          f"(generated in {time.perf_counter() - t:.0f} s; the real file is 296.8 MB)")
    conv = child("convert", src, tmp / "cp.parquet")
    pq_mb = (tmp / "cp.parquet").stat().st_size / 1e6
    print(f"convert   CSV.gz -> Parquet: {conv['s']:6.1f} s  {mb / conv['s']:6.1f} MB/s (compressed input)  "
          f"peak RSS {conv['rss_mb']:7.0f} MB  -> {pq_mb:.1f} MB Parquet")
    harm = child("harmonise", tmp / "cp.parquet", tmp / "cp_harmonised.parquet")
    print(f"harmonise Parquet -> schema: {harm['s']:6.1f} s                              peak RSS {harm['rss_mb']:7.0f} MB")
    print(f"this process (generation) peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; files in {tmp}")


if __name__ == "__main__":
    main()
