/* polyphase.c: f32 convolutions with a 4x4 kernel, stride 2, padding 1 (dilation 1, groups 1):
 * the down-sampling convolutions of DCGAN-style discriminators and, as their backward_input,
 * the up-sampling transposed convolutions of the generators. conv2d forward, backward_input,
 * backward_weight and the fused backward (all one poly_run job, below). The f32 conv2d and
 * conv_transpose2d kernels call it first (entry points in nnk_internal.h); it obeys the mode
 * of nnk_set_winograd. f64 keeps im2col.
 *
 * Polyphase: with x padded by 1, y[p][q] = sum w[k][c][r][s] x[2p+r][2q+s], and r = 2a + ph,
 * s = 2b + pw turns it into a 2x2 stride-1 convolution over 4C channels c' = (c, ph, pw):
 * X'[c'][u][v] = xpad[c][2u+ph][2v+pw], W'[k][c'][a][b] = w[k][c][2a+ph][2b+pw]. That one runs
 * Winograd F(4x4,2x2): out = A^T [(G W' G^T) . (B^T d B)] A maps a 5x5 tile d of X' to a 4x4
 * output tile with 25 multiplies per (tile, c', k) instead of 64 (DCGAN's 7x7 outputs: 100
 * instead of 196 per (c', k), 1.96x fewer). Points 0, 1, -1, 1/2, infinity (of the choices
 * tried, the smallest f32 error: 3.7e-6 of the largest output per tile).
 *   forward:          M[xi] (K x T) = U[xi] (K x 4C) . V[xi] (4C x T), one sgemm per point xi;
 *   backward_input:   the adjoint: dV[xi] = U[xi]^T . Z[xi] with Z = A dy A^T, and
 *                     dd = B dV B^T scattered back (tiles overlap by one row and column);
 *   backward_weight:  S[xi] (K x 4C) = sum over tiles Z[xi] . V[xi]^T, dW' = G^T S G.
 * Each is the exact gradient of the forward, so only rounding differs from im2col: largest
 * error / largest output 4-6e-6 at DCGAN's sizes, against 3-5e-7 (tests/c/test_nnk_conv.c,
 * test_wino_accuracy). The tiles of a block of images are the lanes of the transforms (POLY_L
 * at a time, usually one tile of POLY_L images, so they vectorise) and the columns of the
 * sgemms; the 25 sgemms of a block are spread evenly over the threads (OpenBLAS runs
 * single-threaded here). A backward shares transforms between its gradients, and takes the
 * forward's transforms of its operands from the forward's keep (DCGAN step: 8 transforms of
 * each kind became 4, 59 -> 53 ms). Tried and left out: F(7x7,2x2) (64 products per 49 outputs): on
 * DCGAN's 7x7 outputs its sgemms shrink by a third, but with 64 images its 2.6x larger
 * transformed filter costs more in transforms and packing than that saves. */

#include "nnk_internal.h"

#define POLY_PTS 25 /* 5 x 5 transform points */
#define POLY_L 16   /* tiles per transform call (vector lanes) */
#define POLY_TB 256 /* tiles per block (the sgemms' column count) */

static int poly_applies(const nnk_conv *g) {
  return g->R == 4 && g->S == 4 && g->stride_h == 2 && g->stride_w == 2 && g->pad_h == 1 &&
         g->pad_w == 1 && g->dil_h == 1 && g->dil_w == 1 && g->groups == 1 && g->N > 0;
}

/* Mode 1 (the default): where the sgemms are large enough to pay for the transforms. Measured
 * (forward, 2 threads): 64 -> 128 channels at 14x14 wins from 16 images (2.4 against 2.8 ms;
 * 8 images: 1.55 against 1.40), 64 -> 64 at 8x8 from 32, 32 -> 64 at 64x64 with one image
 * (0.97 against 1.25 ms), and 128 -> 256 at 32x32 with 64 images by 2x; 16 -> 16 channels
 * never. DCGAN's 1 <-> 64 layers keep im2col. Depthwise shapes (C = 1, K <= 4) keep their
 * direct loops. */
int nnk_poly_use(const nnk_conv *g, size_t esize) {
  if (esize != sizeof(float) || nnk_conv_check(g) || !poly_applies(g) || conv_is_depthwise(g)) return 0;
  const int m = nnk_wino_mode();
  return m == 2 || (m == 1 && g->C >= 32 && g->K >= 32 && (int64_t)g->N * g->P * g->Q >= 512);
}

typedef struct {
  int64_t TH, TW, tpi;    /* tile rows, columns and tiles per image (4x4 outputs each) */
  int64_t C4, nb, nblk;   /* 4C; images per block; blocks */
  int64_t PH, PW, plane;  /* padded input plane: rows, columns, floats (per image) */
  size_t u_bytes, v_bytes, m_bytes, buf_bytes; /* U or S; V or dV; M or Z; per-thread planes */
  size_t sum_bytes;       /* C + K channel sums (double) */
} poly_plan;

static void poly_plan_make(poly_plan *pl, const nnk_conv *g) {
  pl->TH = ceil_div64(g->P, 4), pl->TW = ceil_div64(g->Q, 4), pl->tpi = pl->TH * pl->TW;
  pl->C4 = 4 * (int64_t)g->C;
  pl->nb = imin64(g->N, ceil_div64(POLY_TB, pl->tpi));
  pl->nblk = ceil_div64(g->N, pl->nb);
  /* the tiles read X' rows 0..4*TH, that is xpad rows 0..8*TH+1 */
  pl->PH = 8 * pl->TH + 2, pl->PW = 8 * pl->TW + 2, pl->plane = pl->PH * pl->PW;
  const int64_t T = pl->nb * pl->tpi;
  pl->u_bytes = round64((size_t)(POLY_PTS * g->K * pl->C4) * sizeof(float));
  pl->v_bytes = round64((size_t)(POLY_PTS * pl->C4 * T) * sizeof(float));
  pl->m_bytes = round64((size_t)(POLY_PTS * g->K * T) * sizeof(float));
  pl->buf_bytes = round64((size_t)(pl->nb * pl->plane) * sizeof(float));
  pl->sum_bytes = round64((size_t)(g->C + g->K) * sizeof(double));
}

/* ---- the 1-D transforms, on POLY_L lanes; x, y: 5 or 4 rows of lanes at row strides xs, ys */

/* y = B^T x (B^T = [1/2 -1 -1/2 1 0; 0 -1/2 1/2 1 0; 0 1/2 -3/2 1 0; 0 -1 0 1 0;
 * 0 1/2 -1 -1/2 1]) */
static inline void poly_bt(float *y, int64_t ys, const float *x, int64_t xs) {
  NNK_SIMD
  for (int l = 0; l < POLY_L; l++) {
    const float d0 = x[l], d1 = x[xs + l], d2 = x[2 * xs + l], d3 = x[3 * xs + l], d4 = x[4 * xs + l];
    y[l] = 0.5f * (d0 - d2) - d1 + d3;
    y[ys + l] = 0.5f * (d2 - d1) + d3;
    y[2 * ys + l] = 0.5f * d1 - 1.5f * d2 + d3;
    y[3 * ys + l] = d3 - d1;
    y[4 * ys + l] = 0.5f * (d1 - d3) - d2 + d4;
  }
}

/* y = B x (the adjoint of poly_bt) */
static inline void poly_b(float *y, int64_t ys, const float *x, int64_t xs) {
  NNK_SIMD
  for (int l = 0; l < POLY_L; l++) {
    const float v0 = x[l], v1 = x[xs + l], v2 = x[2 * xs + l], v3 = x[3 * xs + l], v4 = x[4 * xs + l];
    y[l] = 0.5f * v0;
    y[ys + l] = 0.5f * (v2 - v1 + v4) - v0 - v3;
    y[2 * ys + l] = 0.5f * (v1 - v0) - 1.5f * v2 - v4;
    y[3 * ys + l] = v0 + v1 + v2 + v3 - 0.5f * v4;
    y[4 * ys + l] = v4;
  }
}

/* y (4 rows) = A^T x (5 rows) (A^T = [1 1 1 1 0; 0 1 -1 1/2 0; 0 1 1 1/4 0; 0 1 -1 1/8 1]) */
static inline void poly_at(float *y, int64_t ys, const float *x, int64_t xs) {
  NNK_SIMD
  for (int l = 0; l < POLY_L; l++) {
    const float m0 = x[l], m1 = x[xs + l], m2 = x[2 * xs + l], m3 = x[3 * xs + l], m4 = x[4 * xs + l];
    y[l] = m0 + m1 + m2 + m3;
    y[ys + l] = m1 - m2 + 0.5f * m3;
    y[2 * ys + l] = m1 + m2 + 0.25f * m3;
    y[3 * ys + l] = m1 - m2 + 0.125f * m3 + m4;
  }
}

/* y (5 rows) = A x (4 rows) (the adjoint of poly_at) */
static inline void poly_a(float *y, int64_t ys, const float *x, int64_t xs) {
  NNK_SIMD
  for (int l = 0; l < POLY_L; l++) {
    const float e0 = x[l], e1 = x[xs + l], e2 = x[2 * xs + l], e3 = x[3 * xs + l];
    y[l] = e0;
    y[ys + l] = e0 + e1 + e2 + e3;
    y[2 * ys + l] = e0 - e1 + e2 - e3;
    y[3 * ys + l] = e0 + 0.5f * e1 + 0.25f * e2 + 0.125f * e3;
    y[4 * ys + l] = e3;
  }
}

/* ---- filter transforms ---- */

/* U[xi][k][c'] = (G W'[k][c'] G^T)[xi], G = [2 0; 1 1; -1/3 1/3; -8/3 -4/3; 0 1], for a row k,
 * POLY_L input channels c' at a time (so the rows of U are written whole) */
NNK_CLONES static void poly_filter(float *U, const float *weight, const nnk_conv *g, int64_t k) {
  const int64_t C4 = 4 * (int64_t)g->C, KC4 = g->K * C4;
  const float third = 1.0f / 3;
  float w[4][POLY_L], t[5][2][POLY_L];
  for (int64_t c0 = 0; c0 < C4; c0 += POLY_L) {
    const int nl = (int)imin64(POLY_L, C4 - c0);
    for (int l = 0; l < POLY_L; l++) {
      const int64_t cq = c0 + (l < nl ? l : 0), q = cq & 3;
      const float *src = weight + (k * g->C + (cq >> 2)) * 16 + (q >> 1) * 4 + (q & 1);
      for (int ab = 0; ab < 4; ab++) w[ab][l] = src[8 * (ab >> 1) + 2 * (ab & 1)]; /* W'[a][b] */
    }
    for (int b = 0; b < 2; b++) { /* G along a */
      NNK_SIMD
      for (int l = 0; l < POLY_L; l++) {
        const float w0 = w[b][l], w1 = w[2 + b][l];
        t[0][b][l] = 2 * w0, t[1][b][l] = w0 + w1, t[2][b][l] = (w1 - w0) * third;
        t[3][b][l] = -(8 * w0 + 4 * w1) * third, t[4][b][l] = w1;
      }
    }
    for (int i = 0; i < 5; i++) { /* G along b, into the rows of U */
      float *u = U + i * 5 * KC4 + k * C4 + c0;
      float o[5][POLY_L];
      NNK_SIMD
      for (int l = 0; l < POLY_L; l++) {
        const float w0 = t[i][0][l], w1 = t[i][1][l];
        o[0][l] = 2 * w0, o[1][l] = w0 + w1, o[2][l] = (w1 - w0) * third;
        o[3][l] = -(8 * w0 + 4 * w1) * third, o[4][l] = w1;
      }
      for (int j = 0; j < 5; j++) {
        if (nl == POLY_L) memcpy(u + j * KC4, o[j], sizeof o[j]); /* one vector store */
        else
          for (int l = 0; l < nl; l++) u[j * KC4 + l] = o[j][l];
      }
    }
  }
}

/* dweight[k][c][2a+ph][2b+pw] = (G^T S[k][c'] G)[a][b], POLY_L input channels c' at a time */
NNK_CLONES static void poly_dfilter(float *dweight, const float *S, const nnk_conv *g, int64_t k) {
  const int64_t C4 = 4 * (int64_t)g->C, KC4 = g->K * C4;
  const float third = 1.0f / 3;
  float sv[25][POLY_L], t[2][5][POLY_L], o[4][POLY_L];
  for (int64_t c0 = 0; c0 < C4; c0 += POLY_L) {
    const int nl = (int)imin64(POLY_L, C4 - c0);
    const float *src = S + k * C4 + c0; /* point xi at src + xi * KC4 */
    int64_t xs = KC4;
    if (nl < POLY_L) { /* the last partial group through a zero-padded copy */
      memset(sv, 0, sizeof sv);
      for (int xi = 0; xi < POLY_PTS; xi++) memcpy(sv[xi], src + xi * KC4, sizeof(float) * (size_t)nl);
      src = sv[0], xs = POLY_L;
    }
    for (int j = 0; j < 5; j++) { /* G^T along i: rows 2 s0 + s1 - s2/3 - 8 s3/3 and s1 + s2/3 - 4 s3/3 + s4 */
      const float *r = src + j * xs;
      NNK_SIMD
      for (int l = 0; l < POLY_L; l++) {
        const float s0 = r[l], s1 = r[5 * xs + l], s2 = r[10 * xs + l], s3 = r[15 * xs + l], s4 = r[20 * xs + l];
        t[0][j][l] = 2 * s0 + s1 - (s2 + 8 * s3) * third;
        t[1][j][l] = s1 + (s2 - 4 * s3) * third + s4;
      }
    }
    for (int a = 0; a < 2; a++) { /* G along j */
      NNK_SIMD
      for (int l = 0; l < POLY_L; l++) {
        const float s0 = t[a][0][l], s1 = t[a][1][l], s2 = t[a][2][l], s3 = t[a][3][l], s4 = t[a][4][l];
        o[2 * a][l] = 2 * s0 + s1 - (s2 + 8 * s3) * third;
        o[2 * a + 1][l] = s1 + (s2 - 4 * s3) * third + s4;
      }
    }
    for (int l = 0; l < nl; l++) {
      const int64_t cq = c0 + l, q = cq & 3;
      float *dw = dweight + (k * g->C + (cq >> 2)) * 16 + (q >> 1) * 4 + (q & 1);
      for (int ab = 0; ab < 4; ab++) dw[8 * (ab >> 1) + 2 * (ab & 1)] = o[ab][l];
    }
  }
}

/* d[j * ds + i] = s[i * ss + j] + add for i < nr, j < nc (<= 8): the transposes between the
 * image planes and the images-innermost buffers. A whole 8 x 8 block goes through registers
 * (24 shuffles; the scalar loop cost 2-3x more and was a third of poly_dinput). */
typedef float poly_v8 __attribute__((vector_size(32)));
typedef int32_t poly_v8i __attribute__((vector_size(32)));

NNK_INLINE void poly_tr(float *d, int64_t ds, const float *s, int64_t ss, int64_t nr, int64_t nc, float add) {
  if (nr < 8 || nc < 8) {
    for (int64_t i = 0; i < nr; i++)
      for (int64_t j = 0; j < nc; j++) d[j * ds + i] = s[i * ss + j] + add;
    return;
  }
  poly_v8 r[8], t[8], u[8];
  for (int i = 0; i < 8; i++) memcpy(&r[i], s + i * ss, sizeof(poly_v8));
  const poly_v8i lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
  const poly_v8i p01 = {0, 1, 8, 9, 4, 5, 12, 13}, p23 = {2, 3, 10, 11, 6, 7, 14, 15};
  const poly_v8i h0 = {0, 1, 2, 3, 8, 9, 10, 11}, h1 = {4, 5, 6, 7, 12, 13, 14, 15};
  for (int i = 0; i < 8; i += 2) { /* t: pairs of rows interleaved */
    t[i] = __builtin_shuffle(r[i], r[i + 1], lo);
    t[i + 1] = __builtin_shuffle(r[i], r[i + 1], hi);
  }
  for (int i = 0; i < 8; i += 4) { /* u: four rows' columns j and j + 4 */
    u[i] = __builtin_shuffle(t[i], t[i + 2], p01);
    u[i + 1] = __builtin_shuffle(t[i], t[i + 2], p23);
    u[i + 2] = __builtin_shuffle(t[i + 1], t[i + 3], p01);
    u[i + 3] = __builtin_shuffle(t[i + 1], t[i + 3], p23);
  }
  for (int j = 0; j < 4; j++) { /* columns j and j + 4 of all eight rows */
    const poly_v8 a = __builtin_shuffle(u[j], u[j + 4], h0) + add, b = __builtin_shuffle(u[j], u[j + 4], h1) + add;
    memcpy(d + j * ds, &a, sizeof a);
    memcpy(d + (j + 4) * ds, &b, sizeof b);
  }
}

/* the sum of x[0..n), in double (inlined into the clones) */
NNK_INLINE double poly_sum(const float *x, int64_t n) {
  double s = 0;
  NNK_SIMD_RED(+ : s)
  for (int64_t i = 0; i < n; i++) s += (double)x[i];
  return s;
}

/* ---- data transforms. The tiles of a block are t = pos * nbk + n (pos = ty * TW + tx, n the
 * image in the block), so that POLY_L consecutive tiles are usually the same tile of POLY_L
 * images; the padded planes pb hold the block's images innermost, pb[(row * PW + col) * nbk
 * + n], so those tiles' values are contiguous. */

/* image and tile row/column of tiles t0 .. t0+POLY_L-1 (lanes past T repeat the last tile),
 * stepped without divisions */
typedef struct { int64_t n[POLY_L], ty[POLY_L], tx[POLY_L]; } poly_lanes;

static inline void poly_lanes_at(poly_lanes *ln, const poly_plan *pl, int64_t nbk, int64_t t0, int64_t T) {
  const int64_t pos = t0 / nbk;
  int64_t n = t0 - pos * nbk, ty = pos / pl->TW, tx = pos - ty * pl->TW;
  if (n + POLY_L <= nbk && t0 + POLY_L <= T) { /* one tile of POLY_L images */
    for (int l = 0; l < POLY_L; l++) ln->n[l] = n + l, ln->ty[l] = ty, ln->tx[l] = tx;
    return;
  }
  for (int l = 0; l < POLY_L; l++) {
    ln->n[l] = n, ln->ty[l] = ty, ln->tx[l] = tx;
    if (t0 + l + 1 >= T) continue; /* the next lanes repeat this one */
    if (++n == nbk) {
      n = 0;
      if (++tx == pl->TW) tx = 0, ty++;
    }
  }
}

/* pb = the block's planes of channel c, zero-padded (xpad row r at pb row r); *sum (where
 * given) += the sum of those planes */
NNK_CLONES static void poly_pad(float *pb, double *sum, const float *inp, const nnk_conv *g, const poly_plan *pl,
                                int64_t n0, int64_t nbk, int64_t c) {
  const int64_t HW = (int64_t)g->H * g->W, CHW = g->C * HW, PW = pl->PW;
  /* zero only the border: row 0, rows past H, and in rows 1..H columns 0 and past W */
  memset(pb, 0, (size_t)(PW * nbk) * sizeof(float));
  memset(pb + (g->H + 1) * PW * nbk, 0, (size_t)((pl->PH - g->H - 1) * PW * nbk) * sizeof(float));
  for (int64_t r = 1; r <= g->H; r++) {
    memset(pb + r * PW * nbk, 0, (size_t)nbk * sizeof(float));
    memset(pb + (r * PW + g->W + 1) * nbk, 0, (size_t)((PW - g->W - 1) * nbk) * sizeof(float));
  }
  /* a transpose (images innermost), 8 images x 8 columns at a time */
  for (int64_t nb0 = 0; nb0 < nbk; nb0 += 8) {
    const int64_t nn = imin64(8, nbk - nb0);
    const float *x = inp + ((n0 + nb0) * g->C + c) * HW;
    for (int64_t r = 0; r < g->H; r++) {
      float *p = pb + ((r + 1) * PW + 1) * nbk + nb0;
      for (int64_t s0 = 0; s0 < g->W; s0 += 8)
        poly_tr(p + s0 * nbk, nbk, x + r * g->W + s0, CHW, nn, imin64(8, g->W - s0), 0.0f);
    }
  }
  if (sum) *sum += poly_sum(pb, pl->plane * nbk); /* the border is zero */
}

/* offsets in pb of the lanes' first X' element of phase (ph, pw); returns 1 when they are
 * consecutive */
static int poly_offsets(int64_t *off, const poly_plan *pl, const poly_lanes *ln, int64_t nbk,
                        int64_t ph, int64_t pw) {
  for (int l = 0; l < POLY_L; l++)
    off[l] = ((8 * ln->ty[l] + ph) * pl->PW + 8 * ln->tx[l] + pw) * nbk + ln->n[l];
  return off[POLY_L - 1] - off[0] == POLY_L - 1;
}

/* V[xi][c*4+q][t] = (B^T d B)[xi] for the block's T tiles, d the 5x5 X' window of phase q */
NNK_CLONES static void poly_input(float *V, const float *pb, const poly_plan *pl, int64_t nbk, int64_t T,
                       int64_t c) {
  float d[25 * POLY_L], e[25 * POLY_L];
  int64_t off[POLY_L];
  poly_lanes ln;
  for (int q = 0; q < 4; q++) {
    float *v = V + (c * 4 + q) * T;
    for (int64_t t0 = 0; t0 < T; t0 += POLY_L) {
      const int nl = (int)imin64(POLY_L, T - t0);
      poly_lanes_at(&ln, pl, nbk, t0, T);
      const int64_t C4T = pl->C4 * T;
      if (poly_offsets(off, pl, &ln, nbk, q >> 1, q & 1) && nl == POLY_L) {
        /* POLY_L images' same tile: transform straight from pb into V */
        for (int j = 0; j < 5; j++)
          poly_bt(e + j * POLY_L, 5 * POLY_L, pb + off[0] + 2 * j * nbk, 2 * pl->PW * nbk);
        for (int i = 0; i < 5; i++) poly_bt(v + i * 5 * C4T + t0, C4T, e + i * 5 * POLY_L, POLY_L);
        continue;
      }
      for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
          const int64_t dij = (2 * i * pl->PW + 2 * j) * nbk;
          float *dd = d + (i * 5 + j) * POLY_L;
          for (int l = 0; l < POLY_L; l++) dd[l] = pb[off[l] + dij];
        }
      for (int j = 0; j < 5; j++) poly_bt(e + j * POLY_L, 5 * POLY_L, d + j * POLY_L, 5 * POLY_L);
      for (int i = 0; i < 5; i++) poly_bt(d + i * 5 * POLY_L, POLY_L, e + i * 5 * POLY_L, POLY_L);
      for (int xi = 0; xi < POLY_PTS; xi++) memcpy(v + xi * C4T + t0, d + xi * POLY_L, sizeof(float) * (size_t)nl);
    }
  }
}

/* Z[xi][k][t] = (A dy A^T)[xi] for the block's tiles, dy the 4x4 dout window (0 past P, Q).
 * yb (P*Q*nbk floats) first gets the block's planes of channel k with the images innermost,
 * so that a lane group's values are contiguous; *sum (where given) += their sum. */
NNK_CLONES static void poly_dout(float *Z, float *yb, double *sum, const float *dout, const nnk_conv *g,
                                 const poly_plan *pl, int64_t n0, int64_t nbk, int64_t T, int64_t k) {
  const int64_t PQ = (int64_t)g->P * g->Q, KPQ = g->K * PQ;
  for (int64_t nb0 = 0; nb0 < nbk; nb0 += 8) { /* the transpose, 8 images x 8 positions at a time */
    const int64_t nn = imin64(8, nbk - nb0);
    const float *y = dout + ((n0 + nb0) * g->K + k) * PQ;
    for (int64_t o0 = 0; o0 < PQ; o0 += 8)
      poly_tr(yb + o0 * nbk + nb0, nbk, y + o0, KPQ, nn, imin64(8, PQ - o0), 0.0f);
  }
  if (sum) *sum += poly_sum(yb, PQ * nbk);
  float d[16 * POLY_L], e[20 * POLY_L], z[25 * POLY_L];
  poly_lanes ln;
  for (int64_t t0 = 0; t0 < T; t0 += POLY_L) {
    const int nl = (int)imin64(POLY_L, T - t0);
    poly_lanes_at(&ln, pl, nbk, t0, T);
    const int same = ln.n[POLY_L - 1] - ln.n[0] == POLY_L - 1; /* one tile, consecutive images */
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 4; j++) {
        float *dd = d + (i * 4 + j) * POLY_L;
        if (same) {
          const int64_t p = 4 * ln.ty[0] + i, qq = 4 * ln.tx[0] + j;
          if (p < g->P && qq < g->Q) memcpy(dd, yb + (p * g->Q + qq) * nbk + ln.n[0], sizeof(float) * POLY_L);
          else memset(dd, 0, sizeof(float) * POLY_L);
        } else {
          for (int l = 0; l < POLY_L; l++) {
            const int64_t p = 4 * ln.ty[l] + i, qq = 4 * ln.tx[l] + j;
            dd[l] = (p < g->P && qq < g->Q) ? yb[(p * g->Q + qq) * nbk + ln.n[l]] : 0.0f;
          }
        }
      }
    for (int j = 0; j < 4; j++) poly_a(e + j * POLY_L, 4 * POLY_L, d + j * POLY_L, 4 * POLY_L); /* e[5][4] */
    const int64_t KT = g->K * T;
    if (nl == POLY_L) {
      for (int i = 0; i < 5; i++) poly_a(Z + (i * 5 * g->K + k) * T + t0, KT, e + i * 4 * POLY_L, POLY_L);
      continue;
    }
    for (int i = 0; i < 5; i++) poly_a(z + i * 5 * POLY_L, POLY_L, e + i * 4 * POLY_L, POLY_L);
    for (int xi = 0; xi < POLY_PTS; xi++) memcpy(Z + xi * KT + k * T + t0, z + xi * POLY_L, sizeof(float) * (size_t)nl);
  }
}

/* out[n][k] = A^T m A + bias for the block's tiles, m from M[xi][k][t] */
NNK_CLONES static void poly_output(float *out, const float *M, const float *bias, const nnk_conv *g,
                        const poly_plan *pl, int64_t n0, int64_t nbk, int64_t T, int64_t k) {
  const int64_t PQ = (int64_t)g->P * g->Q;
  const float bk = bias ? bias[k] : 0.0f;
  float m[25 * POLY_L], e[20 * POLY_L], y[16 * POLY_L], yt[POLY_L * 16];
  poly_lanes ln;
  for (int64_t t0 = 0; t0 < T; t0 += POLY_L) {
    const int nl = (int)imin64(POLY_L, T - t0);
    const int64_t KT = g->K * T;
    if (nl == POLY_L) {
      for (int j = 0; j < 5; j++) poly_at(e + j * POLY_L, 5 * POLY_L, M + (j * g->K + k) * T + t0, 5 * KT);
    } else {
      memset(m, 0, sizeof m);
      for (int xi = 0; xi < POLY_PTS; xi++) memcpy(m + xi * POLY_L, M + xi * KT + k * T + t0, sizeof(float) * (size_t)nl);
      for (int j = 0; j < 5; j++) poly_at(e + j * POLY_L, 5 * POLY_L, m + j * POLY_L, 5 * POLY_L); /* e[4][5] */
    }
    for (int i = 0; i < 4; i++) poly_at(y + i * 4 * POLY_L, POLY_L, e + i * 5 * POLY_L, POLY_L);
    /* yt[l] = lane l's 4 x 4 outputs + bias, then stored row by row */
    for (int a = 0; a < 16; a += 8)
      for (int b = 0; b < POLY_L; b += 8) poly_tr(yt + b * 16 + a, 16, y + a * POLY_L + b, POLY_L, 8, 8, bk);
    poly_lanes_at(&ln, pl, nbk, t0, T);
    for (int l = 0; l < nl; l++) {
      const int64_t n = ln.n[l], ty = ln.ty[l], tx = ln.tx[l], nj = imin64(4, g->Q - 4 * tx);
      float *o = out + ((n0 + n) * g->K + k) * PQ + 4 * ty * g->Q + 4 * tx;
      for (int i = 0; i < 4 && 4 * ty + i < g->P; i++) {
        if (nj == 4) memcpy(o + i * g->Q, yt + l * 16 + i * 4, 4 * sizeof(float));
        else memcpy(o + i * g->Q, yt + l * 16 + i * 4, (size_t)nj * sizeof(float));
      }
    }
  }
}

/* pb = B dV B^T of every tile and phase of channel c, then dinp[n][c] = the inner H x W of
 * pb's plane n (+ bias[c], where a transposed convolution's bias is given) */
NNK_CLONES static void poly_dinput(float *dinp, float *pb, const float *dV, const float *bias, const nnk_conv *g,
                                   const poly_plan *pl, int64_t n0, int64_t nbk, int64_t T, int64_t c) {
  float v[25 * POLY_L], e[25 * POLY_L];
  int64_t off[POLY_L];
  poly_lanes ln;
  /* No zero fill: the tiles run in order of position (all images of a position before the
   * next), so a tile's window element is new, and stored, unless it is in its first row
   * below another tile or its first column right of one, where it is added. The windows
   * of the 4 phases cover pb exactly. */
  for (int q = 0; q < 4; q++) {
    const float *s = dV + (c * 4 + q) * T;
    for (int64_t t0 = 0; t0 < T; t0 += POLY_L) {
      const int nl = (int)imin64(POLY_L, T - t0);
      poly_lanes_at(&ln, pl, nbk, t0, T);
      const int contiguous = poly_offsets(off, pl, &ln, nbk, q >> 1, q & 1) && nl == POLY_L;
      const int64_t C4T = pl->C4 * T;
      if (nl == POLY_L) {
        for (int j = 0; j < 5; j++) poly_b(e + j * POLY_L, 5 * POLY_L, s + j * C4T + t0, 5 * C4T);
      } else {
        memset(v, 0, sizeof v);
        for (int xi = 0; xi < POLY_PTS; xi++) memcpy(v + xi * POLY_L, s + xi * C4T + t0, sizeof(float) * (size_t)nl);
        for (int j = 0; j < 5; j++) poly_b(e + j * POLY_L, 5 * POLY_L, v + j * POLY_L, 5 * POLY_L);
      }
      for (int i = 0; i < 5; i++) poly_b(v + i * 5 * POLY_L, POLY_L, e + i * 5 * POLY_L, POLY_L);
      if (contiguous) { /* one tile of POLY_L images */
        for (int i = 0; i < 5; i++)
          for (int j = 0; j < 5; j++) {
            float *p = pb + off[0] + (2 * i * pl->PW + 2 * j) * nbk;
            const float *vv = v + (i * 5 + j) * POLY_L;
            if ((i > 0 || ln.ty[0] == 0) && (j > 0 || ln.tx[0] == 0)) {
              memcpy(p, vv, sizeof(float) * POLY_L);
            } else {
              NNK_SIMD
              for (int l = 0; l < POLY_L; l++) p[l] += vv[l];
            }
          }
      } else { /* lane by lane, so that the tiles keep their order */
        for (int l = 0; l < nl; l++)
          for (int i = 0; i < 5; i++)
            for (int j = 0; j < 5; j++) {
              float *p = pb + off[l] + (2 * i * pl->PW + 2 * j) * nbk;
              const float val = v[(i * 5 + j) * POLY_L + l];
              if ((i > 0 || ln.ty[l] == 0) && (j > 0 || ln.tx[l] == 0)) *p = val;
              else *p += val;
            }
      }
    }
  }
  /* the transpose back, 8 images x 8 columns at a time */
  const int64_t HW = (int64_t)g->H * g->W, CHW = g->C * HW;
  const float bc = bias ? bias[c] : 0.0f;
  for (int64_t nb0 = 0; nb0 < nbk; nb0 += 8) {
    const int64_t nn = imin64(8, nbk - nb0);
    float *x = dinp + ((n0 + nb0) * g->C + c) * HW;
    for (int64_t r = 0; r < g->H; r++) {
      const float *p = pb + ((r + 1) * pl->PW + 1) * nbk + nb0;
      for (int64_t s0 = 0; s0 < g->W; s0 += 8)
        poly_tr(x + r * g->W + s0, CHW, p + s0 * nbk, nbk, imin64(8, g->W - s0), nn, bc);
    }
  }
}

/* ---- a run: any of the three products of a geometry over shared transforms ----
 *   out     = conv(inp, weight) + bias                 from U and V, through M
 *   dinp    = conv^T(dout, weight) + dinp_bias          from U and Z, through dV
 *             (dinp_bias: the bias of a transposed convolution, whose forward this is)
 *   dweight = the correlation of inp and dout           from V and Z, through S
 *   dout_sum, inp_sum = the channel sums of dout, of inp (a bias gradient: conv2d's is
 *             dout's, a transposed convolution's its forward's dout, here inp)
 * A backward asks for two of them (conv2d: dinp and dweight; conv_transpose2d: out and
 * dweight), which then share a transform. keep (NULL: none) carries transforms from a
 * forward to the backward of the same geometry: a head, U, then V (keep_v: a conv2d
 * forward's input) or Z (a transposed forward's input, the dout of this geometry) of every
 * block. A forward fills it (kept 0); a backward reads it (kept 1) when its head says it was
 * filled for this geometry, so that each operand is transformed once per training step. */
typedef struct {
  float *out, *dinp, *dweight;
  float *dout_sum, *inp_sum; /* the per-channel sums of dout and of inp (bias gradients) */
  const float *inp, *dout, *weight, *bias, *dinp_bias;
  void *keep;
  int keep_v, kept;
} poly_job;

typedef struct { int32_t magic, N, C, H, W, K, keep_v; } poly_keep_head;
#define POLY_KEEP_MAGIC 0x706f6c79
#define POLY_KEEP_HEAD 64 /* bytes before U */

static size_t poly_keep_size(const poly_plan *pl, int keep_v) {
  return POLY_KEEP_HEAD + pl->u_bytes + (size_t)pl->nblk * (keep_v ? pl->v_bytes : pl->m_bytes);
}

/* bytes of the keep of a forward of g (0: it keeps nothing: not this path) */
size_t nnk_poly_keep_bytes_f32(const nnk_conv *g, int keep_v) {
  if (!nnk_poly_use(g, sizeof(float))) return 0;
  poly_plan pl;
  poly_plan_make(&pl, g);
  return poly_keep_size(&pl, keep_v);
}

static int poly_keep_valid(const void *keep, const nnk_conv *g, int keep_v) {
  const poly_keep_head *h = (const poly_keep_head *)keep;
  return h->magic == POLY_KEEP_MAGIC && h->N == g->N && h->C == g->C && h->H == g->H &&
         h->W == g->W && h->K == g->K && h->keep_v == keep_v;
}

/* what a job transforms: U, V and Z, and which of them come from (or go to) the keep */
typedef struct { int u, v, z, ku, kv, kz; } poly_needs;

static poly_needs poly_needs_of(const poly_job *j) {
  poly_needs n;
  n.u = j->out || j->dinp, n.v = j->out || j->dweight || j->inp_sum, n.z = j->dinp || j->dweight || j->dout_sum;
  /* an operand whose channel sums are asked for is transformed here, not taken from the keep */
  n.ku = j->keep != NULL, n.kv = j->keep && j->keep_v && !j->inp_sum, n.kz = j->keep && !j->keep_v && !j->dout_sum;
  return n;
}

static size_t poly_ws_bytes(const poly_plan *pl, const poly_job *j, int nt) {
  const poly_needs n = poly_needs_of(j);
  return (n.u && !n.ku ? pl->u_bytes : 0) + (j->dweight ? pl->u_bytes : 0) +
         (n.v && !n.kv ? pl->v_bytes : 0) + (n.z && !n.kz ? pl->m_bytes : 0) +
         (j->out ? pl->m_bytes : 0) + (j->dinp ? pl->v_bytes : 0) + pl->sum_bytes + (size_t)nt * pl->buf_bytes;
}

/* Workspace of a job asking for out, dinp and dweight (each 0 or 1), without a keep (the
 * most it can need) */
size_t nnk_poly_ws_query(const nnk_conv *g, int out, int dinp, int dweight) {
  poly_plan pl;
  poly_plan_make(&pl, g);
  float x;
  const poly_job j = {.out = out ? &x : NULL, .dinp = dinp ? &x : NULL, .dweight = dweight ? &x : NULL};
  return poly_ws_bytes(&pl, &j, max_threads());
}

/* The job's buffers: in the workspace, or in the keep (*_step: the floats between the V or Z
 * of consecutive blocks there; 0: one block's, in the workspace) */
typedef struct {
  float *U, *S, *V, *Z, *M, *dV;
  double *sums; /* C + K: the sums of inp's and dout's channels */
  int64_t v_step, z_step;
  char *bufs;
  void *owned;
} poly_ws;

static int poly_begin(const nnk_conv *g, const poly_job *j, poly_plan *pl, void *ws, size_t ws_bytes,
                      int *nt, poly_ws *p) {
  poly_plan_make(pl, g);
  *nt = max_threads();
  p->owned = NULL;
  if (ws) {
    while (*nt > 0 && poly_ws_bytes(pl, j, *nt) > ws_bytes) (*nt)--;
    if (*nt < 1) return -1;
  } else {
    ws = p->owned = aligned_alloc(64, poly_ws_bytes(pl, j, *nt));
    if (!ws) return -1;
  }
  const poly_needs n = poly_needs_of(j);
  char *w = (char *)ws, *k = (char *)j->keep + POLY_KEEP_HEAD;
#define POLY_TAKE(ptr, bytes) (ptr = (float *)w, w += (bytes))
  p->U = p->S = p->V = p->Z = p->M = p->dV = NULL;
  p->v_step = p->z_step = 0;
  if (n.u) { if (n.ku) p->U = (float *)k; else POLY_TAKE(p->U, pl->u_bytes); }
  if (j->dweight) POLY_TAKE(p->S, pl->u_bytes);
  if (n.v) {
    if (n.kv) p->V = (float *)(k + pl->u_bytes), p->v_step = (int64_t)(pl->v_bytes / sizeof(float));
    else POLY_TAKE(p->V, pl->v_bytes);
  }
  if (n.z) {
    if (n.kz) p->Z = (float *)(k + pl->u_bytes), p->z_step = (int64_t)(pl->m_bytes / sizeof(float));
    else POLY_TAKE(p->Z, pl->m_bytes);
  }
  if (j->out) POLY_TAKE(p->M, pl->m_bytes);
  if (j->dinp) POLY_TAKE(p->dV, pl->v_bytes);
  p->sums = (double *)w, w += pl->sum_bytes;
#undef POLY_TAKE
  p->bufs = w;
  return 0;
}

/* thread t's plane buffer */
static float *poly_planes(const poly_ws *p, const poly_plan *pl, int t) {
  return (float *)(p->bufs + (size_t)t * pl->buf_bytes);
}

/* The products of a block (25 per requested output) as work items for nt threads (scheduled
 * static, 1: item i on thread i % nt): the first P - r whole (P products, r = P % nt), the
 * last r each cut into nt bands of output rows, so that every thread gets the same work
 * (2 threads, one output: 12 and a half products each, where whole products alone left one
 * thread a product behind the other). Item it -> product and band [part/nparts). */
static int poly_items(int nprod, int nt) {
  const int P = POLY_PTS * nprod, r = P % nt;
  return P - r + r * nt;
}

static int poly_item(int it, int nprod, int nt, int *part, int *nparts) {
  const int P = POLY_PTS * nprod, whole = P - P % nt;
  if (it < whole) { *part = 0, *nparts = 1; return it; }
  const int p = it - whole;
  *part = p % nt, *nparts = nt;
  return whole + p / nt;
}

enum { POLY_OUT, POLY_DINP, POLY_DWEIGHT };

/* Returns 0, or -1 when the workspace is too small or cannot be allocated */
static int poly_run(const poly_job *j, const nnk_conv *g, void *ws, size_t ws_bytes) {
  poly_plan pl;
  poly_ws p;
  int nt;
  if (poly_begin(g, j, &pl, ws, ws_bytes, &nt, &p)) return -1;
  const poly_needs nd = poly_needs_of(j);
  const int read = j->keep && j->kept;
  const int64_t K = g->K, C4 = pl.C4;
  int prods[3], np = 0;
  if (j->out) prods[np++] = POLY_OUT;
  if (j->dinp) prods[np++] = POLY_DINP;
  if (j->dweight) prods[np++] = POLY_DWEIGHT;
  const int nitems = poly_items(np, nt);
  memset(p.sums, 0, pl.sum_bytes);
  NNK_OMP(parallel num_threads(nt) if (nt > 1))
  {
    float *pb = poly_planes(&p, &pl, omp_get_thread_num());
    if (nd.u && !(read && nd.ku)) {
      NNK_OMP(for schedule(static))
      for (int64_t k = 0; k < K; k++) poly_filter(p.U, j->weight, g, k);
    }
    for (int64_t blk = 0; blk < pl.nblk; blk++) {
      const int64_t n0 = blk * pl.nb, nbk = imin64(pl.nb, g->N - n0), T = nbk * pl.tpi;
      float *V = p.V ? p.V + blk * p.v_step : NULL, *Z = p.Z ? p.Z + blk * p.z_step : NULL;
      /* the data transforms: input channels (V), then output channels (Z), interleaved
       * over the threads */
      const int64_t nv = nd.v && !(read && nd.kv) ? g->C : 0, nz = nd.z && !(read && nd.kz) ? K : 0;
      if (nv + nz) {
        NNK_OMP(for schedule(static, 1))
        for (int64_t i = 0; i < nv + nz; i++) {
          if (i < nv) {
            poly_pad(pb, j->inp_sum ? p.sums + i : NULL, j->inp, g, &pl, n0, nbk, i);
            poly_input(V, pb, &pl, nbk, T, i);
          } else {
            poly_dout(Z, pb, j->dout_sum ? p.sums + g->C + i - nv : NULL, j->dout, g, &pl, n0, nbk, T, i - nv);
          }
        }
      }
      NNK_OMP(for schedule(static, 1))
      for (int it = 0; it < nitems; it++) {
        int part, nparts;
        const int pi = poly_item(it, np, nt, &part, &nparts), xi = pi % POLY_PTS, what = prods[pi / POLY_PTS];
        const int64_t rows = what == POLY_DINP ? C4 : K, r0 = rows * part / nparts, r1 = rows * (part + 1) / nparts;
        if (what == POLY_OUT) { /* M[xi] rows = U[xi] rows . V[xi] */
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)T, (int)C4, 1.0f,
                      p.U + (xi * K + r0) * C4, (int)C4, V + xi * C4 * T, (int)T, 0.0f, p.M + (xi * K + r0) * T,
                      (int)T);
        } else if (what == POLY_DINP) { /* dV[xi] rows = (U[xi]^T) rows . Z[xi] */
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(r1 - r0), (int)T, (int)K, 1.0f,
                      p.U + xi * K * C4 + r0, (int)C4, Z + xi * K * T, (int)T, 0.0f, p.dV + (xi * C4 + r0) * T,
                      (int)T);
        } else { /* S[xi] rows += Z[xi] rows . V[xi]^T */
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0), (int)C4, (int)T, 1.0f,
                      Z + (xi * K + r0) * T, (int)T, V + xi * C4 * T, (int)T, blk ? 1.0f : 0.0f,
                      p.S + (xi * K + r0) * C4, (int)C4);
        }
      }
      if (j->out) {
        NNK_OMP(for schedule(static))
        for (int64_t k = 0; k < K; k++) poly_output(j->out, p.M, j->bias, g, &pl, n0, nbk, T, k);
      }
      if (j->dinp) {
        NNK_OMP(for schedule(static))
        for (int64_t c = 0; c < g->C; c++) poly_dinput(j->dinp, pb, p.dV, j->dinp_bias, g, &pl, n0, nbk, T, c);
      }
    }
    if (j->dweight) {
      NNK_OMP(for schedule(static))
      for (int64_t k = 0; k < K; k++) poly_dfilter(j->dweight, p.S, g, k);
    }
  }
  for (int64_t c = 0; c < g->C && j->inp_sum; c++) j->inp_sum[c] = (float)p.sums[c];
  for (int64_t k = 0; k < K && j->dout_sum; k++) j->dout_sum[k] = (float)p.sums[g->C + k];
  free(p.owned);
  if (j->keep && !j->kept) {
    const poly_keep_head h = {POLY_KEEP_MAGIC, g->N, g->C, g->H, g->W, g->K, j->keep_v};
    memcpy(j->keep, &h, sizeof h);
  }
  return 0;
}

/* ---- the entry points of the conv2d kernels: each returns 1 when the path does not apply (the
 * caller goes on with im2col), else poly_run's result. A keep is filled by the forwards and
 * read, where its head matches, by the backwards. */

/* the forwards' entry points clear the head first, so that a keep they do not fill (another
 * path ran) is never read as filled */
void nnk_poly_keep_clear_f32(void *keep) {
  if (keep) memset(keep, 0, sizeof(poly_keep_head));
}

int nnk_poly_forward_f32(float *out, const float *inp, const float *weight, const float *bias, void *keep,
                         const nnk_conv *g, void *ws, size_t ws_bytes) {
  if (!nnk_poly_use(g, sizeof(float))) return 1;
  const poly_job j = {.out = out, .inp = inp, .weight = weight, .bias = bias, .keep = keep, .keep_v = 1};
  return poly_run(&j, g, ws, ws_bytes);
}

/* bias: a transposed convolution's (this is its forward) */
int nnk_poly_backward_input_f32(float *dinp, const float *dout, const float *weight, const float *bias,
                                void *keep, const nnk_conv *g, void *ws, size_t ws_bytes) {
  if (!nnk_poly_use(g, sizeof(float))) return 1;
  const poly_job j = {.dinp = dinp, .dout = dout, .weight = weight, .dinp_bias = bias, .keep = keep};
  return poly_run(&j, g, ws, ws_bytes);
}

int nnk_poly_backward_weight_f32(float *dweight, const float *inp, const float *dout, const nnk_conv *g,
                                 void *ws, size_t ws_bytes) {
  if (!nnk_poly_use(g, sizeof(float))) return 1;
  const poly_job j = {.dweight = dweight, .inp = inp, .dout = dout};
  return poly_run(&j, g, ws, ws_bytes);
}

/* conv2d's backward: dinp, dweight and/or dbias, with nnk_poly_forward_f32's keep (or NULL) */
int nnk_poly_backward_f32(float *dinp, float *dweight, float *dbias, const float *inp, const float *dout,
                          const float *weight, const void *keep, const nnk_conv *g, void *ws, size_t ws_bytes) {
  if (!nnk_poly_use(g, sizeof(float))) return 1;
  const int k = keep && poly_keep_valid(keep, g, 1);
  const poly_job j = {.dinp = dinp, .dweight = dweight, .dout_sum = dbias, .inp = inp, .dout = dout,
                      .weight = weight, .keep = k ? (void *)keep : NULL, .keep_v = 1, .kept = 1};
  return poly_run(&j, g, ws, ws_bytes);
}

/* the backward of the transposed convolution whose forward is g's backward_input (x its
 * input, dy its output's gradient): dx = conv(dy), dweight = the correlation of dy and x and
 * dbias = the channel sums of dy, with nnk_poly_backward_input_f32's keep (or NULL) */
int nnk_poly_transposed_backward_f32(float *dx, float *dweight, float *dbias, const float *x, const float *dy,
                                     const float *weight, const void *keep, const nnk_conv *g, void *ws,
                                     size_t ws_bytes) {
  if (!nnk_poly_use(g, sizeof(float))) return 1;
  const int k = keep && poly_keep_valid(keep, g, 0);
  const poly_job j = {.out = dx, .dweight = dweight, .inp_sum = dbias, .inp = dy, .dout = x, .weight = weight,
                      .keep = k ? (void *)keep : NULL, .keep_v = 0, .kept = 1};
  return poly_run(&j, g, ws, ws_bytes);
}
