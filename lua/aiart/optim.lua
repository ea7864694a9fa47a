--[[ aiart.optim: ai.optim, the optimizers (SGD, Adam, AdamW, RMSprop, Adagrad, LBFGS) and EMA.

    local opt = ai.optim.Adam(model:parameters(), {lr = 2e-4, betas = {0.5, 0.999}})
    opt:zero_grad(); loss:backward(); opt:step()

Parameter groups take their own options, the rest come from the defaults:
    ai.optim.SGD({ {params = body:parameters()}, {params = head:parameters(), lr = 1e-2} },
                 {lr = 1e-3, momentum = 0.9})

Each optimizer follows PyTorch's update rule term by term (same defaults, same option names),
so a run gives the same sequence of weights. The per-parameter updates are single fused C
kernels (ai._optim, src/lua/l_optim.c): each reads and writes every array once.
State: opt.state[param] = {step = n, exp_avg = tensor, ...}; opt:state_dict() gives it with
parameters numbered 1, 2, ... in group order, for checkpoints.
]]
local ai = require "aiart"
local util = require "aiart.util"
local module = require "aiart.nn.module"
local A = require "aiart.nn.args"

local error = util.error -- positions name the caller's line (see util.error)

local K = rawget(ai, "_optim")
if not K then
  error("aiart.optim: the C kernels ai._optim are missing (lai_open_optim is not registered in aiart.so)")
end

local is_tensor = util.is_tensor
local optim = {}

-- A class: calling it constructs (obj:init(...)); fields and methods inherit from parent.
-- (util.class, and objects print their repr(): metamethods are not inherited, so each class
-- gets its own __tostring.)
local function class(name, parent)
  util.check("optim.class", "name", name, "string")
  util.check("optim.class", "parent", parent, "table", true)
  local cls = util.class(name, parent)
  cls.__tostring = function(self) return self:repr() end
  return cls
end
optim.class = class

------------------------------------------------------------------------------------ Optimizer

local Optimizer = class("Optimizer")
optim.Optimizer = Optimizer

local function param_list(fn, params, where)
  if is_tensor(params) then return {params} end
  if module.is_module(params) then return params:parameters() end
  if type(params) ~= "table" then
    error(("%s: %s must be a tensor, a list of tensors or a module, got %s"):format(fn, where, type(params)), 0)
  end
  local out = {}
  for i, p in ipairs(params) do
    if not is_tensor(p) then error(("%s: %s[%d] is a %s, expected a tensor"):format(fn, where, i, type(p)), 0) end
    out[i] = p
  end
  return out
end

-- Copies plain values, so that groups never share their option tables (betas) with the caller.
local function copy_value(v)
  if type(v) ~= "table" or is_tensor(v) then return v end
  local c = {}
  for k, e in pairs(v) do c[k] = copy_value(e) end
  return c
end

--- Optimizer:init(params, defaults, opts): subclasses call it with their name's defaults.
-- params: a list of tensors, a module, or a list of group tables {params=..., <options>}.
function Optimizer:init(params, defaults, opts)
  local fn = self.__name
  local given = A.options(fn, opts, defaults)
  self.defaults = given
  self.state = {}
  self.param_groups = {}
  local groups
  if type(params) == "table" and not is_tensor(params) and not module.is_module(params)
      and type(params[1]) == "table" and not is_tensor(params[1]) then
    groups = params
  else
    groups = {{params = params}}
  end
  for _, g in ipairs(groups) do self:add_param_group(g, 5) end -- level 5: the constructor's caller
end

--- opt:add_param_group({params=..., <options>}): options missing from the group take the
-- optimizer's defaults.
function Optimizer:add_param_group(group, level)
  level = level or 2
  local fn = self.__name
  if type(group) ~= "table" or group.params == nil then
    error(fn .. ": a parameter group must be a table with a 'params' field", level)
  end
  local ok, list = pcall(param_list, fn, group.params, "params")
  if not ok then error(list, level) end
  local g = {params = list}
  if #g.params == 0 then error(fn .. ": got an empty parameter list", level) end
  for k, v in pairs(group) do
    if k ~= "params" then
      if self.defaults[k] == nil and k ~= "initial_lr" then
        error(("%s: unknown option '%s' in a parameter group"):format(fn, tostring(k)), level)
      end
      g[k] = copy_value(v)
    end
  end
  for k, v in pairs(self.defaults) do if g[k] == nil then g[k] = copy_value(v) end end
  local seen = {}
  for _, other in ipairs(self.param_groups) do for _, p in ipairs(other.params) do seen[p] = true end end
  for i, p in ipairs(g.params) do
    if seen[p] then error(("%s: params[%d] appears in more than one parameter group"):format(fn, i), level) end
    if not p.is_leaf then error(("%s: params[%d] is not a leaf tensor (only leaves can be optimized)"):format(fn, i), level) end
    if p.dtype ~= "f32" and p.dtype ~= "f64" then
      error(("%s: params[%d] is %s; only f32 and f64 tensors can be optimized"):format(fn, i, p.dtype), level)
    end
    seen[p] = true
  end
  local valid, err = pcall(self.check_group, self, g)
  if not valid then error(err, level) end
  self.param_groups[#self.param_groups + 1] = g
end

-- Subclasses validate a group's options here, raising error(message, 0): add_param_group
-- reports it at the caller's line.
function Optimizer:check_group(g) end

--- opt:zero_grad(): drops every parameter's gradient (p.grad = nil, PyTorch's default).
function Optimizer:zero_grad()
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do p.grad = nil end
  end
end

--- opt:step([closure]) -> the closure's loss: updates every parameter that has a gradient.
-- The closure (which recomputes the loss and its gradients) runs with grad enabled.
function Optimizer:step(closure)
  local loss
  if closure then loss = ai.enable_grad(closure) end
  ai.no_grad(function()
    for _, g in ipairs(self.param_groups) do self:update_group(g) end
  end)
  return loss
end

function Optimizer:update_group(group) error(self.__name .. ": update_group is not implemented", 2) end

function Optimizer:repr()
  local lines = {self.__name .. " ("}
  for i, g in ipairs(self.param_groups) do
    lines[#lines + 1] = ("Parameter Group %d"):format(i - 1)
    local keys = {}
    for k in pairs(g) do if k ~= "params" then keys[#keys + 1] = k end end
    table.sort(keys)
    for _, k in ipairs(keys) do lines[#lines + 1] = "    " .. k .. ": " .. module.repr_value(g[k]) end
  end
  lines[#lines + 1] = ")"
  return table.concat(lines, "\n")
end

-- The state of a parameter, created on its first update by init_state(p, group). Its float
-- tensors follow the parameter's dtype: after model:double() (which converts the parameters
-- in place) they are converted too, as load_state_dict casts them.
function Optimizer:state_of(p, group)
  util.check("state_of", "group", group, "table")
  local st = self.state[p]
  if not st then
    st = self:init_state(p, group)
    self.state[p] = st
  else
    local dt = p.dtype
    for k, v in pairs(st) do
      if is_tensor(v) and v.dtype ~= dt and (v.dtype == "f32" or v.dtype == "f64") then st[k] = v:to(dt) end
    end
  end
  return st
end

--- opt:state_dict() -> {state = {[i] = {...}}, param_groups = {{lr=..., params = {i, ...}}, ...}}
-- with parameters numbered 1, 2, ... across the groups in order. The state tensors are the
-- live ones (not copies): save them before training on, or clone them.
function Optimizer:state_dict()
  local index, n, groups, state = {}, 0, {}, {}
  for gi, g in ipairs(self.param_groups) do
    local out = {params = {}}
    for k, v in pairs(g) do if k ~= "params" then out[k] = copy_value(v) end end
    for _, p in ipairs(g.params) do
      if not index[p] then n = n + 1; index[p] = n end
      out.params[#out.params + 1] = index[p]
    end
    groups[gi] = out
  end
  for p, st in pairs(self.state) do
    if index[p] then
      local c = {}
      for k, v in pairs(st) do c[k] = v end
      state[index[p]] = c
    end
  end
  return {state = state, param_groups = groups}
end

-- A deep copy of a loaded state value: tensors are cloned (cast to the parameter's float dtype)
-- so the optimizer never shares state with the dict it was loaded from.
local function copy_state(v, dtype)
  if is_tensor(v) then
    local c = v:detach():clone()
    if (c.dtype == "f32" or c.dtype == "f64") and c.dtype ~= dtype then c = c:to(dtype) end
    return c
  end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, e in pairs(v) do out[k] = copy_state(e, dtype) end
  return out
end

--- opt:load_state_dict(sd): restores hyperparameters and state from opt:state_dict() of an
-- optimizer over parameters of the same shapes, in the same order.
function Optimizer:load_state_dict(sd)
  local fn = self.__name .. ":load_state_dict"
  if type(sd) ~= "table" or type(sd.param_groups) ~= "table" or type(sd.state) ~= "table" then
    error(fn .. ": expected a table {state = ..., param_groups = ...}", 2)
  end
  if #sd.param_groups ~= #self.param_groups then
    error(("%s: the state dict has %d parameter groups, the optimizer %d"):format(fn, #sd.param_groups, #self.param_groups), 2)
  end
  local by_index = {}
  for gi, g in ipairs(self.param_groups) do
    local sg = sd.param_groups[gi]
    if type(sg.params) ~= "table" or #sg.params ~= #g.params then
      error(("%s: group %d has %d parameters in the state dict, %d in the optimizer"):format(
        fn, gi, type(sg.params) == "table" and #sg.params or 0, #g.params), 2)
    end
    for i, p in ipairs(g.params) do by_index[sg.params[i]] = p end
  end
  self.state = {}
  for i, st in pairs(sd.state) do
    local p = by_index[i]
    if not p then error(("%s: state for parameter %s, which no group lists"):format(fn, tostring(i)), 2) end
    self.state[p] = copy_state(st, p.dtype)
  end
  for gi, g in ipairs(self.param_groups) do
    for k, v in pairs(sd.param_groups[gi]) do
      if k ~= "params" then g[k] = copy_value(v) end
    end
  end
end

-- Checks shared by the optimizers, in PyTorch's words.
local function check_lr(fn, g)
  if type(g.lr) ~= "number" or g.lr < 0 then error(("%s: invalid learning rate: %s"):format(fn, tostring(g.lr)), 0) end
end
local function check_nonneg(fn, g, k)
  if type(g[k]) ~= "number" or g[k] < 0 then error(("%s: invalid %s value: %s"):format(fn, k, tostring(g[k])), 0) end
end

------------------------------------------------------------------------------------------ SGD

local SGD = class("SGD", Optimizer)
optim.SGD = SGD

--- optim.SGD(params[, {lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=false,
-- maximize=false}])
function SGD:init(params, opts)
  Optimizer.init(self, params, {lr = 1e-3, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false,
    maximize = false}, opts)
  self._k = {}
end
function SGD:check_group(g)
  check_lr("SGD", g)
  check_nonneg("SGD", g, "momentum")
  check_nonneg("SGD", g, "weight_decay")
  if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
    error("SGD: nesterov momentum requires a momentum and zero dampening", 0)
  end
end
function SGD:init_state(_p, g)
  util.check("SGD:init_state", "group", g, "table")
  return {}
end
function SGD:update_group(g)
  local k = self._k
  k.lr, k.momentum, k.dampening, k.weight_decay = g.lr, g.momentum, g.dampening, g.weight_decay
  k.nesterov, k.maximize = g.nesterov, g.maximize
  for _, p in ipairs(g.params) do
    local grad = p.grad
    if grad then
      local st = self:state_of(p, g)
      k.first = false
      if g.momentum ~= 0 and not st.momentum_buffer then
        st.momentum_buffer = ai.zeros_like(p) -- the kernel sets it to the gradient (first=true)
        k.first = true
      end
      K.sgd_step(p, grad, g.momentum ~= 0 and st.momentum_buffer or nil, k)
    end
  end
end

----------------------------------------------------------------------------------- Adam, AdamW

local Adam = class("Adam", Optimizer)
optim.Adam = Adam

local function adam_defaults(wd)
  return {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = wd, amsgrad = false, maximize = false}
end

--- optim.Adam(params[, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0, amsgrad=false,
-- maximize=false}]): weight_decay adds weight_decay * param to the gradient (L2).
function Adam:init(params, opts)
  Optimizer.init(self, params, adam_defaults(0), opts)
  self._k = {decoupled = false}
end
function Adam:check_group(g)
  local fn = self.__name
  check_lr(fn, g)
  check_nonneg(fn, g, "eps")
  check_nonneg(fn, g, "weight_decay")
  local b = g.betas
  if type(b) ~= "table" or type(b[1]) ~= "number" or type(b[2]) ~= "number" then
    error(fn .. ": betas must be a pair of numbers {beta1, beta2}", 0)
  end
  if b[1] < 0 or b[1] >= 1 then error(("%s: invalid beta parameter at index 1: %s"):format(fn, b[1]), 0) end
  if b[2] < 0 or b[2] >= 1 then error(("%s: invalid beta parameter at index 2: %s"):format(fn, b[2]), 0) end
end
function Adam:init_state(p, g)
  util.check("Adam:init_state", "group", g, "table")
  return {step = 0, exp_avg = ai.zeros_like(p), exp_avg_sq = ai.zeros_like(p)}
end
function Adam:update_group(g)
  local k = self._k
  k.lr, k.beta1, k.beta2, k.eps, k.weight_decay = g.lr, g.betas[1], g.betas[2], g.eps, g.weight_decay
  k.amsgrad, k.maximize = g.amsgrad, g.maximize
  for _, p in ipairs(g.params) do
    local grad = p.grad
    if grad then
      local st = self:state_of(p, g)
      if g.amsgrad and not st.max_exp_avg_sq then st.max_exp_avg_sq = ai.zeros_like(p) end
      st.step = st.step + 1
      k.step = st.step
      K.adam_step(p, grad, st.exp_avg, st.exp_avg_sq, g.amsgrad and st.max_exp_avg_sq or nil, k)
    end
  end
end

local AdamW = class("AdamW", Adam)
optim.AdamW = AdamW

--- optim.AdamW(params[, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=1e-2,
-- amsgrad=false, maximize=false}]): Adam with decoupled weight decay (param *= 1 - lr*wd).
function AdamW:init(params, opts)
  Optimizer.init(self, params, adam_defaults(1e-2), opts)
  self._k = {decoupled = true}
end

--------------------------------------------------------------------------------------- RMSprop

local RMSprop = class("RMSprop", Optimizer)
optim.RMSprop = RMSprop

--- optim.RMSprop(params[, {lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
-- centered=false, maximize=false}])
function RMSprop:init(params, opts)
  Optimizer.init(self, params, {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0,
    centered = false, maximize = false}, opts)
  self._k = {}
end
function RMSprop:check_group(g)
  check_lr("RMSprop", g)
  for _, k in ipairs({"alpha", "eps", "weight_decay", "momentum"}) do check_nonneg("RMSprop", g, k) end
end
function RMSprop:init_state(p, g)
  util.check("RMSprop:init_state", "group", g, "table")
  return {step = 0, square_avg = ai.zeros_like(p)} end
function RMSprop:update_group(g)
  local k = self._k
  k.lr, k.alpha, k.eps, k.weight_decay, k.momentum, k.maximize = g.lr, g.alpha, g.eps, g.weight_decay, g.momentum, g.maximize
  for _, p in ipairs(g.params) do
    local grad = p.grad
    if grad then
      local st = self:state_of(p, g)
      st.step = st.step + 1
      if g.momentum > 0 and not st.momentum_buffer then st.momentum_buffer = ai.zeros_like(p) end
      if g.centered and not st.grad_avg then st.grad_avg = ai.zeros_like(p) end
      K.rmsprop_step(p, grad, st.square_avg, g.centered and st.grad_avg or nil,
        g.momentum > 0 and st.momentum_buffer or nil, k)
    end
  end
end

--------------------------------------------------------------------------------------- Adagrad

local Adagrad = class("Adagrad", Optimizer)
optim.Adagrad = Adagrad

--- optim.Adagrad(params[, {lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
-- eps=1e-10, maximize=false}])
function Adagrad:init(params, opts)
  Optimizer.init(self, params, {lr = 1e-2, lr_decay = 0, weight_decay = 0, initial_accumulator_value = 0,
    eps = 1e-10, maximize = false}, opts)
  self._k = {}
  -- PyTorch creates Adagrad's state up front (the accumulator has a starting value)
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do self:state_of(p, g) end
  end
end
function Adagrad:check_group(g)
  check_lr("Adagrad", g)
  for _, k in ipairs({"lr_decay", "weight_decay", "initial_accumulator_value", "eps"}) do check_nonneg("Adagrad", g, k) end
end
function Adagrad:init_state(p, g)
  util.check("Adagrad:init_state", "group", g, "table")
  return {step = 0, sum = ai.full_like(p, g.initial_accumulator_value)}
end
function Adagrad:update_group(g)
  local k = self._k
  k.eps, k.weight_decay, k.maximize = g.eps, g.weight_decay, g.maximize
  for _, p in ipairs(g.params) do
    local grad = p.grad
    if grad then
      local st = self:state_of(p, g)
      st.step = st.step + 1
      k.lr = g.lr / (1 + (st.step - 1) * g.lr_decay)
      K.adagrad_step(p, grad, st.sum, k)
    end
  end
end

----------------------------------------------------------------------------------------- LBFGS

-- A port of PyTorch's torch/optim/lbfgs.py (itself from Torch7's optim.lbfgs and lswolfe),
-- on flat vectors of all parameters; scalars are Lua numbers.

local function dot(a, b) return ai.dot(a, b):item() end
local function absmax(a) return a:abs():max():item() end

-- Minimiser of the cubic interpolating (x1, f1, g1), (x2, f2, g2), clamped to bounds.
local function cubic_interpolate(x1, f1, g1, x2, f2, g2, lo, hi)
  if lo == nil then
    if x1 <= x2 then lo, hi = x1, x2 else lo, hi = x2, x1 end
  end
  local d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
  local d2_square = d1 * d1 - g1 * g2
  if d2_square >= 0 then
    local d2 = math.sqrt(d2_square)
    local min_pos
    if x1 <= x2 then min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2)) end
    return math.min(math.max(min_pos, lo), hi)
  end
  return (lo + hi) / 2
end
optim._cubic_interpolate = cubic_interpolate

-- Line search for a step t along d satisfying the strong Wolfe conditions.
-- obj_func(x, t, d) -> f, g. Returns f_new, g_new, t, number of evaluations.
local function strong_wolfe(obj_func, x, t, d, f, g, gtd, c1, c2, tolerance_change, max_ls)
  c1, c2, tolerance_change, max_ls = c1 or 1e-4, c2 or 0.9, tolerance_change or 1e-9, max_ls or 25
  local d_norm = absmax(d)
  g = g:clone()
  local f_new, g_new = obj_func(x, t, d)
  local ls_func_evals = 1
  local gtd_new = dot(g_new, d)

  -- bracket an interval containing a point satisfying the Wolfe criteria
  local t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
  local done, ls_iter = false, 0
  local bracket, bracket_f, bracket_g, bracket_gtd
  while ls_iter < max_ls do
    if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev) then
      bracket, bracket_f = {t_prev, t}, {f_prev, f_new}
      bracket_g, bracket_gtd = {g_prev, g_new:clone()}, {gtd_prev, gtd_new}
      break
    end
    if math.abs(gtd_new) <= -c2 * gtd then
      bracket, bracket_f, bracket_g = {t}, {f_new}, {g_new}
      done = true
      break
    end
    if gtd_new >= 0 then
      bracket, bracket_f = {t_prev, t}, {f_prev, f_new}
      bracket_g, bracket_gtd = {g_prev, g_new:clone()}, {gtd_prev, gtd_new}
      break
    end
    -- interpolate
    local min_step = t + 0.01 * (t - t_prev)
    local max_step = t * 10
    local tmp = t
    t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, min_step, max_step)
    -- next step
    t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new:clone(), gtd_new
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = ls_func_evals + 1
    gtd_new = dot(g_new, d)
    ls_iter = ls_iter + 1
  end

  -- reached max number of iterations?
  if ls_iter == max_ls then
    bracket, bracket_f, bracket_g = {0, t}, {f, f_new}, {g, g_new}
    bracket_gtd = bracket_gtd or {gtd, gtd_new} -- PyTorch reuses a stale (or missing) bracket_gtd here
  end

  -- zoom phase: refine the bracket until a point satisfies the criteria
  local insuf_progress = false
  local low_pos, high_pos = 1, 2
  if bracket_f[1] > bracket_f[#bracket_f] then low_pos, high_pos = 2, 1 end
  while not done and ls_iter < max_ls do
    local bmin, bmax = math.min(bracket[1], bracket[2]), math.max(bracket[1], bracket[2])
    -- line-search bracket is so small
    if math.abs(bracket[2] - bracket[1]) * d_norm < tolerance_change then break end
    -- compute new trial value
    t = cubic_interpolate(bracket[1], bracket_f[1], bracket_gtd[1], bracket[2], bracket_f[2], bracket_gtd[2])
    -- When t is too close to the bracket's ends (or outside), and progress was insufficient
    -- last time or t is at an end, move it 0.1 * width away from the nearest end.
    local eps = 0.1 * (bmax - bmin)
    if math.min(bmax - t, t - bmin) < eps then
      if insuf_progress or t >= bmax or t <= bmin then
        if math.abs(t - bmax) < math.abs(t - bmin) then t = bmax - eps else t = bmin + eps end
        insuf_progress = false
      else
        insuf_progress = true
      end
    else
      insuf_progress = false
    end
    -- evaluate the new point
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = ls_func_evals + 1
    gtd_new = dot(g_new, d)
    ls_iter = ls_iter + 1

    if f_new > f + c1 * t * gtd or f_new >= bracket_f[low_pos] then
      -- Armijo condition not satisfied or not lower than the lowest point
      bracket[high_pos], bracket_f[high_pos] = t, f_new
      bracket_g[high_pos], bracket_gtd[high_pos] = g_new:clone(), gtd_new
      if bracket_f[1] <= bracket_f[2] then low_pos, high_pos = 1, 2 else low_pos, high_pos = 2, 1 end
    else
      if math.abs(gtd_new) <= -c2 * gtd then
        done = true -- Wolfe conditions satisfied
      elseif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0 then
        -- old high becomes new low
        bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
        bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
      end
      -- new point becomes new low
      bracket[low_pos], bracket_f[low_pos] = t, f_new
      bracket_g[low_pos], bracket_gtd[low_pos] = g_new:clone(), gtd_new
    end
  end
  return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals
end

local LBFGS = class("LBFGS", Optimizer)
optim.LBFGS = LBFGS

--- optim.LBFGS(params[, {lr=1, max_iter=20, max_eval=max_iter*5//4, tolerance_grad=1e-7,
-- tolerance_change=1e-9, history_size=100, line_search_fn=nil|"strong_wolfe"}])
-- step(closure) is required: the closure zeroes the gradients, computes the loss, calls
-- backward and returns the loss. One parameter group only.
function LBFGS:init(params, opts)
  Optimizer.init(self, params, {lr = 1, max_iter = 20, max_eval = A.NONE, tolerance_grad = 1e-7,
    tolerance_change = 1e-9, history_size = 100, line_search_fn = A.NONE}, opts)
  if #self.param_groups ~= 1 then error("LBFGS: doesn't support per-parameter options (parameter groups)", 3) end
  local g = self.param_groups[1]
  g.max_eval = g.max_eval or g.max_iter * 5 // 4
  self._params = g.params
end
function LBFGS:check_group(g)
  check_lr("LBFGS", g)
  if g.line_search_fn ~= nil and g.line_search_fn ~= "strong_wolfe" then
    error("LBFGS: only line_search_fn 'strong_wolfe' is supported", 0)
  end
end

function LBFGS:_gather_flat_grad()
  local views = {}
  for i, p in ipairs(self._params) do
    local g = p.grad
    views[i] = g and g:reshape(-1) or ai.zeros(p:numel(), {dtype = p.dtype})
  end
  return ai.cat(views, 1)
end

function LBFGS:_add_grad(step_size, update)
  local offset = 1
  for _, p in ipairs(self._params) do
    local n = p:numel()
    p:add_(update:narrow(1, offset, n):view(p.shape) * step_size)
    offset = offset + n
  end
end

function LBFGS:_clone_param()
  local out = {}
  for i, p in ipairs(self._params) do out[i] = p:clone() end
  return out
end

function LBFGS:_set_param(data)
  for i, p in ipairs(self._params) do p:copy_(data[i]) end
end

local function loss_number(v)
  if type(v) == "number" then return v end
  if is_tensor(v) then return v:item() end
  error("LBFGS: the closure must return the loss (a tensor or a number), got " .. type(v), 4)
end

--- opt:step(closure) -> the loss of the first evaluation
function LBFGS:step(closure)
  if type(closure) ~= "function" then error("LBFGS: step needs a closure that returns the loss", 2) end
  local function eval() return ai.enable_grad(closure) end
  return ai.no_grad(function() return self:_step(eval) end)
end

function LBFGS:_step(closure)
  local group = self.param_groups[1]
  local lr, max_iter, max_eval = group.lr, group.max_iter, group.max_eval
  local tolerance_grad, tolerance_change = group.tolerance_grad, group.tolerance_change
  local line_search_fn, history_size = group.line_search_fn, group.history_size

  -- LBFGS has only global state, kept (as PyTorch does) as the state of the first parameter
  local state = self.state[self._params[1]]
  if not state then state = {func_evals = 0, n_iter = 0}; self.state[self._params[1]] = state end

  -- evaluate initial f(x) and df/dx
  local orig_loss = closure()
  local loss = loss_number(orig_loss)
  local current_evals = 1
  state.func_evals = state.func_evals + 1

  local flat_grad = self:_gather_flat_grad()
  local opt_cond = absmax(flat_grad) <= tolerance_grad
  if opt_cond then return orig_loss end -- already optimal

  local d, t = state.d, state.t
  local old_dirs, old_stps, ro = state.old_dirs, state.old_stps, state.ro
  local H_diag, prev_flat_grad, prev_loss = state.H_diag, state.prev_flat_grad, state.prev_loss

  local n_iter = 0
  while n_iter < max_iter do
    n_iter = n_iter + 1
    state.n_iter = state.n_iter + 1

    -- compute the descent direction
    if state.n_iter == 1 then
      d = -flat_grad
      old_dirs, old_stps, ro = {}, {}, {}
      H_diag = 1
    else
      -- update the memory with the last step
      local y = flat_grad - prev_flat_grad
      local s = d * t
      local ys = dot(y, s)
      if ys > 1e-10 then
        if #old_dirs == history_size then -- shift the history by one
          table.remove(old_dirs, 1)
          table.remove(old_stps, 1)
          table.remove(ro, 1)
        end
        old_dirs[#old_dirs + 1], old_stps[#old_stps + 1], ro[#ro + 1] = y, s, 1 / ys
        H_diag = ys / dot(y, y) -- scale of the initial Hessian approximation
      end
      -- two-loop recursion: the approximate inverse Hessian times the gradient
      local num_old = #old_dirs
      local al = {}
      local q = -flat_grad
      for i = num_old, 1, -1 do
        al[i] = dot(old_stps[i], q) * ro[i]
        q = q - old_dirs[i] * al[i]
      end
      local r = q * H_diag
      for i = 1, num_old do
        local be_i = dot(old_dirs[i], r) * ro[i]
        r = r + old_stps[i] * (al[i] - be_i)
      end
      d = r
    end

    if prev_flat_grad == nil then prev_flat_grad = flat_grad:clone()
    else prev_flat_grad:copy_(flat_grad) end
    prev_loss = loss

    -- step length: the first iteration scales by the gradient's size
    if state.n_iter == 1 then t = math.min(1, 1 / flat_grad:abs():sum():item()) * lr else t = lr end

    -- directional derivative below tolerance: no progress possible along d
    local gtd = dot(flat_grad, d)
    if gtd > -tolerance_change then break end

    local ls_func_evals = 0
    if line_search_fn ~= nil then
      local x_init = self:_clone_param()
      local function obj_func(x, step, dir)
        self:_add_grad(step, dir)
        local l = loss_number(closure())
        local fg = self:_gather_flat_grad()
        self:_set_param(x)
        return l, fg
      end
      loss, flat_grad, t, ls_func_evals = strong_wolfe(obj_func, x_init, t, d, loss, flat_grad, gtd)
      self:_add_grad(t, d)
      opt_cond = absmax(flat_grad) <= tolerance_grad
    else
      -- fixed step; re-evaluate unless this is the last iteration
      self:_add_grad(t, d)
      if n_iter ~= max_iter then
        loss = loss_number(closure())
        flat_grad = self:_gather_flat_grad()
        opt_cond = absmax(flat_grad) <= tolerance_grad
        ls_func_evals = 1
      end
    end
    current_evals = current_evals + ls_func_evals
    state.func_evals = state.func_evals + ls_func_evals

    -- stopping conditions
    if n_iter == max_iter or current_evals >= max_eval or opt_cond then break end
    if absmax(d * t) <= tolerance_change then break end -- lack of progress
    if math.abs(loss - prev_loss) < tolerance_change then break end
  end

  state.d, state.t, state.old_dirs, state.old_stps, state.ro = d, t, old_dirs, old_stps, ro
  state.H_diag, state.prev_flat_grad, state.prev_loss = H_diag, prev_flat_grad, prev_loss
  return orig_loss
end

------------------------------------------------------------------------------------------- EMA

local EMA = class("EMA")
optim.EMA = EMA

--- optim.EMA(model[, {decay=0.999, warmup=false}]): an exponential moving average of the
-- model's parameters, shadow = decay * shadow + (1 - decay) * param after each update().
-- warmup=true uses min(decay, (1 + n) / (10 + n)) at the n-th update, so early averages are
-- not dominated by the random initial weights. Buffers (BatchNorm statistics) are not
-- averaged: the model's own are used.
function EMA:init(model, opts)
  if not module.is_module(model) then error("EMA: expected a module, got " .. type(model), 3) end
  local o = A.options("EMA", opts, {decay = 0.999, warmup = false})
  self.decay = A.number("EMA", "decay", o.decay, 0, 1)
  self.warmup = o.warmup
  self.model = model
  self.num_updates = 0
  self.names, self.params, self.shadow = {}, {}, {}
  ai.no_grad(function()
    for name, p in model:named_parameters() do
      self.names[#self.names + 1] = name
      self.params[#self.params + 1] = p
      self.shadow[name] = p:detach():clone()
    end
  end)
end

--- ema:current_decay() -> the decay the next update() will use
function EMA:current_decay()
  if not self.warmup then return self.decay end
  local n = self.num_updates + 1
  return math.min(self.decay, (1 + n) / (10 + n))
end

--- ema:update(): folds the model's current parameters into the average (one fused kernel each)
function EMA:update()
  local w = 1 - self:current_decay()
  self.num_updates = self.num_updates + 1
  for i, name in ipairs(self.names) do
    local p, sh = self.params[i], self.shadow[name]
    if sh.dtype ~= p.dtype then -- the model was converted (model:double()): the average follows
      sh = sh:to(p.dtype)
      self.shadow[name] = sh
    end
    K.lerp_(sh, p, w)
  end
end

-- The parameters of model by name, checked against the averaged ones.
local function params_by_name(self, model, fn)
  local by = {}
  for name, p in model:named_parameters() do by[name] = p end
  for _, name in ipairs(self.names) do
    if not by[name] then error(("EMA:%s: the model has no parameter '%s'"):format(fn, name), 3) end
  end
  return by
end

--- ema:copy_to([model]): writes the averaged weights into model's parameters, for good.
function EMA:copy_to(model)
  local by = params_by_name(self, model or self.model, "copy_to")
  ai.no_grad(function() for _, name in ipairs(self.names) do by[name]:copy_(self.shadow[name]) end end)
end

--- ema:apply_to([model]): swaps the averaged weights in, keeping the current ones for
-- ema:restore([model]).
function EMA:apply_to(model)
  if self._backup then error("EMA:apply_to: the averaged weights are already applied; call restore() first", 2) end
  model = model or self.model
  local by = params_by_name(self, model, "apply_to")
  local backup = {}
  ai.no_grad(function()
    for _, name in ipairs(self.names) do
      backup[name] = by[name]:clone()
      by[name]:copy_(self.shadow[name])
    end
  end)
  self._backup = backup
end

function EMA:restore(model)
  if not self._backup then error("EMA:restore: nothing to restore (apply_to was not called)", 2) end
  local by = params_by_name(self, model or self.model, "restore")
  ai.no_grad(function() for name, t in pairs(self._backup) do by[name]:copy_(t) end end)
  self._backup = nil
end

--- ema:with_averaged([model,] fn, ...) -> fn(model, ...)'s results, computed with the
-- averaged weights in place; the training weights are restored afterwards, even on error.
function EMA:with_averaged(model, fn, ...)
  if type(model) == "function" then return self:with_averaged(self.model, model, fn, ...) end
  model = model or self.model
  self:apply_to(model)
  local res = table.pack(pcall(fn, model, ...))
  self:restore(model)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- ema:state_dict() -> {decay=, num_updates=, warmup=, shadow = {name = tensor}}
function EMA:state_dict()
  local shadow = {}
  for name, t in pairs(self.shadow) do shadow[name] = t end
  return {decay = self.decay, num_updates = self.num_updates, warmup = self.warmup, shadow = shadow}
end

function EMA:load_state_dict(sd)
  if type(sd) ~= "table" or type(sd.shadow) ~= "table" then
    error("EMA:load_state_dict: expected a table from EMA:state_dict()", 2)
  end
  for _, name in ipairs(self.names) do
    local t = sd.shadow[name]
    if not is_tensor(t) then error(("EMA:load_state_dict: no averaged tensor for '%s'"):format(name), 2) end
    ai.no_grad(function() self.shadow[name]:copy_(t) end)
  end
  self.decay, self.num_updates, self.warmup = sd.decay or self.decay, sd.num_updates or 0, sd.warmup or false
end

function EMA:repr() return ("EMA(decay=%s, %d tensors, %d updates)"):format(self.decay, #self.names, self.num_updates) end

-- Arguments beyond a method's parameters are errors (opt:step(loss) with a tensor, ...).
util.strict_args(Optimizer, "Optimizer:", true, {init = true})
util.strict_args(EMA, "EMA:", true, {init = true})

util.strict_args(optim, "optim.")
return optim
