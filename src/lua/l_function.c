/* l_function.c: gradients written in Lua: tensor hooks (x:register_hook(fn), x:retain_grad()) and
 * the nodes of autograd functions (aiart.autograd.Function, whose Lua side is
 * lua/aiart/autograd.lua). The engine calls back into Lua through lai_engine_L, the thread that
 * started the backward; a Lua error there ends the backward with its message. */
#include <stdlib.h>
#include <string.h>

#include "lbind.h"

lua_State *lai_engine_L = NULL;

/* A Lua function the core holds: its registry reference in the main thread's registry. */
typedef struct {
  lua_State *main;
  int ref;
  int output; /* an autograd function's output number */
} lua_fn;

static lua_fn *hold_function(lua_State *L, int idx) {
  lua_fn *f = malloc(sizeof *f);
  if (!f) { luaL_error(L, "not enough memory"); return NULL; }
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  f->main = lua_tothread(L, -1);
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  f->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  f->output = 0;
  return f;
}

/* Runs from the core when a node or a leaf goes, which may be during a collection: the registry
 * is shared by every thread of the state, and unref pushes and pops nothing it leaves behind. */
static void release_function(void *ctx) {
  lua_fn *f = ctx;
  luaL_unref(f->main, LUA_REGISTRYINDEX, f->ref);
  free(f);
}

/* Calls the held function with the arguments on top of L's stack (nargs), one result; on error
 * sets the core's message. */
static int call_held(lua_State *L, lua_fn *f, int nargs, const char *what) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, f->ref);
  lua_insert(L, -nargs - 1);
  if (lua_pcall(L, nargs, 1, 0) != LUA_OK) {
    ai_seterror("%s: %s", what, lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object is not a string)");
    lua_pop(L, 1);
    return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------- register_hook */

static ai_tensor *lua_hook(void *ctx, ai_tensor *g) {
  lua_State *L = lai_engine_L;
  if (!L) return AI_ERRNULL("register_hook: a hook ran outside a backward started from Lua");
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 4)) return AI_ERRNULL("register_hook: Lua stack overflow");
  lai_push(L, ai_ref(g));
  if (call_held(L, ctx, 1, "register_hook")) { lua_settop(L, top); return NULL; }
  ai_tensor *r = lua_isnil(L, -1) ? g : lai_test(L, -1);
  if (!r) {
    ai_seterror("register_hook: a hook returns nil (keep the gradient) or a tensor, not a %s", luaL_typename(L, -1));
  } else if (!ai_same_shape(r, g)) {
    char a[128], b[128];
    ai_seterror("register_hook: the hook returned a tensor of shape %s for a gradient of shape %s",
                ai_shape_str(r, a, sizeof a), ai_shape_str(g, b, sizeof b));
    r = NULL;
  } else {
    ai_ref(r);
  }
  lua_settop(L, top);
  return r;
}

/* x:register_hook(fn): fn(grad) runs when x's gradient of a backward is known; it returns nil to
 * keep it or a tensor of the same shape to use instead */
static int m_register_hook(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lai_checkmax(L, 2);
  lua_fn *f = hold_function(L, 2);
  if (ai_add_tensor_hook(t, lua_hook, f, release_function)) { release_function(f); return lai_error(L); }
  return 0;
}

static int m_retain_grad(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lai_checkmax(L, 1);
  if (ai_retain_grad(t)) return lai_error(L);
  lua_settop(L, 1);
  return 1;
}

/* ---------------------------------------------------------------- autograd functions */

/* The node's backward: the Lua closure held (lua/aiart/autograd.lua's) gets (output, g) and
 * returns a list with one gradient (or nil) per input. */
static int lua_backward(void *ctx, int output, ai_tensor *g, int nin, ai_tensor **gin) {
  lua_State *L = lai_engine_L;
  if (!L) return ai_seterror("autograd.Function: a backward ran outside a backward started from Lua");
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 6)) return ai_seterror("autograd.Function: Lua stack overflow");
  lua_pushinteger(L, output);
  lai_push(L, ai_ref(g));
  if (call_held(L, ctx, 2, "backward")) { lua_settop(L, top); return -1; }
  int rc = 0;
  if (!lua_istable(L, -1)) {
    rc = ai_seterror("autograd.Function: internal: backward gave no list of gradients");
  } else {
    for (int i = 0; i < nin && !rc; i++) {
      lua_rawgeti(L, -1, i + 1);
      ai_tensor *gi = lai_test(L, -1);
      if (gi) gin[i] = ai_ref(gi);
      else if (!lua_isnil(L, -1))
        rc = ai_seterror("backward: gradient %d is a %s; return a tensor or nil", i + 1, luaL_typename(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
  return rc;
}

/* ai._record_function(out, inputs, backward, output) -> out, recorded as output number `output`
 * of an autograd function whose backward(output, grad) returns the inputs' gradients; out is a
 * fresh alias when it already belongs to a graph (or is one of the inputs). */
static int l_record_function(lua_State *L) {
  ai_tensor *out = lai_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  int output = (int)lai_checkint(L, 4);
  lai_checkmax(L, 4);
  int nin = (int)lua_rawlen(L, 2);
  ai_tensor **ins = lua_newuserdatauv(L, sizeof *ins * (size_t)(nin ? nin : 1), 0);
  for (int i = 0; i < nin; i++) {
    lua_rawgeti(L, 2, i + 1);
    ins[i] = lai_test(L, -1);
    lua_pop(L, 1);
    if (!ins[i]) return luaL_argerror(L, 2, "a list of tensors expected");
  }
  ai_tensor *o = ai_detach(out); /* a fresh tensor object: the node must not take over another */
  if (!o) return lai_error(L);
  lai_push(L, o);
  lua_fn *f = hold_function(L, 3);
  f->output = output;
  int rc = ai_record_custom(o, nin, ins, lua_backward, release_function, f, output);
  if (rc <= 0) release_function(f);
  if (rc < 0) return lai_error(L);
  return 1;
}

void lai_open_function(lua_State *L) {
  const luaL_Reg methods[] = {{"register_hook", m_register_hook}, {"retain_grad", m_retain_grad}, {NULL, NULL}};
  lai_register(L, methods);
  lua_pushcfunction(L, l_record_function);
  lua_setfield(L, -3, "_record_function");
}
