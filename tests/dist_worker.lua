-- tests/dist_worker.lua: the program each rank runs in tests/test_dist.lua's multi-rank checks
-- (`mpirun -np 2 aiart-lua tests/dist_worker.lua MODE key=value ...`); it also runs alone (one
-- process, one rank) as the reference. Modes:
--   collectives      checks every collective against values computed by hand; "ok" on rank 1
--   train out=F ...  k steps of data-parallel training of a small MLP; rank 1 saves the
--                    parameters to F (safetensors). Options: steps=6, batch=8 (the global
--                    batch), overlap=true, bucket_mb=0.0002 (several buckets), sync=ddp|fn
--   fail rank=R      rank R raises an error while the others wait in a collective
-- Any failed check is an error, so the exit status says it all.
local ai = require "aiart"
local dist = ai.dist

local mode = arg[1]
local opts = {}
for i = 2, #arg do
  local k, v = arg[i]:match("^([%w_]+)=(.*)$")
  if not k then error("dist_worker: bad argument " .. arg[i]) end
  opts[k] = v
end

local rank, world = dist.init()

local function check(cond, msg)
  if not cond then error(("rank %d: %s"):format(rank, msg), 2) end
end

local function same(a, b, msg, tol)
  local x, y = a:double():reshape(-1):tolist(), b:double():reshape(-1):tolist()
  check(#x == #y, msg .. ": sizes differ")
  for i = 1, #x do
    check(math.abs(x[i] - y[i]) <= (tol or 0) * (1 + math.abs(y[i])),
      ("%s: element %d is %.9g, expected %.9g"):format(msg, i, x[i], y[i]))
  end
end

if mode == "collectives" then
  check(world == 2, "expected 2 ranks, got " .. world)
  check(dist.local_size() == 2 and dist.local_rank() == rank, "local rank and size")
  check(dist.is_main() == (rank == 1), "is_main")
  -- all_reduce: every op and dtype, a non-contiguous view, numbers
  local base = ai.tensor({{1, -2, 3}, {4, 5, -6}})
  local function mine(dt) return (base * rank):to(dt) end
  local function other(dt) return (base * (3 - rank)):to(dt) end
  for _, dt in ipairs({"f32", "f64", "i64"}) do
    same(dist.all_reduce(mine(dt)), mine(dt) + other(dt), "sum " .. dt)
    same(dist.all_reduce(mine(dt), {op = "max"}), ai.maximum(mine(dt), other(dt)), "max " .. dt)
    same(dist.all_reduce(mine(dt), {op = "min"}), ai.minimum(mine(dt), other(dt)), "min " .. dt)
  end
  same(dist.all_reduce(mine("f32"), {op = "mean"}), base * 1.5, "mean f32", 1e-7)
  local t = ai.zeros(3, 4)
  local v = t:t() -- 4 x 3, not contiguous
  v:copy_(ai.ones(4, 3) * rank)
  local r = dist.all_reduce(v)
  check(r == v, "all_reduce returns its argument")
  same(t, ai.full({3, 4}, 3), "sum into a non-contiguous view")
  check(dist.all_reduce(rank) == 3 and math.type(dist.all_reduce(rank)) == "integer", "sum of integers")
  check(dist.all_reduce(rank, {op = "mean"}) == 1.5, "mean of numbers")
  check(dist.all_reduce(rank * 1.5, {op = "max"}) == 3.0, "max of numbers")
  -- broadcast from each rank; all_gather; strings
  for src = 1, 2 do
    local b = ai.full({2, 2}, rank * 10)
    dist.broadcast(b, {src = src})
    same(b, ai.full({2, 2}, src * 10), "broadcast from " .. src)
    check(dist.broadcast_string(rank == src and ("from " .. src) or nil, {src = src}) == "from " .. src, "string")
  end
  local g = dist.all_gather(ai.tensor({rank, rank * 10}, {dtype = "i64"}))
  same(g, ai.tensor({{1, 10}, {2, 20}}), "all_gather")
  local big = dist.broadcast_string(rank == 1 and ("x"):rep(3000000) or nil)
  check(#big == 3000000, "a 3 MB string")
  -- parameters and buffers of rank 1 everywhere
  ai.manual_seed(rank)
  local m = ai.nn.Sequential(ai.nn.Linear(3, 4), ai.nn.BatchNorm1d(4))
  m[2].running_mean:fill_(rank)
  dist.broadcast_params(m)
  local w = m[1].weight:clone()
  dist.broadcast(w, {src = 2})
  same(m[1].weight, w, "broadcast_params made the weights equal")
  same(m[2].running_mean, ai.ones(4), "broadcast_params sends buffers")
  -- errors
  local ok, err = pcall(dist.broadcast, ai.zeros(1), {src = 3})
  check(not ok and err:find("src must be a rank in 1..2", 1, true), "src out of range: " .. tostring(err))
  dist.barrier()
  if rank == 1 then print("ok") end

elseif mode == "train" then
  local steps, B = tonumber(opts.steps or 6), tonumber(opts.batch or 8)
  ai.manual_seed(7)
  local N = 32
  local X, Y = ai.randn(N, 6), ai.randn(N, 3)
  ai.manual_seed(11 + rank) -- different initial weights on each rank: DataParallel broadcasts rank 1's
  if world == 1 then ai.manual_seed(12) end
  local nn = ai.nn
  local frozen = nn.Linear(16, 16) -- needs no gradient: left out of the buckets
  frozen:requires_grad_(false)
  local net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), frozen, nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))
  local unused = nn.Linear(2, 2)  -- never used: its .grad must stay nil, as in one process
  local params = net:parameters()
  for _, p in ipairs(unused:parameters()) do params[#params + 1] = p end
  local ddp = dist.DataParallel(params, {overlap = opts.overlap ~= "false", bucket_mb = tonumber(opts.bucket_mb or 0.0002)})
  local opt = ai.optim.Adam(params, {lr = 0.01})
  local loader = ai.data.DataLoader(ai.data.TensorDataset(X, Y),
    {batch_size = B // world, shuffle = true, seed = 5, drop_last = true, shard = true})
  local step = 0
  local losses = {}
  while step < steps do
    for x, y in loader:iter() do
      local loss = ai.F.mse_loss(net(x), y)
      opt:zero_grad()
      local m
      if opts.sync == "fn" then
        loss:backward()
        m = dist.sync_grads(params, {values = {loss = loss}})
      else
        m = ddp:backward(loss, {loss = loss})
      end
      losses[#losses + 1] = m.loss
      check(unused.weight.grad == nil, "an unused parameter got a gradient")
      opt:step()
      step = step + 1
      if step == steps then break end
    end
  end
  local info = ddp:info()
  if world > 1 then
    check(info.buckets >= 3, "expected several buckets, got " .. info.buckets)
    if opts.overlap ~= "false" and opts.sync ~= "fn" then
      check(info.overlapped >= info.buckets - 1, ("only %d of %d buckets overlapped backward"):format(info.overlapped, info.buckets))
    end
  end
  -- every rank must hold the same parameters
  for i, p in ipairs(params) do
    local g = dist.all_gather(p:detach())
    same(g[1], g[world], "parameter " .. i .. " differs between ranks")
  end
  if dist.is_main() then
    local sd = {}
    for i, p in ipairs(params) do sd["p" .. i] = p end
    for i, l in ipairs(losses) do sd["loss" .. i] = ai.tensor({l}, {dtype = "f64"}) end
    ai.save(opts.out, sd)
  end

elseif mode == "fail" then
  if rank == tonumber(opts.rank or 2) then error("rank " .. rank .. " fails on purpose", 0) end
  dist.barrier() -- never completes: the failing rank must end the job
  error("the barrier should not have completed")

else
  error("dist_worker: unknown mode " .. tostring(mode))
end
