/* lbind.h: the shared helpers of the Lua binding layer (the files src/lua/l_*.c). */
#ifndef LBIND_H
#define LBIND_H

#include <lua.h>
#include <lauxlib.h>
#include "../core/ai.h"

#define LAI_TENSOR_MT "aiart.Tensor"

/* The userdata box of a tensor: one pointer; NULL once closed. */
typedef struct { ai_tensor *t; } lai_box;

/* Checks that argument i is a tensor and returns it (borrowed). Error names the argument. */
ai_tensor *lai_check(lua_State *L, int i);
/* Like lai_check but returns NULL when argument i is not a tensor. */
ai_tensor *lai_test(lua_State *L, int i);
/* Accepts a tensor or a number (number -> 0-dim tensor of a dtype that fits `like`, or f32).
 * Returns a NEW reference the caller must unref. */
ai_tensor *lai_totensor(lua_State *L, int i, const ai_tensor *like);
/* Pushes t, taking over the caller's reference. t == NULL raises the core's error as a Lua
 * error prefixed with the name of the running Lua function. Never returns NULL-pushed values. */
int lai_push(lua_State *L, ai_tensor *t);
/* 0-based positions from the core as 1-based ones; takes over ix (NULL passes through) */
ai_tensor *lai_one_based(ai_tensor *ix);
/* Pushes a table {ts[0], ..., ts[n-1]} of new boxes, taking over each reference (NULL entries
 * are nil). If Lua runs out of memory, every reference is released before the error. */
int lai_push_list(lua_State *L, ai_tensor **ts, int n);
/* Raises ai_error() as a Lua error ("fname: message"). */
int lai_error(lua_State *L);
/* 1-based Lua dim (negative counts from the end) -> 0-based, with a clear error. */
int lai_checkdim(lua_State *L, int arg, int ndim);
/* Reads a shape from varargs of integers starting at arg, or from a table at arg. Returns ndim. */
int lai_checkshape(lua_State *L, int arg, int64_t *shape);
/* dtype name ("f32", "float32", "float", "f64", "double", "i64", "long", "u8", "byte", "bool") */
ai_dtype lai_checkdtype(lua_State *L, int arg);
/* Option table helpers: opts at index `arg` (may be nil/none). */
lua_Number lai_optnumfield(lua_State *L, int arg, const char *k, lua_Number def);
lua_Integer lai_optintfield(lua_State *L, int arg, const char *k, lua_Integer def);
int lai_optboolfield(lua_State *L, int arg, const char *k, int def);
const char *lai_optstrfield(lua_State *L, int arg, const char *k, const char *def);
/* The field "dtype" of the options table at arg, or def. */
ai_dtype lai_optdtype(lua_State *L, int arg, ai_dtype def);
/* The options table at arg (nil or none: no options) may hold only the keys of the
 * NULL-terminated list `known`; anything else is an error listing them. LAI_OPTS("a", "b") makes
 * such a list. */
void lai_checkopts(lua_State *L, int arg, const char *const *known);
/* Whether the table at idx has a key outside `known`; if so, that key and the list of the known
 * ones ("a, b", or "none") are left on the stack, for the caller's message. */
bool lai_unknown_key(lua_State *L, int idx, const char *const *known);
/* The first key of the table at idx beside its sequence 1..n ({a, b, dim = 2}), as text for a
 * message ("'dim'"), or NULL when it has none. */
const char *lai_key_beside(lua_State *L, int idx, lua_Integer n);
#define LAI_OPTS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define LAI_NO_OPTS ((const char *const[]){NULL})
/* At most n arguments: more is the error "too many arguments", naming the first extra one
 * (extra arguments are never ignored silently). Trailing nils count as left out, as Lua's
 * optional arguments do (a wrapper passing on an absent option is no mistake). */
int lai_too_many(lua_State *L, int n);
int lai_last_arg(lua_State *L); /* the index of the last argument that is not nil */
static inline void lai_checkmax(lua_State *L, int n) { if (lua_gettop(L) > n && lai_last_arg(L) > n) lai_too_many(L, n); }
/* The options table of a function at arg, its last argument: only the keys `known`, nothing
 * after it. */
static inline void lai_lastopts(lua_State *L, int arg, const char *const *known) {
  lai_checkmax(L, arg);
  lai_checkopts(L, arg, known);
}
/* An integer argument, whole-number floats included (Lua's rule: 2.0 is 2, 2.5 is an error). */
lua_Integer lai_checkint(lua_State *L, int arg);
/* An optional integer argument: none or nil gives def. */
static inline lua_Integer lai_optint(lua_State *L, int arg, lua_Integer def) {
  return lua_isnoneornil(L, arg) ? def : lai_checkint(L, arg);
}
/* Whether the value at i is a number with an integer value (the same rule; a numeric string is
 * not a number here), stored in *v. For list items and option fields. */
static inline bool lai_isint(lua_State *L, int i, lua_Integer *v) {
  int ok = 0;
  *v = lua_type(L, i) == LUA_TNUMBER ? lua_tointegerx(L, i, &ok) : 0;
  return ok;
}
/* Applies {requires_grad=true} from the options table at opts to the new tensor on the top. */
void lai_apply_requires_grad(lua_State *L, int opts);
/* Pushes {size1, size2, ...}. */
void lai_push_shape(lua_State *L, const ai_tensor *t);
/* The view x[key] of t for an integer or a table key (l_tensor_view.c): a new reference, or
 * NULL with the core's error. Raises Lua errors for malformed keys without leaking. */
ai_tensor *lai_index_view(lua_State *L, ai_tensor *t, int key);
/* t[key] = the value at `value` (a number, a boolean or a tensor): the core's status. */
int lai_index_assign(lua_State *L, ai_tensor *t, int key, int value);

/* Fills t with the number or boolean at arg (fill_, x[i] = v): integers exactly, a fraction into
 * an integer tensor refused. Returns the core's status. */
int lai_fill_value(lua_State *L, ai_tensor *t, int arg);

/* Registers functions into the table on top of the stack (module or method table). */
void lai_register(lua_State *L, const luaL_Reg *fns);

/* Formatting of tensors (l_format.c): pushes tostring(t). */
void lai_format_tensor(lua_State *L, const ai_tensor *t);

/* luaopen-style registration functions of each binding file: each adds its functions to the
 * module table at index -2 and the tensor method table at index -1. */
void lai_open_tensor(lua_State *L); /* also runs the two below */
void lai_open_tensor_new(lua_State *L);
void lai_open_tensor_view(lua_State *L);
void lai_open_ops(lua_State *L);
void lai_open_ops_port(lua_State *L); /* after lai_open_ops */
void lai_open_autograd(lua_State *L);
void lai_open_nn(lua_State *L);
void lai_open_io(lua_State *L);
void lai_open_json(lua_State *L);
void lai_open_optim(lua_State *L);
void lai_open_data(lua_State *L);
void lai_open_dist(lua_State *L);
void lai_open_sort(lua_State *L);
void lai_open_function(lua_State *L);
/* The thread running a backward (set by backward and ai.grad): where hooks and the backwards of
 * autograd functions written in Lua run (l_function.c). */
extern lua_State *lai_engine_L;
void lai_open_signal(lua_State *L); /* signals and folder locks (l_signal.c) */

#endif
