-- tests/test_nn_ops_loss.lua: forward values of the losses (mse, l1, smooth l1, bce, bce with
-- logits, cross entropy, nll, kl_div) against their formulas, each reduction, and their error
-- messages.
-- Run alone: ./aiart-lua tests/run.lua test_nn_ops_loss
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"
local ref = require "nn_ops_ref"

local test, near, expect_error = T.test, T.near, T.expect_error
local eq = T.eq  -- shared helpers (tests/helper.lua)
local R, L = ref.inputs(), ref.L

local count_errors = T.count_error_cases()

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

count_errors("test_nn_ops_loss.lua", 13)
