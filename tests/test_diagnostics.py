"""fastrbm.diagnostics: the per-layer gradient-norm summary and its text table."""
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastrbm.diagnostics import format_gradient_norms, gradient_norm_summary


def fake_model(n_epochs):
    norms = np.array([[1e-4, 1e-2, 1.0], [2e-4, 1e-2, 0.5], [5e-4, 2e-2, 0.25]])[:n_epochs]
    return SimpleNamespace(
        initial_gradient_norms_=np.array([1e-5, 1e-3, 0.1]),
        gradient_norms_=norms.reshape(n_epochs, 3),
        coefs_=[np.zeros((64, 32)), np.zeros((32, 16)), np.zeros((16, 10))])


def test_summary_per_layer_norms_and_ratios():
    summary = gradient_norm_summary(fake_model(3))
    assert summary["layers"] == ["1: 64x32", "2: 32x16", "3: 16x10"]
    np.testing.assert_array_equal(summary["initial"], [1e-5, 1e-3, 0.1])
    np.testing.assert_array_equal(summary["first_epoch"], [1e-4, 1e-2, 1.0])
    np.testing.assert_array_equal(summary["last_epoch"], [5e-4, 2e-2, 0.25])
    assert summary["ratio"] == pytest.approx(
        {"initial": 1e-4, "first_epoch": 1e-4, "last_epoch": 2e-3})


def test_summary_before_any_epoch_and_zero_norms():
    model = fake_model(0)
    summary = gradient_norm_summary(model)
    assert summary["first_epoch"] is None and summary["ratio"]["last_epoch"] is None
    model.initial_gradient_norms_ = np.array([1.0, 1.0, 0.0])
    assert gradient_norm_summary(model)["ratio"]["initial"] == np.inf
    assert "-" in format_gradient_norms(fake_model(0)).splitlines()[1]


def test_text_table():
    table = format_gradient_norms(fake_model(3))
    lines = table.splitlines()
    assert lines[0].split() == ["layer", "initial", "epoch", "1", "epoch", "3"]
    assert lines[1].split() == ["1:", "64x32", "1.000e-05", "1.000e-04", "5.000e-04"]
    assert lines[-1].split() == ["first/last", "ratio", "1.000e-04", "1.000e-04", "2.000e-03"]
    assert len(lines) == 5


def test_on_a_fitted_network():
    from fastrbm import DBNRegressor

    rng = np.random.default_rng(0)
    X = rng.random((100, 4))
    reg = DBNRegressor(hidden_layer_sizes=(8, 8), max_iter=3, pretrain_n_iter=1,
                       random_state=0)
    with pytest.warns(ConvergenceWarning):  # 3 epochs on purpose
        reg.fit(X, X.sum(axis=1))
    summary = gradient_norm_summary(reg)
    assert summary["initial"].shape == (3,) and len(summary["layers"]) == 3
    np.testing.assert_array_equal(summary["last_epoch"], reg.gradient_norms_[-1])
    assert "epoch 3" in format_gradient_norms(reg)
