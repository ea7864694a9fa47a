-- tests/test_allocfail.lua: allocation failure everywhere. Each operation runs under
--  * ai.alloc_fail_after(n): the n-th tensor allocation of the C core fails, and
--  * ai._debug.lua_alloc_failing(n, f): the n-th Lua allocation fails, and every later one,
-- for n = 1, 2, ... until it succeeds. Every failure must be a clean Lua error saying "not
-- enough memory", with no crash, and leave no tensor memory behind (ai.memory().live is back to
-- where it was once the garbage is collected; under `make asan` LeakSanitizer checks the rest).
-- A success must give the same result as a run without failures.
local T = require "helper"
local ai = require "aiart"

local dir = T.tmpdir()
local FILES = {}
local NN = ai.nn

-- ---------------------------------------------------------------- the operations
local function rt(shape) -- a deterministic tensor
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  return ai.linspace(-1, 1, n):reshape(shape)
end

local function summary(v) -- a result reduced to something comparable
  if type(v) == "userdata" and v.tolist then return v:double():sum():item(), v.shape end
  if type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do out[tostring(k)] = (summary(x)) end
    return out
  end
  return v
end

local OPS = {
  {"zeros/ones/full", function() return ai.zeros(3, 4) + ai.ones(3, 4) + ai.full({3, 4}, 2) end},
  {"rand/randn", function() ai.manual_seed(3) return ai.rand(5, 6) + ai.randn(5, 6) end},
  {"arange/linspace/eye", function() return ai.arange(12):float():view(3, 4) + ai.linspace(0, 1, 12):view(3, 4) + ai.eye(3, 4) end},
  {"tensor from tables", function() return ai.tensor({{1, 2, 3}, {4, 5, 6}}) end},
  {"clone/contiguous/transpose", function() return rt{3, 4}:t():contiguous():clone() end},
  {"dtype conversions", function() return rt{3, 4}:double():long():byte():float() end},
  {"binary broadcast", function() return rt{3, 1} * rt{1, 4} + rt{4} - 2 / (rt{3, 4}:abs() + 1) end},
  {"unary chain", function() return rt{4, 5}:exp():log1p():sigmoid():tanh():sqrt() end},
  {"where/clamp/masked_fill", function()
    local x = rt{4, 5}
    return ai.where(x:gt(0), x, -x):clamp(-0.5, 0.5):masked_fill(x:lt(-0.8), 7)
  end},
  {"comparisons and logic", function() return ai.logical_and(rt{4, 5}:gt(0), rt{4, 5}:lt(0.5)):float() end},
  {"reductions", function()
    local x = rt{4, 5, 6}
    return x:sum() + x:mean(2):sum() + x:var():sum() + x:std(3):sum() + x:norm() + x:logsumexp(1):sum() + x:prod(3):sum()
  end},
  {"max/min with indices", function()
    local v, i = rt{4, 5}:max(2)
    local w, j = rt{4, 5}:min(1)
    return v:sum() + i:float():sum() + w:sum() + j:float():sum() + rt{4, 5}:argmax():float()
  end},
  {"cumsum/cumprod", function() return rt{4, 5}:cumsum(2) + rt{4, 5}:cumprod(1) end},
  {"softmax/log_softmax", function() return ai.softmax(rt{4, 5}, 2) + ai.log_softmax(rt{4, 5}, 1) end},
  {"matmul 2-D and batched", function() return ai.matmul(rt{5, 6}, rt{6, 7}):sum() + ai.matmul(rt{2, 5, 6}, rt{6, 3}):sum() end},
  {"linear", function() return ai.linear(rt{4, 6}, rt{3, 6}, rt{3}) end},
  {"conv2d", function() return ai.conv2d(rt{2, 3, 8, 8}, rt{4, 3, 3, 3}, rt{4}, {padding = 1, stride = 2}) end},
  {"conv_transpose2d", function() return ai.conv_transpose2d(rt{2, 4, 4, 4}, rt{4, 3, 4, 4}, rt{3}, {stride = 2, padding = 1}) end},
  {"pooling", function()
    local x = rt{2, 3, 8, 8}
    return ai.max_pool2d(x, 2):sum() + ai.avg_pool2d(x, 2):sum() + ai.adaptive_avg_pool2d(x, 3):sum()
  end},
  {"norms", function()
    local x = rt{4, 6, 5, 5}
    return ai.batch_norm(x, nil, nil, rt{6}, rt{6}, {training = true}):sum() + ai.group_norm(x, 2):sum()
        + ai.layer_norm(x, {5, 5}):sum()
  end},
  {"upsample/pad", function()
    local x = rt{1, 2, 4, 4}
    return ai.upsample(x, {scale_factor = 2, mode = "bilinear"}):sum() + ai.pad(x, {1, 2, 1, 2}, {mode = "reflect"}):sum()
  end},
  {"losses", function()
    local x = rt{4, 5}
    local y = ai.tensor({1, 3, 5, 2}, {dtype = "i64"})
    return ai.cross_entropy(x, y) + ai.mse_loss(x, x * 0.5) + ai.bce_with_logits(x, x:sigmoid()) + ai.nll_loss(ai.log_softmax(x, 2), y)
  end},
  {"index ops", function()
    local x = rt{4, 5}
    local ix = ai.tensor({{1, 2}, {3, 1}, {2, 2}, {5, 4}}, {dtype = "i64"})
    return ai.index_select(x, 1, {2, 4}):sum() + ai.gather(x, 2, ix):sum() + ai.scatter(x, 2, ix, 1):sum()
        + ai.masked_select(x, x:gt(0)):sum()
  end},
  {"cat/stack/split", function()
    local parts = rt{6, 4}:split(2)
    return ai.cat(parts, 2):sum() + ai.stack(parts):sum() + #rt{5, 2}:chunk(2)
  end},
  {"backward through an MLP", function()
    local w1, w2 = rt{8, 6}:requires_grad_(true), rt{3, 8}:requires_grad_(true)
    local x = rt{5, 6}
    local y = ai.linear(ai.linear(x, w1):relu(), w2):sigmoid()
    local loss = ai.mse_loss(y, ai.zeros(5, 3))
    loss:backward()
    return {w1.grad, w2.grad}
  end},
  {"backward through a conv net", function()
    local w = rt{4, 3, 3, 3}:requires_grad_(true)
    local b = rt{4}:requires_grad_(true)
    local y = ai.max_pool2d(ai.conv2d(rt{2, 3, 8, 8}, w, b, {padding = 1}):relu(), 2)
    y = ai.batch_norm(y, nil, nil, nil, nil, {training = true})
    y:square():mean():backward()
    return {w.grad, b.grad}
  end},
  {"double backward (gradient penalty)", function()
    local w = rt{1, 6}:requires_grad_(true)
    local x = rt{4, 6}:requires_grad_(true)
    local g = ai.grad(ai.linear(x, w):tanh():sum(), x, {create_graph = true})
    local gp = (g:square():sum(2):sqrt() - 1):square():mean()
    gp:backward()
    return w.grad
  end},
  {"nn modules and Adam", function()
    ai.manual_seed(5)
    local m = NN.Sequential(NN.Linear(6, 8), NN.BatchNorm1d(8), NN.LeakyReLU(0.2), NN.Linear(8, 2))
    local opt = ai.optim.Adam(m:parameters(), {lr = 0.01})
    for _ = 1, 2 do
      opt:zero_grad()
      local loss = ai.mse_loss(m(rt{4, 6}), ai.zeros(4, 2))
      loss:backward()
      opt:step()
    end
    return m:state_dict()
  end},
  {"io.read_idx", function() return ai.io.read_idx(FILES.idx) end},
  {"io.read_idx (gzip)", function() return ai.io.read_idx(FILES.idxgz) end},
  {"io.load_png", function() return ai.io.load_png(FILES.png) end},
  {"io.load_safetensors", function() return (ai.io.load_safetensors(FILES.st)) end},
  {"io.save_safetensors", function()
    ai.io.save_safetensors(dir .. "/out.safetensors", {a = rt{3, 4}, b = rt{2, 2}:t(), c = ai.arange(5)}, {k = "v"})
    return true
  end},
  {"io.png_bytes/write_idx/save_gif", function()
    local s = ai.io.png_bytes(rt{3, 4, 5}:abs())
    ai.io.write_idx(dir .. "/out.idx", ai.arange(12):view(3, 4):byte())
    ai.io.save_gif(dir .. "/out.gif", {rt{4, 4}:abs(), rt{4, 4}:abs() * 0.5})
    return #s
  end},
  {"checkpoint save and load", function()
    local m = NN.Linear(3, 2)
    local opt = ai.optim.Adam(m:parameters())
    ai.checkpoint.save(dir .. "/ck.safetensors", {model = m, optimizer = opt, step = 3, rng = true})
    local info = ai.checkpoint.load(dir .. "/ck.safetensors", {model = m, optimizer = opt})
    return info.step
  end},
  {"json encode/decode", function() return ai.json.decode(ai.json.encode({a = {1, 2.5, "x"}, b = true})) end},
  {"tostring of a tensor", function() return #tostring(rt{3, 4}) end},
}

local function setup_files()
  FILES.idx = dir .. "/a.idx"
  ai.io.write_idx(FILES.idx, ai.arange(60):view(3, 4, 5):byte())
  FILES.idxgz = dir .. "/a.idx.gz"
  ai.io.write_idx(FILES.idxgz, ai.arange(60):view(3, 4, 5):byte())
  FILES.png = dir .. "/a.png"
  ai.io.save_png(FILES.png, rt{3, 6, 5}:abs())
  FILES.st = dir .. "/a.safetensors"
  ai.io.save_safetensors(FILES.st, {x = rt{3, 4}, y = ai.arange(6), z = rt{2, 2}:double()}, {meta = "data"})
end

local function settle()
  collectgarbage()
  collectgarbage()
  return ai.memory().live
end

-- Runs op under failure injection for n = 1, 2, ...; `inject(n, f)` returns ok, result.
local function sweep(name, f, inject, max_n)
  local ref = summary(f())
  local base = settle()
  local failures, n = 0, 0
  while true do
    n = n + 1
    if n > max_n then error(("%s: still failing after %d injected failures"):format(name, max_n), 0) end
    local ok, res = inject(n, f)
    if ok then
      T.eq(summary(res), ref, name .. ": result after " .. (n - 1) .. " injected failures")
      break
    end
    failures = failures + 1
    local msg = tostring(res)
    if not msg:find("not enough memory", 1, true) then
      error(("%s: allocation %d failed with the wrong error: %s"):format(name, n, msg), 0)
    end
    res = nil
    local live = settle()
    if live ~= base then
      error(("%s: %d bytes of tensor memory leaked after allocation %d failed (%s)"):format(name, live - base, n, msg), 0)
    end
  end
  return failures
end

local function c_inject(n, f)
  ai.alloc_fail_after(n)
  local ok, res = pcall(f)
  ai.alloc_fail_after(0)
  return ok, res
end

local function lua_inject(n, f)
  local ok, res = ai._debug.lua_alloc_failing(n, f)
  return ok, res
end

T.test("allocation failure: the C core's allocator fails the n-th allocation, n = 1, 2, ... (every op)", function()
  setup_files()
  local total, ops = 0, 0
  for _, op in ipairs(OPS) do
    total = total + sweep(op[1], op[2], c_inject, 5000)
    ops = ops + 1
  end
  print(("test_allocfail.lua: %d operations, %d injected C allocation failures, all clean errors, no leaks"):format(ops, total))
  T.ok(total > 300, "expected hundreds of injected failures, got " .. total)
end)

T.test("allocation failure: the Lua allocator fails from the n-th allocation on (every op)", function()
  setup_files()
  local total, ops = 0, 0
  -- Lua allocations are many more than tensor ones: every n up to 400, then a sample
  local function stepped(n, f)
    return lua_inject(n <= 400 and n or 400 + (n - 400) * 7, f)
  end
  for _, op in ipairs(OPS) do
    total = total + sweep(op[1], op[2], stepped, 3000)
    ops = ops + 1
  end
  print(("test_allocfail.lua: %d operations, %d injected Lua allocation failures, all clean errors, no leaks"):format(ops, total))
  T.ok(total > 300, "expected hundreds of injected failures, got " .. total)
end)

T.test("allocation failure: a huge tensor is a Lua error saying 'not enough memory'", function()
  for _, f in ipairs{
    function() return ai.zeros(1 << 40) end,
    function() return ai.empty(1 << 20, 1 << 20, 1 << 20) end,
    function() return ai.ones(1):expand(1 << 30, 1 << 30):contiguous() end,
    function() return ai.randn(1 << 44) end,
  } do
    T.expect_error("not enough memory", f)
  end
  T.eq(ai.alloc_fail_after(0), nil)
end)
