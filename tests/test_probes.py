import numpy as np
import pandas as pd
import pytest

from conftest import real_fixture
from morphotx import schema as S
from morphotx.data.probes import load_probe_map, map_probes, map_probes_frame
from morphotx.io import MorphotxInputError, read_gct
from morphotx.settings import ProbeMapSettings


def _profiles():
    return pd.DataFrame({"Metadata_x": ["a", "b"], "1_at": [1.0, 2.0], "2_at": [3.0, 6.0], "3_at": [5.0, 5.0],
                         "4_s_at": [7.0, 8.0]})


def test_duplicates_mean_and_first():
    mapping = pd.Series({"1_at": "G1", "2_at": "G1", "3_at": "G3"})
    out, rep = map_probes_frame(_profiles(), mapping, duplicates="mean")
    assert out["G1"].tolist() == [2.0, 4.0] and rep["duplicated_genes"] == {"G1": ["1_at", "2_at"]}
    out, _ = map_probes_frame(_profiles(), mapping, duplicates="first")
    assert out["G1"].tolist() == [1.0, 2.0]


def test_unmapped_drop_and_keep():
    mapping = pd.Series({"1_at": "G1", "2_at": "", "3_at": "G3"})
    out, rep = map_probes_frame(_profiles(), mapping, unmapped="drop")
    assert S.feature_columns(out) == ["G1", "G3"] and rep["unmapped"] == ["2_at", "4_s_at"]
    out, _ = map_probes_frame(_profiles(), mapping, unmapped="keep")
    assert sorted(S.feature_columns(out)) == ["2_at", "4_s_at", "G1", "G3"]


def test_no_probe_in_map_is_an_error(tmp_path):
    prof = tmp_path / "p.parquet"
    _profiles().to_parquet(prof)
    mp = tmp_path / "map.tsv"
    pd.DataFrame({"probe_id": ["x_at"], "symbol": ["X"]}).to_csv(mp, sep="\t", index=False)
    with pytest.raises(MorphotxInputError, match="none of the 4 probe columns"):
        map_probes(prof, tmp_path / "o.parquet", mp)
    assert not (tmp_path / "o.parquet").exists()


def test_wrong_map_column(tmp_path):
    mp = tmp_path / "map.tsv"
    pd.DataFrame({"probe": ["x_at"], "symbol": ["X"]}).to_csv(mp, sep="\t", index=False)
    with pytest.raises(MorphotxInputError, match="no column 'probe_id'"):
        load_probe_map(mp)


def test_demo_map(tiny_processed):
    genes = pd.read_parquet(tiny_processed["l1k_g"])
    assert len(S.feature_columns(genes)) == 976  # 978 probes, 1 unmapped, 2 of one gene merged


def test_real_xlsx_map_against_gct_symbols():
    gct = real_fixture("l1000_level3_A375_plate_LJP005.gct.gz")
    xlsx = real_fixture("l1000_probe_gene_idmap.xlsx")
    data, rows, _ = read_gct(gct)
    profiles = pd.concat([pd.DataFrame({"Metadata_cid": data.index}), data.reset_index(drop=True)], axis=1)
    truth = rows["pr_gene_symbol"]
    for column, expected_agree in (("symbol", 927), ("query", 958)):
        mapping = load_probe_map(xlsx, symbol_column=column)
        out, rep = map_probes_frame(profiles, mapping, unmapped="keep")
        assert rep["unmapped"] == [] and rep["duplicated_genes"] == {}
        got = mapping.reindex(truth.index)
        agree = int((got == truth).sum())
        assert agree == expected_agree  # documented in morphotx.data.probes
        # values carried unchanged under the new names
        probe = truth.index[0]
        assert np.array_equal(out[mapping[probe]].to_numpy(), data[probe].to_numpy())


def test_real_gct_as_its_own_map():
    gct = real_fixture("l1000_level3_A375_plate_LJP005.gct.gz")
    mapping = load_probe_map(gct)
    _, rows, _ = read_gct(gct)
    assert mapping.reindex(rows.index).tolist() == rows["pr_gene_symbol"].tolist()


def test_probe_with_two_symbols_is_an_error_unless_first_row_is_asked(tmp_path, caplog):
    mp = tmp_path / "map.tsv"
    pd.DataFrame({"probe_id": ["1_at", "1_at", "2_at"], "symbol": ["G1", "G9", "G2"]}).to_csv(mp, sep="\t", index=False)
    with pytest.raises(MorphotxInputError, match=r"1 probe\(s\) listed with different symbols.*1_at.*G1.*G9.*conflicts: first"):
        load_probe_map(mp)
    with caplog.at_level("WARNING"):
        assert load_probe_map(mp, conflicts="first").to_dict() == {"1_at": "G1", "2_at": "G2"}
    assert "first row wins" in caplog.text


def test_unmapped_probes_warn_and_stop_above_the_threshold(tmp_path, caplog):
    prof = tmp_path / "p.parquet"
    _profiles().to_parquet(prof)
    mp = tmp_path / "map.tsv"
    pd.DataFrame({"probe_id": ["1_at", "2_at", "3_at"], "symbol": ["G1", "G2", "G3"]}).to_csv(mp, sep="\t", index=False)
    out = tmp_path / "o.parquet"
    with pytest.raises(MorphotxInputError, match=r"1 of 4 probes .*25%.*4_s_at.*max_unmapped"):
        map_probes(prof, out, mp, ProbeMapSettings(max_unmapped=0.2))
    assert not out.exists()
    with caplog.at_level("WARNING"):
        rep = map_probes(prof, out, mp, ProbeMapSettings(max_unmapped=0.3))
    assert rep["unmapped"] == ["4_s_at"] and out.exists() and "1 of 4 probes have no symbol" in caplog.text
