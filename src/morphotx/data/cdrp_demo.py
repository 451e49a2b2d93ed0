"""A simulated CDRP-Bray-shaped data set: the column names the data set's authors read (shared
design notes, "Columns of the CDRP-Bray files"), for tests and the CDRP scale benchmark.

It is deliberately unlike :mod:`morphotx.data.demo` (the LINCS-shaped demo) where CDRP differs:

* **one dose** for most compounds (``multi_dose_fraction`` get two or three), at per-compound
  concentrations near 10 µM in ``Metadata_mmoles_per_liter2`` (not a six-dose grid);
* the treatment key is written by the file: ``Metadata_Sample_Dose`` / ``pert_sample_dose``
  (``<broad sample>_<dose:.2f>``), controls ``DMSO``;
* **plate layout**: 384-well plates with 64 mock (DMSO) wells in the outer two columns on each
  side, 320 treatment wells; 4 replicate plates per plate map, numeric plate barcodes
  (``Metadata_Plate`` 24277…), plate maps ``C-2113-01-CMP-…``; wells are shuffled per plate map;
* **most compounds have no MoA**: only ``annotated_fraction`` appear in the Repurposing-Hub-style
  map (``broad_id``/``moa``); half of the others act through MoAs nobody annotated, the rest are
  inactive; ``Metadata_moa`` in the Cell Painting file is empty for all (as the map is the source);
* **missing modality**: ``cp_only_fraction`` of compounds are absent from L1000 and
  ``l1000_only_fraction`` absent from Cell Painting;
* L1000 (U2OS, 6 h) has **no well, cid or pert_type column**; ``pert_id`` is the full sample id
  (``BRD-K12345678-001-01-1``), ``BROAD_CPD_ID`` the compound, ``CPD_NAME``/``CPD_TYPE``/``CPD_SMILES``;
  3 replicate plates (``CPC004_U2OS_6H_X<r>_B<b>``), 16 DMSO samples per plate; probes ``<n>_at``
  with this generator's own probe map.

Biology (seeded): a latent state per compound (MoA vectors, compound deviations, per-compound
potency, assays that respond separately), read out linearly into features with well noise,
per-plate additive and multiplicative drift, heavy-tailed positive scales for half of the Cell
Painting features, and a few NaN values.

Files are written plate map by plate map (Arrow's CSV writer into a gzip stream), so memory stays
at one plate map's block whatever ``scale``: the benchmark writes hundreds of MB with it.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_outputs

log = logging.getLogger(__name__)

WELLS_PER_PLATE = 384
CTL_COLUMNS = (1, 2, 23, 24)  # mock wells: the outer two columns on each side (64 wells)
ROWS = "ABCDEFGHIJKLMNOP"


@dataclass(frozen=True)
class CdrpParams:
    """Sizes and effect strengths; :data:`PRESETS` names two (``test``: a few MB; ``full``: the real
    CDRP's compound and feature counts, 30,000 × 1,783, before ``scale``).
    """

    n_compounds: int = 150
    n_cp_features: int = 200
    n_probes: int = 978
    n_moas: int = 8
    annotated_fraction: float = 0.4
    multi_moa_fraction: float = 0.1
    multi_dose_fraction: float = 0.1
    cp_only_fraction: float = 0.1
    l1000_only_fraction: float = 0.05
    cp_replicates: int = 4
    l1000_replicates: int = 3
    treatments_per_map: int = 320  # treatment wells used per plate map (the real layout has 320)
    l1000_per_plate: int = 368  # samples per L1000 plate, 16 of them DMSO
    latent: int = 12
    effect: float = 1.2


PRESETS = {
    "test": CdrpParams(treatments_per_map=60, l1000_per_plate=76),  # several plates even when small
    "full": CdrpParams(n_compounds=30_000, n_cp_features=1_783, n_moas=60, annotated_fraction=0.05),
}


def params_for(preset: str = "test", scale: float = 1.0, **overrides) -> CdrpParams:
    """The preset's parameters with ``n_compounds`` multiplied by ``scale`` (at least 20)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown CDRP preset {preset!r}; one of {sorted(PRESETS)}")
    p = PRESETS[preset]
    p = replace(p, n_compounds=max(20, int(round(p.n_compounds * scale))))
    return replace(p, **overrides)


def cp_feature_names(n: int) -> list[str]:
    """``n`` CellProfiler-named features (evenly spaced over the intrinsic names of the demo's list,
    then numbered texture scales if more are asked than that list has).
    """
    from .demo import cellprofiler_feature_names

    names = [f for f, _ in cellprofiler_feature_names()]
    if n <= len(names):
        return [names[i] for i in np.linspace(0, len(names) - 1, n).astype(int)]
    extra = [f"Cells_Texture_Extra_{i}_DNA_20_0" for i in range(n - len(names))]
    return names + extra


def _compounds(p: CdrpParams, rng: np.random.Generator) -> pd.DataFrame:
    n = p.n_compounds
    nums = np.unique(rng.integers(10_000_000, 99_999_999, size=2 * n + 10))[:n]  # distinct ids, no 90M-array draw
    nums = rng.permutation(nums)
    letters = rng.choice(list("KAM"), size=n, p=[0.85, 0.1, 0.05])
    pert = [f"BRD-{a}{x:08d}" for a, x in zip(letters, nums)]
    sample = [f"{x}-{rng.integers(1, 400):03d}-{rng.integers(1, 20):02d}-{rng.integers(0, 10)}" for x in pert]
    u = rng.random(n)
    annotated = u < p.annotated_fraction
    hidden = (~annotated) & (u < p.annotated_fraction + (1 - p.annotated_fraction) / 2)
    moas = []
    for i in range(n):
        if annotated[i] or hidden[i]:
            k = 2 if rng.random() < p.multi_moa_fraction else 1
            moas.append(sorted(rng.choice(p.n_moas, size=k, replace=False).tolist()))
        else:
            moas.append([])
    side = rng.random(n)
    in_cp = side >= p.l1000_only_fraction
    in_l1000 = (side < p.l1000_only_fraction) | (side >= p.l1000_only_fraction + p.cp_only_fraction)
    base = np.where(rng.random(n) < 0.7, 10.0, np.round(10.0 * np.exp(rng.normal(0, 0.35, n)), 3))
    multi = rng.random(n) < p.multi_dose_fraction
    doses = [[round(d / 4, 3), round(d / 2, 3), d][3 - rng.integers(2, 4):] if m else [d] for d, m in zip(base, multi)]
    return pd.DataFrame({
        "pert_id": pert, "sample": sample, "annotated": annotated, "moas": moas, "in_cp": in_cp, "in_l1000": in_l1000,
        "doses": doses, "potency": rng.uniform(0.3, 1.0, n),
        "cp_responds": rng.random(n) < 0.85, "l1000_responds": rng.random(n) < 0.75,
    })


def _treatments(c: pd.DataFrame, assay: str) -> pd.DataFrame:
    """One row per (compound, dose) present in ``assay``: index into the compounds, dose, key."""
    rows = [(i, d) for i, (ds, on) in enumerate(zip(c["doses"], c[f"in_{assay}"])) if on for d in ds]
    t = pd.DataFrame(rows, columns=["cpd", "dose"])
    t["key"] = [f"{c['sample'].iat[i]}_{d:.2f}" for i, d in zip(t["cpd"], t["dose"])]
    return t


def _latent(c: pd.DataFrame, t: pd.DataFrame, p: CdrpParams, moa_vec: np.ndarray, dev: np.ndarray,
            assay: str) -> np.ndarray:
    """Latent effect per treatment: (mean MoA vector + deviation) × potency × dose factor; zero for an
    assay that does not respond, small for inactive compounds.
    """
    z = np.zeros((len(t), p.latent))
    for j, (i, d) in enumerate(zip(t["cpd"], t["dose"])):
        m = c["moas"].iat[i]
        v = (moa_vec[m].mean(0) if m else 0.0) + dev[i] * (0.5 if m else 0.2)  # no MoA: inactive, small effect
        resp = c[f"{assay}_responds"].iat[i]
        z[j] = v * c["potency"].iat[i] * (d / (d + 2.5)) * 1.6 * resp * p.effect
    return z


def _cp_block(p, rng, names, W, tr, z, plate_ids, map_name, cmp, heavy):
    """The wells of one plate map (all its replicate plates) as a DataFrame."""
    wells = [f"{r}{col:02d}" for r in ROWS for col in range(1, 25)]
    ctl_wells = [w for w in wells if int(w[1:]) in CTL_COLUMNS]
    trt_wells = [w for w in wells if int(w[1:]) not in CTL_COLUMNS]
    layout = rng.permutation(len(trt_wells))[: len(tr)]  # plate map: the same layout on each replicate
    frames = []
    nf = len(names)
    for plate in plate_ids:
        n_t = len(tr)
        lat = np.vstack([z, np.zeros((len(ctl_wells), p.latent))])
        X = lat @ W + rng.normal(0, 1.0, (len(lat), nf))
        X = X * rng.uniform(0.9, 1.1, nf) + rng.normal(0, 0.3, nf)  # plate drift
        X[:, heavy] = np.exp(0.35 * X[:, heavy]) * 50.0  # heavy-tailed positive scales (intensities, areas)
        X = X.astype(np.float32)
        nan = rng.random(X.shape) < 2e-4
        X[nan] = np.nan
        keys = tr["key"].tolist() + ["DMSO"] * len(ctl_wells)
        samples = [cmp["sample"].iat[i] for i in tr["cpd"]] + ["DMSO"] * len(ctl_wells)
        perts = [cmp["pert_id"].iat[i] for i in tr["cpd"]] + [""] * len(ctl_wells)
        doses = tr["dose"].tolist() + [0.0] * len(ctl_wells)
        meta = pd.DataFrame({
            "Metadata_Plate": plate, "Metadata_Well": [trt_wells[k] for k in layout] + ctl_wells,
            "Metadata_Assay_Plate_Barcode": plate, "Metadata_Plate_Map_Name": map_name,
            "Metadata_ASSAY_WELL_ROLE": ["treated"] * n_t + ["mock"] * len(ctl_wells),
            "Metadata_broad_sample": samples, "Metadata_pert_id": perts,
            "Metadata_mmoles_per_liter2": doses,
            "Metadata_Sample_Dose": keys,
            "Metadata_pert_type": ["trt"] * n_t + ["control"] * len(ctl_wells),
            "Metadata_broad_sample_type": ["trt"] * n_t + ["control"] * len(ctl_wells),
            "Metadata_moa": "", "Metadata_target": "",
        })
        frames.append(pd.concat([meta, pd.DataFrame(X, columns=names)], axis=1))
    return pd.concat(frames, ignore_index=True)


def _l1000_block(p, rng, probes, W, tr, z, plates, cmp):
    n_ctl = 16
    frames = []
    for plate in plates:
        lat = np.vstack([z, np.zeros((n_ctl, p.latent))])
        X = (lat @ W + rng.normal(0, 1.0, (len(lat), len(probes))) + rng.normal(0, 0.2, len(probes))).astype(np.float32)
        order = rng.permutation(len(lat))  # no well column: sample order is all the file says
        samples = [cmp["sample"].iat[i] for i in tr["cpd"]] + ["DMSO"] * n_ctl
        meta = pd.DataFrame({
            "pert_id": samples,
            "pert_dose": tr["dose"].tolist() + [0.0] * n_ctl,
            "pert_sample_dose": tr["key"].tolist() + ["DMSO"] * n_ctl,
            "det_plate": plate,
            "CPD_NAME": [f"cpd-{cmp['pert_id'].iat[i][4:]}" for i in tr["cpd"]] + ["DMSO"] * n_ctl,
            "CPD_TYPE": ["CMP"] * len(tr) + ["DMSO"] * n_ctl,
            "CPD_SMILES": ["C" * (3 + i % 7) for i in tr["cpd"]] + ["CS(C)=O"] * n_ctl,
            "BROAD_CPD_ID": [cmp["pert_id"].iat[i] for i in tr["cpd"]] + ["DMSO"] * n_ctl,
        })
        frames.append(pd.concat([meta, pd.DataFrame(X, columns=probes)], axis=1).iloc[order])
    return pd.concat(frames, ignore_index=True)


class _GzCsv:
    """Appends DataFrames to one gzip CSV (header once) through Arrow's CSV writer."""

    def __init__(self, path: Path):
        self.fh = gzip.open(path, "wb", compresslevel=4)
        self.header = True

    def write(self, df: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        table = pa.Table.from_pandas(df, preserve_index=False)
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=self.header, quoting_style="none"))
        self.fh.write(sink.getvalue().to_pybytes())
        self.header = False

    def close(self) -> None:
        self.fh.close()


def cdrp_data(outputs: dict[str, str | Path], preset: str = "test", scale: float = 1.0, seed: int = 0,
              **overrides) -> dict:
    """Write the CDRP-shaped files and return a summary (counts, and the compounds present in one
    modality only, for tests).

    ``outputs`` maps ``cell_painting``, ``l1000`` (CSV.gz), ``probe_map`` and ``moa_map`` (TSV) to
    paths; ``preset`` (``test`` or ``full``) and ``scale`` (× compounds) set the size; ``overrides``
    any :class:`CdrpParams` field.
    """
    p = params_for(preset, scale, **overrides)
    rng = np.random.default_rng(seed)
    cmp = _compounds(p, rng)
    names = cp_feature_names(p.n_cp_features)
    probes = [f"{200000 + 7 * i}_at" for i in range(p.n_probes)]
    moa_vec = rng.normal(0, 1, (p.n_moas, p.latent))
    dev = rng.normal(0, 1, (p.n_compounds, p.latent))
    W_cp = rng.normal(0, 1, (p.latent, len(names))) / np.sqrt(p.latent)
    W_l1k = rng.normal(0, 1, (p.latent, len(probes))) / np.sqrt(p.latent) * (rng.random(len(probes)) < 0.6)
    heavy = rng.random(len(names)) < 0.5
    moa_names = [f"CDRP mechanism {k:02d}" for k in range(p.n_moas)]

    cp_t, l1k_t = _treatments(cmp, "cp"), _treatments(cmp, "l1000")
    z_cp = _latent(cmp, cp_t, p, moa_vec, dev, "cp")
    z_l1k = _latent(cmp, l1k_t, p, moa_vec, dev, "l1000")

    keys = ["cell_painting", "l1000", "probe_map", "moa_map"]
    n_cp = n_l1k = 0
    with atomic_outputs(*[outputs[k] for k in keys]) as tmps:
        tmp = dict(zip(keys, tmps))
        per_map = min(p.treatments_per_map, WELLS_PER_PLATE - len(CTL_COLUMNS) * len(ROWS))
        order = rng.permutation(len(cp_t))
        w = _GzCsv(tmp["cell_painting"])
        for m, start in enumerate(range(0, len(cp_t), per_map)):
            idx = np.sort(order[start:start + per_map])
            plates = [str(24277 + m * p.cp_replicates + r) for r in range(p.cp_replicates)]
            block = _cp_block(p, rng, names, W_cp, cp_t.iloc[idx].reset_index(drop=True), z_cp[idx], plates,
                              f"C-2113-01-CMP-{m + 1:03d}", cmp, heavy)
            n_cp += len(block)
            w.write(block)
        w.close()
        per_plate = p.l1000_per_plate - 16
        order = rng.permutation(len(l1k_t))
        w = _GzCsv(tmp["l1000"])
        for b, start in enumerate(range(0, len(l1k_t), per_plate)):
            idx = np.sort(order[start:start + per_plate])
            plates = [f"CPC{4 + b // 10:03d}_U2OS_6H_X{r + 1}_B{b % 10 + 1}" for r in range(p.l1000_replicates)]
            block = _l1000_block(p, rng, probes, W_l1k, l1k_t.iloc[idx].reset_index(drop=True), z_l1k[idx], plates, cmp)
            n_l1k += len(block)
            w.write(block)
        w.close()
        pd.DataFrame({"probe_id": probes, "symbol": [f"CDRPG{i:04d}" for i in range(len(probes))]}).to_csv(
            tmp["probe_map"], sep="\t", index=False)
        ann = cmp[cmp["annotated"]]
        hub = pd.DataFrame({"broad_sample": ann["sample"], "broad_id": ann["pert_id"],
                            "pert_iname": [f"cpd-{x[4:]}" for x in ann["pert_id"]],
                            "moa": ["|".join(moa_names[k] for k in m) for m in ann["moas"]]})
        # the Hub lists compounds this screen lacks, and one compound twice (another salt)
        other = pd.DataFrame({"broad_sample": ["BRD-K00000001-001-01-1"], "broad_id": ["BRD-K00000001"],
                              "pert_iname": ["absent"], "moa": [moa_names[0]]})
        hub = pd.concat([hub, other, hub.head(1).assign(broad_sample=lambda d: d["broad_sample"].str[:-1] + "9")])
        hub.to_csv(tmp["moa_map"], sep="\t", index=False)
    summary = {
        "compounds": p.n_compounds, "annotated": int(cmp["annotated"].sum()), "cp_wells": n_cp, "l1000_profiles": n_l1k,
        "cp_treatments": len(cp_t), "l1000_treatments": len(l1k_t), "treatments": len(set(cp_t.key) | set(l1k_t.key)),
        "cp_only": sorted(cmp.loc[cmp.in_cp & ~cmp.in_l1000, "pert_id"]),
        "l1000_only": sorted(cmp.loc[~cmp.in_cp & cmp.in_l1000, "pert_id"]),
        "multi_dose": sorted(cmp.loc[cmp["doses"].str.len() > 1, "pert_id"]),
        "cp_features": len(names), "probes": len(probes),
    }
    log.info("CDRP-shaped data: %s", {k: v for k, v in summary.items() if not isinstance(v, list)})
    return summary
