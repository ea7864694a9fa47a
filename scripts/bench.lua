--[[ scripts/bench.lua: the benchmark harness (`make bench`).

  ./aiart-lua scripts/bench.lua [key=value ...]            the driver: every workload in its own
                                                           process, aiart then PyTorch, then the
                                                           kernel microbenchmarks, a table and
                                                           bench-results.json
  ./aiart-lua scripts/bench.lua --workload NAME [k=v ...]  one workload, one JSON line
  ./aiart-lua scripts/bench.lua --micro [k=v ...]          the kernel microbenchmarks, JSON lines
  ./aiart-lua scripts/bench.lua --list                     the workload names

Options (key=value):
  threads=2          ai.set_num_threads (PyTorch: torch.set_num_threads)
  steps=N            timed steps (default: as many as fit in seconds=)
  seconds=12         timed seconds per workload; the timing stops after max_seconds (2 x seconds)
  warmup=3           untimed steps first
  data=real|random   real: batches drawn from Fashion-MNIST before the timing starts (a pool of
                     16, cycled), so data loading is never timed
  workloads=a,b      the driver's selection (default: all)
  rounds=1           the driver runs each workload that many times (aiart then PyTorch each
                     time) and keeps each implementation's fastest round
  out=bench-results.json
  torch=auto|true|false   run scripts/bench/torch_ref.py too
  torch_omp=same|default  PyTorch inherits aiart-lua's short OpenMP spin (GOMP_SPINCOUNT=1000,
                     the same settings for both: the default) or runs with libgomp's defaults
  python=...         the interpreter with torch (default: python3, then /usr/bin/python3)
  micro=true|false   the driver runs the microbenchmarks
  quick=true         microbenchmarks: small shapes, few repetitions (a smoke test)
  micro_seconds=0.3  per microbenchmark; each reports its fastest repetition (median: median_ms)
  only=a,b           microbenchmark groups to run (sgemm, linear, conv2d, conv_transpose2d,
                     group_norm, softmax, elementwise, random, adam, overhead)

Each workload line: {"workload", "impl":"aiart", "ms_per_step" (median over the timed steps),
"peak_rss_mb" (VmHWM of the process, reset after the data set is loaded so that only the pool of
batches counts), "gflop_per_step", "gflops", ...}. GFLOP counts only linear, conv and
transposed-conv layers (2 x multiply-adds; a training step is 3x its forward passes, the style
step 2x: no weight gradients), as in shared/reference-models.md.

Timing uses ai.clock, a monotonic wall clock (os.clock is process CPU time, summed over
threads). What bench_dist.lua shares with this script is in scripts/bench/common.lua.
]]
local ai = require "aiart"

---------------------------------------------------------------------------------- arguments

local ROOT = (arg and arg[0] or ""):match("^(.*)/scripts/bench%.lua$") or "."
local common = dofile(ROOT .. "/scripts/bench/common.lua")
local cli = common.command_line(arg, "bench.lua", {["--workload"] = 1, ["--micro"] = 0, ["--list"] = 0})
local EXE, SCRIPT, opts, opt_num, opt_bool = cli.exe, cli.script, cli.opts, cli.num, cli.bool
local mode, workload_name = cli.mode, cli.mode_arg
local sh_quote, median, stats, loadavg, run_json = common.sh_quote, common.median, common.stats, common.loadavg, common.run_json
local now = common.now

local THREADS = math.tointeger(opt_num("threads", 2))
ai.set_num_threads(THREADS)

---------------------------------------------------------------------------------- utilities

local function file_exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

local function mtime(p)
  local h = io.popen("stat -c %Y " .. sh_quote(p) .. " 2>/dev/null")
  local s = h and h:read("l")
  if h then h:close() end
  return tonumber(s)
end

-- /proc/self/status fields in MB
local function proc_status_mb(field)
  local f = io.open("/proc/self/status")
  if not f then return nil end
  for l in f:lines() do
    local kb = l:match("^" .. field .. ":%s*(%d+)%s*kB")
    if kb then f:close() return tonumber(kb) / 1024 end
  end
  f:close()
end

-- Resets VmHWM to the current RSS (Linux >= 4.0); false when it cannot.
local function reset_peak_rss()
  local f = io.open("/proc/self/clear_refs", "w")
  if not f then return false end
  local ok = f:write("5")
  local ok2 = f:close()
  return ok ~= nil and ok2 ~= nil
end

-- JSON with the keys in the given order (numbers rounded to 6 significant digits)
local function json_value(v)
  local t = type(v)
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if math.type(v) == "integer" then return tostring(v) end
    return (("%.6g"):format(v))
  elseif t == "boolean" then return tostring(v)
  elseif t == "nil" then return "null"
  elseif t == "table" then return ai.json.encode(v)
  else return ai.json.encode(tostring(v)) end
end

local function json_line(rec, keys)
  local parts, seen = {}, {}
  for _, k in ipairs(keys or {}) do
    if rec[k] ~= nil then parts[#parts + 1] = ai.json.encode(k) .. ":" .. json_value(rec[k]) end
    seen[k] = true
  end
  local rest = {}
  for k in pairs(rec) do if not seen[k] then rest[#rest + 1] = k end end
  table.sort(rest)
  for _, k in ipairs(rest) do parts[#parts + 1] = ai.json.encode(k) .. ":" .. json_value(rec[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local WORKLOAD_KEYS = {"workload", "impl", "ms_per_step", "peak_rss_mb", "gflop_per_step", "gflops",
  "steps", "warmup", "threads", "data"}
local MICRO_KEYS = {"micro", "impl", "op", "shape", "threads", "ms", "gflops", "gbps", "us_per_op",
  "pct_of_sgemm"}

---------------------------------------------------------------------------------- FLOP counts

-- multiply-adds of the layers that count (linear, conv, transposed conv), per sample
local function conv_macs(cin, cout, k, hout, wout) return cin * cout * k * k * hout * wout end

local FLOPS = {}
do
  -- the seed GAN
  local G = 100 * 128 + 128 * 256 + 256 * 512 + 512 * 784
  local D = 784 * 512 + 512 * 256 + 256 * 1
  -- a step: G forward once, D forward three times (real, fake for D, fake for G); x3 for backward
  FLOPS.mlp_gan = function(b) return 3 * 2 * b * (G + 3 * D) end
  -- DCGAN
  local dG = 100 * 6272 + conv_macs(128, 64, 4, 7, 7) + conv_macs(64, 1, 4, 14, 14) -- convT: per input position
  local dD = conv_macs(1, 64, 4, 14, 14) + conv_macs(64, 128, 4, 7, 7) + 6272
  FLOPS.dcgan = function(b) return 3 * 2 * b * (dG + 3 * dD) end
  -- the UNet (one forward per sample)
  local function res(cin, cout, hw)
    return conv_macs(cin, cout, 3, hw, hw) + 128 * cout + conv_macs(cout, cout, 3, hw, hw)
      + (cin ~= cout and conv_macs(cin, cout, 1, hw, hw) or 0)
  end
  local u = 2 * 128 * 128 + conv_macs(1, 32, 3, 28, 28)
    + res(32, 32, 28) + conv_macs(32, 32, 3, 14, 14)
    + res(32, 64, 14) + conv_macs(64, 64, 3, 7, 7)
    + res(64, 64, 7) + conv_macs(64, 192, 1, 7, 7) + conv_macs(64, 64, 1, 7, 7) + res(64, 64, 7)
    + res(128, 64, 14) + res(96, 32, 28) + conv_macs(32, 1, 3, 28, 28)
  FLOPS.unet_forward = function(b) return 2 * b * u end
  -- VGG-19 to conv4_1 at 256x256: forward + gradient to the input
  local v = conv_macs(3, 64, 3, 256, 256) + conv_macs(64, 64, 3, 256, 256)
    + conv_macs(64, 128, 3, 128, 128) + conv_macs(128, 128, 3, 128, 128)
    + conv_macs(128, 256, 3, 64, 64) + 3 * conv_macs(256, 256, 3, 64, 64)
    + conv_macs(256, 512, 3, 32, 32)
  FLOPS.vgg_forward = 2 * v
end

---------------------------------------------------------------------------------- data

local FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
local POOL = 16 -- batches drawn before the timing and cycled

-- A function returning the next batch (b x 784, or b x 1 x 28 x 28 when image), in [-1, 1].
local function batch_source(b, image, data)
  local batches = {}
  local source = data
  if data == "real" and not file_exists(FMNIST) then
    io.stderr:write("bench.lua: " .. FMNIST .. " is missing; using random data\n")
    source = "random"
  end
  if source == "real" then
    local imgs = ai.io.read_idx(FMNIST)
    local n = imgs.shape[1]
    for i = 1, POOL do
      local idx = ai.randint(1, n, b)
      batches[i] = (imgs:index_select(1, idx):float() / 127.5 - 1):contiguous()
    end
    imgs = nil -- luacheck: ignore
  else
    for i = 1, POOL do batches[i] = ai.rand(b, 784) * 2 - 1 end
  end
  for i = 1, POOL do batches[i] = image and batches[i]:view(b, 1, 28, 28) or batches[i]:view(b, 784) end
  collectgarbage()
  collectgarbage()
  ai.empty_cache()
  local k = 0
  return function()
    k = k % POOL + 1
    return batches[k]
  end, source
end

---------------------------------------------------------------------------------- workloads

local WORKLOADS = {} -- name -> setup(data) returning step, gflop_per_step, info
local ORDER = {"mlp_gan_b32", "mlp_gan_b64", "dcgan_b64", "ddpm_unet_b64", "ddpm_unet_b64_infer", "ddpm_unet_cond_b64",
  "ddpm_guided_sample_b64", "style_vgg19_256"}

local function mlp_gan(b)
  return function(data)
    local models, F = require "aiart.models", ai.F
    local next_batch, source = batch_source(b, false, data)
    local G, D = models.mlp_gan()
    local optG = ai.optim.Adam(G:parameters(), {lr = 2e-4, betas = {0.9, 0.999}})
    local optD = ai.optim.Adam(D:parameters(), {lr = 2e-4, betas = {0.9, 0.999}})
    local ones, zeros = ai.ones(b, 1), ai.zeros(b, 1)
    local function step()
      local real = next_batch()
      local fake = G(ai.randn(b, 100))
      optD:zero_grad()
      local lossD = F.bce_loss(D(real), ones) + F.bce_loss(D(fake:detach()), zeros)
      lossD:backward()
      optD:step()
      optG:zero_grad()
      local lossG = F.bce_loss(D(fake), ones)
      lossG:backward()
      optG:step()
      return lossD, lossG
    end
    return step, FLOPS.mlp_gan(b) / 1e9, {data = source}
  end
end
WORKLOADS.mlp_gan_b32 = mlp_gan(32)
WORKLOADS.mlp_gan_b64 = mlp_gan(64)

WORKLOADS.dcgan_b64 = function(data)
  local b = 64
  local models, F = require "aiart.models", ai.F
  local next_batch, source = batch_source(b, true, data)
  local G, D = models.dcgan()
  local optG = ai.optim.Adam(G:parameters(), {lr = 2e-4, betas = {0.5, 0.999}})
  local optD = ai.optim.Adam(D:parameters(), {lr = 2e-4, betas = {0.5, 0.999}})
  local ones, zeros = ai.ones(b, 1), ai.zeros(b, 1)
  local function step()
    local real = next_batch()
    local fake = G(ai.randn(b, 100))
    optD:zero_grad()
    local lossD = F.bce_with_logits(D(real), ones) + F.bce_with_logits(D(fake:detach()), zeros)
    lossD:backward()
    optD:step()
    optG:zero_grad()
    local lossG = F.bce_with_logits(D(fake), ones)
    lossG:backward()
    optG:step()
    return lossD, lossG
  end
  return step, FLOPS.dcgan(b) / 1e9, {data = source}
end

-- the DDPM workloads' linear schedule, and the conditional ones' classes and guidance
local DDPM_T, CLASSES, P_UNCOND, GUIDANCE = 1000, 10, 0.1, 3

-- The reference UNet (classes = n: the class-conditional one, with its null label n + 1) and the
-- linear schedule's abar, as every DDPM workload uses them.
local function unet_and_schedule(classes)
  local net = require("aiart.models").UNet{classes = classes}
  return net, (1 - ai.linspace(1e-4, 0.02, DDPM_T)):cumprod(1)
end

-- A training step (train) or a forward (not train) at random timesteps; with classes, on random
-- labels with label dropout (p_uncond), as scripts/train_ddpm.lua trains for guidance.
local function ddpm(train, classes)
  return function(data)
    local b, T = 64, DDPM_T
    local F, drop_labels = ai.F, require("aiart.diffusion").drop_labels
    local next_batch, source = batch_source(b, true, data)
    local net, abar = unet_and_schedule(classes)
    local opt = train and ai.optim.Adam(net:parameters(), {lr = 2e-4}) or nil
    local function noised()
      local x0 = next_batch()
      local t = ai.randint(1, T, b)
      local eps = ai.randn(b, 1, 28, 28)
      local a = abar:index_select(1, t):view(b, 1, 1, 1)
      local labels = classes and drop_labels(ai.randint(1, classes, b), P_UNCOND, net.null_label) or nil
      return a:sqrt() * x0 + (1 - a):sqrt() * eps, t, eps, labels
    end
    local step
    if train then
      step = function()
        local xt, t, eps, labels = noised()
        opt:zero_grad()
        local loss = F.mse_loss(net(xt, t, labels), eps)
        loss:backward()
        opt:step()
        return loss
      end
    else
      net:eval()
      local function fwd()
        local xt, t, _, labels = noised()
        return net(xt, t, labels)
      end
      step = function() return ai.no_grad(fwd) end
    end
    return step, (train and 3 or 1) * FLOPS.unet_forward(b) / 1e9, {data = source}
  end
end
WORKLOADS.ddpm_unet_b64 = ddpm(true)
WORKLOADS.ddpm_unet_b64_infer = ddpm(false)
WORKLOADS.ddpm_unet_cond_b64 = ddpm(true, CLASSES)

-- One classifier-free guided DDIM step (eta 0) of a batch of 64 from t = 500 to 480: the
-- conditional and unconditional predictions in one forward of 128, as samplers.denoiser batches
-- them, mixed (1 + w) eps_c - w eps_u, then the update in VP terms. x and the labels are drawn
-- once: only their shapes matter to the timing.
WORKLOADS.ddpm_guided_sample_b64 = function()
  local b, t0, t1, w = 64, 500, 480, GUIDANCE
  local net, abar = unet_and_schedule(CLASSES)
  net:eval()
  local a, a1 = abar[t0]:item(), abar[t1]:item()
  local x = ai.randn(b, 1, 28, 28)
  local labels = ai.randint(1, CLASSES, b)
  local t = ai.full({b}, t0, {dtype = "i64"})
  local function guided()
    local both = net(ai.cat({x, x}, 1), ai.cat({t, t}, 1),
                     ai.cat({labels, ai.full({b}, net.null_label, {dtype = "i64"})}, 1))
    local eps = both:narrow(1, 1, b) * (1 + w) - both:narrow(1, b + 1, b) * w
    local x0 = (x - eps * math.sqrt(1 - a)) / math.sqrt(a)
    return x0 * math.sqrt(a1) + eps * math.sqrt(1 - a1)
  end
  local function step() return ai.no_grad(guided) end
  return step, FLOPS.unet_forward(2 * b) / 1e9, {data = "random"}
end

WORKLOADS.style_vgg19_256 = function()
  local models, F = require "aiart.models", ai.F
  -- random frozen weights: the timing does not depend on their values
  local vgg = models.vgg19_features{upto = "relu4_1"}.features
  for _, p in ipairs(vgg:parameters()) do p:requires_grad_(false) end
  vgg:eval()
  local function gram(f)
    local _, c, h, w = table.unpack(f.shape)
    local m = f:view(c, h * w)
    return ai.matmul(m, m:t()) / (c * h * w)
  end
  local target = ai.no_grad(function() return gram(vgg(ai.rand(1, 3, 256, 256))) end)
  local img = ai.rand(1, 3, 256, 256):requires_grad_(true)
  local opt = ai.optim.Adam({img}, {lr = 1e-2})
  local function step()
    opt:zero_grad()
    local loss = F.mse_loss(gram(vgg(img)), target)
    loss:backward()
    opt:step()
    return loss
  end
  return step, 2 * FLOPS.vgg_forward / 1e9, {data = "random"}
end

local function run_workload(name)
  local setup = WORKLOADS[name]
  if not setup then
    io.stderr:write(("bench.lua: unknown workload '%s' (known: %s)\n"):format(tostring(name), table.concat(ORDER, ", ")))
    os.exit(2)
  end
  local data = opts.data or "real"
  ai.manual_seed(1234)
  local step, gflop, info = setup(data)
  collectgarbage()
  local rss_reset = reset_peak_rss()
  local warmup = math.tointeger(opt_num("warmup", 3))
  local wt = {}
  for i = 1, warmup do
    local t0 = now()
    step()
    wt[i] = now() - t0
  end
  local steps = opts.steps and math.tointeger(tonumber(opts.steps))
  if not steps then
    -- calibrate: the fastest warm-up step after the first (or one more step)
    local est = math.huge
    for i = 2, #wt do est = math.min(est, wt[i]) end
    if est == math.huge then
      local t0 = now()
      step()
      est = now() - t0
    end
    steps = math.max(5, math.min(5000, math.floor(opt_num("seconds", 12) / math.max(est, 1e-6))))
  end
  -- a loaded machine can make the steps much slower than the warm-up said: stop after
  -- max_seconds (default 2 x seconds) once 5 steps are in, unless steps= was given
  local cap = opts.steps and math.huge or opt_num("max_seconds", 2 * opt_num("seconds", 12))
  local times = {}
  local t_all = now()
  for i = 1, steps do
    local t0 = now()
    step()
    times[i] = now() - t0
    if i >= 5 and t0 - t_all > cap then break end
  end
  t_all = now() - t_all
  steps = #times
  local s = stats(times)
  local rec = {
    workload = name, impl = "aiart", ms_per_step = s.median * 1e3, peak_rss_mb = proc_status_mb("VmHWM"),
    gflop_per_step = gflop, gflops = gflop / s.median, steps = steps, warmup = warmup, threads = THREADS,
    data = info.data, mean_ms = s.mean * 1e3, min_ms = s.min * 1e3, p90_ms = s.p90 * 1e3, max_ms = s.max * 1e3,
    total_s = t_all, clock = "monotonic", rss_reset_after_data = rss_reset,
    alloc_peak_mb = ai.memory().peak / 2 ^ 20,
  }
  print(json_line(rec, WORKLOAD_KEYS))
end

---------------------------------------------------------------------------------- microbenchmarks

local QUICK = opt_bool("quick", false)
local MICRO_SECONDS = opt_num("micro_seconds", QUICK and 0.02 or 0.3)

-- Seconds per call of f (after a warm-up call), repeated for about MICRO_SECONDS: the fastest
-- repetition (timeit's convention: a kernel's own speed; interference from other processes
-- only adds time). The median goes to LAST_MEDIAN, which the records carry as median_ms.
local LAST_MEDIAN
local function time_fn(f, min_reps)
  f()
  local t0 = now()
  f()
  local one = math.max(now() - t0, 1e-7)
  local reps = math.max(min_reps or (QUICK and 2 or 5), math.min(1000, math.floor(MICRO_SECONDS / one)))
  local ts, best = {}, math.huge
  for i = 1, reps do
    local a = now()
    f()
    ts[i] = now() - a
    if ts[i] < best then best = ts[i] end
  end
  LAST_MEDIAN = median(ts)
  return best
end

local function emit(rec) print(json_line(rec, MICRO_KEYS)); io.stdout:flush() end

local function shape_str(t) return table.concat(t, "x") end

-- only=a,b: run just these microbenchmark groups (sgemm, linear, conv2d, conv_transpose2d,
-- group_norm, softmax, elementwise, random, adam, overhead)
local ONLY
if opts.only then
  ONLY = {}
  for g in opts.only:gmatch("[^,%s]+") do ONLY[g] = true end
end
local function want(group) return ONLY == nil or ONLY[group] == true end

local function run_micro()
  local records = {}
  local function out(rec)
    rec.impl = "aiart"
    rec.threads = rec.threads or THREADS
    rec.median_ms = LAST_MEDIAN and LAST_MEDIAN * 1e3
    records[#records + 1] = rec
    emit(rec)
  end
  local sgemm_ref = {} -- threads -> GFLOP/s of the 1024^3 sgemm

  -- sgemm through ai.matmul
  local GEMMS = {{1024, 1024, 1024}, {64, 784, 512}, {12544, 64, 288}, {256, 4096, 2304}}
  if QUICK then GEMMS = {{256, 256, 256}, {64, 784, 512}} end
  if not want("sgemm") then GEMMS = {} end
  for _, nt in ipairs({1, THREADS > 1 and THREADS or nil}) do
    ai.set_num_threads(nt)
    for _, g in ipairs(GEMMS) do
      local M, N, K = g[1], g[2], g[3]
      local a, b = ai.randn(M, K), ai.randn(K, N)
      local s = time_fn(function() return ai.matmul(a, b) end)
      local gf = 2 * M * N * K / s / 1e9
      if g == GEMMS[1] then sgemm_ref[nt] = gf end
      out({micro = "sgemm", op = "matmul", shape = ("%dx%dx%d"):format(M, N, K), threads = nt, ms = s * 1e3, gflops = gf})
    end
  end
  ai.set_num_threads(THREADS)
  local ref = sgemm_ref[THREADS] or sgemm_ref[1] or 0 / 0

  local function grad_of(y, wrt, g)
    return function() return ai.grad(y, wrt, {grad_outputs = {g}, retain_graph = true}) end
  end

  -- linear at the GANs' shapes: forward, backward (input, weight and bias gradients)
  local LIN = {{64, 100, 128}, {64, 256, 512}, {64, 512, 784}, {64, 784, 512}, {32, 784, 512}, {64, 100, 6272}, {64, 6272, 1}}
  if QUICK then LIN = {{64, 784, 512}} end
  if not want("linear") then LIN = {} end
  for _, l in ipairs(LIN) do
    local B, I, O = l[1], l[2], l[3]
    local x = ai.randn(B, I):requires_grad_(true)
    local w, bias = (ai.randn(O, I) * 0.05):requires_grad_(true), ai.zeros(O):requires_grad_(true)
    local fl = 2 * B * I * O
    local shape = ("%dx%d->%d"):format(B, I, O)
    local s = ai.no_grad(function() return time_fn(function() return ai.linear(x, w, bias) end) end)
    out({micro = "linear", op = "forward", shape = shape, ms = s * 1e3, gflops = fl / s / 1e9, pct_of_sgemm = 100 * fl / s / 1e9 / ref})
    local y = ai.linear(x, w, bias)
    local g = ai.randn(B, O)
    s = time_fn(grad_of(y, {x, w, bias}, g))
    out({micro = "linear", op = "backward", shape = shape, ms = s * 1e3, gflops = 2 * fl / s / 1e9, pct_of_sgemm = 100 * 2 * fl / s / 1e9 / ref})
  end

  -- conv2d: forward, input gradient, weight (+bias) gradient
  local CONV = {
    {"unet", 64, 32, 32, 28, 3, 1, 1}, {"unet", 64, 32, 64, 14, 3, 1, 1}, {"unet", 64, 64, 64, 14, 3, 1, 1},
    {"unet", 64, 64, 64, 7, 3, 1, 1}, {"unet", 64, 128, 64, 14, 3, 1, 1}, {"unet", 64, 96, 32, 28, 3, 1, 1},
    {"unet", 64, 32, 32, 28, 3, 2, 1}, {"unet", 64, 96, 32, 28, 1, 1, 0},
    {"vgg", 1, 64, 64, 256, 3, 1, 1}, {"vgg", 1, 128, 128, 128, 3, 1, 1}, {"vgg", 1, 256, 256, 64, 3, 1, 1},
    {"vgg", 1, 256, 512, 32, 3, 1, 1},
    {"dcgan", 64, 1, 64, 28, 4, 2, 1}, {"dcgan", 64, 64, 128, 14, 4, 2, 1},
  }
  if QUICK then CONV = {{"unet", 8, 32, 64, 14, 3, 1, 1}} end
  if not want("conv2d") then CONV = {} end
  for _, c in ipairs(CONV) do
    local model, N, Cin, Cout, H, k, st, pad = table.unpack(c)
    local Ho = (H + 2 * pad - k) // st + 1
    local fl = 2 * N * Cout * Ho * Ho * Cin * k * k
    local shape = ("%dx%dx%dx%d->%d k%d s%d"):format(N, Cin, H, H, Cout, k, st)
    local x = ai.randn(N, Cin, H, H)
    local w, b = ai.randn(Cout, Cin, k, k) * 0.05, ai.zeros(Cout)
    local co = {stride = st, padding = pad}
    local s = ai.no_grad(function() return time_fn(function() return ai.conv2d(x, w, b, co) end) end)
    local base = {micro = "conv2d", model = model, shape = shape}
    local function rec(op, sec)
      local r = {op = op, ms = sec * 1e3, gflops = fl / sec / 1e9, pct_of_sgemm = 100 * fl / sec / 1e9 / ref}
      for kk, v in pairs(base) do r[kk] = v end
      out(r)
    end
    rec("forward", s)
    local g = ai.randn(N, Cout, Ho, Ho)
    local xg = x:clone():requires_grad_(true)
    rec("backward_input", time_fn(grad_of(ai.conv2d(xg, w, b, co), {xg}, g)))
    local wg, bg = w:clone():requires_grad_(true), b:clone():requires_grad_(true)
    rec("backward_weight", time_fn(grad_of(ai.conv2d(x, wg, bg, co), {wg, bg}, g)))
  end

  -- conv_transpose2d at the DCGAN generator's shapes
  local CONVT = {{64, 128, 64, 7}, {64, 64, 1, 14}}
  if QUICK then CONVT = {{8, 128, 64, 7}} end
  if not want("conv_transpose2d") then CONVT = {} end
  for _, c in ipairs(CONVT) do
    local N, Cin, Cout, H = table.unpack(c)
    local fl = 2 * N * Cin * H * H * Cout * 16
    local shape = ("%dx%dx%dx%d->%d k4 s2"):format(N, Cin, H, H, Cout)
    local x = ai.randn(N, Cin, H, H)
    local w, b = ai.randn(Cin, Cout, 4, 4) * 0.05, ai.zeros(Cout)
    local co = {stride = 2, padding = 1}
    local function rec(op, sec)
      out({micro = "conv_transpose2d", model = "dcgan", op = op, shape = shape, ms = sec * 1e3, gflops = fl / sec / 1e9,
        pct_of_sgemm = 100 * fl / sec / 1e9 / ref})
    end
    rec("forward", ai.no_grad(function() return time_fn(function() return ai.conv_transpose2d(x, w, b, co) end) end))
    local g = ai.randn(N, Cout, 2 * H, 2 * H)
    local xg = x:clone():requires_grad_(true)
    rec("backward_input", time_fn(grad_of(ai.conv_transpose2d(xg, w, b, co), {xg}, g)))
    local wg, bg = w:clone():requires_grad_(true), b:clone():requires_grad_(true)
    rec("backward_weight", time_fn(grad_of(ai.conv_transpose2d(x, wg, bg, co), {wg, bg}, g)))
  end

  -- group norm (GB/s: forward reads x and writes y; backward reads x and dy, writes dx)
  local GN = {{64, 32, 28}, {64, 64, 14}, {64, 128, 14}, {64, 96, 28}}
  if QUICK then GN = {{8, 32, 28}} end
  if not want("group_norm") then GN = {} end
  for _, c in ipairs(GN) do
    local N, C, H = table.unpack(c)
    local n = N * C * H * H
    local x = ai.randn(N, C, H, H)
    local w, b = ai.ones(C), ai.zeros(C)
    local shape = ("%dx%dx%dx%d g8"):format(N, C, H, H)
    local s = ai.no_grad(function() return time_fn(function() return ai.group_norm(x, 8, w, b) end) end)
    out({micro = "group_norm", op = "forward", shape = shape, ms = s * 1e3, gbps = 2 * n * 4 / s / 1e9})
    local xg, wg, bg = x:clone():requires_grad_(true), w:clone():requires_grad_(true), b:clone():requires_grad_(true)
    local y = ai.group_norm(xg, 8, wg, bg)
    s = time_fn(grad_of(y, {xg, wg, bg}, ai.randn(N, C, H, H)))
    out({micro = "group_norm", op = "backward", shape = shape, ms = s * 1e3, gbps = 3 * n * 4 / s / 1e9})
  end

  -- softmax over the last dim: the UNet's attention scores and a larger one
  local SM = {{64, 49, 49}, {1, 4096, 1024}}
  if QUICK then SM = {{64, 49, 49}} end
  if not want("softmax") then SM = {} end
  for _, c in ipairs(SM) do
    local x = ai.randn(table.unpack(c))
    local n = c[1] * c[2] * c[3]
    local s = ai.no_grad(function() return time_fn(function() return ai.softmax(x, 3) end) end)
    out({micro = "softmax", op = "forward", shape = shape_str(c), ms = s * 1e3, gbps = 2 * n * 4 / s / 1e9})
  end

  -- elementwise ops at 1M elements (out of place)
  if want("elementwise") then
    local n = QUICK and 65536 or 1048576
    local x, y = ai.randn(n), ai.randn(n)
    ai.no_grad(function()
      local s = time_fn(function() return x + y end)
      out({micro = "elementwise", op = "add", shape = tostring(n), ms = s * 1e3, gbps = 3 * n * 4 / s / 1e9})
      s = time_fn(function() return x * y end)
      out({micro = "elementwise", op = "mul", shape = tostring(n), ms = s * 1e3, gbps = 3 * n * 4 / s / 1e9})
      s = time_fn(function() return ai.silu(x) end)
      out({micro = "elementwise", op = "silu", shape = tostring(n), ms = s * 1e3, gbps = 2 * n * 4 / s / 1e9})
    end)
  end

  -- random numbers: 1M f32 draws into an existing tensor, one thread and all (ns per element)
  if want("random") then
    local n = QUICK and 65536 or 1048576
    local x = ai.empty(n)
    for _, nt in ipairs{1, THREADS} do
      ai.set_num_threads(nt)
      local s = time_fn(function() x:normal_() end)
      out({micro = "random", op = "randn", shape = tostring(n), threads = nt, ms = s * 1e3, ns_per_element = s / n * 1e9,
           gbps = 4 * n / s / 1e9})
      s = time_fn(function() x:uniform_() end)
      out({micro = "random", op = "rand", shape = tostring(n), threads = nt, ms = s * 1e3, ns_per_element = s / n * 1e9,
           gbps = 4 * n / s / 1e9})
      if nt == THREADS then break end
    end
    ai.set_num_threads(THREADS)
  end

  -- Adam on 1M parameters (reads p, grad, m, v; writes p, m, v)
  if want("adam") then
    local n = QUICK and 65536 or 1048576
    local p = ai.randn(n):requires_grad_(true)
    p.grad = ai.randn(n)
    local opt = ai.optim.Adam({p}, {lr = 1e-3})
    local s = time_fn(function() opt:step() end)
    out({micro = "adam", op = "step", shape = tostring(n), ms = s * 1e3, gbps = 7 * n * 4 / s / 1e9})
  end

  -- per-op overhead: x + y on 16-element tensors, without and with autograd recording
  if want("overhead") then
    local iters = QUICK and 2000 or 200000
    local a, b = ai.randn(16), ai.randn(16)
    local ag = ai.randn(16):requires_grad_(true)
    local function loop(x, y)
      return function()
        local r
        for _ = 1, iters do r = x + y end
        return r
      end
    end
    collectgarbage()
    local s = ai.no_grad(function() return time_fn(loop(a, b), 3) end)
    out({micro = "overhead", op = "add16", shape = "16", ms = s * 1e3, us_per_op = s / iters * 1e6, target_us = 0.5})
    collectgarbage()
    s = time_fn(loop(ag, b), 3)
    out({micro = "overhead", op = "add16_recording", shape = "16", ms = s * 1e3, us_per_op = s / iters * 1e6, target_us = 0.8})
  end
  return records
end

---------------------------------------------------------------------------------- the driver

local TARGETS = {
  mlp_gan_b32 = 0.5, mlp_gan_b64 = 0.5, dcgan_b64 = 0.5, ddpm_unet_b64 = 0.7, ddpm_unet_b64_infer = 0.7,
  ddpm_unet_cond_b64 = 0.7, ddpm_guided_sample_b64 = 0.7, style_vgg19_256 = 0.8,
}
-- PyTorch's ms/step from shared/reference-models.md (for information only: ratios are taken in the same run).
-- ddpm_unet_cond_b64 and ddpm_guided_sample_b64 are not in that document: no figure (null in the results).
local DOC_PYTORCH_MS = {
  mlp_gan_b32 = 10.9, mlp_gan_b64 = 14.8, dcgan_b64 = 222, ddpm_unet_b64 = 362, ddpm_unet_b64_infer = 125,
  style_vgg19_256 = 417,
}

local function cpu_model()
  local f = io.open("/proc/cpuinfo")
  if not f then return nil end
  for l in f:lines() do
    local m = l:match("^model name%s*:%s*(.*)$")
    if m then f:close() return m end
  end
  f:close()
end

local function find_python()
  local want = opts.torch
  if want == "false" or want == "0" or want == "no" then return nil end
  local cands = opts.python and {opts.python} or {"python3", "/usr/bin/python3"}
  for _, py in ipairs(cands) do
    local h = io.popen(sh_quote(py) .. " -c 'import torch; print(torch.__version__)' 2>/dev/null")
    local v = h and h:read("l")
    if h then h:close() end
    if v and v ~= "" then return py, v end
  end
  if want == "true" then
    io.stderr:write("bench.lua: torch=true but no python3 can import torch (apt-get install python3-torch)\n")
    os.exit(1)
  end
  return nil
end

local function fmt(v, f)
  if v == nil then return "-" end
  return (f or "%.1f"):format(v)
end

local TORCH_ENV = ""

local function driver()
  local selected = {}
  if opts.workloads then
    for w in opts.workloads:gmatch("[^,%s]+") do
      if not WORKLOADS[w] then
        io.stderr:write(("bench.lua: unknown workload '%s'\n"):format(w))
        os.exit(2)
      end
      selected[#selected + 1] = w
    end
  else
    selected = ORDER
  end
  local py, torch_version = find_python()
  local torch_script = ROOT .. "/scripts/bench/torch_ref.py"
  if py and not file_exists(torch_script) then py = nil end
  local pass = {}
  for _, k in ipairs({"threads", "steps", "seconds", "warmup", "data", "quick", "micro_seconds", "max_seconds", "only"}) do
    if opts[k] then pass[#pass + 1] = k .. "=" .. sh_quote(opts[k]) end
  end
  local passargs = table.concat(pass, " ")
  -- aiart-lua starts itself with a short OpenMP spin (GOMP_SPINCOUNT=1000, src/host/main.c);
  -- PyTorch, run from here, inherits it, so both use the same OpenMP settings.
  -- torch_omp=default runs PyTorch with libgomp's defaults instead.
  if opts.torch_omp == "default" then TORCH_ENV = "env -u GOMP_SPINCOUNT -u AIART_NO_REEXEC " end
  local results = {
    meta = {
      date = os.date("!%Y-%m-%dT%H:%M:%SZ"), threads = THREADS, cpu = cpu_model(), loadavg_start = loadavg(),
      aiart_version = ai.version, torch_version = torch_version, python = py, clock = "monotonic",
      note = "ratios are aiart/pytorch in this run; each workload runs in its own process, aiart then pytorch; with rounds > 1 the table keeps each implementation's fastest round",
      rounds = math.max(1, math.tointeger(opt_num("rounds", 1)) or 1), data = opts.data or "real",
      binary = EXE, binary_mtime = mtime(EXE),
      omp = {GOMP_SPINCOUNT = os.getenv("GOMP_SPINCOUNT"), OMP_WAIT_POLICY = os.getenv("OMP_WAIT_POLICY"),
        pytorch = TORCH_ENV == "" and "same as aiart" or "libgomp defaults"},
    },
    workloads = {}, micro = {}, summary = {},
  }
  local la = tonumber((loadavg() or ""):match("^(%S+)"))
  if la and la > THREADS + 0.5 then
    io.stderr:write(("bench.lua: warning: load average %.1f on this machine; timings will be noisy\n"):format(la))
  end
  print(("# aiart-lua benchmark: %d threads, %s"):format(THREADS, py and ("PyTorch " .. torch_version) or "no PyTorch"))
  io.stdout:flush()
  -- rounds=R runs every workload R times (aiart then PyTorch each time); the table takes each
  -- implementation's fastest round (noise from other processes only ever adds time)
  local rounds = math.max(1, math.tointeger(opt_num("rounds", 1)) or 1)
  local by = {}
  local failed = false
  for round = 1, rounds do
    for _, w in ipairs(selected) do
      by[w] = by[w] or {}
      local cmds = {{"aiart", ("%s %s --workload %s %s"):format(sh_quote(EXE), sh_quote(SCRIPT), w, passargs)}}
      if py then
        cmds[2] = {"pytorch", ("%s%s %s --workload %s %s"):format(TORCH_ENV, sh_quote(py), sh_quote(torch_script), w, passargs)}
      end
      for _, c in ipairs(cmds) do
        local recs, other, ok = run_json(c[2])
        local rec = recs[1]
        if ok and rec and rec.workload == w then
          rec.round = round
          rec.loadavg = loadavg()
          print(json_line(rec, WORKLOAD_KEYS))
          results.workloads[#results.workloads + 1] = rec
          local best = by[w][c[1]]
          if not best or rec.ms_per_step < best.ms_per_step then
            if best then rec.peak_rss_mb = math.max(rec.peak_rss_mb or 0, best.peak_rss_mb or 0) end
            by[w][c[1]] = rec
          elseif best then
            best.peak_rss_mb = math.max(rec.peak_rss_mb or 0, best.peak_rss_mb or 0)
          end
        else
          failed = failed or c[1] == "aiart"
          io.stderr:write(("bench.lua: %s %s failed:\n  %s\n"):format(c[1], w, table.concat(other, "\n  ")))
          results.workloads[#results.workloads + 1] = {workload = w, impl = c[1], round = round,
            error = table.concat(other, "\n")}
        end
        io.stdout:flush()
      end
    end
  end
  -- microbenchmarks
  if opt_bool("micro", true) then
    for _, c in ipairs({{"aiart", ("%s %s --micro %s"):format(sh_quote(EXE), sh_quote(SCRIPT), passargs)},
                        py and {"pytorch", ("%s%s %s --micro %s"):format(TORCH_ENV, sh_quote(py), sh_quote(torch_script), passargs)} or nil}) do
      local recs, other, ok = run_json(c[2])
      for _, r in ipairs(recs) do
        results.micro[#results.micro + 1] = r
        print(json_line(r, MICRO_KEYS))
      end
      if not ok or #recs == 0 then
        failed = failed or c[1] == "aiart"
        io.stderr:write(("bench.lua: %s microbenchmarks failed:\n  %s\n"):format(c[1], table.concat(other, "\n  ")))
      end
      io.stdout:flush()
    end
  end
  results.meta.loadavg_end = loadavg()

  -- the workload table
  local lines = {}
  local function p(s) lines[#lines + 1] = s end
  p("")
  p(("%-22s %10s %10s %7s %7s %5s %9s %9s %8s %8s"):format("workload", "aiart ms", "torch ms", "ratio", "target", "met",
    "aiart MB", "torch MB", "aiart GF", "torch GF"))
  for _, w in ipairs(selected) do
    local a, t = by[w].aiart, by[w].pytorch
    local ratio = a and t and a.ms_per_step / t.ms_per_step or nil
    local met = ratio and (ratio <= TARGETS[w] and "yes" or "NO") or "-"
    local met_flag = nil -- true / false, or absent without a PyTorch time
    if ratio then met_flag = ratio <= TARGETS[w] end
    p(("%-22s %10s %10s %7s %7s %5s %9s %9s %8s %8s"):format(w, fmt(a and a.ms_per_step, "%.2f"), fmt(t and t.ms_per_step, "%.2f"),
      fmt(ratio, "%.2f"), ("<=%.1f"):format(TARGETS[w]), met, fmt(a and a.peak_rss_mb, "%.0f"),
      fmt(t and t.peak_rss_mb, "%.0f"), fmt(a and a.gflops, "%.1f"), fmt(t and t.gflops, "%.1f")))
    results.summary[#results.summary + 1] = {
      workload = w, aiart_ms = a and a.ms_per_step, pytorch_ms = t and t.ms_per_step, ratio = ratio,
      target_ratio = TARGETS[w], met = met_flag,
      aiart_peak_rss_mb = a and a.peak_rss_mb, pytorch_peak_rss_mb = t and t.peak_rss_mb,
      aiart_gflops = a and a.gflops, pytorch_gflops = t and t.gflops, pytorch_doc_ms = DOC_PYTORCH_MS[w],
    }
  end
  -- the microbenchmarks side by side
  if #results.micro > 0 then
    local keyed, order = {}, {}
    for _, r in ipairs(results.micro) do
      local key = table.concat({r.micro or "", r.op or "", r.shape or "", tostring(r.threads or "")}, "|")
      if not keyed[key] then keyed[key] = {}; order[#order + 1] = key end
      keyed[key][r.impl] = r
    end
    p("")
    p(("%-16s %-17s %-28s %3s %10s %10s %8s %9s"):format("micro", "op", "shape", "thr", "aiart", "torch", "unit", "%sgemm"))
    for _, key in ipairs(order) do
      local a, t = keyed[key].aiart, keyed[key].pytorch
      local r = a or t
      local unit = r.gflops and "GFLOP/s" or r.gbps and "GB/s" or "us/op"
      local function val(x) return x and (x.gflops or x.gbps or x.us_per_op) end
      p(("%-16s %-17s %-28s %3s %10s %10s %8s %9s"):format(r.micro, r.op or "", r.shape or "", tostring(r.threads or ""),
        fmt(val(a), "%.2f"), fmt(val(t), "%.2f"), unit, fmt(a and a.pct_of_sgemm, "%.0f%%")))
    end
    p("(conv target: >= 70% of sgemm's GFLOP/s; per-op overhead targets: <= 0.5 us, <= 0.8 us recording)")
  end
  print(table.concat(lines, "\n"))
  results.table = table.concat(lines, "\n")
  local outp = opts.out or "bench-results.json"
  local f = io.open(outp, "w")
  if f then
    f:write(ai.json.encode(results), "\n")
    f:close()
    print("\nresults written to " .. outp)
  else
    io.stderr:write("bench.lua: cannot write " .. outp .. "\n")
  end
  if failed then os.exit(1) end
end

---------------------------------------------------------------------------------- main

if mode == "list" then
  for _, w in ipairs(ORDER) do print(w) end
elseif mode == "workload" then
  run_workload(workload_name)
elseif mode == "micro" then
  run_micro()
else
  driver()
end
