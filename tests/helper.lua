-- tests/helper.lua: the tiny test framework shared by tests/test_*.lua.
-- A test file registers cases with T.test(name, fn); tests/run.lua runs them and prints the
-- totals. Assertions raise errors with a message that says what differed.
local T = {cases = {}}

function T.test(name, fn)
  T.cases[#T.cases + 1] = {name = name, fn = fn, file = T.current_file}
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

function T.ok(cond, msg)
  if not cond then error(msg or "expected a true value", 2) end
end

-- Deep equality for plain values and tables.
local function deep_eq(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not deep_eq(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
T.deep_eq = deep_eq

function T.eq(a, b, msg)
  if not deep_eq(a, b) then
    error((msg and msg .. ": " or "") .. "expected " .. show(b) .. ", got " .. show(a), 2)
  end
end

-- |a - b| <= atol + rtol * |b|, for numbers, nested tables of numbers and tensors.
function T.near(a, b, tol, msg)
  tol = tol or 1e-5
  local function flat(x)
    if type(x) == "number" then return {x} end
    if type(x) == "userdata" then x = x:tolist() end
    local out = {}
    local function rec(v) if type(v) == "table" then for _, e in ipairs(v) do rec(e) end else out[#out + 1] = v end end
    rec(x)
    return out
  end
  local fa, fb = flat(a), flat(b)
  if #fa ~= #fb then error((msg and msg .. ": " or "") .. ("sizes differ: %d vs %d"):format(#fa, #fb), 2) end
  for i = 1, #fa do
    local x, y = fa[i], fb[i]
    local bad = (x ~= x) ~= (y ~= y) or (x == x and math.abs(x - y) > tol + tol * math.abs(y))
    if bad and not (x == y) then
      error((msg and msg .. ": " or "") .. ("element %d: expected %.9g, got %.9g (tol %g)"):format(i, y, x, tol), 2)
    end
  end
end

-- Calls f(...) and checks that it raises an error whose message matches pattern (plain find
-- first, then as a Lua pattern).
function T.expect_error(pattern, f, ...)
  local ok, err = pcall(f, ...)
  if ok then error("expected an error matching '" .. pattern .. "', but the call succeeded", 2) end
  err = tostring(err)
  if not (err:find(pattern, 1, true) or err:find(pattern)) then
    error("expected an error matching '" .. pattern .. "', got: " .. err, 2)
  end
  T.error_cases = (T.error_cases or 0) + 1
  return err
end

-- A fresh temporary directory, removed by the runner at exit.
function T.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p '" .. p .. "'"))
  T.tmpdirs = T.tmpdirs or {}
  T.tmpdirs[#T.tmpdirs + 1] = p
  return p
end

-- Path of the aiart-lua binary under test.
function T.binary()
  return os.getenv("AIART_LUA") or "./aiart-lua"
end

return T
