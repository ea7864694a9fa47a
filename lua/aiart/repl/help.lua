--[[ aiart.repl.help: the documentation behind help(f) and ?f: the index of names (walking `ai`,
its sub-tables, the loaded aiart.* modules and the tensor methods), the lookup of a doc
(ai._doc, aiart.doc, source comments, the parent class's method), and what help() prints for
functions, classes, objects, tables and tensors. See aiart.repl for the order of the lookup.
]]
local util = require "aiart.util"
local printing = require "aiart.repl.print"

local out, quote, repr = printing.out, printing.quote, printing.repr
local safe_tostring, shorten = printing.safe_tostring, printing.shorten
local is_tensor = util.is_tensor

local H = {}

-- The host table while aiart.repl's loop runs (its M.run sets it): ?expr evaluates expr
-- through host.pcall, so that Ctrl-C interrupts it.
H.host = nil

local function get_ai()
  local ai = rawget(_G, "ai")
  if ai == nil then
    local ok, mod = pcall(require, "aiart")
    if ok then ai = mod end
  end
  if type(ai) == "table" then return ai end
  return nil
end

local function get_docs()
  local ok, docs = pcall(require, "aiart.doc")
  if ok and type(docs) == "table" then return docs end
  return {}
end

-- The tables holding tensor methods, and the tensor metatable.
local function tensor_method_tables()
  local tabs, seen = {}, {}
  local function add(t)
    if type(t) == "table" and not seen[t] then
      seen[t] = true
      tabs[#tabs + 1] = t
    end
  end
  local mt = debug.getregistry()["aiart.Tensor"]
  local ai = get_ai()
  if type(mt) ~= "table" and ai and type(ai.zeros) == "function" then
    local ok, x = pcall(ai.zeros, 1)
    if ok then mt = getmetatable(x) end
  end
  if type(mt) == "table" then
    local idx = rawget(mt, "__index")
    if type(idx) == "function" then
      -- an __index function usually keeps the method table as an upvalue
      for i = 1, 8 do
        local name, up = debug.getupvalue(idx, i)
        if name == nil then break end
        add(up)
      end
    else
      add(idx)
    end
    add(mt)
  else
    mt = nil
  end
  if ai then add(rawget(ai, "Tensor")) end
  return tabs, mt
end
H.tensor_method_tables = tensor_method_tables

-- The table of the lazily loaded fields of `ai` (name -> {module, field}): an upvalue of the
-- __index function of ai's metatable.
local function lazy_specs(ai)
  local mt = getmetatable(ai)
  local idx = type(mt) == "table" and rawget(mt, "__index")
  if type(idx) ~= "function" then return {} end
  for i = 1, 8 do
    local name, up = debug.getupvalue(idx, i)
    if name == nil then break end
    if name == "lazy" and type(up) == "table" then return up end
  end
  return {}
end

-- A class: a callable table with a __name (nn.Linear, optim.Adam, ...), not an object of one
-- (a module object is callable too, but has its _slots).
local function is_class(v)
  local mt = type(v) == "table" and getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__call") ~= nil and
      type(rawget(v, "__name")) == "string" and rawget(v, "_slots") == nil
end

-- name index: function or table -> list of names ("randn", "nn.Linear", "Tensor:sum"), and
-- function or table -> list of {table, key} places where it was found
local function build_index()
  local names, places, seen = {}, {}, {}
  local function add(f, name, t, k)
    local p = places[f]
    if not p then p = {}; places[f] = p end
    p[#p + 1] = { t, k }
    local l = names[f]
    if not l then l = {}; names[f] = l end
    for _, n in ipairs(l) do if n == name then return end end
    l[#l + 1] = name
  end
  local tabs, mt = tensor_method_tables()
  for _, t in ipairs(tabs) do
    seen[t] = true
    for k, v in pairs(t) do
      if type(k) == "string" and type(v) == "function" and not (t == mt and k:match("^__")) then
        add(v, "Tensor:" .. k, t, k)
      end
    end
  end
  -- breadth first, keys in order: every table is named by its shortest path
  local function walk(root, prefix)
    local queue, qi = { { root, prefix, 1 } }, 1
    while queue[qi] do
      local t, pre, depth = queue[qi][1], queue[qi][2], queue[qi][3]
      qi = qi + 1
      if not seen[t] and depth <= 5 then
        seen[t] = true
        local keys = {}
        for k in pairs(t) do
          if type(k) == "string" and k ~= "_doc" then keys[#keys + 1] = k end
        end
        table.sort(keys)
        for _, k in ipairs(keys) do
          local v = rawget(t, k)
          if type(v) == "function" then add(v, pre .. k, t, k)
          elseif type(v) == "table" and v ~= _G and v ~= package.loaded then
            add(v, pre .. k, t, k)
            queue[#queue + 1] = { v, pre .. k .. ".", depth + 1 }
          end
        end
      end
    end
  end
  local ai = get_ai()
  if ai then
    walk(ai, "")
    -- fields of ai not accessed yet, whose module is loaded (ai.F after require "aiart.nn")
    local lazy = lazy_specs(ai)
    local keys = {}
    for k in pairs(lazy) do if type(k) == "string" then keys[#keys + 1] = k end end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local spec = lazy[k]
      local mod = rawget(ai, k) == nil and type(spec) == "table" and package.loaded[spec[1]]
      if type(mod) == "table" then
        local v = mod
        if spec[2] then v = rawget(mod, spec[2]) end
        if type(v) == "function" then add(v, k, ai, k)
        elseif type(v) == "table" then
          add(v, k, ai, k)
          seen[v] = nil -- reached through another field already: walk again under this name
          walk(v, k .. ".")
        end
      end
    end
  end
  local mods = {}
  for name, mod in pairs(package.loaded) do
    if type(name) == "string" and name:match("^aiart%.") and type(mod) == "table" then
      mods[#mods + 1] = name
    end
  end
  table.sort(mods)
  for _, name in ipairs(mods) do
    seen[package.loaded[name]] = nil -- a module reached from ai under another name: walk again
    walk(package.loaded[name], name:sub(7) .. ".")
  end
  for _, l in pairs(names) do
    table.sort(l, function(a, b)
      if #a ~= #b then return #a < #b end
      return a < b
    end)
  end
  return names, places
end
H.build_index = build_index

local function display_name(name)
  if name:match("^Tensor:") then return name end
  return "ai." .. name
end

-- The index is rebuilt when the set of loaded modules or the size of `ai` changes, and at
-- most once a second otherwise (functions added to a table later are then found).
local index_cache = { stamp = nil, time = -1 }
local function get_index()
  local ai = get_ai()
  local n = 0
  if ai then for _ in pairs(ai) do n = n + 1 end end
  local m = 0
  for name in pairs(package.loaded) do
    if type(name) == "string" and name:match("^aiart") then m = m + 1 end
  end
  local stamp = n .. "/" .. m
  local now = os.time()
  if stamp ~= index_cache.stamp or now ~= index_cache.time then
    index_cache.names, index_cache.places = build_index()
    index_cache.stamp, index_cache.time = stamp, now
  end
  return index_cache.names, index_cache.places
end

-- The parent of a class table: its `super` field or its metatable's __index table.
local function class_parent(t)
  local p = rawget(t, "super")
  if type(p) == "table" then return p end
  local mt = getmetatable(t)
  p = type(mt) == "table" and rawget(mt, "__index")
  if type(p) == "table" then return p end
  return nil
end

-- The doc string of a value (function, class table or name) and the names it is known by.
-- Order: ai._doc[v]; the entries of ai._doc and aiart.doc under each name of v; for a Lua
-- function the comment above its definition, for a class its constructor's comment; for a
-- method without any, the doc of the method it overrides in a parent class.
local function find_doc(v, prefer, depth)
  local ai, docs = get_ai(), get_docs()
  local own = ai and rawget(ai, "_doc")
  if type(own) ~= "table" then own = nil end
  local function get(key)
    local d = own and own[key]
    if type(d) ~= "string" then d = docs[key] end
    if type(d) == "string" then return d end
    return nil
  end
  local function lookup(name)
    local d = get(name)
    if d then return d end
    local m = name:match("^Tensor[:.](.*)$")
    if m then return get(m) end
    return get("Tensor:" .. name) or get("Tensor." .. name)
  end
  if type(v) == "string" then
    local name = v:gsub("^ai%.", "")
    return lookup(name), { name }
  end
  local index, places = get_index()
  local names = index[v] or {}
  if own and type(own[v]) == "string" then return own[v], names end
  if type(prefer) == "string" then
    -- the name it was asked by first (ai.clamp and ai.clip are one function)
    prefer = prefer:gsub("^ai%.", "")
    for _, n in ipairs(names) do
      if n == prefer then
        local d = lookup(n)
        if d then return d, names end
      end
    end
  end
  for _, n in ipairs(names) do
    local d = lookup(n)
    if d then return d, names end
  end
  local d
  if type(v) == "function" and type(docs.source_doc) == "function" then
    d = docs.source_doc(v)
  elseif is_class(v) and type(docs.class_doc) == "function" then
    d = docs.class_doc(v)
  end
  if d then return d, names end
  depth = depth or 0
  if type(v) == "function" and depth < 8 then
    -- a class's init is its constructor: the class's doc
    for _, p in ipairs(places[v] or {}) do
      if p[2] == "init" and is_class(p[1]) then
        d = find_doc(p[1], nil, depth + 1)
        if d then return d, names end
      end
    end
    for _, p in ipairs(places[v] or {}) do
      local t, k = p[1], p[2]
      local parent = type(t) == "table" and class_parent(t)
      local steps = 0
      while parent and steps < 16 do
        local pv = rawget(parent, k)
        if type(pv) == "function" and pv ~= v then
          d = find_doc(pv, nil, depth + 1)
          if d then return d, names end
        end
        parent = class_parent(parent)
        steps = steps + 1
      end
    end
  end
  return nil, names
end
H.find_doc = find_doc

local function lua_function_info(f)
  f = util.unwrap(f) -- the signature of the function itself, not of its argument-count check
  local info = debug.getinfo(f, "Su")
  if not info or info.what == "C" then return nil end
  local params = {}
  for i = 1, info.nparams do params[i] = debug.getlocal(f, i) or "?" end
  if info.isvararg then params[#params + 1] = "..." end
  return "(" .. table.concat(params, ", ") .. ")  -- defined at " .. info.short_src .. ":" ..
      info.linedefined
end

-- The name of a function of the Lua standard library ("print", "string.format"), or nil.
local STDLIBS = { "_G", "string", "table", "math", "io", "os", "coroutine", "utf8", "debug",
                  "package" }
local function stdlib_name(f)
  local info = debug.getinfo(f, "S")
  if not info or info.what ~= "C" then return nil end
  for _, lib in ipairs(STDLIBS) do
    local t = package.loaded[lib]
    if type(t) == "table" then
      for k, v in pairs(t) do
        if v == f and type(k) == "string" then
          return lib == "_G" and k or (lib .. "." .. k)
        end
      end
    end
  end
  return nil
end

-- Resolves "a.b.c" from the globals; returns the value or nil.
local function resolve(path)
  local v = _G
  for part in path:gmatch("[^.]+") do
    if type(v) ~= "table" and type(v) ~= "userdata" then return nil end
    local ok, r = pcall(function() return v[part] end)
    if not ok then return nil end
    v = r
  end
  return v
end

-- A one-line summary of a doc: its first line, continued while brackets are left open (a
-- signature spread over several comment lines) or while a wrapped sentence runs on (a line
-- ending in a comma or a colon, or a long one ending in a word, followed by a line that does
-- not start a new sentence or an indented example).
local SUMMARY_MAX = 240
local function summary(d)
  local lines = {}
  for l in (tostring(d) .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  local s, depth = "", 0
  for i, l in ipairs(lines) do
    s = i == 1 and l or (s .. " " .. l:gsub("^%s+", ""))
    local clean = l:gsub('"[^"]*"', ""):gsub("'[^']*'", "")
    for c in clean:gmatch("[%(%)%[%]{}]") do
      depth = depth + ((c == "(" or c == "[" or c == "{") and 1 or -1)
    end
    local nxt = lines[i + 1]
    if i >= 6 or not nxt or not nxt:match("%S") then break end
    local runs_on = not nxt:match("^%s") and
      (l:match("[,:]%s*$") or (#l >= 78 and l:match("[%w_]%s*$") and not nxt:match("^%u")))
    if depth <= 0 and not runs_on then break end
  end
  if #s > SUMMARY_MAX then
    s = s:sub(1, SUMMARY_MAX):gsub("%s+%S*$", "") .. " ..."
  end
  return s
end
H.summary = summary

local function class_name_of(t)
  local n = type(t) == "table" and rawget(t, "__name")
  return type(n) == "string" and n or nil
end

-- The prefix of the names of t's fields: "" for ai, "nn." for ai.nn, "Tensor:" for the tensor
-- methods; nil for a table outside ai.
local function field_prefix(t)
  local ai = get_ai()
  if t == ai then return "" end
  if ai and t == rawget(ai, "Tensor") then return "Tensor:" end
  local names = get_index()[t]
  return names and names[1] and (names[1] .. ".") or nil
end

-- The one-line description of field k = v of a table whose fields are named prefix .. k.
local function describe(k, v, prefix)
  local tv = type(v)
  local name = prefix and (prefix .. k)
  if tv == "function" or is_class(v) then
    local d = find_doc(v, name)
    if d then return summary(d) end
    return tv == "function" and "(no documentation)" or "<class>"
  elseif tv == "table" then
    local n = 0
    for kk, vv in pairs(v) do
      if type(kk) == "string" and not kk:match("^_") and (type(vv) == "function" or is_class(vv)) then
        n = n + 1
      end
    end
    if n == 0 then return "<table>" end
    if name and not name:match(":") then
      return ("<table of %d functions: help(%s)>"):format(n, display_name(name))
    end
    return ("<table of %d functions>"):format(n)
  elseif tv == "string" or tv == "number" or tv == "boolean" then
    return "= " .. repr(v)
  end
  return "<" .. tv .. ">"
end

-- Lists the public fields of t with their one-line docs; extra: names of fields loaded lazily.
local function help_table(t, label, extra)
  local names, set = {}, {}
  for k in pairs(t) do
    if type(k) == "string" and not k:match("^_") then names[#names + 1] = k; set[k] = true end
  end
  for _, k in ipairs(extra or {}) do
    if not set[k] then names[#names + 1] = k; set[k] = "lazy" end
  end
  table.sort(names)
  local lines = { label and (label .. ":") or "fields:" }
  local width = 0
  for _, k in ipairs(names) do width = math.max(width, #k) end
  width = math.min(width, 24)
  local prefix = field_prefix(t)
  for _, k in ipairs(names) do
    local desc
    if set[k] == "lazy" then
      local spec = lazy_specs(t)[k]
      desc = (type(spec) == "table" and spec[2]) and ("<function, loaded on first use: ?ai." .. k .. ">")
          or ("<module, loaded on first use: help(ai." .. k .. ")>")
    else desc = describe(k, rawget(t, k), prefix) end
    lines[#lines + 1] = string.format("  %-" .. width .. "s  %s", k, desc)
  end
  out(table.concat(lines, "\n") .. "\n")
end

-- The names of the lazily loaded fields of `ai` whose module can be found.
local function lazy_names(ai)
  local list = {}
  for k, spec in pairs(lazy_specs(ai)) do
    local mod = type(spec) == "table" and spec[1]
    if type(k) == "string" and not k:match("^_") and type(mod) == "string" and
        (package.loaded[mod] or package.preload[mod] or package.searchpath(mod, package.path) or
         package.searchpath(mod, package.cpath)) then
      list[#list + 1] = k
    end
  end
  return list
end

local function help_tensor(v, label)
  local ok, info = pcall(function()
    local shape = {}
    for i, n in ipairs(v.shape) do shape[i] = tostring(n) end
    local s = ("tensor of shape {%s}, dtype %s (%d elements)"):format(table.concat(shape, ", "),
      v.dtype, v:numel())
    if v.requires_grad then
      s = s .. ", requires grad" .. (v.grad_fn and (", made by " .. v.grad_fn) or "")
    end
    return s
  end)
  if not ok then info = shorten(safe_tostring(v)) end
  local x = (label and label:match("^[%a_][%w_]*$")) and label or "x"
  out((label and (label .. ": ") or "") .. info .. "\n" ..
      "  ?" .. x .. ":sum (or ?ai.sum) shows a method's doc; help(ai.Tensor) lists the tensor methods\n")
end

local GENERAL_HELP = [[
aiart-lua: Lua 5.4 with the tensor module `ai` (require "aiart").
  ?f  or  help(f)     one-line documentation of a function or class (e.g. ?ai.randn, ?x:sum)
  help(ai)            list the functions of the module and their docs (also help(ai.nn), ...)
  help(x)             the shape and dtype of a tensor x
  :help               REPL commands
Expressions print their value; `_` holds the last result. TAB completes names.]]

local function eval_expr(expr)
  local f = load("return " .. expr, "=stdin", "t")
  if not f then return nil end
  local ok, v = (H.host and H.host.pcall or pcall)(f)
  if ok then return v end
  return nil
end

-- The aiart.migrate entry for a name as typed (x:nElement, torch.save, nn.SpatialConvolution):
-- an alias (the Torch7 name works here too), or a pointer for a name that means nothing here
-- (x:sum, which exists, gets its doc and no note).
local function migration(expr)
  local ok, mig = pcall(require, "aiart.migrate")
  if not ok or type(expr) ~= "string" then return nil end
  local base, _, name = expr:match("^(.-)([.:])([%a_][%w_]*)$")
  local obj = base and base ~= "" and base ~= "ai" and base ~= "torch" and eval_expr(base) or nil
  local modules = package.loaded["aiart.nn.module"]
  local is_mod = obj ~= nil and modules ~= nil and modules.is_module(obj)
  local e = mig.find(expr, is_mod and "module" or nil)
  if not e or e.alias then return e, mig end
  local ai, exists = get_ai(), nil
  if name and is_mod then
    exists = obj[name] ~= nil
  elseif name and (obj == nil or is_tensor(obj)) and e.key:match("^Tensor") then
    exists = ai ~= nil and rawget(ai, "Tensor") ~= nil and rawget(ai.Tensor, name) ~= nil
  else
    exists = eval_expr((expr:gsub(":([%a_][%w_]*)$", ".%1"))) ~= nil or
        (ai ~= nil and resolve("ai." .. expr:gsub("^ai%.", "")) ~= nil)
  end
  if exists then return nil end
  return e, mig
end
H.migration = migration

-- Prints what a Torch7 or PyTorch name is here (and, for an alias, the doc of the function);
-- returns whether there was anything to say.
local function show_migration(expr)
  local e, mig = migration(expr)
  if not e then return false end
  out(mig.message(e) .. "\n")
  local d = e.alias and find_doc("Tensor:" .. e.alias)
  if d then out(d .. "\n") end
  return true
end

-- help([value [, label]]): prints the documentation of a function, a class, a name, a table or
-- a tensor.
function H.help(v, label)
  if v == nil and label == nil then out(GENERAL_HELP .. "\n"); return end
  local ai = get_ai()
  if type(v) == "string" and label == nil then
    if show_migration(v) then return end
    local d = find_doc(v)
    if d then out(d .. "\n"); return end
    local val = resolve(v) or (ai and resolve("ai." .. v:gsub("^ai%.", "")))
    if val ~= nil then return H.help(val, v) end
    out("no documentation for " .. quote(v) .. "\n")
    return
  end
  local tv = type(v)
  if tv == "function" then
    local d, names = find_doc(v, label)
    if d then out(d .. "\n"); return end
    local std = not names[1] and stdlib_name(v)
    if std then
      out(std .. ": Lua standard library, see " ..
          "https://www.lua.org/manual/5.4/manual.html#pdf-" .. std .. "\n")
      return
    end
    local name = label or (names[1] and display_name(names[1])) or safe_tostring(v)
    local info = lua_function_info(v)
    if info then out(name .. info .. "\n")
    else out(name .. ": no documentation\n") end
  elseif tv == "table" then
    local mt = getmetatable(v)
    local names = get_index()[v]
    local name = label or (names and names[1] and display_name(names[1]))
    if v == ai then help_table(v, "ai (the aiart module)", lazy_names(v))
    elseif ai and v == rawget(ai, "Tensor") then help_table(v, "tensor methods (ai.Tensor)")
    elseif is_class(v) then
      local d = find_doc(v, label)
      name = name or class_name_of(v)
      out((d or (name .. ": no documentation")) .. "\n")
      help_table(v, "methods of " .. name)
      local parent = class_parent(v)
      local pname = parent and (class_name_of(parent) or "its parent")
      if pname then out("  (more methods are inherited from " .. pname .. ")\n") end
    elseif type(mt) == "table" and is_class(mt) then
      -- an object of a class: its fields, the class's doc and methods
      local cname = class_name_of(mt)
      local d = find_doc(mt)
      out((label and (label .. ": ") or "") .. "an object of class " .. cname ..
          (d and (": " .. summary(d)) or "") .. "\n")
      if next(v) ~= nil then help_table(v, "fields") end
      help_table(mt, "methods of " .. cname)
      local parent = class_parent(mt)
      local pname = parent and (class_name_of(parent) or "its parent")
      if pname then out("  (more methods are inherited from " .. pname .. ")\n") end
    else
      help_table(v, name)
      if type(mt) == "table" and type(rawget(mt, "__index")) == "table" then
        help_table(rawget(mt, "__index"), "also, through the metatable")
      end
    end
  elseif tv == "userdata" then
    local _, tmt = tensor_method_tables()
    if tmt and getmetatable(v) == tmt then
      help_tensor(v, label)
    else
      out(safe_tostring(v) .. "\n")
    end
  elseif label then
    out(label .. " is " .. repr(v) .. " (" .. tv .. ")\n")
  else
    out(repr(v) .. " (" .. tv .. ")\n")
  end
end

-- ?expr: documentation of the value of expr; x:name and x.name on a tensor x give the doc of
-- the tensor method or property even when x does not exist yet. A Torch7 or PyTorch name
-- (aiart.migrate) says what it is here.
function H.help_expr(expr)
  if show_migration(expr) then return end
  local base, sep, name = expr:match("^(.-)([.:])([%a_][%w_]*)$")
  if base and base ~= "" and base ~= "ai" then
    local obj = eval_expr(base)
    if obj == nil or is_tensor(obj) then
      local d = find_doc((sep == ":" and "Tensor:" or "Tensor.") .. name)
      if d then out(d .. "\n"); return end
    end
  end
  local v = eval_expr((expr:gsub(":([%a_][%w_]*)$", ".%1")))
  if v ~= nil then H.help(v, expr) else H.help(expr) end
end

H.resolve = resolve
H.get_ai = get_ai
H.get_docs = get_docs

return H
