"""Compile the Numba engine ahead of the first fit and leave it in Numba's on-disk cache.

The Cython Gibbs engine is compiled at install time like any extension; the Numba backprop
engine compiles on its first call per dtype (about 12 s for the serial build, as much again
for the parallel one; the recurrent engine about 20 s), which a new user would otherwise meet inside their first ``fit``.
:func:`compile_engines` makes exactly the calls the estimators make (the same constructors,
so the same argument types and the same compiled specialisations) on a tiny network; Numba
caches the results next to the sources (``cache=True``) and every later process loads them
in well under a second.

Run by ``setup.py`` after an editable or in-place build (``FASTRBM_PRECOMPILE=0`` skips it)
and by ``fastrbm compile``. A cached specialisation is reused while the source file, the
Numba version and the CPU stay the same; otherwise it compiles again on first use.
"""
import sys
import time

import numpy as np

__all__ = ["compile_engines", "main"]

DTYPES = ("float32", "float64")


def _backprop_calls(dtype, parallel):
    """The kernel calls of a DBN net's fit, validation and predict, with the trainer's
    argument types (``fastrbm._network``)."""
    from . import backprop as bp

    rng = np.random.RandomState(0)
    layout, n_params, n_state = bp.make_layout([4, 3, 2], "logistic")
    theta = (0.1 * rng.standard_normal(n_params)).astype(dtype)
    bn_state = np.zeros(n_state, dtype)
    X = rng.random_sample((8, 4)).astype(dtype)
    Y = np.eye(2, dtype=dtype)[np.arange(8) % 2]
    net = bp.make_network(layout, theta, bn_state, None, np.zeros_like(theta),
                          np.zeros_like(theta), 4)
    settings = bp.make_settings(seed=0, optimizer=bp.OPT_ADAM, learning_rate=0.001)
    bp.loss_grad(X[:4], Y[:4], net, settings, 0)
    run_epoch = bp.run_epoch_parallel if parallel else bp.run_epoch
    run_epoch(X, Y, rng.permutation(8), 4, net, settings, 0)
    out = np.empty((8, 2), dtype)
    work = np.empty(bp.workspace_size(layout, None, 8), dtype)
    bp.predict(X, theta, layout, bn_state, 1e-5, 8, work, out)


def compile_engines(dtypes=DTYPES, parallel=True, verbose=False):
    """Compile (or load from Numba's cache) every engine kernel the estimators call: the
    dense engine (DBN nets) and the recurrent one (RNN nets).

    Parameters
    ----------
    dtypes : sequence of str
        Precisions to compile.
    parallel : bool
        Also the parallel build (used for layers large enough to split across threads).
    verbose : bool
        Print one line per build with its time.

    Returns
    -------
    seconds : float
        Total wall time.
    """
    from .._utils import _numba_threads_are_threadsafe
    from . import recurrent

    start = time.perf_counter()
    _numba_threads_are_threadsafe()  # its probe kernel
    for dtype in dtypes:
        for build in (False, True) if parallel else (False,):
            t0 = time.perf_counter()
            _backprop_calls(dtype, build)
            if verbose:
                print(f"fastrbm: backprop engine, {dtype}, "
                      f"{'parallel' if build else 'serial'} build: "
                      f"{time.perf_counter() - t0:.1f}s", flush=True)
        t0 = time.perf_counter()
        recurrent.precompile(dtype)
        if verbose:
            print(f"fastrbm: recurrent engine, {dtype}: {time.perf_counter() - t0:.1f}s",
                  flush=True)
    return time.perf_counter() - start


def main():
    seconds = compile_engines(verbose=True)
    print(f"fastrbm: engines compiled and cached in {seconds:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
