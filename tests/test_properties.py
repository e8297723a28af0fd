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
