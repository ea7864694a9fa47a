-- scripts/style_transfer.lua: neural style transfer after Gatys et al.: optimise an image so
-- that its Gram matrices match a style image's over several layers and its features match a
-- content image's, with a total-variation smoother; L-BFGS (default) or Adam.
-- Features: VGG-19 from a safetensors file (vgg=..., see README for the export), or, without
-- one, a fixed random-weight multi-scale CNN (Ustyuzhaninov et al., ICLR 2017) so that the
-- script runs out of the box. Without content=/style=, a generated pair is used. Resumable:
-- out/last.safetensors holds the image and the optimiser's state (SIGINT writes it, and the
-- result so far).
local ai = require "aiart"
local models = require "aiart.models"
local experiment = require "aiart.experiment"
local F = ai.F

local cfg = experiment.options(arg, {
  content = {"", "content image (PNG); empty: a generated scene", "string"},
  style = {"", "style image (PNG); empty: a generated pattern", "string"},
  vgg = {"", "VGG-19 weights (safetensors, torchvision key names features.N.weight); empty: random CNN", "string"},
  size = {256, "size of the longer side of the output", "integer >= 16 and <= 512"},
  steps = {100, "optimiser iterations (L-BFGS: each runs up to 20 evaluations... see lbfgs_iter)", "integer >= 0"},
  optimizer = {"lbfgs", "lbfgs or adam", {"lbfgs", "adam"}},
  lr = {1.0, "learning rate (L-BFGS: 1; Adam: try 0.02)", "number > 0"},
  lbfgs_iter = {1, "L-BFGS inner iterations per step", "integer >= 1"},
  style_weight = {1e5, "weight of the Gram-matrix losses", "number >= 0"},
  content_weight = {1.0, "weight of the content loss (0: texture synthesis)", "number >= 0"},
  tv_weight = {1e-4, "weight of the total-variation loss", "number >= 0"},
  init = {"content", "the image that the optimisation starts from", {"content", "noise"}},
  save_every = {25, "write an intermediate image every N steps (0: never)", "integer >= 0"},
}, {
  description = "Gatys-style neural style transfer.",
  common = {out = {"runs/style", "output folder (result.png, step_*.png, content.png, style.png)"}, "seed", "threads",
            "resume", "ckpt_minutes"},
  check = function(c) return experiment.unreadable(c, "content", "style", "vgg") end,
})

-- the lock, resume's options (the image and the optimiser continue; lr applies), signals
local run = experiment.start(cfg, {apply = {"lr"}, free = {"save_every"}})
if cfg.threads > 0 then ai.set_num_threads(cfg.threads) end
ai.manual_seed(cfg.seed)

---------------------------------------------------------------------- the default pair

-- A scene: sky gradient, a sun, hills; and a style: coloured diagonal waves. Both 3 x H x W.
local function generated_content(h, w)
  local y = ai.linspace(0, 1, h):view(h, 1):expand(h, w)
  local x = ai.linspace(0, 1, w):view(1, w):expand(h, w)
  local sky = ai.stack({0.3 + 0.4 * y, 0.5 + 0.3 * y, 0.9 - 0.2 * y}, 1)
  local sun = (((x - 0.7):square() + (y - 0.3):square()):sqrt() - 0.12):lt(0):float()
  local hill = (y - (0.65 + 0.1 * (x * 9):sin())):gt(0):float()
  local img = sky * (1 - sun) + ai.tensor({1.0, 0.85, 0.3}):view(3, 1, 1) * sun
  img = img * (1 - hill) + ai.stack({0.2 + 0.2 * y, 0.5 + 0.1 * x, 0.2 * ai.ones(h, w)}, 1) * hill
  return img:clamp(0, 1)
end

local function generated_style(h, w)
  local y = ai.linspace(0, 1, h):view(h, 1):expand(h, w)
  local x = ai.linspace(0, 1, w):view(1, w):expand(h, w)
  local a = ((x + y) * 18 + (x * 7):sin() * 2):sin()
  local b = ((x - y) * 11 + (y * 5):cos() * 3):sin()
  return ai.stack({0.5 + 0.45 * a, 0.5 + 0.45 * a * b, 0.5 + 0.45 * b}, 1):clamp(0, 1)
end

local function load_or_make(path, maker, name)
  if path ~= "" then
    local img = ai.image.load(path)
    if img:size(1) == 1 then img = img:expand(3, -1, -1) end
    return img:narrow(1, 1, 3)
  end
  local img = maker(256, 256)
  ai.image.save(cfg.out .. "/" .. name .. ".png", img)
  return img
end

local function fit(img)
  local h, w = img:size(2), img:size(3)
  local s = cfg.size / math.max(h, w)
  local nh, nw = math.max(16, math.floor(h * s + 0.5)), math.max(16, math.floor(w * s + 0.5))
  return ai.image.resize(img, {size = {nh, nw}}):unsqueeze(1):contiguous()
end

local content = fit(load_or_make(cfg.content, generated_content, "content"))
local style = fit(load_or_make(cfg.style, generated_style, "style"))

---------------------------------------------------------------------- features

-- extract(x) -> {style = {feature maps...}, content = {feature maps...}}
local extract
if cfg.vgg ~= "" then
  local net = models.vgg19_features{upto = "relu5_1"}
  local ok, weights = pcall(ai.load, cfg.vgg)
  if not ok then experiment.fail(("vgg=%s: %s"):format(cfg.vgg, tostring(weights))) end
  -- strictly: a file of other names would leave random weights under the name of VGG-19
  local function some(list)
    table.sort(list)
    local shown = {}
    for i = 1, math.min(#list, 4) do shown[i] = list[i] end
    return table.concat(shown, ", ") .. (#list > 4 and (", ... (%d in all)"):format(#list) or "")
  end
  local want, missing, unexpected = net:state_dict(), {}, {}
  for k in pairs(want) do if weights[k] == nil then missing[#missing + 1] = k end end
  for k in pairs(weights) do if want[k] == nil then unexpected[#unexpected + 1] = tostring(k) end end
  local why = {}
  if #missing > 0 then why[#why + 1] = "missing keys " .. some(missing) end
  if #unexpected > 0 then why[#why + 1] = "unexpected keys " .. some(unexpected) end
  if #why == 0 then
    ok, weights = pcall(net.load_state_dict, net, weights)
    if not ok then why[1] = tostring(weights):gsub("^load_state_dict: ", "") end
  end
  if #why > 0 then
    experiment.fail(("vgg=%s is not VGG-19's features as the README exports them (torchvision's features.N.weight "
      .. "and features.N.bias up to conv5_1): %s"):format(cfg.vgg, table.concat(why, "; ")))
  end
  for _, p in ipairs(net:parameters()) do p:requires_grad_(false) end
  net:eval()
  local names = models.VGG_LAYER_NAMES
  local style_layers = {relu1_1 = true, relu2_1 = true, relu3_1 = true, relu4_1 = true, relu5_1 = true}
  local mean = ai.tensor({0.485, 0.456, 0.406}):view(1, 3, 1, 1)
  local std = ai.tensor({0.229, 0.224, 0.225}):view(1, 3, 1, 1)
  extract = function(x)
    local h, res = (x - mean) / std, {style = {}, content = {}}
    for i, layer in ipairs(net.features:children()) do
      h = layer(h)
      if style_layers[names[i]] then res.style[#res.style + 1] = h end
      if names[i] == "relu4_1" then res.content[1] = h end
    end
    return res
  end
  print("features: VGG-19 from " .. cfg.vgg)
else
  local net = models.random_texture_net{seed = 1234}
  extract = function(x)
    local res = {style = {}, content = {}}
    local xs = x - 0.5
    for scale = 1, 3 do
      for _, conv in ipairs(net.convs:children()) do
        local f = ai.relu(conv(xs))
        res.style[#res.style + 1] = f
        if scale == 1 and #res.content == 0 then res.content[1] = f end
      end
      xs = F.avg_pool2d(xs, 2)
    end
    return res
  end
  print("features: random multi-scale CNN (pass vgg=<file> for VGG-19)")
end

local function gram(f)
  local _, c, h, w = table.unpack(f.shape)
  local m = f:reshape(c, h * w)
  return m:matmul(m:t()) / (c * h * w)
end

local style_grams = ai.no_grad(function()
  local g = {}
  for i, f in ipairs(extract(style).style) do g[i] = gram(f) end
  return g
end)
local content_feats = ai.no_grad(function() return extract(content).content end)

---------------------------------------------------------------------- optimisation

local img = cfg.init == "noise" and ai.rand(content.shape) or content:clone()
img:requires_grad_(true)

local function total_loss()
  local f = extract(img)
  local ls = 0
  for i, g in ipairs(style_grams) do ls = ls + F.mse_loss(gram(f.style[i]), g, {reduction = "sum"}) end
  local loss = cfg.style_weight * ls
  if cfg.content_weight > 0 then
    loss = loss + cfg.content_weight * F.mse_loss(f.content[1], content_feats[1])
  end
  if cfg.tv_weight > 0 then
    local dx = img:narrow(4, 2, img:size(4) - 1) - img:narrow(4, 1, img:size(4) - 1)
    local dy = img:narrow(3, 2, img:size(3) - 1) - img:narrow(3, 1, img:size(3) - 1)
    loss = loss + cfg.tv_weight * (dx:square():sum() + dy:square():sum())
  end
  return loss
end

local opt
if cfg.optimizer == "lbfgs" then
  opt = ai.optim.LBFGS({img}, {lr = cfg.lr, max_iter = cfg.lbfgs_iter, history_size = 50,
                              line_search_fn = "strong_wolfe"})
else
  opt = ai.optim.Adam({img}, {lr = cfg.lr})
end

local function closure()
  opt:zero_grad()
  local loss = total_loss()
  loss:backward()
  return loss
end

local step = 0
local function checkpoint()
  run:save(run.ckpt_path, {image = img, optimizer = opt, rng = true, step = step, config = cfg})
end
if cfg.resume then
  local info = ai.checkpoint.load(run.ckpt_path, {optimizer = opt, rng = true})
  ai.no_grad(function() img:copy_(info.image) end)
  step = info.step
  run:resumed(step, {optimizers = {opt}})
end
experiment.prepare(cfg.out, cfg)
local metrics = experiment.metrics(cfg.out .. "/metrics.jsonl", step, cfg.resume)

local bar = ai.progress.bar{total = cfg.steps, desc = "style", start = step}
while step < cfg.steps and not run:interrupted() do
  local last = opt:step(closure)
  ai.no_grad(function() img:clamp_(0, 1) end)
  step = step + 1
  local l = type(last) == "number" and last or last:item()
  bar:update(1, {loss = l})
  metrics:write{step = step, loss = l, time = run:elapsed()}
  if cfg.save_every > 0 and step % cfg.save_every == 0 then
    ai.image.save(("%s/step_%04d.png"):format(cfg.out, step), img:detach()[1])
  end
  if run:checkpoint_due() then checkpoint() end
end
bar:close()
metrics:close()
ai.image.save(cfg.out .. "/result.png", img:detach()[1])
checkpoint()
run:stop_training(step, (", the result so far %s/result.png"):format(cfg.out))
print(("wrote %s/result.png"):format(cfg.out))
run:close()
