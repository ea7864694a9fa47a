/* l_io.c: ai.io, the Lua face of the file formats in src/io (IDX, PNG, GIF, safetensors).
 * ai.image.load/save and ai.save/ai.load are Lua wrappers over these.
 *
 * Memory rule: C memory that is alive while a Lua call could raise an error is owned by a
 * to-be-closed "guard" userdata, so that an error frees it on the way out; errors reported by
 * the format layer are raised after the guard has been closed and every tensor reference
 * dropped (the message sits in a local buffer meanwhile). */
#include <stdlib.h>
#include <string.h>

#include "lbind.h"
#include "../io/fmt.h"

_Static_assert(FMT_U8 == (int)AI_U8 && FMT_I64 == (int)AI_I64 && FMT_F32 == (int)AI_F32 &&
                   FMT_F64 == (int)AI_F64 && FMT_MAXDIM == AI_MAXDIM,
               "fmt.h dtype codes must match ai_dtype");

#define IO_GUARD_MT "aiart.io.guard"

/* ---------------------------------------------------------------- guards */

typedef struct {
  void (*fn)(void *payload); /* NULL once run */
  max_align_t payload[];
} io_guard;

static int guard_close(lua_State *L) {
  io_guard *g = lua_touserdata(L, 1);
  if (g && g->fn) {
    void (*fn)(void *) = g->fn;
    g->fn = NULL;
    fn(g->payload);
  }
  return 0;
}

/* Pushes a to-be-closed guard with a zeroed payload of `size` bytes; fn(payload) runs when the
 * slot is closed (function return, error, lua_settop below it) or, as a backstop, on GC. */
static void *guard_new(lua_State *L, size_t size, void (*fn)(void *)) {
  io_guard *g = lua_newuserdatauv(L, sizeof(io_guard) + size, 0);
  g->fn = NULL;
  memset(g->payload, 0, size);
  luaL_setmetatable(L, IO_GUARD_MT);
  lua_toclose(L, -1);
  g->fn = fn;
  return g->payload;
}

static void free_array(void *p) { fmt_array_free(p); }
static void free_ptr(void *p) { free(*(void **)p); }
static void free_st_file(void *p) { fmt_st_free(p); }

/* Storage release of tensors made over buffers of the format layer. */
static void release_fmt(void *ctx, void *data) {
  (void)ctx;
  fmt_free(data);
}

/* Pushes a tensor that takes over a->data (a is owned by a guard). ai_from_external does not
 * release the data when it fails, so on failure the guard still frees it. */
static int push_array(lua_State *L, fmt_array *a) {
  ai_tensor *t = ai_from_external((ai_dtype)a->dtype, a->ndim, a->shape, a->data, release_fmt, NULL);
  if (t) a->data = NULL;
  return lai_push(L, t);
}

/* Image layout of t: HxW (one channel) or CxHxW with C in 1..maxc. */
static void image_dims(lua_State *L, ai_tensor *t, int maxc, const char *fn, int *c, int64_t *h,
                       int64_t *w) {
  if (t->ndim == 2) {
    *c = 1;
    *h = t->shape[0];
    *w = t->shape[1];
  } else if (t->ndim == 3 && t->shape[0] >= 1 && t->shape[0] <= maxc) {
    *c = (int)t->shape[0];
    *h = t->shape[1];
    *w = t->shape[2];
  } else {
    char buf[128];
    luaL_error(L, "%s: expected an HxW or CxHxW tensor with C in 1..%d, got %s", fn, maxc,
               ai_shape_str(t, buf, sizeof buf));
  }
}

/* ---------------------------------------------------------------- IDX */

/* io.read_idx(path) -> tensor (u8 stays u8; other integers i64; f32; f64) */
static int io_read_idx(lua_State *L) {
  lai_checkmax(L, 1);
  const char *path = luaL_checkstring(L, 1);
  lua_settop(L, 1);
  fmt_array *a = guard_new(L, sizeof *a, free_array);
  char err[512];
  if (fmt_idx_read(path, a, err, sizeof err) != 0) return luaL_error(L, "read_idx: %s", err);
  return push_array(L, a);
}

/* io.write_idx(path, u8 tensor): gzip when path ends in ".gz" */
static int io_write_idx(lua_State *L) {
  lai_checkmax(L, 2);
  const char *path = luaL_checkstring(L, 1);
  ai_tensor *t = lai_check(L, 2);
  if (t->dtype != AI_U8)
    return luaL_error(L, "write_idx: expected a u8 tensor, got %s (convert it to u8 first)",
                      ai_dtype_names[t->dtype]);
  if (t->ndim < 1) return luaL_error(L, "write_idx: a 0-dim tensor cannot be written as IDX");
  ai_tensor *c = ai_contiguous(t);
  if (!c) return lai_error(L);
  char err[512];
  int rc = fmt_idx_write_u8(path, c->ndim, c->shape, ai_data(c), err, sizeof err);
  ai_unref(c);
  if (rc != 0) return luaL_error(L, "write_idx: %s", err);
  return 0;
}

/* ---------------------------------------------------------------- PNG */

static int is_png(const char *s, size_t n) {
  return n >= 8 && memcmp(s, "\x89PNG\r\n\x1a\n", 8) == 0;
}

/* io.load_png(path_or_png_bytes) -> f32 CxHxW in [0,1] (C: 1 gray, 2 gray+alpha, 3, 4) */
static int io_load_png(lua_State *L) {
  lai_checkmax(L, 1);
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_settop(L, 1);
  if (!is_png(s, n) && strlen(s) != n) return luaL_error(L, "load_png: file name contains a NUL");
  fmt_array *a = guard_new(L, sizeof *a, free_array);
  char err[512];
  int rc = is_png(s, n) ? fmt_png_read_mem(s, n, a, err, sizeof err)
                        : fmt_png_read(s, a, err, sizeof err);
  if (rc != 0) return luaL_error(L, "load_png: %s", err);
  return push_array(L, a);
}

/* io.save_png(path, t): t HxW or CxHxW (C = 1, 2, 3, 4), float in [0,1] (clamped) or u8 */
static int io_save_png(lua_State *L) {
  lai_checkmax(L, 2);
  const char *path = luaL_checkstring(L, 1);
  ai_tensor *t = lai_check(L, 2);
  int c = 1;
  int64_t h = 0, w = 0;
  image_dims(L, t, 4, "save_png", &c, &h, &w);
  ai_tensor *f = ai_to_unit_f32(t);
  if (!f) return lai_error(L);
  char err[512];
  int rc = fmt_png_write(path, ai_data(f), c, h, w, err, sizeof err);
  ai_unref(f);
  if (rc != 0) return luaL_error(L, "save_png: %s", err);
  return 0;
}

/* io.png_bytes(t) -> string holding the PNG file */
static int io_png_bytes(lua_State *L) {
  lai_checkmax(L, 1);
  ai_tensor *t = lai_check(L, 1);
  int c = 1;
  int64_t h = 0, w = 0;
  image_dims(L, t, 4, "png_bytes", &c, &h, &w);
  lua_settop(L, 1);
  void **buf = guard_new(L, sizeof(void *), free_ptr);
  ai_tensor *f = ai_to_unit_f32(t);
  if (!f) return lai_error(L);
  char err[512];
  size_t len = 0;
  int rc = fmt_png_write_mem(ai_data(f), c, h, w, buf, &len, err, sizeof err);
  ai_unref(f);
  if (rc != 0) return luaL_error(L, "png_bytes: %s", err);
  lua_pushlstring(L, *buf, len);
  return 1;
}

/* ---------------------------------------------------------------- GIF */

/* io.save_gif(path, frames, {delay = ms}): frames is a list of HxW / CxHxW tensors of one shape,
 * or one tensor NxHxW (gray) or NxCxHxW. C = 1 gray; 3 or 4 color (alpha dropped). */
static int io_save_gif(lua_State *L) {
  lai_checkmax(L, 3);
  const char *path = luaL_checkstring(L, 1);
  lai_checkopts(L, 3, LAI_OPTS("delay"));
  lua_Number dl = lai_optnumfield(L, 3, "delay", 100);
  if (!(dl >= 0 && dl <= 655350)) return luaL_error(L, "save_gif: delay must be 0..655350 ms");
  int delay = (int)dl;
  char err[512];
  int rc;
  ai_tensor *t = lai_test(L, 2);
  if (t) {
    int64_t n, h, w;
    int c;
    if (t->ndim == 3) {
      n = t->shape[0], c = 1, h = t->shape[1], w = t->shape[2];
    } else if (t->ndim == 4 && t->shape[1] >= 1 && t->shape[1] <= 4) {
      n = t->shape[0], c = (int)t->shape[1], h = t->shape[2], w = t->shape[3];
    } else {
      char buf[128];
      return luaL_error(L, "save_gif: expected an NxHxW or NxCxHxW tensor, got %s",
                        ai_shape_str(t, buf, sizeof buf));
    }
    ai_tensor *f = ai_to_unit_f32(t);
    if (!f) return lai_error(L);
    rc = fmt_gif_write(path, ai_data(f), n, c, h, w, delay, err, sizeof err);
    ai_unref(f);
    if (rc != 0) return luaL_error(L, "save_gif: %s", err);
    return 0;
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 3);
  lua_Integer n = luaL_len(L, 2);
  if (n < 1) return luaL_error(L, "save_gif: no frames");
  lua_geti(L, 2, 1); /* 4: kept on the stack so that f0 stays alive */
  ai_tensor *f0 = lai_test(L, 4);
  if (!f0) return luaL_error(L, "save_gif: frame 1 is not a tensor");
  int c = 1;
  int64_t h = 0, w = 0;
  image_dims(L, f0, 4, "save_gif", &c, &h, &w);
  int ndim = f0->ndim;
  int64_t shape[AI_MAXDIM];
  memcpy(shape, f0->shape, sizeof shape);
  size_t fsz = (size_t)c * (size_t)h * (size_t)w;
  if ((uint64_t)n > SIZE_MAX / sizeof(float) / (fsz ? fsz : 1))
    return luaL_error(L, "save_gif: too many frames");
  float **buf = guard_new(L, sizeof(float *), free_ptr); /* 5 */
  *buf = malloc(fsz * (size_t)n * sizeof(float) + 1);
  if (!*buf) return luaL_error(L, "save_gif: out of memory");
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 2, i);
    ai_tensor *fi = lai_test(L, lua_gettop(L));
    if (!fi) return luaL_error(L, "save_gif: frame %d is not a tensor", (int)i);
    if (fi->ndim != ndim || memcmp(fi->shape, shape, sizeof(int64_t) * (size_t)ndim) != 0) {
      char b1[128], b2[128];
      return luaL_error(L, "save_gif: frame %d is %s, frame 1 is %s", (int)i,
                        ai_shape_str(fi, b1, sizeof b1), ai_shape_str(f0, b2, sizeof b2));
    }
    ai_tensor *ff = ai_to_unit_f32(fi);
    if (!ff) return lai_error(L);
    memcpy(*buf + (size_t)(i - 1) * fsz, ai_data(ff), fsz * sizeof(float));
    ai_unref(ff);
    lua_pop(L, 1);
  }
  rc = fmt_gif_write(path, *buf, n, c, h, w, delay, err, sizeof err);
  lua_settop(L, 3); /* closes the guard: the frames are freed before any error */
  if (rc != 0) return luaL_error(L, "save_gif: %s", err);
  return 0;
}

/* ---------------------------------------------------------------- safetensors */

typedef struct {
  ai_tensor **refs; /* contiguous versions held while writing */
  size_t nrefs;
  fmt_st_entry *ents;
  const char **mk, **mv;
} st_save;

static void free_st_save(void *p) {
  st_save *s = p;
  for (size_t i = 0; i < s->nrefs; i++) ai_unref(s->refs[i]);
  free(s->refs);
  free(s->ents);
  free(s->mk);
  free(s->mv);
}

static size_t count_keys(lua_State *L, int idx) {
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    n++;
  }
  return n;
}

/* io.save_safetensors(path, {name = tensor, ...} [, {key = "value", ...}])
 * dtypes f32, f64, i64, u8 are written as F32, F64, I64, U8; names sorted; atomic. */
static int io_save_safetensors(lua_State *L) {
  lai_checkmax(L, 3);
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  st_save *s = guard_new(L, sizeof *s, free_st_save); /* 4 */
  size_t n = count_keys(L, 2), nm = lua_istable(L, 3) ? count_keys(L, 3) : 0;
  s->refs = calloc(n ? n : 1, sizeof *s->refs);
  s->ents = calloc(n ? n : 1, sizeof *s->ents);
  s->mk = calloc(nm ? nm : 1, sizeof *s->mk);
  s->mv = calloc(nm ? nm : 1, sizeof *s->mv);
  if (!s->refs || !s->ents || !s->mk || !s->mv)
    return luaL_error(L, "save_safetensors: out of memory");
  size_t i = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      return luaL_error(L, "save_safetensors: tensor names must be strings, got a %s key",
                        luaL_typename(L, -2));
    size_t kl;
    const char *name = lua_tolstring(L, -2, &kl); /* alive: a key of the table at 2 */
    if (strlen(name) != kl) return luaL_error(L, "save_safetensors: a tensor name contains a NUL");
    ai_tensor *t = lai_test(L, lua_gettop(L));
    if (!t) return luaL_error(L, "save_safetensors: '%s' is a %s, not a tensor", name,
                              luaL_typename(L, -1));
    if (i >= n) return luaL_error(L, "save_safetensors: the table changed while read");
    bool prev = ai_set_grad_enabled(false);
    ai_tensor *c = ai_contiguous(t);
    ai_set_grad_enabled(prev);
    if (!c) return lai_error(L);
    s->refs[s->nrefs++] = c;
    s->ents[i].name = name;
    s->ents[i].dtype = (int)c->dtype;
    s->ents[i].ndim = c->ndim;
    s->ents[i].shape = c->shape;
    s->ents[i].data = ai_data(c);
    i++;
    lua_pop(L, 1);
  }
  size_t j = 0;
  if (nm) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "save_safetensors: metadata keys and values must be strings (got %s = %s)",
                          luaL_typename(L, -2), luaL_typename(L, -1));
      size_t kl, vl;
      const char *k = lua_tolstring(L, -2, &kl), *v = lua_tolstring(L, -1, &vl);
      if (strlen(k) != kl || strlen(v) != vl)
        return luaL_error(L, "save_safetensors: metadata contains a NUL");
      if (j >= nm) return luaL_error(L, "save_safetensors: the table changed while read");
      s->mk[j] = k;
      s->mv[j] = v; /* alive: a value of the table at 3, which is not modified meanwhile */
      j++;
      lua_pop(L, 1);
    }
  }
  char err[512];
  int rc = fmt_st_write(path, s->ents, i, s->mk, s->mv, j, err, sizeof err);
  lua_settop(L, 3); /* closes the guard: references dropped before any error */
  if (rc != 0) return luaL_error(L, "save_safetensors: %s", err);
  return 0;
}

/* io.load_safetensors(path) -> {name = tensor, ...}, {key = "value", ...}
 * F16/BF16 load as f32, I32/I16/I8 as i64, BOOL as u8. */
static int io_load_safetensors(lua_State *L) {
  lai_checkmax(L, 1);
  const char *path = luaL_checkstring(L, 1);
  lua_settop(L, 1);
  fmt_st_file *f = guard_new(L, sizeof *f, free_st_file); /* 2 */
  char err[512];
  if (fmt_st_read(path, f, err, sizeof err) != 0)
    return luaL_error(L, "load_safetensors: %s", err);
  lua_createtable(L, 0, f->ntensors > 1000000 ? 1000000 : (int)f->ntensors); /* 3 */
  for (size_t i = 0; i < f->ntensors; i++) {
    fmt_st_tensor *e = &f->tensors[i];
    ai_tensor *t = ai_from_external((ai_dtype)e->dtype, e->ndim, e->shape, e->data, release_fmt, NULL);
    if (t) e->data = NULL; /* the tensor owns it now */
    lai_push(L, t);
    lua_setfield(L, 3, e->name);
  }
  lua_createtable(L, 0, f->nmeta > 1000000 ? 1000000 : (int)f->nmeta); /* 4 */
  for (size_t i = 0; i < f->nmeta; i++) {
    lua_pushstring(L, f->meta[i].value);
    lua_setfield(L, 4, f->meta[i].key);
  }
  return 2;
}

void lai_open_io(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"read_idx", io_read_idx},
      {"write_idx", io_write_idx},
      {"load_png", io_load_png},
      {"save_png", io_save_png},
      {"png_bytes", io_png_bytes},
      {"save_gif", io_save_gif},
      {"save_safetensors", io_save_safetensors},
      {"load_safetensors", io_load_safetensors},
      {NULL, NULL},
  };
  if (luaL_newmetatable(L, IO_GUARD_MT)) {
    lua_pushcfunction(L, guard_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, guard_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, -3, "io");
}
