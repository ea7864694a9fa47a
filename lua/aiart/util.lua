--[[ aiart.util: the small helpers that the Lua library shares: the tensor test, the class
helper, option checks, the clocks and the bootstrap of the global `ai` in the REPLs.

The host (src/host/main.c) loads this module before aiart itself, to install the lazy global:
nothing here may require "aiart" when the module loads, only when a function needs it.
]]
local U = {}

------------------------------------------------------------------------------------------------
-- values
------------------------------------------------------------------------------------------------

local tensor_mt -- found on first use: see the note at the top

--- util.is_tensor(v) -> whether v is a tensor
function U.is_tensor(v)
  local mt = getmetatable(v)
  if mt == nil then return false end
  if tensor_mt == nil then tensor_mt = getmetatable(require("aiart").empty(0)) end
  return mt == tensor_mt
end

--- util.shape_str(t) -> "2x3" ("scalar" for a 0-d tensor), for messages
function U.shape_str(t)
  local s = t.shape
  return #s == 0 and "scalar" or table.concat(s, "x")
end

------------------------------------------------------------------------------------------------
-- errors at the caller's line
------------------------------------------------------------------------------------------------

-- The folder of the library's files, as their chunk names spell it ("@/.../lua/aiart/"): a
-- frame whose source starts with it is the library's own.
local LIB = debug.getinfo(1, "S").source:match("^(@.*[/\\])") or "@"
local LIB_PATH = LIB:sub(2)

local function library_frame(info)
  return info.what == "C" or info.source:sub(1, #LIB) == LIB
end

--- util.error(msg[, level=1]): error(msg, level), where the position is that of the first
-- caller outside lua/aiart at or above `level` (counted as error() counts them). A misuse
-- is the caller's fault: its message names the user's file and line, not the library line
-- that noticed it, however deep in the library that was (and hand-counted levels need not
-- follow wrappers). Level 0 adds no position, as error()'s.
-- The level (counted from the caller of user_level's caller, as error() counts) of the first
-- frame outside the library at or above `level`; `level` itself when there is none.
local function user_level(level)
  local l = level + 2 -- user_level and its caller
  while true do
    local info = debug.getinfo(l, "S")
    if not info then return level end
    if not library_frame(info) then return l - 2 end
    l = l + 1
  end
end

function U.error(msg, level)
  level = level or 1
  if level > 0 and type(msg) == "string" then level = user_level(level) + 1 end
  error(msg, level)
end
local raise = U.error

--- util.strip_position(msg[, level=1]) -> msg without the leading "file:line: " that
-- util.error(msg, level) would add (for a message caught from a library call, put into one of
-- the caller's own messages)
function U.strip_position(msg, level)
  if type(msg) ~= "string" then return tostring(msg) end
  local info = debug.getinfo(user_level(level or 1) + 1, "Sl")
  if not info or info.currentline < 0 then return msg end
  local where = info.short_src .. ":" .. info.currentline .. ": "
  if msg:sub(1, #where) == where then return msg:sub(#where + 1) end
  return msg
end

-- Where a message starts with a position "<file>:<line>: " (as luaL_where writes it): the
-- file and the index of the text after it; nil when it has none.
local function position_of(msg)
  local src, pos = msg:match("^([^:\n]+):%d+: ()")
  return src, pos
end

-- Whether src (a short_src: a long path is cut to "..." and its tail) is a library file.
local function library_src(src)
  if src:sub(1, #LIB_PATH) == LIB_PATH then return true end
  return src:sub(1, 3) == "..." and LIB_PATH:find("/aiart/", 1, true) ~= nil and src:find("/aiart/[%w_/]+%.lua$") ~= nil
end

--- util.rethrow(err[, level=1]): raises err, caught from a call, again. A message positioned
-- in the library (a C function's error names the library line that called it), or not
-- positioned at all (a C function called by pcall), is positioned as util.error does; a
-- message positioned elsewhere (the user's own) and non-strings go on unchanged.
function U.rethrow(err, level)
  if type(err) == "string" then
    local src, pos = position_of(err)
    if not src then raise(err, (level or 1) + 1) end
    if library_src(src) then raise(err:sub(pos), (level or 1) + 1) end
  end
  error(err, 0)
end

------------------------------------------------------------------------------------------------
-- arguments
------------------------------------------------------------------------------------------------

--- util.check_opts(fn, opts, known) -> opts, or {} when nil. known is a set of the option
-- names; any other key is an error naming fn and the known ones (a typo would otherwise be
-- ignored).
function U.check_opts(fn, o, known)
  if o == nil then return {} end
  if type(o) ~= "table" or U.is_tensor(o) then raise(fn .. ": options must be a table, got " .. type(o), 2) end
  for k in pairs(o) do
    if known[k] == nil then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      table.sort(names)
      raise(("%s: unknown option '%s' (known: %s)"):format(fn, tostring(k), table.concat(names, ", ")), 2)
    end
  end
  return o
end

--- util.check(fn, name, v, kind[, optional]) -> v; an error naming fn and the argument unless v
-- is of type kind ("boolean", "string", "table", "number", "function" or "tensor"), or nil
-- when optional. For the trailing optional arguments an extra one would otherwise fill.
function U.check(fn, name, v, kind, optional)
  if v == nil and optional then return v end
  local t = type(v)
  local ok = kind == "tensor" and U.is_tensor(v) or (t == kind and not (kind == "table" and U.is_tensor(v)))
  if not ok then
    local got = U.is_tensor(v) and "a tensor" or t == "string" and ("'" .. v .. "'") or t
    raise(("%s: %s must be %s %s%s, got %s"):format(fn, name, kind:match("^[aeiou]") and "an" or "a",
      kind, optional and " or nil" or "", got), 2)
  end
  return v
end

--- util.to_integer(v) -> v as a Lua integer when it is a number with an integer value (2.0
-- is the integer 2, as for Lua's own t[2.0] and string.rep(s, 2.0)), else nil
function U.to_integer(v)
  if type(v) ~= "number" then return nil end
  return math.tointeger(v)
end

local function integer_kind(min, max)
  if max then return ("an integer in %d..%d"):format(min, max) end
  if min == 1 then return "a positive integer" end
  if min == 0 then return "a non-negative integer" end
  if min then return ("an integer >= %d"):format(min) end
  return "an integer"
end

--- util.int(fn, name, v[, min[, max]]) -> v as a Lua integer; an error naming fn and the
-- argument unless v is a whole number (an integer or a float with an integer value) in
-- min..max. The one integer check of the library (messages: "fn: name must be a positive
-- integer, got 2.5").
function U.int(fn, name, v, min, max)
  local i = U.to_integer(v)
  if i == nil or (min and i < min) or (max and i > max) then
    raise(("%s: %s must be %s, got %s"):format(fn, name, integer_kind(min, max),
      type(v) == "string" and ("'" .. v .. "'") or tostring(v)), 2)
  end
  return i
end

-- Functions whose argument count is checked, by wrapper -> the function it wraps (help and
-- the docs show the inner one's signature and comments).
local wrapped = setmetatable({}, {__mode = "k"})

--- util.unwrap(f) -> the function that util.strict_args wrapped as f (else f)
function U.unwrap(f) return wrapped[f] or f end

-- The number of parameters of Lua function f, or nil when f takes varargs (or is C).
local nparams_of = setmetatable({}, {__mode = "k"})
local function max_args(f)
  local n = nparams_of[f]
  if n == nil then
    local info = debug.getinfo(f, "u") -- a C function counts as varargs
    n = not info.isvararg and info.nparams
    nparams_of[f] = n
  end
  return n or nil
end

local function param_names(f, from, n)
  local names = {}
  for i = from, n do names[#names + 1] = debug.getlocal(f, i) end
  return table.concat(names, ", ")
end

--- util.check_nargs(fn, f, skip, ...): an error "fn: too many arguments" when the arguments
-- ... (those of a call of f, after `skip` leading ones such as self) go beyond f's parameters
-- with a value other than nil: Lua would drop them without a word. Varargs functions take all.
function U.check_nargs(fn, f, skip, ...)
  if type(f) ~= "function" then return end
  local n = max_args(f)
  if n == nil then return end
  local given = select("#", ...)
  if given + skip <= n then return end
  for i = n - skip + 1, given do
    if select(i, ...) ~= nil then
      local takes = n - skip
      raise(("%s: too many arguments (it takes %s%s)"):format(fn, takes == 0 and "none" or takes,
        takes > 0 and ": " .. param_names(f, skip + 1, n) or ""), 3)
    end
  end
end

--- util.strict_args(t, prefix[, methods[, except]]) -> t, its functions (not those whose
-- names start with "_", nor those in the set except) replaced by ones that first refuse
-- arguments beyond their parameters (util.check_nargs), naming prefix .. name. methods: the
-- functions are methods, whose self is not counted in messages. The call goes on as a tail
-- call: levels and positions are the inner function's.
-- f, or a function that first refuses arguments beyond f's parameters (after `skip` leading
-- ones such as self), naming fn; it goes on as a tail call, so levels are f's own.
local function strict(fn, f, skip)
  if wrapped[f] or max_args(f) == nil then return f end
  local check = U.check_nargs
  local w = function(...)
    check(fn, f, skip, select(skip + 1, ...))
    return f(...)
  end
  wrapped[w] = f
  return w
end

function U.strict_args(t, prefix, methods, except)
  local skip = methods and 1 or 0
  for k, f in pairs(t) do
    if type(k) == "string" and type(f) == "function" and k:sub(1, 1) ~= "_" and not (except and except[k]) then
      t[k] = strict(prefix .. k, f, skip)
    end
  end
  return t
end

--- util.shell_quote(s) -> s as one word for sh, in single quotes
function U.shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- util.io_lib(fn) -> ai.io, or an error naming fn (for the caller of fn) when it is not built in
function U.io_lib(fn)
  local io_ = rawget(require "aiart", "io")
  if not io_ then error(fn .. ": the file-format layer ai.io is not built into this aiart", 3) end
  return io_
end

-- splitmix64 (Steele, Lea and Flood): a well-mixed 64-bit value from a seed, for seeds derived
-- from seeds (an epoch's shuffle, a rank's stream) that must not repeat or correlate.
function U.mix64(z)
  z = z + 0x9e3779b97f4a7c15
  z = (z ~ (z >> 30)) * 0xbf58476d1ce4e5b9
  z = (z ~ (z >> 27)) * 0x94d049bb133111eb
  return z ~ (z >> 31)
end

------------------------------------------------------------------------------------------------
-- classes
------------------------------------------------------------------------------------------------

local function construct(cls, ...)
  local obj = setmetatable({}, cls)
  local init = cls.init
  U.check_nargs(cls.__name, init, 1, ...) -- Adam(params, opts, extra): an error, not ignored
  init(obj, ...)
  return obj
end

--- util.class(name[, parent[, meta]]) -> a class table: its objects have it as metatable (so
-- it holds their methods and metamethods), what it lacks comes from parent, and calling it
-- makes an object and runs obj:init(...). meta: more fields of the class's own metatable
-- (__call replaces the constructor, e.g. nn.Module's, which sets up its slots first).
-- The library's own methods, as a class gets them, check their argument count (util.strict_args);
-- a user's class keeps Lua's rule (extra arguments dropped) for its own methods. init is
-- checked by the constructor, with the class's name.
local function define_method(cls, k, v)
  if type(k) == "string" and type(v) == "function" and k ~= "init" and k:sub(1, 1) ~= "_" then
    local info = debug.getinfo(v, "S")
    if info.source:sub(1, #LIB) == LIB then v = strict(cls.__name .. ":" .. k, v, 1) end
  end
  rawset(cls, k, v)
end

function U.class(name, parent, meta)
  local cls = {__name = name}
  cls.__index = cls
  local mt = {__index = parent, __call = construct, __newindex = define_method}
  for k, v in pairs(meta or {}) do mt[k] = v end
  return setmetatable(cls, mt)
end

------------------------------------------------------------------------------------------------
-- clocks
------------------------------------------------------------------------------------------------

-- Rates, ETAs and timings use ai.clock (monotonic); records are stamped with the time of day,
-- which only the C loader's wall() has to the fraction of a second.

--- util.wall_time() -> seconds since the Unix epoch, with fractions (os.time() where the C
-- loader is not built in)
function U.wall_time()
  local K = rawget(require "aiart", "_loader")
  if K and K.wall then return K.wall() end
  return os.time()
end

------------------------------------------------------------------------------------------------
-- the global `ai` of the REPL, -e and the Jupyter kernel
------------------------------------------------------------------------------------------------

-- the metatable of _G that install_ai_global sets, while it is there
local lazy_G

--- util.install_ai_global(): the first read of the global `ai` requires "aiart" (and stores it
-- as a plain global), so that `aiart-lua -e` and the REPL have `ai` without paying for it
-- when it is not used. A metatable of _G set by someone else is never replaced, and a global
-- `ai` already there is kept.
function U.install_ai_global()
  if getmetatable(_G) ~= nil or rawget(_G, "ai") ~= nil then return end
  lazy_G = {__index = function(g, k)
    if k ~= "ai" then return nil end
    local ai = require "aiart"
    rawset(g, "ai", ai)
    if getmetatable(g) == lazy_G then setmetatable(g, nil) end
    return ai
  end}
  setmetatable(_G, lazy_G)
end

--- util.repl_globals(help) -> true, or false and the message when aiart cannot load: the
-- globals of an interactive session: `ai` (through the lazy global when it is installed, which
-- then removes itself, else require) and help (when there is none).
function U.repl_globals(help)
  local ok, mod = true, nil
  if rawget(_G, "ai") == nil then
    ok, mod = pcall(function() return _G.ai end)
    if ok and mod == nil then ok, mod = pcall(require, "aiart") end
    if ok then rawset(_G, "ai", mod) end
  end
  if rawget(_G, "help") == nil then rawset(_G, "help", help) end
  if ok then return true end
  return false, mod
end

return U
