-- tests/test_registry.lua: every op of the registry (src/core/ops.h, exposed as ai._ops) has
-- what its row promises: a Lua function and method for the elementwise ops (and an in-place
-- method exactly where the row says INPLACE), the dtype rule of its row, a recorded node with
-- the row's name where the row is recorded, and a correct gradient and second gradient for
-- every differentiable elementwise op. A new elementwise op gets all of these checks from its
-- row alone.
local T = require "helper"
local ai = require "aiart"

local ops = ai._ops
local function family(f)
  local r = {}
  for _, o in ipairs(ops) do if o.family == f then r[#r + 1] = o end end
  return r
end

T.test("the registry lists each op once, with a known family and a rule where recorded", function()
  T.ok(#ops > 80, "the registry has its rows")
  local names, upper = {}, {}
  for i, o in ipairs(ops) do
    T.ok(not upper[o.NAME], "row " .. o.NAME .. " appears twice")
    upper[o.NAME] = true
    T.ok(not names[o.family .. ":" .. o.name], "name " .. o.name .. " appears twice in " .. o.family)
    names[o.family .. ":" .. o.name] = true
    T.ok(({binary = 1, unary = 1, tensor = 1, nn = 1})[o.family], "row " .. i .. " has family " .. tostring(o.family))
    T.ok(o.NAME:match("^[A-Z][A-Z0-9_]*$"), "row name " .. o.NAME)
    T.ok(o.name:match("^[a-z][a-z0-9_]*$"), "user name " .. o.name)
    if o.double_backward then T.ok(o.recorded, o.NAME .. ": double backward needs a rule") end
    if o.inplace then T.eq(o.family, "binary", o.NAME .. ": only binary rows have in-place forms") end
  end
  T.ok(#family("binary") > 0 and #family("unary") > 0 and #family("nn") > 0, "every family has rows")
end)

T.test("every elementwise op is ai.<name> and x:<name>(), in-place exactly where its row says", function()
  local x = ai.ones(2)
  for _, o in ipairs(ops) do
    if o.family == "binary" or o.family == "unary" then
      T.eq(type(ai[o.name]), "function", "ai." .. o.name)
      T.eq(type(x[o.name]), "function", "x:" .. o.name)
    end
    if o.family == "binary" then
      T.eq(type(x[o.name .. "_"]) == "function", o.inplace, "x:" .. o.name .. "_ exists iff the row is INPLACE")
    end
  end
end)

local function call(o, ...)
  return ai[o.name](...)
end

T.test("each elementwise op follows the dtype rule of its row", function()
  local i64 = ai.tensor({1, 2, 3}, {dtype = "i64"})
  local u8 = ai.tensor({1, 0, 3}, {dtype = "u8"})
  for _, o in ipairs(family("unary")) do
    local want = ({KEEP = "i64", FLOAT = "f32", BOOL = "u8"})[o.dtypes]
    T.ok(want, o.NAME .. ": unknown dtype rule " .. o.dtypes)
    T.eq(call(o, i64).dtype, want, o.name .. " of an i64 tensor")
    T.eq(call(o, u8).dtype, ({KEEP = "u8", FLOAT = "f32", BOOL = "u8"})[o.dtypes], o.name .. " of a u8 tensor")
    T.eq(call(o, ai.ones(3, {dtype = "f64"})).dtype, o.dtypes == "BOOL" and "u8" or "f64", o.name .. " of f64")
  end
  for _, o in ipairs(family("binary")) do
    local want = ({ARITH = "i64", FLOAT = "f32", COMPARE = "u8"})[o.dtypes]
    T.ok(want, o.NAME .. ": unknown dtype rule " .. o.dtypes)
    T.eq(call(o, i64, i64).dtype, want, o.name .. " of two i64 tensors")
    T.eq(call(o, ai.ones(3), ai.ones(3, {dtype = "f64"})).dtype, o.dtypes == "COMPARE" and "u8" or "f64",
         o.name .. " of f32 and f64")
  end
end)

-- Inputs inside every op's smooth domain: positive, away from 0 and from the kinks of abs,
-- relu, maximum/minimum (a < b always) and remainder (a / b < 1).
local function inputs_for(o)
  ai.manual_seed(5)
  local a = (ai.rand(3, 4, {dtype = "f64"}) * 0.3 + 0.1):requires_grad_(true)
  if o.family == "unary" then return {a} end
  local b = (ai.rand(3, 4, {dtype = "f64"}) * 0.4 + 0.5):requires_grad_(true)
  return {a, b}
end

T.test("every elementwise row is recorded as itself, or not at all, as the row says", function()
  for _, o in ipairs(ops) do
    if o.family == "binary" or o.family == "unary" then
      local y = call(o, table.unpack(inputs_for(o)))
      if o.recorded then T.eq(y.grad_fn, o.NAME, o.name .. " records its row")
      else T.eq(y.grad_fn, nil, o.name .. " is not recorded") end
    end
  end
end)

T.test("every recorded elementwise op has a correct gradient and second gradient", function()
  for _, o in ipairs(ops) do
    if (o.family == "binary" or o.family == "unary") and o.recorded then
      local f = function(...) return call(o, ...) end
      local ok, err = pcall(ai.gradcheck, f, inputs_for(o))
      T.ok(ok and err ~= false, o.name .. ": gradcheck: " .. tostring(err))
      if o.double_backward then
        local ok2, err2 = pcall(ai.gradgradcheck, f, inputs_for(o))
        T.ok(ok2 and err2 ~= false, o.name .. ": gradgradcheck: " .. tostring(err2))
      end
    end
  end
end)

T.test("a row whose rule is first-order refuses create_graph with the row's name", function()
  for _, o in ipairs(ops) do
    if o.recorded and not o.double_backward then
      T.eq(o.NAME, "MAX_POOL2D", "the first-order rows are known")
      local x = ai.randn(1, 1, 4, 4, {dtype = "f64", requires_grad = true})
      local y = ai.F.max_pool2d(x, 2):sum()
      T.expect_error("the backward of MAX_POOL2D is not differentiable", function()
        ai.grad({y}, {x}, {create_graph = true})
      end)
    end
  end
end)

-- the Lua pattern of luaL_argerror's message; the name may come qualified ('aiart.add')
local function arg_err(n, name, rest)
  return ("bad argument #%d to '[%%w.]*%s' %%(%s"):format(n, name, rest:gsub("[%(%)%.%-%+%*%?%[%]%^%$]", "%%%0"))
end

-- x:name(...) as a user writes it (a method call: Lua numbers the arguments from the first after x)
local function method_call(name, ...)
  local f = assert(load("local x = ... return x:" .. name .. "(select(2, ...))"))
  return f(...)
end

T.test("every elementwise op refuses the usual misuses, naming itself and the argument", function()
  local x, i64 = ai.ones(2, 3), ai.ones(3, {dtype = "i64"})
  for _, o in ipairs(ops) do
    local n = o.name
    if o.family == "unary" then
      T.expect_error(arg_err(1, n, "tensor expected, got no value"), ai[n])
      T.expect_error(arg_err(1, n, "tensor expected, got string"), ai[n], "x")
      T.expect_error(arg_err(1, n, "too many arguments (1 given, at most 0 expected)"), method_call, n, x, 1)
      T.expect_error(arg_err(2, n, "too many arguments (2 given, at most 1 expected)"), ai[n], x, 1)
    elseif o.family == "binary" then
      T.expect_error(arg_err(1, n, "tensor expected, got no value"), ai[n])
      T.expect_error(arg_err(2, n, "tensor or number expected, got string"), ai[n], x, "y")
      T.expect_error(arg_err(3, n, "too many arguments"), ai[n], x, x, 1)
      T.expect_error(n .. ": shapes 2x3 and 4 cannot be broadcast", ai[n], x, ai.ones(4))
      if o.inplace then
        local m = n .. "_"
        T.expect_error(m .. ": several elements of the tensor share one place in memory", method_call, m,
                       ai.zeros(2, 1):expand(2, 3), 1)
        T.expect_error(m .. ": the result is f32, which cannot be written into this i64 tensor", method_call, m, i64, 0.5)
        T.expect_error(m .. ": in-place change of a tensor that requires grad", method_call, m,
                       ai.ones(2, {requires_grad = true}), 1)
        T.expect_error(arg_err(2, m, "too many arguments"), method_call, m, ai.ones(2), 1, 2)
      end
    end
  end
end)
