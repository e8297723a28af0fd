"""Command line: ``fastrbm demo``, ``fastrbm bench`` and ``fastrbm info`` (also
``python -m fastrbm``). Run ``fastrbm COMMAND --help`` for each command's options."""
import argparse
import sys
import time
from pathlib import Path


def _demo_data(args):
    """(description, X_train, X_test, y_train, y_test, default hidden sizes, batch size)."""
    from sklearn.model_selection import train_test_split

    from .datasets import load_digits, load_fashion_mnist

    if args.data == "fashion-mnist":
        try:
            (X_train, y_train), (X_test, y_test) = load_fashion_mnist()
        except FileNotFoundError as exc:
            raise SystemExit(f"fastrbm demo: {exc}") from None
        return ("Fashion-MNIST, 60000 training and 10000 test images of 28x28 pixels in [0, 1]",
                X_train, X_test, y_train, y_test, (500, 500, 2000), 100)
    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=args.seed, stratify=y)
    return (f"scikit-learn's digits, {X_train.shape[0]} training and {X_test.shape[0]} test "
            "images of 8x8 pixels in [0, 1]", X_train, X_test, y_train, y_test,
            (64, 64, 64, 64), 32)


def _sequence_steps(text):
    """argparse type of --rnn-steps: 0 (off) or at least 2 steps."""
    value = int(text)
    if value != 0 and value < 2:
        raise argparse.ArgumentTypeError(f"needs 0 or at least 2 steps, got {value}")
    return value


def _timed_fit(model, *args):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fixed epochs on purpose
        model.fit(*args)
    return time.perf_counter() - start


def _demo(args):
    from sklearn.neural_network import BernoulliRBM as SkBernoulliRBM

    from . import BernoulliRBM, DBNClassifier
    from .diagnostics import format_gradient_norms, gradient_norm_summary

    description, X_train, X_test, y_train, y_test, hidden, batch = _demo_data(args)
    hidden = tuple(args.hidden) if args.hidden else hidden
    print(f"fastrbm demo: {description}\n")
    print(f"Deep logistic net {'-'.join(map(str, (X_train.shape[1], *hidden, 10)))}: "
          f"{args.epochs} fine-tuning epochs (SGD, momentum 0.9, batch {batch}) from "
          f"RBM-pretrained weights ({args.pretrain_epochs} CD-1 epochs per layer) and from "
          "random weights")
    common = dict(hidden_layer_sizes=hidden, activation="logistic", solver="sgd",
                  momentum=0.9, learning_rate_init=0.1, batch_size=batch, early_stopping=False,
                  max_iter=args.epochs, pretrain_n_iter=args.pretrain_epochs,
                  random_state=args.seed)  # the printed settings, whatever the defaults
    nets = {"pretrained": DBNClassifier(pretrain=True, **common),
            "random init": DBNClassifier(pretrain=False, **common)}
    # The first network fit in a process compiles the Numba engine (cached on disk after);
    # do it on a few rows first so the times below are training, not compilation.
    warm_up = _timed_fit(DBNClassifier(**{**common, "hidden_layer_sizes": (4,),
                                          "pretrain_n_iter": 1, "max_iter": 1}),
                         X_train[:64], y_train[:64])
    print(f"(engine warm-up, compiling on a first run: {warm_up:.1f}s)")
    rows = []
    for name, net in nets.items():
        seconds = _timed_fit(net, X_train, y_train)
        ratio = gradient_norm_summary(net)["ratio"]
        rows.append((name, seconds, net.score(X_test, y_test), ratio["initial"],
                     ratio["last_epoch"]))
    print(f"{'DBNClassifier':<14} {'fit time':>9} {'test acc':>9} "
          f"{'grad ratio at init':>19} {'after last epoch':>17}")
    for name, seconds, acc, r0, r1 in rows:
        print(f"{name:<14} {seconds:>8.2f}s {acc:>9.3f} {r0:>19.2e} {r1:>17.2e}")
    print("(grad ratio: ||dL/dW|| of the input layer over that of the output layer; far below "
          "1 means the lower layers barely learn: vanishing gradients)")
    for name, net in nets.items():
        print(f"\nGradient norms per layer, {name}:\n{format_gradient_norms(net)}")

    if args.data == "digits":
        params = dict(n_components=args.n_components, learning_rate=0.06, batch_size=10,
                      n_iter=args.epochs, random_state=args.seed)
        fast = _timed_fit(BernoulliRBM(**params), X_train)
        sk = _timed_fit(SkBernoulliRBM(**params), X_train)
        print(f"\nOne RBM, {args.n_components} hidden units, PCD-1, {args.epochs} epochs, "
              f"batch 10: fastrbm {fast:.3f}s, scikit-learn {sk:.3f}s ({sk / fast:.1f}x)")
    if args.rnn_steps:
        _demo_recurrent(args)
    if args.out is not None:
        _write_demo_pngs(args.out, nets)
    return 0


def _demo_recurrent(args):
    """The vanishing gradient through time: plain recurrent nets against an LSTM on the
    adding problem (seconds)."""
    import numpy as np

    from . import RNNRegressor
    from .datasets import make_adding_problem
    from .diagnostics import gradient_through_time_summary

    n_steps = args.rnn_steps
    X, y = make_adding_problem(n_samples=2000, n_steps=n_steps, random_state=args.seed)
    X_test, y_test = make_adding_problem(n_samples=1000, n_steps=n_steps,
                                         random_state=args.seed + 1)
    print(f"\nRecurrent nets, adding problem with {n_steps} steps (2000 training "
          f"sequences, 32 units, Adam 0.003, batch 50, 20 epochs; predicting 1 always: test "
          f"MSE 0.167)")
    print(f"{'cell':<8} {'fit time':>9} {'test MSE':>9} {'grad ratio at init':>19} "
          f"{'after last epoch':>17}")
    for cell in ("sigmoid", "tanh", "lstm"):
        rnn = RNNRegressor(hidden_layer_sizes=(32,), cell=cell, batch_size=50,
                           learning_rate_init=0.003, max_iter=20, random_state=args.seed)
        seconds = _timed_fit(rnn, X, y)
        mse = float(np.mean((rnn.predict(X_test) - y_test) ** 2))
        ratio = gradient_through_time_summary(rnn)["ratio"]
        print(f"{cell:<8} {seconds:>8.2f}s {mse:>9.4f} {ratio['initial']:>19.2e} "
              f"{ratio['last_epoch']:>17.2e}")
    print("(grad ratio: ||dL/dh_t|| at the first step over that at the last; the plain nets' "
          "error signal dies out along the sequence, the LSTM's cell state carries it)")


def _write_demo_pngs(out, nets):
    """The gradient-norm comparison, the learning curves of the fine-tuned nets ``{label:
    net}`` and the bottom RBM's filters of the pretrained one, as PNGs in ``out``; a note on
    stderr instead when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        print('\nPNGs not written: matplotlib is not installed (pip install "fastrbm[plot]").',
              file=sys.stderr)
        return
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    from . import plotting

    figures = {"gradient_norms.png": plotting.plot_gradient_norms(
        nets, title="Gradient norm per layer (epoch 0: initial weights)")}
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, net in nets.items():
        ax.plot(range(1, len(net.loss_curve_) + 1), net.loss_curve_, marker="o",
                markersize=3, label=label)
    ax.set(xlabel="fine-tuning epoch", ylabel="training loss (cross-entropy)",
           title="Fine-tuning loss by epoch")
    ax.legend(loc="best")
    figures["learning_curve.png"] = fig
    pretrained = [net for net in nets.values() if getattr(net, "rbms_", None)]
    if pretrained:
        figures["filters.png"] = plotting.plot_filters(
            pretrained[0].rbms_[0], title="Weights of the bottom RBM (first 100 units)")
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
    dtypes = _bench.DTYPES if args.dtype == "both" else (args.dtype,)
    _bench.compare(data, quick=args.quick, rounds=args.rounds, peers=args.peers,
                   dtypes=dtypes, threads=args.threads)
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
        from ._kernels import _sampling  # (loads the engine's OpenMP runtime)
    except ImportError as exc:
        print(f"compiled engine: not importable ({exc})")
    else:
        build = _sampling.build_info()
        print(f"compiled engine: loaded; built by {build['compiler']}, "
              f"{'OpenMP' if build['openmp'] else 'serial (one thread whatever n_jobs)'}, "
              f"{'portable C' if build['portable'] else 'vectorised C'}, "
              f"row kernels for {build['dispatch']} (its threads follow n_jobs; None uses "
              "every core for large enough mini-batches)")
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


def _compile(args):
    from ._kernels.precompile import main as compile_main

    return compile_main()


def build_parser():
    """The ``fastrbm`` argument parser, one sub-command per task."""
    parser = argparse.ArgumentParser(
        prog="fastrbm",
        description="Restricted Boltzmann Machines and Deep Belief Networks, compiled. "
                    "Run 'fastrbm COMMAND --help' for the options of a command.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo", help="pretrained vs randomly initialised deep net: the vanishing gradient",
        description="Train the same deep logistic DBNClassifier with and without greedy RBM "
                    "pretraining (equal fine-tuning epochs) on the digits bundled with "
                    "scikit-learn (or Fashion-MNIST); report accuracy, time and the per-layer "
                    "gradient norms, and time one RBM against scikit-learn's.")
    demo.add_argument("--data", choices=("digits", "fashion-mnist"), default="digits",
                      help="digits (default, seconds): net 64-64-64-64-64-10, 1347 training "
                           "images; fashion-mnist: net 784-500-500-2000-10 on all 60000 "
                           "(minutes; needs apt-get install dataset-fashion-mnist)")
    demo.add_argument("--epochs", type=_positive_int, default=10,
                      help="fine-tuning epochs of both nets, and epochs of the RBM (10)")
    demo.add_argument("--pretrain-epochs", type=_positive_int, default=10,
                      help="CD-1 epochs per pretrained layer (10)")
    demo.add_argument("--hidden", type=_positive_int, nargs="+", default=None, metavar="N",
                      help="hidden layer sizes (default: 64 64 64 64 for digits, 500 500 "
                           "2000 for fashion-mnist)")
    demo.add_argument("--n-components", type=_positive_int, default=100,
                      help="hidden units of the single RBM timed against scikit-learn (100)")
    demo.add_argument("--rnn-steps", type=_sequence_steps, default=100, metavar="N",
                      help="steps of the adding problem in the recurrent comparison (100; "
                           "0 skips it)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (0)")
    demo.add_argument("--out", type=Path, default=None, metavar="DIR",
                      help="also write gradient_norms.png, learning_curve.png and "
                           "filters.png into DIR (needs matplotlib: pip install "
                           "\"fastrbm[plot]\")")
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
    bench.add_argument("--dtype", choices=("float32", "float64", "both"), default="both",
                       help="precision of the data every peer is fed (fastrbm is also given "
                            "it as dtype=): one table per dtype; both (default) times "
                            "float32 then float64")
    bench.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                       help="threads of every peer: BLAS, OpenMP and PyTorch pinned to N, "
                            "fastrbm given n_jobs=N (default: 2, fastrbm's n_jobs left at "
                            "its default); 1 gives steadier ratios on a busy machine")
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

    compile_ = sub.add_parser(
        "compile", help="compile the Numba engine now, so the first fit does not wait",
        description="Compile the Numba backprop engine for float32 and float64 (serial and "
                    "parallel builds) into Numba's on-disk cache. An editable install does "
                    "this itself; after a wheel install, run it once (about a minute). Later "
                    "processes load the cache in under a second.")
    compile_.set_defaults(func=_compile)
    return parser


def main(argv=None):
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    Bad arguments exit with code 2 and a usage message on stderr (argparse's behaviour).
    """
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
