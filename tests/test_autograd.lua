-- tests/test_autograd.lua: the autograd engine: backward and .grad, grad modes, detach, views,
-- the errors of autograd, two small training loops (an MLP regression and a WGAN-GP gradient
-- penalty) and the freeing of graphs. The gradient checks of every op are in
-- tests/test_autograd_gradcheck.lua.
-- Run alone: ./aiart-lua tests/run.lua test_autograd.lua (test_autograd: both files)
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"

local test, near, ok, expect_error = T.test, T.near, T.ok, T.expect_error
local eq = T.eq  -- shared helpers (tests/helper.lua)

local count_errors = T.count_error_cases()

---------------------------------------------------------------------------- backward, .grad

test("backward fills .grad of leaves with the right values", function()
  local x = ai.tensor({1, 2, 3}, {dtype = "f64", requires_grad = true})
  local w = ai.tensor({0.5, -1, 2}, {dtype = "f64", requires_grad = true})
  local y = (x * w):sum() + (x ^ 2):sum()
  eq(y.requires_grad, true)
  eq(x.grad, nil, "no grad before backward")
  y:backward()
  eq(x.grad:tolist(), {0.5 + 2, -1 + 4, 2 + 6})
  eq(w.grad:tolist(), {1, 2, 3})
  eq(x.grad.dtype, "f64")
  eq(x.grad.requires_grad, false)
end)

test("gradients accumulate across backward calls until cleared with x.grad = nil", function()
  local x = ai.tensor({1, 2}, {requires_grad = true})
  ;(x * 3):sum():backward()
  eq(x.grad:tolist(), {3, 3})
  ;(x * 3):sum():backward()
  eq(x.grad:tolist(), {6, 6})
  x.grad = nil
  eq(x.grad, nil)
  ;(x * x):sum():backward()
  eq(x.grad:tolist(), {2, 4})
  -- .grad can be set to a tensor of the right shape and dtype, and is then accumulated into
  x.grad = ai.tensor{10, 10}
  x:sum():backward()
  eq(x.grad:tolist(), {11, 11})
  -- zeroing in place works too
  x.grad:zero_()
  x:sum():backward()
  eq(x.grad:tolist(), {1, 1})
end)

test("y:backward(g) for a non-scalar y; a leaf used twice gets both contributions", function()
  local x = ai.tensor({{1, 2}, {3, 4}}, {dtype = "f64", requires_grad = true})
  local y = x * x
  y:backward(ai.tensor({{1, 0}, {2, -1}}, {dtype = "f64"}))
  eq(x.grad:tolist(), {{2, 0}, {12, -8}})
  local a = ai.tensor({2}, {dtype = "f64", requires_grad = true})
  local z = a * a * a + a -- 3a^2 + 1 = 13
  z:backward(ai.ones(1, {dtype = "f64"}))
  eq(a.grad:tolist(), {13})
  local b = ai.tensor({1, 2}, {requires_grad = true})
  b:backward(ai.tensor{5, 6}) -- a leaf as the output
  eq(b.grad:tolist(), {5, 6})
  local c = ai.tensor({1, 2}, {dtype = "f64", requires_grad = true})
  local d = c * 2
  d:backward(ai.tensor({1, 1})) -- f32 gradient for an f64 output is converted
  eq(c.grad:tolist(), {2, 2})
end)

test("a leaf's .grad is its own tensor: never the caller's gradient, another leaf's or a view", function()
  local a = ai.tensor({1, 2}, {dtype = "f64"}):requires_grad_(true)
  local b = ai.tensor({3, 4}, {dtype = "f64"}):requires_grad_(true)
  local g = ai.tensor({1, 1}, {dtype = "f64"})
  local z = a + b -- add's backward hands the same gradient to both inputs
  z:backward(g)
  a.grad:mul_(2)
  eq(b.grad:tolist(), {1, 1}, "b.grad is not a.grad")
  eq(g:tolist(), {1, 1}, "the caller's gradient is not a.grad")
  local w = ai.tensor({{1, 2}, {3, 4}}, {dtype = "f64"}):requires_grad_(true)
  local x = ai.tensor({{1, 0}, {0, 1}}, {dtype = "f64"})
  ai.matmul(x, w):sum():backward() -- a fresh product: kept without a copy
  w.grad:add_(1)
  eq(w.grad:tolist(), {{2, 2}, {2, 2}})
  local s = ai.tensor({5, 6}, {dtype = "f64"}):requires_grad_(true)
  s:sum():backward() -- sum's gradient is an expanded view: copied
  s.grad:mul_(3)
  eq(s.grad:tolist(), {3, 3})
end)

test("retain_graph allows a second backward", function()
  local x = ai.tensor({1, 2}, {dtype = "f64", requires_grad = true})
  local y = (x:exp() * x):sum()
  y:backward({retain_graph = true})
  local g1 = x.grad:tolist()
  y:backward()
  near(x.grad:tolist(), {2 * g1[1], 2 * g1[2]}, 1e-12)
  expect_error("backward through the graph a second time", function() y:backward() end)
end)

test("ai.no_grad, enable_grad, set_grad_enabled, is_grad_enabled", function()
  local x = ai.ones(2, {requires_grad = true})
  local y = ai.no_grad(function() return x * 2 end)
  eq(y.requires_grad, false)
  eq(y.grad_fn, nil)
  local a, b = ai.no_grad(function(p, q) return p + q, ai.is_grad_enabled() end, 1, 2)
  eq(a, 3)
  eq(b, false)
  eq(ai.is_grad_enabled(), true)
  local prev = ai.set_grad_enabled(false)
  eq(prev, true)
  eq(ai.is_grad_enabled(), false)
  eq((x * 2).requires_grad, false)
  local inner = ai.enable_grad(function() return (x * 2).requires_grad end)
  eq(inner, true)
  eq(ai.is_grad_enabled(), false, "enable_grad restores the mode")
  eq(ai.set_grad_enabled(true), false)
  eq((x * 2).requires_grad, true)
  -- the mode is restored when the function raises
  local okr, err = pcall(ai.no_grad, function() error("boom") end)
  ok(not okr and tostring(err):find("boom"), tostring(err))
  eq(ai.is_grad_enabled(), true)
  ai.no_grad(function()
    ai.no_grad(function() end)
    eq(ai.is_grad_enabled(), false, "nested no_grad keeps grad off")
  end)
end)

test("detach shares storage and stops gradients", function()
  local x = ai.tensor({1, 2, 3}, {dtype = "f64", requires_grad = true})
  local y = x * 2
  local d = y:detach()
  eq(d.requires_grad, false)
  eq(d.grad_fn, nil)
  eq(d.is_leaf, true)
  d[1] = 100 -- detach aliases y
  eq(y:tolist()[1], 100.0)
  local z = (x * ai.detach(x)):sum()
  z:backward()
  eq(x.grad:tolist(), {1, 2, 3}, "the detached factor is a constant")
end)

test("requires_grad query, requires_grad_, is_leaf, grad_fn", function()
  local x = ai.zeros(2)
  eq(x.requires_grad, false)
  ok(x:requires_grad_(true) == x, "requires_grad(true) returns the tensor")
  eq(x.requires_grad, true)
  x:requires_grad_(false)
  eq(x.requires_grad, false)
  x:requires_grad_()
  eq(x.requires_grad, true)
  eq(x.is_leaf, true)
  eq(x.grad_fn, nil)
  local y = x:exp()
  eq(y.is_leaf, false)
  eq(y.grad_fn, "EXP")
  eq((x + 1).grad_fn, "ADD")
  eq(x:sum().grad_fn, "SUM")
  eq(ai.zeros(2):exp().requires_grad, false, "no input requires grad")
  eq(ai.zeros(2, {requires_grad = true}):float().requires_grad, true)
  eq(ai.zeros(2, {requires_grad = true}):floor().requires_grad, false, "floor is not differentiable")
  eq(ai.zeros(2, {requires_grad = true}):gt(0).requires_grad, false, "comparisons give no grad")
  eq(ai.zeros(2, {requires_grad = true}):long().requires_grad, false)
end)

test("gradient flows through a view into its base leaf; ai.grad returns gradients without touching .grad", function()
  local x = ai.tensor({{1, 2}, {3, 4}}, {dtype = "f64", requires_grad = true})
  local y = x:t()[1] -- first column of x
  ;(y * ai.tensor({10, 20}, {dtype = "f64"})):sum():backward()
  eq(x.grad:tolist(), {{10, 0}, {20, 0}})
  local a = ai.tensor({1, 2}, {dtype = "f64", requires_grad = true})
  local b = ai.tensor({3, 4}, {dtype = "f64", requires_grad = true})
  local out = (a * b):sum()
  local g = ai.grad(out, {a, b})
  eq(g[1]:tolist(), {3, 4})
  eq(g[2]:tolist(), {1, 2})
  eq(a.grad, nil)
  local ga = ai.grad((a * a):sum(), a) -- a single tensor gives a single gradient
  eq(ga:tolist(), {2, 4})
  local h = ai.grad({a:sum(), (b * 2):sum()}, {a, b})
  eq(h[1]:tolist(), {1, 1})
  eq(h[2]:tolist(), {2, 2})
  local go = ai.grad(a * 3, a, {grad_outputs = ai.tensor({1, -1}, {dtype = "f64"})})
  eq(go:tolist(), {3, -3})
  -- grad_outputs third, as in torch.autograd.grad: one tensor, or a list, with options after
  eq(ai.grad(a * 3, a, ai.tensor({1, -1}, {dtype = "f64"})):tolist(), {3, -3})
  local gl = ai.grad({a * 3, b * 2}, {a, b}, {ai.ones(2):double(), ai.tensor({2, 0}, {dtype = "f64"})}, {retain_graph = false})
  eq({gl[1]:tolist(), gl[2]:tolist()}, {{3, 3}, {4, 0}})
  expect_error("options table expected", function() return ai.grad(a * 3, a, ai.ones(2):double(), 5) end)
  local un = ai.grad(a:sum(), {a, b}, {allow_unused = true})
  eq(un[1]:tolist(), {1, 1})
  eq(un[2], nil)
  -- with respect to an intermediate tensor
  local m = a * 2
  local gm = ai.grad((m * m):sum(), m)
  eq(gm:tolist(), {4, 8})
end)

---------------------------------------------------------------------------- errors

test("errors: backward", function()
  expect_error("backward: tensor 1 does not require grad and has no grad_fn", function() ai.zeros(1):sum():backward() end)
  local x = ai.ones(3, {requires_grad = true})
  expect_error("backward: grad can be implicitly created only for scalar outputs (this one is 3); pass a gradient",
               function() (x * 2):backward() end)
  expect_error("backward: gradient of shape 2 does not match the output's 3", function() (x * 2):backward(ai.ones(2)) end)
  local y = (x:exp()):sum()
  y:backward()
  expect_error("backward through the graph a second time", function() y:backward() end)
  local z = x:sin():sum()
  z:backward()
  expect_error("pass retain_graph=true", function() z:backward() end)
  expect_error("gradient tensor or options table expected", function() (x * 2):sum():backward(3) end)
  expect_error("option 'retain_graph' must be a boolean", function() (x * 2):sum():backward({retain_graph = "yes"}) end)
end)

test("errors: a tensor saved for backward was modified in place", function()
  local x = ai.tensor({1, 2}, {dtype = "f64", requires_grad = true})
  local y = x:exp() -- exp saves its output
  ai.no_grad(function() y:add_(1) end)
  expect_error("modified in place", function() y:sum():backward() end)
  local e = expect_error("a tensor saved for the backward of EXP was modified in place since", function() y:sum():backward() end)
  ok(e:find("clone", 1, true), e)
  -- an input saved by mul, changed through a view
  local a = ai.tensor({1, 2}, {dtype = "f64", requires_grad = true})
  local b = ai.tensor({3, 4}, {dtype = "f64"})
  local p = a * b
  b:narrow(1, 1, 1):fill_(0)
  expect_error("modified in place", function() p:sum():backward() end)
  -- changing a tensor no rule saved is fine
  local c = ai.tensor({1, 2}, {dtype = "f64"})
  local s = a + c
  c:fill_(5)
  s:sum():backward()
  -- (add saves nothing)
  eq(a.grad:tolist(), {1, 1})
end)

test("errors: requires_grad on integer tensors and non-leaves; in-place on leaves", function()
  expect_error("requires_grad: only floating-point tensors can require gradients (got i64)",
               function() return ai.zeros({2}, {dtype = "i64"}):requires_grad_(true) end)
  expect_error("only floating-point tensors can require gradients (got u8)",
               function() return ai.tensor{true}:requires_grad_() end)
  expect_error("only floating-point tensors can require gradients", ai.arange, 3, {requires_grad = true})
  local x = ai.ones(2, {requires_grad = true})
  expect_error("cannot turn off gradients of a non-leaf tensor; use :detach()", function() return (x * 2):requires_grad_(false) end)
  expect_error("in-place change of a tensor that requires grad", function() return x:add_(1) end)
  expect_error("in-place change of a tensor that requires grad", function() return (x * 2):mul_(2) end)
  expect_error("grad: must have the tensor's shape and dtype", function() x.grad = ai.ones(3) end)
  expect_error("grad: must have the tensor's shape and dtype", function() x.grad = ai.ones(2, {dtype = "f64"}) end)
end)

test("errors: ai.grad", function()
  local a = ai.ones(2, {requires_grad = true})
  local b = ai.ones(2, {requires_grad = true})
  local c = ai.ones(2)
  expect_error("grad: input 2 was not used to compute the outputs (pass allow_unused=true)", function() return ai.grad(a:sum(), {a, b}) end)
  expect_error("grad: input 1 does not require grad", function() return ai.grad(a:sum(), {c}) end)
  expect_error("grad: 2 grad_outputs for 1 outputs", function() return ai.grad(a * 2, a, {grad_outputs = {ai.ones(2), ai.ones(2)}}) end)
  expect_error("expected a list of tensors, item 2 is a number", function() return ai.grad({a:sum(), 3}, a) end)
  expect_error("scalar outputs", function() return ai.grad(a * 2, a) end)
end)

test("errors: create_graph through an op whose backward is not differentiable", function()
  local x = ai.randn({1, 1, 4, 4}, {dtype = "f64", requires_grad = true})
  local y = ai.max_pool2d(x, 2)
  expect_error("create_graph: the backward of MAX_POOL2D is not differentiable",
               function() return ai.grad(y:sum(), x, {create_graph = true}) end)
end)

---------------------------------------------------------------------------- training

test("a two-layer MLP trained by hand-written SGD drives its loss below 10% of its start", function()
  ai.manual_seed(123)
  local N = 64
  local X = ai.rand({N, 2}, {dtype = "f64"}) * 2 - 1
  local Y = (X:select(2, 1) * 3):sin():unsqueeze(2) * 0.5 + X:select(2, 2):unsqueeze(2) ^ 2 -- N x 1
  local W1 = (ai.randn({16, 2}, {dtype = "f64"}) * 0.7):requires_grad_()
  local b1 = ai.zeros({16}, {dtype = "f64", requires_grad = true})
  local W2 = (ai.randn({1, 16}, {dtype = "f64"}) * 0.3):requires_grad_()
  local b2 = ai.zeros({1}, {dtype = "f64", requires_grad = true})
  local params = {W1, b1, W2, b2}
  local function loss()
    local h = ai.linear(X, W1, b1):tanh()
    return ai.mse_loss(ai.linear(h, W2, b2), Y)
  end
  local first = loss():item()
  local last
  for step = 1, 1500 do
    for _, p in ipairs(params) do p.grad = nil end
    local l = loss()
    l:backward()
    last = l:item()
    ai.no_grad(function()
      for _, p in ipairs(params) do p:sub_(p.grad * 0.2) end
    end)
    if step % 100 == 0 then ok(last == last, "loss is a number at step " .. step) end
  end
  last = loss():item()
  ok(last < 0.1 * first, ("loss went from %.4f to %.4f"):format(first, last))
end)

test("WGAN-GP gradient penalty backpropagates into D's weights and training reduces it", function()
  ai.manual_seed(321)
  local W1 = (ai.randn({8, 3}, {dtype = "f64"}) * 1.5):requires_grad_()
  local b1 = (ai.randn({8}, {dtype = "f64"}) * 0.1):requires_grad_()
  local W2 = (ai.randn({1, 8}, {dtype = "f64"}) * 1.5):requires_grad_()
  local params = {W1, b1, W2}
  local X = ai.randn({16, 3}, {dtype = "f64"})
  local function penalty()
    local x = X:clone():requires_grad_()
    local d = ai.linear(ai.linear(x, W1, b1):tanh(), W2)
    local gx = ai.grad(d:sum(), x, {create_graph = true})
    eq(gx.shape, {16, 3})
    ok(gx.requires_grad, "the gradient is differentiable")
    local gn = gx:norm(2, 2, {keepdim = false})
    return ((gn - 1) ^ 2):mean()
  end
  local p0 = penalty()
  p0:backward()
  for i, p in ipairs(params) do
    ok(p.grad ~= nil, "param " .. i .. " got a gradient")
    local s = p.grad:abs():sum():item()
    ok(s > 0 and s == s, "param " .. i .. " gradient is non-zero and finite")
  end
  -- the double-backward gradient of W1 agrees with a finite difference of the penalty
  local g = W1.grad:tolist()
  local eps = 1e-6
  local flatw = ai.no_grad(function() return W1:view(-1) end)
  for _, k in ipairs{1, 5, 17} do
    local orig = flatw[k]:item()
    ai.no_grad(function() flatw[k] = orig + eps end)
    local pp = penalty():item()
    ai.no_grad(function() flatw[k] = orig - eps end)
    local pm = penalty():item()
    ai.no_grad(function() flatw[k] = orig end)
    local r, c = (k - 1) // 3 + 1, (k - 1) % 3 + 1
    near(g[r][c], (pp - pm) / (2 * eps), 1e-5, "dP/dW1 element " .. k)
  end
  local start = p0:item()
  for _ = 1, 30 do
    for _, p in ipairs(params) do p.grad = nil end
    local pen = penalty()
    pen:backward()
    ai.no_grad(function() for _, p in ipairs(params) do p:sub_(p.grad * 0.05) end end)
  end
  local final = penalty():item()
  ok(final < 0.5 * start, ("penalty went from %.4f to %.4f"):format(start, final))
end)

test("graphs are freed: live memory returns to its level after backward and double backward", function()
  local function live() collectgarbage(); collectgarbage(); return ai.memory().live end
  local W = ai.randn({32, 16}, {dtype = "f64", requires_grad = true})
  local base = live()
  for _ = 1, 10 do
    local x = ai.randn({8, 16}, {dtype = "f64", requires_grad = true})
    local d = ai.linear(x, W):tanh():sum()
    local gx = ai.grad(d, x, {create_graph = true})
    ;((gx:norm(2, 2) - 1) ^ 2):mean():backward()
    W.grad = nil
    local y = ai.conv2d(ai.randn({1, 2, 6, 6}, {dtype = "f64", requires_grad = true}), ai.randn({3, 2, 3, 3}, {dtype = "f64"}))
    ai.group_norm(y, 3):pow(2):sum():backward({retain_graph = true})
    ai.softmax(y, 2):log():sum():backward()
  end
  eq(live() - base, 0, "bytes still live")
end)

count_errors("test_autograd.lua", 24)
