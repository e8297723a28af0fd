/* Transposing a block of rows of W into WT (the engine's transposed working copy of the
 * weights for small mini-batches, and back; see cd_epoch in _sampling.pyx).
 *
 * Why: a scalar transpose reads W with a stride, one element at a time; for a 256 x 64
 * layer it cost as much as all five GEMMs of a CD step (perf: 84% of the epoch loop's own
 * samples, digits benchmark). Here L x L tiles (16 floats or 8 doubles: one 64-byte
 * vector a row) are transposed in registers by log2(L) stages of shuffles, written with
 * GCC vector extensions so each target_clones clone lowers them to AVX-512, AVX2 or SSE2.
 * Only data moves, so the result is exact.
 */
#ifndef FASTRBM_TRANSPOSE_H
#define FASTRBM_TRANSPOSE_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(FASTRBM_NO_CLONES)
#define FRB_T_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FRB_T_CLONES
#endif

/* Unaligned, aliasing-safe 64-byte vector views, and the shuffle masks' types. */
typedef float frb_vf __attribute__((vector_size(64), aligned(4), may_alias));
typedef double frb_vd __attribute__((vector_size(64), aligned(8), may_alias));
typedef int32_t frb_mf __attribute__((vector_size(64)));
typedef int64_t frb_md __attribute__((vector_size(64)));

/* Stage s of the tile transpose pairs rows i and i + s (i & s == 0): the first takes the
 * lanes t & s == 0 of row i and fills the others from row i + s, the second the reverse.
 * After the stages s = L/2, ..., 1 row i holds column i. */
#define FRB_TILE_STAGE(V, rows, s, lo, hi)                                                \
    for (int i = 0; i < (int)(sizeof(rows) / sizeof(rows[0])); i++)                      \
        if (!(i & (s))) {                                                                 \
            V a_ = rows[i], b_ = rows[i + (s)];                                           \
            rows[i] = __builtin_shuffle(a_, b_, lo);                                      \
            rows[i + (s)] = __builtin_shuffle(a_, b_, hi);                                \
        }

static inline __attribute__((always_inline)) void frb_tile_f32(frb_vf *r)
{
    const frb_mf m8 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
    const frb_mf m4 = {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27};
    const frb_mf m2 = {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29};
    const frb_mf m1 = {0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30};
    frb_vf rows[16];
    for (int i = 0; i < 16; i++)
        rows[i] = r[i];
    FRB_TILE_STAGE(frb_vf, rows, 8, m8, m8 + 8)
    FRB_TILE_STAGE(frb_vf, rows, 4, m4, m4 + 4)
    FRB_TILE_STAGE(frb_vf, rows, 2, m2, m2 + 2)
    FRB_TILE_STAGE(frb_vf, rows, 1, m1, m1 + 1)
    for (int i = 0; i < 16; i++)
        r[i] = rows[i];
}

static inline __attribute__((always_inline)) void frb_tile_f64(frb_vd *r)
{
    const frb_md m4 = {0, 1, 2, 3, 8, 9, 10, 11};
    const frb_md m2 = {0, 1, 8, 9, 4, 5, 12, 13};
    const frb_md m1 = {0, 8, 2, 10, 4, 12, 6, 14};
    frb_vd rows[8];
    for (int i = 0; i < 8; i++)
        rows[i] = r[i];
    FRB_TILE_STAGE(frb_vd, rows, 4, m4, m4 + 4)
    FRB_TILE_STAGE(frb_vd, rows, 2, m2, m2 + 2)
    FRB_TILE_STAGE(frb_vd, rows, 1, m1, m1 + 1)
    for (int i = 0; i < 8; i++)
        r[i] = rows[i];
}

/* WT[col, r] = W[r, col] for rows r in [i0, i1) and all nv columns; W is (nh, nv) and WT
 * (nv, nh), both row-major. Whole tiles go through registers, the edges element-wise. */
#define FRB_TRANSPOSE_ROWS(T, V, L, TILE)                                                 \
    ptrdiff_t r0, c0;                                                                     \
    for (r0 = i0; r0 + (L) <= i1; r0 += (L)) {                                            \
        for (c0 = 0; c0 + (L) <= nv; c0 += (L)) {                                         \
            V tile[L];                                                                    \
            for (int i = 0; i < (L); i++)                                                 \
                tile[i] = *(const V *)(W + (r0 + i) * nv + c0);                           \
            TILE(tile);                                                                   \
            for (int i = 0; i < (L); i++)                                                 \
                *(V *)(WT + (c0 + i) * nh + r0) = tile[i];                                \
        }                                                                                 \
        for (ptrdiff_t col = c0; col < nv; col++)                                         \
            for (ptrdiff_t r = r0; r < r0 + (L); r++)                                     \
                WT[col * nh + r] = W[r * nv + col];                                       \
    }                                                                                     \
    for (ptrdiff_t col = 0; col < nv; col++)                                              \
        for (ptrdiff_t r = r0; r < i1; r++)                                               \
            WT[col * nh + r] = W[r * nv + col];

FRB_T_CLONES static void frb_transpose_rows_f32(const float *W, ptrdiff_t i0, ptrdiff_t i1,
                                                ptrdiff_t nv, ptrdiff_t nh, float *WT)
{
    FRB_TRANSPOSE_ROWS(float, frb_vf, 16, frb_tile_f32)
}

FRB_T_CLONES static void frb_transpose_rows_f64(const double *W, ptrdiff_t i0, ptrdiff_t i1,
                                                ptrdiff_t nv, ptrdiff_t nh, double *WT)
{
    FRB_TRANSPOSE_ROWS(double, frb_vd, 8, frb_tile_f64)
}

#undef FRB_TILE_STAGE
#undef FRB_TRANSPOSE_ROWS
#endif
