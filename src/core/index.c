/* index.c: joining (cat, stack) and index-driven ops (index_select, gather, scatter, index_add,
 * masked_select).
 * Index tensors hold 0-based i64 positions here; the Lua binding converts from 1-based. */
#include <stdlib.h>
#include <string.h>

#include "graph.h"

static int check_index_tensor(const ai_tensor *index, const char *fn) {
  if (index->dtype != AI_I64)
    return ai_seterror("%s: index must be an i64 tensor (got %s)", fn, ai_dtype_names[index->dtype]);
  return 0;
}

static double get_as_double(const ai_tensor *t, int64_t off) {
  const char *p = (const char *)t->storage->data + off * (int64_t)ai_dtype_sizes[t->dtype];
  switch (t->dtype) {
  case AI_U8: return *(const uint8_t *)p;
  case AI_I64: return (double)*(const int64_t *)p;
  case AI_F32: return *(const float *)p;
  default: return *(const double *)p;
  }
}

/* ---------------------------------------------------------------- cat, stack */

ai_tensor *ai_cat(ai_tensor **ts, int n, int dim) {
  if (n <= 0) return AI_ERRNULL("cat: needs at least one tensor");
  const ai_tensor *ref = ts[0];
  for (int i = 0; i < n; i++) if (ts[i]->ndim > 0) { ref = ts[i]; break; }
  if (ref->ndim == 0) return AI_ERRNULL("cat: zero-dimensional tensors cannot be concatenated");
  if ((dim = ai_wrapdim(dim, ref->ndim, "cat")) < 0) return NULL;
  ai_dtype dt = ts[0]->dtype;
  int64_t shape[AI_MAXDIM], total = 0;
  for (int d = 0; d < ref->ndim; d++) shape[d] = ref->shape[d];
  for (int i = 0; i < n; i++) {
    const ai_tensor *t = ts[i];
    dt = ai_promote(dt, t->dtype);
    if (t->ndim != ref->ndim)
      return AI_ERRNULL("cat: tensor %d has %d dimensions, expected %d", i + 1, t->ndim, ref->ndim);
    for (int d = 0; d < t->ndim; d++)
      if (d != dim && t->shape[d] != ref->shape[d])
        return AI_ERRNULL("cat: tensor %d has size %lld at dimension %d, expected %lld", i + 1,
                          (long long)t->shape[d], d + 1, (long long)ref->shape[d]);
    total += t->shape[dim];
  }
  shape[dim] = total;
  ai_tensor *out = ai_empty(dt, ref->ndim, shape);
  int64_t *sizes = malloc(sizeof(int64_t) * (size_t)n);
  if (!out || !sizes) { ai_unref(out); free(sizes); return AI_ERRNULL("not enough memory"); }
  bool was = ai_set_grad_enabled(false);
  int64_t at = 0;
  int rc = 0;
  for (int i = 0; i < n && !rc; i++) {
    sizes[i] = ts[i]->shape[dim];
    ai_tensor *part = ai_narrow(out, dim, at, sizes[i]);
    rc = part ? ai_copy_(part, ts[i]) : -1;
    ai_unref(part);
    at += sizes[i];
  }
  ai_set_grad_enabled(was);
  if (rc) { ai_unref(out); free(sizes); return NULL; }
  ai_node *node = NULL;
  if (ai_is_float(dt) && ai_record(&node, AI_OP_CAT, out, n, ts)) { ai_unref(out); free(sizes); return NULL; }
  if (node) { AI_ARGS(node, CAT)->dim = dim; node->extra = sizes; }
  else free(sizes);
  return out;
}

ai_tensor *ai_stack(ai_tensor **ts, int n, int dim) {
  if (n <= 0) return AI_ERRNULL("stack: needs at least one tensor");
  for (int i = 1; i < n; i++)
    if (!ai_same_shape(ts[i], ts[0])) return AI_ERRNULL("stack: tensor %d's shape differs from tensor 1's", i + 1);
  if ((dim = ai_wrapdim(dim, ts[0]->ndim + 1, "stack")) < 0) return NULL;
  ai_tensor **u = calloc((size_t)n, sizeof *u);
  if (!u) return AI_ERRNULL("not enough memory");
  ai_tensor *out = NULL;
  int i = 0;
  for (; i < n; i++) if (!(u[i] = ai_unsqueeze(ts[i], dim))) break;
  if (i == n) out = ai_cat(u, n, dim);
  for (int j = 0; j < i; j++) ai_unref(u[j]);
  free(u);
  return out;
}

/* ---------------------------------------------------------------- index_select, index_add */

static int check_positions(const ai_tensor *index, int64_t size, int dim, const char *fn) {
  const int64_t *ix = ai_data(index);
  int64_t n = ai_numel(index);
  for (int64_t j = 0; j < n; j++)
    if (ix[j] < 0 || ix[j] >= size)
      return ai_seterror("%s: index %lld out of range for dimension %d of size %lld", fn,
                         (long long)((uint64_t)ix[j] + 1), dim + 1, (long long)size); /* 1-based, wraps back */
  return 0;
}

ai_tensor *ai_index_select(ai_tensor *t, int dim, ai_tensor *index) {
  if (check_index_tensor(index, "index_select")) return NULL;
  if (index->ndim > 1) return AI_ERRNULL("index_select: index must be 1-D (got %d dims)", index->ndim);
  if (t->ndim == 0) return AI_ERRNULL("index_select: cannot index a 0-dim tensor");
  if ((dim = ai_wrapdim(dim, t->ndim, "index_select")) < 0) return NULL;
  ai_tensor *ix = ai_contiguous(index);
  if (!ix) return NULL;
  if (check_positions(ix, t->shape[dim], dim, "index_select")) { ai_unref(ix); return NULL; }
  ai_tensor *x = ai_contiguous(t);
  int64_t shape[AI_MAXDIM], J = ai_numel(ix);
  for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
  shape[dim] = J;
  ai_tensor *out = x ? ai_empty(t->dtype, t->ndim, shape) : NULL;
  if (!out) { ai_unref(ix); ai_unref(x); return NULL; }
  int64_t O = 1, D = t->shape[dim], I = 1;
  size_t es = ai_dtype_sizes[t->dtype];
  for (int d = 0; d < dim; d++) O *= t->shape[d];
  for (int d = dim + 1; d < t->ndim; d++) I *= t->shape[d];
  const char *src = ai_data(x);
  char *dst = ai_data(out);
  const int64_t *p = ai_data(ix);
  for (int64_t o = 0; o < O; o++)
    for (int64_t j = 0; j < J; j++)
      memcpy(dst + (size_t)((o * J + j) * I) * es, src + (size_t)((o * D + p[j]) * I) * es, (size_t)I * es);
  ai_unref(x);
  if (ai_is_float(t->dtype)) {
    ai_node *n = NULL;
    ai_tensor *ins[2] = {t, ix};
    int err = ai_record(&n, AI_OP_INDEX_SELECT, out, 2, ins);
    if (!err && n) { AI_ARGS(n, INDEX_SELECT)->dim = dim; err = ai_save(n, ix); }
    if (err) { ai_unref(out); out = NULL; }
  }
  ai_unref(ix);
  return out;
}

ai_tensor *ai_index_add(ai_tensor *t, int dim, ai_tensor *index, ai_tensor *src) {
  if (check_index_tensor(index, "index_add")) return NULL;
  if (t->ndim == 0) return AI_ERRNULL("index_add: cannot index a 0-dim tensor");
  if ((dim = ai_wrapdim(dim, t->ndim, "index_add")) < 0) return NULL;
  ai_tensor *ix = ai_contiguous(index);
  if (!ix) return NULL;
  int64_t J = ai_numel(ix);
  bool ok = src->ndim == t->ndim;
  for (int d = 0; ok && d < t->ndim; d++) ok = src->shape[d] == (d == dim ? J : t->shape[d]);
  if (!ok) { ai_unref(ix); return AI_ERRNULL("index_add: source shape must match the tensor's except at dim (index length there)"); }
  if (check_positions(ix, t->shape[dim], dim, "index_add")) { ai_unref(ix); return NULL; }
  ai_dtype dt = t->dtype;
  ai_tensor *out = ai_empty(dt, t->ndim, t->shape);
  ai_tensor *s = out ? ai_to_dtype(src, dt) : NULL, *sc = s ? ai_contiguous(s) : NULL;
  ai_unref(s);
  if (!sc) { ai_unref(out); ai_unref(ix); return NULL; }
  bool was = ai_set_grad_enabled(false);
  ai_copy_(out, t);
  ai_set_grad_enabled(was);
  int64_t O = 1, D = t->shape[dim], I = 1;
  for (int d = 0; d < dim; d++) O *= t->shape[d];
  for (int d = dim + 1; d < t->ndim; d++) I *= t->shape[d];
  const int64_t *p = ai_data(ix);
#define IADD(T)                                                                  \
  {                                                                              \
    T *y = ai_data(out);                                                         \
    const T *x = ai_data(sc);                                                    \
    for (int64_t o = 0; o < O; o++)                                              \
      for (int64_t j = 0; j < J; j++) {                                          \
        T *yr = y + (o * D + p[j]) * I;                                          \
        const T *xr = x + (o * J + j) * I;                                       \
        for (int64_t i = 0; i < I; i++) yr[i] += xr[i];                          \
      }                                                                          \
  }
  switch (dt) {
  case AI_F32: IADD(float) break;
  case AI_F64: IADD(double) break;
  case AI_I64: IADD(int64_t) break;
  default: IADD(uint8_t) break;
  }
#undef IADD
  if (ai_is_float(dt)) {
    ai_node *n = NULL;
    ai_tensor *ins[3] = {t, ix, sc};
    int err = ai_record(&n, AI_OP_INDEX_ADD, out, 3, ins);
    if (!err && n) { AI_ARGS(n, INDEX_ADD)->dim = dim; err = ai_save(n, ix); }
    if (err) { ai_unref(out); out = NULL; }
  }
  ai_unref(sc);
  ai_unref(ix);
  return out;
}

/* ---------------------------------------------------------------- gather, scatter */

/* Walks every element of index (N-d), calling body with the offsets into t/src/out.
 * Index must have t's ndim and sizes no larger than t's at other dims. */
static int check_gather_shapes(const ai_tensor *t, int dim, const ai_tensor *index, const ai_tensor *src,
                               const char *fn) {
  if (index->ndim != t->ndim)
    return ai_seterror("%s: index must have the same number of dimensions as the tensor (%d vs %d)", fn,
                       index->ndim, t->ndim);
  for (int d = 0; d < t->ndim; d++) {
    if (d != dim && index->shape[d] > t->shape[d])
      return ai_seterror("%s: index size %lld exceeds the tensor's %lld at dimension %d", fn,
                         (long long)index->shape[d], (long long)t->shape[d], d + 1);
    if (src && index->shape[d] > src->shape[d])
      return ai_seterror("%s: index size %lld exceeds the source's %lld at dimension %d", fn,
                         (long long)index->shape[d], (long long)src->shape[d], d + 1);
  }
  const int64_t *ix = index->storage->data;
  int64_t n = ai_numel(index), idx[AI_MAXDIM] = {0};
  for (int64_t k = 0; k < n; k++) {
    int64_t off = index->offset;
    for (int d = 0; d < index->ndim; d++) off += idx[d] * index->stride[d];
    int64_t v = ix[off];
    if (v < 0 || v >= t->shape[dim])
      return ai_seterror("%s: index %lld out of range for dimension %d of size %lld", fn,
                         (long long)((uint64_t)v + 1), dim + 1, (long long)t->shape[dim]); /* 1-based, wraps back */
    for (int d = index->ndim - 1; d >= 0; d--) { if (++idx[d] < index->shape[d]) break; idx[d] = 0; }
  }
  return 0;
}

ai_tensor *ai_gather(ai_tensor *t, int dim, ai_tensor *index) {
  if (check_index_tensor(index, "gather")) return NULL;
  if (t->ndim == 0) return AI_ERRNULL("gather: cannot index a 0-dim tensor");
  if ((dim = ai_wrapdim(dim, t->ndim, "gather")) < 0) return NULL;
  if (check_gather_shapes(t, dim, index, NULL, "gather")) return NULL;
  ai_tensor *out = ai_empty(t->dtype, index->ndim, index->shape);
  if (!out) return NULL;
  const int64_t *ix = index->storage->data;
  int64_t n = ai_numel(index), idx[AI_MAXDIM] = {0};
  size_t es = ai_dtype_sizes[t->dtype];
  char *dst = ai_data(out);
  for (int64_t k = 0; k < n; k++) {
    int64_t ioff = index->offset, toff = t->offset;
    for (int d = 0; d < index->ndim; d++) ioff += idx[d] * index->stride[d];
    for (int d = 0; d < t->ndim; d++) toff += (d == dim ? ix[ioff] : idx[d]) * t->stride[d];
    memcpy(dst + (size_t)k * es, (char *)t->storage->data + (size_t)toff * es, es);
    for (int d = index->ndim - 1; d >= 0; d--) { if (++idx[d] < index->shape[d]) break; idx[d] = 0; }
  }
  if (ai_is_float(t->dtype)) {
    ai_node *nd = NULL;
    ai_tensor *ins[2] = {t, index};
    int err = ai_record(&nd, AI_OP_GATHER, out, 2, ins);
    if (!err && nd) { AI_ARGS(nd, GATHER)->dim = dim; err = ai_save(nd, index); }
    if (err) { ai_unref(out); return NULL; }
  }
  return out;
}

ai_tensor *ai_scatter(ai_tensor *t, int dim, ai_tensor *index, ai_tensor *src, bool add) {
  const char *fn = add ? "scatter_add" : "scatter";
  if (check_index_tensor(index, fn)) return NULL;
  if (t->ndim == 0) return AI_ERRNULL("%s: cannot index a 0-dim tensor", fn);
  if ((dim = ai_wrapdim(dim, t->ndim, fn)) < 0) return NULL;
  if (src->ndim != t->ndim) return AI_ERRNULL("%s: source must have the tensor's number of dimensions", fn);
  if (check_gather_shapes(t, dim, index, src, fn)) return NULL;
  bool was = ai_set_grad_enabled(false); /* the scatter as a whole is recorded below */
  ai_tensor *out = ai_clone(t);
  ai_set_grad_enabled(was);
  if (!out) return NULL;
  const int64_t *ix = index->storage->data;
  int64_t n = ai_numel(index), idx[AI_MAXDIM] = {0};
  for (int64_t k = 0; k < n; k++) {
    int64_t ioff = index->offset, soff = src->offset, ooff = 0;
    for (int d = 0; d < index->ndim; d++) {
      ioff += idx[d] * index->stride[d];
      soff += idx[d] * src->stride[d];
    }
    for (int d = 0; d < t->ndim; d++) ooff += (d == dim ? ix[ioff] : idx[d]) * out->stride[d];
    double v = get_as_double(src, soff);
    char *p = (char *)out->storage->data + (size_t)ooff * ai_dtype_sizes[out->dtype];
    switch (out->dtype) {
    case AI_F32: *(float *)p = add ? *(float *)p + (float)v : (float)v; break;
    case AI_F64: *(double *)p = add ? *(double *)p + v : v; break;
    case AI_I64: { /* an i64 source is copied exactly, not through a double */
      int64_t iv = src->dtype == AI_I64 ? ((const int64_t *)src->storage->data)[soff] : (int64_t)v;
      *(int64_t *)p = add ? (int64_t)((uint64_t)*(int64_t *)p + (uint64_t)iv) : iv;
      break;
    }
    default: *(uint8_t *)p = (uint8_t)(add ? *(uint8_t *)p + (int64_t)v : (int64_t)v); break;
    }
    for (int d = index->ndim - 1; d >= 0; d--) { if (++idx[d] < index->shape[d]) break; idx[d] = 0; }
  }
  if (ai_is_float(t->dtype)) {
    ai_node *nd = NULL;
    ai_tensor *ins[3] = {t, index, src};
    int err = ai_record(&nd, AI_OP_SCATTER, out, 3, ins);
    if (!err && nd) { *AI_ARGS(nd, SCATTER) = (ai_dim_args){.dim = dim, .add = add}; err = ai_save(nd, index); }
    if (err) { ai_unref(out); return NULL; }
  }
  return out;
}

/* The positions of the mask's nonzeros, then an index_select of the flattened x: the gradient
 * comes from index_select's rule. */
ai_tensor *ai_masked_select(ai_tensor *x, ai_tensor *mask) {
  if (mask->dtype != AI_U8) return AI_ERRNULL("masked_select: mask must be a u8 tensor");
  int nd;
  int64_t shape[AI_MAXDIM];
  if (ai_broadcast_shape(x, mask, &nd, shape)) return NULL;
  ai_tensor *xe = ai_expand(x, nd, shape), *me = xe ? ai_expand(mask, nd, shape) : NULL;
  ai_tensor *xf = me ? ai_reshape(xe, 1, (int64_t[]){-1}) : NULL;
  ai_tensor *mf = xf ? ai_contiguous(me) : NULL;
  ai_unref(xe);
  ai_unref(me);
  if (!mf) { ai_unref(xf); return NULL; }
  int64_t n = ai_numel(mf), cnt = 0;
  const uint8_t *mp = ai_data(mf);
  for (int64_t i = 0; i < n; i++) cnt += mp[i] != 0;
  ai_tensor *ix = ai_empty(AI_I64, 1, &cnt);
  ai_tensor *r = NULL;
  if (ix) {
    int64_t *p = ai_data(ix), k = 0;
    for (int64_t i = 0; i < n; i++) if (mp[i]) p[k++] = i;
    r = ai_index_select(xf, 0, ix);
  }
  ai_unref(ix);
  ai_unref(xf);
  ai_unref(mf);
  return r;
}
