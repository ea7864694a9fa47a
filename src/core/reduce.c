/* reduce.c: reductions over any set of dims (sum mean prod max min logsumexp), var, norm,
 * max/min with indices, argmax, cumulative sums and products, and sum_to (un-broadcasting). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "iter.h"

/* The geometry of a reduction: kept dims (in order) then reduced dims, as strides of t. */
typedef struct {
  int nk, nr;
  int64_t kshape[AI_MAXDIM], kstride[AI_MAXDIM];
  int64_t rshape[AI_MAXDIM], rstride[AI_MAXDIM];
  int64_t K, R; /* outputs, elements per output */
} rgeom;

static void make_geom(const ai_tensor *t, unsigned dims, rgeom *g) {
  g->nk = g->nr = 0;
  g->K = g->R = 1;
  for (int d = 0; d < t->ndim; d++) {
    if (dims & (1u << d)) {
      g->rshape[g->nr] = t->shape[d]; g->rstride[g->nr++] = t->stride[d]; g->R *= t->shape[d];
    } else {
      g->kshape[g->nk] = t->shape[d]; g->kstride[g->nk++] = t->stride[d]; g->K *= t->shape[d];
    }
  }
  /* merge reduced dims whose strides chain, so a contiguous block becomes one stride-1 loop */
  int nr = 0;
  for (int d = 0; d < g->nr; d++) {
    if (g->rshape[d] == 1) continue;
    if (nr && g->rstride[nr - 1] == g->rstride[d] * g->rshape[d]) {
      g->rshape[nr - 1] *= g->rshape[d];
      g->rstride[nr - 1] = g->rstride[d];
    } else {
      g->rshape[nr] = g->rshape[d]; g->rstride[nr++] = g->rstride[d];
    }
  }
  if (!nr) { g->rshape[0] = 1; g->rstride[0] = 0; nr = 1; }
  g->nr = nr;
}

static inline int64_t kept_offset(const rgeom *g, int64_t k) {
  int64_t off = 0;
  for (int d = g->nk - 1; d >= 0; d--) {
    off += (k % g->kshape[d]) * g->kstride[d];
    k /= g->kshape[d];
  }
  return off;
}

/* Reduces the R elements of one output with fn(acc, x) in double precision. */
#define REDUCE_ONE(T, INIT, STEP)                                                            \
  {                                                                                          \
    const T *base = (const T *)src + kept_offset(g, k);                                      \
    double acc = INIT;                                                                       \
    if (g->nr == 1) {                                                                        \
      const int64_t s = g->rstride[0], n = g->rshape[0];                                     \
      if (s == 1) for (int64_t i = 0; i < n; i++) { double x = (double)base[i]; STEP; }      \
      else for (int64_t i = 0; i < n; i++) { double x = (double)base[i * s]; STEP; }         \
    } else {                                                                                 \
      int64_t idx[AI_MAXDIM] = {0}, off = 0;                                                 \
      for (int64_t r = 0; r < g->R; r++) {                                                   \
        double x = (double)base[off];                                                        \
        STEP;                                                                                \
        for (int d = g->nr - 1; d >= 0; d--) {                                               \
          off += g->rstride[d];                                                              \
          if (++idx[d] < g->rshape[d]) break;                                                \
          off -= idx[d] * g->rstride[d];                                                     \
          idx[d] = 0;                                                                        \
        }                                                                                    \
      }                                                                                      \
    }                                                                                        \
    out[k] = acc;                                                                            \
  }

#define ALL_OPS(T)                                                                            \
  switch (op) {                                                                               \
  case AI_RSUM: case AI_RMEAN: REDUCE_ONE(T, 0.0, acc += x) break;                            \
  case AI_RPROD: REDUCE_ONE(T, 1.0, acc *= x) break;                                          \
  case AI_RMAX: REDUCE_ONE(T, -INFINITY, if (x > acc || isnan(x)) acc = isnan(acc) ? acc : x) break; \
  case AI_RMIN: REDUCE_ONE(T, INFINITY, if (x < acc || isnan(x)) acc = isnan(acc) ? acc : x) break; \
  case AI_RLOGSUMEXP: REDUCE_ONE(T, 0.0, acc += exp(x - mx[k])) break;                        \
  default: break;                                                                             \
  }

/* out[k] (double) = reduction of output k; mx holds per-output maxima for logsumexp. */
static void reduce_kernel(ai_redop op, ai_dtype dt, const void *src, const rgeom *g, double *out,
                          const double *mx) {
#pragma omp parallel for schedule(static) if (g->K * g->R >= AI_PAR_MIN && g->K > 1)
  for (int64_t k = 0; k < g->K; k++) {
    switch (dt) {
    case AI_F32: ALL_OPS(float) break;
    case AI_F64: ALL_OPS(double) break;
    case AI_I64: ALL_OPS(int64_t) break;
    default: ALL_OPS(uint8_t) break;
    }
  }
}

/* Fast path for sums over leading/middle dims of a contiguous tensor: (O, R, I) with I > 1;
 * rows are added in order into the output, which vectorises along I. */
static bool outer_sum(const ai_tensor *t, unsigned dims, ai_tensor *out) {
  if (!ai_is_contiguous(t) || !ai_is_float(t->dtype) || t->dtype != out->dtype) return false;
  int lo = -1, hi = -1;
  for (int d = 0; d < t->ndim; d++)
    if (dims & (1u << d)) { if (lo < 0) lo = d; hi = d; }
  if (lo < 0) return false;
  for (int d = lo; d <= hi; d++) if (!(dims & (1u << d))) return false;
  int64_t O = 1, R = 1, I = 1;
  for (int d = 0; d < lo; d++) O *= t->shape[d];
  for (int d = lo; d <= hi; d++) R *= t->shape[d];
  for (int d = hi + 1; d < t->ndim; d++) I *= t->shape[d];
  if (I < 8) return false;
#define OUTER(T)                                                                \
  {                                                                             \
    const T *x = ai_data(t);                                                    \
    T *y = ai_data(out);                                                        \
    _Pragma("omp parallel for schedule(static) if (O * R * I >= AI_PAR_MIN)")    \
    for (int64_t o = 0; o < O; o++) {                                           \
      T *yo = y + o * I;                                                        \
      for (int64_t i = 0; i < I; i++) yo[i] = 0;                                \
      for (int64_t r = 0; r < R; r++) {                                         \
        const T *xr = x + (o * R + r) * I;                                      \
        for (int64_t i = 0; i < I; i++) yo[i] += xr[i];                         \
      }                                                                         \
    }                                                                           \
  }
  if (t->dtype == AI_F32) OUTER(float) else OUTER(double)
#undef OUTER
  return true;
}

static ai_dtype reduce_dtype(ai_redop op, ai_dtype in) {
  if (op == AI_RMAX || op == AI_RMIN) return in;
  if (op == AI_RMEAN || op == AI_RLOGSUMEXP) return ai_is_float(in) ? in : AI_F32;
  return ai_is_float(in) ? in : AI_I64;
}

static void out_shape(const ai_tensor *t, unsigned dims, bool keepdim, int *nd, int64_t *shape) {
  int k = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (dims & (1u << d)) { if (keepdim) shape[k++] = 1; }
    else shape[k++] = t->shape[d];
  }
  *nd = k;
}


/* The raw reduction without recording. */
static ai_tensor *reduce_raw(ai_redop op, ai_tensor *t, unsigned dims, bool keepdim) {
  if (dims == 0) dims = t->ndim ? (1u << t->ndim) - 1 : 0;
  int nd;
  int64_t shape[AI_MAXDIM];
  out_shape(t, dims, keepdim, &nd, shape);
  rgeom g;
  make_geom(t, dims, &g);
  if (g.R == 0 && (op == AI_RMAX || op == AI_RMIN))
    return AI_ERRNULL("%s: cannot reduce over an empty dimension", ai_redop_names[op]);
  ai_dtype odt = reduce_dtype(op, t->dtype);
  ai_tensor *out = ai_empty(odt, nd, shape);
  if (!out) return NULL;
  if ((op == AI_RSUM || op == AI_RMEAN) && outer_sum(t, dims, out)) {
    if (op == AI_RMEAN) {
      ai_tensor *tmp = ai_binary_scalar(AI_DIV, out, (double)g.R, false); /* not recorded: caller */
      ai_unref(out);
      out = tmp;
    }
    return out;
  }
  double *acc = malloc(sizeof(double) * (size_t)(g.K ? g.K : 1)), *mx = NULL;
  if (!acc) { ai_unref(out); return AI_ERRNULL("not enough memory"); }
  if (op == AI_RLOGSUMEXP) {
    mx = malloc(sizeof(double) * (size_t)(g.K ? g.K : 1));
    if (!mx) { free(acc); ai_unref(out); return AI_ERRNULL("not enough memory"); }
    reduce_kernel(AI_RMAX, t->dtype, ai_data(t), &g, mx, NULL);
    for (int64_t k = 0; k < g.K; k++) if (isinf(mx[k])) mx[k] = 0; /* all -inf or +inf rows */
  }
  reduce_kernel(op, t->dtype, ai_data(t), &g, acc, mx);
  for (int64_t k = 0; k < g.K; k++) {
    double v = acc[k];
    if (op == AI_RMEAN) v /= (double)g.R;
    if (op == AI_RLOGSUMEXP) v = log(v) + mx[k];
    switch (odt) {
    case AI_F32: ((float *)out->storage->data)[k] = (float)v; break;
    case AI_F64: ((double *)out->storage->data)[k] = v; break;
    case AI_I64: ((int64_t *)out->storage->data)[k] = (int64_t)v; break;
    default: ((uint8_t *)out->storage->data)[k] = (uint8_t)v; break;
    }
  }
  free(acc);
  free(mx);
  return out;
}

#define REDUCE_ROW(RNAME, name, ROW, saves) [AI_##RNAME] = AI_OP_##ROW,
static const ai_opid redop_row[AI_NREDUCE] = {AI_REDUCE_OPS(REDUCE_ROW)};
#undef REDUCE_ROW
#define SAVES_INOUT 1
#define SAVES_NOTHING 0
#define REDUCE_SAVES(RNAME, name, ROW, saves) [AI_##RNAME] = SAVES_##saves,
static const bool redop_saves[AI_NREDUCE] = {AI_REDUCE_OPS(REDUCE_SAVES)};
#undef REDUCE_SAVES

ai_tensor *ai_reduce(ai_redop op, ai_tensor *t, unsigned dims, bool keepdim) {
  if ((int)op < 0 || op >= AI_NREDUCE) return AI_ERRNULL("unknown reduction");
  if (t->ndim && dims >= (1u << t->ndim))
    return AI_ERRNULL("%s: dimension out of range for a %d-dim tensor", ai_redop_names[op], t->ndim);
  bool was = ai_set_grad_enabled(false);
  ai_tensor *out = reduce_raw(op, t, dims, keepdim);
  ai_set_grad_enabled(was);
  if (!out || !ai_is_float(out->dtype)) return out;
  ai_node *n = NULL;
  int err = ai_record(&n, redop_row[op], out, 1, &t);
  if (!err && n) {
    n->arg.reduce = (ai_reduce_args){.dims = dims ? dims : (t->ndim ? (1u << t->ndim) - 1 : 0), .keepdim = keepdim};
    if (redop_saves[op]) err = ai_save(n, t) || ai_save_output(n, out);
  }
  if (err) { ai_unref(out); return NULL; }
  return out;
}

/* var = sum((x - mean)^2) / (R - unbiased), composed of recorded ops so it differentiates. */
ai_tensor *ai_var(ai_tensor *t, unsigned dims, bool unbiased, bool keepdim) {
  if (dims == 0) dims = t->ndim ? (1u << t->ndim) - 1 : 0;
  int64_t R = 1;
  for (int d = 0; d < t->ndim; d++) if (dims & (1u << d)) R *= t->shape[d];
  ai_tensor *x = ai_is_float(t->dtype) ? ai_ref(t) : ai_to_dtype(t, AI_F32);
  ai_tensor *m = x ? ai_reduce(AI_RMEAN, x, dims, true) : NULL;
  ai_tensor *c = m ? ai_binary(AI_SUB, x, m) : NULL;
  ai_tensor *c2 = c ? ai_unary(AI_SQUARE, c) : NULL;
  ai_tensor *s = c2 ? ai_reduce(AI_RSUM, c2, dims, keepdim) : NULL;
  double denom = (double)(R - (unbiased ? 1 : 0));
  ai_tensor *v = s ? ai_binary_scalar(AI_DIV, s, denom > 0 ? denom : NAN, false) : NULL;
  ai_unref(x); ai_unref(m); ai_unref(c); ai_unref(c2); ai_unref(s);
  return v;
}

/* The value is composed from reductions without recording; the op records itself as NORM so
 * that its gradient is defined (0) at a zero vector, where sqrt's would be NaN. */
ai_tensor *ai_norm(ai_tensor *t, double p, unsigned dims, bool keepdim) {
  if (!(p > 0)) return AI_ERRNULL("norm: p must be positive or inf (got %g)", p);
  if (t->ndim && dims >= (1u << t->ndim)) return AI_ERRNULL("norm: dimension out of range");
  bool was = ai_set_grad_enabled(false);
  ai_tensor *x = ai_is_float(t->dtype) ? ai_ref(t) : ai_to_dtype(t, AI_F32);
  ai_tensor *a = x ? ai_unary(AI_ABS, x) : NULL, *s = NULL, *r = NULL;
  if (a && isinf(p)) r = ai_reduce(AI_RMAX, a, dims, keepdim);
  else if (a && p == 1) r = ai_reduce(AI_RSUM, a, dims, keepdim);
  else if (a && p == 2) {
    ai_tensor *sq = ai_unary(AI_SQUARE, a);
    s = sq ? ai_reduce(AI_RSUM, sq, dims, keepdim) : NULL;
    ai_unref(sq);
    r = s ? ai_unary(AI_SQRT, s) : NULL;
  } else if (a) {
    ai_tensor *pw = ai_binary_scalar(AI_POW, a, p, false);
    s = pw ? ai_reduce(AI_RSUM, pw, dims, keepdim) : NULL;
    ai_unref(pw);
    r = s ? ai_binary_scalar(AI_POW, s, 1.0 / p, false) : NULL;
  }
  ai_set_grad_enabled(was);
  ai_unref(a);
  ai_unref(s);
  if (r && x) {
    ai_node *n = NULL;
    int err = ai_record(&n, AI_OP_NORM, r, 1, &x);
    if (!err && n) {
      *AI_ARGS(n, NORM) = (ai_reduce_args){.dims = dims ? dims : (x->ndim ? (1u << x->ndim) - 1 : 0),
                                           .keepdim = keepdim, .p = p};
      err = ai_save(n, x) || ai_save_output(n, r);
    }
    if (err) { ai_unref(r); r = NULL; }
  }
  ai_unref(x);
  return r;
}

/* ---------------------------------------------------------------- max/min along one dim */

#define ARG_BODY(T)                                                                       \
  {                                                                                       \
    const T *x = ai_data(t);                                                              \
    _Pragma("omp parallel for schedule(static) if (g.K * g.R >= AI_PAR_MIN)")              \
    for (int64_t k = 0; k < g.K; k++) {                                                   \
      const T *b = x + kept_offset(&g, k);                                                \
      const int64_t s = g.rstride[0];                                                     \
      int64_t best = 0;                                                                   \
      T bv = b[0];                                                                        \
      for (int64_t i = 1; i < g.R; i++) {                                                 \
        T v = b[i * s];                                                                   \
        if (bv != bv) break;                                                              \
        if (is_min ? (v < bv || v != v) : (v > bv || v != v)) { bv = v; best = i; }      \
      }                                                                                   \
      if (vals) ((T *)vals)[k] = bv;                                                      \
      idx[k] = best;                                                                      \
    }                                                                                     \
  }

/* vals (may be NULL) and idx receive the extreme value and its index for each output. */
static void argextreme(const ai_tensor *t, const rgeom *gp, bool is_min, void *vals, int64_t *idx) {
  rgeom g = *gp;
  switch (t->dtype) {
  case AI_F32: ARG_BODY(float) break;
  case AI_F64: ARG_BODY(double) break;
  case AI_I64: ARG_BODY(int64_t) break;
  default: ARG_BODY(uint8_t) break;
  }
}

int ai_max_dim(ai_tensor *t, int dim, bool keepdim, bool is_min, ai_tensor **values,
               ai_tensor **indices) {
  const char *fn = is_min ? "min" : "max";
  *values = *indices = NULL;
  if (t->ndim == 0) { /* a 0-dim tensor is its own max */
    *values = ai_clone(t);
    *indices = ai_zeros(AI_I64, 0, NULL);
    return (*values && *indices) ? 0 : -1;
  }
  if ((dim = ai_wrapdim(dim, t->ndim, fn)) < 0) return -1;
  if (t->shape[dim] == 0) return ai_seterror("%s: cannot reduce over an empty dimension", fn);
  unsigned dims = 1u << dim;
  int nd;
  int64_t shape[AI_MAXDIM];
  out_shape(t, dims, keepdim, &nd, shape);
  rgeom g;
  make_geom(t, dims, &g);
  g.rstride[0] = t->stride[dim]; /* one dim: keep its stride even when size 1 */
  g.R = t->shape[dim];
  ai_tensor *v = ai_empty(t->dtype, nd, shape), *ix = v ? ai_empty(AI_I64, nd, shape) : NULL;
  if (!ix) { ai_unref(v); return -1; }
  argextreme(t, &g, is_min, ai_data(v), ai_data(ix));
  if (ai_is_float(t->dtype)) {
    ai_node *n = NULL;
    int err = ai_record(&n, AI_OP_MAX_DIM, v, 1, &t);
    if (!err && n) { *AI_ARGS(n, MAX_DIM) = (ai_dim_args){.dim = dim, .keepdim = keepdim}; err = ai_save(n, ix); }
    if (err) { ai_unref(v); ai_unref(ix); return -1; }
  }
  *values = v;
  *indices = ix;
  return 0;
}

ai_tensor *ai_argmax(ai_tensor *t, int dim, bool keepdim, bool is_min) {
  const char *fn = is_min ? "argmin" : "argmax";
  if (ai_numel(t) == 0) return AI_ERRNULL("%s: empty tensor", fn);
  if (dim < 0 || t->ndim == 0) { /* over all elements: index into the flattened tensor */
    ai_tensor *c = ai_contiguous(t);
    if (!c) return NULL;
    int64_t n = ai_numel(c);
    ai_tensor *flat = ai_empty(t->dtype, 1, &n);
    ai_tensor *r = NULL;
    if (flat) {
      memcpy(ai_data(flat), ai_data(c), (size_t)n * ai_dtype_sizes[t->dtype]);
      ai_tensor *v, *ix;
      bool was = ai_set_grad_enabled(false);
      if (!ai_max_dim(flat, 0, false, is_min, &v, &ix)) { ai_unref(v); r = ix; }
      ai_set_grad_enabled(was);
    }
    ai_unref(flat);
    ai_unref(c);
    return r;
  }
  ai_tensor *v, *ix;
  bool was = ai_set_grad_enabled(false);
  int rc = ai_max_dim(t, dim, keepdim, is_min, &v, &ix);
  ai_set_grad_enabled(was);
  if (rc) return NULL;
  ai_unref(v);
  return ix;
}

/* ---------------------------------------------------------------- cumulative */

ai_tensor *ai_cumulative(ai_tensor *t, int dim, bool is_prod) {
  const char *fn = is_prod ? "cumprod" : "cumsum";
  if (t->ndim == 0) return ai_clone(t);
  if ((dim = ai_wrapdim(dim, t->ndim, fn)) < 0) return NULL;
  ai_dtype dt = ai_is_float(t->dtype) ? t->dtype : AI_I64;
  ai_tensor *c = ai_to_dtype(t, dt);
  ai_tensor *x = c ? ai_contiguous(c) : NULL;
  ai_unref(c);
  if (!x) return NULL;
  ai_tensor *out = ai_empty(dt, t->ndim, t->shape);
  if (!out) { ai_unref(x); return NULL; }
  int64_t O = 1, D = t->shape[dim], I = 1;
  for (int d = 0; d < dim; d++) O *= t->shape[d];
  for (int d = dim + 1; d < t->ndim; d++) I *= t->shape[d];
#define CUM(T)                                                                        \
  {                                                                                   \
    const T *a = ai_data(x);                                                          \
    T *y = ai_data(out);                                                              \
    for (int64_t o = 0; o < O; o++)                                                   \
      for (int64_t i = 0; i < I; i++) {                                               \
        T acc = is_prod ? 1 : 0;                                                      \
        for (int64_t j = 0; j < D; j++) {                                             \
          int64_t k = (o * D + j) * I + i;                                            \
          acc = is_prod ? acc * a[k] : acc + a[k];                                    \
          y[k] = acc;                                                                 \
        }                                                                             \
      }                                                                               \
  }
  if (dt == AI_F32) CUM(float) else if (dt == AI_F64) CUM(double) else CUM(uint64_t) /* i64 bits; wraps */
#undef CUM
  if (ai_is_float(dt)) {
    ai_node *n = NULL;
    int err = ai_record(&n, is_prod ? AI_OP_CUMPROD : AI_OP_CUMSUM, out, 1, &x);
    if (!err && n) {
      n->arg.dim.dim = dim; /* CUMSUM or CUMPROD */
      if (is_prod) err = ai_save(n, x) || ai_save_output(n, out);
    }
    if (err) { ai_unref(out); out = NULL; }
  }
  ai_unref(x);
  return out;
}

/* ---------------------------------------------------------------- sum_to */

ai_tensor *ai_sum_to(ai_tensor *g, int ndim, const int64_t *shape) {
  if (g->ndim == ndim && !memcmp(g->shape, shape, sizeof(int64_t) * (size_t)ndim)) return ai_ref(g);
  int lead = g->ndim - ndim;
  if (lead < 0) return AI_ERRNULL("sum_to: cannot sum %d dims to %d", g->ndim, ndim);
  unsigned dims = 0;
  for (int d = 0; d < g->ndim; d++) {
    if (d < lead) { dims |= 1u << d; continue; }
    int64_t want = shape[d - lead];
    if (want == 1 && g->shape[d] != 1) dims |= 1u << d;
    else if (want != g->shape[d])
      return AI_ERRNULL("sum_to: shape mismatch at dimension %d (%lld vs %lld)", d + 1,
                        (long long)g->shape[d], (long long)want);
  }
  if (!dims) return ai_view(g, ndim, shape);
  ai_tensor *s = ai_reduce(AI_RSUM, g, dims, true);
  if (!s) return NULL;
  ai_tensor *v = ai_view(s, ndim, shape);
  ai_unref(s);
  return v;
}
