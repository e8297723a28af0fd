"""The GEMMs of one fine-tuning mini-batch of the 784-500-500-2000-10 net (batch 100), each
timed through Numba's ``np.dot(a, b, out)`` and through NumPy's ``matmul`` (what the
benchmark's GEMM floor calls), with the BLAS libraries' default threads. Prints per-shape
milliseconds and the total per 600 batches (one Fashion-MNIST epoch). A diagnostic for how
far Numba's own product route sits from the floor's on these shapes (fastrbm's engine calls
BLAS directly, see docs/engine.md), not a benchmark of fastrbm itself:
``python bench/dbn_gemm_shapes.py``."""
import time

import numpy as np
from numba import njit


@njit(nogil=True)
def _dot(a, b, out):
    np.dot(a, b, out)


@njit(nogil=True)
def _dot_tn(a, b, out):
    np.dot(a.T, b, out)


@njit(nogil=True)
def _dot_nt(a, b, out):
    np.dot(a, b.T, out)


def _best_ms(run, repeats=30, rounds=5):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            run()
        times.append((time.perf_counter() - start) / repeats)
    return min(times) * 1e3


def main(batch=100, sizes=(784, 500, 500, 2000, 10), batches_per_epoch=600):
    rng = np.random.default_rng(0)
    total = {"numba": 0.0, "numpy": 0.0}
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        A = rng.random((batch, n_in), dtype=np.float32)
        W = rng.random((n_in, n_out), dtype=np.float32)
        D = rng.random((batch, n_out), dtype=np.float32)
        Z = np.empty((batch, n_out), np.float32)
        G = np.empty((n_in, n_out), np.float32)
        P = np.empty((batch, n_in), np.float32)
        shapes = [
            ("forward A @ W", lambda: _dot(A, W, Z), lambda: np.matmul(A, W, out=Z)),
            ("weights A.T @ D", lambda: _dot_tn(A, D, G), lambda: np.matmul(A.T, D, out=G)),
            ("delta D @ W.T", lambda: _dot_nt(D, W, P), lambda: np.matmul(D, W.T, out=P)),
        ]
        for name, via_numba, via_numpy in shapes:
            via_numba()  # compile
            a, b = _best_ms(via_numba), _best_ms(via_numpy)
            total["numba"] += a
            total["numpy"] += b
            print(f"{n_in:>5}x{n_out:<5} {name:<16} Numba np.dot {a:7.3f} ms   "
                  f"NumPy matmul {b:7.3f} ms   ratio {a / b:.2f}")
    print(f"per {batches_per_epoch} batches: Numba {total['numba'] * batches_per_epoch / 1e3:.2f} s, "
          f"NumPy {total['numpy'] * batches_per_epoch / 1e3:.2f} s")


if __name__ == "__main__":
    main()
