"""Fixtures shared by the test modules."""
import pytest
from sklearn.model_selection import train_test_split

from fastrbm.datasets import load_digits


def pytest_report_header(config):
    """Which build of the extension the suite runs on (tests/test_build.py)."""
    try:
        from fastrbm._kernels import _sampling

        from .test_build import describe
        return f"fastrbm build: {describe(_sampling.build_info())} ({_sampling.__file__})"
    except (ImportError, AttributeError) as exc:  # not built, or built before build_info
        return f"fastrbm build: unknown ({exc})"


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits as fastrbm loads them: (X, y), pixels / 16 in float32."""
    return load_digits()


@pytest.fixture(scope="session")
def digits_split(digits):
    """digits cut into a training set and a held-out quarter (random_state=0)."""
    X, y = digits
    return train_test_split(X, y, test_size=0.25, random_state=0)


@pytest.fixture
def interrupt_second_call(monkeypatch):
    """Ctrl-C reaches Python when a compiled epoch returns: ``interrupt_second_call(module,
    name)`` makes the second call of ``module.name`` raise KeyboardInterrupt after it ran.
    Returns the list of calls (clear it to re-arm)."""
    def arm(module, name):
        real, calls = getattr(module, name), []

        def interrupted_on_second_call(*args):
            calls.append(1)
            result = real(*args)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return result

        monkeypatch.setattr(module, name, interrupted_on_second_call)
        return calls
    return arm
