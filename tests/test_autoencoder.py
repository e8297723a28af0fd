"""DBNAutoencoder: scikit-learn compatibility, exact unrolling of the RBM stack, fine-tuning
on digits, checkpoints that resume bit-identically, clear errors. The kernels' per-layer
activations are tested against the NumPy oracle in test_backprop.py."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastrbm import DBNAutoencoder
from fastrbm._kernels import backprop as bp

from . import _reference_network as ref

SMALL = dict(hidden_layer_sizes=(32, 8), pretrain_n_iter=5, max_iter=30, random_state=0)


def quiet_fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


@pytest.fixture
def unrolled(monkeypatch):
    """``unrolled(estimator, X)``: the estimator fitted without any fine-tuning epoch (the
    pretrained stack, unrolled)."""
    def fit(estimator, X):
        monkeypatch.setattr(DBNAutoencoder, "_run_epochs", lambda self, *args: None)
        estimator.fit(X)
        monkeypatch.undo()
        return estimator
    return fit


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([
    DBNAutoencoder(),
    DBNAutoencoder(hidden_layer_sizes=(6, 3), activation="tanh", dtype="float32"),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------- unrolling
def _stack_up_and_down(rbms, X):
    """The stack in NumPy: bottom-up hidden means (logistic, the top linear), then the
    top-down mean-field pass (logistic visible means; a Gaussian first layer's linear)."""
    H = X.astype(np.float64)
    for rbm in rbms:
        pre = H @ rbm.components_.T.astype(np.float64) + rbm.intercept_hidden_
        H = pre if rbm.hidden_units == "gaussian" else ref.sigmoid(pre)
    codes, V = H, H
    for rbm in reversed(rbms):
        pre = V @ rbm.components_.astype(np.float64) + rbm.intercept_visible_
        V = pre if type(rbm).__name__ == "GaussianBernoulliRBM" else ref.sigmoid(pre)
    return codes, V


@pytest.mark.parametrize("real_valued", [False, True], ids=["bernoulli", "gaussian"])
def test_unrolling_is_exact(digits, unrolled, real_valued):
    """Before fine-tuning, the encoder is the stack's transform and the decoder its
    top-down mean reconstruction (in the units of X for a Gaussian first layer)."""
    X = digits[0].astype(np.float64)
    if real_valued:
        X = 16 * X - 3  # outside [0, 1]: standardised inside, Gaussian first layer
    ae = unrolled(DBNAutoencoder((24, 12, 5), pretrain_n_iter=2, random_state=0), X)
    assert ae.n_iter_ == 0 and len(ae.rbms_) == 3
    assert [r.hidden_units for r in ae.rbms_] == ["bernoulli", "bernoulli", "gaussian"]
    assert ae.rbms_[-1].learning_rate == 0.01 and ae.rbms_[0].n_iter_ == 2
    acts = list(ae._layout[:, bp.ACT])
    assert acts == [bp.ACT_LOGISTIC] * 2 + [bp.ACT_IDENTITY] + [bp.ACT_LOGISTIC] * 2 + [
        bp.ACT_IDENTITY if real_valued else bp.ACT_LOGISTIC]
    for l, rbm in enumerate(ae.rbms_):  # the weights are copied, not approximated
        assert_array_equal(ae.coefs_[l], rbm.components_.T)
        assert_array_equal(ae.coefs_[5 - l], rbm.components_)
        assert_array_equal(ae.intercepts_[5 - l], rbm.intercept_visible_)
    Z = X if not real_valued else (X - ae.input_mean_) / ae.input_scale_
    codes, V = _stack_up_and_down(ae.rbms_, Z)
    if real_valued:
        V = V * ae.input_scale_ + ae.input_mean_
    assert_allclose(ae.transform(X), codes, rtol=1e-10, atol=1e-10)
    assert (ae.transform(X) < 0).any()  # linear codes
    stack = X if not real_valued else Z
    for rbm in ae.rbms_:  # the RBMs' own transform agrees
        stack = rbm.transform(stack)
    assert_allclose(ae.transform(X), stack, rtol=1e-10, atol=1e-10)
    assert_allclose(ae.inverse_transform(codes), V, rtol=1e-10, atol=1e-10)
    assert_allclose(ae.reconstruct(X), V, rtol=1e-10, atol=1e-10)
    assert_allclose(ae.score(X), -np.mean(((X - V) ** 2).sum(axis=1)), rtol=1e-10)


# ---------------------------------------------------------------------------- training
def test_fine_tuning_lowers_the_reconstruction_error(digits_split, unrolled):
    X_train, X_test, _, _ = digits_split
    before = unrolled(DBNAutoencoder(**SMALL), X_train)
    ae = quiet_fit(DBNAutoencoder(**SMALL), X_train)
    # the same stack (same seed) before and after fine-tuning
    assert_array_equal(ae.rbms_[0].components_, before.rbms_[0].components_)
    assert ae.score(X_test) > 0.6 * before.score(X_test)  # error down by 40% at least
    assert ae.loss_curve_[-1] < 0.9 * ae.loss_curve_[0]  # cross-entropy: entropy of X stays
    assert ae.gradient_norms_.shape == (30, 4) and ae.initial_gradient_norms_.shape == (4,)
    # the initial norms are the unrolled net's, measured on the same rows as a fresh fit's
    assert_array_equal(ae.initial_gradient_norms_, before.initial_gradient_norms_)
    assert ae.out_activation_ == "logistic" and ae.n_outputs_ == 64 and ae.n_layers_ == 5
    R = ae.reconstruct(X_test)
    assert R.dtype == np.float32 and R.min() >= 0 and R.max() <= 1
    assert_allclose(ae.inverse_transform(ae.transform(X_test)), R, rtol=1e-5, atol=1e-6)
    assert list(ae.get_feature_names_out()) == [f"dbnautoencoder{i}" for i in range(8)]


def test_without_pretraining(digits_split):
    X_train, X_test, _, _ = digits_split
    ae = quiet_fit(DBNAutoencoder(**dict(SMALL, pretrain=False)), X_train)
    assert ae.rbms_ == [] and ae.n_iter_ == 30
    assert ae.loss_curve_[-1] < 0.9 * ae.loss_curve_[0]  # cross-entropy: entropy of X stays
    assert ae.score(X_test) > -10  # PCA with 8 components: about -4.5
    assert ae.gradient_norms_.shape == (30, 4)
    # the same net as the pretrained one, started elsewhere
    pretrained = quiet_fit(DBNAutoencoder(**SMALL), X_train)
    assert_array_equal(ae._layout, pretrained._layout)


def test_partial_fit_and_warm_start(digits):
    X = digits[0]
    ae = DBNAutoencoder(**SMALL)
    for _ in range(3):
        ae.partial_fit(X)
    assert ae.n_iter_ == 3 and len(ae.loss_curve_) == 3
    ae.set_params(warm_start=True, max_iter=2)
    quiet_fit(ae, X)
    assert ae.n_iter_ == 5 and len(ae.rbms_) == 2


def test_early_stopping_scores_the_held_out_reconstruction(digits):
    X = digits[0]
    ae = quiet_fit(DBNAutoencoder(**dict(SMALL, early_stopping=True)), X)
    assert len(ae.validation_scores_) == ae.n_iter_
    assert ae.best_validation_score_ == max(ae.validation_scores_) < 0
    assert ae.validation_scores_[-1] > ae.validation_scores_[0]


def test_float64_and_forced_float32(digits):
    X = digits[0].astype(np.float64)
    ae = quiet_fit(DBNAutoencoder(**dict(SMALL, max_iter=2)), X)
    assert ae.transform(X).dtype == np.float64 and ae.rbms_[0].components_.dtype == np.float64
    ae32 = quiet_fit(DBNAutoencoder(**dict(SMALL, max_iter=2, dtype="float32")), X)
    assert ae32.transform(X).dtype == np.float32 and ae32._theta.dtype == np.float32


# ---------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("real_valued", [False, True], ids=["bernoulli", "gaussian"])
def test_checkpoint_resumes_bit_identically(digits, tmp_path, real_valued):
    X = digits[0] if not real_valued else 16 * digits[0] - 3
    ae = quiet_fit(DBNAutoencoder(**dict(SMALL, max_iter=3)), X)
    ae.save(tmp_path / "ae.npz")
    loaded = DBNAutoencoder.load(tmp_path / "ae.npz")
    assert_array_equal(loaded.transform(X), ae.transform(X))
    for _ in range(2):
        ae.partial_fit(X)
        loaded.partial_fit(X)
    for name in ("_theta", "_state_1", "_state_2", "gradient_norms_"):
        assert_array_equal(getattr(loaded, name), getattr(ae, name))
    assert loaded.loss_curve_ == ae.loss_curve_ and loaded.n_iter_ == 5
    assert_array_equal(loaded.reconstruct(X), ae.reconstruct(X))


def test_checkpoint_of_another_shape_is_rejected(digits, tmp_path):
    X = digits[0]
    ae = quiet_fit(DBNAutoencoder(**dict(SMALL, max_iter=1)), X)
    ae.save(tmp_path / "ae.npz")
    with np.load(tmp_path / "ae.npz") as f:
        contents = dict(f)
    layout = contents["_layout"].copy()
    layout[1, bp.ACT] = bp.ACT_LOGISTIC  # a logistic code layer: not this autoencoder's
    np.savez(tmp_path / "tampered.npz", **dict(contents, _layout=layout))
    with pytest.raises(ValueError, match="not this autoencoder's"):
        DBNAutoencoder.load(tmp_path / "tampered.npz")


# ---------------------------------------------------------------------------- errors
def test_bad_input_gives_clear_errors(digits):
    X = digits[0]
    with pytest.raises(NotFittedError):
        DBNAutoencoder().transform(X)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        DBNAutoencoder(**SMALL).fit(bad)
    with pytest.raises(TypeError, match="dense data is required"):
        DBNAutoencoder(**SMALL).fit(sp.csr_matrix(X))
    with pytest.raises(ValueError, match="positive ints"):
        DBNAutoencoder(hidden_layer_sizes=(8, 0)).fit(X)
    with pytest.raises(ValueError, match="at least two hidden layers"):
        DBNAutoencoder(hidden_layer_sizes=(8,)).fit(16 * X - 3)
    quiet_fit(DBNAutoencoder(hidden_layer_sizes=(8,), pretrain=False, max_iter=1), 16 * X - 3)
    with pytest.raises(TypeError, match="dropout"):
        DBNAutoencoder(dropout=0.5)  # no dropout here: the unrolled stack is the net
    ae = quiet_fit(DBNAutoencoder(**dict(SMALL, max_iter=1)), X)
    with pytest.raises(ValueError, match="expecting 64 features"):
        ae.transform(X[:, :10])
    with pytest.raises(ValueError, match="code layer of DBNAutoencoder has 8 units"):
        ae.inverse_transform(X)
    before = ae._theta.copy()
    with pytest.raises(ValueError, match="expecting 64 features"):
        ae.partial_fit(X[:, :10])
    assert_array_equal(ae._theta, before)  # a rejected call leaves the model as it was


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_pretraining_takes_the_rbm_samplers_per_layer(digits):
    X, _ = digits
    ae = DBNAutoencoder((16, 4), max_iter=1, pretrain_n_iter=1, persistent=[True, False],
                        centered=True, fast_learning_rate=[0.05, None], random_state=0).fit(X)
    assert [r.centered for r in ae.rbms_] == [True, True]
    assert [r.fast_learning_rate for r in ae.rbms_] == [0.05, None]
    assert ae.rbms_[-1].hidden_units == "gaussian"
    with pytest.raises(ValueError):
        DBNAutoencoder((16, 4), persistent=False, fast_learning_rate=0.05).fit(X)
