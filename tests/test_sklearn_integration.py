"""fastrbm inside scikit-learn machinery beyond a single estimator (tests/test_rbm.py covers
the estimator itself: estimator checks, pickling, read-only and memmap input, threads):
process-based grid search with memmapped data, streaming a memmap file through
``partial_fit`` without loading it, and pandas output through a Pipeline and a
ColumnTransformer."""
import tracemalloc

import joblib
import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from threadpoolctl import threadpool_limits

from fastrbm import BernoulliRBM


def test_process_workers_get_a_readonly_memmap_and_fit_the_same_model(digits):
    # What GridSearchCV's loky workers receive when X exceeds joblib's max_nbytes: a
    # read-only np.memmap of joblib's dump of X. Fitting on it in a worker process gives the
    # bit-identical model.
    X, _ = digits
    rbm = BernoulliRBM(n_components=16, n_iter=2, random_state=0)
    mode, remote = joblib.Parallel(n_jobs=2, backend="loky", max_nbytes="1K")([
        joblib.delayed(getattr)(X, "mode"),
        joblib.delayed(rbm.fit)(X),
    ])
    assert mode == "r"
    np.testing.assert_array_equal(remote.components_, rbm.fit(X).components_)


def test_grid_search_with_process_workers_matches_serial(digits):
    X, y = digits
    X, y = X[:900], y[:900]
    pipe = Pipeline([("rbm", BernoulliRBM(n_iter=5, random_state=0)),
                     ("logistic", LogisticRegression(C=100, max_iter=1000))])
    grid = {"rbm__n_components": [8, 64], "rbm__learning_rate": [0.01, 0.06]}
    with threadpool_limits(1, user_api="blas"):  # as in loky's workers: BLAS rounds alike
        serial = GridSearchCV(pipe, grid, cv=3, n_jobs=1).fit(X, y)
    with joblib.parallel_config(backend="loky", max_nbytes="1K"):  # X goes as a memmap
        parallel = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X, y)
    assert parallel.best_params_ == serial.best_params_
    # The RBM features are bit-identical in every process; the logistic regressions run
    # with single-threaded BLAS in loky workers and may round differently.
    np.testing.assert_allclose(parallel.cv_results_["mean_test_score"],
                               serial.cv_results_["mean_test_score"], atol=1e-12)
    # The search is not degenerate: the grid's scores differ and the best is good.
    assert np.ptp(serial.cv_results_["mean_test_score"]) > 0.01
    assert serial.best_score_ > 0.7


def test_partial_fit_streams_a_memmap_file_without_loading_it(tmp_path):
    # A float32 file of 24000x784 (75 MB) trained on in chunks of 1000 rows: the chunks are
    # views into the mapping, so Python-side allocations stay far below the file size.
    n_rows, n_features, chunk = 24_000, 784, 1_000
    path = tmp_path / "big.f32"
    rng = np.random.default_rng(0)
    prototypes = rng.random((10, n_features)) < 0.3
    writer = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_rows, n_features))
    for start in range(0, n_rows, chunk):  # written chunk by chunk too
        rows = prototypes[rng.integers(0, 10, chunk)] ^ (rng.random((chunk, n_features)) < 0.05)
        writer[start:start + chunk] = rows
    writer.flush()
    del writer
    file_size = path.stat().st_size
    assert file_size == n_rows * n_features * 4

    X = np.memmap(path, dtype=np.float32, mode="r", shape=(n_rows, n_features))
    kw = dict(n_components=32, batch_size=100, learning_rate=0.05, random_state=0)
    streamed = BernoulliRBM(**kw)
    tracemalloc.start()
    try:
        for start in range(0, n_rows, chunk):
            streamed.partial_fit(X[start:start + chunk])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < file_size / 5, f"peak Python allocation {peak / 2**20:.1f} MiB"
    assert streamed.n_iter_ == n_rows // chunk

    # The same chunks from an in-memory copy give the bit-identical model, and it learned.
    X_ram = np.array(X)
    in_memory = BernoulliRBM(**kw)
    for start in range(0, n_rows, chunk):
        in_memory.partial_fit(X_ram[start:start + chunk])
    np.testing.assert_array_equal(streamed.components_, in_memory.components_)
    error = streamed.history_["reconstruction_error"]
    assert error[-1] < 0.5 * error[0]


def test_pandas_output_through_pipeline_and_column_transformer(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    df = pd.DataFrame(X * 16, columns=[f"px{i}" for i in range(64)],
                      index=pd.RangeIndex(1000, 1000 + len(X), name="image"))
    rbm_kw = dict(n_components=6, n_iter=2, random_state=0)

    # Scaling then RBM then a classifier: the classifier sees the RBM's feature names.
    pipe = Pipeline([("scale", MinMaxScaler()), ("rbm", BernoulliRBM(**rbm_kw)),
                     ("logistic", LogisticRegression(max_iter=200))])
    pipe.set_output(transform="pandas").fit(df, y)
    names = [f"bernoullirbm{i}" for i in range(6)]
    assert list(pipe["logistic"].feature_names_in_) == names
    features = pipe[:-1].transform(df)
    assert isinstance(features, pd.DataFrame) and list(features.columns) == names
    assert features.index.equals(df.index)
    assert (features.dtypes == np.float32).all()
    plain = BernoulliRBM(**rbm_kw).fit(MinMaxScaler().fit_transform(X * 16))
    np.testing.assert_array_equal(
        features.to_numpy(), plain.transform(MinMaxScaler().fit_transform(X * 16)))

    # Two RBMs on the two halves of the image: prefixed names, one frame.
    halves = ColumnTransformer([("top", BernoulliRBM(**rbm_kw), list(df.columns[:32])),
                                ("bottom", BernoulliRBM(**rbm_kw), list(df.columns[32:]))])
    out = halves.set_output(transform="pandas").fit_transform(df / 16)
    assert list(out.columns) == ([f"top__bernoullirbm{i}" for i in range(6)]
                                 + [f"bottom__bernoullirbm{i}" for i in range(6)])
    assert list(halves.get_feature_names_out()) == list(out.columns)
    assert out.index.equals(df.index)


def _every_transformer():
    from fastrbm import DBN, GaussianBernoulliRBM

    return [BernoulliRBM(n_components=6, n_iter=2, random_state=0),
            GaussianBernoulliRBM(n_components=6, n_iter=2, random_state=0),
            DBN((8, 6), n_iter=2, random_state=0)]


@pytest.mark.parametrize("transformer", _every_transformer(), ids=lambda e: type(e).__name__)
def test_every_transformer_pandas_in_and_out(digits, transformer):
    pd = pytest.importorskip("pandas")
    X, _ = digits
    frame = pd.DataFrame(X[:200].astype(np.float32),
                         columns=[f"px{i}" for i in range(X.shape[1])])
    out = transformer.set_output(transform="pandas").fit(frame).transform(frame)
    prefix = type(transformer).__name__.lower()
    assert list(out.columns) == [f"{prefix}{i}" for i in range(6)]
    assert (out.dtypes == np.float32).all() and out.index.equals(frame.index)
    assert list(transformer.feature_names_in_) == list(frame.columns)


@pytest.mark.parametrize("estimator", ["DBNClassifier", "DBNRegressor"])
def test_networks_fit_a_readonly_memmap_in_a_process_worker(digits, estimator):
    import warnings

    import fastrbm
    from sklearn.exceptions import ConvergenceWarning

    X, y = digits
    model = getattr(fastrbm, estimator)((16,), pretrain_n_iter=2, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        remote = joblib.Parallel(n_jobs=2, backend="loky", max_nbytes="1K")(
            [joblib.delayed(model.fit)(X, y.astype(float) if "Regressor" in estimator
                                       else y)])[0]
        local = model.fit(X, y.astype(float) if "Regressor" in estimator else y)
    for a, b in zip(remote.coefs_, local.coefs_):
        np.testing.assert_array_equal(a, b)
