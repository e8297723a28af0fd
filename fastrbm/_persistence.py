"""Checkpoints: a fitted model as plain arrays plus JSON metadata in one ``.npz`` file.

No pickle anywhere (the file is read with ``allow_pickle=False``), so loading a model from
an untrusted source cannot run code; writes go to a temporary file that is then renamed
over the target, so a crash mid-save never leaves a half-written model.
"""
import json
import os
import warnings
import tempfile
import zipfile
from numbers import Integral, Real

import numpy as np

FORMAT = "fastrbm-checkpoint"
FORMAT_VERSION = 1
_META_KEY = "__metadata__"


def _json_param(value):
    """A constructor parameter as JSON, or None when it has no JSON form (a RandomState)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    return None


class CheckpointMixin:
    """``save(path)`` / ``cls.load(path)`` for estimators that list their fitted state.

    Subclasses set ``_checkpoint_arrays`` (names of ndarray attributes, lists of ndarrays
    allowed) and ``_checkpoint_values`` (names of JSON-able attributes)."""

    _checkpoint_arrays = ()
    _checkpoint_values = ()

    def save(self, path):
        """Write the fitted model to ``path`` (a ``.npz`` file), atomically.

        Everything needed to resume training is kept: parameters, persistent chains,
        optimizer state and the position in the random stream, so ``load`` followed by
        ``partial_fit`` continues exactly as the uninterrupted model would.

        Parameters
        ----------
        path : str or path-like
            Target file; it is replaced only once the new file is complete.
        """
        from . import __version__

        if not hasattr(self, self._checkpoint_arrays[0]):
            raise ValueError(f"{type(self).__name__} is not fitted; nothing to save")
        arrays, lists = {}, {}
        for name in self._checkpoint_arrays:
            value = getattr(self, name)
            if isinstance(value, list):
                lists[name] = len(value)
                for i, item in enumerate(value):
                    arrays[f"{name}.{i}"] = np.asarray(item)
            else:
                arrays[name] = np.asarray(value)
        if hasattr(self, "feature_names_in_"):
            arrays["feature_names_in_"] = np.asarray(self.feature_names_in_, dtype=str)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "fastrbm_version": __version__,
            "class": type(self).__name__,
            "params": {k: _json_param(v) for k, v in self.get_params(deep=False).items()},
            "values": {name: getattr(self, name) for name in self._checkpoint_values},
            "lists": lists,
        }
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
            os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            A file written by ``save``.

        Returns
        -------
        model : estimator
            The fitted model, ready for ``transform`` or to resume with ``partial_fit``.

        Raises
        ------
        ValueError
            If the file is truncated, corrupt, of another class, or of a format version
            this fastrbm cannot read.
        """
        try:
            with np.load(os.fspath(path), allow_pickle=False) as data:
                contents = {key: data[key] for key in data.files}
            meta = json.loads(str(contents.pop(_META_KEY)))
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ValueError(f"{path} is not a readable fastrbm model file ({exc})") from exc
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a fastrbm model file")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path} has checkpoint format {meta.get('format_version')}, this fastrbm "
                f"reads format {FORMAT_VERSION} (written by fastrbm "
                f"{meta.get('fastrbm_version')})")
        if meta.get("class") != cls.__name__:
            raise ValueError(f"{path} holds a {meta.get('class')}, not a {cls.__name__}")
        from . import __version__

        if meta.get("fastrbm_version") != __version__:
            warnings.warn(
                f"{path} was written by fastrbm {meta.get('fastrbm_version')}, this is "
                f"fastrbm {__version__}; the format is the same, but check the results.",
                UserWarning, stacklevel=2)
        model = cls(**meta["params"])
        for name, count in meta["lists"].items():
            setattr(model, name, [contents.pop(f"{name}.{i}") for i in range(count)])
        for name, value in contents.items():
            setattr(model, name, value)
        for name, value in meta["values"].items():
            setattr(model, name, value)
        return model
