"""Reading and writing tables: CSV(.gz)/TSV/Parquet/XLSX/GCT in, Parquet out, always atomically.

Every writer in morphotx goes through :func:`atomic_outputs`, so a failed step never leaves a
half-written file at an output path: files are written next to their destination under a
temporary name and renamed only once every output of the step is complete.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

# text read as a missing value, in every reader (CSV, TSV, GCT)
NULLS = ["", "NA", "NaN", "nan", "null", "None"]


class MorphotxInputError(ValueError):
    """Bad input: the message names the file, the column or key, and the fix."""


# ---------------------------------------------------------------------------------------------
# atomic output
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_outputs(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Yield temporary paths for ``paths``; rename them into place only if the block succeeds.

    >>> with atomic_outputs("a.parquet", "b.json") as (tmp_a, tmp_b):
    ...     write(tmp_a); write(tmp_b)
    """
    finals = [Path(p) for p in paths]
    tmps = []
    for final in finals:
        final.parent.mkdir(parents=True, exist_ok=True)
        # keep the suffix so writers that infer a format from it still work
        tmps.append(final.with_name(f".{final.name}.tmp{os.getpid()}{''.join(final.suffixes)}"))
    try:
        yield tmps
        for tmp, final in zip(tmps, finals):
            if not tmp.exists():
                raise RuntimeError(f"internal error: step did not write {final}")
        for tmp, final in zip(tmps, finals):
            os.replace(tmp, final)
    finally:
        for tmp in tmps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


@contextlib.contextmanager
def atomic_directory(outdir: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary directory beside ``outdir`` (``.<name>.tmp<pid>``, created with the
    process's umask like any other output); it replaces ``outdir`` only if the block succeeds.
    Temporary directories that an interrupted earlier run (``kill -9``) left for the same output
    are removed first: only one job at a time writes an output.
    """
    import shutil

    outdir = Path(outdir).absolute()
    for stale in outdir.parent.glob(f".{outdir.name}.tmp*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = outdir.with_name(f".{outdir.name}.tmp{os.getpid()}")
    tmp.mkdir(parents=True)
    try:
        yield str(tmp)
        if outdir.exists():
            shutil.rmtree(outdir)
        os.replace(tmp, outdir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# the temporary names of atomic_outputs (.<name>.tmp<pid><suffixes>) and atomic_directory (.<name>.tmp<pid>)
TEMPORARY = re.compile(r"^\..+\.tmp\d+(\.[^/]*)?$")


def sweep_temporaries(root: str | os.PathLike) -> list[Path]:
    """Remove what killed jobs left under ``root``: the temporary files and folders of
    :func:`atomic_outputs` and :func:`atomic_directory` (a ``kill -9`` runs no clean-up). Call it only
    when no job writes under ``root``: the workflow calls it when it starts, under Snakemake's lock,
    before any job runs. Download parts (``.<name>.part``) are kept: the download resumes them.
    Returns the removed paths.

    Parameters
    ----------
    root : str or os.PathLike
        The run's results directory (``results/<name>``); nothing outside it is touched.
    """
    import shutil

    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.rglob(".*.tmp*") if TEMPORARY.match(p.name)]
    removed = []
    for p in sorted(found, key=lambda p: len(p.parts)):  # a folder before what it holds
        if any(q in removed for q in p.parents):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest of a file (``algorithm``: any of :mod:`hashlib`'s, e.g. md5, sha256)."""
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


ROW_GROUP_ROWS = 16384  # rows per Parquet row group: a batched reader holds one group (~110 MB at 1,783 features)


def write_parquet(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a DataFrame (index dropped) to Parquet, in row groups of :data:`ROW_GROUP_ROWS` rows.
    Use inside :func:`atomic_outputs`.
    """
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS, **parquet_options(table.schema))


def parquet_options(schema: pa.Schema) -> dict:
    """Writer options of every Parquet file morphotx writes: zstd, and dictionary encoding only for
    the non-float columns. On ~1,500 float feature columns pyarrow builds a dictionary per column
    and then gives up on it: most of the write time, and a larger file (docs/benchmarks.md). The
    values written are the same either way.
    """
    return {"compression": "zstd", "use_dictionary": [f.name for f in schema if not pa.types.is_floating(f.type)]}


def write_json(obj, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented JSON with sorted keys (NumPy scalars and arrays as numbers and lists).

    Use inside :func:`atomic_outputs`.
    """
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=_json_default)
        fh.write("\n")


def _json_default(o):
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def save_parquet(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Atomically write one Parquet file."""
    with atomic_outputs(path) as (tmp,):
        write_parquet(df, tmp)


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def read_header(path: str | os.PathLike, sep: str | None = None, unique: bool = True) -> list[str]:
    """Column names of a delimited text file (gzip detected from the bytes).

    Raises :class:`MorphotxInputError` on an empty file, a non-UTF-8 header or (``unique``)
    duplicated column names (pandas would silently rename them ``x.1``; see :func:`check_unique`).
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise MorphotxInputError(f"{path}: file is empty (0 bytes). Re-create or re-download it.")
    opener = gzip.open if _is_gzip(path) else open
    try:
        with opener(path, "rb") as fh:
            line = fh.readline()
    except (EOFError, gzip.BadGzipFile, OSError) as err:
        raise MorphotxInputError(f"{path}: cannot read the header ({err}); the file is corrupt or cut short.") from err
    if line.startswith(b"PK\x03\x04"):  # a zip container: XLSX (or another Office file)
        raise MorphotxInputError(workbook_message(path))
    if line.startswith(b"PAR1"):
        raise MorphotxInputError(f"{path}: this is a Parquet file, not delimited text; give it the .parquet extension.")
    try:
        text = line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise MorphotxInputError(
            f"{path}: the header is not valid UTF-8 (byte {err.start}); re-encode the file as UTF-8."
        ) from err
    if sep is None:
        sep = "\t" if text.count("\t") > text.count(",") else ","
    cols = [c.strip().strip('"') for c in text.split(sep)]
    if unique:
        check_unique(cols, path)
    return cols


def check_unique(cols: Sequence[str], path) -> None:
    """An error naming the column names that occur more than once in ``cols`` (the header of ``path``)."""
    seen, dups = set(), []
    for c in cols:
        if c in seen:
            dups.append(c)
        seen.add(c)
    if dups:
        raise MorphotxInputError(
            f"{path}: duplicated column name(s) {sorted(set(dups))[:10]}; each column must be unique "
            "(remove or rename the duplicates)."
        )


def require_columns(table: pd.DataFrame, columns: Sequence[str], path, what: str, keys: str) -> None:
    """Stop on the first of ``columns`` that ``table`` (read from ``path``, a ``what`` such as "MoA
    map") lacks, with the columns it has and the config ``keys`` that name them.
    """
    for col in columns:
        if col not in table.columns:
            raise MorphotxInputError(f"{path}: {what} has no column '{col}' (has {list(table.columns)[:12]}); "
                                     f"set {keys} in the config.")


def workbook_message(path) -> str:
    """The error for an Excel workbook given where delimited text (or a profile file) is read."""
    if str(path).lower().endswith((".xlsx", ".xls")):
        return (f"{path}: this is an Excel workbook; profile files are read as CSV, TSV, Parquet, GCT or GCTX, "
                "not Excel. Export the sheet as CSV (or Parquet) and name that file in the config.")
    return (f"{path}: this is a zip file (an Excel .xlsx workbook?), not delimited text; export the sheet as CSV "
            "and name that file in the config.")


def read_table(
    path: str | os.PathLike,
    feature_columns: Sequence[str] | None = None,
    string_columns: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read CSV(.gz)/TSV(.gz)/Parquet/XLSX into pandas with explicit types.

    ``feature_columns`` are read as float32 and ``string_columns`` as strings; other columns keep
    the reader's inference. Delimited text is parsed with pyarrow (multi-threaded, typed).
    """
    path = Path(path)
    if not path.exists():
        raise MorphotxInputError(f"{path}: file not found. Check the path in your config.")
    name = path.name.lower()
    if name.endswith(".parquet"):
        if path.stat().st_size == 0:
            raise MorphotxInputError(f"{path}: file is empty (0 bytes). Re-create or re-download it.")
        try:
            df = pq.read_table(path, columns=list(columns) if columns else None).to_pandas()
        except (pa.ArrowInvalid, OSError) as err:
            raise MorphotxInputError(f"{path}: not a readable Parquet file ({err}). Re-create it, or give it the "
                                     "extension of its real format (.csv, .tsv, .gct).") from err
        if feature_columns:
            df[list(feature_columns)] = df[list(feature_columns)].astype("float32")
        return df
    if name.endswith((".xlsx", ".xls")):
        import zipfile

        try:
            return pd.read_excel(path)
        except (zipfile.BadZipFile, ValueError, KeyError, OSError) as err:
            raise MorphotxInputError(f"{path}: not an Excel workbook ({type(err).__name__}: {err}). If it is CSV or TSV "
                                     "text, rename it to .csv / .tsv.") from err
    read_header(path)  # empty file, non-UTF-8 header, duplicated names -> one clear error
    sep = text_separator(path)
    types: dict[str, pa.DataType] = {}
    for c in feature_columns or []:
        types[c] = pa.float32()
    for c in string_columns or []:
        types[c] = pa.string()
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=True, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=list(columns) if columns else None,
                strings_can_be_null=True,
                null_values=NULLS,
            ),
        )
    except (pa.ArrowInvalid, EOFError, OSError) as err:
        msg = str(err)
        if "gzip" in msg.lower() or isinstance(err, EOFError) or "truncated" in msg.lower():
            raise MorphotxInputError(f"{path}: compressed stream is corrupt or cut short ({msg}).") from err
        raise MorphotxInputError(f"{path}: cannot parse as a delimited table: {msg}") from err
    return table.to_pandas()


def read_tables(paths: list[str]) -> pd.DataFrame:
    """The non-empty tables at ``paths`` concatenated (an empty frame when all are empty)."""
    frames = [f for f in (read_table(p) for p in paths) if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def text_separator(path: Path) -> str:
    """Tab when the first line has more tabs than commas, else comma."""
    first = open_text_head(path).split("\n", 1)[0]
    return "\t" if first.count("\t") > first.count(",") else ","


def open_text_head(path: Path, n: int = 4096) -> str:
    """The first ``n`` bytes of a text file (gzipped or not), decoded as UTF-8 (bad bytes replaced)."""
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rb") as fh:
        return fh.read(n).decode("utf-8", errors="replace")


def read_gct(path: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Parse a GCT 1.2 or 1.3 file (optionally gzipped).

    Returns ``(data, row_meta, col_meta)``: ``data`` is samples × probes (float32, index = column
    ids of the file, columns = row ids), ``row_meta`` is indexed by probe id, ``col_meta`` by
    sample id. Hand-written because the reference reader (cmapPy) has not been released since
    2019 and pins old pandas; the format is three header lines and a block layout.
    """
    path = Path(path)
    if not path.exists():
        raise MorphotxInputError(f"{path}: file not found. Check the path in your config.")
    try:
        return _read_gct(path)
    except (EOFError, OSError, UnicodeDecodeError, zlib.error, pd.errors.ParserError) as err:
        what = ("the gzip stream is cut short or corrupt" if isinstance(err, (EOFError, gzip.BadGzipFile, zlib.error))
                else "it is not valid UTF-8 text" if isinstance(err, UnicodeDecodeError)
                else "it cannot be parsed as a GCT file")
        raise MorphotxInputError(f"{path}: {what} ({type(err).__name__}: {err}). The file is incomplete or not a "
                                 "GCT: download or export it again.") from err


def _read_gct(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rt", encoding="utf-8") as fh:
        version = fh.readline().strip()
        dims = fh.readline().rstrip("\n").split("\t")
    if version not in ("#1.2", "#1.3"):
        raise MorphotxInputError(f"{path}: first line is {version!r}; expected '#1.2' or '#1.3' (GCT format).")
    want = 4 if version == "#1.3" else 2
    try:
        counts = [int(x) for x in dims[:want]]
        if len(counts) < want or min(counts) < 0:
            raise ValueError
    except ValueError:
        raise MorphotxInputError(
            f"{path}: second line is {chr(9).join(dims)!r}; a GCT {version[1:]} needs {want} tab-separated counts "
            "(rows, columns" + (", row-metadata fields, column-metadata fields" if want == 4 else "") + ").") from None
    n_rows, n_cols = counts[0], counts[1]
    n_rmeta = counts[2] if version == "#1.3" else 1
    n_cmeta = counts[3] if version == "#1.3" else 0
    raw = pd.read_csv(path, sep="\t", skiprows=2, header=0, dtype=str, keep_default_na=False)
    if version == "#1.2":
        raw = raw.rename(columns={raw.columns[0]: "id", raw.columns[1]: "Description"})
    id_col = raw.columns[0]
    meta_cols = list(raw.columns[1 : 1 + n_rmeta]) if version == "#1.3" else ["Description"]
    sample_ids = list(raw.columns[1 + len(meta_cols) :])
    if len(sample_ids) != n_cols or len(raw) != n_rows + n_cmeta:
        raise MorphotxInputError(
            f"{path}: GCT header says {n_rows} rows × {n_cols} columns but the body has "
            f"{len(raw) - n_cmeta} × {len(sample_ids)}; the file is truncated or malformed."
        )
    col_meta = raw.iloc[:n_cmeta].set_index(id_col)[sample_ids].T
    col_meta.index.name = "cid"
    body = raw.iloc[n_cmeta:]
    row_meta = body.set_index(id_col)[meta_cols]
    row_meta.index.name = "rid"
    text = body.set_index(id_col)[sample_ids]
    data = text.apply(pd.to_numeric, errors="coerce")
    bad = data.isna() & ~text.isin(NULLS)
    if bad.to_numpy().any():
        probe, sample = next((r, c) for c in bad.columns for r in bad.index[bad[c].to_numpy()])
        raise MorphotxInputError(
            f"{path}: {int(bad.to_numpy().sum())} value(s) of the data block are not numbers (e.g. "
            f"{text.at[probe, sample]!r} at probe {probe!r}, sample {sample!r}); fix them, or leave the cell "
            f"empty or one of {NULLS[1:]} for a missing value.")
    data = data.astype("float32").T
    data.index.name = "cid"
    data.columns.name = None
    return data, row_meta, col_meta

