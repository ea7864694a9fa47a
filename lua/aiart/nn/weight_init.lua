--[[ aiart.nn.weight_init: nn.init, the weight initialisation functions of PyTorch's
torch.nn.init. Each fills its tensor in place (under ai.no_grad, so parameters can be passed
directly) and returns it. Fans follow PyTorch: for a weight of shape (out, in, k1, k2, ...),
fan_in = in * k1 * k2 * ..., fan_out = out * k1 * k2 * ...
]]
local ai = require "aiart"
local util = require "aiart.util"
local is_tensor = util.is_tensor
local error = util.error -- positions name the caller's line (see util.error)

local init = {}

local function check_tensor(fn, t)
  if not is_tensor(t) then
    error(("init.%s: tensor expected, got %s"):format(fn, type(t)), 3)
  end
end

--- init.calculate_gain(nonlinearity[, param]) -> the recommended gain for that nonlinearity
-- ("linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu" (param = slope), "selu").
function init.calculate_gain(nonlinearity, param)
  local linear = {linear = true, conv1d = true, conv2d = true, conv3d = true, conv_transpose1d = true,
                  conv_transpose2d = true, conv_transpose3d = true, sigmoid = true}
  if linear[nonlinearity] then return 1 end
  if nonlinearity == "tanh" then return 5 / 3 end
  if nonlinearity == "relu" then return math.sqrt(2) end
  if nonlinearity == "leaky_relu" then
    local slope = param == nil and 0.01 or param
    if type(slope) ~= "number" then error("calculate_gain: negative_slope must be a number", 2) end
    return math.sqrt(2 / (1 + slope * slope))
  end
  if nonlinearity == "selu" then return 3 / 4 end
  error(("calculate_gain: unsupported nonlinearity '%s'"):format(tostring(nonlinearity)), 2)
end

--- init.calculate_fan_in_and_fan_out(t) -> fan_in, fan_out
function init.calculate_fan_in_and_fan_out(t)
  local shape = t.shape
  if #shape < 2 then
    error("init: fan in and fan out need a tensor with at least 2 dimensions, got " .. #shape, 2)
  end
  local receptive = 1
  for d = 3, #shape do receptive = receptive * shape[d] end
  return shape[2] * receptive, shape[1] * receptive
end

local function fan(t, mode)
  local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t)
  if mode == "fan_in" then return fan_in end
  if mode == "fan_out" then return fan_out end
  error(("init: mode must be 'fan_in' or 'fan_out', got '%s'"):format(tostring(mode)), 3)
end

local function inplace(fn, t, body)
  check_tensor(fn, t)
  ai.no_grad(body)
  return t
end

--- init.uniform_(t[, a=0, b=1])
function init.uniform_(t, a, b)
  return inplace("uniform_", t, function() t:uniform_(a or 0, b or 1) end)
end

--- init.normal_(t[, mean=0, std=1])
function init.normal_(t, mean, std)
  return inplace("normal_", t, function() t:normal_(mean or 0, std or 1) end)
end

--- init.trunc_normal_(t[, mean=0, std=1, a=-2, b=2]): normal values redrawn until inside [a, b].
function init.trunc_normal_(t, mean, std, a, b)
  mean, std, a, b = mean or 0, std or 1, a or -2, b or 2
  return inplace("trunc_normal_", t, function()
    t:normal_(mean, std)
    for _ = 1, 100 do
      local bad = ai.logical_or(t:lt(a), t:gt(b))
      if bad:sum():item() == 0 then return end
      t:copy_(ai.where(bad, ai.empty_like(t):normal_(mean, std), t))
    end
    t:clamp_(a, b) -- only reached for absurd bounds; keep the promise of [a, b]
  end)
end

--- init.constant_(t, v), init.zeros_(t), init.ones_(t)
function init.constant_(t, v) return inplace("constant_", t, function() t:fill_(v) end) end
function init.zeros_(t) return inplace("zeros_", t, function() t:zero_() end) end
function init.ones_(t) return inplace("ones_", t, function() t:fill_(1) end) end

--- init.eye_(t): the identity matrix (2-D tensors).
function init.eye_(t)
  check_tensor("eye_", t)
  if t:dim() ~= 2 then error("init.eye_: only 2-D tensors are supported", 2) end
  return inplace("eye_", t, function() t:copy_(ai.eye(t:size(1), t:size(2))) end)
end

local GAIN_OPTS = {gain = true}
local KAIMING_OPTS = {a = true, mode = true, nonlinearity = true}

--- init.xavier_uniform_(t[, {gain=1}]): U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))
function init.xavier_uniform_(t, opts)
  check_tensor("xavier_uniform_", t)
  util.check_opts("init.xavier_uniform_", opts, GAIN_OPTS)
  local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t)
  local std = (opts and opts.gain or 1) * math.sqrt(2 / (fan_in + fan_out))
  local a = math.sqrt(3) * std
  return init.uniform_(t, -a, a)
end

--- init.xavier_normal_(t[, {gain=1}]): N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))
function init.xavier_normal_(t, opts)
  check_tensor("xavier_normal_", t)
  util.check_opts("init.xavier_normal_", opts, GAIN_OPTS)
  local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t)
  return init.normal_(t, 0, (opts and opts.gain or 1) * math.sqrt(2 / (fan_in + fan_out)))
end

local function kaiming_std(t, opts)
  opts = opts or {}
  local a = opts.a or 0
  local gain = init.calculate_gain(opts.nonlinearity or "leaky_relu", a)
  return gain / math.sqrt(fan(t, opts.mode or "fan_in"))
end

--- init.kaiming_uniform_(t[, {a=0, mode="fan_in", nonlinearity="leaky_relu"}]):
-- U(-b, b), b = gain * sqrt(3 / fan). PyTorch's Linear and Conv weights use a = sqrt(5).
function init.kaiming_uniform_(t, opts)
  check_tensor("kaiming_uniform_", t)
  util.check_opts("init.kaiming_uniform_", opts, KAIMING_OPTS)
  local bound = math.sqrt(3) * kaiming_std(t, opts)
  return init.uniform_(t, -bound, bound)
end

--- init.kaiming_normal_(t[, {a=0, mode="fan_in", nonlinearity="leaky_relu"}]): N(0, (gain/sqrt(fan))^2)
function init.kaiming_normal_(t, opts)
  check_tensor("kaiming_normal_", t)
  util.check_opts("init.kaiming_normal_", opts, KAIMING_OPTS)
  return init.normal_(t, 0, kaiming_std(t, opts))
end

--- init.orthogonal_(t[, {gain=1}]): a (semi-)orthogonal matrix, t viewed as size(1) x rest.
-- Like PyTorch: QR of a normal matrix with the signs fixed so that R's diagonal is
-- positive; Gram-Schmidt gives exactly that factor, done here in double precision with a
-- second orthogonalisation pass for accuracy.
function init.orthogonal_(t, opts)
  check_tensor("orthogonal_", t)
  util.check_opts("init.orthogonal_", opts, GAIN_OPTS)
  if t:dim() < 2 then error("init.orthogonal_: only tensors with 2 or more dimensions are supported", 2) end
  local rows = t:size(1)
  local cols = t:numel() // rows
  local gain = opts and opts.gain or 1
  return inplace("orthogonal_", t, function()
    local a = ai.randn(rows, cols, {dtype = "f64"})
    if rows < cols then a = a:t():contiguous() end
    local n, k = a:size(1), a:size(2) -- orthonormalise the k columns of the n x k matrix a
    local q = ai.zeros(n, k, {dtype = "f64"})
    for j = 1, k do
      local v = a:narrow(2, j, 1):clone()
      if j > 1 then
        local qj = q:narrow(2, 1, j - 1)
        for _ = 1, 2 do v = v - ai.matmul(qj, ai.matmul(qj:t(), v)) end
      end
      q:narrow(2, j, 1):copy_(v / v:norm())
    end
    if rows < cols then q = q:t() end
    t:view(rows, cols):copy_(q * gain)
  end)
end

return util.strict_args(init, "init.")
