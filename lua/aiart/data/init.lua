--[[ aiart.data (ai.data): datasets, transforms and the DataLoader.

Datasets answer #ds and ds:get(i[, rng]) -> x[, y] with i in 1..#ds (rng: see below). ds[i]
is the sample as a list {x[, y]} (what ds:get(i) returns, as collate takes samples); ds[#ds + 1]
is nil, so that for i, s in ipairs(ds) (and pairs(ds)) walk every sample and end.

  ai.data.fashion_mnist{split="train"|"test", root="/usr/share/datasets/fashion-mnist",
                        transform=<default normalize(0.5, 0.5)>}
      ds.images: u8 N x 28 x 28 as read (C storage), ds.data: the same as N x 1 x 28 x 28,
      ds.targets: i64 N with classes 1..10,
      ds.classes: the names; ds:get(i) -> f32 1 x 28 x 28 in [-1, 1] (transform=false: [0, 1]),
      the label as an integer
  ai.data.mnist{split=, root=}            the same for MNIST's files
  ai.data.ImageFolder{root=, size=, channels=3, transform=, preload=false, resize_mode=}
      every PNG below root; the class is the first folder under root (ds.classes, sorted);
      images are resized (shorter side, or {h, w}) and center-cropped to size
  ai.data.TensorDataset(x[, y][, {transform=, divisor=}])  rows of x (and y)
  ds:map(fn)                  fn(x, y, rng) -> x', y'
  ai.data.Subset(ds, indices) indices 1-based (a list or an i64 tensor)
  ai.data.random_split(ds, {n1, n2, ...} or fractions, {seed=}) -> list of Subsets
  ai.data.ConcatDataset{ds1, ds2, ...}

Transforms (ai.data.transforms) work on one image (C x H x W or H x W) and, for datasets stored
in tensors, compile into the C loader's augmentation list so that batches are built in C:
  normalize(mean, std)  random_horizontal_flip(p=0.5)  random_crop(size, {padding=0})
  center_crop(size)  random_affine_shift(max)  resize(size, {mode=})  compose{...}
Call one as t(img[, rng]). rng() returns uniforms in [0, 1): without it the global generator is
used; the DataLoader passes a counter-based stream of (seed, epoch, position) shared with C.
Order matters as in torchvision: padding and shifts fill with 0 at their place in the list, so
transforms given to a DataLoader (which run after the dataset's own, by default normalize(0.5,
0.5)) fill with 0 of the normalized range (mid-gray); to pad with black, list them in the
dataset's transform before normalize: fashion_mnist{transform = {random_crop(28, {padding=2}),
normalize(0.5, 0.5)}}.

  ai.data.DataLoader(ds, {batch_size=1, shuffle=false, drop_last=false, collate=, seed=,
                          transform=, prefetch=true, fast=, copy=true, shard=})
      transform: applied to each sample's x (as f32) after the dataset's own transforms
      for x, y in loader:iter() do ... end   (or: for x, y in loader do ... end; a loader is no
      list of batches: ipairs(loader) and pairs(loader) are errors that say so)
      #loader: batches per epoch; loader:state_dict() / loader:load_state_dict(sd): epoch and
      position, so that a resumed run sees exactly the batches it had not seen.
      Tensor-backed datasets with compilable transforms and the default collate go through the
      C prefetcher (a worker thread); the rest through ds:get + collate (ai.stack). Both give
      the same batches. seed: by default one drawn from the global generator when the loader
      is made (so it follows ai.manual_seed); epoch e's order is a permutation seeded by (seed,
      e) that leaves the global generator alone. prefetch: true (3 batches ahead), false (no
      thread) or a count 1..16. fast=false forces the Lua path; copy=false hands out the C
      buffers themselves instead of copies in core tensors (the default copy keeps the memory
      visible to the allocator's statistics and the collector; both are far faster than needed).
      shard: {rank=r, world_size=n} (or true: ai.dist's rank and world size, after
      ai.dist.init()) for data-parallel training. Every rank computes the same epoch order
      (give the same seed= everywhere) and
      takes its positions r-1, r-1+n, r-1+2n, ...: batch i of the n ranks together (batch_size
      each) is batch i of one loader with batch_size x n, with the same augmentation draws.
      Each rank gets floor(N/n) samples with drop_last, else ceil(N/n), the last ones wrapping
      round to the start of the order, so that every rank has as many batches. #loader and
      position count this rank's batches; a state resumes on any world size with the same
      batch_size x world_size.
]]
local util = require "aiart.util"
local random = require "aiart.data.random"
local T = require "aiart.data.transforms"
local D = require "aiart.data.datasets"
local L = require "aiart.data.loader"

-- The families live in lua/aiart/data/: random.lua, transforms.lua, datasets.lua, loader.lua.
local data = {
  transforms = T.transforms, is_transform = T.is_transform,
  global_rng = random.global_rng, sample_rng = random.sample_rng,
  Dataset = D.Dataset, TensorDataset = D.TensorDataset, fashion_mnist = D.fashion_mnist, mnist = D.mnist,
  ImageFolder = D.ImageFolder, Subset = D.Subset, ConcatDataset = D.ConcatDataset, random_split = D.random_split,
  collate = L.collate, DataLoader = L.DataLoader, DataLoader_class = L.DataLoader_class,
  DataLoader_mt = L.DataLoader_class,
  _mix64 = util.mix64, _crop_fill = T.crop_fill,
}

util.strict_args(data, "data.")
return data
