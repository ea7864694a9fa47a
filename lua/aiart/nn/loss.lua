--[[ aiart.nn.loss: the losses as modules (nn.MSELoss, nn.CrossEntropyLoss, ...). Each takes
its options at construction ({reduction="mean"|"sum"|"none", ...}) and is called as
loss(input, target). Class targets are 1-based i64 indices. Per-class weights are buffers,
as in PyTorch, so they follow the module into its state_dict.
]]
local module = require "aiart.nn.module"
local F = require "aiart.nn.functional"
local A = require "aiart.nn.args"
local error = require("aiart.util").error -- positions name the caller's line (see util.error)

local Module = module.Module
local L = {}

local REDUCTIONS = {"mean", "sum", "none"}

-- A loss class whose forward is f(self, input, target) with options parsed from defaults.
local function loss_class(name, defaults, f, reductions)
  local C = Module:extend(name)
  function C:init(opts)
    local o = A.options(name, opts, defaults)
    A.oneof(name, "reduction", o.reduction, reductions or REDUCTIONS)
    for _, k in ipairs({"weight", "pos_weight"}) do -- buffers, in PyTorch's order
      if defaults[k] ~= nil then
        local v = o[k]
        if v ~= nil and not module.is_tensor(v) then error(("%s: %s must be a tensor"):format(name, k), 3) end
        self:buffer(k, v)
      end
    end
    for k, v in pairs(o) do
      if k ~= "weight" and k ~= "pos_weight" then self[k] = v end
    end
  end
  C.forward = f
  function C:extra_repr()
    return self.reduction ~= "mean" and "reduction=" .. module.repr_value(self.reduction) or ""
  end
  L[name] = C
  return C
end

loss_class("MSELoss", {reduction = "mean"}, function(self, x, y)
  return F.mse_loss(x, y, {reduction = self.reduction})
end)

loss_class("L1Loss", {reduction = "mean"}, function(self, x, y)
  return F.l1_loss(x, y, {reduction = self.reduction})
end)

--- nn.SmoothL1Loss{beta=1, reduction=}
loss_class("SmoothL1Loss", {reduction = "mean", beta = 1}, function(self, x, y)
  return F.smooth_l1_loss(x, y, {beta = self.beta, reduction = self.reduction})
end)

--- nn.HuberLoss{delta=1, reduction=}
loss_class("HuberLoss", {reduction = "mean", delta = 1}, function(self, x, y)
  return F.huber_loss(x, y, {delta = self.delta, reduction = self.reduction})
end)

--- nn.BCELoss{weight=, reduction=}: input holds probabilities
loss_class("BCELoss", {reduction = "mean", weight = A.NONE}, function(self, p, y)
  return F.bce_loss(p, y, {weight = self.weight, reduction = self.reduction})
end)

--- nn.BCEWithLogitsLoss{pos_weight=, weight=, reduction=}: sigmoid and BCE in one stable op
loss_class("BCEWithLogitsLoss", {reduction = "mean", weight = A.NONE, pos_weight = A.NONE}, function(self, x, y)
  if self.weight == nil then
    return F.bce_with_logits(x, y, {pos_weight = self.pos_weight, reduction = self.reduction})
  end
  -- the core op has no per-element weight: weight the unreduced loss here
  local l = F.bce_with_logits(x, y, {pos_weight = self.pos_weight, reduction = "none"}) * self.weight
  return F.reduce(l, self.reduction)
end)

--- nn.CrossEntropyLoss{weight=, ignore_index=, label_smoothing=0, reduction=}: input
-- holds logits (N, C[, ...]); target 1-based class indices (N[, ...]).
loss_class("CrossEntropyLoss", {reduction = "mean", weight = A.NONE, ignore_index = A.NONE, label_smoothing = 0},
  function(self, x, target)
    return F.cross_entropy(x, target, {weight = self.weight, ignore_index = self.ignore_index,
      label_smoothing = self.label_smoothing, reduction = self.reduction})
  end)

--- nn.NLLLoss{weight=, ignore_index=, reduction=}: input holds log-probabilities
loss_class("NLLLoss", {reduction = "mean", weight = A.NONE, ignore_index = A.NONE}, function(self, logp, target)
  return F.nll_loss(logp, target, {weight = self.weight, ignore_index = self.ignore_index, reduction = self.reduction})
end)

--- nn.KLDivLoss{reduction="mean"|"batchmean"|"sum"|"none", log_target=false}: input holds
-- log-probabilities; "batchmean" is the mathematically correct KL divergence.
loss_class("KLDivLoss", {reduction = "mean", log_target = false}, function(self, x, y)
  return F.kl_div(x, y, {reduction = self.reduction, log_target = self.log_target})
end, {"mean", "batchmean", "sum", "none"})

return L
