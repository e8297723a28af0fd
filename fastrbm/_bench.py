"""Benchmark workloads, peers and the side-by-side comparison table (``fastrbm bench``).

Used by the ``fastrbm bench`` command, by ``bench/compare.py`` and by the pytest-benchmark
suite in ``bench/`` (through ``bench/_peers.py``), so the installed command needs nothing
from the repository.

A peer is built by ``make_run(peer, workload)``, which does the untimed setup and returns a
zero-argument ``run`` callable: the timed work. ``run()`` returns the fitted parameters
``(W, b, c)`` (W of shape (n_hidden, n_visible), visible bias b, hidden bias c) so the
quality of every peer is measured the same way, or None for the GEMM floors.

All loops implement the same update as ``fastrbm.BernoulliRBM`` (and scikit-learn's): positive
statistics from the hidden probabilities given the data; the negative chain samples the hidden
units, then the visible units, and ends at the hidden probabilities; gradients averaged over
the batch; weights initialised N(0, 0.01), biases zero. CD-1 starts each chain at the batch's
hidden sample, PCD-1 keeps ``batch_size`` chains (started at zero, as scikit-learn).

Every workload exists in float32 and float64 (``dtype=``): all peers are fed data of that dtype
and compute in it (fastrbm is also passed ``dtype`` explicitly), so a float64 table compares
double precision with double precision.

Importing this module needs neither the compiled kernels nor PyTorch: absent ones are
skipped with a note, so the peers can be timed before fastrbm is built.
"""

import contextlib
import platform
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit
from threadpoolctl import threadpool_limits

from . import datasets

THREADS = 2
N_EVAL_ROWS = 2000
FASHION_MNIST_HELP = (
    "Fashion-MNIST not found: apt-get install dataset-fashion-mnist "
    "(or set FASTRBM_FASHION_MNIST to a folder holding its IDX files)"
)


# --- optional imports -----------------------------------------------------------------------


def import_torch():
    """The torch module, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def import_fastrbm_rbm():
    """``fastrbm.BernoulliRBM``, or None when fastrbm is not importable (not built yet)."""
    try:
        from .rbm import BernoulliRBM
    except ImportError:
        return None
    return BernoulliRBM


# ================================================================================================
# THE FASTRBM GEMM FLOOR PLUGS IN HERE (the one place): ``gemm_floor(X, W, batch_size)`` runs the
# five CD-shaped GEMMs per mini-batch over one epoch through scipy's BLAS, updating W by a
# negligible amount. When it is not importable, the NumPy floor below is the floor.
try:
    from ._kernels._sampling import gemm_floor as _fastrbm_gemm_floor
except ImportError:
    _fastrbm_gemm_floor = None
# ================================================================================================


@contextlib.contextmanager
def pinned_threads(n_threads=THREADS, with_torch=True):
    """Pin BLAS, OpenMP and (with ``with_torch``, when installed) torch to ``n_threads``
    (restored on exit)."""
    torch = import_torch() if with_torch else None
    import_fastrbm_rbm()  # load fastrbm's OpenMP runtime before threadpoolctl looks
    previous = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=n_threads):
        if torch is not None:
            torch.set_num_threads(n_threads)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(previous)


# --- workloads ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """Data and hyper-parameters of one benchmark."""

    name: str
    X: np.ndarray = field(repr=False)  # float32 or float64, C-contiguous
    n_hidden: int
    batch_size: int
    n_iter: int
    learning_rate: float = 0.1

    @property
    def dtype(self):
        """The precision every peer trains in: X's dtype."""
        return self.X.dtype

    @property
    def eval_rows(self):
        """The fixed subset on which the reconstruction error is measured."""
        return self.X[:N_EVAL_ROWS]


DTYPES = ("float32", "float64")


def _as_dtype(X, dtype):
    dtype = np.dtype(dtype)
    if dtype.name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype.name!r}")
    return np.ascontiguousarray(X, dtype=dtype)


def large_workload(n_rows=None, dtype="float32"):
    """One CD-1 epoch on binarised Fashion-MNIST train (60000x784), 500 hidden, batch 100,
    every peer fed ``dtype`` data (float32 or float64).

    Raises FileNotFoundError (with the apt-get hint) when Fashion-MNIST is not installed.
    """
    X, _ = datasets.load_fashion_mnist(subset="train", binarize=True)
    if n_rows is not None:
        X = X[:n_rows]
    X = _as_dtype(X, dtype)
    name = (f"Fashion-MNIST {X.shape[0]}x{X.shape[1]} binarised, 500 hidden, batch 100, "
            f"1 epoch, {X.dtype.name}")
    return Workload(name, X, n_hidden=500, batch_size=100, n_iter=1)


def small_workload(dtype="float32"):
    """Digits (1797x64, scaled to [0, 1]), 256 hidden, batch 10, 10 epochs, in ``dtype``."""
    X, _ = datasets.load_digits()
    X = _as_dtype(X, dtype)
    name = f"digits 1797x64, 256 hidden, batch 10, 10 epochs, {X.dtype.name}"
    return Workload(name, X, n_hidden=256, batch_size=10, n_iter=10)


# --- peers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """One contender: ``variant`` is "cd" or "pcd" (the fastrbm run it is compared with) or
    "floor"; ``needs`` names the optional module it requires."""

    key: str
    label: str
    variant: str
    needs: str = ""


PEERS = {
    p.key: p
    for p in [
        Peer("floor", "GEMM floor (fastrbm, scipy BLAS)", "floor", "fastrbm-floor"),
        Peer("floor-numpy", "GEMM floor (NumPy matmul)", "floor"),
        Peer("sklearn", "scikit-learn BernoulliRBM (PCD-1)", "pcd"),
        Peer("torch-cd", "PyTorch CD-1", "cd", "torch"),
        Peer("torch-pcd", "PyTorch PCD-1", "pcd", "torch"),
        Peer("numpy-cd", "NumPy CD-1", "cd"),
        Peer("fastrbm-cd", "fastrbm CD-1", "cd", "fastrbm"),
        Peer("fastrbm-pcd", "fastrbm PCD-1", "pcd", "fastrbm"),
    ]
}
LARGE_PEERS = [
    "floor", "floor-numpy", "sklearn", "torch-cd", "torch-pcd", "numpy-cd",
    "fastrbm-cd", "fastrbm-pcd",
]
SMALL_PEERS = ["floor", "floor-numpy", "sklearn", "torch-cd", "torch-pcd", "fastrbm-cd",
               "fastrbm-pcd"]


def missing_requirement(key):
    """Why peer ``key`` cannot run here, or None when it can."""
    needs = PEERS[key].needs
    if needs == "torch" and import_torch() is None:
        return "PyTorch is not installed"
    if needs == "fastrbm" and import_fastrbm_rbm() is None:
        return "fastrbm.BernoulliRBM is not importable (not built yet?)"
    if needs == "fastrbm-floor" and _fastrbm_gemm_floor is None:
        return "fastrbm._kernels._sampling.gemm_floor is not importable"
    return None


def make_run(key, workload, n_jobs=None):
    """The timed callable of peer ``key`` on ``workload`` (see the module docstring);
    ``n_jobs`` goes to fastrbm's estimators (the other peers follow the pinned threads)."""
    w = workload
    if key == "floor":
        return _fastrbm_floor_run(w)
    if key == "floor-numpy":
        return _numpy_floor_run(w)
    if key == "sklearn":
        from sklearn.neural_network import BernoulliRBM

        return _estimator_run(
            w, lambda: BernoulliRBM(n_components=w.n_hidden, learning_rate=w.learning_rate,
                                    batch_size=w.batch_size, n_iter=w.n_iter, random_state=0)
        )
    if key in ("fastrbm-cd", "fastrbm-pcd"):
        rbm_class = import_fastrbm_rbm()
        return _estimator_run(
            w, lambda: rbm_class(n_components=w.n_hidden, learning_rate=w.learning_rate,
                                 batch_size=w.batch_size, n_iter=w.n_iter, random_state=0,
                                 persistent=key == "fastrbm-pcd", k=1, n_jobs=n_jobs,
                                 dtype=w.dtype.name)  # the workload's precision, explicitly
        )
    if key in ("torch-cd", "torch-pcd"):
        return _torch_run(w, persistent=key == "torch-pcd")
    if key == "numpy-cd":
        return _numpy_cd_run(w)
    raise KeyError(key)


def _estimator_run(w, make_estimator):
    def run():
        est = make_estimator().fit(w.X)
        return est.components_, est.intercept_visible_, est.intercept_hidden_

    return run


def _torch_run(w, persistent, seed=0):
    torch = import_torch()
    X = torch.from_numpy(w.X)
    n, n_visible = X.shape
    B, lr = w.batch_size, w.learning_rate

    dt = X.dtype

    def run():
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            W = torch.randn(w.n_hidden, n_visible, generator=g, dtype=dt).mul_(0.01)
            b = torch.zeros(n_visible, dtype=dt)
            c = torch.zeros(w.n_hidden, dtype=dt)
            chain = torch.zeros(B, w.n_hidden, dtype=dt)
            for _ in range(w.n_iter):
                for start in range(0, n, B):
                    v0 = X[start:start + B]
                    ph0 = torch.addmm(c, v0, W.t()).sigmoid_()
                    h = chain if persistent else torch.bernoulli(ph0, generator=g)
                    v1 = torch.bernoulli(torch.addmm(b, h, W).sigmoid_(), generator=g)
                    ph1 = torch.addmm(c, v1, W.t()).sigmoid_()
                    if persistent:
                        chain = torch.bernoulli(ph1, generator=g)
                    W.addmm_(ph0.t(), v0, alpha=lr / v0.shape[0])
                    W.addmm_(ph1.t(), v1, alpha=-lr / v1.shape[0])
                    b.add_(v0.mean(0) - v1.mean(0), alpha=lr)
                    c.add_(ph0.mean(0) - ph1.mean(0), alpha=lr)
        return W.numpy(), b.numpy(), c.numpy()

    return run


def _sigmoid_(a):
    """In-place logistic function, as 0.5 + 0.5 * tanh(a / 2): no overflow, 4 passes."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5


def _numpy_cd_run(w, seed=0):
    X = w.X
    n, n_visible = X.shape
    nh, B, lr = w.n_hidden, w.batch_size, w.learning_rate
    dt = w.dtype

    def run():
        rng = np.random.default_rng(seed)
        W = rng.standard_normal((nh, n_visible), dtype=dt)
        W *= 0.01
        b = np.zeros(n_visible, dt)
        c = np.zeros(nh, dt)
        ph0_, h0_, ph1_, uh_ = (np.empty((B, nh), dt) for _ in range(4))
        v1_, uv_ = (np.empty((B, n_visible), dt) for _ in range(2))
        gW, gW_neg = np.empty_like(W), np.empty_like(W)
        for _ in range(w.n_iter):
            for start in range(0, n, B):
                v0 = X[start:start + B]
                m = v0.shape[0]
                ph0, h0, ph1, uh, v1, uv = (a[:m] for a in (ph0_, h0_, ph1_, uh_, v1_, uv_))
                np.matmul(v0, W.T, out=ph0)
                ph0 += c
                _sigmoid_(ph0)
                rng.random(out=uh, dtype=dt)
                np.less(uh, ph0, out=h0)
                np.matmul(h0, W, out=v1)
                v1 += b
                _sigmoid_(v1)
                rng.random(out=uv, dtype=dt)
                np.less(uv, v1, out=v1)
                np.matmul(v1, W.T, out=ph1)
                ph1 += c
                _sigmoid_(ph1)
                np.matmul(ph0.T, v0, out=gW)
                np.matmul(ph1.T, v1, out=gW_neg)
                gW -= gW_neg
                gW *= lr / m
                W += gW
                b += (lr / m) * (v0.sum(0) - v1.sum(0))
                c += (lr / m) * (ph0.sum(0) - ph1.sum(0))
        return W, b, c

    return run


def _floor_weights(w):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((w.n_hidden, w.X.shape[1]), dtype=w.dtype)
    W *= 0.01
    return W


def _fastrbm_floor_run(w):
    X, W = w.X, _floor_weights(w)

    def run():
        for _ in range(w.n_iter):
            _fastrbm_gemm_floor(X, W, w.batch_size)

    return run


def _numpy_floor_run(w):
    """The five CD-shaped GEMMs per mini-batch, into preallocated buffers of X's dtype."""
    X, W = w.X, _floor_weights(w)
    B = w.batch_size
    H1_, H2_ = np.empty((B, w.n_hidden), w.dtype), np.empty((B, w.n_hidden), w.dtype)
    V1_ = np.empty((B, X.shape[1]), w.dtype)
    G = np.empty_like(W)

    def run():
        for _ in range(w.n_iter):
            for start in range(0, X.shape[0], B):
                v = X[start:start + B]
                H1, H2, V1 = H1_[:len(v)], H2_[:len(v)], V1_[:len(v)]
                np.matmul(v, W.T, out=H1)      # (B x nv) @ (nv x nh)
                np.matmul(H1, W, out=V1)       # (B x nh) @ (nh x nv)
                np.matmul(V1, W.T, out=H2)     # (B x nv) @ (nv x nh)
                np.matmul(H1.T, v, out=G)      # (nh x B) @ (B x nv)
                np.matmul(H2.T, V1, out=G)     # (nh x B) @ (B x nv)

    return run


def floor_run(workload):
    """The floor every figure is divided by: fastrbm's when importable, else NumPy's."""
    key = "floor" if _fastrbm_gemm_floor is not None else "floor-numpy"
    return key, make_run(key, workload)


# --- measurement --------------------------------------------------------------------------------


def reconstruction_error(params, V):
    """Mean squared error of the mean-field reconstruction sigmoid(sigmoid(V W^T + c) W + b)."""
    W, b, c = (np.asarray(p, dtype=np.float64) for p in params)
    V = np.asarray(V, dtype=np.float64)
    R = expit(expit(V @ W.T + c) @ W + b)
    return float(np.mean((V - R) ** 2))


def best_time(run, rounds, warmup_rounds=1):
    """(minimum seconds over ``rounds`` calls after ``warmup_rounds`` untimed ones, last result)."""
    for _ in range(warmup_rounds):
        run()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
    return min(times), result


# --- the side-by-side table ---------------------------------------------------------------------

WORKLOADS = {"digits": "small", "fashion-mnist": "large"}


def measure(workload, keys, rounds, log=None, n_jobs=None):
    """Time the peers ``keys`` on ``workload``.

    Rounds are interleaved (every peer once per round, after one warm-up each), so a change
    in machine load between peers skews the ratios less than back-to-back rounds would.

    Parameters
    ----------
    workload : Workload
        The data and hyper-parameters.
    keys : list of str
        Keys of :data:`PEERS` to run; those whose requirement is missing are noted, not run.
    rounds : int
        Timed rounds per peer.
    log : file, default=None
        Where progress lines go; None means ``sys.stderr``.
    n_jobs : int, default=None
        fastrbm's ``n_jobs`` (None: its default, every core for large enough mini-batches).

    Returns
    -------
    rows : dict
        ``{peer key: (minimum seconds, reconstruction error or None)}``.
    notes : list of str
        One line per peer not run, saying why.
    """
    log = sys.stderr if log is None else log
    runs, notes = {}, []
    for key in keys:
        why = missing_requirement(key)
        if why:
            notes.append(f"{PEERS[key].label}: not run ({why}).")
        else:
            runs[key] = make_run(key, workload, n_jobs=n_jobs)
    times = {key: [] for key in runs}
    results = {}
    for key, run in runs.items():  # warm-up: JIT compilation, first-call allocations
        print(f"  warm-up {PEERS[key].label}", file=log, flush=True)
        run()
    for r in range(rounds):
        for key, run in runs.items():
            t0 = time.perf_counter()
            results[key] = run()
            times[key].append(time.perf_counter() - t0)
        print(f"  round {r + 1}/{rounds}: "
              + ", ".join(f"{key} {t[-1]:.3f} s" for key, t in times.items()),
              file=log, flush=True)
    rows = {}
    for key, params in results.items():
        error = None if params is None else reconstruction_error(params, workload.eval_rows)
        rows[key] = (min(times[key]), error)
    return rows, notes


def markdown_table(workload, rows, notes):
    """The Markdown table of ``measure``'s result: seconds, ratio to the fastrbm run of the
    same algorithm, ratio to the GEMM floor, reconstruction error; then the notes."""
    floor = rows.get("floor", rows.get("floor-numpy", (None,)))[0]
    lines = [
        f"**{workload.name}**",
        "",
        "| peer | seconds | peer / fastrbm | time / GEMM floor | reconstruction error |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, (seconds, error) in rows.items():
        peer = PEERS[key]
        fast = rows.get(f"fastrbm-{peer.variant}")
        vs_fast = f"{seconds / fast[0]:.2f}" if fast and not key.startswith("fastrbm") else "—"
        vs_floor = f"{seconds / floor:.2f}" if floor else "—"
        err = "—" if error is None else f"{error:.4f}"
        lines.append(f"| {peer.label} | {seconds:.3f} | {vs_fast} | {vs_floor} | {err} |")
    lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines).rstrip() + "\n"


def compare(data=("fashion-mnist", "digits"), *, quick=False, rounds=None, peers=None,
            dtypes=DTYPES, threads=None, out=None, log=None):
    """Time fastrbm and its peers side by side and write Markdown tables.

    Parameters
    ----------
    data : sequence of {"digits", "fashion-mnist"}, default=("fashion-mnist", "digits")
        The workloads: "digits" is the small one (1797x64, 256 hidden, batch 10, 10 epochs),
        "fashion-mnist" the large one (one epoch on 60000x784, 500 hidden, batch 100); it is
        skipped with a note when the Fashion-MNIST files are not installed.
    quick : bool, default=False
        One round by default, and only the first 10000 Fashion-MNIST rows.
    rounds : int, default=None
        Timed rounds per peer; None means 3, or 1 with ``quick``.
    peers : sequence of str, default=None
        Keys of :data:`PEERS` to run (in the workload's order); None runs them all.
    dtypes : sequence of {"float32", "float64"}, default=("float32", "float64")
        The precisions: each workload is timed once per dtype, every peer fed data of that
        dtype (fastrbm is also given it as ``dtype=``), one table each.
    threads : int, default=None
        Threads of every peer: BLAS, OpenMP and torch are pinned to it and fastrbm gets it as
        ``n_jobs``. None pins :data:`THREADS` (2) and leaves fastrbm's ``n_jobs`` at its
        default. One thread gives steadier ratios on a machine shared with other work.
    out : file, default=None
        Where the header and the tables go; None means ``sys.stdout``.
    log : file, default=None
        Where progress lines go; None means ``sys.stderr``.

    Returns
    -------
    results : dict
        ``{workload name: rows}`` with ``rows`` as returned by :func:`measure`.
    """
    unknown = set(data) - set(WORKLOADS)
    if unknown:
        raise ValueError(f"unknown data {sorted(unknown)}; choose from {sorted(WORKLOADS)}")
    unknown = set(peers or ()) - set(PEERS)
    if unknown:
        raise ValueError(f"unknown peers {sorted(unknown)}; choose from {sorted(PEERS)}")
    unknown = set(dtypes) - set(DTYPES)
    if unknown or not dtypes:
        raise ValueError(f"unknown dtypes {sorted(unknown)}; choose from {list(DTYPES)}")
    out = sys.stdout if out is None else out
    log = sys.stderr if log is None else log
    rounds = rounds or (1 if quick else 3)
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    n_threads = THREADS if threads is None else threads
    import scipy
    import sklearn

    # PyTorch takes seconds to import: only when a torch peer is to run.
    with_torch = peers is None or any(PEERS[key].needs == "torch" for key in peers)
    torch = import_torch() if with_torch else None
    torch_version = torch.__version__ if torch else "absent" if with_torch else "not used"
    versions = (f"Python {platform.python_version()}, NumPy {np.__version__}, "
                f"SciPy {scipy.__version__}, scikit-learn {sklearn.__version__}, "
                f"PyTorch {torch_version}")
    print(f"{n_threads} thread(s), min of {rounds} interleaved round(s) after a warm-up; "
          f"{versions}.\n", file=out, flush=True)
    results = {}
    with pinned_threads(n_threads, with_torch=with_torch):
        for name in data:
            for dtype in dtypes:
                if WORKLOADS[name] == "large":
                    try:
                        workload = large_workload(n_rows=10000 if quick else None, dtype=dtype)
                    except FileNotFoundError:
                        print(f"- Large workload skipped: {FASHION_MNIST_HELP}.\n", file=out)
                        break
                    keys = LARGE_PEERS
                else:
                    workload, keys = small_workload(dtype=dtype), SMALL_PEERS
                if peers is not None:
                    keys = [key for key in keys if key in peers]
                print(f"{workload.name}:", file=log, flush=True)
                rows, notes = measure(workload, keys, rounds, log=log, n_jobs=threads)
                print(markdown_table(workload, rows, notes), file=out, flush=True)
                results[workload.name] = rows
    return results
