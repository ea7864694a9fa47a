-- tests/test_ops_elementwise.lua: elementwise math (unary and binary ops, operators, in-place
-- ops), type promotion, broadcasting and bernoulli, each checked element by element against a
-- naive Lua implementation.
-- Run alone: ./aiart-lua tests/run.lua test_ops_elementwise (test_ops: every tests/test_ops_*.lua)
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"
local ref = require "ops_ref"

local test, near, ok, expect_error = T.test, T.near, T.ok, T.expect_error
local ser, eq, flat, nest = T.show, T.eq, T.flat, T.nest  -- shared helpers (tests/helper.lua)
local mk, ref_binary = ref.mk, ref.ref_binary

local count_errors = T.count_error_cases()

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
  eq(x.requires_grad, true)
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

count_errors("test_ops_elementwise.lua", 24)
