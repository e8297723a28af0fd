"""Centring, measured without AIS
================================

Centred against uncentred PCD-1: exact test log-likelihoods of 16-hidden-unit RBMs on
binarised Fashion-MNIST.

The full-size run's results: :doc:`/likelihood`.

Settings fixed in advance (no choice made on any data): 16 hidden units, PCD-1, batch 100,
10 epochs, learning rates 0.01 and 0.05, seeds 0-2; the exact log Z enumerates the 2**16
hidden states. Prints a Markdown table (mean and standard deviation over the seeds).

    python examples/centring_exact.py
    python examples/centring_exact.py --quick    # 10000 images, 2 epochs, one rate

Needs Fashion-MNIST (``apt-get install dataset-fashion-mnist``).
"""
import argparse
import time
import warnings

import numpy as np

from fastrbm import BernoulliRBM
from fastrbm.datasets import load_fashion_mnist

SEEDS = (0, 1, 2)
RATES = (0.01, 0.05)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="10000 training images, 2 epochs, learning rate 0.05 only")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # fixed epochs: convergence warnings are expected
    X_train = load_fashion_mnist(subset="train", binarize=True)[0].astype(np.float64)
    X_test = load_fashion_mnist(subset="test", binarize=True)[0].astype(np.float64)
    rates, n_iter = RATES, 10
    if args.quick:
        X_train, rates, n_iter = X_train[:10000], RATES[1:], 2
    print("| learning rate | PCD-1 | centred PCD-1 | difference | fit time (PCD-1 / centred) |")
    print("|---:|---:|---:|---:|---:|")
    for rate in rates:
        scores, times = {}, {}
        for centered in (False, True):
            scores[centered], times[centered] = [], []
            for seed in SEEDS:
                start = time.perf_counter()
                rbm = BernoulliRBM(n_components=16, learning_rate=rate, batch_size=100,
                                   n_iter=n_iter, centered=centered, random_state=seed)
                rbm.fit(X_train)
                times[centered].append(time.perf_counter() - start)
                scores[centered].append(rbm.score(X_test, method="exact"))
        plain, centred = np.array(scores[False]), np.array(scores[True])
        diff = centred - plain
        print(f"| {rate} | {plain.mean():.2f} ± {plain.std(ddof=1):.2f} "
              f"| {centred.mean():.2f} ± {centred.std(ddof=1):.2f} "
              f"| {diff.mean():+.2f} ± {diff.std(ddof=1):.2f} "
              f"| {np.mean(times[False]):.1f} s / {np.mean(times[True]):.1f} s |")


if __name__ == "__main__":
    main()
