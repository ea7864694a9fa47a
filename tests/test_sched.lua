-- tests/test_sched.lua: ai.sched: each scheduler's learning-rate sequence against its formula,
-- against PyTorch's recursive (chainable) form written out here, and against values from
-- PyTorch's documentation and test suite; state dicts and errors.
local T = require "helper"
local ai = require "aiart"
local optim, sched = ai.optim, ai.sched

local function sgd(lr, extra)
  local opts = {lr = lr, momentum = 0.9}
  for k, v in pairs(extra or {}) do opts[k] = v end
  return optim.SGD({ai.zeros(1, {requires_grad = true})}, opts)
end

-- The lr of group 1 at epochs 0..n-1: the value after construction, then after each step().
local function lrs(s, opt, n)
  local out = {opt.param_groups[1].lr}
  for _ = 2, n do s:step(); out[#out + 1] = opt.param_groups[1].lr end
  return out
end

local function formula(n, f)
  local out = {}
  for e = 0, n - 1 do out[e + 1] = f(e) end
  return out
end

T.test("StepLR, MultiStepLR, ExponentialLR, ConstantLR, PolynomialLR", function()
  local opt = sgd(0.1)
  T.near(lrs(sched.StepLR(opt, {step_size = 3, gamma = 0.5}), opt, 10),
    {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125}, 1e-15)
  opt = sgd(0.1)
  T.near(lrs(sched.MultiStepLR(opt, {milestones = {5, 2}}), opt, 7),
    {0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001}, 1e-15)
  opt = sgd(0.1)
  T.near(lrs(sched.ExponentialLR(opt, {gamma = 0.9}), opt, 6), formula(6, function(e) return 0.1 * 0.9 ^ e end), 1e-15)
  opt = sgd(0.05)
  T.near(lrs(sched.ConstantLR(opt, {factor = 0.5, total_iters = 3}), opt, 5), {0.025, 0.025, 0.025, 0.05, 0.05}, 1e-15)
  opt = sgd(0.05)
  T.near(lrs(sched.PolynomialLR(opt, {total_iters = 4, power = 2}), opt, 6),
    formula(6, function(e) return 0.05 * (1 - math.min(e, 4) / 4) ^ 2 end), 1e-15)
end)

T.test("CosineAnnealingLR equals PyTorch's recursive form, past T_max too", function()
  local base, eta_min, T_max = 0.1, 0.001, 10
  local opt = sgd(base)
  local got = lrs(sched.CosineAnnealingLR(opt, {T_max = T_max, eta_min = eta_min}), opt, 31)
  -- PyTorch's get_lr, step by step from the previous lr
  local chain, lr = {base}, base
  for e = 1, 30 do
    if (e - 1 - T_max) % (2 * T_max) == 0 then
      lr = lr + (base - eta_min) * (1 - math.cos(math.pi / T_max)) / 2
    else
      lr = (1 + math.cos(math.pi * e / T_max)) / (1 + math.cos(math.pi * (e - 1) / T_max)) * (lr - eta_min) + eta_min
    end
    chain[#chain + 1] = lr
  end
  T.near(got, chain, 1e-12)
  T.near(got[11], eta_min, 1e-15)
  T.near(got[21], base, 1e-15)
end)

T.test("LinearLR (warm-up) equals PyTorch's recursive form", function()
  local base, s, e_f, total = 0.2, 0.25, 1.0, 4
  local opt = sgd(base)
  local got = lrs(sched.LinearLR(opt, {start_factor = s, end_factor = e_f, total_iters = total}), opt, 8)
  local chain, lr = {base * s}, base * s
  for e = 1, 7 do
    if e <= total then lr = lr * (1 + (e_f - s) / (total * s + (e - 1) * (e_f - s))) end
    chain[#chain + 1] = lr
  end
  T.near(got, chain, 1e-15)
  T.near(got, {0.05, 0.0875, 0.125, 0.1625, 0.2, 0.2, 0.2, 0.2}, 1e-15)
  opt = sgd(1)
  T.near(lrs(sched.LinearLR(opt, {start_factor = 1, end_factor = 0.5, total_iters = 2}), opt, 4), {1, 0.75, 0.5, 0.5}, 1e-15)
end)

T.test("LambdaLR: one function per group", function()
  local a, b = ai.zeros(1, {requires_grad = true}), ai.zeros(1, {requires_grad = true})
  local opt = optim.SGD({{params = {a}, lr = 1}, {params = {b}, lr = 0.5}})
  local s = sched.LambdaLR(opt, {lr_lambda = {function(e) return e // 2 end, function(e) return 0.9 ^ e end}})
  s:step(); s:step(); s:step()
  T.near(s:get_last_lr(), {1, 0.5 * 0.9 ^ 3}, 1e-15)
  local opt2 = sgd(0.1)
  T.near(lrs(sched.LambdaLR(opt2, function(e) return 1 / (e + 1) end), opt2, 3), {0.1, 0.05, 0.1 / 3}, 1e-15)
end)

T.test("SequentialLR: PyTorch's documented example and warm-up then cosine", function()
  -- from PyTorch's docs: ConstantLR(0.1, 20) then ExponentialLR(0.9) at milestone 20
  local opt = sgd(0.05)
  local s = sched.SequentialLR(opt, {schedulers = {sched.ConstantLR(opt, {factor = 0.1, total_iters = 20}),
    sched.ExponentialLR(opt, {gamma = 0.9})}, milestones = {20}})
  local got = lrs(s, opt, 23)
  for e = 1, 20 do T.near(got[e], 0.005, 1e-15) end
  T.near({got[21], got[22], got[23]}, {0.05, 0.045, 0.0405}, 1e-15)
  -- warm-up 5 epochs from 10%, then cosine over 10
  opt = sgd(0.1)
  s = sched.SequentialLR(opt, {schedulers = {sched.LinearLR(opt, {start_factor = 0.1, total_iters = 5}),
    sched.CosineAnnealingLR(opt, {T_max = 10})}, milestones = {5}})
  T.near(lrs(s, opt, 16), formula(16, function(e)
    if e < 5 then return 0.1 * (0.1 + 0.9 * e / 5) end
    return 0.1 * (1 + math.cos(math.pi * (e - 5) / 10)) / 2
  end), 1e-15)
  T.eq(#s:get_last_lr(), 1)
  T.expect_error("SequentialLR: expected 1 milestones for 2 schedulers, got 2",
    function() sched.SequentialLR(opt, {schedulers = {sched.StepLR(opt, {step_size = 1}), sched.StepLR(opt, {step_size = 1})}, milestones = {1, 2}}) end)
end)

T.test("OneCycleLR: PyTorch's test values (linear), cosine formula, beta1 cycling", function()
  -- PyTorch's test_onecycle_lr_linear_annealing: lr and momentum targets
  local opt = sgd(0.1)
  local s = sched.OneCycleLR(opt, {max_lr = 25, final_div_factor = 2, base_momentum = 1, max_momentum = 22,
    total_steps = 10, anneal_strategy = "linear"})
  local lr_got, mom_got = {}, {}
  for i = 1, 10 do
    lr_got[i], mom_got[i] = opt.param_groups[1].lr, opt.param_groups[1].momentum
    if i < 10 then s:step() end
  end
  T.near(lr_got, {1, 13, 25, 21.5, 18, 14.5, 11, 7.5, 4, 0.5}, 1e-12)
  T.near(mom_got, {22, 11.5, 1, 4, 7, 10, 13, 16, 19, 22}, 1e-12)
  s:step() -- step 10 == total_steps is still allowed (as PyTorch)
  T.expect_error("OneCycleLR: tried to step 11 times; total_steps is 10", function() s:step() end)
  -- cosine annealing, Adam's beta1 moves instead of a momentum
  local adam = optim.Adam({ai.zeros(1, {requires_grad = true})}, {lr = 1, betas = {0.9, 0.99}})
  local c = sched.OneCycleLR(adam, {max_lr = 0.01, epochs = 2, steps_per_epoch = 5})
  local function cos_anneal(a, b, pct) return b + (a - b) / 2 * (math.cos(math.pi * pct) + 1) end
  local init_lr, min_lr = 0.01 / 25, 0.01 / 25 / 1e4
  local want = formula(10, function(e)
    if e <= 2 then return cos_anneal(init_lr, 0.01, e / 2) end
    return cos_anneal(0.01, min_lr, (e - 2) / 7)
  end)
  T.near(lrs(c, adam, 10), want, 1e-15)
  T.near(adam.param_groups[1].betas, {cos_anneal(0.85, 0.95, 7 / 7), 0.99}, 1e-15)
  T.expect_error("OneCycleLR: give total_steps, or epochs and steps_per_epoch", function() sched.OneCycleLR(adam, {max_lr = 1}) end)
end)

T.test("CosineAnnealingWarmRestarts: restarts with T_mult, fractional epochs", function()
  local opt = sgd(0.1)
  local s = sched.CosineAnnealingWarmRestarts(opt, {T_0 = 3, T_mult = 2, eta_min = 0.01})
  local function at(t_cur, t_i) return 0.01 + 0.09 * (1 + math.cos(math.pi * t_cur / t_i)) / 2 end
  T.near(lrs(s, opt, 11), {at(0, 3), at(1, 3), at(2, 3), at(0, 6), at(1, 6), at(2, 6), at(3, 6), at(4, 6), at(5, 6),
    at(0, 12), at(1, 12)}, 1e-15)
  s:step(4.5)
  T.near(opt.param_groups[1].lr, at(1.5, 6), 1e-15)
  T.eq(s.last_epoch, 4)
  s:step() -- continues from the fractional position, as PyTorch's
  T.near(opt.param_groups[1].lr, at(2.5, 6), 1e-15)
  s:step(9.25)
  T.near(opt.param_groups[1].lr, at(0.25, 12), 1e-15)
end)

T.test("ReduceLROnPlateau: patience, cooldown, min_lr, mode max", function()
  local opt = sgd(1)
  local s = sched.ReduceLROnPlateau(opt, {patience = 2, factor = 0.5})
  local got = {}
  for _, m in ipairs({1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.5}) do
    s:step(m)
    got[#got + 1] = opt.param_groups[1].lr
  end
  -- bad epochs 1, 2, 3 -> reduce at the 3rd (patience 2), then count again from 0
  T.near(got, {1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25}, 1e-15)
  opt = sgd(1)
  s = sched.ReduceLROnPlateau(opt, {mode = "max", patience = 0, cooldown = 1, factor = 0.1, min_lr = 0.05})
  got = {}
  for _, m in ipairs({1, 0.5, 0.5, 0.5, 0.5}) do
    s:step(ai.tensor(m))
    got[#got + 1] = opt.param_groups[1].lr
  end
  T.near(got, {1, 0.1, 0.1, 0.05, 0.05}, 1e-15)
  T.near(s:get_last_lr(), {0.05}, 1e-15)
  T.expect_error("ReduceLROnPlateau: factor should be < 1.0", function() sched.ReduceLROnPlateau(opt, {factor = 2}) end)
  T.expect_error("ReduceLROnPlateau: mode must be one of 'min', 'max', got 'best'", function() sched.ReduceLROnPlateau(opt, {mode = "best"}) end)
end)

T.test("state_dict round trip: a resumed scheduler continues identically", function()
  local function check(make, n_before, n_after)
    local opt1 = sgd(0.1)
    local s1 = make(opt1)
    for _ = 1, n_before do s1:step() end
    local sd = s1:state_dict()
    T.ok(sd.optimizer == nil)
    local opt2 = sgd(0.1)
    local s2 = make(opt2)
    s2:load_state_dict(sd)
    opt2.param_groups[1].lr = opt1.param_groups[1].lr -- the optimizer's own state dict carries lr
    for _ = 1, n_after do
      s1:step(); s2:step()
      T.near(opt2.param_groups[1].lr, opt1.param_groups[1].lr, 1e-15)
    end
  end
  check(function(o) return sched.StepLR(o, {step_size = 2, gamma = 0.5}) end, 3, 4)
  check(function(o) return sched.CosineAnnealingWarmRestarts(o, {T_0 = 2, T_mult = 2}) end, 5, 6)
  check(function(o) return sched.OneCycleLR(o, {max_lr = 1, total_steps = 20}) end, 7, 8)
  check(function(o)
    return sched.SequentialLR(o, {schedulers = {sched.LinearLR(o, {total_iters = 3}), sched.ExponentialLR(o, {gamma = 0.5})},
      milestones = {3}})
  end, 2, 5)
  local opt = sgd(1)
  local p = sched.ReduceLROnPlateau(opt, {patience = 0})
  p:step(1); p:step(2)
  local p2 = sched.ReduceLROnPlateau(sgd(1), {patience = 0})
  p2:load_state_dict(p:state_dict())
  T.eq(p2.best, 1)
  T.eq(p2.last_epoch, 2)
end)

T.test("schedulers: resuming with last_epoch, and argument errors", function()
  local opt = sgd(0.1)
  T.expect_error("StepLR: param_groups[1] has no initial_lr", function() sched.StepLR(opt, {step_size = 3, last_epoch = 4}) end)
  opt.param_groups[1].initial_lr = 0.1
  local s = sched.StepLR(opt, {step_size = 3, gamma = 0.5, last_epoch = 4})
  T.eq(s.last_epoch, 5)
  T.near(opt.param_groups[1].lr, 0.05, 1e-15)
  T.expect_error("StepLR: step_size must be a positive integer, got nil", function() sched.StepLR(sgd(1), {}) end)
  T.expect_error("StepLR: unknown option 'stepsize'", function() sched.StepLR(sgd(1), {stepsize = 2}) end)
  T.expect_error("LinearLR: start_factor must be in (0, 1], got 0", function() sched.LinearLR(sgd(1), {start_factor = 0}) end)
  T.expect_error("CosineAnnealingLR: expected an optimizer", function() sched.CosineAnnealingLR(nil, {T_max = 3}) end)
  T.expect_error("LambdaLR: lr_lambda 1 must be a function", function() sched.LambdaLR(sgd(1), {lr_lambda = 3}) end)
end)
