"""DBN, DBNClassifier, DBNRegressor: scikit-learn compatibility, quality floors, the
pretraining effect on a deep logistic net, reproducibility and robustness."""
import pickle
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris, make_friedman1
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastrbm import DBN, DBNClassifier, DBNRegressor
from fastrbm._utils import n_threads_for
from fastrbm.diagnostics import gradient_norm_summary

from . import _reference as ref


SMALL_NET = dict(hidden_layer_sizes=(16,), pretrain_n_iter=2, max_iter=20, random_state=0)


def quiet(estimator, *args, **kwargs):
    """Fit without ConvergenceWarning (short runs on purpose)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args, **kwargs)


# No expected failures: every check passes, at the defaults (the checks set random_state),
# and with a forced precision (its own preserves_dtype tag).
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([
    DBN(), DBNClassifier(), DBNRegressor(),
    DBN(hidden_layer_sizes=(6, 4), n_iter=2, dtype="float32"),
    DBNClassifier(activation="elu"),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_lazy_exports_keep_import_fast():
    code = ("import sys, fastrbm; assert 'sklearn' not in sys.modules; "
            "assert {'DBN', 'DBNClassifier', 'DBNRegressor'} <= set(fastrbm.__all__); "
            "fastrbm.DBNClassifier; fastrbm.diagnostics.gradient_norm_summary; "
            "assert 'sklearn' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------- quality
def test_classifier_defaults_reach_97_percent_on_digits(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    clf = quiet(DBNClassifier(random_state=0), X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.97
    # "auto" pretraining: the epoch cap binds on 1347 rows; the pixels lie in [0, 1]
    assert len(clf.rbms_) == 1 and clf.rbms_[0].n_iter_ == 20
    assert clf.first_layer_ == "bernoulli" and clf.input_mean_ is None
    assert clf._batch_rows(len(X_train)) == 200 and clf.validation_scores_ is None


def test_elu_classifier_at_defaults(digits_split, tmp_path):
    """activation="elu" at otherwise default parameters: the pretrained stack (Bernoulli
    RBMs, as for every activation) fine-tuned through ELU units reaches the logistic
    net's floor; the layout stores ELU's code and survives save / load."""
    from fastrbm._kernels import backprop as bp

    X_train, X_test, y_train, y_test = digits_split
    clf = quiet(DBNClassifier(activation="elu", random_state=0), X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.97
    assert len(clf.rbms_) == 1 and clf.rbms_[0].hidden_units == "bernoulli"
    assert list(clf._layout[:, bp.ACT]) == [bp.ACT_ELU, bp.ACT_SOFTMAX]
    # the hidden layer computes ELU of the affine map (negative outputs in (-1, 0))
    Z = X_test @ clf.coefs_[0] + clf.intercepts_[0]
    H = np.where(Z > 0, Z, np.expm1(np.minimum(Z, 0)))
    assert (H < 0).any() and H.min() > -1
    O = H @ clf.coefs_[1] + clf.intercepts_[1]
    P = np.exp(O - O.max(axis=1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(X_test), P / P.sum(axis=1, keepdims=True),
                               rtol=1e-4, atol=1e-6)
    clf.save(tmp_path / "elu.npz")
    loaded = DBNClassifier.load(tmp_path / "elu.npz")
    assert loaded.activation == "elu"
    np.testing.assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))
    with pytest.raises(ValueError, match="activation"):
        DBNClassifier(activation="selu").fit(X_train, y_train)


@pytest.mark.parametrize("load", [load_diabetes, lambda return_X_y: make_friedman1(
    n_samples=1000, noise=1.0, random_state=0)], ids=["diabetes", "friedman1"])
def test_regressor_defaults_reach_mlp_on_unscaled_data(load):
    # raw inputs (diabetes: centred and scaled to small values; friedman1: uniform in
    # [0, 1]) and raw targets (diabetes: 25-346): the regressor standardises the targets
    # and, for data outside [0, 1], the inputs, so its defaults train stably
    X, y = load(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    ours = quiet(DBNRegressor(random_state=0), X_train, y_train)
    theirs = quiet(MLPRegressor(random_state=0), X_train, y_train)
    assert ours.score(X_test, y_test) >= theirs.score(X_test, y_test)
    assert ours.score(X_test, y_test) > 0.3
    assert ours.predict(X_test).dtype == np.float64


def test_classifier_defaults_on_raw_iris():
    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    clf = quiet(DBNClassifier(random_state=0), X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.95
    assert clf.first_layer_ == "gaussian" and type(clf.rbms_[0]).__name__ == \
        "GaussianBernoulliRBM" and clf.rbms_[0].learning_rate == 0.01


def test_inputs_outside_the_unit_interval_are_standardised():
    rng = np.random.default_rng(0)
    X = rng.normal(50, 10, (300, 3))
    y = X[:, 0] - 2 * X[:, 1]
    reg = quiet(DBNRegressor((16,), max_iter=30, random_state=0), X, y)
    np.testing.assert_allclose(reg.input_mean_, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(reg.input_scale_, X.std(axis=0), rtol=1e-12)
    np.testing.assert_allclose(reg.target_mean_, [y.mean()], rtol=1e-12)
    np.testing.assert_allclose(reg.target_scale_, [y.std()], rtol=1e-12)
    # the pretrained first layer saw the standardised data
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    np.testing.assert_allclose(reg.rbms_[0].transform(Z),
                               ref.sigmoid(Z @ reg.rbms_[0].components_.T
                                           + reg.rbms_[0].intercept_hidden_), rtol=1e-10)
    # predictions: the net on standardised inputs, mapped back to the units of y
    H = ref.sigmoid(Z @ reg.coefs_[0] + reg.intercepts_[0])
    np.testing.assert_allclose(reg.predict(X), (H @ reg.coefs_[1] + reg.intercepts_[1])
                               .ravel() * y.std() + y.mean(), rtol=1e-10)
    assert reg.score(X, y) > 0.9
    # a constant feature gets scale 1, a forced Bernoulli layer takes X as given
    X[:, 2] = 7.0
    assert quiet(DBNRegressor((4,), max_iter=2, random_state=0), X, y).input_scale_[2] == 1
    bernoulli = DBNRegressor((4,), first_layer="bernoulli", max_iter=2, pretrain_n_iter=1,
                             random_state=0)
    with pytest.warns(UserWarning, match="BernoulliRBM models binary data"):
        quiet(bernoulli, X, y)
    assert bernoulli.input_mean_ is None and bernoulli.first_layer_ == "bernoulli"


def test_pretraining_epochs_scale_with_the_data():
    # "auto": 6000 updates per layer, 1 to 20 epochs; a given number is kept
    X = np.random.default_rng(0).random((2000, 8))
    dbn = DBN((8, 4), batch_size=[10, 50], random_state=0).fit(X)
    assert [r.n_iter for r in dbn.rbms_] == [20, 20]
    assert [r.learning_rate for r in dbn.rbms_] == [0.1, 0.1]
    from fastrbm.dbn import _pretrain_epochs

    assert [_pretrain_epochs(n, 10) for n in (30, 3000, 3001, 30000, 60000, 10**6)] == [
        20, 20, 20, 2, 1, 1]
    assert _pretrain_epochs(60000, 100) == 10
    assert DBN((4,), n_iter=3, random_state=0).fit(X).rbms_[0].n_iter_ == 3


def test_early_stopping_auto_holds_out_data_above_10000_rows():
    rng = np.random.default_rng(0)
    X, y = rng.random((10001, 3)), rng.integers(0, 2, 10001)
    kw = dict(hidden_layer_sizes=(4,), pretrain=False, max_iter=2, random_state=0)
    big = quiet(DBNClassifier(**kw), X, y)
    assert len(big.validation_scores_) == 2 and big.best_loss_ is None
    small = quiet(DBNClassifier(**kw), X[:10000], y[:10000])
    assert small.validation_scores_ is None and small.best_loss_ is not None
    forced = quiet(DBNClassifier(**kw, early_stopping=False), X, y)
    assert forced.validation_scores_ is None


def test_regressor_beats_linear_on_a_smooth_target():
    rng = np.random.default_rng(0)
    X = rng.random((1000, 4))
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2
    X_train, X_test, y_train, y_test = X[:750], X[750:], y[:750], y[750:]
    linear = LinearRegression().fit(X_train, y_train).score(X_test, y_test)
    # at the defaults: logistic nets sit near the linear fit for tens of epochs before they
    # bend, which the regressor's patience ("auto": 50 epochs) waits out
    reg = quiet(DBNRegressor(random_state=0), X_train, y_train)
    assert reg.score(X_test, y_test) > max(0.9, linear + 0.3)
    assert reg.predict(X_test).shape == (250,)


def test_pretraining_helps_a_deep_logistic_net(digits_split):
    # Four logistic hidden layers: from random (Glorot) weights the bottom layer's gradient
    # is orders of magnitude below the output layer's and ten epochs barely move the net;
    # from the pretrained stack both gradients and accuracy are far better.
    X_train, X_test, y_train, y_test = digits_split
    # The classic setting of the story: plain SGD with momentum (Adam's per-weight step
    # sizes partly make up for the vanishing gradient).
    kw = dict(hidden_layer_sizes=(64, 64, 64, 64), max_iter=10, pretrain_n_iter=10,
              solver="sgd", learning_rate_init=0.1, batch_size=32, random_state=0)
    pre = quiet(DBNClassifier(pretrain=True, **kw), X_train, y_train)
    rand = quiet(DBNClassifier(pretrain=False, **kw), X_train, y_train)
    assert pre.n_iter_ == rand.n_iter_ == 10
    assert pre.score(X_test, y_test) > rand.score(X_test, y_test) + 0.3
    s_pre, s_rand = gradient_norm_summary(pre), gradient_norm_summary(rand)
    for key in ("initial", "first_epoch", "last_epoch"):
        assert s_pre["ratio"][key] > 3 * s_rand["ratio"][key], key
    assert s_rand["ratio"]["initial"] < 1e-2
    # the pretrained net is the unrolled stack
    for W, b, rbm in zip(pre.coefs_, pre.intercepts_, pre.rbms_):
        assert W.shape == rbm.components_.T.shape and b.shape == rbm.intercept_hidden_.shape
    assert rand.rbms_ == []


def test_pretrained_weights_initialise_the_net(digits):
    X, y = digits
    clf = DBNClassifier(hidden_layer_sizes=(12, 8), pretrain_n_iter=2, max_iter=1,
                        learning_rate_init=1e-12, momentum=0.0, alpha=0.0, random_state=0)
    quiet(clf, X, y)
    for W, b, rbm in zip(clf.coefs_, clf.intercepts_, clf.rbms_):
        np.testing.assert_allclose(W, rbm.components_.T, atol=1e-6)
        np.testing.assert_allclose(b, rbm.intercept_hidden_, atol=1e-6)
    # the unrolled net computes the stack's features: check the output against an oracle
    H = clf.rbms_[1].transform(clf.rbms_[0].transform(X))
    Z = H @ clf.coefs_[2] + clf.intercepts_[2]
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(X), P / P.sum(axis=1, keepdims=True),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("activation", ["logistic", "relu", "elu"])
def test_init_scale_multiplies_the_random_initial_weights(digits, activation):
    X, y = digits
    nets = [quiet(DBNClassifier(hidden_layer_sizes=(12, 8), activation=activation,
                                pretrain=False, init_scale=scale, max_iter=1,
                                learning_rate_init=1e-12, momentum=0.0, alpha=0.0,
                                random_state=0), X, y) for scale in (1.0, 4.0)]
    for W1, W4, b1, b4 in zip(nets[0].coefs_, nets[1].coefs_, nets[0].intercepts_,
                              nets[1].intercepts_):
        np.testing.assert_allclose(W4, 4 * W1, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(b4, 4 * b1, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="init_scale"):
        DBNClassifier(init_scale=0.0).fit(X, y)


@pytest.mark.parametrize("settings", [
    dict(solver="adam", learning_rate_init=0.01), dict(solver="sgd"), dict(dropout=0.2),
    dict(batch_norm=True), dict(max_grad_norm=1.0),
    dict(activation="relu", pretrain=False), dict(activation="tanh"),
    dict(activation="elu", pretrain=False), dict(activation="elu"),
    dict(solver="sgd", learning_rate="invscaling", power_t=0.1, learning_rate_init=0.3),
    dict(solver="sgd", nesterovs_momentum=False),
])
def test_network_options_train(digits_split, settings):
    X_train, X_test, y_train, y_test = digits_split
    clf = quiet(DBNClassifier(hidden_layer_sizes=(32, 32), pretrain_n_iter=3, max_iter=15,
                              batch_size=32, random_state=0, **settings), X_train, y_train)
    assert clf.score(X_test, y_test) > 0.8
    assert clf.loss_curve_[-1] < 0.5 * clf.loss_curve_[0]


# ---------------------------------------------------------------- fitted attributes
def test_fitted_attributes(digits):
    X, y = digits
    clf = quiet(DBNClassifier(hidden_layer_sizes=(20, 10), pretrain_n_iter=2, max_iter=4,
                              random_state=0), X, y)
    assert clf.n_iter_ == 4 and len(clf.loss_curve_) == 4 and clf.t_ == 4 * len(X)
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 10 and clf.out_activation_ == "softmax"
    assert [W.shape for W in clf.coefs_] == [(64, 20), (20, 10), (10, 10)]
    assert clf.gradient_norms_.shape == (4, 3) and clf.initial_gradient_norms_.shape == (3,)
    assert (clf.gradient_norms_ > 0).all() and (clf.initial_gradient_norms_ > 0).all()
    assert clf.best_loss_ == min(clf.loss_curve_) and clf.validation_scores_ is None
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(P), rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), P.argmax(axis=1))


def test_string_labels_and_binary_problems(digits):
    X, y = digits
    mask = y < 2
    labels = np.where(y[mask] == 0, "zero", "one")
    clf = quiet(DBNClassifier(**SMALL_NET), X[mask], labels)
    assert list(clf.classes_) == ["one", "zero"]
    assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
    P = clf.predict_proba(X[mask])
    assert P.shape == (mask.sum(), 2)
    np.testing.assert_array_equal(clf.predict(X[mask]), clf.classes_[P.argmax(axis=1)])
    assert clf.score(X[mask], labels) > 0.95


@pytest.mark.parametrize("labels", [np.array([3, 1, 2, 1, 3, 7]), np.array([5, 2, 2, 5, 5, 2]),
                                    np.array(["b", "a", "c", "a", "b", "c"], dtype=object),
                                    np.array([4.0, -1.0, 4.0, 2.0, -1.0, 2.0])])
def test_classifier_targets_are_label_binarizer_encoded(labels):
    """The one-hot targets the engine trains on are LabelBinarizer's over classes_ (one
    column for two classes), and a later chunk with an unseen class is refused."""
    from sklearn.preprocessing import LabelBinarizer

    clf = DBNClassifier(hidden_layer_sizes=(4,), pretrain=False)
    clf.classes_ = np.unique(labels)
    for y in (labels, labels[::-1], labels[:1]):
        expected = LabelBinarizer().fit(clf.classes_).transform(y)
        np.testing.assert_array_equal(clf._one_hot(y, np.float32), expected)
        assert clf._one_hot(y, np.float32).dtype == np.float32
    unseen = np.concatenate([labels[:2], labels[:1]])
    unseen[1] = "z" if labels.dtype == object else 99
    with pytest.raises(ValueError, match="classes not in classes_"):
        clf._one_hot(unseen, np.float32)
    mixed = np.array([labels[0], "z", 99], dtype=object)  # incomparable labels
    with pytest.raises(ValueError, match="classes not in classes_"):
        clf._one_hot(mixed, np.float32)


def test_regressor_multi_output():
    rng = np.random.default_rng(1)
    X = rng.random((300, 3))
    Y = np.c_[X[:, 0] + X[:, 1], X[:, 2] - X[:, 0]]
    reg = quiet(DBNRegressor(hidden_layer_sizes=(16,), pretrain_n_iter=2, max_iter=100,
                             solver="adam", learning_rate_init=0.01, random_state=0), X, Y)
    assert reg.predict(X).shape == (300, 2) and reg.n_outputs_ == 2
    assert reg.out_activation_ == "identity" and reg.score(X, Y) > 0.8


def test_early_stopping_restores_the_best_weights(digits):
    X, y = digits
    seed = 3
    clf = DBNClassifier(hidden_layer_sizes=(32,), pretrain_n_iter=2, max_iter=100,
                        early_stopping=True, n_iter_no_change=3, validation_fraction=0.2,
                        solver="sgd", learning_rate_init=0.3, random_state=seed).fit(X, y)
    assert clf.n_iter_ < 100 and len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_loss_ is None
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert np.argmax(clf.validation_scores_) < clf.n_iter_ - 1  # the last epoch was not best
    # the estimator's split is the first draw of its random_state
    _, X_val, _, y_val = train_test_split(X, y, test_size=0.2, stratify=y,
                                          random_state=np.random.RandomState(seed))
    assert accuracy_score(y_val, clf.predict(X_val)) == clf.best_validation_score_


def test_convergence_warning_and_tol_stop(digits):
    X, y = digits
    with pytest.warns(ConvergenceWarning, match="maximum iterations"):
        DBNClassifier(**{**SMALL_NET, "max_iter": 2}).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = DBNClassifier(**{**SMALL_NET, "max_iter": 200}, tol=10.0,
                            n_iter_no_change=2).fit(X, y)
    assert clf.n_iter_ == 4  # epoch 1 improves on inf, then 3 epochs without progress


@pytest.mark.parametrize("solver, schedule", [("sgd", "constant"), ("sgd", "adaptive"),
                                              ("sgd", "invscaling"), ("adam", "constant")])
def test_stopping_rule_matches_sklearn(digits, solver, schedule):
    # tol so large that no epoch counts as progress: the epoch count is the stopping rule
    # alone ("adaptive" divides the step by 5 each time until it is below 1e-6)
    X, y = digits
    kw = dict(solver=solver, learning_rate=schedule, tol=1e9, n_iter_no_change=2,
              max_iter=100, learning_rate_init=0.01, random_state=0)
    ours = DBNClassifier(hidden_layer_sizes=(8,), pretrain=False, **kw).fit(X[:200], y[:200])
    theirs = MLPClassifier(hidden_layer_sizes=(8,), activation="logistic", **kw).fit(
        X[:200], y[:200])
    assert ours.n_iter_ == theirs.n_iter_


def test_partial_fit(digits):
    X, y = digits
    kw = dict(hidden_layer_sizes=(16,), pretrain_n_iter=2, random_state=0)
    streamed = DBNClassifier(**kw)
    with pytest.raises(ValueError, match="classes must be passed"):
        streamed.partial_fit(X, y)
    assert not hasattr(streamed, "classes_")
    streamed.partial_fit(X, y, classes=np.arange(10))
    # the first call is fit with one epoch (same random stream)
    one_epoch = quiet(DBNClassifier(max_iter=1, **kw), X, y)
    for a, b in zip(streamed.coefs_, one_epoch.coefs_):
        np.testing.assert_array_equal(a, b)
    for _ in range(3):
        streamed.partial_fit(X[:900], y[:900])
    assert streamed.n_iter_ == 4 and len(streamed.loss_curve_) == 4
    assert streamed.loss_curve_[-1] < streamed.loss_curve_[0]
    with pytest.raises(ValueError, match="not the same"):
        streamed.partial_fit(X, y, classes=np.arange(11))
    with pytest.raises(ValueError, match="not in classes_"):
        streamed.partial_fit(X[:5], np.full(5, 12))
    assert streamed.n_iter_ == 4


def test_warm_start_continues(digits):
    X, y = digits
    clf = quiet(DBNClassifier(**{**SMALL_NET, "max_iter": 3}, warm_start=True), X, y)
    rbm = clf.rbms_[0]
    first = clf.coefs_[0].copy()
    quiet(clf, X, y)
    assert clf.n_iter_ == 6 and len(clf.loss_curve_) == 6 and clf.gradient_norms_.shape[0] == 6
    assert clf.rbms_[0] is rbm and not np.array_equal(clf.coefs_[0], first)
    with pytest.raises(ValueError, match="classes"):
        clf.fit(X[y < 5], y[y < 5])
    clf.set_params(hidden_layer_sizes=(17,))
    with pytest.raises(ValueError, match="shape"):
        clf.fit(X, y)


# ----------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("estimator", [
    DBNClassifier(hidden_layer_sizes=(128, 64), pretrain_n_iter=1, pretrain_batch_size=64,
                  batch_size=128, max_iter=2, dropout=0.1, random_state=7),
    DBNRegressor(hidden_layer_sizes=(128,), pretrain=False, batch_size=128, max_iter=2,
                 batch_norm=True, solver="adam", random_state=7),
    # 128 x 256 x 256 multiply-adds per batch GEMM: the blocked engine (Numba threads)
    DBNClassifier(hidden_layer_sizes=(256, 256), pretrain=False, batch_size=128, max_iter=2,
                  batch_norm=[True, False], dropout=0.1, solver="adam", random_state=7),
])
def test_same_seed_same_model_for_any_thread_count(digits, estimator):
    # mini-batches of 128 rows: large enough for OpenBLAS to split the GEMMs over 2 threads
    X, y = digits[0][:768], digits[1][:768]
    models = [quiet(clone(estimator).set_params(n_jobs=n), X, y) for n in (1, 2, 1)]
    if estimator.hidden_layer_sizes == (256, 256) and n_threads_for(None) > 1:
        assert models[0]._blocks(128) > 1  # the blocked engine ran
    for m in models[1:]:
        for a, b in zip(m.coefs_ + m.intercepts_, models[0].coefs_ + models[0].intercepts_):
            np.testing.assert_array_equal(a, b)
        assert m.loss_curve_ == models[0].loss_curve_
        np.testing.assert_array_equal(m.gradient_norms_, models[0].gradient_norms_)
    other = quiet(clone(estimator).set_params(random_state=8), X, y)
    assert not np.array_equal(other.coefs_[0], models[0].coefs_[0])


def test_training_holds_blas_at_one_thread(digits, monkeypatch):
    """Training may mix two BLAS libraries (an ILP64 OpenBLAS found loaded, NumPy's, for
    forward and weight-gradient products; SciPy's for the deltas), which must never both
    run threads (their spinning threads starved each other: 11.4 s for a 0.2 s epoch):
    every limit set while fitting with n_jobs=2 is one thread, except around predict (one
    library). No library is found by a wheel's file names."""
    import inspect

    import fastrbm._network as network_module
    from fastrbm._kernels import backprop

    limits, real = [], network_module.blas_threads
    monkeypatch.setattr(network_module, "blas_threads", lambda n: limits.append(n) or real(n))
    X, y = digits[0][:400], digits[1][:400]
    clf = quiet(DBNClassifier(hidden_layer_sizes=(32, 32), pretrain=False, max_iter=2,
                              n_jobs=2, random_state=0), X, y)
    assert limits and set(limits) == {1}
    limits.clear()
    clf.predict(X)
    assert limits == [clf._threads(min(len(X), network_module.PREDICT_ROWS))]
    for kernel in (backprop.predict, backprop.dense_forward):  # one library there
        assert "_gemm" not in kernel.py_func.__code__.co_names
    assert "_gemm_ilp64" in backprop.dense_forward.py_func.__code__.co_names
    assert "numpy.libs" not in inspect.getsource(backprop)


def test_dbn_same_seed_same_stack_and_samples(digits):
    X, _ = digits
    kw = dict(hidden_layer_sizes=(128, 64), n_iter=2, batch_size=64, random_state=1)
    a, b = DBN(n_jobs=1, **kw).fit(X), DBN(n_jobs=2, **kw).fit(X)
    for ra, rb in zip(a.rbms_, b.rbms_):
        np.testing.assert_array_equal(ra.components_, rb.components_)
    s = a.sample(20, n_steps=30, random_state=5)
    np.testing.assert_array_equal(s, b.sample(20, n_steps=30, random_state=5))
    assert not np.array_equal(s, a.sample(20, n_steps=30, random_state=6))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forced_dtype(digits, dtype):
    X, y = digits
    clf = quiet(DBNClassifier(**SMALL_NET, dtype=dtype), X.astype(np.float64), y)
    assert clf.coefs_[0].dtype == dtype and clf.rbms_[0].components_.dtype == dtype
    assert clf.predict_proba(X).dtype == dtype
    reg = quiet(DBNRegressor(**SMALL_NET, dtype=dtype), X, y.astype(float) / 9)
    assert reg.predict(X).dtype == dtype and reg.target_mean_.dtype == dtype
    dbn = DBN((8,), n_iter=1, dtype=dtype, random_state=0).fit(X)
    assert dbn.transform(X).dtype == dtype and dbn.sample(2, 2, random_state=0).dtype == dtype
    assert dbn.__sklearn_tags__().transformer_tags.preserves_dtype == [dtype]


@pytest.mark.parametrize("given, fitted", [(np.float32, np.float32), (np.float64, np.float64),
                                           (np.int64, np.float64), (list, np.float64)])
def test_dtype_follows_the_data(digits, given, fitted):
    # dtype=None: scikit-learn's rule; later partial_fit chunks convert to the fitted one
    X, y = digits
    X = (X * 16).round()  # integral values in [0, 16]: a Gaussian first layer
    X = X.tolist() if given is list else X.astype(given)
    clf = quiet(DBNClassifier(**SMALL_NET), X, y)
    assert clf.coefs_[0].dtype == fitted and clf.rbms_[0].components_.dtype == fitted
    assert clf.input_mean_.dtype == fitted and clf.predict_proba(X).dtype == fitted
    other = np.float64 if fitted == np.float32 else np.float32
    clf.partial_fit(np.asarray(X, other), y)
    assert clf.coefs_[0].dtype == fitted and clf.predict_proba(np.asarray(X, other)).dtype \
        == fitted
    reg = quiet(DBNRegressor(**SMALL_NET), X, y)  # integer targets, float predictions
    assert reg.predict(X).dtype == fitted
    dbn = DBN((8,), n_iter=1, random_state=0).fit(X)
    assert dbn.transform(X).dtype == fitted and dbn.sample(2, 2, random_state=0).dtype == fitted
    assert dbn.__sklearn_tags__().transformer_tags.preserves_dtype == ["float64", "float32"]


# ----------------------------------------------------------------------------- DBN
def test_dbn_stack_transform_and_per_layer_settings(digits):
    X, _ = digits
    dbn = DBN(hidden_layer_sizes=(32, 16, 8), n_iter=[3, 2, 1], learning_rate=0.05,
              k=[1, 2, 1], persistent=[True, False, True], batch_size=(10, 20, 30),
              random_state=0).fit(X)
    assert [r.n_iter_ for r in dbn.rbms_] == [3, 2, 1]
    assert [r.k for r in dbn.rbms_] == [1, 2, 1]
    assert [r.persistent for r in dbn.rbms_] == [True, False, True]
    assert [r.n_features_in_ for r in dbn.rbms_] == [64, 32, 16]
    H = X
    for rbm in dbn.rbms_:  # greedy: each layer on the hidden probabilities below
        H = ref.sigmoid(H @ rbm.components_.T.astype(np.float64) + rbm.intercept_hidden_)
    np.testing.assert_allclose(dbn.transform(X), H, rtol=1e-4, atol=1e-6)
    assert list(dbn.get_feature_names_out()) == [f"dbn{i}" for i in range(8)]
    # no sub-estimators in __init__: the parameters are the whole constructor state
    assert set(vars(DBN())) == set(DBN().get_params())


def test_dbn_sample_is_binary_and_learns_the_marginals():
    rng = np.random.default_rng(0)
    protos = rng.random((3, 12)) < 0.5
    X = (protos[rng.integers(0, 3, 600)] ^ (rng.random((600, 12)) < 0.05)).astype(float)
    dbn = DBN(hidden_layer_sizes=(16, 16), n_iter=30, learning_rate=0.05, persistent=False,
              random_state=0).fit(X)
    samples = dbn.sample(1000, n_steps=100, random_state=0)
    assert samples.shape == (1000, 12) and set(np.unique(samples)) <= {0.0, 1.0}
    # top-down generation is approximate (the lower layers' priors are not the trained
    # upper RBMs' marginals), but far closer to the data than an untrained stack
    untrained = DBN(hidden_layer_sizes=(16, 16), n_iter=0, random_state=0).fit(X)
    error = np.abs(samples.mean(axis=0) - X.mean(axis=0)).max()
    untrained_error = np.abs(untrained.sample(1000, 100, random_state=0).mean(axis=0)
                             - X.mean(axis=0)).max()
    assert error < 0.15 and untrained_error > 0.3
    probs = dbn.sample(5, n_steps=3, random_state=0, probabilities=True)
    assert ((probs > 0) & (probs < 1)).all()
    with pytest.raises(ValueError, match="n_samples"):
        dbn.sample(0)


def test_dbn_sparse_input_gives_the_same_model(digits):
    import scipy.sparse as sp

    X, _ = digits
    kw = dict(hidden_layer_sizes=(8, 4), n_iter=1, random_state=0)
    dense, sparse = DBN(**kw).fit(X), DBN(**kw).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(dense.rbms_[0].components_, sparse.rbms_[0].components_)
    # the layer above trains on features that differ in rounding only
    np.testing.assert_allclose(dense.rbms_[1].components_, sparse.rbms_[1].components_,
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dense.transform(X), sparse.transform(sp.csr_matrix(X)),
                               rtol=1e-5)


# ---------------------------------------------------------------------- robustness
@pytest.mark.parametrize("make", [
    lambda: DBN((8, 4), n_iter=1, random_state=0),
    lambda: DBNClassifier(**SMALL_NET),
    lambda: DBNRegressor(**SMALL_NET),
])
def test_rejected_calls_leave_a_fitted_model_unchanged(digits, make):
    X, y = digits
    model = quiet(make(), X, y)
    snapshot = pickle.dumps(model)

    def state(m):  # every attribute, compared by value
        return {name: pickle.dumps(value) for name, value in vars(m).items()}

    expected = state(model)
    X_nan = X.copy()
    X_nan[3, 3] = np.nan
    bad_calls = [
        ((X_nan, y), {}, "NaN"),
        ((X, y[:-1]), {}, "inconsistent"),
        ((X, y), dict(hidden_layer_sizes=()), "empty"),
        ((X, y), dict(hidden_layer_sizes=(8, 0)), "hidden_layer_sizes"),
        ((X, y), dict(first_layer="poisson"), "first_layer"),
    ]
    if isinstance(model, DBN):
        bad_calls = [c for c in bad_calls if "inconsistent" != c[2]] + [
            ((X,), dict(n_iter=[1, 2, 3]), "n_iter holds 3 values for 2 layers"),
            ((X,), dict(learning_rate=[0.1, -1.0]), "layer 2 .*learning_rate"),
        ]
    else:
        bad_calls += [
            ((X, y), dict(pretrain_n_iter=[1, 2]), "pretrain_n_iter holds 2 values"),
            ((X, y), dict(pretrain_learning_rate=[-1.0]), "layer 1 .*learning_rate"),
            ((X, y), dict(dropout=[1.5]), "dropout"),
            ((X, y), dict(learning_rate_init=0), "learning_rate_init"),
            ((X, y), dict(early_stopping=True, validation_fraction=0.0005), "validation|test_size"),
        ]
    if isinstance(model, DBNClassifier):
        bad_calls.append(((X, np.zeros(len(X))), {}, "only one class"))
        bad_calls.append(((X, y + 0.5), {}, "Unknown label type"))
    for args, params, match in bad_calls:
        candidate = pickle.loads(snapshot)
        candidate.set_params(**params)
        with pytest.raises(ValueError, match=match):
            candidate.fit(*args)
        candidate.set_params(**{k: getattr(model, k) for k in params})
        assert state(candidate) == expected, (args[0].shape, params)
    if isinstance(model, DBN):
        model.transform(X)
        return
    for call in (model.partial_fit, model.predict):
        with pytest.raises(ValueError, match="features"):
            call(*((X[:, :10], y) if call == model.partial_fit else (X[:, :10],)))
    assert state(model) == expected
    model.predict(X)


def test_divergence_raises_and_keeps_a_finite_model():
    rng = np.random.default_rng(0)
    X = rng.random((100, 5))
    y = rng.standard_normal(100)
    reg = DBNRegressor(hidden_layer_sizes=(8,), pretrain=False, solver="sgd", batch_size=10,
                       learning_rate_init=100.0, dtype="float32", random_state=0)
    with pytest.raises(FloatingPointError, match="diverged in epoch"):
        reg.fit(X, y)
    assert all(np.isfinite(W).all() for W in reg.coefs_)
    assert np.isfinite(reg.predict(X)).all() and len(reg.loss_curve_) == reg.n_iter_


def test_keyboard_interrupt_keeps_the_completed_epochs(digits, monkeypatch,
                                                     interrupt_second_call):
    from fastrbm import dbn as dbn_module

    X, y = digits
    one_epoch = quiet(DBNClassifier(**{**SMALL_NET, "max_iter": 1}), X, y)
    interrupt_second_call(dbn_module._bp, "run_epoch")
    with pytest.warns(RuntimeWarning, match="interrupted"):
        clf = DBNClassifier(**SMALL_NET).fit(X, y)
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 1 and len(clf.gradient_norms_) == 1
    np.testing.assert_array_equal(clf.coefs_[0], one_epoch.coefs_[0])
    monkeypatch.undo()
    clf.partial_fit(X, y)  # still usable


def test_keyboard_interrupt_during_pretraining(digits, monkeypatch, interrupt_second_call):
    from fastrbm import rbm as rbm_module

    X, y = digits
    calls = interrupt_second_call(rbm_module._sampling, "cd_epoch")
    with pytest.warns(RuntimeWarning, match="interrupted"):
        dbn = DBN((8, 4), n_iter=3, random_state=0).fit(X)
    assert [r.n_iter_ for r in dbn.rbms_] == [1, 0]
    assert dbn.transform(X).shape == (len(X), 4)
    calls.clear()
    with pytest.warns(RuntimeWarning, match="interrupted"):
        clf = DBNClassifier(hidden_layer_sizes=(8, 4), pretrain_n_iter=3, random_state=0).fit(
            X, y)
    assert clf.n_iter_ == 0 and clf.predict(X).shape == (len(X),)


# ------------------------------------------------------------------- integration
def test_clone_and_pickle_round_trip(digits):
    X, y = digits
    clf = quiet(DBNClassifier(**SMALL_NET, dropout=0.1), X, y)
    assert clone(clf).get_params() == clf.get_params()
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    copy.partial_fit(X, y)
    clf.partial_fit(X, y)
    np.testing.assert_array_equal(copy.coefs_[0], clf.coefs_[0])  # views survive pickling
    dbn = DBN((8,), n_iter=1, random_state=0).fit(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(dbn)).transform(X),
                                  dbn.transform(X))


def test_pipeline_and_grid_search(digits):
    X, y = digits
    pipe = Pipeline([("scale", MinMaxScaler()),
                     ("dbn", DBNClassifier(hidden_layer_sizes=(16,), pretrain_n_iter=2,
                                           solver="sgd", batch_size=32, max_iter=30,
                                           random_state=0))])
    grid = GridSearchCV(pipe, {"dbn__pretrain": [True, False],
                               "dbn__pretrain_n_iter": [1, [2]]}, cv=2)
    quiet(grid, X[:600], y[:600])
    assert grid.best_score_ > 0.8 and set(grid.best_params_) == {"dbn__pretrain",
                                                                 "dbn__pretrain_n_iter"}
    features = Pipeline([("dbn", DBN((16,), n_iter=2, random_state=0)),
                         ("clf", DBNClassifier(hidden_layer_sizes=(8,), pretrain=False,
                                               solver="sgd", batch_size=32, max_iter=30,
                                               random_state=0))])
    assert quiet(features, X, y).score(X, y) > 0.6


def _mlp_lines(out):
    """The lines scikit-learn's MLP prints, numbers replaced by N."""
    return [re.sub(r"\d+(\.\d+)?", "N", line) for line in out.splitlines()
            if not line.startswith("[")]


@pytest.mark.parametrize("settings", [
    dict(), dict(early_stopping=True, validation_fraction=0.2),
    dict(solver="sgd", learning_rate="adaptive"),
], ids=["loss", "validation", "adaptive"])
def test_verbose_prints_mlp_lines(digits, capsys, settings):
    # tol so large that no epoch counts as progress: the stopping messages appear
    X, y = digits
    kw = dict(hidden_layer_sizes=(8,), max_iter=30, tol=1e9, n_iter_no_change=2,
              learning_rate_init=0.01, random_state=0, verbose=1, **settings)
    ours = DBNClassifier(pretrain_n_iter=2, **kw).fit(X[:300], y[:300])
    out = capsys.readouterr().out
    assert out.count("[BernoulliRBM] Iteration") == 2  # the pretraining RBM's own lines
    MLPClassifier(activation="logistic", **kw).fit(X[:300], y[:300])
    theirs = capsys.readouterr().out
    assert _mlp_lines(out) == _mlp_lines(theirs)
    assert len(_mlp_lines(out)) > ours.n_iter_ > 0
    quiet(DBNClassifier(**{**SMALL_NET, "max_iter": 2}), X, y)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------------------
# Gaussian first layer (real-valued input)
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def standardised_digits_split(digits):
    from sklearn.preprocessing import StandardScaler

    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    return (scaler.transform(X_train).astype(np.float32),
            scaler.transform(X_test).astype(np.float32), y_train, y_test)


def test_dbn_gaussian_first_layer_models_real_valued_data(standardised_digits_split):
    from fastrbm import GaussianBernoulliRBM

    X_train, X_test, _, _ = standardised_digits_split
    dbn = DBN((48, 16), first_layer="gaussian", learning_rate=[0.01, 0.1], n_iter=5,
              random_state=0).fit(X_train)
    assert isinstance(dbn.rbms_[0], GaussianBernoulliRBM)
    assert type(dbn.rbms_[1]).__name__ == "BernoulliRBM"
    H = dbn.transform(X_test)
    assert H.shape == (len(X_test), 16) and np.isfinite(H).all()
    samples = dbn.sample(6, 20, random_state=0)
    assert samples.shape == (6, 64) and np.isfinite(samples).all()
    # Real-valued samples (not 0/1), reproducible from random_state.
    assert len(np.unique(samples)) > 100
    np.testing.assert_array_equal(samples, dbn.sample(6, 20, random_state=0))
    means = dbn.sample(6, 20, random_state=0, probabilities=True)
    assert 0.3 < np.std(samples - means) < 3.0  # unit-variance noise around the means


def test_dbn_one_gaussian_layer_samples_real_values(standardised_digits_split):
    X_train = standardised_digits_split[0]
    dbn = DBN(16, first_layer="gaussian", learning_rate=0.01, n_iter=3,
              random_state=0).fit(X_train)
    samples = dbn.sample(5, 10, random_state=1)
    assert np.isfinite(samples).all() and len(np.unique(samples)) > 50


def test_dbn_gaussian_divergence_names_the_layer(standardised_digits_split):
    X_train = standardised_digits_split[0]
    with pytest.raises(FloatingPointError, match=r"layer 1 of 2.*learning rate"):
        DBN((32, 8), first_layer="gaussian", learning_rate=50.0, n_iter=2,
            random_state=0).fit(X_train)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_dbn_classifier_on_standardised_data_with_gaussian_first_layer(
        standardised_digits_split):
    X_train, X_test, y_train, y_test = standardised_digits_split
    clf = DBNClassifier((128, 64), first_layer="gaussian", pretrain_learning_rate=[0.01, 0.1],
                        max_iter=30, random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.93


def test_threads_fitting_and_predicting_concurrently_match_serial(digits_split):
    # The Numba engine releases the GIL (nogil kernels) and uses no parallel=True, so Python
    # threads may share it; results must be those of serial calls.
    from concurrent.futures import ThreadPoolExecutor

    X_train, X_test, y_train, _ = digits_split
    make = [lambda s=s: DBNClassifier((32,), pretrain_n_iter=2, max_iter=3, random_state=s)
            for s in (1, 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        serial = [m().fit(X_train, y_train) for m in make]
        with ThreadPoolExecutor(2) as pool:
            parallel = list(pool.map(lambda m: m().fit(X_train, y_train), make))
    for a, b in zip(serial, parallel):
        for wa, wb in zip(a.coefs_, b.coefs_):
            np.testing.assert_array_equal(wa, wb)
    chunks = np.array_split(X_test, 8)
    with ThreadPoolExecutor(4) as pool:
        proba = np.vstack(list(pool.map(serial[0].predict_proba, chunks)))
    # the same chunks serially (BLAS may round a 56-row product unlike a 450-row one)
    np.testing.assert_array_equal(proba, np.vstack([serial[0].predict_proba(c)
                                                    for c in chunks]))


def test_blas_limit_holds_until_the_last_open_block_closes():
    """BLAS limits are process-wide. Two fits in two Python threads each hold BLAS at one
    thread; the one that finishes first must not restore the original count under the
    other (its products would switch thread count mid-fit and change its bits): blocks
    close in any order, and the original comes back with the last one."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from fastrbm._utils import blas_threads

    def counts():
        return {m["num_threads"] for m in threadpool_info() if m["user_api"] == "blas"}

    with threadpool_limits(limits=2, user_api="blas"):
        original = counts()
        first, second = blas_threads(1), blas_threads(1)
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)  # the first fit ends while the second still runs
        assert counts() == {1}
        with blas_threads(2):  # a predict opening meanwhile does not lift the training limit
            assert counts() == {1}
        second.__exit__(None, None, None)
        assert counts() == original


def test_partial_fit_after_fit_with_early_stopping(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    clf = quiet(DBNClassifier((16,), early_stopping=True, pretrain_n_iter=2, max_iter=5,
                              random_state=0), X_train, y_train)
    assert clf.best_loss_ is None
    clf.partial_fit(X_train, y_train)
    assert np.isfinite(clf.best_loss_) and np.isfinite(clf.predict_proba(X_test)).all()


def test_fitted_state_declared_once():
    """Checkpoints and rollback derive from the one table of the network's fitted arrays;
    the rollback copies into buffers allocated once and restores in place."""
    from fastrbm._network import FITTED_ARRAYS, TRAINED_ROLES, Rollback

    names = tuple(entry.name for entry in FITTED_ARRAYS)
    for cls in (DBNClassifier, DBNRegressor):
        assert cls._checkpoint_arrays[:len(names)] == names
    a, b = np.arange(5.0), np.arange(3.0)
    rollback = Rollback([a, b])
    saved = [s for s in rollback._saved]
    rollback.save()
    a[:], b[:] = -1.0, -2.0
    rollback.restore()
    np.testing.assert_array_equal(a, np.arange(5.0))
    np.testing.assert_array_equal(b, np.arange(3.0))
    rollback.save()
    assert all(s is t for s, t in zip(saved, rollback._saved))
    assert {entry.role for entry in FITTED_ARRAYS} - {"layout"} == set(TRAINED_ROLES)
