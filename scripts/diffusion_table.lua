-- scripts/diffusion_table.lua: the README's diffusion tables, measured on one checkpoint with
-- sample.lua and eval_fd.lua (each run is printed as the command it is, so any row can be made
-- again by hand). table=samplers: the Fréchet distance and the time per 10,000 samples for each
-- sampler and number of steps. table=guidance (a cond=class checkpoint): for each guidance w,
-- every class drawn by prompt, the share the classifier gives its prompt's class, per class and
-- overall, and the distance of all of them together. Markdown on stdout. `--help` for options.
local ai = require "aiart"
local experiment = require "aiart.experiment"
local util = require "aiart.util"

local cfg = experiment.options(arg, {
  ckpt = {"runs/ddpm-class/last.safetensors", "checkpoint of train_ddpm.lua", "string"},
  classifier = {"runs/classifier/classifier.safetensors", "checkpoint of train_classifier.lua", "string"},
  table = {"samplers", "which table", {"samplers", "guidance"}},
  n = {2000, "samples per row (10,000 as FID does; fewer bias the distance upwards, equally for every row)",
       "integer >= 256"},
  samplers = {"ddim,euler,euler_a,heun,dpmpp_2m", "table=samplers: the samplers, separated by commas", "string"},
  steps = {{5, 10, 20, 50}, "table=samplers: the numbers of steps", "list of integers >= 1"},
  ddpm = {true, "table=samplers: also ancestral DDPM over all T steps, once", "boolean"},
  guidance = {{0, 1, 3, 5}, "table=guidance: the guidance values w", "list of numbers >= 0"},
  sampler = {"dpmpp_2m", "table=guidance: the sampler", {"ddpm", "ddim", "euler", "euler_a", "heun", "dpmpp_2m"}},
  sampler_steps = {20, "table=guidance: its steps", "integer >= 1"},
  work = {"/tmp/aiart-diffusion-table", "folder for the sample files", "string"},
}, {
  description = "Measure the README's sampler and guidance tables on a DDPM checkpoint.",
  common = {"seed"},
  check = function(c)
    local known = {ddpm = true, ddim = true, euler = true, euler_a = true, heun = true, dpmpp_2m = true}
    for s in (c.samplers .. ","):gmatch("([^,]*),") do
      if not known[s] then return ("samplers=%s: %q is not a sampler (ddpm, ddim, euler, euler_a, heun, dpmpp_2m)"):format(c.samplers, s) end
    end
    return experiment.unreadable(c, "ckpt", "classifier")
  end,
})

local bin = arg[-1] or "./aiart-lua"
local q = util.shell_quote
experiment.mkdir(cfg.work)

-- Runs a script, echoing its command on stderr; returns its output and the wall seconds it took.
local function run(script, args)
  local cmd = ("%s scripts/%s %s"):format(q(bin), script, args)
  io.stderr:write(cmd, "\n")
  local t0 = ai.clock()
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  if not ok then experiment.fail(("diffusion_table.lua: %s failed:\n%s"):format(cmd, out)) end
  return out, ai.clock() - t0
end

local function fd(samples, class)
  local out = run("eval_fd.lua", ("samples=%s classifier=%s%s"):format(q(samples), q(cfg.classifier),
    class and (" class=" .. q(class)) or ""))
  local d = tonumber(out:match("FD ([%d%.]+)"))
  local share = tonumber(out:match("classified as [^:]+: ([%d%.]+)"))
  return d, share
end

local function sample(args, file)
  local _, secs = run("sample.lua", ("ckpt=%s n=%d seed=%d out=%s %s"):format(q(cfg.ckpt), cfg.n, cfg.seed, q(file), args))
  return secs
end

local given = {}
for i = 1, #arg do given[i] = arg[i] end
print(("Measured %s with `aiart-lua scripts/diffusion_table.lua %s`, %d samples per row.\n"):format(
  os.date("!%Y-%m-%d"), table.concat(given, " "), cfg.n))
if cfg.table == "samplers" then
  print("| sampler | steps | FD | s per 10,000 samples |")
  print("| --- | --- | --- | --- |")
  local rows = {}
  for s in cfg.samplers:gmatch("[^,]+") do
    for _, k in ipairs(cfg.steps) do rows[#rows + 1] = {s, k} end
  end
  if cfg.ddpm then rows[#rows + 1] = {"ddpm", 0} end
  for _, r in ipairs(rows) do
    local file = ("%s/%s_%d.idx"):format(cfg.work, r[1], r[2])
    local secs = sample(("sampler=%s steps=%d"):format(r[1], r[2]), file)
    local d = fd(file)
    print(("| %s | %s | %.2f | %.0f |"):format(r[1], r[2] == 0 and "all T" or tostring(r[2]), d, secs * 10000 / cfg.n))
    io.stdout:flush()
  end
else
  local parts = ai.checkpoint.read(cfg.ckpt)
  local names = parts.class_names
  if not names then experiment.fail("diffusion_table.lua: table=guidance needs a cond=class checkpoint") end
  local per = cfg.n // #names
  local header, rule = {"| guidance w"}, {"| ---"}
  for _, c in ipairs(names) do header[#header + 1] = c; rule[#rule + 1] = "---" end
  for _, h in ipairs({"all classes", "FD (all)"}) do header[#header + 1] = h; rule[#rule + 1] = "---" end
  print(table.concat(header, " | ") .. " |")
  print(table.concat(rule, " | ") .. " |")
  for _, w in ipairs(cfg.guidance) do
    local cells, files, hit = {("| %g"):format(w)}, {}, 0
    for i, c in ipairs(names) do
      local file = ("%s/w%g_%d.idx"):format(cfg.work, w, i)
      run("sample.lua", ("ckpt=%s n=%d seed=%d out=%s prompt=%s guidance=%g sampler=%s steps=%d"):format(q(cfg.ckpt),
        per, cfg.seed + i, q(file), q(c), w, cfg.sampler, cfg.sampler_steps))
      files[i] = file
      -- the share alone: per is below the distance's minimum of 256 images
      local out = run("eval_fd.lua", ("samples=%s classifier=%s class=%s"):format(q(file), q(cfg.classifier), q(c)))
      local share = tonumber(out:match("classified as [^:]+: ([%d%.]+)"))
      hit = hit + share * per
      cells[#cells + 1] = ("%.3f"):format(share)
    end
    -- all classes in one file for the distance
    local all = {}
    for i, f in ipairs(files) do all[i] = ai.io.read_idx(f) end
    local joined = ("%s/w%g_all.idx"):format(cfg.work, w)
    ai.io.write_idx(joined, ai.cat(all, 1))
    cells[#cells + 1] = ("%.3f"):format(hit / (per * #names))
    cells[#cells + 1] = ("%.2f"):format((fd(joined)))
    print(table.concat(cells, " | ") .. " |")
    io.stdout:flush()
  end
end
