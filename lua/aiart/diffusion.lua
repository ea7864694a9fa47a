-- aiart.diffusion: DDPM noise schedules, the forward (noising) process, the training loss (eps or
-- v prediction, class labels with dropout for classifier-free guidance), and sampling: one entry
-- point, diffusion.sample, over the samplers of aiart.samplers (diffusion.samplers), with
-- guidance, img2img and inpainting. Timesteps are 1..T in Lua; the network sees t - 1 (0..T-1),
-- as the usual implementations do.
local ai = require "aiart"
local util = require "aiart.util"
local samplers = require "aiart.samplers"

local error, check_opts = util.error, util.check_opts -- positions name the caller's line (see util.error)

local M = {}
M.samplers = samplers

--- M.schedule(T, kind, {beta_start=1e-4, beta_end=0.02, zero_snr=false}) -> {T, betas, alphas,
-- abar} as Lua arrays of numbers (index 1..T). kind: "linear" (Ho et al.) or "cosine" (Nichol &
-- Dhariwal). zero_snr rescales the schedule so that abar_T = 0 (pure noise at the last step, as
-- Lin et al. 2023 prescribe; train it with v prediction).
function M.schedule(T, kind, opts)
  T = util.int("diffusion.schedule", "T", T, 1)
  opts = check_opts("diffusion.schedule", opts, {beta_start = true, beta_end = true, zero_snr = true})
  local betas = {}
  if kind == nil or kind == "linear" then
    local b0, b1 = opts.beta_start or 1e-4, opts.beta_end or 0.02
    for t = 1, T do betas[t] = b0 + (b1 - b0) * (t - 1) / math.max(T - 1, 1) end
  elseif kind == "cosine" then
    local s = 0.008
    local function f(t) return math.cos((t / T + s) / (1 + s) * math.pi / 2) ^ 2 end
    for t = 1, T do betas[t] = math.min(1 - f(t) / f(t - 1), 0.999) end
  else
    error("diffusion.schedule: kind must be 'linear' or 'cosine', got " .. tostring(kind), 2)
  end
  local alphas, abar, prod = {}, {}, 1
  for t = 1, T do
    alphas[t] = 1 - betas[t]
    prod = prod * alphas[t]
    abar[t] = prod
  end
  local zero_snr = util.check("diffusion.schedule", "zero_snr", opts.zero_snr, "boolean", true) or false
  if zero_snr then
    if T < 2 then error("diffusion.schedule: zero_snr needs T >= 2", 2) end
    -- sqrt(abar) shifted so that its last value is 0 and scaled so that its first stays
    local first, last = math.sqrt(abar[1]), math.sqrt(abar[T])
    for t = 1, T do abar[t] = ((math.sqrt(abar[t]) - last) * first / (first - last)) ^ 2 end
    abar[T] = 0
    for t = 1, T do
      alphas[t] = t == 1 and abar[1] or abar[t] / abar[t - 1]
      betas[t] = 1 - alphas[t]
    end
  end
  return {T = T, betas = betas, alphas = alphas, abar = abar, kind = kind or "linear", zero_snr = zero_snr}
end

-- Per-sample coefficients of the schedule at timesteps t (i64, 1-based) as an N x 1 x 1 x 1 tensor.
local function gather(values, t, like)
  local idx = t:tolist()
  local v = {}
  for i, ti in ipairs(idx) do v[i] = values[ti] end
  local shape = {#v}
  for _ = 2, like:dim() do shape[#shape + 1] = 1 end
  return ai.tensor(v, {dtype = like.dtype}):view(shape)
end

--- x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps
function M.q_sample(sched, x0, t, eps)
  local sa, s1 = {}, {}
  for i = 1, sched.T do sa[i] = math.sqrt(sched.abar[i]); s1[i] = math.sqrt(1 - sched.abar[i]) end
  return gather(sa, t, x0) * x0 + gather(s1, t, x0) * eps
end

--- diffusion.v_target(sched, x0, t, eps) -> v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0 (Salimans &
-- Ho 2022), the target of v prediction
function M.v_target(sched, x0, t, eps)
  local sa, s1 = {}, {}
  for i = 1, sched.T do sa[i] = math.sqrt(sched.abar[i]); s1[i] = math.sqrt(1 - sched.abar[i]) end
  return gather(sa, t, x0) * eps - gather(s1, t, x0) * x0
end

--- diffusion.drop_labels(labels, p, null_label) -> labels with each one replaced by null_label
-- with probability p (label dropout: one network learns the conditional and the unconditional
-- prediction, for classifier-free guidance)
function M.drop_labels(labels, p, null_label)
  if not util.is_tensor(labels) or labels.dtype ~= "i64" then error("diffusion.drop_labels: labels must be an i64 tensor", 2) end
  if type(p) ~= "number" or p < 0 or p > 1 then error("diffusion.drop_labels: p must be a number in [0, 1], got " .. tostring(p), 2) end
  null_label = util.int("diffusion.drop_labels", "null_label", null_label, 1)
  if p == 0 then return labels end
  local drop = ai.rand(labels.shape):lt(p)
  return ai.where(drop, ai.full(labels.shape, null_label, {dtype = "i64"}), labels)
end

--- diffusion.loss(net, sched, x0[, {prediction = "eps"|"v", labels =, p_uncond = 0, null_label =}])
-- -> the MSE between the noise (or v) and its prediction at random timesteps. With labels (i64,
-- 1-based), net(x_t, t, labels) is class-conditional and each label is dropped to null_label
-- with probability p_uncond.
function M.loss(net, sched, x0, opts)
  opts = check_opts("diffusion.loss", opts, {prediction = true, labels = true, p_uncond = true, null_label = true})
  local pred = opts.prediction or "eps"
  if pred ~= "eps" and pred ~= "v" then error("diffusion.loss: prediction must be 'eps' or 'v', got " .. tostring(pred), 2) end
  local n = x0:size(1)
  local t = ai.randint(1, sched.T, n)
  local eps = ai.randn(x0.shape)
  local xt = M.q_sample(sched, x0, t, eps)
  local target = pred == "v" and M.v_target(sched, x0, t, eps) or eps
  local labels = opts.labels
  if labels == nil then
    if opts.p_uncond ~= nil then error("diffusion.loss: p_uncond needs labels", 2) end
    return ai.mse_loss(net(xt, (t - 1):float()), target)
  end
  if (opts.p_uncond or 0) > 0 then labels = M.drop_labels(labels, opts.p_uncond, opts.null_label) end
  return ai.mse_loss(net(xt, (t - 1):float(), labels), target)
end

-- diffusion.sample's options, beside the samplers' own
local SAMPLE_OPTS = {sampler = true, steps = true, eta = true, spacing = true, karras = true, prediction = true,
                     labels = true, guidance = true, null_label = true, init = true, strength = true, mask = true,
                     jumps = true, clip = true, on_step = true}

--- diffusion.sample(net, sched, shape[, opts]) -> samples of shape {n, C, H, W}, in [-1, 1] (clip).
-- opts: sampler = a name of samplers.names or a function (default "ddim" when 0 < steps < T,
-- else "ddpm"), steps = 50 (ddpm: T), eta, spacing = "leading"|"trailing"|"linspace", karras,
-- prediction = "eps"|"v" (what net predicts), labels (i64, class-conditional) with guidance = w
-- and null_label (classifier-free guidance), init (img2img: an n x C x H x W batch in [-1, 1])
-- with strength in [0, 1] (default 1), mask (inpainting: 1 where pixels are generated), jumps,
-- clip = true, on_step(i, x_t, x0) after each step (x_t in the network's own scale).
function M.sample(net, sched, shape, opts)
  local fn = "diffusion.sample"
  opts = check_opts(fn, opts, SAMPLE_OPTS)
  local steps = opts.steps and util.int(fn, "steps", opts.steps, 0)
  local sampler = opts.sampler
  if sampler == nil then sampler = (steps and steps > 0 and steps < sched.T) and "ddim" or "ddpm" end
  if sampler == "ddpm" and (steps == nil or steps == 0) then steps = sched.T end
  if steps == nil or steps == 0 then steps = 50 end
  if steps > sched.T then error(("%s: steps=%d is more than the schedule's T=%d"):format(fn, steps, sched.T), 2) end
  local sigmas = samplers.sigmas(sched, steps, {spacing = opts.spacing, karras = opts.karras})
  if opts.strength ~= nil then
    if not opts.init then error(fn .. ": strength needs init (the picture to start from)", 2) end
    sigmas = samplers.img2img_sigmas(sigmas, opts.strength)
  end
  local den = samplers.denoiser(net, sched, {prediction = opts.prediction, labels = opts.labels,
                                             guidance = opts.guidance, null_label = opts.null_label, clip = opts.clip})
  local on_step = opts.on_step
  local user_step = on_step and function(i, x, x0)
    on_step(i, x / math.sqrt(1 + sigmas[i + 1] ^ 2), x0) -- sigma space back to the network's scale
  end
  local x = samplers.sample(sampler, den, shape, sigmas, {init = opts.init, mask = opts.mask, jumps = opts.jumps,
                                                          eta = opts.eta, on_step = user_step})
  if opts.clip ~= false then x = x:clamp(-1, 1) end
  return x
end

--- diffusion.path_recorder(k, steps) -> on_step, frames: an on_step for diffusion.sample that
-- keeps the first k samples about ten times along the way (and at the first step), in frames
function M.path_recorder(k, steps)
  k = util.int("diffusion.path_recorder", "k", k, 1)
  steps = util.int("diffusion.path_recorder", "steps", steps, 1)
  local frames, every = {}, math.max(1, steps // 10)
  return function(i, xt)
    if i % every == 0 or i == 1 then frames[#frames + 1] = xt:narrow(1, 1, math.min(k, xt:size(1))):clone() end
  end, frames
end

--- diffusion.save_path(base, frames, x): base .. ".png", a strip with one row per sample and one
-- column per frame (the noise on the left, the samples x on the right), and base .. ".gif", the
-- frames as an animation that lingers on the result. Values in [-1, 1].
function M.save_path(base, frames, x)
  if type(base) ~= "string" then error("diffusion.save_path: base must be a string", 2) end
  if type(frames) ~= "table" or #frames == 0 then error("diffusion.save_path: frames must be a non-empty list", 2) end
  local k = frames[1]:size(1)
  local all = {}
  for i, f in ipairs(frames) do all[i] = f end
  all[#all + 1] = x:narrow(1, 1, k)
  local cols = {}
  for i = 1, k do
    for _, f in ipairs(all) do cols[#cols + 1] = f:narrow(1, i, 1) end
  end
  local grid = {nrow = #all, normalize = true, range = {-1, 1}}
  ai.image.save(base .. ".png", ai.image.grid(ai.cat(cols, 1), grid))
  local gif = {}
  for _, f in ipairs(all) do gif[#gif + 1] = ai.image.grid(f:clamp(-1, 1), {nrow = k, normalize = true, range = {-1, 1}}) end
  for _ = 1, 5 do gif[#gif + 1] = gif[#gif] end -- linger on the result
  ai.io.save_gif(base .. ".gif", gif, {delay = 120})
end

-- A class name as prompts match it: lower case, spaces and dashes folded.
local function fold(name) return (name:lower():gsub("[%s_%-]+", " "):gsub("^ ", ""):gsub(" $", "")) end

--- diffusion.parse_prompt(text, class_names) -> labels, names: the classes that the
-- comma-separated names of text mean (1-based labels, and the class names), in order. Case,
-- spaces and dashes do not matter, and a name with parts ("T-shirt/top") is matched by each of
-- them; a name that is no class is an error listing the classes.
function M.parse_prompt(text, class_names)
  if type(text) ~= "string" then error("diffusion.parse_prompt: text must be a string, got " .. type(text), 2) end
  if type(class_names) ~= "table" or #class_names == 0 then
    error("diffusion.parse_prompt: class_names must be a non-empty list of names", 2)
  end
  local by_name = {}
  for i, c in ipairs(class_names) do
    by_name[fold(c)] = by_name[fold(c)] or i
    for part in c:gmatch("[^/]+") do by_name[fold(part)] = by_name[fold(part)] or i end
  end
  local labels, names = {}, {}
  for item in (text .. ","):gmatch("([^,]*),") do
    local key = fold(item)
    if key == "" then error(("prompt=%q: an empty name (names are separated by commas)"):format(text), 2) end
    local i = by_name[key]
    if not i then
      error(("prompt: %q is not a class of this model; the classes are: %s"):format(item:match("^%s*(.-)%s*$"),
            table.concat(class_names, ", ")), 2)
    end
    labels[#labels + 1], names[#names + 1] = i, class_names[i]
  end
  return labels, names
end

--- diffusion.ddpm_sample(net, sched, shape[, {on_step =}]): diffusion.sample with sampler "ddpm"
-- (all T steps)
function M.ddpm_sample(net, sched, shape, opts)
  opts = check_opts("diffusion.ddpm_sample", opts, {on_step = true})
  return M.sample(net, sched, shape, {sampler = "ddpm", on_step = opts.on_step})
end

--- diffusion.ddim_sample(net, sched, shape[, {steps = 50, eta = 0, on_step =}]): diffusion.sample
-- with sampler "ddim" (Song et al.; eta = 0 is deterministic)
function M.ddim_sample(net, sched, shape, opts)
  opts = check_opts("diffusion.ddim_sample", opts, {steps = true, eta = true, on_step = true})
  return M.sample(net, sched, shape, {sampler = "ddim", steps = opts.steps or 50, eta = opts.eta, on_step = opts.on_step})
end

return util.strict_args(M, "diffusion.")
