/* Row kernels of the Gibbs engine, written once for a floating type T and instantiated by
 * _simd.h for float and double (no include guard on purpose). FRB_NAME(x) gives the
 * suffixed name, FRB_EXP / FRB_SOFTPLUS / FRB_LOG / FRB_SQRT / FRB_COS2PI the scalar helpers of
 * that precision. */

/* The uniform in [0, 1) at column j of the row keyed by (klo, khi). The row loops below
 * count columns in a uint32_t of their own: computed from the ptrdiff_t loop index, the
 * column kept 64-bit vector lanes and a narrowing shuffle per vector (sigmoid + sample
 * 0.78 -> 0.65 ns per element). */
static FRB_INLINE T FRB_NAME(uniform_at)(uint32_t klo, uint32_t khi, uint32_t j)
{
    return (T)(int32_t)(frb_bits(klo, khi, j) >> 8) * FRB_2POW_M24;
}

/* prob[j] = sigmoid(scale * acc[j] + bias[j]); prob may alias acc. (scale is 1 except in
 * annealing, where it is the inverse temperature beta.) */
FRB_CLONES static void FRB_NAME(sigmoid)(const T *acc, T scale, const T *bias, T *prob,
                                         ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; j++)
        prob[j] = FRB_ONE / (FRB_ONE + FRB_EXP(-(scale * acc[j] + bias[j])));
}

/* As sigmoid, and also sample[j] = (uniform(key, j0 + j) < prob[j]): the segment starts at
 * column j0 of its row, so a row may be processed in blocks of columns. */
FRB_CLONES static void FRB_NAME(sigmoid_sample)(const T *acc, T scale, const T *bias, T *prob,
                                                T *sample, ptrdiff_t n, uint64_t key,
                                                uint32_t j0)
{
    uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32), col = j0;
    for (ptrdiff_t j = 0; j < n; j++, col++) {
        T p = FRB_ONE / (FRB_ONE + FRB_EXP(-(scale * acc[j] + bias[j])));
        prob[j] = p;
        sample[j] = FRB_NAME(uniform_at)(klo, khi, col) < p ? FRB_ONE : 0;
    }
}

/* The standard normal at column j of the row (Box-Muller on the uniforms at 2j and 2j + 1,
 * see _simd.h). */
static FRB_INLINE T FRB_NAME(normal_at)(uint32_t klo, uint32_t khi, uint32_t j)
{
    T u1 = FRB_ONE - FRB_NAME(uniform_at)(klo, khi, 2 * j);
    T u2 = FRB_NAME(uniform_at)(klo, khi, 2 * j + 1);
    return FRB_SQRT(-2 * FRB_LOG(u1)) * FRB_COS2PI(u2);
}

/* Gaussian units: mean[j] = scale * acc[j] + bias[j] and, unless sample is NULL,
 * sample[j] = mean[j] + sigma[j] * normal(key, j0 + j); mean may alias acc. sigma NULL means
 * unit variance (Gaussian hidden units). With scaled not NULL, also scaled[j] = sample[j] *
 * inv_var[j] (the sample over sigma^2, which is what the hidden layer sees). */
FRB_CLONES static void FRB_NAME(gauss_sample)(const T *acc, T scale, const T *bias,
                                              const T *sigma, T *mean, T *sample,
                                              const T *inv_var, T *scaled, ptrdiff_t n,
                                              uint64_t key, uint32_t j0)
{
    uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);
    for (ptrdiff_t j = 0; j < n; j++)
        mean[j] = scale * acc[j] + bias[j];
    if (sample == NULL)
        return;
    uint32_t col = j0;
    if (sigma == NULL)
        for (ptrdiff_t j = 0; j < n; j++, col++)
            sample[j] = mean[j] + FRB_NAME(normal_at)(klo, khi, col);
    else
        for (ptrdiff_t j = 0; j < n; j++, col++)
            sample[j] = mean[j] + sigma[j] * FRB_NAME(normal_at)(klo, khi, col);
    if (scaled != NULL)
        for (ptrdiff_t j = 0; j < n; j++)
            scaled[j] = sample[j] * inv_var[j];
}

/* Noisy rectified linear units (Nair & Hinton 2010): with x = scale * acc[j] + bias[j],
 * mean[j] = max(0, x) and, unless sample is NULL, sample[j] = max(0, x + sqrt(sigmoid(x)) *
 * normal(key, j0 + j)); mean may alias acc. */
FRB_CLONES static void FRB_NAME(nrelu_sample)(const T *acc, T scale, const T *bias, T *mean,
                                              T *sample, ptrdiff_t n, uint64_t key,
                                              uint32_t j0)
{
    uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);
    if (sample == NULL) {
        for (ptrdiff_t j = 0; j < n; j++) {
            T x = scale * acc[j] + bias[j];
            mean[j] = x > 0 ? x : 0;
        }
        return;
    }
    uint32_t col = j0;
    for (ptrdiff_t j = 0; j < n; j++, col++) {
        T x = scale * acc[j] + bias[j];
        T p = FRB_ONE / (FRB_ONE + FRB_EXP(-x));
        T y = x + FRB_SQRT(p) * FRB_NAME(normal_at)(klo, khi, col);
        mean[j] = x > 0 ? x : 0;
        sample[j] = y > 0 ? y : 0;
    }
}

FRB_CLONES static void FRB_NAME(normal)(T *out, ptrdiff_t n, uint64_t key)
{
    uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);
    uint32_t col = 0;
    for (ptrdiff_t j = 0; j < n; j++, col++)
        out[j] = FRB_NAME(normal_at)(klo, khi, col);
}

FRB_CLONES static void FRB_NAME(uniform)(T *out, ptrdiff_t n, uint64_t key)
{
    uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);
    uint32_t col = 0;
    for (ptrdiff_t j = 0; j < n; j++, col++)
        out[j] = FRB_NAME(uniform_at)(klo, khi, col);
}

/* The logistic noise at columns 0..n-1 of the row: out[j] = log(u / (1 - u)) for the uniform
 * u at column j, so that (x > out[j]) is a Bernoulli(sigmoid(x)) draw, the same event as
 * u < sigmoid(x), decided without an exp where x is only known later (sequential sweeps);
 * u = 0 gives -inf. */
FRB_CLONES static void FRB_NAME(logistic)(T *out, ptrdiff_t n, uint64_t key)
{
    uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);
    uint32_t col = 0;
    for (ptrdiff_t j = 0; j < n; j++, col++) {
        T u = FRB_NAME(uniform_at)(klo, khi, col);
        T lo = u > 0 ? u : FRB_ONE; /* FRB_LOG needs a normal number */
        out[j] = u > 0 ? FRB_LOG(lo) - FRB_LOG(FRB_ONE - u) : -(T)INFINITY;
    }
}

/* Annealing: with y1 = s1 * a + b1 and y0 = s0 * a + b0 (a row of pre-activations at two
 * inverse temperatures), add sum_j softplus(y1) - softplus(y0) to *out in float64, and draw
 * sample[j] = (uniform(key, j0 + j) < sigmoid(y1)). The sum runs in FRB_LANES fixed lanes,
 * so it vectorises without fast-math and its order never changes. */
static FRB_INLINE double FRB_NAME(anneal_one)(const T *a, T s1, const T *b1, T s0, const T *b0,
                                          T *sample, ptrdiff_t j, uint32_t klo, uint32_t khi,
                                          uint32_t j0)
{
    T y1 = s1 * a[j] + b1[j], y0 = s0 * a[j] + b0[j];
    /* one exp serves both sigmoid(y1) and softplus(y1) */
    T e1 = FRB_EXP(y1 < 0 ? y1 : -y1), inv = FRB_ONE / (FRB_ONE + e1);
    T p = y1 < 0 ? e1 * inv : inv;
    T softplus1 = (y1 > 0 ? y1 : 0) + FRB_LOG1P_UNIT(e1);
    sample[j] = FRB_NAME(uniform_at)(klo, khi, j0 + (uint32_t)j) < p ? FRB_ONE : 0;
    return (double)(softplus1 - FRB_SOFTPLUS(y0));
}

FRB_CLONES static void FRB_NAME(anneal_row)(const T *a, T s1, const T *b1, T s0, const T *b0,
                                            T *sample, ptrdiff_t n, uint64_t key,
                                            uint32_t j0, double *out)
{
    uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);
    double lane[FRB_LANES] = {0}, total = 0.0;
    ptrdiff_t j = 0;
    for (; j + FRB_LANES <= n; j += FRB_LANES)
        for (int l = 0; l < FRB_LANES; l++)
            lane[l] += FRB_NAME(anneal_one)(a, s1, b1, s0, b0, sample, j + l, klo, khi, j0);
    for (; j < n; j++)
        lane[0] += FRB_NAME(anneal_one)(a, s1, b1, s0, b0, sample, j, klo, khi, j0);
    for (int l = 0; l < FRB_LANES; l++)
        total += lane[l];
    *out += total;
}

/* sum_j softplus(s * a[j] + sb[j]) in float64, in FRB_LANES fixed lanes (vectorised, fixed
 * order): the hidden marginal's visible term -F_beta(h) - beta c.h of a Bernoulli RBM at
 * inverse temperature s = beta, with a = h W and sb = beta b (parallel tempering swaps). */
FRB_CLONES static double FRB_NAME(softplus_sum)(const T *a, T s, const T *sb, ptrdiff_t n)
{
    double lane[FRB_LANES] = {0}, total = 0.0;
    ptrdiff_t j = 0;
    for (; j + FRB_LANES <= n; j += FRB_LANES)
        for (int l = 0; l < FRB_LANES; l++)
            lane[l] += (double)FRB_SOFTPLUS(s * a[j + l] + sb[j + l]);
    for (; j < n; j++)
        lane[0] += (double)FRB_SOFTPLUS(s * a[j] + sb[j]);
    for (int l = 0; l < FRB_LANES; l++)
        total += lane[l];
    return total;
}

/* y[j] += a * x[j] (a hidden unit's coupling row added to the field in sequential sweeps). */
FRB_CLONES static void FRB_NAME(axpy)(T a, const T *x, T *y, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; j++)
        y[j] += a * x[j];
}

/* sum_j x[j] * y[j] in float64, in FRB_LANES fixed lanes (vectorised, fixed order). */
FRB_CLONES static double FRB_NAME(dot)(const T *x, const T *y, ptrdiff_t n)
{
    double lane[FRB_LANES] = {0}, total = 0.0;
    ptrdiff_t j = 0;
    for (; j + FRB_LANES <= n; j += FRB_LANES)
        for (int l = 0; l < FRB_LANES; l++)
            lane[l] += (double)x[j + l] * (double)y[j + l];
    for (; j < n; j++)
        lane[0] += (double)x[j] * (double)y[j];
    for (int l = 0; l < FRB_LANES; l++)
        total += lane[l];
    return total;
}

/* The template parameters, undefined for the next instantiation. */
#undef T
#undef FRB_NAME
#undef FRB_EXP
#undef FRB_SOFTPLUS
#undef FRB_LOG1P_UNIT
#undef FRB_LOG
#undef FRB_SQRT
#undef FRB_COS2PI
#undef FRB_ONE
#undef FRB_2POW_M24
