import numpy as np
import pandas as pd

from morphotx import schema as S
from morphotx.settings import SplitSettings


def test_pair_index_is_the_cartesian_product_per_treatment(tiny_processed):
    cp = pd.read_parquet(tiny_processed["cp_p"])
    l1k = pd.read_parquet(tiny_processed["l1k_p"])
    pairs = pd.read_parquet(tiny_processed["pairs"])
    n_cp = cp[~cp[S.IS_CONTROL]].groupby(S.TREATMENT).size()
    n_l1 = l1k[~l1k[S.IS_CONTROL]].groupby(S.TREATMENT).size()
    expected = (n_cp * n_l1).dropna().sum()
    assert len(pairs) == expected and not pairs.duplicated(["cp_row", "l1000_row"]).any()
    assert "DMSO" not in set(pairs[S.TREATMENT])
    # positions and ids point at the same rows, and both rows carry the pair's treatment
    assert (cp[S.PROFILE_ID].to_numpy()[pairs.cp_row] == pairs.cp_id).all()
    assert (l1k[S.PROFILE_ID].to_numpy()[pairs.l1000_row] == pairs.l1000_id).all()
    assert (cp[S.TREATMENT].to_numpy()[pairs.cp_row] == pairs[S.TREATMENT]).all()
    assert (l1k[S.TREATMENT].to_numpy()[pairs.l1000_row] == pairs[S.TREATMENT]).all()
    # no feature columns in the index
    assert set(pairs.columns) == {S.TREATMENT, S.PERT, S.SPLIT, "cp_row", "l1000_row", "cp_id", "l1000_id"}


def test_sets_and_collapsed(tiny_processed):
    cp = pd.read_parquet(tiny_processed["cp_p"])
    sets = pd.read_parquet(tiny_processed["sets"])
    coll = pd.read_parquet(tiny_processed["cp_c"])
    row = sets.iloc[0]
    members = cp.iloc[list(row["cp_rows"])]
    assert (members[S.TREATMENT] == row[S.TREATMENT]).all() and len(members) == row["n_cp"]
    feats = S.feature_columns(cp)
    c = coll.set_index(S.TREATMENT).loc[row[S.TREATMENT]]
    np.testing.assert_allclose(c[feats].to_numpy(dtype=float), members[feats].median().to_numpy(), rtol=1e-5)
    assert c["Metadata_n_replicates"] == row["n_cp"]
    # a compound's split is carried everywhere, and one compound has one split
    assert coll.groupby(S.PERT)[S.SPLIT].nunique().max() == 1
    assert set(sets[S.SPLIT]) <= {"train", "validation", "test"}


def test_modalities_without_a_shared_treatment_stop_at_pairing(tiny_processed, tmp_path):
    """No shared treatment (e.g. different compound ids in the two files) is an error at pairing,
    naming both files and example keys, and nothing is written."""
    import pytest

    from morphotx.io import MorphotxInputError
    from morphotx.prepare.pairing import pair

    l1k = pd.read_parquet(tiny_processed["l1k_p"])
    l1k[S.TREATMENT] = "X" + l1k[S.TREATMENT].astype(str)  # no key matches Cell Painting's
    l1k[S.PERT] = "X" + l1k[S.PERT].astype(str)
    bad = tmp_path / "l1000.parquet"
    l1k.to_parquet(bad)
    outs = [tmp_path / f"{n}.parquet" for n in ("pairs", "sets", "cpc", "l1c")]
    with pytest.raises(MorphotxInputError, match=r"share no treatment.*compound id \+ recoded dose"):
        pair(tiny_processed["cp_p"], str(bad), *map(str, outs))
    assert not any(o.exists() for o in outs)


def test_well_holdout_pairs_only_same_split_replicates(tiny_processed, tmp_path):
    """``split.mode: well_holdout``: the one-compound-one-split invariant above is relaxed, and only
    there: a compound has rows in train and test. What still holds: a pair joins a Cell Painting
    and an L1000 row of the same split (the treatment key carries it), every treatment and
    collapsed profile has one split, and no collapsed profile mixes replicates of two splits."""
    from morphotx.prepare import preprocess
    from morphotx.prepare.pairing import pair
    from morphotx.prepare.split import split_compounds

    p = {k: str(tmp_path / f"{k}.parquet") for k in ("split", "cp", "l1k", "pairs", "sets", "cpc", "l1c")}
    split_compounds([str(tiny_processed["cp_h"]), str(tiny_processed["l1k_g"])], p["split"],
                    SplitSettings(fractions={"train": 0.6, "validation": 0.1, "test": 0.3}, seed=0,
                                  mode="well_holdout", folds=1))
    preprocess.preprocess_cp(str(tiny_processed["cp_h"]), p["split"], p["cp"], str(tmp_path / "cp.json"),
                             str(tmp_path / "cp.npz"))
    preprocess.preprocess_l1000(str(tiny_processed["l1k_g"]), p["split"], p["l1k"], str(tmp_path / "l1k.json"),
                                str(tmp_path / "l1k.npz"))
    pair(p["cp"], p["l1k"], p["pairs"], p["sets"], p["cpc"], p["l1c"])
    cp, l1k, pairs = pd.read_parquet(p["cp"]), pd.read_parquet(p["l1k"]), pd.read_parquet(p["pairs"])
    assert (cp[S.SPLIT].to_numpy()[pairs.cp_row] == pairs[S.SPLIT]).all()
    assert (l1k[S.SPLIT].to_numpy()[pairs.l1000_row] == pairs[S.SPLIT]).all()
    assert (pairs[S.TREATMENT].str.rsplit("@", n=1).str[1] == pairs[S.SPLIT]).all()
    coll = pd.read_parquet(p["cpc"])
    treated = coll[~coll[S.IS_CONTROL]]
    assert treated.groupby(S.TREATMENT)[S.SPLIT].nunique().max() == 1
    assert (treated.groupby(S.PERT)[S.SPLIT].nunique() > 1).all()  # the relaxed invariant
    reps = cp[~cp[S.IS_CONTROL]].groupby(S.TREATMENT)[S.SPLIT].nunique()
    assert reps.max() == 1 and set(pd.read_parquet(p["sets"])[S.SPLIT]) <= {"train", "validation", "test", "excluded"}
