"""Progress output: scikit-learn's lines on stdout, a bar on stderr only at a terminal."""
import io

import numpy as np
import pytest

import fastrbm
from fastrbm import BernoulliRBM, DBNClassifier


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self):
        return True


@pytest.fixture(scope="module")
def small_digits(digits):
    X, y = digits
    return X[:300], y[:300]


def test_bar_at_a_terminal_lines_on_stdout(small_digits, capsys, monkeypatch):
    pytest.importorskip("tqdm")
    X, _ = small_digits
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    BernoulliRBM(n_components=8, n_iter=2, random_state=0, verbose=1).fit(X)
    assert capsys.readouterr().out.count("[BernoulliRBM] Iteration") == 2
    assert "BernoulliRBM" in terminal.getvalue() and "epoch" in terminal.getvalue()


def test_no_bar_at_a_terminal_when_switched_off(small_digits, capsys, monkeypatch):
    X, _ = small_digits
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    previous = fastrbm.set_progress_bar(False)
    try:
        BernoulliRBM(n_components=8, n_iter=2, random_state=0, verbose=1).fit(X)
    finally:
        fastrbm.set_progress_bar(previous)
    assert capsys.readouterr().out.count("[BernoulliRBM] Iteration") == 2
    assert terminal.getvalue() == ""


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 3 epochs
def test_network_lines_match_scikit_learns_format(small_digits, capsys):
    X, y = small_digits
    DBNClassifier(hidden_layer_sizes=(8,), pretrain_n_iter=1, max_iter=3, random_state=0,
                  verbose=1, n_iter_no_change=50).fit(X.astype(np.float64), y)
    out = capsys.readouterr()
    lines = [line for line in out.out.splitlines() if not line.startswith("[")]
    assert [line.split(",")[0] for line in lines] == [f"Iteration {i}" for i in (1, 2, 3)]
    assert all(line.split(", loss = ")[1].count(".") == 1 for line in lines)
    assert out.err.count("Iteration") == 0
