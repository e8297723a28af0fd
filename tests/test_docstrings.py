"""Every public docstring: its Examples run as doctests, and numpydoc's validator passes
with a short, explicit ignore list (as scikit-learn's test_docstrings.py does)."""
import doctest
import inspect

import pytest

from fastrbm._api import public_methods, public_modules, public_objects

# Checks not required of every docstring.
IGNORED = {
    "SA01": "a See Also section",
    "ES01": "an extended summary (most methods are one line plus Parameters and Returns)",
    "RT02": "the type alone on the first Returns line: scikit-learn names returns "
            "(``self : object``)",
}
# Public classes and functions need an Examples section; methods may go without.
IGNORED_FOR_METHODS = {"EX01": "an Examples section"}


def _documented():
    """(dotted path, object, is_method) of every public class, function and method."""
    for module_name, name, obj in public_objects():
        path = f"{module_name}.{name}"
        yield path, obj, False
        if inspect.isclass(obj):
            for method in public_methods(obj):
                yield f"{path}.{method}", getattr(obj, method), True


DOCUMENTED = list(_documented())


@pytest.mark.parametrize("path,obj,is_method", DOCUMENTED, ids=[d[0] for d in DOCUMENTED])
def test_numpydoc_validation(path, obj, is_method):
    validate = pytest.importorskip("numpydoc.validate").validate
    ignored = IGNORED | (IGNORED_FOR_METHODS if is_method else {})
    errors = [f"{code}: {message}" for code, message in validate(path)["errors"]
              if code not in ignored]
    assert not errors, f"{path}:\n" + "\n".join(errors)


def _examples(obj):
    docstring = inspect.getdoc(obj.fget if isinstance(obj, property) else obj) or ""
    return doctest.DocTestParser().get_doctest(docstring, {}, "example", None, 0)


# Module docstrings are not validated (numpydoc has no rules for them) but their
# examples, if any, run too.
WITH_EXAMPLES = [d for d in DOCUMENTED + [(name, module, False)
                                         for name, module in public_modules()]
                 if _examples(d[1]).examples]


def test_public_classes_and_functions_have_examples():
    missing = [path for path, obj, is_method in DOCUMENTED
               if not is_method and not _examples(obj).examples]
    assert not missing


@pytest.mark.parametrize("path,obj,is_method", WITH_EXAMPLES,
                         ids=[d[0] for d in WITH_EXAMPLES])
def test_docstring_examples_run(path, obj, is_method, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that save files write here
    test = _examples(obj)
    test.name = path
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures = []
    runner.run(test, out=failures.append, clear_globs=True)
    assert runner.failures == 0, "".join(failures)
