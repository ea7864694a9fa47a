-- scripts/sample.lua: load a generative checkpoint (train_gan.lua or train_ddpm.lua) and write
-- n samples as a PNG grid (out=*.png), a folder of PNGs (out=folder/) or an IDX file of u8
-- 28x28 images (out=*.idx or *.idx.gz). For a DDPM: any sampler and step count, class prompts
-- with classifier-free guidance (a cond=class checkpoint), img2img (init=, strength=) and
-- inpainting (init=, mask=), and the denoising path (path=). `--help` lists the options.
--   ./aiart-lua scripts/sample.lua ckpt=runs/ddpm-class/last.safetensors prompt="sneaker,bag" \
--       sampler=dpmpp_2m steps=15 guidance=3
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
local function trained(c) return checkpoint(c).config or {} end
local function as_trained(key, default) return function(c) return trained(c)[key] or default end end
local function conditional(c) return checkpoint(c).class_names ~= nil end

-- Options that only a DDPM checkpoint takes.
local DDPM_ONLY = {"sampler", "steps", "eta", "spacing", "karras", "prompt", "guidance", "init", "strength", "mask",
                   "jumps", "path"}

local cfg = experiment.options(arg, {
  ckpt = {"runs/mlp-bce/last.safetensors", "checkpoint of train_gan.lua or train_ddpm.lua", "string"},
  n = {computed("64; 8 per prompt", function(c)
         local k = 0
         for _ in c.prompt:gmatch("[^,]+") do k = k + 1 end
         return k > 0 and 8 * k or 64
       end), "number of samples (with prompts: split evenly, one row each)", "integer >= 1"},
  out = {"samples.png", "a .png grid, a folder (ending in /) of PNGs, or an .idx / .idx.gz file", "string"},
  sampler = {computed("as trained; ddim", as_trained("sampler", "ddim")),
             "DDPM: the sampler", {"ddpm", "ddim", "euler", "euler_a", "heun", "dpmpp_2m"}},
  steps = {computed("as trained (sample_steps)", as_trained("sample_steps", 50)),
           "DDPM: sampling steps (0: ancestral DDPM with all T steps)", "integer >= 0"},
  eta = {computed("as trained", as_trained("eta", 0)), "DDPM: eta of ddim (0: deterministic) and euler_a (1)",
         "number >= 0"},
  spacing = {computed("as trained; leading", as_trained("spacing", "leading")), "DDPM: timestep spacing",
             {"leading", "trailing", "linspace"}},
  karras = {false, "DDPM: Karras et al. noise levels instead of the spacing", "boolean"},
  prompt = {"", "DDPM cond=class: class names separated by commas, one row each (empty: unconditional)", "string"},
  guidance = {computed("3 with a prompt, else 0", function(c) return (c.prompt ~= "" and conditional(c)) and 3 or 0 end),
              "DDPM cond=class: classifier-free guidance w, (1 + w) eps(x, c) - w eps(x) (0: conditional only)",
              "number >= 0"},
  init = {"", "DDPM: a PNG to start from (img2img, or inpainting with mask=), resized to the model's size", "string"},
  strength = {computed("0.6; 1 with a mask", function(c) return c.mask ~= "" and 1 or 0.6 end),
              "DDPM init=: how far to noise the picture (0: unchanged, 1: pure noise)", "number >= 0 and <= 1"},
  mask = {"", "DDPM init=: a PNG of init's size, white where pixels are generated, black where init is kept",
          "string"},
  jumps = {0, "DDPM mask=: resampling jumps per step (RePaint)", "integer >= 0"},
  path = {"", "DDPM: also write the denoising path of the first 8 samples: this .png (a strip) and a .gif beside it",
          "string"},
  batch = {250, "samples generated per batch", "integer >= 1"},
}, {
  description = "Write samples of a trained GAN or DDPM.",
  common = {"seed"},
  aliases = {sample_steps = "steps"},
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
    if c.path ~= "" and not c.path:match("%.png$") then
      return ("path=%s: the strip is a PNG (path=name.png; the GIF goes beside it)"):format(c.path)
    end
    if c.mask ~= "" and c.init == "" then return "mask= needs init= (the picture to repair)" end
    if c.karras and c.sampler == "ddpm" then return "karras=true does not apply to sampler=ddpm (it takes every step)" end
    return experiment.unreadable(c, "ckpt", "init", "mask")
  end,
})

parts = parts or ai.checkpoint.read(cfg.ckpt)
local tc = parts.config or experiment.fail(("sample.lua: ckpt=%s is %s, with no training config"):format(cfg.ckpt,
  experiment.checkpoint_kind(parts)))
ai.manual_seed(cfg.seed)
local given = experiment.given(cfg)
local function fail(msg) experiment.fail("sample.lua: " .. msg) end

-- A picture of the user's as 1 x C x 28 x 28 in [0, 1]: PNG, alpha dropped, colour to grey for
-- a one-channel model (said once), resized.
local function load_picture(key, channels)
  local ok, img = pcall(ai.image.load, cfg[key])
  if not ok then fail(("%s=%s: %s"):format(key, cfg[key], tostring(img):gsub("^[^:]*:%d+: ", ""))) end
  local c = img:size(1)
  if c == 2 or c == 4 then img, c = img:narrow(1, 1, c - 1), c - 1 end
  if c == 3 and channels == 1 then
    img = (img[1] * 0.299 + img[2] * 0.587 + img[3] * 0.114):unsqueeze(1)
    if key == "init" then print(("%s=%s: colour converted to grey (the model has one channel)"):format(key, cfg[key])) end
  elseif c ~= channels then
    fail(("%s=%s has %d channels; the model takes %d"):format(key, cfg[key], c, channels))
  end
  return img
end

-- A function producing k samples in [-1, 1] as k x 1 x 28 x 28 (labels: their classes, or nil);
-- for a DDPM also the images that go before each row (the input, the mask).
local generate, before, nrow
if parts.G then
  for _, k in ipairs(DDPM_ONLY) do
    if given[k] then fail(("ckpt=%s is a GAN: %s= applies to a DDPM checkpoint"):format(cfg.ckpt, k)) end
  end
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
  local class_names = parts.class_names
  local net = models.UNet{ch = tc.ch, mults = mults, classes = class_names and #class_names or 0}
  net:load_state_dict(parts.model)
  if parts.ema then -- sample from the averaged weights, as training does
    local ema = ai.optim.EMA(net, {decay = tc.ema_decay})
    ema:load_state_dict(parts.ema)
    ema:copy_to(net)
  end
  net:eval()
  local sched = diffusion.schedule(tc.T, tc.schedule, {zero_snr = tc.zero_snr or false})
  if cfg.steps > tc.T then fail(("steps=%d is more than the model's T=%d"):format(cfg.steps, tc.T)) end
  -- prompts: the rows' classes
  local row_labels
  if cfg.prompt ~= "" then
    if not class_names then
      fail(("prompt=: ckpt=%s is unconditional (trained without cond=class)"):format(cfg.ckpt))
    end
    local ok, labels = pcall(diffusion.parse_prompt, cfg.prompt, class_names)
    if not ok then fail(tostring(labels):gsub("^[^:]*:%d+: ", "")) end
    if cfg.n % #labels ~= 0 then
      fail(("n=%d does not split into the %d prompts' rows; give a multiple of %d"):format(cfg.n, #labels, #labels))
    end
    row_labels = labels
  elseif given.guidance and cfg.guidance > 0 then
    fail(class_names and "guidance= needs a prompt (prompt=\"" .. class_names[1] .. "\")"
         or ("guidance=: ckpt=%s is unconditional (trained without cond=class)"):format(cfg.ckpt))
  end
  -- img2img and inpainting
  local init, mask
  if cfg.init ~= "" then
    local pic = load_picture("init", 1)
    init = ai.image.resize(pic, {size = {28, 28}, mode = pic:size(2) > 28 and "area" or "bilinear"}) * 2 - 1
    before = {init}
    if cfg.mask ~= "" then
      local m = load_picture("mask", 1)
      if m:size(2) ~= pic:size(2) or m:size(3) ~= pic:size(3) then
        fail(("mask=%s is %dx%d, init=%s is %dx%d: the mask must be the picture's size"):format(cfg.mask, m:size(3),
          m:size(2), cfg.init, pic:size(3), pic:size(2)))
      end
      mask = ai.image.resize(m, {size = {28, 28}, mode = m:size(2) > 28 and "area" or "nearest"}):ge(0.5):float()
      before[2] = mask * 2 - 1
    end
  elseif given.strength then
    fail("strength= needs init= (the picture to start from)")
  end
  if given.jumps and not mask then fail("jumps= needs mask= (inpainting)") end
  local steps, sampler = cfg.steps, cfg.sampler
  if steps == 0 then -- ancestral DDPM over all T steps, as sample_steps=0 has always meant
    if given.sampler and sampler ~= "ddpm" then
      fail(("steps=0 means ancestral DDPM over all T steps; give sampler=%s a number of steps"):format(sampler))
    end
    sampler, steps = "ddpm", tc.T
  end
  if class_names and not row_labels then
    print(("no prompt: unconditional samples (the model's \"no class\"); prompt= takes %s"):format(
      table.concat(class_names, ", ")))
  end
  local n_done = 0
  generate = function(k)
    local labels
    if row_labels then
      local per, l = cfg.n // #row_labels, {}
      for i = 1, k do l[i] = row_labels[(n_done + i - 1) // per + 1] end
      labels = ai.tensor(l, {dtype = "i64"})
    elseif class_names then
      labels = ai.full({k}, net.null_label, {dtype = "i64"})
    end
    local on_step, frames
    if cfg.path ~= "" and n_done == 0 then on_step, frames = diffusion.path_recorder(math.min(8, k), steps) end
    local rep = function(t) return t and t:view(1, 1, 28, 28):expand(k, 1, 28, 28):contiguous() end
    local x = diffusion.sample(net, sched, {k, 1, 28, 28}, {
      sampler = sampler, steps = steps, eta = cfg.eta, spacing = cfg.spacing, karras = cfg.karras,
      prediction = tc.prediction or "eps", labels = labels,
      guidance = (row_labels and cfg.guidance > 0) and cfg.guidance or nil, null_label = net.null_label,
      init = rep(init), strength = init and cfg.strength or nil, mask = rep(mask), jumps = mask and cfg.jumps or nil,
      on_step = on_step})
    if frames and #frames > 0 then diffusion.save_path(cfg.path:gsub("%.png$", ""), frames, x) end
    n_done = n_done + k
    return x
  end
  nrow = row_labels and cfg.n // #row_labels or nil
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
  nrow = nrow or math.ceil(math.sqrt(cfg.n))
  local cells = img01
  if before then -- each row starts with the input (and the mask)
    local rows = {}
    for r = 1, math.ceil(cfg.n / nrow) do
      for _, b in ipairs(before) do rows[#rows + 1] = ((b + 1) / 2):view(1, 1, 28, 28) end
      local first = (r - 1) * nrow + 1
      rows[#rows + 1] = img01:narrow(1, first, math.min(nrow, cfg.n - first + 1))
    end
    cells, nrow = ai.cat(rows, 1), nrow + #before
  end
  ai.image.save(out, ai.image.grid(cells, {nrow = nrow}))
elseif out:match("%.idx$") or out:match("%.idx%.gz$") or out:match("%-ubyte$") or out:match("%-ubyte%.gz$") then
  ai.io.write_idx(out, (img01 * 255):round():reshape(cfg.n, 28, 28):byte())
else
  experiment.mkdir(out)
  for i = 1, cfg.n do ai.image.save(("%s/%05d.png"):format(out:gsub("/$", ""), i), img01[i]) end
end
print(("wrote %d samples to %s%s"):format(cfg.n, out, cfg.path ~= "" and (", the path to " .. cfg.path) or ""))
