/* Transposing a block of rows of W into WT (the engine's transposed working copy of the
 * weights for small mini-batches, and back; see cd_epoch in _sampling.pyx).
 *
 * Why: a scalar transpose reads W with a stride, one element at a time; for a 256 x 64
 * layer it cost as much as all five GEMMs of a CD step (perf: 84% of the epoch loop's own
 * samples, digits benchmark). Here L x L tiles (16 floats or 8 doubles: one 64-byte
 * vector a row) are transposed in registers by log2(L) stages of shuffles, written with
 * GNU vector extensions (GCC and clang) so each target_clones clone lowers them to
 * AVX-512, AVX2 or SSE2.
 *
 * The portable path (FRB_PORTABLE, see _simd.h: MSVC, non-x86 targets, or FASTRBM_PORTABLE
 * defined) uses no extension: the same L x L tiles, copied element by element through a
 * small buffer, so both W and WT are touched a cache line at a time.
 *
 * Only data moves, so every path gives exactly W's elements.
 */
#ifndef FASTRBM_TRANSPOSE_H
#define FASTRBM_TRANSPOSE_H

#include <stddef.h>
#include <stdint.h>

#include "_simd.h" /* FRB_PORTABLE, FRB_CLONES, FRB_INLINE */

/* WT[col, r] = W[r, col] for rows r in [i0, i1) and all nv columns; W is (nh, nv) and WT
 * (nv, nh), both row-major. Whole L x L tiles go through TILE_COPY (which reads tile row i
 * from W + (r0 + i) * nv + c0 and writes tile column i to WT + (c0 + i) * nh + r0), the
 * edges element-wise. */
#define FRB_TRANSPOSE_ROWS(L, TILE_COPY)                                                  \
    ptrdiff_t r0, c0;                                                                     \
    for (r0 = i0; r0 + (L) <= i1; r0 += (L)) {                                            \
        for (c0 = 0; c0 + (L) <= nv; c0 += (L))                                           \
            TILE_COPY(W + r0 * nv + c0, nv, WT + c0 * nh + r0, nh);                       \
        for (ptrdiff_t col = c0; col < nv; col++)                                         \
            for (ptrdiff_t r = r0; r < r0 + (L); r++)                                     \
                WT[col * nh + r] = W[r * nv + col];                                       \
    }                                                                                     \
    for (ptrdiff_t col = 0; col < nv; col++)                                              \
        for (ptrdiff_t r = r0; r < i1; r++)                                               \
            WT[col * nh + r] = W[r * nv + col];

#if !FRB_PORTABLE

/* Unaligned, aliasing-safe 64-byte vector views. */
typedef float frb_vf __attribute__((vector_size(64), aligned(4), may_alias));
typedef double frb_vd __attribute__((vector_size(64), aligned(8), may_alias));

/* Two-input shuffles with constant lane lists. clang and GCC >= 12 have
 * __builtin_shufflevector (constant indices); older GCC only __builtin_shuffle, which takes
 * the indices as an integer vector. */
#if defined(__clang__) || __GNUC__ >= 12
#define FRB_SHUF_F(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#define FRB_SHUF_D(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
typedef int32_t frb_mf __attribute__((vector_size(64)));
typedef int64_t frb_md __attribute__((vector_size(64)));
#define FRB_SHUF_F(a, b, ...) __builtin_shuffle(a, b, (frb_mf){__VA_ARGS__})
#define FRB_SHUF_D(a, b, ...) __builtin_shuffle(a, b, (frb_md){__VA_ARGS__})
#endif

/* Stage s of the tile transpose pairs rows i and i + s (i & s == 0): the first takes the
 * lanes t & s == 0 of row i and fills the others from row i + s (lane list LO, indices
 * >= L meaning row i + s), the second the reverse (HI = LO + s). After the stages
 * s = L/2, ..., 1 row i holds column i. */
#define FRB_TILE_STAGE(SHUF, rows, s, LO, HI)                                             \
    for (int i = 0; i < (int)(sizeof(rows) / sizeof(rows[0])); i++)                      \
        if (!(i & (s))) {                                                                 \
            a_ = rows[i];                                                                 \
            b_ = rows[i + (s)];                                                           \
            rows[i] = SHUF(a_, b_, LO);                                                   \
            rows[i + (s)] = SHUF(a_, b_, HI);                                             \
        }

#define FRB_F8_LO 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define FRB_F8_HI 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define FRB_F4_LO 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define FRB_F4_HI 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define FRB_F2_LO 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define FRB_F2_HI 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define FRB_F1_LO 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define FRB_F1_HI 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
#define FRB_D4_LO 0, 1, 2, 3, 8, 9, 10, 11
#define FRB_D4_HI 4, 5, 6, 7, 12, 13, 14, 15
#define FRB_D2_LO 0, 1, 8, 9, 4, 5, 12, 13
#define FRB_D2_HI 2, 3, 10, 11, 6, 7, 14, 15
#define FRB_D1_LO 0, 8, 2, 10, 4, 12, 6, 14
#define FRB_D1_HI 1, 9, 3, 11, 5, 13, 7, 15

static inline __attribute__((always_inline)) void
frb_tile_f32(const float *src, ptrdiff_t lds, float *dst, ptrdiff_t ldd)
{
    frb_vf rows[16], a_, b_;
    for (int i = 0; i < 16; i++)
        rows[i] = *(const frb_vf *)(src + i * lds);
    FRB_TILE_STAGE(FRB_SHUF_F, rows, 8, FRB_F8_LO, FRB_F8_HI)
    FRB_TILE_STAGE(FRB_SHUF_F, rows, 4, FRB_F4_LO, FRB_F4_HI)
    FRB_TILE_STAGE(FRB_SHUF_F, rows, 2, FRB_F2_LO, FRB_F2_HI)
    FRB_TILE_STAGE(FRB_SHUF_F, rows, 1, FRB_F1_LO, FRB_F1_HI)
    for (int i = 0; i < 16; i++)
        *(frb_vf *)(dst + i * ldd) = rows[i];
}

static inline __attribute__((always_inline)) void
frb_tile_f64(const double *src, ptrdiff_t lds, double *dst, ptrdiff_t ldd)
{
    frb_vd rows[8], a_, b_;
    for (int i = 0; i < 8; i++)
        rows[i] = *(const frb_vd *)(src + i * lds);
    FRB_TILE_STAGE(FRB_SHUF_D, rows, 4, FRB_D4_LO, FRB_D4_HI)
    FRB_TILE_STAGE(FRB_SHUF_D, rows, 2, FRB_D2_LO, FRB_D2_HI)
    FRB_TILE_STAGE(FRB_SHUF_D, rows, 1, FRB_D1_LO, FRB_D1_HI)
    for (int i = 0; i < 8; i++)
        *(frb_vd *)(dst + i * ldd) = rows[i];
}

#define FRB_T_CLONES FRB_CLONES

#else /* FRB_PORTABLE */

/* The tile through a buffer: contiguous reads of W's rows, then contiguous writes of WT's. */
#define FRB_TILE_PORTABLE(NAME, T, L)                                                     \
    static FRB_INLINE void NAME(const T *src, ptrdiff_t lds, T *dst, ptrdiff_t ldd)       \
    {                                                                                     \
        T buf[L][L];                                                                      \
        for (int i = 0; i < (L); i++)                                                     \
            for (int j = 0; j < (L); j++)                                                 \
                buf[j][i] = src[i * lds + j];                                             \
        for (int j = 0; j < (L); j++)                                                     \
            for (int i = 0; i < (L); i++)                                                 \
                dst[j * ldd + i] = buf[j][i];                                             \
    }
FRB_TILE_PORTABLE(frb_tile_f32, float, 16)
FRB_TILE_PORTABLE(frb_tile_f64, double, 8)
#undef FRB_TILE_PORTABLE

#define FRB_T_CLONES

#endif /* FRB_PORTABLE */

FRB_T_CLONES static void frb_transpose_rows_f32(const float *W, ptrdiff_t i0, ptrdiff_t i1,
                                                ptrdiff_t nv, ptrdiff_t nh, float *WT)
{
    FRB_TRANSPOSE_ROWS(16, frb_tile_f32)
}

FRB_T_CLONES static void frb_transpose_rows_f64(const double *W, ptrdiff_t i0, ptrdiff_t i1,
                                                ptrdiff_t nv, ptrdiff_t nh, double *WT)
{
    FRB_TRANSPOSE_ROWS(8, frb_tile_f64)
}

#undef FRB_TRANSPOSE_ROWS
#undef FRB_T_CLONES
#endif
