/* conv_transpose.c: conv_transpose2d (nnk.h), the adjoint of the conv2d of nnk_convt_as_conv:
 * its forward is that conv's backward_input, its backward_input that conv's forward, its
 * backward_weight that conv's with input and dout swapped, so it runs on every path of
 * conv.c (and on polyphase.c's own fused backward and keep for DCGAN's up-sampling layers).
 */
#ifndef NNK_TMPL_PASS
#include "nnk_internal.h"

void nnk_convt_as_conv(const nnk_convt *t, nnk_conv *c) {
  *c = (nnk_conv){t->N,        t->K,        t->P,     t->Q,     t->C,     t->R,
                  t->S,        t->stride_h, t->stride_w, t->pad_h, t->pad_w, t->dil_h,
                  t->dil_w,    t->groups,   t->H,     t->W};
}

static int convt_check(const nnk_convt *t) {
  if (!t) return -1;
  if (t->out_pad_h < 0 || t->out_pad_w < 0) return -1;
  if (t->out_pad_h >= t->stride_h && t->out_pad_h >= t->dil_h) return -1;
  if (t->out_pad_w >= t->stride_w && t->out_pad_w >= t->dil_w) return -1;
  int64_t P = ((int64_t)t->H - 1) * t->stride_h - 2 * (int64_t)t->pad_h +
              (int64_t)t->dil_h * (t->R - 1) + t->out_pad_h + 1;
  int64_t Q = ((int64_t)t->W - 1) * t->stride_w - 2 * (int64_t)t->pad_w +
              (int64_t)t->dil_w * (t->S - 1) + t->out_pad_w + 1;
  if (P != t->P || Q != t->Q) return -1;
  nnk_conv c;
  nnk_convt_as_conv(t, &c);
  return nnk_conv_check(&c);
}

int nnk_convt_init(nnk_convt *g) {
  if (!g) return -1;
  if (g->H <= 0 || g->W <= 0 || g->stride_h <= 0 || g->stride_w <= 0 || g->dil_h <= 0 ||
      g->dil_w <= 0 || g->R <= 0 || g->S <= 0)
    return -1;
  int64_t P = ((int64_t)g->H - 1) * g->stride_h - 2 * (int64_t)g->pad_h +
              (int64_t)g->dil_h * (g->R - 1) + g->out_pad_h + 1;
  int64_t Q = ((int64_t)g->W - 1) * g->stride_w - 2 * (int64_t)g->pad_w +
              (int64_t)g->dil_w * (g->S - 1) + g->out_pad_w + 1;
  if (P <= 0 || Q <= 0 || P > NNK_BIG || Q > NNK_BIG) return -1;
  g->P = (int)P;
  g->Q = (int)Q;
  return convt_check(g);
}

int nnk_convt_setup(nnk_convt *g, int N, int C, int H, int W, int K, int R, int S,
                    int stride_h, int stride_w, int pad_h, int pad_w, int out_pad_h,
                    int out_pad_w, int dil_h, int dil_w, int groups) {
  if (!g) return -1;
  *g = (nnk_convt){N,        C,        H,         W,         K,     R,     S,
                   stride_h, stride_w, pad_h,     pad_w,     out_pad_h, out_pad_w, dil_h,
                   dil_w,    groups,   0,         0};
  return nnk_convt_init(g);
}

#define NNK_TMPL "conv_transpose.c"
#include "nnk_tmpl.h" /* the part below, for float and for double */

#else /* ---- generic in T ---- */

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

#endif
