"""Tests for fastrbm.datasets: the IDX reader on files written here, the MNIST-style loaders on a
synthetic folder, digits scaling; the real Fashion-MNIST only when it is installed."""

import gzip
import os

import numpy as np
import pytest
from sklearn.datasets import load_digits as sk_load_digits

from fastrbm.datasets import (
    FASHION_MNIST_ENV,
    load_digits,
    load_fashion_mnist,
    load_idx,
    load_mnist,
)

IDX_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(array):
    """The IDX encoding of ``array``: magic, big-endian uint32 dims, big-endian data."""
    array = np.asarray(array)
    code = IDX_CODES[array.dtype.str[1:]]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, gz=False):
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def sample_array(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return (rng.standard_normal(shape) * 1e3).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


# --- load_idx -----------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (4, 3, 2), (2, 1, 3, 2), (0, 28, 28), ()])
@pytest.mark.parametrize("dtype", list(IDX_CODES))
def test_idx_round_trip(tmp_path, dtype, shape, gz):
    expected = sample_array(dtype, shape)
    got = load_idx(write_idx(tmp_path / "a.idx", expected, gz=gz))
    assert got.shape == expected.shape
    assert got.dtype == np.dtype(dtype)  # native byte order
    assert got.dtype.isnative
    assert got.flags.writeable and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)


def test_idx_extreme_values(tmp_path):
    for dtype in ["i1", "i2", "i4"]:
        info = np.iinfo(dtype)
        a = np.array([info.min, -1, 0, 1, info.max], dtype=dtype)
        np.testing.assert_array_equal(load_idx(write_idx(tmp_path / "x", a)), a)
    f = np.array([-np.inf, -0.0, 1e-45, np.finfo("f4").max, np.inf], dtype="f4")
    np.testing.assert_array_equal(load_idx(write_idx(tmp_path / "f", f)), f)
    assert np.isnan(load_idx(write_idx(tmp_path / "n", np.array([np.nan]))))[0]


def test_idx_gzip_detected_by_content_not_name(tmp_path):
    a = sample_array("u1", (3, 4))
    np.testing.assert_array_equal(load_idx(write_idx(tmp_path / "x-ubyte", a, gz=True)), a)
    np.testing.assert_array_equal(load_idx(write_idx(tmp_path / "x-ubyte.gz", a)), a)


def test_idx_accepts_str_path(tmp_path):
    a = sample_array("i2", (2, 2))
    np.testing.assert_array_equal(load_idx(str(write_idx(tmp_path / "x", a))), a)


def corrupt_files():
    good = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
    gz = gzip.compress(good)
    flipped = bytearray(gz)
    flipped[len(gz) // 2] ^= 0xFF
    return {
        "empty": (b"", "truncated"),
        "short header": (good[:3], "truncated"),
        "short dims": (good[:9], "truncated IDX header"),
        "short data": (good[:-1], "truncated IDX file"),
        "trailing bytes": (good + b"\x00", "trailing"),
        "bad magic": (b"\x01\x00" + good[2:], "not an IDX file"),
        "bad type code": (good[:2] + b"\x0a" + good[3:], "not an IDX file"),
        "text file": (b"hello world\n", "not an IDX file"),
        "truncated gzip": (gz[:-10], "gzip"),
        "corrupt gzip": (bytes(flipped), "gzip"),
        "gzip of truncated data": (gzip.compress(good[:-2]), "truncated IDX file"),
    }


@pytest.mark.parametrize("case", list(corrupt_files()))
def test_idx_rejects_corrupt_files(tmp_path, case):
    data, message = corrupt_files()[case]
    path = tmp_path / "bad"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message):
        load_idx(path)


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_idx(tmp_path / "nope")


# --- load_fashion_mnist / load_mnist on a synthetic folder --------------------------------

N_TRAIN, N_TEST = 6, 4


def make_mnist_folder(folder, gz=True, dotted=False, seed=0):
    """Write the four MNIST-named IDX files (small) into ``folder``; return the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in [("train", N_TRAIN), ("t10k", N_TEST)]:
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[0, 0, :3] = [0, 127, 128]  # around the 0.5 threshold, and 255 below
        images[0, 1, 0] = 255
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, idx, array in [("images", "idx3", images), ("labels", "idx1", labels)]:
            if dotted:
                name = f"{prefix}-{kind}.{idx}-ubyte"
            else:
                name = f"{prefix}-{kind}-{idx}-ubyte" + (".gz" if gz else "")
            write_idx(folder / name, array, gz=gz and not dotted)
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_fashion_mnist_both_splits(tmp_path, gz):
    arrays = make_mnist_folder(tmp_path, gz=gz)
    (X_train, y_train), (X_test, y_test) = load_fashion_mnist(tmp_path)
    for (X, y), key in [((X_train, y_train), "train"), ((X_test, y_test), "t10k")]:
        images, labels = arrays[key]
        assert X.shape == (len(images), 784) and X.dtype == np.float32
        assert X.flags.c_contiguous
        np.testing.assert_array_equal(X, (images.reshape(len(images), -1) / 255).astype("f4"))
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, labels)


def test_fashion_mnist_options(tmp_path):
    arrays = make_mnist_folder(tmp_path)
    images, labels = arrays["train"]
    flat = images.reshape(len(images), -1)

    X, y = load_fashion_mnist(tmp_path, subset="train", binarize=True)
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X, flat / 255 >= 0.5)
    assert X[0, :3].tolist() == [0.0, 0.0, 1.0]  # 127/255 < 0.5 <= 128/255

    X, _ = load_fashion_mnist(tmp_path, subset="train", binarize=True, threshold=0.9)
    np.testing.assert_array_equal(X, flat / 255 >= 0.9)

    X, y = load_fashion_mnist(tmp_path, subset="test", scale=False, dtype=np.float64)
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, arrays["t10k"][0].reshape(N_TEST, -1))
    np.testing.assert_array_equal(y, arrays["t10k"][1])

    with pytest.raises(ValueError, match="subset"):
        load_fashion_mnist(tmp_path, subset="all")
    with pytest.raises(ValueError, match="floating"):
        load_fashion_mnist(tmp_path, dtype=np.uint8)


def test_fashion_mnist_env_var(tmp_path, monkeypatch):
    arrays = make_mnist_folder(tmp_path)
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path))
    _, y = load_fashion_mnist(subset="train")
    np.testing.assert_array_equal(y, arrays["train"][1])


def test_fashion_mnist_missing_folder_message(tmp_path, monkeypatch):
    monkeypatch.delenv(FASHION_MNIST_ENV, raising=False)
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist(tmp_path / "nowhere")
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "path=" in message and "train-images-idx3-ubyte" in message
    assert str(tmp_path / "nowhere") in message


def test_fashion_mnist_missing_one_file(tmp_path):
    make_mnist_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    load_fashion_mnist(tmp_path, subset="train")  # the train split is complete
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_fashion_mnist(tmp_path)


def test_fashion_mnist_inconsistent_files(tmp_path):
    make_mnist_folder(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8), gz=True)
    with pytest.raises(ValueError, match="images but 3 labels"):
        load_fashion_mnist(tmp_path, subset="train")
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((3, 784), np.uint8), gz=True)
    with pytest.raises(ValueError, match="expected uint8 images"):
        load_fashion_mnist(tmp_path, subset="train")


def test_mnist_dotted_names(tmp_path):
    arrays = make_mnist_folder(tmp_path, dotted=True)
    (X_train, y_train), (X_test, y_test) = load_mnist(tmp_path)
    assert X_train.shape == (N_TRAIN, 784) and X_test.shape == (N_TEST, 784)
    np.testing.assert_array_equal(y_test, arrays["t10k"][1])
    with pytest.raises(FileNotFoundError, match="MNIST.*path="):
        load_mnist(tmp_path / "nowhere")


def fashion_mnist_installed():
    folder = os.environ.get(FASHION_MNIST_ENV) or "/usr/share/datasets/fashion-mnist"
    return os.path.isdir(folder) and len(os.listdir(folder)) >= 4


@pytest.mark.skipif(
    not fashion_mnist_installed(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist():
    (X_train, y_train), (X_test, y_test) = load_fashion_mnist(binarize=True)
    assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert X_train.dtype == np.float32
    assert set(np.unique(X_train).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(np.bincount(y_train), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(y_test), np.full(10, 1000))


# --- load_digits --------------------------------------------------------------------------


def test_digits_scaled():
    X, y = load_digits()
    reference = sk_load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(X, (reference.data / 16).astype(np.float32))
    np.testing.assert_array_equal(y, reference.target)


def test_digits_binarized():
    reference = sk_load_digits().data
    X, _ = load_digits(binarize=True)
    assert set(np.unique(X).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(X, reference / 16 >= 0.5)  # >= : level 8 maps to 1
    X, _ = load_digits(binarize=True, threshold=0.25, dtype=np.float64)
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, reference / 16 >= 0.25)


def test_digits_bunch():
    bunch = load_digits(return_X_y=False, dtype=np.float64)
    assert bunch.data.dtype == np.float64 and bunch.images.shape == (1797, 8, 8)
    np.testing.assert_array_equal(bunch.images.reshape(1797, 64), bunch.data)
    assert list(bunch.target_names) == list(range(10))
    assert "digits" in bunch.DESCR.lower()
