"""Progress reporting for long fits: a tqdm bar on stderr when tqdm is installed and
``verbose == 1``, scikit-learn-style lines on stdout otherwise (``verbose >= 2``, or no
tqdm), nothing at ``verbose == 0``."""
import sys


class EpochProgress:
    """Report each finished epoch of ``name``: ``update(epoch, **figures)``, then ``close``."""

    def __init__(self, name, n_epochs, verbose):
        self.name, self.verbose, self.bar = name, verbose, None
        if verbose == 1:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=n_epochs, desc=name, unit="epoch", file=sys.stderr,
                                leave=False)

    def update(self, epoch, **figures):
        if not self.verbose:
            return
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in figures.items()}, refresh=False)
            self.bar.update(1)
            return
        text = ", ".join(f"{k.replace('_', ' ')} = {v:.4f}" for k, v in figures.items())
        print(f"[{self.name}] Iteration {epoch}, {text}", flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
