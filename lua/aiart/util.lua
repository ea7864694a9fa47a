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

--- util.check_opts(fn, opts, known[, level=2]) -> opts, or {} when nil. known is a set of the
-- option names; any other key is an error naming fn and the known ones (a typo would otherwise
-- be ignored). level counts as error() does, from the function that calls check_opts.
function U.check_opts(fn, o, known, level)
  level = (level or 2) + 1
  if o == nil then return {} end
  if type(o) ~= "table" or U.is_tensor(o) then error(fn .. ": options must be a table, got " .. type(o), level) end
  for k in pairs(o) do
    if not known[k] then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      table.sort(names)
      error(("%s: unknown option '%s' (known: %s)"):format(fn, tostring(k), table.concat(names, ", ")), level)
    end
  end
  return o
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
  obj:init(...)
  return obj
end

--- util.class(name[, parent[, meta]]) -> a class table: its objects have it as metatable (so
-- it holds their methods and metamethods), what it lacks comes from parent, and calling it
-- makes an object and runs obj:init(...). meta: more fields of the class's own metatable
-- (__call replaces the constructor, e.g. nn.Module's, which sets up its slots first).
function U.class(name, parent, meta)
  local cls = {__name = name}
  cls.__index = cls
  local mt = {__index = parent, __call = construct}
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
