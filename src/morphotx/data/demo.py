"""The embedded demo: a simulated, LINCS-Pilot1-shaped paired data set.

The generator writes replicate-level files in the Rosetta LINCS-Pilot1 schemas (column names,
key formats, dose values, DMSO controls, plate and well ids; see ``shared/design/
rosetta_format.md``) so the demo flows through exactly the rules that real data flows through.

Biology (all seeded from ``seed``)
----------------------------------
* Each MoA has a *shared* effect vector (seen by both assays) and a *private* effect vector per
  assay (modality-specific signal).
* A compound has 1 or 2 MoAs (``A|B``); its effect is the mean of its MoAs' vectors plus a
  compound-specific deviation.
* Dose response is a Hill curve with per-compound potency (EC50), Hill slope and efficacy; the
  L1000 EC50 is the Cell Painting one times a log-normal factor.
* Responder flags: a compound may show a phenotype in Cell Painting only, L1000 only, both or
  neither.
* Cell Painting: the latent state drives CellProfiler-named features through loadings shared by
  feature families (so many features correlate > 0.9), plus well-level nuisance factors (cell
  count / size, unrelated to MoA, visible in DMSO wells too), plate effects (additive and
  multiplicative intensity drift), then each family's raw scale: log-normal heavy-tailed positive
  values for areas, intensities, textures and granularity; bounded values for correlations and
  shape ratios. Location features (junk), near-constant and NaN-heavy features are added.
* L1000: 978 ``*_at`` probes in co-expression modules loaded on the same latent state, z-score
  scaled like level 4 data, with small plate offsets.

Ground truth (per compound: MoAs, responder flags, potencies, effect vectors) is written to a
separate Parquet file for tests; it never enters the pipeline.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from ..io import atomic_outputs, write_parquet
from ..settings import DemoSettings

log = logging.getLogger(__name__)

# The six LINCS Pilot 1 doses as written in the Cell Painting plate maps, and as L1000 writes them.
CP_DOSES = [0.041152, 0.12346, 0.37037, 1.1111, 3.3333, 10.0]
L1000_DOSES = [0.04, 0.12, 0.37, 1.11, 3.33, 10.0]
CP_DOSES_HIGH = [0.12346, 0.37037, 1.1111, 3.3333, 10.0, 19.999]
L1000_DOSES_HIGH = [0.12, 0.37, 1.11, 3.33, 10.0, 20.0]

CHANNELS = ["DNA", "RNA", "ER", "AGP", "Mito"]
COMPARTMENTS = ["Cells", "Cytoplasm", "Nuclei"]

MOA_NAMES = [
    "HDAC inhibitor", "MEK inhibitor", "PLK inhibitor", "tubulin polymerization inhibitor",
    "proteasome inhibitor", "CDK inhibitor", "EGFR inhibitor", "glucocorticoid receptor agonist",
    "topoisomerase inhibitor", "HSP inhibitor", "mTOR inhibitor", "PI3K inhibitor",
    "Aurora kinase inhibitor", "VEGFR inhibitor", "dopamine receptor antagonist",
    "adrenergic receptor agonist", "ATPase inhibitor", "phosphodiesterase inhibitor",
    "sterol demethylase inhibitor", "sodium channel blocker", "serotonin receptor antagonist",
    "histamine receptor antagonist", "JAK inhibitor", "BRAF inhibitor", "calcium channel blocker",
    "acetylcholine receptor antagonist", "bromodomain inhibitor", "PARP inhibitor",
    "DNA synthesis inhibitor", "retinoid receptor agonist",
]


@dataclass(frozen=True)
class DemoParams:
    """Sizes and effect strengths of the simulated data set; the defaults are the ``demo`` scale.

    :data:`PRESETS` overrides some fields for the other scales (``tiny``, ``lincs``).
    """

    n_compounds: int = 120
    n_moas: int = 16
    n_cp_features: int = 420  # before the junk (location / constant / NaN) features are added
    cp_replicates: int = 5  # replicate plates per plate map
    l1000_replicates: int = 3
    compounds_per_plate: int = 60  # x 6 doses + 24 DMSO = 384 wells
    dmso_per_plate: int = 24
    multi_moa_fraction: float = 0.15
    high_dose_fraction: float = 0.05  # compounds dosed 0.12..20 uM instead of 0.04..10 uM
    latent_shared: int = 10
    latent_private: int = 4
    moa_strength: float = 1.0
    private_strength: float = 0.8
    compound_deviation: float = 0.75  # sd of the compound-specific deviation (MoA vector norm ~1)
    signal_cp: float = 1.6  # latent-to-feature gain, Cell Painting
    signal_l1000: float = 1.3
    well_noise_latent: float = 0.35  # replicate variation of the latent state
    nuisance_sd: float = 1.0  # well-level nuisance factors (cell count, size)
    plate_effect_sd: float = 0.4
    feature_noise_cp: float = 1.0
    feature_noise_l1000: float = 1.0
    p_both: float = 0.55
    p_cp_only: float = 0.2
    p_l1000_only: float = 0.2  # the rest respond in neither assay


PRESETS: dict[str, dict] = {
    # used by tests: one plate map, few features; minutes matter there
    "tiny": dict(n_compounds=36, n_moas=6, n_cp_features=160, cp_replicates=3, compounds_per_plate=36),
    "demo": dict(),
    # LINCS Pilot 1 size: 1,571 compounds, 27 plate maps x 5 replicates ~ 52k wells, ~1.8k columns
    "lincs": dict(n_compounds=1571, n_moas=30, n_cp_features=1780),
}


def params_for(scale: str, overrides: dict | None = None) -> DemoParams:
    """The simulation settings of a scale, with overrides.

    Parameters
    ----------
    scale : str
        A key of :data:`PRESETS`: ``tiny``, ``demo`` or ``lincs``.
    overrides : dict, optional
        ``DemoParams`` fields to set; ``None`` values are ignored (the preset's value is kept).

    Returns
    -------
    DemoParams
        The scale's preset with the overrides applied.

    Raises
    ------
    ValueError
        If ``scale`` is not a preset.
    """
    if scale not in PRESETS:
        raise ValueError(f"demo.scale must be one of {sorted(PRESETS)}, got {scale!r}")
    p = replace(DemoParams(), **PRESETS[scale])
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    return replace(p, **overrides)


# ---------------------------------------------------------------------------------------------
# feature names
# ---------------------------------------------------------------------------------------------
def cellprofiler_feature_names() -> list[tuple[str, str]]:
    """All intrinsic CellProfiler feature names with their family, in a fixed order."""
    out: list[tuple[str, str]] = []
    shape = ["Area", "Perimeter", "FormFactor", "Eccentricity", "Solidity", "Extent", "Compactness",
             "MajorAxisLength", "MinorAxisLength", "MaximumRadius", "MeanRadius", "MedianRadius"]
    shape += [f"Zernike_{n}_{m}" for n in range(10) for m in range(n % 2, n + 1, 2)]
    intensity = ["IntegratedIntensity", "MeanIntensity", "StdIntensity", "MedianIntensity",
                 "MADIntensity", "MaxIntensity", "MinIntensity", "LowerQuartileIntensity",
                 "UpperQuartileIntensity", "IntegratedIntensityEdge", "MeanIntensityEdge",
                 "MassDisplacement"]
    texture = ["AngularSecondMoment", "Contrast", "Correlation", "DifferenceEntropy",
               "DifferenceVariance", "Entropy", "InfoMeas1", "InfoMeas2", "InverseDifferenceMoment",
               "SumAverage", "SumEntropy", "SumVariance", "Variance"]
    corr = ["Correlation", "K", "Manders", "Overlap", "RWC"]
    for comp in COMPARTMENTS:
        for s in shape:
            fam = "Zernike" if s.startswith("Zernike") else ("ShapeRatio" if s in (
                "FormFactor", "Eccentricity", "Solidity", "Extent", "Compactness") else "Size")
            out.append((f"{comp}_AreaShape_{s}", fam))
        for ch in CHANNELS:
            for f in intensity:
                out.append((f"{comp}_Intensity_{f}_{ch}", f"Intensity_{ch}"))
            for g in range(1, 17):
                out.append((f"{comp}_Granularity_{g}_{ch}", f"Granularity_{ch}"))
            for f in texture:
                for scale in (3, 5, 10):
                    out.append((f"{comp}_Texture_{f}_{ch}_{scale}_0", f"Texture_{ch}"))
            for f in ("FracAtD", "MeanFrac", "RadialCV"):
                for ring in range(1, 5):
                    out.append((f"{comp}_RadialDistribution_{f}_{ch}_{ring}of4", f"Radial_{ch}"))
        for f in corr:
            for a in CHANNELS:
                for b in CHANNELS:
                    if a != b and (f in ("K", "Manders", "RWC") or a < b):
                        out.append((f"{comp}_Correlation_{f}_{a}_{b}", "Correlation"))
    return out


def junk_feature_names() -> dict[str, list[str]]:
    """Features the preprocessing must drop, by reason."""
    return {
        "location": [f"{c}_Location_Center_{xy}" for c in COMPARTMENTS for xy in "XY"]
        + [f"{c}_AreaShape_Center_{xy}" for c in COMPARTMENTS for xy in "XY"]
        + [f"Nuclei_Location_MaxIntensity_{xy}_DNA" for xy in "XY"]
        + ["Cells_Number_Object_Number", "Nuclei_Parent_Cells"],
        "constant": ["Cells_AreaShape_EulerNumber", "Nuclei_AreaShape_EulerNumber",
                     "Cytoplasm_Intensity_MinIntensity_Mito_Edge"],
        "nan_heavy": ["Cells_Texture_InfoMeas1_Mito_20_0", "Nuclei_Intensity_MaxIntensity_RNA_Edge"],
    }


# ---------------------------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------------------------
def _broad_ids(rng: np.random.Generator, n: int) -> list[str]:
    nums = rng.choice(np.arange(10_000_000, 99_999_999), size=n, replace=False)
    letters = rng.choice(list("KAM"), size=n, p=[0.8, 0.15, 0.05])
    return [f"BRD-{l}{x:08d}" for l, x in zip(letters, nums)]


def _wells384() -> list[str]:
    return [f"{r}{c:02d}" for r in "ABCDEFGHIJKLMNOP" for c in range(1, 25)]


def _hill(dose, ec50, slope):
    return dose**slope / (dose**slope + ec50**slope)


@dataclass
class _Compounds:
    """The simulated compounds: MoAs, effect vectors, dose responses (see :func:`simulate`)."""

    pert_ids: list
    inames: list
    smiles: list
    moa_str: list
    eff_cp: np.ndarray
    eff_l1k: np.ndarray
    ec50_cp: np.ndarray
    ec50_l1k: np.ndarray
    slope: np.ndarray
    emax: np.ndarray
    resp_cp: np.ndarray
    resp_l1k: np.ndarray
    high: np.ndarray
    ground_truth: pd.DataFrame


def simulate(params: DemoParams, seed: int) -> dict[str, pd.DataFrame]:
    """Simulate the data set; returns DataFrames ``cell_painting``, ``l1000``, ``probe_map``,
    ``moa_map`` and ``ground_truth``. One random generator, drawn in the order compounds → Cell
    Painting → L1000 → maps, so a seed gives the same tables.
    """
    rng = np.random.default_rng(seed)
    c = _compounds(params, rng)
    cp = _cell_painting(params, rng, c)
    l1k, probes = _l1000(params, rng, c)
    probe_map, moa_map = _maps(probes, c)
    return {"cell_painting": cp, "l1000": l1k, "probe_map": probe_map, "moa_map": moa_map,
            "ground_truth": c.ground_truth}


def _compounds(p: DemoParams, rng: np.random.Generator) -> _Compounds:
    d_s, d_p = p.latent_shared, p.latent_private
    d = d_s + d_p
    moa_names = list(MOA_NAMES[: p.n_moas]) + [f"demo target {i} inhibitor" for i in range(max(0, p.n_moas - len(MOA_NAMES)))]

    def unit(n, k):
        v = rng.normal(size=(n, k))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    moa_shared = unit(p.n_moas, d_s) * p.moa_strength
    moa_priv_cp = unit(p.n_moas, d_p) * p.private_strength
    moa_priv_l1k = unit(p.n_moas, d_p) * p.private_strength

    n = p.n_compounds
    pert_ids = _broad_ids(rng, n)
    # every MoA gets at least ~n/n_moas compounds: deal MoAs round-robin, then shuffle
    primary = np.resize(np.arange(p.n_moas), n)
    rng.shuffle(primary)
    moas = []
    for i in range(n):
        m = [int(primary[i])]
        if rng.random() < p.multi_moa_fraction:
            m.append(int(rng.choice([j for j in range(p.n_moas) if j != primary[i]])))
        moas.append(sorted(m))
    dev = rng.normal(scale=p.compound_deviation / np.sqrt(d), size=(n, d))
    eff_shared = np.stack([moa_shared[m].mean(0) for m in moas]) + dev[:, :d_s]
    eff_cp = np.hstack([eff_shared, np.stack([moa_priv_cp[m].mean(0) for m in moas]) + dev[:, d_s:]])
    dev2 = rng.normal(scale=p.compound_deviation / np.sqrt(d), size=(n, d_p))
    eff_l1k = np.hstack([eff_shared, np.stack([moa_priv_l1k[m].mean(0) for m in moas]) + dev2])

    ec50_cp = np.exp(rng.uniform(np.log(0.1), np.log(30.0), size=n))
    ec50_l1k = ec50_cp * np.exp(rng.normal(scale=0.7, size=n))
    slope = rng.uniform(0.8, 2.0, size=n)
    emax = rng.uniform(0.6, 1.4, size=n)
    u = rng.random(n)
    resp_cp = (u < p.p_both) | ((u >= p.p_both) & (u < p.p_both + p.p_cp_only))
    resp_l1k = (u < p.p_both) | ((u >= p.p_both + p.p_cp_only) & (u < p.p_both + p.p_cp_only + p.p_l1000_only))
    high = rng.random(n) < p.high_dose_fraction
    inames = [f"demo-cmpd-{i:04d}" for i in range(n)]
    smiles = ["C" * int(k) + "N(C)C(=O)O" for k in rng.integers(2, 12, size=n)]
    moa_str = ["|".join(moa_names[j] for j in m) for m in moas]

    ground_truth = pd.DataFrame({
        "pert_id": pert_ids, "pert_iname": inames, "moa": moa_str,
        "n_moas": [len(m) for m in moas],
        "responder_cell_painting": resp_cp, "responder_l1000": resp_l1k,
        "ec50_cell_painting_uM": ec50_cp, "ec50_l1000_uM": ec50_l1k, "hill_slope": slope, "efficacy": emax,
        "effect_shared": list(eff_shared.astype("float32")),
        "effect_cell_painting": list(eff_cp.astype("float32")),
        "effect_l1000": list(eff_l1k.astype("float32")),
    })

    return _Compounds(pert_ids, inames, smiles, moa_str, eff_cp, eff_l1k, ec50_cp, ec50_l1k, slope, emax, resp_cp,
                      resp_l1k, high, ground_truth)


def _cell_painting(p: DemoParams, rng: np.random.Generator, c: _Compounds) -> pd.DataFrame:
    d = p.latent_shared + p.latent_private
    n = len(c.pert_ids)
    pert_ids, inames, moa_str = c.pert_ids, c.inames, c.moa_str
    eff_cp, ec50_cp, slope, emax, resp_cp, high = c.eff_cp, c.ec50_cp, c.slope, c.emax, c.resp_cp, c.high
    names_all = cellprofiler_feature_names()
    pick = np.sort(rng.choice(len(names_all), size=min(p.n_cp_features, len(names_all)), replace=False))
    feats = [names_all[i] for i in pick]
    fam_names = sorted({f for _, f in feats})
    fam_idx = np.array([fam_names.index(f) for _, f in feats])
    n_f = len(feats)
    # family loadings + feature-specific perturbation: features of a family are strongly correlated
    fam_load = rng.normal(size=(len(fam_names), d)) / np.sqrt(d)
    # a third of the features are near-copies of their family's profile (CellProfiler measures the
    # same thing many ways: |r| > 0.9 is common), the rest carry more feature-specific signal
    near_copy = rng.random(n_f) < 0.35
    own = np.where(near_copy, 0.15, 0.8)[:, None]
    load = (fam_load[fam_idx] + rng.normal(size=(n_f, d)) / np.sqrt(d) * own) * p.signal_cp
    n_nuis = 3
    nuis_load = rng.normal(size=(len(fam_names), n_nuis))[fam_idx] * 0.7 + rng.normal(size=(n_f, n_nuis)) * 0.2 * own
    sd_noise = p.feature_noise_cp * np.where(near_copy, 0.25, rng.uniform(0.6, 1.0, size=n_f))

    wells = _wells384()
    per_map = p.compounds_per_plate
    n_maps = int(np.ceil(n / per_map))
    rows = []
    plate_counter = 15000 + int(rng.integers(0, 100))
    comp_order = rng.permutation(n)
    plate_effects = {}
    for m in range(n_maps):
        cpds = comp_order[m * per_map : (m + 1) * per_map]
        entries = [("DMSO", -1, 0)] * p.dmso_per_plate + [(c, c, k) for c in cpds for k in range(6)]
        layout = rng.permutation(len(entries))
        well_of = [wells[j] for j in range(len(entries))]
        map_name = f"C-7161-01-LM6-{m + 1:03d}"
        for r in range(p.cp_replicates):
            plate = f"SQ000{plate_counter:05d}"
            plate_counter += 1
            plate_effects[plate] = (rng.normal(scale=p.plate_effect_sd, size=n_f),
                                    rng.normal(scale=0.15, size=len(CHANNELS)))
            for slot, e in zip(layout, entries):
                rows.append((plate, well_of[slot], map_name, e[1], e[2]))
    cp_meta = pd.DataFrame(rows, columns=["plate", "well", "map", "cpd", "dose_idx"])
    n_w = len(cp_meta)
    cpd = cp_meta["cpd"].to_numpy()
    trt = cpd >= 0
    safe = np.where(trt, cpd, 0)
    dose_idx = cp_meta["dose_idx"].to_numpy()
    dose_vals = np.where(trt, np.where(high[safe], np.array(CP_DOSES_HIGH)[dose_idx], np.array(CP_DOSES)[dose_idx]), 0.0)
    cp_recode = np.where(trt, np.where(high[safe], np.array(L1000_DOSES_HIGH)[dose_idx], np.array(L1000_DOSES)[dose_idx]), 0.0)
    act = np.zeros(n_w)
    act[trt] = emax[cpd[trt]] * _hill(np.round(dose_vals[trt], 2), ec50_cp[cpd[trt]], slope[cpd[trt]]) * resp_cp[cpd[trt]]
    z = np.zeros((n_w, d))
    z[trt] = eff_cp[cpd[trt]] * act[trt, None]
    z += rng.normal(scale=p.well_noise_latent / np.sqrt(d), size=(n_w, d)) * (1 + act[:, None])
    nuis = rng.normal(scale=p.nuisance_sd, size=(n_w, n_nuis))
    x = z @ load.T + nuis @ nuis_load.T + rng.normal(size=(n_w, n_f)) * sd_noise
    plate_add = np.stack([plate_effects[pl][0] for pl in cp_meta["plate"]])
    x += plate_add
    # raw scales per family
    raw = np.empty_like(x)
    base = rng.uniform(0.5, 6.0, size=n_f)
    spread = rng.uniform(0.15, 0.45, size=n_f)
    for j, (name, fam) in enumerate(feats):
        xj = x[:, j]
        if fam.startswith(("Intensity", "Granularity", "Texture", "Size")):
            val = np.exp(base[j] + spread[j] * xj)  # log-normal: positive, heavy right tail
            if fam.startswith("Intensity"):
                ch = CHANNELS.index(fam.split("_")[1])
                drift = np.array([plate_effects[pl][1][ch] for pl in cp_meta["plate"]])
                val = val * np.exp(drift)  # multiplicative plate drift per stain
            raw[:, j] = val
        elif fam in ("Correlation", "Radial_DNA", "Radial_RNA", "Radial_ER", "Radial_AGP", "Radial_Mito"):
            raw[:, j] = np.tanh(0.3 * xj + rng.uniform(-0.5, 0.8))
        else:  # shape ratios and Zernike moments: in (0, 1)
            raw[:, j] = 1.0 / (1.0 + np.exp(-(0.4 * xj + rng.uniform(-1, 1))))
    raw = raw.astype("float32")
    cp_feats = pd.DataFrame(raw, columns=[f for f, _ in feats])
    junk = junk_feature_names()
    for name in junk["location"]:
        cp_feats[name] = rng.uniform(0, 1080, size=n_w).astype("float32")
    for name in junk["constant"]:
        v = np.ones(n_w, dtype="float32")
        v[rng.random(n_w) < 0.003] = 2.0
        cp_feats[name] = v
    for name in junk["nan_heavy"]:
        v = rng.lognormal(2, 0.5, size=n_w).astype("float32")
        v[rng.random(n_w) < 0.4] = np.nan
        cp_feats[name] = v
    # a few sporadic missing values in an otherwise good feature (segmentation failures)
    sporadic = rng.choice(n_w, size=max(1, n_w // 500), replace=False)
    cp_feats.iloc[sporadic, 0] = np.nan
    cp_feats = cp_feats[sorted(cp_feats.columns)]

    pid = np.array(pert_ids, dtype=object)
    ctl = ~trt
    broad_sample = np.where(ctl, "DMSO", np.array([f"{pid[c]}-001-0{1 + c % 9}-{c % 10}" for c in safe], dtype=object))
    key = np.where(ctl, "DMSO", [f"{pid[c]}_{r:g}" for c, r in zip(safe, cp_recode)])
    cp = pd.DataFrame({
        "Metadata_Plate": cp_meta["plate"],
        "Metadata_Well": cp_meta["well"],
        "Metadata_Plate_Map_Name": cp_meta["map"],
        "Metadata_broad_sample": broad_sample,
        "Metadata_pert_id": np.where(ctl, None, pid[safe]),
        "Metadata_mmoles_per_liter": dose_vals,
        "Metadata_dose_recode": cp_recode,
        "Metadata_pert_id_dose": key,
        "Metadata_moa": np.where(ctl, None, np.array(moa_str, dtype=object)[safe]),
        "Metadata_alternative_moa": None,
        "pert_iname": np.where(ctl, "DMSO", np.array(inames, dtype=object)[safe]),
        "Metadata_broad_sample_type": np.where(ctl, "control", "trt"),
    })
    cp = pd.concat([cp, cp_feats], axis=1)

    return cp


def _l1000(p: DemoParams, rng: np.random.Generator, c: _Compounds) -> tuple[pd.DataFrame, list[str]]:
    d = p.latent_shared + p.latent_private
    n = len(c.pert_ids)
    pid = np.array(c.pert_ids, dtype=object)
    inames, moa_str, smiles = c.inames, c.moa_str, c.smiles
    eff_l1k, ec50_l1k, slope, emax, resp_l1k, high = c.eff_l1k, c.ec50_l1k, c.slope, c.emax, c.resp_l1k, c.high
    wells = _wells384()
    per_map = p.compounds_per_plate
    n_maps = int(np.ceil(n / per_map))
    n_g = 978
    probe_nums = rng.choice(np.arange(200000, 222999), size=n_g, replace=False)
    suffix = rng.choice(["_at", "_s_at", "_x_at"], size=n_g, p=[0.6, 0.35, 0.05])
    probes = [f"{a}{s}" for a, s in zip(probe_nums, suffix)]
    n_mod = 40
    module = rng.integers(0, n_mod, size=n_g)
    mod_load = rng.normal(size=(n_mod, d)) / np.sqrt(d)
    g_load = (mod_load[module] + rng.normal(size=(n_g, d)) / np.sqrt(d) * 0.7) * p.signal_l1000

    l_rows = []
    per_plate = per_map  # same plate capacity
    for r in range(p.l1000_replicates):
        order = rng.permutation(n)
        for m in range(n_maps):
            cpds = order[m * per_plate : (m + 1) * per_plate]
            entries = [(-1, 0)] * p.dmso_per_plate + [(c, k) for c in cpds for k in range(6)]
            layout = rng.permutation(len(entries))
            plate = f"REP.A{m + 1:03d}_A549_24H_X{r + 1}_B{27 + r}"
            for slot, (c, k) in zip(layout, entries):
                l_rows.append((plate, f"REP.A{m + 1:03d}", wells[slot], c, k))
    lm = pd.DataFrame(l_rows, columns=["plate", "mfc", "well", "cpd", "dose_idx"])
    n_s = len(lm)
    lc = lm["cpd"].to_numpy()
    ltrt = lc >= 0
    lsafe = np.where(ltrt, lc, 0)
    ldose = np.where(ltrt, np.where(high[lsafe], np.array(L1000_DOSES_HIGH)[lm["dose_idx"]],
                                     np.array(L1000_DOSES)[lm["dose_idx"]]), -666.0)
    lact = np.where(ltrt, emax[lsafe] * _hill(np.clip(ldose, 1e-6, None), ec50_l1k[lsafe], slope[lsafe]) * resp_l1k[lsafe], 0.0)
    zl = np.where(ltrt[:, None], eff_l1k[lsafe] * lact[:, None], 0.0)
    zl += rng.normal(scale=p.well_noise_latent / np.sqrt(d), size=(n_s, d)) * (1 + lact[:, None])
    plate_off = {pl: rng.normal(scale=p.plate_effect_sd * 0.5, size=n_g) for pl in lm["plate"].unique()}
    xl = zl @ g_load.T + rng.normal(scale=p.feature_noise_l1000, size=(n_s, n_g))
    xl += np.stack([plate_off[pl] for pl in lm["plate"]])
    # printed dose: L1000 writes e.g. 3.33 or 3.33333 (values are recoded downstream)
    printed = np.where(ltrt & (rng.random(n_s) < 0.3), np.round(ldose * 1.001, 5), ldose)
    lpid = np.where(ltrt, pid[lsafe], "DMSO")
    l1k = pd.DataFrame({
        "cid": [f"{pl}:{w}" for pl, w in zip(lm["plate"], lm["well"])],
        "pert_id": lpid,
        "pert_iname_x": np.where(ltrt, np.array(inames, dtype=object)[lsafe], "DMSO"),
        "pert_type_x": np.where(ltrt, "trt_cp", "ctl_vehicle"),
        "det_plate": lm["plate"],
        "det_well": lm["well"],
        "pert_dose": printed,
        "nearest_dose": ldose,
        "pert_id_dose": [f"{a}_{b:g}" if t else "DMSO_-666" for a, b, t in zip(lpid, ldose, ltrt)],
        "moa": np.where(ltrt, np.array(moa_str, dtype=object)[lsafe], "-666"),
        "x_smiles": np.where(ltrt, np.array(smiles, dtype=object)[lsafe], "-666"),
        "cell_id": "A549",
        "pert_time": 24,
        "mfc_plate_name": lm["mfc"],
    })
    l1k = pd.concat([l1k, pd.DataFrame(xl.astype("float32"), columns=probes)], axis=1)

    return l1k, probes


def _maps(probes: list[str], c: _Compounds) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_g = len(probes)
    pert_ids, inames, moa_str = c.pert_ids, c.inames, c.moa_str
    symbols = [f"DEMO{i:04d}" for i in range(n_g)]
    symbols[1] = symbols[0]  # two probes of one gene: exercises the duplicate rule
    probe_map = pd.DataFrame({"probe_id": probes, "symbol": symbols, "entrezgene": np.arange(1, n_g + 1),
                              "HGNC": [f"HGNC:{i + 1}" for i in range(n_g)]})
    probe_map = probe_map.drop(index=[n_g - 1])  # one landmark probe without a gene: exercises 'unmapped'
    moa_map = pd.DataFrame({"broad_sample": [f"{x}-001-01-1" for x in pert_ids], "broad_id": pert_ids,
                            "pert_iname": inames, "moa": moa_str})
    return probe_map, moa_map




def demo_data(outputs: dict[str, str], demo: DemoSettings = DemoSettings()) -> None:
    """Simulate and write the demo files (atomically, byte-reproducible for a given seed): the
    entry point of rule ``demo_data``.

    Parameters
    ----------
    outputs : dict of str to str
        Paths of ``cell_painting``, ``l1000`` (CSV.gz), ``probe_map``, ``moa_map`` (TSV) and
        ``ground_truth`` (Parquet); other keys are ignored.
    demo : DemoSettings, default DemoSettings()
        The ``demo`` config section: ``scale`` (the simulation's size, a key of :data:`PRESETS`),
        ``seed`` and ``overrides`` (:class:`DemoParams` fields that replace the preset's; see
        :func:`params_for`).
    """
    scale, seed = demo.scale, demo.seed
    params = params_for(scale, demo.overrides)
    log.info("demo: scale=%s seed=%d params=%s", scale, seed, asdict(params))
    data = simulate(params, seed)
    gz = {"method": "gzip", "mtime": 0, "compresslevel": 4}
    keys = ["cell_painting", "l1000", "probe_map", "moa_map", "ground_truth"]
    with atomic_outputs(*[outputs[k] for k in keys]) as tmps:
        tmp = dict(zip(keys, tmps))
        data["cell_painting"].to_csv(tmp["cell_painting"], index=False, compression=gz, float_format="%.6g")
        data["l1000"].to_csv(tmp["l1000"], index=False, compression=gz, float_format="%.6g")
        data["probe_map"].to_csv(tmp["probe_map"], sep="\t", index=False)
        data["moa_map"].to_csv(tmp["moa_map"], sep="\t", index=False)
        write_parquet(data["ground_truth"], tmp["ground_truth"])
    cp, l1k = data["cell_painting"], data["l1000"]
    log.info("demo: Cell Painting %d wells x %d columns on %d plates; L1000 %d profiles x %d columns on %d plates",
             len(cp), cp.shape[1], cp["Metadata_Plate"].nunique(), len(l1k), l1k.shape[1], l1k["det_plate"].nunique())
