"""Embeddings of a whole preprocessed profile file by a trained model, in bounded memory.

Seed 003's use case at screen size: a model trained on the annotated compounds embeds the Cell
Painting profiles of *every* compound of a screen (annotated or not, with or without L1000), tens
of thousands of compounds and ~160,000 wells in CDRP. :func:`morphotx.embed_profiles` takes a
DataFrame; :func:`embed_file` reads the Parquet file in row batches, encodes each batch with the
same code (:func:`morphotx.models.embed._encode_rows`) and writes it as one Parquet row group, so
memory is the model plus one batch whatever the file's size.

The replicate-level file (``profiles/fold<f>/cp_*_preprocessed.parquet``) gives one embedding per
well; the pairing step's collapsed file (``cp_collapsed.parquet``: each treatment's median profile)
gives one per treatment — the workflow's ``collapse: features`` definition.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .. import schema as S
from ..io import MorphotxInputError, atomic_outputs, parquet_options
from .config import resolve, views
from .embed import _encode_rows, _Shapes
from .train import build_model, read_checkpoint

log = logging.getLogger(__name__)

MODALITY = {"cp": "cp", "l1000": "l1000"}


def _batches(pf: pq.ParquetFile, columns: list[str], batch_rows: int):
    """Record batches of ``columns``, a row group at a time (``iter_batches`` decodes far ahead of
    the batch it yields: +1.4 GB for a 1 GB file).
    """
    for g in range(pf.metadata.num_row_groups):
        yield from pf.read_row_group(g, columns=columns).to_batches(max_chunksize=batch_rows)


def embed_file(checkpoint: str, profiles: str, output: str, view: str = "cp", batch_rows: int = 8192,
               threads: int = 1) -> dict:
    """Embed every row of a preprocessed profile file with one encoder of a trained model.

    Parameters
    ----------
    checkpoint : str
        A ``models/<model>/fold<f>/seed<s>/checkpoint.pt`` written by the workflow.
    profiles : str
        Preprocessed profiles of the view's modality (Parquet; the workflow's preprocessed or
        collapsed files, or profiles processed with the same recipe): every input feature of the
        model must be a column; the ``Metadata_*`` columns are carried over.
    output : str
        The embedding table written (Parquet): the input's ``Metadata_*`` columns, then
        ``emb_000`` … float32; one row group per batch.
    view : {"cp", "l1000"}, default "cp"
        Which encoder (one modality: a file holds one); the model must have it.
    batch_rows : int, default 8192
        Rows read, encoded and written at a time.
    threads : int, default 1
        PyTorch CPU threads.

    Returns
    -------
    dict
        ``rows``, ``dimension``, ``seconds``.
    """
    if view not in MODALITY:
        raise MorphotxInputError(f"embed_file embeds one modality's file: view must be 'cp' or 'l1000', got {view!r}")
    torch.set_num_threads(max(1, int(threads)))
    ck = read_checkpoint(checkpoint)
    hp = resolve(ck["model"], {k: v for k, v in ck["hyperparameters"].items() if v is not None})
    if view not in views(hp):
        raise MorphotxInputError(f"model {ck['model']!r} ({hp.family}) has the views {views(hp)}, not {view!r}")
    model, fam = build_model(ck, hp, float(ck.get("input_clip", 10.0)), _Shapes(ck["features"]))
    feats = list(ck["features"][MODALITY[view]])
    try:
        pf = pq.ParquetFile(profiles)
    except (pa.ArrowInvalid, OSError) as err:
        raise MorphotxInputError(f"{profiles}: not a readable Parquet file ({err})") from err
    names = pf.schema_arrow.names
    missing = [f for f in feats if f not in names]
    if missing:
        raise MorphotxInputError(
            f"{profiles}: {len(missing)} of the model's {len(feats)} input features are missing (e.g. {missing[:5]}); "
            "embed profiles preprocessed like the model's training data (same feature selection)")
    meta = [c for c in names if c.startswith(S.META_PREFIX)]
    t0, rows, dim = time.perf_counter(), 0, None
    with atomic_outputs(output) as (tmp,):
        writer = None
        try:
            for batch in _batches(pf, meta + feats, batch_rows):
                X = np.empty((batch.num_rows, len(feats)), dtype=np.float32)
                for j, f in enumerate(feats):
                    X[:, j] = batch.column(f).to_numpy(zero_copy_only=False)
                bad = ~np.isfinite(X).all(axis=1)
                if bad.any():
                    raise MorphotxInputError(f"{profiles}: {int(bad.sum())} row(s) with NaN/inf features (first row "
                                             f"{rows + int(np.flatnonzero(bad)[0])}); preprocess the profiles first")
                Z = _encode_rows(fam, model, view, {MODALITY[view]: X}, torch.device("cpu"))
                dim = Z.shape[1]
                cols = [batch.column(c) for c in meta] + [pa.array(Z[:, j].astype(np.float32)) for j in range(dim)]
                fields = [batch.schema.field(c) for c in meta] + [pa.field(f"emb_{j:03d}", pa.float32())
                                                                  for j in range(dim)]
                table = pa.Table.from_arrays(cols, schema=pa.schema(fields))
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, **parquet_options(table.schema))
                writer.write_table(table)
                rows += batch.num_rows
            if writer is None:
                raise MorphotxInputError(f"{profiles}: no rows to embed")
        finally:
            if writer is not None:
                writer.close()
    out = {"rows": rows, "dimension": dim, "seconds": time.perf_counter() - t0}
    log.info("%s: %d rows embedded by %s (view %s, dimension %d) in %.1f s -> %s", profiles, rows, ck["model"], view,
             dim, out["seconds"], output)
    return out
