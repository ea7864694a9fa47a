/* l_tensor_new.c: the tensor constructors: ai.tensor from nested tables, zeros/ones/empty/full,
 * rand/randn/randint/randperm, arange/range/linspace/eye and their *_like forms. */
#include <math.h>

#include "lbind.h"

/* ai.tensor(data, opts): data is a number, a nested table of numbers/booleans, or a tensor. */
static int infer_nested(lua_State *L, int idx, int depth, int64_t *shape, int *ndim, bool *isfloat, bool *isbool) {
  int t = lua_type(L, idx);
  if (t == LUA_TNUMBER) {
    if (!lua_isinteger(L, idx)) *isfloat = true;
    *isbool = false;
    if (*ndim < 0) *ndim = depth;
    return *ndim == depth;
  }
  if (t == LUA_TBOOLEAN) {
    if (*ndim < 0) *ndim = depth;
    return *ndim == depth;
  }
  if (t != LUA_TTABLE || depth >= AI_MAXDIM) return 0;
  int64_t n = (int64_t)lua_rawlen(L, idx);
  if (*ndim >= 0 && depth >= *ndim) return 0;
  if (shape[depth] < 0) shape[depth] = n;
  else if (shape[depth] != n) return 0;
  if (n == 0) { if (*ndim < 0) *ndim = depth + 1; return *ndim == depth + 1; }
  for (int64_t i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    int ok = infer_nested(L, lua_gettop(L), depth + 1, shape, ndim, isfloat, isbool);
    lua_pop(L, 1);
    if (!ok) return 0;
  }
  return 1;
}

static void fill_nested(lua_State *L, int idx, ai_tensor *t, int depth, int64_t *pos) {
  if (depth == t->ndim) {
    if (lua_isinteger(L, idx)) ai_set_int(t, pos, lua_tointeger(L, idx)); /* exact for i64 */
    else ai_set(t, pos, lua_isboolean(L, idx) ? lua_toboolean(L, idx) : lua_tonumber(L, idx));
    return;
  }
  for (int64_t i = 0; i < t->shape[depth]; i++) {
    lua_rawgeti(L, idx, i + 1);
    pos[depth] = i;
    fill_nested(L, lua_gettop(L), t, depth + 1, pos);
    lua_pop(L, 1);
  }
}

static const char *const TENSOR_OPTS[] = {"dtype", "requires_grad", NULL};

static int l_tensor(lua_State *L) {
  lai_checkmax(L, 2);
  lai_checkopts(L, 2, TENSOR_OPTS);
  ai_tensor *src = lai_test(L, 1);
  if (src) {
    ai_dtype dt = lai_optdtype(L, 2, src->dtype);
    bool was = ai_set_grad_enabled(false);
    ai_tensor *c = ai_clone(src), *r = c ? ai_to_dtype(c, dt) : NULL;
    ai_set_grad_enabled(was);
    ai_unref(c);
    lai_push(L, r);
    lai_apply_requires_grad(L, 2);
    return 1;
  }
  int64_t shape[AI_MAXDIM];
  for (int d = 0; d < AI_MAXDIM; d++) shape[d] = -1;
  int ndim = -1;
  bool isfloat = false, isbool = lua_type(L, 1) == LUA_TBOOLEAN || lua_type(L, 1) == LUA_TTABLE;
  if (!infer_nested(L, 1, 0, shape, &ndim, &isfloat, &isbool))
    return luaL_argerror(L, 1, "expected a number, a boolean or a rectangular nested table of them "
                               "(at most 8 levels deep: tensors have at most 8 dimensions)");
  if (ndim < 0) ndim = 0;
  for (int d = 0; d < ndim; d++) if (shape[d] < 0) shape[d] = 0;
  int64_t count = 1;
  for (int d = 0; d < ndim; d++) count *= shape[d];
  /* numbers give f32 (the default dtype), integers included; booleans give u8 */
  ai_dtype dt = lai_optdtype(L, 2, isbool && count > 0 ? AI_U8 : AI_F32);
  ai_tensor *t = ai_empty(dt, ndim, shape);
  if (!t) return lai_error(L);
  int64_t pos[AI_MAXDIM] = {0};
  bool was = ai_set_grad_enabled(false);
  fill_nested(L, 1, t, 0, pos);
  ai_set_grad_enabled(was);
  lai_push(L, t);
  lai_apply_requires_grad(L, 2);
  return 1;
}

/* zeros/ones/empty/rand/randn share: shape from varargs or a table, then an options table
 * with the keys `known`, then nothing */
static int shape_and_opts(lua_State *L, int arg, int64_t *shape, int *opts, const char *const *known) {
  int n = lai_checkshape(L, arg, shape);
  int next = (lua_istable(L, arg) && !lai_test(L, arg)) ? arg + 1 : arg + n;
  if (!lua_isnoneornil(L, next) && !lua_istable(L, next))
    luaL_argerror(L, next, lua_pushfstring(L, "size or options table expected, got %s", luaL_typename(L, next)));
  lai_checkmax(L, next);
  lai_checkopts(L, next, known);
  *opts = next;
  return n;
}

typedef enum { C_EMPTY, C_ZEROS, C_ONES, C_RAND, C_RANDN } ctor_kind;

static int make_filled(lua_State *L, int nd, const int64_t *shape, int opts, ctor_kind k, ai_dtype def) {
  ai_dtype dt = lai_optdtype(L, opts, def);
  if ((k == C_RAND || k == C_RANDN) && !ai_is_float(dt))
    return luaL_error(L, "%s: dtype must be f32 or f64", k == C_RAND ? "rand" : "randn");
  ai_tensor *t = k == C_ZEROS ? ai_zeros(dt, nd, shape) : ai_empty(dt, nd, shape);
  if (!t) return lai_error(L);
  int rc = 0;
  bool was = ai_set_grad_enabled(false);
  if (k == C_ONES) rc = ai_fill_(t, 1);
  else if (k == C_RAND) rc = ai_rand_(t, 0, 1);
  else if (k == C_RANDN) rc = ai_randn_(t, 0, 1);
  ai_set_grad_enabled(was);
  if (rc) { ai_unref(t); return lai_error(L); }
  lai_push(L, t);
  lai_apply_requires_grad(L, opts);
  return 1;
}

static int ctor(lua_State *L, ctor_kind k) {
  int64_t shape[AI_MAXDIM];
  int opts, nd = shape_and_opts(L, 1, shape, &opts, TENSOR_OPTS);
  return make_filled(L, nd, shape, opts, k, AI_F32);
}
static int l_empty(lua_State *L) { return ctor(L, C_EMPTY); }
static int l_zeros(lua_State *L) { return ctor(L, C_ZEROS); }
static int l_ones(lua_State *L) { return ctor(L, C_ONES); }
static int l_rand(lua_State *L) { return ctor(L, C_RAND); }
static int l_randn(lua_State *L) { return ctor(L, C_RANDN); }

static int like(lua_State *L, ctor_kind k) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 2);
  lai_checkopts(L, 2, TENSOR_OPTS);
  return make_filled(L, t->ndim, t->shape, 2, k, t->dtype);
}
static int l_empty_like(lua_State *L) { return like(L, C_EMPTY); }
static int l_zeros_like(lua_State *L) { return like(L, C_ZEROS); }
static int l_ones_like(lua_State *L) { return like(L, C_ONES); }
static int l_rand_like(lua_State *L) { return like(L, C_RAND); }
static int l_randn_like(lua_State *L) { return like(L, C_RANDN); }

static int full_common(lua_State *L, int nd, const int64_t *shape, int valarg, int opts, ai_dtype def) {
  lai_checkmax(L, opts);
  lai_checkopts(L, opts, TENSOR_OPTS);
  bool isbool = lua_isboolean(L, valarg);
  double v = isbool ? lua_toboolean(L, valarg) : luaL_checknumber(L, valarg);
  if (isbool && def == AI_F32) def = AI_U8;
  ai_dtype dt = lai_optdtype(L, opts, def);
  ai_tensor *t;
  if (lua_isinteger(L, valarg) && !ai_is_float(dt)) { /* exact for i64 */
    t = ai_empty(dt, nd, shape);
    if (t && ai_fill_int_(t, lua_tointeger(L, valarg))) { ai_unref(t); t = NULL; }
  } else {
    t = ai_full(dt, nd, shape, v);
  }
  lai_push(L, t);
  lai_apply_requires_grad(L, opts);
  return 1;
}
/* ai.full({2,3}, value, opts) */
static int l_full(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int64_t shape[AI_MAXDIM];
  int nd = lai_checkshape(L, 1, shape);
  return full_common(L, nd, shape, 2, 3, AI_F32);
}
static int l_full_like(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  return full_common(L, t->ndim, t->shape, 2, 3, t->dtype);
}

/* ai.randint(lo, hi, shape..., opts): integers in [lo, hi], inclusive like math.random */
static int l_randint(lua_State *L) {
  lua_Integer lo = lai_checkint(L, 1), hi = lai_checkint(L, 2);
  if (lo > hi) return luaL_error(L, "randint: empty range [%I, %I]", (LUAI_UACINT)lo, (LUAI_UACINT)hi);
  if (hi == LUA_MAXINTEGER) return luaL_argerror(L, 2, "upper bound too large");
  int64_t shape[AI_MAXDIM];
  int opts, nd = shape_and_opts(L, 3, shape, &opts, LAI_OPTS("dtype"));
  ai_tensor *t = ai_empty(lai_optdtype(L, opts, AI_I64), nd, shape);
  if (!t) return lai_error(L);
  if (ai_randint_(t, lo, hi + 1)) { ai_unref(t); return lai_error(L); }
  return lai_push(L, t);
}

/* ai.randperm(n): a random permutation of 1..n */
static int l_randperm(lua_State *L) {
  lai_checkmax(L, 1);
  lua_Integer n = lai_checkint(L, 1);
  ai_tensor *p = ai_randperm(n);
  if (!p) return lai_error(L);
  ai_tensor *r = ai_binary_scalar(AI_ADD, p, 1, false);
  ai_unref(p);
  return lai_push(L, r);
}

/* ai.arange(stop) / ai.arange(start, stop[, step]): end-exclusive, as PyTorch */
static int l_arange(lua_State *L) {
  int top = lua_gettop(L), opts = top;
  while (opts > 0 && lua_istable(L, opts)) opts--;
  int nnum = opts;
  opts = nnum + 1;
  double start = 0, stop, step = 1;
  bool allint = true;
  for (int i = 1; i <= nnum; i++) if (!lua_isinteger(L, i)) allint = false;
  if (nnum == 1) stop = luaL_checknumber(L, 1);
  else { start = luaL_checknumber(L, 1); stop = luaL_checknumber(L, 2); step = nnum >= 3 ? luaL_checknumber(L, 3) : 1; }
  if (nnum == 0) return luaL_error(L, "arange: expected arange(stop) or arange(start, stop[, step])");
  if (nnum > 3) return lai_too_many(L, 3);
  lai_checkmax(L, opts);
  lai_checkopts(L, opts, TENSOR_OPTS);
  ai_tensor *t = ai_arange(lai_optdtype(L, opts, allint ? AI_I64 : AI_F32), start, stop, step);
  lai_push(L, t);
  lai_apply_requires_grad(L, opts);
  return 1;
}

/* ai.range(a, b[, step]): inclusive of b, as Torch7's torch.range and Lua's numeric for */
static int l_range(lua_State *L) {
  int opts = lua_istable(L, 3) ? 3 : 4;
  lai_checkmax(L, opts);
  lai_checkopts(L, opts, LAI_OPTS("dtype"));
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2), step = opts == 3 ? 1 : luaL_optnumber(L, 3, 1);
  bool allint = lua_isinteger(L, 1) && lua_isinteger(L, 2) && (opts == 3 || lua_isnoneornil(L, 3) || lua_isinteger(L, 3));
  if (step == 0) return luaL_error(L, "range: step must be non-zero");
  double n = floor((b - a) / step + 1e-9) + 1;
  if (n < 0) n = 0;
  ai_tensor *t = ai_arange(lai_optdtype(L, opts, allint ? AI_I64 : AI_F32), a, a + (n - 0.5) * step, step);
  return lai_push(L, t);
}

static int l_linspace(lua_State *L) {
  lai_checkmax(L, 4);
  lai_checkopts(L, 4, TENSOR_OPTS);
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  lua_Integer n = lai_checkint(L, 3);
  ai_tensor *t = ai_linspace(lai_optdtype(L, 4, AI_F32), a, b, n);
  lai_push(L, t);
  lai_apply_requires_grad(L, 4);
  return 1;
}

static int l_eye(lua_State *L) {
  lua_Integer n = lai_checkint(L, 1);
  bool has_m = lua_type(L, 2) == LUA_TNUMBER;
  lua_Integer m = has_m ? lai_checkint(L, 2) : n;
  int opts = has_m ? 3 : 2;
  lai_checkmax(L, opts);
  lai_checkopts(L, opts, LAI_OPTS("dtype"));
  if (n < 0 || m < 0) return luaL_error(L, "eye: sizes must be non-negative");
  return lai_push(L, ai_eye(lai_optdtype(L, opts, AI_F32), n, m));
}


/* Expects the module table at -2 and the method table at -1. */
void lai_open_tensor_new(lua_State *L) {
  const luaL_Reg module_fns[] = {
      {"tensor", l_tensor}, {"empty", l_empty}, {"zeros", l_zeros}, {"ones", l_ones},
      {"full", l_full}, {"rand", l_rand}, {"randn", l_randn}, {"randint", l_randint},
      {"randperm", l_randperm}, {"arange", l_arange}, {"range", l_range}, {"linspace", l_linspace},
      {"eye", l_eye}, {"empty_like", l_empty_like}, {"zeros_like", l_zeros_like},
      {"ones_like", l_ones_like}, {"full_like", l_full_like}, {"rand_like", l_rand_like},
      {"randn_like", l_randn_like}, {NULL, NULL}};
  const luaL_Reg methods[] = {{"zeros_like", l_zeros_like}, {"ones_like", l_ones_like}, {NULL, NULL}};
  lua_pushvalue(L, -2);
  lai_register(L, module_fns);
  lua_pop(L, 1);
  lai_register(L, methods);
}
