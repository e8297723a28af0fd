"""Extra cost per epoch of each sampler against plain PCD-1 (Fashion-MNIST 60000x784
binarised, 500 hidden, batch 100, float32). Interleaved rounds, minimum reported.

Run: ``python bench/samplers.py [ROUNDS]`` (default 3); the figures are in
docs/benchmarks.md."""
import sys
import time

import numpy as np

from fastrbm import BernoulliRBM
from fastrbm.datasets import load_fashion_mnist

X = load_fashion_mnist(subset="train", binarize=True)[0]
X = np.ascontiguousarray(X, dtype=np.float32)
print(X.shape, X.dtype, X.mean(), flush=True)
CONFIGS = {
    "PCD-1": dict(),
    "CD-1": dict(persistent=False),
    "centred PCD-1": dict(centered=True),
    "FPCD-1": dict(fast_learning_rate=0.05),
    "PT M=2": dict(n_temperatures=2),
    "PT M=4": dict(n_temperatures=4),
    "PT M=10": dict(n_temperatures=10),
}
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
models = {}
for name, kw in CONFIGS.items():
    m = BernoulliRBM(n_components=500, batch_size=100, learning_rate=0.05, n_iter=0,
                     random_state=0, **kw).fit(X[:1000])
    m.partial_fit(X[:2000])  # warm-up (buffers)
    models[name] = m
times = {name: [] for name in CONFIGS}
for r in range(rounds):
    for name, m in models.items():
        t = time.perf_counter()
        m.partial_fit(X)
        times[name].append(time.perf_counter() - t)
    print("round", r, {k: round(v[-1], 3) for k, v in times.items()}, flush=True)
base = min(times["PCD-1"])
for name, ts in times.items():
    print(f"{name:14s} min {min(ts):.3f} s  ratio {min(ts) / base:.2f}")
for name in ("PT M=2", "PT M=4", "PT M=10"):
    print(name, "swap acceptance", np.round(models[name].swap_acceptance_, 3))
