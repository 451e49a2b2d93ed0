"""MoA classifiers on embeddings (the study's "MoA Class Prediction Setup").

Four classifiers, each fitted on training compounds and applied to test compounds, on
L2-normalised inputs:

``knn``       scikit-learn kNN, cosine metric; k over ``k_grid`` (default 1..100) chosen by the
              validation compounds' macro F1 (:func:`morphotx.evaluate.knn.knn_validation`, the
              default) or, the study's setting, by cross-validation on the training rows with
              folds grouped by compound (:func:`morphotx.evaluate.knn.knn_cv`).
``mlp``       a multilayer perceptron (:class:`Float32MLPClassifier`), hidden (32, 32) for
              low-dimensional embeddings (≤ ``low_dim_max`` dimensions) and (256, 128) otherwise;
              α = 1e-4, Adam with learning rate 1e-3, batch 64, ReLU (the study's settings); the
              study gives no stopping rule: we stop when the accuracy on a random 10% of the
              training rows has not improved for 10 epochs (at most 200 epochs) when there are at
              least 1,000 training rows; with fewer, a 10% hold-out is too small to judge, and
              training stops when the training loss stalls (at most 200).
``gmm``       one Gaussian mixture per MoA with class priors from the training set: full covariance
              for low-dimensional embeddings; PCA to 10 components then diagonal covariance for
              high-dimensional ones (the study's settings).
``logreg``    multinomial (softmax) logistic regression, lbfgs, max_iter 10000: the study's
              future-work suggestion is "multi-class logistic regression"; one fit instead of one
              per MoA (one-vs-rest) and less CPU; fitted in float32 (faster than float64, the
              same validation macro-F1 to 3 decimals; docs/benchmarks.md). Its inverse
              penalty C is chosen over ``c_grid`` (default 1, 10, 100, 1000) by the validation
              compounds' macro F1 (:func:`logreg_validation`, one fit per C); the study names no C, and
              scikit-learn's C = 1 assumes standardised features: on L2-normalised rows (each
              feature ~1/√d) it underfits (raw collapsed L1000 of the demo: validation macro-F1
              0.237 at C = 1, 0.323 at the chosen C; docs/evaluation.md). Without validation rows C = 1 (scikit-learn's default).

Bad input does not crash a report: :func:`fit_predict` returns a status (``ok``,
``not_converged``, ``nan_embedding``, ``too_few_classes``, ``failed``) and a reason with the
predictions (``None`` when there are none), so the caller can record it in the leaderboard.

:func:`classify_table` runs the classifiers on one table of an evaluation job: fitted on its
training-compound rows, scored on its validation and test rows (:func:`prediction_frame`: the
scored rows the headline's compound-level statistics resample).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import normalize

from .. import schema as S
from ..settings import EvaluateSettings
from .knn import crossfit_choice, encode_validation, knn_cv, knn_validation
from .scores import score_predictions
from .tables import EVAL_SPLITS, ZERO_SHOT_REASON, is_zero_shot, moa_compound_counts, moa_labels, single_moa_rows

CLASSIFIERS = ("knn", "mlp", "gmm", "logreg")


class GMMClassifier(ClassifierMixin, BaseEstimator):
    """One Gaussian mixture per class; predicts argmax of log p(x | class) + log prior(class)."""

    def __init__(self, covariance_type: str = "full", n_components: int = 1, pca_components: int | None = None,
                 reg_covar: float = 1e-6, random_state: int = 0):
        self.covariance_type = covariance_type
        self.n_components = n_components
        self.pca_components = pca_components
        self.reg_covar = reg_covar
        self.random_state = random_state

    def _project(self, X):
        return self.pca_.transform(X) if self.pca_ is not None else X

    def fit(self, X, y):
        """Fit one mixture per class (on the PCA projection when ``pca_components`` is set).

        Parameters
        ----------
        X : array-like, shape (n_rows, n_features)
            Training rows.
        y : array-like, shape (n_rows,)
            Class labels.

        Returns
        -------
        GMMClassifier
            self, with ``classes_``, ``models_`` and ``log_prior_`` (and ``pca_``) set.
        """
        X, y = np.asarray(X, float), np.asarray(y)
        self.pca_ = None
        if self.pca_components and X.shape[1] > self.pca_components:
            self.pca_ = PCA(n_components=self.pca_components, random_state=self.random_state).fit(X)
        Z = self._project(X)
        self.classes_ = np.unique(y)
        self.models_, priors = [], []
        for c in self.classes_:
            Zc = Z[y == c]
            k = max(1, min(self.n_components, len(Zc)))
            self.models_.append(GaussianMixture(k, covariance_type=self.covariance_type, reg_covar=self.reg_covar,
                                                random_state=self.random_state).fit(Zc))
            priors.append(len(Zc) / len(Z))
        self.log_prior_ = np.log(np.asarray(priors))
        return self

    def _joint_log_likelihood(self, X):
        Z = self._project(np.asarray(X, float))
        return np.column_stack([m.score_samples(Z) for m in self.models_]) + self.log_prior_

    def predict_proba(self, X):
        """Class probabilities: the softmax over classes of log p(x | class) + log prior(class)."""
        jll = self._joint_log_likelihood(X)
        jll -= jll.max(1, keepdims=True)
        p = np.exp(jll)
        return p / p.sum(1, keepdims=True)

    def predict(self, X):
        """The class with the highest log p(x | class) + log prior(class), per row."""
        return self.classes_[np.argmax(self._joint_log_likelihood(X), axis=1)]


def _mlp_step(Ws: list, bs: list, X: np.ndarray, y: np.ndarray) -> tuple[float, list, list]:
    """Mean cross-entropy of a ReLU MLP (weights ``Ws``, biases ``bs``) on one batch and its
    gradients (``dW``, ``db`` per layer), by hand in float32 NumPy.
    """
    acts, h = [X], X
    for i, (W, b) in enumerate(zip(Ws, bs)):
        h = h @ W.T + b
        if i < len(Ws) - 1:
            np.maximum(h, 0, out=h)
        acts.append(h)
    z = acts[-1] - acts[-1].max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    rows = np.arange(len(y))
    loss = -float(logp[rows, y].mean())
    d = np.exp(logp)
    d[rows, y] -= 1.0
    d /= len(y)
    dW, db = [None] * len(Ws), [None] * len(Ws)
    for i in range(len(Ws) - 1, -1, -1):
        dW[i], db[i] = d.T @ acts[i], d.sum(0)
        if i:
            d = (d @ Ws[i]) * (acts[i] > 0)
    return loss, dW, db


class _Adam:
    """Adam (β = 0.9, 0.999, ε = 1e-8, as scikit-learn's) on a list of arrays, in place."""

    def __init__(self, params: list, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, (self.b1, self.b2), self.eps, self.t = params, lr, betas, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list) -> None:
        self.t += 1
        # scikit-learn's bias correction; Python floats keep the float32 arrays float32
        lr = float(self.lr * np.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t))
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= lr * m / (np.sqrt(v) + self.eps)


class Float32MLPClassifier(ClassifierMixin, BaseEstimator):
    """scikit-learn's ``MLPClassifier`` (solver ``adam``, ReLU, softmax output) in float32 NumPy.

    Hand-written, and why: the evaluation fits dozens of MLPs per job on up to ~1,500-dimensional
    inputs (the raw+ variants); scikit-learn's float64 implementation made them most of the demo's
    evaluation time. The same network, optimiser and stopping rules in float32 with lean
    bookkeeping take a fraction of its CPU time (``make bench-classifiers``; docs/benchmarks.md,
    "Measurements behind choices in the code"). What matches
    scikit-learn: Glorot-uniform initialisation, Adam (β = 0.9, 0.999, ε = 1e-8, its bias
    correction), the L2 penalty ``alpha / 2 · Σ W² / batch rows`` on the weights (not the biases;
    its gradient is added to each step's, so a last partial batch is penalised as a full one),
    reshuffled mini-batches every epoch, and the two stopping rules: with ``early_stopping`` the
    accuracy on a stratified ``validation_fraction`` of the rows (plain random when a class has a
    single row) must improve by ``tol`` within ``n_iter_no_change`` epochs and the best epoch's
    weights are kept; otherwise the mean training loss must fall by ``tol`` within
    ``n_iter_no_change`` epochs. Reaching ``max_iter`` warns ``ConvergenceWarning``. BLAS threads
    are those of the job (one in the workflow); ``random_state`` seeds every draw.
    """

    def __init__(self, hidden_layer_sizes=(100,), alpha=1e-4, learning_rate_init=1e-3, batch_size=64, max_iter=200,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10, tol=1e-4, random_state=0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state

    def _init(self, n_in: int, n_out: int, rng: np.random.Generator):
        sizes = [n_in, *self.hidden_layer_sizes, n_out]
        self.coefs_, self.intercepts_ = [], []
        for a, b in zip(sizes[:-1], sizes[1:]):
            bound = np.sqrt(6.0 / (a + b))  # scikit-learn's Glorot-uniform bound for ReLU nets
            self.coefs_.append(rng.uniform(-bound, bound, (b, a)).astype(np.float32))
            self.intercepts_.append(rng.uniform(-bound, bound, b).astype(np.float32))

    def _holdout(self, y: np.ndarray):
        idx = np.arange(len(y))
        strat = y if np.bincount(y).min() >= 2 else None
        return train_test_split(idx, test_size=self.validation_fraction, stratify=strat,
                                random_state=self.random_state)

    def fit(self, X, y):
        """Train the network with Adam on shuffled mini-batches until a stopping rule fires.

        Parameters
        ----------
        X : array-like, shape (n_rows, n_features)
            Training rows (cast to float32).
        y : array-like, shape (n_rows,)
            Class labels.

        Returns
        -------
        Float32MLPClassifier
            self, with ``classes_``, ``coefs_``, ``intercepts_``, ``n_iter_``, ``loss_curve_`` and
            (with ``early_stopping``) ``validation_scores_`` set; with ``early_stopping`` the weights are
            those of the best validation epoch.
        """
        X = np.asarray(X, np.float32)
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        rng = np.random.default_rng(int(self.random_state))
        self._init(X.shape[1], len(self.classes_), rng)
        fit_idx, val_idx = self._holdout(codes) if self.early_stopping else (np.arange(len(X)), None)
        Xf, yf = X[fit_idx], codes[fit_idx]
        Ws, bs = self.coefs_, self.intercepts_
        adam = _Adam(Ws + bs, self.learning_rate_init)
        decay = np.float32(self.alpha / self.batch_size)  # gradient of alpha / 2 · ΣW² / batch rows
        best, stall, best_state = -np.inf, 0, None
        self.n_iter_, self.loss_curve_, self.validation_scores_ = 0, [], []
        for epoch in range(self.max_iter):
            perm, total = rng.permutation(len(Xf)), 0.0
            for start in range(0, len(Xf), self.batch_size):
                b = perm[start:start + self.batch_size]
                loss, dW, db = _mlp_step(Ws, bs, Xf[b], yf[b])
                for g, W in zip(dW, Ws):
                    g += decay * W
                adam.step(dW + db)
                total += loss * len(b)
            self.n_iter_ = epoch + 1
            penalty = 0.5 * self.alpha * float(sum((W * W).sum() for W in Ws)) / self.batch_size
            self.loss_curve_.append(total / len(Xf) + penalty)  # the epoch's training loss, penalty included
            if self.early_stopping:
                self.validation_scores_.append(float((self._logits(X[val_idx]).argmax(1) == codes[val_idx]).mean()))
            score = self.validation_scores_[-1] if self.early_stopping else -self.loss_curve_[-1]  # higher is better
            stall = stall + 1 if score < best + self.tol else 0  # scikit-learn's no-improvement count
            if score > best:
                best = score
                if self.early_stopping:
                    best_state = ([W.copy() for W in Ws], [b.copy() for b in bs])
            if stall >= self.n_iter_no_change:
                break
        else:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                          "optimization hasn't converged yet.", ConvergenceWarning)
        if best_state is not None:
            for dst, src in zip(Ws + bs, best_state[0] + best_state[1]):
                dst[...] = src
        return self

    def _logits(self, X) -> np.ndarray:
        h = np.asarray(X, np.float32)
        for i, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            h = h @ W.T + b
            if i < len(self.coefs_) - 1:
                np.maximum(h, 0, out=h)
        return h

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities: the softmax of the network's outputs (float64), one row per input row."""
        z = self._logits(X).astype(np.float64)
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """The class with the largest network output, per row."""
        return self.classes_[self._logits(X).argmax(1)]


EARLY_STOP_MIN_ROWS = 1000


@dataclass
class LogregSearch:
    """Result of :func:`logreg_validation`: the chosen C, its validation macro-F1, the curve over C,
    and the validation rows scored with the C chosen on the other half of the validation compounds.
    """

    best_c: float
    best_score_: float
    curve: pd.DataFrame  # C, mean_macro_f1, sd_macro_f1 (NaN: one split)
    val_proba: np.ndarray | None = None  # each validation row's probabilities with its cross-fitted C


def logreg_validation(X: np.ndarray, y, X_val: np.ndarray, y_val, c_grid, groups_val=None, seed: int = 0):
    """Multinomial logistic regression with its inverse penalty C chosen by the macro F1 of the
    *validation* compounds' rows; returns the model fitted with that C and a :class:`LogregSearch`.

    One lbfgs fit per C of ``c_grid``, each from scratch: each is scikit-learn's
    ``LogisticRegression(C=c)``. Not warm-started along the path: scikit-learn scales the
    objective by the number of rows, so from the previous C's solution the gradient is already
    below ``tol`` and lbfgs stops after 0 iterations for C ≥ 100 (at LINCS size C = 10, 100 and
    1000 then give the same model). Ties go to the smallest C (the strongest penalty). As
    for kNN's k (:func:`morphotx.evaluate.knn.knn_validation`), ``groups_val`` gives every validation
    row the prediction of the C chosen on the other half of the validation compounds
    (:func:`morphotx.evaluate.knn.crossfit_choice`), so the validation score that chooses among
    classifiers is not a maximum over its own rows. The test compounds decide nothing.
    """
    grid = sorted({float(c) for c in c_grid})
    classes = np.unique(np.asarray(y))
    yv, n_labels = encode_validation(classes, y_val)
    fits = [make_classifier("logreg", X.shape[1], seed).set_params(C=c).fit(X, y) for c in grid]
    probas = [m.predict_proba(X_val) for m in fits]
    best, scores, choice = crossfit_choice(np.stack([p.argmax(1) for p in probas]), yv, n_labels, groups_val, seed)
    curve = pd.DataFrame({"C": grid, "mean_macro_f1": scores, "sd_macro_f1": np.nan})
    search = LogregSearch(grid[best], float(scores[best]), curve)
    if choice is not None:
        search.val_proba = np.stack(probas)[choice, np.arange(len(choice))].astype(float)
    return fits[best], search


def make_classifier(name: str, dim: int, seed: int = 0, low_dim_max: int = 32, n_train: int = 0):
    """The study's classifier ``name`` for embeddings of dimension ``dim`` (kNN is built by CV)."""
    low = dim <= low_dim_max
    if name == "mlp":
        early = n_train >= EARLY_STOP_MIN_ROWS
        return Float32MLPClassifier(hidden_layer_sizes=(32, 32) if low else (256, 128), alpha=1e-4,
                                  learning_rate_init=1e-3, batch_size=64, max_iter=200, early_stopping=early,
                                  validation_fraction=0.1, n_iter_no_change=10, random_state=seed)
    if name == "gmm":
        return GMMClassifier("full", pca_components=None, random_state=seed) if low else \
            GMMClassifier("diag", pca_components=10, random_state=seed)
    if name == "logreg":
        return LogisticRegression(solver="lbfgs", max_iter=10000, random_state=seed)  # multinomial
    raise ValueError(f"unknown classifier {name!r}; expected one of {CLASSIFIERS}")


def fit_predict(name: str, X_train, y_train, groups_train, X_test, seed: int = 0, k_grid=range(1, 101),
                cv_folds: int = 5, low_dim_max: int = 32, X_val=None, y_val=None, groups_val=None,
                copy: bool = True, knn_k_selection: str = "validation", c_grid=(1.0,)) -> dict:
    """Fit classifier ``name`` on L2-normalised training rows and predict the test rows.

    kNN's k is chosen on the validation rows ``X_val, y_val`` when they are given and
    ``knn_k_selection`` is ``validation`` (:func:`morphotx.evaluate.knn.knn_validation`), else by
    grouped cross-validation on the training rows (:func:`morphotx.evaluate.knn.knn_cv`). Logistic
    regression's C is chosen over ``c_grid`` on the validation rows when they are given and the
    grid has more than one value (:func:`logreg_validation`), else it is ``c_grid``'s only value
    (or 1). With ``groups_val`` (the validation rows' compounds) the result of a choice on the
    validation rows also holds ``val_pred`` / ``val_proba``: the validation rows predicted with
    the setting chosen on the other half of the validation compounds, for an unbiased validation
    score.

    ``copy=False`` lets the other classifiers L2-normalise ``X_train`` and ``X_test`` in place
    when they are float64 arrays (the caller's own copies: at LINCS size each is 0.3–0.5 GB).

    Returns ``{"status", "reason", "pred", "proba", "classes", "params"}``; ``pred`` is None unless
    the status is ``ok`` or ``not_converged`` (predictions of a model that hit its iteration
    limit are kept and flagged).
    """
    out = {"status": "ok", "reason": "", "pred": None, "proba": None, "classes": None, "params": {}}
    X_train, X_test = np.asarray(X_train, float), np.asarray(X_test, float)
    bad = ~np.isfinite(X_train).all(1)
    bad_test = ~np.isfinite(X_test).all(1)
    if bad.any() or bad_test.any():
        return {**out, "status": "nan_embedding",
                "reason": f"{int(bad.sum())} training and {int(bad_test.sum())} test row(s) have NaN/inf embeddings"}
    if len(np.unique(y_train)) < 2:
        return {**out, "status": "too_few_classes", "reason": f"{len(np.unique(y_train))} MoA class(es) in training"}
    # kNN normalises its rows itself (knn.cosine_knn); a second normalised copy of a
    # LINCS-size training table would cost another 0.5 GB
    Xtr, Xte = (X_train, X_test) if name == "knn" else (normalize(X_train, copy=copy), normalize(X_test, copy=copy))
    if name == "logreg":  # scikit-learn's lbfgs keeps float32: half the time per fit, the same choices
        Xtr, Xte = Xtr.astype(np.float32), Xte.astype(np.float32)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            has_val = X_val is not None and len(X_val) > 0
            if name == "knn" and has_val and knn_k_selection == "validation":
                model, search = knn_validation(Xtr, y_train, np.asarray(X_val, float), y_val, k_grid, groups_val, seed)
                out["params"] = {"k": int(search.best_k), "validation_macro_f1": float(search.best_score_),
                                 "validation_curve": search.curve}
                if search.val_k is not None:  # validation rows scored with the k of the other half
                    out["val_proba"] = search.val_proba
                    out["val_pred"] = model.classes_[search.val_proba.argmax(1)]
            elif name == "knn":
                model, search = knn_cv(Xtr, y_train, np.asarray(groups_train), k_grid, cv_folds, seed)
                out["params"] = {"k": int(search.best_k), "cv_macro_f1": float(search.best_score_),
                                 "cv_curve": search.curve}
            elif name == "logreg" and has_val and len(set(c_grid)) > 1:
                model, search = logreg_validation(Xtr, y_train, normalize(np.asarray(X_val, np.float32)), y_val,
                                                  c_grid, groups_val, seed)
                out["params"] = {"C": search.best_c, "validation_macro_f1": search.best_score_,
                                 "validation_curve": search.curve}
                if search.val_proba is not None:
                    out["val_proba"] = search.val_proba
                    out["val_pred"] = model.classes_[search.val_proba.argmax(1)]
            else:
                model = make_classifier(name, Xtr.shape[1], seed, low_dim_max, len(Xtr))
                if name == "logreg":
                    model.set_params(C=float(c_grid[0]) if len(set(c_grid)) == 1 else 1.0)
                model = model.fit(Xtr, y_train)
            proba = np.asarray(model.predict_proba(Xte), float)
            # kNN: its prediction is the argmax of its votes (scikit-learn's rule; ties: the lowest
            # label), so one neighbour search serves both
            pred = model.classes_[proba.argmax(1)] if name == "knn" else model.predict(Xte)
    except Exception as exc:  # recorded, never fatal for the report
        return {**out, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    conv = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    if conv:
        out.update(status="not_converged", reason=str(conv[0].message).splitlines()[0][:200])
    out.update(pred=np.asarray(pred), proba=np.asarray(proba), classes=np.asarray(model.classes_))
    return out


def classify_table(meta: pd.DataFrame, X: np.ndarray, classifiers, seed: int, cfg: EvaluateSettings,
                   moa_compounds: pd.Series | None = None,
                   predictions: list | None = None) -> tuple[list[dict], list[pd.DataFrame], dict]:
    """Fit every classifier on training rows and score validation and test rows (one fit, two
    scored splits); returns (summary rows with a ``split`` column, per-MoA tables of the test
    split, ``{classifier: {split: (classes, proba)}}`` for late fusion, the curve that chose kNN's
    k — macro-F1 vs k of the validation compounds (``knn_validation_macro_f1``) or, with
    ``knn_k_selection: cv``, of the grouped CV on the training compounds (``knn_cv_macro_f1``) —
    as ``curve, x, value`` rows). ``predictions``, when given, receives one frame per classifier
    and scored split (:func:`prediction_frame`).
    """
    use = single_moa_rows(meta)
    split = meta[S.SPLIT].to_numpy()
    tr = use & (split == "train")
    masks = {s: use & (split == s) for s in EVAL_SPLITS}
    scored = masks["validation"] | masks["test"]
    y = moa_labels(meta)
    groups = meta[S.PERT].astype(str).to_numpy()
    moa_compounds = moa_compound_counts(meta) if moa_compounds is None else moa_compounds
    zero_shot = is_zero_shot(meta)
    rows, per, probas, cv = [], [], {}, []
    for name in classifiers:
        base = {"classifier": name, "n_train": int(tr.sum()), "dim": int(X.shape[1])}
        if masks["test"].sum() == 0:
            rows += [{**base, "split": s, "n_scored": int(masks[s].sum()), "status": "failed",
                      "reason": "no single-MoA test rows"} for s in EVAL_SPLITS]
            continue
        if zero_shot:
            rows += [{**base, "split": s, "n_scored": int(masks[s].sum()), "status": "not_applicable",
                      "reason": ZERO_SHOT_REASON} for s in EVAL_SPLITS]
            continue
        val = masks["validation"] if masks["validation"].any() else None
        res = fit_predict(name, X[tr], y[tr], groups[tr], X[scored], seed=seed,
                          k_grid=range(1, cfg.knn_k_max + 1), cv_folds=cfg.cv_folds,
                          low_dim_max=cfg.low_dim_max, X_val=None if val is None else X[val],
                          y_val=None if val is None else y[val], groups_val=None if val is None else groups[val],
                          copy=False,  # X[tr] and X[scored] are this call's own copies
                          knn_k_selection=cfg.knn_k_selection, c_grid=cfg.logreg_c)
        params = {f"param_{k}": v for k, v in res["params"].items() if not isinstance(v, pd.DataFrame)}
        for key in ("cv_curve", "validation_curve"):
            if isinstance(res["params"].get(key), pd.DataFrame):
                c = res["params"][key]
                cv.append(pd.DataFrame({"curve": f"{name}_{key.removesuffix('_curve')}_macro_f1", "x": c.iloc[:, 0],
                                        "value": c["mean_macro_f1"]}))
        probas[name] = {}
        for s in EVAL_SPLITS:
            row = {**base, "split": s, "n_scored": int(masks[s].sum()), "status": res["status"],
                   "reason": res["reason"], **params}
            at = masks[s][scored]
            if masks[s].sum() == 0:
                row.update(status="failed", reason=f"no single-MoA {s} rows")
            elif res["pred"] is not None:
                # kNN's validation rows: predicted with the k chosen on the other half of the
                # validation compounds (an unbiased validation score; see knn_validation)
                crossfit = s == "validation" and res.get("val_pred") is not None
                pred = res["val_pred"] if crossfit else res["pred"][at]
                proba = res["val_proba"] if crossfit else res["proba"][at]
                summary, pm = score_predictions(y[masks[s]], pred, y[tr])
                row.update(summary)
                probas[name][s] = (res["classes"], proba)
                if predictions is not None:
                    predictions.append(prediction_frame(meta[masks[s]], y[masks[s]], pred, name, s))
                if s == "test":
                    per.append(per_moa_notes(pm, moa_compounds).assign(classifier=name))
            rows.append(row)
    return rows, per, probas, cv


def prediction_frame(meta: pd.DataFrame, y_true, y_pred, classifier: str, split: str) -> pd.DataFrame:
    """The scored rows of one classifier and split: ``classifier, split, compound, moa, predicted``.

    Parameters
    ----------
    meta : pandas.DataFrame
        Metadata of the scored rows (``Metadata_pert_id``), in the order of ``y_true``.
    y_true, y_pred : array-like
        The rows' MoA and the predicted MoA.
    classifier, split : str
        The classifier's name and the scored split (``validation`` or ``test``).

    Returns
    -------
    pandas.DataFrame
        One row per scored row.
    """
    return pd.DataFrame({"classifier": classifier, "split": split,
                         "compound": meta[S.PERT].astype(str).to_numpy(),
                         "moa": np.asarray(y_true).astype(str), "predicted": np.asarray(y_pred).astype(str)})


def per_moa_notes(pm: pd.DataFrame, moa_compounds: pd.Series) -> pd.DataFrame:
    """The per-MoA table with each MoA's compound count and why a MoA cannot be predicted."""
    pm["n_compounds_total"] = pm["moa"].map(moa_compounds).fillna(0).astype(int)
    pm["note"] = np.where(pm["in_training"], "",
                          "no training compound: MoA has " + pm["n_compounds_total"].astype(str)
                          + " compound(s), none in the training split; it cannot be predicted")
    return pm

