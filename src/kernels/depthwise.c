/* depthwise.c: conv2d of depthwise geometries (conv_is_depthwise: groups == C, at most 4
 * outputs per group): direct loops, because a gemm per group would have one row; the hot ones
 * as AVX2/AVX-512 clones chosen at load time. conv.c calls the entry points at the end. */
#ifndef NNK_TMPL_PASS
#include "nnk_internal.h"

#define NNK_TMPL "depthwise.c"
#include "nnk_tmpl.h" /* the part below, for float and for double */

#else /* ---- generic in T ---- */

/* valid column ranges of the S kernel columns */
static void FN(qranges)(const nnk_conv *g, int64_t *qlo, int64_t *qhi) {
  for (int64_t s = 0; s < g->S; s++) conv_qrange(g, s, &qlo[s], &qhi[s]);
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
  T *wf = (T *)ws_alloc((size_t)(g->K * RS) * sizeof(T));
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

/* ---- entry points (nnk_internal.h): plain functions, since the clones stay static -------- */

void FN(nnk_dw_forward)(T *out, const T *inp, const T *weight, const T *bias, const nnk_conv *g) {
  FN(dw_forward)(out, inp, weight, bias, g);
}

int FN(nnk_dw_backward_input)(T *dinp, const T *dout, const T *weight, const nnk_conv *g) {
  const int rc = FN(dw_backward_input_flipped)(dinp, dout, weight, g);
  if (rc <= 0) return rc;
  FN(dw_backward_input)(dinp, dout, weight, g);
  return 0;
}

void FN(nnk_dw_backward_weight)(T *dweight, const T *inp, const T *dout, const nnk_conv *g) {
  FN(dw_backward_weight)(dweight, inp, dout, g);
}

#endif
