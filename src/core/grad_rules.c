/* grad_rules.c: the backward rule of every differentiable op, one short function per row of
 * the op table (graph.h). Rules are written with the recording ops themselves, so that with
 * create_graph the backward pass records its own graph (double backward). Each rule fills
 * gin[i] for the inputs that need a gradient; the engine un-broadcasts and accumulates. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

#include "compose.h"

/* The shape a reduction over `dims` had with keepdim. */
static void keep_shape(const ai_input *in, unsigned dims, int64_t *shape) {
  for (int d = 0; d < in->ndim; d++) shape[d] = (dims & (1u << d)) ? 1 : in->shape[d];
}
/* A reduced result (or its gradient) brought back to keepdim form, then expanded to the input. */
static ai_tensor *unreduce(scope *s, ai_node *n, ai_tensor *t) {
  if (!t || s->err) { s->err = true; return NULL; }
  int64_t shape[AI_MAXDIM];
  keep_shape(&n->in[0], n->arg.reduce.dims, shape);
  ai_tensor *v = K(s, ai_view(t, n->in[0].ndim, shape));
  return v ? K(s, ai_expand(v, n->in[0].ndim, n->in[0].shape)) : NULL;
}

#define RULE(name) static int name##_bw(ai_node *n, ai_tensor *g, ai_tensor **gin)
#define NEED(i) ai_needs_grad(n, i)
#define BEGIN scope S = {.n = 0}; scope *s = &S; (void)g; (void)gin
#define END return done(s)

/* ---------------------------------------------------------------- arithmetic */

RULE(ADD) { BEGIN; out(s, gin, 0, g); out(s, gin, 1, g); END; }
RULE(SUB) { BEGIN; out(s, gin, 0, g); if (NEED(1)) out(s, gin, 1, un(s, AI_NEG, g)); END; }
RULE(MUL) {
  BEGIN;
  ai_tensor *a = saved(s, n, 0), *b = saved(s, n, 1);
  if (NEED(0)) out(s, gin, 0, mul(s, g, b));
  if (NEED(1)) out(s, gin, 1, mul(s, g, a));
  END;
}
RULE(DIV) {
  BEGIN;
  ai_tensor *a = saved(s, n, 0), *b = saved(s, n, 1);
  if (NEED(0)) out(s, gin, 0, dvd(s, g, b));
  if (NEED(1)) out(s, gin, 1, un(s, AI_NEG, mul(s, g, dvd(s, dvd(s, a, b), b))));
  END;
}
RULE(POW) {
  BEGIN;
  ai_tensor *a = saved(s, n, 0), *b = saved(s, n, 1);
  if (NEED(0)) { /* b a^(b-1), taken as 0 where b == 0 (0 * 0^-1 would be NaN) */
    ai_tensor *v = mul(s, g, mul(s, b, bin(s, AI_POW, a, adds(s, b, -1))));
    ai_tensor *z = s->err ? NULL : K(s, ai_binary_scalar(AI_EQ, b, 0, false));
    out(s, gin, 0, OK2(v, z) ? K(s, ai_masked_fill(v, z, 0)) : NULL);
  }
  if (NEED(1)) { /* d/db a^b = a^b log a, taken as 0 where a == 0 */
    ai_tensor *v = mul(s, g, mul(s, bin(s, AI_POW, a, b), un(s, AI_LOG, a)));
    ai_tensor *z = s->err ? NULL : K(s, ai_binary_scalar(AI_EQ, a, 0, false));
    out(s, gin, 1, OK2(v, z) ? K(s, ai_masked_fill(v, z, 0)) : NULL);
  }
  END;
}
RULE(REM) {
  BEGIN;
  ai_tensor *a = saved(s, n, 0), *b = saved(s, n, 1);
  out(s, gin, 0, g);
  if (NEED(1)) {
    bool was = ai_set_grad_enabled(false);
    ai_tensor *q = un(s, AI_FLOOR, dvd(s, a, b));
    ai_set_grad_enabled(was);
    out(s, gin, 1, un(s, AI_NEG, mul(s, g, q)));
  }
  END;
}
static int minmax_rule(ai_node *n, ai_tensor *g, ai_tensor **gin, ai_binop cmp) {
  BEGIN;
  ai_tensor *a = saved(s, n, 0), *b = saved(s, n, 1);
  ai_tensor *m = bin(s, cmp, a, b), *z = zero_scalar(s, g->dtype);
  if (NEED(0)) out(s, gin, 0, OK2(m, z) ? K(s, ai_where(m, g, z)) : NULL);
  if (NEED(1)) out(s, gin, 1, OK2(m, z) ? K(s, ai_where(m, z, g)) : NULL);
  END;
}
RULE(MAXIMUM) { return minmax_rule(n, g, gin, AI_GE); }
RULE(MINIMUM) { return minmax_rule(n, g, gin, AI_LE); }
RULE(ATAN2) {
  BEGIN;
  ai_tensor *y = saved(s, n, 0), *x = saved(s, n, 1);
  ai_tensor *r2 = add(s, mul(s, x, x), mul(s, y, y));
  if (NEED(0)) out(s, gin, 0, mul(s, g, dvd(s, x, r2)));
  if (NEED(1)) out(s, gin, 1, un(s, AI_NEG, mul(s, g, dvd(s, y, r2))));
  END;
}

/* ---------------------------------------------------------------- unary math */

RULE(NEG) { BEGIN; out(s, gin, 0, un(s, AI_NEG, g)); END; }
RULE(ABS) {
  BEGIN;
  ai_tensor *x = saved(s, n, 0); /* NULL (with an error) when it cannot be had */
  out(s, gin, 0, mul(s, g, x ? K(s, ai_unary_nograd(AI_SIGN, x)) : NULL));
  END;
}
RULE(EXP) { BEGIN; out(s, gin, 0, mul(s, g, saved(s, n, 0))); END; }
RULE(LOG) { BEGIN; out(s, gin, 0, dvd(s, g, saved(s, n, 0))); END; }
RULE(LOG1P) { BEGIN; out(s, gin, 0, dvd(s, g, adds(s, saved(s, n, 0), 1))); END; }
RULE(EXPM1) { BEGIN; out(s, gin, 0, mul(s, g, adds(s, saved(s, n, 0), 1))); END; }
RULE(SQRT) { BEGIN; out(s, gin, 0, dvd(s, muls(s, g, 0.5), saved(s, n, 0))); END; }
RULE(RSQRT) {
  BEGIN;
  ai_tensor *y = saved(s, n, 0);
  out(s, gin, 0, mul(s, muls(s, g, -0.5), mul(s, y, mul(s, y, y))));
  END;
}
RULE(SIN) { BEGIN; out(s, gin, 0, mul(s, g, un(s, AI_COS, saved(s, n, 0)))); END; }
RULE(COS) { BEGIN; out(s, gin, 0, un(s, AI_NEG, mul(s, g, un(s, AI_SIN, saved(s, n, 0))))); END; }
/* When no graph is being recorded, an activation's gradient is one fused pass (ACTGRAD);
 * with create_graph the composed form below it records what double backward needs. */
#define ACTGRAD(kind, slope)                                                                 \
  if (!ai_create_graph_active()) {                                                           \
    ai_tensor *v = saved(s, n, 0);                                                           \
    out(s, gin, 0, v ? K(s, ai_activation_grad(g, v, kind, slope)) : NULL);                  \
    END;                                                                                     \
  }
RULE(TANH) {
  BEGIN;
  ACTGRAD(AI_ACTGRAD_TANH_Y, 0)
  ai_tensor *y = saved(s, n, 0);
  out(s, gin, 0, mul(s, g, one_minus(s, mul(s, y, y))));
  END;
}
RULE(SIGMOID) {
  BEGIN;
  ACTGRAD(AI_ACTGRAD_SIGMOID_Y, 0)
  ai_tensor *y = saved(s, n, 0);
  out(s, gin, 0, mul(s, g, mul(s, y, one_minus(s, y))));
  END;
}
RULE(RELU) {
  BEGIN;
  ACTGRAD(AI_ACTGRAD_RELU, 0)
  ai_tensor *x = saved(s, n, 0);
  out(s, gin, 0, mul(s, g, x ? K(s, ai_binary_scalar(AI_GT, x, 0, false)) : NULL));
  END;
}
RULE(SILU) { /* silu' = s (1 + x (1 - s)) */
  BEGIN;
  ACTGRAD(AI_ACTGRAD_SILU, 0)
  ai_tensor *x = saved(s, n, 0), *sg = un(s, AI_SIGMOID, x);
  out(s, gin, 0, mul(s, g, mul(s, sg, adds(s, mul(s, x, one_minus(s, sg)), 1))));
  END;
}
RULE(GELU) { /* gelu' = Phi(x) + x phi(x) */
  BEGIN;
  ai_tensor *x = saved(s, n, 0);
  ai_tensor *Phi = muls(s, adds(s, un(s, AI_ERF, muls(s, x, M_SQRT1_2)), 1), 0.5);
  ai_tensor *phi = muls(s, un(s, AI_EXP, muls(s, mul(s, x, x), -0.5)), 0.3989422804014327);
  out(s, gin, 0, mul(s, g, add(s, Phi, mul(s, x, phi))));
  END;
}
RULE(RECIPROCAL) {
  BEGIN;
  ai_tensor *y = saved(s, n, 0);
  out(s, gin, 0, un(s, AI_NEG, mul(s, g, mul(s, y, y))));
  END;
}
RULE(SQUARE) { BEGIN; out(s, gin, 0, mul(s, g, muls(s, saved(s, n, 0), 2))); END; }
RULE(LOG2) { BEGIN; out(s, gin, 0, dvd(s, g, muls(s, saved(s, n, 0), M_LN2))); END; }
RULE(ERF) {
  BEGIN;
  ai_tensor *x = saved(s, n, 0);
  out(s, gin, 0, mul(s, g, muls(s, un(s, AI_EXP, un(s, AI_NEG, mul(s, x, x))), 1.1283791670955126)));
  END;
}
RULE(TAN) { BEGIN; ai_tensor *y = saved(s, n, 0); out(s, gin, 0, mul(s, g, adds(s, mul(s, y, y), 1))); END; }
/* g / sqrt(c + sign x^2): asin (c = 1, -), asinh (1, +), acosh (-1, +); acos negates asin's */
static ai_tensor *inv_sqrt_rule(scope *s, ai_node *n, ai_tensor *g, double c, double sign) {
  ai_tensor *x = saved(s, n, 0);
  return mul(s, g, un(s, AI_RSQRT, adds(s, muls(s, mul(s, x, x), sign), c)));
}
RULE(ASIN) { BEGIN; out(s, gin, 0, inv_sqrt_rule(s, n, g, 1, -1)); END; }
RULE(ACOS) { BEGIN; out(s, gin, 0, un(s, AI_NEG, inv_sqrt_rule(s, n, g, 1, -1))); END; }
RULE(ASINH) { BEGIN; out(s, gin, 0, inv_sqrt_rule(s, n, g, 1, 1)); END; }
RULE(ACOSH) { BEGIN; out(s, gin, 0, inv_sqrt_rule(s, n, g, -1, 1)); END; }
RULE(ATAN) { BEGIN; ai_tensor *x = saved(s, n, 0); out(s, gin, 0, dvd(s, g, adds(s, mul(s, x, x), 1))); END; }
RULE(ATANH) { BEGIN; ai_tensor *x = saved(s, n, 0); out(s, gin, 0, dvd(s, g, one_minus(s, mul(s, x, x)))); END; }
RULE(SINH) { BEGIN; out(s, gin, 0, mul(s, g, un(s, AI_COSH, saved(s, n, 0)))); END; }
RULE(COSH) { BEGIN; out(s, gin, 0, mul(s, g, un(s, AI_SINH, saved(s, n, 0)))); END; }
RULE(ERFINV) { /* sqrt(pi) / 2 e^(y^2) */
  BEGIN;
  ai_tensor *y = saved(s, n, 0);
  out(s, gin, 0, mul(s, g, muls(s, un(s, AI_EXP, mul(s, y, y)), 0.88622692545275801)));
  END;
}
RULE(LGAMMA) { BEGIN; out(s, gin, 0, mul(s, g, un(s, AI_DIGAMMA, saved(s, n, 0)))); END; }
RULE(DIGAMMA) { BEGIN; out(s, gin, 0, mul(s, g, un(s, AI_TRIGAMMA, saved(s, n, 0)))); END; }
RULE(LOGADDEXP) { /* d/da = sigmoid(a - b) */
  BEGIN;
  ai_tensor *a = saved(s, n, 0), *b = saved(s, n, 1);
  if (NEED(0)) out(s, gin, 0, mul(s, g, un(s, AI_SIGMOID, sub(s, a, b))));
  if (NEED(1)) out(s, gin, 1, mul(s, g, un(s, AI_SIGMOID, sub(s, b, a))));
  END;
}
RULE(HYPOT) { /* d/da = a / hypot(a, b) */
  BEGIN;
  ai_tensor *a = saved(s, n, 0), *b = saved(s, n, 1), *r = bin(s, AI_HYPOT, a, b);
  if (NEED(0)) out(s, gin, 0, mul(s, g, dvd(s, a, r)));
  if (NEED(1)) out(s, gin, 1, mul(s, g, dvd(s, b, r)));
  END;
}
RULE(LEAKY_RELU) {
  BEGIN;
  ACTGRAD(AI_ACTGRAD_LEAKY, AI_ARGS(n, LEAKY_RELU)->a)
  ai_tensor *x = saved(s, n, 0);
  ai_tensor *m = x ? K(s, ai_binary_scalar(AI_GT, x, 0, false)) : NULL;
  double slope = AI_ARGS(n, LEAKY_RELU)->a;
  ai_tensor *f = m ? adds(s, muls(s, m, 1 - slope), slope) : NULL;
  out(s, gin, 0, mul(s, g, f));
  END;
}
RULE(SOFTPLUS) {
  BEGIN;
  const ai_act_args *a = AI_ARGS(n, SOFTPLUS); /* beta, threshold */
  ai_tensor *bx = muls(s, saved(s, n, 0), a->a);
  ai_tensor *m = bx ? K(s, ai_binary_scalar(AI_GT, bx, a->b, false)) : NULL;
  ai_tensor *sg = un(s, AI_SIGMOID, bx);
  out(s, gin, 0, mul(s, g, OK2(m, sg) ? K(s, ai_masked_fill(sg, m, 1)) : NULL));
  END;
}
RULE(CLAMP) {
  BEGIN;
  ai_tensor *x = saved(s, n, 0);
  const ai_act_args *a = AI_ARGS(n, CLAMP); /* min, max */
  ai_tensor *lo = x ? K(s, ai_binary_scalar(AI_GE, x, a->a, false)) : NULL;
  ai_tensor *hi = x ? K(s, ai_binary_scalar(AI_LE, x, a->b, false)) : NULL;
  out(s, gin, 0, mul(s, g, bin(s, AI_AND, lo, hi)));
  END;
}
RULE(WHERE) {
  BEGIN;
  ai_tensor *c = saved(s, n, 0), *z = zero_scalar(s, g->dtype);
  if (NEED(1)) out(s, gin, 1, OK2(c, z) ? K(s, ai_where(c, g, z)) : NULL);
  if (NEED(2)) out(s, gin, 2, OK2(c, z) ? K(s, ai_where(c, z, g)) : NULL);
  END;
}
RULE(MASKED_FILL) {
  BEGIN;
  ai_tensor *m = saved(s, n, 0);
  out(s, gin, 0, m ? K(s, ai_masked_fill(g, m, 0)) : NULL);
  END;
}

/* ---------------------------------------------------------------- reductions */

static int64_t reduced_count(const ai_node *n) {
  int64_t r = 1;
  for (int d = 0; d < n->in[0].ndim; d++) if (n->arg.reduce.dims & (1u << d)) r *= n->in[0].shape[d];
  return r;
}
RULE(SUM) { BEGIN; out(s, gin, 0, unreduce(s, n, g)); END; }
RULE(MEAN) { BEGIN; out(s, gin, 0, unreduce(s, n, muls(s, g, 1.0 / (double)reduced_count(n)))); END; }
RULE(PROD) { /* prod of the others: y / x where x != 0; with one zero in a group, the product
              * of its non-zeros at the zero; with two or more zeros, 0 */
  BEGIN;
  ai_tensor *x = saved(s, n, 0), *y = saved(s, n, 1);
  unsigned dims = AI_ARGS(n, PROD)->dims;
  ai_tensor *zero = x ? K(s, ai_binary_scalar(AI_EQ, x, 0, false)) : NULL;
  ai_tensor *nz = zero ? K(s, ai_masked_fill(x, zero, 1)) : NULL;
  ai_tensor *p_nz = unreduce(s, n, red(s, AI_RPROD, nz, dims, true));
  ai_tensor *zf = zero ? K(s, ai_to_dtype(zero, g->dtype)) : NULL;
  ai_tensor *nzeros = red(s, AI_RSUM, zf, dims, true);
  ai_tensor *one_zero = unreduce(s, n, nzeros ? K(s, ai_binary_scalar(AI_EQ, nzeros, 1, false)) : NULL);
  ai_tensor *zs = zero_scalar(s, g->dtype);
  ai_tensor *at_zero = (OK2(one_zero, p_nz) && zs) ? K(s, ai_where(one_zero, p_nz, zs)) : NULL;
  ai_tensor *q = dvd(s, unreduce(s, n, y), nz);
  ai_tensor *others = (OK2(zero, at_zero) && q) ? K(s, ai_where(zero, at_zero, q)) : NULL;
  out(s, gin, 0, mul(s, unreduce(s, n, g), others));
  END;
}
RULE(AMAX) { /* ties share the gradient evenly, as PyTorch's amax */
  BEGIN;
  ai_tensor *x = saved(s, n, 0), *y = unreduce(s, n, saved(s, n, 1));
  ai_tensor *m = bin(s, AI_EQ, x, y);
  ai_tensor *mf = m ? K(s, ai_to_dtype(m, g->dtype)) : NULL;
  ai_tensor *cnt = mf ? K(s, ai_reduce(AI_RSUM, mf, AI_ARGS(n, AMAX)->dims, true)) : NULL;
  out(s, gin, 0, mul(s, dvd(s, unreduce(s, n, g), cnt ? K(s, ai_expand(cnt, n->in[0].ndim, n->in[0].shape)) : NULL), mf));
  END;
}
RULE(LOGSUMEXP) {
  BEGIN;
  ai_tensor *x = saved(s, n, 0), *y = saved(s, n, 1);
  out(s, gin, 0, mul(s, unreduce(s, n, g), un(s, AI_EXP, sub(s, x, unreduce(s, n, y)))));
  END;
}
RULE(MAX_DIM) {
  BEGIN;
  const ai_dim_args *a = AI_ARGS(n, MAX_DIM);
  int dim = a->dim;
  ai_tensor *ix = saved(s, n, 0), *gk = g;
  if (!a->keepdim && ix && g) { ix = K(s, ai_unsqueeze(ix, dim)); gk = K(s, ai_unsqueeze(g, dim)); }
  ai_tensor *z = zeros_of(s, &n->in[0]);
  out(s, gin, 0, (OK2(ix, gk) && z) ? K(s, ai_scatter(z, dim, ix, gk, false)) : NULL);
  END;
}
RULE(NORM) { /* sign(x) |x|^(p-1) / r^(p-1), 0 where r == 0; for p = inf, amax's rule on |x| */
  BEGIN;
  double p = AI_ARGS(n, NORM)->p;
  ai_tensor *x = saved(s, n, 0), *r = unreduce(s, n, saved(s, n, 1)), *gu = unreduce(s, n, g);
  ai_tensor *sg = x ? K(s, ai_unary_nograd(AI_SIGN, x)) : NULL;
  ai_tensor *d;
  if (isinf(p)) {
    ai_tensor *m = bin(s, AI_EQ, un(s, AI_ABS, x), r);
    ai_tensor *mf = m ? K(s, ai_to_dtype(m, g->dtype)) : NULL;
    ai_tensor *cnt = unreduce(s, n, red(s, AI_RSUM, mf, AI_ARGS(n, NORM)->dims, true));
    d = dvd(s, mul(s, sg, mf), cnt);
  } else if (p == 1) {
    d = sg;
  } else {
    ai_tensor *rz = r ? K(s, ai_binary_scalar(AI_EQ, r, 0, false)) : NULL;
    ai_tensor *rs = OK2(rz, r) ? K(s, ai_masked_fill(r, rz, 1)) : NULL;
    ai_tensor *num = p == 2 ? x : mul(s, sg, binsc(s, AI_POW, un(s, AI_ABS, x), p - 1));
    ai_tensor *den = p == 2 ? rs : binsc(s, AI_POW, rs, p - 1);
    ai_tensor *q = dvd(s, num, den);
    d = OK2(q, rz) ? K(s, ai_masked_fill(q, rz, 0)) : NULL;
  }
  out(s, gin, 0, mul(s, gu, d));
  END;
}

/* sum_{j >= i} v_j along dim, as total - cumsum + v (no flip op needed) */
static ai_tensor *rev_cumsum(scope *s, ai_tensor *v, int dim) {
  if (!v || s->err) { s->err = true; return NULL; }
  ai_tensor *tot = K(s, ai_reduce(AI_RSUM, v, 1u << dim, true));
  ai_tensor *cs = K(s, ai_cumulative(v, dim, false));
  return add(s, sub(s, tot, cs), v);
}
RULE(CUMSUM) { BEGIN; out(s, gin, 0, rev_cumsum(s, g, AI_ARGS(n, CUMSUM)->dim)); END; }
/* The exact cumprod gradient along one row, zeros included: before the first zero z,
 * grad_j = sum_{j<=k<z} g_k y_k / x_j; at z the products skip x_z; after z everything is 0. */
#define CUMPROD_ROW(T)                                                                   \
  {                                                                                      \
    const T *xp = ai_data(xc), *yp = ai_data(yc), *gg = ai_data(gc);                      \
    T *r = ai_data(res);                                                                 \
    for (int64_t o = 0; o < O; o++)                                                      \
      for (int64_t i = 0; i < I; i++) {                                                  \
        int64_t base = o * D * I + i, z = D;                                             \
        for (int64_t j = 0; j < D; j++) if (xp[base + j * I] == 0) { z = j; break; }      \
        T acc = 0;                                                                       \
        for (int64_t j = D - 1; j >= 0; j--) {                                           \
          int64_t k = base + j * I;                                                      \
          if (j < z) { acc += gg[k] * yp[k]; r[k] = acc / xp[k]; }                         \
          else r[k] = 0;                                                                 \
        }                                                                                \
        if (z < D) {                                                                     \
          T pre = z > 0 ? yp[base + (z - 1) * I] : (T)1, run = pre, sum = 0;              \
          for (int64_t k = z; k < D; k++) {                                              \
            if (k > z) run *= xp[base + k * I];                                           \
            sum += gg[base + k * I] * run;                                               \
          }                                                                              \
          r[base + z * I] = sum;                                                         \
        }                                                                                \
      }                                                                                  \
  }

RULE(CUMPROD) {
  BEGIN;
  int dim = AI_ARGS(n, CUMPROD)->dim;
  ai_tensor *x = saved(s, n, 0), *y = saved(s, n, 1);
  if (s->err) END;
  if (ai_create_graph_active()) { /* differentiable form; assumes no zeros */
    out(s, gin, 0, dvd(s, rev_cumsum(s, mul(s, g, y), dim), x));
    END;
  }
  ai_tensor *xc = K(s, ai_contiguous(x)), *yc = K(s, ai_contiguous(y)), *gc = K(s, ai_contiguous(g));
  ai_tensor *res = K(s, ai_empty(g->dtype, g->ndim, g->shape));
  if (s->err) END;
  int64_t O = 1, D = x->shape[dim], I = 1;
  for (int d = 0; d < dim; d++) O *= x->shape[d];
  for (int d = dim + 1; d < x->ndim; d++) I *= x->shape[d];
  if (g->dtype == AI_F32) CUMPROD_ROW(float) else CUMPROD_ROW(double)
  out(s, gin, 0, res);
  END;
}
#undef CUMPROD_ROW

/* ---------------------------------------------------------------- matmul */

static ai_tensor *mT(scope *s, ai_tensor *t) { return (t && !s->err) ? K(s, ai_transpose(t, -1, -2)) : (s->err = true, NULL); }
RULE(MATMUL) {
  BEGIN;
  ai_tensor *a = saved(s, n, 0), *b = saved(s, n, 1);
  if (s->err) END;
  /* work with the 2-D forms: a 1-D a is a row, a 1-D b a column; g gets those dims back */
  ai_tensor *a2 = a->ndim == 1 ? K(s, ai_unsqueeze(a, 0)) : a;
  ai_tensor *b2 = b->ndim == 1 ? K(s, ai_unsqueeze(b, 1)) : b;
  ai_tensor *g2 = g;
  if (a->ndim == 1 && g2) g2 = K(s, ai_unsqueeze(g2, b->ndim == 1 ? 0 : -2));
  if (b->ndim == 1 && g2) g2 = K(s, ai_unsqueeze(g2, -1));
  if (NEED(0) && a2) {
    ai_tensor *bt = g2 ? mT(s, b2) : NULL; /* NULL when the transpose failed: no matmul of NULL */
    ai_tensor *ga = bt ? K(s, ai_matmul(g2, bt)) : NULL;
    ai_tensor *gs = ga ? K(s, ai_sum_to(ga, a2->ndim, a2->shape)) : NULL;
    out(s, gin, 0, gs ? K(s, ai_view(gs, a->ndim, a->shape)) : NULL);
  }
  if (NEED(1) && b2) {
    ai_tensor *at = g2 ? mT(s, a2) : NULL;
    ai_tensor *gb = at ? K(s, ai_matmul(at, g2)) : NULL;
    ai_tensor *gs = gb ? K(s, ai_sum_to(gb, b2->ndim, b2->shape)) : NULL;
    out(s, gin, 1, gs ? K(s, ai_view(gs, b->ndim, b->shape)) : NULL);
  }
  END;
}

/* ---------------------------------------------------------------- views and copies */

RULE(VIEW) { BEGIN; out(s, gin, 0, K(s, ai_reshape(g, n->in[0].ndim, n->in[0].shape))); END; }
RULE(PERMUTE) {
  BEGIN;
  int inv[AI_MAXDIM];
  for (int d = 0; d < n->in[0].ndim; d++) inv[AI_ARGS(n, PERMUTE)->perm[d]] = d;
  out(s, gin, 0, K(s, ai_permute(g, inv)));
  END;
}
RULE(SLICE) {
  BEGIN;
  const ai_slice_args *a = AI_ARGS(n, SLICE);
  out(s, gin, 0, K(s, ai_slice_backward(g, n->in[0].ndim, n->in[0].shape, a->dim, a->start, a->step)));
  END;
}
RULE(SELECT) {
  BEGIN;
  const ai_slice_args *a = AI_ARGS(n, SELECT);
  ai_tensor *u = K(s, ai_unsqueeze(g, a->dim));
  out(s, gin, 0, u ? K(s, ai_slice_backward(u, n->in[0].ndim, n->in[0].shape, a->dim, a->start, 1)) : NULL);
  END;
}
RULE(EXPAND) { BEGIN; out(s, gin, 0, g); END; }
RULE(SLICE_BACKWARD) {
  BEGIN;
  const ai_slice_args *a = AI_ARGS(n, SLICE_BACKWARD);
  int64_t len = n->in[0].shape[a->dim], start = a->start, step = a->step;
  out(s, gin, 0, K(s, ai_slice(g, a->dim, start, start + (len - 1) * step + 1, step)));
  END;
}
RULE(CLONE) { BEGIN; out(s, gin, 0, g); END; }
RULE(TO_DTYPE) { BEGIN; out(s, gin, 0, g); END; }
RULE(CAT) {
  BEGIN;
  int dim = AI_ARGS(n, CAT)->dim;
  int64_t at = 0;
  for (int i = 0; i < n->nin; i++) {
    if (NEED(i)) out(s, gin, i, K(s, ai_narrow(g, dim, at, n->extra[i])));
    at += n->extra[i];
  }
  END;
}
RULE(INDEX_SELECT) {
  BEGIN;
  ai_tensor *ix = saved(s, n, 0), *z = zeros_of(s, &n->in[0]);
  out(s, gin, 0, OK2(ix, z) ? K(s, ai_index_add(z, AI_ARGS(n, INDEX_SELECT)->dim, ix, g)) : NULL);
  END;
}
RULE(INDEX_ADD) {
  BEGIN;
  ai_tensor *ix = saved(s, n, 0);
  out(s, gin, 0, g);
  if (NEED(2)) out(s, gin, 2, ix ? K(s, ai_index_select(g, AI_ARGS(n, INDEX_ADD)->dim, ix)) : NULL);
  END;
}
RULE(GATHER) {
  BEGIN;
  ai_tensor *ix = saved(s, n, 0), *z = zeros_of(s, &n->in[0]);
  out(s, gin, 0, OK2(ix, z) ? K(s, ai_scatter(z, AI_ARGS(n, GATHER)->dim, ix, g, true)) : NULL);
  END;
}
RULE(SCATTER) {
  BEGIN;
  const ai_dim_args *a = AI_ARGS(n, SCATTER);
  int dim = a->dim;
  ai_tensor *ix = saved(s, n, 0);
  if (NEED(0)) {
    if (a->add) out(s, gin, 0, g);
    else {
      ai_tensor *z = ix ? K(s, ai_zeros(g->dtype, ix->ndim, ix->shape)) : NULL;
      out(s, gin, 0, OK2(ix, z) ? K(s, ai_scatter(g, dim, ix, z, false)) : NULL);
    }
  }
  if (NEED(2)) out(s, gin, 2, ix ? K(s, ai_gather(g, dim, ix)) : NULL);
  END;
}

/* an op whose rule the caller gave (ai_record_custom) */
RULE(CUSTOM) { const ai_custom_args *a = AI_ARGS(n, CUSTOM); return a->fn(a->ctx, a->output, g, n->nin, gin); }

#include "grad_rules_nn.inc" /* the rules of the neural-network ops (nn.c) */

/* ---------------------------------------------------------------- the table */

/* One rule per recorded row of the registry: a GRAD or GRAD1 row without its NAME_bw here does
 * not compile, and a rule without a row is an unused function (a warning). */
#define RULE_ROW(NAME, name, args, grad, ...) RULE_ROW_##grad(NAME)
#define RULE_ROW_GRAD(NAME) [AI_OP_##NAME] = NAME##_bw,
#define RULE_ROW_GRAD1(NAME) [AI_OP_##NAME] = NAME##_bw,
#define RULE_ROW_NOGRAD(NAME)
const ai_rule ai_rules[AI_NOPS] = {AI_OP_LIST(RULE_ROW)};
