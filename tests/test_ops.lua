-- tests/test_ops.lua: elementwise math, type promotion, broadcasting, in-place ops, reductions,
-- matmul, joining/splitting, index ops and bernoulli, each checked element by element against a
-- naive Lua implementation.
-- Run alone: ./aiart-lua tests/run.lua test_ops
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"

local test, near, ok, expect_error = T.test, T.near, T.ok, T.expect_error
local ser, eq, flat, numel, nest = T.show, T.eq, T.flat, T.numel, T.nest  -- shared helpers (tests/helper.lua)


local errors_at_start = 0
test("(start counting error cases)", function() errors_at_start = T.error_cases or 0 end)

---------------------------------------------------------------------------- reference helpers



local function unravel(i, shape) -- 1-based flat position -> 1-based index list
  local idx, r = {}, i - 1
  for d = #shape, 1, -1 do
    idx[d] = r % shape[d] + 1
    r = r // shape[d]
  end
  return idx
end

local function ravel(idx, shape)
  local k = 0
  for d = 1, #shape do k = k * shape[d] + (idx[d] - 1) end
  return k + 1
end

local function bshape(a, b)
  local n = math.max(#a, #b)
  local out = {}
  for d = 1, n do
    local sa, sb = a[#a - n + d] or 1, b[#b - n + d] or 1
    assert(sa == sb or sa == 1 or sb == 1, "reference: shapes do not broadcast")
    out[d] = sa == 1 and sb or sa
  end
  return out
end

-- value of a flat list v of shape sh at a (broadcast) index of shape osh
local function bget(v, sh, idx, osh)
  local off = #osh - #sh
  local k = 0
  for d = 1, #sh do
    local i = sh[d] == 1 and 1 or idx[d + off]
    k = k * sh[d] + (i - 1)
  end
  return v[k + 1]
end

local function ref_binary(av, ash, bv, bsh, f)
  local osh = bshape(ash, bsh)
  local out = {}
  for i = 1, numel(osh) do
    local idx = unravel(i, osh)
    out[i] = f(bget(av, ash, idx, osh), bget(bv, bsh, idx, osh))
  end
  return out, osh
end

-- deterministic pseudo-random values (Lua's generator, seeded per call site)
local function rvals(n, lo, hi, seed, int)
  math.randomseed(seed or 1)
  local t = {}
  for i = 1, n do
    if int then t[i] = math.random(lo, hi) else t[i] = lo + (hi - lo) * math.random() end
  end
  return t
end


local function mk(shape, opts)
  opts = opts or {}
  local n = numel(shape)
  local v = rvals(n, opts.lo or -2, opts.hi or 2, opts.seed or (n * 7 + #shape), opts.int)
  local t
  if #shape == 0 then t = ai.tensor(v[1], {dtype = opts.dtype or "f64"})
  else t = ai.tensor(nest(v, shape), {dtype = opts.dtype or "f64"}) end
  return t, flat(t)
end

local function round_half_even(x)
  local f = math.floor(x)
  local d = x - f
  if d > 0.5 then return f + 1 elseif d < 0.5 then return f end
  return (f % 2 == 0) and f or f + 1
end

local function erf(x) -- Maclaurin series; plenty for |x| <= 3
  local s, term, n = 0, x, 0
  repeat
    local add = term / (2 * n + 1)
    s = s + add
    n = n + 1
    term = -term * x * x / n
  until math.abs(add) < 1e-17 or n > 200
  return 2 / math.sqrt(math.pi) * s
end

local function sigmoid(x) return 1 / (1 + math.exp(-x)) end
local function pyrem(a, b) return a - math.floor(a / b) * b end

---------------------------------------------------------------------------- unary math

local unary_cases = {
  {"neg", function(x) return -x end},
  {"abs", math.abs},
  {"sign", function(x) return x > 0 and 1 or (x < 0 and -1 or 0) end},
  {"exp", math.exp},
  {"log", math.log, 0.1, 3},
  {"log1p", function(x) return math.log(1 + x) end, -0.5, 2},
  {"expm1", function(x) return math.exp(x) - 1 end},
  {"sqrt", math.sqrt, 0.01, 4},
  {"rsqrt", function(x) return 1 / math.sqrt(x) end, 0.1, 4},
  {"sin", math.sin},
  {"cos", math.cos},
  {"tanh", function(x) local e = math.exp(2 * x); return (e - 1) / (e + 1) end},
  {"sigmoid", sigmoid},
  {"relu", function(x) return x > 0 and x or 0 end},
  {"silu", function(x) return x * sigmoid(x) end},
  {"gelu", function(x) return 0.5 * x * (1 + erf(x / math.sqrt(2))) end},
  {"floor", math.floor},
  {"ceil", math.ceil},
  {"round", round_half_even},
  {"reciprocal", function(x) return 1 / x end, 0.2, 3},
  {"square", function(x) return x * x end},
  {"log2", function(x) return math.log(x, 2) end, 0.1, 8},
  {"erf", erf},
}

for _, c in ipairs(unary_cases) do
  local name, f, lo, hi = c[1], c[2], c[3] or -3, c[4] or 3
  test("unary " .. name .. " against math.* (f64, f32, method and function, non-contiguous)", function()
    local x, xv = mk({3, 5}, {lo = lo, hi = hi, seed = #name})
    local want = {}
    for i, v in ipairs(xv) do want[i] = f(v) end
    local y = x[name](x)
    eq(y.dtype, "f64")
    eq(y.shape, {3, 5})
    near(flat(y), want, 1e-12, name .. " f64")
    near(flat(ai[name](x)), want, 1e-12, name .. " ai." .. name)
    local xf = x:float()
    local wf = {}
    for i, v in ipairs(flat(xf)) do wf[i] = f(v) end
    local yf = xf[name](xf)
    eq(yf.dtype, "f32")
    near(flat(yf), wf, 2e-6, name .. " f32")
    local xt = x:t()
    local wt = {}
    for i, v in ipairs(flat(xt)) do wt[i] = f(v) end
    near(flat(xt[name](xt)), wt, 1e-12, name .. " transposed")
  end)
end

test("round is half to even; floor/ceil/round of integers keep the dtype", function()
  eq(ai.tensor({0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6}, {dtype = "f64"}):round():tolist(), {0, 2, 2, -0, -2, 2, -3})
  local i = ai.tensor({-3, 4}, {dtype = "i64"})
  for _, name in ipairs{"floor", "ceil", "round", "abs", "neg", "sign", "relu", "square"} do
    eq(i[name](i).dtype, "i64", name)
  end
  eq(i:abs():tolist(), {3, 4})
  eq(i:sign():tolist(), {-1, 1})
  eq(i:square():tolist(), {9, 16})
  eq(i:relu():tolist(), {0, 4})
  eq((-i):tolist(), {3, -4})
  -- other math on integers computes in f32
  eq(i:exp().dtype, "f32")
  near(ai.tensor({4, 9}, {dtype = "i64"}):sqrt():tolist(), {2, 3}, 1e-6)
  eq(ai.tensor({1}, {dtype = "u8"}):sigmoid().dtype, "f32")
end)

test("special values: log(0) = -inf, sqrt(-1) = nan, exp overflow = inf, 1/0 = inf", function()
  local x = ai.tensor({0, -1, 1000, 0}, {dtype = "f64"})
  local l = x:log():tolist()
  eq(l[1], -math.huge)
  ok(l[2] ~= l[2], "log(-1) is nan")
  local s = x:sqrt():tolist()
  ok(s[2] ~= s[2], "sqrt(-1) is nan")
  eq(x:exp():tolist()[3], math.huge)
  eq(x:reciprocal():tolist()[1], math.huge)
  eq(ai.tensor({-1000, 1000}):sigmoid():tolist(), {0, 1}, "sigmoid saturates without nan")
  eq(ai.tensor({-1000, 1000}, {dtype = "f64"}):tanh():tolist(), {-1, 1})
  local sp = ai.tensor({-1000, 1000}):softplus():tolist()
  eq(sp, {0, 1000}, "softplus is stable")
end)

test("f32 tanh (vectorised, not libm) is within 2 ulp of f64 everywhere, and odd", function()
  for _, r in ipairs({{-20, 20, 400001}, {-1e-3, 1e-3, 10001}, {0.6, 0.65, 10001}}) do
    local x = ai.linspace(r[1], r[2], r[3]):float()
    local want = x:double():tanh()
    local rel = ((x:tanh():double() - want):abs() / want:abs():clamp(1e-30, math.huge)):max():item()
    ok(rel < 2.4e-7, ("tanh on [%g, %g]: relative error %g"):format(r[1], r[2], rel))
  end
  local v = ai.tensor({math.huge, -math.huge, 0 / 0, 1e-30, -1e-30, 100}):float():tanh():tolist()
  eq({v[1], v[2], v[4], v[6]}, {1, -1, ai.tensor({1e-30}):float():item(), 1})
  ok(v[3] ~= v[3], "tanh(nan) is nan")
  ok(v[5] < 0, "tanh keeps the sign of tiny negatives")
  eq(1 / ai.tensor({-0.0}):tanh():item(), -math.huge, "tanh(-0) = -0")
end)

test("leaky_relu with default and given slope", function()
  local x, xv = mk({10}, {seed = 3})
  local function ref(s) local o = {} for i, v in ipairs(xv) do o[i] = v > 0 and v or v * s end return o end
  near(flat(x:leaky_relu()), ref(0.01), 1e-12)
  near(flat(x:leaky_relu(0.2)), ref(0.2), 1e-12)
  near(flat(ai.leaky_relu(x, {negative_slope = 0.3})), ref(0.3), 1e-12)
end)

test("softplus with beta and threshold", function()
  local x, xv = mk({12}, {lo = -5, hi = 5, seed = 4})
  local function ref(beta, thr)
    local o = {}
    for i, v in ipairs(xv) do o[i] = v * beta > thr and v or math.log(1 + math.exp(beta * v)) / beta end
    return o
  end
  near(flat(x:softplus()), ref(1, 20), 1e-12)
  near(flat(x:softplus(2)), ref(2, 20), 1e-12)
  near(flat(x:softplus{beta = 0.5, threshold = 1}), ref(0.5, 1), 1e-12)
  near(flat(ai.softplus(x, 3, 2)), ref(3, 2), 1e-12)
end)

test("clamp with both, one or no bound; table or positional; integer tensors", function()
  local x, xv = mk({3, 4}, {lo = -3, hi = 3, seed = 5})
  local function ref(lo, hi)
    local o = {}
    for i, v in ipairs(xv) do o[i] = math.min(math.max(v, lo or -math.huge), hi or math.huge) end
    return o
  end
  near(flat(x:clamp(-1, 1)), ref(-1, 1), 0)
  near(flat(x:clamp{min = 0}), ref(0, nil), 0)
  near(flat(x:clamp{max = 0.5}), ref(nil, 0.5), 0)
  near(flat(x:clamp(nil, 0.5)), ref(nil, 0.5), 0)
  near(flat(ai.clamp(x, -0.5)), ref(-0.5, nil), 0)
  near(flat(ai.clip(x, -0.5, 0.5)), ref(-0.5, 0.5), 0)
  local i = ai.tensor({-5, -1, 0, 3, 9}, {dtype = "i64"})
  local ci = i:clamp(-1.5, 3.5)
  eq(ci.dtype, "i64")
  eq(ci:tolist(), {-1, -1, 0, 3, 3}, "integer bounds rounded inward")
  eq(ai.tensor({0, 100, 255}, {dtype = "u8"}):clamp(10, 300):tolist(), {10, 100, 255})
end)

---------------------------------------------------------------------------- binary ops

local binary_cases = {
  {"add", function(a, b) return a + b end},
  {"sub", function(a, b) return a - b end},
  {"mul", function(a, b) return a * b end},
  {"div", function(a, b) return a / b end, nil, {0.5, 3}},
  {"pow", function(a, b) return a ^ b end, {0.5, 3}},
  {"remainder", pyrem, nil, {0.5, 3}},
  {"maximum", math.max},
  {"minimum", math.min},
  {"atan2", function(a, b) return math.atan(a, b) end},
}

local bshapes = {
  {{3, 1}, {1, 4}}, {{2, 3, 4}, {4}}, {{5, 1, 3}, {1, 4, 1}}, {{2, 3}, {}}, {{}, {2, 3}},
  {{3}, {3}}, {{1}, {3}}, {{2, 1, 4}, {3, 1}}, {{4, 1}, {4}}, {{}, {}}, {{1, 1}, {2, 2}},
}

for _, c in ipairs(binary_cases) do
  local name, f, arange, brange = c[1], c[2], c[3] or {-3, 3}, c[4] or {-3, 3}
  test("binary " .. name .. " with broadcasting, element by element", function()
    for k, sp in ipairs(bshapes) do
      local a, av = mk(sp[1], {lo = arange[1], hi = arange[2], seed = k})
      local b, bv = mk(sp[2], {lo = brange[1], hi = brange[2], seed = k + 100})
      if name == "remainder" or name == "div" then -- keep |b| away from 0, with both signs
        for i, v in ipairs(bv) do if v < 0.5 and v > -0.5 then bv[i] = 1.25 end end
        b = ai.tensor(#sp[2] == 0 and bv[1] or nest(bv, sp[2]), {dtype = "f64"})
        if name == "remainder" then
          for i, v in ipairs(bv) do if i % 2 == 0 then bv[i] = -math.abs(v) end end
          b = ai.tensor(#sp[2] == 0 and bv[1] or nest(bv, sp[2]), {dtype = "f64"})
        end
      end
      local want, osh = ref_binary(av, sp[1], bv, sp[2], f)
      local y = ai[name](a, b)
      eq(y.shape, osh, name .. " shape " .. k)
      near(flat(y), want, 1e-12, name .. " values for shapes " .. ser(sp))
      near(flat(a[name](a, b)), want, 1e-12, name .. " method")
      -- f32 as well
      local af, bf = a:float(), b:float()
      local wf = ref_binary(flat(af), sp[1], flat(bf), sp[2], f)
      local yf = ai[name](af, bf)
      eq(yf.dtype, "f32")
      near(flat(yf), wf, 1e-5, name .. " f32 for shapes " .. ser(sp))
    end
  end)
end

test("binary ops on transposed and sliced (non-contiguous) operands", function()
  local a, _ = mk({4, 3}, {seed = 21})
  local b, _ = mk({3, 4}, {seed = 22})
  local at = a:t() -- 3x4
  local bs = ai.arange(24):double():view(4, 6):slice(2, 1, 6, 2):t() -- 3x4 non-contiguous
  for _, name in ipairs{"add", "sub", "mul", "maximum"} do
    local f = ({add = function(x, y) return x + y end, sub = function(x, y) return x - y end,
                mul = function(x, y) return x * y end, maximum = math.max})[name]
    local want = ref_binary(flat(at), {3, 4}, flat(b), {3, 4}, f)
    near(flat(ai[name](at, b)), want, 1e-12, name)
    local want2 = ref_binary(flat(at), {3, 4}, flat(bs), {3, 4}, f)
    near(flat(ai[name](at, bs)), want2, 1e-12, name .. " both strided")
  end
  -- an expanded operand
  local e = ai.tensor({1, 2, 3}, {dtype = "f64"}):view(3, 1):expand(3, 4)
  near(flat(e + b), ref_binary({1, 2, 3}, {3, 1}, flat(b), {3, 4}, function(x, y) return x + y end), 1e-12)
end)

test("operators + - * / ^ % unary minus and // on tensors", function()
  local a, av = mk({2, 3}, {lo = 0.5, hi = 3, seed = 31})
  local b, bv = mk({2, 3}, {lo = 0.5, hi = 3, seed = 32})
  local function each(f) local o = {} for i = 1, #av do o[i] = f(av[i], bv[i]) end return o end
  near(flat(a + b), each(function(x, y) return x + y end), 1e-12)
  near(flat(a - b), each(function(x, y) return x - y end), 1e-12)
  near(flat(a * b), each(function(x, y) return x * y end), 1e-12)
  near(flat(a / b), each(function(x, y) return x / y end), 1e-12)
  near(flat(a ^ b), each(function(x, y) return x ^ y end), 1e-12)
  near(flat(a % b), each(pyrem), 1e-12)
  near(flat(a // b), each(function(x, y) return math.floor(x / y) end), 1e-12)
  near(flat(-a), each(function(x) return -x end), 0)
end)

test("tensor-number on either side", function()
  local a, av = mk({5}, {lo = 0.5, hi = 3, seed = 33})
  local function each(f) local o = {} for i = 1, #av do o[i] = f(av[i]) end return o end
  near(flat(a + 2), each(function(x) return x + 2 end), 1e-12)
  near(flat(2 + a), each(function(x) return 2 + x end), 1e-12)
  near(flat(a - 2), each(function(x) return x - 2 end), 1e-12)
  near(flat(2 - a), each(function(x) return 2 - x end), 1e-12)
  near(flat(a * 1.5), each(function(x) return x * 1.5 end), 1e-12)
  near(flat(1.5 * a), each(function(x) return 1.5 * x end), 1e-12)
  near(flat(a / 4), each(function(x) return x / 4 end), 1e-12)
  near(flat(4 / a), each(function(x) return 4 / x end), 1e-12)
  near(flat(a ^ 2), each(function(x) return x ^ 2 end), 1e-12)
  near(flat(2 ^ a), each(function(x) return 2 ^ x end), 1e-12)
  near(flat(a % 0.7), each(function(x) return pyrem(x, 0.7) end), 1e-12)
  near(flat(5 % a), each(function(x) return pyrem(5, x) end), 1e-12)
  near(flat(a // 0.7), each(function(x) return math.floor(x / 0.7) end), 1e-12)
  near(flat(5 // a), each(function(x) return math.floor(5 / x) end), 1e-12)
  near(flat(ai.sub(10, a)), each(function(x) return 10 - x end), 1e-12)
  near(flat(ai.div(1, a)), each(function(x) return 1 / x end), 1e-12)
  near(flat(ai.pow(a, 0.5)), each(math.sqrt), 1e-12)
  near(flat(ai.maximum(a, 1)), each(function(x) return math.max(x, 1) end), 0)
  near(flat(ai.minimum(1, a)), each(function(x) return math.min(x, 1) end), 0)
  near(flat(ai.atan2(1, a)), each(function(x) return math.atan(1, x) end), 1e-12)
  near(flat(ai.atan2(a, -1)), each(function(x) return math.atan(x, -1) end), 1e-12)
  eq(flat(a:gt(1.5)), each(function(x) return x > 1.5 and 1 or 0 end))
  eq(flat(ai.lt(1.5, a)), each(function(x) return 1.5 < x and 1 or 0 end))
  eq((a + 2).dtype, "f64")
  eq((2 * a).dtype, "f64")
end)

test("remainder follows the sign of the divisor (Python style), floats and integers", function()
  local a = ai.tensor({5, -5, 5, -5, 7.5, -7.5, 0}, {dtype = "f64"})
  local b = ai.tensor({3, 3, -3, -3, 2, 2, 3}, {dtype = "f64"})
  eq(ai.remainder(a, b):tolist(), {2, 1, -1, -2, 1.5, 0.5, 0})
  eq(ai.fmod(a, b):tolist(), {2, 1, -1, -2, 1.5, 0.5, 0}, "ai.fmod is an alias")
  local ia = ai.tensor({5, -5, 5, -5, 0}, {dtype = "i64"})
  local ib = ai.tensor({3, 3, -3, -3, 7}, {dtype = "i64"})
  local r = ia % ib
  eq(r.dtype, "i64")
  eq(r:tolist(), {2, 1, -1, -2, 0})
  eq((ia % 4):tolist(), {1, 3, 1, 3, 0})
  eq(ai.remainder(-7, ai.tensor({3}, {dtype = "i64"})):tolist(), {2})
  for _, x in ipairs{5, -5} do
    for _, y in ipairs{3, -3} do eq((ai.tensor({x}, {dtype = "i64"}) % y):item(), x % y, x .. " % " .. y) end
  end
end)

test("integer ops stay integer (add sub mul pow remainder maximum) and are exact", function()
  local a = ai.tensor({1, -2, 3, 40000000000}, {dtype = "i64"})
  local b = ai.tensor({4, 5, -6, 3}, {dtype = "i64"})
  eq((a + b):tolist(), {5, 3, -3, 40000000003})
  eq((a - b):tolist(), {-3, -7, 9, 39999999997})
  eq((a * b):tolist(), {4, -10, -18, 120000000000})
  eq(ai.maximum(a, b):tolist(), {4, 5, 3, 40000000000})
  eq(ai.minimum(a, b):tolist(), {1, -2, -6, 3})
  eq((ai.tensor({2, 3, -2}, {dtype = "i64"}) ^ 3):tolist(), {8, 27, -8})
  eq((ai.tensor({2, 3, -2}, {dtype = "i64"}) ^ 3).dtype, "i64")
  eq((a + b).dtype, "i64")
  local q = ai.tensor({7, -7}, {dtype = "i64"}) // 2
  eq(flat(q), {3, -4}, "floor division of integers")
end)

test("type promotion", function()
  local u = ai.tensor({1, 2}, {dtype = "u8"})
  local l = ai.tensor({3, 4}, {dtype = "i64"})
  local f = ai.tensor({0.5, 0.25}, {dtype = "f32"})
  local d = ai.tensor({0.5, 0.25}, {dtype = "f64"})
  eq((u + l).dtype, "i64")
  eq((u + l):tolist(), {4, 6})
  eq((l + u).dtype, "i64")
  eq((l + f).dtype, "f32")
  eq((l + f):tolist(), {3.5, 4.25})
  eq((f + l).dtype, "f32")
  eq((f + d).dtype, "f64")
  eq((f + d):tolist(), {1, 0.5})
  eq((d * u).dtype, "f64")
  eq((u + u).dtype, "u8")
  eq((u * f).dtype, "f32")
  local q = l / ai.tensor({2, 8}, {dtype = "i64"})
  eq(q.dtype, "f32", "int / int is float")
  eq(q:tolist(), {1.5, 0.5})
  eq((u / u).dtype, "f32")
  eq(ai.atan2(l, l).dtype, "f32")
  -- numbers are "weak": they take the tensor's dtype unless a fraction meets an integer
  eq((l + 1).dtype, "i64")
  eq((l + 1.5).dtype, "f32")
  eq((l + 1.5):tolist(), {4.5, 5.5})
  eq((u * 2).dtype, "u8")
  eq((f + 1).dtype, "f32")
  eq((d + 1).dtype, "f64")
  eq((l / 2).dtype, "f32")
  eq((l / 2):tolist(), {1.5, 2})
  -- comparisons give u8 whatever the inputs
  eq((l:gt(f)).dtype, "u8")
  eq(l:gt(f):tolist(), {1, 1})
  eq(ai.eq(u, ai.tensor({1, 5}, {dtype = "f64"})):tolist(), {1, 0})
end)

test("comparisons and logical ops give u8 0/1, with broadcasting", function()
  local a, av = mk({3, 1}, {lo = -2, hi = 2, int = true, seed = 41})
  local b, bv = mk({1, 4}, {lo = -2, hi = 2, int = true, seed = 42})
  local cmp = {
    eq = function(x, y) return x == y end, ne = function(x, y) return x ~= y end,
    lt = function(x, y) return x < y end, le = function(x, y) return x <= y end,
    gt = function(x, y) return x > y end, ge = function(x, y) return x >= y end,
    logical_and = function(x, y) return x ~= 0 and y ~= 0 end,
    logical_or = function(x, y) return x ~= 0 or y ~= 0 end,
  }
  for name, f in pairs(cmp) do
    local want = ref_binary(av, {3, 1}, bv, {1, 4}, function(x, y) return f(x, y) and 1 or 0 end)
    local y = ai[name](a, b)
    eq(y.dtype, "u8", name)
    eq(y.shape, {3, 4}, name)
    eq(flat(y), want, name)
    eq(flat(a[name](a, b)), want, name .. " method")
  end
  local m = ai.tensor{true, false, true}
  eq(m:logical_not():tolist(), {0, 1, 0})
  eq(ai.logical_not(ai.tensor{0.0, 2.5, -1}):tolist(), {1, 0, 0})
  eq(ai.tensor{0.0, 2.5}:logical_not().dtype, "u8")
end)

test("where with tensors and numbers, broadcasting", function()
  local c = ai.tensor{{true}, {false}, {true}} -- 3x1
  local a, av = mk({1, 4}, {seed = 51})
  local b, bv = mk({3, 4}, {seed = 52})
  local y = ai.where(c, a, b)
  eq(y.shape, {3, 4})
  local cv = {1, 0, 1}
  local want = {}
  for i = 1, 3 do for j = 1, 4 do want[#want + 1] = cv[i] == 1 and av[j] or bv[(i - 1) * 4 + j] end end
  near(flat(y), want, 0)
  local y2 = ai.where(c, a, 0)
  eq(y2.dtype, "f64")
  for i = 1, 3 do for j = 1, 4 do
    near(y2[{i, j}]:item(), cv[i] == 1 and av[j] or 0, 0)
  end end
  local y3 = ai.where(c, -1, b)
  near(y3[{2, 3}]:item(), bv[7], 0)
  near(y3[{1, 3}]:item(), -1, 0)
  eq(ai.where(ai.tensor{true, false}, ai.tensor({1, 2}, {dtype = "i64"}), ai.tensor({8, 9}, {dtype = "i64"})):tolist(), {1, 9})
  eq(ai.where(ai.tensor{true, false}, ai.tensor({1, 2}, {dtype = "i64"}), ai.tensor{8.5, 9.5}).dtype, "f32")
end)

test("masked_fill and masked_fill_ with a broadcast mask", function()
  local x, xv = mk({3, 4}, {seed = 61})
  local mask = ai.tensor{{true, false, false, true}}
  local y = x:masked_fill(mask, -9)
  local want = {}
  for i = 1, 12 do local j = (i - 1) % 4 + 1; want[i] = (j == 1 or j == 4) and -9 or xv[i] end
  near(flat(y), want, 0)
  near(flat(x), xv, 0, "masked_fill leaves the input alone")
  local r = x:masked_fill_(mask, -9)
  ok(r == x)
  near(flat(x), want, 0)
  near(flat(ai.masked_fill(ai.zeros(2, 2), ai.tensor{{true, false}, {false, true}}, 3)), {3, 0, 0, 3}, 0)
end)

test("errors: incompatible shapes and bad operands", function()
  expect_error("add: shapes 3 and 4 cannot be broadcast (dimension 1: 3 vs 4)", function() return ai.zeros(3) + ai.zeros(4) end)
  expect_error("cannot be broadcast", function() return ai.zeros(2, 3) * ai.zeros(3, 2) end)
  expect_error("mul: shapes 2x3 and 3x2", function() return ai.zeros(2, 3) * ai.zeros(3, 2) end)
  expect_error("cannot be broadcast", function() return ai.zeros(2, 3, 4) - ai.zeros(3, 1, 5) end)
  expect_error("cannot be broadcast", function() return ai.maximum(ai.zeros(2), ai.zeros(3)) end)
  expect_error("cannot be broadcast", function() return ai.zeros(2):lt(ai.zeros(3)) end)
  expect_error("cannot be broadcast", function() return ai.where(ai.tensor{true, false, true}, ai.zeros(2), 0) end)
  expect_error("cannot be broadcast", function() return ai.where(ai.tensor{true, false}, ai.zeros(3), ai.zeros(3)) end)
  expect_error("where: condition must be a u8 (boolean) tensor, got f32", function() return ai.where(ai.zeros(2), ai.zeros(2), 1) end)
  expect_error("masked_fill: mask must be a u8", function() return ai.zeros(2):masked_fill(ai.zeros(2), 1) end)
  expect_error("mask must broadcast to the tensor's shape", function() return ai.zeros(2):masked_fill(ai.tensor{{true, false}, {true, true}}, 1) end)
  expect_error("remainder: integer division by zero", function() return ai.tensor({1, 2}, {dtype = "i64"}) % 0 end)
  expect_error("integer division by zero", function() return ai.tensor({1}, {dtype = "i64"}) % ai.tensor({0}, {dtype = "i64"}) end)
  expect_error("tensor or number expected, got string", function() return ai.zeros(2) + "a" end)
  expect_error("tensor or number expected, got table", function() return ai.add(ai.zeros(2), {}) end)
  expect_error("tensor or number expected, got nil", function() return ai.mul(nil, ai.zeros(2)) end)
  expect_error("tensor expected, got number", function() return ai.add(1, 2) end)
  expect_error("tensor expected, got number", function() return ai.exp(1) end)
  expect_error("tensor expected, got no value", function() return ai.sigmoid() end)
  expect_error("clamp: min (2) is greater than max (1)", function() return ai.zeros(2):clamp(2, 1) end)
  expect_error("softplus: beta must be non-zero", function() return ai.zeros(2):softplus(0) end)
  expect_error("option 'min' must be a number", function() return ai.zeros(2):clamp{min = "a"} end)
end)

---------------------------------------------------------------------------- in-place

test("in-place add_ sub_ mul_ div_ with tensors (broadcast) and numbers", function()
  local function check(name, f, rhs_shape)
    local x, xv = mk({3, 4}, {lo = 0.5, hi = 2, seed = 71})
    local y, yv = mk(rhs_shape, {lo = 0.5, hi = 2, seed = 72})
    local want = ref_binary(xv, {3, 4}, yv, rhs_shape, f)
    local r = x[name .. "_"](x, y)
    ok(r == x, name .. "_ returns self")
    near(flat(x), want, 1e-12, name .. "_ " .. ser(rhs_shape))
    local x2 = mk({3, 4}, {lo = 0.5, hi = 2, seed = 71})
    x2[name .. "_"](x2, 1.5)
    near(flat(x2), ref_binary(xv, {3, 4}, {1.5}, {}, f), 1e-12, name .. "_ number")
  end
  for _, sh in ipairs{{3, 4}, {4}, {3, 1}, {}, {1, 1}} do
    check("add", function(a, b) return a + b end, sh)
    check("sub", function(a, b) return a - b end, sh)
    check("mul", function(a, b) return a * b end, sh)
    check("div", function(a, b) return a / b end, sh)
  end
  local x = ai.ones(2, 2)
  x:add_(x)
  eq(flat(x), {2, 2, 2, 2}, "x:add_(x)")
  local v = ai.zeros(3, 4)
  v:t():add_(ai.tensor{1, 2, 3}) -- through a transposed view
  eq(v:tolist(), {{1, 1, 1, 1}, {2, 2, 2, 2}, {3, 3, 3, 3}})
  local i = ai.tensor({1, 2}, {dtype = "i64"})
  i:add_(ai.tensor({1, 2}, {dtype = "u8"})) -- an integer result goes into an integer tensor
  eq(i:tolist(), {2, 4})
  local p = ai.tensor{1, 2, 3}
  p:pow_(2)
  eq(p:tolist(), {1, 4, 9})
  p:remainder_(3)
  eq(p:tolist(), {1, 1, 0})
  p:maximum_(ai.tensor{0, 5, -1})
  eq(p:tolist(), {1, 5, 0})
  p:minimum_(2)
  eq(p:tolist(), {1, 2, 0})
end)

test("clamp_ and masked_fill_ in place", function()
  local x, xv = mk({2, 5}, {seed = 73})
  ok(x:clamp_(-0.5, 0.5) == x)
  local want = {}
  for i, v in ipairs(xv) do want[i] = math.min(math.max(v, -0.5), 0.5) end
  near(flat(x), want, 0)
  x:clamp_{min = 0}
  for i, v in ipairs(want) do want[i] = math.max(v, 0) end
  near(flat(x), want, 0)
  local y = ai.zeros(2, 3)
  y:masked_fill_(ai.tensor{true, false, true}, 7)
  eq(y:tolist(), {{7, 0, 7}, {7, 0, 7}})
end)

test("in-place ops refuse tensors that require grad outside ai.no_grad", function()
  local x = ai.ones(3, {requires_grad = true})
  local m = ai.tensor{true, false, true}
  expect_error("in-place change of a tensor that requires grad; use ai.no_grad or :detach()", function() return x:add_(1) end)
  expect_error("in-place change of a tensor that requires grad", function() return x:sub_(1) end)
  expect_error("in-place change of a tensor that requires grad", function() return x:mul_(2) end)
  expect_error("in-place change of a tensor that requires grad", function() return x:div_(2) end)
  expect_error("clamp_: in-place change of a tensor that requires grad", function() return x:clamp_(0, 1) end)
  expect_error("masked_fill_: in-place change of a tensor that requires grad", function() return x:masked_fill_(m, 0) end)
  eq(x:tolist(), {1, 1, 1}, "nothing was changed")
  ai.no_grad(function()
    x:add_(1)
    x:mul_(3)
    x:sub_(ai.tensor{1, 2, 3})
    x:div_(2)
    x:clamp_(0, 2.25)
    x:masked_fill_(m, -1)
  end)
  eq(x:tolist(), {-1, 2, -1})
  eq(x:requires_grad(), true)
  -- detach shares storage and allows in-place writes
  x:detach():fill_(0)
  eq(x:tolist(), {0, 0, 0})
end)

test("errors: the in-place refusal names the op once ('add_: ...', not 'add_: add: ...')", function()
  local x = ai.ones(3, {requires_grad = true})
  local e = expect_error("add_: in-place change of a tensor that requires grad", function() return x:add_(1) end)
  ok(not e:find("add_: add:", 1, true), e)
  expect_error("mul_: in-place change", function() return x:mul_(1) end)
end)

test("errors: in-place ops", function()
  expect_error("add_: the result's shape differs from the tensor's", function() return ai.zeros(3, 1):add_(ai.zeros(1, 4)) end)
  expect_error("cannot be broadcast", function() return ai.zeros(3):add_(ai.zeros(4)) end)
  expect_error("div_: the result is f32, which cannot be written into this i64 tensor", function() return ai.tensor({1}, {dtype = "i64"}):div_(2) end)
  expect_error("clamp_: invalid bounds", function() return ai.zeros(2):clamp_(1, 0) end)
  expect_error("remainder_: integer division by zero", function() return ai.tensor({1}, {dtype = "i64"}):remainder_(0) end)
  expect_error("mask must be a u8", function() return ai.zeros(2):masked_fill_(ai.ones(2), 1) end)
end)

---------------------------------------------------------------------------- reductions

-- groups[k] = values of v (shape sh) that reduce to output position k (keepdim shape)
local function groups_of(v, sh, dims)
  local oshape = {}
  for d = 1, #sh do oshape[d] = dims[d] and 1 or sh[d] end
  local groups = {}
  for i = 1, numel(oshape) do groups[i] = {} end
  for i = 1, #v do
    local idx = unravel(i, sh)
    for d in pairs(dims) do idx[d] = 1 end
    local g = groups[ravel(idx, oshape)]
    g[#g + 1] = v[i]
  end
  return groups, oshape
end

local function ref_reduce(v, sh, dims, fn, keepdim)
  local all = {}
  if dims == nil then for d = 1, #sh do all[d] = true end else all = dims end
  local groups, oshape = groups_of(v, sh, all)
  local out = {}
  for i, g in ipairs(groups) do out[i] = fn(g) end
  local shp = {}
  if keepdim then shp = oshape else for d = 1, #sh do if not all[d] then shp[#shp + 1] = sh[d] end end end
  return out, shp
end

local R = {}
function R.sum(g) local s = 0 for _, x in ipairs(g) do s = s + x end return s end
function R.mean(g) return R.sum(g) / #g end
function R.prod(g) local s = 1 for _, x in ipairs(g) do s = s * x end return s end
function R.amax(g) local m = -math.huge for _, x in ipairs(g) do m = math.max(m, x) end return m end
function R.amin(g) local m = math.huge for _, x in ipairs(g) do m = math.min(m, x) end return m end
function R.argmax(g) local m, k = -math.huge, 0 for i, x in ipairs(g) do if x > m then m, k = x, i end end return k end
function R.argmin(g) local m, k = math.huge, 0 for i, x in ipairs(g) do if x < m then m, k = x, i end end return k end
function R.var(g) local m = R.mean(g) local s = 0 for _, x in ipairs(g) do s = s + (x - m) ^ 2 end return s / (#g - 1) end
function R.var0(g) local m = R.mean(g) local s = 0 for _, x in ipairs(g) do s = s + (x - m) ^ 2 end return s / #g end
function R.std(g) return math.sqrt(R.var(g)) end
function R.std0(g) return math.sqrt(R.var0(g)) end
function R.norm1(g) local s = 0 for _, x in ipairs(g) do s = s + math.abs(x) end return s end
function R.norm2(g) local s = 0 for _, x in ipairs(g) do s = s + x * x end return math.sqrt(s) end
function R.norm3(g) local s = 0 for _, x in ipairs(g) do s = s + math.abs(x) ^ 3 end return s ^ (1 / 3) end
function R.norminf(g) local m = 0 for _, x in ipairs(g) do m = math.max(m, math.abs(x)) end return m end
function R.logsumexp(g)
  local m = R.amax(g)
  local s = 0
  for _, x in ipairs(g) do s = s + math.exp(x - m) end
  return m + math.log(s)
end

-- name -> {call(x, dims_or_nil, opts) -> tensor, reference}
local reductions = {
  sum = {function(x, d, o) return x:sum(d, o) end, R.sum},
  mean = {function(x, d, o) return x:mean(d, o) end, R.mean},
  prod = {function(x, d, o) return x:prod(d, o) end, R.prod},
  amax = {function(x, d, o) return x:amax(d, o) end, R.amax},
  amin = {function(x, d, o) return x:amin(d, o) end, R.amin},
  logsumexp = {function(x, d, o) return x:logsumexp(d, o) end, R.logsumexp},
  var = {function(x, d, o) return x:var(d, o) end, R.var},
  std = {function(x, d, o) return x:std(d, o) end, R.std},
  var_biased = {function(x, d, o)
    o = o or {}
    local oo = {unbiased = false, keepdim = o.keepdim}
    return x:var(d, oo)
  end, R.var0},
  std_biased = {function(x, d, o)
    o = o or {}
    return x:std(d, {unbiased = false, keepdim = o.keepdim})
  end, R.std0},
  norm1 = {function(x, d, o) return x:norm(1, d, o) end, R.norm1},
  norm2 = {function(x, d, o) return x:norm(2, d, o) end, R.norm2},
  norm3 = {function(x, d, o) return x:norm(3, d, o) end, R.norm3},
  norminf = {function(x, d, o) return x:norm("inf", d, o) end, R.norminf},
}

local red_names = {}
for k in pairs(reductions) do red_names[#red_names + 1] = k end
table.sort(red_names)

for _, name in ipairs(red_names) do
  local call, ref = reductions[name][1], reductions[name][2]
  test("reduction " .. name .. " over all, each dim, with/without keepdim, contiguous and permuted", function()
    local base = mk({2, 3, 4}, {lo = -1.5, hi = 1.5, seed = #name + 80})
    for _, layout in ipairs{"contiguous", "permuted"} do
      local x = layout == "contiguous" and base or base:permute(3, 1, 2) -- 4x2x3, strided
      local sh, xv = x.shape, flat(x)
      -- over everything
      local all = call(x)
      eq(all.shape, {}, name .. " all -> 0-dim")
      near(all:item(), ref_reduce(xv, sh, nil, ref, false)[1], 1e-10, name .. " all " .. layout)
      local allk = call(x, nil, {keepdim = true})
      eq(allk.shape, {1, 1, 1}, name .. " all keepdim")
      -- each dim
      for d = 1, 3 do
        local want, wsh = ref_reduce(xv, sh, {[d] = true}, ref, true)
        local y = call(x, d)
        eq(y.shape, wsh, name .. " dim " .. d .. " keeps the dim by default")
        near(flat(y), want, 1e-10, name .. " dim " .. d .. " " .. layout)
        local want2, wsh2 = ref_reduce(xv, sh, {[d] = true}, ref, false)
        local y2 = call(x, d, {keepdim = false})
        eq(y2.shape, wsh2, name .. " dim " .. d .. " keepdim=false")
        near(flat(y2), want2, 1e-10, name .. " dim " .. d .. " keepdim=false " .. layout)
        local yneg = call(x, d - 4)
        near(flat(yneg), want, 1e-10, name .. " negative dim " .. (d - 4))
      end
      -- two dims at once
      local want3, wsh3 = ref_reduce(xv, sh, {[1] = true, [3] = true}, ref, false)
      local y3 = call(x, {1, 3}, {keepdim = false})
      eq(y3.shape, wsh3)
      near(flat(y3), want3, 1e-10, name .. " dims {1,3} " .. layout)
    end
    -- f32 input
    local xf = base:float()
    local vf = flat(xf)
    near(call(xf):item(), ref_reduce(vf, {2, 3, 4}, nil, ref, false)[1], 1e-5, name .. " f32")
    eq(call(xf).dtype, "f32")
    near(flat(call(xf, 2)), (ref_reduce(vf, {2, 3, 4}, {[2] = true}, ref, true)), 1e-5, name .. " f32 dim 2")
  end)
end

test("sum/prod/amax of integer tensors stay exact; mean of integers is float", function()
  local x = ai.tensor({{1, 2, 3}, {4, 5, 6}}, {dtype = "i64"})
  eq(x:sum():item(), 21)
  eq(x:sum(1):tolist(), {{5, 7, 9}})
  eq(x:sum(2, {keepdim = false}):tolist(), {6, 15})
  eq(x:prod():item(), 720)
  eq(x:amax():item(), 6)
  eq(x:amin(2):tolist(), {{1}, {4}})
  eq(math.type(x:sum():item()), "integer")
  near(x:mean():item(), 3.5, 0)
  ok(x:mean().dtype == "f32" or x:mean().dtype == "f64", "mean of integers is floating")
  eq(ai.tensor({3000000000, 3000000000}, {dtype = "i64"}):sum():item(), 6000000000)
  local u = ai.tensor({200, 100}, {dtype = "u8"})
  eq(u:sum():item(), 300, "sum of u8 does not wrap")
end)

test("max/min with a dim return values and 1-based indices; without dim the value", function()
  local base = mk({2, 3, 4}, {seed = 91})
  for _, layout in ipairs{"contiguous", "permuted"} do
    local x = layout == "contiguous" and base or base:permute(2, 3, 1)
    local sh, xv = x.shape, flat(x)
    near(x:max():item(), R.amax(xv), 0)
    near(x:min():item(), R.amin(xv), 0)
    eq(x:max().shape, {})
    for d = 1, 3 do
      for _, which in ipairs{"max", "min"} do
        local vref = ref_reduce(xv, sh, {[d] = true}, which == "max" and R.amax or R.amin, true)
        local iref, ish = ref_reduce(xv, sh, {[d] = true}, which == "max" and R.argmax or R.argmin, true)
        local v, i = x[which](x, d)
        eq(v.shape, ish)
        eq(i.shape, ish)
        eq(i.dtype, "i64")
        near(flat(v), vref, 0, which .. " values dim " .. d .. " " .. layout)
        eq(flat(i), iref, which .. " indices dim " .. d .. " " .. layout)
        local v2, i2 = x[which](x, d, {keepdim = false})
        local _, ish2 = ref_reduce(xv, sh, {[d] = true}, R.amax, false)
        eq(v2.shape, ish2)
        eq(i2.shape, ish2)
        eq(flat(i2), iref)
        -- the index picks the value: gather(x, d, i) == v
        near(flat(x:gather(d, i)), flat(v), 0)
      end
    end
  end
  -- max(x, y) is the elementwise maximum
  eq(ai.max(ai.tensor{1, 5}, ai.tensor{3, 2}):tolist(), {3, 5})
  eq(ai.min(ai.tensor{1, 5}, ai.tensor{3, 2}):tolist(), {1, 2})
end)

test("argmax/argmin over all (flat 1-based index) and along each dim", function()
  local base = mk({2, 3, 4}, {seed = 92})
  for _, layout in ipairs{"contiguous", "permuted"} do
    local x = layout == "contiguous" and base or base:permute(3, 2, 1)
    local sh, xv = x.shape, flat(x)
    eq(x:argmax():item(), R.argmax(xv), "flat argmax " .. layout)
    eq(x:argmin():item(), R.argmin(xv), "flat argmin " .. layout)
    eq(x:argmax().dtype, "i64")
    for d = 1, 3 do
      local w, wsh = ref_reduce(xv, sh, {[d] = true}, R.argmax, true)
      local y = x:argmax(d)
      eq(y.shape, wsh)
      eq(flat(y), w, "argmax dim " .. d .. " " .. layout)
      local w2 = ref_reduce(xv, sh, {[d] = true}, R.argmin, true)
      eq(flat(ai.argmin(x, d)), w2, "argmin dim " .. d .. " " .. layout)
      local _, wsh3 = ref_reduce(xv, sh, {[d] = true}, R.argmin, false)
      eq(x:argmin(d, {keepdim = false}).shape, wsh3)
    end
  end
  eq(ai.tensor{1, 3, 3, 2}:argmax():item(), 2, "ties: the first index")
end)

test("norm: default 2, 'fro', 1, inf; var/std unbiased by default", function()
  local x = ai.tensor({{3, -4}, {0, 12}}, {dtype = "f64"})
  near(x:norm():item(), 13, 1e-12)
  near(x:norm("fro"):item(), 13, 1e-12)
  near(x:norm(1):item(), 19, 1e-12)
  near(x:norm("inf"):item(), 12, 0)
  near(x:norm(2, 2, {keepdim = false}):tolist(), {5, 12}, 1e-12)
  near(x:norm(1, 1):tolist(), {{3, 16}}, 1e-12)
  local v = ai.tensor({1, 2, 3, 4}, {dtype = "f64"})
  near(v:var():item(), 5 / 3, 1e-12)
  near(v:var({unbiased = false}):item(), 1.25, 1e-12)
  near(v:std():item(), math.sqrt(5 / 3), 1e-12)
  near(v:std{unbiased = false}:item(), math.sqrt(1.25), 1e-12)
end)

local function ref_cum(v, sh, d, prod)
  local out = {}
  for i = 1, #v do
    local idx = unravel(i, sh)
    local acc = prod and 1 or 0
    for k = 1, idx[d] do
      local j = {table.unpack(idx)}
      j[d] = k
      local e = v[ravel(j, sh)]
      if prod then acc = acc * e else acc = acc + e end
    end
    out[i] = acc
  end
  return out
end

test("cumsum and cumprod along each dim, contiguous and permuted", function()
  local base = mk({2, 3, 4}, {lo = 0.5, hi = 1.5, seed = 93})
  for _, layout in ipairs{"contiguous", "permuted"} do
    local x = layout == "contiguous" and base or base:permute(3, 1, 2)
    local sh, xv = x.shape, flat(x)
    for d = 1, 3 do
      local cs = x:cumsum(d)
      eq(cs.shape, sh)
      near(flat(cs), ref_cum(xv, sh, d, false), 1e-12, "cumsum dim " .. d .. " " .. layout)
      near(flat(ai.cumprod(x, d)), ref_cum(xv, sh, d, true), 1e-12, "cumprod dim " .. d .. " " .. layout)
      near(flat(x:cumsum(d - 4)), ref_cum(xv, sh, d, false), 1e-12, "negative dim")
    end
  end
  eq(ai.tensor({1, 2, 3}, {dtype = "i64"}):cumsum(1):tolist(), {1, 3, 6})
  eq(ai.tensor({1, 2, 3}, {dtype = "i64"}):cumprod(1):tolist(), {1, 2, 6})
  near(ai.tensor{1, 2, 3}:cumsum(1):tolist(), {1, 3, 6}, 0)
end)

test("logsumexp is stable for large inputs", function()
  local x = ai.tensor({1000, 1000}, {dtype = "f64"})
  near(x:logsumexp():item(), 1000 + math.log(2), 1e-12)
  local y = ai.tensor({-1000, -1000})
  near(y:logsumexp():item(), -1000 + math.log(2), 1e-3)
end)

test("errors: reductions", function()
  local x = ai.zeros(2, 3)
  expect_error("dimension 3 out of range", function() return x:sum(3) end)
  expect_error("dimension 0 out of range", function() return x:mean(0) end)
  expect_error("dimension -3 out of range", function() return x:amax(-3) end)
  expect_error("out of range", function() return x:max(3) end)
  expect_error("out of range", function() return x:argmax(0) end)
  expect_error("out of range", function() return x:cumsum(3) end)
  expect_error("out of range", function() return x:var({1, 5}) end)
  expect_error("cannot reduce over an empty dimension", function() return ai.zeros(0, 3):amax(1) end)
  expect_error("max", function() return ai.zeros(0):max() end)
  expect_error("norm: p must be positive or inf", function() return x:norm(-1) end)
  expect_error("p must be a number, 'inf' or 'fro'", function() return x:norm("nuc") end)
  expect_error("option 'keepdim' must be a boolean", function() return x:sum(1, {keepdim = 1}) end)
  expect_error("tensor expected", function() return ai.sum({1, 2}) end)
end)

---------------------------------------------------------------------------- matmul

local function ref_matmul(av, ash, bv, bsh)
  local a1, b1 = #ash == 1, #bsh == 1
  if a1 then ash = {1, ash[1]} end
  if b1 then bsh = {bsh[1], 1} end
  local M, K, N = ash[#ash - 1], ash[#ash], bsh[#bsh]
  assert(bsh[#bsh - 1] == K)
  local abatch, bbatch = {}, {}
  for d = 1, #ash - 2 do abatch[d] = ash[d] end
  for d = 1, #bsh - 2 do bbatch[d] = bsh[d] end
  local obatch = bshape(abatch, bbatch)
  local nb = numel(obatch)
  local out = {}
  for bi = 1, nb do
    local bidx = unravel(bi, obatch)
    local function aoff()
      local k, off = 0, #obatch - #abatch
      for d = 1, #abatch do k = k * abatch[d] + ((abatch[d] == 1) and 0 or (bidx[d + off] - 1)) end
      return k * M * K
    end
    local function boff()
      local k, off = 0, #obatch - #bbatch
      for d = 1, #bbatch do k = k * bbatch[d] + ((bbatch[d] == 1) and 0 or (bidx[d + off] - 1)) end
      return k * K * N
    end
    local ao, bo = aoff(), boff()
    for i = 1, M do
      for j = 1, N do
        local s = 0
        for k = 1, K do s = s + av[ao + (i - 1) * K + k] * bv[bo + (k - 1) * N + j] end
        out[#out + 1] = s
      end
    end
  end
  local osh = {table.unpack(obatch)}
  if not a1 then osh[#osh + 1] = M end
  if not b1 then osh[#osh + 1] = N end
  return out, osh
end

local matmul_cases = {
  {{4}, {4}}, {{3, 4}, {4}}, {{4}, {4, 5}}, {{3, 4}, {4, 5}}, {{2, 3, 4}, {2, 4, 5}},
  {{2, 3, 4}, {4, 5}}, {{3, 4}, {2, 4, 5}}, {{2, 1, 3, 4}, {3, 4, 2}}, {{2, 3, 4}, {4}},
  {{4}, {2, 4, 3}}, {{1, 1}, {1, 1}}, {{5, 7}, {7, 1}}, {{2, 1, 2, 3}, {1, 3, 3, 2}},
}

for _, dt in ipairs{"f64", "f32", "i64"} do
  test("matmul against a naive triple loop (" .. dt .. ")", function()
    local tol = dt == "f32" and 1e-5 or (dt == "f64" and 1e-12 or 0)
    for k, c in ipairs(matmul_cases) do
      local a = mk(c[1], {dtype = dt, int = dt == "i64", lo = -3, hi = 3, seed = k})
      local b = mk(c[2], {dtype = dt, int = dt == "i64", lo = -3, hi = 3, seed = k + 50})
      local want, wsh = ref_matmul(flat(a), c[1], flat(b), c[2])
      local y = ai.matmul(a, b)
      eq(y.shape, wsh, "shape of " .. ser(c))
      eq(y.dtype, dt)
      near(flat(y), want, tol, "values of " .. ser(c))
      near(flat(a:matmul(b)), want, tol, "method " .. ser(c))
    end
  end)
end

test("matmul with transposed and sliced (non-contiguous) operands", function()
  for _, dt in ipairs{"f64", "f32"} do
    local tol = dt == "f32" and 1e-5 or 1e-12
    local a = mk({4, 3}, {dtype = dt, seed = 201}):t() -- 3x4
    local b = mk({5, 4}, {dtype = dt, seed = 202}):t() -- 4x5
    local want = ref_matmul(flat(a), {3, 4}, flat(b), {4, 5})
    near(flat(ai.matmul(a, b)), want, tol, dt .. " both transposed")
    local bc = b:contiguous()
    near(flat(ai.matmul(a, bc)), want, tol, dt .. " left transposed")
    near(flat(ai.matmul(a:contiguous(), b)), want, tol, dt .. " right transposed")
    local s = mk({3, 8}, {dtype = dt, seed = 203}):slice(2, 1, 8, 2) -- 3x4 with stride 2
    near(flat(ai.matmul(s, b)), ref_matmul(flat(s), {3, 4}, flat(b), {4, 5}), tol, dt .. " strided")
    local p = mk({4, 2, 3}, {dtype = dt, seed = 204}):permute(2, 3, 1) -- 2x3x4
    local q = mk({2, 5, 4}, {dtype = dt, seed = 205}):transpose(2, 3) -- 2x4x5
    near(flat(ai.matmul(p, q)), ref_matmul(flat(p), {2, 3, 4}, flat(q), {2, 4, 5}), tol, dt .. " batched permuted")
    local e = mk({1, 4, 5}, {dtype = dt, seed = 206}):expand(2, 4, 5)
    near(flat(ai.matmul(p, e)), ref_matmul(flat(p), {2, 3, 4}, flat(e), {2, 4, 5}), tol, dt .. " expanded")
  end
end)

test("matmul of mixed dtypes promotes", function()
  local a = ai.tensor({{1, 2}}, {dtype = "i64"})
  local b = ai.tensor({{0.5}, {0.25}}, {dtype = "f64"})
  local y = ai.matmul(a, b)
  eq(y.dtype, "f64")
  eq(y:tolist(), {{1}})
end)

test("mm, bmm, dot", function()
  local a = mk({3, 4}, {seed = 211})
  local b = mk({4, 2}, {seed = 212})
  near(flat(ai.mm(a, b)), ref_matmul(flat(a), {3, 4}, flat(b), {4, 2}), 1e-12)
  near(flat(a:mm(b)), ref_matmul(flat(a), {3, 4}, flat(b), {4, 2}), 1e-12)
  local p = mk({2, 3, 4}, {seed = 213})
  local q = mk({2, 4, 2}, {seed = 214})
  near(flat(ai.bmm(p, q)), ref_matmul(flat(p), {2, 3, 4}, flat(q), {2, 4, 2}), 1e-12)
  local u = ai.tensor({1, 2, 3}, {dtype = "f64"})
  local v = ai.tensor({4, -5, 6}, {dtype = "f64"})
  local d = ai.dot(u, v)
  eq(d.shape, {})
  eq(d:item(), 12.0)
  eq(u:dot(v):item(), 12.0)
  eq(ai.dot(ai.tensor({1, 2}, {dtype = "i64"}), ai.tensor({3, 4}, {dtype = "i64"})):item(), 11)
end)

test("errors: matmul, mm, bmm, dot", function()
  expect_error("matmul: inner sizes differ (3x4 @ 5x2: 4 vs 5)", function() return ai.matmul(ai.zeros(3, 4), ai.zeros(5, 2)) end)
  expect_error("inner sizes differ", function() return ai.matmul(ai.zeros(3), ai.zeros(4)) end)
  expect_error("inner sizes differ", function() return ai.matmul(ai.zeros(2, 3, 4), ai.zeros(3)) end)
  expect_error("matmul: batch dimensions 2 and 3 cannot be broadcast", function() return ai.matmul(ai.zeros(2, 3, 4), ai.zeros(3, 4, 5)) end)
  expect_error("matmul: both arguments need at least 1 dimension", function() return ai.matmul(ai.tensor(2), ai.zeros(2)) end)
  expect_error("mm: expects two 2-D tensors", function() return ai.mm(ai.zeros(2, 3, 4), ai.zeros(4, 2)) end)
  expect_error("bmm: expects two 3-D tensors", function() return ai.bmm(ai.zeros(3, 4), ai.zeros(4, 2)) end)
  expect_error("dot: expects two 1-D tensors", function() return ai.dot(ai.zeros(3, 1), ai.zeros(3)) end)
  expect_error("inner sizes differ", function() return ai.dot(ai.zeros(3), ai.zeros(4)) end)
  expect_error("tensor expected, got number", function() return ai.matmul(ai.zeros(2), 3) end)
end)

---------------------------------------------------------------------------- joining, splitting

test("cat along each dim, also negative dims and mixed sizes", function()
  local a = mk({2, 3, 4}, {seed = 301})
  local b = mk({2, 3, 4}, {seed = 302})
  local av, bv = flat(a), flat(b)
  for d = 1, 3 do
    local c = ai.cat({a, b}, d)
    local sh = {2, 3, 4}
    sh[d] = sh[d] * 2
    eq(c.shape, sh)
    for i = 1, numel(sh) do
      local idx = unravel(i, sh)
      local sidx = {table.unpack(idx)}
      local src = av
      if sidx[d] > ({2, 3, 4})[d] then src = bv; sidx[d] = sidx[d] - ({2, 3, 4})[d] end
      near(c[idx]:item(), src[ravel(sidx, {2, 3, 4})], 0)
    end
    near(flat(ai.cat({a, b}, d - 4)), flat(c), 0, "negative dim")
  end
  local x = ai.cat({ai.zeros(2, 1), ai.ones(2, 3), ai.full({2, 2}, 2)}, 2)
  eq(x:tolist(), {{0, 1, 1, 1, 2, 2}, {0, 1, 1, 1, 2, 2}})
  eq(ai.cat({a:permute(3, 1, 2), b:permute(3, 1, 2)}, 1).shape, {8, 2, 3})
  near(flat(ai.cat({a:permute(3, 1, 2), b:permute(3, 1, 2)}, 1)),
       flat(ai.cat({a, b}, 3):permute(3, 1, 2)), 0, "cat of permuted inputs")
  eq(ai.cat({ai.tensor({1}, {dtype = "i64"}), ai.tensor{0.5}}, 1).dtype, "f32", "cat promotes dtypes")
end)

test("stack along each dim", function()
  local a = mk({2, 3}, {seed = 311})
  local b = mk({2, 3}, {seed = 312})
  local c = mk({2, 3}, {seed = 313})
  local s1 = ai.stack({a, b, c}, 1)
  eq(s1.shape, {3, 2, 3})
  near(flat(s1[2]), flat(b), 0)
  local s2 = ai.stack({a, b, c}, 2)
  eq(s2.shape, {2, 3, 3})
  near(flat(s2[{{}, 3}]), flat(c), 0)
  local s3 = ai.stack({a, b, c}, 3)
  eq(s3.shape, {2, 3, 3})
  near(flat(s3[{{}, {}, 1}]), flat(a), 0)
  near(flat(ai.stack({a, b, c}, -1)), flat(s3), 0)
  eq(ai.stack({ai.tensor(1), ai.tensor(2)}, 1):tolist(), {1, 2})
end)

test("cat and stack default to dim 1 when no dim is given", function()
  eq(ai.cat({ai.arange(2), ai.arange(3)}):tolist(), {0, 1, 0, 1, 2})
  eq(ai.stack({ai.arange(2), ai.arange(2)}).shape, {2, 2})
  eq(ai.cat({ai.zeros(1, 2), ai.ones(2, 2)}).shape, {3, 2})
end)

test("split by size and by sizes, chunk, on several dims; pieces are views", function()
  local x = ai.arange(24):view(4, 6)
  local p = ai.split(x, 4, 2)
  eq(#p, 2)
  eq(p[1].shape, {4, 4})
  eq(p[2].shape, {4, 2})
  eq(p[2]:tolist(), {{4, 5}, {10, 11}, {16, 17}, {22, 23}})
  local q = x:split(3)
  eq(#q, 2)
  eq(q[2]:tolist(), {{18, 19, 20, 21, 22, 23}})
  local r = ai.split(x, {1, 2, 3}, 2)
  eq(#r, 3)
  eq(r[1].shape, {4, 1})
  eq(r[3][1]:tolist(), {3, 4, 5})
  local c = ai.chunk(x, 3, 2)
  eq(#c, 3)
  for i = 1, 3 do eq(c[i].shape, {4, 2}) end
  eq(c[3][4]:tolist(), {22, 23})
  local c2 = x:chunk(3)
  eq(#c2, 2, "4 rows in chunks of ceil(4/3) = 2")
  eq(c2[2].shape, {2, 6})
  local c3 = ai.chunk(ai.arange(5), 2)
  eq(#c3, 2)
  eq(c3[1]:tolist(), {0, 1, 2})
  eq(c3[2]:tolist(), {3, 4})
  local y = ai.zeros(2, 4)
  ai.split(y, 2, 2)[2]:fill_(1)
  eq(y:tolist(), {{0, 0, 1, 1}, {0, 0, 1, 1}}, "split pieces alias the input")
  local z = ai.arange(24):view(2, 3, 4)
  local s = ai.split(z, 1, 3)
  eq(#s, 4)
  eq(s[4]:squeeze():tolist(), {{3, 7, 11}, {15, 19, 23}})
  eq(#ai.split(z, 2, -2), 2)
end)

test("errors: cat, stack, split, chunk", function()
  expect_error("cat: tensor 2 has size 3 at dimension 1, expected 2", function() return ai.cat({ai.zeros(2, 2), ai.zeros(3, 3)}, 2) end)
  expect_error("cat: tensor 2 has 1 dimensions, expected 2", function() return ai.cat({ai.zeros(2, 2), ai.zeros(2)}, 1) end)
  expect_error("cat: needs at least one tensor", function() return ai.cat({}) end)
  expect_error("cat: zero-dimensional tensors cannot be concatenated", function() return ai.cat({ai.tensor(1), ai.tensor(2)}, 1) end)
  expect_error("out of range", function() return ai.cat({ai.zeros(2), ai.zeros(2)}, 2) end)
  expect_error("expected a list of tensors, item 2 is a number", function() return ai.cat({ai.zeros(2), 3}, 1) end)
  expect_error("stack: tensor 2's shape differs from tensor 1's", function() return ai.stack({ai.zeros(2), ai.zeros(3)}, 1) end)
  expect_error("stack: needs at least one tensor", function() return ai.stack({}) end)
  expect_error("out of range", function() return ai.stack({ai.zeros(2), ai.zeros(2)}, 3) end)
  expect_error("split: sizes add up to 5, dimension has 6", function() return ai.split(ai.zeros(6), {2, 3}) end)
  expect_error("split size must be positive", function() return ai.split(ai.zeros(6), 0) end)
  expect_error("split: cannot split a 0-dim tensor", function() return ai.split(ai.tensor(1), 1) end)
  expect_error("number of chunks must be positive", function() return ai.chunk(ai.zeros(6), 0) end)
  expect_error("table expected", function() return ai.cat(ai.zeros(2)) end)
end)

---------------------------------------------------------------------------- index ops

local function L(t) return ai.tensor(t, {dtype = "i64"}) end

test("index_select along each dim (table or tensor index, repeats, 1-based)", function()
  local x = mk({3, 4, 2}, {seed = 401})
  local sh, xv = x.shape, flat(x)
  local ix = {3, 1, 3}
  for d = 1, 3 do
    local ixd = {}
    for k, v in ipairs(ix) do ixd[k] = math.min(v, sh[d]) end
    local y = ai.index_select(x, d, ixd)
    local osh = {table.unpack(sh)}
    osh[d] = #ixd
    eq(y.shape, osh)
    local want = {}
    for i = 1, numel(osh) do
      local idx = unravel(i, osh)
      idx[d] = ixd[idx[d]]
      want[i] = xv[ravel(idx, sh)]
    end
    near(flat(y), want, 0, "dim " .. d)
    near(flat(x:index_select(d, L(ixd))), want, 0, "tensor index dim " .. d)
  end
  eq(ai.index_select(ai.arange(5), 1, {-1 + 6, 1}):tolist(), {4, 0})
  eq(ai.index_select(ai.arange(10, 15), 1, L{}):numel(), 0)
end)

test("gather along each dim against a loop", function()
  local x = mk({3, 4}, {seed = 402})
  local xv = flat(x)
  local i1 = {{1, 3, 2, 1}, {3, 3, 1, 2}} -- 2x4, indexes dim 1
  local y1 = ai.gather(x, 1, L(i1))
  eq(y1.shape, {2, 4})
  for i = 1, 2 do for j = 1, 4 do near(y1[{i, j}]:item(), xv[(i1[i][j] - 1) * 4 + j], 0) end end
  local i2 = {{4, 1}, {2, 2}, {3, 1}} -- 3x2, indexes dim 2
  local y2 = x:gather(2, L(i2))
  eq(y2.shape, {3, 2})
  for i = 1, 3 do for j = 1, 2 do near(y2[{i, j}]:item(), xv[(i - 1) * 4 + i2[i][j]], 0) end end
  -- 3-D, on a permuted input
  local z = mk({2, 3, 4}, {seed = 403}):permute(1, 3, 2) -- 2x4x3
  local zv = flat(z)
  local idx = ai.randint(1, 3, {2, 4, 2})
  local g = z:gather(3, idx)
  local iv = flat(idx)
  for i = 1, 16 do
    local p = unravel(i, {2, 4, 2})
    near(flat(g)[i], zv[ravel({p[1], p[2], iv[i]}, {2, 4, 3})], 0)
  end
end)

test("scatter and scatter_add along each dim", function()
  local base = ai.zeros({3, 4}, {dtype = "f64"})
  local src = ai.tensor({{1, 2, 3, 4}, {5, 6, 7, 8}}, {dtype = "f64"})
  local ix = L{{3, 1, 2, 3}, {1, 2, 2, 1}}
  local s = ai.scatter(base, 1, ix, src)
  eq(s:tolist(), {{5, 2, 0, 8}, {0, 6, 7, 0}, {1, 0, 0, 4}})
  eq(base:sum():item(), 0.0, "scatter returns a new tensor")
  local sa = ai.scatter_add(base, 1, L{{1, 1, 2, 3}, {1, 1, 2, 3}}, src)
  eq(sa:tolist(), {{6, 8, 0, 0}, {0, 0, 10, 0}, {0, 0, 0, 12}})
  local s2 = ai.scatter(ai.zeros({2, 3}, {dtype = "f64"}), 2, L{{3, 1}, {2, 2}}, ai.tensor({{1, 2}, {3, 4}}, {dtype = "f64"}))
  eq(s2:tolist(), {{2, 0, 1}, {0, 4, 0}})
  local s3 = ai.scatter_add(ai.ones({2, 3}, {dtype = "f64"}), 2, L{{1, 1, 1}, {3, 3, 2}}, ai.tensor({{1, 2, 3}, {4, 5, 6}}, {dtype = "f64"}))
  eq(s3:tolist(), {{7, 1, 1}, {1, 7, 10}})
  local s4 = base:scatter(2, L{{2}, {4}, {1}}, 9)
  eq(s4:tolist(), {{0, 9, 0, 0}, {0, 0, 0, 9}, {9, 0, 0, 0}}, "a number fills")
  -- random check against a loop
  local x = mk({3, 5}, {seed = 404})
  local sv = mk({2, 5}, {seed = 405})
  local ri = ai.randint(1, 3, {2, 5})
  local got = flat(ai.scatter_add(x, 1, ri, sv))
  local want = flat(x)
  local riv, svv = flat(ri), flat(sv)
  for i = 1, 10 do
    local p = unravel(i, {2, 5})
    local k = ravel({riv[i], p[2]}, {3, 5})
    want[k] = want[k] + svv[i]
  end
  near(got, want, 1e-12)
end)

test("index_add adds rows of the source at the indexed positions", function()
  local x = ai.zeros({4, 2}, {dtype = "f64"})
  local y = ai.index_add(x, 1, {2, 4, 2}, ai.tensor({{1, 2}, {3, 4}, {5, 6}}, {dtype = "f64"}))
  eq(y:tolist(), {{0, 0}, {6, 8}, {0, 0}, {3, 4}})
  local z = ai.index_add(ai.ones({2, 3}, {dtype = "f64"}), 2, L{3, 3}, ai.tensor({{1, 2}, {3, 4}}, {dtype = "f64"}))
  eq(z:tolist(), {{1, 1, 4}, {1, 1, 8}})
  eq(x:sum():item(), 0.0, "index_add returns a new tensor")
end)

test("masked_select returns the selected elements in order, broadcasting the mask", function()
  local x = mk({3, 4}, {seed = 406})
  local xv = flat(x)
  local m = x:gt(0)
  local want = {}
  for _, v in ipairs(xv) do if v > 0 then want[#want + 1] = v end end
  local y = ai.masked_select(x, m)
  eq(y.shape, {#want})
  near(flat(y), want, 0)
  near(flat(x[m]), want, 0)
  local row = ai.tensor{true, false, false, true}
  local y2 = x:masked_select(row)
  local w2 = {}
  for i = 1, 12 do local j = (i - 1) % 4 + 1; if j == 1 or j == 4 then w2[#w2 + 1] = xv[i] end end
  near(flat(y2), w2, 0)
  eq(ai.masked_select(x, x:gt(100)):numel(), 0)
  near(flat(x:t():masked_select(x:t():gt(0))), (function()
    local o = {}
    for _, v in ipairs(flat(x:t())) do if v > 0 then o[#o + 1] = v end end
    return o
  end)(), 0, "non-contiguous input")
end)

test("errors: index ops", function()
  local x = ai.zeros(3, 4)
  expect_error("index_select: index 4 out of range for dimension 1 of size 3", function() return ai.index_select(x, 1, {1, 4}) end)
  expect_error("out of range", function() return ai.index_select(x, 1, {0}) end)
  expect_error("index_select: index must be 1-D", function() return ai.index_select(x, 1, L{{1}}) end)
  expect_error("index must be an i64 tensor (got f32); use :long()", function() return ai.index_select(x, 1, ai.tensor{1}) end)
  expect_error("index table must hold integers", function() return ai.index_select(x, 1, {1.5}) end)
  expect_error("index tensor or table expected, got string", function() return ai.index_select(x, 1, "a") end)
  expect_error("dimension 3 out of range", function() return ai.index_select(x, 3, {1}) end)
  expect_error("gather: index must have the same number of dimensions as the tensor (1 vs 2)", function() return ai.gather(x, 1, L{1}) end)
  expect_error("gather: index 5 out of range for dimension 2 of size 4", function() return ai.gather(x, 2, L{{5}}) end)
  expect_error("gather: index size 4 exceeds the tensor's 3 at dimension 1", function() return ai.gather(x, 2, L{{1}, {1}, {1}, {1}}) end)
  expect_error("scatter: index 4 out of range", function() return ai.scatter(x, 1, L{{4}}, ai.ones(1, 1)) end)
  expect_error("index size", function() return ai.scatter(x, 1, L{{1, 1}}, ai.ones(1, 1)) end)
  expect_error("scatter_add: source must have the tensor's number of dimensions", function() return ai.scatter_add(x, 1, L{{1}}, ai.ones(1)) end)
  expect_error("tensor or number expected", function() return ai.scatter(x, 1, L{{1}}, "a") end)
  expect_error("index_add: source shape must match", function() return ai.index_add(x, 1, {1}, ai.ones(1, 3)) end)
  expect_error("mask must be a u8 tensor", function() return ai.masked_select(x, ai.ones(3, 4)) end)
  expect_error("cannot be broadcast", function() return ai.masked_select(x, ai.tensor{true, false}) end)
end)

---------------------------------------------------------------------------- bernoulli

test("bernoulli draws 0/1 with per-element probabilities, reproducibly", function()
  ai.manual_seed(17)
  local p = ai.tensor({0, 1, 0.5}, {dtype = "f64"}):view(1, 3):expand(20000, 3):contiguous()
  local b = ai.bernoulli(p)
  eq(b.dtype, "f64")
  eq(b.shape, {20000, 3})
  local m = b:mean(1, {keepdim = false}):tolist()
  eq(m[1], 0.0, "p = 0 never draws 1")
  eq(m[2], 1.0, "p = 1 always draws 1")
  near(m[3], 0.5, 0.02)
  for _, v in ipairs(flat(b[{{1, 50}}])) do ok(v == 0 or v == 1) end
  ai.manual_seed(3)
  local a1 = ai.bernoulli(ai.full({100}, 0.3)):tolist()
  ai.manual_seed(3)
  eq(ai.bernoulli(ai.full({100}, 0.3)):tolist(), a1)
  eq(ai.full({4}, 0.3):bernoulli().dtype, "f32")
  eq(ai.bernoulli(ai.full({2}, 1, {dtype = "i64"})).dtype, "f32")
end)

test("edge cases: NaN propagates through max/min/amax; empty reductions; logsumexp of -inf", function()
  local nan = 0 / 0
  local x = ai.tensor({1, nan, 2}, {dtype = "f64"})
  local function isnan(v) return v ~= v end
  ok(isnan(x:amax():item()) and isnan(x:amin():item()) and isnan(x:max():item()) and isnan(x:sum():item()))
  local m = ai.maximum(x, 1.5):tolist()
  ok(m[1] == 1.5 and isnan(m[2]) and m[3] == 2)
  local m2 = ai.minimum(1.5, x):tolist()
  ok(m2[1] == 1 and isnan(m2[2]) and m2[3] == 1.5)
  eq(x:argmax():item(), 2, "argmax points at the NaN")
  eq(ai.zeros(0):sum():item(), 0.0)
  eq(ai.zeros(0):prod():item(), 1.0)
  ok(isnan(ai.zeros(0):mean():item()))
  eq(ai.zeros(0, 3):sum(1):tolist(), {{0, 0, 0}})
  eq(ai.tensor({-math.huge, -math.huge}, {dtype = "f64"}):logsumexp():item(), -math.huge)
  eq(ai.tensor({math.huge, 1}, {dtype = "f64"}):logsumexp():item(), math.huge)
  ok(isnan(ai.tensor{5}:var():item()), "unbiased variance of one element is nan")
  eq(ai.tensor{5}:var{unbiased = false}:item(), 0.0)
  eq(ai.tensor(2.5):sum():item(), 2.5)
  eq(ai.tensor(2.5):sum().shape, {})
end)

test("large tensors (multi-threaded paths) agree with naive loops", function()
  local was = ai.get_num_threads()
  ai.set_num_threads(4)
  ai.manual_seed(77)
  -- few long rows: rows split into chunks across threads
  local a = ai.rand({2, 50000}, {dtype = "f64"})
  local b = ai.rand({50000}, {dtype = "f64"})
  local av, bv = flat(a), flat(b)
  local y = flat(a * b + 1)
  local bad = 0
  for i = 1, #av do
    local j = (i - 1) % 50000 + 1
    if math.abs(y[i] - (av[i] * bv[j] + 1)) > 1e-12 then bad = bad + 1 end
  end
  eq(bad, 0, "elementwise mismatches")
  -- many short rows, transposed operand
  local c = ai.rand({300, 400}, {dtype = "f64"})
  local ct = c:t() -- 400x300 strided
  local e = flat(ct:exp())
  local ctv = flat(ct)
  bad = 0
  for i = 1, #ctv do if math.abs(e[i] - math.exp(ctv[i])) > 1e-12 * e[i] then bad = bad + 1 end end
  eq(bad, 0, "exp of a transposed tensor")
  -- reductions
  local s = 0
  for _, v in ipairs(av) do s = s + v end
  near(a:sum():item(), s, 1e-10)
  local rows = a:sum(2, {keepdim = false}):tolist()
  local r1 = 0
  for i = 1, 50000 do r1 = r1 + av[i] end
  near(rows[1], r1, 1e-10)
  local colsum = flat(c:sum(1))
  local cv = flat(c)
  for j = 1, 400, 37 do
    local acc = 0
    for i = 1, 300 do acc = acc + cv[(i - 1) * 400 + j] end
    near(colsum[j], acc, 1e-10, "column " .. j)
  end
  local mx, ix = c:max(2, {keepdim = false})
  local mxv, ixv = flat(mx), flat(ix)
  for i = 1, 300, 29 do
    local best, bi = -1, 0
    for j = 1, 400 do if cv[(i - 1) * 400 + j] > best then best, bi = cv[(i - 1) * 400 + j], j end end
    eq(mxv[i], best)
    eq(ixv[i], bi)
  end
  -- a larger matmul (BLAS path) against the naive loop
  local p = ai.randn({33, 65}, {dtype = "f64"})
  local q = ai.randn({65, 47}, {dtype = "f64"})
  near(flat(ai.matmul(p, q)), (ref_matmul(flat(p), {33, 65}, flat(q), {65, 47})), 1e-10)
  near(flat(ai.matmul(p:float(), q:float())), (ref_matmul(flat(p:float()), {33, 65}, flat(q:float()), {65, 47})), 1e-4)
  local pi = ai.randint(-5, 5, {20, 30})
  local qi = ai.randint(-5, 5, {30, 10})
  eq(flat(ai.matmul(pi, qi)), (ref_matmul(flat(pi), {20, 30}, flat(qi), {30, 10})))
  ai.set_num_threads(was)
end)

test("error count", function()
  local n = (T.error_cases or 0) - errors_at_start
  print(("test_ops.lua: %d error cases checked"):format(n))
  ok(n >= 60, "error cases: " .. n)
end)
