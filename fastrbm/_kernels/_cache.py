"""Numba's on-disk cache knows only the source file of each cached function: code that a
module compiles in from another module (the recurrent engine inlines backprop's GEMM,
exp and optimizer helpers) would load stale after that other module changes.
:func:`drop_stale_cache` keeps a digest of the dependencies beside the cache and deletes
the module's cache files when the digest differs."""
import hashlib
import os

__all__ = ["drop_stale_cache"]


def drop_stale_cache(module_file, dependencies):
    """Delete ``module_file``'s Numba cache files (``__pycache__/<stem>.*.nbi|nbc``) when the
    contents of the `dependencies` (file paths) changed since the last call; a cache
    directory that cannot be written is left alone (Numba then compiles per process)."""
    cache_dir = os.path.join(os.path.dirname(os.path.abspath(module_file)), "__pycache__")
    stem = os.path.splitext(os.path.basename(module_file))[0]
    digest = hashlib.sha256()
    for path in dependencies:
        with open(path, "rb") as f:
            digest.update(f.read())
    stamp_path = os.path.join(cache_dir, f"{stem}.deps")
    try:
        with open(stamp_path) as f:
            if f.read() == digest.hexdigest():
                return
    except OSError:
        pass
    try:
        for name in os.listdir(cache_dir):
            if name.startswith(stem + ".") and name.endswith((".nbi", ".nbc")):
                os.remove(os.path.join(cache_dir, name))
        with open(stamp_path, "w") as f:
            f.write(digest.hexdigest())
    except OSError:
        pass
