"""CDRP-Bray preparation at growing sizes: per-stage wall time and peak RSS (make bench-cdrp-scale).

For each scale, writes CDRP-shaped files with morphotx.data.cdrp_demo (preset ``full``: the real CDRP's
1,783 Cell Painting features and 978 probes; ``scale`` × its 30,000 compounds, 4 replicate plates
of 384 wells per plate map, 3 L1000 replicates), then runs each stage in a fresh process through
the shipped column map (resources/datasets/cdrp_bray.yaml, MoA from the generator's map):

    convert (CP, L1000) -> harmonise (CP, L1000) -> map_probes -> split -> preprocess (CP, L1000) -> pair
    -> train_annotated -> embed_cp_wells, embed_cp_treatments

(the last three: seed 003's use case, a SupCon model trained for 3 epochs on the annotated compounds
only — a memory and throughput measurement, not a quality one — embeds the Cell Painting profiles
of every compound, annotated or not, with or without L1000: each well, and each treatment's
median profile; ``morphotx.embed_file``, in row batches)

and prints each stage's wall time and the child's peak RSS (ru_maxrss), one table per scale and
one summary of how the largest stage's memory grows with wells.

    python benchmarks/bench_cdrp_scale.py [--scales 0.02 0.05 0.1] [--keep DIR] [--stages STAGE ...]

The real CDRP Cell Painting file is 2.18 GB compressed (~30,000 compounds); scale 1 writes about
that many compounds, but its size in bytes depends on how values are printed, so the table names
the compressed MB of each generated file.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORMAT = REPO / "resources" / "datasets" / "cdrp_bray.yaml"

CHILD = """
import json, sys, time, resource, logging
sys.path.insert(0, {src!r})
logging.basicConfig(level=logging.WARNING)
from morphotx.data import convert
from morphotx.data import harmonise
from morphotx.prepare import pairing
from morphotx.prepare import preprocess
from morphotx.data import probes
from morphotx.prepare import split
from morphotx.prepare import preprocess_stream
from morphotx.settings import MoaSettings, SplitSettings
d, fmt = {d!r}, {fmt!r}
moa = MoaSettings(source="map", map_key="broad_id")
t = time.perf_counter()
step = {step!r}
if step == "convert_cp":
    convert.convert(d + "/cp.csv.gz", d + "/cp.parquet", fmt, "cell_painting")
elif step == "convert_l1000":
    convert.convert(d + "/l1000.csv.gz", d + "/l1000.parquet", fmt, "l1000")
elif step == "harmonise_cp":
    harmonise.harmonise(d + "/cp.parquet", d + "/cp_h.parquet", fmt, "cell_painting", moa=moa, moa_map=d + "/moa.tsv")
elif step == "harmonise_l1000":
    harmonise.harmonise(d + "/l1000.parquet", d + "/l1000_h.parquet", fmt, "l1000", moa=moa, moa_map=d + "/moa.tsv")
elif step == "map_probes":
    probes.map_probes(d + "/l1000_h.parquet", d + "/l1000_g.parquet", d + "/probes.tsv")
elif step == "split":
    split.split_compounds([d + "/cp_h.parquet", d + "/l1000_g.parquet"], d + "/split.parquet",
                          SplitSettings(fractions={{"train": 0.6, "validation": 0.2, "test": 0.2}}, seed=1, folds=1))
elif step == "preprocess_cp":
    preprocess_stream.preprocess_cp(d + "/cp_h.parquet", d + "/split.parquet", d + "/cp_p.parquet", d + "/cp.json",
                                    d + "/cp.npz")
elif step == "train_annotated":  # a model of the annotated compounds only (seed 003); memory/throughput, not quality
    import pandas as pd
    from morphotx.io import read_table, write_parquet
    from morphotx.models import train_model
    for m in ("cp", "l1000"):
        df = read_table(d + f"/{{m}}_p.parquet")
        write_parquet(df[df["Metadata_moa"].str.len().gt(0).to_numpy()], d + f"/{{m}}_ann.parquet")
        del df
    pairing.pair(d + "/cp_ann.parquet", d + "/l1000_ann.parquet", d + "/pairs_ann.parquet", d + "/sets_ann.parquet",
                 d + "/cp_ann_c.parquet", d + "/l1000_ann_c.parquet")
    from morphotx.models import resolve
    from morphotx.settings import TrainSettings
    train_model("supcon", resolve("supcon", {{"family": "supcon"}}), TrainSettings(max_epochs=3, patience=3, progress=False),
                d + "/cp_ann.parquet", d + "/l1000_ann.parquet", d + "/pairs_ann.parquet", d + "/sets_ann.parquet",
                d + "/model.pt", d + "/model_history.csv", d + "/model.json", seed=0)
elif step == "embed_cp_wells":  # every well of every compound, annotated or not, with or without L1000
    from morphotx.models import embed_file
    embed_file(d + "/model.pt", d + "/cp_p.parquet", d + "/cp_embedding_wells.parquet", view="cp")
elif step == "embed_cp_treatments":  # every treatment's median profile (the collapsed file of pair)
    from morphotx.models import embed_file
    embed_file(d + "/model.pt", d + "/cp_c.parquet", d + "/cp_embedding_treatments.parquet", view="cp")
elif step == "preprocess_cp_whole_table":
    preprocess.preprocess_cp(d + "/cp_h.parquet", d + "/split.parquet", d + "/cp_pw.parquet", d + "/cpw.json",
                             d + "/cpw.npz")
elif step == "recipe_choice":
    import yaml
    from morphotx.prepare import recipe_choice
    pre = yaml.safe_load(open({cfg!r}))["preprocess"]["cell_painting"]
    from morphotx.settings import CellPaintingPreprocessSettings
    recipes = CellPaintingPreprocessSettings(candidates=pre["candidates"],
                                             choose_with=pre.get("choose_with", CellPaintingPreprocessSettings().choose_with))
    recipe_choice.preprocess_cp(d + "/cp_h.parquet", d + "/split.parquet", d + "/cp_rc.parquet", d + "/cp_rc.json",
                                d + "/cp_rc.npz", d + "/choice.tsv", recipes, seed=1)
elif step == "preprocess_l1000":
    preprocess.preprocess_l1000(d + "/l1000_g.parquet", d + "/split.parquet", d + "/l1000_p.parquet", d + "/l.json",
                                d + "/l.npz")
elif step == "pair":
    pairing.pair(d + "/cp_p.parquet", d + "/l1000_p.parquet", d + "/pairs.parquet", d + "/sets.parquet",
                 d + "/cp_c.parquet", d + "/l1000_c.parquet")
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"s": time.perf_counter() - t, "rss_mb": ru.ru_maxrss / 1024, "cpu_s": ru.ru_utime + ru.ru_stime}}))
"""

STEPS = ["convert_cp", "convert_l1000", "harmonise_cp", "harmonise_l1000", "map_probes", "split", "preprocess_cp",
         "preprocess_l1000", "pair", "train_annotated", "embed_cp_wells", "embed_cp_treatments"]
OPTIONAL = ["preprocess_cp_whole_table", "recipe_choice"]  # the previous path; the rule with config.yaml's candidates


def child(step: str, d: Path) -> dict:
    code = CHILD.format(src=str(REPO / "src"), d=str(d), fmt=str(FORMAT), step=step,
                        cfg=str(REPO / "config" / "config.yaml"))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{step} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


GEN = """
import json, sys, time, resource
sys.path.insert(0, {src!r})
from morphotx.data.cdrp_demo import cdrp_data
d = {d!r}
t = time.perf_counter()
s = cdrp_data({{"cell_painting": d + "/cp.csv.gz", "l1000": d + "/l1000.csv.gz", "probe_map": d + "/probes.tsv",
               "moa_map": d + "/moa.tsv"}}, preset="full", scale={scale!r}, seed=0)
s = {{k: v for k, v in s.items() if not isinstance(v, list)}}
s.update(s=time.perf_counter() - t, rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(s))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=float, nargs="+", default=[0.02, 0.05, 0.1])
    ap.add_argument("--keep", type=Path, default=None, help="write files here instead of a temporary dir; files "
                    "already generated there (scale_<s>/generated.json) are reused, not generated again")
    ap.add_argument("--stages", nargs="+", default=STEPS, choices=STEPS + OPTIONAL,
                    help="stages to run, in order (default: all of the preparation)")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="morphotx-bench-cdrp-"))
    summary = []
    for scale in args.scales:
        d = root / f"scale_{scale:g}"
        d.mkdir(parents=True, exist_ok=True)
        done = d / "generated.json"
        if done.exists():
            gen = json.loads(done.read_text())
            gen["reused"] = True
        else:
            res = subprocess.run([sys.executable, "-c", GEN.format(src=str(REPO / "src"), d=str(d), scale=scale)],
                                 capture_output=True, text=True, check=True)
            gen = json.loads(res.stdout.strip().splitlines()[-1])
            done.write_text(json.dumps(gen))
        cp_mb = (d / "cp.csv.gz").stat().st_size / 1e6
        l1k_mb = (d / "l1000.csv.gz").stat().st_size / 1e6
        print(f"\nscale {scale:g}: {gen['compounds']} compounds, CP {gen['cp_wells']} wells × {gen['cp_features']} "
              f"features ({cp_mb:.1f} MB gzip), L1000 {gen['l1000_profiles']} profiles × {gen['probes']} probes "
              f"({l1k_mb:.1f} MB gzip); {'reused, ' if gen.get('reused') else ''}generated in {gen['s']:.0f} s, "
              f"peak RSS {gen['rss_mb']:.0f} MB")
        print(f"{'stage':20s} {'wall s':>8s} {'CPU s':>8s} {'peak RSS MB':>12s}")
        total, peak = 0.0, 0.0
        for step in args.stages:
            t0 = time.perf_counter()
            r = child(step, d)
            wall = time.perf_counter() - t0  # the child's whole life: imports and reads included
            total += wall
            peak = max(peak, r["rss_mb"])
            print(f"{step:20s} {wall:8.1f} {r['cpu_s']:8.1f} {r['rss_mb']:12.0f}", flush=True)
        print(f"{'total':20s} {total:8.1f} {'':8s} {peak:12.0f} (largest stage)")
        summary.append((scale, gen["cp_wells"], cp_mb, total, peak))
    print("\nscale   CP wells  CP MB gz  total s  largest peak RSS MB")
    for scale, wells, mb, total, peak in summary:
        print(f"{scale:<7g} {wells:8d} {mb:9.1f} {total:8.1f} {peak:10.0f}")
    print(f"(this process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; files in {root})")


if __name__ == "__main__":
    main()
