"""Tests of the sequence datasets in fastrbm.datasets: the adding problem, the temporal order
problem (Hochreiter & Schmidhuber 1997, experiment 6) and Fashion-MNIST read row by row
(on a synthetic IDX folder; the real files only when installed)."""
import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from fastrbm.datasets import (
    FASHION_MNIST_ENV,
    TEMPORAL_ORDER_SYMBOLS,
    load_fashion_mnist,
    load_mnist,
    make_adding_problem,
    make_temporal_order,
)

FLOATS = [np.float32, np.float64]


# --------------------------------------------------------------------------- adding problem
@pytest.mark.parametrize("dtype", FLOATS)
def test_adding_shapes_and_dtypes(dtype):
    X, y = make_adding_problem(n_samples=7, n_steps=13, random_state=0, dtype=dtype)
    assert X.shape == (7, 13, 2) and y.shape == (7,)
    assert X.dtype == dtype and y.dtype == dtype
    assert X.flags.c_contiguous
    X, y = make_adding_problem(random_state=0)  # defaults: 1000 sequences of 50 steps
    assert X.shape == (1000, 50, 2) and X.dtype == np.float64 and y.dtype == np.float64


def test_adding_markers_one_in_each_half():
    n_steps = 21  # odd: the first half is steps 0..9, the second 10..20
    X, _ = make_adding_problem(n_samples=4000, n_steps=n_steps, random_state=1)
    markers = X[:, :, 1]
    assert set(np.unique(markers)) == {0.0, 1.0}
    assert (markers.sum(axis=1) == 2).all()
    half = n_steps // 2
    assert (markers[:, :half].sum(axis=1) == 1).all()
    assert (markers[:, half:].sum(axis=1) == 1).all()
    # uniform within each half: every step is used, none much more than its share
    first, second = markers[:, :half].argmax(axis=1), half + markers[:, half:].argmax(axis=1)
    counts_1 = np.bincount(first, minlength=half)
    counts_2 = np.bincount(second - half, minlength=n_steps - half)
    assert counts_1.min() > 0.7 * 4000 / half and counts_1.max() < 1.3 * 4000 / half
    share_2 = 4000 / (n_steps - half)
    assert counts_2.min() > 0.7 * share_2 and counts_2.max() < 1.3 * share_2
    # the numbers: uniform on [0, 1], not only at the marked steps
    values = X[:, :, 0]
    assert values.min() >= 0 and values.max() <= 1
    assert abs(values.mean() - 0.5) < 0.01 and abs(values.var() - 1 / 12) < 0.005


@pytest.mark.parametrize("dtype", FLOATS)
def test_adding_label_is_the_sum_of_the_marked_numbers(dtype):
    X, y = make_adding_problem(n_samples=500, n_steps=30, random_state=2, dtype=dtype)
    expected = (X[:, :, 0].astype(np.float64) * X[:, :, 1]).sum(axis=1)
    np.testing.assert_array_equal(y, expected.astype(dtype))
    assert y.min() >= 0 and y.max() <= 2


def test_adding_constant_prediction_baseline():
    """Predicting 1 (the mean target) gives MSE Var(u1 + u2) = 1/6."""
    _, y = make_adding_problem(n_samples=200_000, n_steps=10, random_state=3)
    mse = np.mean((y - 1.0) ** 2)
    assert 0.15 < mse < 0.18
    assert abs(mse - 1 / 6) < 0.003  # standard error about 0.0003
    assert abs(y.mean() - 1.0) < 0.005


def test_adding_smallest_sizes():
    X, y = make_adding_problem(n_samples=1, n_steps=2, random_state=0)
    np.testing.assert_array_equal(X[0, :, 1], [1, 1])  # one step per half: both marked
    assert y[0] == X[0, 0, 0] + X[0, 1, 0]


def test_adding_random_state():
    a = make_adding_problem(50, 20, random_state=0)
    b = make_adding_problem(50, 20, random_state=0)
    c = make_adding_problem(50, 20, random_state=1)
    d = make_adding_problem(50, 20, random_state=np.random.RandomState(0))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a, d):  # an int seed and RandomState(seed): the same stream
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    # a RandomState instance is advanced: two calls give different data
    rng = np.random.RandomState(5)
    assert not np.array_equal(make_adding_problem(5, 8, random_state=rng)[0],
                              make_adding_problem(5, 8, random_state=rng)[0])
    # the float32 data is the float64 data rounded
    x32, _ = make_adding_problem(50, 20, random_state=0, dtype=np.float32)
    np.testing.assert_array_equal(x32, a[0].astype(np.float32))


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_steps=1), "n_steps"),
    (dict(n_steps=0), "n_steps"),
    (dict(n_steps=2.5), "n_steps"),
    (dict(n_samples=0), "n_samples"),
    (dict(n_samples=-3), "n_samples"),
    (dict(n_samples="10"), "n_samples"),
    (dict(random_state="seed"), "random_state"),
    (dict(dtype=np.int64), "floating dtype"),
])
def test_adding_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_adding_problem(**kwargs)


# --------------------------------------------------------------------------- temporal order
SYMBOL = {s: k for k, s in enumerate(TEMPORAL_ORDER_SYMBOLS)}
PAPER_WINDOWS = {2: [(10, 20), (50, 60)], 3: [(10, 20), (33, 43), (66, 76)]}


def decode(X):
    """Symbol indices of one-hot sequences, checking they are one-hot."""
    assert set(np.unique(X)) <= {0.0, 1.0}
    assert (X.sum(axis=2) == 1).all()
    return X.argmax(axis=2)


def relevant_positions(symbols, n_relevant):
    """Positions (n_samples, n_relevant) of the X / Y symbols, in order."""
    is_relevant = (symbols == SYMBOL["X"]) | (symbols == SYMBOL["Y"])
    assert (is_relevant.sum(axis=1) == n_relevant).all()
    return np.nonzero(is_relevant)[1].reshape(len(symbols), n_relevant)


def test_temporal_order_symbols():
    assert TEMPORAL_ORDER_SYMBOLS == ("a", "b", "c", "d", "X", "Y", "E", "B")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n_relevant", [2, 3])
def test_temporal_order_shapes_and_encoding(n_relevant, dtype):
    X, y = make_temporal_order(n_samples=9, n_steps=40, n_relevant=n_relevant,
                               random_state=0, dtype=dtype)
    assert X.shape == (9, 40, 8) and y.shape == (9,)
    assert X.dtype == dtype and y.dtype == np.int64
    symbols = decode(X)
    assert (symbols[:, 0] == SYMBOL["E"]).all() and (symbols[:, -1] == SYMBOL["B"]).all()
    inner = symbols[:, 1:-1]
    assert set(np.unique(inner)) <= set(range(6))  # distractors, X and Y only inside
    relevant_positions(symbols, n_relevant)
    X, y = make_temporal_order(random_state=0)  # defaults: 6a, 1000 sequences of 100 steps
    assert X.shape == (1000, 100, 8) and X.dtype == np.float64 and set(y) == {0, 1, 2, 3}


@pytest.mark.parametrize("n_relevant", [2, 3])
def test_temporal_order_label_rule(n_relevant):
    """The class is the binary number the relevant symbols spell (X = 0, Y = 1, first
    symbol most significant): XX, XY, YX, YY -> 0, 1, 2, 3 (the paper's Q, R, S, U)."""
    X, y = make_temporal_order(n_samples=3000, n_steps=100, n_relevant=n_relevant,
                               random_state=4)
    symbols = decode(X)
    pos = relevant_positions(symbols, n_relevant)
    bits = (np.take_along_axis(symbols, pos, axis=1) == SYMBOL["Y"]).astype(int)
    expected = np.zeros(len(y), int)
    for i in range(n_relevant):
        expected = 2 * expected + bits[:, i]
    np.testing.assert_array_equal(y, expected)
    # every class, each about equally often (3000 / 4 or 3000 / 8 per class)
    counts = np.bincount(y, minlength=2 ** n_relevant)
    share = 3000 / 2 ** n_relevant
    assert counts.min() > 0.8 * share and counts.max() < 1.2 * share
    # by hand, from the symbols spelt out
    names = "".join(TEMPORAL_ORDER_SYMBOLS[k] for k in symbols[0])
    order = "".join(ch for ch in names if ch in "XY")
    assert y[0] == int(order.replace("X", "0").replace("Y", "1"), 2)


@pytest.mark.parametrize("n_relevant", [2, 3])
def test_temporal_order_positions_are_the_papers_at_100_steps(n_relevant):
    X, _ = make_temporal_order(n_samples=5000, n_steps=100, n_relevant=n_relevant,
                               random_state=5)
    pos = relevant_positions(decode(X), n_relevant)
    for i, (lo, hi) in enumerate(PAPER_WINDOWS[n_relevant]):
        # every position of the window is used, and no other
        assert set(np.unique(pos[:, i])) == set(range(lo, hi + 1)), i


@pytest.mark.parametrize("n_steps, windows", [
    (200, [(20, 40), (100, 120)]),
    (50, [(5, 10), (25, 30)]),
    (10, [(1, 2), (5, 6)]),
])
def test_temporal_order_positions_scale_with_the_length(n_steps, windows):
    X, _ = make_temporal_order(n_samples=3000, n_steps=n_steps, random_state=6)
    pos = relevant_positions(decode(X), 2)
    for i, (lo, hi) in enumerate(windows):
        assert set(np.unique(pos[:, i])) == set(range(lo, hi + 1)), i


def test_temporal_order_distractors_uniform():
    X, _ = make_temporal_order(n_samples=2000, n_steps=100, random_state=7)
    symbols = decode(X)[:, 1:-1]
    distractors = symbols[symbols < 4]
    freq = np.bincount(distractors, minlength=4) / distractors.size
    np.testing.assert_allclose(freq, 0.25, atol=0.01)


def test_temporal_order_random_state():
    a = make_temporal_order(20, 30, random_state=0)
    b = make_temporal_order(20, 30, random_state=np.random.RandomState(0))
    c = make_temporal_order(20, 30, random_state=1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_steps=9), "n_steps"),
    (dict(n_steps=50.0), "n_steps"),
    (dict(n_samples=0), "n_samples"),
    (dict(n_relevant=1), "n_relevant"),
    (dict(n_relevant=4), "n_relevant"),
    (dict(random_state=[1, 2]), "random_state"),
    (dict(dtype=np.int32), "floating dtype"),
])
def test_temporal_order_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_temporal_order(**kwargs)


# --------------------------------------------------------------------------- Fashion-MNIST
def write_idx(path, array):
    """A gzipped IDX file (uint8 data) of ``array``."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    path.write_bytes(gzip.compress(header + array.tobytes()))


def make_folder(folder, shape=(28, 28), seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in [("train", 5), ("t10k", 3)]:
        images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
        arrays[prefix] = images, labels
    return arrays


@pytest.mark.parametrize("loader", [load_fashion_mnist, load_mnist])
def test_as_sequences_reads_rows(tmp_path, loader):
    arrays = make_folder(tmp_path)
    (X_train, y_train), (X_test, y_test) = loader(tmp_path, as_sequences=True)
    for X, y, key in [(X_train, y_train, "train"), (X_test, y_test, "t10k")]:
        images, labels = arrays[key]
        assert X.shape == images.shape and X.dtype == np.float32
        # step t of sequence i is row t of image i, scaled to [0, 1]
        np.testing.assert_array_equal(X, images.astype(np.float32) / np.float32(255))
        np.testing.assert_array_equal(y, labels)
    flat, _ = loader(tmp_path, subset="train")
    np.testing.assert_array_equal(X_train.reshape(len(X_train), -1), flat)
    # the other options apply as in the flat form
    Xb, _ = loader(tmp_path, subset="test", as_sequences=True, binarize=True,
                   dtype=np.float64)
    assert Xb.shape == (3, 28, 28) and Xb.dtype == np.float64
    np.testing.assert_array_equal(Xb, arrays["t10k"][0] / 255 >= 0.5)


def test_as_sequences_keeps_the_files_image_shape(tmp_path):
    """Steps are the file's rows, features its columns, whatever the image size."""
    arrays = make_folder(tmp_path, shape=(4, 6))
    X, _ = load_mnist(tmp_path, subset="train", as_sequences=True)
    assert X.shape == (5, 4, 6)
    np.testing.assert_array_equal(X[2, 3], arrays["train"][0][2, 3] / np.float32(255))


FASHION_MNIST = Path(os.environ.get(FASHION_MNIST_ENV) or "/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file()
                    and not (FASHION_MNIST / "t10k-images-idx3-ubyte").is_file(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_sequences():
    X, y = load_fashion_mnist(subset="test", as_sequences=True)
    assert X.shape == (10000, 28, 28) and X.dtype == np.float32 and y.shape == (10000,)
    assert X.min() == 0.0 and X.max() == 1.0
    flat, y_flat = load_fashion_mnist(subset="test")
    np.testing.assert_array_equal(X.reshape(10000, 784), flat)
    np.testing.assert_array_equal(y, y_flat)
    # an image read top to bottom: the rows are the pixels 28 t .. 28 t + 27
    np.testing.assert_array_equal(X[17, 9], flat[17, 9 * 28:10 * 28])
