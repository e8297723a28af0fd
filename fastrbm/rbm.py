"""Restricted Boltzmann Machines as scikit-learn estimators.

The estimators here own parameters, validation, seeds and the epoch loop; everything that
samples runs in the compiled Gibbs engine (``fastrbm._kernels._sampling``).
"""
import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from ._kernels import _sampling
from ._persistence import CheckpointMixin
from ._progress import EpochProgress
from ._utils import draw_seed, engine_blocks, engine_threads, softplus

__all__ = ["BernoulliRBM"]

# Rows used for the per-epoch reconstruction error (evenly spaced, so it is cheap on large
# data and the same rows every epoch).
_HISTORY_ROWS = 2000


class BernoulliRBM(CheckpointMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                   BaseEstimator):
    """Bernoulli Restricted Boltzmann Machine, trained by contrastive divergence.

    A drop-in replacement for :class:`sklearn.neural_network.BernoulliRBM`: the same
    parameters with the same defaults and meanings, the same fitted attributes and methods;
    the training loop runs in compiled code (BLAS GEMMs plus fused, vectorised sigmoid and
    Bernoulli sampling). The keyword-only extensions default to scikit-learn's behaviour:
    persistent contrastive divergence (PCD) with one Gibbs step, plain SGD.

    Visible units are binary (or probabilities in [0, 1]); data outside [0, 1] trains but
    raises a warning, because the model cannot represent it.

    Parameters
    ----------
    n_components : int, default=256
        Number of binary hidden units.
    learning_rate : float, default=0.1
        Learning rate for weight updates. As in scikit-learn, the gradient is averaged over
        the mini-batch, so the effective step does not grow with ``batch_size``.
    batch_size : int, default=10
        Number of examples per mini-batch (also the number of persistent chains).
    n_iter : int, default=10
        Number of passes over the training data (epochs).
    verbose : int, default=0
        0: silent. 1: a progress bar over epochs on stderr (with tqdm installed, else as 2).
        2 and more: one line per epoch on stdout with the reconstruction error and time, as
        scikit-learn prints.
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation and the sampling. The same seed gives a
        bit-identical model whatever the number of threads.
    k : int, default=1
        Number of Gibbs steps per update (CD-k / PCD-k).
    persistent : bool, default=True
        True: persistent CD (Tieleman 2008), the chains carry over between mini-batches
        (scikit-learn's algorithm). False: CD-k, each chain starts at the data (Hinton 2002).
    momentum : float, default=0.0
        Momentum of the parameter updates, in [0, 1).
    weight_decay : float, default=0.0
        L2 penalty coefficient on the weights.
    sparsity_target : float, default=0.1
        Target mean activation of each hidden unit (used when ``sparsity_cost > 0``).
    sparsity_cost : float, default=0.0
        Strength of the sparsity penalty (Hinton 2010, section 11): the running mean
        activation of each hidden unit is pushed toward ``sparsity_target``.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the parameters and of all computation; input is converted to it.
    n_jobs : int, default=None
        Number of threads of the compiled engine (each thread runs its share of the GEMMs
        and the elementwise work). None uses every available core when the mini-batches
        are large enough to share, else one thread. The model does not depend on it.

    Attributes
    ----------
    intercept_hidden_ : ndarray of shape (n_components,)
        Biases of the hidden units.
    intercept_visible_ : ndarray of shape (n_features,)
        Biases of the visible units.
    components_ : ndarray of shape (n_components, n_features)
        Weight matrix, W[i, j] connects hidden unit i and visible unit j.
    h_samples_ : ndarray of shape (batch_size, n_components)
        Hidden states of the persistent chains.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string feature names.
    n_iter_ : int
        Number of epochs run (cumulative over ``partial_fit`` calls).
    history_ : dict of lists
        Per-epoch training history: ``"reconstruction_error"`` (mean squared error of the
        mean-field reconstruction on up to 2000 evenly spaced training rows) and
        ``"time"`` (seconds).

    See Also
    --------
    sklearn.neural_network.BernoulliRBM : The reference implementation.

    References
    ----------
    G. Hinton (2002). Training products of experts by minimizing contrastive divergence.
    Neural Computation 14(8).
    T. Tieleman (2008). Training restricted Boltzmann machines using approximations to the
    likelihood gradient. ICML.
    G. Hinton (2010). A practical guide to training restricted Boltzmann machines.
    UTML TR 2010-003.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrbm import BernoulliRBM
    >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
    >>> model = BernoulliRBM(n_components=2, random_state=0).fit(X)
    >>> model.transform(X).shape
    (4, 2)
    """

    _checkpoint_arrays = ("components_", "intercept_hidden_", "intercept_visible_",
                          "h_samples_", "_q_hidden", "_velocity")
    _checkpoint_values = ("n_features_in_", "n_iter_", "history_", "_rng_seed", "_rng_counter")

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "k": [Interval(Integral, 1, None, closed="left")],
        "persistent": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither")],
        "sparsity_cost": [Interval(Real, 0, None, closed="left")],
        "dtype": [StrOptions({"float32", "float64"})],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        n_components=256,
        *,
        learning_rate=0.1,
        batch_size=10,
        n_iter=10,
        verbose=0,
        random_state=None,
        k=1,
        persistent=True,
        momentum=0.0,
        weight_decay=0.0,
        sparsity_target=0.1,
        sparsity_cost=0.0,
        dtype="float32",
        n_jobs=None,
    ):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.k = k
        self.persistent = persistent
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.sparsity_target = sparsity_target
        self.sparsity_cost = sparsity_cost
        self.dtype = dtype
        self.n_jobs = n_jobs

    # ----------------------------------------------------------------------------------
    # data

    def _validate_X(self, X, *, reset):
        X = validate_data(
            self, X, accept_sparse="csr", dtype=np.dtype(self.dtype), order="C", reset=reset
        )
        if sp.issparse(X):
            X.sort_indices()
            if X.indices.dtype != np.int32 or X.indptr.dtype != np.int32:
                if X.nnz >= 2**31:
                    raise ValueError("sparse X with 2**31 or more stored values is not supported")
                X = sp.csr_matrix(
                    (X.data, X.indices.astype(np.int32), X.indptr.astype(np.int32)),
                    shape=X.shape,
                )
        return X

    @staticmethod
    def _warn_if_not_unit_interval(X):
        values = X.data if sp.issparse(X) else X
        if values.size and (values.min() < 0 or values.max() > 1):
            warnings.warn(
                "BernoulliRBM models binary data or probabilities in [0, 1]; X has values in "
                f"[{values.min():.3g}, {values.max():.3g}]. Scale it first, e.g. with "
                "sklearn.preprocessing.MinMaxScaler.",
                UserWarning,
                stacklevel=3,
            )

    # ----------------------------------------------------------------------------------
    # fitting

    def _initialize(self, n_features, rng):
        dtype = np.dtype(self.dtype)
        self.components_ = np.ascontiguousarray(
            rng.normal(0, 0.01, (self.n_components, n_features)), dtype=dtype
        )
        self.intercept_hidden_ = np.zeros(self.n_components, dtype=dtype)
        self.intercept_visible_ = np.zeros(n_features, dtype=dtype)
        self.h_samples_ = np.zeros((self.batch_size, self.n_components), dtype=dtype)
        # Optimizer state: velocities and the running mean of hidden activations.
        self._velocity = [np.zeros_like(self.components_), np.zeros_like(self.intercept_visible_),
                          np.zeros_like(self.intercept_hidden_)]
        self._q_hidden = np.full(self.n_components, self.sparsity_target, dtype=dtype)
        # The sampling stream: one 64-bit seed plus a counter that every draw advances.
        self._rng_seed = draw_seed(rng)
        self._rng_counter = 0
        self.n_iter_ = 0
        self.history_ = {"reconstruction_error": [], "time": []}

    _STATE = ("components_", "intercept_visible_", "intercept_hidden_", "h_samples_",
              "_q_hidden")

    def _training_state(self):
        """Copies of everything an epoch changes in place (cheap next to an epoch)."""
        return ({name: getattr(self, name).copy() for name in self._STATE},
                [v.copy() for v in self._velocity])

    def _restore_training_state(self, state):
        arrays, velocity = state
        for name, value in arrays.items():
            setattr(self, name, value)
        self._velocity = velocity

    def _run_epochs(self, X, n_epochs):
        """Run ``n_epochs`` passes of CD/PCD over X, recording the history."""
        work = self.batch_size * self.n_components * X.shape[1]
        n_threads, n_blocks = self._threads(work), engine_blocks(work)
        if sp.issparse(X):
            args = (np.empty((0, X.shape[1]), X.dtype), X.data, X.indices, X.indptr, True)
        else:
            empty_i = np.empty(0, np.int32)
            args = (X, np.empty(0, X.dtype), empty_i, np.zeros(1, np.int32), False)
        if self.h_samples_.shape != (self.batch_size, self.n_components):
            self.h_samples_ = np.zeros((self.batch_size, self.n_components), X.dtype)
        history_rows = np.unique(np.linspace(0, X.shape[0] - 1, _HISTORY_ROWS).astype(np.intp))
        X_history = X[history_rows]
        W_vel, b_vel, c_vel = self._velocity
        progress = EpochProgress(type(self).__name__, n_epochs, self.verbose)
        with progress, threadpool_limits(limits=1, user_api="blas"):
            for _ in range(n_epochs):
                start = time.perf_counter()
                backup = self._training_state()
                try:
                    self._rng_counter = _sampling.cd_epoch(
                        *args, self.components_, self.intercept_visible_,
                        self.intercept_hidden_, self.h_samples_, W_vel, b_vel, c_vel,
                        self._q_hidden, self.batch_size, self.k, self.persistent,
                        self.learning_rate, self.momentum, self.weight_decay,
                        self.sparsity_target, self.sparsity_cost, self._rng_seed,
                        self._rng_counter, n_blocks, n_threads,
                    )
                except KeyboardInterrupt:
                    # The compiled epoch runs to its end before Python sees the signal, so
                    # roll it back: the model is then exactly n_iter_ completed epochs.
                    self._restore_training_state(backup)
                    warnings.warn(
                        f"{type(self).__name__}: training interrupted; the model holds the "
                        f"weights after {self.n_iter_} completed epochs.",
                        RuntimeWarning, stacklevel=3,
                    )
                    break
                if not (np.isfinite(self.components_).all()
                        and np.isfinite(self.intercept_visible_).all()
                        and np.isfinite(self.intercept_hidden_).all()):
                    self._restore_training_state(backup)
                    raise FloatingPointError(
                        f"{type(self).__name__} diverged in epoch {self.n_iter_ + 1}: the "
                        "weights became non-finite (restored to the previous epoch). Lower "
                        "learning_rate or add weight_decay."
                    )
                self.n_iter_ += 1
                self.history_["reconstruction_error"].append(
                    float(self._reconstruction_error(X_history)))
                self.history_["time"].append(time.perf_counter() - start)
                progress.update(self.n_iter_,
                                reconstruction_error=self.history_["reconstruction_error"][-1],
                                time=self.history_["time"][-1])

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model to the data X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, binary or in [0, 1].
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : BernoulliRBM
            The fitted model.
        """
        X = self._validate_X(X, reset=True)
        self._warn_if_not_unit_interval(X)
        self._initialize(X.shape[1], check_random_state(self.random_state))
        self._run_epochs(X, self.n_iter)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Make one pass of mini-batches over X (one epoch on this chunk).

        Unlike scikit-learn's, which makes a single update on all of X, this streams: call
        it on successive chunks; the persistent chains, momentum and the sampling stream
        carry over between calls.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : BernoulliRBM
            The updated model.
        """
        first_call = not hasattr(self, "components_")
        X = self._validate_X(X, reset=first_call)
        self._warn_if_not_unit_interval(X)
        if first_call:
            self._initialize(X.shape[1], check_random_state(self.random_state))
        self._run_epochs(X, 1)
        return self

    # ----------------------------------------------------------------------------------
    # inference

    def _hidden_probs(self, X):
        acc = np.ascontiguousarray(safe_sparse_dot(X, self.components_.T, dense_output=True),
                                   dtype=self.components_.dtype)
        _sampling.sigmoid_rows(acc, self.intercept_hidden_, self._threads(16 * acc.size))
        return acc

    def _visible_probs(self, H):
        acc = np.ascontiguousarray(H @ self.components_)
        _sampling.sigmoid_rows(acc, self.intercept_visible_, self._threads(16 * acc.size))
        return acc

    def _reconstruction_error(self, X):
        V = self._visible_probs(self._hidden_probs(X))
        X = X.toarray() if sp.issparse(X) else X
        return np.mean((X - V) ** 2, dtype=np.float64)

    def _threads(self, work):
        return engine_threads(self.n_jobs, work)

    def _next_counter(self, n_draws):
        counter = self._rng_counter
        self._rng_counter += n_draws
        return counter

    def transform(self, X):
        """Compute the hidden layer activation probabilities, P(h=1|v=X).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data to be transformed.

        Returns
        -------
        h : ndarray of shape (n_samples, n_components)
            Latent representations of the data.
        """
        check_is_fitted(self)
        return self._hidden_probs(self._validate_X(X, reset=False))

    def reconstruct(self, X):
        """Mean-field reconstruction P(v=1 | h=P(h=1|v=X)).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data to reconstruct.

        Returns
        -------
        V : ndarray of shape (n_samples, n_features)
            Visible probabilities after one up-down pass.
        """
        check_is_fitted(self)
        return self._visible_probs(self._hidden_probs(self._validate_X(X, reset=False)))

    def gibbs(self, v):
        """Perform one Gibbs sampling step.

        Parameters
        ----------
        v : array-like of shape (n_samples, n_features)
            Values of the visible layer to start from.

        Returns
        -------
        v_new : ndarray of shape (n_samples, n_features)
            Values of the visible layer after one Gibbs step.
        """
        check_is_fitted(self)
        v = self._validate_X(v, reset=False)
        v = v.toarray() if sp.issparse(v) else v.copy()
        return self._gibbs_steps(v, 1)

    def _gibbs_steps(self, v, n_steps):
        h = np.empty((v.shape[0], self.n_components), dtype=v.dtype)
        counter = self._next_counter(2 * n_steps)
        with threadpool_limits(limits=1, user_api="blas"):
            _sampling.gibbs_chain(v, h, self.components_, self.intercept_visible_,
                                  self.intercept_hidden_, n_steps, self._rng_seed, counter,
                                  engine_blocks(v.size * self.n_components),
                                  self._threads(v.size * self.n_components))
        return v

    def sample(self, n_samples=1, n_steps=1000):
        """Generate visible samples by block Gibbs sampling.

        Each chain starts from the visible-bias-only distribution, Bernoulli(sigmoid(b)),
        and runs ``n_steps`` Gibbs steps.

        Parameters
        ----------
        n_samples : int, default=1
            Number of independent chains (samples returned).
        n_steps : int, default=1000
            Number of Gibbs steps per chain.

        Returns
        -------
        V : ndarray of shape (n_samples, n_features)
            Binary visible samples.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
        if not isinstance(n_steps, Integral) or n_steps < 0:
            raise ValueError(f"n_steps must be a non-negative int, got {n_steps!r}")
        dtype = self.components_.dtype
        shape = (n_samples, self.components_.shape[1])
        v = np.empty(shape, dtype)
        _sampling.sigmoid_sample_rows(np.zeros(shape, dtype), self.intercept_visible_, v,
                                      self._rng_seed, self._next_counter(1),
                                      self._threads(16 * v.size))
        return self._gibbs_steps(v, n_steps)

    def free_energy(self, X):
        """Free energy F(v) = -b.v - sum_j softplus(c_j + W_j.v), so P(v) ∝ exp(-F(v)).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Visible vectors.

        Returns
        -------
        F : ndarray of shape (n_samples,)
            Free energy of each row.
        """
        check_is_fitted(self)
        return self._free_energy(self._validate_X(X, reset=False))

    def _free_energy(self, X):
        pre = safe_sparse_dot(X, self.components_.T, dense_output=True) + self.intercept_hidden_
        return -safe_sparse_dot(X, self.intercept_visible_) - softplus(pre).sum(axis=1)

    def log_likelihood(self, X, method="auto", **kwargs):
        """Log-likelihood log p(x) = -F(x) - log Z of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Visible vectors.
        method : {"auto", "exact", "ais"}, default="auto"
            How to get log Z: ``"exact"`` enumerates the smaller layer (at most 25 units;
            cost 2**units GEMM rows), ``"ais"`` runs Annealed Importance Sampling (cost
            ``n_chains * n_betas`` Gibbs sweeps; a random estimate, fixed by
            ``random_state``), ``"auto"`` is exact up to 20 units in the smaller layer.
            See :func:`fastrbm.log_partition`.
        **kwargs
            Passed to :func:`fastrbm.log_partition` (``n_chains``, ``n_betas``,
            ``random_state``, ...). For AIS, ``X`` also sets the base-rate model unless
            ``base_X`` is given.

        Returns
        -------
        log_p : ndarray of shape (n_samples,)
            Log-likelihood of each row, in float64.
        """
        from .likelihood import log_partition

        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        if method == "auto":
            method = "exact" if min(self.components_.shape) <= 20 else "ais"
        if method == "ais":
            kwargs.setdefault("X", kwargs.pop("base_X", X))
        log_z = log_partition(self, method, **kwargs)
        return -self._free_energy(X).astype(np.float64) - log_z

    def score(self, X, y=None, method="auto", **kwargs):
        """Mean log-likelihood of the rows of X (see :meth:`log_likelihood`).

        Use this to compare models: it is the quantity training maximises. Use
        ``score_samples`` (pseudo-likelihood) only where scikit-learn's behaviour is
        needed: it is cheap but noisy and scaled by the number of features.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Visible vectors.
        y : Ignored
            Not used, present for API consistency by convention.
        method : {"auto", "exact", "ais"}, default="auto"
            How to compute log Z (exact up to 20 units in the smaller layer, else AIS).
        **kwargs
            Passed to :meth:`log_likelihood`.

        Returns
        -------
        score : float
            Mean log-likelihood in nats.
        """
        return float(np.mean(self.log_likelihood(X, method, **kwargs)))

    def score_samples(self, X):
        """Pseudo-likelihood of each row, as scikit-learn's BernoulliRBM computes it.

        One randomly chosen visible unit per row is flipped and the score is
        ``n_features * log sigmoid(F(v_flipped) - F(v))``: a noisy, cheap stand-in for the
        log-likelihood, useful to compare models of the same data. The flipped units are
        drawn from ``random_state`` afresh at each call, so the result is repeatable.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Values of the visible layer. Must be all-boolean (not checked).

        Returns
        -------
        pseudo_likelihood : ndarray of shape (n_samples,)
            Value of the pseudo-likelihood (proxy for likelihood).
        """
        check_is_fitted(self)
        v = self._validate_X(X, reset=False)
        rng = check_random_state(self.random_state)
        ind = (np.arange(v.shape[0]), rng.randint(0, v.shape[1], v.shape[0]))
        if sp.issparse(v):
            data = -2 * v[ind] + 1
            v_ = v + sp.csr_matrix((np.asarray(data).ravel(), ind), shape=v.shape)
        else:
            v_ = v.copy()
            v_[ind] = 1 - v_[ind]
        fe = self._free_energy(v)
        fe_ = self._free_energy(v_)
        return -v.shape[1] * softplus(-(fe_ - fe))

    @property
    def _n_features_out(self):
        """Number of transformed output features (for get_feature_names_out)."""
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = [self.dtype]
        return tags
