"""Time fastrbm and its peers on the benchmark workloads in one process; print Markdown tables.

    python bench/compare.py [--quick] [--rounds N]

Each figure is the minimum over ``--rounds`` runs (interleaved between peers) after one
untimed warm-up, with BLAS, OpenMP and torch pinned to 2 threads. Ratios compare runs of the
same algorithm (CD-1 peers with fastrbm CD-1, PCD-1 peers such as scikit-learn with fastrbm
PCD-1). ``--quick`` times one round and only the first 10000 Fashion-MNIST rows. Progress
goes to stderr, the tables to stdout.

The measuring code lives in ``fastrbm._bench`` (``fastrbm bench --data all`` runs the same);
this script runs both workloads, the large one first, then the Gaussian-Bernoulli epoch of
``test_bench_gaussian.py`` (standardised Fashion-MNIST).
"""

import argparse

import _peers  # noqa: F401  (puts the working tree on sys.path when fastrbm is not installed)
from fastrbm import _bench


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one round; the first 10000 Fashion-MNIST rows")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timed rounds per peer (default 3, or 1 with --quick)")
    args = parser.parse_args(argv)
    _bench.compare(("fashion-mnist", "digits"), quick=args.quick, rounds=args.rounds)
    # Real-valued data: GaussianBernoulliRBM against a PyTorch Gaussian CD-1 loop.
    import test_bench_gaussian

    try:
        test_bench_gaussian.main(["--rounds", str(args.rounds or (1 if args.quick else 3))]
                                 + (["--rows", "10000"] if args.quick else []))
    except FileNotFoundError:
        print(f"- Gaussian workload skipped: {_peers.FASHION_MNIST_HELP}.")


if __name__ == "__main__":
    main()
