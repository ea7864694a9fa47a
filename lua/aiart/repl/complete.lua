--[[ aiart.repl.complete: tab completion of the REPL and the Jupyter kernel: REPL commands,
globals and keywords, fields after `obj.` and methods after `obj:` (tensor methods included,
and the lazily loaded fields of `ai`).
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
    if type(k) == "string" and k:match("^[%a_][%w_]*$") and (lazy or pred(k, v)) then
      acc[k] = true
    end
  end
  local mt = getmetatable(t)
  local idx = type(mt) == "table" and rawget(mt, "__index")
  if type(idx) == "table" then
    collect_keys(idx, pred, acc, depth + 1)
  elseif type(idx) == "function" and depth == 0 and t ~= _G then
    for _, up in ipairs(index_upvalue_tables(idx)) do
      -- the values there may be loaders rather than the fields: offer every name
      collect_keys(up, pred, acc, 5, true)
    end
  end
  return acc
end

local function any(_, _) return true end
local function is_method(k, v) return type(v) == "function" and not k:match("^__") end

-- Names usable after obj. (fields) or obj: (methods).
local function members(obj, methods)
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
