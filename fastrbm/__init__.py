"""fastrbm: Restricted Boltzmann Machines and Deep Belief Networks, compiled, as
scikit-learn estimators.

Public names are imported on first use (PEP 562), so ``import fastrbm`` stays fast:
scikit-learn alone takes over a second to import on a small machine.
"""
import importlib

__version__ = "0.1.0"

# public name -> submodule that defines it
_LAZY = {
    "BernoulliRBM": "rbm",
    "GaussianBernoulliRBM": "rbm",
    "DBN": "dbn",
    "DBNClassifier": "dbn",
    "DBNRegressor": "dbn",
    "DBNAutoencoder": "autoencoder",
    "RNNClassifier": "rnn",
    "RNNRegressor": "rnn",
    "log_partition": "likelihood",
    "set_progress_bar": "_progress",
}
_SUBMODULES = ("datasets", "diagnostics", "likelihood", "plotting")
__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fastrbm' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
