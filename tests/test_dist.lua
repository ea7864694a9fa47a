-- tests/test_dist.lua: ai.dist. In one process (always): single-process mode, DataParallel as
-- plain backward, the DataLoader's shards, the helpers of the training scripts. With MPI (built
-- in and mpirun installed): 2 ranks under mpirun, among them the correctness check of
-- data-parallel training (2 ranks with batch B/2 give the parameters of 1 process with batch B)
-- and train_gan/train_ddpm with dist=true, resumed.
local T = require "helper"
local ai = require "aiart"
local dist = ai.dist
local experiment = require "aiart.experiment"

-- ---------------------------------------------------------------- one process

T.test("single-process mode: rank 1 of 1, collectives are the identity", function()
  T.eq({dist.init()}, {1, 1})
  T.eq({dist.init()}, {1, 1}) -- idempotent
  T.eq({dist.rank(), dist.world_size(), dist.local_rank(), dist.local_size()}, {1, 1, 1, 1})
  T.ok(dist.is_main() and dist.initialized())
  T.ok(type(dist.available()) == "boolean")
  T.ok(dist.hint:find("libopenmpi-dev openmpi-bin", 1, true), dist.hint)
  T.eq(dist.launched_size(), 0)
  local t = ai.tensor({1, 2, 3})
  for _, op in ipairs({"sum", "mean", "max", "min"}) do
    T.ok(dist.all_reduce(t, {op = op}) == t)
    T.eq(t:tolist(), {1, 2, 3})
  end
  T.eq(dist.all_reduce(5), 5)
  T.eq(dist.all_reduce(2.5, {op = "mean"}), 2.5)
  T.ok(dist.broadcast(t) == t and dist.broadcast(t, {src = 1}) == t)
  local g = dist.all_gather(t)
  T.eq(g.shape, {1, 3})
  T.eq(g[1]:tolist(), {1, 2, 3})
  T.eq(dist.broadcast_string("abc"), "abc")
  dist.barrier()
  local m = ai.nn.Linear(2, 2)
  T.ok(dist.broadcast_params(m) == m)
  T.ok(type(dist.wtime()) == "number")
end)

T.test("ai.dist: bad arguments are clear errors", function()
  T.expect_error("op must be sum, mean, max or min", dist.all_reduce, ai.ones(2), {op = "prod"})
  T.expect_error("unknown option 'opp'", dist.all_reduce, ai.ones(2), {opp = "sum"})
  T.expect_error("op 'mean' needs a f32 or f64 tensor", dist.all_reduce, ai.ones(2, {dtype = "i64"}), {op = "mean"})
  T.expect_error("expected a tensor or a number", dist.all_reduce, "x")
  T.expect_error("src must be a rank in 1..1, got 2", dist.broadcast, ai.ones(2), {src = 2})
  T.expect_error("expected a tensor", dist.broadcast, 3)
  T.expect_error("expected a tensor", dist.all_gather, {})
  T.expect_error("expected a string on rank 1", dist.broadcast_string, 3)
  T.expect_error("expected a module or a list of tensors", dist.broadcast_params, 3)
  T.expect_error("element 2 is not a tensor", dist.broadcast_params, {ai.ones(1), "x"})
  T.expect_error("unknown option 'thread'", dist.init, {thread = 2})
  T.expect_error("bucket_mb must be a positive number", dist.DataParallel, ai.nn.Linear(2, 2), {bucket_mb = 0})
  T.expect_error("expected a function", dist.main_only, 3)
  T.expect_error("no checkpoint at /nonexistent/x.safetensors", dist.load_checkpoint, "/nonexistent/x.safetensors", {})
end)

T.test("DataParallel in one process: a plain backward, and the values come back as given", function()
  ai.manual_seed(3)
  local net = ai.nn.Sequential(ai.nn.Linear(4, 8), ai.nn.Tanh(), ai.nn.Linear(8, 1))
  local ddp = dist.DataParallel(net)
  local x = ai.randn(5, 4)
  local loss = net(x):square():mean()
  local ref = ai.grad(loss, net:parameters(), {retain_graph = true})
  local m = ddp:backward(loss, {loss = loss, n = 3})
  T.near(m.loss, loss:item(), 1e-7)
  T.eq(m.n, 3)
  for i, p in ipairs(net:parameters()) do T.near(p.grad, ref[i], 1e-6) end
  T.ok(ddp(x).shape[1] == 5, "ddp(...) calls the module")
  T.eq(ddp:sync_grads{a = 1.5}, {a = 1.5})
  T.eq(ddp:sync_grads(), nil)
  T.eq(dist.sync_grads(net, {values = {z = 2}}), {z = 2})
  T.eq(ddp:info().buckets, 0)
  T.ok(tostring(ddp):find("rank 1 of 1", 1, true))
  T.expect_error("value 'loss' must be a number, got string", ddp.backward, ddp, net(x):sum(), {loss = "x"})
  T.expect_error("expected a loss tensor", ddp.backward, ddp, 3)
end)

T.test("main_only runs on rank 1 and puts the generator back; split_rng leaves rank 1 alone", function()
  ai.manual_seed(9)
  local a = ai.rand(3)
  ai.manual_seed(9)
  local r1, r2 = dist.main_only(function(k) return ai.randn(100):sum():item(), k end, 7)
  T.ok(type(r1) == "number" and r2 == 7)
  T.eq(ai.rand(3):tolist(), a:tolist(), "the draws inside main_only left the stream alone")
  T.expect_error("boom", dist.main_only, function() error("boom") end)
  local st = ai.get_rng_state()
  dist.split_rng()
  T.eq(ai.get_rng_state(), st)
end)

-- A tensor dataset whose samples are distinct images, with random augmentations
local function aug_dataset(n)
  ai.manual_seed(4)
  local x = ai.rand(n, 1, 6, 6)
  return ai.data.TensorDataset(x, ai.arange(1, n + 1), {transform = {ai.data.transforms.random_crop(6, {padding = 1}),
    ai.data.transforms.random_horizontal_flip()}})
end

T.test("DataLoader shards: rank r of n gets rows r, r+n, ... of the unsharded batch, with the same augmentations", function()
  local ds = aug_dataset(24)
  for _, fast in ipairs({true, false}) do
    local full = ai.data.DataLoader(ds, {batch_size = 6, shuffle = true, seed = 11, fast = fast})
    local shards = {}
    for r = 1, 3 do
      shards[r] = ai.data.DataLoader(ds, {batch_size = 2, shuffle = true, seed = 11, fast = fast,
                                          shard = {rank = r, world_size = 3}})
      T.eq(#shards[r], #full)
    end
    for _ = 1, 2 do -- two epochs
      local its = {}
      for r = 1, 3 do its[r] = shards[r]:iter() end
      for x, y in full:iter() do
        for r = 1, 3 do
          local xr, yr = its[r]()
          for j = 1, 2 do
            local row = (r - 1) + 3 * (j - 1) + 1
            T.eq(yr[j]:item(), y[row]:item(), ("fast=%s rank %d row %d"):format(tostring(fast), r, j))
            T.eq(xr[j]:tolist(), x[row]:tolist())
          end
        end
      end
    end
  end
end)

T.test("DataLoader shards: without drop_last every rank has as many batches; state across world sizes", function()
  local ds = ai.data.TensorDataset(ai.arange(0, 10):float():view(10, 1))
  local seen, counts = {}, {}
  for r = 1, 3 do
    local l = ai.data.DataLoader(ds, {batch_size = 3, shard = {rank = r, world_size = 3}})
    T.eq(#l, 2) -- ceil(10 / 3) = 4 samples each: 3 + 1
    counts[r] = 0
    for x in l:iter() do
      for _, v in ipairs(x:view(-1):tolist()) do seen[v] = (seen[v] or 0) + 1; counts[r] = counts[r] + 1 end
    end
  end
  T.eq(counts, {4, 4, 4})
  for v = 0, 9 do T.ok(seen[v] and seen[v] >= 1, "sample " .. v .. " seen") end
  -- drop_last: floor(10 / 3) = 3 each
  T.eq(#ai.data.DataLoader(ds, {batch_size = 2, drop_last = true, shard = {rank = 2, world_size = 3}}), 1)
  -- a state of 2 ranks x 2 resumes on 1 rank x 4 (the same batch of a step) and vice versa
  local ds2 = aug_dataset(16)
  local a = ai.data.DataLoader(ds2, {batch_size = 2, shuffle = true, seed = 3, drop_last = true, shard = {rank = 1, world_size = 2}})
  local it = a:iter()
  it()
  local sd = a:state_dict()
  T.eq(sd.world_size, 2)
  local one = ai.data.DataLoader(ds2, {batch_size = 4, shuffle = true, seed = 3, drop_last = true})
  one:load_state_dict(sd)
  local ref = ai.data.DataLoader(ds2, {batch_size = 4, shuffle = true, seed = 3, drop_last = true})
  local rit = ref:iter()
  rit()
  local _, y1 = one:iter()()
  local _, y2 = rit()
  T.eq(y1:tolist(), y2:tolist(), "the resumed loader continues at the same batch")
  local wrong = ai.data.DataLoader(ds2, {batch_size = 2, shuffle = true, seed = 3, drop_last = true})
  T.expect_error("the state is for batch_size 2 on 2 ranks (4 in all), this loader has 2 on 1 (2 in all)",
    wrong.load_state_dict, wrong, sd)
end)

T.test("DataLoader shards: bad options", function()
  local ds = ai.data.TensorDataset(ai.zeros(4, 1))
  T.expect_error("shard.rank must be an integer in 1..2, got 3", ai.data.DataLoader, ds, {shard = {rank = 3, world_size = 2}})
  T.expect_error("shard.world_size must be a positive integer", ai.data.DataLoader, ds, {shard = {rank = 1, world_size = 0}})
  T.expect_error("unknown field 'size'", ai.data.DataLoader, ds, {shard = {rank = 1, size = 2}})
  T.expect_error("shard must be true or {rank=, world_size=}", ai.data.DataLoader, ds, {shard = 2})
  T.expect_error("needs seed=", ai.data.DataLoader, ds, {shuffle = true, shard = {rank = 1, world_size = 2}})
  local l = ai.data.DataLoader(ds, {shard = true})
  T.eq({l.rank, l.world_size}, {1, 1})
end)

T.test("experiment: a batch split over the ranks, the clock as a number, the null logger", function()
  T.eq(experiment.rank_batch(64, dist), 64)
  local fake = {world_size = function() return 3 end}
  T.expect_error("batch_size 64 does not split evenly over 3 ranks", experiment.rank_batch, 64, fake)
  T.eq(experiment.rank_batch(63, fake), 21)
  T.eq(experiment.time_up(os.time(), 0), 0)
  T.eq(experiment.time_up(os.time() - 10, 5), 1)
  local log = experiment.metrics("/nonexistent/m.jsonl", 0, false, false)
  log:write{step = 1}
  log:close()
  T.ok(experiment.distributed({dist = false}) == dist)
end)

T.test("progress bar: disable=true prints nothing", function()
  local out = {}
  local f = {write = function(_, ...) for _, s in ipairs({...}) do out[#out + 1] = s end end, flush = function() end}
  local bar = ai.progress.bar{total = 3, file = f, tty = true, disable = true}
  bar:update(1, {loss = 1})
  bar:write("x")
  bar:close()
  T.eq(#out, 0)
end)

T.test("the build without MPI: the stand-in of src/core/dist.c compiles without warnings", function()
  if not T.have("cc") then print("    (skipped: no C compiler)") return end
  local rc, out = T.sh("cc -std=gnu11 -c -Wall -Wextra -Werror -Wno-unused-parameter -Isrc -o /dev/null src/core/dist.c")
  T.ok(rc == 0, out)
end)

local function json_lines(out)
  local recs = {}
  for l in out:gmatch("[^\n]+") do if l:match("^{") then recs[#recs + 1] = ai.json.decode(l) end end
  return recs
end

T.test("bench_dist.lua: one case in one process prints one JSON line", function()
  local rc, out = T.sh(T.binary() .. " scripts/bench_dist.lua --step batch=2 threads=1 steps=1 warmup=1")
  T.ok(rc == 0, out)
  local recs = json_lines(out)
  T.eq(#recs, 1, out)
  T.eq({recs[1].ranks, recs[1].rank_batch, recs[1].params}, {1, 2, 522145})
  T.ok(recs[1].ms_step > 0 and recs[1].ms_forward > 0)
end)

-- ---------------------------------------------------------------- several ranks

local bin = T.binary()

local skip
if not dist.available() then skip = "this aiart-lua is built without MPI (" .. dist.hint .. ")"
elseif not T.have("mpirun") then skip = "mpirun is not installed (apt-get install openmpi-bin)" end

if skip then
  print("tests/test_dist.lua: skipped the multi-rank tests: " .. skip)
  return
end

-- mpirun refuses root without these; oversubscribe lets 2 ranks run on a 1-core machine; the
-- shared-memory transport copies through a buffer (containers often forbid the ptrace-based
-- single copy, and Open MPI then complains on every large message). Under
-- `make asan` the ranks unwind allocation stacks the slow way: Open MPI's plugins have no frame
-- pointers, and tests/lsan.supp can only match Open MPI's start-up allocations in full stacks.
local MPIRUN = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 "
  .. "OMPI_MCA_btl_vader_single_copy_mechanism=none "
  .. (os.getenv("ASAN_OPTIONS") and "ASAN_OPTIONS=\"$ASAN_OPTIONS:fast_unwind_on_malloc=0\" " or "")
  .. "timeout 300 mpirun -np 2 --bind-to none "

local function mpirun(args)
  local rc, out = T.sh(MPIRUN .. bin .. " " .. args)
  return rc == 0, out
end

local function must(args)
  local ok, out = mpirun(args)
  if not ok then error("mpirun -np 2 " .. args .. " failed:\n" .. out, 2) end
  return out
end

local dir = T.tmpdir()

T.test("2 ranks: all_reduce, broadcast, all_gather, strings, barrier, parameters", function()
  local out = must("tests/dist_worker.lua collectives")
  T.ok(out:find("ok", 1, true), out)
end)

T.test("2 ranks with batch B/2 give the parameters of one process with batch B (Adam, 6 steps)", function()
  local ref = dir .. "/ref.safetensors"
  local rc, out = T.sh(bin .. " tests/dist_worker.lua train out=" .. ref)
  T.ok(rc == 0, out)
  local want = ai.load(ref)
  -- overlapped with backward (several buckets), after backward, and the one-call form
  for _, variant in ipairs({"", "overlap=false", "sync=fn"}) do
    local file = ("%s/dist%s.safetensors"):format(dir, variant:gsub("[=]", "_"))
    must("tests/dist_worker.lua train out=" .. file .. " " .. variant)
    local got = ai.load(file)
    for k, v in pairs(want) do
      -- the same up to float summation order (the gradients of each half are summed apart)
      T.near(got[k], v, 1e-5, variant .. " " .. k)
    end
  end
end)

T.test("2 ranks: an error on one rank ends the job (no rank waits forever)", function()
  for r = 1, 2 do
    local ok, out = mpirun("tests/dist_worker.lua fail rank=" .. r)
    T.ok(not ok, "the job should fail")
    T.ok(out:find("rank " .. r .. " fails on purpose", 1, true), out)
    T.ok(not out:find("should not have completed", 1, true), out)
  end
end)

local function read_metrics(path)
  local recs = ai.metrics.read(path)
  for _, r in ipairs(recs) do r.time = nil end
  return recs
end

T.test("train_ddpm dist=true on 2 ranks: rank 1 writes the files, and a resumed run continues exactly", function()
  local q = "scripts/train_ddpm.lua dist=true log_every=1 ch=8 T=20 batch_size=4 sample_steps=2 n_samples=2 "
    .. "path_samples=1 sample_every=2 ckpt_every=2 "
  must(q .. "steps=4 out=" .. dir .. "/ddpm_a")
  must(q .. "steps=2 out=" .. dir .. "/ddpm_b")
  local out = must(q .. "steps=4 resume=true out=" .. dir .. "/ddpm_b")
  T.ok(select(2, out:gsub("resumed ", "")) == 1, "one rank prints: " .. out)
  for _, f in ipairs({"samples.png", "path.gif", "samples_000002.png", "ckpt_000004.safetensors", "loss.png"}) do
    local h = io.open(dir .. "/ddpm_b/" .. f, "rb")
    T.ok(h, "missing " .. f)
    if h then h:close() end
  end
  T.eq(read_metrics(dir .. "/ddpm_b/metrics.jsonl"), read_metrics(dir .. "/ddpm_a/metrics.jsonl"))
  T.eq(ai.checkpoint.read(dir .. "/ddpm_b/last.safetensors").loader.world_size, 2)
end)

T.test("train_gan dist=true on 2 ranks: mlp/bce resumed exactly, wgan-gp runs; dist=false under mpirun is refused", function()
  local q = "scripts/train_gan.lua dist=true log_every=1 sample_every=2 ckpt_every=2 "
  must(q .. "steps=4 out=" .. dir .. "/gan_a")
  must(q .. "steps=2 out=" .. dir .. "/gan_b")
  must(q .. "steps=4 resume=true out=" .. dir .. "/gan_b")
  T.eq(read_metrics(dir .. "/gan_b/metrics.jsonl"), read_metrics(dir .. "/gan_a/metrics.jsonl"))
  must(q .. "loss=wgan-gp batch_size=8 n_critic=2 steps=2 out=" .. dir .. "/gan_w")
  T.eq(#ai.metrics.read(dir .. "/gan_w/metrics.jsonl"), 2)
  local ok, out = mpirun("scripts/train_gan.lua steps=1 out=" .. dir .. "/gan_c")
  T.ok(not ok and out:find("pass dist=true", 1, true), out)
  ok, out = mpirun(q .. "batch_size=7 steps=1 out=" .. dir .. "/gan_d")
  T.ok(not ok and out:find("does not split evenly over 2 ranks", 1, true), out)
end)

T.test("bench_dist.lua on 2 ranks: a step with the overlapped all_reduce, and the all_reduce alone", function()
  local recs = json_lines(must("scripts/bench_dist.lua --step dist=true batch=4 threads=1 steps=1 warmup=1"))
  T.eq(#recs, 1, "rank 1 prints")
  T.eq({recs[1].ranks, recs[1].rank_batch, recs[1].buckets}, {2, 2, 2})
  T.ok(recs[1].overlapped >= 1, "a bucket started during backward")
  recs = json_lines(must("scripts/bench_dist.lua --allreduce"))
  T.eq(#recs, 1)
  T.eq(recs[1].bytes, 4 * 522145)
  for _, k in ipairs({"ms_buckets_1mb", "ms_flat", "us_latency", "ms_add"}) do T.ok(recs[1][k] > 0, k) end
end)
