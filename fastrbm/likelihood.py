"""Log partition functions and log-likelihoods of RBMs: exact enumeration for small models,
Annealed Importance Sampling (Salakhutdinov & Murray 2008) for large ones (Bernoulli visible
units; Gaussian visible units have the exact method only)."""
from numbers import Integral

import numpy as np
from scipy.special import logsumexp
from sklearn.utils import check_random_state
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_array

from ._kernels import _sampling
from ._utils import blas_threads, draw_seed, engine_blocks, engine_threads, softplus

__all__ = ["log_partition", "ais_betas"]

MAX_EXACT_UNITS = 25
_CHUNK_STATES = 2**14


_PARAMETERS = ("components_", "intercept_visible_", "intercept_hidden_")


def _parameters(model):
    if not all(hasattr(model, name) for name in _PARAMETERS):
        raise NotFittedError(f"{type(model).__name__} is not fitted: it needs {_PARAMETERS}")
    if getattr(model, "hidden_units", "bernoulli") != "bernoulli":
        raise NotImplementedError(
            "log Z exists for Bernoulli hidden units only: noisy rectified linear units have "
            "no energy function")
    return tuple(getattr(model, name) for name in _PARAMETERS)


def _exact_gaussian_log_partition(W, b, c, sigma):
    """log Z of a Gaussian-Bernoulli RBM, enumerating the hidden states in chunks.

    With E(v, h) = sum_i (v_i - b_i)^2 / (2 s_i^2) - c.h - (v / s^2).W^T h, the integral
    over v for a hidden state h is Gaussian with mean m = b + W^T h:
    log int exp(-E) dv = c.h + sum_i (m_i^2 - b_i^2) / (2 s_i^2) + sum_i log(sqrt(2 pi) s_i).
    """
    W, b, c, sigma = (np.asarray(a, dtype=np.float64) for a in (W, b, c, sigma))
    n_units = W.shape[0]
    if n_units > MAX_EXACT_UNITS:
        raise ValueError(
            f"exact log Z of a Gaussian-Bernoulli RBM enumerates 2**{n_units} hidden states; "
            f"that is beyond {MAX_EXACT_UNITS} units (and AIS is not implemented for "
            "Gaussian visible units).")
    inv_var = 1.0 / sigma**2
    bits = np.arange(n_units)
    chunks = []
    for start in range(0, 2**n_units, _CHUNK_STATES):
        states = np.arange(start, min(start + _CHUNK_STATES, 2**n_units))
        H = ((states[:, None] >> bits) & 1).astype(np.float64)
        a = H @ W  # m - b
        # (m^2 - b^2) / 2 = a (b + a / 2)
        chunks.append(logsumexp(H @ c + (a * (b + 0.5 * a)) @ inv_var))
    return float(logsumexp(chunks)) + float(np.sum(0.5 * np.log(2 * np.pi) + np.log(sigma)))


def _exact_log_partition(W, b, c):
    """Enumerate every state of the smaller layer, in chunks, summing in float64."""
    W, b, c = (np.asarray(a, dtype=np.float64) for a in (W, b, c))
    if W.shape[0] > W.shape[1]:  # enumerate the visible layer instead: swap the roles
        W, b, c = W.T, c, b
    n_units = W.shape[0]
    if n_units > MAX_EXACT_UNITS:
        raise ValueError(
            f"exact log Z enumerates 2**{n_units} states of the smaller layer; that is "
            f"beyond {MAX_EXACT_UNITS} units. Use method='ais'.")
    bits = np.arange(n_units)
    chunks = []
    for start in range(0, 2**n_units, _CHUNK_STATES):
        states = np.arange(start, min(start + _CHUNK_STATES, 2**n_units))
        H = ((states[:, None] >> bits) & 1).astype(np.float64)
        chunks.append(logsumexp(H @ c + softplus(H @ W + b).sum(axis=1)))
    return float(logsumexp(chunks))


def ais_betas(n_betas):
    """The inverse temperatures of Salakhutdinov & Murray (2008), stretched to ``n_betas``
    values: 10% of the steps on [0, 0.5], 40% on [0.5, 0.9], 50% on [0.9, 1], where the
    intermediate distributions change fastest."""
    if n_betas < 4:
        return np.linspace(0.0, 1.0, max(n_betas, 2))
    n1 = max(1, n_betas // 10)
    n2 = max(1, (2 * n_betas) // 5)
    n3 = n_betas - n1 - n2
    return np.concatenate([np.linspace(0, 0.5, n1, endpoint=False),
                           np.linspace(0.5, 0.9, n2, endpoint=False),
                           np.linspace(0.9, 1.0, n3)])


def _base_rate_bias(X, n_features, dtype):
    """Visible biases of the base-rate model: the smoothed data marginals, or 0 without X."""
    if X is None:
        return np.zeros(n_features, dtype)
    X = check_array(X, accept_sparse="csr", dtype=(np.float64, np.float32))  # no copy
    if X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, the model has {n_features}")
    p = (np.asarray(X.sum(axis=0, dtype=np.float64)).ravel() + 1.0) / (X.shape[0] + 2.0)
    return np.log(p / (1 - p)).astype(dtype)


def log_partition(model, method="exact", *, n_chains=100, n_betas=10000, betas=None, X=None,
                  random_state=None, return_std=False, n_jobs=None):
    """log Z of a fitted Bernoulli RBM.

    Parameters
    ----------
    model : fitted BernoulliRBM or GaussianBernoulliRBM
        Or any object with ``components_``, ``intercept_visible_`` and
        ``intercept_hidden_``, and ``sigma_`` for Gaussian visible units. Models with
        ``hidden_units="nrelu"`` have no partition function (``NotImplementedError``).
    method : {"exact", "ais"}, default="exact"
        ``"exact"`` enumerates the smaller layer (at most 25 units) in chunks with a
        log-sum-exp in float64; for Gaussian visible units it always enumerates the hidden
        layer and integrates the visible one in closed form. ``"ais"`` runs Annealed
        Importance Sampling (Bernoulli visible units only).
    n_chains : int, default=100
        AIS: number of independent annealing runs.
    n_betas : int, default=10000
        AIS: number of inverse temperatures (see :func:`ais_betas`).
    betas : array-like, default=None
        AIS: an explicit increasing schedule from 0 to 1, overriding ``n_betas``.
    X : array-like of shape (n_samples, n_features), default=None
        AIS: data whose (smoothed) marginals set the base-rate model's visible biases, a
        much better starting point than the uniform model used without it.
    random_state : int, RandomState instance or None, default=None
        AIS: seeds the chains; the same seed gives the same estimate for any thread count.
    return_std : bool, default=False
        Also return the standard error of the estimate (0 for ``"exact"``; for AIS the
        delta-method standard error of log mean(w) over chains).
    n_jobs : int, default=None
        AIS: threads, as in the estimators.

    Returns
    -------
    log_z : float
    std : float
        Only when ``return_std`` is True.

    References
    ----------
    R. Salakhutdinov and I. Murray (2008). On the quantitative analysis of deep belief
    networks. ICML.
    K. Cho, T. Raiko and A. Ilin (2011). Improved learning of Gaussian-Bernoulli
    restricted Boltzmann machines. ICANN.
    """
    W, b, c = _parameters(model)
    if hasattr(model, "sigma_"):  # Gaussian visible units
        if method != "exact":
            raise ValueError(
                f"method={method!r}: log Z of Gaussian visible units is computed exactly only "
                f"(method='exact', at most {MAX_EXACT_UNITS} hidden units); AIS is "
                "implemented for Bernoulli visible units.")
        log_z = _exact_gaussian_log_partition(W, b, c, model.sigma_)
        return (log_z, 0.0) if return_std else log_z
    if method == "exact":
        log_z = _exact_log_partition(W, b, c)
        return (log_z, 0.0) if return_std else log_z
    if method != "ais":
        raise ValueError(f"method must be 'exact' or 'ais', got {method!r}")
    if not isinstance(n_chains, Integral) or n_chains < 2:
        raise ValueError(f"n_chains must be an int >= 2, got {n_chains!r}")
    if betas is None:
        if not isinstance(n_betas, Integral) or n_betas < 2:
            raise ValueError(f"n_betas must be an int >= 2, got {n_betas!r}")
        betas = ais_betas(n_betas)
    betas = np.ascontiguousarray(betas, dtype=np.float64)
    if betas.ndim != 1 or betas.size < 2 or betas[0] != 0 or betas[-1] != 1 \
            or np.any(np.diff(betas) < 0):
        raise ValueError("betas must be a non-decreasing 1-D sequence from 0 to 1")
    b_base = _base_rate_bias(X, W.shape[1], W.dtype)
    log_w = np.empty(n_chains, np.float64)
    seed = draw_seed(check_random_state(random_state))
    with blas_threads(1):
        work = n_chains * W.shape[0] * W.shape[1]
        _sampling.ais_log_weights(W, b, c, b_base, betas, log_w, seed, 0,
                                  engine_blocks(work), engine_threads(n_jobs, work))
    log_z_base = W.shape[0] * np.log(2.0) + float(softplus(b_base.astype(np.float64)).sum())
    log_mean_w = logsumexp(log_w) - np.log(n_chains)
    log_z = float(log_z_base + log_mean_w)
    if not return_std:
        return log_z
    w = np.exp(log_w - log_w.max())
    std = float(w.std(ddof=1) / (np.sqrt(n_chains) * w.mean()))
    return log_z, std
