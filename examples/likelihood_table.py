"""AIS test log-likelihoods of RBMs trained by CD-1, CD-10 and PCD-1 at equal epochs.

The literature's ordering (Tieleman 2008; Salakhutdinov & Murray 2008, where a 500-hidden
CD-25 RBM on MNIST scores -86.34 nats): longer chains and persistent chains give better
generative models than CD-1, whose reconstructions look good while its log-likelihood lags.

    python examples/likelihood_table.py            # digits, and Fashion-MNIST when installed
    python examples/likelihood_table.py --quick    # smaller, for a quick look

Prints a Markdown table: test log-likelihood (nats per image) +- the AIS standard error,
log Z, training time. Every number comes from this run; seeds are fixed.
"""
import argparse
import time

import numpy as np

from fastrbm import BernoulliRBM, log_partition
from fastrbm.datasets import load_digits, load_fashion_mnist

ALGORITHMS = [("CD-1", dict(k=1, persistent=False)),
              ("CD-10", dict(k=10, persistent=False)),
              ("PCD-1", dict(k=1, persistent=True))]


def datasets(quick, learning_rate):
    X, _ = load_digits(binarize=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    yield ("binarised digits (1437 train / 360 test, 8x8)", X[order[:1437]], X[order[1437:]],
           dict(n_components=100, batch_size=10, n_iter=30 if quick else 100,
                learning_rate=learning_rate))
    try:
        (X_train, _), (X_test, _) = load_fashion_mnist(binarize=True)
    except FileNotFoundError as exc:
        print(f"(skipping Fashion-MNIST: {exc})")
        return
    if quick:
        X_train = X_train[:10000]
    yield (f"binarised Fashion-MNIST ({len(X_train)} train / 10000 test, 28x28)", X_train,
           X_test, dict(n_components=500, batch_size=100, n_iter=3 if quick else 10,
                        learning_rate=learning_rate))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and betas")
    parser.add_argument("--learning-rate", type=float, default=0.05,
                        help="learning rate of every model (0.05); momentum is 0.5")
    args = parser.parse_args()
    n_betas = 2000 if args.quick else 10000
    print(f"AIS: 100 chains x {n_betas} inverse temperatures, base-rate model from the "
          f"training data; learning rate {args.learning_rate}, momentum 0.5\n")
    print("| data | algorithm | epochs | train time | test log-likelihood | log Z |")
    print("|---|---|---|---|---|---|")
    for name, X_train, X_test, params in datasets(args.quick, args.learning_rate):
        for label, algo in ALGORITHMS:
            model = BernoulliRBM(random_state=0, momentum=0.5, **params, **algo)
            start = time.perf_counter()
            model.fit(X_train)
            seconds = time.perf_counter() - start
            log_z, std = log_partition(model, "ais", n_chains=100, n_betas=n_betas,
                                       X=X_train, random_state=0, return_std=True)
            test_ll = -model.free_energy(X_test).astype(np.float64).mean() - log_z
            print(f"| {name} | {label} | {params['n_iter']} | {seconds:.1f} s | "
                  f"{test_ll:.2f} +- {std:.2f} | {log_z:.2f} |", flush=True)


if __name__ == "__main__":
    main()
