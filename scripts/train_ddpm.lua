-- scripts/train_ddpm.lua: train a DDPM (epsilon prediction, MSE) on Fashion-MNIST with the
-- reference UNet, keep an EMA of its weights, and sample from the EMA weights with DDPM
-- (1000 ancestral steps) or DDIM. Writes samples, a strip and an animated GIF of the
-- denoising path, metrics, checkpoints and a loss plot. `--help` lists the options.
-- Data-parallel over MPI: `mpirun -np 2 ./aiart-lua scripts/train_ddpm.lua dist=true` (each rank
-- takes batch_size / 2 of every batch; rank 1 writes the files).
local ai = require "aiart"
local models = require "aiart.models"
local diffusion = require "aiart.diffusion"
local experiment = require "aiart.experiment"

local cfg = experiment.options(arg, {
  ch = {32, "base channels of the UNet (each level's, times its mult, a multiple of 8)", "integer >= 1"},
  mults = {{1, 2}, "channel multiplier per level; 28x28 allows up to 2 levels", "list of integers >= 1"},
  T = {1000, "diffusion steps", "integer >= 1"},
  schedule = {"linear", "beta schedule: linear (1e-4..0.02) or cosine", {"linear", "cosine"}},
  batch_size = {64, "the batch of a step over all ranks", "integer >= 1"},
  lr = {2e-4, "Adam learning rate", "number > 0"},
  ema_decay = {0.999, "decay of the exponential moving average of the weights", "number >= 0 and <= 1"},
  ema_warmup = {true, "warm the average up: decay min(ema_decay, (1 + n) / (10 + n)) at its n-th update, as "
                .. "diffusers does, so that short runs sample trained weights", "boolean"},
  sample_steps = {50, "DDIM steps for samples (0 or T: ancestral DDPM with all T steps)", "integer >= 0"},
  eta = {0.0, "DDIM eta (0: deterministic)", "number >= 0"},
  n_samples = {64, "samples in the final grid", "integer >= 1"},
  path_samples = {8, "samples shown along the denoising path (strip and GIF), at most n_samples", "integer >= 1"},
}, {
  description = "Train a DDPM on Fashion-MNIST and sample from its EMA weights.",
  common = {steps = {4000, "training steps (0: no limit)"}, sample_every = 2000, out = "runs/ddpm",
            "epochs", "time_limit", "log_every", "ckpt_every", "ckpt_minutes", "seed", "threads", "resume", "on_nan",
            "dist"},
  check = function(c)
    if c.path_samples > c.n_samples then
      return ("path_samples=%d must be <= n_samples=%d"):format(c.path_samples, c.n_samples)
    end
    -- each level halves the size: 28 -> 14 -> 7, and a third level would leave 3.5
    if #c.mults > 2 then return ("mults=%s: 28x28 images allow up to 2 levels"):format(table.concat(c.mults, ",")) end
    for _, m in ipairs(c.mults) do
      if c.ch * m % 8 ~= 0 then
        return ("ch=%d, mults=%s: the group norms need ch * mult a multiple of 8 at every level"):format(c.ch,
               table.concat(c.mults, ","))
      end
    end
  end,
})

local dist = experiment.distributed(cfg)
local main = dist.is_main()
-- the lock, resume's options (those of sampling may change), signals
local run = experiment.start(cfg, {dist = dist, apply = {"lr"},
                                   free = {"n_samples", "path_samples", "sample_steps", "eta"}})
if cfg.threads > 0 then ai.set_num_threads(cfg.threads) end
local mults = cfg.mults
local out = cfg.out
ai.manual_seed(cfg.seed)

local net = models.UNet{ch = cfg.ch, mults = mults}
local ddp = dist.DataParallel(net) -- rank 1's weights everywhere; gradients averaged over the ranks
local ema = ai.optim.EMA(net, {decay = cfg.ema_decay, warmup = cfg.ema_warmup})
local opt = ai.optim.Adam(net:parameters(), {lr = cfg.lr})
local sched = diffusion.schedule(cfg.T, cfg.schedule)
local loader = ai.data.DataLoader(ai.data.fashion_mnist{split = "train"},
                                  {batch_size = experiment.rank_batch(cfg.batch_size, dist), shuffle = true,
                                   drop_last = true, seed = cfg.seed, shard = true})
local step = 0
local last_ckpt = run.ckpt_path

local function checkpoint(path)
  run:save(path, {model = net, ema = ema, optimizer = opt, loader = loader, rng = true, step = step, config = cfg})
end

if cfg.resume then
  local info = dist.load_checkpoint(last_ckpt, {model = net, ema = ema, optimizer = opt, loader = loader, rng = true})
  step = info.step
  run:resumed(step, {optimizers = {opt}})
end
dist.split_rng() -- each rank its own noise (after a resume too: rank 1's state decides all)

if main then experiment.prepare(out, cfg) end
local metrics = experiment.metrics(out .. "/metrics.jsonl", step, cfg.resume, main)

-- Samples from the EMA weights; with `path`, also the x0 predictions along the way.
local function sample(n, path)
  local frames, every = {}, math.max(1, (cfg.sample_steps > 0 and cfg.sample_steps or cfg.T) // 10)
  local k = 0
  local x = ema:with_averaged(net, function()
    net:eval()
    local r = diffusion.sample(net, sched, {n, 1, 28, 28}, {
      steps = cfg.sample_steps, eta = cfg.eta,
      on_step = path and function(_, xt)
        k = k + 1
        if k % every == 0 or k == 1 then frames[#frames + 1] = xt:narrow(1, 1, path):clone() end
      end})
    net:train()
    return r
  end)
  return x, frames
end

local function save_samples(final)
  local n = final and cfg.n_samples or 16
  local x, frames = sample(n, final and cfg.path_samples or nil)
  local name = final and "samples.png" or ("samples_%06d.png"):format(step)
  ai.image.save(out .. "/" .. name, ai.image.grid(x, {nrow = 8, normalize = true, range = {-1, 1}}))
  if final and #frames > 0 then
    -- strip: one row per sample, one column per recorded step (noise on the left)
    frames[#frames + 1] = x:narrow(1, 1, cfg.path_samples)
    local cols = {}
    for i = 1, cfg.path_samples do
      for _, f in ipairs(frames) do cols[#cols + 1] = f:narrow(1, i, 1) end
    end
    local strip = ai.cat(cols, 1)
    ai.image.save(out .. "/path.png", ai.image.grid(strip, {nrow = #frames, normalize = true, range = {-1, 1}}))
    local gif = {}
    for _, f in ipairs(frames) do gif[#gif + 1] = ai.image.grid(f, {nrow = cfg.path_samples, normalize = true, range = {-1, 1}}) end
    for _ = 1, 5 do gif[#gif + 1] = gif[#gif] end -- linger on the result
    ai.io.save_gif(out .. "/path.gif", gif, {delay = 120})
  end
  return out .. "/" .. name
end

local next_batch = experiment.batches(loader)
local guard = experiment.nan_guard(cfg.on_nan, run)

local t0 = os.time()
local total = cfg.steps > 0 and cfg.steps or nil
if cfg.epochs > 0 then total = math.min(total or cfg.epochs * #loader, cfg.epochs * #loader) end
local bar = ai.progress.bar{total = total, desc = "ddpm", start = step, disable = not main}
local reason, time_up, signal = "steps", false, nil
while true do
  if cfg.steps > 0 and step >= cfg.steps then break end
  if cfg.epochs > 0 and step // #loader >= cfg.epochs then reason = "epochs" break end
  if time_up then reason = "time_limit" break end
  if run:interrupted(signal) then reason = run.signal break end
  local loss = diffusion.loss(net, sched, (next_batch())) -- the images; the labels are not used
  opt:zero_grad()
  -- the loss, the clock and a signal travel with the gradients: every rank sees their means
  local m = ddp:backward(loss, {loss = loss, time_up = experiment.time_up(t0, cfg.time_limit),
                                signal = run:signal_flag()})
  local l = m.loss
  time_up, signal = m.time_up > 0, m.signal
  if guard(step + 1, {loss = l}) then
    opt:step()
    local decay = ema:current_decay()
    ema:update()
    step = step + 1
    bar:update(1, {loss = l, ema = decay}) -- the decay of the EMA weights that the samples come from
    if step % cfg.log_every == 0 then metrics:write{step = step, loss = l, time = run:elapsed()} end
    if cfg.sample_every > 0 and step % cfg.sample_every == 0 then
      local path = dist.main_only(save_samples, false)
      if main then bar:write(("%s: from the EMA weights (decay %.4g at step %d)"):format(path, decay, step)) end
    end
    if step % cfg.ckpt_every == 0 then
      checkpoint(last_ckpt)
      checkpoint(("%s/ckpt_%06d.safetensors"):format(out, step))
    elseif run:checkpoint_due() then
      checkpoint(last_ckpt)
    end
  end
end
bar:close()
metrics:close()
checkpoint(last_ckpt)
run:stop_training(step) -- after SIGINT or SIGTERM: where the checkpoint is, how to resume, exit 130/143
dist.main_only(function()
  local grid = save_samples(true)
  ai.plot.curves(out .. "/loss.png", ai.metrics.read(out .. "/metrics.jsonl"), {keys = {"loss"}, ylabel = "loss"})
  print(("stopped at step %d (%s); samples %s (EMA weights, %d updates%s), path %s/path.png and path.gif"):format(
    step, reason, grid, ema.num_updates, ema.warmup and ", warmed up" or "", out))
  print(("checkpoint %s"):format(last_ckpt))
end)
run:close()
