-- tests/helper.lua: the tiny test framework shared by tests/test_*.lua.
-- A test file registers cases with T.test(name, fn); tests/run.lua runs them and prints the
-- totals. Assertions raise errors with a message that says what differed.
local T = {cases = {}}

function T.test(name, fn)
  T.cases[#T.cases + 1] = {name = name, fn = fn, file = T.current_file}
end

-- A readable form of a value for messages: tables by value (sequence first, then other keys).
local function show(v)
  if type(v) ~= "table" then return type(v) == "string" and string.format("%q", v) or tostring(v) end
  local parts = {}
  for _, e in ipairs(v) do parts[#parts + 1] = show(e) end
  for k, e in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 or k > #v then parts[#parts + 1] = tostring(k) .. "=" .. show(e) end
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end
T.show = show

-- The numbers of tests/parity/parity.json, where inf and NaN are the strings "inf", "-inf", "nan".
function T.json_number(v) return v == "inf" and math.huge or v == "-inf" and -math.huge or v == "nan" and 0 / 0 or v end
function T.json_numbers(list)
  local r = {}
  for i, v in ipairs(list) do r[i] = T.json_number(v) end
  return r
end

-- Reference helpers for tests that compute expected values with plain Lua loops.
--- T.flat(x): the elements of a tensor or nested table, in row-major order
function T.flat(x)
  if type(x) == "userdata" then x = x:tolist() end
  if type(x) ~= "table" then return {x} end
  local out = {}
  local function rec(v)
    if type(v) == "table" then for _, e in ipairs(v) do rec(e) end else out[#out + 1] = v end
  end
  rec(x)
  return out
end

--- T.numel(shape): the number of elements of a shape
function T.numel(shape)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  return n
end

--- T.nest(v, shape): a flat row-major list as a nested table of that shape
function T.nest(v, shape)
  if #shape == 0 then return v[1] end
  local function rec(d, off)
    local t, stride = {}, 1
    for k = d + 1, #shape do stride = stride * shape[k] end
    for i = 1, shape[d] do
      if d == #shape then t[i] = v[off + i] else t[i] = rec(d + 1, off + (i - 1) * stride) end
    end
    return t
  end
  return rec(1, 0)
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

-- ---------------------------------------------------------------- files, shells, child processes

--- T.shell_quote(s) -> s as one word for sh
function T.shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- T.readfile(path) -> the file's bytes, or nil when it cannot be opened
function T.readfile(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- T.exists(path) -> whether path can be opened for reading
function T.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

--- T.writefile(path, s)
function T.writefile(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

--- T.abspath(p) -> p, absolute (against the working directory), for children that cd elsewhere
function T.abspath(p)
  if p:sub(1, 1) == "/" then return p end
  local pwd = os.getenv("PWD")
  if not pwd then
    local h = io.popen("pwd")
    pwd = h:read("l")
    h:close()
  end
  return pwd .. "/" .. p:gsub("^%./", "")
end

--- T.sh(cmd) -> exit status, output: runs a shell command line; the output is stdout and stderr
-- together, the status the shell's $? (128 + n when signal n ended it)
function T.sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc, (out:gsub("rc=%d+%s*$", ""))
end

--- T.have(program) -> whether program is on PATH
function T.have(program)
  return os.execute("command -v " .. T.shell_quote(program) .. " >/dev/null 2>&1") == true
end

-- A Python 3 with the Jupyter modules, or nil and a message that says what to install.
local JUPYTER_DEB = "python3-ipykernel python3-jupyter-client python3-nbclient python3-nbformat jupyter-core"
local JUPYTER_MODULES = "import ipykernel, jupyter_client, nbclient, nbformat"
function T.jupyter_python()
  for _, c in ipairs({os.getenv("PYTHON") or "", "/usr/bin/python3", "python3"}) do
    if c ~= "" and os.execute(T.shell_quote(c) .. " -c " .. T.shell_quote(JUPYTER_MODULES) .. " >/dev/null 2>&1") then
      return c
    end
  end
  return nil, "Jupyter is not installed (no Python 3 can " .. JUPYTER_MODULES .. "): install the Debian packages " ..
      JUPYTER_DEB
end

-- ---------------------------------------------------------------- bookkeeping of a test file

--- T.count_error_cases() -> check(file, min): registers a first case that notes how many
-- error cases (T.expect_error) ran so far; check, called at the end of the file, registers the
-- last case, which asserts that the file's cases checked at least min of them.
function T.count_error_cases()
  local at_start = 0
  T.test("(start counting error cases)", function() at_start = T.error_cases or 0 end)
  return function(file, min)
    T.test("error count", function()
      local n = (T.error_cases or 0) - at_start
      print(("%s: %d error cases checked"):format(file, n))
      T.ok(n >= min, "error cases: " .. n)
    end)
  end
end

--- T.run_alone(): at the end of a test file, runs its cases when the file itself is the
-- script (./aiart-lua tests/test_x.lua); under tests/run.lua it does nothing.
function T.run_alone()
  if package.loaded["helper"] then return end
  local passed, failed = 0, 0
  for _, c in ipairs(T.cases) do
    local ok, e = xpcall(c.fn, debug.traceback)
    if ok then passed = passed + 1
    else
      failed = failed + 1
      print("FAIL " .. c.name .. ": " .. tostring(e))
    end
  end
  print(("%d passed, %d failed"):format(passed, failed))
  os.exit(failed == 0 and 0 or 1)
end

return T
