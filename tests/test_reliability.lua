-- tests/test_reliability.lua: crash safety (SIGKILL at random moments and mid checkpoint write,
-- then resume: identical losses and weights), determinism (same seed and config, same results),
-- and the numerical guards (a NaN/Inf loss stops training naming the step and keeps the last
-- good checkpoint; on_nan=skip drops the batch). The long versions are make targets:
-- `make killtest` (train_gan.lua, 20 kills) and `make soak` (10,000 steps, flat memory).
local T = require "helper"
local ai = require "aiart"

package.path = "tests/reliability/?.lua;" .. package.path
local killtest = require "killtest"

local BIN = T.binary()
local q = T.shell_quote
local function run(cmd, env) return T.sh((env or "") .. " " .. BIN .. " " .. cmd) end
local NAN_ENV = "LUA_INIT=@tests/reliability/inject_nan.lua"

local function finite_tensors(path)
  local _, tensors = ai.checkpoint.read(path)
  local n = 0
  for name, t in pairs(tensors) do
    if t.dtype == "f32" or t.dtype == "f64" then
      local s = t:double():abs():sum():item()
      if s ~= s or s == math.huge then return false, name end
    end
    n = n + 1
  end
  return true, n
end

local function steps_of(path)
  local out = {}
  for _, r in ipairs(ai.metrics.read(path)) do out[#out + 1] = r.step end
  return out
end

T.test("crash safety: a training loop killed with SIGKILL (also mid checkpoint write) resumes to identical losses and weights", function()
  local r = killtest.run{script = "mini", trials = 4, steps = 30, bin = BIN, dir = T.tmpdir() .. "/kill",
                         log = function() end}
  print(("test_reliability.lua: %d kill trials of the training loop (%d mid checkpoint write): all resumed identically")
        :format(r.trials, r.mid_write))
  T.eq(r.trials, 4)
end)

T.test("determinism: train_gan.lua twice with the same seed gives identical metrics and checkpoints; another seed differs", function()
  local d = T.tmpdir()
  local common = "scripts/train_gan.lua threads=1 steps=3 ckpt_every=3 log_every=1 sample_every=1000 "
  for _, name in ipairs{"a", "b"} do
    local rc, out = run(common .. "seed=5 out=" .. q(d .. "/" .. name))
    T.ok(rc == 0, "train_gan failed: " .. out)
  end
  local rc, out = run(common .. "seed=6 out=" .. q(d .. "/c"))
  T.ok(rc == 0, "train_gan failed: " .. out)
  local function losses(n)
    local out2 = {}
    for _, r in ipairs(ai.metrics.read(d .. "/" .. n .. "/metrics.jsonl")) do out2[#out2 + 1] = {r.step, r.loss_d, r.loss_g} end
    return out2
  end
  T.eq(losses("a"), losses("b"), "metrics of two runs with seed 5")
  T.ok(not T.deep_eq(losses("a"), losses("c")), "seeds 5 and 6 gave the same losses")
  local _, ta = ai.checkpoint.read(d .. "/a/last.safetensors")
  local _, tb = ai.checkpoint.read(d .. "/b/last.safetensors")
  local n = 0
  for name, x in pairs(ta) do
    T.ok(tb[name] and x:ne(tb[name]):sum():item() == 0, "checkpoint tensor " .. name .. " differs between the runs")
    n = n + 1
  end
  T.ok(n > 20, "only " .. n .. " tensors in the checkpoint")
end)

T.test("NaN guard: train_gan.lua on_nan=stop stops naming the step and keeps the last good checkpoint, which resumes", function()
  local d = T.tmpdir() .. "/gan"
  -- the 7th loss read is step 4's D loss
  local args = "scripts/train_gan.lua threads=1 steps=6 ckpt_every=1 log_every=1 sample_every=1000 out=" .. q(d)
  local rc, out = run(args, NAN_ENV .. " AIART_NAN_ITEM=7")
  T.ok(rc ~= 0, "a NaN loss did not stop training")
  T.ok(out:find("non-finite loss at step 4", 1, true), "the message does not name step 4: " .. out)
  T.ok(out:find("last good checkpoint", 1, true), "the message does not point at the checkpoint: " .. out)
  local parts = ai.checkpoint.read(d .. "/last.safetensors")
  T.eq(parts.step, 3, "step of the last good checkpoint")
  T.ok(finite_tensors(d .. "/last.safetensors"), "the last good checkpoint holds non-finite values")
  T.eq(steps_of(d .. "/metrics.jsonl"), {1, 2, 3})
  rc, out = run(args .. " resume=true")
  T.ok(rc == 0, "resuming after the NaN stop failed: " .. out)
  T.eq(steps_of(d .. "/metrics.jsonl"), {1, 2, 3, 4, 5, 6})
end)

T.test("NaN guard: train_gan.lua on_nan=skip drops the batch and goes on", function()
  local d = T.tmpdir() .. "/gan"
  local rc, out = run("scripts/train_gan.lua threads=1 steps=5 ckpt_every=1 log_every=1 sample_every=1000 on_nan=skip out=" .. q(d),
                      NAN_ENV .. " AIART_NAN_ITEM=3")
  T.ok(rc == 0, "on_nan=skip did not finish: " .. out)
  T.ok(out:find("non-finite loss at step 2", 1, true) and out:find("skipped", 1, true), "no skip message: " .. out)
  T.eq(steps_of(d .. "/metrics.jsonl"), {1, 2, 3, 4, 5})
  T.ok(finite_tensors(d .. "/last.safetensors"), "non-finite weights after a skipped batch")
end)

T.test("NaN guard: a real divergence (lr=1e30) stops train_gan.lua with a message and a loadable checkpoint", function()
  local d = T.tmpdir() .. "/gan"
  local rc, out = run("scripts/train_gan.lua threads=1 steps=20 ckpt_every=1 log_every=1 sample_every=1000 lr=1e30 out=" .. q(d))
  T.ok(rc ~= 0, "lr=1e30 trained 20 steps without a non-finite loss")
  local k = tonumber(out:match("non%-finite loss at step (%d+)"))
  T.ok(k, "no step named: " .. out)
  if k > 1 then
    local parts = ai.checkpoint.read(d .. "/last.safetensors")
    T.eq(parts.step, k - 1, "the last good checkpoint")
  end
end)

T.test("NaN guard: train_ddpm.lua stops (on_nan=stop) or skips (on_nan=skip) a NaN loss", function()
  local d = T.tmpdir()
  local common = "scripts/train_ddpm.lua threads=1 ch=8 T=20 batch_size=4 steps=4 ckpt_every=1 log_every=1 sample_every=0 sample_steps=2 n_samples=4 path_samples=2 "
  local rc, out = run(common .. "out=" .. q(d .. "/stop"), NAN_ENV .. " AIART_NAN_ITEM=3")
  T.ok(rc ~= 0 and out:find("non-finite loss at step 3", 1, true), "no stop at step 3: " .. out)
  T.eq(ai.checkpoint.read(d .. "/stop/last.safetensors").step, 2)
  T.ok(finite_tensors(d .. "/stop/last.safetensors"))
  rc, out = run(common .. "on_nan=skip out=" .. q(d .. "/skip"), NAN_ENV .. " AIART_NAN_ITEM=3")
  T.ok(rc == 0 and out:find("non-finite loss at step 3", 1, true) and out:find("batch skipped", 1, true), "no skip: " .. out)
  T.eq(ai.checkpoint.read(d .. "/skip/last.safetensors").step, 4)
end)

T.test("NaN guard: the self-contained loop stops or skips, and a stopped run resumes", function()
  local d = T.tmpdir()
  local args = "tests/reliability/mini_train.lua steps=10 nan_at=6 out=" .. q(d .. "/m")
  local rc, out = run(args)
  T.ok(rc ~= 0 and out:find("non-finite loss at step 6", 1, true), "no stop at step 6: " .. out)
  T.eq(ai.checkpoint.read(d .. "/m/last.safetensors").step, 5)
  rc, out = run("tests/reliability/mini_train.lua steps=10 resume=true out=" .. q(d .. "/m"))
  T.ok(rc == 0, out)
  T.eq(steps_of(d .. "/m/metrics.jsonl"), {1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
  rc, out = run(args:gsub("/m'", "/s'") .. " on_nan=skip")
  T.ok(rc == 0 and out:find("batch skipped", 1, true), out)
  T.eq(#steps_of(d .. "/s/metrics.jsonl"), 10)
end)
