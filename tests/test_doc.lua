-- tests/test_doc.lua: every public aiart function has documentation for help(f) / ?f.
-- Walks `ai` (the lazy sub-modules forced), the tensor methods and the aiart.models and
-- aiart.diffusion modules, and asks the REPL's own lookup (aiart.repl.find_doc) for the doc of
-- each public function and class (names starting with "_" are private). Also checks how docs
-- are derived from source comments, help(x) of tensors and tables, and ?f through a pipe.
-- Run: ./aiart-lua tests/run.lua test_doc
local T = package.loaded["helper"] or package.loaded["tests.helper"] or require("tests.helper")
local ai = require "aiart"
local repl = require "aiart.repl"
local doc = require "aiart.doc"

local LAZY = { "nn", "optim", "sched", "data", "image", "checkpoint", "progress", "plot", "config",
               "metrics", "F", "gradcheck", "gradgradcheck", "save", "load", "dist" }

local function is_class(v)
  local mt = type(v) == "table" and getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__call") ~= nil
end

-- {name, value} for every public function and class reachable from the roots (each once).
local function public_functions()
  for _, k in ipairs(LAZY) do
    local v = ai[k]
    assert(v ~= nil, "ai." .. k .. " did not load")
  end
  local roots = {
    { "ai", ai }, { "ai.Tensor", ai.Tensor }, { "ai.io", ai.io }, { "ai.json", ai.json },
    { "ai.linalg", ai.linalg },
    { "aiart.models", require "aiart.models" }, { "aiart.diffusion", require "aiart.diffusion" },
  }
  -- breadth first, so that each function is reported under its shortest name
  local items, seen_t, seen_v = {}, {}, {}
  local queue, qi = {}, 1
  for _, r in ipairs(roots) do queue[#queue + 1] = { r[2], r[1] } end
  while queue[qi] do
    local t, prefix = queue[qi][1], queue[qi][2]
    qi = qi + 1
    if not seen_t[t] then
      seen_t[t] = true
      local keys = {}
      for k in pairs(t) do
        if type(k) == "string" and not k:match("^_") then keys[#keys + 1] = k end
      end
      table.sort(keys)
      for _, k in ipairs(keys) do
        local v = rawget(t, k)
        local name = prefix .. (prefix == "ai.Tensor" and ":" or ".") .. k
        if (type(v) == "function" or is_class(v)) and not seen_v[v] then
          seen_v[v] = true
          items[#items + 1] = { name, v }
        end
        if type(v) == "table" then queue[#queue + 1] = { v, name } end
      end
    end
  end
  return items
end

local function has_doc(v)
  local d = repl.find_doc(v)
  return type(d) == "string" and d:match("%S") ~= nil
end

T.test("doc: every public function and class has a doc", function()
  local items = public_functions()
  T.ok(#items > 500, "only " .. #items .. " functions found: the walk is broken")
  local missing = {}
  for _, it in ipairs(items) do
    if not has_doc(it[2]) then missing[#missing + 1] = it[1] end
  end
  T.ok(#missing == 0, #missing .. " of " .. #items .. " public functions have no documentation: " ..
    table.concat(missing, ", "))
end)

T.test("doc: entries of aiart.doc are non-empty strings (or the helper functions)", function()
  for k, v in pairs(doc) do
    T.ok(type(k) == "string", "a key that is not a string")
    if type(v) == "function" then
      T.ok(k == "help" or k == "source_doc" or k == "class_doc", "unexpected function entry " .. k)
    else
      T.ok(type(v) == "string" and v:match("%S"), "empty entry " .. k)
    end
  end
end)

-- A temporary Lua file with commented functions, loaded with its path as its source name.
local function load_temp(src)
  local path = T.tmpdir() .. "/docsample.lua"
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
  return assert(loadfile(path))()
end

T.test("doc: a Lua function's doc is the comment block above its definition", function()
  local M = load_temp([==[
local M = {}

--- M.a(x[, {opt=1}]) -> x doubled
-- (a second line)
function M.a(x) return 2 * x end

-- separated by a blank line: not a doc

function M.b() end

-------------------------------------------------------------------- a ruler ends the block
function M.c() end

--[[ M.d(): in a block
comment ]]
function M.d() end
M.e = function() end -- no comment above
return M
]==])
  T.eq(doc.source_doc(M.a), "M.a(x[, {opt=1}]) -> x doubled\n(a second line)")
  T.eq(doc.source_doc(M.b), nil)
  T.eq(doc.source_doc(M.c), nil)
  T.eq(doc.source_doc(M.d), "M.d(): in a block\ncomment")
  T.eq(doc.source_doc(M.e), nil)
  T.eq(doc.source_doc(print), nil, "a C function has no source comment")
  T.eq(repl.find_doc(M.a), "M.a(x[, {opt=1}]) -> x doubled\n(a second line)")
  T.eq(repl.summary("f(a,\n  b) -> c\nMore text."), "f(a, b) -> c")
end)

T.test("doc: a class shows its constructor doc; methods inherit the doc they override", function()
  local C = load_temp([[
local Module = require("aiart.nn").Module

--- Foo(n): a test module made by extend
local Foo = Module:extend("Foo")
function Foo:forward(x) return x end

local Bar = Module:extend("Bar")
--- Bar(a, b): the init's comment wins
function Bar:init(a, b) end

return {Foo = Foo, Bar = Bar}
]])
  T.eq(repl.find_doc(C.Foo), "Foo(n): a test module made by extend")
  T.eq(repl.find_doc(C.Bar), "Bar(a, b): the init's comment wins")
  -- nn.Linear.forward has no comment of its own: it gets nn.Module.forward's
  T.ok(repl.find_doc(ai.nn.Linear.forward) == repl.find_doc(ai.nn.Module.forward))
  T.ok(repl.find_doc(ai.nn.GroupNorm):find("num_groups", 1, true), repl.find_doc(ai.nn.GroupNorm))
end)

-- Runs the REPL on input through a pipe; returns its stdout.
local function pipe(input)
  local inf = os.tmpname()
  T.writefile(inf, input)
  local _, out = T.sh(T.binary() .. " < " .. inf)
  os.remove(inf)
  return out
end

T.test("doc: ?ai.conv2d through a pipe shows conv2d's options", function()
  local out = pipe("?ai.conv2d\n")
  local line = out:match("[^\n]*conv2d[^\n]*")
  T.ok(line, out)
  for _, opt in ipairs({ "stride", "padding", "dilation", "groups" }) do
    T.ok(line:find(opt, 1, true), "no '" .. opt .. "' in: " .. line)
  end
end)

T.test("doc: help(x) of a tensor, help(table) lists docs, help(class)", function()
  local out = pipe("x = ai.zeros(2, 3, {dtype='f64'})\nhelp(x)\nhelp(ai.nn.init)\n" ..
    "help(ai.nn.Linear)\n?ai.nn.Conv2d\n?x:sum\nhelp(ai.linalg)\n")
  T.ok(out:find("shape {2, 3}, dtype f64", 1, true), out)
  T.ok(out:find("help(ai.Tensor)", 1, true), out)
  T.ok(out:match("\n  kaiming_uniform_ +init%.kaiming_uniform_%("), out)
  T.ok(out:match("\n  eigh +ai%.linalg%.eigh%("), out)
  T.ok(out:find("in_features", 1, true), out)
  T.ok(out:find("methods of ai.nn.Linear:", 1, true), out)
  T.ok(out:find("padding_mode", 1, true), out)
  T.ok(out:find("x:sum(", 1, true) or out:find("ai.sum(", 1, true), out)
  T.ok(not out:find("no documentation", 1, true), out)
end)

-- standalone: ./aiart-lua tests/test_doc.lua
T.run_alone()
