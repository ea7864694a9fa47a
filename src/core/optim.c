/* optim.c: the fused in-place parameter updates (optim.h): the argument checks, then one
 * element loop per optimizer, written once for f32 and f64. */
#include <math.h>
#include <stdint.h>

#include "optim.h"

/* Below this many elements a thread team costs more than the loop. */
static const int64_t par_min = (int64_t)1 << 15;

/* ---------------------------------------------------------------- argument checks */

/* t must be a contiguous f32/f64 tensor; `like` (if given) fixes dtype and shape. */
static int check_array(const ai_tensor *t, const char *fn, const char *what, const ai_tensor *like) {
  if (!ai_is_float(t->dtype))
    return ai_seterror("%s: %s must be f32 or f64, got %s", fn, what, ai_dtype_names[t->dtype]);
  if (like && t->dtype != like->dtype)
    return ai_seterror("%s: %s is %s but the parameter is %s", fn, what, ai_dtype_names[t->dtype],
                       ai_dtype_names[like->dtype]);
  if (like && !ai_same_shape(t, like)) {
    char a[96], b[96];
    return ai_seterror("%s: %s has shape %s but the parameter has shape %s", fn, what,
                       ai_shape_str(t, a, sizeof a), ai_shape_str(like, b, sizeof b));
  }
  if (!ai_is_contiguous(t))
    return ai_seterror("%s: %s must be contiguous (call :contiguous() first)", fn, what);
  return 0;
}

/* Checks the n arrays of one update (ts[0] is the parameter; NULL entries are absent state). */
static int check_arrays(const char *fn, ai_tensor *const *ts, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (ts[i] && check_array(ts[i], fn, names[i], i ? ts[0] : NULL)) return -1;
  return 0;
}

/* The arrays a kernel writes must not overlap. They are contiguous, so their memory is
 * [data, data + numel * size). */
static int check_disjoint(const char *fn, ai_tensor *const *ts, const char *const *names, int n) {
  for (int i = 0; i < n; i++) {
    if (!ts[i]) continue;
    const char *a = ai_data(ts[i]), *a_end = a + ai_numel(ts[i]) * (int64_t)ai_dtype_sizes[ts[i]->dtype];
    for (int j = i + 1; j < n; j++) {
      if (!ts[j]) continue;
      const char *b = ai_data(ts[j]), *b_end = b + ai_numel(ts[j]) * (int64_t)ai_dtype_sizes[ts[j]->dtype];
      if (a < b_end && b < a_end)
        return ai_seterror("%s: %s and %s share memory; they must be distinct tensors", fn, names[i], names[j]);
    }
  }
  return 0;
}

/* The gradient may be a strided view (a user can set p.grad to anything of the right shape):
 * it is only read, so a contiguous copy does. Returns a new reference, or NULL. */
static ai_tensor *grad_array(ai_tensor *g, const char *fn, const ai_tensor *param) {
  if (g->dtype != param->dtype)
    return AI_ERRNULL("%s: grad is %s but the parameter is %s", fn, ai_dtype_names[g->dtype],
                      ai_dtype_names[param->dtype]);
  if (!ai_same_shape(g, param)) {
    char a[96], b[96];
    return AI_ERRNULL("%s: grad has shape %s but the parameter has shape %s", fn,
                      ai_shape_str(g, a, sizeof a), ai_shape_str(param, b, sizeof b));
  }
  bool was = ai_set_grad_enabled(false);
  ai_tensor *c = ai_contiguous(g);
  ai_set_grad_enabled(was);
  return c;
}

/* The checks that follow the options: the arrays are disjoint, and the gradient fits; returns
 * the gradient as a contiguous new reference, or NULL. */
static ai_tensor *prepare(const char *fn, ai_tensor *const *ts, const char *const *names, int n, ai_tensor *g) {
  if (check_disjoint(fn, ts, names, n)) return NULL;
  return grad_array(g, fn, ts[0]);
}

/* Every array written has its storage version bumped, as any in-place write does. */
static void bump(ai_tensor *const *ts, int n) {
  for (int i = 0; i < n; i++)
    if (ts[i]) ts[i]->storage->version++;
}

/* ---------------------------------------------------------------- kernels
 * Each kernel is written once for T = float and double (KERNELS(T, SFX, SQRT) below). Scalars are
 * folded in double by the caller and rounded to T once. */

typedef struct {
  double lr, beta1, beta2, eps, wd, step_size, bc2_sqrt;
  bool decoupled, maximize;
} adam_args;

typedef struct {
  double lr, momentum, dampening, wd;
  bool nesterov, maximize, first;
} sgd_args;

typedef struct {
  double lr, alpha, eps, wd, momentum;
  bool maximize;
} rmsprop_args;

typedef struct {
  double clr, eps, wd;
  bool maximize;
} adagrad_args;

/* The element loops: threads for large arrays, SIMD always. Loop-invariant choices (maximize,
 * decoupled decay, nesterov) enter as coefficients (1, 0 or -1, exact in floating point) rather
 * than branches, and optional state gets its own loop, so the loops vectorize. The loops with a
 * square root vectorize only with -fno-math-errno: C's errno check on sqrt is a branch (dead
 * here, the arguments are never negative). */
#define PARFOR _Pragma("omp parallel for simd if(parallel: n >= par_min) schedule(static)")

#define KERNELS(T, SFX, SQRT)                                                                    \
  /* Adam/AdamW: p, m, v, vmax (NULL without amsgrad) updated in place from g, all n long.     \
   * L2 decay (Adam) adds wd*p to the gradient; decoupled decay (AdamW) scales p by 1 - lr*wd. */ \
  static void adam_##SFX(T *p, const T *g, T *m, T *v, T *vmax, int64_t n, const adam_args *a) { \
    const T b1 = (T)a->beta1, b2 = (T)a->beta2, eps = (T)a->eps, sgn = a->maximize ? -1 : 1;   \
    const T wd_l2 = a->decoupled ? 0 : (T)a->wd, decay = (T)(a->decoupled ? 1.0 - a->lr * a->wd : 1.0); \
    const T step = (T)a->step_size, bc2 = (T)a->bc2_sqrt;                                       \
    if (vmax) {                                                                                  \
      PARFOR for (int64_t i = 0; i < n; i++) {                                                   \
        T gi = sgn * g[i] + wd_l2 * p[i];                                                        \
        T mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi;                  \
        T vx = vmax[i] > vi ? vmax[i] : vi;                                                      \
        m[i] = mi, v[i] = vi, vmax[i] = vx;                                                      \
        p[i] = p[i] * decay - step * mi / (SQRT(vx) / bc2 + eps);                                \
      }                                                                                          \
    } else {                                                                                     \
      PARFOR for (int64_t i = 0; i < n; i++) {                                                   \
        T gi = sgn * g[i] + wd_l2 * p[i];                                                        \
        T mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi;                  \
        m[i] = mi, v[i] = vi;                                                                    \
        p[i] = p[i] * decay - step * mi / (SQRT(vi) / bc2 + eps);                                \
      }                                                                                          \
    }                                                                                            \
  }                                                                                              \
                                                                                                 \
  /* SGD: p and buf (NULL without momentum) updated from g. The buffer starts at zero, and on   \
   * the first step buf = 0 * buf + 1 * d_p: PyTorch's undamped first step, exactly. */         \
  static void sgd_##SFX(T *p, const T *g, T *buf, int64_t n, const sgd_args *a) {              \
    const T lr = (T)a->lr, wd = (T)a->wd, sgn = a->maximize ? -1 : 1;                            \
    const T mb = a->first ? 0 : (T)a->momentum, db = a->first ? 1 : (T)(1.0 - a->dampening);    \
    /* nesterov: d + momentum * buf; otherwise buf */                                            \
    const T cd = a->nesterov ? 1 : 0, cb = a->nesterov ? (T)a->momentum : 1;                     \
    if (buf) {                                                                                   \
      PARFOR for (int64_t i = 0; i < n; i++) {                                                   \
        T d = sgn * g[i] + wd * p[i];                                                            \
        T b = mb * buf[i] + db * d;                                                              \
        buf[i] = b;                                                                              \
        p[i] -= lr * (cd * d + cb * b);                                                          \
      }                                                                                          \
    } else {                                                                                     \
      PARFOR for (int64_t i = 0; i < n; i++) p[i] -= lr * (sgn * g[i] + wd * p[i]);             \
    }                                                                                            \
  }                                                                                              \
                                                                                                 \
  /* RMSprop: sq (square_avg), gavg (centered only), buf (momentum only) updated from g. */     \
  static void rmsprop_##SFX(T *p, const T *g, T *sq, T *gavg, T *buf, int64_t n,               \
                            const rmsprop_args *a) {                                             \
    const T lr = (T)a->lr, al = (T)a->alpha, eps = (T)a->eps, wd = (T)a->wd, mom = (T)a->momentum; \
    const T sgn = a->maximize ? -1 : 1;                                                          \
    PARFOR for (int64_t i = 0; i < n; i++) {                                                     \
      T gi = sgn * g[i] + wd * p[i];                                                             \
      T s = al * sq[i] + (1 - al) * gi * gi;                                                     \
      sq[i] = s;                                                                                 \
      if (gavg) {                                                                                \
        T ga = al * gavg[i] + (1 - al) * gi;                                                     \
        gavg[i] = ga;                                                                            \
        s -= ga * ga;                                                                            \
      }                                                                                          \
      T avg = SQRT(s) + eps;                                                                     \
      if (buf) {                                                                                 \
        T b = mom * buf[i] + gi / avg;                                                           \
        buf[i] = b;                                                                              \
        p[i] -= lr * b;                                                                          \
      } else {                                                                                   \
        p[i] -= lr * gi / avg;                                                                   \
      }                                                                                          \
    }                                                                                            \
  }                                                                                              \
                                                                                                 \
  /* Adagrad: sum accumulates g^2; clr is the decayed learning rate of this step. */            \
  static void adagrad_##SFX(T *p, const T *g, T *sum, int64_t n, const adagrad_args *a) {      \
    const T clr = (T)a->clr, eps = (T)a->eps, wd = (T)a->wd, sgn = a->maximize ? -1 : 1;         \
    PARFOR for (int64_t i = 0; i < n; i++) {                                                     \
      T gi = sgn * g[i] + wd * p[i];                                                             \
      T s = sum[i] + gi * gi;                                                                    \
      sum[i] = s;                                                                                \
      p[i] -= clr * gi / (SQRT(s) + eps);                                                        \
    }                                                                                            \
  }                                                                                              \
                                                                                                 \
  /* dst += w * (src - dst): the exponential moving average of EMA. */                          \
  static void lerp_##SFX(T *dst, const T *src, int64_t n, double weight) {                     \
    const T w = (T)weight;                                                                       \
    PARFOR for (int64_t i = 0; i < n; i++) dst[i] += w * (src[i] - dst[i]);                      \
  }

KERNELS(float, f32, sqrtf)
KERNELS(double, f64, sqrt)
#undef KERNELS

#define DATA(t) ((t) ? ai_data(t) : NULL)

/* ---------------------------------------------------------------- updates */

int ai_adam_step(ai_tensor *p, ai_tensor *g, ai_tensor *m, ai_tensor *v, ai_tensor *vmax,
                 const ai_adam_opts *o) {
  const char *fn = "adam_step";
  ai_tensor *ts[] = {p, m, v, vmax};
  const char *names[] = {"param", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  if (check_arrays(fn, ts, names, 4)) return -1;
  if (o->step < 1) return ai_seterror("%s: option 'step' must be at least 1, got %g", fn, o->step);
  if (o->amsgrad && !vmax) return ai_seterror("%s: amsgrad needs max_exp_avg_sq (argument 5)", fn);
  if (!o->amsgrad) ts[3] = vmax = NULL;
  adam_args a = {.lr = o->lr, .beta1 = o->beta1, .beta2 = o->beta2, .eps = o->eps, .wd = o->weight_decay,
                 .decoupled = o->decoupled, .maximize = o->maximize};
  a.step_size = a.lr / (1 - pow(a.beta1, o->step));
  a.bc2_sqrt = sqrt(1 - pow(a.beta2, o->step));
  ai_tensor *gc = prepare(fn, ts, names, 4, g);
  if (!gc) return -1;
  int64_t n = ai_numel(p);
  if (p->dtype == AI_F32) adam_f32(ai_data(p), ai_data(gc), ai_data(m), ai_data(v), DATA(vmax), n, &a);
  else adam_f64(ai_data(p), ai_data(gc), ai_data(m), ai_data(v), DATA(vmax), n, &a);
  ai_unref(gc);
  bump(ts, 4);
  return 0;
}

int ai_sgd_step(ai_tensor *p, ai_tensor *g, ai_tensor *buf, const ai_sgd_opts *o) {
  const char *fn = "sgd_step";
  ai_tensor *ts[] = {p, buf};
  const char *names[] = {"param", "momentum_buffer"};
  if (check_arrays(fn, ts, names, 2)) return -1;
  if (o->momentum != 0 && !buf) return ai_seterror("%s: momentum needs a momentum_buffer (argument 3)", fn);
  sgd_args a = {.lr = o->lr, .momentum = o->momentum, .dampening = o->dampening, .wd = o->weight_decay,
                .nesterov = o->nesterov, .maximize = o->maximize, .first = o->first};
  ai_tensor *gc = prepare(fn, ts, names, 2, g);
  if (!gc) return -1;
  int64_t n = ai_numel(p);
  if (p->dtype == AI_F32) sgd_f32(ai_data(p), ai_data(gc), DATA(buf), n, &a);
  else sgd_f64(ai_data(p), ai_data(gc), DATA(buf), n, &a);
  ai_unref(gc);
  bump(ts, 2);
  return 0;
}

int ai_rmsprop_step(ai_tensor *p, ai_tensor *g, ai_tensor *sq, ai_tensor *gavg, ai_tensor *buf,
                    const ai_rmsprop_opts *o) {
  const char *fn = "rmsprop_step";
  ai_tensor *ts[] = {p, sq, gavg, buf};
  const char *names[] = {"param", "square_avg", "grad_avg", "momentum_buffer"};
  if (check_arrays(fn, ts, names, 4)) return -1;
  if ((o->momentum > 0) != (buf != NULL))
    return ai_seterror("%s: a momentum_buffer (argument 5) goes with momentum > 0, and only then", fn);
  rmsprop_args a = {.lr = o->lr, .alpha = o->alpha, .eps = o->eps, .wd = o->weight_decay,
                    .momentum = o->momentum, .maximize = o->maximize};
  ai_tensor *gc = prepare(fn, ts, names, 4, g);
  if (!gc) return -1;
  int64_t n = ai_numel(p);
  if (p->dtype == AI_F32) rmsprop_f32(ai_data(p), ai_data(gc), ai_data(sq), DATA(gavg), DATA(buf), n, &a);
  else rmsprop_f64(ai_data(p), ai_data(gc), ai_data(sq), DATA(gavg), DATA(buf), n, &a);
  ai_unref(gc);
  bump(ts, 4);
  return 0;
}

int ai_adagrad_step(ai_tensor *p, ai_tensor *g, ai_tensor *sum, const ai_adagrad_opts *o) {
  const char *fn = "adagrad_step";
  ai_tensor *ts[] = {p, sum};
  const char *names[] = {"param", "state_sum"};
  if (check_arrays(fn, ts, names, 2)) return -1;
  adagrad_args a = {.clr = o->lr, .eps = o->eps, .wd = o->weight_decay, .maximize = o->maximize};
  ai_tensor *gc = prepare(fn, ts, names, 2, g);
  if (!gc) return -1;
  int64_t n = ai_numel(p);
  if (p->dtype == AI_F32) adagrad_f32(ai_data(p), ai_data(gc), ai_data(sum), n, &a);
  else adagrad_f64(ai_data(p), ai_data(gc), ai_data(sum), n, &a);
  ai_unref(gc);
  bump(ts, 2);
  return 0;
}

int ai_lerp_(ai_tensor *dst, ai_tensor *src, double weight) {
  const char *fn = "lerp_";
  ai_tensor *ts[] = {dst, src};
  const char *names[] = {"dst", "src"};
  if (check_arrays(fn, ts, names, 2) || check_disjoint(fn, ts, names, 2)) return -1;
  if (dst->dtype == AI_F32) lerp_f32(ai_data(dst), ai_data(src), ai_numel(dst), weight);
  else lerp_f64(ai_data(dst), ai_data(src), ai_numel(dst), weight);
  bump(ts, 1);
  return 0;
}
