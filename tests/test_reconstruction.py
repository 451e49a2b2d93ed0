"""Reconstruction scores of the translator and the VAEs, on toys with known answers and on the tiny demo."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from morphotx.evaluate.reconstruction import feature_emd, r2_per_feature, reconstruction, sample_scores
from morphotx.models import resolve


def test_r2_per_feature_by_hand():
    target = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    r2, mse = r2_per_feature(target, target)
    assert r2[0] == 1.0 and np.isnan(r2[1]) and mse.tolist() == [0.0, 0.0]  # constant column: R² undefined
    r2, _ = r2_per_feature(target, np.full_like(target, 2.0))  # the held-out mean: R² 0
    assert r2[0] == pytest.approx(0.0)
    r2, mse = r2_per_feature(target, target[::-1])  # 1 − (4 + 0 + 4) / 2
    assert r2[0] == pytest.approx(-3.0) and mse[0] == pytest.approx(8 / 3)


def test_sample_scores_and_feature_emd_by_hand():
    target = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]])
    pred = np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 3.0]])
    s = sample_scores(target, pred)
    # row 0: the same values in another order: MSE (4 + 0 + 4) / 3 but no distance between the
    # distributions; row 1: every value moved by 1
    assert s["mse"].tolist() == pytest.approx([8 / 3, 1.0]) and s["emd"].tolist() == pytest.approx([0.0, 1.0])
    d = feature_emd(np.array([[0.0], [0.0]]), np.array([[1.0], [1.0], [1.0]]))  # row counts may differ
    assert d.tolist() == pytest.approx([1.0])
    assert feature_emd(target, target[::-1]).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("name,cfg", [("t", {"family": "translator"}),
                                      ("v", {"family": "vae", "input": "concat", "unit": "collapsed"})])
def test_reconstruction_of_test_treatments(tiny_processed, tmp_path, name, cfg):
    from test_models import FAST, _inputs, _train

    out, hist = _train(tmp_path, tiny_processed, name, cfg, train=replace(FAST, max_epochs=4))
    table = reconstruction(name, resolve(name, cfg), FAST, out["checkpoint"], **_inputs(tiny_processed),
                           output=str(tmp_path / "r.parquet"), samples_out=str(tmp_path / "s.parquet"),
                           history=out["history"], curves_out=str(tmp_path / "h.parquet"))
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
    assert (table["emd_reconstructed"] >= 0).all()
    samples, curves = pd.read_parquet(tmp_path / "s.parquet"), pd.read_parquet(tmp_path / "h.parquet")
    assert "seconds" not in curves.columns  # wall times are not results: same config, same tables
    real = samples[samples["data"] == "real"]
    assert len(real) == n_test and (real[["mse", "emd"]] >= 0).all().all()
    assert real["mse"].mean() == pytest.approx(table["mse"].mean())  # the same squared errors, both ways
    assert curves.loc[curves["data"] == "real", "val_loss"].tolist() == hist["val_loss"].tolist()
    if name == "t":  # no simulation nor shuffled control for the translator
        assert table["emd_simulated"].isna().all() and set(samples["data"]) == {"real"}
        assert set(curves["data"]) == {"real"}
    else:
        assert (table["emd_simulated"] > 0).all()
        shuffled = samples[samples["data"] == "shuffled"]
        assert len(shuffled) == n_test and set(shuffled["treatment"]) == set(real["treatment"])
        assert set(curves["data"]) == {"real", "shuffled"}
        assert len(curves[curves["data"] == "shuffled"]) >= 1


def test_reconstruction_figure_without_decoder_models(tmp_path):
    """A run whose models have no decoder (no translator, no VAE) gets an empty reconstruction
    table; its figure says so instead of failing."""
    from morphotx.report.figures import reconstruction_r2

    pd.DataFrame().to_parquet(tmp_path / "empty.parquet")
    reconstruction_r2(str(tmp_path / "empty.parquet"), str(tmp_path / "r2.png"))
    assert (tmp_path / "r2.png").stat().st_size > 1000
