/* l_ops.c: elementwise math, reductions, matmul, joining and index ops, random numbers and
 * runtime settings, each available as ai.f(x, ...) and as x:f(...). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lbind.h"

/* ---------------------------------------------------------------- binary */

/* tensor op number: a Lua integer stays exact beside an integer tensor */
static ai_tensor *with_number(lua_State *L, ai_binop op, ai_tensor *t, int arg, bool number_first) {
  if (lua_isinteger(L, arg)) return ai_binary_scalar_int(op, t, lua_tointeger(L, arg), number_first);
  if (lua_type(L, arg) != LUA_TNUMBER && !lua_isboolean(L, arg))
    luaL_argerror(L, arg, lua_pushfstring(L, "tensor or number expected, got %s", luaL_typename(L, arg)));
  double v = lua_isboolean(L, arg) ? lua_toboolean(L, arg) : lua_tonumber(L, arg);
  return ai_binary_scalar(op, t, v, number_first);
}

/* a op b where either side may be a number (at most one). */
static int binary(lua_State *L, ai_binop op) {
  lai_checkmax(L, 2);
  ai_tensor *a = lai_test(L, 1), *b = lai_test(L, 2);
  if (a && b) return lai_push(L, ai_binary(op, a, b));
  if (a) return lai_push(L, with_number(L, op, a, 2, false));
  if (b) return lai_push(L, with_number(L, op, b, 1, true));
  return luaL_argerror(L, 1, lua_pushfstring(L, "tensor expected, got %s", luaL_typename(L, 1)));
}

/* ai.add(a, b) / a:add(b) ... and a:add_(b) ...: one function per row of the registry (ops.h) */
#define BIN(NAME, name, ...) static int op_##name(lua_State *L) { return binary(L, AI_##NAME); }
AI_BINARY_OPS(BIN)
#undef BIN

static int inplace(lua_State *L, ai_binop op) {
  lai_checkmax(L, 2);
  ai_tensor *a = lai_check(L, 1);
  int rc;
  if (lua_isinteger(L, 2)) { /* a number takes the tensor's dtype only when it fits */
    rc = ai_binary_scalar_int_(op, a, lua_tointeger(L, 2));
  } else if (lua_type(L, 2) == LUA_TNUMBER) {
    rc = ai_binary_scalar_(op, a, lua_tonumber(L, 2));
  } else {
    ai_tensor *b = lai_totensor(L, 2, a);
    rc = ai_binary_(op, a, b);
    ai_unref(b);
  }
  if (rc) return lai_error(L);
  lua_settop(L, 1);
  return 1;
}
#define INP(NAME, name, args, grad, kind, saves, inplace) INP_##inplace(NAME, name)
#define INP_INPLACE(NAME, name) static int op_##name##_(lua_State *L) { return inplace(L, AI_##NAME); }
#define INP_OUTOFPLACE(NAME, name)
AI_BINARY_OPS(INP)

/* ---------------------------------------------------------------- unary */

static int unary(lua_State *L, ai_unop op) {
  lai_checkmax(L, 1);
  return lai_push(L, ai_unary(op, lai_check(L, 1)));
}
/* Lua calls __unm with the operand twice */
static int meta_unm(lua_State *L) { return lai_push(L, ai_unary(AI_NEG, lai_check(L, 1))); }
#define UN(NAME, name, ...) static int op_##name(lua_State *L) { return unary(L, AI_##NAME); }
AI_UNARY_OPS(UN)
#undef UN

/* f(x, a, b) or f(x, {ka=, kb=}): the parameters of an activation, positional or as options;
 * nparams is how many there are (b is read when 2). */
static void act_params(lua_State *L, int nparams, const char *const *keys, double *v) {
  if (lua_istable(L, 2)) {
    lai_lastopts(L, 2, keys);
    for (int i = 0; i < nparams; i++) v[i] = lai_optnumfield(L, 2, keys[i], v[i]);
  } else {
    lai_checkmax(L, 1 + nparams);
    for (int i = 0; i < nparams; i++) v[i] = luaL_optnumber(L, 2 + i, v[i]);
  }
}

static int op_leaky_relu(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  double v[1] = {0.01};
  act_params(L, 1, LAI_OPTS("negative_slope"), v);
  return lai_push(L, ai_leaky_relu(x, v[0]));
}

static int op_softplus(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  double v[2] = {1, 20};
  act_params(L, 2, LAI_OPTS("beta", "threshold"), v);
  return lai_push(L, ai_softplus(x, v[0], v[1]));
}

/* clamp(x, min, max) or clamp(x, {min=, max=}); nil means unbounded */
static void clamp_args(lua_State *L, double *lo, double *hi) {
  double v[2] = {-INFINITY, INFINITY};
  act_params(L, 2, LAI_OPTS("min", "max"), v);
  *lo = v[0];
  *hi = v[1];
}
static int op_clamp(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  double lo, hi;
  clamp_args(L, &lo, &hi);
  return lai_push(L, ai_clamp(x, lo, hi));
}
static int op_clamp_(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  double lo, hi;
  clamp_args(L, &lo, &hi);
  if (ai_clamp_(x, lo, hi)) return lai_error(L);
  lua_settop(L, 1);
  return 1;
}

static int op_where(lua_State *L) {
  lai_checkmax(L, 3);
  ai_tensor *c = lai_check(L, 1);
  ai_tensor *ref = lai_test(L, 2) ? lai_test(L, 2) : lai_test(L, 3);
  /* each operand goes into a box at once: converting the second may raise an error */
  ai_tensor *a = lai_totensor(L, 2, ref);
  lai_push(L, a);
  ai_tensor *b = lai_totensor(L, 3, ref);
  lai_push(L, b);
  return lai_push(L, ai_where(c, a, b));
}

/* The number or boolean at arg as a value for the elements of t: a fraction (or NaN, inf) is
 * refused for an integer tensor rather than cut. */
static double element_value(lua_State *L, int arg, const ai_tensor *t) {
  if (lua_isboolean(L, arg)) return lua_toboolean(L, arg);
  if (lua_type(L, arg) != LUA_TNUMBER)
    luaL_argerror(L, arg, lua_pushfstring(L, "a number expected, got %s", luaL_typename(L, arg)));
  double v = lua_tonumber(L, arg);
  if (!ai_is_float(t->dtype) && !(isfinite(v) && v == floor(v)))
    luaL_argerror(L, arg, lua_pushfstring(L, "%f is not a whole number, and an %s tensor holds integers", v,
                                          ai_dtype_names[t->dtype]));
  return v;
}

static int op_masked_fill(lua_State *L) {
  lai_checkmax(L, 3);
  ai_tensor *x = lai_check(L, 1), *m = lai_check(L, 2);
  return lai_push(L, ai_masked_fill(x, m, element_value(L, 3, x)));
}
static int op_masked_fill_(lua_State *L) {
  lai_checkmax(L, 3);
  ai_tensor *x = lai_check(L, 1), *m = lai_check(L, 2);
  if (ai_masked_fill_(x, m, element_value(L, 3, x))) return lai_error(L);
  lua_settop(L, 1);
  return 1;
}

/* ---------------------------------------------------------------- reductions */

/* Reads dims (an integer or a table of them) at arg into a bitmask; 0 = all. */
static unsigned checkdims(lua_State *L, int arg, const ai_tensor *t) {
  if (lua_isnoneornil(L, arg)) return 0;
  if (lua_istable(L, arg) && !lai_test(L, arg)) {
    unsigned m = 0;
    int n = (int)lua_rawlen(L, arg);
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, arg, i);
      m |= 1u << lai_checkdim(L, lua_gettop(L), t->ndim);
      lua_pop(L, 1);
    }
    if (!n) luaL_argerror(L, arg, "empty list of dimensions");
    return m;
  }
  return 1u << lai_checkdim(L, arg, t->ndim);
}

/* The dims of a reduction and where its options are, from the arguments at `arg` on: nothing
 * (all dims), an integer, several integers (x:sum(1, 2), as PyTorch's sum(dim=(1, 2))), a list
 * {1, 2}, or nil; then an options table with the keys `known` may follow, and nothing after it.
 * Returns the bitmask of 0-based dims (0: all) and sets *opts to the options' index (when there
 * are none, the index above the last argument, where the opt helpers see "none"). */
static unsigned reduce_args(lua_State *L, int arg, const ai_tensor *t, const char *const *known, int *opts) {
  int top = lai_last_arg(L);
  unsigned m = 0;
  *opts = top + 1;
  for (int i = arg; i <= top; i++) {
    int ty = lua_type(L, i);
    if (ty == LUA_TNUMBER) {
      unsigned bit = 1u << lai_checkdim(L, i, t->ndim);
      if (m & bit) luaL_argerror(L, i, "the dimension appears twice");
      m |= bit;
    } else if (ty == LUA_TNIL && i == arg) {
      /* x:sum(nil, {keepdim = true}): all dims (trailing nils are left out already) */
    } else if (ty == LUA_TTABLE && !lai_test(L, i)) {
      lua_rawgeti(L, i, 1);
      bool list = !lua_isnil(L, -1);
      lua_pop(L, 1);
      if (list && i == arg) { m = checkdims(L, i, t); continue; }
      if (list) luaL_argerror(L, i, "give the dimensions as integers or as one list, not both");
      lai_checkopts(L, i, known);
      if (i < top) lai_too_many(L, i);
      *opts = i;
      break;
    } else {
      luaL_argerror(L, i, lua_pushfstring(L, "a dimension, a list of dimensions or an options table expected, got %s",
                                          luaL_typename(L, i)));
    }
  }
  return m;
}

static const char *const KEEPDIM[] = {"keepdim", NULL};

/* Reductions over dims keep them by default (Torch7's convention: x:sum(2) of a 3x4 tensor is
 * 3x1, ready to broadcast against x); {keepdim = false} drops them. */
static int reduce(lua_State *L, ai_redop op) {
  ai_tensor *t = lai_check(L, 1);
  int o;
  unsigned dims = reduce_args(L, 2, t, KEEPDIM, &o);
  bool keep = lai_optboolfield(L, o, "keepdim", dims != 0);
  return lai_push(L, ai_reduce(op, t, dims, keep));
}
static int op_sum(lua_State *L) { return reduce(L, AI_RSUM); }
static int op_mean(lua_State *L) { return reduce(L, AI_RMEAN); }
static int op_prod(lua_State *L) { return reduce(L, AI_RPROD); }
static int op_logsumexp(lua_State *L) { return reduce(L, AI_RLOGSUMEXP); }
static int op_amax(lua_State *L) { return reduce(L, AI_RMAX); }
static int op_amin(lua_State *L) { return reduce(L, AI_RMIN); }

/* Converts 0-based i64 indices from the core to 1-based for Lua, and back. */
static ai_tensor *to_lua_index(ai_tensor *ix) {
  if (!ix) return NULL;
  bool was = ai_set_grad_enabled(false);
  ai_tensor *r = ai_binary_scalar(AI_ADD, ix, 1, false);
  ai_set_grad_enabled(was);
  ai_unref(ix);
  return r;
}

/* An index argument (tensor or table of integers), 1-based, returned 0-based (new ref). */
static ai_tensor *check_index(lua_State *L, int arg) {
  ai_tensor *t = lai_test(L, arg), *r = NULL;
  if (t) {
    if (t->dtype != AI_I64)
      luaL_argerror(L, arg, lua_pushfstring(L, "index must be an i64 tensor (got %s); use :long()", ai_dtype_names[t->dtype]));
    r = ai_binary_scalar(AI_SUB, t, 1, false);
  } else if (lua_istable(L, arg)) {
    int64_t n = (int64_t)lua_rawlen(L, arg);
    r = ai_empty(AI_I64, 1, &n);
    if (!r) lai_error(L);
    int64_t *p = ai_data(r);
    for (int64_t i = 0; i < n; i++) {
      lua_rawgeti(L, arg, i + 1);
      lua_Integer v = 0;
      if (!lai_isint(L, -1, &v)) {
        ai_unref(r);
        luaL_argerror(L, arg, lua_pushfstring(L, "index table must hold integers (item %d is %s)", (int)i + 1,
                                              lua_type(L, -1) == LUA_TNUMBER ? "a fraction" : luaL_typename(L, -1)));
      }
      p[i] = v > LUA_MININTEGER ? v - 1 : v; /* LUA_MININTEGER stays out of range */
      lua_pop(L, 1);
    }
    return r;
  } else {
    luaL_argerror(L, arg, lua_pushfstring(L, "index tensor or table expected, got %s", luaL_typename(L, arg)));
  }
  if (!r) lai_error(L);
  return r;
}

/* max(x) -> value; max(x, dim[, opts]) -> values, indices; max(x, y) -> elementwise maximum */
static int extreme(lua_State *L, bool is_min) {
  ai_tensor *t = lai_check(L, 1);
  if (lai_test(L, 2)) return binary(L, is_min ? AI_MINIMUM : AI_MAXIMUM);
  if (lua_isnoneornil(L, 2) || lua_istable(L, 2)) return reduce(L, is_min ? AI_RMIN : AI_RMAX);
  int d = lai_checkdim(L, 2, t->ndim);
  lai_checkmax(L, 3);
  lai_checkopts(L, 3, KEEPDIM);
  bool keep = lai_optboolfield(L, 3, "keepdim", 1);
  ai_tensor *v, *ix;
  if (ai_max_dim(t, d, keep, is_min, &v, &ix)) return lai_error(L);
  ai_tensor *res[2] = {v, to_lua_index(ix)};
  if (!res[1]) { ai_unref(v); return lai_error(L); }
  lai_push_list(L, res, 2); /* both boxed at once: neither can leak */
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  return 2;
}
static int op_max(lua_State *L) { return extreme(L, false); }
static int op_min(lua_State *L) { return extreme(L, true); }

static int argextreme(lua_State *L, bool is_min) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 3);
  if (lua_isnoneornil(L, 2)) {
    lai_checkmax(L, 1);
    return lai_push(L, to_lua_index(ai_argmax(t, -1, false, is_min)));
  }
  int d = lai_checkdim(L, 2, t->ndim);
  lai_checkopts(L, 3, KEEPDIM);
  bool keep = lai_optboolfield(L, 3, "keepdim", 1);
  return lai_push(L, to_lua_index(ai_argmax(t, d, keep, is_min)));
}
static int op_argmax(lua_State *L) { return argextreme(L, false); }
static int op_argmin(lua_State *L) { return argextreme(L, true); }

static int variance(lua_State *L, bool is_std) {
  ai_tensor *t = lai_check(L, 1);
  int o;
  unsigned dims = reduce_args(L, 2, t, LAI_OPTS("keepdim", "unbiased"), &o);
  bool keep = lai_optboolfield(L, o, "keepdim", dims != 0);
  bool unbiased = lai_optboolfield(L, o, "unbiased", 1);
  ai_tensor *v = ai_var(t, dims, unbiased, keep);
  if (v && is_std) {
    ai_tensor *s = ai_unary(AI_SQRT, v);
    ai_unref(v);
    v = s;
  }
  return lai_push(L, v);
}
static int op_var(lua_State *L) { return variance(L, false); }
static int op_std(lua_State *L) { return variance(L, true); }

/* norm(x[, p[, dims[, opts]]]), p a number or "inf" */
static int op_norm(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  double p = 2;
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *s = lua_tostring(L, 2);
    if (!strcmp(s, "inf")) p = INFINITY;
    else if (!strcmp(s, "-inf")) p = -INFINITY;
    else if (!strcmp(s, "fro")) p = 2;
    else return luaL_argerror(L, 2, "p must be a number, 'inf' or 'fro'");
  } else if (!lua_isnoneornil(L, 2)) {
    p = luaL_checknumber(L, 2);
  }
  int o;
  unsigned dims = reduce_args(L, 3, t, KEEPDIM, &o);
  bool keep = lai_optboolfield(L, o, "keepdim", dims != 0);
  return lai_push(L, ai_norm(t, p, dims, keep));
}

static int cumulative(lua_State *L, bool is_prod) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 2);
  int d = t->ndim ? lai_checkdim(L, 2, t->ndim) : 0;
  return lai_push(L, ai_cumulative(t, d, is_prod));
}
static int op_cumsum(lua_State *L) { return cumulative(L, false); }
static int op_cumprod(lua_State *L) { return cumulative(L, true); }

/* ---------------------------------------------------------------- linear algebra */

static int op_matmul(lua_State *L) {
  lai_checkmax(L, 2);
  return lai_push(L, ai_matmul(lai_check(L, 1), lai_check(L, 2)));
}
static int op_mm(lua_State *L) {
  lai_checkmax(L, 2);
  ai_tensor *a = lai_check(L, 1), *b = lai_check(L, 2);
  if (a->ndim != 2 || b->ndim != 2) return luaL_error(L, "mm: expects two 2-D tensors (use matmul for others)");
  return lai_push(L, ai_matmul(a, b));
}
static int op_bmm(lua_State *L) {
  lai_checkmax(L, 2);
  ai_tensor *a = lai_check(L, 1), *b = lai_check(L, 2);
  if (a->ndim != 3 || b->ndim != 3) return luaL_error(L, "bmm: expects two 3-D tensors");
  return lai_push(L, ai_matmul(a, b));
}
static int op_dot(lua_State *L) {
  lai_checkmax(L, 2);
  ai_tensor *a = lai_check(L, 1), *b = lai_check(L, 2);
  if (a->ndim != 1 || b->ndim != 1) return luaL_error(L, "dot: expects two 1-D tensors");
  return lai_push(L, ai_matmul(a, b));
}

/* ---------------------------------------------------------------- joining and splitting */

/* Reads a Lua sequence of tensors; the array is owned by a userdata left on the stack. A key
 * beside the sequence ({a, b, dim = 2}) is an error, not ignored. */
static ai_tensor **tensor_list(lua_State *L, int arg, int *n) {
  luaL_checktype(L, arg, LUA_TTABLE);
  *n = (int)lua_rawlen(L, arg);
  ai_tensor **ts = lua_newuserdatauv(L, sizeof(ai_tensor *) * (size_t)(*n ? *n : 1), 0);
  for (int i = 0; i < *n; i++) {
    lua_rawgeti(L, arg, i + 1);
    ts[i] = lai_test(L, -1);
    if (!ts[i])
      luaL_argerror(L, arg, lua_pushfstring(L, "expected a list of tensors, item %d is a %s", i + 1, luaL_typename(L, -1)));
    lua_pop(L, 1);
  }
  const char *key = lai_key_beside(L, arg, *n);
  if (key) luaL_argerror(L, arg, lua_pushfstring(L, "expected a list of tensors, got a table with the key %s", key));
  return ts;
}

static int join(lua_State *L, bool stack) {
  int n;
  lai_checkmax(L, 2);
  lua_settop(L, 2); /* the list's array goes above the optional dim */
  ai_tensor **ts = tensor_list(L, 1, &n);
  if (n == 0) return luaL_error(L, "%s: needs at least one tensor", stack ? "stack" : "cat");
  int nd = ts[0]->ndim + (stack ? 1 : 0);
  int d = lua_isnoneornil(L, 2) ? 0 : lai_checkdim(L, 2, nd);
  return lai_push(L, stack ? ai_stack(ts, n, d) : ai_cat(ts, n, d));
}
static int op_cat(lua_State *L) { return join(L, false); }
static int op_stack(lua_State *L) { return join(L, true); }

/* split(x, size_or_sizes, dim=1) -> table of views */
static int op_split(lua_State *L) {
  lai_checkmax(L, 3);
  ai_tensor *t = lai_check(L, 1);
  if (t->ndim == 0) return luaL_error(L, "split: cannot split a 0-dim tensor");
  int d = lua_isnoneornil(L, 3) ? 0 : lai_checkdim(L, 3, t->ndim);
  int64_t size = t->shape[d];
  int k = 0;
  if (lua_istable(L, 2)) {
    /* every size is checked before the first view is made */
    int n = (int)lua_rawlen(L, 2);
    lua_Integer total = 0;
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, 2, i);
      lua_Integer len = 0;
      if (!lai_isint(L, -1, &len) || len < 0)
        return luaL_argerror(L, 2, lua_pushfstring(L, "split sizes must be non-negative integers (item %d is %s)", i,
                                                   lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1)
                                                                                   : luaL_typename(L, -1)));
      lua_pop(L, 1);
      total = len > LUA_MAXINTEGER - total ? LUA_MAXINTEGER : total + len;
    }
    if (total != size)
      return luaL_error(L, "split: sizes add up to %I, dimension has %I", (LUAI_UACINT)total, (LUAI_UACINT)size);
    lua_newtable(L);
    int64_t at = 0;
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, 2, i);
      int64_t len = lua_tointeger(L, -1);
      lua_pop(L, 1);
      lai_push(L, ai_narrow(t, d, at, len));
      lua_rawseti(L, -2, ++k);
      at += len;
    }
  } else {
    lua_Integer len = lai_checkint(L, 2);
    lua_newtable(L);
    if (len <= 0) return luaL_argerror(L, 2, "split size must be positive");
    for (int64_t at = 0; at < size; at += len) {
      lai_push(L, ai_narrow(t, d, at, at + len <= size ? len : size - at));
      lua_rawseti(L, -2, ++k);
    }
  }
  return 1;
}

static int op_chunk(lua_State *L) {
  lai_checkmax(L, 3);
  ai_tensor *t = lai_check(L, 1);
  lua_Integer n = lai_checkint(L, 2);
  if (n <= 0) return luaL_argerror(L, 2, "number of chunks must be positive");
  if (t->ndim == 0) return luaL_error(L, "chunk: cannot split a 0-dim tensor");
  int d = lua_isnoneornil(L, 3) ? 0 : lai_checkdim(L, 3, t->ndim);
  int64_t len = t->shape[d] / n + (t->shape[d] % n != 0); /* ceil, without overflow for a huge n */
  lua_settop(L, 3);
  lua_pushinteger(L, len > 0 ? len : 1);
  lua_replace(L, 2);
  return op_split(L);
}

/* ---------------------------------------------------------------- index ops (1-based) */

static int op_index_select(lua_State *L) {
  lai_checkmax(L, 3);
  ai_tensor *t = lai_check(L, 1);
  int d = lai_checkdim(L, 2, t->ndim);
  ai_tensor *ix = check_index(L, 3), *r = ai_index_select(t, d, ix);
  ai_unref(ix);
  return lai_push(L, r);
}
static int op_gather(lua_State *L) {
  lai_checkmax(L, 3);
  ai_tensor *t = lai_check(L, 1);
  int d = lai_checkdim(L, 2, t->ndim);
  ai_tensor *ix = check_index(L, 3), *r = ai_gather(t, d, ix);
  ai_unref(ix);
  return lai_push(L, r);
}
static int scatter(lua_State *L, bool add) {
  lai_checkmax(L, 4);
  ai_tensor *t = lai_check(L, 1);
  int d = lai_checkdim(L, 2, t->ndim);
  /* the source is checked before check_index makes its tensor: an error here must not leak it */
  ai_tensor *src = lai_test(L, 4);
  bool number = !src && (lua_type(L, 4) == LUA_TNUMBER || lua_isboolean(L, 4));
  if (!src && !number)
    return luaL_argerror(L, 4, lua_pushfstring(L, "tensor or number expected, got %s", luaL_typename(L, 4)));
  if (number) element_value(L, 4, t);
  ai_tensor *ix = check_index(L, 3);
  if (number) { /* a number fills the scattered places, integers exactly */
    src = ai_empty(t->dtype, ix->ndim, ix->shape);
    if (!src || lai_fill_value(L, src, 4)) { ai_unref(src); ai_unref(ix); return lai_error(L); }
  } else {
    ai_ref(src);
  }
  ai_tensor *r = ai_scatter(t, d, ix, src, add);
  ai_unref(ix);
  ai_unref(src);
  return lai_push(L, r);
}
static int op_scatter(lua_State *L) { return scatter(L, false); }
static int op_scatter_add(lua_State *L) { return scatter(L, true); }
static int op_index_add(lua_State *L) {
  lai_checkmax(L, 4);
  ai_tensor *t = lai_check(L, 1);
  int d = lai_checkdim(L, 2, t->ndim);
  ai_tensor *src = lai_check(L, 4); /* before check_index: an error here must not leak ix */
  ai_tensor *ix = check_index(L, 3);
  ai_tensor *r = ai_index_add(t, d, ix, src);
  ai_unref(ix);
  return lai_push(L, r);
}

/* masked_select(x, mask) -> the selected elements, 1-D (differentiable through index_select) */
static int op_masked_select(lua_State *L) {
  lai_checkmax(L, 2);
  ai_tensor *x = lai_check(L, 1), *m = lai_check(L, 2);
  if (m->dtype != AI_U8) return luaL_argerror(L, 2, "mask must be a u8 tensor");
  return lai_push(L, ai_masked_select(x, m));
}

/* ---------------------------------------------------------------- random */

static int op_manual_seed(lua_State *L) {
  lai_checkmax(L, 1);
  ai_manual_seed((uint64_t)lai_checkint(L, 1));
  return 0;
}
static int op_get_rng_state(lua_State *L) {
  lai_checkmax(L, 0);
  ai_rng_state s = ai_rng_get();
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)s.seed);
  lua_setfield(L, -2, "seed");
  lua_pushinteger(L, (lua_Integer)s.offset);
  lua_setfield(L, -2, "offset");
  return 1;
}
/* set_rng_state(state) with state as get_rng_state returns it, or set_rng_state(seed, offset) */
static int op_set_rng_state(lua_State *L) {
  int ok1, ok2;
  lua_Integer seed, off;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    seed = lua_tointegerx(L, 1, &ok1);
    off = lua_tointegerx(L, 2, &ok2);
    if (!ok1) return luaL_argerror(L, 1, "the seed must be an integer");
    if (!ok2) return luaL_argerror(L, 2, "the offset must be an integer");
    lai_checkmax(L, 2); /* set_rng_state(seed, offset) */
  } else {
    luaL_argexpected(L, lua_type(L, 1) == LUA_TTABLE, 1, "table {seed=, offset=} or integers seed, offset");
    lai_checkmax(L, 1); /* set_rng_state(state) */
    lua_getfield(L, 1, "seed");
    lua_getfield(L, 1, "offset");
    seed = lua_tointegerx(L, -2, &ok1);
    off = lua_tointegerx(L, -1, &ok2);
    if (!ok1 || !ok2) return luaL_argerror(L, 1, "expected a table {seed=integer, offset=integer}");
  }
  ai_rng_set((ai_rng_state){(uint64_t)seed, (uint64_t)off});
  return 0;
}

static int finish_inplace(lua_State *L, int rc) {
  if (rc) return lai_error(L);
  lua_settop(L, 1);
  return 1;
}
static int op_uniform_(lua_State *L) {
  lai_checkmax(L, 3);
  ai_tensor *t = lai_check(L, 1);
  double lo = luaL_optnumber(L, 2, 0), hi = luaL_optnumber(L, 3, 1);
  luaL_argcheck(L, isfinite(lo), 2, "the lower bound must be finite");
  luaL_argcheck(L, isfinite(hi), 3, "the upper bound must be finite");
  return finish_inplace(L, ai_rand_(t, lo, hi));
}
static int op_normal_(lua_State *L) {
  lai_checkmax(L, 3);
  ai_tensor *t = lai_check(L, 1);
  return finish_inplace(L, ai_randn_(t, luaL_optnumber(L, 2, 0), luaL_optnumber(L, 3, 1)));
}
static int op_bernoulli_(lua_State *L) {
  lai_checkmax(L, 2);
  ai_tensor *t = lai_check(L, 1);
  return finish_inplace(L, ai_bernoulli_(t, luaL_optnumber(L, 2, 0.5)));
}
static int op_random_(lua_State *L) { /* random_(lo, hi): integers in [lo, hi] */
  lai_checkmax(L, 3);
  ai_tensor *t = lai_check(L, 1);
  lua_Integer lo = lai_checkint(L, 2), hi = lai_checkint(L, 3);
  if (hi == LUA_MAXINTEGER) return luaL_argerror(L, 3, "upper bound too large");
  return finish_inplace(L, ai_randint_(t, lo, hi + 1));
}
/* bernoulli(p): 0/1 draws with per-element probabilities p, in p's dtype */
static int op_bernoulli(lua_State *L) {
  lai_checkmax(L, 1);
  return lai_push(L, ai_bernoulli(lai_check(L, 1)));
}
/* normal(mean, std, shape...[, {dtype=, requires_grad=}]): the shape as randn's */
static int op_normal(lua_State *L) {
  double mean = luaL_checknumber(L, 1), sd = luaL_checknumber(L, 2);
  if (!(sd >= 0)) return luaL_argerror(L, 2, "std must be non-negative");
  int64_t shape[AI_MAXDIM];
  int nd = lai_checkshape(L, 3, shape);
  int opts = (lua_istable(L, 3) && !lai_test(L, 3)) ? 4 : 3 + nd;
  if (!lua_isnoneornil(L, opts) && !lua_istable(L, opts))
    return luaL_argerror(L, opts, lua_pushfstring(L, "size or options table expected, got %s", luaL_typename(L, opts)));
  lai_lastopts(L, opts, LAI_OPTS("dtype", "requires_grad"));
  ai_dtype dt = lai_optdtype(L, opts, AI_F32);
  if (!ai_is_float(dt)) return luaL_argerror(L, opts, "dtype must be f32 or f64");
  ai_tensor *t = ai_empty(dt, nd, shape);
  if (!t || ai_randn_(t, mean, sd)) { ai_unref(t); return lai_error(L); }
  lai_push(L, t);
  lai_apply_requires_grad(L, opts);
  return 1;
}

/* ---------------------------------------------------------------- linear algebra (LAPACK) */

/* ai.linalg.eigh(A) -> eigenvalues (ascending), eigenvectors (as columns) of a symmetric matrix */
static int op_eigh(lua_State *L) {
  lai_checkmax(L, 1);
  ai_tensor *a = lai_check(L, 1), *res[2];
  if (a->ndim != 2 || a->shape[0] != a->shape[1])
    return luaL_argerror(L, 1, "expected a square 2-D (symmetric) matrix");
  if (!ai_is_float(a->dtype)) return luaL_argerror(L, 1, "expected a floating-point matrix");
  if (a->shape[0] > 46340) return luaL_argerror(L, 1, "matrix too large");
  if (ai_eigh(a, &res[0], &res[1])) return luaL_error(L, "%s", ai_error());
  lai_push_list(L, res, 2);
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  return 2;
}

/* ---------------------------------------------------------------- runtime */

static int op_set_num_threads(lua_State *L) {
  lai_checkmax(L, 1);
  lua_Integer n = lai_checkint(L, 1);
  /* far more threads than that fail to start, and OpenMP then crashes */
  if (n < 1 || n > 1024) return luaL_argerror(L, 1, "number of threads must be 1..1024");
  ai_set_num_threads((int)n);
  return 0;
}
/* ai.clock(): seconds of wall time from a monotonic clock (os.clock is CPU time, summed over
 * threads) */
static int op_clock(lua_State *L) {
  lai_checkmax(L, 0);
  lua_pushnumber(L, ai_clock());
  return 1;
}

static int op_get_num_threads(lua_State *L) {
  lai_checkmax(L, 0);
  lua_pushinteger(L, ai_get_num_threads());
  return 1;
}
static int op_memory(lua_State *L) {
  lai_checkmax(L, 0);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)ai_live_bytes());
  lua_setfield(L, -2, "live");
  lua_pushinteger(L, (lua_Integer)ai_cached_bytes());
  lua_setfield(L, -2, "cached");
  lua_pushinteger(L, (lua_Integer)ai_peak_bytes());
  lua_setfield(L, -2, "peak");
  return 1;
}
static int op_empty_cache(lua_State *L) {
  lai_checkmax(L, 0);
  ai_empty_cache();
  return 0;
}
static int op_alloc_fail_after(lua_State *L) {
  lai_checkmax(L, 1);
  lua_Integer n = lai_checkint(L, 1);
  ai_alloc_fail_after(n > LONG_MAX ? LONG_MAX : n < LONG_MIN ? LONG_MIN : (long)n);
  return 0;
}

/* ---------------------------------------------------------------- ai._debug (tests only) */

/* A wrapper around the Lua allocator that can make Lua allocations fail: from the n-th
 * growing allocation on (lua_alloc_fail_after), or past a budget of bytes in use
 * (lua_mem_limit). Shrinking and freeing always succeed, as Lua requires. One wrapper per
 * process: it is installed in the first state that asks for it. */
static struct {
  lua_Alloc f;
  void *ud;
  lua_State *owner;
  long countdown;  /* > 0: allocations left before failing */
  bool failing;    /* the countdown reached 0: fail until reset */
  size_t used, limit;
  long failures;
} dbg_alloc;

static void *dbg_allocf(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  size_t old = ptr ? osize : 0;
  if (nsize > old) {
    if (dbg_alloc.countdown > 0 && --dbg_alloc.countdown == 0) dbg_alloc.failing = true;
    if (dbg_alloc.failing || (dbg_alloc.limit && dbg_alloc.used - old + nsize > dbg_alloc.limit)) {
      dbg_alloc.failures++;
      return NULL;
    }
  }
  void *r = dbg_alloc.f(dbg_alloc.ud, ptr, osize, nsize);
  if (r || nsize == 0) dbg_alloc.used = dbg_alloc.used - old + nsize;
  return r;
}

static void dbg_install(lua_State *L) {
  if (dbg_alloc.owner == NULL) {
    lua_State *main;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    main = lua_tothread(L, -1);
    lua_pop(L, 1);
    dbg_alloc.f = lua_getallocf(L, &dbg_alloc.ud);
    dbg_alloc.owner = main;
    dbg_alloc.used = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
    lua_setallocf(L, dbg_allocf, NULL);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  bool same = lua_tothread(L, -1) == dbg_alloc.owner;
  lua_pop(L, 1);
  if (!same) luaL_error(L, "_debug: the Lua allocator hook belongs to another Lua state");
}

/* ai._debug.lua_alloc_fail_after(n): the n-th growing Lua allocation from now fails, and every
 * one after it, until lua_alloc_fail_after(0). Returns the failures counted since the last call. */
static int dbg_lua_alloc_fail_after(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  dbg_install(L);
  long failures = dbg_alloc.failures;
  dbg_alloc.failures = 0;
  dbg_alloc.failing = false;
  dbg_alloc.countdown = n > 0 ? (long)n : 0;
  lua_pushinteger(L, failures);
  return 1;
}

/* ai._debug.lua_alloc_failing(n, f, ...): calls f(...) with the n-th growing Lua allocation
 * from now on failing, and every one after it; restores the allocator before returning
 * ok, result_or_error, failures (as pcall, plus the count of failed allocations). */
static int dbg_lua_alloc_failing(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  dbg_install(L);
  luaL_checkstack(L, 4, NULL);  /* room for the results, claimed before allocations fail */
  int nargs = lua_gettop(L) - 2;
  dbg_alloc.failures = 0;
  dbg_alloc.failing = false;
  dbg_alloc.countdown = n > 0 ? (long)n : 0;
  int status = lua_pcall(L, nargs, 1, 0);
  dbg_alloc.countdown = 0;
  dbg_alloc.failing = false;
  long failures = dbg_alloc.failures;
  dbg_alloc.failures = 0;
  lua_pushboolean(L, status == LUA_OK);
  lua_insert(L, -2);
  lua_pushinteger(L, failures);
  return 3;
}

/* ai._debug.lua_mem_limit(bytes): Lua allocations that would bring the bytes in use above
 * `bytes` fail (0: no limit). Returns the bytes in use. */
static int dbg_lua_mem_limit(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  dbg_install(L);
  dbg_alloc.limit = n > 0 ? (size_t)n : 0;
  lua_pushinteger(L, (lua_Integer)dbg_alloc.used);
  return 1;
}

/* ---------------------------------------------------------------- ai._ops */

/* ai._ops: the op registry (ops.h) as a list of {NAME=, name=, family=, dtypes=, recorded=,
 * double_backward=, inplace=}, one per autograd row, for tests and tools. */
static void push_op_table(lua_State *L) {
  lua_createtable(L, ai_op_count, 0);
  for (int i = 0; i < ai_op_count; i++) {
    const ai_op_info *o = &ai_op_table[i];
    lua_createtable(L, 0, 7);
    lua_pushstring(L, o->NAME);
    lua_setfield(L, -2, "NAME");
    lua_pushstring(L, o->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, o->family);
    lua_setfield(L, -2, "family");
    lua_pushstring(L, o->dtypes);
    lua_setfield(L, -2, "dtypes");
    lua_pushboolean(L, o->recorded);
    lua_setfield(L, -2, "recorded");
    lua_pushboolean(L, o->double_backward);
    lua_setfield(L, -2, "double_backward");
    lua_pushboolean(L, o->inplace);
    lua_setfield(L, -2, "inplace");
    lua_rawseti(L, -2, i + 1);
  }
}

/* ---------------------------------------------------------------- registration */

#define F(name) {#name, op_##name}
#define ELEM_REG(NAME, name, ...) F(name),
static const luaL_Reg elementwise[] = {AI_BINARY_OPS(ELEM_REG) AI_UNARY_OPS(ELEM_REG) {NULL, NULL}};
#undef ELEM_REG
#define INPLACE_REG(NAME, name, args, grad, kind, saves, inplace) INPLACE_REG_##inplace(name)
#define INPLACE_REG_INPLACE(name) F(name##_),
#define INPLACE_REG_OUTOFPLACE(name)
static const luaL_Reg elementwise_inplace[] = {AI_BINARY_OPS(INPLACE_REG) {NULL, NULL}};
#undef INPLACE_REG
static const luaL_Reg both[] = {
    F(leaky_relu), F(softplus), F(clamp), F(where), F(masked_fill), F(sum), F(mean), F(prod), F(logsumexp), F(amax), F(amin),
    F(max), F(min), F(argmax), F(argmin), F(var), F(std), F(norm), F(cumsum), F(cumprod),
    F(matmul), F(mm), F(bmm), F(dot), F(cat), F(stack), F(split), F(chunk), F(index_select),
    F(gather), F(scatter), F(scatter_add), F(index_add), F(masked_select), F(bernoulli),
    {"fmod", op_remainder}, {"clip", op_clamp}, {NULL, NULL}};

static const luaL_Reg methods_only[] = {
    F(clamp_), F(masked_fill_), F(uniform_), F(normal_), F(bernoulli_), F(random_), {NULL, NULL}};

static const luaL_Reg module_only[] = {
    F(manual_seed), F(get_rng_state), F(set_rng_state), F(normal), F(set_num_threads),
    F(get_num_threads), F(clock), F(memory), F(empty_cache), F(alloc_fail_after), {NULL, NULL}};
#undef F

void lai_open_ops(lua_State *L) {
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, op_eigh);
  lua_setfield(L, -2, "eigh");
  lua_setfield(L, -3, "linalg");
  lai_register(L, elementwise);
  lai_register(L, elementwise_inplace);
  lai_register(L, both);
  lai_register(L, methods_only);
  lua_pushvalue(L, -2);
  lai_register(L, elementwise);
  lai_register(L, both);
  lai_register(L, module_only);
  lua_pop(L, 1);
  push_op_table(L);
  lua_setfield(L, -3, "_ops");
  /* ai._debug: hooks for the reliability tests */
  const luaL_Reg dbg[] = {{"lua_alloc_fail_after", dbg_lua_alloc_fail_after},
                          {"lua_mem_limit", dbg_lua_mem_limit},
                          {"lua_alloc_failing", dbg_lua_alloc_failing},
                          {"alloc_fail_after", op_alloc_fail_after}, {NULL, NULL}};
  lua_newtable(L);
  lai_register(L, dbg);
  lua_setfield(L, -3, "_debug");
  /* arithmetic metamethods */
  luaL_getmetatable(L, LAI_TENSOR_MT);
  const luaL_Reg meta[] = {{"__add", op_add}, {"__sub", op_sub}, {"__mul", op_mul}, {"__div", op_div},
                           {"__pow", op_pow}, {"__mod", op_remainder}, {"__unm", meta_unm},
                           {"__idiv", op_floor_divide}, {NULL, NULL}};
  lai_register(L, meta);
  lua_pop(L, 1);
}
