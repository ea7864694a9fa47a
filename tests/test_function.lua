-- tests/test_function.lua: gradients written in Lua: ai.autograd.Function (forward and backward
-- in Lua, several outputs, non-tensor arguments, double backward, gradcheck), tensor hooks that
-- may replace a gradient (register_hook) and retain_grad for non-leaves.
local T = require "helper"
local ai = require "aiart"

local STE = ai.autograd.Function{ -- the straight-through estimator of the README
  forward = function(ctx, x) return x:round() end,
  backward = function(ctx, grad) return grad end,
}

T.test("a straight-through estimator: the forward rounds, the gradient goes through as it is", function()
  local x = ai.tensor({0.2, 0.7, 1.6}, {requires_grad = true})
  local y = STE(x)
  T.eq(y:tolist(), {0, 1, 2})
  T.eq(y.grad_fn, "CUSTOM")
  ;(y * ai.tensor{1, 2, 3}):sum():backward()
  T.eq(x.grad:tolist(), {1, 2, 3}, "round's own gradient would be 0")
  T.eq(STE:apply(ai.ones(2)).requires_grad, false, "nothing recorded without an input that needs a gradient")
end)

local MulAdd = ai.autograd.Function{ -- two results, a non-tensor argument, saved tensors
  forward = function(ctx, a, b, k)
    ctx:save_for_backward(a, b)
    ctx.k = k
    return a * b * k, a + b
  end,
  backward = function(ctx, gprod, gsum)
    local a, b = table.unpack(ctx.saved_tensors)
    return gprod * b * ctx.k + gsum, gprod * a * ctx.k + gsum, nil
  end,
}

T.test("several results, non-tensor arguments, saved tensors, needs_input_grad; gradcheck and gradgradcheck", function()
  ai.manual_seed(2)
  local a, b = ai.randn(3, {dtype = "f64", requires_grad = true}), ai.randn(3, {dtype = "f64", requires_grad = true})
  local f = function(p, q) local u, v = MulAdd(p, q, 2.5) return u * 3 + v * v end
  T.ok(ai.gradcheck(f, {a, b}))
  T.ok(ai.gradgradcheck(f, {a, b}), "its backward is written in recording ops, so it differentiates again")
  local u = MulAdd(a, b, 1) -- only the first result reaches the loss: the other's gradient is zeros
  u:sum():backward()
  T.near(a.grad, b, 1e-12)
  local needs
  local Probe = ai.autograd.Function{
    forward = function(ctx, x, y, s) needs = ctx.needs_input_grad return x + y end,
    backward = function(ctx, g) return g, g end,
  }
  Probe(a, ai.ones(3, {dtype = "f64"}), "s")
  T.eq(needs, {true, false, false})
end)

T.test("a Lua error in backward ends the backward with its message", function()
  local Bad = ai.autograd.Function{forward = function(ctx, x) return x * 2 end, backward = function(ctx, g) error("oops") end}
  T.expect_error("backward: .*oops", function() Bad(ai.ones(2, {requires_grad = true})):sum():backward() end)
  local Wrong = ai.autograd.Function{forward = function(ctx, x) return x * 2 end, backward = function(ctx, g) return "g" end}
  T.expect_error("the gradient of argument 1 is a string", function() Wrong(ai.ones(2, {requires_grad = true})):sum():backward() end)
  T.expect_error("autograd.Function: 'backward' must be a function", ai.autograd.Function, {forward = print})
  T.expect_error("unknown option 'backwards'", ai.autograd.Function, {forward = print, backward = print, backwards = 1})
  T.expect_error("save_for_backward: argument 1 is a number", function()
    ai.autograd.Function{forward = function(ctx, x) ctx:save_for_backward(3) return x end, backward = print}(ai.ones(1))
  end)
end)

T.test("register_hook sees a leaf's whole gradient and may replace it", function()
  local w = ai.ones(3, {requires_grad = true})
  local calls = 0
  w:register_hook(function(g) calls = calls + 1 return g * 10 end)
  local y = w * 2 + w * 3 -- two contributions: the hook sees their sum once
  y:sum():backward()
  T.eq(calls, 1)
  T.eq(w.grad:tolist(), {50, 50, 50})
  T.expect_error("the hook returned a tensor of shape 2 for a gradient of shape 3", function()
    local v = ai.ones(3, {requires_grad = true})
    v:register_hook(function() return ai.ones(2) end)
    v:sum():backward()
  end)
  T.expect_error("register_hook: the tensor does not require grad", function() ai.ones(2):register_hook(print) end)
  local z = ai.ones(2, {requires_grad = true})
  z:register_hook(function(g) return g * 2 end)
  T.eq(ai.grad(z:sum(), z):tolist(), {2, 2}, "ai.grad runs the hooks too")
end)

T.test("hooks and retain_grad on non-leaf tensors", function()
  local x = ai.ones(3, {requires_grad = true})
  local h = x * 3
  h:retain_grad()
  local seen
  h:register_hook(function(g) seen = g:clone() return g * 0.5 end)
  ;(h * h):sum():backward()
  T.eq(seen:tolist(), {6, 6, 6}, "the gradient w.r.t. h")
  T.eq(h.grad:tolist(), {6, 6, 6}, "retained")
  T.eq(x.grad:tolist(), {9, 9, 9}, "the hook's replacement (half) flows on: 0.5 * 6 * 3")
  local k = x * 2
  k:retain_grad()
  local out = (k * 1):sum() -- keeps k's node alive after k itself is gone
  k = nil
  collectgarbage()
  out:backward() -- must not write into the freed k (make asan checks it)
  T.eq(x.grad:tolist(), {11, 11, 11})
end)
