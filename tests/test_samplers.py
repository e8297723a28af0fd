"""Hidden unit types and training samplers beyond CD / PCD: Gaussian (linear) hidden units,
centring, fast-weights PCD, parallel tempering."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils._param_validation import InvalidParameterError
from threadpoolctl import threadpool_limits

from fastrbm import BernoulliRBM, GaussianBernoulliRBM
from fastrbm._kernels import _sampling

from . import _reference as ref

DTYPES = [np.float32, np.float64]
THREADS = [1, 2]
RTOL = {np.float32: 1e-4, np.float64: 1e-10}


def _engine_run(X, W, b, c, chain, *, n_threads, epochs=1, seed=9, counter=0, arrays=None,
                tempering_step=0, **settings):
    """``epochs`` GibbsEngine epochs on copies of the arrays (``arrays``: more of the
    engine's state by name); returns the engine."""
    arrays = {k: v.copy() for k, v in (arrays or {}).items()}
    engine = _sampling.GibbsEngine(W.copy(), b.copy(), c.copy(), chain.copy(), seed=seed,
                                   counter=counter, tempering_step=tempering_step, **arrays)
    engine.configure(n_blocks=2, n_threads=n_threads, **settings)
    with threadpool_limits(1, user_api="blas"):
        for _ in range(epochs):
            engine.epoch(X)
    return engine


def _large_problem(dtype, n=200, nv=200, nh=150, n_chains=50, seed=5):
    rng = np.random.default_rng(seed)
    X = (rng.random((n, nv)) < 0.3).astype(dtype)
    W = (rng.standard_normal((nh, nv)) * 0.05).astype(dtype)
    return X, W, np.zeros(nv, dtype), np.zeros(nh, dtype), np.zeros((n_chains, nh), dtype)


def _assert_same_state(one, two):
    assert one.counter == two.counter
    for name, a in one.state().items():
        np.testing.assert_array_equal(a, two.state()[name], err_msg=name)


def _same_for_1_and_2_threads(dtype, **settings):
    """An engine epoch on a problem large enough that the threads share the work, at 1 and
    2 threads, from offsets at the data mean and 1/2, zero fast weights and tempered chains:
    asserts bit-identical states and returns the 1-thread engine."""
    X, W, b, c, chain = _large_problem(dtype)
    M = len(settings.get("betas", (1,)))
    arrays = dict(visible_offset=X.mean(0), hidden_offset=np.full(W.shape[0], 0.5, dtype),
                  W_fast=np.zeros_like(W), b_fast=np.zeros_like(b), c_fast=np.zeros_like(c),
                  tempered_chains=np.zeros(((M - 1) * chain.shape[0], W.shape[0]), dtype))
    one = _engine_run(X, W, b, c, chain, n_threads=1, arrays=arrays, **settings)
    two = _engine_run(X, W, b, c, chain, n_threads=2, arrays=arrays, **settings)
    _assert_same_state(one, two)
    np.testing.assert_array_equal(one.swap_accepted, two.swap_accepted)
    assert np.isfinite(one.W).all() and not np.array_equal(one.W, W)
    return one


# ---------------------------------------------------------------------------------------
# Gaussian (linear) hidden units
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("settings", [dict(persistent=False, k=1),
                                      dict(persistent=True, k=2, momentum=0.5)], ids=str)
@pytest.mark.parametrize("batch_size", [10, 50])
def test_gaussian_hidden_epoch_is_identical_for_1_and_2_threads(dtype, settings, batch_size):
    _same_for_1_and_2_threads(dtype, batch_size=batch_size, learning_rate=0.01,
                              hidden="gaussian", **settings)


@pytest.fixture(scope="module")
def digits01():
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0
    return X[:600]


def test_gaussian_hidden_transform_is_the_linear_mean(digits01):
    X = digits01
    m = BernoulliRBM(n_components=8, hidden_units="gaussian", learning_rate=0.01, n_iter=2,
                     random_state=0).fit(X)
    W, b, c = m.components_, m.intercept_visible_, m.intercept_hidden_
    np.testing.assert_allclose(m.transform(X), X @ W.T + c, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.transform(sp.csr_matrix(X)), X @ W.T + c, rtol=1e-12,
                               atol=1e-12)
    assert (m.transform(X) < 0).any()  # linear, not squashed or rectified
    np.testing.assert_allclose(m.reconstruct(X[:5]),
                               1 / (1 + np.exp(-((X[:5] @ W.T + c) @ W + b))), rtol=1e-12)


def test_gaussian_hidden_free_energy_matches_numerical_integration():
    # F(v) = -log sum_h... with E(v, h) = -b.v - c.h - h.W v + |h|^2 / 2: integrate
    # exp(-E) over a 2-d grid of h for two hidden units.
    rng = np.random.default_rng(0)
    W, b, c = rng.normal(0, 0.7, (2, 5)), rng.normal(0, 0.5, 5), rng.normal(0, 0.5, 2)
    m = BernoulliRBM(n_components=2, hidden_units="gaussian", n_iter=0).fit(np.zeros((3, 5)))
    m.components_, m.intercept_visible_, m.intercept_hidden_ = W, b, c
    V = (rng.random((4, 5)) < 0.5).astype(np.float64)
    grid = np.linspace(-12, 12, 1201)
    h1, h2 = np.meshgrid(grid, grid, indexing="ij")
    H = np.stack([h1.ravel(), h2.ravel()], axis=1)
    step = grid[1] - grid[0]
    for v, f in zip(V, m.free_energy(V)):
        log_terms = b @ v + H @ (c + W @ v) - 0.5 * (H ** 2).sum(axis=1)
        want = -(np.logaddexp.reduce(log_terms) + 2 * np.log(step))
        assert f == pytest.approx(want, abs=1e-8)
    assert np.isfinite(m.score_samples(V)).all()


def test_gaussian_hidden_has_no_log_likelihood_and_no_gaussian_gaussian(digits01):
    m = BernoulliRBM(n_components=4, hidden_units="gaussian", n_iter=1, learning_rate=0.01,
                     random_state=0).fit(digits01)
    for call in (m.score, m.log_likelihood):
        with pytest.raises(NotImplementedError, match="hidden_units='gaussian'"):
            call(digits01)
    with pytest.raises(InvalidParameterError, match="hidden_units"):
        GaussianBernoulliRBM(hidden_units="gaussian").fit(np.zeros((4, 3)))


@pytest.mark.parametrize("persistent", [False, True])
def test_gaussian_hidden_trains_and_is_reproducible_across_threads(digits01, persistent):
    X = digits01
    kw = dict(n_components=16, hidden_units="gaussian", learning_rate=0.01, n_iter=5,
              persistent=persistent, random_state=0)
    untrained = BernoulliRBM(**{**kw, "n_iter": 0}).fit(X)
    one = BernoulliRBM(n_jobs=1, **kw).fit(X)
    two = BernoulliRBM(n_jobs=2, **kw).fit(X)
    np.testing.assert_array_equal(one.components_, two.components_)
    err = one.history_["reconstruction_error"]
    assert err[-1] < 0.5 * untrained._reconstruction(X)[0]
    g = one.gibbs(X[:3])
    assert set(np.unique(g)) <= {0.0, 1.0}


def test_dbn_with_a_linear_top_layer(digits01):
    from fastrbm import DBN

    X = digits01
    dbn = DBN(hidden_layer_sizes=(16, 4), n_iter=2, learning_rate=[0.1, 0.01],
              hidden_units=["bernoulli", "gaussian"], random_state=0).fit(X)
    assert [r.hidden_units for r in dbn.rbms_] == ["bernoulli", "gaussian"]
    top = dbn.rbms_[1]
    H = dbn.rbms_[0].transform(X)
    np.testing.assert_allclose(dbn.transform(X), H @ top.components_.T + top.intercept_hidden_,
                               rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="only the top layer"):
        DBN(hidden_layer_sizes=(8, 4), n_iter=1, hidden_units="gaussian").fit(X)


# ---------------------------------------------------------------------------------------
# Centring (Melchior, Fischer & Wiskott 2016)
# ---------------------------------------------------------------------------------------

def _small_problem(dtype, n=83, nv=12, nh=8, n_chains=5, seed=3, gaussian=False):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, nv)) if gaussian else rng.random((n, nv)) < 0.4).astype(dtype)
    W = (rng.standard_normal((nh, nv)) * 0.3).astype(dtype)
    b = (rng.standard_normal(nv) * 0.2).astype(dtype)
    c = (rng.standard_normal(nh) * 0.2).astype(dtype)
    chain = (rng.random((n_chains, nh)) < 0.5).astype(dtype)
    return X, W, b, c, chain


def test_centred_gradient_is_the_transformed_uncentred_one():
    # float64, from the definitions: the centred gradient of W equals G - g_c mu^T -
    # lambda g_b^T, and the centred update, mapped to uncentred parameters by
    # b = b' - W^T lambda, c = c' - W mu, gives the same energy up to a constant.
    rng = np.random.default_rng(0)
    nv, nh = 7, 5
    V, Vm = (rng.random((20, nv)) < 0.5) * 1.0, (rng.random((9, nv)) < 0.5) * 1.0
    W, b, c = rng.normal(0, 0.5, (nh, nv)), rng.normal(0, 0.5, nv), rng.normal(0, 0.5, nh)
    H, Hm = ref.sigmoid(V @ W.T + c), ref.sigmoid(Vm @ W.T + c)
    mu, lam = rng.random(nv), rng.random(nh)
    G = H.T @ V / 20 - Hm.T @ Vm / 9
    gb, gc = V.mean(0) - Vm.mean(0), H.mean(0) - Hm.mean(0)
    centred = (H - lam).T @ (V - mu) / 20 - (Hm - lam).T @ (Vm - mu) / 9
    np.testing.assert_allclose(centred, G - np.outer(gc, mu) - np.outer(lam, gb), atol=1e-14)

    def energy(v, h, W, b, c, mu=0, lam=0):
        return -(v - mu) @ b - (h - lam) @ c - (h - lam) @ W @ (v - mu)

    lr = 0.3
    b_c, c_c = b + W.T @ lam, c + W @ mu  # the same model, centred
    dW, db_c, dc_c = lr * centred, lr * gb, lr * gc
    new_b, new_c = b + db_c - dW.T @ lam, c + dc_c - dW @ mu
    for _ in range(5):
        v, h = (rng.random(nv) < 0.5) * 1.0, (rng.random(nh) < 0.5) * 1.0
        v0, h0 = np.zeros(nv), np.zeros(nh)
        diff = energy(v, h, W + dW, b_c + db_c, c_c + dc_c, mu, lam) - energy(
            v, h, W + dW, new_b, new_c)
        diff0 = energy(v0, h0, W + dW, b_c + db_c, c_c + dc_c, mu, lam) - energy(
            v0, h0, W + dW, new_b, new_c)
        assert diff == pytest.approx(diff0, abs=1e-12)
        # the uncentred parameters before the step are the same model too
        assert energy(v, h, W, b_c, c_c, mu, lam) - energy(v, h, W, b, c) == pytest.approx(
            energy(v0, h0, W, b_c, c_c, mu, lam) - energy(v0, h0, W, b, c), abs=1e-12)


CENTRED = [
    dict(k=1, persistent=True),
    dict(k=2, persistent=False, momentum=0.5, weight_decay=0.01),
    dict(k=1, persistent=True, momentum=0.5, sparsity_cost=0.2, offset_rate=0.1),
    dict(k=1, persistent=False, visible="gaussian", learn_log_var=True, momentum=0.5),
    dict(k=1, persistent=True, hidden="gaussian"),
]


def _against_oracle(dtype, n_threads, batch_size, settings, seed):
    """One engine epoch on a small problem against the oracle's, from random offsets (and
    fast weights, when used); returns the engine and the starting arrays."""
    settings = dict(settings)
    gaussian = settings.pop("visible", "bernoulli") == "gaussian"
    X, W, b, c, chain = _small_problem(dtype, gaussian=gaussian)
    nh, nv = W.shape
    rng = np.random.default_rng(seed)
    arrays = dict(visible_offset=rng.random(nv).astype(dtype),
                  hidden_offset=rng.random(nh).astype(dtype))
    if settings.get("fast_learning_rate"):
        arrays.update(W_fast=(rng.standard_normal((nh, nv)) * 0.1).astype(dtype),
                      b_fast=(rng.standard_normal(nv) * 0.1).astype(dtype),
                      c_fast=(rng.standard_normal(nh) * 0.1).astype(dtype))
    if gaussian:
        arrays.update(log_var=(rng.standard_normal(nv) * 0.3).astype(dtype),
                      log_var_vel=np.zeros(nv, dtype))
    kw = dict(batch_size=batch_size, learning_rate=0.05, seed=2024, counter=17, **settings)
    got = _engine_run(X, W, b, c, chain, n_threads=n_threads, arrays=arrays, **kw)
    f64 = lambda a: a.astype(np.float64)  # noqa: E731
    extra = {k: f64(a) for k, a in arrays.items() if not k.startswith("log_var")}
    zeros = [np.zeros(W.shape), np.zeros(nv), np.zeros(nh)]
    want = ref.cd_epoch(f64(X), f64(W), f64(b), f64(c), f64(chain), zeros,
                        np.zeros(nh), visible="gaussian" if gaussian else "bernoulli",
                        log_var=f64(arrays["log_var"]) if gaussian else None,
                        log_var_vel=zeros[1] if gaussian else None, extra=extra, **kw)
    assert got.counter == want[6]
    tol = dict(rtol=20 * RTOL[dtype], atol=20 * RTOL[dtype])
    for name, w in [("W", want[0]), ("b", want[1]), ("c", want[2]), ("chains", want[3]),
                    *extra.items()]:
        g = getattr(got, name)
        assert g.dtype == dtype
        np.testing.assert_allclose(g, w, err_msg=name, **tol)
    if gaussian:
        np.testing.assert_allclose(got.log_var, want[7], err_msg="log_var", **tol)
    return got, arrays


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("settings", CENTRED, ids=str)
@pytest.mark.parametrize("batch_size", [5, 40])
def test_centred_epoch_matches_oracle(dtype, n_threads, settings, batch_size):
    got, arrays = _against_oracle(dtype, n_threads, batch_size, {"centered": True, **settings},
                                  seed=1)
    assert not np.array_equal(got.hidden_offset, arrays["hidden_offset"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size", [10, 50])
def test_centred_epoch_is_identical_for_1_and_2_threads(dtype, batch_size):
    one = _same_for_1_and_2_threads(dtype, batch_size=batch_size, learning_rate=0.05,
                                    centered=True, momentum=0.5, persistent=True)
    assert not (one.hidden_offset == 0.5).all()


def test_centred_rbm_offsets_transform_and_threads(digits01):
    X = digits01
    kw = dict(n_components=16, n_iter=3, learning_rate=0.05, centered=True, random_state=0)
    one = BernoulliRBM(n_jobs=1, **kw).fit(X)
    two = BernoulliRBM(n_jobs=2, **kw).fit(X)
    np.testing.assert_array_equal(one.components_, two.components_)
    np.testing.assert_array_equal(one.hidden_offset_, two.hidden_offset_)
    assert one.visible_offset_.shape == (64,) and one.hidden_offset_.shape == (16,)
    # the offsets track the data mean and the data-driven hidden mean
    np.testing.assert_allclose(one.visible_offset_, X.mean(0), atol=0.05)
    assert np.abs(one.hidden_offset_ - one.transform(X).mean(0)).max() < 0.2
    W, c = one.components_, one.intercept_hidden_
    np.testing.assert_allclose(one.transform(X), ref.sigmoid(X @ W.T + c), rtol=1e-10)
    plain = BernoulliRBM(**{**kw, "centered": False}).fit(X)
    assert not hasattr(plain, "visible_offset_") or not plain.visible_offset_.any()
    untrained = BernoulliRBM(**{**kw, "n_iter": 0}).fit(X)
    assert one.history_["reconstruction_error"][-1] < 0.5 * untrained._reconstruction(X)[0]


def test_files_written_before_the_new_state_load_as_uncentred(digits01, tmp_path):
    import json

    from fastrbm._persistence import _read

    m = BernoulliRBM(n_components=8, n_iter=1, random_state=0).fit(digits01)
    m.save(tmp_path / "new.npz")
    contents, meta = _read(tmp_path / "new.npz")
    new = {"visible_offset_", "hidden_offset_", "_W_fast", "_b_fast", "_c_fast"}
    new_params = {"centered", "fast_learning_rate", "fast_weight_decay"}
    assert new <= set(contents)
    meta = {**meta, "params": {k: v for k, v in meta["params"].items() if k not in new_params},
            "arrays": [a for a in meta["arrays"] if a not in new]}
    np.savez(tmp_path / "old.npz", **{k: v for k, v in contents.items() if k not in new},
             __metadata__=np.array(json.dumps(meta)))
    old = BernoulliRBM.load(tmp_path / "old.npz")
    assert not old.centered and not old.visible_offset_.any()
    assert old.visible_offset_ is old._gibbs.visible_offset
    assert old._gibbs.W_fast.shape == (0, 64)
    a, b = old.partial_fit(digits01), m.partial_fit(digits01)
    np.testing.assert_array_equal(a.components_, b.components_)


SAMPLERS = [dict(centered=True), dict(centered=True, momentum=0.5, hidden_units="gaussian",
                                      learning_rate=0.01),
            dict(fast_learning_rate=0.1, centered=True),
            dict(n_temperatures=3, swap_every=2, fast_learning_rate=0.1)]


@pytest.mark.parametrize("settings", SAMPLERS, ids=str)
def test_checkpoint_resume_and_rollback_are_bit_identical(digits01, tmp_path, settings):
    X = digits01
    kw = dict(n_components=8, n_iter=2, random_state=0, **settings)
    straight = BernoulliRBM(**kw).fit(X).partial_fit(X)
    m = BernoulliRBM(**kw).fit(X)
    m.save(tmp_path / "m.npz")
    resumed = BernoulliRBM.load(tmp_path / "m.npz").partial_fit(X)
    engine = m._gibbs
    engine.snapshot()  # rollback: an epoch, then restore, then the same epoch again
    m.partial_fit(X)
    engine.restore()
    m._sync_stream(engine)
    m.partial_fit(X)
    for model in (resumed, m):
        for name, a in straight._gibbs.state().items():
            np.testing.assert_array_equal(a, model._gibbs.state()[name], err_msg=name)
        assert model._gibbs.counter == straight._gibbs.counter


# ---------------------------------------------------------------------------------------
# Fast-weights PCD (Tieleman & Hinton 2009)
# ---------------------------------------------------------------------------------------

FAST = [
    dict(k=1),
    dict(k=2, momentum=0.5, weight_decay=0.01, fast_weight_decay=0.1),
    dict(k=1, centered=True, sparsity_cost=0.2),
    dict(k=1, visible="gaussian", learn_log_var=True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("settings", FAST, ids=str)
@pytest.mark.parametrize("batch_size", [5, 40])
def test_fast_weights_epoch_matches_oracle(dtype, n_threads, settings, batch_size):
    got, arrays = _against_oracle(dtype, n_threads, batch_size,
                                  dict(persistent=True, fast_learning_rate=0.2, **settings),
                                  seed=2)
    assert not np.array_equal(got.W_fast, arrays["W_fast"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size", [10, 50])
def test_fast_weights_epoch_is_identical_for_1_and_2_threads(dtype, batch_size):
    one = _same_for_1_and_2_threads(dtype, batch_size=batch_size, learning_rate=0.05,
                                    fast_learning_rate=0.05, persistent=True, centered=True)
    assert one.W_fast.any()


def test_fast_weights_need_persistent_chains(digits01):
    _, W, b, c, chain = _small_problem(np.float64)
    engine = _sampling.GibbsEngine(W, b, c, chain)
    with pytest.raises(ValueError, match="persistent"):
        engine.configure(learning_rate=0.1, batch_size=4, fast_learning_rate=0.1)
    with pytest.raises(ValueError, match="fast_weight_decay"):
        engine.configure(learning_rate=0.1, batch_size=4, persistent=True,
                         fast_learning_rate=0.1, fast_weight_decay=2)
    with pytest.raises(ValueError, match="persistent=True"):
        BernoulliRBM(fast_learning_rate=0.1, persistent=False).fit(digits01)
    with pytest.raises(ValueError, match="W_fast"):  # no fast arrays given
        engine.configure(learning_rate=0.1, batch_size=4, persistent=True,
                         fast_learning_rate=0.1)


def test_fast_weights_train_and_decay(digits01):
    X = digits01
    kw = dict(n_components=16, n_iter=3, learning_rate=0.05, fast_learning_rate=0.05,
              random_state=0)
    one = BernoulliRBM(n_jobs=1, **kw).fit(X)
    two = BernoulliRBM(n_jobs=2, **kw).fit(X)
    np.testing.assert_array_equal(one.components_, two.components_)
    W_fast = one._W_fast
    assert W_fast is one._gibbs.W_fast and W_fast.any() and np.abs(W_fast).max() < np.abs(one.components_).max()
    untrained = BernoulliRBM(**{**kw, "n_iter": 0}).fit(X)
    assert one.history_["reconstruction_error"][-1] < 0.5 * untrained._reconstruction(X)[0]
    # a fresh fit starts the fast weights at zero again
    assert not BernoulliRBM(**{**kw, "n_iter": 0}).fit(X)._W_fast.any()
    assert BernoulliRBM(n_iter=0).fit(X)._W_fast.shape == (0, 64)  # nothing stored unused


# ---------------------------------------------------------------------------------------
# Parallel tempering (Desjardins et al. 2010)
# ---------------------------------------------------------------------------------------

TEMPERED = [
    dict(betas=(1.0, 0.7, 0.4), k=1),
    dict(betas=(1.0, 0.5), k=2, swap_every=2, momentum=0.5),
    dict(betas=(1.0, 0.8, 0.6, 0.3), k=1, swap_every=3, centered=True,
         fast_learning_rate=0.1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("settings", TEMPERED, ids=str)
@pytest.mark.parametrize("batch_size", [5, 40])
def test_tempered_epoch_matches_oracle(dtype, n_threads, settings, batch_size):
    X, W, b, c, chain = _small_problem(dtype, n=60)
    W *= dtype(3)  # strong enough weights that some swaps fail
    nh, nv = W.shape
    M, nc = len(settings["betas"]), chain.shape[0]
    rng = np.random.default_rng(3)
    arrays = dict(tempered_chains=(rng.random(((M - 1) * nc, nh)) < 0.5).astype(dtype),
                  visible_offset=rng.random(nv).astype(dtype),
                  hidden_offset=rng.random(nh).astype(dtype))
    if settings.get("fast_learning_rate"):
        arrays.update(W_fast=np.zeros_like(W), b_fast=np.zeros_like(b), c_fast=np.zeros_like(c))
    kw = dict(batch_size=batch_size, learning_rate=0.05, persistent=True, seed=2024,
              counter=17, **settings)
    got = _engine_run(X, W, b, c, chain, n_threads=n_threads, arrays=arrays,
                      tempering_step=1, **kw)
    f64 = lambda a: a.astype(np.float64)  # noqa: E731
    extra = {k: f64(a) for k, a in arrays.items()}
    extra["tempering_step"] = 1
    zeros = [np.zeros(W.shape), np.zeros(nv), np.zeros(nh)]
    want = ref.cd_epoch(f64(X), f64(W), f64(b), f64(c), f64(chain), zeros, np.zeros(nh),
                        extra=extra, **kw)
    assert got.counter == want[6] and got.tempering_step == extra["tempering_step"]
    np.testing.assert_array_equal(got.swap_proposed, extra["swap_proposed"])
    np.testing.assert_array_equal(got.swap_accepted, extra["swap_accepted"])
    if extra["swap_proposed"].sum():  # both outcomes seen (swap_every may skip them all)
        assert 0 < extra["swap_accepted"].sum() < extra["swap_proposed"].sum()
    np.testing.assert_array_equal(got.chains, want[3])
    np.testing.assert_array_equal(got.tempered_chains, extra["tempered_chains"])
    tol = dict(rtol=20 * RTOL[dtype], atol=20 * RTOL[dtype])
    for name, w in [("W", want[0]), ("b", want[1]), ("c", want[2])]:
        np.testing.assert_allclose(getattr(got, name), w, err_msg=name, **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size", [10, 50])
def test_tempered_epoch_is_identical_for_1_and_2_threads(dtype, batch_size):
    one = _same_for_1_and_2_threads(dtype, batch_size=batch_size, learning_rate=0.05,
                                    persistent=True, betas=(1.0, 0.6, 0.2))
    assert one.tempering_step == -(-200 // batch_size)  # k = 1
    assert 0 < one.swap_accepted.sum() < one.swap_proposed.sum()


def test_tempering_swaps_nearly_always_between_close_temperatures():
    X, W, b, c, chain = _small_problem(np.float64, n=200)
    engine = _engine_run(X, W, b, c, chain, n_threads=1, batch_size=10, learning_rate=0.01,
                         persistent=True, betas=(1.0, 0.9999, 0.1),
                         arrays=dict(tempered_chains=np.zeros((10, 8))))
    rates = engine.swap_accepted / engine.swap_proposed
    assert rates[0] > 0.97 and rates[1] < rates[0]


def test_tempering_settings_are_checked(digits01):
    _, W, b, c, chain = _small_problem(np.float64)
    engine = _sampling.GibbsEngine(W, b, c, chain, tempered_chains=np.zeros((10, 8)))
    base = dict(learning_rate=0.1, batch_size=4, persistent=True)
    for betas, match in [((0.9, 0.5), "start at 1"), ((1, 0.5, 0.7), "decrease"),
                         ((1, -0.5), ">= 0"), ((1, 0.5), "need 5")]:
        with pytest.raises(ValueError, match=match):
            engine.configure(betas=betas, **base)
    engine.configure(betas=(1, 0.5, 0.2), **base)  # 2 x 5 tempered chains
    with pytest.raises(ValueError, match="persistent"):
        engine.configure(betas=(1, 0.5, 0.2), **{**base, "persistent": False})
    with pytest.raises(ValueError, match="Bernoulli"):
        engine.configure(betas=(1, 0.5, 0.2), hidden="nrelu", **base)
    with pytest.raises(ValueError, match="swap_every"):
        engine.configure(betas=(1, 0.5, 0.2), swap_every=0, **base)
    X = digits01
    with pytest.raises(ValueError, match="persistent=True"):
        BernoulliRBM(n_temperatures=3, persistent=False).fit(X)
    with pytest.raises(ValueError, match="Bernoulli"):
        BernoulliRBM(n_temperatures=3, hidden_units="gaussian").fit(X)
    with pytest.raises(ValueError, match="Bernoulli"):
        GaussianBernoulliRBM(n_temperatures=3, persistent=True).fit(X)


def test_tempered_rbm_trains_and_reports_swap_rates(digits01):
    X = digits01
    kw = dict(n_components=16, n_iter=3, learning_rate=0.05, n_temperatures=4,
              random_state=0)
    one = BernoulliRBM(n_jobs=1, **kw).fit(X)
    two = BernoulliRBM(n_jobs=2, **kw).fit(X)
    np.testing.assert_array_equal(one.components_, two.components_)
    np.testing.assert_array_equal(one._tempered_chains, two._tempered_chains)
    assert one.swap_acceptance_.shape == (3,)
    assert ((one.swap_acceptance_ > 0) & (one.swap_acceptance_ <= 1)).all()
    assert one._tempered_chains.shape == (30, 16)
    untrained = BernoulliRBM(**{**kw, "n_iter": 0}).fit(X)
    assert one.history_["reconstruction_error"][-1] < 0.5 * untrained._reconstruction(X)[0]
    assert BernoulliRBM(n_iter=1).fit(X).swap_acceptance_.shape == (0,)


# ---------------------------------------------------------------------------------------
# The samplers in DBN stacks and the DBN nets' pretraining
# ---------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 2 epochs
def test_dbn_stacks_take_the_samplers_per_layer(digits01):
    from fastrbm import DBN, DBNClassifier

    X = digits01
    dbn = DBN(hidden_layer_sizes=(16, 8), n_iter=1, centered=[True, False],
              fast_learning_rate=[0.05, None], n_temperatures=[1, 3], min_beta=0.3,
              swap_every=2, random_state=0).fit(X)
    assert [r.centered for r in dbn.rbms_] == [True, False]
    assert [r.fast_learning_rate for r in dbn.rbms_] == [0.05, None]
    assert [r.n_temperatures for r in dbn.rbms_] == [1, 3]
    assert dbn.rbms_[1].swap_acceptance_.shape == (2,) and dbn.rbms_[0].hidden_offset_.any()
    with pytest.raises(ValueError, match="layer 2 of the RBM stack.*persistent=True"):
        DBN(hidden_layer_sizes=(8, 8), persistent=[True, False], n_temperatures=2).fit(X)
    y = (X[:, 20] > 0.3).astype(int)
    clf = DBNClassifier(hidden_layer_sizes=(8,), pretrain_n_iter=1, max_iter=2, persistent=True,
                        centered=True, n_temperatures=2, random_state=0).fit(X, y)
    assert clf.rbms_[0].centered and clf.rbms_[0].n_temperatures == 2
