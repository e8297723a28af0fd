"""Restricted Boltzmann Machines as scikit-learn estimators.

The estimators here own parameters, validation, seeds and the epoch loop; everything that
samples runs in the compiled Gibbs engine (``fastrbm._kernels._sampling``).
"""
import time
import warnings
from numbers import Integral, Real
from typing import NamedTuple

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

from ._kernels import _sampling
from ._persistence import CheckpointMixin
from ._progress import EpochProgress
from ._utils import (blas_threads, draw_seed, engine_blocks, engine_threads, fit_dtype,
                     softplus)

__all__ = ["BernoulliRBM", "GaussianBernoulliRBM"]

# Rows used for the per-epoch reconstruction error: evenly spaced, the same rows every
# epoch. 256 rows x n_features terms give a steady estimate; on all of digits (1797 rows) it
# cost more than the ten training epochs themselves (measured: 0.18 s against 0.12 s).
_HISTORY_ROWS = 256

# The sliding factor of centring's offsets (Melchior, Fischer & Wiskott 2016, who
# recommend 0.01 for the hidden offset; the visible one slides alike).
_OFFSET_RATE = 0.01


class _Slot(NamedTuple):
    """One piece of an RBM's fitted state (see ``_BaseRBM._STATE``)."""

    #: The estimator's attribute, or None for arrays only the engine holds.
    attr: str | None
    #: "parameter" (watched by the divergence check), "optimizer", "chain", "stream"
    #: (the random stream's seed and counter) or "bookkeeping".
    role: str
    #: The engine's name for it (``GibbsEngine`` argument or attribute), None if the
    #: engine does not see it.
    engine: str | None = None
    #: Its key in checkpoint files: ``"name"``, or ``"name.i"`` for item i of the list
    #: stored as ``name``. Defaults to ``attr``.
    stored: str | None = None
    #: Added after checkpoints existed: absent from older files, where it means zeros
    #: (the state of a model that never used the feature).
    optional: bool = False

    @property
    def key(self):
        return self.stored or self.attr


class _BaseRBM(CheckpointMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
               BaseEstimator):
    """What every RBM here shares: validation, initialisation, the epoch loop (one compiled
    CD/PCD epoch per pass, with rollback on divergence or Ctrl-C), Gibbs sampling, the
    scikit-learn plumbing. Subclasses set the visible unit type and supply the few
    visible-specific pieces (hooks below); the hidden unit type is the ``hidden_units``
    parameter."""

    # Unit type of the visible layer, as the engine names it.
    _visible_units = "bernoulli"

    # The fitted state, declared once: the engine is built from the slots it sees (and
    # checks their shapes), rollback snapshots the engine, the divergence check watches
    # the parameters, checkpoints store every slot under its key (the velocities as the
    # list ``_velocity``, as files have always held them). Subclasses append slots.
    _STATE = (
        _Slot("components_", "parameter", "W"),
        _Slot("intercept_hidden_", "parameter", "c"),
        _Slot("intercept_visible_", "parameter", "b"),
        _Slot("h_samples_", "chain", "chains"),
        _Slot("_tempered_chains", "chain", "tempered_chains", optional=True),
        _Slot("_q_hidden", "optimizer", "q_hidden"),
        _Slot("visible_offset_", "optimizer", "visible_offset", optional=True),
        _Slot("hidden_offset_", "optimizer", "hidden_offset", optional=True),
        _Slot(None, "optimizer", "W_vel", "_velocity.0"),
        _Slot(None, "optimizer", "b_vel", "_velocity.1"),
        _Slot(None, "optimizer", "c_vel", "_velocity.2"),
        _Slot("_W_fast", "optimizer", "W_fast", optional=True),
        _Slot("_b_fast", "optimizer", "b_fast", optional=True),
        _Slot("_c_fast", "optimizer", "c_fast", optional=True),
        _Slot("n_features_in_", "bookkeeping"),
        _Slot("n_iter_", "bookkeeping"),
        _Slot("history_", "bookkeeping"),
        _Slot("_rng_seed", "stream", "seed"),
        _Slot("_rng_counter", "stream", "counter"),
        _Slot("_tempering_step", "stream", "tempering_step", optional=True),
        _Slot("swap_acceptance_", "bookkeeping", optional=True),
    )

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._derive_from_state()

    @classmethod
    def _derive_from_state(cls):
        """Set the names the checkpoint mixin and the divergence check use from _STATE."""
        arrays, values = [], []
        for slot in cls._STATE:
            name = slot.key.split(".")[0]
            target = values if slot.role in ("bookkeeping", "stream") else arrays
            if name not in target:
                target.append(name)
        cls._checkpoint_arrays, cls._checkpoint_values = tuple(arrays), tuple(values)
        cls._PARAMS = tuple(s.attr for s in cls._STATE if s.role == "parameter")

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
        "hidden_units": [StrOptions({"bernoulli", "nrelu", "gaussian"})],
        "centered": ["boolean"],
        "fast_learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "fast_weight_decay": [Interval(Real, 0, 1, closed="both")],
        "n_temperatures": [Interval(Integral, 1, None, closed="left")],
        "min_beta": [Interval(Real, 0, 1, closed="left")],
        "swap_every": [Interval(Integral, 1, None, closed="left")],
        "dtype": [StrOptions({"float32", "float64"}), None],
        "n_jobs": [Integral, None],
    }

    # ----------------------------------------------------------------------------------
    # hooks for the visible layer (Bernoulli here; GaussianBernoulliRBM overrides them)

    def _check_values(self, X):
        """Warn about data the visible units cannot model (called at the public boundary)."""

    def _initialize_visible(self, n_features, dtype):
        """Set the visible layer's parameters beyond the biases (their slots' attributes)."""

    def _engine_visible_args(self):
        """The visible layer as the sampling kernels take it: (units, log_var)."""
        return ("bernoulli", None)

    def _engine_visible_settings(self):
        """The visible layer's settings of ``GibbsEngine.configure``."""
        return {}

    def _hidden_input(self, X):
        """X @ W^T for the hidden layer (X may be sparse), C-contiguous, in W's dtype."""
        return np.ascontiguousarray(safe_sparse_dot(X, self.components_.T, dense_output=True),
                                    dtype=self.components_.dtype)

    def _visible_probs(self, H):
        acc = np.ascontiguousarray(H @ self.components_)
        _sampling.sigmoid_rows(acc, self.intercept_visible_, self._threads(16 * acc.size))
        return acc

    def _initial_visible(self, n_samples):
        """Samples of the visible-bias-only model, the start of ``sample``'s chains."""
        dtype = self.components_.dtype
        shape = (n_samples, self.components_.shape[1])
        v = np.empty(shape, dtype)
        _sampling.sigmoid_sample_rows(np.zeros(shape, dtype), self.intercept_visible_, v,
                                      self._rng_seed, self._next_counter(1),
                                      self._threads(16 * v.size))
        return v

    def _visible_free_energy(self, X):
        """The visible-only term of the free energy (the hidden units' term is shared)."""
        return -safe_sparse_dot(X, self.intercept_visible_)

    # ----------------------------------------------------------------------------------
    # data

    def _validate_X(self, X, *, reset):
        """Validated X: at fit in the dtype the ``dtype`` parameter gives (see
        :func:`fit_dtype`), afterwards in the fitted model's (the engine computes in one
        precision)."""
        dtype = fit_dtype(self.dtype) if reset else self.components_.dtype
        X = validate_data(self, X, accept_sparse="csr", dtype=dtype, order="C", reset=reset)
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

    # ----------------------------------------------------------------------------------
    # fitting

    def _initialize(self, n_features, dtype, rng):
        self.components_ = np.ascontiguousarray(
            rng.normal(0, 0.01, (self.n_components, n_features)), dtype=dtype
        )
        self.intercept_hidden_ = np.zeros(self.n_components, dtype=dtype)
        self.intercept_visible_ = np.zeros(n_features, dtype=dtype)
        self.h_samples_ = np.zeros((self.batch_size, self.n_components), dtype=dtype)
        # The running mean of hidden activations (the velocities start at zero).
        self._q_hidden = np.full(self.n_components, self.sparsity_target, dtype=dtype)
        # Centring's offsets: zero (the uncentred model) until _initialize_offsets.
        self.visible_offset_ = np.zeros(n_features, dtype=dtype)
        self.hidden_offset_ = np.zeros(self.n_components, dtype=dtype)
        # Fast weights (allocated when used, see _run_epochs).
        self._W_fast = np.zeros((0, n_features), dtype=dtype)
        self._b_fast = np.zeros(0, dtype=dtype)
        self._c_fast = np.zeros(0, dtype=dtype)
        # Parallel tempering: the chains below beta = 1 (allocated when used), the Gibbs
        # steps counted for swap_every, the last epoch's swap acceptance rates.
        self._tempered_chains = np.zeros((0, self.n_components), dtype=dtype)
        self._tempering_step = 0
        self.swap_acceptance_ = np.zeros(0)
        self._initialize_visible(n_features, dtype)
        # The sampling stream: one 64-bit seed plus a counter that every draw advances.
        self._rng_seed = draw_seed(rng)
        self._rng_counter = 0
        self.n_iter_ = 0
        self.history_ = {"reconstruction_error": [], "time": []}
        self._gibbs = None
        self._engine()

    def _engine(self, engine_only=None):
        """The Gibbs engine over this model's arrays, (re)built when an attribute no
        longer is the engine's array (a new fit, a changed batch size, an assignment); the
        engine checks shapes and dtypes then. Arrays only the engine holds (velocities)
        carry over from the previous engine, or come from ``engine_only``. The stream's
        position is copied in; callers copy it back with :meth:`_sync_stream`."""
        engine = getattr(self, "_gibbs", None)
        slots = [s for s in self._STATE if s.engine and s.role != "stream"]
        if engine is None or any(getattr(engine, s.engine) is not getattr(self, s.attr)
                                 for s in slots if s.attr):
            engine_only = engine_only or (engine.state() if engine is not None else {})
            arrays = {s.engine: getattr(self, s.attr) if s.attr else engine_only.get(s.engine)
                      for s in slots}
            names = {s.engine: s.key for s in slots}
            engine = self._gibbs = _sampling.GibbsEngine(**arrays, names=names)
            for s in slots:  # arrays the engine allocated (optional slots of old files)
                if s.attr and getattr(self, s.attr) is None:
                    setattr(self, s.attr, getattr(engine, s.engine))
        for slot in self._STATE:
            if slot.role == "stream":
                setattr(engine, slot.engine, getattr(self, slot.attr))
        return engine

    def _initialize_offsets(self, X):
        """Centring's starting offsets (Melchior et al. 2016): mu the mean of what the
        hidden layer sees of X, lambda the mean hidden activation of up to _HISTORY_ROWS
        evenly spaced rows; both then slide during training."""
        if not self.centered:
            return
        mean = np.asarray(X.mean(axis=0), dtype=np.float64).ravel()
        log_var = self._engine_visible_args()[1]
        self.visible_offset_[:] = mean if log_var is None else mean * np.exp(-log_var)
        rows = np.unique(np.linspace(0, X.shape[0] - 1, _HISTORY_ROWS).astype(np.intp))
        self.hidden_offset_[:] = self._hidden_probs(X[rows]).mean(axis=0)

    def _sync_stream(self, engine):
        """Copy the engine's stream position back into the estimator's attributes."""
        for slot in self._STATE:
            if slot.role == "stream":
                setattr(self, slot.attr, getattr(engine, slot.engine))

    @property
    def _velocity(self):
        """The velocities in their checkpoint order (the list stored as ``_velocity``)."""
        state = self._gibbs.state()
        slots = [s for s in self._STATE if s.key.startswith("_velocity.")]
        return [state[s.engine] for s in sorted(slots, key=lambda s: int(s.key.split(".")[1]))]

    def _checkpoint_restore(self, state):
        """Set the loaded state and build the engine on it, which checks every array's
        shape and dtype: a crafted file must not reach the compiled kernels with
        mismatched arrays."""
        state = dict(state)
        engine_only = {}
        for slot in self._STATE:
            if slot.attr is None:
                name, index = slot.key.split(".")
                items = state.get(name)
                if not isinstance(items, list) or int(index) >= len(items):
                    raise ValueError(f"{slot.key} is missing")
                engine_only[slot.engine] = items[int(index)]
        lists = {slot.key.split(".")[0] for slot in self._STATE if slot.attr is None}
        super()._checkpoint_restore({k: v for k, v in state.items() if k not in lists})
        for slot in self._STATE:  # written before the slot existed: None -> engine zeros
            if slot.optional and slot.attr and slot.attr not in state:
                setattr(self, slot.attr, {"stream": 0, "bookkeeping": np.zeros(0)}.get(
                    slot.role))
        shape = (self.n_components, self.n_features_in_)
        if getattr(self.components_, "shape", None) != shape:
            raise ValueError(f"components_ has shape {self.components_.shape}, expected "
                             f"{shape}")
        self._gibbs = None
        self._engine(engine_only)

    def _check_samplers(self):
        """Raise ValueError for combinations of the sampler parameters that do not exist
        (called before the model changes)."""
        if self.fast_learning_rate is not None and not self.persistent:
            raise ValueError("fast_learning_rate needs persistent=True: fast weights act on "
                             "the persistent chains only (Tieleman & Hinton 2009)")
        if self.n_temperatures > 1:
            if not self.persistent:
                raise ValueError("n_temperatures > 1 (parallel tempering) needs "
                                 "persistent=True: the tempered chains are persistent")
            if self._visible_units != "bernoulli" or self.hidden_units != "bernoulli":
                raise ValueError(
                    "n_temperatures > 1 (parallel tempering) is implemented for Bernoulli "
                    "visible and hidden units only: its swaps need the hidden marginal "
                    "at every temperature in closed form (see the class docstring)")

    def _betas(self):
        """The inverse temperatures of parallel tempering, 1 down to min_beta, linearly."""
        return np.linspace(1.0, self.min_beta, self.n_temperatures)

    def _run_epochs(self, X, n_epochs):
        """Run ``n_epochs`` passes of CD/PCD over X, recording the history."""
        work = self.batch_size * self.n_components * X.shape[1]
        if self.h_samples_.shape != (self.batch_size, self.n_components):
            self.h_samples_ = np.zeros((self.batch_size, self.n_components), X.dtype)
        if self.fast_learning_rate is not None and self._W_fast.shape != self.components_.shape:
            self._W_fast = np.zeros_like(self.components_)
            self._b_fast = np.zeros_like(self.intercept_visible_)
            self._c_fast = np.zeros_like(self.intercept_hidden_)
        tempered = ((self.n_temperatures - 1) * self.batch_size, self.n_components)
        if self.n_temperatures > 1 and self._tempered_chains.shape != tempered:
            self._tempered_chains = np.zeros(tempered, X.dtype)
        engine = self._engine().configure(
            learning_rate=self.learning_rate, momentum=self.momentum,
            weight_decay=self.weight_decay, sparsity_target=self.sparsity_target,
            sparsity_cost=self.sparsity_cost, k=self.k, persistent=self.persistent,
            batch_size=self.batch_size, hidden=self.hidden_units, centered=self.centered,
            offset_rate=_OFFSET_RATE, fast_learning_rate=self.fast_learning_rate or 0.0,
            fast_weight_decay=self.fast_weight_decay, betas=self._betas(),
            swap_every=self.swap_every,
            n_blocks=engine_blocks(work), n_threads=self._threads(work),
            **self._engine_visible_settings())
        history_rows = np.unique(np.linspace(0, X.shape[0] - 1, _HISTORY_ROWS).astype(np.intp))
        X_history = X[history_rows]
        progress = EpochProgress(type(self).__name__, n_epochs, self.verbose)
        with progress, blas_threads(1):
            for _ in range(n_epochs):
                start = time.perf_counter()
                engine.snapshot()
                try:
                    _sampling.cd_epoch(engine, X)
                except KeyboardInterrupt:
                    # The compiled epoch runs to its end before Python sees the signal, so
                    # roll it back: the model is then exactly n_iter_ completed epochs.
                    engine.restore()
                    self._sync_stream(engine)
                    warnings.warn(
                        f"{type(self).__name__}: training interrupted; the model holds the "
                        f"weights after {self.n_iter_} completed epochs.",
                        RuntimeWarning, stacklevel=3,
                    )
                    break
                # Diverged: non-finite weights, or finite ones too large to carry the data
                # through a Gibbs step (seen with unbounded nrelu units on unscaled data:
                # weights of 1e32, then inf reconstructions); the history rows are the probe.
                # Bernoulli visible units are bounded, so their next up pass is finite.
                finite = all(np.isfinite(getattr(self, name)).all() for name in self._PARAMS)
                with np.errstate(over="ignore", invalid="ignore"):
                    error, V = self._reconstruction(X_history) if finite else (np.nan, None)
                    finite = np.isfinite(error) and (self._visible_units == "bernoulli"
                                                     or np.isfinite(self._hidden_probs(V)).all())
                if not finite:
                    engine.restore()
                    self._sync_stream(engine)
                    raise FloatingPointError(
                        f"{type(self).__name__} diverged in epoch {self.n_iter_ + 1}: the "
                        "weights became non-finite or too large for a finite Gibbs step "
                        "(restored to the previous epoch). Lower learning_rate, add "
                        "weight_decay or scale the data."
                    )
                self._sync_stream(engine)
                if self.n_temperatures > 1:
                    self.swap_acceptance_ = engine.swap_accepted / np.maximum(
                        engine.swap_proposed, 1)
                self.n_iter_ += 1
                self.history_["reconstruction_error"].append(float(error))
                self.history_["time"].append(time.perf_counter() - start)
                if progress.verbose:
                    progress.update(self._iteration_line(X, self.history_["time"][-1]),
                                    reconstruction_error=error)

    def _iteration_line(self, X, seconds):
        """What ``verbose`` prints after an epoch: scikit-learn's line, with the mean
        pseudo-likelihood of X where it exists (Bernoulli units), else the reconstruction
        error."""
        if self._visible_units == "bernoulli" and self.hidden_units == "bernoulli":
            figure = f"pseudo-likelihood = {self._pseudo_likelihood(X).mean():.2f}"
        else:
            figure = f"reconstruction error = {self.history_['reconstruction_error'][-1]:.4f}"
        return f"[{type(self).__name__}] Iteration {self.n_iter_}, {figure}, time = {seconds:.2f}s"

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model to the data X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data: binary or in [0, 1] for Bernoulli visible units, real-valued
            (standardised) for Gaussian ones.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted model.
        """
        X = self._validate_X(X, reset=True)
        self._check_values(X)
        self._check_samplers()
        self._initialize(X.shape[1], X.dtype, check_random_state(self.random_state))
        self._initialize_offsets(X)
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
        self : object
            The updated model.
        """
        first_call = not hasattr(self, "components_")
        X = self._validate_X(X, reset=first_call)
        self._check_values(X)
        self._check_samplers()
        if first_call:
            self._initialize(X.shape[1], X.dtype, check_random_state(self.random_state))
            self._initialize_offsets(X)
        self._run_epochs(X, 1)
        return self

    # ----------------------------------------------------------------------------------
    # inference

    def _hidden_probs(self, X):
        acc = self._hidden_input(X)
        if self.hidden_units != "bernoulli":
            acc += self.intercept_hidden_
            return acc if self.hidden_units == "gaussian" else np.maximum(acc, 0, out=acc)
        _sampling.sigmoid_rows(acc, self.intercept_hidden_, self._threads(16 * acc.size))
        return acc

    def _reconstruction(self, X):
        """``(mean squared reconstruction error, mean-field reconstruction V)`` of X."""
        V = self._visible_probs(self._hidden_probs(X))
        X = X.toarray() if sp.issparse(X) else X
        return np.mean((X - V) ** 2, dtype=np.float64), V

    def _threads(self, work):
        return engine_threads(self.n_jobs, work)

    def _next_counter(self, n_draws):
        counter = self._rng_counter
        self._rng_counter += n_draws
        return counter

    def transform(self, X):
        """Compute the hidden layer activations.

        P(h=1|v=X) for Bernoulli hidden units; for noisy rectified hidden units their
        noise-free value max(0, c + W v) (Nair & Hinton 2010); for Gaussian (linear) hidden
        units their mean c + W v.

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
        """Mean-field reconstruction of X.

        The mean of the visible units given the hidden activations of X (see
        :meth:`transform`).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data to reconstruct.

        Returns
        -------
        V : ndarray of shape (n_samples, n_features)
            Visible probabilities (Bernoulli units) or means (Gaussian units) after one
            up-down pass.
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
        engine = self._engine()
        work = v.size * self.n_components
        with blas_threads(1):
            engine.gibbs(v, n_steps, hidden=self.hidden_units, n_blocks=engine_blocks(work),
                         n_threads=self._threads(work))
        self._sync_stream(engine)
        return v

    def sample(self, n_samples=1, n_steps=1000):
        """Generate visible samples by block Gibbs sampling.

        Each chain starts from the visible-bias-only distribution (Bernoulli(sigmoid(b)),
        or N(b, sigma^2) for Gaussian units) and runs ``n_steps`` Gibbs steps.

        Parameters
        ----------
        n_samples : int, default=1
            Number of independent chains (samples returned).
        n_steps : int, default=1000
            Number of Gibbs steps per chain.

        Returns
        -------
        V : ndarray of shape (n_samples, n_features)
            Visible samples (binary for Bernoulli units).
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
        if not isinstance(n_steps, Integral) or n_steps < 0:
            raise ValueError(f"n_steps must be a non-negative int, got {n_steps!r}")
        return self._gibbs_steps(self._initial_visible(n_samples), n_steps)

    def free_energy(self, X):
        """Free energy F(v), so that P(v) ∝ exp(-F(v)).

        ``F(v) = -b.v - sum_j softplus(c_j + W_j.v)`` for Bernoulli visible units;
        ``sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + W_j.(v / sigma^2))``
        for Gaussian ones. Gaussian (linear) hidden units, with
        ``E(v, h) = -b.v - c.h - h.W v + |h|^2 / 2``, replace the softplus sum by
        ``sum_j ((c_j + W_j.v)^2 + log 2 pi) / 2``.
        Noisy rectified units are a sampling approximation (Nair & Hinton 2010) with no
        energy function, so this raises ``NotImplementedError`` for
        ``hidden_units="nrelu"``.

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

    def _check_energy_defined(self, what, partition=False):
        """Raise NotImplementedError where ``what`` does not exist for the hidden units:
        the free energy of noisy rectified units, and (``partition``) log Z of anything
        but Bernoulli hidden units."""
        if self.hidden_units == "nrelu":
            raise NotImplementedError(
                f"{what} is defined for hidden_units='bernoulli' only: noisy rectified "
                "linear units (Nair & Hinton 2010) are sampled by an approximation that has "
                "no energy function, so their free energy and likelihood do not exist. "
                "Compare such models by reconstruction error (history_) instead.")
        if partition and self.hidden_units == "gaussian":
            raise NotImplementedError(
                f"{what} is not implemented for hidden_units='gaussian': log Z (exact or by "
                "AIS) is implemented for Bernoulli hidden units only. The free energy and "
                "the pseudo-likelihood (score_samples) exist; compare models by those or "
                "by reconstruction error (history_).")

    def _free_energy(self, X):
        self._check_energy_defined("the free energy")
        pre = self._hidden_input(X) + self.intercept_hidden_
        if self.hidden_units == "gaussian":  # the Gaussian integral over each h_j
            hidden = 0.5 * (np.square(pre) + np.log(2 * np.pi)).sum(axis=1)
        else:
            hidden = softplus(pre).sum(axis=1)
        return self._visible_free_energy(X) - hidden

    def log_likelihood(self, X, method="auto", **kwargs):
        """Log-likelihood log p(x) = -F(x) - log Z of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Visible vectors.
        method : {"auto", "exact", "ais"}, default="auto"
            How to get log Z: ``"exact"`` enumerates the smaller layer (at most 25 units;
            cost 2**units GEMM rows; for Gaussian visible units always the hidden layer),
            ``"ais"`` runs Annealed Importance Sampling (cost ``n_chains * n_betas`` Gibbs
            sweeps; a random estimate, fixed by ``random_state``), ``"auto"`` is exact up
            to 20 units in the layer it would enumerate. See :func:`fastrbm.log_partition`.
        **kwargs
            Passed to :func:`fastrbm.log_partition` (``n_chains``, ``n_betas``,
            ``random_state``, ...). For AIS, ``X`` also sets the base-rate model unless
            ``base_X`` is given, and ``random_state`` defaults to the estimator's.

        Returns
        -------
        log_p : ndarray of shape (n_samples,)
            Log-likelihood of each row, in float64 (a log-density for Gaussian units).
        """
        from .likelihood import log_partition

        check_is_fitted(self)
        self._check_energy_defined("the log-likelihood", partition=True)
        X = self._validate_X(X, reset=False)
        if method == "auto":
            method = "exact" if self._exact_units() <= 20 else "ais"
        if method == "ais":
            kwargs.setdefault("X", kwargs.pop("base_X", X))
            # the estimator's seed, so that score is repeatable (scikit-learn's checks
            # compare two calls) unless a random_state is passed
            kwargs.setdefault("random_state", self.random_state)
        log_z = log_partition(self, method, **kwargs)
        return -self._free_energy(X).astype(np.float64) - log_z

    def _exact_units(self):
        """How many units exact log Z enumerates."""
        return min(self.components_.shape)

    def score(self, X, y=None, method="auto", **kwargs):
        """Mean log-likelihood of the rows of X (see :meth:`log_likelihood`).

        Use this to compare models: it is the quantity training maximises.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Visible vectors.
        y : Ignored
            Not used, present for API consistency by convention.
        method : {"auto", "exact", "ais"}, default="auto"
            How to compute log Z (exact up to 20 enumerated units, else AIS).
        **kwargs
            Passed to :meth:`log_likelihood`.

        Returns
        -------
        score : float
            Mean log-likelihood in nats.
        """
        return float(np.mean(self.log_likelihood(X, method, **kwargs)))

    @property
    def _n_features_out(self):
        """Number of transformed output features (for get_feature_names_out)."""
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = (
            ["float64", "float32"] if self.dtype is None else [self.dtype])
        return tags


_BaseRBM._derive_from_state()


class BernoulliRBM(_BaseRBM):
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
        0: silent. 1 or more: scikit-learn's line after each epoch on stdout,
        ``[BernoulliRBM] Iteration 1, pseudo-likelihood = -21.07, time = 0.12s`` (the
        reconstruction error instead of the pseudo-likelihood for ``hidden_units="nrelu"``);
        at a terminal also a progress bar on stderr (tqdm, see
        :func:`fastrbm.set_progress_bar`).
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
    hidden_units : {"bernoulli", "nrelu", "gaussian"}, default="bernoulli"
        Type of the hidden units. ``"nrelu"``: noisy rectified linear units (Nair & Hinton
        2010), sampled as max(0, x + N(0, sigmoid(x))) for total input x; ``transform``
        then returns their noise-free value max(0, x), which also stands in for the
        probabilities in the learning statistics. They have no energy function, so
        ``free_energy``, ``score_samples``, ``log_likelihood`` and ``score`` raise
        ``NotImplementedError`` for them. ``"gaussian"``: linear units with unit-variance
        Gaussian noise, h ~ N(x, 1) (the top layer of Hinton & Salakhutdinov 2006's deep
        autoencoder); ``transform`` returns their mean x = c + W v, which also stands in
        for the probabilities in the learning statistics. They want a learning rate
        about ten times smaller than binary units (Hinton & Salakhutdinov used 0.001).
        ``free_energy`` and ``score_samples`` exist for them; ``log_likelihood`` and
        ``score`` raise ``NotImplementedError`` (log Z is implemented for Bernoulli
        hidden units only).
    centered : bool, default=False
        Centring (Montavon & Mueller 2012; Melchior, Fischer & Wiskott 2016): take each
        gradient in the parameterisation E = -(v - mu).b' - c'.(h - lambda) - (h -
        lambda).W (v - mu), with offsets mu (``visible_offset_``: starts at the data
        mean) and lambda (``hidden_offset_``: starts at the mean hidden activation on the
        data), both sliding toward each mini-batch's data means by 0.01 (the paper's
        sliding factor). The gradient is better conditioned, which mostly helps deeper
        models and data whose means are far from 1/2. ``components_`` and the intercepts
        stay the equivalent uncentred parameters after every update, so every other
        method works unchanged.
    fast_learning_rate : float or None, default=None
        Fast-weights PCD (Tieleman & Hinton 2009; needs ``persistent=True``): a second
        set of weights and biases, learning from the same gradient at this (larger) rate
        and shrinking at every update, is added to the regular parameters for the
        persistent chains only, so that the chains move away from where they have been
        and mix faster. Tieleman & Hinton set it to the regular learning rate's starting
        value. None: off. The fast parameters are training state (checkpointed, rolled
        back), not part of the model: ``transform``, ``score`` and sampling use the
        regular parameters.
    fast_weight_decay : float, default=0.05
        Fraction of the fast parameters lost at each update (0.05: multiplied by 19/20,
        as Tieleman & Hinton).
    n_temperatures : int, default=1
        Parallel tempering (Desjardins et al. 2010; Cho, Raiko & Ilin 2010) when above 1
        (needs ``persistent=True`` and Bernoulli hidden units): ``batch_size`` persistent
        chains at each of ``n_temperatures`` inverse temperatures 1 = beta_0 > ... >
        ``min_beta``, spaced linearly, the chains at beta sampling exp(-beta E(v, h)) (the
        whole energy, biases included, scaled). Neighbouring temperatures swap states
        every ``swap_every`` Gibbs steps with the Metropolis acceptance; the beta = 1
        chains supply the negative statistics. A Gibbs step then costs about
        ``n_temperatures`` times as much; ``swap_acceptance_`` reports the swap rates.
        They fall as the model grows: on binarised Fashion-MNIST (784 pixels, 500 hidden
        units) neighbours 0.3 apart or more almost never swapped, while 10 temperatures
        down to 0.1 swapped 6-18% of the time (the pair at the hot end under 1%).
        Where a rate stays near 0, add temperatures or raise ``min_beta``.
    min_beta : float, default=0.1
        The lowest inverse temperature of parallel tempering, in [0, 1).
    swap_every : int, default=1
        Gibbs steps between two rounds of swap proposals (all neighbouring pairs, coldest
        first).
    dtype : {"float32", "float64"} or None, default=None
        Precision of the parameters and of all computation. None: that of the training
        data, as scikit-learn's estimators (float32 stays float32, float64 stays float64,
        anything else becomes float64); a string forces it. After fitting, input is
        converted to the model's precision.
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
    visible_offset_, hidden_offset_ : ndarray of shape (n_features,), (n_components,)
        Centring's offsets mu and lambda (see ``centered``); zero when not centred.
    swap_acceptance_ : ndarray of shape (n_temperatures - 1,)
        With parallel tempering, the fraction of accepted swaps between inverse
        temperatures beta_m and beta_m+1 in the last epoch (empty without).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string feature names.
    n_iter_ : int
        Number of epochs run (cumulative over ``partial_fit`` calls).
    history_ : dict of lists
        Per-epoch training history: ``"reconstruction_error"`` (mean squared error of the
        mean-field reconstruction on up to 256 evenly spaced training rows) and
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
    V. Nair and G. Hinton (2010). Rectified linear units improve restricted Boltzmann
    machines. ICML.
    G. Hinton and R. Salakhutdinov (2006). Reducing the dimensionality of data with
    neural networks. Science 313.
    G. Montavon and K.-R. Mueller (2012). Deep Boltzmann machines and the centering
    trick. Neural Networks: Tricks of the Trade.
    J. Melchior, A. Fischer and L. Wiskott (2016). How to center deep Boltzmann machines.
    JMLR 17.
    T. Tieleman and G. Hinton (2009). Using fast weights to improve persistent
    contrastive divergence. ICML.
    G. Desjardins, A. Courville, Y. Bengio, P. Vincent and O. Delalleau (2010). Tempered
    Markov chain Monte Carlo for training of restricted Boltzmann machines. AISTATS.
    K. Cho, T. Raiko and A. Ilin (2010). Parallel tempering is efficient for learning
    restricted Boltzmann machines. IJCNN.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrbm import BernoulliRBM
    >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
    >>> model = BernoulliRBM(n_components=2, random_state=0).fit(X)
    >>> model.transform(X).shape
    (4, 2)
    """

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
        hidden_units="bernoulli",
        centered=False,
        fast_learning_rate=None,
        fast_weight_decay=0.05,
        n_temperatures=1,
        min_beta=0.1,
        swap_every=1,
        dtype=None,
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
        self.hidden_units = hidden_units
        self.centered = centered
        self.fast_learning_rate = fast_learning_rate
        self.fast_weight_decay = fast_weight_decay
        self.n_temperatures = n_temperatures
        self.min_beta = min_beta
        self.swap_every = swap_every
        self.dtype = dtype
        self.n_jobs = n_jobs

    def _check_values(self, X):
        values = X.data if sp.issparse(X) else X
        if values.size and (values.min() < 0 or values.max() > 1):
            warnings.warn(
                "BernoulliRBM models binary data or probabilities in [0, 1]; X has values in "
                f"[{values.min():.3g}, {values.max():.3g}]. Scale it first, e.g. with "
                "sklearn.preprocessing.MinMaxScaler.",
                UserWarning,
                stacklevel=3,
            )

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
        return self._pseudo_likelihood(self._validate_X(X, reset=False))

    # scikit-learn's private helpers, for code written against its BernoulliRBM.
    def _mean_hiddens(self, v):
        """P(h=1|v) of a row or rows (scikit-learn's private name for :meth:`transform`)."""
        v = v if sp.issparse(v) else np.asarray(v)
        return self._hidden_probs(v[None])[0] if v.ndim == 1 else self._hidden_probs(v)

    def _sample_hiddens(self, v, rng):
        """A hidden sample given v, drawn from the NumPy ``rng`` (scikit-learn's helper)."""
        p = self._mean_hiddens(v)
        if self.hidden_units == "gaussian":
            return p + rng.standard_normal(size=p.shape)
        return rng.uniform(size=p.shape) < p

    def _pseudo_likelihood(self, v):
        self._check_energy_defined("the pseudo-likelihood")
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


# Learned standard deviations are kept in [0.1, 10] (the log-variance in [2 log 0.1,
# 2 log 10]). The step of the visible biases scales as learning_rate / sigma^2, so below
# sigma ~ sqrt(learning_rate) they oscillate and the hidden inputs v / sigma^2 blow up;
# standardised data needs neither a sigma under 0.1 (99% of a feature's variance
# explained) nor one over 10.
SIGMA_BOUNDS = (0.1, 10.0)


class GaussianBernoulliRBM(_BaseRBM):
    """Restricted Boltzmann Machine with Gaussian visible units, for real-valued data.

    The visible units are linear with Gaussian noise of standard deviation sigma_i per
    feature, the hidden units binary (or noisy rectified linear). In the parameterisation
    of Cho, Raiko & Ilin (2011), with sigma_i^2 = exp(z_i),

    E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c.h - sum_ij h_j W_ji v_i / sigma_i^2,

    so P(h_j = 1 | v) = sigmoid(c_j + W_j.(v / sigma^2)) and v | h ~ N(b + W^T h, sigma^2).
    By default sigma is fixed at 1, which suits standardised data (each feature scaled to
    zero mean and unit variance, e.g. with :class:`sklearn.preprocessing.StandardScaler`);
    ``learn_sigma=True`` learns z by gradient ascent as Cho et al. (2011), clipped to
    sigma in ``fastrbm.rbm.SIGMA_BOUNDS`` = [0.1, 10].

    The API, training loop (compiled CD-k / PCD-k), checkpoints and reproducibility are
    those of :class:`BernoulliRBM`. The defaults train stably on standardised data without
    tuning: a learning rate ten times smaller than for binary data (Hinton 2010, section
    13.2), CD-1, weights initialised N(0, 0.01). If training diverges anyway, ``fit``
    raises ``FloatingPointError`` and keeps the model of the last finite epoch.

    Parameters
    ----------
    n_components : int, default=256
        Number of hidden units.
    learning_rate : float, default=0.01
        Learning rate of the updates (the gradient is averaged over the mini-batch).
    batch_size : int, default=10
        Number of examples per mini-batch (also the number of persistent chains).
    n_iter : int, default=10
        Number of passes over the training data (epochs).
    verbose : int, default=0
        0: silent. 1 or more: a line after each epoch on stdout,
        ``[GaussianBernoulliRBM] Iteration 1, reconstruction error = 0.5012, time = 0.12s``;
        at a terminal also a progress bar on stderr (see :func:`fastrbm.set_progress_bar`).
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation and the sampling. The same seed gives a
        bit-identical model whatever the number of threads.
    k : int, default=1
        Number of Gibbs steps per update (CD-k / PCD-k).
    persistent : bool, default=False
        False: CD-k, each chain starts at the data (Hinton 2002). True: persistent CD
        (Tieleman 2008), the chains carry over between mini-batches.
    momentum : float, default=0.0
        Momentum of the parameter updates, in [0, 1).
    weight_decay : float, default=0.0
        L2 penalty coefficient on the weights.
    sparsity_target : float, default=0.1
        Target mean activation of each hidden unit (used when ``sparsity_cost > 0``).
    sparsity_cost : float, default=0.0
        Strength of the sparsity penalty (Hinton 2010, section 11).
    hidden_units : {"bernoulli", "nrelu"}, default="bernoulli"
        Type of the hidden units; ``"nrelu"`` are the noisy rectified linear units of Nair
        & Hinton (2010), see :class:`BernoulliRBM`. Free energy and likelihoods exist for
        Bernoulli hidden units only. With both layers unbounded, ``"nrelu"`` trains with
        CD (as Nair & Hinton); PCD can run away (the clear error below) unless the learning
        rate is lowered. Noisy rectified units have no closed-form free energy, so
        their models have no log-likelihood (``NotImplementedError``).
    learn_sigma : bool, default=False
        Learn each visible unit's standard deviation (through z = log sigma^2, Cho et al.
        2011), starting at 1, with the same learning rate and momentum as the weights.
    centered : bool, default=False
        Centring (Melchior, Fischer & Wiskott 2016), as :class:`BernoulliRBM`; the visible
        offset is a mean of v / sigma^2, what the hidden layer sees.
    fast_learning_rate : float or None, default=None
        Fast-weights PCD (Tieleman & Hinton 2009), as :class:`BernoulliRBM` (needs
        ``persistent=True``).
    fast_weight_decay : float, default=0.05
        As :class:`BernoulliRBM`.
    n_temperatures : int, default=1
        Parallel tempering, see :class:`BernoulliRBM`. Not implemented for Gaussian
        visible units: values above 1 raise ``ValueError``. (Scaling their whole energy by
        beta, as the Bernoulli case does, would keep the visible means and widen the noise
        to sigma / sqrt(beta), and the swaps would use the hidden marginal with the
        visible units integrated out; that is not written yet).
    min_beta : float, default=0.1
        As :class:`BernoulliRBM` (unused here).
    swap_every : int, default=1
        As :class:`BernoulliRBM` (unused here).
    dtype : {"float32", "float64"} or None, default=None
        Precision of the parameters and of all computation. None: that of the training
        data (float32 stays float32, anything else becomes float64); a string forces it.
    n_jobs : int, default=None
        Number of threads of the compiled engine. The model does not depend on it.

    Attributes
    ----------
    intercept_hidden_ : ndarray of shape (n_components,)
        Biases of the hidden units.
    intercept_visible_ : ndarray of shape (n_features,)
        Biases (means given h = 0) of the visible units.
    components_ : ndarray of shape (n_components, n_features)
        Weight matrix, W[j, i] connects hidden unit j and visible unit i.
    sigma_ : ndarray of shape (n_features,)
        Standard deviation of each visible unit (all 1 unless ``learn_sigma``).
    h_samples_ : ndarray of shape (batch_size, n_components)
        Hidden states of the persistent chains.
    visible_offset_, hidden_offset_ : ndarray of shape (n_features,), (n_components,)
        Centring's offsets mu and lambda (see ``centered``); zero when not centred.
    swap_acceptance_ : ndarray of shape (n_temperatures - 1,)
        With parallel tempering, the fraction of accepted swaps between inverse
        temperatures beta_m and beta_m+1 in the last epoch (empty without).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string feature names.
    n_iter_ : int
        Number of epochs run (cumulative over ``partial_fit`` calls).
    history_ : dict of lists
        Per-epoch training history: ``"reconstruction_error"`` (mean squared error of the
        mean-field reconstruction on up to 256 evenly spaced training rows) and
        ``"time"`` (seconds).

    See Also
    --------
    BernoulliRBM : Binary visible units.

    Notes
    -----
    :meth:`log_likelihood` and :meth:`score` get log Z exactly (enumerating the hidden
    states, the visible integral in closed form; ``method="auto"`` does so up to 20 hidden
    units) or by Annealed Importance Sampling (``method="ais"``, and ``"auto"`` above 20).
    AIS integrates the visible units in closed form too and anneals the hidden units'
    marginal with sequential Gibbs sweeps (see :func:`fastrbm.log_partition`): at most
    n_hidden**2 operations per temperature and chain, about 10 s for 256 hidden units at
    the default 100 chains x 10000 temperatures on two cores. ``score_samples`` is the
    exact log-density and needs at most 25 hidden units. Noisy rectified hidden units have
    no closed-form free energy, so no log-likelihood by either method.

    References
    ----------
    G. Hinton (2010). A practical guide to training restricted Boltzmann machines.
    UTML TR 2010-003, section 13.2.
    K. Cho, T. Raiko and A. Ilin (2011). Improved learning of Gaussian-Bernoulli
    restricted Boltzmann machines. ICANN.
    V. Nair and G. Hinton (2010). Rectified linear units improve restricted Boltzmann
    machines. ICML.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import StandardScaler
    >>> from fastrbm import GaussianBernoulliRBM
    >>> X = StandardScaler().fit_transform(np.random.default_rng(0).normal(size=(100, 5)))
    >>> model = GaussianBernoulliRBM(n_components=3, random_state=0).fit(X)
    >>> model.transform(X).shape
    (100, 3)
    """

    _visible_units = "gaussian"
    _STATE = _BaseRBM._STATE + (
        _Slot("_log_var", "parameter", "log_var"),
        _Slot(None, "optimizer", "log_var_vel", "_velocity.3"),
    )

    _parameter_constraints: dict = {
        **_BaseRBM._parameter_constraints,
        # Gaussian hidden units on Gaussian visible ones make a joint Gaussian whose
        # precision matrix training does not keep positive definite: not offered.
        "hidden_units": [StrOptions({"bernoulli", "nrelu"})],
        "learn_sigma": ["boolean"],
    }

    def __init__(
        self,
        n_components=256,
        *,
        learning_rate=0.01,
        batch_size=10,
        n_iter=10,
        verbose=0,
        random_state=None,
        k=1,
        persistent=False,
        momentum=0.0,
        weight_decay=0.0,
        sparsity_target=0.1,
        sparsity_cost=0.0,
        hidden_units="bernoulli",
        learn_sigma=False,
        centered=False,
        fast_learning_rate=None,
        fast_weight_decay=0.05,
        n_temperatures=1,
        min_beta=0.1,
        swap_every=1,
        dtype=None,
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
        self.hidden_units = hidden_units
        self.learn_sigma = learn_sigma
        self.centered = centered
        self.fast_learning_rate = fast_learning_rate
        self.fast_weight_decay = fast_weight_decay
        self.n_temperatures = n_temperatures
        self.min_beta = min_beta
        self.swap_every = swap_every
        self.dtype = dtype
        self.n_jobs = n_jobs

    @property
    def sigma_(self):
        """Standard deviation of each visible unit, exp(z / 2) (see the class docstring)."""
        return np.exp(0.5 * self._log_var)

    def _initialize_visible(self, n_features, dtype):
        self._log_var = np.zeros(n_features, dtype=dtype)  # sigma = 1

    def _engine_visible_args(self):
        return ("gaussian", self._log_var)

    def _engine_visible_settings(self):
        low, high = (2 * float(np.log(s)) for s in SIGMA_BOUNDS)
        return dict(learn_log_var=self.learn_sigma, log_var_min=low, log_var_max=high)

    def _hidden_input(self, X):
        W = self.components_
        if np.any(self._log_var != 0):  # the hidden units see v / sigma^2
            W = W * np.exp(-self._log_var)
        return np.ascontiguousarray(safe_sparse_dot(X, W.T, dense_output=True),
                                    dtype=self.components_.dtype)

    def _visible_probs(self, H):
        return H @ self.components_ + self.intercept_visible_

    def _initial_visible(self, n_samples):
        dtype = self.components_.dtype
        shape = (n_samples, self.components_.shape[1])
        v = np.empty(shape, dtype)
        _sampling.gaussian_sample_rows(np.zeros(shape, dtype), self.intercept_visible_,
                                       self.sigma_.astype(dtype), v, self._rng_seed,
                                       self._next_counter(1), self._threads(16 * v.size))
        return v

    def _visible_free_energy(self, X):
        X = X.toarray() if sp.issparse(X) else X
        return 0.5 * ((X - self.intercept_visible_) ** 2 * np.exp(-self._log_var)).sum(axis=1)

    def _exact_units(self):
        return self.n_components  # the visible layer is continuous: enumerate the hidden one

    def score_samples(self, X):
        """Log-density of each row under the model (exact, see :meth:`log_likelihood`).

        Unlike :meth:`BernoulliRBM.score_samples` (a pseudo-likelihood), this is the exact
        log p(x), so it needs ``n_components <= 25``; use :meth:`log_likelihood` with
        ``method="ais"`` for larger models.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Visible vectors.

        Returns
        -------
        log_p : ndarray of shape (n_samples,)
            Log-density of each row, in float64.
        """
        return self.log_likelihood(X, method="exact")
