"""Glue between Snakemake's ``script:`` directive and the library: logging, threads, arguments.

Rule ``X`` runs ``scripts/X.py``, which is ``run(snakemake, X)`` with ``X`` the library's file
wrapper of that name: :func:`run` sets up logging and threads and passes each of the wrapper's
parameters from the rule's slot of the same name (``input``, ``output``, ``params``,
``wildcards``), so a rule and its function cannot disagree on the order of positions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import os
import resource
import signal
import sys
import traceback
import typing

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
    # matplotlib's PDF backend subsets fonts with fontTools, which logs ~100 INFO lines per figure
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    _limits = cap_threads(int(smk.threads))
    log = logging.getLogger(f"morphotx.rule.{smk.rule}")

    def hook(exc_type, exc, tb):
        log.error("rule %s failed: %s\n%s", smk.rule, exc, "".join(traceback.format_exception(exc_type, exc, tb)))
        sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = hook
    # Snakemake ends a job it cancels (Ctrl-C, a failed sibling job) with SIGTERM, whose default
    # action skips every `finally`: raise SystemExit instead, so atomic_outputs / atomic_directory
    # remove their temporaries (a kill -9 cannot be caught; the next run's start-up sweeps those)
    signal.signal(signal.SIGTERM, _terminated)
    return log


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def fold_slots(slots, fold: int) -> dict:
    """The named input or output slots of one fold of a job that spans folds: ``{key: path}`` for
    every slot named ``<key>_fold<fold>`` (the rules name them so; see ``per_fold`` in common.smk).
    """
    suffix = f"_fold{fold}"
    return {k[: -len(suffix)]: v for k, v in slots.items() if k.endswith(suffix)}



# A rule's typed settings (morphotx.settings sections, model hyperparameters) travel in its params
# as the dataclasses themselves; Snakemake's params rerun-trigger compares builtin values only, so
# `typed_params` (common.smk) adds their repr under this name, which is not passed to the wrapper.
SETTINGS_REPR = "settings_repr"

# what a wrapper parameter of these names receives besides the rule's named slots
SPECIAL = ("inputs", "outputs", "threads", "log", "fold")
SLOT_KINDS = ("input", "output", "params", "wildcards")


def _named(slots) -> dict:
    """The named slots of a Snakemake Namedlist (or a plain dict) as ``{name: value}``."""
    return dict(slots.items()) if hasattr(slots, "items") else {}


def slot_namespace(smk, fold: int | None = None) -> dict[str, dict]:
    """The rule's named slots by kind, ``{kind: {name: value}}``, for one fold of a rule that spans
    folds (its ``input`` / ``output`` slots named ``<key>_fold<fold>``, see :func:`fold_slots`) or
    for the whole job (``fold`` None). A rule spans folds when it has a ``params`` slot ``per_fold``
    (the folds); that slot is consumed here, and the fold is offered as ``fold``. The slot
    ``settings_repr`` (:data:`SETTINGS_REPR`) is dropped.
    """
    ns = {kind: _named(getattr(smk, kind)) for kind in SLOT_KINDS}
    ns["params"].pop("per_fold", None)
    ns["params"].pop(SETTINGS_REPR, None)
    if fold is not None:
        ns["input"], ns["output"] = fold_slots(ns["input"], fold), fold_slots(ns["output"], fold)
    return ns


def bind(func, ns: dict[str, dict], rule: str, threads: int = 1, log: str | None = None,
         fold: int | None = None) -> dict:
    """The keyword arguments of ``func`` taken by name from a rule's slots.

    Parameters
    ----------
    func : callable
        The rule's file wrapper.
    ns : dict
        ``{kind: {slot name: value}}`` for the kinds ``input``, ``output``, ``params`` and
        ``wildcards`` (see :func:`slot_namespace`).
    rule : str
        The rule's name, for error messages.
    threads, log, fold
        What the parameters ``threads``, ``log`` and ``fold`` receive; ``inputs`` and ``outputs``
        receive every named input / output slot as a dict.

    Returns
    -------
    dict
        ``{parameter: value}``. A parameter of ``func`` found in no slot keeps its default; a
        wildcard bound to a parameter annotated ``int`` is converted to int. A parameter annotated
        with a settings class (:mod:`morphotx.settings`) must receive an instance of it: settings
        are built once, when the workflow starts, and are not rebuilt from a mapping here.

    Raises
    ------
    ValueError
        A parameter without a default that no slot names; a name found in more than one kind of
        slot; a named ``input``, ``output`` or ``params`` slot that ``func`` does not take (a
        misspelt slot would otherwise be dropped silently); or a settings parameter given
        something other than its settings class.
    """
    sig = inspect.signature(func)
    name = f"{func.__module__}.{func.__name__}"
    try:
        hints = typing.get_type_hints(func)
    except (NameError, TypeError):  # an annotation that does not resolve: no conversions
        hints = {}
    special = {"inputs": ns["input"], "outputs": ns["output"], "threads": int(threads), "log": log}
    if fold is not None:
        special["fold"] = fold
    kwargs, used = {}, {kind: set() for kind in SLOT_KINDS}
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ValueError(f"rule {rule}: {name} takes *{p.name}; a rule's wrapper names each of its parameters")
        found = [kind for kind in SLOT_KINDS if p.name in ns[kind]]
        if len(found) > 1:
            raise ValueError(f"rule {rule}: parameter {p.name!r} of {name} is named by more than one kind of slot "
                             f"({', '.join(found)}); rename one of the slots in the rule")
        if found and p.name in special:
            raise ValueError(f"rule {rule}: a {found[0]} slot is named {p.name!r}, which {name} receives from the "
                             "job itself; rename the slot")
        if found:
            value = ns[found[0]][p.name]
            if found[0] == "wildcards" and p.annotation in (int, "int"):
                value = int(value)  # a wildcard is a string: `{seed}` for a parameter `seed: int`
            elif dataclasses.is_dataclass(hints.get(p.name)) and not isinstance(value, hints[p.name]):
                raise ValueError(f"rule {rule}: {found[0]} slot {p.name!r} is a {type(value).__name__}, but "
                                 f"{name} takes {hints[p.name].__name__}; pass the typed settings "
                                 "(SETTINGS.<section>, with typed_params in the rule), not a config mapping")
            kwargs[p.name] = value
            used[found[0]].add(p.name)
        elif p.name in special:
            kwargs[p.name] = special[p.name]
        elif p.default is p.empty:
            slots = "; ".join(f"{kind}: {', '.join(sorted(ns[kind])) or '-'}" for kind in SLOT_KINDS)
            raise ValueError(f"rule {rule}: parameter {p.name!r} of {name} is in no slot of the rule ({slots}); "
                             f"add a slot named {p.name!r} to its input, output, params or wildcards")
    for kind in ("input", "output", "params"):
        if kind in ("input", "output") and f"{kind}s" in sig.parameters:
            continue  # the wrapper takes all of them as a dict
        extra = sorted(set(ns[kind]) - used[kind])
        if extra:
            raise ValueError(f"rule {rule}: {kind} slot(s) {extra} are not parameters of {name} "
                             f"(it takes {list(sig.parameters)}); rename or remove them")
    return kwargs


def run(smk, func):
    """Run a rule's file wrapper ``func``: :func:`setup` (log file, thread cap), then call ``func``
    with each parameter taken by name from the rule's ``input``, ``output``, ``params`` and
    ``wildcards`` slots (see :func:`bind`); once per fold for a rule with ``params.per_fold``.

    Bad input (:class:`morphotx.io.MorphotxInputError`, whose message names the file, column or
    key and the fix) ends the job with that message as one block on stderr and exit status 1; the
    traceback goes to the job's log file only (:func:`user_error`). Any other exception is a bug
    and is shown with its traceback.

    Each script in ``scripts/`` is ``run(snakemake, <function of the script's name>)``.
    """
    from .io import MorphotxInputError

    setup(smk)
    log = smk.log[0] if len(smk.log) else None
    folds = _named(smk.params).get("per_fold")
    try:
        for fold in (folds if folds is not None else [None]):
            func(**bind(func, slot_namespace(smk, fold), smk.rule, smk.threads, log, fold))
    except MorphotxInputError as err:
        sys.exit(user_error(smk.rule, err, log))
    logging.getLogger(f"morphotx.rule.{smk.rule}").info(usage_line())


def user_error(rule: str, err: BaseException, log: str | None = None) -> int:
    """Report bad input: the message as one block on stderr (the rule, the message, where the
    job's log is), and the message with its traceback in the job's log file only. Returns the exit
    status (1).
    """
    logger = logging.getLogger(f"morphotx.rule.{rule}")
    trace = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, "rule %s stopped on bad input: %s\n%s",
                               (rule, err, trace), None)
    for handler in logging.getLogger().handlers:  # the log file only: the terminal gets the block below
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    where = f"\n(traceback in the job's log: {log})" if log else ""
    sys.stderr.write(f"\nmorphotx: rule {rule} stopped on bad input:\n  {err}{where}\n\n")
    sys.stderr.flush()
    return 1


@contextlib.contextmanager
def stop_on_bad_input(where: str):
    """In the Snakefile (its start-up checks): bad input or configuration
    (:class:`morphotx.io.MorphotxInputError`) stops Snakemake with the message as one block on
    stderr (``where``: e.g. ``configuration``) and exit status 1, without a traceback.

    Parameters
    ----------
    where : str
        What was being checked, named in the message.
    """
    from .io import MorphotxInputError

    try:
        yield
    except MorphotxInputError as err:
        sys.stderr.write(f"\nmorphotx: {where}: {err}\n\n")
        sys.stderr.flush()
        raise SystemExit(1) from None


USAGE_PREFIX = "job resources:"


def usage_line() -> str:
    """The CPU time and peak RSS of this process so far, as the last line of a job's log
    (``job resources: cpu_s=… user_s=… system_s=… max_rss_mb=…``): user + system seconds of the
    process since it started (interpreter start-up and imports included) and of its finished
    children. Read by the benchmarks (``benchmarks/_common.py``) for per-rule CPU time: the
    ``cpu_time`` column of Snakemake's ``benchmark:`` files is sampled, and undercounts a job
    whose children come and go between samples (docs/benchmarks.md).
    """
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime
    return (f"{USAGE_PREFIX} cpu_s={user + system:.2f} user_s={user:.2f} system_s={system:.2f} "
            f"max_rss_mb={max(me.ru_maxrss, kids.ru_maxrss) / 1024:.0f}")
