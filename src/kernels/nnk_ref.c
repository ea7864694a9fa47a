/* nnk_ref.c: naive reference kernels (nnk_ref_*, declared in nnk.h) for the tests of the fast
 * kernels in src/kernels. Written straight from the definitions (direct loops, gather form,
 * double accumulation), single-threaded, no workspace, no attempt at speed.
 *
 * The file includes itself once for float and once for double (NNK_REF_PASS). */
#ifndef NNK_REF_PASS

#include "nnk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NNK_REF_PASS 1
#define T float
#define FN(name) name##_f32
#include "nnk_ref.c"
#undef T
#undef FN
#define T double
#define FN(name) name##_f64
#include "nnk_ref.c"
#undef T
#undef FN

#else /* ---- generic part, T and FN defined ---- */

/* ---- conv2d ---- */

void FN(nnk_ref_conv2d_forward)(T *out, const T *inp, const T *weight, const T *bias,
                                const nnk_conv *g) {
  const int Cg = g->C / g->groups, Kg = g->K / g->groups;
  for (int n = 0; n < g->N; n++)
    for (int k = 0; k < g->K; k++)
      for (int p = 0; p < g->P; p++)
        for (int q = 0; q < g->Q; q++) {
          double acc = bias ? (double)bias[k] : 0.0;
          const int gi = k / Kg;
          for (int c = 0; c < Cg; c++)
            for (int r = 0; r < g->R; r++)
              for (int s = 0; s < g->S; s++) {
                const int ih = p * g->stride_h - g->pad_h + r * g->dil_h;
                const int iw = q * g->stride_w - g->pad_w + s * g->dil_w;
                if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
                const int ci = gi * Cg + c;
                acc += (double)inp[(((int64_t)n * g->C + ci) * g->H + ih) * g->W + iw] *
                       (double)weight[(((int64_t)k * Cg + c) * g->R + r) * g->S + s];
              }
          out[(((int64_t)n * g->K + k) * g->P + p) * g->Q + q] = (T)acc;
        }
}

/* gather form: dinp[n,ci,ih,iw] = sum over k, r, s with ih = p*sh - ph + r*dh (p integral) */
void FN(nnk_ref_conv2d_backward_input)(T *dinp, const T *dout, const T *weight,
                                       const nnk_conv *g) {
  const int Cg = g->C / g->groups, Kg = g->K / g->groups;
  for (int n = 0; n < g->N; n++)
    for (int ci = 0; ci < g->C; ci++)
      for (int ih = 0; ih < g->H; ih++)
        for (int iw = 0; iw < g->W; iw++) {
          double acc = 0;
          const int gi = ci / Cg, c = ci % Cg;
          for (int kk = 0; kk < Kg; kk++)
            for (int r = 0; r < g->R; r++)
              for (int s = 0; s < g->S; s++) {
                const int ph = ih + g->pad_h - r * g->dil_h, pw = iw + g->pad_w - s * g->dil_w;
                if (ph < 0 || pw < 0 || ph % g->stride_h || pw % g->stride_w) continue;
                const int p = ph / g->stride_h, q = pw / g->stride_w;
                if (p >= g->P || q >= g->Q) continue;
                const int k = gi * Kg + kk;
                acc += (double)dout[(((int64_t)n * g->K + k) * g->P + p) * g->Q + q] *
                       (double)weight[(((int64_t)k * Cg + c) * g->R + r) * g->S + s];
              }
          dinp[(((int64_t)n * g->C + ci) * g->H + ih) * g->W + iw] = (T)acc;
        }
}

void FN(nnk_ref_conv2d_backward_weight)(T *dweight, const T *inp, const T *dout,
                                        const nnk_conv *g) {
  const int Cg = g->C / g->groups, Kg = g->K / g->groups;
  for (int k = 0; k < g->K; k++)
    for (int c = 0; c < Cg; c++)
      for (int r = 0; r < g->R; r++)
        for (int s = 0; s < g->S; s++) {
          double acc = 0;
          const int ci = (k / Kg) * Cg + c;
          for (int n = 0; n < g->N; n++)
            for (int p = 0; p < g->P; p++)
              for (int q = 0; q < g->Q; q++) {
                const int ih = p * g->stride_h - g->pad_h + r * g->dil_h;
                const int iw = q * g->stride_w - g->pad_w + s * g->dil_w;
                if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
                acc += (double)dout[(((int64_t)n * g->K + k) * g->P + p) * g->Q + q] *
                       (double)inp[(((int64_t)n * g->C + ci) * g->H + ih) * g->W + iw];
              }
          dweight[(((int64_t)k * Cg + c) * g->R + r) * g->S + s] = (T)acc;
        }
}

void FN(nnk_ref_bias_backward)(T *dbias, const T *dout, int64_t N, int64_t C, int64_t HW) {
  for (int64_t c = 0; c < C; c++) {
    double acc = 0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < HW; i++) acc += (double)dout[(n * C + c) * HW + i];
    dbias[c] = (T)acc;
  }
}

/* ---- conv_transpose2d, from its own definition: input pixel (ih,iw) through kernel tap
 * (r,s) lands on output (ih*sh - ph + r*dh, iw*sw - pw + s*dw) ---- */

void FN(nnk_ref_conv_transpose2d_forward)(T *out, const T *inp, const T *weight, const T *bias,
                                          const nnk_convt *g) {
  const int Cg = g->C / g->groups, Kg = g->K / g->groups;
  for (int n = 0; n < g->N; n++)
    for (int k = 0; k < g->K; k++)
      for (int oh = 0; oh < g->P; oh++)
        for (int ow = 0; ow < g->Q; ow++) {
          double acc = bias ? (double)bias[k] : 0.0;
          const int gi = k / Kg, kk = k % Kg;
          for (int c = 0; c < Cg; c++)
            for (int r = 0; r < g->R; r++)
              for (int s = 0; s < g->S; s++) {
                const int th = oh + g->pad_h - r * g->dil_h, tw = ow + g->pad_w - s * g->dil_w;
                if (th < 0 || tw < 0 || th % g->stride_h || tw % g->stride_w) continue;
                const int ih = th / g->stride_h, iw = tw / g->stride_w;
                if (ih >= g->H || iw >= g->W) continue;
                const int ci = gi * Cg + c;
                acc += (double)inp[(((int64_t)n * g->C + ci) * g->H + ih) * g->W + iw] *
                       (double)weight[(((int64_t)ci * Kg + kk) * g->R + r) * g->S + s];
              }
          out[(((int64_t)n * g->K + k) * g->P + oh) * g->Q + ow] = (T)acc;
        }
}

void FN(nnk_ref_conv_transpose2d_backward_input)(T *dinp, const T *dout, const T *weight,
                                                 const nnk_convt *g) {
  const int Cg = g->C / g->groups, Kg = g->K / g->groups;
  for (int n = 0; n < g->N; n++)
    for (int ci = 0; ci < g->C; ci++)
      for (int ih = 0; ih < g->H; ih++)
        for (int iw = 0; iw < g->W; iw++) {
          double acc = 0;
          const int gi = ci / Cg;
          for (int kk = 0; kk < Kg; kk++)
            for (int r = 0; r < g->R; r++)
              for (int s = 0; s < g->S; s++) {
                const int oh = ih * g->stride_h - g->pad_h + r * g->dil_h;
                const int ow = iw * g->stride_w - g->pad_w + s * g->dil_w;
                if (oh < 0 || oh >= g->P || ow < 0 || ow >= g->Q) continue;
                const int k = gi * Kg + kk;
                acc += (double)dout[(((int64_t)n * g->K + k) * g->P + oh) * g->Q + ow] *
                       (double)weight[(((int64_t)ci * Kg + kk) * g->R + r) * g->S + s];
              }
          dinp[(((int64_t)n * g->C + ci) * g->H + ih) * g->W + iw] = (T)acc;
        }
}

void FN(nnk_ref_conv_transpose2d_backward_weight)(T *dweight, const T *inp, const T *dout,
                                                  const nnk_convt *g) {
  const int Cg = g->C / g->groups, Kg = g->K / g->groups;
  for (int ci = 0; ci < g->C; ci++)
    for (int kk = 0; kk < Kg; kk++)
      for (int r = 0; r < g->R; r++)
        for (int s = 0; s < g->S; s++) {
          double acc = 0;
          const int k = (ci / Cg) * Kg + kk;
          for (int n = 0; n < g->N; n++)
            for (int ih = 0; ih < g->H; ih++)
              for (int iw = 0; iw < g->W; iw++) {
                const int oh = ih * g->stride_h - g->pad_h + r * g->dil_h;
                const int ow = iw * g->stride_w - g->pad_w + s * g->dil_w;
                if (oh < 0 || oh >= g->P || ow < 0 || ow >= g->Q) continue;
                acc += (double)inp[(((int64_t)n * g->C + ci) * g->H + ih) * g->W + iw] *
                       (double)dout[(((int64_t)n * g->K + k) * g->P + oh) * g->Q + ow];
              }
          dweight[(((int64_t)ci * Kg + kk) * g->R + r) * g->S + s] = (T)acc;
        }
}

/* ---- pooling ---- */

void FN(nnk_ref_max_pool2d_forward)(T *out, int64_t *indices, const T *inp, const nnk_pool *g) {
  for (int64_t pl = 0; pl < (int64_t)g->N * g->C; pl++)
    for (int p = 0; p < g->P; p++)
      for (int q = 0; q < g->Q; q++) {
        T m = (T)-INFINITY;
        int64_t mi = -1;
        for (int i = 0; i < g->kernel_h; i++)
          for (int j = 0; j < g->kernel_w; j++) {
            const int ih = p * g->stride_h - g->pad_h + i * g->dil_h;
            const int iw = q * g->stride_w - g->pad_w + j * g->dil_w;
            if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
            const T v = inp[(pl * g->H + ih) * g->W + iw];
            if (mi < 0 || v > m || isnan(v)) {
              m = v;
              mi = (int64_t)ih * g->W + iw;
            }
          }
        out[(pl * g->P + p) * g->Q + q] = m;
        if (indices) indices[(pl * g->P + p) * g->Q + q] = mi;
      }
}

void FN(nnk_ref_max_pool2d_backward)(T *dinp, const T *dout, const int64_t *indices,
                                     const nnk_pool *g) {
  const int64_t HW = (int64_t)g->H * g->W, PQ = (int64_t)g->P * g->Q;
  for (int64_t i = 0; i < (int64_t)g->N * g->C * HW; i++) dinp[i] = 0;
  for (int64_t pl = 0; pl < (int64_t)g->N * g->C; pl++)
    for (int64_t i = 0; i < PQ; i++) dinp[pl * HW + indices[pl * PQ + i]] += dout[pl * PQ + i];
}

/* avg_pool window of output (p,q): taps inside the input, taps inside the padded input */
static void FN(ref_avg_counts)(const nnk_pool *g, int p, int q, int *valid, int *padded) {
  int vh = 0, vw = 0, ph = 0, pw = 0;
  for (int i = 0; i < g->kernel_h; i++) {
    const int ih = p * g->stride_h - g->pad_h + i;
    if (ih < g->H + g->pad_h) ph++;
    if (ih >= 0 && ih < g->H) vh++;
  }
  for (int j = 0; j < g->kernel_w; j++) {
    const int iw = q * g->stride_w - g->pad_w + j;
    if (iw < g->W + g->pad_w) pw++;
    if (iw >= 0 && iw < g->W) vw++;
  }
  *valid = vh * vw;
  *padded = ph * pw;
}

static double FN(ref_avg_div)(const nnk_pool *g, int valid, int padded) {
  if (g->divisor_override) return g->divisor_override;
  return g->count_include_pad ? padded : valid;
}

void FN(nnk_ref_avg_pool2d_forward)(T *out, const T *inp, const nnk_pool *g) {
  for (int64_t pl = 0; pl < (int64_t)g->N * g->C; pl++)
    for (int p = 0; p < g->P; p++)
      for (int q = 0; q < g->Q; q++) {
        int valid, padded;
        FN(ref_avg_counts)(g, p, q, &valid, &padded);
        double s = 0;
        for (int i = 0; i < g->kernel_h; i++)
          for (int j = 0; j < g->kernel_w; j++) {
            const int ih = p * g->stride_h - g->pad_h + i, iw = q * g->stride_w - g->pad_w + j;
            if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
            s += (double)inp[(pl * g->H + ih) * g->W + iw];
          }
        out[(pl * g->P + p) * g->Q + q] = valid ? (T)(s / FN(ref_avg_div)(g, valid, padded)) : 0;
      }
}

void FN(nnk_ref_avg_pool2d_backward)(T *dinp, const T *dout, const nnk_pool *g) {
  for (int64_t i = 0; i < (int64_t)g->N * g->C * g->H * g->W; i++) dinp[i] = 0;
  for (int64_t pl = 0; pl < (int64_t)g->N * g->C; pl++)
    for (int p = 0; p < g->P; p++)
      for (int q = 0; q < g->Q; q++) {
        int valid, padded;
        FN(ref_avg_counts)(g, p, q, &valid, &padded);
        if (!valid) continue;
        const double d = (double)dout[(pl * g->P + p) * g->Q + q] / FN(ref_avg_div)(g, valid, padded);
        for (int i = 0; i < g->kernel_h; i++)
          for (int j = 0; j < g->kernel_w; j++) {
            const int ih = p * g->stride_h - g->pad_h + i, iw = q * g->stride_w - g->pad_w + j;
            if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
            dinp[(pl * g->H + ih) * g->W + iw] += (T)d;
          }
      }
}

void FN(nnk_ref_adaptive_avg_pool2d_forward)(T *out, const T *inp, int N, int C, int H, int W,
                                             int P, int Q) {
  for (int64_t pl = 0; pl < (int64_t)N * C; pl++)
    for (int p = 0; p < P; p++)
      for (int q = 0; q < Q; q++) {
        const int h0 = (int)floor((double)p * H / P), h1 = (int)ceil((double)(p + 1) * H / P);
        const int w0 = (int)floor((double)q * W / Q), w1 = (int)ceil((double)(q + 1) * W / Q);
        double s = 0;
        for (int ih = h0; ih < h1; ih++)
          for (int iw = w0; iw < w1; iw++) s += (double)inp[(pl * H + ih) * W + iw];
        out[(pl * P + p) * Q + q] = (T)(s / ((h1 - h0) * (w1 - w0)));
      }
}

void FN(nnk_ref_adaptive_avg_pool2d_backward)(T *dinp, const T *dout, int N, int C, int H,
                                              int W, int P, int Q) {
  for (int64_t i = 0; i < (int64_t)N * C * H * W; i++) dinp[i] = 0;
  for (int64_t pl = 0; pl < (int64_t)N * C; pl++)
    for (int p = 0; p < P; p++)
      for (int q = 0; q < Q; q++) {
        const int h0 = (int)floor((double)p * H / P), h1 = (int)ceil((double)(p + 1) * H / P);
        const int w0 = (int)floor((double)q * W / Q), w1 = (int)ceil((double)(q + 1) * W / Q);
        const double d = (double)dout[(pl * P + p) * Q + q] / ((h1 - h0) * (w1 - w0));
        for (int ih = h0; ih < h1; ih++)
          for (int iw = w0; iw < w1; iw++) dinp[(pl * H + ih) * W + iw] += (T)d;
      }
}

/* ---- upsampling ---- */

static int FN(ref_nearest)(int dst, int in, int out, double scale) {
  if (out == in) return dst;
  if (out == 2 * in) return dst / 2;
  const float s = scale > 0 ? (float)(1.0 / scale) : (float)in / (float)out;
  const int src = (int)floorf((float)dst * s);
  return src < in - 1 ? src : in - 1;
}

void FN(nnk_ref_upsample_nearest2d_forward)(T *out, const T *inp, int N, int C, int H, int W,
                                            int P, int Q, double scale_h, double scale_w) {
  for (int64_t pl = 0; pl < (int64_t)N * C; pl++)
    for (int p = 0; p < P; p++)
      for (int q = 0; q < Q; q++)
        out[(pl * P + p) * Q + q] = inp[(pl * H + FN(ref_nearest)(p, H, P, scale_h)) * W +
                                        FN(ref_nearest)(q, W, Q, scale_w)];
}

void FN(nnk_ref_upsample_nearest2d_backward)(T *dinp, const T *dout, int N, int C, int H, int W,
                                             int P, int Q, double scale_h, double scale_w) {
  for (int64_t i = 0; i < (int64_t)N * C * H * W; i++) dinp[i] = 0;
  for (int64_t pl = 0; pl < (int64_t)N * C; pl++)
    for (int p = 0; p < P; p++)
      for (int q = 0; q < Q; q++)
        dinp[(pl * H + FN(ref_nearest)(p, H, P, scale_h)) * W +
             FN(ref_nearest)(q, W, Q, scale_w)] += dout[(pl * P + p) * Q + q];
}

/* source coordinate of PyTorch's linear interpolation: index i0, i1 and weight of i1 */
static void FN(ref_linear)(int dst, int in, int out, int align, double scale, int *i0, int *i1,
                           T *lam) {
  T src;
  if (align) {
    src = out > 1 ? (T)(in - 1) / (T)(out - 1) * (T)dst : (T)0;
  } else {
    const T s = scale > 0 ? (T)(1.0 / scale) : (T)in / (T)out;
    src = s * ((T)dst + (T)0.5) - (T)0.5;
    if (src < 0) src = 0;
  }
  int x0 = (int)floor((double)src);
  if (x0 > in - 1) x0 = in - 1;
  T l = src - (T)x0;
  if (l < 0) l = 0;
  if (l > 1) l = 1;
  *i0 = x0;
  *i1 = x0 + 1 < in ? x0 + 1 : in - 1;
  *lam = l;
}

void FN(nnk_ref_upsample_bilinear2d_forward)(T *out, const T *inp, int N, int C, int H, int W,
                                             int P, int Q, int align_corners, double scale_h,
                                             double scale_w) {
  for (int64_t pl = 0; pl < (int64_t)N * C; pl++)
    for (int p = 0; p < P; p++)
      for (int q = 0; q < Q; q++) {
        int h0, h1, w0, w1;
        T a, b;
        FN(ref_linear)(p, H, P, align_corners, scale_h, &h0, &h1, &a);
        FN(ref_linear)(q, W, Q, align_corners, scale_w, &w0, &w1, &b);
        const T *x = inp + pl * H * W;
        const double v = (1.0 - (double)a) * (1.0 - (double)b) * (double)x[h0 * W + w0] +
                         (1.0 - (double)a) * (double)b * (double)x[h0 * W + w1] +
                         (double)a * (1.0 - (double)b) * (double)x[h1 * W + w0] +
                         (double)a * (double)b * (double)x[h1 * W + w1];
        out[(pl * P + p) * Q + q] = (T)v;
      }
}

void FN(nnk_ref_upsample_bilinear2d_backward)(T *dinp, const T *dout, int N, int C, int H,
                                              int W, int P, int Q, int align_corners,
                                              double scale_h, double scale_w) {
  for (int64_t i = 0; i < (int64_t)N * C * H * W; i++) dinp[i] = 0;
  for (int64_t pl = 0; pl < (int64_t)N * C; pl++)
    for (int p = 0; p < P; p++)
      for (int q = 0; q < Q; q++) {
        int h0, h1, w0, w1;
        T a, b;
        FN(ref_linear)(p, H, P, align_corners, scale_h, &h0, &h1, &a);
        FN(ref_linear)(q, W, Q, align_corners, scale_w, &w0, &w1, &b);
        T *x = dinp + pl * H * W;
        const double d = (double)dout[(pl * P + p) * Q + q];
        x[h0 * W + w0] += (T)((1.0 - (double)a) * (1.0 - (double)b) * d);
        x[h0 * W + w1] += (T)((1.0 - (double)a) * (double)b * d);
        x[h1 * W + w0] += (T)((double)a * (1.0 - (double)b) * d);
        x[h1 * W + w1] += (T)((double)a * (double)b * d);
      }
}

/* ---- pad2d ---- */

static int FN(ref_pad_src)(int o, int in, int lo, nnk_pad_mode mode) {
  int i = o - lo;
  if (mode == NNK_PAD_REPLICATE) return i < 0 ? 0 : (i > in - 1 ? in - 1 : i);
  if (mode == NNK_PAD_CIRCULAR) return i < 0 ? i + in : (i >= in ? i - in : i);
  /* reflect about 0 and about in-1 (no repeat of the edge) */
  if (i < 0) return -i;
  if (i >= in) return (in - 1) - (i - (in - 1));
  return i;
}

void FN(nnk_ref_pad2d_forward)(T *out, const T *inp, int N, int C, int H, int W, int left,
                               int right, int top, int bottom, nnk_pad_mode mode) {
  const int Ho = H + top + bottom, Wo = W + left + right;
  for (int64_t pl = 0; pl < (int64_t)N * C; pl++)
    for (int y = 0; y < Ho; y++)
      for (int x = 0; x < Wo; x++)
        out[(pl * Ho + y) * Wo + x] =
            inp[(pl * H + FN(ref_pad_src)(y, H, top, mode)) * W + FN(ref_pad_src)(x, W, left, mode)];
}

void FN(nnk_ref_pad2d_backward)(T *dinp, const T *dout, int N, int C, int H, int W, int left,
                                int right, int top, int bottom, nnk_pad_mode mode) {
  const int Ho = H + top + bottom, Wo = W + left + right;
  for (int64_t i = 0; i < (int64_t)N * C * H * W; i++) dinp[i] = 0;
  for (int64_t pl = 0; pl < (int64_t)N * C; pl++)
    for (int y = 0; y < Ho; y++)
      for (int x = 0; x < Wo; x++)
        dinp[(pl * H + FN(ref_pad_src)(y, H, top, mode)) * W + FN(ref_pad_src)(x, W, left, mode)] +=
            dout[(pl * Ho + y) * Wo + x];
}

/* ---- batch_norm ---- */

void FN(nnk_ref_batch_norm_forward)(T *out, T *save_mean, T *save_invstd, T *running_mean,
                                    T *running_var, const T *inp, const T *weight,
                                    const T *bias, int training, double momentum, double eps,
                                    int64_t N, int64_t C, int64_t HW) {
  const double cnt = (double)(N * HW);
  for (int64_t c = 0; c < C; c++) {
    double mean, var;
    if (training || !running_mean || !running_var) {
      double s = 0, ss = 0;
      for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < HW; i++) s += (double)inp[(n * C + c) * HW + i];
      mean = s / cnt;
      for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < HW; i++) {
          const double d = (double)inp[(n * C + c) * HW + i] - mean;
          ss += d * d;
        }
      var = ss / cnt;
      if (training && running_mean)
        running_mean[c] = (T)((1 - momentum) * (double)running_mean[c] + momentum * mean);
      if (training && running_var)
        running_var[c] = (T)((1 - momentum) * (double)running_var[c] +
                             momentum * (cnt > 1 ? ss / (cnt - 1) : var));
    } else {
      mean = (double)running_mean[c];
      var = (double)running_var[c];
    }
    const double invstd = 1.0 / sqrt(var + eps);
    if (save_mean) save_mean[c] = (T)mean;
    if (save_invstd) save_invstd[c] = (T)invstd;
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < HW; i++) {
        const int64_t j = (n * C + c) * HW + i;
        double y = ((double)inp[j] - mean) * invstd;
        if (weight) y *= (double)weight[c];
        if (bias) y += (double)bias[c];
        out[j] = (T)y;
      }
  }
}

void FN(nnk_ref_batch_norm_backward)(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp,
                                     const T *weight, const T *save_mean, const T *save_invstd,
                                     int training, int64_t N, int64_t C, int64_t HW) {
  const double cnt = (double)(N * HW);
  for (int64_t c = 0; c < C; c++) {
    const double mean = (double)save_mean[c], invstd = (double)save_invstd[c];
    const double w = weight ? (double)weight[c] : 1.0;
    double sdy = 0, sdyxh = 0; /* sum dy, sum dy*xhat */
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < HW; i++) {
        const int64_t j = (n * C + c) * HW + i;
        sdy += (double)dout[j];
        sdyxh += (double)dout[j] * ((double)inp[j] - mean) * invstd;
      }
    if (dbias) dbias[c] = (T)sdy;
    if (dweight) dweight[c] = (T)sdyxh;
    if (!dinp) continue;
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < HW; i++) {
        const int64_t j = (n * C + c) * HW + i;
        const double xh = ((double)inp[j] - mean) * invstd;
        double d;
        if (training) /* dx = w*invstd*(dy - mean(dy) - xhat*mean(dy*xhat)) */
          d = w * invstd * ((double)dout[j] - sdy / cnt - xh * sdyxh / cnt);
        else
          d = w * invstd * (double)dout[j];
        dinp[j] = (T)d;
      }
  }
}

/* ---- group_norm ---- */

void FN(nnk_ref_group_norm_forward)(T *out, T *mean, T *rstd, const T *inp, const T *weight,
                                    const T *bias, int64_t N, int64_t C, int64_t HW, int64_t G,
                                    double eps) {
  const int64_t Cg = C / G, M = Cg * HW;
  for (int64_t n = 0; n < N; n++)
    for (int64_t g = 0; g < G; g++) {
      const T *x = inp + (n * C + g * Cg) * HW;
      double s = 0, ss = 0;
      for (int64_t i = 0; i < M; i++) s += (double)x[i];
      const double mu = s / (double)M;
      for (int64_t i = 0; i < M; i++) ss += ((double)x[i] - mu) * ((double)x[i] - mu);
      const double rs = 1.0 / sqrt(ss / (double)M + eps);
      if (mean) mean[n * G + g] = (T)mu;
      if (rstd) rstd[n * G + g] = (T)rs;
      for (int64_t i = 0; i < M; i++) {
        const int64_t c = g * Cg + i / HW;
        double y = ((double)x[i] - mu) * rs;
        if (weight) y *= (double)weight[c];
        if (bias) y += (double)bias[c];
        out[(n * C + g * Cg) * HW + i] = (T)y;
      }
    }
}

void FN(nnk_ref_group_norm_silu_forward)(T *out, T *mean, T *rstd, const T *inp,
                                         const T *weight, const T *bias, int64_t N, int64_t C,
                                         int64_t HW, int64_t G, double eps) {
  FN(nnk_ref_group_norm_forward)(out, mean, rstd, inp, weight, bias, N, C, HW, G, eps);
  for (int64_t i = 0; i < N * C * HW; i++) {
    const double y = (double)out[i];
    out[i] = (T)(y / (1.0 + exp(-y)));
  }
}

void FN(nnk_ref_group_norm_backward)(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp,
                                     const T *weight, const T *mean, const T *rstd, int64_t N,
                                     int64_t C, int64_t HW, int64_t G) {
  const int64_t Cg = C / G, M = Cg * HW;
  for (int64_t c = 0; c < C; c++) {
    double sw = 0, sb = 0;
    for (int64_t n = 0; n < N; n++) {
      const int64_t ng = n * G + c / Cg;
      for (int64_t i = 0; i < HW; i++) {
        const int64_t j = (n * C + c) * HW + i;
        sw += (double)dout[j] * ((double)inp[j] - (double)mean[ng]) * (double)rstd[ng];
        sb += (double)dout[j];
      }
    }
    if (dweight) dweight[c] = (T)sw;
    if (dbias) dbias[c] = (T)sb;
  }
  if (!dinp) return;
  for (int64_t n = 0; n < N; n++)
    for (int64_t g = 0; g < G; g++) {
      const double mu = (double)mean[n * G + g], rs = (double)rstd[n * G + g];
      const int64_t base = (n * C + g * Cg) * HW;
      double sg = 0, sgx = 0; /* sum dxhat, sum dxhat*xhat over the group */
      for (int64_t i = 0; i < M; i++) {
        const double w = weight ? (double)weight[g * Cg + i / HW] : 1.0;
        const double dxh = (double)dout[base + i] * w, xh = ((double)inp[base + i] - mu) * rs;
        sg += dxh;
        sgx += dxh * xh;
      }
      for (int64_t i = 0; i < M; i++) {
        const double w = weight ? (double)weight[g * Cg + i / HW] : 1.0;
        const double dxh = (double)dout[base + i] * w, xh = ((double)inp[base + i] - mu) * rs;
        dinp[base + i] = (T)(rs * (dxh - sg / (double)M - xh * sgx / (double)M));
      }
    }
}

/* ---- layer_norm ---- */

void FN(nnk_ref_layer_norm_forward)(T *out, T *mean, T *rstd, const T *inp, const T *weight,
                                    const T *bias, int64_t M, int64_t D, double eps) {
  for (int64_t m = 0; m < M; m++) {
    const T *x = inp + m * D;
    double s = 0, ss = 0;
    for (int64_t d = 0; d < D; d++) s += (double)x[d];
    const double mu = s / (double)D;
    for (int64_t d = 0; d < D; d++) ss += ((double)x[d] - mu) * ((double)x[d] - mu);
    const double rs = 1.0 / sqrt(ss / (double)D + eps);
    if (mean) mean[m] = (T)mu;
    if (rstd) rstd[m] = (T)rs;
    for (int64_t d = 0; d < D; d++) {
      double y = ((double)x[d] - mu) * rs;
      if (weight) y *= (double)weight[d];
      if (bias) y += (double)bias[d];
      out[m * D + d] = (T)y;
    }
  }
}

void FN(nnk_ref_layer_norm_backward)(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp,
                                     const T *weight, const T *mean, const T *rstd, int64_t M,
                                     int64_t D) {
  for (int64_t d = 0; d < D; d++) {
    double sw = 0, sb = 0;
    for (int64_t m = 0; m < M; m++) {
      sw += (double)dout[m * D + d] * ((double)inp[m * D + d] - (double)mean[m]) * (double)rstd[m];
      sb += (double)dout[m * D + d];
    }
    if (dweight) dweight[d] = (T)sw;
    if (dbias) dbias[d] = (T)sb;
  }
  if (!dinp) return;
  for (int64_t m = 0; m < M; m++) {
    const double mu = (double)mean[m], rs = (double)rstd[m];
    double sg = 0, sgx = 0;
    for (int64_t d = 0; d < D; d++) {
      const double dxh = (double)dout[m * D + d] * (weight ? (double)weight[d] : 1.0);
      sg += dxh;
      sgx += dxh * ((double)inp[m * D + d] - mu) * rs;
    }
    for (int64_t d = 0; d < D; d++) {
      const double dxh = (double)dout[m * D + d] * (weight ? (double)weight[d] : 1.0);
      const double xh = ((double)inp[m * D + d] - mu) * rs;
      dinp[m * D + d] = (T)(rs * (dxh - sg / (double)D - xh * sgx / (double)D));
    }
  }
}

/* ---- softmax / log_softmax ---- */

static void FN(ref_softmax)(T *out, const T *inp, int64_t outer, int64_t dim, int64_t inner,
                            int is_log) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      const int64_t base = o * dim * inner + j;
      double mx = -INFINITY, s = 0;
      for (int64_t d = 0; d < dim; d++) {
        const double v = (double)inp[base + d * inner];
        if (v > mx) mx = v;
      }
      for (int64_t d = 0; d < dim; d++) s += exp((double)inp[base + d * inner] - mx);
      for (int64_t d = 0; d < dim; d++) {
        const double v = (double)inp[base + d * inner] - mx;
        out[base + d * inner] = (T)(is_log ? v - log(s) : exp(v) / s);
      }
    }
}

static void FN(ref_softmax_bwd)(T *dinp, const T *dout, const T *out, int64_t outer,
                                int64_t dim, int64_t inner, int is_log) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      const int64_t base = o * dim * inner + j;
      double s = 0;
      for (int64_t d = 0; d < dim; d++) {
        const int64_t i = base + d * inner;
        s += is_log ? (double)dout[i] : (double)dout[i] * (double)out[i];
      }
      for (int64_t d = 0; d < dim; d++) {
        const int64_t i = base + d * inner;
        dinp[i] = (T)(is_log ? (double)dout[i] - exp((double)out[i]) * s
                             : (double)out[i] * ((double)dout[i] - s));
      }
    }
}

void FN(nnk_ref_softmax_forward)(T *out, const T *inp, int64_t outer, int64_t dim,
                                 int64_t inner) {
  FN(ref_softmax)(out, inp, outer, dim, inner, 0);
}
void FN(nnk_ref_softmax_backward)(T *dinp, const T *dout, const T *out, int64_t outer,
                                  int64_t dim, int64_t inner) {
  FN(ref_softmax_bwd)(dinp, dout, out, outer, dim, inner, 0);
}
void FN(nnk_ref_log_softmax_forward)(T *out, const T *inp, int64_t outer, int64_t dim,
                                     int64_t inner) {
  FN(ref_softmax)(out, inp, outer, dim, inner, 1);
}
void FN(nnk_ref_log_softmax_backward)(T *dinp, const T *dout, const T *out, int64_t outer,
                                      int64_t dim, int64_t inner) {
  FN(ref_softmax_bwd)(dinp, dout, out, outer, dim, inner, 1);
}

#endif
