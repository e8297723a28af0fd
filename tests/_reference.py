"""Plain-NumPy oracles for the Gibbs sampling engine (fastrbm/_kernels/_sampling.pyx).

Written for clarity, not speed: loops over mini-batches and phases in the order the
engine documents, with the same counter-based uniforms, so each compiled kernel can be
checked against it value by value.
"""
import numpy as np
from scipy.special import expit

_U64 = np.uint64
_U32 = np.uint32


def _splitmix64(x):
    x = np.asarray(x, dtype=_U64) + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _lowbias32(x):
    x = x ^ (x >> _U32(16))
    x = x * _U32(0x7FEB352D)
    x = x ^ (x >> _U32(15))
    x = x * _U32(0x846CA68B)
    return x ^ (x >> _U32(16))


def uniforms(seed, counter, shape):
    """The engine's uniform at (seed, counter, row, column) for a block of the given shape."""
    rows, cols = shape
    keys = _splitmix64(
        _splitmix64(_U64(seed) ^ _splitmix64(np.array([counter], _U64)))
        + np.arange(rows, dtype=_U64)
    )
    klo = (keys & _U64(0xFFFFFFFF)).astype(_U32)[:, None]
    khi = (keys >> _U64(32)).astype(_U32)[:, None]
    j = np.arange(cols, dtype=_U32)[None, :]
    bits = _lowbias32(_lowbias32(klo ^ (j * _U32(0x9E3779B9))) ^ khi)
    return (bits >> _U32(8)).astype(np.float64) * 2.0**-24


def sigmoid(x):
    return expit(x)


def sample_layer(pre, bias, seed, counter):
    """(probabilities, Bernoulli samples) of a layer with pre-activations ``pre``."""
    p = sigmoid(pre + bias)
    return p, (uniforms(seed, counter, p.shape) < p).astype(p.dtype)


def gibbs_chain(v, W, b, c, n_steps, seed, counter):
    """n_steps of v -> h -> v; returns (v, h, v_prob, next counter)."""
    h = vp = None
    for _ in range(n_steps):
        _, h = sample_layer(v @ W.T, c, seed, counter)
        vp, v = sample_layer(h @ W, b, seed, counter + 1)
        counter += 2
    return v, h, vp, counter


def cd_epoch(X, W, b, c, chain, vel, q_hidden, *, batch_size, k, persistent,
             learning_rate, momentum=0.0, weight_decay=0.0, sparsity_target=0.1,
             sparsity_cost=0.0, seed, counter):
    """One epoch of CD-k / PCD-k, as documented in ``_sampling.cd_epoch``.

    Works on copies and returns (W, b, c, chain, vel, q_hidden, counter)."""
    W, b, c = W.copy(), b.copy(), c.copy()
    chain = chain.copy()
    vel = [v.copy() for v in vel]
    q_hidden = q_hidden.copy()
    plain = momentum == 0 and weight_decay == 0 and sparsity_cost == 0
    for start in range(0, X.shape[0], batch_size):
        V0 = X[start:start + batch_size]
        n = V0.shape[0]
        if persistent:
            Hpos = sigmoid(V0 @ W.T + c)
            Hs = chain
        else:
            Hpos, Hs = sample_layer(V0 @ W.T, c, seed, counter)
            counter += 1
        for step in range(k):
            _, Vneg = sample_layer(Hs @ W, b, seed, counter)
            counter += 1
            if persistent or step < k - 1:
                Hneg, Hs = sample_layer(Vneg @ W.T, c, seed, counter)
                counter += 1
            else:
                Hneg = sigmoid(Vneg @ W.T + c)
        if persistent:
            chain = Hs
        n_neg = Vneg.shape[0]
        gW = Hpos.T @ V0 / n - Hneg.T @ Vneg / n_neg
        gb = V0.mean(axis=0) - Vneg.mean(axis=0)
        gc = Hpos.mean(axis=0) - Hneg.mean(axis=0)
        if plain:
            W += learning_rate * gW
            b += learning_rate * gb
            c += learning_rate * gc
        else:
            q_hidden = 0.9 * q_hidden + 0.1 * Hpos.mean(axis=0)
            sparse_push = sparsity_cost * (sparsity_target - q_hidden)
            vel[0] = momentum * vel[0] + learning_rate * (
                gW - weight_decay * W + sparse_push[:, None] * V0.mean(axis=0)[None, :])
            vel[1] = momentum * vel[1] + learning_rate * gb
            vel[2] = momentum * vel[2] + learning_rate * (gc + sparse_push)
            W += vel[0]
            b += vel[1]
            c += vel[2]
    return W, b, c, chain, vel, q_hidden, counter


def free_energy(X, W, b, c):
    return -X @ b - np.logaddexp(0, X @ W.T + c).sum(axis=1)


def exact_log_partition(W, b, c):
    """log Z of a Bernoulli RBM by enumerating every hidden state (n_hidden <= ~20)."""
    nh = W.shape[0]
    H = ((np.arange(2**nh)[:, None] >> np.arange(nh)[None, :]) & 1).astype(np.float64)
    log_terms = H @ c + np.logaddexp(0, H @ W + b).sum(axis=1)
    return np.logaddexp.reduce(log_terms)
