/* l_data.c: ai._loader, the Lua face of the C batch prefetcher (src/core/loader.h) used by
 * ai.data.DataLoader, plus small helpers for the Lua libraries (isatty, the counter-based uniform
 * draw shared by the Lua and C augmentation paths).
 *
 *   _loader.new(data, labels|nil, order, opts) -> loader userdata
 *     data    tensor N x ...; u8 or f32 when converting, any dtype for raw copies
 *     labels  tensor N x ... of any dtype, or nil
 *     order   i64 tensor of 0-based sample indices (the epoch's order)
 *     opts    batch_size (required), drop_last, seed, epoch, start (0-based first batch),
 *             pos_offset, pos_stride (the draws of order position i are those of position
 *             pos_offset + i * pos_stride: a shard of a larger order),
 *             prefetch (ring slots, 0 = no thread; default 3), convert (f32 output), divisor,
 *             copy (copy batches into core tensors instead of wrapping the buffers; default true),
 *             augs = list of {kind = "normalize", mean = {...}, std = {...}}
 *                            {kind = "hflip", p = 0.5}
 *                            {kind = "crop", size = {h, w}, padding = 0, random = true}
 *                            {kind = "shift", max = {dy, dx}}
 *   loader:next() -> x, y (y nil without labels), or nothing when the epoch is over
 *   loader:close(); #loader (batches per epoch); loader:sample_shape(); loader:stats()
 *   _loader.uniform(seed, epoch, pos, k) -> the k-th draw (0-based) of order position pos
 *   _loader.isatty(fd | file) -> boolean
 *   _loader.now() -> seconds of a monotonic clock; _loader.wall() -> Unix time with fractions
 *
 * The userdata owns the C loader and references to the tensors it reads; __gc and __close stop
 * and join the worker thread, so a dropped loader or an error never leaves a thread running. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lualib.h>

#include "lbind.h"
#include "../core/loader.h"

#define LOADER_MT "aiart.Loader"

typedef struct {
  ai_loader *ld;
  ai_tensor *data, *labels, *order; /* contiguous references read by the worker */
  ai_dtype out_dtype, label_dtype;
  int label_ndim;
  int64_t label_shape[AI_MAXDIM];
  int copy;
} lai_loader;

static void loader_release(lai_loader *u) {
  if (u->ld) ai_loader_free(u->ld); /* joins the thread before the tensors go */
  u->ld = NULL;
  ai_unref(u->data);
  ai_unref(u->labels);
  ai_unref(u->order);
  u->data = u->labels = u->order = NULL;
}

static int loader_gc(lua_State *L) {
  lai_loader *u = luaL_checkudata(L, 1, LOADER_MT);
  loader_release(u);
  return 0;
}

static lai_loader *check_open(lua_State *L) {
  lai_loader *u = luaL_checkudata(L, 1, LOADER_MT);
  if (!u->ld) luaL_error(L, "loader: used after close");
  return u;
}

static ai_tensor *contiguous_nograd(ai_tensor *t) {
  bool prev = ai_set_grad_enabled(false);
  ai_tensor *c = ai_contiguous(t);
  ai_set_grad_enabled(prev);
  return c;
}

/* A non-negative int (Lua's rule: 2.0 is 2; too large is refused, not cut) at index i. */
static bool small_int(lua_State *L, int i, int *out) {
  lua_Integer v;
  if (!lai_isint(L, i, &v) || v < 0 || v > INT_MAX) return false;
  *out = (int)v;
  return true;
}

/* A non-negative integer or (when `pair`) a pair {a, b} of them in field k of table t. */
static void pair_field(lua_State *L, int t, const char *k, int *out, int def, const char *what, bool pair) {
  out[0] = out[1] = def;
  lua_getfield(L, t, k);
  bool ok = true;
  if (lua_type(L, -1) == LUA_TNUMBER) {
    ok = small_int(L, -1, &out[0]);
    out[1] = out[0];
  } else if (pair && lua_istable(L, -1) && lua_rawlen(L, -1) == 2) {
    for (int i = 0; i < 2 && ok; i++) {
      lua_rawgeti(L, -1, i + 1);
      ok = small_int(L, -1, &out[i]);
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    ok = false;
  }
  if (!ok)
    luaL_error(L, "loader: %s '%s' must be a non-negative integer%s, got %s", what, k,
               pair ? " or a pair of them" : "", lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1) : luaL_typename(L, -1));
  lua_pop(L, 1);
}

/* The augmentation table at a may hold only the keys of its kind. */
static void aug_keys(lua_State *L, int a, int i, const char *kind, const char *const *known) {
  if (!lai_unknown_key(L, a, known)) return;
  bool named = lua_type(L, -2) == LUA_TSTRING;
  luaL_error(L, "loader: augmentation %d (%s): unknown field %s%s%s (known: %s)", i, kind, named ? "'" : "",
             named ? lua_tostring(L, -2) : luaL_typename(L, -2), named ? "'" : "", lua_tostring(L, -1));
}

/* Reads a list of numbers at field k of table t into a GC-owned float array; returns its length. */
static int float_list(lua_State *L, int t, const char *k, float **out) {
  lua_getfield(L, t, k);
  int n;
  if (lua_type(L, -1) == LUA_TNUMBER) {
    float *f = lua_newuserdatauv(L, sizeof(float), 0);
    f[0] = (float)lua_tonumber(L, -2);
    n = 1;
    *out = f;
  } else if (lua_istable(L, -1)) {
    n = (int)lua_rawlen(L, -1);
    if (n < 1) luaL_error(L, "loader: normalize '%s' is empty", k);
    float *f = lua_newuserdatauv(L, sizeof(float) * (size_t)n, 0);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, -2, i + 1);
      int ok;
      lua_Number v = lua_tonumberx(L, -1, &ok);
      if (!ok) luaL_error(L, "loader: normalize '%s' must hold numbers", k);
      f[i] = (float)v;
      lua_pop(L, 1);
    }
    *out = f;
  } else {
    return luaL_error(L, "loader: normalize needs '%s' (a number or a list of numbers)", k);
  }
  lua_remove(L, -2); /* keep the array userdata on the stack (alive until new returns) */
  return n;
}

static int parse_augs(lua_State *L, int opts, ai_loader_aug *augs) {
  lua_getfield(L, opts, "augs");
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return 0; }
  luaL_checktype(L, -1, LUA_TTABLE);
  int list = lua_gettop(L);
  int n = (int)lua_rawlen(L, list);
  if (n > AI_LOADER_MAXAUG) luaL_error(L, "loader: at most %d augmentations, got %d", AI_LOADER_MAXAUG, n);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, list, i + 1);
    int a = lua_gettop(L);
    if (!lua_istable(L, a)) luaL_error(L, "loader: augmentation %d is not a table", i + 1);
    lua_getfield(L, a, "kind");
    const char *kind = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (!kind) luaL_error(L, "loader: augmentation %d has no kind", i + 1);
    ai_loader_aug *g = &augs[i];
    memset(g, 0, sizeof *g);
    if (!strcmp(kind, "normalize")) {
      aug_keys(L, a, i + 1, kind, LAI_OPTS("kind", "mean", "std"));
      float *m, *s;
      int nm = float_list(L, a, "mean", &m), ns = float_list(L, a, "std", &s);
      if (nm != ns) luaL_error(L, "loader: normalize has %d means and %d stds", nm, ns);
      g->kind = AI_AUG_NORMALIZE;
      g->nch = nm;
      g->mean = m;
      g->std = s;
      /* the arrays stay on the stack above `a`; move them below the list so they live on */
      lua_rotate(L, list, 2);
      list += 2;
      a += 2;
    } else if (!strcmp(kind, "hflip")) {
      aug_keys(L, a, i + 1, kind, LAI_OPTS("kind", "p"));
      g->kind = AI_AUG_HFLIP;
      g->p = lai_optnumfield(L, a, "p", 0.5);
      if (!(g->p >= 0 && g->p <= 1)) luaL_error(L, "loader: hflip 'p' must be in [0, 1], got %f", g->p);
    } else if (!strcmp(kind, "crop")) {
      aug_keys(L, a, i + 1, kind, LAI_OPTS("kind", "size", "padding", "random"));
      int sz[2], pad[2];
      pair_field(L, a, "size", sz, 0, "crop", true);
      pair_field(L, a, "padding", pad, 0, "crop", false); /* the same on every side */
      g->kind = AI_AUG_CROP;
      g->out_h = sz[0];
      g->out_w = sz[1];
      g->pad = pad[0];
      g->random = lai_optboolfield(L, a, "random", 1);
    } else if (!strcmp(kind, "shift")) {
      aug_keys(L, a, i + 1, kind, LAI_OPTS("kind", "max"));
      int mx[2];
      pair_field(L, a, "max", mx, 0, "shift", true);
      g->kind = AI_AUG_SHIFT;
      g->max_dy = mx[0];
      g->max_dx = mx[1];
    } else {
      luaL_error(L, "loader: unknown augmentation kind '%s'", kind);
    }
    lua_settop(L, a - 1);
  }
  lua_settop(L, list - 1);
  return n;
}

/* _loader.new(data, labels, order, opts) */
static int loader_new(lua_State *L) {
  ai_tensor *data = lai_check(L, 1);
  ai_tensor *labels = lua_isnoneornil(L, 2) ? NULL : lai_check(L, 2);
  ai_tensor *order = lai_check(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  lai_lastopts(L, 4, LAI_OPTS("batch_size", "drop_last", "seed", "epoch", "start", "pos_offset", "pos_stride",
                              "prefetch", "convert", "divisor", "augs", "copy"));
  lua_settop(L, 4);
  if (data->ndim < 1) return luaL_argerror(L, 1, "data must have a sample dimension");
  if (labels && (labels->ndim < 1 || labels->shape[0] != data->shape[0]))
    return luaL_argerror(L, 2, "labels must have as many rows as data");
  if (order->dtype != AI_I64 || order->ndim != 1) return luaL_argerror(L, 3, "order must be a 1-D i64 tensor");
  ai_loader_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.batch_size = lai_optintfield(L, 4, "batch_size", 0);
  cfg.drop_last = lai_optboolfield(L, 4, "drop_last", 0);
  cfg.seed = (uint64_t)lai_optintfield(L, 4, "seed", 0);
  cfg.epoch = (uint64_t)lai_optintfield(L, 4, "epoch", 0);
  cfg.start_batch = lai_optintfield(L, 4, "start", 0);
  cfg.pos_offset = lai_optintfield(L, 4, "pos_offset", 0);
  cfg.pos_stride = lai_optintfield(L, 4, "pos_stride", 1);
  if (cfg.pos_offset < 0 || cfg.pos_stride < 1) return luaL_error(L, "loader: pos_offset must be >= 0 and pos_stride >= 1");
  lua_Integer prefetch = lai_optintfield(L, 4, "prefetch", 3);
  if (prefetch < 0 || prefetch > AI_LOADER_MAXPREFETCH)
    return luaL_error(L, "loader: prefetch must be 0..%d, got %I", AI_LOADER_MAXPREFETCH, (LUAI_UACINT)prefetch);
  cfg.prefetch = (int)prefetch;
  cfg.convert = lai_optboolfield(L, 4, "convert", 0);
  cfg.divisor = (float)lai_optnumfield(L, 4, "divisor", data->dtype == AI_U8 ? 255 : 1);
  int copy = lai_optboolfield(L, 4, "copy", 1);
  ai_loader_aug augs[AI_LOADER_MAXAUG];
  cfg.naugs = parse_augs(L, 4, augs); /* leaves float arrays on the stack */
  cfg.augs = augs;
  if (cfg.convert && data->dtype != AI_U8 && data->dtype != AI_F32)
    return luaL_error(L, "loader: converted data must be u8 or f32, got %s", ai_dtype_names[data->dtype]);

  lai_loader *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, LOADER_MT);
  u->copy = copy;
  u->data = contiguous_nograd(data);
  if (!u->data) return lai_error(L);
  if (labels && !(u->labels = contiguous_nograd(labels))) return lai_error(L);
  if (!(u->order = contiguous_nograd(order))) return lai_error(L);
  cfg.data = ai_data(u->data);
  cfg.dtype = (int)data->dtype;
  cfg.elem_size = ai_dtype_sizes[data->dtype];
  cfg.n = data->shape[0];
  cfg.sample_ndim = data->ndim - 1;
  for (int d = 1; d < data->ndim; d++) cfg.sample_shape[d - 1] = data->shape[d];
  if (labels) {
    size_t lb = ai_dtype_sizes[labels->dtype];
    for (int d = 1; d < labels->ndim; d++) lb *= (size_t)labels->shape[d];
    cfg.labels = ai_data(u->labels);
    cfg.label_bytes = lb ? lb : 1;
    u->label_dtype = labels->dtype;
    u->label_ndim = labels->ndim - 1;
    for (int d = 1; d < labels->ndim; d++) u->label_shape[d - 1] = labels->shape[d];
    if (lb == 0) cfg.labels = NULL;
  }
  cfg.order = ai_data(u->order);
  cfg.norder = order->shape[0];
  u->out_dtype = cfg.convert ? AI_F32 : data->dtype;
  char err[256];
  u->ld = ai_loader_new(&cfg, err, sizeof err);
  if (!u->ld) return luaL_error(L, "loader: %s", err);
  return 1;
}

/* Wraps (or copies) a buffer handed out by the loader as a tensor; frees it on failure. */
static ai_tensor *as_tensor(lai_loader *u, ai_dtype dt, int nd, const int64_t *shape, void *buf,
                            void (*release)(void *, void *), void *ctx) {
  if (!u->copy) {
    ai_tensor *t = ai_from_external(dt, nd, shape, buf, release, ctx);
    if (!t) release(ctx, buf);
    return t;
  }
  ai_tensor *t = ai_empty(dt, nd, shape);
  if (t) memcpy(ai_data(t), buf, (size_t)ai_numel(t) * ai_dtype_sizes[dt]);
  release(ctx, buf);
  return t;
}

static int loader_next(lua_State *L) {
  lai_checkmax(L, 1);
  lai_loader *u = check_open(L);
  ai_loader_batch b;
  char err[256];
  int rc = ai_loader_next(u->ld, &b, err, sizeof err);
  if (rc < 0) return luaL_error(L, "loader: %s", err);
  if (rc == 0) return 0;
  int64_t shape[AI_MAXDIM + 1];
  shape[0] = b.n;
  int nd = 1 + ai_loader_sample_shape(u->ld, shape + 1);
  ai_tensor *x = as_tensor(u, u->out_dtype, nd, shape, b.x, ai_loader_release_x, u->ld);
  ai_tensor *y = NULL;
  if (b.y) {
    shape[0] = b.n;
    memcpy(shape + 1, u->label_shape, sizeof(int64_t) * (size_t)u->label_ndim);
    y = as_tensor(u, u->label_dtype, 1 + u->label_ndim, shape, b.y, ai_loader_release_y, NULL);
  }
  if (!x || (b.y && !y)) {
    ai_unref(x);
    ai_unref(y);
    return luaL_error(L, "loader: out of memory making batch tensors");
  }
  if (!u->copy) {
    /* tell the collector about memory it cannot see, so dropped batches come back soon */
    int64_t out = 0;
    ai_loader_stats(u->ld, &out, NULL);
    if (out > 64) lua_gc(L, LUA_GCCOLLECT);
  }
  lai_push(L, x);
  if (!y) return 1;
  lai_push(L, y);
  return 2;
}

static int loader_close(lua_State *L) {
  lai_checkmax(L, 1);
  lai_loader *u = luaL_checkudata(L, 1, LOADER_MT);
  loader_release(u);
  return 0;
}

static int loader_len(lua_State *L) {
  lai_loader *u = check_open(L);
  lua_pushinteger(L, (lua_Integer)ai_loader_num_batches(u->ld));
  return 1;
}

static int loader_sample_shape(lua_State *L) {
  lai_checkmax(L, 1);
  lai_loader *u = check_open(L);
  int64_t shape[AI_MAXDIM];
  int nd = ai_loader_sample_shape(u->ld, shape);
  lua_createtable(L, nd, 0);
  for (int i = 0; i < nd; i++) {
    lua_pushinteger(L, (lua_Integer)shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int loader_stats(lua_State *L) {
  lai_checkmax(L, 1);
  lai_loader *u = check_open(L);
  int64_t out = 0, alloc = 0;
  ai_loader_stats(u->ld, &out, &alloc);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)out);
  lua_setfield(L, -2, "outstanding");
  lua_pushinteger(L, (lua_Integer)alloc);
  lua_setfield(L, -2, "allocated");
  return 1;
}

static int loader_tostring(lua_State *L) {
  lai_loader *u = luaL_checkudata(L, 1, LOADER_MT);
  if (!u->ld) lua_pushliteral(L, "Loader (closed)");
  else lua_pushfstring(L, "Loader (%d batches)", (int)ai_loader_num_batches(u->ld));
  return 1;
}

/* _loader.uniform(seed, epoch, pos, k) */
static int l_uniform(lua_State *L) {
  lai_checkmax(L, 4);
  uint64_t seed = (uint64_t)lai_checkint(L, 1), epoch = (uint64_t)lai_checkint(L, 2);
  uint64_t pos = (uint64_t)lai_checkint(L, 3);
  lua_Integer k = lai_checkint(L, 4);
  if (k < 0 || k > 0xffffffffLL) return luaL_argerror(L, 4, "draw index out of range");
  lua_pushnumber(L, ai_loader_uniform(seed, epoch, pos, (uint32_t)k));
  return 1;
}

/* _loader.isatty(fd | file handle) */
static int l_isatty(lua_State *L) {
  lai_checkmax(L, 1);
  int fd = -1;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    lua_Integer v = lai_checkint(L, 1);
    fd = v >= 0 && v <= INT_MAX ? (int)v : -1;
  } else {
    luaL_Stream *s = luaL_checkudata(L, 1, LUA_FILEHANDLE);
    if (s->closef && s->f) fd = fileno(s->f);
  }
  lua_pushboolean(L, fd >= 0 && isatty(fd));
  return 1;
}

/* _loader.now() -> seconds of a monotonic clock (for rates and ETAs) */
static int l_now(lua_State *L) {
  lai_checkmax(L, 0);
  lua_pushnumber(L, ai_clock());
  return 1;
}

/* _loader.wall() -> seconds since the Unix epoch, with fractions */
static int l_wall(lua_State *L) {
  lai_checkmax(L, 0);
  lua_pushnumber(L, ai_unix_time());
  return 1;
}

void lai_open_data(lua_State *L) {
  static const luaL_Reg methods[] = {{"next", loader_next},       {"close", loader_close},
                                     {"sample_shape", loader_sample_shape},
                                     {"stats", loader_stats},     {NULL, NULL}};
  static const luaL_Reg fns[] = {{"new", loader_new}, {"uniform", l_uniform}, {"isatty", l_isatty},
                                 {"now", l_now},     {"wall", l_wall},
                                 {NULL, NULL}};
  if (luaL_newmetatable(L, LOADER_MT)) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, loader_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, loader_gc);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, loader_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, loader_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "Loader");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, -3, "_loader");
}
