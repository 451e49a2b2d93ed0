"""The exploratory leaderboard: every model, variant, classifier and baseline, mean ± sd over
repetitions (folds × seeds) of the **test** scores.

This table is exploratory: its best row is a maximum over hundreds of noisy test scores, i.e.
selection on the test compounds. The result to quote is the headline
(:mod:`morphotx.report.headline`), whose configurations are chosen on validation compounds.

Rows: ``(source, view, level, variant, classifier)`` where ``source`` is a model name or ``raw``
(the baselines: raw Cell Painting ``cp``, raw L1000 ``l1000``, early fusion ``both``, late
fusion ``late_fusion``). Columns:

* classification metrics (``macro_f1``, ``weighted_f1``, ``accuracy``, ``n_moas_nonzero_f1``) as
  ``<metric>_mean`` / ``<metric>_sd`` over the repetitions (folds × seeds);
* ``status`` — ``ok``, or every non-ok status with its count and first reason, so a failed or
  unconverged classifier or a NaN embedding is visible rather than dropped;
* embedding metrics (MOAProfiler, copairs mAP, held-out votes, Ha 2025's cluster quality) of
  the row's ``(source, view, level)``, on rows whose variant is the plain embedding (``raw+`` variants are classification
  only); cross-modal Recall@k and latent-arithmetic z-scores are per model, on all its rows.

Also writes the concatenated long tables (every repetition) that the figures read.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..io import atomic_outputs, read_tables, write_parquet

log = logging.getLogger(__name__)

KEYS = ["source", "view", "level", "variant", "classifier"]
CLASSIFICATION = ["macro_f1", "weighted_f1", "accuracy", "n_moas_nonzero_f1"]
EMBEDDING = ["enrichment_odds_ratio_p99", "pcc_delta", "pcc_same_compound", "pcc_other_compound_same_moa",
             "pcc_other_compound_other_moa", "knn_best_weighted_f1", "class_latent_f1", "individual_vote_accuracy",
             "aggregated_vote_accuracy", "replicate_map", "replicate_fraction_retrieved", "percent_replicating", "moa_map",
             "moa_fraction_retrieved", "replicate_silhouette", "replicate_ami", "replicate_ari", "moa_silhouette",
             "moa_ami", "moa_ari"]
MODEL_LEVEL = ["recall@1_cp_to_l1000", "recall@1_l1000_to_cp", "recall@5_cp_to_l1000", "recall@5_l1000_to_cp",
               "recall@10_cp_to_l1000", "recall@10_l1000_to_cp"]
MD_COLUMNS = ["macro_f1", "weighted_f1", "accuracy", "n_moas_nonzero_f1", "knn_best_weighted_f1", "moa_map",
              "enrichment_odds_ratio_p99", "recall@1_cp_to_l1000", "lsa_l2_z"]


def _status(g: pd.DataFrame) -> str:
    bad = g[g["status"] != "ok"]
    if bad.empty:
        return "ok"
    parts = []
    for st, b in bad.groupby("status"):
        reason = str(b["reason"].iloc[0])
        parts.append(f"{st} ({len(b)}/{len(g)} repetitions): {reason}" if reason else f"{st} ({len(b)}/{len(g)} repetitions)")
    return "; ".join(parts)


def _mean_sd(df: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    present = [m for m in metrics if m in df.columns]
    if df.empty or not present:
        return pd.DataFrame(columns=keys)
    with np.errstate(all="ignore"):
        g = df.groupby(keys, dropna=False)[present]
        mean, sd = g.mean(), g.std(ddof=1)
    out = pd.concat([mean.add_suffix("_mean"), sd.add_suffix("_sd")], axis=1)
    return out[[f"{m}_{s}" for m in present for s in ("mean", "sd")]].reset_index()


def build(classification: pd.DataFrame, embedding: pd.DataFrame, zscores: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard from the long tables (test rows of ``classification`` only)."""
    cls = classification.copy()
    if "split" in cls.columns:
        cls = cls[cls["split"] == "test"]
    if "fold" not in cls.columns:
        cls["fold"] = 0
    for m in CLASSIFICATION:
        if m not in cls.columns:
            cls[m] = np.nan
    # non-finite metrics of a failed row do not enter the mean; the status column says why
    board = _mean_sd(cls, KEYS, CLASSIFICATION)
    stat = cls.groupby(KEYS, dropna=False).apply(
        lambda g: pd.Series({"status": _status(g), "n_repetitions": len(g[["fold", "seed"]].drop_duplicates()),
                             "n_repetitions_scored": int(g["macro_f1"].notna().sum())}), include_groups=False).reset_index()
    board = board.merge(stat, on=KEYS, how="outer")
    if len(embedding):
        embedding = embedding.copy()
        for col, default in (("fold", 0), ("variant", None)):
            if col not in embedding.columns:
                embedding[col] = default
        embedding["variant"] = embedding["variant"].fillna(embedding["level"])
        ok = embedding[embedding["status"] == "ok"]
        wide = ok.pivot_table(index=["source", "fold", "seed", "view", "level", "variant"], columns="metric",
                              values="value", aggfunc="first").reset_index()
        emb = _mean_sd(wide, ["source", "view", "level", "variant"], EMBEDDING)
        board = board.merge(emb, on=["source", "view", "level", "variant"], how="left")
        per_model = _mean_sd(wide[wide["view"] == "cp+l1000"], ["source"], MODEL_LEVEL)
        board = board.merge(per_model, on="source", how="left")
        notes = embedding[embedding["status"] != "ok"].groupby(["source", "view", "level"]).apply(
            lambda g: "; ".join(sorted({f"{r.metric}: {r.status} ({r.reason})" for r in g.itertuples()})),
            include_groups=False)
        if len(notes):
            board = board.merge(notes.rename("embedding_notes").reset_index(), on=["source", "view", "level"],
                                how="left")
    if len(zscores):
        z = zscores[zscores["method"] == "vae"].groupby(["model", "seed"])[["l2_z", "pearson_z"]].mean().reset_index()
        z = _mean_sd(z.rename(columns={"model": "source", "l2_z": "lsa_l2_z", "pearson_z": "lsa_pearson_z"}),
                     ["source"], ["lsa_l2_z", "lsa_pearson_z"])
        board = board.merge(z, on="source", how="left")
    board = board.sort_values(["macro_f1_mean", "source"], ascending=[False, True], na_position="last")
    return board.reset_index(drop=True)


def _fmt(mean, sd, digits: int = 3) -> str:
    if pd.isna(mean):
        return "—"
    if np.isinf(mean):
        return "inf"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if pd.notna(sd) else f"{mean:.{digits}f}"


def markdown(board: pd.DataFrame, repetitions: int) -> str:
    """The leaderboard as a Markdown page: a note that it is exploratory, a legend and the table.

    Parameters
    ----------
    board : pandas.DataFrame
        The table from :func:`build`.
    repetitions : int
        Number of repetitions (folds × seeds), quoted in the legend.

    Returns
    -------
    str
        The page; each metric of :data:`MD_COLUMNS` that the board has is shown as "mean ± sd"
        ("—" when missing), then the status column.
    """
    cols = [c for c in MD_COLUMNS if f"{c}_mean" in board.columns]
    t = board[KEYS].copy()
    for c in cols:
        digits = 1 if c.startswith("n_") or c.startswith("enrichment") else 3
        t[c] = [_fmt(m, s, digits) for m, s in zip(board[f"{c}_mean"], board[f"{c}_sd"])]
    t["status"] = board["status"]  # last: a reason can be long
    lines = [
        "# morphotx leaderboard",
        "",
        "**Exploratory.** Every configuration's test score: the best row here is a maximum over many noisy "
        "test scores (selection on the test compounds). Quote `headline.md` instead, whose configurations are "
        "chosen on validation compounds.",
        "",
        f"Compound-held-out test compounds; mean ± sd over {repetitions} repetition(s) (folds × seeds). Sorted by macro F1. `source = raw` rows are "
        "the raw-feature baselines (cp, l1000, early fusion `both`, late fusion). Embedding metrics (kNN curve, "
        "mAP, enrichment) are on rows whose variant is the plain embedding. Columns: macro/weighted F1 and accuracy "
        "of the classifier on test compounds; number of MoAs with F1 > 0; best weighted F1 of leave-one-out kNN "
        "over k (MOAProfiler); copairs MoA-retrieval mAP; enrichment odds ratio at the 99th PCC percentile; "
        "cross-modal Recall@1 (Cell Painting → L1000); latent-arithmetic L2 z-score against shuffled labels "
        "(negative = better than random). Full table: leaderboard.parquet.",
        "",
        t.to_markdown(index=False),
        "",
    ]
    return "\n".join(lines)


def leaderboard(inputs: dict[str, list[str]], outputs: dict[str, str], repetitions: int) -> pd.DataFrame:
    """Combine every evaluation and arithmetic job's tables and rank the scores (:func:`build`).

    Parameters
    ----------
    inputs : dict of str to list of str
        ``eval_<table>`` → every evaluation job's file of that table, ``arith_<table>`` → every
        arithmetic job's; other keys are ignored.
    outputs : dict of str to str
        ``leaderboard`` (Parquet), ``markdown``, ``tsv`` and one combined Parquet per table name
        (``<table>``, ``arithmetic_<table>``), all written together.
    repetitions : int
        The number of repetitions, folds × training seeds (the rule's value), quoted in the
        markdown's legend.

    Returns
    -------
    pandas.DataFrame
        The leaderboard, best first.

    Raises
    ------
    ValueError
        ``outputs`` lacks a path for a table.
    """
    evaluation = {k.removeprefix("eval_"): list(v) for k, v in inputs.items() if k.startswith("eval_")}
    arithmetic = {k.removeprefix("arith_"): list(v) for k, v in inputs.items() if k.startswith("arith_")}
    tables = {k: read_tables(v) for k, v in evaluation.items()}
    arith = {f"arithmetic_{k}": read_tables(v) for k, v in arithmetic.items()}
    board = build(tables["classification"], tables["embedding_metrics"], arith.get("arithmetic_zscores", pd.DataFrame()))
    combined = {**tables, **arith}
    keys = ["leaderboard", "markdown", "tsv"] + sorted(combined)
    missing = [k for k in keys if k not in outputs]
    if missing:
        raise ValueError(f"leaderboard: no output path for {missing}")
    with atomic_outputs(*[outputs[k] for k in keys]) as tmps:
        paths = dict(zip(keys, tmps))
        write_parquet(board, paths["leaderboard"])
        with open(paths["markdown"], "w") as fh:
            fh.write(markdown(board, repetitions))
        board.to_csv(paths["tsv"], sep="\t", index=False, float_format="%.4g")
        for k, t in combined.items():
            write_parquet(t, paths[k])
    top = board.iloc[0] if len(board) else None
    if top is not None:
        log.info("leaderboard: %d rows; best macro F1 %.3f ± %.3f (%s, %s, %s, %s)", len(board), top["macro_f1_mean"],
                 top["macro_f1_sd"], top["source"], top["view"], top["variant"], top["classifier"])
    return board


# the wall-clock columns: the only values of a run's Parquet tables that differ between two runs
# of the same config (every other value is identical on CPU; tests/test_workflow.py compares them)
WALL_CLOCK_COLUMNS = ("seconds",)

TRAINING_COLUMNS = ["model", "fold", "seed", "select_on", "best_epoch", "epochs_run", "stopped_early",
                    "early_stop_epoch", "best_validation_score", "best_validation_loss", "n_train_units",
                    "n_validation_units", "device", "seconds"]


def training_summary_frame(params: list[dict]) -> pd.DataFrame:
    """One row per trained model, fold and seed from the ``params.json`` each training job writes:
    the chosen (best-validation) epoch, epochs run, the selection metric and its best value — to
    see at a glance whether a family still peaks at its first epoch.
    """
    rows = [{**{k: p.get(k) for k in TRAINING_COLUMNS}, "model": p.get("model")} for p in params]
    return pd.DataFrame(rows, columns=TRAINING_COLUMNS).sort_values(["model", "fold", "seed"]).reset_index(drop=True)


def training_summary(params_json: list[str], parquet: str, tsv: str) -> pd.DataFrame:
    """Read every ``params.json`` (the fold is taken from the path ``.../fold<f>/seed<s>/``) and
    write the summary (:func:`training_summary_frame`) as Parquet and TSV.

    Parameters
    ----------
    params_json : list of str
        The ``params.json`` of every training job.
    parquet, tsv : str
        The summary files written (together).

    Returns
    -------
    pandas.DataFrame
        One row per model, fold and seed (:data:`TRAINING_COLUMNS`).
    """
    import json
    import re

    params = []
    for path in params_json:
        with open(path) as fh:
            p = json.load(fh)
        m = re.search(r"fold(\d+)", path)
        params.append({**p, "fold": int(m.group(1)) if m else 0})
    table = training_summary_frame(params)
    with atomic_outputs(parquet, tsv) as (a, b):
        write_parquet(table, a)
        table.to_csv(b, sep="\t", index=False, float_format="%.4g")
    first = table[table["best_epoch"] == 1]
    log.info("training: %d runs; best epoch = 1 in %d (%s)", len(table), len(first),
             ", ".join(sorted(set(first["model"]))) or "none")
    return table
