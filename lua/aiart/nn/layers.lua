--[[ aiart.nn.layers: the layers of ai.nn (Linear, Conv2d, the norms, pooling, activations, ...).

Constructors take PyTorch's positional arguments and a table of its keyword arguments:
nn.Conv2d(1, 64, 4, {stride=2, padding=1}). Initialisation is PyTorch's default for each
layer, in reset_parameters(), which subclasses may override. Dims are 1-based (Flatten's
default start_dim is 2, PyTorch's 1).
]]
local ai = require "aiart"
local module = require "aiart.nn.module"
local F = require "aiart.nn.functional"
local init = require "aiart.nn.weight_init"
local A = require "aiart.nn.args"
local util = require "aiart.util"
local error = util.error -- positions name the caller's line (see util.error)

local Module, Parameter, repr = module.Module, module.Parameter, module.repr_value
local L = {}

local function dtype_of(fn, o)
  return A.oneof(fn, "dtype", o.dtype, {"f32", "f64", "float", "double", "float32", "float64"})
end

-- PyTorch's default for Linear and Conv: kaiming_uniform_(a = sqrt(5)), i.e. U(+-1/sqrt(fan_in)),
-- and the bias U(+-1/sqrt(fan_in)).
local function reset_linear_like(weight, bias)
  init.kaiming_uniform_(weight, {a = math.sqrt(5)})
  if bias then
    local fan_in = init.calculate_fan_in_and_fan_out(weight)
    local bound = fan_in > 0 and 1 / math.sqrt(fan_in) or 0
    init.uniform_(bias, -bound, bound)
  end
end

local function check_input(fn, x, dims, what)
  if not module.is_tensor(x) then error(("%s: input must be a tensor, got %s"):format(fn, type(x)), 3) end
  local nd = x:dim()
  for _, d in ipairs(dims) do if nd == d then return end end
  error(("%s: expected %s input, got a %d-D tensor"):format(fn, what, nd), 3)
end

local function check_channels(fn, x, c)
  if x:size(2) ~= c then
    error(("%s: expected %d channels (dim 2 of the input), got %d"):format(fn, c, x:size(2)), 3)
  end
end

------------------------------------------------------------------------------------- Linear

local Linear = Module:extend("Linear")
L.Linear = Linear

--- nn.Linear(in_features, out_features[, {bias=true, dtype="f32"}]): y = x W^T + b
function Linear:init(in_features, out_features, opts)
  local o = A.options("Linear", opts, {bias = true, dtype = "f32"})
  self.in_features = A.int("Linear", "in_features", in_features)
  self.out_features = A.int("Linear", "out_features", out_features)
  local dt = dtype_of("Linear", o)
  self.weight = Parameter(ai.empty(out_features, in_features, {dtype = dt}))
  self:param("bias", o.bias and ai.empty(out_features, {dtype = dt}) or nil)
  self:reset_parameters()
end
function Linear:reset_parameters() reset_linear_like(self.weight, self.bias) end
function Linear:forward(x) return F.linear(x, self.weight, self.bias) end
function Linear:extra_repr()
  return ("in_features=%d, out_features=%d, bias=%s"):format(self.in_features, self.out_features, self.bias ~= nil)
end

-------------------------------------------------------------------------------- convolutions

local PADDING_MODES = {"zeros", "reflect", "replicate"}

-- Shared by Conv2d and ConvTranspose2d.
local function conv_setup(self, fn, transposed, cin, cout, kernel_size, opts)
  local o = A.options(fn, opts, {stride = 1, padding = 0, dilation = 1, groups = 1, bias = true,
    padding_mode = "zeros", dtype = "f32", output_padding = transposed and 0 or nil})
  self.in_channels = A.int(fn, "in_channels", cin, 1)
  self.out_channels = A.int(fn, "out_channels", cout, 1)
  self.kernel_size = A.pair(fn, "kernel_size", kernel_size, 1)
  self.stride = A.pair(fn, "stride", o.stride, 1)
  self.dilation = A.pair(fn, "dilation", o.dilation, 1)
  self.groups = A.int(fn, "groups", o.groups, 1)
  self.padding_mode = A.oneof(fn, "padding_mode", o.padding_mode, PADDING_MODES)
  if cin % self.groups ~= 0 or cout % self.groups ~= 0 then
    error(("%s: in_channels (%d) and out_channels (%d) must be divisible by groups (%d)"):format(
      fn, cin, cout, self.groups), 4)
  end
  local kh, kw = self.kernel_size[1], self.kernel_size[2]
  local dt = dtype_of(fn, o)
  if transposed then
    self.output_padding = A.pair(fn, "output_padding", o.output_padding, 0)
    if self.padding_mode ~= "zeros" then error(fn .. ": only padding_mode 'zeros' is supported", 4) end
    self.weight = Parameter(ai.empty(cin, cout // self.groups, kh, kw, {dtype = dt}))
  else
    self.weight = Parameter(ai.empty(cout, cin // self.groups, kh, kw, {dtype = dt}))
  end
  self:param("bias", o.bias and ai.empty(cout, {dtype = dt}) or nil)

  -- Padding: numbers/pairs go to the kernel; "same" and non-zero modes pad explicitly first.
  local pad = o.padding
  if pad == "valid" then pad = 0 end
  if pad == "same" then
    if transposed then error(fn .. ": padding 'same' is not supported", 4) end
    if self.stride[1] ~= 1 or self.stride[2] ~= 1 then
      error(fn .. ": padding 'same' needs stride 1 (as in PyTorch)", 4)
    end
    self.padding = "same"
    local total_h, total_w = self.dilation[1] * (kh - 1), self.dilation[2] * (kw - 1)
    -- PyTorch puts the odd pixel of an even kernel on the right/bottom
    local explicit = {total_w // 2, total_w - total_w // 2, total_h // 2, total_h - total_h // 2}
    if explicit[1] == explicit[2] and explicit[3] == explicit[4] and self.padding_mode == "zeros" then
      pad = {explicit[3], explicit[1]}
    else
      self._prepad = explicit
      pad = 0
    end
  else
    self.padding = A.pair(fn, "padding", pad, 0)
    pad = self.padding
    if self.padding_mode ~= "zeros" then
      self._prepad = {pad[2], pad[2], pad[1], pad[1]}
      pad = 0
    end
  end
  if self._prepad then
    self._pad_opts = {mode = self.padding_mode == "zeros" and "constant" or self.padding_mode}
  end
  self._opts = {stride = self.stride, padding = pad, dilation = self.dilation, groups = self.groups,
                output_padding = self.output_padding}
  self:reset_parameters()
end

local function conv_repr(self)
  local s = ("%d, %d, kernel_size=%s, stride=%s"):format(self.in_channels, self.out_channels,
    repr(self.kernel_size), repr(self.stride))
  local p = self.padding
  if p == "same" or p[1] ~= 0 or p[2] ~= 0 then s = s .. ", padding=" .. repr(p) end
  if self.dilation[1] ~= 1 or self.dilation[2] ~= 1 then s = s .. ", dilation=" .. repr(self.dilation) end
  local op = self.output_padding
  if op and (op[1] ~= 0 or op[2] ~= 0) then s = s .. ", output_padding=" .. repr(op) end
  if self.groups ~= 1 then s = s .. ", groups=" .. self.groups end
  if self.bias == nil then s = s .. ", bias=false" end
  if self.padding_mode ~= "zeros" then s = s .. ", padding_mode=" .. repr(self.padding_mode) end
  return s
end

local Conv2d = Module:extend("Conv2d")
L.Conv2d = Conv2d

--- nn.Conv2d(in_channels, out_channels, kernel_size[, {stride=1, padding=0, dilation=1,
-- groups=1, bias=true, padding_mode="zeros"|"reflect"|"replicate", dtype="f32"}])
-- Sizes are numbers or {height, width} pairs; padding may also be "same" or "valid".
-- Weight: out_channels x in_channels/groups x kh x kw.
function Conv2d:init(cin, cout, kernel_size, opts) conv_setup(self, "Conv2d", false, cin, cout, kernel_size, opts) end
function Conv2d:reset_parameters() reset_linear_like(self.weight, self.bias) end
function Conv2d:forward(x)
  if self._prepad then
    -- reflect and replicate padding want a batch: an unbatched image (C x H x W) gets one here
    if util.is_tensor(x) and x.ndim == 3 then return self:forward(x:unsqueeze(1)):squeeze(1) end
    x = F.pad(x, self._prepad, self._pad_opts)
  end
  return F.conv2d(x, self.weight, self.bias, self._opts)
end
Conv2d.extra_repr = conv_repr

local ConvTranspose2d = Module:extend("ConvTranspose2d")
L.ConvTranspose2d = ConvTranspose2d

--- nn.ConvTranspose2d(in_channels, out_channels, kernel_size[, {stride=1, padding=0,
-- output_padding=0, groups=1, bias=true, dilation=1, dtype="f32"}])
-- Weight: in_channels x out_channels/groups x kh x kw; its fan_in (for the default
-- initialisation) is computed from dim 2, as PyTorch does.
function ConvTranspose2d:init(cin, cout, kernel_size, opts)
  conv_setup(self, "ConvTranspose2d", true, cin, cout, kernel_size, opts)
end
function ConvTranspose2d:reset_parameters() reset_linear_like(self.weight, self.bias) end
function ConvTranspose2d:forward(x) return F.conv_transpose2d(x, self.weight, self.bias, self._opts) end
ConvTranspose2d.extra_repr = conv_repr

------------------------------------------------------------------------------ normalisation

-- BatchNorm1d and BatchNorm2d differ only in the input ranks they accept.
local function batch_norm_class(name, dims, what)
  local BN = Module:extend(name)

  --- nn.BatchNormXd(num_features[, {eps=1e-5, momentum=0.1, affine=true,
  -- track_running_stats=true, dtype="f32"}]). momentum=false gives the cumulative average
  -- (PyTorch's momentum=None).
  function BN:init(num_features, opts)
    local o = A.options(name, opts, {eps = 1e-5, momentum = 0.1, affine = true, track_running_stats = true,
      dtype = "f32"})
    self.num_features = A.int(name, "num_features", num_features)
    self.eps = A.number(name, "eps", o.eps, 0)
    if o.momentum ~= false then A.number(name, "momentum", o.momentum, 0, 1) end
    self.momentum = o.momentum
    self.affine, self.track_running_stats = o.affine, o.track_running_stats
    local dt = dtype_of(name, o)
    self:param("weight", o.affine and ai.ones(num_features, {dtype = dt}) or nil)
    self:param("bias", o.affine and ai.zeros(num_features, {dtype = dt}) or nil)
    if o.track_running_stats then
      self:buffer("running_mean", ai.zeros(num_features, {dtype = dt}))
      self:buffer("running_var", ai.ones(num_features, {dtype = dt}))
      self:buffer("num_batches_tracked", ai.zeros({}, {dtype = "i64"}))
    else
      self:buffer("running_mean", nil)
      self:buffer("running_var", nil)
      self:buffer("num_batches_tracked", nil)
    end
    self._opts = {training = true, momentum = 0.1, eps = self.eps}
  end

  function BN:reset_running_stats()
    if self.running_mean then
      ai.no_grad(function()
        self.running_mean:zero_()
        self.running_var:fill_(1)
        self.num_batches_tracked:zero_()
      end)
    end
  end

  function BN:reset_parameters()
    self:reset_running_stats()
    if self.weight then init.ones_(self.weight); init.zeros_(self.bias) end
  end

  -- Training normalises with the batch statistics and updates the running ones; evaluation
  -- uses the running statistics (or the batch's when they are not tracked), as PyTorch.
  function BN:forward(x)
    check_input(name, x, dims, what)
    check_channels(name, x, self.num_features)
    local o, momentum = self._opts, self.momentum
    if self.training and self.track_running_stats then
      self.num_batches_tracked:add_(1)
      if momentum == false then momentum = 1 / self.num_batches_tracked:item() end
    end
    o.training = self.training or self.running_mean == nil
    o.momentum = momentum or 0
    local rm, rv
    if not self.training or self.track_running_stats then rm, rv = self.running_mean, self.running_var end
    return F.batch_norm(x, rm, rv, self.weight, self.bias, o)
  end

  function BN:extra_repr()
    return ("%d, eps=%s, momentum=%s, affine=%s, track_running_stats=%s"):format(self.num_features,
      repr(self.eps), self.momentum == false and "false" or repr(self.momentum), self.affine, self.track_running_stats)
  end
  return BN
end

L.BatchNorm1d = batch_norm_class("BatchNorm1d", {2, 3}, "2-D (N, C) or 3-D (N, C, L)")
L.BatchNorm2d = batch_norm_class("BatchNorm2d", {4}, "4-D (N, C, H, W)")

local GroupNorm = Module:extend("GroupNorm")
L.GroupNorm = GroupNorm

--- nn.GroupNorm(num_groups, num_channels[, {eps=1e-5, affine=true, dtype="f32"}])
function GroupNorm:init(num_groups, num_channels, opts)
  local o = A.options("GroupNorm", opts, {eps = 1e-5, affine = true, dtype = "f32"})
  self.num_groups = A.int("GroupNorm", "num_groups", num_groups)
  self.num_channels = A.int("GroupNorm", "num_channels", num_channels)
  if num_channels % num_groups ~= 0 then
    error(("GroupNorm: num_channels (%d) must be divisible by num_groups (%d)"):format(num_channels, num_groups), 3)
  end
  self.eps, self.affine = A.number("GroupNorm", "eps", o.eps, 0), o.affine
  local dt = dtype_of("GroupNorm", o)
  self:param("weight", o.affine and ai.ones(num_channels, {dtype = dt}) or nil)
  self:param("bias", o.affine and ai.zeros(num_channels, {dtype = dt}) or nil)
  self._opts = {eps = self.eps}
end
function GroupNorm:forward(x)
  if x:dim() < 2 then error("GroupNorm: expected an input of shape (N, C, ...)", 2) end
  check_channels("GroupNorm", x, self.num_channels)
  return F.group_norm(x, self.num_groups, self.weight, self.bias, self._opts)
end
function GroupNorm:extra_repr()
  return ("%d, %d, eps=%s, affine=%s"):format(self.num_groups, self.num_channels, repr(self.eps), self.affine)
end

local LayerNorm = Module:extend("LayerNorm")
L.LayerNorm = LayerNorm

--- nn.LayerNorm(normalized_shape[, {eps=1e-5, elementwise_affine=true, bias=true, dtype="f32"}])
-- normalized_shape: a size or a table of the trailing sizes to normalise over.
function LayerNorm:init(normalized_shape, opts)
  local o = A.options("LayerNorm", opts, {eps = 1e-5, elementwise_affine = true, bias = true, dtype = "f32"})
  local given = type(normalized_shape) == "table" and normalized_shape or {normalized_shape}
  if #given == 0 then error("LayerNorm: normalized_shape must not be empty", 3) end
  local shape = {}
  for i, s in ipairs(given) do shape[i] = A.int("LayerNorm", "normalized_shape", s) end
  self.normalized_shape = shape
  self.eps, self.elementwise_affine = A.number("LayerNorm", "eps", o.eps, 0), o.elementwise_affine
  local dt = dtype_of("LayerNorm", o)
  self:param("weight", o.elementwise_affine and ai.ones(shape, {dtype = dt}) or nil)
  self:param("bias", (o.elementwise_affine and o.bias) and ai.zeros(shape, {dtype = dt}) or nil)
  self._opts = {eps = self.eps}
end
function LayerNorm:forward(x)
  return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self._opts)
end
function LayerNorm:extra_repr()
  return ("%s, eps=%s, elementwise_affine=%s"):format(repr(self.normalized_shape), repr(self.eps), self.elementwise_affine)
end

local InstanceNorm2d = Module:extend("InstanceNorm2d")
L.InstanceNorm2d = InstanceNorm2d

--- nn.InstanceNorm2d(num_features[, {eps=1e-5, affine=false, dtype="f32"}]): each (sample,
-- channel) plane normalised on its own. Running statistics (track_running_stats) are not
-- supported: instance statistics are always used.
function InstanceNorm2d:init(num_features, opts)
  local o = A.options("InstanceNorm2d", opts, {eps = 1e-5, momentum = 0.1, affine = false,
    track_running_stats = false, dtype = "f32"})
  if o.track_running_stats then error("InstanceNorm2d: track_running_stats=true is not supported", 3) end
  self.num_features = A.int("InstanceNorm2d", "num_features", num_features)
  self.eps, self.affine = A.number("InstanceNorm2d", "eps", o.eps, 0), o.affine
  local dt = dtype_of("InstanceNorm2d", o)
  self:param("weight", o.affine and ai.ones(num_features, {dtype = dt}) or nil)
  self:param("bias", o.affine and ai.zeros(num_features, {dtype = dt}) or nil)
  self._opts = {eps = self.eps}
end
function InstanceNorm2d:forward(x)
  check_input("InstanceNorm2d", x, {4}, "4-D (N, C, H, W)")
  check_channels("InstanceNorm2d", x, self.num_features)
  return F.instance_norm(x, self.weight, self.bias, self._opts)
end
function InstanceNorm2d:extra_repr()
  return ("%d, eps=%s, affine=%s"):format(self.num_features, repr(self.eps), self.affine)
end

---------------------------------------------------------------------------------- embedding

local Embedding = Module:extend("Embedding")
L.Embedding = Embedding

--- nn.Embedding(num_embeddings, embedding_dim[, {padding_idx=, dtype="f32"}]): a lookup
-- table indexed by 1-based i64 indices; weight N(0, 1). The row padding_idx (1-based,
-- negative from the end) starts at zero and receives no gradient.
function Embedding:init(num_embeddings, embedding_dim, opts)
  local o = A.options("Embedding", opts, {padding_idx = A.NONE, dtype = "f32", _weight = A.NONE})
  self.num_embeddings = A.int("Embedding", "num_embeddings", num_embeddings)
  self.embedding_dim = A.int("Embedding", "embedding_dim", embedding_dim)
  if o.padding_idx then
    local p = A.int("Embedding", "padding_idx", o.padding_idx, -num_embeddings)
    if p == 0 or p > num_embeddings then
      error(("Embedding: padding_idx must be in 1..%d (or negative), got %d"):format(num_embeddings, p), 3)
    end
    self.padding_idx = p < 0 and p + num_embeddings + 1 or p
  end
  if o._weight then
    self.weight = Parameter(o._weight)
  else
    self.weight = Parameter(ai.empty(num_embeddings, embedding_dim, {dtype = dtype_of("Embedding", o)}))
    self:reset_parameters()
  end
end
function Embedding:reset_parameters()
  init.normal_(self.weight)
  if self.padding_idx then ai.no_grad(function() self.weight[self.padding_idx] = 0 end) end
end
function Embedding:forward(indices)
  local out = F.embedding(indices, self.weight)
  if self.padding_idx then
    -- masking the output stops the gradient to the padding row (whose output is zero anyway)
    out = out * indices:ne(self.padding_idx):unsqueeze(-1):to(out.dtype)
  end
  return out
end
function Embedding:extra_repr()
  local s = ("%d, %d"):format(self.num_embeddings, self.embedding_dim)
  if self.padding_idx then s = s .. ", padding_idx=" .. self.padding_idx end
  return s
end

--- nn.Embedding.from_pretrained(weight[, {freeze=true, padding_idx=}])
function Embedding.from_pretrained(weight, opts)
  local o = A.options("Embedding.from_pretrained", opts, {freeze = true, padding_idx = A.NONE})
  if not module.is_tensor(weight) or weight:dim() ~= 2 then
    error("Embedding.from_pretrained: weight must be a 2-D tensor", 2)
  end
  local e = Embedding(weight:size(1), weight:size(2), {padding_idx = o.padding_idx, _weight = weight:detach():clone()})
  e.weight:requires_grad_(not o.freeze)
  return e
end

--------------------------------------------------------------------------- dropout, resizing

local Dropout = Module:extend("Dropout")
L.Dropout = Dropout

--- nn.Dropout([p=0.5]) or nn.Dropout{p=0.5}: zeroes elements with probability p in training
-- and scales the rest by 1/(1-p); the identity in evaluation.
function Dropout:init(p)
  if type(p) == "table" then p = A.options("Dropout", p, {p = 0.5, inplace = false}).p end
  self.p = A.number("Dropout", "p", p == nil and 0.5 or p, 0, 1)
end
function Dropout:forward(x) return F.dropout(x, self.p, self.training) end
function Dropout:extra_repr() return "p=" .. repr(self.p) end

local Upsample = Module:extend("Upsample")
L.Upsample = Upsample

--- nn.Upsample{size=, scale_factor=, mode="nearest"|"bilinear", align_corners=false}
function Upsample:init(opts)
  local o = A.options("Upsample", opts, {size = A.NONE, scale_factor = A.NONE, mode = "nearest", align_corners = false})
  if not o.size and not o.scale_factor then error("Upsample: give size or scale_factor", 3) end
  A.oneof("Upsample", "mode", o.mode, {"nearest", "bilinear"})
  self.size, self.scale_factor, self.mode, self.align_corners = o.size, o.scale_factor, o.mode, o.align_corners
  self._opts = {size = self.size, scale_factor = self.scale_factor, mode = self.mode, align_corners = self.align_corners}
end
function Upsample:forward(x) return F.upsample(x, self._opts) end
function Upsample:extra_repr()
  local s = self.size and "size=" .. repr(self.size) or "scale_factor=" .. repr(self.scale_factor)
  s = s .. ", mode=" .. repr(self.mode)
  if self.align_corners then s = s .. ", align_corners=true" end
  return s
end

-- nn.ZeroPad2d(p), nn.ReflectionPad2d(p), nn.ReplicationPad2d(p), nn.ConstantPad2d(p, value):
-- p is a number or {left, right, top, bottom}.
local function pad_class(name, mode)
  local P = Module:extend(name)
  function P:init(padding, value)
    local p = type(padding) == "table" and padding or {padding, padding, padding, padding}
    if #p ~= 4 then error(name .. ": padding must be a number or {left, right, top, bottom}", 3) end
    for i = 1, 4 do A.int(name, "padding", p[i], 0) end
    self.padding = p
    if name == "ConstantPad2d" then if value ~= nil then A.number(name, "value", value) end
    elseif value ~= nil then error(name .. ": takes only the padding (a fill value: nn.ConstantPad2d)", 3) end
    self.value = mode == "constant" and (value or 0) or nil
    self._opts = {mode = mode, value = self.value}
  end
  function P:forward(x) return F.pad(x, self.padding, self._opts) end
  function P:extra_repr()
    local s = repr(self.padding)
    if name == "ConstantPad2d" then s = s .. ", value=" .. repr(self.value) end
    return s
  end
  return P
end
L.ZeroPad2d = pad_class("ZeroPad2d", "constant")
L.ConstantPad2d = pad_class("ConstantPad2d", "constant")
L.ReflectionPad2d = pad_class("ReflectionPad2d", "reflect")
L.ReplicationPad2d = pad_class("ReplicationPad2d", "replicate")

-------------------------------------------------------------------------------------- pooling

local MaxPool2d = Module:extend("MaxPool2d")
L.MaxPool2d = MaxPool2d

--- nn.MaxPool2d(kernel_size[, stride | {stride=kernel_size, padding=0, dilation=1, ceil_mode=false}])
function MaxPool2d:init(kernel_size, opts)
  if type(opts) == "number" or (type(opts) == "table" and opts[1]) then opts = {stride = opts} end
  local o = A.options("MaxPool2d", opts, {stride = A.NONE, padding = 0, dilation = 1, ceil_mode = false})
  self.kernel_size = A.pair("MaxPool2d", "kernel_size", kernel_size)
  self.stride = o.stride and A.pair("MaxPool2d", "stride", o.stride) or self.kernel_size
  self.padding = A.pair("MaxPool2d", "padding", o.padding, 0)
  self.dilation = A.pair("MaxPool2d", "dilation", o.dilation)
  self.ceil_mode = o.ceil_mode
  self._opts = {stride = self.stride, padding = self.padding, dilation = self.dilation, ceil_mode = self.ceil_mode}
end
function MaxPool2d:forward(x) return F.max_pool2d(x, self.kernel_size, self._opts) end
function MaxPool2d:extra_repr()
  return ("kernel_size=%s, stride=%s, padding=%s, dilation=%s, ceil_mode=%s"):format(repr(self.kernel_size),
    repr(self.stride), repr(self.padding), repr(self.dilation), self.ceil_mode)
end

local AvgPool2d = Module:extend("AvgPool2d")
L.AvgPool2d = AvgPool2d

--- nn.AvgPool2d(kernel_size[, stride | {stride=kernel_size, padding=0, ceil_mode=false,
-- count_include_pad=true}])
function AvgPool2d:init(kernel_size, opts)
  if type(opts) == "number" or (type(opts) == "table" and opts[1]) then opts = {stride = opts} end
  local o = A.options("AvgPool2d", opts, {stride = A.NONE, padding = 0, ceil_mode = false, count_include_pad = true})
  self.kernel_size = A.pair("AvgPool2d", "kernel_size", kernel_size)
  self.stride = o.stride and A.pair("AvgPool2d", "stride", o.stride) or self.kernel_size
  self.padding = A.pair("AvgPool2d", "padding", o.padding, 0)
  self.ceil_mode, self.count_include_pad = o.ceil_mode, o.count_include_pad
  self._opts = {stride = self.stride, padding = self.padding, ceil_mode = self.ceil_mode,
                count_include_pad = self.count_include_pad}
end
function AvgPool2d:forward(x) return F.avg_pool2d(x, self.kernel_size, self._opts) end
function AvgPool2d:extra_repr()
  return ("kernel_size=%s, stride=%s, padding=%s"):format(repr(self.kernel_size), repr(self.stride), repr(self.padding))
end

local AdaptiveAvgPool2d = Module:extend("AdaptiveAvgPool2d")
L.AdaptiveAvgPool2d = AdaptiveAvgPool2d

--- nn.AdaptiveAvgPool2d(output_size): output_size a number or {height, width}
function AdaptiveAvgPool2d:init(output_size)
  self.output_size = A.pair("AdaptiveAvgPool2d", "output_size", output_size)
end
function AdaptiveAvgPool2d:forward(x) return F.adaptive_avg_pool2d(x, self.output_size) end
function AdaptiveAvgPool2d:extra_repr() return "output_size=" .. repr(self.output_size) end

------------------------------------------------------------------------------------- reshaping

local Flatten = Module:extend("Flatten")
L.Flatten = Flatten

--- nn.Flatten([start_dim=2, end_dim=-1]) or nn.Flatten{start_dim=, end_dim=}: 1-based dims,
-- so the default keeps the batch dim as PyTorch's does.
function Flatten:init(start_dim, end_dim)
  if type(start_dim) == "table" then
    local o = A.options("Flatten", start_dim, {start_dim = 2, end_dim = -1})
    start_dim, end_dim = o.start_dim, o.end_dim
  end
  self.start_dim = A.int("Flatten", "start_dim", start_dim or 2, -math.huge)
  self.end_dim = A.int("Flatten", "end_dim", end_dim or -1, -math.huge)
end
function Flatten:forward(x) return x:flatten(self.start_dim, self.end_dim) end
function Flatten:extra_repr() return ("start_dim=%d, end_dim=%d"):format(self.start_dim, self.end_dim) end

local Unflatten = Module:extend("Unflatten")
L.Unflatten = Unflatten

--- nn.Unflatten(dim, sizes): splits dim (1-based) into sizes, e.g. Unflatten(2, {128, 7, 7})
function Unflatten:init(dim, sizes)
  self.dim = A.int("Unflatten", "dim", dim, -math.huge)
  if type(sizes) ~= "table" or #sizes == 0 then error("Unflatten: sizes must be a non-empty table", 3) end
  self.unflattened_size = sizes
end
function Unflatten:forward(x)
  local shape, d = x.shape, self.dim
  if d < 0 then d = d + #shape + 1 end
  local out = {}
  for i = 1, d - 1 do out[#out + 1] = shape[i] end
  for _, s in ipairs(self.unflattened_size) do out[#out + 1] = s end
  for i = d + 1, #shape do out[#out + 1] = shape[i] end
  return x:reshape(out)
end
function Unflatten:extra_repr() return ("dim=%d, unflattened_size=%s"):format(self.dim, repr(self.unflattened_size)) end

local Identity = Module:extend("Identity")
L.Identity = Identity
--- nn.Identity(): returns its input (arguments to the constructor are ignored, as PyTorch's
-- are: nn.Identity(54, "unused") is PyTorch's own documented call)
function Identity:init(...) end -- luacheck: ignore
function Identity:forward(x) return x end

---------------------------------------------------------------------------------- activations

-- An activation with no parameters and no options.
local function simple(name, f)
  local C = Module:extend(name)
  function C:init(opts)
    if type(opts) ~= "boolean" then A.options(name, opts, {inplace = false}) end -- ReLU(true) as ReLU(inplace=True)
  end
  function C:forward(x) return f(x) end
  L[name] = C
  return C
end
simple("ReLU", ai.relu)
simple("SiLU", ai.silu)
simple("Tanh", ai.tanh)
simple("Sigmoid", ai.sigmoid)
simple("Mish", F.mish)
simple("Hardswish", F.hardswish)

local LeakyReLU = Module:extend("LeakyReLU")
L.LeakyReLU = LeakyReLU
--- nn.LeakyReLU([negative_slope=0.01]) or nn.LeakyReLU{negative_slope=}
function LeakyReLU:init(slope)
  if type(slope) == "table" then slope = A.options("LeakyReLU", slope, {negative_slope = 0.01, inplace = false}).negative_slope end
  self.negative_slope = A.number("LeakyReLU", "negative_slope", slope or 0.01)
end
function LeakyReLU:forward(x) return ai.leaky_relu(x, self.negative_slope) end
function LeakyReLU:extra_repr() return "negative_slope=" .. repr(self.negative_slope) end

local ELU = Module:extend("ELU")
L.ELU = ELU
--- nn.ELU([alpha=1])
function ELU:init(alpha)
  if type(alpha) == "table" then alpha = A.options("ELU", alpha, {alpha = 1, inplace = false}).alpha end
  self.alpha = A.number("ELU", "alpha", alpha or 1)
end
function ELU:forward(x) return F.elu(x, self.alpha) end
function ELU:extra_repr() return "alpha=" .. repr(self.alpha) end

local GELU = Module:extend("GELU")
L.GELU = GELU
--- nn.GELU([{approximate="none"|"tanh"}])
function GELU:init(opts)
  if type(opts) == "string" then opts = {approximate = opts} end
  local o = A.options("GELU", opts, {approximate = "none"})
  self.approximate = A.oneof("GELU", "approximate", o.approximate, {"none", "tanh"})
  self._opts = {approximate = self.approximate}
end
function GELU:forward(x) return F.gelu(x, self._opts) end
function GELU:extra_repr() return "approximate=" .. repr(self.approximate) end

local Softplus = Module:extend("Softplus")
L.Softplus = Softplus
--- nn.Softplus([beta=1[, threshold=20]]) or nn.Softplus{beta=, threshold=}:
-- log(1 + exp(beta x)) / beta, linear above threshold
function Softplus:init(beta, threshold)
  if type(beta) == "table" then
    local o = A.options("Softplus", beta, {beta = 1, threshold = 20})
    beta, threshold = o.beta, o.threshold
  end
  self.beta = A.number("Softplus", "beta", beta or 1)
  self.threshold = A.number("Softplus", "threshold", threshold or 20)
  self._opts = {beta = self.beta, threshold = self.threshold}
end
function Softplus:forward(x) return ai.softplus(x, self._opts) end
function Softplus:extra_repr() return ("beta=%s, threshold=%s"):format(repr(self.beta), repr(self.threshold)) end

-- Softmax(dim) and LogSoftmax(dim): dim is required (PyTorch's implicit dim is deprecated).
local function softmax_class(name, f)
  local C = Module:extend(name)
  function C:init(dim)
    if type(dim) == "table" then dim = A.options(name, dim, {dim = A.NONE}).dim end
    if not dim then error(name .. ": give the dim to normalise over, e.g. " .. name .. "(2)", 3) end
    self.dim = A.int(name, "dim", dim, -math.huge)
  end
  function C:forward(x) return f(x, self.dim) end
  function C:extra_repr() return "dim=" .. self.dim end
  L[name] = C
end
softmax_class("Softmax", function(x, d) return F.softmax(x, d) end)
softmax_class("LogSoftmax", function(x, d) return F.log_softmax(x, d) end)

return L
