"""Recurrent backprop engine: backpropagation through time as Numba kernels.

Estimator-agnostic, as :mod:`fastrbm._kernels.backprop` (whose GEMM routes, output loss,
optimizer steps, clipping and :class:`~fastrbm._kernels.backprop.Settings` it reuses):
kernels take arrays, one :class:`RecurrentNetwork` and one ``Settings``, and write into
buffers allocated once by :func:`make_rnn_network`. float32 and float64 share one
implementation.

Model
-----
A stack of recurrent layers, then a dense output layer on the hidden state of the top
layer at the last valid step of each sequence. Layer ``l`` reads the input sequence
(``l = 0``) or the hidden sequence of layer ``l - 1``. Cells, with ``x_t`` the layer's input
and ``h_{-1} = c_{-1} = 0``::

    "tanh", "sigmoid", "relu":  h_t = act(x_t W + h_{t-1} U + b)
    "lstm":  z_t = x_t W + h_{t-1} U + b = [z_i | z_f | z_g | z_o]  (gate order i, f, g, o,
             each n_hidden columns wide: PyTorch's order)
             i = sigmoid(z_i), f = sigmoid(z_f), g = tanh(z_g), o = sigmoid(z_o)
             c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)

The forget-gate bias (often initialised to 1) is the caller's choice: the kernels treat all
of ``b`` alike. The output layer is ``P = out(h_last W_out + b_out)`` with the losses of
:func:`~fastrbm._kernels.backprop.output_loss` ("softmax": categorical cross-entropy,
"identity": ``0.5 * sum((p - y)**2)``, "logistic": binary cross-entropy), averaged over the
rows, plus the L2 term ``0.5 * alpha * (sum of squared W, U and W_out) / n_rows``
(scikit-learn's MLP convention: weights only, not biases).

Variable lengths: ``lengths[i]`` (``1 <= lengths[i] <= n_steps``) is the number of valid
steps of row i. The output reads row i's top hidden state at step ``lengths[i] - 1`` and
the backward pass injects the output gradient there; every step after it gets exactly zero
gradient (it cannot influence the loss). Inputs after a row's length are still read (they
must be finite, any finite value gives the same results); a mini-batch runs only to its
longest row.

Parameter layout
----------------
One flat vector ``theta`` (gradients and optimizer moments alike). ``layout`` (int64, from
:func:`make_rnn_layout`) has one row per recurrent layer and a last row for the output
layer, with columns ``N_IN, N_HIDDEN, CELL, W_OFF, U_OFF, B_OFF``; ``G = 4`` for LSTM, else
1::

    W_l = theta[W_OFF : W_OFF + n_in*G*n_hidden].reshape(n_in, G*n_hidden)
    U_l = theta[U_OFF : U_OFF + n_hidden*G*n_hidden].reshape(n_hidden, G*n_hidden)
    b_l = theta[B_OFF : B_OFF + G*n_hidden]
    output row: N_IN = top n_hidden, N_HIDDEN = n_outputs, CELL = ACT_SOFTMAX /
    ACT_IDENTITY / ACT_LOGISTIC, U_OFF = -1

(``W_l[:, k*n_hidden:(k+1)*n_hidden]`` is gate k's, the transpose of PyTorch's
``weight_ih_l[k*n_hidden:(k+1)*n_hidden]``; PyTorch's two biases sum to ``b_l``.)

Usage::

    layout, n_params = make_rnn_layout(n_features, [128], "lstm", n_classes, "softmax")
    theta = ...                                    # initialise via param_views(theta, layout)
    net = make_rnn_network(layout, theta, np.zeros_like(theta), np.zeros_like(theta),
                           batch_size=64, n_steps=X.shape[1])
    settings = make_settings(alpha=1e-4, optimizer=OPT_ADAM, learning_rate=1e-3)
    loss, t = run_epoch(X, Y, lengths, rng.permutation(n), 64, net, settings, t)
    predict(X, lengths, theta, layout, 64, work, out)

Computation
-----------
Mini-batch rows are gathered time-major into the workspace, so a layer's whole input
sequence is one ``(n_steps*batch, n_in)`` matrix: its input projection is one GEMM, then
each step adds one recurrent GEMM ``h_{t-1} @ U``, then bias, gates and state update row by
row while the step is in cache. Backward, each step is one GEMM ``dZ_{t+1} @ U^T`` and one
fused pass (the pre-activation gradients overwrite the stored gates in place); the weight
gradients are then GEMMs over the stacked steps (``dW = X^T dZ``, ``dU = H_{:-1}^T dZ_{1:}``,
the gradient into the layer below ``dZ W^T``), the bias gradients column sums.

Monitoring: ``net.step_norms[l, t]`` is the Frobenius norm of the gradient of the mean loss
with respect to layer l's whole (batch, n_hidden) hidden state at step t (through the
output, the layer above, h_{t+1} and, for LSTM, c), and ``net.group_norms[l] =
(||dL/dW_l||, ||dL/dU_l||)``, last row ``(||dL/dW_out||, 0)`` (L2 term included);
:func:`run_epoch` leaves their means over the epoch's mini-batches, before clipping.

Notes
-----
* Serial: every product is one single-threaded BLAS call to the ILP64 OpenBLAS that
  backprop's ``_gemm_ilp64`` finds; the three kernels hold BLAS at one thread themselves
  (``fastrbm._utils.blas_threads(1)``, about 10-30 us per call), so results are bitwise
  the same whatever the thread settings (OpenBLAS's two-thread products round
  differently: an LSTM-128 epoch's parameters differed). No parallel build: on the shared
  2-core test machine a second thread was not measurably available, and OpenBLAS's own
  two threads made the per-step products slower (64x128 @ 128x512: 69 us on one thread,
  92 us on two).
* Where the time goes (py-spy --native, float32, Fashion-MNIST rows, 128 units, batch
  64): LSTM 81% in sgemm (OpenBLAS picks its Haswell/AVX2 kernels on this AMD EPYC; 9% of
  the time is its packing of U at every step), 19% in the compiled elementwise work; tanh
  88% / 12%. Epochs run at 1.06-1.2x the time of their GEMMs alone. PyTorch's LSTM
  (oneDNN, AVX-512) runs an epoch in less than that GEMM floor, so at one thread it stays
  ahead of this engine for LSTMs; the plain RNN cells are 2-4x faster than PyTorch's.
* On this AVX-512 AMD EPYC, OpenBLAS 0.3.30/0.3.31 runs its Haswell (AVX2) kernels;
  ``OPENBLAS_CORETYPE=SkylakeX`` in the environment (read when NumPy loads its OpenBLAS)
  made the per-step product 64x128 @ 128x512 take 42 instead of 69-82 us, and the LSTM
  epoch 1.15-1.47x faster than PyTorch's (bench/rnn_compare.py, one thread).
* Every product goes to the ILP64 OpenBLAS (NumPy's), none to SciPy's: at the per-step
  shapes it was the faster (32x256 @ 256x64: 10.0 against 13.1 us; 64x512 @ 512x128:
  71 against 83 us).
* One compiled entry (``_engine``) serves :func:`run_epoch`, :func:`loss_grad` and
  :func:`predict`: Numba generates machine code for the whole call tree of each compiled
  entry point, so three entries compiled three times (13.5 s per dtype; one entry: 9.5 s
  wall, 10-11 s of CPU per dtype cold, on the loaded test machine). Pass Python floats and ints, C-contiguous arrays (one
  specialisation per dtype). Numba keys its cache by this file only; the module drops
  its cache files when ``backprop.py``, whose helpers it compiles in, has changed
  (:func:`fastrbm._kernels._cache.drop_stale_cache`).
"""
from collections import namedtuple

import numpy as np
from numba import njit
from numba.extending import register_jitable

from .._utils import blas_threads
from . import backprop as _backprop
from ._cache import drop_stale_cache
from .backprop import (
    _N,
    _T,
    ACT_IDENTITY,
    ACT_LOGISTIC,
    ACT_RELU,
    ACT_SOFTMAX,
    ACT_TANH,
    OPT_ADAM,
    OPT_SGD,
    Settings,
    _activation_cols,
    _add_bias_cols,
    _colsum,
    _exp_nonpos,
    _expm1_nonpos,
    _gemm_ilp64,
    _optimizer_step,
    bias_activation,
    clip_by_global_norm,
    make_settings,
    output_loss,
)

# this module compiles backprop's helpers into its own cached functions
drop_stale_cache(__file__, [_backprop.__file__])

__all__ = [
    "B_OFF",
    "CELL",
    "CELL_CODES",
    "CELL_LSTM",
    "CELL_RELU",
    "CELL_SIGMOID",
    "CELL_TANH",
    "N_HIDDEN",
    "N_IN",
    "OPT_ADAM",
    "OPT_SGD",
    "OUTPUT_CODES",
    "U_OFF",
    "W_OFF",
    "RecurrentNetwork",
    "RecurrentParams",
    "Settings",
    "loss_grad",
    "make_rnn_layout",
    "make_rnn_network",
    "make_settings",
    "n_gates",
    "param_views",
    "precompile",
    "predict",
    "run_epoch",
    "workspace_size",
]

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}

# the simple cells share backprop's activation codes, so _activation_cols applies them
CELL_SIGMOID, CELL_TANH, CELL_RELU = ACT_LOGISTIC, ACT_TANH, ACT_RELU
CELL_LSTM = 16  # outside the activation codes: never one of them
CELL_CODES = {"sigmoid": CELL_SIGMOID, "tanh": CELL_TANH, "relu": CELL_RELU,
              "lstm": CELL_LSTM}
OUTPUT_CODES = {"softmax": ACT_SOFTMAX, "identity": ACT_IDENTITY, "logistic": ACT_LOGISTIC}

# what the compiled engine does (see _engine)
_TRAIN, _GRAD, _PREDICT = 0, 1, 2

# columns of the layout table
N_IN, N_HIDDEN, CELL, W_OFF, U_OFF, B_OFF = range(6)
_LAYOUT_COLS = 6
# private workspace table: per recurrent layer l, entries 4*l + (Z, H, C, TC); then globals
_OZ, _OH, _OC, _OTC = range(4)
_GX, _GR, _GDH, _GDC, _GZERO, _GEXT, _GHL, _GZO, _GD, _GDHO, _GY, _GTOTAL = range(12)


# ----------------------------------------------------------------------------------------
# Layout helpers (plain Python, run once per fit)
# ----------------------------------------------------------------------------------------
def n_gates(cell_code):
    """Gate blocks of a cell: 4 for LSTM, else 1."""
    return 4 if int(cell_code) == CELL_LSTM else 1


def make_rnn_layout(n_features, hidden_sizes, cell="lstm", n_outputs=1, output="softmax"):
    """Build the parameter layout of a recurrent stack with a dense output layer.

    Parameters
    ----------
    n_features : int
        Features per step.
    hidden_sizes : sequence of int
        Units of each recurrent layer (at least one).
    cell : {"lstm", "tanh", "sigmoid", "relu"} or sequence of them
        The cell of every layer, or of each layer.
    n_outputs : int
    output : {"softmax", "identity", "logistic"}
        Output activation; it selects the loss.

    Returns
    -------
    layout : ndarray of shape (n_layers + 1, 6), int64
        Columns ``N_IN, N_HIDDEN, CELL, W_OFF, U_OFF, B_OFF``; the last row is the output
        layer (``CELL`` = its activation code, ``U_OFF = -1``).
    n_params : int
    """
    sizes = [int(s) for s in hidden_sizes]
    if not sizes or min(sizes) < 1 or int(n_features) < 1 or int(n_outputs) < 1:
        raise ValueError(f"sizes must be positive, got {n_features}, {sizes}, {n_outputs}")
    cells = [cell] * len(sizes) if isinstance(cell, str) else list(cell)
    if len(cells) != len(sizes) or any(c not in CELL_CODES for c in cells):
        raise ValueError(f"cell must be one of {sorted(CELL_CODES)} (or one per layer), "
                         f"got {cell!r}")
    if output not in OUTPUT_CODES:
        raise ValueError(f"unknown output {output!r}")
    L = len(sizes)
    layout = np.full((L + 1, _LAYOUT_COLS), -1, dtype=np.int64)
    pos, n_in = 0, int(n_features)
    for l, (h, c) in enumerate(zip(sizes, cells)):
        gh = n_gates(CELL_CODES[c]) * h
        layout[l, :3] = n_in, h, CELL_CODES[c]
        layout[l, W_OFF] = pos
        layout[l, U_OFF] = pos + n_in * gh
        layout[l, B_OFF] = pos + n_in * gh + h * gh
        pos += (n_in + h + 1) * gh
        n_in = h
    layout[L, :3] = n_in, int(n_outputs), OUTPUT_CODES[output]
    layout[L, W_OFF], layout[L, B_OFF] = pos, pos + n_in * int(n_outputs)
    return layout, pos + (n_in + 1) * int(n_outputs)


RecurrentParams = namedtuple("RecurrentParams", ["W", "U", "b", "W_out", "b_out"])
RecurrentParams.__doc__ = """Views into a flat vector: ``W``, ``U``, ``b`` lists with one
entry per recurrent layer, shapes (n_in, G*n_hidden), (n_hidden, G*n_hidden), (G*n_hidden,);
``W_out`` (n_hidden_top, n_outputs), ``b_out`` (n_outputs,)."""


def param_views(theta, layout):
    """Named views of a flat parameter (or gradient, or moment) vector
    (:class:`RecurrentParams`)."""
    W, U, b = [], [], []
    for row in layout[:-1]:
        n_in, h = int(row[N_IN]), int(row[N_HIDDEN])
        gh = n_gates(row[CELL]) * h
        w, u, bo = int(row[W_OFF]), int(row[U_OFF]), int(row[B_OFF])
        W.append(theta[w:w + n_in * gh].reshape(n_in, gh))
        U.append(theta[u:u + h * gh].reshape(h, gh))
        b.append(theta[bo:bo + gh])
    n_in, n_out = int(layout[-1, N_IN]), int(layout[-1, N_HIDDEN])
    w, bo = int(layout[-1, W_OFF]), int(layout[-1, B_OFF])
    return RecurrentParams(W, U, b, theta[w:w + n_in * n_out].reshape(n_in, n_out),
                           theta[bo:bo + n_out])


def workspace_size(layout, batch_size, n_steps):
    """Elements of the ``work`` vector for mini-batches of up to `batch_size` rows and
    sequences of up to `n_steps` steps (the same buffer serves every kernel)."""
    return int(_work_offsets(layout, int(batch_size), int(n_steps))[-1])


RecurrentNetwork = namedtuple("RecurrentNetwork", ["layout", "theta", "state_1", "state_2",
                                                   "grad", "work", "group_norms",
                                                   "step_norms"])
RecurrentNetwork.__doc__ = """The arrays of one recurrent network, passed to the kernels as
one argument.

layout : the int64 table of :func:`make_rnn_layout`; theta : flat parameters; state_1,
state_2 : optimizer moments (Adam: first and second; SGD: velocity and an empty array;
empty where no step is taken); grad : gradient (size of theta); work : scratch
(:func:`workspace_size`); group_norms : float64 (n_layers + 1, 2), per layer
(||dL/dW||, ||dL/dU||), last row (||dL/dW_out||, 0); step_norms : float64
(n_layers, n_steps), ||dL/dh_t|| of every layer and step. The last two are written.
"""


def make_rnn_network(layout, theta, state_1=None, state_2=None, batch_size=1, n_steps=1):
    """A :class:`RecurrentNetwork` over the given arrays, with gradient, workspace (for
    mini-batches of up to `batch_size` rows of up to `n_steps` steps) and norm buffers
    allocated once."""
    empty = theta[:0]
    L = layout.shape[0] - 1
    return RecurrentNetwork(
        layout, theta, empty if state_1 is None else state_1,
        empty if state_2 is None else state_2, np.zeros_like(theta),
        np.zeros(workspace_size(layout, batch_size, n_steps), theta.dtype),
        np.zeros((L + 1, 2)), np.zeros((L, int(n_steps))))


# ----------------------------------------------------------------------------------------
# Workspace
# ----------------------------------------------------------------------------------------
@njit(**_JIT)
def _work_offsets(layout, nb, T):
    """Private packing of the workspace for `nb` rows of `T` steps: 4 entries per layer
    (Z, H, C, TC; -1 where unused), then the globals (_G*), the last the total size."""
    L = layout.shape[0] - 1
    offs = np.full(4 * L + _GTOTAL + 1, -1, dtype=np.int64)
    pos = 0
    h_max, gh_max, ext = 1, 1, 0
    for l in range(L):
        h = layout[l, N_HIDDEN]
        gh = h * (4 if layout[l, CELL] == CELL_LSTM else 1)
        h_max, gh_max = max(h_max, h), max(gh_max, gh)
        if l > 0:
            ext = max(ext, layout[l, N_IN])
        offs[4 * l + _OZ] = pos
        pos += T * nb * gh
        offs[4 * l + _OH] = pos
        pos += T * nb * h
        if layout[l, CELL] == CELL_LSTM:
            offs[4 * l + _OC] = pos
            offs[4 * l + _OTC] = pos + T * nb * h
            pos += 2 * T * nb * h
    g = 4 * L
    h_top, n_out = layout[L, N_IN], layout[L, N_HIDDEN]
    sizes = (T * nb * layout[0, N_IN], nb * gh_max, nb * h_max, nb * h_max, h_max,
             T * nb * ext, nb * h_top, nb * n_out, nb * n_out, nb * h_top, nb * n_out)
    for k in range(_GTOTAL):
        offs[g + k] = pos
        pos += sizes[k]
    offs[g + _GTOTAL] = pos
    return offs


@njit(**_JIT)
def _gather(X, lengths, perm, start, nb, Xt, lb):
    """Rows ``perm[start:start+nb]`` of X into the time-major ``Xt`` (T, nb, n_features)
    and their lengths into ``lb``; returns the longest length (the steps to run)."""
    n, T, F = X.shape
    Tb = 0
    for i in range(nb):
        r = perm[start + i]
        if r < 0 or r >= n:
            raise ValueError("row index out of range")
        if lengths[r] < 1 or lengths[r] > T:
            raise ValueError("lengths must lie in [1, n_steps]")
        lb[i] = lengths[r]
        Tb = max(Tb, lengths[r])
    for i in range(nb):
        r = perm[start + i]
        for t in range(Tb):
            src, dst = X[r, t], Xt[t, i]
            for k in range(F):
                dst[k] = src[k]
    return Tb


@njit(**_JIT)
def _validate(X, Y, lengths, net, settings, rows, mode):
    """Shapes and sizes the engine relies on (it reads and writes without bounds checks):
    a mismatch raises instead of touching memory outside the arrays."""
    layout = net.layout
    L = layout.shape[0] - 1
    n, T = X.shape[0], X.shape[1]
    if X.shape[2] != layout[0, N_IN]:
        raise ValueError("X has the wrong number of features")
    if Y.shape[0] != n or Y.shape[1] != layout[L, N_HIDDEN] or lengths.size != n:
        raise ValueError("X, Y (or out) and lengths disagree in rows or outputs")
    if net.work.size < _work_offsets(layout, rows, T)[-1]:
        raise ValueError("workspace too small for this batch size and number of steps")
    if net.theta.size != layout[L, B_OFF] + layout[L, N_HIDDEN]:
        raise ValueError("theta does not match the layout")
    if mode == _PREDICT:
        return
    if net.grad.size != net.theta.size:
        raise ValueError("grad does not match theta")
    if net.step_norms.shape[0] < L or net.step_norms.shape[1] < T or \
            net.group_norms.shape[0] < L + 1 or net.group_norms.shape[1] < 2:
        raise ValueError("norm buffers too small for this network and number of steps")
    if mode == _TRAIN and (net.state_1.size != net.theta.size or (
            settings.optimizer == OPT_ADAM and net.state_2.size != net.theta.size)):
        raise ValueError("optimizer moments do not match theta")


# ----------------------------------------------------------------------------------------
# Scalar gates (vectorisable: backprop's exp / expm1, no libm calls)
# ----------------------------------------------------------------------------------------
@register_jitable
def _sigmoid(v, zero, one):
    e = _exp_nonpos(-abs(v))
    return (one if v >= zero else e) / (one + e)


@register_jitable
def _tanh(v, zero, two):
    em = _expm1_nonpos(-two * abs(v))
    t = (zero - em) / (two + em)
    return t if v >= zero else -t


# The LSTM's elementwise work, row by row, in loops over at most four arrays each: one
# loop over all of a row's arrays (gates at offsets k, H+k, ... of one array, the states in
# others, all views of one workspace) did not vectorise (LLVM cannot prove them apart
# without more runtime checks than it allows): 7.7 against 3.2 ms per adding-problem
# mini-batch. The four gates take one loop over the row, sigmoid and tanh from one expm1
# (a per-column factor 1 or 2, then a select): 2.3 against 3.5 ns per unit and step with
# a loop per gate (float32, 32 rows x 64 units; per-loop overhead on short rows).
@register_jitable
def _lstm_forward_row(z, r, b, a, cp, c, tc, h, zero, one, two):
    """One row of an LSTM step: ``z`` (4H) holds x_t W on entry and the gates i, f, g, o
    on exit; ``r`` = h_{t-1} U, ``a`` is 2 on the g block and 1 elsewhere; writes c_t,
    tanh(c_t) and h_t. With ``e = expm1(-a|v|)``: ``sigmoid(v) = 1/(2+e)`` (v >= 0) or
    ``(1+e)/(2+e)``, ``tanh(v) = -e/(2+e)`` (v >= 0) or ``e/(2+e)``: the sigmoid gates
    are accurate to an absolute (not relative) rounding error in their far negative
    tail, tanh is relatively accurate near 0."""
    H = c.size
    for k in range(z.size):
        v = z[k] + r[k] + b[k]
        e = _expm1_nonpos(-a[k] * abs(v))
        d = two + e
        sg = (one if v >= zero else one + e) / d
        th = (zero - e) / d
        th = th if v >= zero else -th
        z[k] = th if a[k] > one else sg
    zi, zf, zg, zo = z[:H], z[H:2 * H], z[2 * H:3 * H], z[3 * H:]
    for k in range(H):
        c[k] = zf[k] * cp[k] + zi[k] * zg[k]
    for k in range(H):
        tc[k] = _tanh(c[k], zero, two)
    for k in range(H):
        h[k] = zo[k] * tc[k]


@register_jitable
def _lstm_backward_row(d, dc, z, tc, cp, one):
    """One row of an LSTM step backward: ``d`` = dL/dh_t, ``dc`` = dL/dc_t through c_{t+1}
    on entry and dL/dc_{t-1} through c_t on exit; the gates in ``z`` are replaced by the
    gradients of their pre-activations."""
    H = d.size
    zi, zf, zg, zo = z[:H], z[H:2 * H], z[2 * H:3 * H], z[3 * H:]
    for k in range(H):  # dc_t in full
        th = tc[k]
        dc[k] += d[k] * zo[k] * (one - th * th)
    for k in range(H):
        o = zo[k]
        zo[k] = d[k] * tc[k] * (o * (one - o))
    for k in range(H):
        gi, gg = zi[k], zg[k]
        zi[k] = dc[k] * gg * (gi * (one - gi))
        zg[k] = dc[k] * gi * (one - gg * gg)
    for k in range(H):
        f = zf[k]
        zf[k] = dc[k] * cp[k] * (f * (one - f))
        dc[k] *= f


# ----------------------------------------------------------------------------------------
# Forward
# ----------------------------------------------------------------------------------------
@njit(**_JIT)
def _layer_forward(Xin, theta, layout, l, work, offs, nb, Tb):
    """Recurrent layer l over the input sequence Xin (Tb, nb, n_in); its hidden sequence
    (and gates, cell states) stay in the workspace."""
    T_ = work.dtype.type
    zero, one, two = T_(0.0), T_(1.0), T_(2.0)
    n_in, H, cell = layout[l, N_IN], layout[l, N_HIDDEN], layout[l, CELL]
    GH = H * (4 if cell == CELL_LSTM else 1)
    w, u, bo = layout[l, W_OFF], layout[l, U_OFF], layout[l, B_OFF]
    W = theta[w:w + n_in * GH].reshape((n_in, GH))
    U = theta[u:u + H * GH].reshape((H, GH))
    b = theta[bo:bo + GH]
    z0, h0 = offs[4 * l + _OZ], offs[4 * l + _OH]
    Z = work[z0:z0 + Tb * nb * GH].reshape((Tb, nb, GH))
    Hs = work[h0:h0 + Tb * nb * H].reshape((Tb, nb, H))
    g = 4 * (layout.shape[0] - 1)
    R = work[offs[g + _GR]:offs[g + _GR] + nb * GH].reshape((nb, GH))
    zrow = work[offs[g + _GZERO]:offs[g + _GZERO] + H]
    zrow[:] = zero
    # all steps' input projections: one GEMM
    _gemm_ilp64(_N, _N, Tb * nb, GH, n_in, Xin, n_in, W, GH, Z, GH)
    C, TC = Hs, Hs  # cell states and their tanh (LSTM)
    gate_scale = b[:0]
    if cell == CELL_LSTM:
        gate_scale = np.ones(GH, work.dtype)
        gate_scale[2 * H:3 * H] = two
        c0, tc0 = offs[4 * l + _OC], offs[4 * l + _OTC]
        C = work[c0:c0 + Tb * nb * H].reshape((Tb, nb, H))
        TC = work[tc0:tc0 + Tb * nb * H].reshape((Tb, nb, H))
    for t in range(Tb):
        if t > 0:
            _gemm_ilp64(_N, _N, nb, GH, H, Hs[t - 1], H, U, GH, R, GH)
        else:
            R[:] = zero
        Zt, Ht = Z[t], Hs[t]
        if cell == CELL_LSTM:
            for i in range(nb):
                _lstm_forward_row(Zt[i], R[i], b, gate_scale, C[t - 1, i] if t > 0 else zrow,
                                  C[t, i], TC[t, i], Ht[i], zero, one, two)
        else:
            for i in range(nb):
                z, r, h = Zt[i], R[i], Ht[i]
                for k in range(H):
                    h[k] = z[k] + r[k] + b[k]
            _activation_cols(Ht, cell, 0, H)


@njit(**_JIT)
def _forward(Xt, lb, theta, layout, work, offs, nb, Tb):
    """Every layer, then the output layer's pre-activation (bias added) on each row's last
    valid top hidden state, gathered into the workspace; returns that (nb, n_out) view."""
    L = layout.shape[0] - 1
    g = 4 * L
    Xin = Xt
    for l in range(L):
        _layer_forward(Xin, theta, layout, l, work, offs, nb, Tb)
        h0, H = offs[4 * l + _OH], layout[l, N_HIDDEN]
        Xin = work[h0:h0 + Tb * nb * H].reshape((Tb, nb, H))
    H, n_out = layout[L, N_IN], layout[L, N_HIDDEN]
    hl = work[offs[g + _GHL]:offs[g + _GHL] + nb * H].reshape((nb, H))
    for i in range(nb):
        src, dst = Xin[lb[i] - 1, i], hl[i]
        for k in range(H):
            dst[k] = src[k]
    w, bo = layout[L, W_OFF], layout[L, B_OFF]
    Zo = work[offs[g + _GZO]:offs[g + _GZO] + nb * n_out].reshape((nb, n_out))
    _gemm_ilp64(_N, _N, nb, n_out, H, hl, H, theta[w:w + H * n_out], n_out, Zo, n_out)
    _add_bias_cols(Zo, theta[bo:bo + n_out], 0, n_out)
    return Zo


# ----------------------------------------------------------------------------------------
# Backward
# ----------------------------------------------------------------------------------------
@njit(**_JIT)
def _weight_grad(A, D, k, W, gW, a):
    """``gW = A[:k].T @ D[:k] + a * W`` (A (k, m) and D (k, n) stacked steps, k may be 0);
    returns (sum of gW**2, sum of W**2) in float64."""
    m, n = gW.shape
    if k > 0:
        _gemm_ilp64(_T, _N, m, n, k, A, m, D, n, gW, n)
    else:
        gW[:] = 0
    acc_g, acc_w = np.zeros(n), np.zeros(n)  # per-column sums: vectorise, fixed order
    aT = gW.dtype.type(a)
    for i in range(m):
        g, w = gW[i], W[i]
        for j in range(n):
            v = g[j] + aT * w[j]
            g[j] = v
            acc_g[j] += np.float64(v) * np.float64(v)
            acc_w[j] += np.float64(w[j]) * np.float64(w[j])
    return acc_g.sum(), acc_w.sum()


@njit(**_JIT)
def _layer_backward(Xin, lb, net, l, offs, nb, Tb, a):
    """BPTT through layer l. On entry the workspace holds the layer's forward pass and the
    gradient arriving from above (the layer above's input gradient, or for the top layer
    the output's, injected at each row's last step). Writes the layer's gradients, adds
    the per-step ||dL/dh_t|| to ``net.step_norms[l]`` and the group norms to
    ``net.group_norms[l]``, leaves the gradient w.r.t. Xin in the EXT buffer (l > 0) and
    returns the sum of the squared weights (for the L2 term)."""
    layout, theta, grad, work = net.layout, net.theta, net.grad, net.work
    T_ = work.dtype.type
    zero, one = T_(0.0), T_(1.0)
    L = layout.shape[0] - 1
    g = 4 * L
    n_in, H, cell = layout[l, N_IN], layout[l, N_HIDDEN], layout[l, CELL]
    lstm = cell == CELL_LSTM
    GH = H * (4 if lstm else 1)
    w, u, bo = layout[l, W_OFF], layout[l, U_OFF], layout[l, B_OFF]
    W = theta[w:w + n_in * GH].reshape((n_in, GH))
    U = theta[u:u + H * GH].reshape((H, GH))
    z0, h0 = offs[4 * l + _OZ], offs[4 * l + _OH]
    Z = work[z0:z0 + Tb * nb * GH].reshape((Tb, nb, GH))
    Hs = work[h0:h0 + Tb * nb * H].reshape((Tb, nb, H))
    DH = work[offs[g + _GDH]:offs[g + _GDH] + nb * H].reshape((nb, H))
    DC = work[offs[g + _GDC]:offs[g + _GDC] + nb * H].reshape((nb, H))
    zrow = work[offs[g + _GZERO]:offs[g + _GZERO] + H]
    zrow[:] = zero
    DC[:] = zero
    top = l == L - 1
    # the gradient from above: the output's (top layer), else the layer above's (EXT)
    e, te, tn = offs[g + _GEXT], 0 if top else Tb, nb if top else 0
    EXT = work[e:e + te * nb * H].reshape((te, nb, H))
    DHO = work[offs[g + _GDHO]:offs[g + _GDHO] + tn * H].reshape((tn, H))
    C, TC = Hs, Hs
    if lstm:
        c0, tc0 = offs[4 * l + _OC], offs[4 * l + _OTC]
        C = work[c0:c0 + Tb * nb * H].reshape((Tb, nb, H))
        TC = work[tc0:tc0 + Tb * nb * H].reshape((Tb, nb, H))
    acc = np.zeros(H)
    norms = net.step_norms[l]
    for t in range(Tb - 1, -1, -1):
        # dh_t = (dz_{t+1} @ U^T) + the gradient from above at step t
        if t < Tb - 1:
            _gemm_ilp64(_N, _T, nb, H, GH, Z[t + 1], GH, U, GH, DH, H)
        else:
            DH[:] = zero
        if top:
            for i in range(nb):
                if lb[i] - 1 == t:
                    d, s = DH[i], DHO[i]
                    for k in range(H):
                        d[k] += s[k]
        else:
            for i in range(nb):
                d, s = DH[i], EXT[t, i]
                for k in range(H):
                    d[k] += s[k]
        acc[:] = 0.0
        for i in range(nb):
            d = DH[i]
            for k in range(H):
                acc[k] += np.float64(d[k]) * np.float64(d[k])
        norms[t] += np.sqrt(acc.sum())
        Zt = Z[t]
        if lstm:
            for i in range(nb):
                _lstm_backward_row(DH[i], DC[i], Zt[i], TC[t, i],
                                   C[t - 1, i] if t > 0 else zrow, one)
        else:
            Ht = Hs[t]
            for i in range(nb):
                d, z, h = DH[i], Zt[i], Ht[i]
                if cell == CELL_TANH:
                    for k in range(H):
                        z[k] = d[k] * (one - h[k] * h[k])
                elif cell == CELL_SIGMOID:
                    for k in range(H):
                        z[k] = d[k] * (h[k] * (one - h[k]))
                else:
                    for k in range(H):
                        z[k] = d[k] if h[k] > zero else zero
    gW = grad[w:w + n_in * GH].reshape((n_in, GH))
    gU = grad[u:u + H * GH].reshape((H, GH))
    nr = Tb * nb
    sq_gw, sq_w = _weight_grad(Xin.reshape((nr, n_in)), Z.reshape((nr, GH)), nr, W, gW, a)
    dZ1 = work[z0 + nb * GH:z0 + nr * GH].reshape((nr - nb, GH))  # steps 1..Tb-1
    sq_gu, sq_u = _weight_grad(Hs.reshape((nr, H)), dZ1, nr - nb, U, gU, a)
    net.group_norms[l, 0] += np.sqrt(sq_gw)
    net.group_norms[l, 1] += np.sqrt(sq_gu)
    _colsum(Z.reshape((Tb * nb, GH)), grad[bo:bo + GH])
    if l > 0:  # the gradient w.r.t. the layer below's hidden sequence, into EXT
        _gemm_ilp64(_N, _T, Tb * nb, n_in, GH, Z, GH, W, GH, work[offs[g + _GEXT]:], n_in)
    return sq_w + sq_u


@njit(**_JIT)
def _batch_loss_grad(X, Y, lengths, perm, start, nb, net, settings, lb):
    """Gather rows ``perm[start:start+nb]``, forward, loss, BPTT: ``net.grad`` written,
    norms added to ``net.group_norms`` / ``net.step_norms``. Returns the mean loss with
    the L2 term."""
    layout, theta, grad, work = net.layout, net.theta, net.grad, net.work
    L = layout.shape[0] - 1
    g = 4 * L
    T = X.shape[1]
    offs = _work_offsets(layout, nb, T)
    F, n_out, Htop = layout[0, N_IN], layout[L, N_HIDDEN], layout[L, N_IN]
    Xt = work[offs[g + _GX]:offs[g + _GX] + T * nb * F].reshape((T, nb, F))
    Tb = _gather(X, lengths, perm, start, nb, Xt, lb)
    Yb = work[offs[g + _GY]:offs[g + _GY] + nb * n_out].reshape((nb, n_out))
    for i in range(nb):
        r, y = perm[start + i], Yb[i]
        for j in range(n_out):
            y[j] = Y[r, j]
    Xt = work[offs[g + _GX]:offs[g + _GX] + Tb * nb * F].reshape((Tb, nb, F))
    Zo = _forward(Xt, lb, theta, layout, work, offs, nb, Tb)
    D = work[offs[g + _GD]:offs[g + _GD] + nb * n_out].reshape((nb, n_out))
    loss = output_loss(Zo, Yb, layout[L, CELL], D)
    # output layer: gradients and the gradient into the top hidden states
    a = settings.alpha / nb
    w, bo = layout[L, W_OFF], layout[L, B_OFF]
    Wo = theta[w:w + Htop * n_out].reshape((Htop, n_out))
    hl = work[offs[g + _GHL]:offs[g + _GHL] + nb * Htop].reshape((nb, Htop))
    sq_g, sq_w = _weight_grad(hl, D, nb, Wo, grad[w:w + Htop * n_out].reshape((Htop, n_out)), a)
    net.group_norms[L, 0] += np.sqrt(sq_g)
    _colsum(D, grad[bo:bo + n_out])
    _gemm_ilp64(_N, _T, nb, Htop, n_out, D, n_out, Wo, n_out, work[offs[g + _GDHO]:], Htop)
    for l in range(L - 1, -1, -1):
        if l > 0:
            h0, n_in = offs[4 * (l - 1) + _OH], layout[l, N_IN]
            Xin = work[h0:h0 + Tb * nb * n_in].reshape((Tb, nb, n_in))
        else:
            Xin = Xt
        sq_w += _layer_backward(Xin, lb, net, l, offs, nb, Tb, a)
    return loss + 0.5 * settings.alpha * sq_w / nb


# ----------------------------------------------------------------------------------------
# The compiled engine and its three entry points
# ----------------------------------------------------------------------------------------
@njit(**_JIT)
def _engine(X, Y, lengths, perm, batch_size, net, settings, t, mode):
    """Mini-batches ``perm[k*batch_size : (k+1)*batch_size]`` of X: with ``_TRAIN`` loss,
    gradient, clipping and optimizer step each (``run_epoch``); ``_GRAD`` the same without
    the step (``loss_grad``, one batch); ``_PREDICT`` the network output into the rows
    ``perm`` of Y. One compiled function behind all three public kernels: Numba generates
    machine code for the whole call tree of every compiled entry point, so three compiled
    entries cost three times the compile."""
    layout, work = net.layout, net.work
    n, T = perm.size, X.shape[1]
    rows = min(batch_size, n)
    _validate(X, Y, lengths, net, settings, rows, mode)
    L = layout.shape[0] - 1
    g = 4 * L
    F = layout[0, N_IN]
    lb = np.empty(rows, np.int64)
    if mode != _PREDICT:
        net.group_norms[:] = 0.0
        net.step_norms[:] = 0.0
    total = 0.0
    n_batches = 0
    for start in range(0, n, batch_size):
        nb = min(start + batch_size, n) - start
        n_batches += 1
        if mode == _PREDICT:
            offs = _work_offsets(layout, nb, T)
            Xt = work[offs[g + _GX]:offs[g + _GX] + T * nb * F].reshape((T, nb, F))
            Tb = _gather(X, lengths, perm, start, nb, Xt, lb)
            Xt = work[offs[g + _GX]:offs[g + _GX] + Tb * nb * F].reshape((Tb, nb, F))
            Zo = _forward(Xt, lb, net.theta, layout, work, offs, nb, Tb)
            bias_activation(Zo, net.theta[:0], layout[L, CELL])
            for i in range(nb):
                y = Y[perm[start + i]]
                for j in range(Zo.shape[1]):
                    y[j] = Zo[i, j]
            continue
        total += nb * _batch_loss_grad(X, Y, lengths, perm, start, nb, net, settings, lb)
        if mode == _TRAIN:
            t += 1
            if settings.max_norm > 0.0:
                clip_by_global_norm(net.grad, settings.max_norm)
            _optimizer_step(net.theta, net.grad, net.state_1, net.state_2, 0,
                            net.theta.size, settings, t)
    if mode != _PREDICT:
        scale = 1.0 / max(n_batches, 1)
        for a in (net.group_norms, net.step_norms):
            for i in range(a.shape[0]):
                for j in range(a.shape[1]):
                    a[i, j] *= scale
    return total / max(n, 1), t


def loss_grad(X, Y, lengths, net, settings):
    """Loss and gradient of all rows of X as one mini-batch (no optimizer step).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_steps, n_features), C-contiguous, dtype of theta
    Y : ndarray of shape (n_rows, n_outputs), C-contiguous
        One-hot (softmax), 0/1 (logistic) or targets (identity).
    lengths : ndarray of int64, shape (n_rows,)
        Valid steps per row, in [1, n_steps].
    net : RecurrentNetwork
        Its workspace sized for ``batch_size >= n_rows`` and ``n_steps``. Writes
        ``net.grad`` (gradient of the returned loss), ``net.group_norms`` and
        ``net.step_norms`` (this batch's norms).
    settings : Settings
        Uses ``alpha``.

    Returns
    -------
    loss : float
        Mean data loss plus ``0.5 * alpha * sum(squared weights) / n_rows``.
    """
    n = X.shape[0]
    with blas_threads(1):
        return _engine(X, Y, lengths, np.arange(n), n, net, settings, 0, _GRAD)[0]


def run_epoch(X, Y, lengths, perm, batch_size, net, settings, t):
    """One epoch of mini-batch BPTT training (compiled end to end).

    Mini-batch k holds rows ``perm[k*batch_size : (k+1)*batch_size]`` (the last may be
    shorter). Per batch: :func:`loss_grad` on it, global-norm clipping when
    ``settings.max_norm > 0``, then optimizer step ``t + 1`` (backprop's SGD / Adam,
    scikit-learn's semantics) on all of theta.

    Parameters
    ----------
    X, Y, lengths : as in :func:`loss_grad` (all samples)
    perm : ndarray of int64
        Sample order.
    batch_size : int
    net : RecurrentNetwork
        Trained in place (theta, state_1, state_2); workspace sized for `batch_size` rows
        and X's steps. ``group_norms`` and ``step_norms`` receive the means over the
        epoch's mini-batches (before clipping); steps beyond a batch's longest row count
        as zero.
    settings : Settings
        ``optimizer`` ``OPT_SGD`` (learning_rate, momentum, nesterov; state_1 = velocity)
        or ``OPT_ADAM`` (learning_rate, beta_1, beta_2, epsilon; state_1, state_2 =
        moments); ``alpha``; ``max_norm`` (<= 0: no clipping).
    t : int
        Optimizer steps taken before this epoch (Adam's time step).

    Returns
    -------
    loss : float
        ``sum(batch_loss * batch_rows) / n_rows``.
    t : int
        Optimizer steps taken after this epoch.
    """
    with blas_threads(1):
        return _engine(X, Y, lengths, perm, int(batch_size), net, settings, int(t), _TRAIN)


_NO_SETTINGS = make_settings()


def predict(X, lengths, theta, layout, batch_size, work, out):
    """Network output for every row of X, `batch_size` rows at a time.

    ``work`` holds ``workspace_size(layout, batch_size, n_steps)`` elements; ``out``
    (C-contiguous, shape (n_rows, n_outputs), dtype of theta) receives probabilities
    (softmax, logistic) or values (identity).
    """
    empty = theta[:0]
    net = RecurrentNetwork(layout, theta, empty, empty, empty, work, np.zeros((0, 2)),
                           np.zeros((0, 0)))
    with blas_threads(1):
        _engine(X, out, lengths, np.arange(X.shape[0]), int(batch_size), net, _NO_SETTINGS,
                0, _PREDICT)


def precompile(dtype):
    """Compile the engine for `dtype` (or load it from Numba's on-disk cache): one epoch
    of a one-unit network through the compiled entry that all three kernels share, with
    the argument types they pass. For an install-time compile step."""
    layout, n_params = make_rnn_layout(1, [1], "lstm", 2, "softmax")
    theta = np.zeros(n_params, dtype)
    net = make_rnn_network(layout, theta, np.zeros_like(theta), np.zeros_like(theta), 1, 1)
    X, Y = np.zeros((1, 1, 1), dtype), np.eye(1, 2, dtype=dtype)
    run_epoch(X, Y, np.ones(1, np.int64), np.zeros(1, np.int64), 1, net,
              make_settings(optimizer=OPT_ADAM), 0)
