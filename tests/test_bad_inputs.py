"""The bad-input matrix of ``../shared/design/bad_inputs.md`` as tests, so it cannot regress.

Every file case goes through the pipeline's own entry points in the pipeline's order — the
``convert`` rule's :func:`morphotx.data.convert.convert`, then the ``harmonise`` rule's
:func:`morphotx.data.harmonise.harmonise` — on the tiny demo's files with one edit. The expectation is
one error whose text names the problem (and nothing left at the failing step's output path, no
temporary file beside it), or a counted warning in the log. The cases of later stages (probe
map, split, pairing, preprocessing, evaluation, config, interruptions) are tested where their
code lives; :data:`ELSEWHERE` names those tests and a test checks that they exist, so deleting
one fails here. docs/reliability.md lists the matrix and what each case gets.
"""

import gzip
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import FORMAT
from morphotx.data import convert, harmonise
from morphotx.io import MorphotxInputError
from morphotx.settings import HarmoniseSettings, MoaSettings

TESTS = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------------
# edits of the tiny demo's files (each returns the file to ingest)
# ---------------------------------------------------------------------------------------------
def _cp_features(df):
    return [c for c in df.columns if c.startswith(("Cells_", "Cytoplasm_", "Nuclei_"))]


def _treated(df):
    col = "Metadata_broad_sample" if "Metadata_broad_sample" in df else "pert_type_x"
    return df.index[(df[col] != "DMSO") & (df[col] != "ctl_vehicle")]


def _controls(df):
    return df.index[df["Metadata_broad_sample"] == "DMSO"]


def _nan_features(df):
    f = _cp_features(df)[:3]
    rng = np.random.default_rng(0)
    for c in f:
        df.loc[rng.choice(df.index, int(0.4 * len(df)), replace=False), c] = np.nan
    other = _cp_features(df)[3:]
    mask = rng.random((len(df), len(other))) < 0.01
    df[other] = df[other].mask(mask)
    return df


def _set(rows, column, value):
    def edit(df):
        col = column(df) if callable(column) else column
        df[col] = df[col].astype(object)
        df.loc[rows(df)[:3], col] = value
        return df
    return edit


def _one_plate_all_dmso(df):
    plate = df["Metadata_Plate"].iloc[0]
    on = df["Metadata_Plate"] == plate
    df.loc[on, ["Metadata_broad_sample", "Metadata_pert_id"]] = ["DMSO", None]
    return df


def _write(df, dst):
    df.to_csv(dst, index=False)
    return dst


def _table_edit(modality, edit):
    def make(raw, tmp):
        df = pd.read_csv(raw[modality])
        return _write(edit(df), tmp / "in.csv")
    return make


def _bytes_edit(modality, edit):
    def make(raw, tmp):
        data = gzip.decompress(Path(raw[modality]).read_bytes())
        dst = tmp / "in.csv.gz"
        dst.write_bytes(edit(data))
        return dst
    return make


def _truncate(data):
    return gzip.compress(data)[: len(gzip.compress(data)) // 2]


def _ragged(data):
    lines = data.split(b"\n")
    lines[3] = lines[3] + b",1,2"
    return gzip.compress(b"\n".join(lines))


def _xlsx(raw, tmp):
    dst = tmp / "in.csv"
    pd.read_csv(raw["cell_painting"], nrows=5).to_excel(dst, index=False, engine="openpyxl")
    return dst


def _real_xlsx(raw, tmp):
    dst = tmp / "cp.xlsx"
    pd.read_csv(raw["cell_painting"], nrows=5).to_excel(dst, index=False, engine="openpyxl")
    return dst


def _gene_symbols(raw, tmp):
    """The L1000 file with its probe columns renamed to gene symbols (two probes share one symbol)."""
    df = pd.read_csv(raw["l1000"])
    symbol = pd.read_csv(raw["probe_map"], sep="\t").dropna(subset=["symbol"]).set_index("probe_id")["symbol"]
    df = df[[c for c in df.columns if not c.endswith("_at") or c in symbol.index]]
    return _write(df.rename(columns=lambda c: symbol.get(c, c)), tmp / "in.csv")


def _case_duplicate_feature(df):
    f = _cp_features(df)[0]
    return pd.concat([df, df[[f]].rename(columns={f: f[:7] + f[7:].swapcase()})], axis=1)  # still a feature


def _gct(raw, tmp) -> Path:
    """The tiny L1000 file as a gzipped GCT 1.3 (probes × samples, the sample annotations as column
    metadata), as CMap distributes level 3–5 data."""
    df = pd.read_csv(raw["l1000"])
    probes = [c for c in df.columns if c.endswith("_at")]
    meta = [c for c in df.columns if c not in probes and c != "cid"]
    lines = ["#1.3", f"{len(probes)}\t{len(df)}\t1\t{len(meta)}",
             "\t".join(["id", "pr_gene_symbol", *df["cid"].astype(str)])]
    lines += ["\t".join([m, "-666", *df[m].astype(str)]) for m in meta]
    lines += ["\t".join([p, "g", *(f"{v:.4f}" for v in df[p])]) for p in probes]
    dst = tmp / "in.gct.gz"
    dst.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return dst


def _truncated_gct(raw, tmp):
    dst = _gct(raw, tmp)
    data = dst.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def _moa_spellings(df):
    """One MoA written three ways across its compounds (case, spacing) and a two-MoA annotation
    written in the other order."""
    trt = df[df["Metadata_broad_sample"] != "DMSO"]
    moa = trt["Metadata_moa"].dropna()
    single = moa[~moa.str.contains("|", regex=False)]
    label = single.value_counts().index[0]
    cpds = sorted(trt.loc[single.index[single == label], "Metadata_pert_id"].unique())
    assert len(cpds) >= 3, cpds
    spelt = {cpds[0]: label.lower(), cpds[1]: "  " + label.upper().replace(" ", "  ") + " "}
    rows = df["Metadata_pert_id"].isin(spelt)
    df.loc[rows, "Metadata_moa"] = df.loc[rows, "Metadata_pert_id"].map(spelt)
    multi = moa[moa.str.contains("|", regex=False)]
    if len(multi):
        on = df["Metadata_moa"] == multi.iloc[0]
        df.loc[on, "Metadata_moa"] = "|".join(reversed(multi.iloc[0].split("|")))
    return df


def _other_modality(modality):
    def make(raw, tmp):
        return Path(raw[modality])
    return make


CP, L1K = "cell_painting", "l1000"

# (case id of bad_inputs.md, modality ingested, file maker, harmonise kwargs, kind, regex)
CASES = [
    ("1 NaN features", CP, _table_edit(CP, _nan_features), {}, "warning",
     r"missing value\(s\) in \d+ feature\(s\) \(most: \{'"),
    ("2 inf", CP, _table_edit(CP, _set(_treated, lambda d: _cp_features(d)[0], np.inf)), {}, "warning",
     r"3 inf value\(s\) in 1 feature\(s\)"),
    ("3 missing Cell Painting dose", CP, _table_edit(CP, lambda d: d.drop(columns="Metadata_mmoles_per_liter")), {},
     "error", r"required column\(s\) \['Metadata_mmoles_per_liter'\] missing for cell_painting"),
    ("4 missing L1000 column", L1K, _table_edit(L1K, lambda d: d.drop(columns="pert_dose")), {},
     "error", r"required column\(s\) \['pert_dose'\] missing for l1000"),
    ("5 duplicated column names", CP,
     _table_edit(CP, lambda d: d.rename(columns={_cp_features(d)[1]: _cp_features(d)[0]})), {},
     "error", r"duplicated"),
    ("7 dose that does not recode", CP, _table_edit(CP, _set(_treated, "Metadata_mmoles_per_liter", 500.0)), {},
     "error", r"does not recode to the standard doses.*500"),
    ("7 text dose (32)", CP, _table_edit(CP, _set(_treated, "Metadata_mmoles_per_liter", "ten")), {},
     "error", r"'dose': 'ten'"),
    ("8 compound without MoA", CP, _table_edit(CP, _set(_treated, "Metadata_moa", np.nan)), {}, "warning",
     r"1 of \d+ compounds have no MoA annotation; kept"),
    ("10 truncated csv.gz", CP, _bytes_edit(CP, _truncate), {}, "error", r"cut short or corrupt"),
    ("11 empty file", CP, lambda raw, tmp: (tmp / "in.csv").write_bytes(b"") and tmp / "in.csv" or tmp / "in.csv",
     {}, "error", r"file is empty"),
    ("11 header only", CP, _table_edit(CP, lambda d: d.iloc[:0]), {}, "error", r"header but no rows"),
    ("12 renamed Cells_ prefix", CP,
     _table_edit(CP, lambda d: d.rename(columns=lambda c: "Cell_" + c[6:] if c.startswith("Cells_") else c)), {},
     "error", r"column\(s\) match no feature rule.*harmonise.max_unknown_columns"),
    ("12b renamed metadata column", CP, _table_edit(CP, lambda d: d.rename(columns={"Metadata_Well": "Well"})), {},
     "error", r"required column\(s\) \['Metadata_Well'\] missing"),
    ("12c L1000 probes renamed _at -> _AT", L1K,
     _table_edit(L1K, lambda d: d.rename(columns=lambda c: c[:-3] + "_AT" if c.endswith("_at") else c)), {},
     "error", r"no feature columns match"),
    ("13 non-UTF-8 header", CP, _bytes_edit(CP, lambda b: gzip.compress(b.replace(b"Metadata_Well", b"Metadata_W\xe9ll", 1))),
     {}, "error", r"not valid UTF-8"),
    ("14 1e30 in treated wells", CP, _table_edit(CP, _set(_treated, lambda d: _cp_features(d)[0], 1e30)), {},
     "error", r"3 feature value\(s\) in 1 feature\(s\) are more than 1e\+06 robust SDs"),
    ("14b 1e40 overflows float32", CP, _table_edit(CP, _set(_treated, lambda d: _cp_features(d)[0], 1e40)), {},
     "warning", r"beyond float32's ±3.4e38 \(overflowed when read\)"),
    ("14c absurd L1000 values", L1K,
     _table_edit(L1K, _set(_treated, lambda d: next(c for c in d.columns if c.endswith("_at")), 1e30)), {},
     "error", r"robust SDs from their feature's median"),
    ("14 extreme values as missing", CP, _table_edit(CP, _set(_treated, lambda d: _cp_features(d)[0], 1e30)),
     {"settings": HarmoniseSettings(on_extreme="nan")}, "warning", r"Set to NaN \(harmonise.on_extreme: nan\)"),
    ("15 all-DMSO plate", CP, _table_edit(CP, _one_plate_all_dmso), {}, "warning", r"holds only controls; kept"),
    ("18 XLSX given as CSV (32)", CP, _xlsx, {}, "error", r"xlsx"),
    ("18 L1000 file as Cell Painting", CP, _other_modality(L1K), {}, "error",
     r"required column\(s\) .* missing for cell_painting"),
    ("18 Cell Painting file as L1000", L1K, _other_modality(CP), {}, "error", r"missing for l1000"),
    ("19 text in a feature column", CP, _table_edit(CP, _set(_treated, lambda d: _cp_features(d)[0], "abc")), {},
     "error", r"cannot be read as its column's type|not numbers"),
    ("19 ragged row", CP, _bytes_edit(CP, _ragged), {}, "error", r"wrong number of fields"),
    ("19 duplicated well", CP, _table_edit(CP, lambda d: pd.concat([d, d.iloc[[0]]])), {}, "error",
     r"duplicated profile id"),
    ("19 treated row without compound id", CP,
     _table_edit(CP, lambda d: d.assign(Metadata_pert_id=d["Metadata_pert_id"].where(
         d.index != _treated(d)[0], None), Metadata_broad_sample=d["Metadata_broad_sample"].where(
         d.index != _treated(d)[0], None))), {}, "error", r"treated row\(s\) have no compound id"),
    ("21 moa.source map without a map", CP, _table_edit(CP, lambda d: d), {"moa": MoaSettings(source="map")}, "error",
     r"moa.map is not set"),
    ("22 missing input file", CP, lambda raw, tmp: tmp / "nowhere.csv.gz", {}, "error", r"file not found"),
    ("33 one MoA in two letter cases", CP, _table_edit(CP, _moa_spellings), {}, "warning",
     r"1 MoA label\(s\) are written in more than one way .* merged into one class each"),
    ("34 feature duplicated under another letter case", CP, _table_edit(CP, _case_duplicate_feature), {}, "error",
     r"1 feature name\(s\) occur more than once when letter case is ignored"),
    ("10 truncated .gct.gz (35)", L1K, _truncated_gct, {}, "error", r"gzip stream is cut short or corrupt"),
    ("36 real .xlsx workbook", CP, _real_xlsx, {}, "error", r"is an Excel workbook; .*Export the sheet as CSV"),
    ("37 L1000 file of gene symbols (one repeated)", L1K, _gene_symbols, {}, "error",
     r"no feature columns match .*Affymetrix probe ids"),
    ("29 1e30 in DMSO wells", CP, _table_edit(CP, _set(_controls, lambda d: _cp_features(d)[0], 1e30)), {},
     "error", r"robust SDs from their feature's median"),
]


# what an error must name when it is not the input file: the config key
NAMES = {"21 moa.source map without a map": ("moa.map",)}


def _ingest(src: Path, tmp: Path, modality: str, kw: dict):
    conv, out = tmp / "converted.parquet", tmp / "harmonised.parquet"
    convert.convert(src, conv, FORMAT, modality)
    harmonise.harmonise(conv, out, FORMAT, modality, **kw)
    return out


@pytest.mark.parametrize("case,modality,make,kw,kind,match", CASES, ids=[c[0] for c in CASES])
def test_bad_input_matrix(tmp_path, tiny_raw, caplog, case, modality, make, kw, kind, match):
    src = make(tiny_raw, tmp_path)
    caplog.set_level(logging.WARNING)
    if kind == "error":
        with pytest.raises(MorphotxInputError, match=match) as err:
            _ingest(src, tmp_path, modality, kw)
        # the user's file, also for errors found after conversion (convert records it in the Parquet file)
        names = NAMES.get(case, (src.name,))
        assert any(n in str(err.value) for n in names), (names, str(err.value))
        assert not (tmp_path / "harmonised.parquet").exists()
        assert not list(tmp_path.glob("*.tmp*")) and not list(tmp_path.glob(".*tmp*"))  # nothing half-written
    else:
        out = _ingest(src, tmp_path, modality, kw)
        assert out.exists()
        warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert any(re.search(match, m) for m in warned), warned


def test_moa_map_without_its_key_column_is_named(tmp_path, tiny_raw):
    """Case 21: a MoA map without the key column."""
    pd.read_csv(tiny_raw["moa_map"], sep="\t").drop(columns="broad_id").to_csv(tmp_path / "m.tsv", sep="\t", index=False)
    with pytest.raises(MorphotxInputError, match=r"m.tsv.*broad_id"):
        _ingest(Path(tiny_raw["cell_painting"]), tmp_path, CP, {"moa": MoaSettings(source="map"), "moa_map": tmp_path / "m.tsv"})


def test_moa_spellings_become_one_class(tmp_path, tiny_raw, caplog):
    """Case 33: a MoA written in other letter cases or spacing by some compounds, and a two-MoA
    annotation in the other order, give the classes of the clean file, with one counted warning."""
    from morphotx import schema as S

    clean = _ingest(Path(tiny_raw["cell_painting"]), tmp_path / "clean", CP, {})
    src = _table_edit(CP, _moa_spellings)(tiny_raw, tmp_path)
    caplog.set_level(logging.WARNING)
    out = _ingest(src, tmp_path, CP, {})
    moas = [pd.read_parquet(p)[S.MOA].map(S.moa_string) for p in (clean, out)]
    assert moas[0].nunique() == moas[1].nunique() and (moas[0] == moas[1]).all()
    merged = [r.getMessage() for r in caplog.records if "written in more than one way" in r.getMessage()]
    assert len(merged) == 1 and "in.csv: 1 MoA label(s)" in merged[0], merged


@pytest.mark.parametrize("moa", ["one compound", "own"], ids=["9 MoA with one compound", "9 every compound its own MoA"])
def test_rare_moas_split(moa):
    """Case 9: a MoA with a single compound, and every compound its own MoA, split without error
    (rare MoAs pooled into one stratum)."""
    from morphotx import schema as S
    from morphotx.prepare.split import split_compounds_frame

    n = 40
    moas = [f"M{i % 4}" for i in range(n)] if moa == "one compound" else [f"M{i}" for i in range(n)]
    if moa == "one compound":
        moas[0] = "lonely"
    c = pd.DataFrame({S.PERT: [f"BRD-K{i:08d}" for i in range(n)], S.MOA: moas})
    for fold in range(5):
        a = split_compounds_frame(c, {"train": 0.7, "validation": 0.1, "test": 0.2}, seed=0, folds=5, fold=fold)
        assert set(a[S.SPLIT]) == {"train", "validation", "test"}


# the cases tested beside their code: case -> "module::test"
ELSEWHERE = {
    "6 probe with two symbols": "test_probes.py::test_probe_with_two_symbols_is_an_error_unless_first_row_is_asked",
    "12d / 17 unmapped probes counted, error above max_unmapped":
        "test_probes.py::test_unmapped_probes_warn_and_stop_above_the_threshold",
    "16 plate without DMSO": "test_preprocess.py::test_plate_without_dmso_is_an_error",
    "20 no shared treatment": "test_pairing.py::test_modalities_without_a_shared_treatment_stop_at_pairing",
    "23 / 28 Parquet inputs": "test_convert.py::test_bad_parquet_gets_the_csv_checks",
    "28 bad GCT header": "test_convert.py::test_bad_gct_header_is_named",
    "28 non-XLSX .xlsx": "test_convert.py::test_text_named_xlsx_is_named",
    "24 unknown config key": "test_workflow.py::test_unknown_key_stops_before_any_job",
    "24 fractions not summing to 1": "test_workflow.py::test_fractions_not_summing_to_one_stop_before_any_job",
    "24 bad value names the key": "test_workflow.py::test_bad_value_names_the_key",
    "24 bad model config": "test_workflow.py::test_bad_model_config_is_a_schema_error_naming_the_key",
    "25 kill -9: stale temporary folders": "test_io.py::test_atomic_directory_clears_what_a_killed_run_left_and_keeps_permissions",
    "25 reruns give identical tables": "test_workflow.py::test_same_config_same_tables",
    "26 copairs without pairs": "test_evaluate.py::test_map_without_positive_pairs_is_recorded_not_raised",
    "27 text in a GCT": "test_io.py::test_gct_text_in_the_data_block_is_an_error_like_in_a_csv",
    "30 moa_disjoint honours the fractions": "test_split.py::test_moa_disjoint_honours_fractions_when_multi_moa_compounds_link_every_moa",
    "30 moa_disjoint evaluation": "test_evaluate.py::test_zero_shot_split_skips_classifiers_and_scores_validation_and_test_map",
    "30 moa_disjoint training": "test_models.py::test_zero_shot_validation_selects_on_unseen_moas",
    "31 dataset.name outside results/": "test_workflow.py::test_dataset_name_cannot_leave_results",
    "32 workbook named .csv": "test_io.py::test_workbook_or_parquet_named_csv_is_named",
    "9 one compound per MoA, end to end":
        "test_workflow.py::test_one_compound_per_moa_runs_to_the_end_and_says_why_nothing_is_classified",
    "9 / 30 headline figure without macro-F1":
        "test_figures.py::test_headline_forest_plot_of_moa_map_and_of_a_headline_without_scores",
    "30 moa_disjoint, end to end": "test_workflow.py::test_moa_disjoint_runs_to_a_zero_shot_headline",
    "well_holdout, end to end": "test_workflow.py::test_well_holdout_runs_to_the_end",
    "24b train.device cuda without CUDA": "test_bad_inputs.py::test_cuda_without_a_gpu_is_refused_before_any_job",
    "25 kill -9: temporaries swept at start-up":
        "test_io.py::test_start_up_sweep_removes_what_killed_jobs_left_and_keeps_download_parts",
    "25 cancelled job (SIGTERM) removes its temporaries": "test_io.py::test_a_terminated_job_removes_its_temporary_outputs",
    "33 MoA spellings across modalities":
        "test_split.py::test_compound_table_merges_moa_spellings_across_compounds_and_modalities",
    "bad input in a job: one block naming the user's file":
        "test_bad_inputs.py::test_bad_input_in_a_job_is_one_block_naming_the_user_file",
    "35 truncated or damaged GCTX": "test_convert.py::test_truncated_gctx_is_named",
    "cluster script's state directory":
        "test_slurm.py::test_state_directory_must_be_ours_and_not_writable_by_others",
}


def test_every_case_tested_elsewhere_exists():
    for case, ref in ELSEWHERE.items():
        module, name = ref.split("::")
        assert f"def {name}(" in (TESTS / module).read_text(), f"case {case}: {ref} is gone"


@pytest.mark.workflow
def test_bad_input_in_a_job_is_one_block_naming_the_user_file(tmp_path, tiny_raw):
    """Bad input found inside a job (here: a dose that does not recode, found by harmonise after
    the file was converted) is printed as one block naming the user's file, not the converted
    Parquet, without a traceback; the traceback is in the job's log; nothing is left at the
    output path."""
    from conftest import snakemake

    src = _table_edit(CP, _set(_treated, "Metadata_mmoles_per_liter", 500.0))(tiny_raw, tmp_path)
    cfg = {"dataset": {"name": "mine", "source": "files"},
           "inputs": {"cell_painting": str(src), **{k: str(tiny_raw[k]) for k in ("l1000", "probe_map")}}}
    res = snakemake(tmp_path / "run", "results/mine/profiles/cp_harmonised.parquet", config=cfg)
    assert res.returncode != 0
    err = res.stderr
    block = err[err.index("morphotx: rule harmonise stopped on bad input:"):]
    assert f"{src}: " in block and "does not recode" in block and "harmonise.on_bad_dose: drop" in block, block
    assert "cp.parquet:" not in block and "Traceback" not in err, err[-3000:]
    log = (tmp_path / "run" / "results" / "mine" / "logs" / "harmonise_cp.log").read_text()
    assert "Traceback" in log and "does not recode" in log
    out = tmp_path / "run" / "results" / "mine" / "profiles"
    assert not (out / "cp_harmonised.parquet").exists() and not list(out.glob(".*tmp*"))


@pytest.mark.workflow
def test_cuda_without_a_gpu_is_refused_before_any_job(tmp_path):
    """``train.device: cuda`` on a machine where torch sees no CUDA device stops the run at
    start-up with one block naming the key and the fix, before the data preparation runs."""
    import torch

    from conftest import snakemake

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    res = snakemake(tmp_path, config={"train": {"seeds": [0], "device": "cuda"}}, models=["vae_mmd_cp"])
    assert res.returncode != 0
    assert "morphotx: configuration: train.device is 'cuda' but torch sees no CUDA device" in res.stderr, res.stderr[-2000:]
    assert "train.device: auto" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "results").exists()  # no job ran
