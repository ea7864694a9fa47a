/* l_tensor.c: the Tensor userdata (boxes, metamethods, indexing), argument helpers shared by
 * the binding files, constructors, views and conversions. Lua sees 1-based indices and dims. */
#include <math.h>
#include <string.h>

#include "lbind.h"

/* ---------------------------------------------------------------- boxes and errors */

/* The metatable is also kept in the registry under this address: looking it up by a light
 * userdata key is a plain table read, where luaL_testudata's lookup by name goes through Lua's
 * C-string cache (a strcmp) on every argument of every op. */
static const char tensor_mt_key = 0;

static void push_tensor_mt(lua_State *L) { lua_rawgetp(L, LUA_REGISTRYINDEX, &tensor_mt_key); }

/* The tensor metatable of the state that opened the module last: comparing pointers is the
 * fast path of every type check (other states take the registry lookup). A sentinel's __gc
 * clears it when that state closes, so that a later state's unrelated table at the same
 * address is never taken for it. */
static const void *known_mt;

static int forget_mt(lua_State *L) {
  const void **mt = lua_touserdata(L, 1);
  if (mt && *mt == known_mt) known_mt = NULL;
  return 0;
}

static lai_box *test_box(lua_State *L, int i) {
  void *p = lua_touserdata(L, i);
  if (!p || !lua_getmetatable(L, i)) return NULL;
  const void *mt = lua_topointer(L, -1);
  if (mt == known_mt) {
    lua_pop(L, 1);
    return p;
  }
  push_tensor_mt(L);
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same ? p : NULL;
}

ai_tensor *lai_test(lua_State *L, int i) {
  lai_box *b = test_box(L, i);
  if (!b) return NULL;
  if (!b->t) luaL_error(L, "tensor was closed (used after <close> or ai.free)");
  return b->t;
}

ai_tensor *lai_check(lua_State *L, int i) {
  ai_tensor *t = lai_test(L, i);
  if (!t) {
    const char *got = luaL_typename(L, i);
    luaL_argerror(L, i, lua_pushfstring(L, "tensor expected, got %s", got));
  }
  return t;
}

/* Lua's GC only sees the small boxes; collect when tensor memory grows well past what was
 * live after the last collection, so loops do not pile up dead tensors. */
static size_t gc_threshold = (size_t)64 << 20;

static void gc_pressure(lua_State *L) {
  size_t live = ai_live_bytes();
  if (live < gc_threshold) return;
  lua_gc(L, LUA_GCCOLLECT);
  live = ai_live_bytes();
  size_t slack = live > ((size_t)64 << 20) ? live : ((size_t)64 << 20);
  gc_threshold = live + slack;
}

int lai_error(lua_State *L) {
  lua_Debug ar;
  const char *msg = ai_error();
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name) {
    size_t n = strlen(ar.name);
    if (strncmp(msg, ar.name, n) != 0 || msg[n] != ':')
      return luaL_error(L, "%s: %s", ar.name, msg);
  }
  return luaL_error(L, "%s", msg);
}

static int new_box(lua_State *L) {
  lai_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->t = NULL;
  push_tensor_mt(L);
  lua_setmetatable(L, -2);
  return 1;
}

int lai_push(lua_State *L, ai_tensor *t) {
  if (!t) return lai_error(L);
  /* The box is made in a protected call: when Lua is out of memory, t is released before the
   * error goes on (an unprotected lua_newuserdatauv would leak it). */
  lua_pushcfunction(L, new_box);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    ai_unref(t);
    return lua_error(L);
  }
  ((lai_box *)lua_touserdata(L, -1))->t = t;
  gc_pressure(L);
  return 1;
}

static int new_box_list(lua_State *L) {
  int n = (int)lua_tointeger(L, 1);
  lua_createtable(L, n, 0);
  for (int i = 1; i <= n; i++) {
    new_box(L);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

int lai_push_list(lua_State *L, ai_tensor **ts, int n) {
  lua_pushcfunction(L, new_box_list);
  lua_pushinteger(L, n);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    for (int i = 0; i < n; i++) ai_unref(ts[i]);
    return lua_error(L);
  }
  for (int i = 0; i < n; i++) { /* from here on nothing allocates */
    lua_rawgeti(L, -1, i + 1);
    ((lai_box *)lua_touserdata(L, -1))->t = ts[i];
    lua_pop(L, 1);
    if (!ts[i]) {
      lua_pushnil(L);
      lua_rawseti(L, -2, i + 1);
    }
  }
  gc_pressure(L);
  return 1;
}

/* A number becomes a 0-dim tensor; dtype follows `like` (see ai_binary_scalar's rule). */
ai_tensor *lai_totensor(lua_State *L, int i, const ai_tensor *like) {
  ai_tensor *t = lai_test(L, i);
  if (t) return ai_ref(t);
  if (lua_type(L, i) == LUA_TBOOLEAN) {
    t = ai_scalar(AI_U8, lua_toboolean(L, i));
  } else if (lua_type(L, i) == LUA_TNUMBER) {
    ai_dtype dt = AI_F32;
    if (lua_isinteger(L, i)) dt = like && !ai_is_float(like->dtype) ? like->dtype : (like ? like->dtype : AI_I64);
    else dt = like && ai_is_float(like->dtype) ? like->dtype : AI_F32;
    t = ai_scalar(dt, lua_tonumber(L, i));
  } else {
    luaL_argerror(L, i, lua_pushfstring(L, "tensor or number expected, got %s", luaL_typename(L, i)));
  }
  if (!t) lai_error(L);
  return t;
}

int lai_checkdim(lua_State *L, int arg, int ndim) {
  lua_Integer d = luaL_checkinteger(L, arg);
  int n = ndim > 0 ? ndim : 1;
  if (d == 0 || d > n || d < -n)
    return luaL_argerror(L, arg, lua_pushfstring(L, "dimension %d out of range (expected 1 to %d, or -%d to -1)",
                                                 (int)d, n, n));
  return d > 0 ? (int)d - 1 : (int)d + n;
}

/* Shape from varargs of integers at arg.. or from a table at arg. */
int lai_checkshape(lua_State *L, int arg, int64_t *shape) {
  int n = 0;
  if (lua_istable(L, arg) && !lai_test(L, arg)) {
    n = (int)luaL_len(L, arg);
    if (n > AI_MAXDIM) return luaL_argerror(L, arg, "too many dimensions (at most 8)");
    for (int d = 0; d < n; d++) {
      lua_geti(L, arg, d + 1);
      int isint;
      lua_Integer v = lua_tointegerx(L, -1, &isint);
      if (!isint || v < 0)
        return luaL_argerror(L, arg, lua_pushfstring(L, "size %d must be a non-negative integer", d + 1));
      shape[d] = v;
      lua_pop(L, 1);
    }
    return n;
  }
  while (lua_type(L, arg + n) == LUA_TNUMBER) {
    if (n == AI_MAXDIM) return luaL_argerror(L, arg + n, "too many dimensions (at most 8)");
    int isint;
    lua_Integer v = lua_tointegerx(L, arg + n, &isint);
    if (!isint || v < 0) return luaL_argerror(L, arg + n, "size must be a non-negative integer");
    shape[n++] = v;
  }
  return n;
}

static const struct { const char *name; ai_dtype dt; } dtype_names[] = {
    {"f32", AI_F32}, {"float32", AI_F32}, {"float", AI_F32}, {"f64", AI_F64}, {"float64", AI_F64},
    {"double", AI_F64}, {"i64", AI_I64}, {"int64", AI_I64}, {"long", AI_I64}, {"int", AI_I64},
    {"u8", AI_U8}, {"uint8", AI_U8}, {"byte", AI_U8}, {"bool", AI_U8}, {NULL, AI_F32}};

static int dtype_from_string(const char *s, ai_dtype *dt) {
  for (int i = 0; dtype_names[i].name; i++)
    if (!strcmp(s, dtype_names[i].name)) { *dt = dtype_names[i].dt; return 1; }
  return 0;
}

ai_dtype lai_checkdtype(lua_State *L, int arg) {
  const char *s = luaL_checkstring(L, arg);
  ai_dtype dt = AI_F32;
  if (!dtype_from_string(s, &dt))
    luaL_argerror(L, arg, lua_pushfstring(L, "unknown dtype '%s' (expected f32, f64, i64 or u8)", s));
  return dt;
}

/* Options table helpers: a missing table or field gives the default. */
static int optfield(lua_State *L, int arg, const char *k) {
  if (lua_type(L, arg) != LUA_TTABLE || lai_test(L, arg)) return 0;
  lua_getfield(L, arg, k);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return 0; }
  return 1;
}

lua_Number lai_optnumfield(lua_State *L, int arg, const char *k, lua_Number def) {
  if (!optfield(L, arg, k)) return def;
  int ok;
  lua_Number v = lua_tonumberx(L, -1, &ok);
  if (!ok) luaL_error(L, "option '%s' must be a number, got %s", k, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

lua_Integer lai_optintfield(lua_State *L, int arg, const char *k, lua_Integer def) {
  if (!optfield(L, arg, k)) return def;
  int ok;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  if (!ok) luaL_error(L, "option '%s' must be an integer, got %s", k, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

int lai_optboolfield(lua_State *L, int arg, const char *k, int def) {
  if (!optfield(L, arg, k)) return def;
  if (!lua_isboolean(L, -1)) luaL_error(L, "option '%s' must be a boolean, got %s", k, luaL_typename(L, -1));
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

const char *lai_optstrfield(lua_State *L, int arg, const char *k, const char *def) {
  if (!optfield(L, arg, k)) return def;
  const char *v = lua_tostring(L, -1);
  if (!v) luaL_error(L, "option '%s' must be a string, got %s", k, luaL_typename(L, -1));
  lua_pop(L, 1); /* the string stays alive: it is the table's field */
  return v;
}

static ai_dtype optdtype(lua_State *L, int arg, ai_dtype def) {
  const char *s = lai_optstrfield(L, arg, "dtype", NULL);
  if (!s) return def;
  ai_dtype dt = AI_F32;
  if (!dtype_from_string(s, &dt)) luaL_error(L, "unknown dtype '%s' (expected f32, f64, i64 or u8)", s);
  return dt;
}

void lai_register(lua_State *L, const luaL_Reg *fns) {
  for (; fns->name; fns++) {
    lua_pushcfunction(L, fns->func);
    lua_setfield(L, -2, fns->name);
  }
}

/* Applies {requires_grad=true} from an options table to a freshly made tensor on the stack. */
static void apply_requires_grad(lua_State *L, int opts) {
  if (lai_optboolfield(L, opts, "requires_grad", 0)) {
    ai_tensor *t = lai_check(L, -1);
    if (ai_set_requires_grad(t, true)) lai_error(L);
  }
}

/* ---------------------------------------------------------------- constructors */

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
    double v = lua_isboolean(L, idx) ? lua_toboolean(L, idx) : lua_tonumber(L, idx);
    ai_set(t, pos, v);
    return;
  }
  for (int64_t i = 0; i < t->shape[depth]; i++) {
    lua_rawgeti(L, idx, i + 1);
    pos[depth] = i;
    fill_nested(L, lua_gettop(L), t, depth + 1, pos);
    lua_pop(L, 1);
  }
}

static int l_tensor(lua_State *L) {
  ai_tensor *src = lai_test(L, 1);
  if (src) {
    ai_dtype dt = optdtype(L, 2, src->dtype);
    bool was = ai_set_grad_enabled(false);
    ai_tensor *c = ai_clone(src), *r = c ? ai_to_dtype(c, dt) : NULL;
    ai_set_grad_enabled(was);
    ai_unref(c);
    lai_push(L, r);
    apply_requires_grad(L, 2);
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
  ai_dtype dt = optdtype(L, 2, isbool && count > 0 ? AI_U8 : AI_F32);
  ai_tensor *t = ai_empty(dt, ndim, shape);
  if (!t) return lai_error(L);
  int64_t pos[AI_MAXDIM] = {0};
  bool was = ai_set_grad_enabled(false);
  fill_nested(L, 1, t, 0, pos);
  ai_set_grad_enabled(was);
  lai_push(L, t);
  apply_requires_grad(L, 2);
  return 1;
}

/* zeros/ones/empty/rand/randn share: shape from varargs or a table, then an options table */
static int shape_and_opts(lua_State *L, int arg, int64_t *shape, int *opts) {
  int n = lai_checkshape(L, arg, shape);
  int next = (lua_istable(L, arg) && !lai_test(L, arg)) ? arg + 1 : arg + n;
  if (!lua_isnoneornil(L, next) && !lua_istable(L, next))
    luaL_argerror(L, next, lua_pushfstring(L, "size or options table expected, got %s", luaL_typename(L, next)));
  *opts = next;
  return n;
}

typedef enum { C_EMPTY, C_ZEROS, C_ONES, C_RAND, C_RANDN } ctor_kind;

static int make_filled(lua_State *L, int nd, const int64_t *shape, int opts, ctor_kind k, ai_dtype def) {
  ai_dtype dt = optdtype(L, opts, def);
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
  apply_requires_grad(L, opts);
  return 1;
}

static int ctor(lua_State *L, ctor_kind k) {
  int64_t shape[AI_MAXDIM];
  int opts, nd = shape_and_opts(L, 1, shape, &opts);
  return make_filled(L, nd, shape, opts, k, AI_F32);
}
static int l_empty(lua_State *L) { return ctor(L, C_EMPTY); }
static int l_zeros(lua_State *L) { return ctor(L, C_ZEROS); }
static int l_ones(lua_State *L) { return ctor(L, C_ONES); }
static int l_rand(lua_State *L) { return ctor(L, C_RAND); }
static int l_randn(lua_State *L) { return ctor(L, C_RANDN); }

static int like(lua_State *L, ctor_kind k) {
  ai_tensor *t = lai_check(L, 1);
  return make_filled(L, t->ndim, t->shape, 2, k, t->dtype);
}
static int l_empty_like(lua_State *L) { return like(L, C_EMPTY); }
static int l_zeros_like(lua_State *L) { return like(L, C_ZEROS); }
static int l_ones_like(lua_State *L) { return like(L, C_ONES); }
static int l_rand_like(lua_State *L) { return like(L, C_RAND); }
static int l_randn_like(lua_State *L) { return like(L, C_RANDN); }

static int full_common(lua_State *L, int nd, const int64_t *shape, int valarg, int opts, ai_dtype def) {
  bool isbool = lua_isboolean(L, valarg);
  double v = isbool ? lua_toboolean(L, valarg) : luaL_checknumber(L, valarg);
  if (isbool && def == AI_F32) def = AI_U8;
  ai_tensor *t = ai_full(optdtype(L, opts, def), nd, shape, v);
  lai_push(L, t);
  apply_requires_grad(L, opts);
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
  lua_Integer lo = luaL_checkinteger(L, 1), hi = luaL_checkinteger(L, 2);
  if (lo > hi) return luaL_error(L, "randint: empty range [%d, %d]", (int)lo, (int)hi);
  if (hi == LUA_MAXINTEGER) return luaL_argerror(L, 2, "upper bound too large");
  int64_t shape[AI_MAXDIM];
  int opts, nd = shape_and_opts(L, 3, shape, &opts);
  ai_tensor *t = ai_empty(optdtype(L, opts, AI_I64), nd, shape);
  if (!t) return lai_error(L);
  if (ai_randint_(t, lo, hi + 1)) { ai_unref(t); return lai_error(L); }
  return lai_push(L, t);
}

/* ai.randperm(n): a random permutation of 1..n */
static int l_randperm(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
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
  ai_tensor *t = ai_arange(optdtype(L, opts, allint ? AI_I64 : AI_F32), start, stop, step);
  lai_push(L, t);
  apply_requires_grad(L, opts);
  return 1;
}

/* ai.range(a, b[, step]): inclusive of b, as Torch7's torch.range and Lua's numeric for */
static int l_range(lua_State *L) {
  int opts = lua_istable(L, 3) ? 3 : 4;
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2), step = opts == 3 ? 1 : luaL_optnumber(L, 3, 1);
  bool allint = lua_isinteger(L, 1) && lua_isinteger(L, 2) && (opts == 3 || lua_isnoneornil(L, 3) || lua_isinteger(L, 3));
  if (step == 0) return luaL_error(L, "range: step must be non-zero");
  double n = floor((b - a) / step + 1e-9) + 1;
  if (n < 0) n = 0;
  ai_tensor *t = ai_arange(optdtype(L, opts, allint ? AI_I64 : AI_F32), a, a + (n - 0.5) * step, step);
  return lai_push(L, t);
}

static int l_linspace(lua_State *L) {
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3);
  ai_tensor *t = ai_linspace(optdtype(L, 4, AI_F32), a, b, n);
  lai_push(L, t);
  apply_requires_grad(L, 4);
  return 1;
}

static int l_eye(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  lua_Integer m = lua_isinteger(L, 2) ? lua_tointeger(L, 2) : n;
  int opts = lua_isinteger(L, 2) ? 3 : 2;
  if (n < 0 || m < 0) return luaL_error(L, "eye: sizes must be non-negative");
  return lai_push(L, ai_eye(optdtype(L, opts, AI_F32), n, m));
}

/* ---------------------------------------------------------------- properties */

static void push_shape(lua_State *L, const ai_tensor *t) {
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, t->shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
}

static int m_size(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  if (lua_isnoneornil(L, 2)) { push_shape(L, t); return 1; }
  int d = lai_checkdim(L, 2, t->ndim);
  lua_pushinteger(L, t->ndim ? t->shape[d] : 1);
  return 1;
}
static int m_dim(lua_State *L) { lua_pushinteger(L, lai_check(L, 1)->ndim); return 1; }
static int m_numel(lua_State *L) { lua_pushinteger(L, ai_numel(lai_check(L, 1))); return 1; }
static int m_stride(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  if (!lua_isnoneornil(L, 2)) { lua_pushinteger(L, t->stride[lai_checkdim(L, 2, t->ndim)]); return 1; }
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) { lua_pushinteger(L, t->stride[d]); lua_rawseti(L, -2, d + 1); }
  return 1;
}
static int m_is_contiguous(lua_State *L) { lua_pushboolean(L, ai_is_contiguous(lai_check(L, 1))); return 1; }

static void push_number(lua_State *L, const ai_tensor *t, double v) {
  if (ai_is_float(t->dtype)) lua_pushnumber(L, v);
  else lua_pushinteger(L, (lua_Integer)v);
}

static int m_item(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  if (ai_numel(t) != 1) {
    char b[128];
    return luaL_error(L, "item: the tensor has %d elements (shape %s); item() needs exactly one",
                      (int)ai_numel(t), ai_shape_str(t, b, sizeof b));
  }
  push_number(L, t, ai_item(t));
  return 1;
}

static void tolist_rec(lua_State *L, const ai_tensor *t, int depth, int64_t *pos) {
  if (depth == t->ndim) { push_number(L, t, ai_get(t, pos)); return; }
  lua_createtable(L, (int)t->shape[depth], 0);
  for (int64_t i = 0; i < t->shape[depth]; i++) {
    pos[depth] = i;
    tolist_rec(L, t, depth + 1, pos);
    lua_rawseti(L, -2, i + 1);
  }
}
static int m_tolist(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  int64_t pos[AI_MAXDIM] = {0};
  luaL_checkstack(L, 2 * AI_MAXDIM + 4, NULL);
  tolist_rec(L, t, 0, pos);
  return 1;
}

static int convert(lua_State *L, ai_dtype dt) { return lai_push(L, ai_to_dtype(lai_check(L, 1), dt)); }
static int m_float(lua_State *L) { return convert(L, AI_F32); }
static int m_double(lua_State *L) { return convert(L, AI_F64); }
static int m_long(lua_State *L) { return convert(L, AI_I64); }
static int m_byte(lua_State *L) { return convert(L, AI_U8); }
static int m_to(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  if (lua_istable(L, 2)) return lai_push(L, ai_to_dtype(t, optdtype(L, 2, t->dtype)));
  return lai_push(L, ai_to_dtype(t, lai_checkdtype(L, 2)));
}
static int m_type(lua_State *L) { lua_pushstring(L, ai_dtype_names[lai_check(L, 1)->dtype]); return 1; }

/* ---------------------------------------------------------------- views */

static int m_view(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  int64_t shape[AI_MAXDIM];
  int n = 0;
  if (lua_istable(L, 2)) n = lai_checkshape(L, 2, shape);
  else {
    for (int a = 2; !lua_isnone(L, a); a++) {
      if (n == AI_MAXDIM) return luaL_argerror(L, a, "too many dimensions (at most 8)");
      shape[n++] = luaL_checkinteger(L, a);
    }
  }
  return lai_push(L, ai_view(t, n, shape));
}

/* view/reshape take -1 for an inferred size, so read them without the >= 0 check */
static int reshape_args(lua_State *L, int64_t *shape) {
  int n = 0;
  if (lua_istable(L, 2)) {
    n = (int)luaL_len(L, 2);
    if (n > AI_MAXDIM) return luaL_argerror(L, 2, "too many dimensions (at most 8)");
    for (int d = 0; d < n; d++) {
      lua_geti(L, 2, d + 1);
      int ok;
      shape[d] = lua_tointegerx(L, -1, &ok);
      if (!ok) return luaL_argerror(L, 2, "sizes must be integers");
      lua_pop(L, 1);
    }
    return n;
  }
  for (int a = 2; !lua_isnone(L, a); a++) {
    if (n == AI_MAXDIM) return luaL_argerror(L, a, "too many dimensions (at most 8)");
    shape[n++] = luaL_checkinteger(L, a);
  }
  return n;
}
static int m_view2(lua_State *L) {
  int64_t shape[AI_MAXDIM];
  ai_tensor *t = lai_check(L, 1);
  int n = reshape_args(L, shape);
  return lai_push(L, ai_view(t, n, shape));
}
static int m_reshape(lua_State *L) {
  int64_t shape[AI_MAXDIM];
  ai_tensor *t = lai_check(L, 1);
  int n = reshape_args(L, shape);
  return lai_push(L, ai_reshape(t, n, shape));
}
static int m_view_as(lua_State *L) {
  ai_tensor *t = lai_check(L, 1), *o = lai_check(L, 2);
  return lai_push(L, ai_reshape(t, o->ndim, o->shape));
}

static int m_permute(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  int perm[AI_MAXDIM], n = 0;
  if (lua_istable(L, 2)) {
    n = (int)luaL_len(L, 2);
    for (int d = 0; d < n && d < AI_MAXDIM; d++) {
      lua_geti(L, 2, d + 1);
      int ok;
      lua_Integer v = lua_tointegerx(L, -1, &ok);
      lua_pop(L, 1);
      if (!ok) return luaL_argerror(L, 2, "dims must be integers");
      perm[d] = v > 0 ? (int)v - 1 : (int)v + t->ndim;
    }
  } else {
    for (int a = 2; !lua_isnone(L, a) && n < AI_MAXDIM; a++) {
      lua_Integer v = luaL_checkinteger(L, a);
      perm[n++] = v > 0 ? (int)v - 1 : (int)v + t->ndim;
    }
  }
  if (n != t->ndim) return luaL_error(L, "permute: expected %d dims, got %d", t->ndim, n);
  return lai_push(L, ai_permute(t, perm));
}

static int m_transpose(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  if (t->ndim < 2 && lua_isnoneornil(L, 2)) return lai_push(L, ai_view(t, t->ndim, t->shape));
  int d0 = lua_isnoneornil(L, 2) ? 0 : lai_checkdim(L, 2, t->ndim);
  int d1 = lua_isnoneornil(L, 3) ? 1 : lai_checkdim(L, 3, t->ndim);
  return lai_push(L, ai_transpose(t, d0, d1));
}

static int m_t(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  if (t->ndim > 2) return luaL_error(L, "t: expects a tensor with at most 2 dimensions (use transpose)");
  if (t->ndim < 2) return lai_push(L, ai_view(t, t->ndim, t->shape));
  return lai_push(L, ai_transpose(t, 0, 1));
}

/* narrow(dim, start, length): start is 1-based */
static int m_narrow(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  int d = lai_checkdim(L, 2, t->ndim);
  lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  if (t->ndim && start < 0) start += t->shape[d] + 1;
  return lai_push(L, ai_narrow(t, d, start > 0 ? start - 1 : -1, len)); /* start < 1: out of range */
}

static int m_select(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  int d = lai_checkdim(L, 2, t->ndim);
  lua_Integer i = luaL_checkinteger(L, 3);
  if (i == 0) return luaL_argerror(L, 3, "indices are 1-based (0 is not an index)");
  return lai_push(L, ai_select(t, d, i > 0 ? i - 1 : i));
}

/* slice(dim, first, last[, step]): inclusive of last, 1-based, negatives from the end */
static int m_slice(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  int d = lai_checkdim(L, 2, t->ndim);
  int64_t size = t->ndim ? t->shape[d] : 0;
  lua_Integer a = luaL_optinteger(L, 3, 1), b = luaL_optinteger(L, 4, -1), step = luaL_optinteger(L, 5, 1);
  if (a < 0) a += size + 1;
  if (b < 0) b += size + 1;
  return lai_push(L, ai_slice(t, d, a - 1, b < a - 1 ? a - 1 : b, step));
}

static int m_expand(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  int64_t shape[AI_MAXDIM];
  int n = reshape_args(L, shape);
  return lai_push(L, ai_expand(t, n, shape));
}
static int m_expand_as(lua_State *L) {
  ai_tensor *t = lai_check(L, 1), *o = lai_check(L, 2);
  return lai_push(L, ai_expand(t, o->ndim, o->shape));
}

static int m_squeeze(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  if (lua_isnoneornil(L, 2)) return lai_push(L, ai_squeeze_all(t));
  return lai_push(L, ai_squeeze(t, lai_checkdim(L, 2, t->ndim)));
}
static int m_unsqueeze(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  return lai_push(L, ai_unsqueeze(t, lai_checkdim(L, 2, t->ndim + 1)));
}
static int m_flatten(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  int s = lua_isnoneornil(L, 2) ? 0 : lai_checkdim(L, 2, t->ndim);
  int e = lua_isnoneornil(L, 3) ? t->ndim - 1 : lai_checkdim(L, 3, t->ndim);
  return lai_push(L, ai_flatten(t, s, e < 0 ? 0 : e));
}
static int m_contiguous(lua_State *L) { return lai_push(L, ai_contiguous(lai_check(L, 1))); }
static int m_clone(lua_State *L) { return lai_push(L, ai_clone(lai_check(L, 1))); }

/* ---------------------------------------------------------------- in-place */

static int m_copy_(lua_State *L) {
  ai_tensor *t = lai_check(L, 1), *s = lai_totensor(L, 2, t);
  int rc = ai_copy_(t, s);
  ai_unref(s);
  if (rc) return lai_error(L);
  lua_settop(L, 1);
  return 1;
}
static int m_fill_(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  double v = lua_isboolean(L, 2) ? lua_toboolean(L, 2) : luaL_checknumber(L, 2);
  if (ai_fill_(t, v)) return lai_error(L);
  lua_settop(L, 1);
  return 1;
}
static int m_zero_(lua_State *L) {
  if (ai_zero_(lai_check(L, 1))) return lai_error(L);
  lua_settop(L, 1);
  return 1;
}

/* ---------------------------------------------------------------- indexing */

/* Applies one index component (for original dim `pos`) to dim *d of t: a number selects, a
 * table slices. Returns a new reference; raises Lua errors only before creating it. */
static ai_tensor *index_component(lua_State *L, ai_tensor *t, int *d, int arg, int pos) {
  if (*d >= t->ndim) luaL_error(L, "index: too many indices for a tensor of %d dimensions", pos - 1 + t->ndim - *d);
  int64_t size = t->shape[*d];
  if (lua_isinteger(L, arg)) {
    lua_Integer i = lua_tointeger(L, arg);
    if (i == 0) luaL_error(L, "index: indices are 1-based (0 is not an index)");
    if (i > size || i < -size)
      luaL_error(L, "index %d out of range for dimension %d of size %d", (int)i, pos, (int)size);
    return ai_select(t, *d, i > 0 ? i - 1 : i + size);
  }
  if (lua_istable(L, arg)) { /* {} = all, {a} = a..a kept as a dim, {a, b[, step]} inclusive */
    lua_Integer a = 1, b = -1, step = 1;
    int n = (int)lua_rawlen(L, arg);
    if (n >= 1) { lua_rawgeti(L, arg, 1); a = luaL_checkinteger(L, -1); lua_pop(L, 1); b = a; }
    if (n >= 2) { lua_rawgeti(L, arg, 2); b = luaL_checkinteger(L, -1); lua_pop(L, 1); }
    if (n >= 3) { lua_rawgeti(L, arg, 3); step = luaL_checkinteger(L, -1); lua_pop(L, 1); }
    if (a < 0) a += size + 1;
    if (b < 0) b += size + 1;
    if (a < 1 || a > size + 1 || b > size)
      luaL_error(L, "index: range %d..%d out of bounds for dimension %d of size %d", (int)a, (int)b, pos, (int)size);
    ai_tensor *r = ai_slice(t, *d, a - 1, b < a - 1 ? a - 1 : b, step);
    (*d)++;
    return r;
  }
  luaL_error(L, "index: expected an integer or a range table, got %s", luaL_typename(L, arg));
  return NULL;
}

/* The view x[key] for a number or a table key (new reference; NULL with the core's error).
 * Intermediate views live in boxes on the Lua stack, so an index error cannot leak them. */
static ai_tensor *index_view(lua_State *L, ai_tensor *t, int key) {
  int d = 0;
  if (lua_isinteger(L, key)) return index_component(L, t, &d, key, 1);
  if (lua_type(L, key) == LUA_TNUMBER) luaL_error(L, "index: indices must be integers");
  int n = (int)lua_rawlen(L, key), top = lua_gettop(L);
  ai_tensor *cur = t;
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, key, i);
    ai_tensor *next = index_component(L, cur, &d, lua_gettop(L), i);
    lua_pop(L, 1);
    if (!next) { lua_settop(L, top); return NULL; }
    lai_push(L, next); /* owned by the stack until the end */
    cur = next;
  }
  ai_ref(cur);
  lua_settop(L, top);
  return cur;
}

static int m_index(lua_State *L) {
  int kt = lua_type(L, 2);
  if (kt == LUA_TSTRING) {
    /* methods first (upvalue 1), then properties */
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    ai_tensor *t = lai_check(L, 1);
    const char *k = lua_tostring(L, 2);
    if (!strcmp(k, "shape")) { push_shape(L, t); return 1; }
    if (!strcmp(k, "dtype")) { lua_pushstring(L, ai_dtype_names[t->dtype]); return 1; }
    if (!strcmp(k, "grad")) {
      if (!t->grad) return 0;
      return lai_push(L, ai_ref(t->grad));
    }
    if (!strcmp(k, "ndim")) { lua_pushinteger(L, t->ndim); return 1; }
    if (!strcmp(k, "is_leaf")) { lua_pushboolean(L, t->grad_fn == NULL); return 1; }
    if (!strcmp(k, "grad_fn")) {
      const char *n = ai_grad_fn_name(t);
      if (n) lua_pushstring(L, n); else lua_pushnil(L);
      return 1;
    }
    if (!strcmp(k, "T")) return lai_push(L, t->ndim < 2 ? ai_view(t, t->ndim, t->shape) : ai_transpose(t, -1, -2));
    return 0;
  }
  ai_tensor *t = lai_check(L, 1);
  if (kt == LUA_TNUMBER || kt == LUA_TTABLE || kt == LUA_TUSERDATA) {
    ai_tensor *m = kt == LUA_TUSERDATA ? lai_check(L, 2) : NULL;
    if (m) { /* x[mask]: the selected elements as a 1-D tensor */
      if (m->dtype != AI_U8) return luaL_error(L, "index: a tensor index must be a u8 mask");
      lua_getfield(L, lua_upvalueindex(1), "masked_select");
      lua_pushvalue(L, 1);
      lua_pushvalue(L, 2);
      lua_call(L, 2, 1);
      return 1;
    }
    return lai_push(L, index_view(L, t, 2));
  }
  return luaL_error(L, "index: cannot index a tensor with a %s", luaL_typename(L, 2));
}

static int m_newindex(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *k = lua_tostring(L, 2);
    if (!strcmp(k, "grad")) {
      if (lua_isnil(L, 3)) { ai_unref(t->grad); t->grad = NULL; return 0; }
      ai_tensor *g = lai_check(L, 3);
      if (!ai_same_shape(g, t) || g->dtype != t->dtype)
        return luaL_error(L, "grad: must have the tensor's shape and dtype");
      ai_ref(g);
      ai_unref(t->grad);
      t->grad = g;
      return 0;
    }
    return luaL_error(L, "cannot set field '%s' of a tensor", k);
  }
  ai_tensor *m = lai_test(L, 2);
  if (m) { /* x[mask] = v */
    if (m->dtype != AI_U8) return luaL_error(L, "index: a tensor index must be a u8 mask");
    double v = luaL_checknumber(L, 3);
    if (ai_masked_fill_(t, m, v)) return lai_error(L);
    return 0;
  }
  ai_tensor *dst = index_view(L, t, 2);
  if (!dst) return lai_error(L);
  ai_tensor *src = NULL;
  int rc;
  if (lua_type(L, 3) == LUA_TNUMBER || lua_isboolean(L, 3)) {
    rc = ai_fill_(dst, lua_isboolean(L, 3) ? lua_toboolean(L, 3) : lua_tonumber(L, 3));
  } else {
    src = lai_test(L, 3);
    if (!src) { ai_unref(dst); return luaL_error(L, "index assignment: expected a number or a tensor, got %s", luaL_typename(L, 3)); }
    rc = ai_copy_(dst, src);
  }
  ai_unref(dst);
  if (rc) return lai_error(L);
  return 0;
}

static int m_len(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  if (t->ndim == 0) return luaL_error(L, "#: a 0-dim tensor has no length");
  lua_pushinteger(L, t->shape[0]);
  return 1;
}

static int m_gc(lua_State *L) {
  lai_box *b = test_box(L, 1);
  if (!b) return luaL_argerror(L, 1, "tensor expected");
  ai_unref(b->t);
  b->t = NULL;
  return 0;
}

static int m_eq(lua_State *L) {
  lai_box *a = test_box(L, 1), *b = test_box(L, 2);
  lua_pushboolean(L, a && b && a->t == b->t);
  return 1;
}

static int m_tostring(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_format_tensor(L, t);
  return 1;
}

static int m_free(lua_State *L) { return m_gc(L); }

/* ---------------------------------------------------------------- registration */

static const luaL_Reg module_fns[] = {
    {"tensor", l_tensor}, {"empty", l_empty}, {"zeros", l_zeros}, {"ones", l_ones},
    {"full", l_full}, {"rand", l_rand}, {"randn", l_randn}, {"randint", l_randint},
    {"randperm", l_randperm}, {"arange", l_arange}, {"range", l_range}, {"linspace", l_linspace},
    {"eye", l_eye}, {"empty_like", l_empty_like}, {"zeros_like", l_zeros_like},
    {"ones_like", l_ones_like}, {"full_like", l_full_like}, {"rand_like", l_rand_like},
    {"randn_like", l_randn_like}, {"free", m_free}, {NULL, NULL}};

static const luaL_Reg methods[] = {
    {"size", m_size}, {"dim", m_dim}, {"numel", m_numel}, {"nelement", m_numel}, {"stride", m_stride},
    {"is_contiguous", m_is_contiguous}, {"item", m_item}, {"tolist", m_tolist}, {"float", m_float},
    {"double", m_double}, {"long", m_long}, {"byte", m_byte}, {"to", m_to}, {"type", m_type},
    {"view", m_view2}, {"reshape", m_reshape}, {"view_as", m_view_as}, {"permute", m_permute},
    {"transpose", m_transpose}, {"t", m_t}, {"narrow", m_narrow}, {"select", m_select},
    {"slice", m_slice}, {"expand", m_expand}, {"expand_as", m_expand_as}, {"squeeze", m_squeeze},
    {"unsqueeze", m_unsqueeze}, {"flatten", m_flatten}, {"contiguous", m_contiguous},
    {"clone", m_clone}, {"copy_", m_copy_}, {"fill_", m_fill_}, {"zero_", m_zero_},
    {"zeros_like", l_zeros_like}, {"ones_like", l_ones_like}, {"free", m_free}, {NULL, NULL}};

/* Expects the module table at -2 and the method table at -1. */
void lai_open_tensor(lua_State *L) {
  (void)m_view;
  lua_pushvalue(L, -2);
  lai_register(L, module_fns);
  lua_pop(L, 1);
  lai_register(L, methods);
  /* the metatable: __index reads the method table (upvalue) first */
  luaL_newmetatable(L, LAI_TENSOR_MT);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &tensor_mt_key);
  known_mt = lua_topointer(L, -1);
  *(const void **)lua_newuserdatauv(L, sizeof known_mt, 0) = known_mt; /* the sentinel */
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, forget_mt);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &known_mt);
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, m_index, 1);
  lua_setfield(L, -2, "__index");
  const luaL_Reg meta[] = {{"__newindex", m_newindex}, {"__len", m_len}, {"__gc", m_gc},
                           {"__close", m_gc}, {"__eq", m_eq}, {"__tostring", m_tostring},
                           {NULL, NULL}};
  lai_register(L, meta);
  lua_pushliteral(L, "Tensor");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}

/* The metatable, for binding files that add metamethods (arithmetic lives in l_ops.c). */
