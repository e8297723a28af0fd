/* Row kernels for the Gibbs engine: fused sigmoid + counter-based uniform + Bernoulli compare.
 *
 * Why C and not Cython: these loops are the whole cost beyond the GEMMs. Scalar, they cost
 * ~10 ns per element (as much as all the GEMMs of a CD epoch); vectorised, ~0.5 ns. gcc
 * vectorises them only if exp is written in plain arithmetic (libm's expf vectorises only
 * under -ffast-math, which would flush denormals to zero for the whole Python process), and
 * target_clones gives AVX-512 / AVX2 code from a portable build, picked at load time.
 *
 * Random numbers: a counter-based generator. The 64-bit key of a row is
 * splitmix64(splitmix64(seed ^ splitmix64(counter)) + row); element j of that row gets the
 * 32 bits lowbias32(lowbias32(lo(key) ^ j * 0x9E3779B9) ^ hi(key)), and its uniform is
 * (bits >> 8) * 2^-24 in [0, 1). A draw depends only on (seed, counter, row, j), never on
 * which thread computes it, so a model is bit-identical for any thread count. tests/_reference.py
 * re-implements this in NumPy.
 */
#ifndef FASTRBM_SIMD_H
#define FASTRBM_SIMD_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(FASTRBM_NO_CLONES)
#define FRB_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FRB_CLONES
#endif

static inline uint64_t frb_splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static inline uint64_t frb_row_key(uint64_t seed, uint64_t counter, uint64_t row)
{
    return frb_splitmix64(frb_splitmix64(seed ^ frb_splitmix64(counter)) + row);
}

static inline uint32_t frb_lowbias32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static inline uint32_t frb_bits(uint32_t klo, uint32_t khi, uint32_t j)
{
    return frb_lowbias32(frb_lowbias32(klo ^ (j * 0x9E3779B9U)) ^ khi);
}

/* exp in plain arithmetic (Cephes coefficients): round-to-nearest by the add-and-subtract
 * trick, so 2^n comes from the bits of the rounded sum without a float->int conversion. */
static inline float frb_expf(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    int32_t tb;
    memcpy(&tb, &t, 4);
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    float y = p * r * r + r + 1.0f;
    int32_t sb = (tb - 0x4B400000) + 127;
    sb <<= 23;
    float scale;
    memcpy(&scale, &sb, 4);
    return y * scale;
}

static inline double frb_exp(double x)
{
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    x = x < -708.0 ? -708.0 : x;
    x = x > 709.0 ? 709.0 : x;
    double t = x * 1.4426950408889634074 + magic;
    double n = t - magic;
    int64_t tb;
    memcpy(&tb, &t, 8);
    double r = x - n * 6.93145751953125E-1;
    r = r - n * 1.42860682030941723212E-6;
    double rr = r * r;
    double px = r * ((1.26177193074810590878E-4 * rr + 3.02994407707441961300E-2) * rr
                     + 9.99999999999999999910E-1);
    double qx = ((3.00198505138664455042E-6 * rr + 2.52448340349684104192E-3) * rr
                 + 2.27265548208155028766E-1) * rr + 2.00000000000000000009E0;
    double y = 1.0 + 2.0 * (px / (qx - px));
    int64_t sb = (tb - 0x4338000000000000LL) + 1023;
    sb <<= 52;
    double scale;
    memcpy(&scale, &sb, 8);
    return y * scale;
}

/* prob[j] = sigmoid(scale * acc[j] + bias[j]); prob may alias acc. (scale is 1 except in
 * annealing, where it is the inverse temperature beta.) */
FRB_CLONES static void frb_sigmoid_f32(const float *acc, float scale, const float *bias,
                                       float *prob, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; j++)
        prob[j] = 1.0f / (1.0f + frb_expf(-(scale * acc[j] + bias[j])));
}

FRB_CLONES static void frb_sigmoid_f64(const double *acc, double scale, const double *bias,
                                       double *prob, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; j++)
        prob[j] = 1.0 / (1.0 + frb_exp(-(scale * acc[j] + bias[j])));
}

/* As frb_sigmoid_*, and also sample[j] = (uniform(key, j0 + j) < prob[j]): the segment
 * starts at column j0 of its row, so a row may be processed in blocks of columns. */
FRB_CLONES static void frb_sigmoid_sample_f32(const float *acc, float scale, const float *bias,
                                              float *prob, float *sample, ptrdiff_t n,
                                              uint64_t key, uint32_t j0)
{
    uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);
    for (ptrdiff_t j = 0; j < n; j++) {
        float p = 1.0f / (1.0f + frb_expf(-(scale * acc[j] + bias[j])));
        float u = (float)(int32_t)(frb_bits(klo, khi, j0 + (uint32_t)j) >> 8) * 0x1p-24f;
        prob[j] = p;
        sample[j] = u < p ? 1.0f : 0.0f;
    }
}

FRB_CLONES static void frb_sigmoid_sample_f64(const double *acc, double scale,
                                              const double *bias, double *prob,
                                              double *sample, ptrdiff_t n, uint64_t key,
                                              uint32_t j0)
{
    uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);
    for (ptrdiff_t j = 0; j < n; j++) {
        double p = 1.0 / (1.0 + frb_exp(-(scale * acc[j] + bias[j])));
        double u = (double)(int32_t)(frb_bits(klo, khi, j0 + (uint32_t)j) >> 8) * 0x1p-24;
        prob[j] = p;
        sample[j] = u < p ? 1.0 : 0.0;
    }
}

FRB_CLONES static void frb_uniform_f32(float *out, ptrdiff_t n, uint64_t key)
{
    uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);
    for (ptrdiff_t j = 0; j < n; j++)
        out[j] = (float)(int32_t)(frb_bits(klo, khi, (uint32_t)j) >> 8) * 0x1p-24f;
}

FRB_CLONES static void frb_uniform_f64(double *out, ptrdiff_t n, uint64_t key)
{
    uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);
    for (ptrdiff_t j = 0; j < n; j++)
        out[j] = (double)(int32_t)(frb_bits(klo, khi, (uint32_t)j) >> 8) * 0x1p-24;
}

/* log1p(t) for t in [0, 1] as 2 atanh(s), s = t / (2 + t) in [0, 1/3]: the odd series in
 * s converges by a factor 1/9 a term and keeps full relative accuracy for tiny t. */
static inline float frb_log1pf_unit(float t)
{
    float s = t / (2.0f + t), z = s * s;
    float p = 1.0f / 19;
    p = p * z + 1.0f / 17;
    p = p * z + 1.0f / 15;
    p = p * z + 1.0f / 13;
    p = p * z + 1.0f / 11;
    p = p * z + 1.0f / 9;
    p = p * z + 1.0f / 7;
    p = p * z + 1.0f / 5;
    p = p * z + 1.0f / 3;
    return 2.0f * s * (p * z + 1.0f);
}

static inline double frb_log1p_unit(double t)
{
    double s = t / (2.0 + t), z = s * s, p = 1.0 / 35;
    for (int k = 33; k >= 1; k -= 2)
        p = p * z + 1.0 / k;
    return 2.0 * s * p;
}

/* softplus(y) = log(1 + e^y) = max(y, 0) + log1p(e^-|y|), overflow-safe. */
static inline float frb_softplusf(float y)
{
    float a = y < 0.0f ? -y : y;
    return (y > 0.0f ? y : 0.0f) + frb_log1pf_unit(frb_expf(-a));
}

static inline double frb_softplus(double y)
{
    double a = y < 0.0 ? -y : y;
    return (y > 0.0 ? y : 0.0) + frb_log1p_unit(frb_exp(-a));
}

/* Annealing: with y1 = s1 * a + b1 and y0 = s0 * a + b0 (a row of pre-activations at two
 * inverse temperatures), add sum_j softplus(y1) - softplus(y0) to *out in float64, and draw
 * sample[j] = (uniform(key, j0 + j) < sigmoid(y1)). The sum runs in 16 fixed lanes, so it
 * vectorises without fast-math and its order never changes. */
#define FRB_LANES 16
FRB_CLONES static void frb_anneal_row_f32(const float *a, float s1, const float *b1, float s0,
                                          const float *b0, float *sample, ptrdiff_t n,
                                          uint64_t key, uint32_t j0, double *out)
{
    uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);
    double lane[FRB_LANES] = {0};
    ptrdiff_t j = 0;
    for (; j + FRB_LANES <= n; j += FRB_LANES)
        for (int l = 0; l < FRB_LANES; l++) {
            float y1 = s1 * a[j + l] + b1[j + l], y0 = s0 * a[j + l] + b0[j + l];
            lane[l] += (double)(frb_softplusf(y1) - frb_softplusf(y0));
            float u = (float)(int32_t)(frb_bits(klo, khi, j0 + (uint32_t)(j + l)) >> 8) * 0x1p-24f;
            sample[j + l] = u < 1.0f / (1.0f + frb_expf(-y1)) ? 1.0f : 0.0f;
        }
    for (; j < n; j++) {
        float y1 = s1 * a[j] + b1[j], y0 = s0 * a[j] + b0[j];
        lane[0] += (double)(frb_softplusf(y1) - frb_softplusf(y0));
        float u = (float)(int32_t)(frb_bits(klo, khi, j0 + (uint32_t)j) >> 8) * 0x1p-24f;
        sample[j] = u < 1.0f / (1.0f + frb_expf(-y1)) ? 1.0f : 0.0f;
    }
    double total = 0.0;
    for (int l = 0; l < FRB_LANES; l++)
        total += lane[l];
    *out += total;
}

FRB_CLONES static void frb_anneal_row_f64(const double *a, double s1, const double *b1,
                                          double s0, const double *b0, double *sample,
                                          ptrdiff_t n, uint64_t key, uint32_t j0, double *out)
{
    uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);
    double lane[FRB_LANES] = {0};
    ptrdiff_t j = 0;
    for (; j + FRB_LANES <= n; j += FRB_LANES)
        for (int l = 0; l < FRB_LANES; l++) {
            double y1 = s1 * a[j + l] + b1[j + l], y0 = s0 * a[j + l] + b0[j + l];
            lane[l] += frb_softplus(y1) - frb_softplus(y0);
            double u = (double)(int32_t)(frb_bits(klo, khi, j0 + (uint32_t)(j + l)) >> 8) * 0x1p-24;
            sample[j + l] = u < 1.0 / (1.0 + frb_exp(-y1)) ? 1.0 : 0.0;
        }
    for (; j < n; j++) {
        double y1 = s1 * a[j] + b1[j], y0 = s0 * a[j] + b0[j];
        lane[0] += frb_softplus(y1) - frb_softplus(y0);
        double u = (double)(int32_t)(frb_bits(klo, khi, j0 + (uint32_t)j) >> 8) * 0x1p-24;
        sample[j] = u < 1.0 / (1.0 + frb_exp(-y1)) ? 1.0 : 0.0;
    }
    double total = 0.0;
    for (int l = 0; l < FRB_LANES; l++)
        total += lane[l];
    *out += total;
}

/* sum_j x[j] * y[j] in float64, in 16 fixed lanes (vectorised, order never changes). */
FRB_CLONES static double frb_dot_f32(const float *x, const float *y, ptrdiff_t n)
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

FRB_CLONES static double frb_dot_f64(const double *x, const double *y, ptrdiff_t n)
{
    double lane[FRB_LANES] = {0}, total = 0.0;
    ptrdiff_t j = 0;
    for (; j + FRB_LANES <= n; j += FRB_LANES)
        for (int l = 0; l < FRB_LANES; l++)
            lane[l] += x[j + l] * y[j + l];
    for (; j < n; j++)
        lane[0] += x[j] * y[j];
    for (int l = 0; l < FRB_LANES; l++)
        total += lane[l];
    return total;
}

#endif
