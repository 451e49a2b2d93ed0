"""profiles/slurm on a real scheduler: a single-node SLURM (controller, node daemon and slurmdbd on
localhost, from Debian's slurm-wlm and munge, started by profiles/slurm/local-cluster.sh) runs the
tiny demo through `snakemake --profile profiles/slurm`. sacct must show every submitted job
COMPLETED, and the outputs must equal those of a local run. Bad profiles are refused before
submission.

Skips, with the reason, when this machine cannot host the cluster: not root, or the packages
cannot be installed. A cluster that installs but does not start is a failure. The daemons are
stopped at the end whatever happens.
"""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, snakemake

SCRIPT = REPO / "profiles" / "slurm" / "local-cluster.sh"
PROFILE = REPO / "profiles" / "slurm"
MODELS = ["vae_mmd_cp"]  # one model keeps the run short; every stage of the pipeline is still exercised
# one repetition, one classifier, collapsed level only: the scheduler is under test, not the protocol
ONE_FOLD = {"split": {"folds": 1}, "evaluate": {"classifiers": ["knn"], "variants": ["collapsed", "raw+collapsed"]}}
TARGET = "results/tiny/leaderboard/leaderboard.parquet"
# poll the scheduler every 2 s (the plugin's defaults, 40 s before the first check, suit real clusters)
FAST_STATUS = ["--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2"]
# the preparation steps as one group job (docs/cluster.md): each job costs ~12 s of submission, start-up
# and polling here, and the group is also under test (Snakemake submits it as one job with group resources)
PREPARE = ["demo_data", "convert", "harmonise", "map_probes", "split_compounds", "preprocess_cp", "preprocess_l1000",
           "pair"]
GROUPED = ["--groups", *(f"{rule}=prepare" for rule in PREPARE)]

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]


def _script(cmd, timeout=900):
    return subprocess.run([str(SCRIPT), cmd], capture_output=True, text=True, timeout=timeout)


def _started() -> dict[str, int]:
    """The daemons local-cluster.sh started (it never stops what it did not start, e.g. a system munged)."""
    out = _script("pids", timeout=30).stdout.split("\n")
    return {name: int(pid) for name, pid in (line.split() for line in out if line.strip())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture(scope="module")
def cluster():
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("a local SLURM needs root (it writes /etc/slurm and starts daemons); not root here")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install -e '.[dev]')")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and there is no apt-get to install it")
    inst = _script("install")
    if inst.returncode != 0:
        pytest.skip(f"cannot install SLURM from Debian packages: {inst.stderr.strip()[-600:]}")
    _script("stop", timeout=120)
    start = _script("start", timeout=300)
    if start.returncode != 0:
        _script("stop", timeout=120)
        pytest.fail(f"SLURM installed but did not start:\n{start.stderr[-3000:]}")
    try:
        yield
    finally:
        _script("stop", timeout=120)


def _slurm(workdir, *args, config=None):
    return snakemake(workdir, "--profile", str(PROFILE), *FAST_STATUS, *args, config={**ONE_FOLD, **(config or {})},
                     models=MODELS, slurm=True)


def _tables(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in root.rglob("*.parquet")}


def test_demo_runs_through_slurm_like_local(cluster, tmp_path):
    t0 = time.perf_counter()
    local = snakemake(tmp_path / "local", TARGET, models=MODELS, config=ONE_FOLD)
    t_local = time.perf_counter() - t0
    assert local.returncode == 0, local.stderr[-3000:]

    t0 = time.perf_counter()
    run = _slurm(tmp_path / "slurm", TARGET, *GROUPED)
    t_slurm = time.perf_counter() - t0
    text = run.stdout + run.stderr
    assert run.returncode == 0, text[-4000:]
    assert re.search(r"SLURM pre-submission check: \d+ job\(s\) OK", text)
    ids = re.findall(r"submitted with SLURM jobid (\d+)", text)
    steps = re.findall(r"(\d+) of (\d+) steps \(100%\) done", text)
    # one submission for the group of preparation steps, one for every other job
    n_prepare = len(re.findall(rf"Finished jobid: \d+ \(Rule: (?:{'|'.join(PREPARE)})\)", text))
    assert n_prepare >= len(PREPARE) and "Group job prepare" in text, n_prepare
    assert ids and steps and len(ids) == int(steps[-1][1]) - n_prepare + 1, (len(ids), n_prepare, steps)

    acct = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State,ExitCode", "-j", ",".join(ids)],
                          capture_output=True, text=True, check=True).stdout.split()
    states = dict(line.split("|", 1) for line in acct)
    assert sorted(states) == sorted(ids), (ids, acct)
    assert all(s == "COMPLETED|0:0" for s in states.values()), states
    print(f"\nSLURM: {len(ids)} jobs submitted, all COMPLETED per sacct; wall {t_slurm:.0f} s vs local {t_local:.0f} s")

    a, b = _tables(tmp_path / "local" / "results" / "tiny"), _tables(tmp_path / "slurm" / "results" / "tiny")
    assert sorted(a) == sorted(b)
    assert len(a) > 20
    for rel in a:
        pd.testing.assert_frame_equal(pd.read_parquet(b[rel]), pd.read_parquet(a[rel]), obj=rel)
    md = "leaderboard/leaderboard.md"
    assert (tmp_path / "slurm/results/tiny" / md).read_text() == (tmp_path / "local/results/tiny" / md).read_text()


@pytest.mark.parametrize("case", ["partition", "unknown_resource", "gpu"])
def test_bad_profiles_refused_before_submission(cluster, tmp_path, case):
    before = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID", "-S", "now-1days"], capture_output=True,
                            text=True).stdout.split()
    args, config = [], None
    if case == "partition":
        config = {"resources": {"default": {"mem_mb": 1000, "runtime": 5, "slurm_partition": "nosuch"}}}
        expect = "slurm_partition 'nosuch' does not exist on this cluster (sinfo lists: main)"
    elif case == "unknown_resource":
        args = ["--default-resources", "slurm_partion=main"]
        expect = "resource 'slurm_partion' is not known"
    else:
        config = {"train": {"seeds": [0], "max_epochs": 3, "patience": 2, "progress": False, "device": "cuda"}}
        expect = "rule train_model: requests 1 GPU(s) on partition 'main', which has no GPU gres"
    res = _slurm(tmp_path / case, TARGET, *args, config=config)
    text = res.stdout + res.stderr
    assert res.returncode != 0 and "SLURM submission refused before any job was submitted" in text, text[-3000:]
    assert expect in text
    assert "submitted with SLURM jobid" not in text
    after = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID", "-S", "now-1days"], capture_output=True,
                           text=True).stdout.split()
    assert after == before
    assert not (tmp_path / case / "results").exists()


def test_stop_leaves_no_daemon(cluster):
    started = _started()
    assert {"slurmctld", "slurmd", "slurmdbd", "mariadbd"} <= set(started), started  # munged: maybe the system's
    assert all(_alive(pid) for pid in started.values())
    assert _script("stop", timeout=120).returncode == 0
    assert [name for name, pid in started.items() if _alive(pid)] == []
    assert _started() == {}
    assert _script("start", timeout=300).returncode == 0  # back up for any test after this one


def test_state_directory_must_be_ours_and_not_writable_by_others(tmp_path):
    """The script keeps the database password in its state directory, so it refuses one that is
    a symlink, writable by others or (as root) owned by another user, and makes a missing one
    mode 711. ``pids`` reads the state without starting anything."""
    def pids(state):
        return subprocess.run([str(SCRIPT), "pids"], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "MORPHOTX_SLURM_STATE": str(state)})

    assert pids(tmp_path / "absent").returncode == 0 and not (tmp_path / "absent").exists()  # nothing to read
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    res = pids(shared)
    assert res.returncode != 0 and "writable by group or others" in res.stderr, res.stderr
    (tmp_path / "link").symlink_to(tmp_path / "absent")
    res = pids(tmp_path / "link")
    assert res.returncode != 0 and "is a symlink" in res.stderr, res.stderr
    if os.geteuid() == 0:
        other = tmp_path / "other"
        other.mkdir(mode=0o755)
        os.chown(other, 12345, -1)
        res = pids(other)
        assert res.returncode != 0 and "belongs to uid 12345" in res.stderr, res.stderr
    ours = tmp_path / "ours"
    ours.mkdir(mode=0o711)
    (ours / "started").write_text("slurmd 1\n")
    assert pids(ours).stdout == "slurmd 1\n"
