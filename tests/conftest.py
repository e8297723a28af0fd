"""Fixtures shared by the test modules."""
import pytest
from sklearn.model_selection import train_test_split

from fastrbm.datasets import load_digits


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits as fastrbm loads them: (X, y), pixels / 16 in float32."""
    return load_digits()


@pytest.fixture(scope="session")
def digits_split(digits):
    """digits cut into a training set and a held-out quarter (random_state=0)."""
    X, y = digits
    return train_test_split(X, y, test_size=0.25, random_state=0)
