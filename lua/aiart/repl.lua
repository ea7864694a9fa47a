--[[ aiart.repl: the read-eval-print loop of aiart-lua.

Everything the REPL does, apart from reading a line from the terminal, is here, so it can be
changed without recompiling. Fields of this module may be changed at run time (e.g. from
LUA_INIT or `-l`): M.prompt, M.prompt2, M.max_depth, M.max_items, M.history_size, M.timing,
M.complete, M.repr, M.commands.

The C host (src/host/main.c) calls M.run(host) with a table of:
  host.readline(prompt) -> line | nil at end of input | false when Ctrl-C cleared the line
  host.add_history(line)              readline's in-memory history (no-op without a terminal)
  host.read_history(path, max) -> ok  loads a history file, keeps at most max entries
  host.append_history(path, max)-> ok appends the newest entry to the file, truncates it to max
  host.pcall(f, ...) -> true, results... | false, message with a traceback of f's frames only;
                        Ctrl-C while f runs raises the error "interrupted" inside f
  host.clock() -> seconds             monotonic wall clock
  host.interactive                    reading a terminal with readline (prompts, history, colour)
  host.stdin_tty, host.stdout_tty, host.stderr_tty, host.version, host.progname
M.run returns true if no command failed (the exit status of pipe mode) and false otherwise.
While reading a line, TAB calls M.complete(text, line_before_text) which returns a list of full
replacements for text, or nil to let readline complete file names.

Documentation: help(f) / ?f shows the doc of f found, in order, in ai._doc[f] (a table a
library may create and fill with function -> doc string or name -> doc string), then by the
names of f (found by walking `ai`, its sub-tables, loaded `aiart.*` modules and the tensor
method table) in ai._doc[name] and require("aiart.doc")[name], then (Lua functions) in the
comment block above f's definition, or (classes) above their init or their creation, then
(methods) in the doc of the method f overrides. Names are relative to `ai` ("randn",
"nn.Linear") and "Tensor:sum" for tensor methods. See lua/aiart/doc.lua. help(table) lists the
table's functions with the first line of their docs; help(x) of a tensor gives its shape and
dtype.
]]

local M = {}

M.prompt = "> "
M.prompt2 = ">> "
M.max_depth = 3        -- nesting limit when printing tables
M.max_items = 40       -- entries shown per table
M.max_nested_string = 200
M.history_size = 1000
M.timing = false
M.host = nil           -- the host table while running

local host
local color_out, color_err = false, false

local KEYWORDS = {
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
}
local is_keyword = {}
for _, k in ipairs(KEYWORDS) do is_keyword[k] = true end

local function paint(on, code, s)
  if on then return "\27[" .. code .. "m" .. s .. "\27[0m" end
  return s
end

local function out(s)
  io.stdout:write(s)
  io.stdout:flush()
end

local function err(s)
  io.stdout:flush()
  io.stderr:write(paint(color_err, "31", s), "\n")
  io.stderr:flush()
end

M.print = function(s) out(s .. "\n") end
M.error = err

------------------------------------------------------------------------------------------------
-- printing values
------------------------------------------------------------------------------------------------

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
  if seen[t] then return "<cycle>" end
  if next(t) == nil then return "{}" end
  if depth >= M.max_depth then return "{...}" end
  seen[t] = true
  local parts, n = {}, 0
  local function add(s)
    n = n + 1
    if n <= M.max_items then parts[n] = s end
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
    local ks = is_identifier(k) and k or "[" .. repr(k, M.max_depth, seen) .. "]"
    add(ks .. " = " .. repr(rawget(t, k), depth + 1, seen))
  end
  seen[t] = nil
  if n > M.max_items then parts[#parts + 1] = "... (" .. (n - M.max_items) .. " more)" end
  local one = "{" .. table.concat(parts, ", ") .. "}"
  if multiline and #one > 100 and #parts > 1 then
    return "{\n  " .. table.concat(parts, ",\n  ") .. ",\n}"
  end
  return one
end

-- repr(v [, depth]): the REPL's printed form of a value.
repr = function(v, depth, seen)
  depth = depth or 0
  local tv = type(v)
  if tv == "string" then
    return quote(v, depth > 0 and M.max_nested_string or nil)
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
M.repr = repr

-- Prints the values of pack (from index first to pack.n).
local function print_values(pack, first)
  local strs, multi = {}, false
  for i = first, pack.n do
    local s = M.repr(pack[i])
    strs[#strs + 1] = s
    if s:find("\n", 1, true) then multi = true end
  end
  if #strs > 0 then out(table.concat(strs, multi and "\n" or "\t") .. "\n") end
end

------------------------------------------------------------------------------------------------
-- documentation
------------------------------------------------------------------------------------------------

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
M.tensor_method_tables = tensor_method_tables

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
M.build_index = build_index

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
M.find_doc = find_doc

local function lua_function_info(f)
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
M.summary = summary

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
    if v:requires_grad() then
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

-- help([value [, label]]): prints the documentation of a function, a class, a name, a table or
-- a tensor.
function M.help(v, label)
  if v == nil and label == nil then out(GENERAL_HELP .. "\n"); return end
  local ai = get_ai()
  if type(v) == "string" and label == nil then
    local d = find_doc(v)
    if d then out(d .. "\n"); return end
    local val = resolve(v) or (ai and resolve("ai." .. v:gsub("^ai%.", "")))
    if val ~= nil then return M.help(val, v) end
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

local function eval_expr(expr)
  local f = load("return " .. expr, "=stdin", "t")
  if not f then return nil end
  local ok, v = (host and host.pcall or pcall)(f)
  if ok then return v end
  return nil
end

local function is_tensor(v)
  local _, tmt = tensor_method_tables()
  return tmt ~= nil and getmetatable(v) == tmt
end

-- ?expr: documentation of the value of expr; x:name and x.name on a tensor x give the doc of
-- the tensor method or property even when x does not exist yet.
function M.help_expr(expr)
  local base, sep, name = expr:match("^(.-)([.:])([%a_][%w_]*)$")
  if base and base ~= "" and base ~= "ai" then
    local obj = eval_expr(base)
    if obj == nil or is_tensor(obj) then
      local d = find_doc((sep == ":" and "Tensor:" or "Tensor.") .. name)
      if d then out(d .. "\n"); return end
    end
  end
  local v = eval_expr((expr:gsub(":([%a_][%w_]*)$", ".%1")))
  if v ~= nil then M.help(v, expr) else M.help(expr) end
end

------------------------------------------------------------------------------------------------
-- completion
------------------------------------------------------------------------------------------------

-- Tables kept as upvalues by an __index function (a method table, a table of lazily loaded
-- fields): their keys are probably what the function serves.
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
function M.complete(text, before)
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

------------------------------------------------------------------------------------------------
-- the loop
------------------------------------------------------------------------------------------------

local function prompt(first)
  if not host.interactive then return "" end
  local p = rawget(_G, first and "_PROMPT" or "_PROMPT2")
  p = p ~= nil and tostring(p) or (first and M.prompt or M.prompt2)
  if color_out then
    -- \1 and \2 tell readline that the escapes take no room on the screen
    return "\1\27[" .. (first and "1;32" or "32") .. "m\2" .. p .. "\1\27[0m\2"
  end
  return p
end

local function incomplete(msg)
  return msg:sub(-5) == "<eof>"
end

-- Compiles a chunk: first as `return <src>` so that expressions give their values, then as
-- statements. Returns the function, or nil, the error message and whether more input could
-- complete the chunk (an unfinished statement or expression, like `1 +`).
local function compile(src)
  local f = load("return " .. src .. ";", "=stdin", "t")
  if f then return f end
  local msg
  f, msg = load(src, "=stdin", "t")
  if f then return f end
  if incomplete(msg) then return nil, msg, true end
  local _, rmsg = load("return " .. src, "=stdin", "t")
  return nil, msg, rmsg ~= nil and incomplete(rmsg)
end
M.compile = compile

-- Drops a traceback that only says "in main chunk" (and C functions above it).
local function tidy_error(msg)
  msg = tostring(msg)
  local head, tb = msg:match("^(.-)\nstack traceback:\n(.*)$")
  if not head then return msg end
  for line in tb:gmatch("[^\n]+") do
    if not (line:match("^%s*%[C%]: in ") or line:match("^%s*stdin:%d+: in main chunk$")) then
      return msg
    end
  end
  return head
end
M.tidy_error = tidy_error

M.commands = {}
M.commands.help = function()
  out(table.concat({
    "REPL commands:",
    "  :help          this list",
    "  :quit          leave (also Ctrl-D on an empty line)",
    "  :time on|off   show the wall time of every command",
    "  ?f, help(f)    documentation of a function (help() for more)",
    "Ctrl-C interrupts a running command or clears the line. The last result is in `_`.",
  }, "\n") .. "\n")
end
M.commands.quit = function() return "quit" end
M.commands.q = M.commands.quit
M.commands.exit = M.commands.quit
M.commands.time = function(arg)
  if arg == "on" then M.timing = true
  elseif arg == "off" then M.timing = false
  elseif arg == "" then M.timing = not M.timing
  else return "error", ":time takes on or off" end
  out("timing " .. (M.timing and "on" or "off") .. "\n")
end

local function run_command(line)
  local name, arg = line:match("^%s*:(%S+)%s*(.-)%s*$")
  local cmd = M.commands[name]
  if not cmd then return "error", "unknown command :" .. tostring(name) .. " (try :help)" end
  return cmd(arg)
end

local function show_time(t0)
  if not M.timing then return end
  local dt = host.clock() - t0
  local s = dt >= 1 and string.format("%.3f s", dt) or string.format("%.3f ms", dt * 1e3)
  out(paint(color_out, "2", "time: " .. s) .. "\n")
end

local history_path

local function remember(src)
  if not host.interactive or src:match("^%s*$") then return end
  host.add_history(src)
  if history_path then host.append_history(history_path, M.history_size) end
end

-- Evaluates one command; returns "ok", "error", "quit" or "eof".
function M.step()
  local line = host.readline(prompt(true))
  if line == nil then return "eof" end
  if line == false then return "ok" end -- Ctrl-C at the prompt: the line is dropped
  if line:match("^%s*:[^:]") then
    remember(line)
    local r, msg = run_command(line)
    if r == "error" then err(msg); return "error" end
    return r == "quit" and "quit" or "ok"
  end
  local hexpr = line:match("^%s*%?%s*(.-)%s*$")
  if hexpr then
    remember(line)
    if hexpr == "" then M.help(); return "ok" end
    M.help_expr(hexpr)
    return "ok"
  end
  local src = line:gsub("^%s*=", "return ", 1) -- Lua 5.1-5.3's "=expr"
  local f, msg, more_wanted = compile(src)
  while not f and more_wanted do
    local more = host.readline(prompt(false))
    if more == false then return "ok" end   -- Ctrl-C: drop the unfinished chunk
    if more == nil then break end
    src = src .. "\n" .. more
    f, msg, more_wanted = compile(src)
  end
  remember(src)
  if not f then err(msg); return "error" end
  local t0 = host.clock()
  local res = table.pack(host.pcall(f))
  if not res[1] then
    show_time(t0)
    local msg = tidy_error(res[2])
    -- after Ctrl-C the terminal shows ^C where the cursor was: start a new line
    if host.interactive and msg:match("interrupted$") then out("\n") end
    err(msg)
    return "error"
  end
  if res.n > 1 then rawset(_G, "_", res[2]) end
  local pok, perr = host.pcall(print_values, res, 2)
  show_time(t0)
  if not pok then err("error printing the result: " .. tidy_error(perr)); return "error" end
  return "ok"
end

-- Runs the loop until end of input or :quit. Returns false if any command failed.
function M.run(h)
  host = h
  M.host = h
  local nc = os.getenv("NO_COLOR")
  local nocolor = (nc ~= nil and nc ~= "") or os.getenv("TERM") == "dumb"
  color_out = h.interactive and h.stdout_tty and not nocolor
  color_err = h.interactive and h.stderr_tty and not nocolor
  M.color = color_out

  if rawget(_G, "ai") == nil then
    -- through the host's lazy global first (which then removes itself), else require
    local ok, mod = pcall(function() return _G.ai end)
    if ok and mod == nil then ok, mod = pcall(require, "aiart") end
    if ok then rawset(_G, "ai", mod)
    else err("warning: could not load aiart: " .. tostring(mod)) end
  end
  if rawget(_G, "help") == nil then rawset(_G, "help", M.help) end

  if h.interactive then
    local path = os.getenv("AIART_HISTORY")
    if path == nil then
      local home = os.getenv("HOME")
      if home and home ~= "" then path = home .. "/.aiart_history" end
    end
    if path and path ~= "" then
      history_path = path
      h.read_history(path, M.history_size)
    end
    out(paint(color_out, "1", h.version) ..
        "  -- :help for commands, ?f for the doc of f, Ctrl-D to quit\n")
  end

  local failed, internal = false, 0
  while true do
    local ok, r = pcall(M.step)
    if ok then
      internal = 0
      if r == "eof" or r == "quit" then break end
      if r == "error" then failed = true end
    else
      -- an error outside the evaluated code: Ctrl-C between commands, or a bug in the REPL
      failed = true
      r = tostring(r)
      if r:match("interrupted$") then
        if h.interactive then out("\n") end
        err("interrupted")
      else
        err("REPL error: " .. r)
      end
      internal = internal + 1
      if internal >= 20 then err("too many REPL errors, leaving"); break end
    end
  end
  if h.interactive then out("\n") end
  return h.interactive or not failed
end

return M
