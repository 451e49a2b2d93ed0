"""The real-data path against real servers on 127.0.0.1: moto's S3 server (multipart uploads, so
ETags carry ``-N``), a fault-injecting proxy in front of it (cut and corrupted transfers), and the
standard library's HTTP file server (the Zenodo/figshare case). Objects are the demo simulator's
files in the Rosetta schemas, stored at the real keys."""

import hashlib
import logging
import os
from pathlib import Path

import pandas as pd
import pytest

from conftest import FORMAT, snakemake
from morphotx import schema as S
from morphotx.data.download import (
    DownloadError,
    MiB,
    Settings,
    Source,
    check_etag,
    download,
    http_download,
    multipart_etag,
    s3_download,
)
from morphotx.io import MorphotxInputError
from morphotx.settings import DemoSettings, DownloadSettings
from servers import fault_proxy, http_files, moto_s3, s3_put

BUCKET = "cellpainting-gallery"
PREFIX = "cpg0003-rosetta/broad/workspace/preprocessed_data/LINCS-Pilot1"
CP_KEY = f"{PREFIX}/CellPainting/replicate_level_cp_augmented.csv.gz"
L1K_KEY = f"{PREFIX}/L1000/replicate_level_l1k.csv.gz"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto S3 with the tiny demo at the real keys: CP as a 3-part upload of 256 KiB parts (an unusual part
    size), L1000 as a 2-part upload of 2 MiB parts; plus small objects for the error cases."""
    from morphotx.data.demo import demo_data

    d = tmp_path_factory.mktemp("s3src")
    files = {k: str(d / f"{k}{ext}") for k, ext in [("cell_painting", ".csv.gz"), ("l1000", ".csv.gz"),
                                                    ("probe_map", ".tsv"), ("moa_map", ".tsv"),
                                                    ("ground_truth", ".parquet")]}
    demo_data(files, DemoSettings(scale="tiny", seed=11))
    import moto.s3.models as mm

    old_min = mm.S3_UPLOAD_PART_MIN_SIZE
    mm.S3_UPLOAD_PART_MIN_SIZE = 256 * 1024  # the server's minimum part size, lowered for small objects
    with moto_s3() as endpoint:
        cp = Path(files["cell_painting"]).read_bytes()
        l1k = Path(files["l1000"]).read_bytes()
        etags = {"cell_painting": s3_put(endpoint, BUCKET, CP_KEY, cp, part_size=256 * 1024),
                 "l1000": s3_put(endpoint, BUCKET, L1K_KEY, l1k, part_size=2 * MiB)}
        s3_put(endpoint, BUCKET, "empty/zero.csv.gz", b"")
        yield {"endpoint": endpoint, "files": files, "etags": etags, "bytes": {"cell_painting": cp, "l1000": l1k}}
    mm.S3_UPLOAD_PART_MIN_SIZE = old_min


def _src(s3, name, **kw):
    key = CP_KEY if name == "cell_painting" else L1K_KEY
    entry = {"bucket": BUCKET, "key": key, "size": len(s3["bytes"][name]), "etag": s3["etags"][name], **kw}
    return Source.from_config(name, entry)


def _settings(endpoint, **kw):
    return Settings(**{"endpoint_url": endpoint, "backoff_s": 0.05, "progress": False,
                       "part_sizes_mib": [8, 2], **kw})


def _leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_multipart_etag_equals_the_servers(s3, tmp_path):
    data = os.urandom(9 * MiB + 1234)  # 8 MiB parts, as the Rosetta uploads: 2 parts
    etag = s3_put(s3["endpoint"], BUCKET, "rand/nine.bin", data, part_size=8 * MiB)
    (tmp_path / "nine.bin").write_bytes(data)
    assert etag.endswith("-2") and multipart_etag(tmp_path / "nine.bin", 8 * MiB) == etag
    assert check_etag(tmp_path / "nine.bin", etag) is None
    plain = s3_put(s3["endpoint"], BUCKET, "rand/plain.bin", data[:1000])
    (tmp_path / "plain.bin").write_bytes(data[:1000])
    assert plain == hashlib.md5(data[:1000]).hexdigest() and check_etag(tmp_path / "plain.bin", plain) is None
    assert s3["etags"]["l1000"].endswith("-2") and s3["etags"]["cell_painting"].endswith("-3")
    assert multipart_etag(s3["files"]["l1000"], 2 * MiB) == s3["etags"]["l1000"]
    assert multipart_etag(s3["files"]["cell_painting"], 256 * 1024) == s3["etags"]["cell_painting"]
    # 8 MiB parts give one part here, so the 2-part ETag cannot match: the message says so
    assert "gives 2 parts" in check_etag(s3["files"]["l1000"], s3["etags"]["l1000"], [8])


def test_s3_happy_path_and_part_size_warning(s3, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    out = s3_download(_src(s3, "l1000"), tmp_path / "l1k.csv.gz", _settings(s3["endpoint"]))
    assert out.read_bytes() == s3["bytes"]["l1000"]
    assert "matched with 2 MiB parts, not the expected 8 MiB" in caplog.text
    assert _leftovers(tmp_path) == ["l1k.csv.gz"]


def test_corrupted_transfer_is_refused_and_nothing_kept(s3, tmp_path):
    with fault_proxy(s3["endpoint"]) as (url, faults, _):
        faults["corrupt"] = True
        with pytest.raises(DownloadError, match=rf"s3://{BUCKET}/{L1K_KEY}: multipart ETag differs"):
            s3_download(_src(s3, "l1000"), tmp_path / "l1k.csv.gz", _settings(url))
    assert _leftovers(tmp_path) == []


def test_cut_transfer_is_resumed_with_ranges(s3, tmp_path):
    with fault_proxy(s3["endpoint"]) as (url, faults, log):
        faults["cut"] = 2
        out = s3_download(_src(s3, "l1000"), tmp_path / "l1k.csv.gz", _settings(url))
    assert out.read_bytes() == s3["bytes"]["l1000"]
    ranges = [r for m, _, r, _ in log if m == "GET"]
    assert ranges[0] == "bytes=0-" and len(ranges) == 3
    assert all(int(r.split("=")[1].rstrip("-")) > 0 for r in ranges[1:])  # later GETs resume, not restart


def test_partial_file_from_a_failed_run_is_resumed(s3, tmp_path):
    dest = tmp_path / "l1k.csv.gz"
    with fault_proxy(s3["endpoint"]) as (url, faults, log):
        faults["cut"] = 1
        with pytest.raises(DownloadError, match="partial file is kept"):
            s3_download(_src(s3, "l1000"), dest, _settings(url, retries=0))
        assert not dest.exists()
        part = tmp_path / ".l1k.csv.gz.part"
        have = part.stat().st_size
        assert 0 < have < len(s3["bytes"]["l1000"])
        s3_download(_src(s3, "l1000"), dest, _settings(url, retries=0))
    assert dest.read_bytes() == s3["bytes"]["l1000"]
    assert [r for m, _, r, _ in log if m == "GET"][-1] == f"bytes={have}-"
    assert _leftovers(tmp_path) == ["l1k.csv.gz"]


def test_partial_file_of_another_object_version_is_discarded(s3, tmp_path):
    dest = tmp_path / "l1k.csv.gz"
    (tmp_path / ".l1k.csv.gz.part").write_bytes(b"x" * 1000)
    (tmp_path / ".l1k.csv.gz.part.json").write_text('{"etag": "0123-2", "size": 5}')
    s3_download(_src(s3, "l1000"), dest, _settings(s3["endpoint"]))
    assert dest.read_bytes() == s3["bytes"]["l1000"]


def test_missing_key_names_it(s3, tmp_path):
    src = Source.from_config("l1000", {"bucket": BUCKET, "key": f"{PREFIX}/L1000/no_such.csv.gz", "size": 10,
                                       "etag": "abc-1"})
    with pytest.raises(DownloadError, match=r"s3://cellpainting-gallery/.*/L1000/no_such.csv.gz.*no such key"):
        s3_download(src, tmp_path / "x.csv.gz", _settings(s3["endpoint"]))
    assert _leftovers(tmp_path) == []


def test_wrong_expected_size_fails_before_any_byte(s3, tmp_path):
    with fault_proxy(s3["endpoint"]) as (url, _, log):
        with pytest.raises(DownloadError, match=r"replicate_level_l1k.csv.gz: size differs: the server has \d+ bytes, "
                                                r"the config expects 123 \(download.sources.l1000.size\)"):
            s3_download(_src(s3, "l1000", size=123), tmp_path / "l1k.csv.gz", _settings(url))
    assert [m for m, *_ in log] == ["HEAD"] and _leftovers(tmp_path) == []


def test_recorded_etag_differs_from_server(s3, tmp_path):
    with pytest.raises(DownloadError, match=r"ETag differs: the server has .*-2, the config expects "
                                            r"00000000000000000000000000000000-2"):
        s3_download(_src(s3, "l1000", etag="00000000000000000000000000000000-2"), tmp_path / "a", _settings(s3["endpoint"]))


def test_zero_byte_object(s3, tmp_path):
    src = Source.from_config("cell_painting", {"bucket": BUCKET, "key": "empty/zero.csv.gz", "size": 1, "etag": "x"})
    with pytest.raises(DownloadError, match="empty/zero.csv.gz: the object is empty"):
        s3_download(src, tmp_path / "z.csv.gz", _settings(s3["endpoint"]))
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/key.csv.gz", "a/../../b.csv", "a\\..\\b"])
def test_unsafe_keys_are_refused(key):
    with pytest.raises(MorphotxInputError, match="not a safe relative key"):
        Source.from_config("l1000", {"bucket": BUCKET, "key": key, "size": 1, "etag": "x"})
    with pytest.raises(MorphotxInputError, match="not a safe relative key"):
        Source.from_config("moa_map", {"url": "https://x.org/a", "md5": "0" * 32, "size": 1, "filename": key})


def test_source_needs_checksums():
    with pytest.raises(MorphotxInputError, match="needs the expected `size` and an `etag` or `sha256`"):
        Source.from_config("l1000", {"bucket": BUCKET, "key": L1K_KEY})
    with pytest.raises(MorphotxInputError, match="needs `sha256`, or `md5` together with `size`"):
        Source.from_config("probe_map", {"url": "https://zenodo.org/records/1/files/a.tsv"})
    with pytest.raises(MorphotxInputError, match="needs `sha256`, or `md5` together with `size`"):
        Source.from_config("probe_map", {"url": "https://zenodo.org/records/1/files/a.tsv", "md5": "0" * 32})
    for url in ("https://x.org/files/..", "https://x.org/files/%2E%2E", "https://x.org/a%5C..%5Cb"):
        with pytest.raises(MorphotxInputError, match="file name|safe relative key"):
            Source.from_config("moa_map", {"url": url, "sha256": "0" * 64}).output_name()
    with pytest.raises(MorphotxInputError, match="either bucket \\+ key"):
        Source.from_config("probe_map", {"url": "https://a.org/x", "key": "k", "bucket": "b", "md5": "0" * 32})


# --------------------------------------------------------------------------------------------- HTTP
def test_http_download_verified_and_checksum_mismatch(s3, tmp_path):
    data = Path(s3["files"]["moa_map"]).read_bytes()
    served = tmp_path / "zenodo" / "records" / "3928744" / "files"
    served.mkdir(parents=True)
    (served / "moa_map.tsv").write_bytes(data)
    out = tmp_path / "out"
    with http_files(tmp_path / "zenodo") as base:
        url = f"{base}/records/3928744/files/moa_map.tsv"
        good = Source.from_config("moa_map", {"url": url, "md5": hashlib.md5(data).hexdigest(),
                                              "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
        assert http_download(good, out / "moa_map.tsv", _settings(None)).read_bytes() == data
        bad = Source.from_config("moa_map", {"url": url, "sha256": "0" * 64})
        with pytest.raises(DownloadError, match=rf"{url}: sha256 differs: got {hashlib.sha256(data).hexdigest()}"):
            http_download(bad, out / "bad.tsv", _settings(None))
        missing = Source.from_config("moa_map", {"url": f"{base}/records/1/files/nope.tsv", "md5": "0" * 32,
                                                 "size": 1})
        with pytest.raises(DownloadError, match=r"nope.tsv: not found \(HTTP 404\)"):
            http_download(missing, out / "nope.tsv", _settings(None))
    assert _leftovers(out) == ["moa_map.tsv"]


def test_http_download_stops_at_the_expected_size(s3, tmp_path):
    """A server that sends more than the config's `size` (or than download.max_gib without one) is
    cut off and nothing is kept."""
    data = Path(s3["files"]["moa_map"]).read_bytes()
    served = tmp_path / "web"
    served.mkdir()
    (served / "m.tsv").write_bytes(data)
    out = tmp_path / "out"
    with http_files(served) as base:
        small = Source.from_config("moa_map", {"url": f"{base}/m.tsv", "md5": hashlib.md5(data).hexdigest(),
                                               "size": len(data) // 2})
        with pytest.raises(DownloadError, match=rf"more than {len(data) // 2} bytes .*`size`"):
            http_download(small, out / "m.tsv", _settings(None, retries=0))
        nosize = Source.from_config("moa_map", {"url": f"{base}/m.tsv", "sha256": hashlib.sha256(data).hexdigest()})
        with pytest.raises(DownloadError, match="max_gib"):
            http_download(nosize, out / "n.tsv", _settings(None, retries=0, max_gib=100 / (1 << 30)))
    assert _leftovers(out) == []


@pytest.mark.parametrize("ranges", [True, False])
def test_http_cut_transfer_resumes_or_restarts(s3, tmp_path, ranges):
    """A cut HTTP transfer is resumed with a Range request when the server honours ranges, and downloaded
    again from the start when it answers 200."""
    data = Path(s3["files"]["l1000"]).read_bytes()
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "l1k.csv.gz").write_bytes(data)
    src_kw = {"md5": hashlib.md5(data).hexdigest(), "size": len(data)}
    with http_files(tmp_path / "files", ranges=ranges) as base, fault_proxy(base) as (url, faults, log):
        faults["cut"] = 1
        src = Source.from_config("l1000", {"url": f"{url}/l1k.csv.gz", **src_kw})
        out = http_download(src, tmp_path / "out" / "l1k.csv.gz", _settings(None))
    assert out.read_bytes() == data
    gets = [(r, status) for m, _, r, status in log if m == "GET"]
    assert len(gets) == 2 and gets[0] == (None, 200)
    assert gets[1][0].startswith("bytes=") and int(gets[1][0][6:-1]) > 0
    assert gets[1][1] == (206 if ranges else 200)
    assert _leftovers(tmp_path / "out") == ["l1k.csv.gz"]


def test_local_copy_is_verified_then_linked(s3, tmp_path):
    good = {"bucket": BUCKET, "key": L1K_KEY, "size": len(s3["bytes"]["l1000"]), "etag": s3["etags"]["l1000"],
            "local": s3["files"]["l1000"]}
    settings = DownloadSettings(part_sizes_mib=[8, 2], progress=False)
    out = download("l1000", good, tmp_path / "l1k.csv.gz", settings)
    assert out.is_symlink() and out.read_bytes() == s3["bytes"]["l1000"]
    wrong = dict(good, local=s3["files"]["cell_painting"])
    with pytest.raises(DownloadError, match=r"download.sources.l1000.local .* is not the published file: .*size differs"):
        download("l1000", wrong, tmp_path / "other.csv.gz", settings)
    assert not (tmp_path / "other.csv.gz").exists()


# --------------------------------------------------------------------------------------------- Snakemake
def _remote_config(s3, endpoint, probe_url, probe_sha):
    return {"dataset": {"name": "remote", "source": "remote", "format": str(FORMAT)},
            "download": {"endpoint_url": endpoint, "backoff_s": 0.05, "progress": False, "part_sizes_mib": [8, 2, 0.25],
                         "sources": {
                             "cell_painting": {"bucket": BUCKET, "key": CP_KEY, "size": len(s3["bytes"]["cell_painting"]),
                                               "etag": s3["etags"]["cell_painting"]},
                             "l1000": {"bucket": BUCKET, "key": L1K_KEY, "size": len(s3["bytes"]["l1000"]),
                                       "etag": s3["etags"]["l1000"]},
                             "probe_map": {"url": probe_url, "sha256": probe_sha}}}}


@pytest.mark.workflow
def test_workflow_download_convert_harmonise(s3, tmp_path):
    """download → convert → harmonise → map_probes through Snakemake against the local S3 and HTTP servers;
    the harmonised tables equal those made from the same files read locally (dataset.source: files)."""
    from morphotx.data.harmonise import harmonise

    probe = Path(s3["files"]["probe_map"]).read_bytes()
    web = tmp_path / "web"
    web.mkdir()
    (web / "probe_map.tsv").write_bytes(probe)
    targets = ["results/remote/profiles/cp_harmonised.parquet", "results/remote/profiles/l1000_harmonised_genes.parquet"]
    with http_files(web) as base:
        cfg = _remote_config(s3, s3["endpoint"], f"{base}/probe_map.tsv", hashlib.sha256(probe).hexdigest())
        res = snakemake(tmp_path / "wf", *targets, config=cfg)
    assert res.returncode == 0, res.stderr[-4000:]
    out = tmp_path / "wf" / "results" / "remote"
    assert (out / "download" / "cell_painting" / "replicate_level_cp_augmented.csv.gz").read_bytes() == s3["bytes"]["cell_painting"]
    log = (out / "logs" / "download" / "cell_painting" / "replicate_level_cp_augmented.csv.gz.log").read_text()
    assert "verified (size" in log and "matched with 0.25 MiB parts, not the expected 8 MiB" in log
    assert not [p for p in (out / "download").rglob(".*")]  # no partial files
    for mod, key in [("cp", "cell_painting"), ("l1000", "l1000")]:
        local = harmonise(s3["files"][key], tmp_path / f"{mod}.parquet", FORMAT, "cell_painting" if mod == "cp" else "l1000")
        remote = pd.read_parquet(out / "profiles" / f"{mod}_harmonised.parquet")
        pd.testing.assert_frame_equal(remote, local)
    genes = pd.read_parquet(out / "profiles" / "l1000_harmonised_genes.parquet")
    assert len(S.feature_columns(genes)) > 0 and not any(c.endswith("_at") for c in S.feature_columns(genes))


@pytest.mark.workflow
def test_workflow_corrupt_object_leaves_nothing(s3, tmp_path):
    with fault_proxy(s3["endpoint"]) as (url, faults, _):
        faults["corrupt"] = True
        cfg = _remote_config(s3, url, "https://unused.example/p.tsv", "0" * 64)
        res = snakemake(tmp_path / "wf", "results/remote/profiles/cp.parquet", config=cfg)
    assert res.returncode != 0
    assert f"s3://{BUCKET}/{CP_KEY}: multipart ETag differs" in res.stderr
    out = tmp_path / "wf" / "results" / "remote"
    assert not (out / "profiles" / "cp.parquet").exists()
    assert [p.name for p in (out / "download").rglob("*") if p.is_file()] == []


@pytest.mark.workflow
def test_schema_rejects_a_source_without_checksum(tmp_path):
    cfg = {"dataset": {"name": "remote", "source": "remote"},
           "download": {"sources": {"l1000": {"bucket": BUCKET, "key": L1K_KEY, "size": 5}}}}
    res = snakemake(tmp_path / "wf", "-n", config=cfg)
    text = res.stdout + res.stderr
    assert res.returncode != 0 and "instance['download']['sources']['l1000']" in text
    assert "not valid under any of the given schemas" in text
