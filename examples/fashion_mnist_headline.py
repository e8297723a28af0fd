"""Headline: a pretrained DBN on Fashion-MNIST
============================================

A pretrained DBNClassifier 784-500-500-2000-10 on Fashion-MNIST, its fine-tuning schedule
chosen on a validation split, three seeds, beside scikit-learn's MLPClassifier and an RBF
SVC measured in the same run.

The full-size run's results: :doc:`/headline`.

    python examples/fashion_mnist_headline.py                  # everything, docs/headline.md
    python examples/fashion_mnist_headline.py search           # the schedules on validation
    python examples/fashion_mnist_headline.py final --seeds 0 1 2
    python examples/fashion_mnist_headline.py peers --seeds 0 1 2
    python examples/fashion_mnist_headline.py report           # headline.md from the runs
    python examples/fashion_mnist_headline.py --quick          # a smoke run into out/

``search`` carves a stratified validation split of 5000 images from the 60000 training
images, fits the DBN with each candidate schedule on the other 55000 and scores it on the
validation images after its last epoch (the test images are not read). ``final`` refits the
schedule with the best validation accuracy on all 60000 training images for each seed and
scores it on the 10000 test images; ``peers`` does the same for MLPClassifier (at its
defaults, and with the DBN's layer sizes for the DBN's number of epochs) and an RBF SVC.
Each run is saved as one JSON file under ``<out>/headline_runs/``, so the stages can run in
separate processes; ``report`` writes ``headline.md`` from whatever runs are there.
"""
import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning


DBN_SETTINGS = dict(
    hidden_layer_sizes=(500, 500, 2000), activation="logistic",
    pretrain=True, pretrain_n_iter=1, pretrain_learning_rate=0.05, pretrain_batch_size=10,
    solver="adam", learning_rate_init=1e-3, batch_size=100, alpha=1e-4,
    early_stopping=False,  # a fixed schedule, chosen on the validation split below
)
# Candidate fine-tuning schedules: total epochs, of which the last `decay` run with a fresh
# Adam at a tenth of the step (warm_start=True), and dropout on the hidden layers.
SCHEDULES = {
    "30 epochs (22 + 8), dropout 0.2": dict(epochs=30, decay=8, dropout=0.2),
    "40 epochs (30 + 10), dropout 0.2": dict(epochs=40, decay=10, dropout=0.2),
    "40 epochs (30 + 10), dropout 0.3": dict(epochs=40, decay=10, dropout=0.3),
}
QUICK_SCHEDULES = {
    "3 epochs (2 + 1), dropout 0.2": dict(epochs=3, decay=1, dropout=0.2),
    "3 epochs (2 + 1), dropout 0.0": dict(epochs=3, decay=1, dropout=0.0),
}
# headline.md keeps what follows this line (written by hand) when it is rewritten.
KEEP_MARKER = "<!-- written by hand below; examples/fashion_mnist_headline.py keeps it -->"
VALIDATION = 5000
SVC_TRAIN = 60000
LAYERS = "-".join(map(str, DBN_SETTINGS["hidden_layer_sizes"]))
MLP_DEFAULTS = "scikit-learn MLPClassifier, defaults (100 ReLU, Adam, batch 200, up to 200 epochs)"
MLP_SAME = f"scikit-learn MLPClassifier, {LAYERS} ReLU, Adam, batch 200"


def log(text):
    print(text, file=sys.stderr, flush=True)


def timed(fit):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = fit()
    return model, time.perf_counter() - start


def fit_dbn(X, y, schedule, seed, n_jobs):
    """Pretrain and fine-tune one DBN with a fixed schedule; return it and its fit time."""
    from fastrbm import DBNClassifier

    dbn = DBNClassifier(**DBN_SETTINGS, dropout=schedule["dropout"],
                        max_iter=schedule["epochs"] - schedule["decay"],
                        random_state=seed, n_jobs=n_jobs)
    _, seconds = timed(lambda: dbn.fit(X, y))
    # Step decay: warm_start refits from the current weights with a fresh Adam.
    dbn.set_params(warm_start=True, max_iter=schedule["decay"],
                   learning_rate_init=DBN_SETTINGS["learning_rate_init"] / 10)
    _, decay_seconds = timed(lambda: dbn.fit(X, y))
    return dbn, seconds + decay_seconds


class Runs:
    """One JSON file per finished run, so stages can run in separate processes."""

    def __init__(self, folder):
        self.folder = Path(folder) / "headline_runs"

    def save(self, kind, name, seed, **values):
        self.folder.mkdir(parents=True, exist_ok=True)
        slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        record = dict(kind=kind, name=name, seed=seed, machine=platform.machine(),
                      date=time.strftime("%Y-%m-%d"), **values)
        (self.folder / f"{kind}-{slug}-seed{seed}.json").write_text(json.dumps(record, indent=1))
        log(f"{kind} | {name} | seed {seed}: " + ", ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()))

    def load(self, kind):
        return [json.loads(p.read_text()) for p in sorted(self.folder.glob(f"{kind}-*.json"))]


def search(data, runs, schedules, seed, n_jobs):
    from sklearn.model_selection import train_test_split

    X, y = data["train"]
    X_fit, X_val, y_fit, y_val = train_test_split(
        X, y, test_size=data["validation"], stratify=y, random_state=0)
    for name, schedule in schedules.items():
        dbn, seconds = fit_dbn(X_fit, y_fit, schedule, seed, n_jobs)
        runs.save("search", name, seed, validation_accuracy=float(dbn.score(X_val, y_val)),
                  fit_seconds=seconds, training_images=len(X_fit),
                  validation_images=len(X_val), **schedule)


def best_searched(searched):
    """The name of the schedule with the highest validation accuracy."""
    return max(searched, key=lambda r: r["validation_accuracy"])["name"]


def chosen_schedule(runs, schedules):
    searched = runs.load("search")
    if not searched:
        raise SystemExit("no search results: run the 'search' stage first")
    name = best_searched(searched)
    return name, schedules[name]


def final(data, runs, schedules, seeds, n_jobs):
    name, schedule = chosen_schedule(runs, schedules)
    (X, y), (X_test, y_test) = data["train"], data["test"]
    for seed in seeds:
        dbn, seconds = fit_dbn(X, y, schedule, seed, n_jobs)
        runs.save("final", name, seed, test_accuracy=float(dbn.score(X_test, y_test)),
                  fit_seconds=seconds, training_images=len(X), **schedule)


def peers(data, runs, seeds, svc_train, mlp_epochs):
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    (X, y), (X_test, y_test) = data["train"], data["test"]
    for seed in seeds:
        mlp, seconds = timed(lambda: MLPClassifier(random_state=seed).fit(X, y))
        runs.save("peer", MLP_DEFAULTS, seed, test_accuracy=float(mlp.score(X_test, y_test)),
                  fit_seconds=seconds, epochs=mlp.n_iter_, training_images=len(X))
        mlp, seconds = timed(lambda: MLPClassifier(
            hidden_layer_sizes=DBN_SETTINGS["hidden_layer_sizes"], max_iter=mlp_epochs,
            random_state=seed).fit(X, y))
        runs.save("peer", MLP_SAME, seed, test_accuracy=float(mlp.score(X_test, y_test)),
                  fit_seconds=seconds, epochs=mlp.n_iter_, training_images=len(X))
    # The SVC has no randomness on the full training set; on a subset, seed 0 draws it.
    idx = np.random.RandomState(0).permutation(len(X))[:svc_train]
    svc, seconds = timed(lambda: SVC(kernel="rbf").fit(X[idx], y[idx]))
    runs.save("peer", f"scikit-learn SVC (RBF, C=1, gamma='scale'), {len(idx)} training images",
              0, test_accuracy=float(svc.score(X_test, y_test)), fit_seconds=seconds,
              training_images=len(idx))


def summary(values):
    values = np.asarray(values)
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"


def report(runs, out, command):
    searched = runs.load("search")
    lines = [
        "# Headline: a pretrained DBN on Fashion-MNIST",
        "",
        f"Measured by `{command}` (its stages in separate processes); every fit uses "
        "one thread (`n_jobs=1`, BLAS limited to one thread) on a 2-core x86-64 machine. "
        "Test accuracy is on the 10000 test images, mean ± standard deviation over the "
        "seeds listed; fit time is wall-clock seconds (the DBN's includes its "
        "pretraining).",
        "",
        "## The schedule, chosen on validation",
        "",
        "A stratified split of the training images: "
        f"{searched[0]['validation_images'] if searched else '-'} for validation, the "
        "rest for fitting. Each candidate schedule fits the DBN once (seed 0) and is scored "
        "after its last epoch; the test images are not read.",
        "",
        "| fine-tuning schedule | seed | training images | fit time (s) | validation accuracy |",
        "|---|---|---|---|---|",
    ]
    for r in searched:
        lines.append(f"| {r['name']} | {r['seed']} | {r['training_images']} | "
                     f"{r['fit_seconds']:.0f} | {r['validation_accuracy']:.4f} |")
    best = best_searched(searched) if searched else "-"
    lines += [
        "",
        f"Chosen: **{best}**.",
        "",
        "## Test accuracy: the chosen schedule on all the training images",
        "",
        "| model | training images | epochs | fit time (s), mean | test accuracy per seed | "
        "test accuracy |",
        "|---|---|---|---|---|---|",
    ]
    groups = {}
    for r in runs.load("final") + runs.load("peer"):
        label = (f"fastrbm DBNClassifier {LAYERS}, pretrained, " + r["name"]
                 if r["kind"] == "final" else r["name"])
        groups.setdefault(label, []).append(r)
    for label, rs in groups.items():
        epochs = sorted({r.get("epochs", "-") for r in rs}, key=str)
        lines.append(
            f"| {label} | {rs[0]['training_images']} | {', '.join(map(str, epochs))} | "
            f"{np.mean([r['fit_seconds'] for r in rs]):.0f} | "
            + ", ".join(f"{r['test_accuracy']:.4f} ({r['seed']})" for r in rs) + " | "
            f"{summary([r['test_accuracy'] for r in rs])} |")
    s = DBN_SETTINGS
    lines += [
        "",
        f"DBN settings: pretraining CD-1, {s['pretrain_n_iter']} epoch per RBM, learning "
        f"rate {s['pretrain_learning_rate']}, batch {s['pretrain_batch_size']}; fine-tuning "
        f"{s['solver']}, batch {s['batch_size']}, L2 alpha {s['alpha']}, learning rate "
        f"{s['learning_rate_init']}, then a fresh Adam at a tenth of it for the last epochs "
        "(`warm_start=True`). No early stopping: every run trains for its schedule's epochs.",
        "",
        "The MLP with the DBN's layer sizes trains for the DBN's number of epochs (its other "
        "parameters at their defaults); the MLP at its defaults stops by its own rule (no "
        "improvement of the training loss by 1e-4 for 10 epochs, at most 200).",
    ]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "headline.md"
    previous = path.read_text() if path.exists() else ""
    kept = previous[previous.index(KEEP_MARKER):] if KEEP_MARKER in previous else ""
    path.write_text("\n".join(lines) + "\n" + ("\n" + kept if kept else ""))
    print("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", nargs="?", default="all",
                        choices=["all", "search", "final", "peers", "report"])
    parser.add_argument("--quick", action="store_true",
                        help="5000 training images, 3 epochs, 1000 for validation: a smoke run")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for headline.md and headline_runs/ (docs/; quick: out/)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--svc-train", type=int, default=SVC_TRAIN,
                        help=f"SVC training images ({SVC_TRAIN})")
    parser.add_argument("--n-jobs", type=int, default=1, help="threads per DBN (1)")
    args = parser.parse_args(argv)
    out = args.out or Path("out" if args.quick else "docs")
    runs = Runs(out)
    schedules = QUICK_SCHEDULES if args.quick else SCHEDULES

    from threadpoolctl import threadpool_limits

    from fastrbm.datasets import load_fashion_mnist

    data = None
    if args.stage != "report":
        (X, y), (X_test, y_test) = load_fashion_mnist()  # float32, pixels / 255
        data = dict(train=(X, y), test=(X_test, y_test), validation=VALIDATION)
        if args.quick:
            data = dict(train=(X[:5000], y[:5000]), test=(X_test[:2000], y_test[:2000]),
                        validation=1000)
    with threadpool_limits(limits=1, user_api="blas"):
        if args.stage in ("all", "search"):
            search(data, runs, schedules, 0, args.n_jobs)
        if args.stage in ("all", "final"):
            final(data, runs, schedules, args.seeds, args.n_jobs)
        if args.stage in ("all", "peers"):
            mlp_epochs = chosen_schedule(runs, schedules)[1]["epochs"]
            peers(data, runs, args.seeds,
                  min(args.svc_train, len(data["train"][0])), mlp_epochs)
    command = "python examples/fashion_mnist_headline.py" + (" --quick" if args.quick else "")
    report(runs, out, command)


if __name__ == "__main__":
    main()
