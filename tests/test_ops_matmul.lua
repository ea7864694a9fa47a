-- tests/test_ops_matmul.lua: matmul, mm, bmm and dot against a naive triple loop, and large
-- tensors (the multi-threaded elementwise, reduction and BLAS paths) against naive loops.
-- Run alone: ./aiart-lua tests/run.lua test_ops_matmul (test_ops: every tests/test_ops_*.lua)
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"
local ref = require "ops_ref"

local test, near, expect_error = T.test, T.near, T.expect_error
local ser, eq, flat, numel = T.show, T.eq, T.flat, T.numel  -- shared helpers (tests/helper.lua)
local mk, unravel, bshape = ref.mk, ref.unravel, ref.bshape

local count_errors = T.count_error_cases()

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

count_errors("test_ops_matmul.lua", 7)
