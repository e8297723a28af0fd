"""AIS speed: a 784x500 float32 RBM, 100 chains x 1000 inverse temperatures, against the
GEMM floor of the same sampling steps (two products of the chains with W per temperature)
timed in the same run. Bernoulli visible units sweep v -> h -> v through the Gibbs engine;
Gaussian visible units anneal the hidden units' marginal by sequential sweeps over the
hidden units (no GEMM per temperature), and their ratio is against the same floor: the
GEMMs alone of the sweeps through v they replace.

    python -m pytest bench/test_bench_ais.py     # pytest-benchmark
    python bench/test_bench_ais.py               # plain: prints seconds and the ratio
"""
import time
from types import SimpleNamespace

import numpy as np
from threadpoolctl import threadpool_limits

N_VISIBLE, N_HIDDEN, N_CHAINS, N_BETAS, THREADS = 784, 500, 100, 1000, 2


def _model(gaussian=False):
    rng = np.random.default_rng(0)
    model = SimpleNamespace(
        components_=(rng.standard_normal((N_HIDDEN, N_VISIBLE)) * 0.05).astype(np.float32),
        intercept_visible_=(rng.standard_normal(N_VISIBLE) * 0.5).astype(np.float32),
        intercept_hidden_=(rng.standard_normal(N_HIDDEN) * 0.5).astype(np.float32),
    )
    if gaussian:
        model.sigma_ = np.exp(rng.uniform(-0.5, 0.5, N_VISIBLE)).astype(np.float32)
    return model


def run_ais(model):
    from fastrbm import log_partition

    return log_partition(model, "ais", n_chains=N_CHAINS, n_betas=N_BETAS, random_state=0)


def run_floor(model):
    """The GEMMs of AIS alone: per temperature, (chains x 784) @ (784 x 500) and
    (chains x 500) @ (500 x 784), BLAS-threaded, into preallocated buffers."""
    W = model.components_
    V = np.ones((N_CHAINS, N_VISIBLE), np.float32)
    H = np.empty((N_CHAINS, N_HIDDEN), np.float32)
    for _ in range(N_BETAS - 1):
        np.matmul(V, W.T, out=H)
        np.matmul(H, W, out=V)
        V *= 1e-3  # keep values bounded


def best(fn, model, rounds=3):
    fn(model)  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(model)
        times.append(time.perf_counter() - start)
    return min(times)


def _bench(benchmark, model):
    with threadpool_limits(THREADS):
        floor = best(run_floor, model)
        benchmark.pedantic(run_ais, args=(model,), rounds=3, warmup_rounds=1)
    benchmark.extra_info["floor_seconds"] = floor
    if benchmark.stats is not None:
        benchmark.extra_info["ratio_to_floor"] = benchmark.stats.stats.min / floor


def test_ais_784x500(benchmark):
    _bench(benchmark, _model())


def test_ais_gaussian_784x500(benchmark):
    _bench(benchmark, _model(gaussian=True))


if __name__ == "__main__":
    for name, gaussian in (("Bernoulli", False), ("Gaussian", True)):
        model = _model(gaussian)
        with threadpool_limits(THREADS):
            floor = best(run_floor, model)
            ais = best(run_ais, model)
        print(f"AIS {name} {N_VISIBLE}x{N_HIDDEN} float32, {N_CHAINS} chains x {N_BETAS} "
              f"betas: {ais:.3f} s; GEMM floor {floor:.3f} s; ratio {ais / floor:.2f}")
