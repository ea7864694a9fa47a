-- aiart.models: the reference architectures (see shared/reference-models.md), written with
-- ai.nn as a user would: the seed MLP GAN, DCGAN, the DDPM UNet, a Fashion-MNIST classifier,
-- VGG-19 features for style transfer and a random-weight multi-scale CNN.
local ai = require "aiart"
local util = require "aiart.util"
local nn = ai.nn
local F = ai.F

local check_opts = util.check_opts

local M = {}

--- The seed GAN: G maps 100-d noise to 784 pixels in [-1, 1], D gives a probability.
function M.mlp_gan(opts)
  opts = check_opts("models.mlp_gan", opts, {z_dim = true, sigmoid = true})
  local z = opts.z_dim or 100
  local G = nn.Sequential(
    nn.Linear(z, 128), nn.LeakyReLU(0.2),
    nn.Linear(128, 256), nn.BatchNorm1d(256), nn.LeakyReLU(0.2),
    nn.Linear(256, 512), nn.BatchNorm1d(512), nn.LeakyReLU(0.2),
    nn.Linear(512, 784), nn.Tanh())
  -- D ends in a logit when the loss wants one (hinge, wgan-gp); the reference uses Sigmoid + BCE
  local D = nn.Sequential(
    nn.Linear(784, 512), nn.LeakyReLU(0.2),
    nn.Linear(512, 256), nn.LeakyReLU(0.2),
    nn.Linear(256, 1))
  if opts.sigmoid ~= false then D:add(nn.Sigmoid()) end
  return G, D
end

--- DCGAN for 28x28: D outputs a logit (BCE with logits).
function M.dcgan(opts)
  opts = check_opts("models.dcgan", opts, {z_dim = true, d_norm = true})
  local z = opts.z_dim or 100
  local norm_d = opts.d_norm ~= false
  local G = nn.Sequential(
    nn.Linear(z, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
    nn.Unflatten(2, {128, 7, 7}),
    nn.ConvTranspose2d(128, 64, 4, {stride = 2, padding = 1}), nn.BatchNorm2d(64), nn.ReLU(),
    nn.ConvTranspose2d(64, 1, 4, {stride = 2, padding = 1}), nn.Tanh())
  local D = nn.Sequential(
    nn.Conv2d(1, 64, 4, {stride = 2, padding = 1}), nn.LeakyReLU(0.2),
    nn.Conv2d(64, 128, 4, {stride = 2, padding = 1}),
    -- a gradient penalty is per-sample, so WGAN-GP replaces batch norm in D by an identity
    norm_d and nn.BatchNorm2d(128) or nn.Identity(), nn.LeakyReLU(0.2),
    nn.Flatten(), nn.Linear(128 * 7 * 7, 1))
  return G, D
end

---------------------------------------------------------------------- the DDPM UNet

--- Sinusoidal embedding of timesteps t (N) into dim features: first half sin, second cos,
-- frequencies exp(-ln(10000) * i / (dim/2)).
function M.timestep_embedding(t, dim)
  local half = dim // 2
  local freqs = (ai.arange(0, half):float() * (-math.log(10000) / half)):exp()
  local args = t:float():view(-1, 1) * freqs:view(1, -1)
  return ai.cat({args:sin(), args:cos()}, 2)
end

local ResBlock = nn.Module:extend("ResBlock")
M.ResBlock = ResBlock

function ResBlock:init(cin, cout, tdim)
  self.norm1 = nn.GroupNorm(8, cin)
  self.conv1 = nn.Conv2d(cin, cout, 3, {padding = 1})
  self.temb = nn.Linear(tdim or 128, cout)
  self.norm2 = nn.GroupNorm(8, cout)
  self.conv2 = nn.Conv2d(cout, cout, 3, {padding = 1})
  self.skip = cin ~= cout and nn.Conv2d(cin, cout, 1) or nn.Identity()
  self.cout = cout
end

function ResBlock:forward(x, temb)
  local h = self.conv1(ai.silu(self.norm1(x))) + self.temb(temb):view(-1, self.cout, 1, 1)
  h = self.conv2(ai.silu(self.norm2(h)))
  return h + self.skip(x)
end

local Attention = nn.Module:extend("Attention")
M.Attention = Attention

function Attention:init(c)
  self.norm = nn.GroupNorm(8, c)
  self.qkv = nn.Conv2d(c, 3 * c, 1)
  self.out = nn.Conv2d(c, c, 1)
end

function Attention:forward(x)
  local n, c, h, w = table.unpack(x.shape)
  local qkv = self.qkv(self.norm(x)):view(n, 3, c, h * w):transpose(3, 4) -- n, 3, hw, c
  local o = F.scaled_dot_product_attention(qkv:select(2, 1), qkv:select(2, 2), qkv:select(2, 3))
  return x + self.out(o:transpose(2, 3):reshape(n, c, h, w))
end

local UNet = nn.Module:extend("UNet")
M.UNet = UNet

--- UNet{ch=32, mults={1, 2}, in_channels=1, classes=0}: one ResBlock per level, a stride-2 conv
-- between levels, ResBlock-Attention-ResBlock at the bottom, and nearest upsampling with skip
-- concatenation on the way up. The defaults give the reference model (522,145 parameters).
-- classes = n > 0 makes it class-conditional: net(x, t, labels) with labels 1..n, and label n + 1
-- as "no class" (its null_label, for classifier-free guidance); a learned embedding of the label
-- is added to the timestep embedding.
function UNet:init(opts)
  opts = check_opts("UNet", opts, {ch = true, mults = true, in_channels = true, classes = true})
  local ch, mults, cin = opts.ch or 32, opts.mults or {1, 2}, opts.in_channels or 1
  self.tdim = 128
  self.time_mlp = nn.Sequential(nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 128))
  local classes = util.int("UNet", "classes", opts.classes or 0, 0)
  if classes > 0 then
    self.label_emb = nn.Embedding(classes + 1, 128)
    self.classes = classes
    self.null_label = classes + 1
  end
  self.inc = nn.Conv2d(cin, ch, 3, {padding = 1})
  self.enc, self.down, self.dec = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
  local widths, c = {}, ch
  for l, m in ipairs(mults) do
    widths[l] = ch * m
    self.enc:append(ResBlock(c, widths[l]))
    self.down:append(nn.Conv2d(widths[l], widths[l], 3, {stride = 2, padding = 1}))
    c = widths[l]
  end
  self.mid1, self.attn, self.mid2 = ResBlock(c, c), Attention(c), ResBlock(c, c)
  for l = #mults, 1, -1 do
    self.dec:append(ResBlock(c + widths[l], widths[l]))
    c = widths[l]
  end
  self.out = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, cin, 3, {padding = 1}))
  self.levels = #mults
end

function UNet:forward(x, t, labels)
  local temb = self.time_mlp(M.timestep_embedding(t, 128))
  if self.label_emb then
    if labels == nil then util.error("UNet: a class-conditional UNet needs labels (1.." .. self.null_label .. ")", 2) end
    temb = temb + self.label_emb(labels)
  elseif labels ~= nil then
    util.error("UNet: labels given to an unconditional UNet (make it with classes = n)", 2)
  end
  local h, skips = self.inc(x), {}
  for l = 1, self.levels do
    h = self.enc[l](h, temb)
    skips[l] = h
    h = self.down[l](h)
  end
  h = self.mid2(self.attn(self.mid1(h, temb)), temb)
  for k = 1, self.levels do
    local skip = skips[self.levels + 1 - k]
    h = self.dec[k](ai.cat({F.upsample(h, {scale_factor = 2}), skip}, 2), temb)
  end
  return self.out(h)
end

---------------------------------------------------------------------- classifier

local Classifier = nn.Module:extend("Classifier")
M.Classifier = Classifier

--- A small VGG-style CNN for 1x28x28 images; features(x) gives the 256-d penultimate layer
-- that eval_fd uses in place of Inception.
function Classifier:init(opts)
  opts = check_opts("Classifier", opts, {width = true, dropout = true, classes = true})
  local w = opts.width or 32
  local function block(cin, cout)
    return {nn.Conv2d(cin, cout, 3, {padding = 1}), nn.BatchNorm2d(cout), nn.ReLU()}
  end
  local layers = {}
  for _, spec in ipairs({{1, w}, {w, w}, "pool", {w, 2 * w}, {2 * w, 2 * w}, "pool"}) do
    if spec == "pool" then layers[#layers + 1] = nn.MaxPool2d(2)
    else for _, m in ipairs(block(spec[1], spec[2])) do layers[#layers + 1] = m end end
  end
  self.body = nn.Sequential(table.unpack(layers))
  self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * w * 7 * 7, 256), nn.BatchNorm1d(256), nn.ReLU())
  self.drop = nn.Dropout(opts.dropout or 0.3)
  self.fc = nn.Linear(256, opts.classes or 10)
end

function Classifier:features(x) return self.head(self.body(x)) end
function Classifier:forward(x) return self.fc(self.drop(self:features(x))) end

---------------------------------------------------------------------- style transfer

-- VGG-19's convolution layers up to conv5_1, with torchvision's indices in `features`.
local VGG_CFG = {64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512}
M.VGG_LAYER_NAMES = {
  "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
  "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
  "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
  "conv5_1", "relu5_1"}

--- VGG-19 features as torchvision names them (features.0.weight, ...), up to relu5_1, with
-- average pooling (better for style transfer, as Gatys et al.). upto = "relu4_1" stops there.
function M.vgg19_features(opts)
  opts = check_opts("models.vgg19_features", opts, {upto = true, max_pool = true})
  local upto = opts.upto or "relu5_1"
  local layers, c = {}, 3
  local names = M.VGG_LAYER_NAMES
  local known = false
  for _, n in ipairs(names) do known = known or n == upto end
  if not known then
    util.error(("models.vgg19_features: upto must be a layer name (%s ... %s), got %s"):format(names[1], names[#names],
      tostring(upto)), 2)
  end
  for _, v in ipairs(VGG_CFG) do
    if v == "M" then
      layers[#layers + 1] = opts.max_pool and nn.MaxPool2d(2) or nn.AvgPool2d(2)
    else
      layers[#layers + 1] = nn.Conv2d(c, v, 3, {padding = 1})
      layers[#layers + 1] = nn.ReLU()
      c = v
    end
    if names[#layers] == upto then break end
  end
  local features = nn.Sequential(table.unpack(layers))
  local net = nn.Sequential()
  net.features = features
  return net
end

--- A fixed random-weight multi-scale CNN (Ustyuzhaninov et al., ICLR 2017: random shallow
-- networks synthesise textures): parallel 3x3..11x11 convolutions with ReLU at full and half
-- resolution. Feature layers are named "scale<k>".
function M.random_texture_net(opts)
  opts = check_opts("models.random_texture_net", opts, {seed = true, width = true, sizes = true})
  local seed, width = opts.seed or 1234, opts.width or 64
  local state = ai.get_rng_state()
  ai.manual_seed(seed)
  local net = nn.Module()
  local sizes = opts.sizes or {3, 5, 7, 11}
  net.convs = nn.ModuleList()
  for _, k in ipairs(sizes) do
    local conv = nn.Conv2d(3, width, k, {padding = k // 2})
    ai.no_grad(function()
      conv.weight:normal_(0, math.sqrt(2 / (3 * k * k)))
      conv.bias:zero_()
    end)
    net.convs:append(conv)
  end
  ai.set_rng_state(state)
  for _, p in ipairs(net:parameters()) do p:requires_grad_(false) end
  net.sizes = sizes
  return net
end

return util.strict_args(M, "models.")
