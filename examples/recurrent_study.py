"""The vanishing gradient through time
====================================

Plain recurrent nets against the LSTM, measured.

The full-size run's results: :doc:`/recurrent`.

Backpropagation through time multiplies the error signal by the recurrent Jacobian once per
step, so in a plain recurrent net the gradient reaching early steps shrinks (or, with large
recurrent weights, grows) geometrically with the distance to the output (Bengio, Simard &
Frasconi 1994; Pascanu, Mikolov & Bengio 2013); the LSTM's additive cell state carries it
(Hochreiter & Schmidhuber 1997); identity-initialised ReLU nets (the IRNN of Le, Jaitly &
Hinton 2015) start with a Jacobian near the identity. Three parts, fixed seeds:

1. The adding problem (``make_adding_problem``) at 10, 25, 50, 100 and 200 steps: a sigmoid
   RNN, a tanh RNN, the tanh RNN with gradient clipping, the IRNN (with clipping) and the
   LSTM, every one with the same training sequences and the same optimiser budget (epochs,
   batch size, Adam learning rate). The learning rate is chosen on a validation split at
   100 steps; the test sequences are used once per model, for the tables.
2. Exploding gradients: a tanh RNN whose recurrent matrix has every singular value 3
   (``recurrent_init="orthogonal", init_scale=3``), trained with Adam and with SGD, each
   with and without clipping.
3. Fashion-MNIST read row by row (28 steps of 28 pixels): an LSTM and a tanh RNN of 128
   units, learning rate and number of epochs chosen by early stopping on a 10000-image
   validation split of the 60000 training images, then evaluated once on the 10000 test
   images.

Run from the repository root:

    python examples/recurrent_study.py            # the committed docs/ (25 min on 2 cores)
    python examples/recurrent_study.py --quick    # a smoke version into out/ (about a minute)

It writes into ``--out`` (default ``docs/``; ``out/`` with ``--quick``): the tables at the end
of ``recurrent.md`` (the report text above them is kept), ``recurrent_results.json`` (every
number), ``recurrent_adding_mse.png``, ``recurrent_adding_gradients.png``,
``recurrent_exploding.png`` and ``recurrent_fashion.png``; it prints the tables as Markdown.
Part 3 needs Fashion-MNIST (``apt-get install -y dataset-fashion-mnist``); all figures need
matplotlib.
"""
import argparse
import datetime
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastrbm import RNNClassifier, RNNRegressor
from fastrbm.datasets import load_fashion_mnist, make_adding_problem
from fastrbm.diagnostics import gradient_through_time_summary


CLIP = 1.0  # max_grad_norm of the clipped models (fixed beforehand, not tuned)
WITHIN = 0.04  # a test sequence counts as solved when |prediction - target| < WITHIN
BASELINE = 1 / 6  # test MSE of predicting 1, the mean of the target

# label -> RNNRegressor settings beyond the shared ones
MODELS = {
    "sigmoid RNN": dict(cell="sigmoid"),
    "tanh RNN": dict(cell="tanh"),
    "tanh RNN + clipping": dict(cell="tanh", max_grad_norm=CLIP),
    "IRNN + clipping": dict(cell="relu", recurrent_init="identity", max_grad_norm=CLIP),
    "LSTM": dict(cell="lstm", forget_bias=1.0),
}

EXPLODING_SCALE = 3.0
SGD_LR = 0.01  # the estimator's default SGD rate (the SGD rows are there to diverge or not)


def settings(quick):
    """Sizes of the run (see the report for how they were chosen)."""
    if quick:
        return dict(steps=(10, 25, 50), select_steps=50, plot_steps=50, n_train=1000,
                    n_val=300, n_test=500, epochs=5, batch=32, units=32, lrs=(0.003,),
                    seeds=(0,), fashion_train=3000, fashion_val=1000, fashion_units=32,
                    fashion_lrs=(0.003,), fashion_epochs={"lstm": 2, "tanh": 2},
                    fashion_patience=2)
    return dict(steps=(10, 25, 50, 100, 200), select_steps=100, plot_steps=100,
                n_train=4000, n_val=1000, n_test=2000, epochs=25, batch=32, units=64,
                lrs=(0.003, 0.001, 0.0003), seeds=(0, 1, 2), fashion_train=None,
                fashion_val=10000, fashion_units=128, fashion_lrs=(0.001, 0.003),
                fashion_epochs={"lstm": 30, "tanh": 30}, fashion_patience=3)


def log(message):
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------
# shared helpers

def fit(model, X, y):
    """Fit, catching divergence: returns (seconds, epoch that diverged or None). On a
    FloatingPointError the estimator keeps the weights of the last finite epoch."""
    diverged = None
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            model.fit(X, y)
        except FloatingPointError:
            diverged = model.n_iter_ + 1
    return time.perf_counter() - start, diverged


def adding_data(n_steps, seed, run):
    """Training, validation and test sequences of one length, drawn from one seed."""
    n = run["n_train"] + run["n_val"] + run["n_test"]
    X, y = make_adding_problem(n, n_steps, random_state=1000 * seed + n_steps)
    a, b = run["n_train"], run["n_train"] + run["n_val"]
    return (X[:a], y[:a]), (X[a:b], y[a:b]), (X[b:], y[b:])


def adding_model(label, lr, seed, run, **extra):
    params = dict(hidden_layer_sizes=(run["units"],), solver="adam", learning_rate_init=lr,
                  batch_size=run["batch"], max_iter=run["epochs"], tol=0.0,
                  n_iter_no_change=run["epochs"] + 1, early_stopping=False, alpha=1e-4,
                  random_state=seed)
    params.update(MODELS.get(label, {}))
    params.update(extra)
    return RNNRegressor(**params)


def scores(model, X, y):
    err = model.predict(X) - y
    mse = float(np.mean(err ** 2)) if np.isfinite(err).all() else float("inf")
    return mse, float(np.mean(np.abs(err) < WITHIN))


def ratios(model):
    s = gradient_through_time_summary(model)["ratio"]
    return s["initial"], s["last_epoch"]


def fmt(x, digits=3):
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    if isinstance(x, float) and not np.isfinite(x):
        return "inf"
    return f"{x:.{digits}g}"


def spread(values, digits=3):
    """median [min, max] of several seeds; the value itself for one seed."""
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return fmt(float(values[0]), digits)
    return (f"{fmt(float(np.median(values)), digits)} [{fmt(float(values.min()), digits)}, "
            f"{fmt(float(values.max()), digits)}]")


# ----------------------------------------------------------------------------------------
# part 1: the adding problem

def fit_adding(label, lr, n_steps, seed, run, data):
    (X, y), (X_val, y_val), _ = data
    model = adding_model(label, lr, seed, run)
    seconds, diverged = fit(model, X, y)
    val_mse, _ = scores(model, X_val, y_val)
    log(f"  [adding {n_steps} steps, seed {seed}] {label}, lr {lr:g}: validation MSE "
        f"{val_mse:.4g}, {seconds:.1f} s" + (f", diverged in epoch {diverged}" if diverged
                                              else ""))
    return dict(model=model, seconds=seconds, diverged=diverged, val_mse=val_mse)


def select_learning_rate(run):
    """Every model at every candidate rate on seed 0's data at ``select_steps`` steps; the
    rate with the lowest mean validation MSE over the five models (each capped at the
    validation set's predict-the-training-mean MSE, so that one diverging model does not
    decide) is shared by all models."""
    n_steps, seed = run["select_steps"], run["seeds"][0]
    data = adding_data(n_steps, seed, run)
    (_, y), (_, y_val), _ = data
    cap = float(np.mean((y_val - y.mean()) ** 2))
    fits = {lr: {label: fit_adding(label, lr, n_steps, seed, run, data) for label in MODELS}
            for lr in run["lrs"]}
    criterion = {lr: float(np.mean([min(f["val_mse"], cap) for f in fits[lr].values()]))
                 for lr in run["lrs"]}
    best = min(run["lrs"], key=lambda lr: criterion[lr])
    return best, fits, criterion, cap, data


def run_adding(run):
    log("part 1: the adding problem; choosing the learning rate on the validation split")
    lr, selection, criterion, cap, select_data = select_learning_rate(run)
    log(f"  chosen learning rate: {lr:g}")
    results = []  # one record per (seed, n_steps, model)
    kept = {}  # models shown in the gradient figure
    for seed in run["seeds"]:
        for n_steps in run["steps"]:
            reuse = seed == run["seeds"][0] and n_steps == run["select_steps"]
            data = select_data if reuse else adding_data(n_steps, seed, run)
            X_test, y_test = data[2]
            for label in MODELS:
                f = selection[lr][label] if reuse else fit_adding(label, lr, n_steps, seed,
                                                                 run, data)
                model = f["model"]
                mse, within = scores(model, X_test, y_test)
                r_init, r_last = ratios(model)
                results.append(dict(
                    model=label, seed=seed, n_steps=n_steps, lr=lr, test_mse=mse,
                    test_within=within, val_mse=f["val_mse"], ratio_initial=r_init,
                    ratio_last_epoch=r_last, epochs_run=int(model.n_iter_),
                    diverged_in_epoch=f["diverged"], seconds=f["seconds"]))
                if seed == run["seeds"][0] and n_steps == run["plot_steps"]:
                    kept[label] = model
    selection_table = {str(l): {label: f["val_mse"] for label, f in fits.items()}
                       for l, fits in selection.items()}
    return dict(lr=lr, selection=selection_table, criterion={str(k): v for k, v in
                                                            criterion.items()},
                cap=cap, results=results), kept


def adding_tables(part, run):
    res = part["results"]
    steps, seeds = run["steps"], run["seeds"]

    def cell(label, n, key):
        return [r[key] for r in res if r["model"] == label and r["n_steps"] == n]

    seed_note = (f"median [min, max] over seeds {', '.join(map(str, seeds))}"
                 if len(seeds) > 1 else f"seed {seeds[0]}")
    head = "| model | " + " | ".join(f"{n} steps" for n in steps) + " |"
    rule = "|---|" + "---|" * len(steps)
    lines = [f"### Adding problem: choosing the learning rate (validation, "
             f"{run['select_steps']} steps, seed {seeds[0]})", "",
             "Validation MSE after the full budget; the criterion is the mean over the five "
             f"models, each capped at {part['cap']:.4f} (the validation MSE of predicting the "
             "training targets' mean).", "",
             "| model | " + " | ".join(f"Adam {lr}" for lr in part["selection"]) + " |",
             "|---|" + "---|" * len(part["selection"])]
    for label in MODELS:
        lines.append(f"| {label} | " + " | ".join(fmt(part["selection"][lr][label], 4)
                                                  for lr in part["selection"]) + " |")
    lines.append("| **criterion** | " + " | ".join(
        f"**{fmt(part['criterion'][lr], 4)}**" if float(lr) == part["lr"]
        else fmt(part["criterion"][lr], 4) for lr in part["criterion"]) + " |")
    lines += ["", f"Chosen: Adam learning rate {part['lr']:g} for every model.", ""]

    lines += [f"### Adding problem: test MSE ({seed_note}; baseline {BASELINE:.3f})", "",
              head, rule]
    for label in MODELS:
        lines.append(f"| {label} | " + " | ".join(spread(cell(label, n, "test_mse"))
                                                  for n in steps) + " |")
    lines += ["", f"### Adding problem: fraction of test sequences within {WITHIN} of the "
              f"target ({seed_note})", "", head, rule]
    for label in MODELS:
        lines.append(f"| {label} | " + " | ".join(spread(cell(label, n, "test_within"), 2)
                                                  for n in steps) + " |")
    lines += ["", "### Adding problem: first-to-last-step gradient ratio "
              "||dL/dh_0|| / ||dL/dh_T-1|| at initialisation -> over the last epoch "
              f"(median over {len(seeds)} seed(s))", "", head, rule]
    for label in MODELS:
        cells = []
        for n in steps:
            init = np.median(cell(label, n, "ratio_initial"))
            last = [v for v in cell(label, n, "ratio_last_epoch") if v is not None]
            cells.append(f"{fmt(float(init), 2)} -> "
                         f"{fmt(float(np.median(last)), 2) if last else '-'}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "### Adding problem: fit time in seconds (median over seeds) and "
              "divergences", "", head, rule]
    for label in MODELS:
        cells = []
        for n in steps:
            div = [d for d in cell(label, n, "diverged_in_epoch") if d]
            cells.append(f"{np.median(cell(label, n, 'seconds')):.1f}"
                         + (f" ({len(div)} diverged, epochs {div})" if div else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def adding_figures(part, kept, run, out, plt):
    import matplotlib.ticker

    from fastrbm.plotting import plot_gradient_norms_through_time

    n = run["plot_steps"]
    fig, axes = plt.subplots(1, len(kept), figsize=(4.2 * len(kept), 3.8))
    for ax, (label, model) in zip(np.atleast_1d(axes), kept.items()):
        mse = next(r["test_mse"] for r in part["results"] if r["model"] == label
                   and r["n_steps"] == n and r["seed"] == run["seeds"][0])
        plot_gradient_norms_through_time(model, ax=ax, title=f"{label}\ntest MSE {mse:.3g}")
        ax.legend(fontsize="x-small", loc="best")
    fig.suptitle(f"||dL/dh_t|| against t, adding problem, {n} steps (seed "
                 f"{run['seeds'][0]}; epoch 0 = initial weights)")
    fig.tight_layout()
    fig.savefig(out / "recurrent_adding_gradients.png", dpi=80)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    steps = np.array(run["steps"])
    for k, label in enumerate(MODELS):
        values = np.array([[r["test_mse"] for r in part["results"] if r["model"] == label
                            and r["n_steps"] == s] for s in steps])
        values = np.minimum(values, 10.0)
        med = np.median(values, axis=1)
        ax.errorbar(steps * (1 + 0.03 * (k - 2)), med,
                    yerr=[med - values.min(axis=1), values.max(axis=1) - med],
                    marker="o", capsize=3, label=label)
    ax.axhline(BASELINE, color="grey", ls="--", label="predict 1 (0.167)")
    ax.axhline(0.01, color="grey", ls=":", label="goal 0.01")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xticks(steps, [str(s) for s in steps])
    ax.set_xlabel("sequence length (steps)")
    ax.set_ylabel("test MSE")
    ax.set_title(f"Adding problem, same budget for every model (Adam {part['lr']:g}, "
                 f"{run['epochs']} epochs);\nmedian and range over {len(run['seeds'])} "
                 "seed(s)", fontsize="medium")
    ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "recurrent_adding_mse.png", dpi=80)


# ----------------------------------------------------------------------------------------
# part 2: exploding gradients

def run_exploding(run, lr):
    n_steps = run["plot_steps"]
    seed = run["seeds"][0]
    (X, y), _, (X_test, y_test) = adding_data(n_steps, seed, run)
    variants = {
        "Adam, no clipping": dict(),
        f"Adam, clipping {CLIP:g}": dict(max_grad_norm=CLIP),
        "SGD, no clipping": dict(solver="sgd", learning_rate_init=SGD_LR, momentum=0.9),
        f"SGD, clipping {CLIP:g}": dict(solver="sgd", learning_rate_init=SGD_LR,
                                        momentum=0.9, max_grad_norm=CLIP),
    }
    log(f"part 2: exploding gradients (tanh, radius {EXPLODING_SCALE:g}, {n_steps} steps)")
    # the initial weights, checked: a fit whose only step is negligibly small
    probe = adding_model("tanh RNN", 1e-300, seed, run, solver="sgd", momentum=0.0,
                         max_iter=1, init_scale=EXPLODING_SCALE, alpha=0.0)
    fit(probe, X[:run["batch"]], y[:run["batch"]])
    U, W = probe.coefs_.U[0], probe.coefs_.W[0]
    sv = np.linalg.svd(U, compute_uv=False)
    weights = dict(U_singular_min=float(sv.min()), U_singular_max=float(sv.max()),
                   U_spectral_radius=float(np.abs(np.linalg.eigvals(U)).max()),
                   W_abs_max=float(np.abs(W).max()),
                   W_default_bound=float(np.sqrt(6.0 / (W.shape[0] + W.shape[1]))))
    rows, models = {}, {}
    for label, extra in variants.items():
        model = adding_model("tanh RNN", extra.pop("learning_rate_init", lr), seed, run,
                             init_scale=EXPLODING_SCALE, **extra)
        seconds, diverged = fit(model, X, y)
        mse, within = scores(model, X_test, y_test) if model.n_iter_ else (None, None)
        s = gradient_through_time_summary(model)
        rows[label] = dict(
            solver=model.solver, lr=model.learning_rate_init,
            max_grad_norm=model.max_grad_norm, epochs_run=int(model.n_iter_),
            diverged_in_epoch=diverged, test_mse=mse, test_within=within,
            initial_first=float(s["initial"][0]), initial_last=float(s["initial"][-1]),
            ratio_initial=s["ratio"]["initial"], ratio_first_epoch=s["ratio"]["first_epoch"],
            ratio_last_epoch=s["ratio"]["last_epoch"],
            initial_param_grad_norms=[float(v) for v in model.initial_gradient_norms_],
            final_training_loss=model.loss_curve_[-1] if model.loss_curve_ else None,
            U_abs_max_after=float(np.abs(model.coefs_.U[0]).max()),
            W_out_abs_max_after=float(np.abs(model.coefs_.W_out).max()), seconds=seconds)
        models[label] = model
        log(f"  {label}: " + (f"diverged in epoch {diverged}" if diverged else
                              f"test MSE {mse:.4g}") + f", {seconds:.1f} s")
    return dict(n_steps=n_steps, seed=seed, weights=weights, variants=rows), models


def exploding_tables(part, reference):
    w = part["weights"]
    lines = [f"### Exploding gradients: tanh RNN, recurrent weights x{EXPLODING_SCALE:g}, "
             f"adding problem, {part['n_steps']} steps (seed {part['seed']})", "",
             f"Initial weights, checked on `coefs_`: the singular values of U lie in "
             f"[{w['U_singular_min']:.4f}, {w['U_singular_max']:.4f}], its spectral radius "
             f"is {w['U_spectral_radius']:.4f}; `init_scale` also scales the input weights W: "
             f"max |W| = {w['W_abs_max']:.3f} against the default Glorot bound "
             f"{w['W_default_bound']:.3f} (and the output layer's likewise).", "",
             "| training | ‖dL/dh_0‖ at init | ‖dL/dh_T-1‖ at init | ratio at init | "
             "outcome | ratio, epoch 1 | ratio, last epoch | last training loss | "
             "max abs U, W_out after | test MSE | within 0.04 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    if reference is not None:
        s = gradient_through_time_summary(reference)
        lines.append(f"| (default tanh RNN, x1, for reference) | {fmt(float(s['initial'][0]))} "
                     f"| {fmt(float(s['initial'][-1]))} | {fmt(s['ratio']['initial'])} | "
                     "see part 1 | | | | | | |")
    for label, r in part["variants"].items():
        lr = f"{label} (lr {r['lr']:g})"
        outcome = (f"FloatingPointError in epoch {r['diverged_in_epoch']} "
                   f"({r['epochs_run']} epochs kept)" if r["diverged_in_epoch"]
                   else f"trained {r['epochs_run']} epochs")
        lines.append(f"| {lr} | {fmt(r['initial_first'])} | {fmt(r['initial_last'])} | "
                     f"{fmt(r['ratio_initial'])} | {outcome} | {fmt(r['ratio_first_epoch'])} | "
                     f"{fmt(r['ratio_last_epoch'])} | {fmt(r['final_training_loss'])} | "
                     f"{fmt(r['U_abs_max_after'])}, {fmt(r['W_out_abs_max_after'])} | "
                     f"{fmt(r['test_mse'], 4)} | "
                     f"{fmt(r['test_within'], 2)} |")
    return lines


def exploding_figure(part, models, reference, run, out, plt):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    any_model = next(iter(models.values()))
    ax.plot(any_model.initial_gradient_norms_through_time_,
            label=f"tanh, radius {EXPLODING_SCALE:g}")
    if reference is not None:
        ax.plot(reference.initial_gradient_norms_through_time_, label="tanh, radius 1")
    ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.set_ylabel("||dL/dh_t|| at initialisation")
    ax.set_title("Gradient through time at the initial weights")
    ax.legend(fontsize="small")
    for label, model in models.items():
        if model.n_iter_:
            axes[1].plot(np.arange(1, model.n_iter_ + 1), model.loss_curve_, marker=".",
                         label=label)
            ratio = np.r_[part["variants"][label]["ratio_initial"],
                          model.gradient_norms_through_time_[:, 0]
                          / model.gradient_norms_through_time_[:, -1]]
            zero = np.flatnonzero(ratio == 0)
            axes[2].plot(np.arange(0, model.n_iter_ + 1), np.where(ratio > 0, ratio, np.nan),
                         marker=".", label=label + (f" (ratio 0 from epoch {zero[0]}: not "
                                                    "drawn)" if zero.size else ""))
        else:
            axes[1].plot([], [], label=f"{label}: diverged in epoch 1")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("training loss (standardised targets)")
    axes[1].set_title("Learning curves")
    axes[1].legend(fontsize="small")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("epoch (0 = initial weights)")
    axes[2].set_ylabel("||dL/dh_0|| / ||dL/dh_T-1||")
    axes[2].set_title("First-to-last-step gradient ratio")
    axes[2].legend(fontsize="small")
    fig.suptitle(f"Tanh RNN with recurrent weights x{EXPLODING_SCALE:g}, adding problem, "
                 f"{part['n_steps']} steps")
    fig.tight_layout()
    fig.savefig(out / "recurrent_exploding.png", dpi=80)


# ----------------------------------------------------------------------------------------
# part 3: Fashion-MNIST row by row

def run_fashion(run, seed):
    (X, y), (X_test, y_test) = load_fashion_mnist(as_sequences=True)
    if run["fashion_train"]:  # quick: a random subset
        idx = np.random.RandomState(seed).permutation(len(X))[
            :run["fashion_train"] + run["fashion_val"]]
        X, y = X[idx], y[idx]
    fraction = run["fashion_val"] / len(X)
    log(f"part 3: Fashion-MNIST row by row, {len(X)} training images "
        f"({run['fashion_val']} held out for validation)")
    fits, models = [], {}
    for cell in ("lstm", "tanh"):
        for lr in run["fashion_lrs"]:
            model = RNNClassifier(
                (run["fashion_units"],), cell=cell, learning_rate_init=lr, batch_size=64,
                max_iter=run["fashion_epochs"][cell], early_stopping=True,
                validation_fraction=fraction, n_iter_no_change=run["fashion_patience"],
                tol=0.0, random_state=seed)
            seconds, diverged = fit(model, X, y)
            scores_ = model.validation_scores_ or []
            fits.append(dict(cell=cell, lr=lr, seconds=seconds, diverged_in_epoch=diverged,
                             epochs_run=int(model.n_iter_),
                             seconds_per_epoch=seconds / max(1, model.n_iter_),
                             best_epoch=int(np.argmax(scores_)) + 1 if scores_ else None,
                             best_validation_accuracy=model.best_validation_score_,
                             validation_curve=[float(v) for v in scores_]))
            models[cell, lr] = model
            log(f"  {cell}, lr {lr:g}: best validation accuracy "
                f"{model.best_validation_score_:.4f} in epoch {fits[-1]['best_epoch']} of "
                f"{model.n_iter_}, {seconds:.0f} s")
    chosen = {}
    for cell in ("lstm", "tanh"):
        best = max((f for f in fits if f["cell"] == cell),
                   key=lambda f: f["best_validation_accuracy"])
        best["chosen"] = True
        best["test_accuracy"] = float(models[cell, best["lr"]].score(X_test, y_test))
        chosen[cell] = models[cell, best["lr"]]
    return dict(n_train=len(X) - run["fashion_val"], n_val=run["fashion_val"], seed=seed,
                units=run["fashion_units"], fits=fits), chosen


def fashion_tables(part):
    lines = [f"### Fashion-MNIST row by row ({part['units']} units, batch 64, Adam; "
             f"{part['n_train']} training / {part['n_val']} validation images; seed "
             f"{part['seed']})", "",
             "| cell | learning rate | epochs run | best epoch | best validation accuracy | "
             "chosen | test accuracy | s per epoch | fit time (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for f in part["fits"]:
        lines.append(
            f"| {f['cell']} | {f['lr']:g} | {f['epochs_run']}"
            + (f" (diverged in epoch {f['diverged_in_epoch']})" if f["diverged_in_epoch"]
               else "")
            + f" | {f['best_epoch']} | {f['best_validation_accuracy']:.4f} | "
            f"{'yes' if f.get('chosen') else ''} | "
            f"{fmt(f.get('test_accuracy'), 4)} | {f['seconds_per_epoch']:.1f} | "
            f"{f['seconds']:.0f} |")
    return lines


def fashion_figure(part, chosen, out, plt):
    from fastrbm.plotting import plot_gradient_norms_through_time

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for f in part["fits"]:
        axes[0].plot(np.arange(1, len(f["validation_curve"]) + 1), f["validation_curve"],
                     marker=".", label=f"{f['cell']}, lr {f['lr']:g}"
                     + (" (chosen)" if f.get("chosen") else ""))
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("validation accuracy")
    axes[0].set_title("Validation accuracy per epoch")
    axes[0].legend(fontsize="small")
    for ax, cell in zip(axes[1:], ("lstm", "tanh")):
        f = next(f for f in part["fits"] if f["cell"] == cell and f.get("chosen"))
        plot_gradient_norms_through_time(
            chosen[cell], ax=ax, title=f"{cell}, lr {f['lr']:g}: test accuracy "
            f"{f['test_accuracy']:.4f}")
        ax.legend(fontsize="x-small", loc="best")
    fig.suptitle("Fashion-MNIST read row by row (28 steps of 28 pixels)")
    fig.tight_layout()
    fig.savefig(out / "recurrent_fashion.png", dpi=80)


# ----------------------------------------------------------------------------------------

def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh
                     if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{os.cpu_count()}-core {cpu} ({platform.machine()}, Python {platform.python_version()})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run of about a minute (fewer, shorter sequences, one "
                             "seed, a few epochs) into out/")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the report, results and PNGs (docs/; with --quick: "
                             "out/, which git ignores)")
    parser.add_argument("--skip-fashion", action="store_true",
                        help="leave out part 3 (Fashion-MNIST)")
    args = parser.parse_args(argv)
    run = settings(args.quick)
    if args.out is None:
        args.out = Path("out" if args.quick else "docs")
    args.out.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    started = datetime.datetime.now().astimezone()
    start = time.perf_counter()
    timings = {}
    adding, kept = run_adding(run)
    adding_figures(adding, kept, run, args.out, plt)
    timings["adding"] = time.perf_counter() - start
    t = time.perf_counter()
    exploding, exploding_models = run_exploding(run, adding["lr"])
    reference = kept.get("tanh RNN")
    exploding_figure(exploding, exploding_models, reference, run, args.out, plt)
    timings["exploding"] = time.perf_counter() - t
    fashion = None
    if not args.skip_fashion:
        t = time.perf_counter()
        fashion, chosen = run_fashion(run, run["seeds"][0])
        fashion_figure(fashion, chosen, args.out, plt)
        timings["fashion"] = time.perf_counter() - t
    total = time.perf_counter() - start

    command = "python examples/recurrent_study.py" + (" --quick" if args.quick else "") \
        + (" --skip-fashion" if args.skip_fashion else "")
    header = [
        f"Measured by `{command}` on {started:%Y-%m-%d} (started {started:%H:%M %Z}) in "
        f"{total / 60:.1f} minutes (adding problem {timings['adding'] / 60:.1f}, exploding "
        f"{timings['exploding'] / 60:.1f}"
        + (f", Fashion-MNIST {timings['fashion'] / 60:.1f}" if fashion else "")
        + f") on a {machine()}, shared with other work; every fit runs on one thread.",
        "",
        f"Adding problem: {run['n_train']} training, {run['n_val']} validation and "
        f"{run['n_test']} test sequences per length and seed (`make_adding_problem`, "
        f"random_state = 1000 * seed + n_steps); every model {run['units']} units, Adam "
        f"(learning rate below), batch {run['batch']}, {run['epochs']} epochs, no early "
        f"stopping, L2 alpha 1e-4; clipping is `max_grad_norm={CLIP:g}`; seeds "
        f"{', '.join(map(str, run['seeds']))} (the seed draws the data, the initial weights "
        "and the shuffling). Gradient ratios are ||dL/dh_0|| / ||dL/dh_T-1|| of "
        "`gradient_through_time_summary` (mean over 20 mini-batches at initialisation, "
        "over all mini-batches of the last epoch).",
        "",
    ]
    tables = adding_tables(adding, run) + [""] + exploding_tables(exploding, reference)
    if fashion:
        tables += [""] + fashion_tables(fashion)
    text = "\n".join(header + tables) + "\n"
    print(text)

    results = dict(command=command, date=started.isoformat(timespec="minutes"),
                   machine=machine(), minutes=total / 60,
                   minutes_per_part={k: v / 60 for k, v in timings.items()},
                   settings={k: (v if not isinstance(v, tuple) else list(v))
                             for k, v in run.items()},
                   clip=CLIP, adding=adding, exploding=exploding, fashion=fashion)
    (args.out / "recurrent_results.json").write_text(json.dumps(results, indent=1,
                                                                default=float) + "\n")
    path = args.out / "recurrent.md"
    report = path.read_text().split(TABLES_MARK)[0] if path.exists() else DEFAULT_REPORT
    path.write_text(report + TABLES_MARK + "\n\n" + text)
    log(f"wrote {path}, recurrent_results.json and the PNGs in {args.out}")


TABLES_MARK = "<!-- tables below are written by examples/recurrent_study.py -->"
DEFAULT_REPORT = """# The vanishing gradient through time

(Report text to be written from the tables below.)

"""

if __name__ == "__main__":
    main()
