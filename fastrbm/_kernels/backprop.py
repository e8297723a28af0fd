"""Dense backprop engine: Numba kernels for forward, backward, losses and optimizer steps.

Estimator-agnostic: every kernel takes arrays and scalars and writes into caller-allocated
buffers. float32 and float64 share one implementation (Numba specialises per dtype); every
constant used in array arithmetic is cast to the array dtype so float32 stays float32.

Parameter layout
----------------
All trainable parameters of a network live in ONE flat vector ``theta`` (and gradients,
momentum and Adam moments in flat vectors of the same size and layout). Per layer ``l`` the
int64 table ``layout[l]`` (built by :func:`make_layout`) holds sizes, the activation code and
offsets into ``theta``::

    W_l     = theta[W_OFF : W_OFF + n_in*n_out].reshape(n_in, n_out)   (sklearn's coefs_[l])
    b_l     = theta[B_OFF : B_OFF + n_out]                            (sklearn's intercepts_[l])
    gamma_l = theta[G_OFF : ...], beta_l = theta[BETA_OFF : ...]   (batch norm; offset -1: none)

Why flat: every kernel then has the same Numba type for any depth (arrays of fixed rank plus an
int64 table), so it compiles once per dtype; optimizer steps and global-norm clipping are one
loop over one vector; per-layer views are free reshapes of contiguous slices. Non-trainable
batch-norm running statistics live in a second flat vector ``bn_state`` (mean at
``STAT_OFF``, variance at ``STAT_OFF + n_out``).

Layer order is ``Z = A_prev @ W (+ b)``, then batch norm (hidden layers, optional), then the
activation, then inverted dropout (hidden layers, optional). A batch-normalised layer does not
use its intercept (``beta`` is its bias; a bias before BN cancels), its intercept gradient is 0.
The output activation fixes the loss (the canonical pairs, as in scikit-learn's MLP):
softmax -> categorical cross-entropy, logistic -> binary cross-entropy (multilabel), identity
-> squared error ``0.5 * sum((y_hat - y)**2) / n_samples``.

Scratch memory (activations, masks, BN statistics, deltas, a gathered mini-batch) lives in one
flat ``work`` vector sized by :func:`workspace_size`; its internal packing is private. Deltas
are gradients of the *mean* loss (the output delta is ``(P - Y) / n_rows``), so the weight
gradient needs no extra scaling pass.

Usage (what an estimator does): the arrays of a network travel as one :class:`Network`,
the scalar settings as one :class:`Settings` (built by :func:`make_settings`, which fixes
their types)::

    layout, n_params, n_state = make_layout([n_features, 100, 100, n_classes], "logistic")
    theta = np.zeros(n_params, np.float32)                   # fill via param_views(theta, layout)
    bn_state = np.zeros(n_state, np.float32)
    init_batchnorm(theta, bn_state, layout)                  # only if batch_norm=True
    net = make_network(layout, theta, bn_state, dropout, velocity, theta[:0], batch_size)
    settings = make_settings(alpha=1e-4, seed=seed, optimizer=OPT_SGD, learning_rate=0.1)
    t = 0
    for epoch in range(max_iter):
        loss, t = run_epoch(X, Y_onehot, rng.permutation(n), batch_size, net, settings, t)
    proba = np.empty((n, n_classes), np.float32)
    predict(X, theta, layout, bn_state, 1e-5, batch_size, net.work, proba)

Notes
-----
* ``error_model="numpy"``: the default Python error model puts a zero-division branch in every
  float division, which stops LLVM from vectorising the activation loops (measured 4x slower).
* ``exp`` and ``expm1`` (for tanh and ELU) are vectorisable Cody-Waite + polynomial implementations
  (within 2 ulp, no fastmath): the libm calls Numba emits do not vectorise, and logistic/tanh
  then dominated small-net epochs (libm tanhf: 17 ns per element).
* Threads. Training cuts every layer into ``n_blocks`` blocks (columns of the layer's units
  forward, rows of W backward); each block is one single-threaded BLAS call followed by its
  elementwise work while the block is in cache (bias, batch norm, activation, dropout; the
  activation derivative; the gradient norm and, without clipping, the optimizer step).
  :func:`run_epoch_parallel`, a second build of the same sources (``parallel=True``,
  explicit prange only), runs the blocks on Numba's threads; the caller keeps BLAS at one
  thread. Each build compiles on its first call only. Why: Numba-parallel
  elementwise loops between multi-threaded OpenBLAS GEMMs oversubscribed the 2 cores (a
  GEMM + parallel optimizer step per batch, 5x slower than serial), while serial loops left
  a core idle for ~0.8 s of a 784-500-500-2000-10 epoch; two single-threaded GEMMs on half
  blocks each ran as fast as OpenBLAS's own two-thread split (0.33 vs 0.35 ms for
  100x784 @ 784x500). ``n_blocks`` fixes the partition, so a model depends on it (BLAS and
  norm rounding) but never on the build or the number of threads.
* GEMMs take explicit leading dimensions, so a block is a view, not a copy. The delta
  products go to SciPy's BLAS through ``scipy.linalg.cython_blas``; the forward and
  weight-gradient products to an ILP64 OpenBLAS the process has loaded (NumPy's), found
  through threadpoolctl, else to SciPy's too (see ``_ILP64`` for the measurement). Run the
  kernels that may mix two libraries (``loss_grad``, ``run_epoch``) with BLAS at one
  thread (``threadpoolctl``): two libraries' threads both running starve each other.
* Pass Python floats for float hyperparameters and Python ints for counts: Numba compiles one
  specialisation per argument type. Compiled code is cached on disk (``cache=True``); each
  build compiles on its first call per dtype (about 12 s for the serial one).
* No sample weights (scikit-learn's MLP accepts them since 1.7) and no ``Literal`` constants
  passed between kernels (each would compile an extra specialisation).
"""
from collections import namedtuple
import ctypes
from types import FunctionType

import llvmlite.binding
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import get_cython_function_address, intrinsic, overload, register_jitable
from threadpoolctl import threadpool_info

# the extension's ILP64 forwarders to SciPy's BLAS (see _ILP64)
from . import _sampling

__all__ = [
    "ACT_IDENTITY", "ACT_LOGISTIC", "ACT_TANH", "ACT_RELU", "ACT_SOFTMAX", "ACT_ELU",
    "ACTIVATION_CODES",
    "OPT_SGD", "OPT_ADAM",
    "N_IN", "N_OUT", "ACT", "W_OFF", "B_OFF", "G_OFF", "BETA_OFF", "STAT_OFF",
    "Network", "Settings", "make_network", "make_settings",
    "make_layout", "param_views", "bn_state_views", "init_batchnorm", "workspace_size",
    "bias_activation", "dense_forward", "batchnorm_inference",
    "dropout_mask", "output_loss", "activation_backward",
    "forward_train", "predict", "loss_grad",
    "sgd_step", "adam_step", "clip_by_global_norm", "run_epoch", "run_epoch_parallel",
]

_JIT = dict(cache=True, nogil=True, error_model="numpy")

ACT_IDENTITY, ACT_LOGISTIC, ACT_TANH, ACT_RELU, ACT_SOFTMAX = 0, 1, 2, 3, 4
# ELU (Clevert et al. 2016, alpha = 1) came later: codes are stored in checkpoints, so new
# activations take the next free code and existing ones never move.
ACT_ELU = 5
ACTIVATION_CODES = {"identity": ACT_IDENTITY, "logistic": ACT_LOGISTIC, "tanh": ACT_TANH,
                    "relu": ACT_RELU, "softmax": ACT_SOFTMAX, "elu": ACT_ELU}
OPT_SGD, OPT_ADAM = 0, 1

_HIDDEN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "elu")

# columns of the layout table
N_IN, N_OUT, ACT, W_OFF, B_OFF, G_OFF, BETA_OFF, STAT_OFF = range(8)
_LAYOUT_COLS = 8
# columns of the private workspace offset table
_WH, _WA, _WM, _WXHAT, _WMEAN, _WISTD = range(6)


# ----------------------------------------------------------------------------------------
# Layout helpers (plain Python, run once per fit)
# ----------------------------------------------------------------------------------------
def make_layout(layer_sizes, activation="logistic", output="softmax", batch_norm=False):
    """Build the parameter layout table of a dense network.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_features, hidden_1, ..., n_outputs]`` (at least two entries).
    activation : {"identity", "logistic", "tanh", "relu", "elu"} or sequence of them
        Hidden activation ("elu": ``x`` for ``x > 0``, ``exp(x) - 1`` otherwise): one for
        all hidden layers, or one per hidden layer (an autoencoder's linear code layer
        between logistic ones). Each layer's code is stored in its row of the table
        (column ``ACT``), which every kernel reads, so any mix compiles nothing new.
    output : {"softmax", "logistic", "identity"}
        Output activation; it selects the loss (categorical CE, binary CE, squared error).
    batch_norm : bool or sequence of bool
        Batch normalisation on all hidden layers, or per hidden layer.

    Returns
    -------
    layout : ndarray of shape (n_layers, 8), int64
    n_params : int
        Size of ``theta`` (and of gradient and optimizer-state vectors).
    n_bn_state : int
        Size of ``bn_state`` (running means and variances).
    """
    sizes = [int(s) for s in layer_sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"layer_sizes must hold at least two positive sizes, got {sizes}")
    n_layers = len(sizes) - 1
    one = isinstance(activation, str)
    hidden = [activation] * (n_layers - 1) if one else list(activation)
    if not one and len(hidden) != n_layers - 1:
        raise ValueError(f"activation needs {n_layers - 1} entries, one per hidden layer, "
                         f"got {len(hidden)}")
    for act in [activation] if one else hidden:
        if act not in _HIDDEN_ACTIVATIONS:
            raise ValueError(f"unknown hidden activation {act!r}")
    if output not in ("softmax", "logistic", "identity"):
        raise ValueError(f"unknown output activation {output!r}")
    if isinstance(batch_norm, (bool, np.bool_)):
        bn = [bool(batch_norm)] * (n_layers - 1)
    else:
        bn = [bool(v) for v in batch_norm]
        if len(bn) != n_layers - 1:
            raise ValueError(f"batch_norm needs {n_layers - 1} flags, got {len(bn)}")
    bn.append(False)  # never on the output layer
    layout = np.full((n_layers, _LAYOUT_COLS), -1, dtype=np.int64)
    pos = stat = 0
    for l in range(n_layers):
        n_in, n_out = sizes[l], sizes[l + 1]
        act = output if l == n_layers - 1 else hidden[l]
        layout[l, N_IN], layout[l, N_OUT], layout[l, ACT] = n_in, n_out, ACTIVATION_CODES[act]
        layout[l, W_OFF] = pos
        pos += n_in * n_out
        layout[l, B_OFF] = pos
        pos += n_out
        if bn[l]:
            layout[l, G_OFF], layout[l, BETA_OFF] = pos, pos + n_out
            pos += 2 * n_out
            layout[l, STAT_OFF] = stat
            stat += 2 * n_out
    return layout, pos, stat


def param_views(theta, layout):
    """Per-layer views into a flat parameter (or gradient / state) vector.

    Returns
    -------
    coefs, intercepts, gammas, betas : lists of ndarray views, one entry per layer
        ``gammas[l]`` and ``betas[l]`` are None for layers without batch norm.
    """
    coefs, intercepts, gammas, betas = [], [], [], []
    for row in layout:
        n_in, n_out = int(row[N_IN]), int(row[N_OUT])
        w, b = int(row[W_OFF]), int(row[B_OFF])
        coefs.append(theta[w:w + n_in * n_out].reshape(n_in, n_out))
        intercepts.append(theta[b:b + n_out])
        g = int(row[G_OFF])
        gammas.append(None if g < 0 else theta[g:g + n_out])
        be = int(row[BETA_OFF])
        betas.append(None if be < 0 else theta[be:be + n_out])
    return coefs, intercepts, gammas, betas


def bn_state_views(bn_state, layout):
    """Per-layer views of the running means and variances (None where no batch norm)."""
    means, variances = [], []
    for row in layout:
        s, n = int(row[STAT_OFF]), int(row[N_OUT])
        means.append(None if s < 0 else bn_state[s:s + n])
        variances.append(None if s < 0 else bn_state[s + n:s + 2 * n])
    return means, variances


def init_batchnorm(theta, bn_state, layout):
    """Set gamma=1, beta=0, running mean 0 and running variance 1 for every BN layer."""
    _, _, gammas, betas = param_views(theta, layout)
    means, variances = bn_state_views(bn_state, layout)
    for g, be, m, v in zip(gammas, betas, means, variances):
        if g is not None:
            g[:] = 1
            be[:] = 0
            m[:] = 0
            v[:] = 1


def workspace_size(layout, dropout, batch_size):
    """Number of elements of the ``work`` vector for mini-batches of up to `batch_size` rows.

    `dropout` is the per-layer dropout probability array (or None for no dropout). The same
    buffer serves :func:`forward_train`, :func:`loss_grad`, :func:`predict` and
    :func:`run_epoch`.
    """
    if dropout is None:
        dropout = np.zeros(layout.shape[0])
    dropout = np.ascontiguousarray(dropout, dtype=np.float64)
    return int(_work_offsets(layout, dropout, int(batch_size))[5])


Network = namedtuple("Network", ["layout", "theta", "bn_state", "dropout", "state_1",
                                 "state_2", "grad", "work", "layer_norms"])
Network.__doc__ = """The arrays of one network, passed to the kernels as one argument.

layout : the int64 table of :func:`make_layout`; theta : flat parameters; bn_state : batch
norm running statistics; dropout : float64 per-layer dropout probabilities; state_1,
state_2 : optimizer moments (SGD: velocity and an empty array; may be empty where no step
is taken); grad : gradient (size of theta); work : scratch (:func:`workspace_size`);
layer_norms : float64 per-layer gradient norms, written.
"""

Settings = namedtuple("Settings", ["alpha", "bn_eps", "bn_momentum", "seed", "optimizer",
                                   "learning_rate", "momentum", "nesterov", "beta_1",
                                   "beta_2", "epsilon", "max_norm", "n_blocks"])
Settings.__doc__ = """Named scalar settings of training, passed to the kernels as one
argument. Build it with :func:`make_settings`, which fixes each field's type (one
compiled specialisation for every network)."""


def make_network(layout, theta, bn_state, dropout=None, state_1=None, state_2=None,
                 batch_size=1):
    """A :class:`Network` over the given arrays, with its gradient, workspace (for
    mini-batches of up to `batch_size` rows) and layer-norm buffers allocated.

    Missing `dropout` means none; missing optimizer moments are empty (no step taken).
    """
    L = layout.shape[0]
    dropout = np.zeros(L) if dropout is None else np.ascontiguousarray(dropout, np.float64)
    empty = theta[:0]
    return Network(layout, theta, bn_state, dropout,
                   empty if state_1 is None else state_1, empty if state_2 is None else state_2,
                   np.empty_like(theta), np.empty(workspace_size(layout, dropout, batch_size),
                                                  theta.dtype), np.empty(L))


def make_settings(*, alpha=0.0, bn_eps=1e-5, bn_momentum=0.1, seed=0, optimizer=OPT_SGD,
                  learning_rate=0.1, momentum=0.9, nesterov=True, beta_1=0.9, beta_2=0.999,
                  epsilon=1e-8, max_norm=0.0, n_blocks=1):
    """:class:`Settings` with every field cast to its one type (float, int or bool).

    Parameters
    ----------
    alpha : float
        L2 penalty (scikit-learn's convention, see :func:`loss_grad`).
    bn_eps, bn_momentum : float
        Batch-norm epsilon and running-statistics momentum.
    seed : int
        Dropout seed.
    optimizer : int
        ``OPT_SGD`` or ``OPT_ADAM``.
    learning_rate, momentum, nesterov, beta_1, beta_2, epsilon
        The optimizer's hyperparameters (scikit-learn's MLP meanings).
    max_norm : float
        Global gradient-norm clipping threshold (<= 0: off).
    n_blocks : int
        Blocks per layer (see :func:`run_epoch`).
    """
    return Settings(float(alpha), float(bn_eps), float(bn_momentum), int(seed), int(optimizer),
                    float(learning_rate), float(momentum), bool(nesterov), float(beta_1),
                    float(beta_2), float(epsilon), float(max_norm), int(n_blocks))


# ----------------------------------------------------------------------------------------
# Scalar helpers: vectorisable exp, counter-based RNG
# ----------------------------------------------------------------------------------------
@intrinsic
def _i64_as_f64(typingctx, i):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def _i32_as_f32(typingctx, i):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


def _exp_nonpos(x):
    """exp(min(x, 0)); compiled as the vectorisable versions below."""
    return np.exp(min(x, 0.0))


def _expm1_nonpos(x):
    """expm1(min(x, 0)); compiled as the vectorisable versions below."""
    return np.expm1(min(x, 0.0))


# Cody-Waite range reduction x = k*ln2 + r, |r| <= ln2/2, then expm1(r) = r * P(r) with the
# Taylor polynomial P evaluated by Estrin's scheme: a shallow dependency chain keeps the SIMD
# units busy (Horner's 13-deep chain made the float64 loop latency-bound, 3x slower).
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # low 32 bits zero: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_LOG2E_F = np.float32(1.4426950408889634)
_LN2_HI_F = np.float32(0.693145751953125)  # 0x3f317200: k * _LN2_HI_F exact for |k| < 2**9
_LN2_LO_F = np.float32(1.428606765330187e-06)


@register_jitable
def _reduce_f64(x):
    k = np.rint(x * _LOG2E)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    r2 = r * r
    r4 = r2 * r2
    # P(r) = sum_{i=0..12} r**i / (i+1)!; truncation of expm1 below 1e-17 on |r| <= 0.347
    p = ((1.0 + r * (1.0 / 2.0)) + r2 * (1.0 / 6.0 + r * (1.0 / 24.0))
         + r4 * ((1.0 / 120.0 + r * (1.0 / 720.0)) + r2 * (1.0 / 5040.0 + r * (1.0 / 40320.0)))
         + (r4 * r4) * ((1.0 / 362880.0 + r * (1.0 / 3628800.0))
                        + r2 * (1.0 / 39916800.0 + r * (1.0 / 479001600.0))
                        + r4 * (1.0 / 6227020800.0)))
    return np.int64(k), r * p


@register_jitable
def _reduce_f32(x):
    k = np.rint(x * _LOG2E_F)
    r = (x - k * _LN2_HI_F) - k * _LN2_LO_F
    r2 = r * r
    # P(r) = sum_{i=0..6} r**i / (i+1)!; truncation of expm1 below 2e-8 relative
    p = ((np.float32(1.0) + r * np.float32(1.0 / 2.0))
         + r2 * (np.float32(1.0 / 6.0) + r * np.float32(1.0 / 24.0))
         + (r2 * r2) * ((np.float32(1.0 / 120.0) + r * np.float32(1.0 / 720.0))
                        + r2 * np.float32(1.0 / 5040.0)))
    # int32, not int64: |k| < 2**8, and eight int32 lanes per AVX register against four
    # int64 ones (float32 exp 0.83 -> 0.58 ns per element, bitwise the same)
    return np.int32(k), r * p


def _exp_nonpos_f64(x):
    # Clamp with comparisons that let NaN through. Below -746 the result rounds to 0.
    x = -746.0 if x < -746.0 else x
    x = 0.0 if x > 0.0 else x
    k, q = _reduce_f64(x)
    # 2**k in two normal factors so subnormal results (k < -1022) round once, correctly
    k1 = k >> 1
    return (1.0 + q) * _i64_as_f64((k1 + 1023) << 52) * _i64_as_f64((k - k1 + 1023) << 52)


def _exp_nonpos_f32(x):
    x = np.float32(-104.0) if x < np.float32(-104.0) else x
    x = np.float32(0.0) if x > np.float32(0.0) else x
    k, q = _reduce_f32(x)
    k1 = k >> np.int32(1)
    bias = np.int32(127)
    return ((np.float32(1.0) + q) * _i32_as_f32((k1 + bias) << np.int32(23))
            * _i32_as_f32((k - k1 + bias) << np.int32(23)))


def _expm1_nonpos_f64(x):
    # below -60, expm1 is -1 to double precision; 2**k stays normal
    x = -60.0 if x < -60.0 else x
    x = 0.0 if x > 0.0 else x
    k, q = _reduce_f64(x)
    scale = _i64_as_f64((k + 1023) << 52)
    return scale * q + (scale - 1.0)  # exact q when k == 0: no cancellation near 0


def _expm1_nonpos_f32(x):
    x = np.float32(-20.0) if x < np.float32(-20.0) else x
    x = np.float32(0.0) if x > np.float32(0.0) else x
    k, q = _reduce_f32(x)
    scale = _i32_as_f32((k + np.int32(127)) << np.int32(23))
    return scale * q + (scale - np.float32(1.0))


def _overload_by_precision(generic, impl_f32, impl_f64):
    """Inside jitted code, ``generic(x)`` compiles to the implementation for x's precision."""

    @overload(generic)
    def _dispatch(x):
        if x == types.float32:
            return impl_f32
        if x == types.float64:
            return impl_f64
        return None


_overload_by_precision(_exp_nonpos, _exp_nonpos_f32, _exp_nonpos_f64)
_overload_by_precision(_expm1_nonpos, _expm1_nonpos_f32, _expm1_nonpos_f64)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@njit(**_JIT)
def _splitmix64(z):
    # z is the uint64 state *after* the golden-ratio increment
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


_N, _T = np.int8(ord("n")), np.int8(ord("t"))


# alpha = 1 and beta = 0 of every product, per precision (global arrays are compile-time
# constants: no allocation per call)
_ONE_ZERO_F32 = np.array([1.0, 0.0], np.float32)
_ONE_ZERO_F64 = np.array([1.0, 0.0], np.float64)


# SciPy's BLAS, reached the documented way: the function pointers that
# ``scipy.linalg.cython_blas`` exports (LP64 Fortran interface, int arguments by reference).
# Symbols are registered with LLVM by name before any compiled function loads: cached code
# refers to the name (a pointer bound as a ctypes constant would stop Numba caching the
# functions that call it).
for _precision in "sd":
    llvmlite.binding.add_symbol(
        f"fastrbm_cython_blas_{_precision}gemm",
        get_cython_function_address("scipy.linalg.cython_blas", f"{_precision}gemm"))


def _loaded_ilp64_gemm():
    """Addresses of ``(sgemm, dgemm)`` with 64-bit integers in an OpenBLAS the process has
    already loaded (NumPy's, when its build links one), or None.

    The library comes from threadpoolctl's list of loaded libraries, the functions from the
    ILP64 symbol suffix ``64_`` (with or without the ``scipy_`` prefix of the
    scipy-openblas builds): no file-name pattern of any wheel's layout.
    """
    for info in threadpool_info():
        if info.get("internal_api") != "openblas":
            continue
        try:
            lib = ctypes.CDLL(info["filepath"])
        except OSError:
            continue
        for prefix in ("scipy_", ""):
            try:
                return tuple(ctypes.cast(getattr(lib, f"{prefix}{p}gemm_64_"),
                                         ctypes.c_void_p).value for p in "sd")
            except AttributeError:
                continue
    return None


# The forward and weight-gradient products take an ILP64 OpenBLAS already in the process
# when there is one, else the extension's ILP64 forwarders to SciPy's BLAS. Why: NumPy's
# OpenBLAS (0.3.31 here) against SciPy's (0.3.30) ran the small net's epoch (64-100-100-10,
# batch 32, separate processes, min of 15) in 23.6 ms against 27.2 ms with every product
# on SciPy's: 13% of the epoch, in the per-call cost of small products; the large net's
# epoch the same (2.86 against 2.84 s). The delta products stay on SciPy's, which was the
# faster for them. Two libraries must not both run threads (each one's threads spin after
# its calls and starve the other's), so callers hold BLAS at one thread around training.
_ILP64 = _loaded_ilp64_gemm() or _sampling.ilp64_fallback_addresses()
for _precision, _address in zip("sd", _ILP64):
    llvmlite.binding.add_symbol(f"fastrbm_ilp64_{_precision}gemm", _address)


@intrinsic
def _address_of(typingctx, value):
    """A pointer to a stack copy of a scalar (Fortran BLAS takes its arguments by
    reference)."""
    if not isinstance(value, (types.Integer, types.Float)):
        return None

    def codegen(context, builder, sig, args):
        # the slot lives in the entry block, so a call inside a loop does not grow the stack
        with builder.goto_entry_block():
            slot = builder.alloca(args[0].type)
        builder.store(args[0], slot)
        return builder.bitcast(slot, ir.IntType(8).as_pointer())
    return types.voidptr(value), codegen


def _make_gemm(symbol, index_type):
    """Row-major ``C = op(A) @ op(B)`` (op: _N or _T), C of shape (m, n), through the
    Fortran ``sgemm``/``dgemm`` registered as ``fastrbm_<symbol>_{s,d}gemm`` with integers
    of `index_type`. A, B and C are arrays (or views) starting at the matrices' first
    elements, with row strides lda, ldb and ldc elements, so a column or row block of a
    matrix is one call without a copy. BLAS is column-major, so this is the product
    C^T = op(B)^T op(A)^T there."""
    sgemm, dgemm = (types.ExternalFunction(f"fastrbm_{symbol}_{p}gemm",
                                           types.void(*[types.voidptr] * 13)) for p in "sd")

    def gemm(transa, transb, m, n, k, A, lda, B, ldb, C, ldc):
        ta, tb = _address_of(transb), _address_of(transa)
        n_, m_, k_ = (_address_of(index_type(n)), _address_of(index_type(m)),
                      _address_of(index_type(k)))
        ldb_, lda_, ldc_ = (_address_of(index_type(ldb)), _address_of(index_type(lda)),
                            _address_of(index_type(ldc)))
        if C.itemsize == 4:
            sgemm(ta, tb, n_, m_, k_, _ONE_ZERO_F32[0:].ctypes, B.ctypes, ldb_, A.ctypes, lda_,
                  _ONE_ZERO_F32[1:].ctypes, C.ctypes, ldc_)
        else:
            dgemm(ta, tb, n_, m_, k_, _ONE_ZERO_F64[0:].ctypes, B.ctypes, ldb_, A.ctypes, lda_,
                  _ONE_ZERO_F64[1:].ctypes, C.ctypes, ldc_)
    gemm.__name__ = gemm.__qualname__ = f"_gemm_{symbol}"
    return register_jitable(gemm)


_gemm = _make_gemm("cython_blas", np.int32)  # delta products: SciPy's BLAS
_gemm_ilp64 = _make_gemm("ilp64", np.int64)  # forward and weight-gradient products


@register_jitable
def _blocks(dim, n_blocks):
    """``(width, count)`` of the blocks that cut ``dim`` units into at most ``n_blocks``
    (none narrower than 16 units): the Gibbs engine's rule (``_sampling._block_size``), so
    results depend on n_blocks only."""
    width = max((dim + n_blocks - 1) // n_blocks, 16)
    return width, (dim + width - 1) // width


# ----------------------------------------------------------------------------------------
# Layer kernels
# ----------------------------------------------------------------------------------------
@register_jitable
def _exp_shifted_cols(Z, E):
    """``E = exp(Z - max(Z, axis=1)).T`` (E of shape (m, n) for Z of shape (n, m)); returns
    the row maxima and ``E.sum(axis=0)``: the overflow-safe core of softmax and log-sum-exp.

    On the transpose, the max, exp and sum over a row's few classes are loops over rows,
    which vectorise (per-row loops over 10 classes cost 2.5 us per 32-row batch, 1.4 ms of
    a small-net epoch); each row still sees its classes in order, so the numbers are a
    row-by-row computation's."""
    n, m = Z.shape
    mx, s = np.empty(n, Z.dtype), np.zeros(n, Z.dtype)
    for i in range(n):
        for j in range(m):
            E[j, i] = Z[i, j]
    mx[:] = E[0]
    for j in range(1, m):
        e = E[j]
        for i in range(n):
            mx[i] = e[i] if e[i] > mx[i] else mx[i]
    for j in range(m):
        e = E[j]
        for i in range(n):
            v = _exp_nonpos(e[i] - mx[i])
            e[i] = v
            s[i] += v
    return mx, s


@register_jitable
def _as_rows(A, j0, j1):
    """``(rows, a, b)`` such that the columns j0:j1 of A are ``rows[i][a:b]`` for every row
    i: A itself, or, when the block is all of A's columns, A as one long row (fewer, longer
    inner loops: per-row loop overhead showed up on small layers)."""
    if j0 == 0 and j1 == A.shape[1]:
        return A.reshape((1, A.size)), 0, A.size
    return A, j0, j1


@register_jitable
def _activation_cols(Z, activation, j0, j1):
    """``Z[:, j0:j1] = act(Z[:, j0:j1])`` in place for the elementwise activations
    (identity, logistic, tanh, relu, elu)."""
    # Loops run over contiguous row slices from 0: a loop over range(j0, j1) indexing the 2-D
    # array carries a negative-index check per element and does not vectorise (6x slower).
    T = Z.dtype.type
    zero, one, two = T(0.0), T(1.0), T(2.0)
    rows, a, b = _as_rows(Z, j0, j1)
    for i in range(rows.shape[0]):
        z = rows[i][a:b]
        if activation == ACT_LOGISTIC:
            for k in range(z.size):
                v = z[k]
                e = _exp_nonpos(-abs(v))  # exp(-|v|) in (0, 1]: never overflows
                z[k] = (one if v >= zero else e) / (one + e)
        elif activation == ACT_TANH:
            for k in range(z.size):
                v = z[k]
                em = _expm1_nonpos(-two * abs(v))  # tanh|v| = -expm1(-2|v|) / (2 + expm1(-2|v|))
                t = (zero - em) / (two + em)
                z[k] = t if v >= zero else -t
        elif activation == ACT_RELU:
            for k in range(z.size):
                z[k] = zero if z[k] < zero else z[k]
        elif activation == ACT_ELU:
            for k in range(z.size):
                v = z[k]
                em = _expm1_nonpos(v)  # exp(min(v, 0)) - 1: both sides computed, a select
                z[k] = v if v > zero else em


@register_jitable
def _add_bias_cols(Z, b, j0, j1):
    """``Z[:, j0:j1] += b[j0:j1]`` (b of size 0: no bias)."""
    if b.size > 0:
        bb = b[j0:j1]
        for i in range(Z.shape[0]):
            z = Z[i][j0:j1]
            for k in range(z.size):
                z[k] += bb[k]


@njit(**_JIT)
def bias_activation(Z, b, activation):
    """Epilogue of a dense layer: ``Z = act(Z + b)`` in place (b of size 0: no bias).

    `activation` is an ``ACT_*`` code; softmax acts row-wise (max-shifted, overflow-safe).
    """
    n, m = Z.shape
    _add_bias_cols(Z, b, 0, m)
    if activation == ACT_SOFTMAX:
        E = np.empty((m, n), Z.dtype)
        _, s = _exp_shifted_cols(Z, E)
        for i in range(n):
            for j in range(m):
                Z[i, j] = E[j, i] / s[i]
        return
    _activation_cols(Z, activation, 0, m)


@njit(**_JIT)
def dense_forward(A_prev, W, b, activation, Z):
    """Fused dense layer ``Z = act(A_prev @ W + b)`` into the caller's buffer.

    Parameters
    ----------
    A_prev : ndarray of shape (n_rows, n_in), C-contiguous
    W : ndarray of shape (n_in, n_out), C-contiguous
    b : ndarray of shape (n_out,), or size 0 for no bias
    activation : int
        One of the ``ACT_*`` codes (softmax acts row-wise).
    Z : ndarray of shape (n_rows, n_out), C-contiguous, written.
    """
    n, n_in = A_prev.shape
    _gemm_ilp64(_N, _N, n, Z.shape[1], n_in, A_prev, n_in, W, Z.shape[1], Z, Z.shape[1])
    bias_activation(Z, b, activation)


@register_jitable
def _batchnorm_forward_cols(Z, gamma, beta, eps, momentum, running_mean, running_var, mean,
                            inv_std, xhat, j0, j1):
    """Training-mode batch normalisation ``Z = gamma * xhat + beta`` in place, on the
    columns j0:j1 (columns are independent).

    Normalises each column with the batch statistics (biased variance), stores ``mean``,
    ``inv_std = 1/sqrt(var + eps)`` and ``xhat`` for the backward pass, and updates the
    running statistics PyTorch-style: ``running = (1 - momentum) * running + momentum *
    batch`` with the unbiased batch variance (``momentum=0`` leaves them unchanged).
    """
    T = Z.dtype.type
    n = Z.shape[0]
    mu, sd = mean[j0:j1], inv_std[j0:j1]
    g, be, rm, rv = gamma[j0:j1], beta[j0:j1], running_mean[j0:j1], running_var[j0:j1]
    mu[:] = 0
    sd[:] = 0  # first used to accumulate the sum of squared deviations
    for i in range(n):
        z = Z[i][j0:j1]
        for k in range(z.size):
            mu[k] += z[k]
    for k in range(mu.size):
        mu[k] = mu[k] / T(n)
    for i in range(n):
        z = Z[i][j0:j1]
        for k in range(z.size):
            d = z[k] - mu[k]
            sd[k] += d * d
    mom, keep = T(momentum), T(1.0 - momentum)
    unbias = T(n / max(n - 1, 1))
    for k in range(mu.size):
        var = sd[k] / T(n)
        rm[k] = keep * rm[k] + mom * mu[k]
        rv[k] = keep * rv[k] + mom * (var * unbias)
        sd[k] = T(1.0) / np.sqrt(var + T(eps))
    for i in range(n):
        z, xh = Z[i][j0:j1], xhat[i][j0:j1]
        for k in range(z.size):
            x = (z[k] - mu[k]) * sd[k]
            xh[k] = x
            z[k] = g[k] * x + be[k]


@njit(**_JIT)
def batchnorm_inference(Z, gamma, beta, eps, running_mean, running_var):
    """Inference-mode batch normalisation with the running statistics, in place."""
    T = Z.dtype.type
    n, m = Z.shape
    inv_std = np.empty(m, Z.dtype)
    for j in range(m):
        inv_std[j] = T(1.0) / np.sqrt(running_var[j] + T(eps))
    for i in range(n):
        for j in range(m):
            Z[i, j] = gamma[j] * ((Z[i, j] - running_mean[j]) * inv_std[j]) + beta[j]


@register_jitable
def _dropout_key(seed, stream):
    return _splitmix64(np.uint64(seed) ^ _splitmix64(np.uint64(stream + 1) * _GOLDEN))


@register_jitable
def _dropout_entry(key, k, p, scale, zero):
    """Mask entry of C-order element k: 0 with probability p, else ``scale``."""
    z = _splitmix64(key + np.uint64(k + 1) * _GOLDEN)
    u = np.float64(z >> np.uint64(11)) * 1.1102230246251565e-16  # 2**-53
    return zero if u < p else scale


@njit(**_JIT)
def dropout_mask(seed, stream, p, mask):
    """Fill an inverted-dropout mask: entries 0 (probability `p`) or ``1/(1-p)``.

    Counter-based (SplitMix64 over ``(seed, stream, element index)``), so a mask depends
    only on its arguments, never on thread count or call order. Element ``k`` (C order)
    is dropped when ``u_k < p`` with ``u_k = (splitmix64(key + (k+1)*golden) >> 11) * 2**-53``
    and ``key = splitmix64(uint64(seed) ^ splitmix64((stream+1)*golden))``.
    """
    T = mask.dtype.type
    scale, zero = T(1.0 / (1.0 - p)), T(0.0)
    key = _dropout_key(seed, stream)
    flat = mask.reshape(mask.size)
    for k in range(flat.size):
        flat[k] = _dropout_entry(key, k, p, scale, zero)


@register_jitable
def _dropout_cols(seed, stream, p, H, M, A, j0, j1):
    """Columns j0:j1 of :func:`dropout_mask` into M (the same entries as the whole-mask
    call), and ``A = H * M`` on them."""
    T = M.dtype.type
    scale, zero = T(1.0 / (1.0 - p)), T(0.0)
    key = _dropout_key(seed, stream)
    M_rows, c0, c1 = _as_rows(M, j0, j1)
    H_rows, A_rows = _as_rows(H, j0, j1)[0], _as_rows(A, j0, j1)[0]
    m = M_rows.shape[1]
    for i in range(M_rows.shape[0]):
        h, mask, a = H_rows[i][c0:c1], M_rows[i][c0:c1], A_rows[i][c0:c1]
        for k in range(mask.size):  # C-order element index of A: i * m + c0 + k
            mask[k] = _dropout_entry(key, i * m + c0 + k, p, scale, zero)
            a[k] = h[k] * mask[k]


@njit(**_JIT)
def output_loss(Z, Y, activation, D):
    """Output activation, loss and output delta in one pass.

    ``Z`` (pre-activation of the output layer) is replaced in place by the network output
    ``P`` (softmax, logistic or identity) and ``D = (P - Y) / n_rows``, the gradient of the
    mean loss with respect to ``Z`` (canonical link). Softmax uses log-sum-exp and binary CE
    the softplus form, so any finite ``Z`` gives finite outputs.

    Returns
    -------
    loss : float
        Mean over rows of the per-sample loss (float64): categorical CE
        ``-sum(y*log p)``, binary CE ``-sum(y log p + (1-y) log(1-p))`` or
        ``0.5*sum((p-y)**2)``.
    """
    T = Z.dtype.type
    zero, one = T(0.0), T(1.0)
    n, m = Z.shape
    inv_n = one / T(n)
    total = 0.0
    if activation == ACT_SOFTMAX:
        E = np.empty((m, n), Z.dtype)
        mx, s = _exp_shifted_cols(Z, E)
        for i in range(n):
            lse = mx[i] + np.log(s[i])
            row = zero
            for j in range(m):
                row += Y[i, j] * (lse - Z[i, j])
                p = E[j, i] / s[i]
                Z[i, j] = p
                D[i, j] = (p - Y[i, j]) * inv_n
            total += row
    elif activation == ACT_LOGISTIC:
        for i in range(n):
            row = zero
            for j in range(m):
                z = Z[i, j]
                e = _exp_nonpos(-abs(z))
                # -y log s(z) - (1-y) log(1-s(z)) = max(z, 0) - y z + log1p(exp(-|z|))
                row += (z if z > zero else zero) - Y[i, j] * z + np.log1p(e)
                p = (one if z >= zero else e) / (one + e)
                Z[i, j] = p
                D[i, j] = (p - Y[i, j]) * inv_n
            total += row
    else:  # identity: squared error
        for i in range(n):
            row = zero
            for j in range(m):
                d = Z[i, j] - Y[i, j]
                D[i, j] = d * inv_n
                row += d * d
            total += 0.5 * row
    return total / n


@njit(**_JIT)
def activation_backward(H, activation, M, D):
    """``D *= act'(.) * M`` in place, with the derivative taken from the activation output H.

    ``H`` is the layer output before dropout and ``M`` its dropout mask (size 0: no dropout).
    On entry ``D`` is the gradient with respect to the layer's (dropped-out) output; on exit
    the gradient with respect to the activation's input.
    """
    _activation_backward_cols(H, activation, M, D, 0, D.shape[1])


@register_jitable
def _activation_backward_cols(H, activation, M, D, j0, j1):
    """:func:`activation_backward` on the columns j0:j1."""
    T = D.dtype.type
    zero, one = T(0.0), T(1.0)
    D_rows, a, b = _as_rows(D, j0, j1)
    H_rows = _as_rows(H, j0, j1)[0]
    M_rows = _as_rows(M, j0, j1)[0] if M.size > 0 else M
    for i in range(D_rows.shape[0]):
        d, h = D_rows[i][a:b], H_rows[i][a:b]
        if M.size > 0:
            mm = M_rows[i][a:b]
            for k in range(d.size):
                d[k] *= mm[k]
        if activation == ACT_LOGISTIC:
            for k in range(d.size):
                d[k] *= h[k] * (one - h[k])
        elif activation == ACT_TANH:
            for k in range(d.size):
                d[k] *= one - h[k] * h[k]
        elif activation == ACT_RELU:
            for k in range(d.size):
                d[k] = d[k] if h[k] > zero else zero
        elif activation == ACT_ELU:
            for k in range(d.size):  # elu'(x) = 1 for x > 0, exp(x) = h + 1 otherwise
                d[k] *= (h[k] if h[k] < zero else zero) + one


@register_jitable
def _batchnorm_backward_cols(D, xhat, inv_std, gamma, grad_gamma, grad_beta, j0, j1):
    """Backward of training-mode batch norm on the columns j0:j1, in place on ``D`` (rows
    = samples): on entry dL/d(gamma*xhat+beta), on exit dL/dZ. Writes
    ``grad_gamma = sum(D*xhat)`` and ``grad_beta = sum(D)`` (column sums)."""
    T = D.dtype.type
    n = D.shape[0]
    gg, gb, g, sd = grad_gamma[j0:j1], grad_beta[j0:j1], gamma[j0:j1], inv_std[j0:j1]
    gg[:] = 0
    gb[:] = 0
    for i in range(n):
        d, xh = D[i][j0:j1], xhat[i][j0:j1]
        for k in range(d.size):
            gg[k] += d[k] * xh[k]
            gb[k] += d[k]
    tn = T(n)
    for i in range(n):
        d, xh = D[i][j0:j1], xhat[i][j0:j1]
        for k in range(d.size):
            d[k] = (g[k] * sd[k]) * (d[k] - (gb[k] + xh[k] * gg[k]) / tn)


@register_jitable
def _colsum(D, out):
    """``out = D.sum(axis=0)`` (skipped when out has size 0)."""
    if out.size > 0:
        out[:] = 0
        for i in range(D.shape[0]):
            for j in range(D.shape[1]):
                out[j] += D[i, j]


@register_jitable
def _delta_rows(D, W, D_prev, i0, i1):
    """``D_prev[:, i0:i1] = D @ W[i0:i1].T``: the delta of the layer below, for its units
    i0..i1-1 (rows i0:i1 of W)."""
    n, n_out = D.shape
    _gemm(_N, _T, n, i1 - i0, n_out, D, n_out, W[i0:], n_out, D_prev[:, i0:],
                D_prev.shape[1])


@register_jitable
def _weight_grad_rows(A_prev, D, W, alpha, grad_W, i0, i1, acc_g, acc_w):
    """Rows i0:i1 of ``grad_W = A_prev.T @ D + (alpha / n) * W``; adds their per-column
    sums of ``grad_W**2`` to acc_g and, when alpha != 0, of ``W**2`` to acc_w (float64)."""
    T = D.dtype.type
    n, n_out = D.shape
    _gemm_ilp64(_T, _N, i1 - i0, n_out, n, A_prev[:, i0:], A_prev.shape[1], D, n_out,
                grad_W[i0:], n_out)
    # per-column accumulators: the reductions vectorise without reassociation (no fastmath)
    if alpha != 0.0:
        a = T(alpha / n)
        for i in range(i0, i1):
            for j in range(n_out):
                w = W[i, j]
                g = grad_W[i, j] + a * w
                grad_W[i, j] = g
                acc_g[j] += np.float64(g) * np.float64(g)
                acc_w[j] += np.float64(w) * np.float64(w)
    else:  # grad_W is final: one read for its norm
        for i in range(i0, i1):
            for j in range(n_out):
                acc_g[j] += np.float64(grad_W[i, j]) * np.float64(grad_W[i, j])


# ----------------------------------------------------------------------------------------
# Network kernels
# ----------------------------------------------------------------------------------------
@njit(**_JIT)
def _work_offsets(layout, dropout, n_rows):
    """Private packing of the workspace for mini-batches of `n_rows` rows."""
    L = layout.shape[0]
    offs = np.full((L, 6), -1, dtype=np.int64)
    pos = 0
    width = layout[0, N_IN]
    for l in range(L):
        m = layout[l, N_OUT]
        width = max(width, m)
        offs[l, _WH] = pos
        pos += n_rows * m
        if l < L - 1 and dropout[l] > 0.0:
            offs[l, _WM] = pos
            offs[l, _WA] = pos + n_rows * m
            pos += 2 * n_rows * m
        else:
            offs[l, _WA] = offs[l, _WH]
        if layout[l, G_OFF] >= 0:
            offs[l, _WXHAT] = pos
            pos += n_rows * m
            offs[l, _WMEAN] = pos
            offs[l, _WISTD] = pos + m
            pos += 2 * m
    d0 = pos
    d1 = d0 + n_rows * width
    xb = d1 + n_rows * width
    yb = xb + n_rows * layout[0, N_IN]
    total = yb + n_rows * layout[L - 1, N_OUT]
    return offs, d0, d1, xb, yb, total


def _forward_layer_blocks(A_prev, net, settings, l, step, offs):
    """Training-mode layer ``l`` of `net` for the mini-batch `A_prev`, on column blocks of
    its units: ``H = A_prev @ W``, then the bias or batch norm, the activation (none on the
    output layer: :func:`output_loss` applies it) and inverted dropout. Every block is one
    BLAS call plus its elementwise epilogue, so the parallel build runs whole blocks on
    separate threads (BLAS single-threaded). Returns the layer's output, a view into the
    workspace. `offs` is the workspace table of :func:`_work_offsets` for A_prev's rows."""
    # Everything the blocks use is unpacked here: arrays reached through a tuple inside a
    # prange loop are not written back by Numba's parallel build.
    layout, theta, bn_state, work = net.layout, net.theta, net.bn_state, net.work
    n, n_in = A_prev.shape
    L = layout.shape[0]
    n_out = layout[l, N_OUT]
    w, h, b = layout[l, W_OFF], offs[l, _WH], layout[l, B_OFF]
    W = theta[w:w + n_in * n_out].reshape((n_in, n_out))
    H = work[h:h + n * n_out].reshape((n, n_out))
    bias = theta[b:b + n_out]
    activation = layout[l, ACT] if l < L - 1 else ACT_IDENTITY
    none1 = work[:0]
    none2 = work[:0].reshape((0, 0))
    gamma, beta, run_mean, run_var = none1, none1, none1, none1
    mean, inv_std, xhat = none1, none1, none2
    g = layout[l, G_OFF]
    if g >= 0:
        be, st, x = layout[l, BETA_OFF], layout[l, STAT_OFF], offs[l, _WXHAT]
        gamma, beta = theta[g:g + n_out], theta[be:be + n_out]
        run_mean, run_var = bn_state[st:st + n_out], bn_state[st + n_out:st + 2 * n_out]
        mean = work[offs[l, _WMEAN]:offs[l, _WMEAN] + n_out]
        inv_std = work[offs[l, _WISTD]:offs[l, _WISTD] + n_out]
        xhat = work[x:x + n * n_out].reshape((n, n_out))
    mo, a = offs[l, _WM], offs[l, _WA]
    p = net.dropout[l] if mo >= 0 else 0.0
    M = work[mo:mo + n * n_out].reshape((n, n_out)) if mo >= 0 else none2
    A = work[a:a + n * n_out].reshape((n, n_out))  # H itself without dropout
    bn_eps, bn_momentum = settings.bn_eps, settings.bn_momentum
    seed, stream = settings.seed, step * L + l
    size, count = _blocks(n_out, settings.n_blocks)
    for blk in prange(count):
        j0 = blk * size
        j1 = min(n_out, j0 + size)
        _gemm_ilp64(_N, _N, n, j1 - j0, n_in, A_prev, n_in, W[:, j0:], n_out, H[:, j0:],
                    n_out)
        if gamma.size > 0:
            _batchnorm_forward_cols(H, gamma, beta, bn_eps, bn_momentum, run_mean, run_var,
                                    mean, inv_std, xhat, j0, j1)
        else:
            _add_bias_cols(H, bias, j0, j1)
        _activation_cols(H, activation, j0, j1)
        if p > 0.0:
            _dropout_cols(seed, stream, p, H, M, A, j0, j1)
    return A


def _backward_layer_blocks(A_prev, D, D_prev, sums, net, settings, l, offs, fuse, t):
    """Layer ``l``'s backward pass on row blocks of its W (the units of the layer below).

    Block [i0, i1): ``D_prev[:, i0:i1] = D @ W[i0:i1].T`` through the layer below's
    dropout, activation and batch norm (skipped when D_prev has size 0), then rows i0:i1
    of ``grad_W`` with the block's column sums of grad_W**2 and W**2 in ``sums[blk]``, and
    with ``fuse`` optimizer step `t` on those rows of W at once, while they are in cache.
    Blocks touch disjoint rows of W and columns of D_prev, so they run in parallel."""
    layout, theta, grad, work = net.layout, net.theta, net.grad, net.work  # see above
    state_1, state_2 = net.state_1, net.state_2
    n = D.shape[0]
    n_in, n_out = layout[l, N_IN], layout[l, N_OUT]
    w = layout[l, W_OFF]
    W = theta[w:w + n_in * n_out].reshape((n_in, n_out))
    grad_W = grad[w:w + n_in * n_out].reshape((n_in, n_out))
    none1 = work[:0]
    none2 = work[:0].reshape((0, 0))
    H_below, M_below, xhat_below = none2, none2, none2
    inv_std_below, gamma_below, ggamma_below, gbeta_below = none1, none1, none1, none1
    act_below = ACT_IDENTITY
    if l > 0:
        k = l - 1
        h, mo = offs[k, _WH], offs[k, _WM]
        H_below = work[h:h + n * n_in].reshape((n, n_in))
        if mo >= 0:
            M_below = work[mo:mo + n * n_in].reshape((n, n_in))
        act_below = layout[k, ACT]
        g = layout[k, G_OFF]
        if g >= 0:
            be, x, i = layout[k, BETA_OFF], offs[k, _WXHAT], offs[k, _WISTD]
            xhat_below = work[x:x + n * n_in].reshape((n, n_in))
            inv_std_below = work[i:i + n_in]
            gamma_below = theta[g:g + n_in]
            ggamma_below, gbeta_below = grad[g:g + n_in], grad[be:be + n_in]
    alpha = settings.alpha
    size, count = _blocks(n_in, settings.n_blocks)
    for blk in prange(count):
        i0 = blk * size
        i1 = min(n_in, i0 + size)
        if D_prev.size > 0:
            _delta_rows(D, W, D_prev, i0, i1)
            _activation_backward_cols(H_below, act_below, M_below, D_prev, i0, i1)
            if gamma_below.size > 0:
                _batchnorm_backward_cols(D_prev, xhat_below, inv_std_below, gamma_below,
                                         ggamma_below, gbeta_below, i0, i1)
        # The step reads the block's gradient once more after the norm's loop. Measured and
        # dropped: both in one loop (the float64 sums made LLVM vectorise it four lanes
        # wide, 0.38 ns per weight against 0.12 + 0.18), and the two loops row by row while
        # a row is in cache (faster in isolation, a 7% slower small-net epoch, the same
        # large-net one).
        _weight_grad_rows(A_prev, D, W, alpha, grad_W, i0, i1, sums[blk, 0], sums[blk, 1])
        if fuse:
            _optimizer_step(theta, grad, state_1, state_2, w + i0 * n_out, w + i1 * n_out,
                            settings, t)


def _optimizer_blocks(net, settings, t):
    """Optimizer step `t` on every parameter, in n_blocks contiguous chunks."""
    theta, grad, state_1, state_2 = net.theta, net.grad, net.state_1, net.state_2
    size = max((theta.size + settings.n_blocks - 1) // settings.n_blocks, 1)
    for blk in prange((theta.size + size - 1) // size):
        lo = blk * size
        _optimizer_step(theta, grad, state_1, state_2, lo, min(theta.size, lo + size),
                        settings, t)


# The serial build of the blocked passes (prange is range). The parallel build is assembled
# at the end of the module from the same sources (see run_epoch_parallel).
_forward_layer = njit(**_JIT)(_forward_layer_blocks)
_backward_layer = njit(**_JIT)(_backward_layer_blocks)
_optimizer_pass = njit(**_JIT)(_optimizer_blocks)


@njit(**_JIT)
def forward_train(X, net, settings, step):
    """Training-mode forward pass of a mini-batch; activations stay in ``net.work``.

    Batch norm uses the batch statistics (running statistics updated with
    ``settings.bn_momentum``), dropout masks come from
    ``dropout_mask(settings.seed, step * n_layers + layer, p, .)``, and the output layer is
    left pre-activation (for :func:`output_loss`).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features), C-contiguous, dtype of theta
    net : Network
        Its ``work`` holds at least ``workspace_size(layout, dropout, n_rows)`` elements.
    settings : Settings
    step : int
        The dropout stream.

    Returns
    -------
    Z_out : ndarray of shape (n_rows, n_outputs), a view into ``net.work``
    """
    return _forward(X, net, settings, step,
                    _work_offsets(net.layout, net.dropout, X.shape[0])[0])


@njit(**_JIT)
def _forward(X, net, settings, step, offs):
    """:func:`forward_train` with the workspace table `offs` of :func:`_work_offsets` for
    X's rows."""
    A_prev = X
    for l in range(net.layout.shape[0]):
        A_prev = _forward_layer(A_prev, net, settings, l, step, offs)
    return A_prev


@njit(**_JIT)
def predict(X, theta, layout, bn_state, bn_eps, batch_size, work, out):
    """Inference-mode network output, `batch_size` rows at a time.

    ``X`` is C-contiguous (the GEMMs read its rows in place). Batch norm uses the running
    statistics; no dropout. ``work`` must hold
    ``workspace_size(layout, None, batch_size)`` elements; ``out`` of shape
    (n_rows, n_outputs) receives probabilities (softmax / logistic) or values (identity).
    """
    L = layout.shape[0]
    n = X.shape[0]
    no_dropout = np.zeros(L)
    rows = min(batch_size, n)  # as in run_epoch: one table per batch size
    offs = _work_offsets(layout, no_dropout, rows)[0]
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        nb = stop - start
        if nb != rows:
            rows = nb
            offs = _work_offsets(layout, no_dropout, rows)[0]
        A_prev = X[start:stop]
        for l in range(L):
            n_in, n_out = layout[l, N_IN], layout[l, N_OUT]
            w, h = layout[l, W_OFF], offs[l, _WH]
            W = theta[w:w + n_in * n_out].reshape((n_in, n_out))
            H = work[h:h + nb * n_out].reshape((nb, n_out))
            g = layout[l, G_OFF]
            if g >= 0:
                be, s = layout[l, BETA_OFF], layout[l, STAT_OFF]
                _gemm_ilp64(_N, _N, nb, n_out, n_in, A_prev, n_in, W, n_out, H, n_out)
                batchnorm_inference(H, theta[g:g + n_out], theta[be:be + n_out], bn_eps,
                                    bn_state[s:s + n_out], bn_state[s + n_out:s + 2 * n_out])
                bias_activation(H, theta[:0], layout[l, ACT])
            else:
                b = layout[l, B_OFF]
                dense_forward(A_prev, W, theta[b:b + n_out], layout[l, ACT], H)
            A_prev = H
        for i in range(nb):  # explicit loops: array slice assignment compiles slowly
            for j in range(A_prev.shape[1]):
                out[start + i, j] = A_prev[i, j]


@njit(**_JIT)
def loss_grad(X, Y, net, settings, step):
    """Training-mode loss and gradient of one mini-batch (the backprop step).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features), C-contiguous
    Y : ndarray of shape (n_rows, n_outputs), C-contiguous
        One-hot (softmax), 0/1 indicators (logistic) or targets (identity).
    net : Network
        Writes ``net.grad`` (gradient of the mean loss; intercepts of batch-normalised
        layers get 0), ``net.layer_norms`` (Frobenius norm of dL/dW of each layer, L2 term
        included) and the running statistics in ``net.bn_state``.
    settings : Settings
        Uses alpha (L2 penalty, scikit-learn's convention:
        ``+ 0.5 * alpha * sum(||W||**2) / n_rows``), bn_eps, bn_momentum, seed, n_blocks.
    step : int
        The dropout stream, as in :func:`forward_train`.

    Returns
    -------
    loss : float
        Mean data loss over the rows plus the L2 term.
    """
    # np.bool_: a bare constant would be a Literal type, and _backprop (and everything below
    # it) would compile a second time for it
    return _backprop(X, Y, net, settings, step, net.layer_norms,
                     _work_offsets(net.layout, net.dropout, X.shape[0]), np.bool_(False))


@njit(**_JIT)
def _backprop(X, Y, net, settings, step, norms, offsets, fuse):
    """:func:`loss_grad` in n_blocks blocks per layer, the layer norms into `norms`; with
    `fuse`, also optimizer step number `step` (see :func:`run_epoch`), each layer's as soon
    as its gradient is complete: its weights block by block in the backward pass, then its
    biases and batch-norm parameters. The deltas below a layer use its weights before the
    step. `offsets` is what :func:`_work_offsets` gives for X's rows (computed once per
    batch size by the caller)."""
    offs, d0, d1 = offsets[0], offsets[1], offsets[2]
    layout, theta, grad, work = net.layout, net.theta, net.grad, net.work
    L = layout.shape[0]
    n = X.shape[0]
    Z = _forward(X, net, settings, step, offs)
    n_out = layout[L - 1, N_OUT]
    D = work[d0:d0 + n * n_out].reshape((n, n_out))
    loss = output_loss(Z, Y, layout[L - 1, ACT], D)
    sumsq_w = 0.0
    spare = d1  # deltas ping-pong between the two delta buffers
    for l in range(L - 1, -1, -1):
        n_in, n_out = layout[l, N_IN], layout[l, N_OUT]
        b = layout[l, B_OFF]
        if l > 0:
            a = offs[l - 1, _WA]
            A_prev = work[a:a + n * n_in].reshape((n, n_in))
            D_prev = work[spare:spare + n * n_in].reshape((n, n_in))
        else:
            A_prev = X
            D_prev = work[:0].reshape((0, n_in))  # the input needs no delta
        if layout[l, G_OFF] >= 0:
            grad[b:b + n_out] = 0  # the intercept is unused under batch norm
        else:
            _colsum(D, grad[b:b + n_out])
        n_row_blocks = _blocks(n_in, settings.n_blocks)[1]
        sums = np.zeros((n_row_blocks, 2, n_out))
        _backward_layer(A_prev, D, D_prev, sums, net, settings, l, offs, fuse, step)
        sq = 0.0
        for blk in range(n_row_blocks):  # fixed order: the same sums for any thread count
            for j in range(n_out):
                sq += sums[blk, 0, j]
                sumsq_w += sums[blk, 1, j]
        norms[l] = np.sqrt(sq)
        if fuse:  # the layer's biases (and batch-norm gamma, beta) are final now
            end = layout[l + 1, W_OFF] if l + 1 < L else theta.size
            _optimizer_step(theta, grad, net.state_1, net.state_2, b, end, settings, step)
        spare = d0 if spare == d1 else d1
        D = D_prev
    return loss + 0.5 * settings.alpha * sumsq_w / n


# ----------------------------------------------------------------------------------------
# Optimizers (scikit-learn's SGDOptimizer / AdamOptimizer semantics, in place)
# ----------------------------------------------------------------------------------------
@njit(**_JIT)
def sgd_step(theta, grad, velocity, learning_rate, momentum, nesterov):
    """``velocity = momentum*velocity - lr*grad``; ``theta += velocity`` or, with Nesterov,
    ``theta += momentum*velocity - lr*grad`` (scikit-learn's SGDOptimizer)."""
    T = theta.dtype.type
    lr, mu = T(learning_rate), T(momentum)
    if nesterov:
        for k in range(theta.size):
            v = mu * velocity[k] - lr * grad[k]
            velocity[k] = v
            theta[k] += mu * v - lr * grad[k]
    else:
        for k in range(theta.size):
            v = mu * velocity[k] - lr * grad[k]
            velocity[k] = v
            theta[k] += v


@njit(**_JIT)
def adam_step(theta, grad, m, v, learning_rate, beta_1, beta_2, epsilon, t):
    """One Adam step (scikit-learn's AdamOptimizer); `t` is this step's number (1, 2, ...).

    ``m = b1*m + (1-b1)*g``, ``v = b2*v + (1-b2)*g**2``,
    ``theta += -lr_t * m / (sqrt(v) + eps)`` with ``lr_t = lr*sqrt(1-b2**t)/(1-b1**t)``.
    """
    T = theta.dtype.type
    ft = np.float64(t)  # float exponent: libm pow, as Python's float ** int
    lr_t = learning_rate * np.sqrt(1.0 - beta_2 ** ft) / (1.0 - beta_1 ** ft)
    b1, c1, b2, c2 = T(beta_1), T(1.0 - beta_1), T(beta_2), T(1.0 - beta_2)
    neg_lr, eps = T(-lr_t), T(epsilon)
    for k in range(theta.size):
        g = grad[k]
        mk = b1 * m[k] + c1 * g
        vk = b2 * v[k] + c2 * (g * g)
        m[k] = mk
        v[k] = vk
        theta[k] += neg_lr * mk / (np.sqrt(vk) + eps)


@register_jitable
def _optimizer_step(theta, grad, state_1, state_2, lo, hi, settings, t):
    """:func:`adam_step` (state_1, state_2 = moments) or :func:`sgd_step` (state_1 =
    velocity; state_2 unused, may be empty) number `t` on the parameters lo:hi."""
    if settings.optimizer == OPT_ADAM:
        adam_step(theta[lo:hi], grad[lo:hi], state_1[lo:hi], state_2[lo:hi],
                  settings.learning_rate, settings.beta_1, settings.beta_2, settings.epsilon, t)
    else:
        sgd_step(theta[lo:hi], grad[lo:hi], state_1[lo:hi], settings.learning_rate,
                 settings.momentum, settings.nesterov)


@njit(**_JIT)
def clip_by_global_norm(grad, max_norm):
    """Scale `grad` in place so its L2 norm is at most `max_norm` (off when ``max_norm <= 0``).

    Returns
    -------
    norm : float
        The norm before clipping.
    """
    # 64 column accumulators over a (rows, 64) view: vectorises without reassociation
    rows = grad.size // 64
    acc = np.zeros(64)
    body = grad[:rows * 64].reshape((rows, 64))
    for i in range(rows):
        for j in range(64):
            acc[j] += np.float64(body[i, j]) * np.float64(body[i, j])
    for k in range(rows * 64, grad.size):
        acc[0] += np.float64(grad[k]) * np.float64(grad[k])
    norm = np.sqrt(acc.sum())
    if max_norm > 0.0 and norm > max_norm:
        scale = grad.dtype.type(max_norm / norm)
        for k in range(grad.size):
            grad[k] *= scale
    return norm


# ----------------------------------------------------------------------------------------
# Whole epoch
# ----------------------------------------------------------------------------------------
@njit(**_JIT)
def run_epoch(X, Y, perm, batch_size, net, settings, t):
    """One epoch of mini-batch training, compiled end to end.

    Mini-batch ``k`` holds rows ``perm[k*batch_size : (k+1)*batch_size]`` (the last may be
    shorter), as scikit-learn's ``gen_batches`` over a shuffled index. Per batch: gather,
    :func:`loss_grad`, optional :func:`clip_by_global_norm`, then one optimizer step.
    Without clipping the step is fused into the backward pass: each block of weights is
    updated right after its gradient is computed, while it is in cache (the same numbers
    as the separate step, which streamed every parameter through memory once more).

    Parameters
    ----------
    X, Y : C-contiguous 2-D arrays of the network dtype (all samples)
    perm : ndarray of int64
        Sample order (a permutation, or any index array).
    batch_size : int
    net : Network
        Trained in place (theta, bn_state, state_1, state_2); its ``work`` holds at least
        ``workspace_size(layout, dropout, batch_size)`` elements; ``layer_norms`` receives
        the mean over the epoch's mini-batches of each layer's ||dL/dW||_F (before
        clipping).
    settings : Settings
        The dropout stream of a batch is its step number. ``optimizer`` is ``OPT_SGD``
        (learning_rate, momentum, nesterov; ``state_1`` = velocity) or ``OPT_ADAM``
        (learning_rate, beta_1, beta_2, epsilon; ``state_1``, ``state_2`` = first and second
        moments); ``max_norm`` the global gradient-norm clipping threshold (<= 0: off);
        ``n_blocks`` the blocks per layer, each one single-threaded BLAS call plus its
        elementwise work. The result depends on n_blocks (BLAS rounding, norm summation
        order), not on which build runs them: :func:`run_epoch_parallel` gives bitwise the
        same numbers.
    t : int
        Optimizer steps taken before this epoch (Adam's time step, the dropout stream).

    Returns
    -------
    loss : float
        ``sum(batch_loss * batch_rows) / n_rows`` (scikit-learn's ``loss_``).
    t : int
        Optimizer steps taken after this epoch.
    """
    layout, work, layer_norms = net.layout, net.work, net.layer_norms
    n = perm.size
    n_feat = X.shape[1]
    n_out = Y.shape[1]
    L = layout.shape[0]
    norms = np.zeros(L)
    layer_norms[:] = 0.0
    fuse = settings.max_norm <= 0.0  # clipping needs every gradient before any step
    total = 0.0
    n_batches = 0
    rows = min(batch_size, n)  # the workspace layout of every batch but a shorter last one
    offsets = _work_offsets(layout, net.dropout, rows)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        nb = stop - start
        if nb != rows:
            rows = nb
            offsets = _work_offsets(layout, net.dropout, rows)
        xb, yb = offsets[3], offsets[4]
        Xb = work[xb:xb + nb * n_feat].reshape((nb, n_feat))
        Yb = work[yb:yb + nb * n_out].reshape((nb, n_out))
        for i in range(nb):
            r = perm[start + i]
            for j in range(n_feat):
                Xb[i, j] = X[r, j]
            for j in range(n_out):
                Yb[i, j] = Y[r, j]
        t += 1
        loss = _backprop(Xb, Yb, net, settings, t, norms, offsets, fuse)
        total += loss * nb
        for l in range(L):
            layer_norms[l] += norms[l]
        n_batches += 1
        if not fuse:
            clip_by_global_norm(net.grad, settings.max_norm)
            _optimizer_pass(net, settings, t)
    for l in range(L):
        layer_norms[l] /= max(n_batches, 1)
    return total / max(n, 1), t


# ----------------------------------------------------------------------------------------
# The parallel build
# ----------------------------------------------------------------------------------------
_PARALLEL = dict(_JIT, parallel={"prange": True, "comprehension": False, "setitem": False,
                                 "reduction": False, "numpy": False, "stencil": False,
                                 "fusion": False, "inplace_binop": False})


def _rebuilt(dispatcher, flags, doc=None, **calls):
    """A second build of a jitted function: a copy of its Python function compiled with
    `flags`, whose globals named in `calls` are other functions (the copy of a driver calls
    the parallel passes). The copy has its own qualified name, because Numba's on-disk cache
    keys on the name and the argument types, not on the flags or the globals: the two
    builds would otherwise load each other's code. Each build compiles only when first
    called, so a small net never compiles the parallel one."""
    fn = dispatcher.py_func
    twin = FunctionType(fn.__code__, dict(fn.__globals__, **calls), fn.__name__ + "_parallel",
                        fn.__defaults__, fn.__closure__)
    twin.__qualname__ = fn.__qualname__ + "_parallel"
    twin.__doc__ = fn.__doc__ if doc is None else doc
    return njit(**flags)(twin)


# The blocked passes with their prange on Numba's threads (only that loop is parallelised:
# no array expressions). Their blocks call BLAS single-threaded, so the caller holds BLAS at
# one thread: BLAS's own pool beside Numba's threads oversubscribed the cores 5x.
_forward_par = _rebuilt(_forward, _JIT,
                        _forward_layer=_rebuilt(_forward_layer, _PARALLEL))
_backprop_par = _rebuilt(_backprop, _JIT, _forward=_forward_par,
                         _backward_layer=_rebuilt(_backward_layer, _PARALLEL))
run_epoch_parallel = _rebuilt(
    run_epoch, _JIT, _backprop=_backprop_par,
    _optimizer_pass=_rebuilt(_optimizer_pass, _PARALLEL),
    doc=""":func:`run_epoch` with each layer's blocks on Numba's threads (as many as
    ``numba.set_num_threads`` allows; the caller holds BLAS at one thread): bitwise the same
    result as run_epoch for the same n_blocks.""")
