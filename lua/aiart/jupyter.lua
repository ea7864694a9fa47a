--[[ aiart.jupyter: the Lua side of the Jupyter kernel (notebooks/kernel/aiart_kernel.py).

The Python kernel starts

    aiart-lua -i -e 'require("aiart.jupyter").install()'

install() makes require("aiart.repl").run be M.serve, so the host's REPL entry point hands
M.serve the host table of src/host/main.c; its host.pcall makes a SIGINT sent to the process
raise the error "interrupted" inside the running cell (and re-arms itself for the next one).
`aiart-lua -e 'require("aiart.jupyter").serve()'` also works, but there a second interrupt
kills the process (the host's -e wrapper does not re-arm its SIGINT handler).

Protocol: one JSON object per line.
  kernel -> Lua (stdin):  {"op":"execute","code":"...","n":3}     run a cell (n: execution count)
                          {"op":"complete","text":"ai.ra","before":"x = "}
                          {"op":"inspect","expr":"ai.randn"}
                          {"op":"is_complete","code":"..."}
                          {"op":"input_reply","value":"..."|null}  answer to an "input" message
                          {"op":"ping"}
  Lua -> kernel (stdout): MARK .. JSON .. "\n" with MARK = "\2aiart\3"; anything else on stdout is
  stray output (from C or io.output()) that the kernel shows as stdout text.
                          {"ready":true,"version":"..."}  once, at the start
                          {"stream":"stdout"|"stderr","text":"..."}
                          {"display":{"image/png":"<base64>","text/plain":"..."}}
                          {"result":"<the REPL's repr of the values>"}
                          {"error":{"ename":"LuaError"|"SyntaxError"|"Interrupted","evalue":"...",
                                    "traceback":["...", ...]}}
                          {"input":{"prompt":"...","password":false}}
                          {"done":true, ...}  last message of every request; complete adds
                                              "matches", inspect "text", is_complete "status"

While serving, print, io.write, io.stdout and io.stderr send stream messages, io.read and
io.stdin ask the frontend for input, and ai.image.show(t) sends the PNG of t as a display
(ai.image.display_hook); the global display(bundle) shows any MIME bundle. ai.progress bars see
a file that is not a terminal and print plain lines every few seconds. A cell's value is printed
with require("aiart.repl").repr, as the REPL prints it; ?name runs the REPL's help_expr, and
completion is the REPL's complete().
]]
local json_lib -- ai.json, loaded on first use

local M = {}

M.MARK = "\2aiart\3"
M.serving = false

local REAL_IN, REAL_OUT, REAL_ERR = io.stdin, io.stdout, io.stderr
local orig = {print = print, write = io.write, read = io.read, lines = io.lines, stdout = io.stdout,
              stderr = io.stderr, stdin = io.stdin}

local host            -- the host table of main.c (nil when serve() runs without it)
local capture = nil   -- a list collecting stream text instead of sending it (inspect)

local function json()
  if not json_lib then json_lib = require("aiart").json end
  return json_lib
end

------------------------------------------------------------------------------------------------
-- sending messages
------------------------------------------------------------------------------------------------

-- Replaces the bytes that are not UTF-8 by U+FFFD (the JSON encoder wants UTF-8).
local function utf8_clean(s)
  if utf8.len(s) then return s end
  local out, i = {}, 1
  while true do
    local n, bad = utf8.len(s, i)
    if n then out[#out + 1] = s:sub(i); break end
    out[#out + 1] = s:sub(i, bad - 1)
    out[#out + 1] = "\u{FFFD}"
    i = bad + 1
    if i > #s then break end
  end
  return table.concat(out)
end
M.utf8_clean = utf8_clean

-- Writes one message. A write cut short (EINTR from a Ctrl-C while the pipe was full) is
-- written again after a newline, so that the kernel drops the broken line and reads this one.
local function send(msg)
  local line = M.MARK .. json().encode(msg) .. "\n"
  for attempt = 1, 3 do
    local ok = REAL_OUT:write(attempt == 1 and line or "\n" .. line)
    if ok and REAL_OUT:flush() then return true end
  end
  return false
end
M.send = send

local function emit(name, text)
  if text == "" then return end
  if capture then capture[#capture + 1] = text; return end
  if not M.serving then
    (name == "stderr" and REAL_ERR or REAL_OUT):write(text)
    return
  end
  send({stream = name, text = utf8_clean(text)})
end

------------------------------------------------------------------------------------------------
-- base64 (for PNG displays)
------------------------------------------------------------------------------------------------

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64_pairs -- 12-bit value -> two characters
local function base64(s)
  if not b64_pairs then
    b64_pairs = {}
    for i = 0, 4095 do
      b64_pairs[i] = B64:sub((i >> 6) + 1, (i >> 6) + 1) .. B64:sub((i & 63) + 1, (i & 63) + 1)
    end
  end
  local out, n, len = {}, 0, #s
  local full = len - len % 3
  for i = 1, full, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = (a << 16) | (b << 8) | c
    n = n + 1
    out[n] = b64_pairs[v >> 12] .. b64_pairs[v & 4095]
  end
  local rest = len - full
  if rest == 1 then
    local v = s:byte(full + 1) << 16
    n = n + 1
    out[n] = b64_pairs[v >> 12] .. "=="
  elseif rest == 2 then
    local a, b = s:byte(full + 1, full + 2)
    local v = (a << 16) | (b << 8)
    n = n + 1
    out[n] = b64_pairs[v >> 12] .. B64:sub(((v >> 6) & 63) + 1, ((v >> 6) & 63) + 1) .. "="
  end
  return table.concat(out)
end
M.base64 = base64

------------------------------------------------------------------------------------------------
-- displays
------------------------------------------------------------------------------------------------

--- jupyter.display(bundle): shows a MIME bundle, e.g. {["text/html"] = "<b>hi</b>"}; values
-- under image/* are raw bytes (base64-encoded here).
function M.display(bundle)
  if type(bundle) ~= "table" then error("display: expected a table of MIME type -> data", 2) end
  local data = {}
  for mime, v in pairs(bundle) do
    if type(mime) ~= "string" or type(v) ~= "string" then error("display: MIME types and data must be strings", 2) end
    if mime:match("^image/") and mime ~= "image/svg+xml" then data[mime] = base64(v)
    else data[mime] = utf8_clean(v) end
  end
  if not M.serving then
    emit("stdout", (data["text/plain"] or "<display>") .. "\n")
    return
  end
  send({display = data})
end

-- ai.image.display_hook: the PNG of ai.image.show(t)
local function image_hook(png, t)
  local desc = "<image>"
  if t and t.shape then desc = "<image " .. table.concat(t.shape, "x") .. ">" end
  M.display({["image/png"] = png, ["text/plain"] = desc})
end
M.image_hook = image_hook

------------------------------------------------------------------------------------------------
-- print, io.write, io.stdout, io.stderr, io.read, io.stdin while serving
------------------------------------------------------------------------------------------------

local function tostr(v, fn, i)
  local tv = type(v)
  if tv == "string" then return v end
  if tv == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    return string.format("%.14g", v)
  end
  error(("bad argument #%d to '%s' (string expected, got %s)"):format(i, fn, tv), 3)
end

local Stream = {}
Stream.__index = Stream
Stream.__name = "FILE*"
Stream.__tostring = function(self) return "file (" .. self.name .. ", notebook)" end

local function new_stream(name) return setmetatable({name = name}, Stream) end

function Stream:write(...)
  if self.name == "stdin" then return nil, "Bad file descriptor", 9 end
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostr(select(i, ...), "write", i) end
  emit(self.name, table.concat(parts))
  return self
end
function Stream:flush() return self end
function Stream:setvbuf() return true end
function Stream:close() return nil, "cannot close standard file" end
function Stream:seek() return nil, "Illegal seek", 29 end

-- Input from the frontend (Jupyter's input_request); nil when the frontend has none.
local function ask(prompt, password)
  if not M.serving then return nil end
  send({input = {prompt = prompt or "", password = password and true or false}})
  while true do
    local line = REAL_IN:read("l")
    if not line then return nil end
    local ok, req = pcall(json().decode, line)
    if ok and type(req) == "table" and req.op == "input_reply" then
      local v = req.value
      if type(v) ~= "string" then return nil end
      return v
    end
  end
end
M.input = function(prompt, password) return ask(prompt, password) end

function Stream:read(...)
  if self.name ~= "stdin" then return nil, "Bad file descriptor", 9 end
  local fmts = table.pack(...)
  if fmts.n == 0 then fmts = {n = 1, "l"} end
  local res = {}
  for i = 1, fmts.n do
    local f = fmts[i]
    if type(f) == "string" then f = f:gsub("^%*", "") end
    local line = ask("")
    if line == nil then res[i] = nil; return table.unpack(res, 1, i) end
    if f == "n" then res[i] = tonumber(line)
    elseif f == "L" then res[i] = line .. "\n"
    elseif math.type(f) == "integer" then res[i] = line:sub(1, f)
    else res[i] = line end
  end
  return table.unpack(res, 1, fmts.n)
end
function Stream:lines(...)
  if self.name ~= "stdin" then error("file is not readable", 2) end
  local fmts = table.pack(...)
  return function() return self:read(table.unpack(fmts, 1, fmts.n)) end
end

local fake = {stdout = new_stream("stdout"), stderr = new_stream("stderr"), stdin = new_stream("stdin")}
M.streams = fake

local function nb_print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  emit("stdout", table.concat(parts, "\t") .. "\n")
end

local function nb_write(...) return fake.stdout:write(...) end
local function nb_read(...) return fake.stdin:read(...) end
local function nb_lines(name, ...)
  if name == nil then return fake.stdin:lines(...) end
  return orig.lines(name, ...)
end

-- Installs the notebook versions of print and io's standard files.
local function redirect()
  _G.print = nb_print
  io.write, io.read, io.lines = nb_write, nb_read, nb_lines
  io.stdout, io.stderr, io.stdin = fake.stdout, fake.stderr, fake.stdin
  -- io.read()/io.lines() of the default input must never eat the protocol
  pcall(io.input, "/dev/null")
end

local function restore()
  _G.print = orig.print
  io.write, io.read, io.lines = orig.write, orig.read, orig.lines
  io.stdout, io.stderr, io.stdin = orig.stdout, orig.stderr, orig.stdin
  pcall(io.input, REAL_IN)
end

------------------------------------------------------------------------------------------------
-- cells
------------------------------------------------------------------------------------------------

local function split_lines(s)
  local lines = {}
  for l in (s .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = l end
  return lines
end

-- Compiles a cell so that the value of its last expression is returned (as in IPython): the
-- whole cell as an expression, else statements followed by `return <last lines>` when the
-- last lines form an expression list, else the cell as statements. A cell ending in ';'
-- shows no value. Returns the function or nil, message.
function M.compile_cell(src, chunkname)
  chunkname = chunkname or "=cell"
  local lines = split_lines(src)
  local last = #lines
  while last > 0 and (lines[last]:match("^%s*$") or lines[last]:match("^%s*%-%-")) do last = last - 1 end
  local stmts, smsg = load(src, chunkname, "t")
  if last == 0 then return stmts, smsg end
  if lines[last]:match(";%s*$") and not lines[last]:match("^%s*return[%s;]") then return stmts, smsg end
  local f = load("return " .. src .. "\n", chunkname, "t")
  if f then return f end
  for k = last, math.max(1, last - 200), -1 do
    local suffix = table.concat(lines, "\n", k)
    -- with the whole cell valid, a line starting like this continues the previous one
    local continues = stmts and suffix:match("^%s*[%(%{\"'%[%-~]")
    if not continues and load("return " .. suffix .. "\n", chunkname, "t") then
      local prefix = table.concat(lines, "\n", 1, k - 1)
      if load(prefix, chunkname, "t") then
        f = load((k > 1 and prefix .. "\n" or "") .. "return " .. suffix .. "\n", chunkname, "t")
        if f then return f end
      end
    end
  end
  return stmts, smsg
end

local function repl_mod()
  return require("aiart.repl")
end

-- An error message (with traceback) -> ename, evalue, traceback lines.
local function error_parts(msg, chunkname)
  msg = tostring(msg)
  local head, tb = msg:match("^(.-)\nstack traceback:\n(.*)$")
  if not head then head, tb = msg, nil end
  local lines = {}
  if tb then
    -- drop the traceback when it only says "in main chunk" (and C functions)
    local useful = false
    local short = chunkname:gsub("^[=@]", "")
    local esc = short:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
    for l in tb:gmatch("[^\n]+") do
      if not (l:match("^%s*%[C%]: in ") or l:match("^%s*" .. esc .. ":%d+: in main chunk$")) then useful = true end
    end
    if useful then
      lines[#lines + 1] = "stack traceback:"
      for l in tb:gmatch("[^\n]+") do lines[#lines + 1] = l end
    end
  end
  local ename = "LuaError"
  if head:match("interrupted$") then ename = "Interrupted" end
  local tbl = {"\27[0;31m" .. head .. "\27[0m"}
  for _, l in ipairs(lines) do tbl[#tbl + 1] = l end
  return ename, head, tbl
end
M.error_parts = error_parts

local function send_error(ename, evalue, traceback)
  send({error = {ename = ename, evalue = utf8_clean(evalue), traceback = traceback}})
end

local function protected(f, ...)
  if host and host.pcall then return host.pcall(f, ...) end
  return xpcall(f, debug.traceback, ...)
end

-- The REPL's printed form of the values pack[first..n].
local function format_values(pack, first) return repl_mod().format_values(pack, first) end
M.format_values = format_values

local function is_own_stream(v)
  return v == fake.stdout or v == fake.stderr or v == fake.stdin
end

local function execute(req)
  local code = req.code
  if type(code) ~= "string" then error("execute: code must be a string") end
  local n = math.tointeger(req.n) or 0
  local chunkname = "=In[" .. n .. "]"
  -- ?name and ?: the REPL's help
  local hexpr = code:match("^%s*%?%s*([^\n]-)%s*$")
  if hexpr then
    local repl = repl_mod()
    local ok, err = protected(function()
      if hexpr == "" then repl.help() else repl.help_expr(hexpr) end
    end)
    if not ok then
      local ename, evalue, tb = error_parts(err, chunkname)
      send_error(ename, evalue, tb)
    end
    return {status = ok and "ok" or "error"}
  end
  local f, msg = M.compile_cell(code, chunkname)
  if not f then
    send_error("SyntaxError", utf8_clean(tostring(msg)), {"\27[0;31m" .. utf8_clean(tostring(msg)) .. "\27[0m"})
    return {status = "error"}
  end
  local res = table.pack(protected(f))
  if not res[1] then
    local ename, evalue, tb = error_parts(res[2], chunkname)
    for i, l in ipairs(tb) do tb[i] = utf8_clean(l) end
    send_error(ename, evalue, tb)
    return {status = "error"}
  end
  local shown = false -- as IPython, which hides None: nothing for nils or io.write's file
  for i = 2, res.n do
    if res[i] ~= nil and not is_own_stream(res[i]) then shown = true end
  end
  if shown then
    rawset(_G, "_", res[2])
    local ok, text = protected(format_values, res, 2)
    if not ok then
      local ename, evalue, tb = error_parts(text, chunkname)
      send_error(ename, "error printing the result: " .. evalue, tb)
      return {status = "error"}
    end
    send({result = utf8_clean(text)})
  end
  return {status = "ok"}
end

local function complete(req)
  local text, before = tostring(req.text or ""), tostring(req.before or "")
  local ok, cands = pcall(repl_mod().complete, text, before)
  if not ok or type(cands) ~= "table" then cands = {} end
  local out = {}
  for _, c in ipairs(cands) do out[#out + 1] = utf8_clean(tostring(c)) end
  return {matches = out}
end

local function inspect(req)
  local expr = tostring(req.expr or "")
  local buf = {}
  capture = buf
  local ok, err = pcall(repl_mod().help_expr, expr)
  capture = nil
  local text = table.concat(buf)
  if not ok then text = text .. tostring(err) end
  local found = text ~= "" and not text:match("^no documentation for")
  return {found = found, text = utf8_clean(text)}
end

local function is_complete(req)
  local code = tostring(req.code or "")
  if code:match("^%s*%?") then return {status = "complete"} end
  local f, _, more = repl_mod().compile(code)
  if f then return {status = "complete"} end
  if more then return {status = "incomplete", indent = ""} end
  -- a cell of statements ending in an expression compiles as a cell
  if M.compile_cell(code) then return {status = "complete"} end
  return {status = "invalid"}
end

local handlers = {execute = execute, complete = complete, inspect = inspect, is_complete = is_complete,
                  ping = function() return {pong = true} end}

-- Handles one request line; always ends with a "done" message.
local function handle(line)
  local ok, req = pcall(json().decode, line)
  local reply
  if not ok or type(req) ~= "table" then
    reply = {status = "error", message = "bad request: " .. tostring(req)}
  elseif req.op == "input_reply" then
    return -- a late answer: nothing waits for it
  else
    local h = handlers[req.op]
    if not h then
      reply = {status = "error", message = "unknown op " .. tostring(req.op)}
    else
      local hok, r = pcall(h, req)
      if hok then reply = r
      else
        -- an interrupt outside the cell's own code, or a bug here
        local ename, evalue, tb = error_parts(r, "=?")
        if ename ~= "Interrupted" then ename, evalue = "KernelError", "aiart.jupyter: " .. evalue end
        pcall(send_error, ename, evalue, tb)
        reply = {status = "error"}
      end
    end
  end
  reply = reply or {}
  reply.done = true
  if not pcall(send, reply) then send(reply) end
end

------------------------------------------------------------------------------------------------
-- the loop
------------------------------------------------------------------------------------------------

--- serve([host]): answers requests on stdin until end of input; returns true.
function M.serve(h)
  host = h
  local repl = repl_mod()
  repl.host = h
  require("aiart.util").repl_globals(repl.help)
  local iok, image = pcall(require, "aiart.image")
  if iok and type(image) == "table" then image.display_hook = image_hook end
  rawset(_G, "display", rawget(_G, "display") or M.display)
  REAL_OUT:setvbuf("full")
  redirect()
  M.serving = true
  send({ready = true, version = h and h.version or _VERSION})
  local strikes = 0
  while true do
    -- a SIGINT that comes between cells makes the next Lua instruction raise "interrupted"
    -- (and io.read fail with EINTR): both are caught here and the loop goes on
    local ok, r = pcall(function()
      local line, err, code = REAL_IN:read("l")
      if line == nil then
        if code == 4 then return "again" end -- EINTR
        return "eof"
      end
      if line ~= "" then handle(line) end
      return "ok"
    end)
    if ok and r == "eof" then break end
    if ok then strikes = 0
    else
      strikes = strikes + 1
      if host and host.pcall then host.pcall(function() end) end -- re-arms the SIGINT handler
      if not tostring(r):match("interrupted") then
        pcall(REAL_ERR.write, REAL_ERR, "aiart.jupyter: " .. tostring(r) .. "\n")
        if strikes > 20 then break end
      end
    end
  end
  M.serving = false
  restore()
  return true
end

--- install(): the host's REPL (aiart-lua -i) runs M.serve instead.
function M.install()
  repl_mod().run = M.serve
  return M
end

return M
