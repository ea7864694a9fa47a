-- tests/test_autograd_gradcheck.lua: a numerical gradient check (ai.gradcheck, f64) of every
-- differentiable op and option, second derivatives (ai.gradgradcheck), first gradients with
-- and without create_graph, and gradients at special points.
-- Run alone: ./aiart-lua tests/run.lua test_autograd_gradcheck
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"

local test, near, ok, expect_error = T.test, T.near, T.ok, T.expect_error
local ser, eq, numel, nest = T.show, T.eq, T.numel, T.nest  -- shared helpers (tests/helper.lua)

local count_errors = T.count_error_cases()

---------------------------------------------------------------------------- helpers

local seed_counter = 0
-- values in [lo, hi]; with away = true, magnitudes in [lo, hi] with random signs
local function values(n, lo, hi, away)
  seed_counter = seed_counter + 1
  math.randomseed(1000 + seed_counter)
  local v = {}
  for i = 1, n do
    local x = lo + (hi - lo) * math.random()
    if away and math.random() < 0.5 then x = -x end
    v[i] = x
  end
  return v
end

-- a f64 leaf that requires grad
local function P(shape, lo, hi, away)
  local v = values(numel(shape), lo or -1.5, hi or 1.5, away)
  return ai.tensor(#shape == 0 and v[1] or nest(v, shape), {dtype = "f64", requires_grad = true})
end
-- a f64 constant
local function C(shape, lo, hi, away)
  local v = values(numel(shape), lo or -1.5, hi or 1.5, away)
  return ai.tensor(#shape == 0 and v[1] or nest(v, shape), {dtype = "f64"})
end
local function L(t) return ai.tensor(t, {dtype = "i64"}) end

local function gc(f, inputs, opts, what)
  local okc, res, msg = pcall(ai.gradcheck, f, inputs, opts)
  if not okc then error((what and what .. ": " or "") .. tostring(res), 2) end
  if res ~= true then error((what and what .. ": " or "") .. tostring(msg), 2) end
end

local function ggc(f, inputs, opts, what)
  local okc, res, msg = pcall(ai.gradgradcheck, f, inputs, opts)
  if not okc then error((what and what .. ": " or "") .. tostring(res), 2) end
  if res ~= true then error((what and what .. ": " or "") .. tostring(msg), 2) end
end

---------------------------------------------------------------------------- gradcheck: elementwise

test("gradcheck reports a wrong gradient (the checker itself works)", function()
  local x = P({3})
  local okr, msg = ai.gradcheck(function(t) return t * 2 end, {x}, {raise = false})
  eq(okr, true, tostring(msg))
  -- detach() hides the dependence: the numerical gradient is not zero, the analytic one is
  local bad = ai.gradcheck(function(t) return t * 2 + t:detach() * t:detach() end, {x}, {raise = false})
  eq(bad, false)
  expect_error("gradcheck needs f64 inputs", function() ai.gradcheck(function(t) return t * 2 end, {ai.ones(2, {requires_grad = true})}) end)
end)

local function num_or(x, y) return x ~= nil and x or y end

-- name, fn(a, b), a range, b range (away from 0 when flagged)
local binary_grad = {
  {"add", function(a, b) return a + b end},
  {"sub", function(a, b) return a - b end},
  {"mul", function(a, b) return a * b end},
  {"div", function(a, b) return a / b end, nil, {0.5, 2, true}},
  {"pow", function(a, b) return a ^ b end, {0.5, 2}, {-1.5, 1.5}},
  {"remainder", function(a, b) return ai.remainder(a, b) end, {0.1, 3}, {0.7, 1.3, true}},
  {"maximum", ai.maximum},
  {"minimum", ai.minimum},
  {"atan2", ai.atan2, {0.3, 2, true}, {0.3, 2, true}},
}
local bpatterns = {{{3, 1}, {1, 4}}, {{2, 3}, {3}}, {{2, 3}, {}}, {{}, {2, 2}}, {{2, 3}, {2, 3}}}

for _, c in ipairs(binary_grad) do
  local name, f, ar, br = c[1], c[2], c[3] or {-1.5, 1.5}, c[4] or {-1.5, 1.5}
  test("gradcheck " .. name .. " with broadcasting (3,1)x(1,4), (2,3)x(3), scalar, and a number", function()
    for _, sp in ipairs(bpatterns) do
      local a = P(sp[1], ar[1], ar[2], ar[3])
      local b = P(sp[2], br[1], br[2], br[3])
      gc(f, {a, b}, nil, name .. " " .. ser(sp))
    end
    -- only one side requires grad, and tensor-number
    gc(f, {P({2, 2}, ar[1], ar[2], ar[3]), C({2, 2}, br[1], br[2], br[3])}, nil, name .. " rhs constant")
    gc(f, {C({2, 2}, ar[1], ar[2], ar[3]), P({2, 2}, br[1], br[2], br[3])}, nil, name .. " lhs constant")
    local bn = num_or(br[3] and br[2], 0.5 * (br[1] + br[2]))
    if name ~= "atan2" then
      gc(function(a) return f(a, 1.25) end, {P({3}, ar[1], ar[2], ar[3])}, nil, name .. " tensor-number")
    end
    gc(function(b) return f(ar[3] and ar[2] or 1.25, b) end, {P({3}, br[1], br[2], br[3])}, nil, name .. " number-tensor")
    local _ = bn
  end)
end

local unary_grad = {
  {"neg"}, {"abs", 0.2, 2, true}, {"exp"}, {"log", 0.2, 3}, {"log1p", -0.5, 2}, {"expm1"},
  {"sqrt", 0.2, 3}, {"rsqrt", 0.2, 3}, {"sin"}, {"cos"}, {"tanh"}, {"sigmoid"}, {"relu", 0.2, 2, true},
  {"silu"}, {"gelu"}, {"reciprocal", 0.3, 2, true}, {"square"}, {"log2", 0.2, 3}, {"erf"},
  {"leaky_relu", 0.2, 2, true}, {"softplus"},
}

for _, c in ipairs(unary_grad) do
  local name, lo, hi, away = c[1], c[2], c[3], c[4]
  test("gradcheck " .. name, function()
    gc(function(x) return x[name](x) end, {P({2, 3}, lo, hi, away)}, nil, name)
    gc(function(x) return ai[name](x:t()) end, {P({3, 2}, lo, hi, away)}, nil, name .. " transposed")
  end)
end

test("gradcheck leaky_relu slope, softplus beta/threshold, clamp bounds", function()
  gc(function(x) return x:leaky_relu(0.2) end, {P({5}, 0.2, 2, true)})
  gc(function(x) return ai.leaky_relu(x, {negative_slope = -0.5}) end, {P({5}, 0.2, 2, true)})
  gc(function(x) return x:softplus{beta = 2, threshold = 1} end, {P({6}, -2, 2)})
  gc(function(x) return x:softplus(0.5) end, {P({6}, -3, 3)})
  local x = ai.tensor({-2, -0.7, -0.3, 0.2, 0.6, 1.8}, {dtype = "f64", requires_grad = true})
  gc(function(t) return t:clamp(-0.5, 0.5) end, {x})
  gc(function(t) return t:clamp{min = 0} end, {x})
  gc(function(t) return t:clamp{max = 0} end, {x})
  -- the gradient is 1 inside the bounds and 0 outside
  x:clamp(-0.5, 0.5):sum():backward()
  eq(x.grad:tolist(), {0, 0, 1, 1, 0, 0})
end)

test("gradcheck where and masked_fill (with broadcasting)", function()
  local cond = ai.tensor{{true, false, true}, {false, false, true}}
  gc(function(a, b) return ai.where(cond, a, b) end, {P({2, 3}), P({2, 3})})
  gc(function(a, b) return ai.where(cond, a, b) end, {P({3}), P({2, 1})})
  gc(function(a) return ai.where(cond, a, 0) end, {P({2, 3})})
  gc(function(b) return ai.where(cond, 1.5, b) end, {P({1, 3})})
  gc(function(a) return a:masked_fill(cond, 2) end, {P({2, 3})})
  gc(function(a) return a:masked_fill(ai.tensor{true, false, false}, -1) end, {P({2, 3})})
end)

test("gradcheck a composite expression (x*y + sin(x)/y)^2", function()
  gc(function(x, y) return (x * y + x:sin() / y) ^ 2 end, {P({2, 2}), P({2, 2}, 0.5, 2, true)})
end)

---------------------------------------------------------------------------- gradcheck: reductions

local red_grad = {
  {"sum", function(x, d, o) return x:sum(d, o) end},
  {"mean", function(x, d, o) return x:mean(d, o) end},
  {"prod", function(x, d, o) return x:prod(d, o) end, true},
  {"amax", function(x, d, o) return x:amax(d, o) end},
  {"amin", function(x, d, o) return x:amin(d, o) end},
  {"logsumexp", function(x, d, o) return x:logsumexp(d, o) end},
  {"var", function(x, d, o) return x:var(d, o) end},
  {"var unbiased=false", function(x, d, o) return x:var(d, {unbiased = false, keepdim = o and o.keepdim}) end},
  {"std", function(x, d, o) return x:std(d, o) end},
  {"std unbiased=false", function(x, d, o) return x:std(d, {unbiased = false, keepdim = o and o.keepdim}) end},
  {"norm 2", function(x, d, o) return x:norm(2, d, o) end},
  {"norm 1", function(x, d, o) return x:norm(1, d, o) end, true},
  {"norm inf", function(x, d, o) return x:norm("inf", d, o) end, true},
  {"norm 3", function(x, d, o) return x:norm(3, d, o) end, true},
}

for _, c in ipairs(red_grad) do
  local name, f, away = c[1], c[2], c[3]
  test("gradcheck " .. name .. " over all, each dim, keepdim, and two dims", function()
    local function x() return P({2, 3, 4}, away and 0.3 or -1.5, 1.5, away) end
    gc(function(t) return f(t) end, {x()}, nil, name .. " all")
    gc(function(t) return f(t, nil, {keepdim = true}) end, {x()}, nil, name .. " all keepdim")
    for d = 1, 3 do
      gc(function(t) return f(t, d) end, {x()}, nil, name .. " dim " .. d)
      gc(function(t) return f(t, d, {keepdim = false}) end, {x()}, nil, name .. " dim " .. d .. " keepdim=false")
    end
    gc(function(t) return f(t, {1, 3}) end, {x()}, nil, name .. " dims {1,3}")
    gc(function(t) return f(t:permute(3, 1, 2), 2, {keepdim = false}) end, {x()}, nil, name .. " permuted input")
  end)
end

test("gradcheck max/min with a dim (values) and without", function()
  for d = 1, 3 do
    gc(function(t) return (t:max(d)) end, {P({2, 3, 4})}, nil, "max dim " .. d)
    gc(function(t) return (t:min(d, {keepdim = false})) end, {P({2, 3, 4})}, nil, "min dim " .. d)
  end
  gc(function(t) return t:max() end, {P({3, 4})}, nil, "max all")
  gc(function(t) return t:min() end, {P({3, 4})}, nil, "min all")
  -- the gradient goes to the arg max only
  local x = ai.tensor({{1, 5, 2}, {7, 0, 3}}, {dtype = "f64", requires_grad = true})
  local v = x:max(2)
  v:sum():backward()
  eq(x.grad:tolist(), {{0, 1, 0}, {1, 0, 0}})
end)

test("gradcheck cumsum and cumprod along each dim", function()
  for d = 1, 3 do
    gc(function(t) return t:cumsum(d) end, {P({2, 3, 4})}, nil, "cumsum " .. d)
    gc(function(t) return t:cumprod(d) end, {P({2, 3, 4}, 0.5, 1.5, true)}, nil, "cumprod " .. d)
  end
  gc(function(t) return t:t():cumsum(1) end, {P({3, 4})}, nil, "cumsum transposed")
end)

---------------------------------------------------------------------------- gradcheck: matmul

test("gradcheck matmul for every shape case", function()
  local cases = {
    {{3}, {3}}, {{2, 3}, {3}}, {{3}, {3, 2}}, {{2, 3}, {3, 4}}, {{2, 2, 3}, {2, 3, 2}},
    {{2, 2, 3}, {3, 2}}, {{2, 3}, {2, 3, 2}}, {{2, 1, 2, 3}, {2, 3, 2}}, {{2, 2, 3}, {3}}, {{3}, {2, 3, 2}},
  }
  for _, c in ipairs(cases) do gc(ai.matmul, {P(c[1]), P(c[2])}, nil, "matmul " .. ser(c)) end
  gc(function(a, b) return ai.matmul(a:t(), b:t()) end, {P({3, 2}), P({4, 3})}, nil, "transposed operands")
  gc(function(a, b) return ai.mm(a, b) end, {P({2, 3}), P({3, 2})}, nil, "mm")
  gc(function(a, b) return ai.bmm(a, b) end, {P({2, 2, 3}), P({2, 3, 2})}, nil, "bmm")
  gc(function(a, b) return ai.dot(a, b) end, {P({4}), P({4})}, nil, "dot")
  local rhs = C({3, 2})
  gc(function(a) return ai.matmul(a, rhs) end, {P({2, 3})}, nil, "constant rhs")
end)

---------------------------------------------------------------------------- gradcheck: views

test("gradcheck views: view reshape permute transpose t narrow select slice expand squeeze unsqueeze flatten", function()
  local function x() return P({2, 3, 4}) end
  gc(function(t) return t:view(6, 4) end, {x()}, nil, "view")
  gc(function(t) return t:view(-1) end, {x()}, nil, "view -1")
  gc(function(t) return t:reshape(4, 6) end, {x()}, nil, "reshape")
  gc(function(t) return t:permute(2, 3, 1):reshape(12, 2) end, {x()}, nil, "reshape of permuted (copy)")
  gc(function(t) return t:permute(3, 1, 2) end, {x()}, nil, "permute")
  gc(function(t) return t:transpose(1, 3) end, {x()}, nil, "transpose")
  gc(function(t) return t[1]:t() end, {x()}, nil, "t")
  gc(function(t) return t.T end, {P({3, 2})}, nil, "T")
  gc(function(t) return t:narrow(3, 2, 2) end, {x()}, nil, "narrow")
  gc(function(t) return t:select(2, 2) end, {x()}, nil, "select")
  gc(function(t) return t:select(3, -1) end, {x()}, nil, "select negative")
  gc(function(t) return t:slice(3, 1, 4, 2) end, {x()}, nil, "slice step 2")
  gc(function(t) return t:slice(2, 2, 3) end, {x()}, nil, "slice")
  gc(function(t) return t:slice(1, 1, 2):slice(3, 2, 4, 2) end, {x()}, nil, "slices of slices")
  gc(function(t) return t:expand(3, 2, 3) end, {P({2, 1})}, nil, "expand")
  gc(function(t) return t:expand(2, 4, 3) end, {P({3})}, nil, "expand new dim")
  gc(function(t) return t:expand_as(C({2, 3, 2})) end, {P({1, 3, 1})}, nil, "expand_as")
  gc(function(t) return t:squeeze() end, {P({1, 3, 1})}, nil, "squeeze")
  gc(function(t) return t:squeeze(1) end, {P({1, 3, 1})}, nil, "squeeze dim")
  gc(function(t) return t:unsqueeze(2) end, {P({2, 3})}, nil, "unsqueeze")
  gc(function(t) return t:flatten() end, {x()}, nil, "flatten")
  gc(function(t) return t:flatten(2) end, {x()}, nil, "flatten 2")
  gc(function(t) return t:contiguous() end, {P({3, 2})}, nil, "contiguous")
  gc(function(t) return t:t():contiguous() end, {P({3, 2})}, nil, "contiguous of transposed")
  gc(function(t) return t:clone() end, {x()}, nil, "clone")
  gc(function(t) return t:view_as(C({4, 6})) end, {x()}, nil, "view_as")
end)

test("gradcheck indexing x[i], x[{...}], negative indices, masks", function()
  local function x() return P({2, 3, 4}) end
  gc(function(t) return t[2] end, {x()}, nil, "x[2]")
  gc(function(t) return t[-1] end, {x()}, nil, "x[-1]")
  gc(function(t) return t[{1, 2}] end, {x()}, nil, "x[{1,2}]")
  gc(function(t) return t[{2, 3, 4}] end, {x()}, nil, "x[{2,3,4}] 0-dim")
  gc(function(t) return t[{{}, {2, 3}, {1, 4, 3}}] end, {x()}, nil, "ranges with a step")
  gc(function(t) return t[{-1, {-2, -1}}] end, {x()}, nil, "negative ranges")
  local m = ai.tensor{{true, false, true, false}, {false, false, true, true}, {true, true, true, false}}
  gc(function(t) return t[m] end, {P({3, 4})}, nil, "x[mask]")
  gc(function(t) return ai.masked_select(t, ai.tensor{true, false, true}) end, {P({2, 3})}, nil, "masked_select broadcast mask")
end)

test("gradcheck to dtype f64 -> f32 -> f64", function()
  gc(function(t) return t:float():double() * 3 end, {P({4})}, {eps = 1e-2, atol = 1e-4}, "float/double")
  gc(function(t) return (t:float() * 2) end, {P({4})}, {eps = 1e-2, atol = 1e-4}, "f32 output")
  gc(function(t) return t:to("f32"):to("f64"):sin() end, {P({4})}, {eps = 1e-2, atol = 1e-3, rtol = 1e-2}, "to")
  local x = ai.tensor({1, 2}, {dtype = "f64", requires_grad = true})
  local y = x:float()
  eq(y.dtype, "f32")
  eq(y.requires_grad, true)
  ;(y * ai.tensor{3, 4}):sum():backward()
  eq(x.grad.dtype, "f64")
  eq(x.grad:tolist(), {3, 4})
  local f = ai.tensor({1, 2}, {requires_grad = true})
  ;(f:double() * 2):sum():backward()
  eq(f.grad.dtype, "f32")
  eq(f.grad:tolist(), {2, 2})
end)

---------------------------------------------------------------------------- gradcheck: joining, index ops

test("gradcheck cat, stack, split, chunk", function()
  gc(function(a, b) return ai.cat({a, b}, 1) end, {P({2, 3}), P({1, 3})}, nil, "cat 1")
  gc(function(a, b) return ai.cat({a, b}, 2) end, {P({2, 3}), P({2, 2})}, nil, "cat 2")
  gc(function(a, b, c) return ai.cat({a, b, c}, -1) end, {P({2, 1, 2}), P({2, 1, 1}), P({2, 1, 3})}, nil, "cat 3 tensors")
  gc(function(a, b) return ai.cat({a:t(), b}, 1) end, {P({3, 2}), P({1, 3})}, nil, "cat non-contiguous")
  gc(function(a, b) return ai.stack({a, b}, 1) end, {P({2, 3}), P({2, 3})}, nil, "stack 1")
  gc(function(a, b) return ai.stack({a, b}, 3) end, {P({2, 3}), P({2, 3})}, nil, "stack 3")
  gc(function(a) return ai.split(a, 2, 2) end, {P({2, 5})}, nil, "split size")
  gc(function(a) return ai.split(a, {1, 3}, 1) end, {P({4, 2})}, nil, "split sizes")
  gc(function(a) local p = ai.split(a, 2, 2); return p[2] * p[1] end, {P({3, 4})}, nil, "pieces combined")
  gc(function(a) return ai.chunk(a, 3, 1) end, {P({6, 2})}, nil, "chunk")
  gc(function(a) return {ai.chunk(a, 2, 2)[2]} end, {P({2, 4})}, nil, "one chunk used")
end)

test("gradcheck index_select, gather, scatter, scatter_add, index_add", function()
  gc(function(t) return ai.index_select(t, 1, {3, 1, 3}) end, {P({3, 4})}, nil, "index_select 1 (repeats)")
  gc(function(t) return ai.index_select(t, 2, L{2, 4}) end, {P({3, 4})}, nil, "index_select 2")
  gc(function(t) return ai.gather(t, 1, L{{1, 3, 2, 1}, {3, 3, 1, 2}}) end, {P({3, 4})}, nil, "gather 1")
  gc(function(t) return t:gather(2, L{{4, 4}, {1, 2}, {3, 1}}) end, {P({3, 4})}, nil, "gather 2 (repeats)")
  local ix = L{{3, 1, 2, 3}, {1, 2, 3, 1}} -- no two sources land on the same place
  gc(function(t, s) return ai.scatter(t, 1, ix, s) end, {P({3, 4}), P({2, 4})}, nil, "scatter")
  gc(function(t, s) return ai.scatter(t, 2, L{{2}, {4}, {1}}, s) end, {P({3, 4}), P({3, 1})}, nil, "scatter 2")
  local ixa = L{{1, 1, 2, 3}, {1, 1, 2, 3}}
  gc(function(t, s) return ai.scatter_add(t, 1, ixa, s) end, {P({3, 4}), P({2, 4})}, nil, "scatter_add")
  gc(function(t, s) return ai.index_add(t, 1, {2, 4, 2}, s) end, {P({4, 2}), P({3, 2})}, nil, "index_add")
end)

---------------------------------------------------------------------------- gradcheck: nn ops

test("gradcheck linear with and without bias", function()
  gc(ai.linear, {P({3, 4}), P({2, 4}), P({2})}, nil, "linear bias")
  gc(function(x, w) return ai.linear(x, w) end, {P({3, 4}), P({2, 4})}, nil, "linear no bias")
  gc(ai.linear, {P({2, 2, 3}), P({2, 3}), P({2})}, nil, "linear 3-D input")
  gc(function(x, w) return ai.linear(x, w) end, {P({3}), P({2, 3})}, nil, "linear 1-D input")
end)

test("gradcheck conv2d: stride, padding, dilation, groups, bias", function()
  gc(function(x, w, b) return ai.conv2d(x, w, b) end, {P({1, 2, 4, 4}), P({2, 2, 3, 3}), P({2})}, nil, "plain")
  gc(function(x, w) return ai.conv2d(x, w, {stride = 2, padding = 1}) end, {P({1, 2, 5, 5}), P({2, 2, 3, 3})}, nil, "stride 2 padding 1")
  gc(function(x, w) return ai.conv2d(x, w, {dilation = 2, padding = {1, 2}}) end, {P({1, 1, 5, 5}), P({2, 1, 2, 2})}, nil, "dilation")
  gc(function(x, w, b) return ai.conv2d(x, w, b, {groups = 2, stride = {1, 2}}) end,
     {P({2, 4, 4, 4}), P({2, 2, 2, 2}), P({2})}, nil, "groups 2, stride (1,2)")
  gc(function(x, w) return ai.conv2d(x, w, nil, {groups = 2}) end, {P({1, 2, 3, 3}), P({4, 1, 2, 2})}, nil, "depthwise x2")
  gc(function(x, w) return ai.conv2d(x, w, {padding = {0, 1}, stride = {2, 1}, dilation = {1, 2}}) end,
     {P({1, 1, 5, 4}), P({1, 1, 2, 2})}, nil, "asymmetric")
end)

test("gradcheck conv_transpose2d: stride, padding, output_padding, groups, bias", function()
  gc(function(x, w, b) return ai.conv_transpose2d(x, w, b) end, {P({1, 2, 3, 3}), P({2, 3, 2, 2}), P({3})}, nil, "plain")
  gc(function(x, w) return ai.conv_transpose2d(x, w, {stride = 2}) end, {P({1, 2, 2, 3}), P({2, 1, 3, 3})}, nil, "stride 2")
  gc(function(x, w) return ai.conv_transpose2d(x, w, {stride = 2, padding = 1, output_padding = 1}) end,
     {P({1, 1, 3, 3}), P({1, 2, 3, 3})}, nil, "output_padding")
  gc(function(x, w, b) return ai.conv_transpose2d(x, w, b, {groups = 2, stride = {2, 1}}) end,
     {P({1, 4, 2, 2}), P({4, 1, 2, 2}), P({2})}, nil, "groups 2")
  gc(function(x, w) return ai.conv_transpose2d(x, w, {dilation = 2, padding = 1}) end, {P({1, 1, 3, 3}), P({1, 1, 2, 2})}, nil, "dilation")
end)

test("gradcheck max_pool2d, avg_pool2d (ceil_mode, count_include_pad), adaptive_avg_pool2d", function()
  local function x(h, w) return P({1, 2, h or 5, w or 5}) end
  gc(function(t) return ai.max_pool2d(t, 2) end, {x(4, 4)}, nil, "max 2")
  gc(function(t) return ai.max_pool2d(t, 3, {stride = 2, padding = 1}) end, {x()}, nil, "max stride padding")
  gc(function(t) return ai.max_pool2d(t, 2, {ceil_mode = true}) end, {x()}, nil, "max ceil_mode")
  gc(function(t) return ai.max_pool2d(t, 2, {dilation = 2, stride = 1}) end, {x()}, nil, "max dilation")
  gc(function(t) return ai.avg_pool2d(t, 2) end, {x(4, 4)}, nil, "avg 2")
  gc(function(t) return ai.avg_pool2d(t, 3, {stride = 2, padding = 1}) end, {x()}, nil, "avg padding")
  gc(function(t) return ai.avg_pool2d(t, 3, {stride = 2, padding = 1, count_include_pad = false}) end, {x()}, nil, "avg no pad count")
  gc(function(t) return ai.avg_pool2d(t, 2, {ceil_mode = true}) end, {x()}, nil, "avg ceil_mode")
  gc(function(t) return ai.avg_pool2d(t, {2, 3}, {stride = {1, 2}, ceil_mode = true, count_include_pad = false}) end, {x()}, nil, "avg rect")
  gc(function(t) return ai.adaptive_avg_pool2d(t, 3) end, {x()}, nil, "adaptive 5->3")
  gc(function(t) return ai.adaptive_avg_pool2d(t, {2, 4}) end, {x(5, 3)}, nil, "adaptive (2,4) from 5x3")
  gc(function(t) return ai.adaptive_avg_pool2d(t, 1) end, {x()}, nil, "global")
end)

test("gradcheck upsample nearest and bilinear (align_corners both), pad modes", function()
  local function x() return P({1, 2, 3, 3}) end
  gc(function(t) return ai.upsample(t, {scale_factor = 2}) end, {x()}, nil, "nearest x2")
  gc(function(t) return ai.upsample(t, {size = {5, 4}}) end, {x()}, nil, "nearest size")
  gc(function(t) return ai.upsample(t, {size = {2, 2}}) end, {x()}, nil, "nearest down")
  gc(function(t) return ai.upsample(t, {scale_factor = 2, mode = "bilinear"}) end, {x()}, nil, "bilinear")
  gc(function(t) return ai.upsample(t, {size = {5, 4}, mode = "bilinear", align_corners = true}) end, {x()}, nil, "bilinear ac")
  gc(function(t) return ai.upsample(t, {size = {4, 5}, mode = "bilinear", align_corners = false}) end, {x()}, nil, "bilinear size")
  gc(function(t) return ai.interpolate(t, {scale_factor = {1.5, 2}, mode = "bilinear"}) end, {x()}, nil, "interpolate")
  gc(function(t) return ai.pad(t, {1, 2, 0, 1}) end, {x()}, nil, "constant")
  gc(function(t) return ai.pad(t, {1, 1, 2, 0}, {value = 3}) end, {x()}, nil, "constant value")
  gc(function(t) return ai.pad(t, {1, 2}, {mode = "constant"}) end, {P({2, 3})}, nil, "constant last dim of 2-D")
  gc(function(t) return ai.pad(t, {2, 1, 1, 2}, {mode = "reflect"}) end, {x()}, nil, "reflect")
  gc(function(t) return ai.pad(t, {2, 3, 1, 2}, {mode = "replicate"}) end, {x()}, nil, "replicate")
end)

test("gradcheck batch_norm training (weight/bias), group_norm, layer_norm, instance_norm", function()
  local rm = ai.zeros({3}, {dtype = "f64"})
  local rv = ai.ones({3}, {dtype = "f64"})
  gc(function(x, w, b) return ai.batch_norm(x, rm, rv, w, b, {training = true}) end,
     {P({4, 3}), P({3}), P({3})}, nil, "bn training 2-D")
  gc(function(x, w, b) return ai.batch_norm(x, nil, nil, w, b, {training = true}) end,
     {P({2, 3, 2, 2}), P({3}), P({3})}, nil, "bn training 4-D, no running stats")
  gc(function(x) return ai.batch_norm(x, nil, nil, nil, nil, {training = true, eps = 1e-3}) end,
     {P({2, 3, 3})}, nil, "bn training no affine")
  gc(function(x, w, b) return ai.group_norm(x, 2, w, b) end, {P({2, 4, 2, 2}), P({4}), P({4})}, nil, "group_norm")
  gc(function(x) return ai.group_norm(x, 1) end, {P({2, 3, 3})}, nil, "group_norm 1 group")
  gc(function(x, w, b) return ai.layer_norm(x, 4, w, b) end, {P({2, 3, 4}), P({4}), P({4})}, nil, "layer_norm last")
  gc(function(x, w, b) return ai.layer_norm(x, {3, 4}, w, b) end, {P({2, 3, 4}), P({3, 4}), P({3, 4})}, nil, "layer_norm 2 dims")
  gc(function(x) return ai.layer_norm(x, 4) end, {P({3, 4})}, nil, "layer_norm no affine")
  gc(function(x, w, b) return ai.instance_norm(x, w, b) end, {P({2, 2, 2, 3}), P({2}), P({2})}, nil, "instance_norm")
  gc(function(x) return ai.instance_norm(x) end, {P({1, 2, 5})}, nil, "instance_norm 3-D")
end)

test("gradcheck batch_norm in eval mode (running statistics)", function()
  local erm = ai.tensor({0.1, -0.2, 0.3}, {dtype = "f64"})
  local erv = ai.tensor({0.5, 1.5, 2}, {dtype = "f64"})
  gc(function(x, w, b) return ai.batch_norm(x, erm, erv, w, b, {training = false}) end,
     {P({2, 3, 2, 2}), P({3}), P({3})}, nil, "bn eval")
end)

test("gradcheck softmax and log_softmax along each dim", function()
  for d = 1, 3 do
    gc(function(x) return ai.softmax(x, d) end, {P({2, 3, 4})}, nil, "softmax " .. d)
    gc(function(x) return ai.log_softmax(x, d) end, {P({2, 3, 4})}, nil, "log_softmax " .. d)
  end
  gc(function(x) return x:softmax(-1) end, {P({3, 4})}, nil, "method")
  gc(function(x) return x:t():log_softmax(2) end, {P({3, 4})}, nil, "transposed input")
end)

test("gradcheck dropout (reseeded so the mask is fixed), training off is identity", function()
  gc(function(x) ai.manual_seed(5); return ai.dropout(x, 0.3) end, {P({4, 5})}, nil, "dropout 0.3")
  gc(function(x) ai.manual_seed(6); return ai.dropout(x, 0.5, true) end, {P({10})}, nil, "dropout 0.5")
  gc(function(x) return ai.dropout(x, 0.5, false) end, {P({10})}, nil, "eval")
  -- the gradient is the mask / (1 - p)
  local x = ai.ones(1000, {dtype = "f64", requires_grad = true})
  ai.manual_seed(9)
  local y = ai.dropout(x, 0.25)
  y:sum():backward()
  local yv, gv = y:tolist(), x.grad:tolist()
  for i = 1, 1000 do ok(gv[i] == yv[i] and (gv[i] == 0 or math.abs(gv[i] - 1 / 0.75) < 1e-12)) end
end)

test("gradcheck embedding (weight) and scaled_dot_product_attention (with masks)", function()
  gc(function(w) return ai.embedding(L{{1, 3}, {3, 2}}, w) end, {P({4, 3})}, nil, "embedding")
  gc(ai.scaled_dot_product_attention, {P({2, 3, 4}), P({2, 5, 4}), P({2, 5, 2})}, nil, "attention")
  local m = ai.tensor{{true, true, false, true, false}, {true, false, false, false, false}, {true, true, true, true, true}}
  gc(function(q, k, v) return ai.scaled_dot_product_attention(q, k, v, {mask = m}) end,
     {P({1, 3, 2}), P({1, 5, 2}), P({1, 5, 3})}, nil, "bool mask")
  local fm = C({3, 5}, -1, 1)
  gc(function(q, k, v) return ai.scaled_dot_product_attention(q, k, v, {mask = fm}) end,
     {P({3, 2}), P({5, 2}), P({5, 2})}, nil, "float mask, 2-D")
end)

---------------------------------------------------------------------------- gradcheck: losses

local reductions = {"mean", "sum", "none"}

test("gradcheck mse_loss, l1_loss, smooth_l1_loss with each reduction (grads of input and target)", function()
  for _, r in ipairs(reductions) do
    gc(function(x, y) return ai.mse_loss(x, y, {reduction = r}) end, {P({2, 3}), P({2, 3})}, nil, "mse " .. r)
    -- keep |x - y| away from 0 for l1
    local x = ai.tensor({{0.5, -1, 2}, {1.5, -0.7, 0.3}}, {dtype = "f64", requires_grad = true})
    local y = ai.tensor({{-0.5, 0.2, 1}, {0.2, 0.4, -1.1}}, {dtype = "f64", requires_grad = true})
    gc(function(a, b) return ai.l1_loss(a, b, {reduction = r}) end, {x, y}, nil, "l1 " .. r)
    gc(function(a, b) return ai.smooth_l1_loss(a, b, {reduction = r}) end, {x, y}, nil, "smooth_l1 " .. r)
    gc(function(a, b) return ai.smooth_l1_loss(a, b, {reduction = r, beta = 0.5}) end, {x, y}, nil, "smooth_l1 beta " .. r)
  end
end)

test("gradcheck bce_loss and bce_with_logits (weight, pos_weight) with each reduction", function()
  for _, r in ipairs(reductions) do
    gc(function(p, y) return ai.bce_loss(p, y, {reduction = r}) end, {P({2, 3}, 0.1, 0.9), P({2, 3}, 0, 1)}, nil, "bce " .. r)
    local y, w = C({2, 3}, 0, 1), C({2, 3}, 0.5, 2)
    gc(function(p) return ai.binary_cross_entropy(p, y, {reduction = r, weight = w}) end,
       {P({2, 3}, 0.1, 0.9)}, nil, "bce weight " .. r)
    gc(function(x, y) return ai.bce_with_logits(x, y, {reduction = r}) end, {P({2, 3}, -3, 3), P({2, 3}, 0, 1)}, nil, "bce_with_logits " .. r)
    local pw = C({3}, 0.5, 3)
    gc(function(x) return ai.binary_cross_entropy_with_logits(x, y, {reduction = r, pos_weight = pw}) end,
       {P({2, 3}, -3, 3)}, nil, "bce_with_logits pos_weight " .. r)
  end
end)

test("bce_with_logits with huge logits (+-100) stays finite, with the right gradient", function()
  local x = ai.tensor({100, -100, 100, -100, 50}, {dtype = "f64", requires_grad = true})
  local y = ai.tensor({1, 0, 0, 1, 1}, {dtype = "f64"})
  local l = ai.bce_with_logits(x, y, {reduction = "none"})
  local lv = l:tolist()
  for i, v in ipairs(lv) do ok(v == v and v < math.huge, "loss " .. i .. " finite: " .. v) end
  near(lv, {0, 0, 100, 100, math.log(1 + math.exp(-50))}, 1e-12)
  l:sum():backward()
  local g = x.grad:tolist()
  for i, v in ipairs(g) do ok(v == v and math.abs(v) <= 1, "grad " .. i .. " finite: " .. v) end
  near(g, {0, 0, 1, -1, -1 / (1 + math.exp(50))}, 1e-12) -- sigmoid(x) - y
  local xf = ai.tensor({100, -100}, {requires_grad = true})
  local lf = ai.bce_with_logits(xf, ai.tensor{0, 1}, {reduction = "sum"})
  near(lf:item(), 200, 1e-4)
  lf:backward()
  near(xf.grad:tolist(), {1, -1}, 1e-6)
  local yl = C({4}, 0, 1)
  gc(function(t) return ai.bce_with_logits(t, yl) end,
     {ai.tensor({30, -30, 60, -60}, {dtype = "f64", requires_grad = true})}, nil, "large logits")
end)

test("gradcheck cross_entropy: reductions, label_smoothing, weight, ignore_index, K-dim", function()
  local t = L{1, 3, 2, 3}
  local cw = C({3}, 0.5, 2)
  for _, r in ipairs(reductions) do
    gc(function(x) return ai.cross_entropy(x, t, {reduction = r}) end, {P({4, 3})}, nil, "ce " .. r)
    gc(function(x) return ai.cross_entropy(x, t, {reduction = r, label_smoothing = 0.2}) end, {P({4, 3})}, nil, "ce ls " .. r)
    gc(function(x) return ai.cross_entropy(x, t, {reduction = r, weight = cw}) end, {P({4, 3})}, nil, "ce weight " .. r)
    gc(function(x) return ai.cross_entropy(x, t, {reduction = r, ignore_index = 3}) end, {P({4, 3})}, nil, "ce ignore " .. r)
    gc(function(x) return ai.cross_entropy(x, t, {reduction = r, ignore_index = 3, weight = cw, label_smoothing = 0.1}) end,
       {P({4, 3})}, nil, "ce all options " .. r)
    gc(function(x) return ai.cross_entropy(x, L{{1, 2}, {3, 3}}, {reduction = r}) end, {P({2, 3, 2})}, nil, "ce K-dim " .. r)
  end
end)

test("gradcheck nll_loss and kl_div with each reduction", function()
  local t = L{2, 1, 3}
  local nw = C({3}, 0.5, 2)
  for _, r in ipairs(reductions) do
    gc(function(x) return ai.nll_loss(x, t, {reduction = r}) end, {P({3, 3})}, nil, "nll " .. r)
    gc(function(x) return ai.nll_loss(x, t, {reduction = r, weight = nw, ignore_index = 1}) end, {P({3, 3})}, nil, "nll options " .. r)
    gc(function(x) return ai.nll_loss(x:log_softmax(2), L{{1, 2}, {3, 1}}, {reduction = r}) end, {P({2, 3, 2})}, nil, "nll K-dim " .. r)
  end
  for _, r in ipairs{"mean", "sum", "none", "batchmean"} do
    gc(function(x, y) return ai.kl_div(x, y, {reduction = r}) end, {P({2, 3}, -2, 0), P({2, 3}, 0.1, 1)}, nil, "kl " .. r)
    gc(function(x, y) return ai.kl_div(x, y, {reduction = r, log_target = true}) end, {P({2, 3}, -2, 0), P({2, 3}, -2, 0)}, nil, "kl log_target " .. r)
  end
  gc(function(x) return ai.kl_div(x, ai.tensor({{0, 0.5, 0.5}}, {dtype = "f64"})) end, {P({1, 3}, -2, 0)}, nil, "kl zero target")
end)

---------------------------------------------------------------------------- gradgradcheck

test("gradgradcheck linear, conv2d, conv_transpose2d", function()
  ggc(ai.linear, {P({2, 3}), P({2, 3}), P({2})}, nil, "linear")
  ggc(function(x, w) return ai.linear(x, w) end, {P({2, 3}), P({2, 3})}, nil, "linear no bias")
  ggc(function(x, w, b) return ai.conv2d(x, w, b, {padding = 1}) end, {P({1, 1, 3, 3}), P({2, 1, 2, 2}), P({2})}, nil, "conv2d")
  ggc(function(x, w) return ai.conv2d(x, w, {stride = 2, groups = 2}) end, {P({1, 2, 4, 4}), P({2, 1, 2, 2})}, nil, "conv2d stride groups")
  ggc(function(x, w, b) return ai.conv_transpose2d(x, w, b, {stride = 2}) end, {P({1, 1, 2, 2}), P({1, 2, 2, 2}), P({2})}, nil, "conv_transpose2d")
end)

test("gradgradcheck elementwise math and activations", function()
  local ops = {
    {"exp"}, {"log", 0.3, 2}, {"sqrt", 0.3, 2}, {"rsqrt", 0.3, 2}, {"sin"}, {"cos"}, {"tanh"}, {"sigmoid"},
    {"silu"}, {"gelu"}, {"reciprocal", 0.3, 2, true}, {"square"}, {"log1p", -0.5, 2}, {"expm1"}, {"erf"},
    {"log2", 0.3, 2}, {"softplus"},
  }
  for _, c in ipairs(ops) do
    ggc(function(x) return x[c[1]](x) end, {P({4}, c[2], c[3], c[4])}, nil, c[1])
  end
  -- piecewise-linear ops have a zero second derivative: check their recorded backward through a product
  for _, name in ipairs{"abs", "relu", "leaky_relu", "neg"} do
    ggc(function(x) return x[name](x) * x end, {P({4}, 0.3, 2, true)}, nil, name .. " * x")
  end
  ggc(function(a, b) return a * b end, {P({3}), P({3})}, nil, "mul")
  ggc(function(a, b) return a / b end, {P({3}), P({3}, 0.5, 2, true)}, nil, "div")
  ggc(function(a, b) return a ^ b end, {P({3}, 0.5, 2), P({3})}, nil, "pow")
  ggc(function(a, b) return ai.atan2(a, b) end, {P({3}, 0.3, 2, true), P({3}, 0.3, 2, true)}, nil, "atan2")
  ggc(function(a) return a:clamp(-0.5, 0.5) * a end, {P({4}, 0.1, 1, true)}, nil, "clamp")
  ggc(function(a, b) return ai.matmul(a, b) end, {P({2, 3}), P({3, 2})}, nil, "matmul")
  ggc(function(a) return ai.softmax(a, 2) end, {P({2, 3})}, nil, "softmax")
  ggc(function(a) return ai.log_softmax(a, 1) end, {P({3, 2})}, nil, "log_softmax")
end)

test("gradgradcheck of a piecewise-linear op (zero second derivative) passes", function()
  -- PyTorch's gradgradcheck passes here; the first gradient of relu/abs does not depend on x
  ggc(function(x) return x:relu() end, {P({4}, 0.3, 2, true)}, nil, "relu")
  ggc(function(x) return x:abs() end, {P({4}, 0.3, 2, true)}, nil, "abs")
end)

test("gradgradcheck sum, mean, and other reductions", function()
  ggc(function(x) return (x * x):sum() end, {P({2, 3})}, nil, "sum all")
  ggc(function(x) return (x * x):sum(2) end, {P({2, 3})}, nil, "sum dim")
  ggc(function(x) return (x:sin()):mean() end, {P({2, 3})}, nil, "mean all")
  ggc(function(x) return (x * x):mean(1, {keepdim = false}) end, {P({2, 3})}, nil, "mean dim")
  ggc(function(x) return x:prod(2) end, {P({2, 3}, 0.5, 1.5, true)}, nil, "prod")
  ggc(function(x) return x:logsumexp(2) end, {P({2, 3})}, nil, "logsumexp")
  ggc(function(x) return x:var(2) end, {P({2, 3})}, nil, "var")
  ggc(function(x) return x:norm() end, {P({2, 3})}, nil, "norm")
  ggc(function(x) return x:cumsum(2) * x end, {P({2, 3})}, nil, "cumsum")
end)

test("gradgradcheck mse_loss, bce_with_logits, group_norm", function()
  ggc(function(x, y) return ai.mse_loss(x, y) end, {P({2, 3}), P({2, 3})}, nil, "mse")
  ggc(function(x, y) return ai.mse_loss(x, y, {reduction = "none"}) end, {P({2, 3}), P({2, 3})}, nil, "mse none")
  local y, pw = C({2, 3}, 0, 1), C({3}, 0.5, 2)
  ggc(function(x) return ai.bce_with_logits(x, y) end, {P({2, 3})}, nil, "bce_with_logits")
  ggc(function(x) return ai.bce_with_logits(x, y, {pos_weight = pw, reduction = "sum"}) end,
      {P({2, 3})}, nil, "bce_with_logits pos_weight")
  ggc(function(x, w, b) return ai.group_norm(x, 2, w, b) end, {P({1, 4, 3}), P({4}), P({4})}, nil, "group_norm")
  ggc(function(x) return ai.group_norm(x, 1) end, {P({2, 2, 2})}, nil, "group_norm no affine")
end)

test("first gradients are the same with and without create_graph (fused and composed backward rules)", function()
  local cases = {
    {"linear", ai.linear, {P({3, 4}), P({2, 4}), P({2})}},
    {"conv2d", function(x, w, b) return ai.conv2d(x, w, b, {stride = 2, padding = 1, groups = 2}) end,
     {P({2, 4, 5, 5}), P({4, 2, 3, 3}), P({4})}},
    {"conv2d dilation", function(x, w) return ai.conv2d(x, w, {dilation = 2}) end, {P({1, 2, 6, 6}), P({3, 2, 2, 2})}},
    {"conv_transpose2d", function(x, w, b) return ai.conv_transpose2d(x, w, b, {stride = 2, padding = 1, output_padding = 1}) end,
     {P({1, 2, 3, 3}), P({2, 3, 3, 3}), P({3})}},
    {"avg_pool2d", function(x) return ai.avg_pool2d(x, 3, {stride = 2, padding = 1, ceil_mode = true, count_include_pad = false}) end, {P({1, 2, 6, 5})}},
    {"adaptive_avg_pool2d", function(x) return ai.adaptive_avg_pool2d(x, {3, 2}) end, {P({1, 2, 5, 5})}},
    {"upsample nearest", function(x) return ai.upsample(x, {size = {5, 7}}) end, {P({1, 2, 3, 3})}},
    {"upsample bilinear", function(x) return ai.upsample(x, {scale_factor = 2, mode = "bilinear"}) end, {P({1, 2, 3, 3})}},
    {"upsample bilinear ac", function(x) return ai.upsample(x, {size = {4, 5}, mode = "bilinear", align_corners = true}) end, {P({1, 1, 3, 3})}},
    {"pad reflect", function(x) return ai.pad(x, {2, 1, 1, 2}, {mode = "reflect"}) end, {P({1, 2, 3, 4})}},
    {"pad replicate", function(x) return ai.pad(x, {2, 1, 1, 2}, {mode = "replicate"}) end, {P({1, 2, 3, 4})}},
    {"batch_norm train", function(x, w, b) return ai.batch_norm(x, nil, nil, w, b, {training = true}) end, {P({3, 2, 2, 2}), P({2}), P({2})}},
    {"batch_norm eval", function(x, w, b)
      return ai.batch_norm(x, ai.tensor({0.1, 0.2}, {dtype = "f64"}), ai.tensor({1.5, 0.5}, {dtype = "f64"}), w, b)
    end, {P({3, 2, 2}), P({2}), P({2})}},
    {"group_norm", function(x, w, b) return ai.group_norm(x, 2, w, b) end, {P({2, 4, 3}), P({4}), P({4})}},
    {"layer_norm", function(x, w, b) return ai.layer_norm(x, {2, 3}, w, b) end, {P({2, 2, 3}), P({2, 3}), P({2, 3})}},
    {"softmax", function(x) return ai.softmax(x, 2) end, {P({2, 3, 2})}},
    {"log_softmax", function(x) return ai.log_softmax(x, 1) end, {P({3, 2})}},
    {"cross_entropy", function(x) return ai.cross_entropy(x, L{1, 3}, {label_smoothing = 0.1}) end, {P({2, 3})}},
  }
  for _, c in ipairs(cases) do
    local name, f, ins = c[1], c[2], c[3]
    local out = f(table.unpack(ins))
    local v = C(out.shape)
    local g1 = ai.grad(f(table.unpack(ins)), ins, {grad_outputs = v})
    local g2 = ai.grad(f(table.unpack(ins)), ins, {grad_outputs = v, create_graph = true})
    for i = 1, #ins do
      near(g2[i]:detach(), g1[i], 1e-10, name .. " input " .. i)
    end
  end
end)

test("f32 4x4 stride-2 convolutions (the fused backward, with the transforms the forward kept) give f64's gradients", function()
  ai.manual_seed(11)
  local function u(shape, scale) return (ai.rand(shape, {dtype = "f64"}) * 2 - 1) * (scale or 1) end
  -- DCGAN's layer shapes, large enough for the polyphase Winograd path (src/kernels/polyphase.c)
  local cases = {
    {"conv2d", ai.conv2d, u({16, 32, 14, 14}), u({32, 32, 4, 4}, 0.1), u({32})},
    {"conv_transpose2d", ai.conv_transpose2d, u({16, 32, 7, 7}), u({32, 32, 4, 4}, 0.1), u({32})},
  }
  local o = {stride = 2, padding = 1}
  for _, c in ipairs(cases) do
    local name, f, x64, w64, b64 = c[1], c[2], c[3], c[4], c[5]
    local gy64 = u(f(x64, w64, b64, o).shape)
    local want = ai.grad(f(x64:requires_grad_(true), w64:requires_grad_(true), b64:requires_grad_(true), o), {x64, w64, b64},
                         {grad_outputs = gy64})
    local x, w, b, gy = x64:detach():float(), w64:detach():float(), b64:detach():float(), gy64:float()
    local function grads(which, opts)
      local ins = {}
      for i, t in ipairs({x, w, b}) do t:requires_grad_(which[i]); if which[i] then ins[#ins + 1] = t end end
      opts = opts or {}
      opts.grad_outputs = gy
      local y = f(x, w, b, o)
      local got = ai.grad(y, ins, opts)
      return got, y
    end
    local got = grads({true, true, true})
    for i = 1, 3 do near(got[i]:double(), want[i], 2e-4, name .. " input " .. i) end
    near(grads({true, false, false})[1]:double(), want[1], 2e-4, name .. " input alone")
    near(grads({false, true, false})[1]:double(), want[2], 2e-4, name .. " weight alone")
    local composed = grads({true, true, true}, {create_graph = true})
    for i = 1, 3 do near(composed[i]:detach():double(), want[i], 2e-4, name .. " create_graph input " .. i) end
    -- retain_graph keeps the kept transforms too: a second backward gives the same gradients
    for _, t in ipairs({x, w, b}) do t:requires_grad_(true); t.grad = nil end
    local y = f(x, w, b, o)
    y:backward(gy, {retain_graph = true})
    y:backward(gy)
    near(w.grad:double(), want[2] * 2, 4e-4, name .. " weight, two backwards")
    near(x.grad:double(), want[1] * 2, 4e-4, name .. " input, two backwards")
  end
end)

test("gradients at special points: prod with a zero factor", function()
  local x = ai.tensor({2, 0, 3}, {dtype = "f64", requires_grad = true})
  x:prod():backward()
  eq(x.grad:tolist(), {0, 6, 0})
  local y = ai.tensor({{2, 0}, {0, 3}, {4, 5}}, {dtype = "f64", requires_grad = true})
  y:prod(2):sum():backward()
  eq(y.grad:tolist(), {{0, 2}, {3, 0}, {5, 4}})
end)

test("gradients at special points: cumprod with a zero factor", function()
  local z = ai.tensor({2, 0, 3}, {dtype = "f64", requires_grad = true})
  z:cumprod(1):sum():backward()
  eq(z.grad:tolist(), {1, 8, 0}) -- d/dz2 (z1 + z1 z2 + z1 z2 z3) = z1 + z1 z3
end)

test("gradients at special points: the 2-norm of a zero vector has gradient 0 (as PyTorch)", function()
  local n = ai.zeros({3}, {dtype = "f64", requires_grad = true})
  n:norm():backward()
  eq(n.grad:tolist(), {0, 0, 0})
  local m = ai.tensor({{0, 0}, {3, 4}}, {dtype = "f64", requires_grad = true})
  m:norm(2, 2):sum():backward()
  eq(m.grad:tolist(), {{0, 0}, {0.6, 0.8}})
end)

test("gradients at special points: x^0 has gradient 0 at x = 0 (as PyTorch)", function()
  local p = ai.tensor({0, 2}, {dtype = "f64", requires_grad = true})
  ;(p ^ 0):sum():backward()
  eq(p.grad:tolist(), {0, 0})
  local q = ai.tensor({0, 2}, {dtype = "f64", requires_grad = true})
  ;(q ^ 2):sum():backward()
  eq(q.grad:tolist(), {0, 4})
  local b = ai.tensor({0, 2}, {dtype = "f64", requires_grad = true})
  ;(ai.tensor({0, 3}, {dtype = "f64"}) ^ b):sum():backward()
  eq(b.grad:tolist()[1], 0.0, "d/dp 0^p at p = 0")
end)

test("gradients at special points: relu/abs at 0, clamp at its bounds, amax ties split evenly", function()
  local r = ai.tensor({-1, 0, 1}, {dtype = "f64", requires_grad = true})
  r:relu():sum():backward()
  eq(r.grad:tolist(), {0, 0, 1})
  local a = ai.tensor({-1, 0, 1}, {dtype = "f64", requires_grad = true})
  a:abs():sum():backward()
  eq(a.grad:tolist(), {-1, 0, 1})
  local m = ai.tensor({1, 3, 3}, {dtype = "f64", requires_grad = true})
  m:amax():backward()
  eq(m.grad:tolist(), {0, 0.5, 0.5})
  local s = ai.tensor({1, 2}, {dtype = "f64", requires_grad = true})
  ai.maximum(s, s):sum():backward()
  eq(s.grad:tolist(), {1, 1}, "maximum(x, x) has derivative 1")
end)

count_errors("test_autograd_gradcheck.lua", 1)
