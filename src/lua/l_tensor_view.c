/* l_tensor_view.c: tensor properties (size, stride, item, tolist), dtype conversions, views
 * (view, reshape, permute, narrow, slice, expand, ...), in-place fills and copies, and the
 * index views behind x[i] and x[{a, b}]. */
#include <math.h>
#include <string.h>

#include "lbind.h"

/* ---------------------------------------------------------------- properties */

void lai_push_shape(lua_State *L, const ai_tensor *t) {
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, t->shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
}

static int m_size(lua_State *L) {
  lai_checkmax(L, 2);
  ai_tensor *t = lai_check(L, 1);
  if (lua_isnoneornil(L, 2)) { lai_push_shape(L, t); return 1; }
  int d = lai_checkdim(L, 2, t->ndim);
  lua_pushinteger(L, t->ndim ? t->shape[d] : 1);
  return 1;
}
static int m_dim(lua_State *L) {
  lai_checkmax(L, 1);
  lua_pushinteger(L, lai_check(L, 1)->ndim);
  return 1;
}
static int m_numel(lua_State *L) {
  lai_checkmax(L, 1);
  lua_pushinteger(L, ai_numel(lai_check(L, 1)));
  return 1;
}
static int m_stride(lua_State *L) {
  lai_checkmax(L, 2);
  ai_tensor *t = lai_check(L, 1);
  if (!lua_isnoneornil(L, 2)) { lua_pushinteger(L, t->stride[lai_checkdim(L, 2, t->ndim)]); return 1; }
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) { lua_pushinteger(L, t->stride[d]); lua_rawseti(L, -2, d + 1); }
  return 1;
}
static int m_is_contiguous(lua_State *L) {
  lai_checkmax(L, 1);
  lua_pushboolean(L, ai_is_contiguous(lai_check(L, 1)));
  return 1;
}

/* An element as a Lua number: floats as floats, integers exactly as Lua integers */
static void push_element(lua_State *L, const ai_tensor *t, const int64_t *pos) {
  if (ai_is_float(t->dtype)) lua_pushnumber(L, ai_get(t, pos));
  else lua_pushinteger(L, ai_get_int(t, pos));
}

static int m_item(lua_State *L) {
  lai_checkmax(L, 1);
  ai_tensor *t = lai_check(L, 1);
  if (ai_numel(t) != 1) {
    char b[128];
    return luaL_error(L, "item: the tensor has %d elements (shape %s); item() needs exactly one",
                      (int)ai_numel(t), ai_shape_str(t, b, sizeof b));
  }
  int64_t pos[AI_MAXDIM] = {0};
  push_element(L, t, pos);
  return 1;
}

static void tolist_rec(lua_State *L, const ai_tensor *t, int depth, int64_t *pos) {
  if (depth == t->ndim) { push_element(L, t, pos); return; }
  lua_createtable(L, (int)t->shape[depth], 0);
  for (int64_t i = 0; i < t->shape[depth]; i++) {
    pos[depth] = i;
    tolist_rec(L, t, depth + 1, pos);
    lua_rawseti(L, -2, i + 1);
  }
}
static int m_tolist(lua_State *L) {
  lai_checkmax(L, 1);
  ai_tensor *t = lai_check(L, 1);
  int64_t pos[AI_MAXDIM] = {0};
  luaL_checkstack(L, 2 * AI_MAXDIM + 4, NULL);
  tolist_rec(L, t, 0, pos);
  return 1;
}

static int convert(lua_State *L, ai_dtype dt) {
  lai_checkmax(L, 1);
  return lai_push(L, ai_to_dtype(lai_check(L, 1), dt));
}
static int m_float(lua_State *L) { return convert(L, AI_F32); }
static int m_double(lua_State *L) { return convert(L, AI_F64); }
static int m_long(lua_State *L) { return convert(L, AI_I64); }
static int m_byte(lua_State *L) { return convert(L, AI_U8); }
static int m_to(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 2);
  if (lua_istable(L, 2)) {
    lai_checkopts(L, 2, LAI_OPTS("dtype"));
    return lai_push(L, ai_to_dtype(t, lai_optdtype(L, 2, t->dtype)));
  }
  return lai_push(L, ai_to_dtype(t, lai_checkdtype(L, 2)));
}
/* x:type() -> "f32"; x:type(dtype) -> x converted, as PyTorch's type(dtype) */
static int m_type(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 2);
  if (lua_isnoneornil(L, 2)) { lua_pushstring(L, ai_dtype_names[t->dtype]); return 1; }
  return lai_push(L, ai_to_dtype(t, lai_checkdtype(L, 2)));
}

/* ---------------------------------------------------------------- views */

/* view/reshape take -1 for an inferred size, so read them without the >= 0 check */
static int reshape_args(lua_State *L, int64_t *shape) {
  int n = 0;
  if (lua_istable(L, 2)) {
    lai_checkmax(L, 2); /* x:view({3, 2}, 1): the sizes are the table's */
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
static int m_view(lua_State *L) {
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
  lai_checkmax(L, 2);
  ai_tensor *t = lai_check(L, 1), *o = lai_check(L, 2);
  return lai_push(L, ai_reshape(t, o->ndim, o->shape));
}

static int m_permute(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  int perm[AI_MAXDIM], n = 0;
  if (lua_istable(L, 2)) {
    lai_checkmax(L, 2);
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
  lai_checkmax(L, 3);
  if (t->ndim < 2 && lua_isnoneornil(L, 2)) return lai_push(L, ai_view(t, t->ndim, t->shape));
  int d0 = lua_isnoneornil(L, 2) ? 0 : lai_checkdim(L, 2, t->ndim);
  int d1 = lua_isnoneornil(L, 3) ? 1 : lai_checkdim(L, 3, t->ndim);
  return lai_push(L, ai_transpose(t, d0, d1));
}

static int m_t(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 1);
  if (t->ndim > 2) return luaL_error(L, "t: expects a tensor with at most 2 dimensions (use transpose)");
  if (t->ndim < 2) return lai_push(L, ai_view(t, t->ndim, t->shape));
  return lai_push(L, ai_transpose(t, 0, 1));
}

/* narrow(dim, start, length): start is 1-based */
static int m_narrow(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 4);
  int d = lai_checkdim(L, 2, t->ndim);
  lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  if (t->ndim && start < 0) start += t->shape[d] + 1;
  return lai_push(L, ai_narrow(t, d, start > 0 ? start - 1 : -1, len)); /* start < 1: out of range */
}

static int m_select(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 3);
  int d = lai_checkdim(L, 2, t->ndim);
  lua_Integer i = luaL_checkinteger(L, 3);
  if (i == 0) return luaL_argerror(L, 3, "indices are 1-based (0 is not an index)");
  return lai_push(L, ai_select(t, d, i > 0 ? i - 1 : i));
}

/* slice(dim, first, last[, step]): inclusive of last, 1-based, negatives from the end */
static int m_slice(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 5);
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
  lai_checkmax(L, 2);
  ai_tensor *t = lai_check(L, 1), *o = lai_check(L, 2);
  return lai_push(L, ai_expand(t, o->ndim, o->shape));
}

static int m_squeeze(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 2);
  if (lua_isnoneornil(L, 2)) return lai_push(L, ai_squeeze_all(t));
  return lai_push(L, ai_squeeze(t, lai_checkdim(L, 2, t->ndim)));
}
static int m_unsqueeze(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 2);
  return lai_push(L, ai_unsqueeze(t, lai_checkdim(L, 2, t->ndim + 1)));
}
static int m_flatten(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 3);
  int s = lua_isnoneornil(L, 2) ? 0 : lai_checkdim(L, 2, t->ndim);
  int e = lua_isnoneornil(L, 3) ? t->ndim - 1 : lai_checkdim(L, 3, t->ndim);
  return lai_push(L, ai_flatten(t, s, e < 0 ? 0 : e));
}
static int m_contiguous(lua_State *L) { lai_checkmax(L, 1); return lai_push(L, ai_contiguous(lai_check(L, 1))); }
static int m_clone(lua_State *L) { lai_checkmax(L, 1); return lai_push(L, ai_clone(lai_check(L, 1))); }

/* ---------------------------------------------------------------- in-place */

int lai_fill_value(lua_State *L, ai_tensor *t, int arg) {
  if (lua_isboolean(L, arg)) return ai_fill_(t, lua_toboolean(L, arg));
  if (lua_isinteger(L, arg)) return ai_fill_int_(t, lua_tointeger(L, arg)); /* exact for i64 */
  lua_Number v = luaL_checknumber(L, arg);
  if (!ai_is_float(t->dtype) && v == v && v != floor(v))
    return ai_seterror("%g is not a whole number, and an %s tensor holds integers", v, ai_dtype_names[t->dtype]);
  return ai_fill_(t, v);
}

static int m_copy_(lua_State *L) {
  lai_checkmax(L, 2);
  ai_tensor *t = lai_check(L, 1), *s = lai_totensor(L, 2, t);
  int rc = ai_copy_(t, s);
  ai_unref(s);
  if (rc) return lai_error(L);
  lua_settop(L, 1);
  return 1;
}
static int m_fill_(lua_State *L) {
  lai_checkmax(L, 2);
  ai_tensor *t = lai_check(L, 1);
  if (lai_fill_value(L, t, 2)) return lai_error(L);
  lua_settop(L, 1);
  return 1;
}
static int m_zero_(lua_State *L) {
  lai_checkmax(L, 1);
  if (ai_zero_(lai_check(L, 1))) return lai_error(L);
  lua_settop(L, 1);
  return 1;
}

/* ---------------------------------------------------------------- indexing */

/* Reads one part of an index from the value at `arg`: an integer, a range table ({} all, {a},
 * {a, b}, {a, b, step}) or an index tensor (i64 positions or a u8 mask, borrowed). */
static void index_part(lua_State *L, int arg, int pos, ai_index_part *q) {
  memset(q, 0, sizeof *q);
  if (lua_type(L, arg) == LUA_TNUMBER) {
    int ok;
    q->kind = AI_INDEX_INT;
    q->a = lua_tointegerx(L, arg, &ok);
    if (!ok) luaL_error(L, "index: %f is not a whole number (indices are integers)", lua_tonumber(L, arg));
    return;
  }
  if ((q->t = lai_test(L, arg))) { q->kind = AI_INDEX_TENSOR; return; }
  if (lua_istable(L, arg)) { /* {} = all, {a} = a..a kept as a dim, {a, b[, step]} inclusive */
    q->kind = AI_INDEX_RANGE;
    q->a = 1; q->b = -1; q->step = 1;
    int n = (int)lua_rawlen(L, arg);
    lua_Integer v[3];
    for (int i = 0; i < n && i < 3; i++) {
      lua_rawgeti(L, arg, i + 1);
      int ok;
      v[i] = lua_tointegerx(L, -1, &ok);
      if (!ok) luaL_error(L, "index: part %d: a range holds integers, got %s", pos, luaL_typename(L, -1));
      lua_pop(L, 1);
    }
    if (n > 3) luaL_error(L, "index: part %d: a range is {first, last[, step]}, got %d values", pos, n);
    if (n >= 1) q->a = q->b = v[0];
    if (n >= 2) q->b = v[1];
    if (n >= 3) q->step = v[2];
    return;
  }
  luaL_error(L, "index: expected an integer or a range table (or an index tensor), got %s", luaL_typename(L, arg));
}

/* The parts of the key at `key` (a number, a tensor, or a table of parts); the tensors they
 * borrow stay alive in the key. */
static int index_parts(lua_State *L, int key, ai_index_part *parts) {
  if (!lua_istable(L, key) || lai_test(L, key)) { index_part(L, key, 1, &parts[0]); return 1; }
  int n = (int)lua_rawlen(L, key);
  if (n > 2 * AI_MAXDIM) luaL_error(L, "index: too many indices (%d)", n);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, key, i);
    index_part(L, lua_gettop(L), i, &parts[i - 1]);
    lua_pop(L, 1);
  }
  return n;
}

ai_tensor *lai_index_view(lua_State *L, ai_tensor *t, int key) {
  ai_index_part parts[2 * AI_MAXDIM];
  int n = index_parts(L, key, parts);
  return ai_index(t, n, parts);
}

int lai_index_assign(lua_State *L, ai_tensor *t, int key, int value) {
  ai_index_part parts[2 * AI_MAXDIM];
  int n = index_parts(L, key, parts);
  bool advanced = false;
  for (int i = 0; i < n; i++) advanced = advanced || parts[i].kind == AI_INDEX_TENSOR;
  if (!advanced) { /* a view: fill it or copy into it */
    ai_tensor *dst = ai_index(t, n, parts);
    if (!dst) return -1;
    int rc;
    if (lua_type(L, value) == LUA_TNUMBER || lua_isboolean(L, value)) {
      rc = lai_fill_value(L, dst, value);
    } else {
      ai_tensor *src = lai_test(L, value);
      if (!src) {
        ai_unref(dst);
        return luaL_error(L, "index assignment: expected a number or a tensor, got %s", luaL_typename(L, value));
      }
      rc = ai_copy_(dst, src);
    }
    ai_unref(dst);
    return rc;
  }
  ai_tensor *src = lai_test(L, value);
  if (src) return ai_index_put_(t, n, parts, src);
  if (lua_type(L, value) != LUA_TNUMBER && !lua_isboolean(L, value))
    return luaL_error(L, "index assignment: expected a number or a tensor, got %s", luaL_typename(L, value));
  ai_tensor *v = ai_empty(t->dtype, 0, NULL);
  if (!v) return -1;
  int rc = lai_fill_value(L, v, value);
  if (!rc) rc = ai_index_put_(t, n, parts, v);
  ai_unref(v);
  return rc;
}

/* Expects the module table at -2 and the method table at -1. */
void lai_open_tensor_view(lua_State *L) {
  const luaL_Reg methods[] = {
      {"size", m_size}, {"dim", m_dim}, {"numel", m_numel}, {"nelement", m_numel}, {"stride", m_stride},
      {"is_contiguous", m_is_contiguous}, {"item", m_item}, {"tolist", m_tolist}, {"float", m_float},
      {"double", m_double}, {"long", m_long}, {"byte", m_byte}, {"to", m_to}, {"type", m_type},
      {"view", m_view}, {"reshape", m_reshape}, {"view_as", m_view_as}, {"permute", m_permute},
      {"transpose", m_transpose}, {"t", m_t}, {"narrow", m_narrow}, {"select", m_select},
      {"slice", m_slice}, {"expand", m_expand}, {"expand_as", m_expand_as}, {"squeeze", m_squeeze},
      {"unsqueeze", m_unsqueeze}, {"flatten", m_flatten}, {"contiguous", m_contiguous},
      {"clone", m_clone}, {"copy_", m_copy_}, {"fill_", m_fill_}, {"zero_", m_zero_}, {NULL, NULL}};
  lai_register(L, methods);
}
