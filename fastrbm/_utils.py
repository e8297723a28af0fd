"""Small helpers shared by the estimators: thread counts, seeds, softplus."""
import os

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


def draw_seed(rng):
    """A 64-bit kernel seed drawn from a ``numpy.random.RandomState``."""
    hi, lo = rng.randint(0, 2**32, size=2, dtype=np.uint64)
    return int((hi << np.uint64(32)) | lo)


def softplus(x):
    """log(1 + exp(x)), overflow-safe, in the dtype of x."""
    return np.logaddexp(x.dtype.type(0), x)
