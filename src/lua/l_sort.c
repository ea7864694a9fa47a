/* l_sort.c: sort, argsort, topk, kthvalue, median, quantile, unique, searchsorted (src/core/sort.c)
 * as ai.f(x, ...) and x:f(...): dims and indices 1-based, options as tables, several results as
 * several returns. */
#include <string.h>

#include "lbind.h"

/* Pushes values and 1-based indices as two returns (both boxed at once: neither can leak). */
static int push_pair(lua_State *L, int rc, ai_tensor *v, ai_tensor *ix) {
  if (rc) return lai_error(L);
  ai_tensor *res[2] = {v, lai_one_based(ix)};
  if (!res[1]) { ai_unref(v); return lai_error(L); }
  lai_push_list(L, res, 2);
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  return 2;
}

/* An optional dim at arg (default: the last), then an options table: returns the options' index. */
static int dim_then_opts(lua_State *L, int arg, const ai_tensor *t, int *dim) {
  *dim = t->ndim ? t->ndim - 1 : 0;
  if (lua_type(L, arg) == LUA_TNUMBER) { *dim = lai_checkdim(L, arg, t->ndim); return arg + 1; }
  if (lua_isnil(L, arg) && lai_last_arg(L) > arg) return arg + 1; /* sort(x, nil, {...}) */
  return arg;
}

static int l_sort(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  int dim, o = dim_then_opts(L, 2, t, &dim);
  lai_checkmax(L, o);
  lai_checkopts(L, o, LAI_OPTS("descending", "stable"));
  (void)lai_optboolfield(L, o, "stable", 1); /* the sort is always stable */
  ai_tensor *v, *ix;
  int rc = ai_sort(t, dim, lai_optboolfield(L, o, "descending", 0), &v, &ix);
  return push_pair(L, rc, v, ix);
}

static int l_argsort(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  int dim, o = dim_then_opts(L, 2, t, &dim);
  lai_checkmax(L, o);
  lai_checkopts(L, o, LAI_OPTS("descending", "stable"));
  (void)lai_optboolfield(L, o, "stable", 1);
  ai_tensor *v, *ix;
  if (ai_sort(t, dim, lai_optboolfield(L, o, "descending", 0), &v, &ix)) return lai_error(L);
  ai_unref(v);
  return lai_push(L, lai_one_based(ix));
}

static int l_topk(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lua_Integer k = lai_checkint(L, 2);
  int dim, o = dim_then_opts(L, 3, t, &dim);
  lai_checkmax(L, o);
  lai_checkopts(L, o, LAI_OPTS("largest", "sorted"));
  (void)lai_optboolfield(L, o, "sorted", 1); /* the k values always come sorted */
  ai_tensor *v, *ix;
  int rc = ai_topk(t, k, dim, lai_optboolfield(L, o, "largest", 1), &v, &ix);
  return push_pair(L, rc, v, ix);
}

static int l_kthvalue(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lua_Integer k = lai_checkint(L, 2);
  int dim, o = dim_then_opts(L, 3, t, &dim);
  lai_checkmax(L, o);
  lai_checkopts(L, o, LAI_OPTS("keepdim"));
  ai_tensor *v, *ix;
  int rc = ai_kthvalue(t, k, dim, lai_optboolfield(L, o, "keepdim", 1), &v, &ix);
  return push_pair(L, rc, v, ix);
}

/* median(x) -> the lower median of all elements; median(x, dim[, {keepdim=true}]) -> values, indices */
static int l_median(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  if (lua_isnoneornil(L, 2)) {
    lai_checkmax(L, 1);
    int64_t flat = -1;
    ai_tensor *f = ai_reshape(t, 1, &flat), *v = NULL, *ix = NULL;
    if (!f) return lai_error(L);
    int rc = ai_median(f, 0, false, &v, &ix);
    ai_unref(f);
    ai_unref(ix);
    if (rc) return lai_error(L);
    return lai_push(L, v);
  }
  int dim = lai_checkdim(L, 2, t->ndim);
  lai_checkmax(L, 3);
  lai_checkopts(L, 3, LAI_OPTS("keepdim"));
  ai_tensor *v, *ix;
  int rc = ai_median(t, dim, lai_optboolfield(L, 3, "keepdim", 1), &v, &ix);
  return push_pair(L, rc, v, ix);
}

/* quantile(x, q[, dim][, {keepdim=false, interpolation="linear"}]); q a number, a list or a
 * tensor; without dim, over all elements */
static int l_quantile(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  int o = 3, dim = 0;
  bool all = true;
  if (lua_type(L, 3) == LUA_TNUMBER) { dim = lai_checkdim(L, 3, t->ndim); all = false; o = 4; }
  else if (lua_isnil(L, 3) && lai_last_arg(L) > 3) o = 4;
  lai_checkmax(L, o);
  lai_checkopts(L, o, LAI_OPTS("keepdim", "interpolation"));
  bool keep = lai_optboolfield(L, o, "keepdim", 0);
  const char *mode = lai_optstrfield(L, o, "interpolation", "linear");
  static const char *const modes[] = {"linear", "lower", "higher", "nearest", "midpoint", NULL};
  int m = 0;
  while (modes[m] && strcmp(modes[m], mode)) m++;
  if (!modes[m])
    return luaL_argerror(L, o, lua_pushfstring(L, "interpolation must be linear, lower, higher, nearest or midpoint, got '%s'", mode));
  ai_tensor *q;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    q = ai_scalar(ai_is_float(t->dtype) ? t->dtype : AI_F32, lua_tonumber(L, 2));
  } else if (lai_test(L, 2)) {
    q = ai_ref(lai_test(L, 2));
  } else if (lua_istable(L, 2)) {
    int64_t n = (int64_t)lua_rawlen(L, 2);
    for (int64_t i = 0; i < n; i++) {
      lua_rawgeti(L, 2, i + 1);
      if (lua_type(L, -1) != LUA_TNUMBER) return luaL_argerror(L, 2, "q must hold numbers");
      lua_pop(L, 1);
    }
    q = ai_empty(AI_F64, 1, &n);
    for (int64_t i = 0; q && i < n; i++) {
      lua_rawgeti(L, 2, i + 1);
      ((double *)ai_data(q))[i] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else {
    return luaL_argerror(L, 2, lua_pushfstring(L, "q (a number, a list or a tensor) expected, got %s", luaL_typename(L, 2)));
  }
  if (!q) return lai_error(L);
  lai_push(L, q); /* owned by the stack from here on */
  ai_tensor *x = t;
  if (all) {
    int64_t flat = -1;
    x = ai_reshape(t, 1, &flat);
    if (!x) return lai_error(L);
  }
  ai_tensor *r = ai_quantile(x, q, dim, keep && !all, (ai_quantile_mode)m);
  if (all) ai_unref(x);
  return lai_push(L, r);
}

/* unique(x[, {sorted=true, return_inverse=false, return_counts=false}]) -> values[, inverse][, counts] */
static int l_unique(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 2);
  lai_checkopts(L, 2, LAI_OPTS("sorted", "return_inverse", "return_counts"));
  if (!lai_optboolfield(L, 2, "sorted", 1))
    return luaL_argerror(L, 2, "sorted = false is not supported: the values always come sorted");
  bool inv = lai_optboolfield(L, 2, "return_inverse", 0), cnt = lai_optboolfield(L, 2, "return_counts", 0);
  ai_tensor *v, *ix = NULL, *c = NULL;
  if (ai_unique(t, &v, inv ? &ix : NULL, cnt ? &c : NULL)) return lai_error(L);
  ai_tensor *res[3] = {v, NULL, NULL};
  int n = 1;
  if (inv) res[n++] = lai_one_based(ix);
  if (cnt) res[n++] = c;
  for (int i = 1; i < n; i++)
    if (!res[i]) { for (int j = 0; j < n; j++) ai_unref(res[j]); return lai_error(L); }
  lai_push_list(L, res, n);
  for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  return n;
}

/* searchsorted(sorted_sequence, values[, {right=false}]) -> the 1-based positions where the
 * values would go to keep the sequence sorted (#seq + 1 past its end) */
static int l_searchsorted(lua_State *L) {
  ai_tensor *s = lai_check(L, 1);
  lai_checkmax(L, 3);
  lai_checkopts(L, 3, LAI_OPTS("right"));
  bool right = lai_optboolfield(L, 3, "right", 0);
  ai_tensor *v = lai_totensor(L, 2, s);
  lai_push(L, v); /* owned by the stack */
  return lai_push(L, lai_one_based(ai_searchsorted(s, v, right)));
}

void lai_open_sort(lua_State *L) {
  const luaL_Reg fns[] = {{"sort", l_sort}, {"argsort", l_argsort}, {"topk", l_topk}, {"kthvalue", l_kthvalue},
                          {"median", l_median}, {"quantile", l_quantile}, {"unique", l_unique},
                          {"searchsorted", l_searchsorted}, {NULL, NULL}};
  lai_register(L, fns);
  lua_pushvalue(L, -2);
  lai_register(L, fns);
  lua_pop(L, 1);
}
