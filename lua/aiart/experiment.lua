-- aiart.experiment: the plumbing that the experiment scripts share: their common options and
-- the check of every option at start; a run (experiment.start): the lock of its output folder,
-- resume (the checkpoint's options, changed ones applied or refused), SIGINT/SIGTERM caught to
-- finish the step and save, checkpoints on the clock, wall time across resumes; config.json, a
-- metrics file that a resumed run continues, an endless stream of batches, the guard against
-- non-finite losses, what the pipeline does to a folder of images, and the start of a
-- data-parallel run (dist=true).
local ai = require "aiart"
local util = require "aiart.util"

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
  ckpt_minutes = {10, "also update last.safetensors after N minutes of wall time without a checkpoint (0: off)",
                  "number >= 0"},
  out = {"runs/experiment", "output folder", "string"},
  resume = {false, "continue from out/last.safetensors", "boolean"},
  on_nan = {"stop", "stop (keep the last good checkpoint) or skip (drop the batch)", {"stop", "skip"}},
  -- OpenMP fails to start far more threads than that
  threads = {0, "threads (0: all cores)", "integer >= 0 and <= 1024"},
  dist = {false, "data-parallel over the ranks of mpirun (batch_size is split among them)", "boolean"},
}

local DEBUG = {false, "show the Lua traceback of an error in the options", "boolean"}

-- what experiment.options knows of each cfg it made: the keys given, the check across
-- options, the script's name and its arguments (for a resume's merge and its command line)
local PARSED = setmetatable({}, {__mode = "k"})

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

--- experiment.options(args, spec[, {description=, common=, check=, aliases=}]) -> cfg: the script's
-- options (spec in config.parse's form {key = {default, "description", rule}}) merged with the
-- common ones it names in opts.common, checked before anything is built. opts.common lists
-- names ("seed") that take experiment.COMMON's default, and name = default pairs
-- (steps = 4000, out = config.computed(...)) or name = {default, "description"} that give the
-- script's own; opts.check(cfg) returns a message for a rule across options; opts.aliases
-- {old = "new"} keeps an old key name working (config.parse). A bad option ends
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
                 check = opts.check, aliases = opts.aliases}
  local ok, cfg, given
  if wants_debug(args) then ok, cfg, given = true, ai.config.parse(args, decl, popts)
  else ok, cfg, given = pcall(ai.config.parse, args, decl, popts) end
  if not ok then M.fail(cfg) end
  PARSED[cfg] = {given = given, check = opts.check, name = popts.name, args = args, decl = decl}
  return cfg
end

--- experiment.given(cfg) -> the set of the keys that the command line (or a config file) gave
function M.given(cfg)
  local p = PARSED[cfg]
  if not p then error("experiment.given: cfg was not made by experiment.options", 2) end
  local set = {}
  for k in pairs(p.given) do set[k] = true end
  return set
end

--- experiment.fail(msg): ends the script with msg on stderr and exit status 1, no traceback
-- (a mistake of the user's, found before or between steps: an option, a folder, a resume)
function M.fail(msg)
  io.stderr:write(tostring(msg), "\n")
  io.stdout:flush()
  M.close_runs()
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

--- experiment.mkdir(path): the folder and its parents
function M.mkdir(path)
  os.execute("mkdir -p " .. util.shell_quote(path))
end

--- experiment.prepare(out, cfg): creates out and writes out/config.json, the values the run
-- uses, with resume=false: config=out/config.json starts the same run afresh
function M.prepare(out, cfg)
  M.mkdir(out)
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
-- An epoch without a batch is an error (it would loop forever), naming the counts.
function M.batches(loader)
  return coroutine.wrap(function()
    while true do
      local any = false
      for x, y in loader:iter() do
        any = true
        coroutine.yield(x, y)
      end
      if not any then
        error(("the data gave no batch in an epoch: %d samples for batch_size=%d%s"):format(#loader.dataset,
          loader.batch_size * loader.world_size, loader.drop_last and " (incomplete batches are dropped)" or ""), 0)
      end
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

--- experiment.nan_guard(policy, run) -> guard; guard(step, values) is true when every value is
-- finite. Otherwise it returns false after printing (policy "skip"), or raises an error naming
-- the step and the last good checkpoint of the run (policy "stop", or 100 bad batches in a row).
-- run: an experiment.start run (or a function returning the text about the checkpoint).
function M.nan_guard(policy, run)
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
    local where = type(run) == "function" and run() or run:checkpoint_text()
    error(msg .. "; training stopped, " .. where, 0)
  end
end

--- experiment.set_lr(opt, lr, old[, scheduler]): the learning rate of a restored optimizer
-- (and scheduler) changed from old to lr: each group's lr, and the rates a scheduler derives
-- its lr from (initial_lr, max_lr, min_lr, base_lrs), scaled by lr / old; a value equal to old
-- becomes lr exactly
function M.set_lr(opt, lr, old, scheduler)
  local function scaled(v)
    if type(v) ~= "number" then return v end
    if v == old then return lr end
    return v * (lr / old)
  end
  for _, g in ipairs(opt.param_groups) do
    for _, k in ipairs({"lr", "initial_lr", "max_lr", "min_lr"}) do g[k] = scaled(g[k]) end
  end
  if scheduler then
    for _, k in ipairs({"base_lrs", "_last_lr"}) do
      local t = rawget(scheduler, k)
      if type(t) == "table" then for i, v in ipairs(t) do t[i] = scaled(v) end end
    end
  end
end

-- ------------------------------------------------------------------ what happens to the data

local function count(n) -- 60000 -> "60,000"
  local s = tostring(n)
  while true do
    local r, k = s:gsub("^(%d+)(%d%d%d)", "%1,%2")
    s = r
    if k == 0 then return s end
  end
end

--- experiment.describe_images(ds) -> one paragraph: what an ImageFolder scanned with bad_files=
-- holds (how many, RGB or gray, the size range) and what the pipeline does to it (resize,
-- crop, channel conversion), with the files skipped
function M.describe_images(ds)
  local sm = ds.summary
  local NAMES = {"gray", "gray with alpha", "RGB", "RGBA"}
  local kinds = {}
  for c = 1, 4 do
    if (sm.channels[c] or 0) > 0 then kinds[#kinds + 1] = ("%s %s"):format(count(sm.channels[c]), NAMES[c]) end
  end
  local function size(s) return ("%dx%d"):format(s[2], s[1]) end
  local sizes = size(sm.smallest) == size(sm.largest) and "all " .. size(sm.smallest)
    or size(sm.smallest) .. " to " .. size(sm.largest)
  local lines = {("data: %s images in %s: %s; %s (width x height)"):format(count(#ds), ds.root,
    table.concat(kinds, ", "), sizes)}
  local does = {}
  local s = ds.size
  if math.type(s) == "integer" then
    if not (sm.smallest[1] == s and sm.smallest[2] == s and sm.largest[1] == s and sm.largest[2] == s) then
      does[#does + 1] = ("resized so that its shorter side is %d"):format(s)
      does[#does + 1] = ("centre-cropped to %dx%d"):format(s, s)
    end
  elseif type(s) == "table" then
    does[#does + 1] = ("resized to %dx%d"):format(s[2], s[1])
  end
  local c = ds.channels
  local other = 0
  for k, n in pairs(sm.channels) do if k ~= c then other = other + n end end
  if other > 0 then
    local to = c == 1 and "gray (luma 0.299 R + 0.587 G + 0.114 B)" or c == 3 and "RGB" or "RGBA"
    does[#does + 1] = "converted to " .. to
    if c ~= 4 and ((sm.channels[2] or 0) + (sm.channels[4] or 0)) > 0 then does[#does + 1] = "stripped of its alpha" end
  end
  if #does == 0 then lines[#lines + 1] = "  the images are used as they are"
  else
    local last = table.remove(does)
    lines[#lines + 1] = "  each image is " .. (#does > 0 and table.concat(does, ", ") .. " and " or "") .. last
  end
  local skipped = ds.skipped or {}
  if #skipped > 0 then
    local names = {}
    for i = 1, math.min(#skipped, 3) do names[i] = ("%s (%s)"):format(skipped[i].path, skipped[i].error) end
    lines[#lines + 1] = ("  warning: %d unreadable file%s skipped (bad_files=error stops instead): %s%s"):format(
      #skipped, #skipped > 1 and "s" or "", table.concat(names, "; "), #skipped > 3 and "; ..." or "")
  end
  return table.concat(lines, "\n")
end

--- experiment.checkpoint_kind(parts) -> what a checkpoint of this project is, by its parts
-- ("a GAN checkpoint of train_gan.lua"), for messages about a file passed in the wrong place
function M.checkpoint_kind(parts)
  local c = type(parts.config) == "table" and parts.config or {}
  if parts.G and parts.D then return "a GAN checkpoint of train_gan.lua" end
  if parts.model and parts.ema and c.T then return "a DDPM checkpoint of train_ddpm.lua" end
  if parts.image and parts.optimizer then return "a style_transfer.lua checkpoint" end
  if parts.model and c.width then return "a classifier checkpoint of train_classifier.lua" end
  local names = {}
  for k in pairs(parts) do names[#names + 1] = tostring(k) end
  table.sort(names)
  return "a checkpoint with the parts " .. table.concat(names, ", ")
end

-- ------------------------------------------------------------------ a run

local Run = {}
Run.__index = Run

-- the runs started and not closed, whose locks an exit through experiment.fail releases
local LIVE = setmetatable({}, {__mode = "k"})

--- experiment.close_runs(): releases the lock of every run not closed yet
function M.close_runs()
  for r in pairs(LIVE) do r:close() end
end

-- the keys a resumed run may change freely, besides those it applies; the others must match
-- the checkpoint's (or be left out, taking the checkpoint's)
M.RESUME_FREE = {"steps", "epochs", "time_limit", "sample_every", "log_every", "ckpt_every", "ckpt_minutes", "on_nan"}
-- keys that belong to this process, never taken from the checkpoint
local OWN = {resume = true, config = true, debug = true, threads = true, dist = true, out = true}

local function same(a, b)
  if type(a) == "number" and type(b) == "number" then return a == b end
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  if #a ~= #b then return false end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function show(v)
  if type(v) == "table" then
    local ok, j = pcall(ai.json.encode, v)
    if ok then return (j:gsub("^%[(.*)%]$", "%1")) end
  end
  return tostring(v)
end

-- The command that resumes this run: the same arguments, resume=true.
local function resume_command(args, dist)
  local words = {args and args[-1] or "aiart-lua", args and args[0] or "script.lua"}
  for i = 1, #(args or {}) do
    local a = tostring(args[i])
    if not (a:match("^%-?%-?resume=") or a == "--resume") then
      words[#words + 1] = a:match("^[%w_%-%.,/=:+@%%]+$") and a or util.shell_quote(a)
    end
  end
  words[#words + 1] = "resume=true"
  local cmd = table.concat(words, " ")
  local n = dist and dist.world_size() or 1
  if n > 1 then cmd = ("mpirun -np %d %s"):format(n, cmd) end
  return cmd
end

--- experiment.start(cfg[, {dist=, ckpt=, apply=, free=, fixed=}]) -> run: the start of a
-- training run, after the options and before anything is built. On the first rank: out= is
-- created and locked (out/lock.pid; a second run on it is refused naming the first's PID; the
-- lock of a run that died is taken over). With resume=true the checkpoint (ckpt, default
-- out/last.safetensors) gives every option that the command line leaves out; one it gives that
-- differs is refused, unless it may change (experiment.RESUME_FREE and the keys in free, less
-- those in fixed) or is applied by run:resumed (apply: "lr"). SIGINT and SIGTERM are then
-- caught: run:interrupted() says, between steps, that one came. cfg is updated in place.
function M.start(cfg, opts)
  opts = opts or {}
  local dist = opts.dist or ai.dist
  local self = setmetatable({cfg = cfg, dist = dist, main = dist.is_main(), changed = {}, t0 = ai.clock(),
                             elapsed0 = 0, ckpt_path = opts.ckpt or cfg.out .. "/last.safetensors",
                             ckpt_clock = ai.clock(), parsed = PARSED[cfg] or {given = {}}}, Run)
  if self.main then
    M.mkdir(cfg.out)
    local ok, lock, info = pcall(ai.lock_file, cfg.out .. "/lock.pid")
    if not ok then M.fail(("out=%s: %s"):format(cfg.out, tostring(lock):gsub("^lock_file: ", ""))) end
    if not lock then
      local who = info.pid and ("process %d%s"):format(info.pid, info.host ~= "" and " on " .. info.host or "")
        or "another process"
      M.fail(("out=%s is in use: %s is training there (%s/lock.pid). Wait for it to finish, or give this run "
        .. "another folder with out=..."):format(cfg.out, who, cfg.out))
    end
    local pid, host = lock:stale()
    if pid then
      print(("out=%s: the lock of process %d%s, which has ended, is taken over"):format(cfg.out, pid,
        host ~= "" and " on " .. host or ""))
    end
    self.lock = lock
    LIVE[self] = true
  end
  if cfg.resume then self:_merge(opts) end
  ai.trap_signals()
  return self
end

-- resume=true: the checkpoint's options where the command line says nothing; a changed one
-- applied (opts.apply) or refused
function Run:_merge(opts)
  local cfg, dist = self.cfg, self.dist
  local payload
  if self.main then
    local f = io.open(self.ckpt_path, "rb")
    if not f then
      payload = ai.json.encode({error = ("resume=true: no checkpoint at %s to resume from (start the run without "
        .. "resume=true)"):format(self.ckpt_path)})
    else
      f:close()
      local ok, parts = pcall(ai.checkpoint.read, self.ckpt_path)
      if not ok then
        payload = ai.json.encode({error = ("resume=true: %s"):format(tostring(parts))})
      else
        payload = ai.json.encode({config = parts.config or {}, step = parts.step,
                                  elapsed = type(parts.run) == "table" and parts.run.elapsed or 0})
      end
    end
  end
  if dist.world_size() > 1 then payload = dist.broadcast_string(payload) end
  local saved = ai.json.decode(payload)
  if saved.error then M.fail(saved.error) end
  self.elapsed0, self.resumed_step = saved.elapsed or 0, saved.step
  local given, free, apply = self.parsed.given or {}, {}, {}
  for _, k in ipairs(M.RESUME_FREE) do free[k] = true end
  for _, k in ipairs(opts.free or {}) do free[k] = true end
  for _, k in ipairs(opts.fixed or {}) do free[k] = nil end
  for _, k in ipairs(opts.apply or {}) do apply[k] = true end
  local old, decl = saved.config, self.parsed.decl or {}
  for k, saved_v in pairs(old) do
    -- through the option's rule: a checkpoint of an older tree may hold "1,2" for a list (a
    -- value the rule refuses is left out)
    local v = ai.config.coerce(decl[k], saved_v)
    if v ~= nil and cfg[k] ~= nil and not OWN[k] then
      if not given[k] then
        cfg[k] = v
      elseif not same(cfg[k], v) then
        if apply[k] then
          self.changed[k] = {old = v, new = cfg[k]}
        elseif not free[k] then
          M.fail(("resume: %s=%s differs from the checkpoint's %s=%s (%s): a resumed run keeps it. Leave %s out to "
            .. "continue that run, or start a new one in another folder (out=...)"):format(k, show(cfg[k]), k, show(v),
            self.ckpt_path, k))
        end
      end
    end
  end
  local check = self.parsed.check
  local msg = check and check(cfg)
  if msg then M.fail(("%s: %s (with the checkpoint's options)"):format(self.parsed.name or "resume", msg)) end
end

--- run:resumed(step[, {optimizers = {...}, scheduler =}]): after the checkpoint is loaded:
-- applies a changed learning rate through the optimizers' groups (and the scheduler) and says
-- where the run continues
function Run:resumed(step, targets)
  targets = targets or {}
  local ch = self.changed.lr
  if ch then
    for _, opt in ipairs(targets.optimizers or {}) do M.set_lr(opt, ch.new, ch.old, targets.scheduler) end
  end
  if self.main then
    print(("resumed %s at step %d"):format(self.ckpt_path, step))
    for k, c in pairs(self.changed) do
      print(("resume: %s=%s applied (the checkpoint's %s)"):format(k, show(c.new), show(c.old)))
    end
  end
  self.ckpt_step = step
end

--- run:elapsed() -> seconds of wall time since the run started, resumed parts included
function Run:elapsed() return self.elapsed0 + (ai.clock() - self.t0) end

--- run:signal_flag() -> 1 when a signal is pending here, else 0: a number for DataParallel's
-- values, so that every rank stops at the same step
function Run:signal_flag() return ai.pending_signal() and 1 or 0 end

--- run:interrupted([agreed]) -> the name of the signal ("SIGINT", "SIGTERM") that asks the run
-- to stop, or nil. Between steps. agreed: the mean of signal_flag() over the ranks (needed with
-- several ranks; one process looks at its own signals)
function Run:interrupted(agreed)
  local name = ai.pending_signal()
  if self.dist.world_size() > 1 then
    if not (agreed and agreed > 0) then return nil end
    name = name or "SIGTERM"
  end
  if name and not self.signal then
    self.signal = name
    if self.main then
      print(("\n%s: saving a checkpoint and stopping (once more to stop at once%s)"):format(name,
        self.ckpt_step and (", keeping the checkpoint of step %d"):format(self.ckpt_step) or ""))
    end
  end
  return name
end

--- run:checkpoint_due() -> true when ckpt_minutes of wall time have passed since the last
-- checkpoint (on the first rank, which writes them)
function Run:checkpoint_due()
  local m = self.cfg.ckpt_minutes or 0
  return self.main and m > 0 and ai.clock() - self.ckpt_clock >= 60 * m
end

--- run:save(path, parts): ai.checkpoint.save on the first rank, with the run's clock (parts.run)
function Run:save(path, parts)
  parts.run = {elapsed = self:elapsed()}
  self.dist.main_only(ai.checkpoint.save, path, parts)
  if path == self.ckpt_path then
    self.ckpt_step, self.ckpt_clock = parts.step, ai.clock()
  end
end

--- run:checkpoint_text() -> where the last good checkpoint of this run is (for messages)
function Run:checkpoint_text()
  if self.ckpt_step then
    return ("the last good checkpoint is %s (step %d)"):format(self.ckpt_path, self.ckpt_step)
  end
  local c = self.cfg
  return ("no checkpoint was written yet (ckpt_every=%s steps%s)"):format(tostring(c.ckpt_every or "?"),
    (c.ckpt_minutes or 0) > 0 and (", ckpt_minutes=%s"):format(tostring(c.ckpt_minutes)) or "")
end

--- run:stop_training(step): after the loop and its checkpoint. When a signal stopped it: says
-- where the checkpoint is and how to resume, and ends the process with 128 + the signal's
-- number (130 for SIGINT, 143 for SIGTERM). Otherwise signals are the host's again.
function Run:stop_training(step, note)
  if not self.signal then
    ai.untrap_signals()
    return
  end
  if self.main then
    print(("stopped by %s at step %d: checkpoint %s%s"):format(self.signal, step, self.ckpt_path, note or ""))
    print("resume with: " .. resume_command(self.parsed.args, self.dist))
  end
  io.stdout:flush()
  if self.dist.world_size() > 1 then self.dist.barrier() end -- rank 1's files are complete
  self:close()
  os.exit(128 + (self.signal == "SIGINT" and 2 or 15), true)
end

--- run:close(): releases the folder's lock
function Run:close()
  if self.lock then self.lock:release() end
  self.lock = nil
  LIVE[self] = nil
end

M.Run = Run
M.resume_command = resume_command

return M
