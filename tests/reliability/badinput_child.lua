-- tests/reliability/badinput_child.lua: the worker of tests/test_badinput.lua.
--   aiart-lua badinput_child.lua PROTOCOL_FILE FIRST [LAST]
-- Builds the (deterministic) list of bad-input cases: every public function of `ai` called
-- with wrong types, wrong shapes, empty and zero-size tensors, NaN/Inf, out-of-range dims and
-- indices, non-contiguous and expanded views, huge sizes, and bad files. Runs cases
-- FIRST..LAST, each under pcall, and writes to PROTOCOL_FILE (unbuffered):
--   "N <total>"                     once, the number of cases
--   "C <i>"                         before case i
--   "R <i> <ok|err|oom|slow>"       after it (err: a Lua error; oom: "not enough memory")
--   "A <i> <C|Lua> <description>"   before "R <i> accepted": a misuse case whose call succeeded
--                                   (C: a function of the C bindings; Lua: of lua/aiart)
--   "B <i> <name>"                  before "R <i> nobase", for a C function: no working call
--   "END"                           at the end
-- The misuse cases (kinds "refused", "accepted", "nobase") take a call of each function that
-- works (the first of BASE_ARGS that succeeds, or the function's row in BASE) and add to it an
-- unknown option key or an extra trailing argument: the call must then be an error.
-- A crash leaves a "C i" without its "R i": the parent names the case and starts a new worker
-- after it. `... describe I` prints case I's description instead.
local ai = require "aiart"

local proto_path, first, last = arg[1], tonumber(arg[2] or 1), tonumber(arg[3] or math.huge)
local describe = arg[2] == "describe"
if describe then first = tonumber(arg[3]) end

-- ---------------------------------------------------------------- the process' own limits
ai.set_num_threads(1)
-- a Lua heap runaway (a huge table built from a bad size) is a Lua error, not a dead machine
if ai._debug and ai._debug.lua_mem_limit then ai._debug.lua_mem_limit(1536 << 20) end
-- no case may end the process or wait on the terminal
os.exit = function() error("os.exit called", 2) end -- luacheck: ignore
io.read = function() return nil end -- luacheck: ignore

-- ---------------------------------------------------------------- values
local NaN, Inf = 0 / 0, math.huge
local function T(...) return ai.tensor(...) end
local function X() return ai.tensor({{1, -2, 3}, {0.5, 0, -1}}) end
local function X4() return ai.linspace(-1, 1, 32):reshape(1, 2, 4, 4) end
local function W4() return ai.linspace(-1, 1, 54):reshape(3, 2, 3, 3) end

-- Files of every kind of wrongness, made once in the current (temporary) folder.
local FILES = {}
local function write(name, bytes)
  local f = assert(io.open(name, "wb"))
  f:write(bytes)
  f:close()
  FILES[#FILES + 1] = name
  return name
end
local function be32(n) return string.char(n >> 24 & 255, n >> 16 & 255, n >> 8 & 255, n & 255) end
local function le64(n) return string.pack("<i8", n) end
local png_ok = ai.io.png_bytes(ai.rand(3, 5, 7))
local st_hdr = '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}'
local st_ok = le64(#st_hdr) .. st_hdr .. string.rep("\0", 24)
local idx_ok = "\0\0\8\2" .. be32(3) .. be32(4) .. string.rep("\7", 12)
write("empty.bin", "")
write("text.txt", "hello, this is not an image\n")
write("png_trunc.png", png_ok:sub(1, #png_ok // 2))
write("png_head.png", png_ok:sub(1, 8))
write("png_huge.png", png_ok:sub(1, 16) .. be32(0x7fffffff) .. be32(0x7fffffff) .. png_ok:sub(25))
write("png_badcrc.png", png_ok:sub(1, 30) .. "\255" .. png_ok:sub(32))
write("idx_trunc.idx", idx_ok:sub(1, 14))
write("idx_huge.idx", "\0\0\8\3" .. be32(0xffffffff) .. be32(0xffffffff) .. be32(0xffffffff) .. "\1\2\3")
write("idx_baddtype.idx", "\0\0\1\1" .. be32(3) .. "abc")
write("idx_ndim0.idx", "\0\0\8\0")
write("idx_ndim255.idx", "\0\0\8\255" .. string.rep(be32(1), 255))
write("idx.idx.gz", "\31\139\8\0garbage")
write("st_trunc.safetensors", st_ok:sub(1, #st_ok - 5))
write("st_hugehdr.safetensors", le64(1 << 60) .. "{}")
write("st_neghdr.safetensors", le64(-1) .. "{}")
write("st_badjson.safetensors", le64(5) .. "{[}]!")
write("st_offsets.safetensors", (function()
  local h = '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,99999999999]}}'
  return le64(#h) .. h .. string.rep("\0", 24)
end)())
write("st_shape.safetensors", (function()
  local h = '{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,24]}}'
  return le64(#h) .. h .. string.rep("\0", 24)
end)())
write("st_notckpt.safetensors", st_ok)
write("json_bad.json", '{"a": [1, 2,')
write("json_deep.json", string.rep("[", 100000))
write("metrics_bad.jsonl", '{"step": 1}\nnot json\n{"step": 2}\n')
os.execute("mkdir -p adir && mkdir -p imgdir/cls && cp empty.bin imgdir/cls/a.png 2>/dev/null")
FILES[#FILES + 1] = "adir"
FILES[#FILES + 1] = "imgdir"
FILES[#FILES + 1] = "/nonexistent/dir/file"
FILES[#FILES + 1] = "/dev/null"
FILES[#FILES + 1] = "/proc/self/mem"

-- name, maker: makers run per case, so a case that closes or changes a value cannot affect
-- the next one.
local V = {
  {"nil", function() return nil end},
  {"0", function() return 0 end}, {"1", function() return 1 end}, {"-1", function() return -1 end},
  {"2", function() return 2 end}, {"100", function() return 100 end},
  {"0.5", function() return 0.5 end}, {"-2.5", function() return -2.5 end},
  {"nan", function() return NaN end}, {"inf", function() return Inf end},
  {"-inf", function() return -Inf end}, {"maxint", function() return math.maxinteger end},
  {"minint", function() return math.mininteger end}, {"2^53", function() return 2.0 ^ 53 end},
  {"1e300", function() return 1e300 end},
  {"''", function() return "" end}, {"'x'", function() return "x" end},
  {"'f32'", function() return "f32" end}, {"'a\\0b'", function() return "a\0b" end},
  {"{}", function() return {} end}, {"{1,2}", function() return {1, 2} end},
  {"{0,-1}", function() return {0, -1} end}, {"{{1,2},{3}}", function() return {{1, 2}, {3}} end},
  {"{x=1}", function() return {x = 1} end}, {"{maxint}", function() return {math.maxinteger, math.maxinteger} end},
  {"{nan}", function() return {NaN} end}, {"{'a'}", function() return {"a"} end},
  {"true", function() return true end}, {"false", function() return false end},
  {"function", function() return function() return 1 end end},
  {"coroutine", function() return coroutine.create(function() end) end},
  {"io.stderr", function() return io.stderr end},
  {"scalar", function() return T(2.5) end},
  {"empty", function() return ai.empty(0) end},
  {"0x3", function() return ai.zeros(0, 3) end},
  {"1-D", function() return T({1, 2, 3, 4, 5}) end},
  {"2x3", X},
  {"3x2", function() return T({{1, 2}, {3, 4}, {5, 6}}) end},
  {"2x3 f64", function() return X():double() end},
  {"2x3 i64", function() return T({{1, 2, 3}, {3, 2, 1}}, {dtype = "i64"}) end},
  {"2x3 u8", function() return T({{1, 0, 1}, {0, 1, 1}}, {dtype = "u8"}) end},
  {"2x3 nan", function() return ai.full({2, 3}, NaN) end},
  {"2x3 inf", function() return T({{Inf, -Inf, 1}, {0, Inf, NaN}}) end},
  {"transposed", function() return X():t() end},
  {"expanded", function() return T({{1, 2, 3}}):expand(2, 3) end},
  {"expanded-4d", function() return T(1.5):view(1, 1, 1, 1):expand(2, 2, 4, 4) end},
  {"sliced", function() return ai.arange(24):float():view(4, 6):slice(2, 1, 6, 2) end},
  {"1x2x4x4", X4}, {"3x2x3x3", W4},
  {"0x2x4x4", function() return ai.zeros(0, 2, 4, 4) end},
  {"8-D", function() return ai.ones(1, 1, 1, 1, 1, 1, 1, 2) end},
  {"requires_grad", function() return X():requires_grad_(true) end},
  {"grad_fn", function() return X():requires_grad_(true) * 2 end},
  {"closed", function() local t = X() ai.free(t) return t end},
}
for _, f in ipairs(FILES) do V[#V + 1] = {"file " .. f, function() return f end} end

-- ---------------------------------------------------------------- targets
local SKIP = {
  -- test hooks and process-wide switches, tested on their own in test_allocfail.lua
  alloc_fail_after = true, _debug = true,
}

local targets = {} -- {name, fn, self_maker or nil, c = whether the function is C's}
local function is_c(f) return type(f) == "function" and debug.getinfo(f, "S").what == "C" end
local function add_functions(prefix, tbl)
  local ks = {}
  for k, v in pairs(tbl) do
    if type(k) == "string" and not SKIP[k] then
      local mt = type(v) == "table" and getmetatable(v)
      if type(v) == "function" or (mt and mt.__call) then ks[#ks + 1] = k end
    end
  end
  table.sort(ks)
  for _, k in ipairs(ks) do targets[#targets + 1] = {prefix .. k, tbl[k], c = is_c(tbl[k])} end
end

-- Methods of an object (its class chain), called as obj:m(...) on a fresh object per case.
local function add_methods(prefix, maker)
  local ok, obj = pcall(maker)
  if not ok then
    io.stderr:write("badinput: cannot make ", prefix, ": ", tostring(obj), "\n")
    return
  end
  local names, seen = {}, {}
  local cls, depth = getmetatable(obj), 0
  while type(cls) == "table" and depth < 12 do
    for k, v in pairs(cls) do
      if type(k) == "string" and type(v) == "function" and not seen[k] and not k:match("^__") then
        seen[k] = true
        names[#names + 1] = k
      end
    end
    local mt = getmetatable(cls)
    local nxt = mt and rawget(mt, "__index")
    if type(nxt) ~= "table" or nxt == cls then break end
    cls, depth = nxt, depth + 1
  end
  table.sort(names)
  for _, k in ipairs(names) do
    targets[#targets + 1] = {prefix .. ":" .. k, function(self, ...) return self[k](self, ...) end, maker, c = is_c(obj[k])}
  end
end

add_functions("ai.", ai)
add_functions("ai.Tensor.", ai.Tensor)
for _, m in ipairs{"gradcheck", "gradgradcheck", "save", "load", "help"} do
  targets[#targets + 1] = {"ai." .. m, ai[m], c = is_c(ai[m])}
end
-- _optim and _loader are the C kernels under optim and data (ai._dist starts MPI: test_dist.lua)
for _, m in ipairs{"linalg", "io", "json", "nn", "F", "optim", "sched", "data", "image", "checkpoint",
                   "progress", "plot", "config", "metrics", "_optim", "_loader"} do
  local ok, mod = pcall(function() return ai[m] end)
  if ok and type(mod) == "table" then add_functions("ai." .. m .. ".", mod)
  else io.stderr:write("badinput: cannot load ai.", m, ": ", tostring(mod), "\n") end
end
local nn = ai.nn
add_methods("Linear", function() return nn.Linear(3, 4) end)
add_methods("Conv2d", function() return nn.Conv2d(2, 3, 3) end)
add_methods("BatchNorm2d", function() return nn.BatchNorm2d(2) end)
add_methods("Sequential", function() return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)) end)
add_methods("SGD", function() return ai.optim.SGD(nn.Linear(3, 2):parameters(), {lr = 0.1}) end)
add_methods("Adam", function()
  local m = nn.Linear(3, 2)
  local o = ai.optim.Adam(m:parameters(), {lr = 0.1})
  m(ai.ones(4, 3)):sum():backward()
  return o
end)
add_methods("LBFGS", function() return ai.optim.LBFGS(nn.Linear(3, 2):parameters(), {lr = 0.1, max_iter = 2}) end)
add_methods("EMA", function() return ai.optim.EMA(nn.Linear(3, 2), {decay = 0.9}) end)
add_methods("StepLR", function()
  return ai.sched.StepLR(ai.optim.SGD(nn.Linear(3, 2):parameters(), {lr = 0.1}), {step_size = 2})
end)
add_methods("TensorDataset", function() return ai.data.TensorDataset(ai.rand(6, 3), ai.arange(1, 7)) end)
add_methods("DataLoader", function()
  return ai.data.DataLoader(ai.data.TensorDataset(ai.rand(6, 3), ai.arange(1, 7)), {batch_size = 2})
end)
add_methods("metrics.logger", function() return ai.metrics.logger("metrics.jsonl") end)
add_methods("progress.bar", function() return ai.progress.bar{total = 10, file = io.open("/dev/null", "w")} end)

-- Functions that take long per call (datasets from disk, help text, temporary files) get
-- only the one-argument cases with one value of each kind.
local HEAVY = {["ai.data.fashion_mnist"] = true, ["ai.data.mnist"] = true, ["ai.help"] = true,
               ["ai.image.show"] = true}
local HEAVY_VALUES = {}
for vi, v in ipairs(V) do
  local n = v[1]
  if n == "nil" or n == "-1" or n == "nan" or n == "''" or n == "'x'" or n == "{}" or n == "true"
     or n == "function" or n == "2x3" or n == "closed" or n == "empty" or n:find("^file") then
    HEAVY_VALUES[#HEAVY_VALUES + 1] = vi
  end
end

-- ---------------------------------------------------------------- cases
-- A case: target t, a template of arguments where the "hole" takes value v.
local TEMPLATES = {
  {"f(v)", function(v) return {v} end},
  {"f(X, v)", function(v) return {X(), v} end},
  {"f(X, X, v)", function(v) return {X(), X(), v} end},
  {"f(X, 1, v)", function(v) return {X(), 1, v} end},
  {"f(X4, W4, v)", function(v) return {X4(), W4(), v} end},
}
local METHOD_TEMPLATES = {
  {"obj:m(v)", function(v) return {v} end},
  {"obj:m(X, v)", function(v) return {X(), v} end},
  {"obj:m(1, v)", function(v) return {1, v} end},
}

-- ---------------------------------------------------------------- misuse cases
-- A working call of each function, to which a misuse case adds an unknown option key or an
-- extra argument. Tried in order; the first that succeeds is the base. BASE gives the call for
-- functions none of these fit (opts: the argument that is the options table, where the unknown
-- key goes instead of a new argument).
local UNKNOWN_KEY, EXTRA = "zz_not_an_option", "zz_extra_argument"
local function M2() return X():gt(0) end
local function L(t) return ai.tensor(t, {dtype = "i64"}) end
local BASE_ARGS = {
  function() return {} end, function() return {X()} end, function() return {X(), X()} end,
  function() return {X(), 1} end, function() return {X(), 2} end, function() return {X4(), W4()} end,
  function() return {X4(), 2} end, function() return {1} end, function() return {2, 3} end,
  function() return {X(), X(), X()} end, function() return {X(), 1, X()} end,
}
local METHOD_BASE_ARGS = {
  function() return {} end, function() return {X()} end, function() return {1} end,
  function() return {ai.ones(2, 3)} end, function() return {X(), X()} end,
}
local BASE = {
  ["ai.where"] = {function() return {M2(), X(), X()} end},
  ["ai.baddbmm"] = {function() return {ai.ones(1, 2, 2), ai.ones(1, 2, 3), ai.ones(1, 3, 2), {}} end, opts = 4},
  ["ai.Tensor.baddbmm"] = {function() return {ai.ones(1, 2, 2), ai.ones(1, 2, 3), ai.ones(1, 3, 2), {}} end, opts = 4},
  ["ai.meshgrid"] = {function() return {ai.ones(2), ai.ones(3), {indexing = "ij"}} end, opts = 3},
  ["ai.multinomial"] = {function() return {ai.full({3}, 0.5), 2, {}} end, opts = 3},
  ["ai.Tensor.multinomial"] = {function() return {ai.full({3}, 0.5), 2, {}} end, opts = 3},
  ["ai.outer"] = {function() return {ai.ones(2), ai.ones(3)} end},
  ["ai.Tensor.outer"] = {function() return {ai.ones(2), ai.ones(3)} end},
  ["ai.searchsorted"] = {function() return {ai.tensor({1, 2, 3}), ai.tensor({2}), {}} end, opts = 3},
  ["ai.Tensor.searchsorted"] = {function() return {ai.tensor({1, 2, 3}), ai.tensor({2}), {}} end, opts = 3},
  ["ai.Tensor.register_hook"] = {function() return {ai.ones(2, {requires_grad = true}), function() end} end},
  ["ai.Tensor.retain_grad"] = {function() return {ai.ones(2, {requires_grad = true}) * 2} end},
  ["ai.masked_fill"] = {function() return {X(), M2(), 1} end},
  ["ai.Tensor.masked_fill_"] = {function() return {X(), M2(), 1} end},
  ["ai.masked_select"] = {function() return {X(), M2()} end},
  ["ai.index_select"] = {function() return {X(), 1, {1}} end},
  ["ai.gather"] = {function() return {X(), 2, L({{1}, {2}})} end},
  ["ai.scatter"] = {function() return {X(), 2, L({{1}, {2}}), 1} end},
  ["ai.scatter_add"] = {function() return {X(), 2, L({{1}, {2}}), 1} end},
  ["ai.index_add"] = {function() return {X(), 1, {1}, ai.ones(1, 3)} end},
  ["ai.cat"] = {function() return {{X(), X()}, 1} end}, ["ai.stack"] = {function() return {{X(), X()}, 1} end},
  ["ai.split"] = {function() return {X(), 1, 1} end}, ["ai.chunk"] = {function() return {X(), 2, 1} end},
  ["ai.dot"] = {function() return {ai.ones(3), ai.ones(3)} end},
  ["ai.bmm"] = {function() return {ai.ones(1, 2, 3), ai.ones(1, 3, 2)} end},
  ["ai.mm"] = {function() return {X(), X():t()} end}, ["ai.matmul"] = {function() return {X(), X():t()} end},
  ["ai.normal"] = {function() return {0, 1, 3, {}} end, opts = 4},
  ["ai.Tensor.random_"] = {function() return {X(), 1, 3} end},
  ["ai.bernoulli"] = {function() return {ai.full({3}, 0.5)} end},
  ["ai.linalg.eigh"] = {function() return {ai.eye(2)} end},
  ["ai.leaky_relu"] = {function() return {X(), {negative_slope = 0.1}} end, opts = 2},
  ["ai.softplus"] = {function() return {X(), {beta = 2}} end, opts = 2},
  ["ai.clamp"] = {function() return {X(), {min = 0}} end, opts = 2},
  ["ai.clip"] = {function() return {X(), {min = 0}} end, opts = 2},
  ["ai.conv2d"] = {function() return {X4(), ai.ones(1, 2, 3, 3), nil, {stride = 1}} end, opts = 4},
  ["ai.conv_transpose2d"] = {function() return {X4(), ai.ones(2, 1, 3, 3), nil, {stride = 1}} end, opts = 4},
  ["ai.max_pool2d"] = {function() return {X4(), 2, {stride = 2}} end, opts = 3},
  ["ai.avg_pool2d"] = {function() return {X4(), 2, {stride = 2}} end, opts = 3},
  ["ai.adaptive_avg_pool2d"] = {function() return {X4(), 2} end},
  ["ai.upsample"] = {function() return {X4(), {scale_factor = 2}} end, opts = 2},
  ["ai.interpolate"] = {function() return {X4(), {scale_factor = 2}} end, opts = 2},
  ["ai.pad"] = {function() return {X4(), {1, 1}, {mode = "constant"}} end, opts = 3},
  ["ai.batch_norm"] = {function() return {X4(), nil, nil, nil, nil, {training = true}} end, opts = 6},
  ["ai.group_norm"] = {function() return {X4(), 2, nil, nil, {eps = 1e-5}} end, opts = 5},
  ["ai.instance_norm"] = {function() return {X4(), nil, nil, {eps = 1e-5}} end, opts = 4},
  ["ai.layer_norm"] = {function() return {X4(), 4, nil, nil, {eps = 1e-5}} end, opts = 5},
  ["ai.embedding"] = {function() return {L({1, 2}), ai.ones(3, 2)} end},
  ["ai.scaled_dot_product_attention"] = {function() return {X(), X(), X(), {}} end, opts = 4},
  ["ai.mse_loss"] = {function() return {X(), X(), {reduction = "sum"}} end, opts = 3},
  ["ai.l1_loss"] = {function() return {X(), X(), {reduction = "sum"}} end, opts = 3},
  ["ai.smooth_l1_loss"] = {function() return {X(), X(), {beta = 1}} end, opts = 3},
  ["ai.bce_loss"] = {function() return {X():sigmoid(), M2():float(), {}} end, opts = 3},
  ["ai.binary_cross_entropy"] = {function() return {X():sigmoid(), M2():float(), {}} end, opts = 3},
  ["ai.bce_with_logits"] = {function() return {X(), M2():float(), {}} end, opts = 3},
  ["ai.binary_cross_entropy_with_logits"] = {function() return {X(), M2():float(), {}} end, opts = 3},
  ["ai.cross_entropy"] = {function() return {X(), L({1, 3}), {}} end, opts = 3},
  ["ai.nll_loss"] = {function() return {X(), L({1, 3}), {}} end, opts = 3},
  ["ai.kl_div"] = {function() return {X(), X(), {}} end, opts = 3},
  ["ai.grad"] = {function() local x = X():requires_grad_() return {x:sum(), x, {}} end, opts = 3},
  ["ai.Tensor.backward"] = {function() return {X():requires_grad_():sum(), {}} end, opts = 2},
  ["ai.set_grad_enabled"] = {function() return {true} end},
  ["ai.io.png_bytes"] = {function() return {ai.zeros(2, 2)} end},
  ["ai.io.load_png"] = {function() return {ai.io.png_bytes(ai.zeros(2, 2))} end},
  ["ai.io.save_png"] = {function() return {"o.png", ai.zeros(2, 2)} end},
  ["ai.io.write_idx"] = {function() return {"o.idx", ai.zeros(2, {dtype = "u8"})} end},
  ["ai.io.read_idx"] = {function() ai.io.write_idx("b.idx", ai.zeros(2, {dtype = "u8"})) return {"b.idx"} end},
  ["ai.io.save_gif"] = {function() return {"o.gif", ai.zeros(2, 4, 4), {delay = 10}} end, opts = 3},
  ["ai.io.save_safetensors"] = {function() return {"o.safetensors", {a = X()}, {}} end},
  ["ai.io.load_safetensors"] = {function() ai.io.save_safetensors("b.safetensors", {a = X()}) return {"b.safetensors"} end},
  ["ai.json.encode"] = {function() return {{1}, {indent = 2}} end, opts = 2},
  ["ai.json.decode"] = {function() return {"[1]"} end},
  ["ai.full"] = {function() return {{2}, 1, {}} end, opts = 3},
  ["ai.linspace"] = {function() return {0, 1, 3, {}} end, opts = 4},
  ["ai.Tensor.expand"] = {function() return {ai.ones(2, 1), 2, 3} end},
  ["ai.Tensor.item"] = {function() return {ai.tensor(1)} end},
  ["ai.Tensor.narrow"] = {function() return {X(), 1, 1, 1} end},
  ["ai.Tensor.permute"] = {function() return {X(), 2, 1} end},
  ["ai.Tensor.reshape"] = {function() return {X(), 3, 2} end},
  ["ai.Tensor.view"] = {function() return {X(), 3, 2} end},
  ["ai.Tensor.select"] = {function() return {X(), 1, 1} end},
  ["ai.Tensor.to"] = {function() return {X(), "f64"} end},
  ["ai._optim.adam_step"] = {function() return {X(), X(), X(), X(), nil, {lr = 0.1, step = 1}} end, opts = 6},
  ["ai._optim.sgd_step"] = {function() return {X(), X(), nil, {lr = 0.1}} end, opts = 4},
  ["ai._optim.rmsprop_step"] = {function() return {X(), X(), X(), nil, nil, {lr = 0.1}} end, opts = 6},
  ["ai._optim.adagrad_step"] = {function() return {X(), X(), X(), {lr = 0.1}} end, opts = 4},
  ["ai._optim.lerp_"] = {function() return {X(), X(), 0.5} end},
  ["ai._loader.new"] = {function() return {X(), nil, L({0, 1}), {batch_size = 1, prefetch = 0}} end, opts = 4},
  ["ai._loader.uniform"] = {function() return {1, 2, 3, 4} end},
  ["ai._loader.isatty"] = {function() return {99} end},
}
-- Working calls of the Lua library's predicates and helpers whose first argument the generic
-- calls cannot supply (a predicate of no argument answers false, so an extra one is not misuse).
BASE["ai.nn.is_module"] = {function() return {ai.nn.Linear(1, 1)} end}
BASE["ai.nn.is_parameter"] = {function() return {ai.nn.Parameter(X())} end}
BASE["ai.nn.isinstance"] = {function() return {ai.nn.Linear(1, 1), ai.nn.Linear} end}
BASE["ai.optim.class"] = {function() return {"MyOptimizer", ai.optim.Optimizer} end}
BASE["ai.data.is_transform"] = {function() return {ai.data.transforms.normalize(0, 1)} end}
BASE["ai.data.sample_rng"] = {function() return {1, 1, 0} end}
BASE["ai.plot.canvas"] = {function() return {8, 8} end}
BASE["ai.plot.text_width"] = {function() return {"ab", 1} end}
BASE["ai.plot.tick_label"] = {function() return {1, 0.5} end}
BASE["ai.config.coerce"] = {function() return {{1, "steps", "int >= 1"}, 2} end}
BASE["ai.metrics.column"] = {function() return {{{step = 1, loss = 2}}, "loss", "step"} end}
-- The same for methods, by target name.
local METHOD_BASE = {
  ["Adam:init_state"] = {function() return {X(), {}} end},
  ["Adam:state_of"] = {function() return {X(), {}} end},
  ["SGD:init_state"] = {function() return {X(), {}} end},
  ["StepLR:lr_at"] = {function() return {1, 0.1, 1} end},
  ["TensorDataset:get"] = {function() return {1, function() return 0.5 end} end},
  ["DataLoader:order"] = {function() return {1} end},
  ["progress.bar:set"] = {function() return {{loss = 1}} end},
  ["progress.bar:update"] = {function() return {1, {loss = 1}} end},
  ["progress.bar:write"] = {function() return {"a line"} end},
}
-- A row serves every name of its function (ai.mm is ai.Tensor.mm, ai.F.conv2d is ai.conv2d).
local BASE_OF = {}
for name, row in pairs(BASE) do
  local f = ai
  for part in name:gmatch("[^.]+") do if part ~= "ai" then f = type(f) == "table" and f[part] or nil end end
  if f then BASE_OF[f] = row else io.stderr:write("badinput: BASE names a missing function ", name, "\n") end
end
-- Functions whose extra arguments are meant to go on (f(...) is called with them): not misuse.
-- nn.Identity ignores its constructor's arguments, as PyTorch's does (a deliberate choice).
local VARARGS = {["ai.no_grad"] = true, ["ai.enable_grad"] = true, ["ai.nn.Identity"] = true}

local cases = {}
for ti, t in ipairs(targets) do
  cases[#cases + 1] = {ti, 0, 0}
  local tpl = t[3] and METHOD_TEMPLATES or TEMPLATES
  if HEAVY[t[1]] then
    for _, vi in ipairs(HEAVY_VALUES) do cases[#cases + 1] = {ti, 1, vi} end
  else
    for k = 1, #tpl do
      for vi = 1, #V do cases[#cases + 1] = {ti, k, vi} end
    end
  end
  if t[3] then for vi = 1, #V do cases[#cases + 1] = {ti, -1, vi} end end -- a bad self
  if not HEAVY[t[1]] and not VARARGS[t[1]] and not t[1]:match("[.:]_[%w_]*$") then -- public functions
    cases[#cases + 1] = {ti, -2, 1} -- an unknown option key
    cases[#cases + 1] = {ti, -2, 2} -- an extra trailing argument
  end
end

-- Targeted cases: huge sizes must be "not enough memory" (or a size error), never a crash.
local big = 1 << 40
local SPECIAL = {
  {"zeros(2^40)", function() return ai.zeros(big) end},
  {"empty(1e6, 1e6)", function() return ai.empty(1000000, 1000000) end},
  {"ones({2^31, 2^31})", function() return ai.ones({1 << 31, 1 << 31}) end},
  {"randn(maxint)", function() return ai.randn(math.maxinteger) end},
  {"rand(2^32, 2^32)", function() return ai.rand(1 << 32, 1 << 32) end},
  {"full({2^62, 4}, 1)", function() return ai.full({1 << 62, 4}, 1) end},
  {"eye(2^31)", function() return ai.eye(1 << 31) end},
  {"eye(2^20, 2^21)", function() return ai.eye(1 << 20, 1 << 21) end},
  {"arange(1e15)", function() return ai.arange(1e15) end},
  {"arange(0, 1, 1e-300)", function() return ai.arange(0, 1, 1e-300) end},
  {"arange(0, inf)", function() return ai.arange(0, Inf) end},
  {"arange(0, 1, nan)", function() return ai.arange(0, 1, NaN) end},
  {"arange(-inf, inf, 1)", function() return ai.arange(-Inf, Inf, 1) end},
  {"range(1, 2^62)", function() return ai.range(1, 1 << 62) end},
  {"range(0, 1, 1e-300)", function() return ai.range(0, 1, 1e-300) end},
  {"linspace(0, 1, 2^50)", function() return ai.linspace(0, 1, 1 << 50) end},
  {"linspace(0, 1, -5)", function() return ai.linspace(0, 1, -5) end},
  {"randperm(2^40)", function() return ai.randperm(big) end},
  {"randperm(-1)", function() return ai.randperm(-1) end},
  {"randint(0, maxint, 3)", function() return ai.randint(0, math.maxinteger, 3) end},
  {"randint(minint, maxint, 3)", function() return ai.randint(math.mininteger, math.maxinteger, 3) end},
  {"random_(0, maxint)", function() return ai.empty(3, {dtype = "i64"}):random_(0, math.maxinteger) end},
  {"expand(1e6, 1e6):contiguous()", function() return T(1):expand(1000000, 1000000):contiguous() end},
  {"expand(1e6, 1e6) + 1", function() return T(1):expand(1000000, 1000000) + 1 end},
  {"expand(2^40, 2^40):sum(1)", function() return T(1):view(1, 1):expand(1 << 40, 1 << 40):sum(1) end},
  {"matmul(expanded 1e6x1e6)", function()
    local a = T(1):view(1, 1):expand(1000000, 1000000)
    return ai.matmul(a, a)
  end},
  {"linear(1e5 x 1e5)", function()
    return ai.linear(T(1):view(1, 1):expand(100000, 100000), T(1):view(1, 1):expand(100000, 100000))
  end},
  {"conv2d(huge out channels)", function()
    return ai.conv2d(ai.ones(1, 1, 4, 4), T(1):view(1, 1, 1, 1):expand(1 << 40, 1, 1, 1))
  end},
  {"conv2d(huge stride)", function() return ai.conv2d(ai.ones(1, 1, 4, 4), ai.ones(1, 1, 3, 3), {stride = math.maxinteger}) end},
  {"conv2d(huge padding)", function() return ai.conv2d(ai.ones(1, 1, 4, 4), ai.ones(1, 1, 3, 3), {padding = 1 << 30}) end},
  {"conv2d(dilation 2^31)", function() return ai.conv2d(ai.ones(1, 1, 4, 4), ai.ones(1, 1, 3, 3), {dilation = 1 << 31}) end},
  {"conv2d(groups 0)", function() return ai.conv2d(ai.ones(1, 2, 4, 4), ai.ones(2, 1, 3, 3), {groups = 0}) end},
  {"conv2d(groups nan)", function() return ai.conv2d(ai.ones(1, 2, 4, 4), ai.ones(2, 1, 3, 3), {groups = NaN}) end},
  {"conv2d(groups 1e300)", function() return ai.conv2d(ai.ones(1, 2, 4, 4), ai.ones(2, 1, 3, 3), {groups = 1e300}) end},
  {"conv_transpose2d(huge output_padding)", function()
    return ai.conv_transpose2d(ai.ones(1, 1, 4, 4), ai.ones(1, 1, 3, 3), {stride = 2, output_padding = 1 << 30})
  end},
  {"max_pool2d(kernel 2^31)", function() return ai.max_pool2d(ai.ones(1, 1, 4, 4), 1 << 31) end},
  {"max_pool2d(kernel 0)", function() return ai.max_pool2d(ai.ones(1, 1, 4, 4), 0) end},
  {"avg_pool2d(stride -1)", function() return ai.avg_pool2d(ai.ones(1, 1, 4, 4), 2, {stride = -1}) end},
  {"upsample(scale 1e300)", function() return ai.upsample(ai.ones(1, 1, 4, 4), {scale_factor = 1e300}) end},
  {"upsample(scale inf)", function() return ai.upsample(ai.ones(1, 1, 4, 4), {scale_factor = Inf}) end},
  {"upsample(scale nan)", function() return ai.upsample(ai.ones(1, 1, 4, 4), {scale_factor = NaN}) end},
  {"upsample(size 2^20)", function() return ai.upsample(ai.ones(1, 1, 4, 4), {size = 1 << 20}) end},
  {"upsample(size 2^31)", function() return ai.upsample(ai.ones(1, 1, 4, 4), {size = 1 << 31}) end},
  {"adaptive_avg_pool2d(2^31)", function() return ai.adaptive_avg_pool2d(ai.ones(1, 1, 4, 4), 1 << 31) end},
  {"adaptive_avg_pool2d(0)", function() return ai.adaptive_avg_pool2d(ai.ones(1, 1, 4, 4), 0) end},
  {"pad(2^30)", function() return ai.pad(ai.ones(1, 1, 4, 4), {1 << 30, 1 << 30, 1 << 30, 1 << 30}) end},
  {"pad(-100)", function() return ai.pad(ai.ones(1, 1, 4, 4), {-100, 0, 0, 0}) end},
  {"pad(reflect 10)", function() return ai.pad(ai.ones(1, 1, 4, 4), {10, 10, 10, 10}, {mode = "reflect"}) end},
  {"pad(maxint)", function() return ai.pad(ai.ones(1, 1, 4, 4), {math.maxinteger, 0, 0, 0}) end},
  {"group_norm(groups 0)", function() return ai.group_norm(ai.ones(2, 4, 3, 3), 0) end},
  {"group_norm(groups maxint)", function() return ai.group_norm(ai.ones(2, 4, 3, 3), math.maxinteger) end},
  {"embedding(index 2^40)", function() return ai.embedding(T({1 << 40}, {dtype = "i64"}), ai.ones(3, 2)) end},
  {"embedding(index minint)", function() return ai.embedding(T({math.mininteger}, {dtype = "i64"}), ai.ones(3, 2)) end},
  {"cross_entropy(target 2^40)", function() return ai.cross_entropy(ai.ones(2, 3), T({1, 1 << 40}, {dtype = "i64"})) end},
  {"cross_entropy(target minint)", function() return ai.cross_entropy(ai.ones(2, 3), T({1, math.mininteger}, {dtype = "i64"})) end},
  {"cross_entropy(ignore_index nan)", function()
    return ai.cross_entropy(ai.ones(2, 3), T({1, 2}, {dtype = "i64"}), {ignore_index = NaN})
  end},
  {"cross_entropy(ignore_index 1e300)", function()
    return ai.cross_entropy(ai.ones(2, 3), T({1, 2}, {dtype = "i64"}), {ignore_index = 1e300})
  end},
  {"nll_loss(weight wrong size)", function()
    return ai.nll_loss(ai.ones(2, 3), T({1, 2}, {dtype = "i64"}), {weight = ai.ones(7)})
  end},
  {"gather(index 2^40)", function() return ai.gather(X(), 2, T({{1 << 40}}, {dtype = "i64"})) end},
  {"gather(index minint)", function() return ai.gather(X(), 2, T({{math.mininteger}}, {dtype = "i64"})) end},
  {"scatter(index -5)", function() return ai.scatter(X(), 2, T({{-5}}, {dtype = "i64"}), 1) end},
  {"index_select({maxint})", function() return ai.index_select(X(), 1, {math.maxinteger}) end},
  {"index_select({minint})", function() return ai.index_select(X(), 1, {math.mininteger}) end},
  {"index_add(index 99)", function() return ai.index_add(X(), 1, {99}, ai.ones(1, 3)) end},
  {"narrow(minint)", function() return X():narrow(1, math.mininteger, 1) end},
  {"narrow(scalar, minint)", function() return T(1):narrow(1, math.mininteger, 1) end},
  {"narrow(1, maxint)", function() return X():narrow(1, 1, math.maxinteger) end},
  {"select(maxint)", function() return X():select(1, math.maxinteger) end},
  {"select(minint)", function() return X():select(1, math.mininteger) end},
  {"slice(minint, maxint, maxint)", function() return X():slice(1, math.mininteger, math.maxinteger, math.maxinteger) end},
  {"slice(step 0)", function() return X():slice(1, 1, 2, 0) end},
  {"slice(step -1)", function() return X():slice(1, 1, 2, -1) end},
  {"index {minint}", function() return X()[{math.mininteger}] end},
  {"index {{1, maxint, maxint}}", function() return X()[{{1, 2, math.maxinteger}}] end},
  {"index {{minint, 1}}", function() return X()[{{math.mininteger, 1}}] end},
  {"index 2^62", function() return X()[1 << 62] end},
  {"newindex {{1,2,0}}", function() local x = X() x[{{1, 2, 0}}] = 1 return x end},
  {"newindex nan", function() local x = X() x[1] = NaN return x end},
  {"newindex string key", function() local x = X() x.foo = 1 return x end},
  {"view(-1, -1)", function() return X():view(-1, -1) end},
  {"view(maxint, 0)", function() return X():view(math.maxinteger, 0) end},
  {"view(minint)", function() return X():view(math.mininteger) end},
  {"view(2^32, 2^32, 2^32)", function() return X():view(1 << 32, 1 << 32, 1 << 32) end},
  {"reshape(-2)", function() return X():reshape(-2) end},
  {"reshape(0, -1)", function() return ai.zeros(0, 3):reshape(0, -1) end},
  {"expand(-1, maxint)", function() return X():expand(-1, math.maxinteger) end},
  {"expand(-5, 3)", function() return X():expand(-5, 3) end},
  {"expand 9 dims", function() return X():expand(1, 1, 1, 1, 1, 1, 1, 2, 3) end},
  {"permute(1, 1)", function() return X():permute(1, 1) end},
  {"permute(maxint, 1)", function() return X():permute(math.maxinteger, 1) end},
  {"permute(2^32+1, 1)", function() return X():permute((1 << 32) + 1, 1) end},
  {"permute 9 dims", function() return X():permute(1, 2, 3, 4, 5, 6, 7, 8, 9) end},
  {"permute table 9", function() return X():permute({1, 2, 3, 4, 5, 6, 7, 8, 9}) end},
  {"transpose(maxint, 1)", function() return X():transpose(math.maxinteger, 1) end},
  {"flatten(2, 1)", function() return X():flatten(2, 1) end},
  {"unsqueeze 9th dim", function() return ai.ones(1, 1, 1, 1, 1, 1, 1, 1):unsqueeze(1) end},
  {"cat 9-D", function() return ai.cat({ai.ones(1, 1, 1, 1, 1, 1, 1, 1), ai.ones(1, 1, 1, 1, 1, 1, 1, 1)}, 9) end},
  {"stack 8-D", function() return ai.stack({ai.ones(1, 1, 1, 1, 1, 1, 1, 1), ai.ones(1, 1, 1, 1, 1, 1, 1, 1)}) end},
  {"stack mixed dtypes", function() return ai.stack({X(), X():long()}) end},
  {"cat 10000 tensors", function()
    local ts = {}
    for i = 1, 10000 do ts[i] = ai.ones(1) end
    return ai.cat(ts)
  end},
  {"split(maxint)", function() return X():split(math.maxinteger) end},
  {"split({maxint, minint})", function() return X():split({math.maxinteger, math.mininteger}) end},
  {"split({-1, 3})", function() return X():split({-1, 3}) end},
  {"chunk(maxint)", function() return X():chunk(math.maxinteger) end},
  {"chunk(maxint) on empty", function() return ai.zeros(0, 3):chunk(math.maxinteger) end},
  {"sum({1,1,1})", function() return X():sum({1, 1, 1}) end},
  {"sum({1,2,3,...,9})", function() return X():sum({1, 2, 3, 4, 5, 6, 7, 8, 9}) end},
  {"max(dim) on 0x3", function() return ai.zeros(0, 3):max(1) end},
  {"max() on empty", function() return ai.empty(0):max() end},
  {"argmax() on empty", function() return ai.empty(0):argmax() end},
  {"prod() of 0x3 dim 2", function() return ai.zeros(0, 3):prod(2) end},
  {"var of one element", function() return T({1}):var() end},
  {"norm(-inf)", function() return X():norm("-inf") end},
  {"norm(0)", function() return X():norm(0) end},
  {"cumsum on 0-d", function() return T(1):cumsum() end},
  {"matmul(0x3, 3x0)", function() return ai.matmul(ai.zeros(0, 3), ai.zeros(3, 0)) end},
  {"matmul(2x0, 0x2)", function() return ai.matmul(ai.zeros(2, 0), ai.zeros(0, 2)) end},
  {"matmul 8-D batch", function() return ai.matmul(ai.ones(2, 1, 1, 1, 1, 1, 2, 3), ai.ones(1, 2, 1, 1, 1, 1, 3, 2)) end},
  {"matmul(0-d, 0-d)", function() return ai.matmul(T(1), T(2)) end},
  {"eigh(0x0)", function() return ai.linalg.eigh(ai.zeros(0, 0)) end},
  {"eigh(nan)", function() return ai.linalg.eigh(ai.full({3, 3}, NaN)) end},
  {"eigh(inf)", function() return ai.linalg.eigh(ai.full({3, 3}, Inf)) end},
  {"eigh(1x1)", function() return ai.linalg.eigh(ai.ones(1, 1)) end},
  {"softmax on 0x3", function() return ai.softmax(ai.zeros(0, 3), 2) end},
  {"softmax nan", function() return ai.softmax(ai.full({2, 3}, NaN), 2) end},
  {"layer_norm on 0x3", function() return ai.layer_norm(ai.zeros(0, 3), 3) end},
  {"batch_norm on 0x2x4x4", function() return ai.batch_norm(ai.zeros(0, 2, 4, 4), nil, nil, nil, nil, {training = true}) end},
  {"batch_norm 1 sample training", function()
    return ai.batch_norm(ai.ones(1, 2), ai.zeros(2), ai.ones(2), nil, nil, {training = true})
  end},
  {"conv2d on 0x2x4x4", function() return ai.conv2d(ai.zeros(0, 2, 4, 4), W4()) end},
  {"conv2d kernel larger than input", function() return ai.conv2d(ai.ones(1, 2, 2, 2), W4()) end},
  {"conv2d 0 out channels", function() return ai.conv2d(ai.ones(1, 2, 4, 4), ai.zeros(0, 2, 3, 3)) end},
  {"dropout(p=2)", function() return ai.dropout(X(), 2) end},
  {"dropout(p=nan)", function() return ai.dropout(X(), NaN) end},
  {"bernoulli(p nan)", function() return ai.bernoulli(ai.full({3}, NaN)) end},
  {"bernoulli_(2)", function() return X():bernoulli_(2) end},
  {"uniform_(inf, -inf)", function() return X():uniform_(Inf, -Inf) end},
  {"normal_(0, -1)", function() return X():normal_(0, -1) end},
  {"normal(0, 1, maxint)", function() return ai.normal(0, 1, math.maxinteger) end},
  {"tensor(deep 9)", function() return ai.tensor({{{{{{{{{1}}}}}}}}}) end},
  {"tensor(deep 1000)", function()
    local t = 1
    for _ = 1, 1000 do t = {t} end
    return ai.tensor(t)
  end},
  {"tensor(self-referencing table)", function() local t = {} t[1] = t return ai.tensor(t) end},
  {"tensor(ragged)", function() return ai.tensor({{1, 2}, {3}}) end},
  {"tensor(table with holes)", function() return ai.tensor({1, nil, 3}) end},
  {"tensor({nan, inf} as i64)", function() return ai.tensor({NaN, Inf, -Inf, 1e300}, {dtype = "i64"}) end},
  {"tensor({1e300} as u8)", function() return ai.tensor({1e300, -1e300, NaN}, {dtype = "u8"}) end},
  {"to i64 from nan", function() return ai.full({3}, NaN):long() end},
  {"fill_ i64 with inf", function() return ai.zeros(3, {dtype = "i64"}):fill_(Inf) end},
  {"i64 div by zero", function() return T({1, 2}, {dtype = "i64"}) / T({0, 0}, {dtype = "i64"}) end},
  {"i64 remainder by zero", function() return T({1, 2}, {dtype = "i64"}) % T({0, 0}, {dtype = "i64"}) end},
  {"i64 floor_divide by zero", function() return ai.floor_divide(T({1, 2}, {dtype = "i64"}), 0) end},
  {"i64 minint // -1", function() return ai.floor_divide(T({math.mininteger}, {dtype = "i64"}), -1) end},
  {"i64 minint % -1", function() return ai.remainder(T({math.mininteger}, {dtype = "i64"}), -1) end},
  {"i64 pow huge", function() return ai.pow(T({3}, {dtype = "i64"}), 1000) end},
  {"i64 neg minint", function() return -T({math.mininteger}, {dtype = "i64"}) end},
  {"i64 abs minint", function() return T({math.mininteger}, {dtype = "i64"}):abs() end},
  {"i64 sum overflow", function() return T({math.maxinteger, math.maxinteger}, {dtype = "i64"}):sum() end},
  {"i64 prod overflow", function() return T({math.maxinteger, math.maxinteger}, {dtype = "i64"}):prod() end},
  {"i64 cumsum overflow", function() return T({math.maxinteger, math.maxinteger}, {dtype = "i64"}):cumsum(1) end},
  {"i64 + maxint", function() return T({math.maxinteger}, {dtype = "i64"}) + math.maxinteger end},
  {"i64 * maxint", function() return T({math.maxinteger}, {dtype = "i64"}) * math.maxinteger end},
  {"i64 mean", function() return T({math.maxinteger, math.maxinteger}, {dtype = "i64"}):mean() end},
  {"i64 sub minint", function() return T({0}, {dtype = "i64"}) - math.mininteger end},
  {"arange i64 overflow", function() return ai.arange(math.mininteger, math.maxinteger, 1 << 62) end},
  {"set_num_threads(100000)", function() ai.set_num_threads(100000) return (ai.ones(100000) + 1):sum() end},
  {"set_num_threads(2^31)", function() ai.set_num_threads(1 << 31) return (ai.ones(100000) + 1):sum() end},
  {"manual_seed(minint)", function() ai.manual_seed(math.mininteger) return ai.rand(3) end},
  {"set_rng_state(minint)", function() ai.set_rng_state({seed = math.mininteger, offset = -1}) return ai.rand(3) end},
  {"backward twice", function() local x = X():requires_grad_(true) local y = (x * x):sum() y:backward() y:backward() end},
  {"backward non-scalar", function() (X():requires_grad_(true) * 2):backward() end},
  {"backward grad wrong shape", function() (X():requires_grad_(true) * 2):backward(ai.ones(7)) end},
  {"backward grad i64", function() (X():requires_grad_(true) * 2):backward(ai.ones(2, 3, {dtype = "i64"})) end},
  {"backward through closed", function()
    local x = X():requires_grad_(true)
    local y = x * 2
    local z = y:sum()
    ai.free(y)
    z:backward()
    return x.grad
  end},
  {"backward after in-place", function()
    local x = X():requires_grad_(true)
    local y = x:exp()
    local z = y:sum()
    ai.no_grad(function() y:add_(1) end)
    z:backward()
  end},
  {"grad(y, x) unrelated", function() return ai.grad(X():requires_grad_(true):sum(), X():requires_grad_(true)) end},
  {"grad wrong grad_outputs", function()
    local x = X():requires_grad_(true)
    return ai.grad(x * 2, x, {grad_outputs = ai.ones(5)})
  end},
  {"grad 10000 inputs", function()
    local xs = {}
    for i = 1, 10000 do xs[i] = ai.ones(1):requires_grad_(true) end
    local s = xs[1] * 1
    for i = 2, 100 do s = s + xs[i] end
    return ai.grad(s:sum(), xs, {allow_unused = true})
  end},
  {"deep graph 100000 nodes backward", function()
    local x = ai.ones(1):requires_grad_(true)
    local y = x
    for _ = 1, 100000 do y = y * 1 end
    y:sum():backward()
    return x.grad
  end},
  {"requires_grad on i64", function() return T({1}, {dtype = "i64"}):requires_grad_(true) end},
  {"grad = wrong shape", function() local x = X() x.grad = ai.ones(7) end},
  {"json.encode(self-reference)", function() local t = {} t.a = t return ai.json.encode(t) end},
  {"json.encode(deep 10000)", function()
    local t = {}
    local c = t
    for _ = 1, 10000 do c.a = {} c = c.a end
    return ai.json.encode(t)
  end},
  {"json.decode(deep 100000)", function() return ai.json.decode(string.rep("[", 100000)) end},
  {"json.decode(1e400)", function() return ai.json.decode("1e400") end},
  {"json.decode(huge int)", function() return ai.json.decode("123456789012345678901234567890") end},
  {"json.decode(bad utf8)", function() return ai.json.decode('"\255\254"') end},
  {"json.decode(nul)", function() return ai.json.decode('"a\0b"') end},
  {"json.encode(nan)", function() return ai.json.encode({NaN}) end},
  {"json.encode(function)", function() return ai.json.encode({print}) end},
  {"json.encode(sparse)", function() return ai.json.encode({[1] = 1, [1000000] = 2}) end},
  {"save_safetensors(name with NUL)", function() return ai.io.save_safetensors("o.safetensors", {["a\0b"] = X()}) end},
  {"save_safetensors(0-d, empty, expanded)", function()
    return ai.io.save_safetensors("o.safetensors", {a = T(1), b = ai.empty(0), c = T({{1, 2}}):expand(3, 2)})
  end},
  {"save_safetensors(closed)", function()
    local t = X()
    ai.free(t)
    return ai.io.save_safetensors("o.safetensors", {a = t})
  end},
  {"save_safetensors(into a missing folder)", function() return ai.io.save_safetensors("/nonexistent/x.safetensors", {a = X()}) end},
  {"save_safetensors(onto a folder)", function() return ai.io.save_safetensors("adir", {a = X()}) end},
  {"write_idx(0-size)", function() return ai.io.write_idx("o.idx", ai.zeros(0, 3, {dtype = "u8"})) end},
  {"save_png(0x0)", function() return ai.io.save_png("o.png", ai.zeros(0, 0)) end},
  {"save_png(1x2^40)", function() return ai.io.save_png("o.png", T(1):view(1, 1):expand(1, 1 << 40)) end},
  {"save_png(nan)", function() return ai.io.save_png("o.png", ai.full({3, 4}, NaN)) end},
  {"png_bytes(5 channels)", function() return ai.io.png_bytes(ai.zeros(5, 2, 2)) end},
  {"save_gif(empty list)", function() return ai.io.save_gif("o.gif", {}) end},
  {"save_gif(mixed shapes)", function() return ai.io.save_gif("o.gif", {ai.zeros(4, 4), ai.zeros(5, 5)}) end},
  {"save_gif(delay nan)", function() return ai.io.save_gif("o.gif", ai.zeros(2, 4, 4), {delay = NaN}) end},
  {"save_gif(0 frames)", function() return ai.io.save_gif("o.gif", ai.zeros(0, 4, 4)) end},
  {"save_gif(nan frames)", function() return ai.io.save_gif("o.gif", ai.full({2, 3, 4, 4}, NaN)) end},
  {"save_gif(huge frame)", function() return ai.io.save_gif("o.gif", T(1):view(1, 1, 1):expand(1, 1 << 20, 1 << 20)) end},
  {"load_png(png bytes truncated)", function() return ai.io.load_png(png_ok:sub(1, 40)) end},
  {"load_png(png signature only)", function() return ai.io.load_png(png_ok:sub(1, 8)) end},
  {"image.grid(0 images)", function() return ai.image.grid(ai.zeros(0, 1, 4, 4)) end},
  {"image.grid(nrow 0)", function() return ai.image.grid(ai.zeros(3, 1, 4, 4), {nrow = 0}) end},
  {"image.grid(nrow nan)", function() return ai.image.grid(ai.zeros(3, 1, 4, 4), {nrow = NaN}) end},
  {"image.resize(size 0)", function() return ai.image.resize(ai.zeros(1, 4, 4), {size = 0}) end},
  {"image.resize(size 2^31)", function() return ai.image.resize(ai.zeros(1, 4, 4), {size = 1 << 31}) end},
  {"image.resize(size nan)", function() return ai.image.resize(ai.zeros(1, 4, 4), {size = NaN}) end},
  {"checkpoint.save(cycle)", function() local t = {} t.t = t return ai.checkpoint.save("c.safetensors", {x = t}) end},
  {"checkpoint.save(function)", function() return ai.checkpoint.save("c.safetensors", {x = print}) end},
  {"checkpoint.load(not a checkpoint)", function() return ai.checkpoint.load("st_notckpt.safetensors") end},
  {"checkpoint.load(truncated)", function() return ai.checkpoint.load("st_trunc.safetensors") end},
  {"checkpoint.load(into wrong model)", function()
    ai.checkpoint.save("c.safetensors", {model = nn.Linear(3, 4)})
    return ai.checkpoint.load("c.safetensors", {model = nn.Linear(5, 6)})
  end},
  {"load_state_dict(wrong shapes)", function()
    local m = nn.Linear(3, 4)
    return m:load_state_dict({weight = ai.zeros(7, 7), bias = ai.zeros(9)})
  end},
  {"load_state_dict(wrong types)", function()
    return nn.Linear(3, 4):load_state_dict({weight = "x", bias = 5})
  end},
  {"optimizer load_state_dict(garbage)", function()
    local o = ai.optim.Adam(nn.Linear(3, 2):parameters())
    return o:load_state_dict({state = {[1] = {exp_avg = "x"}}, param_groups = {{lr = "y"}}})
  end},
  {"optimizer step with NaN grads", function()
    local m = nn.Linear(3, 2)
    local o = ai.optim.Adam(m:parameters())
    m(ai.full({4, 3}, NaN)):sum():backward()
    o:step()
    return m.weight
  end},
  {"Linear(0, 0) forward", function() return nn.Linear(0, 0)(ai.zeros(2, 0)) end},
  {"Linear(-1, 3)", function() return nn.Linear(-1, 3) end},
  {"Linear(2^31, 2^31)", function() return nn.Linear(1 << 31, 1 << 31) end},
  {"Conv2d(1, 1, 0)", function() return nn.Conv2d(1, 1, 0) end},
  {"Conv2d(2^20, 2^20, 3)", function() return nn.Conv2d(1 << 20, 1 << 20, 3) end},
  {"Embedding(2^40, 2)", function() return nn.Embedding(1 << 40, 2) end},
  {"DataLoader(batch_size 0)", function() return ai.data.DataLoader(ai.data.TensorDataset(ai.rand(6, 3)), {batch_size = 0}) end},
  {"DataLoader(batch_size maxint)", function()
    local l = ai.data.DataLoader(ai.data.TensorDataset(ai.rand(6, 3)), {batch_size = math.maxinteger})
    for b in l:iter() do return b end
  end},
  {"TensorDataset(mismatched)", function() return ai.data.TensorDataset(ai.rand(6, 3), ai.rand(5)) end},
  {"random_split(bad lengths)", function() return ai.data.random_split(ai.data.TensorDataset(ai.rand(6, 3)), {4, 4}) end},
  {"ImageFolder(bad png)", function() return ai.data.ImageFolder{root = "imgdir", size = 4}:get(1) end},
  {"config.parse(bad)", function() return ai.config.parse({"lr=x", "--nope"}, {lr = 0.1}) end},
  {"config.parse(config=missing)", function() return ai.config.parse({"config=/nonexistent.json"}, {lr = 0.1}) end},
  {"config.parse(config=bad json)", function() return ai.config.parse({"config=json_bad.json"}, {lr = 0.1}) end},
  {"config.parse(--help)", function() return ai.config.parse({"--help"}, {lr = 0.1}) end},
  {"metrics.read(bad line)", function() return ai.metrics.read("metrics_bad.jsonl") end},
  {"metrics.read(folder)", function() return ai.metrics.read("adir") end},
  {"plot.canvas(maxint)", function() return ai.plot.canvas(math.maxinteger, math.maxinteger) end},
  {"plot.curves(nan)", function() return ai.plot.curves("p.png", {{step = 1, l = NaN}, {step = 2, l = Inf}}, {keys = {"l"}}) end},
  {"progress.bar(total nan)", function()
    local b = ai.progress.bar{total = NaN, file = io.open("/dev/null", "w")}
    b:update(1)
    b:close()
  end},
  {"sched OneCycleLR(total_steps 0)", function()
    return ai.sched.OneCycleLR(ai.optim.SGD(nn.Linear(1, 1):parameters(), {lr = 0.1}), {max_lr = 1, total_steps = 0})
  end},
  {"gradcheck(non-function)", function() return ai.gradcheck(5, {X()}) end},
  {"gradcheck(error inside)", function() return ai.gradcheck(function() error("boom") end, {X():double():requires_grad_(true)}) end},
}
-- Files of every kind, through every loader.
local LOADERS = {
  {"io.read_idx", function(p) return ai.io.read_idx(p) end},
  {"io.load_png", function(p) return ai.io.load_png(p) end},
  {"io.load_safetensors", function(p) return ai.io.load_safetensors(p) end},
  {"image.load", function(p) return ai.image.load(p) end},
  {"load", function(p) return ai.load(p) end},
  {"checkpoint.read", function(p) return ai.checkpoint.read(p) end},
  {"checkpoint.load", function(p) return ai.checkpoint.load(p, {model = nn.Linear(2, 3)}) end},
  {"metrics.read", function(p) return ai.metrics.read(p) end},
}
for _, l in ipairs(LOADERS) do
  for _, f in ipairs(FILES) do
    SPECIAL[#SPECIAL + 1] = {l[1] .. "('" .. f .. "')", function() return l[2](f) end}
  end
end
for i = 1, #SPECIAL do cases[#cases + 1] = {-i, 0, 0} end

-- The BASE row of target t (a function, or a method by its name), or nil.
local function base_row(t)
  if t[3] then return METHOD_BASE[t[1]] end
  return BASE_OF[t[2]]
end

-- The working call of target ti: {index in BASE_ARGS (or 0: BASE), n args}, false when none.
local base_found = {}
local function find_base(ti)
  if base_found[ti] ~= nil then return base_found[ti] end
  local t = targets[ti]
  local found = false
  local row = base_row(t)
  local list = row and {row[1]} or (t[3] and METHOD_BASE_ARGS or BASE_ARGS)
  for j, make in ipairs(list) do
    local ok, args = pcall(make)
    if ok then
      local n = 0
      for k in pairs(args) do if math.type(k) == "integer" and k > n then n = k end end
      local ok2 = pcall(function()
        if t[3] then return t[2](t[3](), table.unpack(args, 1, n)) end
        return t[2](table.unpack(args, 1, n))
      end)
      ai.set_grad_enabled(true)
      if ok2 then found = {row and 0 or j, n} break end
    end
  end
  base_found[ti] = found
  return found
end

local function show_args(args, n)
  local parts = {}
  for i = 1, n do
    local v = args[i]
    if v == UNKNOWN_KEY or v == EXTRA then parts[i] = ("%q"):format(v)
    elseif type(v) == "table" and v[UNKNOWN_KEY] then parts[i] = "{.., " .. UNKNOWN_KEY .. " = true}"
    elseif type(v) == "string" then parts[i] = ("%q"):format(v)
    else parts[i] = type(v) == "userdata" and "tensor" or type(v) == "table" and "{..}" or tostring(v) end
  end
  return "(" .. table.concat(parts, ", ") .. ")"
end

-- The arguments of misuse case (ti, variant): the base call with an unknown option key (in its
-- options table when BASE names one, else as a new last argument) or an extra last argument.
local function misuse_args(ti, variant)
  local b = find_base(ti)
  if not b then return nil end
  local t = targets[ti]
  local row = base_row(t)
  local args = b[1] == 0 and row[1]() or (t[3] and METHOD_BASE_ARGS or BASE_ARGS)[b[1]]()
  local n = b[2]
  if variant == 1 then
    if row and row.opts then
      local o = {}
      for k, v in pairs(args[row.opts] or {}) do o[k] = v end
      o[UNKNOWN_KEY] = true
      args[row.opts] = o
      n = math.max(n, row.opts)
    else
      n = n + 1
      args[n] = {[UNKNOWN_KEY] = true}
    end
  else
    n = n + 1
    args[n] = EXTRA
  end
  return args, n
end

local function case_name(c)
  local ti, k, vi = c[1], c[2], c[3]
  if ti < 0 then return "special: " .. SPECIAL[-ti][1] end
  local t = targets[ti]
  if k == 0 then return t[1] .. "()" end
  if k == -2 then
    local args, n = misuse_args(ti, vi)
    local what = vi == 1 and "an unknown option key" or "an extra argument"
    if not args then return t[1] .. " with " .. what .. " (no working call found)" end
    return t[1] .. show_args(args, n) .. ": " .. what .. " accepted"
  end
  if k == -1 then return t[1] .. " with self = " .. V[vi][1] end
  local tpl = (t[3] and METHOD_TEMPLATES or TEMPLATES)[k]
  return t[1] .. " " .. tpl[1] .. " with v = " .. V[vi][1]
end

local function run_case(c)
  local ti, k, vi = c[1], c[2], c[3]
  if ti < 0 then return SPECIAL[-ti][2]() end
  local t = targets[ti]
  local f = t[2]
  if k == -2 then
    local args, n = misuse_args(ti, vi)
    if not args then return "nobase" end
    local self = t[3] and t[3]()
    local ok = pcall(function()
      if t[3] then return f(self, table.unpack(args, 1, n)) end
      return f(table.unpack(args, 1, n))
    end)
    return ok and "accepted" or "refused"
  end
  if t[3] then
    local self = k == -1 and V[vi][2]() or t[3]()
    if k <= 0 then return f(self) end
    local args = METHOD_TEMPLATES[k][2](V[vi][2]())
    return f(self, table.unpack(args, 1, 2))
  end
  if k == 0 then return f() end
  local args = TEMPLATES[k][2](V[vi][2]())
  local n = #TEMPLATES[k][2](1)
  return f(table.unpack(args, 1, n))
end

if describe then
  print(case_name(cases[first]))
  return
end

-- ---------------------------------------------------------------- run
local proto = assert(io.open(proto_path, "w"))
proto:setvbuf("no")
proto:write("N ", #cases, "\n")
-- a case that runs away in Lua code is stopped (a C loop is caught by the parent's timeout)
local deadline = math.huge
debug.sethook(function()
  if os.clock() > deadline then error("case timed out", 2) end
end, "", 100000)
local default_rng = ai.get_rng_state()
-- AIART_BADINPUT_PROFILE=1: the wall time per function, slowest first, on stderr
local PROFILE = os.getenv("AIART_BADINPUT_PROFILE") and {} or nil
local now = ai.clock
local VERBOSE = os.getenv("AIART_BADINPUT_VERBOSE")
local ONLY_SPECIAL = os.getenv("AIART_BADINPUT_ONLY_SPECIAL") -- the targeted cases alone
local ONLY_MISUSE = os.getenv("AIART_BADINPUT_ONLY_MISUSE") -- the misuse cases alone
local stride = tonumber(os.getenv("AIART_BADINPUT_STRIDE") or "") or 1
for i = first, math.min(last, #cases) do
  -- the misuse cases (k == -2) always run: they are few, and each one is a function's check
  if stride > 1 and (i - 1) % stride ~= 0 and cases[i][1] > 0 and cases[i][2] ~= -2 then goto continue end
  if ONLY_SPECIAL and cases[i][1] > 0 then goto continue end
  if ONLY_MISUSE and cases[i][2] ~= -2 then goto continue end
  proto:write("C ", i, "\n")
  local t_case = PROFILE and now()
  ai.manual_seed(1)
  deadline = os.clock() + 3
  local ok, err = pcall(run_case, cases[i])
  deadline = math.huge
  -- undo process-wide settings a case may have changed
  ai.alloc_fail_after(0)
  ai.set_grad_enabled(true)
  ai.set_num_threads(1)
  ai.set_rng_state(default_rng)
  local kind = "ok"
  if not ok then
    local m = tostring(err)
    kind = m:find("not enough memory", 1, true) and "oom" or m:find("case timed out", 1, true) and "slow" or "err"
    if cases[i][2] == -2 then -- the harness itself failed: said, and counted as broken
      kind = "broken"
      io.stderr:write("badinput: misuse case ", i, " could not run: ", m, "\n")
    end
  elseif cases[i][2] == -2 then
    kind = err
    local t = targets[cases[i][1]]
    if kind == "accepted" then
      proto:write("A ", i, " ", t.c and "C " or "Lua ", (case_name(cases[i]):gsub("\n", " ")), "\n")
    elseif kind == "nobase" and t.c and cases[i][3] == 1 then
      proto:write("B ", i, " ", t[1], "\n")
    end
  end
  proto:write("R ", i, " ", kind, "\n")
  if VERBOSE then io.stderr:write(kind, "\t", case_name(cases[i]), "\t", ok and "" or tostring(err):sub(1, 200), "\n") end
  if PROFILE then
    local name = cases[i][1] > 0 and targets[cases[i][1]][1] or "special"
    PROFILE[name] = (PROFILE[name] or 0) + (now() - t_case)
  end
  if i % 500 == 0 then collectgarbage() end
  ::continue::
end
debug.sethook()
if PROFILE then
  local ks = {}
  for k, v in pairs(PROFILE) do ks[#ks + 1] = {k, v} end
  table.sort(ks, function(a, b) return a[2] > b[2] end)
  for j = 1, math.min(40, #ks) do io.stderr:write(("%8.3f s  %s\n"):format(ks[j][2], ks[j][1])) end
end
collectgarbage()
collectgarbage()
proto:write("END\n")
proto:close()
