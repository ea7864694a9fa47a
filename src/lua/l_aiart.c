/* l_aiart.c: luaopen_aiart, the entry point of the `aiart` module. The C core is registered
 * here; the Lua libraries (nn, optim, data, ...) load on first use as fields of the module. */
#include "lbind.h"

#define AIART_VERSION "0.1.0"

/* ai.nn, ai.optim, ... and Lua-written functions such as ai.gradcheck load lazily, so that
 * `require "aiart"` stays fast. */
static const char *const lazy_loader =
    "local ai, lazy = ...\n"
    "setmetatable(ai, {__index = function(t, k)\n"
    "  local spec = lazy[k]\n"
    "  if not spec then return nil end\n"
    "  local mod = require(spec[1])\n"
    "  local v = mod\n"
    "  if spec[2] then v = mod[spec[2]] end\n"
    "  rawset(t, k, v)\n"
    "  return v\n"
    "end})\n";

static const char *const lazy_names[][3] = {
    {"nn", "aiart.nn", NULL},           {"optim", "aiart.optim", NULL},
    {"sched", "aiart.sched", NULL},     {"data", "aiart.data", NULL},
    {"image", "aiart.image", NULL},     {"checkpoint", "aiart.checkpoint", NULL},
    {"progress", "aiart.progress", NULL}, {"plot", "aiart.plot", NULL},
    {"config", "aiart.config", NULL},   {"metrics", "aiart.metrics", NULL},
    {"gradcheck", "aiart.gradcheck", "gradcheck"}, {"gradgradcheck", "aiart.gradcheck", "gradgradcheck"},
    {"save", "aiart.serialize", "save"}, {"load", "aiart.serialize", "load"},
    {"F", "aiart.nn.functional", NULL}, {"dist", "aiart.dist", NULL}, {"autograd", "aiart.autograd", NULL},
    {"help", "aiart.doc", "help"},     {"einsum", "aiart.einsum", "einsum"}};

int luaopen_aiart(lua_State *L) {
  static bool threads_set;
  if (!threads_set) { ai_set_num_threads(ai_get_num_threads()); threads_set = true; }
  lua_newtable(L); /* the module */
  lua_newtable(L); /* the tensor method table */
  lai_open_tensor(L);
  lai_open_ops(L);
  lai_open_ops_port(L);
  lai_open_autograd(L);
  lai_open_nn(L);
  lai_open_io(L);
  lai_open_json(L);
  lai_open_optim(L);
  lai_open_data(L);
  lai_open_dist(L);
  lai_open_sort(L);
  lai_open_function(L);
  lai_open_signal(L);
  lua_setfield(L, -2, "Tensor"); /* users may add methods: function ai.Tensor:foo() ... end */
  lua_pushliteral(L, AIART_VERSION);
  lua_setfield(L, -2, "version");
  if (luaL_loadstring(L, lazy_loader) != LUA_OK) return lua_error(L);
  lua_pushvalue(L, -2);
  lua_newtable(L);
  for (size_t i = 0; i < sizeof lazy_names / sizeof *lazy_names; i++) {
    lua_createtable(L, 2, 0);
    lua_pushstring(L, lazy_names[i][1]);
    lua_rawseti(L, -2, 1);
    if (lazy_names[i][2]) { lua_pushstring(L, lazy_names[i][2]); lua_rawseti(L, -2, 2); }
    lua_setfield(L, -2, lazy_names[i][0]);
  }
  lua_call(L, 2, 0);
  return 1;
}
