import numpy as np
import pytest
from sklearn.metrics import classification_report

from morphotx.evaluate.knn import knn_cv, knn_validation
from morphotx.evaluate.scores import score_predictions


def test_scores_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.choice(list("abcde"), size=200)
    p = np.where(rng.random(200) < 0.4, y, rng.choice(list("abcdef"), size=200))
    summary, per = score_predictions(y, p, train_labels=list("abcd"))
    ref = classification_report(y, p, labels=sorted(set(y)), output_dict=True, zero_division=0)
    assert summary["macro_f1"] == ref["macro avg"]["f1-score"]
    assert summary["weighted_f1"] == ref["weighted avg"]["f1-score"]
    for _, r in per.iterrows():
        assert r["f1"] == ref[r["moa"]]["f1-score"] and r["support"] == ref[r["moa"]]["support"]
    assert summary["n_test_moas_unseen_in_training"] == 1  # 'e'


def test_knn_cv_groups_and_grid():
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(4, 10))
    y = np.repeat(np.arange(4), 30)
    groups = np.repeat(np.arange(40), 3)  # 3 doses per compound
    X = centers[y] + rng.normal(scale=0.3, size=(120, 10))
    model, search = knn_cv(X, y, groups, [1, 5, 500], folds=5, seed=0)
    assert model[-1].n_neighbors in (1, 5)  # 500 exceeds the training fold and is dropped from the grid
    assert search.best_score_ > 0.9


def test_knn_cv_equals_gridsearchcv():
    """The one-pass CV scores every k exactly as GridSearchCV(KNeighborsClassifier) does."""
    from sklearn.metrics import f1_score, make_scorer
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(3)
    n, groups = 240, np.repeat(np.arange(60), 4)
    y = np.array(list("abcdef"))[groups % 6]
    X = rng.normal(size=(n, 12)) + 0.8 * (groups % 6)[:, None] * rng.normal(size=(1, 12))
    grid = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89]
    model, search = knn_cv(X, y, groups, grid, folds=5, seed=4)
    ref = GridSearchCV(KNeighborsClassifier(metric="cosine", algorithm="brute"), {"n_neighbors": grid},
                       cv=GroupKFold(n_splits=5, shuffle=True, random_state=4),
                       scoring=make_scorer(f1_score, average="macro", zero_division=0)).fit(X, y, groups=groups)
    np.testing.assert_allclose(search.curve["mean_macro_f1"], ref.cv_results_["mean_test_score"], atol=1e-12)
    assert search.best_k == ref.best_params_["n_neighbors"] == model[-1].n_neighbors
    assert search.best_score_ == pytest.approx(ref.best_score_)


def test_knn_validation_scores_every_k_like_scikit_learn_on_the_validation_rows():
    """k chosen on validation rows: the curve equals KNeighborsClassifier(k) scored with
    f1_score over the validation MoAs (one with no training row included), the smallest best k wins,
    and the training rows decide nothing but the neighbours."""
    from sklearn.metrics import f1_score
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(5)
    centers = rng.normal(size=(5, 12))
    y = np.repeat(np.array(list("abcd")), 25)
    X = centers[np.repeat(np.arange(4), 25)] + rng.normal(scale=1.2, size=(100, 12))
    yv = np.array(list("abcd") * 8 + ["e"] * 4)  # 'e' has no training row: a miss for every k
    Xv = centers[[ord(c) - 97 for c in yv]] + rng.normal(scale=1.2, size=(36, 12))
    grid = [1, 3, 7, 15, 31, 500]
    model, search = knn_validation(X, y, Xv, yv, grid)
    assert search.curve["k"].tolist() == [1, 3, 7, 15, 31]  # 500 > training rows: dropped
    ref = [f1_score(yv, KNeighborsClassifier(k, metric="cosine", algorithm="brute").fit(X, y).predict(Xv),
                    labels=sorted(set(yv)), average="macro", zero_division=0) for k in search.curve["k"]]
    np.testing.assert_allclose(search.curve["mean_macro_f1"], ref, atol=1e-12)
    best = search.curve["k"][int(np.argmax(ref))]
    assert search.best_k == model[-1].n_neighbors == best and search.best_score_ == pytest.approx(max(ref))
    assert search.val_k is None  # no validation compounds given: no cross-fitted k


def test_knn_validation_scores_each_half_of_the_validation_compounds_with_the_other_halfs_k():
    """With the validation rows' compounds, every validation row gets the k that is best on the
    other half of the validation compounds (halves grouped by compound): checked against
    KNeighborsClassifier scored with f1_score on each half."""
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(7)
    centers = rng.normal(size=(4, 10))
    y = np.repeat(np.array(list("abcd")), 30)
    X = centers[np.repeat(np.arange(4), 30)] + rng.normal(scale=1.5, size=(120, 10))
    groups = np.repeat(np.arange(12), 4)  # 12 validation compounds, 4 rows each
    yv = np.array(list("abcd"))[groups % 4]
    Xv = centers[groups % 4] + rng.normal(scale=1.5, size=(48, 10))
    grid = [1, 2, 4, 8, 16, 32]
    _, search = knn_validation(X, y, Xv, yv, grid, groups_val=groups, seed=3)
    for other, half in GroupKFold(n_splits=2, shuffle=True, random_state=3).split(Xv, yv, groups):
        assert not set(groups[other]) & set(groups[half])  # a compound is in one half only
        ref = [f1_score(yv[other], KNeighborsClassifier(k, metric="cosine", algorithm="brute").fit(X, y)
                        .predict(Xv[other]), labels=sorted(set(yv[other])), average="macro", zero_division=0)
               for k in grid]
        assert (search.val_k[half] == grid[int(np.argmax(ref))]).all()


def test_score_predictions_equals_scikit_learn_averages():
    """The averages come from one precision_recall_fscore_support call: equal to f1_score and
    accuracy_score with the same labels, including predicted labels absent from y_true."""
    from sklearn.metrics import accuracy_score, f1_score



    rng = np.random.default_rng(0)
    y = rng.choice(list("abcdef"), 200)
    pred = rng.choice(list("abcdefgh"), 200)
    pred[:80] = y[:80]
    summary, per = score_predictions(y, pred, list("abcx"))
    labels = sorted(set(y))
    assert summary["macro_f1"] == pytest.approx(f1_score(y, pred, labels=labels, average="macro", zero_division=0))
    assert summary["weighted_f1"] == pytest.approx(f1_score(y, pred, labels=labels, average="weighted", zero_division=0))
    assert summary["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert per.set_index("moa")["in_training"].to_dict() == {m: m in "abc" for m in labels}
