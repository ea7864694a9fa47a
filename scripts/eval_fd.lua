-- scripts/eval_fd.lua: the Fréchet distance between generated samples and the Fashion-MNIST
-- test set, on the penultimate features of our classifier (FID's method with our classifier
-- in place of Inception): |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)). `--help` for options.
local ai = require "aiart"
local models = require "aiart.models"
local experiment = require "aiart.experiment"

local cfg = experiment.options(arg, {
  samples = {"samples.idx", "an IDX file of u8 28x28 images (sample.lua out=*.idx) or a folder of PNGs", "string"},
  classifier = {"runs/classifier/classifier.safetensors", "checkpoint of train_classifier.lua", "string"},
  reference = {"test", "reference images: the Fashion-MNIST split", {"test", "train"}},
  limit = {0, "use at most N images of each set (0: all)", "integer >= 0"},
}, {
  description = "Fréchet distance of samples to Fashion-MNIST on the classifier's features.",
  check = function(c)
    -- a covariance of one image divides by zero
    if c.limit == 1 then return "limit=1: the covariances need at least 2 images of each set" end
    return experiment.unreadable(c, "classifier", "samples")
  end,
})

local parts = ai.checkpoint.read(cfg.classifier)
local net = models.Classifier{width = parts.config and parts.config.width or 32}
net:load_state_dict(parts.model)
net:eval()

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
local mu1, s1 = stats(features(x))
local mu2, s2 = stats(features(ref))
local d = ((mu1 - mu2):square():sum() + trace(s1) + trace(s2)):item() - 2 * trace_sqrt_product(s1, s2)
print(("FD %.4f  (%d samples vs %d %s images, %d features)"):format(d, x:size(1), ref:size(1), cfg.reference,
      mu1:size(2)))
