-- scripts/eval_fd.lua: the Fréchet distance between generated samples and the Fashion-MNIST
-- test set, on the penultimate features of our classifier (FID's method with our classifier
-- in place of Inception): |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)). `--help` for options.
-- The classifier is trained first: `./aiart-lua scripts/train_classifier.lua` (about 8 minutes).
local ai = require "aiart"
local models = require "aiart.models"
local experiment = require "aiart.experiment"

local FEATURES = 256 -- the classifier's penultimate layer
local TRAIN = "./aiart-lua scripts/train_classifier.lua"

local cfg = experiment.options(arg, {
  samples = {"samples.idx", "an IDX file of u8 28x28 images (sample.lua out=*.idx) or a folder of PNGs", "string"},
  classifier = {"runs/classifier/classifier.safetensors", "checkpoint of train_classifier.lua (train it first)",
                "string"},
  reference = {"test", "reference images: the Fashion-MNIST split", {"test", "train"}},
  limit = {0, "use at most N images of each set (0: all; at least 256, one per feature)", "integer >= 0"},
  class = {"", "the class the samples were drawn for (sample.lua prompt=): also the share the classifier gives it",
           "string"},
}, {
  description = "Fréchet distance of samples to Fashion-MNIST on the classifier's features.",
  check = function(c)
    -- fewer images than features leave a singular covariance: a distance of no meaning
    if c.limit > 0 and c.limit < FEATURES then
      return ("limit=%d: the distance needs at least %d images of each set (one per feature of the classifier)")
        :format(c.limit, FEATURES)
    end
    local f = io.open(c.classifier, "rb")
    if not f then
      return ("classifier=%s: no such file. The classifier is trained first, once: %s (about 8 minutes; it "
        .. "writes runs/classifier/classifier.safetensors)"):format(c.classifier, TRAIN)
    end
    f:close()
    return experiment.unreadable(c, "samples")
  end,
})

-- The classifier: a checkpoint of train_classifier.lua, or a message saying what the file is.
local net
do
  local ok, parts = pcall(ai.checkpoint.read, cfg.classifier)
  if not ok then
    experiment.fail(("classifier=%s is not a checkpoint of train_classifier.lua: %s"):format(cfg.classifier,
      tostring(parts):gsub("^checkpoint%.read: ", "")))
  end
  local width = type(parts.config) == "table" and math.tointeger(parts.config.width)
  local loaded = false
  if parts.model and width then
    net = models.Classifier{width = width}
    loaded = pcall(net.load_state_dict, net, parts.model)
  end
  if not loaded then
    experiment.fail(("classifier=%s is %s, not a classifier of train_classifier.lua (train one with %s)"):format(
      cfg.classifier, experiment.checkpoint_kind(parts), TRAIN))
  end
  net:eval()
end

-- Images as N x 1 x 28 x 28 in [-1, 1].
local function load_samples(path)
  if path:match("%.idx$") or path:match("%.gz$") or path:match("ubyte$") then
    local u8 = ai.io.read_idx(path)
    return (u8:float() / 127.5 - 1):reshape(u8:size(1), 1, 28, 28)
  end
  local files = {}
  local p = io.popen("ls '" .. path .. "'/*.png 2>/dev/null")
  for f in p:lines() do files[#files + 1] = f end
  p:close()
  if #files == 0 then error("eval_fd: no IDX file or PNG folder at " .. path, 0) end
  local imgs = {}
  for i, f in ipairs(files) do
    local img = ai.image.load(f)
    if img:size(1) > 1 then img = img:mean(1) end
    imgs[i] = img * 2 - 1
  end
  return ai.stack(imgs, 1)
end

local function features(x)
  local chunks = {}
  ai.no_grad(function()
    for s = 1, x:size(1), 500 do
      chunks[#chunks + 1] = net:features(x:narrow(1, s, math.min(500, x:size(1) - s + 1))):double()
    end
  end)
  return ai.cat(chunks, 1)
end

local function trace(m) return (m * ai.eye(m:size(1), {dtype = m.dtype})):sum() end

local function stats(f)
  local n = f:size(1)
  local mu = f:mean(1)
  local c = f - mu
  return mu, c:t():matmul(c) / (n - 1)
end

--- Tr((S1 S2)^(1/2)) = sum of sqrt of the eigenvalues of S1^(1/2) S2 S1^(1/2) (symmetric PSD)
local function trace_sqrt_product(s1, s2)
  local w, v = ai.linalg.eigh(s1)
  local r = v * w:clamp(0):sqrt():view(1, -1)
  local root = r:matmul(v:t())
  local m = root:matmul(s2):matmul(root)
  local e = ai.linalg.eigh((m + m:t()) / 2)
  return e:clamp(0):sqrt():sum():item()
end

local x = load_samples(cfg.samples)
local ref_u8 = ai.data.fashion_mnist{split = cfg.reference}.data
local ref = (ref_u8:float() / 127.5 - 1):reshape(ref_u8:size(1), 1, 28, 28)
if cfg.limit > 0 then
  x = x:narrow(1, 1, math.min(cfg.limit, x:size(1)))
  ref = ref:narrow(1, 1, math.min(cfg.limit, ref:size(1)))
end
-- The share of the samples that the classifier labels as the class they were drawn for.
if cfg.class ~= "" then
  local names = ai.data.fashion_mnist{split = "test"}.classes
  local ok, labels = pcall(require("aiart.diffusion").parse_prompt, cfg.class, names)
  if not ok or #labels ~= 1 then
    experiment.fail("eval_fd.lua: class=" .. cfg.class .. ": " .. (ok and "one class name" or tostring(labels):gsub("^[^:]*:%d+: ", "")))
  end
  local counts = {}
  ai.no_grad(function()
    for s = 1, x:size(1), 500 do
      local pred = net(x:narrow(1, s, math.min(500, x:size(1) - s + 1))):argmax(2):view(-1)
      for _, c in ipairs(pred:tolist()) do counts[c] = (counts[c] or 0) + 1 end
    end
  end)
  local order = {}
  for c in pairs(counts) do order[#order + 1] = c end
  table.sort(order, function(a, b) return counts[a] > counts[b] end)
  local parts = {}
  for i = 1, math.min(3, #order) do parts[i] = ("%s %.1f%%"):format(names[order[i]], 100 * counts[order[i]] / x:size(1)) end
  print(("classified as %s: %.4f of %d samples (most often: %s)"):format(names[labels[1]],
        (counts[labels[1]] or 0) / x:size(1), x:size(1), table.concat(parts, ", ")))
end

local n = math.min(x:size(1), ref:size(1))
if n < FEATURES and cfg.class ~= "" then
  print(("(no distance: %d samples, and it needs at least %d)"):format(n, FEATURES))
  os.exit(0)
elseif n < FEATURES then
  experiment.fail(("eval_fd.lua: %d %s: the distance needs at least %d of each set (one per feature of the classifier); "
    .. "write more with sample.lua n=..."):format(n, x:size(1) == n and "samples" or "reference images", FEATURES))
end
if x:size(1) < 2000 then
  io.stderr:write(("warning: FD from %d samples is biased upwards and noisy; 2,000 or more (10,000 as in the README) "
    .. "give figures to compare\n"):format(x:size(1)))
end
local mu1, s1 = stats(features(x))
local mu2, s2 = stats(features(ref))
local d = ((mu1 - mu2):square():sum() + trace(s1) + trace(s2)):item() - 2 * trace_sqrt_product(s1, s2)
print(("FD %.4f  (%d samples vs %d %s images, %d features)"):format(d, x:size(1), ref:size(1), cfg.reference,
      mu1:size(2)))
