"""Recurrent nets trained by backpropagation through time, as scikit-learn estimators.

:class:`RNNClassifier` and :class:`RNNRegressor` put a dense output layer on the last
step's hidden state of a stack of recurrent layers (tanh, sigmoid or rectified units, or
LSTM cells) and train everything by BPTT in the compiled engine
``fastrbm._kernels.recurrent``. Their optimiser, regularisation and stopping parameters are
scikit-learn's MLP's, and they record the gradient with respect to every step's hidden
state (``gradient_norms_through_time_``): the vanishing (or exploding) gradient through
time, measured.

Names: "RNN" is what PyTorch and Keras users look for; the cell is a parameter, so one
class covers the plain recurrent net, the IRNN and the LSTM.
"""
import contextlib
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._kernels import recurrent as _rnn
from ._network import (AUTO_PATIENCE, MLP_CONSTRAINTS, ClassifierOutput, FittedArray,
                       NetworkTrainer,
                       RegressorOutput, check_standardisation, engine_array, mean_and_scale,
                       unchanged_on_error)
from ._persistence import CheckpointMixin
from ._utils import fit_dtype

__all__ = ["RNNClassifier", "RNNRegressor"]

PREDICT_ROWS = 512  # rows per compiled inference chunk
INIT_NORM_BATCHES = 20  # mini-batches averaged for the initial gradient norms

# Adam 0.001 is the recurrent nets' common default (PyTorch's, Keras's); SGD with momentum
# takes 0.01 (larger rates blow up plain recurrent nets without clipping).
AUTO_LEARNING_RATES = {("adam", "classification"): 0.001, ("adam", "regression"): 0.001,
                       ("sgd", "classification"): 0.01, ("sgd", "regression"): 0.01}


def _as_sequences(X):
    """(n_samples, n_steps, n_features) view of validated X: 2-D X is univariate."""
    return X[:, :, np.newaxis] if X.ndim == 2 else X


def _check_lengths(lengths, n_samples, n_steps):
    """Valid steps per row as the engine's int64 array (all steps when None)."""
    if lengths is None:
        return np.full(n_samples, n_steps, np.int64)
    lengths = np.asarray(lengths)
    if lengths.shape != (n_samples,) or lengths.dtype.kind not in "iu":
        raise ValueError(f"lengths must be {n_samples} integers, one per sequence; got an "
                         f"array of shape {lengths.shape} and dtype {lengths.dtype}")
    if lengths.size and (lengths.min() < 1 or lengths.max() > n_steps):
        raise ValueError(f"lengths must lie in [1, {n_steps}] (the number of steps of X); "
                         f"got values in [{lengths.min()}, {lengths.max()}]")
    return np.ascontiguousarray(lengths, np.int64)


def _orthogonal(rng, n):
    """A random n x n orthogonal matrix (QR of a Gaussian, signs fixed: Haar-distributed)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


class _BaseRNN(NetworkTrainer, CheckpointMixin, BaseEstimator):
    """Parameters, validation, initialisation and the recurrent engine shared by
    RNNClassifier and RNNRegressor (the output layer, loss and labels differ)."""

    _fitted_arrays = (
        FittedArray("_layout", "layout"),
        FittedArray("_theta", "parameters"),
        FittedArray("_state_1", "moments"),
        FittedArray("_state_2", "moments_adam"),
    )
    _auto_learning_rates = AUTO_LEARNING_RATES
    _auto_patience = AUTO_PATIENCE
    _checkpoint_arrays = tuple(entry.name for entry in _fitted_arrays) + (
        "gradient_norms_", "initial_gradient_norms_", "gradient_norms_through_time_",
        "initial_gradient_norms_through_time_", "input_mean_", "input_scale_")
    _checkpoint_values = ("n_features_in_", "n_outputs_", "out_activation_", "n_iter_", "t_",
                          "loss_curve_", "best_loss_", "validation_scores_",
                          "best_validation_score_", "_steps", "_current_lr", "_seed",
                          "_no_improvement_count")

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "cell": [StrOptions(set(_rnn.CELL_CODES))],
        "recurrent_init": [StrOptions({"orthogonal", "identity", "uniform"})],
        "forget_bias": [Real],
        "init_scale": [Interval(Real, 0, None, closed="neither")],
        **MLP_CONSTRAINTS,
        "dtype": [StrOptions({"float32", "float64"}), None],
    }

    def __init__(self, hidden_layer_sizes=(64,), cell="lstm", *, recurrent_init="orthogonal",
                 forget_bias=1.0, init_scale=1.0, solver="adam", alpha=1e-4,
                 batch_size="auto", learning_rate="constant", learning_rate_init="auto",
                 power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4,
                 verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping="auto", validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change="auto", max_grad_norm=None, dtype=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.cell = cell
        self.recurrent_init = recurrent_init
        self.forget_bias = forget_bias
        self.init_scale = init_scale
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
        self.max_grad_norm = max_grad_norm
        self.dtype = dtype

    # ------------------------------------------------------------------------------
    # data

    def _hidden_sizes(self):
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if sizes.ndim != 1 or sizes.size == 0 or sizes.dtype.kind not in "iu" \
                or (sizes < 1).any():
            raise ValueError(f"hidden_layer_sizes must be positive integers, got "
                             f"{self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    def _sequences(self, X, lengths, *, reset):
        """Engine input from validated X: standardised (n, n_steps, n_features), C-ordered,
        and the lengths; a first fit (``reset``) sets the standardisation."""
        if X.ndim > 3:
            raise ValueError(f"X must have 2 or 3 dimensions (samples, steps[, features]), "
                             f"got {X.ndim}")
        X = _as_sequences(X)
        lengths = _check_lengths(lengths, X.shape[0], X.shape[1])
        if reset:  # statistics of the valid steps only: padding must not shift them
            valid = X[np.arange(X.shape[1]) < lengths[:, np.newaxis]]
            self.input_mean_, self.input_scale_ = mean_and_scale(
                valid.mean(axis=0, dtype=np.float64), valid.var(axis=0, dtype=np.float64),
                X.dtype)
        elif X.shape[2] != self._layout[0, _rnn.N_IN]:
            raise ValueError(f"X has {X.shape[2]} features per step, the model was fitted "
                             f"with {self._layout[0, _rnn.N_IN]}")
        return engine_array((X - self.input_mean_) / self.input_scale_), lengths

    # ------------------------------------------------------------------------------
    # fitting

    def _fit(self, X, y, lengths, *, incremental, classes=None):
        """Validate (leaving the model untouched on error), initialise, train."""
        with unchanged_on_error(self):
            first = not hasattr(self, "_theta") or not (incremental or self.warm_start)
            X, y = validate_data(self, X, y, dtype=fit_dtype(self.dtype) if first
                                 else self._theta.dtype, order="C", allow_nd=True, reset=first,
                                 **self._target_checks)
            X, lengths = self._sequences(X, lengths, reset=first)
            Y = self._encode_targets(y, X.dtype, first=first, incremental=incremental,
                                     classes=classes)
            layout, n_params = _rnn.make_rnn_layout(
                X.shape[2], self._hidden_sizes(), self.cell, Y.shape[1],
                self._out_activation(Y.shape[1]))
            if not first and not np.array_equal(layout, self._layout):
                raise ValueError("the network's shape (hidden_layer_sizes, cell) changed since "
                                 "the last fit; set warm_start=False to start afresh")
            rng = check_random_state(self.random_state) if first or not incremental \
                else self._shuffle_rng()
            early_stopping = self._early_stopping(X.shape[0], incremental)
            validation = None
            if early_stopping:
                train, val, y_val = self._validation_indices(y, rng)
                validation = ((X[val], lengths[val]), y_val)
                X, Y, lengths = engine_array(X[train]), engine_array(Y[train]), lengths[train]
        if first:
            self._initialize(X, Y, lengths, layout, n_params, rng)
        if first or not incremental:
            self._start_training(rng, early_stopping)
        self._run_epochs(self._training_engine(X, Y, lengths), X.shape[0],
                         1 if incremental else self.max_iter, rng, incremental,
                         early_stopping, *(validation or (None, None)))
        return self

    def _initialize(self, X, Y, lengths, layout, n_params, rng):
        """Weights: input and output weights Glorot-uniform, recurrent weights orthogonal,
        identity (the IRNN) or Glorot-uniform per gate, all times ``init_scale``; biases
        zero but the LSTM forget gate's (``forget_bias``)."""
        self._layout = layout
        self._theta = np.zeros(n_params, X.dtype)
        self.n_outputs_ = Y.shape[1]
        self.out_activation_ = self._out_activation(Y.shape[1])
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self.best_loss_ = None
        params = _rnn.param_views(self._theta, layout)
        scale = self.init_scale
        for l, (W, U, b) in enumerate(zip(params.W, params.U, params.b)):
            h = int(layout[l, _rnn.N_HIDDEN])
            for g in range(W.shape[1] // h):
                gate = slice(g * h, (g + 1) * h)
                bound = scale * np.sqrt(6.0 / (W.shape[0] + h))
                W[:, gate] = rng.uniform(-bound, bound, (W.shape[0], h))
                if self.recurrent_init == "orthogonal":
                    U[:, gate] = scale * _orthogonal(rng, h)
                elif self.recurrent_init == "identity":
                    U[:, gate] = scale * np.eye(h)
                else:
                    bound = scale * np.sqrt(3.0 / h)
                    U[:, gate] = rng.uniform(-bound, bound, (h, h))
            if layout[l, _rnn.CELL] == _rnn.CELL_LSTM:
                b[h:2 * h] = self.forget_bias  # gate order i, f, g, o
        bound = scale * np.sqrt(6.0 / sum(params.W_out.shape))
        params.W_out[:] = rng.uniform(-bound, bound, params.W_out.shape)
        n_groups = 2 * (layout.shape[0] - 1) + 1
        self.gradient_norms_ = np.empty((0, n_groups))
        self.gradient_norms_through_time_ = np.empty((0, X.shape[1]))
        self.initial_gradient_norms_, self.initial_gradient_norms_through_time_ = \
            self._initial_gradient_norms(X, Y, lengths, rng)

    def _gradient_groups(self):
        """Labels of the parameter groups of ``gradient_norms_``, bottom to top."""
        names = []
        for l, row in enumerate(self._layout[:-1]):
            gh = _rnn.n_gates(row[_rnn.CELL]) * row[_rnn.N_HIDDEN]
            names += [f"W{l + 1}: {row[_rnn.N_IN]}x{gh}", f"U{l + 1}: {row[_rnn.N_HIDDEN]}x{gh}"]
        return names + [f"W_out: {self._layout[-1, _rnn.N_IN]}x{self._layout[-1, _rnn.N_HIDDEN]}"]

    @staticmethod
    def _group_norms(net):
        """Per-group norms ``[W_1, U_1, ..., W_L, U_L, W_out]`` from the engine's table."""
        return np.append(net.group_norms[:-1].ravel(), net.group_norms[-1, 0])

    def _initial_gradient_norms(self, X, Y, lengths, rng):
        """Mean gradient norms (per group, and per step of the top layer) over up to 20
        mini-batches at the initial weights, no step taken."""
        rows = self._batch_rows(X.shape[0])
        order = rng.permutation(X.shape[0])[:rows * INIT_NORM_BATCHES]
        net = _rnn.make_rnn_network(self._layout, self._theta, batch_size=rows,
                                    n_steps=X.shape[1])
        settings = _rnn.make_settings(alpha=self.alpha)
        groups, steps, n_batches = 0.0, 0.0, 0
        for start in range(0, order.size, rows):
            idx = order[start:start + rows]
            _rnn.loss_grad(engine_array(X[idx]), engine_array(Y[idx]),
                           engine_array(lengths[idx]), net, settings)
            groups = groups + self._group_norms(net)
            steps = steps + net.step_norms[-1]
            n_batches += 1
        return groups / n_batches, steps / n_batches

    @contextlib.contextmanager
    def _training_engine(self, X, Y, lengths):
        """The recurrent epoch for :meth:`NetworkTrainer._run_epochs` (serial; the kernels
        hold BLAS at one thread themselves)."""
        rows = self._batch_rows(X.shape[0])
        net = _rnn.make_rnn_network(self._layout, self._theta, self._state_1, self._state_2,
                                    rows, X.shape[1])
        settings = self._settings(_rnn)

        def epoch(perm, learning_rate, steps):
            return _rnn.run_epoch(X, Y, lengths, perm, rows, net,
                                  settings._replace(learning_rate=learning_rate), steps)

        def record():
            self.gradient_norms_ = np.vstack([self.gradient_norms_, self._group_norms(net)])
            self.gradient_norms_through_time_ = np.vstack(
                [self.gradient_norms_through_time_, net.step_norms[-1]])
        yield epoch, record

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, lengths=None):
        """Train the recurrent net on sequences X and targets y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_steps, n_features) or (n_samples, n_steps)
            Sequences; a 2-D X holds univariate sequences (one feature per step).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Class labels (classifier) or target values (regressor).
        lengths : array-like of int, shape (n_samples,), default=None
            Valid steps of each sequence (sequences shorter than n_steps padded at the
            end with any finite values); None: every sequence has n_steps steps.

        Returns
        -------
        self : estimator
            The fitted model.
        """
        return self._fit(X, y, lengths, incremental=False)

    # ------------------------------------------------------------------------------
    # checkpoints and inference

    def _checkpoint_restore(self, state):
        """Set the loaded state after checking the network arrays against the layout."""
        super()._checkpoint_restore(state)
        layout = self._layout
        if layout.ndim != 2 or layout.shape[0] < 2 or layout.dtype != np.int64:
            raise ValueError(f"malformed layout table of shape {layout.shape}")
        cells = {code: name for name, code in _rnn.CELL_CODES.items()}
        outputs = {code: name for name, code in _rnn.OUTPUT_CODES.items()}
        try:
            expected, n_params = _rnn.make_rnn_layout(
                int(layout[0, _rnn.N_IN]), [int(h) for h in layout[:-1, _rnn.N_HIDDEN]],
                [cells[int(c)] for c in layout[:-1, _rnn.CELL]],
                int(layout[-1, _rnn.N_HIDDEN]), outputs[int(layout[-1, _rnn.CELL])])
        except (KeyError, ValueError) as exc:
            raise ValueError(f"the layout table is inconsistent: {exc}") from None
        if not np.array_equal(layout, expected) or layout[-1, _rnn.N_HIDDEN] != self.n_outputs_:
            raise ValueError("the layout table is inconsistent")
        self._check_fitted_arrays(n_params)
        check_standardisation(self.input_mean_, self.input_scale_,
                              int(layout[0, _rnn.N_IN]), self._theta.dtype)

    def _forward(self, data):
        """Network output for engine input ``data = (X, lengths)``."""
        X, lengths = data
        # writable copies of read-only arrays, as DenseTrainer._forward
        theta, layout = engine_array(self._theta), engine_array(self._layout)
        out = np.empty((X.shape[0], self.n_outputs_), theta.dtype)
        rows = max(1, min(PREDICT_ROWS, X.shape[0]))
        work = np.empty(_rnn.workspace_size(layout, rows, X.shape[1]), theta.dtype)
        _rnn.predict(X, lengths, theta, layout, rows, work, out)
        return out

    def _validated_forward(self, X, lengths=None):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=self._theta.dtype, order="C", allow_nd=True,
                          reset=False)
        return self._forward(self._sequences(X, lengths, reset=False))

    @property
    def coefs_(self):
        """Named views of the weights (a ``RecurrentParams`` named tuple).

        ``W``, ``U``, ``b``: lists with one entry per recurrent layer; ``W_out``, ``b_out``:
        the output layer.
        """
        return _rnn.param_views(self._theta, self._layout)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


_RNN_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(64,)
        Units of each recurrent layer (layer l > 0 reads the hidden sequence of l - 1).
    cell : {"lstm", "tanh", "sigmoid", "relu"}, default="lstm"
        The recurrent unit: an LSTM cell (Hochreiter & Schmidhuber 1997; gates i, f, g, o),
        or ``h_t = act(x_t W + h_{t-1} U + b)`` with tanh, logistic or rectified units.
    recurrent_init : {"orthogonal", "identity", "uniform"}, default="orthogonal"
        Initial recurrent weights U (per gate block): a random orthogonal matrix, the
        identity (with ``cell="relu"``: the IRNN of Le, Jaitly & Hinton 2015), or
        Glorot-uniform; times ``init_scale``.
    forget_bias : float, default=1.0
        Initial bias of the LSTM forget gate (Gers et al. 2000); other biases start at 0.
    init_scale : float, default=1.0
        Factor on every initial weight (e.g. larger recurrent weights to study exploding
        gradients).
    solver : {"adam", "sgd"}, default="adam"
        The optimiser: Adam, or SGD with momentum.
    alpha : float, default=1e-4
        L2 penalty on the weights (scikit-learn's MLP convention).
    batch_size : int or "auto", default="auto"
        ``min(200, n_samples)`` for "auto".
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        SGD's schedule, as scikit-learn's MLP.
    learning_rate_init : float or "auto", default="auto"
        0.001 for Adam, 0.01 for SGD.
    power_t : float, default=0.5
        Exponent of SGD's "invscaling" schedule.
    max_iter : int, default=200
        Epochs.
    shuffle : bool, default=True
        Shuffle the sequences before each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffling and the validation split; an int gives
        bit-identical models.
    tol : float, default=1e-4
        Improvement of the loss (or validation score) below which an epoch counts toward
        ``n_iter_no_change``.
    verbose : bool or int, default=False
        Print scikit-learn MLP's per-iteration lines.
    warm_start : bool, default=False
        Let ``fit`` continue from the current weights (with a fresh optimiser state).
    momentum : float, default=0.9
        SGD's momentum.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for SGD.
    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the data and stop when its score stops
        improving; "auto": on above 10000 sequences.
    validation_fraction : float, default=0.1
        Fraction of the sequences held out for early stopping.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's.
    n_iter_no_change : int or "auto", default="auto"
        Patience: 10 epochs for classification, 50 for regression.
    max_grad_norm : float or None, default=None
        Rescale each mini-batch's whole gradient to at most this norm (Pascanu, Mikolov &
        Bengio 2013): the remedy for exploding gradients.
    dtype : {"float32", "float64"} or None, default=None
        Precision; None keeps float32 and float64 input, anything else becomes float64.

    Attributes
    ----------
    n_iter_ : int
        Epochs run.
    t_ : int
        Training sequences seen by the optimizer.
    loss_curve_ : list of float
        Mean training loss of each epoch (L2 term included).
    best_loss_ : float or None
    validation_scores_ : list of float or None
    best_validation_score_ : float or None
    coefs_ : RecurrentParams
        Named views of the weights: ``W``, ``U``, ``b`` (lists, one per recurrent layer, of
        shapes (n_in, G*n_hidden), (n_hidden, G*n_hidden), (G*n_hidden,); G = 4 for LSTM,
        the gates' blocks in the order i, f, g, o), ``W_out``, ``b_out``.
    n_outputs_ : int
    out_activation_ : str
    gradient_norms_through_time_ : ndarray of shape (`n_iter_`, n_steps)
        Per epoch, the norm of dL/dh_t (the gradient of the loss with respect to the top
        recurrent layer's hidden state at step t, over the whole mini-batch), averaged over
        the epoch's mini-batches, before clipping: how much of the error signal reaches
        step t. See :func:`fastrbm.diagnostics.gradient_through_time_summary` and
        :func:`fastrbm.plotting.plot_gradient_norms_through_time`.
    initial_gradient_norms_through_time_ : ndarray of shape (n_steps,)
        The same at the initial weights (mean over up to 20 mini-batches).
    gradient_norms_ : ndarray of shape (`n_iter_`, 2 * n_recurrent_layers + 1)
        Per epoch, the mean norm of the gradient of each parameter group: ``W_1, U_1, ...,
        W_L, U_L, W_out``.
    initial_gradient_norms_ : ndarray of shape (2 * n_recurrent_layers + 1,)
    input_mean_, input_scale_ : ndarray of shape (n_features_per_step,)
        Each input feature is standardised inside (statistics over all sequences and
        steps of the first fit; a constant feature gets scale 1).
    n_features_in_ : int
        X's second dimension, as scikit-learn counts it: the number of steps.
"""

_RNN_REFERENCES = """
    Notes
    -----
    X of shape (n_samples, n_steps, n_features); predict needs the same n_steps and
    n_features (pad shorter sequences at the end and pass ``lengths``). The engine runs
    serially (one thread); results are bit-identical for a given ``random_state``.

    References
    ----------
    S. Hochreiter, J. Schmidhuber (1997). Long short-term memory. Neural Computation 9(8).
    Y. Bengio, P. Simard, P. Frasconi (1994). Learning long-term dependencies with gradient
    descent is difficult. IEEE Transactions on Neural Networks 5(2).
    R. Pascanu, T. Mikolov, Y. Bengio (2013). On the difficulty of training recurrent
    neural networks. ICML.
    Q. Le, N. Jaitly, G. Hinton (2015). A simple way to initialize recurrent networks of
    rectified linear units. arXiv:1504.00941.
"""


class RNNClassifier(ClassifierMixin, ClassifierOutput, _BaseRNN):
    __doc__ = """Recurrent net classifier trained by backpropagation through time.

    A stack of recurrent layers reads each sequence; a softmax output layer (logistic for
    two classes) on the last step's hidden state gives the class probabilities, trained
    to minimise cross-entropy.
    """ + _RNN_DOC + """
    See Also
    --------
    RNNRegressor : The same net with a linear output, for regression.
    fastrbm.DBNClassifier : A feed-forward net, optionally pretrained.
    """ + _RNN_REFERENCES + """
    Examples
    --------
    >>> from fastrbm import RNNClassifier
    >>> from fastrbm.datasets import make_temporal_order
    >>> X, y = make_temporal_order(n_samples=400, n_steps=20, random_state=0)
    >>> clf = RNNClassifier(hidden_layer_sizes=(32,), max_iter=30, random_state=0)
    >>> clf.fit(X, y).score(X, y) > 0.9
    True
    """

    _checkpoint_arrays = _BaseRNN._checkpoint_arrays + ClassifierOutput.output_arrays

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, lengths=None):
        """One epoch on X, y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_steps, n_features) or (n_samples, n_steps)
            A chunk of sequences.
        y : array-like of shape (n_samples,)
            Its labels.
        classes : array-like of shape (n_classes,), default=None
            All classes; required on the first call.
        lengths : array-like of int, shape (n_samples,), default=None
            Valid steps of each sequence.

        Returns
        -------
        self : RNNClassifier
            The updated model.
        """
        return self._fit(X, y, lengths, incremental=True, classes=classes)

    def predict_proba(self, X, lengths=None):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_steps, n_features) or (n_samples, n_steps)
            Sequences.
        lengths : array-like of int, shape (n_samples,), default=None
            Valid steps of each sequence.

        Returns
        -------
        P : ndarray of shape (n_samples, n_classes)
            Probability of each class (columns in the order of ``classes_``).
        """
        return self._probabilities(self._validated_forward(X, lengths))

    def predict(self, X, lengths=None):
        """Most probable class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_steps, n_features) or (n_samples, n_steps)
            Sequences.
        lengths : array-like of int, shape (n_samples,), default=None
            Valid steps of each sequence.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels.
        """
        return self._labels(self._validated_forward(X, lengths))


class RNNRegressor(RegressorMixin, RegressorOutput, _BaseRNN):
    __doc__ = """Recurrent net regressor trained by backpropagation through time.

    As :class:`RNNClassifier` with a linear output layer and the squared error
    ``0.5 * sum_outputs((y_hat - y)**2)`` averaged over samples; the targets are
    standardised inside (``target_mean_``, ``target_scale_``) and predictions mapped back.
    """ + _RNN_DOC + """
    See Also
    --------
    RNNClassifier : The same net with a softmax output, for classification.
    fastrbm.DBNRegressor : A feed-forward net, optionally pretrained.
    """ + _RNN_REFERENCES + """
    Examples
    --------
    >>> from fastrbm import RNNRegressor
    >>> from fastrbm.datasets import make_adding_problem
    >>> X, y = make_adding_problem(n_samples=500, n_steps=10, random_state=0)
    >>> reg = RNNRegressor(hidden_layer_sizes=(32,), max_iter=50, random_state=0)
    >>> reg.fit(X, y).score(X, y) > 0.5
    True
    """

    _checkpoint_arrays = _BaseRNN._checkpoint_arrays + RegressorOutput.output_arrays

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, lengths=None):
        """One epoch on X, y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_steps, n_features) or (n_samples, n_steps)
            A chunk of sequences.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Its targets.
        lengths : array-like of int, shape (n_samples,), default=None
            Valid steps of each sequence.

        Returns
        -------
        self : RNNRegressor
            The updated model.
        """
        return self._fit(X, y, lengths, incremental=True)

    def predict(self, X, lengths=None):
        """Predicted targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_steps, n_features) or (n_samples, n_steps)
            Sequences.
        lengths : array-like of int, shape (n_samples,), default=None
            Valid steps of each sequence.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predictions (1-D when fitted on a 1-D y).
        """
        out = self._targets(self._validated_forward(X, lengths))
        return out.ravel() if out.shape[1] == 1 else out
