"""Benchmark: the evaluation's MLP, scikit-learn's MLPClassifier vs morphotx's Float32MLPClassifier (float32 NumPy).

Same settings (the study's: Adam, lr 1e-3, α 1e-4, batch 64, ReLU; early stopping on 10 % of the
rows from 1,000 rows), same data, one thread each (as in a workflow job). Prints CPU seconds, epochs
and held-out macro-F1 side by side for the shapes of the demo's evaluation (collapsed and
uncollapsed rows; embedding-sized and raw+-sized inputs) and one LINCS-sized table.
Usage: .venv/bin/python benchmarks/bench_classifiers.py [--lincs]
"""

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import f1_score
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from morphotx.evaluate.classify import Float32MLPClassifier

ap = argparse.ArgumentParser()
ap.add_argument("--lincs", action="store_true", help="add a LINCS-sized table (~90k rows; minutes)")
args = ap.parse_args()
threadpool_limits(1)
warnings.simplefilter("ignore", ConvergenceWarning)
shapes = [(470, 128, (256, 128)), (470, 1400, (256, 128)), (7000, 128, (256, 128)), (7000, 1400, (256, 128)),
          (470, 32, (32, 32))]
if args.lincs:
    shapes.append((90000, 1200, (256, 128)))
rows = []
for n, d, hidden in shapes:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(16, d))
    y = rng.integers(0, 16, 2 * n)
    X = centres[y] * 0.9 / np.sqrt(d) + 0.6 * rng.normal(size=(2 * n, d))  # overlapping classes
    kw = dict(hidden_layer_sizes=hidden, alpha=1e-4, learning_rate_init=1e-3, batch_size=64, max_iter=200,
              early_stopping=n >= 1000, validation_fraction=0.1, n_iter_no_change=10, random_state=0)
    for name, est in (("scikit-learn", MLPClassifier(activation="relu", **kw)), ("morphotx", Float32MLPClassifier(**kw))):
        t = time.process_time()
        est.fit(X[:n], y[:n])
        rows.append({"rows": n, "dim": d, "hidden": str(hidden), "mlp": name, "cpu_s": time.process_time() - t,
                     "epochs": est.n_iter_, "macro_f1": f1_score(y[n:], est.predict(X[n:]), average="macro")})
t = pd.DataFrame(rows)
wide = t.pivot_table(index=["rows", "dim", "hidden"], columns="mlp", values=["cpu_s", "epochs", "macro_f1"])
wide[("speed-up", "")] = wide[("cpu_s", "scikit-learn")] / wide[("cpu_s", "morphotx")]
print(wide.to_string(float_format=lambda x: f"{x:.2f}"))
print(f"total CPU s: scikit-learn {t[t.mlp == 'scikit-learn'].cpu_s.sum():.1f}, morphotx {t[t.mlp == 'morphotx'].cpu_s.sum():.1f}")
