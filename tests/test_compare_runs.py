"""`make bench-machines` (benchmarks/compare_runs.py) and its README block (`make readme-numbers --machines`)."""

import json
import sys

import numpy as np
import pandas as pd

from conftest import REPO
from morphotx.report import readme_numbers

sys.path.insert(0, str(REPO / "benchmarks"))  # the benchmarks are scripts, not a package
import compare_runs  # noqa: E402


def _run(path, scores, deltas, configs):
    rows = []
    for (entry, kind), s, d, c in zip([("raw Cell Painting", "baseline"), ("m", "model"), ("m (Cell Painting only)", "cp_only")],
                                      scores, deltas, configs, strict=True):
        rows.append({"entry": entry, "kind": kind, "configuration": c, "macro_f1": s, "macro_f1_ci_low": s - 0.05,
                     "macro_f1_ci_high": s + 0.05, "delta_vs_baseline": d,
                     "delta_ci_low": d - 0.02 if not np.isnan(d) else np.nan,
                     "delta_ci_high": d + 0.02 if not np.isnan(d) else np.nan})
    (path / "leaderboard").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(path / "leaderboard" / "headline.parquet")
    (path / "manifest.json").write_text(json.dumps({"git": {"commit": "abcdef1234567"}, "platform": "Linux-x",
                                                    "device": {"cpus": 2}}))


def test_movement_inside_and_outside_the_intervals_is_counted_and_written_to_the_readme(tmp_path):
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "machines"
    _run(a, [0.25, 0.30, 0.26], [np.nan, 0.05, 0.01], ["x", "y", "z"])
    # B: the baseline identical, the model's Δ moved 0.01 (inside A's ±0.02: verdict still above),
    # the Cell-Painting-only Δ moved 0.03 (outside A's CI; its CI now above zero: a new verdict)
    _run(b, [0.25, 0.31, 0.29], [np.nan, 0.06, 0.04], ["x", "y", "w"])
    assert compare_runs.main([str(a), str(b), "--out", str(out), "--note", "forced AVX2"]) == 0
    t = pd.read_csv(out / "compare.tsv", sep="\t").set_index("entry")
    assert t.loc["raw Cell Painting", "score_moved"] == 0
    assert bool(t.loc["m", "delta_b_inside_a_ci"]) and not bool(t.loc["m (Cell Painting only)", "delta_b_inside_a_ci"])
    assert t.loc["m", "verdict_a"] == t.loc["m", "verdict_b"] == "above"
    assert (t.loc["m (Cell Painting only)", "verdict_a"], t.loc["m (Cell Painting only)", "verdict_b"]) == ("spans 0", "above")
    summary = (out / "summary.md").read_text()
    assert "forced AVX2" in summary and "`abcdef1234`" in summary
    assert "identical scores 1" in summary and "largest |score B − A| 0.030" in summary
    assert "B's Δ inside A's 95 % CI: 1/2; same verdict: 1/2" in summary
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- results:machines:begin -->\nold\n<!-- results:machines:end -->\ny\n")
    assert readme_numbers.main([str(readme), "--machines", str(out)]) == 0
    text = readme.read_text()
    assert "old" not in text and "same verdict: 1/2" in text and text.endswith("<!-- results:machines:end -->\ny\n")
