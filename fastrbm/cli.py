"""Command line: ``fastrbm demo``, ``fastrbm bench`` and ``fastrbm info`` (also
``python -m fastrbm``). Run ``fastrbm COMMAND --help`` for each command's options."""
import argparse
import sys
import time
from pathlib import Path


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
    fast_rbm = BernoulliRBM(**params)
    for name, rbm in [("fastrbm.BernoulliRBM", fast_rbm),
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
    err = fast_rbm.history_["reconstruction_error"]
    print("fastrbm reconstruction error by epoch: " + " ".join(f"{e:.4f}" for e in err))
    if args.out is not None:
        _write_demo_pngs(args.out, fast_rbm)
    return 0


def _write_demo_pngs(out, rbm):
    """Filters, generated samples and the learning curve of ``rbm`` as PNGs in ``out``;
    a note on stderr instead when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        print('\nPNGs not written: matplotlib is not installed (pip install "fastrbm[plot]").',
              file=sys.stderr)
        return
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    from . import plotting

    n_shown = min(100, rbm.n_components)
    figures = {
        "filters.png": plotting.plot_filters(
            rbm, title=f"fastrbm: weights of the first {n_shown} hidden units"),
        "samples.png": plotting.plot_samples(
            rbm.sample(n_samples=36, n_steps=1000),
            title="fastrbm: samples after 1000 Gibbs steps"),
        "learning_curve.png": plotting.plot_learning_curve(
            rbm, title="fastrbm: reconstruction error by epoch"),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print()
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=100, bbox_inches="tight")
        plt.close(fig)
        print(f"wrote {out / name}")


def _bench(args):
    from . import _bench

    data = ("fashion-mnist", "digits") if args.data == "all" else (args.data,)
    _bench.compare(data, quick=args.quick, rounds=args.rounds, peers=args.peers)
    return 0


def _peer_list(text):
    """argparse type of ``--peers``: comma-separated keys of the benchmark peers."""
    from ._bench import PEERS

    keys = [key.strip() for key in text.split(",") if key.strip()]
    unknown = [key for key in keys if key not in PEERS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"unknown peer(s) {', '.join(unknown) or repr(text)}; choose from "
            f"{', '.join(PEERS)}")
    return keys


def _positive_int(text):
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _info(args):
    import os
    import platform
    from importlib import metadata

    import numba
    from threadpoolctl import threadpool_info

    from . import __version__
    from ._utils import n_threads_for

    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "absent"

    print(f"fastrbm {__version__}")
    print(f"python {platform.python_version()} ({platform.python_implementation()}) on "
          f"{platform.system()} {platform.machine()}")
    print("dependencies: " + ", ".join(
        f"{d} {version(d)}" for d in ("numpy", "scipy", "scikit-learn", "numba",
                                      "threadpoolctl")))
    print("optional: " + ", ".join(
        f"{d} {version(d)}" for d in ("matplotlib", "tqdm", "pandas", "torch", "dask",
                                      "distributed", "dask-ml")))
    print(f"cores: {n_threads_for(None)} available to this process, "
          f"{os.cpu_count()} in the machine")
    try:
        from ._kernels import _sampling  # noqa: F401  (loads the engine's OpenMP runtime)
    except ImportError as exc:
        print(f"compiled engine: not importable ({exc})")
    else:
        print("compiled engine: loaded (its threads follow n_jobs; None uses every core "
              "for large enough mini-batches)")
    n_numba_threads = numba.get_num_threads()  # starts numba's thread pool, if not yet
    try:
        layer = numba.threading_layer()
    except ValueError:  # numba versions that report it only after a parallel function ran
        layer = "not initialised yet"
    print(f"numba: threading layer {layer} (requested: {numba.config.THREADING_LAYER}), "
          f"{n_numba_threads} of {numba.config.NUMBA_NUM_THREADS} threads")
    pools = threadpool_info()
    print(f"thread pools (threadpoolctl): {len(pools) or 'none found'}")
    for pool in pools:
        details = ", ".join(f"{key} {pool[key]}" for key in ("threading_layer", "architecture")
                            if pool.get(key))
        name = " ".join(str(v) for v in (pool["internal_api"], pool.get("version")) if v)
        print(f"  {pool['user_api']}: {name}, {pool['num_threads']} threads"
              + (f", {details}" if details else "") + f"\n    {pool['filepath']}")
    return 0


def build_parser():
    """The ``fastrbm`` argument parser, one sub-command per task."""
    parser = argparse.ArgumentParser(
        prog="fastrbm",
        description="Restricted Boltzmann Machines and Deep Belief Networks, compiled. "
                    "Run 'fastrbm COMMAND --help' for the options of a command.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo", help="train an RBM on the bundled digits and report what it learned",
        description="Train fastrbm's and scikit-learn's BernoulliRBM on the digits bundled "
                    "with scikit-learn; report time, pseudo-likelihood and the accuracy of "
                    "a logistic regression on the learned features.")
    demo.add_argument("--n-components", type=_positive_int, default=100,
                      help="hidden units (100)")
    demo.add_argument("--epochs", type=_positive_int, default=20, help="training epochs (20)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (0)")
    demo.add_argument("--out", type=Path, default=None, metavar="DIR",
                      help="also write filters.png, samples.png and learning_curve.png "
                           "into DIR (needs matplotlib: pip install \"fastrbm[plot]\")")
    demo.set_defaults(func=_demo)

    bench = sub.add_parser(
        "bench", help="time fastrbm against scikit-learn and PyTorch side by side",
        description="Time the same RBM training in fastrbm, scikit-learn's BernoulliRBM, "
                    "PyTorch (when installed), NumPy and the bare GEMMs of the work, in this "
                    "process, and print a Markdown table of seconds and ratios (progress on "
                    "stderr). Each figure is the minimum over the rounds, after a warm-up. "
                    "Run it on an otherwise idle machine.")
    bench.add_argument("--data", choices=("digits", "fashion-mnist", "all"), default="digits",
                       help="digits: 1797x64, 256 hidden, batch 10, 10 epochs (default); "
                            "fashion-mnist: one epoch on 60000x784, 500 hidden, batch 100 "
                            "(needs apt-get install dataset-fashion-mnist); all: both")
    bench.add_argument("--quick", action="store_true",
                       help="one round, and only the first 10000 Fashion-MNIST rows")
    bench.add_argument("--rounds", type=_positive_int, default=None,
                       help="timed rounds per peer (3, or 1 with --quick)")
    bench.add_argument("--peers", type=_peer_list, default=None, metavar="KEY[,KEY...]",
                       help="run only these peers, e.g. fastrbm-pcd,sklearn (default: all: "
                            "floor, floor-numpy, sklearn, torch-cd, torch-pcd, numpy-cd, "
                            "fastrbm-cd, fastrbm-pcd)")
    bench.set_defaults(func=_bench)

    info = sub.add_parser(
        "info", help="versions, cores, threading layers and BLAS",
        description="Print the versions of fastrbm and its dependencies, the cores available, "
                    "Numba's threading layer and the BLAS / OpenMP thread pools "
                    "(through threadpoolctl): what to attach to a bug report.")
    info.set_defaults(func=_info)
    return parser


def main(argv=None):
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    Bad arguments exit with code 2 and a usage message on stderr (argparse's behaviour).
    """
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
