/* elementwise.c: binary ops with broadcasting and type promotion, unary math, activations,
 * clamp, where, masked_fill, and their in-place forms. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "iter.h"

const char *const ai_binop_names[AI_NBINARY] = {
    "add", "sub", "mul", "div", "pow", "remainder", "maximum", "minimum", "atan2",
    "eq",  "ne",  "lt",  "le",  "gt",  "ge",        "logical_and", "logical_or"};

const char *const ai_unop_names[AI_NUNARY] = {
    "neg",  "abs",  "sign",    "exp",  "log",  "log1p", "expm1", "sqrt",  "rsqrt",
    "sin",  "cos",  "tanh",    "sigmoid", "relu", "silu", "gelu", "floor", "ceil",
    "round", "logical_not", "reciprocal", "square", "log2", "erf"};

/* Differentiable unary ops map to op-table rows; the rest are constant almost everywhere. */
static const int unop_row[AI_NUNARY] = {
    AI_OP_NEG, AI_OP_ABS, -1, AI_OP_EXP, AI_OP_LOG, AI_OP_LOG1P, AI_OP_EXPM1, AI_OP_SQRT,
    AI_OP_RSQRT, AI_OP_SIN, AI_OP_COS, AI_OP_TANH, AI_OP_SIGMOID, AI_OP_RELU, AI_OP_SILU,
    AI_OP_GELU, -1, -1, -1, -1, AI_OP_RECIPROCAL, AI_OP_SQUARE, AI_OP_LOG2, AI_OP_ERF};

static const int binop_row[AI_NBINARY] = {
    AI_OP_ADD, AI_OP_SUB, AI_OP_MUL, AI_OP_DIV, AI_OP_POW, AI_OP_REM, AI_OP_MAXIMUM,
    AI_OP_MINIMUM, AI_OP_ATAN2, -1, -1, -1, -1, -1, -1, -1, -1};

ai_dtype ai_promote(ai_dtype a, ai_dtype b) { return a > b ? a : b; }

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

#define F_ADD(x, y) ((x) + (y))
#define F_SUB(x, y) ((x) - (y))
#define F_MUL(x, y) ((x) * (y))
#define F_DIV(x, y) ((x) / (y))
#define F_MAX(x, y) ((x) > (y) || (x) != (x) ? (x) : (y))
#define F_MIN(x, y) ((x) < (y) || (x) != (x) ? (x) : (y))
#define F_EQ(x, y) ((x) == (y))
#define F_NE(x, y) ((x) != (y))
#define F_LT(x, y) ((x) < (y))
#define F_LE(x, y) ((x) <= (y))
#define F_GT(x, y) ((x) > (y))
#define F_GE(x, y) ((x) >= (y))
#define F_AND(x, y) ((x) != 0 && (y) != 0)
#define F_OR(x, y) ((x) != 0 || (y) != 0)

/* Ops common to every dtype: arithmetic that stays in T, and comparisons to u8. i64 arithmetic
 * runs on the same bits as u64 (ARITH_CASES(uint64_t)): it wraps on overflow instead of being
 * undefined behaviour. */
#define ARITH_CASES(T)                                      \
  case AI_ADD: BINLOOP(T, T, F_ADD); return;                \
  case AI_SUB: BINLOOP(T, T, F_SUB); return;                \
  case AI_MUL: BINLOOP(T, T, F_MUL); return;
#define COMMON_CASES(T) ARITH_CASES(T) ORDER_CASES(T)
#define ORDER_CASES(T)                                      \
  case AI_MAXIMUM: BINLOOP(T, T, F_MAX); return;            \
  case AI_MINIMUM: BINLOOP(T, T, F_MIN); return;            \
  case AI_EQ: BINLOOP(T, uint8_t, F_EQ); return;            \
  case AI_NE: BINLOOP(T, uint8_t, F_NE); return;            \
  case AI_LT: BINLOOP(T, uint8_t, F_LT); return;            \
  case AI_LE: BINLOOP(T, uint8_t, F_LE); return;            \
  case AI_GT: BINLOOP(T, uint8_t, F_GT); return;            \
  case AI_GE: BINLOOP(T, uint8_t, F_GE); return;            \
  case AI_AND: BINLOOP(T, uint8_t, F_AND); return;          \
  case AI_OR: BINLOOP(T, uint8_t, F_OR); return;

typedef struct { int op; ai_dtype dt; } bin_ctx;

AI_CLONES static void binary_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  bin_ctx *c = ctx;
  switch (c->dt) {
  case AI_F32:
    switch (c->op) {
      COMMON_CASES(float)
      case AI_DIV: BINLOOP(float, float, F_DIV); return;
      case AI_POW: BINLOOP(float, float, powf); return;
      case AI_REM: BINLOOP(float, float, rem_ff); return;
      case AI_ATAN2: BINLOOP(float, float, atan2f); return;
    }
    return;
  case AI_F64:
    switch (c->op) {
      COMMON_CASES(double)
      case AI_DIV: BINLOOP(double, double, F_DIV); return;
      case AI_POW: BINLOOP(double, double, pow); return;
      case AI_REM: BINLOOP(double, double, rem_f); return;
      case AI_ATAN2: BINLOOP(double, double, atan2); return;
    }
    return;
  case AI_I64:
    switch (c->op) {
      ARITH_CASES(uint64_t)
      ORDER_CASES(int64_t)
      case AI_POW: BINLOOP(int64_t, int64_t, pow_i); return;
      case AI_REM: BINLOOP(int64_t, int64_t, rem_i); return;
    }
    return;
  default:
    switch (c->op) {
      COMMON_CASES(uint8_t)
      case AI_POW: BINLOOP(uint8_t, uint8_t, pow_i); return;
      case AI_REM: BINLOOP(uint8_t, uint8_t, rem_i); return;
    }
    return;
  }
}

static bool is_compare(int op) { return op >= AI_EQ; }

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

static void save_binary_inputs(ai_node *n, int op, ai_tensor *a, ai_tensor *b, int *err) {
  switch (op) {
  case AI_ADD: case AI_SUB: return;
  default:
    if (ai_save(n, a) || ai_save(n, b)) *err = 1;
  }
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
  ai_dtype dt = ai_promote(a->dtype, b->dtype);
  if ((op == AI_DIV || op == AI_ATAN2) && !ai_is_float(dt)) dt = AI_F32;
  ai_dtype odt = is_compare(op) ? AI_U8 : dt;
  ai_tensor *ca = ai_to_dtype(a, dt), *cb = ca ? ai_to_dtype(b, dt) : NULL, *out = NULL;
  if (!cb) goto done;
  if (op == AI_REM && !ai_is_float(dt) && has_zero(cb)) {
    ai_seterror("remainder: integer division by zero");
    goto done;
  }
  out = ai_empty(odt, ndim, shape);
  if (!out) goto done;
  binary_into(op, out, ca, cb, dt);
  if (binop_row[op] >= 0 && ai_is_float(dt)) {
    ai_node *n = NULL;
    ai_tensor *ins[2] = {ca, cb};
    int err = ai_record(&n, (ai_opid)binop_row[op], out, 2, ins);
    if (!err && n) save_binary_inputs(n, op, ca, cb, &err);
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
  ai_dtype dt = a->dtype;
  if ((op == AI_DIV || op == AI_ATAN2) && !ai_is_float(dt))
    return ai_seterror("%s: the result of an integer tensor would be float; use the out-of-place form", name);
  ai_tensor *cb = ai_to_dtype(b, dt);
  if (!cb) return -1;
  if (op == AI_REM && !ai_is_float(dt) && has_zero(cb)) {
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

#define U_NEG(x) (-(x))
#define U_ABS(x) ((x) < 0 ? -(x) : (x))
#define U_SIGN(x) (((x) > 0) - ((x) < 0))
#define U_NOT(x) ((x) == 0)
#define U_ID(x) (x)
#define U_SQUARE(x) ((x) * (x))
#define U_RELU(x) ((x) > 0 ? (x) : 0)
/* integer forms that wrap (-INT64_MIN is INT64_MIN) instead of overflowing */
#define UI_NEG(x) (0 - (uint64_t)(x))
#define UI_ABS(x) ((x) < 0 ? 0 - (uint64_t)(x) : (uint64_t)(x))
#define UI_SQUARE(x) ((uint64_t)(x) * (uint64_t)(x))

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
#define EXPV_f(x) vexpf(x)
#define EXPV_(x) exp(x)

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
#define TANHV_f(x) vtanhf(x)
#define TANHV_(x) tanh(x)

#define FLOAT_UNARY(T, S)                                                                   \
  static inline T sigmoid_##S(T x) { return 1 / (1 + EXPV_##S(-x)); /* inf -> 0, no branch */ } \
  static inline T silu_##S(T x) { return x * sigmoid_##S(x); }                           \
  static inline T gelu_##S(T x) { return (T)0.5 * x * (1 + erf##S(x * (T)0.70710678118654752440)); } \
  static inline T rsqrt_##S(T x) { return 1 / sqrt##S(x); }                              \
  static inline T recip_##S(T x) { return 1 / x; }                                        \
  AI_CLONES static void unary_##S(int op, char **p, const int64_t *st, int64_t n) {        \
    switch (op) {                                                                         \
    case AI_NEG: UNLOOP(T, T, U_NEG); return;                                             \
    case AI_ABS: UNLOOP(T, T, fabs##S); return;                                           \
    case AI_SIGN: UNLOOP(T, T, U_SIGN); return;                                           \
    case AI_EXP: UNLOOP(T, T, EXPV_##S); return;                                          \
    case AI_LOG: UNLOOP(T, T, log##S); return;                                            \
    case AI_LOG1P: UNLOOP(T, T, log1p##S); return;                                        \
    case AI_EXPM1: UNLOOP(T, T, expm1##S); return;                                        \
    case AI_SQRT: UNLOOP(T, T, sqrt##S); return;                                          \
    case AI_RSQRT: UNLOOP(T, T, rsqrt_##S); return;                                       \
    case AI_SIN: UNLOOP(T, T, sin##S); return;                                            \
    case AI_COS: UNLOOP(T, T, cos##S); return;                                            \
    case AI_TANH: UNLOOP(T, T, TANHV_##S); return;                                        \
    case AI_SIGMOID: UNLOOP(T, T, sigmoid_##S); return;                                   \
    case AI_RELU: UNLOOP(T, T, U_RELU); return;                                           \
    case AI_SILU: UNLOOP(T, T, silu_##S); return;                                         \
    case AI_GELU: UNLOOP(T, T, gelu_##S); return;                                         \
    case AI_FLOOR: UNLOOP(T, T, floor##S); return;                                        \
    case AI_CEIL: UNLOOP(T, T, ceil##S); return;                                          \
    case AI_ROUND: UNLOOP(T, T, nearbyint##S); return;                                    \
    case AI_NOT: UNLOOP(T, uint8_t, U_NOT); return;                                       \
    case AI_RECIPROCAL: UNLOOP(T, T, recip_##S); return;                                  \
    case AI_SQUARE: UNLOOP(T, T, U_SQUARE); return;                                       \
    case AI_LOG2: UNLOOP(T, T, log2##S); return;                                          \
    case AI_ERF: UNLOOP(T, T, erf##S); return;                                            \
    }                                                                                     \
  }
FLOAT_UNARY(float, f)
FLOAT_UNARY(double, )

#define INT_UNARY(T, S)                                                                     \
  static void unary_##S(int op, char **p, const int64_t *st, int64_t n) {                  \
    switch (op) {                                                                         \
    case AI_NEG: UNLOOP(T, T, UI_NEG); return;                                            \
    case AI_ABS: UNLOOP(T, T, UI_ABS); return;                                            \
    case AI_SIGN: UNLOOP(T, T, U_SIGN); return;                                           \
    case AI_RELU: UNLOOP(T, T, U_RELU); return;                                           \
    case AI_SQUARE: UNLOOP(T, T, UI_SQUARE); return;                                      \
    case AI_NOT: UNLOOP(T, uint8_t, U_NOT); return;                                       \
    default: UNLOOP(T, T, U_ID); return; /* floor/ceil/round of an integer */             \
    }                                                                                     \
  }
INT_UNARY(int64_t, i64)
INT_UNARY(uint8_t, u8)

static void unary_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  un_ctx *c = ctx;
  switch (c->dt) {
  case AI_F32: unary_f(c->op, p, st, n); return;
  case AI_F64: unary_(c->op, p, st, n); return;
  case AI_I64: unary_i64(c->op, p, st, n); return;
  default: unary_u8(c->op, p, st, n); return;
  }
}

/* Ops that keep an integer dtype; the rest compute in float. */
static bool int_preserving(int op) {
  return op == AI_NEG || op == AI_ABS || op == AI_SIGN || op == AI_RELU || op == AI_SQUARE ||
         op == AI_FLOOR || op == AI_CEIL || op == AI_ROUND || op == AI_NOT;
}

static void run_unary(int op, ai_tensor *out, const ai_tensor *a) {
  ai_iter it;
  ai_iter_init(&it, out->ndim, out->shape);
  ai_iter_add(&it, out);
  ai_iter_add(&it, a);
  un_ctx c = {op, a->dtype, 0, 0};
  ai_iter_run(&it, unary_row, &c);
}

ai_tensor *ai_unary_nograd(ai_unop op, ai_tensor *a) {
  ai_dtype dt = (ai_is_float(a->dtype) || int_preserving(op)) ? a->dtype : AI_F32;
  ai_tensor *ca = ai_to_dtype(a, dt);
  if (!ca) return NULL;
  ai_tensor *out = ai_empty(op == AI_NOT ? AI_U8 : dt, a->ndim, a->shape);
  if (out) run_unary(op, out, ca);
  ai_unref(ca);
  return out;
}

/* What each unary rule needs saved: 1 = the input, 2 = the output, 0 = nothing. */
static int unary_saves(int op) {
  switch (op) {
  case AI_NEG: return 0;
  case AI_EXP: case AI_SQRT: case AI_RSQRT: case AI_TANH: case AI_SIGMOID: case AI_EXPM1:
  case AI_RECIPROCAL: return 2;
  default: return 1;
  }
}

ai_tensor *ai_unary(ai_unop op, ai_tensor *a) {
  if ((int)op < 0 || op >= AI_NUNARY) return AI_ERRNULL("unknown unary op");
  ai_dtype dt = (ai_is_float(a->dtype) || int_preserving(op)) ? a->dtype : AI_F32;
  ai_tensor *ca = ai_to_dtype(a, dt);
  if (!ca) return NULL;
  ai_tensor *out = ai_empty(op == AI_NOT ? AI_U8 : dt, a->ndim, a->shape);
  if (!out) { ai_unref(ca); return NULL; }
  run_unary(op, out, ca);
  if (unop_row[op] >= 0 && ai_is_float(dt)) {
    ai_node *n = NULL;
    int err = ai_record(&n, (ai_opid)unop_row[op], out, 1, &ca);
    if (!err && n) {
      int s = unary_saves(op);
      if (s == 1) err = ai_save(n, ca);
      else if (s == 2) err = ai_save_output(n, out);
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
    case AI_ACTGRAD_SILU: ACTGRAD_LOOP(T, g * sigmoid_##S(v) * (1 + v * (1 - sigmoid_##S(v)))); return; \
    case AI_ACTGRAD_SIGMOID_Y: ACTGRAD_LOOP(T, g * v * (1 - v)); return;                    \
    case AI_ACTGRAD_TANH_Y: ACTGRAD_LOOP(T, g * (1 - v * v)); return;                       \
    case AI_ACTGRAD_RELU: ACTGRAD_LOOP(T, v > 0 ? g : 0); return;                           \
    case AI_ACTGRAD_LEAKY: ACTGRAD_LOOP(T, v > 0 ? g : g * slope); return;                  \
    }                                                                                        \
    return;                                                                                  \
  }

AI_CLONES static void actgrad_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  actgrad_ctx *c = ctx;
  if (c->dt == AI_F32) ACTGRAD_BODY(float, f)
  ACTGRAD_BODY(double, )
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
    if (!err && n) { n->f[0] = p0; n->f[1] = p1; err = ai_save(n, ca); }
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
