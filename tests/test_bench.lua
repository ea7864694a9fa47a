-- tests/test_bench.lua: smoke tests of the benchmark harness (scripts/bench.lua): one workload,
-- the quick microbenchmarks and the driver run and print valid JSON. No timing assertions: the
-- timing targets live only in the benchmark's output (`make bench`).
local T = require "helper"
local ai = require "aiart"

local BIN = T.binary()

-- Runs the bench script with args; returns the decoded JSON lines, the whole output, success.
local function bench(args)
  local rc, out = T.sh(("%s scripts/bench.lua %s"):format(T.shell_quote(BIN), args))
  local ok = rc == 0
  local recs = {}
  for l in out:gmatch("[^\n]+") do
    if l:match("^{") then
      local good, r = pcall(ai.json.decode, l)
      if not good then error("invalid JSON line: " .. l .. "\n" .. r) end
      recs[#recs + 1] = r
    end
  end
  return recs, out, ok
end

local function positive(x) return type(x) == "number" and x > 0 and x == x end

T.test("bench: one workload prints one valid JSON line", function()
  local recs, out, ok = bench("--workload mlp_gan_b32 steps=2 warmup=1")
  T.ok(ok, "bench.lua --workload failed:\n" .. out)
  T.eq(#recs, 1, "JSON lines")
  local r = recs[1]
  T.eq(r.workload, "mlp_gan_b32")
  T.eq(r.impl, "aiart")
  T.eq(r.steps, 2)
  T.eq(r.threads, 2)
  for _, k in ipairs({"ms_per_step", "peak_rss_mb", "gflop_per_step", "gflops"}) do
    T.ok(positive(r[k]), k .. " should be a positive number, got " .. tostring(r[k]))
  end
  T.near(r.gflop_per_step, 0.417841, 1e-4, "GFLOP per step of mlp_gan_b32 (the reference document says 0.42)")
end)

T.test("bench: unknown workload fails with a message", function()
  local recs, out, ok = bench("--workload no_such_workload")
  T.ok(not ok, "expected a failure")
  T.eq(#recs, 0)
  T.ok(out:find("unknown workload", 1, true), out)
end)

T.test("bench: quick microbenchmarks print valid JSON lines", function()
  local recs, out, ok = bench("--micro quick=true")
  T.ok(ok, "bench.lua --micro failed:\n" .. out)
  T.ok(#recs >= 10, "expected at least 10 microbenchmarks, got " .. #recs)
  local seen = {}
  for _, r in ipairs(recs) do
    T.eq(r.impl, "aiart")
    T.ok(type(r.micro) == "string", "micro name")
    local v = r.gflops or r.gbps or r.us_per_op
    T.ok(positive(v), ("%s %s: no positive measurement"):format(r.micro, tostring(r.op)))
    seen[r.micro] = true
  end
  for _, m in ipairs({"sgemm", "linear", "conv2d", "conv_transpose2d", "group_norm", "softmax", "elementwise",
                      "adam", "overhead"}) do
    T.ok(seen[m], "missing microbenchmark " .. m)
  end
end)

T.test("bench: the driver writes the results file", function()
  local dir = T.tmpdir()
  local path = dir .. "/results.json"
  local recs, out, ok = bench(("workloads=mlp_gan_b32 steps=2 warmup=1 micro=false torch=false out='%s'"):format(path))
  T.ok(ok, "driver failed:\n" .. out)
  T.eq(#recs, 1, "JSON lines")
  local f = assert(io.open(path))
  local res = ai.json.decode(f:read("a"))
  f:close()
  T.eq(#res.workloads, 1)
  T.eq(res.workloads[1].workload, "mlp_gan_b32")
  T.eq(res.summary[1].workload, "mlp_gan_b32")
  T.eq(res.summary[1].target_ratio, 0.5)
  T.eq(res.summary[1].met, nil, "no PyTorch time, no verdict")
  T.ok(out:find("mlp_gan_b32", 1, true) and out:find("ratio", 1, true), "the table")
end)

T.test("bench: both sides name the same workloads, in the same order", function()
  local rc, out = T.sh(("%s scripts/bench.lua --list"):format(T.shell_quote(BIN)))
  T.eq(rc, 0, out)
  local ours = {}
  for w in out:gmatch("[^\n]+") do ours[#ours + 1] = w end
  -- torch_ref.py's ORDER read from its text: the test needs no PyTorch
  local py = T.readfile("scripts/bench/torch_ref.py")
  local theirs = {}
  for w in py:match("\nORDER = (%b[])"):gmatch('"([%w_]+)"') do theirs[#theirs + 1] = w end
  T.eq(theirs, ours, "ORDER in torch_ref.py")
  for _, w in ipairs(ours) do T.ok(py:find('"' .. w .. '": ', 1, true), "torch_ref.py has no workload " .. w) end
  for _, w in ipairs({"ddpm_unet_cond_b64", "ddpm_guided_sample_b64"}) do
    T.ok(out:find(w, 1, true), "missing workload " .. w)
  end
end)

T.test("bench: the guided sampling step runs through the driver", function()
  local dir = T.tmpdir()
  local path = dir .. "/results.json"
  local recs, out, ok = bench(("workloads=ddpm_guided_sample_b64 steps=1 warmup=0 micro=false torch=false out='%s'")
    :format(path))
  T.ok(ok, "driver failed:\n" .. out)
  T.eq(#recs, 1, "JSON lines")
  T.ok(positive(recs[1].ms_per_step), "ms_per_step")
  -- one UNet forward of 128: the conditional and unconditional halves in one batch
  T.near(recs[1].gflop_per_step, 23.6666, 1e-3, "GFLOP per step")
  local res = ai.json.decode(T.readfile(path))
  T.eq(res.summary[1].target_ratio, 0.7)
end)
