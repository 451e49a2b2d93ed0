"""The study's four classifiers on constructed data with known answers; failures are reported."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from morphotx.classify import GMMClassifier, fit_predict, make_classifier


def blobs(n_per=20, dim=4, n_classes=3, sep=6.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * sep
    X = np.vstack([c + rng.normal(size=(n_per, dim)) for c in centres])
    y = np.repeat([f"moa{i}" for i in range(n_classes)], n_per)
    groups = np.repeat(np.arange(n_classes * n_per // 2), 2)  # two rows per "compound"
    return X, y, groups


@pytest.mark.parametrize("name", ["knn", "mlp", "gmm", "logreg"])
def test_separable_classes_are_recovered(name):
    X, y, g = blobs()
    # test rows drawn tightly around the training class centres
    rng = np.random.default_rng(5)
    Xt = np.vstack([X[y == c].mean(0) + 0.3 * rng.normal(size=(5, X.shape[1])) for c in np.unique(y)])
    yt = np.repeat(np.unique(y), 5)
    out = fit_predict(name, X, y, g, Xt, seed=0, k_grid=[1, 3, 5])
    assert out["status"] in ("ok", "not_converged"), out["reason"]
    assert (out["pred"] == yt).mean() == 1.0
    assert out["proba"].shape == (len(yt), 3) and np.allclose(out["proba"].sum(1), 1)


def test_gmm_matches_hand_computed_posterior():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 2)) + [0, 0]
    b = rng.normal(size=(10, 2)) * 2 + [3, 0]
    X, y = np.vstack([a, b]), np.array(["a"] * 30 + ["b"] * 10)
    gmm = GMMClassifier("full", reg_covar=0.0).fit(X, y)
    q = np.array([[1.5, 0.2], [-1, 1], [4, -1]])
    la = multivariate_normal(a.mean(0), np.cov(a.T, bias=True)).logpdf(q) + np.log(0.75)
    lb = multivariate_normal(b.mean(0), np.cov(b.T, bias=True)).logpdf(q) + np.log(0.25)
    post = np.exp(la) / (np.exp(la) + np.exp(lb))
    assert np.allclose(gmm.predict_proba(q)[:, 0], post, atol=1e-4)


def test_study_architecture_choices():
    assert make_classifier("mlp", 6).hidden_layer_sizes == (32, 32)
    assert make_classifier("mlp", 165).hidden_layer_sizes == (256, 128)
    low, high = make_classifier("gmm", 6), make_classifier("gmm", 165)
    assert (low.covariance_type, low.pca_components) == ("full", None)
    assert (high.covariance_type, high.pca_components) == ("diag", 10)
    lr = make_classifier("logreg", 10).estimator
    assert lr.solver == "lbfgs" and lr.max_iter == 10000


def test_bad_input_is_reported_not_raised():
    X, y, g = blobs()
    Xn = X.copy()
    Xn[3, 1] = np.nan
    out = fit_predict("knn", Xn, y, g, X[:5])
    assert out["status"] == "nan_embedding" and "1 training" in out["reason"] and out["pred"] is None
    out = fit_predict("logreg", X, np.array(["only"] * len(y)), g, X[:5])
    assert out["status"] == "too_few_classes"
    out = fit_predict("nope", X, y, g, X[:5])
    assert out["status"] == "failed" and "nope" in out["reason"]


def test_non_convergence_is_flagged_with_predictions():
    X, y, g = blobs(sep=0.5)
    import morphotx.classify as C

    orig = C.make_classifier

    def short(name, dim, seed=0, low_dim_max=32, n_train=0):
        m = orig(name, dim, seed, low_dim_max, n_train)
        m.set_params(max_iter=2)
        return m

    C.make_classifier = short
    try:
        out = fit_predict("mlp", X, y, g, X[:5])
    finally:
        C.make_classifier = orig
    assert out["status"] == "not_converged" and out["pred"] is not None and "iteration" in out["reason"].lower()


def test_mlp_with_a_single_row_class_on_a_large_table_is_scored():
    """≥ 1,000 training rows switch on early stopping; a class with one training row (a MoA with one
    compound at one dose, common at LINCS scale) must not make the MLP fail (scikit-learn 1.9 draws
    its early-stopping slice without failing on it; this guards that)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 120)[:1101]
    y[-1] = 10  # one row of class 10
    X = rng.normal(size=(len(y), 8)) + np.eye(11)[y][:, :8] * 3
    groups = np.arange(len(y))
    res = fit_predict("mlp", X, y.astype(str), groups, X[:50], seed=0)
    assert res["status"] in ("ok", "not_converged") and res["pred"] is not None, res["reason"]
