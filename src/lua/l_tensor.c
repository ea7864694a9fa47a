/* l_tensor.c: the Tensor userdata: boxes, errors, the argument helpers shared by the binding
 * files (lbind.h), the metamethods (properties, indexing, __gc, ...) and the registration of
 * the tensor files: constructors in l_tensor_new.c, views and conversions in l_tensor_view.c.
 * Lua sees 1-based indices and dims. */
#include <math.h>
#include <stdio.h>
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

/* Converts 0-based positions from the core to Lua's 1-based ones (a new reference, not
 * recorded); takes over ix (NULL passes through, for chaining a failed core call). */
ai_tensor *lai_one_based(ai_tensor *ix) {
  if (!ix) return NULL;
  bool was = ai_set_grad_enabled(false);
  ai_tensor *r = ai_binary_scalar_int(AI_ADD, ix, 1, false);
  ai_set_grad_enabled(was);
  ai_unref(ix);
  return r;
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
    /* a key beside the sizes would be dropped: zeros({dtype = "f64"}) is options without a shape */
    const char *key = lai_key_beside(L, arg, n);
    if (key)
      return luaL_argerror(L, arg, lua_pushfstring(L, "a shape table holds sizes only, got the key %s (options go after "
                                                      "the shape: zeros({2, 3}, {dtype = \"f64\"}))", key));
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
  /* a nil where a size stands (x.shape[0], the 0-based habit) would make a smaller tensor: only
   * a last nil after the sizes (options left out) is allowed */
  if (lua_isnil(L, arg + n) && (n == 0 ? !lua_isnone(L, arg + n) : lua_gettop(L) > arg + n))
    return luaL_argerror(L, arg + n, n == 0 ? "size expected, got nil (shapes and indices are 1-based: x.shape[1] is "
                                              "the first size)"
                                            : "size or options expected, got nil (shapes are 1-based: x.shape[1] is the "
                                              "first size)");
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

/* Options table helpers: a missing table or field gives the default; a field of the wrong type
 * is an error that names the function, the argument and the option. */
static int optfield(lua_State *L, int arg, const char *k) {
  if (lua_type(L, arg) != LUA_TTABLE || lai_test(L, arg)) return 0;
  lua_getfield(L, arg, k);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return 0; }
  return 1;
}
static int bad_option(lua_State *L, int arg, const char *k, const char *what) {
  return luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be %s, got %s", k, what, luaL_typename(L, -1)));
}

lua_Number lai_optnumfield(lua_State *L, int arg, const char *k, lua_Number def) {
  if (!optfield(L, arg, k)) return def;
  int ok;
  lua_Number v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumberx(L, -1, &ok) : (ok = 0);
  if (!ok) bad_option(L, arg, k, "a number");
  lua_pop(L, 1);
  return v;
}

lua_Integer lai_optintfield(lua_State *L, int arg, const char *k, lua_Integer def) {
  if (!optfield(L, arg, k)) return def;
  int ok;
  lua_Integer v = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &ok) : (ok = 0);
  if (!ok) bad_option(L, arg, k, "an integer");
  lua_pop(L, 1);
  return v;
}

int lai_optboolfield(lua_State *L, int arg, const char *k, int def) {
  if (!optfield(L, arg, k)) return def;
  if (!lua_isboolean(L, -1)) bad_option(L, arg, k, "a boolean");
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

const char *lai_optstrfield(lua_State *L, int arg, const char *k, const char *def) {
  if (!optfield(L, arg, k)) return def;
  const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  if (!v) bad_option(L, arg, k, "a string");
  lua_pop(L, 1); /* the string stays alive: it is the table's field */
  return v;
}

ai_dtype lai_optdtype(lua_State *L, int arg, ai_dtype def) {
  const char *s = lai_optstrfield(L, arg, "dtype", NULL);
  if (!s) return def;
  ai_dtype dt = AI_F32;
  if (!dtype_from_string(s, &dt))
    luaL_argerror(L, arg, lua_pushfstring(L, "unknown dtype '%s' (expected f32, f64, i64 or u8)", s));
  return dt;
}

const char *lai_key_beside(lua_State *L, int idx, lua_Integer n) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    lua_Integer k;
    if (lai_isint(L, -1, &k) && k >= 1 && k <= n) continue;
    int t = lua_type(L, -1);
    if (t == LUA_TSTRING) return lua_pushfstring(L, "'%s'", lua_tostring(L, -1));
    if (lua_isinteger(L, -1)) return lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, -1));
    if (t == LUA_TNUMBER) return lua_pushfstring(L, "%f", lua_tonumber(L, -1));
    return lua_pushfstring(L, "of type %s", luaL_typename(L, -1));
  }
  return NULL;
}

bool lai_unknown_key(lua_State *L, int idx, const char *const *known) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    bool ok = false;
    for (int i = 0; k && known[i]; i++) if (!strcmp(k, known[i])) { ok = true; break; }
    if (!ok) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (int i = 0; known[i]; i++) {
        if (i) luaL_addstring(&b, ", ");
        luaL_addstring(&b, known[i]);
      }
      if (!known[0]) luaL_addstring(&b, "none");
      luaL_pushresult(&b);
      return true;
    }
  }
  return false;
}

void lai_checkopts(lua_State *L, int arg, const char *const *known) {
  int t = lua_type(L, arg);
  if (t == LUA_TNONE || t == LUA_TNIL) return;
  if (t != LUA_TTABLE || lai_test(L, arg))
    luaL_argerror(L, arg, lua_pushfstring(L, "options table expected, got %s", luaL_typename(L, arg)));
  if (!lai_unknown_key(L, arg, known)) return;
  if (lua_type(L, -2) == LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s' (known: %s)", lua_tostring(L, -2), lua_tostring(L, -1)));
  luaL_argerror(L, arg, lua_pushfstring(L, "option names must be strings, got a %s key (known: %s)",
                                         luaL_typename(L, -2), lua_tostring(L, -1)));
}

int lai_last_arg(lua_State *L) {
  int top = lua_gettop(L);
  while (top > 0 && lua_isnil(L, top)) top--;
  return top;
}

int lai_too_many(lua_State *L, int n) {
  int given = lai_last_arg(L), most = n;
  lua_Debug ar;
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.namewhat && !strcmp(ar.namewhat, "method")) {
    given--; /* x:f(a, b): count what the caller wrote, as luaL_argerror numbers it */
    most--;
  }
  return luaL_argerror(L, n + 1, lua_pushfstring(L, "too many arguments (%d given, at most %d expected)", given, most));
}

lua_Integer lai_checkint(lua_State *L, int arg) {
  int ok;
  lua_Integer v = lua_type(L, arg) == LUA_TNUMBER ? lua_tointegerx(L, arg, &ok) : (ok = 0);
  if (!ok) {
    if (lua_type(L, arg) == LUA_TNUMBER)
      luaL_argerror(L, arg, lua_pushfstring(L, "an integer expected, got %f (not a whole number)", lua_tonumber(L, arg)));
    luaL_typeerror(L, arg, "integer");
  }
  return v;
}

void lai_register(lua_State *L, const luaL_Reg *fns) {
  for (; fns->name; fns++) {
    lua_pushcfunction(L, fns->func);
    lua_setfield(L, -2, fns->name);
  }
}

void lai_apply_requires_grad(lua_State *L, int opts) {
  if (lai_optboolfield(L, opts, "requires_grad", 0)) {
    ai_tensor *t = lai_check(L, -1);
    if (ai_set_requires_grad(t, true)) lai_error(L);
  }
}

/* ---------------------------------------------------------------- metamethods */

static int m_index(lua_State *L) {
  int kt = lua_type(L, 2);
  if (kt == LUA_TSTRING) {
    /* methods first (upvalue 1), then properties */
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    ai_tensor *t = lai_check(L, 1);
    const char *k = lua_tostring(L, 2);
    if (!strcmp(k, "shape")) { lai_push_shape(L, t); return 1; }
    if (!strcmp(k, "dtype")) { lua_pushstring(L, ai_dtype_names[t->dtype]); return 1; }
    if (!strcmp(k, "grad")) {
      if (!t->grad) return 0;
      return lai_push(L, ai_ref(t->grad));
    }
    if (!strcmp(k, "ndim")) { lua_pushinteger(L, t->ndim); return 1; }
    if (!strcmp(k, "is_leaf")) { lua_pushboolean(L, t->grad_fn == NULL); return 1; }
    if (!strcmp(k, "requires_grad")) { lua_pushboolean(L, t->requires_grad); return 1; }
    if (!strcmp(k, "data")) return lai_push(L, ai_detach(t)); /* shares storage, no grad (PyTorch's .data) */
    if (!strcmp(k, "grad_fn")) {
      const char *n = ai_grad_fn_name(t);
      if (n) lua_pushstring(L, n); else lua_pushnil(L);
      return 1;
    }
    if (!strcmp(k, "T")) return lai_push(L, t->ndim < 2 ? ai_view(t, t->ndim, t->shape) : ai_transpose(t, -1, -2));
    return 0;
  }
  ai_tensor *t = lai_check(L, 1);
  /* x[#x + 1] is nil, as past the end of a Lua sequence, so that ipairs(x) ends after the last
   * row; other indices out of range stay errors */
  if (kt == LUA_TNUMBER && t->ndim > 0 && lua_isinteger(L, 2) && lua_tointeger(L, 2) == t->shape[0] + 1) return 0;
  if (kt == LUA_TNUMBER || kt == LUA_TTABLE || kt == LUA_TUSERDATA) {
    ai_tensor *m = kt == LUA_TUSERDATA ? lai_check(L, 2) : NULL;
    /* x[mask] with a mask that only broadcasts to x: its selected elements, as before */
    if (m && m->dtype == AI_U8 && !ai_same_shape(m, t)) return lai_push(L, ai_masked_select(t, m));
    return lai_push(L, lai_index_view(L, t, 2));
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
    if (!strcmp(k, "requires_grad")) {
      luaL_checktype(L, 3, LUA_TBOOLEAN);
      if (ai_set_requires_grad(t, lua_toboolean(L, 3))) return lai_error(L);
      return 0;
    }
    if (!strcmp(k, "data")) { /* x.data = y: x takes y's values (storage, dtype, shape) */
      if (ai_set_(t, lai_check(L, 3))) return lai_error(L);
      return 0;
    }
    return luaL_error(L, "cannot set field '%s' of a tensor (its fields are grad, requires_grad and data)", k);
  }
  ai_tensor *m = lai_test(L, 2);
  if (m && m->dtype == AI_U8 && (lua_type(L, 3) == LUA_TNUMBER || lua_isboolean(L, 3))) { /* x[mask] = v */
    double v = lua_isboolean(L, 3) ? lua_toboolean(L, 3) : luaL_checknumber(L, 3);
    if (!ai_is_float(t->dtype) && v != floor(v))
      return luaL_error(L, "index assignment: %f is not a whole number, and an %s tensor holds integers", v,
                        ai_dtype_names[t->dtype]);
    if (ai_masked_fill_(t, m, v)) return lai_error(L);
    return 0;
  }
  if (lai_index_assign(L, t, 2, 3)) return lai_error(L);
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

/* A 0-dim (or one-element) tensor beside a number acts as its number in Lua's comparisons and
 * concatenation: `if loss < best`, "loss " .. loss. Anything bigger is an error that names the
 * elementwise form. */
static int one_number(lua_State *L, int i, const char *op, const char *instead, lua_Number *v) {
  ai_tensor *t = lai_test(L, i);
  if (!t) {
    int ok;
    *v = lua_tonumberx(L, i, &ok);
    if (!ok) return luaL_error(L, "attempt to %s a tensor with a %s", op, luaL_typename(L, i));
    return 0;
  }
  if (ai_numel(t) != 1) {
    char b[128];
    return luaL_error(L, "attempt to %s a tensor of shape %s: only a one-element tensor acts as a number; use %s",
                      op, ai_shape_str(t, b, sizeof b), instead);
  }
  *v = ai_item(t);
  return 1;
}
static int m_lt(lua_State *L) {
  lua_Number a, b;
  one_number(L, 1, "compare", "x:lt(y) for elementwise results, or x:item()", &a);
  one_number(L, 2, "compare", "x:lt(y) for elementwise results, or x:item()", &b);
  lua_pushboolean(L, a < b);
  return 1;
}
static int m_le(lua_State *L) {
  lua_Number a, b;
  one_number(L, 1, "compare", "x:le(y) for elementwise results, or x:item()", &a);
  one_number(L, 2, "compare", "x:le(y) for elementwise results, or x:item()", &b);
  lua_pushboolean(L, a <= b);
  return 1;
}
static int m_concat(lua_State *L) {
  for (int i = 1; i <= 2; i++) {
    ai_tensor *t = lai_test(L, i);
    if (!t) {
      if (!lua_isstring(L, i)) return luaL_error(L, "attempt to concatenate a %s value", luaL_typename(L, i));
      continue;
    }
    lua_Number v;
    one_number(L, i, "concatenate", "tostring(x)", &v);
    int64_t pos[AI_MAXDIM] = {0};
    if (ai_is_float(t->dtype)) lua_pushnumber(L, v);
    else lua_pushinteger(L, ai_get_int(t, pos));
    lua_replace(L, i);
  }
  lua_concat(L, 2);
  return 1;
}

/* pairs(x): the rows, x[1] ... x[#x] */
static int pairs_next(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lua_Integer i = lua_isnil(L, 2) ? 1 : luaL_checkinteger(L, 2) + 1;
  if (t->ndim == 0 || i > t->shape[0]) return 0;
  lua_pushinteger(L, i);
  lai_push(L, ai_select(t, 0, i - 1));
  return 2;
}
static int m_pairs(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  if (t->ndim == 0) return luaL_error(L, "pairs: a 0-dim tensor has no rows; use x:item()");
  lua_pushcfunction(L, pairs_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

static int m_tostring(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_format_tensor(L, t);
  return 1;
}

static int m_free(lua_State *L) {
  lai_checkmax(L, 1);
  return m_gc(L);
}

/* ---------------------------------------------------------------- Lua's number functions
 * string.format("%.3f", loss) and math.floor(loss) cannot take a tensor, and Lua's message
 * ("number expected, got Tensor") does not say what to do: these wrappers call the original
 * function and, when it fails on an argument that is a tensor, say :item(). Errors on other
 * arguments read as Lua's own (with the caller's position and the function's name). */

/* Drops the copy of the arguments, which must not keep tensors alive. */
static void forget_args(lua_State *L, int n) {
  lua_pushvalue(L, lua_upvalueindex(3));
  for (int i = 1; i <= n; i++) { lua_pushnil(L); lua_rawseti(L, -2, i); }
  lua_pop(L, 1);
}

static int number_fn(lua_State *L, bool copied) {
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  if (lua_pcall(L, n, LUA_MULTRET, 0) == LUA_OK) {
    if (copied) forget_args(L, n);
    return lua_gettop(L);
  }
  const char *name = lua_tostring(L, lua_upvalueindex(2));
  const char *msg = lua_tostring(L, -1);
  int bad = 0;
  if (msg && sscanf(msg, "bad argument #%d", &bad) == 1 && bad >= 1 && bad <= n) {
    /* the original saw the call from C: give the message back its name and position */
    const char *paren = strchr(msg, '(');
    luaL_where(L, 1);
    bool tensor = false;
    if (copied) { /* the arguments were consumed by the call: look at the copy */
      lua_pushvalue(L, lua_upvalueindex(3));
      lua_rawgeti(L, -1, bad);
      tensor = lai_test(L, -1) != NULL;
      lua_pop(L, 2);
    }
    if (copied) forget_args(L, n);
    if (tensor)
      lua_pushfstring(L, "bad argument #%d to '%s' (a tensor is not a number: use t:item() for a one-element "
                         "tensor's value)", bad, name);
    else
      lua_pushfstring(L, "bad argument #%d to '%s' %s", bad, name, paren ? paren : "");
    lua_concat(L, 2);
  } else if (copied) {
    forget_args(L, n);
  }
  return lua_error(L);
}

/* The arguments are copied (into one table reused by the wrapper) only for calls that have a
 * userdata among them, the only ones that can fail on a tensor. */
static int number_fn_entry(lua_State *L) {
  int n = lua_gettop(L);
  bool any = false;
  for (int i = 1; i <= n && !any; i++) any = lua_type(L, i) == LUA_TUSERDATA;
  if (any) { /* only calls with a userdata argument can fail in the way this is for */
    lua_pushvalue(L, lua_upvalueindex(3));
    for (int i = 1; i <= n; i++) { lua_pushvalue(L, i); lua_rawseti(L, -2, i); }
    lua_pop(L, 1);
  }
  return number_fn(L, any);
}

static void wrap_number_functions(lua_State *L) {
  static const struct { const char *lib, *name; } fns[] = {
      {"string", "format"}, {"math", "floor"}, {"math", "ceil"}, {"math", "abs"}, {"math", "sqrt"},
      {"math", "exp"}, {"math", "log"}, {"math", "max"}, {"math", "min"}, {"math", "fmod"},
      {"math", "modf"}, {"math", "tointeger"}, {NULL, NULL}};
  for (int i = 0; fns[i].lib; i++) {
    if (lua_getglobal(L, fns[i].lib) != LUA_TTABLE) { lua_pop(L, 1); continue; }
    lua_getfield(L, -1, fns[i].name);
    if (!lua_iscfunction(L, -1) || lua_tocfunction(L, -1) == number_fn_entry) { lua_pop(L, 2); continue; }
    lua_pushstring(L, fns[i].name);
    lua_newtable(L);
    lua_pushcclosure(L, number_fn_entry, 3);
    lua_setfield(L, -2, fns[i].name);
    lua_pop(L, 1);
  }
}

/* ---------------------------------------------------------------- registration */

/* Expects the module table at -2 and the method table at -1. */
void lai_open_tensor(lua_State *L) {
  const luaL_Reg both[] = {{"free", m_free}, {NULL, NULL}};
  lai_open_tensor_new(L);
  lai_open_tensor_view(L);
  lua_pushvalue(L, -2);
  lai_register(L, both);
  lua_pop(L, 1);
  lai_register(L, both);
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
                           {"__lt", m_lt}, {"__le", m_le}, {"__concat", m_concat}, {"__pairs", m_pairs},
                           {NULL, NULL}};
  lai_register(L, meta);
  lua_pushliteral(L, "Tensor");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  wrap_number_functions(L);
}
