"""`make bench-cdrp-bio`'s config (config/cdrp_bio_sim.yaml, layered on config/config.yaml and
config/cdrp_bio.yaml as benchmarks/bench_cdrp_bio.py layers it): valid, the real CDRP column map, the
models the script's report and --raw-only assume, and the CDRP-bio size derived from the published
file sizes."""

import sys

import yaml
from snakemake.utils import update_config, validate

from conftest import REPO
from morphotx.configcheck import check_config_keys
from morphotx.data.cdrp_demo import params_for

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_cdrp_bio  # noqa: E402

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def layered(*names: str) -> dict:
    cfg: dict = {}
    for name in ("config", *names):
        update_config(cfg, yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text()))
    return cfg


def enabled(cfg: dict) -> set[str]:
    return {n for n, m in cfg["models"].items() if m.get("enabled", True)}


def test_layered_config_is_valid_and_reads_the_files_through_the_real_cdrp_map():
    cfg = layered("cdrp_bio", "cdrp_bio_sim")
    check_config_keys(cfg, str(SCHEMA))
    validate(cfg, str(SCHEMA))
    assert cfg["dataset"] == {"name": "cdrp_bio_sim", "source": "files", "format": "resources/datasets/cdrp_bray.yaml"}
    assert cfg["moa"]["source"] == "map" and set(cfg["inputs"]) == set(bench_cdrp_bio.FILES)
    assert cfg["split"]["folds"] * cfg["split"]["repeats"] >= 5


def test_learned_models_are_the_scripts_and_raw_only_switches_them_off():
    cfg = layered("cdrp_bio", "cdrp_bio_sim")
    assert enabled(cfg) == set(bench_cdrp_bio.LEARNED)
    update_config(cfg, {"models": {m: {"enabled": False} for m in bench_cdrp_bio.LEARNED}})  # what --raw-only adds
    assert enabled(cfg) == set()


def test_size_is_cdrp_bio_share_of_the_full_cdrp():
    # the published compressed sizes of the two Cell Painting files (config/cdrp_bray.yaml, config/cdrp_bio.yaml)
    bray = yaml.safe_load((REPO / "config" / "cdrp_bray.yaml").read_text())["download"]["sources"]["cell_painting"]
    bio = yaml.safe_load((REPO / "config" / "cdrp_bio.yaml").read_text())["download"]["sources"]["cell_painting"]
    assert (bench_cdrp_bio.REAL_CDRP_CP_BYTES, bench_cdrp_bio.REAL_BIO_CP_BYTES) == (bray["size"], bio["size"])
    p = params_for("full", bench_cdrp_bio.BIO_SCALE, annotated_fraction=bench_cdrp_bio.ANNOTATED_FRACTION)
    full = params_for("full")
    assert abs(p.n_compounds / full.n_compounds - bio["size"] / bray["size"]) < 1e-3
    # only the compound count and the annotated share differ from the preset (the simulator's biology is kept)
    assert {k for k, v in p.__dict__.items() if v != full.__dict__[k]} == {"n_compounds", "annotated_fraction"}
