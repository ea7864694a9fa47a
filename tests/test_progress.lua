-- tests/test_progress.lua: ai.progress (bars on pipes and terminals), ai.config (key=value
-- parsing, JSON files, errors, --help), ai.metrics (JSON lines) and ai.plot (loss curves).
-- Run alone: ./aiart-lua tests/run.lua test_progress
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"

local test, eq, ok, expect_error = T.test, T.eq, T.ok, T.expect_error

local function run(script, args)
  local path = T.tmpdir() .. "/s.lua"
  T.writefile(path, script)
  local code, out = T.sh(("%s %s %s"):format(T.shell_quote(T.binary()), T.shell_quote(path), args or ""))
  return out, code
end

-- ------------------------------------------------------------------ progress

test("progress: plain lines on a pipe, every N steps and at close", function()
  local out, code = run([[
local ai = require "aiart"
local bar = ai.progress.bar{total = 10, desc = "train", every_steps = 4}
for i = 1, 10 do bar:update(1, {loss_d = 0.5 / i, loss_g = i}) end
bar:close()
for i in ai.progress.range(3, {desc = "eval"}) do end
]])
  eq(code, 0, out)
  ok(not out:find("\r", 1, true), "no carriage returns on a pipe")
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  eq(#lines, 4, out)
  ok(lines[1]:find("^train 4/10 %(40%%%)"), lines[1])
  ok(lines[2]:find("^train 8/10 %(80%%%)"), lines[2])
  ok(lines[3]:find("^train 10/10 %(100%%%)"), lines[3])
  ok(lines[3]:find("loss_d=0.05 loss_g=10", 1, true), lines[3])
  ok(lines[3]:find("it/s", 1, true) and lines[3]:find("eta", 1, true), lines[3])
  ok(lines[4]:find("^eval 3/3"), lines[4])
end)

test("progress: plain lines under an MPI launcher, whose ranks see a pseudo-terminal", function()
  if not T.have("script") then print("test_progress.lua: skipped the terminal check: no `script` (bsdutils)") return end
  local path = T.tmpdir() .. "/tty.lua"
  T.writefile(path, 'print(require("aiart").progress.bar{total = 3}.tty)')
  local function tty(env)
    local inner = ("%s %s %s"):format(env, T.shell_quote(T.binary()), T.shell_quote(path))
    local _, out = T.sh("script -qc " .. T.shell_quote(inner) .. " /dev/null")
    return out:match("(%a+)%s*$")
  end
  eq(tty(""), "true")
  eq(tty("OMPI_COMM_WORLD_SIZE=2"), "false")
  eq(tty("PMI_SIZE=4"), "false")
end)

test("progress: in-place redraws on a terminal", function()
  local dir = T.tmpdir()
  local f = assert(io.open(dir .. "/tty.txt", "w"))
  local bar = ai.progress.bar{total = 4, desc = "d", file = f, tty = true}
  for _ = 1, 4 do bar:update(1, {loss = ai.tensor(1.5)}) end
  bar:write("note")
  bar:close()
  bar:close()
  f:close()
  local text = io.open(dir .. "/tty.txt"):read("a")
  ok(text:find("\r", 1, true), "carriage returns")
  ok(text:find("4/4", 1, true), text)
  ok(text:find("loss=1.5", 1, true), text)
  ok(text:find("note\n", 1, true), text)
  eq(text:sub(-1), "\n")
  -- a bar without a total
  local g = assert(io.open(dir .. "/tty2.txt", "w"))
  local b2 = ai.progress.bar{file = g, tty = true}
  b2:update(7)
  b2:close()
  g:close()
  ok(io.open(dir .. "/tty2.txt"):read("a"):find("7 [", 1, true))
  expect_error("unknown option 'totl'", ai.progress.bar, {totl = 3})
  -- isatty of a file is false
  local h = assert(io.open(dir .. "/x", "w"))
  eq(ai._loader.isatty(h), false)
  h:close()
  eq(ai.progress.format_time(3725), "1:02:05")
  eq(ai.progress.format_time(65), "01:05")
end)

-- ------------------------------------------------------------------ config

test("config: defaults, typed key=value, JSON file, flags", function()
  local defaults = {lr = 2e-4, batch_size = 64, out = "runs/x", amp = false, betas = {0.5, 0.999}, name = "gan"}
  local c = ai.config.parse({"lr=1e-3", "batch_size=32", "amp=true", "out=a=b", "betas=0.9,0.99"}, defaults)
  eq(c.lr, 1e-3)
  eq(c.batch_size, 32)
  eq(math.type(c.batch_size), "integer")
  eq(c.amp, true)
  eq(c.out, "a=b")
  eq(c.betas, {0.9, 0.99})
  eq(c.name, "gan")
  eq(defaults.batch_size, 64) -- untouched
  eq(math.type(ai.config.parse({"lr=1"}, defaults).lr), "float")
  eq(ai.config.parse({"batch_size=0.5"}, defaults).batch_size, 0.5) -- a default of 0 often means "number"
  eq(ai.config.parse({"--amp"}, defaults).amp, true)
  eq(ai.config.parse({"--lr=0.5", "--batch_size", "8"}, defaults).batch_size, 8)
  eq(ai.config.parse({"betas=[0.1, 0.2]"}, defaults).betas, {0.1, 0.2})
  eq(ai.config.parse({"amp=no"}, defaults).amp, false)
  -- a JSON file first, then the command line
  local dir = T.tmpdir()
  local f = assert(io.open(dir .. "/c.json", "w"))
  f:write('{"lr": 0.01, "batch_size": 16, "name": "from-file"}')
  f:close()
  local c2 = ai.config.parse({"name=cli", "config=" .. dir .. "/c.json"}, defaults)
  eq(c2.lr, 0.01)
  eq(c2.batch_size, 16)
  eq(c2.name, "cli")
  eq(c2.config, dir .. "/c.json")
end)

test("config: defaults with descriptions beside them", function()
  local spec = {lr = {0, "0: the default rate"}, steps = {100, "steps"}, names = {{"a", "b"}, "a list"},
                out = {"o", "folder"}}
  local c = ai.config.parse({"lr=2e-4", "names=x,y"}, spec)
  eq(c.lr, 2e-4)
  eq(c.steps, 100)
  eq(c.names, {"x", "y"})
  eq(c.out, "o")
  local printed
  ai.config.parse({"--help"}, spec, {help = "Trains things.", print = function(s) printed = s end, exit = function() end})
  ok(printed:find("Trains things.", 1, true) and printed:find("0: the default rate", 1, true), printed)
  expect_error("unknown key 'stepz' (known: lr, names, out, steps)", ai.config.parse, {"stepz=3"}, spec)
  -- a plain list default of two strings is not mistaken for a description when others are plain
  eq(ai.config.parse({}, {pair = {"a", "b"}, n = 1}).pair, {"a", "b"})
end)

test("config: errors name the key and list the known ones", function()
  local defaults = {lr = 2e-4, batch_size = 64, amp = false}
  local err = expect_error("unknown key 'lrr'", ai.config.parse, {"lrr=1"}, defaults)
  ok(err:find("known: amp, batch_size, lr", 1, true), err)
  expect_error("batch_size must be a number, got '1.5x'", ai.config.parse, {"batch_size=1.5x"}, defaults)
  expect_error("lr must be a number, got 'fast'", ai.config.parse, {"lr=fast"}, defaults)
  expect_error("amp must be true or false", ai.config.parse, {"amp=maybe"}, defaults)
  expect_error("expected key=value, got 'oops'", ai.config.parse, {"oops"}, defaults)
  local dir = T.tmpdir()
  local f = assert(io.open(dir .. "/bad.json", "w"))
  f:write('{"epochs": 3}')
  f:close()
  expect_error("unknown key 'epochs'", ai.config.parse, {"config=" .. dir .. "/bad.json"}, defaults)
  expect_error("cannot read config file", ai.config.parse, {"config=" .. dir .. "/none.json"}, defaults)
end)

test("config: --help prints the keys with defaults and descriptions and exits 0", function()
  local printed, code
  ai.config.parse({"--help"}, {lr = 0.1, out = "o"}, {help = {lr = "learning rate"}, description = "Demo.",
    print = function(s) printed = s end, exit = function(c) code = c end})
  eq(code, 0)
  ok(printed:find("Demo.", 1, true) and printed:find("lr", 1, true) and printed:find("learning rate", 1, true)
     and printed:find('"o"', 1, true), printed)
  local out, status = run([[
local ai = require "aiart"
local cfg = ai.config.parse(arg, {epochs = 5, lr = 0.001}, {help = {epochs = "passes over the data"}})
print("not reached", cfg.epochs)
]], "--help")
  eq(status, 0, out)
  ok(out:find("epochs", 1, true) and out:find("passes over the data", 1, true), out)
  ok(not out:find("not reached", 1, true), out)
  local out2, status2 = run([[
local ai = require "aiart"
local cfg = ai.config.parse(arg, {epochs = 5})
print("epochs", cfg.epochs)
]], "epochs=7")
  eq(status2, 0, out2)
  ok(out2:find("epochs\t7", 1, true), out2)
end)

-- ------------------------------------------------------------------ metrics and plots

test("metrics: JSON lines round trip, special numbers, a torn last line", function()
  local dir = T.tmpdir()
  local path = dir .. "/m.jsonl"
  local old = assert(io.open(path, "w"))
  old:write('{"step": 0}\n')
  old:close()
  local log = ai.metrics.logger(path) -- starts the file afresh
  for i = 1, 5 do log:write{step = i, loss_d = 1 / i, loss_g = ai.tensor(i * 0.5), tag = "x"} end
  log:write{step = 6, loss_d = 0 / 0, loss_g = math.huge, nested = {a = {1, 2}}}
  log:close()
  local recs = ai.metrics.read(path)
  eq(#recs, 6)
  eq(recs[2].step, 2)
  eq(math.type(recs[2].step), "integer")
  eq(recs[3].loss_d, 1 / 3)
  eq(recs[4].loss_g, 2.0)
  ok(recs[6].loss_d ~= recs[6].loss_d)
  eq(recs[6].loss_g, math.huge)
  eq(recs[6].nested, {a = {1, 2}})
  -- appending, and a crash that left half a line
  local log2 = ai.metrics.open(path, {append = true})
  log2:write{step = 7}
  log2:close()
  local f = assert(io.open(path, "a"))
  f:write('{"step": 8, "lo')
  f:close()
  recs = ai.metrics.read(path)
  eq(#recs, 7)
  eq(recs[7].step, 7)
  local xs, ys = ai.metrics.column(recs, "loss_d")
  eq(#xs, 6)
  eq(xs[1], 1)
  eq(ys[1], 1.0)
  -- a broken line in the middle is an error naming it
  local g = assert(io.open(dir .. "/bad.jsonl", "w"))
  g:write('{"step": 1}\nnot json\n{"step": 3}\n')
  g:close()
  expect_error("line 2", ai.metrics.read, dir .. "/bad.jsonl")
end)

test("plot: curves to a PNG of the requested size", function()
  local dir = T.tmpdir()
  local recs = {}
  for i = 1, 300 do recs[i] = {step = i * 10, loss_d = 0.7 + 0.2 * math.sin(i / 20), loss_g = 2 * math.exp(-i / 100)} end
  recs[50].loss_g = 0 / 0 -- a gap
  local path = ai.plot.curves(dir .. "/loss.png", recs, {keys = {"loss_d", "loss_g"}, width = 320, height = 200,
                                                         smooth = 0.8, title = "losses"})
  local img = ai.image.load(path)
  eq(img.shape, {3, 200, 320})
  -- white background, some ink of the first series' colour (tab:blue)
  ok(img:mean():item() > 0.8)
  local blue = (img[1] - 0.122):abs():lt(0.01):logical_and((img[3] - 0.706):abs():lt(0.01))
  ok(blue:sum():item() > 50, "blue pixels")
  -- the default size, every numeric key, log scale
  local p2 = ai.plot.curves(dir .. "/l2.png", recs, {log_y = true})
  eq(ai.image.load(p2).shape, {3, 360, 640})
  -- empty records still give an image
  eq(ai.plot.render({}, {width = 100, height = 60}).shape, {3, 60, 100})
  eq(ai.plot.ticks(0, 1, 5), {0, 0.2, 0.4, 0.6, 0.8, 1.0})
  -- the layout: the legend above the plot (never over a curve), every label inside the picture,
  -- the last x tick label too, and a y-axis label
  for _, size in ipairs({{640, 360}, {320, 200}}) do
    local W, H = size[1], size[2]
    local lay = ai.plot.layout(recs, {keys = {"loss_d", "loss_g"}, width = W, height = H, ylabel = "loss",
                                      title = "gan"})
    local p, l = lay.plot, lay.legend
    ok(l[4] < p[2], ("the legend %s reaches into the plot %s"):format(T.show(l), T.show(p)))
    ok(l[1] >= 0 and l[3] < W, "the legend leaves the picture")
    local texts = {}
    for _, b in ipairs(lay.labels) do
      texts[b.text] = true
      ok(b[1] >= 0 and b[2] >= 0 and b[3] < W and b[4] < H, ("label %s at %s is cut off"):format(b.text, T.show(b)))
    end
    ok(texts["3000"] and texts.loss and texts.step, T.show(texts))
  end
  -- one series: its key is the y label unless told otherwise
  local lay = ai.plot.layout(recs, {keys = {"loss_g"}})
  ok(lay.labels[#lay.labels].text == "loss_g", T.show(lay.labels[#lay.labels]))
  expect_error("unknown option 'colour'", ai.plot.curves, dir .. "/x.png", recs, {colour = 1})
end)
