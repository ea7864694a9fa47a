-- tests/test_files.lua: ai.save / ai.load (safetensors) for every dtype, ai.checkpoint round
-- trips of model, optimizer, EMA, scheduler, generator and loader state, the JSON metadata of
-- nested plain values, crash safety (a writer killed with -9 mid-save leaves a loadable file),
-- and ai.image load / save / grid / resize.
-- Run alone: ./aiart-lua tests/run.lua test_files
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"

local test, eq, near, ok, expect_error = T.test, T.eq, T.near, T.ok, T.expect_error

local function maxdiff(a, b) return (a:double() - b:double()):abs():max():item() end
local function same(a, b, msg)
  eq(a.dtype, b.dtype, msg)
  eq(a.shape, b.shape, msg)
  if a:numel() > 0 then eq(maxdiff(a, b), 0, msg) end
end

-- ------------------------------------------------------------------ ai.save / ai.load

test("ai.save / ai.load round trip every dtype, shape, view and metadata", function()
  local dir = T.tmpdir()
  ai.manual_seed(1)
  local ts = {
    f32 = ai.randn(3, 4),
    f64 = ai.randn(2, 3, 2, {dtype = "f64"}),
    i64 = ai.tensor({{-5, 0, 7}, {1 << 40, -(1 << 50), 3}}, {dtype = "i64"}),
    u8 = ai.randint(0, 255, 5, {dtype = "u8"}),
    scalar = ai.scalar and ai.scalar(2.5) or ai.tensor(2.5),
    empty = ai.zeros(0, 3),
    view = ai.arange(0, 12):float():view(3, 4):t(), -- not contiguous
    ["with.dots/and spaces"] = ai.ones(2),
  }
  local path = dir .. "/t.safetensors"
  ai.save(path, ts, {note = "hello", n = 3, flag = true})
  local back, meta = ai.load(path)
  for k, v in pairs(ts) do
    ok(back[k], "missing " .. k)
    same(back[k], v, k)
  end
  eq(meta.note, "hello")
  eq(meta.n, "3")
  eq(meta.flag, "true")
  -- tensors that require grad are saved detached
  local w = ai.randn(3):requires_grad_()
  ai.save(path, {w = w})
  same(ai.load(path).w, w:detach())
  expect_error("is a number, not a tensor", ai.save, path, {x = 1})
  expect_error("path must be a string", ai.save, nil, {})
  expect_error("metadata 'm' is a table", ai.save, path, {x = ai.ones(1)}, {m = {}})
  expect_error("load", ai.load, dir .. "/missing.safetensors")
end)

-- ------------------------------------------------------------------ checkpoints

local function make_training(seed)
  ai.manual_seed(seed)
  local nn = ai.nn
  local model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
  local opt = ai.optim.Adam(model:parameters(), {lr = 1e-2, betas = {0.5, 0.999}})
  local sched = ai.sched.StepLR(opt, {step_size = 3, gamma = 0.5})
  local ema = ai.optim.EMA(model, {decay = 0.9})
  return model, opt, sched, ema
end

local function train_steps(model, opt, sched, ema, loader, n, it)
  local losses = {}
  for _ = 1, n do
    local x, y = it()
    if not x then break end
    local loss = ai.mse_loss(model(x), y)
    opt:zero_grad()
    loss:backward()
    opt:step()
    sched:step()
    ema:update()
    -- randomness drawn from the global generator must also resume
    local noise = ai.randn(1):item()
    losses[#losses + 1] = loss:item() + noise
  end
  return losses
end

test("checkpoint: save and load restore model, optimizer, scheduler, EMA, rng and loader bit for bit", function()
  local dir = T.tmpdir()
  ai.manual_seed(0)
  local X, Y = ai.randn(64, 4), ai.randn(64, 2)
  local ds = ai.data.TensorDataset(X, Y)
  local function loader() return ai.data.DataLoader(ds, {batch_size = 8, shuffle = true, seed = 17}) end

  -- reference: 12 uninterrupted steps
  local m1, o1, s1, e1 = make_training(3)
  local L1 = loader()
  local it1 = L1:iter()
  local ref = train_steps(m1, o1, s1, e1, L1, 12, it1)

  -- run 2: 5 steps, checkpoint, a new process state, load, 7 more steps
  local m2, o2, s2, e2 = make_training(3)
  local L2 = loader()
  local it2 = L2:iter()
  local first = train_steps(m2, o2, s2, e2, L2, 5, it2)
  local path = dir .. "/ckpt.safetensors"
  ai.checkpoint.save(path, {model = m2, optimizer = o2, scheduler = s2, ema = e2, rng = true, loader = L2, step = 5,
                            config = {lr = 1e-2, name = "test", sizes = {4, 8, 2}}, extra = {best = 0.25, tags = {}}})
  ai.manual_seed(12345) -- disturb everything
  local m3, o3, s3, e3 = make_training(99)
  local L3 = ai.data.DataLoader(ds, {batch_size = 8, shuffle = true, seed = 1})
  local info = ai.checkpoint.load(path, {model = m3, optimizer = o3, scheduler = s3, ema = e3, loader = L3})
  eq(info.step, 5)
  eq(info.config, {lr = 1e-2, name = "test", sizes = {4, 8, 2}})
  eq(math.type(info.config.sizes[1]), "integer")
  eq(info.extra.best, 0.25)
  eq(o3.param_groups[1].lr, o2.param_groups[1].lr)
  eq(o3.param_groups[1].betas, {0.5, 0.999})
  local rest = train_steps(m3, o3, s3, e3, L3, 7, L3:iter())
  for i = 1, 5 do eq(first[i], ref[i], "step " .. i) end
  for i = 1, 7 do eq(rest[i], ref[5 + i], "resumed step " .. (5 + i)) end
  -- parameters and EMA shadows equal the reference's
  local p1, p3 = m1:state_dict(), m3:state_dict()
  for k, v in pairs(p1) do same(p3[k], v, k) end
  for k, v in pairs(e1.shadow) do same(e3.shadow[k], v, "ema " .. k) end
  -- the file holds the tensors under their paths, the rest as JSON
  local tensors, meta = ai.load(path)
  ok(tensors["model.0.weight"], "model.0.weight")
  ok(tensors["optimizer.state.1.exp_avg"], "optimizer.state.1.exp_avg")
  ok(meta.aiart and meta.aiart:find('"format":"aiart-checkpoint"', 1, true), "metadata")
  eq(meta.format, "aiart")
  -- missing parts
  local only = dir .. "/only.safetensors"
  ai.checkpoint.save(only, {model = m1})
  expect_error("holds no 'optimizer' state", ai.checkpoint.load, only, {model = m3, optimizer = o3})
  ai.checkpoint.load(only, {model = m3, optimizer = o3, strict = false})
  expect_error("not an aiart checkpoint", ai.checkpoint.load, (function()
    local p = dir .. "/plain.safetensors"
    ai.save(p, {x = ai.ones(1)})
    return p
  end)())
end)

test("checkpoint: generic values round trip through JSON metadata", function()
  local dir = T.tmpdir()
  local t = ai.arange(0, 6):view(2, 3)
  local value = {
    ints = {1, 2, 3}, floats = {1.0, 2.5, -0.0}, big = math.maxinteger, small = math.mininteger,
    sparse = {[1] = "a", [3] = "c", [10] = "j"}, mixed = {1, 2, x = "y"},
    special = {0 / 0, math.huge, -math.huge}, empty = {}, nested = {{{{deep = true}}}},
    str = "quote \" backslash \\ newline \n unicode \u{e9}", bools = {true, false},
    __dunder = {__tensor = "not a tag"}, floatkeys = {[0.5] = "half", [-1] = "neg", [true] = "yes"},
    tensors = {t, {inner = t * 2}},
  }
  local path = dir .. "/v.safetensors"
  ai.checkpoint.save(path, {extra = value})
  local info = ai.checkpoint.load(path)
  local v = info.extra
  eq(v.ints, {1, 2, 3})
  eq(math.type(v.ints[1]), "integer")
  eq(math.type(v.floats[1]), "float")
  eq(v.floats[2], 2.5)
  eq(v.big, math.maxinteger)
  eq(v.small, math.mininteger)
  eq(v.sparse, {[1] = "a", [3] = "c", [10] = "j"})
  eq(v.mixed, {1, 2, x = "y"})
  ok(v.special[1] ~= v.special[1])
  eq(v.special[2], math.huge)
  eq(v.special[3], -math.huge)
  eq(v.empty, {})
  eq(v.nested[1][1][1].deep, true)
  eq(v.str, value.str)
  eq(v.bools, {true, false})
  eq(v.__dunder, {__tensor = "not a tag"})
  eq(v.floatkeys, {[0.5] = "half", [-1] = "neg", [true] = "yes"})
  same(v.tensors[1], t)
  same(v.tensors[2].inner, t * 2)
  expect_error("cannot save a function at extra.f", ai.checkpoint.save, path, {extra = {f = print}})
  local cyc = {}
  cyc.self = cyc
  expect_error("nested too deeply", ai.checkpoint.save, path, {extra = cyc})
  -- the failed saves left the previous file intact
  eq(ai.checkpoint.load(path).extra.ints, {1, 2, 3})
end)

test("checkpoint: a writer killed with -9 mid-save leaves the last checkpoint loadable", function()
  local dir = T.tmpdir()
  local path = dir .. "/big.safetensors"
  local script = dir .. "/writer.lua"
  local f = assert(io.open(script, "w"))
  f:write(([[
local ai = require "aiart"
local w = ai.zeros(1500000)
local k = 0
while true do
  k = k + 1
  w:fill_(k)
  ai.checkpoint.save(%q, {model = {w = w, v = w:double()}, step = k})
  io.open(%q, "w"):close()
end
]]):format(path, dir .. "/started"))
  f:close()
  ai.checkpoint.save(path, {model = {w = ai.zeros(1500000), v = ai.zeros(1500000, {dtype = "f64"})}, step = 0})
  math.randomseed(os.time())
  local last = 0
  for round = 1, 5 do
    os.remove(dir .. "/started")
    assert(os.execute(("'%s' '%s' >/dev/null 2>&1 & echo $! > '%s/pid'"):format(T.binary(), script, dir)))
    local pf = assert(io.open(dir .. "/pid"))
    local pid = pf:read("n")
    pf:close()
    -- wait for a first complete save, then kill after a random delay
    for _ = 1, 100 do
      local s = io.open(dir .. "/started")
      if s then s:close() break end
      os.execute("sleep 0.05")
    end
    os.execute(("sleep %.3f"):format(0.01 + math.random() * 0.3))
    os.execute("kill -9 " .. math.tointeger(pid) .. " 2>/dev/null")
    os.execute("sleep 0.05")
    local info = ai.checkpoint.read(path)
    local k = info.step
    ok(math.type(k) == "integer" and k >= 1, "round " .. round .. ": step " .. tostring(k))
    eq(info.model.w:min():item(), k)
    eq(info.model.w:max():item(), k)
    eq(info.model.v:min():item(), k)
    eq(info.model.v:max():item(), k)
    last = k
  end
  ok(last >= 1)
  -- the next save removes the temporary files of the dead writers
  ai.checkpoint.save(path, {step = -1})
  local p = io.popen("ls '" .. dir .. "'")
  local listing = p:read("a")
  p:close()
  ok(not listing:find(".tmp.", 1, true), "stale temporary files: " .. listing)
  eq(ai.checkpoint.read(path).step, -1)
end)

-- ------------------------------------------------------------------ images

test("image: save / load, grid, resize, show hook", function()
  local dir = T.tmpdir()
  ai.manual_seed(2)
  local rgb = ai.rand(3, 5, 7)
  ai.image.save(dir .. "/a.png", rgb)
  local back = ai.image.load(dir .. "/a.png")
  eq(back.shape, {3, 5, 7})
  near(back, (rgb * 255):round() / 255, 1e-6)
  -- HxW, 1 channel, 4 channels, clamping, a 1xCxHxW batch of one
  ai.image.save(dir .. "/g.png", ai.linspace(-1, 2, 12):view(3, 4))
  local g = ai.image.load(dir .. "/g.png")
  eq(g.shape, {1, 3, 4})
  eq(g:min():item(), 0.0)
  eq(g:max():item(), 1.0)
  ai.image.save(dir .. "/r.png", ai.rand(4, 2, 2))
  eq(ai.image.load(dir .. "/r.png").shape, {4, 2, 2})
  ai.image.save(dir .. "/b.png", ai.rand(1, 3, 6, 6))
  eq(ai.image.load(dir .. "/b.png").shape, {3, 6, 6})
  expect_error("make one image with ai.image.grid", ai.image.save, dir .. "/x.png", ai.rand(2, 3, 4, 4))
  -- grid: 10 images of 3x4x5 in rows of 4 with padding 2 -> 3 x (3*6+2) x (4*7+2)
  local batch = ai.rand(10, 3, 4, 5)
  local grid = ai.image.grid(batch, {nrow = 4, padding = 2, pad_value = 0.5})
  eq(grid.shape, {3, 3 * 6 + 2, 4 * 7 + 2})
  eq(maxdiff(grid[{{}, {3, 6}, {3, 7}}], batch[1]), 0)
  eq(maxdiff(grid[{{}, {9, 12}, {10, 14}}], batch[6]), 0)
  eq(grid[1][1][1]:item(), 0.5)
  local ng = ai.image.grid(batch * 4 - 2, {normalize = true, range = {-2, 2}, padding = 0, nrow = 10})
  near(ng[{{}, {}, {1, 5}}], batch[1], 1e-6)
  eq(ai.image.grid(ai.rand(1, 8, 8)).shape, {1, 12, 12})
  -- resize
  local img = ai.rand(3, 8, 12)
  eq(ai.image.resize(img, {size = {4, 6}}).shape, {3, 4, 6})
  eq(ai.image.resize(img, {size = 4}).shape, {3, 4, 6})
  local area = ai.image.resize(ai.ones(1, 8, 8) * 3, {size = {2, 2}, mode = "area"})
  near(area, ai.full({1, 2, 2}, 3))
  eq(ai.image.resize(ai.rand(2, 1, 4, 4), {size = 8}).shape, {2, 1, 8, 8})
  expect_error("mode must be", ai.image.resize, img, {size = 4, mode = "cubic"})
  -- show: the hook gets PNG bytes
  local got
  ai.image.display_hook = function(bytes) got = bytes end
  ai.image.show(rgb)
  ai.image.display_hook = nil
  ok(got and got:sub(2, 4) == "PNG")
  local printed
  local real_print = print
  print = function(s) printed = s end -- luacheck: ignore
  local path = ai.image.show(rgb)
  print = real_print -- luacheck: ignore
  eq(printed, path)
  ok(path and io.open(path) ~= nil)
  os.remove(path)
end)
