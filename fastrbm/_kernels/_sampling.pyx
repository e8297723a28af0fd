# cython: language_level=3
"""The Gibbs sampling engine: everything in fastrbm that samples runs here.

Layout: matrices are C-ordered (row-major). The weight matrix W has shape
(n_hidden, n_visible), as scikit-learn's ``components_``. BLAS is column-major, so a
row-major product C = op(A) @ op(B) is computed as the column-major C^T = op(B)^T op(A)^T
(``_gemm`` below).

Threads. One pool does everything: OpenMP splits each layer into fixed blocks of output
columns (and the weight update into blocks of hidden units); each block is one
single-threaded BLAS call (scipy's, through ``scipy.linalg.cython_blas``) followed, while
the block is still in cache, by the fused sigmoid + uniform + compare of ``_simd.h``.
Two measured reasons for this design:

* OpenBLAS's own threads and an OpenMP pool on the same cores oversubscribe: a CD epoch
  with both took 25-60x longer than with one.
* OpenBLAS's result for an element depends on how the GEMM is partitioned (thread count,
  split points), so a multi-threaded BLAS call is not reproducible across thread counts.
  The block sizes here depend only on the shapes, so every element is computed by the same
  BLAS call whatever the number of threads, and random draws depend only on
  (seed, counter, row, column): a model is bit-identical for any thread count.

Callers must therefore limit BLAS to one thread (``threadpoolctl.threadpool_limits(1,
"blas")``) around these functions; ``n_threads`` sets the OpenMP threads.

Every function takes arrays and scalars and writes into caller-allocated arrays (or
updates the given parameter arrays in place); none knows about estimators. Each sampling
of a layer consumes one value of ``counter``; functions return the next unused counter,
so a caller that keeps it can resume a stream exactly.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport dgemm, sgemm


import numpy as np


cdef extern from "_transpose.h" nogil:
    void frb_transpose_rows_f32(const float *W, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t nv,
                                Py_ssize_t nh, float *WT)
    void frb_transpose_rows_f64(const double *W, Py_ssize_t i0, Py_ssize_t i1,
                                Py_ssize_t nv, Py_ssize_t nh, double *WT)


cdef extern from "_simd.h" nogil:
    const char *FRB_BUILD_COMPILER
    const char *FRB_DISPATCH
    int FRB_BUILD_OPENMP
    int FRB_PORTABLE
    uint64_t frb_splitmix64(uint64_t x)
    uint64_t frb_row_key(uint64_t seed, uint64_t counter, uint64_t row)
    void frb_sigmoid_f32(const float *acc, float scale, const float *bias, float *prob,
                         Py_ssize_t n)
    void frb_sigmoid_f64(const double *acc, double scale, const double *bias, double *prob,
                         Py_ssize_t n)
    void frb_sigmoid_sample_f32(const float *acc, float scale, const float *bias, float *prob,
                                float *sample, Py_ssize_t n, uint64_t key, uint32_t j0)
    void frb_sigmoid_sample_f64(const double *acc, double scale, const double *bias,
                                double *prob, double *sample, Py_ssize_t n, uint64_t key,
                                uint32_t j0)
    void frb_anneal_row_f32(const float *a, float s1, const float *b1, float s0,
                            const float *b0, float *sample, Py_ssize_t n, uint64_t key,
                            uint32_t j0, double *out)
    void frb_anneal_row_f64(const double *a, double s1, const double *b1, double s0,
                            const double *b0, double *sample, Py_ssize_t n, uint64_t key,
                            uint32_t j0, double *out)
    void frb_logistic_f64(double *out, Py_ssize_t n, uint64_t key)
    void frb_axpy_f64(double a, const double *x, double *y, Py_ssize_t n)
    double frb_softplus_sum_f32(const float *a, float s, const float *sb, Py_ssize_t n)
    double frb_softplus_sum_f64(const double *a, double s, const double *sb, Py_ssize_t n)
    double frb_dot_f32(const float *x, const float *y, Py_ssize_t n)
    double frb_dot_f64(const double *x, const double *y, Py_ssize_t n)
    void frb_uniform_f32(float *out, Py_ssize_t n, uint64_t key)
    void frb_uniform_f64(double *out, Py_ssize_t n, uint64_t key)
    void frb_normal_f32(float *out, Py_ssize_t n, uint64_t key)
    void frb_normal_f64(double *out, Py_ssize_t n, uint64_t key)
    void frb_gauss_sample_f32(const float *acc, float scale, const float *bias,
                              const float *sigma, float *mean, float *sample,
                              const float *inv_var, float *scaled, Py_ssize_t n,
                              uint64_t key, uint32_t j0)
    void frb_gauss_sample_f64(const double *acc, double scale, const double *bias,
                              const double *sigma, double *mean, double *sample,
                              const double *inv_var, double *scaled, Py_ssize_t n,
                              uint64_t key, uint32_t j0)
    void frb_nrelu_sample_f32(const float *acc, float scale, const float *bias, float *mean,
                              float *sample, Py_ssize_t n, uint64_t key, uint32_t j0)
    void frb_nrelu_sample_f64(const double *acc, double scale, const double *bias,
                              double *mean, double *sample, Py_ssize_t n, uint64_t key,
                              uint32_t j0)


# Unit types of a layer. Bernoulli: P = sigmoid(x), S ~ Bernoulli(P). Gaussian: P = x (the
# mean), S = P + sigma * N(0, 1) (visible units: sigma per unit; hidden units, the linear
# units of Hinton & Salakhutdinov 2006: sigma = 1). Noisy rectified linear (hidden, Nair &
# Hinton 2010): P = max(0, x), S = max(0, x + sqrt(sigmoid(x)) N(0, 1)). The Python-level
# names map to these codes through _unit_code.
cdef enum:
    BERNOULLI = 0
    GAUSSIAN = 1
    NRELU = 2

_UNIT_CODES = {"bernoulli": BERNOULLI, "gaussian": GAUSSIAN, "nrelu": NRELU}


cdef int _unit_code(str name, str layer) except -1:
    allowed = (("bernoulli", "gaussian") if layer == "visible"
               else ("bernoulli", "nrelu", "gaussian"))
    if name not in allowed:
        raise ValueError(f"{layer} units must be one of {allowed}, got {name!r}")
    return _UNIT_CODES[name]


# ---------------------------------------------------------------------------------------
# Building blocks (nogil, pointer level)
# ---------------------------------------------------------------------------------------

cdef inline void _gemm(char transa, char transb, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       floating alpha, const floating *A, Py_ssize_t lda,
                       const floating *B, Py_ssize_t ldb, floating beta, floating *C,
                       Py_ssize_t ldc) noexcept nogil:
    """Row-major C = alpha * op(A) @ op(B) + beta * C, op(X) = X or X^T ('N' / 'T')."""
    cdef int m_ = m, n_ = n, k_ = k, lda_ = lda, ldb_ = ldb, ldc_ = ldc
    if floating is float:
        sgemm(&transb, &transa, &n_, &m_, &k_, &alpha, <float *> B, &ldb_, <float *> A,
              &lda_, &beta, C, &ldc_)
    else:
        dgemm(&transb, &transa, &n_, &m_, &k_, &alpha, <double *> B, &ldb_, <double *> A,
              &lda_, &beta, C, &ldc_)


cdef inline bint _works_transposed(Py_ssize_t rows) noexcept nogil:
    """Whether products with mini-batches (or chains) of ``rows`` rows use W's transpose
    (see _up): for few rows OpenBLAS packs W^T at every V @ W^T call, which then costs as
    much as the product; from about 50 rows on the transposed layout measured slower
    (Fashion-MNIST epochs at batch 50: 0.65 against 0.54 s). The rule depends on the shape
    only, so results do not depend on the thread count."""
    return rows <= 32


cdef inline Py_ssize_t _block_size(Py_ssize_t dim, int n_blocks) noexcept nogil:
    """Column-block width that cuts a layer of ``dim`` units into ``n_blocks`` blocks (but
    no block narrower than 16 units). Callers pass a block count that does not depend on
    their thread count, so results do not either."""
    cdef Py_ssize_t size = (dim + n_blocks - 1) // n_blocks
    return size if size > 16 else 16


cdef void _activate(floating *P, Py_ssize_t ld, floating scale, const floating *bias,
                    floating *S, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t j0,
                    uint64_t seed, uint64_t counter, Py_ssize_t row0=0, int units=BERNOULLI,
                    const floating *sigma=NULL, const floating *inv_var=NULL,
                    floating *scaled=NULL) noexcept nogil:
    """On the block of columns [j0, j0 + cols) of ``rows`` rows with leading dimension
    ``ld`` (P, bias and S point at column j0 of row ``row0``): P = sigmoid(scale * P + bias)
    and, unless S is NULL, S = Bernoulli(P) drawn at (seed, counter, row0 + r, column).

    Other ``units`` (see the enum above) replace sigmoid and Bernoulli by their mean and
    sample. Gaussian units take ``sigma`` (pointing at column j0 as bias does; NULL: unit
    variance, as Gaussian hidden units) and, when
    ``scaled`` is not NULL (leading dimension ``ld`` as S), also write scaled = S * inv_var."""
    cdef Py_ssize_t r
    cdef uint64_t key
    for r in range(rows):
        if units != BERNOULLI:
            key = frb_row_key(seed, counter, row0 + r) if S != NULL else 0
            if units == GAUSSIAN:
                if floating is float:
                    frb_gauss_sample_f32(P + r * ld, scale, bias, sigma, P + r * ld,
                                         S + r * ld if S != NULL else NULL, inv_var,
                                         scaled + r * ld if scaled != NULL else NULL, cols,
                                         key, <uint32_t> j0)
                else:
                    frb_gauss_sample_f64(P + r * ld, scale, bias, sigma, P + r * ld,
                                         S + r * ld if S != NULL else NULL, inv_var,
                                         scaled + r * ld if scaled != NULL else NULL, cols,
                                         key, <uint32_t> j0)
            else:
                if floating is float:
                    frb_nrelu_sample_f32(P + r * ld, scale, bias, P + r * ld,
                                         S + r * ld if S != NULL else NULL, cols, key,
                                         <uint32_t> j0)
                else:
                    frb_nrelu_sample_f64(P + r * ld, scale, bias, P + r * ld,
                                         S + r * ld if S != NULL else NULL, cols, key,
                                         <uint32_t> j0)
        elif S == NULL:
            if floating is float:
                frb_sigmoid_f32(P + r * ld, scale, bias, P + r * ld, cols)
            else:
                frb_sigmoid_f64(P + r * ld, scale, bias, P + r * ld, cols)
        else:
            if floating is float:
                frb_sigmoid_sample_f32(P + r * ld, scale, bias, P + r * ld, S + r * ld,
                                       cols, frb_row_key(seed, counter, row0 + r),
                                       <uint32_t> j0)
            else:
                frb_sigmoid_sample_f64(P + r * ld, scale, bias, P + r * ld, S + r * ld,
                                       cols, frb_row_key(seed, counter, row0 + r),
                                       <uint32_t> j0)


cdef inline void _hidden_gemm(bint transposed, const floating *V, Py_ssize_t n,
                              Py_ssize_t nv, const floating *W, Py_ssize_t nh, Py_ssize_t j0,
                              Py_ssize_t j1, floating *P) noexcept nogil:
    """P[:, j0:j1] = V @ W[j0:j1]^T for W (nh, nv), or with ``transposed`` for W given as its
    transpose (nv, nh); V is (n, nv) and P (n, nh)."""
    if transposed:
        _gemm(c'N', c'N', n, j1 - j0, nv, 1, V, nv, W + j0, nh, 0, P + j0, nh)
    else:
        _gemm(c'N', c'T', n, j1 - j0, nv, 1, V, nv, W + j0 * nv, nv, 0, P + j0, nh)


cdef inline void _visible_gemm(bint transposed, const floating *H, Py_ssize_t n,
                               Py_ssize_t nh, const floating *W, Py_ssize_t nv, Py_ssize_t j0,
                               Py_ssize_t j1, floating *P) noexcept nogil:
    """P[:, j0:j1] = H @ W[:, j0:j1] for W (nh, nv), or with ``transposed`` for W given as
    its transpose (nv, nh); H is (n, nh) and P (n, nv)."""
    if transposed:
        _gemm(c'N', c'T', n, j1 - j0, nh, 1, H, nh, W + j0 * nh, nh, 0, P + j0, nv)
    else:
        _gemm(c'N', c'N', n, j1 - j0, nh, 1, H, nh, W + j0, nv, 0, P + j0, nv)


cdef inline void _up_block(const floating *V, Py_ssize_t n, Py_ssize_t nv, const floating *W,
                           bint transposed, Py_ssize_t nh, const floating *c, floating *P,
                           floating *S, uint64_t seed, uint64_t counter, int units,
                           Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """Hidden units j0..j1-1 of _up."""
    _hidden_gemm(transposed, V, n, nv, W, nh, j0, j1, P)
    _activate(P + j0, nh, 1, c + j0, S + j0 if S != NULL else NULL, n, j1 - j0, j0,
              seed, counter, 0, units)


cdef void _up(const floating *V, Py_ssize_t n, Py_ssize_t nv, const floating *W,
              bint transposed, Py_ssize_t nh, const floating *c, floating *P, floating *S,
              uint64_t seed, uint64_t counter, int n_blocks, int n_threads,
              int units=BERNOULLI) noexcept nogil:
    """Hidden layer given visible rows V (n, nv): P = sigmoid(V W^T + c), S ~ P if S (for
    ``units`` other than Bernoulli, their mean and sample; see _activate).
    W is (nh, nv), or with ``transposed`` its transpose (nv, nh) (see _works_transposed).

    One thread runs the blocks without opening an OpenMP region: even a one-thread region
    (prange's use_threads_if) cost about 0.3 us, 6% of a 256-hidden, batch-10 epoch."""
    cdef Py_ssize_t size = _block_size(nh, n_blocks), count = (nh + size - 1) // size, blk
    if n_threads > 1:
        for blk in prange(count, num_threads=n_threads, schedule="static"):
            _up_block(V, n, nv, W, transposed, nh, c, P, S, seed, counter, units, blk * size,
                      min(nh, (blk + 1) * size))
    else:
        for blk in range(count):
            _up_block(V, n, nv, W, transposed, nh, c, P, S, seed, counter, units, blk * size,
                      min(nh, (blk + 1) * size))


cdef inline void _down_block(const floating *H, Py_ssize_t n, Py_ssize_t nh,
                             const floating *W, bint transposed, Py_ssize_t nv,
                             floating scale, const floating *b, floating *P, floating *S,
                             uint64_t seed, uint64_t counter, int units,
                             const floating *sigma, const floating *inv_var, floating *scaled,
                             Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """Visible units j0..j1-1 of _down."""
    _visible_gemm(transposed, H, n, nh, W, nv, j0, j1, P)
    _activate(P + j0, nv, scale, b + j0, S + j0 if S != NULL else NULL, n, j1 - j0, j0,
              seed, counter, 0, units, sigma + j0 if sigma != NULL else NULL,
              inv_var + j0 if inv_var != NULL else NULL,
              scaled + j0 if scaled != NULL else NULL)


cdef void _down(const floating *H, Py_ssize_t n, Py_ssize_t nh, const floating *W,
                bint transposed, Py_ssize_t nv, floating scale, const floating *b,
                floating *P, floating *S, uint64_t seed, uint64_t counter, int n_blocks,
                int n_threads, int units=BERNOULLI, const floating *sigma=NULL,
                const floating *inv_var=NULL, floating *scaled=NULL) noexcept nogil:
    """Visible layer given hidden rows H (n, nh): P = sigmoid(scale * H W + b), S ~ P if
    S (scale is 1 except in annealing). Gaussian ``units``: P = scale * H W + b, S = P +
    sigma * noise, and scaled = S * inv_var unless ``scaled`` is NULL (see _activate).
    W is (nh, nv), or with ``transposed`` its transpose (nv, nh), and threads as in _up."""
    cdef Py_ssize_t size = _block_size(nv, n_blocks), count = (nv + size - 1) // size, blk
    if n_threads > 1:
        for blk in prange(count, num_threads=n_threads, schedule="static"):
            _down_block(H, n, nh, W, transposed, nv, scale, b, P, S, seed, counter, units,
                        sigma, inv_var, scaled, blk * size, min(nv, (blk + 1) * size))
    else:
        for blk in range(count):
            _down_block(H, n, nh, W, transposed, nv, scale, b, P, S, seed, counter, units,
                        sigma, inv_var, scaled, blk * size, min(nv, (blk + 1) * size))


cdef inline void _transpose_rows(const floating *W, Py_ssize_t i0, Py_ssize_t i1,
                                 Py_ssize_t nv, Py_ssize_t nh, floating *WT) noexcept nogil:
    """WT[:, i0:i1] = W[i0:i1, :].T (W is (nh, nv), WT is (nv, nh)), in register tiles."""
    if floating is float:
        frb_transpose_rows_f32(W, i0, i1, nv, nh, WT)
    else:
        frb_transpose_rows_f64(W, i0, i1, nv, nh, WT)


cdef floating[:, ::1] _transposed_copy(const floating[:, ::1] A):
    """A new C-ordered array holding A's transpose (the working layout of small batches)."""
    cdef floating[:, ::1] AT = np.empty((A.shape[1], A.shape[0]),
                                        np.float32 if floating is float else np.float64)
    if A.shape[0] and A.shape[1]:
        _transpose_rows(&A[0, 0], 0, A.shape[0], A.shape[1], A.shape[0], &AT[0, 0])
    return AT


cdef void _add_colsum(const floating *A, Py_ssize_t rows, Py_ssize_t ld, Py_ssize_t cols,
                      floating alpha, floating *out) noexcept nogil:
    """out[:cols] += alpha * A[:rows, :cols].sum(axis=0), rows summed in a fixed order."""
    cdef Py_ssize_t r, j
    cdef const floating *row
    for r in range(rows):
        row = A + r * ld
        for j in range(cols):
            out[j] += alpha * row[j]


cdef void _bias_gradient(const floating *pos, Py_ssize_t n, const floating *neg,
                         Py_ssize_t n_neg, Py_ssize_t ld, Py_ssize_t cols,
                         floating *out) noexcept nogil:
    """out[:cols] = n * (mean of pos's n rows - mean of neg's n_neg rows), as unscaled
    column sums: the caller scales once, by lr / n. Sums of samples then stay exact, and a
    float32 model rounds about as often as scikit-learn's (adding lr / n * row into the
    biases row by row rounded once per row and drifted 4x further from float64)."""
    memset(out, 0, cols * sizeof(floating))
    _add_colsum(pos, n, ld, cols, 1, out)
    _add_colsum(neg, n_neg, ld, cols, <floating> (-(<double> n) / n_neg), out)


cdef void _csr_rows_to_dense(const floating *data, const int *indices, const int *indptr,
                             Py_ssize_t start, Py_ssize_t stop, Py_ssize_t cols,
                             floating *out) noexcept nogil:
    """Scatter CSR rows [start, stop) into the dense C-ordered buffer out."""
    cdef Py_ssize_t r, p
    memset(out, 0, (stop - start) * cols * sizeof(floating))
    for r in range(start, stop):
        for p in range(indptr[r], indptr[r + 1]):
            out[(r - start) * cols + indices[p]] = data[p]


# ---------------------------------------------------------------------------------------
# Single-layer kernels and chains, for transform / gibbs / generation and for the tests
# ---------------------------------------------------------------------------------------

cdef void _activate_rows(floating *P, const floating *bias, floating *S, Py_ssize_t rows,
                        Py_ssize_t cols, uint64_t seed, uint64_t counter,
                        int n_threads, int units=BERNOULLI,
                        const floating *sigma=NULL) noexcept nogil:
    """_activate over whole rows, the rows shared among OpenMP threads."""
    cdef Py_ssize_t r
    for r in prange(rows, num_threads=n_threads, schedule="static",
                    use_threads_if=n_threads > 1):
        _activate(P + r * cols, cols, 1, bias, S + r * cols if S != NULL else NULL, 1, cols,
                  0, seed, counter, r, units, sigma)


cdef void _scale_rows(const floating *V, Py_ssize_t rows, Py_ssize_t cols,
                      const floating *inv_var, floating *out, int n_threads) noexcept nogil:
    """out[r, j] = V[r, j] * inv_var[j] (Gaussian visible rows over sigma^2)."""
    cdef Py_ssize_t r, j
    for r in prange(rows, num_threads=n_threads, schedule="static",
                    use_threads_if=n_threads > 1):
        for j in range(cols):
            out[r * cols + j] = V[r * cols + j] * inv_var[j]


cdef void _sigma_from_log_var(const floating *log_var, Py_ssize_t n, floating *sigma,
                              floating *inv_var) noexcept nogil:
    """sigma = exp(log_var / 2), inv_var = exp(-log_var) (1 exactly where log_var is 0)."""
    cdef Py_ssize_t j
    for j in range(n):
        sigma[j] = exp(0.5 * log_var[j])
        inv_var[j] = exp(-log_var[j])


# ---------------------------------------------------------------------------------------
# ILP64 Fortran sgemm / dgemm (64-bit integers) forwarding to scipy's BLAS: the backprop
# engine's stand-in for NumPy's ILP64 OpenBLAS when no such library is loaded (see
# backprop._loaded_ilp64_gemm).
# ---------------------------------------------------------------------------------------

cdef void _sgemm_ilp64(char *ta, char *tb, int64_t *m, int64_t *n, int64_t *k, float *alpha,
                       float *A, int64_t *lda, float *B, int64_t *ldb, float *beta, float *C,
                       int64_t *ldc) noexcept nogil:
    cdef int m_ = m[0], n_ = n[0], k_ = k[0], lda_ = lda[0], ldb_ = ldb[0], ldc_ = ldc[0]
    sgemm(ta, tb, &m_, &n_, &k_, alpha, A, &lda_, B, &ldb_, beta, C, &ldc_)


cdef void _dgemm_ilp64(char *ta, char *tb, int64_t *m, int64_t *n, int64_t *k, double *alpha,
                       double *A, int64_t *lda, double *B, int64_t *ldb, double *beta,
                       double *C, int64_t *ldc) noexcept nogil:
    cdef int m_ = m[0], n_ = n[0], k_ = k[0], lda_ = lda[0], ldb_ = ldb[0], ldc_ = ldc[0]
    dgemm(ta, tb, &m_, &n_, &k_, alpha, A, &lda_, B, &ldb_, beta, C, &ldc_)


def ilp64_fallback_addresses():
    """Addresses of the ILP64 ``(sgemm, dgemm)`` that forward to scipy's BLAS."""
    return <size_t> &_sgemm_ilp64, <size_t> &_dgemm_ilp64


# The rules the Numba backprop engine repeats across the engine boundary (it cannot call
# these inline functions); tests/test_engine_rules.py pins both engines' versions equal.
def block_size(Py_ssize_t dim, int n_blocks):
    """Column-block width of :func:`_block_size` (backprop: ``_blocks``)."""
    return _block_size(dim, n_blocks)


def build_info():
    """How this extension was compiled: ``{"compiler": "gcc 12.2.0", "openmp": True,
    "portable": False, "dispatch": "x86-64-v4, x86-64-v3, default"}``. ``openmp`` False is
    the serial build (``n_threads`` then runs on one thread, with the same results);
    ``portable`` True is the plain-C path without vector extensions; ``dispatch`` names the
    ISA levels the row kernels are compiled for and chosen among at load time ("none": the
    baseline ISA only)."""
    return {"compiler": FRB_BUILD_COMPILER.decode(), "openmp": bool(FRB_BUILD_OPENMP),
            "portable": bool(FRB_PORTABLE), "dispatch": FRB_DISPATCH.decode()}


def splitmix64(uint64_t x):
    """One SplitMix64 step, increment included (backprop: ``_splitmix64(x + golden)``)."""
    return frb_splitmix64(x)


def row_major_gemm(str transa, str transb, const floating[:, ::1] A,
                   const floating[:, ::1] B, floating[:, ::1] C):
    """``C = op(A) @ op(B)`` through :func:`_gemm` (backprop: ``_gemm``), whole arrays."""
    cdef char ta = ord(transa), tb = ord(transb)
    cdef Py_ssize_t k = A.shape[0] if transa == "T" else A.shape[1]
    _gemm(ta, tb, C.shape[0], C.shape[1], k, 1, &A[0, 0], A.shape[1], &B[0, 0], B.shape[1],
          0, &C[0, 0], C.shape[1])


def _check_log_var(log_var, Py_ssize_t nv):
    if log_var is None or log_var.shape[0] != nv:
        raise ValueError("Gaussian visible units need log_var of shape (n_visible,)")


def sigmoid_rows(floating[:, ::1] acc, const floating[::1] bias, int n_threads=1):
    """In place: acc[r, :] = sigmoid(acc[r, :] + bias)."""
    if acc.shape[1] != bias.shape[0]:
        raise ValueError("bias length does not match the number of columns")
    if acc.shape[0] and acc.shape[1]:
        with nogil:
            _activate_rows(&acc[0, 0], &bias[0], NULL, acc.shape[0], acc.shape[1], 0, 0,
                           n_threads)


cdef _sample_rows(floating[:, ::1] acc, const floating[::1] bias, floating[:, ::1] sample,
                  uint64_t seed, uint64_t counter, int n_threads, int units,
                  const floating *sigma=NULL):
    """The checked body of the *_sample_rows functions: _activate over whole rows."""
    if acc.shape[1] != bias.shape[0] or sample.shape[0] != acc.shape[0] \
            or sample.shape[1] != acc.shape[1]:
        raise ValueError("shape mismatch")
    if acc.shape[0] and acc.shape[1]:
        with nogil:
            _activate_rows(&acc[0, 0], &bias[0], &sample[0, 0], acc.shape[0], acc.shape[1],
                           seed, counter, n_threads, units, sigma)
    return counter + 1


def sigmoid_sample_rows(floating[:, ::1] acc, const floating[::1] bias,
                        floating[:, ::1] sample, uint64_t seed, uint64_t counter,
                        int n_threads=1):
    """In place: acc -> sigmoid(acc + bias); sample[r, j] = uniform(seed, counter, r, j) <
    acc[r, j]. Returns counter + 1."""
    return _sample_rows(acc, bias, sample, seed, counter, n_threads, BERNOULLI)


def gaussian_sample_rows(floating[:, ::1] acc, const floating[::1] bias,
                         const floating[::1] sigma, floating[:, ::1] sample, uint64_t seed,
                         uint64_t counter, int n_threads=1):
    """Gaussian units, in place: acc -> acc + bias (the mean); sample[r, j] = acc[r, j] +
    sigma[j] * normal(seed, counter, r, j). Returns counter + 1."""
    if sigma.shape[0] != bias.shape[0]:
        raise ValueError("shape mismatch")
    return _sample_rows(acc, bias, sample, seed, counter, n_threads, GAUSSIAN,
                        &sigma[0] if sigma.shape[0] else NULL)


def nrelu_sample_rows(floating[:, ::1] acc, const floating[::1] bias,
                      floating[:, ::1] sample, uint64_t seed, uint64_t counter,
                      int n_threads=1):
    """Noisy rectified linear units, in place: with x = acc + bias, acc -> max(0, x) and
    sample[r, j] = max(0, x + sqrt(sigmoid(x)) * normal(seed, counter, r, j)). Returns
    counter + 1."""
    return _sample_rows(acc, bias, sample, seed, counter, n_threads, NRELU)


cdef void _draw_rows(floating *out, Py_ssize_t rows, Py_ssize_t cols, uint64_t seed,
                     uint64_t counter, int n_threads, bint normal) noexcept nogil:
    """out[r, j] = the uniform (or, with ``normal``, the standard normal) the engine draws at
    (seed, counter, r, j)."""
    cdef Py_ssize_t r
    for r in prange(rows, num_threads=n_threads, schedule="static",
                    use_threads_if=n_threads > 1):
        if normal:
            if floating is float:
                frb_normal_f32(out + r * cols, cols, frb_row_key(seed, counter, r))
            else:
                frb_normal_f64(out + r * cols, cols, frb_row_key(seed, counter, r))
        elif floating is float:
            frb_uniform_f32(out + r * cols, cols, frb_row_key(seed, counter, r))
        else:
            frb_uniform_f64(out + r * cols, cols, frb_row_key(seed, counter, r))


def normal_rows(floating[:, ::1] out, uint64_t seed, uint64_t counter, int n_threads=1):
    """Fill out[r, j] with the standard normal the engine would draw at (seed, counter, r,
    j), for tests as ``uniform_rows``."""
    if out.shape[0] and out.shape[1]:
        with nogil:
            _draw_rows(&out[0, 0], out.shape[0], out.shape[1], seed, counter, n_threads, True)
    return counter + 1


def transpose_rows(const floating[:, ::1] W, floating[:, ::1] WT, Py_ssize_t i0,
                   Py_ssize_t i1):
    """WT[:, i0:i1] = W[i0:i1, :].T, the copy in and out of the transposed weights that
    small mini-batches work on (exposed for the tests)."""
    if WT.shape[0] != W.shape[1] or WT.shape[1] != W.shape[0]:
        raise ValueError("WT must have the transposed shape of W")
    if not 0 <= i0 <= i1 <= W.shape[0]:
        raise ValueError("rows [i0, i1) out of range")
    if i1 > i0 and W.shape[1]:
        _transpose_rows(&W[0, 0], i0, i1, W.shape[1], W.shape[0], &WT[0, 0])


def uniform_rows(floating[:, ::1] out, uint64_t seed, uint64_t counter, int n_threads=1):
    """Fill out[r, j] with the uniform the engine would draw at (seed, counter, r, j).

    Exposed so that tests can feed the NumPy oracle exactly the engine's uniforms."""
    if out.shape[0] and out.shape[1]:
        with nogil:
            _draw_rows(&out[0, 0], out.shape[0], out.shape[1], seed, counter, n_threads,
                       False)
    return counter + 1


def gibbs_chain(floating[:, ::1] v, floating[:, ::1] h, const floating[:, ::1] W,
                const floating[::1] b, const floating[::1] c, int n_steps,
                uint64_t seed, uint64_t counter, int n_blocks=1, int n_threads=1,
                floating[:, ::1] v_prob=None, str visible="bernoulli",
                str hidden="bernoulli", const floating[::1] log_var=None):
    """Run ``n_steps`` full Gibbs steps v -> h -> v in place on the chains in ``v``.

    ``v`` (n_chains, n_visible) holds the start state and receives the final visible
    samples; ``h`` (n_chains, n_hidden) receives the last hidden samples. When given,
    ``v_prob`` receives the visible probabilities (means, for Gaussian units) of the last
    step. Each layer is computed in ``n_blocks`` column blocks shared among ``n_threads``
    OpenMP threads. Returns the next counter (two per step).

    ``visible`` is "bernoulli" or "gaussian" (then ``log_var`` holds log sigma^2 of each
    visible unit, and the hidden layer sees v / sigma^2); ``hidden`` is "bernoulli",
    "nrelu" or "gaussian" (linear, unit variance)."""
    cdef Py_ssize_t n = v.shape[0], nv = v.shape[1], nh = h.shape[1]
    cdef int step
    cdef int vis = _unit_code(visible, "visible"), hid = _unit_code(hidden, "hidden")
    if W.shape[0] != nh or W.shape[1] != nv or h.shape[0] != n or b.shape[0] != nv \
            or c.shape[0] != nh:
        raise ValueError("shape mismatch")
    if v_prob is not None and (v_prob.shape[0] != n or v_prob.shape[1] != nv):
        raise ValueError("v_prob has the wrong shape")
    if n_blocks < 1 or n_threads < 1:
        raise ValueError("n_blocks and n_threads must be positive")
    if vis == GAUSSIAN:
        _check_log_var(log_var, nv)
    if n == 0 or nv == 0 or nh == 0 or n_steps <= 0:
        return counter
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] hp = np.empty((n, nh), dtype)
    cdef floating[:, ::1] vp = v_prob if v_prob is not None else np.empty((n, nv), dtype)
    # Gaussian units: sigma and 1 / sigma^2, and v / sigma^2 for the hidden layer unless
    # every sigma is 1.
    cdef bint scaled = vis == GAUSSIAN and np.any(np.asarray(log_var) != 0)
    cdef floating[::1] sigma = np.ones(nv if vis == GAUSSIAN else 1, dtype)
    cdef floating[::1] inv_var = np.ones(nv if vis == GAUSSIAN else 1, dtype)
    cdef floating[:, ::1] vs = np.empty((n if scaled else 1, nv), dtype)
    cdef floating *v_up = &vs[0, 0] if scaled else &v[0, 0]
    if vis == GAUSSIAN:
        _sigma_from_log_var(&log_var[0], nv, &sigma[0], &inv_var[0])
    cdef bint transposed = _works_transposed(n)  # as cd_epoch's mini-batches
    cdef floating[:, ::1] WT = _transposed_copy(W) if transposed else None
    cdef const floating *Wk = &WT[0, 0] if transposed else &W[0, 0]
    with nogil:
        if scaled:
            _scale_rows(&v[0, 0], n, nv, &inv_var[0], v_up, n_threads)
        for step in range(n_steps):
            _up(v_up, n, nv, Wk, transposed, nh, &c[0], &hp[0, 0], &h[0, 0], seed, counter,
                n_blocks, n_threads, hid)
            _down(&h[0, 0], n, nh, Wk, transposed, nv, 1, &b[0], &vp[0, 0], &v[0, 0], seed,
                  counter + 1, n_blocks, n_threads, vis, &sigma[0], &inv_var[0],
                  v_up if scaled else NULL)
            counter += 2
    return counter


# ---------------------------------------------------------------------------------------
# Annealed importance sampling
# ---------------------------------------------------------------------------------------

def ais_log_weights(const floating[:, ::1] W, const floating[::1] b, const floating[::1] c,
                    const floating[::1] b_base, const double[::1] betas, double[::1] log_w,
                    uint64_t seed, uint64_t counter, int n_blocks=1, int n_threads=1):
    """Annealed importance sampling (Salakhutdinov & Murray 2008) for a Bernoulli RBM.

    Anneals from the base-rate model (visible biases ``b_base``, no weights, hidden biases
    0) to the RBM (W, b, c) through the intermediate models
    ``p_beta(v) ~ exp((1 - beta) b_base.v + beta b.v) prod_i (1 + exp(beta (W_i.v + c_i)))``
    at the inverse temperatures ``betas`` (non-decreasing, from 0 to 1; the caller checks
    the order), with one chain per
    entry of ``log_w``, which receives the chains' log importance weights in float64. Then
    ``log Z = log Z_base + log mean exp(log_w)``, where
    ``log Z_base = n_hidden log 2 + sum_j softplus(b_base_j)``.

    Each transition is one Gibbs sweep of the intermediate model; the chains' visible
    states start as exact samples of the base model. Returns the next counter.
    """
    cdef Py_ssize_t n = log_w.shape[0], nv = W.shape[1], nh = W.shape[0], n_betas = betas.shape[0]
    if b.shape[0] != nv or c.shape[0] != nh or b_base.shape[0] != nv:
        raise ValueError("shape mismatch")
    if n_betas < 2 or betas[0] != 0 or betas[n_betas - 1] != 1:
        raise ValueError("betas must run from 0 to 1 (at least two values)")
    if n_blocks < 1 or n_threads < 1:
        raise ValueError("n_blocks and n_threads must be positive")
    if n == 0 or nv == 0 or nh == 0:
        return counter
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] V = np.zeros((n, nv), dtype)
    cdef floating[:, ::1] Vp = np.zeros((n, nv), dtype)
    cdef floating[:, ::1] A = np.empty((n, nh), dtype)
    cdef floating[:, ::1] H = np.empty((n, nh), dtype)
    cdef floating[::1] c_new = np.empty(nh, dtype)
    cdef floating[::1] c_old = np.empty(nh, dtype)
    cdef floating[::1] b_mix = np.empty(nv, dtype)
    cdef floating[::1] b_diff = np.empty(nv, dtype)
    cdef Py_ssize_t size = _block_size(nh, n_blocks), n_hblocks = (nh + size - 1) // size
    cdef double[:, ::1] partial = np.zeros((n_hblocks, n), np.float64)
    cdef Py_ssize_t step, blk, r, i, j, j0, j1
    cdef floating beta, beta_old
    cdef uint64_t key
    for j in range(nv):
        b_diff[j] = b[j] - b_base[j]
    log_w[:] = 0
    with nogil:
        # Exact samples of the base model: V ~ Bernoulli(sigmoid(b_base)).
        _activate(&Vp[0, 0], nv, 1, &b_base[0], &V[0, 0], n, nv, 0, seed, counter)
        counter += 1
        for step in range(1, n_betas):
            beta = betas[step]
            beta_old = betas[step - 1]
            for i in range(nh):
                c_new[i] = beta * c[i]
                c_old[i] = beta_old * c[i]
            # log p*_beta(v) - log p*_beta_old(v): the softplus terms come from the hidden
            # pre-activations, which also give the hidden sample of the transition at beta.
            for blk in prange(n_hblocks, num_threads=n_threads, schedule="static",
                              use_threads_if=n_threads > 1):
                j0 = blk * size
                j1 = min(nh, j0 + size)
                _gemm(c'N', c'T', n, j1 - j0, nv, 1, &V[0, 0], nv, &W[j0, 0], nv, 0,
                      &A[0, j0], nh)
                for r in range(n):
                    partial[blk, r] = 0
                    key = frb_row_key(seed, counter, r)
                    if floating is float:
                        frb_anneal_row_f32(&A[r, j0], beta, &c_new[j0], beta_old, &c_old[j0],
                                           &H[r, j0], j1 - j0, key, <uint32_t> j0,
                                           &partial[blk, r])
                    else:
                        frb_anneal_row_f64(&A[r, j0], beta, &c_new[j0], beta_old, &c_old[j0],
                                           &H[r, j0], j1 - j0, key, <uint32_t> j0,
                                           &partial[blk, r])
            counter += 1
            for r in range(n):
                for blk in range(n_hblocks):
                    log_w[r] += partial[blk, r]
                if floating is float:
                    log_w[r] += (beta - beta_old) * frb_dot_f32(&b_diff[0], &V[r, 0], nv)
                else:
                    log_w[r] += (beta - beta_old) * frb_dot_f64(&b_diff[0], &V[r, 0], nv)
            if step == n_betas - 1:
                break
            # The rest of the transition at beta: v ~ sigmoid(beta (h W + b) + (1 - beta) b_base).
            for j in range(nv):
                b_mix[j] = beta * b[j] + (1 - beta) * b_base[j]
            _down(&H[0, 0], n, nh, &W[0, 0], False, nv, beta, &b_mix[0], &Vp[0, 0], &V[0, 0],
                  seed, counter, n_blocks, n_threads)
            counter += 1
    return counter


# The hidden-layer marginal of an annealed Gaussian-Bernoulli RBM (see ais_hidden_log_weights):
# log p*_beta(h) = lin_beta.h + beta^2 / 2 h'Jh + (terms without h),
# lin_beta = beta c + beta (1 - beta) g_base + beta^2 g_model.
cdef struct HiddenMarginal:
    const double *J        # (nh, nh), W diag(1 / s^2) W^T
    const double *c        # hidden biases
    const double *g_base   # W (b_base / s^2)
    const double *g_model  # W (b / s^2)
    Py_ssize_t nh


cdef inline void _hidden_linear(const HiddenMarginal *m, double beta,
                                double *lin) noexcept nogil:
    """lin = lin_beta, the linear coefficients of the hidden marginal at beta."""
    cdef Py_ssize_t j
    for j in range(m.nh):
        lin[j] = beta * m.c[j] + beta * (1 - beta) * m.g_base[j] + beta * beta * m.g_model[j]


cdef inline void _add_row(const HiddenMarginal *m, Py_ssize_t j, double d,
                          double *f) noexcept nogil:
    """f += d * J[j] (the coupling field after h_j changes by d)."""
    frb_axpy_f64(d, m.J + j * m.nh, f, m.nh)


cdef double _anneal_hidden_chain(const HiddenMarginal *m, const double *betas,
                                 Py_ssize_t n_betas, uint64_t seed, uint64_t counter,
                                 Py_ssize_t r, double *work) noexcept nogil:
    """The log importance weight of chain ``r``: h from the uniform base, then at each
    inverse temperature the weight increment from h and one systematic Gibbs sweep over
    the hidden units (unit j: h_j = [lin_j + beta^2 (f_j - J_jj h_j + J_jj / 2) > noise_j],
    f = J h kept up to date). ``work`` holds 5 n_hidden doubles."""
    cdef Py_ssize_t nh = m.nh, j, k
    cdef double *h = work
    cdef double *f = work + nh
    cdef double *lin_old = work + 2 * nh
    cdef double *lin = work + 3 * nh
    cdef double *noise = work + 4 * nh
    cdef double *swap
    cdef double log_w = 0, step, beta, q, x, jj
    frb_logistic_f64(noise, nh, frb_row_key(seed, counter, r))
    memset(f, 0, nh * sizeof(double))
    memset(lin_old, 0, nh * sizeof(double))
    for j in range(nh):  # uniform: u < 1/2
        h[j] = 1.0 if noise[j] < 0 else 0.0
        if h[j] != 0:
            _add_row(m, j, 1.0, f)
    for k in range(1, n_betas):
        beta = betas[k]
        _hidden_linear(m, beta, lin)
        # log p*_beta(h) - log p*_beta_old(h), h'Jh = f.h
        q = 0.5 * (beta * beta - betas[k - 1] * betas[k - 1])
        step = 0
        for j in range(nh):
            if h[j] != 0:
                step += (lin[j] - lin_old[j]) + q * f[j]
        log_w += step
        if k == n_betas - 1:
            break
        frb_logistic_f64(noise, nh, frb_row_key(seed, counter + k, r))
        q = beta * beta
        for j in range(nh):
            jj = m.J[j * nh + j]
            x = lin[j] + q * (f[j] - jj * h[j] + 0.5 * jj)
            if (x > noise[j]) != (h[j] != 0):
                _add_row(m, j, 1.0 - 2.0 * h[j], f)
                h[j] = 1.0 - h[j]
        swap = lin_old
        lin_old = lin
        lin = swap
    return log_w


def ais_hidden_log_weights(const floating[:, ::1] W, const floating[::1] b,
                           const floating[::1] c, const floating[::1] b_base,
                           const floating[::1] log_var, const double[::1] betas,
                           double[::1] log_w, uint64_t seed, uint64_t counter,
                           int n_threads=1):
    """Annealed importance sampling of a Gaussian-Bernoulli RBM on its hidden marginal.

    With s_i^2 = exp(``log_var_i``), the RBM E(v, h) = sum_i (v_i - b_i)^2 / (2 s_i^2) -
    c.h - (v / s^2).W^T h and the base E_0(v, h) = sum_i (v_i - b0_i)^2 / (2 s_i^2) (b0 =
    ``b_base``, the same variances, uniform hidden units), the intermediate models
    (1 - beta) E_0 + beta E have, for every beta, a Gaussian integral over v with mean
    mu = (1 - beta) b0 + beta (b + W^T h) and variances s^2, so their hidden marginals are
    known in closed form:

    log p*_beta(h) = beta c.h + sum_i (mu_i^2 - (1 - beta) b0_i^2 - beta b_i^2) / (2 s_i^2)
                     + sum_i log(sqrt(2 pi) s_i)
                   = lin_beta.h + beta^2 / 2 h'Jh - beta (1 - beta) |b - b0|^2_s / 2 + const,

    J = W diag(1 / s^2) W^T, lin_beta = beta c + beta (1 - beta) W (b0 / s^2) + beta^2 W
    (b / s^2). The h-free term is 0 at beta = 0 and 1, so over the whole schedule it adds
    nothing to a chain's weight, and is left out. AIS runs on h alone: one chain per entry
    of ``log_w``, starting at an exact sample of the uniform base; at each inverse
    temperature the weight gains log p*_beta(h) - log p*_beta_old(h) (in float64), then one
    systematic-scan Gibbs sweep over the hidden units leaves p_beta(h) invariant. Then
    ``log Z = n_hidden log 2 + sum_i log(sqrt(2 pi) s_i) + log mean exp(log_w)``.

    Why not Gibbs sweeps through v, as ``ais_log_weights``: given v ~ N(mu, s^2) drawn
    with h_j on, unit j sees its own weights once more, W_j.(v / s^2) gains |W_j|^2 / s^2
    against noise of standard deviation |W_j| / s. Trained on 784 standardised pixels
    |W_j|^2 / s^2 is about 40-300, so every hidden unit freezes early in the annealing;
    the exact conditional of h_j given the other units has only the half self-coupling
    J_jj / 2, without noise. On such models (12 hidden units, Fashion-MNIST) the variance
    of log w over chains fell from about 30 to 0.1.

    Everything runs in float64 whatever the dtype of the parameters; uniforms come from
    (seed, counter + k, chain, unit) for sweep k (the base sample at counter), chains are
    shared among ``n_threads`` threads, and a chain's arithmetic never depends on the
    split, so the weights are identical for any thread count. Returns the next counter
    (counter + len(betas) - 1).
    """
    cdef Py_ssize_t n = log_w.shape[0], nv = W.shape[1], nh = W.shape[0]
    cdef Py_ssize_t n_betas = betas.shape[0], i, j, r
    if b.shape[0] != nv or c.shape[0] != nh or b_base.shape[0] != nv:
        raise ValueError("shape mismatch")
    _check_log_var(log_var, nv)
    if n_betas < 2 or betas[0] != 0 or betas[n_betas - 1] != 1:
        raise ValueError("betas must run from 0 to 1 (at least two values)")
    if n_threads < 1:
        raise ValueError("n_threads must be positive")
    if n == 0:
        return counter
    log_w[:] = 0
    if nh == 0 or nv == 0:
        return counter + n_betas - 1
    cdef double[:, ::1] W64 = np.asarray(W, dtype=np.float64)
    cdef double[:, ::1] Ws = np.empty((nh, nv), np.float64)
    cdef double[:, ::1] J = np.empty((nh, nh), np.float64)
    cdef double[::1] c64 = np.asarray(c, dtype=np.float64)
    cdef double[::1] g_base = np.zeros(nh, np.float64)
    cdef double[::1] g_model = np.zeros(nh, np.float64)
    cdef double[::1] inv_var = np.exp(-np.asarray(log_var, dtype=np.float64))
    cdef double[:, ::1] work = np.empty((n, 5 * nh), np.float64)
    cdef double sym
    cdef HiddenMarginal m
    with nogil:
        for j in range(nh):
            for i in range(nv):
                Ws[j, i] = W64[j, i] * inv_var[i]
                g_base[j] += Ws[j, i] * b_base[i]
                g_model[j] += Ws[j, i] * b[i]
        _gemm(c'N', c'T', nh, nh, nv, 1.0, &Ws[0, 0], nv, &W64[0, 0], nv, 0.0, &J[0, 0], nh)
        for j in range(nh):  # symmetric to the last bit, as the energy it stands for
            for i in range(j):
                sym = 0.5 * (J[j, i] + J[i, j])
                J[j, i] = sym
                J[i, j] = sym
        m.J, m.c, m.g_base, m.g_model, m.nh = &J[0, 0], &c64[0], &g_base[0], &g_model[0], nh
        for r in prange(n, num_threads=n_threads, schedule="static",
                        use_threads_if=n_threads > 1):
            log_w[r] = _anneal_hidden_chain(&m, &betas[0], n_betas, seed, counter, r,
                                            &work[r, 0])
    return counter + n_betas - 1


# ---------------------------------------------------------------------------------------
# One epoch of contrastive divergence
# ---------------------------------------------------------------------------------------

cdef inline void _weight_gemm(bint transposed, Py_ssize_t i0, Py_ssize_t m, Py_ssize_t nv,
                              Py_ssize_t nh, Py_ssize_t n, floating alpha, const floating *H,
                              const floating *V, floating beta, floating *out) noexcept nogil:
    """The block of hidden units i0..i0+m-1 of out = alpha * H^T V + beta * out, H (n, nh)
    and V (n, nv): rows i0.. of an (nh, nv) ``out``, or with ``transposed`` columns i0.. of
    its (nv, nh) transpose (out^T = alpha * V^T H + beta * out^T)."""
    if transposed:
        _gemm(c'T', c'N', nv, m, n, alpha, V, nv, H + i0, nh, beta, out + i0, nh)
    else:
        _gemm(c'T', c'N', m, nv, n, alpha, H + i0, nh, V, nv, beta, out + i0 * nv, nv)


cdef inline void _momentum_step(floating *W, floating *W_vel, const floating *G,
                                Py_ssize_t e, floating lr, floating mom, floating wd,
                                floating push) noexcept nogil:
    """Weight e: W_vel = mom * W_vel + lr * (G - wd * W + push), then W += W_vel."""
    W_vel[e] = mom * W_vel[e] + lr * (G[e] - wd * W[e] + push)
    W[e] = W[e] + W_vel[e]


cdef struct Centring:
    # The offsets of a centred RBM (Melchior, Fischer & Wiskott 2016) and the batch's
    # unscaled bias gradients (column sums, see _bias_gradient), for the update tasks; the
    # pointers are to the engine's floating type (a struct cannot be fused).
    const void *mu_
    const void *lam_
    const void *gb_
    const void *gc_


cdef struct Fast:
    # Fast weights (Tieleman & Hinton 2009), pointers to the engine's floating type: the
    # fast parameters (W_f in the working layout of W), the negative chains' parameters
    # W + W_f, b + b_f, c + c_f, and the fast update W_f <- keep W_f + lr * gradient.
    void *Wf_
    void *bf_
    void *cf_
    void *Wn_
    void *bn_
    void *cn_
    double keep, lr


cdef inline void _centre_gradient(const Centring *centring, Py_ssize_t i0, Py_ssize_t i1,
                                  Py_ssize_t nv, Py_ssize_t nh, bint transposed, floating *G,
                                  floating scale) noexcept nogil:
    """G -> the centred weight gradient <(v - mu)(h - lambda)>_data - <...>_model for the
    hidden units i0..i1-1, from the uncentred one: G - gc mu^T - lambda gb^T, with gb, gc
    the bias gradients (unscaled sums times ``scale`` = 1 / n)."""
    cdef const floating *mu = <const floating *> centring.mu_
    cdef const floating *lam = <const floating *> centring.lam_
    cdef const floating *gb = <const floating *> centring.gb_
    cdef const floating *gc = <const floating *> centring.gc_
    cdef Py_ssize_t i, j
    if transposed:
        for j in range(nv):
            for i in range(i0, i1):
                G[j * nh + i] = G[j * nh + i] - scale * (gc[i] * mu[j] + lam[i] * gb[j])
    else:
        for i in range(i0, i1):
            for j in range(nv):
                G[i * nv + j] = G[i * nv + j] - scale * (gc[i] * mu[j] + lam[i] * gb[j])


cdef void _fast_hidden_block(const Fast *fast, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t nv,
                             Py_ssize_t nh, bint transposed, const floating *W,
                             const floating *c, const floating *G, const floating *gc,
                             floating scale, const Centring *centring) noexcept nogil:
    """The fast step of hidden units i0..i1-1 (Tieleman & Hinton 2009): W_f <- keep W_f +
    lr G, c_f <- keep c_f + lr g_c (g_c an unscaled sum, times ``scale``), less lr G mu
    when centred (as c, see _update_hidden_block); then the negative chains' W + W_f and
    c + c_f. W, G and W_f share the working layout."""
    cdef floating *Wf = <floating *> fast.Wf_
    cdef floating *cf = <floating *> fast.cf_
    cdef floating *Wn = <floating *> fast.Wn_
    cdef floating *cn = <floating *> fast.cn_
    cdef floating keep = fast.keep, lr = fast.lr
    cdef const floating *mu
    cdef Py_ssize_t i, j, e
    for i in range(i0, i1):
        cf[i] = keep * cf[i] + lr * scale * gc[i]
    if transposed:
        for j in range(nv):
            for i in range(i0, i1):
                e = j * nh + i
                Wf[e] = keep * Wf[e] + lr * G[e]
                Wn[e] = W[e] + Wf[e]
    else:
        for i in range(i0, i1):
            for j in range(nv):
                e = i * nv + j
                Wf[e] = keep * Wf[e] + lr * G[e]
                Wn[e] = W[e] + Wf[e]
    if centring != NULL:
        mu = <const floating *> centring.mu_
        if transposed:
            for j in range(nv):
                for i in range(i0, i1):
                    cf[i] = cf[i] - lr * G[j * nh + i] * mu[j]
        else:
            for i in range(i0, i1):
                for j in range(nv):
                    cf[i] = cf[i] - lr * G[i * nv + j] * mu[j]
    for i in range(i0, i1):
        cn[i] = c[i] + cf[i]


cdef void _fast_visible_bias(const Fast *fast, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t nv,
                             Py_ssize_t nh, bint transposed, const floating *b,
                             const floating *G, const floating *gb, floating scale,
                             const Centring *centring, floating *acc) noexcept nogil:
    """The fast step of the visible biases j0..j1-1 (after b's own): b_f <- keep b_f +
    lr g_b (an unscaled sum, times ``scale``), less lr G^T lambda when centred (every
    hidden block done); then the negative chains' b + b_f."""
    cdef floating *bf = <floating *> fast.bf_
    cdef floating *bn = <floating *> fast.bn_
    cdef floating keep = fast.keep, lr = fast.lr
    cdef Py_ssize_t j
    for j in range(j0, j1):
        bf[j] = keep * bf[j] + lr * scale * gb[j]
    if centring != NULL:
        _centre_visible_bias(j0, j1, nv, nh, transposed, bf, G,
                             <const floating *> centring.lam_, acc, lr)
    for j in range(j0, j1):
        bn[j] = b[j] + bf[j]


cdef void _update_hidden_block(
        Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t nv, Py_ssize_t nh, bint transposed,
        floating *W, floating *c, floating *W_vel, floating *c_vel, floating *G,
        floating *gc, floating *q_hidden, const floating *vmean,
        const floating *V0, const floating *Hpos, Py_ssize_t n,
        const floating *Vneg, const floating *Hneg, Py_ssize_t n_neg,
        bint plain, floating lr, floating mom, floating wd, floating sp_target,
        floating sp_cost, floating decay, floating *wg=NULL,
        const Centring *centring=NULL, const Fast *fast=NULL) noexcept nogil:
    """Update the weights W[i0:i1] and biases c[i0:i1] of hidden units i0..i1-1.

    W, W_vel and G are (nh, nv), or with ``transposed`` all three (nv, nh) (the block is
    then columns i0..i1-1). With ``wg`` not NULL (learned Gaussian variances), first write
    wg[j] = sum over these hidden units i of W[i, j] G[i, j], from the weights before the
    update: the block's share of the interaction term of the log-variance gradient (see
    cd_epoch). With ``centring`` (never with ``plain``), the gradient is the centred one
    and c moves by its centred step less dW mu (see _centre_gradient); the visible biases'
    share -dW^T lambda comes after every block (_centre_visible_bias). With ``fast`` (never
    with ``plain``), the fast weights and hidden biases of the block then take their step
    from the same gradient, and the negative chains' parameters are set to their sums."""
    cdef floating alpha_pos = 1.0 / n, alpha_neg = -1.0 / n_neg
    cdef Py_ssize_t i, j, m = i1 - i0
    cdef floating step = lr * alpha_pos
    cdef const floating *mu
    if plain:  # accumulate lr * gradient straight into W
        _weight_gemm(transposed, i0, m, nv, nh, n, step, Hpos, V0, 1, W)
        _weight_gemm(transposed, i0, m, nv, nh, n_neg, lr * alpha_neg, Hneg, Vneg, 1, W)
        _bias_gradient(Hpos + i0, n, Hneg + i0, n_neg, nh, m, gc + i0)
        for i in range(i0, i1):
            c[i] = c[i] + step * gc[i]
        return
    _weight_gemm(transposed, i0, m, nv, nh, n, alpha_pos, Hpos, V0, 0, G)
    _weight_gemm(transposed, i0, m, nv, nh, n_neg, alpha_neg, Hneg, Vneg, 1, G)
    if wg != NULL:  # each wg[j] sums over i in increasing order, in either layout
        memset(wg, 0, nv * sizeof(floating))
        if transposed:
            for j in range(nv):
                for i in range(i0, i1):
                    wg[j] += W[j * nh + i] * G[j * nh + i]
        else:
            for i in range(i0, i1):
                for j in range(nv):
                    wg[j] += W[i * nv + j] * G[i * nv + j]
    if centring != NULL:
        _centre_gradient(centring, i0, i1, nv, nh, transposed, G, alpha_pos)
    # Sparsity (Hinton 2010, sec. 11): push the running mean activation q of each hidden
    # unit toward the target through its bias and its incoming weights.
    for i in range(i0, i1):
        q_hidden[i] = decay * q_hidden[i]
    _add_colsum(Hpos + i0, n, nh, m, (1 - decay) * alpha_pos, q_hidden + i0)
    if transposed:  # loops along the contiguous direction of either layout
        for j in range(nv):
            for i in range(i0, i1):
                _momentum_step(W, W_vel, G, j * nh + i, lr, mom, wd,
                               sp_cost * (sp_target - q_hidden[i]) * vmean[j])
    else:
        for i in range(i0, i1):
            for j in range(nv):
                _momentum_step(W, W_vel, G, i * nv + j, lr, mom, wd,
                               sp_cost * (sp_target - q_hidden[i]) * vmean[j])
    # Hidden biases: the same gradient without the weights' terms (gc is scratch).
    _bias_gradient(Hpos + i0, n, Hneg + i0, n_neg, nh, m, gc + i0)
    for i in range(i0, i1):
        c_vel[i] = mom * c_vel[i] + (step * gc[i] + lr * sp_cost * (sp_target - q_hidden[i]))
        c[i] = c[i] + c_vel[i]
    if centring != NULL:  # c = c' - W mu: c moves by dc' - dW mu (dW = W_vel)
        mu = <const floating *> centring.mu_
        if transposed:
            for j in range(nv):
                for i in range(i0, i1):
                    c[i] = c[i] - W_vel[j * nh + i] * mu[j]
        else:
            for i in range(i0, i1):
                for j in range(nv):
                    c[i] = c[i] - W_vel[i * nv + j] * mu[j]
    if fast != NULL:
        _fast_hidden_block(fast, i0, i1, nv, nh, transposed, W, c, G, gc, alpha_pos, centring)


cdef void _update_visible_bias(
        Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t nv, floating *b, floating *b_vel,
        floating *gb, const floating *V0, Py_ssize_t n, const floating *Vneg,
        Py_ssize_t n_neg, bint plain, floating lr, floating mom) noexcept nogil:
    """Update the visible biases b[j0:j1] (gb is scratch of the same length as b)."""
    cdef Py_ssize_t j
    cdef floating step = lr * <floating> (1.0 / n)
    _bias_gradient(V0 + j0, n, Vneg + j0, n_neg, nv, j1 - j0, gb + j0)
    for j in range(j0, j1):
        if plain:
            b[j] += step * gb[j]
        else:
            b_vel[j] = mom * b_vel[j] + step * gb[j]
            b[j] += b_vel[j]


cdef void _centre_visible_bias(Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t nv, Py_ssize_t nh,
                               bint transposed, floating *b, const floating *W_vel,
                               const floating *lam, floating *acc,
                               floating scale=1) noexcept nogil:
    """b[j0:j1] -= scale * (dW^T lambda)[j0:j1], dW = W_vel (all hidden blocks updated):
    the centred visible biases b' = b + W^T lambda moved by their own step only. Each sum
    runs over i in increasing order in either layout; ``acc`` is scratch (length nv)."""
    cdef Py_ssize_t i, j
    for j in range(j0, j1):
        acc[j] = 0
    if transposed:
        for j in range(j0, j1):
            for i in range(nh):
                acc[j] = acc[j] + W_vel[j * nh + i] * lam[i]
    else:
        for i in range(nh):
            for j in range(j0, j1):
                acc[j] = acc[j] + W_vel[i * nv + j] * lam[i]
    for j in range(j0, j1):
        b[j] = b[j] - scale * acc[j]


cdef void _log_var_data_term(
        Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t nv, const floating *b,
        const floating *inv_var, const floating *V0, Py_ssize_t n, const floating *Vneg,
        Py_ssize_t n_neg, floating *out) noexcept nogil:
    """out[j] = inv_var[j] / 2 * (mean_data (v_j - b_j)^2 - mean_model (v_j - b_j)^2) for j
    in [j0, j1): the quadratic term of the log-variance gradient (see cd_epoch)."""
    cdef Py_ssize_t r, j
    cdef floating d, pos, neg
    for j in range(j0, j1):
        pos = 0
        neg = 0
        for r in range(n):
            d = V0[r * nv + j] - b[j]
            pos = pos + d * d
        for r in range(n_neg):
            d = Vneg[r * nv + j] - b[j]
            neg = neg + d * d
        out[j] = <floating> 0.5 * inv_var[j] * (pos / n - neg / n_neg)


cdef struct Tempering:
    # Parallel tempering (see GibbsEngine.epoch): M temperatures of nc chains each, stacked
    # in arrays of M * nc rows, temperature m at rows m nc .. (m + 1) nc - 1.
    const double *betas
    int M
    Py_ssize_t nc


cdef void _tempered_gemm(bint up, const floating *In, Py_ssize_t N, Py_ssize_t nin,
                         const floating *W, bint transposed, Py_ssize_t nout, floating *Out,
                         int n_blocks, int n_threads) noexcept nogil:
    """Out = In @ W^T (``up``: the hidden layer's input) or In @ W (the visible layer's),
    for all N rows at once, in column blocks shared among the threads; no activation."""
    cdef Py_ssize_t size = _block_size(nout, n_blocks), count = (nout + size - 1) // size, blk
    for blk in prange(count, num_threads=n_threads, schedule="static",
                      use_threads_if=n_threads > 1):
        if up:
            _hidden_gemm(transposed, In, N, nin, W, nout, blk * size,
                         min(nout, (blk + 1) * size), Out)
        else:
            _visible_gemm(transposed, In, N, nin, W, nout, blk * size,
                          min(nout, (blk + 1) * size), Out)


cdef void _tempered_activate(const Tempering *t, floating *P, floating *S, Py_ssize_t cols,
                             const floating *scaled_bias, uint64_t seed, uint64_t counter,
                             int n_blocks, int n_threads) noexcept nogil:
    """P <- sigmoid(beta_m (P + bias)) and S ~ P for the rows of each temperature m
    (``scaled_bias`` row m holds beta_m * bias); draws at (seed, counter, row, column)."""
    cdef Py_ssize_t size = _block_size(cols, n_blocks), count = (cols + size - 1) // size
    cdef Py_ssize_t blk, j0, off
    cdef int m
    for blk in prange(count, num_threads=n_threads, schedule="static",
                      use_threads_if=n_threads > 1):
        j0 = blk * size
        for m in range(t.M):
            off = m * t.nc * cols + j0
            _activate(P + off, cols, <floating> t.betas[m], scaled_bias + m * cols + j0,
                      S + off, t.nc, min(cols, j0 + size) - j0, j0, seed, counter, m * t.nc)


cdef inline double _tempered_log_p(const floating *a, const floating *h, const floating *c,
                                   double beta, const floating *sb, Py_ssize_t nv,
                                   Py_ssize_t nh) noexcept nogil:
    """log p*_beta(h) = beta c.h + sum_j softplus(beta (h W + b)_j), the hidden marginal
    of a Bernoulli RBM at inverse temperature beta (a = h W, sb = beta b)."""
    if floating is float:
        return beta * frb_dot_f32(c, h, nh) + frb_softplus_sum_f32(a, <float> beta, sb, nv)
    else:
        return beta * frb_dot_f64(c, h, nh) + frb_softplus_sum_f64(a, beta, sb, nv)


cdef void _tempered_swaps(const Tempering *t, floating *H, floating *A, Py_ssize_t nh,
                          Py_ssize_t nv, const floating *c, const floating *sb,
                          uint64_t seed, uint64_t counter, double *flags,
                          int n_threads) noexcept nogil:
    """One round of swap proposals: for each chain r and each neighbouring pair (m, m + 1)
    in turn from the coldest, exchange the states (rows of H and of A = H W) of chain r at
    beta_m and beta_m+1 with the Metropolis probability min(1, p_m(h') p_m+1(h) / (p_m(h)
    p_m+1(h'))), from the uniform at (seed, counter, r, m). flags[r * M + m] receives 1
    for an accepted swap, else 0."""
    cdef Py_ssize_t r, i, j, x
    cdef int m, M = t.M
    cdef double bi, bj, log_ratio
    cdef floating tmp
    for r in prange(t.nc, num_threads=n_threads, schedule="static",
                    use_threads_if=n_threads > 1):
        frb_uniform_f64(flags + r * M, M - 1, frb_row_key(seed, counter, r))
        for m in range(M - 1):
            i = m * t.nc + r
            j = i + t.nc
            bi, bj = t.betas[m], t.betas[m + 1]
            log_ratio = (_tempered_log_p(A + j * nv, H + j * nh, c, bi, sb + m * nv, nv, nh)
                         + _tempered_log_p(A + i * nv, H + i * nh, c, bj, sb + (m + 1) * nv,
                                           nv, nh)
                         - _tempered_log_p(A + i * nv, H + i * nh, c, bi, sb + m * nv, nv, nh)
                         - _tempered_log_p(A + j * nv, H + j * nh, c, bj, sb + (m + 1) * nv,
                                           nv, nh))
            if log_ratio >= 0 or flags[r * M + m] < exp(log_ratio):
                flags[r * M + m] = 1
                for x in range(nh):
                    tmp = H[i * nh + x]
                    H[i * nh + x] = H[j * nh + x]
                    H[j * nh + x] = tmp
                for x in range(nv):
                    tmp = A[i * nv + x]
                    A[i * nv + x] = A[j * nv + x]
                    A[j * nv + x] = tmp
            else:
                flags[r * M + m] = 0


cdef struct EpochSettings:
    # The hyperparameters of an epoch, set by name through GibbsEngine.configure.
    double learning_rate, momentum, weight_decay, sparsity_target, sparsity_cost
    double log_var_min, log_var_max, offset_rate, fast_learning_rate, fast_weight_decay
    Py_ssize_t batch_size
    int k, n_blocks, n_threads, hidden, swap_every
    bint persistent, learn_log_var, centered


# The engine's state, in a fixed order: (name, shape in terms of the layer sizes). Rows of
# ``chains`` are free (their number is the caller's); Gaussian models add the last two.
# The offsets mu (visible) and lambda (hidden) of centring are 0 in an uncentred model; the
# fast weights and biases of fast-weights PCD have the shapes of W, b, c when used (else no
# rows, so that models without them store nothing); ``tempered_chains`` holds the
# hidden states of the chains at the inverse temperatures below 1 (no rows without
# tempering).
STATE_SHAPES = (
    ("W", ("n_hidden", "n_visible")),
    ("b", ("n_visible",)),
    ("c", ("n_hidden",)),
    ("chains", (None, "n_hidden")),
    ("W_vel", ("n_hidden", "n_visible")),
    ("b_vel", ("n_visible",)),
    ("c_vel", ("n_hidden",)),
    ("q_hidden", ("n_hidden",)),
    ("visible_offset", ("n_visible",)),
    ("hidden_offset", ("n_hidden",)),
    ("W_fast", (None, "n_visible")),
    ("b_fast", (None,)),
    ("c_fast", (None,)),
    ("tempered_chains", (None, "n_hidden")),
    ("log_var", ("n_visible",)),
    ("log_var_vel", ("n_visible",)),
)


cdef class GibbsEngine:
    """The training state of one RBM and the compiled CD-k / PCD-k epochs that update it.

    The engine holds (without copying) the arrays it is built from and updates them in
    place: the weights ``W`` (n_hidden, n_visible), visible and hidden biases ``b`` and
    ``c``, the persistent chains' hidden states ``chains`` (n_chains, n_hidden), the
    momentum velocities ``W_vel``, ``b_vel``, ``c_vel``, the running mean of the hidden
    activations ``q_hidden`` (for the sparsity penalty), and for Gaussian visible units
    the log-variances ``log_var`` (z = log sigma^2) and their velocity ``log_var_vel``;
    plus the random stream (``seed``, ``counter``). Shapes, dtypes (all float32 or all
    float64) and layout (C-contiguous) are checked here, once; training also needs them
    writeable.

    The work buffers of an epoch are allocated at the first epoch and reused while the
    batch size and the number of chains stay; :meth:`snapshot` / :meth:`restore` copy
    the state into and back from buffers also allocated once.

    Parameters
    ----------
    W, b, c, chains : ndarray
        Weights, visible biases, hidden biases, persistent chains (see above).
    W_vel, b_vel, c_vel, q_hidden, log_var, log_var_vel : ndarray or None, keyword-only
        Optimizer state and Gaussian visible units' parameters; None allocates zeros
        (``log_var`` None: Bernoulli visible units).
    seed, counter : int, keyword-only
        The random stream: every layer sampled draws at (seed, counter, row, column) and
        advances ``counter`` by one.
    names : dict or None, keyword-only
        Names to use for the arrays in error messages (by default the keywords above).

    Notes
    -----
    Hyperparameters are set by name with :meth:`configure` before :meth:`epoch`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrbm._kernels._sampling import GibbsEngine
    >>> X = (np.random.default_rng(0).random((100, 6)) < 0.5).astype(np.float64)
    >>> W = np.random.default_rng(1).normal(0, 0.01, (4, 6))
    >>> engine = GibbsEngine(W, np.zeros(6), np.zeros(4), np.zeros((10, 4)), seed=7)
    >>> engine.configure(learning_rate=0.1, batch_size=10, persistent=True).epoch(X)
    20
    >>> engine.W is W  # updated in place
    True
    """
    cdef readonly object W, b, c, chains, W_vel, b_vel, c_vel, q_hidden, log_var, log_var_vel
    cdef readonly object visible_offset, hidden_offset, W_fast, b_fast, c_fast
    cdef readonly object tempered_chains, betas, swap_accepted, swap_proposed
    cdef public uint64_t tempering_step
    cdef uint64_t backup_tempering_step
    cdef readonly object dtype
    cdef readonly str visible
    cdef public uint64_t seed, counter
    cdef EpochSettings settings
    cdef bint configured
    cdef tuple work
    cdef tuple work_key
    cdef dict backup
    cdef uint64_t backup_counter

    def __init__(self, W, b, c, chains, *, W_vel=None, b_vel=None, c_vel=None,
                 q_hidden=None, visible_offset=None, hidden_offset=None, W_fast=None,
                 b_fast=None, c_fast=None, tempered_chains=None, log_var=None,
                 log_var_vel=None, uint64_t seed=0, uint64_t counter=0,
                 uint64_t tempering_step=0, names=None):
        names = names or {}
        dtype = getattr(W, "dtype", None)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"{names.get('W', 'W')} must be float32 or float64, got {dtype}")
        if getattr(W, "ndim", 0) != 2:
            raise ValueError(f"{names.get('W', 'W')} must be 2-dimensional")
        nh, nv = W.shape
        sizes = {"n_hidden": nh, "n_visible": nv}
        gaussian = log_var is not None
        given = dict(W=W, b=b, c=c, chains=chains, W_vel=W_vel, b_vel=b_vel, c_vel=c_vel,
                     q_hidden=q_hidden, visible_offset=visible_offset,
                     hidden_offset=hidden_offset, W_fast=W_fast, b_fast=b_fast, c_fast=c_fast,
                     tempered_chains=tempered_chains, log_var=log_var, log_var_vel=log_var_vel)
        for name, shape in STATE_SHAPES:
            if name.startswith("log_var") and not gaussian:
                continue
            array = given[name]
            if array is None:
                array = given[name] = np.zeros([sizes.get(s, 0) for s in shape], dtype)
            want = tuple(sizes.get(s, "n") if s else "n" for s in shape)
            ok = (isinstance(array, np.ndarray) and array.dtype == dtype
                  and array.ndim == len(shape)
                  and all(s is None or array.shape[i] == sizes[s]
                          for i, s in enumerate(shape)))
            if not ok:
                raise ValueError(
                    f"{names.get(name, name)} has shape {getattr(array, 'shape', None)} and "
                    f"dtype {getattr(array, 'dtype', None)}, expected "
                    f"({', '.join(map(str, want))}{',' if len(want) == 1 else ''}) and {dtype}")
            if not array.flags.c_contiguous:
                raise ValueError(f"{names.get(name, name)} must be C-contiguous")
        self.W, self.b, self.c, self.chains = W, b, c, chains
        self.W_vel, self.b_vel, self.c_vel = given["W_vel"], given["b_vel"], given["c_vel"]
        self.q_hidden = given["q_hidden"]
        self.visible_offset, self.hidden_offset = given["visible_offset"], given["hidden_offset"]
        self.W_fast, self.b_fast, self.c_fast = given["W_fast"], given["b_fast"], given["c_fast"]
        self.tempered_chains = given["tempered_chains"]
        self.tempering_step = tempering_step
        self.betas = np.ones(1)
        self.swap_accepted = self.swap_proposed = np.zeros(0)
        self.log_var, self.log_var_vel = log_var, given["log_var_vel"]
        self.visible = "gaussian" if gaussian else "bernoulli"
        self.dtype = np.dtype(dtype)
        self.seed, self.counter = seed, counter
        self.configured = False
        self.work_key = None
        self.backup = None

    def __reduce__(self):
        # Pickled as its state (the arrays themselves, so that holders of the same arrays
        # keep sharing them); settings and work buffers are set up again when used.
        return (_engine_from_state, (self.state(), self.seed, self.counter,
                                     self.tempering_step))

    def __eq__(self, other):
        # Equal states (arrays, dtypes, stream position): what makes two engines train alike.
        if not isinstance(other, GibbsEngine):
            return NotImplemented
        mine, theirs = self.state(), other.state()
        return (self.seed == other.seed and self.counter == other.counter
                and self.tempering_step == other.tempering_step
                and mine.keys() == theirs.keys()
                and all(a.dtype == theirs[k].dtype and a.shape == theirs[k].shape
                        and np.array_equal(a, theirs[k], equal_nan=True)
                        for k, a in mine.items()))

    __hash__ = None

    def state(self):
        """The state arrays by name (the engine's own arrays, not copies).

        Returns
        -------
        state : dict
            Name -> ndarray, in the order of ``STATE_SHAPES``; ``log_var`` and
            ``log_var_vel`` only for Gaussian visible units.
        """
        arrays = dict(W=self.W, b=self.b, c=self.c, chains=self.chains, W_vel=self.W_vel,
                      b_vel=self.b_vel, c_vel=self.c_vel, q_hidden=self.q_hidden,
                      visible_offset=self.visible_offset, hidden_offset=self.hidden_offset,
                      W_fast=self.W_fast, b_fast=self.b_fast, c_fast=self.c_fast,
                      tempered_chains=self.tempered_chains,
                      log_var=self.log_var, log_var_vel=self.log_var_vel)
        return {name: arrays[name] for name, _ in STATE_SHAPES if arrays[name] is not None}

    def configure(self, *, double learning_rate, double momentum=0, double weight_decay=0,
                  double sparsity_target=0.1, double sparsity_cost=0, int k=1,
                  bint persistent=False, Py_ssize_t batch_size, str hidden="bernoulli",
                  bint learn_log_var=False, double log_var_min=-10, double log_var_max=10,
                  bint centered=False, double offset_rate=0.01,
                  double fast_learning_rate=0, double fast_weight_decay=0.05,
                  betas=None, int swap_every=1, int n_blocks=1, int n_threads=1):
        """Set the hyperparameters of the following epochs (all by name).

        Parameters
        ----------
        learning_rate, momentum, weight_decay : float
            The update ``W_vel = momentum * W_vel + learning_rate * (gradient -
            weight_decay * W + sparsity term)``, then ``W += W_vel`` (biases alike, without
            weight decay).
        sparsity_target, sparsity_cost : float
            The sparsity penalty (Hinton 2010, section 11).
        k : int
            Gibbs steps per update.
        persistent : bool
            PCD (the chains in ``chains`` carry over) or CD (chains start at the data).
        batch_size : int
            Rows per mini-batch.
        hidden : {"bernoulli", "nrelu", "gaussian"}
            Hidden unit type ("gaussian": linear with unit-variance noise, h ~ N(c + W v,
            1), Hinton & Salakhutdinov 2006).
        learn_log_var : bool
            Learn the Gaussian visible units' log-variances, clipped to
            [``log_var_min``, ``log_var_max``].
        centered : bool
            Take the gradient in the centred parameterisation (Melchior, Fischer &
            Wiskott 2016) with the offsets ``visible_offset`` (mu) and ``hidden_offset``
            (lambda), which slide toward each batch's data mean and data-driven hidden
            mean by ``offset_rate`` (see :meth:`epoch`).
        fast_learning_rate, fast_weight_decay : float
            Fast-weights PCD (Tieleman & Hinton 2009) when ``fast_learning_rate`` > 0
            (needs ``persistent``): the fast parameters ``W_fast``, ``b_fast``,
            ``c_fast`` learn from the same gradient at this rate and shrink by the factor
            1 - ``fast_weight_decay`` at every update; the persistent chains sample from
            the sum of the regular and fast parameters.
        betas : sequence of float or None
            Parallel tempering (Desjardins et al. 2010; needs ``persistent``, Bernoulli
            visible and hidden units): the inverse temperatures, 1 first, strictly
            decreasing, non-negative. ``tempered_chains`` holds ``(len(betas) - 1) *
            n_chains`` rows, the chains at betas[1:] in order. None or ``[1]``: off.
        swap_every : int
            Propose swaps between neighbouring temperatures every ``swap_every`` Gibbs
            steps (counted over the engine's life, ``tempering_step``).
        n_blocks, n_threads : int
            Blocks of units per layer (results depend on it) and OpenMP threads (results
            do not).
        """
        if batch_size <= 0 or k <= 0 or n_blocks <= 0 or n_threads <= 0:
            raise ValueError("batch_size, k, n_blocks and n_threads must be positive")
        if persistent and self.chains.shape[0] == 0:
            raise ValueError("persistent CD needs chains of shape (n_chains, n_hidden)")
        if learn_log_var and self.log_var is None:
            raise ValueError("learn_log_var needs Gaussian visible units (log_var)")
        if not log_var_min <= log_var_max:
            raise ValueError("log_var_min must not exceed log_var_max")
        if not 0 <= offset_rate <= 1:
            raise ValueError(f"offset_rate must lie in [0, 1], got {offset_rate}")
        if fast_learning_rate < 0 or not 0 <= fast_weight_decay <= 1:
            raise ValueError("fast_learning_rate must be >= 0 and fast_weight_decay in "
                             f"[0, 1], got {fast_learning_rate} and {fast_weight_decay}")
        betas = np.ones(1) if betas is None else np.array(betas, dtype=np.float64).ravel()
        if (betas.size < 1 or betas[0] != 1 or np.any(np.diff(betas) >= 0)
                or np.any(betas < 0) or not np.isfinite(betas).all()):
            raise ValueError("betas must start at 1 and decrease strictly to a value >= 0, "
                             f"got {betas.tolist()}")
        if swap_every < 1:
            raise ValueError(f"swap_every must be positive, got {swap_every}")
        if betas.size > 1:
            if not persistent:
                raise ValueError("parallel tempering (more than one inverse temperature) "
                                 "needs persistent chains (persistent=True)")
            if self.log_var is not None or hidden != "bernoulli":
                raise ValueError("parallel tempering is implemented for Bernoulli visible "
                                 "and hidden units only")
            want = (betas.size - 1) * self.chains.shape[0]
            if self.tempered_chains.shape[0] != want:
                raise ValueError(
                    f"tempered_chains has {self.tempered_chains.shape[0]} rows; "
                    f"{betas.size} inverse temperatures of {self.chains.shape[0]} chains "
                    f"need {want}")
        if fast_learning_rate > 0 and not persistent:
            raise ValueError("fast weights (fast_learning_rate > 0) need persistent chains "
                             "(persistent=True): they act on the negative chains only")
        nh, nv = self.W.shape
        if fast_learning_rate > 0 and (self.W_fast.shape[0] != nh or self.b_fast.shape[0] != nv
                                       or self.c_fast.shape[0] != nh):
            raise ValueError("fast weights need W_fast, b_fast, c_fast of the shapes of W, b "
                             f"and c, got {self.W_fast.shape}, {self.b_fast.shape}, "
                             f"{self.c_fast.shape}")
        cdef EpochSettings s
        s.learning_rate, s.momentum, s.weight_decay = learning_rate, momentum, weight_decay
        s.sparsity_target, s.sparsity_cost = sparsity_target, sparsity_cost
        s.log_var_min, s.log_var_max = log_var_min, log_var_max
        s.batch_size, s.k, s.n_blocks, s.n_threads = batch_size, k, n_blocks, n_threads
        s.hidden = _unit_code(hidden, "hidden")
        s.persistent, s.learn_log_var = persistent, learn_log_var
        s.centered, s.offset_rate = centered, offset_rate
        s.fast_learning_rate, s.fast_weight_decay = fast_learning_rate, fast_weight_decay
        s.swap_every = swap_every
        self.betas = betas
        self.settings = s
        self.configured = True
        return self

    cdef _ensure_work(self):
        """Allocate the epoch's work buffers unless those of the last epoch still fit."""
        cdef EpochSettings s = self.settings
        cdef Py_ssize_t nh = self.W.shape[0], nv = self.W.shape[1], bs = s.batch_size
        cdef Py_ssize_t neg = self.chains.shape[0] if s.persistent else bs
        cdef Py_ssize_t n_hblocks = (nh + _block_size(nh, s.n_blocks) - 1) // _block_size(nh, s.n_blocks)
        fast = s.fast_learning_rate > 0
        M = self.betas.size
        key = (bs, neg, n_hblocks, fast, M)
        N = M * neg if M > 1 else 0  # tempering: all temperatures' chains
        if key == self.work_key:
            return
        dtype = self.dtype
        t = _works_transposed(bs)
        small = (<Py_ssize_t> 1, <Py_ssize_t> 1)
        WT_shape = (nv, nh) if t else small
        W_shape = (nv, nh) if t else (nh, nv)  # W in the working layout
        self.work = (
            np.empty((bs, nv), dtype),                    # 0 Vbuf: a sparse batch, densified
            np.empty((bs, nh), dtype),                    # 1 Hpos
            np.empty((bs, nh), dtype),                    # 2 Hs: CD's chains
            np.empty((neg, nh), dtype),                   # 3 Hneg
            np.empty((neg, nv), dtype),                   # 4 Vneg
            np.empty((neg, nv), dtype),                   # 5 Vprob
            np.empty((nv, nh) if t else (nh, nv), dtype),  # 6 G: the W gradient
            np.empty(nv, dtype),                          # 7 gb
            np.empty(nh, dtype),                          # 8 gc
            np.zeros(nv, dtype),                          # 9 vmean
            np.ones(nv, dtype),                           # 10 sigma
            np.ones(nv, dtype),                           # 11 inv_var
            np.empty((bs, nv), dtype),                    # 12 Vs0: data / sigma^2
            np.empty((neg, nv), dtype),                   # 13 Vsneg: chains / sigma^2
            np.empty(WT_shape, dtype),                    # 14 WT
            np.empty(WT_shape, dtype),                    # 15 WvT
            np.zeros((n_hblocks, nv), dtype),             # 16 wg
            np.zeros(nv, dtype),                          # 17 gz
            np.zeros(nv, dtype),                          # 18 cgb: centring's gb
            np.zeros(nh, dtype),                          # 19 cgc: centring's gc
            # fast weights: W_f in the working layout, the chains' W + W_f, b + b_f, c + c_f
            np.empty(WT_shape if fast else small, dtype),  # 20 WfT
            np.empty(W_shape if fast else small, dtype),   # 21 Wn
            np.empty(nv, dtype),                          # 22 bn
            np.empty(nh, dtype),                          # 23 cn
            # tempering: all chains' hidden states, hidden probabilities, visible samples,
            # visible probabilities (first the GEMM's h W), beta b, beta c, swap flags
            np.empty((N, nh), dtype),                     # 24 Hall
            np.empty((N, nh), dtype),                     # 25 Hpall
            np.empty((N, nv), dtype),                     # 26 Vall
            np.empty((N, nv), dtype),                     # 27 Vpall
            np.empty((M, nv), dtype),                     # 28 sb
            np.empty((M, nh), dtype),                     # 29 sc
            np.empty((neg, M), np.float64),               # 30 flags
        )
        self.work_key = key

    def epoch(self, X):
        """One pass of CD-k (``persistent=False``) or PCD-k over the rows of X.

        Mini-batches are consecutive rows (as scikit-learn's BernoulliRBM): ``batch_size``
        rows each, the last one shorter.

        The update follows Hinton's practical guide (2010): positive statistics from the
        hidden probabilities given the data, negative statistics from the sampled visible
        units and hidden probabilities at the end of the chain, each averaged over its own
        rows; ``W_vel = momentum * W_vel + lr * (grad - weight_decay * W + sparsity
        term)``, then ``W += W_vel`` (the same for the biases, without weight decay). With
        no momentum, weight decay or sparsity the gradient GEMMs accumulate straight into
        W and the velocities and ``q_hidden`` stay as they are.

        Negative chain: with ``persistent`` the hidden states in ``chains`` are advanced k
        steps and kept (Tieleman 2008); otherwise each batch starts a fresh chain at the
        hidden sample of its data. The sparsity term uses ``q_hidden``, a running mean
        (decay 0.9) of the hidden probabilities.

        Each layer (and the weight update) is computed in ``n_blocks`` blocks of units
        shared among ``n_threads`` OpenMP threads; the result depends on ``n_blocks``
        (through BLAS rounding) but never on ``n_threads``.

        Unit types. Noisy rectified linear hidden units (Nair & Hinton 2010): their
        mean-field value max(0, x) stands in for the probabilities in the statistics, and
        the chains carry their samples. Gaussian (linear) hidden units alike: the mean
        c + W v in the statistics, the samples c + W v + N(0, 1) in the chains. Gaussian visible units follow Cho, Raiko & Ilin
        (2011): with sigma_j^2 = exp(z_j) (``log_var``), E(v, h) = sum_j (v_j - b_j)^2 /
        (2 sigma_j^2) - c.h - (v / sigma^2) W^T h, so the hidden layer sees v / sigma^2,
        which also replaces v in the W and b statistics (the b statistic is then
        <(v - b) / sigma^2>, its -b / sigma^2 part cancelling between the phases). The
        negative chain's visible units are sampled, v = h W + b + sigma * noise. With
        ``learn_log_var``, each batch also updates z by gradient ascent,
        ``dz_j = exp(-z_j) <(v_j - b_j)^2 / 2 - v_j (W^T h)_j>_data - <...>_model``, whose
        second term is -sum_i W_ij G_ij with G the W gradient just computed (no extra
        GEMM), with the same learning rate and momentum (velocity ``log_var_vel``), then
        clipped to [``log_var_min``, ``log_var_max``]; that forces the W update through
        its gradient buffer (the momentum path).

        Centring (``centered``; Montavon & Mueller 2012, Melchior, Fischer & Wiskott 2016):
        the model is written E = -(v - mu).b' - c'.(h - lambda) - (h - lambda).W (v - mu)
        with offsets mu (``visible_offset``) and lambda (``hidden_offset``); W, b, c stay
        the equivalent uncentred parameters, b = b' - W^T lambda, c = c' - W mu. Each batch
        first slides the offsets, mu <- (1 - r) mu + r <v>_data and lambda <- (1 - r)
        lambda + r <h>_data (r = ``offset_rate``, the data-driven hidden probabilities),
        then takes the centred gradient <(h - lambda)(v - mu)^T>_data - <...>_model = G -
        g_c mu^T - lambda g_b^T (G, g_b, g_c the uncentred gradients, no extra GEMM), the
        biases' gradients unchanged. The update (momentum, weight decay, sparsity as above)
        applies to W, b', c'; in uncentred terms dW as usual, db = db' - dW^T lambda, dc =
        dc' - dW mu; the velocities are those of W, b', c'. Gaussian visible units are
        centred in the variable the hidden layer sees, v / sigma^2; the log-variance
        gradient stays the uncentred one.

        Fast weights (``fast_learning_rate`` > 0, PCD only; Tieleman & Hinton 2009): the
        persistent chains sample from W + W_f, b + b_f, c + c_f; the positive phase and
        the regular update are as above. After the regular update of each batch, the fast
        parameters take the same gradient (the centred one when centred, without weight
        decay, momentum or sparsity): W_f <- (1 - ``fast_weight_decay``) W_f +
        ``fast_learning_rate`` * G, and alike b_f, c_f (less G^T lambda, G mu when
        centred, as b and c). The negative statistics are those of the chains' model.

        Parallel tempering (``betas`` with M > 1 values; Desjardins et al. 2010, Cho, Raiko
        & Ilin 2010): M sets of n_chains persistent chains (``chains`` at beta = 1,
        ``tempered_chains`` at the others), the set at beta sampling p_beta(v, h) ~
        exp(-beta E(v, h)), the whole energy (biases included) scaled, so its conditionals
        are sigmoid(beta (W v + c)) and sigmoid(beta (W^T h + b)). Each of the k steps per
        batch runs h -> v -> h at every temperature (two GEMMs over all M n_chains rows)
        and, at every ``swap_every``-th step, first proposes for each chain r and each
        neighbouring pair (m, m + 1), coldest first, to exchange the hidden states of chain
        r at beta_m and beta_m+1, accepted with the Metropolis probability min(1, p_m(h')
        p_m+1(h) / (p_m(h) p_m+1(h'))) on the hidden marginals log p_beta(h) = beta c.h +
        sum_j softplus(beta (h W + b)_j), whose h W is the GEMM the step computes anyway;
        the uniform is the stream's at (counter, r, m). The statistics come from the beta
        = 1 chains. ``swap_accepted`` and ``swap_proposed`` count this epoch's proposals
        per pair. (With the fast weights, every temperature samples the chains' model W +
        W_f.)

        Parameters
        ----------
        X : ndarray or scipy.sparse.csr_matrix of shape (n_samples, n_visible)
            Training rows in the engine's dtype (dense: C-contiguous; CSR: int32 indices,
            sorted).

        Returns
        -------
        counter : int
            The next unused counter of the random stream (also ``self.counter``).
        """
        if not self.configured:
            raise ValueError("configure the engine before running an epoch")
        # Read-only state (e.g. a model unpickled from a memory map) can sample, not train.
        if not all(a.flags.writeable for a in self.state().values()):
            raise ValueError("the engine's arrays are read-only; copy them to train")
        cdef bint sparse = hasattr(X, "indptr")
        cdef Py_ssize_t nv = self.W.shape[1]
        if sparse:
            data, indices, indptr = X.data, X.indices, X.indptr
            if X.shape[1] != nv:
                raise ValueError("X has %d features, W expects %d" % (X.shape[1], nv))
            X = np.empty((0, nv), self.dtype)
        else:
            if X.ndim != 2:
                raise ValueError("X must be 2-dimensional")
            if X.shape[1] != nv:
                raise ValueError("X has %d features, W expects %d" % (X.shape[1], nv))
            data, indices, indptr = np.empty(0, self.dtype), _NO_INDICES, _NO_INDPTR
        self._ensure_work()
        if self.dtype == np.float32:
            self.counter = _epoch[float](self, X, data, indices, indptr, sparse)
        else:
            self.counter = _epoch[double](self, X, data, indices, indptr, sparse)
        return self.counter

    def gibbs(self, v, int n_steps, *, str hidden="bernoulli", int n_blocks=1,
              int n_threads=1, v_prob=None):
        """Run ``n_steps`` Gibbs steps v -> h -> v in place on the chains in ``v``,
        drawing from (and advancing) the engine's stream by two counters a step.

        Parameters
        ----------
        v : ndarray of shape (n_chains, n_visible)
            Start state, replaced by the last visible samples.
        n_steps : int
            Number of steps.
        hidden : {"bernoulli", "nrelu", "gaussian"}, keyword-only
            Hidden unit type.
        n_blocks, n_threads : int, keyword-only
            As in :meth:`configure`.
        v_prob : ndarray of shape (n_chains, n_visible) or None, keyword-only
            When given, receives the last step's visible probabilities (means).

        Returns
        -------
        v : ndarray
            ``v`` itself.
        """
        h = np.empty((v.shape[0], self.W.shape[0]), self.dtype)
        gibbs_chain(v, h, self.W, self.b, self.c, n_steps, self.seed, self.counter,
                    n_blocks, n_threads, v_prob, self.visible, hidden, self.log_var)
        self.counter += 2 * max(n_steps, 0)
        return v

    def snapshot(self):
        """Copy the state (arrays and counter) aside, for :meth:`restore`. The copies go
        into buffers allocated at the first call, so a snapshot per epoch costs a copy of
        the state and no allocation."""
        state = self.state()
        if self.backup is None or any(self.backup[k].shape != a.shape
                                      for k, a in state.items()):
            self.backup = {k: np.empty_like(a) for k, a in state.items()}
        for k, a in state.items():
            np.copyto(self.backup[k], a)
        self.backup_counter = self.counter
        self.backup_tempering_step = self.tempering_step

    def restore(self):
        """Put back, in place, the state of the last :meth:`snapshot`."""
        if self.backup is None:
            raise ValueError("no snapshot to restore")
        for k, a in self.state().items():
            np.copyto(a, self.backup[k])
        self.counter = self.backup_counter
        self.tempering_step = self.backup_tempering_step


def _engine_from_state(state, seed, counter, tempering_step=0):
    return GibbsEngine(**state, seed=seed, counter=counter, tempering_step=tempering_step)


_NO_INDICES = np.empty(0, np.int32)
_NO_INDPTR = np.zeros(1, np.int32)


cdef uint64_t _epoch(GibbsEngine e, const floating[:, ::1] X, const floating[::1] X_data,
                     const int[::1] X_indices, const int[::1] X_indptr,
                     bint sparse) except? 0:
    """GibbsEngine.epoch in one precision (the arrays were checked when e was built)."""
    cdef EpochSettings s = e.settings
    cdef int vis = GAUSSIAN if e.log_var is not None else BERNOULLI, hid = s.hidden
    cdef Py_ssize_t n_samples = X_indptr.shape[0] - 1 if sparse else X.shape[0]
    cdef floating[:, ::1] W = e.W
    cdef floating[::1] b = e.b
    cdef floating[::1] c = e.c
    cdef floating[:, ::1] chain = e.chains
    cdef floating[:, ::1] W_vel = e.W_vel
    cdef floating[::1] log_var = e.log_var
    cdef floating[::1] log_var_vel = e.log_var_vel
    cdef Py_ssize_t nv = W.shape[1], nh = W.shape[0]
    cdef Py_ssize_t n_chains = chain.shape[0], batch_size = s.batch_size
    cdef bint persistent = s.persistent
    cdef int k = s.k, n_blocks = s.n_blocks, n_threads = s.n_threads
    cdef bint gaussian = vis == GAUSSIAN
    cdef bint learn = gaussian and s.learn_log_var
    cdef bint centered = s.centered
    cdef bint use_fast = s.fast_learning_rate > 0
    cdef bint plain = (s.momentum == 0 and s.weight_decay == 0 and s.sparsity_cost == 0
                       and not learn and not centered and not use_fast)
    cdef uint64_t seed = e.seed, counter = e.counter
    cdef Py_ssize_t start, n, n_neg, blk, size, n_hblocks, j
    cdef floating zj
    cdef Py_ssize_t vsize, n_vblocks, n_tasks
    cdef int step
    cdef bint sample_h
    if n_samples == 0 or nv == 0 or nh == 0:
        return counter

    # Work buffers (see GibbsEngine._ensure_work), reused by every batch and epoch.
    cdef floating[:, ::1] Vbuf = e.work[0]
    cdef floating[:, ::1] Hpos = e.work[1]
    cdef floating[:, ::1] Hs_buf = e.work[2]
    # The negative chains' hidden state: PCD advances the persistent chains in place.
    cdef floating *Hs = &chain[0, 0] if persistent else &Hs_buf[0, 0]
    cdef floating[:, ::1] Hneg = e.work[3]
    cdef floating[:, ::1] Vneg = e.work[4]
    cdef floating[:, ::1] Vprob = e.work[5]
    cdef floating[:, ::1] G = e.work[6]
    cdef floating[::1] gb = e.work[7]
    cdef floating[::1] gc = e.work[8]
    cdef floating[::1] vmean = e.work[9]
    # Gaussian visible units: sigma, 1 / sigma^2 and, unless every sigma is 1 for good (the
    # default), the data and the chains' visible samples over sigma^2 (Vs0, Vsn), which the
    # hidden layer and the W and b statistics see in place of V0 and Vneg.
    cdef bint scaled = gaussian and (learn or np.any(e.log_var != 0))
    cdef floating[::1] sigma = e.work[10]
    cdef floating[::1] inv_var = e.work[11]
    cdef floating[:, ::1] Vs0buf = e.work[12]
    cdef floating[:, ::1] Vsneg = e.work[13]
    cdef floating *Vs0
    cdef floating *Vsn = &Vsneg[0, 0] if scaled else &Vneg[0, 0]
    # Parallel tempering: every temperature's chains in one stack (see _tempered_steps); the
    # statistics come from its first n_chains rows, the chains at beta = 1.
    cdef bint tempered = e.betas.size > 1
    cdef double[::1] betas = e.betas
    cdef floating[:, ::1] Hall = e.work[24]
    cdef floating[:, ::1] Hpall = e.work[25]
    cdef floating[:, ::1] Vall = e.work[26]
    cdef floating[:, ::1] Vpall = e.work[27]
    cdef floating[:, ::1] sb = e.work[28]
    cdef floating[:, ::1] sc = e.work[29]
    cdef double[:, ::1] flags = e.work[30]
    cdef floating[:, ::1] tchain = e.tempered_chains
    cdef floating *Hn = &Hneg[0, 0]
    cdef Tempering temp
    if tempered:
        temp.betas, temp.M, temp.nc = &betas[0], betas.shape[0], n_chains
        Hall[:n_chains] = chain
        Hall[n_chains:] = tchain
        Vsn = &Vall[0, 0]
        Hn = &Hpall[0, 0]
        e.swap_accepted = np.zeros(temp.M - 1)
        e.swap_proposed = np.zeros(temp.M - 1)
    cdef floating *sig = &sigma[0] if gaussian else NULL
    cdef floating *ivar = &inv_var[0] if gaussian else NULL
    # Learned log-variances: each hidden-block task's share of sum_i W_ij G_ij, and the
    # quadratic term, summed in a fixed order after the tasks.
    cdef floating[:, ::1] wg = e.work[16]
    cdef floating[::1] gz = e.work[17]
    # Centring: the offsets, and the batch's bias gradients over all units (the update
    # tasks read them whole, so they cannot share gb / gc, which each task overwrites).
    cdef floating[::1] mu = e.visible_offset
    cdef floating[::1] lam = e.hidden_offset
    cdef floating[::1] cgb = e.work[18]
    cdef floating[::1] cgc = e.work[19]
    cdef floating rate = s.offset_rate
    cdef Centring centring
    cdef Centring *centp = NULL
    if centered:
        centring.mu_, centring.lam_ = &mu[0], &lam[0]
        centring.gb_, centring.gc_ = &cgb[0], &cgc[0]
        centp = &centring
    # Fast weights: the negative chains sample from W + W_f, b + b_f, c + c_f (Wn, bn, cn).
    cdef floating[:, ::1] W_fast = e.W_fast
    cdef floating[::1] b_fast = e.b_fast
    cdef floating[::1] c_fast = e.c_fast
    cdef floating[:, ::1] WfT = e.work[20]
    cdef floating[:, ::1] Wn_buf = e.work[21]
    cdef floating[::1] bn_buf = e.work[22]
    cdef floating[::1] cn_buf = e.work[23]
    cdef Fast fastw
    cdef Fast *fastp = NULL
    cdef floating *Wf = NULL
    cdef floating *Wn
    cdef floating *bn = &b[0]
    cdef floating *cn = &c[0]
    cdef Py_ssize_t el
    memset(&vmean[0], 0, nv * sizeof(floating))
    if gaussian:
        _sigma_from_log_var(&log_var[0], nv, sig, ivar)
    # Small mini-batches work on the transposes of W and W_vel for the whole epoch (see
    # _works_transposed; H @ W goes as fast either way), copied in here and back at the end.
    cdef bint transposed = _works_transposed(batch_size)
    cdef floating[:, ::1] WT = e.work[14]
    cdef floating[:, ::1] WvT = e.work[15]
    cdef floating *Wk = &WT[0, 0] if transposed else &W[0, 0]
    cdef floating *V0
    cdef floating *Wv = NULL
    cdef floating *bv = NULL
    cdef floating *cv = NULL
    cdef floating *q = NULL
    cdef floating[::1] b_vel, c_vel, q_hidden
    if not plain:
        b_vel, c_vel, q_hidden = e.b_vel, e.c_vel, e.q_hidden
        Wv, bv, cv, q = &W_vel[0, 0], &b_vel[0], &c_vel[0], &q_hidden[0]
        if transposed:
            Wv = &WvT[0, 0]
    if transposed:
        _transpose_rows(&W[0, 0], 0, nh, nv, nh, Wk)
        if not plain:
            _transpose_rows(&W_vel[0, 0], 0, nh, nv, nh, Wv)
    Wn = Wk
    if use_fast:
        Wf = &W_fast[0, 0]
        if transposed:
            Wf = &WfT[0, 0]
            _transpose_rows(&W_fast[0, 0], 0, nh, nv, nh, Wf)
        Wn, bn, cn = &Wn_buf[0, 0], &bn_buf[0], &cn_buf[0]
        for el in range(nh * nv):
            Wn[el] = Wk[el] + Wf[el]
        for j in range(nv):
            bn[j] = b[j] + b_fast[j]
        for j in range(nh):
            cn[j] = c[j] + c_fast[j]
        fastw.Wf_, fastw.bf_, fastw.cf_ = Wf, &b_fast[0], &c_fast[0]
        fastw.Wn_, fastw.bn_, fastw.cn_ = Wn, bn, cn
        fastw.keep, fastw.lr = 1 - s.fast_weight_decay, s.fast_learning_rate
        fastp = &fastw
    # Update tasks: task t updates hidden block t (its weights and biases) and visible
    # bias block t, so every task has a share of both and the threads stay balanced.
    size = _block_size(nh, n_blocks)
    n_hblocks = (nh + size - 1) // size
    vsize = _block_size(nv, n_blocks)
    n_vblocks = (nv + vsize - 1) // vsize
    n_tasks = max(n_hblocks, n_vblocks)

    with nogil:
        start = 0
        while start < n_samples:
            n = min(batch_size, n_samples - start)
            if sparse:
                _csr_rows_to_dense(&X_data[0] if X_data.shape[0] else NULL,
                                   &X_indices[0] if X_indices.shape[0] else NULL,
                                   &X_indptr[0], start, start + n, nv, &Vbuf[0, 0])
                V0 = &Vbuf[0, 0]
            else:
                V0 = <floating *> &X[start, 0]
            Vs0 = V0
            if scaled:
                Vs0 = &Vs0buf[0, 0]
                _scale_rows(V0, n, nv, ivar, Vs0, n_threads)

            # Positive phase: hidden probabilities given the data (and a sample for CD).
            _up(Vs0, n, nv, Wk, transposed, nh, &c[0], &Hpos[0, 0],
                NULL if persistent else Hs, seed, counter, n_blocks, n_threads, hid)
            if persistent:
                n_neg = n_chains
            else:
                n_neg = n
                counter += 1

            # Negative phase: k Gibbs steps from the hidden state in Hs.
            if tempered:
                counter = _tempered_steps(e, &temp, &Hall[0, 0], &Hpall[0, 0], &Vall[0, 0],
                                          &Vpall[0, 0], &sb[0, 0], &sc[0, 0], &flags[0, 0],
                                          Wn, transposed, bn, cn, nv, nh, k, seed, counter,
                                          n_blocks, n_threads)
            for step in range(k if not tempered else 0):
                _down(Hs, n_neg, nh, Wn, transposed, nv, 1, bn, &Vprob[0, 0],
                      &Vneg[0, 0], seed, counter, n_blocks, n_threads, vis, sig, ivar,
                      Vsn if scaled else NULL)
                counter += 1
                sample_h = persistent or step < k - 1
                _up(Vsn, n_neg, nv, Wn, transposed, nh, cn, &Hneg[0, 0],
                    Hs if sample_h else NULL, seed, counter, n_blocks, n_threads, hid)
                if sample_h:
                    counter += 1

            # Update, in parallel tasks (see n_tasks above).
            if not plain and s.sparsity_cost != 0:
                memset(&vmean[0], 0, nv * sizeof(floating))
                _add_colsum(Vs0, n, nv, nv, <floating> (1.0 / n), &vmean[0])
            if centered:
                # The offsets slide toward this batch's means (Melchior et al. 2016, alg.
                # 1: mu toward the data, lambda toward the data-driven hidden units); the
                # gradient then is taken at the new offsets. The uncentred parameters
                # stand for the same model at any offsets, so they need no reparameterising.
                _bias_gradient(Vs0, n, Vsn, n_neg, nv, nv, &cgb[0])
                _bias_gradient(&Hpos[0, 0], n, Hn, n_neg, nh, nh, &cgc[0])
                for j in range(nv):
                    mu[j] = (1 - rate) * mu[j]
                _add_colsum(Vs0, n, nv, nv, rate / n, &mu[0])
                for j in range(nh):
                    lam[j] = (1 - rate) * lam[j]
                _add_colsum(&Hpos[0, 0], n, nh, nh, rate / n, &lam[0])
            for blk in prange(n_tasks, num_threads=n_threads, schedule="static",
                              use_threads_if=n_threads > 1):
                if blk < n_vblocks:
                    if learn:  # before b moves
                        _log_var_data_term(blk * vsize, min(nv, (blk + 1) * vsize), nv, &b[0],
                                           ivar, V0, n, &Vneg[0, 0], n_neg, &gz[0])
                    if not centered:
                        _update_visible_bias(blk * vsize, min(nv, (blk + 1) * vsize), nv,
                                             &b[0], bv, &gb[0], Vs0, n, Vsn, n_neg, plain,
                                             s.learning_rate, s.momentum)
                        if use_fast:
                            _fast_visible_bias(fastp, blk * vsize, min(nv, (blk + 1) * vsize),
                                               nv, nh, transposed, &b[0], &G[0, 0], &gb[0],
                                               <floating> (1.0 / n), NULL, &gb[0])
                if blk < n_hblocks:
                    _update_hidden_block(
                        blk * size, min(nh, (blk + 1) * size), nv, nh, transposed, Wk, &c[0],
                        Wv, cv, &G[0, 0], &gc[0], q, &vmean[0], Vs0, &Hpos[0, 0], n, Vsn,
                        Hn, n_neg, plain, s.learning_rate, s.momentum,
                        s.weight_decay, s.sparsity_target, s.sparsity_cost, 0.9,
                        &wg[blk, 0] if learn else NULL, centp, fastp)
            if centered:  # b' moves by its step, b by that less dW^T lambda (every dW known)
                for blk in prange(n_vblocks, num_threads=n_threads, schedule="static",
                                  use_threads_if=n_threads > 1):
                    _update_visible_bias(blk * vsize, min(nv, (blk + 1) * vsize), nv, &b[0],
                                         bv, &gb[0], Vs0, n, Vsn, n_neg, plain,
                                         s.learning_rate, s.momentum)
                    _centre_visible_bias(blk * vsize, min(nv, (blk + 1) * vsize), nv, nh,
                                         transposed, &b[0], Wv, &lam[0], &gb[0])
                    if use_fast:
                        _fast_visible_bias(fastp, blk * vsize, min(nv, (blk + 1) * vsize),
                                           nv, nh, transposed, &b[0], &G[0, 0], &cgb[0],
                                           <floating> (1.0 / n), centp, &gb[0])
            if learn:
                for j in range(nv):
                    for blk in range(n_hblocks):
                        gz[j] -= wg[blk, j]
                    log_var_vel[j] = s.momentum * log_var_vel[j] + s.learning_rate * gz[j]
                    zj = log_var[j] + log_var_vel[j]
                    log_var[j] = min(max(zj, <floating> s.log_var_min),
                                     <floating> s.log_var_max)
                _sigma_from_log_var(&log_var[0], nv, sig, ivar)
            start += n
        if transposed:
            _transpose_rows(Wk, 0, nv, nh, nv, &W[0, 0])
            if not plain:
                _transpose_rows(Wv, 0, nv, nh, nv, &W_vel[0, 0])
            if use_fast:
                _transpose_rows(Wf, 0, nv, nh, nv, &W_fast[0, 0])
    if tempered:
        chain[:] = Hall[:n_chains]
        tchain[:] = Hall[n_chains:]
    return counter


cdef uint64_t _tempered_steps(GibbsEngine e, const Tempering *t, floating *H, floating *Hp,
                              floating *V, floating *Vp, floating *sb, floating *sc,
                              double *flags, const floating *W, bint transposed,
                              const floating *b, const floating *c, Py_ssize_t nv,
                              Py_ssize_t nh, int k, uint64_t seed, uint64_t counter,
                              int n_blocks, int n_threads) noexcept nogil:
    """k Gibbs steps of all the tempered chains (hidden states H, M * nc rows) of the
    model (W, b, c) at their inverse temperatures, each step h -> v -> h: Vp = H W (one
    GEMM for every temperature), at every ``swap_every``-th step (counted by
    e.tempering_step) a round of swap proposals on (H, Vp) (_tempered_swaps, one
    counter), then V ~ sigmoid(beta (Vp + b)) (one counter), Hp = sigmoid(beta (V W^T +
    c)) and H ~ Hp (one counter). Returns the next counter; swap counts go to
    e.swap_accepted and e.swap_proposed."""
    cdef Py_ssize_t nc = t.nc, j, r
    cdef int m, step
    cdef double accepted
    for m in range(t.M):  # the biases of every temperature (the model moved since)
        for j in range(nv):
            sb[m * nv + j] = <floating> t.betas[m] * b[j]
        for j in range(nh):
            sc[m * nh + j] = <floating> t.betas[m] * c[j]
    for step in range(k):
        _tempered_gemm(False, H, t.M * nc, nh, W, transposed, nv, Vp, n_blocks, n_threads)
        if e.tempering_step % e.settings.swap_every == 0:
            _tempered_swaps(t, H, Vp, nh, nv, c, sb, seed, counter, flags, n_threads)
            counter += 1
            with gil:
                for m in range(t.M - 1):
                    accepted = 0
                    for r in range(nc):
                        accepted += flags[r * t.M + m]
                    e.swap_accepted[m] += accepted
                    e.swap_proposed[m] += nc
        e.tempering_step += 1
        _tempered_activate(t, Vp, V, nv, sb, seed, counter, n_blocks, n_threads)
        counter += 1
        _tempered_gemm(True, V, t.M * nc, nv, W, transposed, nh, Hp, n_blocks, n_threads)
        _tempered_activate(t, Hp, H, nh, sc, seed, counter, n_blocks, n_threads)
        counter += 1
    return counter


def cd_epoch(GibbsEngine engine, X):
    """One CD-k / PCD-k epoch of ``engine`` over X: ``engine.epoch(X)`` as a function, the
    entry point the estimators call (so that it can be wrapped, e.g. to simulate Ctrl-C).

    Parameters
    ----------
    engine : GibbsEngine
        A configured engine.
    X : ndarray or scipy.sparse.csr_matrix of shape (n_samples, n_visible)
        Training rows.

    Returns
    -------
    counter : int
        The engine's next unused counter.
    """
    return engine.epoch(X)


def gemm_floor(const floating[:, ::1] X, floating[:, ::1] W, Py_ssize_t batch_size):
    """The GEMM floor of a CD-1 epoch, for benchmarks: the five GEMMs of each mini-batch
    (three layer products, two weight-gradient products) as whole BLAS calls in the
    layout cd_epoch uses (W's transpose for batches of up to 32 rows), threaded by the BLAS
    library as its caller configured it, with no elementwise work. W receives tiny
    updates (its transpose's, copied back, for small batches)."""
    cdef Py_ssize_t n_samples = X.shape[0], nv = X.shape[1], nh = W.shape[0], n, start
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] H1 = np.zeros((batch_size, nh), dtype)
    cdef floating[:, ::1] H2 = np.zeros((batch_size, nh), dtype)
    cdef floating[:, ::1] V1 = np.zeros((batch_size, nv), dtype)
    cdef floating tiny = 1e-30
    cdef bint transposed = _works_transposed(batch_size)
    cdef floating[:, ::1] WT = _transposed_copy(W) if transposed else None
    cdef floating *Wk = &WT[0, 0] if transposed else &W[0, 0]
    with nogil:
        start = 0
        while start < n_samples:
            n = min(batch_size, n_samples - start)
            _hidden_gemm(transposed, &X[start, 0], n, nv, Wk, nh, 0, nh, &H1[0, 0])
            _visible_gemm(transposed, &H1[0, 0], n, nh, Wk, nv, 0, nv, &V1[0, 0])
            _hidden_gemm(transposed, &V1[0, 0], n, nv, Wk, nh, 0, nh, &H2[0, 0])
            _weight_gemm(transposed, 0, nh, nv, nh, n, tiny, &H1[0, 0], &X[start, 0], 1, Wk)
            _weight_gemm(transposed, 0, nh, nv, nh, n, -tiny, &H2[0, 0], &V1[0, 0], 1, Wk)
            start += n
        if transposed:
            _transpose_rows(Wk, 0, nv, nh, nv, &W[0, 0])
