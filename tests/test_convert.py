"""Streamed conversion of the input files to typed Parquet, and the real L1000 GCT plate through
convert → harmonise → probe mapping."""

import gzip

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import FORMAT, real_fixture
from morphotx import schema as S
from morphotx.data.convert import convert, read_gctx
from morphotx.data.harmonise import harmonise
from morphotx.io import MorphotxInputError, read_gct
from morphotx.settings import HarmoniseSettings, MoaSettings


def _types(path):
    return {f.name: f.type for f in pq.read_schema(path)}


def test_csv_gz_streams_to_typed_parquet(tmp_path, tiny_raw):
    out = tmp_path / "cp.parquet"
    summary = convert(tiny_raw["cell_painting"], out, FORMAT, "cell_painting", block_mib=0.1, row_group_mib=0.1)
    src = pd.read_csv(tiny_raw["cell_painting"], dtype=str, keep_default_na=False)
    types = _types(out)
    feats = [c for c in src.columns if c.startswith(S.CP_COMPARTMENTS)]
    assert all(types[c] == pa.float32() for c in feats)
    assert all(types[c] == pa.string() for c in src.columns if c not in feats)
    got = pd.read_parquet(out)
    assert list(got.columns) == list(src.columns) and summary["rows"] == len(src) == len(got)
    np.testing.assert_array_equal(got[feats].to_numpy(), src[feats].replace("", np.nan).astype("float32").to_numpy())
    assert (got["Metadata_Plate"] == src["Metadata_Plate"]).all()
    assert pq.ParquetFile(out).num_row_groups > 1  # written in row groups, not at once


def test_parquet_and_csv_inputs_harmonise_identically(tmp_path, tiny_raw):
    via = convert(tiny_raw["l1000"], tmp_path / "l1k.parquet", FORMAT, "l1000")
    assert via["kind"] == "text"
    a = harmonise(tmp_path / "l1k.parquet", tmp_path / "a.parquet", FORMAT, "l1000")
    b = harmonise(tiny_raw["l1000"], tmp_path / "b.parquet", FORMAT, "l1000")
    pd.testing.assert_frame_equal(a, b)
    again = convert(tmp_path / "l1k.parquet", tmp_path / "l1k2.parquet", FORMAT, "l1000")
    assert again["kind"] == "parquet" and pd.read_parquet(tmp_path / "l1k2.parquet").equals(pd.read_parquet(tmp_path / "l1k.parquet"))


def _cut(src, dst, fraction=0.5):
    data = open(src, "rb").read()
    open(dst, "wb").write(data[: int(len(data) * fraction)])


def test_truncated_gzip(tmp_path, tiny_raw):
    bad = tmp_path / "cut.csv.gz"
    _cut(tiny_raw["l1000"], bad)
    out = tmp_path / "o.parquet"
    with pytest.raises(MorphotxInputError, match=r"cut.csv.gz: the gzip stream is cut short or corrupt"):
        convert(bad, out, FORMAT, "l1000", block_mib=1)
    assert list(tmp_path.iterdir()) == [bad]


def test_schema_drift_fails_before_streaming(tmp_path, tiny_raw):
    df = pd.read_csv(tiny_raw["l1000"]).rename(columns={"det_plate": "plate"})
    f = tmp_path / "drift.csv.gz"
    df.to_csv(f, index=False)
    with pytest.raises(MorphotxInputError, match=r"drift.csv.gz: required column\(s\) \['det_plate'\] missing for l1000.*"
                                                 r"'plate'"):
        convert(f, tmp_path / "o.parquet", FORMAT, "l1000")
    assert not (tmp_path / "o.parquet").exists()


def test_alternative_column_names(tmp_path, tiny_raw):
    """pert_type (CMap GCT spelling) is accepted where the Rosetta CSV has pert_type_x."""
    df = pd.read_csv(tiny_raw["l1000"]).rename(columns={"pert_type_x": "pert_type"})
    f = tmp_path / "alt.csv"
    df.to_csv(f, index=False)
    res = harmonise(f, tmp_path / "o.parquet", FORMAT, "l1000")
    assert res[S.IS_CONTROL].sum() == (df.pert_type == "ctl_vehicle").sum() > 0
    assert "Metadata_pert_type" in res and "Metadata_Metadata_pert_type" not in res


@pytest.mark.parametrize("case,match", [
    ("empty", "file is empty"),
    ("latin1", "header is not valid UTF-8"),
    ("fields", "wrong number of fields"),
    ("text_feature", "cannot be read as its column's type"),
    ("header_only", "has a header but no rows"),
])
def test_bad_files(tmp_path, tiny_raw, case, match):
    df = pd.read_csv(tiny_raw["l1000"]).head(50)
    f = tmp_path / "bad.csv"
    if case == "empty":
        f.write_bytes(b"")
    elif case == "latin1":
        f.write_bytes(",".join(["caf\xe9"] + list(df.columns)).encode("latin-1") + b"\n1\n")
    elif case == "fields":
        text = df.to_csv(index=False).splitlines()
        text[20] = text[20] + ",1,2"
        f.write_text("\n".join(text) + "\n")
    elif case == "text_feature":
        probe = next(c for c in df.columns if c.endswith("_at"))
        df[probe] = df[probe].astype(object)
        df.loc[10, probe] = "abc"
        df.to_csv(f, index=False)
    elif case == "header_only":
        df.head(0).to_csv(f, index=False)
    with pytest.raises(MorphotxInputError, match=match):
        convert(f, tmp_path / "o.parquet", FORMAT, "l1000")
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize("case,match", [
    ("not_parquet", "not a readable Parquet file"),
    ("duplicated", r"duplicated column name\(s\) \['dup'\]"),
    ("no_rows", "has columns but no rows"),
    ("text_feature", r"column '\w+_at' holds a value that is not a number \(e.g. 'abc'"),
])
def test_bad_parquet_gets_the_csv_checks(tmp_path, tiny_raw, case, match):
    """Parquet inputs get the same validation and messages as CSV (issue: raw tracebacks before)."""
    df = pd.read_csv(tiny_raw["l1000"]).head(50)
    f = tmp_path / "bad.parquet"
    if case == "not_parquet":
        df.to_csv(f, index=False)
    elif case == "duplicated":
        t = pa.Table.from_pandas(df, preserve_index=False)
        pq.write_table(t.append_column("dup", pa.array(["a"] * len(df))).append_column("dup", pa.array(["b"] * len(df))), f)
    elif case == "no_rows":
        df.head(0).to_parquet(f, index=False)
    elif case == "text_feature":
        probe = next(c for c in df.columns if c.endswith("_at"))
        df[probe] = df[probe].astype(str)
        df.loc[10, probe] = "abc"
        df.to_parquet(f, index=False)
    with pytest.raises(MorphotxInputError, match=match):
        convert(f, tmp_path / "o.parquet", FORMAT, "l1000")
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize("second_line,match", [("978", "needs 2 tab-separated counts"),
                                                ("x\t3", "needs 2 tab-separated counts")])
def test_bad_gct_header_is_named(tmp_path, second_line, match):
    f = tmp_path / "x.gct"
    f.write_text(f"#1.2\n{second_line}\nName\tDescription\ts1\n1_at\tg\t1\n")
    with pytest.raises(MorphotxInputError, match=match):
        read_gct(f)


def test_text_named_xlsx_is_named(tmp_path):
    from morphotx.io import read_table

    f = tmp_path / "map.xlsx"
    f.write_text("probe_id,symbol\n1_at,G1\n")
    with pytest.raises(MorphotxInputError, match="not an Excel workbook.*rename it"):
        read_table(f)


def _write_gctx(path, data, row_meta, col_meta):
    """A GCTX in CMap's layout (matrix samples × probes; ids and metadata as datasets). Our reader was also
    checked once against a file written by cmapPy's own writer from the real GCT plate (identical data)."""
    import h5py

    with h5py.File(path, "w") as fh:
        fh["0/DATA/0/matrix"] = data.to_numpy("float32")
        fh["0/META/COL/id"] = np.array(data.index, dtype="S")
        fh["0/META/ROW/id"] = np.array(data.columns, dtype="S")
        for c in col_meta.columns:
            fh[f"0/META/COL/{c}"] = np.array(col_meta[c].astype(str), dtype="S")
        for c in row_meta.columns:
            fh[f"0/META/ROW/{c}"] = np.array(row_meta[c].astype(str), dtype="S")


def test_real_gct_plate_to_genes(tmp_path):
    """The real L1000 GCT plate (CMap level 3) and the Rosetta probe map through the real-path code."""
    from morphotx.data.probes import map_probes

    gct = real_fixture("l1000_level3_A375_plate_LJP005.gct.gz")
    xlsx = real_fixture("l1000_probe_gene_idmap.xlsx")
    s = convert(gct, tmp_path / "l1000.parquet", FORMAT, "l1000")
    assert (s["kind"], s["rows"], s["features"]) == ("gct", 377, 978)
    moa = real_fixture("repurposing_info_external_moa_map_resolved.tsv")
    h = harmonise(tmp_path / "l1000.parquet", tmp_path / "h.parquet", FORMAT, "l1000",
                  HarmoniseSettings(on_bad_dose="drop"), MoaSettings(source="map"), moa_map=moa)
    data, _, col = read_gct(gct)
    assert h[S.IS_CONTROL].sum() == (col["pert_type"] == "ctl_vehicle").sum() == 26
    assert (h.loc[h[S.IS_CONTROL], S.TREATMENT] == "DMSO").all()
    trt = h[~h[S.IS_CONTROL]]
    assert trt[S.TREATMENT].str.match(r"^BRD-[A-Z]\d{8}_\d").all()
    assert h[S.PLATE].eq("LJP005_A375_24H_X1_B19").all() and h[S.PROFILE_ID].is_unique
    assert trt[S.MOA].str.len().gt(0).sum() > 0  # LJP compounds found in the Repurposing Hub map
    row = h.set_index(S.PROFILE_ID).loc[data.index[5]]
    np.testing.assert_array_equal(row[list(data.columns)].to_numpy("float32"), data.iloc[5].to_numpy())
    map_probes(tmp_path / "h.parquet", tmp_path / "g.parquet", xlsx)
    genes = pd.read_parquet(tmp_path / "g.parquet")
    feats = S.feature_columns(genes)
    assert len(feats) == 978 and "PSME1" in feats and not any(c.endswith("_at") for c in feats)
    # the same plate as GCTX gives the same converted table
    d, r, c = read_gct(gct)
    _write_gctx(tmp_path / "plate.gctx", d, r, c)
    d2, r2, c2 = read_gctx(tmp_path / "plate.gctx")
    pd.testing.assert_frame_equal(d2, d)
    assert (c2[c.columns].astype(str) == c.astype(str)).all().all()  # HDF5 lists fields alphabetically
    convert(tmp_path / "plate.gctx", tmp_path / "x.parquet", FORMAT, "l1000")
    from_gct = pd.read_parquet(tmp_path / "l1000.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "x.parquet")[from_gct.columns], from_gct)


def test_truncated_gctx_is_named(tmp_path):
    """Bad-input case 35: a GCTX cut short is one error naming the file, not an h5py traceback."""
    data = pd.DataFrame(np.arange(40 * 978, dtype="float32").reshape(40, 978),
                        index=[f"s{i}" for i in range(40)], columns=[f"{i}_at" for i in range(978)])
    col = pd.DataFrame({"pert_id": ["BRD-K00000001"] * 40}, index=data.index)
    row = pd.DataFrame({"pr_gene_symbol": ["g"] * 978}, index=data.columns)
    full = tmp_path / "full.gctx"
    _write_gctx(full, data, row, col)
    cut = tmp_path / "cut.gctx"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(MorphotxInputError, match=r"cut.gctx: .*corrupt or cut short"):
        convert(cut, tmp_path / "o.parquet", FORMAT, "l1000")
    # bytes damaged near the start: the file opens, its objects do not
    damaged = bytearray(full.read_bytes())
    n = len(damaged)
    damaged[n // 100: n * 4 // 100] = b"\xff" * (n * 4 // 100 - n // 100)
    (tmp_path / "bad.gctx").write_bytes(bytes(damaged))
    with pytest.raises(MorphotxInputError, match=r"bad.gctx: GCTX/HDF5 data cannot be read .*corrupt or cut short"):
        convert(tmp_path / "bad.gctx", tmp_path / "o.parquet", FORMAT, "l1000")
    assert not (tmp_path / "o.parquet").exists()


def test_real_cell_painting_plate_converts(tmp_path):
    cp = real_fixture("lincs_cp_plate_SQ00015054_normalized_feature_select.csv.gz")
    s = convert(cp, tmp_path / "cp.parquet", FORMAT, "cell_painting")
    assert (s["rows"], s["features"]) == (384, 454)
    a = harmonise(tmp_path / "cp.parquet", tmp_path / "a.parquet", FORMAT, "cell_painting")
    b = harmonise(cp, tmp_path / "b.parquet", FORMAT, "cell_painting")
    pd.testing.assert_frame_equal(a, b)


def test_gzip_detected_by_bytes_not_name(tmp_path, tiny_raw):
    f = tmp_path / "l1k.csv"  # gzip content without .gz
    f.write_bytes(open(tiny_raw["l1000"], "rb").read())
    assert gzip.open(f).read(2)
    s = convert(f, tmp_path / "o.parquet", FORMAT, "l1000")
    assert s["rows"] > 0
