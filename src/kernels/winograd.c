/* winograd.c: Winograd F(4x4,3x3) convolutions in f32 (3x3 kernel, stride 1, dilation 1,
 * groups 1, any padding and size): conv2d forward, and so stride-1 backward_input (a forward
 * convolution with the flipped kernel, conv_bwi_flip) and conv_transpose2d forward; and conv2d
 * backward_weight. The f32 conv2d kernels call it first (entry points in nnk_internal.h); f64
 * keeps im2col. Also the mode switch nnk_set_winograd, which the polyphase path obeys too.
 *
 * out = A^T [(G w G^T) . (B^T d B)] A turns a 6x6 input tile d into a 4x4 output tile with 36
 * multiplies per (tile, input channel, output channel) instead of 144. The tiles of the whole
 * minibatch are numbered (image, tile row, tile column) and cut into blocks of about WINO_TB
 * tiles; one thread works on one block at a time:
 *   forward: the filter is transformed once per call into U[36][K/6][C][6] (shared); per block
 *     the input transform writes V[36][tiles/16][C][16], then for each of the 36 points the
 *     products M = U[xi] (K x C) . V[xi] (C x tiles) run in a 6x16 register-blocked kernel on
 *     those packed operands (the "36 gemms"; sgemm would copy both operands again on every
 *     call, which cost a quarter of the time at these sizes), and the output transform
 *     A^T m A + bias writes the output planes. With fewer blocks than threads the output
 *     channels are split too (each thread transforms the block's input itself).
 *   backward_weight: dw = G^T [sum over tiles (A dy A^T) . V] G, so per block the input is
 *     transformed with channels as lanes (V[36][tiles][C]), dout into Y[36][tiles/16][K][16],
 *     and S[xi] (K x C) += Y[xi] (K x tiles) . V[xi] (tiles x C) in the same kind of kernel;
 *     each thread sums into its own S[36][K][C], added up and transformed back at the end.
 * Edges: a row buffer holds the block's input rows zero-padded (and, for backward_weight,
 * dout's), so every tile reads a full window; outputs past the plane are not written.
 * Vector code: GCC vector extensions for 8 floats (AVX2; the x86-64-v3/v4 clones of
 * NNK_CLONES). Accuracy (f32, against f64, VGG-sized data): largest error / largest output
 * ~1e-5 (1.9e-5 for 512 channels), rms ~3e-6, against ~3e-7 for im2col. */

#include "nnk_internal.h"

#define WINO_PTS 36 /* 6 x 6 transform points */

/* 0 never, 1 where measured faster, 2 wherever it applies; -1: not yet read from the
 * environment (AIART_WINOGRAD) */
static int wino_mode_v = -1;

int nnk_wino_mode(void) {
  int m = __atomic_load_n(&wino_mode_v, __ATOMIC_RELAXED);
  if (m < 0) {
    const char *e = getenv("AIART_WINOGRAD");
    m = (e && e[0] >= '0' && e[0] <= '2' && !e[1]) ? e[0] - '0' : 1;
    __atomic_store_n(&wino_mode_v, m, __ATOMIC_RELAXED);
  }
  return m;
}

int nnk_set_winograd(int mode) {
  const int old = nnk_wino_mode();
  if (mode >= 0 && mode <= 2) __atomic_store_n(&wino_mode_v, mode, __ATOMIC_RELAXED);
  return old;
}

static int wino_applies(const nnk_conv *g) {
  return g->R == 3 && g->S == 3 && g->stride_h == 1 && g->stride_w == 1 && g->dil_h == 1 &&
         g->dil_w == 1 && g->groups == 1 && g->N > 0;
}

/* The dispatch rule (mode 1), from single-thread measurements on the 2-core AVX2 machine:
 * im2col wins with few input channels (C=3, K=64: 2x; C=4, K=64: 1.2x; C=6, K=32 already
 * goes to Winograd by 1.1x), and where the filter transform outweighs the products (N=8,
 * 256 channels, 2x2: 1.4x). Winograd wins everywhere else measured, at most output channels
 * too (C=64, K=3: 2.6x) and on small planes (N=64, 64 channels, 4x4: 3x, 7x7: 2.5x). */
static int wino_faster(const nnk_conv *g) {
  const int64_t tiles = (int64_t)g->N * ceil_div64(g->P, 4) * ceil_div64(g->Q, 4);
  return g->C >= 6 && tiles >= 32;
}

/* The vector code below is written for AVX2+FMA: the AVX2 (or AVX-512) clone, or a native
 * build. Lowered to SSE2 it is ~10x slower than im2col, so there it runs only when forced. */
static int wino_isa(void) {
#if defined(__AVX2__) && defined(__FMA__)
  return 1;
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(NNK_NO_CLONES)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return 0;
#endif
}

/* whether conv2d_forward of g in f32 runs Winograd */
int nnk_wino_use(const nnk_conv *g, size_t esize) {
  if (esize != sizeof(float) || nnk_conv_check(g) || !wino_applies(g)) return 0;
  const int m = nnk_wino_mode();
  return m == 2 || (m == 1 && wino_isa() && wino_faster(g));
}

typedef struct {
  int64_t TH, TW, NT;  /* tile rows and columns per image, tiles in the batch */
  int64_t tb, nblk;    /* tiles per block (a multiple of WINO_L), blocks */
  int64_t kb, nkb, KG; /* output channels per block (a multiple of WINO_KR), blocks; row groups */
  int64_t us, vs;      /* floats from one transform point to the next in U, V */
  int64_t wp, nseg;    /* padded row length and tile rows of a block in the row buffer */
  int64_t ys, kp, cp, rbs; /* backward_weight: point stride of Y; K, C rounded to the kernel's
                            * rows and lanes; floats of one channel's row buffer */
  size_t u_bytes;      /* forward: transformed filter (shared) */
  size_t thr_bytes;    /* per thread: V, M (backward_weight: Y and S), row buffer, tiles */
  size_t v_off, m_off, s_off, r_off, t_off; /* their offsets in a thread's part */
} wino_plan;

/* rows (output channels) and lanes (tiles) of the product kernel */
#define WINO_KR 6
#define WINO_L 16

/* tiles per block before balancing: measured best from 32 to 256 channels (forward: 64 and
 * 128 alike, 256 10-40% slower with 64 channels; backward_weight: 32 and 64 alike) */
#ifndef WINO_TB
#define WINO_TB 64
#endif

/* a stride of n floats (rounded to a cache line), made an odd number of cache lines so that
 * the 36 rows of a transform point do not fall into the same cache sets */
static int64_t wino_stride(int64_t n) {
  n = ceil_div64(n, 16) * 16;
  return (n / 16) % 2 ? n : n + 16;
}

/* tile row segment of a block: tiles (n, ty, tx) for tx in [tx0, tx1); their input rows
 * start at row `row` of the row buffer, where the segments of one image share rows */
typedef struct {
  int32_t n, ty, tx0, tx1, row;
} wino_seg;

/* where a tile's 4x4 output goes: offset of its first element in output channel 0, and the
 * rows and columns inside the plane (4 but at the bottom and right edges) */
typedef struct {
  int64_t off;
  int32_t ni, nj;
} wino_out;

/* bww: the plan of backward_weight (no transformed filter, no K split) */
static void wino_plan_make(wino_plan *pl, const nnk_conv *g, int nt, int bww) {
  const int64_t C = g->C, K = g->K;
  memset(pl, 0, sizeof *pl);
  pl->TH = ceil_div64(g->P, 4);
  pl->TW = ceil_div64(g->Q, 4);
  pl->NT = (int64_t)g->N * pl->TH * pl->TW;
  pl->KG = ceil_div64(K, WINO_KR);
  int64_t nblk = ceil_div64(pl->NT, imax64(WINO_L, WINO_TB));
  pl->kb = pl->KG * WINO_KR;
  pl->nkb = 1;
  if (nt > 1 && nblk % nt && nblk < 8 * nt) {
    if (!bww && nblk < nt && pl->KG >= 2 * nt) { /* too few tiles for the threads: split K */
      int64_t parts = ceil_div64(nt, nblk);
      pl->kb = ceil_div64(pl->KG, parts) * WINO_KR;
      pl->nkb = ceil_div64(pl->KG * WINO_KR, pl->kb);
    } else { /* a multiple of the threads, with smaller blocks */
      nblk = imin64(ceil_div64(nblk, nt) * nt, ceil_div64(pl->NT, WINO_L));
    }
  }
  /* the same number of blocks with the fewest wasted lanes */
  pl->tb = ceil_div64(ceil_div64(pl->NT, nblk), WINO_L) * WINO_L;
  pl->nblk = ceil_div64(pl->NT, pl->tb);
  pl->wp = 4 * pl->TW + 4;
  pl->nseg = imin64(ceil_div64(pl->tb, pl->TW) + 1, pl->tb);
  pl->rbs = ceil_div64(pl->nseg * 6 * pl->wp, 16) * 16;
  pl->v_off = 0;
  if (bww) { /* V[36][tb][cp], Y[36][tb/WINO_L][kp][WINO_L], S[36][kp][cp], 8 row buffers */
    pl->kp = pl->KG * WINO_KR;
    pl->cp = ceil_div64(C, WINO_L) * WINO_L;
    pl->vs = wino_stride(pl->tb * pl->cp);
    pl->ys = wino_stride(pl->tb * pl->kp);
    pl->m_off = round64((size_t)(WINO_PTS * pl->vs) * sizeof(float));
    pl->s_off = pl->m_off + round64((size_t)(WINO_PTS * pl->ys) * sizeof(float));
    pl->r_off = pl->s_off + round64((size_t)(WINO_PTS * pl->kp * pl->cp) * sizeof(float));
    pl->t_off = pl->r_off + round64((size_t)(8 * pl->rbs + pl->nseg * 4 * pl->wp) * sizeof(float));
  } else { /* V[36][tb/WINO_L][C][WINO_L], M[kb][tb/WINO_L][36][WINO_L], a row buffer */
    pl->us = wino_stride(pl->KG * WINO_KR * C);
    pl->vs = wino_stride(pl->tb * C);
    pl->u_bytes = round64((size_t)(WINO_PTS * pl->us) * sizeof(float));
    pl->m_off = round64((size_t)(WINO_PTS * pl->vs) * sizeof(float));
    pl->r_off = pl->m_off + round64((size_t)(WINO_PTS * pl->kb * pl->tb) * sizeof(float));
    pl->t_off = pl->r_off + round64((size_t)pl->rbs * sizeof(float));
  }
  pl->thr_bytes = pl->t_off + round64((size_t)pl->tb * (sizeof(wino_out) + 2 * sizeof(int32_t)) +
                                      (size_t)pl->nseg * sizeof(wino_seg));
}

static size_t wino_ws_bytes(const wino_plan *pl, int nt) {
  return pl->u_bytes + (size_t)(nt < 1 ? 1 : nt) * pl->thr_bytes;
}

size_t nnk_wino_ws_query(const nnk_conv *g, int bww) {
  wino_plan pl;
  const int nt = max_threads();
  wino_plan_make(&pl, g, nt, bww);
  return wino_ws_bytes(&pl, nt);
}

/* G x for 3 rows of n lanes -> 6 rows: G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6;
 * 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1] */
#define WINO_G(y, ys, x, xs, n)                                                                 \
  do {                                                                                          \
    NNK_SIMD                                                                                    \
    for (int l = 0; l < (n); l++) {                                                             \
      const float x0 = (x)[l], x1 = (x)[(xs) + l], x2 = (x)[2 * (xs) + l];                      \
      const float p_ = x0 + x2, q_ = 0.25f * x0 + x2, r_ = 0.5f * x1;                           \
      (y)[l] = 0.25f * x0;                                                                      \
      (y)[(ys) + l] = (p_ + x1) * (-1.0f / 6);                                                  \
      (y)[2 * (ys) + l] = (p_ - x1) * (-1.0f / 6);                                              \
      (y)[3 * (ys) + l] = (q_ + r_) * (1.0f / 6);                                               \
      (y)[4 * (ys) + l] = (q_ - r_) * (1.0f / 6);                                               \
      (y)[5 * (ys) + l] = x2;                                                                   \
    }                                                                                           \
  } while (0)

/* lanes of the filter transform: 8 input channels x the WINO_KR rows of a row group */
#define WINO_FL (8 * WINO_KR)

/* U[xi][kg][c][r] = (G w[kg*WINO_KR + r][c] G^T)[xi] (zero for padding rows), for the row
 * groups [kg0, kg1); the lanes run over (c, r) as U stores them */
NNK_CLONES static void wino_filter(float *U, const float *w, const nnk_conv *g,
                                   const wino_plan *pl, int64_t kg0, int64_t kg1) {
  const int64_t C = g->C, K = g->K;
  float x[9 * WINO_FL], t[18 * WINO_FL], u[WINO_PTS * WINO_FL];
  for (int64_t kg = kg0; kg < kg1; kg++)
    for (int64_t c0 = 0; c0 < C; c0 += 8) {
      const int64_t nc = imin64(8, C - c0);
      for (int64_t c = 0; c < 8; c++)
        for (int r = 0; r < WINO_KR; r++) {
          const int64_t k = kg * WINO_KR + r, l = c * WINO_KR + r;
          if (k < K && c < nc) {
            const float *wk = w + (k * C + c0 + c) * 9;
            for (int e = 0; e < 9; e++) x[e * WINO_FL + l] = wk[e];
          } else {
            for (int e = 0; e < 9; e++) x[e * WINO_FL + l] = 0.0f;
          }
        }
      /* columns: t[i][j] = (G w)[i][j] (6 x 3); rows: u[i][j] = (t G^T)[i][j] (6 x 6) */
      for (int j = 0; j < 3; j++)
        WINO_G(t + j * WINO_FL, 3 * WINO_FL, x + j * WINO_FL, 3 * WINO_FL, WINO_FL);
      float *dst = U + (kg * C + c0) * WINO_KR;
      if (nc == 8) { /* straight into U: its 48 floats of each point are the lanes */
        for (int i = 0; i < 6; i++)
          WINO_G(dst + i * 6 * pl->us, pl->us, t + i * 3 * WINO_FL, WINO_FL, WINO_FL);
        continue;
      }
      for (int i = 0; i < 6; i++)
        WINO_G(u + i * 6 * WINO_FL, WINO_FL, t + i * 3 * WINO_FL, WINO_FL, WINO_FL);
      for (int xi = 0; xi < WINO_PTS; xi++)
        memcpy(dst + xi * pl->us, u + xi * WINO_FL, (size_t)(nc * WINO_KR) * sizeof(float));
    }
}

/* ---- transforms on 8-lane vectors (one lane per tile) ---------------------------------- */

typedef float wino_v8 __attribute__((vector_size(32)));
typedef int32_t wino_i8 __attribute__((vector_size(32)));
#define WINO_LD(v, p) memcpy(&(v), (p), sizeof(wino_v8))
#define WINO_ST(p, v) memcpy((p), &(v), sizeof(wino_v8))
#define WINO_SHUF(a, b, ...) __builtin_shuffle((a), (b), (wino_i8){__VA_ARGS__})

/* B^T x: 6 vectors x[0], x[xs], ... -> y[0], y[ys], ... (B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0;
 * 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]) */
#define WINO_BT(y, ys, x, xs)                                                                   \
  do {                                                                                          \
    const wino_v8 x0 = (x)[0], x1 = (x)[xs], x2 = (x)[2 * (xs)], x3 = (x)[3 * (xs)];            \
    const wino_v8 x4 = (x)[4 * (xs)], x5 = (x)[5 * (xs)];                                       \
    const wino_v8 p_ = x4 - 4 * x2, q_ = x3 - 4 * x1, r_ = x4 - x2, s_ = 2 * (x3 - x1);         \
    (y)[0] = 4 * x0 - 5 * x2 + x4;                                                              \
    (y)[ys] = p_ + q_;                                                                          \
    (y)[2 * (ys)] = p_ - q_;                                                                    \
    (y)[3 * (ys)] = r_ + s_;                                                                    \
    (y)[4 * (ys)] = r_ - s_;                                                                    \
    (y)[5 * (ys)] = 4 * x1 - 5 * x3 + x5;                                                       \
  } while (0)

/* A^T m: 6 vectors -> 4 (A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]) */
#define WINO_AT(y, ys, m, ms)                                                                   \
  do {                                                                                          \
    const wino_v8 m0 = (m)[0], m1 = (m)[ms], m2 = (m)[2 * (ms)], m3 = (m)[3 * (ms)];            \
    const wino_v8 m4 = (m)[4 * (ms)], m5 = (m)[5 * (ms)];                                       \
    const wino_v8 p_ = m1 + m2, q_ = m1 - m2, r_ = m3 + m4, s_ = m3 - m4;                       \
    (y)[0] = m0 + p_ + r_;                                                                      \
    (y)[ys] = q_ + 2 * s_;                                                                      \
    (y)[2 * (ys)] = p_ + 4 * r_;                                                                \
    (y)[3 * (ys)] = q_ + 8 * s_ + m5;                                                           \
  } while (0)

/* transposes 8 rows r[0..7] (8 floats each) and keeps columns 0..5: c[j] = (r[0][j], ...) */
#define WINO_TRANSPOSE86(c, r)                                                                  \
  do {                                                                                          \
    const wino_v8 t0_ = WINO_SHUF(r[0], r[1], 0, 8, 1, 9, 4, 12, 5, 13);                        \
    const wino_v8 t1_ = WINO_SHUF(r[0], r[1], 2, 10, 3, 11, 6, 14, 7, 15);                      \
    const wino_v8 t2_ = WINO_SHUF(r[2], r[3], 0, 8, 1, 9, 4, 12, 5, 13);                        \
    const wino_v8 t3_ = WINO_SHUF(r[2], r[3], 2, 10, 3, 11, 6, 14, 7, 15);                      \
    const wino_v8 t4_ = WINO_SHUF(r[4], r[5], 0, 8, 1, 9, 4, 12, 5, 13);                        \
    const wino_v8 t5_ = WINO_SHUF(r[4], r[5], 2, 10, 3, 11, 6, 14, 7, 15);                      \
    const wino_v8 t6_ = WINO_SHUF(r[6], r[7], 0, 8, 1, 9, 4, 12, 5, 13);                        \
    const wino_v8 t7_ = WINO_SHUF(r[6], r[7], 2, 10, 3, 11, 6, 14, 7, 15);                      \
    const wino_v8 u0_ = WINO_SHUF(t0_, t2_, 0, 1, 8, 9, 4, 5, 12, 13);                          \
    const wino_v8 u1_ = WINO_SHUF(t0_, t2_, 2, 3, 10, 11, 6, 7, 14, 15);                        \
    const wino_v8 u2_ = WINO_SHUF(t1_, t3_, 0, 1, 8, 9, 4, 5, 12, 13);                          \
    const wino_v8 u3_ = WINO_SHUF(t1_, t3_, 2, 3, 10, 11, 6, 7, 14, 15);                        \
    const wino_v8 u4_ = WINO_SHUF(t4_, t6_, 0, 1, 8, 9, 4, 5, 12, 13);                          \
    const wino_v8 u5_ = WINO_SHUF(t4_, t6_, 2, 3, 10, 11, 6, 7, 14, 15);                        \
    const wino_v8 u6_ = WINO_SHUF(t5_, t7_, 0, 1, 8, 9, 4, 5, 12, 13);                          \
    const wino_v8 u7_ = WINO_SHUF(t5_, t7_, 2, 3, 10, 11, 6, 7, 14, 15);                        \
    (c)[0] = WINO_SHUF(u0_, u4_, 0, 1, 2, 3, 8, 9, 10, 11);                                     \
    (c)[1] = WINO_SHUF(u1_, u5_, 0, 1, 2, 3, 8, 9, 10, 11);                                     \
    (c)[2] = WINO_SHUF(u2_, u6_, 0, 1, 2, 3, 8, 9, 10, 11);                                     \
    (c)[3] = WINO_SHUF(u3_, u7_, 0, 1, 2, 3, 8, 9, 10, 11);                                     \
    (c)[4] = WINO_SHUF(u0_, u4_, 4, 5, 6, 7, 12, 13, 14, 15);                                   \
    (c)[5] = WINO_SHUF(u1_, u5_, 4, 5, 6, 7, 12, 13, 14, 15);                                   \
  } while (0)

/* The tiles of block [t0, t0+nb): its tile row segments, and for each tile the offset of its
 * 6x6 input window in the row buffer (padded rows of wp floats: the input rows of each image's
 * segments, 4 per tile row + 2), its output, and (off_d, if not NULL) the offset of its 4x4
 * output window in the row buffer filled with dout (4 rows per segment). Returns the segment
 * count. */
static int64_t wino_tiles(wino_seg *seg, int32_t *off_in, int32_t *off_d, wino_out *to,
                          const nnk_conv *g, const wino_plan *pl, int64_t t0, int64_t nb) {
  const int64_t per = pl->TH * pl->TW;
  int64_t n = t0 / per, ty = (t0 % per) / pl->TW, tx = t0 % pl->TW, ns = 0;
  for (int64_t t = 0; t < nb; t++) {
    if (t == 0 || tx == 0) {
      int32_t row = 0;
      if (ns > 0) /* the next 4 rows of the same image, or 6 rows past the last image's end */
        row = seg[ns - 1].row + (seg[ns - 1].n == n ? 4 : 6);
      seg[ns++] = (wino_seg){(int32_t)n, (int32_t)ty, (int32_t)tx, (int32_t)tx, row};
    }
    seg[ns - 1].tx1++;
    off_in[t] = (int32_t)(seg[ns - 1].row * pl->wp + 4 * tx);
    if (off_d) off_d[t] = (int32_t)((ns - 1) * 4 * pl->wp + 4 * tx);
    to[t] = (wino_out){(n * g->K * g->P + 4 * ty) * g->Q + 4 * tx,
                       (int32_t)imin64(4, g->P - 4 * ty), (int32_t)imin64(4, g->Q - 4 * tx)};
    if (++tx == pl->TW) {
      tx = 0;
      if (++ty == pl->TH) ty = 0, n++;
    }
  }
  return ns;
}

/* d[0..n) = s[0..n) for the short rows here, without a library call: 8 floats at a time and
 * an overlapping last move (4 below 8 floats) */
static inline void wino_copy(float *d, const float *s, int64_t n) {
  if (n >= 8) {
    for (int64_t i = 0; i + 8 <= n; i += 8) memcpy(d + i, s + i, 8 * sizeof(float));
    memcpy(d + n - 8, s + n - 8, 8 * sizeof(float));
  } else if (n >= 4) {
    memcpy(d, s, 4 * sizeof(float));
    memcpy(d + n - 4, s + n - 4, 4 * sizeof(float));
  } else {
    for (int64_t i = 0; i < n; i++) d[i] = s[i];
  }
}

/* rows of the row buffer that the block uses (segments of one image share rows) */
static int64_t wino_rows(const wino_seg *seg, int64_t nseg) { return seg[nseg - 1].row + 6; }

/* The row buffer rb holds the padded input rows of channel c that the block's tiles read. It
 * is zeroed once per block (the padding stays zero); this copies the rows of channel c in. */
static void wino_fill(float *rb, const float *inp, int64_t c, const nnk_conv *g,
                      const wino_plan *pl, const wino_seg *seg, int64_t nseg) {
  const int64_t H = g->H, W = g->W, pw = imin64(g->pad_w, pl->wp);
  const int64_t ncol = imin64(W, pl->wp - pw);
  for (int64_t s = 0; s < nseg; s++) { /* each image's rows once */
    const int64_t r0 = s > 0 && seg[s - 1].n == seg[s].n ? seg[s].row + 2 : seg[s].row;
    const int64_t y0 = 4 * (int64_t)seg[s].ty - g->pad_h - seg[s].row;
    const int64_t ra = imax64(r0, -y0), rz = imin64(seg[s].row + 6, H - y0);
    const float *x = inp + ((int64_t)seg[s].n * g->C + c) * H * W;
    for (int64_t r = ra; r < rz; r++) wino_copy(rb + r * pl->wp + pw, x + (y0 + r) * W, ncol);
  }
}

/* V[xi][tg][c][l] = (B^T d B)[xi] for tile tg*WINO_L + l of the block (the lanes past nb
 * repeat its last tile, or are zero in the other half of a tile group); rb: the row buffer */
NNK_CLONES static void wino_input(float *V, float *rb, const float *inp, const nnk_conv *g,
                                  const wino_plan *pl, const wino_seg *seg, int64_t nseg,
                                  const int32_t *off, int64_t nb) {
  const int64_t C = g->C, vs = pl->vs, wp = pl->wp;
  for (int64_t c = 0; c < C; c++) {
    wino_fill(rb, inp, c, g, pl, seg, nseg);
    for (int64_t t0 = 0; t0 < nb; t0 += 8) {
      const float *p[8];
      for (int l = 0; l < 8; l++) p[l] = rb + off[imin64(t0 + l, nb - 1)];
      wino_v8 d[36], t[36], r[8];
      if (t0 + 8 >= nb && (t0 & 8) == 0) { /* the other half of the last tile group */
        float *v = V + t0 * C + c * WINO_L + 8;
        for (int xi = 0; xi < WINO_PTS; xi++) memcpy(v + xi * vs, &(wino_v8){0}, sizeof(wino_v8));
      }
      for (int i = 0; i < 6; i++) {
        for (int l = 0; l < 8; l++) WINO_LD(r[l], p[l] + i * wp);
        WINO_TRANSPOSE86(d + i * 6, r);
      }
      /* columns: t = B^T d; rows: V = t B, stored */
      for (int j = 0; j < 6; j++) WINO_BT(t + j, 6, d + j, 6);
      float *v = V + (t0 & ~(int64_t)(WINO_L - 1)) * C + c * WINO_L + (t0 & (WINO_L - 1));
      for (int i = 0; i < 6; i++) {
        wino_v8 y[6];
        WINO_BT(y, 1, t + i * 6, 1);
        for (int j = 0; j < 6; j++) WINO_ST(v + (i * 6 + j) * vs, y[j]);
      }
    }
  }
}

/* the products of one transform point: m[r][l] = sum_c u[c][r] v[c][l] for WINO_KR rows and
 * WINO_L lanes, rows ms floats apart in m; u (C x WINO_KR) and v (C x WINO_L) come packed from
 * the transforms, which sgemm would copy again on every call. 12 accumulators of 8 floats. */
NNK_CLONES static void wino_kernel(float *m, int64_t ms, const float *u, const float *v,
                                   int64_t C) {
  wino_v8 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
  wino_v8 c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
  for (int64_t c = 0; c < C; c++, u += WINO_KR, v += WINO_L) {
    wino_v8 b0, b1;
    WINO_LD(b0, v);
    WINO_LD(b1, v + 8);
    float a = u[0];
    c00 += a * b0, c01 += a * b1;
    a = u[1];
    c10 += a * b0, c11 += a * b1;
    a = u[2];
    c20 += a * b0, c21 += a * b1;
    a = u[3];
    c30 += a * b0, c31 += a * b1;
    a = u[4];
    c40 += a * b0, c41 += a * b1;
    a = u[5];
    c50 += a * b0, c51 += a * b1;
  }
  WINO_ST(m, c00), WINO_ST(m + 8, c01), m += ms;
  WINO_ST(m, c10), WINO_ST(m + 8, c11), m += ms;
  WINO_ST(m, c20), WINO_ST(m + 8, c21), m += ms;
  WINO_ST(m, c30), WINO_ST(m + 8, c31), m += ms;
  WINO_ST(m, c40), WINO_ST(m + 8, c41), m += ms;
  WINO_ST(m, c50), WINO_ST(m + 8, c51);
}

/* out[n][k0+k] = A^T m A + bias for k in [0, nk), m from M[k][tg][xi][l] */
NNK_CLONES static void wino_output(float *out, const float *M, const float *bias,
                                   const nnk_conv *g, const wino_plan *pl, const wino_out *to,
                                   int64_t nb, int64_t k0, int64_t nk) {
  const int64_t PQ = (int64_t)g->P * g->Q, Q = g->Q;
  for (int64_t k = 0; k < nk; k++) {
    const float b = bias ? bias[k0 + k] : 0.0f;
    float *yk = out + (k0 + k) * PQ;
    for (int64_t t0 = 0; t0 < nb; t0 += 8) {
      const float *m = M + (k * pl->tb + (t0 & ~(int64_t)(WINO_L - 1))) * WINO_PTS +
                       (t0 & (WINO_L - 1));
      wino_v8 mv[36], t[24];
      for (int xi = 0; xi < WINO_PTS; xi++) WINO_LD(mv[xi], m + xi * WINO_L);
      /* columns: t = A^T m (4 x 6); rows: o = t A (4 x 4), 4 floats per lane and row */
      for (int j = 0; j < 6; j++) WINO_AT(t + j, 6, mv + j, 6);
      const int nl = (int)imin64(8, nb - t0);
      for (int i = 0; i < 4; i++) {
        wino_v8 o[4];
        WINO_AT(o, 1, t + i * 6, 1);
        for (int j = 0; j < 4; j++) o[j] += b;
        const wino_v8 a_ = WINO_SHUF(o[0], o[1], 0, 8, 1, 9, 4, 12, 5, 13);
        const wino_v8 b_ = WINO_SHUF(o[0], o[1], 2, 10, 3, 11, 6, 14, 7, 15);
        const wino_v8 c_ = WINO_SHUF(o[2], o[3], 0, 8, 1, 9, 4, 12, 5, 13);
        const wino_v8 d_ = WINO_SHUF(o[2], o[3], 2, 10, 3, 11, 6, 14, 7, 15);
        float e[4][8]; /* e[q]: lane q in its low half, lane q + 4 in its high half */
        const wino_v8 e0 = WINO_SHUF(a_, c_, 0, 1, 8, 9, 4, 5, 12, 13);
        const wino_v8 e1 = WINO_SHUF(a_, c_, 2, 3, 10, 11, 6, 7, 14, 15);
        const wino_v8 e2 = WINO_SHUF(b_, d_, 0, 1, 8, 9, 4, 5, 12, 13);
        const wino_v8 e3 = WINO_SHUF(b_, d_, 2, 3, 10, 11, 6, 7, 14, 15);
        WINO_ST(e[0], e0), WINO_ST(e[1], e1), WINO_ST(e[2], e2), WINO_ST(e[3], e3);
        for (int l = 0; l < nl; l++) {
          const wino_out *tp = &to[t0 + l];
          if (i >= tp->ni) continue;
          float *y = yk + tp->off + i * Q;
          const float *src = &e[l & 3][l & 4];
          if (tp->nj == 4) {
            memcpy(y, src, 4 * sizeof(float));
          } else {
            for (int j = 0; j < tp->nj; j++) y[j] = src[j];
          }
        }
      }
    }
  }
}

/* Returns 1 when Winograd does not apply (the caller goes on with im2col), else 0 or -1 */
int nnk_wino_forward_f32(float *out, const float *inp, const float *weight, const float *bias,
                         const nnk_conv *g, void *ws, size_t ws_bytes) {
  if (!nnk_wino_use(g, sizeof(float))) return 1;
  wino_plan pl;
  int nt = max_threads();
  wino_plan_make(&pl, g, nt, 0);
  void *w = ws;
  if (ws) { /* fewer threads until it fits (the K split, and so the sizes, depend on them) */
    while (nt > 0 && wino_ws_bytes(&pl, nt) > ws_bytes)
      if (--nt > 0) wino_plan_make(&pl, g, nt, 0);
    if (nt < 1) return -1;
  } else {
    w = aligned_alloc(64, wino_ws_bytes(&pl, nt));
    if (!w) return -1;
  }
  const int64_t units = pl.nblk * pl.nkb, C = g->C;
  const double macs = (double)g->N * g->K * C * 9.0 * g->P * g->Q;
  if (macs < 65536.0) nt = 1;
  float *U = (float *)w;
  NNK_OMP(parallel num_threads(nt) if (nt > 1))
  {
    char *base = (char *)w + pl.u_bytes + (size_t)omp_get_thread_num() * pl.thr_bytes;
    float *V = (float *)(base + pl.v_off), *M = (float *)(base + pl.m_off);
    float *rb = (float *)(base + pl.r_off);
    wino_out *to = (wino_out *)(base + pl.t_off);
    int32_t *off_in = (int32_t *)(to + pl.tb);
    wino_seg *seg = (wino_seg *)(off_in + 2 * pl.tb);
    int64_t have = -1, nseg = 0; /* tile block whose transform V holds */
    NNK_OMP(for schedule(static))
    for (int64_t kg = 0; kg < pl.KG; kg++) wino_filter(U, weight, g, &pl, kg, kg + 1);
    NNK_OMP(for schedule(static))
    for (int64_t u = 0; u < units; u++) {
      const int64_t blk = u / pl.nkb, k0 = (u % pl.nkb) * pl.kb;
      const int64_t nk = imin64(pl.kb, g->K - k0), t0 = blk * pl.tb, nb = imin64(pl.tb, pl.NT - t0);
      const int64_t ntg = ceil_div64(nb, WINO_L), ms = pl.tb * WINO_PTS;
      if (have != blk) {
        nseg = wino_tiles(seg, off_in, NULL, to, g, &pl, t0, nb);
        memset(rb, 0, (size_t)(wino_rows(seg, nseg) * pl.wp) * sizeof(float));
        wino_input(V, rb, inp, g, &pl, seg, nseg, off_in, nb);
        have = blk;
      }
      /* a row group's U panel stays in L1 while it meets every tile group's V panel (V[xi]
       * in L2): measured 10-40% faster than the other order */
      for (int xi = 0; xi < WINO_PTS; xi++)
        for (int64_t kr = 0; kr < nk; kr += WINO_KR)
          for (int64_t tg = 0; tg < ntg; tg++)
            wino_kernel(M + (kr * pl.tb + tg * WINO_L) * WINO_PTS + xi * WINO_L, ms,
                        U + xi * pl.us + (k0 + kr) * C, V + xi * pl.vs + tg * WINO_L * C, C);
      wino_output(out, M, bias, g, &pl, to, nb, k0, nk);
    }
  }
  if (!ws) free(w);
  return 0;
}

/* ---- backward_weight -------------------------------------------------------------------
 * out = A^T [U . V] A is bilinear in U = G w G^T, so dw = G^T [sum over tiles (A dy A^T) . V] G
 * with V = B^T d B as in the forward pass: per transform point, S[xi] (K x C) = Y[xi] (K x
 * tiles) . V[xi]^T (tiles x C), accumulated per thread over its tile blocks and summed at the
 * end. The product kernel is the forward one turned around (6 output channels broadcast, 16
 * input channels as lanes), so here V is transformed with channels as lanes. */

/* The dispatch rule of backward_weight (mode 1), measured as the forward one: input channels
 * are the kernel's lanes, so few of them favour im2col longer (C=8, K=64: 1.1x; C=12: Winograd
 * by 1.2x, C=16: 1.5x). Each thread's S[36][K][C] is zeroed and summed on every call, which
 * outweighs the products with few tiles (C=64, K=64, 32x32, 64 tiles: im2col 1.2x faster;
 * 256 -> 512 channels: 1.5x at 64 tiles, Winograd 1.5x at 256) and costs memory: above 16 MB
 * per thread (K*C > 116K) im2col is used. */
int nnk_wino_use_bww(const nnk_conv *g, size_t esize) {
  if (esize != sizeof(float) || nnk_conv_check(g) || !wino_applies(g)) return 0;
  const int m = nnk_wino_mode();
  if (m != 1) return m == 2;
  const int64_t tiles = (int64_t)g->N * ceil_div64(g->P, 4) * ceil_div64(g->Q, 4);
  const int64_t s_bytes = WINO_PTS * ceil_div64(g->K, 6) * 6 * ceil_div64(g->C, 16) * 16 * 4;
  return wino_isa() && g->C >= 12 && tiles >= 128 && s_bytes <= (16 << 20);
}

/* V[xi][t][c] = (B^T d B)[xi] for tile t of the block and channel c, 8 channels at a time as
 * lanes (past C they repeat the first channel of the group); rb: 8 row buffers */
NNK_CLONES static void wino_input_t(float *V, float *rb, const float *inp, const nnk_conv *g,
                                    const wino_plan *pl, const wino_seg *seg, int64_t nseg,
                                    const int32_t *off, int64_t nb) {
  const int64_t C = g->C, wp = pl->wp, vs = pl->vs, cp = pl->cp, rbs = pl->rbs;
  for (int64_t c0 = 0; c0 < C; c0 += 8) {
    const int64_t nc = imin64(8, C - c0);
    for (int64_t l = 0; l < nc; l++) wino_fill(rb + l * rbs, inp, c0 + l, g, pl, seg, nseg);
    for (int64_t t = 0; t < nb; t++) {
      wino_v8 d[36], tt[36], r[8];
      for (int i = 0; i < 6; i++) {
        for (int l = 0; l < 8; l++) WINO_LD(r[l], rb + (l < nc ? l : 0) * rbs + off[t] + i * wp);
        WINO_TRANSPOSE86(d + i * 6, r);
      }
      for (int j = 0; j < 6; j++) WINO_BT(tt + j, 6, d + j, 6);
      float *v = V + t * cp + c0;
      for (int i = 0; i < 6; i++) {
        wino_v8 y[6];
        WINO_BT(y, 1, tt + i * 6, 1);
        for (int j = 0; j < 6; j++) WINO_ST(v + (i * 6 + j) * vs, y[j]);
      }
    }
  }
}

/* A x: 4 vectors -> 6 (A = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1]) */
#define WINO_A(y, ys, x, xs)                                                                    \
  do {                                                                                          \
    const wino_v8 x0 = (x)[0], x1 = (x)[xs], x2 = (x)[2 * (xs)], x3 = (x)[3 * (xs)];            \
    const wino_v8 p_ = x0 + x2, q_ = x1 + x3, r_ = x0 + 4 * x2, s_ = 2 * x1 + 8 * x3;           \
    (y)[0] = x0;                                                                                \
    (y)[ys] = p_ + q_;                                                                          \
    (y)[2 * (ys)] = p_ - q_;                                                                    \
    (y)[3 * (ys)] = r_ + s_;                                                                    \
    (y)[4 * (ys)] = r_ - s_;                                                                    \
    (y)[5 * (ys)] = x3;                                                                         \
  } while (0)

/* Y[xi][tg][k][l] = (A y A^T)[xi] of the 4x4 dout window y of tile tg*WINO_L + l of the block
 * (zero outside the plane); rb: the dout row buffer (4 rows per segment, zeroed per block) */
NNK_CLONES static void wino_dout(float *Y, float *rb, const float *dout, const nnk_conv *g,
                                 const wino_plan *pl, const wino_seg *seg, int64_t nseg,
                                 const int32_t *off, int64_t nb) {
  const int64_t K = g->K, P = g->P, Q = g->Q, PQ = P * Q, ys = pl->ys, wp = pl->wp;
  memset(rb, 0, (size_t)(nseg * 4 * wp) * sizeof(float));
  for (int64_t k = 0; k < K; k++) {
    for (int64_t s = 0; s < nseg; s++) {
      const int64_t q0 = 4 * (int64_t)seg[s].tx0, q1 = imin64(4 * (int64_t)seg[s].tx1, Q);
      const int64_t ni = imin64(4, P - 4 * (int64_t)seg[s].ty);
      const float *y = dout + ((int64_t)seg[s].n * K + k) * PQ + 4 * (int64_t)seg[s].ty * Q;
      for (int64_t i = 0; i < ni; i++) wino_copy(rb + (s * 4 + i) * wp + q0, y + i * Q + q0, q1 - q0);
    }
    for (int64_t t0 = 0; t0 < nb; t0 += 8) {
      const float *p[8];
      for (int l = 0; l < 8; l++) p[l] = rb + off[imin64(t0 + l, nb - 1)];
      wino_v8 d[24], t[24], r[8];
      for (int i = 0; i < 4; i++) {
        for (int l = 0; l < 8; l++) WINO_LD(r[l], p[l] + i * wp);
        WINO_TRANSPOSE86(d + i * 6, r); /* columns 4 and 5 unused */
      }
      /* columns: t = A y (6 x 4); rows: Y = t A^T, stored */
      for (int j = 0; j < 4; j++) WINO_A(t + j, 4, d + j, 6);
      float *yo = Y + (t0 & ~(int64_t)(WINO_L - 1)) * pl->kp + k * WINO_L + (t0 & (WINO_L - 1));
      for (int i = 0; i < 6; i++) {
        wino_v8 z[6];
        WINO_A(z, 1, t + i * 4, 1);
        for (int j = 0; j < 6; j++) WINO_ST(yo + (i * 6 + j) * ys, z[j]);
      }
    }
  }
}

/* s[r][c] += sum over tiles t < nb of y[r][t] v[t][c] for WINO_KR rows r and WINO_L lanes c:
 * rows of s ls apart; y in groups of WINO_L tiles (rows WINO_L apart, groups yg apart); rows
 * of v ldv apart */
NNK_CLONES static void wino_outer(float *s, int64_t ls, const float *y, int64_t yg,
                                  const float *v, int64_t ldv, int64_t nb) {
  wino_v8 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
  wino_v8 c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
  for (int64_t t0 = 0; t0 < nb; t0 += WINO_L, y += yg) {
    const int64_t nl = imin64(WINO_L, nb - t0);
    for (int64_t l = 0; l < nl; l++, v += ldv) {
      wino_v8 b0, b1;
      WINO_LD(b0, v);
      WINO_LD(b1, v + 8);
      float a = y[l];
      c00 += a * b0, c01 += a * b1;
      a = y[WINO_L + l];
      c10 += a * b0, c11 += a * b1;
      a = y[2 * WINO_L + l];
      c20 += a * b0, c21 += a * b1;
      a = y[3 * WINO_L + l];
      c30 += a * b0, c31 += a * b1;
      a = y[4 * WINO_L + l];
      c40 += a * b0, c41 += a * b1;
      a = y[5 * WINO_L + l];
      c50 += a * b0, c51 += a * b1;
    }
  }
  wino_v8 o0, o1;
#define WINO_ACC(r, a0, a1)                                                                     \
  WINO_LD(o0, s + (r) * ls), WINO_LD(o1, s + (r) * ls + 8), o0 += a0, o1 += a1,                 \
      WINO_ST(s + (r) * ls, o0), WINO_ST(s + (r) * ls + 8, o1)
  WINO_ACC(0, c00, c01);
  WINO_ACC(1, c10, c11);
  WINO_ACC(2, c20, c21);
  WINO_ACC(3, c30, c31);
  WINO_ACC(4, c40, c41);
  WINO_ACC(5, c50, c51);
#undef WINO_ACC
}

/* dweight[k][c] = G^T (sum over the nt threads' S of [xi][k][c]) G, in double, for k in
 * [k0, k1); S of thread t at S0 + t * stride floats */
static void wino_dweight(float *dweight, const float *S0, size_t stride, int nt,
                         const nnk_conv *g, const wino_plan *pl, int64_t k0, int64_t k1) {
  static const double G[6][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                 {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                 {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
  const int64_t C = g->C, KC = pl->kp * pl->cp;
  for (int64_t k = k0; k < k1; k++)
    for (int64_t c = 0; c < C; c++) {
      double u[WINO_PTS], t[6][3];
      for (int xi = 0; xi < WINO_PTS; xi++) {
        double a = 0;
        for (int th = 0; th < nt; th++) a += S0[(size_t)th * stride + xi * KC + k * pl->cp + c];
        u[xi] = a;
      }
      for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++) {
          double a = 0;
          for (int b = 0; b < 6; b++) a += u[i * 6 + b] * G[b][j];
          t[i][j] = a;
        }
      float *dw = dweight + (k * C + c) * 9;
      for (int r = 0; r < 3; r++)
        for (int j = 0; j < 3; j++) {
          double a = 0;
          for (int i = 0; i < 6; i++) a += G[i][r] * t[i][j];
          dw[r * 3 + j] = (float)a;
        }
    }
}

/* Returns 1 when Winograd does not apply (the caller goes on with im2col), else 0 or -1 */
int nnk_wino_backward_weight_f32(float *dweight, const float *inp, const float *dout,
                                 const nnk_conv *g, void *ws, size_t ws_bytes) {
  if (!nnk_wino_use_bww(g, sizeof(float))) return 1;
  wino_plan pl;
  int nt = max_threads();
  wino_plan_make(&pl, g, nt, 1);
  void *w = ws;
  if (ws) {
    while (nt > 0 && wino_ws_bytes(&pl, nt) > ws_bytes)
      if (--nt > 0) wino_plan_make(&pl, g, nt, 1);
    if (nt < 1) return -1;
  } else {
    w = aligned_alloc(64, wino_ws_bytes(&pl, nt));
    if (!w) return -1;
  }
  const int64_t K = g->K, kp = pl.kp, cp = pl.cp;
  const double macs = (double)g->N * K * g->C * 9.0 * g->P * g->Q;
  if (macs < 65536.0) nt = 1;
  if (pl.nblk < nt) nt = (int)pl.nblk;
  NNK_OMP(parallel num_threads(nt) if (nt > 1))
  {
    const int nth = omp_get_num_threads();
    char *base = (char *)w + (size_t)omp_get_thread_num() * pl.thr_bytes;
    float *V = (float *)(base + pl.v_off), *Y = (float *)(base + pl.m_off);
    float *S = (float *)(base + pl.s_off), *rb = (float *)(base + pl.r_off);
    wino_out *to = (wino_out *)(base + pl.t_off);
    int32_t *off_in = (int32_t *)(to + pl.tb), *off_d = off_in + pl.tb;
    wino_seg *seg = (wino_seg *)(off_in + 2 * pl.tb);
    /* padding rows of Y and channels of V stay zero; S accumulates */
    memset(V, 0, pl.m_off - pl.v_off);
    memset(Y, 0, pl.s_off - pl.m_off);
    memset(S, 0, (size_t)(WINO_PTS * kp * cp) * sizeof(float));
    NNK_OMP(for schedule(static))
    for (int64_t blk = 0; blk < pl.nblk; blk++) {
      const int64_t t0 = blk * pl.tb, nb = imin64(pl.tb, pl.NT - t0);
      const int64_t nseg = wino_tiles(seg, off_in, off_d, to, g, &pl, t0, nb);
      for (int l = 0; l < 8; l++)
        memset(rb + l * pl.rbs, 0, (size_t)(wino_rows(seg, nseg) * pl.wp) * sizeof(float));
      wino_input_t(V, rb, inp, g, &pl, seg, nseg, off_in, nb);
      wino_dout(Y, rb + 8 * pl.rbs, dout, g, &pl, seg, nseg, off_d, nb);
      /* a V panel (nb x 16 channels) stays in L1 while it meets every row group of Y[xi] */
      for (int xi = 0; xi < WINO_PTS; xi++)
        for (int64_t c = 0; c < cp; c += WINO_L)
          for (int64_t k = 0; k < kp; k += WINO_KR)
            wino_outer(S + (xi * kp + k) * cp + c, cp, Y + xi * pl.ys + k * WINO_L,
                       kp * WINO_L, V + xi * pl.vs + c, cp, nb);
    }
    NNK_OMP(for schedule(static))
    for (int64_t k = 0; k < K; k++)
      wino_dweight(dweight, (const float *)((char *)w + pl.s_off), pl.thr_bytes / sizeof(float),
                   nth, g, &pl, k, k + 1);
  }
  if (!ws) free(w);
  return 0;
}
