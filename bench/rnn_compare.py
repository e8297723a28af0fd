"""Recurrent engine against PyTorch CPU and the epoch's GEMM floor, timed in one run.

Workloads (float32, Adam lr 1e-3, the same mini-batches for everyone):

* large: Fashion-MNIST read row by row (28 steps of 28 pixels, 60000 rows; random data of
  that shape when the files are missing), 10 classes, batch 64, one epoch;
* small: the adding problem (100 steps, 2 features, batch 32, regression), seconds per
  mini-batch over 40 mini-batches.

Cells: LSTM 128 (large) / 64 (small) units, and the tanh RNN of the same sizes. Contenders:
fastrbm's kernels (``fastrbm._kernels.recurrent.run_epoch``, BLAS held at one thread),
``torch.nn.LSTM`` / ``torch.nn.RNN`` + ``nn.Linear`` with ``torch.optim.Adam``
(``torch.set_num_threads`` = the thread count), the floor: the epoch's GEMMs alone at
the same shapes through the BLAS fastrbm calls (NumPy's OpenBLAS), and the torch floor:
the same GEMMs through ``torch.mm`` (PyTorch's MKL), less the interpreter's per-call cost.
Rounds are interleaved (each contender once per round, after one warm-up each); the
minimum is reported.

Run: ``python bench/rnn_compare.py [--threads 1 2] [--rounds 3] [--rows N]
[--only large|small]``.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from fastrbm._kernels import recurrent as rk
from fastrbm._kernels.backprop import _N, _T, _gemm_ilp64
from fastrbm._utils import blas_threads

LR = 1e-3


def import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# --- workloads ------------------------------------------------------------------------------
def fashion_rows(n_rows=None):
    """(name, X (n, 28, 28) float32, y, n_classes, hidden, batch, per_batch)."""
    try:
        from fastrbm.datasets import load_fashion_mnist

        X, y = load_fashion_mnist(subset="train")
        source = "Fashion-MNIST"
    except (ImportError, FileNotFoundError):
        rng = np.random.default_rng(0)
        X, y = rng.random((60000, 784), dtype=np.float32), rng.integers(0, 10, 60000)
        source = "random 60000x28x28"
    if n_rows:
        X, y = X[:n_rows], y[:n_rows]
    X = np.ascontiguousarray(X, dtype=np.float32).reshape(len(X), 28, 28)
    return {"name": f"{source} rows, 28 steps x 28", "X": X, "Y": y.astype(np.int64), "n_out": 10,
                "hidden": 128, "batch": 64, "per_batch": False}


def adding_problem(n_batches=40, batch=32, steps=100, seed=0):
    """The adding problem (Hochreiter & Schmidhuber 1997): a value channel in [0, 1] and a
    marker channel with two ones; the target is the sum of the two marked values."""
    rng = np.random.default_rng(seed)
    n = n_batches * batch
    X = np.zeros((n, steps, 2), np.float32)
    X[:, :, 0] = rng.random((n, steps))
    for i in range(n):
        a, b = rng.choice(steps, 2, replace=False)
        X[i, [a, b], 1] = 1
    Y = (X[:, :, 0] * X[:, :, 1]).sum(axis=1, keepdims=True).astype(np.float32)
    return {"name": f"adding problem, {steps} steps x 2", "X": X, "Y": Y, "n_out": 1, "hidden": 64,
                "batch": batch, "per_batch": True}


# --- contenders: make(workload, cell) -> run() returning the epoch's loss ---------------------
def _init_theta(layout, n_params, hidden, rng):
    """PyTorch's default initialisation: uniform(+-1/sqrt(hidden)) for the recurrent
    layers, uniform(+-1/sqrt(fan_in)) for the output layer."""
    theta = np.empty(n_params, np.float32)
    v = rk.param_views(theta, layout)
    k = 1 / np.sqrt(hidden)
    for a in v.W + v.U + v.b:
        a[...] = rng.uniform(-k, k, a.shape)
    k = 1 / np.sqrt(v.W_out.shape[0])
    v.W_out[...] = rng.uniform(-k, k, v.W_out.shape)
    v.b_out[...] = rng.uniform(-k, k, v.b_out.shape)
    return theta


def make_fastrbm(w, cell):
    X, n_out, batch = w["X"], w["n_out"], w["batch"]
    n, steps, F = X.shape
    Y = w["Y"]
    output = "identity" if Y.ndim == 2 else "softmax"
    if Y.ndim == 1:
        Y = np.eye(n_out, dtype=np.float32)[Y]
    layout, n_params = rk.make_rnn_layout(F, [w["hidden"]], cell, n_out, output)
    theta = _init_theta(layout, n_params, w["hidden"], np.random.default_rng(0))
    net = rk.make_rnn_network(layout, theta, np.zeros_like(theta), np.zeros_like(theta),
                              batch, steps)
    settings = rk.make_settings(optimizer=rk.OPT_ADAM, learning_rate=LR)
    lengths = np.full(n, steps, np.int64)
    perm = np.random.default_rng(0).permutation(n).astype(np.int64)
    state = {"t": 0}

    def run():
        with blas_threads(1):
            loss, state["t"] = rk.run_epoch(X, Y, lengths, perm, batch, net, settings,
                                            state["t"])
        return loss
    return run


def make_torch(w, cell):
    torch = import_torch()
    torch.manual_seed(0)
    X, n_out, batch, H = w["X"], w["n_out"], w["batch"], w["hidden"]
    n, _steps, F = X.shape
    if cell == "lstm":
        rnn = torch.nn.LSTM(F, H, batch_first=True)
    else:
        rnn = torch.nn.RNN(F, H, nonlinearity=cell, batch_first=True)
    fc = torch.nn.Linear(H, n_out)
    opt = torch.optim.Adam(list(rnn.parameters()) + list(fc.parameters()), lr=LR)
    regression = w["Y"].ndim == 2
    loss_fn = torch.nn.MSELoss() if regression else torch.nn.CrossEntropyLoss()
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(w["Y"])
    perm = torch.from_numpy(np.random.default_rng(0).permutation(n))

    def run():
        total = 0.0
        for start in range(0, n, batch):
            idx = perm[start:start + batch]
            opt.zero_grad(set_to_none=True)
            out, _ = rnn(Xt[idx])
            loss = loss_fn(fc(out[:, -1]), Yt[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        return total / n
    return run


@njit(error_model="numpy")
def _floor_epoch(n_batches, Xs, W, U, Wo, Z, Hs, dh, gW, gU, gWo, zo, dho):
    """The products of ``n_batches`` mini-batches, as fastrbm's engine calls them
    (``backprop._gemm_ilp64``, the same operands' layouts and leading dimensions)."""
    T, nb, GH = Z.shape
    F, H, n_out = W.shape[0], U.shape[0], Wo.shape[1]
    for _ in range(n_batches):
        _gemm_ilp64(_N, _N, T * nb, GH, F, Xs, F, W, GH, Z, GH)
        for t in range(1, T):
            _gemm_ilp64(_N, _N, nb, GH, H, Hs[t - 1], H, U, GH, Z[0], GH)
        _gemm_ilp64(_N, _N, nb, n_out, H, Hs[T - 1], H, Wo, n_out, zo, n_out)
        _gemm_ilp64(_T, _N, H, n_out, nb, Hs[T - 1], H, zo, n_out, gWo, n_out)
        _gemm_ilp64(_N, _T, nb, H, n_out, zo, n_out, Wo, n_out, dho, H)
        for t in range(T - 2, -1, -1):
            _gemm_ilp64(_N, _T, nb, H, GH, Z[t + 1], GH, U, GH, dh, H)
        _gemm_ilp64(_T, _N, F, GH, T * nb, Xs, F, Z, GH, gW, GH)
        _gemm_ilp64(_T, _N, H, GH, (T - 1) * nb, Hs, H, Z[1:], GH, gU, GH)


def make_floor(w, cell):
    """The GEMMs of one epoch and nothing else, at fastrbm's shapes, operand layouts and
    BLAS route: per mini-batch the input projection of all steps, one recurrent product
    per step forward and one backward, dW, dU and the output layer's three (the short
    last mini-batch counted as a full one)."""
    X, n_out, batch, H = w["X"], w["n_out"], w["batch"], w["hidden"]
    n, T, F = X.shape
    GH = (4 if cell == "lstm" else 1) * H
    rng = np.random.default_rng(0)

    def rand(*shape):
        return rng.uniform(-0.1, 0.1, shape).astype(np.float32)
    arrays = (rand(T * batch, F), rand(F, GH), rand(H, GH), rand(H, n_out),
              rand(T, batch, GH), rand(T, batch, H), rand(batch, H), rand(F, GH),
              rand(H, GH), rand(H, n_out), rand(batch, n_out), rand(batch, H))
    n_batches = -(-n // batch)

    def run():
        with blas_threads(1):
            _floor_epoch(n_batches, *arrays)
    return run


def make_torch_floor(w, cell):
    """The same GEMMs through PyTorch's ``torch.mm`` (its MKL, which runs AVX-512 kernels
    where the CPU has them): the floor for any implementation whose products are no faster
    than the fastest BLAS on the machine. Python's per-call cost is measured on 1x1
    products and subtracted, so the figure is not inflated by the interpreter."""
    torch = import_torch()
    X, n_out, batch, H = w["X"], w["n_out"], w["batch"], w["hidden"]
    n, T, F = X.shape
    GH = (4 if cell == "lstm" else 1) * H
    g = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.rand(*shape, generator=g) * 0.2 - 0.1
    Xs, W, U, Wo = rand(T * batch, F), rand(F, GH), rand(H, GH), rand(H, n_out)
    Z, Hs, dh, gW, gU = rand(T * batch, GH), rand(T, batch, H), rand(batch, H), rand(F, GH), rand(H, GH)
    gWo, zo, dho = rand(H, n_out), rand(batch, n_out), rand(batch, H)
    Zs = Z.view(T, batch, GH)
    Hflat = Hs.view(T * batch, H)
    n_batches = -(-n // batch)
    one, out1 = torch.ones(1, 1), torch.empty(1, 1)
    calls_per_batch = 2 * (T - 1) + 6

    def products():
        mm = torch.mm
        for _ in range(n_batches):
            mm(Xs, W, out=Z)
            for t in range(1, T):
                mm(Hs[t - 1], U, out=Zs[0])
            mm(Hs[T - 1], Wo, out=zo)
            mm(Hs[T - 1].t(), zo, out=gWo)
            mm(zo, Wo.t(), out=dho)
            for t in range(T - 2, -1, -1):
                mm(Zs[t + 1], U.t(), out=dh)
            mm(Xs.t(), Z, out=gW)
            mm(Hflat[: (T - 1) * batch].t(), Z[batch:], out=gU)

    def overhead():
        mm = torch.mm
        for _ in range(n_batches * calls_per_batch):
            mm(one, one, out=out1)

    def run():
        t0 = time.perf_counter()
        overhead()
        t1 = time.perf_counter()
        products()
        return Seconds((time.perf_counter() - t1) - (t1 - t0))
    return run


class Seconds(float):
    """A contender's own timing (returned instead of a loss) when the wall clock around
    its call would include work that is not the workload's."""


CONTENDERS = {"floor": make_floor, "torch": make_torch, "torch-floor": make_torch_floor,
              "fastrbm": make_fastrbm}


def measure(w, cell, threads, rounds, log=print):
    """Minimum seconds (per mini-batch for per_batch workloads) of every contender over
    interleaved rounds, torch and BLAS at `threads` threads; returns {key: (s, loss)}."""
    torch = import_torch()
    keys = [k for k in CONTENDERS if not k.startswith("torch") or torch is not None]
    scale = 1.0
    if w["per_batch"]:
        scale = 1.0 / -(-len(w["X"]) // w["batch"])
    if torch is not None:
        torch.set_num_threads(threads)
    runs, best, losses = {}, {}, {}
    with blas_threads(threads):
        for k in keys:
            runs[k] = CONTENDERS[k](w, cell)
            losses[k] = runs[k]()  # warm-up (and JIT)
        for _ in range(rounds):
            for k in keys:
                t0 = time.perf_counter()
                losses[k] = runs[k]()
                seconds = time.perf_counter() - t0
                if isinstance(losses[k], Seconds):
                    seconds, losses[k] = float(losses[k]), None
                best[k] = min(best.get(k, np.inf), seconds * scale)
    return {k: (best[k], losses[k]) for k in keys}


def report(w, cell, threads, res, log=print):
    unit = "ms/batch" if w["per_batch"] else f"s/epoch of {len(w['X'])} rows"
    mult = 1e3 if w["per_batch"] else 1.0
    ours = res["fastrbm"][0]
    log(f"{w['name']}, {cell} {w['hidden']}, batch {w['batch']}, {threads} thread(s):")
    for k, (s, loss) in res.items():
        extra = ""
        if k == "torch":
            extra = f"  fastrbm {s / ours:.2f}x faster"
        if k == "fastrbm":
            extra = f"  {s / res['floor'][0]:.2f}x its GEMM floor"
        if k == "torch-floor":
            extra = (f"  the same GEMMs on PyTorch's MKL; 1.5x PyTorch would need "
                     f"{res['torch'][0] / 1.5 / s:.2f}x of it, 2x {res['torch'][0] / 2 / s:.2f}x")
        loss_s = "" if loss is None else f"  loss {loss:.4f}"
        log(f"  {k:<11} {s * mult:9.3f} {unit}{loss_s}{extra}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rows", type=int, default=None, help="truncate Fashion-MNIST")
    p.add_argument("--only", choices=["large", "small"], default=None)
    p.add_argument("--cells", nargs="+", default=["lstm", "tanh"])
    args = p.parse_args(argv)
    workloads = []
    if args.only != "small":
        workloads.append(fashion_rows(args.rows))
    if args.only != "large":
        workloads.append(adding_problem())
    for w in workloads:
        for cell in args.cells:
            for threads in args.threads:
                report(w, cell, threads, measure(w, cell, threads, args.rounds))
                sys.stdout.flush()


if __name__ == "__main__":
    main()
