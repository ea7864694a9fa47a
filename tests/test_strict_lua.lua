-- tests/test_strict_lua.lua: nothing silent in the Lua library. Modules in plain tables are
-- found, model conversion keeps the optimizer's tensors, Lua's own loops work over datasets and
-- refuse loaders, whole-number floats are integers, unknown options and extra arguments are
-- errors, and errors name the caller's file and line (checked through script files).
local T = require "helper"
local ai = require "aiart"
local nn, F = ai.nn, ai.F
local data = ai.data
local diffusion = require "aiart.diffusion"
local models = require "aiart.models"

local eq, ok, expect_error = T.eq, T.ok, T.expect_error

local function names_of(m)
  local out = {}
  for name in m:named_parameters() do out[#out + 1] = name end
  return out
end

-- ---------------------------------------------------------------- modules in plain tables

-- The Lua idiom and the ModuleList spelling of the same model.
local TableNet = nn.Module:extend("TableNet")
function TableNet:init(list)
  self.inp = nn.Linear(2, 3)
  if list then self.blocks = nn.ModuleList() else self.blocks = {} end
  for i = 1, 2 do
    local b = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    if list then self.blocks:append(b) else self.blocks[i] = b end
  end
  self.out = nn.Linear(3, 1)
end
function TableNet:forward(x)
  x = self.inp(x)
  for _, b in ipairs(self.blocks) do x = b(x) end
  return self.out(x)
end

T.test("plain tables: modules filled in after assignment are found, named as ModuleList names them", function()
  local t, l = TableNet(false), TableNet(true)
  eq(names_of(t), names_of(l))
  eq(names_of(t)[3], "blocks.0.0.weight")
  eq(t:state_dict_keys(), l:state_dict_keys())
  eq(#t:parameters(), #l:parameters())
  eq(t:num_parameters(), l:num_parameters())
  eq(#t:buffers(), 6) -- the batch norms' statistics
  -- the state of one loads into the other, both ways
  t:load_state_dict(l:state_dict())
  local x = ai.randn(4, 2)
  t:eval()
  l:eval()
  T.near(t(x), l(x), 1e-6)
  -- train/eval, apply, zero_grad and the printout reach them
  ok(t.blocks[2][2].training == false, "eval reached a module inside the table")
  t:train()
  ok(t.blocks[2][2].training == true, "train reached a module inside the table")
  local seen = 0
  t:apply(function(m) if nn.isinstance(m, nn.BatchNorm1d) then seen = seen + 1 end end)
  eq(seen, 2)
  t(x):sum():backward()
  ok(t.blocks[1][1].weight.grad ~= nil)
  t:zero_grad()
  ok(t.blocks[1][1].weight.grad == nil, "zero_grad cleared a gradient inside the table")
  local s = tostring(t)
  ok(s:find("(blocks.0): Sequential(", 1, true) and s:find("(out): Linear", 1, true), s)
  -- the optimizer, made from parameters(), trains them
  local opt = ai.optim.SGD(t:parameters(), {lr = 0.1})
  local w = t.blocks[2][1].weight:clone()
  t(x):pow(2):mean():backward()
  opt:step()
  ok((t.blocks[2][1].weight - w):abs():max():item() > 0, "a weight inside the table was updated")
end)

T.test("plain tables: nested tables, string keys, parameters, cycles, literals, reassignment", function()
  local m = nn.Module()
  m.heads = {}
  m.heads.a = {nn.Linear(1, 2)}
  m.heads.b = nn.Linear(2, 1)
  m.heads.self = m.heads -- a cycle ends
  m.heads.owner = m -- the module itself is not walked twice
  m.scales = {nn.Parameter(ai.ones(2)), ai.zeros(2)} -- a parameter counts; a plain tensor does not
  m.opts = {padding = 1, sizes = {1, 2}}
  -- as PyTorch orders them: the module's own parameters (those in its tables included) first,
  -- then its children's
  eq(names_of(m), {"scales.0", "heads.a.0.weight", "heads.a.0.bias", "heads.b.weight", "heads.b.bias"})
  -- a table literal of modules is walked too (no longer refused with a ModuleList hint)
  m.list = {nn.Linear(1, 1), nn.ReLU()}
  eq(#m:parameters(), 7)
  -- a field that held a number and then a module: the module is registered
  m.late = 0
  m.late = nn.Linear(1, 1)
  eq(#m:parameters(), 9)
  -- a table replaced by a number is a plain field again
  m.list = 3
  eq(#m:parameters(), 7)
  eq(m.list, 3)
  -- a module under a key that makes no name is an error, not left out
  local bad = nn.Module()
  bad.t = {[true] = nn.Linear(1, 1)}
  expect_error("the table 't' holds a module under the key true", function() return bad:parameters() end)
  -- a module both in a table and a child is listed once, under its first name
  local shared = nn.Linear(1, 1)
  local s = nn.Module()
  s.first = shared
  s.again = {shared}
  eq(names_of(s), {"first.weight", "first.bias"})
end)

T.test("plain tables: containers count only their children", function()
  local seq = nn.Sequential(nn.Linear(1, 1), nn.ReLU())
  seq.sizes = {1, 2} -- a plain table on a container
  eq(#seq, 2)
  seq:append(nn.Tanh())
  eq(#seq, 3)
  ok(nn.isinstance(seq[3], nn.Tanh))
end)

-- ---------------------------------------------------------------- conversion in place

T.test("m:double() converts in place: an optimizer made before goes on training the model", function()
  ai.manual_seed(1)
  local m = TableNet(false)
  local opt = ai.optim.Adam(m:parameters(), {lr = 1e-2})
  local ema = ai.optim.EMA(m, {decay = 0.5})
  local x = ai.randn(8, 2)
  m(x):pow(2):mean():backward()
  opt:step()
  ema:update()
  local p = m.blocks[1][1].weight
  m:double()
  ok(rawequal(p, m.blocks[1][1].weight), "the same parameter object")
  eq(p.dtype, "f64")
  ok(p.requires_grad and nn.is_parameter(p))
  eq(p.grad.dtype, "f64") -- the gradient is converted too
  eq(m.blocks[1][2].running_mean.dtype, "f64")
  eq(m.blocks[1][2].num_batches_tracked.dtype, "i64")
  ok(rawequal(opt.param_groups[1].params[3], p))
  local before = p:clone()
  opt:zero_grad()
  local loss = m(x:double()):pow(2):mean()
  eq(loss.dtype, "f64")
  loss:backward()
  opt:step() -- its f32 state follows the parameters
  ema:update()
  ok((p - before):abs():max():item() > 0, "the optimizer made before :double() still updates the model")
  eq(opt.state[p].exp_avg.dtype, "f64")
  -- Torch7's m:type and PyTorch's m:to
  m:type("torch.FloatTensor")
  eq(p.dtype, "f32")
  m:to("f64")
  eq(p.dtype, "f64")
  expect_error("TableNet:to: dtype must be 'f32' or 'f64'", function() m:to("i64") end)
  expect_error("TableNet:type: expected a dtype", function() m:type() end)
end)

-- ---------------------------------------------------------------- save and image.save

T.test("ai.save of a model or an optimizer names state_dict and ai.checkpoint", function()
  local dir = T.tmpdir()
  local m = nn.Linear(2, 3)
  expect_error("save: got a module (Linear), not a table {name = tensor, ...}: pass model:state_dict(), or use ai.checkpoint",
    ai.save, dir .. "/m.safetensors", m)
  expect_error("got an optimizer (Adam)", ai.save, dir .. "/o.safetensors", ai.optim.Adam(m:parameters()))
  expect_error("ai.checkpoint.save(path, {optimizer = opt})", ai.save, dir .. "/o.safetensors", ai.optim.Adam(m:parameters()))
  ai.save(dir .. "/m.safetensors", m:state_dict())
  eq(#ai.load(dir .. "/m.safetensors").weight, 3)
end)

T.test("image.save refuses an extension it cannot write, naming those it can", function()
  local dir = T.tmpdir()
  local img = ai.rand(3, 4, 4)
  expect_error("image.save: cannot write '.jpg' files (" .. dir .. "/x.jpg): it writes .png", ai.image.save, dir .. "/x.jpg", img)
  expect_error("cannot write '.jpeg' files", ai.image.save, dir .. "/x.jpeg", img)
  ok(not T.exists(dir .. "/x.jpg"), "nothing was written")
  ai.image.save(dir .. "/x.PNG", img)
  ai.image.save(dir .. "/noext", img) -- no extension: PNG bytes, as before
  eq(T.readfile(dir .. "/x.PNG"):sub(2, 4), "PNG")
end)

-- ---------------------------------------------------------------- Lua's own loops

local function check_sequence(ds, n, what)
  eq(#ds, n, what .. ": #ds")
  local count = 0
  for i, s in ipairs(ds) do
    count = count + 1
    local x, y = ds:get(i)
    ok(getmetatable(s) ~= nil and #s >= 1, what .. ": a sample is a list")
    T.near(s[1], x, 0, what .. ": ds[i][1] is ds:get(i)'s x")
    if ai.is_tensor and ai.is_tensor(y) or type(y) == "userdata" then T.near(s[2], y, 0, what .. ": ds[i][2] is ds:get(i)'s y")
    else eq(s[2], y, what .. ": ds[i][2] is ds:get(i)'s y") end
  end
  eq(count, n, what .. ": ipairs ran over every sample and ended")
  local viapairs = 0
  for i, s in pairs(ds) do viapairs = viapairs + 1; ok(s[1] ~= nil and i == viapairs) end
  eq(viapairs, n, what .. ": pairs")
  ok(ds[n + 1] == nil, what .. ": ds[#ds + 1] is nil")
  expect_error("index 0 out of range 1.." .. n, function() return ds[0] end)
  expect_error("index " .. (n + 2) .. " out of range", function() return ds[n + 2] end)
  expect_error("index must be an integer, got 1.5", function() return ds[1.5] end)
  ok(ds[1.0] ~= nil, what .. ": 1.0 is the index 1")
end

T.test("ds[i] is ds:get(i) for every dataset, and ipairs/pairs walk it to its end", function()
  ai.manual_seed(2)
  local x, y = ai.randn(5, 3), ai.arange(1, 6)
  local td = data.TensorDataset(x, y)
  check_sequence(td, 5, "TensorDataset")
  check_sequence(data.TensorDataset(x), 5, "TensorDataset without targets")
  check_sequence(data.Subset(td, {5, 1}), 2, "Subset")
  check_sequence(data.ConcatDataset{td, td}, 10, "ConcatDataset")
  check_sequence(td:map(function(a, b) return a * 2, b end), 5, "map")
  local parts = data.random_split(td, {3, 2}, {seed = 1})
  check_sequence(parts[1], 3, "random_split part")
  -- the labelled datasets of files
  local dir = T.tmpdir()
  ai.io.write_idx(dir .. "/train-images-idx3-ubyte", ai.randint(0, 255, 4, 5, 5, {dtype = "u8"}))
  ai.io.write_idx(dir .. "/train-labels-idx1-ubyte", ai.tensor({0, 1, 2, 3}, {dtype = "u8"}))
  check_sequence(data.fashion_mnist{root = dir}, 4, "fashion_mnist")
  check_sequence(data.mnist{root = dir, transform = false}, 4, "mnist")
  os.execute("mkdir -p '" .. dir .. "/imgs/a' '" .. dir .. "/imgs/b'")
  ai.image.save(dir .. "/imgs/a/1.png", ai.rand(3, 4, 4))
  ai.image.save(dir .. "/imgs/b/2.png", ai.rand(3, 4, 4))
  check_sequence(data.ImageFolder{root = dir .. "/imgs"}, 2, "ImageFolder")
  check_sequence(data.ImageFolder{root = dir .. "/imgs", preload = true}, 2, "ImageFolder preloaded")
  -- the sample is what collate takes
  local xb, yb = data.collate{td[1], td[2]}
  eq(xb.shape, {2, 3})
  eq(yb:tolist(), {1, 2})
  -- the usual slip, local x, y = ds[i], is an error that says what to write
  expect_error("write local x, y = ds:get(i)", function() local a = td[1]; return a:view(-1) end)
end)

T.test("a DataLoader is no sequence: ipairs and pairs fail before the first batch, naming loader:iter()", function()
  local loader = data.DataLoader(data.TensorDataset(ai.randn(6, 2)), {batch_size = 2})
  eq(#loader, 3)
  local ran = 0
  expect_error("for x, y in loader:iter() do", function() for _ in ipairs(loader) do ran = ran + 1 end end)
  expect_error("for x, y in loader:iter() do", function() for _ in pairs(loader) do ran = ran + 1 end end)
  eq(ran, 0)
  local n = 0
  for xb in loader:iter() do n = n + 1; eq(xb.shape, {2, 2}) end
  eq(n, 3)
end)

-- ---------------------------------------------------------------- whole-number floats

T.test("whole-number floats are integers everywhere (Lua's rule); 2.5 names the function and the argument", function()
  local util = require "aiart.util"
  eq(math.type(util.int("f", "n", 4.0)), "integer")
  expect_error("f: n must be a positive integer, got 2.5", util.int, "f", "n", 2.5, 1)
  expect_error("f: n must be an integer, got 'x'", util.int, "f", "n", "x")
  local ds = data.TensorDataset(ai.randn(10, 2))
  local loader = data.DataLoader(ds, {batch_size = 4.0, prefetch = 2.0, seed = 7.0})
  eq(math.type(loader.batch_size), "integer")
  eq(#loader, 3)
  expect_error("DataLoader: batch_size must be a positive integer, got 2.5", data.DataLoader, ds, {batch_size = 2.5})
  local parts = data.random_split(ds, {5.0, 5.0}, {seed = 3.0})
  eq({#parts[1], #parts[2]}, {5, 5})
  eq(#data.random_split(ds, {0.5, 0.5}, {seed = 1})[1], 5) -- fractions stay fractions
  expect_error("random_split: seed must be an integer, got 1.5", data.random_split, ds, {5, 5}, {seed = 1.5})
  local n = 0
  for _ in ai.progress.range(1e3, {disable = true}) do n = n + 1 end
  eq(n, 1000)
  expect_error("progress.range: n must be a non-negative integer, got 2.5", ai.progress.range, 2.5)
  local lin = nn.Linear(2.0, 3)
  eq(math.type(lin.in_features), "integer")
  expect_error("Linear: in_features must be a positive integer, got 2.5", nn.Linear, 2.5, 3)
  eq(ai.image.grid(ai.rand(4, 1, 2, 2), {nrow = 2.0, padding = 0.0}).shape, {1, 4, 4})
  eq(ai.image.resize(ai.rand(1, 4, 4), {size = 2.0}).shape, {1, 2, 2})
  eq(data.transforms.random_crop(2.0, {padding = 1.0})(ai.rand(1, 4, 4)).shape, {1, 2, 2})
  eq(#diffusion.schedule(10.0).betas, 10)
  eq(F.one_hot(ai.tensor({1, 2}, {dtype = "i64"}), 3.0).shape, {2, 3})
  expect_error("one_hot: num_classes must be a positive integer, got 2.5", F.one_hot, ai.tensor({1}, {dtype = "i64"}), 2.5)
end)

-- ---------------------------------------------------------------- unknown options, extra arguments

T.test("unknown option keys are refused, listing the known ones, in every Lua function with options", function()
  local x = ai.randn(2, 3)
  local cases = {
    {"gelu: unknown option 'approx' (known: approximate)", F.gelu, x, {approx = "tanh"}},
    {"normalize: unknown option 'dims'", F.normalize, x, {dims = 2}},
    {"cosine_similarity: unknown option 'p'", F.cosine_similarity, x, x, {p = 2}},
    {"huber_loss: unknown option 'beta' (known: delta, reduction)", F.huber_loss, x, x, {beta = 1}},
    {"init.kaiming_uniform_: unknown option 'mod'", nn.init.kaiming_uniform_, ai.empty(2, 3), {mod = "fan_out"}},
    {"init.xavier_normal_: unknown option 'gian' (known: gain)", nn.init.xavier_normal_, ai.empty(2, 3), {gian = 2}},
    {"clip_grad_norm_: unknown option 'norm'", nn.utils.clip_grad_norm_, {ai.ones(2)}, 1, {norm = 2}},
    {"image.resize: unknown option 'szie'", ai.image.resize, ai.rand(1, 4, 4), {szie = 2}},
    {"image.show: unknown option 'nrows'", ai.image.show, ai.rand(1, 4, 4), {nrows = 2}},
    {"diffusion.schedule: unknown option 'beta_begin' (known: beta_end, beta_start, zero_snr)", diffusion.schedule, 10, "linear", {beta_begin = 1e-4}},
    {"diffusion.sample: unknown option 'step'", diffusion.sample, function() end, diffusion.schedule(4), {1, 1, 2, 2}, {step = 2}},
    {"diffusion.ddpm_sample: unknown option 'steps' (known: on_step)", diffusion.ddpm_sample, function() end,
      diffusion.schedule(4), {1, 1, 2, 2}, {steps = 2}},
    {"models.mlp_gan: unknown option 'zdim'", models.mlp_gan, {zdim = 10}},
    {"models.dcgan: unknown option 'z'", models.dcgan, {z = 10}},
    {"UNet: unknown option 'channels' (known: ch, classes, in_channels, mults)", models.UNet, {channels = 8}},
    {"Classifier: unknown option 'widht'", models.Classifier, {widht = 8}},
    {"models.vgg19_features: upto must be a layer name", models.vgg19_features, {upto = "relu9_9"}},
    {"gradcheck: unknown option 'epsilon'", ai.gradcheck, function(a) return a end, {ai.randn(2, {dtype = "f64", requires_grad = true})}, {epsilon = 1e-6}},
    {"config.parse: unknown option 'descripton'", ai.config.parse, {}, {lr = 1}, {descripton = "x"}},
    {"dist.all_reduce: unknown option 'ops'", ai.dist.all_reduce, 1, {ops = "sum"}},
    {"Linear:parameters: unknown option 'recursive' (known: prefix, recurse)", nn.Linear(1, 1).parameters, nn.Linear(1, 1), {recursive = false}},
    {"Linear:num_parameters: unknown option 'trainable_only'", nn.Linear(1, 1).num_parameters, nn.Linear(1, 1), {trainable_only = true}},
    {"load_state_dict: unknown option 'strcit'", nn.Linear(1, 1).load_state_dict, nn.Linear(1, 1), {}, {strcit = false}},
    {"Module:buffer: unknown option 'persistant'", nn.Module().buffer, nn.Module(), "b", ai.zeros(1), {persistant = false}},
  }
  for _, c in ipairs(cases) do expect_error(c[1], table.unpack(c, 2)) end
end)

T.test("extra positional arguments are errors where they would be ignored", function()
  local dir = T.tmpdir()
  local x = ai.randn(4, 2)
  local lin = nn.Linear(2, 3)
  -- forward: net(x, t) on a forward(x)
  expect_error("Linear:forward: too many arguments (it takes 1: x)", function() return lin(x, 5) end)
  local Two = nn.Module:extend("Two")
  function Two:forward(a, b) return a end
  expect_error("Two:forward: too many arguments (it takes 2: a, b)", function() return Two()(x, x, x) end)
  eq(Two()(x, nil, nil).shape, {4, 2}) -- trailing nils are no arguments
  -- constructors
  expect_error("Linear: too many arguments (it takes 3: in_features, out_features, opts)", nn.Linear, 2, 3, nil, 4)
  expect_error("Adam: too many arguments", ai.optim.Adam, lin:parameters(), {lr = 1}, {})
  expect_error("StepLR: too many arguments", ai.sched.StepLR, ai.optim.SGD(lin:parameters(), {lr = 1}), {step_size = 2}, 3)
  expect_error("Two: too many arguments (it takes none)", Two, 3)
  ok(nn.Identity(1, 2, 3) ~= nil, "nn.Identity ignores its arguments, as PyTorch's")
  -- the library's methods, called directly, and optional arguments an extra one would fill
  expect_error("Linear:forward: too many arguments (it takes 1: x)", lin.forward, lin, x, 5)
  expect_error("train: mode must be a boolean or nil, got 'x'", lin.train, lin, "x")
  expect_error("requires_grad_: flag must be a boolean or nil", lin.requires_grad_, lin, 1)
  expect_error("ZeroPad2d: takes only the padding", nn.ZeroPad2d, 1, 2)
  expect_error("ConstantPad2d: value must be a number", nn.ConstantPad2d, 1, "a")
  expect_error("nn.is_module: too many arguments", nn.is_module, lin, 2)
  expect_error("progress.format_time: too many arguments", ai.progress.format_time, 1, 2)
  expect_error("metrics.column: key must be a string", ai.metrics.column, {}, 1)
  -- a user's own class keeps Lua's rule for its own methods (extra arguments dropped)
  local Mine = nn.Module:extend("Mine")
  function Mine:helper(a) return a end
  eq(Mine():helper(1, 2), 1)
  -- containers: a hole or a name in the list of modules would drop modules without a word
  expect_error("Sequential: item 2 is a nil, expected a module", nn.Sequential, nn.ReLU(), nil, nn.ReLU())
  expect_error("Sequential: item 2 is a nil, expected a module", nn.Sequential, {nn.ReLU(), nil, nn.ReLU()})
  expect_error("ModuleList: the list of modules has the key 'relu'", nn.ModuleList, {nn.ReLU(), relu = nn.ReLU()})
  -- methods
  expect_error("Module:parameters: too many arguments (it takes 1: opts)", lin.parameters, lin, nil, 2)
  expect_error("Module:train: too many arguments", lin.train, lin, false, true)
  expect_error("Optimizer:zero_grad: too many arguments (it takes none)", function()
    local o = ai.optim.SGD(lin:parameters(), {lr = 1})
    o:zero_grad(true)
  end)
  local loader = data.DataLoader(data.TensorDataset(x), {batch_size = 2})
  expect_error("DataLoader:iter: too many arguments (it takes none)", loader.iter, loader, 1)
  -- functions
  expect_error("save: too many arguments (it takes 3: path, tensors, metadata)", ai.save, dir .. "/a.st", {x = x}, nil, 1)
  expect_error("image.save: too many arguments (it takes 2: path, t)", ai.image.save, dir .. "/a.png", ai.rand(3, 2, 2), 1)
  expect_error("checkpoint.save: too many arguments", ai.checkpoint.save, dir .. "/c.st", {step = 1}, {})
  expect_error("F.huber_loss: too many arguments", F.huber_loss, x, x, nil, 1)
  expect_error("data.TensorDataset: too many arguments", data.TensorDataset, x, x, nil, 1)
  expect_error("transforms.center_crop: too many arguments", data.transforms.center_crop, 2, 3)
  expect_error("diffusion.loss: too many arguments (it takes 4: net, sched, x0, opts)", diffusion.loss, lin,
    diffusion.schedule(4), x, {}, x)
  -- a call whose last argument returns two values passes both: the second is refused too
  local ds = data.TensorDataset(ai.rand(2, 3, 2, 2), ai.tensor({1, 2}))
  expect_error("image.save: too many arguments", ai.image.save, dir .. "/s.png", ds:get(1))
  ai.image.save(dir .. "/s.png", (ds:get(1))) -- parentheses keep the first value only
end)

-- ---------------------------------------------------------------- positions: the caller's line

-- Runs the source of a script file (its chunk name is the file's path) and returns its error.
local function script_error(src)
  local path = T.tmpdir() .. "/user_script.lua"
  T.writefile(path, src)
  local chunk = assert(loadfile(path))
  local okk, err = pcall(chunk)
  ok(not okk, "the script was expected to fail")
  return tostring(err), path
end

-- The script's errors name the script's line `line` (and no library file).
local function at_line(src, line, text)
  local err, path = script_error(src)
  local want = path .. ":" .. line .. ": "
  ok(err:sub(1, #want) == want, ("expected the error at %s, got: %s"):format(want, err))
  if text then ok(err:find(text, 1, true), err) end
  ok(not err:find("lua/aiart/", 1, true), "the message names no library file: " .. err)
end

T.test("errors raised in the library name the caller's file and line", function()
  at_line([[
local ai = require "aiart"
local lin = ai.nn.Linear(2, 3)
local y = lin(ai.randn(4, 5))
]], 3, "linear: input of shape 4x5")
  at_line([[
local ai = require "aiart"
local net = ai.nn.Sequential(ai.nn.Linear(2, 3), ai.nn.Conv2d(3, 4, 3))

local y = net(ai.randn(4, 2))
]], 4, "conv2d: input must be 4-D")
  at_line([[
local ai = require "aiart"
local Net = ai.nn.Module:extend("Net")
function Net:init() self.fc = ai.nn.Linear(2, 3) end
function Net:forward(x)
  local y = self.fc(x) -- (a tail call, return self.fc(x), would leave no frame of forward to name)
  return y
end
Net()(ai.randn(1, 7))
]], 5, "linear")
  at_line([[
local ai = require "aiart"
local ds = ai.data.TensorDataset(ai.randn(4, 2))
local l = ai.data.DataLoader(ds, {batch_size = 0})
]], 3, "DataLoader: batch_size must be a positive integer, got 0")
  at_line([[
local ai = require "aiart"
local ds = ai.data.TensorDataset(ai.randn(4, 2))
print(ds[9])
]], 3, "TensorDataset:get: index 9 out of range 1..4")
  at_line([[
local ai = require "aiart"
ai.image.save("/tmp/never.jpg", ai.rand(3, 2, 2))
]], 2, "cannot write '.jpg'")
  at_line([[
local ai = require "aiart"
local opt = ai.optim.Adam(ai.nn.Linear(1, 1):parameters(), {lr = -1})
]], 2, "Adam: invalid learning rate: -1")
  at_line([[
local ai = require "aiart"
local c = ai.nn.Conv2d(1, 2, 3, {stride = 2, padding = "same"})
]], 2, "padding 'same' needs stride 1")
  at_line([[
local ai = require "aiart"
local x = ai.F.gelu(ai.randn(2), {approximate = "fast"})
]], 2, "gelu: approximate must be 'none' or 'tanh'")
  at_line([[
local ai = require "aiart"
local m = ai.nn.Linear(1, 1)
ai.save("/tmp/never.safetensors", m)
]], 3, "pass model:state_dict()")
  at_line([[
local ai = require "aiart"
for x in ai.data.DataLoader(ai.data.TensorDataset(ai.randn(4, 2)), {shuffle = true, shard = {rank = 3, world_size = 2}, seed = 1}):iter() do end
]], 2, "shard.rank must be an integer in 1..2, got 3")
end)

T.test("a user's own error inside forward keeps its own line", function()
  local err, path = script_error([[
local ai = require "aiart"
local Net = ai.nn.Module:extend("Net")
function Net:forward(x)
  error("my own mistake")
end
ai.nn.Sequential(Net())(ai.randn(1))
]])
  eq(err, path .. ":4: my own mistake")
end)

T.run_alone()
