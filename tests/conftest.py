import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "fixtures" / "real"
FORMAT = REPO / "resources" / "datasets" / "lincs_pilot1.yaml"

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

DEFAULT_MODELS = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["models"]
# the workflow tests' configuration (.test/config/config.yaml, the catalog convention): the tiny
# demo, two folds, one seed, a few epochs, one model per family
TEST_CONFIG = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
TEST_MODELS = [n for n, m in TEST_CONFIG["models"].items() if m.get("enabled", True)]


# snakemake-executor-plugin-slurm runs `scontrol show config` when Snakemake starts (to word its help
# text). On a machine where SLURM is installed but no controller runs, that waits 9 s per start
# (its timeout is 10 s). Tests that do not use SLURM put this failing stand-in first on PATH.
NO_SLURM_BIN = Path(__file__).resolve().parent / "no_slurm_bin"


def snakemake(workdir: Path, *args, config: dict | None = None, models=TEST_MODELS, slurm: bool = False):
    cfg = {**TEST_CONFIG, "models": {n: {"enabled": n in models} for n in DEFAULT_MODELS}}
    cfg.update(config or {})
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [SNAKEMAKE, "-s", str(REPO / "workflow" / "Snakefile"), "--directory", str(workdir), "--configfile",
           str(workdir / "cfg.yaml"), "--cores", "2", *args]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if not slurm:
        env["PATH"] = f"{NO_SLURM_BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def real_fixture(name: str) -> Path:
    """Path of a file in ../shared/fixtures/real, or skip the test with the reason."""
    path = REAL / name
    if not path.exists():
        pytest.skip(f"real fixture {name} not available: ../shared/fixtures/real is absent beside the repo")
    return path


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory):
    """The tiny demo written once per session in the Rosetta schemas."""
    from morphotx.data.demo import demo_data
    from morphotx.settings import DemoSettings

    d = tmp_path_factory.mktemp("raw")
    out = {
        "cell_painting": d / "cp.csv.gz",
        "l1000": d / "l1000.csv.gz",
        "probe_map": d / "probe_map.tsv",
        "moa_map": d / "moa_map.tsv",
        "ground_truth": d / "ground_truth.parquet",
    }
    demo_data({k: str(v) for k, v in out.items()}, DemoSettings(scale="tiny", seed=3))
    return out


@pytest.fixture(scope="session")
def tiny_processed(tiny_raw, tmp_path_factory):
    """Harmonised, mapped, split, preprocessed and paired tiny demo (library calls, no Snakemake)."""
    from morphotx.data import harmonise, probes
    from morphotx.prepare import pairing, preprocess, split
    from morphotx.settings import SplitSettings

    d = tmp_path_factory.mktemp("proc")
    p = {k: d / v for k, v in {
        "cp_h": "cp_h.parquet", "l1k_h": "l1k_h.parquet", "l1k_g": "l1k_g.parquet", "split": "split.parquet",
        "cp_p": "cp_p.parquet", "cp_json": "cp_p.features.json", "cp_npz": "cp_p.params.npz",
        "l1k_p": "l1k_p.parquet", "l1k_json": "l1k_p.features.json", "l1k_npz": "l1k_p.params.npz",
        "pairs": "pairs.parquet", "sets": "sets.parquet", "cp_c": "cp_c.parquet", "l1k_c": "l1k_c.parquet",
    }.items()}
    harmonise.harmonise(tiny_raw["cell_painting"], p["cp_h"], FORMAT, "cell_painting")
    harmonise.harmonise(tiny_raw["l1000"], p["l1k_h"], FORMAT, "l1000")
    probes.map_probes(p["l1k_h"], p["l1k_g"], tiny_raw["probe_map"])
    split.split_compounds([p["cp_h"], p["l1k_g"]], p["split"],
                          SplitSettings(fractions={"train": 0.6, "validation": 0.2, "test": 0.2}, seed=1, folds=1))
    preprocess.preprocess_cp(p["cp_h"], p["split"], p["cp_p"], p["cp_json"], p["cp_npz"])
    preprocess.preprocess_l1000(p["l1k_g"], p["split"], p["l1k_p"], p["l1k_json"], p["l1k_npz"])
    pairing.pair(p["cp_p"], p["l1k_p"], p["pairs"], p["sets"], p["cp_c"], p["l1k_c"])
    return p


@pytest.fixture
def caplog_info(caplog):
    caplog.set_level(logging.INFO)
    return caplog


@pytest.fixture
def splits_read(monkeypatch):
    """The splits the models' data loader is asked for (a spy on ``ModelData.items``)."""
    from morphotx.models.data import ModelData

    asked = []
    orig = ModelData.items

    def spy(self, unit, split, modalities):
        asked.append(split)
        return orig(self, unit, split, modalities)

    monkeypatch.setattr(ModelData, "items", spy)
    return asked
