-- tests/test_strict.lua: nothing silent. Results that used to be wrong without a word are
-- right or an error now: type promotion as PyTorch's (tests/parity/parity.json), in-place ops
-- that would lose a fraction, writes through expanded views, integer arithmetic that stays
-- exact and integer.
local T = require "helper"
local ai = require "aiart"

local read = T.readfile
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

T.test("a one-element tensor acts as its number in < <= and .., anything bigger names :lt or tostring", function()
  local loss, best = ai.tensor(0.25), 0.5
  T.eq(loss < best, true)
  T.eq(loss <= 0.25, true)
  T.eq(1 < ai.tensor(2), true)
  T.eq(ai.tensor(3) < ai.tensor(2), false)
  T.eq("loss " .. loss, "loss 0.25")
  T.eq("i=" .. ai.tensor(3, {dtype = "i64"}), "i=3", "integers as Lua integers")
  T.expect_error("use x:lt(y) for elementwise results, or x:item()", function() return ai.ones(2) < 1 end)
  T.expect_error("use tostring(x)", function() return "x" .. ai.ones(2) end)
end)

T.test("string.format and math functions given a tensor say :item(); other errors read as Lua's", function()
  local loss = ai.tensor(0.25)
  T.expect_error("bad argument #2 to 'format' (a tensor is not a number: use t:item()", string.format, "%.3f", loss)
  T.expect_error("test_strict.lua:%d+: bad argument #1 to 'floor' %(a tensor is not a number",
                 function() return math.floor(loss) end)
  T.expect_error("test_strict.lua:%d+: bad argument #1 to 'floor' %(number expected, got string%)",
                 function() return math.floor("x") end)
  T.eq(string.format("%s %.2f %d", "a", 1.5, 3), "a 1.50 3")
  T.eq(string.format("%s", loss), tostring(loss), "%s of a tensor is its text")
  T.eq(math.max(1, 5, 3), 5)
end)

T.test("i64 values are exact to and from Lua integers", function()
  local big = (1 << 62) + 1
  local t = ai.tensor({big, math.maxinteger, math.mininteger}, {dtype = "i64"})
  T.eq(t:tolist(), {big, math.maxinteger, math.mininteger})
  T.eq(math.type(t[1]:item()), "integer", ":item() of an integer tensor is a Lua integer")
  T.eq(t[2]:item(), math.maxinteger)
  T.eq(ai.full({2}, math.maxinteger, {dtype = "i64"}):tolist(), {math.maxinteger, math.maxinteger})
  T.eq((t[{{1, 1}}] + 1):tolist(), {big + 1}, "integer scalars stay exact")
  local f = ai.zeros(2, {dtype = "i64"})
  f:fill_(big)
  T.eq(f:tolist(), {big, big})
  f[1] = math.maxinteger
  T.eq(f[1]:item(), math.maxinteger)
  T.expect_error("0.5 is not a whole number", function() f:fill_(0.5) end)
end)

T.test("constructors refuse nil sizes, unknown options and extra arguments", function()
  local x = ai.zeros(2, 3)
  T.expect_error("bad argument #1 to 'randn' (size expected, got nil (shapes and indices are 1-based", function()
    return ai.randn(x.shape[0], 100)
  end)
  T.expect_error("bad argument #2 to 'ones' (size or options expected, got nil", function() return ai.ones(4, nil, 3) end)
  T.expect_error("bad argument #3 to 'randint' (size expected, got nil", function() return ai.randint(1, 10, nil) end)
  T.expect_error("unknown option 'dtpye' (known: dtype, requires_grad)", function() return ai.zeros(2, {dtpye = "f64"}) end)
  T.expect_error("bad argument #3 to 'ones' (too many arguments", function() return ai.ones(2, {dtype = "f64"}, 3) end)
  T.eq(ai.zeros(4, nil).shape, {4}, "a trailing nil is a left-out option")
  T.eq(ai.randn(1e1).shape, {10}, "a whole-number float is an integer, as in Lua")
end)

T.test("extra arguments and unknown option keys are refused by the ops", function()
  local x = ai.ones(2, 3)
  T.expect_error("bad argument #2 to 'add' (too many arguments (2 given, at most 1 expected))", function() return x:add(x, 10) end)
  T.expect_error("unknown option 'keepdm' (known: keepdim)", function() return x:max(2, {keepdm = true}) end)
  T.expect_error("the dimension appears twice", function() return x:sum(1, 1) end)
  T.eq(x:sum(1, 2).shape, {1, 1}, "several dims, as PyTorch's sum(dim=(1, 2))")
  T.eq(x:mean(1, 2, {keepdim = false}).shape, {}, "and their options")
  T.eq(x:sum({1, 2}, {keepdim = false}):item(), 6)
  T.expect_error("too many arguments", function() return x:exp(1) end)
end)

T.test("x:type(dtype) converts; x.requires_grad is a field; x.data reads and writes", function()
  local x = ai.ones(2)
  T.eq(x:type(), "f32")
  T.eq(x:type("f64").dtype, "f64", "x:type('f64') returns the f64 tensor")
  T.expect_error("unknown dtype 'f65'", function() return x:type("f65") end)
  local w = ai.ones(2, {requires_grad = true})
  T.eq(w.requires_grad, true)
  T.eq(x.requires_grad, false, "a field, not a method that is always true")
  x.requires_grad = true
  T.eq(x.requires_grad, true)
  T.eq(w.data.requires_grad, false, ".data is detached")
  local p = ai.ones(3)
  p.data = ai.zeros(2, {dtype = "f64"})
  T.eq(p.dtype, "f64")
  T.eq(p:tolist(), {0, 0})
  T.expect_error("cannot set field 'foo' of a tensor", function() x.foo = 1 end)
end)

T.test("Lua's loops over a tensor's rows end cleanly", function()
  local x = ai.tensor{{1, 2}, {3, 4}, {5, 6}}
  local n, s = 0, 0
  for i, row in ipairs(x) do n = i; s = s + row:sum():item() end
  T.eq(n, 3)
  T.eq(s, 21)
  n = 0
  for i, row in pairs(x) do n = n + 1; T.eq(row:tolist(), x[i]:tolist()) end
  T.eq(n, 3)
  T.eq(x[4], nil, "x[#x + 1] is nil, as past the end of a sequence")
  T.expect_error("index 5 out of range", function() return x[5] end)
end)
