/* tensor.c: tensor and storage lifetime, constructors, element access, views, copies and
 * dtype conversion. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "iter.h"

const char *const ai_dtype_names[AI_NDTYPES] = {"u8", "i64", "f32", "f64"};
const size_t ai_dtype_sizes[AI_NDTYPES] = {1, 8, 4, 8};

/* ---------------------------------------------------------------- lifetime */

/* Tensor and storage structs come from one free list (small ops make and drop several). */
typedef union pooled { ai_tensor t; ai_storage s; } pooled;
static ai_freelist structs = {.size = sizeof(pooled), .max = 16384};

static void *pool_get(void) { return ai_freelist_get(&structs); }
static void pool_put(void *v) { ai_freelist_put(&structs, v); }

int64_t ai_numel(const ai_tensor *t) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
  return n;
}

bool ai_is_contiguous(const ai_tensor *t) {
  int64_t s = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != s) return false;
    s *= t->shape[d];
  }
  return true;
}

static void storage_unref(ai_storage *s) {
  if (!s || --s->refs > 0) return;
  if (s->release) s->release(s->release_ctx, s->data);
  else ai_free(s->data, s->nbytes);
  pool_put(s);
}

void ai_unref(ai_tensor *t) {
  if (!t || --t->refs > 0) return;
  storage_unref(t->storage);
  if (t->grad) ai_unref(t->grad);
  if (t->grad_fn) {
    if (t->grad_fn->hooks) ai_forget_retained(t);
    ai_node_unref(t->grad_fn);
  }
  free(t->hook);
  if (t->hooks) {
    ai_free_tensor_hooks(t->hooks->list);
    ai_unref(t->hooks->acc);
    free(t->hooks);
  }
  pool_put(t);
}

static ai_tensor *tensor_struct(ai_dtype dt, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > AI_MAXDIM)
    return AI_ERRNULL("tensors have at most %d dimensions (got %d)", AI_MAXDIM, ndim);
  ai_tensor *t = pool_get();
  if (!t) return AI_ERRNULL("not enough memory");
  t->refs = 1;
  t->dtype = dt;
  t->ndim = ndim;
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    t->shape[d] = shape[d];
    t->stride[d] = s;
    s *= shape[d] > 0 ? shape[d] : 1;
  }
  return t;
}

/* Checks sizes and returns the element count, or -1 with an error. */
static int64_t checked_numel(int ndim, const int64_t *shape, size_t elsize) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0) return ai_seterror("invalid size %lld for dimension %d", (long long)shape[d], d + 1);
    if (shape[d] && n > INT64_MAX / shape[d]) return ai_seterror("not enough memory (size overflow)");
    n *= shape[d];
  }
  if (n > (int64_t)(((size_t)1 << 46) / elsize))
    return ai_seterror("not enough memory (a tensor of %lld elements is too large)", (long long)n);
  return n;
}

ai_tensor *ai_new_like_shape(ai_dtype dt, int ndim, const int64_t *shape) {
  return ai_empty(dt, ndim, shape);
}

ai_tensor *ai_empty(ai_dtype dt, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > AI_MAXDIM)
    return AI_ERRNULL("tensors have at most %d dimensions (got %d)", AI_MAXDIM, ndim);
  int64_t n = checked_numel(ndim, shape, ai_dtype_sizes[dt]);
  if (n < 0) return NULL;
  ai_tensor *t = tensor_struct(dt, ndim, shape);
  if (!t) return NULL;
  ai_storage *s = pool_get();
  if (!s) { pool_put(t); return AI_ERRNULL("not enough memory"); }
  s->refs = 1;
  s->nbytes = (size_t)n * ai_dtype_sizes[dt];
  s->data = ai_alloc(s->nbytes);
  if (!s->data) { pool_put(s); pool_put(t); return NULL; }
  t->storage = s;
  return t;
}

ai_tensor *ai_zeros(ai_dtype dt, int ndim, const int64_t *shape) {
  ai_tensor *t = ai_empty(dt, ndim, shape);
  if (t) memset(t->storage->data, 0, t->storage->nbytes);
  return t;
}

ai_tensor *ai_full(ai_dtype dt, int ndim, const int64_t *shape, double v) {
  ai_tensor *t = ai_empty(dt, ndim, shape);
  if (t) ai_fill_(t, v);
  return t;
}

ai_tensor *ai_scalar(ai_dtype dt, double v) { return ai_full(dt, 0, NULL, v); }

ai_tensor *ai_from_external(ai_dtype dt, int ndim, const int64_t *shape, void *data,
                            void (*release)(void *, void *), void *ctx) {
  int64_t n = checked_numel(ndim, shape, ai_dtype_sizes[dt]);
  if (n < 0) return NULL;
  ai_tensor *t = tensor_struct(dt, ndim, shape);
  if (!t) return NULL;
  ai_storage *s = pool_get();
  if (!s) { pool_put(t); return AI_ERRNULL("not enough memory"); }
  s->refs = 1;
  s->nbytes = (size_t)n * ai_dtype_sizes[dt];
  s->data = data;
  s->release = release;
  s->release_ctx = ctx;
  t->storage = s;
  return t;
}

/* ---------------------------------------------------------------- element access */

static inline double load(const void *p, ai_dtype dt) {
  switch (dt) {
  case AI_U8: return *(const uint8_t *)p;
  case AI_I64: return (double)*(const int64_t *)p;
  case AI_F32: return *(const float *)p;
  default: return *(const double *)p;
  }
}

static inline void store(void *p, ai_dtype dt, double v) {
  switch (dt) {
  case AI_U8: *(uint8_t *)p = (uint8_t)(int64_t)v; break;
  case AI_I64: *(int64_t *)p = (int64_t)v; break;
  case AI_F32: *(float *)p = (float)v; break;
  default: *(double *)p = v;
  }
}

static void *elem_ptr(const ai_tensor *t, const int64_t *idx) {
  int64_t off = t->offset;
  for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
  return (char *)t->storage->data + off * (int64_t)ai_dtype_sizes[t->dtype];
}

double ai_get(const ai_tensor *t, const int64_t *idx) { return load(elem_ptr(t, idx), t->dtype); }

double ai_item(const ai_tensor *t) {
  int64_t idx[AI_MAXDIM] = {0};
  return ai_get(t, idx);
}

int ai_set(ai_tensor *t, const int64_t *idx, double v) {
  if (ai_check_inplace(t, "set")) return -1;
  store(elem_ptr(t, idx), t->dtype, v);
  ai_bump_version(t);
  return 0;
}

/* Integer access without a trip through double, which holds only 53 bits: i64 elements are exact
 * to and from Lua integers. Floats convert as C does. */
int64_t ai_get_int(const ai_tensor *t, const int64_t *idx) {
  const void *p = elem_ptr(t, idx);
  switch (t->dtype) {
  case AI_U8: return *(const uint8_t *)p;
  case AI_I64: return *(const int64_t *)p;
  default: return (int64_t)load(p, t->dtype);
  }
}

int ai_set_int(ai_tensor *t, const int64_t *idx, int64_t v) {
  if (ai_check_inplace(t, "set")) return -1;
  void *p = elem_ptr(t, idx);
  switch (t->dtype) {
  case AI_U8: *(uint8_t *)p = (uint8_t)v; break;
  case AI_I64: *(int64_t *)p = v; break;
  default: store(p, t->dtype, (double)v);
  }
  ai_bump_version(t);
  return 0;
}

/* ---------------------------------------------------------------- misc helpers */

int ai_wrapdim(int dim, int ndim, const char *fn) {
  int n = ndim > 0 ? ndim : 1;
  if (dim < -n || dim >= n)
    return ai_seterror("%s: dimension %d out of range (expected 1 to %d, or -%d to -1)", fn,
                       dim >= 0 ? dim + 1 : dim, n, n);
  return dim < 0 ? dim + n : dim;
}

bool ai_same_shape(const ai_tensor *a, const ai_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return false;
  return true;
}

const char *ai_shape_str(const ai_tensor *t, char *buf, size_t n) {
  if (t->ndim == 0) { snprintf(buf, n, "scalar"); return buf; }
  size_t k = 0;
  buf[0] = 0;
  for (int d = 0; d < t->ndim && k < n; d++)
    k += (size_t)snprintf(buf + k, n - k, d ? "x%lld" : "%lld", (long long)t->shape[d]);
  return buf;
}

void ai_bump_version(ai_tensor *t) { t->storage->version++; }

/* Whether two elements of t share one place in memory: the view ops make that only with a
 * stride of 0 over a dim of size > 1 (expand, or a broadcast). */
static bool has_internal_overlap(const ai_tensor *t) {
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] > 1 && t->stride[d] == 0) return true;
  return false;
}

int ai_check_inplace(ai_tensor *t, const char *fn) {
  if (ai_grad_enabled() && t->requires_grad)
    return ai_seterror("%s: in-place change of a tensor that requires grad; use ai.no_grad or "
                       ":detach()", fn);
  if (has_internal_overlap(t))
    return ai_seterror("%s: several elements of the tensor share one place in memory (an expanded "
                       "view), so an in-place write would hit them all; write into :clone() or "
                       ":contiguous() of it", fn);
  return 0;
}

/* ---------------------------------------------------------------- copy with conversion */

#define CASE_COPY(TD, TS)                                                       \
  {                                                                             \
    if (st[0] == (int64_t)sizeof(TD) && st[1] == (int64_t)sizeof(TS)) {        \
      TD *d = (TD *)p[0];                                                       \
      const TS *s = (const TS *)p[1];                                           \
      for (int64_t i = 0; i < n; i++) d[i] = (TD)s[i];                          \
    } else {                                                                    \
      for (int64_t i = 0; i < n; i++)                                           \
        *(TD *)(p[0] + i * st[0]) = (TD) * (const TS *)(p[1] + i * st[1]);      \
    }                                                                           \
    return;                                                                     \
  }

#define SRC_SWITCH(TD)                                                          \
  switch (c->src) {                                                             \
  case AI_U8: CASE_COPY(TD, uint8_t)                                            \
  case AI_I64: CASE_COPY(TD, int64_t)                                           \
  case AI_F32: CASE_COPY(TD, float)                                             \
  default: CASE_COPY(TD, double)                                                \
  }

typedef struct { ai_dtype dst, src; } copy_ctx;

static void copy_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  copy_ctx *c = ctx;
  switch (c->dst) {
  case AI_U8: SRC_SWITCH(uint8_t)
  case AI_I64: SRC_SWITCH(int64_t)
  case AI_F32: SRC_SWITCH(float)
  default: SRC_SWITCH(double)
  }
}

/* dst = src (src broadcast to dst's shape); no checks, no version bump, no recording. */
static void copy_raw(ai_tensor *dst, const ai_tensor *src) {
  ai_iter it;
  ai_iter_init(&it, dst->ndim, dst->shape);
  ai_iter_add(&it, dst);
  ai_iter_add(&it, src);
  copy_ctx c = {dst->dtype, src->dtype};
  ai_iter_run(&it, copy_row, &c);
}

static bool broadcastable_to(const ai_tensor *src, const ai_tensor *dst) {
  if (src->ndim > dst->ndim) return false;
  for (int d = 0; d < src->ndim; d++) {
    int64_t s = src->shape[src->ndim - 1 - d], t = dst->shape[dst->ndim - 1 - d];
    if (s != t && s != 1) return false;
  }
  return true;
}

int ai_copy_(ai_tensor *dst, ai_tensor *src) {
  if (ai_check_inplace(dst, "copy_")) return -1;
  if (!broadcastable_to(src, dst)) {
    char a[128], b[128];
    return ai_seterror("copy_: source of shape %s cannot be broadcast to %s",
                       ai_shape_str(src, a, sizeof a), ai_shape_str(dst, b, sizeof b));
  }
  copy_raw(dst, src);
  ai_bump_version(dst);
  return 0;
}

typedef struct { ai_dtype dt; double v; bool is_int; int64_t iv; } fill_ctx;

static void fill_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  fill_ctx *c = ctx;
  switch (c->dt) {
#define FILL(T)                                                                    \
  {                                                                                \
    T v = c->is_int ? (T)c->iv : (T)c->v;                                          \
    if (st[0] == (int64_t)sizeof(T)) { T *d = (T *)p[0]; for (int64_t i = 0; i < n; i++) d[i] = v; } \
    else for (int64_t i = 0; i < n; i++) *(T *)(p[0] + i * st[0]) = v;           \
    return;                                                                        \
  }
  case AI_U8: FILL(uint8_t)
  case AI_I64: FILL(int64_t)
  case AI_F32: FILL(float)
  default: FILL(double)
#undef FILL
  }
}

static void fill_with(ai_tensor *t, fill_ctx c) {
  ai_iter it;
  ai_iter_init(&it, t->ndim, t->shape);
  ai_iter_add(&it, t);
  ai_iter_run(&it, fill_row, &c);
}

static int fill_named(ai_tensor *t, fill_ctx c, const char *fn) {
  if (ai_check_inplace(t, fn)) return -1;
  fill_with(t, c);
  ai_bump_version(t);
  return 0;
}
int ai_fill_(ai_tensor *t, double v) { return fill_named(t, (fill_ctx){t->dtype, v, false, 0}, "fill_"); }
int ai_fill_int_(ai_tensor *t, int64_t v) { return fill_named(t, (fill_ctx){t->dtype, (double)v, true, v}, "fill_"); }
int ai_zero_(ai_tensor *t) { return fill_named(t, (fill_ctx){t->dtype, 0, true, 0}, "zero_"); }

/* ---------------------------------------------------------------- ranges */

ai_tensor *ai_arange(ai_dtype dt, double start, double stop, double step) {
  if (step == 0 || !isfinite(step) || !isfinite(start) || !isfinite(stop))
    return AI_ERRNULL("arange: step must be non-zero and bounds finite");
  double cnt = ceil((stop - start) / step);
  if (cnt < 0) cnt = 0;
  if (cnt > 1e12) return AI_ERRNULL("arange: too many elements (%g)", cnt);
  int64_t n = (int64_t)cnt;
  ai_tensor *t = ai_empty(dt, 1, &n);
  if (!t) return NULL;
  for (int64_t i = 0; i < n; i++) store((char *)t->storage->data + i * (int64_t)ai_dtype_sizes[dt], dt, start + (double)i * step);
  return t;
}

ai_tensor *ai_linspace(ai_dtype dt, double start, double stop, int64_t n) {
  if (n < 0) return AI_ERRNULL("linspace: number of steps must be non-negative");
  ai_tensor *t = ai_empty(dt, 1, &n);
  if (!t) return NULL;
  double step = n > 1 ? (stop - start) / (double)(n - 1) : 0;
  if (n == 1) stop = start; /* one point: the start, as PyTorch and NumPy */
  for (int64_t i = 0; i < n; i++) {
    /* fill symmetric from both ends, as PyTorch, so the last value is exactly stop */
    double v = i < n / 2 ? start + step * (double)i : stop - step * (double)(n - 1 - i);
    store((char *)t->storage->data + i * (int64_t)ai_dtype_sizes[dt], dt, v);
  }
  return t;
}

ai_tensor *ai_eye(ai_dtype dt, int64_t n, int64_t m) {
  int64_t shape[2] = {n, m};
  ai_tensor *t = ai_zeros(dt, 2, shape);
  if (!t) return NULL;
  for (int64_t i = 0; i < n && i < m; i++)
    store((char *)t->storage->data + (i * m + i) * (int64_t)ai_dtype_sizes[dt], dt, 1);
  return t;
}

/* ---------------------------------------------------------------- views */

/* A view of t's storage with the given geometry (no recording). */
static ai_tensor *make_view(ai_tensor *t, int ndim, const int64_t *shape, const int64_t *stride,
                            int64_t offset) {
  /* the element count of every tensor must fit in int64 (ai_numel and the loops rely on it) */
  int64_t count = 1;
  bool zero = false, overflow = false;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 0) zero = true;
    else if (__builtin_mul_overflow(count, shape[d], &count)) overflow = true;
  }
  if (overflow && !zero) return AI_ERRNULL("not enough memory (a view of more than 2^63 elements)");
  ai_tensor *v = pool_get();
  if (!v) return AI_ERRNULL("not enough memory");
  v->refs = 1;
  v->dtype = t->dtype;
  v->ndim = ndim;
  for (int d = 0; d < ndim; d++) { v->shape[d] = shape[d]; v->stride[d] = stride[d]; }
  v->offset = offset;
  v->storage = t->storage;
  t->storage->refs++;
  return v;
}

/* Records a single-input view-like op; on failure releases out. */
static ai_tensor *record1(ai_opid op, ai_tensor *out, ai_tensor *in, ai_node **np) {
  ai_node *n = NULL;
  if (ai_record(&n, op, out, 1, &in)) { ai_unref(out); return NULL; }
  if (np) *np = n;
  return out;
}

ai_tensor *ai_detach(ai_tensor *t) {
  return make_view(t, t->ndim, t->shape, t->stride, t->offset);
}

int ai_set_(ai_tensor *t, ai_tensor *src) {
  if (t == src) return 0;
  if (t->grad_fn) return ai_seterror("set_: the tensor is the result of an op (not a leaf); use the result of the other tensor instead");
  if (ai_grad_enabled() && t->requires_grad)
    return ai_seterror("set_: the tensor requires grad; set it under ai.no_grad (as module conversion does)");
  if (t->requires_grad && !ai_is_float(src->dtype))
    return ai_seterror("set_: a tensor that requires grad cannot take %s data", ai_dtype_names[src->dtype]);
  src->storage->refs++;
  ai_storage *old = t->storage;
  t->storage = src->storage;
  t->dtype = src->dtype;
  t->ndim = src->ndim;
  for (int d = 0; d < src->ndim; d++) { t->shape[d] = src->shape[d]; t->stride[d] = src->stride[d]; }
  t->offset = src->offset;
  /* a tensor saved for a backward before this no longer holds what was saved */
  t->storage->version++;
  storage_unref(old);
  return 0;
}

/* Strides for viewing t as `shape` without a copy, if possible (PyTorch's computeStride). */
static bool view_strides(const ai_tensor *t, int ndim, const int64_t *shape, int64_t *stride) {
  if (ai_numel(t) == 0 || ai_is_contiguous(t)) {
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) { stride[d] = s; s *= shape[d] > 0 ? shape[d] : 1; }
    return true;
  }
  int view_d = ndim - 1;
  int64_t chunk_base_stride = t->ndim ? t->stride[t->ndim - 1] : 1;
  int64_t tensor_numel = 1, view_numel = 1;
  for (int td = t->ndim - 1; td >= 0; td--) {
    tensor_numel *= t->shape[td];
    if (td == 0 || (t->shape[td - 1] != 1 && t->stride[td - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        stride[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return false;
      if (td > 0) { chunk_base_stride = t->stride[td - 1]; tensor_numel = 1; view_numel = 1; }
    }
  }
  return view_d == -1;
}

/* Resolves a -1 in shape and checks the element count. */
static int infer_shape(const ai_tensor *t, int ndim, const int64_t *in, int64_t *out, const char *fn) {
  if (ndim > AI_MAXDIM) return ai_seterror("%s: at most %d dimensions", fn, AI_MAXDIM);
  int infer = -1;
  int64_t prod = 1;
  bool zero = false, overflow = false; /* a product that wraps could match numel: no view then */
  for (int d = 0; d < ndim; d++) {
    out[d] = in[d];
    if (in[d] == -1) {
      if (infer >= 0) return ai_seterror("%s: only one dimension can be -1", fn);
      infer = d;
    } else if (in[d] < 0) {
      return ai_seterror("%s: invalid size %lld", fn, (long long)in[d]);
    } else if (in[d] == 0) {
      zero = true;
    } else if (__builtin_mul_overflow(prod, in[d], &prod)) {
      overflow = true;
    }
  }
  int64_t n = ai_numel(t);
  if (zero) prod = 0;
  else if (overflow) goto bad;
  if (infer >= 0) {
    if (prod == 0 || n % prod) goto bad;
    out[infer] = n / prod;
  } else if (prod != n) {
    goto bad;
  }
  return 0;
bad:;
  char a[128];
  return ai_seterror("%s: shape does not match the %lld elements of a %s tensor", fn, (long long)n,
                     ai_shape_str(t, a, sizeof a));
}

ai_tensor *ai_view(ai_tensor *t, int ndim, const int64_t *shape) {
  int64_t sh[AI_MAXDIM], st[AI_MAXDIM];
  if (infer_shape(t, ndim, shape, sh, "view")) return NULL;
  if (!view_strides(t, ndim, sh, st))
    return AI_ERRNULL("view: the tensor's layout does not allow this view; use reshape");
  ai_tensor *v = make_view(t, ndim, sh, st, t->offset);
  return v ? record1(AI_OP_VIEW, v, t, NULL) : NULL;
}

ai_tensor *ai_reshape(ai_tensor *t, int ndim, const int64_t *shape) {
  int64_t sh[AI_MAXDIM], st[AI_MAXDIM];
  if (infer_shape(t, ndim, shape, sh, "reshape")) return NULL;
  if (view_strides(t, ndim, sh, st)) return ai_view(t, ndim, sh);
  ai_tensor *c = ai_contiguous(t);
  if (!c) return NULL;
  ai_tensor *v = ai_view(c, ndim, sh);
  ai_unref(c);
  return v;
}

ai_tensor *ai_permute(ai_tensor *t, const int *perm) {
  int64_t sh[AI_MAXDIM], st[AI_MAXDIM];
  bool seen[AI_MAXDIM] = {false};
  for (int d = 0; d < t->ndim; d++) {
    int p = perm[d];
    if (p < 0 || p >= t->ndim || seen[p])
      return AI_ERRNULL("permute: not a permutation of the %d dimensions", t->ndim);
    seen[p] = true;
    sh[d] = t->shape[p];
    st[d] = t->stride[p];
  }
  ai_tensor *v = make_view(t, t->ndim, sh, st, t->offset);
  if (!v) return NULL;
  ai_node *n = NULL;
  if (!record1(AI_OP_PERMUTE, v, t, &n)) return NULL;
  if (n) for (int d = 0; d < t->ndim; d++) AI_ARGS(n, PERMUTE)->perm[d] = perm[d];
  return v;
}

ai_tensor *ai_transpose(ai_tensor *t, int d0, int d1) {
  if ((d0 = ai_wrapdim(d0, t->ndim, "transpose")) < 0) return NULL;
  if ((d1 = ai_wrapdim(d1, t->ndim, "transpose")) < 0) return NULL;
  int perm[AI_MAXDIM];
  for (int d = 0; d < t->ndim; d++) perm[d] = d;
  perm[d0] = d1;
  perm[d1] = d0;
  if (t->ndim == 0) return ai_view(t, 0, NULL);
  return ai_permute(t, perm);
}

/* Python-style slice: start/stop clamped to [0, size], step > 0. */
ai_tensor *ai_slice(ai_tensor *t, int dim, int64_t start, int64_t stop, int64_t step) {
  if ((dim = ai_wrapdim(dim, t->ndim, "slice")) < 0) return NULL;
  if (t->ndim == 0) return AI_ERRNULL("slice: cannot slice a 0-dim tensor");
  if (step <= 0) return AI_ERRNULL("slice: step must be positive (got %lld)", (long long)step);
  int64_t size = t->shape[dim];
  if (start < 0) start += size;
  if (stop < 0) stop += size;
  start = start < 0 ? 0 : start > size ? size : start;
  stop = stop < start ? start : stop > size ? size : stop;
  int64_t sh[AI_MAXDIM], st[AI_MAXDIM];
  for (int d = 0; d < t->ndim; d++) { sh[d] = t->shape[d]; st[d] = t->stride[d]; }
  sh[dim] = stop == start ? 0 : (stop - start - 1) / step + 1; /* no overflow for a huge step */
  st[dim] = sh[dim] > 1 ? t->stride[dim] * step : t->stride[dim];
  ai_tensor *v = make_view(t, t->ndim, sh, st, t->offset + start * t->stride[dim]);
  if (!v) return NULL;
  ai_node *n = NULL;
  if (!record1(AI_OP_SLICE, v, t, &n)) return NULL;
  if (n) *AI_ARGS(n, SLICE) = (ai_slice_args){dim, start, step};
  return v;
}

ai_tensor *ai_narrow(ai_tensor *t, int dim, int64_t start, int64_t len) {
  if ((dim = ai_wrapdim(dim, t->ndim, "narrow")) < 0) return NULL;
  if (t->ndim == 0) return AI_ERRNULL("narrow: cannot narrow a 0-dim tensor");
  if (start < 0 || len < 0 || start + len > t->shape[dim])
    return AI_ERRNULL("narrow: range %lld..%lld out of bounds for dimension %d of size %lld",
                      (long long)start + 1, (long long)(start + len), dim + 1, (long long)t->shape[dim]);
  return ai_slice(t, dim, start, start + len, 1);
}

ai_tensor *ai_select(ai_tensor *t, int dim, int64_t index) {
  if ((dim = ai_wrapdim(dim, t->ndim, "select")) < 0) return NULL;
  if (t->ndim == 0) return AI_ERRNULL("select: cannot index a 0-dim tensor");
  int64_t size = t->shape[dim];
  if (index < -size || index >= size)
    return AI_ERRNULL("select: index %lld out of range for dimension %d of size %lld",
                      (long long)(index >= 0 ? index + 1 : index), dim + 1, (long long)size);
  if (index < 0) index += size;
  int64_t sh[AI_MAXDIM], st[AI_MAXDIM];
  int k = 0;
  for (int d = 0; d < t->ndim; d++)
    if (d != dim) { sh[k] = t->shape[d]; st[k] = t->stride[d]; k++; }
  ai_tensor *v = make_view(t, t->ndim - 1, sh, st, t->offset + index * t->stride[dim]);
  if (!v) return NULL;
  ai_node *n = NULL;
  if (!record1(AI_OP_SELECT, v, t, &n)) return NULL;
  if (n) *AI_ARGS(n, SELECT) = (ai_slice_args){dim, index, 1};
  return v;
}

ai_tensor *ai_expand(ai_tensor *t, int ndim, const int64_t *shape) {
  if (ndim < t->ndim || ndim > AI_MAXDIM)
    return AI_ERRNULL("expand: cannot expand %d dimensions to %d", t->ndim, ndim);
  int64_t sh[AI_MAXDIM], st[AI_MAXDIM];
  int off = ndim - t->ndim;
  for (int d = 0; d < ndim; d++) {
    int td = d - off;
    int64_t want = shape[d];
    if (td < 0) {
      if (want < 0) return AI_ERRNULL("expand: -1 is not allowed for a new leading dimension");
      sh[d] = want; st[d] = 0;
    } else if (want == -1 || want == t->shape[td]) {
      sh[d] = t->shape[td]; st[d] = t->stride[td];
    } else if (t->shape[td] == 1 && want >= 0) {
      sh[d] = want; st[d] = 0;
    } else {
      return AI_ERRNULL("expand: dimension %d of size %lld cannot be expanded to %lld", td + 1,
                        (long long)t->shape[td], (long long)want);
    }
  }
  ai_tensor *v = make_view(t, ndim, sh, st, t->offset);
  return v ? record1(AI_OP_EXPAND, v, t, NULL) : NULL;
}

ai_tensor *ai_squeeze(ai_tensor *t, int dim) {
  if ((dim = ai_wrapdim(dim, t->ndim, "squeeze")) < 0) return NULL;
  if (t->ndim == 0 || t->shape[dim] != 1) return ai_view(t, t->ndim, t->shape);
  int64_t sh[AI_MAXDIM];
  int k = 0;
  for (int d = 0; d < t->ndim; d++) if (d != dim) sh[k++] = t->shape[d];
  return ai_view(t, k, sh);
}

ai_tensor *ai_squeeze_all(ai_tensor *t) {
  int64_t sh[AI_MAXDIM];
  int k = 0;
  for (int d = 0; d < t->ndim; d++) if (t->shape[d] != 1) sh[k++] = t->shape[d];
  return ai_view(t, k, sh);
}

ai_tensor *ai_unsqueeze(ai_tensor *t, int dim) {
  if (t->ndim >= AI_MAXDIM) return AI_ERRNULL("unsqueeze: at most %d dimensions", AI_MAXDIM);
  if ((dim = ai_wrapdim(dim, t->ndim + 1, "unsqueeze")) < 0) return NULL;
  int64_t sh[AI_MAXDIM];
  int k = 0;
  for (int d = 0; d <= t->ndim; d++) sh[d] = d == dim ? 1 : t->shape[k++];
  return ai_view(t, t->ndim + 1, sh);
}

ai_tensor *ai_flatten(ai_tensor *t, int start, int end) {
  if (t->ndim == 0) return ai_reshape(t, 1, (int64_t[]){1});
  if ((start = ai_wrapdim(start, t->ndim, "flatten")) < 0) return NULL;
  if ((end = ai_wrapdim(end, t->ndim, "flatten")) < 0) return NULL;
  if (start > end) return AI_ERRNULL("flatten: start dimension comes after end dimension");
  int64_t sh[AI_MAXDIM];
  int k = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (d > start && d <= end) sh[k - 1] *= t->shape[d];
    else sh[k++] = t->shape[d];
  }
  return ai_reshape(t, k, sh);
}

ai_tensor *ai_clone(ai_tensor *t) {
  ai_tensor *c = ai_empty(t->dtype, t->ndim, t->shape);
  if (!c) return NULL;
  copy_raw(c, t);
  return record1(AI_OP_CLONE, c, t, NULL);
}

ai_tensor *ai_contiguous(ai_tensor *t) {
  return ai_is_contiguous(t) ? ai_ref(t) : ai_clone(t);
}

ai_tensor *ai_to_dtype(ai_tensor *t, ai_dtype dt) {
  if (t->dtype == dt) return ai_ref(t);
  ai_tensor *c = ai_empty(dt, t->ndim, t->shape);
  if (!c) return NULL;
  copy_raw(c, t);
  if (!ai_is_float(dt) || !ai_is_float(t->dtype)) return c; /* gradients flow float->float only */
  return record1(AI_OP_TO_DTYPE, c, t, NULL);
}

ai_tensor *ai_to_unit_f32(ai_tensor *t) {
  bool prev = ai_set_grad_enabled(false);
  ai_tensor *f = ai_to_dtype(t, AI_F32);
  ai_tensor *c = f ? ai_contiguous(f) : NULL;
  ai_unref(f);
  ai_set_grad_enabled(prev);
  if (c && t->dtype == AI_U8) { /* the conversion made a fresh tensor: ours to scale */
    float *p = ai_data(c);
    int64_t n = ai_numel(c);
    for (int64_t i = 0; i < n; i++) p[i] = p[i] / 255.0f;
  }
  return c;
}

ai_tensor *ai_slice_backward(ai_tensor *g, int ndim, const int64_t *shape, int dim, int64_t start,
                             int64_t step) {
  ai_tensor *z = ai_zeros(g->dtype, ndim, shape);
  if (!z) return NULL;
  int64_t st[AI_MAXDIM];
  for (int d = 0; d < ndim; d++) st[d] = z->stride[d];
  st[dim] *= step;
  /* the slice of z that g fills: same shape as g */
  ai_tensor *part = make_view(z, ndim, g->shape, st, start * z->stride[dim]);
  if (!part) { ai_unref(z); return NULL; }
  copy_raw(part, g);
  ai_unref(part);
  ai_node *n = NULL;
  if (!record1(AI_OP_SLICE_BACKWARD, z, g, &n)) return NULL;
  if (n) *AI_ARGS(n, SLICE_BACKWARD) = (ai_slice_args){dim, start, step};
  return z;
}
