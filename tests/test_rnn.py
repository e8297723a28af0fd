"""RNNClassifier and RNNRegressor: scikit-learn's checks at the defaults, the gradient
through time, variable lengths, checkpoints, determinism, divergence, Ctrl-C, bad input.
The kernels themselves are tested against their NumPy oracle in test_recurrent_kernels."""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from fastrbm import RNNClassifier, RNNRegressor
from fastrbm import rnn as rnn_module
from fastrbm.datasets import make_adding_problem, make_temporal_order
from fastrbm.diagnostics import gradient_norm_summary, gradient_through_time_summary

SMALL = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)


def quiet(estimator, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args, **kwargs)


@pytest.fixture(scope="module")
def adding():
    return make_adding_problem(n_samples=300, n_steps=12, random_state=0)


@pytest.fixture(scope="module")
def order():
    return make_temporal_order(n_samples=300, n_steps=20, random_state=0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(
    [RNNClassifier(), RNNRegressor(), RNNClassifier(cell="tanh", dtype="float32")],
    # float32 only: BLAS rounds a row's product by the row's place in the block, so a
    # permuted X's outputs differ in the last bits (float64 passes at rtol 1e-7)
    expected_failed_checks=lambda est: {
        "check_methods_sample_order_invariance": "float32 BLAS rounding by row position"}
    if est.dtype == "float32" else {})
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_defaults_learn_the_temporal_order_problem(order):
    X, y = order
    clf = quiet(RNNClassifier(random_state=0), X[:240], y[:240])
    assert clf.score(X[240:], y[240:]) > 0.9


def test_defaults_learn_the_adding_problem():
    X, y = make_adding_problem(n_samples=1200, n_steps=10, random_state=1)
    reg = quiet(RNNRegressor(random_state=0), X[:1000], y[:1000])
    mse = np.mean((reg.predict(X[1000:]) - y[1000:]) ** 2)
    assert mse < 0.02  # predicting 1 always: 0.167


@pytest.mark.parametrize("cell", ["tanh", "sigmoid", "relu", "lstm"])
def test_every_cell_fits_and_records_the_monitors(adding, cell):
    X, y = adding
    reg = quiet(RNNRegressor(cell=cell, **SMALL), X, y)
    assert reg.gradient_norms_through_time_.shape == (3, 12)
    assert reg.initial_gradient_norms_through_time_.shape == (12,)
    assert reg.gradient_norms_.shape == (3, 3)  # W_1, U_1, W_out
    assert np.isfinite(reg.gradient_norms_through_time_).all()
    summary = gradient_norm_summary(reg)
    assert summary["layers"][1].startswith("U1")
    assert len(reg.coefs_.W) == 1 and reg.coefs_.W_out.shape == (8, 1)


def test_the_gradient_vanishes_through_a_sigmoid_net_not_through_an_lstm():
    """The story in numbers: 60 steps back, a logistic recurrent net's gradient is below
    1e-6 of the last step's; the LSTM's (forget bias 1) keeps far more of it."""
    X, y = make_adding_problem(n_samples=200, n_steps=60, random_state=0)
    ratios = {cell: gradient_through_time_summary(
        quiet(RNNRegressor(cell=cell, hidden_layer_sizes=(16,), max_iter=1, random_state=0),
              X, y))["ratio"]["initial"] for cell in ("sigmoid", "lstm")}
    assert ratios["sigmoid"] < 1e-6
    assert ratios["lstm"] > 1e3 * ratios["sigmoid"]


def test_lengths_ignore_what_follows_each_sequence(order):
    X, y = order
    lengths = np.random.default_rng(0).integers(5, 21, X.shape[0])
    padded = X.copy()
    for i, n in enumerate(lengths):
        padded[i, n:] = 7.0  # any finite padding
    a = quiet(RNNClassifier(**SMALL), X, y, lengths=lengths)
    b = quiet(RNNClassifier(**SMALL), padded, y, lengths=lengths)
    np.testing.assert_array_equal(a.coefs_.W[0], b.coefs_.W[0])
    np.testing.assert_array_equal(a.predict_proba(X, lengths), b.predict_proba(padded, lengths))
    # a sequence cut to its first n steps and padded reads the same as its n-step version
    short = X[:, :10].copy()
    np.testing.assert_allclose(
        a.predict_proba(np.concatenate([short, np.zeros_like(X[:, 10:])], axis=1),
                        np.full(X.shape[0], 10)),
        a.predict_proba(X, np.full(X.shape[0], 10)))


@pytest.mark.parametrize("Estimator", [RNNClassifier, RNNRegressor])
def test_same_model_for_any_blas_thread_count(Estimator, adding, order):
    X, y = order if Estimator is RNNClassifier else adding
    models = []
    for threads in (1, 2):  # at the default size, where OpenBLAS would use two threads
        with threadpool_limits(threads):
            models.append(quiet(Estimator(max_iter=2, random_state=0), X, y))
    np.testing.assert_array_equal(models[0]._theta, models[1]._theta)
    np.testing.assert_array_equal(models[0].gradient_norms_through_time_,
                                  models[1].gradient_norms_through_time_)


@pytest.mark.parametrize("Estimator", [RNNClassifier, RNNRegressor])
def test_checkpoint_resumes_bitwise(Estimator, adding, order, tmp_path):
    X, y = order if Estimator is RNNClassifier else adding
    kwargs = {"classes": np.unique(y)} if Estimator is RNNClassifier else {}
    model = Estimator(random_state=0)  # the defaults
    model.partial_fit(X, y, **kwargs)
    model.save(tmp_path / "rnn.npz")
    loaded = Estimator.load(tmp_path / "rnn.npz")
    model.partial_fit(X, y)
    loaded.partial_fit(X, y)
    np.testing.assert_array_equal(model._theta, loaded._theta)
    np.testing.assert_array_equal(model.predict(X), loaded.predict(X))
    np.testing.assert_array_equal(model.gradient_norms_through_time_,
                                  loaded.gradient_norms_through_time_)


def test_corrupt_checkpoint_is_refused(adding, tmp_path):
    X, y = adding
    reg = quiet(RNNRegressor(**SMALL), X, y)
    reg._theta = reg._theta[:-1]
    reg.save(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="does not fit the layout"):
        RNNRegressor.load(tmp_path / "bad.npz")


def test_exploding_gradients_diverge_cleanly_and_clipping_trains(adding):
    """tanh net with recurrent weights at spectral radius 3 and a large SGD step: without
    clipping the weights blow up and the fit raises, leaving the last finite epoch; with
    max_grad_norm it trains."""
    X, y = adding
    settings = dict(cell="relu", hidden_layer_sizes=(16,), init_scale=3.0, solver="sgd",
                    learning_rate_init=1.0, max_iter=20, random_state=0)
    reg = RNNRegressor(**settings)
    with pytest.raises(FloatingPointError, match="diverged in epoch"), \
            pytest.warns(ConvergenceWarning, match="training is diverging"):
        reg.fit(X, y)
    assert np.isfinite(reg._theta).all() and len(reg.loss_curve_) == reg.n_iter_
    clipped = quiet(RNNRegressor(**{**settings, "learning_rate_init": 0.01,
                                    "max_grad_norm": 1.0}), X, y)
    assert np.isfinite(clipped.loss_curve_).all()
    assert clipped.loss_curve_[-1] < clipped.loss_curve_[0]


def test_keyboard_interrupt_keeps_the_completed_epochs(order, interrupt_second_call):
    X, y = order
    one_epoch = quiet(RNNClassifier(**{**SMALL, "max_iter": 1}), X, y)
    interrupt_second_call(rnn_module._rnn, "run_epoch")
    with pytest.warns(RuntimeWarning, match="interrupted"):
        clf = RNNClassifier(**SMALL).fit(X, y)
    assert clf.n_iter_ == 1 and len(clf.gradient_norms_through_time_) == 1
    np.testing.assert_array_equal(clf._theta, one_epoch._theta)


def test_identity_init_is_the_irnn(adding):
    X, y = adding
    reg = quiet(RNNRegressor(cell="relu", recurrent_init="identity", init_scale=0.5,
                             learning_rate_init=1e-12, **{**SMALL, "max_iter": 1}), X, y)
    np.testing.assert_allclose(reg.coefs_.U[0], 0.5 * np.eye(8), atol=1e-9)
    np.testing.assert_allclose(reg.coefs_.b[0], 0, atol=1e-9)


def test_lstm_forget_bias_and_orthogonal_init(adding):
    X, y = adding
    reg = RNNRegressor(hidden_layer_sizes=(8,), max_iter=1, learning_rate_init=1e-12,
                       forget_bias=2.5, random_state=0)
    quiet(reg, X, y)
    b, U = reg.coefs_.b[0], reg.coefs_.U[0]
    np.testing.assert_allclose(b[8:16], 2.5, atol=1e-9)
    np.testing.assert_allclose(b[:8], 0, atol=1e-9)
    np.testing.assert_allclose(U[:, :8].T @ U[:, :8], np.eye(8), atol=1e-6)


def test_bad_input_gives_clear_errors(adding):
    X, y = adding
    reg = quiet(RNNRegressor(**SMALL), X, y)
    with pytest.raises(ValueError, match="lengths must lie in"):
        reg.predict(X, lengths=np.full(len(X), 13))
    with pytest.raises(ValueError, match="one per sequence"):
        reg.predict(X, lengths=[3, 4])
    with pytest.raises(ValueError, match="features per step"):
        reg.predict(X[:, :, :1])
    with pytest.raises(ValueError, match="2 or 3 dimensions"):
        RNNRegressor(**SMALL).fit(X[..., np.newaxis], y)
    with pytest.raises(ValueError):
        reg.predict(np.full_like(X, np.nan))
    with pytest.raises(ValueError, match="changed since"):
        reg.set_params(warm_start=True, hidden_layer_sizes=(9,)).fit(X, y)


def test_univariate_2d_input_equals_one_feature_3d(adding):
    X, y = adding
    flat = X[:, :, 0]
    a = quiet(RNNRegressor(**SMALL), flat, y)
    b = quiet(RNNRegressor(**SMALL), flat[:, :, np.newaxis], y)
    np.testing.assert_array_equal(a._theta, b._theta)
    np.testing.assert_array_equal(a.predict(flat), b.predict(flat[:, :, np.newaxis]))


def test_plot_gradient_norms_through_time(adding):
    pytest.importorskip("matplotlib")
    from fastrbm.plotting import plot_gradient_norms_through_time

    X, y = adding
    reg = quiet(RNNRegressor(**SMALL), X, y)
    fig = plot_gradient_norms_through_time(reg)
    assert [line.get_label() for line in fig.axes[0].lines][:2] == ["initial", "epoch 1"]
    with pytest.raises(ValueError, match="not recorded"):
        plot_gradient_norms_through_time(reg, epochs=[9])
    with pytest.raises(TypeError, match="fit a recurrent net"):
        plot_gradient_norms_through_time(RNNRegressor())


def test_a_finite_blow_up_is_flagged(adding):
    """An exploding net can train on to enormous, still finite losses: warned once."""
    X, y = adding
    with pytest.warns(ConvergenceWarning) as record:
        RNNRegressor((32,), cell="tanh", init_scale=3.0, solver="sgd", learning_rate_init=1.0,
                     max_iter=3, random_state=0).fit(X, y)
    assert sum("training is diverging" in str(w.message) for w in record) == 1
