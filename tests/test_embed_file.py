"""morphotx.embed_file (morphotx.models.batch_embed): a trained model's embeddings of a whole preprocessed Parquet file, read and
written in row batches (seed 003's use case at screen size), equal to morphotx.embed_profiles on
the same rows; bad input named."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from morphotx.io import MorphotxInputError
from morphotx.models import embed_file, embed_profiles, resolve, train_model
from morphotx.settings import TrainSettings

FAST = TrainSettings(max_epochs=2, patience=2, progress=False)


@pytest.fixture(scope="module")
def checkpoint(tiny_processed, tmp_path_factory):
    d = tmp_path_factory.mktemp("embed_file")
    out = {k: str(d / f"s.{k}") for k in ("checkpoint", "history", "params")}
    train_model("s", resolve("s", {"family": "supcon"}), FAST, cp=str(tiny_processed["cp_p"]), l1000=str(tiny_processed["l1k_p"]),
                pairs=str(tiny_processed["pairs"]), sets=str(tiny_processed["sets"]), **out, seed=0)
    return out["checkpoint"]


@pytest.mark.parametrize("which", ["cp_p", "cp_c"])  # every well; every treatment's median profile
def test_embed_file_equals_embed_profiles_batch_by_batch(tiny_processed, checkpoint, tmp_path, which):
    src = str(tiny_processed[which])
    res = embed_file(checkpoint, src, str(tmp_path / "e.parquet"), view="cp", batch_rows=50)
    got = pd.read_parquet(tmp_path / "e.parquet")
    ref = embed_profiles(checkpoint, cp=pd.read_parquet(src), view="cp")
    emb = [c for c in ref.columns if c.startswith("emb_")]
    assert res["rows"] == len(ref) == len(got) and res["dimension"] == len(emb)
    assert list(got.columns) == list(ref.columns)
    for c in ref.columns:
        if c.startswith("Metadata_") and c != "Metadata_moa":
            assert got[c].astype(str).tolist() == ref[c].astype(str).tolist(), c
    assert got[emb].dtypes.eq(np.float32).all()
    np.testing.assert_allclose(got[emb].to_numpy(), ref[emb].to_numpy(), rtol=1e-5, atol=1e-6)
    assert pq.ParquetFile(tmp_path / "e.parquet").metadata.num_row_groups == -(-len(ref) // 50)


def test_embed_file_names_missing_features_and_views(tiny_processed, checkpoint, tmp_path):
    cp = pd.read_parquet(tiny_processed["cp_p"])
    feat = next(c for c in cp.columns if c.startswith("Cells_"))
    cp.drop(columns=feat).to_parquet(tmp_path / "less.parquet")
    with pytest.raises(MorphotxInputError, match=f"less.parquet.*missing.*{feat}"):
        embed_file(checkpoint, str(tmp_path / "less.parquet"), str(tmp_path / "e.parquet"))
    with pytest.raises(MorphotxInputError, match="has the views"):
        embed_file(checkpoint, str(tiny_processed["l1k_p"]), str(tmp_path / "e.parquet"), view="l1000")
    cp.loc[3, feat] = np.nan
    cp.to_parquet(tmp_path / "nan.parquet")
    with pytest.raises(MorphotxInputError, match="1 row.*NaN/inf.*first row 3"):
        embed_file(checkpoint, str(tmp_path / "nan.parquet"), str(tmp_path / "e.parquet"))
    assert not (tmp_path / "e.parquet").exists()
