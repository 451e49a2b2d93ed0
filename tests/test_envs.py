"""The per-stage conda envs: pinned like pyproject.toml, named by every rule, and complete for
the code each rule runs (checked by following the imports of its script through src/morphotx)."""

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

ENVS = sorted((REPO / "workflow" / "envs").glob("*.yaml"))
IMPORT_TO_DIST = {"sklearn": "scikit-learn", "yaml": "PyYAML", "umap": "umap-learn", "openpyxl": "openpyxl",
                  # installed by boto3, which pins them; importing them directly is for their exception types
                  "botocore": "boto3", "urllib3": "boto3",
                  # Pillow is a requirement of matplotlib, which pins its range; figures uses it for
                  # the report's palette PNGs
                  "PIL": "matplotlib"}


def pyproject_pins() -> dict[str, str]:
    text = (REPO / "pyproject.toml").read_text()
    deps = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    return dict(re.findall(r'"([A-Za-z0-9_.\-]+)==([^"]+)"', deps))


def env_pins(path: Path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    pins, pip = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
    for line in pip:
        if line.startswith("-e "):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
        assert m, f"{path.name}: '{line}' is not pinned with =="
        pins[m.group(1)] = m.group(2)
    return pins


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_pins_agree_with_pyproject(path):
    project = pyproject_pins()
    pins = env_pins(path)
    assert pins, f"{path.name} pins nothing"
    for name, version in pins.items():
        assert name in project, f"{path.name}: {name} is not a dependency in pyproject.toml"
        assert version == project[name], f"{path.name}: {name}=={version}, pyproject.toml has {project[name]}"
    conda = [d for d in yaml.safe_load(path.read_text())["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda


def rules_with_env_and_script():
    """(rule file, env file, script file) for every rule block of workflow/rules/*.smk."""
    out = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        blocks = re.split(r"\n\s*rule\b", "\n" + text)[1:]
        for b in blocks:
            script = re.search(r'script:\s*\n\s*"([^"]+)"', b)
            if not script:
                continue
            env = re.search(r'conda:\s*\n\s*ENVS\["(\w+)"\]', b)
            out.append((smk.name, env.group(1) if env else None, script.group(1)))
    return out


def third_party_imports(script: Path) -> set[str]:
    """Top-level non-stdlib imports of a script and of every morphotx module it reaches."""
    src = REPO / "src"
    seen, todo, found = set(), [script], set()
    while todo:
        f = todo.pop()
        if f in seen or not f.exists():
            continue
        seen.add(f)
        tree = ast.parse(f.read_text())
        pkg = f.parent
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative import inside morphotx
                    base = pkg
                    for _ in range(node.level - 1):
                        base = base.parent
                    mod = base.joinpath(*(node.module or "").split(".")) if node.module else base
                    todo += [mod.with_suffix(".py"), mod / "__init__.py"]
                    if not node.module:
                        todo += [base / f"{a.name}.py" for a in node.names]
                    continue
                names = [node.module]
                if node.module.split(".")[0] == "morphotx":  # from morphotx import figures
                    names += [f"{node.module}.{a.name}" for a in node.names]
            for n in names:
                top = n.split(".")[0]
                if top == "morphotx":
                    mod = src.joinpath(*n.split("."))
                    todo += [mod.with_suffix(".py"), mod / "__init__.py"]
                elif top not in sys.stdlib_module_names and top != "__future__":
                    found.add(top)
    return found


def test_every_rule_names_a_stage_env_that_covers_its_code():
    rules = rules_with_env_and_script()
    assert len(rules) >= 19
    envs = {p.stem: set(env_pins(p)) for p in ENVS}
    for smk, env, script in rules:
        assert env, f"{smk}: a rule running {script} has no conda: ENVS[...]"
        assert env in envs, f"{smk}: env {env} has no envs/{env}.yaml"
        path = (REPO / "workflow" / "rules" / script).resolve()
        needed = {IMPORT_TO_DIST.get(m, m) for m in third_party_imports(path)}
        missing = needed - envs[env]
        assert not missing, f"{smk}: {script} needs {sorted(missing)} which envs/{env}.yaml does not install"


def test_import_scanner_sees_lazy_imports():
    # figures imports umap inside a function; arithmetic reaches torch through models
    assert "umap" in third_party_imports(REPO / "workflow" / "scripts" / "figure.py")
    assert "torch" in third_party_imports(REPO / "workflow" / "scripts" / "arithmetic.py")
