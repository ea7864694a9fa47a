-- aiart.experiment: the plumbing that the experiment scripts share: their common options and
-- the check of every option at start, the output folder and its config.json, a metrics file
-- that a resumed run continues, an endless stream of batches, the guard against non-finite
-- losses, and the start of a data-parallel run (dist=true).
local ai = require "aiart"

local M = {}

-- The options that mean the same in every script that takes them, in config.parse's form.
M.COMMON = {
  seed = {1, "random seed", "integer"},
  steps = {4000, "stop after this many steps (0: no limit)", "integer >= 0"},
  epochs = {0, "stop after this many epochs (0: no limit)", "integer >= 0"},
  time_limit = {0, "stop after this many seconds (0: no limit)", "number >= 0"},
  sample_every = {500, "write a sample grid every N steps (0: only at the end)", "integer >= 0"},
  log_every = {10, "write a metrics line every N steps", "integer >= 1"},
  ckpt_every = {1000, "keep a numbered checkpoint every N steps (last.safetensors is updated at each)",
                "integer >= 1"},
  out = {"runs/experiment", "output folder", "string"},
  resume = {false, "continue from out/last.safetensors", "boolean"},
  on_nan = {"stop", "stop (keep the last good checkpoint) or skip (drop the batch)", {"stop", "skip"}},
  -- OpenMP fails to start far more threads than that
  threads = {0, "threads (0: all cores)", "integer >= 0 and <= 1024"},
  dist = {false, "data-parallel over the ranks of mpirun (batch_size is split among them)", "boolean"},
}

local DEBUG = {false, "show the Lua traceback of an error in the options", "boolean"}

-- debug=true among the raw arguments: known before they parse, so that an error in them can
-- show its traceback
local function wants_debug(args)
  local on = false
  for i = 1, #(args or {}) do
    local a = tostring(args[i])
    if a == "--debug" then on = true end
    local v = a:match("^%-?%-?debug=(.*)$")
    if v then on = ({["true"] = true, yes = true, on = true, ["1"] = true})[v:lower()] or false end
  end
  return on
end

--- experiment.options(args, spec[, {description=, common=, check=}]) -> cfg: the script's
-- options (spec in config.parse's form {key = {default, "description", rule}}) merged with the
-- common ones it names in opts.common, checked before anything is built. opts.common lists
-- names ("seed") that take experiment.COMMON's default, and name = default pairs
-- (steps = 4000, out = config.computed(...)) or name = {default, "description"} that give the
-- script's own; opts.check(cfg) returns a message for a rule across options. A bad option ends
-- the process with its message on stderr and exit status 1, without a Lua traceback (with one
-- when debug=true is among the arguments).
function M.options(args, spec, opts)
  opts = opts or {}
  local decl = {}
  for k, v in pairs(opts.common or {}) do
    local name, default = k, v
    if math.type(k) == "integer" then name, default = v, nil end
    local c = M.COMMON[name]
    if not c then error("experiment.options: no common option " .. tostring(name), 2) end
    local d = {c[1], c[2], c[3]}
    if type(default) == "table" and getmetatable(default) == nil and type(default[2]) == "string" then
      d[1], d[2] = default[1], default[2]
    elseif default ~= nil then
      d[1] = default
    end
    decl[name] = d
  end
  for k, v in pairs(spec) do
    if decl[k] then error("experiment.options: " .. k .. " is both a common option and the script's own", 2) end
    decl[k] = v
  end
  decl.debug = decl.debug or DEBUG
  local popts = {name = ((args and args[0]) or "script"):match("[^/]*$"), description = opts.description,
                 check = opts.check}
  if wants_debug(args) then return ai.config.parse(args, decl, popts) end
  local ok, cfg = pcall(ai.config.parse, args, decl, popts)
  if ok then return cfg end
  io.stderr:write(tostring(cfg), "\n")
  os.exit(1)
end

--- experiment.unreadable(cfg, key, ...) -> a message for the first of these options that names
-- a file (or folder) that cannot be opened, or nil; an empty value names none. For opts.check.
function M.unreadable(cfg, ...)
  for _, key in ipairs({...}) do
    local path = cfg[key]
    if path ~= "" then
      local f, err = io.open(path, "rb")
      if not f then return ("%s: cannot read %s"):format(key, err) end
      f:close()
    end
  end
end

--- experiment.prepare(out, cfg): creates out (and out/samples) and writes out/config.json, the
-- values the run uses, with resume=false: config=out/config.json starts the same run afresh
function M.prepare(out, cfg)
  os.execute("mkdir -p '" .. out:gsub("'", "'\\''") .. "/samples'")
  local record = {}
  for k, v in pairs(cfg) do record[k] = v end
  if record.resume ~= nil then record.resume = false end
  local f = assert(io.open(out .. "/config.json", "w"))
  f:write(ai.json.encode(record, {indent = true}), "\n")
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
