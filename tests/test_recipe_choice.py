import json

import numpy as np
import pandas as pd
import pytest

from morphotx import schema as S
from morphotx.io import MorphotxInputError
from morphotx.prepare.preprocess import preprocess_cp
from morphotx.prepare.recipe_choice import merged_settings, recipe_arguments
from morphotx.prepare.recipe_choice import preprocess_cp as choose_cp_recipe
from morphotx.settings import CellPaintingPreprocessSettings as Recipe
from morphotx.settings import SphereSettings

pytestmark = pytest.mark.slow  # ~10–15 s each (every candidate preprocessed and scored)

# a recipe that keeps only the Zernike shape features: valid, and far less informative
FEW = {"drop_patterns": ["^(?!Cells_AreaShape_Zernike).*$"]}
CANDIDATES = {"configured": {}, "no_sphering": {"sphere": {"method": "none"}}, "few_features": FEW}


def outputs(d, tag=""):
    return dict(preprocessed=str(d / f"p{tag}.parquet"), features_json=str(d / f"p{tag}.json"),
                params_npz=str(d / f"p{tag}.npz"), choice=str(d / f"choice{tag}.tsv"))


def test_the_recipe_best_on_validation_is_kept_and_its_files_are_the_split_s(tiny_processed, tmp_path):
    p = tiny_processed
    table = choose_cp_recipe(p["cp_h"], p["split"], **outputs(tmp_path), settings=Recipe(candidates=CANDIDATES))
    assert list(table["recipe"]) == list(CANDIDATES)
    scores = table.set_index("recipe")["validation_macro_f1"]
    assert scores.notna().all()
    assert scores["few_features"] < scores[["configured", "no_sphering"]].max()
    chosen = table.loc[table["chosen"], "recipe"].tolist()
    assert chosen == [scores.idxmax()]
    assert json.loads(table.set_index("recipe").loc["no_sphering", "overrides"]) == {"sphere": {"method": "none"}}
    # the split's profiles are the chosen recipe's, byte for byte as preprocess_cp writes them
    ref = {k: str(tmp_path / f"ref.{k}") for k in ("parquet", "json", "npz")}
    preprocess_cp(p["cp_h"], p["split"], ref["parquet"], ref["json"], ref["npz"],
                  **recipe_arguments(merged_settings(Recipe(), CANDIDATES[chosen[0]])))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p.parquet"), pd.read_parquet(ref["parquet"]))
    assert json.loads((tmp_path / "p.json").read_text()) == json.loads(open(ref["json"]).read())
    assert pd.read_csv(tmp_path / "choice.tsv", sep="\t")["chosen"].sum() == 1
    assert not list(tmp_path.glob(".recipes-*"))  # the candidates' files are gone


def test_test_compounds_do_not_move_the_recipe_choice(tiny_processed, tmp_path):
    p = tiny_processed
    base = choose_cp_recipe(p["cp_h"], p["split"], **outputs(tmp_path, "a"), settings=Recipe(candidates=CANDIDATES))
    cp = pd.read_parquet(p["cp_h"])
    test = set(pd.read_parquet(p["split"]).query(f"{S.SPLIT} == 'test'")[S.PERT])
    rows = cp[S.PERT].isin(test).to_numpy()
    assert rows.any()
    feats = S.feature_columns(cp)
    cp[feats] = cp[feats].astype("float64")
    cp.loc[rows, feats] = np.random.default_rng(0).normal(50, 30, size=(rows.sum(), len(feats)))
    moved = tmp_path / "cp_moved.parquet"
    cp.to_parquet(moved)
    again = choose_cp_recipe(str(moved), p["split"], **outputs(tmp_path, "b"), settings=Recipe(candidates=CANDIDATES))
    pd.testing.assert_frame_equal(base, again)


def test_one_candidate_is_the_configured_recipe_unscored(tiny_processed, tmp_path):
    p = tiny_processed
    table = choose_cp_recipe(p["cp_h"], p["split"], **outputs(tmp_path), settings=Recipe(sphere=SphereSettings(method="none")))
    assert table["recipe"].tolist() == ["configured"] and table["validation_macro_f1"].isna().all()
    ref = tmp_path / "ref.parquet"
    preprocess_cp(p["cp_h"], p["split"], str(ref), str(tmp_path / "r.json"), str(tmp_path / "r.npz"),
                  sphere={"method": "none"})
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p.parquet"), pd.read_parquet(ref))


def test_a_recipe_that_cannot_apply_is_left_out_and_none_applying_is_one_clear_error(tiny_processed, tmp_path):
    p = tiny_processed
    nothing = {"drop_patterns": [".*"]}  # no feature survives
    table = choose_cp_recipe(p["cp_h"], p["split"], **outputs(tmp_path), settings=Recipe(candidates={"nothing": nothing, "configured": {}}))
    row = table.set_index("recipe")
    assert row.loc["nothing", "best_configuration"].startswith("failed") and not row.loc["nothing", "chosen"]
    assert row.loc["configured", "chosen"]
    out = outputs(tmp_path, "x")
    with pytest.raises(MorphotxInputError, match="no candidate of preprocess.cell_painting.candidates"):
        choose_cp_recipe(p["cp_h"], p["split"], **out, settings=Recipe(candidates={"a": nothing, "b": nothing}))
    assert not any((tmp_path / f).exists() for f in ("px.parquet", "choicex.tsv"))  # nothing half-written
    with pytest.raises(MorphotxInputError, match=r"candidates\.x: unknown key.*spheres"):
        merged_settings(Recipe(), {"spheres": {"method": "none"}}, "x")
    with pytest.raises(MorphotxInputError, match=r"candidates\.x\.sphere\.method is 'zca'; expected one of"):
        merged_settings(Recipe(), {"sphere": {"method": "zca"}}, "x")
    base = Recipe(sphere=SphereSettings(method="ZCA", epsilon=0.1))
    assert merged_settings(base, {"sphere": {"method": "none"}}).sphere == SphereSettings(method="none", epsilon=0.1)
