"""Command line: ``fastrbm demo`` and ``fastrbm info`` (also ``python -m fastrbm``)."""
import argparse
import sys
import time


def _demo(args):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import BernoulliRBM as SkBernoulliRBM
    from sklearn.pipeline import make_pipeline

    from . import BernoulliRBM
    from .datasets import load_digits

    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=args.seed, stratify=y)
    print(f"fastrbm demo: scikit-learn's digits, {X_train.shape[0]} training and "
          f"{X_test.shape[0]} test images of 8x8 pixels in [0, 1]\n")

    params = dict(n_components=args.n_components, learning_rate=0.06, batch_size=10,
                  n_iter=args.epochs, random_state=args.seed)
    rows = []
    for name, rbm in [("fastrbm.BernoulliRBM", BernoulliRBM(**params)),
                      ("sklearn BernoulliRBM", SkBernoulliRBM(**params))]:
        start = time.perf_counter()
        rbm.fit(X_train)
        seconds = time.perf_counter() - start
        pseudo_ll = rbm.score_samples(X_test).mean()
        clf = make_pipeline(rbm, LogisticRegression(max_iter=1000))
        clf.fit(X_train, y_train)
        rows.append((name, seconds, pseudo_ll, clf.score(X_test, y_test)))
    raw = LogisticRegression(max_iter=1000).fit(X_train, y_train).score(X_test, y_test)

    print(f"RBM: {args.n_components} hidden units, PCD-1, {args.epochs} epochs, batch 10")
    print(f"{'model':<22} {'fit time':>9} {'test pseudo-LL':>15} {'RBM + logistic acc':>19}")
    for name, seconds, pll, acc in rows:
        print(f"{name:<22} {seconds:>8.3f}s {pll:>15.2f} {acc:>19.3f}")
    print(f"{'raw pixels + logistic':<22} {'':>9} {'':>15} {raw:>19.3f}")
    print(f"\nfastrbm fit was {rows[1][1] / rows[0][1]:.1f}x faster than scikit-learn's.")
    err = BernoulliRBM(**params).fit(X_train).history_["reconstruction_error"]
    print("fastrbm reconstruction error by epoch: " + " ".join(f"{e:.4f}" for e in err))
    return 0


def _info(args):
    import platform

    import numba
    import numpy as np
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    from . import __version__
    from ._utils import n_threads_for

    print(f"fastrbm {__version__}")
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, "
          f"scikit-learn {sklearn.__version__}, numba {numba.__version__}")
    print(f"cores available: {n_threads_for(None)}")
    for pool in threadpool_info():
        print(f"thread pool: {pool['internal_api']} {pool.get('version') or ''} "
              f"({pool['user_api']}, {pool['num_threads']} threads) {pool['filepath']}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastrbm",
        description="Restricted Boltzmann Machines and Deep Belief Networks, compiled.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = sub.add_parser(
        "demo", help="train an RBM on the bundled digits and report what it learned",
        description="Train fastrbm's and scikit-learn's BernoulliRBM on the digits bundled "
                    "with scikit-learn; report time, pseudo-likelihood and the accuracy of "
                    "a logistic regression on the learned features.")
    demo.add_argument("--n-components", type=int, default=100, help="hidden units (100)")
    demo.add_argument("--epochs", type=int, default=20, help="training epochs (20)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (0)")
    demo.set_defaults(func=_demo)
    info = sub.add_parser("info", help="versions, threads and BLAS",
                          description="Print versions, core count and thread pools.")
    info.set_defaults(func=_info)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
