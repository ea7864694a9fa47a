-- scripts/train_gan.lua: train a GAN on Fashion-MNIST (or a folder of PNGs) in a readable
-- custom training loop; writes config.json, metrics.jsonl, sample grids, checkpoints and a loss
-- plot under out=. `./aiart-lua scripts/train_gan.lua --help` lists the options. Data-parallel:
-- `mpirun -np 2 ./aiart-lua scripts/train_gan.lua dist=true` (each rank takes batch_size / 2 of
-- every batch and draws its own noise; rank 1 writes the files).
local ai = require "aiart"
local models = require "aiart.models"
local experiment = require "aiart.experiment"
local computed = ai.config.computed
local F = ai.F

local function wgan_or(gp, other) return function(c) if c.loss == "wgan-gp" then return gp end return other end end
local cfg = experiment.options(arg, {
  arch = {"mlp", "the seed MLP GAN, or DCGAN", {"mlp", "dcgan"}},
  loss = {"bce", "wgan-gp: a gradient penalty through double backward", {"bce", "hinge", "wgan-gp"}},
  data = {"fashion_mnist", "fashion_mnist, or a folder of PNGs (class subfolders optional)", "string"},
  bad_files = {"skip", "a folder's unreadable PNGs: skip them (with a warning) or stop", {"skip", "error"}},
  size = {28, "image size for a folder of PNGs (the models are built for 28)", "integer >= 1"},
  batch_size = {computed("32 mlp, 64 dcgan", function(c) return c.arch == "dcgan" and 64 or 32 end),
                "the architecture's reference batch; the batch of a step over all ranks", "integer >= 1"},
  lr = {computed("2e-4 (1e-4 wgan-gp)", wgan_or(1e-4, 2e-4)), "Adam learning rate", "number > 0"},
  beta1 = {0.5, "Adam beta1 (the usual GAN setting; the speed benchmark uses the reference 0.9 for mlp)",
           "number >= 0 and < 1"},
  beta2 = {computed("0.999 (0.9 wgan-gp)", wgan_or(0.9, 0.999)), "Adam beta2", "number >= 0 and < 1"},
  n_critic = {computed("1 (5 wgan-gp)", wgan_or(5, 1)), "D steps per G step", "integer >= 1"},
  gp_weight = {10.0, "gradient-penalty weight (wgan-gp)", "number >= 0"},
  z_dim = {100, "noise dimension", "integer >= 1"},
}, {
  description = "Train a GAN and write samples, metrics and checkpoints.",
  common = {steps = {4000, "stop after this many G steps (0: no limit)"}, sample_every = 500,
            out = computed("runs/<arch>-<loss>", function(c) return "runs/" .. c.arch .. "-" .. c.loss end),
            "epochs", "time_limit", "log_every", "ckpt_every", "ckpt_minutes", "seed", "threads", "resume", "on_nan",
            "dist"},
  check = function(c)
    if c.size ~= 28 then return ("size=%d: the models are built for 28x28 images"):format(c.size) end
  end,
})

local dist = experiment.distributed(cfg)
local main = dist.is_main()
local run = experiment.start(cfg, {dist = dist, apply = {"lr"}}) -- the lock, resume's options, signals
if cfg.threads > 0 then ai.set_num_threads(cfg.threads) end
local dcgan, wgan = cfg.arch == "dcgan", cfg.loss == "wgan-gp"
local out, n_critic = cfg.out, cfg.n_critic
ai.manual_seed(cfg.seed)

-- Models: D ends in a logit (BCE with logits is the stable form of the reference's
-- Sigmoid + BCE); a gradient penalty is per sample, so WGAN-GP's D has no batch norm.
local G, D
if dcgan then G, D = models.dcgan{z_dim = cfg.z_dim, d_norm = not wgan}
else G, D = models.mlp_gan{z_dim = cfg.z_dim, sigmoid = false} end
local ddpG, ddpD = dist.DataParallel(G), dist.DataParallel(D) -- rank 1's weights; averaged gradients
local optG = ai.optim.Adam(G:parameters(), {lr = cfg.lr, betas = {cfg.beta1, cfg.beta2}})
local optD = ai.optim.Adam(D:parameters(), {lr = cfg.lr, betas = {cfg.beta1, cfg.beta2}})

-- Data in [-1, 1]: 1 x 28 x 28 images; the MLP sees them flattened.
local ds
if cfg.data == "fashion_mnist" then ds = ai.data.fashion_mnist{split = "train"}
else
  local ok, err = pcall(function()
    ds = ai.data.ImageFolder{root = cfg.data, size = cfg.size, channels = 1, bad_files = cfg.bad_files,
                             transform = ai.data.transforms.normalize(0.5, 0.5)}
  end)
  if not ok then experiment.fail("data=" .. cfg.data .. ": " .. tostring(err)) end
  if main then print(experiment.describe_images(ds)) end
  -- a folder smaller than one batch: a smaller batch (a multiple of the ranks), or no run
  local world = dist.world_size()
  if #ds < cfg.batch_size then
    local b = #ds // world * world
    if b == 0 then
      experiment.fail(("data=%s: %d images, fewer than the %d ranks that each need one per batch"):format(cfg.data,
        #ds, world))
    end
    if main then
      print(("warning: %d images in %s, fewer than batch_size=%d: training with batch_size=%d"):format(#ds, cfg.data,
        cfg.batch_size, b))
    end
    cfg.batch_size = b
  end
end
local loader = ai.data.DataLoader(ds, {batch_size = experiment.rank_batch(cfg.batch_size, dist), shuffle = true,
                                       drop_last = true, seed = cfg.seed, shard = true})
local batches_per_epoch = #loader
local fixed_z = ai.randn(64, cfg.z_dim) -- the same noise for every sample grid
local step, last_ckpt = 0, run.ckpt_path

-- The loop, run at the end of the file (after a resume has loaded its checkpoint); the losses,
-- the gradient penalty, the sample grids and the checkpoints are defined below it.
local d_loss, g_loss, gradient_penalty, as_input, save_samples, checkpoint

local function train()
  local metrics = experiment.metrics(out .. "/metrics.jsonl", step, cfg.resume, main)
  local next_batch, finite = experiment.batches(loader), experiment.finite
  local guard = experiment.nan_guard(cfg.on_nan, run)
  local t0 = os.time()
  -- the total: steps=, or the G steps of epochs= (each takes n_critic batches), the fewer
  local total = cfg.steps > 0 and cfg.steps or nil
  if cfg.epochs > 0 then
    local by_epochs = -((-cfg.epochs * batches_per_epoch) // n_critic)
    total = math.min(total or by_epochs, by_epochs)
  end
  local bar = ai.progress.bar{total = total, desc = "gan " .. cfg.arch .. "/" .. cfg.loss, start = step,
                              disable = not main}
  local stop_reason, time_up, signal = "steps", false, nil
  while true do
    if cfg.steps > 0 and step >= cfg.steps then break end
    if cfg.epochs > 0 and (step * n_critic) // batches_per_epoch >= cfg.epochs then stop_reason = "epochs" break end
    if time_up then stop_reason = "time_limit" break end
    if run:interrupted(signal) then stop_reason = run.signal break end

    -- D: n_critic steps on real batches and detached fakes. The losses (and the clock) travel
    -- with the gradients, so that every rank sees their means and takes the same decisions.
    local ld, fake
    for _ = 1, n_critic do
      local real = as_input(next_batch())
      fake = G(ai.randn(real:size(1), cfg.z_dim))
      local loss = d_loss(D(real), D(fake:detach()))
      if wgan then loss = loss + cfg.gp_weight * gradient_penalty(real, fake:detach()) end
      optD:zero_grad()
      local m = ddpD:backward(loss, {loss = loss, time_up = experiment.time_up(t0, cfg.time_limit),
                                     signal = run:signal_flag()})
      ld, time_up, signal = m.loss, m.time_up > 0, m.signal
      if not finite(ld) then break end
      optD:step()
    end
    -- G: make D call the fakes real (the reference reuses the batch of fakes of the D step)
    local lg
    if finite(ld) then
      local loss = g_loss(D(fake))
      optG:zero_grad()
      lg = ddpG:backward(loss, {loss = loss}).loss
      if finite(lg) then optG:step() end
    end
    if not guard(step + 1, {D = ld or 0 / 0, G = lg or 0 / 0}) then
      optD:zero_grad()
      optG:zero_grad()
    else
      step = step + 1
      bar:update(1, {D = ld, G = lg})
      if step % cfg.log_every == 0 then metrics:write{step = step, loss_d = ld, loss_g = lg, time = run:elapsed()} end
      if cfg.sample_every > 0 and step % cfg.sample_every == 0 then dist.main_only(save_samples) end
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
  return stop_reason
end

-- One loss per formulation; D's takes logits of real and fake batches.
function d_loss(real_logits, fake_logits)
  if cfg.loss == "bce" then
    return F.bce_with_logits(real_logits, ai.ones_like(real_logits)) + F.bce_with_logits(fake_logits, ai.zeros_like(fake_logits))
  elseif cfg.loss == "hinge" then
    return (1 - real_logits):relu():mean() + (1 + fake_logits):relu():mean()
  end
  return fake_logits:mean() - real_logits:mean()
end

function g_loss(fake_logits)
  if cfg.loss == "bce" then return F.bce_with_logits(fake_logits, ai.ones_like(fake_logits)) end
  return -fake_logits:mean()
end

-- WGAN-GP: (||grad_x D(x_hat)|| - 1)^2 on random interpolates, differentiated again into D.
function gradient_penalty(real, fake)
  local shape = {real:size(1)}
  for _ = 2, real:dim() do shape[#shape + 1] = 1 end
  local alpha = ai.rand(shape)
  local x_hat = (alpha * real + (1 - alpha) * fake):detach():requires_grad_(true)
  local grad = ai.grad(D(x_hat), x_hat, {grad_outputs = ai.ones(real:size(1), 1), create_graph = true})
  local norm = (grad:reshape(real:size(1), -1):square():sum(2) + 1e-12):sqrt()
  return ((norm - 1):square()):mean()
end

function as_input(x) return dcgan and x or x:reshape(x:size(1), -1) end

function save_samples()
  local imgs = ai.no_grad(function()
    G:eval()
    local s = G(fixed_z):reshape(fixed_z:size(1), 1, 28, 28)
    G:train()
    return s
  end)
  local path = ("%s/samples/step_%06d.png"):format(out, step)
  experiment.mkdir(out .. "/samples")
  ai.image.save(path, ai.image.grid(imgs, {nrow = 8, normalize = true, range = {-1, 1}}))
  return path
end

function checkpoint(path)
  run:save(path, {G = G, D = D, optG = optG, optD = optD, loader = loader, rng = true, step = step, config = cfg,
                  extra = {fixed_z = fixed_z}})
end

if cfg.resume then
  local info = dist.load_checkpoint(last_ckpt, {G = G, D = D, optG = optG, optD = optD, loader = loader, rng = true})
  step = info.step
  fixed_z = info.extra.fixed_z
  run:resumed(step, {optimizers = {optG, optD}})
end
dist.split_rng() -- each rank its own noise (after a resume too: rank 1's state decides all)
if main then experiment.prepare(out, cfg) end

local stop_reason = train()
checkpoint(last_ckpt)
run:stop_training(step) -- after SIGINT or SIGTERM: where the checkpoint is, how to resume, exit 130/143
dist.main_only(function()
  local grid = save_samples()
  ai.plot.curves(out .. "/loss.png", ai.metrics.read(out .. "/metrics.jsonl"), {keys = {"loss_d", "loss_g"},
                 ylabel = "loss"})
  print(("stopped at step %d (%s); samples %s, checkpoint %s, losses %s/loss.png"):format(step, stop_reason, grid,
        last_ckpt, out))
end)
run:close()
