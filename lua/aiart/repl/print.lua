--[[ aiart.repl.print: how the REPL (and the Jupyter kernel) print values: repr, the quoting of
strings and the one-line forms of tensors inside tables.

The limits are fields of aiart.repl (max_depth, max_items, max_nested_string), which users
change at run time: they are read there at each call.
]]
local P = {}

local KEYWORDS = {
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
}
local is_keyword = {}
for _, k in ipairs(KEYWORDS) do is_keyword[k] = true end
P.KEYWORDS = KEYWORDS

local function settings() return require "aiart.repl" end

local function paint(on, code, s)
  if on then return "\27[" .. code .. "m" .. s .. "\27[0m" end
  return s
end
P.paint = paint

local function out(s)
  io.stdout:write(s)
  io.stdout:flush()
end
P.out = out

local function quote(s, limit)
  local more = ""
  if limit and #s > limit then
    more = "...(" .. #s .. " bytes)"
    s = s:sub(1, limit)
  end
  s = s:gsub('[%c"\\]', function(c)
    if c == "\n" then return "\\n"
    elseif c == "\t" then return "\\t"
    elseif c == "\r" then return "\\r"
    elseif c == '"' then return '\\"'
    elseif c == "\\" then return "\\\\"
    else return string.format("\\%d", c:byte()) end
  end)
  return '"' .. s .. '"' .. more
end

local function is_identifier(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil and not is_keyword[k]
end

local function safe_tostring(v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then return s end
  return "<" .. type(v) .. ": __tostring failed>"
end

-- A one-line form of a multi-line tostring (tensors inside tables).
local function shorten(s)
  if not s:find("\n", 1, true) then return s end
  local dtype, shape = s:match("dtype=([%w_]+)"), s:match("shape=([%w_]+)")
  if dtype and shape then return "tensor(<" .. shape .. " " .. dtype .. ">)" end
  return (s:match("^[^\n]*")) .. " ...>"
end

local key_order = { number = 1, string = 2, boolean = 3 }
local function compare_keys(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return (key_order[ta] or 9) < (key_order[tb] or 9) end
  if ta == "number" or ta == "string" then return a < b end
  return safe_tostring(a) < safe_tostring(b)
end

local repr

local function repr_table(t, depth, seen, multiline)
  local S = settings()
  if seen[t] then return "<cycle>" end
  if next(t) == nil then return "{}" end
  if depth >= S.max_depth then return "{...}" end
  seen[t] = true
  local parts, n = {}, 0
  local function add(s)
    n = n + 1
    if n <= S.max_items then parts[n] = s end
  end
  local len = 0
  while rawget(t, len + 1) ~= nil do
    len = len + 1
    add(repr(rawget(t, len), depth + 1, seen))
  end
  local keys = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= len) then keys[#keys + 1] = k end
  end
  if #keys <= 1000 then table.sort(keys, compare_keys) end
  for _, k in ipairs(keys) do
    local ks = is_identifier(k) and k or "[" .. repr(k, S.max_depth, seen) .. "]"
    add(ks .. " = " .. repr(rawget(t, k), depth + 1, seen))
  end
  seen[t] = nil
  if n > S.max_items then parts[#parts + 1] = "... (" .. (n - S.max_items) .. " more)" end
  local one = "{" .. table.concat(parts, ", ") .. "}"
  if multiline and #one > 100 and #parts > 1 then
    return "{\n  " .. table.concat(parts, ",\n  ") .. ",\n}"
  end
  return one
end

-- repr(v [, depth]): the REPL's printed form of a value.
repr = function(v, depth, seen)
  depth = depth or 0
  local S = settings()
  local tv = type(v)
  if tv == "string" then
    return quote(v, depth > 0 and S.max_nested_string or nil)
  elseif tv == "table" then
    local mt = getmetatable(v)
    if type(mt) == "table" and rawget(mt, "__tostring") then
      local s = safe_tostring(v)
      return depth > 0 and shorten(s) or s
    end
    return repr_table(v, depth, seen or {}, depth == 0)
  elseif tv == "userdata" then
    local s = safe_tostring(v)
    return depth > 0 and shorten(s) or s
  end
  return safe_tostring(v)
end
P.repr = repr

P.quote = quote
P.safe_tostring = safe_tostring
P.shorten = shorten

-- The values pack[first..pack.n] as the REPL prints them (with repr, e.g. aiart.repl.repr,
-- which users may replace): tab-separated, or one per line when one of them takes several.
function P.format_values(pack, first, repr_fn)
  local strs, multi = {}, false
  for i = first, pack.n do
    local s = repr_fn(pack[i])
    strs[#strs + 1] = s
    if s:find("\n", 1, true) then multi = true end
  end
  return table.concat(strs, multi and "\n" or "\t"), #strs
end

return P
