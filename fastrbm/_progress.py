"""Progress reporting for long fits, as scikit-learn does it: with ``verbose >= 1`` the
estimator prints one line per iteration on stdout (its own wording, e.g. scikit-learn's
``[BernoulliRBM] Iteration 1, pseudo-likelihood = -21.07, time = 0.12s``); nothing at
``verbose == 0``.

For people at a terminal, a tqdm bar over the epochs (the ``progress`` extra) is drawn on
stderr as well, below the lines, when stderr is a terminal; never in pipes, logs or captured
output unless asked for with :func:`set_progress_bar`.
"""
import sys

__all__ = ["set_progress_bar"]

# None: a bar when stderr is a terminal (tqdm's disable=None); True: always; False: never.
_BAR_MODE = {"enabled": None}


def set_progress_bar(enabled=None):
    """Choose when fits with ``verbose >= 1`` draw a progress bar on stderr.

    Parameters
    ----------
    enabled : bool or None, default=None
        None (the default): when stderr is a terminal. True: always (also into pipes and
        captured output). False: never. The per-iteration lines on stdout do not depend
        on it.

    Returns
    -------
    previous : bool or None
        The setting before the call, to restore it.

    Examples
    --------
    >>> import fastrbm
    >>> previous = fastrbm.set_progress_bar(False)
    >>> fastrbm.set_progress_bar(previous)
    False
    """
    if enabled not in (None, True, False):
        raise ValueError(f"enabled must be None, True or False, got {enabled!r}")
    previous, _BAR_MODE["enabled"] = _BAR_MODE["enabled"], enabled
    return previous


def _make_bar(name, n_epochs):
    enabled = _BAR_MODE["enabled"]
    if enabled is False:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    bar = tqdm(total=n_epochs, desc=name, unit="epoch", file=sys.stderr, leave=False,
               disable=None if enabled is None else False)
    return None if bar.disable else bar


class EpochProgress:
    """Report each finished epoch of ``name``: ``update(line, **figures)``, then ``close``.

    ``line`` is printed on stdout when ``verbose``; ``figures`` label the bar. Callers
    build the line only when ``self.verbose`` is true (it may cost a pass over the data).
    """

    def __init__(self, name, n_epochs, verbose):
        self.verbose = bool(verbose)
        self.bar = _make_bar(name, n_epochs) if self.verbose else None

    def update(self, line, **figures):
        if not self.verbose:
            return
        if self.bar is None:
            print(line, flush=True)
            return
        self.bar.write(line, file=sys.stdout)  # above the bar, which is redrawn below
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in figures.items()}, refresh=False)
        self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
