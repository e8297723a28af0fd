"""Property tests: any shape, dtype and parameters within range give finite outputs of the
right shape, never a crash."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fastrbm import BernoulliRBM


@settings(deadline=None, max_examples=40)
@given(
    n_samples=st.integers(1, 40),
    n_features=st.integers(1, 30),
    n_components=st.integers(1, 20),
    batch_size=st.integers(1, 50),
    k=st.integers(1, 3),
    persistent=st.booleans(),
    momentum=st.sampled_from([0.0, 0.5]),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_bernoulli_rbm_any_shape(n_samples, n_features, n_components, batch_size, k,
                                 persistent, momentum, dtype, seed):
    rng = np.random.default_rng(seed)
    X = (rng.random((n_samples, n_features)) < 0.5).astype(np.float64)
    m = BernoulliRBM(n_components=n_components, batch_size=batch_size, k=k, n_iter=2,
                     persistent=persistent, momentum=momentum, dtype=dtype,
                     random_state=seed).fit(X)
    H = m.transform(X)
    assert H.shape == (n_samples, n_components) and H.dtype == np.dtype(dtype)
    for out in (H, m.reconstruct(X), m.free_energy(X), m.score_samples(X), m.gibbs(X),
                m.sample(3, n_steps=2)):
        assert np.isfinite(out).all()
    if min(n_features, n_components) <= 12:
        assert np.isfinite(m.score(X))


@settings(deadline=None, max_examples=25)
@given(
    n_samples=st.integers(1, 40),
    n_features=st.integers(1, 20),
    n_components=st.integers(1, 12),
    batch_size=st.integers(1, 50),
    persistent=st.booleans(),
    learn_sigma=st.booleans(),
    hidden_units=st.sampled_from(["bernoulli", "nrelu"]),
    dtype=st.sampled_from(["float32", "float64"]),
    scale=st.sampled_from([1e-3, 1.0, 30.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_gaussian_rbm_any_shape(n_samples, n_features, n_components, batch_size, persistent,
                                learn_sigma, hidden_units, dtype, scale, seed):
    from fastrbm import GaussianBernoulliRBM

    X = np.random.default_rng(seed).standard_normal((n_samples, n_features)) * scale
    m = GaussianBernoulliRBM(n_components=n_components, batch_size=batch_size, n_iter=2,
                             persistent=persistent, learn_sigma=learn_sigma,
                             hidden_units=hidden_units, dtype=dtype, random_state=seed)
    try:
        m.fit(X)
    except FloatingPointError:
        return  # badly scaled data may diverge: a clear error is the contract, never NaN
    H = m.transform(X)
    assert H.shape == (n_samples, n_components) and H.dtype == np.dtype(dtype)
    for out in (H, m.reconstruct(X), m.gibbs(X), m.sample(3, n_steps=2)):
        assert np.isfinite(out).all()
    if hidden_units == "bernoulli":
        assert np.isfinite(m.free_energy(X)).all() and np.isfinite(m.score_samples(X)).all()


@settings(deadline=None, max_examples=15)
@given(
    n_samples=st.integers(4, 40),
    n_features=st.integers(1, 12),
    hidden=st.lists(st.integers(1, 10), min_size=1, max_size=3),
    n_classes=st.integers(2, 4),
    activation=st.sampled_from(["logistic", "tanh", "relu"]),
    solver=st.sampled_from(["sgd", "adam"]),
    pretrain=st.booleans(),
    batch_norm=st.booleans(),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_dbn_classifier_any_shape(n_samples, n_features, hidden, n_classes, activation,
                                  solver, pretrain, batch_norm, dtype, seed):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from fastrbm import DBNClassifier

    rng = np.random.default_rng(seed)
    X = rng.random((n_samples, n_features))
    y = np.arange(n_samples) % n_classes  # every class present
    clf = DBNClassifier(tuple(hidden), activation=activation, solver=solver,
                        pretrain=pretrain, pretrain_n_iter=2, batch_norm=batch_norm,
                        max_iter=3, dtype=dtype, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    P = clf.predict_proba(X)
    assert P.shape == (n_samples, n_classes) and np.isfinite(P).all()
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-4)
    assert set(clf.predict(X)) <= set(range(n_classes))
    assert np.isfinite(clf.gradient_norms_).all() and np.isfinite(clf.loss_curve_).all()
