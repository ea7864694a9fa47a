-- tests/test_ddpm_warmup.lua: the EMA warm-up of train_ddpm.lua (decay min(0.999, (1 + n) /
-- (10 + n)) at the n-th update, ema_warmup=true) makes the samples of a short run better than
-- the same run's samples without it, whose average after 300 updates is still 74% the initial
-- weights: a lower Fréchet distance on the project's own classifier. Everything at small sizes
-- (a classifier of width 8 trained on 2,560 images for one epoch, a UNet of 8 channels, 300
-- steps of 8 images, 300 DDIM samples of 10 steps against 2,000 test images), through the
-- scripts themselves. The full-sized run is in the README's figures.
local T = require "helper"
local ai = require "aiart"

local BIN = T.binary()
local dir = T.tmpdir()

local function run(script, args)
  local rc, out = T.sh(("%s scripts/%s %s"):format(BIN, script, args))
  if rc ~= 0 then error(("%s %s failed:\n%s"):format(script, args, out), 2) end
  return out
end

T.test("300 DDPM steps: the warmed-up EMA samples score a lower FD than the same run's without warm-up", function()
  run("train_classifier.lua", "threads=2 epochs=1 limit=2560 test_limit=500 batch_size=64 width=8 out=" .. dir .. "/clf")
  local common = "threads=2 ch=8 batch_size=8 steps=300 sample_steps=5 n_samples=8 path_samples=1 sample_every=0 "
    .. "log_every=50 "
  local fd = {}
  for _, warm in ipairs({true, false}) do
    local out = ("%s/ddpm_%s"):format(dir, tostring(warm))
    run("train_ddpm.lua", common .. "ema_warmup=" .. tostring(warm) .. " out=" .. out)
    local ema = ai.checkpoint.read(out .. "/last.safetensors").ema
    T.eq({ema.warmup, ema.num_updates}, {warm, 300})
    run("sample.lua", ("ckpt=%s/last.safetensors n=300 sample_steps=10 out=%s/s.idx"):format(out, out))
    local log = run("eval_fd.lua", ("samples=%s/s.idx classifier=%s/clf/classifier.safetensors limit=2000"):format(out,
      dir))
    fd[warm] = tonumber(log:match("FD ([%d%.]+)"))
    T.ok(fd[warm], log)
  end
  -- the training itself is the same: only the average differs
  local a, b = ai.metrics.read(dir .. "/ddpm_true/metrics.jsonl"), ai.metrics.read(dir .. "/ddpm_false/metrics.jsonl")
  for i = 1, #a do T.eq(a[i].loss, b[i].loss, "the loss at step " .. a[i].step) end
  print(("test_ddpm_warmup.lua: FD %.1f with the EMA warm-up, %.1f without (300 samples, 300 steps, small sizes)"):format(
    fd[true], fd[false]))
  T.ok(fd[true] < 0.9 * fd[false], ("FD %.2f with warm-up, %.2f without"):format(fd[true], fd[false]))
end)
