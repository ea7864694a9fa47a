-- tests/test_misuse.lua: every misuse of a C binding is a Lua error that names the function and
-- (where Lua numbers it) the argument: nil where a value is required, a wrong type, an unknown
-- option key, an extra positional argument, a value out of range, a fraction where an integer
-- is meant. One row per misuse: {what, call, expected message}; the message is matched as plain
-- text. Then the calls that must keep working: whole-number floats where an integer is meant
-- (Lua's rule: 2.0 is 2), trailing nils (left out, as Lua's optional arguments).
-- The tensor bindings (l_tensor*.c) and the reductions have their rows in test_tensor.lua and
-- test_ops_reduce.lua.
local T = require "helper"
local ai = require "aiart"

local D = T.tmpdir() -- where a call that wrongly succeeds would write
local function X() return ai.tensor({{1, -2, 3}, {0.5, 0, -1}}) end
local function X4() return ai.linspace(-1, 1, 32):reshape(1, 2, 4, 4) end
local function W4() return ai.ones(1, 2, 3, 3) end
local function I(t) return ai.tensor(t, {dtype = "i64"}) end
local function M() return X():gt(0) end

local function too_many(n, fn, given, most)
  return ("bad argument #%d to '%s' (too many arguments (%d given, at most %d expected))"):format(n, fn, given, most)
end
local function arg(n, fn, msg) return ("bad argument #%d to '%s' (%s"):format(n, fn, msg) end

local ROWS = {
  ---------------------------------------------------------------------------- l_ops.c
  {"leaky_relu extra", function() return ai.leaky_relu(X(), 0.1, 3) end, too_many(3, "leaky_relu", 3, 2)},
  {"leaky_relu unknown key", function() return ai.leaky_relu(X(), {slope = 0.1}) end,
   arg(2, "leaky_relu", "unknown option 'slope' (known: negative_slope)")},
  {"leaky_relu wrong type", function() return ai.leaky_relu(X(), "a") end, arg(2, "leaky_relu", "number expected, got string")},
  {"leaky_relu nil input", function() return ai.leaky_relu(nil, 0.1) end, arg(1, "leaky_relu", "tensor expected, got nil")},
  {"softplus extra", function() return ai.softplus(X(), 1, 20, 5) end, too_many(4, "softplus", 4, 3)},
  {"softplus options then extra", function() return ai.softplus(X(), {beta = 1}, 2) end, too_many(3, "softplus", 3, 2)},
  {"softplus unknown key", function() return ai.softplus(X(), {betta = 1}) end,
   arg(2, "softplus", "unknown option 'betta' (known: beta, threshold)")},
  {"softplus beta 0", function() return ai.softplus(X(), 0) end, "softplus: beta must be non-zero"},
  {"clamp extra", function() return ai.clamp(X(), 0, 1, 2) end, too_many(4, "clamp", 4, 3)},
  {"clamp unknown key", function() return ai.clamp(X(), {mn = 0}) end, arg(2, "clamp", "unknown option 'mn' (known: min, max)")},
  {"clamp wrong type", function() return ai.clamp(X(), "a") end, arg(2, "clamp", "number expected, got string")},
  {"clamp min > max", function() return ai.clamp(X(), 2, 1) end, "clamp: min (2) is greater than max (1)"},
  {"x:clamp_ extra", function() return X():clamp_(0, 1, 2) end, too_many(3, "clamp_", 3, 2)},
  {"x:clip unknown key", function() return X():clip{lo = 0} end, arg(1, "clip", "unknown option 'lo' (known: min, max)")},
  {"where extra", function() return ai.where(M(), X(), X(), 1) end, too_many(4, "where", 4, 3)},
  {"where nil", function() return ai.where(M(), X(), nil) end, arg(3, "where", "tensor or number expected, got nil")},
  {"where float condition", function() return ai.where(X(), X(), X()) end, "where: condition must be a u8 (boolean) tensor"},
  {"masked_fill extra", function() return ai.masked_fill(X(), M(), 1, 2) end, too_many(4, "masked_fill", 4, 3)},
  {"masked_fill nil value", function() return ai.masked_fill(X(), M()) end, arg(3, "masked_fill", "a number expected, got no value")},
  {"masked_fill fraction into i64", function() return ai.masked_fill(I({{1, 2, 3}, {4, 5, 6}}), M(), 2.5) end,
   arg(3, "masked_fill", "2.5 is not a whole number, and an i64 tensor holds integers")},
  {"x:masked_fill_ extra", function() return X():masked_fill_(M(), 1, 2) end, too_many(3, "masked_fill_", 3, 2)},
  {"matmul extra", function() return ai.matmul(X(), X():t(), X()) end, too_many(3, "matmul", 3, 2)},
  {"matmul nil", function() return ai.matmul(X(), nil) end, arg(2, "matmul", "tensor expected, got nil")},
  {"mm extra", function() return ai.mm(X(), X():t(), 1) end, too_many(3, "mm", 3, 2)},
  {"mm 3-D", function() return ai.mm(ai.zeros(2, 3, 4), ai.zeros(4, 2)) end, "mm: expects two 2-D tensors"},
  {"bmm extra", function() return ai.bmm(ai.zeros(1, 2, 3), ai.zeros(1, 3, 2), 1) end, too_many(3, "bmm", 3, 2)},
  {"dot extra", function() return ai.dot(ai.ones(3), ai.ones(3), ai.ones(3)) end, too_many(3, "dot", 3, 2)},
  {"cat extra", function() return ai.cat({X(), X()}, 1, 2) end, too_many(3, "cat", 3, 2)},
  {"cat key beside the list", function() return ai.cat({X(), X(), dim = 2}) end,
   arg(1, "cat", "expected a list of tensors, got a table with the key 'dim'")},
  {"cat item", function() return ai.cat({X(), 3}) end, arg(1, "cat", "expected a list of tensors, item 2 is a number")},
  {"cat dim 1.5", function() return ai.cat({X(), X()}, 1.5) end, arg(2, "cat", "number has no integer representation")},
  {"cat dim out of range", function() return ai.cat({X(), X()}, 3) end, arg(2, "cat", "dimension 3 out of range")},
  {"stack extra", function() return ai.stack({X(), X()}, 1, 2) end, too_many(3, "stack", 3, 2)},
  {"split extra", function() return ai.split(X(), 1, 1, 1) end, too_many(4, "split", 4, 3)},
  {"split 2.5", function() return ai.split(X(), 2.5) end, arg(2, "split", "an integer expected, got 2.5")},
  {"split nil", function() return ai.split(X()) end, arg(2, "split", "integer expected, got no value")},
  {"split negative size", function() return ai.split(ai.zeros(6), {-1, 7}) end,
   arg(2, "split", "split sizes must be non-negative integers (item 1 is -1)")},
  {"split fraction size", function() return ai.split(ai.zeros(6), {2.5, 3.5}) end,
   arg(2, "split", "split sizes must be non-negative integers (item 1 is 2.5)")},
  {"split sizes do not add up", function() return ai.split(ai.zeros(6), {2, 3}) end, "split: sizes add up to 5, dimension has 6"},
  {"split sizes overflow", function() return ai.split(ai.zeros(6), {math.maxinteger, math.maxinteger}) end, "split: sizes add up to"},
  {"x:chunk extra", function() return X():chunk(2, 1, 1) end, too_many(3, "chunk", 3, 2)},
  {"chunk 1.5", function() return ai.chunk(X(), 1.5) end, arg(2, "chunk", "an integer expected, got 1.5")},
  {"chunk 0", function() return ai.chunk(X(), 0) end, arg(2, "chunk", "number of chunks must be positive")},
  {"index_select extra", function() return ai.index_select(X(), 1, {1}, 1) end, too_many(4, "index_select", 4, 3)},
  {"index_select fraction", function() return ai.index_select(X(), 1, {1.5}) end,
   arg(3, "index_select", "index table must hold integers (item 1 is a fraction)")},
  {"index_select string item", function() return ai.index_select(X(), 1, {"1"}) end,
   arg(3, "index_select", "index table must hold integers (item 1 is string)")},
  {"index_select f32 index", function() return ai.index_select(X(), 1, ai.ones(1)) end,
   arg(3, "index_select", "index must be an i64 tensor (got f32); use :long()")},
  {"index_select dim out of range", function() return ai.index_select(X(), 3, {1}) end, arg(2, "index_select", "dimension 3 out of range")},
  {"gather extra", function() return ai.gather(X(), 2, I({{1}, {2}}), 1) end, too_many(4, "gather", 4, 3)},
  {"gather nil index", function() return ai.gather(X(), 2) end, arg(3, "gather", "index tensor or table expected, got no value")},
  {"scatter extra", function() return ai.scatter(X(), 2, I({{1}, {2}}), 1, 2) end, too_many(5, "scatter", 5, 4)},
  {"scatter nil source", function() return ai.scatter(X(), 2, I({{1}, {2}})) end,
   arg(4, "scatter", "tensor or number expected, got no value")},
  {"scatter fraction into i64", function() return ai.scatter(I({{1, 2}}), 2, I({{1}}), 2.5) end,
   arg(4, "scatter", "2.5 is not a whole number, and an i64 tensor holds integers")},
  {"scatter_add extra", function() return ai.scatter_add(X(), 2, I({{1}, {2}}), 1, 2) end, too_many(5, "scatter_add", 5, 4)},
  {"index_add extra", function() return ai.index_add(X(), 1, {1}, ai.ones(1, 3), 1) end, too_many(5, "index_add", 5, 4)},
  {"index_add nil source", function() return ai.index_add(X(), 1, {1}) end, arg(4, "index_add", "tensor expected, got no value")},
  {"masked_select extra", function() return ai.masked_select(X(), M(), 1) end, too_many(3, "masked_select", 3, 2)},
  {"masked_select f32 mask", function() return ai.masked_select(X(), X()) end, arg(2, "masked_select", "mask must be a u8 tensor")},
  {"manual_seed extra", function() return ai.manual_seed(1, 2) end, too_many(2, "manual_seed", 2, 1)},
  {"manual_seed 1.5", function() return ai.manual_seed(1.5) end, arg(1, "manual_seed", "an integer expected, got 1.5")},
  {"manual_seed nil", function() return ai.manual_seed() end, arg(1, "manual_seed", "integer expected, got no value")},
  {"manual_seed string", function() return ai.manual_seed("1") end, arg(1, "manual_seed", "integer expected, got string")},
  {"get_rng_state extra", function() return ai.get_rng_state(1) end, too_many(1, "get_rng_state", 1, 0)},
  {"set_rng_state extra", function() return ai.set_rng_state(1, 2, 3) end, too_many(3, "set_rng_state", 3, 2)},
  {"set_rng_state(state) extra", function() return ai.set_rng_state(ai.get_rng_state(), 2) end, too_many(2, "set_rng_state", 2, 1)},
  {"x:uniform_ extra", function() return X():uniform_(0, 1, 2) end, too_many(3, "uniform_", 3, 2)},
  {"x:uniform_ bounds", function() return X():uniform_(1, 0) end, "uniform_: rand: lower bound 1 is above upper bound 0"},
  {"x:uniform_ infinite bound", function() return X():uniform_(0, math.huge) end,
   arg(2, "uniform_", "the upper bound must be finite")},
  {"x:normal_ extra", function() return X():normal_(0, 1, 2) end, too_many(3, "normal_", 3, 2)},
  {"x:normal_ std < 0", function() return X():normal_(0, -1) end, "normal_: std must be non-negative"},
  {"x:bernoulli_ extra", function() return X():bernoulli_(0.5, 1) end, too_many(2, "bernoulli_", 2, 1)},
  {"x:bernoulli_ p 2", function() return X():bernoulli_(2) end, "bernoulli: p must be in [0, 1] (got 2)"},
  {"x:random_ extra", function() return X():random_(1, 3, 5) end, too_many(3, "random_", 3, 2)},
  {"x:random_ 1.5", function() return X():random_(1.5, 3) end, arg(1, "random_", "an integer expected, got 1.5")},
  {"x:random_ nil", function() return X():random_(1) end, arg(2, "random_", "integer expected, got no value")},
  {"bernoulli p 2", function() return ai.bernoulli(ai.tensor({0.5, 2})) end,
   "bernoulli: every probability must be in [0, 1] (got values from 0.5 to 2)"},
  {"bernoulli p nan", function() return ai.bernoulli(ai.tensor({0.5, 0 / 0})) end, "bernoulli: every probability must be in [0, 1]"},
  {"bernoulli extra", function() return ai.bernoulli(X(), 0.5) end, too_many(2, "bernoulli", 2, 1)},
  {"normal unknown key", function() return ai.normal(0, 1, 3, {dtpye = "f64"}) end,
   arg(4, "normal", "unknown option 'dtpye' (known: dtype, requires_grad)")},
  {"normal extra", function() return ai.normal(0, 1, 3, {}, 5) end, too_many(5, "normal", 5, 4)},
  {"normal nil size", function() return ai.normal(0, 1, 2, nil, 3) end, arg(4, "normal", "size or options expected, got nil")},
  {"normal std < 0", function() return ai.normal(0, -1, 3) end, arg(2, "normal", "std must be non-negative")},
  {"normal i64", function() return ai.normal(0, 1, 3, {dtype = "i64"}) end, arg(4, "normal", "dtype must be f32 or f64")},
  {"normal string size", function() return ai.normal(0, 1, 3, "x") end, arg(4, "normal", "size or options table expected, got string")},
  {"linalg.eigh extra", function() return ai.linalg.eigh(ai.eye(2), 1) end, too_many(2, "eigh", 2, 1)},
  {"linalg.eigh not square", function() return ai.linalg.eigh(X()) end, arg(1, "eigh", "expected a square 2-D (symmetric) matrix")},
  {"set_num_threads extra", function() return ai.set_num_threads(1, 2) end, too_many(2, "set_num_threads", 2, 1)},
  {"set_num_threads 1.5", function() return ai.set_num_threads(1.5) end, arg(1, "set_num_threads", "an integer expected, got 1.5")},
  {"set_num_threads 0", function() return ai.set_num_threads(0) end, arg(1, "set_num_threads", "number of threads must be 1..1024")},
  {"get_num_threads extra", function() return ai.get_num_threads(1) end, too_many(1, "get_num_threads", 1, 0)},
  {"clock extra", function() return ai.clock(1) end, too_many(1, "clock", 1, 0)},
  {"memory extra", function() return ai.memory(1) end, too_many(1, "memory", 1, 0)},
  {"empty_cache extra", function() return ai.empty_cache(true) end, too_many(1, "empty_cache", 1, 0)},

  ---------------------------------------------------------------------------- l_tensor*.c (what the sweep found)
  {"zeros options in the shape", function() return ai.zeros({dtype = "f64"}) end,
   arg(1, "zeros", "a shape table holds sizes only, got the key 'dtype'")},
  {"full key beside the sizes", function() return ai.full({2, dtype = "f64"}, 1) end,
   arg(1, "full", "a shape table holds sizes only, got the key 'dtype'")},
  {"x:view table then extra", function() return X():view({3, 2}, 1) end, too_many(2, "view", 2, 1)},
  {"x:permute table then extra", function() return X():permute({2, 1}, 3) end, too_many(2, "permute", 2, 1)},
  {"x:size extra", function() return X():size(1, 2) end, too_many(2, "size", 2, 1)},
  {"x:stride extra", function() return X():stride(1, 2) end, too_many(2, "stride", 2, 1)},
  {"x:dim extra", function() return X():dim(1) end, too_many(1, "dim", 1, 0)},
  {"x:numel extra", function() return X():numel(1) end, too_many(1, "numel", 1, 0)},
  {"x:is_contiguous extra", function() return X():is_contiguous(1) end, too_many(1, "is_contiguous", 1, 0)},
  {"free extra", function() return ai.free(X(), 1) end, too_many(2, "free", 2, 1)},

  ---------------------------------------------------------------------------- l_nn.c
  {"linear extra", function() return ai.linear(X(), ai.ones(4, 3), ai.ones(4), 1) end, too_many(4, "linear", 4, 3)},
  {"linear nil weight", function() return ai.linear(X()) end, arg(2, "linear", "tensor expected, got no value")},
  {"linear bias number", function() return ai.linear(X(), ai.ones(4, 3), 5) end, arg(3, "linear", "tensor expected, got number")},
  {"conv2d bias number", function() return ai.conv2d(X4(), W4(), 5) end,
   arg(3, "conv2d", "bias tensor, nil or options table expected, got number")},
  {"conv2d extra", function() return ai.conv2d(X4(), W4(), nil, {}, 1) end, too_many(5, "conv2d", 5, 4)},
  {"conv2d unknown key", function() return ai.conv2d(X4(), W4(), {strde = 1}) end,
   arg(3, "conv2d", "unknown option 'strde' (known: stride, padding, dilation, groups)")},
  {"conv2d output_padding", function() return ai.conv2d(X4(), W4(), nil, {output_padding = 1}) end,
   arg(4, "conv2d", "unknown option 'output_padding'")},
  {"conv2d stride 2.5", function() return ai.conv2d(X4(), W4(), {stride = 2.5}) end,
   arg(3, "conv2d", "option 'stride' must be an integer or a pair of integers, got a fraction")},
  {"conv2d stride string", function() return ai.conv2d(X4(), W4(), {stride = "a"}) end,
   arg(3, "conv2d", "option 'stride' must be an integer or a pair of integers, got string")},
  {"conv2d stride triple", function() return ai.conv2d(X4(), W4(), {stride = {1, 1, 1}}) end,
   arg(3, "conv2d", "option 'stride' must be an integer or a pair of integers, got a table of 3 items")},
  {"conv2d padding item", function() return ai.conv2d(X4(), W4(), {padding = {1, 0.5}}) end,
   arg(3, "conv2d", "option 'padding' must be an integer or a pair of integers, got item 2 is a fraction")},
  {"conv2d stride 2^32+1", function() return ai.conv2d(X4(), W4(), {stride = (1 << 32) + 1}) end,
   arg(3, "conv2d", "option 'stride' must be an integer or a pair of integers, got 4294967297, out of range")},
  {"conv2d stride 0", function() return ai.conv2d(X4(), W4(), {stride = 0}) end, "conv2d: stride and dilation must be >= 1"},
  {"conv2d groups 1.5", function() return ai.conv2d(X4(), W4(), {groups = 1.5}) end,
   arg(3, "conv2d", "option 'groups' must be an integer, got number")},
  {"conv2d groups 2^32+1", function() return ai.conv2d(X4(), W4(), {groups = (1 << 32) + 1}) end,
   arg(3, "conv2d", "option 'groups' is out of range (4294967297)")},
  {"conv_transpose2d unknown key", function() return ai.conv_transpose2d(X4(), ai.ones(2, 1, 3, 3), {outpad = 1}) end,
   arg(3, "conv_transpose2d", "unknown option 'outpad' (known: stride, padding, output_padding, dilation, groups)")},
  {"conv_transpose2d output_padding 0.5", function() return ai.conv_transpose2d(X4(), ai.ones(2, 1, 3, 3), {output_padding = 0.5}) end,
   arg(3, "conv_transpose2d", "option 'output_padding' must be an integer or a pair of integers, got a fraction")},
  {"max_pool2d kernel 2.5", function() return ai.max_pool2d(X4(), 2.5) end,
   arg(2, "max_pool2d", "expected an integer or a pair of integers, got a fraction")},
  {"max_pool2d kernel nil", function() return ai.max_pool2d(X4()) end,
   arg(2, "max_pool2d", "expected an integer or a pair of integers, got no value")},
  {"max_pool2d extra", function() return ai.max_pool2d(X4(), 2, {}, 1) end, too_many(4, "max_pool2d", 4, 3)},
  {"max_pool2d unknown key", function() return ai.max_pool2d(X4(), 2, {strid = 1}) end,
   arg(3, "max_pool2d", "unknown option 'strid' (known: stride, padding, dilation, ceil_mode)")},
  {"max_pool2d stride 0", function() return ai.max_pool2d(X4(), 2, {stride = 0}) end, "max_pool2d: invalid geometry"},
  {"avg_pool2d dilation", function() return ai.avg_pool2d(X4(), 2, {dilation = 1}) end,
   arg(3, "avg_pool2d", "unknown option 'dilation' (known: stride, padding, ceil_mode, count_include_pad)")},
  {"avg_pool2d extra", function() return ai.avg_pool2d(X4(), 2, nil, 1) end, too_many(4, "avg_pool2d", 4, 3)},
  {"adaptive_avg_pool2d extra", function() return ai.adaptive_avg_pool2d(X4(), 2, 2) end, too_many(3, "adaptive_avg_pool2d", 3, 2)},
  {"adaptive_avg_pool2d 1.5", function() return ai.adaptive_avg_pool2d(X4(), 1.5) end,
   arg(2, "adaptive_avg_pool2d", "expected an integer or a pair of integers, got a fraction")},
  {"upsample unknown key", function() return ai.upsample(X4(), {scale = 2}) end,
   arg(2, "upsample", "unknown option 'scale' (known: size, scale_factor, mode, align_corners)")},
  {"upsample extra", function() return ai.upsample(X4(), {scale_factor = 2}, 1) end, too_many(3, "upsample", 3, 2)},
  {"upsample nil options", function() return ai.upsample(X4()) end, arg(2, "upsample", "table expected, got no value")},
  {"upsample size and scale", function() return ai.upsample(X4(), {size = 8, scale_factor = 2}) end,
   "upsample: give size or scale_factor, not both"},
  {"upsample scale string", function() return ai.upsample(X4(), {scale_factor = "2"}) end,
   arg(2, "upsample", "option 'scale_factor' must be a number or a pair of numbers, got string")},
  {"upsample size 2.5", function() return ai.upsample(X4(), {size = 2.5}) end,
   arg(2, "upsample", "option 'size' must be an integer or a pair of integers, got a fraction")},
  {"upsample align_corners nearest", function() return ai.upsample(X4(), {scale_factor = 2, align_corners = true}) end,
   "upsample: align_corners applies to mode 'bilinear' only"},
  {"upsample scale 1e300", function() return ai.upsample(X4(), {scale_factor = 1e300}) end, "upsample: scale_factor makes an output of"},
  {"interpolate unknown key", function() return ai.interpolate(X4(), {scale_factor = 2, antialias = true}) end,
   arg(2, "interpolate", "unknown option 'antialias'")},
  {"pad unknown key", function() return ai.pad(X4(), {1, 1}, {mod = "reflect"}) end, arg(3, "pad", "unknown option 'mod' (known: mode, value)")},
  {"pad extra", function() return ai.pad(X4(), {1, 1}, {}, 1) end, too_many(4, "pad", 4, 3)},
  {"pad fraction", function() return ai.pad(X4(), {1.5, 1}) end, arg(2, "pad", "padding item 1 must be an integer, got 1.5")},
  {"pad 2^40", function() return ai.pad(X4(), {1 << 40, 1}) end, arg(2, "pad", "padding item 1 must be an integer, got 1099511627776")},
  {"pad negative", function() return ai.pad(X4(), {-1, 0, 0, 0}) end, "pad: padding must be non-negative"},
  {"pad value with reflect", function() return ai.pad(X4(), {1, 1, 1, 1}, {mode = "reflect", value = 1}) end,
   "pad: a fill value applies to mode 'constant' only, not 'reflect'"},
  {"batch_norm unknown key", function() return ai.batch_norm(X4(), nil, nil, nil, nil, {training = true, momentun = 0.1}) end,
   arg(6, "batch_norm", "unknown option 'momentun' (known: training, momentum, eps)")},
  {"batch_norm extra", function() return ai.batch_norm(X4(), nil, nil, nil, nil, {training = true}, 1) end, too_many(7, "batch_norm", 7, 6)},
  {"batch_norm stats number", function() return ai.batch_norm(X4(), 5) end, arg(2, "batch_norm", "tensor expected, got number")},
  {"group_norm 2.5", function() return ai.group_norm(X4(), 2.5) end, arg(2, "group_norm", "an integer expected, got 2.5")},
  {"group_norm 0", function() return ai.group_norm(X4(), 0) end, arg(2, "group_norm", "the number of groups must be a positive integer")},
  {"group_norm 2^32+1", function() return ai.group_norm(X4(), (1 << 32) + 1) end, arg(2, "group_norm", "the number of groups must be")},
  {"group_norm unknown key", function() return ai.group_norm(X4(), 1, nil, nil, {epsilon = 1}) end,
   arg(5, "group_norm", "unknown option 'epsilon' (known: eps)")},
  {"group_norm extra", function() return ai.group_norm(X4(), 1, nil, nil, {}, 1) end, too_many(6, "group_norm", 6, 5)},
  {"instance_norm unknown key", function() return ai.instance_norm(X4(), nil, nil, {affine = true}) end,
   arg(4, "instance_norm", "unknown option 'affine' (known: eps)")},
  {"instance_norm extra", function() return ai.instance_norm(X4(), nil, nil, {}, 1) end, too_many(5, "instance_norm", 5, 4)},
  {"layer_norm 2.5", function() return ai.layer_norm(X4(), 2.5) end, arg(2, "layer_norm", "an integer expected, got 2.5")},
  {"layer_norm item", function() return ai.layer_norm(X4(), {4, 4.5}) end,
   arg(2, "layer_norm", "normalized shape must be a size or a table of sizes (item 2 is a fraction)")},
  {"layer_norm unknown key", function() return ai.layer_norm(X4(), 4, nil, nil, {elementwise_affine = false}) end,
   arg(5, "layer_norm", "unknown option 'elementwise_affine' (known: eps)")},
  {"layer_norm extra", function() return ai.layer_norm(X4(), 4, nil, nil, {}, 1) end, too_many(6, "layer_norm", 6, 5)},
  {"softmax extra", function() return ai.softmax(X(), 1, 2) end, too_many(3, "softmax", 3, 2)},
  {"x:softmax extra", function() return X():softmax(1, 2) end, too_many(2, "softmax", 2, 1)},
  {"softmax dim 1.5", function() return ai.softmax(X(), 1.5) end, arg(2, "softmax", "number has no integer representation")},
  {"softmax dim nil", function() return ai.softmax(X()) end, arg(2, "softmax", "number expected, got no value")},
  {"softmax dim of a 0-dim tensor", function() return ai.softmax(ai.tensor(1), 5) end, arg(2, "softmax", "dimension 5 out of range")},
  {"log_softmax extra", function() return ai.log_softmax(X(), 2, 1) end, too_many(3, "log_softmax", 3, 2)},
  {"dropout extra", function() return ai.dropout(X(), 0.5, true, 1) end, too_many(4, "dropout", 4, 3)},
  {"dropout p 2", function() return ai.dropout(X(), 2) end, "dropout: p must be in [0, 1] (got 2)"},
  {"dropout training string", function() return ai.dropout(X(), 0.5, "no") end, arg(3, "dropout", "boolean expected, got string")},
  {"embedding extra", function() return ai.embedding(I({1}), ai.ones(3, 2), 1) end, too_many(3, "embedding", 3, 2)},
  {"embedding f32 indices", function() return ai.embedding(ai.ones(1), ai.ones(3, 2)) end, arg(1, "embedding", "indices must be an i64 tensor")},
  {"attention positional mask", function() return ai.scaled_dot_product_attention(X(), X(), X(), M()) end,
   arg(4, "scaled_dot_product_attention", "options table expected, got a tensor (pass the mask as {mask = m})")},
  {"attention unknown key", function() return ai.scaled_dot_product_attention(X(), X(), X(), {is_causal = true}) end,
   arg(4, "scaled_dot_product_attention", "unknown option 'is_causal' (known: mask)")},
  {"attention mask number", function() return ai.scaled_dot_product_attention(X(), X(), X(), {mask = 1}) end,
   arg(4, "scaled_dot_product_attention", "option 'mask' must be a tensor, got number")},
  {"bce_loss weight number", function() return ai.bce_loss(X():sigmoid(), M():float(), {weight = 5}) end,
   arg(3, "bce_loss", "option 'weight' must be a tensor, got number")},
  {"attention extra", function() return ai.scaled_dot_product_attention(X(), X(), X(), {}, 1) end,
   too_many(5, "scaled_dot_product_attention", 5, 4)},
  {"mse_loss unknown key", function() return ai.mse_loss(X(), X(), {reductio = "sum"}) end,
   arg(3, "mse_loss", "unknown option 'reductio' (known: reduction)")},
  {"mse_loss extra", function() return ai.mse_loss(X(), X(), {}, 1) end, too_many(4, "mse_loss", 4, 3)},
  {"mse_loss reduction", function() return ai.mse_loss(X(), X(), {reduction = "avg"}) end,
   arg(3, "mse_loss", "reduction must be 'mean', 'sum', 'none' or 'batchmean', got 'avg'")},
  {"mse_loss nil target", function() return ai.mse_loss(X()) end, arg(2, "mse_loss", "tensor expected, got no value")},
  {"l1_loss unknown key", function() return ai.l1_loss(X(), X(), {beta = 1}) end, arg(3, "l1_loss", "unknown option 'beta' (known: reduction)")},
  {"smooth_l1_loss unknown key", function() return ai.smooth_l1_loss(X(), X(), {delta = 1}) end,
   arg(3, "smooth_l1_loss", "unknown option 'delta' (known: beta, reduction)")},
  {"smooth_l1_loss beta < 0", function() return ai.smooth_l1_loss(X(), X(), {beta = -1}) end, "smooth_l1_loss: beta must be non-negative"},
  {"bce_loss pos_weight", function() return ai.bce_loss(X():sigmoid(), X():gt(0):float(), {pos_weight = ai.ones(3)}) end,
   arg(3, "bce_loss", "unknown option 'pos_weight' (known: weight, reduction)")},
  {"bce_with_logits weight", function() return ai.bce_with_logits(X(), X():gt(0):float(), {weight = ai.ones(3)}) end,
   arg(3, "bce_with_logits", "unknown option 'weight' (known: pos_weight, reduction)")},
  {"binary_cross_entropy extra", function() return ai.binary_cross_entropy(X():sigmoid(), X():gt(0):float(), {}, 1) end,
   too_many(4, "binary_cross_entropy", 4, 3)},
  {"cross_entropy ignore_index 2.5", function() return ai.cross_entropy(X(), I({1, 2}), {ignore_index = 2.5}) end,
   arg(3, "cross_entropy", "option 'ignore_index' must be an integer, got number")},
  {"cross_entropy unknown key", function() return ai.cross_entropy(X(), I({1, 2}), {label_smooth = 0.1}) end,
   arg(3, "cross_entropy", "unknown option 'label_smooth' (known: weight, ignore_index, label_smoothing, reduction)")},
  {"cross_entropy extra", function() return ai.cross_entropy(X(), I({1, 2}), {}, 1) end, too_many(4, "cross_entropy", 4, 3)},
  {"cross_entropy f32 target", function() return ai.cross_entropy(X(), ai.ones(2)) end, arg(2, "cross_entropy", "indices must be an i64 tensor")},
  {"cross_entropy label_smoothing 2", function() return ai.cross_entropy(X(), I({1, 2}), {label_smoothing = 2}) end,
   "cross_entropy: label_smoothing must be in [0, 1]"},
  {"nll_loss label_smoothing", function() return ai.nll_loss(X(), I({1, 2}), {label_smoothing = 0.1}) end,
   arg(3, "nll_loss", "unknown option 'label_smoothing' (known: weight, ignore_index, reduction)")},
  {"kl_div unknown key", function() return ai.kl_div(X(), X(), {log_targ = true}) end,
   arg(3, "kl_div", "unknown option 'log_targ' (known: reduction, log_target)")},
  {"kl_div extra", function() return ai.kl_div(X(), X(), {}, 1) end, too_many(4, "kl_div", 4, 3)},

  ---------------------------------------------------------------------------- l_autograd.c
  {"x:requires_grad_ string", function() return X():requires_grad_("yes") end, arg(1, "requires_grad_", "boolean expected, got string")},
  {"x:requires_grad_ extra", function() return X():requires_grad_(true, 1) end, too_many(2, "requires_grad_", 2, 1)},
  {"x:detach extra", function() return X():detach(1) end, too_many(1, "detach", 1, 0)},
  {"detach nil", function() return ai.detach() end, arg(1, "detach", "tensor expected, got no value")},
  {"backward unknown key", function() return X():requires_grad_():sum():backward({retain = true}) end,
   arg(1, "backward", "unknown option 'retain' (known: retain_graph, create_graph)")},
  {"backward extra", function() return X():requires_grad_():sum():backward(ai.tensor(1), {}, 1) end, too_many(3, "backward", 3, 2)},
  {"backward number", function() return X():requires_grad_():sum():backward(3) end,
   arg(1, "backward", "gradient tensor or options table expected")},
  {"grad unknown key", function() local x = X():requires_grad_() return ai.grad(x:sum(), x, {create = true}) end,
   arg(3, "grad", "unknown option 'create' (known: grad_outputs, retain_graph, create_graph, allow_unused)")},
  {"grad extra", function() local x = X():requires_grad_() return ai.grad(x:sum(), x, ai.tensor(1), {}, 1) end, too_many(5, "grad", 5, 4)},
  {"grad extra after inputs", function() local x = X():requires_grad_() return ai.grad(x:sum(), x, {}, 1) end, too_many(4, "grad", 4, 3)},
  {"grad grad_outputs twice", function()
    local x = X():requires_grad_()
    return ai.grad(x:sum(), x, ai.tensor(1), {grad_outputs = ai.tensor(1)})
  end, arg(4, "grad", "grad_outputs given twice")},
  {"grad inputs item", function() local x = X():requires_grad_() return ai.grad(x:sum(), {x, 3}) end,
   arg(2, "grad", "expected a list of tensors, item 2 is a number")},
  {"grad grad_outputs option item", function() local x = X():requires_grad_() return ai.grad(x:sum(), x, {grad_outputs = {3}}) end,
   arg(3, "grad", "expected a list of tensors, item 1 is a number")},
  {"set_grad_enabled extra", function() return ai.set_grad_enabled(true, 1) end, too_many(2, "set_grad_enabled", 2, 1)},
  {"set_grad_enabled nil", function() return ai.set_grad_enabled() end, arg(1, "set_grad_enabled", "boolean expected, got no value")},
  {"is_grad_enabled extra", function() return ai.is_grad_enabled(1) end, too_many(1, "is_grad_enabled", 1, 0)},
  {"no_grad number", function() return ai.no_grad(1) end, arg(1, "no_grad", "function expected, got number")},
  {"enable_grad nil", function() return ai.enable_grad() end, arg(1, "enable_grad", "function expected, got no value")},

  ---------------------------------------------------------------------------- l_io.c, l_json.c
  {"io.read_idx extra", function() return ai.io.read_idx(D .. "/x.idx", 1) end, too_many(2, "read_idx", 2, 1)},
  {"io.read_idx nil", function() return ai.io.read_idx() end, arg(1, "read_idx", "string expected, got no value")},
  {"io.write_idx extra", function() return ai.io.write_idx(D .. "/x.idx", ai.zeros(2, {dtype = "u8"}), 1) end, too_many(3, "write_idx", 3, 2)},
  {"io.load_png extra", function() return ai.io.load_png(D .. "/x.png", 1) end, too_many(2, "load_png", 2, 1)},
  {"io.save_png extra", function() return ai.io.save_png(D .. "/x.png", ai.zeros(2, 2), 1) end, too_many(3, "save_png", 3, 2)},
  {"io.save_png nil tensor", function() return ai.io.save_png(D .. "/x.png") end, arg(2, "save_png", "tensor expected, got no value")},
  {"io.png_bytes extra", function() return ai.io.png_bytes(ai.zeros(2, 2), 1) end, too_many(2, "png_bytes", 2, 1)},
  {"io.save_gif unknown key", function() return ai.io.save_gif(D .. "/x.gif", ai.zeros(2, 4, 4), {delai = 1}) end,
   arg(3, "save_gif", "unknown option 'delai' (known: delay)")},
  {"io.save_gif extra", function() return ai.io.save_gif(D .. "/x.gif", ai.zeros(2, 4, 4), {}, 1) end, too_many(4, "save_gif", 4, 3)},
  {"io.save_safetensors extra", function() return ai.io.save_safetensors(D .. "/x.st", {}, {}, 1) end, too_many(4, "save_safetensors", 4, 3)},
  {"io.load_safetensors extra", function() return ai.io.load_safetensors(D .. "/x.st", 1) end, too_many(2, "load_safetensors", 2, 1)},
  {"json.encode unknown key", function() return ai.json.encode({1}, {indnt = 2}) end,
   arg(2, "encode", "unknown option 'indnt' (known: indent, sort_keys)")},
  {"json.encode extra", function() return ai.json.encode({1}, {}, 1) end, too_many(3, "encode", 3, 2)},
  {"json.encode indent 20", function() return ai.json.encode({1}, {indent = 20}) end,
   arg(2, "encode", "option 'indent' must be a boolean or an integer 0..16, got 20")},
  {"json.encode indent 2.5", function() return ai.json.encode({1}, {indent = 2.5}) end,
   arg(2, "encode", "option 'indent' must be a boolean or an integer 0..16, got 2.5")},
  {"json.encode sort_keys string", function() return ai.json.encode({1}, {sort_keys = "no"}) end,
   arg(2, "encode", "option 'sort_keys' must be a boolean, got string")},
  {"json.encode nothing", function() return ai.json.encode() end, arg(1, "encode", "value expected")},
  {"json.decode extra", function() return ai.json.decode("1", 1) end, too_many(2, "decode", 2, 1)},
  {"json.decode nil", function() return ai.json.decode() end, arg(1, "decode", "string expected, got no value")},

  ---------------------------------------------------------------------------- l_dist.c, l_optim.c, l_data.c
  {"_dist.available extra", function() return ai._dist.available(1) end, too_many(1, "available", 1, 0)},
  {"_dist.cpus extra", function() return ai._dist.cpus(1) end, too_many(1, "cpus", 1, 0)},
  {"_dist.all_reduce extra", function() return ai._dist.all_reduce(X(), "sum", 1) end, too_many(3, "all_reduce", 3, 2)},
  {"_dist.all_reduce op", function() return ai._dist.all_reduce(X(), "prod") end, arg(2, "all_reduce", "invalid option 'prod'")},
  {"_dist.broadcast root 1.5", function() return ai._dist.broadcast(X(), 1.5) end, arg(2, "broadcast", "an integer expected, got 1.5")},
  {"_dist.broadcast extra", function() return ai._dist.broadcast(X(), 1, 1) end, too_many(3, "broadcast", 3, 2)},
  {"_dist.all_gather extra", function() return ai._dist.all_gather(X(), 1) end, too_many(2, "all_gather", 2, 1)},
  {"_dist.broadcast_string extra", function() return ai._dist.broadcast_string("s", 1, 1) end, too_many(3, "broadcast_string", 3, 2)},
  {"_dist.buckets size 1.5", function() return ai._dist.buckets({}, 1.5) end, arg(2, "buckets", "an integer expected, got 1.5")},
  {"_dist.buckets hooks string", function() return ai._dist.buckets({}, 100, "yes") end, arg(3, "buckets", "boolean expected, got string")},
  {"_dist.buckets extra", function() return ai._dist.buckets({}, 100, false, 1) end, too_many(4, "buckets", 4, 3)},
  {"_optim.adam_step unknown key", function() return ai._optim.adam_step(X(), X(), X(), X(), nil, {lr = 1, step = 1, betas = {0.9, 0.99}}) end,
   arg(6, "adam_step", "unknown option 'betas' (known: lr, beta1, beta2, eps, weight_decay, step, decoupled, maximize, amsgrad)")},
  {"_optim.adam_step extra", function() return ai._optim.adam_step(X(), X(), X(), X(), nil, {lr = 1, step = 1}, 1) end,
   too_many(7, "adam_step", 7, 6)},
  {"_optim.adam_step lr missing", function() return ai._optim.adam_step(X(), X(), X(), X(), nil, {step = 1}) end,
   "adam_step: option 'lr' must be a number, got nil"},
  {"_optim.sgd_step unknown key", function() return ai._optim.sgd_step(X(), X(), nil, {lr = 1, nesterov_momentum = 1}) end,
   arg(4, "sgd_step", "unknown option 'nesterov_momentum'")},
  {"_optim.sgd_step extra", function() return ai._optim.sgd_step(X(), X(), nil, {lr = 1}, 1) end, too_many(5, "sgd_step", 5, 4)},
  {"_optim.rmsprop_step unknown key", function() return ai._optim.rmsprop_step(X(), X(), X(), nil, nil, {lr = 1, centered = true}) end,
   arg(6, "rmsprop_step", "unknown option 'centered'")},
  {"_optim.adagrad_step unknown key", function() return ai._optim.adagrad_step(X(), X(), X(), {lr = 1, lr_decay = 0}) end,
   arg(4, "adagrad_step", "unknown option 'lr_decay' (known: lr, eps, weight_decay, maximize)")},
  {"_optim.lerp_ extra", function() return ai._optim.lerp_(X(), X(), 0.5, 1) end, too_many(4, "lerp_", 4, 3)},
  {"_optim.lerp_ nil weight", function() return ai._optim.lerp_(X(), X()) end, arg(3, "lerp_", "number expected, got no value")},
  {"_loader.new unknown key", function() return ai._loader.new(X(), nil, I({0, 1}), {batch_size = 1, batchsize = 2}) end,
   arg(4, "new", "unknown option 'batchsize'")},
  {"_loader.new extra", function() return ai._loader.new(X(), nil, I({0, 1}), {batch_size = 1}, 1) end, too_many(5, "new", 5, 4)},
  {"_loader.new batch_size 1.5", function() return ai._loader.new(X(), nil, I({0, 1}), {batch_size = 1.5}) end,
   arg(4, "new", "option 'batch_size' must be an integer, got number")},
  {"_loader.new prefetch 2^32+1", function() return ai._loader.new(X(), nil, I({0, 1}), {batch_size = 1, prefetch = (1 << 32) + 1}) end,
   "loader: prefetch must be 0..16, got 4294967297"},
  {"_loader.new aug unknown field", function()
    return ai._loader.new(X(), nil, I({0, 1}), {batch_size = 1, augs = {{kind = "hflip", prob = 1}}})
  end, "loader: augmentation 1 (hflip): unknown field 'prob' (known: kind, p)"},
  {"_loader.new hflip p 2", function()
    return ai._loader.new(X(), nil, I({0, 1}), {batch_size = 1, augs = {{kind = "hflip", p = 2}}})
  end, "loader: hflip 'p' must be in [0, 1], got 2"},
  {"_loader.new crop padding pair", function()
    return ai._loader.new(ai.zeros(2, 1, 4, 4), nil, I({0, 1}), {batch_size = 1, convert = true,
      augs = {{kind = "crop", size = {2, 2}, padding = {1, 2}}}})
  end, "loader: crop 'padding' must be a non-negative integer, got table"},
  {"_loader.new crop size 2.5", function()
    return ai._loader.new(ai.zeros(2, 1, 4, 4), nil, I({0, 1}), {batch_size = 1, convert = true,
      augs = {{kind = "crop", size = {2.5, 2}}}})
  end, "loader: crop 'size' must be a non-negative integer or a pair of them, got table"},
  {"_loader.new shift max 2^40", function()
    return ai._loader.new(ai.zeros(2, 1, 4, 4), nil, I({0, 1}), {batch_size = 1, convert = true,
      augs = {{kind = "shift", max = 1 << 40}}})
  end, "loader: shift 'max' must be a non-negative integer or a pair of them, got 1099511627776"},
  {"loader:next extra", function()
    local ld = ai._loader.new(X(), nil, I({0, 1}), {batch_size = 1, prefetch = 0})
    return ld:next(1)
  end, too_many(1, "next", 1, 0)},
  {"loader:sample_shape extra", function()
    local ld = ai._loader.new(X(), nil, I({0, 1}), {batch_size = 1, prefetch = 0})
    return ld:sample_shape(1)
  end, too_many(1, "sample_shape", 1, 0)},
  {"_loader.uniform extra", function() return ai._loader.uniform(1, 2, 3, 4, 5) end, too_many(5, "uniform", 5, 4)},
  {"_loader.uniform 1.5", function() return ai._loader.uniform(1, 2, 3, 1.5) end, arg(4, "uniform", "an integer expected, got 1.5")},
  {"_loader.isatty extra", function() return ai._loader.isatty(1, 2) end, too_many(2, "isatty", 2, 1)},
  {"_loader.isatty 1.5", function() return ai._loader.isatty(1.5) end, arg(1, "isatty", "an integer expected, got 1.5")},
  {"_loader.now extra", function() return ai._loader.now(1) end, too_many(1, "now", 1, 0)},
  {"_loader.wall extra", function() return ai._loader.wall(1) end, too_many(1, "wall", 1, 0)},
}

T.test("every misuse of a C binding is an error naming the function and the argument (" .. #ROWS .. " rows)", function()
  local failures = {}
  for _, r in ipairs(ROWS) do
    local ok, err = pcall(r[2])
    err = tostring(err)
    if ok then failures[#failures + 1] = r[1] .. ": the call succeeded; expected " .. r[3]
    elseif not err:find(r[3], 1, true) then failures[#failures + 1] = r[1] .. ": expected '" .. r[3] .. "', got: " .. err end
  end
  if #failures > 0 then error(#failures .. " of " .. #ROWS .. " rows:\n" .. table.concat(failures, "\n"), 0) end
  T.error_cases = (T.error_cases or 0) + #ROWS
end)

-- Lua's rule: a float with an exact integer value is that integer; trailing nils are left out.
T.test("whole-number floats are integers, trailing nils are left out: these calls work as before", function()
  local x, x4 = X(), X4()
  local function same(a, b, what) T.eq(a:tolist(), b:tolist(), what) end
  same(ai.split(ai.arange(6), 2.0)[2], ai.split(ai.arange(6), 2)[2], "split(x, 2.0)")
  same(ai.split(ai.arange(6), {2.0, 4.0})[2], ai.arange(2, 6), "split sizes 2.0, 4.0")
  T.eq(#ai.chunk(ai.arange(6), 3.0), 3, "chunk(x, 3.0)")
  same(ai.index_select(x, 1, {2.0}), ai.index_select(x, 1, {2}), "index_select {2.0}")
  same(ai.cat({x, x}, 2.0), ai.cat({x, x}, 2), "cat(.., 2.0)")
  same(ai.max_pool2d(x4, 2.0), ai.max_pool2d(x4, 2), "max_pool2d(x, 2.0)")
  same(ai.max_pool2d(x4, {2.0, 2.0}, {stride = 1.0}), ai.max_pool2d(x4, 2, {stride = 1}), "max_pool2d pairs of floats")
  same(ai.avg_pool2d(x4, 2, {padding = 1.0}), ai.avg_pool2d(x4, 2, {padding = 1}), "avg_pool2d padding 1.0")
  same(ai.conv2d(x4, W4(), {stride = 2.0, padding = {1.0, 1}}), ai.conv2d(x4, W4(), {stride = 2, padding = 1}), "conv2d stride 2.0")
  same(ai.conv2d(x4, ai.ones(2, 1, 3, 3), {groups = 2.0}), ai.conv2d(x4, ai.ones(2, 1, 3, 3), {groups = 2}), "groups 2.0")
  same(ai.adaptive_avg_pool2d(x4, 2.0), ai.adaptive_avg_pool2d(x4, 2), "adaptive_avg_pool2d 2.0")
  same(ai.upsample(x4, {size = 8.0}), ai.upsample(x4, {size = 8}), "upsample size 8.0")
  same(ai.pad(x4, {1.0, 1.0}), ai.pad(x4, {1, 1}), "pad {1.0, 1.0}")
  same(ai.group_norm(x4, 2.0), ai.group_norm(x4, 2), "group_norm(x, 2.0)")
  same(ai.layer_norm(x4, 4.0), ai.layer_norm(x4, 4), "layer_norm(x, 4.0)")
  same(ai.layer_norm(x4, {4.0, 4}), ai.layer_norm(x4, {4, 4}), "layer_norm(x, {4.0, 4})")
  same(ai.cross_entropy(x, I({1, 3}), {ignore_index = 3.0}), ai.cross_entropy(x, I({1, 3}), {ignore_index = 3}), "ignore_index 3.0")
  ai.manual_seed(5.0)
  local a = ai.rand(3)
  ai.manual_seed(5)
  same(a, ai.rand(3), "manual_seed(5.0)")
  same(ai.empty(4, {dtype = "i64"}):random_(1.0, 3.0):ge(1), ai.ones(4, {dtype = "u8"}), "random_(1.0, 3.0)")
  local n = ai.get_num_threads()
  ai.set_num_threads(1.0)
  T.eq(ai.get_num_threads(), 1)
  ai.set_num_threads(n)
  T.eq(ai.json.encode({a = 1}, {indent = 2.0}), ai.json.encode({a = 1}, {indent = 2}), "json indent 2.0")
  T.eq(ai._loader.uniform(1, 2, 3, 4.0), ai._loader.uniform(1, 2, 3, 4), "_loader.uniform k 4.0")
  T.eq(ai._loader.isatty(99.0), false)
  local ld = ai._loader.new(x, nil, I({0, 1}), {batch_size = 1.0, prefetch = 0.0})
  T.eq(#ld, 2, "batch_size 1.0")
  T.eq(#ai._loader.new(ai.zeros(2, 1, 4, 4), nil, I({0, 1}), {batch_size = 2, convert = true,
    augs = {{kind = "crop", size = {2.0, 2.0}, padding = 1.0}}}):next(), 2, "crop size {2.0, 2.0}")
  -- trailing nils are options left out
  same(ai.clamp(x, nil, nil), x, "clamp(x, nil, nil)")
  same(ai.conv2d(x4, W4(), nil, nil), ai.conv2d(x4, W4()), "conv2d(x, w, nil, nil)")
  same(ai.softmax(x, 2, nil), ai.softmax(x, 2), "softmax(x, 2, nil)")
  same(ai.dropout(x, 0.5, false, nil), x, "dropout(x, p, false, nil)")
  same(ai.softmax(ai.tensor(3), 1), ai.tensor(1), "softmax of a 0-dim tensor over dim 1")
  -- a dropout with training nil is training, as with it left out
  ai.manual_seed(1)
  local d1 = ai.dropout(ai.ones(100), 0.5, nil)
  ai.manual_seed(1)
  same(d1, ai.dropout(ai.ones(100), 0.5), "dropout(x, p, nil) trains")
  T.eq(X():requires_grad_(nil).requires_grad, true, "requires_grad_(nil) is requires_grad_()")
end)

T.test("numbers written into integer tensors stay exact", function()
  local big = (1 << 62) + 1
  local r = ai.scatter(ai.zeros(1, 2, {dtype = "i64"}), 2, I({{2}}), big)
  T.eq(r:tolist(), {{0, big}}, "scatter of a Lua integer")
  r = ai.scatter(ai.zeros(1, 2, {dtype = "i64"}), 2, I({{1}}), I({{big}}))
  T.eq(r:tolist(), {{big, 0}}, "scatter of an i64 tensor")
  T.eq(ai.scatter_add(I({{1, 1}}), 2, I({{1}}), 2.0):tolist(), {{3, 1}}, "scatter_add of 2.0 into i64")
  T.eq(ai.masked_fill(I({1, 2, 3}), ai.tensor({true, false, true}), 7.0):tolist(), {7, 2, 7}, "masked_fill of 7.0 into i64")
end)
