"""Latent-space arithmetic for polypharmacology and latent traversals (Chow 2022, §2.3 and Fig 3).

**Arithmetic.** For every compound annotated with exactly two MoAs ``A|B`` whose single MoAs ``A``
and ``B`` both exist among single-MoA compounds, predict the ``A ∩ B`` profile as
``decode(mean z[A] − mean z[DMSO] + mean z[B])`` and compare it with the real mean profile of
the ``A|B`` compounds (L2 distance, Pearson correlation) in the preprocessed feature space.
Groups use all splits and all doses (the paper: "we performed these analyses using all the
data"): multi-MoA compounds are the targets here, while classification uses single-MoA ones.
``A`` and ``B`` are taken in the order that gives the smaller L2 (the equation is symmetric
except for the order of the ``−D`` term, which cancels: ``A − D + B = B − D + A``).

Controls and baselines, each through the same arithmetic:

* ``shuffled`` — every label (DMSO included) permuted across rows, ``shuffles`` times (10 in the
  paper), then the same predictions compared with the *real* ``A ∩ B`` mean;
* ``pca`` — PCA with ``pca_components`` (10) fitted on the same rows, arithmetic in PC space,
  mapped back with the inverse transform;
* ``raw`` — arithmetic on the feature means directly (no model).

Per combination and method, ``z = (d_real − mean(d_shuffled)) / sd(d_shuffled)`` and its
two-sided p-value (one-sample z), for L2 (negative z = better than random) and Pearson
(positive z = better).

**Traversal** (Chow 2022, Methods and S-figure of latent traversals). For each latent unit ``j``:
decode ``z = +k·s_j e_j`` and ``z = −k·s_j e_j`` (all other units 0, ``k = traversal_sd``), take
the difference of the two reconstructions and average it within each Cell Painting feature group
(compartment × channel, AreaShape, other). The paper's setting is the default:
``scale="prior"`` (``s_j = 1``: "since σ of p(x) is 1, we used the values 3 and −3") and
``difference="absolute"`` ("we took the absolute value of the difference"). Options:
``scale="empirical"`` (``s_j`` the spread of unit ``j`` over the encoded profiles, for a posterior
far from the prior) and ``difference="signed"`` (opposite moves within a group cancel).
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import torch
from scipy import stats
from sklearn.decomposition import PCA

from .. import schema as S
from ..io import atomic_outputs, read_table, write_parquet
from ..models.config import HyperParameters
from ..settings import ArithmeticSettings, TrainSettings

log = logging.getLogger(__name__)

CHANNELS = ("DNA", "RNA", "ER", "AGP", "Mito")
DMSO = "DMSO"


def feature_group(name: str) -> str:
    """``Cells_Intensity_MeanIntensity_DNA`` → ``Cells_DNA``; AreaShape → ``Cells_AreaShape``;
    correlation features naming two channels are grouped under the first; else ``<comp>_Other``.
    """
    comp = name.split("_", 1)[0]
    if "_AreaShape_" in name:
        return f"{comp}_AreaShape"
    tokens = re.split(r"[_]", name)
    for tok in tokens[1:]:
        if tok in CHANNELS:
            return f"{comp}_{tok}"
        for ch in CHANNELS:  # Correlation_Correlation_DNA_ER style and OrigDNA style names
            if tok in (f"Orig{ch}", f"Corr{ch}"):
                return f"{comp}_{ch}"
    return f"{comp}_Other"


def arithmetic_groups(meta: pd.DataFrame) -> tuple[np.ndarray, list[tuple[str, str, str]]]:
    """Group label of each row (``DMSO``, a single MoA, ``A|B``, or ``""`` when unused) and the
    ``(A, B, A|B)`` combinations that can be predicted.
    """
    moas = meta[S.MOA].map(lambda m: sorted(m) if m is not None else [])
    ctl = meta[S.IS_CONTROL].astype(bool).to_numpy()
    label = np.where(ctl, DMSO, moas.map(lambda m: "|".join(m) if 1 <= len(m) <= 2 else "").to_numpy()).astype(object)
    singles = set(label[(~ctl) & (moas.map(len) == 1).to_numpy()])
    combos = sorted({tuple(m) for m, c in zip(moas, ctl) if not c and len(m) == 2})
    combos = [(a, b, f"{a}|{b}") for a, b in combos if a in singles and b in singles]
    used = {DMSO} | {x for c in combos for x in c}
    label = np.where(np.isin(label, list(used)), label, "")
    return label.astype(str), combos


def _group_means(Z: np.ndarray, labels: np.ndarray, names) -> dict[str, np.ndarray]:
    return {g: Z[labels == g].mean(0) for g in names if (labels == g).any()}


def _predict(zm: dict, combos, decode) -> dict[str, np.ndarray]:
    """Both operand orders (A − D + B and B − D + A are the same vector, kept for clarity)."""
    out = {}
    for a, b, ab in combos:
        if a in zm and b in zm and DMSO in zm:
            out[ab] = decode((zm[a] - zm[DMSO] + zm[b])[None, :])[0]
    return out


def _compare(pred: dict, real: dict) -> pd.DataFrame:
    rows = []
    for ab, p in pred.items():
        r = real[ab]
        pear = float(np.corrcoef(p, r)[0, 1]) if np.std(p) > 0 and np.std(r) > 0 else np.nan
        rows.append({"combination": ab, "l2": float(np.linalg.norm(p - r)), "pearson": pear})
    return pd.DataFrame(rows, columns=["combination", "l2", "pearson"])


def latent_arithmetic(Z: np.ndarray, X: np.ndarray, meta: pd.DataFrame, decode, shuffles: int = 10,
                      pca_components: int = 10, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(distances: method, shuffle, combination, l2, pearson; zscores per method × combination).

    ``Z``: latent codes of the rows; ``X``: their profiles in the space ``decode`` maps to.
    """
    labels, combos = arithmetic_groups(meta)
    cols = ["method", "shuffle", "combination", "l2", "pearson"]
    if not combos:
        log.warning("latent arithmetic: no compound has two MoAs that both occur as single MoAs; nothing to predict")
        return pd.DataFrame(columns=cols), pd.DataFrame()
    keep = labels != ""
    Z, X, labels = Z[keep], X[keep], labels[keep]
    names = sorted(set(labels))
    real = _group_means(X, labels, names)
    pca = PCA(n_components=min(pca_components, X.shape[1], len(X)), random_state=seed).fit(X)
    P = pca.transform(X)
    spaces = {"vae": (Z, decode), "pca": (P, pca.inverse_transform), "raw": (X, lambda v: v)}
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(len(labels)) for _ in range(shuffles)]
    frames = []
    for method, (M, dec) in spaces.items():
        d = _compare(_predict(_group_means(M, labels, names), combos, dec), real)
        frames.append(d.assign(method=method, shuffle=-1))
        for s, perm in enumerate(perms):
            d = _compare(_predict(_group_means(M, labels[perm], names), combos, dec), real)
            frames.append(d.assign(method=method, shuffle=s))
    dist = pd.concat(frames, ignore_index=True)[cols]
    z = []
    for (method, combo), g in dist.groupby(["method", "combination"]):
        obs, null = g[g["shuffle"] < 0].iloc[0], g[g["shuffle"] >= 0]
        row = {"method": method, "combination": combo, "n_shuffles": len(null)}
        for m in ("l2", "pearson"):
            sd = null[m].std(ddof=1)
            zz = (obs[m] - null[m].mean()) / sd if sd and np.isfinite(sd) and sd > 0 else np.nan
            row.update({m: obs[m], f"{m}_shuffled_mean": null[m].mean(), f"{m}_z": zz,
                        f"{m}_p_value": float(2 * stats.norm.sf(abs(zz))) if np.isfinite(zz) else np.nan})
        z.append(row)
    return dist, pd.DataFrame(z)


TRAVERSAL_SCALES = ("prior", "empirical")
TRAVERSAL_DIFFERENCES = ("absolute", "signed")


def latent_traversal(decode, Z: np.ndarray, features: list[str], k: float = 3.0, scale: str = "prior",
                     difference: str = "absolute") -> pd.DataFrame:
    """Mean decoded difference (``+k·s`` minus ``−k·s``, absolute or signed) per latent unit and
    Cell Painting feature group; see the module docstring for ``scale`` and ``difference``.
    """
    if scale not in TRAVERSAL_SCALES or difference not in TRAVERSAL_DIFFERENCES:
        raise ValueError(f"traversal scale must be one of {TRAVERSAL_SCALES} and difference one of "
                         f"{TRAVERSAL_DIFFERENCES}; got {scale!r}, {difference!r}")
    cp = [i for i, f in enumerate(features) if f.startswith(S.CP_COMPARTMENTS)]
    if not cp:
        return pd.DataFrame(columns=["latent", "group", "mean_difference"])
    sd = Z.std(0) if scale == "empirical" else np.ones(Z.shape[1])
    groups = np.array([feature_group(features[i]) for i in cp])
    rows = []
    for j in range(Z.shape[1]):
        e = np.zeros((2, Z.shape[1]))
        e[0, j], e[1, j] = k * sd[j], -k * sd[j]
        out = decode(e)
        diff = (out[0] - out[1])[cp]
        diff = np.abs(diff) if difference == "absolute" else diff
        for g in sorted(set(groups)):
            rows.append({"latent": j, "group": g, "mean_difference": float(diff[groups == g].mean())})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# the workflow entry point: one trained VAE
# ---------------------------------------------------------------------------------------------
def _inputs(hp, cp: str, l1000: str, cp_collapsed: str, l1000_collapsed: str):
    """The rows the VAE was trained on (its unit), DMSO included, with their feature matrix."""
    if hp.input in ("cp", "l1000"):
        t = read_table(cp if hp.input == "cp" else l1000)
        feats = S.feature_columns(t)
        return t[S.meta_columns(t)].reset_index(drop=True), t[feats].to_numpy(np.float32), feats
    a, b = read_table(cp_collapsed), read_table(l1000_collapsed)
    fa, fb = S.feature_columns(a), S.feature_columns(b)
    m = a.merge(b[[S.TREATMENT] + fb], on=S.TREATMENT, how="inner")
    return m[S.meta_columns(a)].reset_index(drop=True), m[fa + fb].to_numpy(np.float32), fa + fb


def arithmetic(name: str, hp: HyperParameters, train: TrainSettings, checkpoint: str, cp: str, l1000: str, pairs: str,
               sets: str, cp_collapsed: str, l1000_collapsed: str, distances: str, zscores: str,
               traversal: str, settings: ArithmeticSettings = ArithmeticSettings(), seed: int = 0,
               threads: int = 1):
    """Latent-space arithmetic and the latent traversal of one trained VAE, written to three tables.

    Parameters
    ----------
    name : str
        The model's name in ``models``.
    hp : HyperParameters
        The model's resolved hyperparameters (to rebuild the network from ``checkpoint``).
    train : TrainSettings
        The ``train`` config section (the checkpoint's fingerprint is checked against it).
    checkpoint : str
        The trained weights.
    cp, l1000, pairs, sets : str
        Preprocessed tables and pairing index the model was trained on.
    cp_collapsed, l1000_collapsed : str
        Collapsed tables (a VAE whose input is both modalities was trained on their shared
        treatments).
    distances, zscores, traversal : str
        Outputs: :func:`latent_arithmetic`'s distances and z-scores, :func:`latent_traversal`'s
        table; each gets ``model``, ``seed``, ``variant`` and ``input`` columns.
    settings : ArithmeticSettings
        The ``arithmetic`` config section (label shuffles, PCA components, traversal settings).
    seed : int
        The training seed; seeds the shuffles and the PCA.
    threads : int
        PyTorch CPU threads.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(distances, zscores, traversal)`` as written (without the id columns).

    Raises
    ------
    ValueError
        If the model is not a VAE.
    """
    from ..models.data import ModelData
    from ..models.train import load_model

    torch.set_num_threads(max(1, int(threads)))
    data = ModelData(cp, l1000, pairs, sets)
    model, _, hp, _ = load_model(name, hp, train, checkpoint, data)
    if hp.family != "vae":
        raise ValueError(f"latent arithmetic needs a VAE; model {name!r} is a {hp.family} model")
    meta, X, feats = _inputs(hp, cp, l1000, cp_collapsed, l1000_collapsed)

    @torch.no_grad()
    def decode(z):
        return model.decode(torch.as_tensor(np.asarray(z), dtype=torch.float32)).numpy().astype(np.float64)

    with torch.no_grad():
        Z = model.encode(torch.from_numpy(np.array(X, np.float32)))[0].numpy().astype(np.float64)
    s = settings
    dist, z = latent_arithmetic(Z, X.astype(np.float64), meta, decode, s.shuffles, s.pca_components, seed)
    trav = latent_traversal(decode, Z, feats, s.traversal_sd, s.traversal_scale, s.traversal_difference)
    trav = trav.assign(scale=s.traversal_scale, difference=s.traversal_difference)
    if len(z):
        for method, g in z.groupby("method"):
            log.info("%s arithmetic, %s: %d combinations, mean L2 %.3f (shuffled %.3f), mean L2 z %.2f", name, method,
                     len(g), g["l2"].mean(), g["l2_shuffled_mean"].mean(), g["l2_z"].mean())
    ids = dict(model=name, seed=seed, variant=hp.variant, input=hp.input)  # input, variant: cross-modality figure
    with atomic_outputs(distances, zscores, traversal) as (a, b, c):
        write_parquet(dist.assign(**ids), a)
        write_parquet(z.assign(**ids), b)
        write_parquet(trav.assign(model=name, seed=seed), c)
    return dist, z, trav
