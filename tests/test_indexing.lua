-- tests/test_indexing.lua: indexing with tensors, as PyTorch's advanced indexing with 1-based
-- positions: i64 index tensors gather (with gradient; repeated positions accumulate), masks
-- select, several index tensors broadcast together, assignment scatters.
local T = require "helper"
local ai = require "aiart"

local function L(t) return ai.tensor(t, {dtype = "i64"}) end

T.test("an i64 tensor index gathers rows, in any position of the index table", function()
  local a = ai.arange(1, 13):view(3, 4)
  T.eq(a[L{3, 1, 3}]:tolist(), {{9, 10, 11, 12}, {1, 2, 3, 4}, {9, 10, 11, 12}})
  T.eq(a[{{}, L{3, 1, 3}}]:tolist(), {{3, 1, 3}, {7, 5, 7}, {11, 9, 11}})
  T.eq(a[{2, L{4, 1}}]:tolist(), {8, 5}, "mixed with an integer")
  T.eq(a[{{2, 3}, L{-1}}]:tolist(), {{8}, {12}}, "with a range; -1 is the last, as for integers")
  T.eq(a[{{}, L{{1, 2}, {3, 4}}}].shape, {3, 2, 2}, "an index's shape replaces the dim")
  T.eq(a[L{}]:numel(), 0, "an empty index")
end)

T.test("several index tensors broadcast together and pick elements (PyTorch's rules)", function()
  local a = ai.arange(1, 13):view(3, 4)
  T.eq(a[{L{1, 2, 3}, L{1, 2, 4}}]:tolist(), {1, 6, 12}, "pairs")
  T.eq(a[{L{{1}, {3}}, L{2, 4}}]:tolist(), {{2, 4}, {10, 12}}, "broadcast 2x1 with 2")
  local b = ai.arange(1, 25):view(2, 3, 4)
  T.eq(b[{L{1, 2}, {}, L{1, 4}}].shape, {2, 3}, "apart: the index dims come first")
  T.eq(b[{L{1, 2}, {}, L{1, 4}}]:tolist(), {{1, 5, 9}, {16, 20, 24}})
  T.eq(b[{{}, L{1, 3}, L{2, 2}}].shape, {2, 2}, "adjacent: they stay in place")
  T.expect_error("the index tensors do not broadcast together", function() return a[{L{1, 2}, L{1, 2, 3}}] end)
end)

T.test("masks select inside an index table and whole", function()
  local a = ai.arange(1, 13):view(3, 4)
  T.eq(a[a:gt(9)]:tolist(), {10, 11, 12})
  T.eq(a[{ai.tensor{true, false, true}, {2, 3}}]:tolist(), {{2, 3}, {10, 11}})
  T.expect_error("does not fit the dims it indexes", function() return a[{ai.tensor{true, false}}] end)
end)

T.test("gathering is differentiable: repeated positions accumulate", function()
  local x = ai.randn(5, {dtype = "f64", requires_grad = true})
  x[L{2, 2, 5}]:sum():backward()
  T.eq(x.grad:tolist(), {0, 2, 0, 0, 1})
  local w = ai.randn(3, 4, {dtype = "f64", requires_grad = true})
  T.ok(ai.gradcheck(function(m) return m[{L{3, 1, 3}, L{2, 2, 4}}] * 2 end, {w}))
end)

T.test("assignment through index tensors scatters; a position named twice takes its last value", function()
  local z = ai.zeros(3, 4)
  z[{{}, L{2, 4}}] = 7
  T.eq(z:tolist(), {{0, 7, 0, 7}, {0, 7, 0, 7}, {0, 7, 0, 7}})
  z[L{1, 1}] = ai.tensor{{1, 2, 3, 4}, {5, 6, 7, 8}}
  T.eq(z[1]:tolist(), {5, 6, 7, 8}, "the last of the repeated rows")
  z[{L{1, 3}, L{1, 1}}] = ai.tensor{-1, -2}
  T.eq(z:tolist(), {{-1, 6, 7, 8}, {0, 7, 0, 7}, {-2, 7, 0, 7}})
  local i = ai.zeros(4, {dtype = "i64"})
  i[L{2, 3}] = math.maxinteger
  T.eq(i:tolist(), {0, math.maxinteger, math.maxinteger, 0}, "integers stay exact")
  T.expect_error("0.5 is not a whole number", function() i[L{1}] = 0.5 end)
  T.expect_error("does not broadcast to the indexed shape", function() z[L{1, 2}] = ai.ones(3) end)
  T.expect_error("in-place change of a tensor that requires grad", function()
    local w = ai.ones(3, {requires_grad = true})
    w[L{1}] = 2
  end)
end)

T.test("index tensors are checked: 1-based, in range, i64 or u8", function()
  local a = ai.zeros(3, 4)
  T.expect_error("index 1 holds 0; indices are 1-based", function() return a[L{0}] end)
  T.expect_error("holds 4, out of range for a dimension of size 3", function() return a[L{4}] end)
  T.expect_error("index tensors are i64 (positions) or u8 (masks)", function() return a[ai.tensor{1.0}] end)
  T.expect_error("too many indices", function() return a[{1, 1, L{1}}] end)
end)

T.test("the survey's DDPM forward process, ported: sqrt_ac[t] gathers one coefficient per sample", function()
  -- shared/seeds, section 3.2.1, with 1-based t
  local function forward_diffusion(x, t, betas)
    local alphas = 1 - betas
    local alphas_cumprod = alphas:cumprod(1)
    local sqrt_alphas_cumprod = alphas_cumprod:sqrt()
    local sqrt_one_minus_alphas_cumprod = (1 - alphas_cumprod):sqrt()
    local noise = ai.randn_like(x)
    local x_t = sqrt_alphas_cumprod[t]:view(-1, 1, 1, 1) * x + sqrt_one_minus_alphas_cumprod[t]:view(-1, 1, 1, 1) * noise
    return x_t, noise
  end
  local timesteps = 1000
  local betas = ai.linspace(0.0001, 0.02, timesteps)
  local x = ai.randn(4, 1, 8, 8)
  local t = ai.randint(1, timesteps, 4)
  t[1] = 1
  t[2] = timesteps
  ai.manual_seed(3)
  local x_t, noise = forward_diffusion(x, t, betas)
  T.eq(x_t.shape, {4, 1, 8, 8})
  -- sample 1 is at the first step (almost clean), sample 2 at the last (almost pure noise)
  local ac = (1 - betas):cumprod(1)
  T.near(x_t[1], x[1] * math.sqrt(ac[1]:item()) + noise[1] * math.sqrt(1 - ac[1]:item()), 1e-5)
  T.near(x_t[2], x[2] * math.sqrt(ac[timesteps]:item()) + noise[2] * math.sqrt(1 - ac[timesteps]:item()), 1e-5)
end)

T.test("advanced indexing matches PyTorch's results (tests/parity)", function()
  local P = ai.json.decode(T.readfile("tests/parity/parity.json")).indexing
  local a = ai.arange(1, 25):view(2, 3, 4)
  T.eq(a[L{2, 1, 2}]:tolist(), P.rows)
  T.eq(a[{L{1, 2}, L{3, 1}, L{4, 2}}]:tolist(), P.pairs)
  T.eq(a[{L{1, 2}, {}, L{1, 4}}]:tolist(), P.apart)
  T.eq(a[{{}, L{1, 3}, L{2, 2}}]:tolist(), P.adjacent)
  T.eq(a[{L{{1}, {2}}, L{1, 3}}]:tolist(), P.broadcast)
  T.eq(a[{ai.tensor{true, false}, {2, 3}}]:tolist(), P.mask_range)
  local w = ai.arange(0, 12, {dtype = "f64"}):view(3, 4)
  w.requires_grad = true
  (w[{L{3, 1, 3}, L{2, 2, 4}}] * ai.tensor({1, 2, 3}, {dtype = "f64"})):sum():backward()
  T.eq(w.grad:tolist(), P.grad)
end)
