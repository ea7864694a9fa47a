/* l_autograd.c: requires_grad, backward, ai.grad (double backward), grad modes, detach. */
#include <stdlib.h>

#include "lbind.h"

/* x:requires_grad_(flag=true) sets the flag and returns x; the field x.requires_grad reads it
 * (l_tensor.c). The flag is a boolean (nil: left out, as m:requires_grad_(flag) of a module),
 * not any value Lua counts as true. */
static int m_requires_grad_(lua_State *L) {
  lai_checkmax(L, 2);
  ai_tensor *t = lai_check(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TBOOLEAN);
  if (ai_set_requires_grad(t, lua_isnoneornil(L, 2) ? true : lua_toboolean(L, 2))) return lai_error(L);
  lua_settop(L, 1);
  return 1;
}

static int m_detach(lua_State *L) {
  lai_checkmax(L, 1);
  return lai_push(L, ai_detach(lai_check(L, 1)));
}

/* Reads one tensor or a list of tensors at arg into an array owned by a userdata left on the
 * stack; errors name argument `named` (the options table, for the option grad_outputs). */
static ai_tensor **tensors_arg(lua_State *L, int arg, int named, int *n, bool allow_nil_items) {
  ai_tensor *t = lai_test(L, arg);
  if (t) {
    ai_tensor **v = lua_newuserdatauv(L, sizeof *v, 0);
    v[0] = t;
    *n = 1;
    return v;
  }
  if (!lua_istable(L, arg))
    luaL_argerror(L, named, lua_pushfstring(L, "tensor or list of tensors expected, got %s", luaL_typename(L, arg)));
  *n = (int)lua_rawlen(L, arg);
  ai_tensor **v = lua_newuserdatauv(L, sizeof *v * (size_t)(*n ? *n : 1), 0);
  for (int i = 0; i < *n; i++) {
    lua_rawgeti(L, arg, i + 1);
    v[i] = lai_test(L, -1);
    if (!v[i] && !(allow_nil_items && lua_isnil(L, -1)))
      luaL_argerror(L, named, lua_pushfstring(L, "expected a list of tensors, item %d is a %s", i + 1, luaL_typename(L, -1)));
    lua_pop(L, 1);
  }
  return v;
}

/* y:backward([grad][, {retain_graph=, create_graph=}]) */
static int m_backward(lua_State *L) {
  ai_tensor *y = lai_check(L, 1);
  ai_tensor *g = lai_test(L, 2);
  int opts = g ? 3 : 2;
  if (!g && !lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    return luaL_argerror(L, 2, "gradient tensor or options table expected");
  lai_lastopts(L, opts, LAI_OPTS("retain_graph", "create_graph"));
  bool retain = lai_optboolfield(L, opts, "retain_graph", 0);
  bool create = lai_optboolfield(L, opts, "create_graph", 0);
  ai_tensor *gs[1] = {g};
  lua_State *prev = lai_engine_L; /* hooks and Lua functions' backwards run on this thread */
  lai_engine_L = L;
  int rc = ai_backward(&y, g ? gs : NULL, 1, retain, create);
  lai_engine_L = prev;
  if (rc) return lai_error(L);
  return 0;
}

/* ai.grad(outputs, inputs[, grad_outputs][, {grad_outputs=, retain_graph=, create_graph=,
 * allow_unused=}]) returns a table of gradients (or a single one when inputs is a single
 * tensor). grad_outputs (a tensor or a list of them) may come third, as in PyTorch. */
static int l_grad(lua_State *L) {
  int nout, nin, ngo = 0;
  int positional = lai_test(L, 3) != NULL;
  if (!positional && lua_istable(L, 3)) {
    lua_rawgeti(L, 3, 1);
    positional = lai_test(L, -1) != NULL;
    lua_pop(L, 1);
  }
  const int opts = positional ? 4 : 3;
  if (!lua_isnoneornil(L, opts) && !lua_istable(L, opts))
    return luaL_argerror(L, opts, lua_pushfstring(L, "options table expected, got %s", luaL_typename(L, opts)));
  lai_lastopts(L, opts, LAI_OPTS("grad_outputs", "retain_graph", "create_graph", "allow_unused"));
  lua_settop(L, 4); /* arrays made below sit above the arguments */
  ai_tensor **outs = tensors_arg(L, 1, 1, &nout, false);
  ai_tensor **ins = tensors_arg(L, 2, 2, &nin, false);
  ai_tensor **gos = NULL;
  if (positional) {
    gos = tensors_arg(L, 3, 3, &ngo, true);
  }
  if (lua_istable(L, opts)) {
    lua_getfield(L, opts, "grad_outputs");
    if (!lua_isnil(L, -1) && positional)
      return luaL_argerror(L, opts, "grad_outputs given twice (as argument 3 and as an option)");
    if (!lua_isnil(L, -1)) gos = tensors_arg(L, lua_gettop(L), opts, &ngo, true);
  }
  if (gos && ngo != nout) return luaL_error(L, "grad: %d grad_outputs for %d outputs", ngo, nout);
  bool create = lai_optboolfield(L, opts, "create_graph", 0);
  bool retain = lai_optboolfield(L, opts, "retain_graph", create);
  bool allow_unused = lai_optboolfield(L, opts, "allow_unused", 0);
  ai_tensor **res = lua_newuserdatauv(L, sizeof *res * (size_t)(nin ? nin : 1), 0);
  lua_State *prev = lai_engine_L;
  lai_engine_L = L;
  int rc = ai_grad(outs, gos, nout, ins, nin, retain, create, allow_unused, res);
  lai_engine_L = prev;
  if (rc) return lai_error(L);
  bool single = lai_test(L, 2) != NULL;
  lai_push_list(L, res, nin); /* every gradient boxed at once: none can leak */
  if (single) lua_rawgeti(L, -1, 1);
  return 1;
}

static int restore_mode(lua_State *L, int status, lua_KContext ctx) {
  ai_set_grad_enabled((bool)ctx);
  if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
  return lua_gettop(L); /* the function and its arguments were replaced by its results */
}

/* Runs f(...) with grad mode set to `on`, restoring the previous mode even on error. */
static int with_grad_mode(lua_State *L, bool on) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  bool was = ai_set_grad_enabled(on);
  int n = lua_gettop(L) - 1;
  int status = lua_pcallk(L, n, LUA_MULTRET, 0, (lua_KContext)was, restore_mode);
  return restore_mode(L, status, (lua_KContext)was);
}
static int l_no_grad(lua_State *L) { return with_grad_mode(L, false); }
static int l_enable_grad(lua_State *L) { return with_grad_mode(L, true); }

static int l_set_grad_enabled(lua_State *L) {
  lai_checkmax(L, 1);
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  lua_pushboolean(L, ai_set_grad_enabled(lua_toboolean(L, 1)));
  return 1;
}
static int l_is_grad_enabled(lua_State *L) {
  lai_checkmax(L, 0);
  lua_pushboolean(L, ai_grad_enabled());
  return 1;
}

/* ---------------------------------------------------------------- grad mode per coroutine
 * The core keeps one grad mode; a coroutine that changes it (a sampler that yields inside
 * ai.no_grad) must not leave it changed for the code that resumed it, as PyTorch keeps the mode
 * per thread. So coroutine.resume and coroutine.wrap are wrapped: a coroutine runs with the
 * mode of its resumer until it sets one of its own (a mode it left different from the one it
 * was resumed with), which it then keeps at every resume; the resumer's mode is restored when
 * the coroutine yields or ends. */

static const char grad_modes_key = 0; /* registry: weak-keyed {thread = its own mode} */

static int own_mode(lua_State *L, int co, bool *mode) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &grad_modes_key);
  lua_pushvalue(L, co);
  int t = lua_rawget(L, -2);
  if (t == LUA_TBOOLEAN) *mode = lua_toboolean(L, -1);
  lua_pop(L, 2);
  return t == LUA_TBOOLEAN;
}
static void set_own_mode(lua_State *L, int co, bool mode) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &grad_modes_key);
  lua_pushvalue(L, co);
  lua_pushboolean(L, mode);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* Calls the original resume (upvalue 1) on the coroutine at index 1 with the arguments above it;
 * leaves the coroutine at 1 and resume's results above it. */
static void resume_in_mode(lua_State *L, int resume_up) {
  bool caller = ai_grad_enabled(), start = caller;
  own_mode(L, 1, &start);
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(resume_up));
  lua_insert(L, 2);        /* co, resume, co?, args... */
  lua_pushvalue(L, 1);
  lua_insert(L, 3);        /* co, resume, co, args... */
  ai_set_grad_enabled(start);
  lua_call(L, n, LUA_MULTRET); /* resume raises only for a bad argument, before running anything */
  bool now = ai_grad_enabled();
  if (now != start) set_own_mode(L, 1, now);
  ai_set_grad_enabled(caller);
}

static int co_resume(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  resume_in_mode(L, 1);
  lua_remove(L, 1);
  return lua_gettop(L);
}

/* coroutine.wrap's function, over co_resume's logic, raising the coroutine's error as
 * lcorolib's auxwrap does (its to-be-closed variables closed, the caller's position added). */
static int co_wrapped(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_insert(L, 1);
  resume_in_mode(L, 1);
  lua_State *co = lua_tothread(L, 1);
  if (lua_toboolean(L, 2)) return lua_gettop(L) - 2;
  int stat = lua_status(co);
  if (stat != LUA_OK && stat != LUA_YIELD) {
#if LUA_VERSION_RELEASE_NUM >= 50406
    stat = lua_closethread(co, L);
#else
    stat = lua_resetthread(co);
#endif
    lua_xmove(co, L, 1);
  }
  if (stat != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

static int co_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushvalue(L, lua_upvalueindex(1)); /* the original resume */
  lua_insert(L, -2);
  lua_pushcclosure(L, co_wrapped, 2);
  return 1;
}

static void wrap_coroutine_library(lua_State *L) {
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &grad_modes_key);
  if (lua_getglobal(L, "coroutine") != LUA_TTABLE) { lua_pop(L, 1); return; }
  lua_getfield(L, -1, "resume");
  if (lua_tocfunction(L, -1) == co_resume || !lua_isfunction(L, -1)) { lua_pop(L, 2); return; } /* done already */
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, co_resume, 1);
  lua_setfield(L, -3, "resume");
  lua_pushcclosure(L, co_wrap, 1);
  lua_setfield(L, -2, "wrap");
  lua_pop(L, 1);
}

void lai_open_autograd(lua_State *L) {
  const luaL_Reg methods[] = {{"requires_grad_", m_requires_grad_},
                              {"detach", m_detach}, {"backward", m_backward}, {NULL, NULL}};
  lai_register(L, methods);
  const luaL_Reg module[] = {{"grad", l_grad}, {"no_grad", l_no_grad}, {"enable_grad", l_enable_grad},
                             {"set_grad_enabled", l_set_grad_enabled}, {"is_grad_enabled", l_is_grad_enabled},
                             {"detach", m_detach}, {NULL, NULL}};
  lua_pushvalue(L, -2);
  lai_register(L, module);
  lua_pop(L, 1);
  wrap_coroutine_library(L);
}
