"""Checks of a SLURM submission before any job is submitted (the Snakefile's ``onstart``).

``snakemake-executor-plugin-slurm`` passes the resources it knows to ``sbatch`` and silently
ignores the rest. It submits to a partition that may not exist, and a GPU job to a partition
without GPUs. The first is a typo that goes unnoticed. The second and third leave jobs pending
in the queue or make sbatch fail one job at a time. This module checks every job of the run
first and raises one :class:`ClusterConfigError` that names the rule, the resource and the fix:

* a resource that neither Snakemake nor the plugin knows (e.g. ``slurm_partion``, ``mem_gb``);
* a ``slurm_partition`` that ``sinfo`` does not list;
* ``gpu``/``gres`` on a partition whose nodes have no GPU gres (``sinfo -o %G``), or a GPU
  request without any partition when the cluster's default partition has no GPUs.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping

# resources of Snakemake itself (standard and internal) and of snakemake-executor-plugin-slurm 2.x
SNAKEMAKE_RESOURCES = {"_cores", "_nodes", "threads", "mem", "mem_mb", "mem_mib", "disk", "disk_mb", "disk_mib",
                       "tmpdir", "runtime", "_job_count"}
SLURM_RESOURCES = {"slurm_partition", "slurm_account", "slurm_cluster", "slurm_extra", "cluster", "clusters",
                   "constraint", "cpus_per_task", "cpus_per_gpu", "gpu", "gpu_model", "gres", "mem_mb_per_cpu", "mpi",
                   "nodes", "qos", "tasks", "tasks_per_gpu", "tasks_per_node"}
KNOWN = SNAKEMAKE_RESOURCES | SLURM_RESOURCES


class ClusterConfigError(ValueError):
    """A submission that would be ignored, pend forever or fail on the cluster; found before submission."""


def partitions() -> dict[str, dict]:
    """``{name: {"default": bool, "gpus": bool, "gres": str}}`` from ``sinfo``."""
    if shutil.which("sinfo") is None:
        raise ClusterConfigError("sinfo is not on PATH: this machine cannot see a SLURM cluster. Run from a login "
                                 "node, or use profiles/default for a local run.")
    out = subprocess.run(["sinfo", "-h", "-o", "%P|%G"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise ClusterConfigError(f"sinfo failed ({out.stderr.strip()}); is the SLURM controller up?")
    parts: dict[str, dict] = {}
    for line in out.stdout.split():
        name, gres = line.split("|", 1)
        default = name.endswith("*")
        name = name.rstrip("*")
        p = parts.setdefault(name, {"default": False, "gpus": False, "gres": ""})
        p["default"] |= default
        p["gpus"] |= "gpu" in gres
        p["gres"] = ",".join(x for x in (p["gres"], gres) if x and x != "(null)")
    return parts


def check_jobs(jobs: Iterable[tuple[str, Mapping]], parts: Mapping[str, dict]) -> int:
    """Check ``(rule, resources)`` of every job against ``parts`` (see :func:`partitions`); return the
    number of jobs checked. Raise :class:`ClusterConfigError` listing every problem found.
    """
    problems: dict[str, str] = {}
    default = next((n for n, p in parts.items() if p["default"]), None)
    n = 0
    for rule, res in jobs:
        n += 1
        for key in res:
            if key not in KNOWN:
                problems.setdefault(f"unknown:{key}", (
                    f"rule {rule}: resource '{key}' is not known to Snakemake or snakemake-executor-plugin-slurm, "
                    f"so it would be ignored silently. Fix the name in the profile's default-resources/set-resources "
                    f"or the config's `resources:` (known: {', '.join(sorted(SLURM_RESOURCES | {'mem_mb', 'runtime'}))})."))
        part = res.get("slurm_partition")
        if part is not None and str(part) not in parts:
            problems.setdefault(f"partition:{part}", (
                f"rule {rule}: slurm_partition '{part}' does not exist on this cluster (sinfo lists: "
                f"{', '.join(sorted(parts)) or 'none'}). Fix default-resources in profiles/slurm/config.yaml or "
                "`resources.<class>.slurm_partition` in the config."))
            continue
        wants_gpu = _gpus(res)
        if wants_gpu:
            target = str(part) if part is not None else default
            if target is None or not parts.get(target, {}).get("gpus"):
                gpu_parts = sorted(n for n, p in parts.items() if p["gpus"])
                where = f"partition '{target}'" if target else "no partition (and the cluster has no default)"
                problems.setdefault(f"gpu:{rule}:{target}", (
                    f"rule {rule}: requests {wants_gpu} GPU(s) on {where}, which has no GPU gres "
                    f"(sinfo %G: '{parts.get(target, {}).get('gres') or '(null)'}'). "
                    + (f"Set resources.train.slurm_partition to a GPU partition ({', '.join(gpu_parts)})."
                       if gpu_parts else "This cluster has no GPU partition: set train.device to cpu or auto.")))
    if problems:
        raise ClusterConfigError("SLURM submission refused before any job was submitted:\n  - "
                                 + "\n  - ".join(problems.values()))
    return n


def _gpus(res: Mapping) -> int:
    gpu = res.get("gpu")
    if gpu not in (None, "", 0, "0"):
        try:
            return int(gpu)
        except (TypeError, ValueError):
            return 1
    gres = str(res.get("gres") or "")
    return 1 if "gpu" in gres else 0


def check_workflow(workflow) -> int | None:
    """``onstart`` hook: when the executor is slurm, check every job that will run; return how many.

    Parameters
    ----------
    workflow : snakemake.workflow.Workflow
        The running workflow (Snakefile's ``workflow``), its DAG built.
    """
    plugin = getattr(workflow, "executor_plugin", None)
    if plugin is None or plugin.name != "slurm":
        return None
    jobs = [(job.rule.name, dict(job.resources.items())) for job in workflow.dag.needrun_jobs()]
    n = check_jobs(jobs, partitions())
    print(f"SLURM pre-submission check: {n} job(s) OK (resources known, partitions exist, GPUs placed)", flush=True)
    return n


def check_device(workflow, device: str) -> list[str]:
    """``onstart`` hook: with ``train.device: cuda``, refuse a run whose jobs ask for a GPU and run
    on this machine when torch sees no CUDA device here, before any job starts (the training job
    would refuse only after the data preparation ran). Jobs submitted to a cluster run on its GPU
    nodes and are not checked here (:func:`check_workflow` places them). Returns the rules checked.

    Parameters
    ----------
    workflow : snakemake.workflow.Workflow
        The running workflow (Snakefile's ``workflow``), its DAG built.
    device : str
        ``train.device`` (``auto``, ``cpu`` or ``cuda``); only ``cuda`` is checked.
    """
    from .io import MorphotxInputError

    if device != "cuda":
        return []
    plugin = getattr(workflow, "executor_plugin", None)
    if plugin is not None and plugin.name not in ("local", "dryrun"):
        return []
    rules = sorted({job.rule.name for job in workflow.dag.needrun_jobs() if _gpus(dict(job.resources.items()))})
    if not rules:
        return []
    try:
        import torch
    except ImportError:  # a conda-per-stage run without torch in Snakemake's env: the job checks
        return []
    if not torch.cuda.is_available():
        raise MorphotxInputError(
            f"train.device is 'cuda' but torch sees no CUDA device on this machine, and the jobs of {rules} would "
            "run here; set train.device: auto (CUDA when available, else CPU) or cpu, or run where a GPU is "
            "visible (nvidia-smi; CUDA_VISIBLE_DEVICES).")
    return rules
