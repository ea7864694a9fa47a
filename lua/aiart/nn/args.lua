--[[ aiart.nn.args: argument checks shared by nn, optim and sched, so that every constructor
reports a wrong argument the same way: "Linear: in_features must be a positive integer, got -1".
`level` counts as error() does, from the function calling the check (1); the default 3 is
right for a constructor: user code -> class __call -> init -> check.
]]
local A = {}

local function is_int(v) return type(v) == "number" and v == math.floor(v) and v == v and v ~= math.huge and v ~= -math.huge end
A.is_int = is_int

local function fail(msg, level) error(msg, (level or 3) + 2) end

--- A.NONE as a default declares an option that is absent (nil) unless given.
A.NONE = setmetatable({}, {__tostring = function() return "none" end})

--- A.options(fn, opts, defaults) -> a new table with defaults overridden by opts; unknown keys
-- are errors (a typo would otherwise be silently ignored).
function A.options(fn, opts, defaults, level)
  if opts ~= nil and type(opts) ~= "table" then
    fail(("%s: options must be a table, got %s"):format(fn, type(opts)), level)
  end
  local o = {}
  for k, v in pairs(defaults) do if v ~= A.NONE then o[k] = v end end
  for k, v in pairs(opts or {}) do
    if defaults[k] == nil then
      local known = {}
      for name in pairs(defaults) do known[#known + 1] = name end
      table.sort(known)
      fail(("%s: unknown option '%s' (known: %s)"):format(fn, tostring(k), table.concat(known, ", ")), level)
    end
    o[k] = v
  end
  return o
end

--- A.int(fn, name, v[, min=1]) checks that v is an integer >= min and returns it.
function A.int(fn, name, v, min, level)
  min = min or 1
  if not is_int(v) or v < min then
    local what = min == 1 and "a positive integer" or min == 0 and "a non-negative integer"
      or min == -math.huge and "an integer" or ("an integer >= %s"):format(math.tointeger(min) or min)
    fail(("%s: %s must be %s, got %s"):format(fn, name, what, tostring(v)), level)
  end
  return math.tointeger(v)
end

--- A.number(fn, name, v[, lo, hi]) checks that v is a number in [lo, hi].
function A.number(fn, name, v, lo, hi, level)
  if type(v) ~= "number" or v ~= v or (lo and v < lo) or (hi and v > hi) then
    local range = (lo and hi) and (" in [%g, %g]"):format(lo, hi) or lo and (" >= %g"):format(lo) or ""
    fail(("%s: %s must be a number%s, got %s"):format(fn, name, range, tostring(v)), level)
  end
  return v
end

--- A.pair(fn, name, v[, min=1]) -> {a, b} from an integer or a pair of integers >= min.
function A.pair(fn, name, v, min, level)
  min = min or 1
  local p = type(v) == "table" and v or {v, v}
  if #p ~= 2 or not is_int(p[1]) or not is_int(p[2]) or p[1] < min or p[2] < min then
    fail(("%s: %s must be an integer >= %d or a pair of them, got %s"):format(
      fn, name, min, type(v) == "table" and "{" .. table.concat(v, ", ") .. "}" or tostring(v)), level)
  end
  return {math.tointeger(p[1]), math.tointeger(p[2])}
end

--- A.oneof(fn, name, v, choices) checks that v is one of the strings in choices.
function A.oneof(fn, name, v, choices, level)
  for _, c in ipairs(choices) do if v == c then return v end end
  fail(("%s: %s must be one of '%s', got %s"):format(fn, name, table.concat(choices, "', '"),
    type(v) == "string" and "'" .. v .. "'" or tostring(v)), level)
end

return A
