/* nn.c: the neural-network ops as tensors ops: linear, convolutions, pooling, upsampling,
 * padding, normalisation, softmax (fused kernels from src/kernels, each with a rule), and the
 * composites built from recorded ops (dropout, embedding, attention, losses). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/nnk.h"
#include "compose.h"

#define KCALL(dt, name, ...) ((dt) == AI_F32 ? nnk_##name##_f32(__VA_ARGS__) : nnk_##name##_f64(__VA_ARGS__))

static int need_float(const ai_tensor *t, const char *fn, const char *arg) {
  if (!ai_is_float(t->dtype))
    return ai_seterror("%s: %s must be a floating-point tensor (got %s)", fn, arg, ai_dtype_names[t->dtype]);
  return 0;
}

static int need_dims(const ai_tensor *t, int nd, const char *fn, const char *arg, const char *layout) {
  if (t->ndim != nd) {
    char b[128];
    return ai_seterror("%s: %s must be %d-D (%s), got shape %s", fn, arg, nd, layout, ai_shape_str(t, b, sizeof b));
  }
  return 0;
}

/* Workspace from the caching allocator (kernels take NULL as "allocate yourself"). */
typedef struct { void *p; size_t n; } wspace;
static int ws_get(wspace *w, size_t n) {
  w->n = n;
  w->p = n ? ai_alloc(n) : NULL;
  return (n && !w->p) ? -1 : 0;
}
static void ws_put(wspace *w) { if (w->p) ai_free(w->p, w->n); }

/* Records op with up to 3 inputs (NULL allowed); on failure releases out. */
static ai_tensor *record(ai_opid op, ai_tensor *out, int nin, ai_tensor **ins, ai_node **np) {
  *np = NULL;
  if (ai_record(np, op, out, nin, ins)) { ai_unref(out); return NULL; }
  return out;
}

/* ---------------------------------------------------------------- linear */

/* y (M, out) = x (M, in) W^T (out, in) + b: one gemm with the bias preloaded into y */
ai_tensor *ai_linear(ai_tensor *x, ai_tensor *w, ai_tensor *b) {
  const char *fn = "linear";
  if (need_float(x, fn, "input") || need_float(w, fn, "weight") || need_dims(w, 2, fn, "weight", "out x in"))
    return NULL;
  if (x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1]) {
    char a[128], c[128];
    return AI_ERRNULL("linear: input of shape %s does not match weight of shape %s (last dim must be %lld)",
                      ai_shape_str(x, a, sizeof a), ai_shape_str(w, c, sizeof c), (long long)w->shape[1]);
  }
  if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
    return AI_ERRNULL("linear: bias must be 1-D of size %lld", (long long)w->shape[0]);
  if (x->dtype != w->dtype || (b && b->dtype != w->dtype))
    return AI_ERRNULL("linear: input, weight and bias must have the same dtype");
  ai_dtype dt = x->dtype;
  int64_t in = w->shape[1], outf = w->shape[0], M = in ? ai_numel(x) / in : 0;
  int64_t shape[AI_MAXDIM];
  for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
  shape[x->ndim - 1] = outf;
  ai_tensor *xc = ai_contiguous(x), *wc = xc ? ai_contiguous(w) : NULL, *bc = (wc && b) ? ai_contiguous(b) : NULL;
  ai_tensor *y = (wc && (bc || !b)) ? ai_empty(dt, x->ndim, shape) : NULL;
  if (y) {
    size_t es = ai_dtype_sizes[dt];
    if (bc) for (int64_t i = 0; i < M; i++) memcpy((char *)ai_data(y) + (size_t)(i * outf) * es, ai_data(bc), (size_t)outf * es);
    ai_gemm(dt, false, true, M, outf, in, ai_data(xc), in, ai_data(wc), in, bc ? 1.0 : 0.0, ai_data(y), outf);
    if (ai_check_interrupt("linear")) { ai_unref(y); ai_unref(xc); ai_unref(wc); ai_unref(bc); return NULL; }
    ai_node *n;
    ai_tensor *ins[3] = {xc, wc, bc};
    y = record(AI_OP_LINEAR, y, 3, ins, &n);
    if (y && n && (ai_save(n, xc) || ai_save(n, wc))) { ai_unref(y); y = NULL; }
  }
  ai_unref(xc); ai_unref(wc); ai_unref(bc);
  return y;
}

/* ---------------------------------------------------------------- convolutions */

static int check_conv_args(ai_tensor *x, ai_tensor *w, ai_tensor *b, int64_t bias_size, const char *fn) {
  if (need_float(x, fn, "input") || need_float(w, fn, "weight")) return -1;
  if (need_dims(x, 4, fn, "input", "N x C x H x W") || need_dims(w, 4, fn, "weight", "4-D")) return -1;
  if (x->dtype != w->dtype || (b && b->dtype != w->dtype))
    return ai_seterror("%s: input, weight and bias must have the same dtype", fn);
  if (b && (b->ndim != 1 || b->shape[0] != bias_size))
    return ai_seterror("%s: bias must be 1-D of size %lld", fn, (long long)bias_size);
  return 0;
}

static int int_dims(const ai_tensor *t, const char *fn) {
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] > INT32_MAX) return ai_seterror("%s: dimension %d is too large", fn, d + 1);
  return 0;
}

typedef enum { CK_FWD, CK_TRANSPOSE, CK_WGRAD } conv_kind;
static const char *const conv_names[] = {"conv2d", "conv_transpose2d", "conv2d_weight_grad"};

/* The geometry of a conv op (g, or gt for CK_TRANSPOSE) and its output's shape, checked. For
 * CK_WGRAD, w is the output gradient and R x S the kernel. */
static int conv_geometry(conv_kind kind, const ai_tensor *a, const ai_tensor *w, int R, int S,
                         const ai_conv_opts *o, nnk_conv *g, nnk_convt *gt, int64_t oshape[4]) {
  const char *fn = conv_names[kind];
  if (int_dims(a, fn) || int_dims(w, fn)) return -1;
  if (kind == CK_FWD) {
    if (a->shape[1] != w->shape[1] * o->groups)
      return ai_seterror("conv2d: input has %lld channels, weight expects %lld (x %d groups)", (long long)a->shape[1],
                         (long long)w->shape[1], o->groups);
    if (nnk_conv_setup(g, (int)a->shape[0], (int)a->shape[1], (int)a->shape[2], (int)a->shape[3], (int)w->shape[0],
                       (int)w->shape[2], (int)w->shape[3], o->stride[0], o->stride[1], o->pad[0], o->pad[1],
                       o->dil[0], o->dil[1], o->groups))
      return ai_seterror("conv2d: invalid geometry (kernel %lldx%lld, stride %d, padding %d, dilation %d, groups %d on a "
                         "%lldx%lld input): the output would be empty or the channels do not divide into groups",
                         (long long)w->shape[2], (long long)w->shape[3], o->stride[0], o->pad[0], o->dil[0], o->groups,
                         (long long)a->shape[2], (long long)a->shape[3]);
    oshape[0] = g->N; oshape[1] = g->K; oshape[2] = g->P; oshape[3] = g->Q;
  } else if (kind == CK_TRANSPOSE) {
    if (a->shape[1] != w->shape[0])
      return ai_seterror("conv_transpose2d: input has %lld channels, weight expects %lld", (long long)a->shape[1],
                         (long long)w->shape[0]);
    if (nnk_convt_setup(gt, (int)a->shape[0], (int)a->shape[1], (int)a->shape[2], (int)a->shape[3],
                        (int)w->shape[1] * o->groups, (int)w->shape[2], (int)w->shape[3], o->stride[0], o->stride[1],
                        o->pad[0], o->pad[1], o->out_pad[0], o->out_pad[1], o->dil[0], o->dil[1], o->groups))
      return ai_seterror("conv_transpose2d: invalid geometry (output_padding must be smaller than stride or "
                         "dilation, channels must divide into groups, the output must not be empty)");
    oshape[0] = gt->N; oshape[1] = gt->K; oshape[2] = gt->P; oshape[3] = gt->Q;
  } else { /* a: conv input (N,C,H,W), w: output gradient (N,K,P,Q) */
    if (nnk_conv_setup(g, (int)a->shape[0], (int)a->shape[1], (int)a->shape[2], (int)a->shape[3], (int)w->shape[1],
                       R, S, o->stride[0], o->stride[1], o->pad[0], o->pad[1], o->dil[0], o->dil[1], o->groups) ||
        g->P != w->shape[2] || g->Q != w->shape[3] || g->N != w->shape[0])
      return ai_seterror("conv2d_weight_grad: shapes do not fit the geometry");
    oshape[0] = g->K; oshape[1] = g->C / g->groups; oshape[2] = R; oshape[3] = S;
  }
  return 0;
}

/* The common shell of the three conv ops: contiguous inputs, output, workspace, kernel call.
 * A recorded forward whose weight needs a gradient also keeps the kernel's transforms of its
 * operands (where it has any: nnk_conv2d_keep_bytes) for ai_conv_backward. */
static ai_tensor *conv_run(conv_kind kind, ai_tensor *a, ai_tensor *w, ai_tensor *b, int R, int S,
                           const ai_conv_opts *o) {
  const char *fn = conv_names[kind];
  ai_dtype dt = a->dtype;
  nnk_conv g;
  nnk_convt gt;
  int64_t oshape[4];
  if (conv_geometry(kind, a, w, R, S, o, &g, &gt, oshape)) return NULL;
  ai_tensor *ac = ai_contiguous(a), *wc = ac ? ai_contiguous(w) : NULL, *bc = (wc && b) ? ai_contiguous(b) : NULL;
  ai_tensor *y = (wc && (bc || !b)) ? ai_empty(dt, 4, oshape) : NULL, *keep = NULL;
  if (!y) goto fail;
  size_t keep_bytes = 0;
  if (kind != CK_WGRAD && ai_grad_enabled() && w->requires_grad)
    keep_bytes = kind == CK_FWD ? KCALL(dt, conv2d_keep_bytes, &g) : KCALL(dt, conv_transpose2d_keep_bytes, &gt);
  if (keep_bytes && !(keep = ai_empty(AI_U8, 1, (int64_t[]){(int64_t)keep_bytes}))) goto fail;
  void *kp = keep ? ai_data(keep) : NULL;
  wspace ws;
  size_t need = kind == CK_FWD ? KCALL(dt, conv2d_forward_workspace_size, &g)
              : kind == CK_TRANSPOSE ? KCALL(dt, conv_transpose2d_forward_workspace_size, &gt)
                                     : KCALL(dt, conv2d_backward_weight_workspace_size, &g);
  if (ws_get(&ws, need)) goto fail;
  void *bp = bc ? ai_data(bc) : NULL;
  int rc = kind == CK_FWD ? KCALL(dt, conv2d_forward_keep, ai_data(y), ai_data(ac), ai_data(wc), bp, kp, &g, ws.p, ws.n)
         : kind == CK_TRANSPOSE ? KCALL(dt, conv_transpose2d_forward_keep, ai_data(y), ai_data(ac), ai_data(wc), bp, kp,
                                        &gt, ws.p, ws.n)
                                : KCALL(dt, conv2d_backward_weight, ai_data(y), ai_data(ac), ai_data(wc), &g, ws.p, ws.n);
  ws_put(&ws);
  if (rc) { ai_seterror("%s: not enough memory for the workspace", fn); goto fail; }
  ai_node *n;
  ai_opid op = kind == CK_FWD ? AI_OP_CONV2D : kind == CK_TRANSPOSE ? AI_OP_CONV_TRANSPOSE2D : AI_OP_CONV2D_WEIGHT_GRAD;
  ai_tensor *ins[3] = {ac, wc, bc};
  y = record(op, y, kind == CK_WGRAD ? 2 : 3, ins, &n);
  if (y && n) {
    n->arg.conv = (ai_conv_args){*o, R, S}; /* the three conv rows share their arguments */
    if (ai_save(n, ac) || ai_save(n, wc) || (keep && ai_save(n, keep))) { ai_unref(y); y = NULL; }
  }
  ai_unref(ac); ai_unref(wc); ai_unref(bc); ai_unref(keep);
  return y;
fail:
  ai_unref(y); ai_unref(ac); ai_unref(wc); ai_unref(bc); ai_unref(keep);
  return NULL;
}

int ai_conv_backward(bool transposed, ai_tensor *a, ai_tensor *w, ai_tensor *g, ai_tensor *keep,
                     const ai_conv_opts *o, ai_tensor **ga, ai_tensor **gw, ai_tensor **gb) {
  const conv_kind kind = transposed ? CK_TRANSPOSE : CK_FWD;
  if (ga) *ga = NULL;
  if (gw) *gw = NULL;
  if (gb) *gb = NULL;
  nnk_conv cg;
  nnk_convt gt;
  int64_t oshape[4];
  if (conv_geometry(kind, a, w, 0, 0, o, &cg, &gt, oshape)) return -1;
  if (g->ndim != 4 || g->dtype != a->dtype || w->dtype != a->dtype || memcmp(g->shape, oshape, sizeof oshape))
    return ai_seterror("%s backward: the gradient does not fit the output", conv_names[kind]);
  const ai_dtype dt = a->dtype;
  ai_tensor *ac = ai_contiguous(a), *wc = ac ? ai_contiguous(w) : NULL, *gc = wc ? ai_contiguous(g) : NULL;
  ai_tensor *dx = gc && ga ? ai_empty(dt, 4, a->shape) : NULL, *dw = gc && gw ? ai_empty(dt, 4, w->shape) : NULL;
  ai_tensor *db = gc && gb ? ai_empty(dt, 1, &oshape[1]) : NULL;
  const void *kp = keep ? ai_data(keep) : NULL;
  wspace ws = {NULL, 0};
  int rc = -1;
  if (gc && (dx || !ga) && (dw || !gw) && (db || !gb)) {
    size_t need = transposed ? KCALL(dt, conv_transpose2d_backward_workspace_size, &gt)
                             : KCALL(dt, conv2d_backward_workspace_size, &cg);
    if (!ws_get(&ws, need)) {
      void *dxp = dx ? ai_data(dx) : NULL, *dwp = dw ? ai_data(dw) : NULL, *dbp = db ? ai_data(db) : NULL;
      rc = transposed ? KCALL(dt, conv_transpose2d_backward, dxp, dwp, dbp, ai_data(ac), ai_data(gc), ai_data(wc), kp,
                              &gt, ws.p, ws.n)
                      : KCALL(dt, conv2d_backward, dxp, dwp, dbp, ai_data(ac), ai_data(gc), ai_data(wc), kp, &cg, ws.p,
                              ws.n);
      ws_put(&ws);
    }
    if (rc) ai_seterror("%s backward: not enough memory for the workspace", conv_names[kind]);
  }
  ai_unref(ac); ai_unref(wc); ai_unref(gc);
  if (rc) { ai_unref(dx); ai_unref(dw); ai_unref(db); return -1; }
  if (ga) *ga = dx;
  if (gw) *gw = dw;
  if (gb) *gb = db;
  return 0;
}

static int check_opts(const ai_conv_opts *o, const char *fn) {
  for (int i = 0; i < 2; i++)
    if (o->stride[i] < 1 || o->dil[i] < 1 || o->pad[i] < 0 || o->out_pad[i] < 0)
      return ai_seterror("%s: stride and dilation must be >= 1, padding >= 0", fn);
  if (o->groups < 1) return ai_seterror("%s: groups must be >= 1", fn);
  return 0;
}

ai_tensor *ai_conv2d(ai_tensor *x, ai_tensor *w, ai_tensor *b, const ai_conv_opts *o) {
  if (check_conv_args(x, w, b, w->shape[0], "conv2d") || check_opts(o, "conv2d")) return NULL;
  return conv_run(CK_FWD, x, w, b, 0, 0, o);
}

ai_tensor *ai_conv_transpose2d(ai_tensor *x, ai_tensor *w, ai_tensor *b, const ai_conv_opts *o) {
  if (w->ndim == 4 && check_conv_args(x, w, b, w->shape[1] * o->groups, "conv_transpose2d")) return NULL;
  if (w->ndim != 4 && need_dims(w, 4, "conv_transpose2d", "weight", "Cin x Cout/groups x R x S")) return NULL;
  if (check_opts(o, "conv_transpose2d")) return NULL;
  return conv_run(CK_TRANSPOSE, x, w, b, 0, 0, o);
}

ai_tensor *ai_conv2d_weight_grad(ai_tensor *a, ai_tensor *d, int R, int S, const ai_conv_opts *o) {
  if (need_dims(a, 4, "conv2d_weight_grad", "input", "NCHW") || need_dims(d, 4, "conv2d_weight_grad", "grad", "NCHW"))
    return NULL;
  return conv_run(CK_WGRAD, a, d, NULL, R, S, o);
}

/* ---------------------------------------------------------------- max pooling */

static int pool_setup(nnk_pool *g, const ai_tensor *x, const int *k, const int *s, const int *p, const int *d,
                      bool ceil_mode, bool cip, const char *fn) {
  if (need_float(x, fn, "input") || need_dims(x, 4, fn, "input", "N x C x H x W") || int_dims(x, fn)) return -1;
  if (nnk_pool_setup(g, (int)x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3], k[0], k[1], s[0], s[1],
                     p[0], p[1], d[0], d[1], ceil_mode, cip, 0))
    return ai_seterror("%s: invalid geometry (kernel %dx%d, stride %dx%d, padding %dx%d on %lldx%lld; padding must be at "
                       "most half the kernel and the output non-empty)", fn, k[0], k[1], s[0], s[1], p[0], p[1],
                       (long long)x->shape[2], (long long)x->shape[3]);
  return 0;
}

ai_tensor *ai_max_pool2d(ai_tensor *x, const int *k, const int *s, const int *p, const int *d, bool ceil_mode) {
  nnk_pool g;
  if (pool_setup(&g, x, k, s, p, d, ceil_mode, false, "max_pool2d")) return NULL;
  int64_t shape[4] = {g.N, g.C, g.P, g.Q};
  ai_tensor *xc = ai_contiguous(x), *y = xc ? ai_empty(x->dtype, 4, shape) : NULL;
  ai_tensor *ix = y ? ai_empty(AI_I64, 4, shape) : NULL;
  if (!ix) { ai_unref(xc); ai_unref(y); return NULL; }
  KCALL(x->dtype, max_pool2d_forward, ai_data(y), ai_data(ix), ai_data(xc), &g);
  ai_node *n;
  y = record(AI_OP_MAX_POOL2D, y, 1, &xc, &n);
  if (y && n) {
    *AI_ARGS(n, MAX_POOL2D) = (ai_pool_args){{k[0], k[1]}, {s[0], s[1]}, {p[0], p[1]}, {d[0], d[1]}, ceil_mode};
    if (ai_save(n, ix)) { ai_unref(y); y = NULL; }
  }
  ai_unref(ix);
  ai_unref(xc);
  return y;
}

/* ---------------------------------------------------------------- linear maps and adjoints
 * Average pooling, adaptive average pooling, upsampling and reflect/replicate padding are
 * linear: the backward of each is its adjoint, and the backward of the adjoint is the map
 * again, so each pair of rows differentiates any number of times. Both rows of a pair keep the
 * same ai_linmap_args. */

ai_tensor *ai_linmap(ai_opid fwd, bool adjoint, ai_tensor *in, const ai_linmap_args *a) {
  if (need_float(in, ai_op_name(fwd), "input") || need_dims(in, 4, ai_op_name(fwd), "input", "N x C x H x W"))
    return NULL;
  int N = (int)in->shape[0], C = (int)in->shape[1];
  int H = a->H, W = a->W, P = a->P, Q = a->Q;
  int64_t shape[4] = {N, C, adjoint ? H : P, adjoint ? W : Q};
  ai_dtype dt = in->dtype;
  ai_tensor *ic = ai_contiguous(in), *y = ic ? ai_empty(dt, 4, shape) : NULL;
  if (!y) { ai_unref(ic); return NULL; }
  void *yo = ai_data(y), *xi = ai_data(ic);
  int rc = 0;
  switch (fwd) {
  case AI_OP_AVG_POOL2D: {
    nnk_pool g;
    nnk_pool_setup(&g, N, C, H, W, a->kernel[0], a->kernel[1], a->stride[0], a->stride[1], a->pad[0], a->pad[1], 1, 1,
                   a->ceil_mode, a->count_include_pad, 0);
    rc = adjoint ? KCALL(dt, avg_pool2d_backward, yo, xi, &g) : KCALL(dt, avg_pool2d_forward, yo, xi, &g);
    break;
  }
  case AI_OP_ADAPTIVE_AVG_POOL2D:
    if (adjoint) KCALL(dt, adaptive_avg_pool2d_backward, yo, xi, N, C, H, W, P, Q);
    else KCALL(dt, adaptive_avg_pool2d_forward, yo, xi, N, C, H, W, P, Q);
    break;
  case AI_OP_UPSAMPLE:
    if (a->mode == 0)
      rc = adjoint ? KCALL(dt, upsample_nearest2d_backward, yo, xi, N, C, H, W, P, Q, a->scale_h, a->scale_w)
                   : KCALL(dt, upsample_nearest2d_forward, yo, xi, N, C, H, W, P, Q, a->scale_h, a->scale_w);
    else
      rc = adjoint ? KCALL(dt, upsample_bilinear2d_backward, yo, xi, N, C, H, W, P, Q, a->align_corners, a->scale_h,
                           a->scale_w)
                   : KCALL(dt, upsample_bilinear2d_forward, yo, xi, N, C, H, W, P, Q, a->align_corners, a->scale_h,
                           a->scale_w);
    break;
  default: { /* PAD */
    nnk_pad_mode m = a->pad_mode == AI_PAD_REFLECT ? NNK_PAD_REFLECT : NNK_PAD_REPLICATE;
    rc = adjoint ? KCALL(dt, pad2d_backward, yo, xi, N, C, H, W, a->left, a->right, a->top, a->bottom, m)
                 : KCALL(dt, pad2d_forward, yo, xi, N, C, H, W, a->left, a->right, a->top, a->bottom, m);
  }
  }
  if (rc) { ai_unref(y); ai_unref(ic); return AI_ERRNULL("%s: invalid geometry", ai_op_name(fwd)); }
  ai_node *n;
  y = record(adjoint ? (ai_opid)(fwd + 1) : fwd, y, 1, &ic, &n);
  if (y && n) n->arg.linmap = *a;
  ai_unref(ic);
  return y;
}

ai_tensor *ai_avg_pool2d(ai_tensor *x, const int *k, const int *s, const int *p, bool ceil_mode, bool cip) {
  nnk_pool g;
  int one[2] = {1, 1};
  if (pool_setup(&g, x, k, s, p, one, ceil_mode, cip, "avg_pool2d")) return NULL;
  ai_linmap_args a = {.H = g.H, .W = g.W, .P = g.P, .Q = g.Q, .kernel = {k[0], k[1]}, .stride = {s[0], s[1]},
                      .pad = {p[0], p[1]}, .ceil_mode = ceil_mode, .count_include_pad = cip};
  return ai_linmap(AI_OP_AVG_POOL2D, false, x, &a);
}

ai_tensor *ai_adaptive_avg_pool2d(ai_tensor *x, int P, int Q) {
  if (need_dims(x, 4, "adaptive_avg_pool2d", "input", "N x C x H x W")) return NULL;
  if (P < 1 || Q < 1) return AI_ERRNULL("adaptive_avg_pool2d: output size must be positive");
  ai_linmap_args a = {.H = (int)x->shape[2], .W = (int)x->shape[3], .P = P, .Q = Q};
  return ai_linmap(AI_OP_ADAPTIVE_AVG_POOL2D, false, x, &a);
}

ai_tensor *ai_upsample(ai_tensor *x, int P, int Q, int mode, bool align_corners, double sh, double sw) {
  if (need_dims(x, 4, "upsample", "input", "N x C x H x W")) return NULL;
  if (P < 1 || Q < 1 || P > (1 << 24) || Q > (1 << 24)) return AI_ERRNULL("upsample: output size must be positive");
  ai_linmap_args a = {.H = (int)x->shape[2], .W = (int)x->shape[3], .P = P, .Q = Q, .mode = mode,
                      .align_corners = align_corners, .scale_h = sh > 0 ? sh : 0, .scale_w = sw > 0 ? sw : 0};
  return ai_linmap(AI_OP_UPSAMPLE, false, x, &a);
}

ai_tensor *ai_pad2d(ai_tensor *x, int l, int r, int t, int b, ai_pad_mode mode, double value) {
  if (x->ndim < 2) return AI_ERRNULL("pad: input needs at least 2 dimensions");
  if (l < 0 || r < 0 || t < 0 || b < 0) return AI_ERRNULL("pad: padding must be non-negative");
  if (mode == AI_PAD_CONSTANT) { /* slice_backward places x inside zeros; the border is a constant */
    scope S = {.n = 0}, *s = &S;
    int nd = x->ndim;
    int64_t wide[AI_MAXDIM], full[AI_MAXDIM];
    for (int d = 0; d < nd; d++) wide[d] = full[d] = x->shape[d];
    wide[nd - 1] = full[nd - 1] = x->shape[nd - 1] + (int64_t)l + r;
    full[nd - 2] += (int64_t)t + b;
    ai_tensor *w = K(s, ai_slice_backward(x, nd, wide, nd - 1, l, 1));
    ai_tensor *res = w ? K(s, ai_slice_backward(w, nd, full, nd - 2, t, 1)) : NULL;
    if (res && value != 0) {
      bool was = ai_set_grad_enabled(false);
      ai_tensor *ones = K(s, ai_full(x->dtype, nd, x->shape, 1.0));
      ai_tensor *ow = ones ? K(s, ai_slice_backward(ones, nd, wide, nd - 1, l, 1)) : NULL;
      ai_tensor *inside = ow ? K(s, ai_slice_backward(ow, nd, full, nd - 2, t, 1)) : NULL;
      ai_tensor *border = inside ? K(s, ai_binary_scalar(AI_SUB, inside, 1.0, true)) : NULL; /* 1 on the border */
      ai_tensor *cst = border ? muls(s, border, value) : NULL;
      ai_set_grad_enabled(was);
      res = add(s, res, cst);
    }
    if (res) ai_ref(res);
    done(s);
    return res;
  }
  if (need_dims(x, 4, "pad", "input", "N x C x H x W (reflect/replicate)")) return NULL;
  int64_t H = x->shape[2], W = x->shape[3];
  if (mode == AI_PAD_REFLECT && (l >= W || r >= W || t >= H || b >= H))
    return AI_ERRNULL("pad: reflect padding must be smaller than the input size (%lldx%lld)", (long long)H, (long long)W);
  ai_linmap_args a = {.H = (int)H, .W = (int)W, .P = (int)(H + t + b), .Q = (int)(W + l + r), .left = l, .right = r,
                      .top = t, .bottom = b, .pad_mode = mode};
  return ai_linmap(AI_OP_PAD, false, x, &a);
}

/* ---------------------------------------------------------------- normalisation */

ai_tensor *ai_batch_norm(ai_tensor *x, ai_tensor *rm, ai_tensor *rv, ai_tensor *w, ai_tensor *b, bool training,
                         double momentum, double eps) {
  const char *fn = "batch_norm";
  if (need_float(x, fn, "input")) return NULL;
  if (x->ndim < 2) return AI_ERRNULL("batch_norm: input must be at least 2-D (N x C x ...)");
  int64_t N = x->shape[0], C = x->shape[1], HW = C && N ? ai_numel(x) / (N * C) : 0;
  ai_tensor *vecs[4] = {rm, rv, w, b};
  const char *vn[4] = {"running_mean", "running_var", "weight", "bias"};
  for (int i = 0; i < 4; i++)
    if (vecs[i] && (vecs[i]->ndim != 1 || vecs[i]->shape[0] != C || vecs[i]->dtype != x->dtype ||
                    (i < 2 && !ai_is_contiguous(vecs[i]))))
      return AI_ERRNULL("batch_norm: %s must be a contiguous 1-D tensor of %lld %s values", vn[i], (long long)C,
                        ai_dtype_names[x->dtype]);
  if (!training && (!rm || !rv)) return AI_ERRNULL("batch_norm: evaluation needs running_mean and running_var");
  if (training && N * HW <= 1)
    return AI_ERRNULL("batch_norm: training needs more than one value per channel (got input of %lld x %lld)",
                      (long long)N, (long long)C);
  ai_dtype dt = x->dtype;
  ai_tensor *xc = ai_contiguous(x), *wc = (xc && w) ? ai_contiguous(w) : NULL, *bc = (xc && b) ? ai_contiguous(b) : NULL;
  ai_tensor *y = (xc && (wc || !w) && (bc || !b)) ? ai_empty(dt, x->ndim, x->shape) : NULL;
  ai_tensor *sm = y ? ai_empty(dt, 1, &C) : NULL, *si = sm ? ai_empty(dt, 1, &C) : NULL;
  if (!si) { ai_unref(xc); ai_unref(wc); ai_unref(bc); ai_unref(y); ai_unref(sm); return NULL; }
  KCALL(dt, batch_norm_forward, ai_data(y), ai_data(sm), ai_data(si), rm ? ai_data(rm) : NULL, rv ? ai_data(rv) : NULL, ai_data(xc), wc ? ai_data(wc) : NULL, bc ? ai_data(bc) : NULL, training,
        momentum, eps, N, C, HW);
  if (training) { if (rm) ai_bump_version(rm); if (rv) ai_bump_version(rv); }
  ai_node *n;
  ai_tensor *ins[3] = {xc, wc, bc};
  y = record(AI_OP_BATCH_NORM, y, 3, ins, &n);
  if (y && n) {
    *AI_ARGS(n, BATCH_NORM) = (ai_norm_args){.eps = eps, .training = training};
    if (ai_save(n, xc) || ai_save(n, sm) || ai_save(n, si) || (wc && ai_save(n, wc))) { ai_unref(y); y = NULL; }
  }
  ai_unref(xc); ai_unref(wc); ai_unref(bc); ai_unref(sm); ai_unref(si);
  return y;
}

ai_tensor *ai_group_norm(ai_tensor *x, int G, ai_tensor *w, ai_tensor *b, double eps) {
  const char *fn = "group_norm";
  if (need_float(x, fn, "input")) return NULL;
  if (x->ndim < 2) return AI_ERRNULL("group_norm: input must be at least 2-D (N x C x ...)");
  int64_t N = x->shape[0], C = x->shape[1], HW = C && N ? ai_numel(x) / (N * C) : 0;
  if (G < 1 || C % G) return AI_ERRNULL("group_norm: %lld channels do not divide into %d groups", (long long)C, G);
  if ((w && (w->ndim != 1 || w->shape[0] != C || w->dtype != x->dtype)) ||
      (b && (b->ndim != 1 || b->shape[0] != C || b->dtype != x->dtype)))
    return AI_ERRNULL("group_norm: weight and bias must be 1-D tensors of %lld values of the input's dtype", (long long)C);
  ai_dtype dt = x->dtype;
  int64_t NG = N * G;
  ai_tensor *xc = ai_contiguous(x), *wc = (xc && w) ? ai_contiguous(w) : NULL, *bc = (xc && b) ? ai_contiguous(b) : NULL;
  ai_tensor *y = (xc && (wc || !w) && (bc || !b)) ? ai_empty(dt, x->ndim, x->shape) : NULL;
  ai_tensor *mean = y ? ai_empty(dt, 1, &NG) : NULL, *rstd = mean ? ai_empty(dt, 1, &NG) : NULL;
  if (!rstd) { ai_unref(xc); ai_unref(wc); ai_unref(bc); ai_unref(y); ai_unref(mean); return NULL; }
  KCALL(dt, group_norm_forward, ai_data(y), ai_data(mean), ai_data(rstd), ai_data(xc), wc ? ai_data(wc) : NULL,
        bc ? ai_data(bc) : NULL, N, C, HW, G, eps);
  ai_node *n;
  ai_tensor *ins[3] = {xc, wc, bc};
  y = record(AI_OP_GROUP_NORM, y, 3, ins, &n);
  if (y && n) {
    *AI_ARGS(n, GROUP_NORM) = (ai_norm_args){.eps = eps, .groups = G};
    if (ai_save(n, xc) || ai_save(n, mean) || ai_save(n, rstd) || (wc && ai_save(n, wc))) { ai_unref(y); y = NULL; }
  }
  ai_unref(xc); ai_unref(wc); ai_unref(bc); ai_unref(mean); ai_unref(rstd);
  return y;
}

ai_tensor *ai_layer_norm(ai_tensor *x, int nd, ai_tensor *w, ai_tensor *b, double eps) {
  const char *fn = "layer_norm";
  if (need_float(x, fn, "input")) return NULL;
  if (nd < 1 || nd > x->ndim) return AI_ERRNULL("layer_norm: cannot normalise over %d dims of a %d-D input", nd, x->ndim);
  int64_t D = 1;
  for (int d = x->ndim - nd; d < x->ndim; d++) D *= x->shape[d];
  int64_t M = D ? ai_numel(x) / D : 0;
  ai_tensor *vs[2] = {w, b};
  for (int i = 0; i < 2; i++) {
    if (!vs[i]) continue;
    bool ok = vs[i]->ndim == nd && vs[i]->dtype == x->dtype;
    for (int d = 0; ok && d < nd; d++) ok = vs[i]->shape[d] == x->shape[x->ndim - nd + d];
    if (!ok) return AI_ERRNULL("layer_norm: %s must have the normalised shape (the last %d dims of the input)",
                               i ? "bias" : "weight", nd);
  }
  ai_dtype dt = x->dtype;
  ai_tensor *xc = ai_contiguous(x), *wc = (xc && w) ? ai_contiguous(w) : NULL, *bc = (xc && b) ? ai_contiguous(b) : NULL;
  ai_tensor *y = (xc && (wc || !w) && (bc || !b)) ? ai_empty(dt, x->ndim, x->shape) : NULL;
  ai_tensor *mean = y ? ai_empty(dt, 1, &M) : NULL, *rstd = mean ? ai_empty(dt, 1, &M) : NULL;
  if (!rstd) { ai_unref(xc); ai_unref(wc); ai_unref(bc); ai_unref(y); ai_unref(mean); return NULL; }
  KCALL(dt, layer_norm_forward, ai_data(y), ai_data(mean), ai_data(rstd), ai_data(xc), wc ? ai_data(wc) : NULL,
        bc ? ai_data(bc) : NULL, M, D, eps);
  ai_node *n;
  ai_tensor *ins[3] = {xc, wc, bc};
  y = record(AI_OP_LAYER_NORM, y, 3, ins, &n);
  if (y && n) {
    *AI_ARGS(n, LAYER_NORM) = (ai_norm_args){.eps = eps, .ndims = nd};
    if (ai_save(n, xc) || ai_save(n, mean) || ai_save(n, rstd) || (wc && ai_save(n, wc))) { ai_unref(y); y = NULL; }
  }
  ai_unref(xc); ai_unref(wc); ai_unref(bc); ai_unref(mean); ai_unref(rstd);
  return y;
}

/* ---------------------------------------------------------------- softmax */

static void split_dim(const ai_tensor *t, int dim, int64_t *outer, int64_t *len, int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < dim; d++) *outer *= t->shape[d];
  *len = t->ndim ? t->shape[dim] : 1;
  for (int d = dim + 1; d < t->ndim; d++) *inner *= t->shape[d];
}

ai_tensor *ai_softmax(ai_tensor *x, int dim, bool log) {
  const char *fn = log ? "log_softmax" : "softmax";
  if (need_float(x, fn, "input")) return NULL;
  if (x->ndim && (dim = ai_wrapdim(dim, x->ndim, fn)) < 0) return NULL;
  int64_t o, l, i;
  split_dim(x, dim, &o, &l, &i);
  ai_tensor *xc = ai_contiguous(x), *y = xc ? ai_empty(x->dtype, x->ndim, x->shape) : NULL;
  if (!y) { ai_unref(xc); return NULL; }
  if (log) KCALL(x->dtype, log_softmax_forward, ai_data(y), ai_data(xc), o, l, i);
  else KCALL(x->dtype, softmax_forward, ai_data(y), ai_data(xc), o, l, i);
  ai_node *n;
  y = record(log ? AI_OP_LOG_SOFTMAX : AI_OP_SOFTMAX, y, 1, &xc, &n);
  if (y && n) { n->arg.dim.dim = dim; if (ai_save_output(n, y)) { ai_unref(y); y = NULL; } }
  ai_unref(xc);
  return y;
}

/* ---------------------------------------------------------------- composites */

ai_tensor *ai_dropout(ai_tensor *x, double p, bool training) {
  if (!(p >= 0 && p <= 1)) return AI_ERRNULL("dropout: p must be in [0, 1] (got %g)", p);
  if (need_float(x, "dropout", "input")) return NULL;
  if (!training || p == 0) return ai_ref(x);
  ai_tensor *m = ai_empty(x->dtype, x->ndim, x->shape);
  if (!m) return NULL;
  if (p == 1 ? ai_zero_(m) : ai_bernoulli_(m, 1 - p)) { ai_unref(m); return NULL; }
  ai_tensor *ms = p < 1 ? ai_binary_scalar(AI_DIV, m, 1 - p, false) : ai_ref(m);
  ai_unref(m);
  if (!ms) return NULL;
  ai_tensor *y = ai_binary(AI_MUL, x, ms);
  ai_unref(ms);
  return y;
}

ai_tensor *ai_embedding(ai_tensor *idx, ai_tensor *weight) {
  if (need_dims(weight, 2, "embedding", "weight", "num x dim")) return NULL;
  if (idx->dtype != AI_I64) return AI_ERRNULL("embedding: indices must be i64 (got %s)", ai_dtype_names[idx->dtype]);
  scope S = {.n = 0}, *s = &S;
  int64_t flat = -1, shape[AI_MAXDIM];
  ai_tensor *f = K(s, ai_reshape(idx, 1, &flat));
  ai_tensor *rows = f ? K(s, ai_index_select(weight, 0, f)) : NULL;
  for (int d = 0; d < idx->ndim; d++) shape[d] = idx->shape[d];
  shape[idx->ndim] = weight->shape[1];
  ai_tensor *r = viewas(s, rows, idx->ndim + 1, shape);
  if (r) ai_ref(r);
  done(s);
  return r;
}

ai_tensor *ai_attention(ai_tensor *q, ai_tensor *k, ai_tensor *v, ai_tensor *mask) {
  if (q->ndim < 2 || k->ndim < 2 || v->ndim < 2) return AI_ERRNULL("scaled_dot_product_attention: q, k, v need 2+ dims");
  scope S = {.n = 0}, *s = &S;
  ai_tensor *kt = K(s, ai_transpose(k, -1, -2));
  ai_tensor *sc = muls(s, kt ? K(s, ai_matmul(q, kt)) : NULL, 1.0 / sqrt((double)q->shape[q->ndim - 1]));
  if (mask && sc) {
    ai_tensor *keep = mask->dtype == AI_U8 ? K(s, ai_unary(AI_NOT, mask)) : NULL;
    if (mask->dtype == AI_U8) sc = keep ? K(s, ai_masked_fill(sc, keep, -INFINITY)) : NULL;
    else sc = add(s, sc, mask); /* a float mask is added, as PyTorch */
  }
  ai_tensor *p = sc ? K(s, ai_softmax(sc, -1, false)) : NULL;
  ai_tensor *r = p ? K(s, ai_matmul(p, v)) : NULL;
  if (r) ai_ref(r);
  done(s);
  return r;
}

/* ---------------------------------------------------------------- losses */

ai_tensor *ai_apply_reduction(ai_tensor *l, ai_reduction r) {
  switch (r) {
  case AI_REDUCE_NONE: return ai_ref(l);
  case AI_REDUCE_SUM: return ai_reduce(AI_RSUM, l, 0, false);
  case AI_REDUCE_BATCHMEAN: {
    ai_tensor *sm = ai_reduce(AI_RSUM, l, 0, false);
    ai_tensor *res = sm ? ai_binary_scalar(AI_DIV, sm, l->ndim ? (double)l->shape[0] : 1.0, false) : NULL;
    ai_unref(sm);
    return res;
  }
  default: return ai_reduce(AI_RMEAN, l, 0, false);
  }
}

static int same_shape_args(const ai_tensor *x, const ai_tensor *y, const char *fn) {
  if (!ai_same_shape(x, y)) {
    char a[128], b[128];
    return ai_seterror("%s: input of shape %s and target of shape %s differ", fn, ai_shape_str(x, a, sizeof a),
                       ai_shape_str(y, b, sizeof b));
  }
  if (!ai_is_float(x->dtype)) return ai_seterror("%s: input must be floating-point", fn);
  return 0;
}

/* Finishes a loss built in scope s: reduces l, hands out a new reference. */
static ai_tensor *finish(scope *s, ai_tensor *l, ai_reduction r) {
  ai_tensor *res = (l && !s->err) ? ai_apply_reduction(l, r) : NULL;
  done(s);
  return res;
}

ai_tensor *ai_mse_loss(ai_tensor *x, ai_tensor *y, ai_reduction r) {
  if (same_shape_args(x, y, "mse_loss")) return NULL;
  scope S = {.n = 0}, *s = &S;
  return finish(s, un(s, AI_SQUARE, sub(s, x, y)), r);
}

ai_tensor *ai_l1_loss(ai_tensor *x, ai_tensor *y, ai_reduction r) {
  if (same_shape_args(x, y, "l1_loss")) return NULL;
  scope S = {.n = 0}, *s = &S;
  return finish(s, un(s, AI_ABS, sub(s, x, y)), r);
}

ai_tensor *ai_smooth_l1_loss(ai_tensor *x, ai_tensor *y, double beta, ai_reduction r) {
  if (same_shape_args(x, y, "smooth_l1_loss")) return NULL;
  if (beta < 0) return AI_ERRNULL("smooth_l1_loss: beta must be non-negative");
  scope S = {.n = 0}, *s = &S;
  ai_tensor *d = un(s, AI_ABS, sub(s, x, y));
  if (beta == 0) return finish(s, d, r);
  ai_tensor *quad = muls(s, un(s, AI_SQUARE, d), 0.5 / beta), *lin = adds(s, d, -0.5 * beta);
  ai_tensor *small = d ? K(s, ai_binary_scalar(AI_LT, d, beta, false)) : NULL;
  return finish(s, (small && quad && lin) ? K(s, ai_where(small, quad, lin)) : NULL, r);
}

/* The elementwise binary cross-entropy -w (y log p + (1 - y) log(1 - p)), logs clamped at -100
 * as PyTorch's, so that p = 0 or 1 gives a finite loss. */
static ai_tensor *bce_terms(scope *s, ai_tensor *p, ai_tensor *y, ai_tensor *weight) {
  ai_tensor *lp = un(s, AI_LOG, p), *l1p = un(s, AI_LOG, one_minus(s, p));
  lp = lp ? K(s, ai_clamp(lp, -100, INFINITY)) : NULL;
  l1p = l1p ? K(s, ai_clamp(l1p, -100, INFINITY)) : NULL;
  ai_tensor *l = un(s, AI_NEG, add(s, mul(s, y, lp), mul(s, one_minus(s, y), l1p)));
  return weight ? mul(s, l, weight) : l;
}

/* One recorded op, not a composite of log and clamp: their gradients would give 0 x inf = NaN
 * where p is exactly 0 or 1 (sigmoid(x) is 1 in f32 above x = 17), so the rule (BCE_LOSS_bw)
 * divides by max(p (1 - p), 1e-12) as PyTorch does. */
ai_tensor *ai_bce_loss(ai_tensor *p, ai_tensor *y, ai_tensor *weight, ai_reduction r) {
  if (same_shape_args(p, y, "bce_loss")) return NULL;
  ai_tensor *lo = ai_reduce(AI_RMIN, p, 0, false), *hi = lo ? ai_reduce(AI_RMAX, p, 0, false) : NULL;
  double pmin = lo ? ai_item(lo) : 0, pmax = hi ? ai_item(hi) : 0;
  ai_unref(lo);
  ai_unref(hi);
  if (!hi) return NULL;
  if (ai_numel(p) > 0 && !(pmin >= 0 && pmax <= 1))
    return AI_ERRNULL("bce_loss: every input value must be a probability in [0, 1] (got values from %g to %g); "
                      "for logits use bce_with_logits", pmin, pmax);
  scope S = {.n = 0}, *s = &S;
  bool was = ai_set_grad_enabled(false);
  ai_tensor *l = bce_terms(s, p, y, weight);
  ai_set_grad_enabled(was);
  ai_node *n = NULL;
  ai_tensor *ins[3] = {p, y, weight};
  if (l && (ai_record(&n, AI_OP_BCE_LOSS, l, 3, ins) ||
            (n && (ai_save(n, p) || ai_save(n, y) || (weight && ai_save(n, weight))))))
    s->err = true;
  return finish(s, l, r);
}

ai_tensor *ai_bce_with_logits(ai_tensor *x, ai_tensor *y, ai_tensor *pw, ai_reduction r) {
  if (same_shape_args(x, y, "bce_with_logits")) return NULL;
  scope S = {.n = 0}, *s = &S;
  /* log(1 + e^-|x|) + max(-x, 0) = softplus(-x), stable for any x */
  ai_tensor *nx = un(s, AI_NEG, x);
  ai_tensor *sp = add(s, un(s, AI_LOG1P, un(s, AI_EXP, un(s, AI_NEG, un(s, AI_ABS, x)))), un(s, AI_RELU, nx));
  ai_tensor *l;
  if (pw) { /* (1 - y) x + (1 + (pw - 1) y) softplus(-x) */
    ai_tensor *coef = adds(s, mul(s, adds(s, pw, -1), y), 1);
    l = add(s, mul(s, one_minus(s, y), x), mul(s, coef, sp));
  } else {
    l = add(s, mul(s, one_minus(s, y), x), sp);
  }
  return finish(s, l, r);
}

/* Moves dim 1 (classes) last and flattens: (N, C, d...) -> (N*d..., C). */
static ai_tensor *classes_last(scope *s, ai_tensor *x) {
  if (x->ndim == 2) return x;
  int perm[AI_MAXDIM], k = 0;
  perm[k++] = 0;
  for (int d = 2; d < x->ndim; d++) perm[k++] = d;
  perm[k++] = 1;
  ai_tensor *p = K(s, ai_permute(x, perm));
  int64_t shape[2] = {-1, x->shape[1]};
  return viewas(s, p, 2, shape);
}

static int check_class_target(const ai_tensor *x, const ai_tensor *t, const char *fn) {
  if (t->dtype != AI_I64) return ai_seterror("%s: target must hold class indices as i64 (got %s)", fn, ai_dtype_names[t->dtype]);
  if (x->ndim < 2) return ai_seterror("%s: input must be N x C (x d...)", fn);
  bool ok = t->ndim == x->ndim - 1 && t->shape[0] == x->shape[0];
  for (int d = 2; ok && d < x->ndim; d++) ok = t->shape[d - 1] == x->shape[d];
  if (!ok) {
    char a[128], b[128];
    return ai_seterror("%s: target of shape %s does not fit input of shape %s (expected the input's shape without dim 2)",
                       fn, ai_shape_str(t, a, sizeof a), ai_shape_str(x, b, sizeof b));
  }
  return 0;
}

/* The per-sample pieces shared by nll_loss and cross_entropy: picked = logp[i, t_i],
 * wt = weight[t_i] * valid_i (0 for ignored targets). */
static int nll_parts(scope *s, ai_tensor *logp, ai_tensor *target, ai_tensor *weight, int64_t ignore, const char *fn,
                     ai_tensor **lp2, ai_tensor **picked, ai_tensor **wt, ai_tensor **validp) {
  if (check_class_target(logp, target, fn)) return -1;
  int64_t C = logp->shape[1], M = ai_numel(target);
  if (weight && (weight->ndim != 1 || weight->shape[0] != C))
    return ai_seterror("%s: weight must be 1-D with %lld class weights", fn, (long long)C);
  ai_tensor *tc = K(s, ai_contiguous(target));
  if (!tc) return -1;
  ai_tensor *t0 = K(s, ai_empty(AI_I64, 2, (int64_t[]){M, 1}));
  ai_tensor *valid = K(s, ai_empty(logp->dtype, 1, &M));
  if (!t0 || !valid) return -1;
  const int64_t *tp = ai_data(tc);
  int64_t *op = ai_data(t0);
  for (int64_t i = 0; i < M; i++) {
    bool ign = tp[i] == ignore;
    if (!ign && (tp[i] < 0 || tp[i] >= C))
      return ai_seterror("%s: target class %lld out of range 1..%lld", fn, (long long)((uint64_t)tp[i] + 1),
                         (long long)C); /* 1-based: the uint64 sum wraps back to what the user gave */
    op[i] = ign ? 0 : tp[i];
    ai_tensor *vi = valid;
    if (vi->dtype == AI_F32) ((float *)ai_data(vi))[i] = !ign; else ((double *)ai_data(vi))[i] = !ign;
  }
  *validp = valid;
  *lp2 = classes_last(s, logp);
  ai_tensor *g = *lp2 ? K(s, ai_gather(*lp2, 1, t0)) : NULL;
  *picked = viewas(s, g, 1, &M);
  if (weight) {
    ai_tensor *flat = viewas(s, t0, 1, &M);
    ai_tensor *wsel = flat ? K(s, ai_index_select(weight, 0, flat)) : NULL;
    *wt = mul(s, wsel, valid);
  } else {
    *wt = valid;
  }
  return s->err ? -1 : 0;
}

/* Reduces per-sample losses l (weighted by wt) to the target's shape, a sum or a weighted mean. */
static ai_tensor *class_reduce(scope *s, ai_tensor *l, ai_tensor *wt, const ai_tensor *target, ai_reduction r) {
  if (s->err) { done(s); return NULL; } /* the scope's temporaries are released on failure too */
  ai_tensor *res = NULL;
  if (r == AI_REDUCE_NONE) res = viewas(s, l, target->ndim, target->shape);
  else if (r == AI_REDUCE_SUM) res = red(s, AI_RSUM, l, 0, false);
  else res = dvd(s, red(s, AI_RSUM, l, 0, false), red(s, AI_RSUM, wt, 0, false));
  if (res) ai_ref(res);
  done(s);
  return res;
}

ai_tensor *ai_nll_loss(ai_tensor *logp, ai_tensor *target, ai_tensor *weight, int64_t ignore, ai_reduction r) {
  if (need_float(logp, "nll_loss", "input")) return NULL;
  scope S = {.n = 0}, *s = &S;
  ai_tensor *lp2, *picked, *wt, *valid;
  if (nll_parts(s, logp, target, weight, ignore, "nll_loss", &lp2, &picked, &wt, &valid)) { done(s); return NULL; }
  return class_reduce(s, un(s, AI_NEG, mul(s, picked, wt)), wt, target, r);
}

ai_tensor *ai_cross_entropy(ai_tensor *x, ai_tensor *target, ai_tensor *weight, int64_t ignore, double eps,
                            ai_reduction r) {
  if (need_float(x, "cross_entropy", "input")) return NULL;
  if (x->ndim < 2) return AI_ERRNULL("cross_entropy: input must be N x C (x d...)");
  if (!(eps >= 0 && eps <= 1)) return AI_ERRNULL("cross_entropy: label_smoothing must be in [0, 1]");
  scope S = {.n = 0}, *s = &S;
  ai_tensor *logp = K(s, ai_softmax(x, 1, true));
  ai_tensor *lp2, *picked, *wt, *valid;
  if (!logp || nll_parts(s, logp, target, weight, ignore, "cross_entropy", &lp2, &picked, &wt, &valid)) {
    done(s);
    return NULL;
  }
  ai_tensor *l = un(s, AI_NEG, mul(s, picked, wt));
  if (eps > 0) { /* (1 - eps) nll + eps * mean over classes of -w_c logp_c */
    int64_t C = x->shape[1];
    ai_tensor *wl = weight ? mul(s, lp2, weight) : lp2;
    ai_tensor *smooth = muls(s, mul(s, red(s, AI_RSUM, wl, 2u, false), valid), -1.0 / (double)C);
    l = add(s, muls(s, l, 1 - eps), muls(s, smooth, eps));
  }
  return class_reduce(s, l, wt, target, r);
}

ai_tensor *ai_kl_div(ai_tensor *input, ai_tensor *target, bool log_target, ai_reduction r) {
  if (same_shape_args(input, target, "kl_div")) return NULL;
  scope S = {.n = 0}, *s = &S;
  ai_tensor *l;
  if (log_target) {
    l = mul(s, un(s, AI_EXP, target), sub(s, target, input));
  } else { /* target * (log target - input), taken as 0 where target == 0 */
    ai_tensor *pos = K(s, ai_binary_scalar(AI_GT, target, 0, false));
    ai_tensor *safe = pos ? K(s, ai_where(pos, target, K(s, ai_scalar(target->dtype, 1)))) : NULL;
    ai_tensor *v = mul(s, target, sub(s, un(s, AI_LOG, safe), input));
    ai_tensor *z = K(s, ai_scalar(input->dtype, 0));
    l = (pos && v && z) ? K(s, ai_where(pos, v, z)) : NULL;
  }
  return finish(s, l, r);
}
