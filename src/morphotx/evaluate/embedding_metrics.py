"""The rows of the ``embedding_metrics`` table (and its curves and mAP tables) for one table.

MOAProfiler's metrics (:func:`moaprofiler_table`, :func:`moaprofiler_metrics`), copairs mAP on
the batch-corrected tables (:func:`batch_correct`, :func:`map_metrics`), cluster quality
(:func:`cluster_metrics`) and cross-modal Recall@k (:func:`recall_metrics`). The metrics
themselves are computed in :mod:`.moaprofiler` and :mod:`.retrieval`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from copairs.matching import UnpairedException
from sklearn.preprocessing import normalize

from .. import schema as S
from ..settings import EvaluateSettings
from . import moaprofiler as mp
from . import retrieval
from .tables import Table, moa_labels, single_moa_rows


# ---------------------------------------------------------------------------------------------
# embedding metrics
# ---------------------------------------------------------------------------------------------
def _metric_rows(metrics: dict, status="ok", reason="") -> list[dict]:
    return [{"metric": k, "value": float(v) if v is not None else np.nan, "status": status, "reason": reason}
            for k, v in metrics.items()]


def moaprofiler_table(t: Table, cfg: EvaluateSettings) -> tuple[Table | None, str]:
    """The rows Wong 2023's metrics are computed on, with its preprocessing where asked:
    ``moaprofiler_dose_uM`` keeps one recoded dose (the paper: 10 µM) and the controls;
    ``moaprofiler_dmso: plate`` standardises every feature to the DMSO rows of the same plate
    (mean 0, SD 1; the paper's "DMSO-standardization"; a plate with fewer than two DMSO rows uses
    all DMSO rows). Returns ``(table, "")`` or ``(None, reason)`` when the table has no DMSO rows
    per plate to standardise against (collapsed tables, pair views).
    """
    meta, X = t.meta, t.X
    ctl = meta[S.IS_CONTROL].astype(bool).to_numpy()
    keep = np.ones(len(meta), bool)
    if cfg.moaprofiler_dose_uM is not None:
        dose = pd.to_numeric(meta[S.DOSE_RECODE], errors="coerce").to_numpy(float)
        keep = ctl | np.isclose(dose, float(cfg.moaprofiler_dose_uM))
    if cfg.moaprofiler_dmso == "plate":
        if t.level != "uncollapsed" or ctl.sum() < 2 or S.PLATE not in meta:
            return None, (f"moaprofiler_dmso: plate needs DMSO replicate rows with a plate; the {t.view} "
                          f"{t.level} table has {int(ctl.sum())} DMSO row(s)")
        X = X.astype(np.float64, copy=True)
        plate = meta[S.PLATE].astype(str).to_numpy()
        for p in np.unique(plate):
            on = plate == p
            ref = X[on & ctl] if (on & ctl).sum() >= 2 else X[ctl]
            sd = ref.std(0)
            X[on] = (X[on] - ref.mean(0)) / np.where(sd > 0, sd, 1.0)
    return Table(t.view, t.level, meta[keep].reset_index(drop=True), X[keep]), ""


def moaprofiler_metrics(t: Table, cfg: EvaluateSettings) -> tuple[list[dict], list[pd.DataFrame]]:
    """Wong 2023's (MOAProfiler) metrics of one table.

    Held-out votes compare the single-MoA test compounds with the training rows' MoA MLEs; the
    test-set analyses (enrichment at the PCC percentiles, PCC deltas and the three pair groups, the
    kNN curve, class-latent assignment) use the test rows of MoAs with at least
    ``min_compounds_per_moa`` test compounds.

    Parameters
    ----------
    t : Table
        The rows to score (see :func:`moaprofiler_table`).
    cfg : EvaluateSettings
        Evaluation settings: ``min_compounds_per_moa``, ``same_compound``, ``curve_k_max``.

    Returns
    -------
    rows : list of dict
        ``embedding_metrics`` rows (metric, value, status, reason); a ``moaprofiler`` row with status
        ``nan_embedding`` or ``too_few_classes`` (fewer than two such MoAs) when they cannot be computed.
    curves : list of pandas.DataFrame
        The enrichment and kNN F1 / precision / recall curves (curve, x, value).
    """
    meta, X = t.meta, t.X
    if not np.isfinite(X).all():
        return [{"metric": "moaprofiler", "value": np.nan, "status": "nan_embedding",
                 "reason": f"{int((~np.isfinite(X).all(1)).sum())} row(s) with NaN/inf"}], []
    single = single_moa_rows(meta)
    y = moa_labels(meta)
    cpd = meta[S.PERT].astype(str).to_numpy()
    split = meta[S.SPLIT].to_numpy()
    rows, curves = [], []
    # held-out compounds: training MLEs vs every single-MoA test compound
    tr, te = single & (split == "train"), single & (split == "test")
    if tr.any() and te.any():
        votes, _ = mp.heldout_votes(X[tr], y[tr], X[te], y[te], cpd[te])
        rows += _metric_rows(votes)
    # the paper's test-set analyses: MoAs represented by several test compounds
    n_cpd = pd.Series(cpd[te]).groupby(y[te]).nunique()
    keep_moas = set(n_cpd.index[n_cpd >= cfg.min_compounds_per_moa])
    sel = te & np.isin(y, list(keep_moas))
    if len(keep_moas) < 2:
        reason = (f"{len(keep_moas)} MoA(s) with ≥{cfg.min_compounds_per_moa} test compounds; "
                  "the test-set analyses need at least 2")
        rows.append({"metric": "moaprofiler", "value": np.nan, "status": "too_few_classes", "reason": reason})
        return rows, curves
    Xs, ys, cs = X[sel], y[sel], cpd[sel]
    same = cfg.same_compound
    rows += _metric_rows({"moaprofiler_n_rows": len(ys), "moaprofiler_n_moas": len(keep_moas),
                          "moaprofiler_n_compounds": len(set(cs))})
    pairs = mp.all_pairs(ys, cs, X=Xs)  # every unique pair once (built in blocks), shared by the pair metrics
    enr = mp.enrichment(Xs, ys, cs, same_compound=same, pairs=pairs)
    curves.append(pd.DataFrame({"curve": "enrichment", "x": enr["percentile"], "value": enr["odds_ratio"]}))
    at99 = enr.loc[np.isclose(enr["percentile"], 99.0)].iloc[0]
    rows += _metric_rows({"enrichment_odds_ratio_p99": at99["odds_ratio"], "enrichment_p_value_p99": at99["p_value"]})
    rows += _metric_rows({k: v for k, v in mp.pcc_delta(Xs, ys, cs, same_compound=same, pairs=pairs).items()})
    g, tests = mp.three_groups(Xs, ys, cs, pairs=pairs)
    del pairs
    for _, r in g.iterrows():
        rows += _metric_rows({f"pcc_{r['group']}": r["mean_pcc"], f"pcc_{r['group']}_sd": r["sd_pcc"],
                              f"n_pairs_{r['group']}": r["n_pairs"]})
    for _, r in tests.iterrows():
        rows += _metric_rows({f"z_{r['group_1']}_vs_{r['group_2']}": r["z"],
                              f"p_{r['group_1']}_vs_{r['group_2']}": r["p_value"]})
    kc = mp.knn_curve(Xs, ys, cs, k_max=cfg.curve_k_max, same_compound=same)  # blocked neighbour search
    if len(kc):
        for m in ("f1", "precision", "recall"):
            curves.append(pd.DataFrame({"curve": f"knn_{m}", "x": kc["k"], "value": kc[m]}))
        best = kc.loc[kc["f1"].idxmax()]
        rows += _metric_rows({"knn_best_weighted_f1": best["f1"], "knn_best_k": best["k"],
                              "knn_best_precision": best["precision"], "knn_best_recall": best["recall"]})
    cla = mp.class_latent_assignment(Xs, ys, cs, same_compound=same)
    rows += _metric_rows({"class_latent_f1": cla["f1"], "class_latent_precision": cla["precision"],
                          "class_latent_recall": cla["recall"]})
    return rows, curves


def batch_correct(tables: list[Table], cfg: EvaluateSettings) -> dict[tuple[str, str], tuple[Table, dict]]:
    """The tables that retrieval (replicate mAP, percent replicating, MoA mAP) scores.

    Parameters
    ----------
    tables : list of Table
        One evaluation job's tables (at most one per ``(view, level)``).
    cfg : EvaluateSettings
        Evaluation settings; ``batch_correction`` is ``none`` or ``tvn``.

    Returns
    -------
    dict
        ``{(view, level): (table, row)}``. ``none``: the tables as they are, ``row`` empty.
        ``tvn``: each uncollapsed table with two or more DMSO rows and a plate column corrected by
        :func:`morphotx.evaluate.retrieval.typical_variation_normalisation` (batch = plate); the collapsed
        table of such a view replaced by the mean of the corrected treated rows of each treatment
        (Lu 2025 corrects, then aggregates with the mean; its DMSO row by the mean of the
        corrected DMSO rows); the other tables as they are. ``row`` is the ``batch_correction``
        metric row: ``status`` ``ok`` (value 1) or ``not_applicable`` (value 0) with the reason.
    """
    if cfg.batch_correction == "none":
        return {(t.view, t.level): (t, {}) for t in tables}
    if cfg.batch_correction != "tvn":
        raise ValueError(f"evaluate.batch_correction must be none or tvn, got {cfg.batch_correction!r}")
    out = {}
    for t in tables:
        if t.level != "uncollapsed":
            continue
        ctl = t.meta[S.IS_CONTROL].astype(bool).to_numpy()
        if ctl.sum() < 2 or S.PLATE not in t.meta or not np.isfinite(t.X).all():
            why = ("non-finite embedding rows" if ctl.sum() >= 2 and S.PLATE in t.meta else
                   f"tvn needs DMSO replicate rows with a plate; the {t.view} uncollapsed table has {int(ctl.sum())} "
                   "DMSO row(s)")
            out[(t.view, t.level)] = (t, {"status": "not_applicable", "reason": why, "value": 0.0})
            continue
        plate = t.meta[S.PLATE].astype(str).to_numpy()
        X = retrieval.typical_variation_normalisation(t.X, ctl, plate)
        n = len(np.unique(plate))
        out[(t.view, t.level)] = (Table(t.view, t.level, t.meta, X), {
            "status": "ok", "value": 1.0,
            "reason": f"tvn: PCA on {int(ctl.sum())} DMSO rows, DMSO scaling per plate ({n} plates)"})
    for t in tables:
        if t.level == "uncollapsed":
            continue
        src = out.get((t.view, "uncollapsed"))
        if src is None or src[1]["status"] != "ok":
            why = (f"tvn corrects replicate rows with DMSO rows of their plate; the {t.view} view has "
                   + ("no uncollapsed table scored" if src is None else "no corrected uncollapsed table")
                   + "; its collapsed rows are scored as they are")
            out[(t.view, t.level)] = (t, {"status": "not_applicable", "reason": why, "value": 0.0})
            continue
        u = src[0]
        treated = ~u.meta[S.IS_CONTROL].astype(bool).to_numpy()
        means = pd.DataFrame(u.X[treated]).groupby(u.meta.loc[treated, S.TREATMENT].astype(str).to_numpy()).mean()
        keys = t.meta[S.TREATMENT].astype(str)
        if not keys[~t.meta[S.IS_CONTROL].astype(bool)].isin(means.index).all():
            out[(t.view, t.level)] = (t, {"status": "not_applicable", "value": 0.0,
                                          "reason": "some collapsed treatments have no corrected replicate row"})
            continue
        X = means.reindex(keys).to_numpy(np.float64, copy=True)
        if t.meta[S.IS_CONTROL].astype(bool).any():  # the DMSO row: the mean of the corrected DMSO rows
            X[t.meta[S.IS_CONTROL].astype(bool).to_numpy()] = u.X[~treated].mean(0)
        out[(t.view, t.level)] = (Table(t.view, t.level, t.meta, X), {
            "status": "ok", "value": 1.0,
            "reason": "tvn: mean of the treatment's corrected replicate rows"})
    return out


def map_metrics(t: Table, cfg: EvaluateSettings, seed: int, validation_map: bool = False) -> tuple[list[dict], list[pd.DataFrame]]:
    """copairs mAP on test rows: replicate retrieval against DMSO and percent replicating
    (uncollapsed level; the latter needs no DMSO rows, so every view gets it) and MoA
    retrieval among single-MoA test compounds (collapsed level; with ``validation_map`` also among
    the validation compounds, ``validation_moa_map``, which ``headline.metric: moa_map`` selects on).
    """
    meta, X = t.meta, t.X
    rows, maps = [], []
    if not np.isfinite(X).all():
        return [{"metric": "map", "value": np.nan, "status": "nan_embedding",
                 "reason": f"{int((~np.isfinite(X).all(1)).sum())} row(s) with NaN/inf"}], []
    common = dict(null_size=cfg.map_null_size, threshold=cfg.map_threshold, seed=seed)
    test = (meta[S.SPLIT] == "test").to_numpy()
    ctl = meta[S.IS_CONTROL].astype(bool).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if t.level == "uncollapsed":
            pr = retrieval.percent_replicating(_with_emb(meta, X)[test].reset_index(drop=True),
                                               null_size=cfg.replicating_null_size, seed=seed)
            rows += (_metric_rows({k: pr[k] for k in ("percent_replicating", "replicating_threshold")})
                     if np.isfinite(pr["percent_replicating"]) else
                     [{"metric": "percent_replicating", "value": np.nan, "status": "too_few_classes",
                       "reason": f"{pr['n_treatments']} test treatment(s) with two or more replicates"}])
            if not ctl.any():
                rows.append({"metric": "replicate_map", "value": np.nan, "status": "no_controls",
                             "reason": f"the {t.view} view has no DMSO rows (pairs are treatments only)"})
            elif cfg.replicate_negatives == "plate" and S.PLATE not in meta:
                rows.append({"metric": "replicate_map", "value": np.nan, "status": "not_applicable",
                             "reason": f"replicate_negatives: plate needs a {S.PLATE} column; the {t.view} view "
                                       "has none (set evaluate.replicate_negatives: all)"})
            else:
                sub = _with_emb(meta, X)[test | ctl]
                try:
                    _, m = retrieval.replicate_map(sub.reset_index(drop=True), **common,
                                                   negatives=cfg.replicate_negatives)
                except UnpairedException as exc:  # e.g. no treatment has two test replicates
                    return rows + [{"metric": "replicate_map", "value": np.nan, "status": "no_pairs",
                                    "reason": f"copairs: {exc} (no test treatment has two replicates)"}], maps
                maps.append(m.rename(columns={S.TREATMENT: "group"}).assign(kind="replicate"))
                rows += _metric_rows({"replicate_map": m["mean_average_precision"].mean(),
                                      "replicate_fraction_retrieved": m["below_corrected_p"].mean()})
        else:
            splits = (("test", ""), ("validation", "validation_")) if validation_map else (("test", ""),)
            for split, prefix in splits:
                r, m = _moa_map_rows(meta, X, split, prefix, common)
                rows += r
                maps += [m] if m is not None and split == "test" else []  # per-MoA tables: test only
    return rows, maps


def cluster_metrics(t: Table, cfg: EvaluateSettings) -> list[dict]:
    """Ha 2025's cluster quality (:func:`morphotx.evaluate.retrieval.cluster_quality`) on test rows.

    * uncollapsed level — **replicates**: the treated test rows of treatments with two or more
      replicates, labelled by treatment: ``replicate_silhouette``, ``replicate_ami``,
      ``replicate_ari``;
    * collapsed level — **MoAs**: one row per single-MoA test compound (the mean of its
      L2-normalised treatment rows, so that the doses of one compound cannot make a MoA cluster
      on their own), in MoAs with at least ``min_compounds_per_moa`` test compounds, labelled by
      MoA: ``moa_silhouette``, ``moa_ami``, ``moa_ari``.
    """
    meta, X = t.meta, t.X
    kind = "replicate" if t.level == "uncollapsed" else "moa"
    names = [f"{kind}_{m}" for m in ("silhouette", "ami", "ari")]
    if not np.isfinite(X).all():
        return [{"metric": n, "value": np.nan, "status": "nan_embedding",
                 "reason": f"{int((~np.isfinite(X).all(1)).sum())} row(s) with NaN/inf"} for n in names]
    test = (meta[S.SPLIT] == "test").to_numpy()
    if kind == "replicate":
        sel = test & ~meta[S.IS_CONTROL].astype(bool).to_numpy()
        lab = meta.loc[sel, S.TREATMENT].astype(str)
        keep = lab.map(lab.value_counts()).to_numpy() >= 2
        Xs, ys, what = X[sel][keep], lab.to_numpy()[keep], "test treatment(s) with two or more replicates"
    else:
        sel = test & single_moa_rows(meta)
        sub = pd.DataFrame({"cpd": meta.loc[sel, S.PERT].astype(str).to_numpy(), "moa": moa_labels(meta)[sel]})
        by_cpd = pd.DataFrame(normalize(X[sel])).groupby(sub["cpd"]).mean()
        moa = sub.drop_duplicates("cpd").set_index("cpd")["moa"].loc[by_cpd.index]
        keep = moa.map(moa.value_counts()).to_numpy() >= max(2, int(cfg.min_compounds_per_moa))
        Xs, ys = by_cpd.to_numpy()[keep], moa.to_numpy()[keep]
        what = f"MoA(s) with {max(2, int(cfg.min_compounds_per_moa))} or more single-MoA test compounds"
    q = retrieval.cluster_quality(Xs, ys)
    if not np.isfinite(q["silhouette"]):
        return [{"metric": n, "value": np.nan, "status": "too_few_classes",
                 "reason": f"{q['n_groups']} {what} ({q['n_rows']} rows)"} for n in names]
    return _metric_rows({**{n: q[m] for n, m in zip(names, ("silhouette", "ami", "ari"))},
                         f"{kind}_cluster_n_groups": q["n_groups"], f"{kind}_cluster_n_rows": q["n_rows"]})


def _moa_map_rows(meta: pd.DataFrame, X: np.ndarray, split: str, prefix: str,
                  common: dict) -> tuple[list[dict], pd.DataFrame | None]:
    """copairs MoA mAP among the single-MoA compounds of ``split`` (collapsed level): metric rows
    named ``<prefix>moa_map`` / ``<prefix>moa_fraction_retrieved`` and the per-MoA table.
    """
    sel = (meta[S.SPLIT] == split).to_numpy() & single_moa_rows(meta)
    sub = _with_emb(meta, X)[sel].reset_index(drop=True)
    n_cpd = sub.assign(_m=moa_labels(sub)).groupby("_m")[S.PERT].nunique()
    name = f"{prefix}moa_map"
    if (n_cpd >= 2).sum() < 1:
        return [{"metric": name, "value": np.nan, "status": "too_few_classes",
                 "reason": f"no MoA has two {split} compounds"}], None
    try:
        _, m = retrieval.moa_map(sub, **common)
    except UnpairedException as exc:
        return [{"metric": name, "value": np.nan, "status": "no_pairs",
                 "reason": f"copairs: {exc} ({len(n_cpd)} MoA(s) among the single-MoA {split} compounds, "
                           f"{int((n_cpd >= 2).sum())} with two or more compounds)"}], None
    m = m.dropna(subset=["mean_average_precision"])
    rows = _metric_rows({name: m["mean_average_precision"].mean(),
                         f"{prefix}moa_fraction_retrieved": m["below_corrected_p"].mean()})
    return rows, m.rename(columns={"Metadata_moa_label": "group"}).assign(kind="moa")


def _with_emb(meta: pd.DataFrame, X: np.ndarray) -> pd.DataFrame:
    emb = pd.DataFrame(X, columns=[f"emb_{i:04d}" for i in range(X.shape[1])])
    return pd.concat([meta.reset_index(drop=True), emb], axis=1)


def recall_metrics(cp: Table, l1000: Table, ks) -> list[dict]:
    """Cross-modal Recall@k on test treatments embedded by both encoders (collapsed level)."""
    a = cp.meta.assign(_i=np.arange(len(cp.meta)))
    b = l1000.meta.assign(_j=np.arange(len(l1000.meta)))
    a, b = a[a[S.SPLIT] == "test"], b[b[S.SPLIT] == "test"]
    m = a[[S.TREATMENT, "_i"]].merge(b[[S.TREATMENT, "_j"]], on=S.TREATMENT)
    if len(m) < 2:
        return [{"metric": "recall", "value": np.nan, "status": "too_few_classes", "reason": "fewer than 2 test treatments"}]
    rec = retrieval.recall_at_k(cp.X[m["_i"].to_numpy()], l1000.X[m["_j"].to_numpy()], ks)
    return _metric_rows({**rec, "recall_n_treatments": len(m)})
