/* l_dist.c: ai._dist, the C side of ai.dist (lua/aiart/dist.lua): MPI start-up, the
 * collectives on tensors (src/core/dist.h) and the gradient buckets of data-parallel training
 * (src/core/dist_buckets.h). Ranks are 1-based here, as everywhere in Lua.
 *
 *   _dist.available() -> bool (built with MPI); _dist.hint: how to enable it
 *   _dist.launched_size() -> n > 0 under an MPI launcher, -1 launched with an unknown size, 0 not
 *   _dist.init() -> rank, size, local_rank, local_size;  _dist.finalize()
 *   _dist.all_reduce(t, "sum"|"mean"|"max"|"min")  in place;  _dist.broadcast(t, root)  in place
 *   _dist.all_gather(t) -> size x t's shape;  _dist.barrier();  _dist.broadcast_string(s|nil, root)
 *   _dist.library() -> MPI's version line;  _dist.comm_seconds();  _dist.cpus()
 *   _dist.buckets(params, bucket_bytes, hooks) -> a bucket set: set:start([values]),
 *     set:finish() -> {means of the values}, set:info(), set:close() (hooks=false: no overlap
 *     with backward, and the parameters may belong to another set too) */
#include "lbind.h"
#include "../core/dist.h"
#include "../core/dist_buckets.h"

#define BUCKETS_MT "aiart.dist.Buckets"

/* The core's message as it is: it already names the collective. */
static int check(lua_State *L, int rc) {
  if (rc) return luaL_error(L, "%s", ai_error());
  return 0;
}

/* A 1-based rank argument, checked against the world size once MPI is up; returns it 0-based. */
static int root_arg(lua_State *L, int arg, const char *fn) {
  lua_Integer root = lai_checkint(L, arg);
  check(L, ai_dist_check_initialized(fn));
  if (root < 1 || root > ai_dist_size())
    return luaL_error(L, "dist.%s: src must be a rank in 1..%d, got %d", fn, ai_dist_size(), (int)root);
  return (int)root - 1;
}

/* ---------------------------------------------------------------- set-up */

static int l_available(lua_State *L) {
  lai_checkmax(L, 0);
  lua_pushboolean(L, ai_dist_available());
  return 1;
}

static int l_launched_size(lua_State *L) {
  lai_checkmax(L, 0);
  lua_pushinteger(L, ai_dist_launched_size());
  return 1;
}

static int l_init(lua_State *L) {
  lai_checkmax(L, 0);
  if (ai_dist_init()) return luaL_error(L, "%s", ai_error());
  lua_pushinteger(L, ai_dist_rank() + 1);
  lua_pushinteger(L, ai_dist_size());
  lua_pushinteger(L, ai_dist_local_rank() + 1);
  lua_pushinteger(L, ai_dist_local_size());
  return 4;
}

static int l_finalize(lua_State *L) {
  lai_checkmax(L, 0);
  if (ai_dist_finalize()) return luaL_error(L, "%s", ai_error());
  return 0;
}

static int l_initialized(lua_State *L) {
  lai_checkmax(L, 0);
  lua_pushboolean(L, ai_dist_initialized());
  return 1;
}

static int l_library(lua_State *L) {
  lai_checkmax(L, 0);
  lua_pushstring(L, ai_dist_library());
  return 1;
}

static int l_comm_seconds(lua_State *L) {
  lai_checkmax(L, 0);
  lua_pushnumber(L, ai_dist_comm_seconds());
  return 1;
}

/* _dist.cpus() -> the CPUs this process may run on, the CPUs online */
static int l_cpus(lua_State *L) {
  lai_checkmax(L, 0);
  int mine, online;
  ai_cpu_count(&mine, &online);
  lua_pushinteger(L, mine);
  lua_pushinteger(L, online);
  return 2;
}

/* ---------------------------------------------------------------- collectives on tensors */

static int l_all_reduce(lua_State *L) {
  lai_checkmax(L, 2);
  ai_tensor *t = lai_check(L, 1);
  static const char *const ops[] = {"sum", "mean", "max", "min", NULL};
  static const ai_dist_op dops[] = {AI_DIST_SUM, AI_DIST_SUM, AI_DIST_MAX, AI_DIST_MIN};
  int op = luaL_checkoption(L, 2, "sum", ops);
  check(L, ai_dist_all_reduce(t, dops[op], op == 1));
  lua_settop(L, 1);
  return 1;
}

static int l_broadcast(lua_State *L) {
  lai_checkmax(L, 2);
  ai_tensor *t = lai_check(L, 1);
  check(L, ai_dist_broadcast(t, root_arg(L, 2, "broadcast")));
  lua_settop(L, 1);
  return 1;
}

static int l_all_gather(lua_State *L) {
  lai_checkmax(L, 1);
  ai_tensor *out = ai_dist_all_gather(lai_check(L, 1));
  if (!out) return luaL_error(L, "%s", ai_error());
  return lai_push(L, out);
}

static int l_barrier(lua_State *L) {
  lai_checkmax(L, 0);
  return check(L, ai_dist_barrier());
}

/* _dist.broadcast_string(s, root): s on the root (ignored elsewhere); returns it on every rank.
 * The length goes first, so that the other ranks can make room in a Lua-owned buffer. */
static int l_broadcast_string(lua_State *L) {
  const char *fn = "broadcast_string";
  lai_checkmax(L, 2);
  int root = root_arg(L, 2, fn);
  bool is_root = ai_dist_rank() == root;
  size_t len = 0;
  const char *s = is_root ? luaL_checklstring(L, 1, &len) : NULL;
  int64_t n = (int64_t)len;
  check(L, ai_dist_broadcast_bytes(&n, sizeof n, root, fn));
  if (is_root) {
    if (n > 0) check(L, ai_dist_broadcast_bytes((void *)s, n, root, fn));
    lua_pushvalue(L, 1);
    return 1;
  }
  char *buf = lua_newuserdatauv(L, n > 0 ? (size_t)n : 1, 0); /* owned by Lua if an error comes */
  if (n > 0) check(L, ai_dist_broadcast_bytes(buf, n, root, fn));
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

/* ---------------------------------------------------------------- gradient buckets */

/* The userdata box of a bucket set: NULL once closed. */
typedef struct { ai_dist_buckets *u; } buckets_box;

static ai_dist_buckets *check_buckets(lua_State *L, int nargs) {
  lai_checkmax(L, nargs);
  buckets_box *b = luaL_checkudata(L, 1, BUCKETS_MT);
  if (!b->u) luaL_error(L, "DataParallel: the bucket set is closed");
  return b->u;
}

static int buckets_gc(lua_State *L) {
  buckets_box *b = luaL_checkudata(L, 1, BUCKETS_MT);
  ai_dist_buckets_free(b->u);
  b->u = NULL;
  return 0;
}

/* _dist.buckets(params, bucket_bytes, hooks) */
static int l_buckets(lua_State *L) {
  lai_checkmax(L, 3);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer cap = lai_checkint(L, 2);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TBOOLEAN);
  bool hooks = lua_toboolean(L, 3);
  if (cap < 1) return luaL_argerror(L, 2, "bucket size must be positive");
  int n = (int)luaL_len(L, 1);
  ai_tensor **ps = lua_newuserdatauv(L, sizeof *ps * (size_t)(n > 0 ? n : 1), 0);
  for (int i = n; i >= 1; i--) { /* the order the core reads them in */
    lua_rawgeti(L, 1, i);
    ps[i - 1] = lai_test(L, -1);
    if (!ps[i - 1]) return luaL_error(L, "DataParallel: parameter %d is not a tensor (got %s)", i, luaL_typename(L, -1));
    lua_pop(L, 1); /* the table keeps it alive */
  }
  buckets_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->u = NULL;
  luaL_setmetatable(L, BUCKETS_MT);
  b->u = ai_dist_buckets_new(ps, n, cap, hooks);
  if (!b->u) return luaL_error(L, "%s", ai_error());
  return 1;
}

/* set:start([values]): arms the hooks; values: up to 32 numbers reduced with the gradients */
static int buckets_start(lua_State *L) {
  ai_dist_buckets *u = check_buckets(L, 2);
  double values[AI_DIST_MAX_VALUES];
  int n = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    n = (int)luaL_len(L, 2);
    for (int i = 0; i < n && i < AI_DIST_MAX_VALUES; i++) {
      lua_rawgeti(L, 2, i + 1);
      if (!lua_isnumber(L, -1)) return luaL_error(L, "DataParallel: value %d is not a number", i + 1);
      values[i] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  }
  return check(L, ai_dist_buckets_start(u, values, n));
}

/* set:finish() -> {means of the values} */
static int buckets_finish(lua_State *L) {
  ai_dist_buckets *u = check_buckets(L, 1);
  double means[AI_DIST_MAX_VALUES];
  int n;
  check(L, ai_dist_buckets_finish(u, means, &n));
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushnumber(L, means[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* set:info() -> {buckets = n, parameters = n, elements = n, bytes = {per bucket}, overlapped = n}
 * (overlapped: the buckets of the last finish() that started during backward) */
static int buckets_info(lua_State *L) {
  ai_dist_buckets *u = check_buckets(L, 1);
  ai_dist_buckets_info info;
  ai_dist_buckets_get_info(u, &info);
  lua_createtable(L, 0, 5);
  lua_createtable(L, info.buckets, 0);
  for (int k = 0; k < info.buckets; k++) {
    lua_pushinteger(L, (lua_Integer)ai_dist_bucket_bytes(u, k));
    lua_rawseti(L, -2, k + 1);
  }
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, info.buckets);
  lua_setfield(L, -2, "buckets");
  lua_pushinteger(L, info.parameters);
  lua_setfield(L, -2, "parameters");
  lua_pushinteger(L, (lua_Integer)info.elements);
  lua_setfield(L, -2, "elements");
  lua_pushinteger(L, info.overlapped);
  lua_setfield(L, -2, "overlapped");
  return 1;
}

void lai_open_dist(lua_State *L) {
  static const luaL_Reg methods[] = {{"start", buckets_start}, {"finish", buckets_finish},
                                     {"info", buckets_info}, {"close", buckets_gc}, {NULL, NULL}};
  static const luaL_Reg fns[] = {
      {"available", l_available}, {"launched_size", l_launched_size}, {"init", l_init},
      {"finalize", l_finalize},   {"initialized", l_initialized},     {"library", l_library},
      {"comm_seconds", l_comm_seconds}, {"cpus", l_cpus},
      {"all_reduce", l_all_reduce}, {"broadcast", l_broadcast},       {"all_gather", l_all_gather},
      {"barrier", l_barrier},     {"broadcast_string", l_broadcast_string}, {"buckets", l_buckets},
      {NULL, NULL}};
  if (luaL_newmetatable(L, BUCKETS_MT)) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, buckets_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, buckets_gc);
    lua_setfield(L, -2, "__close");
    lua_pushliteral(L, "DataParallel buckets");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_pushstring(L, ai_dist_enable_hint);
  lua_setfield(L, -2, "hint");
  lua_setfield(L, -3, "_dist");
}
