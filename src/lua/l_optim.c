/* l_optim.c: the fused in-place parameter updates behind lua/aiart/optim.lua (ai._optim).
 * Each update reads and writes every array once, where a chain of tensor ops would sweep the
 * parameter and its state several times and allocate temporaries on every step. */
#include <math.h>
#include <stdint.h>

#include "lbind.h"

/* Below this many elements a thread team costs more than the loop. */
static const int64_t par_min = (int64_t)1 << 15;

/* ---------------------------------------------------------------- argument checks */

/* Argument i must be a contiguous f32/f64 tensor; `like` (if given) fixes dtype and shape. */
static ai_tensor *check_array(lua_State *L, int i, const char *fn, const char *what,
                              const ai_tensor *like) {
  ai_tensor *t = lai_test(L, i);
  if (!t) return (luaL_error(L, "%s: %s must be a tensor, got %s", fn, what, luaL_typename(L, i)), NULL);
  if (!ai_is_float(t->dtype))
    return (luaL_error(L, "%s: %s must be f32 or f64, got %s", fn, what, ai_dtype_names[t->dtype]), NULL);
  if (like && t->dtype != like->dtype)
    return (luaL_error(L, "%s: %s is %s but the parameter is %s", fn, what, ai_dtype_names[t->dtype],
                       ai_dtype_names[like->dtype]), NULL);
  if (like && !ai_same_shape(t, like)) {
    char a[96], b[96];
    return (luaL_error(L, "%s: %s has shape %s but the parameter has shape %s", fn, what,
                       ai_shape_str(t, a, sizeof a), ai_shape_str(like, b, sizeof b)), NULL);
  }
  if (!ai_is_contiguous(t))
    return (luaL_error(L, "%s: %s must be contiguous (call :contiguous() first)", fn, what), NULL);
  return t;
}

/* An optional state array: nil gives NULL. */
static ai_tensor *opt_array(lua_State *L, int i, const char *fn, const char *what, const ai_tensor *like) {
  if (lua_isnoneornil(L, i)) return NULL;
  return check_array(L, i, fn, what, like);
}

/* The gradient may be a strided view (a user can set p.grad to anything of the right shape):
 * it is only read, so a contiguous copy does. Returns a new reference. Raise no Lua error
 * after this returns until the reference is dropped. */
static ai_tensor *grad_array(lua_State *L, int i, const char *fn, const ai_tensor *param) {
  ai_tensor *g = lai_test(L, i);
  if (!g) return (luaL_error(L, "%s: grad must be a tensor, got %s", fn, luaL_typename(L, i)), NULL);
  if (g->dtype != param->dtype)
    return (luaL_error(L, "%s: grad is %s but the parameter is %s", fn, ai_dtype_names[g->dtype],
                       ai_dtype_names[param->dtype]), NULL);
  if (!ai_same_shape(g, param)) {
    char a[96], b[96];
    return (luaL_error(L, "%s: grad has shape %s but the parameter has shape %s", fn,
                       ai_shape_str(g, a, sizeof a), ai_shape_str(param, b, sizeof b)), NULL);
  }
  bool was = ai_set_grad_enabled(false);
  ai_tensor *c = ai_contiguous(g);
  ai_set_grad_enabled(was);
  if (!c) lai_error(L);
  return c;
}

/* The arrays a kernel writes must not overlap (passing one tensor twice would silently give
 * wrong numbers). They are contiguous, so their memory is [data, data + numel * size). */
static void check_disjoint(lua_State *L, const char *fn, ai_tensor *const *ts, const char *const *names, int n) {
  for (int i = 0; i < n; i++) {
    if (!ts[i]) continue;
    const char *a = ai_data(ts[i]), *a_end = a + ai_numel(ts[i]) * (int64_t)ai_dtype_sizes[ts[i]->dtype];
    for (int j = i + 1; j < n; j++) {
      if (!ts[j]) continue;
      const char *b = ai_data(ts[j]), *b_end = b + ai_numel(ts[j]) * (int64_t)ai_dtype_sizes[ts[j]->dtype];
      if (a < b_end && b < a_end) luaL_error(L, "%s: %s and %s share memory; they must be distinct tensors", fn, names[i], names[j]);
    }
  }
}

static void bump(ai_tensor *t) { if (t) t->storage->version++; }

/* Reads a number option; `required` options have no default. */
static double num_opt(lua_State *L, int opts, const char *fn, const char *k, double def, bool required) {
  if (required) {
    if (!lua_istable(L, opts)) luaL_error(L, "%s: options table expected", fn);
    lua_getfield(L, opts, k);
    int ok;
    double v = lua_tonumberx(L, -1, &ok);
    if (!ok) luaL_error(L, "%s: option '%s' must be a number, got %s", fn, k, luaL_typename(L, -1));
    lua_pop(L, 1);
    return v;
  }
  return lai_optnumfield(L, opts, k, def);
}

/* ---------------------------------------------------------------- kernels
 * Each kernel is written once for T = float and double (KERNELS(T, SFX, SQRT) below). Scalars are
 * folded in double by the caller and rounded to T once. The formulas follow PyTorch's
 * single-tensor implementations term by term, so sequences match up to rounding. */

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

/* ---------------------------------------------------------------- Lua functions */

/* adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq_or_nil,
 *           {lr=, beta1=, beta2=, eps=, weight_decay=0, step=, decoupled=false, maximize=false})
 * step is the 1-based count of this update (for the bias corrections). decoupled=true is
 * AdamW's decay of the weights; false adds weight_decay*param to the gradient (Adam's L2). */
static int l_adam_step(lua_State *L) {
  const char *fn = "adam_step";
  ai_tensor *p = check_array(L, 1, fn, "param", NULL);
  ai_tensor *m = check_array(L, 3, fn, "exp_avg", p), *v = check_array(L, 4, fn, "exp_avg_sq", p);
  ai_tensor *vmax = opt_array(L, 5, fn, "max_exp_avg_sq", p);
  adam_args a;
  a.lr = num_opt(L, 6, fn, "lr", 0, true);
  a.beta1 = num_opt(L, 6, fn, "beta1", 0.9, false);
  a.beta2 = num_opt(L, 6, fn, "beta2", 0.999, false);
  a.eps = num_opt(L, 6, fn, "eps", 1e-8, false);
  a.wd = num_opt(L, 6, fn, "weight_decay", 0, false);
  double step = num_opt(L, 6, fn, "step", 0, true);
  if (step < 1) return luaL_error(L, "%s: option 'step' must be at least 1, got %g", fn, step);
  a.decoupled = lai_optboolfield(L, 6, "decoupled", 0);
  a.maximize = lai_optboolfield(L, 6, "maximize", 0);
  bool amsgrad = lai_optboolfield(L, 6, "amsgrad", vmax != NULL);
  if (amsgrad && !vmax) return luaL_error(L, "%s: amsgrad needs max_exp_avg_sq (argument 5)", fn);
  if (!amsgrad) vmax = NULL;
  a.step_size = a.lr / (1 - pow(a.beta1, step));
  a.bc2_sqrt = sqrt(1 - pow(a.beta2, step));
  check_disjoint(L, fn, (ai_tensor *[]){p, m, v, vmax}, (const char *[]){"param", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}, 4);
  ai_tensor *g = grad_array(L, 2, fn, p);
  int64_t n = ai_numel(p);
  if (p->dtype == AI_F32) adam_f32(ai_data(p), ai_data(g), ai_data(m), ai_data(v), DATA(vmax), n, &a);
  else adam_f64(ai_data(p), ai_data(g), ai_data(m), ai_data(v), DATA(vmax), n, &a);
  ai_unref(g);
  bump(p), bump(m), bump(v), bump(vmax);
  return 0;
}

/* sgd_step(param, grad, momentum_buffer_or_nil, {lr=, momentum=0, dampening=0,
 *          weight_decay=0, nesterov=false, maximize=false, first=false})
 * first=true on the step that creates the buffer (which must hold zeros): it is then set to
 * the gradient, undamped. */
static int l_sgd_step(lua_State *L) {
  const char *fn = "sgd_step";
  ai_tensor *p = check_array(L, 1, fn, "param", NULL);
  ai_tensor *buf = opt_array(L, 3, fn, "momentum_buffer", p);
  sgd_args a;
  a.lr = num_opt(L, 4, fn, "lr", 0, true);
  a.momentum = num_opt(L, 4, fn, "momentum", 0, false);
  a.dampening = num_opt(L, 4, fn, "dampening", 0, false);
  a.wd = num_opt(L, 4, fn, "weight_decay", 0, false);
  a.nesterov = lai_optboolfield(L, 4, "nesterov", 0);
  a.maximize = lai_optboolfield(L, 4, "maximize", 0);
  a.first = lai_optboolfield(L, 4, "first", 0);
  if (a.momentum != 0 && !buf) return luaL_error(L, "%s: momentum needs a momentum_buffer (argument 3)", fn);
  check_disjoint(L, fn, (ai_tensor *[]){p, buf}, (const char *[]){"param", "momentum_buffer"}, 2);
  ai_tensor *g = grad_array(L, 2, fn, p);
  int64_t n = ai_numel(p);
  if (p->dtype == AI_F32) sgd_f32(ai_data(p), ai_data(g), DATA(buf), n, &a);
  else sgd_f64(ai_data(p), ai_data(g), DATA(buf), n, &a);
  ai_unref(g);
  bump(p), bump(buf);
  return 0;
}

/* rmsprop_step(param, grad, square_avg, grad_avg_or_nil, momentum_buffer_or_nil,
 *              {lr=, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, maximize=false})
 * A grad_avg makes it the centered variant; a momentum buffer needs momentum > 0. */
static int l_rmsprop_step(lua_State *L) {
  const char *fn = "rmsprop_step";
  ai_tensor *p = check_array(L, 1, fn, "param", NULL);
  ai_tensor *sq = check_array(L, 3, fn, "square_avg", p);
  ai_tensor *gavg = opt_array(L, 4, fn, "grad_avg", p), *buf = opt_array(L, 5, fn, "momentum_buffer", p);
  rmsprop_args a;
  a.lr = num_opt(L, 6, fn, "lr", 0, true);
  a.alpha = num_opt(L, 6, fn, "alpha", 0.99, false);
  a.eps = num_opt(L, 6, fn, "eps", 1e-8, false);
  a.wd = num_opt(L, 6, fn, "weight_decay", 0, false);
  a.momentum = num_opt(L, 6, fn, "momentum", 0, false);
  a.maximize = lai_optboolfield(L, 6, "maximize", 0);
  if ((a.momentum > 0) != (buf != NULL))
    return luaL_error(L, "%s: a momentum_buffer (argument 5) goes with momentum > 0, and only then", fn);
  check_disjoint(L, fn, (ai_tensor *[]){p, sq, gavg, buf}, (const char *[]){"param", "square_avg", "grad_avg", "momentum_buffer"}, 4);
  ai_tensor *g = grad_array(L, 2, fn, p);
  int64_t n = ai_numel(p);
  if (p->dtype == AI_F32) rmsprop_f32(ai_data(p), ai_data(g), ai_data(sq), DATA(gavg), DATA(buf), n, &a);
  else rmsprop_f64(ai_data(p), ai_data(g), ai_data(sq), DATA(gavg), DATA(buf), n, &a);
  ai_unref(g);
  bump(p), bump(sq), bump(gavg), bump(buf);
  return 0;
}

/* adagrad_step(param, grad, state_sum, {lr=, eps=1e-10, weight_decay=0, maximize=false})
 * lr is this step's decayed rate lr / (1 + (step - 1) * lr_decay), computed by the caller. */
static int l_adagrad_step(lua_State *L) {
  const char *fn = "adagrad_step";
  ai_tensor *p = check_array(L, 1, fn, "param", NULL);
  ai_tensor *sum = check_array(L, 3, fn, "state_sum", p);
  adagrad_args a;
  a.clr = num_opt(L, 4, fn, "lr", 0, true);
  a.eps = num_opt(L, 4, fn, "eps", 1e-10, false);
  a.wd = num_opt(L, 4, fn, "weight_decay", 0, false);
  a.maximize = lai_optboolfield(L, 4, "maximize", 0);
  check_disjoint(L, fn, (ai_tensor *[]){p, sum}, (const char *[]){"param", "state_sum"}, 2);
  ai_tensor *g = grad_array(L, 2, fn, p);
  int64_t n = ai_numel(p);
  if (p->dtype == AI_F32) adagrad_f32(ai_data(p), ai_data(g), ai_data(sum), n, &a);
  else adagrad_f64(ai_data(p), ai_data(g), ai_data(sum), n, &a);
  ai_unref(g);
  bump(p), bump(sum);
  return 0;
}

/* lerp_(dst, src, weight): dst += weight * (src - dst), in place (EMA's update). */
static int l_lerp_(lua_State *L) {
  const char *fn = "lerp_";
  ai_tensor *dst = check_array(L, 1, fn, "dst", NULL);
  ai_tensor *src = check_array(L, 2, fn, "src", dst);
  double w = luaL_checknumber(L, 3);
  check_disjoint(L, fn, (ai_tensor *[]){dst, src}, (const char *[]){"dst", "src"}, 2);
  if (dst->dtype == AI_F32) lerp_f32(ai_data(dst), ai_data(src), ai_numel(dst), w);
  else lerp_f64(ai_data(dst), ai_data(src), ai_numel(dst), w);
  bump(dst);
  return 0;
}

/* Adds the table `_optim` to the module table (index -2; the method table is at -1). */
void lai_open_optim(lua_State *L) {
  const luaL_Reg fns[] = {{"adam_step", l_adam_step}, {"sgd_step", l_sgd_step},
                          {"rmsprop_step", l_rmsprop_step}, {"adagrad_step", l_adagrad_step},
                          {"lerp_", l_lerp_}, {NULL, NULL}};
  lua_newtable(L);
  lai_register(L, fns);
  lua_setfield(L, -3, "_optim");
}
