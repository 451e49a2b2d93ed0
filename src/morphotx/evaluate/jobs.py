"""Score one model's embeddings (or the raw-feature baselines) on the compound-held-out split.

One call per (model, seed) writes five tidy Parquet tables that the leaderboard and figures read:

``classification``     one row per (view, level, variant, classifier): macro / weighted F1,
                       accuracy, MoAs with non-zero F1, status and reason (``ok``,
                       ``not_converged``, ``nan_embedding``, ``too_few_classes``, ``failed``).
``per_moa``            per-MoA F1 / precision / recall with support, and why a MoA cannot be
                       predicted (no training compound).
``embedding_metrics``  long table (view, level, metric, value, status, reason): MOAProfiler
                       metrics, held-out votes, copairs mAP, cluster quality of replicates and
                       MoAs (seed 003), cross-modal Recall@k.
``curves``             enrichment vs PCC percentile, kNN weighted F1/precision/recall vs k, the
                       curve that chose the classifier's k (validation compounds, or grouped CV).
``map``                copairs per-group mAP with p-values (replicate retrieval per treatment,
                       MoA retrieval per MoA), for distributions.
``predictions``        one row per scored validation or test row and classifier: the row's
                       compound, its MoA and the predicted MoA. The headline's compound-level
                       statistics (:mod:`morphotx.report.compound_bootstrap`) resample compounds from it.

Protocol (the same for every model and baseline):

* **Rows.** Classifiers are fitted on training-compound rows and scored, separately, on the
  validation-compound rows and on the test-compound rows (column ``split``). The validation scores
  choose the configuration of each model in the headline (:mod:`morphotx.report.headline`); the test
  scores of every configuration stay in the exploratory leaderboard. One evaluation job is one
  repetition (``fold`` of the compound split × training ``seed``). Classification and the MOAProfiler metrics use
  **single-MoA** compounds (a multi-MoA compound has no single right class); multi-MoA compounds
  are used by latent-space arithmetic (:mod:`morphotx.evaluate.arithmetic`). DMSO is excluded except as the
  negative set of replicate mAP.
* **Variants** (study 000): ``uncollapsed`` (every replicate; for the ``both`` view, pairs of a
  Cell Painting and an L1000 replicate of the treatment: by default a cyclic matching in which
  every replicate appears, not all m × n Cartesian pairs, see :func:`cyclic_pairs`), ``collapsed`` (one row per compound-dose), ``raw+uncollapsed`` and
  ``raw+collapsed``: the embedding and the matching preprocessed raw features, each block
  standardised on training rows and L2-normalised, then concatenated.
* **Classifiers** (:mod:`morphotx.evaluate.classify`) see L2-normalised rows.
* **MOAProfiler metrics** (:mod:`morphotx.evaluate.moaprofiler`) run on the test rows of MoAs with at
  least ``min_compounds_per_moa`` test compounds (the paper drops single-compound MoAs); held-out
  votes use training MLEs and the single-MoA test compounds whose MoA has a training compound
  (seed 001; the others are counted as ``n_compounds_unseen_moa``).
* **Batch correction before retrieval** (``batch_correction: tvn``, seed 004): replicate mAP,
  percent replicating and MoA mAP are computed on embeddings corrected with the DMSO rows of each
  plate (:func:`morphotx.evaluate.retrieval.typical_variation_normalisation`); collapsed rows are then the
  mean of the corrected replicate rows of the treatment (seed 004 corrects per batch, then
  aggregates with the mean). Tables without DMSO replicate rows (pair views, and the collapsed
  tables of views whose uncollapsed table has none) are scored as they are, and a
  ``batch_correction`` row records ``not_applicable`` with the reason. Classification and the
  MOAProfiler metrics do not use it (seed 001's own DMSO step is ``moaprofiler_dmso``).
* **Baselines** (``source = raw``): raw Cell Painting and raw L1000 at both levels, early fusion
  (blocks standardised, L2-normalised, concatenated) and late fusion (the average of the Cell
  Painting and L1000 classifiers' probabilities, Haghighi et al. 2022) at the collapsed level,
  where both modalities describe the same treatments. Fusion at the uncollapsed level would need
  the Cartesian pair rows, which are not one biological sample each; it is left out.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from copairs.matching import UnpairedException
from sklearn.preprocessing import StandardScaler, normalize
from threadpoolctl import threadpool_limits

from .. import schema as S
from ..io import atomic_outputs, read_table, write_parquet
from ..settings import EvaluateSettings
from . import moaprofiler as mp
from . import retrieval
from .classify import fit_predict
from .knn import score_predictions

log = logging.getLogger(__name__)

LEVELS = ("uncollapsed", "collapsed")
VARIANTS = ("uncollapsed", "collapsed", "raw+uncollapsed", "raw+collapsed")
OUTPUTS = ("classification", "per_moa", "embedding_metrics", "curves", "map", "predictions")
EVAL_SPLITS = ("validation", "test")
ZERO_SHOT_REASON = ("no validation or test MoA has a training compound (a MoA-disjoint split): a classifier "
                    "cannot predict unseen MoAs; the zero-shot score is the MoA mAP (headline.metric: moa_map)")

# the evaluation jobs' settings: the ``evaluate`` section (morphotx.settings, where its defaults live)
# less the rules' keys (``views`` picks the jobs' inputs, ``collapse`` is the embedding rules'), plus
# ``validation_map``, set by the workflow when headline.metric is moa_map (not a user setting)
DEFAULTS = {**{k: v for k, v in asdict(EvaluateSettings()).items() if k not in ("views", "collapse")},
            "validation_map": False}


@dataclass
class Table:
    """One embedding (or raw-feature) table: metadata rows and the matching matrix."""

    view: str
    level: str
    meta: pd.DataFrame
    X: np.ndarray


def _settings(cfg: dict | None) -> dict:
    cfg = {**DEFAULTS, **(cfg or {})}
    bad = sorted(set(cfg) - set(DEFAULTS))
    if bad:
        raise ValueError(f"evaluate: unknown setting(s) {bad}; known: {sorted(DEFAULTS)}")
    return cfg


def cyclic_pairs(meta: pd.DataFrame) -> np.ndarray:
    """Rows of a Cartesian pair table kept by a cyclic matching: within each treatment, the i-th
    Cell Painting replicate is paired with the (i mod n)-th L1000 replicate (and, when L1000 has
    more replicates, the j-th L1000 one with the (j mod m)-th Cell Painting one). Every replicate
    of both modalities appears, max(m, n) pairs per treatment instead of m × n, so no replicate is
    counted several times in the scores.
    """
    cp_id, l1_id = meta["Metadata_cp_profile_id"].astype(str), meta["Metadata_l1000_profile_id"].astype(str)
    t = meta[S.TREATMENT].astype(str)
    ci = cp_id.groupby(t).rank(method="dense").astype(int) - 1
    li = l1_id.groupby(t).rank(method="dense").astype(int) - 1
    m = ci.groupby(t).transform("max") + 1
    n = li.groupby(t).transform("max") + 1
    return ((li == ci % n) | (ci == li % m)).to_numpy()


def load_embedding(path: str, view: str, level: str, pairs: str = "all") -> Table:
    """An embedding table; ``pairs="cyclic"`` keeps a cyclic matching of a pair table's rows
    (:func:`cyclic_pairs`), ``"all"`` every Cartesian pair.
    """
    df = read_table(path)
    emb = [c for c in df.columns if c.startswith("emb_")]
    if not emb:
        raise ValueError(f"{path}: no emb_* columns; is this an embedding table written by embed_model?")
    if pairs not in ("cyclic", "all"):
        raise ValueError(f"evaluate.uncollapsed_pairs must be cyclic or all, got {pairs!r}")
    if pairs == "cyclic" and "Metadata_cp_profile_id" in df.columns:
        keep = cyclic_pairs(df)
        log.info("%s: %d of %d Cartesian pair rows kept by cyclic matching", path, int(keep.sum()), len(df))
        df = df[keep]
    return Table(view, level, df[S.meta_columns(df)].reset_index(drop=True), df[emb].to_numpy(np.float64))


def _single_moa(meta: pd.DataFrame) -> np.ndarray:
    return (~meta[S.IS_CONTROL].astype(bool) & (meta[S.MOA].map(len) == 1)).to_numpy()


def _label(meta: pd.DataFrame) -> np.ndarray:
    return meta[S.MOA].map(lambda m: m[0] if len(m) == 1 else "").to_numpy().astype(str)


# ---------------------------------------------------------------------------------------------
# raw features: the profiles each embedding row came from
# ---------------------------------------------------------------------------------------------
class RawFeatures:
    """Preprocessed replicate profiles and collapsed profiles of both modalities, looked up by the
    ids an embedding row carries.
    """

    def __init__(self, cp: str, l1000: str, cp_collapsed: str, l1000_collapsed: str):
        # each table is kept as its metadata and its feature matrix in the file's own dtype
        # (float32 for the preprocessed profiles): half the memory of a float64 copy, and a
        # lookup converts only the rows it returns
        self.tables, self._features = {}, {}
        for key, path in (("cp", cp), ("l1000", l1000), ("cp_collapsed", cp_collapsed),
                          ("l1000_collapsed", l1000_collapsed)):
            df = read_table(path)
            self._features[key] = df[S.feature_columns(df)].to_numpy()
            self.tables[key] = df[S.meta_columns(df)]
        self._index = {k: pd.Index(t[S.TREATMENT if k.endswith("collapsed") else S.PROFILE_ID].astype(str))
                       for k, t in self.tables.items()}

    def matrix(self, key: str) -> np.ndarray:
        """The feature matrix (float64) of one table: ``cp``, ``l1000``, ``cp_collapsed`` or ``l1000_collapsed``."""
        return self._features[key].astype(np.float64)

    def lookup(self, key: str, ids) -> np.ndarray:
        """Rows of table ``key``'s feature matrix for the given ids (profile ids, or treatments for
        the collapsed tables), in their order.

        Raises
        ------
        ValueError
            If an id has no row in the table (the embeddings were made from other preprocessed tables).
        """
        idx = self._index[key].get_indexer(pd.Index(np.asarray(ids).astype(str)))
        if (idx < 0).any():
            missing = np.asarray(ids)[idx < 0][:3]
            raise ValueError(f"{int((idx < 0).sum())} embedding row(s) have no {key} profile (e.g. {list(missing)}); "
                             "were the embeddings made from other preprocessed tables? Re-run the workflow.")
        return self._features[key][idx].astype(np.float64)

    def width(self, view: str) -> int:
        """The number of raw feature columns beside a ``view``'s embedding in the ``raw+`` variants."""
        return sum(self._features[m].shape[1] for m in S.modalities(view))

    def blocks(self, t: Table) -> list[np.ndarray]:
        """Raw feature blocks aligned with the rows of ``t`` (one per modality of its view)."""
        out = []
        for m in S.modalities(t.view):
            if t.level == "collapsed":
                out.append(self.lookup(f"{m}_collapsed", t.meta[S.TREATMENT]))
            elif t.view == "both":
                out.append(self.lookup(m, t.meta[f"Metadata_{m}_profile_id"]))
            else:
                out.append(self.lookup(m, t.meta[S.PROFILE_ID]))
        return out

    def paired_meta(self) -> pd.DataFrame:
        """Metadata of the treatments measured in both modalities (collapsed level), in the Cell
        Painting table's order: the rows of early and late fusion.
        """
        cp, l1k = self.tables["cp_collapsed"], self.tables["l1000_collapsed"]
        common = pd.Index(cp[S.TREATMENT].astype(str)).intersection(pd.Index(l1k[S.TREATMENT].astype(str)))
        return cp.set_index(cp[S.TREATMENT].astype(str)).loc[common].reset_index(drop=True)

    def table(self, view: str, level: str) -> Table:
        """The raw-feature baseline table of a modality (``cp`` / ``l1000``) or of early fusion
        (``both``, collapsed only: each block standardised on training rows, L2-normalised).
        """
        if view in ("cp", "l1000"):
            key = view if level == "uncollapsed" else f"{view}_collapsed"
            return Table(view, level, self.tables[key].reset_index(drop=True), self.matrix(key))
        meta = self.paired_meta()
        t = Table("both", "collapsed", meta, np.zeros((len(meta), 0)))
        train = (meta[S.SPLIT] == "train").to_numpy()
        t.X = np.hstack([_scale_block(b, train, copy=False) for b in self.blocks(t)])
        return t


def _scale_block(X: np.ndarray, train: np.ndarray, copy: bool = True) -> np.ndarray:
    """``X`` standardised on its ``train`` rows (all rows when none), then L2-normalised; in place
    with ``copy=False`` (a float64 block of one's own: LINCS-size raw blocks are ~0.5 GB each).
    """
    fit = X[train] if train.any() else X
    return normalize(StandardScaler(copy=copy).fit(fit).transform(X), copy=copy)


def variant_matrix(t: Table, variant: str, raw: RawFeatures) -> np.ndarray:
    """The matrix the classifiers see for one variant of an embedding table.

    Parameters
    ----------
    t : Table
        The embedding table.
    variant : str
        One of :data:`VARIANTS`; ``uncollapsed`` / ``collapsed`` use the embedding alone.
    raw : RawFeatures
        The preprocessed profiles the ``raw+`` variants append.

    Returns
    -------
    numpy.ndarray
        ``t.X`` for the embedding-only variants; for ``raw+`` ones the embedding and the matching raw
        feature blocks (:meth:`RawFeatures.blocks`), each standardised on training rows and
        L2-normalised, side by side (left unscaled when the embedding has NaN/inf, so the classifiers
        record those rows with a reason).
    """
    if not variant.startswith("raw+"):
        return t.X
    train = (t.meta[S.SPLIT] == "train").to_numpy()
    blocks = raw.blocks(t)
    if not np.isfinite(t.X).all():  # left unscaled: the classifiers record the NaN rows with a reason
        return np.hstack([t.X] + blocks)
    return np.hstack([_scale_block(t.X, train)] + [_scale_block(b, train, copy=False) for b in blocks])


# ---------------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------------
def _moa_compounds(meta: pd.DataFrame) -> pd.Series:
    """Number of distinct compounds of each single MoA, all splits."""
    m = meta[_single_moa(meta)]
    return m.assign(_m=_label(m)).groupby("_m")[S.PERT].nunique()


def _zero_shot(meta: pd.DataFrame) -> bool:
    """Whether there are single-MoA test rows but no validation or test MoA is among the training
    MoAs: the classifiers are then ``not_applicable`` (``split.mode: moa_disjoint``).
    """
    use, split, y = _single_moa(meta), meta[S.SPLIT].to_numpy(), _label(meta)
    seen = set(y[use & (split == "train")])
    return bool((use & (split == "test")).any()) and not any(set(y[use & (split == s)]) & seen for s in EVAL_SPLITS)


def classify_table(meta: pd.DataFrame, X: np.ndarray, classifiers, seed: int, cfg: dict,
                   moa_compounds: pd.Series | None = None,
                   predictions: list | None = None) -> tuple[list[dict], list[pd.DataFrame], dict]:
    """Fit every classifier on training rows and score validation and test rows (one fit, two
    scored splits); returns (summary rows with a ``split`` column, per-MoA tables of the test
    split, ``{classifier: {split: (classes, proba)}}`` for late fusion, the curve that chose kNN's
    k — macro-F1 vs k of the validation compounds (``knn_validation_macro_f1``) or, with
    ``knn_k_selection: cv``, of the grouped CV on the training compounds (``knn_cv_macro_f1``) —
    as ``curve, x, value`` rows). ``predictions``, when given, receives one frame per classifier
    and scored split (:func:`prediction_frame`).
    """
    use = _single_moa(meta)
    split = meta[S.SPLIT].to_numpy()
    tr = use & (split == "train")
    masks = {s: use & (split == s) for s in EVAL_SPLITS}
    scored = masks["validation"] | masks["test"]
    y = _label(meta)
    groups = meta[S.PERT].astype(str).to_numpy()
    moa_compounds = _moa_compounds(meta) if moa_compounds is None else moa_compounds
    zero_shot = _zero_shot(meta)
    rows, per, probas, cv = [], [], {}, []
    for name in classifiers:
        base = {"classifier": name, "n_train": int(tr.sum()), "dim": int(X.shape[1])}
        if masks["test"].sum() == 0:
            rows += [{**base, "split": s, "n_scored": int(masks[s].sum()), "status": "failed",
                      "reason": "no single-MoA test rows"} for s in EVAL_SPLITS]
            continue
        if zero_shot:
            rows += [{**base, "split": s, "n_scored": int(masks[s].sum()), "status": "not_applicable",
                      "reason": ZERO_SHOT_REASON} for s in EVAL_SPLITS]
            continue
        val = masks["validation"] if masks["validation"].any() else None
        res = fit_predict(name, X[tr], y[tr], groups[tr], X[scored], seed=seed,
                          k_grid=range(1, cfg["knn_k_max"] + 1), cv_folds=cfg["cv_folds"],
                          low_dim_max=cfg["low_dim_max"], X_val=None if val is None else X[val],
                          y_val=None if val is None else y[val], groups_val=None if val is None else groups[val],
                          copy=False,  # X[tr] and X[scored] are this call's own copies
                          knn_k_selection=cfg["knn_k_selection"], c_grid=cfg["logreg_c"])
        params = {f"param_{k}": v for k, v in res["params"].items() if not isinstance(v, pd.DataFrame)}
        for key in ("cv_curve", "validation_curve"):
            if isinstance(res["params"].get(key), pd.DataFrame):
                c = res["params"][key]
                cv.append(pd.DataFrame({"curve": f"{name}_{key.removesuffix('_curve')}_macro_f1", "x": c.iloc[:, 0],
                                        "value": c["mean_macro_f1"]}))
        probas[name] = {}
        for s in EVAL_SPLITS:
            row = {**base, "split": s, "n_scored": int(masks[s].sum()), "status": res["status"],
                   "reason": res["reason"], **params}
            at = masks[s][scored]
            if masks[s].sum() == 0:
                row.update(status="failed", reason=f"no single-MoA {s} rows")
            elif res["pred"] is not None:
                # kNN's validation rows: predicted with the k chosen on the other half of the
                # validation compounds (an unbiased validation score; see knn_validation)
                crossfit = s == "validation" and res.get("val_pred") is not None
                pred = res["val_pred"] if crossfit else res["pred"][at]
                proba = res["val_proba"] if crossfit else res["proba"][at]
                summary, pm = score_predictions(y[masks[s]], pred, y[tr])
                row.update(summary)
                probas[name][s] = (res["classes"], proba)
                if predictions is not None:
                    predictions.append(prediction_frame(meta[masks[s]], y[masks[s]], pred, name, s))
                if s == "test":
                    per.append(_per_moa_notes(pm, moa_compounds).assign(classifier=name))
            rows.append(row)
    return rows, per, probas, cv


def prediction_frame(meta: pd.DataFrame, y_true, y_pred, classifier: str, split: str) -> pd.DataFrame:
    """The scored rows of one classifier and split: ``classifier, split, compound, moa, predicted``.

    Parameters
    ----------
    meta : pandas.DataFrame
        Metadata of the scored rows (``Metadata_pert_id``), in the order of ``y_true``.
    y_true, y_pred : array-like
        The rows' MoA and the predicted MoA.
    classifier, split : str
        The classifier's name and the scored split (``validation`` or ``test``).

    Returns
    -------
    pandas.DataFrame
        One row per scored row.
    """
    return pd.DataFrame({"classifier": classifier, "split": split,
                         "compound": meta[S.PERT].astype(str).to_numpy(),
                         "moa": np.asarray(y_true).astype(str), "predicted": np.asarray(y_pred).astype(str)})


def _per_moa_notes(pm: pd.DataFrame, moa_compounds: pd.Series) -> pd.DataFrame:
    pm["n_compounds_total"] = pm["moa"].map(moa_compounds).fillna(0).astype(int)
    pm["note"] = np.where(pm["in_training"], "",
                          "no training compound: MoA has " + pm["n_compounds_total"].astype(str)
                          + " compound(s), none in the training split; it cannot be predicted")
    return pm


# ---------------------------------------------------------------------------------------------
# embedding metrics
# ---------------------------------------------------------------------------------------------
def _metric_rows(metrics: dict, status="ok", reason="") -> list[dict]:
    return [{"metric": k, "value": float(v) if v is not None else np.nan, "status": status, "reason": reason}
            for k, v in metrics.items()]


def moaprofiler_table(t: Table, cfg: dict) -> tuple[Table | None, str]:
    """The rows seed 001's metrics are computed on, with its preprocessing where asked:
    ``moaprofiler_dose_uM`` keeps one recoded dose (the paper: 10 µM) and the controls;
    ``moaprofiler_dmso: plate`` standardises every feature to the DMSO rows of the same plate
    (mean 0, SD 1; the paper's "DMSO-standardization"; a plate with fewer than two DMSO rows uses
    all DMSO rows). Returns ``(table, "")`` or ``(None, reason)`` when the table has no DMSO rows
    per plate to standardise against (collapsed tables, pair views).
    """
    meta, X = t.meta, t.X
    ctl = meta[S.IS_CONTROL].astype(bool).to_numpy()
    keep = np.ones(len(meta), bool)
    if cfg["moaprofiler_dose_uM"] is not None:
        dose = pd.to_numeric(meta[S.DOSE_RECODE], errors="coerce").to_numpy(float)
        keep = ctl | np.isclose(dose, float(cfg["moaprofiler_dose_uM"]))
    if cfg["moaprofiler_dmso"] == "plate":
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


def moaprofiler_metrics(t: Table, cfg: dict) -> tuple[list[dict], list[pd.DataFrame]]:
    """Seed 001's (MOAProfiler) metrics of one table.

    Held-out votes compare the single-MoA test compounds with the training rows' MoA MLEs; the
    test-set analyses (enrichment at the PCC percentiles, PCC deltas and the three pair groups, the
    kNN curve, class-latent assignment) use the test rows of MoAs with at least
    ``min_compounds_per_moa`` test compounds.

    Parameters
    ----------
    t : Table
        The rows to score (see :func:`moaprofiler_table`).
    cfg : dict
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
    single = _single_moa(meta)
    y = _label(meta)
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
    keep_moas = set(n_cpd.index[n_cpd >= cfg["min_compounds_per_moa"]])
    sel = te & np.isin(y, list(keep_moas))
    if len(keep_moas) < 2:
        reason = (f"{len(keep_moas)} MoA(s) with ≥{cfg['min_compounds_per_moa']} test compounds; "
                  "the test-set analyses need at least 2")
        rows.append({"metric": "moaprofiler", "value": np.nan, "status": "too_few_classes", "reason": reason})
        return rows, curves
    Xs, ys, cs = X[sel], y[sel], cpd[sel]
    same = cfg["same_compound"]
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
    kc = mp.knn_curve(Xs, ys, cs, k_max=cfg["curve_k_max"], same_compound=same)  # blocked neighbour search
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


def batch_correct(tables: list[Table], cfg: dict) -> dict[tuple[str, str], tuple[Table, dict]]:
    """The tables that retrieval (replicate mAP, percent replicating, MoA mAP) scores.

    Parameters
    ----------
    tables : list of Table
        One evaluation job's tables (at most one per ``(view, level)``).
    cfg : dict
        Evaluation settings; ``batch_correction`` is ``none`` or ``tvn``.

    Returns
    -------
    dict
        ``{(view, level): (table, row)}``. ``none``: the tables as they are, ``row`` empty.
        ``tvn``: each uncollapsed table with two or more DMSO rows and a plate column corrected by
        :func:`morphotx.evaluate.retrieval.typical_variation_normalisation` (batch = plate); the collapsed
        table of such a view replaced by the mean of the corrected treated rows of each treatment
        (seed 004 corrects, then aggregates with the mean; its DMSO row by the mean of the
        corrected DMSO rows); the other tables as they are. ``row`` is the ``batch_correction``
        metric row: ``status`` ``ok`` (value 1) or ``not_applicable`` (value 0) with the reason.
    """
    if cfg["batch_correction"] == "none":
        return {(t.view, t.level): (t, {}) for t in tables}
    if cfg["batch_correction"] != "tvn":
        raise ValueError(f"evaluate.batch_correction must be none or tvn, got {cfg['batch_correction']!r}")
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


def map_metrics(t: Table, cfg: dict, seed: int) -> tuple[list[dict], list[pd.DataFrame]]:
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
    common = dict(null_size=cfg["map_null_size"], threshold=cfg["map_threshold"], seed=seed)
    test = (meta[S.SPLIT] == "test").to_numpy()
    ctl = meta[S.IS_CONTROL].astype(bool).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if t.level == "uncollapsed":
            pr = retrieval.percent_replicating(_with_emb(meta, X)[test].reset_index(drop=True),
                                               null_size=cfg["replicating_null_size"], seed=seed)
            rows += (_metric_rows({k: pr[k] for k in ("percent_replicating", "replicating_threshold")})
                     if np.isfinite(pr["percent_replicating"]) else
                     [{"metric": "percent_replicating", "value": np.nan, "status": "too_few_classes",
                       "reason": f"{pr['n_treatments']} test treatment(s) with two or more replicates"}])
            if not ctl.any():
                rows.append({"metric": "replicate_map", "value": np.nan, "status": "no_controls",
                             "reason": f"the {t.view} view has no DMSO rows (pairs are treatments only)"})
            elif cfg["replicate_negatives"] == "plate" and S.PLATE not in meta:
                rows.append({"metric": "replicate_map", "value": np.nan, "status": "not_applicable",
                             "reason": f"replicate_negatives: plate needs a {S.PLATE} column; the {t.view} view "
                                       "has none (set evaluate.replicate_negatives: all)"})
            else:
                sub = _with_emb(meta, X)[test | ctl]
                try:
                    _, m = retrieval.replicate_map(sub.reset_index(drop=True), **common,
                                                   negatives=cfg["replicate_negatives"])
                except UnpairedException as exc:  # e.g. no treatment has two test replicates
                    return rows + [{"metric": "replicate_map", "value": np.nan, "status": "no_pairs",
                                    "reason": f"copairs: {exc} (no test treatment has two replicates)"}], maps
                maps.append(m.rename(columns={S.TREATMENT: "group"}).assign(kind="replicate"))
                rows += _metric_rows({"replicate_map": m["mean_average_precision"].mean(),
                                      "replicate_fraction_retrieved": m["below_corrected_p"].mean()})
        else:
            splits = (("test", ""), ("validation", "validation_")) if cfg["validation_map"] else (("test", ""),)
            for split, prefix in splits:
                r, m = _moa_map_rows(meta, X, split, prefix, common)
                rows += r
                maps += [m] if m is not None and split == "test" else []  # per-MoA tables: test only
    return rows, maps


def cluster_metrics(t: Table, cfg: dict) -> list[dict]:
    """Seed 003's cluster quality (:func:`morphotx.evaluate.retrieval.cluster_quality`) on test rows.

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
        sel = test & _single_moa(meta)
        sub = pd.DataFrame({"cpd": meta.loc[sel, S.PERT].astype(str).to_numpy(), "moa": _label(meta)[sel]})
        by_cpd = pd.DataFrame(normalize(X[sel])).groupby(sub["cpd"]).mean()
        moa = sub.drop_duplicates("cpd").set_index("cpd")["moa"].loc[by_cpd.index]
        keep = moa.map(moa.value_counts()).to_numpy() >= max(2, int(cfg["min_compounds_per_moa"]))
        Xs, ys = by_cpd.to_numpy()[keep], moa.to_numpy()[keep]
        what = f"MoA(s) with {max(2, int(cfg['min_compounds_per_moa']))} or more single-MoA test compounds"
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
    sel = (meta[S.SPLIT] == split).to_numpy() & _single_moa(meta)
    sub = _with_emb(meta, X)[sel].reset_index(drop=True)
    n_cpd = sub.assign(_m=_label(sub)).groupby("_m")[S.PERT].nunique()
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


# ---------------------------------------------------------------------------------------------
# one model, one seed
# ---------------------------------------------------------------------------------------------
def _frame(rows, **keys) -> pd.DataFrame:
    return pd.DataFrame(rows).assign(**keys) if rows else pd.DataFrame()


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The non-empty ``frames`` concatenated (an empty frame when there are none)."""
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _variant_matrix(i: int, variant: str) -> np.ndarray:
    """Table ``i``'s matrix in ``variant``, kept for the next task of this process: the tasks of
    one (table, variant) follow one another when they run in order, so it is built once, not once
    per classifier (3.7 s for a LINCS-size ``raw+uncollapsed`` table). Read-only for its users.
    """
    cache = _WORK["cache"]
    if (i, variant) not in cache:
        cache.clear()  # one matrix at a time: memory as when each task built its own
        t = _WORK["tables"][i]
        X = variant_matrix(t, variant, _WORK["raw"])
        if X is not t.X:  # a raw+ matrix, shared by the next tasks: an in-place change is an error
            X.flags.writeable = False
        cache[(i, variant)] = X
    return cache[(i, variant)]


def _classify_task(i: int, variant: str, classifier: str) -> dict[str, list]:
    """One ``classifier`` on table ``i`` of the shared work (:data:`_WORK`) in one ``variant``."""
    w = _WORK
    t, cfg, keys = w["tables"][i], w["cfg"], w["keys"][i]
    out = {k: [] for k in OUTPUTS}
    X = _variant_matrix(i, variant)
    preds: list[pd.DataFrame] = []
    rows, per, probas, cv = classify_table(t.meta, X, [classifier], w["seed"], cfg, w["moa_compounds"][i], preds)
    out["predictions"] += [p.assign(**keys, variant=variant) for p in preds]
    if t.level == "collapsed" and t.view in ("cp", "l1000"):  # the modality classifiers late fusion averages
        out["fitted"] = [(i, variant, classifier, probas.get(classifier))]
    out["curves"] += [c.assign(**keys, variant=variant) for c in cv]
    out["classification"].append(_frame(rows, **keys, variant=variant))
    out["per_moa"] += [p.assign(**keys, variant=variant) for p in per]
    log.info("%s fold %d seed %d %s %s %s (validation | test): %s", keys["source"], keys["fold"], keys["seed"], t.view,
             variant, classifier, ", ".join(f"{r.get('macro_f1', float('nan')):.3f}" for r in rows))
    return out


def _variant_map_task(i: int, variant: str) -> dict[str, list]:
    """The MoA mAP of table ``i``'s ``raw+collapsed`` variant (the headline reports the mAP of the
    chosen variant).
    """
    w = _WORK
    t, cfg, keys = w["tables"][i], w["cfg"], w["keys"][i]
    X = _variant_matrix(i, variant)
    vrows, _ = map_metrics(Table(t.view, t.level, t.meta, X), cfg, w["seed"])
    if cfg["batch_correction"] != "none":
        vrows.append({"metric": "batch_correction", "value": 0.0, "status": "not_applicable",
                      "reason": "the raw+collapsed variant is scored as it is (tvn corrects the "
                                "embedding's own rows only)"})
    return {**{k: [] for k in OUTPUTS}, "embedding_metrics": [_frame(vrows, **keys, variant=variant)]}


def _metrics_task(i: int) -> dict[str, list]:
    """MOAProfiler metrics, mAP (batch-corrected table) and cluster quality of table ``i``."""
    w = _WORK
    w["cache"].clear()
    t, cfg, keys = w["tables"][i], w["cfg"], w["keys"][i]
    out = {k: [] for k in OUTPUTS}
    mp_t, why = moaprofiler_table(t, cfg)
    rows, curves = (moaprofiler_metrics(mp_t, cfg) if mp_t is not None else
                    ([{"metric": "moaprofiler", "value": np.nan, "status": "not_applicable", "reason": why}], []))
    ct, bc = w["corrected"][(t.view, t.level)]
    mrows, maps = map_metrics(ct, cfg, w["seed"])
    if bc:
        mrows.append({"metric": "batch_correction", **bc})
    crows = cluster_metrics(t, cfg)
    out["embedding_metrics"].append(_frame(rows + mrows + crows, **keys, variant=t.level))
    out["curves"] += [c.assign(**keys) for c in curves]
    out["map"] += [m.assign(**keys) for m in maps]
    return out


# the tables, raw features and settings of the evaluate_tables call in progress: forked worker
# processes inherit them instead of receiving a pickled copy of gigabytes per task
_WORK: dict = {}

# the columns every table's rows carry (evaluate_tables keeps them last in the classification table)
_KEY_COLUMNS = ("source", "fold", "seed", "view", "level", "variant")
# rough cost of each task per matrix cell, relative to the MLP (one profiled CLIP fold: MLP
# 20.7 CPU-s, logistic regression over four C 11.0, GMM 1.5, kNN 0.8, metrics ~2); they only
# order the tasks (a classifier not named here counts as the MLP)
_TASK_COST = {"mlp": 1.0, "logreg": 0.5, "gmm": 0.1, "knn": 0.1, "variant_map": 0.05, "metrics": 0.5}


def _run_task(task: tuple) -> dict[str, list]:
    """One task of :func:`evaluate_tables`; its wall and CPU seconds go to the log."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = _TASKS[task[0]](*task[1:])
    t = _WORK["tables"][task[1]]
    log.info("task %s %s %s%s: %.1f s, %.1f CPU-s", task[0], t.view, t.level, "".join(f" {a}" for a in task[2:]),
             time.perf_counter() - t0, time.process_time() - c0)
    return out


_TASKS = {"classify": _classify_task, "variant_map": _variant_map_task, "metrics": _metrics_task}


def _worker_init() -> None:
    from ..smk import cap_threads

    cap_threads(1)


def _run_tasks(tasks: list[tuple], threads: int, cost: list[float]) -> list[dict[str, list]]:
    """Each task's result, in the order of ``tasks``: in this process when ``threads`` is 1, else
    in ``threads`` forked worker processes (one BLAS thread each), the costliest tasks first.
    """
    if threads <= 1 or len(tasks) <= 1:
        return [_run_task(t) for t in tasks]
    import multiprocessing

    order = sorted(range(len(tasks)), key=lambda k: -cost[k])
    with multiprocessing.get_context("fork").Pool(min(threads, len(tasks)), initializer=_worker_init) as pool:
        done = dict(zip(order, pool.map(_run_task, [tasks[k] for k in order], chunksize=1)))
    return [done[k] for k in range(len(tasks))]


def evaluate_tables(source: str, seed: int, tables: list[Table], raw: RawFeatures, cfg: dict,
                    recall_pair: tuple[Table, Table] | None = None, fold: int = 0,
                    threads: int = 1, fitted: dict | None = None) -> dict[str, pd.DataFrame]:
    """Every table's classification (validation and test) and test-set embedding metrics;
    ``raw+collapsed`` variants also get their own MoA mAP (the headline reports the mAP of the
    chosen variant). ``fitted``, when given, receives the class probabilities of the collapsed
    ``cp`` and ``l1000`` tables' classifiers, ``{(view, variant): Fitted}``, for late fusion
    (:func:`fuse_probabilities` averages them instead of fitting the same classifiers again).

    The work is one task per (table, variant, classifier), one per ``raw+collapsed`` variant's mAP
    and one per table's metrics. With ``threads`` > 1 they run in as many forked processes, one
    BLAS thread each, costliest first (rows × columns × a rough per-classifier weight): the
    job's wall time is then bounded by its costliest single fit (the MLP of the largest table)
    rather than by all four classifiers of that table in a row. Every task is seeded on its own,
    so the tables are the same for any ``threads`` (tested). Memory grows with ``threads``: each
    process builds its own matrices.
    :func:`evaluate_model` and :func:`evaluate_raw` keep their own process at one BLAS/OpenMP
    thread as well: the same arithmetic for any ``threads``, and no multi-threaded OpenMP pool
    in a process that forks (GNU OpenMP's is not fork-safe).
    """
    global _WORK
    cfg = _settings(cfg)
    tasks, cost = [], []
    for i, t in enumerate(tables):
        for variant in [v for v in cfg["variants"] if v.split("+")[-1] == t.level]:
            size = len(t.meta) * (t.X.shape[1] + (raw.width(t.view) if variant.startswith("raw+") else 0))
            for name in cfg["classifiers"]:
                tasks.append(("classify", i, variant, name))
                cost.append(size * _TASK_COST.get(name, 1.0))
            if variant == "raw+collapsed":
                tasks.append(("variant_map", i, variant))
                cost.append(size * _TASK_COST["variant_map"])
        tasks.append(("metrics", i))
        cost.append(len(t.meta) * t.X.shape[1] * _TASK_COST["metrics"])
    _WORK = {"tables": tables, "raw": raw, "cfg": cfg, "seed": seed, "corrected": batch_correct(tables, cfg), "cache": {},
             "moa_compounds": [_moa_compounds(t.meta) for t in tables],
             "keys": [dict(source=source, fold=fold, seed=seed, view=t.view, level=t.level) for t in tables]}
    try:
        results = _run_tasks(tasks, threads, cost)
    finally:
        _WORK = {}
    out = {k: [f for r in results for f in r[k]] for k in OUTPUTS}
    if fitted is not None:
        for i, variant, name, proba in (f for r in results for f in r.get("fitted", [])):
            got = fitted.setdefault((tables[i].view, variant), Fitted(tables[i].meta, {}))
            if proba is not None:
                got.probas[name] = proba
    if recall_pair is not None:
        rows = recall_metrics(*recall_pair, cfg["recall_k"])
        out["embedding_metrics"].append(_frame(rows, source=source, fold=fold, seed=seed, view="cp+l1000",
                                               level="collapsed", variant="collapsed"))
    frames = {k: pd.concat([f for f in v if len(f)], ignore_index=True) if any(len(f) for f in v) else pd.DataFrame()
              for k, v in out.items()}
    # one frame per classifier: a parameter only a later classifier has (param_C) would land after
    # the key columns; keep the keys last, as in one frame per table and variant
    c = frames["classification"]
    frames["classification"] = c[[k for k in c.columns if k not in _KEY_COLUMNS] +
                                 [k for k in _KEY_COLUMNS if k in c.columns]]
    return frames


@dataclass
class Fitted:
    """The class probabilities of one table's classifiers as :func:`classify_table` returns them
    (``{classifier: {split: (classes, proba)}}``) and the metadata of the rows they were fitted and
    scored on.
    """

    meta: pd.DataFrame
    probas: dict


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two metadata tables list the same treatments in the same order with the same
    compound, split, control flag and MoA labels: :func:`classify_table` then fits the same
    classifiers on both and scores the same rows.
    """
    if len(a) != len(b):
        return False
    same = all(np.array_equal(a[c].astype(str).to_numpy(), b[c].astype(str).to_numpy())
               for c in (S.TREATMENT, S.PERT, S.SPLIT))
    return same and np.array_equal(_single_moa(a), _single_moa(b)) and np.array_equal(_label(a), _label(b))


def fuse_probabilities(meta: pd.DataFrame, X_cp: np.ndarray, X_l1000: np.ndarray, seed: int, cfg: dict,
                       moa_cpds: pd.Series | None = None,
                       fitted: dict[str, Fitted | None] | None = None,
                       predictions: list | None = None) -> tuple[list[dict], list[pd.DataFrame]]:
    """Late fusion of one classifier per modality: each classifier is fitted on the training rows
    of ``X_cp`` and of ``X_l1000`` (rows aligned with ``meta``: treatments measured in both), and
    a validation or test row's MoA is the argmax of the two class-probability tables' mean.

    ``fitted`` (``{"cp": Fitted, "l1000": Fitted}``, from :func:`evaluate_tables`): a modality's
    classifiers already fitted and scored on exactly these rows (:func:`_same_rows`; the same
    matrix is the caller's to guarantee) are not fitted again; their probabilities are averaged.
    Fitting is deterministic, so the fusion is the same either way (tested). Raw late fusion then
    fits nothing of its own; a two-encoder model's fusion fits only its ``l1000`` side when
    ``evaluate.views`` is ``primary`` (its ``l1000`` view is not scored on its own).

    ``predictions``, when given, receives the fused predictions (:func:`prediction_frame`).

    Returns
    -------
    tuple
        The classification rows (one per classifier and split; ``dim`` is the two inputs' width)
        and the test per-MoA tables.
    """
    fitted = fitted or {}
    got = {}
    for m, X in (("cp", X_cp), ("l1000", X_l1000)):
        f = fitted.get(m)
        got[m] = (f.probas if f is not None and _same_rows(f.meta, meta)
                  else classify_table(meta, X, cfg["classifiers"], seed, cfg)[2])
    zero_shot, p_cp, p_l1 = _zero_shot(meta), got["cp"], got["l1000"]
    y = _label(meta)
    use = _single_moa(meta)
    split = meta[S.SPLIT].to_numpy()
    tr = use & (split == "train")
    moa_cpds = _moa_compounds(meta) if moa_cpds is None else moa_cpds
    rows, per = [], []
    for name in cfg["classifiers"]:
        base = {"classifier": name, "n_train": int(tr.sum()), "dim": int(X_cp.shape[1] + X_l1000.shape[1])}
        for s in EVAL_SPLITS:
            row = {**base, "split": s, "n_scored": int((use & (split == s)).sum())}
            a, b = p_cp.get(name, {}).get(s), p_l1.get(name, {}).get(s)
            if a is None or b is None:
                rows.append({**row, "status": "not_applicable", "reason": ZERO_SHOT_REASON} if zero_shot else
                            {**row, "status": "failed", "reason": "a per-modality classifier gave no probabilities"})
                continue
            if list(a[0]) != list(b[0]):
                rows.append({**row, "status": "failed", "reason": "modalities saw different classes"})
                continue
            pred = a[0][np.argmax((a[1] + b[1]) / 2, axis=1)]
            summary, pm = score_predictions(y[use & (split == s)], pred, y[tr])
            if predictions is not None:
                predictions.append(prediction_frame(meta[use & (split == s)], y[use & (split == s)], pred, name, s))
            rows.append({**row, "status": "ok", "reason": "", **summary})
            if s == "test":
                per.append(_per_moa_notes(pm, moa_cpds).assign(classifier=name))
    return rows, per


def late_fusion(raw: RawFeatures, seed: int, cfg: dict, fold: int = 0,
                fitted: dict | None = None, predictions: list | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Average the Cell Painting and L1000 classifiers' class probabilities (collapsed level),
    on the treatments measured in both modalities; validation and test scored alike. ``fitted``:
    :func:`evaluate_tables`'s probabilities of the raw collapsed tables, used where their rows are
    the fusion's (:func:`fuse_probabilities`). ``predictions``, when given, receives the fused
    predictions with their keys.
    """
    cfg = _settings(cfg)
    meta = raw.paired_meta()
    fitted = fitted or {}
    preds: list[pd.DataFrame] = []
    rows, per = fuse_probabilities(meta, raw.lookup("cp_collapsed", meta[S.TREATMENT]),
                                   raw.lookup("l1000_collapsed", meta[S.TREATMENT]), seed, cfg,
                                   fitted={m: fitted.get((m, "collapsed")) for m in ("cp", "l1000")}, predictions=preds)
    keys = dict(source="raw", fold=fold, seed=seed, view="late_fusion", level="collapsed", variant="collapsed")
    if predictions is not None:
        predictions += [p.assign(**keys) for p in preds]
    return _frame(rows, **keys), (pd.concat(per, ignore_index=True).assign(**keys) if per else pd.DataFrame())


def embedding_late_fusion(source: str, cp: Table, l1000: Table, raw: RawFeatures, seed: int, cfg: dict,
                          fold: int = 0, fitted: dict | None = None,
                          predictions: list | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Late fusion of a two-encoder model's collapsed ``cp`` and ``l1000`` embeddings, exactly as
    the raw late-fusion baseline fuses the raw profiles (:func:`fuse_probabilities`, on the same
    treatments: those measured in both modalities), for each collapsed variant in
    ``cfg["variants"]`` (``raw+collapsed``: each modality's embedding beside its own raw profile).
    View ``late_fusion``: the headline compares it with raw late fusion like any configuration of
    the model, chosen on validation compounds. ``fitted``: :func:`evaluate_tables`'s probabilities
    of the model's collapsed ``cp`` and ``l1000`` tables, used where their rows are the fusion's.
    ``predictions``, when given, receives the fused predictions with their keys.
    """
    cfg = _settings(cfg)
    fitted = fitted or {}
    meta = raw.paired_meta()
    ids = meta[S.TREATMENT].astype(str)
    idx = {m: pd.Index(t.meta[S.TREATMENT].astype(str)).get_indexer(ids) for m, t in (("cp", cp), ("l1000", l1000))}
    keep = (idx["cp"] >= 0) & (idx["l1000"] >= 0)
    meta = meta[keep].reset_index(drop=True)
    tables = {m: Table(m, "collapsed", meta, t.X[idx[m][keep]]) for m, t in (("cp", cp), ("l1000", l1000))}
    moa_cpds = _moa_compounds(meta)
    frames, pers = [], []
    for variant in [v for v in cfg["variants"] if v.split("+")[-1] == "collapsed"]:
        X = {m: variant_matrix(t, variant, raw) for m, t in tables.items()}
        preds: list[pd.DataFrame] = []
        rows, per = fuse_probabilities(meta, X["cp"], X["l1000"], seed, cfg, moa_cpds,
                                       fitted={m: fitted.get((m, variant)) for m in ("cp", "l1000")}, predictions=preds)
        keys = dict(source=source, fold=fold, seed=seed, view="late_fusion", level="collapsed", variant=variant)
        if predictions is not None:
            predictions += [p.assign(**keys) for p in preds]
        frames.append(_frame(rows, **keys))
        pers += [p.assign(**keys) for p in per]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(),
            pd.concat(pers, ignore_index=True) if pers else pd.DataFrame())


def _write(frames: dict[str, pd.DataFrame], outputs: dict[str, str]):
    keys = list(OUTPUTS)
    with atomic_outputs(*[outputs[k] for k in keys]) as tmps:
        for k, tmp in zip(keys, tmps):
            write_parquet(frames[k], tmp)


def evaluate_model(source: str, seed: int, inputs: dict[str, str], cp: str, l1000: str, cp_collapsed: str,
                   l1000_collapsed: str, outputs: dict[str, str], cfg: dict | None = None,
                   views: list[str] | None = None, fold: int = 0, threads: int = 1) -> dict[str, pd.DataFrame]:
    """Score one model's embeddings of one fold and seed: classifiers, MOAProfiler metrics, mAP;
    write the tables of :data:`OUTPUTS`.

    Models with a Cell Painting and an L1000 encoder also get cross-modal Recall@k from their
    collapsed ``cp`` and ``l1000`` views, and the late fusion of those two views
    (:func:`embedding_late_fusion`, view ``late_fusion``), the learned counterpart of the raw
    late-fusion baseline.

    Parameters
    ----------
    source : str
        The model's name (the ``source`` column of every table).
    seed : int
        The training seed of the embeddings; also seeds the classifiers.
    inputs : dict of str to str
        Every named input of the job; the embeddings are those named ``emb_<view>_<level>`` (as
        written by the embedding rule), other keys are ignored.
    cp, l1000 : str
        The fold's preprocessed Cell Painting and L1000 profiles (Parquet): the raw-feature
        variants' rows (``raw+uncollapsed``) and the raw baselines.
    cp_collapsed, l1000_collapsed : str
        The fold's treatment-level (collapsed) raw profiles (``pairs/fold<f>/*_collapsed.parquet``).
    outputs : dict of str to str
        The Parquet file of each table in :data:`OUTPUTS` (``classification``, ``per_moa``,
        ``embedding_metrics``, ``curves``, ``map``, ``predictions``), written together.
    cfg : dict, optional
        The ``evaluate`` config section less ``views`` and ``collapse`` (classifiers, variants, k
        selection, metrics ...), plus ``validation_map``; keys left out take
        :class:`morphotx.settings.EvaluateSettings`'s defaults (:data:`DEFAULTS`), unknown keys are
        an error.
    views : list of str, optional
        The views to score (the rule: all the model's views, or with ``evaluate.views: primary``
        its primary view and its Cell Painting view); None: all.
    fold : int, default 0
        The workflow's fold index, recorded in every table's rows (the rule runs every fold, one
        call each).
    threads : int, default 1
        Worker processes for the tables' classifiers and metrics (:func:`evaluate_tables`; the
        rule's ``threads``, config ``threads.evaluate``).

    Returns
    -------
    dict of str to pandas.DataFrame
        The tables as written, by name.
    """
    with threadpool_limits(1):  # one BLAS/OpenMP thread in this process too (see evaluate_tables)
        embeddings = {k.removeprefix("emb_"): v for k, v in inputs.items() if k.startswith("emb_")}
        raw = RawFeatures(cp, l1000, cp_collapsed, l1000_collapsed)
        pairs = _settings(cfg)["uncollapsed_pairs"]
        tables = []
        for key, path in sorted(embeddings.items()):
            view, level = key.rsplit("_", 1)
            if level not in LEVELS:
                raise ValueError(f"embedding key {key!r} is not <view>_<level> with level in {LEVELS}")
            if views is None or view in views:
                tables.append(load_embedding(path, view, level, pairs))
        recall_pair = None
        if "cp_collapsed" in embeddings and "l1000_collapsed" in embeddings:
            recall_pair = (load_embedding(embeddings["cp_collapsed"], "cp", "collapsed"),
                           load_embedding(embeddings["l1000_collapsed"], "l1000", "collapsed"))
        fitted = {}
        frames = evaluate_tables(source, seed, tables, raw, cfg or {}, recall_pair, fold, threads, fitted)
        if recall_pair is not None:
            preds = [frames["predictions"]]
            lf, lf_per = embedding_late_fusion(source, *recall_pair, raw, seed, cfg or {}, fold, fitted, preds)
            frames["classification"] = pd.concat([frames["classification"], lf], ignore_index=True)
            frames["per_moa"] = pd.concat([frames["per_moa"], lf_per], ignore_index=True)
            frames["predictions"] = _concat(preds)
        _write(frames, outputs)
        return frames


def evaluate_raw(seed: int, cp: str, l1000: str, cp_collapsed: str, l1000_collapsed: str, outputs: dict[str, str],
                 cfg: dict | None = None, fold: int = 0, threads: int = 1) -> dict[str, pd.DataFrame]:
    """The raw-feature baselines of one fold, scored exactly like the embeddings (``source = raw``):
    Cell Painting, L1000 (each uncollapsed and collapsed), their early fusion (``both``,
    collapsed) and late fusion.

    Parameters
    ----------
    seed : int
        Seeds the classifiers (the rule's seed wildcard: the same seeds as the models').
    cp, l1000 : str
        The fold's preprocessed Cell Painting and L1000 profiles (Parquet): the raw-feature
        variants' rows (``raw+uncollapsed``) and the raw baselines.
    cp_collapsed, l1000_collapsed : str
        The fold's treatment-level (collapsed) raw profiles (``pairs/fold<f>/*_collapsed.parquet``).
    outputs : dict of str to str
        The Parquet file of each table in :data:`OUTPUTS` (``classification``, ``per_moa``,
        ``embedding_metrics``, ``curves``, ``map``, ``predictions``), written together.
    cfg : dict, optional
        The ``evaluate`` config section less ``views`` and ``collapse`` (classifiers, variants, k
        selection, metrics ...), plus ``validation_map``; keys left out take
        :class:`morphotx.settings.EvaluateSettings`'s defaults (:data:`DEFAULTS`), unknown keys are
        an error. The ``raw+`` variants are left out (these are raw features already).
    fold : int, default 0
        The workflow's fold index, recorded in every table's rows (the rule runs every fold, one
        call each).
    threads : int, default 1
        Worker processes for the tables' classifiers and metrics (:func:`evaluate_tables`; the
        rule's ``threads``, config ``threads.evaluate``).

    Returns
    -------
    dict of str to pandas.DataFrame
        The tables as written, by name.
    """
    with threadpool_limits(1):  # one BLAS/OpenMP thread in this process too (see evaluate_tables)
        cfg = _settings(cfg)
        raw = RawFeatures(cp, l1000, cp_collapsed, l1000_collapsed)
        tables = [raw.table(v, l) for v in ("cp", "l1000") for l in LEVELS] + [raw.table("both", "collapsed")]
        plain = {**cfg, "variants": [v for v in cfg["variants"] if not v.startswith("raw+")]}
        fitted = {}
        frames = evaluate_tables("raw", seed, tables, raw, plain, fold=fold, threads=threads, fitted=fitted)
        preds = [frames["predictions"]]
        lf, lf_per = late_fusion(raw, seed, cfg, fold, fitted, preds)
        frames["classification"] = pd.concat([frames["classification"], lf], ignore_index=True)
        frames["per_moa"] = pd.concat([frames["per_moa"], lf_per], ignore_index=True)
        frames["predictions"] = _concat(preds)
        _write(frames, outputs)
        return frames
