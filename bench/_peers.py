"""Workloads and peers for the RBM benchmarks: ``fastrbm._bench``, under the name the
pytest-benchmark suite (conftest.py, test_bench_rbm.py) and compare.py import.

The code moved into the package so that the installed ``fastrbm bench`` command needs
nothing from the repository. Run from a working tree without an install, the tree's root
goes on ``sys.path`` here (an installed fastrbm wins).
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from fastrbm._bench import *  # noqa: E402,F401,F403
