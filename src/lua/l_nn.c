/* l_nn.c: the neural-network ops for Lua (ai.linear, ai.conv2d, ..., the losses). Options come
 * as a table; sizes may be a number or a {height, width} pair. Class indices are 1-based. */
#include <math.h>
#include <string.h>

#include "lbind.h"

/* Reads option k of the table at opts as a pair (number or {h, w}); def when absent. */
static void optpair(lua_State *L, int opts, const char *k, int def, int *out) {
  out[0] = out[1] = def;
  if (!lua_istable(L, opts)) return;
  lua_getfield(L, opts, k);
  if (lua_isinteger(L, -1)) {
    out[0] = out[1] = (int)lua_tointeger(L, -1);
  } else if (lua_istable(L, -1)) {
    for (int i = 0; i < 2; i++) {
      lua_rawgeti(L, -1, i + 1);
      int ok;
      out[i] = (int)lua_tointegerx(L, -1, &ok);
      if (!ok) luaL_error(L, "option '%s' must be an integer or a pair of integers", k);
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "option '%s' must be an integer or a pair of integers, got %s", k, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
}

/* A size argument (number or pair) at index i. */
static void checkpair(lua_State *L, int i, int *out) {
  if (lua_isinteger(L, i)) { out[0] = out[1] = (int)lua_tointeger(L, i); return; }
  luaL_checktype(L, i, LUA_TTABLE);
  for (int k = 0; k < 2; k++) {
    lua_rawgeti(L, i, k + 1);
    int ok;
    out[k] = (int)lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_argerror(L, i, "expected an integer or a pair of integers");
    lua_pop(L, 1);
  }
}

static ai_tensor *opttensor(lua_State *L, int i) { return lua_isnoneornil(L, i) ? NULL : lai_check(L, i); }

static ai_reduction optreduction(lua_State *L, int opts) {
  const char *r = lai_optstrfield(L, opts, "reduction", "mean");
  if (!strcmp(r, "mean")) return AI_REDUCE_MEAN;
  if (!strcmp(r, "sum")) return AI_REDUCE_SUM;
  if (!strcmp(r, "none")) return AI_REDUCE_NONE;
  if (!strcmp(r, "batchmean")) return AI_REDUCE_BATCHMEAN;
  luaL_error(L, "reduction must be 'mean', 'sum', 'none' or 'batchmean', got '%s'", r);
  return AI_REDUCE_MEAN;
}

/* ---------------------------------------------------------------- layers */

static int l_linear(lua_State *L) {
  return lai_push(L, ai_linear(lai_check(L, 1), lai_check(L, 2), opttensor(L, 3)));
}

static ai_conv_opts conv_opts(lua_State *L, int opts) {
  ai_conv_opts o;
  optpair(L, opts, "stride", 1, o.stride);
  optpair(L, opts, "padding", 0, o.pad);
  optpair(L, opts, "dilation", 1, o.dil);
  optpair(L, opts, "output_padding", 0, o.out_pad);
  o.groups = (int)lai_optintfield(L, opts, "groups", 1);
  return o;
}

/* conv2d(x, w[, b][, opts]): the bias may be omitted or nil */
static int conv_args(lua_State *L, ai_tensor **x, ai_tensor **w, ai_tensor **b) {
  *x = lai_check(L, 1);
  *w = lai_check(L, 2);
  *b = lai_test(L, 3);
  if (lua_istable(L, 3) && !*b) return 3;
  return 4;
}
static int l_conv2d(lua_State *L) {
  ai_tensor *x, *w, *b;
  int o = conv_args(L, &x, &w, &b);
  ai_conv_opts co = conv_opts(L, o);
  return lai_push(L, ai_conv2d(x, w, b, &co));
}
static int l_conv_transpose2d(lua_State *L) {
  ai_tensor *x, *w, *b;
  int o = conv_args(L, &x, &w, &b);
  ai_conv_opts co = conv_opts(L, o);
  return lai_push(L, ai_conv_transpose2d(x, w, b, &co));
}

static int l_max_pool2d(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  int k[2], s[2], p[2], d[2];
  checkpair(L, 2, k);
  optpair(L, 3, "stride", 0, s);
  if (s[0] == 0) { s[0] = k[0]; s[1] = k[1]; }
  optpair(L, 3, "padding", 0, p);
  optpair(L, 3, "dilation", 1, d);
  return lai_push(L, ai_max_pool2d(x, k, s, p, d, lai_optboolfield(L, 3, "ceil_mode", 0)));
}

static int l_avg_pool2d(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  int k[2], s[2], p[2];
  checkpair(L, 2, k);
  optpair(L, 3, "stride", 0, s);
  if (s[0] == 0) { s[0] = k[0]; s[1] = k[1]; }
  optpair(L, 3, "padding", 0, p);
  return lai_push(L, ai_avg_pool2d(x, k, s, p, lai_optboolfield(L, 3, "ceil_mode", 0),
                                   lai_optboolfield(L, 3, "count_include_pad", 1)));
}

static int l_adaptive_avg_pool2d(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  int sz[2];
  checkpair(L, 2, sz);
  return lai_push(L, ai_adaptive_avg_pool2d(x, sz[0], sz[1]));
}

/* upsample(x, {size=, scale_factor=, mode=, align_corners=}) */
static int l_upsample(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (x->ndim != 4) return luaL_error(L, "upsample: input must be 4-D (N x C x H x W)");
  const char *mode = lai_optstrfield(L, 2, "mode", "nearest");
  int m = !strcmp(mode, "nearest") ? 0 : !strcmp(mode, "bilinear") ? 1 : -1;
  if (m < 0) return luaL_error(L, "upsample: mode must be 'nearest' or 'bilinear', got '%s'", mode);
  int size[2] = {0, 0};
  optpair(L, 2, "size", 0, size);
  double sh = 0, sw = 0;
  lua_getfield(L, 2, "scale_factor");
  if (lua_type(L, -1) == LUA_TNUMBER) sh = sw = lua_tonumber(L, -1);
  else if (lua_istable(L, -1)) {
    lua_rawgeti(L, -1, 1); sh = luaL_checknumber(L, -1); lua_pop(L, 1);
    lua_rawgeti(L, -1, 2); sw = luaL_checknumber(L, -1); lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (size[0] <= 0) {
    if (sh <= 0 || sw <= 0) return luaL_error(L, "upsample: give size or a positive scale_factor");
    size[0] = (int)floor((double)x->shape[2] * sh);
    size[1] = (int)floor((double)x->shape[3] * sw);
  } else {
    sh = sw = 0; /* sizes given: scales follow from them */
  }
  bool ac = lai_optboolfield(L, 2, "align_corners", 0);
  return lai_push(L, ai_upsample(x, size[0], size[1], m, ac, sh, sw));
}

/* pad(x, {left, right, top, bottom}, {mode=, value=}); a 2-element table pads the last dim */
static int l_pad(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int p[4] = {0, 0, 0, 0}, n = (int)lua_rawlen(L, 2);
  if (n != 2 && n != 4) return luaL_argerror(L, 2, "padding must be {left, right} or {left, right, top, bottom}");
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    p[i] = (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  const char *mode = lai_optstrfield(L, 3, "mode", "constant");
  ai_pad_mode m = !strcmp(mode, "constant") ? AI_PAD_CONSTANT : !strcmp(mode, "reflect") ? AI_PAD_REFLECT
                : !strcmp(mode, "replicate") ? AI_PAD_REPLICATE : (ai_pad_mode)-1;
  if ((int)m < 0) return luaL_error(L, "pad: mode must be 'constant', 'reflect' or 'replicate', got '%s'", mode);
  return lai_push(L, ai_pad2d(x, p[0], p[1], p[2], p[3], m, lai_optnumfield(L, 3, "value", 0)));
}

/* batch_norm(x, running_mean, running_var, weight, bias, {training=, momentum=, eps=}) */
static int l_batch_norm(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  bool training = lai_optboolfield(L, 6, "training", 0);
  return lai_push(L, ai_batch_norm(x, opttensor(L, 2), opttensor(L, 3), opttensor(L, 4), opttensor(L, 5), training,
                                   lai_optnumfield(L, 6, "momentum", 0.1), lai_optnumfield(L, 6, "eps", 1e-5)));
}

static int l_group_norm(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  int g = (int)luaL_checkinteger(L, 2);
  return lai_push(L, ai_group_norm(x, g, opttensor(L, 3), opttensor(L, 4), lai_optnumfield(L, 5, "eps", 1e-5)));
}

/* instance_norm(x, weight, bias, {eps=}): group norm with one group per channel */
static int l_instance_norm(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  if (x->ndim < 3) return luaL_error(L, "instance_norm: input must be N x C x ...");
  return lai_push(L, ai_group_norm(x, (int)x->shape[1], opttensor(L, 2), opttensor(L, 3),
                                   lai_optnumfield(L, 4, "eps", 1e-5)));
}

/* layer_norm(x, normalized_shape (number or table), weight, bias, {eps=}) */
static int l_layer_norm(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  int nd = lua_isinteger(L, 2) ? 1 : (lua_istable(L, 2) ? (int)lua_rawlen(L, 2) : 0);
  if (nd == 0) return luaL_argerror(L, 2, "normalized shape must be a size or a table of sizes");
  for (int i = 0; i < nd; i++) {
    int64_t want;
    if (lua_isinteger(L, 2)) want = lua_tointeger(L, 2);
    else { lua_rawgeti(L, 2, i + 1); want = luaL_checkinteger(L, -1); lua_pop(L, 1); }
    if (nd > x->ndim || x->shape[x->ndim - nd + i] != want)
      return luaL_error(L, "layer_norm: normalized shape does not match the input's last dimensions");
  }
  return lai_push(L, ai_layer_norm(x, nd, opttensor(L, 3), opttensor(L, 4), lai_optnumfield(L, 5, "eps", 1e-5)));
}

static int softmax(lua_State *L, bool log) {
  ai_tensor *x = lai_check(L, 1);
  int d = x->ndim ? lai_checkdim(L, 2, x->ndim) : 0;
  return lai_push(L, ai_softmax(x, d, log));
}
static int l_softmax(lua_State *L) { return softmax(L, false); }
static int l_log_softmax(lua_State *L) { return softmax(L, true); }

static int l_dropout(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  double p = luaL_optnumber(L, 2, 0.5);
  bool training = lua_isnone(L, 3) ? true : lua_toboolean(L, 3);
  return lai_push(L, ai_dropout(x, p, training));
}

/* 1-based i64 indices from Lua -> 0-based for the core (new ref) */
static ai_tensor *zero_based(lua_State *L, int i) {
  ai_tensor *t = lai_check(L, i);
  if (t->dtype != AI_I64)
    luaL_argerror(L, i, lua_pushfstring(L, "indices must be an i64 tensor (got %s)", ai_dtype_names[t->dtype]));
  ai_tensor *r = ai_binary_scalar(AI_SUB, t, 1, false);
  if (!r) lai_error(L);
  return r;
}

static int l_embedding(lua_State *L) {
  ai_tensor *w = lai_check(L, 2); /* before zero_based: an error here must not leak ix */
  ai_tensor *ix = zero_based(L, 1), *r = ai_embedding(ix, w);
  ai_unref(ix);
  return lai_push(L, r);
}

static int l_attention(lua_State *L) {
  ai_tensor *q = lai_check(L, 1), *k = lai_check(L, 2), *v = lai_check(L, 3), *mask = NULL;
  if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "mask");
    if (!lua_isnil(L, -1)) mask = lai_check(L, -1);
    lua_pop(L, 1);
  }
  return lai_push(L, ai_attention(q, k, v, mask));
}

/* ---------------------------------------------------------------- losses */

static int l_mse_loss(lua_State *L) {
  return lai_push(L, ai_mse_loss(lai_check(L, 1), lai_check(L, 2), optreduction(L, 3)));
}
static int l_l1_loss(lua_State *L) {
  return lai_push(L, ai_l1_loss(lai_check(L, 1), lai_check(L, 2), optreduction(L, 3)));
}
static int l_smooth_l1_loss(lua_State *L) {
  return lai_push(L, ai_smooth_l1_loss(lai_check(L, 1), lai_check(L, 2), lai_optnumfield(L, 3, "beta", 1),
                                       optreduction(L, 3)));
}
static ai_tensor *optfield_tensor(lua_State *L, int opts, const char *k) {
  if (!lua_istable(L, opts)) return NULL;
  lua_getfield(L, opts, k);
  ai_tensor *t = lua_isnil(L, -1) ? NULL : lai_check(L, -1);
  lua_pop(L, 1); /* the table keeps it alive */
  return t;
}
static int l_bce_loss(lua_State *L) {
  return lai_push(L, ai_bce_loss(lai_check(L, 1), lai_check(L, 2), optfield_tensor(L, 3, "weight"), optreduction(L, 3)));
}
static int l_bce_with_logits(lua_State *L) {
  return lai_push(L, ai_bce_with_logits(lai_check(L, 1), lai_check(L, 2), optfield_tensor(L, 3, "pos_weight"),
                                        optreduction(L, 3)));
}
static int class_loss(lua_State *L, bool ce) {
  /* every option is read before zero_based makes its tensor: an option error must not leak it */
  ai_tensor *x = lai_check(L, 1);
  double ignore = lai_optnumfield(L, 3, "ignore_index", -100);
  if (!(ignore >= -9.2e18 && ignore <= 9.2e18)) return luaL_error(L, "option 'ignore_index' must be an integer");
  int64_t ig = ignore == -100 ? -101 : (int64_t)ignore - 1;
  ai_tensor *w = optfield_tensor(L, 3, "weight");
  ai_reduction r = optreduction(L, 3);
  double smoothing = ce ? lai_optnumfield(L, 3, "label_smoothing", 0) : 0;
  ai_tensor *t = zero_based(L, 2);
  ai_tensor *res = ce ? ai_cross_entropy(x, t, w, ig, smoothing, r) : ai_nll_loss(x, t, w, ig, r);
  ai_unref(t);
  return lai_push(L, res);
}
static int l_cross_entropy(lua_State *L) { return class_loss(L, true); }
static int l_nll_loss(lua_State *L) { return class_loss(L, false); }
static int l_kl_div(lua_State *L) {
  ai_reduction r = optreduction(L, 3);
  return lai_push(L, ai_kl_div(lai_check(L, 1), lai_check(L, 2), lai_optboolfield(L, 3, "log_target", 0), r));
}

void lai_open_nn(lua_State *L) {
  const luaL_Reg fns[] = {
      {"linear", l_linear}, {"conv2d", l_conv2d}, {"conv_transpose2d", l_conv_transpose2d},
      {"max_pool2d", l_max_pool2d}, {"avg_pool2d", l_avg_pool2d}, {"adaptive_avg_pool2d", l_adaptive_avg_pool2d},
      {"upsample", l_upsample}, {"interpolate", l_upsample}, {"pad", l_pad}, {"batch_norm", l_batch_norm},
      {"group_norm", l_group_norm}, {"instance_norm", l_instance_norm}, {"layer_norm", l_layer_norm},
      {"softmax", l_softmax}, {"log_softmax", l_log_softmax}, {"dropout", l_dropout}, {"embedding", l_embedding},
      {"scaled_dot_product_attention", l_attention}, {"mse_loss", l_mse_loss}, {"l1_loss", l_l1_loss},
      {"smooth_l1_loss", l_smooth_l1_loss}, {"bce_loss", l_bce_loss}, {"bce_with_logits", l_bce_with_logits},
      {"binary_cross_entropy", l_bce_loss}, {"binary_cross_entropy_with_logits", l_bce_with_logits},
      {"cross_entropy", l_cross_entropy}, {"nll_loss", l_nll_loss}, {"kl_div", l_kl_div}, {NULL, NULL}};
  lua_pushvalue(L, -2);
  lai_register(L, fns);
  lua_pop(L, 1);
  /* tensor methods for the ones people chain */
  const luaL_Reg methods[] = {{"softmax", l_softmax}, {"log_softmax", l_log_softmax}, {NULL, NULL}};
  lai_register(L, methods);
}
