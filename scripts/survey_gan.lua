-- scripts/survey_gan.lua: the GAN of the survey this project follows (shared/seeds, section 5.2.1),
-- ported line by line from its PyTorch code: a Sigmoid discriminator trained with nn.BCELoss,
-- Adam 2e-4 with PyTorch's default betas, batch 32. The one change: MNIST is downloaded there,
-- and this machine has no network, so Fashion-MNIST (Debian's dataset-fashion-mnist) stands in.
--   ./aiart-lua scripts/survey_gan.lua [epochs=100] [steps=0] [out=runs/survey-gan]
-- steps=N stops after N batches (the tests run 3,000); the grid of the last epoch is written to
-- out/samples.png.
local ai = require "aiart"
local nn, optim = ai.nn, ai.optim

local cfg = ai.config.parse(arg, {
  epochs = {100, "passes over the data (the survey's value)", "integer >= 1"},
  steps = {0, "stop after this many batches (0: no limit)", "integer >= 0"},
  seed = {1, "random seed", "integer >= 0"},
  out = {"runs/survey-gan", "output folder", "string"},
}, {description = "The survey's GAN (section 5.2.1), ported line by line."})
ai.manual_seed(cfg.seed)

-- 超参数设置 (hyper-parameters)
local input_dim = 100
local output_dim = 784
local batch_size = 32
local epochs = cfg.epochs
local lr = 0.0002

-- 定义生成器 (the generator)
local Generator = nn.Module:extend("Generator")
function Generator:init(input_dim_, output_dim_)
  self.model = nn.Sequential(
    nn.Linear(input_dim_, 128),
    nn.LeakyReLU(0.2),
    nn.Linear(128, 256),
    nn.BatchNorm1d(256),
    nn.LeakyReLU(0.2),
    nn.Linear(256, 512),
    nn.BatchNorm1d(512),
    nn.LeakyReLU(0.2),
    nn.Linear(512, output_dim_),
    nn.Tanh()
  )
end
function Generator:forward(z)
  return self.model(z)
end

-- 定义判别器 (the discriminator)
local Discriminator = nn.Module:extend("Discriminator")
function Discriminator:init(input_dim_)
  self.model = nn.Sequential(
    nn.Linear(input_dim_, 512),
    nn.LeakyReLU(0.2),
    nn.Linear(512, 256),
    nn.LeakyReLU(0.2),
    nn.Linear(256, 1),
    nn.Sigmoid()
  )
end
function Discriminator:forward(img)
  return self.model(img)
end

-- 加载数据集 (the data: ToTensor + Normalize([0.5], [0.5]) is the dataset's default, [-1, 1])
local dataset = ai.data.fashion_mnist{split = "train"}
local dataloader = ai.data.DataLoader(dataset, {batch_size = batch_size, shuffle = true})

-- 初始化生成器和判别器 (the models)
local generator = Generator(input_dim, output_dim)
local discriminator = Discriminator(output_dim)

-- 定义优化器和损失函数 (optimizers and loss)
local g_optimizer = optim.Adam(generator:parameters(), {lr = lr})
local d_optimizer = optim.Adam(discriminator:parameters(), {lr = lr})
local criterion = nn.BCELoss()

-- 训练过程 (training)
local step, d_loss, g_loss = 0, nil, nil
for epoch = 1, epochs do
  for real_images in dataloader:iter() do
    real_images = real_images:view(-1, output_dim)
    -- 训练判别器 (the discriminator's step)
    d_optimizer:zero_grad()
    local real_labels = ai.ones(real_images:size(1), 1)
    local fake_labels = ai.zeros(real_images:size(1), 1)
    local real_output = discriminator(real_images)
    local d_real_loss = criterion(real_output, real_labels)
    local z = ai.randn(real_images:size(1), input_dim)
    local fake_images = generator(z)
    local fake_output = discriminator(fake_images:detach())
    local d_fake_loss = criterion(fake_output, fake_labels)
    d_loss = d_real_loss + d_fake_loss
    d_loss:backward()
    d_optimizer:step()
    -- 训练生成器 (the generator's step)
    g_optimizer:zero_grad()
    fake_output = discriminator(fake_images)
    g_loss = criterion(fake_output, real_labels)
    g_loss:backward()
    g_optimizer:step()
    step = step + 1
    if cfg.steps > 0 and step >= cfg.steps then break end
  end
  print(("Epoch [%d/%d], D_loss: %s, G_loss: %s"):format(epoch, epochs, d_loss:item(), g_loss:item()))
  if cfg.steps > 0 and step >= cfg.steps then break end
end

os.execute("mkdir -p '" .. cfg.out:gsub("'", "'\\''") .. "'")
generator:eval()
local samples = ai.no_grad(function() return generator(ai.randn(64, input_dim)) end)
ai.image.save(cfg.out .. "/samples.png", ai.image.grid(samples:view(64, 1, 28, 28), {nrow = 8, normalize = true, range = {-1, 1}}))
-- the weights stay finite: a NaN anywhere would have made every sample black
local finite = true
for _, p in ipairs(generator:parameters()) do
  if (p * 0):sum():item() ~= 0 then finite = false end -- NaN and inf times 0 are NaN
end
print(("steps %d, D_loss %s, G_loss %s, weights %s, samples in %s/samples.png"):format(
  step, d_loss:item(), g_loss:item(), finite and "finite" or "NOT FINITE", cfg.out))
