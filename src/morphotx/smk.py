"""Glue between Snakemake's ``script:`` directive and the library: logging and threads.

Each script in ``scripts/`` is a few lines: ``setup(snakemake)`` then one library call.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

from threadpoolctl import threadpool_limits

_limits = None


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS")


def cap_threads(n: int):
    """Cap BLAS / OpenMP threads of this process at ``n``: the environment variables that libraries
    read when they load (numpy's BLAS, PyTorch, numba, loaded later), then threadpoolctl for what is
    loaded already (numpy is imported here so that its BLAS is). More threads than the rule asked
    for oversubscribe the cores Snakemake gave other jobs (an MLP fit took 40× longer).
    """
    for var in THREAD_VARIABLES:
        os.environ[var] = str(n)
    import numpy  # noqa: F401  (loads the BLAS that the limit below must reach)

    return threadpool_limits(limits=n)


def setup(smk) -> logging.Logger:
    """Send log records to the rule's ``log:`` file (warnings and errors also to the terminal, so a
    run shows progress and problems, not every INFO line), cap BLAS/OpenMP threads at the rule's
    ``threads``, and record any uncaught exception in the log file.
    """
    global _limits
    # the rule's log file gets everything; the terminal only warnings and errors (with a log file)
    terminal = logging.StreamHandler(sys.stderr)
    handlers = [terminal]
    if len(smk.log):
        terminal.setLevel(logging.WARNING)
        handlers.append(logging.FileHandler(smk.log[0], mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=handlers, force=True)
    logging.captureWarnings(True)
    _limits = cap_threads(int(smk.threads))
    log = logging.getLogger(f"morphotx.rule.{smk.rule}")

    def hook(exc_type, exc, tb):
        log.error("rule %s failed: %s\n%s", smk.rule, exc, "".join(traceback.format_exception(exc_type, exc, tb)))
        sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = hook
    return log


def fold_slots(slots, fold: int) -> dict:
    """The named input or output slots of one fold of a job that spans folds: ``{key: path}`` for
    every slot named ``<key>_fold<fold>`` (the rules name them so; see ``per_fold`` in common.smk).
    """
    suffix = f"_fold{fold}"
    return {k[: -len(suffix)]: v for k, v in slots.items() if k.endswith(suffix)}

