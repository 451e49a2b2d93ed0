"""Benchmark: the evaluation steps whose cost grows with the square of the number of profiles,
at LINCS scale: MOAProfiler's pair table (built a block of rows at a time), enrichment / delta / three groups / kNN curve /
class-latent assignment, and copairs mAP (MoA retrieval and replicate retrieval vs DMSO).

Sizes follow LINCS Pilot 1 with a 20 % compound test split: ~10,000 uncollapsed Cell Painting
test wells (52k wells × 0.2) and ~1,800 collapsed test treatments (9k × 0.2), 128-dimensional
embeddings, 30 MoAs. Prints seconds and the process's peak RSS after each step.
Usage: .venv/bin/python benchmarks/bench_eval_scale.py [--n 10000] [--dim 128]
"""

import argparse
import resource
import time

import numpy as np
import pandas as pd

from morphotx import schema as S
from morphotx.evaluate import moaprofiler as mp
from morphotx.evaluate import retrieval

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=10000, help="uncollapsed test profiles")
ap.add_argument("--n-collapsed", type=int, default=1800)
ap.add_argument("--dim", type=int, default=128)
ap.add_argument("--moas", type=int, default=30)
args = ap.parse_args()


def rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def data(n, reps, seed=0):
    rng = np.random.default_rng(seed)
    n_cpd = -(-n // reps)  # ceil
    moa_of_cpd = rng.integers(0, args.moas, n_cpd)
    centres = rng.normal(size=(args.moas, args.dim))
    cpd = np.repeat(np.arange(n_cpd), reps)[:n]
    X = centres[moa_of_cpd[cpd]] * 0.3 + rng.normal(size=(n_cpd, args.dim))[cpd] * 0.5 + rng.normal(size=(n, args.dim))
    return X, np.array([f"moa{m}" for m in moa_of_cpd[cpd]]), np.array([f"c{c}" for c in cpd])


rows = []


def step(name, fn, n):
    t = time.perf_counter()
    out = fn()
    rows.append({"step": name, "n_profiles": n, "seconds": round(time.perf_counter() - t, 2),
                 "peak_rss_gb": round(rss_gb(), 2)})
    print(rows[-1], flush=True)
    return out


for n, reps in ((args.n_collapsed, 6), (args.n, 30)):
    X, moa, cpd = data(n, reps)
    pairs = step("all_pairs (upper triangle, once; blocks of rows)", lambda: mp.all_pairs(moa, cpd, X=X), n)
    step("enrichment (10 percentiles)", lambda pairs=pairs: mp.enrichment(X, moa, cpd, pairs=pairs), n)
    step("pcc_delta", lambda pairs=pairs: mp.pcc_delta(X, moa, cpd, pairs=pairs), n)
    step("three_groups", lambda pairs=pairs: mp.three_groups(X, moa, cpd, pairs=pairs), n)
    del pairs
    step("knn_curve (k ≤ 100; blocks of rows)", lambda: mp.knn_curve(X, moa, cpd, k_max=100), n)
    step("class_latent_assignment", lambda: mp.class_latent_assignment(X, moa, cpd), n)
    step("heldout_votes", lambda: mp.heldout_votes(X[: n // 2], moa[: n // 2], X[n // 2:], moa[n // 2:],
                                                   cpd[n // 2:]), n)
    meta = pd.DataFrame({S.MOA: [[m] for m in moa], S.PERT: cpd, S.TREATMENT: cpd,
                         S.IS_CONTROL: False})
    df = pd.concat([meta, pd.DataFrame(X, columns=[f"emb_{i:03d}" for i in range(args.dim)])], axis=1)
    step("copairs moa_map (null 10000)", lambda: retrieval.moa_map(df), n)
    ctl = df.sample(n=max(24, n // 10), random_state=0).assign(
        **{S.IS_CONTROL: True, S.TREATMENT: "DMSO", S.PERT: "DMSO", S.MOA: [[]] * max(24, n // 10)})
    step("copairs replicate_map vs DMSO (null 10000)",
         lambda: retrieval.replicate_map(pd.concat([df, ctl], ignore_index=True)), n)

print()
print(pd.DataFrame(rows).to_string(index=False))
