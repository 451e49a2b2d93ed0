"""An independent paired data set for checking that model changes generalise beyond the demo.

``morphotx.data.demo`` is the only generator the pipeline's defaults were ever run on, so a method
that wins there may only have learned its structure. This script writes a data set with a
*different* generative model in the same Rosetta file schemas and runs it through the workflow
(``dataset.source: files``), printing the headline. Only the file layout (plates, wells, doses,
compound ids, DMSO positions) is borrowed from the demo; every feature value and every MoA
label is drawn here:

* MoAs: ``--moas`` of them with uneven sizes (Zipf-like; at least 2 compounds each), one MoA per
  compound; a per-MoA strength (some MoAs are weak);
* compounds: a latent vector = its MoA's prototype × strength + a compound deviation; each
  compound is active in Cell Painting and in L1000 independently (``--p-active-cp``,
  ``--p-active-l1000``), so many compounds are silent in one assay;
* dose: one logistic (Hill slope 1) curve per compound, shared by both assays;
* Cell Painting: a random two-layer tanh network of the well's latent state (nonlinear; the
  demo's map is linear through feature families), per-plate additive offsets, Student-t noise
  (df 4), then a random per-feature affine scale;
* L1000: a sparse linear map (each latent dimension moves ~60 genes) plus co-expression modules
  of noise and Gaussian noise; L1000 is the stronger assay by default (``--l1000-gain``).

``--layout uneven`` also changes the layout the workflow must cope with, as another lab's data set
would (:func:`uneven`): 96 compounds on 3 Cell Painting replicate plates and 2 L1000 replicates,
replicates missing at random, compounds measured in one assay only, doses missing in L1000,
compounds without a MoA annotation, two-MoA compounds and a MoA with a single compound.

Usage: ``python benchmarks/independent_data.py --out /tmp/indep [--run] [--cores 2]`` — writes the
files and a config ``<out>/config.yaml``; with ``--run`` also runs the workflow to the headline
(results under ``<out>/results/indep``) and prints it. Seeded (``--seed``): same seed → same files.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from morphotx.data import demo  # noqa: E402  (the file layout only)


def _moa_sizes(rng, n_compounds: int, n_moas: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n_moas + 1) ** 0.8
    sizes = np.full(n_moas, 2)
    extra = rng.multinomial(n_compounds - sizes.sum(), w / w.sum())
    return rng.permutation(sizes + extra)


UNEVEN_LAYOUT = {"n_compounds": 96, "cp_replicates": 3, "l1000_replicates": 2, "compounds_per_plate": 48}


def generate(seed: int = 7, n_moas: int = 20, latent: int = 6, p_active_cp: float = 0.6,
             p_active_l1000: float = 0.8, compound_sd: float = 0.4, cp_gain: float = 1.0, l1000_gain: float = 1.3,
             layout_overrides: dict | None = None) -> dict[str, pd.DataFrame]:
    """The four input tables (``cell_painting``, ``l1000``, ``probe_map``, ``moa_map``)."""
    rng = np.random.default_rng([seed, 20261126])
    layout = demo.simulate(demo.params_for("demo", {"multi_moa_fraction": 0.0, **(layout_overrides or {})}), seed)
    cp, l1k, probe_map = layout["cell_painting"].copy(), layout["l1000"].copy(), layout["probe_map"]
    ids = sorted(set(l1k.loc[l1k["pert_type_x"] != "ctl_vehicle", "pert_id"]))
    n = len(ids)
    sizes = _moa_sizes(rng, n, n_moas)
    moa_of = dict(zip(rng.permutation(ids), np.repeat(np.arange(n_moas), sizes)))
    names = [f"indep mechanism {k:02d}" for k in range(n_moas)]

    proto = rng.normal(size=(n_moas, latent))
    proto *= rng.uniform(0.6, 1.4, size=(n_moas, 1)) / np.linalg.norm(proto, axis=1, keepdims=True) * np.sqrt(latent)
    cpd_z = {c: proto[moa_of[c]] + rng.normal(scale=compound_sd, size=latent) for c in ids}
    ec50 = {c: float(np.exp(rng.uniform(np.log(0.05), np.log(5.0)))) for c in ids}
    act_cp = {c: rng.random() < p_active_cp for c in ids}
    act_l1k = {c: rng.random() < p_active_l1000 for c in ids}

    def well_latent(pert, dose, active):
        z = np.zeros((len(pert), latent))
        for i, (c, d) in enumerate(zip(pert, dose)):
            if c in cpd_z and active[c]:
                z[i] = cpd_z[c] * d / (d + ec50[c])
        return z + rng.normal(scale=0.3, size=z.shape)

    # Cell Painting: pert id = the first 13 characters of broad_sample (DMSO: none)
    junk = {f for v in demo.junk_feature_names().values() for f in v}
    feats = [c for c in cp.columns if c.split("_")[0] in demo.COMPARTMENTS and c not in junk]
    pert = cp["Metadata_broad_sample"].astype(str).str[:13].to_numpy()
    dose = pd.to_numeric(cp["Metadata_mmoles_per_liter"], errors="coerce").fillna(0).to_numpy()
    z = well_latent(pert, dose, act_cp)
    a1 = rng.normal(scale=2.0 / np.sqrt(latent), size=(latent, 64))
    b1 = rng.normal(scale=0.5, size=64)
    a2 = rng.normal(size=(64, len(feats))) * (rng.random((64, len(feats))) < 0.3) / np.sqrt(64 * 0.3)
    h = np.tanh(z @ a1 + b1) - np.tanh(b1)  # DMSO (z ≈ 0) sits near zero
    x = cp_gain * 2.0 * (h @ a2)
    plates = cp["Metadata_Plate"].to_numpy()
    for p in np.unique(plates):
        x[plates == p] += rng.normal(scale=0.3, size=len(feats))
    x += rng.standard_t(4, size=x.shape) * 0.8
    x = x * np.exp(rng.normal(scale=0.8, size=len(feats))) + rng.normal(scale=3.0, size=len(feats))
    cp[feats] = x.astype("float32")
    cp["Metadata_moa"] = [names[moa_of[c]] if c in moa_of else np.nan for c in pert]

    # L1000
    genes = [c for c in l1k.columns if c.endswith("_at")]
    pert = l1k["pert_id"].astype(str).to_numpy()
    dose = pd.to_numeric(l1k["pert_dose"], errors="coerce").fillna(0).to_numpy()
    z = well_latent(pert, dose, act_l1k)
    b = rng.normal(scale=1.0, size=(latent, len(genes))) * (rng.random((latent, len(genes))) < 60 / len(genes))
    modules = rng.normal(size=(10, len(genes))) * (rng.random((10, len(genes))) < 0.1)
    y = l1000_gain * 2.0 * (z @ b) + rng.normal(size=(len(z), 10)) @ modules + rng.normal(size=(len(z), len(genes)))
    l1k[genes] = y.astype("float32")
    l1k["moa"] = [names[moa_of[c]] if c in moa_of else np.nan for c in pert]

    moa_map = pd.DataFrame({"broad_id": ids, "pert_iname": [f"indep-{i:04d}" for i in range(n)],
                            "moa": [names[moa_of[c]] for c in ids]})
    return {"cell_painting": cp, "l1000": l1k, "probe_map": probe_map, "moa_map": moa_map}


def uneven(data: dict[str, pd.DataFrame], seed: int) -> dict[str, pd.DataFrame]:
    """Damage the layout of :func:`generate`'s tables (generated with :data:`UNEVEN_LAYOUT`): 12 % of
    the treated Cell Painting wells and 15 % of the treated L1000 profiles dropped, 6 compounds in
    Cell Painting only and 4 in L1000 only, the lowest L1000 dose of 10 compounds dropped, 5
    compounds without a MoA annotation, 3 compounds with a second MoA that no other compound has,
    one compound moved to a MoA of its own.
    """
    rng = np.random.default_rng([seed, 20261127])
    cp, l1k, moa = data["cell_painting"], data["l1000"], data["moa_map"].copy()
    cp_pert = cp["Metadata_broad_sample"].astype(str).str[:13]
    treated_cp = (cp["Metadata_broad_sample"].notna() & (cp["Metadata_broad_sample"].astype(str) != "DMSO")).to_numpy()
    keep_cp = ~(treated_cp & (rng.random(len(cp)) < 0.12))
    keep_l1k = ~((l1k["pert_type_x"] != "ctl_vehicle").to_numpy() & (rng.random(len(l1k)) < 0.15))
    ids = list(rng.permutation(sorted(moa["broad_id"])))
    keep_cp &= ~cp_pert.isin(ids[6:10]).to_numpy()
    keep_l1k &= ~l1k["pert_id"].isin(ids[:6]).to_numpy()
    for c in ids[10:20]:
        doses = l1k.loc[l1k["pert_id"] == c, "pert_dose"]
        if len(doses):
            keep_l1k &= ~((l1k["pert_id"] == c) & (l1k["pert_dose"] == doses.min())).to_numpy()
    moa = moa[~moa["broad_id"].isin(ids[20:25])].copy()
    for c in ids[25:28]:
        moa.loc[moa["broad_id"] == c, "moa"] += "|indep mechanism 99"
    moa.loc[moa["broad_id"] == ids[30], "moa"] = "indep singleton mechanism"
    cp = cp[keep_cp].assign(Metadata_moa=np.nan)  # the MoA map is the only annotation
    l1k = l1k[keep_l1k].assign(moa=np.nan)
    return {**data, "cell_painting": cp, "l1000": l1k, "moa_map": moa}


def write(out: Path, seed: int, models: list[str] | None, layout: str = "demo") -> Path:
    """Write the files and a workflow config under ``out``; returns the config's path."""
    out.mkdir(parents=True, exist_ok=True)
    data = (generate(seed) if layout == "demo"
            else uneven(generate(seed, n_moas=14, layout_overrides=UNEVEN_LAYOUT), seed))
    gz = {"method": "gzip", "mtime": 0}
    paths = {"cell_painting": out / "cell_painting.csv.gz", "l1000": out / "l1000.csv.gz",
             "probe_map": out / "probe_map.tsv", "moa_map": out / "moa_map.tsv"}
    data["cell_painting"].to_csv(paths["cell_painting"], index=False, compression=gz, float_format="%.6g")
    data["l1000"].to_csv(paths["l1000"], index=False, compression=gz, float_format="%.6g")
    data["probe_map"].to_csv(paths["probe_map"], sep="\t", index=False)
    data["moa_map"].to_csv(paths["moa_map"], sep="\t", index=False)
    cfg = {"dataset": {"name": "indep", "source": "files"}, "inputs": {k: str(v) for k, v in paths.items()},
           "moa": {"source": "map"}}
    if models:
        base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["models"]
        cfg["models"] = {m: {**spec, "enabled": m in models} for m, spec in base.items()}
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--models", default="", help="comma-separated models to enable (default: the config's)")
    ap.add_argument("--run", action="store_true", help="run the workflow to the headline and print it")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--layout", choices=["demo", "uneven"], default="demo",
                    help="uneven: another layout, with missing replicates, doses, assays and annotations (see uneven())")
    a = ap.parse_args(argv)
    cfg = write(a.out, a.seed, [m for m in a.models.split(",") if m], a.layout)
    print(f"wrote {a.out} (config {cfg})")
    if a.run:
        cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--directory", str(a.out),
               "--configfile", str(cfg), "--cores", str(a.cores), "--quiet", "all", "--", "headline"]
        subprocess.run(cmd, check=True)
        print((a.out / "results" / "indep" / "leaderboard" / "headline.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
