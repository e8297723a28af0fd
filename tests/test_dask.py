"""dask beyond one machine: ``dask_ml.wrappers.Incremental`` over a dask array and a
hyperparameter search through joblib's dask backend, on a two-process ``LocalCluster`` on
loopback that the tests start and close themselves. Skipped without the ``dask`` extra
(``pip install "fastrbm[dask]"``; CI installs it).

The Incremental model is compared with block-wise ``partial_fit`` in the same process for
*bit-identity*, not closeness: the fitted state is plain NumPy arrays plus the sampling
stream's (seed, counter), so the pickling that carries the model from worker to worker loses
nothing, and the engine splits its work by a rule that depends on the array shapes and the
machine's core count only (never on threads, process or call history), so a worker performs
exactly the floating-point operations of the serial loop. (On workers with a different CPU
or core count the BLAS kernels or the block split could differ; then only float32 closeness
would hold. A LocalCluster runs on this machine.)
"""
import re

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers")

from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.utils import check_random_state  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from fastrbm import BernoulliRBM  # noqa: E402
from fastrbm.datasets import load_digits  # noqa: E402

CHUNK = 200


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def task_names_and_workers(stream):
    """(task name, worker address) of every task a ``get_task_stream`` recorded."""
    return [(t["key"][0] if isinstance(t["key"], tuple) else t["key"], t["worker"])
            for t in stream.data]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits()
    return X[:1600], y[:1600]


@pytest.mark.parametrize("shuffle_blocks", [False, True])
def test_incremental_equals_blockwise_partial_fit(client, digits, shuffle_blocks):
    X, _ = digits
    kw = dict(n_components=32, batch_size=10, momentum=0.5, random_state=0)
    X_dask = da.from_array(X, chunks=(CHUNK, X.shape[1]))
    n_blocks = X_dask.numblocks[0]
    assert n_blocks == 8

    inc = dask_ml_wrappers.Incremental(BernoulliRBM(**kw), shuffle_blocks=shuffle_blocks,
                                       random_state=3)
    with distributed.get_task_stream(client) as stream:
        inc.fit(X_dask)
    # One partial_fit task per block (plus the initial model), all on the worker processes.
    workers = set(client.scheduler_info()["workers"])
    fits = [w for name, w in task_names_and_workers(stream) if name.startswith("fit-")]
    assert len(fits) == n_blocks + 1 and set(fits) <= workers

    order = list(range(n_blocks))
    if shuffle_blocks:  # dask-ml's block order for random_state=3
        check_random_state(3).shuffle(order)
        assert order != sorted(order)
    local = BernoulliRBM(**kw)
    for i in order:
        local.partial_fit(X[i * CHUNK:(i + 1) * CHUNK])

    remote = inc.estimator_
    assert remote.n_iter_ == local.n_iter_ == n_blocks
    for name in ("components_", "intercept_hidden_", "intercept_visible_", "h_samples_"):
        np.testing.assert_array_equal(getattr(remote, name), getattr(local, name), err_msg=name)
    assert remote.history_["reconstruction_error"] == local.history_["reconstruction_error"]
    # The fitted model transforms dask arrays block-wise, and numpy arrays as usual (to
    # rounding: NumPy's BLAS may round a row differently inside matrices of other sizes).
    np.testing.assert_allclose(inc.transform(X_dask).compute(), local.transform(X), rtol=1e-6)


def test_grid_search_through_joblib_dask_backend(client, digits):
    import joblib

    X, y = digits
    X, y = X[:600], y[:600]
    pipe = Pipeline([("rbm", BernoulliRBM(n_iter=3, random_state=0)),
                     ("logistic", LogisticRegression(max_iter=300))])
    grid = {"rbm__n_components": [8, 32], "rbm__learning_rate": [0.02, 0.1]}
    with threadpool_limits(1, user_api="blas"):  # as on the workers, so BLAS rounds alike
        serial = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        remote = GridSearchCV(pipe, grid, cv=2, n_jobs=-1).fit(X, y)
    # Every (candidate, fold) fit ran on a worker: joblib names its batches
    # "batch_of__fit_and_score_<n>_calls-<token>".
    workers = set(client.scheduler_info()["workers"])
    batches = [(re.search(r"_(\d+)_calls", name), w) for name, w in task_names_and_workers(stream)
               if "_fit_and_score" in name]
    assert sum(int(m.group(1)) for m, _ in batches) == 4 * 2
    assert {w for _, w in batches} <= workers
    assert remote.best_params_ == serial.best_params_
    # The RBMs are bit-identical; the logistic regressions' lbfgs may round differently
    # with single-threaded BLAS on the workers, so the scores agree to float precision.
    np.testing.assert_allclose(remote.cv_results_["mean_test_score"],
                               serial.cv_results_["mean_test_score"], atol=1e-12)
    np.testing.assert_array_equal(remote.best_estimator_["rbm"].components_,
                                  serial.best_estimator_["rbm"].components_)
