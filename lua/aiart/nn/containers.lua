--[[ aiart.nn.containers: Sequential, ModuleList and ModuleDict.

Sequential and ModuleList name their children "0", "1", ... exactly as PyTorch does, so that
state_dict keys ("net.0.weight") match PyTorch's for weight exchange. Lua-side access is
1-based as everywhere in Lua: seq[1] is the child named "0", #seq the number of children,
and ipairs(seq) walks them in order.
]]
local module = require "aiart.nn.module"
local error = require("aiart.util").error -- positions name the caller's line (see util.error)

local Module, is_module = module.Module, module.is_module
local C = {}

-- Children of a container, in order (skipping nil slots).
local function child_list(self)
  local out, kinds, slots = {}, rawget(self, "_kinds"), rawget(self, "_slots")
  for _, name in ipairs(rawget(self, "_order")) do
    if kinds[name] == "module" and slots[name] ~= nil then out[#out + 1] = slots[name] end
  end
  return out
end

-- level: as error()'s, counted from the caller of check_module
local function check_module(fn, m, i, level)
  if not is_module(m) then
    error(("%s: item %d is a %s, expected a module"):format(fn, i, type(m)), level + 1)
  end
  return m
end

-- Modules given as varargs or as one array table, checked: every item a module, no holes (a
-- nil in the middle would end ipairs early) and no other keys in the table (they would be
-- dropped without a word).
local function module_args(fn, ...)
  local first, n = ..., select("#", ...)
  local list = {...}
  if n == 1 and type(first) == "table" and not is_module(first) then
    list, n = first, 0
    for k in pairs(first) do
      if math.type(k) ~= "integer" or k < 1 then
        error(("%s: the list of modules has the key %s; only 1, 2, ... (a name: use nn.ModuleDict)")
          :format(fn, type(k) == "string" and ("'" .. k .. "'") or tostring(k)), 4)
      end
      if k > n then n = k end
    end
  end
  while n > 0 and list[n] == nil do n = n - 1 end -- trailing nils are no arguments
  for i = 1, n do check_module(fn, list[i], i, 4) end
  return list
end

-- The number of registered children (plain fields and tables set on a container don't count).
local function list_len(self)
  local n, kinds = 0, rawget(self, "_kinds")
  for _, name in ipairs(rawget(self, "_order")) do
    if kinds[name] == "module" then n = n + 1 end
  end
  return n
end

-- seq[i] with i 1-based, negative from the end.
local function getitem(self, i)
  local n = list_len(self)
  if i < 0 then i = i + n + 1 end
  if i < 1 or i > n or i ~= math.floor(i) then return nil end
  return rawget(self, "_slots")[tostring(i - 1)]
end

local function append(self, m)
  local n = list_len(self)
  check_module(getmetatable(self).__name .. ":append", m, n + 1, 2)
  self:add_module(tostring(n), m)
  return self
end

------------------------------------------------------------------------------------ Sequential

local Sequential = Module:extend("Sequential")
C.Sequential = Sequential
Sequential._runs_children = true -- its forward runs user modules: their errors stay theirs

--- nn.Sequential(m1, m2, ...) or nn.Sequential{m1, m2, ...}: runs the modules in turn,
-- each on the output of the previous one.
function Sequential:init(...)
  for i, m in ipairs(module_args("Sequential", ...)) do
    self:add_module(tostring(i - 1), m)
  end
end

function Sequential:forward(x)
  local kinds, slots = rawget(self, "_kinds"), rawget(self, "_slots")
  for _, name in ipairs(rawget(self, "_order")) do
    local m = kinds[name] == "module" and slots[name]
    if m then x = m(x) end
  end
  return x
end

--- seq:add(m) (Torch7) / seq:append(m) (PyTorch): adds m at the end; returns seq.
Sequential.add = append
Sequential.append = append
Sequential._getitem = getitem
Sequential.__len = list_len

------------------------------------------------------------------------------------ ModuleList

local ModuleList = Module:extend("ModuleList")
C.ModuleList = ModuleList

--- nn.ModuleList{m1, m2, ...}: a list of modules whose parameters the parent finds. It has no
-- forward: iterate over it (for i, m in ipairs(list) do ... end).
function ModuleList:init(...)
  for i, m in ipairs(module_args("ModuleList", ...)) do
    self:add_module(tostring(i - 1), m)
  end
end

function ModuleList:forward(...) -- any arguments: the message is about forward
  error("ModuleList: has no forward; iterate over it with ipairs(list) instead", 2)
end

ModuleList.append = append
ModuleList._getitem = getitem
ModuleList.__len = list_len

--- list:extend(modules): appends each module of a list; returns list.
function ModuleList:extend(modules)
  if getmetatable(self) == nil or rawget(self, "_slots") == nil then
    return Module.extend(self, modules) -- called on the class: subclassing
  end
  for _, m in ipairs(modules) do append(self, m) end
  return self
end

------------------------------------------------------------------------------------ ModuleDict

local ModuleDict = Module:extend("ModuleDict")
C.ModuleDict = ModuleDict

--- nn.ModuleDict(t): modules by name. A Lua table has no order, so t is either a list of
-- {name, module} pairs (kept in that order) or a map name -> module (sorted by name).
-- Access: d.name or d["name"]; for name, m in d:items() do ... end.
function ModuleDict:init(t)
  if t == nil then return end
  if type(t) ~= "table" then error("ModuleDict: expected a table of modules, got " .. type(t), 3) end
  if t[1] ~= nil then
    for i, e in ipairs(t) do
      if type(e) ~= "table" or type(e[1]) ~= "string" or not is_module(e[2]) then
        error(("ModuleDict: item %d must be a {name, module} pair"):format(i), 3)
      end
      self:add_module(e[1], e[2])
    end
  else
    local names = {}
    for k in pairs(t) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
      if not is_module(t[k]) then error(("ModuleDict: value of '%s' is a %s, expected a module"):format(k, type(t[k])), 3) end
      self:add_module(k, t[k])
    end
  end
end

function ModuleDict:forward(...) -- any arguments: the message is about forward
  error("ModuleDict: has no forward; index it by name instead", 2)
end

--- d:keys() -> the names, in order; d:values() -> the modules; d:items() an iterator.
function ModuleDict:keys()
  local out = {}
  for _, name in ipairs(rawget(self, "_order")) do
    if rawget(self, "_slots")[name] ~= nil then out[#out + 1] = name end
  end
  return out
end
function ModuleDict:values() return child_list(self) end
function ModuleDict:items() return self:named_children() end
function ModuleDict:contains(name) return rawget(self, "_slots")[name] ~= nil end
--- d:update(t) adds (or replaces) modules, as the constructor takes them.
function ModuleDict:update(t)
  ModuleDict.init(self, t)
  return self
end
ModuleDict.__len = function(self) return #self:keys() end

return C
