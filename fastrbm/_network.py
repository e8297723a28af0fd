"""The training machinery shared by the backprop-trained estimators (the DBN nets and the
recurrent nets): scikit-learn MLP's schedule, early stopping and stopping rule around a
compiled epoch, rollback, and the classifier and regressor outputs.

:class:`NetworkTrainer` is the engine-independent part; :class:`DenseTrainer` adds the
dense engine ``fastrbm._kernels.backprop`` (``fastrbm.rnn`` has the recurrent one).
:class:`ClassifierOutput` and :class:`RegressorOutput` encode targets and decode outputs.

The fitted state is declared once, in :data:`FITTED_ARRAYS`: each array's attribute name
(also its name in checkpoint files) and its role. Checkpoints, the rollback of an epoch
(divergence, Ctrl-C), the early-stopping copy of the best weights and the shape checks of
a loaded model all derive from that table.
"""
import contextlib
import warnings
from collections import namedtuple
from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, unique_labels

from ._kernels import backprop as _bp
from ._progress import EpochProgress
from ._utils import blas_threads, draw_seed, engine_blocks, engine_threads, numba_threads

__all__ = ["FITTED_ARRAYS", "NetworkTrainer", "DenseTrainer", "ClassifierOutput",
           "RegressorOutput", "Rollback"]

BN_EPS = 1e-5
BN_MOMENTUM = 0.1
PREDICT_ROWS = 1024  # rows per compiled inference chunk
INIT_NORM_BATCHES = 20  # mini-batches averaged for initial_gradient_norms_

# Fine-tuning learning_rate_init "auto" by (solver, task). Adam: 0.003 lets the pretrained
# net reach its accuracy within the default epochs on small sets (0.001, scikit-learn's
# default, stops short on the plateau of the loss); standardised regression targets take
# 0.01. SGD with momentum 0.9: 0.1 for a softmax on [0, 1] features, 0.01 for the squared
# error, whose gradient is not bounded.
# n_iter_no_change "auto" by task: a logistic net fitting standardised regression targets
# sits near the linear fit for tens of epochs before it bends (a smooth 4-feature target:
# R^2 0.52 when 10 epochs of patience end it there, 0.97 with 50), while classification
# keeps scikit-learn's 10.
AUTO_PATIENCE = {"classification": 10, "regression": 50}

AUTO_LEARNING_RATES = {("adam", "classification"): 0.003, ("adam", "regression"): 0.01,
                        ("sgd", "classification"): 0.1, ("sgd", "regression"): 0.01}

# early_stopping "auto" holds out a validation set above this many rows (the rule of
# scikit-learn's HistGradientBoosting): on large data it ends the long plateau of slow
# training-loss gains.
EARLY_STOPPING_ROWS = 10000


@contextlib.contextmanager
def unchanged_on_error(estimator):
    """Restore the estimator's attributes when the block raises: a rejected call (bad
    data or parameters) leaves a fitted model as it was."""
    before = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(before)
        raise


def mean_and_scale(mean, var, dtype):
    """``(mean, standard deviation)`` in ``dtype``, the scale of a constant column 1: the
    one rule for the inputs' and the regression targets' standardisation."""
    scale = np.sqrt(var)
    scale[scale < 10 * np.finfo(dtype).eps] = 1.0
    return mean.astype(dtype), scale.astype(dtype)


def check_standardisation(mean, scale, n_features, dtype):
    """Raise ValueError unless checkpointed ``(mean, scale)`` are both None or both finite
    vectors of ``n_features`` in ``dtype``, the scale positive."""
    if mean is None and scale is None:
        return
    for name, array in (("input or target mean", mean), ("input or target scale", scale)):
        if not isinstance(array, np.ndarray) or array.shape != (n_features,) \
                or array.dtype != dtype or not np.isfinite(array).all():
            raise ValueError(f"the {name} does not fit {n_features} values in {dtype}")
    if not (scale > 0).all():
        raise ValueError("the input or target scale is not positive")


# A finite loss this many times a constant prediction's means the weights are blowing up
# (an exploding recurrent net trains on to losses of 1e18 without a non-finite value).
DIVERGING_LOSS_FACTOR = 1e3

# scikit-learn MLP's optimiser, schedule and stopping parameters, as every trained net
# (DBN nets, autoencoder, recurrent nets) takes them
MLP_CONSTRAINTS = {
    "solver": [StrOptions({"sgd", "adam"})],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
    "learning_rate_init": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
    "power_t": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "momentum": [Interval(Real, 0, 1, closed="both")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean", StrOptions({"auto"})],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "beta_1": [Interval(Real, 0, 1, closed="left")],
    "beta_2": [Interval(Real, 0, 1, closed="left")],
    "epsilon": [Interval(Real, 0, None, closed="neither")],
    "n_iter_no_change": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
}


FittedArray = namedtuple("FittedArray", "name role")

# The dense net's arrays. Roles: "layout" (the int64 table every size derives from),
# "parameters" (theta, the flat trainable vector), "statistics" (batch-norm running means
# and variances), "moments"
# (SGD velocity or Adam first moments), "moments_adam" (Adam second moments, empty under
# SGD). The attribute names are the checkpoint entries' names: files written by earlier
# versions load unchanged.
FITTED_ARRAYS = (
    FittedArray("_layout", "layout"),
    FittedArray("_theta", "parameters"),
    FittedArray("_bn_state", "statistics"),
    FittedArray("_state_1", "moments"),
    FittedArray("_state_2", "moments_adam"),
)
TRAINED_ROLES = ("parameters", "statistics", "moments", "moments_adam")  # an epoch writes
BEST_ROLES = ("parameters", "statistics")  # early stopping keeps and restores these


def engine_array(A):
    """C-contiguous and writable: the one array type the compiled kernels are built for
    (a read-only input would compile a second specialisation)."""
    A = np.ascontiguousarray(A)
    return A if A.flags.writeable else A.copy()


class Rollback:
    """Copies of some arrays, allocated once: :meth:`save` copies the arrays in,
    :meth:`restore` copies them back (in place, so views of the arrays stay valid).

    Parameters
    ----------
    arrays : list of ndarray
        The live arrays.
    """

    def __init__(self, arrays):
        self._live = list(arrays)
        self._saved = [np.empty_like(a) for a in self._live]
        self.saved = False

    def save(self):
        for saved, live in zip(self._saved, self._live):
            np.copyto(saved, live)
        self.saved = True

    def restore(self):
        for saved, live in zip(self._saved, self._live):
            np.copyto(live, saved)


class NetworkTrainer:
    """The fitting machinery of the backprop-trained estimators (mixed into them): the
    epoch loop of scikit-learn's ``_fit_stochastic`` over a compiled epoch, its schedule,
    early stopping and stopping rule, rollback, and the fresh-optimizer bookkeeping. The
    estimator supplies its parameters (scikit-learn MLP's names), ``_fitted_arrays``,
    ``_out_activation``, ``_validation_score`` and ``_training_engine``."""

    _fitted_arrays = FITTED_ARRAYS
    _auto_learning_rates = AUTO_LEARNING_RATES
    _auto_patience = AUTO_PATIENCE

    def _fitted(self, roles):
        return [getattr(self, entry.name) for entry in self._fitted_arrays
                if entry.role in roles]

    def _reset_optimizer(self):
        """Zero optimizer moments for the solver (Adam keeps two vectors, SGD one)."""
        self._state_1 = np.zeros_like(self._theta)
        self._state_2 = np.zeros_like(self._theta) if self.solver == "adam" \
            else self._theta[:0].copy()

    def _early_stopping(self, n_samples, incremental):
        """Whether this fit holds out a validation set ("auto": above 10000 rows; never in
        partial_fit, as scikit-learn's MLP)."""
        if incremental:
            return False
        if self.early_stopping == "auto":
            return n_samples > EARLY_STOPPING_ROWS
        return bool(self.early_stopping)

    def _task(self):
        return "regression" if self._out_activation(2) == "identity" else "classification"

    def _learning_rate_init(self):
        if self.learning_rate_init != "auto":
            return float(self.learning_rate_init)
        return self._auto_learning_rates[self.solver, self._task()]

    def _patience(self):
        """``n_iter_no_change`` with "auto" resolved (see AUTO_PATIENCE)."""
        if self.n_iter_no_change != "auto":
            return int(self.n_iter_no_change)
        return self._auto_patience[self._task()]

    def _batch_rows(self, n_samples):
        if self.batch_size == "auto":
            return max(1, min(200, n_samples))
        return max(1, min(int(self.batch_size), n_samples))

    def _shuffle_rng(self):
        # partial_fit: one stream per call, reproducible from the fit's seed and progress
        return np.random.RandomState(np.random.SeedSequence(
            [self._seed, self.n_iter_]).generate_state(1))

    def _validation_indices(self, y, rng):
        """scikit-learn MLP's held-out split (stratified for classifiers): the training
        rows, the validation rows and the validation labels."""
        train, val = train_test_split(
            np.arange(y.shape[0]), random_state=rng, test_size=self.validation_fraction,
            stratify=y if self._task() == "classification" else None)
        if val.size < 2:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves "
                f"{val.size} validation samples; early stopping needs at least 2")
        return train, val, y[val]

    def _start_training(self, rng, early_stopping):
        """A fresh optimizer and stopping state, as scikit-learn's MLP at every fit."""
        self._reset_optimizer()
        self._steps = 0
        self._current_lr = self._learning_rate_init()
        self._seed = draw_seed(rng) >> 1  # dropout masks; int64 for the kernels
        self._no_improvement_count = 0
        self.validation_scores_ = [] if early_stopping else None
        self.best_validation_score_ = -np.inf if early_stopping else None
        self.best_loss_ = None if early_stopping else (
            self.best_loss_ if self.best_loss_ is not None else np.inf)

    def _settings(self, module, **engine):
        """The engine's Settings from the optimizer parameters (``module.make_settings``)."""
        return module.make_settings(
            alpha=self.alpha, seed=self._seed,
            optimizer=module.OPT_ADAM if self.solver == "adam" else module.OPT_SGD,
            momentum=self.momentum, nesterov=self.nesterovs_momentum, beta_1=self.beta_1,
            beta_2=self.beta_2, epsilon=self.epsilon,
            max_norm=0.0 if self.max_grad_norm is None else self.max_grad_norm, **engine)

    def _constant_loss(self):
        """The data loss of a constant prediction (the outputs' own override); inf where
        there is none, which turns the divergence warning off."""
        return np.inf

    def _check_fitted_arrays(self, n_params, **sizes):
        """Raise ValueError unless every array of ``_fitted_arrays`` but the layout is a 1-D
        float vector in theta's dtype of its role's size (`n_params` for parameters and
        moments; Adam's second moments empty under SGD; other roles' sizes in `sizes`)."""
        allowed = {"parameters": (n_params,), "moments": (n_params,),
                   "moments_adam": (n_params,) if self.solver == "adam" else (0, n_params),
                   **sizes}
        for entry in self._fitted_arrays:
            if entry.role == "layout":
                continue
            array = getattr(self, entry.name)
            if array.ndim != 1 or array.size not in allowed[entry.role] \
                    or array.dtype != self._theta.dtype or array.dtype.kind != "f":
                raise ValueError(f"{entry.name} has shape {array.shape} and dtype "
                                 f"{array.dtype}, which does not fit the layout")

    def _no_improvement_message(self, early_stopping):
        what = "Validation score" if early_stopping else "Training loss"
        return (f"{what} did not improve more than tol={self.tol:f} for "
                f"{self._patience()} consecutive epochs.")

    def _run_epochs(self, engine, n_rows, n_epochs, rng, incremental, early_stopping, X_val,
                    y_val):
        """The epoch loop of scikit-learn's ``_fit_stochastic``; each epoch is compiled.

        `engine` is the context manager of :meth:`_training_engine`: it yields
        ``epoch(perm, learning_rate, steps) -> (loss, steps)`` and ``record()``, which adds
        the epoch's gradient monitors to the fitted attributes."""
        backup = Rollback(self._fitted(TRAINED_ROLES))  # the state before each epoch
        best = Rollback(self._fitted(BEST_ROLES)) if early_stopping else None
        progress = EpochProgress(type(self).__name__, n_epochs, self.verbose)
        warned_growth = False
        with progress, engine as (epoch, record):
            for _ in range(n_epochs):
                perm = rng.permutation(n_rows) if self.shuffle else np.arange(n_rows)
                backup.save()
                try:
                    loss, steps = epoch(perm, float(self._current_lr), self._steps)
                    if not (np.isfinite(loss) and np.isfinite(self._theta).all()):
                        backup.restore()
                        raise FloatingPointError(
                            f"{type(self).__name__} diverged in epoch {self.n_iter_ + 1}: "
                            "the loss or the weights became non-finite (the model is restored "
                            "to the previous epoch). Lower learning_rate_init or set "
                            "max_grad_norm.")
                    score = self._validation_score(X_val, y_val) if early_stopping else None
                except KeyboardInterrupt:
                    # the compiled epoch ran to its end before Python saw the signal: roll it
                    # back, so the model is exactly n_iter_ completed epochs
                    backup.restore()
                    warnings.warn(f"{type(self).__name__}: training interrupted; the model "
                                  f"holds the weights after {self.n_iter_} completed epochs.",
                                  RuntimeWarning, stacklevel=4)
                    break
                self._steps = steps
                self.n_iter_ += 1
                self.t_ += n_rows
                self.loss_curve_.append(float(loss))
                record()
                if not warned_growth and loss > DIVERGING_LOSS_FACTOR * self._constant_loss():
                    warned_growth = True
                    warnings.warn(
                        f"{type(self).__name__}: the training loss in epoch {self.n_iter_} "
                        f"({loss:.3g}) is over {DIVERGING_LOSS_FACTOR:g} times a constant "
                        f"prediction's ({self._constant_loss():.3g}): training is diverging. "
                        "Lower learning_rate_init or set max_grad_norm.", ConvergenceWarning,
                        stacklevel=4)
                figures = {"loss": float(loss)}
                if early_stopping:
                    self.validation_scores_.append(score)
                    figures["validation_score"] = score
                    improved = score >= self.best_validation_score_ + self.tol
                    if score > self.best_validation_score_:
                        self.best_validation_score_ = score
                        best.save()
                else:
                    if self.best_loss_ is None:  # partial_fit after a fit with early stopping
                        self.best_loss_ = np.inf
                    improved = loss <= self.best_loss_ - self.tol
                    self.best_loss_ = min(self.best_loss_, float(loss))
                self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
                # scikit-learn's MLP: its printed lines, its schedule, its stopping rule
                lines = [f"Iteration {self.n_iter_}, loss = {loss:.8f}"]
                if early_stopping:
                    lines.append(f"Validation score: {score:f}")
                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    self._current_lr = self._learning_rate_init() / (self.t_ + 1) ** self.power_t
                stop = False
                if self._no_improvement_count > self._patience():
                    lines.append(self._no_improvement_message(early_stopping))
                    if self.solver == "sgd" and self.learning_rate == "adaptive" \
                            and self._current_lr > 1e-6:
                        self._current_lr /= 5.0
                        self._no_improvement_count = 0
                        lines[-1] += f" Setting learning rate to {self._current_lr:f}"
                    else:
                        stop = True
                        lines[-1] += (" Learning rate too small. Stopping."
                                      if self.learning_rate == "adaptive"
                                      and self.solver == "sgd" else " Stopping.")
                progress.update("\n".join(lines), **figures)
                if stop or incremental:
                    break
            else:
                if not incremental:
                    warnings.warn(
                        f"{type(self).__name__}: maximum iterations ({self.max_iter}) reached "
                        "and the optimization hasn't converged yet.", ConvergenceWarning,
                        stacklevel=4)
        if best is not None and best.saved:  # early stopping: the best validation weights
            best.restore()


class DenseTrainer(NetworkTrainer):
    """:class:`NetworkTrainer` on the dense engine (``fastrbm._kernels.backprop``): the
    blocked, threaded epoch, inference, the initial gradient norms and the checks of a
    loaded network (the DBN nets)."""

    _network_arrays = tuple(entry.name for entry in FITTED_ARRAYS)

    def _threads(self, rows):
        """Threads (Numba's for blocked training, BLAS's for predict): by the largest GEMM
        of a mini-batch, as the RBM engine decides."""
        return int(engine_threads(self.n_jobs, rows * self._largest_layer()))

    def _blocks(self, rows):
        """Blocks per layer in training: by shape and machine only, so the model does not
        depend on n_jobs (see _kernels.backprop.run_epoch)."""
        return int(engine_blocks(rows * self._largest_layer()))

    def _largest_layer(self):
        return int((self._layout[:, _bp.N_IN] * self._layout[:, _bp.N_OUT]).max())

    def _initial_gradient_norms(self, X, Y, dropout, rng):
        """Mean ||dL/dW_l|| over up to 20 mini-batches at the initial weights (no step, BN
        statistics untouched): the same quantity as a row of ``gradient_norms_``."""
        rows = self._batch_rows(X.shape[0])
        order = rng.permutation(X.shape[0])[:rows * INIT_NORM_BATCHES]
        net = _bp.make_network(self._layout, self._theta, self._bn_state, dropout,
                               batch_size=rows)
        settings = _bp.make_settings(alpha=self.alpha, bn_eps=BN_EPS, bn_momentum=0.0)
        total, n_batches = np.zeros(self._layout.shape[0]), 0
        with blas_threads(1):  # as in _run_epochs
            for start in range(0, order.size, rows):
                idx = order[start:start + rows]
                _bp.loss_grad(np.ascontiguousarray(X[idx]), np.ascontiguousarray(Y[idx]), net,
                              settings, 0)
                total += net.layer_norms
                n_batches += 1
        return total / n_batches

    @contextlib.contextmanager
    def _training_engine(self, X, Y, dropout):
        """The dense epoch for :meth:`NetworkTrainer._run_epochs`. Blocked layers run on
        Numba's threads, each block one single-threaded BLAS call (BLAS threads beside
        Numba's would oversubscribe the cores). BLAS stays at one thread with one block too:
        training mixes two BLAS libraries (NumPy's OpenBLAS for forward and weight products,
        scipy's for deltas; see backprop), whose spinning thread pools must not run
        together, and shapes that get one block are too small to share (64-100-100-10 at
        batch 32: 28.8 ms per epoch at one BLAS thread, 28.9 at two)."""
        rows = self._batch_rows(X.shape[0])
        net = _bp.make_network(self._layout, self._theta, self._bn_state, dropout,
                               self._state_1, self._state_2, rows)
        n_blocks, threads = self._blocks(rows), self._threads(rows)
        settings = self._settings(_bp, bn_eps=BN_EPS, bn_momentum=BN_MOMENTUM,
                                  n_blocks=n_blocks)
        with blas_threads(1), numba_threads(threads if n_blocks > 1 else 1) as used:
            run_epoch = _bp.run_epoch_parallel if used > 1 else _bp.run_epoch

            def epoch(perm, learning_rate, steps):
                return run_epoch(X, Y, perm, rows, net,
                                 settings._replace(learning_rate=learning_rate), steps)

            def record():
                self.gradient_norms_ = np.vstack([self.gradient_norms_, net.layer_norms])
            yield epoch, record

    def _check_network(self):
        """Check loaded network arrays against the layout table, whose sizes the compiled
        kernels trust: the table must be what :func:`make_layout` builds for its own sizes,
        and every array of :data:`FITTED_ARRAYS` must have its role's size and the dtype
        of theta."""
        layout = self._layout
        if layout.ndim != 2 or layout.shape[0] < 1 or layout.dtype != np.int64:
            raise ValueError(f"malformed layout table of shape {layout.shape}")
        codes = {code: name for name, code in _bp.ACTIVATION_CODES.items()}
        sizes = [int(layout[0, _bp.N_IN]), *(int(n) for n in layout[:, _bp.N_OUT])]
        acts = [codes.get(int(a)) for a in layout[:, _bp.ACT]]
        if None in acts:
            raise ValueError("the layout table holds an unknown activation code")
        expected, n_params, n_state = _bp.make_layout(  # one activation per hidden layer
            sizes, acts[:-1], acts[-1], [bool(g >= 0) for g in layout[:-1, _bp.G_OFF]])
        if not np.array_equal(layout, expected):
            raise ValueError("the layout table is inconsistent")
        if sizes[0] != self.n_features_in_ or sizes[-1] != self.n_outputs_:
            raise ValueError(f"the network maps {sizes[0]} -> {sizes[-1]}, the model has "
                             f"{self.n_features_in_} features and {self.n_outputs_} outputs")
        self._check_fitted_arrays(n_params, statistics=(n_state,))
        return sizes

    def _forward(self, X, layers=slice(None)):
        """Network output (probabilities or values) for validated X; with `layers`, the
        output of those consecutive layers for X as their input (an autoencoder's encoder
        or decoder: the table's rows hold absolute offsets, so a slice of it is a net)."""
        # writable copies of read-only arrays (a model loaded from a memory map): the
        # kernels are compiled for writable arrays, a read-only one would compile again
        X, theta, bn_state = (engine_array(a) for a in (X, self._theta, self._bn_state))
        layout = engine_array(self._layout[layers])
        n_out = layout[-1, _bp.N_OUT]
        out = np.empty((X.shape[0], n_out), theta.dtype)
        rows = max(1, min(PREDICT_ROWS, X.shape[0]))
        work = np.empty(_bp.workspace_size(layout, None, rows), theta.dtype)
        with blas_threads(self._threads(rows)):
            _bp.predict(X, theta, layout, bn_state, BN_EPS, rows, work, out)
        return out

    @property
    def coefs_(self):
        """Weight matrices, one per layer (list of ndarray).

        ``coefs_[l]`` of shape (n_in, n_out) is the weight matrix of layer l, a view into
        the flat parameter vector.
        """
        return _bp.param_views(self._theta, self._layout)[0]

    @property
    def intercepts_(self):
        """Bias vectors, one per layer (list of ndarray; views, as ``coefs_``)."""
        return _bp.param_views(self._theta, self._layout)[1]


class ClassifierOutput:
    """Targets and outputs of a backprop-trained classifier: ``classes_``, one-hot targets
    (one 0/1 column for two classes), accuracy as the validation score, and the predict
    methods over the estimator's ``_validated_forward``."""

    output_arrays = ("classes_",)  # checkpointed beside the network

    def _constant_loss(self):
        """Cross-entropy of the uniform prediction over the classes."""
        return float(np.log(self.classes_.size))

    @staticmethod
    def _out_activation(n_outputs):
        return "logistic" if n_outputs == 1 else "softmax"

    _target_checks = {}  # validate_data's defaults for y: one column, any label type

    def _encode_targets(self, y, dtype, *, first, incremental, classes):
        """The one-hot targets the engine trains on; sets ``classes_`` on a first fit."""
        if first or not incremental:
            # later partial_fit chunks: _one_hot refuses any label outside classes_, which
            # covers what type_of_target would (1 ms of each call on 18000 labels)
            check_classification_targets(y)
        if incremental and first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self.classes_ = unique_labels(classes)
        elif incremental and classes is not None and not np.array_equal(
                unique_labels(classes), self.classes_):
            raise ValueError(f"classes={classes!r} is not the same as on the first call to "
                             f"partial_fit, was {self.classes_!r}")
        elif first:
            self.classes_ = unique_labels(y)
        elif self.warm_start and not incremental and not np.array_equal(
                unique_labels(y), self.classes_):
            raise ValueError(f"warm_start needs y with the classes of the previous fit "
                             f"{self.classes_}; y has {unique_labels(y)}")
        if self.classes_.size < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in "
                             f"the data, but the data contains only one class: "
                             f"{self.classes_[0]!r}")
        return self._one_hot(y, dtype)

    def _one_hot(self, y, dtype):
        """LabelBinarizer's encoding of y over ``classes_`` (one 0/1 column for two classes),
        by a binary search in the sorted classes: LabelBinarizer's fit and transform
        re-derived the label type and the classes from y each call (about 3 ms of a
        partial_fit on 18000 digits, a tenth of its epoch)."""
        try:
            index = np.searchsorted(self.classes_, y)
        except TypeError:  # labels not comparable with classes_ (say, str against int)
            index = np.zeros(y.shape[0], np.intp)
        found = self.classes_[np.minimum(index, self.classes_.size - 1)] == y
        if not np.all(found):
            unknown = y[~found]
            try:
                unknown = np.unique(unknown)
            except TypeError:  # mixed label types: list them as they come
                unknown = list(dict.fromkeys(unknown.tolist()))
            raise ValueError(f"y has classes not in classes_ {self.classes_}: {unknown}")
        if self.classes_.size == 2:
            return index.astype(dtype).reshape(-1, 1)
        Y = np.zeros((y.shape[0], self.classes_.size), dtype)
        Y[np.arange(y.shape[0]), index] = 1
        return Y

    def _validation_score(self, X, y):
        return float(accuracy_score(y, self._labels(self._forward(X))))


    def _checkpoint_restore(self, state):
        """Set the loaded state, checking that ``classes_`` fits the output layer."""
        super()._checkpoint_restore(state)
        if self.n_outputs_ != (1 if self.classes_.size == 2 else self.classes_.size):
            raise ValueError(f"{self.classes_.size} classes do not fit "
                             f"{self.n_outputs_} outputs")

    def _labels(self, P):
        if P.shape[1] == 1:
            return self.classes_[(P[:, 0] > 0.5).astype(np.intp)]
        return self.classes_[P.argmax(axis=1)]

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like
            Input data, shaped as in fit.

        Returns
        -------
        P : ndarray of shape (n_samples, n_classes)
            Probability of each class (columns in the order of ``classes_``).
        """
        return self._probabilities(self._validated_forward(X))

    @staticmethod
    def _probabilities(P):
        """Class probabilities from the output layer (two columns for a logistic unit)."""
        return np.hstack([1 - P, P]) if P.shape[1] == 1 else P

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like
            Input data, shaped as in fit.

        Returns
        -------
        log_P : ndarray of shape (n_samples, n_classes)
            Log-probability of each class.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Most probable class.

        Parameters
        ----------
        X : array-like
            Input data, shaped as in fit.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels.
        """
        return self._labels(self._validated_forward(X))


class RegressorOutput:
    """Targets and outputs of a backprop-trained regressor: targets standardised inside
    (``target_mean_``, ``target_scale_``), R^2 as the validation score, ``predict``."""

    output_arrays = ("target_mean_", "target_scale_")

    def _constant_loss(self):
        """Squared error of predicting the mean: the targets are standardised inside."""
        return 0.5 * self.n_outputs_

    @staticmethod
    def _out_activation(n_outputs):
        return "identity"

    _target_checks = dict(multi_output=True, y_numeric=True)

    def _checkpoint_restore(self, state):
        """Set the loaded state, checking the target standardisation's shape."""
        super()._checkpoint_restore(state)
        if self.target_mean_ is None:
            raise ValueError("the target mean and scale are missing")
        check_standardisation(self.target_mean_, self.target_scale_, self.n_outputs_,
                               self._theta.dtype)

    def _encode_targets(self, y, dtype, *, first, incremental, classes):
        """The standardised targets the engine trains on; a first fit sets
        ``target_mean_`` and ``target_scale_`` (constant targets get scale 1)."""
        Y = np.asarray(y, dtype=np.float64).reshape(y.shape[0], -1)
        if first:
            self.target_mean_, self.target_scale_ = mean_and_scale(
                Y.mean(axis=0), Y.var(axis=0), dtype)
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} targets, the model was fitted with "
                             f"{self.n_outputs_}")
        return engine_array(((Y - self.target_mean_) / self.target_scale_).astype(dtype))

    def _targets(self, out):
        """Network outputs mapped back to the units of y."""
        return out * self.target_scale_ + self.target_mean_

    def _validation_score(self, X, y):
        return float(r2_score(y, self._targets(self._forward(X))))

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like
            Input data, shaped as in fit.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predictions (1-D when fitted on a 1-D y).
        """
        out = self._targets(self._validated_forward(X))
        return out.ravel() if out.shape[1] == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
