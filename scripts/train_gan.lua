-- scripts/train_gan.lua: train a GAN on Fashion-MNIST (or a folder of PNGs), as a readable
-- custom training loop. Writes config.json, metrics.jsonl, sample grids, checkpoints and a
-- loss plot under out= (default runs/<arch>-<loss>). `aiart-lua scripts/train_gan.lua --help`
-- lists the options; key=value arguments override them. Data-parallel over MPI:
-- `mpirun -np 2 aiart-lua scripts/train_gan.lua dist=true` (each rank takes batch_size / 2 of
-- every batch and draws its own noise; rank 1 writes the files).
local ai = require "aiart"
local models = require "aiart.models"
local experiment = require "aiart.experiment"
local F = ai.F

local defaults = {
  arch = "mlp",
  loss = "bce",
  data = "fashion_mnist",
  size = 28,
  batch_size = 0,
  lr = 0.0,
  beta1 = 0.5,
  beta2 = -1.0,
  n_critic = 0,
  gp_weight = 10.0,
  z_dim = 100,
  steps = 4000,
  epochs = 0,
  time_limit = 0,
  sample_every = 500,
  ckpt_every = 1000,
  log_every = 10,
  seed = 1,
  threads = 0,
  out = "",
  resume = false,
  on_nan = "stop",
  dist = false,
}
local help = {
  arch = "mlp (the seed GAN, batch 32) or dcgan (batch 64)",
  loss = "bce, hinge or wgan-gp (gradient penalty through double backward)",
  data = "fashion_mnist, or a folder of PNGs (class subfolders optional)",
  size = "image size for a folder of PNGs (the models are built for 28)",
  batch_size = "0: the architecture's reference batch (32 mlp, 64 dcgan)",
  lr = "0: 2e-4 (1e-4 for wgan-gp)",
  beta1 = "Adam beta1 (0.5, the usual GAN setting; the speed benchmark uses the reference 0.9 for mlp)",
  beta2 = "Adam beta2; -1: 0.999 (0.9 for wgan-gp)",
  n_critic = "D steps per G step; 0: 5 for wgan-gp, else 1",
  gp_weight = "gradient-penalty weight (wgan-gp)",
  z_dim = "noise dimension",
  steps = "stop after this many G steps (0: no limit)",
  epochs = "stop after this many epochs (0: no limit)",
  time_limit = "stop after this many seconds (0: no limit)",
  sample_every = "write a sample grid every N steps",
  ckpt_every = "keep a numbered checkpoint every N steps (last.safetensors is updated at each)",
  log_every = "write a metrics line every N steps",
  seed = "random seed",
  threads = "threads (0: all cores)",
  out = "output folder (default runs/<arch>-<loss>)",
  resume = "continue from out/last.safetensors",
  on_nan = "stop (keep the last good checkpoint) or skip (drop the batch)",
  dist = "data-parallel over the ranks of mpirun (batch_size is split among them)",
}
local cfg = ai.config.parse(arg, defaults, {help = help, description = "Train a GAN and write samples, metrics and checkpoints."})

local dist = experiment.distributed(cfg)
local main = dist.is_main()
if cfg.threads > 0 then ai.set_num_threads(cfg.threads) end
local dcgan, wgan = cfg.arch == "dcgan", cfg.loss == "wgan-gp"
if cfg.arch ~= "mlp" and not dcgan then error("arch must be mlp or dcgan, got " .. cfg.arch, 0) end
if cfg.loss ~= "bce" and cfg.loss ~= "hinge" and not wgan then error("loss must be bce, hinge or wgan-gp, got " .. cfg.loss, 0) end
local B = cfg.batch_size > 0 and cfg.batch_size or (dcgan and 64 or 32)
local lr = cfg.lr > 0 and cfg.lr or (wgan and 1e-4 or 2e-4)
local beta1 = cfg.beta1
local beta2 = cfg.beta2 >= 0 and cfg.beta2 or (wgan and 0.9 or 0.999)
local n_critic = cfg.n_critic > 0 and cfg.n_critic or (wgan and 5 or 1)
local out = cfg.out ~= "" and cfg.out or ("runs/" .. cfg.arch .. "-" .. cfg.loss)
ai.manual_seed(cfg.seed)

-- Models: D ends in a logit (BCE with logits is the stable form of the reference's
-- Sigmoid + BCE); a gradient penalty is per sample, so WGAN-GP's D has no batch norm.
local G, D
if dcgan then G, D = models.dcgan{z_dim = cfg.z_dim, d_norm = not wgan}
else G, D = models.mlp_gan{z_dim = cfg.z_dim, sigmoid = false} end
local ddpG, ddpD = dist.DataParallel(G), dist.DataParallel(D) -- rank 1's weights; averaged gradients
local optG = ai.optim.Adam(G:parameters(), {lr = lr, betas = {beta1, beta2}})
local optD = ai.optim.Adam(D:parameters(), {lr = lr, betas = {beta1, beta2}})

-- Data in [-1, 1]: 1 x 28 x 28 images; the MLP sees them flattened.
local ds
if cfg.data == "fashion_mnist" then ds = ai.data.fashion_mnist{split = "train"}
else
  ds = ai.data.ImageFolder{root = cfg.data, size = cfg.size, channels = 1,
                           transform = ai.data.transforms.normalize(0.5, 0.5)}
end
local loader = ai.data.DataLoader(ds, {batch_size = experiment.rank_batch(B, dist), shuffle = true, drop_last = true,
                                       seed = cfg.seed, shard = true})
local batches_per_epoch = #loader

local fixed_z = ai.randn(64, cfg.z_dim) -- the same noise for every sample grid
local step, start_epoch = 0, 0
local last_ckpt = out .. "/last.safetensors"

local function checkpoint(path)
  dist.main_only(ai.checkpoint.save, path, {G = G, D = D, optG = optG, optD = optD, loader = loader, rng = true,
                                            step = step, config = cfg, extra = {fixed_z = fixed_z}})
end

if cfg.resume then
  local info = dist.load_checkpoint(last_ckpt, {G = G, D = D, optG = optG, optD = optD, loader = loader, rng = true})
  step = info.step
  fixed_z = info.extra.fixed_z
  if main then print(("resumed %s at step %d"):format(last_ckpt, step)) end
end
dist.split_rng() -- each rank its own noise (after a resume too: rank 1's state decides all)

if main then experiment.prepare(out, cfg) end
local metrics = experiment.metrics(out .. "/metrics.jsonl", step, cfg.resume, main)

-- One loss per formulation; D's takes logits of real and fake batches.
local function d_loss(real_logits, fake_logits)
  if cfg.loss == "bce" then
    return F.bce_with_logits(real_logits, ai.ones_like(real_logits)) + F.bce_with_logits(fake_logits, ai.zeros_like(fake_logits))
  elseif cfg.loss == "hinge" then
    return (1 - real_logits):relu():mean() + (1 + fake_logits):relu():mean()
  end
  return fake_logits:mean() - real_logits:mean()
end

local function g_loss(fake_logits)
  if cfg.loss == "bce" then return F.bce_with_logits(fake_logits, ai.ones_like(fake_logits)) end
  return -fake_logits:mean()
end

-- WGAN-GP: (||grad_x D(x_hat)|| - 1)^2 on random interpolates, differentiated again into D.
local function gradient_penalty(real, fake)
  local shape = {real:size(1)}
  for _ = 2, real:dim() do shape[#shape + 1] = 1 end
  local alpha = ai.rand(shape)
  local x_hat = (alpha * real + (1 - alpha) * fake):detach():requires_grad(true)
  local grad = ai.grad(D(x_hat), x_hat, {grad_outputs = ai.ones(real:size(1), 1), create_graph = true})
  local norm = (grad:reshape(real:size(1), -1):square():sum(2) + 1e-12):sqrt()
  return ((norm - 1):square()):mean()
end

local function as_input(x) return dcgan and x or x:reshape(x:size(1), -1) end
local function as_images(x) return x:reshape(x:size(1), 1, 28, 28) end

local function save_samples()
  local imgs = ai.no_grad(function()
    G:eval()
    local s = as_images(G(fixed_z))
    G:train()
    return s
  end)
  local path = ("%s/samples/step_%06d.png"):format(out, step)
  ai.image.save(path, ai.image.grid(imgs, {nrow = 8, normalize = true, range = {-1, 1}}))
  return path
end

local next_batch = experiment.batches(loader)
local finite = experiment.finite
local guard = experiment.nan_guard(cfg.on_nan, last_ckpt)

local t0 = os.time()
local clock0 = os.clock()
local bar = ai.progress.bar{total = cfg.steps > 0 and cfg.steps or nil, desc = "gan " .. cfg.arch .. "/" .. cfg.loss,
                            start = step, disable = not main}
local stop_reason, time_up = "steps", false
while true do
  if cfg.steps > 0 and step >= cfg.steps then break end
  if cfg.epochs > 0 and (step * n_critic) // batches_per_epoch >= cfg.epochs then stop_reason = "epochs" break end
  if time_up then stop_reason = "time_limit" break end

  -- D: n_critic steps on real batches and detached fakes. The losses (and the clock) travel
  -- with the gradients, so that every rank sees their means and takes the same decisions.
  local ld, fake
  for _ = 1, n_critic do
    local real = as_input(next_batch())
    fake = G(ai.randn(real:size(1), cfg.z_dim))
    local loss = d_loss(D(real), D(fake:detach()))
    if wgan then loss = loss + cfg.gp_weight * gradient_penalty(real, fake:detach()) end
    optD:zero_grad()
    local m = ddpD:backward(loss, {loss = loss, time_up = experiment.time_up(t0, cfg.time_limit)})
    ld, time_up = m.loss, m.time_up > 0
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
    if step % cfg.log_every == 0 then metrics:write{step = step, loss_d = ld, loss_g = lg, time = os.clock() - clock0} end
    if step % cfg.sample_every == 0 then dist.main_only(save_samples) end
    if step % cfg.ckpt_every == 0 then
      checkpoint(last_ckpt)
      checkpoint(("%s/ckpt_%06d.safetensors"):format(out, step))
    end
  end
end
bar:close()
metrics:close()
checkpoint(last_ckpt)
dist.main_only(function()
  local grid = save_samples()
  ai.plot.curves(out .. "/loss.png", ai.metrics.read(out .. "/metrics.jsonl"), {keys = {"loss_d", "loss_g"}})
  print(("stopped at step %d (%s); samples %s, checkpoint %s, losses %s/loss.png"):format(step, stop_reason, grid,
        last_ckpt, out))
end)
