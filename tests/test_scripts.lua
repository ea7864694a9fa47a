-- tests/test_scripts.lua: every experiment script end to end at smoke size: files produced,
-- resume continuing the step count and the metrics, bad arguments as clear errors.
local T = require "helper"
local ai = require "aiart"

local bin = T.binary()

-- Runs a script with key=value args; returns ok, combined output.
local function run(script, args)
  local rc, out = T.sh(("%s scripts/%s %s"):format(bin, script, args or ""))
  return rc == 0, out
end

local function must_run(script, args)
  local ok, out = run(script, args)
  if not ok then error(("%s %s failed:\n%s"):format(script, args, out), 2) end
  return out
end

local exists = T.exists

local function png_size(path)
  local img = ai.image.load(path)
  return img:size(2), img:size(3)
end

local dir = T.tmpdir()
local QUICK = "threads=2 log_every=1 "

T.test("train_gan: mlp/bce writes config, metrics, samples, checkpoints and a loss plot", function()
  local out = dir .. "/gan"
  must_run("train_gan.lua", QUICK .. "steps=6 sample_every=3 ckpt_every=3 out=" .. out)
  for _, f in ipairs({"config.json", "metrics.jsonl", "last.safetensors", "ckpt_000003.safetensors",
                      "ckpt_000006.safetensors", "samples/step_000003.png", "samples/step_000006.png", "loss.png"}) do
    T.ok(exists(out .. "/" .. f), "missing " .. f)
  end
  local h, w = png_size(out .. "/samples/step_000006.png")
  T.ok(h > 200 and w > 200, "the sample grid is 8x8 images of 28x28")
  local recs = ai.metrics.read(out .. "/metrics.jsonl")
  T.eq(#recs, 6)
  T.eq(recs[6].step, 6)
  T.ok(type(recs[1].loss_d) == "number" and type(recs[1].loss_g) == "number")
end)

T.test("train_gan: resume continues the step count and the metrics file", function()
  local out = dir .. "/gan"
  must_run("train_gan.lua", QUICK .. "steps=9 sample_every=3 ckpt_every=3 resume=true out=" .. out)
  local recs = ai.metrics.read(out .. "/metrics.jsonl")
  T.eq(#recs, 9)
  for i, r in ipairs(recs) do T.eq(r.step, i) end
end)

T.test("train_gan: a resumed run reproduces an uninterrupted one exactly", function()
  local a, b = dir .. "/gan_a", dir .. "/gan_b"
  must_run("train_gan.lua", QUICK .. "steps=6 sample_every=100 ckpt_every=3 out=" .. a)
  must_run("train_gan.lua", QUICK .. "steps=3 sample_every=100 ckpt_every=3 out=" .. b)
  must_run("train_gan.lua", QUICK .. "steps=6 sample_every=100 ckpt_every=3 resume=true out=" .. b)
  local ra, rb = ai.metrics.read(a .. "/metrics.jsonl"), ai.metrics.read(b .. "/metrics.jsonl")
  T.eq(#rb, 6)
  for i = 1, 6 do
    T.eq(rb[i].loss_d, ra[i].loss_d, "loss_d at step " .. i)
    T.eq(rb[i].loss_g, ra[i].loss_g, "loss_g at step " .. i)
  end
end)

T.test("train_gan: dcgan with hinge and mlp with wgan-gp run", function()
  must_run("train_gan.lua", QUICK .. "arch=dcgan loss=hinge batch_size=8 steps=2 sample_every=2 out=" .. dir .. "/dc")
  T.ok(exists(dir .. "/dc/samples/step_000002.png"))
  must_run("train_gan.lua", QUICK .. "loss=wgan-gp batch_size=8 steps=2 n_critic=2 sample_every=2 out=" .. dir .. "/wg")
  local recs = ai.metrics.read(dir .. "/wg/metrics.jsonl")
  T.eq(#recs, 2)
end)

T.test("train_gan: a folder of PNGs as data", function()
  local data = dir .. "/pngs"
  os.execute("mkdir -p " .. data .. "/a " .. data .. "/b")
  for i = 1, 8 do ai.image.save(("%s/%s/%d.png"):format(data, i % 2 == 0 and "a" or "b", i), ai.rand(1, 32, 32)) end
  must_run("train_gan.lua", QUICK .. "data=" .. data .. " batch_size=4 steps=2 sample_every=2 out=" .. dir .. "/folder")
  T.ok(exists(dir .. "/folder/last.safetensors"))
end)

T.test("train_gan: bad arguments are clear errors", function()
  local ok, out = run("train_gan.lua", "arch=resnet steps=1 out=" .. dir .. "/bad")
  T.ok(not ok and out:find("arch must be mlp or dcgan", 1, true), out)
  ok, out = run("train_gan.lua", "stepz=3")
  T.ok(not ok and out:find("stepz", 1, true) and out:find("steps", 1, true), out)
  ok, out = run("train_gan.lua", "--help")
  T.ok(ok and out:find("sample_every", 1, true), out)
end)

T.test("train_gan: a non-finite loss stops training, naming the step, and keeps the last good checkpoint", function()
  local out = dir .. "/nan"
  must_run("train_gan.lua", QUICK .. "steps=2 ckpt_every=1 sample_every=100 out=" .. out)
  -- resumed with a learning rate of 1e38 (applied to the restored optimizers), the weights blow
  -- up at once; the step-2 checkpoint must survive, and the message name it
  local ok, msg = run("train_gan.lua", QUICK .. "steps=4 lr=1e38 ckpt_every=1 sample_every=100 resume=true out=" .. out)
  T.ok(not ok, "training should have stopped")
  T.ok(msg:find("resume: lr=1e+38 applied (the checkpoint's 0.0002)", 1, true), msg)
  T.ok(msg:find("non-finite loss at step 3", 1, true), msg)
  T.ok(msg:find("the last good checkpoint is " .. out .. "/last.safetensors (step 2)", 1, true), msg)
  T.eq(ai.checkpoint.read(out .. "/last.safetensors").step, 2)
  -- a new run that fails before its first checkpoint says so
  ok, msg = run("train_gan.lua", QUICK .. "steps=4 lr=1e38 ckpt_every=1 sample_every=100 out=" .. out .. "1")
  T.ok(not ok and msg:find("non-finite loss at step 1", 1, true), msg)
  T.ok(msg:find("no checkpoint was written yet (ckpt_every=1 steps, ckpt_minutes=10)", 1, true), msg)
  -- on_nan=skip drops such batches, and gives up after 100 in a row
  ok, msg = run("train_gan.lua", QUICK .. "steps=4 lr=1e38 on_nan=skip ckpt_every=100 sample_every=100 out=" .. out .. "2")
  T.ok(msg:find("batch skipped", 1, true), msg)
  T.ok(not ok and msg:find("100 batches in a row", 1, true), msg)
end)

T.test("train_ddpm: trains, samples with DDIM and writes the denoising strip and GIF", function()
  local out = dir .. "/ddpm"
  must_run("train_ddpm.lua", QUICK .. "ch=8 T=20 batch_size=4 steps=3 sample_steps=4 n_samples=4 path_samples=2 "
    .. "sample_every=0 ckpt_every=3 out=" .. out)
  for _, f in ipairs({"samples.png", "path.png", "path.gif", "last.safetensors", "metrics.jsonl", "loss.png"}) do
    T.ok(exists(out .. "/" .. f), "missing " .. f)
  end
  must_run("train_ddpm.lua", QUICK .. "ch=8 T=20 batch_size=4 steps=5 sample_steps=0 n_samples=2 path_samples=1 "
    .. "sample_every=0 ckpt_every=5 resume=true out=" .. out)
  T.eq(#ai.metrics.read(out .. "/metrics.jsonl"), 5)
end)

T.test("sample.lua: a grid, a folder and an IDX file from GAN and DDPM checkpoints", function()
  must_run("sample.lua", "ckpt=" .. dir .. "/gan/last.safetensors n=10 out=" .. dir .. "/s.png")
  T.ok(exists(dir .. "/s.png"))
  must_run("sample.lua", "ckpt=" .. dir .. "/gan/last.safetensors n=5 out=" .. dir .. "/sdir/")
  T.ok(exists(dir .. "/sdir/00005.png"))
  must_run("sample.lua", "ckpt=" .. dir .. "/ddpm/last.safetensors n=3 sample_steps=3 out=" .. dir .. "/s.idx")
  local t = ai.io.read_idx(dir .. "/s.idx")
  T.eq(t.shape, {3, 28, 28})
  T.eq(t.dtype, "u8")
end)

T.test("train_ddpm cond=class, then sample.lua with prompts, guidance, samplers, img2img and inpainting", function()
  local out = dir .. "/ddpm-class"
  must_run("train_ddpm.lua", QUICK .. "cond=class prediction=v ch=8 T=20 batch_size=8 steps=3 sample_steps=3 "
    .. "sampler=dpmpp_2m n_samples=10 path_samples=2 sample_every=0 out=" .. out)
  local parts = ai.checkpoint.read(out .. "/last.safetensors")
  T.eq(#parts.class_names, 10)
  T.eq(parts.config.cond, "class")
  T.eq({png_size(out .. "/samples.png")}, {2 + 10 * 30, 2 + 1 * 30}, "one row per class, one sample each")
  local ckpt = "ckpt=" .. out .. "/last.safetensors "
  must_run("sample.lua", ckpt .. 'prompt="sneaker, ankle boot" sampler=dpmpp_2m steps=5 guidance=3 n=6 out=' .. dir .. "/p.png path=" .. dir .. "/path.png")
  T.eq({png_size(dir .. "/p.png")}, {2 + 2 * 30, 2 + 3 * 30}, "a row per prompt")
  T.ok(exists(dir .. "/path.png") and exists(dir .. "/path.gif"), "the denoising path")
  for _, s in ipairs{"ddpm", "ddim", "euler", "euler_a", "heun"} do
    must_run("sample.lua", ckpt .. "prompt=bag sampler=" .. s .. " steps=3 n=2 out=" .. dir .. "/" .. s .. ".idx")
    T.eq(ai.io.read_idx(dir .. "/" .. s .. ".idx").shape, {2, 28, 28}, s)
  end
  -- img2img from a colour picture of another size, and inpainting with a mask of that size
  ai.image.save(dir .. "/photo.png", ai.rand(3, 40, 36))
  local m = ai.zeros(40, 36)
  m:narrow(1, 1, 20):fill_(1)
  ai.image.save(dir .. "/mask.png", m)
  local o = must_run("sample.lua", ckpt .. "init=" .. dir .. "/photo.png strength=0.5 steps=4 n=4 out=" .. dir .. "/i2i.png")
  T.ok(o:find("colour converted to grey", 1, true), o)
  T.eq({png_size(dir .. "/i2i.png")}, {2 + 2 * 30, 2 + 3 * 30}, "each row: the input, then two samples")
  must_run("sample.lua", ckpt .. "init=" .. dir .. "/photo.png mask=" .. dir .. "/mask.png prompt=bag steps=4 n=2 jumps=1 "
    .. "out=" .. dir .. "/inp.idx")
  -- the kept half equals the input, as 8-bit pixels
  local got = ai.io.read_idx(dir .. "/inp.idx"):double()
  local photo = ai.image.load(dir .. "/photo.png")
  local grey = ai.image.resize((photo[1] * 0.299 + photo[2] * 0.587 + photo[3] * 0.114):unsqueeze(1), {size = {28, 28}, mode = "area"})
  local want = (grey * 255):round():double()
  T.ok((got[{{}, {15, 28}}] - want[{1, {15, 28}}]:unsqueeze(1)):abs():max():item() <= 1, "black in the mask: kept")
  -- what is refused, and why
  local function refused(args, text)
    local ok2, msg = run("sample.lua", ckpt .. args)
    T.ok(not ok2 and msg:find(text, 1, true), args .. ": " .. msg)
  end
  refused("prompt=sneakers", '"sneakers" is not a class of this model; the classes are: T-shirt/top')
  refused('prompt="bag,coat" n=3', "n=3 does not split into the 2 prompts' rows")
  refused("guidance=2", "guidance= needs a prompt")
  refused("mask=" .. dir .. "/mask.png", "mask= needs init=")
  refused("strength=0.5", "strength= needs init=")
  refused("init=" .. dir .. "/photo.png mask=" .. dir .. "/p.png", "the mask must be the picture's size")
  refused("init=" .. dir .. "/inp.idx", "is not a PNG")
  refused("steps=0 sampler=heun", "steps=0 means ancestral DDPM")
  refused("sample_steps=3 steps=3", "sample_steps and steps are one option")
  local ok3, msg3 = run("sample.lua", "ckpt=" .. dir .. "/ddpm/last.safetensors prompt=bag")
  T.ok(not ok3 and msg3:find("is unconditional (trained without cond=class)", 1, true), msg3)
  local ok4, msg4 = run("sample.lua", "ckpt=" .. dir .. "/gan/last.safetensors sampler=ddim")
  T.ok(not ok4 and msg4:find("is a GAN: sampler= applies to a DDPM checkpoint", 1, true), msg4)
  local ok5, msg5 = run("train_ddpm.lua", "zero_snr=true")
  T.ok(not ok5 and msg5:find("zero_snr=true needs prediction=v", 1, true), msg5)
end)

T.test("train_classifier and eval_fd: a small run, accuracy printed, a distance computed", function()
  local out = must_run("train_classifier.lua", "threads=2 epochs=1 limit=256 test_limit=200 batch_size=64 width=8 out="
    .. dir .. "/clf")
  T.ok(out:find("test accuracy", 1, true) and out:find("confusion matrix", 1, true), out)
  must_run("sample.lua", "ckpt=" .. dir .. "/gan/last.safetensors n=300 out=" .. dir .. "/fd.idx")
  out = must_run("eval_fd.lua", "samples=" .. dir .. "/fd.idx classifier=" .. dir .. "/clf/classifier.safetensors limit=300")
  local fd = tonumber(out:match("FD ([%d%.]+)"))
  T.ok(fd and fd > 0, out)
  T.ok(out:find("warning: FD from 300 samples is biased upwards and noisy; 2,000 or more", 1, true), out)
  -- class=: the share the classifier labels as that class, as the classifier itself says
  out = must_run("eval_fd.lua", "samples=" .. dir .. "/fd.idx classifier=" .. dir .. "/clf/classifier.safetensors limit=300 class=bag")
  local share = tonumber(out:match("classified as Bag: ([%d%.]+) of 300 samples"))
  local parts = ai.checkpoint.read(dir .. "/clf/classifier.safetensors")
  local net = require("aiart.models").Classifier{width = parts.config.width}
  net:load_state_dict(parts.model)
  net:eval()
  local u8 = ai.io.read_idx(dir .. "/fd.idx")
  local x = (u8:float() / 127.5 - 1):reshape(300, 1, 28, 28)
  local want = ai.no_grad(function() return net(x):argmax(2):eq(9):float():mean():item() end)
  T.ok(share and math.abs(share - want) < 1e-4, ("share %s, the classifier's %g: %s"):format(tostring(share), want, out))
  local ok = run("eval_fd.lua", "samples=" .. dir .. "/fd.idx classifier=" .. dir .. "/clf/classifier.safetensors class=bags")
  T.ok(not ok, "class=bags is refused")
end)

T.test("diffusion_table: the sampler and guidance tables, as markdown", function()
  local base = "ckpt=" .. dir .. "/ddpm-class/last.safetensors classifier=" .. dir .. "/clf/classifier.safetensors n=256 "
    .. "work=" .. dir .. "/table "
  local out = must_run("diffusion_table.lua", base .. "table=samplers samplers=ddim,dpmpp_2m steps=2 ddpm=false 2>/dev/null")
  T.ok(out:find("| ddim | 2 | [%d%.]+ | %d+ |") and out:find("| dpmpp_2m | 2 | [%d%.]+ | %d+ |"), out)
  out = must_run("diffusion_table.lua", base .. "n=260 table=guidance guidance=0,3 sampler_steps=2 2>/dev/null")
  T.ok(out:find("| guidance w | T-shirt/top |", 1, true) and out:find("\n| 3 | [%d%.]+ |"), out)
  local ok, msg = run("diffusion_table.lua", base .. "samplers=ddim,plms")
  T.ok(not ok and msg:find('"plms" is not a sampler', 1, true), msg)
end)

T.test("style_transfer: the default pair with the random CNN, Adam and L-BFGS", function()
  local out = dir .. "/style"
  must_run("style_transfer.lua", "threads=2 size=32 steps=2 optimizer=adam lr=0.02 save_every=1 out=" .. out)
  for _, f in ipairs({"content.png", "style.png", "step_0002.png", "result.png"}) do T.ok(exists(out .. "/" .. f), f) end
  must_run("style_transfer.lua", "threads=2 size=32 steps=1 out=" .. out)
  local h, w = png_size(out .. "/result.png")
  T.eq({h, w}, {32, 32})
end)
