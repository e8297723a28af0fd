"""Hashes of the fitted arrays of reference fits: the check that an engine change leaves
every model bitwise the same (Bernoulli RBMs plain CD / PCD / momentum + sparsity + decay /
CD-2 at batch 10 and 100 in float32 and float64 with 1 and 2 threads, a learned-sigma
Gaussian RBM, DBNClassifier in both precisions with 1 and 2 threads).

    python bench/model_hashes.py > before.txt   # on the old tree
    python bench/model_hashes.py > after.txt    # on the new one; then diff the two

The ``dbnclf-*`` lines also hash ``predict_proba``, which uses BLAS threads: their 1- and
2-thread lines may differ by one ulp of rounding while ``_theta`` is the same.
"""
import hashlib
import warnings

import numpy as np
from sklearn.datasets import load_digits

warnings.simplefilter("ignore")
from fastrbm import BernoulliRBM, GaussianBernoulliRBM, DBNClassifier  # noqa: E402

X, y = load_digits(return_X_y=True)
X32 = (X / 16).astype(np.float32)
X64 = X / 16
Xstd = ((X - X.mean(0)) / (X.std(0) + 1e-8)).astype(np.float32)


def h(*arrays):
    m = hashlib.sha256()
    for a in arrays:
        m.update(np.ascontiguousarray(a).tobytes())
    return m.hexdigest()[:16]


def rbm_hash(m):
    return h(m.components_, m.intercept_hidden_, m.intercept_visible_, m.h_samples_,
             *(getattr(m, "_velocity", [])), getattr(m, "sigma_", np.zeros(0)))


cases = {}
for batch in (10, 100):
    for X_ in (X32, X64):
        d = X_.dtype.name
        for name, kw in {
            "plain-cd": dict(persistent=False),
            "plain-pcd": dict(persistent=True),
            "mom-sparse": dict(momentum=0.5, sparsity_cost=0.1, weight_decay=1e-4),
            "cd2": dict(k=2, persistent=False),
        }.items():
            for nj in (1, 2):
                m = BernoulliRBM(n_components=64, n_iter=3, batch_size=batch, random_state=0,
                                 n_jobs=nj, **kw).fit(X_)
                cases[f"bern-{name}-b{batch}-{d}-j{nj}"] = rbm_hash(m)
for nj in (1, 2):
    m = GaussianBernoulliRBM(n_components=32, n_iter=3, learn_sigma=True, momentum=0.5,
                             random_state=0, n_jobs=nj).fit(Xstd)
    cases[f"gauss-learn-sigma-j{nj}"] = rbm_hash(m)
    for d, X_ in (("f32", X32), ("f64", X64)):
        c = DBNClassifier(hidden_layer_sizes=(64, 32), max_iter=5, random_state=0,
                          n_jobs=nj).fit(X_, y)
        cases[f"dbnclf-{d}-j{nj}"] = h(c._theta, c.predict_proba(X_))
for k, v in cases.items():
    print(k, v)
