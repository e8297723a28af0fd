"""A/B timing of the backprop engine's serial epoch on the small net (digits x10,
64-100-100-10 logistic, batch 32, SGD Nesterov, float32): this tree's ``run_epoch`` against
another version of ``fastrbm/_kernels/backprop.py`` loaded beside it in the same process,
alternating, best of 7 each. A diagnostic for kernel changes, not a peer benchmark::

    git show REV:fastrbm/_kernels/backprop.py > /tmp/backprop_base.py  # REV: the other version
    python bench/backprop_small_ab.py /tmp/backprop_base.py
"""
import importlib.util
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

import fastrbm._kernels.backprop as current
from fastrbm.datasets import load_digits


def _load(path):
    # inside fastrbm._kernels, so the baseline's relative imports (its _sampling) resolve;
    # registered, because Numba's cache finds a function's module by name
    name = "fastrbm._kernels.backprop_baseline"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def best_epoch_seconds(bp, X, Y, perm, rounds=7):
    layout, n_params, _ = bp.make_layout([64, 100, 100, 10], "logistic", "softmax")
    theta = np.zeros(n_params, np.float32)
    rng = np.random.default_rng(1)
    for W in bp.param_views(theta, layout)[0]:
        W[:] = rng.uniform(-0.2, 0.2, W.shape)
    dropout = np.zeros(3)
    velocity = np.zeros_like(theta)
    if hasattr(bp, "make_network"):  # a Network and named Settings
        net = bp.make_network(layout, theta, np.zeros(0, np.float32), dropout, velocity, None, 32)
        settings = bp.make_settings(seed=1, optimizer=bp.OPT_SGD, learning_rate=0.1)
        args = (X, Y, perm, 32, net, settings, 0)
    else:  # versions before them: loose positional arguments
        work = np.empty(bp.workspace_size(layout, dropout, 32), np.float32)
        args = (X, Y, perm, 32, theta, layout, np.zeros(0, np.float32), dropout, 0.0, 1e-5, 0.1,
                1, bp.OPT_SGD, 0.1, 0.9, True, 0.9, 0.999, 1e-8, 0.0, 0, velocity, theta[:0],
                np.empty_like(theta), work, np.empty(3))
    bp.run_epoch(*args)  # compile or load from cache
    best = np.inf
    for _ in range(rounds):
        start = time.perf_counter()
        bp.run_epoch(*args)
        best = min(best, time.perf_counter() - start)
    return best


def main(baseline_path):
    X, y = load_digits()
    X = np.ascontiguousarray(np.tile(X, (10, 1)), dtype=np.float32)
    Y = np.eye(10, dtype=np.float32)[np.tile(y, 10)]
    perm = np.random.default_rng(0).permutation(len(X))
    baseline = _load(baseline_path)
    with threadpool_limits(1, user_api="blas"):
        for _ in range(2):
            b = best_epoch_seconds(baseline, X, Y, perm)
            c = best_epoch_seconds(current, X, Y, perm)
            print(f"baseline {b * 1e3:.1f} ms   this tree {c * 1e3:.1f} ms   ratio {c / b:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
