--[[ aiart.nn.utils: nn.utils, PyTorch's torch.nn.utils helpers: gradient clipping and
flattening parameters into one vector. `params` is a tensor, a list of tensors or a module.
]]
local ai = require "aiart"
local util = require "aiart.util"
local module = require "aiart.nn.module"

local error = util.error -- positions name the caller's line (see util.error)

local U = {}

local function param_list(fn, params)
  if module.is_tensor(params) then return {params} end
  if module.is_module(params) then return params:parameters() end
  if type(params) ~= "table" then
    error(("%s: params must be a tensor, a list of tensors or a module, got %s"):format(fn, type(params)), 3)
  end
  for i, p in ipairs(params) do
    if not module.is_tensor(p) then error(("%s: params[%d] is a %s, expected a tensor"):format(fn, i, type(p)), 3) end
  end
  return params
end

local function grads_of(params)
  local gs = {}
  for _, p in ipairs(params) do
    local g = p.grad
    if g then gs[#gs + 1] = g end
  end
  return gs
end

-- The p-norm of all gradients together, as a number (p = math.huge or "inf" for the max).
local function total_norm(gs, p)
  if p == math.huge then
    local m = 0
    for _, g in ipairs(gs) do m = math.max(m, g:abs():max():item()) end
    return m
  end
  local s = 0
  for _, g in ipairs(gs) do s = s + g:norm(p):item() ^ p end
  return s ^ (1 / p)
end

--- nn.utils.clip_grad_norm_(params, max_norm[, {norm_type=2, error_if_nonfinite=false}])
-- scales the gradients in place so that their joint norm is at most max_norm; returns the
-- norm before clipping (a number).
function U.clip_grad_norm_(params, max_norm, opts)
  params = param_list("clip_grad_norm_", params)
  if type(max_norm) ~= "number" or max_norm < 0 then
    error("clip_grad_norm_: max_norm must be a non-negative number, got " .. tostring(max_norm), 2)
  end
  util.check_opts("clip_grad_norm_", opts, {norm_type = true, error_if_nonfinite = true})
  local p = opts and opts.norm_type or 2
  if p == "inf" then p = math.huge end
  if type(p) ~= "number" or p <= 0 then error("clip_grad_norm_: norm_type must be a positive number or 'inf'", 2) end
  local gs = grads_of(params)
  if #gs == 0 then return 0 end
  local norm = total_norm(gs, p)
  if opts and opts.error_if_nonfinite and (norm ~= norm or norm == math.huge) then
    error(("clip_grad_norm_: the total norm of order %s of the gradients is %s"):format(tostring(p), tostring(norm)), 2)
  end
  local coef = max_norm / (norm + 1e-6) -- PyTorch's epsilon, so the clipped norm is just below max_norm
  if coef < 1 then
    ai.no_grad(function() for _, g in ipairs(gs) do g:mul_(coef) end end)
  end
  return norm
end

--- nn.utils.clip_grad_value_(params, clip_value): clamps every gradient element to
-- [-clip_value, clip_value] in place.
function U.clip_grad_value_(params, clip_value)
  params = param_list("clip_grad_value_", params)
  if type(clip_value) ~= "number" or clip_value < 0 then
    error("clip_grad_value_: clip_value must be a non-negative number, got " .. tostring(clip_value), 2)
  end
  ai.no_grad(function() for _, g in ipairs(grads_of(params)) do g:clamp_(-clip_value, clip_value) end end)
end

--- nn.utils.parameters_to_vector(params) -> one 1-D tensor with all parameters (a copy).
function U.parameters_to_vector(params)
  params = param_list("parameters_to_vector", params)
  local views = {}
  for i, p in ipairs(params) do views[i] = p:reshape(-1) end
  return ai.cat(views, 1)
end

--- nn.utils.vector_to_parameters(vec, params): copies consecutive slices of vec into params.
function U.vector_to_parameters(vec, params)
  params = param_list("vector_to_parameters", params)
  local total = 0
  for _, p in ipairs(params) do total = total + p:numel() end
  if vec:dim() ~= 1 or vec:numel() ~= total then
    error(("vector_to_parameters: expected a 1-D tensor of %d elements, got shape {%s}"):format(
      total, table.concat(vec.shape, ", ")), 2)
  end
  ai.no_grad(function()
    local offset = 1
    for _, p in ipairs(params) do
      local n = p:numel()
      p:copy_(vec:narrow(1, offset, n):view(p.shape))
      offset = offset + n
    end
  end)
end

return util.strict_args(U, "nn.utils.")
