"""Benchmark: morphotx's Cell Painting feature-selection step against pycytominer's
``feature_select`` run standalone, side by side, on the same LINCS-size table.

The table is the one ``preprocess_cp`` selects on: the harmonised LINCS-size profiles,
DMSO-normalised per plate, train ∪ DMSO rows (~30k x ~1.55k). Both get the same operations and
thresholds (the config defaults). Two tables are timed:

* ``as is``: a feature has sporadic missing values, which sends pycytominer's correlation to
  pandas' pairwise-complete ``DataFrame.corr`` (minutes; skip it with ``--nan-free-only``);
* ``NaN-free``: the same rows less those with a missing value, where pycytominer takes its
  ``np.corrcoef`` path (its fastest case; the target is morphotx <= 1.5x pycytominer there).

Usage: .venv/bin/python benchmarks/bench_feature_select.py [--work DIR] [--nan-free-only]
``--work``: a directory kept by ``bench_lincs_scale.py --keep DIR`` (otherwise the LINCS-size data
are simulated in a temporary directory first, which takes minutes).
"""

import argparse
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import pycytominer

from morphotx.io import read_table
from morphotx.prepare import preprocess as P
from morphotx.settings import FeatureSelectSettings

# the configured thresholds' defaults (morphotx.settings, the one place they live)
DEFAULTS = {k: v for k, v in asdict(FeatureSelectSettings()).items() if k != "operations"}
OPERATIONS = [o for o in P.DEFAULT_OPERATIONS if o != "drop_na_columns"]  # as in the step (NaN-heavy go earlier)


def selection_table(harmonised: Path, split: Path):
    """The normalised fit rows and candidate features that the preprocessing step selects on."""
    df = P.attach_split(read_table(harmonised), read_table(split), str(harmonised))
    _, feats, _, fit_mask = P.candidate_features(df, P.DEFAULT_DROP_PATTERNS, DEFAULTS["na_cutoff"], "plate")
    X = P.normalize_to_controls(df, feats)[0]
    return X.loc[fit_mask], feats


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def compare(fit, feats) -> dict:
    """Time both on ``fit``; kept features of each (in table order) and whether they are equal."""
    ref, t_ref = _timed(lambda: pycytominer.feature_select(fit, features=feats, operation=OPERATIONS, **DEFAULTS))
    ours, t_ours = _timed(lambda: P.select_features(fit, feats, OPERATIONS, **DEFAULTS))
    gone = set().union(*ours.values())
    kept_ours = [f for f in feats if f not in gone]
    kept_ref = [c for c in ref.columns if c in set(feats)]
    return {"rows": len(fit), "features": len(feats), "pycytominer_s": t_ref, "morphotx_s": t_ours,
            "ratio": t_ours / t_ref, "kept_pycytominer": len(kept_ref), "kept_morphotx": len(kept_ours),
            "identical": kept_ours == kept_ref}


def report(harmonised: Path, split: Path, nan_free_only: bool = False) -> list[dict]:
    fit, feats = selection_table(harmonised, split)
    tables = {"NaN-free": fit.dropna(axis="index")}
    if not nan_free_only:
        tables = {"as is": fit, **tables}
    rows = []
    for name, t in tables.items():
        r = {"table": name, "missing_values": int(t.isna().to_numpy().sum()), **compare(t, feats)}
        rows.append(r)
        print(f"{name:>9}: {r['rows']} rows x {r['features']} features, {r['missing_values']} missing | "
              f"pycytominer.feature_select {r['pycytominer_s']:.1f} s | morphotx select_features "
              f"{r['morphotx_s']:.1f} s | ratio {r['ratio']:.2f} (target <= 1.5) | kept "
              f"{r['kept_pycytominer']} / {r['kept_morphotx']} | identical: {r['identical']}", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", help="directory kept by bench_lincs_scale.py --keep")
    ap.add_argument("--nan-free-only", action="store_true", help="skip pycytominer's slow pairwise-complete case")
    args = ap.parse_args()
    ctx = None
    if args.work:
        work = Path(args.work)
    else:
        from _common import run_workflow

        ctx = tempfile.TemporaryDirectory()
        work = Path(ctx.name)
        cfg = {"dataset": {"name": "lincs"}, "demo": {"scale": "lincs"}}
        run_workflow(work, cfg, ["results/lincs/split/fold0/compound_split.parquet"])
    out = work / "results" / "lincs"
    print(f"operations {OPERATIONS}, thresholds {DEFAULTS}; {P.__name__} from {P.__file__}")
    report(out / "profiles" / "cp_harmonised.parquet", out / "split" / "fold0" / "compound_split.parquet",
           args.nan_free_only)


if __name__ == "__main__":
    main()
