"""The headline's entries and the configuration each chooses, per split, on validation compounds.

An entry (:class:`Entry`, :func:`entries`) is one row of the headline: a raw baseline, a model, a
model's Cell Painting view, or per input the learned configuration chosen on validation. In every
split each entry chooses the configuration ``(source, view, level, variant, classifier)`` with the
best validation metric of that split alone (:func:`select`); the split's test compounds decide
nothing. The Cell Painting recipe of each split is a choice of the same kind
(:func:`recipe_choices`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

CONFIG = ["view", "level", "variant", "classifier"]
RAW_VIEWS = {"cp": "raw Cell Painting", "l1000": "raw L1000", "both": "raw early fusion",
             "late_fusion": "raw late fusion"}
INPUT_LABELS = {"both": "Cell Painting + L1000", "cp": "Cell Painting only", "l1000": "L1000 only"}
RETRIEVAL = "retrieval"  # the classifier slot of a configuration scored by MoA mAP
RECIPE_ENTRY = "Cell Painting recipe"
PROTOCOLS = {
    "compound": "held-out compounds",
    "moa_disjoint": "held-out compounds of held-out MoAs (zero-shot)",
    "well_holdout": "held-out wells of training compounds (Wong 2023's well holdout): NOT an unseen-compound test",
}


@dataclass(frozen=True)
class Entry:
    """One row of the headline: a display ``name``, its ``kind`` (``baseline``, ``model``,
    ``cp_only``, or ``chosen``: the entry chosen on validation among several), the ``sources`` and
    ``views`` whose configurations it may choose among (``None``: all views), and its ``input``
    (``both``, ``cp`` or ``l1000``: the assays it may use, which fixes its raw baseline).
    """

    name: str
    kind: str
    sources: tuple[str, ...]
    views: tuple[str, ...] | None
    input: str

    @property
    def source(self) -> str:
        """The single source, or ``"chosen"`` for an entry that chooses among several."""
        return self.sources[0] if len(self.sources) == 1 else "chosen"


MODALITIES = {"cp": {"cp"}, "l1000": {"l1000"}, "both": {"cp", "l1000"}, "late_fusion": {"cp", "l1000"}}
RAW_CHOSEN = "raw, chosen on validation"
BASELINE_OF_INPUT = {"cp": RAW_VIEWS["cp"], "l1000": RAW_VIEWS["l1000"], "both": RAW_CHOSEN}


def input_of_views(views) -> str:
    """``both`` when the views use both assays (together or apart), else the one assay they use."""
    mods = set().union(*[MODALITIES.get(v, {v}) for v in views]) if len(views) else set()
    return "both" if {"cp", "l1000"} <= mods else (next(iter(mods)) if len(mods) == 1 else "both")


def chosen_name(inp: str) -> str:
    """The display name of the learned entry chosen on validation for input ``inp``."""
    return f"learned, chosen on validation ({INPUT_LABELS.get(inp, inp)})"


def entries(classification: pd.DataFrame) -> list[Entry]:
    """The headline's entries, from the sources and views present in ``classification``.

    Parameters
    ----------
    classification : pandas.DataFrame
        The concatenated classification tables (columns ``source`` and ``view`` at least).

    Returns
    -------
    list of Entry
        Raw baselines (one per raw view, then ``raw, chosen on validation`` among every raw view:
        the baseline of the two-assay entries), then per model (sorted by name) the model entry
        (all of its views; input ``both`` when they use both assays) and, for a model with cp and
        other views, its Cell-Painting-only entry; last, per input, the learned entry chosen on
        validation among every learned configuration of that input (the primary comparison).
    """
    if classification.empty:
        return []
    views = classification.groupby("source")["view"].agg(lambda v: sorted(set(v)))
    raw = views.get("raw", [])
    out = [Entry(RAW_VIEWS.get(v, f"raw {v}"), "baseline", ("raw",), (v,), input_of_views([v]))
           for v in [*[v for v in RAW_VIEWS if v in raw], *[v for v in raw if v not in RAW_VIEWS]]]
    if len(raw) > 1:
        out.append(Entry(RAW_CHOSEN, "baseline", ("raw",), None, input_of_views(raw)))
    learned: dict[str, list[tuple[str, tuple | None]]] = {}
    for source in sorted(s for s in views.index if s != "raw"):
        inp = input_of_views(views[source])
        out.append(Entry(str(source), "model", (str(source),), None, inp))
        learned.setdefault(inp, []).append(str(source))
        if "cp" in views[source] and len(views[source]) > 1:
            out.append(Entry(f"{source} (Cell Painting only)", "cp_only", (str(source),), ("cp",), "cp"))
            learned.setdefault("cp", []).append(str(source))
    for inp in [i for i in INPUT_LABELS if i in learned]:
        out.append(Entry(chosen_name(inp), "chosen", tuple(learned[inp]), ("cp",) if inp == "cp" else None, inp))
    return out


def retrieval_rows(classification: pd.DataFrame, embedding: pd.DataFrame) -> pd.DataFrame:
    """The selection rows of ``metric="moa_map"``: one per (source, fold, seed, view, level,
    variant) and split, from the ``validation_moa_map`` (``split`` validation) and ``moa_map``
    (test) embedding metrics, classifier ``retrieval``; ``n_train`` / ``n_scored`` (for the
    corrected t) from the classification rows of the same source, repetition, view, level and split.

    Parameters
    ----------
    classification : pandas.DataFrame
        The concatenated classification tables.
    embedding : pandas.DataFrame
        The concatenated ``embedding_metrics`` tables.

    Returns
    -------
    pandas.DataFrame
        Rows shaped like classification rows, with a ``moa_map`` column (NaN where not ``ok``).
    """
    keys = ["source", "fold", "seed", "view", "level"]
    if embedding.empty or "variant" not in embedding.columns:
        return pd.DataFrame(columns=keys + ["variant", "classifier", "split", "moa_map", "status", "reason"])
    e = embedding[embedding["metric"].isin(["moa_map", "validation_moa_map"]) & embedding["variant"].notna()]
    out = e.assign(split=np.where(e["metric"] == "moa_map", "test", "validation"), classifier=RETRIEVAL,
                   moa_map=e["value"].where(e["status"] == "ok"))
    if {"n_train", "n_scored"} <= set(classification.columns):
        sizes = classification.groupby(keys + ["split"])[["n_train", "n_scored"]].max().reset_index()
        out = out.merge(sizes, on=keys + ["split"], how="left")
    return out.drop(columns=["metric", "value"]).reset_index(drop=True)


def entry_rows(classification: pd.DataFrame, entry: Entry) -> pd.DataFrame:
    """The rows of ``classification`` whose source and view the entry may choose among."""
    rows = classification[classification["source"].isin(entry.sources)]
    return rows if entry.views is None else rows[rows["view"].isin(entry.views)]


def configuration_string(config, with_source: bool = False) -> str:
    """The readable name of a configuration.

    Parameters
    ----------
    config : mapping
        A dict or row with the ``view``, ``level``, ``variant`` and ``classifier`` keys (and
        ``source`` when ``with_source``).
    with_source : bool
        Prefix the source (for an entry that chooses among several sources).

    Returns
    -------
    str
        ``"view · level · variant · classifier"`` (``"source: …"`` with the source).
    """
    s = " · ".join(str(config[k]) for k in CONFIG)
    return f"{config['source']}: {s}" if with_source else s


def validation_scores(rows: pd.DataFrame, metric: str = "macro_f1", with_source: bool = False) -> pd.DataFrame:
    """Every configuration's validation score in every split, from ``split == "validation"`` rows only.

    Parameters
    ----------
    rows : pandas.DataFrame
        Classification rows of one entry (test rows may be present; they are not read).
    metric : str
        The selection metric.
    with_source : bool
        Name configurations with their source (:func:`configuration_string`).

    Returns
    -------
    pandas.DataFrame
        One row per (fold, configuration) with a finite score: ``fold``, ``source``, ``CONFIG``,
        ``configuration``, ``score`` (the mean over the fold's training seeds with a finite
        value); sorted per fold best first: highest score, then configuration string.
    """
    val = rows[rows["split"] == "validation"]
    cols = ["fold", "source", *CONFIG, "configuration", "score"]
    if val.empty:
        return pd.DataFrame(columns=cols)
    per = val.groupby(["fold", "source", *CONFIG])[metric].mean().dropna().rename("score").reset_index()
    per["configuration"] = [configuration_string(r, with_source) for r in per.to_dict("records")]
    per = per.sort_values(["fold", "score", "configuration"], ascending=[True, False, True])
    return per[cols].reset_index(drop=True)


def select(rows: pd.DataFrame, metric: str = "macro_f1", with_source: bool = False) -> pd.DataFrame:
    """The configuration chosen in every split, each from that split's validation rows only.

    Parameters
    ----------
    rows, metric, with_source
        As in :func:`validation_scores`.

    Returns
    -------
    pandas.DataFrame
        One row per fold with a finite validation score: the first row of that fold in
        :func:`validation_scores`. A fold's choice reads only the validation rows of that fold, so
        no other fold's compounds (whose test compounds may be this fold's validation compounds)
        take part in it.
    """
    return validation_scores(rows, metric, with_source).groupby("fold", sort=True).head(1).reset_index(drop=True)


def choice_counts(choices: pd.DataFrame) -> str:
    """The configurations chosen over the splits with their counts, most frequent first."""
    if choices.empty:
        return ""
    n = choices["configuration"].value_counts()
    n = n.sort_index().sort_values(ascending=False, kind="stable")
    return "; ".join(f"{c} ({k}/{len(choices)})" for c, k in n.items())


def recipe_choices(paths: list[str]) -> pd.DataFrame:
    """Every split's Cell Painting recipe choice (:mod:`morphotx.prepare.recipe_choice`) as rows of the
    choices table: ``entry`` "Cell Painting recipe", ``fold`` (from the ``fold<f>`` directory of
    the path, else the position), ``configuration`` the recipe, ``score`` its validation macro-F1.
    """
    rows = []
    for i, path in enumerate(paths):
        t = pd.read_csv(path, sep="\t")
        m = re.search(r"fold(\d+)", str(path))
        chosen = t[t["chosen"].astype(bool)].iloc[0]
        rows.append({"entry": RECIPE_ENTRY, "fold": int(m.group(1)) if m else i, "configuration": chosen["recipe"],
                     "score": chosen["validation_macro_f1"]})
    return pd.DataFrame(rows)

