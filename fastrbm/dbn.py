"""Deep Belief Networks: greedy layer-wise RBM pretraining, then backprop fine-tuning.

:class:`DBN` is the unsupervised stack of RBMs (a transformer and a generative model).
:class:`DBNClassifier` and :class:`DBNRegressor` unroll a pretrained stack into a
feed-forward net and fine-tune all layers with the compiled dense backprop engine
(``fastrbm._kernels.backprop``); with ``pretrain=False`` the identical net starts from
Glorot-style random weights, the control that shows what pretraining buys.

The estimators own parameters, validation, seeds and initialisation; the epoch loop
(schedules, early stopping, roll-back on divergence or Ctrl-C) and the nets' fitted state
are ``fastrbm._network``'s; every mini-batch runs in compiled code.
"""
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    RegressorMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.sparsefuncs import mean_variance_axis
from sklearn.utils.validation import check_is_fitted, validate_data

from ._kernels import _sampling
from ._kernels import backprop as _bp
from ._network import (MLP_CONSTRAINTS, ClassifierOutput, DenseTrainer, RegressorOutput,
                       check_standardisation, engine_array, mean_and_scale,
                       unchanged_on_error)
from ._persistence import CheckpointMixin
from ._utils import blas_threads, draw_seed, engine_blocks, engine_threads, fit_dtype
from .rbm import BernoulliRBM, GaussianBernoulliRBM

__all__ = ["DBN", "DBNClassifier", "DBNRegressor"]

# THE ONE PLACE where the class of the bottom RBM is chosen: ``first_layer`` -> RBM class.
# Its keys and "auto" are the allowed values of every estimator's ``first_layer``. Upper
# layers always model hidden probabilities in [0, 1], so they stay Bernoulli.
_FIRST_LAYER_CLASSES = {"bernoulli": BernoulliRBM, "gaussian": GaussianBernoulliRBM}
_FIRST_LAYER_OPTIONS = {"auto", *_FIRST_LAYER_CLASSES}

# Pretraining learning rate "auto", by visible units: Gaussian visible units want one
# about ten times smaller than binary ones (Hinton 2010, section 13.2).
_AUTO_PRETRAIN_LEARNING_RATES = {"bernoulli": 0.1, "gaussian": 0.01}

# Pretraining epochs "auto": enough epochs for this many mini-batch updates per layer, at
# most _PRETRAIN_MAX_EPOCHS (20 epochs of a 3000-row set at batch 10), at least one. The
# cost of pretraining is then bounded by the budget, not by the number of rows.
_PRETRAIN_UPDATES = 6000
_PRETRAIN_MAX_EPOCHS = 20

def _rbm_class(first_layer, layer):
    return _FIRST_LAYER_CLASSES[first_layer] if layer == 0 else BernoulliRBM


def _resolve_first_layer(first_layer, X):
    """"bernoulli" or "gaussian": "auto" gives Bernoulli visible units to data in [0, 1]
    and Gaussian ones to anything else (a Bernoulli RBM cannot model it)."""
    if first_layer != "auto":
        return first_layer
    values = X.data if sp.issparse(X) else X
    in_unit_interval = values.size == 0 or (values.min() >= 0 and values.max() <= 1)
    return "bernoulli" if in_unit_interval else "gaussian"


def _standardisation(X, first_layer):
    """Per-feature ``(mean, scale)`` giving a Gaussian first layer the zero-mean,
    unit-variance data its unit-variance visible units model; ``(None, None)`` for a
    Bernoulli first layer, which takes X as given. Sparse X is scaled only (mean 0) so it
    stays sparse (the visible biases learn the means); constant features get scale 1."""
    if first_layer != "gaussian":
        return None, None
    if sp.issparse(X):
        _, var = mean_variance_axis(X, axis=0)
        return mean_and_scale(np.zeros(X.shape[1]), var, X.dtype)
    return mean_and_scale(X.mean(axis=0, dtype=np.float64), X.var(axis=0, dtype=np.float64),
                           X.dtype)


def _standardised(X, mean, scale):
    """X mapped by the fitted ``(mean, scale)`` (X itself when they are None), in X's dtype;
    sparse X stays sparse when the mean is 0, else it becomes dense."""
    if mean is None:
        return X
    if sp.issparse(X):
        if not mean.any():
            return sp.csr_matrix(X.multiply(1 / scale), dtype=X.dtype)
        X = X.toarray()
    return np.ascontiguousarray((X - mean) / scale)


def _pretrain_epochs(n_samples, batch_size):
    """Pretraining epochs "auto": _PRETRAIN_UPDATES mini-batch updates, 1 to 20 epochs."""
    updates_per_epoch = -(-n_samples // batch_size)
    return int(np.clip(-(-_PRETRAIN_UPDATES // updates_per_epoch), 1, _PRETRAIN_MAX_EPOCHS))


def _per_layer(value, n_layers, name):
    """``value`` repeated for each layer, or its entries when it holds one per layer."""
    if isinstance(value, str) or np.ndim(value) == 0:
        return [value] * n_layers
    values = list(value)
    if len(values) != n_layers:
        raise ValueError(f"{name} holds {len(values)} values for {n_layers} layers; give one "
                         "value for all layers or exactly one per layer")
    return values


def _layer_sizes(hidden_layer_sizes):
    sizes = [hidden_layer_sizes] if np.ndim(hidden_layer_sizes) == 0 else list(
        hidden_layer_sizes)
    if not sizes:
        raise ValueError("hidden_layer_sizes is empty: a DBN needs at least one hidden layer")
    if not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must hold positive ints, got {sizes}")
    return [int(s) for s in sizes]


def _check_loaded_stack(rbms, n_features, hidden_sizes, dtype):
    """Raise ValueError unless checkpointed RBMs chain from ``n_features`` through
    ``hidden_sizes`` (None: any, at least one layer) in ``dtype`` (a crafted file must not
    reach the compiled kernels with mismatched shapes). Each RBM has already checked its
    own arrays against its ``n_features_in_`` and ``n_components`` when it was loaded."""
    layers = [rbm.n_components for rbm in rbms]
    if not layers or hidden_sizes is not None and layers != hidden_sizes:
        raise ValueError(f"the RBM stack has layers {layers}, the network {hidden_sizes}")
    n_in = n_features
    for l, rbm in enumerate(rbms):
        if rbm.n_features_in_ != n_in or rbm.components_.dtype != dtype:
            raise ValueError(f"layer {l + 1} RBM takes {rbm.n_features_in_} inputs in "
                             f"{rbm.components_.dtype}, expected {n_in} in {dtype}")
        n_in = rbm.n_components


def _check_first_layer(first_layer, rbm):
    """Raise ValueError unless a checkpoint's ``first_layer_`` names the bottom RBM's
    class (None: no pretrained stack)."""
    if first_layer not in _FIRST_LAYER_CLASSES or (
            rbm is not None and type(rbm) is not _FIRST_LAYER_CLASSES[first_layer]):
        raise ValueError(f"first_layer_ {first_layer!r} does not fit the bottom RBM "
                         f"{type(rbm).__name__}")


def _build_stack(hidden_sizes, first_layer, settings, common, n_samples):
    """Unfitted RBMs of a stack, each validated before any of them trains.

    Parameters
    ----------
    hidden_sizes : list of int
    first_layer : str
        Key of ``_FIRST_LAYER_CLASSES``.
    settings : dict
        RBM parameter name -> (owner's parameter name, scalar or one value per layer);
        "auto" is resolved here for ``n_iter`` (:func:`_pretrain_epochs`) and
        ``learning_rate`` (``_AUTO_PRETRAIN_LEARNING_RATES``).
    common : dict
        RBM parameters shared by all layers (dtype, n_jobs, verbose).
    n_samples : int
        Rows the stack trains on.
    """
    n_layers = len(hidden_sizes)
    per_layer = {key: _per_layer(value, n_layers, owner)
                 for key, (owner, value) in settings.items()}
    rbms = []
    for l, size in enumerate(hidden_sizes):
        values = {key: values[l] for key, values in per_layer.items()}
        auto_epochs = _is_auto(values.get("n_iter"))
        if auto_epochs:
            values["n_iter"] = 0  # set below, from the validated batch size
        if _is_auto(values.get("learning_rate")):
            values["learning_rate"] = _AUTO_PRETRAIN_LEARNING_RATES[
                first_layer if l == 0 else "bernoulli"]
        rbm = _rbm_class(first_layer, l)(n_components=size, **values, **common)
        try:
            rbm._validate_params()
        except InvalidParameterError as exc:
            owners = ", ".join(owner for owner, _ in settings.values())
            raise InvalidParameterError(
                f"layer {l + 1} of the RBM stack (from {owners}): {exc}") from None
        try:
            rbm._check_samplers()
        except ValueError as exc:
            raise ValueError(f"layer {l + 1} of the RBM stack: {exc}") from None
        if auto_epochs:
            rbm.set_params(n_iter=_pretrain_epochs(n_samples, rbm.batch_size))
        rbms.append(rbm)
    for l, rbm in enumerate(rbms[:-1]):
        if rbm.hidden_units != "bernoulli":
            owner = settings.get("hidden_units", ("hidden_units",))[0]
            raise ValueError(
                f"{owner}: layer {l + 1} of the RBM stack has hidden_units="
                f"{rbm.hidden_units!r}, but only the top layer may have non-Bernoulli "
                "hidden units: the RBM above models its input as Bernoulli probabilities")
    return rbms


def _is_auto(value):
    return isinstance(value, str) and value == "auto"


def _fit_stack(rbms, X, rng):
    """Train the RBMs greedily, each on the hidden probabilities of the one below.

    Returns True when every layer completed; after Ctrl-C (the RBM keeps its completed
    epochs) the layers above are only initialised, and False is returned.
    """
    completed = True
    for layer, rbm in enumerate(rbms, start=1):
        rbm.set_params(random_state=int(rng.randint(np.iinfo(np.int32).max)))
        if not completed:
            rbm.set_params(n_iter=0)
        planned = rbm.n_iter
        try:
            rbm.fit(X)
        except FloatingPointError as exc:
            hint = (" Gaussian visible units want a smaller learning rate than the layers "
                    "above: give one per layer, e.g. [0.01, 0.1, ...]."
                    if isinstance(rbm, GaussianBernoulliRBM) else "")
            raise FloatingPointError(f"pretraining layer {layer} of {len(rbms)}: {exc}{hint}"
                                     ) from None
        completed = completed and rbm.n_iter_ == planned
        if rbm is not rbms[-1]:
            X = rbm.transform(X)
    if not completed:
        warnings.warn("RBM pretraining interrupted: the layers above the interrupted one are "
                      "untrained (randomly initialised).", RuntimeWarning, stacklevel=3)
    return completed


_STACK_CONSTRAINTS = {
    "n_iter": [StrOptions({"auto"}), Interval(Integral, 0, None, closed="left"), "array-like"],
    "learning_rate": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither"),
                      "array-like"],
    "batch_size": [Interval(Integral, 1, None, closed="left"), "array-like"],
    "k": [Interval(Integral, 1, None, closed="left"), "array-like"],
    "persistent": ["boolean", "array-like"],
    "hidden_units": [StrOptions({"bernoulli", "nrelu", "gaussian"}), "array-like"],
}

# The RBM samplers beyond CD / PCD (see BernoulliRBM), per layer, with their defaults: the
# DBN and the DBN nets pass them to every RBM of the stack.
_SAMPLER_CONSTRAINTS = {
    "centered": ["boolean", "array-like"],
    "fast_learning_rate": [Interval(Real, 0, None, closed="neither"), None, "array-like"],
    "fast_weight_decay": [Interval(Real, 0, 1, closed="both"), "array-like"],
    "n_temperatures": [Interval(Integral, 1, None, closed="left"), "array-like"],
    "min_beta": [Interval(Real, 0, 1, closed="left"), "array-like"],
    "swap_every": [Interval(Integral, 1, None, closed="left"), "array-like"],
}
_SAMPLER_DEFAULTS = dict(centered=False, fast_learning_rate=None, fast_weight_decay=0.05,
                         n_temperatures=1, min_beta=0.1, swap_every=1)

_SAMPLER_DOC = """    centered : bool or array-like of bool, default=False
        Centring of each RBM's gradient (Melchior, Fischer & Wiskott 2016), see
        :class:`BernoulliRBM`.
    fast_learning_rate : float, None or array-like, default=None
        Fast-weights PCD of each RBM (Tieleman & Hinton 2009; needs ``persistent``), see
        :class:`BernoulliRBM`. None: off.
    fast_weight_decay : float or array-like of float, default=0.05
        Fraction of the fast weights lost at each update.
    n_temperatures : int or array-like of int, default=1
        Parallel tempering of each RBM (Desjardins et al. 2010; needs ``persistent`` and
        Bernoulli units, so not on a Gaussian first layer), see :class:`BernoulliRBM`.
    min_beta : float or array-like of float, default=0.1
        The lowest inverse temperature of parallel tempering.
    swap_every : int or array-like of int, default=1
        Gibbs steps between rounds of tempering swaps.
"""


class DBN(CheckpointMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
          BaseEstimator):
    __doc__ = """Deep Belief Network: a stack of RBMs trained greedily, layer by layer.

    The first RBM models the data; each RBM above models the hidden probabilities of the
    one below (Hinton, Osindero & Teh 2006). ``transform`` maps data to the top layer's
    hidden probabilities; ``sample`` generates data by Gibbs sampling in the top RBM and
    one top-down pass through the directed layers below.

    Every per-layer setting takes a scalar (all layers) or a sequence with one value per
    layer. At the defaults a fit costs at most 6000 updates of 10 rows per layer (60000
    rows of CD-1 per layer), however many rows X has; sets of up to 3000 rows get 20
    epochs.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(500, 500, 2000)
        Number of hidden units of each RBM, bottom to top (Hinton et al. 2006's MNIST net).
    first_layer : {"auto", "bernoulli", "gaussian"}, default="auto"
        Visible units of the bottom RBM. "bernoulli": binary units for data in [0, 1],
        which the RBM takes as given. "gaussian" (:class:`GaussianBernoulliRBM`, unit
        variance): for real-valued data, which the DBN standardises per feature with the
        mean and standard deviation of the training data (``input_mean_``,
        ``input_scale_``; sparse data is only scaled) before the first layer, in ``fit``,
        ``transform`` and ``sample`` alike. "auto": "bernoulli" when the training data lies
        in [0, 1], else "gaussian". The layers above are always Bernoulli.
    n_iter : "auto", int or array-like, default="auto"
        Epochs of each RBM. "auto": enough epochs for 6000 mini-batch updates, from 1 to
        20 (20 on up to 3000 rows at batch 10, one on 60000): the cost of pretraining is
        then bounded, whatever the number of rows.
    learning_rate : "auto", float or array-like, default="auto"
        Learning rate of each RBM. "auto": 0.1 for Bernoulli visible units, 0.01 for a
        Gaussian first layer (Hinton 2010, section 13.2).
    batch_size : int or array-like of int, default=10
        Mini-batch size of each RBM.
    k : int or array-like of int, default=1
        Gibbs steps per update (CD-k / PCD-k) of each RBM.
    persistent : bool or array-like of bool, default=True
        Persistent CD (True) or CD-k (False), per RBM.
    momentum : float or array-like of float, default=0.0
        Momentum of each RBM's updates.
    weight_decay : float or array-like of float, default=0.0
        L2 penalty of each RBM's weights.
    hidden_units : {"bernoulli", "nrelu", "gaussian"} or array-like, default="bernoulli"
        Hidden units of each RBM (see :class:`BernoulliRBM`). Only the top layer may
        differ from "bernoulli" (each RBM above models its input as probabilities);
        "gaussian" there gives the linear code layer of Hinton & Salakhutdinov (2006)'s
        deep autoencoder, whose ``transform`` then returns the linear means (give that
        layer a smaller learning rate, e.g. ``learning_rate=[0.1, 0.1, 0.001]``). A
        Gaussian first layer cannot have Gaussian hidden units.
""" + _SAMPLER_DOC + """    random_state : int, RandomState instance or None, default=None
        Seeds every layer's initialisation and sampling.
    verbose : int, default=0
        Passed to each RBM, which then prints one line per epoch on stdout.
    dtype : {"float32", "float64"} or None, default=None
        Precision of the parameters and of all computation. None: that of the training
        data, as scikit-learn does it (float32 stays float32, float64 stays float64,
        anything else becomes float64).
    n_jobs : int, default=None
        Threads of the compiled Gibbs engine (the model does not depend on it).

    Attributes
    ----------
    rbms_ : list of BernoulliRBM or GaussianBernoulliRBM
        The fitted RBMs, bottom to top.
    first_layer_ : {"bernoulli", "gaussian"}
        The visible units of the bottom RBM (``first_layer`` with "auto" resolved).
    input_mean_, input_scale_ : ndarray of shape (`n_features_in_`,) or None
        The standardisation applied to X before a Gaussian first layer; None with a
        Bernoulli one.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string feature names.

    See Also
    --------
    DBNClassifier, DBNRegressor : The stack unrolled and fine-tuned by backprop.
    BernoulliRBM : One layer.

    References
    ----------
    G. Hinton, S. Osindero, Y. Teh (2006). A fast learning algorithm for deep belief nets.
    Neural Computation 18(7).
    G. Hinton, R. Salakhutdinov (2006). Reducing the dimensionality of data with neural
    networks. Science 313.
    G. Hinton (2010). A practical guide to training restricted Boltzmann machines.
    UTML TR 2010-003.

    Examples
    --------
    >>> from fastrbm import DBN
    >>> from fastrbm.datasets import load_digits
    >>> X, _ = load_digits()
    >>> dbn = DBN(hidden_layer_sizes=(32, 16), n_iter=2, random_state=0).fit(X)
    >>> dbn.transform(X).shape
    (1797, 16)
    >>> dbn.sample(3, n_steps=10, random_state=0).shape
    (3, 64)
    """

    # fitted state kept by save/load (the RBMs are stored as their own arrays)
    _checkpoint_arrays = ("input_mean_", "input_scale_")
    _checkpoint_values = ("n_features_in_", "first_layer_", "rbms_")

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "first_layer": [StrOptions(_FIRST_LAYER_OPTIONS)],
        **_STACK_CONSTRAINTS,
        **_SAMPLER_CONSTRAINTS,
        "momentum": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "weight_decay": [Interval(Real, 0, None, closed="left"), "array-like"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "dtype": [StrOptions({"float32", "float64"}), None],
        "n_jobs": [Integral, None],
    }

    def __init__(self, hidden_layer_sizes=(500, 500, 2000), *, first_layer="auto",
                 n_iter="auto", learning_rate="auto", batch_size=10, k=1, persistent=True,
                 momentum=0.0, weight_decay=0.0, hidden_units="bernoulli", centered=False,
                 fast_learning_rate=None, fast_weight_decay=0.05, n_temperatures=1,
                 min_beta=0.1, swap_every=1, random_state=None, verbose=0, dtype=None,
                 n_jobs=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.first_layer = first_layer
        self.n_iter = n_iter
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.k = k
        self.persistent = persistent
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.hidden_units = hidden_units
        self.centered = centered
        self.fast_learning_rate = fast_learning_rate
        self.fast_weight_decay = fast_weight_decay
        self.n_temperatures = n_temperatures
        self.min_beta = min_beta
        self.swap_every = swap_every
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype
        self.n_jobs = n_jobs

    def _stack(self, n_samples, dtype):
        names = ["n_iter", "learning_rate", "batch_size", "k", "persistent", "momentum",
                 "weight_decay", "hidden_units", *_SAMPLER_DEFAULTS]
        return _build_stack(
            _layer_sizes(self.hidden_layer_sizes), self.first_layer_,
            {name: (name, getattr(self, name)) for name in names},
            dict(dtype=dtype.name, n_jobs=self.n_jobs, verbose=self.verbose), n_samples)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the RBMs greedily, bottom to top.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data: in [0, 1] for Bernoulli visible units, any real values for a
            Gaussian first layer (standardised inside, see ``first_layer``).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : DBN
            The fitted model.
        """
        with unchanged_on_error(self):
            X = validate_data(self, X, accept_sparse="csr", dtype=fit_dtype(self.dtype),
                              reset=True)
            self.first_layer_ = _resolve_first_layer(self.first_layer, X)
            self.input_mean_, self.input_scale_ = _standardisation(X, self.first_layer_)
            rbms = self._stack(X.shape[0], X.dtype)  # every setting checked before training
        _fit_stack(rbms, _standardised(X, self.input_mean_, self.input_scale_),
                   check_random_state(self.random_state))
        self.rbms_ = rbms
        return self

    def transform(self, X):
        """Top-layer hidden probabilities, layer by layer up the stack.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to transform.

        Returns
        -------
        H : ndarray of shape (n_samples, hidden_layer_sizes[-1])
            Hidden probabilities of the top RBM.
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=self.rbms_[0].components_.dtype,
                          reset=False)
        X = _standardised(X, self.input_mean_, self.input_scale_)
        for rbm in self.rbms_:
            X = rbm.transform(X)
        return X

    def sample(self, n_samples=1, n_steps=1000, *, random_state=None, probabilities=False):
        """Generate data: Gibbs sampling in the top RBM, then down through the stack.

        Chains start from the top RBM's visible-bias-only distribution and run ``n_steps``
        alternating Gibbs steps; the resulting top visible (penultimate hidden) sample then
        goes down through the directed layers, each sampled from P(v | h) of its RBM.

        Parameters
        ----------
        n_samples : int, default=1
            Number of independent chains (samples returned).
        n_steps : int, default=1000
            Gibbs steps in the top RBM.
        random_state : int, RandomState instance or None, default=None
            Seeds the generation: the same value gives the same samples, whatever
            ``n_jobs``. None draws fresh samples from NumPy's global generator.
        probabilities : bool, default=False
            Return the bottom layer's probabilities P(v=1 | h) (for a Gaussian first layer,
            its means) instead of samples (smoother images).

        Returns
        -------
        V : ndarray of shape (n_samples, `n_features_in_`)
            Generated visible vectors, in the units of the training data (a Gaussian
            first layer's samples are mapped back through ``input_mean_`` and
            ``input_scale_``).
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
        if not isinstance(n_steps, Integral) or n_steps < 0:
            raise ValueError(f"n_steps must be a non-negative int, got {n_steps!r}")
        seed = draw_seed(check_random_state(random_state))
        top = self.rbms_[-1]
        W, b, c = top.components_, top.intercept_visible_, top.intercept_hidden_
        work = n_samples * W.size
        threads = engine_threads(self.n_jobs, work)
        v = np.empty((n_samples, W.shape[1]), W.dtype)
        prob = np.zeros_like(v)
        visible, log_var = top._engine_visible_args()[:2]  # a one-layer stack may be Gaussian
        with blas_threads(1):
            if visible == "gaussian":
                counter = _sampling.gaussian_sample_rows(prob, b, top.sigma_.astype(W.dtype), v,
                                                         seed, 0, threads)
            else:
                counter = _sampling.sigmoid_sample_rows(prob, b, v, seed, 0, threads)
            counter = _sampling.gibbs_chain(
                v, np.empty((n_samples, W.shape[0]), W.dtype), W, b, c, int(n_steps), seed,
                counter, engine_blocks(work), threads, prob, visible, "bernoulli", log_var)
            for rbm in reversed(self.rbms_[:-1]):
                prob = np.ascontiguousarray(v @ rbm.components_)
                v = np.empty_like(prob)
                if isinstance(rbm, GaussianBernoulliRBM):  # prob becomes the mean
                    counter = _sampling.gaussian_sample_rows(
                        prob, rbm.intercept_visible_, rbm.sigma_.astype(W.dtype), v, seed,
                        counter, threads)
                else:
                    counter = _sampling.sigmoid_sample_rows(
                        prob, rbm.intercept_visible_, v, seed, counter, threads)
        V = prob if probabilities else v
        if self.input_mean_ is not None:
            V = V * self.input_scale_ + self.input_mean_
        return V

    def _checkpoint_restore(self, state):
        """Set the loaded state, checking that the RBMs chain (see CheckpointMixin)."""
        super()._checkpoint_restore(state)
        dtype = self.rbms_[0].components_.dtype if self.rbms_ else None
        _check_loaded_stack(self.rbms_, self.n_features_in_, None, dtype)
        _check_first_layer(self.first_layer_, self.rbms_[0])
        check_standardisation(self.input_mean_, self.input_scale_, self.n_features_in_,
                               dtype)

    @property
    def _n_features_out(self):
        """Number of transformed output features (for get_feature_names_out)."""
        return self.rbms_[-1].n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = (
            ["float64", "float32"] if self.dtype is None else [self.dtype])
        return tags


# ----------------------------------------------------------------------------------------
# Fine-tuned networks
# ----------------------------------------------------------------------------------------
class _BaseDBNNetwork(DenseTrainer, CheckpointMixin, BaseEstimator):
    """Parameters, validation and initialisation shared by DBNClassifier and DBNRegressor
    (the output layer, loss and labels differ); training is :class:`~fastrbm._network.DenseTrainer`'s."""

    # Fitted state kept by save/load: everything ``partial_fit`` reads, so a loaded model
    # resumes bit-identically (optimizer moments and step count, batch-norm running
    # statistics, the dropout/shuffle seed, schedule and early-stopping bookkeeping).
    _checkpoint_arrays = DenseTrainer._network_arrays + (
        "gradient_norms_", "initial_gradient_norms_", "input_mean_", "input_scale_")
    _checkpoint_values = ("n_features_in_", "first_layer_", "n_outputs_", "n_layers_",
                          "out_activation_",
                          "n_iter_", "t_", "loss_curve_", "best_loss_", "validation_scores_",
                          "best_validation_score_", "_steps", "_current_lr", "_seed",
                          "_no_improvement_count", "rbms_")

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu", "elu"})],
        **MLP_CONSTRAINTS,
        "pretrain": ["boolean"],
        "first_layer": [StrOptions(_FIRST_LAYER_OPTIONS)],
        "pretrain_n_iter": _STACK_CONSTRAINTS["n_iter"],
        "pretrain_learning_rate": _STACK_CONSTRAINTS["learning_rate"],
        "pretrain_batch_size": _STACK_CONSTRAINTS["batch_size"],
        "k": _STACK_CONSTRAINTS["k"],
        "persistent": _STACK_CONSTRAINTS["persistent"],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "batch_norm": ["boolean", "array-like"],
        "init_scale": [Interval(Real, 0, None, closed="neither")],
        "dtype": [StrOptions({"float32", "float64"}), None],
        "n_jobs": [Integral, None],
    }

    def __init__(self, hidden_layer_sizes=(256,), activation="logistic", *, solver="adam",
                 alpha=1e-4, batch_size="auto", learning_rate="constant",
                 learning_rate_init="auto", power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping="auto", validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change="auto", pretrain=True,
                 first_layer="auto", pretrain_n_iter="auto", pretrain_learning_rate="auto",
                 pretrain_batch_size=10, k=1, persistent=False, centered=False,
                 fast_learning_rate=None, fast_weight_decay=0.05, n_temperatures=1,
                 min_beta=0.1, swap_every=1, dropout=0.0, batch_norm=False,
                 max_grad_norm=None, init_scale=1.0, dtype=None, n_jobs=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.pretrain = pretrain
        self.first_layer = first_layer
        self.pretrain_n_iter = pretrain_n_iter
        self.pretrain_learning_rate = pretrain_learning_rate
        self.pretrain_batch_size = pretrain_batch_size
        self.k = k
        self.persistent = persistent
        self.centered = centered
        self.fast_learning_rate = fast_learning_rate
        self.fast_weight_decay = fast_weight_decay
        self.n_temperatures = n_temperatures
        self.min_beta = min_beta
        self.swap_every = swap_every
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.max_grad_norm = max_grad_norm
        self.init_scale = init_scale
        self.dtype = dtype
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------------------
    # parameters and data

    def _network_settings(self, n_features, n_outputs):
        """Layout table and per-layer dropout from the parameters (validated here)."""
        hidden = _layer_sizes(self.hidden_layer_sizes)
        dropout = np.zeros(len(hidden) + 1)
        dropout[:-1] = _per_layer(self.dropout, len(hidden), "dropout")
        if not ((dropout >= 0) & (dropout < 1)).all():
            raise ValueError(f"dropout probabilities must lie in [0, 1), got {self.dropout}")
        batch_norm = [bool(v) for v in _per_layer(self.batch_norm, len(hidden), "batch_norm")]
        layout, n_params, n_state = _bp.make_layout(
            [n_features, *hidden, n_outputs], self.activation, self._out_activation(n_outputs),
            batch_norm)
        return layout, n_params, n_state, dropout

    def _pretrain_stack(self, n_samples, dtype):
        return _build_stack(
            _layer_sizes(self.hidden_layer_sizes), self.first_layer_,
            {"n_iter": ("pretrain_n_iter", self.pretrain_n_iter),
             "learning_rate": ("pretrain_learning_rate", self.pretrain_learning_rate),
             "batch_size": ("pretrain_batch_size", self.pretrain_batch_size),
             "k": ("k", self.k), "persistent": ("persistent", self.persistent),
             # the samplers, where the estimator has them (see DBNClassifier)
             **{name: (name, getattr(self, name)) for name in _SAMPLER_DEFAULTS
                if name in self._parameter_constraints}},
            dict(dtype=dtype.name, n_jobs=self.n_jobs, verbose=self.verbose), n_samples)

    # ------------------------------------------------------------------------------
    # fitting

    def _fit(self, X, y, *, incremental, classes=None):
        """Validate (leaving the model untouched on error), initialise, train."""
        with unchanged_on_error(self):
            first = not hasattr(self, "_theta") or not (incremental or self.warm_start)
            X, y = validate_data(self, X, y, dtype=fit_dtype(self.dtype) if first
                                 else self._theta.dtype, order="C", reset=first,
                                 **self._target_checks)
            Y = self._encode_targets(y, X.dtype, first=first, incremental=incremental,
                                     classes=classes)
            if first:
                self.first_layer_ = _resolve_first_layer(self.first_layer, X)
                self.input_mean_, self.input_scale_ = _standardisation(X, self.first_layer_)
            X = engine_array(_standardised(X, self.input_mean_, self.input_scale_))
            layout, n_params, n_state, dropout = self._network_settings(X.shape[1], Y.shape[1])
            if not first and not np.array_equal(layout, self._layout):
                raise ValueError(
                    "the network's shape (hidden_layer_sizes, activation, batch_norm) changed "
                    "since the last fit; set warm_start=False to start afresh")
            rng = check_random_state(self.random_state) if first or not incremental \
                else self._shuffle_rng()
            early_stopping = self._early_stopping(X.shape[0], incremental)
            X_val = y_val = None
            if early_stopping:
                train, val, y_val = self._validation_indices(y, rng)
                X_val = X[val]
                X, Y = engine_array(X[train]), engine_array(Y[train])
            stack = self._pretrain_stack(X.shape[0], X.dtype) if self.pretrain and first \
                else None
        completed = self._initialize(X, Y, layout, n_params, n_state, dropout, stack, rng) \
            if first else True
        if first or not incremental:  # a fresh optimizer, as scikit-learn's MLP
            self._start_training(rng, early_stopping)
        if completed:  # Ctrl-C during pretraining: no fine-tuning
            self._run_epochs(self._training_engine(X, Y, dropout), X.shape[0],
                             1 if incremental else self.max_iter, rng, incremental,
                             early_stopping, X_val, y_val)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Pretrain (when ``pretrain=True``) and fine-tune on X, y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (in [0, 1] when pretraining Bernoulli RBMs).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Class labels (classifier: any type, at least two classes) or target values
            (regressor; several targets allowed).

        Returns
        -------
        self : estimator
            The fitted model.
        """
        return self._fit(X, y, incremental=False)

    def _initialize(self, X, Y, layout, n_params, n_state, dropout, stack, rng):
        dtype = X.dtype
        self._layout = layout
        self._theta = np.zeros(n_params, dtype)
        self._bn_state = np.zeros(n_state, dtype)
        _bp.init_batchnorm(self._theta, self._bn_state, layout)
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = layout.shape[0] + 1
        self.out_activation_ = self._out_activation(Y.shape[1])
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self.best_loss_ = None
        self.gradient_norms_ = np.empty((0, layout.shape[0]))
        completed = True
        coefs, intercepts, _, _ = _bp.param_views(self._theta, layout)
        # Glorot-style uniform init, scikit-learn's MLP (factor 2 for logistic units), times
        # init_scale (pretrained layers are overwritten below; the output layer is not)
        factor = 2.0 if self.activation == "logistic" else 6.0
        for W, b in zip(coefs, intercepts):
            bound = self.init_scale * np.sqrt(factor / (W.shape[0] + W.shape[1]))
            W[:] = rng.uniform(-bound, bound, W.shape)
            b[:] = rng.uniform(-bound, bound, b.shape)
        self.rbms_ = []
        if stack is not None:
            completed = _fit_stack(stack, X, rng)
            for W, b, rbm in zip(coefs, intercepts, stack):
                W[:] = rbm.components_.T
                b[:] = rbm.intercept_hidden_
            self.rbms_ = stack
        self.initial_gradient_norms_ = self._initial_gradient_norms(X, Y, dropout, rng)
        return completed

    # ------------------------------------------------------------------------------
    # checkpoints

    def _checkpoint_restore(self, state):
        """Set the loaded state after checking it (see CheckpointMixin): the network arrays
        against the layout table (:meth:`DenseTrainer._check_network`), then the RBM stack
        and the input standardisation."""
        super()._checkpoint_restore(state)
        sizes = self._check_network()
        if self.rbms_:
            _check_loaded_stack(self.rbms_, self.n_features_in_, sizes[1:-1],
                                self._theta.dtype)
        _check_first_layer(self.first_layer_, self.rbms_[0] if self.rbms_ else None)
        check_standardisation(self.input_mean_, self.input_scale_, self.n_features_in_,
                               self._theta.dtype)

    # ------------------------------------------------------------------------------
    # inference

    def _validated_forward(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=self._theta.dtype, order="C", reset=False)
        return self._forward(_standardised(X, self.input_mean_, self.input_scale_))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


_NETWORK_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(256,)
        Hidden units per layer (each one RBM when pretraining). The default is smaller
        than :class:`DBN`'s (500, 500, 2000), which is Hinton et al.'s MNIST net: it fits
        small data sets such as the 8x8 digits in about a second (0.97-0.98 held-out
        accuracy there). Use deeper stacks for images of MNIST size.
    activation : {"logistic", "tanh", "relu", "elu", "identity"}, default="logistic"
        Hidden activation. "elu" is the exponential linear unit with alpha = 1 (Clevert et
        al. 2016): ``x`` for ``x > 0``, ``exp(x) - 1`` otherwise. Pretrained RBM units are
        logistic: that is the faithful unrolling; other activations start from the same
        weights but compute another function. The stack is the same for every activation,
        "relu" and "elu" included: Bernoulli RBMs, each upper one modelling the hidden
        probabilities (in [0, 1]) of the one below. No RBM unit has an ELU as its mean, and
        the noisy rectified units of :class:`BernoulliRBM` (``hidden_units="nrelu"``) are
        not used for "relu" either. With ``pretrain=False``, "tanh", "relu" and "elu" start
        from scikit-learn's Glorot-style bound ``sqrt(6 / (n_in + n_out))``.
    solver : {"adam", "sgd"}, default="adam"
        Adam, or SGD with (Nesterov) momentum (scikit-learn's semantics). Adam is the
        default, as in scikit-learn's MLP: a softmax or linear output on pretrained
        features (saturated logistic units, all positive) is badly conditioned for SGD,
        whose steps then need tuning to the data.
    alpha : float, default=1e-4
        L2 penalty, scikit-learn's convention ``0.5 * alpha * ||W||**2 / n_batch_rows``.
    batch_size : int or "auto", default="auto"
        Mini-batch size; "auto" is ``min(200, n_samples)``, as scikit-learn's MLP.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Step-size schedule of the SGD solver, as in scikit-learn's MLP: "invscaling" uses
        ``learning_rate_init / (t_ + 1) ** power_t`` after each epoch, "adaptive" divides
        the step by 5 whenever ``n_iter_no_change`` epochs do not improve.
    learning_rate_init : float or "auto", default="auto"
        Initial step size. "auto": for Adam 0.003 with classification (scikit-learn's
        0.001 stops short of the pretrained net's accuracy within the default epochs) and
        0.01 with regression (standardised targets); for SGD 0.1 with classification and
        0.01 with regression (the squared error's gradient is unbounded).
    power_t : float, default=0.5
        Exponent of the "invscaling" schedule.
    max_iter : int, default=200
        Maximum number of fine-tuning epochs.
    shuffle : bool, default=True
        Shuffle the samples at each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, pretraining, shuffling, the validation split and dropout. The
        same seed gives a bit-identical model whatever ``n_jobs``.
    tol : float, default=1e-4
        Improvement below which an epoch counts as no progress.
    verbose : bool or int, default=False
        Print progress on stdout, in scikit-learn MLP's words: ``Iteration N, loss = ...``
        after each fine-tuning epoch, ``Validation score: ...`` with early stopping, and
        the message of the stopping rule (or of the "adaptive" schedule's step). The
        pretraining RBMs print their own lines; a progress bar is drawn on stderr when it
        is a terminal (see :func:`fastrbm.set_progress_bar`).
    warm_start : bool, default=False
        Continue from the fitted weights (no new pretraining) with a fresh optimizer.
    momentum : float, default=0.9
        SGD momentum.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum (SGD).
    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the training data (stratified for
        classification), stop when its score stops improving and restore the best weights.
        "auto": on when there are more than 10000 training rows (the rule of
        scikit-learn's HistGradientBoosting), where the training loss creeps down for
        many epochs after the held-out score has stopped improving. Never in
        ``partial_fit``.
    validation_fraction : float, default=0.1
        Held-out fraction for early stopping.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's parameters.
    n_iter_no_change : int or "auto", default="auto"
        Epochs without improvement of more than ``tol`` before stopping. "auto": 10 for
        classification (scikit-learn's default), 50 for regression, where a logistic net
        on standardised targets sits near the linear fit for tens of epochs before it
        bends (stopping after 10 left a smooth target at R^2 0.52 instead of 0.97).
    pretrain : bool, default=True
        Pretrain the hidden layers as a greedy RBM stack (the net's weights are then
        ``W_l = rbms_[l].components_.T`` and biases ``rbms_[l].intercept_hidden_``);
        False: Glorot-style random initialisation, as scikit-learn's MLP.
    first_layer : {"auto", "bernoulli", "gaussian"}, default="auto"
        What the bottom layer does with X. "bernoulli": X is used as given, for data in
        [0, 1], and the bottom RBM has binary visible units. "gaussian": X is
        standardised per feature with the training data's mean and standard deviation
        (``input_mean_``, ``input_scale_``; in ``predict`` too), and the bottom RBM has
        unit-variance Gaussian visible units. "auto": "bernoulli" when the training data
        lies in [0, 1], else "gaussian" (raw measurements, counts, standardised data).
        With ``pretrain=False`` it decides the standardisation alone.
    pretrain_n_iter : "auto", int or array-like, default="auto"
        RBM epochs, for all layers or one value per layer. "auto": enough epochs for
        6000 mini-batch updates per layer, from 1 to 20 (20 on up to 3000 rows at batch
        10, one on 60000 rows).
    pretrain_learning_rate : "auto", float or array-like, default="auto"
        RBM learning rate(s). "auto": 0.1 for Bernoulli visible units, 0.01 for a
        Gaussian first layer (Hinton 2010, section 13.2).
    pretrain_batch_size : int or array-like of int, default=10
        RBM mini-batch size(s).
    k : int or array-like of int, default=1
        Gibbs steps of each RBM update.
    persistent : bool or array-like of bool, default=False
        PCD (True) or CD-k (False, Hinton et al. 2006's pretraining), per layer.
""" + _SAMPLER_DOC + """    dropout : float or array-like of float, default=0.0
        Dropout probability of each hidden layer's output (inverted dropout).
    batch_norm : bool or array-like of bool, default=False
        Batch normalisation before the activation of each hidden layer (the layer's
        intercept is then unused; its shift is the batch-norm beta).
    max_grad_norm : float or None, default=None
        Clip each mini-batch gradient to this global L2 norm.
    init_scale : float, default=1.0
        Multiplier of the random initial weights and biases (the Glorot-style bound; 1.0 is
        scikit-learn's MLP initialisation). Large values give saturated logistic units or,
        with ReLU, exploding activations and gradients: the ill-conditioned starts studied
        in ``examples/vanishing_gradient.py``. Pretrained hidden layers ignore it.
    dtype : {"float32", "float64"} or None, default=None
        Precision of the parameters, of all computation and of the predictions. None:
        that of the training data, as scikit-learn does it (float32 stays float32,
        float64 stays float64, anything else becomes float64); later ``partial_fit``
        calls convert to the fitted precision.
    n_jobs : int, default=None
        Threads of fine-tuning (for layers cut into blocks: large enough to share), of
        prediction (BLAS) and of the Gibbs engine during pretraining. None: all cores when
        the layers are large enough to share, else one. The model does not depend on it.
"""

_NETWORK_ATTRIBUTES = """
    n_iter_ : int
        Fine-tuning epochs run.
    t_ : int
        Training samples seen by the optimizer.
    loss_curve_ : list of float
        Mean training loss of each epoch (L2 term included).
    best_loss_ : float or None
        Lowest training loss (None with early stopping).
    validation_scores_ : list of float or None
        Validation score of each epoch with early stopping, else None.
    best_validation_score_ : float or None
        Best validation score with early stopping, else None.
    coefs_ : list of ndarray
        ``coefs_[l]`` of shape (n_in, n_out): the weights of layer l.
    intercepts_ : list of ndarray
        Biases of each layer.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of output units.
    out_activation_ : str
        Output activation.
    gradient_norms_ : ndarray of shape (`n_iter_`, `n_layers_` - 1)
        Mean over each epoch's mini-batches of ||dL/dW_l|| (Frobenius, before clipping):
        the vanishing-gradient monitor; see :mod:`fastrbm.diagnostics`.
    initial_gradient_norms_ : ndarray of shape (`n_layers_` - 1,)
        The same at the initial (pretrained or random) weights, before the first step
        (mean over up to 20 mini-batches).
    rbms_ : list of BernoulliRBM or GaussianBernoulliRBM
        The pretrained RBMs (empty when ``pretrain=False``).
    first_layer_ : {"bernoulli", "gaussian"}
        ``first_layer`` with "auto" resolved.
    input_mean_, input_scale_ : ndarray of shape (`n_features_in_`,) or None
        The standardisation applied to X with ``first_layer_ == "gaussian"``; None when X
        is used as given.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string feature names.
"""

_REFERENCES = """
    References
    ----------
    G. Hinton, S. Osindero, Y. Teh (2006). A fast learning algorithm for deep belief nets.
    Neural Computation 18(7).
    G. Hinton, R. Salakhutdinov (2006). Reducing the dimensionality of data with neural
    networks. Science 313.
    X. Glorot, Y. Bengio (2010). Understanding the difficulty of training deep feedforward
    neural networks. AISTATS.
    D.-A. Clevert, T. Unterthiner, S. Hochreiter (2016). Fast and accurate deep network
    learning by exponential linear units (ELUs). ICLR.
"""


class DBNClassifier(ClassifierMixin, ClassifierOutput, _BaseDBNNetwork):
    __doc__ = """DBN classifier: greedy RBM pretraining, then fine-tuning by backprop.

    With ``pretrain=True`` the hidden layers are pretrained as an RBM stack (see
    :class:`DBN`), a softmax output layer (logistic for two classes) is put on top and all
    layers are fine-tuned to minimise cross-entropy; with ``pretrain=False`` the identical
    net trains from random initialisation. Fine-tuning parameters have the names and
    meanings of :class:`sklearn.neural_network.MLPClassifier`; the defaults differ where the
    pretrained logistic net wants it (hidden_layer_sizes (256,), learning_rate_init
    "auto", i.e. 0.003 here, early_stopping "auto").

    Cost of a default fit: pretraining at most 6000 CD-1 updates of 10 rows (one or two
    passes over 60000 rows), then fine-tuning epochs of ``min(200, n_samples)``-row
    mini-batches, each about 6 * n_samples * (n_features * 256 + 256 * n_classes)
    floating-point operations, until the stopping rule (held-out accuracy above 10000
    rows). On the 60000 Fashion-MNIST training images that is 2 pretraining and 29
    fine-tuning epochs: minutes on two cores, 0.89 test accuracy.
    """ + _NETWORK_DOC + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.""" + _NETWORK_ATTRIBUTES + """
    See Also
    --------
    DBNRegressor : The same net for regression.
    DBN : The unsupervised stack alone.
    sklearn.neural_network.MLPClassifier : The same fine-tuning without pretraining.
    """ + _REFERENCES + """
    Examples
    --------
    >>> from fastrbm import DBNClassifier
    >>> from fastrbm.datasets import load_digits
    >>> X, y = load_digits()
    >>> clf = DBNClassifier(hidden_layer_sizes=(64,), max_iter=50, random_state=0)
    >>> clf.fit(X, y).score(X, y) > 0.95
    True
    """

    _checkpoint_arrays = _BaseDBNNetwork._checkpoint_arrays + ClassifierOutput.output_arrays
    _parameter_constraints: dict = {**_BaseDBNNetwork._parameter_constraints,
                                    **_SAMPLER_CONSTRAINTS}

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None):
        """One fine-tuning epoch on X, y (the first call also pretrains on this chunk).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.
        y : array-like of shape (n_samples,)
            Its labels.
        classes : array-like of shape (n_classes,), default=None
            All classes; required on the first call, as scikit-learn's MLPClassifier.

        Returns
        -------
        self : DBNClassifier
            The updated model.
        """
        return self._fit(X, y, incremental=True, classes=classes)


class DBNRegressor(RegressorMixin, RegressorOutput, _BaseDBNNetwork):
    __doc__ = """DBN regressor: greedy RBM pretraining, then fine-tuning by backprop.

    As :class:`DBNClassifier` with a linear output layer and the squared error
    ``0.5 * sum_outputs((y_hat - y)**2)`` averaged over samples (scikit-learn's MLPRegressor
    also divides by the number of outputs). The targets are standardised inside (each
    output to zero mean and unit variance: ``target_mean_``, ``target_scale_``), so the
    loss, ``loss_curve_`` and ``tol`` are in standardised units, and predictions are
    mapped back to the units of y. A default fit costs what :class:`DBNClassifier`'s does.
    """ + _NETWORK_DOC + """
    Attributes
    ----------
    target_mean_, target_scale_ : ndarray of shape (`n_outputs_`,)
        Mean and standard deviation (1 for a constant target) of each target in the
        first fit: the network predicts ``(y - target_mean_) / target_scale_``.""" + \
        _NETWORK_ATTRIBUTES + """
    See Also
    --------
    DBNClassifier : The same net for classification.
    DBN : The unsupervised stack alone.
    sklearn.neural_network.MLPRegressor : The same fine-tuning without pretraining.
    """ + _REFERENCES + """
    Examples
    --------
    >>> import numpy as np
    >>> from fastrbm import DBNRegressor
    >>> X = np.random.default_rng(0).random((200, 4))
    >>> y = np.sin(3 * X[:, 0]) + X[:, 1]
    >>> reg = DBNRegressor(hidden_layer_sizes=(32,), random_state=0).fit(X, y)
    >>> reg.predict(X).shape
    (200,)
    """

    _checkpoint_arrays = _BaseDBNNetwork._checkpoint_arrays + RegressorOutput.output_arrays
    _parameter_constraints: dict = {**_BaseDBNNetwork._parameter_constraints,
                                    **_SAMPLER_CONSTRAINTS}

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y):
        """One fine-tuning epoch on X, y (the first call also pretrains on this chunk).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Its targets.

        Returns
        -------
        self : DBNRegressor
            The updated model.
        """
        return self._fit(X, y, incremental=True)
