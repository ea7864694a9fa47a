-- tests/test_ops_reduce.lua: reductions (sum, mean, prod, amax/amin, max/min, argmax/argmin,
-- var/std, norm, logsumexp), cumsum/cumprod and their edge cases, each checked against a naive
-- Lua implementation.
-- Run alone: ./aiart-lua tests/run.lua test_ops_reduce (test_ops: every tests/test_ops_*.lua)
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"
local ref = require "ops_ref"

local test, near, ok, expect_error = T.test, T.near, T.ok, T.expect_error
local eq, flat, numel = T.eq, T.flat, T.numel  -- shared helpers (tests/helper.lua)
local mk, unravel, ravel = ref.mk, ref.unravel, ref.ravel

local count_errors = T.count_error_cases()

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

count_errors("test_ops_reduce.lua", 9)
