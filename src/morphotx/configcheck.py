"""Config checks and resolutions that need no data, run when the workflow starts.

Config keys the schema does not know, said in one line each (with the nearest valid key): called
by the Snakefile before ``snakemake.utils.validate``, whose jsonschema error for an unknown key is
a dump of the whole schema section. ``headline.metric: auto`` resolved against the split mode.
"""

from __future__ import annotations


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
    """Raise one short error listing the unknown keys of ``config`` (see :func:`unknown_config_keys`)."""
    import yaml

    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    problems = unknown_config_keys(config, schema)
    if problems:
        raise ValueError("config validation failed:\n  " + "\n  ".join(problems)
                         + f"\n(every key is described in {schema_path})")


def resolve_headline_metric(metric: str, split_mode: str) -> str:
    """``headline.metric`` for ``split.mode``: ``auto`` is ``moa_map`` in ``moa_disjoint`` mode
    (classifiers cannot predict unseen MoAs) and ``macro_f1`` otherwise; a classification metric
    with ``moa_disjoint`` is an error.
    """
    from .io import MorphotxInputError

    if metric == "auto":
        return "moa_map" if split_mode == "moa_disjoint" else "macro_f1"
    if split_mode == "moa_disjoint" and metric != "moa_map":
        raise MorphotxInputError(
            f"headline.metric is {metric!r} but split.mode is moa_disjoint: no test MoA has a training "
            "compound, so a classifier cannot predict any; set headline.metric: moa_map (or auto)")
    return metric
