import gzip

import numpy as np
import pandas as pd
import pytest

from conftest import REPO as REPO_ROOT
from conftest import real_fixture
from morphotx.data.convert import read_gctx
from morphotx.io import MorphotxInputError, atomic_outputs, read_gct, read_header, read_table, save_parquet


def test_atomic_outputs_leave_nothing_on_failure(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "sub" / "b.txt"
    with pytest.raises(RuntimeError):
        with atomic_outputs(a, b) as (ta, tb):
            ta.write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.rglob("*")) == [tmp_path / "sub"]  # only the created folder, no file


def test_atomic_outputs_rename_all_on_success(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    with atomic_outputs(a, b) as (ta, tb):
        ta.write_text("1")
        tb.write_text("2")
    assert a.read_text() == "1" and b.read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


@pytest.mark.parametrize("name,content,read,match", [
    ("empty.csv.gz", b"", read_table, "empty.csv.gz.*empty"),
    ("bad.csv", "Metadata_Plate,Cells_\xe9\n1,2\n".encode("latin-1"), read_header, "bad.csv.*not valid UTF-8"),
    ("dup.csv", b"Metadata_Plate,200814_at,200814_at\nP1,1,2\n", read_table, r"dup.csv.*duplicated.*200814_at"),
    ("junk.gctx", b"not hdf5", read_gctx, "junk.gctx: not a readable GCTX"),
])
def test_a_bad_file_is_one_clear_error_naming_it(tmp_path, name, content, read, match):
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(MorphotxInputError, match=match):
        read(f)


def test_truncated_gzip(tmp_path):
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(3000, 20)), columns=[f"Cells_f{i}" for i in range(20)])
    full = tmp_path / "full.csv.gz"
    df.to_csv(full, index=False)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(MorphotxInputError, match="cut.csv.gz.*(corrupt|cut short)"):
        read_table(cut)


def test_typed_read(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("Metadata_Well,Cells_a\n01,1.5\n02,2.5\n")
    df = read_table(f, feature_columns=["Cells_a"], string_columns=["Metadata_Well"])
    assert df["Cells_a"].dtype == np.float32
    assert df["Metadata_Well"].tolist() == ["01", "02"]  # leading zero kept: read as string


def test_save_parquet_roundtrip(tmp_path):
    df = pd.DataFrame({"a": [1, 2]})
    save_parquet(df, tmp_path / "x.parquet")
    assert read_table(tmp_path / "x.parquet").equals(df)


def test_parquet_float_columns_are_not_dictionary_encoded(tmp_path):
    """Feature (float) columns are written without dictionary encoding (slow and larger on
    continuous values), metadata (string) columns with it; the values come back unchanged."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"Metadata_plate": ["P1", "P2"] * 50, "f1": rng.normal(size=100).astype("float32"),
                       "f2": rng.normal(size=100)})
    save_parquet(df, tmp_path / "x.parquet")
    meta = pq.ParquetFile(tmp_path / "x.parquet").metadata.row_group(0)
    enc = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    assert not any("DICTIONARY" in e for c in ("f1", "f2") for e in enc[c])
    assert any("DICTIONARY" in e for e in enc["Metadata_plate"])
    back = read_table(tmp_path / "x.parquet")
    assert np.array_equal(back["f1"].to_numpy(), df["f1"].to_numpy()) and np.array_equal(back["f2"], df["f2"])


def test_read_gct_real_fixture():
    path = real_fixture("l1000_level3_A375_plate_LJP005.gct.gz")
    data, rows, cols = read_gct(path)
    assert data.shape == (377, 978)
    assert rows.index[0] == "200814_at" and "pr_gene_symbol" in rows.columns
    assert cols.loc[data.index[0], "det_plate"] == "LJP005_A375_24H_X1_B19"
    assert data.dtypes.unique().tolist() == [np.dtype("float32")]
    # the values are the file's: compare one cell against a plain text read
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines()
    first_data_line = lines[3 + 35].split("\t")
    assert first_data_line[0] == "200814_at"
    assert data.iloc[0, 0] == pytest.approx(float(first_data_line[12]), rel=1e-6)


def test_atomic_directory_clears_what_a_killed_run_left_and_keeps_permissions(tmp_path):
    """A ``kill -9`` during figures left ``.figures.tmp<pid>`` behind; the next run removes it.
    The result gets the umask's permissions like every other output (not mkdtemp's 0700)."""
    import os
    import stat

    from morphotx.io import atomic_directory
    from morphotx.report.plotting import save_figure as _save

    stale = tmp_path / ".figures.tmp999999"
    stale.mkdir()
    (stale / "half.png").write_bytes(b"x")
    out = tmp_path / "figures"
    old = os.umask(0o022)
    try:
        with atomic_directory(out) as d:
            import matplotlib.pyplot as plt

            fig, _ = plt.subplots()
            _save(fig, os.path.join(d, "a.png"))
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures"]
    # the PNG, its vector copy and the report's screen rendition
    assert sorted(p.name for p in out.iterdir()) == ["a.pdf", "a.png", "a.screen.png"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    for name in ("a.png", "a.pdf", "a.screen.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
    with pytest.raises(RuntimeError):
        with atomic_directory(out) as d:
            raise RuntimeError("boom")
    assert (out / "a.png").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["figures"]


def test_start_up_sweep_removes_what_killed_jobs_left_and_keeps_download_parts(tmp_path):
    """Bad-input case 25: a ``kill -9`` leaves temporaries (here a figures folder and a table),
    which the workflow's start-up sweep removes before any job; a download's partial file, which
    the download resumes, and ordinary (also hidden) files stay."""
    from morphotx.io import sweep_temporaries

    figs = tmp_path / "figures" / ".embedding_maps.tmp4242"
    figs.mkdir(parents=True)
    (figs / "raw_cp.png").write_bytes(b"half")
    table = tmp_path / "leaderboard" / ".headline.parquet.tmp4243.parquet"
    table.parent.mkdir()
    table.write_bytes(b"half")
    keep = [tmp_path / "download" / "cp" / ".cp.csv.gz.part", tmp_path / "leaderboard" / "headline.parquet",
            tmp_path / ".snakemake_timestamp", tmp_path / "figures" / "a.tmp.png"]
    for k in keep:
        k.parent.mkdir(parents=True, exist_ok=True)
        k.write_bytes(b"x")
    assert sorted(sweep_temporaries(tmp_path)) == sorted([figs, table])
    assert not figs.exists() and not table.exists() and all(k.exists() for k in keep)
    assert sweep_temporaries(tmp_path / "absent") == []


def test_a_terminated_job_removes_its_temporary_outputs(tmp_path):
    """Snakemake cancels jobs with SIGTERM (Ctrl-C, a failed sibling): a job set up by
    morphotx.smk turns it into SystemExit, so atomic_outputs removes its half-written temporary."""
    import signal
    import subprocess
    import sys
    import time

    code = (
        "import signal, sys, time\n"
        "from morphotx import smk\n"
        "from morphotx.io import atomic_outputs\n"
        "signal.signal(signal.SIGTERM, smk._terminated)\n"
        f"with atomic_outputs({str(tmp_path / 'out.parquet')!r}) as (tmp,):\n"
        "    tmp.write_bytes(b'half')\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    assert [p.name for p in tmp_path.iterdir()] != []  # the temporary exists while the job runs
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM and time.monotonic() - t0 < 30
    assert list(tmp_path.iterdir()) == []  # neither the output nor its temporary


def test_manifest_names_commit_dirty_state_and_input_checksums(tmp_path):
    import hashlib
    import shutil
    import subprocess

    from morphotx.report.manifest import git_state, manifest

    if not shutil.which("git"):
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "f.txt").write_text("one\n")
    subprocess.run([*git, "add", "f.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    clean = git_state(repo)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False
    (repo / "f.txt").write_text("two\n")
    assert git_state(repo) == {"commit": clean["commit"], "dirty": True}
    assert git_state(tmp_path / "nowhere") == {"commit": None, "dirty": None}
    data = tmp_path / "cp.csv"
    data.write_bytes(b"a,b\n1,2\n")
    m = manifest({"dataset": {"name": "x"}}, {"cell_painting": str(data)}, clean, str(tmp_path / "m.json"))
    assert m["inputs"]["cell_painting"] == {"path": str(data), "bytes": 8, "sha256": hashlib.sha256(b"a,b\n1,2\n").hexdigest()}
    assert (tmp_path / "m.json").exists() and m["git"] == clean and m["packages"]["numpy"]


def test_rule_threads_cap_blas_and_torch_threads():
    """setup(snakemake) must cap the BLAS and PyTorch threads at the rule's threads, also for
    libraries imported after it (threadpoolctl alone reaches only those already loaded)."""
    import subprocess
    import sys

    code = """
import sys, types
sys.path.insert(0, 'src')
from morphotx.smk import setup
setup(types.SimpleNamespace(threads=1, log=[], rule='x'))
import numpy, torch
from threadpoolctl import threadpool_info
print(max(i['num_threads'] for i in threadpool_info()), torch.get_num_threads())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO_ROOT))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1", "1"], out.stdout


def test_gct_text_in_the_data_block_is_an_error_like_in_a_csv(tmp_path):
    """A non-numeric value in a GCT is named (probe, sample, value), as a CSV's is; empty / NA stay missing."""
    def gct(value):
        p = tmp_path / "x.gct"
        p.write_text("#1.2\n2\t2\nName\tDescription\ts1\ts2\n"
                     f"1_at\tg1\t1.5\t{value}\n2_at\tg2\t3\t4\n")
        return p

    with pytest.raises(MorphotxInputError, match=r"not numbers.*'1,7'.*'1_at'.*'s2'"):
        read_gct(gct("1,7"))
    for missing in ("", "NA", "nan"):
        data, _, _ = read_gct(gct(missing))
        assert np.isnan(data.loc["s2", "1_at"]) and data.loc["s1", "1_at"] == 1.5


def test_xlsx_is_parsed_with_defusedxml():
    """openpyxl parses XLSX (the probe map) through defusedxml when it is installed: no entity
    expansion or external entities from a hostile workbook."""
    import openpyxl.xml

    assert openpyxl.xml.DEFUSEDXML is True


def test_unknown_config_keys_name_the_nearest_valid_key():
    from morphotx.configcheck import unknown_config_keys

    schema = {"type": "object", "additionalProperties": False,
              "properties": {"split": {"$ref": "#/$defs/split"}, "models": {"type": "object"}},
              "$defs": {"split": {"type": "object", "additionalProperties": False,
                                  "properties": {"seed": {}, "folds": {}}}}}
    cfg = {"split": {"sead": 1, "folds": 2}, "modles": {}, "models": {"anything": {"x": 1}}}
    assert unknown_config_keys(cfg, schema) == [
        "unknown config key 'split.sead'; did you mean 'split.seed'?",
        "unknown config key 'modles'; did you mean 'models'?"]
    assert unknown_config_keys({"split": {"zzz": 1}}, schema) == [
        "unknown config key 'split.zzz'; known keys here: ['folds', 'seed']"]
    assert unknown_config_keys({"split": {"seed": 1}}, schema) == []


def test_workbook_or_parquet_named_csv_is_named(tmp_path):
    """An XLSX or Parquet file given as .csv is named as such (it was told to 're-encode as UTF-8')."""
    import pandas as pd

    xlsx = tmp_path / "map.csv"
    pd.DataFrame({"probe_id": ["1_at"], "symbol": ["G1"]}).to_excel(xlsx.with_suffix(".xlsx"), index=False)
    xlsx.write_bytes(xlsx.with_suffix(".xlsx").read_bytes())
    with pytest.raises(MorphotxInputError, match="zip file .*xlsx"):
        read_header(xlsx)
    pq_csv = tmp_path / "p.csv"
    pd.DataFrame({"a": [1]}).to_parquet(pq_csv)
    with pytest.raises(MorphotxInputError, match="Parquet file"):
        read_table(pq_csv)


def test_package_exports_the_steps_lazily():
    """``import morphotx`` names the stage functions for notebooks and imports nothing heavy until
    one is used (the rules' scripts import morphotx submodules; torch only where a model is)."""
    import subprocess
    import sys

    code = ("import sys, morphotx\n"
            "assert 'torch' not in sys.modules and 'sklearn' not in sys.modules, sorted(sys.modules)\n"
            "fns = [getattr(morphotx, n) for n in morphotx.__all__]\n"
            "assert all(callable(f) for f in fns) and 'embed_profiles' in morphotx.__all__\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
