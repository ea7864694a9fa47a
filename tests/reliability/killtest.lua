-- tests/reliability/killtest.lua: crash safety of training. A training run is killed with
-- SIGKILL at random moments (and, every other trial, while it is writing a checkpoint), then
-- resumed; every time the last checkpoint must load, and the resumed run must reproduce the
-- losses of an uninterrupted run bit for bit (metrics.jsonl) and end with the same weights.
-- The first check is determinism itself: two uninterrupted runs agree exactly.
--   aiart-lua tests/reliability/killtest.lua [script=gan|mini] [trials=20] [steps=N] [seed=S]
-- (`make killtest`). As a library (tests/test_reliability.lua): require it, call M.run(opts).
local ai = require "aiart"
-- run from the repository root, as make killtest and tests/run.lua do
local T = package.loaded["helper"] or require "tests.helper"

local M = {}

local sh, q, exists, now = T.sh, T.shell_quote, T.exists, ai.clock
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local s = f:read("a")
  f:close()
  return not s:match("^%d+ %b() Z") -- a zombie is dead
end

local SCRIPTS = {
  -- a command line per script: the same outputs (last.safetensors, metrics.jsonl with step,
  -- loss_d, loss_g) and a checkpoint at every step
  gan = function(o, out, extra)
    return ("scripts/train_gan.lua threads=%d seed=%d steps=%d ckpt_every=1 log_every=1 sample_every=100000 out=%s %s")
        :format(o.threads, o.seed, o.steps, q(out), extra or "")
  end,
  mini = function(o, out, extra)
    return ("tests/reliability/mini_train.lua threads=%d seed=%d steps=%d ckpt_every=1 log_every=1 out=%s %s")
        :format(o.threads, o.seed, o.steps, q(out), extra or "")
  end,
}

local function losses(path)
  local ok, recs = pcall(ai.metrics.read, path)
  if not ok then return nil, recs end
  local out = {}
  for _, r in ipairs(recs) do out[#out + 1] = {r.step, r.loss_d, r.loss_g} end
  return out
end

-- Same steps, same losses, bit for bit (JSON numbers here read back exactly).
local function same_losses(a, b)
  if #a ~= #b then return false, ("%d records, expected %d"):format(#a, #b) end
  for i = 1, #a do
    for k = 1, 3 do
      if a[i][k] ~= b[i][k] or math.type(a[i][k]) ~= math.type(b[i][k]) then
        return false, ("record %d field %d: %s, expected %s"):format(i, k, ("%.17g"):format(a[i][k] or 0 / 0), ("%.17g"):format(b[i][k] or 0 / 0))
      end
    end
  end
  return true
end

local function same_tensors(pa, pb)
  local ok, a, ta = pcall(ai.checkpoint.read, pa)
  if not ok then return false, "cannot read " .. pa .. ": " .. tostring(a) end
  local ok2, b, tb = pcall(ai.checkpoint.read, pb)
  if not ok2 then return false, "cannot read " .. pb .. ": " .. tostring(b) end
  if a.step ~= b.step then return false, ("step %s, expected %s"):format(tostring(a.step), tostring(b.step)) end
  local n = 0
  for name, x in pairs(tb) do
    local y = ta[name]
    if not y then return false, "tensor " .. name .. " is missing" end
    if not ai.json or table.concat(x.shape, "x") ~= table.concat(y.shape, "x") or x.dtype ~= y.dtype then
      return false, "tensor " .. name .. " differs in shape or dtype"
    end
    if x:numel() > 0 and x:ne(y):sum():item() ~= 0 then return false, "tensor " .. name .. " differs" end
    n = n + 1
  end
  for name in pairs(ta) do if not tb[name] then return false, "extra tensor " .. name end end
  return true, n
end

local function leftovers(dir)
  local _, out = sh("ls -a " .. q(dir))
  local n = 0
  for line in out:gmatch("[^\n]+") do if line:match("%.tmp%.%d+$") then n = n + 1 end end
  return n
end

--- M.run{script=, trials=, steps=, seed=, threads=, bin=, dir=, log=} -> report table; errors on a failure
function M.run(o)
  o.script = o.script or "mini"
  o.trials = o.trials or 20
  o.steps = o.steps or (o.script == "gan" and 12 or 40)
  o.seed = o.seed or 7
  o.threads = o.threads or 1
  local bin = o.bin or os.getenv("AIART_LUA") or "./aiart-lua"
  local log = o.log or print
  local make = assert(SCRIPTS[o.script], "script must be gan or mini")
  local dir = o.dir or os.tmpname()
  os.remove(dir)
  sh("mkdir -p " .. q(dir))
  math.randomseed(o.rand_seed or 12345)

  -- reference, then determinism: a second uninterrupted run must agree exactly
  local t0 = now()
  local ref = dir .. "/ref"
  local rc, out = sh(bin .. " " .. make(o, ref))
  if rc ~= 0 then error("reference run failed:\n" .. out, 0) end
  local t_ref = now() - t0
  local ref_losses = assert(losses(ref .. "/metrics.jsonl"))
  assert(#ref_losses == o.steps, ("reference run logged %d steps of %d"):format(#ref_losses, o.steps))
  rc, out = sh(bin .. " " .. make(o, dir .. "/again"))
  if rc ~= 0 then error("second run failed:\n" .. out, 0) end
  local ok, why = same_losses(assert(losses(dir .. "/again/metrics.jsonl")), ref_losses)
  if not ok then error("two runs with the same seed differ: " .. why, 0) end
  local ok2, ntensors = same_tensors(dir .. "/again/last.safetensors", ref .. "/last.safetensors")
  if not ok2 then error("two runs with the same seed end with different checkpoints: " .. ntensors, 0) end
  log(("killtest(%s): reference %d steps in %.1fs; a second run is identical (%d losses, %d tensors)")
      :format(o.script, o.steps, t_ref, #ref_losses, ntensors))
  sh("rm -rf " .. q(dir .. "/again"))

  local report = {trials = 0, mid_write = 0, before_first = 0, leftover_tmp = 0, t_ref = t_ref}
  for i = 1, o.trials do
    local tdir = ("%s/trial%02d"):format(dir, i)
    sh("mkdir -p " .. q(tdir))
    -- start the run in the background: the pid is the training process itself
    local _, pid_s = sh(("%s %s >%s 2>&1 & echo $!"):format(bin, make(o, tdir), q(tdir .. "/log1")))
    local pid = assert(tonumber(pid_s:match("(%d+)%s*$")), "no pid")
    local mode
    if i % 2 == 0 then
      -- kill while a checkpoint is being written: the writer's temporary file exists then
      mode = "mid-write"
      local tmp = ("%s/last.safetensors.tmp.%d"):format(tdir, pid)
      local skip = math.random(0, o.steps // 2) -- not always the first checkpoint
      sh(("n=0; k=0; while [ $n -lt 2000000 ]; do if [ -e %s ]; then if [ $k -ge %d ]; then kill -9 %d; break; fi; k=$((k+1)); while [ -e %s ]; do :; done; fi; n=$((n+1)); done")
         :format(q(tmp), skip, pid, q(tmp)))
    else
      mode = "random"
      local delay = (0.05 + math.random() * 0.9) * t_ref
      sh(("sleep %.3f; kill -9 %d"):format(delay, pid))
    end
    sh("kill -9 " .. pid .. " 2>/dev/null")
    local waited = 0
    while alive(pid) and waited < 200 do sh("sleep 0.05") waited = waited + 1 end
    if alive(pid) then error("trial " .. i .. ": the training process does not die", 0) end
    local tmp_left = leftovers(tdir)
    if tmp_left > 0 then report.mid_write = report.mid_write + 1 end
    -- the last checkpoint must load
    local last = tdir .. "/last.safetensors"
    local ck_step = 0
    if exists(last) then
      local okr, parts = pcall(ai.checkpoint.read, last)
      if not okr then error(("trial %d (%s): the last checkpoint does not load after the kill: %s"):format(i, mode, tostring(parts)), 0) end
      ck_step = parts.step
    else
      report.before_first = report.before_first + 1
    end
    -- resume (or start again when there was no checkpoint yet) and finish
    rc, out = sh(bin .. " " .. make(o, tdir, exists(last) and "resume=true" or ""))
    if rc ~= 0 then error(("trial %d (%s, checkpoint at step %d): the resumed run failed:\n%s"):format(i, mode, ck_step, out), 0) end
    local got, err = losses(tdir .. "/metrics.jsonl")
    if not got then error(("trial %d: metrics unreadable after resume: %s"):format(i, err), 0) end
    local same, why2 = same_losses(got, ref_losses)
    if not same then error(("trial %d (%s, resumed from step %d): losses differ from the uninterrupted run: %s"):format(i, mode, ck_step, why2), 0) end
    local same_t, why3 = same_tensors(last, ref .. "/last.safetensors")
    if not same_t then error(("trial %d (%s, resumed from step %d): final checkpoint differs: %s"):format(i, mode, ck_step, why3), 0) end
    local left = leftovers(tdir)
    report.leftover_tmp = report.leftover_tmp + left
    report.trials = report.trials + 1
    log(("killtest(%s): trial %2d %-9s killed with the checkpoint at step %2d%s; resumed: %d losses and %d tensors identical%s")
        :format(o.script, i, mode, ck_step, tmp_left > 0 and " (mid-write)" or "", #got, why3,
                left > 0 and (", " .. left .. " stale temporary file(s) left") or ""))
    sh("rm -rf " .. q(tdir))
  end
  sh("rm -rf " .. q(dir))
  return report
end

-- command line
if arg and arg[0] and arg[0]:match("killtest%.lua$") then
  local o = {}
  for _, a in ipairs(arg) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    if k then o[k] = tonumber(v) or v end
  end
  local r = M.run(o)
  print(("killtest: %d kill trials (%d killed mid checkpoint write, %d before the first checkpoint): every last checkpoint loaded, every resumed run identical to the uninterrupted one%s")
        :format(r.trials, r.mid_write, r.before_first, r.leftover_tmp > 0 and ("; " .. r.leftover_tmp .. " stale temporary files left behind") or ""))
end

return M
