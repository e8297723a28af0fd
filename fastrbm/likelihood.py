"""Log partition functions of RBMs with Bernoulli hidden units and Bernoulli or Gaussian
visible units: exact enumeration for small models, Annealed Importance Sampling
(Salakhutdinov & Murray 2008) for large ones."""
from numbers import Integral

import numpy as np
from scipy.special import logsumexp
from sklearn.utils import check_random_state
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_array

from ._kernels import _sampling
from ._utils import blas_threads, draw_seed, engine_blocks, engine_threads, softplus

__all__ = ["log_partition", "ais_betas", "ais_agreement"]

MAX_EXACT_UNITS = 25
_CHUNK_STATES = 2**14


_PARAMETERS = ("components_", "intercept_visible_", "intercept_hidden_")


def _parameters(model):
    if not all(hasattr(model, name) for name in _PARAMETERS):
        raise NotFittedError(f"{type(model).__name__} is not fitted: it needs {_PARAMETERS}")
    if getattr(model, "hidden_units", "bernoulli") != "bernoulli":
        raise NotImplementedError(
            "log Z exists for Bernoulli hidden units only: noisy rectified linear units have "
            "no energy function, hence no closed-form free energy, neither exact log Z nor "
            "AIS")
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
            f"that is beyond {MAX_EXACT_UNITS} units. Use method='ais'.")
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
    """Inverse temperatures for AIS: Salakhutdinov & Murray's (2008) schedule.

    10% of the steps on [0, 0.5], 40% on [0.5, 0.9], 50% on [0.9, 1], where the
    intermediate distributions change fastest.

    Parameters
    ----------
    n_betas : int
        Number of inverse temperatures.

    Returns
    -------
    betas : ndarray of shape (n_betas,)
        Increasing from 0 to 1 (two values, 0 and 1, when ``n_betas`` is below 2).

    Examples
    --------
    >>> from fastrbm.likelihood import ais_betas
    >>> betas = ais_betas(1000)
    >>> float(betas[0]), float(betas[-1]), int((betas >= 0.9).sum())
    (0.0, 1.0, 500)
    """
    if n_betas < 4:
        return np.linspace(0.0, 1.0, max(n_betas, 2))
    n1 = max(1, n_betas // 10)
    n2 = max(1, (2 * n_betas) // 5)
    n3 = n_betas - n1 - n2
    return np.concatenate([np.linspace(0, 0.5, n1, endpoint=False),
                           np.linspace(0.5, 0.9, n2, endpoint=False),
                           np.linspace(0.9, 1.0, n3)])


def _base_visible(X, n_features, dtype, gaussian):
    """Visible biases of AIS's base model, 0 without X. Bernoulli units: the logits of the
    smoothed data marginals (the base-rate model). Gaussian units: the data mean (the
    base model's variances are the model's own; a base with the data's variances measured
    no better on trained models)."""
    if X is None:
        return np.zeros(n_features, dtype)
    X = check_array(X, accept_sparse="csr", dtype=(np.float64, np.float32))  # no copy
    if X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, the model has {n_features}")
    total = np.asarray(X.sum(axis=0, dtype=np.float64)).ravel()
    if gaussian:
        return (total / X.shape[0]).astype(dtype)
    p = (total + 1.0) / (X.shape[0] + 2.0)
    return np.log(p / (1 - p)).astype(dtype)


def log_partition(model, method="exact", *, n_chains=100, n_betas=10000, betas=None, X=None,
                  random_state=None, return_std=False, n_jobs=None):
    """Log partition function of a fitted RBM, exactly or by AIS.

    For Bernoulli hidden units and Bernoulli or Gaussian visible units.

    Parameters
    ----------
    model : fitted BernoulliRBM or GaussianBernoulliRBM
        Or any object with ``components_``, ``intercept_visible_`` and
        ``intercept_hidden_``, and ``sigma_`` for Gaussian visible units. Models with
        ``hidden_units="nrelu"`` raise ``NotImplementedError``: noisy rectified linear
        units have no energy function, so no closed-form free energy, and neither method
        applies.
    method : {"exact", "ais"}, default="exact"
        ``"exact"`` enumerates the smaller layer (at most 25 units) in chunks with a
        log-sum-exp in float64; for Gaussian visible units it always enumerates the hidden
        layer and integrates the visible one in closed form. ``"ais"`` runs Annealed
        Importance Sampling for either kind of visible units (see Notes).
    n_chains : int, default=100
        AIS: number of independent annealing runs.
    n_betas : int, default=10000
        AIS: number of inverse temperatures (see :func:`ais_betas`).
    betas : array-like, default=None
        AIS: an explicit increasing schedule from 0 to 1, overriding ``n_betas``.
    X : {array-like, sparse matrix} of shape (n_samples, n_features), default=None
        AIS: data that sets the base model's visible biases, a much better starting point
        than the biases 0 used without it: for Bernoulli units the logits of the
        (smoothed) marginals, for Gaussian units the mean.
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
        The estimate of log Z, in nats.
    std : float
        Its standard error; only when ``return_std`` is True.

    Notes
    -----
    AIS anneals from a base model A, whose log Z is known, to the model B through the
    energies (1 - beta) E_A + beta E_B, one Gibbs sweep of each intermediate model per
    inverse temperature; the mean importance weight estimates Z_B / Z_A. A has no weights
    and uniform hidden units.

    Bernoulli visible units: A's visible biases b_A (see ``X``), log Z_A = n_hidden log 2 +
    sum_i softplus(b_A,i); the sweeps go v -> h -> v through the compiled Gibbs engine
    (``fastrbm._kernels._sampling.ais_log_weights``).

    Gaussian visible units: A is v ~ N(b_A, sigma^2) with the model's own sigma, log Z_A =
    n_hidden log 2 + sum_i log(sqrt(2 pi) sigma_i). Every intermediate model integrates
    over v in closed form (as the exact method does), so AIS runs on the hidden units'
    marginal, a Boltzmann machine with couplings W diag(1 / sigma^2) W^T, by
    systematic-scan Gibbs sweeps over the hidden units
    (``fastrbm._kernels._sampling.ais_hidden_log_weights``). Sweeps through v mix far
    worse there: a hidden unit that is on sees its own weights again in the sampled v
    and stays on. Its cost per temperature and chain is about n_hidden**2 at most, less
    than the 2 n_hidden n_features of sweeps through v.

    The log weights are summed in float64 whatever the model's dtype, and the estimate is
    the same for any ``n_jobs``.

    References
    ----------
    R. Salakhutdinov and I. Murray (2008). On the quantitative analysis of deep belief
    networks. ICML.
    K. Cho, T. Raiko and A. Ilin (2011). Improved learning of Gaussian-Bernoulli
    restricted Boltzmann machines. ICANN.

    Examples
    --------
    AIS against the exact value on a model small enough to enumerate:

    >>> from fastrbm import BernoulliRBM
    >>> from fastrbm.datasets import load_digits
    >>> from fastrbm.likelihood import log_partition
    >>> X = load_digits(binarize=True)[0]
    >>> rbm = BernoulliRBM(n_components=12, n_iter=5, random_state=0).fit(X)
    >>> exact = log_partition(rbm)
    >>> ais, std = log_partition(rbm, "ais", n_betas=1000, X=X, random_state=0,
    ...                          return_std=True)
    >>> bool(abs(ais - exact) < 3 * std + 0.05)
    True
    """
    W, b, c = _parameters(model)
    gaussian = hasattr(model, "sigma_")  # Gaussian visible units
    if method == "exact":
        if gaussian:
            log_z = _exact_gaussian_log_partition(W, b, c, model.sigma_)
        else:
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
    b_base = _base_visible(X, W.shape[1], W.dtype, gaussian)
    log_w = np.empty(n_chains, np.float64)
    seed = draw_seed(check_random_state(random_state))
    log_z_base = W.shape[0] * np.log(2.0)
    with blas_threads(1):
        if gaussian:
            log_sigma = np.log(np.asarray(model.sigma_, dtype=np.float64))
            log_z_base += float(np.sum(0.5 * np.log(2 * np.pi) + log_sigma))
            work = n_chains * W.shape[0] ** 2  # a sweep's coupling updates, at most
            _sampling.ais_hidden_log_weights(W, b, c, b_base, (2 * log_sigma).astype(W.dtype),
                                             betas, log_w, seed, 0,
                                             engine_threads(n_jobs, work))
        else:
            log_z_base += float(softplus(b_base.astype(np.float64)).sum())
            work = n_chains * W.shape[0] * W.shape[1]
            _sampling.ais_log_weights(W, b, c, b_base, betas, log_w, seed, 0,
                                      engine_blocks(work), engine_threads(n_jobs, work))
    log_mean_w = logsumexp(log_w) - np.log(n_chains)
    log_z = float(log_z_base + log_mean_w)
    if not return_std:
        return log_z
    w = np.exp(log_w - log_w.max())
    std = float(w.std(ddof=1) / (np.sqrt(n_chains) * w.mean()))
    return log_z, std


def ais_agreement(model, n_betas=(1000, 10000), *, n_chains=100, X=None, tolerance=2.0,
                  random_state=None, n_jobs=None):
    """AIS estimates of log Z at several schedule lengths, and whether they agree.

    AIS is unbiased for Z but not for log Z: by Jensen's inequality its log estimate falls
    short of log Z in expectation, the more so the shorter the schedule, and a
    log-likelihood computed with it comes out too high. Running two schedules of different
    lengths is the cheap check: an estimate that still rises with more temperatures is not
    converged, and its log-likelihood is an overestimate by at least the rise.

    Parameters
    ----------
    model : fitted BernoulliRBM or GaussianBernoulliRBM
        As for :func:`log_partition`.
    n_betas : sequence of int, default=(1000, 10000)
        Schedule lengths, at least two.
    n_chains : int, default=100
        AIS runs per schedule.
    X : array-like of shape (n_samples, n_features), default=None
        Data for the base model's visible biases (see :func:`log_partition`).
    tolerance : float, default=2.0
        Estimates agree when each differs from the longest schedule's by at most
        ``tolerance`` combined standard errors (``sqrt(std_a**2 + std_b**2)``).
    random_state : int, RandomState instance or None, default=None
        Seeds every schedule's chains (the same seed for each).
    n_jobs : int, default=None
        Threads, as in the estimators.

    Returns
    -------
    result : dict
        ``"n_betas"``, ``"log_z"``, ``"std"``: lists, one entry per schedule (in the given
        order); ``"gap"``: the longest schedule's log Z minus the shortest's;
        ``"agree"``: bool.

    Examples
    --------
    >>> from fastrbm import BernoulliRBM
    >>> from fastrbm.datasets import load_digits
    >>> from fastrbm.likelihood import ais_agreement
    >>> X = (load_digits()[0] > 0.5).astype(float)
    >>> rbm = BernoulliRBM(n_components=16, n_iter=3, random_state=0).fit(X)
    >>> ais_agreement(rbm, (300, 3000), X=X, random_state=0)["agree"]
    True
    """
    schedules = [int(n) for n in n_betas]
    if len(schedules) < 2:
        raise ValueError(f"n_betas needs at least two schedule lengths, got {n_betas!r}")
    if tolerance <= 0:
        raise ValueError(f"tolerance must be positive, got {tolerance!r}")
    seed = draw_seed(check_random_state(random_state))
    estimates = [log_partition(model, "ais", n_chains=n_chains, n_betas=n, X=X,
                               random_state=seed % 2**32, return_std=True, n_jobs=n_jobs)
                 for n in schedules]
    log_z = [float(e[0]) for e in estimates]
    std = [float(e[1]) for e in estimates]
    ref = int(np.argmax(schedules))
    agree = all(abs(z - log_z[ref]) <= tolerance * np.hypot(s, std[ref])
                for z, s in zip(log_z, std))
    low = int(np.argmin(schedules))
    return {"n_betas": schedules, "log_z": log_z, "std": std,
            "gap": log_z[ref] - log_z[low], "agree": bool(agree)}
