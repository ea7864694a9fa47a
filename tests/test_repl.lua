-- tests/test_repl.lua: the aiart-lua command line (options, scripts, arg) and its REPL, driven
-- through pipes (io.popen with a temporary input file), plus the interactive terminal mode
-- through tmux when tmux is installed. Run from the repository root, by tests/run.lua or alone:
--   ./aiart-lua tests/test_repl.lua        (the binary under test: $AIART_LUA or ./aiart-lua)
local T = package.loaded["helper"] or package.loaded["tests.helper"] or require("tests.helper")

local shell_quote, readfile, writefile = T.shell_quote, T.readfile, T.writefile

local BIN = T.abspath(T.binary())
local QBIN = shell_quote(BIN)

-- Runs `aiart-lua args` with input on stdin; returns stdout, stderr, exit status.
local function run(args, input, env)
  local inf, errf = os.tmpname(), os.tmpname()
  writefile(inf, input or "")
  local cmd = (env and env .. " " or "") .. QBIN .. " " .. (args or "") ..
      " < " .. shell_quote(inf) .. " 2> " .. shell_quote(errf)
  local p = io.popen(cmd, "r")
  local out = p:read("a")
  local _, _, code = p:close()
  local err = readfile(errf) or ""
  os.remove(inf)
  os.remove(errf)
  return out, err, code
end

-- The REPL reading lines from a pipe (no prompts, no banner).
local function repl(input, args, env)
  return run(args or "", input, env)
end

local function tmpscript(src)
  local path = os.tmpname() .. ".lua"
  writefile(path, src)
  return path
end

local HAVE_TENSORS = select(3, run("-e 'assert(ai.zeros and ai.tensor)'", "")) == 0

-- ------------------------------------------------------------------ the REPL through a pipe

T.test("repl: an expression prints its value, exit status 0", function()
  local out, err, code = repl("1+1\n")
  T.eq(out, "2\n")
  T.eq(err, "")
  T.eq(code, 0)
end)

T.test("repl: an assignment prints nothing; the global is kept", function()
  local out, _, code = repl("x = 1\nx\n")
  T.eq(out, "1\n")
  T.eq(code, 0)
end)

T.test("repl: a syntax error goes to stderr and the loop goes on (exit 1)", function()
  local out, err, code = repl("1 +* 2\n40 + 2\n")
  T.eq(out, "42\n")
  T.ok(err:find("stdin:1:", 1, true), "error message: " .. err)
  T.eq(code, 1)
end)

T.test("repl: a runtime error goes to stderr and the loop goes on (exit 1)", function()
  local out, err, code = repl("error('boom')\nprint('after')\n")
  T.eq(out, "after\n")
  T.ok(err:find("boom", 1, true), err)
  T.eq(code, 1)
end)

T.test("repl: multi-line function definition", function()
  local out, err, code = repl("function f(a)\nreturn a*2\nend\nf(21)\n")
  T.eq(out, "42\n")
  T.eq(err, "")
  T.eq(code, 0)
end)

T.test("repl: an unfinished expression continues on the next line", function()
  local out, _, code = repl("1 +\n2\nlocal t = {\n1,\n2}\n")
  T.eq(out, "3\n")
  T.eq(code, 0)
end)

T.test("repl: several values, strings quoted, nil", function()
  local out = repl("return 1, 'a\\n', nil, 2.5\n")
  T.eq(out, '1\t"a\\n"\tnil\t2.5\n')
end)

T.test("repl: a call returning nothing prints only what it prints", function()
  local out = repl("print('hi')\n")
  T.eq(out, "hi\n")
end)

T.test("repl: tables print shallowly", function()
  local out = repl("{1, 2, x = 3}\n{}\n{1, {2, {3, {4, {5}}}}}\n{['a b'] = true, [10] = 'z'}\n")
  T.eq(out, '{1, 2, x = 3}\n{}\n{1, {2, {3, {...}}}}\n{[10] = "z", ["a b"] = true}\n')
end)

T.test("repl: _ holds the last result", function()
  local out = repl("20 + 1\n_ * 2\n")
  T.eq(out, "21\n42\n")
end)

T.test("repl: :time on prints the elapsed time, :time off stops it", function()
  local out = repl(":time on\n1\n:time off\n2\n")
  T.ok(out:find("timing on\n1\ntime: [%d.]+ m?s\ntiming off\n2\n$"), out)
end)

T.test("repl: :quit stops reading", function()
  local out, _, code = repl("1\n:quit\n2\n")
  T.eq(out, "1\n")
  T.eq(code, 0)
end)

T.test("repl: :help lists the commands; an unknown command is an error", function()
  local out, err, code = repl(":help\n:nonsense\n")
  T.ok(out:find(":time", 1, true) and out:find(":quit", 1, true), out)
  T.ok(err:find("unknown command", 1, true), err)
  T.eq(code, 1)
end)

T.test("repl: ?f and help(f) print a one-line doc", function()
  local out, _, code = repl("?ai.randn\nhelp(ai.zeros)\nhelp('randn')\n")
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  T.eq(#lines, 3, out)
  T.ok(lines[1]:find("randn", 1, true), lines[1])
  T.ok(lines[2]:find("zeros", 1, true), lines[2])
  T.eq(lines[3], lines[1])
  T.eq(code, 0)
end)

T.test("repl: help of a Lua function shows its parameters", function()
  local out = repl("function g(a, b) end\n?g\n")
  T.ok(out:find("g(a, b)", 1, true), out)
end)

T.test("repl: completion candidates (aiart.repl.complete)", function()
  local out, err = repl([[
r = require "aiart.repl"
table.concat(r.complete("ai.ran", ""), " ")
table.concat(r.complete("string.for", ""), " ")
table.concat(r.complete("pri", ""), " ")
table.concat(r.complete(":ti", ""), " ")
s = "abc"
table.concat(r.complete("s:up", ""), " ")
]])
  T.eq(err, "")
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  for _, name in ipairs({ "ai.rand", "ai.randn", "ai.randint", "ai.randperm" }) do
    T.ok((" " .. lines[1]:gsub('"', "") .. " "):find(" " .. name .. " ", 1, true),
         name .. " missing in " .. lines[1])
  end
  T.eq(lines[2], '"string.format"')
  T.ok(lines[3]:find("print", 1, true), lines[3])
  T.eq(lines[4], '":time off :time on"')
  T.eq(lines[5], '"s:upper"')
end)

T.test("repl: tensor methods complete on a tensor variable", function()
  if not HAVE_TENSORS then print("  (skipped: the aiart module has no tensors)") return end
  local out = repl([[
x = ai.zeros(2)
table.concat(require("aiart.repl").complete("x:su", ""), " ")
]])
  T.ok(out:find("x:sum", 1, true), out)
end)

T.test("repl: completion on a module offers its methods and public fields, not its internals", function()
  if not HAVE_TENSORS then print("  (skipped: the aiart module has no tensors)") return end
  local out, err = repl([[
r = require "aiart.repl"
m = ai.nn.Sequential(ai.nn.Linear(2, 3))
lin = ai.nn.Linear(2, 3)
table.concat(r.complete("lin:", ""), " ")
table.concat(r.complete("lin.", ""), " ")
table.concat(r.complete("lin.we", ""), " ")
table.concat(r.complete("m:app", ""), " ")
]])
  T.eq(err, "")
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = " " .. l:gsub('"', "") .. " " end
  for _, name in ipairs({"forward", "parameters", "named_parameters", "state_dict", "train", "eval", "to",
                         "reset_parameters", "zero_grad"}) do
    T.ok(lines[1]:find(" lin:" .. name .. " ", 1, true), name .. " missing after lin: in" .. lines[1])
  end
  for _, name in ipairs({"weight", "bias", "in_features", "training", "forward"}) do
    T.ok(lines[2]:find(" lin." .. name .. " ", 1, true), name .. " missing after lin. in" .. lines[2])
  end
  for _, l in ipairs({lines[1], lines[2]}) do
    T.ok(not l:find("[.:]_"), "a name starting with _ is offered: " .. l)
    T.ok(not l:find("lin:weight", 1, true), "a tensor field offered as a method: " .. l)
  end
  T.eq(lines[3], " lin.weight ")
  T.eq(lines[4], " m:append m:apply ")
end)

T.test("repl: prints a tensor", function()
  if not HAVE_TENSORS then print("  (skipped: the aiart module has no tensors)") return end
  local out, err, code = repl("ai.randn(3,4):sum(2)\n")
  T.eq(err, "")
  T.eq(code, 0)
  T.ok(out:match("^tensor%(") and out:find("dtype=f32", 1, true), out)
  out = repl("ai.tensor({{1, 2}, {3, 4}})\n")
  T.eq(out, "tensor([[1., 2.],\n        [3., 4.]], dtype=f32, shape=2x2)\n")
end)

-- ------------------------------------------------------------------ tensor formatting

T.test("format: dtypes, 0-dim, empty, decimals, summarised", function()
  if not HAVE_TENSORS then print("  (skipped: the aiart module has no tensors)") return end
  local out = repl(table.concat({
    "ai.tensor({1.5, -2, 0.25})",
    "ai.tensor({1, 2, 3}, {dtype = 'i64'})",
    "ai.tensor({1, 0, 1}, {dtype = 'u8'})",
    "ai.tensor(3.14159)",
    "ai.zeros(0, 3)",
    "ai.tensor({1, 2}, {requires_grad = true})",
    "ai.tensor({100000, 0.001})",
    "tostring(ai.zeros(100, 100)):match('%.%.%.') ~= nil",
    "select(2, tostring(ai.zeros(5, 2000)):gsub('\\n', '')) < 40",
  }, "\n") .. "\n")
  local want = table.concat({
    "tensor([ 1.5000, -2.0000,  0.2500], dtype=f32, shape=3)",
    "tensor([1, 2, 3], dtype=i64, shape=3)",
    "tensor([1, 0, 1], dtype=u8, shape=3)",
    "tensor(3.1416, dtype=f32)",
    "tensor([], dtype=f32, shape=0x3)",
    "tensor([1., 2.], dtype=f32, shape=2, requires_grad=true)",
    "tensor([1.0000e+05, 1.0000e-03], dtype=f32, shape=2)",
    "true",
    "true",
  }, "\n") .. "\n"
  T.eq(out, want)
end)

-- ------------------------------------------------------------------ command-line options

T.test("-e runs code, with the global ai", function()
  local out, _, code = run("-e 'print(1 + 2)' -e 'print(type(ai))'")
  T.eq(out, "3\ntable\n")
  T.eq(code, 0)
end)

T.test("-e with an error: message with traceback on stderr, exit 1", function()
  local out, err, code = run("-e 'error(\"bad thing\")'")
  T.eq(out, "")
  T.ok(err:find("bad thing", 1, true) and err:find("stack traceback", 1, true), err)
  T.eq(code, 1)
end)

T.test("-v prints a version line naming aiart-lua and Lua", function()
  local out, _, code = run("-v")
  T.ok(out:find("aiart-lua", 1, true) and out:find("Lua 5.4", 1, true), out)
  T.eq(select(2, out:gsub("\n", "")), 1)
  T.eq(code, 0)
end)

T.test("-l mod and -l g=mod", function()
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. shell_quote(dir))
  writefile(dir .. "/tmod.lua", "return {answer = 42}")
  local env = "LUA_PATH=" .. shell_quote(dir .. "/?.lua;;")
  local out, err, code = run("-l tmod -l g=tmod -e 'print(tmod.answer, g.answer, tmod == g)'", "", env)
  T.eq(out, "42\t42\ttrue\n", err)
  T.eq(code, 0)
  local _, err2, code2 = run("-l no_such_module_xyz", "")
  T.ok(err2:find("no_such_module_xyz", 1, true), err2)
  T.eq(code2, 1)
  os.execute("rm -rf " .. shell_quote(dir))
end)

T.test("script with arguments: arg and ...", function()
  local s = tmpscript("print(arg[1], arg[2], #arg, select('#', ...), ...)\n" ..
                      "print(arg[0] ~= nil, arg[-1] ~= nil)")
  local out, err, code = run(shell_quote(s) .. " a 'b c'")
  os.remove(s)
  T.eq(out, "a\tb c\t2\t2\ta\tb c\ntrue\ttrue\n", err)
  T.eq(code, 0)
end)

T.test("script: arg[0] is the script, arg[-1] the program, negative indices the options", function()
  local s = tmpscript("print(arg[0], arg[-1], arg[-2], arg[-3])")
  local out = run("-e 'x=1' " .. shell_quote(s))
  os.remove(s)
  local a0, am1, am2, am3 = out:match("^(.-)\t(.-)\t(.-)\t(.-)\n$")
  T.eq(a0, s)
  T.eq(am1, "x=1")
  T.eq(am2, "-e")
  T.eq(am3, BIN)
end)

T.test("script: an error exits with status 1 and a traceback", function()
  local s = tmpscript("local function f() error('script failed') end\nf()\n")
  local out, err, code = run(shell_quote(s))
  os.remove(s)
  T.eq(out, "")
  T.ok(err:find("script failed", 1, true), err)
  T.ok(err:find("stack traceback", 1, true), err)
  T.eq(code, 1)
end)

T.test("script: a missing file is an error", function()
  local _, err, code = run("/nonexistent/file.lua")
  T.ok(err:find("cannot open", 1, true), err)
  T.eq(code, 1)
end)

T.test("- runs stdin as a script (with arguments)", function()
  local out, _, code = run("- x y", "local a, b = ...\nprint(a, b)\nprint(arg[1])\n")
  T.eq(out, "x\ty\nx\n")
  T.eq(code, 0)
end)

T.test("-- ends the options", function()
  local s = tmpscript("print('ran', ...)")
  local out = run("-- " .. shell_quote(s) .. " -v")
  os.remove(s)
  T.eq(out, "ran\t-v\n")
end)

T.test("-i runs the REPL after the script", function()
  local s = tmpscript("y = 5")
  local out, err, code = run("-i " .. shell_quote(s), "y * 2\n")
  os.remove(s)
  T.eq(out, "10\n", err)
  T.eq(code, 0)
end)

T.test("an unknown option prints the usage, exit 1", function()
  local out, err, code = run("-Z")
  T.eq(out, "")
  T.ok(err:find("unrecognized option '-Z'", 1, true) and err:find("usage:", 1, true), err)
  T.eq(code, 1)
  local _, err2, code2 = run("-e")
  T.ok(err2:find("'-e' needs argument", 1, true), err2)
  T.eq(code2, 1)
end)

T.test("LUA_INIT runs first; -E ignores it", function()
  local out = run("-e 'print(z)'", "", "env -u LUA_INIT_5_4 LUA_INIT='z = 7'")
  T.eq(out, "7\n")
  out = run("-e 'print(z)'", "", "env LUA_INIT='z = 7' LUA_INIT_5_4='z = 8'")
  T.eq(out, "8\n")
  out = run("-E -e 'print(z)'", "", "env LUA_INIT='z = 7' LUA_INIT_5_4='z = 8'")
  T.eq(out, "nil\n")
end)

T.test("-W turns warnings on", function()
  local _, err = run("-W -e 'warn(\"careful\")'")
  T.ok(err:find("careful", 1, true), err)
  local _, err2 = run("-e 'warn(\"careful\")'")
  T.eq(err2, "")
end)

T.test("package.path finds the project's Lua libraries", function()
  local out = run("-e 'print(package.searchpath(\"aiart.repl\", package.path) ~= nil)'")
  T.eq(out, "true\n")
  out = run("-e 'print(package.preload.aiart ~= nil)'")
  T.eq(out, "true\n")
end)

T.test("startup of -e '' is fast", function()
  local t0 = os.time()
  local p = io.popen(QBIN .. " -e 'local c = os.clock() print(c)'")
  local c = tonumber(p:read("l"))
  p:close()
  T.ok(c and c < 0.05, "cpu time at startup: " .. tostring(c))
  T.ok(os.time() - t0 <= 2)
end)

-- ------------------------------------------------------------------ the terminal, via tmux

T.test("interactive terminal (tmux): evaluation, completion, Ctrl-C, history, Ctrl-D", function()
  if not T.have("tmux") then
    print("  (skipped: tmux is not installed)")
    return
  end
  local home = os.tmpname()
  os.remove(home)
  os.execute("mkdir -p " .. shell_quote(home))
  local sock = "aiart_test_" .. tostring(os.time()) .. "_" .. tostring(math.random(1e6))
  local tmux = "tmux -L " .. sock .. " "
  local function sh(cmd) return os.execute(tmux .. cmd .. " >/dev/null 2>&1") end
  local function capture()
    local p = io.popen(tmux .. "capture-pane -p -t s 2>/dev/null")
    local s = p:read("a")
    p:close()
    return s
  end
  local function wait_for(pred, what)
    local s
    for _ = 1, 150 do -- up to 15 s: a loaded machine (CI) can be slow to redraw
      s = capture()
      if pred(s) then return s end
      os.execute("sleep 0.1")
    end
    error("timed out waiting for " .. what .. "; screen:\n" .. tostring(s), 2)
  end
  local function keys(...) -- literal text, or {key} for key names
    for _, k in ipairs({ ... }) do
      if type(k) == "table" then sh("send-keys -t s " .. k[1])
      else sh("send-keys -t s -l " .. shell_quote(k)) end
    end
  end
  local ok, e = pcall(function()
    -- without AIART_HISTORY the history goes to $HOME/.aiart_history
    local cmd = "env -u AIART_HISTORY HOME=" .. shell_quote(home) .. " NO_COLOR=1 " .. QBIN ..
        "; echo EXITED=$?; sleep 30"
    assert(sh("new-session -d -s s -x 120 -y 40 " .. shell_quote(cmd)), "tmux did not start")
    wait_for(function(s) return s:find("\n> ?\n") end, "the prompt")
    keys("1+1", { "Enter" })
    wait_for(function(s) return s:find("> 1+1\n2\n", 1, true) end, "1+1 -> 2")
    keys("ai.ran", { "Tab" })
    wait_for(function(s) return s:find("ai.randn", 1, true) and s:find("ai.randperm", 1, true) end,
             "the completions of ai.ran")
    -- a module completes to its methods and fields, not to _kinds or _order
    keys({ "C-u" }, "lin = ai.nn.Linear(2, 3)", { "Enter" })
    keys("lin:", { "Tab" }, { "Tab" })
    wait_for(function(s) return s:find("lin:forward", 1, true) and s:find("lin:parameters", 1, true) end,
             "the methods of a module after lin:")
    local screen = capture()
    T.ok(not screen:find("_kinds", 1, true) and not screen:find("_order", 1, true), screen)
    keys({ "C-u" }, "lin.we", { "Tab" })
    wait_for(function(s) return s:find("> lin.weight", 1, true) end, "lin.we completed to lin.weight")
    keys({ "C-u" }, "for i = 1, 1e13 do end", { "Enter" })
    os.execute("sleep 0.3")
    keys({ "C-c" })
    wait_for(function(s) return s:find("interrupted", 1, true) end, "interrupted")
    keys("3*3", { "Enter" })
    wait_for(function(s) return s:find("\n9\n", 1, true) end, "3*3 -> 9 after Ctrl-C")
    keys("this line is dropped", { "C-c" })
    keys("2+3", { "Enter" })
    wait_for(function(s) return s:find("\n5\n", 1, true) end, "2+3 -> 5 after Ctrl-C at the prompt")
    -- Ctrl-C inside one long C call (a matrix product of ~10 s here) stops it at its next block
    keys("a = ai.randn(8000, 8000)", { "Enter" })
    wait_for(function(s) return s:find("randn(8000, 8000)\n>", 1, true) end, "the prompt after randn")
    keys("b = a:matmul(a)", { "Enter" })
    os.execute("sleep 0.8")
    keys({ "C-c" })
    wait_for(function(s) return s:find("matmul: interrupted", 1, true) end, "matmul: interrupted")
    keys("a = nil; print(b == nil and 'no result')", { "Enter" })
    wait_for(function(s) return s:find("\nno result\n", 1, true) end, "no result after the interrupted matmul")
    keys({ "C-d" })
    wait_for(function(s) return s:find("EXITED=0", 1, true) end, "exit on Ctrl-D")
    local hist = readfile(home .. "/.aiart_history") or ""
    T.ok(hist:find("1+1", 1, true) and hist:find("2+3", 1, true), "history file: " .. hist)
    T.ok(not hist:find("dropped", 1, true), "a line cleared by Ctrl-C is not in the history")
  end)
  sh("kill-server")
  os.execute("rm -rf " .. shell_quote(home))
  if not ok then error(e, 0) end
end)

-- ------------------------------------------------------------------ standalone run

T.run_alone()
