--[[ aiart.repl: the read-eval-print loop of aiart-lua. Printing values is in aiart.repl.print,
help() and ?f in aiart.repl.help, tab completion in aiart.repl.complete; their public functions
are fields of this module too.

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
local util = require "aiart.util"
local printing = require "aiart.repl.print"
local help = require "aiart.repl.help"
local completion = require "aiart.repl.complete"

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

local paint, out = printing.paint, printing.out

local function err(s)
  io.stdout:flush()
  io.stderr:write(paint(color_err, "31", s), "\n")
  io.stderr:flush()
end

M.print = function(s) out(s .. "\n") end
M.error = err

M.repr = printing.repr
M.tensor_method_tables = help.tensor_method_tables
M.build_index = help.build_index
M.find_doc = help.find_doc
M.summary = help.summary
M.help = help.help
M.help_expr = help.help_expr
M.complete = completion.complete

-- Prints the values of pack (from index first to pack.n) with M.repr, which users may replace.
local function print_values(pack, first)
  local s, n = printing.format_values(pack, first, M.repr)
  if n > 0 then out(s .. "\n") end
end

--- M.format_values(pack, first) -> the values pack[first..pack.n] as the REPL prints them
function M.format_values(pack, first) return (printing.format_values(pack, first, M.repr)) end

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

-- A line saying what to write here when an error is about a name of Torch7's or PyTorch's
-- that does not exist here ("attempt to call a nil value (method 'cmul')"; aiart.migrate).
local function migration_hint(msg)
  local ok, mig = pcall(require, "aiart.migrate")
  local h = ok and mig.hint(tostring(msg)) or nil
  return h and ("hint: " .. h) or nil
end
M.migration_hint = migration_hint

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
    local hint = migration_hint(res[2])
    if hint then msg = msg .. "\n" .. hint end
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
  help.host = h
  local nc = os.getenv("NO_COLOR")
  local nocolor = (nc ~= nil and nc ~= "") or os.getenv("TERM") == "dumb"
  color_out = h.interactive and h.stdout_tty and not nocolor
  color_err = h.interactive and h.stderr_tty and not nocolor
  M.color = color_out

  local ok, why = util.repl_globals(M.help)
  if not ok then err("warning: could not load aiart: " .. tostring(why)) end

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
