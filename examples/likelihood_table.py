"""Log-likelihoods of RBMs by negative phase
==========================================

AIS test log-likelihoods of RBMs trained with each negative phase, at equal updates.

The full-size run's results: :doc:`/likelihood`.

Binarised Fashion-MNIST (60000 train / 10000 test), 500 hidden units, batches of 100,
10 epochs (6000 weight updates) for every model, momentum 0.5, at learning rates 0.01 and
0.05. Negative phases: CD-1, CD-10, PCD-1, centred PCD-1 (Melchior, Fischer & Wiskott
2016), fast-weights PCD-1 (Tieleman & Hinton 2009; fast rate = the learning rate, decay
0.05), parallel tempering with 10 temperatures down to beta 0.1 (Desjardins et al.
2010) and centred CD-10. The literature's ordering (Tieleman 2008; Salakhutdinov & Murray
2008): longer and persistent chains give better generative models than CD-1, whose
reconstructions look good while its log-likelihood lags; PCD needs chains that keep up
with the weights, which is what centring, fast weights and tempering are for.

    python examples/likelihood_table.py             # the full table (about 15 minutes)
    python examples/likelihood_table.py --quick     # 5000 images, 2 epochs, shorter AIS

Prints a Markdown table: test log-likelihood (nats per image) +- the AIS standard error
from 100 chains x 10000 temperatures (base rate from the training data), the log Z of a
1000-temperature run beside it and whether the two agree within two combined standard
errors (``fastrbm.likelihood.ais_agreement``), and the training time. Where they disagree
(the estimate still rises with the schedule, so the log-likelihood is too high), AIS runs
again with 40000 temperatures; that estimate is reported, flagged when it still moved. Every number comes
from this run; seeds are fixed. ``--json PATH`` also writes the rows.
"""
import argparse
import json
import time

import numpy as np

from fastrbm import BernoulliRBM
from fastrbm.datasets import load_fashion_mnist
from fastrbm.likelihood import ais_agreement


def algorithms(learning_rate):
    """(label, BernoulliRBM parameters) of every negative phase in the table."""
    return [("CD-1", dict(k=1, persistent=False)),
            ("CD-10", dict(k=10, persistent=False)),
            ("PCD-1", dict(k=1, persistent=True)),
            ("centred PCD-1", dict(k=1, persistent=True, centered=True)),
            ("FPCD-1", dict(k=1, persistent=True, fast_learning_rate=learning_rate)),
            ("PT-10 (PCD-1)", dict(k=1, persistent=True, n_temperatures=10, min_beta=0.1)),
            ("centred CD-10", dict(k=10, persistent=False, centered=True))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images, epochs, betas")
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[0.01, 0.05])
    parser.add_argument("--json", default=None, help="also write the rows here")
    parser.add_argument("--only", nargs="+", default=None, metavar="LABEL",
                        help="run these negative phases only (labels as in the table)")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="threads per model (1: the train times are one core's)")
    args = parser.parse_args()
    (X_train, _), (X_test, _) = load_fashion_mnist(binarize=True)
    if args.quick:
        X_train = X_train[:5000]
    n_iter = 2 if args.quick else 10
    schedules = (100, 300) if args.quick else (1000, 10000)
    print(f"binarised Fashion-MNIST, {len(X_train)} train / {len(X_test)} test; 500 hidden, "
          f"batch 100, {n_iter} epochs, momentum 0.5; AIS 100 chains x {schedules} "
          f"temperatures; {args.n_jobs} thread(s) per model\n")
    print("| learning rate | negative phase | train time | test log-likelihood "
          "| log Z (temperatures) | shorter schedules | agree |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for rate in args.learning_rates:
        for label, algo in algorithms(rate):
            if args.only and label not in args.only:
                continue
            model = BernoulliRBM(n_components=500, batch_size=100, n_iter=n_iter,
                                 learning_rate=rate, momentum=0.5, random_state=0,
                                 n_jobs=args.n_jobs, **algo)
            start = time.perf_counter()
            model.fit(X_train)
            seconds = time.perf_counter() - start
            check = ais_agreement(model, schedules, X=X_train, random_state=0,
                                  n_jobs=args.n_jobs)
            if not check["agree"]:
                # Still rising with the schedule: rerun 4x longer and report that estimate,
                # flagged again when it moved more than its standard errors allow.
                longer = ais_agreement(model, (schedules[1], 4 * schedules[1]), X=X_train,
                                       random_state=0, n_jobs=args.n_jobs)
                check = {"n_betas": [schedules[0]] + longer["n_betas"],
                         "log_z": [check["log_z"][0]] + longer["log_z"],
                         "std": [check["std"][0]] + longer["std"],
                         "gap": longer["log_z"][-1] - check["log_z"][0],
                         "agree": longer["agree"]}
            log_z, std = check["log_z"][-1], check["std"][-1]
            test_ll = float(-model.free_energy(X_test).astype(np.float64).mean() - log_z)
            rows.append(dict(learning_rate=rate, algorithm=label, seconds=seconds,
                             test_log_likelihood=test_ll, **check))
            shorter = ", ".join(f"{z:.2f} ({n})" for z, n in
                                zip(check["log_z"][:-1], check["n_betas"][:-1]))
            print(f"| {rate} | {label} | {seconds:.1f} s | {test_ll:.2f} +- {std:.2f} | "
                  f"{log_z:.2f} ({check['n_betas'][-1]}) | {shorter} | "
                  f"{'yes' if check['agree'] else '**no**'} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
