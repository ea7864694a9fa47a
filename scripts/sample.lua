-- scripts/sample.lua: load a generative checkpoint (train_gan.lua or train_ddpm.lua) and write
-- n samples as a PNG grid (out=*.png), a folder of PNGs (out=folder/) or an IDX file of u8
-- 28x28 images (out=*.idx or *.idx.gz). `--help` lists the options.
local ai = require "aiart"
local models = require "aiart.models"
local diffusion = require "aiart.diffusion"
local experiment = require "aiart.experiment"
local computed = ai.config.computed

-- The checkpoint, read once: by the first default taken from its training config, or below.
local parts
local function checkpoint(c)
  local f = io.open(c.ckpt, "rb")
  if not f then return {} end -- the check names the missing file
  f:close()
  parts = parts or ai.checkpoint.read(c.ckpt)
  return parts
end
local function as_trained(key) return function(c) return (checkpoint(c).config or {})[key] or 0 end end

local cfg = experiment.options(arg, {
  ckpt = {"runs/mlp-bce/last.safetensors", "checkpoint of train_gan.lua or train_ddpm.lua", "string"},
  n = {64, "number of samples", "integer >= 1"},
  out = {"samples.png", "a .png grid, a folder (ending in /) of PNGs, or an .idx / .idx.gz file", "string"},
  sample_steps = {computed("as trained", as_trained("sample_steps")), "DDPM only: DDIM steps (0: ancestral DDPM)",
                  "integer >= 0"},
  eta = {computed("as trained", as_trained("eta")), "DDPM only: DDIM eta", "number >= 0"},
  batch = {250, "samples generated per batch", "integer >= 1"},
}, {
  description = "Write samples of a trained GAN or DDPM.",
  common = {"seed"},
  check = function(c)
    local o = c.out
    local known = o:match("/$") or o:match("%.png$") or o:match("%.idx$") or o:match("%.idx%.gz$") or o:match("%-ubyte$")
      or o:match("%-ubyte%.gz$")
    if not known then
      local d = io.open(o .. "/.", "rb") -- an existing folder
      if d then d:close() else
        return ("out=%s: sample.lua writes a PNG grid (out=name.png), a folder of PNGs (out=folder/) or an IDX file "
          .. "(out=name.idx or name.idx.gz); PNG is its only image format"):format(o)
      end
    end
    return experiment.unreadable(c, "ckpt")
  end,
})

parts = parts or ai.checkpoint.read(cfg.ckpt)
local tc = parts.config or experiment.fail(("sample.lua: ckpt=%s is %s, with no training config"):format(cfg.ckpt,
  experiment.checkpoint_kind(parts)))
ai.manual_seed(cfg.seed)

-- A function producing k samples in [-1, 1] as k x 1 x 28 x 28.
local generate
if parts.G then
  local G = tc.arch == "dcgan" and models.dcgan{z_dim = tc.z_dim} or models.mlp_gan{z_dim = tc.z_dim}
  G:load_state_dict(parts.G)
  G:eval()
  generate = function(k)
    return ai.no_grad(function() return G(ai.randn(k, tc.z_dim)):reshape(k, 1, 28, 28) end)
  end
elseif parts.model and tc.T then
  local mults = tc.mults -- a list; "1,2" in the checkpoints of the trees before option rules
  if type(mults) ~= "table" then
    mults = {}
    for m in tostring(tc.mults):gmatch("[^,]+") do mults[#mults + 1] = tonumber(m) end
  end
  local net = models.UNet{ch = tc.ch, mults = mults}
  net:load_state_dict(parts.model)
  if parts.ema then -- sample from the averaged weights, as training does
    local ema = ai.optim.EMA(net, {decay = tc.ema_decay})
    ema:load_state_dict(parts.ema)
    ema:copy_to(net)
  end
  net:eval()
  local sched = diffusion.schedule(tc.T, tc.schedule)
  generate = function(k) return diffusion.sample(net, sched, {k, 1, 28, 28}, {steps = cfg.sample_steps, eta = cfg.eta}) end
else
  experiment.fail(("sample.lua: ckpt=%s is %s, not a GAN or DDPM checkpoint"):format(cfg.ckpt,
    experiment.checkpoint_kind(parts)))
end

local chunks, left = {}, cfg.n
local bar = ai.progress.bar{total = cfg.n, desc = "sampling"}
while left > 0 do
  local k = math.min(left, cfg.batch)
  chunks[#chunks + 1] = generate(k)
  left = left - k
  bar:update(k)
end
bar:close()
local x = ai.cat(chunks, 1)
local img01 = ((x + 1) / 2):clamp(0, 1)

local out = cfg.out
if out:match("%.png$") then
  ai.image.save(out, ai.image.grid(img01, {nrow = math.ceil(math.sqrt(cfg.n))}))
elseif out:match("%.idx$") or out:match("%.idx%.gz$") or out:match("%-ubyte$") or out:match("%-ubyte%.gz$") then
  ai.io.write_idx(out, (img01 * 255):round():reshape(cfg.n, 28, 28):byte())
else
  experiment.mkdir(out)
  for i = 1, cfg.n do ai.image.save(("%s/%05d.png"):format(out:gsub("/$", ""), i), img01[i]) end
end
print(("wrote %d samples to %s"):format(cfg.n, out))
