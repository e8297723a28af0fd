"""Headline: a pretrained DBNClassifier 784-500-500-2000-10 on Fashion-MNIST, next to
scikit-learn's MLPClassifier (its defaults: one hidden layer of 100 ReLU units, Adam) and an
RBF SVC, measured in the same run.

    python examples/fashion_mnist_headline.py            # writes docs/headline.md
    python examples/fashion_mnist_headline.py --quick    # 5000 training images, out/

The DBN: greedy CD-1 pretraining of the 500-500-2000 stack on all 60000 training images
(pixels / 255), then fine-tuning of the unrolled net with a softmax output layer. Test
accuracy is on all 10000 test images after the fixed number of epochs (no early stopping, no
choice by test score); the test accuracy after each epoch is printed for information only.
Every time is wall-clock seconds of ``fit`` measured here; the SVC's training-set size is
stated in the table.
"""
import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

ROOT = Path(__file__).resolve().parent.parent

DBN_SETTINGS = dict(
    hidden_layer_sizes=(500, 500, 2000), activation="logistic",
    pretrain=True, pretrain_n_iter=1, pretrain_learning_rate=0.05, pretrain_batch_size=10,
    solver="adam", learning_rate_init=1e-3, batch_size=100, alpha=1e-4, dropout=0.2,
    early_stopping=False,  # the fixed schedule below, not the default held-out split
)
# headline.md keeps what follows this line (a second seed, caveats) when it is rewritten.
KEEP_MARKER = "<!-- written by hand below; examples/fashion_mnist_headline.py keeps it -->"
DBN_EPOCHS = 30
DECAY_EPOCHS = 8  # the last epochs run with a fresh Adam at a tenth of the learning rate
MLP_EPOCHS = DBN_EPOCHS
SVC_TRAIN = 10000


def timed(fit):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = fit()
    return model, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="5000 training images, 3 epochs, SVC on 2000: a smoke run")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for headline.md (docs/; with --quick: out/)")
    parser.add_argument("--skip", default="", help="comma-separated peers to skip: mlp,svc")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    args = parser.parse_args(argv)
    out = args.out or ROOT / ("out" if args.quick else "docs")
    skip = set(filter(None, args.skip.split(",")))

    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    from fastrbm import DBNClassifier
    from fastrbm.datasets import load_fashion_mnist

    (X, y), (X_test, y_test) = load_fashion_mnist()  # float32, pixels / 255
    dbn_epochs, mlp_epochs, svc_train = DBN_EPOCHS, MLP_EPOCHS, SVC_TRAIN
    if args.quick:
        X, y = X[:5000], y[:5000]
        dbn_epochs, mlp_epochs, svc_train = 3, 3, 2000
    settings = DBN_SETTINGS
    rows = []

    def log(text):
        print(text, file=sys.stderr, flush=True)

    # DBN: partial_fit, one epoch per call (the first call also pretrains; the optimizer
    # state carries over between calls exactly as in fit), so the test accuracy after each
    # epoch can be shown. A step decay for the last epochs: warm_start=True refits from the
    # current weights with a fresh Adam at a tenth of the step, then partial_fit continues it.
    dbn = DBNClassifier(**settings, max_iter=dbn_epochs, random_state=args.seed)
    classes = np.unique(y)
    decay_from = dbn_epochs - (1 if args.quick else DECAY_EPOCHS)
    per_epoch, fit_seconds, pretrain_seconds = [], 0.0, None
    for epoch in range(dbn_epochs):
        if epoch == decay_from:
            dbn.set_params(warm_start=True, max_iter=1,
                           learning_rate_init=settings["learning_rate_init"] / 10)
            _, seconds = timed(lambda: dbn.fit(X, y))
        else:
            _, seconds = timed(lambda: dbn.partial_fit(X, y, classes=classes))
        fit_seconds += seconds
        if epoch == 0:
            pretrain_seconds = seconds
        per_epoch.append(dbn.score(X_test, y_test))
        log(f"DBN epoch {epoch + 1}: {seconds:.1f} s, test accuracy {per_epoch[-1]:.4f}")
    assert dbn.n_iter_ == dbn_epochs
    rows.append(("fastrbm DBNClassifier, pretrained", f"{len(X)}", dbn_epochs, fit_seconds,
                 per_epoch[-1]))

    if "mlp" not in skip:
        mlp2, seconds = timed(lambda: MLPClassifier(
            max_iter=mlp_epochs, random_state=args.seed).fit(X, y))
        rows.append(("scikit-learn MLPClassifier (defaults: 100 ReLU, Adam, batch 200)",
                     f"{len(X)}", mlp2.n_iter_, seconds, mlp2.score(X_test, y_test)))
        log(f"MLP defaults: {seconds:.1f} s, test accuracy {rows[-1][-1]:.4f}")
    if "svc" not in skip:
        idx = np.random.RandomState(args.seed).permutation(len(X))[:svc_train]
        svc, seconds = timed(lambda: SVC(kernel="rbf").fit(X[idx], y[idx]))
        start = time.perf_counter()
        acc = svc.score(X_test, y_test)
        rows.append((f"scikit-learn SVC (RBF, C=1, gamma='scale'), random {svc_train}-image "
                     "training subset", f"{svc_train}", "-", seconds, acc))
        log(f"SVC: fit {seconds:.1f} s, predict {time.perf_counter() - start:.1f} s, "
            f"test accuracy {acc:.4f}")

    command = "python examples/fashion_mnist_headline.py" + (" --quick" if args.quick else "")
    lines = [
        "# Headline: a pretrained DBN on Fashion-MNIST",
        "",
        f"Measured by `{command}` (seed {args.seed}) on {platform.machine()}, 2 cores "
        "(fastrbm and the MLP use both cores through BLAS; scikit-learn's SVC runs on one), "
        "in one run. Test accuracy on all 10000 test images, after the fixed number of "
        "epochs; fit time is wall-clock seconds (the DBN's includes its pretraining).",
        "",
        "| model | training images | epochs | fit time (s) | test accuracy |",
        "|---|---|---|---|---|",
    ]
    for name, n, epochs, seconds, acc in rows:
        lines.append(f"| {name} | {n} | {epochs} | {seconds:.0f} | {acc:.4f} |")
    s = settings
    lines += [
        "",
        f"DBN settings: pretraining CD-1, {s['pretrain_n_iter']} epoch(s) per RBM, learning "
        f"rate {s['pretrain_learning_rate']}, batch {s['pretrain_batch_size']} "
        f"({pretrain_seconds:.0f} s for pretraining plus the first fine-tuning epoch); "
        f"fine-tuning {s['solver']}, batch {s['batch_size']}, dropout {s['dropout']} on the "
        f"hidden layers, L2 alpha {s['alpha']}, {dbn_epochs} epochs: {decay_from} at learning "
        f"rate {s['learning_rate_init']}, then {dbn_epochs - decay_from} with a fresh Adam "
        f"(`warm_start=True`) at {s['learning_rate_init'] / 10:g}.",
        "",
        "DBN test accuracy after each fine-tuning epoch (for information; the table reports "
        "the last): " + ", ".join(f"{a:.4f}" for a in per_epoch),
    ]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "headline.md"
    previous = path.read_text() if path.exists() else ""
    kept = previous[previous.index(KEEP_MARKER):] if KEEP_MARKER in previous else ""
    path.write_text("\n".join(lines) + "\n" + ("\n" + kept if kept else ""))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
