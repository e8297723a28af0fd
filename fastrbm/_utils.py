"""Small helpers shared by the estimators: thread counts, seeds, softplus."""
import os
from contextlib import contextmanager

import numpy as np


def n_threads_for(n_jobs):
    """Threads to use for ``n_jobs``: None or -1 means every core this process may run on,
    -2 all but one, and so on (joblib's convention for negative values)."""
    try:
        n_cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n_cores = os.cpu_count() or 1
    if n_jobs is None:
        return n_cores
    if n_jobs < 0:
        return max(1, n_cores + 1 + n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None, a positive or a negative int")
    return int(n_jobs)


# Below about this many multiply-adds per mini-batch GEMM, a second OpenMP thread costs
# more in synchronisation than it saves (and on a busy machine far more).
_MIN_WORK_PER_THREAD = 2_000_000


def engine_threads(n_jobs, work_per_batch):
    """Threads for the compiled engine: ``n_jobs`` when given; for None, every core if the
    mini-batch work is large enough to share, else one."""
    if n_jobs is not None:
        return n_threads_for(n_jobs)
    return max(1, min(n_threads_for(None), work_per_batch // _MIN_WORK_PER_THREAD))


def engine_blocks(work_per_batch):
    """Blocks per layer in the Gibbs engine: as many as the threads ``n_jobs=None`` would
    use for this shape. It depends on the shape and the machine only, never on n_jobs, or
    the model would (OpenBLAS rounds differently per partition); small layers get one
    block, as every extra BLAS call costs microseconds there."""
    return engine_threads(None, work_per_batch)


_BLAS_CONTROLLER = []


def blas_threads(n_threads):
    """``threadpoolctl.threadpool_limits(n_threads, user_api="blas")`` through one cached
    controller: a fresh threadpool_limits scans every loaded library (about 2 ms, which
    showed on small fits). Created at first use, after scipy's BLAS is loaded; NumPy's
    bundled OpenBLAS (which the backprop engine also calls) is loaded with NumPy."""
    if not _BLAS_CONTROLLER:
        from threadpoolctl import ThreadpoolController

        import scipy.linalg.cython_blas  # noqa: F401  (the engines' BLAS, loaded first)

        _BLAS_CONTROLLER.append(ThreadpoolController())
    return _BLAS_CONTROLLER[0].limit(limits=int(n_threads), user_api="blas")


def _numba_threads_are_threadsafe():
    """Whether Numba's parallel code may run from several Python threads at once: its
    OpenMP and TBB layers allow that, the workqueue fallback aborts the process. The layer is
    chosen when parallel code first runs; a one-element parallel kernel (cached) starts it,
    then ``numba.threading_layer()`` names it."""
    import numba

    if not _THREADING_LAYER:
        _start_threading_layer(np.zeros(1))
        _THREADING_LAYER.append(numba.threading_layer())
    return _THREADING_LAYER[0] in ("omp", "tbb")


_THREADING_LAYER = []


def _start_threading_layer(x):
    from numba import njit, prange

    @njit(parallel=True, cache=True)
    def _fill(x):
        for i in prange(x.size):
            x[i] = i
    _fill(x)


@contextmanager
def numba_threads(n_threads):
    """Run Numba's parallel code on ``n_threads`` threads inside the block (restored after);
    yields the count actually used: 1 when the threading layer is not thread-safe."""
    import numba

    if n_threads > 1 and not _numba_threads_are_threadsafe():
        n_threads = 1
    n_threads = max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS))
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        yield n_threads
    finally:
        numba.set_num_threads(previous)


def draw_seed(rng):
    """A 64-bit kernel seed drawn from a ``numpy.random.RandomState``."""
    hi, lo = rng.randint(0, 2**32, size=2, dtype=np.uint64)
    return int((hi << np.uint64(32)) | lo)


def fit_dtype(dtype):
    """The dtype(s) ``validate_data`` keeps at fit for an estimator's ``dtype`` parameter:
    scikit-learn's rule for None (float32 and float64 stay, anything else becomes
    float64), else the forced one."""
    return (np.float64, np.float32) if dtype is None else np.dtype(dtype)


def softplus(x):
    """log(1 + exp(x)), overflow-safe, in the dtype of x."""
    return np.logaddexp(x.dtype.type(0), x)
