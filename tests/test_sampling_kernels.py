"""The compiled Gibbs engine against the NumPy oracle, in float32 and float64, 1 and 2 threads."""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from fastrbm._kernels import _sampling

from . import _reference as ref

DTYPES = [np.float32, np.float64]
THREADS = [1, 2]
# float64 kernels agree with NumPy to rounding; float32 to the exp polynomial and BLAS.
RTOL = {np.float32: 2e-5, np.float64: 1e-11}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_uniforms_match_oracle_bit_for_bit(dtype, n_threads):
    out = np.empty((37, 301), dtype)
    nxt = _sampling.uniform_rows(out, 12345, 678, n_threads)
    assert nxt == 679
    np.testing.assert_array_equal(out, ref.uniforms(12345, 678, out.shape).astype(dtype))


def test_uniform_statistics():
    # 200k draws: moments, a 20-bin chi-square, and no correlation between neighbours
    # along rows, along columns, or between consecutive counters.
    u = np.empty((400, 500), np.float64)
    _sampling.uniform_rows(u, 7, 0)
    v = np.empty_like(u)
    _sampling.uniform_rows(v, 7, 1)
    assert abs(u.mean() - 0.5) < 3e-3
    assert abs(u.var() - 1 / 12) < 2e-3
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    expected = u.size / 20
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 45  # 19 degrees of freedom: p < 1e-3
    for a, b in [(u[:, 1:], u[:, :-1]), (u[1:], u[:-1]), (u, v)]:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.01
    assert ((u >= 0) & (u < 1)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_sigmoid_rows(dtype, n_threads):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((13, 70)) * 8).astype(dtype)
    x[0, :4] = [-1e4, 1e4, -100, 100]
    bias = rng.standard_normal(70).astype(dtype)
    expected = ref.sigmoid(x.astype(np.float64) + bias)
    _sampling.sigmoid_rows(x, bias, n_threads)
    assert x.dtype == dtype and np.isfinite(x).all()
    np.testing.assert_allclose(x, expected, rtol=RTOL[dtype], atol=1e-30)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_sigmoid_sample_rows(dtype, n_threads):
    rng = np.random.default_rng(1)
    pre = (rng.standard_normal((25, 90)) * 3).astype(dtype)
    bias = rng.standard_normal(90).astype(dtype)
    p_ref, s_ref = ref.sample_layer(pre.astype(np.float64), bias, 99, 5)
    acc, samples = pre.copy(), np.empty_like(pre)
    assert _sampling.sigmoid_sample_rows(acc, bias, samples, 99, 5, n_threads) == 6
    np.testing.assert_allclose(acc, p_ref, rtol=RTOL[dtype])
    np.testing.assert_array_equal(samples, s_ref)


def test_bernoulli_samples_have_the_right_mean():
    p = np.full((200, 500), 0.3)
    s = np.empty_like(p)
    _sampling.sigmoid_sample_rows(np.full_like(p, np.log(0.3 / 0.7)), np.zeros(500), s, 3, 0)
    assert abs(s.mean() - 0.3) < 0.005


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("n_chains", [9, 40])  # few chains work on W's transpose
def test_gibbs_chain(dtype, n_threads, n_chains):
    rng = np.random.default_rng(2)
    W = (rng.standard_normal((7, 11)) * 0.8).astype(dtype)
    b, c = rng.standard_normal(11).astype(dtype), rng.standard_normal(7).astype(dtype)
    v0 = (rng.random((n_chains, 11)) < 0.5).astype(dtype)
    v_ref, h_ref, vp_ref, ctr = ref.gibbs_chain(v0.astype(np.float64), W, b, c, 4, 11, 20)
    v, h = v0.copy(), np.empty((n_chains, 7), dtype)
    vp = np.empty((n_chains, 11), dtype)
    with threadpool_limits(1, user_api="blas"):
        assert _sampling.gibbs_chain(v, h, W, b, c, 4, 11, 20, 2, n_threads, vp) == ctr
    np.testing.assert_array_equal(v, v_ref)
    np.testing.assert_array_equal(h, h_ref)
    np.testing.assert_allclose(vp, vp_ref, rtol=RTOL[dtype])


def _problem(dtype, n=23, nv=12, nh=8, seed=3):
    rng = np.random.default_rng(seed)
    X = (rng.random((n, nv)) < 0.4).astype(dtype)
    W = (rng.standard_normal((nh, nv)) * 0.5).astype(dtype)
    b = (rng.standard_normal(nv) * 0.2).astype(dtype)
    c = (rng.standard_normal(nh) * 0.2).astype(dtype)
    return X, W, b, c


def _engine_epoch(X, W, b, c, chain, vel, q, log_var=None, log_var_vel=None, *,
                  sparse=False, n_blocks=2, n_threads=1, seed, counter, visible="bernoulli",
                  **settings):
    """One GibbsEngine epoch on copies of the arrays; returns the engine (its state)."""
    copy = lambda a: None if a is None else a.copy()  # noqa: E731
    engine = _sampling.GibbsEngine(
        W.copy(), b.copy(), c.copy(), chain.copy(), W_vel=copy(vel[0]), b_vel=copy(vel[1]),
        c_vel=copy(vel[2]), q_hidden=q.copy(), log_var=copy(log_var),
        log_var_vel=copy(log_var_vel), seed=seed, counter=counter)
    assert engine.visible == visible
    engine.configure(n_blocks=n_blocks, n_threads=n_threads, **settings)
    with threadpool_limits(1, user_api="blas"):
        engine.epoch(sp.csr_matrix(X) if sparse else X)
    return engine


def _run_kernel(X, W, b, c, chain, vel, q, **kw):
    e = _engine_epoch(X, W, b, c, chain, vel, q, **kw)
    return e.W, e.b, e.c, e.chains, [e.W_vel, e.b_vel, e.c_vel], e.q_hidden, e.counter


CD_SETTINGS = [
    dict(k=1, persistent=False),
    dict(k=3, persistent=False),
    dict(k=1, persistent=True),
    dict(k=2, persistent=True),
    dict(k=1, persistent=False, momentum=0.9, weight_decay=0.01),
    dict(k=1, persistent=True, momentum=0.5, sparsity_cost=0.3, sparsity_target=0.05),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("settings", CD_SETTINGS, ids=str)
@pytest.mark.parametrize("batch_size", [5, 40])  # small batches take the transposed-W path
def test_cd_epoch_matches_oracle(dtype, n_threads, settings, batch_size):
    X, W, b, c = _problem(dtype, n=83)
    nh, nv = W.shape
    chain = (np.random.default_rng(4).random((5, nh)) < 0.5).astype(dtype)
    vel = [np.zeros_like(W), np.zeros_like(b), np.zeros_like(c)]
    q = np.full(nh, 0.1, dtype)
    kw = dict(batch_size=batch_size, learning_rate=0.1, seed=2024, counter=17, **settings)
    got = _run_kernel(X, W, b, c, chain, vel, q, n_threads=n_threads, **kw)
    f64 = lambda a: a.astype(np.float64)  # noqa: E731
    want = ref.cd_epoch(f64(X), f64(W), f64(b), f64(c), f64(chain), [f64(v) for v in vel],
                        f64(q), **kw)
    assert got[6] == want[6], "counter"
    tol = dict(rtol=RTOL[dtype], atol=RTOL[dtype] * 0.1)
    for name, g, w in zip("W b c".split(), got[:3], want[:3]):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, w, err_msg=name, **tol)
    if settings["persistent"]:
        np.testing.assert_array_equal(got[3], want[3])
    for g, w in zip(got[4], want[4]):
        if settings.get("momentum"):
            np.testing.assert_allclose(g, w, **tol)
    np.testing.assert_allclose(got[5], want[5], **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("persistent", [False, True])
def test_cd_epoch_sparse_input_is_identical_to_dense(dtype, persistent):
    X, W, b, c = _problem(dtype)
    chain = np.zeros((5, W.shape[0]), dtype)
    vel = [np.zeros_like(W), np.zeros_like(b), np.zeros_like(c)]
    q = np.zeros(W.shape[0], dtype)
    kw = dict(batch_size=4, k=2, persistent=persistent, learning_rate=0.05, seed=1,
              counter=0)
    dense = _run_kernel(X, W, b, c, chain, vel, q, **kw)
    sparse = _run_kernel(X, W, b, c, chain, vel, q, sparse=True, **kw)
    for d, s in zip(dense[:4], sparse[:4]):
        np.testing.assert_array_equal(d, s)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("batch_size", [10, 50])  # the transposed-W path and the other
def test_cd_epoch_is_identical_for_1_and_2_threads(dtype, persistent, batch_size):
    # Large enough that BLAS and OpenMP really split the work.
    X, W, b, c = _problem(dtype, n=300, nv=200, nh=150, seed=5)
    chain = np.zeros((50, 150), dtype)
    vel = [np.zeros_like(W), np.zeros_like(b), np.zeros_like(c)]
    q = np.full(150, 0.1, dtype)
    kw = dict(batch_size=batch_size, k=1, persistent=persistent, learning_rate=0.1,
              momentum=0.5, seed=9, counter=0)
    one = _run_kernel(X, W, b, c, chain, vel, q, n_threads=1, **kw)
    two = _run_kernel(X, W, b, c, chain, vel, q, n_threads=2, **kw)
    for a, b_ in zip(one[:4], two[:4]):
        np.testing.assert_array_equal(a, b_)


def test_engine_rejects_mismatched_shapes():
    X, W, b, c = _problem(np.float64)
    chain = np.zeros((2, 8))
    with pytest.raises(ValueError, match="c has shape"):
        _sampling.GibbsEngine(W, b, c[:5], chain)
    with pytest.raises(ValueError, match="W_vel has shape"):
        _sampling.GibbsEngine(W, b, c, chain, W_vel=np.zeros((8, 5)))
    with pytest.raises(ValueError, match="intercept_hidden_ has shape"):
        _sampling.GibbsEngine(W, b, c[:5], chain, names={"c": "intercept_hidden_"})
    with pytest.raises(ValueError, match="b has shape .* dtype float32"):
        _sampling.GibbsEngine(W, b.astype(np.float32), c, chain)
    with pytest.raises(ValueError, match="C-contiguous"):
        _sampling.GibbsEngine(np.asfortranarray(W), b, c, chain)
    engine = _sampling.GibbsEngine(W, b, c, chain)
    with pytest.raises(ValueError, match="configure"):
        engine.epoch(X)
    with pytest.raises(ValueError, match="must be positive"):
        engine.configure(learning_rate=0.1, batch_size=0)
    engine.configure(learning_rate=0.1, batch_size=4)
    with pytest.raises(ValueError, match="features"):
        engine.epoch(np.ascontiguousarray(X[:, :5]))


def test_engine_reuses_work_buffers_and_restores_snapshots():
    X, W, b, c = _problem(np.float64, n=40)
    engine = _sampling.GibbsEngine(W.copy(), b.copy(), c.copy(), np.zeros((4, 8)), seed=3)
    engine.configure(learning_rate=0.1, momentum=0.5, batch_size=4, persistent=True)
    engine.epoch(X)
    before = {k: a.copy() for k, a in engine.state().items()}, engine.counter
    engine.snapshot()
    engine.epoch(X)
    assert engine.counter > before[1]
    assert not np.array_equal(engine.W, before[0]["W"])
    W_id = id(engine.W)
    engine.restore()
    assert id(engine.W) == W_id and engine.counter == before[1]
    for k, a in engine.state().items():
        np.testing.assert_array_equal(a, before[0][k], err_msg=k)
    # the same epoch again, on reused buffers, gives the same result
    engine.epoch(X)
    again = _sampling.GibbsEngine(**before[0], seed=3, counter=before[1])
    again.configure(learning_rate=0.1, momentum=0.5, batch_size=4, persistent=True)
    again.epoch(X)
    for k, a in engine.state().items():
        np.testing.assert_array_equal(a, again.state()[k], err_msg=k)
    copy = pickle.loads(pickle.dumps(engine))
    for k, a in engine.state().items():
        np.testing.assert_array_equal(a, copy.state()[k], err_msg=k)
    assert copy.counter == engine.counter and copy.seed == engine.seed


# ---------------------------------------------------------------------------------------
# Normal draws, Gaussian visible units, noisy rectified linear hidden units
# ---------------------------------------------------------------------------------------

# Box-Muller through the engine's own log / sqrt / cos polynomials: float32 agrees with the
# float64 NumPy oracle to a few float32 ulps of the largest value (|z| <= 5.8).
NORMAL_ATOL = {np.float32: 4e-6, np.float64: 1e-13}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_normals_match_oracle(dtype, n_threads):
    out = np.empty((37, 301), dtype)
    assert _sampling.normal_rows(out, 12345, 678, n_threads) == 679
    np.testing.assert_allclose(out, ref.normals(12345, 678, out.shape), rtol=RTOL[dtype],
                               atol=NORMAL_ATOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_statistics(dtype):
    # 200k draws: moments, a Kolmogorov-Smirnov test against N(0, 1), and no correlation
    # along rows, along columns, or between consecutive counters.
    from scipy import stats

    z = np.empty((400, 500), dtype)
    _sampling.normal_rows(z, 7, 0)
    w = np.empty_like(z)
    _sampling.normal_rows(w, 7, 1)
    x = z.astype(np.float64).ravel()
    assert abs(x.mean()) < 0.01 and abs(x.var() - 1) < 0.01
    assert abs(stats.skew(x)) < 0.02 and abs(stats.kurtosis(x)) < 0.04
    assert stats.kstest(x, "norm").pvalue > 1e-3
    assert np.abs(x).max() < 5.8
    for a, b in [(z[:, 1:], z[:, :-1]), (z[1:], z[:-1]), (z, w)]:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.01


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_gaussian_sample_rows(dtype, n_threads):
    rng = np.random.default_rng(11)
    pre = (rng.standard_normal((25, 90)) * 3).astype(dtype)
    bias = rng.standard_normal(90).astype(dtype)
    sigma = np.exp(rng.standard_normal(90)).astype(dtype)
    mean_ref, s_ref = ref.sample_units(pre.astype(np.float64), bias, "gaussian", 99, 5, sigma)
    acc, samples = pre.copy(), np.empty_like(pre)
    assert _sampling.gaussian_sample_rows(acc, bias, sigma, samples, 99, 5, n_threads) == 6
    np.testing.assert_allclose(acc, mean_ref, rtol=RTOL[dtype])
    np.testing.assert_allclose(samples, s_ref, rtol=RTOL[dtype], atol=10 * NORMAL_ATOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_nrelu_sample_rows(dtype, n_threads):
    rng = np.random.default_rng(12)
    pre = (rng.standard_normal((25, 90)) * 3).astype(dtype)
    pre[0, :4] = [-1e4, 1e4, -100, 100]
    bias = rng.standard_normal(90).astype(dtype)
    mean_ref, s_ref = ref.sample_units(pre.astype(np.float64), bias, "nrelu", 99, 5)
    acc, samples = pre.copy(), np.empty_like(pre)
    assert _sampling.nrelu_sample_rows(acc, bias, samples, 99, 5, n_threads) == 6
    assert np.isfinite(samples).all() and (samples >= 0).all()
    np.testing.assert_allclose(acc, mean_ref, rtol=RTOL[dtype])
    np.testing.assert_allclose(samples, s_ref, rtol=RTOL[dtype], atol=10 * NORMAL_ATOL[dtype])


def test_nrelu_and_gaussian_samples_have_the_right_moments():
    # NReLU: x + N(0, sigmoid(x)) rectified; at x = 1 that is E = 1.0195, Var = 0.6824 (by
    # numerical integration of max(0, 1 + s z), s^2 = sigmoid(1)). Gaussian: N(0.5, 2^2).
    from scipy import integrate, stats

    s = np.sqrt(ref.sigmoid(1.0))
    m1 = integrate.quad(lambda z: max(0, 1 + s * z) * stats.norm.pdf(z), -12, 12)[0]
    m2 = integrate.quad(lambda z: max(0, 1 + s * z) ** 2 * stats.norm.pdf(z), -12, 12)[0]
    h = np.empty((400, 500))
    _sampling.nrelu_sample_rows(np.ones_like(h), np.zeros(500), h, 3, 0)
    assert abs(h.mean() - m1) < 0.005 and abs(h.var() - (m2 - m1**2)) < 0.01
    v = np.empty((400, 500))
    _sampling.gaussian_sample_rows(np.full_like(v, 0.5), np.zeros(500), np.full(500, 2.0), v,
                                   3, 0)
    assert abs(v.mean() - 0.5) < 0.01 and abs(v.std() - 2) < 0.01


UNIT_CHAINS = [("gaussian", "bernoulli", 0.0), ("gaussian", "bernoulli", 0.7),
               ("bernoulli", "nrelu", 0.0), ("gaussian", "nrelu", 0.7),
               ("bernoulli", "gaussian", 0.0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("visible, hidden, log_var_scale", UNIT_CHAINS, ids=str)
@pytest.mark.parametrize("n_chains", [9, 40])
def test_gibbs_chain_with_other_units(dtype, n_threads, visible, hidden, log_var_scale,
                                      n_chains):
    rng = np.random.default_rng(2)
    W = (rng.standard_normal((7, 11)) * 0.3).astype(dtype)
    b, c = rng.standard_normal(11).astype(dtype), rng.standard_normal(7).astype(dtype)
    log_var = (rng.standard_normal(11) * log_var_scale).astype(dtype)
    v0 = rng.standard_normal((n_chains, 11)).astype(dtype)
    if visible == "bernoulli":
        v0 = (v0 > 0).astype(dtype)
    v_ref, h_ref, vp_ref, ctr = ref.gibbs_chain(v0.astype(np.float64), W, b, c, 4, 11, 20,
                                                visible, hidden, log_var.astype(np.float64))
    v, h = v0.copy(), np.empty((n_chains, 7), dtype)
    vp = np.empty((n_chains, 11), dtype)
    with threadpool_limits(1, user_api="blas"):
        assert _sampling.gibbs_chain(v, h, W, b, c, 4, 11, 20, 2, n_threads, vp, visible,
                                     hidden, log_var) == ctr
    tol = dict(rtol=10 * RTOL[dtype], atol=10 * NORMAL_ATOL[dtype])
    for name, got, want in [("v", v, v_ref), ("h", h, h_ref), ("v_prob", vp, vp_ref)]:
        np.testing.assert_allclose(got, want, err_msg=name, **tol)


def _run_units_kernel(X, W, b, c, chain, vel, q, log_var, log_var_vel, *, visible, **kw):
    """A GibbsEngine epoch with unit types, on copies; returns what ref.cd_epoch returns."""
    gaussian = visible == "gaussian"
    e = _engine_epoch(X, W, b, c, chain, vel, q, log_var if gaussian else None,
                      log_var_vel if gaussian else None, visible=visible, **kw)
    return (e.W, e.b, e.c, e.chains, [e.W_vel, e.b_vel, e.c_vel], e.q_hidden, e.counter,
            e.log_var if gaussian else log_var, e.log_var_vel if gaussian else log_var_vel)


GAUSSIAN_CD_SETTINGS = [
    dict(visible="gaussian", hidden="bernoulli", k=1, persistent=False),
    dict(visible="gaussian", hidden="bernoulli", k=2, persistent=True),
    dict(visible="gaussian", hidden="bernoulli", k=1, persistent=False, log_var_scale=0.5),
    dict(visible="gaussian", hidden="bernoulli", k=1, persistent=False, learn_log_var=True),
    dict(visible="gaussian", hidden="bernoulli", k=1, persistent=True, learn_log_var=True,
         momentum=0.5, weight_decay=0.01, log_var_scale=0.3, log_var_min=-0.2,
         log_var_max=0.4),
    dict(visible="bernoulli", hidden="nrelu", k=1, persistent=False),
    dict(visible="bernoulli", hidden="nrelu", k=2, persistent=True, momentum=0.5),
    dict(visible="gaussian", hidden="nrelu", k=1, persistent=True, learn_log_var=True,
         sparsity_cost=0.1),
    dict(visible="bernoulli", hidden="gaussian", k=1, persistent=False),
    dict(visible="bernoulli", hidden="gaussian", k=2, persistent=True, momentum=0.5),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("settings", GAUSSIAN_CD_SETTINGS, ids=str)
@pytest.mark.parametrize("batch_size", [5, 40])
def test_cd_epoch_with_other_units_matches_oracle(dtype, n_threads, settings, batch_size):
    # The whole update (every batch, CD-k or PCD-k) against the oracle fed the same noise.
    settings = dict(settings)
    log_var_scale = settings.pop("log_var_scale", 0.0)
    rng = np.random.default_rng(4)
    X, W, b, c = _problem(dtype, n=83)
    nh, nv = W.shape
    W *= dtype(0.4)
    if settings["visible"] == "gaussian":
        X = rng.standard_normal(X.shape).astype(dtype)
    chain = (rng.random((5, nh)) < 0.5).astype(dtype)
    vel = [np.zeros_like(W), np.zeros_like(b), np.zeros_like(c)]
    q = np.full(nh, 0.1, dtype)
    log_var = (rng.standard_normal(nv) * log_var_scale).astype(dtype)
    log_var_vel = np.zeros(nv, dtype)
    kw = dict(batch_size=batch_size, learning_rate=0.05, seed=2024, counter=17, **settings)
    got = _run_units_kernel(X, W, b, c, chain, vel, q, log_var, log_var_vel,
                            n_threads=n_threads, **kw)
    f64 = lambda a: a.astype(np.float64)  # noqa: E731
    want = ref.cd_epoch(f64(X), f64(W), f64(b), f64(c), f64(chain), [f64(v) for v in vel],
                        f64(q), log_var=f64(log_var), log_var_vel=f64(log_var_vel), **kw)
    assert got[6] == want[6], "counter"
    tol = dict(rtol=20 * RTOL[dtype], atol=20 * NORMAL_ATOL[dtype])
    names = ["W", "b", "c", "chain", None, "q_hidden", None, "log_var", "log_var_vel"]
    for name, g, w in zip(names, got, want):
        if name is None or w is None:
            continue
        assert g.dtype == dtype
        np.testing.assert_allclose(g, w, err_msg=name, **tol)
    if settings.get("learn_log_var"):
        assert not np.array_equal(got[7], log_var)  # the variances did move
        assert (got[7] >= kw.get("log_var_min", -10)).all()
        assert (got[7] <= kw.get("log_var_max", 10)).all()
    else:
        np.testing.assert_array_equal(got[7], log_var)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", ["bernoulli", "nrelu"])
@pytest.mark.parametrize("batch_size", [10, 50])
def test_gaussian_cd_epoch_is_identical_for_1_and_2_threads(dtype, hidden, batch_size):
    rng = np.random.default_rng(5)
    _, W, b, c = _problem(dtype, n=300, nv=200, nh=150, seed=5)
    W *= dtype(0.1)
    X = rng.standard_normal((300, 200)).astype(dtype)
    chain = np.zeros((50, 150), dtype)
    vel = [np.zeros_like(W), np.zeros_like(b), np.zeros_like(c)]
    q = np.full(150, 0.1, dtype)
    kw = dict(batch_size=batch_size, k=1, persistent=True, learning_rate=0.01, momentum=0.5,
              seed=9, counter=0, visible="gaussian", hidden=hidden, learn_log_var=True)
    args = (X, W, b, c, chain, vel, q, np.zeros(200, dtype), np.zeros(200, dtype))
    one = _run_units_kernel(*args, n_threads=1, **kw)
    two = _run_units_kernel(*args, n_threads=2, **kw)
    for name, a, b_ in zip(["W", "b", "c", "chain", None, None, None, "log_var"], one, two):
        if name:
            np.testing.assert_array_equal(a, b_, err_msg=name)


def test_unit_types_are_checked():
    X, W, b, c = _problem(np.float64)
    engine = _sampling.GibbsEngine(W, b, c, np.zeros((2, 8)))
    assert engine.visible == "bernoulli"
    with pytest.raises(ValueError, match="hidden units"):
        engine.configure(learning_rate=0.1, batch_size=4, hidden="relu")
    with pytest.raises(ValueError, match="log_var"):
        engine.configure(learning_rate=0.1, batch_size=4, learn_log_var=True)
    with pytest.raises(ValueError, match="log_var has shape"):
        _sampling.GibbsEngine(W, b, c, np.zeros((2, 8)), log_var=np.zeros(5))
    with pytest.raises(ValueError, match="log_var_vel has shape"):
        _sampling.GibbsEngine(W, b, c, np.zeros((2, 8)), log_var=np.zeros(12),
                              log_var_vel=np.zeros(3))
    gaussian = _sampling.GibbsEngine(W, b, c, np.zeros((2, 8)), log_var=np.zeros(12))
    assert gaussian.visible == "gaussian"
    with pytest.raises(ValueError, match="log_var_min"):
        gaussian.configure(learning_rate=0.1, batch_size=4, learn_log_var=True,
                           log_var_min=1, log_var_max=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(256, 64), (37, 21), (16, 16), (8, 40), (100, 50)])
def test_transpose_rows_matches_numpy(dtype, shape):
    # Whole register tiles (16 floats / 8 doubles a side) and the element-wise edges.
    W = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    nh = shape[0]
    for i0, i1 in [(0, nh), (min(3, nh), max(nh - 5, min(3, nh))), (0, 0)]:
        WT = np.full(shape[::-1], -7.0, dtype)
        _sampling.transpose_rows(W, WT, i0, i1)
        want = np.full(shape[::-1], -7.0, dtype)
        want[:, i0:i1] = W[i0:i1].T
        np.testing.assert_array_equal(WT, want)
    with pytest.raises(ValueError, match="transposed shape"):
        _sampling.transpose_rows(W, np.empty(shape, dtype) if shape[0] != shape[1]
                                 else np.empty((1, 1), dtype), 0, nh)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cd_epoch_small_batches_with_whole_transpose_tiles(dtype):
    # nh, nv above the 16 x 16 tile: W and its transpose are copied through the tile path.
    X, W, b, c = _problem(dtype, n=47, nv=40, nh=34)
    chain = np.zeros((5, 34), dtype)
    vel = [np.zeros_like(W), np.zeros_like(b), np.zeros_like(c)]
    q = np.full(34, 0.1, dtype)
    kw = dict(batch_size=5, k=1, persistent=False, learning_rate=0.1, seed=7, counter=0)
    got = _run_kernel(X, W, b, c, chain, vel, q, n_threads=1, **kw)
    f64 = lambda a: a.astype(np.float64)  # noqa: E731
    want = ref.cd_epoch(f64(X), f64(W), f64(b), f64(c), f64(chain), [f64(v) for v in vel],
                        f64(q), **kw)
    for g, w in zip(got[:3], want[:3]):
        np.testing.assert_allclose(g, w, rtol=RTOL[dtype], atol=RTOL[dtype] * 0.1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size", [10, 40])  # W's transpose, and W itself
def test_gemm_floor_leaves_the_weights_in_place(dtype, batch_size):
    # The benchmark floor nudges W by 1e-30-sized updates; small batches run on its
    # transpose, which must come back into W.
    X, W, _, _ = _problem(dtype, n=95, nv=40, nh=34)
    W_in = W.copy()
    with threadpool_limits(1, user_api="blas"):
        _sampling.gemm_floor(X, W, batch_size)
    np.testing.assert_allclose(W, W_in, rtol=1e-6, atol=0)
