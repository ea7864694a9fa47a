-- tests/test_data.lua: ai.data: IDX and Fashion-MNIST loading, datasets and their composition,
-- transforms, the DataLoader (C prefetcher and Lua path): reproducible shuffling, resuming from
-- state_dict, batches equal between the two paths, deterministic augmentations, drop_last,
-- clean shutdown, and the error messages.
-- Run alone: ./aiart-lua tests/run.lua test_data
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"

local test, eq, near, ok, expect_error = T.test, T.eq, T.near, T.ok, T.expect_error
local data = ai.data
local tf = data.transforms

local FMNIST = os.getenv("FASHION_MNIST") or "/usr/share/datasets/fashion-mnist"
local have_fmnist = io.open(FMNIST .. "/train-images-idx3-ubyte.gz", "rb")
if have_fmnist then have_fmnist:close() end

-- max |a - b| of two tensors
local function maxdiff(a, b) return (a:double() - b:double()):abs():max():item() end

-- A small synthetic image dataset: n u8 images c x h x w with labels 1..k
local function synthetic(n, c, h, w)
  ai.manual_seed(123)
  local x = ai.randint(0, 255, n, c, h, w, {dtype = "u8"})
  local y = ai.randint(1, 10, n)
  return x, y
end

-- all batches of one epoch
local function epoch_batches(loader)
  local xs, ys = {}, {}
  for x, y in loader:iter() do xs[#xs + 1] = x; ys[#ys + 1] = y end
  return xs, ys
end

-- ------------------------------------------------------------------ IDX and Fashion-MNIST

test("IDX files: write_idx / read_idx round trip and a MNIST-like dataset from root", function()
  local dir = T.tmpdir()
  local imgs = ai.randint(0, 255, 7, 5, 4, {dtype = "u8"})
  local labels = ai.tensor({0, 1, 2, 3, 4, 5, 9}, {dtype = "u8"})
  ai.io.write_idx(dir .. "/train-images-idx3-ubyte.gz", imgs)
  ai.io.write_idx(dir .. "/train-labels-idx1-ubyte", labels)
  local back = ai.io.read_idx(dir .. "/train-images-idx3-ubyte.gz")
  eq(back.shape, {7, 5, 4})
  eq(back.dtype, "u8")
  eq(maxdiff(back, imgs), 0)
  local ds = data.mnist{root = dir, transform = false}
  eq(#ds, 7)
  local x, y = ds:get(7)
  eq(x.shape, {1, 5, 4})
  eq(x.dtype, "f32")
  eq(y, 10) -- labels are 1-based
  near(x, imgs[7]:float() / 255)
  eq(ds.targets.dtype, "i64")
  -- the default transform maps to [-1, 1]
  local d2 = data.mnist{root = dir}
  near(d2:get(3), imgs[3]:float() / 255 * 2 - 1, 1e-6)
end)

test("missing dataset files: the error names the Debian package", function()
  local dir = T.tmpdir()
  local err = expect_error("dataset-fashion-mnist", data.fashion_mnist, {root = dir})
  ok(err:find("train-images-idx3-ubyte", 1, true), err)
  ok(err:find(dir, 1, true), err)
  expect_error("t10k-images", data.fashion_mnist, {root = dir, split = "test"})
  expect_error("split must be 'train' or 'test'", data.fashion_mnist, {split = "val"})
  expect_error("unknown option 'rot'", data.fashion_mnist, {rot = dir})
  expect_error("pass root=", data.mnist, {root = dir})
end)

if have_fmnist then
  test("fashion_mnist: shapes, labels, range, speed (informational)", function()
    local t0 = os.clock()
    local ds = data.fashion_mnist{split = "train", root = FMNIST}
    local secs = os.clock() - t0
    eq(#ds, 60000)
    eq(ds.data.shape, {60000, 1, 28, 28})
    eq(ds.data.dtype, "u8")
    eq(ds.targets.shape, {60000})
    eq(ds.targets:min():item(), 1)
    eq(ds.targets:max():item(), 10)
    eq(#ds.classes, 10)
    local x, y = ds:get(1)
    eq(x.shape, {1, 28, 28})
    eq(x.dtype, "f32")
    eq(math.type(y), "integer")
    ok(x:min():item() >= -1 and x:max():item() <= 1)
    eq(x:min():item(), -1.0)
    local test_ds = data.fashion_mnist{split = "test", root = FMNIST}
    eq(#test_ds, 10000)
    io.write(("    (fashion_mnist train loaded in %.2fs CPU)\n"):format(secs))
    -- a whole epoch through the C loader
    local L = data.DataLoader(ds, {batch_size = 64, shuffle = true, seed = 1})
    ok(L.fast)
    local t1, n, nb = os.clock(), 0, 0
    for xb, yb in L:iter() do
      n = n + xb.shape[1]
      nb = nb + 1
      if nb == 1 then eq(xb.shape, {64, 1, 28, 28}); eq(yb.shape, {64}); eq(yb.dtype, "i64") end
    end
    eq(n, 60000)
    eq(nb, 938)
    io.write(("    (one epoch of 60000 images in %.2fs CPU)\n"):format(os.clock() - t1))
  end)
end

-- ------------------------------------------------------------------ datasets

test("TensorDataset, Subset, ConcatDataset, map, random_split", function()
  local x = ai.arange(0, 20):view(10, 2)
  local y = ai.arange(1, 11)
  local ds = data.TensorDataset(x, y)
  eq(#ds, 10)
  local a, b = ds:get(3)
  eq(a:tolist(), {4, 5})
  eq(b:item(), 3)
  expect_error("index 11 out of range 1..10", ds.get, ds, 11)
  expect_error("index must be an integer", ds.get, ds, 1.5)
  local sub = data.Subset(ds, {10, 1, 5})
  eq(#sub, 3)
  eq(select(2, sub:get(1)):item(), 10)
  eq(select(2, sub:get(3)):item(), 5)
  expect_error("out of range", data.Subset, ds, {0})
  local cat = data.ConcatDataset{ds, sub}
  eq(#cat, 13)
  eq(select(2, cat:get(10)):item(), 10)
  eq(select(2, cat:get(11)):item(), 10)
  eq(select(2, cat:get(13)):item(), 5)
  local m = ds:map(function(xx, yy) return xx * 2, yy:item() + 100 end)
  local mx, my = m:get(2)
  eq(mx:tolist(), {4, 6})
  eq(my, 102)
  local parts = data.random_split(ds, {7, 3}, {seed = 5})
  eq(#parts[1], 7)
  eq(#parts[2], 3)
  local seen = {}
  for _, p in ipairs(parts) do
    for i = 1, #p do
      local _, yy = p:get(i)
      ok(not seen[yy:item()], "a sample in two parts")
      seen[yy:item()] = true
    end
  end
  local again = data.random_split(ds, {7, 3}, {seed = 5})
  eq(again[1].indices, parts[1].indices)
  local f = data.random_split(ds, {0.5, 0.5}, {seed = 1})
  eq(#f[1] + #f[2], 10)
  expect_error("lengths sum to 9", data.random_split, ds, {6, 3})
end)

test("ImageFolder: classes from folders, resize and center crop, preload", function()
  local dir = T.tmpdir()
  os.execute("mkdir -p '" .. dir .. "/cats' '" .. dir .. "/dogs/sub'")
  ai.manual_seed(3)
  local imgs = {
    {dir .. "/cats/a.png", ai.rand(3, 8, 12)},
    {dir .. "/cats/b.png", ai.rand(1, 10, 10)},
    {dir .. "/dogs/c.png", ai.rand(4, 6, 6)},
    {dir .. "/dogs/sub/d.png", ai.rand(3, 20, 16)},
  }
  for _, e in ipairs(imgs) do ai.image.save(e[1], e[2]) end
  local ds = data.ImageFolder{root = dir, size = 8, transform = false}
  eq(#ds, 4)
  eq(ds.classes, {"cats", "dogs"})
  for i = 1, 4 do
    local x, y = ds:get(i)
    eq(x.shape, {3, 8, 8})
    eq(y, i <= 2 and 1 or 2)
  end
  -- an 8-bit PNG saved and loaded keeps its values (1/255 steps); a 12-wide image is scaled
  local gray = data.ImageFolder{root = dir, channels = 1, transform = false}
  local g = gray:get(2)
  eq(g.shape, {1, 10, 10})
  near(g, (imgs[2][2] * 255):round() / 255, 1e-6)
  local pre = data.ImageFolder{root = dir, size = {6, 6}, preload = true}
  eq(pre.data.shape, {4, 3, 6, 6})
  local L = data.DataLoader(pre, {batch_size = 2})
  ok(L.fast)
  local xb, yb = L:iter()()
  eq(xb.shape, {2, 3, 6, 6})
  eq(yb:tolist(), {1, 1})
  expect_error("does not exist", data.ImageFolder, {root = dir .. "/dogs/sub/none"})
  local empty = T.tmpdir()
  expect_error("no PNG files", data.ImageFolder, {root = empty})
end)

-- ------------------------------------------------------------------ transforms

test("transforms on single images", function()
  local img = ai.arange(1, 13):float():view(1, 3, 4)
  -- a flip with p = 1 mirrors the last dim
  eq(tf.random_horizontal_flip(1)(img)[1][1]:tolist(), {4, 3, 2, 1})
  eq(tf.random_horizontal_flip(0)(img)[1][1]:tolist(), {1, 2, 3, 4})
  -- center crop, and a larger one pads with zeros
  eq(tf.center_crop({1, 2})(img):tolist(), {{{6, 7}}})
  local big = tf.center_crop({5, 6})(img)
  eq(big.shape, {1, 5, 6})
  eq(big:sum():item(), img:sum():item())
  eq(big[1][2]:tolist(), {0, 1, 2, 3, 4, 0})
  -- normalize per channel
  local rgb = ai.ones(3, 2, 2)
  local n = tf.normalize({0.5, 0, 1}, {0.5, 2, 1})(rgb)
  eq({n[1][1][1]:item(), n[2][1][1]:item(), n[3][1][1]:item()}, {1.0, 0.5, 0.0})
  expect_error("3 mean/std values for an image of 1 channels", tf.normalize({1, 2, 3}, {1, 1, 1}), img)
  -- a random crop with padding keeps the size and the pixels it shows
  local rc = tf.random_crop(4, {padding = 2})
  for _ = 1, 5 do
    local out = rc(ai.ones(1, 4, 4))
    eq(out.shape, {1, 4, 4})
  end
  expect_error("larger than the padded", tf.random_crop(9, {padding = 1}), ai.ones(1, 4, 4))
  -- an affine shift moves content and zero-fills
  local s = tf.random_affine_shift(1)
  for _ = 1, 5 do
    local out = s(img)
    eq(out.shape, {1, 3, 4})
    ok(out:sum():item() <= img:sum():item())
  end
  -- H x W images keep their layout
  eq(tf.random_horizontal_flip(1)(ai.arange(1, 5):float():view(2, 2)):tolist(), {{2, 1}, {4, 3}})
  -- compose and resize
  local c = tf.compose{tf.resize({6, 8}), tf.center_crop(4)}
  eq(c(img).shape, {1, 4, 4})
  -- the same rng stream gives the same result
  local rng1, rng2 = data.sample_rng(7, 1, 3), data.sample_rng(7, 1, 3)
  local chain = tf.compose{tf.random_horizontal_flip(), tf.random_crop(3, {padding = 1}), tf.random_affine_shift(1)}
  local x = ai.rand(2, 5, 5)
  eq(maxdiff(chain(x, rng1), chain(x, rng2)), 0)
end)

test("counter-based draws: uniform in [0, 1), fixed values, independent of order of calls", function()
  local u = ai._loader.uniform
  local a = u(1, 2, 3, 0)
  ok(a >= 0 and a < 1)
  eq(u(1, 2, 3, 0), a)
  ok(u(1, 2, 3, 1) ~= a and u(1, 2, 4, 0) ~= a and u(1, 3, 3, 0) ~= a and u(2, 2, 3, 0) ~= a)
  local sum, n = 0, 2000
  for i = 0, n - 1 do sum = sum + u(42, 1, i, 0) end
  ok(math.abs(sum / n - 0.5) < 0.05, "mean of uniforms")
end)

-- ------------------------------------------------------------------ DataLoader

test("DataLoader: batches, #loader, drop_last, iteration forms", function()
  local x, y = synthetic(10, 1, 4, 4)
  local ds = data.TensorDataset(x, y)
  local L = data.DataLoader(ds, {batch_size = 4})
  eq(#L, 3)
  ok(L.fast)
  local xs, ys = epoch_batches(L)
  eq(#xs, 3)
  eq(xs[3].shape, {2, 1, 4, 4})
  eq(xs[1].dtype, "u8") -- no transform: raw rows
  eq(maxdiff(xs[2], x:narrow(1, 5, 4)), 0)
  eq(ys[3]:tolist(), y:narrow(1, 9, 2):tolist())
  local D = data.DataLoader(ds, {batch_size = 4, drop_last = true})
  eq(#D, 2)
  local dx = epoch_batches(D)
  eq(#dx, 2)
  -- for x, y in loader do
  local n = 0
  for bx, by in L do
    n = n + 1
    ok(bx and by)
  end
  eq(n, 3)
  -- break out early, then a new loop starts a new epoch
  for _ in L do break end
  n = 0
  for _ in L do n = n + 1 end
  eq(n, 3)
  -- a dataset without labels gives x only
  local only = data.DataLoader(data.TensorDataset(x), {batch_size = 5})
  local cnt = 0
  for bx, by in only:iter() do cnt = cnt + 1; eq(by, nil); eq(bx.shape[1], 5) end
  eq(cnt, 2)
  expect_error("batch_size must be a positive integer", data.DataLoader, ds, {batch_size = 0})
  expect_error("unknown option 'batchsize'", data.DataLoader, ds, {batchsize = 2})
  expect_error("expected a dataset", data.DataLoader, {}, {})
end)

test("DataLoader: shuffled order is reproducible with a seed and differs per epoch", function()
  local x = ai.arange(0, 100):view(100, 1)
  local ds = data.TensorDataset(x)
  local function orders(seed)
    local L = data.DataLoader(ds, {batch_size = 100, shuffle = true, seed = seed})
    local e1 = epoch_batches(L)[1]:view(-1):tolist()
    local e2 = epoch_batches(L)[1]:view(-1):tolist()
    return e1, e2
  end
  local a1, a2 = orders(7)
  local b1, b2 = orders(7)
  eq(a1, b1)
  eq(a2, b2)
  ok(not T.deep_eq(a1, a2), "epochs have different orders")
  local c1 = orders(8)
  ok(not T.deep_eq(a1, c1), "seeds give different orders")
  table.sort(a1)
  for i = 1, 100 do eq(a1[i], i - 1) end
  -- without a seed the loader draws one from the global generator
  ai.manual_seed(11)
  local L1 = data.DataLoader(ds, {batch_size = 100, shuffle = true})
  ai.manual_seed(11)
  local L2 = data.DataLoader(ds, {batch_size = 100, shuffle = true})
  eq(L1.seed, L2.seed)
  -- shuffling leaves the global generator alone
  ai.manual_seed(5)
  local r1 = ai.rand(3):tolist()
  ai.manual_seed(5)
  epoch_batches(L1)
  eq(ai.rand(3):tolist(), r1)
end)

test("DataLoader: C batches equal the Lua path, with augmentations", function()
  local x, y = synthetic(37, 3, 9, 11)
  local lists = {
    {},
    {tf.normalize({0.5, 0.4, 0.3}, {0.2, 0.3, 0.4})},
    {tf.random_horizontal_flip()},
    {tf.random_crop({7, 9}, {padding = 2}), tf.normalize(0.5, 0.5)},
    {tf.normalize(0.5, 0.5), tf.random_crop(8, {padding = 3})},
    {tf.random_affine_shift({2, 3}), tf.random_horizontal_flip(0.3), tf.center_crop({10, 6})},
    {tf.random_horizontal_flip(), tf.random_crop(9, {padding = 1}), tf.random_affine_shift(2),
     tf.normalize({0.1, 0.2, 0.3}, {1, 2, 3}), tf.center_crop(7)},
  }
  for li, list in ipairs(lists) do
    local ds = data.TensorDataset(x, y, {transform = list, divisor = 255})
    for _, shuffle in ipairs{false, true} do
      local opts = {batch_size = 8, shuffle = shuffle, seed = 99}
      local fast = data.DataLoader(ds, opts)
      opts.fast = false
      local slow = data.DataLoader(ds, opts)
      ok(fast.fast and not slow.fast)
      local fx, fy = epoch_batches(fast)
      local sx, sy = epoch_batches(slow)
      eq(#fx, #sx)
      for i = 1, #fx do
        eq(fx[i].shape, sx[i].shape)
        eq(fx[i].dtype, "f32")
        local d = maxdiff(fx[i], sx[i])
        ok(d <= 1e-6, ("list %d batch %d: C and Lua differ by %g"):format(li, i, d))
        eq(fy[i]:tolist(), sy[i]:tolist())
      end
    end
  end
  -- transforms given to the loader run after the dataset's own, in C too
  local ds = data.TensorDataset(x, y, {transform = tf.normalize(0.5, 0.5)})
  local opts = {batch_size = 16, shuffle = true, seed = 3, transform = {tf.random_crop(9, {padding = 2})}}
  local a = epoch_batches(data.DataLoader(ds, opts))
  opts.fast = false
  local b = epoch_batches(data.DataLoader(ds, opts))
  for i = 1, #a do ok(maxdiff(a[i], b[i]) <= 1e-6) end
  -- loader transforms on a dataset without conversion see f32 raw values in both paths
  local raw = data.TensorDataset(x, y)
  local ro = {batch_size = 16, shuffle = true, seed = 3, transform = {tf.random_horizontal_flip(), tf.random_crop(9, {padding = 1})}}
  local ra = epoch_batches(data.DataLoader(raw, ro))
  ro.fast = false
  local rb = epoch_batches(data.DataLoader(raw, ro))
  for i = 1, #ra do eq(ra[i].dtype, "f32"); eq(rb[i].dtype, "f32"); ok(maxdiff(ra[i], rb[i]) == 0) end
  ok(ra[1]:max():item() > 1, "not divided by 255")
  -- a Subset (from random_split) still goes through C, in the same order as Lua
  local parts = data.random_split(ds, {30, 7}, {seed = 1})
  local f = data.DataLoader(parts[1], {batch_size = 8, shuffle = true, seed = 4})
  local s = data.DataLoader(parts[1], {batch_size = 8, shuffle = true, seed = 4, fast = false})
  ok(f.fast)
  local fa, fb = epoch_batches(f)
  local sa, sb = epoch_batches(s)
  for i = 1, #fa do ok(maxdiff(fa[i], sa[i]) <= 1e-6); eq(fb[i]:tolist(), sb[i]:tolist()) end
end)

test("DataLoader: augmentations are deterministic across runs and prefetch settings", function()
  local x, y = synthetic(50, 1, 12, 12)
  local ds = data.TensorDataset(x, y, {transform = {tf.random_horizontal_flip(), tf.random_crop(12, {padding = 3}),
                                                     tf.random_affine_shift(2)}})
  local ref = epoch_batches(data.DataLoader(ds, {batch_size = 7, shuffle = true, seed = 21, prefetch = 0}))
  for _, pf in ipairs{true, 1, 2, 16} do
    local got = epoch_batches(data.DataLoader(ds, {batch_size = 7, shuffle = true, seed = 21, prefetch = pf}))
    eq(#got, #ref)
    for i = 1, #ref do eq(maxdiff(got[i], ref[i]), 0) end
  end
  -- zero-copy batches (wrapped loader buffers) are the same too
  local zc = epoch_batches(data.DataLoader(ds, {batch_size = 7, shuffle = true, seed = 21, copy = false}))
  for i = 1, #ref do eq(maxdiff(zc[i], ref[i]), 0) end
  -- another seed changes the augmentation
  local other = epoch_batches(data.DataLoader(ds, {batch_size = 7, shuffle = true, seed = 22}))
  ok(maxdiff(other[1], ref[1]) > 0)
end)

test("DataLoader: state_dict resumes exactly where it stopped", function()
  local x, y = synthetic(45, 1, 6, 6)
  local ds = data.TensorDataset(x, y, {transform = {tf.random_crop(6, {padding = 1}), tf.random_horizontal_flip()}})
  for _, fast in ipairs{true, false} do
    local opts = {batch_size = 4, shuffle = true, seed = 5, fast = fast}
    -- the reference: two full epochs
    local ref = data.DataLoader(ds, opts)
    local all = {}
    for _ = 1, 2 do
      for bx, by in ref:iter() do all[#all + 1] = {bx, by} end
    end
    eq(#all, 2 * #ref)
    -- stop in the middle of epoch 2 (after 5 batches), save, resume in a new loader
    local L = data.DataLoader(ds, opts)
    local k = 0
    for _ in L:iter() do k = k + 1 end
    for _ in L:iter() do
      k = k + 1
      if k == #L + 5 then break end
    end
    local sd = L:state_dict()
    eq(sd.epoch, 2)
    eq(sd.position, 5)
    local R = data.DataLoader(ds, {batch_size = 4, shuffle = true, seed = 999, fast = fast})
    R:load_state_dict(sd)
    eq(R.seed, 5)
    for bx, by in R:iter() do
      k = k + 1
      eq(maxdiff(bx, all[k][1]), 0)
      eq(by:tolist(), all[k][2]:tolist())
    end
    eq(k, 2 * #L)
    -- a state taken at the end of an epoch starts the next one
    local E = data.DataLoader(ds, opts)
    E:load_state_dict(ref:state_dict())
    local first = E:iter()()
    local ref3 = ref:iter()()
    eq(maxdiff(first, ref3), 0)
  end
  local L = data.DataLoader(ds, {batch_size = 4})
  expect_error("dataset of 10 samples", L.load_state_dict, L, {epoch = 1, position = 0, seed = 1, samples = 10})
  expect_error("'position' must be an integer", L.load_state_dict, L, {epoch = 1, seed = 1})
end)

test("DataLoader: Lua path for mapped datasets and custom collate", function()
  local x, y = synthetic(9, 1, 3, 3)
  local ds = data.TensorDataset(x, y):map(function(a, b) return a:float(), b:item() * 10 end)
  local L = data.DataLoader(ds, {batch_size = 4})
  ok(not L.fast)
  local bx, by = L:iter()()
  eq(bx.shape, {4, 1, 3, 3})
  eq(bx.dtype, "f32")
  eq(by.dtype, "i64")
  eq(by:tolist(), {y[1]:item() * 10, y[2]:item() * 10, y[3]:item() * 10, y[4]:item() * 10})
  local C = data.DataLoader(data.TensorDataset(x, y), {batch_size = 3, collate = function(samples)
    return #samples, samples[1][2]
  end})
  ok(not C.fast)
  local n, first = C:iter()()
  eq(n, 3)
  eq(first:item(), y[1]:item())
  expect_error("fast=true but", data.DataLoader, ds, {fast = true})
  -- collate of numbers, booleans and tables
  local a, b, c = data.collate{{1, true, {u = 1.5}}, {2, false, {u = 2.5}}}
  eq(a.dtype, "i64")
  eq(b:tolist(), {1, 0})
  eq(c.u:tolist(), {1.5, 2.5})
end)

test("loader userdata: close, early break, errors, garbage collection", function()
  local K = ai._loader
  local x, y = synthetic(20, 1, 4, 4)
  local ld = K.new(x, y, ai.arange(0, 20), {batch_size = 6, prefetch = 2})
  eq(#ld, 4)
  local bx = ld:next()
  eq(bx.shape, {6, 1, 4, 4})
  ld:close()
  ld:close() -- twice is fine
  expect_error("used after close", ld.next, ld)
  -- an abandoned loader with a running thread is joined by the collector
  for _ = 1, 20 do
    local l = K.new(x, y, ai.arange(0, 20), {batch_size = 1, prefetch = 4})
    l:next()
  end
  collectgarbage()
  collectgarbage()
  -- a loop left by an error closes its loader (the 4th value of iter is to-be-closed)
  local L = data.DataLoader(data.TensorDataset(x, y), {batch_size = 2})
  local okk = pcall(function() for _ in L:iter() do error("boom") end end)
  ok(not okk)
  expect_error("is not a sample index", K.new, x, y, ai.tensor({0, 20}, {dtype = "i64"}), {batch_size = 1})
  expect_error("batch_size must be at least 1", K.new, x, y, ai.arange(0, 20), {})
  expect_error("larger than the padded", K.new, x, y, ai.arange(0, 20),
    {batch_size = 2, convert = true, augs = {{kind = "crop", size = 9, padding = 1}}})
  expect_error("unknown augmentation kind 'blur'", K.new, x, y, ai.arange(0, 20),
    {batch_size = 2, convert = true, augs = {{kind = "blur"}}})
  expect_error("order must be a 1-D i64 tensor", K.new, x, y, ai.arange(0, 20):float(), {batch_size = 2})
  -- zero-copy buffers outlive their loader
  local z = K.new(x, y, ai.arange(0, 20), {batch_size = 5, copy = false, convert = true})
  local zb = z:next()
  z:close()
  collectgarbage()
  near(zb, x:narrow(1, 1, 5):float() / 255)
end)
