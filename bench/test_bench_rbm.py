"""RBM training benchmarks: fastrbm against scikit-learn, PyTorch, NumPy and the GEMM floor.

Workloads: one CD epoch on binarised Fashion-MNIST in float32 and in float64 (every peer fed
data of that dtype), and 10 epochs on digits in float32.

Run with ``python -m pytest bench/`` (not part of the test suite). Each benchmark records in
``extra_info`` its ratio to the GEMM floor measured in the same run, the reconstruction error
of the model it fitted, and (fastrbm) how many times faster it is than each peer of the same
algorithm already timed; the closing summary prints all ratios.
"""

import pytest

import _peers

LARGE_ROUNDS = 3  # ~1-3 s each
SMALL_ROUNDS = 5


def _benchmark(benchmark, key, workload, rounds, floor_seconds, results):
    why = _peers.missing_requirement(key)
    if why:
        pytest.skip(why)
    peer = _peers.PEERS[key]
    floor = floor_seconds(workload)
    run = _peers.make_run(key, workload)

    params = benchmark.pedantic(run, rounds=rounds, warmup_rounds=1, iterations=1)

    info = benchmark.extra_info
    info["peer"] = peer.label
    info["workload"] = workload.name
    info["floor_seconds"] = floor
    if params is not None:
        info["recon_error"] = _peers.reconstruction_error(params, workload.eval_rows)
    if benchmark.stats is None:  # --benchmark-disable: nothing was timed
        return
    seconds = benchmark.stats.stats.min
    results[(workload.name, key)] = seconds
    info["ratio_to_floor"] = seconds / floor
    if key.startswith("fastrbm"):
        for (name, other), t in results.items():
            if name == workload.name and _peers.PEERS[other].variant == peer.variant:
                if other != key:
                    info[f"speedup_vs_{other}"] = t / seconds


@pytest.mark.benchmark(
    group="CD epoch, Fashion-MNIST 60000x784, 500 hidden, batch 100, float32")
@pytest.mark.parametrize("key", _peers.LARGE_PEERS)
def test_fashion_mnist_epoch(benchmark, key, large, floor_seconds, results):
    _benchmark(benchmark, key, large, LARGE_ROUNDS, floor_seconds, results)


@pytest.mark.benchmark(
    group="CD epoch, Fashion-MNIST 60000x784, 500 hidden, batch 100, float64")
@pytest.mark.parametrize("key", _peers.LARGE_PEERS)
def test_fashion_mnist_epoch_float64(benchmark, key, large64, floor_seconds, results):
    _benchmark(benchmark, key, large64, LARGE_ROUNDS, floor_seconds, results)


@pytest.mark.benchmark(group="digits 1797x64, 256 hidden, batch 10, 10 epochs, float32")
@pytest.mark.parametrize("key", _peers.SMALL_PEERS)
def test_digits_10_epochs(benchmark, key, small, floor_seconds, results):
    _benchmark(benchmark, key, small, SMALL_ROUNDS, floor_seconds, results)
