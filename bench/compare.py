"""Time fastrbm and its peers on the benchmark workloads in one process; print Markdown tables.

    python bench/compare.py [--quick] [--rounds N]

Each figure is the minimum over ``--rounds`` runs (interleaved between peers) after one
untimed warm-up, with BLAS, OpenMP and torch pinned to 2 threads. Ratios compare runs of the
same algorithm (CD-1 peers with fastrbm CD-1, PCD-1 peers such as scikit-learn with fastrbm
PCD-1). ``--quick`` times one round and only the first 10000 Fashion-MNIST rows. Progress
goes to stderr, the tables to stdout.
"""

import argparse
import platform
import sys
import time

import numpy as np
import scipy
import sklearn

import _peers


def measure(workload, keys, rounds):
    """{peer key: (seconds, reconstruction error or None)} and notes on skipped peers.

    Rounds are interleaved (every peer once per round, after one warm-up each), so a change
    in machine load between peers skews the ratios less than back-to-back rounds would.
    """
    runs, notes = {}, []
    for key in keys:
        why = _peers.missing_requirement(key)
        if why:
            notes.append(f"{_peers.PEERS[key].label}: not run ({why}).")
        else:
            runs[key] = _peers.make_run(key, workload)
    times = {key: [] for key in runs}
    results = {}
    for key, run in runs.items():  # warm-up: JIT compilation, first-call allocations
        print(f"  warm-up {_peers.PEERS[key].label}", file=sys.stderr, flush=True)
        run()
    for r in range(rounds):
        for key, run in runs.items():
            t0 = time.perf_counter()
            results[key] = run()
            times[key].append(time.perf_counter() - t0)
        print(f"  round {r + 1}/{rounds}: "
              + ", ".join(f"{key} {t[-1]:.3f} s" for key, t in times.items()),
              file=sys.stderr, flush=True)
    rows = {}
    for key, params in results.items():
        error = None if params is None else _peers.reconstruction_error(params, workload.eval_rows)
        rows[key] = (min(times[key]), error)
    return rows, notes


def markdown_table(workload, rows, notes):
    floor = rows.get("floor", rows.get("floor-numpy", (None,)))[0]
    lines = [
        f"**{workload.name}**",
        "",
        "| peer | seconds | peer / fastrbm | time / GEMM floor | reconstruction error |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, (seconds, error) in rows.items():
        peer = _peers.PEERS[key]
        fast = rows.get(f"fastrbm-{peer.variant}")
        vs_fast = f"{seconds / fast[0]:.2f}" if fast and not key.startswith("fastrbm") else "—"
        vs_floor = f"{seconds / floor:.2f}" if floor else "—"
        err = "—" if error is None else f"{error:.4f}"
        lines.append(f"| {peer.label} | {seconds:.3f} | {vs_fast} | {vs_floor} | {err} |")
    lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one round; the first 10000 Fashion-MNIST rows")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timed rounds per peer (default 3, or 1 with --quick)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)

    torch = _peers.import_torch()
    versions = (f"Python {platform.python_version()}, NumPy {np.__version__}, "
                f"SciPy {scipy.__version__}, scikit-learn {sklearn.__version__}, "
                f"PyTorch {torch.__version__ if torch else 'absent'}")
    print(f"{_peers.THREADS} threads, min of {rounds} interleaved round(s) after a warm-up; "
          f"{versions}.\n")

    with _peers.pinned_threads(_peers.THREADS):
        try:
            large = _peers.large_workload(n_rows=10000 if args.quick else None)
        except FileNotFoundError:
            print(f"- Large workload skipped: {_peers.FASHION_MNIST_HELP}.\n")
        else:
            print(f"{large.name}:", file=sys.stderr)
            print(markdown_table(large, *measure(large, _peers.LARGE_PEERS, rounds)))
        small = _peers.small_workload()
        print(f"{small.name}:", file=sys.stderr)
        print(markdown_table(small, *measure(small, _peers.SMALL_PEERS, rounds)))


if __name__ == "__main__":
    main()
