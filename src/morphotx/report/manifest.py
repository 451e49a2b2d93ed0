"""The run manifest: what produced a results folder (``results/<name>/manifest.json``).

Written by the ``manifest`` rule next to the results and shown in the HTML report's first
category: the resolved configuration, the code (git commit, and whether the working tree had
uncommitted changes), the Python, platform, CPU and accelerator, the versions of the packages
the steps use, and the size and SHA-256 of every raw input. The rule reruns when the config or
the commit changes (both are its params), so the manifest describes the code of the last run.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys

from ..io import atomic_outputs, file_digest, write_json

PACKAGES = ["morphotx", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "torch", "pycytominer", "copairs",
            "snakemake", "umap-learn", "optuna", "matplotlib", "boto3"]


def git_state(repo: str | os.PathLike) -> dict:
    """``{"commit", "dirty"}`` of the checkout at ``repo`` (``None`` where git or the checkout is missing).

    Parameters
    ----------
    repo : str or os.PathLike
        A directory inside the checkout.
    """
    def run(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)

    try:
        head = run("rev-parse", "HEAD")
        status = run("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    if head.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _input_record(path: str | os.PathLike) -> dict:
    """Path, size in bytes and SHA-256 of a file."""
    return {"path": str(path), "bytes": os.path.getsize(path), "sha256": file_digest(path, "sha256")}


def _versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _device() -> dict:
    info = {"cpus": os.cpu_count(), "cuda": False, "gpu": None}
    try:
        import torch

        if torch.cuda.is_available():
            info.update(cuda=True, gpu=torch.cuda.get_device_name(0))
    except ImportError:
        pass
    return info


def build_manifest(config: dict, inputs: dict[str, str], git: dict) -> dict:
    """The manifest as a dict: ``config`` (resolved), ``inputs`` (``{key: path}``), ``git`` (see :func:`git_state`)."""
    return {
        "dataset": config.get("dataset", {}).get("name"),
        "git": git,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "device": _device(),
        "packages": _versions(),
        "inputs": {k: _input_record(p) for k, p in sorted(inputs.items())},
        "config": config,
    }


def manifest(config: dict, inputs: dict[str, str], git: dict, output: str) -> dict:
    """Build the manifest (:func:`build_manifest`) and write it atomically as JSON to ``output``.

    Parameters
    ----------
    config : dict
        The run's resolved config, stored whole.
    inputs : dict of str to str
        ``{key: path}`` of the raw inputs (Cell Painting, L1000, probe map, MoA map), each recorded
        with its size and SHA-256.
    git : dict
        ``{"commit", "dirty"}`` of the checkout (:func:`git_state`).
    output : str
        The JSON file written.

    Returns
    -------
    dict
        The manifest.
    """
    manifest = build_manifest(config, inputs, git)
    with atomic_outputs(output) as (tmp,):
        write_json(manifest, tmp)
    return manifest
