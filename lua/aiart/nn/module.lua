--[[ aiart.nn.module: nn.Module, the base class of every layer and model, and nn.Parameter.

A module is a plain Lua object. Assigning a parameter, a buffer or a child module to one of
its fields registers it, in the order of assignment, so that parameters(), state_dict() and
friends find it with a deterministic name, the one PyTorch would give:

    local Block = nn.Module:extend("Block")
    function Block:init(c)
      self.conv = nn.Conv2d(c, c, 3, {padding = 1})   -- a child module: "conv"
      self.scale = nn.Parameter(ai.ones(c))          -- a parameter: "scale"
      self:buffer("count", ai.zeros(1))              -- a buffer (saved, not trained)
    end
    function Block:forward(x) return self.conv(x) * self.scale:view(1, -1, 1, 1) end
    local b = Block(8)          -- calling the class constructs; calling the object runs forward

Registered values and plain fields alike live in self._slots, not in the object itself, so
that every assignment goes through __newindex (as PyTorch's __setattr__): reassigning a
parameter is seen, and so is a module assigned to a field that held something else.
Plain tables are registered too (kind "table"), in the same order, because modules and
parameters put in them, at once or later (self.blocks = {} then self.blocks[i] =
nn.Linear(...)), belong to the module: every walk (parameters, state_dict, train, apply,
the printout, ...) looks into them, nested, as into an nn.ModuleList, under the same names
("blocks.0.weight"; string keys as they are). Other values (numbers, strings, plain tensors,
objects with a metatable) are plain fields.

Sequential and ModuleList name their children "0", "1", ... as PyTorch does, so that
state_dict keys match PyTorch's for weight exchange; Lua indexing stays 1-based: seq[1] is
the child named "0".
]]
local ai = require "aiart"
local util = require "aiart.util"

local M = {}

local is_tensor, check_nargs = util.is_tensor, util.check_nargs
local error = util.error -- positions name the caller's line (see util.error)
M.is_tensor = is_tensor

-- A tensor box has no room for extra fields, so parameters are remembered in a weak set.
local parameter_set = setmetatable({}, {__mode = "k"})

--- nn.Parameter(t[, requires_grad=true]) -> t, marked as a parameter and requiring grad.
-- A non-leaf tensor is detached first: a parameter is always a leaf of the graph.
function M.Parameter(t, requires_grad)
  if not is_tensor(t) then error("Parameter: tensor expected, got " .. type(t), 2) end
  util.check("Parameter", "requires_grad", requires_grad, "boolean", true)
  if not t.is_leaf then t = t:detach() end
  t:requires_grad_(requires_grad ~= false)
  parameter_set[t] = true
  return t
end

function M.is_parameter(v) return parameter_set[v] == true end

local Module = {}
M.Module = Module
Module.__name = "Module"
Module._is_module_class = true

local function is_module(v)
  local mt = type(v) == "table" and getmetatable(v)
  return mt and rawget(mt, "_is_module_class") ~= nil and rawget(v, "_slots") ~= nil or false
end
M.is_module = is_module

local function class_name(self) return getmetatable(self).__name end

-- Fields of a module that are managed by Module itself (raw fields).
local function slots(self) return rawget(self, "_slots") end

function Module.__index(self, k)
  local v = rawget(self, "_slots")[k]
  if v ~= nil then return v end
  local cls = getmetatable(self)
  if type(k) == "number" and cls._getitem then return cls._getitem(self, k) end
  return cls[k]
end

-- Registers name with kind "param", "buffer" or "module", keeping the first-assignment order.
local function register(self, name, kind, value)
  if type(name) ~= "string" or name == "" or name:find(".", 1, true) then
    error(("%s: a registered name must be a non-empty string without '.', got %s"):format(
      class_name(self), tostring(name)), 3)
  end
  local kinds = rawget(self, "_kinds")
  if kinds[name] == nil then
    local order = rawget(self, "_order")
    order[#order + 1] = name
  end
  kinds[name] = kind
  rawset(self, name, nil) -- a plain field of that name would hide the slot
  slots(self)[name] = value
end

local function plain_table(v) return type(v) == "table" and getmetatable(v) == nil end

local function valid_name(k) return type(k) == "string" and k ~= "" and not k:find(".", 1, true) end

-- Drops a registered plain table: `name` becomes a plain field again.
local function unregister_table(self, k, v)
  local order = rawget(self, "_order")
  for i, name in ipairs(order) do
    if name == k then table.remove(order, i) break end
  end
  rawget(self, "_kinds")[k] = nil
  slots(self)[k] = v
end

function Module.__newindex(self, k, v)
  local kind = rawget(self, "_kinds")[k]
  if is_module(v) then
    register(self, k, "module", v)
  elseif parameter_set[v] then
    register(self, k, "param", v)
  elseif kind == "param" then
    if v ~= nil then
      error(("%s: cannot assign a %s to parameter '%s' (expected nn.Parameter(t) or nil)"):format(
        class_name(self), is_tensor(v) and "plain tensor" or type(v), k), 2)
    end
    slots(self)[k] = nil
  elseif kind == "buffer" then
    if v ~= nil and not is_tensor(v) then
      error(("%s: buffer '%s' must be a tensor or nil, got %s"):format(class_name(self), k, type(v)), 2)
    end
    slots(self)[k] = v
  elseif kind == "module" then
    if v ~= nil then
      error(("%s: cannot assign a %s to child module '%s' (expected a module or nil)"):format(
        class_name(self), type(v), k), 2)
    end
    slots(self)[k] = nil
  elseif kind == "table" then
    if plain_table(v) then slots(self)[k] = v else unregister_table(self, k, v) end
  elseif plain_table(v) and valid_name(k) then
    register(self, k, "table", v)
  else
    slots(self)[k] = v -- a plain field, kept out of the object so that __newindex sees the next one
  end
end

-- forward is a method of the class (or a function set on the object itself)
local function forward_of(self)
  local f = slots(self).forward
  if type(f) ~= "function" then f = getmetatable(self).forward end
  return f
end

-- Whether calls of method f of class cls catch errors to position them at the caller: f is
-- the library's own (a layer's forward, whose C kernels would name the library's line) and
-- does not run user code (a container's forward runs its children, whose errors and
-- tracebacks are left as they are).
local own_code = setmetatable({}, {__mode = "k"})
local LIB_SOURCE = debug.getinfo(1, "S").source:match("^(@.*[/\\])nn[/\\]") or false
local function catches(cls, f)
  if cls._runs_children then return false end
  local c = own_code[f]
  if c == nil then
    local src = debug.getinfo(util.unwrap(f), "S").source
    c = LIB_SOURCE and src:sub(1, #LIB_SOURCE) == LIB_SOURCE or false
    own_code[f] = c
  end
  return c
end

local function finish(ok, ...)
  if ok then return ... end
  util.rethrow((...), 2)
end

-- m(...) runs m:forward(...); arguments beyond forward's parameters are an error (Lua would
-- drop them: net(x, t) on a forward(x) would ignore t).
function Module.__call(self, ...)
  local f, cls = forward_of(self), getmetatable(self)
  check_nargs(cls.__name .. ":forward", f, 1, ...)
  if catches(cls, f) then return finish(pcall(f, self, ...)) end
  return f(self, ...)
end

-- Metamethods are looked up raw in the metatable, so subclasses get copies of them.
local METAMETHODS = {"__index", "__newindex", "__call", "__tostring", "__len"}

local function construct(cls, ...)
  local self = setmetatable({}, cls)
  rawset(self, "_slots", {})
  rawset(self, "_kinds", {})
  rawset(self, "_order", {})
  rawset(self, "_nonpersistent", {})
  rawset(self, "training", true)
  local init = cls.init
  check_nargs(cls.__name, init, 1, ...)
  if catches(cls, init) then finish(pcall(init, self, ...)) else init(self, ...) end
  return self
end

--- Module:extend(name) -> a new class deriving from this one. Define its init(...) (the
-- constructor's body) and forward(...); call the class to construct an object.
function Module:extend(name)
  if type(name) ~= "string" then error("extend: the class needs a name (a string)", 2) end
  local cls = util.class(name, self, {__call = construct, __tostring = function() return "class " .. name end})
  cls._is_module_class, cls.super = true, self
  for _, mm in ipairs(METAMETHODS) do cls[mm] = rawget(self, mm) end
  return cls
end
setmetatable(Module, {__call = construct, __tostring = function() return "class Module" end})

--- isinstance(m, cls): whether object m is of class cls or a subclass of it.
function M.isinstance(m, cls)
  if type(cls) ~= "table" then util.error("isinstance: cls must be a class (a table such as nn.Linear), got " .. type(cls), 2) end
  local c = type(m) == "table" and getmetatable(m)
  while c do
    if c == cls then return true end
    c = rawget(c, "super")
  end
  return false
end

-- Do-nothing defaults, in torch/nn's spirit: each layer overrides what differs.
function Module:init() end
function Module:forward(...) -- luacheck: ignore (any arguments: the message is about the missing forward)
  error(("%s: no forward method (define function %s:forward(...))"):format(class_name(self), class_name(self)), 2)
end
function Module:extra_repr() return "" end

--------------------------------------------------------------------------------- registration

--- self:param(name, t) registers t (made an nn.Parameter) as a parameter; returns it.
-- t may be nil to declare an absent parameter (e.g. a layer without bias).
function Module:param(name, t)
  if t ~= nil then t = M.Parameter(t) end
  register(self, name, "param", t)
  return t
end

--- self:buffer(name, t[, {persistent=true}]) registers tensor t (or nil) as a buffer: state
-- that is saved in state_dict() but not trained (running statistics, ...).
function Module:buffer(name, t, opts)
  if t ~= nil and not is_tensor(t) then
    error(("%s: buffer '%s' must be a tensor or nil, got %s"):format(class_name(self), name, type(t)), 2)
  end
  register(self, name, "buffer", t)
  util.check_opts(class_name(self) .. ":buffer", opts, {persistent = true})
  rawget(self, "_nonpersistent")[name] = (opts and opts.persistent == false) or nil
  return t
end

--- self:add_module(name, m) registers a child module under name (for computed names).
function Module:add_module(name, m)
  if m ~= nil and not is_module(m) then
    error(("%s: add_module('%s'): expected a module, got %s"):format(class_name(self), tostring(name), type(m)), 2)
  end
  register(self, name, "module", m)
  return m
end

-- PyTorch's spellings
Module.register_parameter = Module.param
Module.register_buffer = Module.buffer
Module.register_module = Module.add_module

------------------------------------------------------------------------------------ traversal

-- The name of key k of a plain table under prefix: 1, 2, ... are "0", "1", ... as ModuleList
-- names its children; string keys without "." are themselves; nil for other keys.
local function table_key_name(prefix, k)
  local i = math.type(k) == "integer" and k >= 1 and k or nil
  if i then return prefix .. "." .. (i - 1) end
  if valid_name(k) then return prefix .. "." .. k end
  return nil
end

-- The keys of a plain table in a fixed order: the sequence 1..#t, then the other integers,
-- then the other keys sorted (strings, then the rest by their text).
local function sorted_keys(t)
  local keys, n = {}, #t
  for i = 1, n do keys[i] = i end
  local rest = {}
  for k in pairs(t) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then rest[#rest + 1] = k end
  end
  table.sort(rest, function(a, b)
    local ia, ib = math.type(a) == "integer", math.type(b) == "integer"
    if ia ~= ib then return ia end
    if ia then return a < b end
    local sa, sb = type(a) == "string", type(b) == "string"
    if sa ~= sb then return sa end
    return tostring(a) < tostring(b)
  end)
  table.move(rest, 1, #rest, n + 1, keys)
  return keys
end

-- Calls fn(name, value) for the modules (kind "module") or parameters (kind "param") inside
-- the plain table t named prefix, nested tables included (each table once: cycles end). A
-- module or parameter under a key that makes no name (true, 1.5, "a.b") is an error: left
-- out, it would silently not be trained or saved.
local function each_in_table(self, t, prefix, kind, fn, seen, bad_key)
  if seen[t] then return end
  seen[t] = true
  local any = false -- most tables (options, sizes) hold only numbers and strings: done at once
  for _, v in next, t do
    if type(v) == "table" or parameter_set[v] then any = true break end
  end
  if not any then return end
  for _, k in ipairs(sorted_keys(t)) do
    local v = t[k]
    local found = (kind == "module" and is_module(v)) or (kind == "param" and parameter_set[v])
    if found or plain_table(v) then
      local name = table_key_name(prefix, k)
      local bad = bad_key or (name == nil and k) or nil
      if found and bad ~= nil then
        error(("%s: the table '%s' holds a %s under the key %s, which makes no name; use integer keys or names without '.'"):format(
          class_name(self), prefix, kind == "module" and "module" or "parameter", tostring(bad)), 3)
      elseif found then
        fn(name, v)
      else
        each_in_table(self, v, name or prefix, kind, fn, seen, bad)
      end
    end
  end
end

-- Calls fn(name, value) for the registered values of kind `kind`, in order, skipping nil;
-- modules and parameters inside plain tables come at the table's place.
local function each_own(self, kind, fn)
  local kinds, sl = rawget(self, "_kinds"), rawget(self, "_slots")
  for _, name in ipairs(rawget(self, "_order")) do
    local k = kinds[name]
    if k == kind then
      local v = sl[name]
      if v ~= nil then fn(name, v) end
    elseif k == "table" and (kind == "module" or kind == "param") then
      each_in_table(self, sl[name], name, kind, fn, {})
    end
  end
end
M._each_own = each_own

-- Pre-order walk: fn(prefix, module) for self and every descendant; shared modules once.
local function walk(self, prefix, fn, seen)
  if seen[self] then return end
  seen[self] = true
  fn(prefix, self)
  each_own(self, "module", function(name, child)
    walk(child, prefix == "" and name or prefix .. "." .. name, fn, seen)
  end)
end

-- An iterator over a list of {name, value} pairs: for name, v in m:named_parameters() do
local function pairs_iter(list)
  local i = 0
  return function()
    i = i + 1
    local e = list[i]
    if e then return e[1], e[2] end
  end
end

local function join(prefix, name) return prefix == "" and name or prefix .. "." .. name end

local WALK_OPTS = {prefix = true, recurse = true}

local function named_of_kind(self, kind, opts)
  util.check_opts(class_name(self) .. (kind == "param" and ":parameters" or ":buffers"), opts, WALK_OPTS)
  local list, seen = {}, {}
  local prefix = opts and opts.prefix or ""
  local function collect(pfx, m)
    each_own(m, kind, function(name, v)
      if not seen[v] then
        seen[v] = true
        list[#list + 1] = {join(pfx, name), v}
      end
    end)
  end
  if opts and opts.recurse == false then collect(prefix, self)
  else walk(self, prefix, collect, {}) end
  return list
end

local function values(list)
  local out = {}
  for i, e in ipairs(list) do out[i] = e[2] end
  return out
end

--- m:parameters([{recurse=true}]) -> a list of the parameter tensors (shared ones once).
function Module:parameters(opts) return values(named_of_kind(self, "param", opts)) end
--- for name, p in m:named_parameters([{prefix=, recurse=}]) do ... end
function Module:named_parameters(opts) return pairs_iter(named_of_kind(self, "param", opts)) end
function Module:buffers(opts) return values(named_of_kind(self, "buffer", opts)) end
function Module:named_buffers(opts) return pairs_iter(named_of_kind(self, "buffer", opts)) end

local function named_children_list(self)
  local list, seen = {}, {}
  each_own(self, "module", function(name, m)
    if not seen[m] then seen[m] = true; list[#list + 1] = {name, m} end
  end)
  return list
end
--- m:children() -> a list of the direct child modules.
function Module:children() return values(named_children_list(self)) end
function Module:named_children() return pairs_iter(named_children_list(self)) end

local function named_modules_list(self, prefix)
  local list = {}
  walk(self, prefix or "", function(name, m) list[#list + 1] = {name, m} end, {})
  return list
end
--- m:modules() -> a list of self and all descendants, pre-order (self first).
function Module:modules() return values(named_modules_list(self)) end
function Module:named_modules(opts)
  util.check_opts(class_name(self) .. ":named_modules", opts, {prefix = true})
  return pairs_iter(named_modules_list(self, opts and opts.prefix))
end

--- m:num_parameters([{trainable=false}]) -> the number of parameter elements.
function Module:num_parameters(opts)
  util.check_opts(class_name(self) .. ":num_parameters", opts, {trainable = true})
  local n = 0
  for _, p in ipairs(self:parameters()) do
    if not (opts and opts.trainable) or p.requires_grad then n = n + p:numel() end
  end
  return n
end

--------------------------------------------------------------------------------------- modes

--- m:train([mode=true]) sets training mode on m and every descendant; returns m.
function Module:train(mode)
  if util.check("train", "mode", mode, "boolean", true) == nil then mode = true end
  for _, m in ipairs(self:modules()) do rawset(m, "training", mode and true or false) end
  return self
end
function Module:eval() return self:train(false) end

--- m:requires_grad_([flag=true]): freezes (false) or unfreezes all parameters; returns m.
function Module:requires_grad_(flag)
  util.check("requires_grad_", "flag", flag, "boolean", true)
  for _, p in ipairs(self:parameters()) do p:requires_grad_(flag ~= false) end
  return self
end

--- m:zero_grad(): drops the gradients (p.grad = nil), as PyTorch's set_to_none default.
function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p.grad = nil end
end

--- m:apply(fn): fn(module) for every descendant, children first, then m; returns m.
function Module:apply(fn)
  for _, c in ipairs(self:children()) do c:apply(fn) end
  fn(self)
  return self
end

local FLOAT_DTYPES = {f32 = "f32", float = "f32", float32 = "f32", f64 = "f64", double = "f64", float64 = "f64",
                      ["torch.FloatTensor"] = "f32", ["torch.DoubleTensor"] = "f64"}

-- t takes the values of t:to(dt) in place (t.data = y: t takes y's storage, dtype and shape,
-- as PyTorch's set_): the same tensor object, which optimizers and other modules hold, now
-- has dtype dt; its gradient is converted the same way.
local function convert_in_place(t, dt)
  local g = t.grad
  if g ~= nil then t.grad = nil end
  t.data = t:to(dt)
  if g ~= nil then
    g.data = g:to(dt)
    t.grad = g
  end
end

--- m:to(dtype) converts the floating parameters and buffers ("f32"/"f64") in place and
-- returns m: each keeps its identity (an optimizer made before goes on updating the tensors
-- the module uses, as PyTorch's Module.to), with its requires_grad and its gradient converted.
function Module:to(dtype)
  local dt = FLOAT_DTYPES[dtype]
  if not dt then
    error(("%s:to: dtype must be 'f32' or 'f64' (or float, double, float32, float64), got %s"):format(
      class_name(self), type(dtype) == "string" and "'" .. dtype .. "'" or tostring(dtype)), 2)
  end
  ai.no_grad(function()
    local done = {} -- a tensor shared by two modules is converted once
    for _, list in ipairs{self:parameters(), self:buffers()} do
      for _, t in ipairs(list) do
        if not done[t] and (t.dtype == "f32" or t.dtype == "f64") and t.dtype ~= dt then
          convert_in_place(t, dt)
        end
        done[t] = true
      end
    end
  end)
  return self
end
function Module:double() return self:to("f64") end
function Module:float() return self:to("f32") end
--- m:type(dtype): m:to(dtype), Torch7's name (which also takes "torch.DoubleTensor")
function Module:type(dtype)
  if dtype == nil then error(class_name(self) .. ":type: expected a dtype ('f32' or 'f64')", 2) end
  return self:to(dtype)
end

------------------------------------------------------------------------------------ state dict

-- Lists {key, tensor, module, name} for parameters and persistent buffers, as PyTorch orders
-- them (per module: parameters, then buffers, then children). Shared tensors appear under each
-- of their names.
local function state_entries(self)
  local list = {}
  walk(self, "", function(prefix, m)
    local np = rawget(m, "_nonpersistent")
    each_own(m, "param", function(name, t) list[#list + 1] = {join(prefix, name), t} end)
    each_own(m, "buffer", function(name, t)
      if not np[name] then list[#list + 1] = {join(prefix, name), t} end
    end)
  end, {})
  return list
end

--- m:state_dict() -> {name = tensor} for every parameter and persistent buffer. The tensors
-- are detached views of the live ones (no copy): save them, or clone to keep a snapshot.
function Module:state_dict()
  local sd = {}
  for _, e in ipairs(state_entries(self)) do sd[e[1]] = e[2]:detach() end
  return sd
end

--- m:state_dict_keys() -> the keys of state_dict() in PyTorch's order.
function Module:state_dict_keys()
  local keys = {}
  for i, e in ipairs(state_entries(self)) do keys[i] = e[1] end
  return keys
end

local shape_str = util.shape_str

local function quoted_list(keys)
  table.sort(keys)
  local q = {}
  for i, k in ipairs(keys) do q[i] = '"' .. k .. '"' end
  return table.concat(q, ", ")
end

--- m:load_state_dict(sd[, {strict=true}]) copies the tensors of sd into the module's
-- parameters and buffers (converting dtypes). Shapes must match. With strict, keys missing
-- from sd and keys of sd the module lacks are errors; otherwise they are returned:
-- {missing_keys = {...}, unexpected_keys = {...}}.
function Module:load_state_dict(sd, opts)
  if type(sd) ~= "table" then error("load_state_dict: state dict must be a table, got " .. type(sd), 2) end
  util.check_opts("load_state_dict", opts, {strict = true})
  local strict = not (opts and opts.strict == false)
  local entries, known, missing, unexpected = state_entries(self), {}, {}, {}
  for _, e in ipairs(entries) do
    local key, dst = e[1], e[2]
    known[key] = true
    local src = sd[key]
    if src == nil then
      missing[#missing + 1] = key
    elseif not is_tensor(src) then
      error(("load_state_dict: value for \"%s\" is a %s, expected a tensor"):format(key, type(src)), 2)
    elseif shape_str(src) ~= shape_str(dst) then
      error(("load_state_dict: size mismatch for \"%s\": the state dict has %s, the module has %s"):format(
        key, shape_str(src), shape_str(dst)), 2)
    end
  end
  for k in pairs(sd) do
    if not known[k] then unexpected[#unexpected + 1] = tostring(k) end
  end
  if strict and (#missing > 0 or #unexpected > 0) then
    local parts = {}
    if #missing > 0 then parts[#parts + 1] = "missing keys: " .. quoted_list(missing) end
    if #unexpected > 0 then parts[#parts + 1] = "unexpected keys: " .. quoted_list(unexpected) end
    error(("load_state_dict: error(s) loading the state dict of %s: %s"):format(
      class_name(self), table.concat(parts, "; ")), 2)
  end
  ai.no_grad(function()
    for _, e in ipairs(entries) do
      local src = sd[e[1]]
      if src ~= nil then e[2]:copy_(src) end
    end
  end)
  table.sort(missing)
  table.sort(unexpected)
  return {missing_keys = missing, unexpected_keys = unexpected}
end

-------------------------------------------------------------------------------------- printing

-- Formats a value for extra_repr: booleans and numbers as Lua prints them, pairs as {a, b}.
function M.repr_value(v)
  if type(v) == "table" then
    local parts = {}
    for i, e in ipairs(v) do parts[i] = M.repr_value(e) end
    return "{" .. table.concat(parts, ", ") .. "}"
  elseif type(v) == "string" then
    return "'" .. v .. "'"
  end
  return tostring(v)
end

-- Indents every line but the first by n spaces (PyTorch's _addindent).
local function add_indent(s, n)
  local pad = string.rep(" ", n)
  return (s:gsub("\n", "\n" .. pad))
end

--- tostring(m): the module tree as PyTorch prints it.
function Module.__tostring(self)
  local lines = {}
  local extra = self:extra_repr()
  local nextra = 0
  if extra and extra ~= "" then
    for line in (extra .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
    nextra = #lines
  end
  local nchild = 0
  each_own(self, "module", function(name, child)
    lines[#lines + 1] = "(" .. name .. "): " .. add_indent(tostring(child), 2)
    nchild = nchild + 1
  end)
  local s = class_name(self) .. "("
  if #lines > 0 then
    if nextra == 1 and nchild == 0 then s = s .. lines[1]
    else s = s .. "\n  " .. table.concat(lines, "\n  ") .. "\n" end
  end
  return s .. ")"
end

-- Arguments beyond a method's parameters are errors (m:train(false, true), m:to("f64", x)).
-- init and forward are the subclasses' own; construction and m(...) check those.
util.strict_args(Module, "Module:", true, {init = true, forward = true})

return M
