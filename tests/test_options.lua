-- tests/test_options.lua: the options of the experiment scripts: rules (type, range, choices),
-- defaults computed from other options, rules across options, all checked before anything is
-- built; a bad value is a message without a traceback and a non-zero exit; --help of every
-- script; config.json holding the values used.
local T = require "helper"
local ai = require "aiart"

local bin = T.binary()
local dir = T.tmpdir()

-- Runs a script with key=value args: ok, exit code, combined output.
local function run(script, args)
  local p = io.popen(("%s scripts/%s %s 2>&1"):format(bin, script, args or ""))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, code, out
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function read_json(path)
  local f = assert(io.open(path, "r"))
  local s = f:read("a")
  f:close()
  return ai.json.decode(s)
end

-- A bad option: a non-zero exit before anything is built (no output folder), the message
-- (each of wants, found as plain text), no traceback.
local n_bad = 0
local function refused(script, args, ...)
  n_bad = n_bad + 1
  local out_dir = ("%s/bad%d"):format(dir, n_bad)
  local uses_out = script ~= "eval_fd.lua" and script ~= "sample.lua"
  local ok, code, out = run(script, args .. (uses_out and " out=" .. out_dir or ""))
  local what = script .. " " .. args
  T.ok(not ok and code == 1, what .. ": exit status " .. tostring(code) .. ": " .. out)
  for _, want in ipairs({...}) do T.ok(out:find(want, 1, true), what .. ": no '" .. want .. "' in: " .. out) end
  T.ok(not out:find("traceback", 1, true), what .. ": a traceback: " .. out)
  if uses_out then T.ok(not exists(out_dir), what .. ": the output folder was made") end
end

T.test("train_gan.lua: each bad option ends the script at start, naming the key, the value and the rule", function()
  refused("train_gan.lua", "steps=-5", "steps must be an integer >= 0, got '-5'")
  refused("train_gan.lua", "steps=1.5", "steps must be an integer >= 0, got '1.5'")
  refused("train_gan.lua", "lr=-1", "lr must be a number > 0, got '-1'")
  refused("train_gan.lua", "lr=0", "lr must be a number > 0, got '0'")
  refused("train_gan.lua", "batch_size=-3", "batch_size must be an integer >= 1, got '-3'")
  refused("train_gan.lua", "threads=-1", "threads must be an integer >= 0 and <= 1024, got '-1'")
  refused("train_gan.lua", "beta2=1.5", "beta2 must be a number >= 0 and < 1, got '1.5'")
  refused("train_gan.lua", "n_critic=0", "n_critic must be an integer >= 1, got '0'")
  refused("train_gan.lua", "sample_every=-1", "sample_every must be an integer >= 0, got '-1'")
  refused("train_gan.lua", "log_every=0", "log_every must be an integer >= 1, got '0'")
  refused("train_gan.lua", "on_nan=ignore", "on_nan must be stop or skip, got 'ignore'")
  refused("train_gan.lua", "loss=l2", "loss must be bce, hinge or wgan-gp, got 'l2'")
  refused("train_gan.lua", "arch=resnet", "arch must be mlp or dcgan, got 'resnet'")
  refused("train_gan.lua", "resume=maybe", "resume must be true or false, got 'maybe'")
  refused("train_gan.lua", "size=32", "size=32: the models are built for 28x28 images")
  refused("train_gan.lua", "stepz=3", "unknown key 'stepz'", "steps", "z_dim")
  refused("train_gan.lua", "oops", "expected key=value, got 'oops'")
end)

T.test("train_ddpm.lua: bad options and rules across options at start", function()
  refused("train_ddpm.lua", "mults=1,x", "mults must be a list of integers >= 1, got '1,x'")
  refused("train_ddpm.lua", "mults=", "mults must be a list of integers >= 1, got ''")
  refused("train_ddpm.lua", "n_samples=4", "path_samples=8 must be <= n_samples=4")
  refused("train_ddpm.lua", "n_samples=4 path_samples=5", "path_samples=5 must be <= n_samples=4")
  refused("train_ddpm.lua", "mults=1,2,2", "mults=1,2,2: 28x28 images allow up to 2 levels")
  refused("train_ddpm.lua", "ch=12", "ch=12, mults=1,2: the group norms need ch * mult a multiple of 8")
  refused("train_ddpm.lua", "schedule=quadratic", "schedule must be linear or cosine, got 'quadratic'")
  refused("train_ddpm.lua", "sample_every=-1", "sample_every must be an integer >= 0, got '-1'")
  refused("train_ddpm.lua", "T=0", "T must be an integer >= 1, got '0'")
  refused("train_ddpm.lua", "eta=-0.5", "eta must be a number >= 0, got '-0.5'")
  refused("train_ddpm.lua", "time_limit=-1", "time_limit must be a number >= 0, got '-1'")
end)

T.test("train_classifier, style_transfer, sample and eval_fd: bad options at start", function()
  refused("train_classifier.lua", "limit=50", "limit=50 leaves no full batch of batch_size=128")
  refused("train_classifier.lua", "limit=-5", "limit must be an integer >= 0, got '-5'")
  refused("train_classifier.lua", "epochs=0", "epochs must be an integer >= 1, got '0'")
  refused("train_classifier.lua", "steps=10", "unknown key 'steps'", "epochs")
  refused("style_transfer.lua", "init=foo", "init must be content or noise, got 'foo'")
  refused("style_transfer.lua", "optimizer=sgd", "optimizer must be lbfgs or adam, got 'sgd'")
  refused("style_transfer.lua", "size=1000", "size must be an integer >= 16 and <= 512, got '1000'")
  refused("style_transfer.lua", "content=" .. dir .. "/none.png", "content: cannot read " .. dir .. "/none.png")
  refused("sample.lua", "n=0", "n must be an integer >= 1, got '0'")
  refused("sample.lua", "sample_steps=-1", "sample_steps must be an integer >= 0, got '-1'")
  refused("sample.lua", "ckpt=" .. dir .. "/none.safetensors", "ckpt: cannot read " .. dir .. "/none.safetensors")
  refused("eval_fd.lua", "reference=val", "reference must be test or train, got 'val'")
  refused("eval_fd.lua", "limit=1", "limit=1: the distance needs at least 256 images of each set")
  refused("eval_fd.lua", "limit=255", "limit=255: the distance needs at least 256 images of each set")
  refused("sample.lua", "out=grid.jpg", "out=grid.jpg: sample.lua writes a PNG grid (out=name.png)",
          "PNG is its only image format")
  refused("eval_fd.lua", "classifier=" .. dir .. "/none", "classifier=" .. dir .. "/none: no such file",
          "trained first, once: ./aiart-lua scripts/train_classifier.lua")
end)

T.test("debug=true: a bad option shows its traceback", function()
  local ok, _, out = run("train_gan.lua", "steps=-5 debug=true out=" .. dir .. "/dbg")
  T.ok(not ok and out:find("steps must be an integer >= 0, got '-5'", 1, true), out)
  T.ok(out:find("stack traceback", 1, true), out)
  ok, _, out = run("train_gan.lua", "debug=maybe")
  T.ok(not ok and out:find("debug must be true or false", 1, true) and not out:find("traceback", 1, true), out)
end)

T.test("--help of every script: each key with its default and rule", function()
  local want = {
    ["train_gan.lua"] = {"batch_size", "32 mlp, 64 dcgan", "runs/<arch>-<loss>", "2e-4 (1e-4 wgan-gp)", "mlp or dcgan",
                         "integer >= 0", "stop or skip", "debug"},
    ["train_ddpm.lua"] = {"path_samples", "list of integers >= 1", "[1,2]", "linear or cosine"},
    ["train_classifier.lua"] = {"limit", "number > 0", "runs/classifier"},
    ["style_transfer.lua"] = {"content or noise", "integer >= 16 and <= 512"},
    ["sample.lua"] = {"sample_steps", "as trained"},
    ["eval_fd.lua"] = {"reference", "test or train"},
  }
  for script, keys in pairs(want) do
    local ok, code, out = run(script, "--help")
    T.ok(ok and code == 0, script .. " --help: " .. out)
    T.ok(out:find("usage: aiart-lua scripts/" .. script, 1, true), out)
    for _, k in ipairs(keys) do T.ok(out:find(k, 1, true), script .. " --help lacks '" .. k .. "': " .. out) end
  end
end)

T.test("config.json holds the values used (computed defaults, never resume=true) and starts the run again", function()
  local out = dir .. "/gan"
  local args = "threads=1 steps=1 sample_every=0 log_every=1 ckpt_every=1 loss=wgan-gp batch_size=8 out=" .. out
  local ok, _, log = run("train_gan.lua", args)
  T.ok(ok, log)
  local c = read_json(out .. "/config.json")
  T.eq({c.batch_size, c.lr, c.beta2, c.n_critic, c.out, c.resume, c.steps},
       {8, 1e-4, 0.9, 5, out, false, 1})
  T.eq(math.type(c.lr), "float")
  T.eq(ai.checkpoint.read(out .. "/last.safetensors").config.n_critic, 5)
  ok, _, log = run("train_gan.lua", args .. " steps=2 resume=true")
  T.ok(ok, log)
  c = read_json(out .. "/config.json")
  T.eq({c.resume, c.steps}, {false, 2})
  -- the recorded file as config=: the same run, from the start
  local again = dir .. "/gan_again"
  ok, _, log = run("train_gan.lua", "config=" .. out .. "/config.json out=" .. again)
  T.ok(ok, log)
  T.eq(#ai.metrics.read(again .. "/metrics.jsonl"), 2)
  local c2 = read_json(again .. "/config.json")
  T.eq({c2.n_critic, c2.lr, c2.out, c2.config}, {5, 1e-4, again, out .. "/config.json"})
  -- the defaults of mlp/bce
  ok, _, log = run("train_gan.lua", "threads=1 steps=1 sample_every=0 log_every=1 out=" .. dir .. "/gan_mlp")
  T.ok(ok, log)
  c = read_json(dir .. "/gan_mlp/config.json")
  T.eq({c.batch_size, c.lr, c.beta2, c.n_critic, c.arch, c.loss}, {32, 2e-4, 0.999, 1, "mlp", "bce"})
end)

T.test("train_gan.lua sample_every=0 (the two runs above): no grid on the way, one at the end of each", function()
  local out = dir .. "/gan"
  local p = io.popen("ls " .. out .. "/samples")
  local names = p:read("a")
  p:close()
  T.eq(names, "step_000001.png\nstep_000002.png\n")
end)

T.test("train_ddpm.lua: mults as a list of integers in config.json, which sample.lua reads", function()
  local out = dir .. "/ddpm"
  local ok, _, log = run("train_ddpm.lua", "threads=1 ch=8 mults=1,2.0 T=20 batch_size=4 steps=1 sample_steps=2 "
    .. "n_samples=2 path_samples=2 sample_every=0 log_every=1 out=" .. out)
  T.ok(ok, log)
  local c = read_json(out .. "/config.json")
  T.eq(c.mults, {1, 2})
  T.eq(math.type(c.mults[2]), "integer")
  ok, _, log = run("sample.lua", "ckpt=" .. out .. "/last.safetensors n=2 out=" .. dir .. "/d.idx")
  T.ok(ok, log)
  T.eq(ai.io.read_idx(dir .. "/d.idx").shape, {2, 28, 28})
end)

-- ------------------------------------------------------------------ config.parse's rules

T.test("config.parse: rules convert and check values from the command line and a JSON file", function()
  local computed = ai.config.computed
  local spec = {
    arch = {"mlp", "architecture", {"mlp", "dcgan"}},
    steps = {10, "steps", "integer >= 0"},
    lr = {2e-4, "rate", "number > 0"},
    t = {0, "seconds", "number >= 0"},
    beta = {0.9, "beta", "number >= 0 and < 1"},
    mults = {{1, 2}, "levels", "list of integers >= 1"},
    ws = {{0.5}, "weights", "list of numbers > 0"},
    amp = {false, "mixed precision", "boolean"},
    name = {"x", "a name", "string"},
    batch = {computed("8 mlp, 16 dcgan", function(c) return c.arch == "dcgan" and 16 or 8 end), "batch", "integer >= 1"},
  }
  local function parse(args) return ai.config.parse(args, spec, {name = "demo"}) end
  local c = parse({})
  T.eq({c.arch, c.steps, c.lr, c.t, c.mults, c.batch, c.amp}, {"mlp", 10, 2e-4, 0, {1, 2}, 8, false})
  -- Lua's rule for whole numbers: 2.0 is the integer 2, 1e3 the integer 1000
  c = parse({"steps=2.0", "t=1.5", "lr=1", "arch=dcgan", "mults=[3, 4]", "ws=1,2", "--amp", "name=42"})
  T.eq({c.steps, c.t, c.lr, c.batch, c.mults, c.ws, c.amp, c.name}, {2, 1.5, 1.0, 16, {3, 4}, {1.0, 2.0}, true, "42"})
  T.eq({math.type(c.steps), math.type(c.lr), math.type(c.ws[1])}, {"integer", "float", "float"})
  T.eq(math.type(parse({"t=2.0"}).t), "integer") -- an integer default: integral values are integers
  T.eq(parse({"steps=1e3"}).steps, 1000)
  T.eq(parse({"batch=3", "arch=dcgan"}).batch, 3) -- given, not computed
  T.expect_error("demo: steps must be an integer >= 0, got '2.5'", parse, {"steps=2.5"})
  T.expect_error("demo: lr must be a number > 0, got '1e400'", parse, {"lr=1e400"})
  T.expect_error("demo: lr must be a number > 0, got 'fast'", parse, {"lr=fast"})
  T.expect_error("demo: beta must be a number >= 0 and < 1, got '1'", parse, {"beta=1"})
  T.expect_error("demo: ws must be a list of numbers > 0, got '1,0'", parse, {"ws=1,0"})
  T.expect_error("demo: mults must be a list of integers >= 1, got '[1, {}]'", parse, {"mults=[1, {}]"})
  T.expect_error("demo: batch must be an integer >= 1, got '0'", parse, {"batch=0"})
  T.expect_error("demo: unknown key 'stepz' (known: amp, arch, batch, beta, lr, mults, name, steps, t, ws)", parse,
                 {"stepz=1"})
  -- a JSON file: the same rules, naming the file
  local path = dir .. "/c.json"
  local f = assert(io.open(path, "w"))
  f:write('{"steps": 2.0, "arch": "dcgan", "mults": [2], "config": "an older file"}')
  f:close()
  c = parse({"config=" .. path})
  T.eq({c.steps, math.type(c.steps), c.batch, c.mults, c.config}, {2, "integer", 16, {2}, path})
  f = assert(io.open(path, "w"))
  f:write('{"steps": -1}')
  f:close()
  T.expect_error("demo: steps in " .. path .. " must be an integer >= 0, got -1", parse, {"config=" .. path})
end)

T.test("config.parse: --help shows rules and computed defaults; a check across options; bad declarations", function()
  local computed = ai.config.computed
  local spec = {n = {4, "samples", "integer >= 1"}, k = {2, "shown", "integer >= 1"},
                out = {computed("runs/<n>", function(c) return "runs/" .. c.n end), "folder", "string"}}
  local printed
  ai.config.parse({"--help"}, spec, {print = function(s) printed = s end, exit = function() end})
  T.ok(printed:find("integer >= 1", 1, true) and printed:find("runs/<n>", 1, true) and printed:find("samples", 1, true),
       printed)
  local function check(c) if c.k > c.n then return ("k=%d must be <= n=%d"):format(c.k, c.n) end end
  T.eq(ai.config.parse({"n=7"}, spec, {check = check}).out, "runs/7")
  T.expect_error("config: k=5 must be <= n=4", ai.config.parse, {"k=5"}, spec, {check = check})
  T.expect_error("the rule of n: 'int >= 1' starts with none of", ai.config.parse, {}, {n = {4, "n", "int >= 1"}})
  T.expect_error("the rule of n: '=> 1' is not a bound", ai.config.parse, {}, {n = {4, "n", "integer => 1"}})
  T.expect_error("the rule of s: a range is for numbers only", ai.config.parse, {}, {s = {"a", "s", "string > 1"}})
  T.expect_error("the default of n (0) is not an integer >= 1", ai.config.parse, {}, {n = {0, "n", "integer >= 1"}})
  T.expect_error("n has a computed default and no rule", ai.config.parse, {},
                 {n = {computed("?", function() return 1 end), "n"}})
  T.expect_error("the default of n computed from the other options (0) is not an integer >= 1", ai.config.parse, {},
                 {n = {computed("?", function() return 0 end), "n", "integer >= 1"}})
end)
