"""Deep autoencoders on Fashion-MNIST
===================================

Hinton & Salakhutdinov (2006), Science 313, on Fashion-MNIST.

The full-size run's results: :doc:`/autoencoder`.

A 784-1000-500-250-30 autoencoder, pretrained as an RBM stack (the top RBM with linear
hidden units), unrolled and fine-tuned on the cross-entropy of the reconstruction, against
PCA with 30 components and against the same net fine-tuned from random weights with the
same budget; then a 784-1000-500-250-2 net whose 2-D codes of the test images are plotted
by class beside the first two principal components (the paper's Figure 3).

The fine-tuning schedule is chosen on a validation split of the training images, never on
the test set: each net holds out ``--validation`` of the 60000 training images and keeps
the weights of its best validation epoch (``early_stopping=True``); the test images are
used once, for the figures reported.

Run from the repository root:

    python examples/autoencoder_study.py            # the committed docs/
    python examples/autoencoder_study.py --quick    # a smoke version into out/

It writes into ``--out`` (default ``docs/``): ``autoencoder.md`` (tables and report),
``autoencoder_reconstructions.png``, ``autoencoder_codes_2d.png`` and
``autoencoder_curves.png``. Every number in them comes from this run. Needs Fashion-MNIST
(``apt-get install -y dataset-fashion-mnist``) and matplotlib.
"""
import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from fastrbm import DBNAutoencoder
from fastrbm.datasets import load_fashion_mnist

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"]


def squared_error(X, R):
    """Per image: sum over the 784 pixels of the squared error; mean over images."""
    return float(np.mean(np.square(X - R, dtype=np.float64).sum(axis=1)))


def autoencoder(sizes, args, pretrain, seed):
    return DBNAutoencoder(
        sizes, pretrain=pretrain, pretrain_n_iter=args.pretrain_epochs,
        pretrain_learning_rate=[args.pretrain_rate] * (len(sizes) - 1) + [args.top_rate],
        pretrain_batch_size=100,
        learning_rate_init=args.learning_rate, batch_size=args.batch_size,
        max_iter=args.epochs, early_stopping=True, validation_fraction=args.validation,
        n_iter_no_change=args.epochs, random_state=seed, verbose=args.verbose,
        n_jobs=args.n_jobs)


def fit_timed(model, X, label, decay_epochs):
    """Fit, then for each entry of ``decay_epochs`` continue from the best validation
    weights for that many epochs at a tenth of the previous step size: a step decay, which
    Adam's constant rate lacks. Every stage holds out the same validation rows (drawn first
    from the same seed). Returns the seconds taken and the validation squared error of
    every epoch, all stages."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
        curve = list(-np.asarray(model.validation_scores_))
        for epochs in decay_epochs:
            model.set_params(warm_start=True, max_iter=epochs, n_iter_no_change=epochs,
                             learning_rate_init=model.learning_rate_init / 10)
            model.fit(X)
            curve += list(-np.asarray(model.validation_scores_))
    seconds = time.perf_counter() - start
    print(f"{label}: {seconds:.0f} s, {len(curve)} epochs, best validation error "
          f"{min(curve):.3f}", flush=True)
    return seconds, np.asarray(curve)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="6000 training and 1000 test images, 1+3+1 epochs, into out/")
    parser.add_argument("--pretrain-epochs", type=int, default=None,
                        help="RBM epochs per layer (default 50; quick 1)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="fine-tuning epochs before the decay (default 30; quick 3)")
    parser.add_argument("--epochs-2d", type=int, default=None,
                        help="fine-tuning epochs of the 2-D net (default 12; quick 3)")
    parser.add_argument("--pretrain-rate", type=float, default=0.1,
                        help="CD-1 learning rate of the binary RBMs (0.1)")
    parser.add_argument("--top-rate", type=float, default=0.01,
                        help="CD-1 learning rate of the top RBM, linear hidden units (0.01)")
    parser.add_argument("--decay-epochs", type=int, nargs="+", default=None,
                        help="then stages of this many epochs, each at a tenth of the "
                        "previous rate (default 40 10; quick 1)")
    parser.add_argument("--decay-epochs-2d", type=int, nargs="+", default=None,
                        help="the same for the 2-D net (default 6 3; quick 1)")
    parser.add_argument("--learning-rate", type=float, default=0.003,
                        help="Adam's step size in fine-tuning")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--validation", type=float, default=1 / 12,
                        help="held-out fraction of the training images (5000 of 60000)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="threads per net (default: all cores)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.pretrain_epochs = args.pretrain_epochs or (1 if quick else 50)
    args.epochs = args.epochs or (3 if quick else 30)
    args.epochs_2d = args.epochs_2d or (3 if quick else 12)
    if args.decay_epochs is None:
        args.decay_epochs = [1] if quick else [40, 10]
    if args.decay_epochs_2d is None:
        args.decay_epochs_2d = [1] if quick else [6, 3]
    out = args.out or Path("out" if quick else "docs")
    out.mkdir(parents=True, exist_ok=True)
    command = "python examples/autoencoder_study.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    started = time.perf_counter()

    (X_train, _), (X_test, y_test) = load_fashion_mnist()
    if quick:
        X_train, X_test, y_test = X_train[:6000], X_test[:1000], y_test[:1000]
    print(f"Fashion-MNIST: {len(X_train)} training, {len(X_test)} test images", flush=True)

    rows, times, nets, curves = {}, {}, {}, {}
    start = time.perf_counter()
    pca = PCA(30, random_state=0).fit(X_train)
    rows["PCA, 30 components"] = squared_error(X_test, pca.inverse_transform(
        pca.transform(X_test)))
    times["PCA, 30 components"] = time.perf_counter() - start
    for label, pretrain in [("autoencoder, pretrained", True),
                            ("autoencoder, random init", False)]:
        net = autoencoder((1000, 500, 250, 30), args, pretrain, seed=0)
        times[label], curves[label] = fit_timed(net, X_train, label, args.decay_epochs)
        rows[label] = -net.score(X_test)
        nets[label] = net
        print(f"  test squared error {rows[label]:.2f}", flush=True)
    net2 = autoencoder((1000, 500, 250, 2), dict_args(args, epochs=args.epochs_2d), True,
                       seed=0)
    times["2-D autoencoder"], curves["2-D autoencoder"] = fit_timed(
        net2, X_train, "784-1000-500-250-2, pretrained", args.decay_epochs_2d)
    pca2 = PCA(2, random_state=0).fit(X_train)
    codes = {"PCA, first two components": pca2.transform(X_test),
             "autoencoder 784-1000-500-250-2": net2.transform(X_test)}
    errors_2d = {"PCA, 2 components": squared_error(
        X_test, pca2.inverse_transform(codes["PCA, first two components"])),
        "autoencoder 784-1000-500-250-2": -net2.score(X_test)}
    total = time.perf_counter() - started

    plot_reconstructions(out / "autoencoder_reconstructions.png", X_test, y_test, pca,
                         nets, rows)
    plot_codes(out / "autoencoder_codes_2d.png", codes, y_test)
    plot_curves(out / "autoencoder_curves.png", {label: curves[label] for label in nets})
    write_report(out / "autoencoder.md", args, command, rows, times, curves, errors_2d,
                 total, len(X_train), len(X_test))
    print(f"total {total:.0f} s; wrote {out / 'autoencoder.md'}")


def dict_args(args, **changes):
    return argparse.Namespace(**{**vars(args), **changes})


def plot_reconstructions(path, X, y, pca, nets, errors):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = [int(np.flatnonzero(y == c)[0]) for c in range(10)]
    images = {"test image": X[picks],
              f"PCA 30 ({errors['PCA, 30 components']:.1f})":
                  pca.inverse_transform(pca.transform(X[picks]))}
    for label, net in nets.items():
        images[f"{label.split(', ')[1]} ({errors[label]:.1f})"] = net.reconstruct(X[picks])
    fig, axes = plt.subplots(len(images), 10, figsize=(10, 1.1 * len(images) + 0.4))
    for r, (label, rows) in enumerate(images.items()):
        for c in range(10):
            ax = axes[r, c]
            ax.imshow(np.clip(rows[c], 0, 1).reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
            if r == 0:
                ax.set_title(CLASSES[y[picks[c]]], fontsize=8)
    fig.suptitle("Fashion-MNIST test images and reconstructions from 30 numbers "
                 "(in brackets: the mean squared error of all test images)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_codes(path, codes, y):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6))
    colors = plt.get_cmap("tab10")
    for ax, (label, C) in zip(axes, codes.items()):
        for c in range(10):
            sel = y == c
            ax.scatter(C[sel, 0], C[sel, 1], s=2, color=colors(c), label=CLASSES[c],
                       alpha=0.6, rasterized=True)
        ax.set_title(label)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1].legend(markerscale=6, fontsize=8, loc="best")
    fig.suptitle("Two-dimensional codes of the Fashion-MNIST test images, by class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_curves(path, curves):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, scores in curves.items():
        ax.plot(np.arange(1, scores.size + 1), scores, label=label)
    ax.set_xlabel("fine-tuning epoch")
    ax.set_ylabel("validation squared error per image")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_report(path, args, command, rows, times, curves, errors_2d, total, n_train,
                 n_test):
    def best_epoch(curve):
        return int(np.argmin(curve)) + 1

    lines = ["| method | test squared error per image | best validation epoch | "
             "fit time |", "|---|---|---|---|"]
    for label, error in rows.items():
        curve = curves.get(label)
        epoch = f"{best_epoch(curve)} of {curve.size}" if curve is not None else "-"
        lines.append(f"| {label} | {error:.2f} | {epoch} | {times[label]:.0f} s |")
    table = "\n".join(lines)
    lines2 = ["| method | test squared error per image |", "|---|---|"]
    for label, error in errors_2d.items():
        lines2.append(f"| {label} | {error:.2f} |")
    table2 = "\n".join(lines2)
    text = TEMPLATE.format(
        command=command, total_min=total / 60, table=table, table2=table2,
        n_train=n_train, n_test=n_test, n_val=int(round(args.validation * n_train)),
        pretrain_epochs=args.pretrain_epochs, epochs=args.epochs, epochs_2d=args.epochs_2d,
        lr=args.learning_rate, batch=args.batch_size, pretrain_rate=args.pretrain_rate,
        top_rate=args.top_rate, decay_epochs=" and ".join(map(str, args.decay_epochs)),
        machine=f"{platform.machine()}, {platform.python_version()}",
        best_2d=best_epoch(curves["2-D autoencoder"]), n_2d=curves["2-D autoencoder"].size,
        decay_epochs_2d=" + ".join(map(str, args.decay_epochs_2d)),
        time_2d=times["2-D autoencoder"])
    path.write_text(text)


TEMPLATE = """# Deep autoencoders on Fashion-MNIST

Hinton & Salakhutdinov (2006, *Science* 313) reduced MNIST digits to 30 numbers with a
784-1000-500-250-30 autoencoder: a stack of RBMs pretrained greedily (the top one with
linear hidden units), unrolled into an encoder and a decoder, and fine-tuned by backprop
on the reconstruction. This page repeats it on Fashion-MNIST with
`fastrbm.DBNAutoencoder`, against PCA with 30 components and against the same net
fine-tuned from random weights. Every number and figure here comes from one run of

    {command}

which took {total_min:.0f} minutes on this machine (2 shared cores; {machine}).

## Setup

- Data: {n_train} training and {n_test} test images, pixels in [0, 1]. The nets'
  binary visible units and logistic outputs fit that range; fine-tuning minimises the
  cross-entropy of the reconstruction, and the error reported is the squared error per
  image: the sum over the 784 pixels, the mean over the test images.
- Pretraining: CD-1, batches of 100, {pretrain_epochs} epochs per layer, learning rate
  {pretrain_rate} ({top_rate} for the top RBM's linear units), no momentum; the paper ran
  50 epochs per layer at 0.1 and 0.001 with momentum 0.9 (an effective step ten times its
  rate).
- Fine-tuning: Adam, learning rate {lr}, batches of {batch}, at most {epochs} epochs,
  then stages of at most {decay_epochs} epochs, each at a tenth of the previous rate and
  continuing from the best weights so far; the same budget for the random-init net. The schedule is chosen on a
  validation split:
  {n_val} of the training images are held out, and each net keeps the weights of its
  best validation epoch (`early_stopping=True`); the test images are used once, for the
  table.

## Reconstruction from 30 numbers

{table}

![test reconstructions](autoencoder_reconstructions.png)

Validation error during fine-tuning (the schedule chosen on it):

![validation curves](autoencoder_curves.png)

## Two-dimensional codes

A 784-1000-500-250-2 net, pretrained the same way and fine-tuned for at most
{epochs_2d} + {decay_epochs_2d} epochs (best validation epoch {best_2d} of {n_2d},
{time_2d:.0f} s), against
the first two principal components (the paper's Figure 3, here on Fashion-MNIST):

![2-D codes](autoencoder_codes_2d.png)

{table2}

## Reproduce

    {command}

`--quick` runs a smoke version on 6000 training and 1000 test images into `out/`.
"""


if __name__ == "__main__":
    main()
