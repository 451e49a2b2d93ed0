"""MOAProfiler's embedding metrics (Wong 2023, Methods "embedding analysis" and "held-out compounds").

Every function takes an embedding matrix ``X`` (rows = profiles), the MoA label of each row
(single-MoA rows only: a multi-MoA compound has no single class) and the compound of each row.
Similarity is Pearson correlation (PCC, i.e. centred cosine), as in the paper.

* :func:`enrichment` — odds ratio of a one-sided Fisher exact test of "strongly correlated" vs
  "same MoA" over all unique pairs, at PCC percentiles 98–99.8 (step 0.2).
* :func:`pcc_delta` — mean PCC of intra-MoA pairs minus mean PCC of inter-MoA pairs.
* :func:`knn_curve` — leave-one-out kNN by PCC for every k (majority vote), weighted F1 /
  precision / recall per k.
* :func:`class_latent_assignment` — each row is assigned to the MoA whose median embedding
  (MLE), computed without the query, is most similar.
* :func:`three_groups` — mean PCC of (same compound), (other compound, same MoA), (other
  compound, other MoA) pairs, with two-sided z-tests between the groups.
* :func:`heldout_votes` — MoA of held-out compounds from training-set MLEs: individual vote
  (majority of per-row predictions) and aggregated vote (the compound's median embedding).

One choice differs from the paper's default and is a parameter: MOAProfiler scored wells whose
compounds were also in training, so a query's own replicates counted as MoA neighbours. Our test
rows are held-out compounds, and a replicate of the query is not evidence of its MoA, so with
``same_compound="exclude"`` (our default) same-compound pairs are left out of enrichment, the
intra/inter delta, kNN neighbours and the query's own MLE. ``same_compound="include"`` gives the
paper's definitions. :func:`three_groups` reports the same-compound group separately either way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import f1_score, precision_score, recall_score

from .scores import weighted_prf

PERCENTILES = tuple(np.round(np.arange(98.0, 99.8001, 0.2), 1))


def _check(same_compound: str):
    if same_compound not in ("exclude", "include"):
        raise ValueError(f"same_compound must be 'exclude' or 'include', got {same_compound!r}")


BLOCK = 2048  # rows of the similarity matrix held at once: n² matrices are never built


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm: their dot products are Pearson correlations."""
    Xc = np.asarray(X, np.float64)
    Xc = Xc - Xc.mean(1, keepdims=True)
    norm = np.linalg.norm(Xc, axis=1, keepdims=True)
    return np.divide(Xc, norm, out=np.zeros_like(Xc), where=norm > 0)


def pcc_matrix(X: np.ndarray) -> np.ndarray:
    """Pearson correlation between rows (float64; a constant row correlates 0 with everything)."""
    U = unit_rows(X)
    return U @ U.T


def pcc_cross(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Pearson correlation of every row of ``A`` with every row of ``B`` (``len(A) × len(B)``)."""
    return unit_rows(A) @ unit_rows(B).T


def _row_blocks(n: int, X=None, pcc=None, block: int = BLOCK):
    """``(start, stop, rows of the PCC matrix start..stop)``, from ``pcc`` or computed from ``X``
    ``block`` rows at a time (memory ``block × n`` instead of ``n²``).
    """
    U = None if pcc is not None else unit_rows(X)
    for s in range(0, n, block):
        e = min(s + block, n)
        yield s, e, (pcc[s:e] if pcc is not None else U[s:e] @ U.T)


def _weighted(y_true, y_pred) -> dict[str, float]:
    labels = sorted(set(y_true))
    kw = dict(labels=labels, average="weighted", zero_division=0)
    return {"f1": float(f1_score(y_true, y_pred, **kw)), "precision": float(precision_score(y_true, y_pred, **kw)),
            "recall": float(recall_score(y_true, y_pred, **kw))}


def all_pairs(moa, compound, pcc: np.ndarray | None = None, X: np.ndarray | None = None,
              block: int = BLOCK) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCC, same-MoA flag and same-compound flag of every unique pair (upper triangle, row-major
    order), from the matrix ``pcc`` or, block by block, from the rows of ``X`` (no n² matrix).
    Compute it once and pass it as ``pairs=`` to the pair metrics: at 10,000 profiles it is 50M
    pairs.
    """
    moa, compound = np.asarray(moa), np.asarray(compound)
    m, c = np.unique(moa, return_inverse=True)[1], np.unique(compound, return_inverse=True)[1]
    vals, same_m, same_c = [], [], []
    for s, e, P in _row_blocks(len(moa), X, pcc, block):
        upper = np.arange(s, e)[:, None] < np.arange(s, len(moa))[None, :]
        vals.append(P[:, s:][upper])
        same_m.append((m[s:e, None] == m[None, s:])[upper])
        same_c.append((c[s:e, None] == c[None, s:])[upper])
    if not vals:
        return np.zeros(0), np.zeros(0, bool), np.zeros(0, bool)
    return np.concatenate(vals), np.concatenate(same_m), np.concatenate(same_c)


def pair_values(X, moa, compound, same_compound: str = "exclude", pcc: np.ndarray | None = None,
                pairs: tuple | None = None):
    """:func:`all_pairs`, without same-compound pairs under ``exclude``."""
    _check(same_compound)
    if pairs is None:
        pairs = all_pairs(moa, compound, pcc_matrix(X) if pcc is None else pcc)
    vals, same_moa, same_cpd = pairs
    if same_compound == "include":
        return vals, same_moa, same_cpd
    keep = ~same_cpd
    return vals[keep], same_moa[keep], same_cpd[keep]


def enrichment(X, moa, compound, percentiles=PERCENTILES, same_compound: str = "exclude",
               pcc: np.ndarray | None = None, pairs: tuple | None = None) -> pd.DataFrame:
    """One row per percentile: threshold, the 2×2 table (a strong&same-MoA, b strong&other,
    c weak&same-MoA, d weak&other), the odds ratio (a/b)/(c/d) and the one-sided Fisher p-value.
    """
    vals, same, _ = pair_values(X, moa, compound, same_compound, pcc, pairs)
    rows = []
    for p in percentiles:
        thr = float(np.percentile(vals, p)) if len(vals) else np.nan
        strong = vals >= thr
        a, b = int((strong & same).sum()), int((strong & ~same).sum())
        c, d = int((~strong & same).sum()), int((~strong & ~same).sum())
        if len(vals) == 0 or (a + c) == 0:
            odds, pval = np.nan, np.nan
        else:
            res = stats.fisher_exact([[a, b], [c, d]], alternative="greater")
            odds, pval = float(res.statistic), float(res.pvalue)
        rows.append({"percentile": float(p), "threshold": thr, "a": a, "b": b, "c": c, "d": d,
                     "odds_ratio": odds, "p_value": pval})
    return pd.DataFrame(rows)


def pcc_delta(X, moa, compound, same_compound: str = "exclude", pcc: np.ndarray | None = None,
              pairs: tuple | None = None) -> dict[str, float]:
    """Mean PCC of same-MoA pairs minus that of different-MoA pairs.

    Parameters
    ----------
    X : array-like, shape (n_rows, n_features)
        Profiles or embeddings.
    moa, compound : array-like, shape (n_rows,)
        Each row's MoA and compound.
    same_compound : {"exclude", "include"}
        Whether pairs of rows of the same compound count.
    pcc : numpy.ndarray, optional
        The rows' PCC matrix, when already computed.
    pairs : tuple, optional
        :func:`all_pairs`' output, when already computed.

    Returns
    -------
    dict
        ``intra_moa_pcc`` / ``inter_moa_pcc`` (mean) with their ``_sd``, ``pcc_delta`` (intra minus
        inter; NaN when a group is empty) and ``n_intra_pairs`` / ``n_inter_pairs``.
    """
    vals, same, _ = pair_values(X, moa, compound, same_compound, pcc, pairs)
    intra = vals[same]
    inter = vals[~same]
    mi = float(intra.mean()) if len(intra) else np.nan
    me = float(inter.mean()) if len(inter) else np.nan
    return {"intra_moa_pcc": mi, "intra_moa_pcc_sd": float(intra.std()) if len(intra) else np.nan,
            "inter_moa_pcc": me, "inter_moa_pcc_sd": float(inter.std()) if len(inter) else np.nan,
            "pcc_delta": mi - me, "n_intra_pairs": int(len(intra)), "n_inter_pairs": int(len(inter))}


def _ztest(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sided z-test for a difference of means (large samples; the paper's "Statistical tests").
    Four lines of arithmetic on the group means and variances; statsmodels' ztest would pool the
    variances, which the paper does not.
    """
    if len(a) < 2 or len(b) < 2:
        return np.nan, np.nan
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    if se == 0:
        return np.nan, np.nan
    z = (a.mean() - b.mean()) / se
    return float(z), float(2 * stats.norm.sf(abs(z)))


def three_groups(X, moa, compound, pcc: np.ndarray | None = None,
                 pairs: tuple | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(groups: mean/sd/n of PCC per group; tests: z and two-sided p for each pair of groups)."""
    vals, same_moa, same_cpd = pair_values(X, moa, compound, "include", pcc, pairs)
    groups = {"same_compound": vals[same_cpd], "other_compound_same_moa": vals[~same_cpd & same_moa],
              "other_compound_other_moa": vals[~same_cpd & ~same_moa]}
    g = pd.DataFrame([{"group": k, "mean_pcc": float(v.mean()) if len(v) else np.nan,
                       "sd_pcc": float(v.std()) if len(v) else np.nan, "n_pairs": int(len(v))}
                      for k, v in groups.items()])
    names = list(groups)
    tests = []
    for x in range(3):
        for y in range(x + 1, 3):
            z, p = _ztest(groups[names[x]], groups[names[y]])
            tests.append({"group_1": names[x], "group_2": names[y], "z": z, "p_value": p})
    return g, pd.DataFrame(tests)


def knn_curve(X, moa, compound, k_max: int | None = None, same_compound: str = "exclude",
              pcc: np.ndarray | None = None, block: int = BLOCK) -> pd.DataFrame:
    """Leave-one-out kNN (PCC) for k = 1 … min(k_max, candidates): weighted F1, precision, recall.

    Majority vote; a tie goes to the tied MoA whose nearest member ranks first (the closest).
    """
    _check(same_compound)
    moa, compound = np.asarray(moa), np.asarray(compound)
    n = len(moa)
    cpd_code = np.unique(compound, return_inverse=True)[1]
    # candidates per row: everything but the row itself (and its compound's rows under exclude)
    n_cand = int((n - np.bincount(cpd_code)[cpd_code] if same_compound == "exclude" else np.full(n, n - 1)).min()) \
        if n else 0
    k_top = n_cand if k_max is None else min(int(k_max), n_cand)
    if k_top < 1:
        return pd.DataFrame(columns=["k", "f1", "precision", "recall"])
    classes, y = np.unique(moa, return_inverse=True)
    order = np.empty((n, k_top), np.int64)
    for s, e, rows in _row_blocks(n, X, pcc, block):  # the k nearest of each row, a block of rows at a time
        P = rows.astype(np.float64, copy=True)
        P[np.arange(e - s), np.arange(s, e)] = -np.inf
        if same_compound == "exclude":
            P[cpd_code[s:e, None] == cpd_code[None, :]] = -np.inf
        if k_top < n - 1:
            top = np.argpartition(-P, k_top - 1, axis=1)[:, :k_top]
            order[s:e] = np.take_along_axis(top, np.argsort(-np.take_along_axis(P, top, 1), axis=1, kind="stable"), 1)
        else:
            order[s:e] = np.argsort(-P, axis=1, kind="stable")[:, :k_top]
    ar = np.arange(n)
    counts = np.zeros((n, len(classes)), np.int32)
    first = np.full((n, len(classes)), k_top, np.int32)  # rank of each class's nearest member (tie-break)
    rows = []
    for k in range(1, k_top + 1):
        cls = y[order[:, k - 1]]
        counts[ar, cls] += 1
        first[ar, cls] = np.minimum(first[ar, cls], k - 1)
        best = counts.max(1, keepdims=True)
        score = np.where(counts == best, -first, np.iinfo(np.int32).min)
        rows.append({"k": k, **weighted_prf(y, score.argmax(1), len(classes))})
    return pd.DataFrame(rows)


def _median_by(X, labels):
    labs = np.unique(labels)
    return labs, np.vstack([np.median(X[labels == m], axis=0) for m in labs])


def class_latent_assignment(X, moa, compound, same_compound: str = "exclude") -> dict:
    """Each row is a query; MLE = median embedding of each MoA over the other rows (without the
    query, and without the query's compound under ``exclude``); prediction = most similar MLE.
    """
    _check(same_compound)
    X, moa, compound = np.asarray(X, float), np.asarray(moa), np.asarray(compound)
    classes, mle = _median_by(X, moa)
    pred = np.empty(len(moa), dtype=object)
    # the query's own MoA needs a median without the query (or its compound); others are unaffected
    for ci, m in enumerate(classes):
        rows = np.flatnonzero(moa == m)
        unit = compound[rows] if same_compound == "exclude" else rows.astype(str)
        for u in np.unique(unit):
            q = rows[unit == u]
            rest = np.setdiff1d(rows, q)
            cand = mle.copy()
            valid = np.ones(len(classes), bool)
            if len(rest):
                cand[ci] = np.median(X[rest], axis=0)
            else:
                valid[ci] = False
            sims = pcc_cross(X[q], cand)
            sims[:, ~valid] = -np.inf
            pred[q] = classes[sims.argmax(1)]
    return {**_weighted(moa, pred.astype(str)), "n": int(len(moa)), "pred": pred.astype(str)}


def heldout_votes(X_train, moa_train, X_test, moa_test, compound_test) -> tuple[dict, pd.DataFrame]:
    """Training MLEs (median per MoA); per-compound predictions by individual and aggregated vote.

    Individual vote ties go to the tied MoA with the higher mean PCC over the compound's rows.
    As in Wong 2023, only held-out compounds whose MoA has a training compound are scored (a MoA
    without an MLE can never be predicted); the others stay in the per-compound table with
    ``moa_in_training`` False and are counted in ``n_compounds_unseen_moa``.
    Returns (summary: accuracy and weighted F1 of each vote over the scored compounds, per-compound table).
    """
    X_train, X_test = np.asarray(X_train, float), np.asarray(X_test, float)
    moa_test, compound_test = np.asarray(moa_test), np.asarray(compound_test)
    classes, mle = _median_by(X_train, np.asarray(moa_train))
    S = pcc_cross(X_test, mle)
    row_pred = classes[S.argmax(1)]
    rows = []
    for c in pd.unique(compound_test):
        idx = np.flatnonzero(compound_test == c)
        votes = pd.Series(row_pred[idx]).value_counts()
        tied = votes.index[votes == votes.max()]
        mean_sim = {m: S[idx, np.searchsorted(classes, m)].mean() for m in tied}
        individual = max(tied, key=lambda m: (mean_sim[m], m))
        cle = np.median(X_test[idx], axis=0, keepdims=True)
        aggregated = classes[pcc_cross(cle, mle)[0].argmax()]
        rows.append({"compound": c, "moa": moa_test[idx[0]], "n_rows": len(idx), "individual_vote": individual,
                     "aggregated_vote": aggregated, "moa_in_training": moa_test[idx[0]] in set(classes)})
    per = pd.DataFrame(rows)
    scored = per[per["moa_in_training"]] if len(per) else per
    out = {"n_compounds": len(scored), "n_compounds_unseen_moa": len(per) - len(scored)}
    for v in ("individual_vote", "aggregated_vote"):
        out[f"{v}_accuracy"] = float((scored[v] == scored["moa"]).mean()) if len(scored) else np.nan
        out[f"{v}_weighted_f1"] = (_weighted(scored["moa"].to_numpy(), scored[v].to_numpy())["f1"]
                                   if len(scored) else np.nan)
    return out, per
