-- tests/test_nn_ops.lua: forward values of the neural-network ops against naive Lua reference
-- implementations on tiny inputs (convolutions, pools, upsampling, padding, normalisation,
-- softmax, dropout, embedding, attention, losses), and their error messages.
-- Run alone: ./aiart-lua tests/run.lua test_nn_ops
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"

local test, near, ok, expect_error = T.test, T.near, T.ok, T.expect_error
local ser, eq, numel, nest = T.show, T.eq, T.numel, T.nest  -- shared helpers (tests/helper.lua)


local errors_at_start = 0
test("(start counting error cases)", function() errors_at_start = T.error_cases or 0 end)

---------------------------------------------------------------------------- helpers



local seed = 0
local function R(shape, lo, hi, dtype)
  seed = seed + 1
  math.randomseed(500 + seed)
  lo, hi = lo or -1, hi or 1
  local v = {}
  for i = 1, numel(shape) do v[i] = lo + (hi - lo) * math.random() end
  return ai.tensor(nest(v, shape), {dtype = dtype or "f64"})
end
local function L(t) return ai.tensor(t, {dtype = "i64"}) end

local function zeros4(N, C, H, W)
  local t = {}
  for n = 1, N do
    t[n] = {}
    for c = 1, C do
      t[n][c] = {}
      for h = 1, H do
        t[n][c][h] = {}
        for w = 1, W do t[n][c][h][w] = 0 end
      end
    end
  end
  return t
end

local function pair(v) if type(v) == "table" then return v[1], v[2] end return v, v end

---------------------------------------------------------------------------- references

local function ref_conv2d(x, w, b, o)
  o = o or {}
  local sh, sw = pair(o.stride or 1)
  local ph, pw = pair(o.padding or 0)
  local dh, dw = pair(o.dilation or 1)
  local G = o.groups or 1
  local N, Cin, H, W = #x, #x[1], #x[1][1], #x[1][1][1]
  local K, Cg, Rk, Sk = #w, #w[1], #w[1][1], #w[1][1][1]
  local P = (H + 2 * ph - dh * (Rk - 1) - 1) // sh + 1
  local Q = (W + 2 * pw - dw * (Sk - 1) - 1) // sw + 1
  local Kg = K // G
  local out = zeros4(N, K, P, Q)
  for n = 1, N do for k = 1, K do
    local g = (k - 1) // Kg
    for p = 1, P do for q = 1, Q do
      local s = b and b[k] or 0
      for c = 1, Cg do
        local ci = g * Cg + c
        for r = 1, Rk do for t = 1, Sk do
          local hi = (p - 1) * sh - ph + (r - 1) * dh + 1
          local wi = (q - 1) * sw - pw + (t - 1) * dw + 1
          if hi >= 1 and hi <= H and wi >= 1 and wi <= W then s = s + x[n][ci][hi][wi] * w[k][c][r][t] end
        end end
      end
      out[n][k][p][q] = s
    end end
  end end
  assert(Cin == Cg * G)
  return out
end

local function ref_conv_transpose2d(x, w, b, o)
  o = o or {}
  local sh, sw = pair(o.stride or 1)
  local ph, pw = pair(o.padding or 0)
  local dh, dw = pair(o.dilation or 1)
  local oph, opw = pair(o.output_padding or 0)
  local G = o.groups or 1
  local N, Cin, H, W = #x, #x[1], #x[1][1], #x[1][1][1]
  local Cog, Rk, Sk = #w[1], #w[1][1], #w[1][1][1]
  local Cout = Cog * G
  local Cig = Cin // G
  local P = (H - 1) * sh - 2 * ph + dh * (Rk - 1) + oph + 1
  local Q = (W - 1) * sw - 2 * pw + dw * (Sk - 1) + opw + 1
  local out = zeros4(N, Cout, P, Q)
  for n = 1, N do for c = 1, Cin do
    local g = (c - 1) // Cig
    for i = 1, H do for j = 1, W do
      for oc = 1, Cog do for r = 1, Rk do for t = 1, Sk do
        local p = (i - 1) * sh - ph + (r - 1) * dh + 1
        local q = (j - 1) * sw - pw + (t - 1) * dw + 1
        if p >= 1 and p <= P and q >= 1 and q <= Q then
          local k = g * Cog + oc
          out[n][k][p][q] = out[n][k][p][q] + x[n][c][i][j] * w[c][oc][r][t]
        end
      end end end
    end end
  end end
  if b then
    for n = 1, N do for k = 1, Cout do for p = 1, P do for q = 1, Q do out[n][k][p][q] = out[n][k][p][q] + b[k] end end end end
  end
  return out
end

local function pool_out(H, k, s, p, d, ceil_mode)
  local num = H + 2 * p - d * (k - 1) - 1
  local o
  if ceil_mode then o = -((-num) // s) + 1 else o = num // s + 1 end
  if ceil_mode and (o - 1) * s >= H + p then o = o - 1 end
  return o
end

local function ref_max_pool2d(x, k, o)
  o = o or {}
  local kh, kw = pair(k)
  local sh, sw = pair(o.stride or k)
  local ph, pw = pair(o.padding or 0)
  local dh, dw = pair(o.dilation or 1)
  local N, C, H, W = #x, #x[1], #x[1][1], #x[1][1][1]
  local P, Q = pool_out(H, kh, sh, ph, dh, o.ceil_mode), pool_out(W, kw, sw, pw, dw, o.ceil_mode)
  local out, idx = zeros4(N, C, P, Q), zeros4(N, C, P, Q)
  for n = 1, N do for c = 1, C do for p = 1, P do for q = 1, Q do
    local m, mi = -math.huge, 0
    for r = 1, kh do for t = 1, kw do
      local hi = (p - 1) * sh - ph + (r - 1) * dh + 1
      local wi = (q - 1) * sw - pw + (t - 1) * dw + 1
      if hi >= 1 and hi <= H and wi >= 1 and wi <= W and x[n][c][hi][wi] > m then
        m, mi = x[n][c][hi][wi], (hi - 1) * W + wi
      end
    end end
    out[n][c][p][q], idx[n][c][p][q] = m, mi
  end end end end
  return out, idx
end

local function ref_avg_pool2d(x, k, o)
  o = o or {}
  local kh, kw = pair(k)
  local sh, sw = pair(o.stride or k)
  local ph, pw = pair(o.padding or 0)
  local cip = o.count_include_pad ~= false
  local N, C, H, W = #x, #x[1], #x[1][1], #x[1][1][1]
  local P, Q = pool_out(H, kh, sh, ph, 1, o.ceil_mode), pool_out(W, kw, sw, pw, 1, o.ceil_mode)
  local out = zeros4(N, C, P, Q)
  for n = 1, N do for c = 1, C do for p = 1, P do for q = 1, Q do
    local h0, w0 = (p - 1) * sh - ph, (q - 1) * sw - pw
    local h1, w1 = math.min(h0 + kh, H + ph), math.min(w0 + kw, W + pw)
    local pool = (h1 - h0) * (w1 - w0)
    h0, w0 = math.max(h0, 0), math.max(w0, 0)
    h1, w1 = math.min(h1, H), math.min(w1, W)
    local s = 0
    for hi = h0 + 1, h1 do for wi = w0 + 1, w1 do s = s + x[n][c][hi][wi] end end
    out[n][c][p][q] = s / (cip and pool or (h1 - h0) * (w1 - w0))
  end end end end
  return out
end

local function ref_adaptive_avg(x, P, Q)
  local N, C, H, W = #x, #x[1], #x[1][1], #x[1][1][1]
  local out = zeros4(N, C, P, Q)
  for n = 1, N do for c = 1, C do for p = 0, P - 1 do for q = 0, Q - 1 do
    local h0, h1 = (p * H) // P, -((-(p + 1) * H) // P)
    local w0, w1 = (q * W) // Q, -((-(q + 1) * W) // Q)
    local s = 0
    for hi = h0 + 1, h1 do for wi = w0 + 1, w1 do s = s + x[n][c][hi][wi] end end
    out[n][c][p + 1][q + 1] = s / ((h1 - h0) * (w1 - w0))
  end end end end
  return out
end

local function nearest_src(i, inn, out, scale) -- 0-based, PyTorch's rule
  local s = scale and 1 / scale or inn / out
  return math.min(math.floor(i * s), inn - 1)
end

local function ref_upsample_nearest(x, P, Q, sch, scw)
  local N, C, H, W = #x, #x[1], #x[1][1], #x[1][1][1]
  local out = zeros4(N, C, P, Q)
  for n = 1, N do for c = 1, C do for p = 0, P - 1 do for q = 0, Q - 1 do
    out[n][c][p + 1][q + 1] = x[n][c][nearest_src(p, H, P, sch) + 1][nearest_src(q, W, Q, scw) + 1]
  end end end end
  return out
end

local function lin_src(i, inn, out, ac, scale)
  local src
  if ac then
    src = out > 1 and i * (inn - 1) / (out - 1) or 0
  else
    local s = scale and 1 / scale or inn / out
    src = math.max((i + 0.5) * s - 0.5, 0)
  end
  local i0 = math.min(math.floor(src), inn - 1)
  local i1 = i0 < inn - 1 and i0 + 1 or i0
  local l = math.min(math.max(src - i0, 0), 1)
  return i0 + 1, i1 + 1, 1 - l, l
end

local function ref_upsample_bilinear(x, P, Q, ac, sch, scw)
  local N, C, H, W = #x, #x[1], #x[1][1], #x[1][1][1]
  local out = zeros4(N, C, P, Q)
  for n = 1, N do for c = 1, C do for p = 0, P - 1 do for q = 0, Q - 1 do
    local h0, h1, a0, a1 = lin_src(p, H, P, ac, sch)
    local w0, w1, b0, b1 = lin_src(q, W, Q, ac, scw)
    local X = x[n][c]
    out[n][c][p + 1][q + 1] = a0 * (b0 * X[h0][w0] + b1 * X[h0][w1]) + a1 * (b0 * X[h1][w0] + b1 * X[h1][w1])
  end end end end
  return out
end

local function ref_pad(x, l, r, t, b, mode, value)
  local N, C, H, W = #x, #x[1], #x[1][1], #x[1][1][1]
  local out = zeros4(N, C, H + t + b, W + l + r)
  local function src(i, inn, lo)
    local k = i - lo
    if mode == "reflect" then
      if k < 0 then k = -k end
      if k >= inn then k = 2 * (inn - 1) - k end
    elseif mode == "replicate" then
      k = math.min(math.max(k, 0), inn - 1)
    elseif k < 0 or k >= inn then
      return nil
    end
    return k + 1
  end
  for n = 1, N do for c = 1, C do for p = 0, H + t + b - 1 do for q = 0, W + l + r - 1 do
    local hi, wi = src(p, H, t), src(q, W, l)
    out[n][c][p + 1][q + 1] = (hi and wi) and x[n][c][hi][wi] or (value or 0)
  end end end end
  return out
end

local function shape_of(nested)
  local s = {}
  local v = nested
  while type(v) == "table" do s[#s + 1] = #v; v = v[1] end
  return s
end

---------------------------------------------------------------------------- linear, convolutions

test("linear against x W^T + b (with and without bias, batched, f32)", function()
  local x, w, b = R({3, 4}), R({2, 4}), R({2})
  local xv, wv, bv = x:tolist(), w:tolist(), b:tolist()
  local want, want_nb = {}, {}
  for i = 1, 3 do
    want[i], want_nb[i] = {}, {}
    for j = 1, 2 do
      local s = 0
      for k = 1, 4 do s = s + xv[i][k] * wv[j][k] end
      want_nb[i][j], want[i][j] = s, s + bv[j]
    end
  end
  near(ai.linear(x, w, b), want, 1e-12)
  near(ai.linear(x, w), want_nb, 1e-12)
  near(ai.linear(x, w, nil), want_nb, 1e-12)
  local y3 = ai.linear(x:view(1, 3, 4):expand(2, 3, 4), w, b)
  eq(y3.shape, {2, 3, 2})
  near(y3[2], want, 1e-12)
  near(ai.linear(x:float(), w:float(), b:float()), want, 1e-5)
  near(ai.linear(x[2], w, b), want[2], 1e-12, "1-D input")
end)

local conv_cases = {
  {x = {1, 1, 4, 4}, w = {1, 1, 3, 3}, o = {}},
  {x = {2, 3, 5, 5}, w = {4, 3, 3, 3}, o = {}, bias = true},
  {x = {1, 2, 5, 5}, w = {3, 2, 3, 3}, o = {stride = 2}},
  {x = {1, 2, 4, 5}, w = {2, 2, 3, 3}, o = {padding = 1}, bias = true},
  {x = {1, 1, 6, 6}, w = {2, 1, 2, 2}, o = {dilation = 2}},
  {x = {1, 1, 7, 6}, w = {1, 1, 3, 2}, o = {stride = {2, 1}, padding = {1, 0}, dilation = {1, 2}}},
  {x = {2, 4, 4, 4}, w = {4, 2, 2, 2}, o = {groups = 2}, bias = true},
  {x = {1, 3, 5, 5}, w = {6, 1, 3, 3}, o = {groups = 3, padding = 1, stride = 2}},
  {x = {1, 4, 3, 3}, w = {2, 4, 1, 1}, o = {}},
  {x = {1, 2, 5, 4}, w = {4, 1, 2, 3}, o = {groups = 2, stride = 2, padding = {1, 2}, dilation = 2}, bias = true},
}

test("conv2d against a naive loop: stride, padding, dilation, groups, bias (f64 and f32)", function()
  for k, c in ipairs(conv_cases) do
    local x, w = R(c.x), R(c.w)
    local b = c.bias and R({c.w[1]}) or nil
    local want = ref_conv2d(x:tolist(), w:tolist(), b and b:tolist(), c.o)
    local y = b and ai.conv2d(x, w, b, c.o) or ai.conv2d(x, w, c.o)
    eq(y.shape, shape_of(want), "case " .. k .. " shape")
    near(y, want, 1e-12, "case " .. k)
    local yf = ai.conv2d(x:float(), w:float(), b and b:float(), c.o)
    eq(yf.dtype, "f32")
    near(yf, want, 1e-5, "case " .. k .. " f32")
  end
  -- non-contiguous input
  local x = R({1, 2, 4, 5})
  local xt = x:transpose(3, 4) -- 1x2x5x4
  local w = R({1, 2, 2, 2})
  near(ai.conv2d(xt, w), ref_conv2d(xt:tolist(), w:tolist()), 1e-12, "transposed input")
end)

local convt_cases = {
  {x = {1, 1, 2, 2}, w = {1, 1, 2, 2}, o = {}},
  {x = {1, 2, 3, 3}, w = {2, 3, 3, 3}, o = {stride = 2}, bias = true},
  {x = {2, 1, 3, 2}, w = {1, 2, 3, 3}, o = {stride = 2, padding = 1, output_padding = 1}},
  {x = {1, 4, 2, 3}, w = {4, 1, 2, 2}, o = {groups = 2, stride = {2, 1}}, bias = true},
  {x = {1, 2, 3, 3}, w = {2, 2, 2, 2}, o = {dilation = 2, padding = 1}},
  {x = {1, 2, 2, 2}, w = {2, 1, 3, 3}, o = {groups = 2, stride = 3, output_padding = {2, 1}, padding = {1, 0}}},
}

test("conv_transpose2d against a naive scatter loop: stride, padding, output_padding, groups", function()
  for k, c in ipairs(convt_cases) do
    local x, w = R(c.x), R(c.w)
    local b = c.bias and R({c.w[2] * (c.o.groups or 1)}) or nil
    local want = ref_conv_transpose2d(x:tolist(), w:tolist(), b and b:tolist(), c.o)
    local y = b and ai.conv_transpose2d(x, w, b, c.o) or ai.conv_transpose2d(x, w, c.o)
    eq(y.shape, shape_of(want), "case " .. k .. " shape")
    near(y, want, 1e-12, "case " .. k)
    near(ai.conv_transpose2d(x:float(), w:float(), b and b:float(), c.o), want, 1e-5, "case " .. k .. " f32")
  end
end)

test("conv_transpose2d is the adjoint of conv2d: <conv(x), y> = <x, conv_t(y)>", function()
  local x, w = R({1, 2, 5, 5}), R({3, 2, 3, 3})
  local o = {stride = 2, padding = 1}
  local y = ai.conv2d(x, w, o)
  local g = R(y.shape)
  local lhs = (y * g):sum():item()
  local xt = ai.conv_transpose2d(g, w, o)
  eq(xt.shape, {1, 2, 5, 5})
  near((x * xt):sum():item(), lhs, 1e-10)
end)

---------------------------------------------------------------------------- pooling

local pool_cases = {
  {{1, 1, 4, 4}, 2, {}},
  {{1, 2, 5, 5}, 2, {}},
  {{1, 2, 5, 5}, 3, {stride = 2, padding = 1}},
  {{1, 1, 5, 5}, 2, {ceil_mode = true}},
  {{2, 1, 6, 5}, 3, {stride = 2, ceil_mode = true, padding = 1}},
  {{1, 1, 6, 6}, 2, {dilation = 2, stride = 1}},
  {{1, 1, 5, 7}, {2, 3}, {stride = {1, 2}, padding = {1, 1}}},
}

test("max_pool2d against a naive loop (stride, padding, dilation, ceil_mode)", function()
  for k, c in ipairs(pool_cases) do
    local x = R(c[1])
    local want = ref_max_pool2d(x:tolist(), c[2], c[3])
    local y = ai.max_pool2d(x, c[2], c[3])
    eq(y.shape, shape_of(want), "case " .. k .. " shape")
    near(y, want, 0, "case " .. k)
    near(ai.max_pool2d(x:float(), c[2], c[3]), want, 1e-6, "case " .. k .. " f32")
  end
  near(ai.max_pool2d(ai.tensor({{{{1, -5}, {-7, -2}}}}), 2, {padding = 1, stride = 2}),
       {{{{1, -5}, {-7, -2}}}}, 0, "padding never wins")
end)

test("avg_pool2d against a naive loop (padding, ceil_mode, count_include_pad)", function()
  for k, c in ipairs(pool_cases) do
    if not c[3].dilation then
      for _, cip in ipairs{true, false} do
        local o = {}
        for kk, vv in pairs(c[3]) do o[kk] = vv end
        o.count_include_pad = cip
        local x = R(c[1])
        local want = ref_avg_pool2d(x:tolist(), c[2], o)
        local y = ai.avg_pool2d(x, c[2], o)
        eq(y.shape, shape_of(want), "case " .. k .. " shape")
        near(y, want, 1e-12, "case " .. k .. " count_include_pad=" .. tostring(cip))
      end
    end
  end
  local ones = ai.ones(1, 1, 3, 3, {dtype = "f64"})
  near(ai.avg_pool2d(ones, 2, {stride = 2, padding = 1}), {{{{0.25, 0.5}, {0.5, 1}}}}, 1e-12, "padding counts as zero")
  near(ai.avg_pool2d(ones, 2, {stride = 2, padding = 1, count_include_pad = false}), {{{{1, 1}, {1, 1}}}}, 1e-12)
end)

test("adaptive_avg_pool2d against a naive loop (divisible and not)", function()
  for _, c in ipairs{{{1, 2, 4, 4}, {2, 2}}, {{1, 1, 5, 5}, {3, 3}}, {{2, 1, 5, 3}, {2, 4}}, {{1, 2, 7, 6}, {1, 1}}, {{1, 1, 3, 3}, {5, 4}}} do
    local x = R(c[1])
    local want = ref_adaptive_avg(x:tolist(), c[2][1], c[2][2])
    local y = ai.adaptive_avg_pool2d(x, c[2])
    eq(y.shape, shape_of(want))
    near(y, want, 1e-12, "sizes " .. ser(c))
  end
  near(ai.adaptive_avg_pool2d(ai.arange(16):double():view(1, 1, 4, 4), 2), {{{{2.5, 4.5}, {10.5, 12.5}}}}, 1e-12)
  eq(ai.adaptive_avg_pool2d(R({1, 1, 4, 4}), 3).shape, {1, 1, 3, 3}, "a single number is both sizes")
end)

---------------------------------------------------------------------------- upsample, pad

test("upsample nearest against PyTorch's index rule (size and scale_factor)", function()
  local x = R({1, 2, 3, 4})
  local xv = x:tolist()
  near(ai.upsample(x, {scale_factor = 2}), ref_upsample_nearest(xv, 6, 8), 0, "x2")
  near(ai.upsample(x, {size = {5, 7}}), ref_upsample_nearest(xv, 5, 7), 0, "size 5x7")
  near(ai.upsample(x, {size = {2, 3}}), ref_upsample_nearest(xv, 2, 3), 0, "down")
  near(ai.upsample(x, {scale_factor = 1.5}), ref_upsample_nearest(xv, 4, 6, 1.5, 1.5), 0, "x1.5")
  near(ai.interpolate(x, {scale_factor = {2, 3}}), ref_upsample_nearest(xv, 6, 12, 2, 3), 0, "per-axis scales")
  near(ai.upsample(x, {size = 6}), ref_upsample_nearest(xv, 6, 6), 0, "one size for both")
  eq(ai.upsample(ai.tensor{{{{1, 2}, {3, 4}}}}, {scale_factor = 2}):tolist(),
     {{{{1, 1, 2, 2}, {1, 1, 2, 2}, {3, 3, 4, 4}, {3, 3, 4, 4}}}})
end)

test("upsample bilinear against a naive interpolation (align_corners true and false)", function()
  local x = R({1, 2, 3, 4})
  local xv = x:tolist()
  for _, ac in ipairs{false, true} do
    near(ai.upsample(x, {size = {6, 8}, mode = "bilinear", align_corners = ac}), ref_upsample_bilinear(xv, 6, 8, ac), 1e-12,
         "x2 ac=" .. tostring(ac))
    near(ai.upsample(x, {size = {5, 3}, mode = "bilinear", align_corners = ac}), ref_upsample_bilinear(xv, 5, 3, ac), 1e-12,
         "5x3 ac=" .. tostring(ac))
    near(ai.upsample(x, {size = {1, 1}, mode = "bilinear", align_corners = ac}), ref_upsample_bilinear(xv, 1, 1, ac), 1e-12,
         "1x1 ac=" .. tostring(ac))
  end
  near(ai.upsample(x, {scale_factor = 1.5, mode = "bilinear"}), ref_upsample_bilinear(xv, 4, 6, false, 1.5, 1.5), 1e-12, "x1.5")
  near(ai.upsample(x:float(), {size = {6, 8}, mode = "bilinear"}), ref_upsample_bilinear(xv, 6, 8, false), 1e-5, "f32")
  near(ai.upsample(ai.tensor({{{{0, 1}}}}, {dtype = "f64"}), {size = {1, 3}, mode = "bilinear", align_corners = true}),
       {{{{0, 0.5, 1}}}}, 1e-12)
  near(ai.upsample(ai.tensor({{{{0, 1}}}}, {dtype = "f64"}), {size = {1, 4}, mode = "bilinear"}),
       {{{{0, 0.25, 0.75, 1}}}}, 1e-12)
end)

test("pad constant, reflect, replicate against index maps", function()
  local x = R({1, 2, 3, 4})
  local xv = x:tolist()
  near(ai.pad(x, {1, 2, 0, 1}), ref_pad(xv, 1, 2, 0, 1, "constant", 0), 0, "constant")
  near(ai.pad(x, {2, 0, 1, 1}, {value = -3}), ref_pad(xv, 2, 0, 1, 1, "constant", -3), 1e-15, "constant value")
  near(ai.pad(x, {3, 2, 2, 1}, {mode = "reflect"}), ref_pad(xv, 3, 2, 2, 1, "reflect"), 0, "reflect")
  near(ai.pad(x, {4, 5, 3, 2}, {mode = "replicate"}), ref_pad(xv, 4, 5, 3, 2, "replicate"), 0, "replicate")
  eq(ai.pad(ai.tensor{{1, 2, 3}}, {1, 1}, {mode = "constant"}):tolist(), {{0, 1, 2, 3, 0}}, "2 entries pad the last dim")
  eq(ai.pad(ai.tensor({{{{1, 2, 3}}}}, {dtype = "f64"}), {2, 2, 0, 0}, {mode = "reflect"}):tolist(), {{{{3, 2, 1, 2, 3, 2, 1}}}})
  eq(ai.pad(ai.tensor({{{{1, 2}}}}, {dtype = "f64"}), {1, 2, 1, 0}, {mode = "replicate"}):tolist(),
     {{{{1, 1, 2, 2, 2}, {1, 1, 2, 2, 2}}}})
  eq(ai.pad(ai.tensor({1, 2}, {dtype = "i64"}):view(1, 2), {1, 0}):tolist(), {{0, 1, 2}}, "integer tensors pad too")
end)

test("pad with a non-zero constant keeps the input values exactly", function()
  local x = ai.tensor({{{{1e-6, 0.5, 3.25}}}})
  local y = ai.pad(x, {1, 1, 0, 0}, {value = 1e4})
  eq(y:tolist(), {{{{1e4, x[{1, 1, 1, 1}]:item(), 0.5, 3.25, 1e4}}}})
  local d = R({1, 1, 2, 3})
  near(ai.pad(d, {1, 0, 1, 0}, {value = 7}), ref_pad(d:tolist(), 1, 0, 1, 0, "constant", 7), 0)
end)

---------------------------------------------------------------------------- normalisation

local function channel_stats(xv, c) -- values of channel c of an N x C x ... nested table
  local vals = {}
  local function rec(v) if type(v) == "table" then for _, e in ipairs(v) do rec(e) end else vals[#vals + 1] = v end end
  for n = 1, #xv do rec(xv[n][c]) end
  local m = 0
  for _, v in ipairs(vals) do m = m + v end
  m = m / #vals
  local ss = 0
  for _, v in ipairs(vals) do ss = ss + (v - m) ^ 2 end
  return m, ss / #vals, ss / (#vals - 1), #vals
end

local function map_channels(xv, f) -- f(value, c) over an N x C x ... nested table
  local function rec(v, c) if type(v) == "table" then local o = {} for i, e in ipairs(v) do o[i] = rec(e, c) end return o end return f(v, c) end
  local out = {}
  for n = 1, #xv do
    out[n] = {}
    for c = 1, #xv[n] do out[n][c] = rec(xv[n][c], c) end
  end
  return out
end

test("batch_norm training: batch statistics, affine, running stats with momentum and unbiased var", function()
  local x = R({3, 2, 2, 2}, -2, 3)
  local w, b = R({2}), R({2})
  local rm = ai.tensor({0.5, -0.5}, {dtype = "f64"})
  local rv = ai.tensor({2, 0.5}, {dtype = "f64"})
  local xv, wv, bv = x:tolist(), w:tolist(), b:tolist()
  local stats = {}
  for c = 1, 2 do stats[c] = {channel_stats(xv, c)} end
  local eps = 1e-5
  local want = map_channels(xv, function(v, c) return (v - stats[c][1]) / math.sqrt(stats[c][2] + eps) * wv[c] + bv[c] end)
  local y = ai.batch_norm(x, rm, rv, w, b, {training = true, momentum = 0.3})
  near(y, want, 1e-10)
  near(rm:tolist(), {0.7 * 0.5 + 0.3 * stats[1][1], 0.7 * -0.5 + 0.3 * stats[2][1]}, 1e-12, "running mean")
  near(rv:tolist(), {0.7 * 2 + 0.3 * stats[1][3], 0.7 * 0.5 + 0.3 * stats[2][3]}, 1e-12, "running var is unbiased")
  -- default momentum 0.1, no affine
  local rm2, rv2 = ai.zeros({2}, {dtype = "f64"}), ai.ones({2}, {dtype = "f64"})
  local y2 = ai.batch_norm(x, rm2, rv2, nil, nil, {training = true, eps = 1e-3})
  near(y2, map_channels(xv, function(v, c) return (v - stats[c][1]) / math.sqrt(stats[c][2] + 1e-3) end), 1e-10)
  near(rm2:tolist(), {0.1 * stats[1][1], 0.1 * stats[2][1]}, 1e-12)
  near(rv2:tolist(), {0.9 + 0.1 * stats[1][3], 0.9 + 0.1 * stats[2][3]}, 1e-12)
  -- 2-D input (N x C)
  local x2 = R({5, 3})
  local x2v = x2:tolist()
  local y3 = ai.batch_norm(x2, nil, nil, nil, nil, {training = true})
  for c = 1, 3 do
    local m, v = channel_stats(x2v, c)
    for n = 1, 5 do near(y3[{n, c}]:item(), (x2v[n][c] - m) / math.sqrt(v + 1e-5), 1e-10) end
  end
  -- f32
  near(ai.batch_norm(x:float(), nil, nil, w:float(), b:float(), {training = true}), want, 1e-4, "f32")
end)

test("batch_norm eval uses the running statistics and leaves them alone", function()
  local x = R({2, 3, 2, 2})
  local rm = ai.tensor({0.1, -0.2, 0.3}, {dtype = "f64"})
  local rv = ai.tensor({0.5, 1.5, 2}, {dtype = "f64"})
  local w, b = R({3}), R({3})
  local xv, rmv, rvv, wv, bv = x:tolist(), rm:tolist(), rv:tolist(), w:tolist(), b:tolist()
  local want = map_channels(xv, function(v, c) return (v - rmv[c]) / math.sqrt(rvv[c] + 1e-5) * wv[c] + bv[c] end)
  near(ai.batch_norm(x, rm, rv, w, b, {training = false}), want, 1e-10, "with weight and bias")
  near(ai.batch_norm(x, rm, rv, w, b), want, 1e-10, "training defaults to false")
  near(ai.batch_norm(x, rm, rv), map_channels(xv, function(v, c) return (v - rmv[c]) / math.sqrt(rvv[c] + 1e-5) end), 1e-10)
  eq(rm:tolist(), {0.1, -0.2, 0.3})
  eq(rv:tolist(), {0.5, 1.5, 2})
end)

test("group_norm and instance_norm against per-group statistics", function()
  local x = R({2, 4, 3}, -2, 2)
  local w, b = R({4}), R({4})
  local xv, wv, bv = x:tolist(), w:tolist(), b:tolist()
  local function ref(G, eps, aff)
    local out = {}
    for n = 1, 2 do
      out[n] = {}
      local Cg = 4 // G
      for g = 0, G - 1 do
        local vals = {}
        for c = g * Cg + 1, (g + 1) * Cg do for _, v in ipairs(xv[n][c]) do vals[#vals + 1] = v end end
        local m, ss = 0, 0
        for _, v in ipairs(vals) do m = m + v end
        m = m / #vals
        for _, v in ipairs(vals) do ss = ss + (v - m) ^ 2 end
        local rs = 1 / math.sqrt(ss / #vals + eps)
        for c = g * Cg + 1, (g + 1) * Cg do
          out[n][c] = {}
          for i, v in ipairs(xv[n][c]) do out[n][c][i] = aff and (v - m) * rs * wv[c] + bv[c] or (v - m) * rs end
        end
      end
    end
    return out
  end
  near(ai.group_norm(x, 2, w, b), ref(2, 1e-5, true), 1e-10, "2 groups")
  near(ai.group_norm(x, 1), ref(1, 1e-5, false), 1e-10, "1 group")
  near(ai.group_norm(x, 4, w, b, {eps = 1e-2}), ref(4, 1e-2, true), 1e-10, "4 groups, eps")
  near(ai.instance_norm(x, w, b), ref(4, 1e-5, true), 1e-10, "instance_norm")
  near(ai.instance_norm(x), ref(4, 1e-5, false), 1e-10, "instance_norm no affine")
  near(ai.group_norm(x:float(), 2, w:float(), b:float()), ref(2, 1e-5, true), 1e-4, "f32")
  local x4 = R({1, 2, 2, 2})
  local g4 = ai.group_norm(x4, 1):tolist()
  local vals = {}
  for _, v in ipairs(x4:view(-1):tolist()) do vals[#vals + 1] = v end
  local m = 0
  for _, v in ipairs(vals) do m = m + v end
  m = m / 8
  local ss = 0
  for _, v in ipairs(vals) do ss = ss + (v - m) ^ 2 end
  near(g4[1][2][2][1], (x4[{1, 2, 2, 1}]:item() - m) / math.sqrt(ss / 8 + 1e-5), 1e-10, "4-D input")
end)

test("layer_norm over the last one and two dims", function()
  local x = R({2, 3, 4}, -2, 2)
  local xv = x:tolist()
  local w1, b1 = R({4}), R({4})
  local w1v, b1v = w1:tolist(), b1:tolist()
  local want = {}
  for i = 1, 2 do
    want[i] = {}
    for j = 1, 3 do
      local row = xv[i][j]
      local m, ss = 0, 0
      for _, v in ipairs(row) do m = m + v end
      m = m / 4
      for _, v in ipairs(row) do ss = ss + (v - m) ^ 2 end
      want[i][j] = {}
      for k, v in ipairs(row) do want[i][j][k] = (v - m) / math.sqrt(ss / 4 + 1e-5) * w1v[k] + b1v[k] end
    end
  end
  near(ai.layer_norm(x, 4, w1, b1), want, 1e-10, "last dim")
  near(ai.layer_norm(x, {4}, w1, b1), want, 1e-10, "table shape")
  local w2, b2 = R({3, 4}), R({3, 4})
  local w2v, b2v = w2:tolist(), b2:tolist()
  local want2 = {}
  for i = 1, 2 do
    local m, ss, n = 0, 0, 12
    for j = 1, 3 do for k = 1, 4 do m = m + xv[i][j][k] end end
    m = m / n
    for j = 1, 3 do for k = 1, 4 do ss = ss + (xv[i][j][k] - m) ^ 2 end end
    want2[i] = {}
    for j = 1, 3 do
      want2[i][j] = {}
      for k = 1, 4 do want2[i][j][k] = (xv[i][j][k] - m) / math.sqrt(ss / n + 1e-3) * w2v[j][k] + b2v[j][k] end
    end
  end
  near(ai.layer_norm(x, {3, 4}, w2, b2, {eps = 1e-3}), want2, 1e-10, "last two dims")
  local nw = ai.layer_norm(x, 4):tolist()
  local row = xv[2][3]
  local m = (row[1] + row[2] + row[3] + row[4]) / 4
  local v = 0
  for _, e in ipairs(row) do v = v + (e - m) ^ 2 end
  near(nw[2][3][1], (row[1] - m) / math.sqrt(v / 4 + 1e-5), 1e-10, "no affine")
end)

---------------------------------------------------------------------------- softmax

test("softmax and log_softmax along each dim", function()
  local x = R({2, 3, 4}, -3, 3)
  local xv = x:view(-1):tolist()
  local sh = {2, 3, 4}
  for d = 1, 3 do
    local y = ai.softmax(x, d):view(-1):tolist()
    local ly = ai.log_softmax(x, d):view(-1):tolist()
    for i = 1, 24 do
      local idx = {(i - 1) // 12 + 1, ((i - 1) // 4) % 3 + 1, (i - 1) % 4 + 1}
      local m, s = -math.huge, 0
      local function at(k) local j = {idx[1], idx[2], idx[3]}; j[d] = k; return xv[(j[1] - 1) * 12 + (j[2] - 1) * 4 + j[3]] end
      for k = 1, sh[d] do m = math.max(m, at(k)) end
      for k = 1, sh[d] do s = s + math.exp(at(k) - m) end
      near(y[i], math.exp(xv[i] - m) / s, 1e-12, "softmax dim " .. d)
      near(ly[i], xv[i] - m - math.log(s), 1e-12, "log_softmax dim " .. d)
    end
    near(ai.softmax(x, d):sum(d), ai.ones_like(x:sum(d)), 1e-12, "rows sum to 1")
  end
  near(x:softmax(-1), ai.softmax(x, 3), 0, "negative dim, method")
  local big = ai.tensor({1000, 1000, -1000})
  near(big:softmax(1):tolist(), {0.5, 0.5, 0}, 1e-6, "stable for large inputs")
  near(big:log_softmax(1):tolist(), {-math.log(2), -math.log(2), -2000 - math.log(2)}, 1e-3)
  near(ai.softmax(x:float(), 2), ai.softmax(x, 2), 1e-6, "f32")
end)

---------------------------------------------------------------------------- dropout, embedding, attention

test("dropout zeroes with probability p and scales the rest by 1/(1-p)", function()
  ai.manual_seed(8)
  local x = ai.ones(100000, {dtype = "f64"})
  local y = ai.dropout(x, 0.3)
  local zeros = y:eq(0):double():mean():item()
  near(zeros, 0.3, 0.01)
  local kept = y:masked_select(y:ne(0))
  near(kept:min():item(), 1 / 0.7, 1e-12)
  near(kept:max():item(), 1 / 0.7, 1e-12)
  near(y:mean():item(), 1, 0.02)
  local same = ai.dropout(x, 0.3, false)
  eq(same:sum():item(), 100000.0, "not training: identity")
  eq(ai.dropout(x, 0):sum():item(), 100000.0, "p = 0")
  eq(ai.dropout(x, 1):sum():item(), 0.0, "p = 1")
  ai.manual_seed(4)
  local a = ai.dropout(ai.ones(50), 0.5):tolist()
  ai.manual_seed(4)
  eq(ai.dropout(ai.ones(50), 0.5):tolist(), a, "reproducible with a seed")
  eq(ai.dropout(ai.ones(10)).shape, {10}, "default p = 0.5")
end)

test("embedding picks rows by 1-based index, any index shape", function()
  local w = R({5, 3})
  local wv = w:tolist()
  local e = ai.embedding(L{{1, 5}, {3, 3}}, w)
  eq(e.shape, {2, 2, 3})
  near(e[1][2], wv[5], 0)
  near(e[2][1], wv[3], 0)
  near(ai.embedding(L{2}, w), {wv[2]}, 0)
  near(ai.embedding(L(4), w), wv[4], 0, "0-dim index")
end)

test("scaled_dot_product_attention against softmax(QK^T/sqrt(d))V, with masks", function()
  local q, k, v = R({2, 3, 4}), R({2, 5, 4}), R({2, 5, 2})
  local qv, kv, vv = q:tolist(), k:tolist(), v:tolist()
  local function ref(mask, fmask)
    local out = {}
    for bb = 1, 2 do
      out[bb] = {}
      for i = 1, 3 do
        local sc, m = {}, -math.huge
        for j = 1, 5 do
          local s = 0
          for d = 1, 4 do s = s + qv[bb][i][d] * kv[bb][j][d] end
          s = s / 2
          if fmask then s = s + fmask[i][j] end
          if mask and not mask[i][j] then s = -math.huge end
          sc[j] = s
          m = math.max(m, s)
        end
        local z = 0
        for j = 1, 5 do sc[j] = math.exp(sc[j] - m); z = z + sc[j] end
        out[bb][i] = {}
        for e = 1, 2 do
          local acc = 0
          for j = 1, 5 do acc = acc + sc[j] / z * vv[bb][j][e] end
          out[bb][i][e] = acc
        end
      end
    end
    return out
  end
  near(ai.scaled_dot_product_attention(q, k, v), ref(), 1e-12)
  local mb = {{true, false, true, true, false}, {false, false, false, false, true}, {true, true, true, true, true}}
  near(ai.scaled_dot_product_attention(q, k, v, {mask = ai.tensor(mb)}), ref(mb), 1e-12, "boolean mask: true = attend")
  local fm = R({3, 5})
  near(ai.scaled_dot_product_attention(q, k, v, {mask = fm}), ref(nil, fm:tolist()), 1e-12, "float mask is added")
end)

---------------------------------------------------------------------------- losses

local function mean(t) local s = 0 for _, v in ipairs(t) do s = s + v end return s / #t end
local function sum(t) local s = 0 for _, v in ipairs(t) do s = s + v end return s end
local function fl(x) return x:reshape(-1):tolist() end

local function check_reductions(name, call, per, msg)
  near(call("none"), per, 1e-10, (msg or name) .. " none")
  near(call("sum"):item(), sum(fl(per)), 1e-10, (msg or name) .. " sum")
  near(call("mean"):item(), mean(fl(per)), 1e-10, (msg or name) .. " mean")
end

test("mse_loss, l1_loss, smooth_l1_loss against their formulas", function()
  local x, y = R({2, 3}, -2, 2), R({2, 3}, -2, 2)
  local xv, yv = fl(x), fl(y)
  local function per(f) local o = {} for i = 1, #xv do o[i] = f(xv[i] - yv[i]) end return ai.tensor(o, {dtype = "f64"}):view(2, 3) end
  check_reductions("mse", function(r) return ai.mse_loss(x, y, {reduction = r}) end, per(function(d) return d * d end))
  check_reductions("l1", function(r) return ai.l1_loss(x, y, {reduction = r}) end, per(math.abs))
  for _, beta in ipairs{1, 0.5, 2} do
    check_reductions("smooth_l1", function(r) return ai.smooth_l1_loss(x, y, {reduction = r, beta = beta}) end,
      per(function(d) d = math.abs(d); return d < beta and 0.5 * d * d / beta or d - 0.5 * beta end), "smooth_l1 beta " .. beta)
  end
  check_reductions("smooth_l1 beta 0", function(r) return ai.smooth_l1_loss(x, y, {reduction = r, beta = 0}) end, per(math.abs))
  near(ai.mse_loss(x, y):item(), mean(fl(per(function(d) return d * d end))), 1e-12, "default reduction is mean")
  eq(ai.mse_loss(x, y).shape, {})
end)

test("bce_loss (weight, log clamped at -100) and bce_with_logits (pos_weight) against formulas", function()
  local p, y = R({2, 3}, 0.05, 0.95), R({2, 3}, 0, 1)
  local w = R({2, 3}, 0.5, 2)
  local pv, yv, wv = fl(p), fl(y), fl(w)
  local per, perw = {}, {}
  for i = 1, 6 do
    per[i] = -(yv[i] * math.log(pv[i]) + (1 - yv[i]) * math.log(1 - pv[i]))
    perw[i] = per[i] * wv[i]
  end
  check_reductions("bce", function(r) return ai.bce_loss(p, y, {reduction = r}) end, ai.tensor(per, {dtype = "f64"}):view(2, 3))
  check_reductions("bce weight", function(r) return ai.binary_cross_entropy(p, y, {reduction = r, weight = w}) end,
    ai.tensor(perw, {dtype = "f64"}):view(2, 3))
  near(ai.bce_loss(ai.tensor({0, 1, 1}, {dtype = "f64"}), ai.tensor({1, 0, 1}, {dtype = "f64"}), {reduction = "none"}):tolist(),
       {100, 100, 0}, 1e-12, "log clamped at -100")
  local x = R({2, 3}, -4, 4)
  local xv = fl(x)
  local pw = R({3}, 0.5, 3)
  local pwv = pw:tolist()
  local perl, perpw = {}, {}
  for i = 1, 6 do
    local s = 1 / (1 + math.exp(-xv[i]))
    perl[i] = -(yv[i] * math.log(s) + (1 - yv[i]) * math.log(1 - s))
    local c = pwv[(i - 1) % 3 + 1]
    perpw[i] = -(c * yv[i] * math.log(s) + (1 - yv[i]) * math.log(1 - s))
  end
  check_reductions("bce_with_logits", function(r) return ai.bce_with_logits(x, y, {reduction = r}) end, ai.tensor(perl, {dtype = "f64"}):view(2, 3))
  check_reductions("bce_with_logits pos_weight", function(r) return ai.binary_cross_entropy_with_logits(x, y, {reduction = r, pos_weight = pw}) end,
    ai.tensor(perpw, {dtype = "f64"}):view(2, 3))
  near(ai.bce_with_logits(ai.tensor({100, -100}), ai.tensor{0, 1}, {reduction = "none"}):tolist(), {100, 100}, 1e-4, "huge logits")
end)

local function ref_ce(xv, t, o) -- xv: N x C nested; t: 1-based targets; returns per-sample, weights
  o = o or {}
  local per, wt = {}, {}
  local C = #xv[1]
  for i = 1, #xv do
    local m = -math.huge
    for c = 1, C do m = math.max(m, xv[i][c]) end
    local z = 0
    for c = 1, C do z = z + math.exp(xv[i][c] - m) end
    local function lp(c) return xv[i][c] - m - math.log(z) end
    local ignored = o.ignore_index and t[i] == o.ignore_index
    local w = o.weight and o.weight[t[i]] or 1
    if ignored then
      per[i], wt[i] = 0, 0
    else
      local nll = -w * lp(t[i])
      local eps = o.label_smoothing or 0
      local smooth = 0
      for c = 1, C do smooth = smooth - (o.weight and o.weight[c] or 1) * lp(c) end
      per[i] = (1 - eps) * nll + eps * smooth / C
      wt[i] = w
    end
  end
  return per, wt
end

test("cross_entropy against log-softmax formulas: label_smoothing, weight, ignore_index, reductions", function()
  local x = R({5, 4}, -2, 2)
  local xv = x:tolist()
  local tv = {1, 4, 2, 4, 3}
  local t = L(tv)
  local opts_list = {
    {}, {label_smoothing = 0.2}, {weight = {0.5, 1, 2, 1.5}}, {ignore_index = 4},
    {weight = {0.5, 1, 2, 1.5}, ignore_index = 2, label_smoothing = 0.1},
  }
  for k, o in ipairs(opts_list) do
    local per, wt = ref_ce(xv, tv, o)
    local lopts = {label_smoothing = o.label_smoothing, ignore_index = o.ignore_index}
    if o.weight then lopts.weight = ai.tensor(o.weight, {dtype = "f64"}) end
    lopts.reduction = "none"
    near(ai.cross_entropy(x, t, lopts), per, 1e-10, "options " .. k .. " none")
    lopts.reduction = "sum"
    near(ai.cross_entropy(x, t, lopts):item(), sum(per), 1e-10, "options " .. k .. " sum")
    lopts.reduction = "mean"
    near(ai.cross_entropy(x, t, lopts):item(), sum(per) / sum(wt), 1e-10, "options " .. k .. " mean (weighted)")
  end
  -- K-dim input: N x C x d
  local x3 = R({2, 3, 2})
  local x3v = x3:tolist()
  local t3 = {{1, 3}, {2, 2}}
  local rows, trow = {}, {}
  for n = 1, 2 do for d = 1, 2 do
    rows[#rows + 1] = {x3v[n][1][d], x3v[n][2][d], x3v[n][3][d]}
    trow[#trow + 1] = t3[n][d]
  end end
  local per3 = ref_ce(rows, trow)
  local y3 = ai.cross_entropy(x3, L(t3), {reduction = "none"})
  eq(y3.shape, {2, 2})
  near(y3, {{per3[1], per3[2]}, {per3[3], per3[4]}}, 1e-10, "K-dim")
  near(ai.cross_entropy(x3, L(t3)):item(), mean(per3), 1e-10)
  near(ai.cross_entropy(x:float(), t):item(), mean((ref_ce(xv, tv))), 1e-5, "f32")
end)

test("nll_loss picks -logp[target] (weighted, ignore_index) ", function()
  local lp = R({4, 3}, -3, 0)
  local lpv = lp:tolist()
  local tv = {3, 1, 2, 1}
  local w = {2, 0.5, 1}
  local per, perw, wt = {}, {}, {}
  for i = 1, 4 do
    per[i] = -lpv[i][tv[i]]
    perw[i] = -w[tv[i]] * lpv[i][tv[i]]
    wt[i] = w[tv[i]]
  end
  near(ai.nll_loss(lp, L(tv), {reduction = "none"}), per, 1e-12)
  near(ai.nll_loss(lp, L(tv)):item(), mean(per), 1e-12)
  near(ai.nll_loss(lp, L(tv), {reduction = "sum"}):item(), sum(per), 1e-12)
  local wt_t = ai.tensor(w, {dtype = "f64"})
  near(ai.nll_loss(lp, L(tv), {weight = wt_t, reduction = "none"}), perw, 1e-12)
  near(ai.nll_loss(lp, L(tv), {weight = wt_t}):item(), sum(perw) / sum(wt), 1e-12, "weighted mean")
  -- ignore target 1: samples 2 and 4 drop out of the sum and of the count
  near(ai.nll_loss(lp, L(tv), {ignore_index = 1}):item(), (per[1] + per[3]) / 2, 1e-12)
  near(ai.nll_loss(lp, L(tv), {ignore_index = 1, reduction = "none"}), {per[1], 0, per[3], 0}, 1e-12)
  -- log_softmax followed by nll_loss equals cross_entropy
  local x = R({4, 3})
  near(ai.nll_loss(ai.log_softmax(x, 2), L(tv)):item(), ai.cross_entropy(x, L(tv)):item(), 1e-12)
end)

test("kl_div against target * (log target - input), reductions including batchmean, log_target", function()
  local inp = R({2, 3}, -2, 0)
  local tgt = ai.tensor({{0.2, 0, 0.8}, {0.5, 0.25, 0.25}}, {dtype = "f64"})
  local iv, tv = fl(inp), fl(tgt)
  local per = {}
  for i = 1, 6 do per[i] = tv[i] > 0 and tv[i] * (math.log(tv[i]) - iv[i]) or 0 end
  near(ai.kl_div(inp, tgt, {reduction = "none"}), ai.tensor(per, {dtype = "f64"}):view(2, 3), 1e-12, "none (0 where target is 0)")
  near(ai.kl_div(inp, tgt, {reduction = "sum"}):item(), sum(per), 1e-12)
  near(ai.kl_div(inp, tgt, {reduction = "mean"}):item(), sum(per) / 6, 1e-12)
  near(ai.kl_div(inp, tgt, {reduction = "batchmean"}):item(), sum(per) / 2, 1e-12)
  local lt = R({2, 3}, -3, -0.1)
  local ltv = fl(lt)
  local per2 = {}
  for i = 1, 6 do per2[i] = math.exp(ltv[i]) * (ltv[i] - iv[i]) end
  near(ai.kl_div(inp, lt, {reduction = "sum", log_target = true}):item(), sum(per2), 1e-12, "log_target")
end)

---------------------------------------------------------------------------- errors

test("errors: linear and convolutions", function()
  expect_error("linear: input of shape 3x4 does not match weight of shape 2x5", function() return ai.linear(ai.zeros(3, 4), ai.zeros(2, 5)) end)
  expect_error("linear: bias must be 1-D of size 2", function() return ai.linear(ai.zeros(3, 4), ai.zeros(2, 4), ai.zeros(3)) end)
  expect_error("linear: input, weight and bias must have the same dtype", function() return ai.linear(ai.zeros(3, 4), ai.zeros({2, 4}, {dtype = "f64"})) end)
  expect_error("tensor expected, got number", function() return ai.linear(ai.zeros(3, 4), 2) end)
  local x = ai.zeros(1, 2, 5, 5)
  expect_error("conv2d: input has 2 channels, weight expects 3", function() return ai.conv2d(x, ai.zeros(4, 3, 3, 3)) end)
  expect_error("conv2d: input must be 4-D", function() return ai.conv2d(ai.zeros(2, 5, 5), ai.zeros(1, 2, 3, 3)) end)
  expect_error("conv2d: weight must be 4-D", function() return ai.conv2d(x, ai.zeros(2, 3, 3)) end)
  expect_error("conv2d: invalid geometry", function() return ai.conv2d(x, ai.zeros(1, 2, 7, 7)) end)
  expect_error("conv2d: stride and dilation must be >= 1, padding >= 0", function() return ai.conv2d(x, ai.zeros(1, 2, 3, 3), {stride = 0}) end)
  expect_error("padding >= 0", function() return ai.conv2d(x, ai.zeros(1, 2, 3, 3), {padding = -1}) end)
  expect_error("conv2d: groups must be >= 1", function() return ai.conv2d(x, ai.zeros(1, 2, 3, 3), {groups = 0}) end)
  expect_error("option 'groups' must be an integer, got number", function() return ai.conv2d(x, ai.zeros(1, 2, 3, 3), {groups = 1.5}) end)
  expect_error("channels", function() return ai.conv2d(x, ai.zeros(3, 1, 3, 3), {groups = 2}) end)
  expect_error("conv2d: bias must be 1-D of size 4", function() return ai.conv2d(x, ai.zeros(4, 2, 3, 3), ai.zeros(3)) end)
  expect_error("must have the same dtype", function() return ai.conv2d(x, ai.zeros({1, 2, 3, 3}, {dtype = "f64"})) end)
  expect_error("must be a floating-point tensor (got i64)", function() return ai.conv2d(ai.zeros({1, 2, 5, 5}, {dtype = "i64"}), ai.zeros({1, 2, 3, 3}, {dtype = "i64"})) end)
  expect_error("option 'stride' must be an integer or a pair of integers", function() return ai.conv2d(x, ai.zeros(1, 2, 3, 3), {stride = "a"}) end)
  expect_error("option 'padding' must be an integer or a pair of integers", function() return ai.conv2d(x, ai.zeros(1, 2, 3, 3), {padding = {1, "a"}}) end)
  expect_error("conv_transpose2d: input has 2 channels, weight expects 3", function() return ai.conv_transpose2d(x, ai.zeros(3, 1, 3, 3)) end)
  expect_error("conv_transpose2d: invalid geometry (output_padding must be smaller than stride", function()
    return ai.conv_transpose2d(x, ai.zeros(2, 1, 3, 3), {stride = 2, output_padding = 2})
  end)
  expect_error("conv_transpose2d: weight must be 4-D", function() return ai.conv_transpose2d(x, ai.zeros(2, 1, 3)) end)
end)

test("errors: pooling, upsample, pad", function()
  local x = ai.zeros(1, 1, 4, 4)
  expect_error("max_pool2d: input must be 4-D (N x C x H x W)", function() return ai.max_pool2d(ai.zeros(4, 4), 2) end)
  expect_error("max_pool2d: invalid geometry", function() return ai.max_pool2d(x, 2, {padding = 2}) end)
  expect_error("max_pool2d: invalid geometry", function() return ai.max_pool2d(x, 5) end)
  expect_error("table expected, got string", function() return ai.max_pool2d(x, "a") end)
  expect_error("expected an integer or a pair of integers", function() return ai.max_pool2d(x, {2, "a"}) end)
  expect_error("must be a floating-point tensor", function() return ai.max_pool2d(ai.zeros({1, 1, 4, 4}, {dtype = "i64"}), 2) end)
  expect_error("avg_pool2d: invalid geometry", function() return ai.avg_pool2d(x, 3, {padding = 2}) end)
  expect_error("avg_pool2d: input must be 4-D", function() return ai.avg_pool2d(ai.zeros(1, 4, 4), 2) end)
  expect_error("adaptive_avg_pool2d: output size must be positive", function() return ai.adaptive_avg_pool2d(x, 0) end)
  expect_error("adaptive_avg_pool2d: input must be 4-D", function() return ai.adaptive_avg_pool2d(ai.zeros(4, 4), 2) end)
  expect_error("upsample: input must be 4-D (N x C x H x W)", function() return ai.upsample(ai.zeros(4, 4), {scale_factor = 2}) end)
  expect_error("upsample: give size or a positive scale_factor", function() return ai.upsample(x, {}) end)
  expect_error("upsample: give size or a positive scale_factor", function() return ai.upsample(x, {scale_factor = -1}) end)
  expect_error("upsample: mode must be 'nearest' or 'bilinear', got 'bicubic'", function() return ai.upsample(x, {scale_factor = 2, mode = "bicubic"}) end)
  expect_error("table expected", function() return ai.upsample(x, 2) end)
  expect_error("pad: padding must be non-negative", function() return ai.pad(x, {-1, 0, 0, 0}) end)
  expect_error("padding must be {left, right} or {left, right, top, bottom}", function() return ai.pad(x, {1, 1, 1}) end)
  expect_error("pad: reflect padding must be smaller than the input size (4x4)", function() return ai.pad(x, {4, 0, 0, 0}, {mode = "reflect"}) end)
  expect_error("pad: mode must be 'constant', 'reflect' or 'replicate', got 'circular'", function() return ai.pad(x, {1, 1, 1, 1}, {mode = "circular"}) end)
  expect_error("pad: input needs at least 2 dimensions", function() return ai.pad(ai.zeros(3), {1, 1}) end)
  expect_error("N x C x H x W (reflect/replicate)", function() return ai.pad(ai.zeros(3, 3), {1, 1}, {mode = "reflect"}) end)
end)

test("errors: normalisation, softmax, dropout, embedding, attention", function()
  local x = ai.zeros(2, 3, 4)
  expect_error("batch_norm: running_mean must be a contiguous 1-D tensor of 3 f32 values", function()
    return ai.batch_norm(x, ai.zeros(4), ai.ones(3), nil, nil, {training = true})
  end)
  expect_error("batch_norm: weight must be a contiguous 1-D tensor of 3 f32 values", function()
    return ai.batch_norm(x, nil, nil, ai.ones(2), nil, {training = true})
  end)
  expect_error("running_var must be", function() return ai.batch_norm(x, ai.zeros(3), ai.ones({3}, {dtype = "f64"}), nil, nil, {training = true}) end)
  expect_error("batch_norm: evaluation needs running_mean and running_var", function() return ai.batch_norm(x, nil, nil) end)
  expect_error("batch_norm: training needs more than one value per channel", function()
    return ai.batch_norm(ai.zeros(1, 3), nil, nil, nil, nil, {training = true})
  end)
  expect_error("batch_norm: input must be at least 2-D", function() return ai.batch_norm(ai.zeros(3), nil, nil, nil, nil, {training = true}) end)
  expect_error("group_norm: 3 channels do not divide into 2 groups", function() return ai.group_norm(x, 2) end)
  expect_error("group_norm: weight and bias must be 1-D tensors of 3 values", function() return ai.group_norm(x, 3, ai.ones(4)) end)
  expect_error("group_norm: input must be at least 2-D", function() return ai.group_norm(ai.zeros(3), 1) end)
  expect_error("instance_norm: input must be N x C x ...", function() return ai.instance_norm(ai.zeros(2, 3)) end)
  expect_error("layer_norm: normalized shape does not match the input's last dimensions", function() return ai.layer_norm(x, 3) end)
  expect_error("layer_norm: normalized shape does not match", function() return ai.layer_norm(x, {2, 3, 4, 5}) end)
  expect_error("layer_norm: weight must have the normalised shape", function() return ai.layer_norm(x, 4, ai.ones(3)) end)
  expect_error("normalized shape must be a size or a table of sizes", function() return ai.layer_norm(x, "a") end)
  expect_error("dimension 4 out of range", function() return ai.softmax(x, 4) end)
  expect_error("softmax: input must be a floating-point tensor (got i64)", function() return ai.softmax(ai.zeros({3}, {dtype = "i64"}), 1) end)
  expect_error("dropout: p must be in [0, 1] (got 1.5)", function() return ai.dropout(x, 1.5) end)
  expect_error("indices must be an i64 tensor (got f32)", function() return ai.embedding(ai.tensor{1}, ai.zeros(3, 2)) end)
  expect_error("embedding: weight must be 2-D", function() return ai.embedding(L{1}, ai.zeros(3)) end)
  expect_error("index 4 out of range", function() return ai.embedding(L{4}, ai.zeros(3, 2)) end)
  expect_error("scaled_dot_product_attention: q, k, v need 2+ dims", function() return ai.scaled_dot_product_attention(ai.zeros(3), ai.zeros(3), ai.zeros(3)) end)
  expect_error("inner sizes differ", function() return ai.scaled_dot_product_attention(ai.zeros(2, 3), ai.zeros(2, 4), ai.zeros(2, 4)) end)
end)

test("errors: losses", function()
  expect_error("mse_loss: input of shape 2x3 and target of shape 3x2 differ", function() return ai.mse_loss(ai.zeros(2, 3), ai.zeros(3, 2)) end)
  expect_error("l1_loss: input of shape", function() return ai.l1_loss(ai.zeros(2), ai.zeros(3)) end)
  expect_error("input must be floating-point", function() return ai.mse_loss(ai.zeros({2}, {dtype = "i64"}), ai.zeros({2}, {dtype = "i64"})) end)
  expect_error("reduction must be 'mean', 'sum', 'none' or 'batchmean', got 'avg'", function() return ai.mse_loss(ai.zeros(2), ai.zeros(2), {reduction = "avg"}) end)
  expect_error("smooth_l1_loss: beta must be non-negative", function() return ai.smooth_l1_loss(ai.zeros(2), ai.zeros(2), {beta = -1}) end)
  expect_error("bce_loss: input of shape", function() return ai.bce_loss(ai.zeros(2), ai.zeros(3)) end)
  expect_error("bce_with_logits: input of shape", function() return ai.bce_with_logits(ai.zeros(2), ai.zeros(3)) end)
  local x = ai.zeros(3, 4)
  expect_error("cross_entropy: target class 5 out of range 1..4", function() return ai.cross_entropy(x, L{1, 5, 2}) end)
  expect_error("cross_entropy: target class 0 out of range 1..4", function() return ai.cross_entropy(x, L{1, 0, 2}) end)
  expect_error("cross_entropy: target of shape 2 does not fit input of shape 3x4", function() return ai.cross_entropy(x, L{1, 2}) end)
  expect_error("indices must be an i64 tensor (got f32)", function() return ai.cross_entropy(x, ai.tensor{1, 2, 3}) end)
  expect_error("cross_entropy: input must be N x C", function() return ai.cross_entropy(ai.zeros(4), L(1)) end)
  expect_error("cross_entropy: label_smoothing must be in [0, 1]", function() return ai.cross_entropy(x, L{1, 2, 3}, {label_smoothing = 2}) end)
  expect_error("cross_entropy: weight must be 1-D with 4 class weights", function() return ai.cross_entropy(x, L{1, 2, 3}, {weight = ai.ones(3)}) end)
  expect_error("nll_loss: target class 9 out of range 1..4", function() return ai.nll_loss(x, L{9, 1, 1}) end)
  expect_error("nll_loss: target of shape", function() return ai.nll_loss(x, L{{1, 1, 1}}) end)
  expect_error("kl_div: input of shape", function() return ai.kl_div(ai.zeros(2), ai.zeros(3)) end)
  expect_error("option 'label_smoothing' must be a number", function() return ai.cross_entropy(x, L{1, 2, 3}, {label_smoothing = "a"}) end)
  expect_error("option 'reduction' must be a string", function() return ai.mse_loss(ai.zeros(2), ai.zeros(2), {reduction = {}}) end)
end)

test("error count", function()
  local n = (T.error_cases or 0) - errors_at_start
  print(("test_nn_ops.lua: %d error cases checked"):format(n))
  ok(n >= 60, "error cases: " .. n)
end)
