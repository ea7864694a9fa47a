/* pool.c: max_pool2d, avg_pool2d and adaptive_avg_pool2d (nnk.h), forward and backward, and
 * their geometry, as PyTorch defines them (output size and ceil_mode, padding, divisor). */
#ifndef NNK_TMPL_PASS
#include "nnk_internal.h"

/* PyTorch's pooling_output_shape */
static int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int ceil) {
  if (s <= 0) return 0; /* an invalid stride (rejected by pool_check): no division by it */
  int64_t o = floor_div64(in + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0), s) + 1;
  if (ceil && (o - 1) * s >= in + p) o--;
  return o;
}

static int pool_check(const nnk_pool *g) {
  if (!g) return -1;
  if (g->N < 0 || g->C < 0 || g->H <= 0 || g->W <= 0 || g->kernel_h <= 0 || g->kernel_w <= 0 ||
      g->stride_h <= 0 || g->stride_w <= 0 || g->pad_h < 0 || g->pad_w < 0 || g->dil_h <= 0 ||
      g->dil_w <= 0 || g->divisor_override < 0)
    return -1;
  if ((int64_t)g->pad_h * 2 > (int64_t)g->dil_h * (g->kernel_h - 1) + 1) return -1;
  if ((int64_t)g->pad_w * 2 > (int64_t)g->dil_w * (g->kernel_w - 1) + 1) return -1;
  if ((int64_t)g->H * g->W > NNK_BIG) return -1;
  int64_t P = pool_out_size(g->H, g->kernel_h, g->stride_h, g->pad_h, g->dil_h, g->ceil_mode);
  int64_t Q = pool_out_size(g->W, g->kernel_w, g->stride_w, g->pad_w, g->dil_w, g->ceil_mode);
  if (P <= 0 || Q <= 0 || P > NNK_BIG || Q > NNK_BIG) return -1;
  if (g->P != P || g->Q != Q) return -1;
  return 0;
}

int nnk_pool_init(nnk_pool *g) {
  if (!g) return -1;
  g->P = (int)imin64(NNK_BIG, imax64(0, pool_out_size(g->H, g->kernel_h, g->stride_h, g->pad_h,
                                                       g->dil_h, g->ceil_mode)));
  g->Q = (int)imin64(NNK_BIG, imax64(0, pool_out_size(g->W, g->kernel_w, g->stride_w, g->pad_w,
                                                       g->dil_w, g->ceil_mode)));
  return pool_check(g);
}

int nnk_pool_setup(nnk_pool *g, int N, int C, int H, int W, int kernel_h, int kernel_w,
                   int stride_h, int stride_w, int pad_h, int pad_w, int dil_h, int dil_w,
                   int ceil_mode, int count_include_pad, int divisor_override) {
  if (!g) return -1;
  *g = (nnk_pool){N,      C,     H,     W,         kernel_h,          kernel_w,
                  stride_h, stride_w, pad_h, pad_w, dil_h,             dil_w,
                  ceil_mode, count_include_pad, divisor_override, 0, 0};
  return nnk_pool_init(g);
}

#define NNK_TMPL "pool.c"
#include "nnk_tmpl.h" /* the part below, for float and for double */

#else /* ---- generic in T ---- */

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

#endif
