"""The public API: the modules users import from and the names in their ``__all__``.

The documentation's API reference (docs/conf.py) and the docstring tests
(tests/test_docstrings.py) both walk this list.
"""
import importlib
import inspect

PUBLIC_MODULES = ("fastrbm", "fastrbm.datasets", "fastrbm.likelihood", "fastrbm.diagnostics",
                  "fastrbm.plotting")


def public_modules():
    """Yield ``(module_name, module)`` for each public module."""
    for module_name in PUBLIC_MODULES:
        yield module_name, importlib.import_module(module_name)


def public_objects():
    """Yield ``(module_name, name, obj)`` for each public class and function, each once: a
    name re-exported at the top level belongs to ``fastrbm``."""
    seen = set()
    for module_name, module in public_modules():
        for name in module.__all__:
            obj = getattr(module, name)
            if name.startswith("_") or not callable(obj) or id(obj) in seen:
                continue
            seen.add(id(obj))
            yield module_name, name, obj


def public_methods(cls):
    """Names of the public methods and properties of a class that fastrbm defines (in the
    class or its fastrbm base classes); those it inherits from scikit-learn, such as
    ``get_params``, are documented by scikit-learn."""
    names = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("fastrbm"):
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_") and (inspect.isfunction(value) or isinstance(
                    value, (property, classmethod, staticmethod))):
                names[name] = None
    return sorted(names)
