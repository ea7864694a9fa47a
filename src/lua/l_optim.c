/* l_optim.c: ai._optim, the Lua face of the fused parameter updates of src/core/optim.h used by
 * lua/aiart/optim.lua. Each function reads its tensors and its options table, then makes one
 * core call. */
#include "lbind.h"
#include "../core/optim.h"

/* Argument i must be a tensor (its dtype, shape and layout are the core's to check). */
static ai_tensor *array_arg(lua_State *L, int i, const char *fn, const char *what) {
  ai_tensor *t = lai_test(L, i);
  if (!t) luaL_error(L, "%s: %s must be a tensor, got %s", fn, what, luaL_typename(L, i));
  return t;
}

/* An optional state array: nil gives NULL. */
static ai_tensor *opt_array_arg(lua_State *L, int i, const char *fn, const char *what) {
  return lua_isnoneornil(L, i) ? NULL : array_arg(L, i, fn, what);
}

/* A number option; `required` options have no default. */
static double num_opt(lua_State *L, int opts, const char *fn, const char *k, double def, bool required) {
  if (required) {
    if (!lua_istable(L, opts)) luaL_error(L, "%s: options table expected", fn);
    lua_getfield(L, opts, k);
    if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "%s: option '%s' must be a number, got %s", fn, k, luaL_typename(L, -1));
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
  }
  return lai_optnumfield(L, opts, k, def);
}


/* The core's message as it is: it already names the function. */
static int done(lua_State *L, int rc) {
  if (rc) return luaL_error(L, "%s", ai_error());
  return 0;
}

/* adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq_or_nil,
 *           {lr=, beta1=, beta2=, eps=, weight_decay=0, step=, decoupled=false, maximize=false,
 *            amsgrad=(max_exp_avg_sq given)}) */
static int l_adam_step(lua_State *L) {
  const char *fn = "adam_step";
  lai_lastopts(L, 6, LAI_OPTS("lr", "beta1", "beta2", "eps", "weight_decay", "step", "decoupled", "maximize", "amsgrad"));
  ai_tensor *p = array_arg(L, 1, fn, "param"), *g = array_arg(L, 2, fn, "grad");
  ai_tensor *m = array_arg(L, 3, fn, "exp_avg"), *v = array_arg(L, 4, fn, "exp_avg_sq");
  ai_tensor *vmax = opt_array_arg(L, 5, fn, "max_exp_avg_sq");
  ai_adam_opts o;
  o.lr = num_opt(L, 6, fn, "lr", 0, true);
  o.beta1 = num_opt(L, 6, fn, "beta1", 0.9, false);
  o.beta2 = num_opt(L, 6, fn, "beta2", 0.999, false);
  o.eps = num_opt(L, 6, fn, "eps", 1e-8, false);
  o.weight_decay = num_opt(L, 6, fn, "weight_decay", 0, false);
  o.step = num_opt(L, 6, fn, "step", 0, true);
  o.decoupled = lai_optboolfield(L, 6, "decoupled", 0);
  o.maximize = lai_optboolfield(L, 6, "maximize", 0);
  o.amsgrad = lai_optboolfield(L, 6, "amsgrad", vmax != NULL);
  return done(L, ai_adam_step(p, g, m, v, vmax, &o));
}

/* sgd_step(param, grad, momentum_buffer_or_nil, {lr=, momentum=0, dampening=0,
 *          weight_decay=0, nesterov=false, maximize=false, first=false}) */
static int l_sgd_step(lua_State *L) {
  const char *fn = "sgd_step";
  lai_lastopts(L, 4, LAI_OPTS("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "first"));
  ai_tensor *p = array_arg(L, 1, fn, "param"), *g = array_arg(L, 2, fn, "grad");
  ai_tensor *buf = opt_array_arg(L, 3, fn, "momentum_buffer");
  ai_sgd_opts o;
  o.lr = num_opt(L, 4, fn, "lr", 0, true);
  o.momentum = num_opt(L, 4, fn, "momentum", 0, false);
  o.dampening = num_opt(L, 4, fn, "dampening", 0, false);
  o.weight_decay = num_opt(L, 4, fn, "weight_decay", 0, false);
  o.nesterov = lai_optboolfield(L, 4, "nesterov", 0);
  o.maximize = lai_optboolfield(L, 4, "maximize", 0);
  o.first = lai_optboolfield(L, 4, "first", 0);
  return done(L, ai_sgd_step(p, g, buf, &o));
}

/* rmsprop_step(param, grad, square_avg, grad_avg_or_nil, momentum_buffer_or_nil,
 *              {lr=, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, maximize=false}) */
static int l_rmsprop_step(lua_State *L) {
  const char *fn = "rmsprop_step";
  lai_lastopts(L, 6, LAI_OPTS("lr", "alpha", "eps", "weight_decay", "momentum", "maximize"));
  ai_tensor *p = array_arg(L, 1, fn, "param"), *g = array_arg(L, 2, fn, "grad");
  ai_tensor *sq = array_arg(L, 3, fn, "square_avg");
  ai_tensor *gavg = opt_array_arg(L, 4, fn, "grad_avg"), *buf = opt_array_arg(L, 5, fn, "momentum_buffer");
  ai_rmsprop_opts o;
  o.lr = num_opt(L, 6, fn, "lr", 0, true);
  o.alpha = num_opt(L, 6, fn, "alpha", 0.99, false);
  o.eps = num_opt(L, 6, fn, "eps", 1e-8, false);
  o.weight_decay = num_opt(L, 6, fn, "weight_decay", 0, false);
  o.momentum = num_opt(L, 6, fn, "momentum", 0, false);
  o.maximize = lai_optboolfield(L, 6, "maximize", 0);
  return done(L, ai_rmsprop_step(p, g, sq, gavg, buf, &o));
}

/* adagrad_step(param, grad, state_sum, {lr=, eps=1e-10, weight_decay=0, maximize=false}) */
static int l_adagrad_step(lua_State *L) {
  const char *fn = "adagrad_step";
  lai_lastopts(L, 4, LAI_OPTS("lr", "eps", "weight_decay", "maximize"));
  ai_tensor *p = array_arg(L, 1, fn, "param"), *g = array_arg(L, 2, fn, "grad");
  ai_tensor *sum = array_arg(L, 3, fn, "state_sum");
  ai_adagrad_opts o;
  o.lr = num_opt(L, 4, fn, "lr", 0, true);
  o.eps = num_opt(L, 4, fn, "eps", 1e-10, false);
  o.weight_decay = num_opt(L, 4, fn, "weight_decay", 0, false);
  o.maximize = lai_optboolfield(L, 4, "maximize", 0);
  return done(L, ai_adagrad_step(p, g, sum, &o));
}

/* lerp_(dst, src, weight): dst += weight * (src - dst), in place (EMA's update). */
static int l_lerp_(lua_State *L) {
  const char *fn = "lerp_";
  lai_checkmax(L, 3);
  ai_tensor *dst = array_arg(L, 1, fn, "dst"), *src = array_arg(L, 2, fn, "src");
  return done(L, ai_lerp_(dst, src, luaL_checknumber(L, 3)));
}

/* Adds the table `_optim` to the module table (index -2; the method table is at -1). */
void lai_open_optim(lua_State *L) {
  const luaL_Reg fns[] = {{"adam_step", l_adam_step}, {"sgd_step", l_sgd_step},
                          {"rmsprop_step", l_rmsprop_step}, {"adagrad_step", l_adagrad_step},
                          {"lerp_", l_lerp_}, {NULL, NULL}};
  lua_newtable(L);
  lai_register(L, fns);
  lua_setfield(L, -3, "_optim");
}
