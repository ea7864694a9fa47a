-- tests/test_nn_ops.lua: forward values of the spatial neural-network ops (linear,
-- convolutions, pooling, upsampling, padding) against naive Lua reference implementations on
-- tiny inputs, and their error messages. Normalisation, softmax, dropout, embedding and
-- attention are in tests/test_nn_ops_norm.lua, the losses in tests/test_nn_ops_loss.lua.
-- Run alone: ./aiart-lua tests/run.lua test_nn_ops.lua (test_nn_ops: the three files)
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"
local ref = require "nn_ops_ref"

local test, near, expect_error = T.test, T.near, T.expect_error
local ser, eq = T.show, T.eq  -- shared helpers (tests/helper.lua)
local R = ref.inputs()

local count_errors = T.count_error_cases()

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
  expect_error("bad argument #2 to 'max_pool2d' (expected an integer or a pair of integers, got string)", function() return ai.max_pool2d(x, "a") end)
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

count_errors("test_nn_ops.lua", 31)
