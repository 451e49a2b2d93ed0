"""Retrieval metrics on embeddings (called by :mod:`morphotx.evaluate.embedding_metrics`).

* :func:`replicate_map` — copairs mAP of **replicate retrieval against DMSO**: for each treated
  profile, its replicates (same treatment) are the positives and the DMSO profiles of its plate
  (or, optionally, all DMSO profiles) the negatives; per-treatment mAP with copairs' permutation p-value and BH-corrected p-value.
* :func:`moa_map` — copairs mAP of **MoA retrieval across compounds** on collapsed profiles:
  positives share the MoA but are *other* compounds (``pos_diffby`` the compound), negatives have
  another MoA. Single-MoA treatments only (a multi-MoA compound has no single class); DMSO left out.
* :func:`percent_replicating` — the field's companion to replicate mAP (Way et al. 2022, the
  Cell Painting Gallery's profiling recipes): the share of treatments whose median pairwise
  Pearson correlation among replicates exceeds the 95th percentile of the same statistic over
  random groups of non-replicate profiles of the same sizes. Needs no DMSO rows, so it scores
  every embedding view. Hand-written (30 lines of NumPy): copairs has no such null, and the
  evaluation packages that do (cytominer-eval) are unmaintained.
* :func:`typical_variation_normalisation` — Lu 2025's control-based batch correction of
  embeddings before retrieval (its Appendix C.3, after Celik et al.): a PCA fitted on the control
  (DMSO) rows of every batch together transforms all rows, then per batch a ``StandardScaler``
  fitted on that batch's transformed control rows scales all of its rows. scikit-learn's ``PCA``
  and ``StandardScaler`` do the fitting; Lu 2025 also tried RBF and polynomial kernel PCAs and
  kept the best per method, morphotx uses the linear one.
* :func:`cluster_quality` — Ha 2025's cluster quality of replicates and of MoAs: how well rows
  sharing a label (a treatment's replicates; a MoA's compounds) form clusters. The silhouette
  score of the labels (cosine distance) and the agreement (adjusted mutual information, adjusted
  Rand index) between the labels and an agglomerative clustering (average linkage, cosine) cut
  into as many clusters as there are labels. scikit-learn's silhouette and scores, scipy's
  average linkage on the condensed cosine distances (what scikit-learn's clustering runs, without
  its n × n matrix; tested equal); deterministic (no seed).
* :func:`recall_at_k` — cross-modal Recall@k (Lu 2025) in both directions for models with two
  encoders: for treatment ``i`` the query is its Cell Painting embedding and the hit is its own
  L1000 embedding among all candidates (and back). Hand-written: a dozen lines of NumPy, no
  maintained library computes this cross-modal variant on precomputed embeddings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from copairs import map as copairs_map
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn import config_context
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, silhouette_score
from sklearn.preprocessing import StandardScaler, normalize

from .. import schema as S
from .moaprofiler import unit_rows

REF = "Metadata_reference_index"
# pairs per copairs similarity batch: copairs gathers both rows of every pair of a batch, so a
# batch's memory is pairs × features; 2,000 pairs (copairs' default: 20,000) keep it a tenth as
# large at the same speed (docs/benchmarks.md)
PAIR_BATCH = 2000


# copairs computes each pair's cosine from its two rows, gathered PAIR_BATCH pairs at a time: for
# MoA retrieval among LINCS-size test compounds (1,596 rows × 2,398 raw+ columns, 1.3 million
# pairs) that was a large share of the LINCS-size evaluation (docs/benchmarks.md). Up to COSINE_MATRIX_MAX rows,
# the rows' cosine matrix is computed once instead (BLAS products a block of rows at a time, kept
# in float32 as copairs keeps similarities: 256 MB at the limit) and copairs gets each row's
# number as its feature and a lookup in that matrix as its `distance` callable; above the limit,
# copairs' own cosine.
COSINE_MATRIX_MAX = 8000


def _pair_similarity(X: np.ndarray) -> tuple[np.ndarray, object]:
    """What to hand copairs' ``average_precision`` as ``feats`` and ``distance`` for cosine similarity
    of the rows of ``X``: row numbers and a lookup in their cosine matrix (up to
    :data:`COSINE_MATRIX_MAX` rows), else ``X`` itself and ``"cosine"``. The lookup gives copairs'
    ``pairwise_cosine`` values (each row divided by its norm, so a zero row gives NaN as there),
    computed once per row pair instead of once per pair and batch.
    """
    if len(X) > COSINE_MATRIX_MAX:
        return X, "cosine"
    with np.errstate(invalid="ignore", divide="ignore"):
        U = X / np.linalg.norm(X, axis=1, keepdims=True)
    sim = np.empty((len(U), len(U)), np.float32)
    for i in range(0, len(U), 1024):  # float64 products a block of rows at a time, stored as float32
        sim[i:i + 1024] = U[i:i + 1024] @ U.T

    def lookup(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return sim[a[:, 0], b[:, 0]]

    return np.arange(len(X)).reshape(-1, 1), lookup


def _emb(df: pd.DataFrame) -> np.ndarray:
    return df[[c for c in df.columns if c.startswith("emb_")] or S.feature_columns(df)].to_numpy(float)


def replicate_map(df: pd.DataFrame, null_size: int = 10000, threshold: float = 0.05, seed: int = 0,
                  negatives: str = "plate") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-profile AP and per-treatment mAP of replicate retrieval against DMSO (uncollapsed).

    ``negatives``: ``plate`` (default) ranks each treated profile's replicates among the DMSO
    profiles of its own plate, as the Cell Painting Gallery's profiling recipe scores phenotypic
    activity (copairs ``neg_sameby`` the plate; replicates on other plates are still positives):
    it keeps plate effects out of the score and the number of pairs linear in the rows. ``all``
    ranks them among every DMSO profile (treated rows × DMSO rows pairs: 30 million at LINCS
    Pilot 1 size, where copairs takes over ten minutes). A treated profile on a plate without
    DMSO has no negatives under ``plate``.
    """
    if negatives not in ("plate", "all"):
        raise ValueError(f"evaluate.replicate_negatives must be plate or all, got {negatives!r}")
    if negatives == "plate" and S.PLATE not in df:
        raise ValueError(f"replicate_map(negatives='plate') needs a {S.PLATE} column; use negatives='all'")
    ctl = df[S.IS_CONTROL].astype(bool).to_numpy()
    meta = pd.DataFrame({S.TREATMENT: df[S.TREATMENT].astype(str).to_numpy(),
                         REF: np.where(ctl, np.arange(len(df)), -1)})
    if negatives == "plate":
        meta[S.PLATE] = df[S.PLATE].astype(str).to_numpy()
    feats, distance = _pair_similarity(_emb(df))
    ap = copairs_map.average_precision(meta, feats, pos_sameby=[S.TREATMENT, REF], pos_diffby=[],
                                       neg_sameby=[S.PLATE] if negatives == "plate" else [],
                                       neg_diffby=[S.TREATMENT, REF], batch_size=PAIR_BATCH, distance=distance,
                                       progress_bar=False)
    ap = ap[~ctl[ap.index]] if len(ap) == len(df) else ap
    maps = copairs_map.mean_average_precision(ap, [S.TREATMENT], null_size=null_size, threshold=threshold,
                                              seed=seed, progress_bar=False)
    return ap, maps


def moa_map(df: pd.DataFrame, null_size: int = 10000, threshold: float = 0.05, seed: int = 0) -> tuple[
        pd.DataFrame, pd.DataFrame]:
    """Per-treatment AP and per-MoA mAP of MoA retrieval across compounds (collapsed profiles)."""
    keep = ~df[S.IS_CONTROL].astype(bool).to_numpy() & (df[S.MOA].map(len) == 1).to_numpy()
    sub = df.loc[keep].reset_index(drop=True)
    meta = pd.DataFrame({"Metadata_moa_label": sub[S.MOA].map(lambda m: m[0]).to_numpy(),
                         S.PERT: sub[S.PERT].astype(str).to_numpy(), S.TREATMENT: sub[S.TREATMENT].astype(str).to_numpy()})
    feats, distance = _pair_similarity(_emb(sub))
    ap = copairs_map.average_precision(meta, feats, pos_sameby=["Metadata_moa_label"], pos_diffby=[S.PERT],
                                       neg_sameby=[], neg_diffby=["Metadata_moa_label"], batch_size=PAIR_BATCH,
                                       distance=distance, progress_bar=False)
    maps = copairs_map.mean_average_precision(ap, ["Metadata_moa_label"], null_size=null_size, threshold=threshold,
                                              seed=seed, progress_bar=False)
    return ap, maps


def percent_replicating(df: pd.DataFrame, null_size: int = 1000, percentile: float = 95.0,
                        seed: int = 0) -> dict[str, float]:
    """Percent replicating of the treated profiles of ``df`` (one row per replicate).

    Parameters
    ----------
    df : pandas.DataFrame
        ``Metadata_pert_id_dose``, ``Metadata_is_control`` and the embedding (``emb_*``) or feature
        columns; controls are left out.
    null_size : int
        Random groups drawn per group size for the null.
    percentile : float
        The null percentile a treatment must exceed.
    seed : int
        Seed of the random groups.

    Returns
    -------
    dict
        ``percent_replicating`` (0–1), ``replicating_threshold`` and ``n_treatments`` (those with
        at least two replicates); NaN when fewer than two such treatments.
    """
    keep = ~df[S.IS_CONTROL].astype(bool).to_numpy()
    X, trt = _emb(df)[keep], df.loc[keep, S.TREATMENT].astype(str).to_numpy()
    groups = [g for g in pd.Series(np.arange(len(trt))).groupby(trt).indices.values() if len(g) >= 2]
    if len(groups) < 2:
        return {"percent_replicating": np.nan, "replicating_threshold": np.nan, "n_treatments": len(groups)}
    U = unit_rows(X)  # dot products are Pearson correlations
    observed = np.array([np.median((U[g] @ U[g].T)[np.triu_indices(len(g), 1)]) for g in groups])
    rng = np.random.default_rng(seed)
    sizes = np.array([len(g) for g in groups])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    members = np.concatenate(groups)
    null = []
    for size in sorted(set(sizes.tolist())):
        k = min(size, len(groups))
        # `null_size` groups of one profile from each of k different treatments (no replicate pair)
        picks = np.argsort(rng.random((null_size, len(groups))), axis=1)[:, :k]
        rows = members[starts[picks] + (rng.random(picks.shape) * sizes[picks]).astype(int)]
        C = np.einsum("gid,gjd->gij", U[rows], U[rows])
        iu = np.triu_indices(k, 1)
        null.append(np.median(C[:, iu[0], iu[1]], axis=1))
    threshold = float(np.nanpercentile(np.concatenate(null), percentile))
    return {"percent_replicating": float(np.mean(observed > threshold)), "replicating_threshold": threshold,
            "n_treatments": len(groups)}


def typical_variation_normalisation(X: np.ndarray, is_control, batch) -> np.ndarray:
    """Correct embeddings for batch effects with their control rows (Lu 2025, Appendix C.3).

    Parameters
    ----------
    X : numpy.ndarray
        Embeddings, one row per profile (controls included).
    is_control : array-like of bool
        The control (DMSO) rows.
    batch : array-like
        The batch of each row (morphotx: the plate).

    Returns
    -------
    numpy.ndarray
        The corrected rows: PCA fitted on all control rows (components of zero control variance
        dropped), then each batch centred and scaled by its own control rows, so a batch's
        controls have mean 0 and SD 1 on every component. A batch with fewer than two control
        rows is scaled by all control rows instead.

    Raises
    ------
    ValueError
        Fewer than two control rows in all.
    """
    X = np.asarray(X, np.float64)
    ctl = np.asarray(is_control, bool)
    batch = np.asarray(batch).astype(str)
    if ctl.sum() < 2:
        raise ValueError(f"typical variation normalisation needs two or more control rows; got {int(ctl.sum())}")
    pca = PCA(svd_solver="full").fit(X[ctl])
    keep = pca.explained_variance_ > pca.explained_variance_.max() * 1e-10
    if not keep.any():
        raise ValueError("typical variation normalisation: the control rows are all identical (no variance to scale by)")
    Z = pca.transform(X)[:, keep]
    out = np.empty_like(Z)
    everyone = StandardScaler().fit(Z[ctl])
    for b in np.unique(batch):
        on = batch == b
        scaler = StandardScaler().fit(Z[on & ctl]) if (on & ctl).sum() >= 2 else everyone
        out[on] = scaler.transform(Z[on])
    return out


def cluster_quality(X: np.ndarray, labels) -> dict[str, float]:
    """Cluster quality of the groups ``labels`` in the rows of ``X``.

    Parameters
    ----------
    X : numpy.ndarray
        Rows × dimensions (embeddings or features); compared by cosine distance (a zero row is at
        distance 1 from every other row).
    labels : array-like
        The group of each row (treatment, MoA). Call with groups of two or more rows: a singleton
        has silhouette 0 by definition and would only dilute the mean.

    Returns
    -------
    dict
        ``silhouette`` (−1 to 1: mean over rows of (b − a)/max(a, b), ``a`` the mean distance to
        the row's own group, ``b`` to the nearest other group), ``ami`` and ``ari`` (0 for a
        chance clustering, 1 when the clustering recovers the labels) of the average-linkage
        clustering into ``n_groups`` clusters, ``n_groups`` and ``n_rows``. NaN scores with fewer
        than two groups or no more rows than groups (the silhouette is undefined there).
    """
    codes, groups = pd.factorize(pd.Series(np.asarray(labels)).astype(str))
    k, n = len(groups), len(codes)
    if k < 2 or n <= k:
        return {"silhouette": np.nan, "ami": np.nan, "ari": np.nan, "n_groups": k, "n_rows": n}
    X = np.asarray(X, dtype=np.float64)
    # the condensed distance matrix (n(n-1)/2 values) instead of scikit-learn's n × n one: at
    # LINCS size (~10,000 test replicates) 0.4 GB instead of 2.3 GB of matrix and temporaries.
    # scikit-learn's AgglomerativeClustering(metric="precomputed", linkage="average") runs this
    # very scipy linkage and stops when k clusters are left: the first n - k merges, which
    # fcluster applies when each merge's criterion is its rank. The silhouette is scikit-learn's,
    # its distances computed from the rows in 128 MB chunks
    Z = linkage(_condensed_cosine(X), method="average")
    pred = fcluster(Z, t=k, criterion="maxclust_monocrit", monocrit=np.arange(n - 1, dtype=np.float64))
    with config_context(working_memory=128):
        silhouette = silhouette_score(X, codes, metric="cosine")
    return {"silhouette": float(silhouette),
            "ami": float(adjusted_mutual_info_score(codes, pred)), "ari": float(adjusted_rand_score(codes, pred)),
            "n_groups": k, "n_rows": n}


def _condensed_cosine(X: np.ndarray, block: int = 1024) -> np.ndarray:
    """Cosine distances of all row pairs in scipy's condensed order, as scikit-learn computes them
    (1 − the dot product of L2-normalised rows, clipped to [0, 2]), one block of rows at a time
    (scipy's ``pdist(X, "cosine")`` loops over pairs: far slower at LINCS size).
    """
    Xn = normalize(X)
    n = len(Xn)
    out = np.empty(n * (n - 1) // 2)
    for a in range(0, n, block):
        S = Xn[a:a + block] @ Xn[a:].T
        for r in range(len(S)):
            i = a + r
            start = i * n - i * (i + 1) // 2  # the pairs (i, j > i)
            out[start:start + n - i - 1] = S[r, r + 1:]
    np.subtract(1.0, out, out=out)
    return np.clip(out, 0.0, 2.0, out=out)


def recall_at_k(P: np.ndarray, Q: np.ndarray, ks=(1, 5, 10)) -> dict[str, float]:
    """Row ``i`` of ``P`` (Cell Painting) matches row ``i`` of ``Q`` (L1000). Cosine similarity;
    a tie counts against the query (the true match must beat every other candidate strictly).
    """
    P = P / np.linalg.norm(P, axis=1, keepdims=True).clip(1e-12)
    Q = Q / np.linalg.norm(Q, axis=1, keepdims=True).clip(1e-12)
    sim = P @ Q.T
    diag = np.diag(sim)
    rank_p2q = (sim >= diag[:, None]).sum(1)  # 1 = the true match is the best
    rank_q2p = (sim >= diag[None, :]).sum(0)
    out = {}
    for k in ks:
        out[f"recall@{k}_cp_to_l1000"] = float((rank_p2q <= k).mean())
        out[f"recall@{k}_l1000_to_cp"] = float((rank_q2p <= k).mean())
    return out
