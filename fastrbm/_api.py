"""The public API: the modules users import from and the names in their ``__all__``.

The documentation's API reference (docs/conf.py) and the docstring tests
(tests/test_docstrings.py) both walk this list.
"""
import importlib
import inspect

PUBLIC_MODULES = ("fastrbm", "fastrbm.datasets", "fastrbm.likelihood", "fastrbm.diagnostics",
                  "fastrbm.plotting")


def public_objects():
    """Yield ``(module_name, name, obj)`` for each public class and function, each once: a
    name re-exported at the top level belongs to ``fastrbm``."""
    seen = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if name.startswith("_") or not callable(obj) or id(obj) in seen:
                continue
            seen.add(id(obj))
            yield module_name, name, obj


def public_methods(cls):
    """Names of the public methods and properties a class defines itself (inherited ones,
    such as scikit-learn's ``get_params``, are documented by their owners)."""
    return [name for name, value in vars(cls).items()
            if not name.startswith("_") and (inspect.isfunction(value)
                                             or isinstance(value, property))]
