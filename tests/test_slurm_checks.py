"""The SLURM pre-submission checks on hand-made job lists (no scheduler needed; tests/test_slurm.py runs them
against a real one)."""

import pytest

from morphotx.slurm_checks import ClusterConfigError, _gpus, check_jobs

PARTS = {"main": {"default": True, "gpus": False, "gres": ""},
         "gpu": {"default": False, "gpus": True, "gres": "gpu:a100:4"}}


def test_good_jobs_pass():
    jobs = [("harmonise", {"mem_mb": 8000, "runtime": 120, "slurm_partition": "main", "_cores": 2, "tmpdir": "x"}),
            ("train_model", {"mem_mb": 8000, "gpu": 1, "slurm_partition": "gpu"}),
            ("embed", {"gres": "gpu:1", "slurm_partition": "gpu"})]
    assert check_jobs(jobs, PARTS) == 3


def test_every_problem_is_listed_once():
    jobs = [("a", {"mem_gb": 4, "slurm_partition": "main"}), ("b", {"mem_gb": 4}),
            ("c", {"slurm_partition": "nosuch"}), ("train_model", {"gpu": 1}),
            ("train_model", {"gpu": 1, "slurm_partition": "main"})]
    with pytest.raises(ClusterConfigError) as err:
        check_jobs(jobs, PARTS)
    msg = str(err.value)
    assert msg.count("resource 'mem_gb' is not known") == 1
    assert "slurm_partition 'nosuch' does not exist on this cluster (sinfo lists: gpu, main)" in msg
    assert msg.count("rule train_model: requests 1 GPU(s) on partition 'main'") == 1
    assert "Set resources.train.slurm_partition to a GPU partition (gpu)" in msg


def test_gpu_without_any_gpu_partition_says_so():
    with pytest.raises(ClusterConfigError, match="This cluster has no GPU partition: set train.device to cpu or auto"):
        check_jobs([("train_model", {"gpu": 1})], {"main": PARTS["main"]})


def test_gpu_counts():
    assert [_gpus(r) for r in ({}, {"gpu": 0}, {"gpu": 2}, {"gres": "gpu:1"}, {"gres": "tmpspace:10G"})] == [0, 0, 2, 1, 0]
