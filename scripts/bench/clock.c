/* scripts/bench/clock.c: a monotonic wall clock for scripts/bench.lua. aiart-lua's scripting
 * API has no wall clock (os.clock is process CPU time, which sums over threads; host.clock
 * exists only inside the REPL), so the benchmark builds this tiny Lua module on first use:
 *   cc -O2 -shared -fPIC $(pkg-config --cflags lua5.4) -o build/bench/clock.so scripts/bench/clock.c
 * and loads it with package.loadlib (aiart-lua exports the Lua API: it links with -Wl,-E). */
#include <lua.h>
#include <lauxlib.h>
#include <time.h>

static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

int luaopen_benchclock(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, l_now);
  lua_setfield(L, -2, "now");
  return 1;
}
