"""Recurrent engine benchmarks: BPTT epochs against PyTorch CPU and the GEMM floor.

Run with ``python -m pytest bench/test_bench_rnn.py -s`` (not part of the test suite).
Workloads, contenders and the floor are those of ``bench/rnn_compare.py``: Fashion-MNIST
read row by row (LSTM / tanh RNN of 128 units, batch 64, one epoch) and the adding problem
(100 steps, 64 units, batch 32, per mini-batch), float32, Adam, at 1 and 2 threads (torch
and BLAS; fastrbm's engine is serial with BLAS at one thread).

Each benchmark times whole rounds in which every contender runs once, interleaved (so a
load change on a shared machine hits all of them alike); ``extra_info`` holds every
contender's minimum over the rounds, fastrbm's speed-up against PyTorch and its ratio to
the floor. A table of them is printed at the end. ``FASTRBM_BENCH_ROWS=n`` truncates
Fashion-MNIST to n rows (a smoke run: figures meaningless).
"""
import os
import time

import numpy as np
import pytest
import rnn_compare as rc

ROUNDS = int(os.environ.get("FASTRBM_BENCH_ROUNDS", "3"))
_RESULTS = {}  # (workload, cell, threads) -> {key: (seconds, loss)}


@pytest.fixture(scope="module")
def large():
    n = os.environ.get("FASTRBM_BENCH_ROWS")
    return rc.fashion_rows(int(n) if n else None)


@pytest.fixture(scope="module")
def small():
    return rc.adding_problem()


def _bench(benchmark, w, cell, threads):
    torch = rc.import_torch()
    keys = [k for k in rc.CONTENDERS if k != "torch" or torch is not None]
    scale = 1.0 / -(-len(w["X"]) // w["batch"]) if w["per_batch"] else 1.0
    best, losses = {}, {}
    if torch is not None:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
    try:
        with rc.blas_threads(threads):
            runs = {k: rc.CONTENDERS[k](w, cell) for k in keys}

            def one_round():
                for k in keys:
                    t0 = time.perf_counter()
                    losses[k] = runs[k]()
                    best[k] = min(best.get(k, np.inf), (time.perf_counter() - t0) * scale)

            benchmark.pedantic(one_round, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    finally:
        if torch is not None:
            torch.set_num_threads(previous)
    res = {k: (best[k], losses[k]) for k in keys}
    _RESULTS[(w["name"], cell, threads)] = (w, res)
    info = benchmark.extra_info
    info.update(workload=w["name"], cell=cell, threads=threads,
                unit="s per mini-batch" if w["per_batch"] else "s per epoch")
    for k, (s, loss) in res.items():
        info[f"{k}_s"] = s
        if loss is not None:
            info[f"{k}_loss"] = float(loss)
    info["ratio_to_floor"] = res["fastrbm"][0] / res["floor"][0]
    if "torch" in res:
        info["speedup_vs_torch"] = res["torch"][0] / res["fastrbm"][0]


@pytest.mark.benchmark(group="BPTT epoch, Fashion-MNIST rows (28 x 28), 128 units, batch 64")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cell", ["lstm", "tanh"])
def test_fashion_mnist_rows_epoch(benchmark, large, cell, threads):
    _bench(benchmark, large, cell, threads)


@pytest.mark.benchmark(group="BPTT mini-batch, adding problem (100 x 2), 64 units, batch 32")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cell", ["lstm", "tanh"])
def test_adding_problem_batch(benchmark, small, cell, threads):
    _bench(benchmark, small, cell, threads)


def teardown_module():
    if _RESULTS:
        print("\nRecurrent engine, minima over interleaved rounds of this run:")
        for (_, cell, threads), (w, res) in _RESULTS.items():
            rc.report(w, cell, threads, res)
