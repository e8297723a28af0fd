"""Datasets: scikit-learn's bundled digits and readers for IDX files (MNIST, Fashion-MNIST).

Nothing here downloads. Fashion-MNIST comes from Debian (``apt-get install
dataset-fashion-mnist``) or from any folder holding the four IDX files.
"""

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_digits", "load_idx", "load_fashion_mnist", "load_mnist"]

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
    path=None, *, subset="both", scale=True, binarize=False, threshold=0.5, dtype=np.float32
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

    Returns
    -------
    (X_train, y_train), (X_test, y_test) : tuple of two (ndarray, ndarray) pairs
        When ``subset="both"``. Images have shape (n, 784) (flattened 28x28, row-major) and
        labels (n,), int64 in 0-9.
    X, y : ndarray of shape (n, 784), ndarray of shape (n,)
        When ``subset`` is ``"train"`` or ``"test"``: that split only.

    Raises
    ------
    FileNotFoundError
        If a file is missing; the message says how to get them.

    Examples
    --------
    >>> from fastrbm.datasets import load_fashion_mnist
    >>> (X_train, y_train), (X_test, y_test) = load_fashion_mnist()  # doctest: +SKIP
    >>> X_train.shape, X_test.shape  # doctest: +SKIP
    ((60000, 784), (10000, 784))
    >>> X, y = load_fashion_mnist(subset="train", binarize=True)  # doctest: +SKIP
    """
    if path is None:
        path = os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DEBIAN_PATH
    hint = (
        "Install it with `apt-get install dataset-fashion-mnist` (files land in "
        f"{FASHION_MNIST_DEBIAN_PATH}), or pass path= (or set {FASHION_MNIST_ENV}) to a folder "
        "holding the four Fashion-MNIST IDX files."
    )
    return _load_mnist_like(
        path, "Fashion-MNIST", hint, subset, scale, binarize, threshold, dtype
    )


def load_mnist(path, *, subset="both", scale=True, binarize=False, threshold=0.5, dtype=np.float32):
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
    return _load_mnist_like(path, "MNIST", hint, subset, scale, binarize, threshold, dtype)


def _load_mnist_like(path, name, hint, subset, scale, binarize, threshold, dtype):
    if subset not in ("both", "train", "test"):
        raise ValueError(f"subset must be 'both', 'train' or 'test', got {subset!r}")
    folder = Path(path).expanduser()
    if subset == "both":
        return tuple(
            _load_split(folder, name, hint, split, scale, binarize, threshold, dtype)
            for split in ("train", "test")
        )
    return _load_split(folder, name, hint, subset, scale, binarize, threshold, dtype)


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
    return X, labels.astype(np.int64)


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
