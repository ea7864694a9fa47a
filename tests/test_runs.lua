-- tests/test_runs.lua: scripts you can trust with an evening's work. Work is never lost
-- (SIGINT/SIGTERM at a known step finish it, save, say how to resume and exit 130/143; the
-- resumed run is bit-exact; a second signal aborts keeping the last good checkpoint;
-- checkpoints on the clock), one run per folder (the lock), resume with changed options
-- (applied or refused), wall-time metrics across resume, the user's data (a folder smaller
-- than a batch, a corrupt file, what the pipeline does), strict VGG loading, and outputs that
-- say what they are. The signals come from tests/reliability/signal_at.lua (LUA_INIT).
local T = require "helper"
local ai = require "aiart"

local BIN = T.binary()
local q = T.shell_quote
local dir = T.tmpdir()
local QUICK = "threads=2 log_every=1 sample_every=0 "

-- Runs a script; returns the exit status and the output (stdout and stderr).
local function run(script, args, env)
  return T.sh(("%s %s scripts/%s %s"):format(env or "", BIN, script, args))
end
local function signal_at(step, sig, twice)
  return ("LUA_INIT=@tests/reliability/signal_at.lua AIART_SIGNAL_AT=%d AIART_SIGNAL=%s%s"):format(step, sig or "INT",
    twice and " AIART_SIGNAL_TWICE=1" or "")
end
local function must(rc, out, what)
  if rc ~= 0 then error(("%s failed (%s):\n%s"):format(what, tostring(rc), out), 2) end
  return out
end

-- the metrics without their time field, which is the only thing allowed to differ
local function losses(path)
  local out = {}
  for i, r in ipairs(ai.metrics.read(path)) do
    r.time = nil
    out[i] = r
  end
  return out
end

local function read_json(path) return ai.json.decode(assert(T.readfile(path))) end

-- The printed resume command, run as it is (from the repository root, as the test runs).
local function resume_command(out)
  local cmd = out:match("resume with: ([^\n]+)")
  T.ok(cmd and cmd:find("resume=true", 1, true), "no resume command in: " .. out)
  return cmd
end

T.test("SIGINT at step 5 of train_gan.lua: the step finishes, saved, exit 130; the printed command resumes bit-exact",
function()
  local a, b = dir .. "/gan_int", dir .. "/gan_ref"
  local args = QUICK .. "steps=9 out=" .. a
  local rc, out = run("train_gan.lua", args, signal_at(5))
  T.eq(rc, 130, out)
  T.ok(out:find("SIGINT: saving a checkpoint and stopping (once more to stop at once)", 1, true), out)
  T.ok(out:find("stopped by SIGINT at step 5: checkpoint " .. a .. "/last.safetensors", 1, true), out)
  T.eq(ai.checkpoint.read(a .. "/last.safetensors").step, 5)
  T.eq(#ai.metrics.read(a .. "/metrics.jsonl"), 5)
  T.ok(not T.exists(a .. "/lock.pid"), "the lock outlived the run")
  local cmd = resume_command(out)
  T.ok(cmd:find(BIN .. " scripts/train_gan.lua " .. args .. " resume=true", 1, true), cmd)
  rc, out = T.sh(cmd)
  must(rc, out, cmd)
  T.ok(out:find("resumed " .. a .. "/last.safetensors at step 5", 1, true), out)
  must(run("train_gan.lua", QUICK .. "steps=9 out=" .. b))
  T.eq(losses(a .. "/metrics.jsonl"), losses(b .. "/metrics.jsonl"))
  local _, ta = ai.checkpoint.read(a .. "/last.safetensors")
  local _, tb = ai.checkpoint.read(b .. "/last.safetensors")
  for name, x in pairs(tb) do T.ok(ta[name] and x:ne(ta[name]):sum():item() == 0, "weights differ: " .. name) end
end)

T.test("SIGTERM at step 3 of train_ddpm.lua: exit 143, bit-exact resume; the last line names the checkpoint file",
function()
  local a, b = dir .. "/ddpm_term", dir .. "/ddpm_ref"
  local args = QUICK .. "ch=8 T=20 batch_size=4 steps=6 sample_steps=2 n_samples=2 path_samples=1 sample_every=3 "
  local rc, out = run("train_ddpm.lua", args .. "out=" .. a, signal_at(3, "TERM"))
  T.eq(rc, 143, out)
  T.ok(out:find("stopped by SIGTERM at step 3: checkpoint " .. a .. "/last.safetensors", 1, true), out)
  -- the sample of step 3 was part of the step; the final ones are not written
  T.ok(T.exists(a .. "/samples_000003.png") and not T.exists(a .. "/samples.png"), out)
  rc, out = T.sh(resume_command(out))
  must(rc, out, "the resume")
  local rb, outb = run("train_ddpm.lua", args .. "out=" .. b)
  must(rb, outb, "the uninterrupted run")
  T.eq(losses(a .. "/metrics.jsonl"), losses(b .. "/metrics.jsonl"))
  -- which weights sample, the checkpoint file on the last line, no empty samples/ folder
  T.ok(outb:find(b .. "/samples_000003.png: from the EMA weights (decay 0.3077 at step 3)", 1, true), outb)
  T.ok(outb:find("(EMA weights, 6 updates, warmed up)", 1, true), outb)
  T.eq(outb:match("([^\n]+)\n*$"), "checkpoint " .. b .. "/last.safetensors")
  T.ok(not T.exists(b .. "/samples/."), "an empty samples/ folder")
end)

T.test("a second SIGINT aborts at once, keeping the last good checkpoint; ckpt_minutes checkpoints on the clock",
function()
  local a = dir .. "/gan_twice"
  local twice = signal_at(5, "INT", true)
  local rc, out = run("train_gan.lua", QUICK .. "steps=20 ckpt_every=3 ckpt_minutes=0 out=" .. a, twice)
  T.eq(rc, 130, out) -- the shell's 128 + SIGINT: killed by the signal, not an exit
  T.ok(not out:find("stopped by SIGINT", 1, true), "the second SIGINT did not stop at once: " .. out)
  T.eq(ai.checkpoint.read(a .. "/last.safetensors").step, 3)
  -- the same with a checkpoint on the clock at every step (ckpt_minutes tiny) and none by count
  local c = dir .. "/gan_clock"
  rc, out = run("train_gan.lua", QUICK .. "steps=20 ckpt_every=1000 ckpt_minutes=1e-9 out=" .. c, twice)
  T.eq(rc, 130, out)
  T.eq(ai.checkpoint.read(c .. "/last.safetensors").step, 4)
  -- and none at all with ckpt_minutes=0: the kill loses everything, as it should say before
  local d = dir .. "/gan_none"
  rc, out = run("train_gan.lua", QUICK .. "steps=20 ckpt_every=1000 ckpt_minutes=0 out=" .. d, twice)
  T.eq(rc, 130, out)
  T.ok(not T.exists(d .. "/last.safetensors"), "a checkpoint without a reason")
end)

T.test("train_classifier.lua and style_transfer.lua: SIGINT, then resume=true continues bit-exact", function()
  local C = "threads=2 epochs=2 limit=2560 test_limit=200 batch_size=64 width=8 "
  -- mid-epoch (step 20 of 40) and at an epoch's end (40: its evaluation comes first)
  for _, at in ipairs({20, 40}) do
    local a = dir .. "/clf_" .. at
    local rc, out = run("train_classifier.lua", C .. "out=" .. a, signal_at(at))
    T.eq(rc, 130, out)
    T.eq(ai.checkpoint.read(a .. "/last.safetensors").step, at)
    T.ok(not T.exists(a .. "/classifier.safetensors"), out)
    rc, out = T.sh(resume_command(out))
    must(rc, out, "the classifier's resume")
    T.ok(T.exists(a .. "/classifier.safetensors") and T.exists(a .. "/config.json"), out)
  end
  must(run("train_classifier.lua", C .. "out=" .. dir .. "/clf_ref"))
  local ref = losses(dir .. "/clf_ref/metrics.jsonl")
  T.eq(#ref, 6)
  T.eq(losses(dir .. "/clf_20/metrics.jsonl"), ref)
  T.eq(losses(dir .. "/clf_40/metrics.jsonl"), ref)
  for _, opt in ipairs({"", "optimizer=adam lr=0.02 "}) do
    local S = "threads=2 size=32 steps=6 save_every=0 " .. opt
    local a, b = dir .. "/style_int", dir .. "/style_ref"
    os.execute("rm -rf " .. q(a) .. " " .. q(b))
    local rc, out = run("style_transfer.lua", S .. "out=" .. a, signal_at(3))
    T.eq(rc, 130, out)
    T.ok(out:find("stopped by SIGINT at step 3: checkpoint " .. a .. "/last.safetensors, the result so far " .. a
      .. "/result.png", 1, true), out)
    T.ok(T.exists(a .. "/result.png"), "no result so far")
    must(T.sh(resume_command(out)))
    must(run("style_transfer.lua", S .. "out=" .. b))
    T.eq(losses(a .. "/metrics.jsonl"), losses(b .. "/metrics.jsonl"), opt)
    T.eq(T.readfile(a .. "/result.png"), T.readfile(b .. "/result.png"), "the result of " .. opt)
  end
end)

T.test("two runs on one folder: the second is refused at once, naming the first's PID; a stale lock is taken over",
function()
  local a = dir .. "/locked"
  local h = io.popen(("%s scripts/train_gan.lua %s steps=100000 out=%s >/dev/null 2>&1 & echo $!"):format(BIN, QUICK,
    q(a)))
  local pid = tonumber(h:read("l"))
  h:close()
  local t0 = ai.clock()
  while not T.exists(a .. "/lock.pid") and ai.clock() - t0 < 20 do os.execute("sleep 0.05") end
  local lock = T.readfile(a .. "/lock.pid") or ""
  local t1 = ai.clock()
  local rc, out = run("train_gan.lua", QUICK .. "steps=5 out=" .. a)
  local took = ai.clock() - t1
  os.execute("kill -TERM " .. pid)
  T.eq(tonumber(lock:match("^(%d+)")), pid, "lock.pid: " .. lock)
  T.eq(rc, 1, out)
  T.ok(out:find(("out=%s is in use: process %d"):format(a, pid), 1, true), out)
  T.ok(out:find("give this run another folder with out=", 1, true), out)
  T.ok(took < 5, ("refused after %.1f s"):format(took))
  -- the first run took SIGTERM as a stop: its files are whole and its lock is gone
  t0 = ai.clock()
  while T.exists(a .. "/lock.pid") and ai.clock() - t0 < 20 do os.execute("sleep 0.05") end
  T.ok(not T.exists(a .. "/lock.pid"), "the first run kept its lock after SIGTERM")
  T.ok(ai.checkpoint.read(a .. "/last.safetensors").step >= 0)
  -- a lock file whose holder is gone (a kill -9, a crash) does not block
  T.writefile(a .. "/lock.pid", "999999\nghost\n")
  rc, out = run("train_gan.lua", QUICK .. "steps=2 out=" .. a)
  must(rc, out, "a run over a stale lock")
  T.ok(out:find("the lock of process 999999 on ghost, which has ended, is taken over", 1, true), out)
  -- the library's lock
  local p = dir .. "/lk"
  local l1 = ai.lock_file(p)
  local l2, info = ai.lock_file(p)
  T.ok(l1 and not l2 and info.pid == tonumber(T.readfile(p):match("^(%d+)")), T.show(info))
  T.ok(info.message:find("is held by process", 1, true), info.message)
  l1:release()
  T.ok(not T.exists(p))
  local l3 <close> = ai.lock_file(p)
  T.eq(l3:stale(), nil)
end)

T.test("resume: the checkpoint's options fill what is left out, lr is applied, another change is refused", function()
  local a = dir .. "/gan_opts"
  must(run("train_gan.lua", QUICK .. "steps=2 lr=1e-3 batch_size=8 out=" .. a))
  -- left out: the checkpoint's, in the run and in config.json (never the defaults)
  local rc, out = run("train_gan.lua", QUICK .. "steps=3 resume=true out=" .. a)
  must(rc, out, "the resume")
  local c = read_json(a .. "/config.json")
  T.eq({c.lr, c.batch_size, c.steps, c.resume}, {1e-3, 8, 3, false})
  local p = ai.checkpoint.read(a .. "/last.safetensors")
  T.eq({p.optG.param_groups[1].lr, p.config.lr, p.loader.batch_size}, {1e-3, 1e-3, 8})
  -- lr given: applied to both optimizers and recorded
  rc, out = run("train_gan.lua", QUICK .. "steps=4 lr=5e-4 resume=true out=" .. a)
  must(rc, out, "the resume with lr")
  T.ok(out:find("resume: lr=0.0005 applied (the checkpoint's 0.001)", 1, true), out)
  p = ai.checkpoint.read(a .. "/last.safetensors")
  T.eq({p.optG.param_groups[1].lr, p.optD.param_groups[1].lr, read_json(a .. "/config.json").lr}, {5e-4, 5e-4, 5e-4})
  -- another objective, batch or architecture: refused, the run untouched
  for _, bad in ipairs({"loss=hinge", "batch_size=16", "arch=dcgan"}) do
    rc, out = run("train_gan.lua", QUICK .. "steps=5 resume=true " .. bad .. " out=" .. a)
    local k, v = bad:match("(.-)=(.*)")
    T.eq(rc, 1, out)
    T.ok(out:find(("resume: %s=%s differs from the checkpoint's %s="):format(k, v, k), 1, true), out)
    T.ok(out:find("a resumed run keeps it", 1, true) and not out:find("traceback", 1, true), out)
  end
  T.eq(ai.checkpoint.read(a .. "/last.safetensors").step, 4)
  rc, out = run("train_gan.lua", QUICK .. "resume=true out=" .. dir .. "/nothing_here")
  T.ok(rc == 1 and out:find("resume=true: no checkpoint at " .. dir .. "/nothing_here/last.safetensors", 1, true), out)
  -- the classifier: lr through the one-cycle schedule; its epochs cannot change
  local C = "threads=2 epochs=2 limit=640 test_limit=100 batch_size=64 width=4 "
  local b = dir .. "/clf_opts"
  rc, out = run("train_classifier.lua", C .. "out=" .. b, signal_at(20))
  T.eq(rc, 130, out)
  local before = ai.checkpoint.read(b .. "/last.safetensors")
  rc, out = run("train_classifier.lua", C .. "epochs=3 resume=true out=" .. b)
  T.ok(rc == 1 and out:find("resume: epochs=3 differs from the checkpoint's epochs=2", 1, true), out)
  rc, out = run("train_classifier.lua", C .. "lr=0.05 resume=true out=" .. b)
  must(rc, out, "the classifier's resume with lr")
  local after = ai.checkpoint.read(b .. "/last.safetensors")
  local g0, g1 = before.optimizer.param_groups[1], after.optimizer.param_groups[1]
  T.near({g1.max_lr, g1.initial_lr, g1.min_lr}, {g0.max_lr / 2, g0.initial_lr / 2, g0.min_lr / 2}, 1e-12)
  T.near(after.scheduler.base_lrs[1], before.scheduler.base_lrs[1] / 2, 1e-12)
end)

T.test("the metrics time is wall time since the run started, continued across a resume, in every script", function()
  local a = dir .. "/gan_time"
  local t0 = ai.clock()
  must(run("train_gan.lua", QUICK .. "steps=4 out=" .. a))
  local wall1 = ai.clock() - t0
  must(run("train_gan.lua", QUICK .. "steps=8 resume=true out=" .. a))
  local recs = ai.metrics.read(a .. "/metrics.jsonl")
  T.eq(#recs, 8)
  for i = 2, 8 do T.ok(recs[i].time > recs[i - 1].time, "time goes back at step " .. i) end
  T.ok(recs[4].time <= wall1, ("step 4 at %.3f s of a run of %.3f s"):format(recs[4].time, wall1))
  for _, f in ipairs({dir .. "/ddpm_term", dir .. "/clf_20", dir .. "/style_int"}) do
    for _, r in ipairs(ai.metrics.read(f .. "/metrics.jsonl")) do
      T.ok(type(r.time) == "number" and r.time > 0 and r.time < 300, f .. ": " .. T.show(r))
    end
  end
end)

-- ------------------------------------------------------------------ the user's data

local function make_folder(root, n_rgb, n_gray, extra)
  os.execute("mkdir -p " .. q(root .. "/pics"))
  ai.manual_seed(3)
  for i = 1, n_rgb do ai.image.save(("%s/pics/rgb%02d.png"):format(root, i), ai.rand(3, 30 + i, 40)) end
  for i = 1, n_gray do ai.image.save(("%s/pics/gray%02d.png"):format(root, i), ai.rand(1, 28, 28)) end
  if extra then extra(root .. "/pics") end
end

T.test("a folder of 20 images: a smaller batch with a warning, and one paragraph on what happens to the data", function()
  local root = dir .. "/twenty"
  make_folder(root, 14, 6)
  local out = dir .. "/gan_twenty"
  local rc, log = run("train_gan.lua", QUICK .. "steps=3 data=" .. root .. " out=" .. out)
  must(rc, log, "training on 20 images")
  T.ok(log:find(("data: 20 images in %s: 6 gray, 14 RGB; 28x28 to 40x44 (width x height)"):format(root), 1, true), log)
  T.ok(log:find("each image is resized so that its shorter side is 28, centre-cropped to 28x28 and converted to gray",
    1, true), log)
  T.ok(log:find("warning: 20 images in " .. root .. ", fewer than batch_size=32: training with batch_size=20", 1, true),
    log)
  T.eq(read_json(out .. "/config.json").batch_size, 20)
  T.eq(#ai.metrics.read(out .. "/metrics.jsonl"), 3)
  -- and the stream never spins on an epoch without a batch
  local ds = ai.data.TensorDataset(ai.zeros(3, 2))
  local next_batch = require("aiart.experiment").batches(ai.data.DataLoader(ds, {batch_size = 4, drop_last = true}))
  T.expect_error("the data gave no batch in an epoch: 3 samples for batch_size=4 (incomplete batches are dropped)",
                 next_batch)
end)

T.test("a corrupt file among good ones: skipped with a warning (bad_files=skip), or named (bad_files=error)", function()
  local root = dir .. "/corrupt"
  make_folder(root, 4, 4, function(p)
    T.writefile(p .. "/broken.png", T.readfile(p .. "/rgb01.png"):sub(1, 100))
    T.writefile(p .. "/notes.png", "not a picture")
  end)
  local rc, log = run("train_gan.lua", QUICK .. "steps=2 batch_size=4 data=" .. root .. " out=" .. dir .. "/gan_corrupt")
  must(rc, log, "training with corrupt files")
  T.ok(log:find("data: 8 images in " .. root, 1, true), log)
  T.ok(log:find("warning: 2 unreadable files skipped (bad_files=error stops instead): " .. root
    .. "/pics/broken.png (png: truncated", 1, true), log)
  rc, log = run("train_gan.lua", QUICK .. "steps=2 batch_size=4 bad_files=error data=" .. root .. " out=" .. dir
    .. "/gan_corrupt2")
  T.eq(rc, 1, log)
  T.ok(log:find("ImageFolder: cannot read " .. root .. "/pics/broken.png: png: truncated", 1, true), log)
  T.ok(not log:find("traceback", 1, true), log)
  -- read when used (no bad_files): the error names the file
  local ds = ai.data.ImageFolder{root = root}
  local i
  for k, f in ipairs(ds.files) do if f:find("notes.png", 1, true) then i = k end end
  T.expect_error("ImageFolder: cannot read " .. root .. "/pics/notes.png: png:", ds.get, ds, i)
  T.expect_error("bad_files must be \"skip\" or \"error\"", ai.data.ImageFolder, {root = root, bad_files = "ignore"})
  -- the summary of a scan
  local scanned = ai.data.ImageFolder{root = root, bad_files = "skip", size = 28}
  T.eq({#scanned, #scanned.skipped, scanned.summary.channels[1], scanned.summary.channels[3]}, {8, 2, 4, 4})
  T.eq({scanned.summary.smallest, scanned.summary.largest}, {{28, 28}, {34, 40}})
end)

T.test("style_transfer.lua vgg=file loads strictly: missing or unexpected keys are an error listing some", function()
  local models = require "aiart.models"
  local sd = models.vgg19_features{upto = "relu5_1"}:state_dict()
  local good, bare = {}, {}
  for k, v in pairs(sd) do
    good[k] = v
    bare[k:gsub("^features%.", "")] = v
  end
  ai.save(dir .. "/vgg.safetensors", good)
  ai.save(dir .. "/bare.safetensors", bare)
  local S = "threads=2 size=32 steps=1 save_every=0 "
  local rc, out = run("style_transfer.lua", S .. "vgg=" .. dir .. "/vgg.safetensors out=" .. dir .. "/vgg_ok")
  must(rc, out, "style transfer with VGG-19 weights")
  T.ok(out:find("features: VGG-19 from " .. dir .. "/vgg.safetensors", 1, true), out)
  rc, out = run("style_transfer.lua", S .. "vgg=" .. dir .. "/bare.safetensors out=" .. dir .. "/vgg_bare")
  T.eq(rc, 1, out)
  T.ok(out:find("vgg=" .. dir .. "/bare.safetensors is not VGG-19's features as the README exports them", 1, true), out)
  T.ok(out:find("missing keys features.0.bias, features.0.weight, features.10.bias, features.10.weight, ... (26 in all)",
    1, true), out)
  T.ok(out:find("unexpected keys 0.bias, 0.weight, 10.bias, 10.weight, ... (26 in all)", 1, true), out)
  T.ok(not out:find("traceback", 1, true) and not T.exists(dir .. "/vgg_bare/result.png"), out)
  -- another model's checkpoint
  rc, out = run("style_transfer.lua", S .. "vgg=" .. dir .. "/gan_int/last.safetensors out=" .. dir .. "/vgg_gan")
  T.ok(rc == 1 and out:find("unexpected keys D.", 1, true), out)
end)

-- ------------------------------------------------------------------ outputs that say what they are

T.test("sample.lua and eval_fd.lua: what they cannot write or read is said, with what they can", function()
  local gan = dir .. "/gan_int/last.safetensors"
  local rc, out = run("sample.lua", "ckpt=" .. gan .. " n=4 out=" .. dir .. "/grid.png")
  must(rc, out, "a PNG grid")
  T.ok(T.exists(dir .. "/grid.png") and ai.image.load(dir .. "/grid.png"):size(1) >= 1, out)
  rc, out = run("sample.lua", "ckpt=" .. gan .. " n=4 out=" .. dir .. "/grid.jpg")
  T.ok(rc == 1 and out:find("PNG is its only image format", 1, true) and not T.exists(dir .. "/grid.jpg"), out)
  rc, out = run("sample.lua", "ckpt=" .. dir .. "/clf_ref/classifier.safetensors n=4 out=" .. dir .. "/x.png")
  T.ok(rc == 1 and out:find("is a classifier checkpoint of train_classifier.lua, not a GAN or DDPM checkpoint", 1, true),
    out)
  must(run("sample.lua", "ckpt=" .. gan .. " n=100 out=" .. dir .. "/s100.idx"))
  local clf = dir .. "/clf_ref/classifier.safetensors"
  rc, out = run("eval_fd.lua", "samples=" .. dir .. "/s100.idx classifier=" .. clf)
  T.ok(rc == 1 and out:find("eval_fd.lua: 100 samples: the distance needs at least 256 of each set", 1, true), out)
  rc, out = run("eval_fd.lua", "samples=" .. dir .. "/s100.idx classifier=" .. gan)
  T.ok(rc == 1 and out:find("is a GAN checkpoint of train_gan.lua, not a classifier of train_classifier.lua", 1, true)
    and out:find("./aiart-lua scripts/train_classifier.lua", 1, true), out)
end)

T.test("progress: steps=0 epochs=1 shows a total; the plain lines off a terminal", function()
  local rc, out = run("train_gan.lua", QUICK .. "steps=0 epochs=1 time_limit=1 out=" .. dir .. "/gan_epoch")
  must(rc, out, "steps=0 epochs=1")
  T.ok(out:find("gan mlp/bce %d+/1875 %(%d+%%%)"), out) -- 60,000 / 32 steps
  T.ok(not out:find("\r", 1, true), "carriage returns in a pipe")
  T.ok(out:find("stopped at step %d+ %(time_limit%)"), out)
end)

T.test("the README's claims about scripts: every training script takes resume and ckpt_minutes, --help lists them",
function()
  for _, s in ipairs({"train_gan.lua", "train_ddpm.lua", "train_classifier.lua", "style_transfer.lua"}) do
    local rc, out = run(s, "--help")
    T.eq(rc, 0, out)
    for _, k in ipairs({"resume", "ckpt_minutes", "out", "continue from out/last.safetensors"}) do
      T.ok(out:find(k, 1, true), s .. " --help lacks " .. k)
    end
  end
end)

T.test("signals: the trap keeps and puts back the host's Ctrl-C handler, in aiart-lua and in a stock lua5.4", function()
  local script = [[
local ai = require "aiart"
local f = io.open("/proc/self/stat")
local pid = f:read("a"):match("^(%d+)")
f:close()
local function kill() io.popen("kill -INT " .. pid):close() end
ai.trap_signals()
kill()
print("pending", ai.pending_signal())
ai.untrap_signals()
print("after", ai.pending_signal())
print(pcall(function()
  kill()
  local t = ai.clock()
  while ai.clock() - t < 5 do end
  return "not interrupted"
end))
]]
  local path = dir .. "/sig.lua"
  T.writefile(path, script)
  local hosts = {{BIN, ""}}
  if T.have("lua5.4") and T.exists("aiart.so") then
    hosts[2] = {"lua5.4", "LUA_CPATH='./?.so' LUA_PATH='lua/?.lua;lua/?/init.lua'"}
  else
    print("test_runs.lua: skipped the stock lua5.4 check (no lua5.4 or no aiart.so)")
  end
  for _, h in ipairs(hosts) do
    local rc, out = T.sh(("%s %s %s"):format(h[2], h[1], q(path)))
    T.eq(rc, 0, out)
    T.ok(out:find("pending\tSIGINT\t2", 1, true) and out:find("after\tnil", 1, true), h[1] .. ": " .. out)
    T.ok(out:find("false\t.-interrupted") and not out:find("not interrupted", 1, true), h[1] .. ": " .. out)
  end
end)
