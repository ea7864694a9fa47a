-- tests/test_tensor_views.lua: views that share storage (view, reshape, permute, narrow,
-- expand, squeeze, indexing, masks), copies and in-place writes, and memory: ai.memory, <close>
-- tensors, storages kept alive by their views.
-- Run alone: ./aiart-lua tests/run.lua test_tensor_views
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"

local test, ok, expect_error = T.test, T.ok, T.expect_error
local eq, flat = T.eq, T.flat  -- shared helpers (tests/helper.lua)

local count_errors = T.count_error_cases()

---------------------------------------------------------------------------- views

test("view shares storage; -1 infers a size; varargs or table", function()
  local x = ai.arange(12):float()
  local v = x:view(3, 4)
  eq(v.shape, {3, 4})
  eq(x:view({2, -1}).shape, {2, 6})
  eq(x:view(-1, 3).shape, {4, 3})
  v[{2, 3}] = 100
  eq(x:tolist()[7], 100.0, "write through view reaches the base")
  x[1] = -5
  eq(v[{1, 1}]:item(), -5.0, "write to the base shows in the view")
  local y = ai.zeros(2, 3)
  local va = y:view_as(ai.zeros(3, 2))
  eq(va.shape, {3, 2})
  va:fill_(2)
  eq(flat(y), {2, 2, 2, 2, 2, 2})
end)

test("reshape shares storage when contiguous, copies otherwise", function()
  local x = ai.arange(6):float()
  local r = x:reshape(2, 3)
  r[{1, 1}] = 42
  eq(x:tolist()[1], 42.0)
  local t = ai.arange(6):float():view(2, 3):t() -- 3x2, non-contiguous
  local rr = t:reshape(6)
  eq(rr:tolist(), {0, 3, 1, 4, 2, 5})
  rr[1] = 99
  eq(t[{1, 1}]:item(), 0.0, "a reshape that had to copy does not alias")
  eq(x:reshape({3, -1}).shape, {3, 2})
end)

test("permute, transpose, t, T are views", function()
  local x = ai.arange(24):view(2, 3, 4)
  local p = x:permute(3, 1, 2)
  eq(p.shape, {4, 2, 3})
  eq(p[{4, 2, 3}]:item(), x[{2, 3, 4}]:item())
  eq(p[{2, 1, 3}]:item(), x[{1, 3, 2}]:item())
  eq(x:permute{2, 3, 1}.shape, {3, 4, 2})
  eq(x:permute(-1, 1, 2).shape, {4, 2, 3})
  p[{1, 1, 1}] = 77
  eq(x[{1, 1, 1}]:item(), 77)
  local tr = x:transpose(1, 3)
  eq(tr.shape, {4, 3, 2})
  eq(tr[{3, 2, 1}]:item(), x[{1, 2, 3}]:item())
  tr[{4, 3, 2}] = -1
  eq(x[{2, 3, 4}]:item(), -1)
  eq(x:transpose(-1, -2).shape, {2, 4, 3})
  local m = ai.arange(6):view(2, 3)
  eq(m:t():tolist(), {{0, 3}, {1, 4}, {2, 5}})
  eq(m.T:tolist(), {{0, 3}, {1, 4}, {2, 5}})
  m:t()[{3, 2}] = 50
  eq(m[{2, 3}]:item(), 50)
  eq(ai.arange(3):t():tolist(), {0, 1, 2}, "t of a 1-D tensor is itself")
  eq(m:transpose():tolist(), m:t():tolist(), "transpose() swaps dims 1 and 2")
end)

test("narrow, select, slice (with steps) are views", function()
  local x = ai.arange(20):view(4, 5)
  local n = x:narrow(2, 2, 3)
  eq(n:tolist(), {{1, 2, 3}, {6, 7, 8}, {11, 12, 13}, {16, 17, 18}})
  n:fill_(0)
  eq(x[1]:tolist(), {0, 0, 0, 0, 4})
  eq(ai.arange(20):view(4, 5):narrow(1, -2, 2):tolist(), {{10, 11, 12, 13, 14}, {15, 16, 17, 18, 19}},
     "negative start counts from the end")
  local y = ai.arange(20):view(4, 5)
  local s = y:select(1, 3)
  eq(s:tolist(), {10, 11, 12, 13, 14})
  s[2] = -1
  eq(y[{3, 2}]:item(), -1)
  eq(y:select(2, -1):tolist(), {4, 9, 14, 19})
  local z = ai.arange(10)
  eq(z:slice(1, 1, 10, 3):tolist(), {0, 3, 6, 9})
  eq(z:slice(1, 2, 8, 2):tolist(), {1, 3, 5, 7})
  eq(z:slice(1, -3):tolist(), {7, 8, 9})
  eq(z:slice(1, 3, -3):tolist(), {2, 3, 4, 5, 6, 7})
  eq(z:slice(1):tolist(), z:tolist())
  local sl = z:slice(1, 2, 10, 4) -- 1, 5, 9
  sl:fill_(100)
  eq(z:tolist(), {0, 100, 2, 3, 4, 100, 6, 7, 8, 100})
  local m = ai.arange(12):view(3, 4)
  eq(m:slice(2, 1, 4, 2):tolist(), {{0, 2}, {4, 6}, {8, 10}})
end)

test("expand, expand_as: stride-0 views of the same data", function()
  local x = ai.tensor({{1}, {2}, {3}})
  local e = x:expand(3, 4)
  eq(e.shape, {3, 4})
  eq(e:tolist(), {{1, 1, 1, 1}, {2, 2, 2, 2}, {3, 3, 3, 3}})
  eq(e:stride()[2], 0)
  x[2] = 20
  eq(e[2]:tolist(), {20, 20, 20, 20}, "the expanded view sees writes to the base")
  eq(x:expand(-1, 2).shape, {3, 2})
  eq(x:expand(2, 3, 2).shape, {2, 3, 2})
  eq(x:expand{3, 5}.shape, {3, 5})
  eq(x:expand_as(ai.zeros(3, 6)).shape, {3, 6})
  eq(ai.tensor(5):expand(2, 2):tolist(), {{5, 5}, {5, 5}})
end)

test("squeeze, unsqueeze, flatten are views", function()
  local x = ai.zeros(1, 3, 1, 2)
  eq(x:squeeze().shape, {3, 2})
  eq(x:squeeze(1).shape, {3, 1, 2})
  eq(x:squeeze(3).shape, {1, 3, 2})
  eq(x:squeeze(-2).shape, {1, 3, 2})
  eq(x:squeeze(2).shape, {1, 3, 1, 2}, "squeezing a dim that is not 1 is a no-op")
  local sq = x:squeeze()
  sq[{2, 2}] = 5
  eq(x[{1, 2, 1, 2}]:item(), 5.0)
  local y = ai.arange(6):view(2, 3)
  eq(y:unsqueeze(1).shape, {1, 2, 3})
  eq(y:unsqueeze(2).shape, {2, 1, 3})
  eq(y:unsqueeze(3).shape, {2, 3, 1})
  eq(y:unsqueeze(-1).shape, {2, 3, 1})
  local u = y:unsqueeze(2)
  u[{2, 1, 3}] = 55
  eq(y[{2, 3}]:item(), 55)
  local z = ai.arange(24):view(2, 3, 4)
  eq(z:flatten().shape, {24})
  eq(z:flatten(2).shape, {2, 12})
  eq(z:flatten(1, 2).shape, {6, 4})
  eq(z:flatten(-2, -1).shape, {2, 12})
  local f = z:flatten()
  f[24] = -3
  eq(z[{2, 3, 4}]:item(), -3)
  eq(ai.tensor(3):flatten().shape, {1}, "flatten of a 0-dim tensor is 1-D")
end)

test("indexing x[i] and x[{...}] gives views; negative indices count from the end", function()
  local x = ai.arange(24):view(2, 3, 4)
  eq(x[2].shape, {3, 4})
  eq(x[2][3]:tolist(), {20, 21, 22, 23})
  eq(x[-1][-1][-1]:item(), 23)
  eq(x[{2, 3, 4}]:item(), 23)
  eq(x[{2, 3, 4}].shape, {})
  eq(x[{1, -1}]:tolist(), {8, 9, 10, 11})
  eq(x[{2, {1, 3}}].shape, {3, 4})
  eq(x[{2, {2, 3}, 1}]:tolist(), {16, 20})
  eq(x[{{}, 2, {2, 4, 2}}]:tolist(), {{5, 7}, {17, 19}})
  eq(x[{{}, {}, {-2, -1}}].shape, {2, 3, 2})
  eq(x[{{2}}].shape, {1, 3, 4}, "{a} keeps the dim")
  eq(x[{{1, 2}, 3}]:tolist(), {{8, 9, 10, 11}, {20, 21, 22, 23}})
  local v = x[{1, {2, 3}}]
  v:fill_(0)
  eq(x[1]:tolist(), {{0, 1, 2, 3}, {0, 0, 0, 0}, {0, 0, 0, 0}})
  local m = ai.tensor{{1, 2}, {3, 4}}
  local r = m[2]
  r[1] = 30
  eq(m:tolist(), {{1, 2}, {30, 4}})
end)

test("x[mask] selects elements and x[mask] = v fills them", function()
  local x = ai.tensor{{1, -2}, {-3, 4}}
  local mask = x:lt(0)
  eq(x[mask]:tolist(), {-2, -3})
  x[mask] = 0
  eq(x:tolist(), {{1, 0}, {0, 4}})
end)

---------------------------------------------------------------------------- copies, in-place

test("contiguous copies a non-contiguous tensor; returns the same data otherwise", function()
  local x = ai.arange(6):float():view(2, 3)
  local c = x:contiguous()
  c[{1, 1}] = 10
  eq(x[{1, 1}]:item(), 10.0, "contiguous of a contiguous tensor shares storage")
  local t = x:t()
  local tc = t:contiguous()
  ok(tc:is_contiguous())
  eq(tc:tolist(), t:tolist())
  tc[{1, 1}] = -1
  eq(x[{1, 1}]:item(), 10.0, "contiguous of a non-contiguous tensor is a copy")
end)

test("clone copies data, shape and dtype", function()
  local x = ai.tensor({{1, 2}, {3, 4}}, {dtype = "i64"})
  local c = x:clone()
  eq(c.dtype, "i64")
  eq(c.shape, {2, 2})
  c[{1, 1}] = 100
  eq(x[{1, 1}]:item(), 1)
  local t = x:t():clone()
  eq(t:tolist(), {{1, 3}, {2, 4}})
  ok(t:is_contiguous())
end)

test("copy_ converts dtype, broadcasts, returns self", function()
  local x = ai.zeros(2, 3)
  local r = x:copy_(ai.tensor({{1, 2, 3}, {4, 5, 6}}, {dtype = "i64"}))
  ok(r == x, "copy_ returns the tensor itself")
  eq(x:tolist(), {{1, 2, 3}, {4, 5, 6}})
  x:copy_(ai.tensor{7, 8, 9})
  eq(x:tolist(), {{7, 8, 9}, {7, 8, 9}})
  x:copy_(ai.tensor{{1}, {2}})
  eq(x:tolist(), {{1, 1, 1}, {2, 2, 2}})
  x:copy_(3)
  eq(flat(x), {3, 3, 3, 3, 3, 3})
  -- into a non-contiguous view
  local y = ai.zeros(3, 2)
  y:t():copy_(ai.tensor{{1, 2, 3}, {4, 5, 6}})
  eq(y:tolist(), {{1, 4}, {2, 5}, {3, 6}})
  local i = ai.zeros({2}, {dtype = "i64"})
  i:copy_(ai.tensor{2.9, -2.9})
  eq(i:tolist(), {2, -2})
end)

test("fill_ and zero_ write every element (also through views), return self", function()
  local x = ai.ones(3, 4)
  ok(x:fill_(2.5) == x)
  eq(flat(x), {2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5})
  x:t():narrow(1, 2, 1):zero_() -- column 2
  eq(x[1]:tolist(), {2.5, 0, 2.5, 2.5})
  eq(x:select(2, 2):tolist(), {0, 0, 0})
  ok(x:zero_() == x)
  eq(x:sum():item(), 0.0)
  local u = ai.zeros({2}, {dtype = "u8"})
  u:fill_(true)
  eq(u:tolist(), {1, 1})
end)

test("index assignment x[i] = v and x[{..}] = tensor", function()
  local x = ai.zeros(3, 4)
  x[2] = 5
  eq(x:tolist(), {{0, 0, 0, 0}, {5, 5, 5, 5}, {0, 0, 0, 0}})
  x[{3, 4}] = -1
  eq(x[3]:tolist(), {0, 0, 0, -1})
  x[-1] = 7
  eq(x[3]:tolist(), {7, 7, 7, 7})
  x[{{}, {2, 3}}] = ai.tensor{{1, 2}, {3, 4}, {5, 6}}
  eq(x:tolist(), {{0, 1, 2, 0}, {5, 3, 4, 5}, {7, 5, 6, 7}})
  x[{1, {1, 4, 3}}] = ai.tensor{8, 9}
  eq(x[1]:tolist(), {8, 1, 2, 9})
  x[1] = ai.tensor{1, 1, 1, 1} -- a row from a tensor
  eq(x[1]:tolist(), {1, 1, 1, 1})
  x[{{}, 1}] = ai.tensor({10, 20, 30}, {dtype = "i64"}) -- converted
  eq(x:select(2, 1):tolist(), {10, 20, 30})
  x[{2, {}}] = ai.tensor{0.5} -- broadcast
  eq(x[2]:tolist(), {0.5, 0.5, 0.5, 0.5})
  local b = ai.zeros({2}, {dtype = "u8"})
  b[1] = true
  eq(b:tolist(), {1, 0})
end)

---------------------------------------------------------------------------- memory

test("ai.memory reports live, cached and peak bytes", function()
  collectgarbage()
  collectgarbage()
  local m0 = ai.memory()
  ok(math.type(m0.live) == "integer" and math.type(m0.cached) == "integer" and math.type(m0.peak) == "integer")
  local x = ai.zeros(1000000) -- 4 MB
  local m1 = ai.memory()
  ok(m1.live - m0.live >= 4000000, "live grows by the tensor's bytes: " .. (m1.live - m0.live))
  ok(m1.peak >= m1.live)
  ai.free(x)
  local m2 = ai.memory()
  ok(m1.live - m2.live >= 4000000, "ai.free releases the bytes")
  ok(m2.cached >= 4000000 or m2.live < m1.live, "freed block goes to the cache")
  ai.empty_cache()
  eq(ai.memory().cached, 0)
  expect_error("closed", function() return x + 1 end)
end)

test("a <close> tensor is released at the end of its block", function()
  collectgarbage()
  local before = ai.memory().live
  local escaped
  do
    local y <close> = ai.zeros(250000)
    ok(ai.memory().live - before >= 1000000)
    escaped = y
  end
  ok(ai.memory().live - before < 1000000, "memory is released by <close>")
  expect_error("tensor was closed", function() return escaped:sum() end)
  expect_error("tensor was closed", function() return escaped.shape end)
  expect_error("tensor was closed", function() return ai.add(escaped, 1) end)
end)

test("views keep the storage alive after the base is collected", function()
  local v
  do
    local x = ai.arange(10):float()
    v = x:narrow(1, 3, 2)
  end
  collectgarbage()
  collectgarbage()
  eq(v:tolist(), {2, 3})
end)

count_errors("test_tensor_views.lua", 2)
