-- tests/test_sort.lua: sort, argsort, topk, kthvalue, median, quantile, unique, searchsorted
-- against PyTorch's results (tests/parity), their gradients, and their misuse.
local T = require "helper"
local ai = require "aiart"

local P = ai.json.decode(T.readfile("tests/parity/parity.json")).sorting
local function num(v) return v == "nan" and 0 / 0 or v end
local function nums(t)
  if type(t) ~= "table" then return num(t) end
  local r = {}
  for i, v in ipairs(t) do r[i] = nums(v) end
  return r
end
local function plus1(t)
  if type(t) ~= "table" then return t + 1 end
  local r = {}
  for i, v in ipairs(t) do r[i] = plus1(v) end
  return r
end
-- equality with NaN equal to NaN
local function same(a, b)
  if type(a) == "table" then
    if type(b) ~= "table" or #a ~= #b then return false end
    for i = 1, #a do if not same(a[i], b[i]) then return false end end
    return true
  end
  return a == b or (a ~= a and b ~= b)
end
local function eqn(got, want, what) T.ok(same(got, want), what .. ": expected " .. T.show(want) .. ", got " .. T.show(got)) end

local x = ai.tensor(nums(P.x), {dtype = "f64"})

T.test("sort (stable, NaN last) and argsort match PyTorch", function()
  local v, i = x:sort(2)
  eqn(v:tolist(), nums(P.sort_v), "values")
  T.eq(i:tolist(), plus1(P.sort_i), "1-based indices")
  v, i = x:sort(2, {descending = true})
  eqn(v:tolist(), nums(P.sortd_v), "descending values")
  T.eq(i:tolist(), plus1(P.sortd_i), "descending indices")
  T.eq(x:argsort(2):tolist(), plus1(P.sort_i))
  local s = ai.sort(x)
  eqn(s:tolist(), nums(P.sort_v), "ai.sort, the last dim by default")
  local big = ai.tensor({math.maxinteger, math.maxinteger - 1, 1}, {dtype = "i64"})
  T.eq(big:sort():tolist(), {1, math.maxinteger - 1, math.maxinteger}, "integers compare exactly")
end)

T.test("topk, kthvalue and median match PyTorch (median: the lower one; NaN in a row gives NaN)", function()
  local v, i = x:topk(3, 2)
  eqn(v:tolist(), nums(P.topk_v), "topk values")
  T.eq(i:tolist(), plus1(P.topk_i), "topk indices")
  v, i = x[1]:kthvalue(2)
  T.eq(v:tolist(), {P.kth_v})
  T.eq(i:tolist(), {P.kth_i + 1})
  v, i = x:median(2, {keepdim = false})
  eqn(v:tolist(), nums(P.median_v), "median values")
  T.eq(i:tolist(), plus1(P.median_i), "median indices")
  T.eq(x:median(2).shape, {2, 1}, "a dim is kept by default, as the project's reductions")
  T.eq(ai.tensor(P.y, {dtype = "f64"}):median():item(), P.median_all)
end)

T.test("quantile with each interpolation matches PyTorch", function()
  local y, q = ai.tensor(P.y, {dtype = "f64"}), ai.tensor(P.q, {dtype = "f64"})
  for mode, want in pairs(P.quantile) do
    T.near(y:quantile(q, {interpolation = mode}), want, 1e-12, mode)
  end
  T.near(y:quantile(0.3), {P.quantile.linear[2]}, 1e-12, "a number q")
  T.eq(ai.tensor{{1, 2}, {3, 4}}:quantile({0.5}, 2).shape, {1, 2}, "q's dim comes first")
  eqn({ai.tensor{0 / 0, 1, 2}:quantile(0.5):item()}, {0 / 0}, "a NaN gives NaN")
end)

T.test("unique and searchsorted match PyTorch", function()
  local u, inv, cnt = ai.tensor({3, 1, 3, 2, 1, 7}, {dtype = "i64"}):unique({return_inverse = true, return_counts = true})
  T.eq(u:tolist(), P.unique[1])
  T.eq(inv:tolist(), plus1(P.unique[2]))
  T.eq(cnt:tolist(), P.unique[3])
  T.eq(select("#", ai.unique(ai.ones(3))), 1, "only what is asked for")
  local seq, vals = ai.tensor(P.seq, {dtype = "f64"}), ai.tensor(P.vals, {dtype = "f64"})
  T.eq(ai.searchsorted(seq, vals):tolist(), plus1(P.searchsorted))
  T.eq(ai.searchsorted(seq, vals, {right = true}):tolist(), plus1(P.searchsorted_right))
end)

T.test("the sorted values carry gradients (through gather)", function()
  local w = ai.randn(6, {dtype = "f64", requires_grad = true})
  local r = ai.arange(1, 7, {dtype = "f64"})
  T.ok(ai.gradcheck(function(a) return (a:sort()) * r end, {w}))
  T.ok(ai.gradcheck(function(a) return (a:topk(2)) * 3 end, {w}))
  T.ok(ai.gradcheck(function(a) return a:quantile(ai.tensor({0.3, 0.9}, {dtype = "f64"})) end, {w}))
  T.ok(ai.gradcheck(function(a) return (a:median(1)) end, {w}))
end)

T.test("sorting refuses misuse, naming the function and the argument", function()
  T.expect_error("unknown option 'decending' (known: descending, stable)", function() return x:sort(2, {decending = true}) end)
  T.expect_error("dimension 3 out of range", function() return x:sort(3) end)
  T.expect_error("topk: k = 6 is out of range for a dimension of size 5", function() return x:topk(6) end)
  T.expect_error("an integer expected, got 1.5", function() return x:topk(1.5) end)
  T.expect_error("kthvalue: k = 0 is out of range 1..5", function() return x:kthvalue(0) end)
  T.expect_error("quantile: q must be in [0, 1]", function() return x:quantile(1.5) end)
  T.expect_error("interpolation must be linear, lower, higher, nearest or midpoint", function()
    return x:quantile(0.5, {interpolation = "cubic"})
  end)
  T.expect_error("too many arguments", function() return x:sort(2, {}, 1) end)
  T.expect_error("searchsorted: the sorted sequence must be 1-D", function() return ai.searchsorted(x, 1) end)
  T.expect_error("sorted = false is not supported", function() return ai.unique(x, {sorted = false}) end)
end)
