"""The fine-tuning trainer shared by the DBN nets: the network's fitted state, the epoch
loop, early stopping and rollback, on the compiled engine ``fastrbm._kernels.backprop``.

The fitted state is declared once, in :data:`FITTED_ARRAYS`: each array's attribute name
(also its name in checkpoint files) and its role. Checkpoints, the rollback of an epoch
(divergence, Ctrl-C), the early-stopping copy of the best weights and the shape checks of
a loaded model all derive from that table.
"""
import warnings
from collections import namedtuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._kernels import backprop as _bp
from ._progress import EpochProgress
from ._utils import blas_threads, engine_blocks, engine_threads, numba_threads

__all__ = ["FITTED_ARRAYS", "NetworkTrainer", "Rollback"]

BN_EPS = 1e-5
BN_MOMENTUM = 0.1
PREDICT_ROWS = 1024  # rows per compiled inference chunk
INIT_NORM_BATCHES = 20  # mini-batches averaged for initial_gradient_norms_

FittedArray = namedtuple("FittedArray", "name role")

# Roles: "layout" (the int64 table every size derives from), "parameters" (theta, the flat
# trainable vector), "statistics" (batch-norm running means and variances), "moments"
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


def _names(roles):
    return [entry.name for entry in FITTED_ARRAYS if entry.role in roles]


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
    """Fitting machinery of the fine-tuned nets (mixed into the estimators): the epoch
    loop of scikit-learn's ``_fit_stochastic`` over the compiled epoch, early stopping,
    rollback, inference, and the checks of a loaded network. The estimator supplies its
    parameters, ``_batch_rows``, ``_validation_score`` and ``_learning_rate_init``."""

    _network_arrays = tuple(entry.name for entry in FITTED_ARRAYS)

    def _fitted(self, roles):
        return [getattr(self, name) for name in _names(roles)]

    def _reset_optimizer(self):
        """Zero optimizer moments for the solver (Adam keeps two vectors, SGD one)."""
        self._state_1 = np.zeros_like(self._theta)
        self._state_2 = np.zeros_like(self._theta) if self.solver == "adam" \
            else self._theta[:0].copy()

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

    def _no_improvement_message(self, early_stopping):
        what = "Validation score" if early_stopping else "Training loss"
        return (f"{what} did not improve more than tol={self.tol:f} for "
                f"{self._patience()} consecutive epochs.")

    def _run_epochs(self, X, Y, dropout, n_epochs, rng, incremental, early_stopping, X_val,
                    y_val):
        """The epoch loop of scikit-learn's ``_fit_stochastic``; each epoch is compiled."""
        rows = self._batch_rows(X.shape[0])
        theta = self._theta
        net = _bp.make_network(self._layout, theta, self._bn_state, dropout, self._state_1,
                               self._state_2, rows)
        backup = Rollback(self._fitted(TRAINED_ROLES))  # the state before each epoch
        best = Rollback(self._fitted(BEST_ROLES)) if early_stopping else None
        progress = EpochProgress(type(self).__name__, n_epochs, self.verbose)
        # Blocked layers run on Numba's threads, each block one single-threaded BLAS call
        # (BLAS threads beside Numba's would oversubscribe the cores). BLAS stays at one
        # thread with one block too: training mixes two BLAS libraries (NumPy's OpenBLAS for
        # forward and weight products, scipy's for deltas; see backprop), whose spinning
        # thread pools must not run together, and shapes that get one block are too small to
        # share (64-100-100-10 at batch 32: 28.8 ms per epoch at one BLAS thread, 28.9 at two).
        n_blocks, threads = self._blocks(rows), self._threads(rows)
        settings = _bp.make_settings(
            alpha=self.alpha, bn_eps=BN_EPS, bn_momentum=BN_MOMENTUM, seed=self._seed,
            optimizer=_bp.OPT_ADAM if self.solver == "adam" else _bp.OPT_SGD,
            momentum=self.momentum, nesterov=self.nesterovs_momentum, beta_1=self.beta_1,
            beta_2=self.beta_2, epsilon=self.epsilon,
            max_norm=0.0 if self.max_grad_norm is None else self.max_grad_norm,
            n_blocks=n_blocks)
        with progress, blas_threads(1), \
                numba_threads(threads if n_blocks > 1 else 1) as used:
            run_epoch = _bp.run_epoch_parallel if used > 1 else _bp.run_epoch
            for _ in range(n_epochs):
                perm = rng.permutation(X.shape[0]) if self.shuffle else np.arange(X.shape[0])
                backup.save()
                try:
                    loss, steps = run_epoch(
                        X, Y, perm, rows, net,
                        settings._replace(learning_rate=float(self._current_lr)), self._steps)
                    if not (np.isfinite(loss) and np.isfinite(theta).all()):
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
                self.t_ += X.shape[0]
                self.loss_curve_.append(float(loss))
                self.gradient_norms_ = np.vstack([self.gradient_norms_, net.layer_norms])
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
        expected, n_params, n_state = _bp.make_layout(
            sizes, acts[0] if len(acts) > 1 else "logistic", acts[-1],
            [bool(g >= 0) for g in layout[:-1, _bp.G_OFF]])
        if not np.array_equal(layout, expected):
            raise ValueError("the layout table is inconsistent")
        if sizes[0] != self.n_features_in_ or sizes[-1] != self.n_outputs_:
            raise ValueError(f"the network maps {sizes[0]} -> {sizes[-1]}, the model has "
                             f"{self.n_features_in_} features and {self.n_outputs_} outputs")
        allowed = {"parameters": (n_params,), "statistics": (n_state,),
                   "moments": (n_params,),
                   "moments_adam": (n_params,) if self.solver == "adam" else (0, n_params)}
        for entry in FITTED_ARRAYS:
            if entry.role == "layout":
                continue
            array = getattr(self, entry.name)
            if array.ndim != 1 or array.size not in allowed[entry.role] \
                    or array.dtype != self._theta.dtype or array.dtype.kind != "f":
                raise ValueError(f"{entry.name} has shape {array.shape} and dtype "
                                 f"{array.dtype}, which does not fit the layout")
        return sizes

    def _forward(self, X):
        """Network output (probabilities or values) for validated X."""
        X = engine_array(X)
        n_out = self._layout[-1, _bp.N_OUT]
        out = np.empty((X.shape[0], n_out), self._theta.dtype)
        rows = max(1, min(PREDICT_ROWS, X.shape[0]))
        work = np.empty(_bp.workspace_size(self._layout, None, rows), self._theta.dtype)
        with blas_threads(self._threads(rows)):
            _bp.predict(X, self._theta, self._layout, self._bn_state, BN_EPS, rows, work, out)
        return out

    @property
    def coefs_(self):
        """list of ndarray: ``coefs_[l]`` of shape (n_in, n_out) is the weight matrix of
        layer l (a view into the flat parameter vector)."""
        return _bp.param_views(self._theta, self._layout)[0]

    @property
    def intercepts_(self):
        """list of ndarray: ``intercepts_[l]`` is the bias vector of layer l (a view)."""
        return _bp.param_views(self._theta, self._layout)[1]
