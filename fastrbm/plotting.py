"""Figures of what an RBM or a deep network learned and how its training went.

matplotlib is optional (``pip install "fastrbm[plot]"``) and imported only when a function
here is called. Every function draws into ``ax`` when given (else into a new figure made by
:func:`matplotlib.pyplot.subplots`), returns the :class:`~matplotlib.figure.Figure` and never
calls ``plt.show()``: save it with ``fig.savefig(path)`` or show it yourself.

The functions take fitted estimators or plain arrays:

- :func:`plot_filters`: the weights of each hidden unit (rows of ``components_``) as image
  tiles, the classic picture of RBM features (Hinton 2010, section 15).
- :func:`plot_samples`: a grid of images, e.g. from ``BernoulliRBM.sample``.
- :func:`plot_learning_curve`: reconstruction error by epoch (``history_``) with optional
  pseudo-likelihood or log-likelihood series, or a classifier's ``loss_curve_`` and
  ``validation_scores_``.
- :func:`plot_gradient_norms`: per-layer gradient norms by epoch on a log axis, the
  vanishing-gradient picture, for one model or several side by side.
"""
import math
from collections.abc import Mapping

import numpy as np

__all__ = ["plot_filters", "plot_samples", "plot_learning_curve", "plot_gradient_norms",
           "plot_gradient_norms_through_time"]

_INSTALL_HINT = 'pip install "fastrbm[plot]"'
_LINESTYLES = ("-", "--", ":", "-.")


def _pyplot():
    """``matplotlib.pyplot``, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"fastrbm.plotting needs matplotlib, which is not installed: {_INSTALL_HINT}"
        ) from exc
    return plt


def _figure_and_axes(ax, figsize):
    """(figure, axes): ``ax`` and its figure, or a new figure with one axes."""
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _image_shape(n_features, image_shape):
    """Validate ``image_shape`` against ``n_features``; infer a square one when None."""
    if image_shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"cannot infer a square image shape for {n_features} features; pass "
                "image_shape=(height, width)"
            )
        return side, side
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) != 2 or math.prod(image_shape) != n_features:
        raise ValueError(
            f"image_shape={image_shape} does not hold {n_features} features "
            "(need (height, width) with height * width == n_features)"
        )
    return image_shape


def _mosaic(images, n_cols, pad=1):
    """Tile ``images`` (n, h, w) row by row into one array, NaN between and after tiles."""
    n, h, w = images.shape
    n_cols = min(n, n_cols or math.ceil(math.sqrt(n)))
    n_rows = math.ceil(n / n_cols)
    out = np.full((n_rows * (h + pad) - pad, n_cols * (w + pad) - pad), np.nan)
    for i, image in enumerate(images):
        r, c = divmod(i, n_cols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = image
    return out


def _show_mosaic(ax, mosaic, cmap, vmin, vmax, title):
    ax.imshow(mosaic, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)


def _as_images(values, image_shape, what):
    """A finite float array of shape (n, h, w) from (n, n_features) or (n, h, w) input."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 3:
        if image_shape is not None and tuple(image_shape) != values.shape[1:]:
            raise ValueError(f"image_shape={tuple(image_shape)} does not match {what} of "
                             f"shape {values.shape[1:]}")
        images = values
    elif values.ndim == 2:
        images = values.reshape(-1, *_image_shape(values.shape[1], image_shape))
    else:
        raise ValueError(f"{what} must be a 2-D array (n, n_features) or a 3-D array "
                         f"(n, height, width); got shape {values.shape}")
    if images.shape[0] == 0:
        raise ValueError(f"no {what} to plot")
    if not np.isfinite(images).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return images


def plot_filters(model_or_components, image_shape=None, *, max_filters=100, n_cols=None,
                 cmap="gray", ax=None, title="RBM filters"):
    """Show the weights of each hidden unit as an image tile.

    Each tile is one row of ``components_`` reshaped to the image shape and scaled by its
    own largest absolute weight, so that grey is zero, white the strongest positive and black
    the strongest negative weight of that unit.

    Parameters
    ----------
    model_or_components : estimator or array-like of shape (n_components, n_features)
        A fitted model with a ``components_`` attribute (e.g.
        :class:`fastrbm.BernoulliRBM`), or the weight matrix itself.
    image_shape : tuple of (int, int), default=None
        (height, width) of one tile; ``height * width`` must equal ``n_features``. None infers a
        square shape and raises ValueError when ``n_features`` is not a perfect square.
    max_filters : int, default=100
        Show at most the first ``max_filters`` hidden units.
    n_cols : int, default=None
        Tiles per row; None makes the grid about square.
    cmap : str or Colormap, default="gray"
        Colour map of the tiles.
    ax : matplotlib Axes, default=None
        Axes to draw into; None makes a new figure.
    title : str or None, default="RBM filters"
        Title of the axes.

    Returns
    -------
    fig : matplotlib Figure
        The figure holding the tiles.

    Examples
    --------
    >>> from fastrbm import BernoulliRBM
    >>> from fastrbm.datasets import load_digits
    >>> from fastrbm.plotting import plot_filters
    >>> X, _ = load_digits()
    >>> rbm = BernoulliRBM(n_components=16, n_iter=2, random_state=0).fit(X)
    >>> fig = plot_filters(rbm)           # 8x8 tiles inferred from 64 features
    >>> fig.savefig("filters.png")        # doctest: +SKIP
    """
    components = getattr(model_or_components, "components_", model_or_components)
    if hasattr(model_or_components, "fit") and components is model_or_components:
        raise TypeError(f"{type(model_or_components).__name__} has no components_: fit it "
                        "first, or pass the weight matrix")
    if int(max_filters) < 1:
        raise ValueError(f"max_filters must be >= 1, got {max_filters}")
    filters = _as_images(components, image_shape, "filters")[:int(max_filters)]
    scale = np.abs(filters).max(axis=(1, 2), keepdims=True)
    filters = filters / np.where(scale > 0, scale, 1.0)
    fig, ax = _figure_and_axes(ax, figsize=(6, 6))
    _show_mosaic(ax, _mosaic(filters, n_cols), cmap, -1.0, 1.0, title)
    return fig


def plot_samples(samples, image_shape=None, *, n_cols=None, cmap="gray", ax=None,
                 title="Samples"):
    """Show images (e.g. samples generated by an RBM) in a grid.

    All tiles share one grey scale, from the smallest to the largest value in ``samples``
    (0 to 1 for binary samples or probabilities).

    Parameters
    ----------
    samples : array-like of shape (n_samples, n_features) or (n_samples, height, width)
        The images, flattened or not.
    image_shape : tuple of (int, int), default=None
        (height, width) of one image when ``samples`` is 2-D; None infers a square shape.
    n_cols : int, default=None
        Images per row; None makes the grid about square.
    cmap : str or Colormap, default="gray"
        Colour map of the images.
    ax : matplotlib Axes, default=None
        Axes to draw into; None makes a new figure.
    title : str or None, default="Samples"
        Title of the axes.

    Returns
    -------
    fig : matplotlib Figure
        The figure holding the grid.

    Examples
    --------
    >>> from fastrbm import BernoulliRBM
    >>> from fastrbm.datasets import load_digits
    >>> from fastrbm.plotting import plot_samples
    >>> X, _ = load_digits()
    >>> rbm = BernoulliRBM(n_components=32, n_iter=2, random_state=0).fit(X)
    >>> fig = plot_samples(rbm.sample(n_samples=25, n_steps=100))
    """
    images = _as_images(samples, image_shape, "samples")
    lo, hi = float(images.min()), float(images.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    fig, ax = _figure_and_axes(ax, figsize=(6, 6))
    _show_mosaic(ax, _mosaic(images, n_cols), cmap, lo, hi, title)
    return fig


def _epochs_and_values(name, series):
    """(epochs, values) of one curve: ``values`` (epochs 1, 2, ...) or ``(epochs, values)``."""
    if (isinstance(series, tuple) and len(series) == 2
            and np.ndim(series[0]) == 1 and np.ndim(series[1]) == 1):
        epochs, values = (np.asarray(s, dtype=np.float64) for s in series)
    else:
        values = np.asarray(series, dtype=np.float64)
        epochs = np.arange(1, values.size + 1, dtype=np.float64)
    if values.ndim != 1 or epochs.shape != values.shape:
        raise ValueError(f"{name}: expected a 1-D sequence of per-epoch values or a pair "
                         f"(epochs, values) of equal length; got shape {values.shape}")
    if values.size == 0:
        raise ValueError(f"{name} is empty: nothing to plot")
    return epochs, values


def _training_curves(model_or_history):
    """The (name, values) curves to minimise and to maximise that a model or history holds."""
    if isinstance(model_or_history, Mapping):
        history = model_or_history
    else:
        history = getattr(model_or_history, "history_", None)
    lower, higher = {}, {}
    if history is not None:
        for key, values in history.items():
            if key == "time":
                continue
            target = higher if "likelihood" in key or "score" in key else lower
            target[key.replace("_", " ")] = values
        return lower, higher
    loss = getattr(model_or_history, "loss_curve_", None)
    if loss is None:
        raise TypeError(
            f"{type(model_or_history).__name__} has neither history_ (an RBM) nor "
            "loss_curve_ (a fine-tuned network); fit it first, or pass a dict of "
            "per-epoch values"
        )
    lower["training loss"] = loss
    validation = getattr(model_or_history, "validation_scores_", None)
    if validation is not None and len(validation):
        higher["validation score"] = validation
    return lower, higher


def plot_learning_curve(model_or_history, *, pseudo_likelihood=None, log_likelihood=None,
                        ax=None, title="Learning curve"):
    """Plot training curves by epoch.

    Curves to minimise (reconstruction error, loss) use the left axis; curves to maximise
    (pseudo-likelihood, log-likelihood, validation score) use a second axis on the right,
    as their scales differ by orders of magnitude.

    Parameters
    ----------
    model_or_history : estimator or dict
        An RBM with ``history_`` (every series except ``"time"`` is drawn, e.g.
        ``"reconstruction_error"``); a fine-tuned network with ``loss_curve_`` and, when
        early stopping held out data, ``validation_scores_``; or a dict ``{name: per-epoch
        values}`` such as ``rbm.history_``.
    pseudo_likelihood : array-like or tuple (epochs, values), default=None
        Mean pseudo-log-likelihood per epoch, e.g. ``rbm.score_samples(X).mean()`` recorded
        after each ``partial_fit``. A plain sequence is taken as epochs 1, 2, ...; a pair
        ``(epochs, values)`` gives the epochs explicitly (for scores measured every few
        epochs).
    log_likelihood : array-like or tuple (epochs, values), default=None
        Mean log-likelihood per epoch, e.g. from ``rbm.score(X)`` (exact or AIS), in the
        same forms as ``pseudo_likelihood``.
    ax : matplotlib Axes, default=None
        Axes to draw into (the right-hand axis is its twin); None makes a new figure.
    title : str or None, default="Learning curve"
        Title of the axes.

    Returns
    -------
    fig : matplotlib Figure
        The figure holding the curves.

    Examples
    --------
    >>> from fastrbm import BernoulliRBM
    >>> from fastrbm.datasets import load_digits
    >>> from fastrbm.plotting import plot_learning_curve
    >>> X, _ = load_digits()
    >>> rbm = BernoulliRBM(n_components=16, random_state=0)
    >>> pll = [rbm.partial_fit(X).score_samples(X).mean() for _ in range(3)]
    >>> fig = plot_learning_curve(rbm, pseudo_likelihood=pll)
    """
    lower, higher = _training_curves(model_or_history)
    for name, series in (("pseudo-likelihood", pseudo_likelihood),
                         ("log-likelihood", log_likelihood)):
        if series is not None:
            higher[name] = series
    curves = [(name, _epochs_and_values(name, s), False) for name, s in lower.items()]
    curves += [(name, _epochs_and_values(name, s), True) for name, s in higher.items()]
    if not curves:
        raise ValueError("no training curve to plot: the history is empty")
    fig, ax = _figure_and_axes(ax, figsize=(7, 4))
    right = ax.twinx() if higher and lower else None
    colors = [f"C{i}" for i in range(len(curves))]
    handles = []
    for (name, (epochs, values), is_higher), color in zip(curves, colors):
        target = right if (is_higher and right is not None) else ax
        marker = "o" if values.size < 30 else None
        handles += target.plot(epochs, values, color=color, marker=marker, markersize=3,
                               label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(", ".join(lower) if lower else ", ".join(higher))
    if right is not None:
        right.set_ylabel(", ".join(higher))
    ax.legend(handles=handles, loc="best")
    if title:
        ax.set_title(title)
    return fig


def _gradient_norm_curves(model_or_array, name):
    """(epochs, norms of shape (n_points, n_layers)) of one model or array."""
    initial = None
    if hasattr(model_or_array, "gradient_norms_"):
        norms = model_or_array.gradient_norms_
        initial = getattr(model_or_array, "initial_gradient_norms_", None)
    elif hasattr(model_or_array, "fit"):
        raise TypeError(f"{name}: {type(model_or_array).__name__} has no gradient_norms_; "
                        "fit it first (only fine-tuned networks record gradient norms)")
    else:
        norms = model_or_array
    norms = np.asarray(norms, dtype=np.float64)
    if norms.ndim != 2 or norms.size == 0:
        raise ValueError(f"{name}: gradient norms must be a non-empty 2-D array of shape "
                         f"(n_epochs, n_layers); got shape {norms.shape}")
    epochs = np.arange(1, norms.shape[0] + 1, dtype=np.float64)
    if initial is not None:
        initial = np.asarray(initial, dtype=np.float64)
        if initial.shape != (norms.shape[1],):
            raise ValueError(f"{name}: initial_gradient_norms_ has shape {initial.shape}, "
                             f"expected ({norms.shape[1]},), one norm per layer")
        norms = np.vstack([initial, norms])
        epochs = np.arange(norms.shape[0], dtype=np.float64)
    if not np.isfinite(norms).all() or (norms < 0).any():
        raise ValueError(f"{name}: gradient norms must be finite and >= 0")
    return epochs, norms


def _as_model_list(model_or_array, labels):
    """[(label, model or array)] for one model, a sequence of models or a {label: model}."""
    if isinstance(model_or_array, Mapping):
        if labels is not None:
            raise ValueError("labels are taken from the dict keys; do not pass labels too")
        return [(str(k), v) for k, v in model_or_array.items()]
    several = isinstance(model_or_array, (list, tuple)) and len(model_or_array) > 0 and all(
        hasattr(m, "gradient_norms_") or hasattr(m, "fit")
        or (isinstance(m, np.ndarray) and m.ndim == 2) for m in model_or_array)
    models = list(model_or_array) if several else [model_or_array]
    if labels is None:
        labels = [None] if not several else [f"model {i + 1}" for i in range(len(models))]
    elif isinstance(labels, str):
        labels = [labels]
    if len(labels) != len(models):
        raise ValueError(f"got {len(labels)} labels for {len(models)} models")
    return list(zip(labels, models))


def plot_gradient_norms(model_or_array, *, labels=None, layer_names=None, ax=None,
                        title="Gradient norm per layer"):
    """Plot the gradient norm of each layer against the epoch, on a log scale.

    The vanishing-gradient picture: in a deep sigmoid network trained from random weights
    the norms of the first layers sit orders of magnitude below those of the last; RBM
    pretraining (Hinton & Salakhutdinov 2006) narrows the gap. Layers share a colour across
    models; models differ by line style.

    Parameters
    ----------
    model_or_array : estimator, array-like, sequence or dict of them
        A fitted network with ``gradient_norms_`` of shape (n_epochs, n_layers) (and
        optionally ``initial_gradient_norms_`` of shape (n_layers,), drawn as epoch 0); or
        that array itself (epochs 1, 2, ...); or a list of such models/arrays, or a dict
        ``{label: model}``, to compare several on one axes.
    labels : str or list of str, default=None
        Legend name of each model (with a list of models: one label per model). Not allowed
        with a dict, whose keys are the labels.
    layer_names : list of str, default=None
        Name of each layer in the legend; None gives "layer 1", "layer 2", ... (layer 1 is
        the one nearest the input).
    ax : matplotlib Axes, default=None
        Axes to draw into; None makes a new figure.
    title : str or None, default="Gradient norm per layer"
        Title of the axes.

    Returns
    -------
    fig : matplotlib Figure
        The figure holding the curves.

    References
    ----------
    G. Hinton and R. Salakhutdinov (2006). Reducing the dimensionality of data with neural
    networks. Science 313(5786).
    X. Glorot and Y. Bengio (2010). Understanding the difficulty of training deep
    feedforward neural networks. AISTATS.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrbm.plotting import plot_gradient_norms
    >>> norms = np.array([[1e-4, 1e-2, 1e-1], [2e-4, 1e-2, 5e-2]])  # 2 epochs, 3 layers
    >>> fig = plot_gradient_norms(norms)
    >>> fig.axes[0].get_yscale()
    'log'
    """
    models = _as_model_list(model_or_array, labels)
    curves = [(label, *_gradient_norm_curves(m, label or "gradient norms"))
              for label, m in models]
    n_layers = max(norms.shape[1] for _, _, norms in curves)
    if layer_names is None:
        layer_names = [f"layer {i + 1}" for i in range(n_layers)]
    elif len(layer_names) != n_layers:
        raise ValueError(f"got {len(layer_names)} layer_names for {n_layers} layers")
    fig, ax = _figure_and_axes(ax, figsize=(7, 4))
    for k, (label, epochs, norms) in enumerate(curves):
        style = _LINESTYLES[k % len(_LINESTYLES)]
        marker = "o" if norms.shape[0] < 30 else None
        for j in range(norms.shape[1]):
            name = layer_names[j] if label is None else f"{label}: {layer_names[j]}"
            ax.plot(epochs, norms[:, j], color=f"C{j}", linestyle=style, marker=marker,
                    markersize=3, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("gradient norm")
    ax.legend(loc="best", fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def plot_gradient_norms_through_time(model_or_array, *, epochs=None, ax=None,
                                     title="Gradient norm through time"):
    """Plot ||dL/dh_t|| against the time step t, one line per epoch, on a log scale.

    The vanishing gradient through time: in a plain recurrent net the norm falls
    geometrically from the last step (where the output reads the state) towards the
    first; an LSTM keeps it level (Hochreiter & Schmidhuber 1997; Pascanu, Mikolov &
    Bengio 2013).

    Parameters
    ----------
    model_or_array : fitted RNNClassifier or RNNRegressor, or array-like
        A recurrent net with ``gradient_norms_through_time_`` of shape (n_epochs, n_steps)
        (its ``initial_gradient_norms_through_time_`` is drawn as "initial"), or such an
        array itself.
    epochs : list of int, default=None
        Epochs to draw (1-based; 0 is the initial weights); None: the initial weights and
        up to five epochs spread over training.
    ax : matplotlib Axes, default=None
        Axes to draw into; None makes a new figure.
    title : str or None, default="Gradient norm through time"
        Title of the axes.

    Returns
    -------
    fig : matplotlib Figure
        The figure holding the curves.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrbm.plotting import plot_gradient_norms_through_time
    >>> norms = np.array([[1e-6, 1e-4, 1e-2], [1e-5, 1e-3, 1e-2]])  # 2 epochs, 3 steps
    >>> fig = plot_gradient_norms_through_time(norms)
    >>> fig.axes[0].get_yscale()
    'log'
    """
    initial = None
    if hasattr(model_or_array, "gradient_norms_through_time_"):
        norms = model_or_array.gradient_norms_through_time_
        initial = model_or_array.initial_gradient_norms_through_time_
    elif hasattr(model_or_array, "fit"):
        raise TypeError(f"{type(model_or_array).__name__} has no "
                        "gradient_norms_through_time_; fit a recurrent net first")
    else:
        norms = model_or_array
    norms = np.asarray(norms, dtype=np.float64)
    if norms.ndim != 2 or norms.shape[1] == 0 or not np.isfinite(norms).all() \
            or (norms < 0).any():
        raise ValueError(f"gradient norms through time must be a finite, non-negative 2-D "
                         f"array of shape (n_epochs, n_steps); got shape {norms.shape}")
    rows = {0: np.asarray(initial, dtype=np.float64)} if initial is not None else {}
    rows.update({e + 1: norms[e] for e in range(norms.shape[0])})
    if epochs is None:
        picked = np.unique(np.linspace(1, norms.shape[0], min(5, norms.shape[0])).round())
        epochs = ([0] if initial is not None else []) + [int(e) for e in picked]
    unknown = [e for e in epochs if e not in rows]
    if unknown:
        raise ValueError(f"epochs {unknown} not recorded (0 to {norms.shape[0]})")
    fig, ax = _figure_and_axes(ax, figsize=(7, 4))
    steps = np.arange(norms.shape[1])
    for k, e in enumerate(epochs):
        ax.plot(steps, rows[e], color=f"C{k}", label="initial" if e == 0 else f"epoch {e}")
    ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.set_ylabel("||dL/dh_t||")
    ax.legend(loc="best", fontsize="small")
    if title:
        ax.set_title(title)
    return fig
