-- tests/test_ops_index.lua: joining and splitting (cat, stack, split, chunk) and the index
-- ops (index_select, gather, scatter, scatter_add, index_add, masked_select), each checked
-- against a naive Lua implementation.
-- Run alone: ./aiart-lua tests/run.lua test_ops_index (test_ops: every tests/test_ops_*.lua)
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"
local ref = require "ops_ref"

local test, near, expect_error = T.test, T.near, T.expect_error
local eq, flat, numel = T.eq, T.flat, T.numel  -- shared helpers (tests/helper.lua)
local mk, unravel, ravel = ref.mk, ref.unravel, ref.ravel

local count_errors = T.count_error_cases()

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

count_errors("test_ops_index.lua", 20)
