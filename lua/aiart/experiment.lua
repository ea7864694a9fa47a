-- aiart.experiment: the plumbing that the training scripts share: the output folder and its
-- config.json, a metrics file that a resumed run continues, an endless stream of batches, the
-- guard against non-finite losses, and the start of a data-parallel run (dist=true).
local ai = require "aiart"

local M = {}

--- experiment.prepare(out, cfg): creates out (and out/samples) and writes out/config.json
function M.prepare(out, cfg)
  os.execute("mkdir -p '" .. out:gsub("'", "'\\''") .. "/samples'")
  local f = assert(io.open(out .. "/config.json", "w"))
  f:write(ai.json.encode(cfg, {indent = true}), "\n")
  f:close()
end

local null_logger = {write = function() end, close = function() end}

--- experiment.metrics(path, step, resume[, enabled=true]) -> logger. A resumed run keeps the
-- records up to its checkpoint's step and drops those logged after it, so the file reads as one
-- run. enabled=false (the ranks other than the first) gives a logger that writes nothing.
function M.metrics(path, step, resume, enabled)
  if enabled == false then return null_logger end
  local kept = {}
  if resume then
    local ok, recs = pcall(ai.metrics.read, path)
    if ok then for _, r in ipairs(recs) do if (r.step or 0) <= step then kept[#kept + 1] = r end end end
  end
  local log = ai.metrics.logger(path)
  for _, r in ipairs(kept) do log:write(r) end
  return log
end

--- experiment.batches(loader) -> a function returning the next batch (x, y), epoch after epoch.
-- The loader's position is part of a checkpoint, so a resumed stream continues where it was.
function M.batches(loader)
  return coroutine.wrap(function()
    while true do
      for x, y in loader:iter() do coroutine.yield(x, y) end
    end
  end)
end

--- experiment.distributed(cfg) -> ai.dist, initialised when cfg.dist is true: under mpirun
-- one rank per process (without it, one process of one rank). A job of several processes
-- started without dist=true would train the same model several times over into the same
-- files: that is an error.
function M.distributed(cfg)
  local dist = ai.dist
  if cfg.dist then
    dist.init()
    if dist.launched_size() == 0 then print("dist=true without mpirun: training in one process") end
    return dist
  end
  local n = dist.launched_size()
  if n > 1 then
    error(("this script runs under mpirun with %d processes but dist=false; pass dist=true for "
      .. "data-parallel training (or start one process)"):format(n), 0)
  end
  return dist
end

--- experiment.rank_batch(batch_size, dist) -> the batch of each rank: batch_size stays the
-- batch of one step over all ranks, so a run means the same on any number of ranks
function M.rank_batch(batch_size, dist)
  local n = dist.world_size()
  if batch_size % n ~= 0 then
    error(("batch_size %d does not split evenly over %d ranks; use a multiple of %d"):format(batch_size, n, n), 0)
  end
  return batch_size // n
end

--- experiment.time_up(t0, limit) -> 1 when limit > 0 seconds have passed since t0, else 0 (a
-- number, so that the ranks can agree on it through DataParallel's values)
function M.time_up(t0, limit)
  return (limit > 0 and os.time() - t0 >= limit) and 1 or 0
end

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end
M.finite = finite

--- experiment.nan_guard(policy, ckpt) -> guard; guard(step, values) is true when every value is
-- finite. Otherwise it returns false after printing (policy "skip"), or raises an error naming
-- the step and the last good checkpoint (policy "stop", or 100 bad batches in a row).
function M.nan_guard(policy, ckpt)
  local in_a_row = 0
  return function(step, values)
    local bad = {}
    for k, v in pairs(values) do if not finite(v) then bad[#bad + 1] = ("%s %s"):format(k, tostring(v)) end end
    if #bad == 0 then in_a_row = 0 return true end
    table.sort(bad)
    in_a_row = in_a_row + 1
    local msg = ("non-finite loss at step %d (%s)"):format(step, table.concat(bad, ", "))
    if policy == "skip" and in_a_row < 100 then
      print(msg .. ": batch skipped")
      return false
    end
    if in_a_row >= 100 then msg = msg .. ", and 100 batches in a row were skipped" end
    error(msg .. "; training stopped, the last good checkpoint is " .. ckpt, 0)
  end
end

return M
