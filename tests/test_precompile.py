"""Ahead-of-time compilation: the specialisations ``compile_engines`` builds are exactly the
ones the estimators use, so a fit after it compiles nothing."""
import numpy as np
import pytest

from fastrbm import DBNClassifier, DBNRegressor, RNNClassifier, RNNRegressor
from fastrbm._kernels import backprop as bp
from fastrbm._kernels import recurrent as rnn
from fastrbm._kernels.precompile import compile_engines

KERNELS = ("run_epoch", "run_epoch_parallel", "loss_grad", "predict")


def _signature_counts():
    counts = {name: len(getattr(bp, name).signatures) for name in KERNELS}
    counts["recurrent"] = sum(len(f.signatures) for f in vars(rnn).values()
                              if hasattr(f, "signatures"))
    return counts


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tiny fits
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fits_after_compile_engines_compile_nothing(digits, dtype):
    X, y = digits
    X = X[:400].astype(dtype)
    y = y[:400]
    compile_engines(dtypes=(np.dtype(dtype).name,))
    before = _signature_counts()
    # a small net (serial build), a wide one (parallel build where the machine has two
    # cores), validation scores (predict), Adam and SGD, both output kinds, partial_fit
    DBNClassifier(hidden_layer_sizes=(8,), max_iter=2, pretrain_n_iter=1,
                  early_stopping=True, random_state=0).fit(X, y)
    DBNClassifier(hidden_layer_sizes=(400,), max_iter=1, pretrain=False, solver="sgd",
                  batch_size=200, random_state=0).fit(X, y).predict_proba(X)
    DBNRegressor(hidden_layer_sizes=(8,), max_iter=2, pretrain=False,
                 random_state=0).partial_fit(X, y.astype(dtype)).predict(X)
    # recurrent nets: digits as 8 rows of 8 pixels, early stopping, lengths, partial_fit
    S = X.reshape(-1, 8, 8)
    RNNClassifier(hidden_layer_sizes=(4,), max_iter=2, early_stopping=True,
                  random_state=0).fit(S, y, lengths=np.full(len(S), 6)).predict_proba(S)
    RNNRegressor(hidden_layer_sizes=(4,), cell="tanh", solver="sgd",
                 random_state=0).partial_fit(S[:, :, 0], y.astype(dtype)).predict(S[:, :, 0])
    assert _signature_counts() == before


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_model_with_read_only_arrays_predicts_without_compiling(digits):
    """A model unpickled from a memory map holds read-only arrays: predict must not compile
    a read-only specialisation of the engines (12 s each)."""
    X, y = digits
    X = X[:300].astype(np.float64)
    y = y[:300]
    compile_engines(dtypes=("float64",), parallel=False)
    models = [DBNClassifier(hidden_layer_sizes=(8,), max_iter=1, pretrain=False,
                            random_state=0).fit(X, y),
              RNNClassifier(hidden_layer_sizes=(4,), max_iter=1, random_state=0).fit(
                  X.reshape(-1, 8, 8), y)]
    before = _signature_counts()
    for model, data in zip(models, (X, X.reshape(-1, 8, 8))):
        expected = model.predict_proba(data)
        for value in vars(model).values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
        np.testing.assert_array_equal(model.predict_proba(data), expected)
    assert _signature_counts() == before


def test_stale_cache_of_a_dependent_module_is_dropped(tmp_path):
    """A module's cached code goes when a module it compiles in changes, and only then."""
    from fastrbm._kernels._cache import drop_stale_cache

    module, dependency = tmp_path / "engine.py", tmp_path / "helpers.py"
    module.write_text("x = 1\n")
    dependency.write_text("y = 1\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()

    def cached_files():
        return sorted(p.name for p in cache.iterdir() if p.suffix in (".nbi", ".nbc"))

    def write_cache():
        for name in ("engine.f-3.py311.nbi", "engine.f-3.py311.1.nbc", "other.g-1.py311.nbi"):
            (cache / name).write_bytes(b"")

    write_cache()
    drop_stale_cache(module, [dependency])  # no stamp yet: dropped, stamp written
    assert cached_files() == ["other.g-1.py311.nbi"]
    write_cache()
    drop_stale_cache(module, [dependency])  # unchanged dependency: kept
    assert len(cached_files()) == 3
    dependency.write_text("y = 2\n")
    drop_stale_cache(module, [dependency])
    assert cached_files() == ["other.g-1.py311.nbi"]
