-- tests/test_strict.lua: nothing silent. Results that used to be wrong without a word are
-- right or an error now: type promotion as PyTorch's (tests/parity/parity.json), in-place ops
-- that would lose a fraction, writes through expanded views, integer arithmetic that stays
-- exact and integer.
local T = require "helper"
local ai = require "aiart"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
local P = ai.json.decode(read("tests/parity/parity.json"))

local function operand(name)
  if name == "int" then return 2 end
  if name == "float" then return 2.5 end
  local dt, zero = name:match("^(%w+)(_0d)$")
  if zero then return ai.ones({}, {dtype = dt}) end
  return ai.ones(3, {dtype = name})
end

T.test("type promotion follows PyTorch's table (tensors, 0-dim tensors, numbers)", function()
  local n = 0
  for key, want in pairs(P.promotion) do
    local a, b = key:match("^(.-)%+(.*)$")
    local va, vb = operand(a), operand(b)
    T.eq((va + vb).dtype, want, key)
    T.eq(ai.add(va, vb).dtype, want, "ai.add " .. key)
    n = n + 1
  end
  T.ok(n >= 90, "the whole table was checked")
end)

T.test("in-place ops refuse a float result in an integer tensor, as PyTorch does", function()
  local z = ai.zeros(3, {dtype = "i64"})
  T.expect_error("add_: the result is f32, which cannot be written into this i64 tensor", function() z:add_(0.5) end)
  T.eq(z:tolist(), {0, 0, 0}, "the tensor is unchanged")
  T.expect_error("mul_: the result is f32", function() ai.ones(3, {dtype = "i64"}):mul_(2.7) end)
  T.expect_error("sub_: the result is f32", function() ai.ones(3, {dtype = "u8"}):sub_(ai.ones(3)) end)
  T.expect_error("div_: the result is f32", function() ai.ones(3, {dtype = "i64"}):div_(2) end)
  -- what fits goes in: whole numbers (2.0 is the integer 2, as in Lua), integers, floats
  T.eq(ai.ones(3, {dtype = "i64"}):mul_(2.0):tolist(), {2, 2, 2})
  T.eq(ai.ones(2, {dtype = "u8"}):add_(ai.tensor({1, 2}, {dtype = "i64"})):tolist(), {2, 3})
  local f = ai.ones(2):add_(ai.tensor({0.5, 1.5}, {dtype = "f64"}))
  T.eq(f.dtype, "f32")
  T.eq(f:tolist(), {1.5, 2.5})
end)

T.test("writes through an expanded view are refused instead of compounding", function()
  local b = ai.zeros(3, 1)
  local e = b:expand(3, 4)
  for _, w in ipairs{
    {"add_", function() e:add_(1) end}, {"mul_", function() e:mul_(2) end},
    {"copy_", function() e:copy_(ai.ones(3, 4)) end}, {"fill_", function() e:fill_(1) end},
    {"zero_", function() e:zero_() end}, {"clamp_", function() e:clamp_(0, 1) end},
    {"uniform_", function() e:uniform_() end}, {"masked_fill_", function() e:masked_fill_(ai.ones(3, 4):gt(0), 1) end},
  } do
    T.expect_error(w[1] .. ": several elements of the tensor share one place in memory", w[2])
  end
  T.eq(b:tolist(), {{0}, {0}, {0}}, "the base tensor is untouched")
  b:expand(3, 1):add_(1) -- a size-1 expand overlaps nothing
  T.eq(b:tolist(), {{1}, {1}, {1}})
  local c = b:expand(3, 4):clone()
  c:add_(1)
  T.eq(c:sum():item(), 24, "a clone of the view is an ordinary tensor")
end)

T.test("integer // and % round toward -inf as Lua's, stay integer, and refuse a zero divisor", function()
  local c = P.int_arith
  local a, b = ai.tensor(c.a, {dtype = "i64"}), ai.tensor(c.b, {dtype = "i64"})
  local q = a // b
  T.eq(q.dtype, "i64")
  T.eq(q:tolist(), c.floor_divide, "floor division (PyTorch's rounding_mode='floor')")
  T.eq((a % b):tolist(), c.remainder, "remainder")
  T.eq((a + b):tolist(), c.add_wrap, "addition wraps")
  T.eq((a * b):tolist(), c.mul_wrap, "multiplication wraps")
  for i = 1, #c.a do
    T.eq(c.a[i] // c.b[i], c.floor_divide[i], "Lua's own // agrees")
    T.eq(c.a[i] % c.b[i], c.remainder[i], "Lua's own % agrees")
  end
  T.eq((ai.tensor({7}, {dtype = "i64"}) // 2).dtype, "i64", "i64 // number")
  T.expect_error("floor_divide: integer division by zero", function() return a // 0 end)
  T.expect_error("remainder: integer division by zero", function() return a % 0 end)
  T.eq((ai.tensor({7.0, -7.0}) // 0):tolist(), {math.huge, -math.huge}, "float // 0 is inf, as in Lua")
  T.eq((ai.tensor({7.5}) // 2):tolist(), {3}, "float floor division")
end)

T.test("grad mode belongs to the coroutine that set it: a yield inside no_grad does not leak", function()
  T.eq(ai.is_grad_enabled(), true)
  local sampler = coroutine.wrap(function()
    ai.no_grad(function()
      coroutine.yield(ai.is_grad_enabled())
      coroutine.yield(ai.is_grad_enabled())
    end)
    coroutine.yield(ai.is_grad_enabled())
  end)
  T.eq(sampler(), false, "inside no_grad")
  T.eq(ai.is_grad_enabled(), true, "the main loop keeps grad mode after the yield")
  local x = ai.ones(2, {requires_grad = true})
  local y = (x * 2):sum()
  y:backward() -- failed before: the graph was not recorded
  T.eq(x.grad:tolist(), {2, 2})
  T.eq(sampler(), false, "the sampler is still inside its no_grad")
  T.eq(sampler(), true, "and enabled again after it")
  -- a generator that sets no mode of its own runs in its resumer's mode
  local co = coroutine.create(function() while true do coroutine.yield(ai.is_grad_enabled()) end end)
  T.eq(select(2, coroutine.resume(co)), true)
  T.eq(ai.no_grad(function() return select(2, coroutine.resume(co)) end), false)
  T.eq(ai.is_grad_enabled(), true)
  -- errors keep Lua's own behaviour
  local bad = coroutine.wrap(function() error("boom") end)
  T.expect_error("test_strict.lua:%d+: boom", bad)
  T.expect_error("cannot resume dead coroutine", bad)
  local ok, err = coroutine.resume(coroutine.create(function() ai.set_grad_enabled(false) error("x") end))
  T.eq(ok, false)
  T.ok(tostring(err):find("x"), "the error comes back")
  T.eq(ai.is_grad_enabled(), true, "a coroutine that dies in its own mode leaves the resumer's alone")
  T.expect_error("bad argument #1 to 'coroutine.resume'", coroutine.resume, 5)
end)

T.test("set_rng_state takes what get_rng_state returns, or seed and offset, as the README says", function()
  local s = ai.get_rng_state()
  T.eq(math.type(s.seed), "integer")
  T.eq(math.type(s.offset), "integer")
  local a = ai.rand(4):tolist()
  ai.set_rng_state(s.seed, s.offset)
  T.eq(ai.rand(4):tolist(), a, "seed, offset")
  ai.set_rng_state(s)
  T.eq(ai.rand(4):tolist(), a, "the table")
  T.expect_error("bad argument #1 to 'aiart.set_rng_state' (the seed must be an integer)", ai.set_rng_state, 1.5, 2)
  T.expect_error("too many arguments", ai.set_rng_state, s, 3)
end)
