/* compare.c: tests of values (isclose, allclose, equal, nonzero), composed of the elementwise
 * ops; none is differentiable. */
#include <math.h>
#include <string.h>

#include "compose.h"

static ai_tensor *or_(scope *s, ai_tensor *a, ai_tensor *b) { return bin(s, AI_OR, a, b); }
static ai_tensor *and_(scope *s, ai_tensor *a, ai_tensor *b) { return bin(s, AI_AND, a, b); }

/* |a - b| <= atol + rtol |b|, elementwise (u8), as PyTorch's isclose: equal values (infinities
 * included) are close, other non-finite differences are not; NaNs are close to each other only
 * with equal_nan. Integers take the tolerance in f32, as PyTorch's. */
ai_tensor *ai_isclose(ai_tensor *a, ai_tensor *b, double rtol, double atol, bool equal_nan) {
  if (a->dtype != b->dtype)
    return AI_ERRNULL("isclose: both tensors must have one dtype (got %s and %s)", ai_dtype_names[a->dtype],
                      ai_dtype_names[b->dtype]);
  if (ai_check_broadcast(a, b, "isclose", "a", "b")) return NULL;
  if (!(rtol >= 0)) return AI_ERRNULL("isclose: rtol must be >= 0 (got %g)", rtol);
  if (!(atol >= 0)) return AI_ERRNULL("isclose: atol must be >= 0 (got %g)", atol);
  bool was = ai_set_grad_enabled(false);
  scope S = {.n = 0}, *s = &S;
  ai_tensor *close = bin(s, AI_EQ, a, b);
  if (equal_nan && ai_is_float(a->dtype)) close = or_(s, close, and_(s, un(s, AI_ISNAN, a), un(s, AI_ISNAN, b)));
  if (rtol != 0 || atol != 0) {
    ai_tensor *allowed = adds(s, un(s, AI_ABS, muls(s, b, rtol)), atol);
    ai_tensor *actual = un(s, AI_ABS, sub(s, a, b));
    close = or_(s, close, and_(s, un(s, AI_ISFINITE, actual), bin(s, AI_LE, actual, allowed)));
  }
  ai_tensor *r = close && !s->err ? ai_ref(close) : NULL;
  done(s);
  ai_set_grad_enabled(was);
  return r;
}

/* Whether every element of a u8 tensor is nonzero (true for no elements). */
static bool all_set(ai_tensor *m) {
  ai_tensor *c = ai_contiguous(m);
  if (!c) return false;
  const uint8_t *p = ai_data(c);
  int64_t n = ai_numel(c);
  bool ok = true;
  for (int64_t i = 0; i < n && ok; i++) ok = p[i] != 0;
  ai_unref(c);
  return ok;
}

/* *result: isclose everywhere (a and b broadcast, as PyTorch's allclose). */
int ai_allclose(ai_tensor *a, ai_tensor *b, double rtol, double atol, bool equal_nan, bool *result) {
  ai_tensor *c = ai_isclose(a, b, rtol, atol, equal_nan);
  if (!c) return -1;
  *result = all_set(c);
  ai_unref(c);
  return 0;
}

/* *result: the same shape and the same values (compared after promotion, as PyTorch's equal;
 * NaN equals nothing). */
int ai_equal(ai_tensor *a, ai_tensor *b, bool *result) {
  if (!ai_same_shape(a, b)) { *result = false; return 0; }
  bool was = ai_set_grad_enabled(false);
  ai_tensor *c = ai_binary(AI_EQ, a, b);
  ai_set_grad_enabled(was);
  if (!c) return -1;
  *result = all_set(c);
  ai_unref(c);
  return 0;
}

/* The 0-based indices of the nonzero elements of t, in row-major order: an i64 tensor of n x
 * ndim (NaN counts as nonzero). */
ai_tensor *ai_nonzero(ai_tensor *t) {
  ai_tensor *c = ai_contiguous(t);
  if (!c) return NULL;
  int64_t n = ai_numel(c), count = 0;
  const char *p = ai_data(c);
  size_t es = ai_dtype_sizes[c->dtype];
  static const char zeros[8];
#define NONZERO(i) (c->dtype == AI_F32 ? *(const float *)(p + (size_t)(i) * es) != 0 \
                  : c->dtype == AI_F64 ? *(const double *)(p + (size_t)(i) * es) != 0 \
                  : memcmp(p + (size_t)(i) * es, zeros, es) != 0)
  for (int64_t i = 0; i < n; i++) count += NONZERO(i);
  int64_t shape[2] = {count, t->ndim};
  ai_tensor *out = ai_empty(AI_I64, 2, shape);
  if (out) {
    int64_t *o = ai_data(out), idx[AI_MAXDIM] = {0};
    for (int64_t i = 0; i < n; i++) {
      if (NONZERO(i)) { memcpy(o, idx, sizeof(int64_t) * (size_t)t->ndim); o += t->ndim; }
      for (int d = t->ndim - 1; d >= 0 && ++idx[d] == t->shape[d]; d--) idx[d] = 0; /* the next index */
    }
  }
#undef NONZERO
  ai_unref(c);
  return out;
}
