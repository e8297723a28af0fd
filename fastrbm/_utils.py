"""Small helpers shared by the estimators: thread counts, seeds, softplus."""
import os
import threading
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


class _BlasThreads:
    """BLAS's thread count, shared by every Python thread of the process.

    threadpoolctl's limits are process-wide: a fit that restored the original count when
    it finished would switch the BLAS of a fit still running in another Python thread to
    more threads mid-way, and change its bits. So open blocks are counted: BLAS runs at the
    smallest count any open block asked for, and the original settings come back when the
    last block closes. The controller is created once (a fresh threadpool_limits scans
    every loaded library, about 2 ms, which showed on small fits), after scipy's BLAS is
    loaded; NumPy's bundled OpenBLAS (which the backprop engine also calls) is loaded with
    NumPy.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._open = []         # the counts asked for by the blocks now open
        self._controller = None
        self._original = None   # the limiter whose restore brings back the original counts

    def _apply(self):
        limiter = self._controller.limit(limits=min(self._open), user_api="blas")
        if self._original is None:
            self._original = limiter

    @contextmanager
    def __call__(self, n_threads):
        with self._lock:
            if self._controller is None:
                from threadpoolctl import ThreadpoolController

                import scipy.linalg.cython_blas  # noqa: F401  (the engines' BLAS, loaded first)

                self._controller = ThreadpoolController()
            self._open.append(int(n_threads))
            self._apply()
        try:
            yield
        finally:
            with self._lock:
                self._open.remove(int(n_threads))
                if self._open:
                    self._apply()
                else:
                    self._original.restore_original_limits()
                    self._original = None


blas_threads = _BlasThreads()  # ``with blas_threads(n):`` BLAS on at most n threads


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
