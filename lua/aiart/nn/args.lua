--[[ aiart.nn.args: argument checks shared by nn, optim and sched, so that every constructor
reports a wrong argument the same way: "Linear: in_features must be a positive integer, got -1".
Errors are positioned at the first caller outside the library (util.error): the trailing
`level` arguments that callers still pass are not needed.
]]
local util = require "aiart.util"

local A = {}

local raise = util.error

--- A.NONE as a default declares an option that is absent (nil) unless given.
A.NONE = setmetatable({}, {__tostring = function() return "none" end})

--- A.options(fn, opts, defaults) -> a new table with defaults overridden by opts; unknown keys
-- are errors (a typo would otherwise be silently ignored).
function A.options(fn, opts, defaults)
  util.check_opts(fn, opts, defaults)
  local o = {}
  for k, v in pairs(defaults) do if v ~= A.NONE then o[k] = v end end
  for k, v in pairs(opts or {}) do o[k] = v end
  return o
end

--- A.int(fn, name, v[, min=1]) checks that v is a whole number >= min and returns it as an
-- integer (util.int).
function A.int(fn, name, v, min)
  if min == nil then min = 1 elseif min == -math.huge then min = nil end
  return util.int(fn, name, v, min)
end

--- A.number(fn, name, v[, lo, hi]) checks that v is a number in [lo, hi].
function A.number(fn, name, v, lo, hi)
  if type(v) ~= "number" or v ~= v or (lo and v < lo) or (hi and v > hi) then
    local range = (lo and hi) and (" in [%g, %g]"):format(lo, hi) or lo and (" >= %g"):format(lo) or ""
    raise(("%s: %s must be a number%s, got %s"):format(fn, name, range, tostring(v)), 2)
  end
  return v
end

--- A.pair(fn, name, v[, min=1]) -> {a, b} from a whole number or a pair of them >= min.
function A.pair(fn, name, v, min)
  min = min or 1
  local p = type(v) == "table" and v or {v, v}
  local a, b = util.to_integer(p[1]), util.to_integer(p[2])
  if #p ~= 2 or not a or not b or a < min or b < min then
    local shown = tostring(v)
    if type(v) == "table" then
      local parts = {}
      for i, e in ipairs(v) do parts[i] = tostring(e) end
      shown = "{" .. table.concat(parts, ", ") .. "}"
    end
    raise(("%s: %s must be an integer >= %d or a pair of them, got %s"):format(fn, name, min, shown), 2)
  end
  return {a, b}
end

--- A.oneof(fn, name, v, choices) checks that v is one of the strings in choices.
function A.oneof(fn, name, v, choices)
  for _, c in ipairs(choices) do if v == c then return v end end
  raise(("%s: %s must be one of '%s', got %s"):format(fn, name, table.concat(choices, "', '"),
    type(v) == "string" and "'" .. v .. "'" or tostring(v)), 2)
end

return A
