"""One place per default: the config schema and morphotx.settings agree on every section.

The schema validates and fills defaults (Snakemake ``validate``); the dataclasses are what the code
reads. A key or default in one and not the other fails here, with the section and key named.
"""

import copy
import typing
from dataclasses import MISSING, asdict, fields

import pytest
import yaml
from snakemake.utils import validate

from conftest import REPO
from morphotx import settings as st
from morphotx.io import MorphotxInputError
from morphotx.models.config import FAMILIES

SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())
SECTIONS = list(SCHEMA["properties"])


def validated(config: dict) -> dict:
    """``config`` as the workflow sees it: validated against the schema, defaults filled."""
    config = copy.deepcopy(config)
    validate(config, str(SCHEMA_PATH))
    return config


def without_none(value):
    """Drop None-valued keys: a schema key without a default is a field defaulting to None."""
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    return value


def key_mismatches(node: dict, cls: type, path: str) -> list[str]:
    """Keys in the schema object ``node`` but not in dataclass ``cls`` or the reverse, and choices
    (schema ``enum``, field ``Literal``) that differ; nested sections walked (a plain ``dict`` field
    is a mapping: its keys are data, not settings)."""
    props = set(node.get("properties", {}))
    names = {f.name for f in fields(cls)}
    out = [f"{path}.{k}: in the schema, not in {cls.__name__}" for k in sorted(props - names)]
    out += [f"{path}.{k}: in {cls.__name__}, not in the schema" for k in sorted(names - props)]
    hints = typing.get_type_hints(cls)
    for name in sorted(props & names):
        sub = st.nested_section(cls, name)
        if sub is not None:
            out += key_mismatches(node["properties"][name], sub, f"{path}.{name}")
        choices = typing.get_args(hints[name]) if typing.get_origin(hints[name]) is typing.Literal else None
        prop = node["properties"][name]
        enum = prop.get("enum", [prop["const"]] if "const" in prop else None)  # const: a one-choice enum
        if (choices and list(choices)) != (enum and list(enum)):  # the schema's enum is the field's Literal
            out.append(f"{path}.{name}: schema enum {enum}, {cls.__name__} Literal {choices}")
    return out


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_schema_and_model_hyperparameters_have_the_same_keys_and_choices(family):
    """Each family's hyperparameter dataclass (morphotx.models.config) against the schema's ``$defs``
    entry: the same keys (``enabled`` is the workflow's) and each ``Literal`` the schema's ``enum``."""
    node = SCHEMA["$defs"][family]
    node = {**node, "properties": {k: v for k, v in node["properties"].items() if k != "enabled"}}
    assert key_mismatches(node, FAMILIES[family], f"$defs.{family}") == []


def test_every_schema_section_has_settings():
    assert [f.name for f in fields(st.Config)] == SECTIONS


@pytest.mark.parametrize("section", SECTIONS)
def test_schema_and_settings_have_the_same_keys(section):
    cls = st.nested_section(st.Config, section)
    node = SCHEMA["properties"][section]
    if cls is None:  # a mapping of user entries (models): no fixed keys
        assert node.get("properties") is None and "additionalProperties" in node
        return
    assert key_mismatches(node, cls, section) == []


@pytest.mark.parametrize("section", SECTIONS)
def test_schema_and_settings_have_the_same_defaults(section):
    """The defaults Snakemake fills from the schema equal the dataclass defaults, key by key."""
    from_schema = validated({"dataset": {"name": "x"}})[section]
    default = st.Config(dataset=st.DatasetSettings(name="x"))
    ours = getattr(default, section)
    ours = asdict(ours) if not isinstance(ours, dict) else ours
    ours, from_schema = without_none(ours), without_none(from_schema)
    assert ours == from_schema, {k: (ours.get(k), from_schema.get(k)) for k in ours.keys() | from_schema.keys()
                                 if ours.get(k) != from_schema.get(k)}  # key: (dataclass, schema)


def test_required_keys_have_no_default():
    """The schema's required keys are the fields without a default (dataset.name)."""
    required = set(SCHEMA.get("required", []))
    assert {f.name for f in fields(st.Config) if f.default is MISSING and f.default_factory is MISSING} == required
    for name in required:
        node = SCHEMA["properties"][name]
        cls = st.nested_section(st.Config, name)
        no_default = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        assert no_default == set(node.get("required", [])), name


def test_load_keeps_every_validated_value():
    """A validated config loads into settings and back without loss; nested defaults fill in."""
    cfg = validated(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    s = st.load(cfg)
    assert without_none(asdict(s)) == without_none(cfg)
    partial = st.load({"dataset": {"name": "x"}, "resources": {"train": {"mem_mb": 123}},
                       "preprocess": {"cell_painting": {"sphere": {"method": "none"}}}})
    assert partial.resources.train == st.JobResources(mem_mb=123, runtime=240)
    assert partial.preprocess.cell_painting.sphere == st.SphereSettings(method="none", epsilon=1.0e-6)
    assert partial.preprocess.cell_painting.recipe == "standard"


def test_unknown_key_names_section_and_class():
    with pytest.raises(MorphotxInputError, match=r"config\.evaluate: unknown key\(s\) \['knn_kmax'\].*EvaluateSettings"):
        st.load({"dataset": {"name": "x"}, "evaluate": {"knn_kmax": 3}})
    with pytest.raises(MorphotxInputError, match=r"config\.preprocess\.cell_painting\.sphere: unknown key"):
        st.load({"dataset": {"name": "x"}, "preprocess": {"cell_painting": {"sphere": {"eps": 1}}}})
    with pytest.raises(MorphotxInputError, match=r"config key config\.split\.mode is 'by_plate'; expected one of "
                       r"\['compound', 'moa_disjoint', 'well_holdout'\]"):
        st.load({"dataset": {"name": "x"}, "split": {"mode": "by_plate"}})
    with pytest.raises(MorphotxInputError, match=r"config\.dataset"):
        st.load({})
