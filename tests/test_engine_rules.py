"""The rules both engines need, pinned equal across the Cython / Numba boundary: the
column-block rule (results depend on the block count, so the two engines must cut layers
the same way), SplitMix64 (both random streams are built on it) and the row-major GEMM
shim over SciPy's BLAS."""
import numpy as np
import pytest
from numba import njit
from numpy.testing import assert_array_equal

from fastrbm._kernels import _sampling
from fastrbm._kernels import backprop as bp


@njit
def _numba_block_width(dim, n_blocks):
    return bp._blocks(dim, n_blocks)[0]


@njit
def _numba_gemm(transa, transb, k, A, B, C):
    bp._gemm(transa, transb, C.shape[0], C.shape[1], k, A, A.shape[1], B, B.shape[1], C,
             C.shape[1])


def test_block_rule_is_one_rule():
    for dim in [1, 2, 15, 16, 17, 31, 32, 33, 100, 500, 784, 2000, 4097]:
        for n_blocks in [1, 2, 3, 4, 7, 8, 16, 64]:
            assert _sampling.block_size(dim, n_blocks) == _numba_block_width(dim, n_blocks)


def test_splitmix64_is_one_function():
    golden = np.uint64(0x9E3779B97F4A7C15)
    xs = np.random.default_rng(0).integers(0, 2**64, size=200, dtype=np.uint64)
    xs = np.concatenate([xs, np.array([0, 1, 2**63, 2**64 - 1], np.uint64)])
    with np.errstate(over="ignore"):
        numba_values = [int(bp._splitmix64(x + golden)) for x in xs]
    assert [_sampling.splitmix64(int(x)) for x in xs] == numba_values
    # the published first output of SplitMix64 seeded with 0
    assert _sampling.splitmix64(0) == 0xE220A8397B1DCDAF


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans", ["NN", "NT", "TN", "TT"])
def test_gemm_shim_is_one_product(dtype, trans):
    """The same BLAS through both shims: bitwise the same product."""
    rng = np.random.default_rng(1)
    m, n, k = 13, 9, 21
    A = rng.standard_normal((k, m) if trans[0] == "T" else (m, k)).astype(dtype)
    B = rng.standard_normal((n, k) if trans[1] == "T" else (k, n)).astype(dtype)
    C_cython, C_numba = np.zeros((m, n), dtype), np.zeros((m, n), dtype)
    _sampling.row_major_gemm(trans[0], trans[1], A, B, C_cython)
    _numba_gemm(np.int8(ord(trans[0])), np.int8(ord(trans[1])), k, A, B, C_numba)
    assert_array_equal(C_cython, C_numba)
    opA = A.T if trans[0] == "T" else A
    opB = B.T if trans[1] == "T" else B
    np.testing.assert_allclose(C_cython, opA @ opB, rtol=1e-4 if dtype == np.float32 else 1e-12)
