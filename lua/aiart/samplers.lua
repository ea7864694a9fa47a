--[[ aiart.samplers (also diffusion.samplers): sampling a diffusion model, as Stable Diffusion's front
ends do: a choice of samplers over a list of noise levels, classifier-free guidance, img2img and
inpainting. Everything works in "sigma space" (Karras et al. 2022; k-diffusion): x = x0 + sigma *
eps, where a DDPM timestep t has sigma_t = sqrt((1 - abar_t) / abar_t).

  local den = samplers.denoiser(net, sched, {prediction = "eps", labels = y, guidance = 3})
  local sigmas = samplers.sigmas(sched, 20, {spacing = "leading", karras = false})
  local x = samplers.sample("dpmpp_2m", den, {n, C, H, W}, sigmas)

A denoiser is a function den(x, sigma) -> the prediction of x0 (x and the result in sigma space,
sigma a number). A sampler is a function sampler(den, x, sigmas, opts) -> x: x starts at the noise
level sigmas[1], sigmas descends to 0; opts.on_step(i, x, x0) is called after step i, and
opts.noise(shape) draws the fresh noise of the ancestral samplers. Write your own with that
signature and pass it where a name is taken.
]]
local ai = require "aiart"
local util = require "aiart.util"

local error, check_opts = util.error, util.check_opts

local M = {}

---------------------------------------------------------------------------- noise levels

-- The smallest abar the samplers start from: a zero-terminal-SNR schedule's abar_T = 0 is an
-- infinite sigma, taken as 2^-24 (sigma 4096) as diffusers does.
local ABAR_FLOOR = 2 ^ -24

--- samplers.sched_sigmas(sched) -> {sigma_1, ..., sigma_T} (ascending) of a DDPM schedule
function M.sched_sigmas(sched)
  local s = {}
  for t = 1, sched.T do
    local ab = math.max(sched.abar[t], ABAR_FLOOR)
    s[t] = math.sqrt((1 - ab) / ab)
  end
  return s
end

--- samplers.timesteps(T, steps, spacing) -> the 1-based timesteps of a sampling run, descending:
-- "leading" (0, T/steps, ...: DDIM's and Stable Diffusion's default), "trailing" (..., T: reaches
-- the last step, wanted with zero terminal SNR) or "linspace" (evenly from 1 to T).
function M.timesteps(T, steps, spacing)
  T = util.int("samplers.timesteps", "T", T, 1)
  steps = util.int("samplers.timesteps", "steps", steps, 1, T)
  spacing = spacing or "leading"
  local ts = {}
  if spacing == "leading" then
    local ratio = T // steps
    for i = steps, 1, -1 do ts[#ts + 1] = (i - 1) * ratio + 1 end
  elseif spacing == "trailing" then
    for i = steps, 1, -1 do ts[#ts + 1] = math.floor(T - (steps - i) * T / steps + 0.5) end
  elseif spacing == "linspace" then
    for i = steps, 1, -1 do ts[#ts + 1] = math.floor((i - 1) * (T - 1) / math.max(steps - 1, 1) + 0.5) + 1 end
  else
    error(("samplers.timesteps: spacing must be 'leading', 'trailing' or 'linspace', got %s"):format(tostring(spacing)))
  end
  return ts
end

--- samplers.sigmas(sched, steps, {spacing = "leading", karras = false, rho = 7}) -> the noise
-- levels of a sampling run, descending, ending in 0. karras = true spaces them as Karras et al.
-- (rho = 7) between the schedule's smallest and largest sigma.
function M.sigmas(sched, steps, opts)
  opts = check_opts("samplers.sigmas", opts, {spacing = true, karras = true, rho = true})
  local all = M.sched_sigmas(sched)
  local out = {}
  if opts.karras then
    steps = util.int("samplers.sigmas", "steps", steps, 1)
    local rho = opts.rho or 7
    local lo, hi = all[1], all[sched.T]
    local a, b = hi ^ (1 / rho), lo ^ (1 / rho)
    for i = 0, steps - 1 do out[#out + 1] = (a + i / math.max(steps - 1, 1) * (b - a)) ^ rho end
  else
    for _, t in ipairs(M.timesteps(sched.T, steps, opts.spacing)) do out[#out + 1] = all[t] end
  end
  out[#out + 1] = 0
  return out
end

---------------------------------------------------------------------------- the denoiser

-- The continuous timestep (1-based) of a noise level: log sigma interpolated over the schedule.
local function t_of_sigma(logs, sigma)
  local ls = math.log(sigma)
  if ls <= logs[1] then return 1 end
  local T = #logs
  if ls >= logs[T] then return T end
  local lo, hi = 1, T -- logs ascends: find lo < hi with logs[lo] <= ls < logs[hi], hi = lo + 1
  while hi - lo > 1 do
    local mid = (lo + hi) // 2
    if logs[mid] <= ls then lo = mid else hi = mid end
  end
  return lo + (ls - logs[lo]) / (logs[hi] - logs[lo])
end

--- samplers.denoiser(net, sched, {prediction = "eps"|"v", labels = i64 tensor, guidance = 0,
-- null_label = n, clip = true}) -> den(x, sigma): net(x_vp, t) is a DDPM network (the noise, or v,
-- of its VP input at 0-based timestep t, a float tensor). With labels, net(x, t, labels) is
-- class-conditional; guidance = w > 0 mixes in the unconditional prediction (null_label) as
-- classifier-free guidance, (1 + w) eps(x, c) - w eps(x), both in one batch. clip keeps x0 in
-- [-1, 1] (pixels; false for latents).
function M.denoiser(net, sched, opts)
  opts = check_opts("samplers.denoiser", opts, {prediction = true, labels = true, guidance = true, null_label = true,
                                                clip = true})
  local pred = opts.prediction or "eps"
  if pred ~= "eps" and pred ~= "v" then error("samplers.denoiser: prediction must be 'eps' or 'v', got " .. tostring(pred)) end
  local w = opts.guidance or 0
  if type(w) ~= "number" or w < 0 then error("samplers.denoiser: guidance must be a number >= 0, got " .. tostring(w)) end
  local labels = opts.labels
  if w > 0 and not labels then error("samplers.denoiser: guidance needs labels (a class-conditional model)") end
  if w > 0 and opts.null_label == nil then error("samplers.denoiser: guidance needs the null_label of the model") end
  local clip = opts.clip ~= false
  local logs = {}
  for t, s in ipairs(M.sched_sigmas(sched)) do logs[t] = math.log(math.min(s, 1e30)) end
  return function(x, sigma)
    local n = x:size(1)
    local c_in = 1 / math.sqrt(sigma * sigma + 1)
    local xin = x * c_in
    local t = ai.full({n}, t_of_sigma(logs, sigma) - 1)
    local out
    if w > 0 then -- the conditional and the unconditional prediction in one batch
      local both = net(ai.cat({xin, xin}, 1), ai.cat({t, t}, 1),
                       ai.cat({labels, ai.full({n}, opts.null_label, {dtype = "i64"})}, 1))
      local c, u = both:narrow(1, 1, n), both:narrow(1, n + 1, n)
      out = c * (1 + w) - u * w
    elseif labels then
      out = net(xin, t, labels)
    else
      out = net(xin, t)
    end
    local x0
    if pred == "eps" then
      x0 = x - out * sigma
    else -- v = a eps - b x0 with a = c_in, b = sigma c_in: x0 = a x_vp - b v
      x0 = xin * c_in - out * (sigma * c_in)
    end
    if clip then x0 = x0:clamp(-1, 1) end
    return x0
  end
end

---------------------------------------------------------------------------- the samplers

local function noise_fn(opts) return opts.noise or function(shape) return ai.randn(shape) end end
local function step_done(opts, i, x, x0) if opts.on_step then opts.on_step(i, x, x0) end end

--- Euler's method on the probability-flow ODE dx/dsigma = (x - x0) / sigma
function M.euler(den, x, sigmas, opts)
  opts = opts or {}
  for i = 1, #sigmas - 1 do
    local s, s1 = sigmas[i], sigmas[i + 1]
    local x0 = den(x, s)
    x = x + (x - x0) * ((s1 - s) / s)
    step_done(opts, i, x, x0)
  end
  return x
end

-- The ancestral step from s to s1: down to s_down deterministically, then noise of s_up.
local function ancestral(s, s1, eta)
  if s1 == 0 then return 0, 0 end
  local up = math.min(s1, eta * math.sqrt(s1 * s1 * (s * s - s1 * s1) / (s * s)))
  return math.sqrt(s1 * s1 - up * up), up
end

--- Euler ancestral: Euler down to s_down, then fresh noise up to s1 (opts.eta, default 1)
function M.euler_a(den, x, sigmas, opts)
  opts = opts or {}
  local eta, noise = opts.eta or 1, noise_fn(opts)
  for i = 1, #sigmas - 1 do
    local s, s1 = sigmas[i], sigmas[i + 1]
    local x0 = den(x, s)
    local down, up = ancestral(s, s1, eta)
    x = x + (x - x0) * ((down - s) / s)
    if up > 0 then x = x + noise(x.shape) * up end
    step_done(opts, i, x, x0)
  end
  return x
end

--- Heun's method (second order; Euler for the last step to 0)
function M.heun(den, x, sigmas, opts)
  opts = opts or {}
  for i = 1, #sigmas - 1 do
    local s, s1 = sigmas[i], sigmas[i + 1]
    local x0 = den(x, s)
    local d = (x - x0) / s
    if s1 == 0 then
      x = x + d * (s1 - s)
    else
      local x2 = x + d * (s1 - s)
      local d2 = (x2 - den(x2, s1)) / s1
      x = x + (d + d2) * ((s1 - s) / 2)
    end
    step_done(opts, i, x, x0)
  end
  return x
end

--- DPM-Solver++(2M) (Lu et al. 2022): second order in log sigma, one network call per step
function M.dpmpp_2m(den, x, sigmas, opts)
  opts = opts or {}
  local prev, h_prev
  for i = 1, #sigmas - 1 do
    local s, s1 = sigmas[i], sigmas[i + 1]
    local x0 = den(x, s)
    if s1 == 0 then
      x = x0
    else
      local h = math.log(s) - math.log(s1) -- t = -log sigma: h = t_next - t
      local d = x0
      if prev then
        local r = h_prev / h
        d = x0 * (1 + 1 / (2 * r)) - prev * (1 / (2 * r))
      end
      x = x * (s1 / s) - d * (math.exp(-h) - 1)
      h_prev = h
    end
    prev = x0
    step_done(opts, i, x, x0)
  end
  return x
end

--- DDIM (Song et al.) in sigma space: x0 + sigma_next eps, with fresh noise for eta > 0
function M.ddim(den, x, sigmas, opts)
  opts = opts or {}
  local eta, noise = opts.eta or 0, noise_fn(opts)
  for i = 1, #sigmas - 1 do
    local s, s1 = sigmas[i], sigmas[i + 1]
    local x0 = den(x, s)
    local eps = (x - x0) / s
    if eta > 0 and s1 > 0 then -- DDIM's sigma_t, in VP terms, moved to sigma space
      local ab, ab1 = 1 / (1 + s * s), 1 / (1 + s1 * s1)
      local sig = eta * math.sqrt((1 - ab1) / (1 - ab)) * math.sqrt(1 - ab / ab1)
      local dir = math.sqrt(math.max(1 - ab1 - sig * sig, 0))
      x = x0 + eps * (dir / math.sqrt(ab1)) + noise(x.shape) * (sig / math.sqrt(ab1))
    else
      x = x0 + eps * s1
    end
    step_done(opts, i, x, x0)
  end
  return x
end

--- Ancestral DDPM (Ho et al. 2020, variance beta_t): the posterior step of each schedule step,
-- meant for all T levels (its betas come from consecutive sigmas: abar = 1 / (1 + sigma^2))
function M.ddpm(den, x, sigmas, opts)
  opts = opts or {}
  local noise = noise_fn(opts)
  for i = 1, #sigmas - 1 do
    local s, s1 = sigmas[i], sigmas[i + 1]
    local x0 = den(x, s)
    local ab, ab1 = 1 / (1 + s * s), 1 / (1 + s1 * s1)
    local a = ab / ab1 -- alpha_t, and beta_t = 1 - alpha_t
    local eps = (x - x0) / s
    -- in VP terms: x_{t-1} = (x_t - beta / sqrt(1 - abar) eps) / sqrt(alpha) + sqrt(beta) z
    local xvp = x * math.sqrt(ab)
    local mean = (xvp - eps * ((1 - a) / math.sqrt(1 - ab))) / math.sqrt(a)
    if s1 > 0 then mean = mean + noise(x.shape) * math.sqrt(1 - a) end
    x = mean / math.sqrt(ab1)
    step_done(opts, i, x, x0)
  end
  return x
end

M.names = {"ddpm", "ddim", "euler", "euler_a", "heun", "dpmpp_2m"}

---------------------------------------------------------------------------- running one

--- samplers.sample(sampler, den, shape, sigmas, {init = x0, mask = m, jumps = 0, eta =, noise =,
-- on_step =, x =}) -> samples in sigma 0's space (the data's). sampler: a name of samplers.names
-- or a function. init (img2img): start from init noised to sigmas[1] instead of pure noise.
-- mask (inpainting, with init): where the mask is 1 the samples are generated, where 0 they keep
-- init (the known part replaced at each step by init noised to the step's level, RePaint's
-- simplest form; jumps = n goes back and forth n more times per step, resampling).
function M.sample(sampler, den, shape, sigmas, opts)
  opts = check_opts("samplers.sample", opts, {init = true, mask = true, jumps = true, eta = true, noise = true,
                                              on_step = true, x = true})
  local known = {}
  for _, n in ipairs(M.names) do known[n] = true end
  local fn = type(sampler) == "function" and sampler or (known[sampler] and M[sampler])
  if type(fn) ~= "function" then
    error(("samplers.sample: sampler must be one of %s, or a function, got %s"):format(table.concat(M.names, ", "),
                                                                                     tostring(sampler)))
  end
  local init, mask = opts.init, opts.mask
  if mask and not init then error("samplers.sample: a mask needs init (the picture to repair)") end
  if init and #sigmas == 1 and sigmas[1] == 0 then return init end -- img2img at strength 0
  if #sigmas < 2 then error("samplers.sample: sigmas needs at least two levels (the last 0)") end
  local noise = noise_fn(opts)
  local s0 = sigmas[1]
  return ai.no_grad(function()
    -- in VP terms x_T = noise; in sigma space that is noise * sqrt(1 + sigma^2)
    local x = opts.x or (init and (init + noise(shape) * s0) or noise(shape) * math.sqrt(1 + s0 * s0))
    if not mask then return fn(den, x, sigmas, {eta = opts.eta, noise = opts.noise, on_step = opts.on_step}) end
    local keep = 1 - mask
    local jumps = util.int("samplers.sample", "jumps", opts.jumps or 0, 0)
    for i = 1, #sigmas - 1 do
      local s, s1 = sigmas[i], sigmas[i + 1]
      for j = 0, jumps do
        x = fn(den, x, {s, s1}, {eta = opts.eta, noise = opts.noise})
        x = x * mask + (init + noise(shape) * s1) * keep
        if j < jumps and s1 > 0 then x = x + noise(shape) * math.sqrt(s * s - s1 * s1) end -- back up
      end
      step_done(opts, i, x, x)
    end
    return x
  end)
end

--- samplers.img2img_sigmas(sigmas, strength) -> the tail of sigmas that starts at the noise
-- level strength names (0: no step, the input unchanged; 1: all of them, plain sampling)
function M.img2img_sigmas(sigmas, strength)
  if type(strength) ~= "number" or strength < 0 or strength > 1 then
    error("samplers.img2img_sigmas: strength must be a number in [0, 1], got " .. tostring(strength))
  end
  local steps = #sigmas - 1
  local n = math.floor(steps * strength + 0.5)
  local out = {}
  for i = steps - n + 1, #sigmas do out[#out + 1] = sigmas[i] end
  return out
end

return M
