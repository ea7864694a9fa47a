/* l_ops_port.c: the ops a port from PyTorch or Torch7 reaches for first: shape ops (flip, roll,
 * tile, repeat_interleave, tril, triu, diag, diagonal, trace, outer, kron, unbind, meshgrid),
 * tests of values (all, any, nonzero, equal, isclose, allclose) and maths (lerp, normal with
 * tensors, multinomial, cdist, baddbmm). PyTorch's names and argument order; dims and indices
 * 1-based; options as tables; several results as several Lua returns. */
#include <math.h>
#include <string.h>

#include "lbind.h"

/* ---------------------------------------------------------------- argument helpers */

/* A 1-based dim d (negative from the end) of a tensor of ndim dims, made 0-based; the error
 * names argument arg. */
static int dim_at(lua_State *L, int arg, lua_Integer d, int ndim) {
  int n = ndim > 0 ? ndim : 1;
  if (d == 0 || d > n || d < -n)
    luaL_argerror(L, arg, lua_pushfstring(L, "dimension %I out of range (expected 1 to %d, or -%d to -1)", d, n, n));
  return d > 0 ? (int)d - 1 : (int)d + n;
}

/* The integers at arg: one integer or a list of them. Returns how many (at most max). */
static int int_list(lua_State *L, int arg, lua_Integer *out, int max, const char *what) {
  if (lua_type(L, arg) == LUA_TNUMBER) { out[0] = lai_checkint(L, arg); return 1; }
  if (lua_type(L, arg) != LUA_TTABLE || lai_test(L, arg))
    luaL_argerror(L, arg, lua_pushfstring(L, "%s expected (an integer or a list of them), got %s", what, luaL_typename(L, arg)));
  int n = (int)lua_rawlen(L, arg);
  if (n > max) luaL_argerror(L, arg, lua_pushfstring(L, "at most %d %s", max, what));
  for (int i = 0; i < n; i++) {
    int ok;
    lua_rawgeti(L, arg, i + 1);
    out[i] = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_argerror(L, arg, lua_pushfstring(L, "%s: item %d is not an integer", what, i + 1));
    lua_pop(L, 1);
  }
  return n;
}

/* Dims from arg on: one dim, several, or one list; 0-based into dims; no dim twice. */
static int dims_args(lua_State *L, int arg, const ai_tensor *t, int *dims) {
  lua_Integer v[AI_MAXDIM];
  int n = 0, top = lai_last_arg(L);
  if (lua_type(L, arg) == LUA_TTABLE && !lai_test(L, arg)) {
    lai_checkmax(L, arg);
    n = int_list(L, arg, v, AI_MAXDIM, "dimensions");
    for (int i = 0; i < n; i++) dims[i] = dim_at(L, arg, v[i], t->ndim);
  } else {
    if (top < arg) luaL_argerror(L, arg, "a dimension or a list of dimensions expected, got no value");
    if (top - arg + 1 > AI_MAXDIM) lai_too_many(L, arg + AI_MAXDIM - 1);
    for (int i = arg; i <= top; i++) dims[n++] = dim_at(L, i, lai_checkint(L, i), t->ndim);
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < i; j++)
      if (dims[i] == dims[j]) luaL_argerror(L, arg, lua_pushfstring(L, "dimension %d appears twice", dims[i] + 1));
  return n;
}

/* Pushes the n tensors as n Lua values (each boxed at once, so none leaks). */
static int push_several(lua_State *L, ai_tensor **ts, int n) {
  if (!lua_checkstack(L, n + 2)) {
    for (int i = 0; i < n; i++) ai_unref(ts[i]);
    return luaL_error(L, "too many results (%d) for Lua's stack", n);
  }
  lai_push_list(L, ts, n);
  int list = lua_gettop(L);
  for (int i = 1; i <= n; i++) lua_rawgeti(L, list, i);
  return n;
}

/* A table of tensors at arg (or the tensors from arg on): their count, in a userdata array left
 * on the stack, so that an error cannot leak it. */
static ai_tensor **tensors_at(lua_State *L, int arg, int last, int *n) {
  bool list = lua_type(L, arg) == LUA_TTABLE && !lai_test(L, arg);
  *n = list ? (int)lua_rawlen(L, arg) : last - arg + 1;
  if (*n < 0) *n = 0;
  ai_tensor **ts = lua_newuserdatauv(L, sizeof(ai_tensor *) * (size_t)(*n ? *n : 1), 0);
  for (int i = 0; i < *n; i++) {
    if (list) {
      lua_rawgeti(L, arg, i + 1);
      ts[i] = lai_test(L, -1);
      if (!ts[i]) luaL_argerror(L, arg, lua_pushfstring(L, "a list of tensors expected, item %d is a %s", i + 1, luaL_typename(L, -1)));
      lua_pop(L, 1);
    } else {
      ts[i] = lai_check(L, arg + i);
    }
  }
  return ts;
}

/* ---------------------------------------------------------------- shape ops */

/* flip(x, dim | dim1, dim2, ... | {dims}) */
static int op_flip(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  int dims[AI_MAXDIM], n = dims_args(L, 2, t, dims);
  unsigned mask = 0;
  for (int i = 0; i < n; i++) mask |= 1u << dims[i];
  return lai_push(L, ai_flip(t, mask));
}

/* roll(x, shifts [, dims]): shifts and dims an integer or lists of one length; no dims: the
 * flattened tensor, rolled and shaped back */
static int op_roll(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 3);
  lua_Integer shifts[AI_MAXDIM], d[AI_MAXDIM];
  int ns = int_list(L, 2, shifts, AI_MAXDIM, "shifts");
  if (lua_isnoneornil(L, 3)) {
    if (ns != 1) return luaL_argerror(L, 2, "without dims, give one shift (the flattened tensor is rolled)");
    return lai_push(L, ai_roll(t, 0, (int64_t[]){shifts[0]}, NULL));
  }
  int nd = int_list(L, 3, d, AI_MAXDIM, "dims");
  if (nd != ns) return luaL_argerror(L, 3, lua_pushfstring(L, "%d shifts but %d dims: give one shift per dim", ns, nd));
  int64_t sh[AI_MAXDIM];
  int dims[AI_MAXDIM];
  for (int i = 0; i < nd; i++) { dims[i] = dim_at(L, 3, d[i], t->ndim); sh[i] = shifts[i]; }
  return lai_push(L, ai_roll(t, nd, sh, dims));
}

/* tile(x, r1, r2, ... | {reps}): PyTorch's tile, and its repeat (a Lua keyword) */
static int op_tile(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  if (lua_isnoneornil(L, 2)) return luaL_argerror(L, 2, "the repeats expected (integers or a list of them)");
  int64_t reps[AI_MAXDIM];
  int n = lai_checkshape(L, 2, reps);
  lai_checkmax(L, lua_istable(L, 2) ? 2 : n + 1);
  return lai_push(L, ai_tile(t, n, reps));
}

/* repeat_interleave(x, repeats [, dim]): repeats an integer or an i64 tensor of counts */
static int op_repeat_interleave(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 3);
  ai_tensor *reps = lai_test(L, 2);
  lua_Integer count = 1;
  if (!reps) {
    if (lua_type(L, 2) != LUA_TNUMBER)
      return luaL_argerror(L, 2, lua_pushfstring(L, "repeats expected (an integer or an i64 tensor), got %s", luaL_typename(L, 2)));
    count = lai_checkint(L, 2);
  }
  int dim = lua_isnoneornil(L, 3) ? -1 : dim_at(L, 3, lai_checkint(L, 3), t->ndim);
  if (dim >= 0 && t->ndim == 0) return luaL_argerror(L, 1, "a 0-dim tensor has no dimension to repeat along");
  return lai_push(L, ai_repeat_interleave(t, count, reps, dim));
}

static int triangle(lua_State *L, bool upper) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 2);
  lua_Integer k = lua_isnoneornil(L, 2) ? 0 : lai_checkint(L, 2);
  return lai_push(L, ai_tril(t, k, upper));
}
static int op_tril(lua_State *L) { return triangle(L, false); }
static int op_triu(lua_State *L) { return triangle(L, true); }

static int op_diag(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 2);
  return lai_push(L, ai_diag(t, lua_isnoneornil(L, 2) ? 0 : lai_checkint(L, 2)));
}

/* diagonal(x [, offset=0 [, dim1=1 [, dim2=2]]]) */
static int op_diagonal(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 4);
  lua_Integer off = lua_isnoneornil(L, 2) ? 0 : lai_checkint(L, 2);
  if (t->ndim < 2) return luaL_argerror(L, 1, lua_pushfstring(L, "a tensor of at least 2 dimensions expected, got %d", t->ndim));
  int d1 = lua_isnoneornil(L, 3) ? 0 : dim_at(L, 3, lai_checkint(L, 3), t->ndim);
  int d2 = lua_isnoneornil(L, 4) ? 1 : dim_at(L, 4, lai_checkint(L, 4), t->ndim);
  return lai_push(L, ai_diagonal(t, off, d1, d2));
}

static int op_trace(lua_State *L) {
  lai_checkmax(L, 1);
  return lai_push(L, ai_trace(lai_check(L, 1)));
}
static int op_outer(lua_State *L) {
  lai_checkmax(L, 2);
  return lai_push(L, ai_outer(lai_check(L, 1), lai_check(L, 2)));
}
static int op_kron(lua_State *L) {
  lai_checkmax(L, 2);
  return lai_push(L, ai_kron(lai_check(L, 1), lai_check(L, 2)));
}

/* unbind(x [, dim=1]) -> the slices along dim, as several returns (views) */
static int op_unbind(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 2);
  if (t->ndim == 0) return luaL_argerror(L, 1, "a 0-dim tensor cannot be unbound");
  int d = lua_isnoneornil(L, 2) ? 0 : dim_at(L, 2, lai_checkint(L, 2), t->ndim);
  int64_t n = t->shape[d];
  if (n > 1000000) return luaL_argerror(L, 1, "too many slices to return as Lua values (use split or index)");
  ai_tensor **ts = lua_newuserdatauv(L, sizeof(ai_tensor *) * (size_t)(n ? n : 1), 0);
  for (int64_t i = 0; i < n; i++) {
    if (!(ts[i] = ai_select(t, d, i))) {
      for (int64_t j = 0; j < i; j++) ai_unref(ts[j]);
      return lai_error(L);
    }
  }
  return push_several(L, ts, (int)n);
}

/* meshgrid(x1, x2, ... | {x1, x2, ...} [, {indexing="ij"|"xy"}]) -> the grids, several returns */
static int op_meshgrid(lua_State *L) {
  int last = lai_last_arg(L), opts = 0;
  if (last >= 1 && lua_type(L, last) == LUA_TTABLE && !lai_test(L, last)) {
    lua_rawgeti(L, last, 1);
    bool is_list = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!is_list) opts = last--;
  }
  if (opts) lai_checkopts(L, opts, LAI_OPTS("indexing"));
  const char *ix = opts ? lai_optstrfield(L, opts, "indexing", "ij") : "ij";
  if (strcmp(ix, "ij") && strcmp(ix, "xy"))
    return luaL_argerror(L, opts, lua_pushfstring(L, "option 'indexing' must be \"ij\" or \"xy\", got \"%s\"", ix));
  if (last < 1) return luaL_argerror(L, 1, "tensors expected");
  if (lua_type(L, 1) == LUA_TTABLE && !lai_test(L, 1) && last > 1) lai_too_many(L, opts ? opts - 1 : 1);
  int n;
  ai_tensor **ts = tensors_at(L, 1, last, &n);
  ai_tensor *out[AI_MAXDIM];
  if (n > AI_MAXDIM) return luaL_argerror(L, 1, lua_pushfstring(L, "at most %d tensors", AI_MAXDIM));
  if (ai_meshgrid(ts, n, ix[0] == 'x', out)) return lai_error(L);
  return push_several(L, out, n);
}

/* ---------------------------------------------------------------- tests of values */

/* all and any take their dims and keepdim exactly as sum does: they are sum's count of the
 * elements that decide, called with sum's own argument handling (the C function of ai.sum,
 * found when the module opens). */
static lua_CFunction sum_fn, normal_fn;

static int count_test(lua_State *L, bool any) {
  ai_tensor *t = lai_check(L, 1);
  /* any: the count of nonzero elements > 0; all: the count of zeros == 0 (true for none) */
  ai_tensor *m = ai_binary_scalar_int(any ? AI_NE : AI_EQ, t, 0, false);
  lai_push(L, m);
  lua_replace(L, 1);
  sum_fn(L);
  ai_tensor *cnt = lai_check(L, -1);
  return lai_push(L, ai_binary_scalar_int(any ? AI_GT : AI_EQ, cnt, 0, false));
}
static int op_all(lua_State *L) { return count_test(L, false); }
static int op_any(lua_State *L) { return count_test(L, true); }

/* nonzero(x [, {as_tuple=false}]) -> n x ndim 1-based indices, or ndim 1-D tensors of them */
static int op_nonzero(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 2);
  lai_checkopts(L, 2, LAI_OPTS("as_tuple"));
  bool tuple = lai_optboolfield(L, 2, "as_tuple", 0);
  if (tuple && t->ndim == 0) { /* as PyTorch: a 0-dim tensor counts as one element */
    ai_tensor *one = ai_reshape(t, 1, (int64_t[]){1});
    if (!one) return lai_error(L);
    lai_push(L, one);
    ai_tensor *ix = lai_one_based(ai_nonzero(one));
    lai_push(L, ix);
    return lai_push(L, ai_reshape(ix, 1, (int64_t[]){ix->shape[0]}));
  }
  ai_tensor *ix = lai_one_based(ai_nonzero(t));
  if (!tuple) return lai_push(L, ix);
  lai_push(L, ix);
  ai_tensor *cols[AI_MAXDIM];
  for (int d = 0; d < t->ndim; d++) {
    ai_tensor *c = ai_select(ix, 1, d);
    cols[d] = c ? ai_contiguous(c) : NULL;
    ai_unref(c);
    if (!cols[d]) {
      for (int j = 0; j < d; j++) ai_unref(cols[j]);
      return lai_error(L);
    }
  }
  return push_several(L, cols, t->ndim);
}

/* equal(a, b) -> whether a and b have the same shape and values (a boolean) */
static int op_equal(lua_State *L) {
  lai_checkmax(L, 2);
  ai_tensor *a = lai_check(L, 1), *b = lai_check(L, 2);
  bool r;
  if (ai_equal(a, b, &r)) return lai_error(L);
  lua_pushboolean(L, r);
  return 1;
}

static const char *const CLOSE_OPTS[] = {"rtol", "atol", "equal_nan", NULL};

static int closeness(lua_State *L, bool all) {
  lai_checkmax(L, 3);
  ai_tensor *a = lai_check(L, 1), *b = lai_check(L, 2);
  lai_checkopts(L, 3, CLOSE_OPTS);
  double rtol = lai_optnumfield(L, 3, "rtol", 1e-5), atol = lai_optnumfield(L, 3, "atol", 1e-8);
  bool nan = lai_optboolfield(L, 3, "equal_nan", 0);
  if (!all) return lai_push(L, ai_isclose(a, b, rtol, atol, nan));
  bool r;
  if (ai_allclose(a, b, rtol, atol, nan, &r)) return lai_error(L);
  lua_pushboolean(L, r);
  return 1;
}
static int op_isclose(lua_State *L) { return closeness(L, false); }
static int op_allclose(lua_State *L) { return closeness(L, true); }

/* ---------------------------------------------------------------- maths */

/* lerp(a, b, w): a + w (b - a), w a number or a tensor */
static int op_lerp(lua_State *L) {
  lai_checkmax(L, 3);
  ai_tensor *a = lai_check(L, 1), *b = lai_check(L, 2), *w = lai_test(L, 3);
  if (!w && lua_type(L, 3) != LUA_TNUMBER)
    return luaL_argerror(L, 3, lua_pushfstring(L, "weight expected (a number or a tensor), got %s", luaL_typename(L, 3)));
  return lai_push(L, ai_lerp(a, b, w, w ? 0 : lua_tonumber(L, 3)));
}

/* normal(mean, std) with a tensor mean or std (or both), beside normal(mean, std, shape...) */
static int op_normal(lua_State *L) {
  ai_tensor *m = lai_test(L, 1), *s = lai_test(L, 2);
  if (!m && !s) return normal_fn(L);
  lai_checkmax(L, 2);
  if (!m && lua_type(L, 1) != LUA_TNUMBER)
    return luaL_argerror(L, 1, lua_pushfstring(L, "mean expected (a number or a tensor), got %s", luaL_typename(L, 1)));
  if (!s && lua_type(L, 2) != LUA_TNUMBER)
    return luaL_argerror(L, 2, lua_pushfstring(L, "std expected (a number or a tensor), got %s", luaL_typename(L, 2)));
  return lai_push(L, ai_normal(m, m ? 0 : lua_tonumber(L, 1), s, s ? 0 : lua_tonumber(L, 2)));
}

/* multinomial(probs, n [, {replacement=false}]) -> 1-based i64 category indices */
static int op_multinomial(lua_State *L) {
  ai_tensor *p = lai_check(L, 1);
  lai_checkmax(L, 3);
  lua_Integer n = lai_checkint(L, 2);
  lai_checkopts(L, 3, LAI_OPTS("replacement"));
  bool repl = lai_optboolfield(L, 3, "replacement", 0);
  return lai_push(L, lai_one_based(ai_multinomial(p, n, repl)));
}

/* cdist(x1, x2 [, {p=2, compute_mode=}]) */
static int op_cdist(lua_State *L) {
  lai_checkmax(L, 3);
  ai_tensor *a = lai_check(L, 1), *b = lai_check(L, 2);
  lai_checkopts(L, 3, LAI_OPTS("p", "compute_mode"));
  double p = lai_optnumfield(L, 3, "p", 2);
  const char *mode = lai_optstrfield(L, 3, "compute_mode", "use_mm_for_euclid_dist_if_necessary");
  static const char *const modes[] = {"use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                                      "donot_use_mm_for_euclid_dist", NULL};
  int m = 0;
  while (modes[m] && strcmp(modes[m], mode)) m++;
  if (!modes[m])
    return luaL_argerror(L, 3, lua_pushfstring(L, "option 'compute_mode' must be \"%s\", \"%s\" or \"%s\", got \"%s\"",
                                               modes[0], modes[1], modes[2], mode));
  return lai_push(L, ai_cdist(a, b, p, m));
}

/* baddbmm(input, batch1, batch2 [, {beta=1, alpha=1}]) */
static int op_baddbmm(lua_State *L) {
  lai_checkmax(L, 4);
  ai_tensor *in = lai_check(L, 1), *b1 = lai_check(L, 2), *b2 = lai_check(L, 3);
  lai_checkopts(L, 4, LAI_OPTS("beta", "alpha"));
  return lai_push(L, ai_baddbmm(in, b1, b2, lai_optnumfield(L, 4, "beta", 1), lai_optnumfield(L, 4, "alpha", 1)));
}

/* ---------------------------------------------------------------- registration */

#define F(name) {#name, op_##name}
static const luaL_Reg both[] = {
    F(flip), F(roll), F(tile), F(repeat_interleave), F(tril), F(triu), F(diag), F(diagonal), F(trace),
    F(outer), F(kron), F(unbind), F(all), F(any), F(nonzero), F(equal), F(isclose), F(allclose), F(lerp),
    F(multinomial), F(baddbmm), {NULL, NULL}};
static const luaL_Reg module_only[] = {F(meshgrid), F(cdist), F(normal), {NULL, NULL}};
#undef F

/* Torch7's names of tensor methods that work here too, as the same functions: those that
 * behave the same, write nothing in place and mean nothing else here (lua/aiart/migrate.lua
 * lists them with the pointers for the rest; tests/test_port_ops.lua checks the two agree). */
static const char *const torch7_aliases[][2] = {
    {"nElement", "nelement"}, {"nDimension", "dim"}, {"isContiguous", "is_contiguous"},
    {"repeatTensor", "tile"}, {"expandAs", "expand_as"}, {"viewAs", "view_as"}};

/* After lai_open_ops: all/any reuse ai.sum's argument handling, normal extends ai.normal. */
void lai_open_ops_port(lua_State *L) {
  lua_getfield(L, -2, "sum");
  sum_fn = lua_tocfunction(L, -1);
  lua_getfield(L, -3, "normal");
  normal_fn = lua_tocfunction(L, -1);
  lua_pop(L, 2);
  if (!sum_fn || !normal_fn) luaL_error(L, "aiart: ai.sum and ai.normal must be registered before the port ops");
  lai_register(L, both);
  for (size_t i = 0; i < sizeof torch7_aliases / sizeof *torch7_aliases; i++) {
    if (lua_getfield(L, -1, torch7_aliases[i][1]) != LUA_TFUNCTION)
      luaL_error(L, "aiart: the tensor method %s is missing", torch7_aliases[i][1]);
    lua_setfield(L, -2, torch7_aliases[i][0]);
  }
  lua_pushvalue(L, -2);
  lai_register(L, both);
  lai_register(L, module_only);
  lua_pop(L, 1);
}
