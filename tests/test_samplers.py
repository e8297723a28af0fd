"""Hidden unit types and training samplers beyond CD / PCD: Gaussian (linear) hidden units."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils._param_validation import InvalidParameterError
from threadpoolctl import threadpool_limits

from fastrbm import BernoulliRBM, GaussianBernoulliRBM
from fastrbm._kernels import _sampling

DTYPES = [np.float32, np.float64]


def _engine_run(X, W, b, c, chain, *, n_threads, epochs=1, seed=9, **settings):
    """``epochs`` GibbsEngine epochs on copies of the arrays; returns the engine."""
    engine = _sampling.GibbsEngine(W.copy(), b.copy(), c.copy(), chain.copy(), seed=seed)
    engine.configure(n_blocks=2, n_threads=n_threads, **settings)
    with threadpool_limits(1, user_api="blas"):
        for _ in range(epochs):
            engine.epoch(X)
    return engine


def _large_problem(dtype, n=300, nv=200, nh=150, n_chains=50, seed=5):
    rng = np.random.default_rng(seed)
    X = (rng.random((n, nv)) < 0.3).astype(dtype)
    W = (rng.standard_normal((nh, nv)) * 0.05).astype(dtype)
    return X, W, np.zeros(nv, dtype), np.zeros(nh, dtype), np.zeros((n_chains, nh), dtype)


def _assert_same_state(one, two):
    assert one.counter == two.counter
    for name, a in one.state().items():
        np.testing.assert_array_equal(a, two.state()[name], err_msg=name)


# ---------------------------------------------------------------------------------------
# Gaussian (linear) hidden units
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("settings", [dict(persistent=False, k=1),
                                      dict(persistent=True, k=2, momentum=0.5)], ids=str)
@pytest.mark.parametrize("batch_size", [10, 50])
def test_gaussian_hidden_epoch_is_identical_for_1_and_2_threads(dtype, settings, batch_size):
    X, W, b, c, chain = _large_problem(dtype)
    kw = dict(batch_size=batch_size, learning_rate=0.01, hidden="gaussian", **settings)
    one = _engine_run(X, W, b, c, chain, n_threads=1, **kw)
    two = _engine_run(X, W, b, c, chain, n_threads=2, **kw)
    _assert_same_state(one, two)
    assert np.isfinite(one.W).all() and not np.array_equal(one.W, W)


@pytest.fixture(scope="module")
def digits01():
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0
    return X[:600]


def test_gaussian_hidden_transform_is_the_linear_mean(digits01):
    X = digits01
    m = BernoulliRBM(n_components=8, hidden_units="gaussian", learning_rate=0.01, n_iter=2,
                     random_state=0).fit(X)
    W, b, c = m.components_, m.intercept_visible_, m.intercept_hidden_
    np.testing.assert_allclose(m.transform(X), X @ W.T + c, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.transform(sp.csr_matrix(X)), X @ W.T + c, rtol=1e-12,
                               atol=1e-12)
    assert (m.transform(X) < 0).any()  # linear, not squashed or rectified
    np.testing.assert_allclose(m.reconstruct(X[:5]),
                               1 / (1 + np.exp(-((X[:5] @ W.T + c) @ W + b))), rtol=1e-12)


def test_gaussian_hidden_free_energy_matches_numerical_integration():
    # F(v) = -log sum_h... with E(v, h) = -b.v - c.h - h.W v + |h|^2 / 2: integrate
    # exp(-E) over a 2-d grid of h for two hidden units.
    rng = np.random.default_rng(0)
    W, b, c = rng.normal(0, 0.7, (2, 5)), rng.normal(0, 0.5, 5), rng.normal(0, 0.5, 2)
    m = BernoulliRBM(n_components=2, hidden_units="gaussian", n_iter=0).fit(np.zeros((3, 5)))
    m.components_, m.intercept_visible_, m.intercept_hidden_ = W, b, c
    V = (rng.random((4, 5)) < 0.5).astype(np.float64)
    grid = np.linspace(-12, 12, 1201)
    h1, h2 = np.meshgrid(grid, grid, indexing="ij")
    H = np.stack([h1.ravel(), h2.ravel()], axis=1)
    step = grid[1] - grid[0]
    for v, f in zip(V, m.free_energy(V)):
        log_terms = b @ v + H @ (c + W @ v) - 0.5 * (H ** 2).sum(axis=1)
        want = -(np.logaddexp.reduce(log_terms) + 2 * np.log(step))
        assert f == pytest.approx(want, abs=1e-8)
    assert np.isfinite(m.score_samples(V)).all()


def test_gaussian_hidden_has_no_log_likelihood_and_no_gaussian_gaussian(digits01):
    m = BernoulliRBM(n_components=4, hidden_units="gaussian", n_iter=1, learning_rate=0.01,
                     random_state=0).fit(digits01)
    for call in (m.score, m.log_likelihood):
        with pytest.raises(NotImplementedError, match="hidden_units='gaussian'"):
            call(digits01)
    with pytest.raises(InvalidParameterError, match="hidden_units"):
        GaussianBernoulliRBM(hidden_units="gaussian").fit(np.zeros((4, 3)))


@pytest.mark.parametrize("persistent", [False, True])
def test_gaussian_hidden_trains_and_is_reproducible_across_threads(digits01, persistent):
    X = digits01
    kw = dict(n_components=16, hidden_units="gaussian", learning_rate=0.01, n_iter=5,
              persistent=persistent, random_state=0)
    untrained = BernoulliRBM(**{**kw, "n_iter": 0}).fit(X)
    one = BernoulliRBM(n_jobs=1, **kw).fit(X)
    two = BernoulliRBM(n_jobs=2, **kw).fit(X)
    np.testing.assert_array_equal(one.components_, two.components_)
    err = one.history_["reconstruction_error"]
    assert err[-1] < 0.5 * untrained._reconstruction(X)[0]
    g = one.gibbs(X[:3])
    assert set(np.unique(g)) <= {0.0, 1.0}


def test_dbn_with_a_linear_top_layer(digits01):
    from fastrbm import DBN

    X = digits01
    dbn = DBN(hidden_layer_sizes=(16, 4), n_iter=2, learning_rate=[0.1, 0.01],
              hidden_units=["bernoulli", "gaussian"], random_state=0).fit(X)
    assert [r.hidden_units for r in dbn.rbms_] == ["bernoulli", "gaussian"]
    top = dbn.rbms_[1]
    H = dbn.rbms_[0].transform(X)
    np.testing.assert_allclose(dbn.transform(X), H @ top.components_.T + top.intercept_hidden_,
                               rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="only the top layer"):
        DBN(hidden_layer_sizes=(8, 4), n_iter=1, hidden_units="gaussian").fit(X)
