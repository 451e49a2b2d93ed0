"""The shipped real-data configs against the published facts: every S3 key, size and ETag of
config/lincs_pilot1.yaml, config/cdrp_bray.yaml and config/cdrp_bio.yaml equals the listing in
../shared/design/rosetta_format.md, the maps' checksums equal the real fixture files, and every config
passes the schema and builds the DAG (download → convert → harmonise → ...). Both CDRP configs run
CDRP-shaped files (morphotx.data.cdrp_demo) from a local S3 at their real keys to the headline."""

import hashlib
import re

import pandas as pd
import pytest
import yaml

from conftest import REAL, REPO, snakemake
from servers import http_files, moto_s3, s3_put

DESIGN = REPO.parent / "shared" / "design" / "rosetta_format.md"
PREFIX = "cpg0003-rosetta/broad/workspace/preprocessed_data/"
CONFIGS = ["lincs_pilot1", "cdrp_bray", "cdrp_bio"]
CDRP = ["cdrp_bray", "cdrp_bio"]
MIB = 1 << 20


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
    assert re.search(rf"^download\s+{4 if name in CDRP else 3}$", text, re.M)


@pytest.mark.workflow
@pytest.mark.parametrize("name", CDRP)
def test_cdrp_shaped_files_from_s3_at_the_real_keys_run_to_the_headline(tmp_path, name):
    """config/<name>.yaml as shipped (column map, MoA from the map, the real bucket and keys), with only
    the endpoint, the two objects' sizes and ETags (small CDRP-shaped files from morphotx.data.cdrp_demo,
    uploaded in 8 MiB parts like the real ones) and the maps' URLs overridden: download → convert →
    harmonise → split → preprocess → pair → train (one tiny test model) → headline."""
    from morphotx.data.cdrp_demo import cdrp_data

    cfg = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    web = tmp_path / "web"
    files = {"cell_painting": web / "cp.csv.gz", "l1000": web / "l1k.csv.gz", "probe_map": web / "probes.tsv",
             "moa_map": web / "moa.tsv"}
    summary = cdrp_data(files, preset="test", seed=1 if name == "cdrp_bray" else 2)
    sources = cfg["download"]["sources"]
    with moto_s3() as endpoint, http_files(web) as base:
        for item in ("cell_painting", "l1000"):
            data = files[item].read_bytes()
            etag = s3_put(endpoint, sources[item]["bucket"], sources[item]["key"], data, part_size=8 * MIB)
            assert etag.endswith("-1")  # a multipart ETag, as the real objects have
            sources[item].update(size=len(data), etag=etag)
        for item in ("probe_map", "moa_map"):
            data = files[item].read_bytes()
            sources[item] = {"url": f"{base}/{files[item].name}", "size": len(data),
                             "sha256": hashlib.sha256(data).hexdigest()}
        cfg["download"].update(endpoint_url=endpoint, progress=False, backoff_s=0.05)
        # one model per config (a family each) keeps the two runs to a few minutes
        res = snakemake(tmp_path / "wf", f"results/{name}/leaderboard/headline.parquet", config=cfg,
                        models=["supcon"] if name == "cdrp_bray" else ["vae_mmd_cp"])
    assert res.returncode == 0, res.stderr[-4000:]
    out = tmp_path / "wf" / "results" / name
    for item in ("cell_painting", "l1000"):
        key = sources[item]["key"]
        assert (out / "download" / item / key.rsplit("/", 1)[1]).read_bytes() == files[item].read_bytes()
    sets = pd.read_parquet(out / "pairs" / "fold0" / "treatment_sets.parquet")
    assert set(summary["cp_only"]) <= set(sets.loc[sets.n_l1000 == 0, "Metadata_pert_id"])
    assert set(summary["l1000_only"]) <= set(sets.loc[sets.n_cp == 0, "Metadata_pert_id"])
    assert len(sets) == summary["treatments"]  # every treatment of either side, none lost to a key mismatch
    head = pd.read_parquet(out / "leaderboard" / "headline.parquet")
    assert len(head) > 0
    assert (out / "leaderboard" / "headline.md").exists()
