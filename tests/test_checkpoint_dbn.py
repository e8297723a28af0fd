"""Checkpoints of DBN, DBNClassifier and DBNRegressor: exact round trips, bit-identical
resumption, clear errors on bad files, and no code execution on load."""
import json
import pickle

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from fastrbm import DBN, BernoulliRBM, DBNClassifier, DBNRegressor
from fastrbm._persistence import _decode, _encode
from fastrbm.datasets import load_digits

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

LABELS = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                   "nine"])
NET = dict(hidden_layer_sizes=(12,), pretrain_n_iter=1, max_iter=3, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, y = load_digits()
    return X[:300], y[:300]


def _read(path):
    with np.load(path, allow_pickle=False) as f:
        contents = {k: f[k] for k in f.files}
    return contents, json.loads(str(contents["__metadata__"]))


def _write(path, contents, meta):
    np.savez(path, **{**contents, "__metadata__": np.array(json.dumps(meta))})


def assert_same_model(a, b):
    """Same class, parameters (with their types) and fitted state, nested RBMs included."""
    assert type(a) is type(b)
    pa, pb = a.get_params(deep=False), b.get_params(deep=False)
    assert pa.keys() == pb.keys()
    for name in pa:
        assert_same_value(pa[name], pb[name], name)
    assert vars(a).keys() == vars(b).keys()
    for name, value in vars(a).items():
        assert_same_value(value, vars(b)[name], name)


def assert_same_value(x, y, name):
    assert type(x) is type(y), (name, type(x), type(y))
    if isinstance(x, np.ndarray):
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y), name
        for i, (u, v) in enumerate(zip(x, y)):
            assert_same_value(u, v, f"{name}[{i}]")
    elif isinstance(x, dict):
        assert x.keys() == y.keys(), name
        for k in x.keys() - {"time"}:  # an RBM's wall-clock epoch times differ by run
            assert_same_value(x[k], y[k], f"{name}[{k!r}]")
    elif isinstance(x, np.random.RandomState):
        assert_same_value(list(x.get_state()), list(y.get_state()), name)
    elif hasattr(x, "get_params"):
        assert_same_model(x, y)
    else:
        assert x == y or (x != x and y != y), (name, x, y)


def round_trip(model, tmp_path, name="model.npz"):
    model.save(tmp_path / name)
    loaded = type(model).load(tmp_path / name)
    assert_same_model(model, loaded)
    return loaded


# ----------------------------------------------------------------------------------------
# round trips
# ----------------------------------------------------------------------------------------
def test_dbn_round_trip(data, tmp_path):
    X, _ = data
    dbn = DBN(hidden_layer_sizes=(16, 8), n_iter=1, random_state=0, persistent=[True, False],
              momentum=0.5).fit(X)
    loaded = round_trip(dbn, tmp_path)
    assert loaded.hidden_layer_sizes == (16, 8) and loaded.persistent == [True, False]
    np.testing.assert_array_equal(loaded.transform(X), dbn.transform(X))
    np.testing.assert_array_equal(loaded.sample(4, n_steps=5, random_state=1),
                                  dbn.sample(4, n_steps=5, random_state=1))
    # the nested RBMs keep their whole training state: they resume exactly
    top, top_loaded = dbn.rbms_[-1], loaded.rbms_[-1]
    H = dbn.rbms_[0].transform(X)
    assert_same_model(top.partial_fit(H), top_loaded.partial_fit(H))


@pytest.mark.parametrize("labels", [
    pytest.param(LABELS, id="str"),
    pytest.param(np.arange(10) * 7 - 20, id="int"),
    pytest.param(np.arange(10) - 3.0, id="float"),
    pytest.param(np.array([True, False] * 5), id="bool"),
])
def test_classifier_round_trip_keeps_classes_and_predictions(data, tmp_path, labels):
    X, y = data
    clf = DBNClassifier(**NET).fit(X, labels[y])
    loaded = round_trip(clf, tmp_path)
    assert loaded.classes_.dtype == clf.classes_.dtype
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.score(X, labels[y]) == clf.score(X, labels[y])


def test_classifier_round_trip_of_every_parameter_kind(data, tmp_path):
    X, y = data
    clf = DBNClassifier(hidden_layer_sizes=[12, 10], dropout=(0.1, 0.0),
                        batch_norm=np.array([True, False]), pretrain_n_iter=(1, 2),
                        random_state=np.random.RandomState(3), max_grad_norm=None,
                        solver="adam", early_stopping=True, max_iter=4).fit(X, y)
    loaded = round_trip(clf, tmp_path)
    assert isinstance(loaded.hidden_layer_sizes, list) and isinstance(loaded.dropout, tuple)
    assert loaded.best_validation_score_ == clf.best_validation_score_
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_regressor_round_trip(data, tmp_path):
    X, y = data
    Y = np.column_stack([y / 9.0, X[:, 20]])
    reg = DBNRegressor(**{**NET, "pretrain": False}, batch_norm=True).fit(X, Y)
    assert reg.rbms_ == []
    loaded = round_trip(reg, tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    assert loaded.coefs_[0].dtype == np.float32


@pytest.mark.parametrize("make", [
    lambda: DBN((8, 4), n_iter=1, random_state=0),
    lambda: DBNClassifier(**NET),
    lambda: DBNRegressor(**NET),
], ids=["DBN", "DBNClassifier", "DBNRegressor"])
def test_standardised_models_round_trip_and_resume(data, tmp_path, make):
    # raw float64 data outside [0, 1]: a Gaussian first layer behind the fitted
    # standardisation (and standardised targets for the regressor) survive save / load
    X, y = data
    X = 16 * X.astype(np.float64) - 3
    model = make().fit(X, y)
    assert model.first_layer_ == "gaussian" and model.input_mean_.dtype == np.float64
    loaded = round_trip(model, tmp_path)
    if isinstance(model, DBN):
        np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
        np.testing.assert_array_equal(loaded.sample(3, 5, random_state=0),
                                      model.sample(3, 5, random_state=0))
        return
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert_same_model(loaded.partial_fit(X, y), model.partial_fit(X, y))


def test_tampered_standardisation_is_rejected(data, tmp_path):
    X, y = data
    DBNRegressor(**NET).fit(X - 0.5, y).save(tmp_path / "reg.npz")
    contents, meta = _read(tmp_path / "reg.npz")
    cases = {
        "short": {**contents, "input_scale_": contents["input_scale_"][:-1]},
        "zero": {**contents, "target_scale_": np.zeros_like(contents["target_scale_"])},
        "dtype": {**contents, "input_mean_": contents["input_mean_"].astype(np.float16)},
    }
    for name, arrays in cases.items():
        _write(tmp_path / f"{name}.npz", arrays, meta)
        with pytest.raises(ValueError, match="corrupt|inconsistent"):
            DBNRegressor.load(tmp_path / f"{name}.npz")
    values = {**meta["values"], "first_layer_": "bernoulli"}
    _write(tmp_path / "layer.npz", contents, {**meta, "values": values})
    with pytest.raises(ValueError, match="corrupt|inconsistent"):
        DBNRegressor.load(tmp_path / "layer.npz")


def test_feature_names_come_back_as_sklearn_keeps_them(data, tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = data
    df = pd.DataFrame(X, columns=[f"px{i}" for i in range(X.shape[1])])
    reg = DBNRegressor(**NET).fit(df, y / 9.0)
    loaded = round_trip(reg, tmp_path)  # object dtype, as scikit-learn stores it
    np.testing.assert_array_equal(loaded.predict(df), reg.predict(df))
    with pytest.warns(UserWarning, match="feature names"):
        loaded.predict(X)


# ----------------------------------------------------------------------------------------
# resuming
# ----------------------------------------------------------------------------------------
def _partial_fit(model, X, y, n, **kw):
    for _ in range(n):
        model.partial_fit(X, y, **kw)
    return model


@pytest.mark.parametrize("settings", [
    dict(solver="adam", batch_norm=True, dropout=0.2),
    dict(solver="sgd", learning_rate="invscaling", nesterovs_momentum=True, dropout=0.1,
         max_grad_norm=1.0),
])
def test_classifier_partial_fit_resumes_bit_identically(data, tmp_path, settings):
    X, y = data
    y = LABELS[y]
    kw = dict(NET, **settings)
    uninterrupted = _partial_fit(DBNClassifier(**kw), X, y, 5, classes=LABELS)
    first = _partial_fit(DBNClassifier(**kw), X, y, 2, classes=LABELS)
    first.save(tmp_path / "clf.npz")
    resumed = _partial_fit(DBNClassifier.load(tmp_path / "clf.npz"), X, y, 3,
                           classes=LABELS)
    assert resumed.n_iter_ == 5
    assert_same_model(resumed, uninterrupted)


def test_regressor_partial_fit_resumes_bit_identically(data, tmp_path):
    X, y = data
    kw = dict(NET, solver="sgd", learning_rate="adaptive", momentum=0.5, batch_norm=True,
              n_iter_no_change=1, tol=10.0)
    uninterrupted = _partial_fit(DBNRegressor(**kw), X, y / 9.0, 5)
    first = _partial_fit(DBNRegressor(**kw), X, y / 9.0, 2)
    first.save(tmp_path / "reg.npz")
    resumed = _partial_fit(DBNRegressor.load(tmp_path / "reg.npz"), X, y / 9.0, 3)
    assert resumed._current_lr < first._current_lr  # the adaptive schedule carried over
    assert_same_model(resumed, uninterrupted)


def test_fit_then_resume_after_loading_matches_in_memory(data, tmp_path):
    """fit, save, load, then partial_fit or a warm_start fit: exactly what the model that
    was never saved does (warm_start restarts the optimizer by design, as scikit-learn's
    MLP, so it is compared with its in-memory continuation)."""
    X, y = data
    kw = dict(NET, solver="adam", batch_norm=True)
    in_memory = DBNClassifier(**kw).fit(X, y)
    in_memory.save(tmp_path / "clf.npz")
    loaded = DBNClassifier.load(tmp_path / "clf.npz")
    assert_same_model(_partial_fit(loaded, X, y, 2), _partial_fit(in_memory, X, y, 2))
    in_memory = DBNClassifier(**kw, early_stopping=True).fit(X, y)
    in_memory.set_params(warm_start=True, max_iter=2)
    in_memory.save(tmp_path / "warm.npz")
    warm = DBNClassifier.load(tmp_path / "warm.npz")
    assert warm.warm_start is True
    assert_same_model(warm.fit(X, y), in_memory.fit(X, y))


# ----------------------------------------------------------------------------------------
# bad files
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(data, tmp_path_factory):
    X, y = data
    path = tmp_path_factory.mktemp("saved") / "clf.npz"
    DBNClassifier(**NET).fit(X, LABELS[y]).save(path)
    return path


def test_unfitted_model_cannot_be_saved(tmp_path):
    for model in (DBN(), DBNClassifier(), DBNRegressor()):
        with pytest.raises(NotFittedError, match="not fitted; nothing to save"):
            model.save(tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


def test_truncated_and_garbage_files_are_rejected_clearly(saved, tmp_path):
    good = saved.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(good[: len(good) // 2])
    (tmp_path / "garbage.npz").write_bytes(b"not a model at all")
    flipped = bytearray(good)
    flipped[len(good) // 3] ^= 0xFF  # inside an array: the zip CRC catches it
    (tmp_path / "flipped.npz").write_bytes(bytes(flipped))
    np.save(tmp_path / "array.npy", np.zeros(3))
    for name in ["truncated.npz", "garbage.npz", "flipped.npz", "array.npy"]:
        with pytest.raises(ValueError, match="not a readable fastrbm model"):
            DBNClassifier.load(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        DBNClassifier.load(tmp_path / "missing.npz")


def test_other_format_version_and_other_class_are_rejected_clearly(saved, tmp_path):
    contents, meta = _read(saved)
    _write(tmp_path / "future.npz", contents, {**meta, "format_version": 99})
    with pytest.raises(ValueError, match="checkpoint format 99, this fastrbm reads"):
        DBNClassifier.load(tmp_path / "future.npz")
    _write(tmp_path / "foreign.npz", contents, {**meta, "format": "something-else"})
    with pytest.raises(ValueError, match="not a fastrbm model file"):
        DBNClassifier.load(tmp_path / "foreign.npz")
    for cls in (DBNRegressor, DBN, BernoulliRBM):
        with pytest.raises(ValueError, match="holds a DBNClassifier, not a " + cls.__name__):
            cls.load(saved)


def test_inconsistent_or_tampered_contents_are_rejected_clearly(saved, tmp_path):
    contents, meta = _read(saved)
    cases = {
        "missing": ({k: v for k, v in contents.items() if k != "_theta"}, meta),
        "extra": ({**contents, "surprise": np.zeros(2)}, meta),
        "short_theta": ({**contents, "_theta": contents["_theta"][:-1]}, meta),
        "layout": ({**contents, "_layout": contents["_layout"] * 2}, meta),
        "rbm_shape": ({**contents, "rbms_/0/components_": contents["rbms_/0/components_"].T},
                      meta),
        "classes": ({**contents, "classes_": contents["classes_"][:3]}, meta),
        "nested_class": (contents, {**meta, "estimators": {"rbms_": [
            {**meta["estimators"]["rbms_"][0], "class": "Popen"}]}}),
        "record": (contents, {**meta, "estimators": {"rbms_": ["not a record"]}}),
        "param": (contents, {**meta, "params": {**meta["params"], "no_such_param": 1}}),
        "tag": (contents, {**meta, "params": {**meta["params"],
                                              "hidden_layer_sizes": {"__fastrbm_type__": "x"}}}),
    }
    for name, (arrays, m) in cases.items():
        _write(tmp_path / f"{name}.npz", arrays, m)
        with pytest.raises(ValueError, match="corrupt|inconsistent"):
            DBNClassifier.load(tmp_path / f"{name}.npz")


class _Exploit:
    ran = []

    def __reduce__(self):
        return (_Exploit.ran.append, ("code ran",))


def test_loading_never_unpickles(saved, tmp_path):
    contents, meta = _read(saved)
    # an object array holding a pickle whose loading would run code
    payload = np.array([_Exploit()], dtype=object)
    np.savez(tmp_path / "evil.npz", **contents, classes_evil=payload)
    with pytest.raises(ValueError, match="not a readable fastrbm model"):
        DBNClassifier.load(tmp_path / "evil.npz")
    assert _Exploit.ran == []
    # and the files we write never need pickle: every entry reads with allow_pickle=False
    assert all(a.dtype != object for a in contents.values())


# ----------------------------------------------------------------------------------------
# the format
# ----------------------------------------------------------------------------------------
def test_values_round_trip_with_their_types():
    rng = np.random.RandomState(5)
    rng.normal()  # a cached gaussian is part of the state too
    value = {"t": (1, (2.5, None), [True, "x"]), "a": np.arange(6, dtype=np.int16)
             .reshape(2, 3), "inf": -np.inf, "np": np.float32(0.1), "rs": rng}
    back = _decode(json.loads(json.dumps(_encode(value, "v"))))
    assert back["t"] == (1, (2.5, None), [True, "x"]) and isinstance(back["t"][1], tuple)
    assert back["a"].dtype == np.int16 and back["a"].shape == (2, 3)
    assert back["inf"] == -np.inf and back["np"] == float(np.float32(0.1))
    assert back["rs"].normal() == rng.normal()
    with pytest.raises(TypeError, match="cannot be stored in a fastrbm checkpoint"):
        _encode(object(), "v")


def test_version_1_rbm_files_still_load(data, tmp_path):
    """A format-1 file (BernoulliRBM only: flat keys, no array list, scalar params)."""
    X, _ = data
    rbm = BernoulliRBM(n_components=8, n_iter=1, random_state=0).fit(X)
    rbm.save(tmp_path / "v2.npz")
    contents, meta = _read(tmp_path / "v2.npz")
    meta_v1 = {k: meta[k] for k in ("format", "fastrbm_version", "class", "params",
                                    "values", "lists")}
    _write(tmp_path / "v1.npz", contents, {**meta_v1, "format_version": 1})
    loaded = BernoulliRBM.load(tmp_path / "v1.npz")
    assert_same_model(loaded, rbm)


def test_pickle_still_works(data):
    X, y = data
    clf = DBNClassifier(**NET).fit(X, y)
    assert_same_model(pickle.loads(pickle.dumps(clf)), clf)
