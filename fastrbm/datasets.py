"""Datasets: scikit-learn's bundled digits, readers for IDX files (MNIST, Fashion-MNIST) and
generators of the long-time-lag sequence problems of the recurrent-net literature.

Nothing here downloads. Fashion-MNIST comes from Debian (``apt-get install
dataset-fashion-mnist``) or from any folder holding the four IDX files; with
``as_sequences=True`` its images are read row by row, 28 steps of 28 pixels. The sequence
problems (:func:`make_adding_problem`, :func:`make_temporal_order`) are drawn from a seed.
Sequences are arrays of shape (n_samples, n_steps, n_features), batch first.
"""

import gzip
import math
import os
import zlib
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

__all__ = ["load_digits", "load_idx", "load_fashion_mnist", "load_mnist",
           "make_adding_problem", "make_temporal_order", "TEMPORAL_ORDER_SYMBOLS"]

#: Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
FASHION_MNIST_DEBIAN_PATH = "/usr/share/datasets/fashion-mnist"
#: Environment variable naming a folder with the Fashion-MNIST IDX files.
FASHION_MNIST_ENV = "FASTRBM_FASHION_MNIST"

# IDX type code -> big-endian dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_SPLIT_FILES = {"train": "train", "test": "t10k"}


def load_digits(*, binarize=False, threshold=0.5, return_X_y=True, dtype=np.float32):
    """Load scikit-learn's bundled 8x8 digits, scaled to [0, 1].

    The 16 grey levels are divided by 16, so pixels lie in [0, 1]; with ``binarize=True`` they
    become 1 where ``pixel / 16 >= threshold`` and 0 elsewhere.

    Parameters
    ----------
    binarize : bool, default=False
        Threshold the scaled pixels to {0, 1}.
    threshold : float, default=0.5
        Threshold on the [0, 1] scale, used when ``binarize=True``.
    return_X_y : bool, default=True
        Return ``(X, y)``; otherwise a :class:`~sklearn.utils.Bunch`.
    dtype : dtype, default=np.float32
        Floating dtype of ``X``.

    Returns
    -------
    X : ndarray of shape (1797, 64)
        The images, one flattened 8x8 image per row.
    y : ndarray of shape (1797,)
        The digit (0-9) of each image.
    data : Bunch
        Returned instead of ``(X, y)`` when ``return_X_y=False``; fields ``data``, ``target``,
        ``images`` (shape (1797, 8, 8), same values as ``data``), ``target_names`` and ``DESCR``.

    Examples
    --------
    >>> from fastrbm.datasets import load_digits
    >>> X, y = load_digits()
    >>> X.shape, X.dtype, float(X.max())
    ((1797, 64), dtype('float32'), 1.0)
    >>> Xb, _ = load_digits(binarize=True)
    >>> sorted(set(Xb.ravel().tolist()))
    [0.0, 1.0]
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    X = _scale_levels(bunch.data.astype(np.intp), 16, binarize, threshold, dtype)
    y = bunch.target
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        images=X.reshape(-1, 8, 8),
        target_names=bunch.target_names,
        DESCR=bunch.DESCR,
    )


def load_idx(path):
    """Read an IDX file (the MNIST file format) into a NumPy array.

    Gzip compression is detected from the file's first bytes, not its name. All IDX element
    types are read: unsigned byte, signed byte, short, int, float and double (stored
    big-endian, returned in native byte order), with any number of dimensions.

    Parameters
    ----------
    path : str or path-like
        The IDX file, gzipped or not.

    Returns
    -------
    array : ndarray
        The array, with the file's shape and element type (uint8, int8, int16, int32,
        float32 or float64).

    Raises
    ------
    ValueError
        If the file is not an IDX file (bad magic number or type code), is truncated, has
        trailing bytes, or is a corrupt gzip stream.

    Examples
    --------
    >>> from fastrbm.datasets import load_idx
    >>> images = load_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    ... # doctest: +SKIP
    >>> images.shape, images.dtype  # doctest: +SKIP
    ((10000, 28, 28), dtype('uint8'))
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path!r}: corrupt or truncated gzip stream ({exc})") from exc

    if len(raw) < 4:
        raise ValueError(f"{path!r}: truncated IDX file ({len(raw)} bytes, no header)")
    zero, code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00" or code not in _IDX_DTYPES:
        raise ValueError(
            f"{path!r}: not an IDX file (magic number 0x{raw[:4].hex()}; expected 0x0000 "
            f"followed by a type code in {{{', '.join(f'0x{c:02X}' for c in _IDX_DTYPES)}}} "
            "and the number of dimensions)"
        )
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(f"{path!r}: truncated IDX header ({ndim} dimensions announced)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))

    dtype = _IDX_DTYPES[code]
    count = math.prod(shape)
    expected = dtype.itemsize * count
    found = len(raw) - header_size
    if found != expected:
        problem = "truncated" if found < expected else "corrupt (trailing bytes)"
        raise ValueError(
            f"{path!r}: {problem} IDX file: shape {shape} of {dtype.name} needs {expected} "
            f"data bytes, found {found}"
        )
    array = np.frombuffer(raw, dtype=dtype, count=count, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a writable, native-endian copy


def load_fashion_mnist(
    path=None, *, subset="both", scale=True, binarize=False, threshold=0.5, dtype=np.float32,
    as_sequences=False,
):
    """Load Fashion-MNIST from its four IDX files; nothing is downloaded.

    The folder is ``path`` if given, else the folder named by the environment variable
    ``FASTRBM_FASHION_MNIST``, else ``/usr/share/datasets/fashion-mnist`` (where Debian's
    ``dataset-fashion-mnist`` package puts it). The files are ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``,
    each optionally gzipped (``.gz``).

    Parameters
    ----------
    path : str or path-like, default=None
        Folder holding the IDX files.
    subset : {"both", "train", "test"}, default="both"
        Which split(s) to return: the 60000 training images, the 10000 test images, or both.
    scale : bool, default=True
        Divide the 0-255 pixel values by 255 so they lie in [0, 1].
    binarize : bool, default=False
        Set pixels to 1 where ``pixel / 255 >= threshold`` and to 0 elsewhere (overrides
        ``scale``).
    threshold : float, default=0.5
        Threshold on the [0, 1] scale, used when ``binarize=True``.
    dtype : dtype, default=np.float32
        Dtype of the images.
    as_sequences : bool, default=False
        Return each image as a sequence read row by row, top to bottom: shape (n, 28, 28),
        28 steps of the 28 pixels of one row (``X[i, t]`` is row ``t`` of image ``i``), the
        input of a recurrent net. The same values as the flat form, reshaped:
        ``X_seq.reshape(n, 784)`` is ``X``.

    Returns
    -------
    (X_train, y_train), (X_test, y_test) : tuple of two (ndarray, ndarray) pairs
        When ``subset="both"``. Images have shape (n, 784) (flattened 28x28, row-major), or
        (n, 28, 28) with ``as_sequences=True``, and labels (n,), int64 in 0-9.
    X, y : ndarray of shape (n, 784) or (n, 28, 28), ndarray of shape (n,)
        When ``subset`` is ``"train"`` or ``"test"``: that split only.

    Raises
    ------
    FileNotFoundError
        If a file is missing; the message says how to get them.

    See Also
    --------
    make_adding_problem, make_temporal_order : Synthetic sequence problems.

    Examples
    --------
    >>> from fastrbm.datasets import load_fashion_mnist
    >>> (X_train, y_train), (X_test, y_test) = load_fashion_mnist()  # doctest: +SKIP
    >>> X_train.shape, X_test.shape  # doctest: +SKIP
    ((60000, 784), (10000, 784))
    >>> X, y = load_fashion_mnist(subset="train", binarize=True)  # doctest: +SKIP

    Read row by row (28 steps of 28 pixels), as recurrent nets take it:

    >>> X_seq, y = load_fashion_mnist(subset="test", as_sequences=True)  # doctest: +SKIP
    >>> X_seq.shape, float(X_seq.min()), float(X_seq.max())  # doctest: +SKIP
    ((10000, 28, 28), 0.0, 1.0)
    """
    if path is None:
        path = os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DEBIAN_PATH
    hint = (
        "Install it with `apt-get install dataset-fashion-mnist` (files land in "
        f"{FASHION_MNIST_DEBIAN_PATH}), or pass path= (or set {FASHION_MNIST_ENV}) to a folder "
        "holding the four Fashion-MNIST IDX files."
    )
    return _load_mnist_like(
        path, "Fashion-MNIST", hint, subset, scale, binarize, threshold, dtype, as_sequences
    )


def load_mnist(path, *, subset="both", scale=True, binarize=False, threshold=0.5, dtype=np.float32,
               as_sequences=False):
    """Load the classic MNIST digits from a folder holding its four IDX files.

    The files and the returned values are as in :func:`load_fashion_mnist` (same file names,
    gzipped or not; ``train-images.idx3-ubyte`` style names are also found). Nothing is
    downloaded and there is no default folder.

    Parameters
    ----------
    path : str or path-like
        Folder holding the IDX files.
    subset : {"both", "train", "test"}, default="both"
        Which split(s) to return.
    scale : bool, default=True
        Divide the 0-255 pixel values by 255.
    binarize : bool, default=False
        Set pixels to 1 where ``pixel / 255 >= threshold`` and to 0 elsewhere.
    threshold : float, default=0.5
        Threshold on the [0, 1] scale, used when ``binarize=True``.
    dtype : dtype, default=np.float32
        Dtype of the images.
    as_sequences : bool, default=False
        Images of shape (n, 28, 28), read row by row, as in :func:`load_fashion_mnist`.

    Returns
    -------
    (X_train, y_train), (X_test, y_test) or X, y
        As in :func:`load_fashion_mnist`.

    Examples
    --------
    >>> from fastrbm.datasets import load_mnist
    >>> (X_train, y_train), (X_test, y_test) = load_mnist("~/data/mnist")  # doctest: +SKIP
    """
    hint = "Pass path= a folder holding the four MNIST IDX files."
    return _load_mnist_like(path, "MNIST", hint, subset, scale, binarize, threshold, dtype,
                            as_sequences)


def _load_mnist_like(path, name, hint, subset, scale, binarize, threshold, dtype,
                     as_sequences=False):
    if subset not in ("both", "train", "test"):
        raise ValueError(f"subset must be 'both', 'train' or 'test', got {subset!r}")
    folder = Path(path).expanduser()
    splits = ("train", "test") if subset == "both" else (subset,)
    loaded = []
    for split in splits:
        X, y, image_shape = _load_split(folder, name, hint, split, scale, binarize, threshold,
                                        dtype)
        if as_sequences:  # row-major: step t holds the pixels of row t (a view, no copy)
            X = X.reshape(len(X), *image_shape)
        loaded.append((X, y))
    return tuple(loaded) if subset == "both" else loaded[0]


def _load_split(folder, name, hint, split, scale, binarize, threshold, dtype):
    prefix = _SPLIT_FILES[split]
    images = load_idx(_find_idx(folder, f"{prefix}-images", "idx3", name, hint))
    labels = load_idx(_find_idx(folder, f"{prefix}-labels", "idx1", name, hint))
    if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(
            f"{name} {split} files in {folder}: expected uint8 images of shape (n, rows, cols) "
            f"and labels of shape (n,), got {images.dtype} {images.shape} and {labels.shape}"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{name} {split} files in {folder}: {len(images)} images but {len(labels)} labels"
        )
    divisor = 255 if (scale or binarize) else 1
    X = _scale_levels(images.reshape(len(images), -1), divisor, binarize, threshold, dtype)
    return X, labels.astype(np.int64), images.shape[1:]


def _find_idx(folder, stem, kind, name, hint):
    """The path of ``{stem}-{kind}-ubyte[.gz]`` (or ``{stem}.{kind}-ubyte``) in ``folder``."""
    candidates = [f"{stem}-{kind}-ubyte.gz", f"{stem}-{kind}-ubyte", f"{stem}.{kind}-ubyte"]
    for candidate in candidates:
        if (folder / candidate).is_file():
            return folder / candidate
    raise FileNotFoundError(
        f"{name}: no {candidates[0]} (or {candidates[1]}) in {folder}. {hint}"
    )


def _scale_levels(levels, n_levels, binarize, threshold, dtype):
    """Map integer ``levels`` (0..max) to ``levels / n_levels``, thresholded if ``binarize``.

    Through a lookup table: one pass, no float64 temporary, and the threshold is applied to
    exactly the value ``levels / n_levels`` (computed in float64).
    """
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    table = np.arange(int(levels.max(initial=0)) + 1, dtype=np.float64) / n_levels
    if binarize:
        table = table >= threshold
    return table.astype(dtype)[levels]


# ----------------------------------------------------------------------------------------
# Synthetic sequence problems (long time lags)
# ----------------------------------------------------------------------------------------
#: The symbols of :func:`make_temporal_order`, in the order of the one-hot feature columns:
#: the distractors a-d, the relevant symbols X and Y, the start marker E and the end
#: ("trigger") marker B (Hochreiter & Schmidhuber 1997, experiment 6).
TEMPORAL_ORDER_SYMBOLS = ("a", "b", "c", "d", "X", "Y", "E", "B")
_N_DISTRACTORS = 4
_SYMBOL_X, _SYMBOL_E, _SYMBOL_B = 4, 6, 7

# Windows of the relevant symbols' positions as fractions of the sequence length: at length
# 100 the paper's t1 in [10, 20] and t2 in [50, 60] (6a), or t1 in [10, 20], t2 in [33, 43]
# and t3 in [66, 76] (6b).
_TEMPORAL_ORDER_WINDOWS = {
    2: ((0.10, 0.20), (0.50, 0.60)),
    3: ((0.10, 0.20), (0.33, 0.43), (0.66, 0.76)),
}
_TEMPORAL_ORDER_MIN_STEPS = 10


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    return dtype


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_steps": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
        "dtype": "no_validation",  # a floating dtype: checked below
    },
    prefer_skip_nested_validation=True,
)
def make_adding_problem(n_samples=1000, n_steps=50, *, random_state=None, dtype=np.float64):
    """Generate the adding problem: sum the two marked numbers of a long sequence.

    Each sequence has ``n_steps`` steps of two features. Feature 0 holds numbers drawn
    uniformly from [0, 1]; feature 1 is a marker, 0 everywhere except at two steps: one
    drawn uniformly from the first half of the sequence (steps ``0 .. n_steps // 2 - 1``)
    and one from the second half (steps ``n_steps // 2 .. n_steps - 1``). The target is
    the sum of the two marked numbers. This is the form of Le, Jaitly & Hinton (2015)
    (and of Arjovsky et al. 2016), a simplification of Hochreiter & Schmidhuber's (1997)
    experiment 4; the information needed at the end was seen at least ``n_steps // 2``
    steps before it, on average about ``n_steps / 2 + n_steps / 4``.

    Predicting 1 for every sequence (the target's mean) gives a mean squared error of
    ``Var(u1 + u2) = 2 / 12 = 1/6`` (about 0.167): the baseline a model has to beat.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of sequences (at least 1).
    n_steps : int, default=50
        Length of each sequence (at least 2: one step in each half).
    random_state : int, RandomState instance or None, default=None
        Seeds the numbers and the marker positions (scikit-learn's ``check_random_state``
        conventions): the same seed gives the same data.
    dtype : dtype, default=np.float64
        Floating dtype of ``X`` and ``y``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_steps, 2)
        The sequences: ``X[:, :, 0]`` the numbers, ``X[:, :, 1]`` the markers (exactly two
        ones per sequence).
    y : ndarray of shape (n_samples,)
        The targets, ``(X[:, :, 0] * X[:, :, 1]).sum(axis=1)``, in [0, 2].

    Raises
    ------
    ValueError
        If ``n_samples < 1``, ``n_steps < 2`` (or either is not an integer), or ``dtype``
        is not a floating dtype.

    See Also
    --------
    make_temporal_order : A classification problem with long time lags.

    References
    ----------
    S. Hochreiter, J. Schmidhuber (1997). Long short-term memory. Neural Computation 9(8).
    Q. V. Le, N. Jaitly, G. E. Hinton (2015). A simple way to initialize recurrent networks
    of rectified linear units. arXiv:1504.00941.
    M. Arjovsky, A. Shah, Y. Bengio (2016). Unitary evolution recurrent neural networks.
    ICML.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrbm.datasets import make_adding_problem
    >>> X, y = make_adding_problem(n_samples=5, n_steps=20, random_state=0)
    >>> X.shape, y.shape
    ((5, 20, 2), (5,))
    >>> X[:, :, 1].sum(axis=1)
    array([2., 2., 2., 2., 2.])
    >>> bool(np.allclose(y, (X[:, :, 0] * X[:, :, 1]).sum(axis=1)))
    True
    """
    dtype = _float_dtype(dtype)
    rng = check_random_state(random_state)
    half = n_steps // 2
    values = rng.uniform(0.0, 1.0, size=(n_samples, n_steps))
    first = rng.randint(0, half, size=n_samples)
    second = rng.randint(half, n_steps, size=n_samples)
    rows = np.arange(n_samples)
    X = np.zeros((n_samples, n_steps, 2), dtype=dtype)
    X[:, :, 0] = values
    X[rows, first, 1] = 1
    X[rows, second, 1] = 1
    # summed in float64 from the stored values, so y is exactly the sum of X's two numbers
    y = X[rows, first, 0].astype(np.float64) + X[rows, second, 0]
    return X, y.astype(dtype)


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_steps": [Interval(Integral, _TEMPORAL_ORDER_MIN_STEPS, None, closed="left")],
        "n_relevant": [Interval(Integral, 2, 3, closed="both")],
        "random_state": ["random_state"],
        "dtype": "no_validation",  # a floating dtype: checked below
    },
    prefer_skip_nested_validation=True,
)
def make_temporal_order(n_samples=1000, n_steps=100, *, n_relevant=2, random_state=None,
                        dtype=np.float64):
    """Generate the temporal order problem: classify a sequence by the order of X and Y.

    Hochreiter & Schmidhuber's (1997) experiment 6. A sequence starts with the symbol E,
    ends with the "trigger" symbol B, and is otherwise made of distractors drawn
    uniformly from {a, b, c, d}, except at ``n_relevant`` positions ``t1 < t2 (< t3)``
    that hold X or Y (each with probability 1/2). The class is the order of these symbols:

    * ``n_relevant=2`` (experiment 6a), 4 classes: XX -> 0, XY -> 1, YX -> 2, YY -> 3
      (the paper's Q, R, S, U);
    * ``n_relevant=3`` (experiment 6b), 8 classes: XXX -> 0, XXY -> 1, ..., YYY -> 7 (the
      paper's Q, R, S, U, V, A, B, C),

    that is, reading X as bit 0 and Y as bit 1, the class is the binary number the
    relevant symbols spell, first symbol most significant.

    The positions are drawn uniformly from windows that scale with the length: at
    ``n_steps=100`` they are the paper's, t1 in [10, 20] and t2 in [50, 60] (6a), or t1 in
    [10, 20], t2 in [33, 43] and t3 in [66, 76] (6b), counting the first step (E) as 0.
    At another length each window's ends are ``round(fraction * n_steps)`` of those
    fractions (10% to 20% and so on). Unlike the paper, whose lengths vary from 100 to 110,
    every sequence has ``n_steps`` steps, so the data is one dense array.

    Encoding: each step is a one-hot vector over the 8 symbols
    :data:`TEMPORAL_ORDER_SYMBOLS` ``("a", "b", "c", "d", "X", "Y", "E", "B")``, in that
    order of the feature columns (the paper's local input representation, one input unit
    per symbol).

    Parameters
    ----------
    n_samples : int, default=1000
        Number of sequences (at least 1).
    n_steps : int, default=100
        Length of each sequence, start and end markers included (at least 10).
    n_relevant : {2, 3}, default=2
        Number of relevant symbols: 2 (experiment 6a, 4 classes) or 3 (6b, 8 classes).
    random_state : int, RandomState instance or None, default=None
        Seeds the distractors, the positions and the relevant symbols
        (``check_random_state`` conventions): the same seed gives the same data.
    dtype : dtype, default=np.float64
        Floating dtype of ``X``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_steps, 8)
        One-hot encoded sequences (exactly one 1 per step).
    y : ndarray of shape (n_samples,), int64
        Class labels in ``0 .. 2 ** n_relevant - 1``.

    Raises
    ------
    ValueError
        If ``n_samples < 1``, ``n_steps < 10``, ``n_relevant`` is not 2 or 3, or ``dtype``
        is not a floating dtype.

    See Also
    --------
    make_adding_problem : A regression problem with long time lags.

    References
    ----------
    S. Hochreiter, J. Schmidhuber (1997). Long short-term memory. Neural Computation 9(8),
    section 5.6 (experiment 6: temporal order).

    Examples
    --------
    >>> from fastrbm.datasets import TEMPORAL_ORDER_SYMBOLS, make_temporal_order
    >>> X, y = make_temporal_order(n_samples=3, n_steps=100, random_state=0)
    >>> X.shape, y.shape, y.dtype
    ((3, 100, 8), (3,), dtype('int64'))
    >>> seq = "".join(TEMPORAL_ORDER_SYMBOLS[k] for k in X[0].argmax(axis=1))
    >>> seq[:20]
    'EdbaddddbdbcaYcaaacb'
    >>> seq[-1], [(t, s) for t, s in enumerate(seq) if s in "XY"]
    ('B', [(13, 'Y'), (55, 'X')])
    >>> int(y[0])  # Y then X: class 2 (the paper's S)
    2
    """
    dtype = _float_dtype(dtype)
    rng = check_random_state(random_state)
    windows = _temporal_order_windows(n_steps, n_relevant)
    symbols = rng.randint(0, _N_DISTRACTORS, size=(n_samples, n_steps))
    symbols[:, 0] = _SYMBOL_E
    symbols[:, -1] = _SYMBOL_B
    bits = rng.randint(0, 2, size=(n_samples, n_relevant))
    rows = np.arange(n_samples)
    for i, (lo, hi) in enumerate(windows):
        position = rng.randint(lo, hi + 1, size=n_samples)
        symbols[rows, position] = _SYMBOL_X + bits[:, i]
    y = bits @ (1 << np.arange(n_relevant - 1, -1, -1))
    X = np.eye(len(TEMPORAL_ORDER_SYMBOLS), dtype=dtype)[symbols]
    return X, y.astype(np.int64)


def _temporal_order_windows(n_steps, n_relevant):
    """The inclusive position windows ``[(lo, hi), ...]`` of the relevant symbols: the
    paper's at 100 steps, scaled to ``n_steps``; disjoint, and clear of the markers."""
    windows = [(math.floor(a * n_steps + 0.5), math.floor(b * n_steps + 0.5))
               for a, b in _TEMPORAL_ORDER_WINDOWS[n_relevant]]
    # n_steps >= 10 keeps them apart: checked here, never expected to fire
    ends = [1] + [p for w in windows for p in w] + [n_steps - 2]
    if any(a > b for a, b in zip(ends, ends[1:])) or any(
            prev[1] >= nxt[0] for prev, nxt in zip(windows, windows[1:])):
        raise ValueError(f"n_steps={n_steps} is too short for {n_relevant} relevant symbols")
    return windows
