"""Gaussian-Bernoulli RBM speed: one CD-1 epoch on standardised Fashion-MNIST (60000x784,
each pixel scaled to zero mean and unit variance), 500 hidden units, batch 100, float32,
sigma fixed at 1, learning rate 0.01; fastrbm's ``GaussianBernoulliRBM`` against a PyTorch
CD-1 loop of the same update and the GEMM floor, timed in the same run.

    python -m pytest bench/test_bench_gaussian.py          # pytest-benchmark
    python bench/test_bench_gaussian.py [--rows N] [--rounds R]   # a Markdown table

Every figure is the minimum over the rounds after one untimed warm-up, BLAS, OpenMP and torch
pinned to ``_peers.THREADS`` threads. Quality beside speed: the mean squared error of the
mean-field reconstruction (sigmoid(v W^T + c) W + b) of the first 2000 rows. The target is
fastrbm at least 1.35x faster than PyTorch; time it on an otherwise idle machine.
"""
import argparse
import sys
import time

import numpy as np
import pytest
from scipy.special import expit

import _peers

N_HIDDEN, BATCH_SIZE, LEARNING_RATE = 500, 100, 0.01
PEERS = {
    "floor": "GEMM floor (fastrbm, scipy BLAS)",
    "torch": "PyTorch Gaussian-Bernoulli CD-1",
    "fastrbm": "fastrbm GaussianBernoulliRBM CD-1",
}


def gaussian_data(n_rows=None):
    """Fashion-MNIST train, standardised per pixel (pixels constant in the rows used keep
    scale 1), float32 C-contiguous. Raises FileNotFoundError when it is not installed."""
    from fastrbm.datasets import load_fashion_mnist

    X, _ = load_fashion_mnist(subset="train", dtype=np.float32)
    if n_rows is not None:
        X = X[:n_rows]
    std = X.std(axis=0)
    std[std == 0] = 1
    return np.ascontiguousarray((X - X.mean(axis=0)) / std, dtype=np.float32)


def make_run(key, X):
    """The timed callable of peer ``key``: runs one epoch, returns (W, b, c) or None."""
    if key == "floor":
        from fastrbm._kernels._sampling import gemm_floor

        W = (np.random.default_rng(0).standard_normal((N_HIDDEN, X.shape[1])) * 0.01).astype(
            np.float32)
        return lambda: gemm_floor(X, W, BATCH_SIZE)
    if key == "torch":
        return _torch_gaussian_cd_run(X)
    if key == "fastrbm":
        from fastrbm import GaussianBernoulliRBM

        def run():
            m = GaussianBernoulliRBM(n_components=N_HIDDEN, learning_rate=LEARNING_RATE,
                                     batch_size=BATCH_SIZE, n_iter=1, random_state=0).fit(X)
            return m.components_, m.intercept_visible_, m.intercept_hidden_

        return run
    raise KeyError(key)


def _torch_gaussian_cd_run(X_np, seed=0):
    """CD-1 for Gaussian visible units with sigma = 1 (Hinton 2010, section 13.2), the
    update fastrbm makes: positive statistics from the hidden probabilities of the data; the
    chain samples h, then v = h W + b + N(0, 1), and ends at the hidden probabilities;
    gradients averaged over the batch; W ~ N(0, 0.01), biases zero."""
    torch = _peers.import_torch()
    X = torch.from_numpy(X_np)
    n, n_visible = X.shape
    B, lr = BATCH_SIZE, LEARNING_RATE

    def run():
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            W = torch.randn(N_HIDDEN, n_visible, generator=g).mul_(0.01)
            b = torch.zeros(n_visible)
            c = torch.zeros(N_HIDDEN)
            noise = torch.empty(B, n_visible)
            for start in range(0, n, B):
                v0 = X[start:start + B]
                m = v0.shape[0]
                ph0 = torch.addmm(c, v0, W.t()).sigmoid_()
                h0 = torch.bernoulli(ph0, generator=g)
                v1 = torch.addmm(b, h0, W).add_(noise[:m].normal_(generator=g))
                ph1 = torch.addmm(c, v1, W.t()).sigmoid_()
                W.addmm_(ph0.t(), v0, alpha=lr / m)
                W.addmm_(ph1.t(), v1, alpha=-lr / m)
                b.add_(v0.mean(0) - v1.mean(0), alpha=lr)
                c.add_(ph0.mean(0) - ph1.mean(0), alpha=lr)
        return W.numpy(), b.numpy(), c.numpy()

    return run


def missing_requirement(key):
    if key == "torch" and _peers.import_torch() is None:
        return "PyTorch is not installed"
    return None


def reconstruction_error(params, X):
    W, b, c = (np.asarray(p, dtype=np.float64) for p in params)
    V = np.asarray(X[:_peers.N_EVAL_ROWS], dtype=np.float64)
    return float(np.mean((V - (expit(V @ W.T + c) @ W + b)) ** 2))


# --- pytest-benchmark ---------------------------------------------------------------------

_TIMES = {}


@pytest.fixture(scope="module")
def data():
    try:
        return gaussian_data()
    except FileNotFoundError:
        pytest.skip(_peers.FASHION_MNIST_HELP)


@pytest.mark.benchmark(group="Gaussian CD-1 epoch, standardised Fashion-MNIST, 500 hidden")
@pytest.mark.parametrize("key", list(PEERS))  # fastrbm last: its ratios need the others
def test_gaussian_epoch(benchmark, key, data):
    why = missing_requirement(key)
    if why:
        pytest.skip(why)
    with _peers.pinned_threads(_peers.THREADS):
        params = benchmark.pedantic(make_run(key, data), rounds=3, warmup_rounds=1,
                                    iterations=1)
    info = benchmark.extra_info
    info["peer"] = PEERS[key]
    if params is not None:
        info["recon_error"] = reconstruction_error(params, data)
    if benchmark.stats is None:
        return
    _TIMES[key] = benchmark.stats.stats.min
    if key == "fastrbm":
        for other in ("torch", "floor"):
            if other in _TIMES:
                info[f"{other}_over_fastrbm"] = _TIMES[other] / _TIMES[key]


# --- script -------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None,
                        help="use the first N rows (a smoke run; default all 60000)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per peer")
    args = parser.parse_args(argv)
    X = gaussian_data(args.rows)
    runs, times, results = {}, {}, {}
    for key in PEERS:
        why = missing_requirement(key)
        if why:
            print(f"- {PEERS[key]}: not run ({why}).")
        else:
            runs[key] = make_run(key, X)
    with _peers.pinned_threads(_peers.THREADS):
        for key, run in runs.items():  # warm-up
            run()
        for r in range(args.rounds):  # interleaved rounds
            for key, run in runs.items():
                start = time.perf_counter()
                results[key] = run()
                times.setdefault(key, []).append(time.perf_counter() - start)
            print(f"  round {r + 1}/{args.rounds}: "
                  + ", ".join(f"{k} {t[-1]:.3f} s" for k, t in times.items()),
                  file=sys.stderr, flush=True)
    best = {key: min(t) for key, t in times.items()}
    print(f"**Gaussian-Bernoulli CD-1, standardised Fashion-MNIST {X.shape[0]}x{X.shape[1]}, "
          f"{N_HIDDEN} hidden, batch {BATCH_SIZE}, 1 epoch, {_peers.THREADS} threads**\n")
    print("| peer | seconds | peer / fastrbm | time / GEMM floor | reconstruction error |")
    print("|---|---:|---:|---:|---:|")
    for key, seconds in best.items():
        ratio = f"{seconds / best['fastrbm']:.2f}" if "fastrbm" in best else "—"
        floor = f"{seconds / best['floor']:.2f}" if "floor" in best else "—"
        err = "—" if results[key] is None else f"{reconstruction_error(results[key], X):.4f}"
        print(f"| {PEERS[key]} | {seconds:.3f} | {ratio} | {floor} | {err} |")


if __name__ == "__main__":
    main()
