-- tests/test_jupyter.lua: the Jupyter kernel of aiart-lua.
--  * lua/aiart/jupyter.lua in process (cells, base64) and through its pipe protocol
--    (aiart-lua -i -e 'require("aiart.jupyter").install()' fed JSON lines);
--  * the kernel (notebooks/kernel/aiart_kernel.py) through Jupyter's own client, driven by
--    tests/jupyter_driver.py from a temporary kernelspec made by notebooks/install-kernel.sh.
-- The second part needs Debian's python3-ipykernel, python3-jupyter-client, python3-nbclient,
-- python3-nbformat and jupyter-core: without them these tests FAIL and say what to install.
local T = package.loaded["helper"] or package.loaded["tests.helper"] or require("tests.helper")
local ai = require "aiart"
local jupyter = require "aiart.jupyter"

local shell_quote, readfile, writefile = T.shell_quote, T.readfile, T.writefile

local BIN = T.abspath(T.binary())

------------------------------------------------------------------------------------------------
-- in process
------------------------------------------------------------------------------------------------

local function cell(src)
  local f, msg = jupyter.compile_cell(src, "=In[1]")
  assert(f, msg)
  return table.pack(f())
end

T.test("jupyter: a cell gives the value of its last expression", function()
  local r = cell("local a = 20\nlocal b = 22\na + b")
  T.eq(r.n, 1)
  T.eq(r[1], 42)
  r = cell("-- a comment\n1, 2\n\n-- trailing comment\n")
  T.eq({r.n, r[1], r[2]}, {2, 1, 2})
  -- an expression over several lines
  r = cell("local t = {}\n{\n  1,\n  2 }")
  T.eq(r[1], {1, 2})
  -- a call as the last line: its results
  r = cell("local function f(x) return x * 2, 'two' end\nf(21)")
  T.eq({r[1], r[2]}, {42, "two"})
end)

T.test("jupyter: statements, ';' and blocks are left as they are", function()
  T.eq(cell("_jt_x = 5;").n, 0)
  T.eq(cell("local n = 0\nfor i = 1, 3 do\n  n = n + i\nend").n, 0)
  -- the last line of a block must not become a return inside the block
  local r = cell("_jt_n = 0\nfor i = 1, 3 do\n  _jt_n = _jt_n + i\nend\n_jt_n")
  T.eq(r[1], 6)
  -- a line that continues the previous one (a call with a table) is not split off
  r = cell("local function f(t) return #t end\nlocal v = f\n{1, 2, 3}\nv")
  T.eq(r[1], 3)
  r = cell("local x = 10\n-1")      -- "local x = 10 - 1": one statement, no value
  T.eq(r.n, 0)
  local f, msg = jupyter.compile_cell("x = = 1", "=In[7]")
  T.ok(f == nil and msg:find("In[7]:1:", 1, true), msg)
  _G._jt_x, _G._jt_n = nil, nil
end)

T.test("jupyter: base64 and UTF-8 cleaning", function()
  local cases = {[""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==", fooba = "Zm9vYmE=",
                 foobar = "Zm9vYmFy", ["\0\255\128"] = "AP+A"}
  for k, v in pairs(cases) do T.eq(jupyter.base64(k), v, k) end
  T.eq(jupyter.utf8_clean("abc é"), "abc é")
  T.eq(jupyter.utf8_clean("a\255b"), "a\u{FFFD}b")
  T.eq(jupyter.utf8_clean("\255"), "\u{FFFD}")
end)

------------------------------------------------------------------------------------------------
-- the pipe protocol
------------------------------------------------------------------------------------------------

-- Runs aiart-lua in kernel mode on a list of requests; returns the messages and the stray text.
local function serve(requests)
  local inf = os.tmpname()
  local lines = {}
  for i, r in ipairs(requests) do lines[i] = ai.json.encode(r) end
  writefile(inf, table.concat(lines, "\n") .. "\n")
  local cmd = shell_quote(BIN) .. " -i -e " .. shell_quote('require("aiart.jupyter").install()') ..
              " < " .. shell_quote(inf) .. " 2>&1"
  local p = io.popen(cmd, "r")
  local out = p:read("a")
  local ok = p:close()
  os.remove(inf)
  local msgs, stray = {}, {}
  local pos = 1
  while true do
    local s, e = out:find(jupyter.MARK, pos, true)
    if not s then stray[#stray + 1] = out:sub(pos); break end
    stray[#stray + 1] = out:sub(pos, s - 1)
    local nl = out:find("\n", e + 1, true)
    msgs[#msgs + 1] = ai.json.decode(out:sub(e + 1, nl - 1))
    pos = nl + 1
  end
  return msgs, table.concat(stray), ok
end

-- The messages of each request (split at "done"), the ready message dropped.
local function by_request(msgs)
  local groups, cur = {}, {}
  for i, m in ipairs(msgs) do
    if i == 1 then T.ok(m.ready, "the first message is ready")
    else
      cur[#cur + 1] = m
      if m.done then groups[#groups + 1] = cur; cur = {} end
    end
  end
  return groups
end

local function find(group, key)
  for _, m in ipairs(group) do if m[key] ~= nil then return m[key], m end end
  return nil
end

local function stream_text(group, name)
  local parts = {}
  for _, m in ipairs(group) do
    if m.stream == (name or "stdout") then parts[#parts + 1] = m.text end
  end
  return table.concat(parts)
end

T.test("jupyter protocol: results, streams, errors, displays, completion", function()
  local msgs, stray, ok = serve{
    {op = "execute", code = "x = 41\nprint('hello', 1)\nio.write('a', 2, '\\n')\nx + 1", n = 1},
    {op = "execute", code = "x", n = 2},
    {op = "execute", code = "local function inner() error('deep trouble') end\nlocal function outer() inner() end\nouter()\nreturn 1", n = 3},
    {op = "execute", code = "ai.image.show(ai.rand(3, 8, 8))", n = 4},
    {op = "complete", text = "ai.ran", before = "y = "},
    {op = "inspect", expr = "ai.linspace"},
    {op = "execute", code = "for i = = 1", n = 5},
    {op = "execute", code = "io.output():write('stray\\n')\nio.stderr:write('to stderr\\n')", n = 6},
    {op = "is_complete", code = "for i = 1, 3 do"},
    {op = "execute", code = "?ai.zeros", n = 7},
    {op = "execute", code = "local b = ai.progress.bar{total = 3, every = 0}\nfor i = 1, 3 do b:update(1) end\nb:close()", n = 8},
  }
  T.ok(ok, "aiart-lua exits cleanly at the end of its input")
  local g = by_request(msgs)
  T.eq(#g, 11)
  -- 1: print and io.write stream; the last expression is the result
  T.eq(stream_text(g[1]), "hello\t1\na2\n")
  T.eq(find(g[1], "result"), "42")
  T.eq(g[1][#g[1]].status, "ok")
  -- 2: the state persists
  T.eq(find(g[2], "result"), "41")
  -- 3: an error with the traceback of the cell's functions
  local err = find(g[3], "error")
  T.eq(err.ename, "LuaError")
  T.ok(err.evalue:find("In[3]:1: deep trouble", 1, true), err.evalue)
  local tb = table.concat(err.traceback, "\n")
  T.ok(tb:find("stack traceback:", 1, true) and tb:find("'inner'", 1, true)
       and tb:find("In[3]:3: in main chunk", 1, true), tb)
  T.eq(g[3][#g[3]].status, "error")
  -- 4: a PNG display
  local disp = find(g[4], "display")
  T.ok(disp and disp["image/png"], "a display with image/png")
  T.eq(disp["image/png"]:sub(1, 8), jupyter.base64("\137PNG\r\n\26\n"):sub(1, 8))
  T.eq(disp["text/plain"], "<image 3x8x8>")
  T.eq(find(g[4], "result"), nil, "ai.image.show's nil is not shown")
  -- 5: completion
  local matches = g[5][1].matches
  T.ok(#matches > 3, "completions of ai.ran")
  local have = {}
  for _, m in ipairs(matches) do have[m] = true end
  T.ok(have["ai.randn"] and have["ai.rand"], table.concat(matches, " "))
  -- 6: documentation
  T.ok(g[6][1].found and g[6][1].text:find("ai.linspace(", 1, true), g[6][1].text)
  -- 7: a syntax error
  T.eq(find(g[7], "error").ename, "SyntaxError")
  -- 8: stray stdout text and stderr
  T.ok(stray:find("stray\n", 1, true), "stray text: " .. stray)
  T.eq(stream_text(g[8], "stderr"), "to stderr\n")
  -- 9: is_complete
  T.eq(g[9][1].status, "incomplete")
  -- 10: ?name
  T.ok(stream_text(g[10]):find("ai.zeros(", 1, true), stream_text(g[10]))
  -- 11: a progress bar prints plain lines, not \r redraws
  local bar = stream_text(g[11])
  T.ok(bar:find("3/3 (100%)", 1, true) and not bar:find("\r", 1, true), bar)
end)

------------------------------------------------------------------------------------------------
-- the kernel through Jupyter
------------------------------------------------------------------------------------------------

local find_python = T.jupyter_python

local driver_result, driver_err

local STEPS = {
  {execute = "x = 41\nprint('hello')\nx + 1"},                       -- 1
  {execute = "x"},                                                   -- 2
  {execute = "local function f() error('boom') end\nf()\nreturn 1"}, -- 3
  {execute = "ai.image.show(ai.image.grid(ai.rand(4, 1, 8, 8), {nrow = 2}))"}, -- 4
  {complete = "y = ai.ran"},                                         -- 5
  {complete = "t = ai.zeros(2)\n", cursor_pos = 16},                  -- 6 (nothing to complete)
  {execute = "n = 0\nwhile true do n = n + 1 end", interrupt_after = 1.5, timeout = 60}, -- 7
  {execute = "x * 2, n > 0"},                                        -- 8
  {inspect = "ai.randn"},                                            -- 9
  {is_complete = "for i = 1, 2 do"},                                 -- 10
  {execute = "os.exit(3)"},                                          -- 11
  {execute = "x == nil"},                                            -- 12
  {execute = "y = 7\ny"},                                            -- 13
  {interrupt = 0.5},                                                 -- 14
  {execute = "y + 1"},                                               -- 15
  {execute = "io.write('name? ')\nlocal s = io.read()\nprint('hi ' .. s)", stdin = {"lua"}}, -- 16
}

local function kernel_results()
  if driver_result or driver_err then return driver_result, driver_err end
  local py, why = find_python()
  if not py then driver_err = why; return nil, why end
  local steps = os.tmpname()
  writefile(steps, ai.json.encode(STEPS))
  local errf = os.tmpname()
  local cmd = shell_quote(py) .. " tests/jupyter_driver.py " .. shell_quote(steps) .. " --aiart-lua " ..
              shell_quote(BIN) .. " 2> " .. shell_quote(errf)
  local p = io.popen(cmd, "r")
  local out = p:read("a")
  local ok = p:close()
  local err = readfile(errf) or ""
  os.remove(steps)
  os.remove(errf)
  local dok, res = pcall(ai.json.decode, out)
  if not ok or not dok or type(res) ~= "table" then
    driver_err = "tests/jupyter_driver.py failed: " .. out:sub(1, 2000) .. "\n" .. err:sub(-3000)
    return nil, driver_err
  end
  driver_result = res
  return res
end

local function kernel_test(name, fn)
  T.test("jupyter kernel: " .. name, function()
    local res, err = kernel_results()
    if not res then error(err, 0) end
    fn(res.results, res)
  end)
end

local function outputs(r, msg_type)
  local l = {}
  for _, o in ipairs(r.outputs or {}) do
    if o.msg_type == msg_type then l[#l + 1] = o.content end
  end
  return l
end

T.test("jupyter kernel: the Jupyter packages are installed", function()
  local py, why = find_python()
  T.ok(py, why)
end)

kernel_test("the kernelspec from install-kernel.sh", function(_, res)
  local spec = res.kernelspec
  T.eq(spec.display_name, "aiart-lua")
  T.eq(spec.language, "lua")
  T.eq(spec.env.AIART_LUA, BIN)
  T.ok(spec.argv[#spec.argv - 2]:match("^/.*/notebooks/kernel/aiart_kernel%.py$"), spec.argv[#spec.argv - 2])
  T.eq(spec.argv[#spec.argv], "{connection_file}")
end)

kernel_test("execute a cell: output stream and result", function(r)
  T.eq(r[1].reply.status, "ok")
  T.eq(outputs(r[1], "stream")[1].text, "hello\n")
  local res = outputs(r[1], "execute_result")
  T.eq(#res, 1)
  T.eq(res[1].data["text/plain"], "42")
end)

kernel_test("the state persists across cells", function(r)
  T.eq(outputs(r[2], "execute_result")[1].data["text/plain"], "41")
end)

kernel_test("an error shows with its Lua traceback", function(r)
  T.eq(r[3].reply.status, "error")
  local e = outputs(r[3], "error")[1]
  T.eq(e.ename, "LuaError")
  T.ok(e.evalue:find("boom", 1, true), e.evalue)
  local tb = table.concat(e.traceback, "\n")
  T.ok(tb:find("stack traceback:", 1, true) and tb:find("in local 'f'", 1, true) and tb:find("In[3]:2", 1, true), tb)
end)

kernel_test("ai.image.show displays a PNG", function(r)
  local d = outputs(r[4], "display_data")
  T.eq(#d, 1)
  T.eq(d[1].data["image/png"]:sub(1, 8), "iVBORw0K") -- base64 of the PNG signature
  T.eq(d[1].data["text/plain"], "<image 1x22x22>")
end)

kernel_test("tab completion", function(r)
  local c = r[5].reply
  T.eq(c.status, "ok")
  T.eq(c.cursor_start, 4)
  T.eq(c.cursor_end, 10)
  local have = {}
  for _, m in ipairs(c.matches) do have[m] = true end
  T.ok(have["ai.randn"] and have["ai.randint"], table.concat(c.matches, " "))
  T.eq(r[6].reply.status, "ok")
end)

kernel_test("interrupt stops a busy loop; the kernel and its state survive", function(r)
  local rep = r[7].reply
  T.eq(rep.status, "error", "interrupted cell: " .. tostring(rep.status) .. " " .. tostring(rep.message))
  T.eq(rep.ename, "Interrupted")
  T.ok(r[7].elapsed < 30, "the interrupt took " .. r[7].elapsed .. " s")
  T.eq(outputs(r[8], "execute_result")[1].data["text/plain"], "82\ttrue")
end)

kernel_test("inspect and is_complete", function(r)
  T.ok(r[9].reply.found, "inspect found ai.randn")
  T.ok(r[9].reply.data["text/plain"]:find("ai.randn(", 1, true), r[9].reply.data["text/plain"])
  T.eq(r[10].reply.status, "incomplete")
end)

kernel_test("a cell that ends the process: an error, then a fresh aiart-lua", function(r)
  T.eq(r[11].reply.status, "error")
  T.eq(outputs(r[11], "error")[1].ename, "KernelDied")
  T.eq(r[12].reply.status, "ok")
  T.eq(outputs(r[12], "execute_result")[1].data["text/plain"], "true")
  local notice = outputs(r[12], "stream")[1]
  T.ok(notice and notice.name == "stderr" and notice.text:find("restarted", 1, true), "a notice of the restart")
  T.eq(outputs(r[13], "execute_result")[1].data["text/plain"], "7")
end)

kernel_test("an interrupt between cells does no harm", function(r)
  T.ok(r[14].alive, "the kernel is alive")
  T.eq(r[15].reply.status, "ok")
  T.eq(outputs(r[15], "execute_result")[1].data["text/plain"], "8")
end)

kernel_test("io.read asks the frontend for input", function(r)
  T.eq(r[16].reply.status, "ok")
  T.eq(#r[16].prompts, 1)
  local text = {}
  for _, o in ipairs(outputs(r[16], "stream")) do text[#text + 1] = o.text end
  T.eq(table.concat(text), "name? hi lua\n")
end)
