"""Pair the two modalities by treatment (compound + recoded dose; or, where the dataset format
names a ``treatment`` column, the key the files write: CDRP's ``Metadata_Sample_Dose`` /
``pert_sample_dose``, one dose for most compounds).

The assays ran on different plates: there is no shared well, so pairing is by treatment key only.
Three tables, none of which materialises a feature matrix of pairs:

``pairs``      the study's Cartesian pairing as an *index*: one row per (Cell Painting profile,
               L1000 profile) of the same treatment — ``cp_row`` / ``l1000_row`` are row positions
               in the preprocessed Parquet files, ``cp_id`` / ``l1000_id`` their profile ids.
               Models gather features through these positions batch by batch.
``sets``       one row per treatment: its Cell Painting rows and its L1000 rows (lists), for
               set-level models; a treatment seen in one modality only has an empty list on the
               other side (counted in the log).
``collapsed``  median profile per treatment, one file per modality.

DMSO is not paired (``include_controls: false``): its Cartesian product is large and pairs
nothing biological; with ``include_controls: true`` DMSO is paired within plate-free key ``DMSO``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .. import schema as S
from ..io import MorphotxInputError, atomic_outputs, read_table, write_parquet
from ..settings import PairingSettings

log = logging.getLogger(__name__)

TREATMENT_META = [S.TREATMENT, S.PERT, S.DOSE_RECODE, S.SPLIT, S.IS_CONTROL]


def _keyed(df: pd.DataFrame, include_controls: bool) -> pd.DataFrame:
    t = pd.DataFrame({S.TREATMENT: df[S.TREATMENT].astype(str).to_numpy(), "row": np.arange(len(df)),
                      "id": df[S.PROFILE_ID].astype(str).to_numpy()})
    if not include_controls:
        t = t[~df[S.IS_CONTROL].astype(bool).to_numpy()]
    return t


def pair_index(cp: pd.DataFrame, l1k: pd.DataFrame, include_controls: bool = False) -> pd.DataFrame:
    """All (cp_row, l1000_row) pairs sharing a treatment key: an int/str index, no features."""
    a = _keyed(cp, include_controls).rename(columns={"row": "cp_row", "id": "cp_id"})
    b = _keyed(l1k, include_controls).rename(columns={"row": "l1000_row", "id": "l1000_id"})
    pairs = a.merge(b, on=S.TREATMENT, how="inner", sort=True)
    meta = _treatment_meta(cp)
    pairs = pairs.merge(meta[[S.TREATMENT, S.PERT, S.SPLIT]], on=S.TREATMENT, how="left")
    return pairs[[S.TREATMENT, S.PERT, S.SPLIT, "cp_row", "l1000_row", "cp_id", "l1000_id"]].reset_index(drop=True)


def _treatment_meta(df: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in TREATMENT_META if c in df.columns]
    meta = df[cols].drop_duplicates(S.TREATMENT).copy()
    moa = df.drop_duplicates(S.TREATMENT).set_index(S.TREATMENT)[S.MOA]
    meta[S.MOA] = meta[S.TREATMENT].map(moa).to_numpy()
    return meta.reset_index(drop=True)


def set_table(cp: pd.DataFrame, l1k: pd.DataFrame, include_controls: bool = False) -> pd.DataFrame:
    """One row per treatment with its Cell Painting rows and its L1000 rows (the ``sets`` table).

    Parameters
    ----------
    cp, l1k : pandas.DataFrame
        Preprocessed Cell Painting and L1000 replicate tables.
    include_controls : bool
        Whether DMSO rows are kept (as one treatment).

    Returns
    -------
    pandas.DataFrame
        Treatment, compound, recoded dose, MoA, split, ``n_cp`` / ``n_l1000`` and the lists
        ``cp_rows`` / ``l1000_rows`` of row positions in the two tables (an empty list for a
        modality that lacks the treatment).
    """
    a = _keyed(cp, include_controls).groupby(S.TREATMENT)["row"].apply(list).rename("cp_rows")
    b = _keyed(l1k, include_controls).groupby(S.TREATMENT)["row"].apply(list).rename("l1000_rows")
    sets = pd.concat([a, b], axis=1).sort_index()
    for c in ("cp_rows", "l1000_rows"):
        sets[c] = [v if isinstance(v, list) else [] for v in sets[c]]
    sets["n_cp"] = sets["cp_rows"].str.len()
    sets["n_l1000"] = sets["l1000_rows"].str.len()
    sets = sets.reset_index().rename(columns={"index": S.TREATMENT})
    meta = pd.concat([_treatment_meta(cp), _treatment_meta(l1k)]).drop_duplicates(S.TREATMENT)
    sets = sets.merge(meta, on=S.TREATMENT, how="left")
    front = [S.TREATMENT, S.PERT, S.DOSE_RECODE, S.MOA, S.SPLIT, "n_cp", "n_l1000"]
    return sets[front + ["cp_rows", "l1000_rows"]]


def collapse(df: pd.DataFrame, include_controls: bool = True) -> pd.DataFrame:
    """Median profile per treatment (controls collapse to one DMSO profile when included)."""
    feats = S.feature_columns(df)
    keep = np.ones(len(df), bool) if include_controls else ~df[S.IS_CONTROL].astype(bool).to_numpy()
    sub = df.loc[keep]
    med = sub.groupby(S.TREATMENT, sort=True)[feats].median().astype("float32")
    n = sub.groupby(S.TREATMENT, sort=True).size().rename("Metadata_n_replicates")
    meta = _treatment_meta(sub).set_index(S.TREATMENT).loc[med.index]
    out = pd.concat([meta, n], axis=1).reset_index()
    out = out.rename(columns={"index": S.TREATMENT})
    return pd.concat([out, med.reset_index(drop=True)], axis=1)


def pair(cp: str, l1000: str, pairs: str, sets: str, cp_collapsed: str, l1000_collapsed: str,
         pairing: PairingSettings = PairingSettings()) -> None:
    """Pair two preprocessed tables by treatment and write the four pairing tables: the entry
    point of rule ``pair``.

    Parameters
    ----------
    cp, l1000 : str
        Preprocessed Cell Painting and L1000 Parquet files.
    pairs, sets : str
        Outputs: :func:`pair_index` and :func:`set_table`.
    cp_collapsed, l1000_collapsed : str
        Outputs: :func:`collapse` of each modality (controls included).
    pairing : PairingSettings, default PairingSettings()
        The ``pairing`` config section: ``include_controls``, whether DMSO rows are paired.

    Raises
    ------
    MorphotxInputError
        If the two tables share no treatment (compound ids or doses do not match); fewer than half
        of the smaller modality's treatments in both only warns.
    """
    from .collapse_file import collapse_file

    # the index and the sets need metadata only; the collapsed tables are read a block of columns at a time
    cp_df, l1k = (read_table(p, columns=[c for c in pq.ParquetFile(p).schema_arrow.names if c.startswith(S.META_PREFIX)])
                  for p in (cp, l1000))
    include_controls = pairing.include_controls
    index = pair_index(cp_df, l1k, include_controls)
    table = set_table(cp_df, l1k, include_controls)
    only_cp = int(((table.n_cp > 0) & (table.n_l1000 == 0)).sum())
    only_l1k = int(((table.n_cp == 0) & (table.n_l1000 > 0)).sum())
    both = int(((table.n_cp > 0) & (table.n_l1000 > 0)).sum())
    log.info("pairing: %d treatments in both modalities, %d Cell Painting only, %d L1000 only; %d Cartesian "
             "pairs (index only)", both, only_cp, only_l1k, len(index))
    if both == 0:
        ex_cp = table.loc[table.n_cp > 0, S.TREATMENT].head(3).tolist()
        ex_l1 = table.loc[table.n_l1000 > 0, S.TREATMENT].head(3).tolist()
        raise MorphotxInputError(
            f"{cp} and {l1000} share no treatment ({only_cp} Cell Painting-only, {only_l1k} L1000-only; "
            f"e.g. {ex_cp} vs {ex_l1}). A treatment is compound id + recoded dose, or the key column the "
            "dataset format names under `treatment` (CDRP: Metadata_Sample_Dose / pert_sample_dose): check that "
            "both assays use the same compound ids and doses (dataset.format columns, harmonise.doses_uM) or write "
            "the same keys.")
    if both < 0.5 * min(both + only_cp, both + only_l1k):
        log.warning("pairing: only %d treatments are in both modalities (%d Cell Painting only, %d L1000 only); "
                    "check compound ids and doses", both, only_cp, only_l1k)
    with atomic_outputs(pairs, sets, cp_collapsed, l1000_collapsed) as tmps:
        write_parquet(index, tmps[0])
        write_parquet(table, tmps[1])
        write_parquet(collapse_file(cp), tmps[2])
        write_parquet(collapse_file(l1000), tmps[3])
