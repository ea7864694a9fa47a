/* l_nn.c: the neural-network ops for Lua (ai.linear, ai.conv2d, ..., the losses). Options come
 * as a table; sizes may be a number or a {height, width} pair. Class indices are 1-based. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "lbind.h"

/* The value on the top as one int, or as a pair {a, b} of them, into out (a number fills both).
 * Whole-number floats count (Lua's rule: 2.0 is 2); values that do not fit an int are refused,
 * never cut. The sign and size of each value are the core's to check. Returns NULL or what is
 * wrong, for the caller's message. */
static const char *top_pair(lua_State *L, int *out) {
  lua_Integer v[2];
  if (lua_type(L, -1) == LUA_TNUMBER) {
    if (!lai_isint(L, -1, &v[0])) return "a fraction";
    v[1] = v[0];
  } else if (lua_istable(L, -1)) {
    if (lua_rawlen(L, -1) != 2) return lua_pushfstring(L, "a table of %d items", (int)lua_rawlen(L, -1));
    for (int i = 0; i < 2; i++) {
      lua_rawgeti(L, -1, i + 1);
      bool ok = lai_isint(L, -1, &v[i]);
      const char *what = lua_type(L, -1) == LUA_TNUMBER ? "a fraction" : luaL_typename(L, -1);
      lua_pop(L, 1);
      if (!ok) return lua_pushfstring(L, "item %d is %s", i + 1, what);
    }
  } else {
    return luaL_typename(L, -1);
  }
  for (int i = 0; i < 2; i++) {
    if (v[i] < INT_MIN || v[i] > INT_MAX) return lua_pushfstring(L, "%I, out of range", (LUAI_UACINT)v[i]);
    out[i] = (int)v[i];
  }
  return NULL;
}

/* Reads option k of the table at opts as a pair (number or {h, w}); def when absent. */
static void optpair(lua_State *L, int opts, const char *k, int def, int *out) {
  out[0] = out[1] = def;
  if (!lua_istable(L, opts)) return;
  lua_getfield(L, opts, k);
  const char *bad = lua_isnil(L, -1) ? NULL : top_pair(L, out);
  if (bad)
    luaL_argerror(L, opts, lua_pushfstring(L, "option '%s' must be an integer or a pair of integers, got %s", k, bad));
  lua_pop(L, 1);
}

/* A size argument (number or pair) at index i. */
static void checkpair(lua_State *L, int i, int *out) {
  bool none = lua_isnone(L, i);
  lua_pushvalue(L, i);
  const char *bad = none ? "no value" : top_pair(L, out);
  if (bad) luaL_argerror(L, i, lua_pushfstring(L, "expected an integer or a pair of integers, got %s", bad));
  lua_pop(L, 1);
}

/* Whether the options table at opts has the field k. */
static bool has_opt(lua_State *L, int opts, const char *k) {
  if (!lua_istable(L, opts)) return false;
  bool has = lua_getfield(L, opts, k) != LUA_TNIL;
  lua_pop(L, 1);
  return has;
}

/* An int option (Lua's rule for whole numbers; values that do not fit an int refused). */
static int optint(lua_State *L, int opts, const char *k, int def) {
  lua_Integer v = lai_optintfield(L, opts, k, def);
  if (v < INT_MIN || v > INT_MAX)
    luaL_argerror(L, opts, lua_pushfstring(L, "option '%s' is out of range (%I)", k, (LUAI_UACINT)v));
  return (int)v;
}

/* An optional tensor argument (weight, bias, running statistics): nil or none is NULL. */
static ai_tensor *opttensor(lua_State *L, int i) { return lua_isnoneornil(L, i) ? NULL : lai_check(L, i); }

static ai_reduction optreduction(lua_State *L, int opts) {
  const char *r = lai_optstrfield(L, opts, "reduction", "mean");
  if (!strcmp(r, "mean")) return AI_REDUCE_MEAN;
  if (!strcmp(r, "sum")) return AI_REDUCE_SUM;
  if (!strcmp(r, "none")) return AI_REDUCE_NONE;
  if (!strcmp(r, "batchmean")) return AI_REDUCE_BATCHMEAN;
  luaL_argerror(L, opts, lua_pushfstring(L, "reduction must be 'mean', 'sum', 'none' or 'batchmean', got '%s'", r));
  return AI_REDUCE_MEAN;
}


/* ---------------------------------------------------------------- layers */

static int l_linear(lua_State *L) {
  lai_checkmax(L, 3);
  return lai_push(L, ai_linear(lai_check(L, 1), lai_check(L, 2), opttensor(L, 3)));
}

static ai_conv_opts conv_opts(lua_State *L, int opts, bool transposed) {
  ai_conv_opts o;
  lai_lastopts(L, opts, transposed ? LAI_OPTS("stride", "padding", "output_padding", "dilation", "groups")
                              : LAI_OPTS("stride", "padding", "dilation", "groups"));
  optpair(L, opts, "stride", 1, o.stride);
  optpair(L, opts, "padding", 0, o.pad);
  optpair(L, opts, "dilation", 1, o.dil);
  optpair(L, opts, "output_padding", 0, o.out_pad);
  o.groups = optint(L, opts, "groups", 1);
  return o;
}

/* conv2d(x, w[, b][, opts]): the bias may be omitted or nil; returns the options' index */
static int conv_args(lua_State *L, ai_tensor **x, ai_tensor **w, ai_tensor **b) {
  *x = lai_check(L, 1);
  *w = lai_check(L, 2);
  *b = lai_test(L, 3);
  if (lua_istable(L, 3)) return 3;
  if (!*b && !lua_isnoneornil(L, 3))
    luaL_argerror(L, 3, lua_pushfstring(L, "bias tensor, nil or options table expected, got %s", luaL_typename(L, 3)));
  return 4;
}
static int l_conv2d(lua_State *L) {
  ai_tensor *x, *w, *b;
  int o = conv_args(L, &x, &w, &b);
  ai_conv_opts co = conv_opts(L, o, false);
  return lai_push(L, ai_conv2d(x, w, b, &co));
}
static int l_conv_transpose2d(lua_State *L) {
  ai_tensor *x, *w, *b;
  int o = conv_args(L, &x, &w, &b);
  ai_conv_opts co = conv_opts(L, o, true);
  return lai_push(L, ai_conv_transpose2d(x, w, b, &co));
}

static int l_max_pool2d(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  int k[2], s[2], p[2], d[2];
  checkpair(L, 2, k);
  lai_lastopts(L, 3, LAI_OPTS("stride", "padding", "dilation", "ceil_mode"));
  optpair(L, 3, "stride", 0, s);
  if (!has_opt(L, 3, "stride")) { s[0] = k[0]; s[1] = k[1]; } /* the stride is the kernel size */
  optpair(L, 3, "padding", 0, p);
  optpair(L, 3, "dilation", 1, d);
  return lai_push(L, ai_max_pool2d(x, k, s, p, d, lai_optboolfield(L, 3, "ceil_mode", 0)));
}

static int l_avg_pool2d(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  int k[2], s[2], p[2];
  checkpair(L, 2, k);
  lai_lastopts(L, 3, LAI_OPTS("stride", "padding", "ceil_mode", "count_include_pad"));
  optpair(L, 3, "stride", 0, s);
  if (!has_opt(L, 3, "stride")) { s[0] = k[0]; s[1] = k[1]; }
  optpair(L, 3, "padding", 0, p);
  return lai_push(L, ai_avg_pool2d(x, k, s, p, lai_optboolfield(L, 3, "ceil_mode", 0),
                                   lai_optboolfield(L, 3, "count_include_pad", 1)));
}

static int l_adaptive_avg_pool2d(lua_State *L) {
  lai_checkmax(L, 2);
  ai_tensor *x = lai_check(L, 1);
  int sz[2];
  checkpair(L, 2, sz);
  return lai_push(L, ai_adaptive_avg_pool2d(x, sz[0], sz[1]));
}

/* upsample(x, {size=, scale_factor=, mode=, align_corners=}) */
static int l_upsample(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lai_lastopts(L, 2, LAI_OPTS("size", "scale_factor", "mode", "align_corners"));
  if (x->ndim != 4) return luaL_error(L, "upsample: input must be 4-D (N x C x H x W)");
  const char *mode = lai_optstrfield(L, 2, "mode", "nearest");
  int m = !strcmp(mode, "nearest") ? 0 : !strcmp(mode, "bilinear") ? 1 : -1;
  if (m < 0) return luaL_error(L, "upsample: mode must be 'nearest' or 'bilinear', got '%s'", mode);
  int size[2] = {0, 0};
  optpair(L, 2, "size", 0, size);
  double sh = 0, sw = 0;
  int t = lua_getfield(L, 2, "scale_factor");
  if (t == LUA_TNUMBER) {
    sh = sw = lua_tonumber(L, -1);
  } else if (t == LUA_TTABLE && lua_rawlen(L, -1) == 2) {
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    if (lua_type(L, -2) != LUA_TNUMBER || lua_type(L, -1) != LUA_TNUMBER)
      return luaL_argerror(L, 2, "option 'scale_factor' must be a number or a pair of numbers");
    sh = lua_tonumber(L, -2);
    sw = lua_tonumber(L, -1);
    lua_pop(L, 2);
  } else if (t != LUA_TNIL) {
    return luaL_argerror(L, 2, lua_pushfstring(L, "option 'scale_factor' must be a number or a pair of numbers, got %s",
                                               t == LUA_TTABLE ? "another table" : luaL_typename(L, -1)));
  }
  lua_pop(L, 1);
  bool has_size = has_opt(L, 2, "size");
  if (t != LUA_TNIL && has_size) return luaL_error(L, "upsample: give size or scale_factor, not both");
  if (m == 0 && lai_optboolfield(L, 2, "align_corners", 0))
    return luaL_error(L, "upsample: align_corners applies to mode 'bilinear' only, not 'nearest'");
  if (!has_size) {
    if (!(sh > 0 && sw > 0)) return luaL_error(L, "upsample: give size or a positive scale_factor");
    double oh = floor((double)x->shape[2] * sh), ow = floor((double)x->shape[3] * sw);
    if (!(oh <= (1 << 24) && ow <= (1 << 24)))
      return luaL_error(L, "upsample: scale_factor makes an output of %f x %f (at most 16777216 a side)", oh, ow);
    size[0] = (int)oh;
    size[1] = (int)ow;
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
  lai_lastopts(L, 3, LAI_OPTS("mode", "value"));
  int p[4] = {0, 0, 0, 0}, n = (int)lua_rawlen(L, 2);
  if (n != 2 && n != 4) return luaL_argerror(L, 2, "padding must be {left, right} or {left, right, top, bottom}");
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    lua_Integer v = 0;
    if (!lai_isint(L, -1, &v) || v < INT_MIN || v > INT_MAX)
      return luaL_argerror(L, 2, lua_pushfstring(L, "padding item %d must be an integer, got %s", i + 1,
                                                 lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1)
                                                                                 : luaL_typename(L, -1)));
    p[i] = (int)v;
    lua_pop(L, 1);
  }
  const char *mode = lai_optstrfield(L, 3, "mode", "constant");
  ai_pad_mode m = !strcmp(mode, "constant") ? AI_PAD_CONSTANT : !strcmp(mode, "reflect") ? AI_PAD_REFLECT
                : !strcmp(mode, "replicate") ? AI_PAD_REPLICATE : (ai_pad_mode)-1;
  if ((int)m < 0) return luaL_error(L, "pad: mode must be 'constant', 'reflect' or 'replicate', got '%s'", mode);
  if (m != AI_PAD_CONSTANT && lai_optnumfield(L, 3, "value", 0) != 0)
    return luaL_error(L, "pad: a fill value applies to mode 'constant' only, not '%s'", mode);
  return lai_push(L, ai_pad2d(x, p[0], p[1], p[2], p[3], m, lai_optnumfield(L, 3, "value", 0)));
}

/* batch_norm(x, running_mean, running_var, weight, bias, {training=, momentum=, eps=}) */
static int l_batch_norm(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  lai_lastopts(L, 6, LAI_OPTS("training", "momentum", "eps"));
  bool training = lai_optboolfield(L, 6, "training", 0);
  return lai_push(L, ai_batch_norm(x, opttensor(L, 2), opttensor(L, 3), opttensor(L, 4), opttensor(L, 5), training,
                                   lai_optnumfield(L, 6, "momentum", 0.1), lai_optnumfield(L, 6, "eps", 1e-5)));
}

static int l_group_norm(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  lua_Integer g = lai_checkint(L, 2);
  if (g < 1 || g > INT_MAX) return luaL_argerror(L, 2, "the number of groups must be a positive integer");
  lai_lastopts(L, 5, LAI_OPTS("eps"));
  return lai_push(L, ai_group_norm(x, (int)g, opttensor(L, 3), opttensor(L, 4), lai_optnumfield(L, 5, "eps", 1e-5)));
}

/* instance_norm(x, weight, bias, {eps=}): group norm with one group per channel */
static int l_instance_norm(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  lai_lastopts(L, 4, LAI_OPTS("eps"));
  if (x->ndim < 3) return luaL_error(L, "instance_norm: input must be N x C x ...");
  return lai_push(L, ai_group_norm(x, (int)x->shape[1], opttensor(L, 2), opttensor(L, 3),
                                   lai_optnumfield(L, 4, "eps", 1e-5)));
}

/* layer_norm(x, normalized_shape (number or table), weight, bias, {eps=}) */
static int l_layer_norm(lua_State *L) {
  ai_tensor *x = lai_check(L, 1);
  lai_lastopts(L, 5, LAI_OPTS("eps"));
  bool one = lua_type(L, 2) == LUA_TNUMBER;
  int nd = one ? 1 : (lua_istable(L, 2) ? (int)lua_rawlen(L, 2) : 0);
  if (nd == 0) return luaL_argerror(L, 2, "normalized shape must be a size or a table of sizes");
  for (int i = 0; i < nd; i++) {
    lua_Integer want = 0;
    if (one) want = lai_checkint(L, 2);
    else {
      lua_rawgeti(L, 2, i + 1);
      if (!lai_isint(L, -1, &want))
        return luaL_argerror(L, 2, lua_pushfstring(L, "normalized shape must be a size or a table of sizes (item %d is %s)",
                                                   i + 1, lua_type(L, -1) == LUA_TNUMBER ? "a fraction" : luaL_typename(L, -1)));
      lua_pop(L, 1);
    }
    if (nd > x->ndim || x->shape[x->ndim - nd + i] != want)
      return luaL_error(L, "layer_norm: normalized shape does not match the input's last dimensions");
  }
  return lai_push(L, ai_layer_norm(x, nd, opttensor(L, 3), opttensor(L, 4), lai_optnumfield(L, 5, "eps", 1e-5)));
}

static int softmax(lua_State *L, bool log) {
  lai_checkmax(L, 2);
  ai_tensor *x = lai_check(L, 1);
  /* a 0-dim tensor has no dim to name; 1 or -1 are accepted for it, as PyTorch's 0 or -1 */
  int d = x->ndim || !lua_isnoneornil(L, 2) ? lai_checkdim(L, 2, x->ndim) : 0;
  return lai_push(L, ai_softmax(x, d, log));
}
static int l_softmax(lua_State *L) { return softmax(L, false); }
static int l_log_softmax(lua_State *L) { return softmax(L, true); }

static int l_dropout(lua_State *L) {
  lai_checkmax(L, 3);
  ai_tensor *x = lai_check(L, 1);
  double p = luaL_optnumber(L, 2, 0.5);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TBOOLEAN);
  bool training = lua_isnoneornil(L, 3) ? true : lua_toboolean(L, 3);
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
  lai_checkmax(L, 2);
  ai_tensor *w = lai_check(L, 2); /* before zero_based: an error here must not leak ix */
  ai_tensor *ix = zero_based(L, 1), *r = ai_embedding(ix, w);
  ai_unref(ix);
  return lai_push(L, r);
}

/* The tensor option k of the table at opts (weight=, mask=), or NULL when absent. */
static ai_tensor *optfield_tensor(lua_State *L, int opts, const char *k) {
  if (!lua_istable(L, opts)) return NULL;
  lua_getfield(L, opts, k);
  ai_tensor *t = lua_isnil(L, -1) ? NULL : lai_test(L, -1);
  if (!t && !lua_isnil(L, -1))
    luaL_argerror(L, opts, lua_pushfstring(L, "option '%s' must be a tensor, got %s", k, luaL_typename(L, -1)));
  lua_pop(L, 1); /* the table keeps it alive */
  return t;
}

static int l_attention(lua_State *L) {
  ai_tensor *q = lai_check(L, 1), *k = lai_check(L, 2), *v = lai_check(L, 3);
  if (lai_test(L, 4)) return luaL_argerror(L, 4, "options table expected, got a tensor (pass the mask as {mask = m})");
  lai_lastopts(L, 4, LAI_OPTS("mask"));
  return lai_push(L, ai_attention(q, k, v, optfield_tensor(L, 4, "mask")));
}

/* ---------------------------------------------------------------- losses */

static const char *const REDUCTION[] = {"reduction", NULL};

static int l_mse_loss(lua_State *L) {
  lai_lastopts(L, 3, REDUCTION);
  return lai_push(L, ai_mse_loss(lai_check(L, 1), lai_check(L, 2), optreduction(L, 3)));
}
static int l_l1_loss(lua_State *L) {
  lai_lastopts(L, 3, REDUCTION);
  return lai_push(L, ai_l1_loss(lai_check(L, 1), lai_check(L, 2), optreduction(L, 3)));
}
static int l_smooth_l1_loss(lua_State *L) {
  lai_lastopts(L, 3, LAI_OPTS("beta", "reduction"));
  return lai_push(L, ai_smooth_l1_loss(lai_check(L, 1), lai_check(L, 2), lai_optnumfield(L, 3, "beta", 1),
                                       optreduction(L, 3)));
}
static int l_bce_loss(lua_State *L) {
  lai_lastopts(L, 3, LAI_OPTS("weight", "reduction"));
  return lai_push(L, ai_bce_loss(lai_check(L, 1), lai_check(L, 2), optfield_tensor(L, 3, "weight"), optreduction(L, 3)));
}
static int l_bce_with_logits(lua_State *L) {
  lai_lastopts(L, 3, LAI_OPTS("pos_weight", "reduction"));
  return lai_push(L, ai_bce_with_logits(lai_check(L, 1), lai_check(L, 2), optfield_tensor(L, 3, "pos_weight"),
                                        optreduction(L, 3)));
}
static int class_loss(lua_State *L, bool ce) {
  /* every option is read before zero_based makes its tensor: an option error must not leak it */
  ai_tensor *x = lai_check(L, 1);
  lai_lastopts(L, 3, ce ? LAI_OPTS("weight", "ignore_index", "label_smoothing", "reduction")
                   : LAI_OPTS("weight", "ignore_index", "reduction"));
  /* PyTorch's default -100 matches no class; other values are 1-based classes */
  lua_Integer ignore = lai_optintfield(L, 3, "ignore_index", -100);
  int64_t ig = ignore == -100 ? -101 : ignore == LUA_MININTEGER ? ignore : ignore - 1;
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
  lai_lastopts(L, 3, LAI_OPTS("reduction", "log_target"));
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
