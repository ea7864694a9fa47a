-- tests/reliability/mini_train.lua: a small, self-contained GAN training loop with the same
-- command line and outputs as scripts/train_gan.lua (out/last.safetensors, out/metrics.jsonl
-- with step, loss_d, loss_g), for the crash-safety, determinism and NaN tests: it needs no
-- dataset and runs a step in a few milliseconds.
--   aiart-lua tests/reliability/mini_train.lua steps=40 ckpt_every=1 out=DIR [resume=true]
--     [seed=1] [threads=1] [on_nan=stop|skip] [nan_at=K] [lr=0.01] [model=tiny|mlp_gan]
--     [batch_size=16] [rss_every=N]
-- nan_at=K makes the D loss of the first attempt at step K NaN (a stand-in for a diverging
-- run); on_nan=stop then ends the run with an error naming the step (exit status 1), keeping
-- the last good checkpoint; on_nan=skip drops that batch and goes on. rss_every=N prints
-- "rss <step> <kB>" (VmRSS of /proc/self/status) every N steps.
local ai = require "aiart"

local cfg = {steps = 40, ckpt_every = 1, log_every = 1, out = "runs/mini", resume = false, seed = 1,
             threads = 1, on_nan = "stop", nan_at = 0, lr = 0.01, model = "tiny", batch_size = 16,
             rss_every = 0}
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if not k or cfg[k] == nil then error("mini_train: unknown argument " .. a, 0) end
  local d = cfg[k]
  if type(d) == "number" then v = assert(tonumber(v), k .. " must be a number")
  elseif type(d) == "boolean" then v = v == "true" or v == "1" end
  cfg[k] = v
end
if cfg.on_nan ~= "stop" and cfg.on_nan ~= "skip" then error("on_nan must be stop or skip", 0) end

ai.set_num_threads(cfg.threads)
ai.manual_seed(cfg.seed)
os.execute("mkdir -p '" .. cfg.out .. "'")
local nn = ai.nn
local B = cfg.batch_size

-- Models and a fixed synthetic data set (points on 8 clusters), all drawn from the seed.
local G, D, zdim, xdim
if cfg.model == "mlp_gan" then
  zdim, xdim = 100, 784
  G, D = require("aiart.models").mlp_gan{sigmoid = false}
else
  zdim, xdim = 8, 16
  G = nn.Sequential(nn.Linear(zdim, 32), nn.LeakyReLU(0.2), nn.Linear(32, xdim), nn.Tanh())
  D = nn.Sequential(nn.Linear(xdim, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
end
local nbatches = 16
local centers = ai.rand(8, xdim) * 1.6 - 0.8
local data = (centers:index_select(1, ai.randint(1, 8, nbatches * B)) + ai.randn(nbatches * B, xdim) * 0.05):clamp(-1, 1)
local optG = ai.optim.Adam(G:parameters(), {lr = cfg.lr, betas = {0.5, 0.999}})
local optD = ai.optim.Adam(D:parameters(), {lr = cfg.lr, betas = {0.5, 0.999}})
local F = ai.F

local step = 0
local last = cfg.out .. "/last.safetensors"
local function checkpoint()
  ai.checkpoint.save(last, {G = G, D = D, optG = optG, optD = optD, rng = true, step = step})
end
if cfg.resume then
  local f = io.open(last, "rb")
  if f then
    f:close()
    step = ai.checkpoint.load(last, {G = G, D = D, optG = optG, optD = optD, rng = true}).step
  end
end

-- metrics: a resumed run keeps the records up to its checkpoint (rewritten atomically)
local mpath = cfg.out .. "/metrics.jsonl"
if cfg.resume then
  local keep = {}
  local ok, recs = pcall(ai.metrics.read, mpath)
  for _, r in ipairs(ok and recs or {}) do if r.step <= step then keep[#keep + 1] = ai.json.encode(r) end end
  local tmp = mpath .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write(table.concat(keep, "\n"), #keep > 0 and "\n" or "")
  f:close()
  assert(os.rename(tmp, mpath))
else
  os.remove(mpath)
end
local log = ai.metrics.logger(mpath, {append = true})

local function rss_kb()
  local f = io.open("/proc/self/status")
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end
local injected = false
while step < cfg.steps do
  local real = data:narrow(1, (step % nbatches) * B + 1, B)
  local fake = G(ai.randn(B, zdim))
  local lossD = F.bce_with_logits(D(real), ai.ones(B, 1)) + F.bce_with_logits(D(fake:detach()), ai.zeros(B, 1))
  local ld = lossD:item()
  if step + 1 == cfg.nan_at and not injected then ld, injected = 0 / 0, true end
  local lg
  if finite(ld) then
    optD:zero_grad()
    lossD:backward()
    optD:step()
    local lossG = F.bce_with_logits(D(fake), ai.ones(B, 1))
    lg = lossG:item()
    if finite(lg) then
      optG:zero_grad()
      lossG:backward()
      optG:step()
    end
  end
  if not (finite(ld) and finite(lg)) then
    local msg = ("non-finite loss at step %d (D %s, G %s)"):format(step + 1, tostring(ld), tostring(lg))
    if cfg.on_nan == "skip" then
      print(msg .. ": batch skipped")
      optD:zero_grad()
      optG:zero_grad()
    else
      log:close()
      error(msg .. "; training stopped, the last good checkpoint is " .. last, 0)
    end
  else
    step = step + 1
    if step % cfg.log_every == 0 then log:write{step = step, loss_d = ld, loss_g = lg} end
    if step % cfg.ckpt_every == 0 then checkpoint() end
    if cfg.rss_every > 0 and step % cfg.rss_every == 0 then
      collectgarbage()
      print(("rss %d %d"):format(step, rss_kb()))
      io.stdout:flush()
    end
  end
end
log:close()
checkpoint()
print(("stopped at step %d"):format(step))
