--[[ aiart.repl.complete: tab completion of the REPL and the Jupyter kernel: REPL commands,
globals and keywords, fields after `obj.` and methods after `obj:` (tensor methods included,
the lazily loaded fields of `ai`, and for nn modules their methods, parameters, buffers,
children and fields rather than their internals).
]]
local printing = require "aiart.repl.print"
local help = require "aiart.repl.help"

local KEYWORDS = printing.KEYWORDS
local tensor_method_tables, get_docs = help.tensor_method_tables, help.get_docs
local resolve, get_ai = help.resolve, help.get_ai

local C = {}

local function index_upvalue_tables(f)
  local tabs = {}
  for i = 1, 16 do
    local name, up = debug.getupvalue(f, i)
    if name == nil then break end
    if type(up) == "table" and name ~= "_ENV" and up ~= _G and up ~= package.loaded then
      tabs[#tabs + 1] = up
    end
  end
  return tabs
end

local function collect_keys(t, pred, acc, depth, lazy)
  depth = depth or 0
  if depth > 5 or type(t) ~= "table" then return acc end
  for k, v in next, t do
    if type(k) == "string" and k:match("^[%a_][%w_]*$") and (lazy and pred(k) or not lazy and pred(k, v)) then
      acc[k] = true
    end
  end
  local mt = getmetatable(t)
  local idx = type(mt) == "table" and rawget(mt, "__index")
  if type(idx) == "table" then
    collect_keys(idx, pred, acc, depth + 1)
  elseif type(idx) == "function" and depth == 0 and t ~= _G then
    for _, up in ipairs(index_upvalue_tables(idx)) do
      -- the values there may be loaders rather than the fields: offer every name (but the
      -- metamethods, which are no fields)
      collect_keys(up, function(k) return not k:match("^__") end, acc, 1, true)
    end
  end
  return acc
end

local function any(_, _) return true end
local function is_method(k, v) return type(v) == "function" and not k:match("^__") end

-- The names an nn module offers (PyTorch's dir, without the private ones): the methods of its
-- class chain, and after "." its fields too (parameters, buffers, children, plain fields,
-- training). Its internals (_slots, _kinds, _order, ...) and names starting with "_" are not
-- offered.
local function module_members(obj, methods)
  local acc = {}
  local function add(k, v)
    if type(k) == "string" and k:match("^%a[%w_]*$") and (not methods or type(v) == "function") then acc[k] = true end
  end
  local cls, depth = getmetatable(obj), 0
  while type(cls) == "table" and depth < 32 do
    for k, v in next, cls do if type(v) == "function" then add(k, v) end end
    cls, depth = rawget(cls, "super"), depth + 1
  end
  for k, v in next, rawget(obj, "_slots") do add(k, v) end
  if not methods then acc.training = true end
  return acc
end

local function is_module(v)
  local m = package.loaded["aiart.nn.module"]
  return m ~= nil and m.is_module(v)
end

-- Names usable after obj. (fields) or obj: (methods).
local function members(obj, methods)
  if is_module(obj) then return module_members(obj, methods) end
  local acc = {}
  local pred = methods and is_method or function(k) return not k:match("^__") end
  if type(obj) == "table" then
    collect_keys(obj, pred, acc)
  elseif type(obj) == "userdata" or type(obj) == "string" then
    if type(obj) == "string" then collect_keys(string, pred, acc) end
    local mt = getmetatable(obj)
    if type(mt) == "table" then
      local idx = rawget(mt, "__index")
      if type(idx) == "table" then collect_keys(idx, pred, acc) end
      local tabs, tmt = tensor_method_tables()
      if mt == tmt then
        for _, t in ipairs(tabs) do
          if t ~= tmt then collect_keys(t, pred, acc) end
        end
        if type(idx) ~= "table" then
          -- an __index function: offer the documented methods that exist
          for name in pairs(get_docs()) do
            local m = type(name) == "string" and name:match("^Tensor[:.]([%w_]+)$")
            if m then
              local ok, val = pcall(function() return obj[m] end)
              if ok and val ~= nil and pred(m, val) then acc[m] = true end
            end
          end
        end
      end
    end
  end
  return acc
end

local COMMANDS = { ":help", ":quit", ":time on", ":time off" }

local function in_string(s)
  local q, i, n = nil, 1, #s
  while i <= n do
    local c = s:sub(i, i)
    if q then
      if c == "\\" then i = i + 1 elseif c == q then q = nil end
    elseif c == '"' or c == "'" then q = c
    elseif c == "-" and s:sub(i, i + 1) == "--" then return false
    end
    i = i + 1
  end
  return q ~= nil
end

-- complete(text, line_before) -> list of candidates replacing text (nil: file names)
function C.complete(text, before)
  before = before or ""
  local cands = {}
  if before:match("^%s*$") and text:sub(1, 1) == ":" then
    for _, c in ipairs(COMMANDS) do
      if c:sub(1, #text) == text then cands[#cands + 1] = c end
    end
    table.sort(cands)
    return cands
  end
  if in_string(before) then return nil end
  local path, sep, partial = text:match("^([%a_][%w_%.]-)([.:])([%w_]*)$")
  local set
  if path then
    local obj = resolve(path)
    if obj == nil then return cands end
    set = members(obj, sep == ":")
  else
    if not text:match("^[%a_]?[%w_]*$") then return cands end
    partial, path, sep = text, "", ""
    set = collect_keys(_G, any, {})
    if get_ai() then set.ai = true end
    for _, k in ipairs(KEYWORDS) do set[k] = true end
  end
  for k in pairs(set) do
    if k:sub(1, #partial) == partial then cands[#cands + 1] = path .. sep .. k end
  end
  table.sort(cands)
  return cands
end

return C
