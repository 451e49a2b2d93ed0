"""Reconstruction scores of the translator and the VAEs, on toys with known answers and on the tiny demo."""

import numpy as np
import pandas as pd
import pytest

from morphotx.reconstruction import r2_per_feature, reconstruction


def test_r2_per_feature_by_hand():
    target = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    r2, mse = r2_per_feature(target, target)
    assert r2[0] == 1.0 and np.isnan(r2[1]) and mse.tolist() == [0.0, 0.0]  # constant column: R² undefined
    r2, _ = r2_per_feature(target, np.full_like(target, 2.0))  # the held-out mean: R² 0
    assert r2[0] == pytest.approx(0.0)
    r2, mse = r2_per_feature(target, target[::-1])  # 1 − (4 + 0 + 4) / 2
    assert r2[0] == pytest.approx(-3.0) and mse[0] == pytest.approx(8 / 3)


@pytest.mark.parametrize("name,cfg", [("t", {"family": "translator"}),
                                      ("v", {"family": "vae", "input": "concat", "unit": "collapsed"})])
def test_reconstruction_of_test_treatments(tiny_processed, tmp_path, name, cfg):
    from test_models import FAST, _inputs, _train

    out, _ = _train(tmp_path, tiny_processed, name, cfg, train={**FAST, "max_epochs": 4})
    table = reconstruction(name, cfg, FAST, out["checkpoint"], **_inputs(tiny_processed),
                               output=str(tmp_path / "r.parquet"))
    sets = pd.read_parquet(tiny_processed["sets"])
    n_test = int(((sets["Metadata_split"] == "test") & (sets["n_cp"] > 0) & (sets["n_l1000"] > 0)).sum())
    assert (table["n_treatments"] == n_test).all() and n_test > 0
    cp = pd.read_parquet(tiny_processed["cp_p"])
    n_cp = sum(c.startswith(("Cells_", "Cytoplasm_", "Nuclei_")) for c in cp.columns)
    if name == "t":
        assert len(table) == n_cp and set(table["modality"]) == {"cp"} and "Cells_DNA" in set(table["group"])
    else:
        assert set(table["modality"]) == {"cp", "l1000"} and (table["modality"] == "cp").sum() == n_cp
    assert np.isfinite(table["r2"]).mean() > 0.9 and (table["r2"] <= 1).all()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "r.parquet"), table)
