"""Checkpoints: a fitted model as plain arrays plus JSON metadata in one ``.npz`` file.

No pickle anywhere (the file is read with ``allow_pickle=False`` and the metadata is JSON
decoded into a fixed set of types), so loading a model from an untrusted source cannot run
code; writes go to a temporary file that is then renamed over the target, so a crash
mid-save never leaves a half-written model.

Format (version 2)
------------------
One ``np.savez`` archive. The entry ``__metadata__`` is a 0-d unicode array holding JSON::

    {"format": "fastrbm-checkpoint", "format_version": 2, "fastrbm_version": "...",
     "object_arrays": [keys of arrays to turn back into object arrays],
     **record}

where a *record* describes one estimator::

    {"class": "DBNClassifier",
     "params": {name: encoded value},           # get_params(deep=False)
     "arrays": [names],                         # ndarray attributes, key prefix + name
     "lists": {name: length},                   # lists of ndarrays, keys prefix + name.i
     "values": {name: encoded value},           # JSON-able attributes
     "estimators": {name: record or [records]}} # nested estimators, key prefix + name/[i/]

Parameters and values are JSON with tags for what JSON lacks: a tuple is
``{"__fastrbm_type__": "tuple", "items": [...]}``, a numeric ndarray parameter
``{"__fastrbm_type__": "ndarray", "dtype", "shape", "data"}`` and a
``numpy.random.RandomState`` its full Mersenne Twister state. Object arrays (string class
labels, feature names) are stored as unicode / numeric arrays and listed in
``object_arrays``. Non-finite floats use JSON's ``NaN`` / ``Infinity`` extension (Python's
``json`` default). Version-1 files (BernoulliRBM before nesting and tagged parameters)
are read through :func:`_from_v1`.
"""
import contextlib
import json
import os
import tempfile
import warnings
import zipfile
from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

FORMAT = "fastrbm-checkpoint"
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_META_KEY = "__metadata__"
_TAG = "__fastrbm_type__"
_NUMERIC_KINDS = "biuf"

# Class name -> class of every checkpointable fastrbm estimator: the only classes a file
# may name for a nested estimator (a file never chooses arbitrary code to instantiate).
_REGISTRY = {}


# ----------------------------------------------------------------------------------------
# JSON values
# ----------------------------------------------------------------------------------------
def _encode(value, what):
    """``value`` as JSON-able data (see the module docstring for the tags).

    Parameters
    ----------
    value : object
        None, bool, str, a real number, a tuple / list / str-keyed dict of those, a numeric
        ndarray or a ``numpy.random.RandomState``.
    what : str
        Name of the value, for the error message.

    Returns
    -------
    data : JSON-able object

    Raises
    ------
    TypeError
        If the value has no JSON form.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, tuple):
        return {_TAG: "tuple", "items": [_encode(v, what) for v in value]}
    if isinstance(value, list):
        return [_encode(v, what) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value) \
            and _TAG not in value:
        return {k: _encode(v, what) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.dtype.kind in _NUMERIC_KINDS:
        return {_TAG: "ndarray", "dtype": value.dtype.str, "shape": list(value.shape),
                "data": value.ravel().tolist()}
    if isinstance(value, np.random.RandomState):
        _, keys, pos, has_gauss, cached = value.get_state(legacy=True)
        return {_TAG: "RandomState", "keys": keys.tolist(), "pos": int(pos),
                "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    raise TypeError(f"{what} = {value!r} cannot be stored in a fastrbm checkpoint: only "
                    "None, bool, str, numbers, tuples, lists, dicts, numeric arrays and "
                    "RandomState instances have a (pickle-free) JSON form")


def _decode(data):
    """Inverse of :func:`_encode`; builds only tuples, lists, dicts, numeric ndarrays and
    RandomState instances."""
    if isinstance(data, list):
        return [_decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(_TAG)
    if tag is None:
        return {k: _decode(v) for k, v in data.items()}
    if tag == "tuple":
        return tuple(_decode(v) for v in data["items"])
    if tag == "ndarray":
        dtype = np.dtype(data["dtype"])
        if dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"array of dtype {dtype} in the metadata")
        return np.array(data["data"], dtype=dtype).reshape(data["shape"])
    if tag == "RandomState":
        rng = np.random.RandomState()
        rng.set_state(("MT19937", np.array(data["keys"], dtype=np.uint32), data["pos"],
                       data["has_gauss"], data["cached_gaussian"]))
        return rng
    raise ValueError(f"unknown value type {tag!r} in the metadata")


# ----------------------------------------------------------------------------------------
# arrays
# ----------------------------------------------------------------------------------------
# Plain dtype of an object array whose items all pass the test (the first that fits).
_OBJECT_ITEM_DTYPES = (
    (str, lambda v: isinstance(v, str)),
    (bool, lambda v: isinstance(v, (bool, np.bool_))),
    (np.int64, lambda v: isinstance(v, Integral) and not isinstance(v, (bool, np.bool_))),
    (np.float64, lambda v: isinstance(v, Real)),
)


def _plain_array(array, key, object_keys):
    """``array`` in a dtype ``np.load(allow_pickle=False)`` reads: object arrays of str,
    bool, int or float become unicode / bool / int64 / float64 and ``key`` is recorded in
    ``object_keys`` so that loading restores the object dtype."""
    array = np.asarray(array)
    if array.dtype != object:
        return array
    items = array.ravel().tolist()
    for dtype, fits in _OBJECT_ITEM_DTYPES:
        if all(map(fits, items)):
            object_keys.append(key)
            return np.array(items, dtype=dtype).reshape(array.shape)
    raise TypeError(f"{key}: an object array of mixed or non-plain items cannot be stored "
                    "without pickle")


# ----------------------------------------------------------------------------------------
# records (one estimator each, nested estimators inside)
# ----------------------------------------------------------------------------------------
def _is_estimator(value):
    return isinstance(value, CheckpointMixin)


def _pack(estimator, prefix, arrays, object_keys):
    """The record of ``estimator`` (its arrays go into ``arrays`` under ``prefix``)."""
    name = type(estimator).__name__
    record = {"class": name,
              "params": {k: _encode(v, f"{name} parameter {k}")
                         for k, v in estimator.get_params(deep=False).items()},
              "arrays": [], "lists": {}, "values": {}, "estimators": {}}
    for attr, value in estimator._checkpoint_state().items():
        key = prefix + attr
        is_list = isinstance(value, (list, tuple)) and len(value) > 0
        if isinstance(value, np.ndarray):
            record["arrays"].append(attr)
            arrays[key] = _plain_array(value, key, object_keys)
        elif is_list and all(isinstance(v, np.ndarray) for v in value):
            record["lists"][attr] = len(value)
            for i, item in enumerate(value):
                arrays[f"{key}.{i}"] = _plain_array(item, f"{key}.{i}", object_keys)
        elif _is_estimator(value):
            record["estimators"][attr] = _pack(value, f"{key}/", arrays, object_keys)
        elif is_list and all(map(_is_estimator, value)):
            record["estimators"][attr] = [_pack(v, f"{key}/{i}/", arrays, object_keys)
                                          for i, v in enumerate(value)]
        else:
            record["values"][attr] = _encode(value, f"{name}.{attr}")
    return record


def _check_record(record):
    """Raise ValueError unless ``record`` has the structure :func:`_pack` writes."""
    shapes = {"class": str, "params": dict, "arrays": list, "lists": dict, "values": dict,
              "estimators": dict}
    if not isinstance(record, dict) or not all(
            isinstance(record.get(k), t) for k, t in shapes.items()):
        raise ValueError("malformed estimator record in the metadata")
    if not all(isinstance(n, str) for n in record["arrays"]) or not all(
            isinstance(n, Integral) and n >= 0 for n in record["lists"].values()):
        raise ValueError("malformed array list in the metadata")
    for sub in record["estimators"].values():
        for item in sub if isinstance(sub, list) else [sub]:
            _check_record(item)


def _unpack(record, prefix, contents, klass):
    """A ``klass`` estimator from its record, taking its arrays out of ``contents``."""
    try:
        model = klass(**{k: _decode(v) for k, v in record["params"].items()})
    except TypeError as exc:
        raise ValueError(f"the {klass.__name__} parameters in the file do not match this "
                         f"fastrbm ({exc})") from None
    state = {}
    try:
        for attr in record["arrays"]:
            state[attr] = contents.pop(prefix + attr)
        for attr, n in record["lists"].items():
            state[attr] = [contents.pop(f"{prefix}{attr}.{i}") for i in range(n)]
    except KeyError as exc:
        raise ValueError(f"array {exc} is missing") from None
    for attr, value in record["values"].items():
        state[attr] = _decode(value)
    for attr, sub in record["estimators"].items():
        if isinstance(sub, list):
            state[attr] = [_unpack(s, f"{prefix}{attr}/{i}/", contents, _nested_class(s))
                           for i, s in enumerate(sub)]
        else:
            state[attr] = _unpack(sub, f"{prefix}{attr}/", contents, _nested_class(sub))
    model._checkpoint_restore(state)
    return model


def _nested_class(record):
    try:
        return _REGISTRY[record["class"]]
    except KeyError:
        raise ValueError(f"nested estimator class {record['class']!r} is not a "
                         "checkpointable fastrbm estimator") from None


def _from_v1(meta, keys):
    """A format-1 file's metadata (BernoulliRBM: flat arrays and lists, scalar params,
    feature names as a unicode array) as a format-2 record."""
    in_lists = {f"{name}.{i}" for name, n in meta.get("lists", {}).items() for i in range(n)}
    return {**meta, "arrays": [k for k in keys if k not in in_lists], "estimators": {},
            "object_arrays": ["feature_names_in_"] if "feature_names_in_" in keys else []}


def _read(path):
    """Arrays and metadata of a checkpoint file; ValueError for anything unreadable."""
    try:
        data = np.load(os.fspath(path), allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a readable fastrbm model file ({exc})") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} is not a readable fastrbm model file (a single array, "
                         "not an .npz archive)")
    try:
        with data:
            contents = {key: data[key] for key in data.files}
        meta = json.loads(str(contents.pop(_META_KEY)))
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a readable fastrbm model file ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a fastrbm model file")
    return contents, meta


class CheckpointMixin:
    """``save(path)`` / ``cls.load(path)``: pickle-free checkpoints that resume exactly.

    An estimator declares its fitted state with two class attributes, names of
    attributes that :meth:`_checkpoint_state` collects:

    - ``_checkpoint_arrays``: ndarrays or lists of ndarrays;
    - ``_checkpoint_values``: JSON-able values (numbers, str, None, lists, dicts, tuples)
      and nested checkpointable estimators or lists of them (stored as their own arrays
      under prefixed keys, never pickled).

    The kind of each entry is decided by its value when saving, so an empty list is
    simply ``[]``. Estimators whose fitted state includes derived helpers (objects that
    are not stored, e.g. a label binarizer) override :meth:`_checkpoint_restore` to
    rebuild and check them. Constructor parameters come from ``get_params(deep=False)``.
    """

    _checkpoint_arrays = ()
    _checkpoint_values = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__.split(".")[0] == "fastrbm":
            _REGISTRY[cls.__name__] = cls

    def _checkpoint_state(self):
        """The fitted state to store.

        Returns
        -------
        state : dict
            Attribute name -> ndarray, list of ndarrays, JSON-able value, nested
            estimator or list of estimators. ``feature_names_in_`` is included when set.
        """
        names = tuple(self._checkpoint_arrays) + tuple(self._checkpoint_values)
        state = {name: getattr(self, name) for name in names}
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in_"] = self.feature_names_in_
        return state

    def _checkpoint_restore(self, state):
        """Set the fitted state read from a file on this freshly constructed estimator.

        Parameters
        ----------
        state : dict
            As returned by :meth:`_checkpoint_state` on the saved model (arrays with
            their saved dtypes, tuples as tuples, nested estimators already loaded).

        Raises
        ------
        ValueError
            Overrides raise it when the state is inconsistent with the parameters.
        """
        for name, value in state.items():
            setattr(self, name, value)

    def save(self, path):
        """Write the fitted model to ``path`` (a ``.npz`` file), atomically.

        Everything needed to resume training is kept: parameters, fitted arrays,
        optimizer and sampler state and the position in the random streams, so ``load``
        followed by ``partial_fit`` continues exactly as the uninterrupted model would.

        Parameters
        ----------
        path : str or path-like
            Target file; it is replaced only once the new file is complete.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the model is not fitted (a ValueError).
        TypeError
            If a parameter or attribute has no pickle-free form.
        """
        from . import __version__

        try:
            check_is_fitted(self)
        except NotFittedError:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted; nothing to save") from None
        arrays, object_keys = {}, []
        record = _pack(self, "", arrays, object_keys)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "fastrbm_version": __version__, "object_arrays": object_keys, **record}
        arrays[_META_KEY] = np.array(json.dumps(meta))
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".fastrbm-", suffix=".npz.tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`.

        Only plain arrays (``allow_pickle=False``) and JSON are read, so a file from an
        untrusted source cannot run code.

        Parameters
        ----------
        path : str or path-like
            A file written by ``save``.

        Returns
        -------
        model : estimator
            The fitted model, ready for prediction or to resume with ``partial_fit``.

        Raises
        ------
        ValueError
            If the file is truncated, corrupt, inconsistent, of another class, or of a
            format version this fastrbm cannot read.
        FileNotFoundError
            If there is no such file.
        """
        from . import __version__

        contents, meta = _read(path)
        version = meta.get("format_version")
        if version not in _READABLE_VERSIONS:
            raise ValueError(
                f"{path} has checkpoint format {version}, this fastrbm reads formats "
                f"{', '.join(map(str, _READABLE_VERSIONS))} (the file was written by "
                f"fastrbm {meta.get('fastrbm_version')}; load it with that version)")
        if meta.get("class") != cls.__name__:
            raise ValueError(f"{path} holds a {meta.get('class')}, not a {cls.__name__}; "
                             f"load it with {meta.get('class')}.load")
        if meta.get("fastrbm_version") != __version__:
            warnings.warn(
                f"{path} was written by fastrbm {meta.get('fastrbm_version')}, this is "
                f"fastrbm {__version__}; the format is the same, but check the results.",
                UserWarning, stacklevel=2)
        if version == 1:
            meta = _from_v1(meta, list(contents))
        try:
            _check_record(meta)
            for key in meta.get("object_arrays", []):
                contents[key] = contents[key].astype(object)
            model = _unpack(meta, "", contents, cls)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path} is a corrupt or inconsistent fastrbm model file: "
                             f"{exc}") from exc
        if contents:
            raise ValueError(f"{path} is a corrupt fastrbm model file: unexpected arrays "
                             f"{sorted(contents)}")
        return model
