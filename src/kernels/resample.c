/* resample.c: upsample_nearest2d, upsample_bilinear2d and pad2d (nnk.h), forward and
 * backward: kernels that copy (bilinear: blend) plane elements through index maps, with
 * PyTorch's index rules. */
#ifndef NNK_TMPL_PASS
#include "nnk_internal.h"

/* PyTorch's nearest source index (computed in float, as PyTorch does) */
static void nearest_map(int64_t *map, int64_t in, int64_t out, double scale) {
  const float s = scale > 0 ? (float)(1.0 / scale) : (float)in / (float)out;
  for (int64_t i = 0; i < out; i++) {
    if (out == in)
      map[i] = i;
    else if (out == 2 * in)
      map[i] = i >> 1;
    else
      map[i] = imin64((int64_t)floorf((float)i * s), in - 1);
  }
}

/* pad2d argument check; returns -1 when invalid */
static int pad_check(int N, int C, int H, int W, int l, int r, int t, int b, nnk_pad_mode mode) {
  if (N < 0 || C < 0 || H <= 0 || W <= 0 || l < 0 || r < 0 || t < 0 || b < 0) return -1;
  if ((int64_t)H + t + b > NNK_BIG || (int64_t)W + l + r > NNK_BIG) return -1;
  switch (mode) {
  case NNK_PAD_REFLECT: return (l < W && r < W && t < H && b < H) ? 0 : -1;
  case NNK_PAD_REPLICATE: return 0;
  case NNK_PAD_CIRCULAR: return (l <= W && r <= W && t <= H && b <= H) ? 0 : -1;
  }
  return -1;
}

/* source index of output position x of a padded axis (in = input size, lo = leading pad) */
static int64_t pad_src(int64_t x, int64_t in, int64_t lo, nnk_pad_mode mode) {
  int64_t i = x - lo;
  switch (mode) {
  case NNK_PAD_REFLECT:
    if (i < 0) i = -i;
    if (i >= in) i = 2 * (in - 1) - i;
    return i;
  case NNK_PAD_REPLICATE: return i < 0 ? 0 : (i >= in ? in - 1 : i);
  case NNK_PAD_CIRCULAR: return ((i % in) + in) % in;
  }
  return 0;
}

#define NNK_TMPL "resample.c"
#include "nnk_tmpl.h" /* the part below, for float and for double */

#else /* ---- generic in T ---- */

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

#endif
