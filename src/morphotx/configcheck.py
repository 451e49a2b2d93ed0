"""Config keys the schema does not know, said in one line each (with the nearest valid key).

Called by the Snakefile before ``snakemake.utils.validate``, whose jsonschema error for an unknown
key is a dump of the whole schema section.
"""

from __future__ import annotations


def unknown_config_keys(config: dict, schema: dict) -> list[str]:
    """One line per config key the schema does not know (where the schema forbids extra keys),
    ``section.key``, with the closest known key when there is one: a typo should read as one line,
    not as the schema dump that jsonschema's error prints."""
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
