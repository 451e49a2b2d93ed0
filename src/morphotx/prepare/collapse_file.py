"""Median profile per treatment of a Parquet file, a block of feature columns at a time.

:func:`morphotx.prepare.pairing.collapse` takes the whole table; at CDRP size (~160,000 wells × ~1,700
features) pandas' grouped median holds it several times over (7 GB for the pair step). A median
is computed column by column, and Parquet is read column by column, so :func:`collapse_file` reads
the metadata once and then ``columns_per_pass`` feature columns at a time, each block grouped
exactly as :func:`~morphotx.prepare.pairing.collapse` groups the whole table: the same table, equal value
for value (``tests/test_preprocess_stream.py``), with memory of one block plus the result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .. import schema as S
from ..io import read_table

COLUMNS_PER_PASS = 128


def collapse_file(path: str, include_controls: bool = True, columns_per_pass: int = COLUMNS_PER_PASS) -> pd.DataFrame:
    """:func:`morphotx.prepare.pairing.collapse` of the Parquet file ``path``, read in blocks of columns.

    Parameters
    ----------
    path : str
        Preprocessed profiles (Parquet).
    include_controls : bool, default True
        Whether controls collapse to one DMSO profile (else they are left out).
    columns_per_pass : int, default 128
        Feature columns read and collapsed at a time.

    Returns
    -------
    pandas.DataFrame
        One row per treatment: its metadata, ``Metadata_n_replicates``, then the median of each
        feature (float32), in the order of :func:`~morphotx.prepare.pairing.collapse`.
    """
    from .pairing import _treatment_meta

    names = pq.ParquetFile(path).schema_arrow.names
    meta_cols = [c for c in names if c.startswith(S.META_PREFIX)]
    feats = [c for c in names if not c.startswith(S.META_PREFIX)]
    meta = read_table(path, columns=meta_cols)
    keep = np.ones(len(meta), bool) if include_controls else ~meta[S.IS_CONTROL].astype(bool).to_numpy()
    sub = meta.loc[keep]
    key = sub[[S.TREATMENT]]
    blocks = []
    for i in range(0, len(feats), columns_per_pass):
        cols = feats[i:i + columns_per_pass]
        X = read_table(path, columns=cols).loc[keep]
        blocks.append(pd.concat([key, X], axis=1).groupby(S.TREATMENT, sort=True)[cols].median().astype("float32"))
        del X
    med = pd.concat(blocks, axis=1) if blocks else sub.groupby(S.TREATMENT, sort=True).size().to_frame().iloc[:, :0]
    n = sub.groupby(S.TREATMENT, sort=True).size().rename("Metadata_n_replicates")
    tmeta = _treatment_meta(sub).set_index(S.TREATMENT).loc[med.index]
    out = pd.concat([tmeta, n], axis=1).reset_index()
    out = out.rename(columns={"index": S.TREATMENT})
    return pd.concat([out, med.reset_index(drop=True)], axis=1)
