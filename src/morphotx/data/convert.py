"""Convert one modality's replicate-level input file to typed Parquet, streamed.

Inputs: CSV or TSV (gzip detected from the magic bytes, not the name), Parquet, and for L1000
GCT (1.2/1.3, optionally gzipped) and GCTX (HDF5). Output: one Parquet file with feature
columns as float32 and every other column as string. Harmonisation reads this file, so every
downstream rule is the same whatever the input format was.

Delimited text is never held whole in memory. pyarrow's streaming CSV reader decodes blocks
of ``block_mib`` MiB into record batches. Batches are buffered up to about ``row_group_mib``
MiB and written as one Parquet row group. Peak memory is therefore a few row groups, not the
file (``make bench-convert`` measures it on the LINCS Cell Painting file; docs/benchmarks.md).

Checked before a single row is converted (one error each, naming the file and the fix):

* an empty file, a header that is not UTF-8 (:func:`io.read_header`), duplicated column names
  (:func:`io.check_unique`, after the format's columns: a file of the wrong kind is named as such);
* schema drift: a required column missing or renamed, or no feature column at all (the
  dataset's format file, :func:`formats.check_columns`).

While streaming: a gzip stream cut short and a row with the wrong number of fields. A feature
value that is not a number (``"abc"``) is also an error. ``NA``, ``NaN`` and empty cells are
missing values, and ``inf`` stays ``inf``; harmonise turns it into NaN and logs it. On any error
the temporary file is removed and nothing is written at the output path.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..io import (
    NULLS,
    MorphotxInputError,
    _is_gzip,
    atomic_outputs,
    check_unique,
    parquet_options,
    read_gct,
    read_header,
    text_separator,
)
from .formats import check_columns, load_format

log = logging.getLogger(__name__)



SOURCE_KEY = b"morphotx.source"  # the converted file's schema metadata: the file it was converted from


def with_source(schema: pa.Schema, path: Path) -> pa.Schema:
    """``schema`` with the path of the user's file recorded in its metadata (:func:`converted_from`)."""
    return schema.with_metadata({**(schema.metadata or {}), SOURCE_KEY: str(path).encode()})


def converted_from(path: str | Path) -> Path | None:
    """The user's file that the converted Parquet ``path`` was made from (None for another file):
    harmonise names it in its messages, not the converted file.
    """
    try:
        meta = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError):
        return None
    return Path(meta[SOURCE_KEY].decode()) if SOURCE_KEY in meta else None


def input_kind(path: str | Path) -> str:
    """The reader ``path`` needs, from its name: ``parquet``, ``gctx``, ``gct`` (also ``.gct.gz``) or ``text``."""
    name = Path(path).name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".gctx"):
        return "gctx"
    if name.endswith((".gct", ".gct.gz")):
        return "gct"
    return "text"


def convert(profiles: str | Path, output: str | Path, format_path: str | Path, modality: str,
            block_mib: float = 4, row_group_mib: float = 128) -> dict:
    """Convert ``profiles`` (one modality's file) to typed Parquet at ``output``; return a summary.

    Text files (CSV / TSV, gzipped or not) are streamed in blocks; Parquet, GCT and GCTX are read
    as tables. Feature columns become float32, metadata columns strings.

    Parameters
    ----------
    profiles : str or Path
        The input file: CSV / TSV (``.gz`` or not), Parquet, GCT or GCTX (:func:`input_kind`).
    output : str or Path
        The Parquet file written (atomically); it records ``profiles`` as its source.
    format_path : str or Path
        The data set's format file (``resources/datasets/*.yaml``): the modality's metadata columns
        and how its feature columns are recognised.
    modality : str
        ``cell_painting`` or ``l1000``: the section of ``format_path`` that applies.
    block_mib : float, default 4
        Size of the blocks in which a text file is read (MiB).
    row_group_mib : float, default 128
        Target size of the Parquet row groups written (MiB).

    Returns
    -------
    dict
        ``input``, ``kind``, ``rows``, ``columns``, ``features``, ``seconds``, ``input_MB``,
        ``MB_per_s``.

    Raises
    ------
    MorphotxInputError
        The file is missing or empty, or its columns do not match the format.
    """
    path = Path(profiles)
    if not path.exists():
        raise MorphotxInputError(f"{path}: file not found. Check the path in your config.")
    if path.stat().st_size == 0:
        raise MorphotxInputError(f"{path}: file is empty (0 bytes). Re-create or re-download it.")
    fmt = load_format(format_path, modality)
    kind = input_kind(path)
    t0 = time.perf_counter()
    with atomic_outputs(output) as (tmp,):
        if kind == "text":
            rows, cols, n_feat = _text_to_parquet(path, tmp, fmt, format_path, modality, block_mib, row_group_mib)
        else:
            rows, cols, n_feat = _table_to_parquet(path, tmp, kind, fmt, format_path, modality, row_group_mib)
    sec = time.perf_counter() - t0
    mb = path.stat().st_size / 1e6
    summary = {"input": str(path), "kind": kind, "rows": rows, "columns": cols, "features": n_feat,
               "seconds": round(sec, 2), "input_MB": round(mb, 1), "MB_per_s": round(mb / max(sec, 1e-9), 1)}
    log.info("%s -> %s: %d rows × %d columns (%d features), %.1f MB in %.1f s (%.1f MB/s)", path, output, rows,
             cols, n_feat, mb, sec, summary["MB_per_s"])
    return summary


def _text_to_parquet(path: Path, tmp: Path, fmt: dict, format_path, modality: str, block_mib: int,
                     row_group_mib: int) -> tuple[int, int, int]:
    header = read_header(path, unique=False)
    # the columns the format needs first: a file of the wrong kind is named as such, even when it
    # also repeats a column (an L1000 table of gene symbols with one symbol twice)
    features = check_columns(header, fmt, path, format_path, modality)
    check_unique(header, path)
    feat_set = set(features)
    sep = text_separator(path)
    schema = pa.schema([(c, pa.float32() if c in feat_set else pa.string()) for c in header])
    stream = pa.CompressedInputStream(pa.OSFile(str(path)), "gzip") if _is_gzip(path) else pa.OSFile(str(path))
    rows = 0
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=int(block_mib * (1 << 20)), use_threads=True),
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(column_types=dict(zip(schema.names, schema.types)),
                                                 strings_can_be_null=True, null_values=NULLS),
        )
        with pq.ParquetWriter(tmp, with_source(schema, path), **parquet_options(schema)) as writer:
            buf, buf_bytes = [], 0
            for batch in reader:
                buf.append(batch)
                buf_bytes += batch.nbytes
                rows += batch.num_rows
                if buf_bytes >= row_group_mib * (1 << 20):
                    writer.write_table(pa.Table.from_batches(buf, schema))
                    buf, buf_bytes = [], 0
            if buf:
                writer.write_table(pa.Table.from_batches(buf, schema))
    except (pa.ArrowInvalid, OSError, EOFError) as err:
        raise _stream_error(path, err, rows) from err
    finally:
        stream.close()
    if rows == 0:
        raise MorphotxInputError(f"{path}: the file has a header but no rows. Re-create or re-download it.")
    return rows, len(header), len(features)


def _stream_error(path: Path, err: Exception, rows: int) -> MorphotxInputError:
    msg = str(err)
    low = msg.lower()
    if "truncated" in low or "gzip" in low or "compressed" in low or isinstance(err, EOFError):
        return MorphotxInputError(
            f"{path}: the gzip stream is cut short or corrupt after about {rows} rows ({msg}). The file is incomplete: "
            "download it again (the download rule verifies size and checksum).")
    if "expected" in low and "columns" in low:
        return MorphotxInputError(f"{path}: a row has the wrong number of fields near row {rows} ({msg}); the file is "
                                  "malformed or cut short.")
    if "conversion" in low or "invalid" in low:
        return MorphotxInputError(f"{path}: a value cannot be read as its column's type near row {rows} ({msg}). Feature "
                                  "columns must be numeric; fix the value or the format file's feature prefixes.")
    return MorphotxInputError(f"{path}: cannot convert near row {rows}: {msg}")


def _table_to_parquet(path: Path, tmp: Path, kind: str, fmt: dict, format_path, modality: str,
                      row_group_mib: int) -> tuple[int, int, int]:
    if kind == "parquet":
        return _parquet_to_parquet(path, tmp, fmt, format_path, modality)
    # GCT / GCTX: samples × probes plus the column metadata, as one wide table (cid first)
    data, _, col_meta = read_gctx(path) if kind == "gctx" else read_gct(path)
    meta = col_meta.reset_index().astype("string")
    wide = pa.Table.from_pandas(meta, preserve_index=False)
    header = list(meta.columns) + list(data.columns)
    features = set(check_columns(header, fmt, path, format_path, modality))
    for c in data.columns:
        wide = wide.append_column(pa.field(str(c), pa.float32()), pa.array(data[c].to_numpy("float32")))
    wide = wide.cast(pa.schema([(f.name, pa.float32() if f.name in features else pa.string()) for f in wide.schema]))
    wide = wide.replace_schema_metadata(with_source(wide.schema, path).metadata)
    pq.write_table(wide, tmp, **parquet_options(wide.schema))
    return wide.num_rows, wide.num_columns, len(features)


def _parquet_to_parquet(path: Path, tmp: Path, fmt: dict, format_path, modality: str) -> tuple[int, int, int]:
    """A Parquet input, with the checks a CSV gets: readable, unique column names, rows, numeric features."""
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise MorphotxInputError(f"{path}: not a readable Parquet file ({err}). Re-create it, or give it the "
                                 "extension of its real format (.csv, .tsv, .gct).") from err
    header = pf.schema_arrow.names
    features = set(check_columns(header, fmt, path, format_path, modality))
    check_unique(header, path)
    schema = pa.schema([(c, pa.float32() if c in features else pa.string()) for c in header])
    rows = 0
    with pq.ParquetWriter(tmp, with_source(schema, path), **parquet_options(schema)) as writer:
        for batch in pf.iter_batches(batch_size=4096):
            try:
                table = pa.Table.from_batches([batch]).cast(schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
                raise _cast_error(path, batch, schema, rows) from err
            writer.write_table(table)
            rows += batch.num_rows
    if rows == 0:
        raise MorphotxInputError(f"{path}: the file has columns but no rows. Re-create or re-download it.")
    return rows, len(header), len(features)


def _cast_error(path: Path, batch: pa.RecordBatch, schema: pa.Schema, rows: int) -> MorphotxInputError:
    """Name the first column of ``batch`` that does not cast to its type in ``schema``, with a value."""
    for i, field in enumerate(schema):
        try:
            batch.column(i).cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = [v for v in batch.column(i).to_pylist() if v is not None]
            bad = next((v for v in values if not _is_number(v)), values[0] if values else None)
            return MorphotxInputError(
                f"{path}: column '{field.name}' holds a value that is not a number (e.g. {bad!r}, in rows "
                f"{rows}–{rows + batch.num_rows}); feature columns must be numeric: fix the value or the format "
                "file's feature prefixes.")
    return MorphotxInputError(f"{path}: cannot convert near row {rows}.")


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def read_gctx(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Parse a GCTX file (CMap's HDF5 layout), returning what :func:`read_gct` returns.

    Layout: ``/0/DATA/0/matrix`` is stored samples × probes (HDF5 row = GCT column);
    ``/0/META/COL/id`` and ``/0/META/ROW/id`` hold the sample and probe ids; every other dataset
    under ``/0/META/COL`` and ``/0/META/ROW`` is one metadata field. Read with h5py; the reference
    reader (cmapPy 4.0.1) fails on pandas ≥ 2 (``to_numeric(errors="ignore")``), so it cannot be used.
    """
    import h5py
    import numpy as np

    path = Path(path)

    def text(ds) -> list[str]:
        vals = ds[()]
        return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(vals).ravel()]

    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise MorphotxInputError(f"{path}: not a readable GCTX/HDF5 file ({err}); the file is corrupt or cut short.") from err
    try:
        with fh:
            return _gctx_tables(fh, path, text)
    except (OSError, ValueError, KeyError) as err:  # a cut-short or damaged dataset, read lazily
        if isinstance(err, MorphotxInputError):
            raise
        raise MorphotxInputError(f"{path}: GCTX/HDF5 data cannot be read ({type(err).__name__}: {err}); the file is "
                                 "corrupt or cut short: download or export it again.") from err


def _gctx_tables(fh, path: Path, text) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The data and metadata tables of an open GCTX file (see :func:`read_gctx`)."""
    import numpy as np

    for need in ("0/DATA/0/matrix", "0/META/COL/id", "0/META/ROW/id"):
        if need not in fh:
            raise MorphotxInputError(f"{path}: GCTX has no dataset /{need}; it is not a CMap GCTX file.")
    cids, rids = text(fh["0/META/COL/id"]), text(fh["0/META/ROW/id"])
    matrix = fh["0/DATA/0/matrix"]
    if matrix.shape != (len(cids), len(rids)):
        raise MorphotxInputError(f"{path}: matrix is {matrix.shape} but there are {len(cids)} column ids and "
                                 f"{len(rids)} row ids; the file is malformed.")
    data = pd.DataFrame(np.asarray(matrix[()], dtype="float32"), index=pd.Index(cids, name="cid"), columns=rids)

    def meta(group: str, ids: list[str], name: str) -> pd.DataFrame:
        fields = {k: text(v) if v.dtype.kind in "SOU" else np.asarray(v[()]).ravel()
                  for k, v in fh[f"0/META/{group}"].items() if k != "id"}
        return pd.DataFrame(fields, index=pd.Index(ids, name=name))

    return data, meta("ROW", rids, "rid"), meta("COL", cids, "cid")
