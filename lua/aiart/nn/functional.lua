--[[ aiart.nn.functional: ai.F (also ai.nn.F), the stateless forms of the layers and losses.

The heavy ops are the C core's (ai.conv2d, ai.batch_norm, ai.cross_entropy, ...), re-exported
here under the same names; the rest are compositions written in Lua. Dims and class indices
are 1-based; options are tables ({reduction="sum"}, {stride=2, padding=1}).
]]
local ai = require "aiart"
local util = require "aiart.util"

local error, check_opts = util.error, util.check_opts -- positions name the caller's line (see util.error)

local F = {}

-- The C functions, resolved at call time so that a missing one fails loudly by name.
local C_FUNCTIONS = {
  "linear", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
  "upsample", "pad", "batch_norm", "group_norm", "layer_norm", "instance_norm", "softmax",
  "log_softmax", "dropout", "embedding", "scaled_dot_product_attention", "mse_loss", "l1_loss",
  "smooth_l1_loss", "bce_loss", "bce_with_logits", "cross_entropy", "nll_loss", "kl_div",
  -- elementwise activations of the core
  "relu", "leaky_relu", "silu", "tanh", "sigmoid", "softplus",
}
for _, name in ipairs(C_FUNCTIONS) do
  local f = rawget(ai, name)
  F[name] = f or function()
    error(("F.%s: the C core has no ai.%s (is aiart.so up to date?)"):format(name, name), 2)
  end
end

-- PyTorch's unbatched images: a 3-D input (C x H x W) runs as a batch of one and comes back
-- without the batch dim, in the convolutions and the pooling functions (ai.conv2d itself takes
-- N x C x H x W only).
local docs = require "aiart.doc"
ai._doc = ai._doc or {}
local function unbatched(name, f)
  local g = function(x, ...)
    if util.is_tensor(x) and x.ndim ~= 4 then
      if x.ndim == 3 then return f(x:unsqueeze(1), ...):squeeze(1) end
      error(("%s: input must be 4-D (N x C x H x W) or 3-D (C x H x W, one unbatched image), got shape %s")
        :format(name, util.shape_str(x)), 2)
    end
    return f(x, ...)
  end
  ai._doc[g] = docs[name] and (docs[name] .. "; a 3-D input (C x H x W) is one unbatched image, as in PyTorch")
  return g
end
for _, name in ipairs({ "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d" }) do
  F[name] = unbatched(name, F[name])
end

-- PyTorch's names for some of them
F.interpolate = F.upsample
F.binary_cross_entropy = F.bce_loss
F.binary_cross_entropy_with_logits = F.bce_with_logits

--- F.reduce(loss, reduction): "mean" | "sum" | "none" applied to an elementwise loss.
function F.reduce(loss, reduction)
  reduction = reduction or "mean"
  if reduction == "mean" then return loss:mean() end
  if reduction == "sum" then return loss:sum() end
  if reduction == "none" then return loss end
  error(("reduction must be 'mean', 'sum' or 'none', got '%s'"):format(tostring(reduction)), 3)
end

---------------------------------------------------------------------------------- activations

local SQRT_2_OVER_PI = math.sqrt(2 / math.pi)

--- F.gelu(x[, {approximate="none"|"tanh"}])
function F.gelu(x, opts)
  check_opts("gelu", opts, {approximate = true})
  local approx = opts and opts.approximate or "none"
  if approx == "none" then return ai.gelu(x) end
  if approx ~= "tanh" then error("gelu: approximate must be 'none' or 'tanh', got '" .. tostring(approx) .. "'", 2) end
  return x * 0.5 * (1 + ai.tanh((x + x ^ 3 * 0.044715) * SQRT_2_OVER_PI))
end

--- F.elu(x[, alpha=1]): x for x > 0, alpha * (exp(x) - 1) otherwise
function F.elu(x, alpha)
  -- exp of the clamped input, so the branch not taken cannot overflow into a NaN gradient
  return ai.where(x:gt(0), x, (ai.clamp(x, nil, 0):exp() - 1) * (alpha or 1))
end

--- F.selu(x)
function F.selu(x)
  local alpha, scale = 1.6732632423543772, 1.0507009873554805
  return F.elu(x, alpha) * scale
end

--- F.hardtanh(x[, min=-1, max=1]), F.relu6(x)
function F.hardtanh(x, lo, hi) return ai.clamp(x, lo or -1, hi or 1) end
function F.relu6(x) return ai.clamp(x, 0, 6) end
--- F.hardsigmoid(x) = relu6(x + 3) / 6; F.hardswish(x) = x * hardsigmoid(x)
function F.hardsigmoid(x) return ai.clamp(x + 3, 0, 6) / 6 end
function F.hardswish(x) return x * F.hardsigmoid(x) end
--- F.mish(x) = x * tanh(softplus(x))
function F.mish(x) return x * ai.tanh(ai.softplus(x)) end
--- F.logsigmoid(x) = -softplus(-x), stable for large |x|
function F.logsigmoid(x) return -ai.softplus(-x) end
--- F.softsign(x) = x / (1 + |x|)
function F.softsign(x) return x / (x:abs() + 1) end
--- F.softmin(x, dim) = softmax(-x, dim)
function F.softmin(x, dim) return F.softmax(-x, dim) end

--- F.glu(x[, dim=-1]): a * sigmoid(b) where a, b are the halves of x along dim
function F.glu(x, dim)
  dim = dim or -1
  local halves = ai.chunk(x, 2, dim)
  return halves[1] * ai.sigmoid(halves[2])
end

------------------------------------------------------------------------------------ utilities

--- F.normalize(x[, {p=2, dim=2, eps=1e-12}]): x divided by its p-norm along dim
function F.normalize(x, opts)
  opts = check_opts("normalize", opts, {p = true, dim = true, eps = true})
  local n = x:norm(opts.p or 2, opts.dim or 2)
  return x / ai.clamp(n, opts.eps or 1e-12)
end

--- F.cosine_similarity(a, b[, {dim=2, eps=1e-8}])
function F.cosine_similarity(a, b, opts)
  opts = check_opts("cosine_similarity", opts, {dim = true, eps = true})
  local dim, eps = opts.dim or 2, opts.eps or 1e-8
  local na = ai.clamp(a:norm(2, dim, {keepdim = false}), eps)
  local nb = ai.clamp(b:norm(2, dim, {keepdim = false}), eps)
  return (a * b):sum(dim, {keepdim = false}) / (na * nb)
end

--- F.one_hot(indices, num_classes) -> i64 tensor of indices' shape plus a last dim of size
-- num_classes, with a 1 at each (1-based) index.
function F.one_hot(indices, num_classes)
  if indices.dtype ~= "i64" then error("one_hot: indices must be an i64 tensor, got " .. indices.dtype, 2) end
  num_classes = util.int("one_hot", "num_classes", num_classes, 1)
  return indices:unsqueeze(-1):eq(ai.range(1, num_classes)):long()
end

--- F.pixel_shuffle(x, r): (N, C*r*r, H, W) -> (N, C, H*r, W*r)
function F.pixel_shuffle(x, r)
  r = util.int("pixel_shuffle", "r", r, 1)
  local n, c, h, w = table.unpack(x.shape)
  if c % (r * r) ~= 0 then error(("pixel_shuffle: channels (%d) must be divisible by r^2 = %d"):format(c, r * r), 2) end
  local oc = c // (r * r)
  return x:reshape(n, oc, r, r, h, w):permute(1, 2, 5, 3, 6, 4):reshape(n, oc, h * r, w * r)
end

--- F.pixel_unshuffle(x, r): (N, C, H*r, W*r) -> (N, C*r*r, H, W)
function F.pixel_unshuffle(x, r)
  r = util.int("pixel_unshuffle", "r", r, 1)
  local n, c, hr, wr = table.unpack(x.shape)
  if hr % r ~= 0 or wr % r ~= 0 then error(("pixel_unshuffle: height and width must be divisible by %d"):format(r), 2) end
  local h, w = hr // r, wr // r
  return x:reshape(n, c, h, r, w, r):permute(1, 2, 4, 6, 3, 5):reshape(n, c * r * r, h, w)
end

---------------------------------------------------------------------------------------- losses

--- F.huber_loss(x, y[, {delta=1, reduction="mean"}]) = delta * smooth_l1_loss(x, y, {beta=delta})
function F.huber_loss(x, y, opts)
  opts = check_opts("huber_loss", opts, {delta = true, reduction = true})
  local delta = opts.delta or 1
  local l = F.smooth_l1_loss(x, y, {beta = delta, reduction = "none"}) * delta
  return F.reduce(l, opts.reduction)
end

--- F.hinge_embedding_loss(x, y[, {margin=1, reduction="mean"}]): x where y = 1,
-- max(0, margin - x) where y = -1
function F.hinge_embedding_loss(x, y, opts)
  opts = check_opts("hinge_embedding_loss", opts, {margin = true, reduction = true})
  local margin = opts.margin or 1
  local l = ai.where(y:eq(1), x, ai.relu(-x + margin))
  return F.reduce(l, opts.reduction)
end

--- F.margin_ranking_loss(a, b, y[, {margin=0, reduction="mean"}]) = max(0, -y * (a - b) + margin)
function F.margin_ranking_loss(a, b, y, opts)
  opts = check_opts("margin_ranking_loss", opts, {margin = true, reduction = true})
  return F.reduce(ai.relu(-y * (a - b) + (opts.margin or 0)), opts.reduction)
end

--- F.gaussian_nll_loss(mean, target, var[, {eps=1e-6, full=false, reduction="mean"}])
function F.gaussian_nll_loss(mean, target, var, opts)
  opts = check_opts("gaussian_nll_loss", opts, {eps = true, full = true, reduction = true})
  local v = ai.clamp(var, opts.eps or 1e-6)
  local l = (v:log() + (mean - target) ^ 2 / v) * 0.5
  if opts.full then l = l + 0.5 * math.log(2 * math.pi) end
  return F.reduce(l, opts.reduction)
end

return util.strict_args(F, "F.")
