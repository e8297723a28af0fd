"""DBN benchmarks: one backprop fine-tuning epoch against PyTorch, scikit-learn's
MLPClassifier and the epoch's GEMM floor, all timed in the same run; and greedy pretraining
seconds per epoch per layer.

Run with ``python -m pytest bench/test_bench_dbn.py`` (not part of the test suite; threads
are pinned to 2 by conftest.py). Every contender trains the same logistic net with the same
mini-batches (size, count, shuffled order) and SGD with Nesterov momentum 0.9, lr 0.1,
float32. Timed work: one epoch on already-initialised weights (JIT and set-up excluded by a
warm-up round). ``extra_info`` records the ratio to the GEMM floor, the training loss of
the timed epoch, and for fastrbm the speed-up against each peer timed before it.

``FASTRBM_BENCH_ROWS=n`` truncates every data set to n rows, for a quick smoke run
(figures are then meaningless).
"""
import os
import warnings

import numpy as np
import pytest

import _peers
from fastrbm.datasets import load_digits, load_fashion_mnist

ROUNDS = 3
PEERS = ["floor", "sklearn", "torch", "fastrbm"]  # fastrbm last: its ratios need the others
LEARNING_RATE, MOMENTUM = 0.1, 0.9
_TIMES = {}  # (workload name, peer) -> minimum seconds in this run


def _rows(X, y):
    n = os.environ.get("FASTRBM_BENCH_ROWS")
    return (X, y) if n is None else (np.ascontiguousarray(X[:int(n)]), y[:int(n)])


@pytest.fixture(scope="module")
def large():
    try:
        X, y = load_fashion_mnist(subset="train")
    except FileNotFoundError:
        pytest.skip(_peers.FASHION_MNIST_HELP)
    X, y = _rows(X, y)
    return "Fashion-MNIST 784-500-500-2000-10, batch 100", X, y, (500, 500, 2000), 100


@pytest.fixture(scope="module")
def small():
    X, y = load_digits()
    X, y = _rows(np.ascontiguousarray(np.tile(X, (10, 1))), np.tile(y, 10))
    return "digits x10 64-100-100-10, batch 32", X, y, (100, 100), 32


# --- contenders: make(X, y, hidden, batch) -> zero-argument run() -> training loss -------------

def _fastrbm(X, y, hidden, batch):
    from fastrbm import DBNClassifier

    clf = DBNClassifier(hidden_layer_sizes=hidden, pretrain=False, solver="sgd",
                        learning_rate_init=LEARNING_RATE, momentum=MOMENTUM, batch_size=batch,
                        alpha=0.0, random_state=0)
    clf.partial_fit(X, y, classes=np.unique(y))  # initialise (and compile) outside the timing

    def run():
        clf.partial_fit(X, y)
        return clf.loss_curve_[-1]

    return run


def _sklearn(X, y, hidden, batch):
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=hidden, activation="logistic", solver="sgd",
                        learning_rate_init=LEARNING_RATE, momentum=MOMENTUM, batch_size=batch,
                        alpha=0.0, random_state=0)
    clf.partial_fit(X, y, classes=np.unique(y))

    def run():
        clf.partial_fit(X, y)  # one epoch
        return clf.loss_

    return run


def _torch(X, y, hidden, batch):
    torch = _peers.import_torch()
    torch.manual_seed(0)
    sizes = [X.shape[1], *hidden]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.Sigmoid()]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(sizes[-1], int(y.max()) + 1))
    opt = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM,
                          nesterov=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    gen = torch.Generator().manual_seed(0)

    def run():
        perm = torch.randperm(len(Xt), generator=gen)
        total = 0.0
        for start in range(0, len(Xt), batch):
            idx = perm[start:start + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        return total / len(Xt)

    return run


def _floor(X, y, hidden, batch):
    """The GEMMs of one epoch and nothing else: per layer and mini-batch the forward
    product, the weight gradient and (above the first layer) the delta product."""
    sizes = [X.shape[1], *hidden, int(y.max()) + 1]
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((a, b), dtype=np.float32) * 0.01
          for a, b in zip(sizes[:-1], sizes[1:])]
    acts = [np.empty((batch, s), np.float32) for s in sizes]
    grads = [np.empty_like(W) for W in Ws]

    def run():
        for start in range(0, len(X), batch):
            xb = X[start:start + batch]
            n = len(xb)
            a = xb
            for l, W in enumerate(Ws):
                np.matmul(a, W, out=acts[l + 1][:n])
                a = acts[l + 1][:n]
            for l in range(len(Ws) - 1, -1, -1):
                inp = xb if l == 0 else acts[l][:n]
                np.matmul(inp.T, acts[l + 1][:n], out=grads[l])
                if l > 0:
                    np.matmul(acts[l + 1][:n], Ws[l].T, out=acts[l][:n])
        return None

    return run


CONTENDERS = {"floor": ("GEMM floor (NumPy matmul)", _floor),
              "sklearn": ("scikit-learn MLPClassifier", _sklearn),
              "torch": ("PyTorch CPU", _torch),
              "fastrbm": ("fastrbm DBNClassifier", _fastrbm)}


def _bench_epoch(benchmark, key, workload):
    name, X, y, hidden, batch = workload
    if key == "torch" and _peers.import_torch() is None:
        pytest.skip("PyTorch is not installed")
    label, make = CONTENDERS[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's partial_fit ConvergenceWarning
        run = make(X, y, hidden, batch)
        loss = benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    info = benchmark.extra_info
    info.update(peer=label, workload=name, rows=len(X))
    if loss is not None:
        info["train_loss"] = float(loss)
    if benchmark.stats is None:  # --benchmark-disable
        return
    seconds = benchmark.stats.stats.min
    _TIMES[(name, key)] = seconds
    floor = _TIMES.get((name, "floor"))
    if floor:
        info["ratio_to_floor"] = seconds / floor
    if key == "fastrbm":
        for (other_name, other), t in _TIMES.items():
            if other_name == name and other not in ("fastrbm", "floor"):
                info[f"speedup_vs_{other}"] = t / seconds


@pytest.mark.benchmark(group="fine-tuning epoch, Fashion-MNIST 784-500-500-2000-10, batch 100")
@pytest.mark.parametrize("key", PEERS)
def test_fashion_mnist_finetune_epoch(benchmark, key, large):
    _bench_epoch(benchmark, key, large)


@pytest.mark.benchmark(group="fine-tuning epoch, digits x10 64-100-100-10, batch 32")
@pytest.mark.parametrize("key", PEERS)
def test_digits_finetune_epoch(benchmark, key, small):
    _bench_epoch(benchmark, key, small)


@pytest.mark.benchmark(group="greedy pretraining, Fashion-MNIST 784-500-500-2000, 1 epoch")
def test_fashion_mnist_pretraining_epoch_per_layer(benchmark, large):
    """One CD-1 epoch per layer (batch 100, as the RBM benchmark); seconds of each layer's
    epoch (from the RBMs' ``history_``) go to ``extra_info``."""
    from fastrbm import DBN

    _, X, _, hidden, batch = large
    dbn = DBN(hidden_layer_sizes=hidden, n_iter=1, batch_size=batch, persistent=False,
              random_state=0)
    fitted = benchmark.pedantic(lambda: dbn.fit(X), rounds=1, warmup_rounds=1, iterations=1)
    for l, rbm in enumerate(fitted.rbms_):
        benchmark.extra_info[f"layer{l + 1}_{rbm.n_features_in_}x{rbm.n_components}_s"] = \
            rbm.history_["time"][0]
    benchmark.extra_info["rows"] = len(X)


def teardown_module():
    if _TIMES:
        print("\nDBN fine-tuning epoch, minimum seconds of this run:")
        for (name, key), t in _TIMES.items():
            floor = _TIMES.get((name, "floor"))
            ratio = f"{t / floor:6.2f} x floor" if floor else ""
            print(f"  {name:<46} {CONTENDERS[key][0]:<28} {t:8.3f} s  {ratio}")
