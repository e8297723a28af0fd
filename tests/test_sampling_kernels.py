"""The compiled Gibbs engine against the NumPy oracle, in float32 and float64, 1 and 2 threads."""
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
def test_gibbs_chain(dtype, n_threads):
    rng = np.random.default_rng(2)
    W = (rng.standard_normal((7, 11)) * 0.8).astype(dtype)
    b, c = rng.standard_normal(11).astype(dtype), rng.standard_normal(7).astype(dtype)
    v0 = (rng.random((9, 11)) < 0.5).astype(dtype)
    v_ref, h_ref, vp_ref, ctr = ref.gibbs_chain(v0.astype(np.float64), W, b, c, 4, 11, 20)
    v, h, vp = v0.copy(), np.empty((9, 7), dtype), np.empty((9, 11), dtype)
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


def _run_kernel(X, W, b, c, chain, vel, q, *, sparse=False, n_blocks=2, n_threads=1, **kw):
    W, b, c, chain = W.copy(), b.copy(), c.copy(), chain.copy()
    vel = [v.copy() for v in vel]
    q = q.copy()
    dtype = W.dtype
    if sparse:
        Xs = sp.csr_matrix(X)
        data = (np.empty((0, X.shape[1]), dtype), Xs.data, Xs.indices.astype(np.int32),
                Xs.indptr.astype(np.int32), True)
    else:
        data = (X, np.empty(0, dtype), np.empty(0, np.int32), np.zeros(1, np.int32), False)
    with threadpool_limits(1, user_api="blas"):
        counter = _sampling.cd_epoch(
            *data, W, b, c, chain, vel[0], vel[1], vel[2], q, kw["batch_size"], kw["k"],
            kw["persistent"], kw["learning_rate"], kw.get("momentum", 0.0),
            kw.get("weight_decay", 0.0), kw.get("sparsity_target", 0.1),
            kw.get("sparsity_cost", 0.0), kw["seed"], kw["counter"], n_blocks, n_threads)
    return W, b, c, chain, vel, q, counter


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
    vel = [np.empty((0, 0), dtype), np.empty(0, dtype), np.empty(0, dtype)]
    q = np.empty(0, dtype)
    kw = dict(batch_size=4, k=2, persistent=persistent, learning_rate=0.05, seed=1,
              counter=0)
    dense = _run_kernel(X, W, b, c, chain, vel, q, **kw)
    sparse = _run_kernel(X, W, b, c, chain, vel, q, sparse=True, **kw)
    for d, s in zip(dense[:4], sparse[:4]):
        np.testing.assert_array_equal(d, s)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("persistent", [False, True])
def test_cd_epoch_is_identical_for_1_and_2_threads(dtype, persistent):
    # Large enough that BLAS and OpenMP really split the work.
    X, W, b, c = _problem(dtype, n=300, nv=200, nh=150, seed=5)
    chain = np.zeros((50, 150), dtype)
    vel = [np.zeros_like(W), np.zeros_like(b), np.zeros_like(c)]
    q = np.full(150, 0.1, dtype)
    kw = dict(batch_size=50, k=1, persistent=persistent, learning_rate=0.1, momentum=0.5,
              seed=9, counter=0)
    one = _run_kernel(X, W, b, c, chain, vel, q, n_threads=1, **kw)
    two = _run_kernel(X, W, b, c, chain, vel, q, n_threads=2, **kw)
    for a, b_ in zip(one[:4], two[:4]):
        np.testing.assert_array_equal(a, b_)


def test_cd_epoch_rejects_mismatched_shapes():
    X, W, b, c = _problem(np.float64)
    args = (np.empty(0), np.empty(0, np.int32), np.zeros(1, np.int32), False, W, b, c,
            np.zeros((2, 8)), np.empty((0, 0)), np.empty(0), np.empty(0), np.empty(0))
    with pytest.raises(ValueError, match="features"):
        _sampling.cd_epoch(np.ascontiguousarray(X[:, :5]), *args, 4, 1, False, 0.1, 0, 0, 0.1, 0, 0, 0)
    with pytest.raises(ValueError, match="must be positive"):
        _sampling.cd_epoch(X, *args, 0, 1, False, 0.1, 0, 0, 0.1, 0, 0, 0)
    with pytest.raises(ValueError, match="velocity"):
        _sampling.cd_epoch(X, *args, 4, 1, False, 0.1, 0.9, 0, 0.1, 0, 0, 0)
