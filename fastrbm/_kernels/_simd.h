/* Row kernels for the Gibbs engine: fused sigmoid + counter-based uniform + Bernoulli compare,
 * and the annealing row (softplus sums + sample). This file holds the scalar pieces (random
 * bits, exp, log1p, softplus); _simd_rows.h holds the row loops, once per floating type.
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
 *
 * Normal draws (Gaussian visible units, noisy rectified hidden units) use Box-Muller on the
 * two uniforms at positions 2j and 2j + 1 of the row: z = sqrt(-2 log(1 - u_2j)) cos(2 pi
 * u_2j+1), one normal per element, so a block of columns never needs its neighbour's draws.
 * 1 - u lies in (0, 1] on the 2^-24 grid, so |z| <= sqrt(48 log 2) = 5.77 (the tails beyond
 * have probability 8e-9).
 *
 * Logistic noise (sequential Gibbs sweeps over hidden units): log(u / (1 - u)) of the uniform
 * at column j, so that x > noise is the event u < sigmoid(x).
 */
#ifndef FASTRBM_SIMD_H
#define FASTRBM_SIMD_H

#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

/* Build configuration.
 *
 * FRB_PORTABLE: plain C99, no GNU extension (no vector types, target_clones or GCC
 * pragmas), the code MSVC compiles. Chosen for compilers that are not GCC or clang, for
 * targets other than x86-64 (the vectorised transposes and the dispatch are x86 code), and
 * when FASTRBM_PORTABLE is defined (setup.py: FASTRBM_PORTABLE=1), so that CI builds and
 * tests this path with GCC too. The row kernels are the same C either way; without
 * dispatch the compiler vectorises them for the baseline ISA (SSE2, NEON).
 *
 * FRB_CLONES: the x86-64 dispatch. target_clones compiles a function for several ISA
 * levels and picks one when the library loads (an ELF ifunc). GCC >= 11 takes the ISA
 * levels x86-64-v4 (AVX-512) and x86-64-v3 (AVX2 + FMA). clang's resolver does not
 * recognise those names (clang 14 runs the baseline clone on an AVX-512 CPU), so clang
 * >= 14 and older GCC clone on single features instead: avx512f (which implies FMA) and
 * avx2 (without FMA). Elsewhere (Mach-O, COFF, older compilers, FASTRBM_NO_CLONES) there is
 * one baseline version. */
#if defined(FASTRBM_PORTABLE) || !(defined(__GNUC__) && defined(__x86_64__))
#define FRB_PORTABLE 1
#else
#define FRB_PORTABLE 0
#endif

#if FRB_PORTABLE || !defined(__ELF__) || defined(FASTRBM_NO_CLONES)
#define FRB_CLONES
#define FRB_DISPATCH "none"
#elif !defined(__clang__) && __GNUC__ >= 11
#define FRB_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define FRB_DISPATCH "x86-64-v4, x86-64-v3, default"
#elif (defined(__clang__) && __clang_major__ >= 14) || (!defined(__clang__) && __GNUC__ >= 6)
#define FRB_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define FRB_DISPATCH "avx512f, avx2, default"
#else
#define FRB_CLONES
#define FRB_DISPATCH "none"
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#define FRB_INLINE __inline /* MSVC's C mode before /std:c11 */
#else
#define FRB_INLINE inline
#endif

/* What build_info() in _sampling.pyx reports. _OPENMP is defined when the translation unit
 * is compiled with OpenMP on (setup.py's probe). */
#define FRB_STR_(x) #x
#define FRB_STR(x) FRB_STR_(x)
#if defined(__clang__)
#define FRB_BUILD_COMPILER                                                                \
    "clang " FRB_STR(__clang_major__) "." FRB_STR(__clang_minor__) "." FRB_STR(__clang_patchlevel__)
#elif defined(__GNUC__)
#define FRB_BUILD_COMPILER                                                                \
    "gcc " FRB_STR(__GNUC__) "." FRB_STR(__GNUC_MINOR__) "." FRB_STR(__GNUC_PATCHLEVEL__)
#elif defined(_MSC_VER)
#define FRB_BUILD_COMPILER "msvc " FRB_STR(_MSC_FULL_VER)
#else
#define FRB_BUILD_COMPILER "unknown"
#endif
#ifdef _OPENMP
#define FRB_BUILD_OPENMP 1
#else
#define FRB_BUILD_OPENMP 0
#endif

static FRB_INLINE uint64_t frb_splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static FRB_INLINE uint64_t frb_row_key(uint64_t seed, uint64_t counter, uint64_t row)
{
    return frb_splitmix64(frb_splitmix64(seed ^ frb_splitmix64(counter)) + row);
}

static FRB_INLINE uint32_t frb_lowbias32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static FRB_INLINE uint32_t frb_bits(uint32_t klo, uint32_t khi, uint32_t j)
{
    return frb_lowbias32(frb_lowbias32(klo ^ (j * 0x9E3779B9U)) ^ khi);
}

/* exp in plain arithmetic (Cephes coefficients): round-to-nearest by the add-and-subtract
 * trick, so 2^n comes from the bits of the rounded sum without a float->int conversion. */
static FRB_INLINE float frb_expf(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    /* |x| <= 87 keeps 1 / (1 + exp(x)) a normal float: a denormal sigmoid fed to a GEMM
     * costs a microcode assist per operation (measured: PCD epochs 1.5-2x slower). */
    x = x < -87.0f ? -87.0f : x;
    x = x > 87.0f ? 87.0f : x;
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

static FRB_INLINE double frb_exp(double x)
{
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    x = x < -708.0 ? -708.0 : x;
    x = x > 708.0 ? 708.0 : x;
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

/* log1p(t) for t in [0, 1] as 2 atanh(s), s = t / (2 + t) in [0, 1/3]: the odd series in
 * s converges by a factor 1/9 a term and keeps full relative accuracy for tiny t. */
static FRB_INLINE float frb_log1pf_unit(float t)
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

static FRB_INLINE double frb_log1p_unit(double t)
{
    /* Written out, not a loop: a loop left in the row loops stops their vectorisation. */
    double s = t / (2.0 + t), z = s * s, p = 1.0 / 35;
    p = p * z + 1.0 / 33;
    p = p * z + 1.0 / 31;
    p = p * z + 1.0 / 29;
    p = p * z + 1.0 / 27;
    p = p * z + 1.0 / 25;
    p = p * z + 1.0 / 23;
    p = p * z + 1.0 / 21;
    p = p * z + 1.0 / 19;
    p = p * z + 1.0 / 17;
    p = p * z + 1.0 / 15;
    p = p * z + 1.0 / 13;
    p = p * z + 1.0 / 11;
    p = p * z + 1.0 / 9;
    p = p * z + 1.0 / 7;
    p = p * z + 1.0 / 5;
    p = p * z + 1.0 / 3;
    p = p * z + 1.0 / 1;
    return 2.0 * s * p;
}

/* softplus(y) = log(1 + e^y) = max(y, 0) + log1p(e^-|y|), overflow-safe. */
static FRB_INLINE float frb_softplusf(float y)
{
    float a = y < 0.0f ? -y : y;
    return (y > 0.0f ? y : 0.0f) + frb_log1pf_unit(frb_expf(-a));
}

static FRB_INLINE double frb_softplus(double y)
{
    double a = y < 0.0 ? -y : y;
    return (y > 0.0 ? y : 0.0) + frb_log1p_unit(frb_exp(-a));
}


/* The pieces of a normal draw (Box-Muller, below), in plain arithmetic for the same reason
 * as exp: libm's log / cos do not vectorise without fast-math, and sqrt vectorises only
 * without errno (-fno-math-errno), which a portable build does not set. */

/* log(x) for a normal x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log x = e log 2 +
 * log1p(m - 1), and |m - 1| <= 0.42 is well inside the range of the atanh series. */
static FRB_INLINE float frb_logf(float x)
{
    int32_t i;
    memcpy(&i, &x, 4);
    int32_t e = ((i >> 23) & 0xff) - 127;
    int32_t mi = (i & 0x007fffff) | 0x3f800000;
    float m;
    memcpy(&m, &mi, 4);
    int32_t big = m > 1.41421356f;
    m = big ? 0.5f * m : m;
    e = big ? e + 1 : e;
    return (float)e * 0.693147180559945309f + frb_log1pf_unit(m - 1.0f);
}

static FRB_INLINE double frb_log(double x)
{
    /* Unsigned 64-bit integer work only, and the exponent converted to double through the
     * bits of 2^52 + e, so AVX2 (no 64-bit arithmetic shift or int64 -> double) vectorises. */
    uint64_t i, ei;
    memcpy(&i, &x, 8);
    ei = (i >> 52) | 0x4330000000000000ULL;
    uint64_t mi = (i & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    double m, e;
    memcpy(&m, &mi, 8);
    memcpy(&e, &ei, 8);
    e = e - 4503599627371519.0; /* 2^52 + 1023 */
    int64_t big = m > 1.4142135623730951;
    m = big ? 0.5 * m : m;
    e = big ? e + 1.0 : e;
    /* log 2 split in a part exact in e * ln2_hi and the rest */
    return e * 6.93147180369123816490e-01
           + (frb_log1p_unit(m - 1.0) + e * 1.90821492927058770002e-10);
}

/* sqrt(x) for x >= 0 as x / sqrt(x) by Newton's iteration for 1 / sqrt(x) from the
 * classic bit-level first guess (3.4% off; each step squares the relative error). */
static FRB_INLINE float frb_sqrtf(float x)
{
    int32_t i;
    memcpy(&i, &x, 4);
    i = 0x5f375a86 - (i >> 1);
    float y;
    memcpy(&y, &i, 4);
    for (int it = 0; it < 3; it++)
        y = y * (1.5f - 0.5f * x * y * y);
    return x > 0.0f ? x * y : 0.0f;
}

static FRB_INLINE double frb_sqrt(double x)
{
    uint64_t i;
    memcpy(&i, &x, 8);
    i = 0x5fe6eb50c7b537a9ULL - (i >> 1);
    double y;
    memcpy(&y, &i, 8);
    for (int it = 0; it < 4; it++)
        y = y * (1.5 - 0.5 * x * y * y);
    return x > 0.0 ? x * y : 0.0;
}

/* cos(2 pi u) for u in [0, 1): with a = |u - 1/2| in [0, 1/2], cos(2 pi u) = -cos(2 pi a)
 * = -sin(x), x = 2 pi (1/4 - a) in [-pi/2, pi/2] (exact up to the product by 2 pi), and sin
 * is its Taylor polynomial, truncated below the precision (x^17 / 17! < 2e-9 for float,
 * x^25 / 25! < 1e-20 for double). */
static FRB_INLINE float frb_cos2pif(float u)
{
    float a = u - 0.5f;
    a = a < 0.0f ? -a : a;
    float x = (0.25f - a) * 6.28318530717958648f, z = x * x;
    float p = -1.0f / 1307674368000.0f;
    p = p * z + 1.0f / 6227020800.0f;
    p = p * z - 1.0f / 39916800.0f;
    p = p * z + 1.0f / 362880.0f;
    p = p * z - 1.0f / 5040.0f;
    p = p * z + 1.0f / 120.0f;
    p = p * z - 1.0f / 6.0f;
    return -(x + x * z * p);
}

static FRB_INLINE double frb_cos2pi(double u)
{
    double a = u - 0.5;
    a = a < 0.0 ? -a : a;
    double x = (0.25 - a) * 6.28318530717958647692, z = x * x;
    double p = -1.0 / 25852016738884976640000.0;
    p = p * z + 1.0 / 51090942171709440000.0;
    p = p * z - 1.0 / 121645100408832000.0;
    p = p * z + 1.0 / 355687428096000.0;
    p = p * z - 1.0 / 1307674368000.0;
    p = p * z + 1.0 / 6227020800.0;
    p = p * z - 1.0 / 39916800.0;
    p = p * z + 1.0 / 362880.0;
    p = p * z - 1.0 / 5040.0;
    p = p * z + 1.0 / 120.0;
    p = p * z - 1.0 / 6.0;
    return -(x + x * z * p);
}


/* The row kernels, once for float (suffix _f32) and once for double (_f64): _simd_rows.h
 * is a template instantiated by including it with T and the scalar helpers defined; it
 * undefines them at its end. */
#if defined(__GNUC__) && !defined(__clang__) && !FRB_PORTABLE
/* The clamps of exp (x < -87 ? -87 : x) are branches to gcc without fast-math; jump
 * threading then specialises the rest of a row loop for the clamped lanes, which put two
 * masked divisions in the vectorised sigmoid (measured: 0.43 against 0.32 ns per element). */
#pragma GCC push_options
#pragma GCC optimize("no-thread-jumps")
#endif
#define FRB_LANES 16
#define T float
#define FRB_NAME(name) frb_##name##_f32
#define FRB_EXP frb_expf
#define FRB_SOFTPLUS frb_softplusf
#define FRB_LOG1P_UNIT frb_log1pf_unit
#define FRB_LOG frb_logf
#define FRB_SQRT frb_sqrtf
#define FRB_COS2PI frb_cos2pif
#define FRB_ONE 1.0f
#define FRB_2POW_M24 5.9604644775390625e-8f /* 2^-24, exactly */
#include "_simd_rows.h"
#define T double
#define FRB_NAME(name) frb_##name##_f64
#define FRB_EXP frb_exp
#define FRB_SOFTPLUS frb_softplus
#define FRB_LOG1P_UNIT frb_log1p_unit
#define FRB_LOG frb_log
#define FRB_SQRT frb_sqrt
#define FRB_COS2PI frb_cos2pi
#define FRB_ONE 1.0
#define FRB_2POW_M24 5.9604644775390625e-8
#include "_simd_rows.h"
#if defined(__GNUC__) && !defined(__clang__) && !FRB_PORTABLE
#pragma GCC pop_options
#endif

#endif
