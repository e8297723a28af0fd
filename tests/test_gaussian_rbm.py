"""GaussianBernoulliRBM, noisy rectified hidden units, and the Gaussian exact likelihood."""
import itertools
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastrbm import BernoulliRBM, GaussianBernoulliRBM, log_partition
from fastrbm._kernels import _sampling

from . import _reference as ref


@pytest.fixture(scope="module")
def digits():
    """Standardised digits (1797 x 64, real-valued, values up to about 40)."""
    return StandardScaler().fit_transform(load_digits().data).astype(np.float32)


def _random_model(nv, nh, scale, seed, sigma_spread=0.3):
    rng = np.random.default_rng(seed)
    log_var = rng.standard_normal(nv) * sigma_spread
    return SimpleNamespace(
        components_=rng.standard_normal((nh, nv)) * scale,
        intercept_visible_=rng.standard_normal(nv) * 0.5,
        intercept_hidden_=rng.standard_normal(nh) * 0.5,
        sigma_=np.exp(0.5 * log_var), log_var=log_var,
    )


def _hidden_states(nh):
    return np.array(list(itertools.product([0, 1], repeat=nh)), dtype=np.float64)


@parametrize_with_checks([GaussianBernoulliRBM()])
def test_sklearn_compatible(estimator, check):
    # At the defaults (256 hidden units) score is an AIS estimate seeded by random_state,
    # so it is repeatable; no expected failures.
    check(estimator)


# ---------------------------------------------------------------------------------------
# Exact log Z and log-likelihood
# ---------------------------------------------------------------------------------------

def test_exact_log_partition_matches_numerical_integration():
    # Two visible units: sum over h of a trapezoid integral of exp(-E(v, h)) on a wide grid.
    m = _random_model(2, 3, 0.8, seed=1)
    W, b, c, log_var = m.components_, m.intercept_visible_, m.intercept_hidden_, m.log_var
    grid = np.linspace(-15, 15, 1501)
    V = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)
    density = np.exp(-ref.gaussian_free_energy(V, W, b, c, log_var)).reshape(1501, 1501)
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # NumPy < 2.0: trapz
    z = trapezoid(trapezoid(density, grid, axis=1), grid)
    assert log_partition(m) == pytest.approx(np.log(z), abs=1e-8)


def test_exact_log_partition_matches_monte_carlo():
    # Six visible units: importance sampling from N(b, 2^2) with 400k draws.
    m = _random_model(6, 4, 0.6, seed=2)
    W, b, c, log_var = m.components_, m.intercept_visible_, m.intercept_hidden_, m.log_var
    rng = np.random.default_rng(0)
    V = b + 2.0 * rng.standard_normal((400_000, 6))
    log_q = (-0.5 * ((V - b) / 2.0) ** 2 - np.log(2.0 * np.sqrt(2 * np.pi))).sum(axis=1)
    log_w = -ref.gaussian_free_energy(V, W, b, c, log_var) - log_q
    estimate = np.logaddexp.reduce(log_w) - np.log(len(V))
    assert log_partition(m) == pytest.approx(estimate, abs=0.02)


def test_exact_log_partition_chunks_agree_with_one_shot():
    m = _random_model(30, 17, 0.2, seed=3)  # 2**17 hidden states: several chunks
    expected = ref.gaussian_exact_log_partition(m.components_, m.intercept_visible_,
                                                m.intercept_hidden_, m.log_var)
    assert log_partition(m) == pytest.approx(expected, rel=1e-12)
    assert log_partition(m, return_std=True)[1] == 0.0


def test_gaussian_exact_log_partition_refuses_large_models_clearly():
    with pytest.raises(ValueError, match="beyond 25"):
        log_partition(_random_model(5, 26, 0.1, seed=0))


def _exact_gradients(X, W, b, c, log_var):
    """The exact gradient of the mean log-likelihood, written the way the engine computes
    it: the log-variance gradient as its quadratic term minus sum_i W_ij gW_ij."""
    inv_var = np.exp(-log_var)
    Xs = X * inv_var
    ph = ref.sigmoid(Xs @ W.T + c)
    H = _hidden_states(W.shape[0])
    A = H @ W  # the visible mean given h, minus b
    log_terms = H @ c + (A * (b + 0.5 * A)) @ inv_var
    p_h = np.exp(log_terms - np.logaddexp.reduce(log_terms))
    gW = ph.T @ Xs / len(X) - (p_h[:, None] * H).T @ ((A + b) * inv_var)
    gb = Xs.mean(axis=0) - ((A + b) * inv_var).T @ p_h
    gc = ph.mean(axis=0) - H.T @ p_h
    # E_model (v - b)^2 = A^2 + sigma^2 for each hidden state
    sq_model = (A**2).T @ p_h + np.exp(log_var)
    gz = 0.5 * inv_var * (((X - b) ** 2).mean(axis=0) - sq_model) - (W * gW).sum(axis=0)
    return gW, gb, gc, gz


def test_exact_gradient_by_finite_differences():
    # Validates the gradient the engine and the oracle use, the log-variance term included.
    m = _random_model(5, 4, 0.7, seed=4)
    W, b, c, log_var = m.components_, m.intercept_visible_, m.intercept_hidden_, m.log_var
    X = np.random.default_rng(1).standard_normal((40, 5)) * 1.3 + 0.2

    def mean_ll(W, b, c, log_var):
        return (np.mean(-ref.gaussian_free_energy(X, W, b, c, log_var))
                - ref.gaussian_exact_log_partition(W, b, c, log_var))

    params = [W, b, c, log_var]
    for index, analytic in enumerate(_exact_gradients(X, W, b, c, log_var)):
        numeric = np.zeros_like(params[index])
        for idx in np.ndindex(numeric.shape):
            plus = [p.copy() for p in params]
            minus = [p.copy() for p in params]
            plus[index][idx] += 1e-6
            minus[index][idx] -= 1e-6
            numeric[idx] = (mean_ll(*plus) - mean_ll(*minus)) / 2e-6
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8,
                                   err_msg="W b c log_var".split()[index])


@pytest.mark.parametrize("persistent", [False, True])
def test_cd_updates_point_along_the_exact_gradient(persistent):
    # Many tiny-learning-rate epochs of the engine estimate its mean update of W and of the
    # log-variances, which must point along the exact gradient.
    m = _random_model(6, 4, 0.4, seed=5)
    W, b, c, log_var = m.components_, m.intercept_visible_, m.intercept_hidden_, m.log_var
    X = np.random.default_rng(2).standard_normal((400, 6)) * 1.5
    gW, _, _, gz = _exact_gradients(X, W, b, c, log_var)
    lr, updates_W, updates_z = 1e-7, [], []
    for seed in range(20):
        W1, z1 = W.copy(), log_var.copy()
        engine = _sampling.GibbsEngine(W1, b.copy(), c.copy(), np.zeros((40, 4)),
                                       q_hidden=np.full(4, 0.1), log_var=z1, seed=seed)
        engine.configure(learning_rate=lr, batch_size=40, persistent=persistent,
                         learn_log_var=True).epoch(X)
        updates_W.append((W1 - W) / lr / (len(X) / 40))
        updates_z.append((z1 - log_var) / lr / (len(X) / 40))
    for mean_update, exact in [(np.mean(updates_W, axis=0), gW),
                               (np.mean(updates_z, axis=0), gz)]:
        cosine = (mean_update * exact).sum() / np.linalg.norm(mean_update) / np.linalg.norm(exact)
        assert cosine > 0.8


def test_free_energy_transform_reconstruct_match_oracle(digits):
    m = GaussianBernoulliRBM(n_components=16, n_iter=2, random_state=0, dtype="float64",
                             learn_sigma=True).fit(digits)
    W, b, c = m.components_, m.intercept_visible_, m.intercept_hidden_
    log_var = 2 * np.log(m.sigma_)
    assert not np.allclose(m.sigma_, 1)
    X = digits[:300].astype(np.float64)
    np.testing.assert_allclose(m.free_energy(X), ref.gaussian_free_energy(X, W, b, c, log_var),
                               rtol=1e-10)
    H = ref.sigmoid((X / m.sigma_**2) @ W.T + c)
    np.testing.assert_allclose(m.transform(X), H, rtol=1e-10)
    np.testing.assert_allclose(m.reconstruct(X), H @ W + b, rtol=1e-10, atol=1e-12)
    log_z = ref.gaussian_exact_log_partition(W, b, c, log_var)
    np.testing.assert_allclose(m.log_likelihood(X),
                               -ref.gaussian_free_energy(X, W, b, c, log_var) - log_z,
                               rtol=1e-10)
    np.testing.assert_allclose(m.score_samples(X), m.log_likelihood(X))
    assert m.score(X) == pytest.approx(m.log_likelihood(X).mean())


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("settings", [dict(), dict(learn_sigma=True)], ids=str)
def test_training_raises_the_exact_log_likelihood(digits, settings):
    # 12 hidden units: the exact log-likelihood, epoch by epoch, on standardised digits.
    X = digits.astype(np.float64)
    m = GaussianBernoulliRBM(n_components=12, random_state=0, dtype="float64", n_iter=0,
                             **settings).fit(X)
    lls = [m.score(X)]
    for _ in range(6):
        m.partial_fit(X)
        lls.append(m.score(X))
    # Measured: -89.3 (the untrained model is N(0, 1) per feature) to about -83.8 with
    # fixed sigma, -76 with learned sigma.
    assert lls[-1] > lls[0] + 4
    if not settings:
        assert all(np.diff(lls[1:]) > -0.05)  # no real setback


@pytest.mark.parametrize("settings", [dict(), dict(persistent=True), dict(learn_sigma=True),
                                      dict(hidden_units="nrelu"), dict(k=3, momentum=0.5)],
                         ids=str)
def test_defaults_train_stably_for_many_epochs(digits, settings):
    m = GaussianBernoulliRBM(n_iter=40, random_state=0, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning about values outside [0, 1]
        m.fit(digits)
    assert m.n_iter_ == 40
    for name in ["components_", "intercept_visible_", "intercept_hidden_", "sigma_"]:
        assert np.isfinite(getattr(m, name)).all(), name
    err = m.history_["reconstruction_error"]
    assert np.isfinite(err).all() and err[-1] < 0.6 * err[0]
    assert np.isfinite(m.transform(digits)).all()
    assert np.isfinite(m.sample(5, n_steps=50)).all()


def test_huge_learning_rate_raises_and_leaves_the_model_unchanged(digits):
    m = GaussianBernoulliRBM(n_components=32, n_iter=2, random_state=0, learn_sigma=True,
                             momentum=0.5).fit(digits)
    names = ["components_", "intercept_visible_", "intercept_hidden_", "h_samples_",
             "_log_var", "_q_hidden"]
    before = {name: getattr(m, name).copy() for name in names}
    velocity = [v.copy() for v in m._velocity]
    counter, n_iter = m._rng_counter, m.n_iter_
    m.set_params(learning_rate=1e30)
    with pytest.raises(FloatingPointError, match="diverged in epoch 3"):
        m.partial_fit(digits)
    for name in names:
        np.testing.assert_array_equal(getattr(m, name), before[name], err_msg=name)
    for v, w in zip(m._velocity, velocity):
        np.testing.assert_array_equal(v, w)
    assert m._rng_counter == counter and m.n_iter_ == n_iter
    # Unchanged means a retry with a sane learning rate continues exactly as if the failed
    # call had never happened.
    retry = m.set_params(learning_rate=0.01).partial_fit(digits)
    fresh = GaussianBernoulliRBM(n_components=32, n_iter=2, random_state=0, learn_sigma=True,
                                 momentum=0.5).fit(digits).partial_fit(digits)
    np.testing.assert_array_equal(retry.components_, fresh.components_)


def test_fit_diverging_from_the_start_raises():
    X = np.random.default_rng(0).standard_normal((50, 5)).astype(np.float32)
    with pytest.raises(FloatingPointError, match="diverged in epoch 1"):
        GaussianBernoulliRBM(n_components=4, learning_rate=1e30, random_state=0).fit(X)


def test_finite_but_exploding_weights_count_as_divergence():
    """Unbounded nrelu units on unscaled data: the weights reach 1e32 while still finite,
    and a reconstruction overflows. That is divergence (a clear error), not a model that
    returns inf (found by tests/test_properties.py)."""
    X = np.random.default_rng(0).standard_normal((3, 14)) * 30.0
    m = GaussianBernoulliRBM(n_components=4, batch_size=1, n_iter=2, persistent=True,
                             hidden_units="nrelu", dtype="float32", random_state=0)
    with pytest.raises(FloatingPointError, match="too large for a finite Gibbs step"):
        m.fit(X)
    assert m.n_iter_ == 1  # the last epoch that passed the check is kept
    with np.errstate(over="raise", invalid="raise"):
        assert np.isfinite(m.reconstruct(X)).all()


def test_learned_sigma_recovers_the_noise_level():
    # Independent features with standard deviations 0.5 .. 2: two hidden units cannot
    # explain them, so the learned sigma is each feature's standard deviation.
    rng = np.random.default_rng(0)
    s = np.linspace(0.5, 2, 8)
    X = rng.standard_normal((3000, 8)) * s
    m = GaussianBernoulliRBM(n_components=2, learn_sigma=True, n_iter=30, random_state=0).fit(X)
    np.testing.assert_allclose(m.sigma_, s, rtol=0.1)
    fixed = GaussianBernoulliRBM(n_components=2, n_iter=2, random_state=0).fit(X)
    np.testing.assert_array_equal(fixed.sigma_, np.ones(8))


def test_learned_sigma_stays_in_bounds(monkeypatch):
    # Features of standard deviation 0.5 and 2 pull sigma outside bounds set to
    # [0.8, 1.25]; the clip holds it in them, mostly at them (noisy updates step back in).
    from fastrbm import rbm

    assert rbm.SIGMA_BOUNDS == (0.1, 10.0)
    monkeypatch.setattr(rbm, "SIGMA_BOUNDS", (0.8, 1.25))
    X = np.random.default_rng(0).standard_normal((1000, 4)) * [0.5, 0.5, 2, 2]
    m = GaussianBernoulliRBM(n_components=2, learn_sigma=True, n_iter=10, random_state=0,
                             dtype="float64").fit(X)
    assert (m.sigma_ >= 0.8 * (1 - 1e-12)).all() and (m.sigma_ <= 1.25 * (1 + 1e-12)).all()
    np.testing.assert_allclose(m.sigma_, [0.8, 0.8, 1.25, 1.25], rtol=0.01)
    assert np.sum(np.isclose(m.sigma_, [0.8, 0.8, 1.25, 1.25], rtol=1e-12)) >= 2


@pytest.mark.parametrize("settings", [dict(persistent=False), dict(persistent=True),
                                      dict(learn_sigma=True, momentum=0.5),
                                      dict(hidden_units="nrelu")], ids=str)
def test_same_seed_same_model_for_any_thread_count(digits, settings):
    kw = dict(n_components=256, batch_size=256, n_iter=2, random_state=3, **settings)
    models = [GaussianBernoulliRBM(n_jobs=n, **kw).fit(digits) for n in (1, 2)]
    for name in ["components_", "intercept_hidden_", "h_samples_", "sigma_"]:
        np.testing.assert_array_equal(getattr(models[0], name), getattr(models[1], name))


def test_float32_and_float64_train_the_same_model(digits):
    kw = dict(n_components=8, n_iter=1, random_state=0, learn_sigma=True)
    m32 = GaussianBernoulliRBM(**kw).fit(digits.astype(np.float32))
    m64 = GaussianBernoulliRBM(**kw).fit(digits.astype(np.float64))
    for name in ["components_", "intercept_visible_", "sigma_"]:
        assert getattr(m32, name).dtype == np.float32
        assert getattr(m64, name).dtype == np.float64
    assert m32.transform(digits).dtype == np.float32
    np.testing.assert_allclose(m32.components_, m64.components_, atol=2e-4)
    np.testing.assert_allclose(m32.sigma_, m64.sigma_, atol=2e-4)


def test_sparse_input_and_partial_fit_give_the_same_model(digits):
    kw = dict(n_components=16, random_state=0, learn_sigma=True)
    X = digits[:1600]
    dense = GaussianBernoulliRBM(n_iter=1, **kw).fit(X)
    sparse = GaussianBernoulliRBM(n_iter=1, **kw).fit(sp.csr_matrix(X))
    streamed = GaussianBernoulliRBM(**kw)
    for chunk in np.split(X, 4):
        streamed.partial_fit(chunk)
    for other in (sparse, streamed):
        np.testing.assert_array_equal(other.components_, dense.components_)
        np.testing.assert_array_equal(other.sigma_, dense.sigma_)
    np.testing.assert_allclose(dense.transform(sp.csr_matrix(X)), dense.transform(X),
                               rtol=1e-5)
    np.testing.assert_allclose(dense.free_energy(sp.csr_matrix(X[:50])),
                               dense.free_energy(X[:50]), rtol=1e-5)


def test_checkpoint_resume_is_bit_identical(digits, tmp_path):
    kw = dict(n_components=16, random_state=0, momentum=0.5, persistent=True,
              learn_sigma=True)
    uninterrupted = GaussianBernoulliRBM(n_iter=3, **kw).fit(digits)
    first = GaussianBernoulliRBM(n_iter=1, **kw).fit(digits)
    first.save(tmp_path / "gbrbm.npz")
    resumed = GaussianBernoulliRBM.load(tmp_path / "gbrbm.npz")
    np.testing.assert_array_equal(resumed.sigma_, first.sigma_)
    resumed.partial_fit(digits).partial_fit(digits)
    for name in ["components_", "intercept_visible_", "h_samples_", "sigma_"]:
        np.testing.assert_array_equal(getattr(resumed, name), getattr(uninterrupted, name))
    assert clone(resumed).get_params() == first.get_params()
    with pytest.raises(ValueError, match="not a BernoulliRBM"):
        BernoulliRBM.load(tmp_path / "gbrbm.npz")


def test_gibbs_and_sample(digits):
    m = GaussianBernoulliRBM(n_components=16, n_iter=2, random_state=0).fit(digits)
    g = m.gibbs(digits[:7])
    assert g.shape == (7, 64) and g.dtype == np.float32 and len(np.unique(g)) > 100
    s = m.sample(5, n_steps=20)
    assert s.shape == (5, 64) and np.isfinite(s).all()
    m2 = GaussianBernoulliRBM(n_components=16, n_iter=2, random_state=0).fit(digits)
    np.testing.assert_array_equal(m2.gibbs(digits[:7]), g)
    np.testing.assert_array_equal(m2.sample(5, n_steps=20), s)


def test_samples_follow_the_model():
    # Zero weights: v ~ N(b, sigma^2) exactly, whatever the hidden units do.
    m = GaussianBernoulliRBM(n_components=3, n_iter=1, random_state=0, dtype="float64",
                             learn_sigma=True).fit(np.random.default_rng(0).normal(size=(50, 4)))
    m.components_[:] = 0
    m.intercept_visible_[:] = [-1, 0, 0.5, 2]
    m._log_var[:] = 2 * np.log([0.5, 1, 2, 3])
    s = m.sample(20000, n_steps=3)
    np.testing.assert_allclose(s.mean(axis=0), m.intercept_visible_, atol=0.05)
    np.testing.assert_allclose(s.std(axis=0), [0.5, 1, 2, 3], rtol=0.03)


# ---------------------------------------------------------------------------------------
# Noisy rectified linear hidden units, on both RBMs
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
def test_nrelu_transform_is_the_noise_free_rectified_input(cls, digits):
    X = digits if cls is GaussianBernoulliRBM else load_digits().data / 16
    # PCD for the binary visible units (its chains carry nrelu samples); CD for the
    # Gaussian ones, where PCD can run away, both layers being unbounded.
    persistent = cls is BernoulliRBM
    m = cls(n_components=16, n_iter=3, random_state=0, hidden_units="nrelu",
            dtype="float64", persistent=persistent).fit(X)
    W, c = m.components_, m.intercept_hidden_
    H = m.transform(X)
    np.testing.assert_allclose(H, np.maximum(X @ W.T + c, 0), rtol=1e-10, atol=1e-12)
    assert (H == 0).any() and (H > 1).any()  # rectified, and not squashed
    if persistent:
        assert m.h_samples_.min() >= 0 and len(np.unique(m.h_samples_)) > 10
    untrained = clone(m).set_params(n_iter=0).fit(X)
    assert m.history_["reconstruction_error"][-1] < 0.5 * untrained._reconstruction(X)[0]
    for method in (m.free_energy, m.score_samples, m.log_likelihood, m.score):
        with pytest.raises(NotImplementedError, match="hidden_units='bernoulli'"):
            method(X[:5])
    with pytest.raises(NotImplementedError, match="Bernoulli hidden units"):
        log_partition(m)


def test_bernoulli_rbm_with_nrelu_learns_features():
    # Three prototypes with 10% bit flips: nrelu features separate them as well as binary.
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    protos = rng.random((3, 30)) < 0.5
    y = rng.integers(0, 3, 600)
    X = (protos[y] ^ (rng.random((600, 30)) < 0.1)).astype(np.float64)
    m = BernoulliRBM(n_components=10, hidden_units="nrelu", learning_rate=0.05, n_iter=10,
                     random_state=0).fit(X)
    clf = LogisticRegression(max_iter=1000).fit(m.transform(X[:400]), y[:400])
    assert clf.score(m.transform(X[400:]), y[400:]) > 0.95
    assert np.isfinite(m.sample(4, n_steps=10)).all()


def test_hidden_units_parameter_is_validated():
    with pytest.raises(ValueError, match="hidden_units"):
        BernoulliRBM(hidden_units="relu").fit(np.eye(3))
    with pytest.raises(ValueError, match="hidden_units"):  # no Gaussian-Gaussian RBM
        GaussianBernoulliRBM(hidden_units="gaussian").fit(np.eye(3))
    with pytest.raises(ValueError, match="learn_sigma"):
        GaussianBernoulliRBM(learn_sigma="yes").fit(np.eye(3))
