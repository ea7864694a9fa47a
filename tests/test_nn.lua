-- tests/test_nn.lua: ai.nn: the Module base class, each layer against hand-computed values,
-- state dicts, initialisation, the functional extras and the reference models' architectures.
local T = require "helper"
local ai = require "aiart"
local nn = ai.nn
local F = ai.F

local function t64(v) return ai.tensor(v, {dtype = "f64"}) end

-- Sets a module's parameter to the given values (under no_grad).
local function set(p, v) ai.no_grad(function() p:copy_(ai.tensor(v, {dtype = p.dtype})) end) end

----------------------------------------------------------------------------------- the Module

T.test("Module: extend, construct, forward, automatic registration in assignment order", function()
  local Block = nn.Module:extend("Block")
  function Block:init(c)
    self.conv = nn.Conv2d(c, c, 3, {padding = 1})
    self.scale = nn.Parameter(ai.ones(c))
    self:buffer("count", ai.zeros(1))
    self.norm = nn.GroupNorm(1, c)
    self.note = "plain field"
  end
  function Block:forward(x) return self.norm(self.conv(x)) * self.scale:view(1, -1, 1, 1) end
  local b = Block(4)
  T.eq(b.note, "plain field")
  local names = {}
  for name in b:named_parameters() do names[#names + 1] = name end
  T.eq(names, {"scale", "conv.weight", "conv.bias", "norm.weight", "norm.bias"})
  local bufs = {}
  for name in b:named_buffers() do bufs[#bufs + 1] = name end
  T.eq(bufs, {"count"})
  T.eq(#b:children(), 2)
  T.ok(b:children()[1] == b.conv)
  local mods = {}
  for name in b:named_modules() do mods[#mods + 1] = name end
  T.eq(mods, {"", "conv", "norm"})
  T.eq(b:num_parameters(), 4 + (4 * 4 * 9 + 4) + 8)
  T.eq(b(ai.randn(2, 4, 5, 5)).shape, {2, 4, 5, 5})
  T.ok(nn.isinstance(b, Block) and nn.isinstance(b, nn.Module) and not nn.isinstance(b, nn.Linear))
  T.ok(nn.is_module(b) and not nn.is_module(Block) and not nn.is_module({}))
end)

T.test("Module: subclass of a layer, reassignment, removal and misuse errors", function()
  local Scaled = nn.Linear:extend("ScaledLinear")
  function Scaled:init(i, o) nn.Linear.init(self, i, o); self.gain = 2 end
  function Scaled:forward(x) return nn.Linear.forward(self, x) * self.gain end
  local s = Scaled(3, 2)
  T.eq(s:num_parameters(), 8)
  local x = ai.randn(4, 3)
  T.near(s(x), F.linear(x, s.weight, s.bias) * 2, 1e-6)
  T.ok(tostring(s):find("^ScaledLinear%(in_features=3"))
  -- replacing a parameter with a new one keeps its place; nil removes it from the lists
  s.weight = nn.Parameter(ai.zeros(2, 3))
  local names = {}
  for n in s:named_parameters() do names[#names + 1] = n end
  T.eq(names, {"weight", "bias"})
  s.bias = nil
  T.eq(#s:parameters(), 1)
  T.expect_error("cannot assign a plain tensor to parameter 'weight'", function() s.weight = ai.zeros(2, 3) end)
  -- a table literal of modules is walked as a ModuleList would be (tests/test_strict_lua.lua)
  s.blocks = {nn.Linear(1, 1)}
  T.eq(s:state_dict_keys(), {"weight", "blocks.0.weight", "blocks.0.bias"})
  local Bare = nn.Module:extend("Bare")
  T.expect_error("Bare: no forward method", function() Bare()(1) end)
  T.expect_error("buffer 'b' must be a tensor or nil", function() Bare():buffer("b", 3) end)
end)

T.test("Module: shared submodules and parameters are listed once", function()
  local lin = nn.Linear(2, 2)
  local net = nn.Sequential(lin, nn.ReLU(), lin)
  T.eq(#net:parameters(), 2)
  T.eq(net:num_parameters(), 6)
  local keys = net:state_dict_keys()
  T.eq(keys, {"0.weight", "0.bias"}) -- the module walk visits a shared module once
end)

T.test("Module: train/eval propagate, zero_grad, apply, requires_grad_", function()
  local net = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Sequential(nn.BatchNorm1d(4)))
  T.ok(net.training and net[2].training and net[3][1].training)
  net:eval()
  T.ok(not net.training and not net[2].training and not net[3][1].training)
  net:train()
  T.ok(net[3][1].training)
  net(ai.randn(5, 3)):sum():backward()
  T.ok(net[1].weight.grad ~= nil)
  net:zero_grad()
  T.ok(net[1].weight.grad == nil and net[3][1].weight.grad == nil)
  local visited = {}
  net:apply(function(m) visited[#visited + 1] = getmetatable(m).__name end)
  T.eq(visited, {"Linear", "Dropout", "BatchNorm1d", "Sequential", "Sequential"})
  net:requires_grad_(false)
  T.ok(not net[1].weight.requires_grad)
  T.eq(net:num_parameters({trainable = true}), 0)
end)

T.test("Module: printing matches PyTorch's layout", function()
  local Block = nn.Module:extend("Block")
  function Block:init() self.fc = nn.Linear(4, 4, {bias = false}); self.act = nn.SiLU() end
  local net = nn.Sequential(nn.Linear(100, 128), nn.LeakyReLU(0.2), Block(), nn.BatchNorm1d(128))
  T.eq(tostring(net), table.concat({
    "Sequential(",
    "  (0): Linear(in_features=100, out_features=128, bias=true)",
    "  (1): LeakyReLU(negative_slope=0.2)",
    "  (2): Block(",
    "    (fc): Linear(in_features=4, out_features=4, bias=false)",
    "    (act): SiLU()",
    "  )",
    "  (3): BatchNorm1d(128, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)",
    ")"}, "\n"))
  T.eq(tostring(nn.Conv2d(1, 64, 4, {stride = 2, padding = 1, bias = false})),
    "Conv2d(1, 64, kernel_size={4, 4}, stride={2, 2}, padding={1, 1}, bias=false)")
  T.eq(tostring(nn.ConvTranspose2d(8, 4, 3, {stride = 2, output_padding = 1, groups = 2})),
    "ConvTranspose2d(8, 4, kernel_size={3, 3}, stride={2, 2}, output_padding={1, 1}, groups=2)")
  T.eq(tostring(nn.Softmax(2)), "Softmax(dim=2)")
  T.eq(tostring(nn.GroupNorm(8, 32)), "GroupNorm(8, 32, eps=1e-05, affine=true)")
end)

T.test("Module: to(dtype), double(), float() convert parameters and floating buffers", function()
  local net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
  local w = net[1].weight:clone()
  net:double()
  T.eq(net[1].weight.dtype, "f64")
  T.eq(net[2].running_mean.dtype, "f64")
  T.eq(net[2].num_batches_tracked.dtype, "i64")
  T.ok(net[1].weight.requires_grad and nn.is_parameter(net[1].weight))
  T.near(net[1].weight, w, 1e-7)
  T.eq(net(ai.randn(4, 2, {dtype = "f64"})).dtype, "f64")
  net:float()
  T.eq(net[2].weight.dtype, "f32")
  -- tied weights stay tied
  local a, b = nn.Linear(2, 2), nn.Linear(2, 2)
  b.weight = a.weight
  local tied = nn.Sequential(a, nn.Tanh(), b):to("double")
  T.ok(rawequal(tied[1].weight, tied[3].weight) and tied[1].weight.dtype == "f64")
  T.eq(#tied:parameters(), 3)
  T.expect_error("Sequential:to: dtype must be 'f32' or 'f64' (or float, double, float32, float64), got 'i64'",
    function() tied:to("i64") end)
end)

--------------------------------------------------------------------------------- containers

T.test("Sequential: PyTorch names 0, 1, ...; 1-based Lua indexing; append", function()
  local a, b = nn.Linear(2, 3), nn.ReLU()
  local seq = nn.Sequential(a, b)
  T.ok(seq[1] == a and seq[2] == b and seq[-1] == b and seq[3] == nil)
  T.eq(#seq, 2)
  local n = 0
  for i, m in ipairs(seq) do n = n + 1; T.ok(m == seq[i]) end
  T.eq(n, 2)
  seq:append(nn.Linear(3, 1))
  T.eq(seq:state_dict_keys(), {"0.weight", "0.bias", "2.weight", "2.bias"})
  T.eq(nn.Sequential({nn.Identity(), nn.Identity()}):num_parameters(), 0)
  local x = ai.randn(4, 2)
  T.near(seq(x), seq[3](ai.relu(seq[1](x))), 1e-6)
  T.expect_error("Sequential: item 2 is a number", function() nn.Sequential(nn.ReLU(), 3) end)
end)

T.test("ModuleList and ModuleDict: registration, order, access", function()
  local Net = nn.Module:extend("Net")
  function Net:init()
    self.layers = nn.ModuleList({nn.Linear(2, 2), nn.Linear(2, 2)})
    self.layers:append(nn.Linear(2, 1))
    self.heads = nn.ModuleDict({{"b", nn.Linear(1, 1)}, {"a", nn.Linear(1, 2)}})
  end
  function Net:forward(x)
    for _, l in ipairs(self.layers) do x = l(x) end
    return self.heads.a(x)
  end
  local net = Net()
  T.eq(net:state_dict_keys(), {"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
    "layers.2.weight", "layers.2.bias", "heads.b.weight", "heads.b.bias", "heads.a.weight", "heads.a.bias"})
  T.eq(net(ai.randn(3, 2)).shape, {3, 2})
  T.eq(#net.layers, 3)
  T.eq(net.heads:keys(), {"b", "a"})
  T.ok(net.heads:contains("a") and not net.heads:contains("c"))
  T.eq(nn.ModuleDict({z = nn.ReLU(), y = nn.Tanh()}):keys(), {"y", "z"}) -- a map is sorted by name
  T.expect_error("ModuleList: has no forward", function() net.layers(1) end)
end)

--------------------------------------------------------------------------------- state dicts

T.test("state_dict: keys, round trip, copies not aliases", function()
  ai.manual_seed(1)
  local function make() return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)) end
  local a, b = make(), make()
  a:train()
  a(ai.randn(2, 1, 6, 6)) -- moves a's running statistics
  a:eval(); b:eval()
  local sd = a:state_dict()
  local keys = {}
  for k in pairs(sd) do keys[#keys + 1] = k end
  table.sort(keys)
  T.eq(keys, {"0.bias", "0.weight", "1.bias", "1.num_batches_tracked", "1.running_mean", "1.running_var",
    "1.weight", "4.bias", "4.weight"})
  T.eq(a:state_dict_keys(), {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
    "1.num_batches_tracked", "4.weight", "4.bias"})
  T.ok(not sd["0.weight"].requires_grad)
  local res = b:load_state_dict(sd)
  T.eq(res.missing_keys, {})
  T.eq(res.unexpected_keys, {})
  local x = ai.randn(3, 1, 6, 6)
  T.near(b(x), a(x), 1e-6)
  T.eq(b[2].num_batches_tracked:item(), 1)
  -- loaded values are copies: changing b leaves a alone
  ai.no_grad(function() b[1].weight:fill_(0) end)
  T.ok(a[1].weight:abs():sum():item() > 0)
end)

T.test("load_state_dict: strict errors name the keys; non-strict returns them; shapes always checked", function()
  local net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
  local sd = net:state_dict()
  sd["1.bias"] = nil
  sd["extra.weight"] = ai.zeros(1)
  local err = T.expect_error("missing keys: \"1.bias\"", function() net:load_state_dict(sd) end)
  T.ok(err:find("unexpected keys: \"extra.weight\"", 1, true), err)
  local res = net:load_state_dict(sd, {strict = false})
  T.eq(res.missing_keys, {"1.bias"})
  T.eq(res.unexpected_keys, {"extra.weight"})
  local bad = net:state_dict()
  bad["0.weight"] = ai.zeros(2, 3)
  T.expect_error("size mismatch for \"0.weight\": the state dict has 2x3, the module has 3x2",
    function() net:load_state_dict(bad, {strict = false}) end)
  bad["0.weight"] = 5
  T.expect_error("value for \"0.weight\" is a number", function() net:load_state_dict(bad) end)
  -- dtype conversion on load
  local d = nn.Linear(2, 3):double()
  d:load_state_dict(net[1]:state_dict())
  T.near(d.weight, net[1].weight, 1e-7)
end)

--------------------------------------------------------------------------------- layers

T.test("Linear: values, shapes and PyTorch's default initialisation bounds", function()
  local l = nn.Linear(3, 2, {dtype = "f64"})
  set(l.weight, {{1, 2, 3}, {-1, 0, 1}})
  set(l.bias, {0.5, -0.5})
  T.near(l(t64({{1, 1, 1}, {0, 1, 2}})), {{6.5, -0.5}, {8.5, 1.5}}, 1e-12)
  T.eq(l(ai.randn(4, 5, 3, {dtype = "f64"})).shape, {4, 5, 2})
  ai.manual_seed(0)
  local big = nn.Linear(400, 300)
  local bound = 1 / math.sqrt(400)
  T.ok(big.weight:abs():max():item() <= bound)
  T.ok(big.weight:abs():max():item() > 0.95 * bound)
  T.near(big.weight:std():item(), bound / math.sqrt(3), 0.02) -- U(-b, b) has std b / sqrt(3)
  T.ok(big.bias:abs():max():item() <= bound)
  T.eq(nn.Linear(3, 2, {bias = false}):num_parameters(), 6)
  T.expect_error("Linear: in_features must be a positive integer, got -1", function() nn.Linear(-1, 2) end)
  T.expect_error("Linear: unknown option 'bais'", function() nn.Linear(1, 2, {bais = false}) end)
end)

T.test("Conv2d: values by hand, output shapes, 'same' padding, padding modes", function()
  local c = nn.Conv2d(1, 1, 2, {dtype = "f64"})
  set(c.weight, {{{{1, 1}, {1, 1}}}})
  set(c.bias, {0.5})
  local x = ai.arange(1, 10):double():view(1, 1, 3, 3) -- 1..9
  T.near(c(x), {{{{12.5, 16.5}, {24.5, 28.5}}}}, 1e-12)
  local c2 = nn.Conv2d(4, 6, 3, {stride = 2, padding = 1, dilation = 1, groups = 2})
  T.eq(c2.weight.shape, {6, 2, 3, 3})
  T.eq(c2(ai.randn(2, 4, 9, 7)).shape, {2, 6, 5, 4})
  T.eq(nn.Conv2d(1, 1, {3, 1}, {dilation = 2})(ai.randn(1, 1, 9, 9)).shape, {1, 1, 5, 9})
  T.eq(nn.Conv2d(2, 3, 3, {padding = "same"})(ai.randn(1, 2, 6, 5)).shape, {1, 3, 6, 5})
  T.eq(nn.Conv2d(2, 3, 4, {padding = "same"})(ai.randn(1, 2, 6, 5)).shape, {1, 3, 6, 5})
  T.eq(nn.Conv2d(2, 3, 3, {padding = "valid"})(ai.randn(1, 2, 6, 5)).shape, {1, 3, 4, 3})
  -- reflect padding: a 1x1 identity kernel shows the padded input
  local r = nn.Conv2d(1, 1, 3, {padding = 1, padding_mode = "replicate", bias = false, dtype = "f64"})
  set(r.weight, {{{{0, 0, 0}, {0, 0, 0}, {0, 0, 1}}}}) -- picks the lower-right neighbour
  T.near(r(x), {{{{5, 6, 6}, {8, 9, 9}, {8, 9, 9}}}}, 1e-12)
  T.expect_error("Conv2d: in_channels (3) and out_channels (4) must be divisible by groups (2)",
    function() nn.Conv2d(3, 4, 3, {groups = 2}) end)
  T.expect_error("Conv2d: padding 'same' needs stride 1", function() nn.Conv2d(1, 1, 3, {padding = "same", stride = 2}) end)
  T.expect_error("Conv2d: unknown option 'output_padding'", function() nn.Conv2d(1, 1, 3, {output_padding = 1}) end)
end)

T.test("ConvTranspose2d: values by hand, shapes, fan_in from weight dim 2", function()
  local c = nn.ConvTranspose2d(1, 1, 2, {stride = 2, dtype = "f64"})
  set(c.weight, {{{{1, 1}, {1, 1}}}})
  set(c.bias, {0})
  T.near(c(t64({{{{1, 2}, {3, 4}}}})), {{{{1, 1, 2, 2}, {1, 1, 2, 2}, {3, 3, 4, 4}, {3, 3, 4, 4}}}}, 1e-12)
  local up = nn.ConvTranspose2d(128, 64, 4, {stride = 2, padding = 1})
  T.eq(up.weight.shape, {128, 64, 4, 4})
  T.eq(up(ai.randn(2, 128, 7, 7)).shape, {2, 64, 14, 14})
  T.eq(nn.ConvTranspose2d(2, 2, 3, {stride = 2, output_padding = 1})(ai.randn(1, 2, 4, 4)).shape, {1, 2, 10, 10})
  -- PyTorch computes fan_in = weight:size(2) * kh * kw = 1 * 16 here (not 64 * 16)
  ai.manual_seed(3)
  local t = nn.ConvTranspose2d(64, 1, 4)
  local bound = 1 / math.sqrt(16)
  T.ok(t.weight:abs():max():item() <= bound and t.weight:abs():max():item() > 0.9 * bound)
  T.ok(t.bias:abs():max():item() <= bound)
end)

T.test("BatchNorm2d: training normalises and updates running stats; eval uses them", function()
  local bn = nn.BatchNorm2d(2, {dtype = "f64"})
  local x = t64({{{{1, 2}, {3, 4}}, {{0, 0}, {0, 8}}}, {{{5, 6}, {7, 8}}, {{2, 2}, {2, 2}}}})
  local y = bn(x)
  -- channel 1 holds 1..8: mean 4.5, biased var 5.25, unbiased 6
  local c1 = {}
  for i, v in ipairs({1, 2, 3, 4, 5, 6, 7, 8}) do c1[i] = (v - 4.5) / math.sqrt(5.25 + 1e-5) end
  T.near(y:select(2, 1), {{{c1[1], c1[2]}, {c1[3], c1[4]}}, {{c1[5], c1[6]}, {c1[7], c1[8]}}}, 1e-9)
  -- channel 2 holds 0,0,0,8,2,2,2,2: mean 2, unbiased var (4*3 + 36 + 0) / 7
  T.near(bn.running_mean, {0.1 * 4.5, 0.1 * 2}, 1e-12)
  T.near(bn.running_var, {0.9 + 0.1 * 6, 0.9 + 0.1 * 48 / 7}, 1e-12)
  T.eq(bn.num_batches_tracked:item(), 1)
  bn:eval()
  local ye = bn(x)
  T.near(ye:select(2, 1):select(1, 1), (t64({{1, 2}, {3, 4}}) - 0.45) / math.sqrt(1.5 + 1e-5), 1e-9)
  T.eq(bn.num_batches_tracked:item(), 1) -- evaluation changes nothing
  -- affine parameters
  bn:train()
  set(bn.weight, {2, 3}); set(bn.bias, {1, -1})
  local y2 = bn(x)
  T.near(y2:select(2, 1), y:select(2, 1) * 2 + 1, 1e-9)
  T.expect_error("BatchNorm2d: expected 4-D (N, C, H, W) input, got a 2-D tensor", function() bn(ai.randn(3, 2)) end)
  T.expect_error("BatchNorm2d: expected 2 channels (dim 2 of the input), got 3", function() bn(ai.randn(2, 3, 2, 2)) end)
end)

T.test("BatchNorm1d: 2-D and 3-D inputs, cumulative average, no running stats", function()
  local bn = nn.BatchNorm1d(3, {momentum = false, dtype = "f64"})
  local a, b = ai.randn(8, 3, {dtype = "f64"}), ai.randn(8, 3, {dtype = "f64"})
  bn(a); bn(b)
  -- momentum=false: the running mean is the plain average of the batch means
  T.near(bn.running_mean, (a:mean(1, {keepdim = false}) + b:mean(1, {keepdim = false})) / 2, 1e-9)
  T.eq(bn(ai.randn(4, 3, 5, {dtype = "f64"})).shape, {4, 3, 5})
  local free = nn.BatchNorm1d(3, {track_running_stats = false, affine = false})
  T.eq(free:num_parameters(), 0)
  T.eq(#free:buffers(), 0)
  free:eval() -- without running stats, evaluation normalises with the batch statistics
  local y = free(ai.randn(16, 3))
  T.near(y:mean(1), {{0, 0, 0}}, 1e-5)
end)

T.test("GroupNorm, LayerNorm, InstanceNorm2d against direct computation", function()
  local x = ai.randn(2, 4, 3, 3, {dtype = "f64"})
  local gn = nn.GroupNorm(2, 4, {dtype = "f64"})
  set(gn.weight, {1, 2, 3, 4}); set(gn.bias, {0, 1, 0, 1})
  local g = x:view(2, 2, 18)
  local ref = ((g - g:mean(3)) / (g:var(3, {unbiased = false}) + 1e-5):sqrt()):view(2, 4, 3, 3)
  ref = ref * t64({1, 2, 3, 4}):view(1, 4, 1, 1) + t64({0, 1, 0, 1}):view(1, 4, 1, 1)
  T.near(gn(x), ref, 1e-9)
  local ln = nn.LayerNorm({3, 3}, {dtype = "f64"})
  local r = x:view(2, 4, 9)
  T.near(ln(x), ((r - r:mean(3)) / (r:var(3, {unbiased = false}) + 1e-5):sqrt()):view(2, 4, 3, 3), 1e-9)
  T.eq(ln.weight.shape, {3, 3})
  T.eq(nn.LayerNorm(5)(ai.randn(2, 5)).shape, {2, 5})
  local inorm = nn.InstanceNorm2d(4, {dtype = "f64"})
  T.eq(inorm:num_parameters(), 0)
  T.near(inorm(x), ((r - r:mean(3)) / (r:var(3, {unbiased = false}) + 1e-5):sqrt()):view(2, 4, 3, 3), 1e-9)
  T.expect_error("GroupNorm: num_channels (6) must be divisible by num_groups (4)", function() nn.GroupNorm(4, 6) end)
  T.expect_error("InstanceNorm2d: track_running_stats=true is not supported",
    function() nn.InstanceNorm2d(3, {track_running_stats = true}) end)
end)

T.test("Embedding: lookup with 1-based indices, padding_idx row zero and frozen", function()
  local e = nn.Embedding(4, 2, {padding_idx = 2})
  T.near(e.weight[2], {0, 0})
  set(e.weight, {{1, 2}, {0, 0}, {5, 6}, {7, 8}})
  local idx = ai.tensor({{1, 2}, {4, 3}}, {dtype = "i64"})
  local y = e(idx)
  T.near(y, {{{1, 2}, {0, 0}}, {{7, 8}, {5, 6}}})
  y:sum():backward()
  T.near(e.weight.grad, {{1, 1}, {0, 0}, {1, 1}, {1, 1}})
  T.eq(nn.Embedding(10, 3, {padding_idx = -1}).padding_idx, 10)
  local pre = nn.Embedding.from_pretrained(ai.eye(3))
  T.ok(not pre.weight.requires_grad)
  T.near(pre(ai.tensor({3}, {dtype = "i64"})), {{0, 0, 1}})
  ai.manual_seed(5)
  T.near(nn.Embedding(1000, 10).weight:std():item(), 1, 0.05) -- N(0, 1)
end)

T.test("Dropout: identity in eval, zeros about p and rescales in training", function()
  local d = nn.Dropout(0.25)
  local x = ai.ones(20000)
  local y = d(x)
  local zeros = y:eq(0):sum():item() / 20000
  T.near(zeros, 0.25, 0.02)
  T.near(y:max():item(), 1 / 0.75, 1e-6)
  d:eval()
  T.near(d(x), x)
  T.eq(nn.Dropout{p = 0.1}.p, 0.1)
  T.expect_error("Dropout: p must be a number in [0, 1], got 2", function() nn.Dropout(2) end)
end)

T.test("Pooling, upsampling and padding layers: values by hand", function()
  local x = ai.arange(1, 17):double():view(1, 1, 4, 4) -- rows 1-4, 5-8, 9-12, 13-16
  T.near(nn.MaxPool2d(2)(x), {{{{6, 8}, {14, 16}}}})
  T.near(nn.MaxPool2d(3, {stride = 1})(x), {{{{11, 12}, {15, 16}}}})
  T.near(nn.AvgPool2d(2)(x), {{{{3.5, 5.5}, {11.5, 13.5}}}})
  T.near(nn.AvgPool2d(2, {stride = 2, padding = 1, count_include_pad = false})(x), {{{{1, 2.5, 4}, {7, 8.5, 10}, {13, 14.5, 16}}}})
  T.near(nn.AdaptiveAvgPool2d(1)(x), {{{{8.5}}}})
  T.near(nn.AdaptiveAvgPool2d({2, 1})(x), {{{{4.5}, {12.5}}}})
  local s = t64({{{{1, 2}, {3, 4}}}})
  T.near(nn.Upsample{scale_factor = 2}(s), {{{{1, 1, 2, 2}, {1, 1, 2, 2}, {3, 3, 4, 4}, {3, 3, 4, 4}}}})
  T.near(nn.Upsample{size = {3, 3}, mode = "bilinear", align_corners = true}(s),
    {{{{1, 1.5, 2}, {2, 2.5, 3}, {3, 3.5, 4}}}})
  T.near(nn.ZeroPad2d({1, 0, 0, 1})(s), {{{{0, 1, 2}, {0, 3, 4}, {0, 0, 0}}}})
  T.near(nn.ReflectionPad2d(1)(s):select(3, 1), {{{4, 3, 4, 3}}})
  T.near(nn.ReplicationPad2d({1, 1, 0, 0})(s), {{{{1, 1, 2, 2}, {3, 3, 4, 4}}}})
  T.expect_error("Upsample: give size or scale_factor", function() nn.Upsample{} end)
end)

T.test("Flatten, Unflatten, Identity", function()
  local x = ai.randn(2, 3, 4, 5)
  T.eq(nn.Flatten()(x).shape, {2, 60})
  T.eq(nn.Flatten(1, -1)(x).shape, {120})
  T.eq(nn.Flatten{start_dim = 3}(x).shape, {2, 3, 20})
  T.eq(nn.Unflatten(2, {128, 7, 7})(ai.randn(4, 128 * 49)).shape, {4, 128, 7, 7})
  T.eq(nn.Unflatten(-1, {2, 2})(ai.randn(3, 4)).shape, {3, 2, 2})
  T.ok(nn.Identity(54, "ignored")(x) == x)
end)

T.test("Activations: values at chosen points", function()
  local x = t64({-2, -0.5, 0, 1, 3})
  local function each(f) local out = {}; for i, v in ipairs({-2, -0.5, 0, 1, 3}) do out[i] = f(v) end; return out end
  local function sig(v) return 1 / (1 + math.exp(-v)) end
  T.near(nn.ReLU()(x), each(function(v) return math.max(v, 0) end))
  T.near(nn.LeakyReLU(0.2)(x), each(function(v) return v > 0 and v or 0.2 * v end), 1e-12)
  T.near(nn.LeakyReLU()(x), each(function(v) return v > 0 and v or 0.01 * v end), 1e-12)
  T.near(nn.SiLU()(x), each(function(v) return v * sig(v) end), 1e-12)
  T.near(nn.Sigmoid()(x), each(sig), 1e-12)
  T.near(nn.Tanh()(x), each(math.tanh), 1e-12)
  T.near(nn.Softplus()(x), each(function(v) return math.log(1 + math.exp(v)) end), 1e-12)
  T.near(nn.Softplus(2)(x), each(function(v) return math.log(1 + math.exp(2 * v)) / 2 end), 1e-12)
  T.near(nn.ELU()(x), each(function(v) return v > 0 and v or math.exp(v) - 1 end), 1e-12)
  -- exact GELU: x * Phi(x); Phi(1) = 0.841344746068543, Phi(-0.5) = 0.308537538725987
  T.near(nn.GELU()(t64({1, -0.5})), {0.841344746068543, -0.5 * 0.308537538725987}, 1e-7)
  local function gelu_tanh(v) return 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ^ 3))) end
  T.near(nn.GELU("tanh")(x), each(gelu_tanh), 1e-12)
  local m = t64({{1, 2, 3}, {0, 0, 0}})
  local e = {math.exp(1), math.exp(2), math.exp(3)}
  local s = e[1] + e[2] + e[3]
  T.near(nn.Softmax(2)(m), {{e[1] / s, e[2] / s, e[3] / s}, {1 / 3, 1 / 3, 1 / 3}}, 1e-12)
  T.near(nn.LogSoftmax(-1)(m), {{1 - math.log(s), 2 - math.log(s), 3 - math.log(s)}, {-math.log(3), -math.log(3), -math.log(3)}}, 1e-12)
  T.near(nn.Softmax(1)(m):sum(1), {{1, 1, 1}}, 1e-12)
  T.expect_error("Softmax: give the dim", function() nn.Softmax() end)
end)

T.test("Losses: each against a hand computation", function()
  local x, y = t64({{0.5, -1}, {2, 0}}), t64({{1, -1}, {0, 0.5}})
  T.near(nn.MSELoss()(x, y), (0.25 + 0 + 4 + 0.25) / 4, 1e-12)
  T.near(nn.MSELoss{reduction = "sum"}(x, y), 4.5, 1e-12)
  T.near(nn.MSELoss{reduction = "none"}(x, y), {{0.25, 0}, {4, 0.25}}, 1e-12)
  T.near(nn.L1Loss()(x, y), (0.5 + 0 + 2 + 0.5) / 4, 1e-12)
  -- smooth L1 with beta 1: 0.5 d^2 below 1, |d| - 0.5 above
  T.near(nn.SmoothL1Loss()(x, y), (0.125 + 0 + 1.5 + 0.125) / 4, 1e-12)
  T.near(nn.SmoothL1Loss{beta = 4}(x, y), (0.5 * 0.25 / 4 + 0 + 0.5 * 4 / 4 + 0.5 * 0.25 / 4) / 4, 1e-12)
  T.near(nn.HuberLoss{delta = 1}(x, y), (0.125 + 0 + 1.5 + 0.125) / 4, 1e-12)
  local p, t = t64({0.9, 0.2}), t64({1, 0})
  local bce = -(math.log(0.9) + math.log(0.8)) / 2
  T.near(nn.BCELoss()(p, t), bce, 1e-12)
  T.near(nn.BCELoss{weight = t64({2, 1})}(p, t), -(2 * math.log(0.9) + math.log(0.8)) / 2, 1e-12)
  local z = t64({2, -1})
  local function sp(v) return math.log(1 + math.exp(v)) end -- -log sigmoid(-v)
  T.near(nn.BCEWithLogitsLoss()(z, t), (sp(-2) + sp(-1)) / 2, 1e-12)
  T.near(nn.BCEWithLogitsLoss{pos_weight = t64({3})}(z, t), (3 * sp(-2) + sp(-1)) / 2, 1e-12)
  T.near(nn.BCEWithLogitsLoss{weight = t64({2, 1}), reduction = "sum"}(z, t), 2 * sp(-2) + sp(-1), 1e-12)
  -- cross entropy on logits {1, 2, 3} with 1-based targets 3 and 1
  local logits = t64({{1, 2, 3}, {1, 2, 3}})
  local target = ai.tensor({3, 1}, {dtype = "i64"})
  local lse = math.log(math.exp(1) + math.exp(2) + math.exp(3))
  T.near(nn.CrossEntropyLoss()(logits, target), ((lse - 3) + (lse - 1)) / 2, 1e-12)
  T.near(nn.CrossEntropyLoss{reduction = "none"}(logits, target), {lse - 3, lse - 1}, 1e-12)
  T.near(nn.CrossEntropyLoss{weight = t64({1, 1, 3})}(logits, target), (3 * (lse - 3) + (lse - 1)) / 4, 1e-12)
  T.near(nn.CrossEntropyLoss{ignore_index = 1}(logits, target), lse - 3, 1e-12)
  -- label smoothing eps: (1 - eps) * nll + eps * mean over classes of -log p
  local eps, mean_nll = 0.1, (3 * lse - 6) / 3
  T.near(nn.CrossEntropyLoss{label_smoothing = eps}(logits, target),
    ((1 - eps) * (lse - 3) + eps * mean_nll + (1 - eps) * (lse - 1) + eps * mean_nll) / 2, 1e-12)
  local logp = F.log_softmax(logits, 2)
  T.near(nn.NLLLoss()(logp, target), ((lse - 3) + (lse - 1)) / 2, 1e-12)
  local q = t64({{0.5, 0.5}, {0.9, 0.1}})
  local lp = t64({{math.log(0.25), math.log(0.75)}, {math.log(0.5), math.log(0.5)}})
  local kl = {0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75), 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)}
  T.near(nn.KLDivLoss{reduction = "batchmean"}(lp, q), (kl[1] + kl[2]) / 2, 1e-12)
  T.near(nn.KLDivLoss{reduction = "sum", log_target = true}(lp, q:log()), kl[1] + kl[2], 1e-12)
  T.expect_error("CrossEntropyLoss: reduction must be one of 'mean', 'sum', 'none', got 'avg'",
    function() nn.CrossEntropyLoss{reduction = "avg"} end)
  local ce = nn.CrossEntropyLoss{weight = t64({1, 2, 3})}
  T.eq(ce:state_dict_keys(), {"weight"}) -- class weights are buffers, as in PyTorch
end)

---------------------------------------------------------------------------------- nn.init

T.test("nn.init: gains, fans, bounds and statistics", function()
  local init = nn.init
  T.eq(init.calculate_gain("linear"), 1)
  T.near(init.calculate_gain("tanh"), 5 / 3, 1e-15)
  T.near(init.calculate_gain("relu"), math.sqrt(2), 1e-15)
  T.near(init.calculate_gain("leaky_relu", 0.2), math.sqrt(2 / 1.04), 1e-15)
  T.near(init.calculate_gain("leaky_relu"), math.sqrt(2 / (1 + 1e-4)), 1e-15)
  local w = ai.empty(64, 32, 3, 3)
  local fi, fo = init.calculate_fan_in_and_fan_out(w)
  T.eq({fi, fo}, {288, 576})
  ai.manual_seed(11)
  init.xavier_uniform_(w, {gain = 2})
  local a = 2 * math.sqrt(6 / (288 + 576))
  T.ok(w:abs():max():item() <= a + 1e-7 and w:abs():max():item() > 0.95 * a)
  init.xavier_normal_(w)
  T.near(w:std():item(), math.sqrt(2 / (288 + 576)), 0.03)
  init.kaiming_normal_(w, {mode = "fan_out", nonlinearity = "relu"})
  T.near(w:std():item(), math.sqrt(2) / math.sqrt(576), 0.03)
  init.kaiming_uniform_(w, {nonlinearity = "relu"})
  T.ok(w:abs():max():item() <= math.sqrt(6 / 288) + 1e-7)
  init.constant_(w, 0.3); T.near(w:max():item(), 0.3, 1e-7); T.near(w:min():item(), 0.3, 1e-7)
  init.zeros_(w); T.eq(w:abs():sum():item(), 0)
  init.ones_(w); T.eq(w:sum():item(), w:numel())
  init.uniform_(w, -1, 3); T.ok(w:min():item() >= -1 and w:max():item() < 3)
  init.normal_(w, 5, 0.1); T.near(w:mean():item(), 5, 0.01)
  init.trunc_normal_(w, 0, 1, -0.5, 0.5); T.ok(w:abs():max():item() <= 0.5)
  local e = ai.empty(3, 4); init.eye_(e); T.near(e, ai.eye(3, 4))
  -- parameters can be initialised directly (no_grad inside)
  local p = nn.Parameter(ai.empty(3, 3))
  init.xavier_uniform_(p)
  T.ok(p.requires_grad)
  T.expect_error("fan in and fan out need a tensor with at least 2 dimensions", function() init.xavier_uniform_(ai.empty(5)) end)
  T.expect_error("calculate_gain: unsupported nonlinearity 'swish'", function() init.calculate_gain("swish") end)
end)

T.test("nn.init.orthogonal_: rows (or columns) orthonormal, gain applied", function()
  ai.manual_seed(2)
  local w = ai.empty(4, 6)
  nn.init.orthogonal_(w)
  T.near(ai.matmul(w, w:t()), ai.eye(4), 1e-5)
  local tall = ai.empty(6, 2, 2)
  nn.init.orthogonal_(tall, {gain = 3})
  local m = tall:view(6, 4)
  T.near(ai.matmul(m:t(), m), ai.eye(4) * 9, 1e-4)
end)

---------------------------------------------------------------------------------- functional

T.test("F: re-exports and Lua-written functions", function()
  -- F.conv2d and the pooling functions wrap the core's for unbatched input (tests/test_port_ops.lua)
  T.ok(F.linear == ai.linear and F.cross_entropy == ai.cross_entropy and nn.F == F)
  T.near(F.one_hot(ai.tensor({2, 1, 3}, {dtype = "i64"}), 3), {{0, 1, 0}, {1, 0, 0}, {0, 0, 1}})
  T.eq(F.one_hot(ai.tensor({{1}}, {dtype = "i64"}), 2).dtype, "i64")
  local v = t64({{3, 4}, {0, 5}})
  T.near(F.normalize(v), {{0.6, 0.8}, {0, 1}}, 1e-12)
  T.near(F.cosine_similarity(v, t64({{3, 4}, {5, 0}})), {1, 0}, 1e-12)
  local x = ai.randn(2, 8, 3, 3)
  local ps = F.pixel_shuffle(x, 2)
  T.eq(ps.shape, {2, 2, 6, 6})
  T.near(F.pixel_unshuffle(ps, 2), x)
  T.near(ps[{1, 1, 1, 2}], x[{1, 2, 1, 1}]:item()) -- channel (c, i, j) -> pixel (h*r+i, w*r+j)
  T.near(F.hardtanh(t64({-3, 0.5, 3})), {-1, 0.5, 1})
  T.near(F.relu6(t64({-3, 0.5, 7})), {0, 0.5, 6})
  T.near(F.logsigmoid(t64({0})), {-math.log(2)}, 1e-12)
  T.near(F.glu(t64({{1, 2, 0, 0}})), {{0.5, 1}}, 1e-12)
  T.near(F.hinge_embedding_loss(t64({0.3, 0.3}), t64({1, -1}), {reduction = "sum"}), 0.3 + 0.7, 1e-12)
  -- elu's gradient stays finite far in the positive range
  local big = ai.tensor({100, -1}, {dtype = "f64", requires_grad = true})
  F.elu(big):sum():backward()
  T.near(big.grad, {1, math.exp(-1)}, 1e-12)
end)

---------------------------------------------------------------------------------- nn.utils

T.test("nn.utils: clip_grad_norm_, clip_grad_value_, parameters <-> vector", function()
  local a = ai.zeros(2, {dtype = "f64", requires_grad = true})
  local b = ai.zeros(1, {dtype = "f64", requires_grad = true})
  a.grad = t64({3, 0}); b.grad = t64({4})
  local norm = nn.utils.clip_grad_norm_({a, b}, 1)
  T.near(norm, 5, 1e-12)
  T.near(a.grad, {3 / (5 + 1e-6), 0}, 1e-12)
  T.near(b.grad, {4 / (5 + 1e-6)}, 1e-12)
  T.near(nn.utils.clip_grad_norm_({a, b}, 10), 5 / (5 + 1e-6), 1e-12) -- under the limit: unchanged
  a.grad = t64({-3, 1}); b.grad = t64({0.5})
  T.near(nn.utils.clip_grad_norm_({a, b}, 1, {norm_type = "inf"}), 3, 1e-12)
  T.near(a.grad, {-3 / (3 + 1e-6), 1 / (3 + 1e-6)}, 1e-12)
  nn.utils.clip_grad_value_({a, b}, 0.2)
  T.near(a.grad, {-0.2, 0.2}, 1e-12)
  T.near(b.grad, {0.5 / (3 + 1e-6)}, 1e-12)
  local net = nn.Linear(2, 2)
  local vec = nn.utils.parameters_to_vector(net)
  T.eq(vec.shape, {6})
  nn.utils.vector_to_parameters(ai.arange(1, 7):float(), net)
  T.near(net.weight, {{1, 2}, {3, 4}})
  T.near(net.bias, {5, 6})
  T.eq(nn.utils.clip_grad_norm_(net, 1), 0) -- no gradients yet
end)

------------------------------------------------------------------------------- end to end

T.test("end to end: a Conv2d-BatchNorm-ReLU-Linear classifier overfits a small batch", function()
  ai.manual_seed(42)
  local net = nn.Sequential(
    nn.Conv2d(1, 8, 3, {padding = 1}), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(8 * 4 * 4, 4))
  local x = ai.randn(16, 1, 8, 8)
  local y = ai.randint(1, 4, 16)
  local opt = ai.optim.Adam(net:parameters(), {lr = 1e-2})
  local loss_fn = nn.CrossEntropyLoss()
  local first, loss
  for step = 1, 60 do
    opt:zero_grad()
    loss = loss_fn(net(x), y)
    loss:backward()
    opt:step()
    if step == 1 then first = loss:item() end
  end
  T.ok(loss:item() < 0.05 and loss:item() < first / 20, ("loss went from %g to %g"):format(first, loss:item()))
  local _, pred = net(x):max(2, {keepdim = false})
  T.eq(pred:eq(y):sum():item(), 16)
end)

---------------------------------------------------------------------- the reference models

T.test("reference mlp_gan: G and D in a few lines, parameter counts and shapes", function()
  local G = nn.Sequential(
    nn.Linear(100, 128), nn.LeakyReLU(0.2),
    nn.Linear(128, 256), nn.BatchNorm1d(256), nn.LeakyReLU(0.2),
    nn.Linear(256, 512), nn.BatchNorm1d(512), nn.LeakyReLU(0.2),
    nn.Linear(512, 784), nn.Tanh())
  local D = nn.Sequential(
    nn.Linear(784, 512), nn.LeakyReLU(0.2),
    nn.Linear(512, 256), nn.LeakyReLU(0.2),
    nn.Linear(256, 1), nn.Sigmoid())
  T.eq(G:num_parameters(), 581264)
  T.eq(D:num_parameters(), 533505)
  local fake = G(ai.randn(32, 100))
  T.eq(fake.shape, {32, 784})
  T.ok(fake:abs():max():item() <= 1)
  local p = D(fake:detach())
  T.eq(p.shape, {32, 1})
  local loss = nn.BCELoss()(p, ai.ones(32, 1))
  loss:backward()
  T.ok(D[1].weight.grad ~= nil and G[1].weight.grad == nil)
end)

T.test("reference dcgan: G and D, parameter counts and shapes", function()
  local G = nn.Sequential(
    nn.Linear(100, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
    nn.Unflatten(2, {128, 7, 7}),
    nn.ConvTranspose2d(128, 64, 4, {stride = 2, padding = 1}), nn.BatchNorm2d(64), nn.ReLU(),
    nn.ConvTranspose2d(64, 1, 4, {stride = 2, padding = 1}), nn.Tanh())
  local D = nn.Sequential(
    nn.Conv2d(1, 64, 4, {stride = 2, padding = 1}), nn.LeakyReLU(0.2),
    nn.Conv2d(64, 128, 4, {stride = 2, padding = 1}), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
    nn.Flatten(), nn.Linear(128 * 7 * 7, 1))
  T.eq(G:num_parameters(), 778305)
  T.eq(D:num_parameters(), 138817)
  local fake = G(ai.randn(4, 100))
  T.eq(fake.shape, {4, 1, 28, 28})
  local logits = D(fake)
  T.eq(logits.shape, {4, 1})
  nn.BCEWithLogitsLoss()(logits, ai.ones(4, 1)):backward()
  T.ok(G[1].weight.grad ~= nil and D[1].weight.grad ~= nil)
end)

-- The DDPM UNet of reference-models.md, written as a user would.
local function ddpm_unet()
  local function timestep_embedding(t, dim)
    local half = dim // 2
    local freqs = (ai.arange(0, half):float() * (-math.log(10000) / half)):exp()
    local args = t:view(-1, 1) * freqs:view(1, -1)
    return ai.cat({args:sin(), args:cos()}, 2)
  end

  local ResBlock = nn.Module:extend("ResBlock")
  function ResBlock:init(cin, cout)
    self.norm1 = nn.GroupNorm(8, cin)
    self.conv1 = nn.Conv2d(cin, cout, 3, {padding = 1})
    self.temb = nn.Linear(128, cout)
    self.norm2 = nn.GroupNorm(8, cout)
    self.conv2 = nn.Conv2d(cout, cout, 3, {padding = 1})
    self.skip = cin ~= cout and nn.Conv2d(cin, cout, 1) or nn.Identity()
  end
  function ResBlock:forward(x, temb)
    local h = self.conv1(ai.silu(self.norm1(x))) + self.temb(temb):view(-1, self.conv1.out_channels, 1, 1)
    h = self.conv2(ai.silu(self.norm2(h)))
    return h + self.skip(x)
  end

  local Attention = nn.Module:extend("Attention")
  function Attention:init(c)
    self.norm = nn.GroupNorm(8, c)
    self.qkv = nn.Conv2d(c, 3 * c, 1)
    self.out = nn.Conv2d(c, c, 1)
  end
  function Attention:forward(x)
    local n, c, h, w = table.unpack(x.shape)
    local qkv = self.qkv(self.norm(x)):view(n, 3, c, h * w):transpose(3, 4) -- n, 3, hw, c
    local o = F.scaled_dot_product_attention(qkv:select(2, 1), qkv:select(2, 2), qkv:select(2, 3))
    return x + self.out(o:transpose(2, 3):reshape(n, c, h, w))
  end

  local UNet = nn.Module:extend("UNet")
  function UNet:init()
    self.time_mlp = nn.Sequential(nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 128))
    self.inc = nn.Conv2d(1, 32, 3, {padding = 1})
    self.rb1 = ResBlock(32, 32)
    self.down1 = nn.Conv2d(32, 32, 3, {stride = 2, padding = 1})
    self.rb2 = ResBlock(32, 64)
    self.down2 = nn.Conv2d(64, 64, 3, {stride = 2, padding = 1})
    self.mid1, self.attn, self.mid2 = ResBlock(64, 64), Attention(64), ResBlock(64, 64)
    self.up1, self.up2 = ResBlock(128, 64), ResBlock(96, 32)
    self.out = nn.Sequential(nn.GroupNorm(8, 32), nn.SiLU(), nn.Conv2d(32, 1, 3, {padding = 1}))
  end
  function UNet:forward(x, t)
    local temb = self.time_mlp(timestep_embedding(t, 128))
    local h1 = self.rb1(self.inc(x), temb)        -- 32 x 28 x 28
    local h2 = self.rb2(self.down1(h1), temb)     -- 64 x 14 x 14
    local h = self.mid1(self.down2(h2), temb)     -- 64 x 7 x 7
    h = self.mid2(self.attn(h), temb)
    h = self.up1(ai.cat({F.upsample(h, {scale_factor = 2}), h2}, 2), temb)
    h = self.up2(ai.cat({F.upsample(h, {scale_factor = 2}), h1}, 2), temb)
    return self.out(h)
  end
  return UNet()
end

T.test("reference ddpm_unet: exactly 522,145 parameters, output shape, trains a step", function()
  ai.manual_seed(7)
  local net = ddpm_unet()
  T.eq(net:num_parameters(), 522145)
  local x = ai.randn(2, 1, 28, 28)
  local t = ai.tensor({10, 500})
  local eps = net(x, t)
  T.eq(eps.shape, {2, 1, 28, 28})
  local opt = ai.optim.Adam(net:parameters(), {lr = 2e-4})
  local loss = nn.MSELoss()(eps, ai.randn(2, 1, 28, 28))
  loss:backward()
  for _, p in ipairs(net:parameters()) do T.ok(p.grad ~= nil, "a parameter got no gradient") end
  opt:step()
  T.ok(tostring(net):find("(attn): Attention(", 1, true))
end)
