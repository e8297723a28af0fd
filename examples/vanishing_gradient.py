"""The vanishing gradient in deep nets
====================================

The same deep net on Fashion-MNIST, seven ways.

The full-size run's results: :doc:`/vanishing_gradient`.

Backprop through many logistic layers multiplies many derivatives below 1/4, so the layers
nearest the input get the smallest gradients (Glorot & Bengio 2010); greedy RBM pretraining
(Hinton, Osindero & Teh 2006) was the first cure, ReLU (and ELU) units and batch
normalisation came later. Too large initial weights give the opposite problem, exploding
gradients, which gradient clipping tames. This script measures all of it on two depths with
fixed seeds:

* the DBN of Hinton et al. 2006, 784-500-500-2000-10;
* a deeper narrow net, 784-200-200-200-200-200-200-10 (six hidden layers).

Variants, each with the same fine-tuning (SGD, Nesterov momentum 0.9, the same learning rate,
batch size and number of epochs):

    logistic, random init      Glorot-style uniform weights (scikit-learn's MLP init)
    logistic, DBN-pretrained   greedy CD-1 RBM stack, unrolled, then fine-tuned
    ReLU, random init
    ELU, random init           exponential linear units (Clevert et al. 2016), alpha = 1
    logistic + batch norm      random init, batch normalisation before each activation
    ReLU, init x3              init_scale=3: exploding activations and gradients
    ReLU, init x3, clipped     the same with max_grad_norm (global gradient-norm clipping)

Run from the repository root:

    python examples/vanishing_gradient.py            # the committed docs/ (about 3 minutes)
    python examples/vanishing_gradient.py --quick    # a smoke version into out/ (20 seconds)

It writes into ``--out`` (default ``docs/``): ``vanishing_gradient.md`` (the tables and the
report), ``vanishing_gradient_norms_<depth>.png`` (gradient norm per layer against epoch,
one panel per variant) and ``vanishing_gradient_loss_<depth>.png`` (learning curves). Every
number in them comes from this run. Needs Fashion-MNIST (``apt-get install -y
dataset-fashion-mnist``) and matplotlib.
"""
import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastrbm import DBNClassifier
from fastrbm.datasets import load_fashion_mnist
from fastrbm.diagnostics import gradient_norm_summary


DEPTHS = {
    "dbn": ("784-500-500-2000-10 (Hinton et al. 2006's DBN)", (500, 500, 2000)),
    "deep": ("784-200x6-10 (six hidden layers of 200)", (200,) * 6),
}

INIT_SCALE = 3.0
CLIP = 1.0

# label -> DBNClassifier settings beyond the shared ones
VARIANTS = {
    "logistic, random init": dict(activation="logistic", pretrain=False),
    "logistic, DBN-pretrained": dict(activation="logistic", pretrain=True),
    "ReLU, random init": dict(activation="relu", pretrain=False),
    "ELU, random init": dict(activation="elu", pretrain=False),
    "logistic + batch norm": dict(activation="logistic", pretrain=False, batch_norm=True),
    f"ReLU, init x{INIT_SCALE:g}": dict(activation="relu", pretrain=False,
                                        init_scale=INIT_SCALE),
    f"ReLU, init x{INIT_SCALE:g}, clipped": dict(activation="relu", pretrain=False,
                                                 init_scale=INIT_SCALE, max_grad_norm=CLIP),
}


def settings(quick):
    """Sizes of the run. Full: 20000 training images, 10 fine-tuning epochs, 3 RBM epochs
    per layer; quick: 3000 images, 3 epochs, 1 RBM epoch."""
    return dict(n_train=3000 if quick else 20000, epochs=3 if quick else 10,
                pretrain_epochs=1 if quick else 3)


def load_data(n_train, seed):
    (X_train, y_train), (X_test, y_test) = load_fashion_mnist()  # pixels / 255, in [0, 1]
    idx = np.random.RandomState(seed).permutation(len(X_train))[:n_train]
    return X_train[idx], y_train[idx], X_test, y_test


def fit_variant(hidden, extra, run, X, y, n_jobs, seed):
    clf = DBNClassifier(
        hidden_layer_sizes=hidden, solver="sgd", learning_rate_init=run["lr"], momentum=0.9,
        nesterovs_momentum=True, batch_size=100, alpha=1e-4, max_iter=run["epochs"],
        tol=0.0, n_iter_no_change=run["epochs"] + 1, pretrain_n_iter=run["pretrain_epochs"],
        pretrain_learning_rate=0.05, pretrain_batch_size=10, early_stopping=False,
        random_state=seed, n_jobs=n_jobs, **extra)
    diverged = None
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            clf.fit(X, y)
        except FloatingPointError:
            diverged = clf.n_iter_ + 1  # the model holds the epochs before the divergence
    return clf, time.perf_counter() - start, diverged


def norms_cell(values):
    return " / ".join(f"{v:.2g}" for v in values)


def run_depth(key, run, data, n_jobs, seed, out):
    title, hidden = DEPTHS[key]
    X, y, X_test, y_test = data
    results = {}
    for label, extra in VARIANTS.items():
        print(f"[{key}] {label} ...", file=sys.stderr, flush=True)
        clf, seconds, diverged = fit_variant(hidden, extra, run, X, y, n_jobs, seed)
        acc = clf.score(X_test, y_test) if clf.n_iter_ else float("nan")
        results[label] = (clf, seconds, diverged, acc)
        print(f"[{key}] {label}: acc {acc:.4f}, {seconds:.1f} s"
              + (f", diverged in epoch {diverged}" if diverged else ""), file=sys.stderr,
              flush=True)
    write_figures(key, title, results, out)
    return title, results


def depth_tables(title, results, run):
    any_model = next(iter(results.values()))[0]
    layers = gradient_norm_summary(any_model)["layers"]
    lines = [f"### {title}", "",
             "| variant | test accuracy | epochs run | first/last ratio at init | "
             "first/last ratio after epoch 1 | fit time (s) |",
             "|---|---|---|---|---|---|"]
    for label, (clf, seconds, diverged, acc) in results.items():
        s = gradient_norm_summary(clf)
        epochs = f"{clf.n_iter_}" + (f" (diverged in epoch {diverged})" if diverged else "")
        ratio_1 = "-" if s["ratio"]["first_epoch"] is None else f"{s['ratio']['first_epoch']:.3g}"
        lines.append(f"| {label} | {acc:.4f} | {epochs} | {s['ratio']['initial']:.3g} | "
                     f"{ratio_1} | {seconds:.1f} |")
    lines += ["", "Per-layer gradient norms ||dL/dW_l|| (layer 1 nearest the input; "
              f"layers {', '.join(layers)}), at initialisation -> mean over epoch 1:", "",
              "| variant | at initialisation | epoch 1 |", "|---|---|---|"]
    for label, (clf, _, _, _) in results.items():
        s = gradient_norm_summary(clf)
        first = "-" if s["first_epoch"] is None else norms_cell(s["first_epoch"])
        lines.append(f"| {label} | {norms_cell(s['initial'])} | {first} |")
    return lines


def write_figures(key, title, results, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fastrbm.plotting import plot_gradient_norms

    ncols = (len(results) + 1) // 2
    fig, axes = plt.subplots(2, ncols, figsize=(5 * ncols, 8), sharey=True)
    for ax in axes.ravel()[len(results):]:
        ax.set_visible(False)
    for ax, (label, (clf, _, diverged, acc)) in zip(axes.ravel(), results.items()):
        if clf.n_iter_:
            plot_gradient_norms(clf, ax=ax, title=f"{label} (test acc {acc:.3f})"
                                + (f"\ndiverged in epoch {diverged}" if diverged else ""))
            ax.legend(fontsize="x-small", loc="lower right")
        else:
            ax.set_title(f"{label}: diverged in epoch 1")
    fig.suptitle(f"Gradient norm per layer, epoch 0 = initial weights: {title}")
    fig.tight_layout()
    fig.savefig(out / f"vanishing_gradient_norms_{key}.png", dpi=90)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, (clf, _, diverged, _) in results.items():
        if clf.n_iter_:
            epochs = np.arange(1, clf.n_iter_ + 1)
            ax.plot(epochs, clf.loss_curve_, marker="o", markersize=3,
                    label=label + (f" (diverged in epoch {diverged})" if diverged else ""))
    ax.set_yscale("log")
    ax.set_xlabel("fine-tuning epoch")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_title(f"Learning curves: {title}")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / f"vanishing_gradient_loss_{key}.png", dpi=90)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="3000 training images, 3 epochs: a smoke run")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the report and the PNGs (docs/; with --quick: out/, "
                             "which git ignores)")
    parser.add_argument("--lr", type=float, default=0.05,
                        help="SGD learning rate of every variant (0.05)")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="threads per fit (1: the committed run shared its 2 cores with "
                             "other work; the models do not depend on it, only the times)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    args = parser.parse_args(argv)
    run = dict(settings(args.quick), lr=args.lr)
    if args.out is None:
        args.out = Path("out" if args.quick else "docs")
    args.out.mkdir(parents=True, exist_ok=True)
    data = load_data(run["n_train"], args.seed)
    start = time.perf_counter()
    tables = []
    for key in DEPTHS:
        title, results = run_depth(key, run, data, args.n_jobs, args.seed, args.out)
        tables += depth_tables(title, results, run) + [""]
    total = time.perf_counter() - start
    command = "python examples/vanishing_gradient.py" + (" --quick" if args.quick else "")
    header = [
        f"Measured by `{command}` (seed {args.seed}) in {total / 60:.1f} minutes on "
        f"{platform.machine()} with {args.n_jobs or 'all'} thread(s) per fit; "
        f"{run['n_train']} Fashion-MNIST training images (a fixed random subset, pixels / "
        f"255), all 10000 test images.",
        "",
        f"Shared fine-tuning: SGD, Nesterov momentum 0.9, learning rate {run['lr']}, batch 100, "
        f"L2 alpha 1e-4, {run['epochs']} epochs (no early stop). Pretraining: CD-1, "
        f"{run['pretrain_epochs']} epoch(s) per RBM, learning rate 0.05, batch 10. "
        f"Init x{INIT_SCALE:g} is `init_scale={INIT_SCALE:g}` (the Glorot-style bound times "
        f"{INIT_SCALE:g}); clipping is `max_grad_norm={CLIP:g}`. Gradient norms are "
        "||dL/dW_l||_F, averaged over 20 mini-batches at initialisation and over all "
        "mini-batches of epoch 1; the ratio is layer 1 (input side) over the output layer. "
        "Fit time includes pretraining.",
        "",
    ]
    path = args.out / "vanishing_gradient.md"
    report = path.read_text().split(TABLES_MARK)[0] if path.exists() else DEFAULT_REPORT
    path.write_text(report + TABLES_MARK + "\n\n" + "\n".join(header + tables))
    print("\n".join(header + tables))
    print(f"wrote {path} and the PNGs in {args.out}", file=sys.stderr)


TABLES_MARK = "<!-- tables below are written by examples/vanishing_gradient.py -->"
DEFAULT_REPORT = """# The vanishing-gradient study

(Report text to be written from the tables below.)

"""

if __name__ == "__main__":
    main()
