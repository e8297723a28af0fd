"""The deep autoencoder of Hinton & Salakhutdinov (2006): a pretrained RBM stack unrolled
into an encoder and a decoder and fine-tuned by backprop on the reconstruction.

:class:`DBNAutoencoder` is a DBN net (``fastrbm.dbn``) whose targets are its inputs: it
shares the DBN nets' parameters, validation, pretraining and checkpoints
(``fastrbm.dbn``) and their trainer (``fastrbm._network``); what differs is the shape of
the net (the mirrored stack, a linear code layer), its initialisation (the decoder takes
the transposed weights and the visible biases) and its outputs (codes, reconstructions).
"""
import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._kernels import backprop as _bp
from ._network import engine_array
from .dbn import (_NETWORK_ATTRIBUTES, _REFERENCES, _SAMPLER_CONSTRAINTS, _SAMPLER_DOC,
                  _BaseDBNNetwork, _fit_stack, _is_auto,
                  _layer_sizes, _per_layer, _resolve_first_layer, _standardisation,
                  _standardised)

__all__ = ["DBNAutoencoder"]

# Pretraining learning rate "auto" of the top RBM, whose linear (Gaussian) hidden units
# make the code layer: ten times below the logistic layers' 0.1, as Hinton 2010 (section
# 13.2) advises for linear units (Hinton & Salakhutdinov used 0.001 against 0.1 with
# momentum 0.9 and 100-row batches; the stack here takes 10-row batches without momentum).
CODE_LAYER_LEARNING_RATE = 0.01

# Fine-tuning learning_rate_init "auto" and n_iter_no_change "auto" (the task is
# "reconstruction"): Adam at the classifier's 0.003 (on digits, 200 epochs of the default
# net: held-out squared error 1.42 at scikit-learn's 0.001, 1.17 at 0.003, 1.04 at 0.01),
# SGD at the regressor's 0.01.
_AUTO_LEARNING_RATES = {("adam", "reconstruction"): 0.003, ("sgd", "reconstruction"): 0.01}
_AUTO_PATIENCE = {"reconstruction": 10}


def _squared_error(X, R):
    """Mean over rows of the squared reconstruction error summed over the features."""
    return float(np.mean(np.square(X - R, dtype=np.float64).sum(axis=1)))


class DBNAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _BaseDBNNetwork):
    __doc__ = """Deep autoencoder: a pretrained RBM stack, unrolled and fine-tuned.

    Hinton & Salakhutdinov (2006). The encoder ``hidden_layer_sizes`` is pretrained
    greedily as a stack of RBMs (see :class:`DBN`): binary visible units for data in
    [0, 1], a Gaussian first layer for other data (standardised inside), and a top RBM
    with linear (Gaussian, unit-variance) hidden units, the code layer. The stack is then
    unrolled into an encoder (weights ``W_l = rbms_[l].components_.T``, the hidden biases)
    and a mirrored decoder (the same weights transposed, the RBMs' visible biases), and
    all layers are fine-tuned by backprop to reconstruct the input: cross-entropy through
    a logistic output for data in [0, 1], squared error through a linear output for
    real-valued data. Unfine-tuned, the decoder computes the stack's mean-field top-down
    pass exactly. With ``pretrain=False`` the identical net trains from Glorot-style
    random weights.

    ``transform`` gives the codes (the linear code layer), ``inverse_transform`` the
    reconstructions of codes, :meth:`reconstruct` both in one pass, :meth:`score` the
    negative squared reconstruction error. Fine-tuning parameters have scikit-learn's MLP
    names, as in :class:`DBNClassifier` and :class:`DBNRegressor`.

    The defaults are a small net for small data (8x8 digits: about a second). The paper's
    MNIST net is ``hidden_layer_sizes=(1000, 500, 250, 30)``, pretrained 50 epochs per
    layer and fine-tuned 200 epochs: see ``docs/autoencoder.md`` for what a budget of
    minutes gives on Fashion-MNIST.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(256, 64, 16)
        Units of the encoder's layers, bottom to top; the last is the code layer (linear
        units). The decoder mirrors them, so the net has ``2 * len(hidden_layer_sizes)``
        weight layers.
    activation : {"logistic", "tanh", "relu", "elu", "identity"}, default="logistic"
        Activation of every hidden layer but the code layer, in the encoder and the
        decoder. Pretrained units are logistic: other activations start from the same
        weights but compute another function (see :class:`DBNClassifier`).
    solver : {"adam", "sgd"}, default="adam"
        Adam, or SGD with (Nesterov) momentum (scikit-learn's semantics).
    alpha : float, default=1e-4
        L2 penalty, scikit-learn's convention ``0.5 * alpha * ||W||**2 / n_batch_rows``.
    batch_size : int or "auto", default="auto"
        Fine-tuning mini-batch size; "auto" is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        SGD's step-size schedule, as in scikit-learn's MLP.
    learning_rate_init : float or "auto", default="auto"
        Initial step size. "auto": 0.003 for Adam, 0.01 for SGD.
    power_t : float, default=0.5
        Exponent of the "invscaling" schedule.
    max_iter : int, default=200
        Maximum number of fine-tuning epochs.
    shuffle : bool, default=True
        Shuffle the samples at each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, pretraining, shuffling and the validation split. The same
        seed gives a bit-identical model whatever ``n_jobs``.
    tol : float, default=1e-4
        Improvement below which an epoch counts as no progress (of the training loss, or
        of the validation score with early stopping).
    verbose : bool or int, default=False
        Print scikit-learn MLP's lines after each fine-tuning epoch; the RBMs print their
        own while pretraining.
    warm_start : bool, default=False
        Continue from the fitted weights (no new pretraining) with a fresh optimizer.
    momentum : float, default=0.9
        SGD momentum.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum (SGD).
    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the rows, stop when their score (the negative
        squared reconstruction error, in the standardised units of a Gaussian first
        layer) stops improving and restore the best weights. "auto": on above 10000 rows.
        Never in ``partial_fit``.
    validation_fraction : float, default=0.1
        Held-out fraction for early stopping.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's parameters.
    n_iter_no_change : int or "auto", default="auto"
        Epochs without improvement of more than ``tol`` before stopping; "auto": 10.
    pretrain : bool, default=True
        Pretrain the encoder as an RBM stack and unroll it; False: random initialisation.
    first_layer : {"auto", "bernoulli", "gaussian"}, default="auto"
        What the bottom layer does with X. "bernoulli": X is taken as given (data in
        [0, 1]); the bottom RBM has binary visible units and the output layer is logistic
        (cross-entropy). "gaussian": X is standardised per feature (``input_mean_``,
        ``input_scale_``); the bottom RBM has Gaussian visible units and the output layer
        is linear (squared error in standardised units; reconstructions are mapped back).
        "auto": "bernoulli" when the training data lies in [0, 1], else "gaussian". A
        Gaussian first layer needs two or more encoder layers when pretraining (a
        Gaussian RBM cannot have linear hidden units).
    pretrain_n_iter : "auto", int or array-like, default="auto"
        RBM epochs, for all layers or one value per layer. "auto": enough epochs for
        6000 mini-batch updates per layer, from 1 to 20.
    pretrain_learning_rate : "auto", float or array-like, default="auto"
        RBM learning rate(s). "auto": 0.1 for binary visible units, 0.01 for a Gaussian
        first layer, and 0.01 for the top RBM (linear hidden units).
    pretrain_batch_size : int or array-like of int, default=10
        RBM mini-batch size(s).
    k : int or array-like of int, default=1
        Gibbs steps of each RBM update.
    persistent : bool or array-like of bool, default=False
        PCD (True) or CD-k (False, as the paper), per layer.
""" + _SAMPLER_DOC + """    max_grad_norm : float or None, default=None
        Clip each mini-batch gradient to this global L2 norm.
    init_scale : float, default=1.0
        Multiplier of the random initial weights (``pretrain=False``).
    dtype : {"float32", "float64"} or None, default=None
        Precision of the parameters, of all computation and of the outputs. None: that of
        the training data (float32 stays float32, anything else becomes float64).
    n_jobs : int, default=None
        Threads of fine-tuning, inference and pretraining. The model does not depend on
        it.

    Attributes
    ----------""" + _NETWORK_ATTRIBUTES.replace("""
    n_outputs_ : int
        Number of output units.""", """
    n_outputs_ : int
        Number of output units (``n_features_in_``).""") + """
    See Also
    --------
    DBN : The RBM stack alone.
    DBNRegressor : The same fine-tuning towards other targets.
    sklearn.decomposition.PCA : The linear baseline.
    """ + _REFERENCES + """
    Examples
    --------
    >>> from fastrbm import DBNAutoencoder
    >>> from fastrbm.datasets import load_digits
    >>> X, _ = load_digits()
    >>> ae = DBNAutoencoder(hidden_layer_sizes=(64, 8), max_iter=20, random_state=0)
    >>> codes = ae.fit(X).transform(X)
    >>> codes.shape
    (1797, 8)
    >>> ae.inverse_transform(codes).shape
    (1797, 64)
    """

    _auto_learning_rates = _AUTO_LEARNING_RATES
    _auto_patience = _AUTO_PATIENCE
    _target_checks = dict(multi_output=True)  # the targets are X (see _encode_targets)

    _parameter_constraints: dict = {
        key: value for key, value in _BaseDBNNetwork._parameter_constraints.items()
        if key not in ("dropout", "batch_norm")} | _SAMPLER_CONSTRAINTS

    def __init__(self, hidden_layer_sizes=(256, 64, 16), activation="logistic", *,
                 solver="adam", alpha=1e-4, batch_size="auto", learning_rate="constant",
                 learning_rate_init="auto", power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping="auto", validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change="auto",
                 pretrain=True, first_layer="auto", pretrain_n_iter="auto",
                 pretrain_learning_rate="auto", pretrain_batch_size=10, k=1,
                 persistent=False, centered=False, fast_learning_rate=None,
                 fast_weight_decay=0.05, n_temperatures=1, min_beta=0.1, swap_every=1,
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
        self.max_grad_norm = max_grad_norm
        self.init_scale = init_scale
        self.dtype = dtype
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------------------
    # the net: shape, targets, pretraining, unrolling

    def _task(self):
        return "reconstruction"

    def _out_activation(self, n_outputs):
        """Logistic outputs (cross-entropy) for data in [0, 1], linear ones (squared
        error) for standardised real-valued data."""
        return "logistic" if self.first_layer_ == "bernoulli" else "identity"

    def _network_settings(self, n_features, n_outputs):
        """The mirrored net: ``n_features``, the encoder, the decoder, ``n_features``;
        ``activation`` everywhere but the linear code layer; no dropout."""
        hidden = _layer_sizes(self.hidden_layer_sizes)
        side = [self.activation] * (len(hidden) - 1)
        layout, n_params, n_state = _bp.make_layout(
            [n_features, *hidden, *hidden[-2::-1], n_outputs], side + ["identity"] + side,
            self._out_activation(n_outputs))
        return layout, n_params, n_state, np.zeros(layout.shape[0])

    def _encode_targets(self, y, dtype, *, first, incremental, classes):
        """The reconstruction targets: X (passed as y) standardised as the input will be.

        The base class fits the input standardisation after the targets; the autoencoder
        needs it for them, so it is fitted here first (the base class then computes the
        same values again)."""
        X = np.asarray(y, dtype=dtype)
        if first:
            self.first_layer_ = _resolve_first_layer(self.first_layer, X)
            self.input_mean_, self.input_scale_ = _standardisation(X, self.first_layer_)
        return engine_array(_standardised(X, self.input_mean_, self.input_scale_))

    def _pretrain_stack(self, n_samples, dtype):
        """The DBN nets' stack with linear (Gaussian) hidden units on the top RBM, at the
        code layer's learning rate where ``pretrain_learning_rate`` leaves it "auto"."""
        rbms = super()._pretrain_stack(n_samples, dtype)
        if self.first_layer_ == "gaussian" and len(rbms) == 1:
            raise ValueError(
                "a pretrained DBNAutoencoder on real-valued data (a Gaussian first layer) "
                "needs at least two hidden layers: a Gaussian RBM cannot have the linear "
                "hidden units of the code layer. Add a layer, or set pretrain=False.")
        top = rbms[-1]
        top.set_params(hidden_units="gaussian")
        if _is_auto(_per_layer(self.pretrain_learning_rate, len(rbms),
                               "pretrain_learning_rate")[-1]):
            top.set_params(learning_rate=CODE_LAYER_LEARNING_RATE)
        return rbms

    def _initialize(self, X, Y, layout, n_params, n_state, dropout, stack, rng):
        """The DBN nets' random initialisation, then pretraining and unrolling: the
        encoder takes each RBM's weights and hidden biases, the decoder (layer
        ``2 L - 1 - l`` for RBM ``l``) the same weights transposed and the visible biases.
        The initial gradient norms are measured again at the unrolled weights."""
        completed = super()._initialize(X, Y, layout, n_params, n_state, dropout, None, rng)
        if stack is None:
            return completed
        completed = self._fit_stack_and_unroll(stack, X, rng)
        self.initial_gradient_norms_ = self._initial_gradient_norms(X, Y, dropout, rng)
        return completed

    def _fit_stack_and_unroll(self, stack, X, rng):
        completed = _fit_stack(stack, X, rng)
        coefs, intercepts, _, _ = _bp.param_views(self._theta, self._layout)
        for l, rbm in enumerate(stack):
            coefs[l][:] = rbm.components_.T
            intercepts[l][:] = rbm.intercept_hidden_
            coefs[-1 - l][:] = rbm.components_
            intercepts[-1 - l][:] = rbm.intercept_visible_
        self.rbms_ = stack
        return completed

    # ------------------------------------------------------------------------------
    # fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Pretrain (when ``pretrain=True``), unroll and fine-tune on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data: in [0, 1] for binary visible units, any real values for a
            Gaussian first layer (see ``first_layer``).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : DBNAutoencoder
            The fitted model.
        """
        return self._fit(X, X, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """One fine-tuning epoch on X (the first call also pretrains on this chunk).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : DBNAutoencoder
            The updated model.
        """
        return self._fit(X, X, incremental=True)

    def _validation_score(self, X, y):
        """Early stopping's score: the negative squared reconstruction error of the
        held-out rows X (standardised for a Gaussian first layer)."""
        return -_squared_error(X, self._forward(X))

    # ------------------------------------------------------------------------------
    # checkpoints

    def _check_network(self):
        """The checks of :meth:`DenseTrainer._check_network`, and that the table is this
        autoencoder's mirrored net; returns ``[n_features, *encoder sizes, n_features]``
        (what the stack check of the base class expects)."""
        sizes = super()._check_network()
        expected = self._network_settings(self.n_features_in_, self.n_outputs_)[0]
        if not np.array_equal(self._layout, expected):
            raise ValueError("the layout table is not this autoencoder's (hidden_layer_sizes, "
                             "activation, first_layer_)")
        return sizes[:len(sizes) // 2 + 1] + sizes[-1:]

    # ------------------------------------------------------------------------------
    # inference

    @property
    def _code_layer(self):
        """Number of weight layers of the encoder (the code layer is its last output)."""
        return self._layout.shape[0] // 2

    @property
    def _n_features_out(self):
        """Units of the code layer (for get_feature_names_out)."""
        return int(self._layout[self._code_layer - 1, _bp.N_OUT])

    def _validated(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=self._theta.dtype, order="C", reset=False)
        return X, _standardised(X, self.input_mean_, self.input_scale_)

    def _in_input_units(self, R):
        return R if self.input_mean_ is None else R * self.input_scale_ + self.input_mean_

    def transform(self, X):
        """The codes: the encoder's output (the linear code layer).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, shaped as in fit.

        Returns
        -------
        codes : ndarray of shape (n_samples, hidden_layer_sizes[-1])
            The code of each row.
        """
        return self._forward(self._validated(X)[1], slice(0, self._code_layer))

    def inverse_transform(self, X):
        """Decode codes: the decoder's output, in the units of the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, hidden_layer_sizes[-1])
            Codes, as :meth:`transform` gives them.

        Returns
        -------
        X_reconstructed : ndarray of shape (n_samples, `n_features_in_`)
            Probabilities in [0, 1] (binary visible units) or values (a Gaussian first
            layer, mapped back through ``input_mean_`` and ``input_scale_``).
        """
        check_is_fitted(self)
        codes = check_array(X, dtype=self._theta.dtype, order="C")
        if codes.shape[1] != self._n_features_out:
            raise ValueError(f"X has {codes.shape[1]} features, but the code layer of "
                             f"{type(self).__name__} has {self._n_features_out} units")
        return self._in_input_units(self._forward(codes, slice(self._code_layer, None)))

    def reconstruct(self, X):
        """``inverse_transform(transform(X))`` in one pass through the net.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, shaped as in fit.

        Returns
        -------
        X_reconstructed : ndarray of shape (n_samples, `n_features_in_`)
            The reconstructions, in the units of X.
        """
        return self._in_input_units(self._forward(self._validated(X)[1]))

    def score(self, X, y=None):
        """Negative squared reconstruction error per row, in the units of X.

        Minus the mean over rows of ``sum((X - reconstruct(X))**2)`` over the features.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, shaped as in fit.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Higher is better; 0 is a perfect reconstruction.
        """
        X, Z = self._validated(X)
        return -_squared_error(X, self._in_input_units(self._forward(Z)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = (
            ["float64", "float32"] if self.dtype is None else [self.dtype])
        return tags
