"""Config checks and resolutions that need no data, run when the workflow starts.

Config keys the schema does not know, said in one line each (with the nearest valid key): called
by the Snakefile before ``snakemake.utils.validate``, whose jsonschema error for an unknown key is
a dump of the whole schema section. ``headline.metric: auto`` resolved against the split mode.
"""

from __future__ import annotations

import logging

from . import schema as S
from .io import MorphotxInputError

log = logging.getLogger(__name__)


def unknown_config_keys(config: dict, schema: dict) -> list[str]:
    """One line per config key the schema does not know (where the schema forbids extra keys),
    ``section.key``, with the closest known key when there is one: a typo should read as one line,
    not as the schema dump that jsonschema's error prints.
    """
    import difflib

    def resolve(node: dict) -> dict:
        while "$ref" in node:
            node = schema["$defs"][node["$ref"].split("/")[-1]]
        return node

    def walk(cfg, node, path: str) -> list[str]:
        node = resolve(node)
        props = node.get("properties")
        if not isinstance(cfg, dict) or props is None:
            return []
        out = []
        for key, value in cfg.items():
            where = f"{path}{key}"
            if key in props:
                out += walk(value, props[key], where + ".")
            elif node.get("additionalProperties") is False:
                near = difflib.get_close_matches(str(key), list(props), n=1, cutoff=0.6)
                hint = f"; did you mean '{path}{near[0]}'?" if near else f"; known keys here: {sorted(props)}"
                out.append(f"unknown config key '{where}'{hint}")
        return out

    return walk(config, schema, "")


def check_config_keys(config: dict, schema_path: str) -> None:
    """Raise one short error listing the unknown keys of ``config`` (see :func:`unknown_config_keys`).

    Parameters
    ----------
    config : dict
        The run's config (every config file and ``--config`` merged).
    schema_path : str
        The config schema (``workflow/schemas/config.schema.yaml``), named in the error.
    """
    import yaml

    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    problems = unknown_config_keys(config, schema)
    if problems:
        raise MorphotxInputError("config validation failed:\n  " + "\n  ".join(problems)
                         + f"\n(every key is described in {schema_path})")


def resolve_headline_metric(metric: str, split_mode: str) -> str:
    """``headline.metric`` for ``split.mode``: ``auto`` is ``moa_map`` in ``moa_disjoint`` mode
    (classifiers cannot predict unseen MoAs) and ``macro_f1`` otherwise; a classification metric
    with ``moa_disjoint`` is an error.

    Parameters
    ----------
    metric : str
        ``headline.metric``: ``auto`` or a metric name (``macro_f1``, ``accuracy``, ``weighted_f1``,
        ``moa_map``).
    split_mode : str
        ``split.mode``.
    """
    from .io import MorphotxInputError

    if metric == "auto":
        return "moa_map" if split_mode == "moa_disjoint" else "macro_f1"
    if split_mode == "moa_disjoint" and metric != "moa_map":
        raise MorphotxInputError(
            f"headline.metric is {metric!r} but split.mode is moa_disjoint: no test MoA has a training "
            "compound, so a classifier cannot predict any; set headline.metric: moa_map (or auto)")
    return metric


# the split section (morphotx.prepare.split uses these; here so that the Snakefile's start-up check does
# not import scikit-learn and SciPy, which would slow every Snakemake start)
def check_fractions(fractions: dict) -> tuple[float, float, float]:
    """``split.fractions`` as (train, validation, test); an error unless non-negative, summing to
    1, with train and test positive.
    """
    f = tuple(float(fractions[k]) for k in S.SPLITS)
    if any(x < 0 for x in f) or abs(sum(f) - 1) > 1e-6 or f[0] == 0 or f[2] == 0:
        raise MorphotxInputError(f"split.fractions {dict(zip(S.SPLITS, f))} must be non-negative, sum to 1, "
                                 "and give train and test a positive share.")
    return f


MODES = ("compound", "moa_disjoint", "well_holdout")
WELL_HOLDOUT_WARNING = ("split.mode is well_holdout (Wong 2023's well-holdout scheme): test wells belong to "
                        "compounds that are also in training, so the scores are NOT an unseen-compound test; "
                        "use split.mode: compound for held-out compounds")


def check_mode(mode: str) -> None:
    """An error naming the choices unless ``split.mode`` is one of :data:`MODES`."""
    if mode not in MODES:
        raise MorphotxInputError(f"split.mode must be one of {', '.join(repr(m) for m in MODES)}, got {mode!r}")


def check_validation_share(f_val: float, folds: int) -> None:
    """An error unless the validation share leaves training compounds in every one of ``folds`` folds."""
    if not 0 <= f_val < 1 - 1 / folds:
        raise MorphotxInputError(f"split.fractions.validation is {f_val}; with {folds} folds it must be in "
                                 f"[0, {1 - 1 / folds:.2f})")


def check_split_config(split: dict) -> None:
    """The checks of the ``split`` config section that need no data (run when the workflow starts,
    so a bad value stops it before any job): the mode, the fold count, and the fractions (all three
    with ``folds: 1``; the validation share with ``folds ≥ 2``). With ``mode: well_holdout`` it
    logs a warning that the scores are not an unseen-compound test.

    Parameters
    ----------
    split : dict
        The ``split`` config section (``mode``, ``folds``, ``fractions``, ...).
    """
    mode = split.get("mode", "compound")
    check_mode(mode)
    if mode == "well_holdout":
        log.warning(WELL_HOLDOUT_WARNING)
    folds = int(split.get("folds", 1))
    if folds < 1:
        raise MorphotxInputError(f"split.folds is {folds}; it must be ≥ 1")
    if folds == 1:
        check_fractions(split["fractions"])
    else:
        check_validation_share(float(split["fractions"].get("validation", 0.0)), folds)
