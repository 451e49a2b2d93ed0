"""The rule → script → function convention and the adapter that binds a rule's slots by name."""

import ast
import dataclasses
import re
import sys
from importlib import import_module
from types import SimpleNamespace

import pytest

from conftest import REPO
from morphotx.settings import TrainSettings
from morphotx.smk import bind, run, slot_namespace

RULES = REPO / "workflow" / "rules"
SCRIPTS = REPO / "workflow" / "scripts"


def rule_scripts() -> list[tuple[str, bool, str]]:
    """(rule name or family prefix, is a family, script stem) for every rule of workflow/rules that
    runs a script; a family is a ``rule:`` in a loop named ``f"<prefix>_{...}"``."""
    out = []
    for smk in sorted(RULES.glob("*.smk")):
        for block in re.split(r"\n(?=\s*rule\b)", "\n" + smk.read_text())[1:]:
            script = re.search(r'script:\s*\n\s*"\.\./scripts/(\w+)\.py"', block)
            if not script:
                continue
            plain = re.match(r"\s*rule (\w+):", block)
            if plain:
                out.append((plain.group(1), False, script.group(1)))
            else:
                family = re.search(r'name:\s*\n\s*f"(\w+)_\{', block)
                assert family, f"{smk.name}: a rule without a name runs {script.group(1)}.py"
                out.append((family.group(1), True, script.group(1)))
    return out


def callee(stem: str) -> tuple[str, ast.expr]:
    """(module, function expression) of the ``run(snakemake, <function>)`` call of a script."""
    tree = ast.parse((SCRIPTS / f"{stem}.py").read_text())
    imports = {a.asname or a.name: (n.module, a.name) for n in tree.body if isinstance(n, ast.ImportFrom)
               for a in n.names}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "run"]
    assert len(calls) == 1, f"scripts/{stem}.py: expected one run(snakemake, <function>) call"
    args = calls[0].args
    assert len(args) == 2 and getattr(args[0], "id", None) == "snakemake", f"scripts/{stem}.py: run(snakemake, f)"
    if isinstance(args[1], ast.Name):
        module, name = imports[args[1].id]
        assert name == args[1].id, f"scripts/{stem}.py imports {name} as {args[1].id}"
        return module, args[1]
    return "", args[1]


def figure_names() -> set[str]:
    """The figure rules' names without ``figure_``: plain ``rule figure_<x>`` and the loop's list."""
    text = (RULES / "report.smk").read_text()
    names = set(re.findall(r"^rule figure_(\w+):", text, re.M))
    loop = re.search(r"^for _fig\b.* in (\[.*?\n\]):", text, re.M | re.S)
    return names | {row[0] for row in ast.literal_eval(loop.group(1))}


def test_rule_script_and_function_share_a_name():
    found = rule_scripts()
    assert len(found) >= 20
    for rule, family, stem in found:
        module, func = callee(stem)
        if stem == "figure":  # rule figure_<x> draws with morphotx.report.figures.<x>
            assert rule == "figure" if family else rule.startswith("figure_"), rule
            assert ast.unparse(func) == "getattr(figures, snakemake.rule.removeprefix('figure_'))"
            names = figure_names()
            assert len(names) >= 10
            figures = import_module("morphotx.report.figures")
            assert not [n for n in names if not callable(getattr(figures, n, None))], names
            continue
        # rule <x> (or the family embed_model_<model>) runs scripts/<x>.py, which runs <x>
        assert rule == stem == func.id, f"rule {rule}{'_*' if family else ''} runs scripts/{stem}.py → {func.id}"
        assert callable(getattr(import_module(module), func.id)), f"{module}.{func.id}"
    assert {s for _, _, s in found} == {p.stem for p in SCRIPTS.glob("*.py")}


def test_figure_list_parser_sees_the_loop():
    assert {"enrichment", "reconstruction_r2", "headline", "loss_curves"} <= figure_names()


# --- the adapter --------------------------------------------------------------------------------
def _wrapper(cp: str, out: str, seed: int, k: int = 3, threads: int = 1):
    return cp, out, seed, k, threads


def _ns(input=None, output=None, params=None, wildcards=None):
    return {"input": input or {}, "output": output or {}, "params": params or {}, "wildcards": wildcards or {}}


def test_bind_takes_each_parameter_from_the_slot_of_its_name():
    ns = _ns(input={"cp": "a.parquet"}, output={"out": "b.parquet"}, params={"k": 5}, wildcards={"seed": "7"})
    kw = bind(_wrapper, ns, "toy", threads=4)
    # the wildcard (a string) becomes an int for `seed: int`; `threads` comes from the job
    assert kw == {"cp": "a.parquet", "out": "b.parquet", "seed": 7, "k": 5, "threads": 4}
    assert _wrapper(**kw) == ("a.parquet", "b.parquet", 7, 5, 4)
    # a parameter with a default and no slot keeps its default
    assert "k" not in bind(_wrapper, _ns(input={"cp": "a"}, output={"out": "b"}, params={"seed": 1}), "toy")


def test_bind_passes_typed_settings_through_and_refuses_a_config_mapping():
    """A params slot holding a settings object reaches the parameter annotated with its class as
    that object (built once, at start-up); a config mapping there is an error naming the slot."""
    from morphotx.data.probes import map_probes
    from morphotx.settings import ProbeMapSettings

    typed = ProbeMapSettings(max_unmapped=0.3)
    ns = _ns(input={"profiles": "p", "probe_map": "m"}, output={"output": "o"}, params={"settings": typed})
    assert bind(map_probes, ns, "map_probes")["settings"] is typed
    ns["params"]["settings"] = {"max_unmapped": 0.3}
    with pytest.raises(ValueError, match=r"rule map_probes: params slot 'settings' is a dict.*ProbeMapSettings"):
        bind(map_probes, ns, "map_probes")


def test_bind_missing_slot_names_rule_parameter_and_slots():
    ns = _ns(input={"cp": "a.parquet"}, params={"seed": 1})
    with pytest.raises(ValueError, match=r"rule toy: parameter 'out' of .*_wrapper is in no slot of the rule "
                                         r"\(input: cp; output: -; params: seed; wildcards: -\)"):
        bind(_wrapper, ns, "toy")


def test_bind_refuses_a_name_in_two_kinds_of_slot_and_an_unused_slot():
    ns = _ns(input={"cp": "a"}, output={"out": "b"}, params={"seed": 1}, wildcards={"seed": "2"})
    with pytest.raises(ValueError, match=r"rule toy: parameter 'seed' .* more than one kind of slot \(params, "
                                         r"wildcards\)"):
        bind(_wrapper, ns, "toy")
    ns = _ns(input={"cp": "a"}, output={"out": "b"}, params={"seed": 1, "sed": 2})
    with pytest.raises(ValueError, match=r"rule toy: params slot\(s\) \['sed'\] are not parameters"):
        bind(_wrapper, ns, "toy")


def test_bind_gives_inputs_and_outputs_as_dicts():
    def wrapper(inputs, outputs, fold):
        return inputs, outputs, fold

    ns = _ns(input={"a": "x", "b": "y"}, output={"c": "z"})
    assert bind(wrapper, ns, "toy", fold=2) == {"inputs": {"a": "x", "b": "y"}, "outputs": {"c": "z"}, "fold": 2}


class _Named(list):
    """A stand-in for Snakemake's Namedlist: a list with named items."""

    def __init__(self, **named):
        super().__init__(named.values())
        self._named = named

    def items(self):
        return self._named.items()


def test_run_calls_the_wrapper_once_per_fold_with_that_folds_slots(tmp_path, monkeypatch):
    import morphotx.smk

    calls = []
    # setup() reconfigures this process's logging, excepthook and threads: record the call instead
    monkeypatch.setattr(morphotx.smk, "setup", lambda smk: calls.append(("setup", smk.rule)))

    def wrapper(cp: str, checkpoint: str, seed: int, fold: int, threads: int):
        calls.append((cp, checkpoint, seed, fold, threads))

    smk = SimpleNamespace(
        rule="toy", threads=2, log=_Named(log=str(tmp_path / "toy.log")),
        input=_Named(cp_fold0="cp0", cp_fold1="cp1"), output=_Named(checkpoint_fold0="c0", checkpoint_fold1="c1"),
        params=_Named(per_fold=[0, 1]), wildcards=_Named(seed="3"))
    run(smk, wrapper)
    assert calls == [("setup", "toy"), ("cp0", "c0", 3, 0, 2), ("cp1", "c1", 3, 1, 2)]
    assert slot_namespace(smk, 1)["input"] == {"cp": "cp1"} and "per_fold" not in slot_namespace(smk)["params"]


def _function(rule: str, stem: str):
    """The function that scripts/<stem>.py runs for ``rule``."""
    module, func = callee(stem)
    if stem == "figure":
        return getattr(import_module("morphotx.report.figures"), rule.removeprefix("figure_"))
    return getattr(import_module(module), func.id)


@pytest.mark.slow  # builds the whole test DAG with Snakemake's API (~10 s)
def test_every_job_of_the_test_dag_binds_to_its_function(tmp_path):
    """Each rule's real slots (test config's DAG with the tune target: every rule but download)
    bind by name to its function — no missing, ambiguous or unused slot — without running a job."""
    import yaml
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    from conftest import DEFAULT_MODELS, TEST_CONFIG, TEST_MODELS

    cfg = {**TEST_CONFIG, "models": {n: {"enabled": n in TEST_MODELS} for n in DEFAULT_MODELS},
           "tune": {**TEST_CONFIG.get("tune", {}), "models": TEST_MODELS}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        wapi = api.workflow(resource_settings=ResourceSettings(cores=2),
                            config_settings=ConfigSettings(configfiles=[tmp_path / "cfg.yaml"]),
                            snakefile=REPO / "workflow" / "Snakefile", workdir=tmp_path)
        wapi.dag(DAGSettings(targets={"all", "tune_all"}, forceall=True))
        wf = wapi._workflow
        wf._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
        wf._build_dag()
        jobs = {j.rule.name: j for j in wf.dag.jobs if j.rule.script}
    scripted = {r for r, family, s in rule_scripts() if not family} - {"download"}
    assert scripted <= set(jobs), sorted(scripted - set(jobs))
    assert any(r.startswith("embed_model_") for r in jobs) and "figure_enrichment" in jobs
    for rule, job in jobs.items():
        func = _function(rule, re.search(r"(\w+)\.py$", job.rule.script).group(1))
        smk = SimpleNamespace(input=job.input, output=job.output, params=job.params, wildcards=job.wildcards)
        per_fold = dict(job.params.items()).get("per_fold")
        for fold in per_fold if per_fold is not None else [None]:
            kwargs = bind(func, slot_namespace(smk, fold), rule, job.threads, None, fold)
            assert kwargs, rule
            # settings and model hyperparameters arrive typed, as built when the workflow started
            for key in ("settings", "split", "pairing", "demo", "moa", "train", "hp"):
                if key in kwargs and key in job.params.keys():
                    assert dataclasses.is_dataclass(kwargs[key]) and not isinstance(kwargs[key], type), (rule, key)
            if rule == "train_model":
                assert isinstance(kwargs["train"], TrainSettings) and isinstance(kwargs["train"].max_epochs, int)


def _bench_common():
    """``benchmarks/_common.py`` (the benchmarks are scripts, not a package: imported by path)."""
    if str(REPO / "benchmarks") not in sys.path:
        sys.path.insert(0, str(REPO / "benchmarks"))
    return import_module("_common")


def test_job_log_ends_with_the_cpu_seconds_the_benchmarks_read(tmp_path, monkeypatch, caplog):
    """Per-rule CPU comes from each job's last log line (Snakemake's sampled cpu_time undercounts)."""
    import logging
    import time

    import morphotx.smk
    from morphotx.smk import usage_line

    job_cpu = _bench_common().job_cpu

    def cpu(line: str) -> float:
        return float(re.search(r"cpu_s=([0-9.]+)", line).group(1))

    def busy(seconds: float = 0.3):
        t = time.process_time()
        while time.process_time() - t < seconds:
            pass

    monkeypatch.setattr(morphotx.smk, "setup", lambda smk: None)
    smk = SimpleNamespace(rule="toy", threads=1, log=_Named(), input=_Named(), output=_Named(), params=_Named(),
                          wildcards=_Named())
    before = cpu(usage_line())
    with caplog.at_level(logging.INFO, logger="morphotx.rule.toy"):
        run(smk, busy)
    line = caplog.records[-1].getMessage()
    assert line.startswith("job resources: cpu_s=") and cpu(line) - before >= 0.29  # two decimals
    log = tmp_path / "toy.log"
    log.write_text(f"2026-11-27 INFO other line\n2026-11-27 INFO morphotx.rule.toy: {line}\n")
    assert job_cpu(log) == cpu(line)
    assert job_cpu(tmp_path / "missing.log") != job_cpu(tmp_path / "missing.log")  # NaN: no log


def test_rule_table_keeps_only_the_jobs_written_since(tmp_path):
    """`bench_lincs_full.py --target evaluation` reports only the jobs it reran (benchmark files
    written after it started), with the CPU seconds of their logs."""
    import os

    rule_table = _bench_common().rule_table

    bench, logs = tmp_path / "benchmarks", tmp_path / "logs"
    for rule, cpu_s, mtime in (("embed/clip", 5.0, 1000.0), ("evaluate/clip", 42.0, 3000.0)):
        (bench / rule).parent.mkdir(parents=True, exist_ok=True)
        (logs / rule).parent.mkdir(parents=True, exist_ok=True)
        (bench / f"{rule}.tsv").write_text("s\tmax_rss\n12.5\t300\n")
        os.utime(bench / f"{rule}.tsv", (mtime, mtime))
        (logs / f"{rule}.log").write_text(f"x INFO morphotx.rule.r: job resources: cpu_s={cpu_s} user_s=1\n")
    assert sorted(rule_table(bench)["rule"]) == ["embed/clip", "evaluate/clip"]
    recent = rule_table(bench, since=2000.0)
    assert recent["rule"].tolist() == ["evaluate/clip"] and recent["cpu_s"].tolist() == [42.0]
