"""Vanishing-gradient monitor: per-layer gradient norms of a fine-tuned network.

:class:`~fastrbm.DBNClassifier` and :class:`~fastrbm.DBNRegressor` record the norm of the loss
gradient with respect to each layer's weights (``initial_gradient_norms_`` before the first
step, ``gradient_norms_`` averaged over each epoch's mini-batches). A deep logistic net from
random initialisation shows bottom-layer gradients orders of magnitude below the top layer's
(Glorot & Bengio 2010); a pretrained, ReLU or batch-normalised one does not. The summary
here puts a number on it: the first-to-last ratio ``norm[bottom layer] / norm[output layer]``
(the example of ``gradient_norm_summary`` shows it).
"""
import numpy as np

__all__ = ["gradient_norm_summary", "format_gradient_norms", "gradient_through_time_summary"]


def gradient_norm_summary(model):
    """Per-layer gradient norms and first-to-last-layer ratios of a fitted network.

    Parameters
    ----------
    model : fitted DBNClassifier, DBNRegressor, RNNClassifier or RNNRegressor
        Anything with ``initial_gradient_norms_`` (n_layers,), ``gradient_norms_``
        (n_epochs, n_layers) and ``coefs_`` (the recurrent nets: one entry per parameter
        group, ``W_1, U_1, ..., W_out``).

    Returns
    -------
    summary : dict
        ``"layers"``: list of str, one label per weight layer, bottom to top, e.g.
        ``"1: 64x256"``; ``"initial"``, ``"first_epoch"``, ``"last_epoch"``: ndarray of
        shape (n_layers,) (the epoch entries are None before any epoch);
        ``"ratio"``: dict with the same three keys, each the bottom layer's norm divided
        by the output layer's (None where the norms are missing). A ratio far below 1
        means the lower layers barely learn: vanishing gradients.

    Examples
    --------
    >>> from fastrbm import DBNClassifier
    >>> from fastrbm.datasets import load_digits
    >>> from fastrbm.diagnostics import gradient_norm_summary
    >>> X, y = load_digits()
    >>> net = DBNClassifier((64, 64, 64), pretrain=False, max_iter=2,
    ...                     random_state=0).fit(X, y)
    >>> summary = gradient_norm_summary(net)
    >>> summary["layers"]
    ['1: 64x64', '2: 64x64', '3: 64x64', '4: 64x10']
    >>> bool(summary["ratio"]["initial"] < 0.1)
    True
    """
    initial = np.asarray(model.initial_gradient_norms_, dtype=np.float64)
    per_epoch = np.asarray(model.gradient_norms_, dtype=np.float64).reshape(-1, initial.size)
    rows = {
        "initial": initial,
        "first_epoch": per_epoch[0] if len(per_epoch) else None,
        "last_epoch": per_epoch[-1] if len(per_epoch) else None,
    }
    layers = model._gradient_groups() if hasattr(model, "_gradient_groups") else \
        [f"{l + 1}: {W.shape[0]}x{W.shape[1]}" for l, W in enumerate(model.coefs_)]
    ratio = {key: None if norms is None else _ratio(norms[0], norms[-1])
             for key, norms in rows.items()}
    return {"layers": layers, **rows, "ratio": ratio}


def _ratio(bottom, top):
    return float(bottom / top) if top > 0 else float("inf") if bottom > 0 else float("nan")


def format_gradient_norms(model):
    """The :func:`gradient_norm_summary` of ``model`` as a plain-text table.

    Parameters
    ----------
    model : fitted DBNClassifier, DBNRegressor, DBNAutoencoder, RNNClassifier or RNNRegressor
        A fitted network (see :func:`gradient_norm_summary`).

    Returns
    -------
    table : str
        One row per weight layer (columns: initial, first epoch, last epoch), then the
        first-to-last ratios.

    Examples
    --------
    >>> from fastrbm import DBNClassifier
    >>> from fastrbm.datasets import load_digits
    >>> from fastrbm.diagnostics import format_gradient_norms
    >>> X, y = load_digits()
    >>> net = DBNClassifier((32,), max_iter=2, random_state=0).fit(X, y)
    >>> print(format_gradient_norms(net))  # doctest: +ELLIPSIS
    layer                initial     epoch 1     epoch 2
    1: 64x32           ...
    2: 32x10           ...
    first/last ratio   ...
    """
    summary = gradient_norm_summary(model)
    n_epochs = len(model.gradient_norms_)
    columns = [("initial", "initial"), ("first_epoch", "epoch 1"),
               ("last_epoch", f"epoch {n_epochs}")]
    width = max(len("first/last ratio"), *(len(name) for name in summary["layers"]))
    lines = [f"{'layer':<{width}}" + "".join(f"{title:>12}" for _, title in columns)]
    for l, name in enumerate(summary["layers"]):
        cells = ["-" if summary[key] is None else f"{summary[key][l]:.3e}"
                 for key, _ in columns]
        lines.append(f"{name:<{width}}" + "".join(f"{c:>12}" for c in cells))
    cells = ["-" if summary["ratio"][key] is None else f"{summary['ratio'][key]:.3e}"
             for key, _ in columns]
    lines.append(f"{'first/last ratio':<{width}}" + "".join(f"{c:>12}" for c in cells))
    return "\n".join(lines)


def gradient_through_time_summary(model):
    """The gradient reaching each time step of a recurrent net, first to last.

    The norm of dL/dh_t at every step, and the ratio of the first step's to the last's.

    Backpropagation through time multiplies the error signal by the recurrent Jacobian
    once per step, so in a plain recurrent net the gradient with respect to early hidden
    states shrinks (or, with large recurrent weights, grows) geometrically with the
    distance from the output (Bengio, Simard & Frasconi 1994; Pascanu, Mikolov & Bengio
    2013); the LSTM's additive cell state keeps it (Hochreiter & Schmidhuber 1997).

    Parameters
    ----------
    model : fitted RNNClassifier or RNNRegressor
        Anything with ``initial_gradient_norms_through_time_`` (n_steps,) and
        ``gradient_norms_through_time_`` (n_epochs, n_steps).

    Returns
    -------
    summary : dict
        ``"initial"``, ``"first_epoch"``, ``"last_epoch"``: ndarray of shape (n_steps,),
        the norm of dL/dh_t for t = 0 .. n_steps - 1 (the epoch entries are None before
        any epoch); ``"ratio"``: the same keys, each ``norm[t=0] / norm[t=n_steps-1]``.
        A ratio far below 1: the first steps barely receive a gradient (vanishing); far
        above 1: exploding.

    Examples
    --------
    >>> from fastrbm import RNNRegressor
    >>> from fastrbm.datasets import make_adding_problem
    >>> from fastrbm.diagnostics import gradient_through_time_summary
    >>> X, y = make_adding_problem(n_samples=200, n_steps=30, random_state=0)
    >>> rnn = RNNRegressor((16,), cell="sigmoid", max_iter=2, random_state=0).fit(X, y)
    >>> gradient_through_time_summary(rnn)["ratio"]["initial"] < 1e-3
    True
    """
    initial = np.asarray(model.initial_gradient_norms_through_time_, dtype=np.float64)
    per_epoch = np.asarray(model.gradient_norms_through_time_,
                           dtype=np.float64).reshape(-1, initial.size)
    rows = {
        "initial": initial,
        "first_epoch": per_epoch[0] if len(per_epoch) else None,
        "last_epoch": per_epoch[-1] if len(per_epoch) else None,
    }
    ratio = {key: None if norms is None else _ratio(norms[0], norms[-1])
             for key, norms in rows.items()}
    return {**rows, "ratio": ratio}
