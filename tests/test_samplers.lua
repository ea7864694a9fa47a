-- tests/test_samplers.lua: the diffusion samplers (lua/aiart/samplers.lua) on toy denoisers whose
-- answers are known: data N(0, s^2) per element, where D(x, sigma) = x s^2 / (s^2 + sigma^2) and
-- the probability-flow ODE ends exactly at x_T s / sqrt(s^2 + sigma_max^2); DPM-Solver++(2M),
-- Euler and Heun against a float64 transcription (tests/parity); DDIM's determinism; img2img
-- and inpainting's guarantees; the denoiser's conversions, guidance and prediction types.
local T = require "helper"
local ai = require "aiart"
local samplers = require "aiart.samplers"
local diffusion = require "aiart.diffusion"

local P = ai.json.decode(T.readfile("tests/parity/parity.json")).samplers
local function toy(s2) return function(x, sigma) return x * (s2 / (s2 + sigma * sigma)) end end

T.test("DPM-Solver++(2M), Euler and Heun give the reference's numbers on a toy denoiser", function()
  local x = ai.tensor(P.x, {dtype = "f64"})
  for _, name in ipairs{"dpmpp_2m", "euler", "heun"} do
    T.near(samplers[name](toy(P.s2), x, P.sigmas), P[name], 1e-12, name)
  end
end)

T.test("the ODE samplers converge to the exact solution, the higher orders faster", function()
  local s2, x = 0.25, ai.tensor({-20, 3, 15}, {dtype = "f64"})
  local sched = diffusion.schedule(1000, "linear")
  local function err(name, steps)
    local sig = samplers.sigmas(sched, steps, {karras = true})
    local exact = x * math.sqrt(s2 / (s2 + sig[1] * sig[1]))
    return (samplers[name](toy(s2), x, sig) - exact):abs():max():item() / exact:abs():max():item()
  end
  T.ok(err("euler", 400) < 1e-2, "Euler at 400 steps: " .. err("euler", 400))
  T.ok(err("euler", 400) < err("euler", 100) / 3, "Euler is first order")
  -- sigma from 157 down to 0.01 is a long way: the second-order methods settle in at ~50 steps
  T.ok(err("heun", 100) < 3e-3, "Heun at 100 steps: " .. err("heun", 100))
  T.ok(err("heun", 200) < err("heun", 100) / 4, "Heun is second order")
  T.ok(err("dpmpp_2m", 100) < 3e-3, "DPM-Solver++(2M) at 100 steps: " .. err("dpmpp_2m", 100))
  T.ok(err("dpmpp_2m", 200) < err("dpmpp_2m", 100) / 4, "DPM-Solver++(2M) is second order")
  T.ok(err("dpmpp_2m", 20) < err("euler", 20) / 2, "second order beats first at 20 steps")
  T.ok(math.abs(err("ddim", 50) - err("euler", 50)) < 1e-12, "DDIM (eta 0) is Euler in sigma space")
end)

T.test("timestep spacings and Karras sigmas", function()
  T.eq(samplers.timesteps(1000, 4, "leading"), {751, 501, 251, 1})
  T.eq(samplers.timesteps(1000, 4, "trailing"), {1000, 750, 500, 250})
  T.eq(samplers.timesteps(1000, 4, "linspace"), {1000, 667, 334, 1})
  local sched = diffusion.schedule(1000, "linear")
  local sig = samplers.sigmas(sched, 5, {karras = true})
  T.eq(#sig, 6)
  T.eq(sig[6], 0)
  local all = samplers.sched_sigmas(sched)
  T.near(sig[1], all[1000], 1e-12, "from the largest sigma")
  T.near(sig[5], all[1], 1e-12, "to the smallest")
  for i = 1, 4 do T.ok(sig[i] > sig[i + 1], "descending") end
  T.expect_error("spacing must be 'leading', 'trailing' or 'linspace'", samplers.timesteps, 1000, 4, "middle")
  T.expect_error("unknown option 'karas'", samplers.sigmas, sched, 5, {karas = true})
end)

T.test("ancestral samplers are deterministic with a seed; DDIM with eta 0 needs no noise", function()
  local sched = diffusion.schedule(100, "linear")
  local sig = samplers.sigmas(sched, 10)
  local den = toy(0.3)
  local function run(name, seed, eta)
    ai.manual_seed(seed)
    return samplers.sample(name, den, {2, 3}, sig, {eta = eta})
  end
  T.eq(run("euler_a", 4):tolist(), run("euler_a", 4):tolist(), "same seed, same samples")
  T.ok(not T.deep_eq(run("euler_a", 4):tolist(), run("euler_a", 5):tolist()), "another seed, other samples")
  ai.manual_seed(9)
  local x = ai.randn(2, 3) * math.sqrt(1 + sig[1] ^ 2)
  local draws = 0
  local out = samplers.sample("ddim", den, {2, 3}, sig, {x = x, noise = function(s) draws = draws + 1 return ai.randn(s) end})
  T.eq(draws, 0, "DDIM with eta 0 draws no noise")
  T.eq(out:tolist(), samplers.sample("ddim", den, {2, 3}, sig, {x = x}):tolist(), "and is deterministic")
  T.ok(run("ddim", 4, 1):sub(run("ddim", 4, 0)):abs():max():item() > 0, "eta 1 adds noise")
end)

T.test("img2img: strength 0 returns the input, strength 1 is plain sampling", function()
  local sched = diffusion.schedule(100, "linear")
  local sig = samplers.sigmas(sched, 10)
  local init = ai.rand(2, 4) * 2 - 1
  local den = toy(0.3)
  T.eq(samplers.sample("euler", den, {2, 4}, samplers.img2img_sigmas(sig, 0), {init = init}):tolist(), init:tolist())
  T.eq(#samplers.img2img_sigmas(sig, 1), #sig)
  T.eq(#samplers.img2img_sigmas(sig, 0.5), 6, "half the steps, and the last 0")
  local x = ai.randn(2, 4) * math.sqrt(1 + sig[1] ^ 2)
  T.eq(samplers.sample("euler", den, {2, 4}, samplers.img2img_sigmas(sig, 1), {x = x}):tolist(),
       samplers.sample("euler", den, {2, 4}, sig, {x = x}):tolist())
  T.expect_error("strength must be a number in [0, 1]", samplers.img2img_sigmas, sig, 1.5)
end)

T.test("inpainting keeps the unmasked pixels equal to the input's", function()
  local sched = diffusion.schedule(100, "linear")
  local sig = samplers.sigmas(sched, 8)
  local init = ai.rand(1, 1, 4, 4) * 2 - 1
  local mask = ai.zeros(1, 1, 4, 4)
  mask[{1, 1, {2, 3}, {2, 3}}] = 1
  for _, name in ipairs{"euler", "euler_a", "dpmpp_2m", "ddim"} do
    for _, jumps in ipairs{0, 2} do
      local out = samplers.sample(name, toy(0.3), init.shape, sig, {init = init, mask = mask, jumps = jumps})
      local keep = mask:eq(0)
      T.eq(out[keep]:tolist(), init[keep]:tolist(), name .. " with jumps " .. jumps)
      T.ok((out - init)[mask:eq(1)]:abs():max():item() > 0, "the masked pixels are generated")
    end
  end
  T.expect_error("a mask needs init", samplers.sample, "euler", toy(0.3), {1, 1, 4, 4}, sig, {mask = mask})
end)

T.test("the denoiser: eps and v predictions, guidance in one batch", function()
  local sched = diffusion.schedule(50, "linear")
  local s2 = 0.3
  local calls, batch = 0, 0
  -- a network that predicts exactly, for N(0, s2) data, from its VP input at timestep t
  local all = samplers.sched_sigmas(sched)
  local function abar_at(t) -- t is 0-based and continuous: interpolate log sigma as the denoiser does
    local i = math.floor(t) + 1
    local f = t + 1 - i
    local ls = math.log(all[i]) * (1 - f) + math.log(all[math.min(i + 1, #all)]) * f
    return 1 / (1 + math.exp(2 * ls))
  end
  local function exact(pred)
    return function(x, t, labels)
      calls, batch = calls + 1, x:size(1)
      local ab = abar_at(t[1]:item())
      local x0 = x * (math.sqrt(ab) * s2 / (ab * s2 + 1 - ab))
      local eps = (x - x0 * math.sqrt(ab)) / math.sqrt(1 - ab)
      local out = pred == "eps" and eps or eps * math.sqrt(ab) - x0 * math.sqrt(1 - ab)
      if labels then out = out + labels:view(-1, 1):double() * 0 end
      return out
    end
  end
  local x = ai.tensor({{1.5, -2, 0.25}}, {dtype = "f64"})
  for _, pred in ipairs{"eps", "v"} do
    local den = samplers.denoiser(exact(pred), sched, {prediction = pred, clip = false})
    for _, sigma in ipairs{all[1], all[10], all[50]} do
      T.near(den(x, sigma), x * (s2 / (s2 + sigma * sigma)), 1e-9, pred .. " at sigma " .. sigma)
    end
  end
  local den = samplers.denoiser(exact("eps"), sched, {labels = ai.tensor({3}, {dtype = "i64"}), guidance = 2,
                                                      null_label = 11, clip = false})
  calls = 0
  den(x, all[20])
  T.eq(calls, 1, "one forward for both predictions")
  T.eq(batch, 2, "of twice the batch")
  T.expect_error("guidance needs labels", samplers.denoiser, exact("eps"), sched, {guidance = 2})
  T.expect_error("prediction must be 'eps' or 'v'", samplers.denoiser, exact("eps"), sched, {prediction = "x0"})
  T.expect_error("sampler must be one of ddpm, ddim, euler, euler_a, heun, dpmpp_2m", samplers.sample, "plms", den, {1}, {1, 0})
end)

T.test("guidance arithmetic: (1 + w) eps(x, c) - w eps(x)", function()
  local sched = diffusion.schedule(10, "linear")
  local net = function(x, t, labels) return labels:view(-1, 1):double():expand(x.shape) end -- eps = the label
  local x = ai.zeros(1, 2, {dtype = "f64"})
  local s = samplers.sched_sigmas(sched)[5]
  local den = samplers.denoiser(net, sched, {labels = ai.tensor({4}, {dtype = "i64"}), guidance = 3, null_label = 1, clip = false})
  -- eps = (1 + 3) * 4 - 3 * 1 = 13; x0 = x - sigma eps
  T.near(den(x, s), ai.full({1, 2}, -13 * s, {dtype = "f64"}), 1e-12)
end)

T.test("ancestral DDPM in sigma space is Ho et al.'s step, x_{t-1} = (x_t - beta/sqrt(1-abar) eps)/sqrt(alpha) + sqrt(beta) z", function()
  local sched = diffusion.schedule(30, "linear")
  local sig = samplers.sigmas(sched, 30) -- every step
  local den = toy(0.3)
  ai.manual_seed(3)
  local x_sigma = ai.randn(2, 3, {dtype = "f64"}) * math.sqrt(1 + sig[1] ^ 2)
  local zs = {}
  for i = 1, 29 do zs[i] = ai.randn(2, 3, {dtype = "f64"}) end
  local k = 0
  local out = samplers.sample("ddpm", den, {2, 3}, sig, {x = x_sigma, noise = function() k = k + 1 return zs[k] end})
  -- the same steps written in the VP variables of the paper
  local x = x_sigma / math.sqrt(1 + sig[1] ^ 2)
  for t = 30, 1, -1 do
    local ab, a, b = sched.abar[t], sched.alphas[t], sched.betas[t]
    local s = math.sqrt((1 - ab) / ab)
    local eps = (x / math.sqrt(ab) - den(x / math.sqrt(ab), s)) / s
    x = (x - eps * (b / math.sqrt(1 - ab))) / math.sqrt(a)
    if t > 1 then x = x + zs[31 - t] * math.sqrt(b) end
  end
  T.near(out, x, 1e-9)
  T.eq(k, 29, "fresh noise at every step but the last")
end)

T.test("zero terminal SNR (Lin et al.): abar_T = 0, abar_1 kept, sqrt(abar) an affine map of the original", function()
  local a = diffusion.schedule(100, "linear")
  local z = diffusion.schedule(100, "linear", {zero_snr = true})
  T.eq(z.abar[100], 0)
  T.near(z.abar[1], a.abar[1], 1e-15)
  local s = function(sch, t) return math.sqrt(sch.abar[t]) end
  local scale = (s(a, 1) - s(a, 50)) / (s(z, 1) - s(z, 50))
  T.near((s(a, 1) - s(a, 80)) / (s(z, 1) - s(z, 80)), scale, 1e-12, "one affine map")
  for t = 2, 100 do T.near(z.abar[t], z.abar[t - 1] * z.alphas[t], 1e-15) end
  T.eq(z.betas[100], 1)
  -- the samplers start at a finite level (abar 2^-24, sigma 4096), and the v target there is -x0
  T.near(samplers.sched_sigmas(z)[100], math.sqrt((1 - 2 ^ -24) / 2 ^ -24), 1e-9)
  local x0, eps = ai.randn(2, 1, 2, 2), ai.randn(2, 1, 2, 2)
  local t = ai.tensor({100, 100}, {dtype = "i64"})
  T.near(diffusion.v_target(z, x0, t, eps), -x0, 1e-7)
  T.near(diffusion.q_sample(z, x0, t, eps), eps, 1e-7, "pure noise at the last step")
  T.expect_error("zero_snr must be a boolean", diffusion.schedule, 10, "linear", {zero_snr = 1})
end)

T.test("v prediction: the loss regresses v; label dropout drops at its rate", function()
  local sched = diffusion.schedule(10, "linear")
  local seen
  local net = function(x, t, labels) seen = labels return x * 0 end
  local x0 = ai.randn(4000, 1, 1, 1)
  ai.manual_seed(11)
  local loss_v = diffusion.loss(net, sched, x0, {prediction = "v"}):item()
  ai.manual_seed(11)
  local t = ai.randint(1, sched.T, 4000)
  local eps = ai.randn(x0.shape)
  T.near(loss_v, diffusion.v_target(sched, x0, t, eps):square():mean():item(), 1e-6, "MSE to v")
  local labels = ai.full({20000}, 3, {dtype = "i64"})
  ai.manual_seed(5)
  diffusion.loss(net, sched, ai.zeros(20000, 1, 1, 1), {labels = labels, p_uncond = 0.1, null_label = 11})
  local rate = seen:eq(11):float():mean():item()
  T.ok(math.abs(rate - 0.1) < 0.01, "dropped at 0.1: " .. rate)
  T.eq(seen:eq(3):sum():item() + seen:eq(11):sum():item(), 20000, "every other label kept")
  T.eq(diffusion.drop_labels(labels, 0, 11):tolist(), labels:tolist())
  T.expect_error("p_uncond needs labels", diffusion.loss, net, sched, x0, {p_uncond = 0.1})
  T.expect_error("prediction must be 'eps' or 'v'", diffusion.loss, net, sched, x0, {prediction = "x"})
  T.expect_error("p must be a number in [0, 1]", diffusion.drop_labels, labels, 2, 11)
end)

T.test("prompts: class names, case and dashes folded, parts of a/b names, errors listing the classes", function()
  local names = {"T-shirt/top", "Trouser", "Sneaker", "Ankle boot"}
  local l, n = diffusion.parse_prompt("sneaker, ANKLE BOOT,top,t-shirt", names)
  T.eq(l, {3, 4, 1, 1})
  T.eq(n, {"Sneaker", "Ankle boot", "T-shirt/top", "T-shirt/top"})
  T.eq(diffusion.parse_prompt("ankle-boot", names), {4})
  T.expect_error('"sneakers" is not a class of this model; the classes are: T-shirt/top, Trouser, Sneaker, Ankle boot',
                 diffusion.parse_prompt, "sneakers", names)
  T.expect_error("an empty name", diffusion.parse_prompt, "sneaker,,bag", names)
end)

T.test("diffusion.sample: every sampler, shapes, seeds, guidance and img2img through one entry point", function()
  local sched = diffusion.schedule(20, "linear")
  local calls = 0
  local net = function(x, t, labels)
    calls = calls + 1
    local out = x * 0.1
    if labels then out = out + labels:view(-1, 1, 1, 1):float() * 0.01 end
    return out
  end
  for _, name in ipairs(samplers.names) do
    ai.manual_seed(1)
    local a = diffusion.sample(net, sched, {3, 1, 4, 4}, {sampler = name, steps = 5})
    ai.manual_seed(1)
    local b = diffusion.sample(net, sched, {3, 1, 4, 4}, {sampler = name, steps = 5})
    T.eq(a.shape, {3, 1, 4, 4})
    T.eq(a:tolist(), b:tolist(), name .. ": the same seed, the same samples")
    T.ok(a:abs():max():item() <= 1, name .. ": clipped to [-1, 1]")
  end
  calls = 0
  diffusion.sample(net, sched, {2, 1, 4, 4}, {sampler = "ddpm"})
  T.eq(calls, 20, "ddpm takes all T steps")
  calls = 0
  diffusion.sample(net, sched, {2, 1, 4, 4}, {sampler = "dpmpp_2m", steps = 5, labels = ai.tensor({1, 2}, {dtype = "i64"}),
                                             guidance = 3, null_label = 11})
  T.eq(calls, 5, "guidance: one forward per step")
  local init = ai.rand(2, 1, 4, 4) * 2 - 1
  T.eq(diffusion.sample(net, sched, {2, 1, 4, 4}, {init = init, strength = 0}):tolist(), init:tolist(),
       "strength 0 returns the input")
  local seen = {}
  diffusion.sample(net, sched, {2, 1, 4, 4}, {steps = 4, on_step = function(i, xt) seen[#seen + 1] = {i, xt:abs():max():item()} end})
  T.eq(#seen, 4)
  T.ok(seen[1][2] < 10, "on_step sees x_t in the network's scale, not sigma space's: " .. seen[1][2])
  T.expect_error("strength needs init", diffusion.sample, net, sched, {1, 1, 4, 4}, {strength = 0.5})
  T.expect_error("steps=30 is more than the schedule's T=20", diffusion.sample, net, sched, {1, 1, 4, 4}, {steps = 30})
  T.expect_error("unknown option 'sampelr'", diffusion.sample, net, sched, {1, 1, 4, 4}, {sampelr = "ddim"})
end)
