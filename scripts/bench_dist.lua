--[[ scripts/bench_dist.lua: data-parallel scaling of the DDPM UNet's training step (`make bench-dist`).

  ./aiart-lua scripts/bench_dist.lua [key=value ...]    the driver: every case below in its own
                                                        process (2 ranks through mpirun), a table,
                                                        the on-paper estimate for 8 and 64 nodes,
                                                        and bench-dist-results.json
  [mpirun -np 2] ./aiart-lua scripts/bench_dist.lua --step batch=B threads=T [dist=true
                                                        overlap=true|false|both]
                                                        one case; rank 1 prints one JSON line
  mpirun -np 2 ./aiart-lua scripts/bench_dist.lua --allreduce
                                                        all_reduce of the UNet's 522,145 gradients

Options (key=value): batch=64 (the global batch), seconds=20 (timed seconds per case), warmup=2,
steps=N (instead of seconds), rounds=1 (the driver runs every case that many times, interleaved,
and keeps the fastest: a shared machine's load moves single runs a lot), mpirun=mpirun,
bind=none (mpirun's --bind-to: on a machine shared with other jobs, ranks pinned to a core
cannot move away from a busy one, and every step waits for the slowest rank),
out=bench-dist-results.json, alpha_us=25 (the per-message latency of the paper model),
paper_batches=8,1 (the per-node batches of its strong scaling).

The cases, on a machine of 2 cores:
  1 rank  x 2 threads, batch B        the whole machine in one process
  2 ranks x 1 thread,  B/2 each       the whole machine in two processes; the steps alternate
                                      between the all_reduce overlapped with backward and after
                                      it (overlap=both), so that both see the same load
  1 rank  x 1 thread,  batch B/2      one rank's share alone: its compute without communication
  1 rank  x 1 thread,  batch B        one core doing all of it
  1 rank  x 2 threads, batches 8, 1   compute per node for the paper's strong scaling
Each reports the median wall time of a step (forward, backward with the gradient all_reduce,
Adam) over the timed steps; data come from a pool of random batches, so loading is not timed.
The 2-rank steps also report the seconds per step the communication thread spent in MPI (from
the start of a bucket's all_reduce to its end, waiting for the other rank included).
]]
local ai = require "aiart"
local models = require "aiart.models"
local diffusion = require "aiart.diffusion"
local dist = ai.dist

local ROOT = (arg and arg[0] or ""):match("^(.*)/scripts/bench_dist%.lua$") or "."
local common = dofile(ROOT .. "/scripts/bench/common.lua")
local cli = common.command_line(arg, "bench_dist.lua", {["--step"] = 0, ["--allreduce"] = 0})
local EXE, SCRIPT, mode, opts, num = cli.exe, cli.script, cli.mode, cli.opts, cli.num
local median, sh_quote, loadavg = common.median, common.sh_quote, common.loadavg

local function emit(rec)
  if dist.is_main() then
    print(ai.json.encode(rec))
    io.stdout:flush()
  end
end

---------------------------------------------------------------------------------- one case

local function run_step()
  local B = math.tointeger(num("batch", 64))
  if opts.dist == "true" then dist.init() end
  local world = dist.world_size()
  ai.set_num_threads(math.tointeger(num("threads", 2)))
  local b = B // world
  ai.manual_seed(1234)
  local net = models.UNet()
  local ddp = dist.DataParallel(net, {overlap = opts.overlap ~= "false", bucket_mb = num("bucket_mb", 1)})
  local opt = ai.optim.Adam(net:parameters(), {lr = 2e-4})
  local sched = diffusion.schedule(1000, "linear")
  dist.split_rng()
  local pool = {}
  for i = 1, 8 do pool[i] = ai.rand(b, 1, 28, 28) * 2 - 1 end
  local k = 0
  local wtime = ai.clock
  local function step()
    k = k % #pool + 1
    local t0 = wtime()
    local loss = diffusion.loss(net, sched, pool[k])
    local t1 = wtime()
    opt:zero_grad()
    local c0 = dist.comm_seconds()
    ddp:backward(loss)
    local t2 = wtime()
    opt:step()
    local t3 = wtime()
    return t3 - t0, t1 - t0, t2 - t1, dist.comm_seconds() - c0
  end
  local est = math.huge
  for _ = 1, math.tointeger(num("warmup", 2)) do est = math.min(est, (step())) end
  local steps = math.tointeger(num("steps", 0))
  if steps == 0 then steps = math.max(3, math.min(200, math.floor(num("seconds", 20) / est))) end
  steps = dist.all_reduce(steps, {op = "max"}) -- every rank the same number of steps
  -- overlap=both: the steps alternate between overlapped and not, so that both see the same
  -- load (on a shared machine, two separate runs differ by more than the overlap can)
  local both = opts.overlap == "both"
  if both then steps = steps + steps % 2 end
  local runs = {[true] = {{}, {}, {}, {}}, [false] = {{}, {}, {}, {}}}
  local overlapped = 0
  for i = 1, steps do
    if both then ddp.overlap = i % 2 == 1 end
    local r = runs[ddp.overlap]
    local n = #r[1] + 1
    r[1][n], r[2][n], r[3][n], r[4][n] = step()
    if ddp.overlap then overlapped = ddp:info().overlapped end
  end
  local info = ddp:info()
  local rec = {case = opts.case or "", ranks = world, threads = ai.get_num_threads(), batch = B, rank_batch = b,
               overlap = both and "both" or ddp.overlap, steps = steps, buckets = info.buckets, overlapped = overlapped,
               params = info.elements}
  local function put(r, suffix)
    if #r[1] == 0 then return end
    rec["ms_step" .. suffix], rec["ms_forward" .. suffix] = 1e3 * median(r[1]), 1e3 * median(r[2])
    rec["ms_backward" .. suffix], rec["ms_comm" .. suffix] = 1e3 * median(r[3]), 1e3 * median(r[4])
  end
  put(runs[true], "")
  put(runs[false], both and "_no_overlap" or "")
  emit(rec)
end

---------------------------------------------------------------------------------- all_reduce

local function run_allreduce()
  dist.init()
  ai.set_num_threads(1)
  ai.manual_seed(1)
  local net = models.UNet()
  local params = net:parameters()
  local n = 0
  for _, p in ipairs(params) do n = n + p:numel() end
  local function time(f, reps)
    for _ = 1, 3 do f() end
    dist.barrier()
    local ts = {}
    for i = 1, reps do
      local t0 = ai.clock()
      f()
      ts[i] = ai.clock() - t0
    end
    return 1e3 * median(ts)
  end
  local rec = {case = "all_reduce", ranks = dist.world_size(), params = n, bytes = 4 * n}
  for _, mb in ipairs({0.25, 1, 4}) do
    local ddp = dist.DataParallel(net, {bucket_mb = mb, broadcast = false})
    for _, p in ipairs(params) do p.grad = ai.randn(p.shape) end
    rec[("ms_buckets_%gmb"):format(mb)] = time(function() ddp:sync_grads() end, 40)
    rec[("buckets_%gmb"):format(mb)] = ddp:info().buckets
    ddp._buckets:close() -- frees the hooks for the next bucket size
  end
  local flat = ai.randn(n)
  rec.ms_flat = time(function() dist.all_reduce(flat) end, 40)
  local one = ai.zeros(1)
  rec.us_latency = 1e3 * time(function() dist.all_reduce(one) end, 400)
  local other = ai.randn(n)
  rec.ms_add = time(function() flat:add_(other) end, 40) -- the summing of a reduction, alone
  rec.library = dist.library()
  emit(rec)
end

---------------------------------------------------------------------------------- driver

-- The one JSON record a case prints (the last), or an error with the case's output.
local function run_case(cmd)
  io.stderr:write("  " .. cmd .. "\n")
  local recs, other, ok = common.run_json(cmd)
  if not ok or #recs == 0 then
    io.stderr:write(table.concat(other, "\n"), "\n")
    error("bench_dist.lua: the case failed: " .. cmd, 0)
  end
  return recs[#recs]
end

local function driver()
  if not dist.available() then error("bench_dist.lua: " .. dist.hint, 0) end
  local B = math.tointeger(num("batch", 64))
  local pass = {}
  for _, k in ipairs({"seconds", "warmup", "steps"}) do if opts[k] then pass[#pass + 1] = k .. "=" .. opts[k] end end
  pass = table.concat(pass, " ")
  local mpirun = (opts.mpirun or "mpirun")
  local env = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 "
  local one = sh_quote(EXE) .. " " .. sh_quote(SCRIPT) .. " --step " .. pass
  local mpi = env .. mpirun .. " -np 2 --bind-to " .. (opts.bind or "none") .. " "
  local two = mpi .. one .. " dist=true"
  local load0 = loadavg()
  io.stderr:write(("bench_dist.lua: DDPM UNet training steps, global batch %d (load average %s)\n"):format(B, load0))
  local cases = {
    {"one_2t", ("%s batch=%d threads=2 case=1x2"):format(one, B)},
    {"two", ("%s batch=%d threads=1 overlap=both case=2x1"):format(two, B)},
    {"one_1t_half", ("%s batch=%d threads=1 case=1x1-half"):format(one, B // 2)},
    {"one_1t", ("%s batch=%d threads=1 case=1x1"):format(one, B)},
  }
  local nodes = {}
  for b in tostring(opts.paper_batches or "8,1"):gmatch("%d+") do
    nodes[#nodes + 1] = "node_b" .. b
    cases[#cases + 1] = {"node_b" .. b, ("%s batch=%s threads=2 case=node-b%s"):format(one, b, b)}
  end
  cases[#cases + 1] = {"allreduce", mpi .. sh_quote(EXE) .. " " .. sh_quote(SCRIPT) .. " --allreduce"}
  -- the fastest of the rounds (each number on its own: a case's step and its all_reduce may
  -- come from different rounds)
  local r = {}
  for _ = 1, math.tointeger(num("rounds", 1)) do
    for _, c in ipairs(cases) do
      local rec = run_case(c[2])
      local best = r[c[1]]
      if not best then r[c[1]] = rec
      else
        for k, v in pairs(rec) do
          if type(v) == "number" and k:match("^[mu]s_") and v < best[k] then best[k] = v end
        end
      end
    end
  end
  r.node = {}
  for i, k in ipairs(nodes) do r.node[i] = r[k] end
  r.two_noov = {rank_batch = r.two.rank_batch, ms_step = r.two.ms_step_no_overlap, ms_forward = r.two.ms_forward_no_overlap,
                ms_backward = r.two.ms_backward_no_overlap, ms_comm = r.two.ms_comm_no_overlap}
  r.load = {before = load0, after = loadavg()}

  local function row(name, c)
    print(("| %-44s | %5d | %5.0f | %5.0f | %6.0f | %6.1f |"):format(name, c.rank_batch, c.ms_step, c.ms_forward, c.ms_backward,
      c.ms_comm or 0))
  end
  print()
  print(("DDPM UNet (%d parameters), global batch %d; load average %s -> %s"):format(r.two.params, B, r.load.before, r.load.after))
  print()
  print("| case                                         | batch |  step | fwd   | bwd+ar | comm  |")
  print("| -------------------------------------------- | ----- | ----- | ----- | ------ | ----- |")
  row("1 rank x 2 threads", r.one_2t)
  row("2 ranks x 1 thread, overlapped all_reduce", r.two)
  row("2 ranks x 1 thread, all_reduce after backward", r.two_noov)
  row("1 rank x 1 thread, half the batch (no comm)", r.one_1t_half)
  row("1 rank x 1 thread", r.one_1t)
  for _, c in ipairs(r.node) do row("1 rank x 2 threads (per-node compute)", c) end
  print("(milliseconds, medians; bwd+ar: backward with the gradient all_reduce; comm: the communication")
  print(" thread's time in MPI per step, waiting for the other rank included; the two 2-rank rows come")
  print(" from one run whose steps alternate between them)")
  local e = {
    same_machine = r.one_2t.ms_step / r.two.ms_step,
    weak = r.one_1t_half.ms_step / r.two.ms_step,
    strong = r.one_1t.ms_step / (2 * r.two.ms_step),
    overhead_ms = r.two.ms_step - r.one_1t_half.ms_step,
  }
  r.efficiency = e
  print()
  print(("efficiency, the same 2 cores: (1 rank x 2 threads) / (2 ranks x 1 thread) = %.2f (%.2f without overlap)"):format(
    e.same_machine, r.one_2t.ms_step / r.two_noov.ms_step))
  print(("scaling 1 -> 2 ranks, %d samples per rank (weak): %.2f; %d samples in all (strong): %.2f"):format(B // 2, e.weak,
    B, e.strong))
  print(("a 2-rank step costs %.0f ms more than one rank's share alone"):format(e.overhead_ms))
  local a = r.allreduce
  print()
  print(("all_reduce of %d f32 gradients (%.2f MB) between 2 ranks in shared memory (%s):"):format(a.params, a.bytes / 1e6,
    a.library))
  print(("  DataParallel buckets: %.2f ms (0.25 MB, %d buckets), %.2f ms (1 MB, %d), %.2f ms (4 MB, %d); one flat tensor %.2f ms;"):format(
    a["ms_buckets_0.25mb"], a["buckets_0.25mb"], a.ms_buckets_1mb, a.buckets_1mb, a.ms_buckets_4mb, a.buckets_4mb, a.ms_flat))
  print(("  a 4-byte all_reduce (latency): %.1f us; adding two such buffers on one core: %.2f ms"):format(a.us_latency,
    a.ms_add))

  -- on paper: ring all_reduce between N nodes, each node this machine (1 rank x 2 threads)
  local alpha = num("alpha_us", 25) * 1e-6
  local S = a.bytes
  local t_add = a.ms_add / 1e3
  local nb = a.buckets_1mb
  local compute = {[B] = {r.one_2t.ms_step / 1e3, r.one_2t.ms_backward / 1e3}}
  for _, c in ipairs(r.node) do compute[c.rank_batch] = {c.ms_step / 1e3, c.ms_backward / 1e3} end
  local paper = {}
  print()
  print(("On paper: N nodes like this one (1 rank x 2 threads), ring all_reduce of %.2f MB:"):format(S / 1e6))
  print(("  T_ar = 2(N-1)/N * S / (0.9 * line rate) + (N-1)/N * %.2f ms (summing) + %d buckets * 2(N-1) * %.0f us"):format(
    t_add * 1e3, nb, alpha * 1e6))
  print("  efficiency = t_compute / (t_compute + exposed T_ar); exposed = T_ar without overlap,")
  print(("  max(T_ar / %d buckets, T_ar - t_backward) with it"):format(nb))
  print()
  print("| nodes | Gbit/s | batch per node | global batch | compute ms | T_ar ms | efficiency | with overlap |")
  print("| ----- | ------ | -------------- | ------------ | ---------- | ------- | ---------- | ------------ |")
  local cases = {{8, B}, {64, B}}
  for _, c in ipairs(r.node) do
    cases[#cases + 1] = {8, c.rank_batch}
    cases[#cases + 1] = {64, c.rank_batch}
  end
  table.sort(cases, function(x, y) if x[1] ~= y[1] then return x[1] < y[1] end return x[2] > y[2] end)
  for _, c in ipairs(cases) do
    local N, b = c[1], c[2]
    local tc, tb = compute[b][1], compute[b][2]
    for _, gbit in ipairs({10, 100}) do
      local vol = 2 * (N - 1) / N
      local t_ar = vol * S / (0.9 * gbit * 1e9 / 8) + (N - 1) / N * t_add + nb * 2 * (N - 1) * alpha
      local e0 = tc / (tc + t_ar)
      local e1 = tc / (tc + math.max(t_ar / nb, t_ar - tb))
      paper[#paper + 1] = {nodes = N, gbit = gbit, batch_per_node = b, global_batch = N * b, ms_compute = tc * 1e3,
                           ms_allreduce = t_ar * 1e3, efficiency = e0, efficiency_overlap = e1}
      print(("| %5d | %6d | %14d | %12d | %10.0f | %7.1f | %9.1f%% | %11.1f%% |"):format(N, gbit, b, N * b, tc * 1e3,
        t_ar * 1e3, 100 * e0, 100 * e1))
    end
  end
  r.paper = paper
  local out = opts.out or "bench-dist-results.json"
  local f = io.open(out, "w")
  if f then
    f:write(ai.json.encode(r, {indent = true}), "\n")
    f:close()
    print()
    print("results in " .. out)
  end
end

if mode == "step" then run_step()
elseif mode == "allreduce" then run_allreduce()
else driver() end
