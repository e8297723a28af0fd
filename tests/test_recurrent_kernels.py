"""Tests of the BPTT engine (fastrbm._kernels.recurrent) against a NumPy oracle.

Every kernel call uses the same argument types (X 3-D C-contiguous, int64 lengths and
perm, one RecurrentNetwork, one Settings), so each dtype compiles one specialisation.
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

from fastrbm._kernels import recurrent as rk
from fastrbm._utils import blas_threads, numba_threads

from . import _reference_recurrent as ref

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-4, np.float64: 1e-10}
CELLS = ["tanh", "sigmoid", "relu", "lstm"]
THREADS = [1, 2]
# the shared shapes: 7 rows of 5 steps of 3 features, two layers, batches of 3 (7 = 3+3+1)
N, T, F, HIDDEN, BATCH = 7, 5, 3, [4, 3], 3


# --------------------------------------------------------------------------- helpers
def make_case(cell, output, dtype, seed=0, n=N, steps=T, hidden=HIDDEN, scale=0.7):
    rng = np.random.default_rng(seed)
    n_out = 3 if output == "softmax" else 2
    layout, n_params = rk.make_rnn_layout(F, hidden, cell, n_out, output)
    theta = (rng.standard_normal(n_params) * scale).astype(dtype)
    X = rng.standard_normal((n, steps, F)).astype(dtype)
    if output == "softmax":
        Y = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n)]
    else:
        Y = rng.standard_normal((n, n_out)).astype(dtype)
    lengths = rng.integers(1, steps + 1, n).astype(np.int64)
    lengths[0] = steps
    return layout, theta, X, Y, lengths


def oracle(theta, layout, cell, output):
    """The oracle network over a copy of theta (the kernels' theta stays untouched)."""
    theta = theta.copy()
    v = rk.param_views(theta, layout)
    cells = [cell] * len(v.W) if isinstance(cell, str) else cell
    return ref.RNN(v.W, v.U, v.b, cells, v.W_out, v.b_out, output), theta


def engine(layout, theta, batch_size, steps=T, optimizer=rk.OPT_SGD):
    """A RecurrentNetwork with NaN-filled workspace, gradient and (for SGD) zero
    velocity; Adam moments zero."""
    s1 = np.zeros_like(theta)
    s2 = np.zeros_like(theta) if optimizer == rk.OPT_ADAM else None
    net = rk.make_rnn_network(layout, theta, s1, s2, batch_size, steps)
    net.work[:] = np.nan
    net.grad[:] = np.nan
    return net


def flat(grads, layout, size, dtype):
    """Oracle gradient list (params() order) packed like theta."""
    out = np.full(size, np.nan, dtype)
    v = rk.param_views(out, layout)
    views = [a for l in range(len(v.W)) for a in (v.W[l], v.U[l], v.b[l])]
    for dst, src in zip(views + [v.W_out, v.b_out], grads):
        dst[...] = src
    return out


def close(actual, expected, rtol):
    scale = max(float(np.abs(expected).max()), 1e-30)
    assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


# --------------------------------------------------------------------------- layout
def test_layout_and_views():
    layout, n_params = rk.make_rnn_layout(3, [4, 2], ["lstm", "tanh"], 5, "identity")
    assert layout.dtype == np.int64 and layout.shape == (3, 6)
    assert n_params == (3 + 4 + 1) * 16 + (4 + 2 + 1) * 2 + (2 + 1) * 5
    assert list(layout[:, rk.CELL]) == [rk.CELL_LSTM, rk.CELL_TANH, rk.OUTPUT_CODES["identity"]]
    assert layout[2, rk.U_OFF] == -1
    theta = np.arange(n_params, dtype=np.float64)
    v = rk.param_views(theta, layout)
    assert [w.shape for w in v.W] == [(3, 16), (4, 2)]
    assert [u.shape for u in v.U] == [(4, 16), (2, 2)]
    assert [b.shape for b in v.b] == [(16,), (2,)]
    assert v.W_out.shape == (2, 5) and v.b_out.shape == (5,)
    pieces = v.W + v.U + v.b + [v.W_out, v.b_out]
    assert_array_equal(np.sort(np.concatenate([p.ravel() for p in pieces])), theta)
    net = rk.make_rnn_network(layout, theta, batch_size=4, n_steps=6)
    assert net.group_norms.shape == (3, 2) and net.step_norms.shape == (2, 6)
    assert net.work.size == rk.workspace_size(layout, 4, 6)
    for bad in [(3, [], "lstm"), (3, [4], "gru"), (0, [4], "lstm"), (3, [4, 2], ["lstm"])]:
        with pytest.raises(ValueError):
            rk.make_rnn_layout(*bad, 2, "softmax")
    with pytest.raises(ValueError):
        rk.make_rnn_layout(3, [4], "lstm", 2, "tanh")


# --------------------------------------------------------------------------- oracle
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_predict_matches_reference(cell, dtype):
    output = "softmax" if cell != "relu" else "identity"
    layout, theta, X, _, lengths = make_case(cell, output, dtype, seed=1)
    net, _ = oracle(theta, layout, cell, output)
    expected = ref.predict(X, lengths, net)
    out = np.full((N, layout[-1, rk.N_HIDDEN]), np.nan, dtype)
    work = np.full(rk.workspace_size(layout, BATCH, T), np.nan, dtype)
    rk.predict(X, lengths, theta, layout, BATCH, work, out)
    assert out.dtype == dtype
    close(out, expected, RTOL[dtype])


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_loss_grad_matches_reference(cell, dtype, threads):
    output = "softmax" if cell in ("lstm", "tanh") else "identity"
    layout, theta, X, Y, lengths = make_case(cell, output, dtype, seed=2)
    alpha = 0.3
    net, _ = oracle(theta, layout, cell, output)
    loss_ref, grads, steps_ref, groups_ref = ref.loss_grad(X, Y, lengths, net, alpha)
    eng = engine(layout, theta, N)
    with numba_threads(threads), blas_threads(threads):
        loss = rk.loss_grad(X, Y, lengths, eng, rk.make_settings(alpha=alpha))
    rtol = RTOL[dtype]
    assert_allclose(loss, loss_ref, rtol=rtol)
    assert eng.grad.dtype == dtype
    close(eng.grad, flat(grads, layout, theta.size, dtype), rtol)
    close(eng.step_norms, steps_ref, rtol)
    close(eng.group_norms, groups_ref, rtol)


def test_steps_after_lengths_get_no_gradient():
    """With every row shorter than n_steps, the steps after the longest row get exactly zero
    gradient, and loss and gradient equal those of the sequences cut to that length."""
    layout, theta, X, Y, lengths = make_case("lstm", "softmax", np.float64, seed=4)
    lengths = np.minimum(lengths, T - 2)
    eng = engine(layout, theta, N)
    settings = rk.make_settings(alpha=0.1)
    loss = rk.loss_grad(X, Y, lengths, eng, settings)
    grad, steps = eng.grad.copy(), eng.step_norms.copy()
    assert np.all(steps[:, :T - 2] > 0)
    assert_array_equal(steps[:, T - 2:], 0)
    short = np.ascontiguousarray(X[:, :T - 2])
    assert rk.loss_grad(short, Y, lengths, eng, settings) == loss
    assert_array_equal(eng.grad, grad)


def test_mixed_cells_and_single_layer():
    """Per-layer cells (LSTM under tanh) and a single layer with hidden size 1."""
    for cells, hidden in [(["lstm", "tanh"], HIDDEN), (["relu"], [1]), (["lstm"], [1])]:
        layout, theta, X, Y, lengths = make_case(cells, "softmax", np.float64, seed=3,
                                                 hidden=hidden)
        net, _ = oracle(theta, layout, cells, "softmax")
        loss_ref, grads, steps_ref, _ = ref.loss_grad(X, Y, lengths, net, 0.1)
        eng = engine(layout, theta, N)
        loss = rk.loss_grad(X, Y, lengths, eng, rk.make_settings(alpha=0.1))
        assert_allclose(loss, loss_ref, rtol=1e-10)
        close(eng.grad, flat(grads, layout, theta.size, np.float64), 1e-10)
        close(eng.step_norms, steps_ref, 1e-10)


EPOCH_CASES = [
    # cell, output, optimizer, max_norm, alpha
    ("lstm", "softmax", "adam", 0.0, 0.0),
    ("lstm", "identity", "sgd", 0.5, 0.2),
    ("tanh", "softmax", "sgd", 0.0, 0.1),
    ("sigmoid", "identity", "adam", 0.3, 0.0),
    ("relu", "softmax", "adam", 0.0, 0.1),
]


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", EPOCH_CASES)
def test_run_epoch_matches_reference(case, dtype, threads):
    cell, output, opt, max_norm, alpha = case
    layout, theta, X, Y, lengths = make_case(cell, output, dtype, seed=5)
    net, theta_ref = oracle(theta, layout, cell, output)
    lr = 0.05
    if opt == "adam":
        optimizer = AdamOptimizer(net.params(), learning_rate_init=lr)
        settings = rk.make_settings(alpha=alpha, optimizer=rk.OPT_ADAM, learning_rate=lr,
                                    max_norm=max_norm)
    else:
        optimizer = SGDOptimizer(net.params(), learning_rate_init=lr, momentum=0.9,
                                 nesterov=True)
        settings = rk.make_settings(alpha=alpha, optimizer=rk.OPT_SGD, learning_rate=lr,
                                    momentum=0.9, nesterov=True, max_norm=max_norm)
    eng = engine(layout, theta, BATCH, optimizer=settings.optimizer)
    rng = np.random.default_rng(6)
    t = 0
    for epoch in range(2):
        perm = rng.permutation(N).astype(np.int64)
        loss_ref, steps_ref, groups_ref = ref.run_epoch(X, Y, lengths, perm, BATCH, net,
                                                        alpha, optimizer, max_norm)
        with numba_threads(threads), blas_threads(threads):
            loss, t = rk.run_epoch(X, Y, lengths, perm, BATCH, eng, settings, t)
        assert t == 3 * (epoch + 1)
        rtol = 10 * RTOL[dtype]
        assert_allclose(loss, loss_ref, rtol=rtol)
        close(theta, theta_ref, rtol)
        close(eng.step_norms, steps_ref, rtol)
        close(eng.group_norms, groups_ref, rtol)


# --------------------------------------------------------------------------- gradients
def _numeric_grad(f, theta, h=1e-6):
    g = np.empty_like(theta)
    for k in range(theta.size):
        keep = theta[k]
        theta[k] = keep + h
        up = f()
        theta[k] = keep - h
        down = f()
        theta[k] = keep
        g[k] = (up - down) / (2 * h)
    return g


@pytest.mark.parametrize("cell", CELLS)
def test_gradient_finite_differences(cell):
    """float64 central differences of the loss with L2, with lengths < n_steps."""
    output = "softmax" if cell != "sigmoid" else "identity"
    layout, theta, X, Y, lengths = make_case(cell, output, np.float64, seed=7)
    assert lengths.min() < T
    eng = engine(layout, theta, N)
    settings = rk.make_settings(alpha=0.2)
    rk.loss_grad(X, Y, lengths, eng, settings)
    analytic = eng.grad.copy()
    numeric = _numeric_grad(lambda: rk.loss_grad(X, Y, lengths, eng, settings), theta)
    assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7 * np.abs(numeric).max())


def test_step_norms_are_hidden_state_gradients():
    """With full-length rows, the top layer's last step has no future: its step norm is
    ||dL/dh_last|| = ||D @ W_out^T|| with D the output delta of the mean loss."""
    layout, theta, X, Y, _ = make_case("lstm", "softmax", np.float64, seed=8)
    lengths = np.full(N, T, np.int64)
    eng = engine(layout, theta, N)
    rk.loss_grad(X, Y, lengths, eng, rk.make_settings())
    net, _ = oracle(theta, layout, "lstm", "softmax")
    z, _cache = ref.forward(X, lengths, net)
    _, _P, D = ref.output_loss(z, Y, "softmax")
    expected = np.linalg.norm(D / N @ net.W_out.T)
    assert_allclose(eng.step_norms[-1, T - 1], expected, rtol=1e-12)


def test_clipped_update_direction():
    """With clipping on, one SGD step (no momentum) of one full batch moves theta by
    -lr * g * c / ||g|| with g the finite-difference gradient (L2 included)."""
    layout, theta, X, Y, lengths = make_case("lstm", "identity", np.float64, seed=9)
    settings = rk.make_settings(alpha=0.1)
    eng = engine(layout, theta, N)
    numeric = _numeric_grad(lambda: rk.loss_grad(X, Y, lengths, eng, settings), theta)
    norm = np.linalg.norm(numeric)
    lr, c = 0.01, 0.25 * norm
    before = theta.copy()
    perm = np.arange(N, dtype=np.int64)
    eng = engine(layout, theta, N)
    settings = rk.make_settings(alpha=0.1, optimizer=rk.OPT_SGD, learning_rate=lr,
                                momentum=0.0, nesterov=False, max_norm=c)
    rk.run_epoch(X, Y, lengths, perm, N, eng, settings, 0)
    step = theta - before
    assert_allclose(step, -lr * numeric * (c / norm), rtol=1e-5,
                    atol=1e-7 * lr * c / norm * np.abs(numeric).max())
    assert_allclose(np.linalg.norm(eng.grad), c, rtol=1e-12)


# --------------------------------------------------------------------------- robustness
@pytest.mark.parametrize("dtype", DTYPES)
def test_deterministic_across_threads(dtype):
    """Bitwise the same epoch (parameters, moments, norms, loss) for Numba at 1 or 2 threads
    and BLAS at 1 or 2 threads, with products large enough for OpenBLAS to thread them
    (64 x 64 @ 64 x 256 per step) if it were allowed to."""
    results = []
    for nt in THREADS:
        for bt in THREADS:
            layout, theta, X, Y, lengths = make_case("lstm", "softmax", dtype, seed=10,
                                                     n=128, hidden=[64], scale=0.2)
            eng = engine(layout, theta, 64, optimizer=rk.OPT_ADAM)
            settings = rk.make_settings(alpha=0.1, optimizer=rk.OPT_ADAM,
                                        learning_rate=0.01, max_norm=1.0)
            perm = np.random.default_rng(0).permutation(128).astype(np.int64)
            with numba_threads(nt), blas_threads(bt):
                loss, _ = rk.run_epoch(X, Y, lengths, perm, 64, eng, settings, 0)
            results.append((loss, theta, eng.state_1, eng.state_2, eng.step_norms,
                            eng.group_norms))
    for other in results[1:]:
        assert other[0] == results[0][0]
        for a, b in zip(other[1:], results[0][1:]):
            assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(N, 1, [4, 3], 3), (N, T, [1, 1], 3), (N, T, HIDDEN, 2),
                                   (2, T, HIDDEN, 3), (N, T, HIDDEN, N)])
def test_no_writes_out_of_bounds(shape):
    """Workspace, gradient and output buffers embedded in larger NaN-guarded arrays: epochs
    and predictions for batch sizes not dividing n, one step, hidden size 1, one
    batch of all rows leave the guards untouched and the results finite."""
    n, steps, hidden, batch = shape
    for cell in ["lstm", "tanh"]:
        layout, theta, X, Y, lengths = make_case(cell, "softmax", np.float64, seed=11,
                                                 n=n, steps=steps, hidden=hidden)
        guard = 17
        size = rk.workspace_size(layout, batch, steps)
        work = np.full(size + 2 * guard, -7.0)
        grad = np.full(theta.size + 2 * guard, -7.0)
        eng = engine(layout, theta, batch, steps, optimizer=rk.OPT_ADAM)
        eng = eng._replace(work=work[guard:guard + size], grad=grad[guard:-guard])
        settings = rk.make_settings(optimizer=rk.OPT_ADAM, learning_rate=0.01)
        perm = np.random.default_rng(1).permutation(n).astype(np.int64)
        loss, t = rk.run_epoch(X, Y, lengths, perm, batch, eng, settings, 0)
        assert np.isfinite(loss) and t == -(-n // batch) and np.all(np.isfinite(theta))
        out = np.full((n + 2, 3), -7.0)
        rk.predict(X, lengths, theta, layout, batch, work[guard:guard + size], out[1:-1])
        assert np.all(np.isfinite(out[1:-1]))
        assert_allclose(out[1:-1].sum(axis=1), 1, rtol=1e-12)
        for a in (work, grad, out):
            assert_array_equal(a[:1], -7.0)
            assert_array_equal(a[-1:], -7.0)
        assert_array_equal(work[:guard], -7.0)
        assert_array_equal(work[-guard:], -7.0)


def test_bad_inputs_raise():
    layout, theta, X, Y, lengths = make_case("tanh", "softmax", np.float64)
    eng = engine(layout, theta, BATCH)
    settings = rk.make_settings()
    perm = np.arange(N, dtype=np.int64)
    bad = lengths.copy()
    bad[2] = T + 1
    with pytest.raises(ValueError, match="lengths"):
        rk.run_epoch(X, Y, bad, perm, BATCH, eng, settings, 0)
    with pytest.raises(ValueError, match="workspace"):
        rk.run_epoch(X, Y, lengths, perm, BATCH + 1, eng, settings, 0)
    with pytest.raises(ValueError, match="index"):
        rk.run_epoch(X, Y, lengths, perm + 1, BATCH, eng, settings, 0)
    with pytest.raises(ValueError, match="moments"):  # Adam on a net built for SGD
        rk.run_epoch(X, Y, lengths, perm, BATCH, eng, rk.make_settings(optimizer=rk.OPT_ADAM),
                     0)
    with pytest.raises(ValueError, match="rows or outputs"):
        rk.predict(X, lengths, theta, layout, BATCH, eng.work, np.empty((N - 1, 3)))
    with pytest.raises(ValueError, match="features"):
        rk.loss_grad(np.ascontiguousarray(X[:, :, :2]), Y, lengths, eng, settings)


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_reduces_loss(dtype):
    """A few Adam epochs fit a small sequence task (the sign of the sum of each row's
    valid first features) far better than chance."""
    rng = np.random.default_rng(12)
    n = 96
    X = rng.standard_normal((n, T, F)).astype(dtype)
    lengths = rng.integers(2, T + 1, n).astype(np.int64)
    s = np.array([X[i, :lengths[i], 0].sum() for i in range(n)])
    Y = np.eye(3, dtype=dtype)[(s > 0).astype(int)]
    layout, n_params = rk.make_rnn_layout(F, HIDDEN, "lstm", 3, "softmax")
    theta = (rng.standard_normal(n_params) * 0.3).astype(dtype)
    eng = engine(layout, theta, 16, optimizer=rk.OPT_ADAM)
    settings = rk.make_settings(optimizer=rk.OPT_ADAM, learning_rate=0.03)
    t, losses = 0, []
    for _ in range(40):
        loss, t = rk.run_epoch(X, Y, lengths, rng.permutation(n).astype(np.int64), 16, eng,
                               settings, t)
        losses.append(loss)
    assert losses[-1] < 0.5 * losses[0]
    out = np.empty((n, 3), dtype)
    rk.predict(X, lengths, theta, layout, 16, eng.work, out)
    assert (out.argmax(axis=1) == Y.argmax(axis=1)).mean() > 0.85


def test_one_compiled_specialisation_per_dtype():
    """precompile() compiles what the kernels use: afterwards run_epoch, loss_grad and
    predict (SGD and Adam networks, predict's own) add no specialisation of the engine."""
    for dtype in DTYPES:
        rk.precompile(dtype)
    assert len(rk._engine.signatures) == 2
    for dtype in DTYPES:
        layout, theta, X, Y, lengths = make_case("tanh", "softmax", dtype)
        for opt in (rk.OPT_SGD, rk.OPT_ADAM):
            eng = engine(layout, theta, N, optimizer=opt)
            settings = rk.make_settings(optimizer=opt, learning_rate=0.01, max_norm=1.0)
            rk.run_epoch(X, Y, lengths, np.arange(N), BATCH, eng, settings, 0)
            rk.loss_grad(X, Y, lengths, eng, settings)
            rk.predict(X, lengths, theta, layout, BATCH, eng.work, np.empty((N, 3), dtype))
    assert len(rk._engine.signatures) == 2
