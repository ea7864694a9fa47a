/* l_signal.c: what a long run asks of its process (src/core/process.h), for the training loops
 * of lua/aiart/experiment.lua and users' own:
 *
 *   ai.trap_signals()      SIGINT and SIGTERM only recorded from now on (a second one ends the
 *                          process at once); the actions before (the host's) are kept
 *   ai.pending_signal()    -> "SIGINT" or "SIGTERM" and its number, or nil
 *   ai.untrap_signals()    the actions before put back, a pending signal forgotten
 *   ai.lock_file(path)     -> a lock (lock:release(), lock:stale() -> pid, host of a dead holder
 *                          whose file was taken over, or nil), or nil and {pid=, host=, message=}
 *                          when another process holds it; released by __gc and __close too */
#include <signal.h>
#include <string.h>

#include "lbind.h"
#include "../core/process.h"

#define LOCK_MT "aiart.Lock"

typedef struct {
  ai_lockfile *lk;
  ai_lock_info info;
} lai_lock;

static const char *signal_name(int sig) {
  switch (sig) {
  case SIGINT: return "SIGINT";
  case SIGTERM: return "SIGTERM";
  default: return "signal";
  }
}

static int l_trap_signals(lua_State *L) {
  lai_checkmax(L, 0);
  if (ai_trap_signals() != 0) return lai_error(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_untrap_signals(lua_State *L) {
  lai_checkmax(L, 0);
  ai_untrap_signals();
  return 0;
}

static int l_pending_signal(lua_State *L) {
  lai_checkmax(L, 0);
  int sig = ai_pending_signal();
  if (sig == 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushstring(L, signal_name(sig));
  lua_pushinteger(L, sig);
  return 2;
}

static int l_lock_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lai_checkmax(L, 1);
  /* the box first, so that no Lua error can leave a lock without an owner */
  lai_lock *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, LOCK_MT);
  ai_lock_info info;
  u->lk = ai_lock_take(path, &info);
  if (u->lk) {
    u->info = info;
    return 1;
  }
  if (!info.busy) return lai_error(L);
  lua_pushnil(L);
  lua_createtable(L, 0, 3);
  if (info.pid > 0) {
    lua_pushinteger(L, info.pid);
    lua_setfield(L, -2, "pid");
  }
  lua_pushstring(L, info.host);
  lua_setfield(L, -2, "host");
  lua_pushstring(L, ai_error());
  lua_setfield(L, -2, "message");
  return 2;
}

static lai_lock *check_lock(lua_State *L) { return luaL_checkudata(L, 1, LOCK_MT); }

static int lock_release(lua_State *L) {
  lai_lock *u = check_lock(L);
  ai_lock_release(u->lk);
  u->lk = NULL;
  return 0;
}

static int lock_stale(lua_State *L) {
  lai_lock *u = check_lock(L);
  lai_checkmax(L, 1);
  if (u->info.stale_pid <= 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, u->info.stale_pid);
  lua_pushstring(L, u->info.stale_host);
  return 2;
}

static int lock_tostring(lua_State *L) {
  lai_lock *u = check_lock(L);
  lua_pushstring(L, u->lk ? "Lock (held)" : "Lock (released)");
  return 1;
}

void lai_open_signal(lua_State *L) {
  static const luaL_Reg methods[] = {{"release", lock_release}, {"stale", lock_stale}, {NULL, NULL}};
  static const luaL_Reg fns[] = {{"trap_signals", l_trap_signals}, {"untrap_signals", l_untrap_signals},
                                 {"pending_signal", l_pending_signal}, {"lock_file", l_lock_file},
                                 {NULL, NULL}};
  if (luaL_newmetatable(L, LOCK_MT)) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, lock_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "Lock");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -2); /* the module */
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}
