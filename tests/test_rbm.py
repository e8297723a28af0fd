"""BernoulliRBM: a drop-in for scikit-learn's, plus the extensions."""
import inspect
import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM as SkBernoulliRBM
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastrbm import BernoulliRBM, GaussianBernoulliRBM

from . import _reference as ref


@pytest.fixture(scope="module")
def binary_data():
    # A small binary data set with structure: three prototypes with 10% bit flips.
    rng = np.random.default_rng(0)
    protos = rng.random((3, 12)) < 0.5
    X = protos[rng.integers(0, 3, 300)] ^ (rng.random((300, 12)) < 0.1)
    return X.astype(np.float64)


# Genuinely stochastic: the pseudo-likelihood flips one randomly drawn unit per row, so a
# row's score depends on its position (scikit-learn lists the same failure for its RBM).
EXPECTED_FAILED_CHECKS = {
    "check_methods_sample_order_invariance": "score_samples flips a random unit per row",
    "check_methods_subset_invariance": "score_samples flips a random unit per row",
}


@pytest.mark.filterwarnings("ignore:BernoulliRBM models binary data")
@parametrize_with_checks([BernoulliRBM()],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_same_parameters_and_defaults_as_sklearn():
    ours = inspect.signature(BernoulliRBM).parameters
    theirs = inspect.signature(SkBernoulliRBM).parameters
    for name, param in theirs.items():
        assert name in ours
        assert ours[name].default == param.default, name
        assert ours[name].kind == param.kind, name
    extra = set(ours) - set(theirs)
    assert all(ours[name].kind == inspect.Parameter.KEYWORD_ONLY for name in extra)


def test_same_fitted_attributes_as_sklearn(digits):
    X, _ = digits
    ours = BernoulliRBM(n_components=16, n_iter=1, random_state=0).fit(X)
    theirs = SkBernoulliRBM(n_components=16, n_iter=1, random_state=0).fit(X)
    for name in ["components_", "intercept_hidden_", "intercept_visible_", "h_samples_"]:
        assert getattr(ours, name).shape == getattr(theirs, name).shape, name
    assert ours.n_features_in_ == theirs.n_features_in_ == 64
    for method in ["transform", "gibbs", "score_samples"]:
        assert getattr(ours, method)(X[:5]).shape == getattr(theirs, method)(X[:5]).shape


def test_pseudo_likelihood_matches_sklearn_quality(digits):
    # scikit-learn's own test_fit: digits in [0, 1], 64 components, lr 0.1, batch 10,
    # 7 epochs, random_state=9 gives a mean pseudo-likelihood of about -21.
    X, _ = digits
    kw = dict(n_components=64, learning_rate=0.1, batch_size=10, n_iter=7, random_state=9)
    ours = BernoulliRBM(**kw).fit(X).score_samples(X).mean()
    theirs = SkBernoulliRBM(**kw).fit(X.astype(np.float64)).score_samples(X).mean()
    assert abs(ours - theirs) < 1.0
    assert -23 < ours < -19


def test_pipeline_with_logistic_regression(digits):
    # scikit-learn's example: RBM features then logistic regression.
    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    pipe = Pipeline([
        ("rbm", BernoulliRBM(n_components=100, learning_rate=0.06, n_iter=10,
                             random_state=0)),
        ("logistic", LogisticRegression(C=100, max_iter=2000)),
    ]).fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.9


def test_dtype_follows_the_data_as_scikit_learn(digits):
    X, _ = digits
    kw = dict(n_components=8, n_iter=1, random_state=0)
    m32 = BernoulliRBM(**kw).fit(X.astype(np.float32))
    m64 = BernoulliRBM(**kw).fit(X.astype(np.float64))
    m_int = BernoulliRBM(**kw).fit((X > 0.5).astype(np.int64))
    for model, dtype in [(m32, np.float32), (m64, np.float64), (m_int, np.float64)]:
        for attr in ["components_", "intercept_hidden_", "intercept_visible_", "h_samples_"]:
            assert getattr(model, attr).dtype == dtype
        assert model.transform(X).dtype == dtype  # in the model's precision
        assert model.score_samples(X).dtype == dtype
    assert BernoulliRBM().__sklearn_tags__().transformer_tags.preserves_dtype == [
        "float64", "float32"]
    # The two precisions train the same model up to rounding.
    np.testing.assert_allclose(m32.components_, m64.components_, atol=1e-4)


def test_explicit_dtype_forces_the_precision(digits):
    X, _ = digits
    forced = BernoulliRBM(n_components=8, n_iter=1, random_state=0, dtype="float32")
    forced.fit(X.astype(np.float64))
    assert forced.components_.dtype == np.float32
    assert forced.transform(X.astype(np.float64)).dtype == np.float32
    assert forced.__sklearn_tags__().transformer_tags.preserves_dtype == ["float32"]


def test_partial_fit_keeps_the_dtype_of_the_first_chunk(digits):
    X, _ = digits
    m = BernoulliRBM(n_components=8, random_state=0).partial_fit(X[:100].astype(np.float32))
    m.partial_fit(X[100:200].astype(np.float64))
    assert m.components_.dtype == np.float32 and m.h_samples_.dtype == np.float32


@pytest.mark.parametrize("persistent", [True, False])
def test_same_seed_same_model_for_any_thread_count(digits, persistent):
    X, _ = digits
    kw = dict(n_components=256, batch_size=256, n_iter=2, random_state=3, momentum=0.5,
              persistent=persistent)
    models = [BernoulliRBM(n_jobs=n, **kw).fit(X) for n in (1, 2, 1)]
    for m in models[1:]:
        np.testing.assert_array_equal(m.components_, models[0].components_)
        np.testing.assert_array_equal(m.intercept_hidden_, models[0].intercept_hidden_)
        np.testing.assert_array_equal(m.h_samples_, models[0].h_samples_)
    other = BernoulliRBM(n_jobs=1, **{**kw, "random_state": 4}).fit(X)
    assert not np.array_equal(other.components_, models[0].components_)


def test_sparse_input_gives_the_same_model(digits):
    X, _ = digits
    kw = dict(n_components=16, n_iter=2, random_state=0)
    dense = BernoulliRBM(**kw).fit(X)
    sparse = BernoulliRBM(**kw).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(dense.components_, sparse.components_)
    np.testing.assert_allclose(dense.transform(X), sparse.transform(sp.csr_matrix(X)),
                               rtol=1e-5)
    np.testing.assert_allclose(dense.score_samples(X), sparse.score_samples(sp.csr_matrix(X)),
                               rtol=1e-5)


def test_partial_fit_streams_one_epoch_per_call(digits):
    X, _ = digits
    X = X[:1600]
    kw = dict(n_components=16, batch_size=10, random_state=0)
    whole = BernoulliRBM(n_iter=1, **kw).fit(X)
    streamed = BernoulliRBM(**kw)
    for chunk in np.split(X, 4):  # 400 rows: whole mini-batches
        assert streamed.partial_fit(chunk) is streamed
    np.testing.assert_array_equal(streamed.components_, whole.components_)
    np.testing.assert_array_equal(streamed.h_samples_, whole.h_samples_)
    assert streamed.n_iter_ == 4 and len(streamed.history_["reconstruction_error"]) == 4


def test_training_improves_exact_log_likelihood(binary_data):
    # 12 hidden units: log Z by enumerating the hidden states.
    X = binary_data
    model = BernoulliRBM(n_components=12, learning_rate=0.05, batch_size=10, random_state=0,
                         persistent=False, dtype="float64", n_iter=0).fit(X)

    def mean_log_likelihood(m):
        W, b, c = m.components_, m.intercept_visible_, m.intercept_hidden_
        return np.mean(-ref.free_energy(X, W, b, c) - ref.exact_log_partition(W, b, c))

    lls = [mean_log_likelihood(model)]
    for _ in range(6):
        model.partial_fit(X)
        lls.append(mean_log_likelihood(model))
    assert lls[-1] > lls[0] + 1.0
    assert all(np.diff(lls[1:]) > -0.05)  # no real setback
    assert lls[-1] > 12 * np.log(0.5) + 1  # clearly better than the uniform model


@pytest.mark.parametrize("settings", [
    dict(k=5, persistent=False), dict(k=2, persistent=True), dict(momentum=0.9),
    dict(weight_decay=1e-3), dict(sparsity_cost=0.5, sparsity_target=0.05),
])
def test_extensions_train_and_reduce_reconstruction_error(digits, settings):
    X, _ = digits
    untrained = BernoulliRBM(n_components=32, n_iter=0, random_state=0).fit(X)
    m = BernoulliRBM(n_components=32, n_iter=4, learning_rate=0.05, random_state=0,
                     **settings).fit(X)
    err = m.history_["reconstruction_error"]
    assert len(err) == 4
    assert err[-1] < 0.5 * untrained._reconstruction(X)[0]
    assert np.isfinite(m.components_).all()


def test_sparsity_lowers_hidden_activity(digits):
    X, _ = digits
    kw = dict(n_components=32, n_iter=4, learning_rate=0.05, random_state=0)
    dense = BernoulliRBM(**kw).fit(X).transform(X).mean()
    sparse = BernoulliRBM(sparsity_cost=2.0, sparsity_target=0.02, **kw).fit(X)
    assert sparse.transform(X).mean() < 0.5 * dense


def test_free_energy_and_reconstruct_match_oracle(digits):
    X, _ = digits
    m = BernoulliRBM(n_components=16, n_iter=1, random_state=0, dtype="float64").fit(X)
    W, b, c = m.components_, m.intercept_visible_, m.intercept_hidden_
    np.testing.assert_allclose(m.free_energy(X), ref.free_energy(X, W, b, c), rtol=1e-10)
    expected = ref.sigmoid(ref.sigmoid(X @ W.T + c) @ W + b)
    np.testing.assert_allclose(m.reconstruct(X), expected, rtol=1e-10)
    np.testing.assert_allclose(m.transform(X), ref.sigmoid(X @ W.T + c), rtol=1e-10)


def test_gibbs_and_sample_are_binary_and_reproducible(digits):
    X, _ = digits
    m = BernoulliRBM(n_components=16, n_iter=1, random_state=0).fit(X)
    g = m.gibbs(X[:7])
    assert g.shape == (7, 64) and set(np.unique(g)) <= {0.0, 1.0}
    s = m.sample(5, n_steps=20)
    assert s.shape == (5, 64) and set(np.unique(s)) <= {0.0, 1.0}
    assert not np.array_equal(m.sample(5, n_steps=20), s)  # the stream moves on
    m2 = BernoulliRBM(n_components=16, n_iter=1, random_state=0).fit(X)
    np.testing.assert_array_equal(m2.gibbs(X[:7]), g)
    np.testing.assert_array_equal(m2.sample(5, n_steps=20), s)
    with pytest.raises(ValueError, match="n_samples"):
        m.sample(0)


def test_generation_learns_the_data_marginals(binary_data):
    X = binary_data
    m = BernoulliRBM(n_components=16, learning_rate=0.05, n_iter=30, random_state=0,
                     persistent=False, k=3).fit(X)
    samples = m.sample(2000, n_steps=200)
    np.testing.assert_allclose(samples.mean(axis=0), X.mean(axis=0), atol=0.08)


SKLEARN_LINE = (r"\[BernoulliRBM\] Iteration {}, pseudo-likelihood = -?\d+\.\d\d, "
                r"time = \d+\.\d\ds\n")


def test_history_and_silence_by_default(digits, capsys):
    X, _ = digits
    m = BernoulliRBM(n_components=8, n_iter=3, random_state=0).fit(X)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert len(m.history_["time"]) == 3 and m.n_iter_ == 3


@pytest.mark.parametrize("verbose", [1, True, 2])
def test_verbose_prints_scikit_learns_lines_on_stdout(digits, capsys, verbose):
    # Captured output is not a terminal: lines only, no progress bar on stderr.
    X, _ = digits
    BernoulliRBM(n_components=8, n_iter=2, random_state=0, verbose=verbose).fit(X)
    captured = capsys.readouterr()
    assert re.fullmatch(SKLEARN_LINE.format(1) + SKLEARN_LINE.format(2), captured.out)
    assert captured.err == ""


def test_verbose_line_matches_the_models_pseudo_likelihood(digits, capsys):
    X, _ = digits
    m = BernoulliRBM(n_components=8, n_iter=1, random_state=0, verbose=1).fit(X)
    printed = float(re.search(r"pseudo-likelihood = (\S+),", capsys.readouterr().out)[1])
    assert printed == pytest.approx(m.score_samples(X).mean(), abs=0.006)


def test_verbose_with_nrelu_units_prints_the_reconstruction_error(digits, capsys):
    X, _ = digits
    BernoulliRBM(n_components=8, n_iter=1, random_state=0, hidden_units="nrelu",
                 learning_rate=0.01, verbose=1).fit(X)
    assert re.fullmatch(r"\[BernoulliRBM\] Iteration 1, reconstruction error = \d\.\d{4}, "
                        r"time = \d+\.\d\ds\n", capsys.readouterr().out)


def test_verbose_with_feature_names_does_not_warn(digits):
    pd = pytest.importorskip("pandas")
    X, _ = digits
    df = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BernoulliRBM(n_components=4, n_iter=1, random_state=0, verbose=1).fit(df)


@pytest.fixture
def bars_on_request():
    """Progress bars asked for explicitly (restored after the test)."""
    import fastrbm

    previous = fastrbm.set_progress_bar(True)
    yield
    fastrbm.set_progress_bar(previous)


def _fit_two_verbose_epochs(X):
    BernoulliRBM(n_components=8, n_iter=2, random_state=0, verbose=1).fit(X)


def test_progress_bar_on_request_goes_to_stderr(digits, capsys, bars_on_request):
    pytest.importorskip("tqdm")
    import fastrbm

    X, _ = digits
    _fit_two_verbose_epochs(X)
    captured = capsys.readouterr()
    assert re.fullmatch(SKLEARN_LINE.format(1) + SKLEARN_LINE.format(2), captured.out)
    assert "BernoulliRBM" in captured.err and "epoch" in captured.err
    # verbose=0 stays silent even when bars are asked for
    BernoulliRBM(n_components=8, n_iter=1, random_state=0).fit(X)
    assert capsys.readouterr() == ("", "")
    with pytest.raises(ValueError, match="None, True or False"):
        fastrbm.set_progress_bar("yes")


def test_verbose_without_tqdm_prints_the_same_lines(digits, capsys, monkeypatch,
                                                    bars_on_request):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    X, _ = digits
    _fit_two_verbose_epochs(X)
    captured = capsys.readouterr()
    assert re.fullmatch(SKLEARN_LINE.format(1) + SKLEARN_LINE.format(2), captured.out)
    assert captured.err == ""


def test_values_outside_unit_interval_warn(digits):
    X, _ = digits
    with pytest.warns(UserWarning, match=r"\[0, 1\]"):
        BernoulliRBM(n_components=4, n_iter=1).fit(X * 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BernoulliRBM(n_components=4, n_iter=1).fit(X)


@pytest.mark.parametrize("dtype, learning_rate", [(np.float32, 1e38), (np.float64, 1e308)])
def test_divergence_raises_and_keeps_a_finite_model(dtype, learning_rate):
    X = np.eye(20, dtype=dtype)
    m = BernoulliRBM(n_components=5, learning_rate=learning_rate, n_iter=3, random_state=0,
                     momentum=0.9)
    with pytest.raises(FloatingPointError, match="diverged in epoch"):
        m.fit(X)
    assert np.isfinite(m.components_).all()


def test_clone_and_pickle_round_trip(digits):
    X, _ = digits
    m = BernoulliRBM(n_components=8, n_iter=1, random_state=0, momentum=0.5).fit(X)
    assert clone(m).get_params() == m.get_params()
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m2.transform(X), m.transform(X))
    m.partial_fit(X)
    m2.partial_fit(X)
    np.testing.assert_array_equal(m2.components_, m.components_)


@pytest.mark.parametrize("bad, match", [
    (np.array([[0.0, np.nan], [1.0, 0.0]]), "NaN"),
    (np.array([[0.0, np.inf], [1.0, 0.0]]), "infinity"),
    (np.empty((0, 3)), "0 sample"),
    (np.array([0.0, 1.0, 1.0]), "2D array"),
    (np.zeros((2, 3, 4)), "dim 3"),
    (np.array([[1 + 1j, 0], [0, 1]]), "[Cc]omplex"),
    (np.array([["a", "b"], ["c", "d"]], dtype=object), "could not convert|[Ss]tring"),
])
def test_bad_input_gets_a_clear_error(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        BernoulliRBM(n_components=2, n_iter=1).fit(bad)


@pytest.mark.parametrize("params", [dict(n_components=0), dict(learning_rate=0),
                                    dict(learning_rate=-1), dict(k=0), dict(batch_size=0),
                                    dict(momentum=1.0), dict(dtype="float16")])
def test_absurd_parameters_are_rejected(params):
    with pytest.raises(ValueError, match=next(iter(params))):
        BernoulliRBM(**params).fit(np.eye(4))


@pytest.mark.parametrize("convert, dtype", [
    (lambda X: X.astype(bool), np.float64), (lambda X: X.astype(np.int64), np.float64),
    (lambda X: X.astype(np.float16), np.float64), (np.asfortranarray, np.float32),
    (lambda X: np.repeat(X, 2, axis=1)[:, ::2], np.float32), (sp.csc_matrix, np.float32),
    (sp.coo_matrix, np.float32),
])
def test_accepted_input_kinds_train_the_same_model(convert, dtype):
    # Layouts and sparse formats change nothing; other dtypes train in float64.
    X = (np.random.default_rng(0).random((40, 6)) < 0.5).astype(np.float32)
    kw = dict(n_components=3, n_iter=2, random_state=0)
    expected = BernoulliRBM(**kw).fit(X.astype(dtype)).components_
    actual = BernoulliRBM(**kw).fit(convert(X)).components_
    assert actual.dtype == dtype
    np.testing.assert_array_equal(actual, expected)


def test_rejected_call_leaves_the_model_unchanged(digits):
    X, _ = digits
    m = BernoulliRBM(n_components=8, n_iter=1, random_state=0).fit(X)
    before = m.components_.copy(), m._rng_counter
    for call in (m.partial_fit, m.transform, m.gibbs, m.score_samples):
        with pytest.raises(ValueError, match="features"):
            call(X[:, :10])
    with pytest.raises(ValueError):
        m.partial_fit(np.full_like(X, np.nan))
    np.testing.assert_array_equal(m.components_, before[0])
    assert m._rng_counter == before[1]
    m.transform(X)  # still usable


def test_readonly_and_memmap_input(digits, tmp_path):
    X, _ = digits
    kw = dict(n_components=8, n_iter=1, random_state=0)
    expected = BernoulliRBM(**kw).fit(X).components_
    X_ro = X.copy()
    X_ro.flags.writeable = False
    np.save(tmp_path / "X.npy", X)
    X_mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    for data in (X_ro, X_mm):
        np.testing.assert_array_equal(BernoulliRBM(**kw).fit(data).components_, expected)


def test_keyboard_interrupt_keeps_the_completed_epochs(digits, monkeypatch):
    # Ctrl-C reaches Python when the compiled epoch returns; that epoch is rolled back.
    from fastrbm import rbm as rbm_module

    X, _ = digits
    kw = dict(n_components=8, random_state=0, momentum=0.5)
    one_epoch = BernoulliRBM(n_iter=1, **kw).fit(X)
    real_epoch, calls = rbm_module._sampling.cd_epoch, []

    def interrupted_on_second_call(*args):
        calls.append(1)
        result = real_epoch(*args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(rbm_module._sampling, "cd_epoch", interrupted_on_second_call)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        m = BernoulliRBM(n_iter=5, **kw).fit(X)
    assert m.n_iter_ == 1
    np.testing.assert_array_equal(m.components_, one_epoch.components_)
    np.testing.assert_array_equal(m.h_samples_, one_epoch.h_samples_)
    monkeypatch.undo()
    m.partial_fit(X)  # still usable


def test_pandas_input_output_and_feature_names(digits):
    pd = pytest.importorskip("pandas")
    X, _ = digits
    df = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    m = BernoulliRBM(n_components=5, n_iter=1, random_state=0).fit(df)
    np.testing.assert_array_equal(m.feature_names_in_, df.columns)
    names = m.get_feature_names_out()
    assert list(names) == [f"bernoullirbm{i}" for i in range(5)]
    out = m.set_output(transform="pandas").transform(df)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)
    assert out.dtypes.iloc[0] == np.float32  # float32 data, float32 model
    np.testing.assert_array_equal(out.to_numpy(), BernoulliRBM(
        n_components=5, n_iter=1, random_state=0).fit(X).transform(X))


def test_joblib_and_deepcopy_round_trips(digits, tmp_path):
    import copy

    import joblib

    X, _ = digits
    m = BernoulliRBM(n_components=8, n_iter=1, random_state=0).fit(X)
    joblib.dump(m, tmp_path / "rbm.joblib")
    for other in (joblib.load(tmp_path / "rbm.joblib"), copy.deepcopy(m)):
        np.testing.assert_array_equal(other.transform(X), m.transform(X))
        np.testing.assert_array_equal(other.free_energy(X), m.free_energy(X))


def test_checkpoint_resume_is_bit_identical(digits, tmp_path):
    X, _ = digits
    kw = dict(n_components=16, random_state=0, momentum=0.5, persistent=True)
    uninterrupted = BernoulliRBM(n_iter=3, **kw).fit(X)
    first = BernoulliRBM(n_iter=1, **kw).fit(X)
    first.save(tmp_path / "rbm.npz")
    resumed = BernoulliRBM.load(tmp_path / "rbm.npz")
    np.testing.assert_array_equal(resumed.transform(X), first.transform(X))
    resumed.partial_fit(X).partial_fit(X)
    for name in ["components_", "intercept_hidden_", "intercept_visible_", "h_samples_"]:
        np.testing.assert_array_equal(getattr(resumed, name), getattr(uninterrupted, name))
    assert resumed.n_iter_ == 3 and resumed.get_params() == first.get_params()


def test_checkpoint_keeps_feature_names(digits, tmp_path):
    pd = pytest.importorskip("pandas")
    X, _ = digits
    df = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(df).save(tmp_path / "m.npz")
    m = BernoulliRBM.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(m.feature_names_in_, df.columns)
    m.transform(df)


def test_checkpoint_rejects_bad_files_clearly(digits, tmp_path):
    X, _ = digits
    path = tmp_path / "rbm.npz"
    with pytest.raises(ValueError, match="not fitted"):
        BernoulliRBM().save(path)
    BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(X).save(path)
    good = path.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(good[: len(good) // 2])
    (tmp_path / "garbage.npz").write_bytes(b"not a model at all")
    for name in ["truncated.npz", "garbage.npz"]:
        with pytest.raises(ValueError, match="not a readable fastrbm model"):
            BernoulliRBM.load(tmp_path / name)
    with np.load(path) as data:
        contents = {k: data[k] for k in data.files}
    meta = __import__("json").loads(str(contents["__metadata__"]))
    meta["format_version"] = 99
    contents["__metadata__"] = np.array(__import__("json").dumps(meta))
    np.savez(tmp_path / "future.npz", **contents)
    with pytest.raises(ValueError, match="format 99"):
        BernoulliRBM.load(tmp_path / "future.npz")
    with pytest.raises(FileNotFoundError):
        BernoulliRBM.load(tmp_path / "missing.npz")


def test_checkpoint_write_is_atomic(digits, tmp_path, monkeypatch):
    X, _ = digits
    path = tmp_path / "rbm.npz"
    m = BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(X)
    m.save(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        m.partial_fit(X).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["rbm.npz"]


def test_threads_fitting_and_transforming_concurrently_match_serial(digits):
    from concurrent.futures import ThreadPoolExecutor

    X, _ = digits
    seeds = [0, 1, 2, 3]
    serial = [BernoulliRBM(n_components=32, n_iter=2, random_state=s).fit(X).components_
              for s in seeds]
    with ThreadPoolExecutor(max_workers=2) as pool:
        fitted = list(pool.map(
            lambda s: BernoulliRBM(n_components=32, n_iter=2, random_state=s).fit(X), seeds))
        for model, expected in zip(fitted, serial):
            np.testing.assert_array_equal(model.components_, expected)
        # each chunk as transformed alone (BLAS may round a row differently inside
        # matrices of other sizes, so the chunks are compared with themselves)
        chunks = np.array_split(X, 6)
        together = list(pool.map(fitted[0].transform, chunks))
    for chunk, out in zip(chunks, together):
        np.testing.assert_array_equal(out, fitted[0].transform(chunk))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_extreme_weights_give_finite_outputs(digits, dtype):
    X, _ = digits
    m = BernoulliRBM(n_components=10, n_iter=1, random_state=0, dtype=dtype).fit(X)
    rng = np.random.default_rng(0)
    m.components_ = (np.sign(rng.standard_normal(m.components_.shape)) * 1e3).astype(dtype)
    m.intercept_hidden_[:] = -1e3
    for out in (m.transform(X), m.reconstruct(X), m.free_energy(X), m.score_samples(X),
                m.gibbs(X), m.sample(4, n_steps=3), m.log_likelihood(X[:50], method="exact")):
        assert np.isfinite(out).all()


def test_load_rejects_arrays_whose_shapes_do_not_fit(digits, tmp_path):
    # A crafted file with consistent metadata but a wrong-shaped array must fail on load,
    # before anything reaches the compiled kernels.
    X, _ = digits
    path = tmp_path / "rbm.npz"
    BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(X).save(path)
    with np.load(path, allow_pickle=False) as data:
        contents = {key: data[key] for key in data.files}
    key = next(k for k in contents if k.endswith("intercept_hidden_"))
    contents[key] = np.zeros(5, contents[key].dtype)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **contents)
    with pytest.raises(ValueError, match="intercept_hidden_ has shape"):
        BernoulliRBM.load(bad)


@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
def test_checkpoint_keys_and_engine_arrays_follow_the_state_table(digits, tmp_path, cls):
    # Files keep the keys they have always had (older files load), and the estimator's
    # arrays are the engine's own, before and after a round trip.
    X, _ = digits
    m = cls(n_components=4, n_iter=1, random_state=0, momentum=0.5).fit(X)
    m.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        keys = set(data.files) - {"__metadata__"}
    want = {"components_", "intercept_hidden_", "intercept_visible_", "h_samples_",
            "_q_hidden", "_velocity.0", "_velocity.1", "_velocity.2", "visible_offset_",
            "hidden_offset_", "_W_fast", "_b_fast", "_c_fast", "_tempered_chains",
            "swap_acceptance_"}
    if cls is GaussianBernoulliRBM:
        want |= {"_log_var", "_velocity.3"}
    assert keys == want
    for model in (m, cls.load(tmp_path / "m.npz")):
        engine = model._gibbs
        assert model.components_ is engine.W and model.h_samples_ is engine.chains
        assert model._velocity[0] is engine.W_vel
        assert engine == m._gibbs
