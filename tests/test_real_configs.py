"""The shipped real-data configs against the published facts: every S3 key, size and ETag of
config/lincs_pilot1.yaml and config/cdrp_bray.yaml equals the listing in
../shared/design/rosetta_format.md, the maps' checksums equal the real fixture files, and both configs
pass the schema and build the DAG (download → convert → harmonise → ...)."""

import hashlib
import re

import pytest
import yaml

from conftest import REAL, REPO, snakemake

DESIGN = REPO.parent / "shared" / "design" / "rosetta_format.md"
PREFIX = "cpg0003-rosetta/broad/workspace/preprocessed_data/"
CONFIGS = ["lincs_pilot1", "cdrp_bray"]


def _listing() -> dict[str, tuple[int, str]]:
    if not DESIGN.exists():
        pytest.skip("../shared/design/rosetta_format.md is absent beside the repo")
    rows = re.findall(r"^\| ([\w./-]+\.csv\.gz) \| ([\d,]+) \| `([0-9a-f]{32}-\d+)` \|$", DESIGN.read_text(), re.M)
    assert len(rows) >= 9
    return {PREFIX + path: (int(size.replace(",", "")), etag) for path, size, etag in rows}


@pytest.mark.parametrize("name", CONFIGS)
def test_s3_sources_match_the_published_listing(name):
    listing = _listing()
    cfg = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    s3 = {k: v for k, v in cfg["download"]["sources"].items() if "key" in v}
    assert set(s3) == {"cell_painting", "l1000"}
    for item, src in s3.items():
        assert src["bucket"] == "cellpainting-gallery"
        assert src["key"] in listing, f"{name}: {item} key {src['key']} is not in the published listing"
        assert (src["size"], src["etag"]) == listing[src["key"]], item
    assert "augmented" in s3["cell_painting"]["key"]  # not yet normalised: the workflow normalises to DMSO


@pytest.mark.parametrize("name", CONFIGS)
def test_map_checksums_equal_the_real_files(name):
    cfg = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    files = {"probe_map": "l1000_probe_gene_idmap.xlsx", "moa_map": "repurposing_info_external_moa_map_resolved.tsv"}
    for item, fname in files.items():
        path = REAL / fname
        if not path.exists():
            pytest.skip(f"real fixture {fname} not available: ../shared/fixtures/real is absent beside the repo")
        src = cfg["download"]["sources"][item]
        data = path.read_bytes()
        assert src["sha256"] == hashlib.sha256(data).hexdigest() and src["size"] == len(data), item


@pytest.mark.workflow
@pytest.mark.parametrize("name", CONFIGS)
def test_config_validates_and_builds_the_dag(tmp_path, name):
    res = snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / f"{name}.yaml"), config={})
    text = res.stdout + res.stderr
    assert res.returncode == 0, text[-3000:]
    for rule in ["download", "convert", "harmonise", "map_probes", "preprocess_cp", "train_model", "leaderboard"]:
        assert re.search(rf"^{rule}\s+\d+", text, re.M), rule
    # cell painting, l1000, probe map; the MoA map only where moa.source is map (CDRP)
    assert re.search(rf"^download\s+{4 if name == 'cdrp_bray' else 3}$", text, re.M)
