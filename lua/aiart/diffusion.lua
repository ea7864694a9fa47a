-- aiart.diffusion: DDPM noise schedules, the forward (noising) process, the epsilon-prediction
-- training loss, and sampling by ancestral DDPM and by DDIM. Timesteps are 1..T in Lua; the
-- network sees t - 1 (0..T-1), as the usual implementations do.
local ai = require "aiart"
local util = require "aiart.util"

local error, check_opts = util.error, util.check_opts -- positions name the caller's line (see util.error)

local M = {}

local SAMPLE_OPTS = {steps = true, eta = true, on_step = true}

--- M.schedule(T, kind, {beta_start=1e-4, beta_end=0.02}) -> {T, betas, alphas, abar} as
-- Lua arrays of numbers (index 1..T). kind: "linear" (Ho et al.) or "cosine" (Nichol & Dhariwal).
function M.schedule(T, kind, opts)
  T = util.int("diffusion.schedule", "T", T, 1)
  opts = check_opts("diffusion.schedule", opts, {beta_start = true, beta_end = true})
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
  return {T = T, betas = betas, alphas = alphas, abar = abar, kind = kind or "linear"}
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

--- The epsilon-prediction loss of net on a batch x0: MSE between the noise and its prediction.
function M.loss(net, sched, x0)
  local n = x0:size(1)
  local t = ai.randint(1, sched.T, n)
  local eps = ai.randn(x0.shape)
  local xt = M.q_sample(sched, x0, t, eps)
  return ai.mse_loss(net(xt, (t - 1):float()), eps)
end

local function timestep(n, t) return ai.full({n}, t - 1) end

--- Ancestral DDPM sampling: n samples of shape {n, C, H, W} over all T steps.
-- opts.on_step(t, x_t, x0_pred) is called at each step (for pictures of the path).
function M.ddpm_sample(net, sched, shape, opts)
  opts = check_opts("diffusion.ddpm_sample", opts, {on_step = true})
  return ai.no_grad(function()
    local x = ai.randn(shape)
    local n = shape[1]
    for t = sched.T, 1, -1 do
      local eps = net(x, timestep(n, t))
      local a, ab, b = sched.alphas[t], sched.abar[t], sched.betas[t]
      local x0 = ((x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)):clamp(-1, 1)
      local mean = (x - (b / math.sqrt(1 - ab)) * eps) / math.sqrt(a)
      x = t > 1 and (mean + math.sqrt(b) * ai.randn(shape)) or mean
      if opts.on_step then opts.on_step(t, x, x0) end
    end
    return x:clamp(-1, 1)
  end)
end

--- DDIM sampling (Song et al.) over `steps` evenly spaced timesteps; eta = 0 is deterministic.
function M.ddim_sample(net, sched, shape, opts)
  opts = check_opts("diffusion.ddim_sample", opts, SAMPLE_OPTS)
  local steps, eta = util.int("diffusion.ddim_sample", "steps", opts.steps or 50, 1), opts.eta or 0
  local ts = {}
  for i = 1, steps do ts[i] = math.floor((i - 1) * sched.T / steps) + 1 end -- ascending, 1..T
  return ai.no_grad(function()
    local x = ai.randn(shape)
    local n = shape[1]
    for i = steps, 1, -1 do
      local t = ts[i]
      local ab = sched.abar[t]
      local ab_prev = i > 1 and sched.abar[ts[i - 1]] or 1
      local eps = net(x, timestep(n, t))
      local x0 = ((x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)):clamp(-1, 1)
      eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab) -- consistent with the clamped x0
      local sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab)) * math.sqrt(1 - ab / ab_prev)
      x = math.sqrt(ab_prev) * x0 + math.sqrt(math.max(1 - ab_prev - sigma * sigma, 0)) * eps
      if sigma > 0 then x = x + sigma * ai.randn(shape) end
      if opts.on_step then opts.on_step(t, x, x0) end
    end
    return x:clamp(-1, 1)
  end)
end

--- Samples with DDIM when opts.steps < T (and > 0), else with ancestral DDPM.
function M.sample(net, sched, shape, opts)
  opts = check_opts("diffusion.sample", opts, SAMPLE_OPTS)
  local steps = opts.steps and util.int("diffusion.sample", "steps", opts.steps, 0)
  if steps and steps > 0 and steps < sched.T then return M.ddim_sample(net, sched, shape, opts) end
  return M.ddpm_sample(net, sched, shape, {on_step = opts.on_step}) -- all T steps: eta does not apply
end

return util.strict_args(M, "diffusion.")
