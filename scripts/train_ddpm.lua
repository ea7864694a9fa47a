-- scripts/train_ddpm.lua: train a DDPM (epsilon or v prediction, MSE) on Fashion-MNIST with the
-- reference UNet, unconditional or class-conditional (cond=class: label dropout p_uncond, for
-- classifier-free guidance), keep an EMA of its weights, and sample from the EMA weights with
-- any sampler of aiart.samplers (DDIM by default; ddpm: all T ancestral steps). Writes samples
-- (one row per class with cond=class), a strip and an animated GIF of the denoising path,
-- metrics, checkpoints and a loss plot. `--help` lists the options; scripts/sample.lua samples a
-- checkpoint with prompts, guidance, img2img and inpainting.
-- Data-parallel over MPI: `mpirun -np 2 ./aiart-lua scripts/train_ddpm.lua dist=true` (each rank
-- takes batch_size / 2 of every batch; rank 1 writes the files).
local ai = require "aiart"
local models = require "aiart.models"
local diffusion = require "aiart.diffusion"
local experiment = require "aiart.experiment"
local computed = ai.config.computed

local cfg = experiment.options(arg, {
  cond = {"none", "conditioning: none, or class (the dataset's labels, for prompts and guidance)", {"none", "class"}},
  p_uncond = {0.1, "cond=class: the rate at which a label is dropped to \"no class\" (one network learns both)",
              "number >= 0 and <= 1"},
  prediction = {"eps", "what the network predicts: eps (the noise) or v (Salimans & Ho 2022)", {"eps", "v"}},
  zero_snr = {false, "rescale the schedule to zero terminal SNR (Lin et al. 2023; needs prediction=v)", "boolean"},
  ch = {32, "base channels of the UNet (each level's, times its mult, a multiple of 8)", "integer >= 1"},
  mults = {{1, 2}, "channel multiplier per level; 28x28 allows up to 2 levels", "list of integers >= 1"},
  T = {1000, "diffusion steps", "integer >= 1"},
  schedule = {"linear", "beta schedule: linear (1e-4..0.02) or cosine", {"linear", "cosine"}},
  batch_size = {64, "the batch of a step over all ranks", "integer >= 1"},
  lr = {2e-4, "Adam learning rate", "number > 0"},
  ema_decay = {0.999, "decay of the exponential moving average of the weights", "number >= 0 and <= 1"},
  ema_warmup = {true, "warm the average up: decay min(ema_decay, (1 + n) / (10 + n)) at its n-th update, as "
                .. "diffusers does, so that short runs sample trained weights", "boolean"},
  sample_steps = {50, "sampling steps of the sample grids (0: ancestral DDPM with all T steps)", "integer >= 0"},
  sampler = {computed("ddim; ddpm when sample_steps=0", function(c) return c.sample_steps == 0 and "ddpm" or "ddim" end),
             "sampler of the sample grids", {"ddpm", "ddim", "euler", "euler_a", "heun", "dpmpp_2m"}},
  spacing = {computed("leading; trailing with zero_snr", function(c) return c.zero_snr and "trailing" or "leading" end),
             "timestep spacing of the sampling steps", {"leading", "trailing", "linspace"}},
  karras = {false, "Karras et al. noise levels instead of the spacing (not for ddpm)", "boolean"},
  eta = {0.0, "DDIM eta (0: deterministic)", "number >= 0"},
  guidance = {3.0, "cond=class: classifier-free guidance w of the sample grids (0: conditional only)", "number >= 0"},
  n_samples = {computed("64; 8 per class with cond=class", function(c) return c.cond == "class" and 80 or 64 end),
               "samples in the final grid", "integer >= 1"},
  path_samples = {8, "samples shown along the denoising path (strip and GIF), at most n_samples", "integer >= 1"},
}, {
  description = "Train a DDPM on Fashion-MNIST and sample from its EMA weights.",
  common = {steps = {4000, "training steps (0: no limit)"}, sample_every = 2000,
            out = computed("runs/ddpm; runs/ddpm-class with cond=class",
                           function(c) return c.cond == "class" and "runs/ddpm-class" or "runs/ddpm" end),
            "epochs", "time_limit", "log_every", "ckpt_every", "ckpt_minutes", "seed", "threads", "resume", "on_nan",
            "dist"},
  check = function(c)
    if c.zero_snr and c.prediction ~= "v" then
      return "zero_snr=true needs prediction=v: at zero terminal SNR the noise of the last step says nothing of the image"
    end
    if c.sample_steps > c.T then return ("sample_steps=%d is more than T=%d"):format(c.sample_steps, c.T) end
    if c.karras and c.sampler == "ddpm" then return "karras=true does not apply to sampler=ddpm (it takes every step)" end
    if c.cond == "class" and c.n_samples < 10 then
      return ("n_samples=%d: cond=class draws one row per class, so at least 10"):format(c.n_samples)
    end
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
                                   free = {"n_samples", "path_samples", "sample_steps", "eta", "sampler", "spacing",
                                           "karras", "guidance"}})
if cfg.threads > 0 then ai.set_num_threads(cfg.threads) end
local mults = cfg.mults
local out = cfg.out
ai.manual_seed(cfg.seed)

local train_set = ai.data.fashion_mnist{split = "train"}
local class_names = cfg.cond == "class" and train_set.classes or nil
local net = models.UNet{ch = cfg.ch, mults = mults, classes = class_names and #class_names or 0}
local ddp = dist.DataParallel(net) -- rank 1's weights everywhere; gradients averaged over the ranks
local ema = ai.optim.EMA(net, {decay = cfg.ema_decay, warmup = cfg.ema_warmup})
local opt = ai.optim.Adam(net:parameters(), {lr = cfg.lr})
local sched = diffusion.schedule(cfg.T, cfg.schedule, {zero_snr = cfg.zero_snr})
local loader = ai.data.DataLoader(train_set,
                                  {batch_size = experiment.rank_batch(cfg.batch_size, dist), shuffle = true,
                                   drop_last = true, seed = cfg.seed, shard = true})
local step = 0
local last_ckpt = run.ckpt_path

local function checkpoint(path)
  run:save(path, {model = net, ema = ema, optimizer = opt, loader = loader, rng = true, step = step, config = cfg,
                  class_names = class_names}) -- the prompts sample.lua takes
end

if cfg.resume then
  local info = dist.load_checkpoint(last_ckpt, {model = net, ema = ema, optimizer = opt, loader = loader, rng = true})
  step = info.step
  run:resumed(step, {optimizers = {opt}})
end
dist.split_rng() -- each rank its own noise (after a resume too: rank 1's state decides all)

if main then experiment.prepare(out, cfg) end
local metrics = experiment.metrics(out .. "/metrics.jsonl", step, cfg.resume, main)

-- Samples from the EMA weights (with cond=class, n // classes of each class in turn, guided);
-- with `path`, also the first `path` of them along the way.
local function sample(n, path)
  local labels
  if class_names then
    local per = n // #class_names
    labels = ai.arange(1, #class_names + 1):view(-1, 1):expand(#class_names, per):reshape(-1):long()
    n = labels:size(1)
  end
  -- sample_steps=0: ancestral DDPM over all T steps, whatever the sampler
  local sampler, steps = cfg.sampler, cfg.sample_steps
  if steps == 0 then sampler, steps = "ddpm", cfg.T end
  local on_step, frames
  if path then on_step, frames = diffusion.path_recorder(path, steps) end
  local x = ema:with_averaged(net, function()
    net:eval()
    local r = diffusion.sample(net, sched, {n, 1, 28, 28}, {
      sampler = sampler, steps = steps, eta = cfg.eta, spacing = cfg.spacing, karras = cfg.karras,
      prediction = cfg.prediction, labels = labels, guidance = labels and cfg.guidance or nil,
      null_label = labels and net.null_label or nil, on_step = on_step})
    net:train()
    return r
  end)
  return x, frames, labels and n // #class_names or 8
end

local function save_samples(final)
  local n = final and cfg.n_samples or (class_names and 40 or 16)
  local x, frames, nrow = sample(n, final and cfg.path_samples or nil)
  local name = final and "samples.png" or ("samples_%06d.png"):format(step)
  ai.image.save(out .. "/" .. name, ai.image.grid(x, {nrow = nrow, normalize = true, range = {-1, 1}}))
  if final and frames and #frames > 0 then diffusion.save_path(out .. "/path", frames, x) end
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
  local x0, y = next_batch()
  local loss = diffusion.loss(net, sched, x0, {prediction = cfg.prediction, labels = class_names and y or nil,
                                               p_uncond = class_names and cfg.p_uncond or nil, null_label = net.null_label})
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
