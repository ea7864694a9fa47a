-- tests/reliability/soak.lua: flat memory on a long run (`make soak`). Trains the mlp GAN of
-- scripts/train_gan.lua for 10,000 steps in one process and reads its resident memory (VmRSS of
-- /proc/<pid>/status) as each metrics line appears; the RSS at step 10,000 must be within 5% of
-- the RSS at step 1,000.
--   aiart-lua tests/reliability/soak.lua [steps=10000] [at=1000] [tolerance=0.05] [threads=2]
--     [script=gan|mini]   (mini: tests/reliability/mini_train.lua with model=mlp_gan)
local opts = {steps = 10000, at = 1000, tolerance = 0.05, threads = 2, script = "gan", every = 50}
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if k then opts[k] = tonumber(v) or v end
end
local bin = os.getenv("AIART_LUA") or "./aiart-lua"
local q = (package.loaded["helper"] or require "tests.helper").shell_quote
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. q(dir))

-- a few steps past the last one measured, so that the end-of-run work (final checkpoint,
-- samples, plot) is not what gets measured
local total = opts.steps + opts.every
local cmd
if opts.script == "mini" then
  cmd = ("tests/reliability/mini_train.lua model=mlp_gan batch_size=32 steps=%d ckpt_every=%d log_every=%d threads=%d out=%s")
      :format(total, total * 2, opts.every, opts.threads, q(dir))
else
  cmd = ("scripts/train_gan.lua arch=mlp steps=%d ckpt_every=%d sample_every=%d log_every=%d threads=%d out=%s")
      :format(total, total * 2, total * 2, opts.every, opts.threads, q(dir))
end
local p = io.popen(("%s %s >%s 2>&1 & echo $!"):format(bin, cmd, q(dir .. "/log")))
local pid = tonumber(p:read("a"):match("%d+"))
p:close()

local function rss(id)
  local f = io.open("/proc/" .. id .. "/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end
local function last_step()
  local f = io.open(dir .. "/metrics.jsonl")
  if not f then return 0 end
  local s = f:read("a")
  f:close()
  local k = 0
  for v in s:gmatch('"step":(%d+)') do k = math.max(k, tonumber(v)) end
  return k
end

local seen, samples, t0 = 0, {}, os.time()
while true do
  local k = last_step()
  if k > seen then
    local r = rss(pid)
    seen = k
    if r and k % 1000 == 0 then
      samples[k] = r
      print(("soak: step %5d  RSS %7.1f MB  (%ds)"):format(k, r / 1024, os.time() - t0))
      io.stdout:flush()
    end
  end
  if not rss(pid) or seen >= total then break end
  os.execute("sleep 0.02")
end
os.execute("while kill -0 " .. pid .. " 2>/dev/null; do sleep 0.2; done")
local a, b = samples[opts.at], samples[opts.steps]
if not (a and b) then
  local f = io.open(dir .. "/log")
  local log = f and f:read("a") or ""
  if f then f:close() end
  os.execute("rm -rf " .. q(dir))
  error(("soak: no RSS at steps %d and %d (the run stopped at step %d):\n%s"):format(opts.at, opts.steps, seen, log:sub(-2000)), 0)
end
os.execute("rm -rf " .. q(dir))
local change = (b - a) / a
print(("soak: RSS at step %d: %.1f MB, at step %d: %.1f MB (%+.2f%%; limit %.0f%%)")
      :format(opts.at, a / 1024, opts.steps, b / 1024, change * 100, opts.tolerance * 100))
if math.abs(change) > opts.tolerance then
  error(("soak: memory is not flat: %+.2f%% between steps %d and %d"):format(change * 100, opts.at, opts.steps), 0)
end
