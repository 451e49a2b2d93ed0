"""The study's four classifiers on constructed data with known answers; failures are reported."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from morphotx.evaluate.classify import GMMClassifier, fit_predict, make_classifier


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
    lr = make_classifier("logreg", 10)
    assert lr.solver == "lbfgs" and lr.max_iter == 10000
    X, y, g = blobs()
    lr.fit(X, y)
    proba = lr.predict_proba(X[:5])
    # multinomial (one softmax over the MoAs), not one-vs-rest: probabilities are the softmax of the decision values
    z = lr.decision_function(X[:5])
    np.testing.assert_allclose(proba, np.exp(z) / np.exp(z).sum(1, keepdims=True), rtol=1e-6)


def test_knn_on_validation_rows_predicts_them_with_their_cross_fitted_k():
    """With validation rows and their compounds, the test rows are predicted with the k chosen on
    all validation rows, and each validation row with the k of the other half of the validation
    compounds (:func:`morphotx.evaluate.knn.knn_validation`'s ``val_k``)."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import normalize

    from morphotx.evaluate.knn import knn_validation

    X, y, g = blobs(sep=0.8)
    val, tr = g % 5 == 0, g % 5 != 0
    grid = range(1, 30)
    out = fit_predict("knn", X[tr], y[tr], g[tr], X[val], k_grid=grid, X_val=X[val], y_val=y[val],
                      groups_val=g[val])
    Xtr, Xv = normalize(X[tr]), normalize(X[val])
    _, search = knn_validation(Xtr, y[tr], Xv, y[val], grid, g[val], 0)
    knn = {k: KNeighborsClassifier(k, metric="cosine", algorithm="brute").fit(Xtr, y[tr]) for k in set(search.val_k)}
    expected = np.array([knn[k].predict(Xv[i:i + 1])[0] for i, k in enumerate(search.val_k)])
    assert out["status"] == "ok" and (out["val_pred"] == expected).all()
    votes = np.vstack([knn[k].predict_proba(Xv[i:i + 1]) for i, k in enumerate(search.val_k)])
    np.testing.assert_allclose(out["val_proba"], votes)
    assert out["params"]["k"] == search.best_k
    full = KNeighborsClassifier(search.best_k, metric="cosine", algorithm="brute").fit(Xtr, y[tr])
    assert (out["pred"] == full.predict(Xv)).all()
    np.testing.assert_allclose(out["proba"], full.predict_proba(Xv))


def test_logreg_c_is_chosen_on_validation_rows_and_cross_fitted():
    """Logistic regression's C is the grid value with the best validation macro-F1 (its fits are
    scikit-learn's at each C); each validation row is predicted with the C
    chosen on the other half of the validation compounds; one grid value fixes C."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import normalize

    from morphotx.evaluate.scores import macro_f1_of_true

    X, y, g = blobs(n_per=40, dim=30, n_classes=4, sep=0.25, seed=2)
    val, tr, te = g % 5 == 0, g % 5 > 1, g % 5 == 1
    grid = [0.01, 1.0, 100.0]
    out = fit_predict("logreg", X[tr], y[tr], g[tr], X[te], X_val=X[val], y_val=y[val], groups_val=g[val], c_grid=grid)
    Xtr, Xv, Xte = (normalize(X[m]).astype(np.float32) for m in (tr, val, te))  # logreg is fitted in float32
    fits = {c: LogisticRegression(C=c, max_iter=10000).fit(Xtr, y[tr]) for c in grid}
    classes = fits[1.0].classes_
    yv = np.searchsorted(classes, y[val])
    score = {c: macro_f1_of_true(yv, np.searchsorted(classes, m.predict(Xv)), len(classes)) for c, m in fits.items()}
    assert len(set(score.values())) > 1  # the choice is not a tie
    best = max(grid, key=lambda c: (score[c], -c))
    assert out["status"] == "ok" and out["params"]["C"] == best
    assert out["params"]["validation_macro_f1"] == pytest.approx(score[best])
    np.testing.assert_allclose(out["proba"], fits[best].predict_proba(Xte), rtol=1e-6)
    expected = np.empty(val.sum(), object)
    for other, half in GroupKFold(n_splits=2, shuffle=True, random_state=0).split(Xv, yv, g[val]):
        s = {c: macro_f1_of_true(yv[other], np.searchsorted(classes, m.predict(Xv[other])), len(classes))
             for c, m in fits.items()}
        expected[half] = fits[max(grid, key=lambda c: (s[c], -c))].predict(Xv[half])
    assert (out["val_pred"] == expected).all()
    fixed = fit_predict("logreg", X[tr], y[tr], g[tr], X[te], X_val=X[val], y_val=y[val], c_grid=[0.01])
    assert fixed["params"] == {} and (fixed["pred"] == fits[0.01].predict(Xte)).all()


def test_cosine_knn_is_scikit_learns_cosine_knn():
    """The chunked euclidean search on L2-normalised rows finds the neighbours that scikit-learn's
    ``metric="cosine"`` finds (rows not normalised beforehand; votes tied in some rows)."""
    from sklearn.neighbors import KNeighborsClassifier

    from morphotx.evaluate.knn import cosine_knn

    rng = np.random.default_rng(3)
    X, Q = rng.normal(size=(400, 20)) * rng.uniform(0.1, 10, size=(400, 1)), rng.normal(size=(150, 20))
    y = rng.integers(0, 6, len(X))
    for k in (1, 4, 15):
        ref = KNeighborsClassifier(k, metric="cosine", algorithm="brute").fit(X, y)
        got = cosine_knn(k).fit(X, y)
        np.testing.assert_allclose(got.predict_proba(Q), ref.predict_proba(Q))
        assert (got.predict(Q) == ref.predict(Q)).all() and (got.classes_ == ref.classes_).all()
        assert (got.classes_[got.predict_proba(Q).argmax(1)] == ref.predict(Q)).all()


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
    import morphotx.evaluate.classify as C

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


def _noisy_classes(n=1200, dim=30, k=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    y = rng.integers(0, k, n)
    return centres[y] * 0.6 + rng.normal(size=(n, dim)), np.array([f"moa{i}" for i in y])


def test_float32_mlp_is_deterministic_and_scores_like_scikit_learn():
    """The PyTorch MLP is scikit-learn's MLPClassifier re-implemented for speed: same seed, same
    predictions; on held-out rows its accuracy is that of scikit-learn's within a few points."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from morphotx.evaluate.classify import Float32MLPClassifier

    X, y = _noisy_classes(n=1800)
    X, y, Xt, yt = X[:1200], y[:1200], X[1200:], y[1200:]
    kw = dict(hidden_layer_sizes=(32, 32), alpha=1e-4, learning_rate_init=1e-3, batch_size=64, max_iter=200,
              early_stopping=True, validation_fraction=0.1, n_iter_no_change=10, random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a, b = Float32MLPClassifier(**kw).fit(X, y), Float32MLPClassifier(**kw).fit(X, y)
        ref = MLPClassifier(activation="relu", **kw).fit(X, y)
    assert np.array_equal(a.predict_proba(Xt), b.predict_proba(Xt))
    assert set(a.classes_) == set(y) and a.predict_proba(Xt).shape == (len(Xt), 8)
    acc, acc_ref = (a.predict(Xt) == yt).mean(), (ref.predict(Xt) == yt).mean()
    assert acc > 1.5 / 8 and abs(acc - acc_ref) < 0.06, (acc, acc_ref)
    # early stopping: stopped n_iter_no_change epochs after its best hold-out accuracy, whose weights it kept
    best = int(np.argmax(a.validation_scores_))
    assert a.n_iter_ < 200 and a.n_iter_ - 1 - best >= 10
    assert Float32MLPClassifier(**{**kw, "random_state": 4}).fit(X, y).n_iter_ > 0


def test_float32_mlp_stops_on_a_stalled_training_loss_without_a_holdout():
    from morphotx.evaluate.classify import Float32MLPClassifier

    X, y = _noisy_classes(n=300)
    m = Float32MLPClassifier(hidden_layer_sizes=(16,), early_stopping=False, n_iter_no_change=5, tol=1e-2,
                           max_iter=300).fit(X, y)
    assert m.n_iter_ < 300 and not m.validation_scores_
    curve = np.array(m.loss_curve_)
    assert curve[-1] < curve[0]  # it learned
    # scikit-learn's rule: each of the last 5 epochs missed the best loss before it by less than tol
    assert all(curve[i] > curve[:i].min() - 1e-2 for i in range(len(curve) - 5, len(curve)))
    assert curve[-6] <= curve[:-6].min() - 1e-2  # and the epoch before them did not
