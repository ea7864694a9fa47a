/* fuzz_json.c: libFuzzer harness of ai.json (src/lua/l_json.c) through a Lua state: decode the
 * input; when that works, encode the value, and encoding must be a fixed point:
 * encode(decode(encode(v))) == encode(v). Errors must be Lua errors naming json.decode/encode.
 * Build and run from the repository root (new inputs go to tests/fuzz/out/, git-ignored):
 *   mkdir -p build tests/fuzz/out/json
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc/lua tests/fuzz/fuzz_json.c \
 *     src/lua/l_json.c $(pkg-config --cflags --libs lua5.4 libcjson) -lm -o build/fuzz_json
 *   build/fuzz_json -max_total_time=60 -dict=tests/fuzz/json.dict tests/fuzz/out/json \
 *     tests/fuzz/corpus/json */
#include <stdint.h>
#include <string.h>

#include "lbind.h"

static lua_State *L;

static int expect_error(const char *prefix) {
  const char *m = lua_tostring(L, -1);
  if (!m || (!strstr(m, prefix) && !strstr(m, "not enough memory"))) __builtin_trap();
  return 0;
}

/* calls json[fn](arg at index a): leaves the result or the error on top; returns the status */
static int call(const char *fn, int a) {
  lua_getfield(L, 1, fn);
  lua_pushvalue(L, a);
  return lua_pcall(L, 1, 1, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) {
    L = luaL_newstate();
    lua_newtable(L); /* module */
    lua_newtable(L); /* method table (unused) */
    lai_open_json(L);
    lua_pop(L, 1);
    lua_getfield(L, -1, "json");
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.json");
    lua_pop(L, 1);
  }
  lua_settop(L, 0);
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.json"); /* 1 */
  lua_pushlstring(L, (const char *)data, size);     /* 2 */
  if (call("decode", 2) != LUA_OK) return expect_error("json.decode:");
  /* 3: the value */
  if (call("encode", 3) != LUA_OK) return expect_error("json.encode:"); /* NaN/inf, bad UTF-8 */
  /* 4: encoded once */
  if (call("decode", 4) != LUA_OK) __builtin_trap(); /* 5 */
  if (call("encode", 5) != LUA_OK) __builtin_trap(); /* 6 */
  size_t n1, n2;
  const char *s1 = lua_tolstring(L, 4, &n1), *s2 = lua_tolstring(L, 6, &n2);
  if (n1 != n2 || memcmp(s1, s2, n1) != 0) __builtin_trap();
  lua_settop(L, 0);
  return 0;
}
