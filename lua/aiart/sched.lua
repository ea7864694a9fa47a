--[[ aiart.sched: ai.sched, learning-rate schedulers with PyTorch's names, options and
sequences of learning rates.

    local opt = ai.optim.SGD(model:parameters(), {lr = 0.1})
    local sched = ai.sched.CosineAnnealingLR(opt, {T_max = 100})
    for epoch = 1, 100 do train_one_epoch(); sched:step() end

As in PyTorch, constructing a scheduler sets the learning rate of epoch 0, and each step()
advances one epoch (epochs are counts from 0, not indices). Every scheduler except
ReduceLROnPlateau computes lr from the closed form lr_at(epoch, base_lr), which equals
PyTorch's recursive ("chainable") form step for step; the difference is that an lr changed by
hand between steps is overwritten rather than scaled. Options are tables:
StepLR(opt, {step_size = 30, gamma = 0.1}).
]]
local A = require "aiart.nn.args"
local util = require "aiart.util"
local class = util.class

local error = util.error -- positions name the caller's line (see util.error)

local sched = {}

local function check_optimizer(fn, opt)
  if type(opt) ~= "table" or type(opt.param_groups) ~= "table" then
    error(fn .. ": expected an optimizer (with param_groups), got " .. type(opt), 4)
  end
end

-- A number or one value per parameter group.
local function per_group(fn, name, v, n)
  if type(v) == "table" then
    if #v ~= n then error(("%s: %s has %d values for %d parameter groups"):format(fn, name, #v, n), 4) end
    return v
  end
  local out = {}
  for i = 1, n do out[i] = v end
  return out
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = type(v) == "table" and copy(v) or v end
  return c
end

---------------------------------------------------------------------------------- LRScheduler

local LRScheduler = class("LRScheduler")
sched.LRScheduler = LRScheduler

--- Subclasses set their fields, then call self:setup(optimizer, last_epoch) (PyTorch's
-- LRScheduler.__init__): base_lrs come from each group's initial_lr (set to its lr if this
-- is a fresh start), and the lr of epoch last_epoch + 1 is applied.
function LRScheduler:setup(optimizer, last_epoch)
  self.optimizer = optimizer
  last_epoch = last_epoch or -1
  for i, g in ipairs(optimizer.param_groups) do
    if last_epoch == -1 then
      if g.initial_lr == nil then g.initial_lr = g.lr end
    elseif g.initial_lr == nil then
      error(("%s: param_groups[%d] has no initial_lr (needed to resume with last_epoch)"):format(self.__name, i), 4)
    end
  end
  self.base_lrs = {}
  for i, g in ipairs(optimizer.param_groups) do self.base_lrs[i] = g.initial_lr end
  self.last_epoch = last_epoch
  self:step()
end

--- sched:lr_at(epoch, base_lr, group_index) -> the learning rate at that epoch (closed form)
function LRScheduler:lr_at(epoch, base_lr, _i) error(self.__name .. ": lr_at is not implemented", 2) end

--- sched:step([epoch]): advances one epoch (or jumps to `epoch`) and sets the groups' lr.
function LRScheduler:step(epoch)
  self.last_epoch = epoch or self.last_epoch + 1
  local lrs = {}
  for i, g in ipairs(self.optimizer.param_groups) do
    g.lr = self:lr_at(self.last_epoch, self.base_lrs[i], i)
    lrs[i] = g.lr
  end
  self._last_lr = lrs
end

--- sched:get_last_lr() -> {lr of group 1, ...} as set by the last step
function LRScheduler:get_last_lr() return copy(self._last_lr) end

-- Fields that are not state: the optimizer, functions, sub-schedulers (saved separately).
local NOT_STATE = {optimizer = true, lr_lambdas = true, schedulers = true}

--- sched:state_dict() -> a plain table of the scheduler's state (no optimizer, no functions)
function LRScheduler:state_dict()
  local sd = {}
  for k, v in pairs(self) do
    if not NOT_STATE[k] and type(v) ~= "function" then sd[k] = type(v) == "table" and copy(v) or v end
  end
  if self.schedulers then
    sd.schedulers = {}
    for i, s in ipairs(self.schedulers) do sd.schedulers[i] = s:state_dict() end
  end
  return sd
end

function LRScheduler:load_state_dict(sd)
  if type(sd) ~= "table" then error(self.__name .. ":load_state_dict: expected a table", 2) end
  for k, v in pairs(sd) do
    if not NOT_STATE[k] then self[k] = type(v) == "table" and copy(v) or v end
  end
  if self.schedulers and sd.schedulers then
    for i, s in ipairs(self.schedulers) do s:load_state_dict(sd.schedulers[i]) end
  end
end

-- Declares a closed-form scheduler: parse(self, o) checks and stores the options.
local function closed_form(name, defaults, parse, lr_at)
  local S = class(name, LRScheduler)
  function S:init(optimizer, opts)
    check_optimizer(name, optimizer)
    local o = A.options(name, opts, defaults)
    parse(self, o, #optimizer.param_groups)
    self:setup(optimizer, o.last_epoch)
  end
  S.lr_at = lr_at
  sched[name] = S
  return S
end

--- StepLR(opt, {step_size=, gamma=0.1}): lr = base * gamma ^ floor(epoch / step_size)
closed_form("StepLR", {step_size = A.NONE, gamma = 0.1, last_epoch = -1}, function(self, o)
  self.step_size = A.int("StepLR", "step_size", o.step_size, 1)
  self.gamma = A.number("StepLR", "gamma", o.gamma)
end, function(self, epoch, base, _i)
  return base * self.gamma ^ (epoch // self.step_size)
end)

--- MultiStepLR(opt, {milestones={...}, gamma=0.1}): lr = base * gamma ^ (milestones <= epoch)
closed_form("MultiStepLR", {milestones = A.NONE, gamma = 0.1, last_epoch = -1}, function(self, o)
  if type(o.milestones) ~= "table" then error("MultiStepLR: milestones must be a table of epochs", 4) end
  self.milestones = copy(o.milestones)
  table.sort(self.milestones)
  self.gamma = A.number("MultiStepLR", "gamma", o.gamma)
end, function(self, epoch, base, _i)
  local n = 0
  for _, m in ipairs(self.milestones) do if m <= epoch then n = n + 1 end end
  return base * self.gamma ^ n
end)

--- ExponentialLR(opt, {gamma=}): lr = base * gamma ^ epoch
closed_form("ExponentialLR", {gamma = A.NONE, last_epoch = -1}, function(self, o)
  self.gamma = A.number("ExponentialLR", "gamma", o.gamma)
end, function(self, epoch, base, _i)
  return base * self.gamma ^ epoch
end)

--- ConstantLR(opt, {factor=1/3, total_iters=5}): base * factor until total_iters, then base
closed_form("ConstantLR", {factor = 1 / 3, total_iters = 5, last_epoch = -1}, function(self, o)
  self.factor = A.number("ConstantLR", "factor", o.factor, 0, 1)
  self.total_iters = A.int("ConstantLR", "total_iters", o.total_iters, 0)
end, function(self, epoch, base, _i)
  return epoch < self.total_iters and base * self.factor or base
end)

--- LinearLR(opt, {start_factor=1/3, end_factor=1, total_iters=5}): the factor goes linearly
-- from start_factor to end_factor over total_iters epochs (a warm-up with end_factor = 1).
closed_form("LinearLR", {start_factor = 1 / 3, end_factor = 1, total_iters = 5, last_epoch = -1}, function(self, o)
  if type(o.start_factor) ~= "number" or o.start_factor > 1 or o.start_factor <= 0 then
    error("LinearLR: start_factor must be in (0, 1], got " .. tostring(o.start_factor), 4)
  end
  self.start_factor = o.start_factor
  self.end_factor = A.number("LinearLR", "end_factor", o.end_factor, 0, 1)
  self.total_iters = A.int("LinearLR", "total_iters", o.total_iters, 1)
end, function(self, epoch, base, _i)
  local t = math.min(self.total_iters, epoch)
  return base * (self.start_factor + (self.end_factor - self.start_factor) * t / self.total_iters)
end)

--- PolynomialLR(opt, {total_iters=5, power=1}): base * (1 - min(epoch, total)/total) ^ power
closed_form("PolynomialLR", {total_iters = 5, power = 1, last_epoch = -1}, function(self, o)
  self.total_iters = A.int("PolynomialLR", "total_iters", o.total_iters, 1)
  self.power = A.number("PolynomialLR", "power", o.power)
end, function(self, epoch, base, _i)
  return base * (1 - math.min(self.total_iters, epoch) / self.total_iters) ^ self.power
end)

--- CosineAnnealingLR(opt, {T_max=, eta_min=0}):
-- lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2
-- (beyond T_max it rises again, as PyTorch's does)
closed_form("CosineAnnealingLR", {T_max = A.NONE, eta_min = 0, last_epoch = -1}, function(self, o)
  self.T_max = A.int("CosineAnnealingLR", "T_max", o.T_max, 1)
  self.eta_min = A.number("CosineAnnealingLR", "eta_min", o.eta_min)
end, function(self, epoch, base, _i)
  return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
end)

--- LambdaLR(opt, fn | {lr_lambda = fn or {fn per group}}): lr = base * fn(epoch)
local LambdaLR = class("LambdaLR", LRScheduler)
sched.LambdaLR = LambdaLR
function LambdaLR:init(optimizer, opts)
  check_optimizer("LambdaLR", optimizer)
  if type(opts) == "function" then opts = {lr_lambda = opts} end
  local o = A.options("LambdaLR", opts, {lr_lambda = A.NONE, last_epoch = -1})
  local n = #optimizer.param_groups
  local fns = type(o.lr_lambda) == "table" and o.lr_lambda or per_group("LambdaLR", "lr_lambda", o.lr_lambda, n)
  if #fns ~= n then error(("LambdaLR: expected %d lr_lambdas, got %d"):format(n, #fns), 3) end
  for i, f in ipairs(fns) do
    if type(f) ~= "function" then error(("LambdaLR: lr_lambda %d must be a function, got %s"):format(i, type(f)), 3) end
  end
  self.lr_lambdas = fns
  self:setup(optimizer, o.last_epoch)
end
function LambdaLR:lr_at(epoch, base, i) return base * self.lr_lambdas[i](epoch) end

------------------------------------------------------------------------ warm restarts, 1cycle

--- CosineAnnealingWarmRestarts(opt, {T_0=, T_mult=1, eta_min=0}): cosine annealing restarted
-- every T_i epochs, T_i = T_0 * T_mult ^ (restarts). step(epoch) also takes fractional epochs
-- (e.g. epoch + batch / batches_per_epoch), as PyTorch's.
local WarmRestarts = class("CosineAnnealingWarmRestarts", LRScheduler)
sched.CosineAnnealingWarmRestarts = WarmRestarts
function WarmRestarts:init(optimizer, opts)
  local fn = "CosineAnnealingWarmRestarts"
  check_optimizer(fn, optimizer)
  local o = A.options(fn, opts, {T_0 = A.NONE, T_mult = 1, eta_min = 0, last_epoch = -1})
  self.T_0 = A.int(fn, "T_0", o.T_0)
  self.T_mult = A.int(fn, "T_mult", o.T_mult)
  self.eta_min = A.number(fn, "eta_min", o.eta_min)
  self.T_i = self.T_0
  self.T_cur = o.last_epoch
  self:setup(optimizer, o.last_epoch)
end

-- The position (T_cur, T_i) of a (possibly fractional) epoch within its cycle.
function WarmRestarts:cycle_of(epoch)
  local t_cur, t_i = epoch, self.T_0
  while t_cur >= t_i do
    t_cur = t_cur - t_i
    t_i = t_i * self.T_mult
  end
  return t_cur, t_i
end

function WarmRestarts:lr_at(epoch, base, _i)
  local t_cur, t_i = self:cycle_of(epoch)
  return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2
end

function WarmRestarts:step(epoch)
  if epoch == nil and self.last_epoch < 0 then epoch = 0 end
  if epoch == nil then
    epoch = self.last_epoch + 1
    self.T_cur = self.T_cur + 1
    if self.T_cur >= self.T_i then
      self.T_cur = self.T_cur - self.T_i
      self.T_i = self.T_i * self.T_mult
    end
  else
    if epoch < 0 then error("CosineAnnealingWarmRestarts: expected a non-negative epoch, got " .. epoch, 2) end
    self.T_cur, self.T_i = self:cycle_of(epoch)
  end
  self.last_epoch = math.floor(epoch)
  local lrs = {}
  for i, g in ipairs(self.optimizer.param_groups) do
    local base = self.base_lrs[i]
    g.lr = self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
    lrs[i] = g.lr
  end
  self._last_lr = lrs
end

--- OneCycleLR(opt, {max_lr=, total_steps= | epochs= and steps_per_epoch=, pct_start=0.3,
-- anneal_strategy="cos"|"linear", cycle_momentum=true, base_momentum=0.85,
-- max_momentum=0.95, div_factor=25, final_div_factor=1e4, three_phase=false}):
-- from max_lr/div_factor up to max_lr, then down to initial/final_div_factor; the momentum
-- (or Adam's beta1) moves the opposite way. Step it after every batch.
local OneCycleLR = class("OneCycleLR", LRScheduler)
sched.OneCycleLR = OneCycleLR
function OneCycleLR:init(optimizer, opts)
  local fn = "OneCycleLR"
  check_optimizer(fn, optimizer)
  local o = A.options(fn, opts, {max_lr = A.NONE, total_steps = A.NONE, epochs = A.NONE, steps_per_epoch = A.NONE,
    pct_start = 0.3, anneal_strategy = "cos", cycle_momentum = true, base_momentum = 0.85, max_momentum = 0.95,
    div_factor = 25, final_div_factor = 1e4, three_phase = false, last_epoch = -1})
  if o.total_steps then
    self.total_steps = A.int(fn, "total_steps", o.total_steps)
  elseif o.epochs and o.steps_per_epoch then
    self.total_steps = A.int(fn, "epochs", o.epochs) * A.int(fn, "steps_per_epoch", o.steps_per_epoch)
  else
    error("OneCycleLR: give total_steps, or epochs and steps_per_epoch", 3)
  end
  if o.max_lr == nil then error("OneCycleLR: max_lr is required", 3) end
  local pct = A.number(fn, "pct_start", o.pct_start, 0, 1)
  local total = self.total_steps
  if o.three_phase then
    self.phases = {
      {end_step = pct * total - 1, start_lr = "initial_lr", end_lr = "max_lr", start_m = "max_momentum", end_m = "base_momentum"},
      {end_step = 2 * pct * total - 2, start_lr = "max_lr", end_lr = "initial_lr", start_m = "base_momentum", end_m = "max_momentum"},
      {end_step = total - 1, start_lr = "initial_lr", end_lr = "min_lr", start_m = "max_momentum", end_m = "max_momentum"},
    }
  else
    self.phases = {
      {end_step = pct * total - 1, start_lr = "initial_lr", end_lr = "max_lr", start_m = "max_momentum", end_m = "base_momentum"},
      {end_step = total - 1, start_lr = "max_lr", end_lr = "min_lr", start_m = "base_momentum", end_m = "max_momentum"},
    }
  end
  self.anneal_strategy = A.oneof(fn, "anneal_strategy", o.anneal_strategy, {"cos", "linear"})
  local n = #optimizer.param_groups
  local max_lrs = per_group(fn, "max_lr", o.max_lr, n)
  if o.last_epoch == -1 then
    for i, g in ipairs(optimizer.param_groups) do
      g.initial_lr = max_lrs[i] / o.div_factor
      g.max_lr = max_lrs[i]
      g.min_lr = g.initial_lr / o.final_div_factor
    end
  end
  self.cycle_momentum = o.cycle_momentum
  if o.cycle_momentum then
    local d = optimizer.defaults or {}
    if d.momentum == nil and d.betas == nil then
      error("OneCycleLR: the optimizer has no momentum or betas to cycle (use cycle_momentum=false)", 3)
    end
    self.use_beta1 = d.betas ~= nil
    local maxm = per_group(fn, "max_momentum", o.max_momentum, n)
    local basem = per_group(fn, "base_momentum", o.base_momentum, n)
    if o.last_epoch == -1 then
      for i, g in ipairs(optimizer.param_groups) do
        if self.use_beta1 then g.betas = {maxm[i], g.betas[2]} else g.momentum = maxm[i] end
        g.max_momentum, g.base_momentum = maxm[i], basem[i]
      end
    end
  end
  self:setup(optimizer, o.last_epoch)
end

function OneCycleLR:anneal(start, stop, pct)
  if self.anneal_strategy == "cos" then return stop + (start - stop) / 2 * (math.cos(math.pi * pct) + 1) end
  return (stop - start) * pct + start
end

-- The phase of a step and the fraction of it done: phase, pct.
function OneCycleLR:phase_of(step)
  if step > self.total_steps then
    error(("OneCycleLR: tried to step %d times; total_steps is %d"):format(step, self.total_steps), 4)
  end
  local start = 0
  for i, ph in ipairs(self.phases) do
    if step <= ph.end_step or i == #self.phases then
      return ph, (step - start) / (ph.end_step - start)
    end
    start = ph.end_step
  end
end

function OneCycleLR:lr_at(epoch, _, i)
  local g = self.optimizer.param_groups[i]
  local ph, pct = self:phase_of(epoch)
  return self:anneal(g[ph.start_lr], g[ph.end_lr], pct)
end

function OneCycleLR:step(epoch)
  LRScheduler.step(self, epoch)
  if self.cycle_momentum then
    local ph, pct = self:phase_of(self.last_epoch)
    for _, g in ipairs(self.optimizer.param_groups) do
      local m = self:anneal(g[ph.start_m], g[ph.end_m], pct)
      if self.use_beta1 then g.betas = {m, g.betas[2]} else g.momentum = m end
    end
  end
end

------------------------------------------------------------------------------- SequentialLR

--- SequentialLR(opt, {schedulers = {s1, s2, ...}, milestones = {m1, ...}}): s1 until epoch
-- m1, then s2 restarted from its epoch 0, and so on. The usual warm-up then cosine:
--   local warm = sched.LinearLR(opt, {start_factor = 0.01, total_iters = 5})
--   local cos = sched.CosineAnnealingLR(opt, {T_max = 95})
--   local s = sched.SequentialLR(opt, {schedulers = {warm, cos}, milestones = {5}})
local SequentialLR = class("SequentialLR", LRScheduler)
sched.SequentialLR = SequentialLR
function SequentialLR:init(optimizer, opts)
  local fn = "SequentialLR"
  check_optimizer(fn, optimizer)
  local o = A.options(fn, opts, {schedulers = A.NONE, milestones = A.NONE, last_epoch = -1})
  if type(o.schedulers) ~= "table" or #o.schedulers < 1 then error("SequentialLR: schedulers must be a non-empty list", 3) end
  if type(o.milestones) ~= "table" or #o.milestones ~= #o.schedulers - 1 then
    error(("SequentialLR: expected %d milestones for %d schedulers, got %s"):format(#o.schedulers - 1,
      #o.schedulers, type(o.milestones) == "table" and #o.milestones or type(o.milestones)), 3)
  end
  for i, s in ipairs(o.schedulers) do
    if s.optimizer ~= optimizer then error(("SequentialLR: scheduler %d belongs to another optimizer"):format(i), 3) end
    if getmetatable(s) == sched.ReduceLROnPlateau then error("SequentialLR: ReduceLROnPlateau is not supported", 3) end
  end
  self.schedulers, self.milestones = o.schedulers, copy(o.milestones)
  -- the schedulers' constructors stepped the lr: start again from the initial lr
  for _, g in ipairs(optimizer.param_groups) do g.lr = g.initial_lr end
  self:setup(optimizer, o.last_epoch)
end
function SequentialLR:lr_at(epoch, base, i)
  local idx, start = 1, 0
  for k, m in ipairs(self.milestones) do
    if epoch >= m then idx, start = k + 1, m end
  end
  local s = self.schedulers[idx]
  return s:lr_at(epoch - start, s.base_lrs[i], i)
end

---------------------------------------------------------------------------- ReduceLROnPlateau

--- ReduceLROnPlateau(opt, {mode="min"|"max", factor=0.1, patience=10, threshold=1e-4,
-- threshold_mode="rel"|"abs", cooldown=0, min_lr=0 (or one per group), eps=1e-8}):
-- step(metric) multiplies the lr by factor once the metric has not improved for more than
-- patience epochs.
local Plateau = class("ReduceLROnPlateau", LRScheduler)
sched.ReduceLROnPlateau = Plateau
function Plateau:init(optimizer, opts)
  local fn = "ReduceLROnPlateau"
  check_optimizer(fn, optimizer)
  local o = A.options(fn, opts, {mode = "min", factor = 0.1, patience = 10, threshold = 1e-4, threshold_mode = "rel",
    cooldown = 0, min_lr = 0, eps = 1e-8})
  if type(o.factor) ~= "number" or o.factor >= 1 then error("ReduceLROnPlateau: factor should be < 1.0", 3) end
  self.optimizer = optimizer
  self.factor = o.factor
  self.min_lrs = copy(per_group(fn, "min_lr", o.min_lr, #optimizer.param_groups))
  self.patience = A.int(fn, "patience", o.patience, 0)
  self.cooldown = A.int(fn, "cooldown", o.cooldown, 0)
  self.mode = A.oneof(fn, "mode", o.mode, {"min", "max"})
  self.threshold = A.number(fn, "threshold", o.threshold)
  self.threshold_mode = A.oneof(fn, "threshold_mode", o.threshold_mode, {"rel", "abs"})
  self.eps = o.eps
  self.cooldown_counter, self.num_bad_epochs = 0, 0
  self.best = self.mode == "min" and math.huge or -math.huge
  self.last_epoch = 0
  self._last_lr = {}
  for i, g in ipairs(optimizer.param_groups) do self._last_lr[i] = g.lr end
end

function Plateau:is_better(a, best)
  if self.mode == "min" and self.threshold_mode == "rel" then return a < best * (1 - self.threshold) end
  if self.mode == "min" then return a < best - self.threshold end
  if self.threshold_mode == "rel" then return a > best * (self.threshold + 1) end
  return a > best + self.threshold
end

--- sched:step(metric): metric a number (or a one-element tensor)
function Plateau:step(metric)
  if type(metric) ~= "number" then
    if type(metric) == "userdata" and metric.item then metric = metric:item()
    else error("ReduceLROnPlateau: step needs the metric (a number)", 2) end
  end
  self.last_epoch = self.last_epoch + 1
  if self:is_better(metric, self.best) then
    self.best, self.num_bad_epochs = metric, 0
  else
    self.num_bad_epochs = self.num_bad_epochs + 1
  end
  if self.cooldown_counter > 0 then
    self.cooldown_counter = self.cooldown_counter - 1
    self.num_bad_epochs = 0 -- ignore any bad epochs in cooldown
  end
  if self.num_bad_epochs > self.patience then
    for i, g in ipairs(self.optimizer.param_groups) do
      local new = math.max(g.lr * self.factor, self.min_lrs[i])
      if g.lr - new > self.eps then g.lr = new end
    end
    self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
  end
  for i, g in ipairs(self.optimizer.param_groups) do self._last_lr[i] = g.lr end
end

-- Arguments beyond a method's parameters are errors.
util.strict_args(LRScheduler, "LRScheduler:", true, {init = true})

return sched
