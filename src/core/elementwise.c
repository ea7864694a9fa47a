/* elementwise.c: binary ops with broadcasting and type promotion, unary math, activations,
 * clamp, where, masked_fill, and their in-place forms. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "iter.h"

/* Properties of each elementwise op, from its row in the registry (ops.h). */
enum { KIND_ARITH, KIND_FLOAT, KIND_COMPARE };                  /* binary: the result's dtype */
enum { INTS_KEEP, INTS_FLOAT, INTS_BOOL };                      /* unary: what integers become */
enum { SAVES_NOTHING, SAVES_INPUTS, SAVES_INPUT, SAVES_OUTPUT }; /* what the rule needs */
#define RECORDS_GRAD 1
#define RECORDS_GRAD1 1
#define RECORDS_NOGRAD 0
#define BIN_PROPS(NAME, name, args, grad, kind, saves, inplace) \
  [AI_##NAME] = {KIND_##kind, SAVES_##saves, RECORDS_##grad},
#define UN_PROPS(NAME, name, args, grad, ints, saves) [AI_##NAME] = {INTS_##ints, SAVES_##saves, RECORDS_##grad},
static const struct { unsigned char dtypes, saves; bool records; } binop_props[AI_NBINARY] = {AI_BINARY_OPS(BIN_PROPS)},
                                                                 unop_props[AI_NUNARY] = {AI_UNARY_OPS(UN_PROPS)};
#undef BIN_PROPS
#undef UN_PROPS

ai_dtype ai_promote(ai_dtype a, ai_dtype b) { return a > b ? a : b; }

/* PyTorch's result type: a 0-dim tensor (a number, as ai_binary_scalar makes it) beside a
 * tensor with dims decides only the category (integer < float): x_f32 * 0-dim f64 is f32, i64 *
 * 0-dim f32 is f32. Between tensors of the same kind the wider dtype wins. */
static int category(ai_dtype d) { return ai_is_float(d) ? 1 : 0; }
ai_dtype ai_result_dtype(const ai_tensor *a, const ai_tensor *b) {
  if ((a->ndim == 0) == (b->ndim == 0)) return ai_promote(a->dtype, b->dtype);
  const ai_tensor *dims = a->ndim ? a : b, *zero = a->ndim ? b : a;
  return category(zero->dtype) > category(dims->dtype) ? zero->dtype : dims->dtype;
}

/* Integer division by zero has no answer: refused, as Lua does for // and %. */
static bool divides_ints(int op) { return op == AI_REM || op == AI_FLOOR_DIVIDE; }

int ai_broadcast_shape(const ai_tensor *a, const ai_tensor *b, int *ndim, int64_t *shape) {
  int n = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int d = 0; d < n; d++) {
    int da = a->ndim - n + d, db = b->ndim - n + d;
    int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      char x[128], y[128];
      return ai_seterror("shapes %s and %s cannot be broadcast (dimension %d: %lld vs %lld)",
                         ai_shape_str(a, x, sizeof x), ai_shape_str(b, y, sizeof y), d + 1,
                         (long long)sa, (long long)sb);
    }
    shape[d] = sa == 1 ? sb : sa;
  }
  *ndim = n;
  return 0;
}

/* ---------------------------------------------------------------- scalar formulas */

static inline double rem_f(double a, double b) {
  double r = fmod(a, b);
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
static inline float rem_ff(float a, float b) {
  float r = fmodf(a, b);
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
static inline int64_t rem_i(int64_t a, int64_t b) {
  if (b == -1) return 0; /* INT64_MIN % -1 traps on x86 */
  int64_t r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
/* Lua's //: the quotient rounded down (a zero divisor is refused before the kernel runs) */
static inline int64_t fdiv_i(int64_t a, int64_t b) {
  if (b == -1) return (int64_t)(0 - (uint64_t)a); /* INT64_MIN // -1 wraps, as in Lua */
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
static inline int64_t pow_i(int64_t a, int64_t b) {
  if (b < 0) return a == 1 ? 1 : (a == -1 ? (b & 1 ? -1 : 1) : 0);
  uint64_t r = 1, x = (uint64_t)a; /* wraps on overflow, as integer tensors do */
  while (b) { if (b & 1) r *= x; x *= x; b >>= 1; }
  return (int64_t)r;
}

/* The loop shapes every binary kernel uses: all contiguous, one side a scalar, or strided. */
#define BINLOOP(T, TO, F)                                                                   \
  do {                                                                                      \
    const int64_t so = st[0], sa = st[1], sb = st[2];                                       \
    TO *o = (TO *)p[0];                                                                     \
    const T *a = (const T *)p[1], *b = (const T *)p[2];                                     \
    if (so == (int64_t)sizeof(TO) && sa == (int64_t)sizeof(T) && sb == (int64_t)sizeof(T)) { \
      for (int64_t i = 0; i < n; i++) o[i] = (TO)(F(a[i], b[i]));                           \
    } else if (so == (int64_t)sizeof(TO) && sa == (int64_t)sizeof(T) && sb == 0) {         \
      const T bv = *b;                                                                      \
      for (int64_t i = 0; i < n; i++) o[i] = (TO)(F(a[i], bv));                             \
    } else if (so == (int64_t)sizeof(TO) && sa == 0 && sb == (int64_t)sizeof(T)) {         \
      const T av = *a;                                                                      \
      for (int64_t i = 0; i < n; i++) o[i] = (TO)(F(av, b[i]));                             \
    } else {                                                                                \
      for (int64_t i = 0; i < n; i++)                                                       \
        *(TO *)(p[0] + i * so) =                                                            \
            (TO)(F(*(const T *)(p[1] + i * sa), *(const T *)(p[2] + i * sb)));              \
    }                                                                                       \
  } while (0)

/* The binary kernels: bk_<name>_f for floats (either width: libm's function is picked by the
 * operand's type), bk_<name>_i for integers. Integer arithmetic runs on the bits as uint64_t,
 * so it wraps on overflow instead of being undefined behaviour. */
#define FLOAT_FN(x, f32, f64) _Generic((x), float: f32, default: f64)
#define bk_add_f(x, y) ((x) + (y))
#define bk_sub_f(x, y) ((x) - (y))
#define bk_mul_f(x, y) ((x) * (y))
#define bk_div_f(x, y) ((x) / (y))
#define bk_pow_f(x, y) FLOAT_FN(x, powf, pow)(x, y)
#define bk_remainder_f(x, y) FLOAT_FN(x, rem_ff, rem_f)(x, y)
#define bk_maximum_f(x, y) ((x) > (y) || (x) != (x) ? (x) : (y))
#define bk_minimum_f(x, y) ((x) < (y) || (x) != (x) ? (x) : (y))
#define bk_atan2_f(x, y) FLOAT_FN(x, atan2f, atan2)(x, y)
#define bk_floor_divide_f(x, y) FLOAT_FN(x, floorf, floor)((x) / (y))
#define bk_eq_f(x, y) ((x) == (y))
#define bk_ne_f(x, y) ((x) != (y))
#define bk_lt_f(x, y) ((x) < (y))
#define bk_le_f(x, y) ((x) <= (y))
#define bk_gt_f(x, y) ((x) > (y))
#define bk_ge_f(x, y) ((x) >= (y))
#define bk_logical_and_f(x, y) ((x) != 0 && (y) != 0)
#define bk_logical_or_f(x, y) ((x) != 0 || (y) != 0)
#define bk_add_i(x, y) ((uint64_t)(x) + (uint64_t)(y))
#define bk_sub_i(x, y) ((uint64_t)(x) - (uint64_t)(y))
#define bk_mul_i(x, y) ((uint64_t)(x) * (uint64_t)(y))
#define bk_pow_i pow_i
#define bk_remainder_i rem_i
#define bk_floor_divide_i fdiv_i
#define bk_maximum_i bk_maximum_f
#define bk_minimum_i bk_minimum_f
#define bk_eq_i bk_eq_f
#define bk_ne_i bk_ne_f
#define bk_lt_i bk_lt_f
#define bk_le_i bk_le_f
#define bk_gt_i bk_gt_f
#define bk_ge_i bk_ge_f
#define bk_logical_and_i bk_logical_and_f
#define bk_logical_or_i bk_logical_or_f

/* One case per row: the float switch covers every op, the integer one every op that is not
 * computed in f32. T is the element type of the row function being compiled. */
#define BIN_OUT_ARITH T
#define BIN_OUT_FLOAT T
#define BIN_OUT_COMPARE uint8_t
#define BIN_FLOAT_CASE(NAME, name, args, grad, kind, saves, inplace) \
  case AI_##NAME: BINLOOP(T, BIN_OUT_##kind, bk_##name##_f); return;
#define BIN_INT_CASE(NAME, name, args, grad, kind, saves, inplace) BIN_INT_CASE_##kind(NAME, name)
#define BIN_INT_CASE_ARITH(NAME, name) case AI_##NAME: BINLOOP(T, T, bk_##name##_i); return;
#define BIN_INT_CASE_COMPARE(NAME, name) case AI_##NAME: BINLOOP(T, uint8_t, bk_##name##_i); return;
#define BIN_INT_CASE_FLOAT(NAME, name)

typedef struct { int op; ai_dtype dt; } bin_ctx;

AI_CLONES static void binary_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  bin_ctx *c = ctx;
  switch (c->dt) {
  case AI_F32: {
    typedef float T;
    switch ((ai_binop)c->op) { AI_BINARY_OPS(BIN_FLOAT_CASE) case AI_NBINARY: return; }
    return;
  }
  case AI_F64: {
    typedef double T;
    switch ((ai_binop)c->op) { AI_BINARY_OPS(BIN_FLOAT_CASE) case AI_NBINARY: return; }
    return;
  }
  case AI_I64: {
    typedef int64_t T;
    switch ((ai_binop)c->op) { AI_BINARY_OPS(BIN_INT_CASE) default: return; }
  }
  default: {
    typedef uint8_t T;
    switch ((ai_binop)c->op) { AI_BINARY_OPS(BIN_INT_CASE) default: return; }
  }
  }
}

static bool is_compare(int op) { return binop_props[op].dtypes == KIND_COMPARE; }

/* Integer remainder by zero has no answer: refuse it instead of crashing. */
static bool has_zero(const ai_tensor *t) {
  int64_t n = ai_numel(t);
  if (n == 0) return false;
  ai_tensor *c = (ai_tensor *)t;
  int64_t idx[AI_MAXDIM] = {0};
  for (int64_t k = 0; k < n; k++) {
    if (ai_get(c, idx) == 0) return true;
    for (int d = t->ndim - 1; d >= 0; d--) {
      if (++idx[d] < t->shape[d]) break;
      idx[d] = 0;
    }
  }
  return false;
}

/* out = a op b into a preallocated out of the broadcast shape, inputs already in dtype dt. */
static void binary_into(int op, ai_tensor *out, const ai_tensor *a, const ai_tensor *b, ai_dtype dt) {
  ai_iter it;
  ai_iter_init(&it, out->ndim, out->shape);
  ai_iter_add(&it, out);
  ai_iter_add(&it, a);
  ai_iter_add(&it, b);
  bin_ctx c = {op, dt};
  ai_iter_run(&it, binary_row, &c);
}

ai_tensor *ai_binary(ai_binop op, ai_tensor *a, ai_tensor *b) {
  if ((int)op < 0 || op >= AI_NBINARY) return AI_ERRNULL("unknown binary op");
  int ndim;
  int64_t shape[AI_MAXDIM];
  if (ai_broadcast_shape(a, b, &ndim, shape)) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", ai_error());
    return AI_ERRNULL("%s: %s", ai_binop_names[op], msg);
  }
  ai_dtype dt = ai_result_dtype(a, b);
  if (binop_props[op].dtypes == KIND_FLOAT && !ai_is_float(dt)) dt = AI_F32;
  ai_dtype odt = is_compare(op) ? AI_U8 : dt;
  ai_tensor *ca = ai_to_dtype(a, dt), *cb = ca ? ai_to_dtype(b, dt) : NULL, *out = NULL;
  if (!cb) goto done;
  if (divides_ints(op) && !ai_is_float(dt) && has_zero(cb)) {
    ai_seterror("%s: integer division by zero", ai_binop_names[op]);
    goto done;
  }
  out = ai_empty(odt, ndim, shape);
  if (!out) goto done;
  binary_into(op, out, ca, cb, dt);
  if (binop_props[op].records && ai_is_float(dt)) {
    ai_node *n = NULL;
    ai_tensor *ins[2] = {ca, cb};
    int err = ai_record(&n, ai_binop_row(op), out, 2, ins);
    if (!err && n && binop_props[op].saves == SAVES_INPUTS) err = ai_save(n, ca) || ai_save(n, cb);
    if (err) { ai_unref(out); out = NULL; }
  }
done:
  ai_unref(ca);
  ai_unref(cb);
  return out;
}

/* A Python-like "weak" scalar: it takes the tensor's dtype unless a float meets an integer. */
static ai_dtype scalar_dtype(const ai_tensor *t, double s) {
  if (ai_is_float(t->dtype)) return t->dtype;
  return (s == floor(s) && fabs(s) < 9.2e18) ? t->dtype : AI_F32;
}

ai_tensor *ai_binary_scalar(ai_binop op, ai_tensor *a, double s, bool scalar_first) {
  ai_tensor *c = ai_scalar(scalar_dtype(a, s), s);
  if (!c) return NULL;
  ai_tensor *r = scalar_first ? ai_binary(op, c, a) : ai_binary(op, a, c);
  ai_unref(c);
  return r;
}

/* An integer scalar: the tensor's dtype when that is an integer one (exact: no double), else
 * the float tensor's dtype. */
static ai_tensor *int_scalar(const ai_tensor *a, int64_t s) {
  ai_dtype dt = ai_is_float(a->dtype) ? a->dtype : a->dtype == AI_U8 ? AI_U8 : AI_I64;
  ai_tensor *c = ai_empty(dt, 0, NULL);
  if (c && ai_fill_int_(c, s)) { ai_unref(c); c = NULL; }
  return c;
}

ai_tensor *ai_binary_scalar_int(ai_binop op, ai_tensor *a, int64_t s, bool scalar_first) {
  ai_tensor *c = int_scalar(a, s);
  if (!c) return NULL;
  ai_tensor *r = scalar_first ? ai_binary(op, c, a) : ai_binary(op, a, c);
  ai_unref(c);
  return r;
}

int ai_binary_scalar_int_(int op, ai_tensor *a, int64_t s) {
  ai_tensor *c = int_scalar(a, s);
  if (!c) return -1;
  int rc = ai_binary_(op, a, c);
  ai_unref(c);
  return rc;
}

int ai_binary_scalar_(int op, ai_tensor *a, double s) {
  ai_tensor *c = ai_scalar(scalar_dtype(a, s), s);
  if (!c) return -1;
  int rc = ai_binary_(op, a, c);
  ai_unref(c);
  return rc;
}

int ai_binary_(int op, ai_tensor *a, ai_tensor *b) {
  char name[32];
  snprintf(name, sizeof name, "%s_", (op >= 0 && op < AI_NBINARY) ? ai_binop_names[op] : "?");
  if (op < 0 || op >= AI_NBINARY || is_compare(op))
    return ai_seterror("%s: no in-place form", name);
  if (ai_check_inplace(a, name)) return -1;
  int ndim;
  int64_t shape[AI_MAXDIM];
  if (ai_broadcast_shape(a, b, &ndim, shape)) return -1;
  if (ndim != a->ndim || memcmp(shape, a->shape, sizeof(int64_t) * (size_t)ndim))
    return ai_seterror("%s: the result's shape differs from the tensor's (an in-place result keeps its shape)", name);
  ai_dtype dt = a->dtype, rt = ai_result_dtype(a, b);
  if (binop_props[op].dtypes == KIND_FLOAT && !ai_is_float(rt)) rt = AI_F32;
  if (ai_is_float(rt) && !ai_is_float(dt)) /* as PyTorch: a float result does not go into integers */
    return ai_seterror("%s: the result is %s, which cannot be written into this %s tensor without losing "
                       "its fraction; use the out-of-place form (x = x:%.*s(...)) or convert the tensor first",
                       name, ai_dtype_names[rt], ai_dtype_names[dt], (int)strlen(name) - 1, name);
  ai_tensor *cb = ai_to_dtype(b, dt);
  if (!cb) return -1;
  if (divides_ints(op) && !ai_is_float(dt) && has_zero(cb)) {
    ai_unref(cb);
    return ai_seterror("%s: integer division by zero", name);
  }
  /* b may alias a (x:add_(x)): the kernel reads each element before writing it */
  binary_into(op, a, a, cb, dt);
  ai_unref(cb);
  ai_bump_version(a);
  return 0;
}

/* ---------------------------------------------------------------- unary */

typedef struct { int op; ai_dtype dt; double p0, p1; } un_ctx;

#define UNLOOP(T, TO, F)                                                                  \
  do {                                                                                    \
    if (st[0] == (int64_t)sizeof(TO) && st[1] == (int64_t)sizeof(T)) {                   \
      TO *o = (TO *)p[0];                                                                 \
      const T *a = (const T *)p[1];                                                       \
      for (int64_t i = 0; i < n; i++) o[i] = (TO)(F(a[i]));                               \
    } else {                                                                              \
      for (int64_t i = 0; i < n; i++) *(TO *)(p[0] + i * st[0]) = (TO)(F(*(const T *)(p[1] + i * st[1]))); \
    }                                                                                     \
  } while (0)

/* exp for f32 written so that the compiler vectorises the loops that call it (libm's expf is a
 * call per element, and SiLU/sigmoid were the largest non-GEMM cost of the UNet): Cephes'
 * range reduction x = n ln2 + r and a degree-6 polynomial for e^r, about 1 ulp; overflow to
 * inf, underflow to 0 and NaN behave as expf's. */
static inline float vexpf(float x) {
  float xc = x > 88.75f ? 88.75f : (x < -104.0f ? -104.0f : x);
  xc = xc == xc ? xc : 0.0f;
  /* n = round(x / ln2) by adding 1.5 * 2^23: no branch, no float-to-int conversion, so that
   * the loop vectorises at full width */
  union { float f; int32_t i; } nr = {.f = xc * 1.44269504088896341f + 12582912.0f};
  int32_t n = nr.i - 0x4B400000;
  float fnr = nr.f - 12582912.0f;
  float r = xc - fnr * 0.693359375f + fnr * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  /* 2^n in two halves, so that n near the ends of the range (denormal results, results near
   * FLT_MAX) never needs an exponent that a float cannot hold */
  int32_t n1 = n >> 1, n2 = n - n1;
  union { int32_t i; float f; } a = {.i = (n1 + 127) << 23}, b = {.i = (n2 + 127) << 23};
  float y = p * a.f * b.f;
  y = x > 88.7228391f ? INFINITY : y;
  y = x < -103.972f ? 0.0f : y;
  return x == x ? y : x;
}

/* tanh for f32, vectorisable for the same reason (libm's tanhf calls expm1f per element; it was
 * 4% of the MLP GAN's step): Cephes' odd polynomial below |x| = 0.625, where 1 - 2/(e^2x + 1)
 * would cancel, and that formula above it, both computed and one selected, so no branch.
 * About 2 ulp; tanh(+-inf) = +-1, NaN stays NaN, -0 stays -0. */
static inline float vtanhf(float x) {
  float ax = fabsf(x), z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  p = p * z * ax + ax;
  float big = 1.0f - 2.0f / (vexpf(2.0f * ax) + 1.0f);
  return copysignf(ax < 0.625f ? p : big, x); /* odd, on |x|: tanh(-0) = -0 */
}
/* The unary kernels: uk_<name>_f32 and uk_<name>_f64 for every op, uk_<name>_int for the ops
 * that keep integers (computed on int64_t, wrapping: -INT64_MIN is INT64_MIN). */
#define UNARY_KERNEL(name, f32_expr, f64_expr)                       \
  static inline float uk_##name##_f32(float x) { return f32_expr; }  \
  static inline double uk_##name##_f64(double x) { return f64_expr; }
#define UNARY_INT_KERNEL(name, expr) static inline int64_t uk_##name##_int(int64_t x) { return (int64_t)(expr); }
UNARY_KERNEL(neg, -x, -x)
UNARY_KERNEL(abs, fabsf(x), fabs(x))
UNARY_KERNEL(sign, (x > 0) - (x < 0), (x > 0) - (x < 0))
UNARY_KERNEL(exp, vexpf(x), exp(x))
UNARY_KERNEL(log, logf(x), log(x))
UNARY_KERNEL(log1p, log1pf(x), log1p(x))
UNARY_KERNEL(expm1, expm1f(x), expm1(x))
UNARY_KERNEL(sqrt, sqrtf(x), sqrt(x))
UNARY_KERNEL(rsqrt, 1 / sqrtf(x), 1 / sqrt(x))
UNARY_KERNEL(sin, sinf(x), sin(x))
UNARY_KERNEL(cos, cosf(x), cos(x))
UNARY_KERNEL(tanh, vtanhf(x), tanh(x))
UNARY_KERNEL(sigmoid, 1 / (1 + vexpf(-x)), 1 / (1 + exp(-x))) /* inf -> 0, no branch */
UNARY_KERNEL(relu, x > 0 ? x : 0, x > 0 ? x : 0)
UNARY_KERNEL(silu, x * uk_sigmoid_f32(x), x * uk_sigmoid_f64(x))
UNARY_KERNEL(gelu, 0.5f * x * (1 + erff(x * 0.70710678118654752440f)),
             0.5 * x * (1 + erf(x * 0.70710678118654752440)))
UNARY_KERNEL(floor, floorf(x), floor(x))
UNARY_KERNEL(ceil, ceilf(x), ceil(x))
UNARY_KERNEL(round, nearbyintf(x), nearbyint(x))
UNARY_KERNEL(logical_not, x == 0, x == 0)
UNARY_KERNEL(reciprocal, 1 / x, 1 / x)
UNARY_KERNEL(square, x * x, x * x)
UNARY_KERNEL(log2, log2f(x), log2(x))
UNARY_KERNEL(erf, erff(x), erf(x))
UNARY_INT_KERNEL(neg, 0 - (uint64_t)x)
UNARY_INT_KERNEL(abs, x < 0 ? 0 - (uint64_t)x : (uint64_t)x)
UNARY_INT_KERNEL(sign, (x > 0) - (x < 0))
UNARY_INT_KERNEL(relu, x > 0 ? x : 0)
UNARY_INT_KERNEL(square, (uint64_t)x * (uint64_t)x)
UNARY_INT_KERNEL(floor, x)
UNARY_INT_KERNEL(ceil, x)
UNARY_INT_KERNEL(round, x)
UNARY_INT_KERNEL(logical_not, x == 0)
/* The float kernel of an op for the element type T of the row function being compiled. */
#define UK_FLOAT(name) _Generic((T)0, float: uk_##name##_f32, default: uk_##name##_f64)

#define UN_OUT_KEEP T
#define UN_OUT_FLOAT T
#define UN_OUT_BOOL uint8_t
#define UN_FLOAT_CASE(NAME, name, args, grad, ints, saves) \
  case AI_##NAME: UNLOOP(T, UN_OUT_##ints, UK_FLOAT(name)); return;
#define UN_INT_CASE(NAME, name, args, grad, ints, saves) UN_INT_CASE_##ints(NAME, name)
#define UN_INT_CASE_KEEP(NAME, name) case AI_##NAME: UNLOOP(T, T, uk_##name##_int); return;
#define UN_INT_CASE_BOOL(NAME, name) case AI_##NAME: UNLOOP(T, uint8_t, uk_##name##_int); return;
#define UN_INT_CASE_FLOAT(NAME, name)

AI_CLONES static void unary_f32(int op, char **p, const int64_t *st, int64_t n) {
  typedef float T;
  switch ((ai_unop)op) { AI_UNARY_OPS(UN_FLOAT_CASE) case AI_NUNARY: return; }
}
AI_CLONES static void unary_f64(int op, char **p, const int64_t *st, int64_t n) {
  typedef double T;
  switch ((ai_unop)op) { AI_UNARY_OPS(UN_FLOAT_CASE) case AI_NUNARY: return; }
}
/* integer tensors reach only the KEEP and BOOL ops: the others convert them to f32 first */
static void unary_i64(int op, char **p, const int64_t *st, int64_t n) {
  typedef int64_t T;
  switch ((ai_unop)op) { AI_UNARY_OPS(UN_INT_CASE) default: return; }
}
static void unary_u8(int op, char **p, const int64_t *st, int64_t n) {
  typedef uint8_t T;
  switch ((ai_unop)op) { AI_UNARY_OPS(UN_INT_CASE) default: return; }
}

static void unary_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  un_ctx *c = ctx;
  switch (c->dt) {
  case AI_F32: unary_f32(c->op, p, st, n); return;
  case AI_F64: unary_f64(c->op, p, st, n); return;
  case AI_I64: unary_i64(c->op, p, st, n); return;
  default: unary_u8(c->op, p, st, n); return;
  }
}

/* The dtype an op computes in, and that of its result. */
static ai_dtype unary_dtype(ai_unop op, ai_dtype in) {
  return (ai_is_float(in) || unop_props[op].dtypes != INTS_FLOAT) ? in : AI_F32;
}
static ai_dtype unary_out_dtype(ai_unop op, ai_dtype dt) { return unop_props[op].dtypes == INTS_BOOL ? AI_U8 : dt; }

static void run_unary(int op, ai_tensor *out, const ai_tensor *a) {
  ai_iter it;
  ai_iter_init(&it, out->ndim, out->shape);
  ai_iter_add(&it, out);
  ai_iter_add(&it, a);
  un_ctx c = {op, a->dtype, 0, 0};
  ai_iter_run(&it, unary_row, &c);
}

ai_tensor *ai_unary_nograd(ai_unop op, ai_tensor *a) {
  ai_dtype dt = unary_dtype(op, a->dtype);
  ai_tensor *ca = ai_to_dtype(a, dt);
  if (!ca) return NULL;
  ai_tensor *out = ai_empty(unary_out_dtype(op, dt), a->ndim, a->shape);
  if (out) run_unary(op, out, ca);
  ai_unref(ca);
  return out;
}

ai_tensor *ai_unary(ai_unop op, ai_tensor *a) {
  if ((int)op < 0 || op >= AI_NUNARY) return AI_ERRNULL("unknown unary op");
  ai_dtype dt = unary_dtype(op, a->dtype);
  ai_tensor *ca = ai_to_dtype(a, dt);
  if (!ca) return NULL;
  ai_tensor *out = ai_empty(unary_out_dtype(op, dt), a->ndim, a->shape);
  if (!out) { ai_unref(ca); return NULL; }
  run_unary(op, out, ca);
  if (unop_props[op].records && ai_is_float(dt)) {
    ai_node *n = NULL;
    int err = ai_record(&n, ai_unop_row(op), out, 1, &ca);
    if (!err && n) {
      if (unop_props[op].saves == SAVES_INPUT) err = ai_save(n, ca);
      else if (unop_props[op].saves == SAVES_OUTPUT) err = ai_save_output(n, out);
    }
    if (err) { ai_unref(out); out = NULL; }
  }
  ai_unref(ca);
  return out;
}

/* ---------------------------------------------------------------- fused activation gradients */

/* The fused activation gradients (graph.h): one pass instead of the composed rule's three to
 * six. */
typedef struct { ai_dtype dt; ai_actgrad_kind kind; double slope; } actgrad_ctx;

#define ACTGRAD_LOOP(T, EXPR)                                                                \
  do {                                                                                       \
    if (st[0] == (int64_t)sizeof(T) && st[1] == (int64_t)sizeof(T) && st[2] == (int64_t)sizeof(T)) { \
      T *o = (T *)p[0];                                                                      \
      const T *gp = (const T *)p[1], *vp = (const T *)p[2];                                  \
      for (int64_t i = 0; i < n; i++) { const T g = gp[i], v = vp[i]; o[i] = (EXPR); }       \
    } else {                                                                                 \
      for (int64_t i = 0; i < n; i++) {                                                      \
        const T g = *(const T *)(p[1] + i * st[1]), v = *(const T *)(p[2] + i * st[2]);      \
        *(T *)(p[0] + i * st[0]) = (EXPR);                                                   \
      }                                                                                      \
    }                                                                                        \
  } while (0)

#define ACTGRAD_BODY(T, S)                                                                   \
  {                                                                                          \
    const T slope = (T)c->slope;                                                             \
    switch (c->kind) {                                                                       \
    case AI_ACTGRAD_SILU: ACTGRAD_LOOP(T, g * uk_sigmoid_##S(v) * (1 + v * (1 - uk_sigmoid_##S(v)))); return; \
    case AI_ACTGRAD_SIGMOID_Y: ACTGRAD_LOOP(T, g * v * (1 - v)); return;                    \
    case AI_ACTGRAD_TANH_Y: ACTGRAD_LOOP(T, g * (1 - v * v)); return;                       \
    case AI_ACTGRAD_RELU: ACTGRAD_LOOP(T, v > 0 ? g : 0); return;                           \
    case AI_ACTGRAD_LEAKY: ACTGRAD_LOOP(T, v > 0 ? g : g * slope); return;                  \
    }                                                                                        \
    return;                                                                                  \
  }

AI_CLONES static void actgrad_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  actgrad_ctx *c = ctx;
  if (c->dt == AI_F32) ACTGRAD_BODY(float, f32)
  ACTGRAD_BODY(double, f64)
}

ai_tensor *ai_activation_grad(ai_tensor *g, ai_tensor *v, ai_actgrad_kind kind, double slope) {
  if (!ai_same_shape(g, v) || g->dtype != v->dtype || !ai_is_float(v->dtype))
    return AI_ERRNULL("internal: activation gradient of mismatched tensors");
  ai_tensor *out = ai_empty(v->dtype, v->ndim, v->shape);
  if (!out) return NULL;
  ai_iter it;
  ai_iter_init(&it, v->ndim, v->shape);
  ai_iter_add(&it, out);
  ai_iter_add(&it, g);
  ai_iter_add(&it, v);
  actgrad_ctx c = {v->dtype, kind, slope};
  ai_iter_run(&it, actgrad_row, &c);
  return out;
}

/* ---------------------------------------------------------------- parameterised activations */

typedef struct { int kind; double p0, p1; ai_dtype dt; } act_ctx;
enum { ACT_LEAKY, ACT_SOFTPLUS, ACT_CLAMP };

/* one loop per kind, with a contiguous fast path, so that the common cases vectorise */
#define ACT_LOOP(T, EXPR)                                                                   \
  do {                                                                                      \
    if (st[0] == (int64_t)sizeof(T) && st[1] == (int64_t)sizeof(T)) {                      \
      T *o = (T *)p[0];                                                                     \
      const T *a = (const T *)p[1];                                                         \
      for (int64_t i = 0; i < n; i++) { const T x = a[i]; o[i] = (EXPR); }                  \
    } else {                                                                                \
      for (int64_t i = 0; i < n; i++) {                                                     \
        const T x = *(const T *)(p[1] + i * st[1]);                                         \
        *(T *)(p[0] + i * st[0]) = (EXPR);                                                  \
      }                                                                                     \
    }                                                                                       \
  } while (0)

#define ACT_BODY(T)                                                                         \
  {                                                                                         \
    const T p0 = (T)c->p0, p1 = (T)c->p1;                                                   \
    switch (c->kind) {                                                                      \
    case ACT_LEAKY: ACT_LOOP(T, x > 0 ? x : x * p0); return;                                \
    case ACT_SOFTPLUS:                                                                      \
      ACT_LOOP(T, x * p0 > p1 ? x : (T)(log1p(exp((double)(x * p0))) / (double)p0));        \
      return;                                                                               \
    default: ACT_LOOP(T, x < p0 ? p0 : (x > p1 ? p1 : x)); return;                          \
    }                                                                                       \
  }

AI_CLONES static void act_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  act_ctx *c = ctx;
  switch (c->dt) {
  case AI_F32: ACT_BODY(float)
  case AI_F64: ACT_BODY(double)
  case AI_I64: ACT_BODY(int64_t)
  default: ACT_BODY(uint8_t)
  }
}

static ai_tensor *activation(int kind, ai_opid row, ai_tensor *a, double p0, double p1) {
  ai_dtype dt = (ai_is_float(a->dtype) || kind == ACT_CLAMP) ? a->dtype : AI_F32;
  ai_tensor *ca = ai_to_dtype(a, dt);
  if (!ca) return NULL;
  ai_tensor *out = ai_empty(dt, a->ndim, a->shape);
  if (!out) { ai_unref(ca); return NULL; }
  ai_iter it;
  ai_iter_init(&it, out->ndim, out->shape);
  ai_iter_add(&it, out);
  ai_iter_add(&it, ca);
  act_ctx c = {kind, p0, p1, dt};
  if (kind == ACT_CLAMP && !ai_is_float(dt)) { /* integer bounds: round inward */
    c.p0 = isinf(p0) ? (p0 < 0 ? -9.2e18 : 9.2e18) : ceil(p0);
    c.p1 = isinf(p1) ? (p1 < 0 ? -9.2e18 : 9.2e18) : floor(p1);
    if (dt == AI_U8) { c.p0 = c.p0 < 0 ? 0 : c.p0; c.p1 = c.p1 > 255 ? 255 : c.p1; }
  }
  ai_iter_run(&it, act_row, &c);
  if (ai_is_float(dt)) {
    ai_node *n = NULL;
    int err = ai_record(&n, row, out, 1, &ca);
    if (!err && n) { n->arg.act = (ai_act_args){p0, p1}; err = ai_save(n, ca); } /* the three act rows */
    if (err) { ai_unref(out); out = NULL; }
  }
  ai_unref(ca);
  return out;
}

ai_tensor *ai_leaky_relu(ai_tensor *a, double slope) {
  return activation(ACT_LEAKY, AI_OP_LEAKY_RELU, a, slope, 0);
}

ai_tensor *ai_softplus(ai_tensor *a, double beta, double threshold) {
  if (beta == 0) return AI_ERRNULL("softplus: beta must be non-zero");
  return activation(ACT_SOFTPLUS, AI_OP_SOFTPLUS, a, beta, threshold);
}

ai_tensor *ai_clamp(ai_tensor *a, double lo, double hi) {
  if (isnan(lo) || isnan(hi)) return AI_ERRNULL("clamp: bounds must not be NaN");
  if (lo > hi) return AI_ERRNULL("clamp: min (%g) is greater than max (%g)", lo, hi);
  return activation(ACT_CLAMP, AI_OP_CLAMP, a, lo, hi);
}

int ai_clamp_(ai_tensor *t, double lo, double hi) {
  if (ai_check_inplace(t, "clamp_")) return -1;
  if (isnan(lo) || isnan(hi) || lo > hi) return ai_seterror("clamp_: invalid bounds");
  bool was = ai_set_grad_enabled(false);
  ai_tensor *r = ai_clamp(t, lo, hi);
  ai_set_grad_enabled(was);
  if (!r) return -1;
  int rc = ai_copy_(t, r);
  ai_unref(r);
  return rc;
}

/* ---------------------------------------------------------------- where, masked_fill */

typedef struct { ai_dtype dt; } where_ctx;

#define WHERE_BODY(T)                                                                       \
  for (int64_t i = 0; i < n; i++)                                                           \
    *(T *)(p[0] + i * st[0]) = *(const uint8_t *)(p[1] + i * st[1])                         \
                                   ? *(const T *)(p[2] + i * st[2])                         \
                                   : *(const T *)(p[3] + i * st[3]);                        \
  return;

static void where_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  where_ctx *c = ctx;
  switch (c->dt) {
  case AI_F32: WHERE_BODY(float)
  case AI_F64: WHERE_BODY(double)
  case AI_I64: WHERE_BODY(int64_t)
  default: WHERE_BODY(uint8_t)
  }
}

ai_tensor *ai_where(ai_tensor *cond, ai_tensor *a, ai_tensor *b) {
  if (cond->dtype != AI_U8) return AI_ERRNULL("where: condition must be a u8 (boolean) tensor, got %s",
                                              ai_dtype_names[cond->dtype]);
  int nd1, nd;
  int64_t s1[AI_MAXDIM], shape[AI_MAXDIM];
  if (ai_broadcast_shape(a, b, &nd1, s1)) return NULL;
  ai_tensor tmp = *a; /* shape-only stand-in for the a/b broadcast */
  tmp.ndim = nd1;
  memcpy(tmp.shape, s1, sizeof s1);
  if (ai_broadcast_shape(cond, &tmp, &nd, shape)) return NULL;
  ai_dtype dt = ai_promote(a->dtype, b->dtype);
  ai_tensor *ca = ai_to_dtype(a, dt), *cb = ca ? ai_to_dtype(b, dt) : NULL, *out = NULL;
  if (!cb) goto done;
  out = ai_empty(dt, nd, shape);
  if (!out) goto done;
  ai_iter it;
  ai_iter_init(&it, nd, shape);
  ai_iter_add(&it, out);
  ai_iter_add(&it, cond);
  ai_iter_add(&it, ca);
  ai_iter_add(&it, cb);
  where_ctx c = {dt};
  ai_iter_run(&it, where_row, &c);
  if (ai_is_float(dt)) {
    ai_node *n = NULL;
    ai_tensor *ins[3] = {cond, ca, cb};
    int err = ai_record(&n, AI_OP_WHERE, out, 3, ins);
    if (!err && n) err = ai_save(n, cond);
    if (err) { ai_unref(out); out = NULL; }
  }
done:
  ai_unref(ca);
  ai_unref(cb);
  return out;
}

ai_tensor *ai_masked_fill(ai_tensor *t, ai_tensor *mask, double v) {
  if (mask->dtype != AI_U8) return AI_ERRNULL("masked_fill: mask must be a u8 (boolean) tensor");
  int nd;
  int64_t shape[AI_MAXDIM];
  if (ai_broadcast_shape(t, mask, &nd, shape)) return NULL;
  if (nd != t->ndim || memcmp(shape, t->shape, sizeof(int64_t) * (size_t)nd))
    return AI_ERRNULL("masked_fill: mask must broadcast to the tensor's shape");
  ai_tensor *out = ai_empty(t->dtype, t->ndim, t->shape);
  ai_tensor *val = out ? ai_scalar(t->dtype, v) : NULL;
  if (!val) { ai_unref(out); return NULL; }
  ai_iter it;
  ai_iter_init(&it, nd, shape);
  ai_iter_add(&it, out);
  ai_iter_add(&it, mask);
  ai_iter_add(&it, val);
  ai_iter_add(&it, t);
  where_ctx c = {t->dtype};
  ai_iter_run(&it, where_row, &c);
  ai_unref(val);
  if (ai_is_float(t->dtype)) {
    ai_node *n = NULL;
    ai_tensor *ins[2] = {t, mask};
    int err = ai_record(&n, AI_OP_MASKED_FILL, out, 2, ins);
    if (!err && n) err = ai_save(n, mask);
    if (err) { ai_unref(out); return NULL; }
  }
  return out;
}

int ai_masked_fill_(ai_tensor *t, ai_tensor *mask, double v) {
  if (ai_check_inplace(t, "masked_fill_")) return -1;
  bool was = ai_set_grad_enabled(false);
  ai_tensor *r = ai_masked_fill(t, mask, v);
  ai_set_grad_enabled(was);
  if (!r) return -1;
  int rc = ai_copy_(t, r);
  ai_unref(r);
  return rc;
}
