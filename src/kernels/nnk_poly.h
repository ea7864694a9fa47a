/* nnk_poly.h: f32 convolutions with a 4x4 kernel, stride 2, padding 1 (dilation 1, groups 1):
 * the down-sampling convolutions of DCGAN-style discriminators and, as their backward_input,
 * the up-sampling transposed convolutions of the generators. conv2d forward, backward_input
 * and backward_weight. Included once by nnk.c after nnk_winograd.h (uses its mode switch and
 * nnk.c's static helpers). Not a public header. f64 keeps im2col.
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
 * error / largest output 4-6e-6 at DCGAN's sizes, against 3-5e-7 (tests/c/test_nnk.c,
 * test_wino_accuracy). The tiles of a block of images are the lanes of the transforms (POLY_L
 * at a time, usually one tile of POLY_L images, so they vectorise) and the columns of the
 * sgemms; the 25 sgemms of a block are spread evenly over the threads (OpenBLAS runs
 * single-threaded here). Tried and left out: F(7x7,2x2) (64 products per 49 outputs): on
 * DCGAN's 7x7 outputs its sgemms shrink by a third, but with 64 images its 2.6x larger
 * transformed filter costs more in transforms and packing than that saves. */

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
 * never. DCGAN's 1 <-> 64 layers keep im2col. */
static int poly_use(const nnk_conv *g, size_t esize) {
  if (esize != sizeof(float) || conv_check(g) || !poly_applies(g)) return 0;
  const int m = wino_mode();
  return m == 2 || (m == 1 && g->C >= 32 && g->K >= 32 && (int64_t)g->N * g->P * g->Q >= 512);
}

typedef struct {
  int64_t TH, TW, tpi;    /* tile rows, columns and tiles per image (4x4 outputs each) */
  int64_t C4, nb, nblk;   /* 4C; images per block; blocks */
  int64_t PH, PW, plane;  /* padded input plane: rows, columns, floats (per image) */
  size_t u_bytes, v_bytes, m_bytes, buf_bytes; /* U or S; V or dV; M or Z; per-thread planes */
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
}

static size_t poly_ws_bytes(const poly_plan *pl, int nt) {
  return pl->u_bytes + pl->v_bytes + pl->m_bytes + (size_t)nt * pl->buf_bytes;
}

static size_t poly_ws_query(const nnk_conv *g) {
  poly_plan pl;
  poly_plan_make(&pl, g);
  return poly_ws_bytes(&pl, max_threads());
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
      for (int j = 0; j < 5; j++)
        for (int l = 0; l < nl; l++) u[j * KC4 + l] = o[j][l];
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

/* pb = the block's planes of channel c, zero-padded (xpad row r at pb row r) */
NNK_CLONES static void poly_pad(float *pb, const float *inp, const nnk_conv *g, const poly_plan *pl,
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
      for (int64_t s0 = 0; s0 < g->W; s0 += 8) {
        const int64_t ns = imin64(8, g->W - s0);
        float tile[8][8]; /* transposed in L1, then stored as rows of nn images */
        for (int64_t n = 0; n < nn; n++) {
          const float *xr = x + n * CHW + r * g->W + s0;
          for (int64_t s = 0; s < ns; s++) tile[s][n] = xr[s];
        }
        for (int64_t s = 0; s < ns; s++) memcpy(p + (s0 + s) * nbk, tile[s], sizeof(float) * (size_t)nn);
      }
    }
  }
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
 * so that a lane group's values are contiguous. */
NNK_CLONES static void poly_dout(float *Z, float *yb, const float *dout, const nnk_conv *g,
                                 const poly_plan *pl, int64_t n0, int64_t nbk, int64_t T, int64_t k) {
  const int64_t PQ = (int64_t)g->P * g->Q, KPQ = g->K * PQ;
  for (int64_t nb0 = 0; nb0 < nbk; nb0 += 8) { /* the transpose, 8 images x 8 positions at a time */
    const int64_t nn = imin64(8, nbk - nb0);
    const float *y = dout + ((n0 + nb0) * g->K + k) * PQ;
    for (int64_t o0 = 0; o0 < PQ; o0 += 8) {
      const int64_t no = imin64(8, PQ - o0);
      float tile[8][8];
      for (int64_t n = 0; n < nn; n++)
        for (int64_t o = 0; o < no; o++) tile[o][n] = y[n * KPQ + o0 + o];
      for (int64_t o = 0; o < no; o++) memcpy(yb + (o0 + o) * nbk + nb0, tile[o], sizeof(float) * (size_t)nn);
    }
  }
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
  float m[25 * POLY_L], e[20 * POLY_L], y[16 * POLY_L];
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
    poly_lanes_at(&ln, pl, nbk, t0, T);
    for (int l = 0; l < nl; l++) {
      const int64_t n = ln.n[l], ty = ln.ty[l], tx = ln.tx[l];
      float *o = out + ((n0 + n) * g->K + k) * PQ;
      for (int i = 0; i < 4 && 4 * ty + i < g->P; i++)
        for (int j = 0; j < 4 && 4 * tx + j < g->Q; j++)
          o[(4 * ty + i) * g->Q + 4 * tx + j] = y[(i * 4 + j) * POLY_L + l] + bk;
    }
  }
}

/* pb += B dV B^T of every tile and phase of channel c (zero-filled first), then
 * dinp[n][c] = the inner H x W of pb's plane n */
NNK_CLONES static void poly_dinput(float *dinp, float *pb, const float *dV, const nnk_conv *g,
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
  for (int64_t nb0 = 0; nb0 < nbk; nb0 += 8) {
    const int64_t nn = imin64(8, nbk - nb0);
    float *x = dinp + ((n0 + nb0) * g->C + c) * HW;
    for (int64_t r = 0; r < g->H; r++) {
      const float *p = pb + ((r + 1) * pl->PW + 1) * nbk + nb0;
      for (int64_t s0 = 0; s0 < g->W; s0 += 8) {
        const int64_t ns = imin64(8, g->W - s0);
        for (int64_t n = 0; n < nn; n++) {
          float *xr = x + n * CHW + r * g->W + s0;
          for (int64_t s = 0; s < ns; s++) xr[s] = p[(s0 + s) * nbk + n];
        }
      }
    }
  }
}

/* The 25 products of a block as work items for nt threads (scheduled static, 1: item i on
 * thread i % nt): the first 25 - r whole (r = 25 % nt), the last r each cut into nt bands of
 * output rows, so that every thread gets the same work (2 threads: 12 and a half each, where
 * whole products alone left one thread a product behind the other). Item it -> point xi and
 * output rows [r0, r1) of rows. */
static int poly_items(int nt) { const int r = POLY_PTS % nt; return POLY_PTS - r + r * nt; }

static int poly_item(int it, int nt, int64_t rows, int64_t *r0, int64_t *r1) {
  const int whole = POLY_PTS - POLY_PTS % nt;
  if (it < whole) { *r0 = 0, *r1 = rows; return it; }
  const int p = it - whole, part = p % nt;
  *r0 = rows * part / nt, *r1 = rows * (part + 1) / nt;
  return whole + p / nt;
}

/* ---- the kernels: each returns 1 when it does not apply (the caller goes on with im2col),
 * else 0, or -1 when the workspace is too small or cannot be allocated ---- */

/* The workspace's parts: U (or S), V (or dV), M (or Z), then nt plane buffers */
typedef struct { float *U, *V, *M; char *bufs; void *owned; } poly_ws;

static int poly_begin(const nnk_conv *g, poly_plan *pl, void *ws, size_t ws_bytes, int *nt, poly_ws *p) {
  poly_plan_make(pl, g);
  *nt = max_threads();
  p->owned = NULL;
  if (ws) {
    while (*nt > 0 && poly_ws_bytes(pl, *nt) > ws_bytes) (*nt)--;
    if (*nt < 1) return -1;
  } else {
    ws = p->owned = aligned_alloc(64, poly_ws_bytes(pl, *nt));
    if (!ws) return -1;
  }
  p->U = (float *)ws;
  p->V = (float *)((char *)ws + pl->u_bytes);
  p->M = (float *)((char *)p->V + pl->v_bytes);
  p->bufs = (char *)p->M + pl->m_bytes;
  return 0;
}

/* thread t's plane buffer */
static float *poly_planes(const poly_ws *p, const poly_plan *pl, int t) {
  return (float *)(p->bufs + (size_t)t * pl->buf_bytes);
}

static int poly_forward(float *out, const float *inp, const float *weight, const float *bias,
                        const nnk_conv *g, void *ws, size_t ws_bytes) {
  if (!poly_use(g, sizeof(float))) return 1;
  poly_plan pl;
  poly_ws p;
  int nt;
  if (poly_begin(g, &pl, ws, ws_bytes, &nt, &p)) return -1;
  float *U = p.U, *V = p.V, *M = p.M;
  const int64_t K = g->K, C4 = pl.C4;
  NNK_OMP(parallel num_threads(nt) if (nt > 1))
  {
    float *pb = poly_planes(&p, &pl, omp_get_thread_num());
    NNK_OMP(for schedule(static))
    for (int64_t k = 0; k < K; k++) poly_filter(U, weight, g, k);
    for (int64_t blk = 0; blk < pl.nblk; blk++) {
      const int64_t n0 = blk * pl.nb, nbk = imin64(pl.nb, g->N - n0), T = nbk * pl.tpi;
      NNK_OMP(for schedule(static))
      for (int64_t c = 0; c < g->C; c++) {
        poly_pad(pb, inp, g, &pl, n0, nbk, c);
        poly_input(V, pb, &pl, nbk, T, c);
      }
      NNK_OMP(for schedule(static, 1))
      for (int it = 0; it < poly_items(nt); it++) { /* M[xi] rows r0..r1 = U[xi] rows . V[xi] */
        int64_t r0, r1;
        const int xi = poly_item(it, nt, K, &r0, &r1);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)T, (int)C4, 1.0f,
                    U + (xi * K + r0) * C4, (int)C4, V + xi * C4 * T, (int)T, 0.0f, M + (xi * K + r0) * T, (int)T);
      }
      NNK_OMP(for schedule(static))
      for (int64_t k = 0; k < K; k++) poly_output(out, M, bias, g, &pl, n0, nbk, T, k);
    }
  }
  free(p.owned);
  return 0;
}

static int poly_backward_input(float *dinp, const float *dout, const float *weight,
                               const nnk_conv *g, void *ws, size_t ws_bytes) {
  if (!poly_use(g, sizeof(float))) return 1;
  poly_plan pl;
  poly_ws p;
  int nt;
  if (poly_begin(g, &pl, ws, ws_bytes, &nt, &p)) return -1;
  float *U = p.U, *dV = p.V, *Z = p.M;
  const int64_t K = g->K, C4 = pl.C4;
  NNK_OMP(parallel num_threads(nt) if (nt > 1))
  {
    float *pb = poly_planes(&p, &pl, omp_get_thread_num());
    NNK_OMP(for schedule(static))
    for (int64_t k = 0; k < K; k++) poly_filter(U, weight, g, k);
    for (int64_t blk = 0; blk < pl.nblk; blk++) {
      const int64_t n0 = blk * pl.nb, nbk = imin64(pl.nb, g->N - n0), T = nbk * pl.tpi;
      NNK_OMP(for schedule(static))
      for (int64_t k = 0; k < K; k++) poly_dout(Z, pb, dout, g, &pl, n0, nbk, T, k);
      NNK_OMP(for schedule(static, 1))
      for (int it = 0; it < poly_items(nt); it++) { /* dV[xi] rows r0..r1 = (U[xi]^T) rows . Z[xi] */
        int64_t r0, r1;
        const int xi = poly_item(it, nt, C4, &r0, &r1);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(r1 - r0), (int)T, (int)K, 1.0f,
                    U + xi * K * C4 + r0, (int)C4, Z + xi * K * T, (int)T, 0.0f, dV + (xi * C4 + r0) * T, (int)T);
      }
      NNK_OMP(for schedule(static))
      for (int64_t c = 0; c < g->C; c++) poly_dinput(dinp, pb, dV, g, &pl, n0, nbk, T, c);
    }
  }
  free(p.owned);
  return 0;
}

static int poly_backward_weight(float *dweight, const float *inp, const float *dout,
                                const nnk_conv *g, void *ws, size_t ws_bytes) {
  if (!poly_use(g, sizeof(float))) return 1;
  poly_plan pl;
  poly_ws p;
  int nt;
  if (poly_begin(g, &pl, ws, ws_bytes, &nt, &p)) return -1;
  float *S = p.U, *V = p.V, *Z = p.M;
  const int64_t K = g->K, C4 = pl.C4;
  NNK_OMP(parallel num_threads(nt) if (nt > 1))
  {
    float *pb = poly_planes(&p, &pl, omp_get_thread_num());
    for (int64_t blk = 0; blk < pl.nblk; blk++) {
      const int64_t n0 = blk * pl.nb, nbk = imin64(pl.nb, g->N - n0), T = nbk * pl.tpi;
      NNK_OMP(for schedule(static))
      for (int64_t c = 0; c < g->C; c++) {
        poly_pad(pb, inp, g, &pl, n0, nbk, c);
        poly_input(V, pb, &pl, nbk, T, c);
      }
      NNK_OMP(for schedule(static))
      for (int64_t k = 0; k < K; k++) poly_dout(Z, pb, dout, g, &pl, n0, nbk, T, k);
      NNK_OMP(for schedule(static, 1))
      for (int it = 0; it < poly_items(nt); it++) { /* S[xi] rows r0..r1 += Z[xi] rows . V[xi]^T */
        int64_t r0, r1;
        const int xi = poly_item(it, nt, K, &r0, &r1);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0), (int)C4, (int)T, 1.0f,
                    Z + (xi * K + r0) * T, (int)T, V + xi * C4 * T, (int)T, blk ? 1.0f : 0.0f,
                    S + (xi * K + r0) * C4, (int)C4);
      }
    }
    NNK_OMP(for schedule(static))
    for (int64_t k = 0; k < K; k++) poly_dfilter(dweight, S, g, k);
  }
  free(p.owned);
  return 0;
}
