"""Tests of the dense backprop engine (fastrbm._kernels.backprop) against NumPy oracles."""
import numpy as np
import pytest
from numba import njit
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer
from threadpoolctl import threadpool_limits

from fastrbm._kernels import backprop as bp
from fastrbm._utils import numba_threads

from . import _reference_network as ref

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
THREADS = [1, 2]
HIDDEN = ["identity", "logistic", "tanh", "relu", "elu"]
OUTPUTS = ["softmax", "logistic", "identity"]
BN_EPS = 1e-5


# --------------------------------------------------------------------------- helpers
def make_net(sizes, activation, output, batch_norm, dtype, rng, scale=0.6):
    """Random flat parameters (non-trivial gammas/betas) and BN running statistics."""
    layout, n_params, n_state = bp.make_layout(sizes, activation, output, batch_norm)
    theta = (rng.standard_normal(n_params) * scale).astype(dtype)
    bn_state = np.zeros(n_state, dtype)
    _, _, gammas, _ = bp.param_views(theta, layout)
    means, variances = bp.bn_state_views(bn_state, layout)
    for g, m, v in zip(gammas, means, variances):
        if g is not None:
            g += 1  # gamma around 1
            m[:] = rng.standard_normal(m.size)
            v[:] = rng.uniform(0.5, 2.0, v.size)
    return layout, theta, bn_state


def ref_net(theta, bn_state, layout, activation, output):
    """Oracle network over *copies* of the flat vectors (so the kernel's are untouched)."""
    theta, bn_state = theta.copy(), bn_state.copy()
    coefs, intercepts, gammas, betas = bp.param_views(theta, layout)
    means, variances = bp.bn_state_views(bn_state, layout)
    net = ref.Net(coefs, intercepts, gammas, betas, means, variances, activation, output)
    return net, theta, bn_state


def make_targets(output, n, k, dtype, rng):
    if output == "softmax":
        return np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    if output == "logistic":
        return rng.integers(0, 2, (n, k)).astype(dtype)
    return rng.standard_normal((n, k)).astype(dtype)


def flat_grads(grads, layout, size, dtype):
    """Oracle gradient lists packed like theta."""
    gW, gb, gg, gbeta = grads
    out = np.full(size, np.nan, dtype)
    coefs, intercepts, gammas, betas = bp.param_views(out, layout)
    for l in range(layout.shape[0]):
        coefs[l][:] = gW[l]
        intercepts[l][:] = gb[l]
        if gammas[l] is not None:
            gammas[l][:] = gg[l]
            betas[l][:] = gbeta[l]
    return out


def workspace(layout, dropout, n, dtype):
    # NaN-filled: reading a buffer before writing it shows up in the results
    return np.full(bp.workspace_size(layout, dropout, n), np.nan, dtype)


def engine_net(layout, theta, state, dropout, s1=None, s2=None, batch_size=1):
    """The engine's Network over these arrays, its workspace NaN-filled (see workspace)."""
    net = bp.make_network(layout, theta, state, dropout, s1, s2, batch_size)
    net.work[:] = np.nan
    return net


# --------------------------------------------------------------------------- layout
def test_make_layout_offsets_and_views():
    layout, n_params, n_state = bp.make_layout([3, 4, 5, 2], "relu", "softmax",
                                               batch_norm=[True, False])
    assert layout.dtype == np.int64 and layout.shape == (3, 8)
    assert n_params == 3 * 4 + 4 + 2 * 4 + 4 * 5 + 5 + 5 * 2 + 2
    assert n_state == 2 * 4
    theta = np.arange(n_params, dtype=np.float64)
    coefs, intercepts, gammas, betas = bp.param_views(theta, layout)
    assert [c.shape for c in coefs] == [(3, 4), (4, 5), (5, 2)]
    assert [b.shape for b in intercepts] == [(4,), (5,), (2,)]
    assert gammas[0].shape == (4,) and gammas[1] is None and gammas[2] is None
    # views tile theta exactly once
    pieces = [a for group in (coefs, intercepts, gammas, betas) for a in group if a is not None]
    seen = np.concatenate([p.ravel() for p in pieces])
    assert_array_equal(np.sort(seen), theta)
    assert list(layout[:, bp.ACT]) == [bp.ACT_RELU, bp.ACT_RELU, bp.ACT_SOFTMAX]
    with pytest.raises(ValueError):
        bp.make_layout([3], "relu", "softmax")
    with pytest.raises(ValueError, match="unknown hidden activation"):
        bp.make_layout([3, 4, 2], "selu", "softmax")
    with pytest.raises(ValueError):
        bp.make_layout([3, 2], "softmax", "softmax")
    with pytest.raises(ValueError):
        bp.make_layout([3, 4, 2], "relu", "softmax", batch_norm=[True, True])


def test_activation_codes_are_stable():
    """Checkpoints store the codes: new activations are appended, old ones never move."""
    assert bp.ACTIVATION_CODES == {"identity": 0, "logistic": 1, "tanh": 2, "relu": 3,
                                   "softmax": 4, "elu": 5}
    assert bp.ACT_ELU == 5
    layout, _, _ = bp.make_layout([3, 4, 2], "elu", "softmax")
    assert list(layout[:, bp.ACT]) == [bp.ACT_ELU, bp.ACT_SOFTMAX]


def _gemm_blocks(gemm):
    @njit
    def tn_block(A, B, C):
        # op(A) = A^T on a column block of A and of C: leading dimensions larger than it
        gemm(bp._T, bp._N, 9, 5, 7, A[:, 2:], A.shape[1], B, B.shape[1], C[:, 1:],
             C.shape[1])

    @njit
    def nt_block(A, B, C):
        gemm(bp._N, bp._T, 4, 5, 7, A[1:], A.shape[1], B, B.shape[1], C, C.shape[1])
    return tn_block, nt_block


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("route", ["_gemm", "_gemm_ilp64"])
def test_gemm_route(dtype, threads, route):
    """Both GEMM routes (SciPy's BLAS through scipy.linalg.cython_blas; the ILP64 OpenBLAS
    found loaded, or the forwarders to SciPy's) against NumPy, with transposed operands and
    blocks narrower than their leading dimensions; nothing is written outside the block."""
    _gemm_tn_block, _gemm_nt_block = _gemm_blocks(getattr(bp, route))
    rng = np.random.default_rng(0)
    A = rng.standard_normal((7, 12)).astype(dtype)  # op(A) = A[:, 2:11]^T, 9 x 7
    B = rng.standard_normal((7, 5)).astype(dtype)
    C = np.zeros((9, 8), dtype)
    with threadpool_limits(threads, user_api="blas"):
        _gemm_tn_block(A, B, C)
    assert_allclose(C[:, 1:6], A[:, 2:11].T @ B, rtol=RTOL[dtype], atol=RTOL[dtype])
    assert_array_equal(C[:, :1], 0)
    assert_array_equal(C[:, 6:], 0)
    A2 = rng.standard_normal((6, 7)).astype(dtype)
    B2 = rng.standard_normal((5, 7)).astype(dtype)
    C2 = np.zeros((4, 5), dtype)
    with threadpool_limits(threads, user_api="blas"):
        _gemm_nt_block(A2, B2, C2)
    assert_allclose(C2, A2[1:5] @ B2.T, rtol=RTOL[dtype], atol=RTOL[dtype])


def test_init_batchnorm():
    layout, n_params, n_state = bp.make_layout([3, 4, 2], "tanh", "identity", batch_norm=True)
    theta = np.full(n_params, 7.0)
    state = np.full(n_state, 7.0)
    bp.init_batchnorm(theta, state, layout)
    _, _, gammas, betas = bp.param_views(theta, layout)
    means, variances = bp.bn_state_views(state, layout)
    assert_array_equal(gammas[0], 1)
    assert_array_equal(betas[0], 0)
    assert_array_equal(means[0], 0)
    assert_array_equal(variances[0], 1)
    assert np.all(bp.param_views(theta, layout)[0][0] == 7.0)  # weights untouched


# --------------------------------------------------------------------------- forward
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", HIDDEN)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_predict_matches_reference(activation, output, dtype, batch_norm):
    rng = np.random.default_rng(1)
    sizes = [5, 7, 6, 3]
    layout, theta, state = make_net(sizes, activation, output, batch_norm, dtype, rng)
    X = rng.standard_normal((11, 5)).astype(dtype)
    net, _, _ = ref_net(theta, state, layout, activation, output)
    expected = ref.forward_infer(X, net, BN_EPS)
    out = np.full((11, 3), np.nan, dtype)
    batch = 4  # 11 rows in chunks of 4, 4, 3
    bp.predict(X, theta, layout, state, BN_EPS, batch, workspace(layout, None, batch, dtype),
               out)
    assert out.dtype == dtype
    rtol = RTOL[dtype]
    assert_allclose(out, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    if output != "identity":
        assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_train_batchnorm_dropout_matches_reference(dtype):
    rng = np.random.default_rng(2)
    sizes = [6, 8, 7, 4]
    layout, theta, state = make_net(sizes, "logistic", "softmax", True, dtype, rng)
    dropout = np.array([0.3, 0.5, 0.0])
    X = rng.standard_normal((9, 6)).astype(dtype)
    net, _, ref_state = ref_net(theta, state, layout, "logistic", "softmax")
    cache = ref.forward_train(X, net, dropout, BN_EPS, 0.1, 123, 5)
    net_ = engine_net(layout, theta, state, dropout, batch_size=9)
    settings = bp.make_settings(bn_eps=BN_EPS, bn_momentum=0.1, seed=123)
    Z = bp.forward_train(X, net_, settings, 5)
    rtol = RTOL[dtype]
    assert Z.dtype == dtype
    assert_allclose(Z, cache["Z_out"], rtol=rtol, atol=rtol * np.abs(cache["Z_out"]).max())
    assert_allclose(state, ref_state, rtol=rtol, atol=rtol)  # running statistics updated
    # dropout really dropped something, and the oracle used the same masks
    assert all((m == 0).any() for m in cache["M"])
    # a different step draws different masks and changes the output
    Z2 = bp.forward_train(X, net_._replace(bn_state=state.copy()), settings, 6)
    assert not np.allclose(Z2, cache["Z_out"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation",
                         ["logistic", "tanh", "relu", "elu", "softmax", "identity"])
def test_bias_activation_extreme_inputs(activation, dtype):
    """Activations stay finite and accurate over the whole range, including +-1e4."""
    z = np.concatenate([-np.logspace(-8, 4, 60), [0.0], np.logspace(-8, 4, 60)])
    Z = np.ascontiguousarray(np.stack([z, z[::-1]]).astype(dtype))
    b = np.array(np.linspace(-1, 1, Z.shape[1]), dtype=dtype)
    expected = ref.activate(Z + b, activation)
    code = bp.ACTIVATION_CODES[activation]
    bp.bias_activation(Z, b, code)
    assert np.all(np.isfinite(Z))
    tiny = np.finfo(dtype).tiny  # below it, results are subnormal: absolute check only
    eps = np.finfo(dtype).eps
    assert_allclose(Z, expected, rtol=4 * eps, atol=tiny)


# --------------------------------------------------------------------------- losses
@pytest.mark.parametrize("dtype", DTYPES)
def test_output_loss_overflow_safe(dtype):
    Z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    Y = np.array([[0, 1, 0], [1, 0, 0], [1, 0, 0]], dtype=dtype)
    P, D = Z.copy(), np.empty_like(Z)
    loss = bp.output_loss(P, Y, bp.ACT_SOFTMAX, D)
    # row 0: -log p_1 = 2e4; row 1: log 3; row 2: log 2
    assert np.isfinite(loss) and np.all(np.isfinite(P)) and np.all(np.isfinite(D))
    assert_allclose(loss, (2e4 + np.log(3) + np.log(2)) / 3, rtol=1e-6)
    assert_allclose(P.sum(axis=1), 1, rtol=1e-6)
    assert_allclose(P[2], [0.5, 0.5, 0], atol=1e-7)
    # binary cross-entropy: softplus form
    P, D = Z.copy(), np.empty_like(Z)
    loss = bp.output_loss(P, Y, bp.ACT_LOGISTIC, D)
    expected, _, _ = ref.output_loss(Z.astype(np.float64), Y.astype(np.float64), "logistic")
    assert np.isfinite(loss) and np.all((P >= 0) & (P <= 1))
    assert_allclose(loss, expected, rtol=1e-6)
    assert_allclose(loss, (4e4 + np.log(2)) / 3, rtol=1e-6)  # four saturated wrong units


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUTS)
def test_output_loss_matches_reference(output, dtype):
    rng = np.random.default_rng(3)
    Z = (3 * rng.standard_normal((7, 4))).astype(dtype)
    Y = make_targets(output, 7, 4, dtype, rng)
    loss_ref, P_ref, D_ref = ref.output_loss(Z, Y, output)
    P, D = Z.copy(), np.empty_like(Z)
    loss = bp.output_loss(P, Y, bp.ACTIVATION_CODES[output], D)
    rtol = RTOL[dtype]
    assert_allclose(loss, loss_ref, rtol=rtol)
    assert_allclose(P, P_ref, rtol=rtol, atol=rtol)
    assert_allclose(D, D_ref / 7, rtol=rtol, atol=rtol)  # gradient of the mean loss


# --------------------------------------------------------------------------- backward
LOSS_GRAD_CASES = [
    # activation, output, batch_norm, dropout, alpha
    ("logistic", "softmax", False, 0.0, 0.0),
    ("tanh", "logistic", False, 0.0, 1e-2),
    ("relu", "identity", True, 0.0, 0.0),
    ("logistic", "softmax", True, 0.4, 1e-2),
    ("identity", "identity", False, 0.3, 0.0),
    ("elu", "softmax", True, 0.3, 1e-2),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", LOSS_GRAD_CASES)
def test_loss_grad_matches_reference(case, dtype):
    activation, output, batch_norm, p, alpha = case
    rng = np.random.default_rng(4)
    sizes = [5, 6, 4, 3]
    layout, theta, state = make_net(sizes, activation, output, batch_norm, dtype, rng)
    dropout = np.array([p, p, 0.0])
    X = rng.standard_normal((8, 5)).astype(dtype)
    Y = make_targets(output, 8, 3, dtype, rng)
    net, _, ref_state = ref_net(theta, state, layout, activation, output)
    loss_ref, grads_ref, norms_ref = ref.loss_grad(X, Y, net, dropout, alpha, BN_EPS, 0.1, 9, 2)
    net_ = engine_net(layout, theta, state, dropout, batch_size=8)
    net_.grad[:], net_.layer_norms[:] = np.nan, np.nan
    grad, norms = net_.grad, net_.layer_norms
    loss = bp.loss_grad(X, Y, net_, bp.make_settings(alpha=alpha, bn_eps=BN_EPS, seed=9), 2)
    g_ref = flat_grads(grads_ref, layout, theta.size, dtype)
    rtol = 10 * RTOL[dtype]
    assert grad.dtype == dtype
    assert_allclose(loss, loss_ref, rtol=rtol)
    assert_allclose(grad, g_ref, rtol=rtol, atol=rtol * np.abs(g_ref).max())
    assert_allclose(norms, norms_ref, rtol=rtol)
    assert_allclose(state, ref_state, rtol=rtol, atol=rtol)


FD_CASES = (
    [(a, o, False, 0.0, 0.0) for a in HIDDEN for o in OUTPUTS]  # every activation x loss
    + [
        ("logistic", "softmax", False, 0.0, 0.05),  # L2
        ("logistic", "softmax", True, 0.0, 0.0),  # batch norm
        ("relu", "identity", True, 0.0, 0.05),
        ("tanh", "logistic", False, 0.5, 0.0),  # dropout (fixed mask: fixed seed and step)
        ("relu", "softmax", True, 0.3, 0.05),  # everything at once
        ("elu", "softmax", True, 0.3, 0.05),
    ]
)


@pytest.mark.parametrize("case", FD_CASES)
def test_gradient_finite_differences(case):
    activation, output, batch_norm, p, alpha = case
    rng = np.random.default_rng(5)
    sizes = [4, 5, 4, 3]
    layout, theta, state = make_net(sizes, activation, output, batch_norm, np.float64, rng)
    dropout = np.array([p, p, 0.0])
    X = rng.standard_normal((6, 4))
    Y = make_targets(output, 6, 3, np.float64, rng)
    _check_finite_differences(layout, theta, state, dropout, X, Y, alpha)
    if activation in ("relu", "elu"):
        net, _, _ = ref_net(theta, state, layout, activation, output)
        cache = ref.forward_train(X, net, dropout, BN_EPS, 0.0, 3, 1)
        # keep clear of the kink, or the difference quotient is wrong (ELU's derivative is
        # continuous at 0, its second derivative is not)
        assert min(np.abs(z).min() for z in cache["Z"]) > 1e-4
        # both branches of the derivative are exercised: 1 and h + 1
        assert all((z < -0.1).any() and (z > 0.1).any() for z in cache["Z"])


def _check_finite_differences(layout, theta, state, dropout, X, Y, alpha):
    """The engine's float64 gradient of the mini-batch loss against central differences
    (step 1e-6, relative error below 1e-6); returns the gradient."""
    net_ = engine_net(layout, theta, state, dropout, batch_size=X.shape[0])
    settings = bp.make_settings(alpha=alpha, bn_eps=BN_EPS, bn_momentum=0.0, seed=3)
    scratch = net_._replace(grad=np.empty_like(theta))

    def loss_at(th):  # bn_momentum=0: the running statistics stay put
        return bp.loss_grad(X, Y, scratch._replace(theta=th), settings, 1)

    bp.loss_grad(X, Y, net_, settings, 1)
    grad = net_.grad
    h = 1e-6
    fd = np.empty_like(theta)
    for k in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[k] += h
        tm[k] -= h
        fd[k] = (loss_at(tp) - loss_at(tm)) / (2 * h)
    rel = np.linalg.norm(grad - fd) / max(np.linalg.norm(grad), np.linalg.norm(fd))
    assert rel < 1e-6, rel
    assert np.linalg.norm(grad) > 1e-3  # not a vacuous comparison of zeros
    return grad


# --------------------------------------------------------------------------- per-layer
# An autoencoder's activations: logistic layers around a linear code layer (Hinton &
# Salakhutdinov 2006), with its two reconstruction losses.
AUTOENCODER_ACTS = ["logistic", "logistic", "identity", "logistic", "logistic"]
RECONSTRUCTION_OUTPUTS = ["logistic", "identity"]  # cross-entropy on [0, 1], squared error


def reconstruction_targets(output, X):
    """The inputs themselves: in [0, 1] for the cross-entropy, any values otherwise."""
    return np.ascontiguousarray(ref.sigmoid(X) if output == "logistic" else X)


def test_make_layout_per_layer_activations():
    sizes = [6, 5, 4, 2, 4, 5, 6]
    layout, n_params, n_state = bp.make_layout(sizes, AUTOENCODER_ACTS, "logistic")
    assert list(layout[:, bp.ACT]) == [bp.ACT_LOGISTIC, bp.ACT_LOGISTIC, bp.ACT_IDENTITY,
                                       bp.ACT_LOGISTIC, bp.ACT_LOGISTIC, bp.ACT_LOGISTIC]
    # the same table as one activation everywhere, but for the column ACT
    same, n_same, s_same = bp.make_layout(sizes, "logistic", "logistic")
    assert (n_params, n_state) == (n_same, s_same)
    assert_array_equal(np.delete(layout, bp.ACT, axis=1), np.delete(same, bp.ACT, axis=1))
    assert_array_equal(bp.make_layout(sizes, ("tanh",) * 5, "softmax")[0],
                       bp.make_layout(sizes, "tanh", "softmax")[0])
    assert bp.make_layout([3, 2], [], "identity")[0].shape == (1, 8)
    with pytest.raises(ValueError, match="5 entries, one per hidden layer, got 4"):
        bp.make_layout(sizes, AUTOENCODER_ACTS[:4], "logistic")
    with pytest.raises(ValueError, match="unknown hidden activation 'softmax'"):
        bp.make_layout(sizes, ["logistic"] * 4 + ["softmax"], "logistic")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", RECONSTRUCTION_OUTPUTS)
def test_per_layer_activations_match_reference(output, dtype):
    """predict, the encoder half alone (a slice of the table) and loss_grad of an
    autoencoder-shaped net against the oracle with the same per-layer activations."""
    rng = np.random.default_rng(14)
    sizes = [7, 6, 5, 3, 5, 6, 7]
    layout, theta, state = make_net(sizes, AUTOENCODER_ACTS, output, False, dtype, rng)
    X = rng.standard_normal((9, 7)).astype(dtype)
    Y = reconstruction_targets(output, X)
    net, _, _ = ref_net(theta, state, layout, AUTOENCODER_ACTS, output)
    rtol = 10 * RTOL[dtype]
    for rows, expected in [(layout, ref.forward_infer(X, net, BN_EPS)),
                           (layout[:3], ref.forward_infer(X, ref.Net(
                               net.coefs[:3], net.intercepts[:3], [None] * 3, [None] * 3,
                               [None] * 3, [None] * 3, AUTOENCODER_ACTS[:2], "identity"),
                               BN_EPS))]:
        out = np.full((9, rows[-1, bp.N_OUT]), np.nan, dtype)
        bp.predict(X, theta, rows, state, BN_EPS, 4, workspace(rows, None, 4, dtype), out)
        assert_allclose(out, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    assert (out < 0).any()  # the code layer is linear
    dropout = np.zeros(6)
    loss_ref, grads_ref, norms_ref = ref.loss_grad(X, Y, net, dropout, 1e-2, BN_EPS, 0.1, 9, 2)
    net_ = engine_net(layout, theta, state, dropout, batch_size=9)
    loss = bp.loss_grad(X, Y, net_, bp.make_settings(alpha=1e-2, bn_eps=BN_EPS, seed=9), 2)
    g_ref = flat_grads(grads_ref, layout, theta.size, dtype)
    assert_allclose(loss, loss_ref, rtol=rtol)
    assert_allclose(net_.grad, g_ref, rtol=rtol, atol=rtol * np.abs(g_ref).max())
    assert_allclose(net_.layer_norms, norms_ref, rtol=rtol)


@pytest.mark.parametrize("output", RECONSTRUCTION_OUTPUTS)
def test_reconstruction_gradient_finite_differences(output):
    """The reconstruction loss through a linear code layer: cross-entropy with a logistic
    output for targets in [0, 1], squared error with a linear one (float64, L2 on)."""
    rng = np.random.default_rng(15)
    sizes = [5, 4, 3, 2, 3, 4, 5]
    layout, theta, state = make_net(sizes, AUTOENCODER_ACTS, output, False, np.float64, rng)
    X = rng.standard_normal((6, 5))
    _check_finite_differences(layout, theta, state, np.zeros(6), X,
                              reconstruction_targets(output, X), 0.05)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", RECONSTRUCTION_OUTPUTS)
@pytest.mark.parametrize("blocks", [(1, 1), (3, 1), (3, 2)], ids=["whole", "blocks", "2threads"])
def test_per_layer_activations_run_epoch_matches_reference(output, dtype, blocks):
    """Two epochs of an autoencoder-shaped net (Adam, L2) against the oracle: whole layers,
    3 blocks, the same blocks on 2 Numba threads."""
    rng = np.random.default_rng(16)
    n_blocks, threads = blocks
    sizes = (6, 8, 5, 3, 5, 8, 6) if n_blocks == 1 else (40, 48, 36, 20, 36, 48, 40)
    case = (AUTOENCODER_ACTS, output, False, 0.0, 1e-3, "adam", 0.0)
    theta, state, ref_theta, _, results = _run_both(case, dtype, rng, sizes, n_blocks, threads)
    rtol = {np.float32: 2e-4, np.float64: 1e-10}[dtype]
    for loss, norms, t, ref_loss, ref_norms, ref_t in results:
        assert t == ref_t
        assert_allclose(loss, ref_loss, rtol=rtol)
        assert_allclose(norms, ref_norms, rtol=rtol)
    assert_allclose(theta, ref_theta, rtol=rtol, atol=rtol * np.abs(ref_theta).max())
    assert not np.array_equal(results[0][0], results[1][0])  # training happened


def test_layer_norms_are_gradient_norms():
    rng = np.random.default_rng(6)
    layout, theta, state = make_net([5, 9, 7, 3], "tanh", "softmax", True, np.float64, rng)
    X = rng.standard_normal((10, 5))
    Y = make_targets("softmax", 10, 3, np.float64, rng)
    net_ = engine_net(layout, theta, state, np.zeros(3), batch_size=10)
    net_.layer_norms[:] = np.nan
    bp.loss_grad(X, Y, net_, bp.make_settings(alpha=0.1, bn_eps=BN_EPS), 1)
    grad, norms = net_.grad, net_.layer_norms
    coefs, intercepts, _, _ = bp.param_views(grad, layout)
    assert_allclose(norms, [np.linalg.norm(g) for g in coefs], rtol=1e-13)
    assert np.all(norms > 0)
    assert_array_equal(intercepts[0], 0)  # batch-normalised layer: intercept unused
    assert np.any(intercepts[2] != 0)


# --------------------------------------------------------------------------- dropout
@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_mask(dtype):
    mask = np.full((50, 40), np.nan, dtype)
    bp.dropout_mask(2024, 17, 0.3, mask)
    assert_array_equal(mask, ref.dropout_mask(2024, 17, 0.3, mask.shape, dtype))
    assert set(np.unique(mask)) == {dtype(0), dtype(1 / 0.7)}
    assert abs((mask == 0).mean() - 0.3) < 0.03  # 2000 draws: sd 0.01
    other = np.empty_like(mask)
    bp.dropout_mask(2024, 18, 0.3, other)
    assert (other != mask).mean() > 0.2  # another stream, another mask
    bp.dropout_mask(2024, 17, 0.0, other)
    assert_array_equal(other, 1)


# --------------------------------------------------------------------------- optimizers
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_step_matches_sklearn(nesterov, dtype):
    rng = np.random.default_rng(7)
    theta = rng.standard_normal(37).astype(dtype)
    expected = theta.copy()
    opt = SGDOptimizer([expected], learning_rate_init=0.05, momentum=0.9, nesterov=nesterov)
    velocity = np.zeros_like(theta)
    for _ in range(4):
        grad = rng.standard_normal(37).astype(dtype)
        opt.update_params([expected], [grad])
        bp.sgd_step(theta, grad, velocity, 0.05, 0.9, nesterov)
    assert theta.dtype == dtype
    # same operations in the same order: bitwise equal
    assert_array_equal(theta, expected)
    assert_array_equal(velocity, opt.velocities[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_step_matches_sklearn(dtype):
    rng = np.random.default_rng(8)
    theta = rng.standard_normal(37).astype(dtype)
    expected = theta.copy()
    opt = AdamOptimizer([expected], learning_rate_init=0.01, beta_1=0.8, beta_2=0.99,
                        epsilon=1e-7)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t in range(1, 6):
        grad = rng.standard_normal(37).astype(dtype)
        opt.update_params([expected], [grad])
        bp.adam_step(theta, grad, m, v, 0.01, 0.8, 0.99, 1e-7, t)
    assert theta.dtype == dtype
    assert_allclose(theta, expected, rtol=2 * np.finfo(dtype).eps, atol=0)
    assert_allclose(m, opt.ms[0], rtol=2 * np.finfo(dtype).eps)
    assert_allclose(v, opt.vs[0], rtol=2 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_by_global_norm(dtype):
    rng = np.random.default_rng(9)
    grad = rng.standard_normal(1000).astype(dtype)  # not a multiple of the 64-lane blocks
    norm = np.linalg.norm(grad.astype(np.float64))
    g = grad.copy()
    assert_allclose(bp.clip_by_global_norm(g, 0.0), norm, rtol=1e-12)
    assert_array_equal(g, grad)  # max_norm <= 0: off
    assert_allclose(bp.clip_by_global_norm(g, 2 * norm), norm, rtol=1e-12)
    assert_array_equal(g, grad)  # below the threshold: untouched
    bp.clip_by_global_norm(g, 1.5)
    assert g.dtype == dtype
    assert_allclose(np.linalg.norm(g.astype(np.float64)), 1.5, rtol=RTOL[dtype] * 10)
    assert_allclose(g, grad * (1.5 / norm), rtol=RTOL[dtype] * 10)


# --------------------------------------------------------------------------- epoch loop
EPOCH_CASES = [
    # activation, output, batch_norm, dropout, alpha, optimizer, max_norm
    ("logistic", "softmax", False, 0.0, 1e-3, "sgd-nesterov", 0.0),
    ("relu", "identity", True, 0.2, 0.0, "adam", 0.5),
    ("tanh", "logistic", False, 0.0, 1e-2, "sgd", 0.0),
    ("relu", "softmax", False, 0.1, 1e-3, "adam", 0.0),  # L2 + Adam in the fused step
    ("elu", "logistic", True, 0.1, 1e-3, "sgd-nesterov", 0.0),
]


def _run_both(case, dtype, rng, sizes=(6, 8, 5, 3), n_blocks=1, threads=1):
    """Two epochs of run_epoch and of the oracle; with n_blocks > 1 the engine's blocked
    passes run; with threads > 1, run_epoch_parallel on that many Numba threads (BLAS at one
    thread, as the estimators set it)."""
    activation, output, batch_norm, p, alpha, opt_name, max_norm = case
    layout, theta, state = make_net(list(sizes), activation, output, batch_norm, dtype, rng,
                                    0.4 if sizes[0] < 16 else 0.15)
    dropout = np.r_[np.full(len(sizes) - 2, p), 0.0]
    X = rng.standard_normal((37, sizes[0])).astype(dtype)
    Y = make_targets(output, 37, sizes[-1], dtype, rng)
    perm = rng.permutation(37)
    batch = 8  # 4 full batches and one of 5
    net, ref_theta, ref_state = ref_net(theta, state, layout, activation, output)
    params = ref.params_list(net)
    if opt_name == "adam":
        ref_opt = AdamOptimizer(params, learning_rate_init=0.01)
        code, lr = bp.OPT_ADAM, 0.01
    else:
        ref_opt = SGDOptimizer(params, learning_rate_init=0.05, momentum=0.9,
                               nesterov=opt_name == "sgd-nesterov")
        code, lr = bp.OPT_SGD, 0.05
    s1, s2 = np.zeros_like(theta), np.zeros_like(theta)
    network = engine_net(layout, theta, state, dropout, s1, s2, batch)
    norms = network.layer_norms
    settings = bp.make_settings(alpha=alpha, bn_eps=BN_EPS, bn_momentum=0.1, seed=77,
                                optimizer=code, learning_rate=lr, momentum=0.9,
                                nesterov=opt_name == "sgd-nesterov", max_norm=max_norm,
                                n_blocks=n_blocks)
    results = []
    for epoch in range(2):
        t0 = 5 * epoch
        with threadpool_limits(1), numba_threads(threads) as used:
            assert used == threads
            run = bp.run_epoch_parallel if threads > 1 else bp.run_epoch
            loss, t = run(X, Y, perm, batch, network, settings, t0)
        ref_loss, ref_norms, ref_t = ref.run_epoch(X, Y, perm, batch, net, dropout, alpha,
                                                   BN_EPS, 0.1, 77, ref_opt, max_norm, t0)
        results.append((loss, norms.copy(), t, ref_loss, ref_norms, ref_t))
    return theta, state, ref_theta, ref_state, results


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", EPOCH_CASES)
@pytest.mark.parametrize("blocks", [(1, 1), (3, 1), (3, 2)], ids=["whole", "blocks", "2threads"])
def test_run_epoch_matches_reference(case, dtype, blocks):
    """Whole layers; layers in 3 blocks serially; the same blocks on 2 Numba threads (the
    parallel build). Layers of 36-48 units give 3 blocks of at most 16 units each."""
    rng = np.random.default_rng(10)
    n_blocks, threads = blocks
    sizes = (6, 8, 5, 3) if n_blocks == 1 else (40, 48, 36, 3)
    theta, state, ref_theta, ref_state, results = _run_both(case, dtype, rng, sizes, n_blocks,
                                                            threads)
    rtol = {np.float32: 2e-4, np.float64: 1e-10}[dtype]
    for loss, norms, t, ref_loss, ref_norms, ref_t in results:
        assert t == ref_t
        assert_allclose(loss, ref_loss, rtol=rtol)
        assert_allclose(norms, ref_norms, rtol=rtol)
    assert theta.dtype == dtype
    assert_allclose(theta, ref_theta, rtol=rtol, atol=rtol * np.abs(ref_theta).max())
    assert_allclose(state, ref_state, rtol=rtol, atol=rtol)
    assert not np.array_equal(results[0][0], results[1][0])  # training happened


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", EPOCH_CASES)
def test_blocked_epoch_thread_independent_and_fused_step_exact(case, dtype):
    """Blocked epochs: 1 or 2 Numba threads give bitwise-same models, and the optimizer step
    fused into the backward pass (no clipping) is bitwise the separate step (clipping on,
    threshold never reached)."""
    case_fused = case[:-1] + (0.0,)
    case_separate = case[:-1] + (1e30,)
    runs = {}
    for name, c, threads in [("fused1", case_fused, 1), ("fused2", case_fused, 2),
                             ("separate2", case_separate, 2)]:
        rng = np.random.default_rng(13)
        runs[name] = _run_both(c, dtype, rng, (40, 48, 36, 3), 3, threads)
    for other in ("fused2", "separate2"):
        for a, b in zip(runs["fused1"][:2], runs[other][:2]):
            assert_array_equal(a, b)
        for ra, rb in zip(runs["fused1"][4], runs[other][4]):
            assert ra[0] == rb[0] and ra[2] == rb[2]
            assert_array_equal(ra[1], rb[1])


def test_run_epoch_deterministic_and_blas_thread_independent():
    """Same inputs, bitwise-same outputs; 1 or 2 BLAS threads (shapes big enough for
    OpenBLAS to split the GEMMs) the same results to rounding. Not bitwise: with one
    thread OpenBLAS may take its small-matrix kernels, which sum in another order (seen
    with NumPy's OpenBLAS 0.3.31 on AVX-512); the estimators hold BLAS at one thread while
    training, so their models do not depend on it."""
    rng = np.random.default_rng(11)
    layout, theta0, state0 = make_net([128, 256, 64, 10], "logistic", "softmax", True,
                                      np.float64, rng, 0.1)
    dropout = np.array([0.2, 0.1, 0.0])
    X = rng.standard_normal((300, 128))
    Y = make_targets("softmax", 300, 10, np.float64, rng)
    perm = rng.permutation(300)

    def train(threads):
        theta, state = theta0.copy(), state0.copy()
        s1, s2 = np.zeros_like(theta), np.zeros_like(theta)
        net_ = engine_net(layout, theta, state, dropout, s1, s2, 100)
        settings = bp.make_settings(alpha=1e-3, bn_eps=BN_EPS, bn_momentum=0.1, seed=5,
                                    optimizer=bp.OPT_ADAM, learning_rate=1e-3, max_norm=1.0)
        with threadpool_limits(threads):
            loss, _ = bp.run_epoch(X, Y, perm, 100, net_, settings, 0)
        return theta, state, loss, net_.layer_norms

    a, b, c = train(1), train(1), train(2)
    for x, y, z in zip(a, b, c):
        assert_array_equal(x, y)
        np.testing.assert_allclose(x, z, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
def test_smoke_training_reduces_loss(dtype):
    """Three Gaussian blobs: a few epochs of SGD drive the loss down and fit the data."""
    rng = np.random.default_rng(12)
    centers = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    y = rng.integers(0, 3, 300)
    X = (centers[y] + rng.standard_normal((300, 2))).astype(dtype)
    Y = np.eye(3, dtype=dtype)[y]
    layout, n_params, n_state = bp.make_layout([2, 16, 3], "relu", "softmax")
    theta = np.zeros(n_params, dtype)
    coefs, _, _, _ = bp.param_views(theta, layout)
    for W in coefs:
        W[:] = rng.uniform(-0.5, 0.5, W.shape)
    state, dropout = np.zeros(n_state, dtype), np.zeros(2)
    net_ = engine_net(layout, theta, state, dropout, np.zeros_like(theta), None, 20)
    settings = bp.make_settings(alpha=1e-4, bn_eps=BN_EPS, optimizer=bp.OPT_SGD,
                                learning_rate=0.05)
    work = net_.work
    losses, t = [], 0
    for epoch in range(8):
        loss, t = bp.run_epoch(X, Y, rng.permutation(300), 20, net_, settings, t)
        losses.append(loss)
    assert t == 8 * 15
    assert losses[-1] < 0.25 * losses[0], losses
    out = np.empty((300, 3), dtype)
    bp.predict(X, theta, layout, state, BN_EPS, 20, work, out)
    assert (out.argmax(axis=1) == y).mean() > 0.95


def test_float32_kernels_do_not_upcast():
    """No float->double conversion in the float32 elementwise kernels: a stray Python float
    constant or a float64 library call would show up as an ``fpext`` in the LLVM IR."""
    from numba import njit, types

    arr2 = types.Array(types.float32, 2, "C")
    arr1 = types.Array(types.float32, 1, "C")
    cases = [
        (bp.bias_activation, (arr2, arr1, types.int64)),
        (bp.activation_backward, (arr2, types.int64, arr2, arr2)),
        (bp.sgd_step, (arr1, arr1, arr1, types.float64, types.float64, types.boolean)),
    ]
    for dispatcher, sig in cases:
        fresh = njit(sig, error_model="numpy")(dispatcher.py_func)  # uncached: IR available
        ir = fresh.inspect_llvm(sig)
        assert "fpext float" not in ir, dispatcher.__name__
        assert "float" in ir
