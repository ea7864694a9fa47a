-- scripts/train_classifier.lua: a CNN for Fashion-MNIST with augmentation and a one-cycle
-- learning-rate schedule; prints per-class accuracy and the confusion matrix. Its checkpoint
-- is the feature extractor of eval_fd.lua. `--help` lists the options.
local ai = require "aiart"
local models = require "aiart.models"
local experiment = require "aiart.experiment"

local cfg = experiment.options(arg, {
  epochs = {12, "training epochs", "integer >= 1"},
  batch_size = {128, "batch size", "integer >= 1"},
  lr = {0.1, "peak learning rate of the one-cycle schedule (SGD, Nesterov momentum 0.9)", "number > 0"},
  weight_decay = {5e-4, "weight decay", "number >= 0"},
  width = {32, "channels of the first convolutions", "integer >= 1"},
  limit = {0, "use only the first N training images (0: all), for quick runs; at least batch_size", "integer >= 0"},
  test_limit = {0, "evaluate on the first N test images (0: all 10,000)", "integer >= 0"},
}, {
  description = "Train the Fashion-MNIST classifier used by eval_fd.lua.",
  common = {out = {"runs/classifier", "output folder (classifier.safetensors, metrics.jsonl, loss.png)"}, "seed",
            "threads", "resume", "ckpt_minutes"},
  check = function(c)
    -- drop_last: fewer images than a batch leave the one-cycle schedule no step
    if c.limit > 0 and c.limit < c.batch_size then
      return ("limit=%d leaves no full batch of batch_size=%d"):format(c.limit, c.batch_size)
    end
  end,
})

-- the lock, resume's options (epochs are fixed: the one-cycle schedule spans them), signals
local run = experiment.start(cfg, {apply = {"lr"}, free = {"test_limit"}, fixed = {"epochs"}})
if cfg.threads > 0 then ai.set_num_threads(cfg.threads) end
ai.manual_seed(cfg.seed)

local T = ai.data.transforms
local train = ai.data.fashion_mnist{split = "train",
  transform = T.compose{T.random_crop(28, {padding = 2}), T.random_horizontal_flip(0.5), T.normalize(0.5, 0.5)}}
local test = ai.data.fashion_mnist{split = "test"}
if cfg.limit > 0 then train = ai.data.Subset(train, ai.range(1, math.min(cfg.limit, #train))) end
if cfg.test_limit > 0 then test = ai.data.Subset(test, ai.range(1, math.min(cfg.test_limit, #test))) end
local loader = ai.data.DataLoader(train, {batch_size = cfg.batch_size, shuffle = true, drop_last = true, seed = cfg.seed})
local test_loader = ai.data.DataLoader(test, {batch_size = 500})

local net = models.Classifier{width = cfg.width}
local opt = ai.optim.SGD(net:parameters(), {lr = cfg.lr, momentum = 0.9, nesterov = true, weight_decay = cfg.weight_decay})
local sched = ai.sched.OneCycleLR(opt, {max_lr = cfg.lr, total_steps = cfg.epochs * #loader})

local function evaluate()
  local confusion = {}
  for i = 1, 10 do confusion[i] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0} end
  local correct, total = 0, 0
  ai.no_grad(function()
    net:eval()
    for x, y in test_loader:iter() do
      local _, pred = net(x):max(2, {keepdim = false})
      local p, t = pred:tolist(), y:tolist()
      for i = 1, #t do
        confusion[t[i]][p[i]] = confusion[t[i]][p[i]] + 1
        if p[i] == t[i] then correct = correct + 1 end
      end
      total = total + #t
    end
    net:train()
  end)
  return correct / total, confusion
end

-- The state between steps: the step, and the sums of the epoch's training losses so far.
local step, sum, n = 0, 0, 0
local last_ckpt = run.ckpt_path
local function checkpoint()
  run:save(last_ckpt, {model = net, optimizer = opt, scheduler = sched, loader = loader, rng = true, step = step,
                       config = cfg, extra = {loss_sum = sum, loss_n = n}})
end
if cfg.resume then
  local info = ai.checkpoint.load(last_ckpt, {model = net, optimizer = opt, scheduler = sched, loader = loader,
                                              rng = true})
  step, sum, n = info.step, info.extra.loss_sum, info.extra.loss_n
  run:resumed(step, {optimizers = {opt}, scheduler = sched})
end
experiment.prepare(cfg.out, cfg)
local metrics = experiment.metrics(cfg.out .. "/metrics.jsonl", step, cfg.resume)

-- One bar for the whole run, so that its ETA is the run's.
local per_epoch, total = #loader, cfg.epochs * #loader
local bar = ai.progress.bar{total = total, desc = "classifier", start = step}
local acc, confusion
while step < total do
  -- the epoch's remaining batches (all of them, or those after a resumed position)
  for x, y in loader:iter() do
    local loss = ai.cross_entropy(net(x), y)
    opt:zero_grad()
    loss:backward()
    opt:step()
    sched:step()
    step = step + 1
    local l = loss:item()
    sum, n = sum + l, n + 1
    bar:update(1, {epoch = loader:epoch(), loss = l})
    if step % 20 == 0 then
      metrics:write{step = step, epoch = loader:epoch(), loss = l, lr = sched:get_last_lr()[1], time = run:elapsed()}
    end
    -- a signal stops between steps, not at an epoch's end, whose evaluation comes first
    if step % per_epoch ~= 0 and (run:interrupted() or run:checkpoint_due()) then
      checkpoint()
      if run.signal then break end
    end
  end
  if run.signal then break end
  local epoch = step // per_epoch
  acc, confusion = evaluate()
  metrics:write{step = step, epoch = epoch, train_loss = sum / n, test_acc = acc, time = run:elapsed()}
  bar:write(("epoch %d: train loss %.4f, test accuracy %.4f"):format(epoch, sum / n, acc))
  sum, n = 0, 0
  if run:interrupted() or run:checkpoint_due() then checkpoint() end
  if run.signal then break end
end
bar:close()
metrics:close()
if not run.signal then checkpoint() end
run:stop_training(step) -- after SIGINT or SIGTERM: where the checkpoint is, how to resume, exit 130/143

if not acc then acc, confusion = evaluate() end -- resumed after the last epoch
local classes = test.classes or (test.dataset and test.dataset.classes) or {}
print(("\ntest accuracy: %.4f\n\nper-class accuracy:"):format(acc))
for i = 1, 10 do
  local row_total = 0
  for j = 1, 10 do row_total = row_total + confusion[i][j] end
  print(("  %2d %-12s %.4f"):format(i, classes[i] or "", row_total > 0 and confusion[i][i] / row_total or 0))
end
print("\nconfusion matrix (rows: true class, columns: predicted):")
local header = {"      "}
for j = 1, 10 do header[#header + 1] = ("%5d"):format(j) end
print(table.concat(header))
for i = 1, 10 do
  local row = {("  %2d  "):format(i)}
  for j = 1, 10 do row[#row + 1] = ("%5d"):format(confusion[i][j]) end
  print(table.concat(row))
end
local path = cfg.out .. "/classifier.safetensors"
ai.checkpoint.save(path, {model = net, config = cfg, extra = {test_acc = acc}})
ai.plot.curves(cfg.out .. "/loss.png", ai.metrics.read(cfg.out .. "/metrics.jsonl"), {keys = {"loss"}, ylabel = "loss"})
print(("\nsaved %s"):format(path))
run:close()
