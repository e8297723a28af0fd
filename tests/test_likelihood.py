"""Exact log Z, AIS and log-likelihoods, checked against brute-force enumeration."""
import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fastrbm import BernoulliRBM, GaussianBernoulliRBM, log_partition
from fastrbm._kernels import _sampling
from fastrbm.likelihood import ais_betas

from . import _reference as ref


def _random_model(nv, nh, scale, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return SimpleNamespace(
        components_=(rng.standard_normal((nh, nv)) * scale).astype(dtype),
        intercept_visible_=(rng.standard_normal(nv) * 0.5).astype(dtype),
        intercept_hidden_=(rng.standard_normal(nh) * 0.5).astype(dtype),
    )


def _brute_force_log_z(m):
    """Sum exp(-E(v, h)) over every joint state of both layers."""
    W, b, c = m.components_, m.intercept_visible_, m.intercept_hidden_
    nh, nv = W.shape
    V = np.array(list(itertools.product([0, 1], repeat=nv)), dtype=np.float64)
    H = np.array(list(itertools.product([0, 1], repeat=nh)), dtype=np.float64)
    neg_energy = (V @ b)[:, None] + (H @ c)[None, :] + V @ W.T @ H.T
    return logsumexp(neg_energy)


def _upscaled_binary_digits():
    """784-pixel binary images (digits upscaled 3x and padded to 28x28), no download."""
    X = load_digits().data.reshape(-1, 8, 8) / 16.0
    big = np.kron(X, np.ones((1, 3, 3)))
    big = np.pad(big, ((0, 0), (2, 2), (2, 2)))
    return (big.reshape(len(X), 784) > 0.5).astype(np.float32)


@pytest.mark.parametrize("nv, nh", [(6, 5), (5, 6), (7, 3)])
def test_exact_log_partition_matches_brute_force(nv, nh):
    m = _random_model(nv, nh, 1.0, seed=nv * 10 + nh)
    assert log_partition(m) == pytest.approx(_brute_force_log_z(m), abs=1e-10)
    assert log_partition(m, return_std=True) == (pytest.approx(_brute_force_log_z(m)), 0.0)


def test_exact_log_partition_chunks_agree_with_one_shot():
    m = _random_model(30, 17, 0.3, seed=1)  # 2**17 states: several chunks
    W, b, c = m.components_, m.intercept_visible_, m.intercept_hidden_
    assert log_partition(m) == pytest.approx(ref.exact_log_partition(W, b, c), rel=1e-12)


def test_exact_refuses_large_models_clearly():
    m = _random_model(40, 30, 0.1, seed=0)
    with pytest.raises(ValueError, match="method='ais'"):
        log_partition(m)
    with pytest.raises(ValueError, match="method"):
        log_partition(m, method="bogus")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ais_close_to_exact_on_random_models(dtype):
    m = _random_model(784, 12, 0.05, seed=3, dtype=dtype)
    exact = log_partition(m)
    ais, std = log_partition(m, "ais", n_chains=100, n_betas=10000, random_state=0,
                             return_std=True)
    assert abs(ais - exact) < 0.1
    assert 0 < std < 0.1


def test_ais_close_to_exact_on_a_trained_model():
    X = _upscaled_binary_digits()
    m = BernoulliRBM(n_components=16, learning_rate=0.05, n_iter=3, batch_size=20,
                     random_state=0).fit(X)
    exact = log_partition(m)
    ais = log_partition(m, "ais", n_chains=100, n_betas=10000, X=X, random_state=0)
    assert abs(ais - exact) < 0.1
    # The model's log-likelihood through either log Z agrees, and beats the base rate.
    ll_exact = m.score(X[:200], method="exact")
    ll_ais = m.score(X[:200], method="ais", n_betas=3000, random_state=0)
    assert abs(ll_exact - ll_ais) < 0.1


def test_ais_error_and_std_shrink_with_more_work():
    m = _random_model(100, 14, 0.25, seed=5, dtype=np.float32)
    exact = log_partition(m)
    small = log_partition(m, "ais", n_chains=10, n_betas=50, random_state=0, return_std=True)
    large = log_partition(m, "ais", n_chains=200, n_betas=5000, random_state=0,
                          return_std=True)
    assert large[1] < small[1] / 3
    assert abs(large[0] - exact) < abs(small[0] - exact)
    assert abs(large[0] - exact) < 4 * large[1] + 1e-3


def test_ais_is_identical_for_any_thread_count():
    m = _random_model(200, 64, 0.1, seed=6, dtype=np.float32)
    b_base = np.zeros(200, np.float32)
    betas = ais_betas(200)
    results = []
    for n_threads in (1, 2):
        log_w = np.empty(30)
        with threadpool_limits(1, user_api="blas"):
            _sampling.ais_log_weights(m.components_, m.intercept_visible_,
                                      m.intercept_hidden_, b_base, betas, log_w, 3, 0, 2,
                                      n_threads)
        results.append(log_w)
    np.testing.assert_array_equal(*results)


def test_ais_first_step_matches_oracle():
    # Two temperatures {0, 1}: one weight update from exact base samples, no transition.
    m = _random_model(9, 5, 0.7, seed=7)
    W, b, c = m.components_, m.intercept_visible_, m.intercept_hidden_
    b_base = np.linspace(-1, 1, 9)
    log_w = np.empty(6)
    _sampling.ais_log_weights(W, b, c, b_base, np.array([0.0, 1.0]), log_w, 11, 4)
    _, V = ref.sample_layer(np.zeros((6, 9)), b_base, 11, 4)
    expected = (V @ (b - b_base) + np.logaddexp(0, V @ W.T + c).sum(axis=1)
                - 5 * np.log(2))
    np.testing.assert_allclose(log_w, expected, rtol=1e-12)


def test_ais_validates_betas():
    m = _random_model(9, 5, 0.7, seed=7)
    for betas in ([0.0, 0.5], [0.2, 1.0], [0.0, 0.6, 0.4, 1.0]):
        with pytest.raises(ValueError, match="betas"):
            log_partition(m, "ais", betas=betas)


def test_exact_log_likelihood_gradient_by_finite_differences():
    # d/dW mean log p(x) = <h v>_data - <h v>_model, each expectation exact.
    m = _random_model(6, 4, 0.8, seed=8)
    X = (np.random.default_rng(0).random((15, 6)) < 0.4).astype(np.float64)

    def mean_ll(W, b, c):
        return np.mean(-ref.free_energy(X, W, b, c)) - ref.exact_log_partition(W, b, c)

    W, b, c = m.components_, m.intercept_visible_, m.intercept_hidden_
    V = np.array(list(itertools.product([0, 1], repeat=6)), dtype=np.float64)
    p_v = np.exp(-ref.free_energy(V, W, b, c) - ref.exact_log_partition(W, b, c))
    grad_W = (ref.sigmoid(X @ W.T + c).T @ X / len(X)
              - (ref.sigmoid(V @ W.T + c) * p_v[:, None]).T @ V)
    eps = 1e-6
    numeric = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        Wp, Wm = W.copy(), W.copy()
        Wp[idx] += eps
        Wm[idx] -= eps
        numeric[idx] = (mean_ll(Wp, b, c) - mean_ll(Wm, b, c)) / (2 * eps)
    np.testing.assert_allclose(grad_W, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("persistent", [False, True])
def test_cd_and_pcd_updates_point_along_the_exact_gradient(persistent):
    m = _random_model(8, 5, 0.5, seed=9)
    W, b, c = m.components_, m.intercept_visible_, m.intercept_hidden_
    X = (np.random.default_rng(1).random((400, 8)) < 0.3).astype(np.float64)
    V = np.array(list(itertools.product([0, 1], repeat=8)), dtype=np.float64)
    p_v = np.exp(-ref.free_energy(V, W, b, c) - ref.exact_log_partition(W, b, c))
    exact = (ref.sigmoid(X @ W.T + c).T @ X / len(X)
             - (ref.sigmoid(V @ W.T + c) * p_v[:, None]).T @ V)
    # Average many tiny-learning-rate updates: (W_after - W) / lr estimates the update.
    lr, updates = 1e-7, []
    for seed in range(20):
        W1 = W.copy()
        engine = _sampling.GibbsEngine(W1, b.copy(), c.copy(), np.zeros((40, 5)), seed=seed)
        engine.configure(learning_rate=lr, batch_size=40, persistent=persistent).epoch(X)
        updates.append((W1 - W) / lr / (len(X) / 40))
    mean_update = np.mean(updates, axis=0)
    cosine = (mean_update * exact).sum() / np.linalg.norm(mean_update) / np.linalg.norm(exact)
    assert cosine > 0.8


# ---------------------------------------------------------------------------------------
# AIS kernels against their oracles; Gaussian visible units
# ---------------------------------------------------------------------------------------

def _small_gaussian(dtype, seed=1, nv=23, nh=9):
    rng = np.random.default_rng(seed)
    W = (rng.standard_normal((nh, nv)) * 0.5).astype(dtype)
    b, c = rng.standard_normal(nv).astype(dtype), rng.standard_normal(nh).astype(dtype)
    b_base = (rng.standard_normal(nv) * 0.5).astype(dtype)
    log_var = (rng.standard_normal(nv) * 0.5).astype(dtype)
    return W, b, c, b_base, log_var


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_ais_log_weights_match_oracle(dtype, n_threads):
    W, b, c, b_base, _ = _small_gaussian(dtype, nv=21, nh=37)
    b_base = b_base * dtype(2)
    betas = ais_betas(40)
    log_w = np.empty(7)
    with threadpool_limits(1, user_api="blas"):
        counter = _sampling.ais_log_weights(W, b, c, b_base, betas, log_w, 9, 5, 2, n_threads)
    f64 = [a.astype(np.float64) for a in (W, b, c, b_base)]
    want, want_counter = ref.ais_log_weights(*f64, betas, 7, 9, 5)
    assert counter == want_counter == 5 + 2 * 40 - 2
    tol = dict(rtol=1e-6, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(log_w, want, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_ais_hidden_log_weights_match_oracle(dtype, n_threads):
    # The kernel computes in float64 for either dtype: both agree with the oracle (written
    # from the other form of the hidden marginal) to rounding.
    W, b, c, b_base, log_var = _small_gaussian(dtype)
    betas = ais_betas(40)
    log_w = np.empty(7)
    counter = _sampling.ais_hidden_log_weights(W, b, c, b_base, log_var, betas, log_w, 9, 5,
                                               n_threads)
    want, want_counter = ref.ais_hidden_log_weights(
        *(a.astype(np.float64) for a in (W, b, c, b_base, log_var)), betas, 7, 9, 5)
    assert counter == want_counter == 5 + 40 - 1
    np.testing.assert_allclose(log_w, want, rtol=1e-11, atol=1e-11)
    assert np.ptp(log_w) > 0.1  # the chains did differ


def test_logistic_noise_is_a_bernoulli_draw():
    # x > log(u / (1 - u)) is u < sigmoid(x): the sweep's draws have the right mean, and the
    # kernel's first hidden states (uniform base) are those of u < 1/2.
    W, b, c, b_base, log_var = _small_gaussian(np.float64, nh=300)
    log_w = np.empty(200)
    betas = np.array([0.0, 1.0])  # the weight of the base sample alone
    _sampling.ais_hidden_log_weights(W, b, c, b_base, log_var, betas, log_w, 4, 0)
    H = (ref.uniforms(4, 0, (200, 300)) < 0.5).astype(np.float64)
    inv_var = np.exp(-log_var)
    u = H @ W
    expected = H @ c + ((b + 0.5 * u) * u * inv_var).sum(axis=1)
    np.testing.assert_allclose(log_w, expected, rtol=1e-11)
    assert abs(H.mean() - 0.5) < 0.01


def test_gaussian_ais_is_identical_for_any_thread_count():
    W, b, c, b_base, log_var = _small_gaussian(np.float32, nv=60, nh=50)
    results = []
    for n_threads in (1, 2):
        log_w = np.empty(30)
        _sampling.ais_hidden_log_weights(W * np.float32(0.3), b, c, b_base, log_var,
                                         ais_betas(300), log_w, 3, 0, n_threads)
        results.append(log_w)
    np.testing.assert_array_equal(*results)


def _standardised_digits():
    return StandardScaler().fit_transform(load_digits().data).astype(np.float32)


def _standardised_fashion():
    from fastrbm.datasets import load_fashion_mnist

    try:
        (X, _), _ = load_fashion_mnist(subset="both")
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    return StandardScaler().fit_transform(X[:5000]).astype(np.float32)


@pytest.mark.parametrize("data, learn_sigma, n_hidden", [
    ("digits", False, 20), ("digits", True, 12),
    ("fashion", False, 16), ("fashion", True, 12),
], ids=str)
def test_gaussian_ais_close_to_exact_on_trained_models(data, learn_sigma, n_hidden):
    X = _standardised_digits() if data == "digits" else _standardised_fashion()
    m = GaussianBernoulliRBM(n_components=n_hidden, learn_sigma=learn_sigma,
                             n_iter=10 if data == "digits" else 5, random_state=0).fit(X)
    if learn_sigma:
        assert np.ptp(m.sigma_) > 0.5  # the variances did move
    exact = log_partition(m)
    ais, std = log_partition(m, "ais", n_chains=100, n_betas=10000, X=X, random_state=0,
                             return_std=True)
    # Within 0.1 nats, or three standard errors where the chains' spread is larger (the
    # trained model, hence the spread, moves with the library versions' rounding).
    assert abs(ais - exact) < max(0.1, 3 * std)
    assert 0 < std < 0.1


def test_gaussian_score_by_ais_with_default_hidden_units():
    X = StandardScaler().fit_transform(load_digits().data)
    score = GaussianBernoulliRBM(random_state=0).fit(X).score(X, method="ais", random_state=0)
    assert np.isfinite(score)


def test_gaussian_ais_refuses_noisy_rectified_hidden_units():
    m = _random_model(5, 4, 0.1, seed=0)
    m.sigma_, m.hidden_units = np.ones(5), "nrelu"
    with pytest.raises(NotImplementedError, match="closed-form free energy"):
        log_partition(m, "ais")


def test_ais_agreement_flags_a_schedule_too_short_to_converge():
    """On a trained 16-hidden model (exact log Z known): long schedules agree with each other
    and with the exact value; a 20-temperature schedule falls short of log Z (AIS is biased
    low in log space) and is flagged."""
    from fastrbm.likelihood import ais_agreement

    X = _upscaled_binary_digits()
    m = BernoulliRBM(n_components=16, learning_rate=0.05, n_iter=3, batch_size=20,
                     random_state=0).fit(X)
    exact = log_partition(m)
    good = ais_agreement(m, (2000, 8000), X=X, random_state=0)
    assert good["agree"] and abs(good["log_z"][1] - exact) < 0.1
    bad = ais_agreement(m, (20, 8000), n_chains=20, random_state=0)
    assert not bad["agree"] and bad["gap"] > 0 and bad["log_z"][0] < exact
    with pytest.raises(ValueError, match="at least two"):
        ais_agreement(m, (100,))
