/* nnk_impl.h: the type-generic bodies of the kernels of nnk.c. Included twice by nnk.c with
 * T (float/double), FN(name) (name_f32/name_f64), GEMM, EXP, LOG, FLOOR defined; uses the
 * static helpers of nnk.c. Not a public header. */

/* ---- im2col / col2im ---------------------------------------------------------------------
 * col: (cc*R*S) x (rows*Q), leading dimension ld >= rows*Q, = the patches of output rows
 * [p0, p0+rows) over input channels [0, cc) of x (cc x H x W). col2im_acc adds such a matrix
 * back into x. A unit of several samples puts their matrices side by side (ld = samples*rows*Q). */

/* valid output columns [*qlo, *qhi) for kernel column s: 0 <= q*stride_w + s*dil_w - pad_w < W */
static inline void FN(qrange)(const nnk_conv *g, int64_t s, int64_t *qlo, int64_t *qhi) {
  int64_t off = s * g->dil_w - g->pad_w, lo = 0, hi;
  if (off < 0) lo = ceil_div64(-off, g->stride_w);
  hi = (g->W - 1 - off) >= 0 ? (g->W - 1 - off) / g->stride_w + 1 : 0;
  lo = imin64(lo, g->Q);
  hi = imin64(hi, g->Q);
  if (hi < lo) hi = lo;
  *qlo = lo;
  *qhi = hi;
}

/* stride 1 and Q == W (a "same" convolution): a kernel tap's rows are one shifted block of the
 * input plane, copied at once; the wrapped edge columns are zeroed afterwards */
static void FN(im2col_same)(T *col, const T *x, const nnk_conv *g, int64_t cc, int64_t p0,
                            int64_t rows, int64_t ld) {
  const int64_t H = g->H, W = g->W, Q = g->Q, HW = H * W, ncols = rows * Q;
  for (int64_t c = 0; c < cc; c++) {
    const T *xc = x + c * HW;
    for (int64_t r = 0; r < g->R; r++) {
      const int64_t sh = g->pad_h - r * g->dil_h; /* ih = p - sh */
      const int64_t pa = imax64(p0, sh), pb = imin64(p0 + rows, H + sh);
      for (int64_t s = 0; s < g->S; s++) {
        T *dst = col + ((c * g->R + r) * g->S + s) * ld;
        if (pa >= pb) {
          memset(dst, 0, (size_t)ncols * sizeof(T));
          continue;
        }
        int64_t qlo, qhi, off = s * g->dil_w - g->pad_w;
        FN(qrange)(g, s, &qlo, &qhi);
        memset(dst, 0, (size_t)((pa - p0) * Q) * sizeof(T));
        memset(dst + (pb - p0) * Q, 0, (size_t)((p0 + rows - pb) * Q) * sizeof(T));
        const int64_t s0 = (pa - sh) * W + off, len = (pb - pa) * W, d0 = (pa - p0) * Q;
        const int64_t a = imax64(s0, 0), b = imin64(s0 + len, HW);
        if (b > a) memcpy(dst + d0 + (a - s0), xc + a, (size_t)(b - a) * sizeof(T));
        if (qlo > 0 || qhi < Q) {
          for (int64_t p = pa; p < pb; p++) {
            T *row = dst + (p - p0) * Q;
            for (int64_t q = 0; q < qlo; q++) row[q] = 0;
            for (int64_t q = qhi; q < Q; q++) row[q] = 0;
          }
        }
      }
    }
  }
}

NNK_CLONES static int FN(im2col_taps)(T *col, const T *x, const nnk_conv *g, int64_t cc,
                                      int64_t p0, int64_t rows, int64_t ld, T *phbuf);

/* phbuf: room for the stride phases of cc channels, or NULL */
static void FN(im2col)(T *col, const T *x, const nnk_conv *g, int64_t cc, int64_t p0,
                       int64_t rows, int64_t ld, T *phbuf) {
  const int64_t H = g->H, W = g->W, Q = g->Q, sw = g->stride_w;
  const int64_t HW = H * W;
  if (!FN(im2col_taps)(col, x, g, cc, p0, rows, ld, phbuf)) return;
  if (sw == 1 && g->stride_h == 1 && Q == W) {
    FN(im2col_same)(col, x, g, cc, p0, rows, ld);
    return;
  }
  for (int64_t c = 0; c < cc; c++) {
    const T *xc = x + c * HW;
    for (int64_t r = 0; r < g->R; r++) {
      for (int64_t s = 0; s < g->S; s++) {
        T *dst = col + ((c * g->R + r) * g->S + s) * ld;
        int64_t qlo, qhi, off = s * g->dil_w - g->pad_w;
        FN(qrange)(g, s, &qlo, &qhi);
        for (int64_t p = p0; p < p0 + rows; p++, dst += Q) {
          int64_t ih = p * g->stride_h - g->pad_h + r * g->dil_h;
          if (ih < 0 || ih >= H) {
            for (int64_t q = 0; q < Q; q++) dst[q] = 0;
            continue;
          }
          const T *src = xc + ih * W;
          for (int64_t q = 0; q < qlo; q++) dst[q] = 0;
          if (sw == 1) {
            const T *sp = src + qlo + off;
            T *dp = dst + qlo;
            NNK_SIMD
            for (int64_t q = 0; q < qhi - qlo; q++) dp[q] = sp[q];
          } else {
            for (int64_t q = qlo; q < qhi; q++) dst[q] = src[q * sw + off];
          }
          for (int64_t q = qhi; q < Q; q++) dst[q] = 0;
        }
      }
    }
  }
}

static void FN(col2im_acc)(T *x, const T *col, const nnk_conv *g, int64_t cc, int64_t p0,
                           int64_t rows, int64_t ld) {
  const int64_t H = g->H, W = g->W, Q = g->Q, sw = g->stride_w;
  const int64_t HW = H * W;
  for (int64_t c = 0; c < cc; c++) {
    T *xc = x + c * HW;
    for (int64_t r = 0; r < g->R; r++) {
      for (int64_t s = 0; s < g->S; s++) {
        const T *src = col + ((c * g->R + r) * g->S + s) * ld;
        int64_t qlo, qhi, off = s * g->dil_w - g->pad_w;
        FN(qrange)(g, s, &qlo, &qhi);
        for (int64_t p = p0; p < p0 + rows; p++, src += Q) {
          int64_t ih = p * g->stride_h - g->pad_h + r * g->dil_h;
          if (ih < 0 || ih >= H) continue;
          T *dst = xc + ih * W;
          if (sw == 1) {
            NNK_SIMD
            for (int64_t q = qlo; q < qhi; q++) dst[q + off] += src[q];
          } else {
            for (int64_t q = qlo; q < qhi; q++) dst[q * sw + off] += src[q];
          }
        }
      }
    }
  }
}

/* ---- im2col / col2im by shifted planes (conv_tap) ------------------------------------------
 * When a plane is as wide as the output (Wp == Q), a tap's rows x Q block and the plane are
 * contiguous alike: one vector loop per tap, with the columns that would wrap into the
 * neighbouring row masked out (m[d] = 0). Other widths go row by row. */

#define NNK_MASK_MAX 1024 /* largest rows*Q whose taps use a column mask */
/* stride 1 goes by taps for "same" planes narrower than 128 (wider rows are copied as fast
 * row by row: 256x256 was 6% slower by taps, 32..128 wide even, 7..28 wide 5-25% faster) */
#define NNK_TAPS_SAME(g, n) ((g)->Q == (g)->W && (g)->Q < 128 && (n) <= NNK_MASK_MAX)

NNK_INLINE void FN(tap_mask)(T *m, const conv_tap *t, int64_t Q, int64_t rows) {
  for (int64_t q = 0; q < Q; q++) m[q] = (q + t->ow >= 0 && q + t->ow < t->Wp) ? (T)1 : (T)0;
  for (int64_t p = 1; p < rows; p++) memcpy(m + p * Q, m, (size_t)Q * sizeof(T));
}

/* block [*d0, *d1) of the rows x Q block (output rows p0...) whose rows are inside the plane and
 * whose source index d + *off is too; Wp == Q */
NNK_INLINE void FN(tap_block)(const conv_tap *t, int64_t Q, int64_t p0, int64_t rows,
                              int64_t *d0, int64_t *d1, int64_t *off) {
  const int64_t pa = imax64(p0, -t->oh), pb = imin64(p0 + rows, t->Hp - t->oh);
  *off = (p0 + t->oh) * Q + t->ow;
  *d0 = *d1 = 0;
  if (pa >= pb) return;
  *d0 = imin64(imax64((pa - p0) * Q, -*off), rows * Q);
  *d1 = imax64(*d0, imin64((pb - p0) * Q, t->Hp * Q - *off));
}

/* valid output columns [*qlo, *qhi) of a tap */
NNK_INLINE void FN(tap_cols)(const conv_tap *t, int64_t Q, int64_t *qlo, int64_t *qhi) {
  *qlo = imin64(imax64(-t->ow, 0), Q);
  *qhi = imax64(*qlo, imin64(t->Wp - t->ow, Q));
}

/* dst (rows x Q) = the tap's view of plane for output rows [p0, p0+rows), zero outside it;
 * m: the tap's mask, or NULL to go row by row */
NNK_INLINE void FN(tap_copy)(T *dst, const T *plane, const conv_tap *t, const T *m, int64_t Q,
                         int64_t p0, int64_t rows) {
  if (m) {
    int64_t d0, d1, off;
    FN(tap_block)(t, Q, p0, rows, &d0, &d1, &off);
    for (int64_t d = 0; d < d0; d++) dst[d] = 0;
    NNK_SIMD
    for (int64_t d = d0; d < d1; d++) { /* loads outside the branch: the loop vectorises */
      const T v = plane[d + off];
      dst[d] = m[d] != (T)0 ? v : (T)0;
    }
    for (int64_t d = d1; d < rows * Q; d++) dst[d] = 0;
    return;
  }
  int64_t qlo, qhi;
  FN(tap_cols)(t, Q, &qlo, &qhi);
  for (int64_t p = p0; p < p0 + rows; p++, dst += Q) {
    const int64_t i = p + t->oh;
    if (i < 0 || i >= t->Hp || qlo == qhi) {
      memset(dst, 0, (size_t)Q * sizeof(T));
      continue;
    }
    const T *src = plane + i * t->Wp + t->ow + qlo;
    for (int64_t q = 0; q < qlo; q++) dst[q] = 0;
    NNK_SIMD
    for (int64_t q = qlo; q < qhi; q++) dst[q] = src[q - qlo];
    for (int64_t q = qhi; q < Q; q++) dst[q] = 0;
  }
}

/* plane += the tap's part of src (P x Q, all output rows); m as for tap_copy */
NNK_INLINE void FN(tap_add)(T *plane, const T *src, const conv_tap *t, const T *m, int64_t Q,
                        int64_t P) {
  if (m) {
    int64_t d0, d1, off;
    FN(tap_block)(t, Q, 0, P, &d0, &d1, &off);
    NNK_SIMD
    for (int64_t d = d0; d < d1; d++) {
      const T v = src[d];
      plane[d + off] += m[d] != (T)0 ? v : (T)0;
    }
    return;
  }
  int64_t qlo, qhi;
  FN(tap_cols)(t, Q, &qlo, &qhi);
  for (int64_t p = imax64(0, -t->oh); p < imin64(P, t->Hp - t->oh); p++) {
    T *dst = plane + (p + t->oh) * t->Wp + t->ow + qlo;
    const T *s = src + p * Q + qlo;
    NNK_SIMD
    for (int64_t q = 0; q < qhi - qlo; q++) dst[q] += s[q];
  }
}

#define NNK_PHASE_TMP 4096 /* largest plane split through a stack buffer */

/* the stride phases of one H x W plane x into ph, or back (merge: x = ph) */
NNK_INLINE void FN(phase_move)(T *ph, T *x, const nnk_conv *g, int merge) {
  const int64_t H = g->H, W = g->W, sh = g->stride_h, sw = g->stride_w;
  if (W % sw == 0 && H * W <= NNK_PHASE_TMP) {
    /* whole-plane passes: columns split by stride (long loops that vectorise), then rows
     * regrouped by phase with row copies */
    T tmp[NNK_PHASE_TMP];
    const int64_t Wp = W / sw, n = H * Wp;
    if (!merge) {
      if (sw == 2) {
        NNK_SIMD
        for (int64_t k = 0; k < n; k++) {
          tmp[k] = x[2 * k];
          tmp[n + k] = x[2 * k + 1];
        }
      } else {
        for (int64_t b = 0; b < sw; b++)
          for (int64_t k = 0; k < n; k++) tmp[b * n + k] = x[sw * k + b];
      }
    }
    for (int64_t b = 0; b < sw; b++)
      for (int64_t a = 0, r0 = 0; a < sh; a++) {
        const int64_t Hp = phase_len(H, sh, a);
        for (int64_t i = 0; i < Hp; i++) {
          T *pr = ph + b * n + (r0 + i) * Wp, *tr = tmp + b * n + (i * sh + a) * Wp;
          if (merge) /* short rows: loops, not memcpy calls */
            for (int64_t j = 0; j < Wp; j++) tr[j] = pr[j];
          else
            for (int64_t j = 0; j < Wp; j++) pr[j] = tr[j];
        }
        r0 += Hp;
      }
    if (merge) {
      if (sw == 2) {
        NNK_SIMD
        for (int64_t k = 0; k < n; k++) {
          x[2 * k] = tmp[k];
          x[2 * k + 1] = tmp[n + k];
        }
      } else {
        for (int64_t b = 0; b < sw; b++)
          for (int64_t k = 0; k < n; k++) x[sw * k + b] = tmp[b * n + k];
      }
    }
    return;
  }
  for (int64_t b = 0, c0 = 0; b < sw; b++) {
    const int64_t Wp = phase_len(W, sw, b);
    T *pr = ph + c0 * H, *xb = x + b;
    for (int64_t a = 0; a < sh; a++) {
      const int64_t Hp = phase_len(H, sh, a);
      for (int64_t i = 0; i < Hp; i++, pr += Wp) {
        T *xr = xb + (i * sh + a) * W;
        if (merge)
          for (int64_t j = 0; j < Wp; j++) xr[j * sw] = pr[j];
        else
          for (int64_t j = 0; j < Wp; j++) pr[j] = xr[j * sw];
      }
    }
    c0 += Wp;
  }
}

/* every tap of cc channels between col (leading dimension ld) and their planes: col rows =
 * the planes' shifted views for output rows [p0, p0+rows) (add = 0), or planes += col rows
 * (add = 1, p0 = 0, rows = P) */
NNK_INLINE void FN(taps)(T *col, T *planes, const nnk_conv *g, int64_t cc, int64_t p0,
                         int64_t rows, int64_t ld, int add) {
  const int64_t Q = g->Q, HW = (int64_t)g->H * g->W, n = rows * Q;
  T m[NNK_MASK_MAX];
  for (int64_t s = 0; s < g->S; s++) {
    conv_tap t;
    conv_tap_make(&t, g, 0, s);
    const T *mask = n <= NNK_MASK_MAX && t.Wp == Q ? m : NULL;
    if (mask) FN(tap_mask)(m, &t, Q, rows);
    for (int64_t r = 0; r < g->R; r++) {
      conv_tap_make(&t, g, r, s);
      for (int64_t c = 0; c < cc; c++) {
        T *row = col + ((c * g->R + r) * g->S + s) * ld, *plane = planes + c * HW + t.base;
        if (add)
          FN(tap_add)(plane, row, &t, mask, Q, rows);
        else
          FN(tap_copy)(row, plane, &t, mask, Q, p0, rows);
      }
    }
  }
}

/* im2col by taps: for stride 1 with Q == W and small blocks, or with the phases in phbuf;
 * returns 1 when not applicable */
NNK_CLONES static int FN(im2col_taps)(T *col, const T *x, const nnk_conv *g, int64_t cc,
                                      int64_t p0, int64_t rows, int64_t ld, T *phbuf) {
  const int64_t HW = (int64_t)g->H * g->W;
  const int strided = g->stride_h > 1 || g->stride_w > 1;
  if (strided ? !phbuf || p0 != 0 || !conv_uses_phases(g, rows) : !NNK_TAPS_SAME(g, rows * g->Q))
    return 1;
  if (strided)
    for (int64_t c = 0; c < cc; c++) /* reads x only */
      FN(phase_move)(phbuf + c * HW, (T *)x + c * HW, g, 0);
  FN(taps)(col, strided ? phbuf : (T *)x, g, cc, p0, rows, ld, 0); /* reads the planes only */
  return 0;
}

/* x (cc x H x W) = col2im of col (all P output rows, leading dimension ld); phbuf: room for
 * the stride phases of cc channels, or NULL */
NNK_CLONES static void FN(col2im)(T *x, const T *col, const nnk_conv *g, int64_t cc,
                                  int64_t ld, T *phbuf) {
  const int64_t HW = (int64_t)g->H * g->W;
  const int strided = g->stride_h > 1 || g->stride_w > 1;
  if (strided ? !phbuf || !conv_uses_phases(g, g->P) : !NNK_TAPS_SAME(g, g->P * g->Q)) {
    memset(x, 0, (size_t)(cc * HW) * sizeof(T));
    FN(col2im_acc)(x, col, g, cc, 0, g->P, ld);
    return;
  }
  T *planes = strided ? phbuf : x;
  memset(planes, 0, (size_t)(cc * HW) * sizeof(T));
  FN(taps)((T *)col, planes, g, cc, 0, g->P, ld, 1); /* reads col only */
  if (strided)
    for (int64_t c = 0; c < cc; c++) FN(phase_move)(phbuf + c * HW, x + c * HW, g, 1);
}

static void *FN(ws_alloc)(size_t n) {
  if (n == 0) return NULL;
  return aligned_alloc(64, round64(n));
}

/* ---- depthwise conv2d: direct loops ------------------------------------------------------- */

/* valid column ranges of the S kernel columns */
static void FN(qranges)(const nnk_conv *g, int64_t *qlo, int64_t *qhi) {
  for (int64_t s = 0; s < g->S; s++) FN(qrange)(g, s, &qlo[s], &qhi[s]);
}

/* one plane of a stride-1 depthwise convolution with Q == W: rows of the output and of the
 * input are contiguous alike, so each kernel tap is one long axpy over the whole band of valid
 * rows; the few edge columns, where that axpy wraps into the neighbouring row, are recomputed
 * exactly afterwards */
static inline void FN(dw_forward_same)(T *y, const T *x, const T *w, T b, const nnk_conv *g,
                                       const int64_t *qlo, const int64_t *qhi) {
  const int64_t H = g->H, W = g->W, P = g->P, Q = g->Q, PQ = P * Q, R = g->R, S = g->S;
  int64_t lo = 0, hi = Q; /* columns where every tap is inside the row */
  for (int64_t s = 0; s < S; s++) {
    lo = imax64(lo, qlo[s]);
    hi = imin64(hi, qhi[s]);
  }
  if (hi < lo) hi = lo;
  NNK_SIMD
  for (int64_t i = 0; i < PQ; i++) y[i] = b;
  for (int64_t r = 0; r < R; r++) {
    const int64_t dr = r * g->dil_h - g->pad_h; /* ih = p + dr */
    const int64_t pa = imax64(0, -dr), pb = imin64(P, H - dr);
    if (pa >= pb) continue;
    const int64_t base = dr * W; /* x index = y index + base + off */
    for (int64_t s0 = 0; s0 < S; s0 += 3) {
      const int64_t ns = imin64(3, S - s0);
      const int64_t o0 = base + s0 * g->dil_w - g->pad_w, o1 = o0 + g->dil_w, o2 = o1 + g->dil_w;
      /* y range of the band, clipped so that every read stays inside the plane */
      const int64_t omin = o0, omax = o0 + (ns - 1) * g->dil_w;
      const int64_t i0 = imax64(pa * Q, -omin), i1 = imin64(pb * Q, (int64_t)H * W - omax);
      const T w0 = w[r * S + s0];
      if (ns == 3) {
        const T w1 = w[r * S + s0 + 1], w2 = w[r * S + s0 + 2];
        NNK_SIMD
        for (int64_t i = i0; i < i1; i++) y[i] += w0 * x[i + o0] + w1 * x[i + o1] + w2 * x[i + o2];
      } else if (ns == 2) {
        const T w1 = w[r * S + s0 + 1];
        NNK_SIMD
        for (int64_t i = i0; i < i1; i++) y[i] += w0 * x[i + o0] + w1 * x[i + o1];
      } else {
        NNK_SIMD
        for (int64_t i = i0; i < i1; i++) y[i] += w0 * x[i + o0];
      }
    }
  }
  if (lo == 0 && hi == Q) return;
  for (int64_t p = 0; p < P; p++) { /* exact edge columns */
    int64_t rlo = 0, rhi = R; /* valid kernel rows for output row p */
    while (rlo < R && p + rlo * g->dil_h - g->pad_h < 0) rlo++;
    while (rhi > rlo && p + (rhi - 1) * g->dil_h - g->pad_h >= H) rhi--;
    for (int64_t q = 0; q < Q; q++) {
      if (q == lo) q = hi;
      if (q >= Q) break;
      int64_t slo = 0, shi = S; /* valid kernel columns for output column q */
      while (slo < S && q + slo * g->dil_w - g->pad_w < 0) slo++;
      while (shi > slo && q + (shi - 1) * g->dil_w - g->pad_w >= W) shi--;
      T acc = b;
      for (int64_t r = rlo; r < rhi; r++) {
        const T *xr = x + (p + r * g->dil_h - g->pad_h) * W + q - g->pad_w;
        for (int64_t s2 = slo; s2 < shi; s2++) acc += w[r * S + s2] * xr[s2 * g->dil_w];
      }
      y[p * Q + q] = acc;
    }
  }
}

NNK_CLONES static void FN(dw_forward)(T *out, const T *inp, const T *weight, const T *bias,
                           const nnk_conv *g) {
  const int64_t K = g->K, Kg = K / g->groups, HW = (int64_t)g->H * g->W;
  const int64_t P = g->P, Q = g->Q, PQ = P * Q, R = g->R, S = g->S, sw = g->stride_w;
  int64_t qlo[32], qhi[32];
  FN(qranges)(g, qlo, qhi);
  NNK_OMP(parallel for schedule(static) if (g->N * K * PQ * R * S > NNK_PAR_MIN))
  for (int64_t nk = 0; nk < g->N * K; nk++) {
    const int64_t n = nk / K, k = nk % K, c = k / Kg;
    const T *x = inp + (n * g->C + c) * HW, *w = weight + k * R * S;
    const T b = bias ? bias[k] : (T)0;
    if (sw == 1 && g->stride_h == 1 && Q == g->W) {
      FN(dw_forward_same)(out + nk * PQ, x, w, b, g, qlo, qhi);
      continue;
    }
    for (int64_t p = 0; p < P; p++) {
      T *y = out + nk * PQ + p * Q;
      NNK_SIMD
      for (int64_t q = 0; q < Q; q++) y[q] = b;
      for (int64_t r = 0; r < R; r++) {
        const int64_t ih = p * g->stride_h - g->pad_h + r * g->dil_h;
        if (ih < 0 || ih >= g->H) continue;
        const T *xr = x + ih * g->W;
        if (sw == 1 && S == 3) { /* the three taps of a row fused over the interior */
          const T w0 = w[r * 3], w1 = w[r * 3 + 1], w2 = w[r * 3 + 2];
          const int64_t o0 = -g->pad_w, o1 = g->dil_w - g->pad_w, o2 = 2 * g->dil_w - g->pad_w;
          const int64_t lo = imax64(qlo[0], imax64(qlo[1], qlo[2]));
          const int64_t hi = imax64(lo, imin64(qhi[0], imin64(qhi[1], qhi[2])));
          NNK_SIMD
          for (int64_t q = lo; q < hi; q++)
            y[q] += w0 * xr[q + o0] + w1 * xr[q + o1] + w2 * xr[q + o2];
          for (int64_t s = 0; s < 3; s++) { /* the border columns, tap by tap */
            const T wv = w[r * 3 + s];
            const int64_t off = s * g->dil_w - g->pad_w;
            for (int64_t q = qlo[s]; q < imin64(qhi[s], lo); q++) y[q] += wv * xr[q + off];
            for (int64_t q = imax64(qlo[s], hi); q < qhi[s]; q++) y[q] += wv * xr[q + off];
          }
          continue;
        }
        for (int64_t s = 0; s < S; s++) {
          const T wv = w[r * S + s];
          const int64_t off = s * g->dil_w - g->pad_w;
          if (sw == 1) {
            NNK_SIMD
            for (int64_t q = qlo[s]; q < qhi[s]; q++) y[q] += wv * xr[q + off];
          } else {
            for (int64_t q = qlo[s]; q < qhi[s]; q++) y[q] += wv * xr[q * sw + off];
          }
        }
      }
    }
  }
}

/* stride 1, one output per group: dinp = depthwise forward of dout with the flipped kernel and
 * padding dil*(k-1) - pad; returns 0 when done, 1 when not applicable, -1 on malloc failure */
static int FN(dw_backward_input_flipped)(T *dinp, const T *dout, const T *weight,
                                         const nnk_conv *g) {
  nnk_conv f;
  const int ph = g->dil_h * (g->R - 1) - g->pad_h, pw = g->dil_w * (g->S - 1) - g->pad_w;
  if (g->stride_h != 1 || g->stride_w != 1 || g->K != g->C || ph < 0 || pw < 0) return 1;
  if (nnk_conv_setup(&f, g->N, g->K, g->P, g->Q, g->C, g->R, g->S, 1, 1, ph, pw, g->dil_h,
                     g->dil_w, g->groups) ||
      f.P != g->H || f.Q != g->W)
    return 1;
  const int64_t RS = (int64_t)g->R * g->S;
  T *wf = (T *)FN(ws_alloc)((size_t)(g->K * RS) * sizeof(T));
  if (!wf) return -1;
  for (int64_t k = 0; k < g->K; k++)
    for (int64_t i = 0; i < RS; i++) wf[k * RS + RS - 1 - i] = weight[k * RS + i];
  FN(dw_forward)(dinp, dout, wf, NULL, &f);
  free(wf);
  return 0;
}

NNK_CLONES static void FN(dw_backward_input)(T *dinp, const T *dout, const T *weight, const nnk_conv *g) {
  const int64_t K = g->K, Kg = K / g->groups, HW = (int64_t)g->H * g->W;
  const int64_t P = g->P, Q = g->Q, PQ = P * Q, R = g->R, S = g->S, sw = g->stride_w;
  int64_t qlo[32], qhi[32];
  FN(qranges)(g, qlo, qhi);
  NNK_OMP(parallel for schedule(static) if (g->N * K * PQ * R * S > NNK_PAR_MIN))
  for (int64_t nc = 0; nc < (int64_t)g->N * g->C; nc++) {
    const int64_t n = nc / g->C, c = nc % g->C;
    T *dx = dinp + nc * HW;
    memset(dx, 0, (size_t)HW * sizeof(T));
    for (int64_t k = c * Kg; k < (c + 1) * Kg; k++) {
      const T *dy = dout + (n * K + k) * PQ, *w = weight + k * R * S;
      for (int64_t p = 0; p < P; p++) {
        const T *dyr = dy + p * Q;
        for (int64_t r = 0; r < R; r++) {
          const int64_t ih = p * g->stride_h - g->pad_h + r * g->dil_h;
          if (ih < 0 || ih >= g->H) continue;
          T *dxr = dx + ih * g->W;
          for (int64_t s = 0; s < S; s++) {
            const T wv = w[r * S + s];
            const int64_t off = s * g->dil_w - g->pad_w;
            if (sw == 1) {
              NNK_SIMD
              for (int64_t q = qlo[s]; q < qhi[s]; q++) dxr[q + off] += wv * dyr[q];
            } else {
              for (int64_t q = qlo[s]; q < qhi[s]; q++) dxr[q * sw + off] += wv * dyr[q];
            }
          }
        }
      }
    }
  }
}

NNK_CLONES static void FN(dw_backward_weight)(T *dweight, const T *inp, const T *dout, const nnk_conv *g) {
  const int64_t K = g->K, Kg = K / g->groups, HW = (int64_t)g->H * g->W;
  const int64_t P = g->P, Q = g->Q, PQ = P * Q, R = g->R, S = g->S, sw = g->stride_w;
  int64_t qlo[32], qhi[32];
  FN(qranges)(g, qlo, qhi);
  NNK_OMP(parallel for schedule(static) if (g->N * K * PQ * R * S > NNK_PAR_MIN))
  for (int64_t k = 0; k < K; k++) {
    const int64_t c = k / Kg;
    for (int64_t r = 0; r < R; r++) {
      for (int64_t s = 0; s < S; s++) {
        const int64_t off = s * g->dil_w - g->pad_w;
        double acc = 0;
        for (int64_t n = 0; n < g->N; n++) {
          const T *x = inp + (n * g->C + c) * HW, *dy = dout + (n * K + k) * PQ;
          for (int64_t p = 0; p < P; p++) {
            const int64_t ih = p * g->stride_h - g->pad_h + r * g->dil_h;
            if (ih < 0 || ih >= g->H) continue;
            const T *xr = x + ih * g->W, *dyr = dy + p * Q;
            T a = 0;
            if (sw == 1) {
              NNK_SIMD_RED(+ : a)
              for (int64_t q = qlo[s]; q < qhi[s]; q++) a += dyr[q] * xr[q + off];
            } else {
              for (int64_t q = qlo[s]; q < qhi[s]; q++) a += dyr[q] * xr[q * sw + off];
            }
            acc += (double)a;
          }
        }
        dweight[(k * R + r) * S + s] = (T)acc;
      }
    }
  }
}

/* ---- conv2d ------------------------------------------------------------------------------ */

size_t FN(nnk_conv2d_forward_workspace_size)(const nnk_conv *g) {
  return conv_ws_query(g, 0, sizeof(T));
}
size_t FN(nnk_conv2d_backward_input_workspace_size)(const nnk_conv *g) {
  return conv_ws_query(g, 1, sizeof(T));
}
size_t FN(nnk_conv2d_backward_weight_workspace_size)(const nnk_conv *g) {
  return conv_ws_query(g, 2, sizeof(T));
}

/* Common start of the conv kernels: plan, thread count, workspace. Returns -1 on failure;
 * *wsp is the workspace to use, *owned set when it was allocated here. */
static int FN(conv_begin)(conv_plan *pl, int *nt, void **wsp, int *owned, const nnk_conv *g,
                          int kind, void *ws, size_t ws_bytes, int64_t units) {
  int alloc;
  *owned = 0;
  conv_plan_make(pl, g, kind, sizeof(T), omp_get_max_threads());
  *nt = conv_threads(pl, ws, ws_bytes, &alloc);
  if (*nt < 1) return -1;
  const int64_t Cg = g->C / g->groups;
  double macs = (double)g->N * (double)g->K * (double)(Cg * g->R * g->S) * (double)g->P * (double)g->Q;
  if (macs < 65536.0) *nt = 1;
  conv_plan_make(pl, g, kind, sizeof(T), *nt);
  if (units < 0) units = kind == 1 ? pl->nsb * g->groups * pl->nchunk : pl->nsb * pl->nblk;
  if (kind != 2 && units < *nt) *nt = units < 1 ? 1 : (int)units;
  *wsp = ws;
  if (alloc) {
    size_t need = conv_ws_bytes(pl, *nt);
    if (need) {
      *wsp = FN(ws_alloc)(need);
      if (!*wsp) return -1;
      *owned = 1;
    }
  }
  return 0;
}

/* one thread's buffers in the workspace: the column matrix, the gemm's other block for a unit
 * of several samples (its result, or the gathered dout), the stride phases (NULL if unused) */
typedef struct {
  T *col, *tmp, *ph;
} FN(conv_buf);

static FN(conv_buf) FN(conv_bufs)(const conv_plan *pl, void *w, int tid) {
  char *base = w ? (char *)w + (size_t)tid * pl->col_bytes : NULL;
  FN(conv_buf) b = {(T *)base, NULL, NULL};
  if (base && pl->nb > 1) b.tmp = (T *)(base + pl->tmp_off);
  if (base && pl->ph_off) b.ph = (T *)(base + pl->ph_off);
  return b;
}

/* the column matrix of samples [n0, n0+ns), output rows [p0, p0+nr), group gi, side by side
 * in col (leading dimension ns*nr*Q); for one sample of a 1x1 convolution the input itself.
 * Returns the matrix and sets *ld. */
static const T *FN(conv_cols)(const FN(conv_buf) *bf, const T *inp, const nnk_conv *g,
                              const conv_plan *pl, int64_t n0, int64_t ns, int64_t gi, int64_t p0,
                              int64_t nr, int64_t *ld) {
  const int64_t Cg = g->C / g->groups, HW = (int64_t)g->H * g->W, ncols = nr * g->Q;
  const T *x = inp + (n0 * g->C + gi * Cg) * HW;
  if (pl->direct) { /* one sample (conv_batch_bound) */
    *ld = HW;
    return x + p0 * g->Q;
  }
  *ld = ns * ncols;
  for (int64_t s = 0; s < ns; s++)
    FN(im2col)(bf->col + s * ncols, x + s * g->C * HW, g, Cg, p0, nr, *ld, bf->ph);
  return bf->col;
}

/* dout of samples [n0, n0+ns), output rows [p0, p0+nr), group gi as one matrix
 * Kg x (ns*nr*Q): dout itself for one sample, else gathered into buf. Sets *ld. */
static const T *FN(conv_dout_block)(T *buf, const T *dout, const nnk_conv *g, int64_t n0,
                                    int64_t ns, int64_t gi, int64_t p0, int64_t nr, int64_t *ld) {
  const int64_t Kg = g->K / g->groups, PQ = (int64_t)g->P * g->Q, ncols = nr * g->Q;
  const T *dy = dout + (n0 * g->K + gi * Kg) * PQ + p0 * g->Q;
  if (ns == 1) {
    *ld = PQ;
    return dy;
  }
  *ld = ns * ncols;
  for (int64_t k = 0; k < Kg; k++)
    for (int64_t s = 0; s < ns; s++)
      memcpy(buf + k * *ld + s * ncols, dy + (s * g->K + k) * PQ, (size_t)ncols * sizeof(T));
  return buf;
}

/* one forward unit: a block of samples (or one sample's output rows [p0, p0+nr)), all groups */
static void FN(conv_fwd_unit)(T *out, const T *inp, const T *weight, const T *bias,
                              const nnk_conv *g, const conv_plan *pl, const FN(conv_buf) *bf,
                              int64_t u) {
  const int64_t G = g->groups, Cg = g->C / G, Kg = g->K / G;
  const int64_t PQ = (int64_t)g->P * g->Q, CRSg = Cg * g->R * g->S;
  T *tmp = bf->tmp;
  const int64_t p0 = (u % pl->nblk) * pl->rows, nr = imin64(pl->rows, g->P - p0);
  const int64_t ncols = nr * g->Q;
  int64_t n0, ns, ldb;
  conv_block_samples(pl, g->N, u / pl->nblk, &n0, &ns);
  for (int64_t gi = 0; gi < G; gi++) {
    const T *b = FN(conv_cols)(bf, inp, g, pl, n0, ns, gi, p0, nr, &ldb);
    const T *wg = weight + gi * Kg * CRSg;
    T *o = out + (n0 * g->K + gi * Kg) * PQ + p0 * g->Q;
    if (ns > 1) { /* one gemm for the block, then each sample's rows to its place (+ bias) */
      GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Kg, (int)ldb, (int)CRSg, (T)1, wg,
           (int)CRSg, b, (int)ldb, (T)0, tmp, (int)ldb);
      for (int64_t s = 0; s < ns; s++)
        for (int64_t k = 0; k < Kg; k++) {
          const T bk = bias ? bias[gi * Kg + k] : (T)0, *src = tmp + k * ldb + s * ncols;
          T *ok = o + (s * g->K + k) * PQ;
          NNK_SIMD
          for (int64_t j = 0; j < ncols; j++) ok[j] = src[j] + bk;
        }
      continue;
    }
    if (bias) { /* start from the bias and accumulate (saves gemm's separate beta = 0 pass) */
      for (int64_t k = 0; k < Kg; k++) {
        const T bk = bias[gi * Kg + k];
        T *ok = o + k * PQ;
        NNK_SIMD
        for (int64_t j = 0; j < ncols; j++) ok[j] = bk;
      }
    }
    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Kg, (int)ncols, (int)CRSg, (T)1, wg,
         (int)CRSg, b, (int)ldb, bias ? (T)1 : (T)0, o, (int)PQ);
  }
}

/* out: (N,K,P,Q), inp: (N,C,H,W), weight: (K,C/groups,R,S), bias: (K) or NULL */
int FN(nnk_conv2d_forward)(T *out, const T *inp, const T *weight, const T *bias,
                           const nnk_conv *g, void *ws, size_t ws_bytes) {
  return FN(nnk_conv2d_forward_keep)(out, inp, weight, bias, NULL, g, ws, ws_bytes);
}

size_t FN(nnk_conv2d_keep_bytes)(const nnk_conv *g) {
  return nnk_conv_check(g) ? 0 : FN(nnk_poly_keep_bytes)(g, 1);
}

int FN(nnk_conv2d_forward_keep)(T *out, const T *inp, const T *weight, const T *bias, void *keep,
                                const nnk_conv *g, void *ws, size_t ws_bytes) {
  FN(nnk_poly_keep_clear)(keep);
  if (nnk_conv_check(g) || !out || !inp || !weight) return -1;
  if (conv_is_depthwise(g)) {
    FN(dw_forward)(out, inp, weight, bias, g);
    return 0;
  }
  const int wrc = FN(nnk_wino_forward)(out, inp, weight, bias, g, ws, ws_bytes); /* winograd.c */
  if (wrc <= 0) return wrc;
  const int prc = FN(nnk_poly_forward)(out, inp, weight, bias, keep, g, ws, ws_bytes); /* polyphase.c */
  if (prc <= 0) return prc;
  conv_plan pl;
  int nt, owned;
  void *w;
  if (FN(conv_begin)(&pl, &nt, &w, &owned, g, 0, ws, ws_bytes, -1)) return -1;
  const int64_t units = pl.nsb * pl.nblk;
  NNK_OMP(parallel num_threads(nt) if (nt > 1))
  {
    const FN(conv_buf) bf = FN(conv_bufs)(&pl, w, omp_get_thread_num());
    NNK_OMP(for schedule(static))
    for (int64_t u = 0; u < units; u++) FN(conv_fwd_unit)(out, inp, weight, bias, g, &pl, &bf, u);
  }
  if (owned) free(w);
  return 0;
}

/* one backward_input unit: a block of samples, group gi, input channels [c0, c0+cc) of the
 * group */
static void FN(conv_bwi_unit)(T *dinp, const T *dout, const T *weight, const nnk_conv *g,
                              const conv_plan *pl, const FN(conv_buf) *bf, int64_t u) {
  const int64_t G = g->groups, Cg = g->C / G, Kg = g->K / G, RS = (int64_t)g->R * g->S;
  const int64_t HW = (int64_t)g->H * g->W, PQ = (int64_t)g->P * g->Q, CRSg = Cg * RS;
  const int64_t gi = (u / pl->nchunk) % G;
  const int64_t c0 = (u % pl->nchunk) * pl->cc, ncc = imin64(pl->cc, Cg - c0);
  int64_t n0, ns;
  conv_block_samples(pl, g->N, u / (G * pl->nchunk), &n0, &ns);
  T *dx = dinp + (n0 * g->C + gi * Cg + c0) * HW;
  const T *a = weight + gi * Kg * CRSg + c0 * RS; /* used transposed: (ncc*RS) x Kg */
  if (ns > 1) { /* one gemm for the block (rows == P), then col2im sample by sample */
    int64_t ld;
    const T *dy = FN(conv_dout_block)(bf->tmp, dout, g, n0, ns, gi, 0, g->P, &ld);
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(ncc * RS), (int)ld, (int)Kg, (T)1, a,
         (int)CRSg, dy, (int)ld, (T)0, bf->col, (int)ld);
    for (int64_t s = 0; s < ns; s++)
      FN(col2im)(dx + s * g->C * HW, bf->col + s * PQ, g, ncc, ld, bf->ph);
    return;
  }
  T *col = bf->col;
  const T *dy = dout + (n0 * g->K + gi * Kg) * PQ;
  if (pl->direct) {
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ncc, (int)PQ, (int)Kg, (T)1, a,
         (int)CRSg, dy, (int)PQ, (T)0, dx, (int)HW);
    return;
  }
  if (pl->rows == g->P) {
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(ncc * RS), (int)PQ, (int)Kg, (T)1, a,
         (int)CRSg, dy, (int)PQ, (T)0, col, (int)PQ);
    FN(col2im)(dx, col, g, ncc, PQ, bf->ph);
    return;
  }
  memset(dx, 0, (size_t)(ncc * HW) * sizeof(T));
  for (int64_t p0 = 0; p0 < g->P; p0 += pl->rows) {
    const int64_t nr = imin64(pl->rows, g->P - p0), ncols = nr * g->Q;
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(ncc * RS), (int)ncols, (int)Kg, (T)1, a,
         (int)CRSg, dy + p0 * g->Q, (int)PQ, (T)0, col, (int)ncols);
    FN(col2im_acc)(dx, col, g, ncc, p0, nr, ncols);
  }
}

/* stride 1: dinp = conv2d_forward(dout, flipped weight) with the geometry f of conv_bwi_flip */
static int FN(conv_bwi_flipped)(T *dinp, const T *dout, const T *weight, const nnk_conv *g,
                                const nnk_conv *f, void *ws, size_t ws_bytes) {
  const size_t fb = conv_flip_bytes(g, sizeof(T));
  T *wf;
  if (ws) {
    if (ws_bytes < fb) return -1;
    wf = (T *)ws;
  } else {
    wf = (T *)FN(ws_alloc)(fb);
    if (!wf) return -1;
  }
  /* wf (C, K/groups, R, S): wf[ci][kk][R-1-r][S-1-s] = weight[k][c][r][s] */
  const int64_t G = g->groups, Cg = g->C / G, Kg = g->K / G, R = g->R, S = g->S, RS = R * S;
  for (int64_t gi = 0; gi < G; gi++)
    for (int64_t kk = 0; kk < Kg; kk++)
      for (int64_t c = 0; c < Cg; c++) {
        const T *src = weight + ((gi * Kg + kk) * Cg + c) * RS;
        T *dst = wf + ((gi * Cg + c) * Kg + kk) * RS;
        for (int64_t i = 0; i < RS; i++) dst[RS - 1 - i] = src[i];
      }
  int rc = FN(nnk_conv2d_forward)(dinp, dout, wf, NULL, f, ws ? (char *)ws + fb : NULL,
                                  ws ? ws_bytes - fb : 0);
  if (!ws) free(wf);
  return rc;
}

/* dinp: (N,C,H,W), dout: (N,K,P,Q), weight: (K,C/groups,R,S) */
int FN(nnk_conv2d_backward_input)(T *dinp, const T *dout, const T *weight, const nnk_conv *g,
                                  void *ws, size_t ws_bytes) {
  if (nnk_conv_check(g) || !dinp || !dout || !weight) return -1;
  if (conv_is_depthwise(g)) {
    const int rc = FN(dw_backward_input_flipped)(dinp, dout, weight, g);
    if (rc <= 0) return rc;
    FN(dw_backward_input)(dinp, dout, weight, g);
    return 0;
  }
  const int prc = FN(nnk_poly_backward_input)(dinp, dout, weight, NULL, NULL, g, ws, ws_bytes); /* polyphase.c */
  if (prc <= 0) return prc;
  nnk_conv f;
  if (conv_bwi_flip(g, &f, sizeof(T))) return FN(conv_bwi_flipped)(dinp, dout, weight, g, &f, ws, ws_bytes);
  conv_plan pl;
  int nt, owned;
  void *w;
  if (FN(conv_begin)(&pl, &nt, &w, &owned, g, 1, ws, ws_bytes, -1)) return -1;
  const int64_t units = pl.nsb * g->groups * pl.nchunk;
  NNK_OMP(parallel num_threads(nt) if (nt > 1))
  {
    const FN(conv_buf) bf = FN(conv_bufs)(&pl, w, omp_get_thread_num());
    NNK_OMP(for schedule(static))
    for (int64_t u = 0; u < units; u++) FN(conv_bwi_unit)(dinp, dout, weight, g, &pl, &bf, u);
  }
  if (owned) free(w);
  return 0;
}

/* one backward_weight unit: a block of samples (or one sample's output rows [p0, p0+nr)), all
 * groups, into dw: dw += dout block * col^T, whose inner dimension spans the block */
static void FN(conv_bww_unit)(T *dw, const T *inp, const T *dout, const nnk_conv *g,
                              const conv_plan *pl, const FN(conv_buf) *bf, int64_t u) {
  const int64_t G = g->groups, Cg = g->C / G, Kg = g->K / G;
  const int64_t CRSg = Cg * g->R * g->S;
  const int64_t p0 = (u % pl->nblk) * pl->rows, nr = imin64(pl->rows, g->P - p0);
  int64_t n0, ns, ldb, ldy;
  conv_block_samples(pl, g->N, u / pl->nblk, &n0, &ns);
  for (int64_t gi = 0; gi < G; gi++) {
    const T *b = FN(conv_cols)(bf, inp, g, pl, n0, ns, gi, p0, nr, &ldb);
    const T *dy = FN(conv_dout_block)(bf->tmp, dout, g, n0, ns, gi, p0, nr, &ldy);
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Kg, (int)CRSg, (int)(ns * nr * g->Q),
         (T)1, dy, (int)ldy, b, (int)ldb, (T)1, dw + gi * Kg * CRSg, (int)CRSg);
  }
}

/* dweight: (K,C/groups,R,S), inp: (N,C,H,W), dout: (N,K,P,Q) */
int FN(nnk_conv2d_backward_weight)(T *dweight, const T *inp, const T *dout, const nnk_conv *g,
                                   void *ws, size_t ws_bytes) {
  if (nnk_conv_check(g) || !dweight || !inp || !dout) return -1;
  if (conv_is_depthwise(g)) {
    FN(dw_backward_weight)(dweight, inp, dout, g);
    return 0;
  }
  const int wrc = FN(nnk_wino_backward_weight)(dweight, inp, dout, g, ws, ws_bytes); /* winograd.c */
  if (wrc <= 0) return wrc;
  const int prc = FN(nnk_poly_backward_weight)(dweight, inp, dout, g, ws, ws_bytes); /* polyphase.c */
  if (prc <= 0) return prc;
  conv_plan pl;
  int nt, owned;
  void *w;
  if (FN(conv_begin)(&pl, &nt, &w, &owned, g, 2, ws, ws_bytes, -1)) return -1;
  const int64_t units = pl.nsb * pl.nblk;
  const int64_t wsize = (int64_t)g->K * (g->C / g->groups) * g->R * g->S;
  if (units < nt) nt = units < 1 ? 1 : (int)units;
  NNK_OMP(parallel num_threads(nt) if (nt > 1))
  {
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    char *base = (char *)w;
    const FN(conv_buf) bf = FN(conv_bufs)(&pl, w, tid);
    T *dw = tid == 0 ? dweight
                     : (T *)(base + (size_t)nt * pl.col_bytes + (size_t)(tid - 1) * pl.dw_bytes);
    memset(dw, 0, (size_t)wsize * sizeof(T));
    NNK_OMP(for schedule(static))
    for (int64_t u = 0; u < units; u++) FN(conv_bww_unit)(dw, inp, dout, g, &pl, &bf, u);
    if (nth > 1) {
      const T *part = (const T *)(base + (size_t)nt * pl.col_bytes);
      const size_t pstride = pl.dw_bytes / sizeof(T);
      NNK_OMP(for schedule(static))
      for (int64_t i = 0; i < wsize; i++) {
        T s = dweight[i];
        for (int t = 1; t < nth; t++) s += part[(size_t)(t - 1) * pstride + (size_t)i];
        dweight[i] = s;
      }
    }
  }
  if (owned) free(w);
  return 0;
}

/* dinp, dweight and/or dbias (each may be NULL) in one pass where the transforms can be
 * shared (polyphase.c), with the keep of nnk_conv2d_forward_keep or NULL */
size_t FN(nnk_conv2d_backward_workspace_size)(const nnk_conv *g) {
  if (nnk_conv_check(g)) return 0;
  if (nnk_poly_use(g, sizeof(T))) return nnk_poly_ws_query(g, 0, 1, 1);
  const size_t a = FN(nnk_conv2d_backward_input_workspace_size)(g);
  const size_t b = FN(nnk_conv2d_backward_weight_workspace_size)(g);
  return a > b ? a : b;
}

int FN(nnk_conv2d_backward)(T *dinp, T *dweight, T *dbias, const T *inp, const T *dout, const T *weight,
                            const void *keep, const nnk_conv *g, void *ws, size_t ws_bytes) {
  if (nnk_conv_check(g) || !dout || (dinp && !weight) || (dweight && !inp)) return -1;
  if (!dinp && !dweight && !dbias) return 0;
  const int prc = FN(nnk_poly_backward)(dinp, dweight, dbias, inp, dout, weight, keep, g, ws, ws_bytes); /* polyphase.c */
  if (prc <= 0) return prc;
  if (dinp && FN(nnk_conv2d_backward_input)(dinp, dout, weight, g, ws, ws_bytes)) return -1;
  if (dweight && FN(nnk_conv2d_backward_weight)(dweight, inp, dout, g, ws, ws_bytes)) return -1;
  if (dbias) FN(nnk_bias_backward)(dbias, dout, g->N, g->K, (int64_t)g->P * g->Q);
  return 0;
}

/* The row loops of the normalisations and of the bias gradient: called once per plane row of
 * the OpenMP loops, as NNK_CLONES (AVX-512 / AVX2 where the CPU has them; the loops around
 * them are compiled for the baseline). Sums are accumulated in double. */
NNK_CLONES static double FN(sum)(const T *x, int64_t n) {
  double s = 0;
  NNK_SIMD_RED(+ : s)
  for (int64_t i = 0; i < n; i++) s += (double)x[i];
  return s;
}

NNK_CLONES static double FN(sumsqdev)(const T *x, int64_t n, double mean) {
  double s = 0;
  NNK_SIMD_RED(+ : s)
  for (int64_t i = 0; i < n; i++) {
    const double d = (double)x[i] - mean;
    s += d * d;
  }
  return s;
}

/* y = x*a + b */
NNK_CLONES static void FN(affine)(T *y, const T *x, int64_t n, T a, T b) {
  NNK_SIMD
  for (int64_t i = 0; i < n; i++) y[i] = x[i] * a + b;
}

/* *sdy += sum dy, *sdyx += sum dy (x - mean) */
NNK_CLONES static void FN(norm_sums)(double *sdy, double *sdyx, const T *dy, const T *x, int64_t n, double mean) {
  double a = 0, b = 0;
  NNK_SIMD_RED(+ : a, b)
  for (int64_t i = 0; i < n; i++) {
    a += (double)dy[i];
    b += (double)dy[i] * ((double)x[i] - mean);
  }
  *sdy += a, *sdyx += b;
}

/* dx = dy*k + x*kx + k0 */
NNK_CLONES static void FN(norm_dx)(T *dx, const T *dy, const T *x, int64_t n, T k, T kx, T k0) {
  NNK_SIMD
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * k + x[i] * kx + k0;
}

/* dbias: (C) = sum over n, hw of dout (N,C,HW) */
void FN(nnk_bias_backward)(T *dbias, const T *dout, int64_t N, int64_t C, int64_t HW) {
  NNK_OMP(parallel for schedule(static) if (N * C * HW > NNK_PAR_MIN))
  for (int64_t c = 0; c < C; c++) {
    double s = 0;
    for (int64_t n = 0; n < N; n++) s += FN(sum)(dout + (n * C + c) * HW, HW);
    dbias[c] = (T)s;
  }
}

/* ---- conv_transpose2d: the adjoint of the conv2d of nnk_convt_as_conv ------------------- */

size_t FN(nnk_conv_transpose2d_forward_workspace_size)(const nnk_convt *g) {
  nnk_conv c;
  if (convt_check(g)) return 0;
  nnk_convt_as_conv(g, &c);
  return FN(nnk_conv2d_backward_input_workspace_size)(&c);
}
size_t FN(nnk_conv_transpose2d_backward_input_workspace_size)(const nnk_convt *g) {
  nnk_conv c;
  if (convt_check(g)) return 0;
  nnk_convt_as_conv(g, &c);
  return FN(nnk_conv2d_forward_workspace_size)(&c);
}
size_t FN(nnk_conv_transpose2d_backward_weight_workspace_size)(const nnk_convt *g) {
  nnk_conv c;
  if (convt_check(g)) return 0;
  nnk_convt_as_conv(g, &c);
  return FN(nnk_conv2d_backward_weight_workspace_size)(&c);
}

/* out: (N,K,P,Q), inp: (N,C,H,W), weight: (C,K/groups,R,S), bias: (K) or NULL */
int FN(nnk_conv_transpose2d_forward)(T *out, const T *inp, const T *weight, const T *bias,
                                     const nnk_convt *g, void *ws, size_t ws_bytes) {
  return FN(nnk_conv_transpose2d_forward_keep)(out, inp, weight, bias, NULL, g, ws, ws_bytes);
}

size_t FN(nnk_conv_transpose2d_keep_bytes)(const nnk_convt *g) {
  nnk_conv c;
  if (convt_check(g)) return 0;
  nnk_convt_as_conv(g, &c);
  return FN(nnk_poly_keep_bytes)(&c, 0);
}

int FN(nnk_conv_transpose2d_forward_keep)(T *out, const T *inp, const T *weight, const T *bias, void *keep,
                                          const nnk_convt *g, void *ws, size_t ws_bytes) {
  nnk_conv c;
  FN(nnk_poly_keep_clear)(keep);
  if (convt_check(g) || !out || !inp || !weight) return -1;
  nnk_convt_as_conv(g, &c);
  const int prc = FN(nnk_poly_backward_input)(out, inp, weight, bias, keep, &c, ws, ws_bytes); /* polyphase.c */
  if (prc <= 0) return prc;
  if (FN(nnk_conv2d_backward_input)(out, inp, weight, &c, ws, ws_bytes)) return -1;
  if (bias) {
    const int64_t PQ = (int64_t)g->P * g->Q, NK = (int64_t)g->N * g->K;
    NNK_OMP(parallel for schedule(static) if (NK * PQ > NNK_PAR_MIN))
    for (int64_t i = 0; i < NK; i++) {
      const T b = bias[i % g->K];
      T *o = out + i * PQ;
      NNK_SIMD
      for (int64_t j = 0; j < PQ; j++) o[j] += b;
    }
  }
  return 0;
}

/* dinp: (N,C,H,W), dout: (N,K,P,Q), weight: (C,K/groups,R,S) */
int FN(nnk_conv_transpose2d_backward_input)(T *dinp, const T *dout, const T *weight,
                                            const nnk_convt *g, void *ws, size_t ws_bytes) {
  nnk_conv c;
  if (convt_check(g)) return -1;
  nnk_convt_as_conv(g, &c);
  return FN(nnk_conv2d_forward)(dinp, dout, weight, NULL, &c, ws, ws_bytes);
}

/* dweight: (C,K/groups,R,S), inp: (N,C,H,W), dout: (N,K,P,Q) */
int FN(nnk_conv_transpose2d_backward_weight)(T *dweight, const T *inp, const T *dout,
                                             const nnk_convt *g, void *ws, size_t ws_bytes) {
  nnk_conv c;
  if (convt_check(g)) return -1;
  nnk_convt_as_conv(g, &c);
  return FN(nnk_conv2d_backward_weight)(dweight, dout, inp, &c, ws, ws_bytes);
}

/* dinp, dweight and/or dbias (each may be NULL) in one pass where the transforms can be
 * shared, with the keep of nnk_conv_transpose2d_forward_keep or NULL */
size_t FN(nnk_conv_transpose2d_backward_workspace_size)(const nnk_convt *g) {
  nnk_conv c;
  if (convt_check(g)) return 0;
  nnk_convt_as_conv(g, &c);
  if (nnk_poly_use(&c, sizeof(T))) return nnk_poly_ws_query(&c, 1, 0, 1);
  const size_t a = FN(nnk_conv_transpose2d_backward_input_workspace_size)(g);
  const size_t b = FN(nnk_conv_transpose2d_backward_weight_workspace_size)(g);
  return a > b ? a : b;
}

int FN(nnk_conv_transpose2d_backward)(T *dinp, T *dweight, T *dbias, const T *inp, const T *dout,
                                      const T *weight, const void *keep, const nnk_convt *g, void *ws,
                                      size_t ws_bytes) {
  nnk_conv c;
  if (convt_check(g) || !dout || (dinp && !weight) || (dweight && !inp)) return -1;
  if (!dinp && !dweight && !dbias) return 0;
  nnk_convt_as_conv(g, &c);
  const int prc = FN(nnk_poly_transposed_backward)(dinp, dweight, dbias, inp, dout, weight, keep, &c, ws, ws_bytes);
  if (prc <= 0) return prc;
  if (dinp && FN(nnk_conv_transpose2d_backward_input)(dinp, dout, weight, g, ws, ws_bytes)) return -1;
  if (dweight && FN(nnk_conv_transpose2d_backward_weight)(dweight, inp, dout, g, ws, ws_bytes)) return -1;
  if (dbias) FN(nnk_bias_backward)(dbias, dout, g->N, g->K, (int64_t)g->P * g->Q);
  return 0;
}

/* ---- pooling -------------------------------------------------------------------------------- */

/* out, indices: (N,C,P,Q), inp: (N,C,H,W) */
int FN(nnk_max_pool2d_forward)(T *out, int64_t *indices, const T *inp, const nnk_pool *g) {
  if (pool_check(g) || !out || !inp) return -1;
  const int64_t planes = (int64_t)g->N * g->C, H = g->H, W = g->W, P = g->P, Q = g->Q;
  const int64_t HW = H * W, PQ = P * Q, kh = g->kernel_h, kw = g->kernel_w;
  const int64_t dh = g->dil_h, dw = g->dil_w;
  NNK_OMP(parallel for schedule(static) if (planes * PQ * kh * kw > NNK_PAR_MIN))
  for (int64_t pl = 0; pl < planes; pl++) {
    const T *x = inp + pl * HW;
    T *y = out + pl * PQ;
    int64_t *ind = indices ? indices + pl * PQ : NULL;
    for (int64_t p = 0; p < P; p++) {
      int64_t h0 = p * g->stride_h - g->pad_h;
      const int64_t h1 = imin64(h0 + (kh - 1) * dh + 1, H);
      while (h0 < 0) h0 += dh;
      for (int64_t q = 0; q < Q; q++) {
        int64_t w0 = q * g->stride_w - g->pad_w;
        const int64_t w1 = imin64(w0 + (kw - 1) * dw + 1, W);
        while (w0 < 0) w0 += dw;
        T m = (T)-INFINITY;
        int64_t mi = h0 * W + w0;
        for (int64_t ih = h0; ih < h1; ih += dh) {
          for (int64_t iw = w0; iw < w1; iw += dw) {
            const T v = x[ih * W + iw];
            if (v > m || isnan(v)) {
              m = v;
              mi = ih * W + iw;
            }
          }
        }
        y[p * Q + q] = m;
        if (ind) ind[p * Q + q] = mi;
      }
    }
  }
  return 0;
}

/* dinp: (N,C,H,W), dout, indices: (N,C,P,Q) */
int FN(nnk_max_pool2d_backward)(T *dinp, const T *dout, const int64_t *indices,
                                const nnk_pool *g) {
  if (pool_check(g) || !dinp || !dout || !indices) return -1;
  const int64_t planes = (int64_t)g->N * g->C, HW = (int64_t)g->H * g->W;
  const int64_t PQ = (int64_t)g->P * g->Q;
  NNK_OMP(parallel for schedule(static) if (planes * (HW + PQ) > NNK_PAR_MIN))
  for (int64_t pl = 0; pl < planes; pl++) {
    T *dx = dinp + pl * HW;
    const T *dy = dout + pl * PQ;
    const int64_t *ind = indices + pl * PQ;
    memset(dx, 0, (size_t)HW * sizeof(T));
    for (int64_t i = 0; i < PQ; i++)
      if ((uint64_t)ind[i] < (uint64_t)HW) dx[ind[i]] += dy[i];
  }
  return 0;
}

/* PyTorch's avg_pool window: clamped [*h0,*h1) x [*w0,*w1) and the divisor */
static inline int64_t FN(avg_window)(const nnk_pool *g, int64_t p, int64_t q, int64_t *h0,
                                     int64_t *h1, int64_t *w0, int64_t *w1) {
  int64_t hs = p * g->stride_h - g->pad_h, ws = q * g->stride_w - g->pad_w;
  int64_t he = imin64(hs + g->kernel_h, (int64_t)g->H + g->pad_h);
  int64_t we = imin64(ws + g->kernel_w, (int64_t)g->W + g->pad_w);
  const int64_t pool_size = (he - hs) * (we - ws);
  hs = imax64(hs, 0);
  ws = imax64(ws, 0);
  he = imin64(he, g->H);
  we = imin64(we, g->W);
  *h0 = hs;
  *h1 = he;
  *w0 = ws;
  *w1 = we;
  if (g->divisor_override) return g->divisor_override;
  return g->count_include_pad ? pool_size : (he - hs) * (we - ws);
}

/* out: (N,C,P,Q), inp: (N,C,H,W) */
int FN(nnk_avg_pool2d_forward)(T *out, const T *inp, const nnk_pool *g) {
  if (pool_check(g) || g->dil_h != 1 || g->dil_w != 1 || !out || !inp) return -1;
  const int64_t planes = (int64_t)g->N * g->C, W = g->W, HW = (int64_t)g->H * W;
  const int64_t P = g->P, Q = g->Q, PQ = P * Q;
  NNK_OMP(parallel for schedule(static) if (planes * PQ * g->kernel_h * g->kernel_w >
                                                   NNK_PAR_MIN))
  for (int64_t pl = 0; pl < planes; pl++) {
    const T *x = inp + pl * HW;
    T *y = out + pl * PQ;
    for (int64_t p = 0; p < P; p++) {
      for (int64_t q = 0; q < Q; q++) {
        int64_t h0, h1, w0, w1;
        const int64_t div = FN(avg_window)(g, p, q, &h0, &h1, &w0, &w1);
        if (h0 >= h1 || w0 >= w1) {
          y[p * Q + q] = 0;
          continue;
        }
        double s = 0;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) s += (double)x[ih * W + iw];
        y[p * Q + q] = (T)(s / (double)div);
      }
    }
  }
  return 0;
}

/* dinp: (N,C,H,W), dout: (N,C,P,Q) */
int FN(nnk_avg_pool2d_backward)(T *dinp, const T *dout, const nnk_pool *g) {
  if (pool_check(g) || g->dil_h != 1 || g->dil_w != 1 || !dinp || !dout) return -1;
  const int64_t planes = (int64_t)g->N * g->C, W = g->W, HW = (int64_t)g->H * W;
  const int64_t P = g->P, Q = g->Q, PQ = P * Q;
  NNK_OMP(parallel for schedule(static) if (planes * PQ * g->kernel_h * g->kernel_w >
                                                   NNK_PAR_MIN))
  for (int64_t pl = 0; pl < planes; pl++) {
    T *dx = dinp + pl * HW;
    const T *dy = dout + pl * PQ;
    memset(dx, 0, (size_t)HW * sizeof(T));
    for (int64_t p = 0; p < P; p++) {
      for (int64_t q = 0; q < Q; q++) {
        int64_t h0, h1, w0, w1;
        const int64_t div = FN(avg_window)(g, p, q, &h0, &h1, &w0, &w1);
        const T d = (T)((double)dy[p * Q + q] / (double)div);
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) dx[ih * W + iw] += d;
      }
    }
  }
  return 0;
}

/* out: (N,C,P,Q), inp: (N,C,H,W) */
void FN(nnk_adaptive_avg_pool2d_forward)(T *out, const T *inp, int N, int C, int H, int W,
                                         int P, int Q) {
  const int64_t planes = (int64_t)N * C, HW = (int64_t)H * W, PQ = (int64_t)P * Q;
  if (P <= 0 || Q <= 0 || H <= 0 || W <= 0) return;
  NNK_OMP(parallel for schedule(static) if (planes * (HW + PQ) > NNK_PAR_MIN))
  for (int64_t pl = 0; pl < planes; pl++) {
    const T *x = inp + pl * HW;
    T *y = out + pl * PQ;
    for (int64_t p = 0; p < P; p++) {
      const int64_t h0 = p * H / P, h1 = ((p + 1) * H + P - 1) / P;
      for (int64_t q = 0; q < Q; q++) {
        const int64_t w0 = q * W / Q, w1 = ((q + 1) * W + Q - 1) / Q;
        double s = 0;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) s += (double)x[ih * W + iw];
        y[p * Q + q] = (T)(s / (double)((h1 - h0) * (w1 - w0)));
      }
    }
  }
}

/* dinp: (N,C,H,W), dout: (N,C,P,Q) */
void FN(nnk_adaptive_avg_pool2d_backward)(T *dinp, const T *dout, int N, int C, int H, int W,
                                          int P, int Q) {
  const int64_t planes = (int64_t)N * C, HW = (int64_t)H * W, PQ = (int64_t)P * Q;
  if (P <= 0 || Q <= 0 || H <= 0 || W <= 0) return;
  NNK_OMP(parallel for schedule(static) if (planes * (HW + PQ) > NNK_PAR_MIN))
  for (int64_t pl = 0; pl < planes; pl++) {
    T *dx = dinp + pl * HW;
    const T *dy = dout + pl * PQ;
    memset(dx, 0, (size_t)HW * sizeof(T));
    for (int64_t p = 0; p < P; p++) {
      const int64_t h0 = p * H / P, h1 = ((p + 1) * H + P - 1) / P;
      for (int64_t q = 0; q < Q; q++) {
        const int64_t w0 = q * W / Q, w1 = ((q + 1) * W + Q - 1) / Q;
        const T d = (T)((double)dy[p * Q + q] / (double)((h1 - h0) * (w1 - w0)));
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) dx[ih * W + iw] += d;
      }
    }
  }
}

/* ---- upsampling ------------------------------------------------------------------------- */

static int FN(up_check)(int N, int C, int H, int W, int P, int Q) {
  if (N < 0 || C < 0 || H <= 0 || W <= 0 || P <= 0 || Q <= 0) return -1;
  if ((int64_t)H * W > NNK_BIG || (int64_t)P * Q > NNK_BIG) return -1;
  return 0;
}

/* out: (N,C,P,Q), inp: (N,C,H,W) */
int FN(nnk_upsample_nearest2d_forward)(T *out, const T *inp, int N, int C, int H, int W, int P,
                                       int Q, double scale_h, double scale_w) {
  if (FN(up_check)(N, C, H, W, P, Q)) return -1;
  int64_t *map = malloc((size_t)(P + Q) * sizeof(int64_t));
  if (!map) return -1;
  const int64_t *hm = map, *wm = map + P;
  nearest_map(map, H, P, scale_h);
  nearest_map(map + P, W, Q, scale_w);
  const int64_t planes = (int64_t)N * C, HW = (int64_t)H * W, PQ = (int64_t)P * Q;
  NNK_OMP(parallel for schedule(static) if (planes * PQ > NNK_PAR_MIN))
  for (int64_t pl = 0; pl < planes; pl++) {
    const T *x = inp + pl * HW;
    T *y = out + pl * PQ;
    for (int64_t p = 0; p < P; p++) {
      const T *xr = x + hm[p] * W;
      T *yr = y + p * Q;
      if (p > 0 && hm[p] == hm[p - 1]) {
        memcpy(yr, yr - Q, (size_t)Q * sizeof(T));
        continue;
      }
      for (int64_t q = 0; q < Q; q++) yr[q] = xr[wm[q]];
    }
  }
  free(map);
  return 0;
}

/* dinp: (N,C,H,W), dout: (N,C,P,Q) */
int FN(nnk_upsample_nearest2d_backward)(T *dinp, const T *dout, int N, int C, int H, int W,
                                        int P, int Q, double scale_h, double scale_w) {
  if (FN(up_check)(N, C, H, W, P, Q)) return -1;
  int64_t *map = malloc((size_t)(P + Q) * sizeof(int64_t));
  if (!map) return -1;
  const int64_t *hm = map, *wm = map + P;
  nearest_map(map, H, P, scale_h);
  nearest_map(map + P, W, Q, scale_w);
  const int64_t planes = (int64_t)N * C, HW = (int64_t)H * W, PQ = (int64_t)P * Q;
  NNK_OMP(parallel for schedule(static) if (planes * PQ > NNK_PAR_MIN))
  for (int64_t pl = 0; pl < planes; pl++) {
    T *dx = dinp + pl * HW;
    const T *dy = dout + pl * PQ;
    memset(dx, 0, (size_t)HW * sizeof(T));
    for (int64_t p = 0; p < P; p++) {
      T *dxr = dx + hm[p] * W;
      const T *dyr = dy + p * Q;
      for (int64_t q = 0; q < Q; q++) dxr[wm[q]] += dyr[q];
    }
  }
  free(map);
  return 0;
}

/* PyTorch's linear interpolation indices and weights along one axis, in T */
static void FN(linear_map)(int64_t *i0, int64_t *i1, T *l0, T *l1, int64_t in, int64_t out,
                           int align_corners, double scale) {
  T s;
  if (align_corners)
    s = out > 1 ? (T)(in - 1) / (T)(out - 1) : (T)0;
  else
    s = scale > 0 ? (T)(1.0 / scale) : (T)in / (T)out;
  for (int64_t i = 0; i < out; i++) {
    T src;
    if (align_corners) {
      src = s * (T)i;
    } else {
      src = s * ((T)i + (T)0.5) - (T)0.5;
      if (src < 0) src = 0;
    }
    const int64_t x0 = imin64((int64_t)FLOOR(src), in - 1);
    T lam = src - (T)x0;
    lam = lam < 0 ? 0 : (lam > 1 ? 1 : lam);
    i0[i] = x0;
    i1[i] = x0 + (x0 < in - 1 ? 1 : 0);
    l1[i] = lam;
    l0[i] = (T)1 - lam;
  }
}

/* maps for both axes in one block: i0h,i1h (P), i0w,i1w (Q), then l0h,l1h (P), l0w,l1w (Q) */
typedef struct {
  int64_t *i0h, *i1h, *i0w, *i1w;
  T *l0h, *l1h, *l0w, *l1w;
  void *mem;
} FN(bilin_maps);

static int FN(bilin_maps_make)(FN(bilin_maps) *m, int H, int W, int P, int Q, int align,
                               double scale_h, double scale_w) {
  const size_t n = (size_t)P + (size_t)Q;
  m->mem = malloc(2 * n * (sizeof(int64_t) + sizeof(T)));
  if (!m->mem) return -1;
  int64_t *ip = (int64_t *)m->mem;
  T *lp = (T *)(ip + 2 * n);
  m->i0h = ip;
  m->i1h = ip + P;
  m->i0w = ip + 2 * (size_t)P;
  m->i1w = m->i0w + Q;
  m->l0h = lp;
  m->l1h = lp + P;
  m->l0w = lp + 2 * (size_t)P;
  m->l1w = m->l0w + Q;
  FN(linear_map)(m->i0h, m->i1h, m->l0h, m->l1h, H, P, align, scale_h);
  FN(linear_map)(m->i0w, m->i1w, m->l0w, m->l1w, W, Q, align, scale_w);
  return 0;
}

/* out: (N,C,P,Q), inp: (N,C,H,W) */
int FN(nnk_upsample_bilinear2d_forward)(T *out, const T *inp, int N, int C, int H, int W, int P,
                                        int Q, int align_corners, double scale_h,
                                        double scale_w) {
  if (FN(up_check)(N, C, H, W, P, Q)) return -1;
  FN(bilin_maps) m;
  if (FN(bilin_maps_make)(&m, H, W, P, Q, align_corners, scale_h, scale_w)) return -1;
  const int64_t planes = (int64_t)N * C, HW = (int64_t)H * W, PQ = (int64_t)P * Q;
  NNK_OMP(parallel for schedule(static) if (planes * PQ > NNK_PAR_MIN))
  for (int64_t pl = 0; pl < planes; pl++) {
    const T *x = inp + pl * HW;
    T *y = out + pl * PQ;
    for (int64_t p = 0; p < P; p++) {
      const T *x0 = x + m.i0h[p] * W, *x1 = x + m.i1h[p] * W;
      const T a0 = m.l0h[p], a1 = m.l1h[p];
      T *yr = y + p * Q;
      for (int64_t q = 0; q < Q; q++) {
        const int64_t c0 = m.i0w[q], c1 = m.i1w[q];
        const T b0 = m.l0w[q], b1 = m.l1w[q];
        yr[q] = a0 * (b0 * x0[c0] + b1 * x0[c1]) + a1 * (b0 * x1[c0] + b1 * x1[c1]);
      }
    }
  }
  free(m.mem);
  return 0;
}

/* dinp: (N,C,H,W), dout: (N,C,P,Q) */
int FN(nnk_upsample_bilinear2d_backward)(T *dinp, const T *dout, int N, int C, int H, int W,
                                         int P, int Q, int align_corners, double scale_h,
                                         double scale_w) {
  if (FN(up_check)(N, C, H, W, P, Q)) return -1;
  FN(bilin_maps) m;
  if (FN(bilin_maps_make)(&m, H, W, P, Q, align_corners, scale_h, scale_w)) return -1;
  const int64_t planes = (int64_t)N * C, HW = (int64_t)H * W, PQ = (int64_t)P * Q;
  NNK_OMP(parallel for schedule(static) if (planes * PQ > NNK_PAR_MIN))
  for (int64_t pl = 0; pl < planes; pl++) {
    T *dx = dinp + pl * HW;
    const T *dy = dout + pl * PQ;
    memset(dx, 0, (size_t)HW * sizeof(T));
    for (int64_t p = 0; p < P; p++) {
      T *x0 = dx + m.i0h[p] * W, *x1 = dx + m.i1h[p] * W;
      const T a0 = m.l0h[p], a1 = m.l1h[p];
      const T *dyr = dy + p * Q;
      for (int64_t q = 0; q < Q; q++) {
        const int64_t c0 = m.i0w[q], c1 = m.i1w[q];
        const T b0 = m.l0w[q], b1 = m.l1w[q], d = dyr[q];
        x0[c0] += a0 * b0 * d;
        x0[c1] += a0 * b1 * d;
        x1[c0] += a1 * b0 * d;
        x1[c1] += a1 * b1 * d;
      }
    }
  }
  free(m.mem);
  return 0;
}

/* ---- pad2d -------------------------------------------------------------------------------- */

/* out: (N,C,H+top+bottom,W+left+right), inp: (N,C,H,W) */
int FN(nnk_pad2d_forward)(T *out, const T *inp, int N, int C, int H, int W, int left, int right,
                          int top, int bottom, nnk_pad_mode mode) {
  if (pad_check(N, C, H, W, left, right, top, bottom, mode)) return -1;
  const int64_t Ho = (int64_t)H + top + bottom, Wo = (int64_t)W + left + right;
  const int64_t planes = (int64_t)N * C, HW = (int64_t)H * W;
  NNK_OMP(parallel for schedule(static) if (planes * Ho * Wo > NNK_PAR_MIN))
  for (int64_t pl = 0; pl < planes; pl++) {
    const T *x = inp + pl * HW;
    T *y = out + pl * Ho * Wo;
    for (int64_t oy = 0; oy < Ho; oy++) {
      const T *xr = x + pad_src(oy, H, top, mode) * W;
      T *yr = y + oy * Wo;
      for (int64_t ox = 0; ox < left; ox++) yr[ox] = xr[pad_src(ox, W, left, mode)];
      memcpy(yr + left, xr, (size_t)W * sizeof(T));
      for (int64_t ox = left + W; ox < Wo; ox++) yr[ox] = xr[pad_src(ox, W, left, mode)];
    }
  }
  return 0;
}

/* dinp: (N,C,H,W), dout: (N,C,H+top+bottom,W+left+right) */
int FN(nnk_pad2d_backward)(T *dinp, const T *dout, int N, int C, int H, int W, int left,
                           int right, int top, int bottom, nnk_pad_mode mode) {
  if (pad_check(N, C, H, W, left, right, top, bottom, mode)) return -1;
  const int64_t Ho = (int64_t)H + top + bottom, Wo = (int64_t)W + left + right;
  const int64_t planes = (int64_t)N * C, HW = (int64_t)H * W;
  NNK_OMP(parallel for schedule(static) if (planes * Ho * Wo > NNK_PAR_MIN))
  for (int64_t pl = 0; pl < planes; pl++) {
    T *dx = dinp + pl * HW;
    const T *dy = dout + pl * Ho * Wo;
    memset(dx, 0, (size_t)HW * sizeof(T));
    for (int64_t oy = 0; oy < Ho; oy++) {
      T *xr = dx + pad_src(oy, H, top, mode) * W;
      const T *yr = dy + oy * Wo;
      for (int64_t ox = 0; ox < left; ox++) xr[pad_src(ox, W, left, mode)] += yr[ox];
      NNK_SIMD
      for (int64_t ix = 0; ix < W; ix++) xr[ix] += yr[left + ix];
      for (int64_t ox = left + W; ox < Wo; ox++) xr[pad_src(ox, W, left, mode)] += yr[ox];
    }
  }
  return 0;
}

/* ---- batch_norm ------------------------------------------------------------------------- */

/* channel c of batch_norm forward: y = x*(*a) + *b, from the batch statistics (mean and the
 * sum ss of squared deviations over cnt values) when batch, else from the running ones;
 * updates the running statistics (training) and writes save_mean/save_invstd */
static inline void FN(bn_channel)(T *a, T *b, int64_t c, int batch, double mean, double ss,
                                  int64_t cnt, T *save_mean, T *save_invstd, T *running_mean,
                                  T *running_var, const T *weight, const T *bias, int training,
                                  double momentum, double eps) {
  double invstd;
  if (batch) {
    const double var = cnt > 0 ? ss / (double)cnt : 0.0;
    invstd = 1.0 / sqrt(var + eps);
    if (training && running_mean)
      running_mean[c] = (T)((1.0 - momentum) * (double)running_mean[c] + momentum * mean);
    if (training && running_var) {
      const double uvar = cnt > 1 ? ss / (double)(cnt - 1) : var;
      running_var[c] = (T)((1.0 - momentum) * (double)running_var[c] + momentum * uvar);
    }
  } else {
    mean = (double)running_mean[c];
    invstd = 1.0 / sqrt((double)running_var[c] + eps);
  }
  if (save_mean) save_mean[c] = (T)mean;
  if (save_invstd) save_invstd[c] = (T)invstd;
  const double ac = weight ? (double)weight[c] * invstd : invstd;
  *a = (T)ac;
  *b = (T)((bias ? (double)bias[c] : 0.0) - mean * ac);
}

/* BatchNorm1d (HW == 1): a channel's values are strided by C, so the statistics are gathered
 * row by row for a block of channels at once (vector loops over the channels) */
#define NNK_BN_BLOCK 256

static void FN(bn1d_forward)(T *out, T *save_mean, T *save_invstd, T *running_mean,
                             T *running_var, const T *inp, const T *weight, const T *bias,
                             int training, double momentum, double eps, int64_t N, int64_t C) {
  const int batch = training || !running_mean || !running_var;
  NNK_OMP(parallel for schedule(static) if (N * C > NNK_PAR_MIN))
  for (int64_t c0 = 0; c0 < C; c0 += NNK_BN_BLOCK) {
    const int64_t nc = imin64(NNK_BN_BLOCK, C - c0);
    double mean[NNK_BN_BLOCK], ss[NNK_BN_BLOCK];
    T a[NNK_BN_BLOCK], b[NNK_BN_BLOCK];
    for (int64_t j = 0; j < nc; j++) mean[j] = ss[j] = 0;
    if (batch) {
      for (int64_t n = 0; n < N; n++) {
        const T *x = inp + n * C + c0;
        NNK_SIMD
        for (int64_t j = 0; j < nc; j++) mean[j] += (double)x[j];
      }
      for (int64_t j = 0; j < nc; j++) mean[j] = N > 0 ? mean[j] / (double)N : 0.0;
      for (int64_t n = 0; n < N; n++) {
        const T *x = inp + n * C + c0;
        NNK_SIMD
        for (int64_t j = 0; j < nc; j++) {
          const double d = (double)x[j] - mean[j];
          ss[j] += d * d;
        }
      }
    }
    for (int64_t j = 0; j < nc; j++)
      FN(bn_channel)(&a[j], &b[j], c0 + j, batch, mean[j], ss[j], N, save_mean, save_invstd,
                     running_mean, running_var, weight, bias, training, momentum, eps);
    for (int64_t n = 0; n < N; n++) {
      const T *x = inp + n * C + c0;
      T *y = out + n * C + c0;
      NNK_SIMD
      for (int64_t j = 0; j < nc; j++) y[j] = x[j] * a[j] + b[j];
    }
  }
}

static void FN(bn1d_backward)(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp,
                              const T *weight, const T *save_mean, const T *save_invstd,
                              int training, int64_t N, int64_t C) {
  const int sums = dweight || dbias || (dinp && training);
  NNK_OMP(parallel for schedule(static) if (N * C > NNK_PAR_MIN))
  for (int64_t c0 = 0; c0 < C; c0 += NNK_BN_BLOCK) {
    const int64_t nc = imin64(NNK_BN_BLOCK, C - c0);
    double sdy[NNK_BN_BLOCK], sdyx[NNK_BN_BLOCK], mean[NNK_BN_BLOCK];
    T k[NNK_BN_BLOCK], kx[NNK_BN_BLOCK], k0[NNK_BN_BLOCK];
    for (int64_t j = 0; j < nc; j++) {
      mean[j] = (double)save_mean[c0 + j];
      sdy[j] = sdyx[j] = 0;
    }
    if (sums) {
      for (int64_t n = 0; n < N; n++) {
        const T *dy = dout + n * C + c0, *x = inp + n * C + c0;
        NNK_SIMD
        for (int64_t j = 0; j < nc; j++) {
          sdy[j] += (double)dy[j];
          sdyx[j] += (double)dy[j] * ((double)x[j] - mean[j]);
        }
      }
    }
    for (int64_t j = 0; j < nc; j++) {
      const int64_t c = c0 + j;
      const double invstd = (double)save_invstd[c], w = weight ? (double)weight[c] : 1.0;
      if (dbias) dbias[c] = (T)sdy[j];
      if (dweight) dweight[c] = (T)(sdyx[j] * invstd);
      /* dinp = dy*k + x*kx + k0 */
      double kk = invstd * w, kkx = 0, kk0 = 0;
      if (training && N > 0) {
        kkx = -sdyx[j] / (double)N * invstd * invstd * kk;
        kk0 = -sdy[j] / (double)N * kk - mean[j] * kkx;
      }
      k[j] = (T)kk;
      kx[j] = (T)kkx;
      k0[j] = (T)kk0;
    }
    if (!dinp) continue;
    for (int64_t n = 0; n < N; n++) {
      const T *dy = dout + n * C + c0, *x = inp + n * C + c0;
      T *dx = dinp + n * C + c0;
      NNK_SIMD
      for (int64_t j = 0; j < nc; j++) dx[j] = dy[j] * k[j] + x[j] * kx[j] + k0[j];
    }
  }
}

/* out: (N,C,HW), inp: (N,C,HW), weight, bias, save_*, running_*: (C) */
void FN(nnk_batch_norm_forward)(T *out, T *save_mean, T *save_invstd, T *running_mean,
                                T *running_var, const T *inp, const T *weight, const T *bias,
                                int training, double momentum, double eps, int64_t N, int64_t C,
                                int64_t HW) {
  if (HW == 1) {
    FN(bn1d_forward)(out, save_mean, save_invstd, running_mean, running_var, inp, weight, bias,
                     training, momentum, eps, N, C);
    return;
  }
  const int64_t cnt = N * HW;
  const int batch = training || !running_mean || !running_var;
  NNK_OMP(parallel for schedule(static) if (N * C * HW > NNK_PAR_MIN))
  for (int64_t c = 0; c < C; c++) {
    double mean = 0, ss = 0;
    if (batch) {
      for (int64_t n = 0; n < N; n++) mean += FN(sum)(inp + (n * C + c) * HW, HW);
      mean = cnt > 0 ? mean / (double)cnt : 0.0;
      for (int64_t n = 0; n < N; n++) ss += FN(sumsqdev)(inp + (n * C + c) * HW, HW, mean);
    }
    T a, b;
    FN(bn_channel)(&a, &b, c, batch, mean, ss, cnt, save_mean, save_invstd, running_mean,
                   running_var, weight, bias, training, momentum, eps);
    for (int64_t n = 0; n < N; n++)
      FN(affine)(out + (n * C + c) * HW, inp + (n * C + c) * HW, HW, a, b);
  }
}

/* dinp: (N,C,HW), dweight, dbias: (C) (each may be NULL) */
void FN(nnk_batch_norm_backward)(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp,
                                 const T *weight, const T *save_mean, const T *save_invstd,
                                 int training, int64_t N, int64_t C, int64_t HW) {
  if (HW == 1) {
    FN(bn1d_backward)(dinp, dweight, dbias, dout, inp, weight, save_mean, save_invstd, training,
                      N, C);
    return;
  }
  const int64_t cnt = N * HW;
  NNK_OMP(parallel for schedule(static) if (N * C * HW > NNK_PAR_MIN))
  for (int64_t c = 0; c < C; c++) {
    const double mean = (double)save_mean[c], invstd = (double)save_invstd[c];
    const double w = weight ? (double)weight[c] : 1.0;
    double sdy = 0, sdyx = 0;
    if (dweight || (dinp && training) || dbias)
      for (int64_t n = 0; n < N; n++)
        FN(norm_sums)(&sdy, &sdyx, dout + (n * C + c) * HW, inp + (n * C + c) * HW, HW, mean);
    if (dbias) dbias[c] = (T)sdy;
    if (dweight) dweight[c] = (T)(sdyx * invstd);
    if (!dinp) continue;
    /* dinp = dy*k + x*kx + k0 */
    double k = invstd * w, kx = 0, k0 = 0;
    if (training && cnt > 0) {
      kx = -sdyx / (double)cnt * invstd * invstd * k;
      k0 = -sdy / (double)cnt * k - mean * kx;
    }
    for (int64_t n = 0; n < N; n++) {
      const int64_t o = (n * C + c) * HW;
      FN(norm_dx)(dinp + o, dout + o, inp + o, HW, (T)k, (T)kx, (T)k0);
    }
  }
}

/* ---- group_norm --------------------------------------------------------------------------- */

static void FN(group_norm_fwd)(T *out, T *mean, T *rstd, const T *inp, const T *weight,
                               const T *bias, int64_t N, int64_t C, int64_t HW, int64_t G,
                               double eps, int silu) {
  if (G <= 0 || C % G) return;
  const int64_t Cg = C / G, M = Cg * HW;
  NNK_OMP(parallel for schedule(static) if (N * C * HW > NNK_PAR_MIN))
  for (int64_t ng = 0; ng < N * G; ng++) {
    const T *x = inp + ng * M;
    T *y = out + ng * M;
    const double mu = M > 0 ? FN(sum)(x, M) / (double)M : 0.0;
    const double var = M > 0 ? FN(sumsqdev)(x, M, mu) / (double)M : 0.0;
    const double rs = 1.0 / sqrt(var + eps);
    if (mean) mean[ng] = (T)mu;
    if (rstd) rstd[ng] = (T)rs;
    for (int64_t j = 0; j < Cg; j++) {
      const int64_t c = (ng % G) * Cg + j;
      const double a = weight ? (double)weight[c] * rs : rs;
      const double b = (bias ? (double)bias[c] : 0.0) - mu * a;
      FN(affine)(y + j * HW, x + j * HW, HW, (T)a, (T)b);
      if (silu) {
        T *yj = y + j * HW;
        for (int64_t i = 0; i < HW; i++) yj[i] = yj[i] / ((T)1 + EXP(-yj[i]));
      }
    }
  }
}

/* out: (N,C,HW), inp: (N,C,HW), weight, bias: (C) or NULL, mean, rstd: (N*G) or NULL */
void FN(nnk_group_norm_forward)(T *out, T *mean, T *rstd, const T *inp, const T *weight,
                                const T *bias, int64_t N, int64_t C, int64_t HW, int64_t G,
                                double eps) {
  FN(group_norm_fwd)(out, mean, rstd, inp, weight, bias, N, C, HW, G, eps, 0);
}

/* out = silu(group_norm(inp)); shapes as nnk_group_norm_forward */
void FN(nnk_group_norm_silu_forward)(T *out, T *mean, T *rstd, const T *inp, const T *weight,
                                     const T *bias, int64_t N, int64_t C, int64_t HW, int64_t G,
                                     double eps) {
  FN(group_norm_fwd)(out, mean, rstd, inp, weight, bias, N, C, HW, G, eps, 1);
}

size_t FN(nnk_group_norm_backward_workspace_size)(int64_t N, int64_t C) {
  if (N <= 0 || C <= 0) return 0;
  return round64((size_t)(2 * N * C) * sizeof(double));
}

/* dinp: (N,C,HW), dweight, dbias: (C) (each may be NULL); mean, rstd: (N*G) */
int FN(nnk_group_norm_backward)(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp,
                                const T *weight, const T *mean, const T *rstd, int64_t N,
                                int64_t C, int64_t HW, int64_t G, void *ws, size_t ws_bytes) {
  if (N < 0 || C <= 0 || HW < 0 || G <= 0 || C % G) return -1;
  if (N == 0) {
    if (dweight) memset(dweight, 0, (size_t)C * sizeof(T));
    if (dbias) memset(dbias, 0, (size_t)C * sizeof(T));
    return 0;
  }
  const size_t need = FN(nnk_group_norm_backward_workspace_size)(N, C);
  void *mem = ws;
  if (!ws) {
    mem = FN(ws_alloc)(need);
    if (!mem) return -1;
  } else if (ws_bytes < need) {
    return -1;
  }
  double *ds = (double *)mem, *db = ds + N * C; /* per (n,c): sum dy*x, sum dy */
  const int64_t Cg = C / G;
  const double M = (double)(Cg * HW);
  NNK_OMP(parallel if (N * C * HW > NNK_PAR_MIN))
  {
    NNK_OMP(for schedule(static))
    for (int64_t nc = 0; nc < N * C; nc++) {
      const T *dy = dout + nc * HW, *x = inp + nc * HW;
      double a = 0, b = 0;
      NNK_SIMD_RED(+ : a, b)
      for (int64_t i = 0; i < HW; i++) {
        a += (double)dy[i] * (double)x[i];
        b += (double)dy[i];
      }
      ds[nc] = a;
      db[nc] = b;
    }
    if (dweight || dbias) {
      NNK_OMP(for schedule(static))
      for (int64_t c = 0; c < C; c++) {
        double sw = 0, sb = 0;
        for (int64_t n = 0; n < N; n++) {
          const int64_t ng = n * G + c / Cg;
          sw += (ds[n * C + c] - db[n * C + c] * (double)mean[ng]) * (double)rstd[ng];
          sb += db[n * C + c];
        }
        if (dweight) dweight[c] = (T)sw;
        if (dbias) dbias[c] = (T)sb;
      }
    }
    if (dinp) {
      NNK_OMP(for schedule(static))
      for (int64_t ng = 0; ng < N * G; ng++) {
        const int64_t n = ng / G, c0 = (ng % G) * Cg;
        const double mu = (double)mean[ng], rs = (double)rstd[ng];
        double A = 0, B = 0;
        for (int64_t j = 0; j < Cg; j++) {
          const int64_t c = c0 + j;
          const double w = weight ? (double)weight[c] : 1.0;
          A += w * db[n * C + c];
          B += w * (ds[n * C + c] - mu * db[n * C + c]);
        }
        const double k2 = M > 0 ? -rs * rs * rs * B / M : 0.0;
        const double k3 = (M > 0 ? -rs * A / M : 0.0) - k2 * mu;
        for (int64_t j = 0; j < Cg; j++) {
          const int64_t c = c0 + j;
          const T k1 = (T)(rs * (weight ? (double)weight[c] : 1.0));
          const T *dy = dout + (n * C + c) * HW, *x = inp + (n * C + c) * HW;
          T *dx = dinp + (n * C + c) * HW;
          const T tk2 = (T)k2, tk3 = (T)k3;
          NNK_SIMD
          for (int64_t i = 0; i < HW; i++) dx[i] = dy[i] * k1 + x[i] * tk2 + tk3;
        }
      }
    }
  }
  if (!ws) free(mem);
  return 0;
}

/* ---- layer_norm ----------------------------------------------------------------------------- */

/* out: (M,D), inp: (M,D), weight, bias: (D) or NULL, mean, rstd: (M) or NULL */
void FN(nnk_layer_norm_forward)(T *out, T *mean, T *rstd, const T *inp, const T *weight,
                                const T *bias, int64_t M, int64_t D, double eps) {
  NNK_OMP(parallel for schedule(static) if (M * D > NNK_PAR_MIN))
  for (int64_t m = 0; m < M; m++) {
    const T *x = inp + m * D;
    T *y = out + m * D;
    const double mu = D > 0 ? FN(sum)(x, D) / (double)D : 0.0;
    const double var = D > 0 ? FN(sumsqdev)(x, D, mu) / (double)D : 0.0;
    const double rs = 1.0 / sqrt(var + eps);
    if (mean) mean[m] = (T)mu;
    if (rstd) rstd[m] = (T)rs;
    if (!weight && !bias) {
      FN(affine)(y, x, D, (T)rs, (T)(-mu * rs));
      continue;
    }
    const T tmu = (T)mu, trs = (T)rs;
    for (int64_t d = 0; d < D; d++) {
      T v = (x[d] - tmu) * trs;
      if (weight) v *= weight[d];
      if (bias) v += bias[d];
      y[d] = v;
    }
  }
}

size_t FN(nnk_layer_norm_backward_workspace_size)(int64_t M, int64_t D) {
  if (M <= 0 || D <= 0) return 0;
  return (size_t)max_threads() * round64((size_t)(2 * D) * sizeof(double));
}

/* dinp: (M,D), dweight, dbias: (D) (each may be NULL); mean, rstd: (M) */
int FN(nnk_layer_norm_backward)(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp,
                                const T *weight, const T *mean, const T *rstd, int64_t M,
                                int64_t D, void *ws, size_t ws_bytes) {
  if (M < 0 || D < 0) return -1;
  const int want_wb = dweight || dbias;
  const size_t per = round64((size_t)(2 * D) * sizeof(double));
  int nt = max_threads();
  if (M * D <= NNK_PAR_MIN) nt = 1;
  void *mem = ws;
  int owned = 0;
  if (want_wb && D > 0) {
    if (!ws) {
      mem = FN(ws_alloc)((size_t)nt * per);
      if (!mem) return -1;
      owned = 1;
    } else {
      if ((size_t)nt * per > ws_bytes) nt = (int)(ws_bytes / per);
      if (nt < 1) return -1;
    }
  }
  NNK_OMP(parallel num_threads(nt) if (nt > 1))
  {
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    double *pw = want_wb ? (double *)((char *)mem + (size_t)tid * per) : NULL, *pb = NULL;
    if (pw) {
      pb = pw + D;
      memset(pw, 0, (size_t)(2 * D) * sizeof(double));
    }
    NNK_OMP(for schedule(static))
    for (int64_t m = 0; m < M; m++) {
      const T *dy = dout + m * D, *x = inp + m * D;
      const double mu = (double)mean[m], rs = (double)rstd[m];
      if (pw) {
        for (int64_t d = 0; d < D; d++) {
          pw[d] += (double)dy[d] * ((double)x[d] - mu) * rs;
          pb[d] += (double)dy[d];
        }
      }
      if (!dinp) continue;
      double a = 0, b = 0; /* sum dxhat, sum dxhat*xhat */
      NNK_SIMD_RED(+ : a, b)
      for (int64_t d = 0; d < D; d++) {
        const double g = (double)dy[d] * (weight ? (double)weight[d] : 1.0);
        a += g;
        b += g * ((double)x[d] - mu) * rs;
      }
      a /= (double)D;
      b /= (double)D;
      T *dx = dinp + m * D;
      const T tmu = (T)mu, trs = (T)rs, ta = (T)a, tb = (T)b;
      for (int64_t d = 0; d < D; d++) {
        const T g = weight ? dy[d] * weight[d] : dy[d];
        const T xh = (x[d] - tmu) * trs;
        dx[d] = trs * (g - ta - xh * tb);
      }
    }
    if (pw) {
      NNK_OMP(for schedule(static))
      for (int64_t d = 0; d < D; d++) {
        double sw = 0, sb = 0;
        for (int t = 0; t < nth; t++) {
          const double *q = (const double *)((char *)mem + (size_t)t * per);
          sw += q[d];
          sb += q[D + d];
        }
        if (dweight) dweight[d] = (T)sw;
        if (dbias) dbias[d] = (T)sb;
      }
    }
  }
  if (owned) free(mem);
  return 0;
}

/* ---- softmax / log_softmax ----------------------------------------------------------------- */

#define NNK_SM_BLOCK 64 /* inner positions handled together when inner > 1 */

/* forward of one (outer index, block of inner positions [j0, j0+nj)) */
static void FN(softmax_block)(T *out, const T *inp, int64_t dim, int64_t inner, int64_t nj,
                              int is_log) {
  T mx[NNK_SM_BLOCK];
  double sum[NNK_SM_BLOCK];
  for (int64_t j = 0; j < nj; j++) {
    mx[j] = (T)-INFINITY;
    sum[j] = 0;
  }
  for (int64_t d = 0; d < dim; d++) {
    const T *x = inp + d * inner;
    for (int64_t j = 0; j < nj; j++)
      if (x[j] > mx[j] || isnan(x[j])) mx[j] = x[j];
  }
  for (int64_t d = 0; d < dim; d++) {
    const T *x = inp + d * inner;
    T *y = out + d * inner;
    for (int64_t j = 0; j < nj; j++) {
      const T e = EXP(x[j] - mx[j]);
      sum[j] += (double)e;
      if (!is_log) y[j] = e;
    }
  }
  for (int64_t d = 0; d < dim; d++) {
    const T *x = inp + d * inner;
    T *y = out + d * inner;
    for (int64_t j = 0; j < nj; j++) {
      if (is_log)
        y[j] = x[j] - mx[j] - (T)LOG((T)sum[j]);
      else
        y[j] = (T)((double)y[j] / sum[j]);
    }
  }
}

/* forward of one contiguous row of `dim` elements */
static void FN(softmax_row)(T *y, const T *x, int64_t dim, int is_log) {
  T mx = (T)-INFINITY;
  for (int64_t d = 0; d < dim; d++)
    if (x[d] > mx || isnan(x[d])) mx = x[d];
  double s = 0;
  if (is_log) {
    for (int64_t d = 0; d < dim; d++) s += (double)EXP(x[d] - mx);
    const T lse = mx + (T)LOG((T)s);
    NNK_SIMD
    for (int64_t d = 0; d < dim; d++) y[d] = x[d] - lse;
  } else {
    for (int64_t d = 0; d < dim; d++) {
      const T e = EXP(x[d] - mx);
      y[d] = e;
      s += (double)e;
    }
    const T r = (T)(1.0 / s);
    NNK_SIMD
    for (int64_t d = 0; d < dim; d++) y[d] *= r;
  }
}

static void FN(softmax_fwd)(T *out, const T *inp, int64_t outer, int64_t dim, int64_t inner,
                            int is_log) {
  if (outer <= 0 || dim <= 0 || inner <= 0) return;
  if (inner == 1) {
    NNK_OMP(parallel for schedule(static) if (outer * dim > NNK_PAR_MIN))
    for (int64_t o = 0; o < outer; o++) FN(softmax_row)(out + o * dim, inp + o * dim, dim, is_log);
    return;
  }
  const int64_t nb = ceil_div64(inner, NNK_SM_BLOCK);
  NNK_OMP(parallel for schedule(static) if (outer * dim * inner > NNK_PAR_MIN))
  for (int64_t u = 0; u < outer * nb; u++) {
    const int64_t o = u / nb, j0 = (u % nb) * NNK_SM_BLOCK;
    const int64_t off = o * dim * inner + j0;
    FN(softmax_block)(out + off, inp + off, dim, inner, imin64(NNK_SM_BLOCK, inner - j0), is_log);
  }
}

/* out, inp: (outer, dim, inner) */
void FN(nnk_softmax_forward)(T *out, const T *inp, int64_t outer, int64_t dim, int64_t inner) {
  FN(softmax_fwd)(out, inp, outer, dim, inner, 0);
}
void FN(nnk_log_softmax_forward)(T *out, const T *inp, int64_t outer, int64_t dim,
                                 int64_t inner) {
  FN(softmax_fwd)(out, inp, outer, dim, inner, 1);
}

/* backward of one (outer, inner block): softmax: dx = y*(dy - sum(dy*y));
 * log_softmax: dx = dy - exp(y)*sum(dy) */
static void FN(softmax_bwd_block)(T *dinp, const T *dout, const T *out, int64_t dim,
                                  int64_t inner, int64_t nj, int is_log) {
  double s[NNK_SM_BLOCK];
  for (int64_t j = 0; j < nj; j++) s[j] = 0;
  for (int64_t d = 0; d < dim; d++) {
    const T *dy = dout + d * inner, *y = out + d * inner;
    for (int64_t j = 0; j < nj; j++) s[j] += is_log ? (double)dy[j] : (double)dy[j] * (double)y[j];
  }
  for (int64_t d = 0; d < dim; d++) {
    const T *dy = dout + d * inner, *y = out + d * inner;
    T *dx = dinp + d * inner;
    for (int64_t j = 0; j < nj; j++) {
      if (is_log)
        dx[j] = dy[j] - EXP(y[j]) * (T)s[j];
      else
        dx[j] = y[j] * (dy[j] - (T)s[j]);
    }
  }
}

static void FN(softmax_bwd)(T *dinp, const T *dout, const T *out, int64_t outer, int64_t dim,
                            int64_t inner, int is_log) {
  if (outer <= 0 || dim <= 0 || inner <= 0) return;
  if (inner == 1) {
    NNK_OMP(parallel for schedule(static) if (outer * dim > NNK_PAR_MIN))
    for (int64_t o = 0; o < outer; o++) {
      const T *dy = dout + o * dim, *y = out + o * dim;
      T *dx = dinp + o * dim;
      double s = 0;
      if (is_log) {
        s = FN(sum)(dy, dim);
        const T ts = (T)s;
        for (int64_t d = 0; d < dim; d++) dx[d] = dy[d] - EXP(y[d]) * ts;
      } else {
        NNK_SIMD_RED(+ : s)
        for (int64_t d = 0; d < dim; d++) s += (double)dy[d] * (double)y[d];
        const T ts = (T)s;
        NNK_SIMD
        for (int64_t d = 0; d < dim; d++) dx[d] = y[d] * (dy[d] - ts);
      }
    }
    return;
  }
  const int64_t nb = ceil_div64(inner, NNK_SM_BLOCK);
  NNK_OMP(parallel for schedule(static) if (outer * dim * inner > NNK_PAR_MIN))
  for (int64_t u = 0; u < outer * nb; u++) {
    const int64_t o = u / nb, j0 = (u % nb) * NNK_SM_BLOCK;
    const int64_t off = o * dim * inner + j0;
    FN(softmax_bwd_block)(dinp + off, dout + off, out + off, dim, inner,
                          imin64(NNK_SM_BLOCK, inner - j0), is_log);
  }
}

/* dinp, dout, out: (outer, dim, inner) */
void FN(nnk_softmax_backward)(T *dinp, const T *dout, const T *out, int64_t outer, int64_t dim,
                              int64_t inner) {
  FN(softmax_bwd)(dinp, dout, out, outer, dim, inner, 0);
}
void FN(nnk_log_softmax_backward)(T *dinp, const T *dout, const T *out, int64_t outer,
                                  int64_t dim, int64_t inner) {
  FN(softmax_bwd)(dinp, dout, out, outer, dim, inner, 1);
}

/* the parameters of this template, defined by nnk.c before each inclusion */
#undef T
#undef FN
#undef GEMM
#undef EXP
#undef LOG
#undef FLOOR
