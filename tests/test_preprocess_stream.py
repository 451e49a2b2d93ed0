"""The bounded-memory Cell Painting preprocessing (morphotx.prepare.preprocess_stream) against the
whole-table path (morphotx.prepare.preprocess.preprocess_cp) on CDRP-shaped files of morphotx.data.cdrp_demo
(test preset): same kept and dropped features, same fitted parameters, same profiles (equal to
float32 rounding; the matrix product of sphering is the one place where batches could change the
order of sums), for both recipes and the normalisation variants the recipe choice tries."""

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import REPO
from morphotx import schema as S
from morphotx.data import convert, harmonise
from morphotx.data.cdrp_demo import cdrp_data
from morphotx.io import MorphotxInputError
from morphotx.prepare import preprocess, preprocess_stream, split
from morphotx.settings import MoaSettings, SplitSettings

FORMAT = REPO / "resources" / "datasets" / "cdrp_bray.yaml"


@pytest.fixture(scope="module")
def cdrp_h(tmp_path_factory):
    d = tmp_path_factory.mktemp("cdrp_stream")
    out = {"cell_painting": d / "cp.csv.gz", "l1000": d / "l1k.csv.gz", "probe_map": d / "probes.tsv",
           "moa_map": d / "moa.tsv"}
    cdrp_data(out, preset="test", seed=5)
    convert.convert(out["cell_painting"], d / "cp.parquet", FORMAT, "cell_painting")
    harmonise.harmonise(d / "cp.parquet", d / "cp_h.parquet", FORMAT, "cell_painting",
                        moa=MoaSettings(source="map", map_key="broad_id"), moa_map=out["moa_map"])
    split.split_compounds([d / "cp_h.parquet"], d / "split.parquet",
                          SplitSettings(fractions={"train": 0.6, "validation": 0.2, "test": 0.2}, seed=1, folds=1))
    return d


def _both(d, tag, batch_rows=300, **kw):
    args = [str(d / "cp_h.parquet"), str(d / "split.parquet")]
    a = [str(d / f"{tag}_a{x}") for x in (".parquet", ".json", ".npz")]
    b = [str(d / f"{tag}_b{x}") for x in (".parquet", ".json", ".npz")]
    preprocess.preprocess_cp(*args, *a, **kw)
    preprocess_stream.preprocess_cp(*args, *b, batch_rows=batch_rows, **kw)
    return a, b


@pytest.mark.parametrize("tag, kw", [
    ("standard", {}),
    ("study", {"recipe": "study"}),
    ("standardize_no_sphering", {"normalize": {"method": "standardize"}, "sphere": {"method": "none"}}),
    ("global_robustize", {"normalize": {"method": "robustize", "by": "global"}}),
])
def test_streamed_preprocessing_equals_the_whole_table_path(cdrp_h, tag, kw):
    a, b = _both(cdrp_h, tag, **kw)
    A, B = pd.read_parquet(a[0]), pd.read_parquet(b[0])
    assert json.loads(open(a[1]).read()) == json.loads(open(b[1]).read())  # kept / dropped features, settings
    pa_, pb = np.load(a[2]), np.load(b[2])
    assert sorted(pa_.files) == sorted(pb.files)
    for k in pa_.files:  # centres, scales, sphering matrix: fitted on the same rows in the same order
        np.testing.assert_array_equal(pa_[k], pb[k], err_msg=k)
    assert list(A.columns) == list(B.columns) and (A.dtypes == B.dtypes).all()
    meta = S.meta_columns(A)
    pd.testing.assert_frame_equal(A[meta], B[meta])
    feats = S.feature_columns(A)
    assert len(feats) > 50 and A[feats].dtypes.eq(np.float32).all()
    np.testing.assert_allclose(B[feats].to_numpy(), A[feats].to_numpy(), rtol=1e-6, atol=1e-6)
    # written in row groups of batch_rows rows
    assert pq.ParquetFile(b[0]).metadata.num_row_groups == -(-len(A) // 300)


def test_streamed_preprocessing_names_a_plate_without_dmso(cdrp_h, tmp_path):
    df = pd.read_parquet(cdrp_h / "cp_h.parquet")
    plate = df[S.PLATE].iloc[0]
    df = df[~((df[S.PLATE] == plate) & df[S.IS_CONTROL])]
    df.to_parquet(tmp_path / "h.parquet")
    with pytest.raises(MorphotxInputError, match=f"plate {plate} has 0 DMSO well"):
        preprocess_stream.preprocess_cp(str(tmp_path / "h.parquet"), str(cdrp_h / "split.parquet"),
                                        *(str(tmp_path / f"o{x}") for x in (".parquet", ".json", ".npz")))
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize("n, d", [(900, 120), (60, 80)])  # more DMSO wells than features (thin SVD); fewer
@pytest.mark.parametrize("method", ["ZCA", "PCA", "ZCA-cor"])
def test_spherize_fit_without_the_n_by_n_matrix_equals_pycytominer(n, d, method):
    """The same W as pycytominer's own fit (both with one BLAS thread, as preprocessing runs it)."""
    from pycytominer.operations.transform import Spherize
    from threadpoolctl import threadpool_limits

    from morphotx.prepare import spherize

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + 5.0)
    with threadpool_limits(limits=1, user_api="blas"):
        ref = Spherize(method=method, epsilon=1e-6, return_numpy=True).fit(X)
    ours = spherize.fit(Spherize(method=method, epsilon=1e-6, return_numpy=True), X)
    np.testing.assert_array_equal(ours.W, ref.W)
    assert np.linalg.svd is not spherize._svd  # the thin call is confined to pycytominer's module, during fit


@pytest.mark.parametrize("include_controls", [True, False])
def test_collapse_file_equals_collapse(cdrp_h, include_controls):
    from morphotx.prepare.collapse_file import collapse_file
    from morphotx.prepare.pairing import collapse

    _, b = _both(cdrp_h, "collapse")
    ref = collapse(pd.read_parquet(b[0]), include_controls=include_controls)
    got = collapse_file(b[0], include_controls=include_controls, columns_per_pass=37)
    assert len(ref) > 100 and S.feature_columns(ref)
    pd.testing.assert_frame_equal(got, ref)


def test_blockwise_pairwise_complete_correlation_equals_the_whole_table_one():
    from morphotx.prepare.preprocess import pairwise_complete_corr
    from morphotx.prepare.preprocess_stream import pairwise_complete_corr_blocks

    rng = np.random.default_rng(7)
    A = rng.standard_normal((500, 30)) @ rng.standard_normal((30, 30))
    A[rng.integers(0, 500, 40), rng.integers(0, 12, 40)] = np.nan  # missing values in 12 features
    A[:, 20] = 3.0  # constant: NaN row and column, as in pandas
    A[:, 21] = np.nan  # all missing
    A[:490, 22] = np.nan  # 10 values
    cols = np.arange(30)
    ref = pairwise_complete_corr(pd.DataFrame(A))
    for block in (64, 499, 10_000):
        got = pairwise_complete_corr_blocks(A, cols, block)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12, equal_nan=True)
    sub = np.array([3, 0, 25, 22])
    np.testing.assert_allclose(pairwise_complete_corr_blocks(A, sub, 77), pairwise_complete_corr(pd.DataFrame(A[:, sub])),
                               rtol=1e-12, atol=1e-12, equal_nan=True)


def test_streamed_preprocessing_reads_many_row_groups_alike(cdrp_h, tmp_path):
    """A harmonised file of many row groups (CDRP size: 10 of 16,384 rows) gives the same output
    as one of a single group, whatever the batch size."""
    a, b = _both(cdrp_h, "rowgroups")
    pq.write_table(pq.read_table(cdrp_h / "cp_h.parquet"), tmp_path / "h.parquet", row_group_size=333)
    assert pq.ParquetFile(tmp_path / "h.parquet").metadata.num_row_groups > 3
    out = [str(tmp_path / f"o{x}") for x in (".parquet", ".json", ".npz")]
    preprocess_stream.preprocess_cp(str(tmp_path / "h.parquet"), str(cdrp_h / "split.parquet"), *out, batch_rows=128)
    assert json.loads(open(out[1]).read()) == json.loads(open(b[1]).read())
    pd.testing.assert_frame_equal(pd.read_parquet(out[0]), pd.read_parquet(b[0]))
