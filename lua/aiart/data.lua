--[[ aiart.data (ai.data): datasets, transforms and the DataLoader.

Datasets answer #ds and ds:get(i[, rng]) -> x[, y] with i in 1..#ds (rng: see below).

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
      for x, y in loader:iter() do ... end   (or: for x, y in loader do ... end)
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
local ai = require "aiart"

local data = {}
local transforms = {}
data.transforms = transforms

local TENSOR_MT = getmetatable(ai.empty(0))
local function is_tensor(v) return getmetatable(v) == TENSOR_MT end

local function K()
  local k = rawget(ai, "_loader")
  if not k then error("aiart.data: the C loader ai._loader is missing (lai_open_data is not registered)", 3) end
  return k
end

local function shape_str(t)
  local s = t.shape
  return #s == 0 and "scalar" or table.concat(s, "x")
end

local function check_opts(fn, o, known, level)
  if o == nil then return {} end
  if type(o) ~= "table" or is_tensor(o) then error(fn .. ": options must be a table, got " .. type(o), (level or 2) + 1) end
  for k in pairs(o) do
    if not known[k] then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      table.sort(names)
      error(("%s: unknown option '%s' (known: %s)"):format(fn, tostring(k), table.concat(names, ", ")), (level or 2) + 1)
    end
  end
  return o
end

local function set(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

local function is_int(v) return math.type(v) == "integer" end

-- splitmix64: the seed of epoch e's shuffle, from the loader's seed
local function mix64(z)
  z = z + 0x9e3779b97f4a7c15
  z = (z ~ (z >> 30)) * 0xbf58476d1ce4e5b9
  z = (z ~ (z >> 27)) * 0x94d049bb133111eb
  return z ~ (z >> 31)
end
data._mix64 = mix64

-- A seed drawn from the global generator (so it follows ai.manual_seed).
local function draw_seed() return ai.randint(0, 0x7fffffff, 1)[1]:item() end

-- A permutation of 0..n-1 (i64) from a private generator state {seed, 0}; the global state is
-- left as it was.
local function seeded_perm0(n, seed)
  local saved = ai.get_rng_state()
  ai.set_rng_state{seed = seed, offset = 0}
  local ok, p = pcall(ai.randperm, n)
  ai.set_rng_state(saved)
  if not ok then error(p, 0) end
  return p - 1
end

-- ================================================================ transforms

local Transform = {}
Transform.__index = Transform
Transform.__name = "Transform"
Transform.__call = function(self, img, rng) return self:apply(img, rng or data.global_rng()) end
Transform.__tostring = function(self) return "Transform(" .. self.name .. ")" end

--- data.global_rng() -> rng drawing from the global generator
function data.global_rng()
  return function() return ai.rand(1)[1]:item() end
end

--- data.sample_rng(seed, epoch, pos) -> the stream of the sample at 0-based position pos
function data.sample_rng(seed, epoch, pos)
  local uniform = K().uniform
  local k = -1
  return function()
    k = k + 1
    return uniform(seed, epoch, pos, k)
  end
end

local function new_transform(name, apply, aug)
  return setmetatable({name = name, apply = apply, aug = aug}, Transform)
end

local function is_transform(v) return getmetatable(v) == Transform end
data.is_transform = is_transform

-- floor(u * n) in [0, n), as the C loader computes it
local function rand_int(rng, n)
  local v = math.floor(rng() * n)
  if v >= n then v = n - 1 end
  return v
end

-- img as C x H x W, and a function giving results back the caller's layout
local function as_chw(fn, img)
  if not is_tensor(img) then error(("%s: expected an image tensor, got %s"):format(fn, type(img)), 4) end
  if img.ndim == 2 then return img:unsqueeze(1), function(t) return t[1] end end
  if img.ndim >= 3 then return img, function(t) return t end end
  if img.ndim == 1 then return img:view(1, 1, -1), function(t) return t:view(-1) end end
  error(("%s: expected H x W or C x H x W, got %s"):format(fn, shape_str(img)), 4)
end

-- The oh x ow window of img (C x H x W, or more leading dims) whose top-left corner is at (top,
-- left) in img's coordinates; what falls outside the image is 0.
local function crop_fill(img, top, left, oh, ow)
  local nd = img.ndim
  local h, w = img.shape[nd - 1], img.shape[nd]
  if top == 0 and left == 0 and oh == h and ow == w then return img end
  local r0, r1 = math.max(top, 0), math.min(top + oh, h) -- source rows [r0, r1)
  local c0, c1 = math.max(left, 0), math.min(left + ow, w)
  if r0 >= 0 and c0 >= 0 and top >= 0 and left >= 0 and top + oh <= h and left + ow <= w then
    return img:narrow(nd - 1, top + 1, oh):narrow(nd, left + 1, ow)
  end
  local shape = img.shape
  shape[nd - 1], shape[nd] = oh, ow
  local out = ai.zeros(shape, {dtype = img.dtype})
  if r1 > r0 and c1 > c0 then
    local src = img:narrow(nd - 1, r0 + 1, r1 - r0):narrow(nd, c0 + 1, c1 - c0)
    out:narrow(nd - 1, r0 - top + 1, r1 - r0):narrow(nd, c0 - left + 1, c1 - c0):copy_(src)
  end
  return out
end
data._crop_fill = crop_fill

local function number_list(fn, what, v)
  if type(v) == "number" then return {v} end
  if is_tensor(v) then v = v:tolist() end
  if type(v) ~= "table" or #v == 0 then error(("%s: %s must be a number or a list of numbers"):format(fn, what), 3) end
  for i, x in ipairs(v) do
    if type(x) ~= "number" then error(("%s: %s[%d] is not a number"):format(fn, what, i), 3) end
  end
  return v
end

--- transforms.normalize(mean, std): (x - mean) / std per channel
function transforms.normalize(mean, std)
  local fn = "transforms.normalize"
  local m, s = number_list(fn, "mean", mean), number_list(fn, "std", std)
  if #m ~= #s then error(("%s: %d means but %d stds"):format(fn, #m, #s), 2) end
  for i, v in ipairs(s) do
    if v == 0 then error(("%s: std[%d] is 0"):format(fn, i), 2) end
  end
  local mt, st -- built on first use, per channel count
  return new_transform(("normalize(%s, %s)"):format(table.concat(m, ","), table.concat(s, ",")), function(_, img)
    local x, back = as_chw(fn, img)
    if not (x.dtype == "f32" or x.dtype == "f64") then x = x:float() end
    local c = x.shape[x.ndim - 2]
    if #m ~= 1 and #m ~= c then
      error(("%s: %d mean/std values for an image of %d channels"):format(fn, #m, c), 3)
    end
    if #m == 1 then return back((x - m[1]) / s[1]) end
    if not mt or mt.dtype ~= x.dtype then
      mt = ai.tensor(m, {dtype = x.dtype}):view(-1, 1, 1)
      st = ai.tensor(s, {dtype = x.dtype}):view(-1, 1, 1)
    end
    return back((x - mt) / st)
  end, {kind = "normalize", mean = m, std = s})
end

--- transforms.random_horizontal_flip(p=0.5)
function transforms.random_horizontal_flip(p)
  local fn = "transforms.random_horizontal_flip"
  p = p == nil and 0.5 or p
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then error(fn .. ": p must be a number in [0, 1]", 2) end
  local idx = {}
  return new_transform(("random_horizontal_flip(%g)"):format(p), function(_, img, rng)
    local x, back = as_chw(fn, img)
    if rng() >= p then return img end
    local w = x.shape[x.ndim]
    local rev = idx[w]
    if not rev then
      rev = ai.arange(w, 0, -1)
      idx[w] = rev
    end
    return back(x:index_select(x.ndim, rev))
  end, {kind = "hflip", p = p})
end

local function size_pair(fn, size)
  if is_int(size) and size > 0 then return size, size end
  if type(size) == "table" and #size == 2 and is_int(size[1]) and is_int(size[2]) and size[1] > 0 and size[2] > 0 then
    return size[1], size[2]
  end
  error(fn .. ": size must be a positive integer or {height, width}", 3)
end

--- transforms.random_crop(size, {padding=0}): zero padding on every side, then a random window
function transforms.random_crop(size, opts)
  local fn = "transforms.random_crop"
  local oh, ow = size_pair(fn, size)
  local o = check_opts(fn, opts, {padding = true})
  local pad = o.padding or 0
  if not is_int(pad) or pad < 0 then error(fn .. ": padding must be a non-negative integer", 2) end
  return new_transform(("random_crop(%dx%d, padding=%d)"):format(oh, ow, pad), function(_, img, rng)
    local x, back = as_chw(fn, img)
    local h, w = x.shape[x.ndim - 1], x.shape[x.ndim]
    if h + 2 * pad < oh or w + 2 * pad < ow then
      error(("%s: a %dx%d window is larger than the padded %dx%d image"):format(fn, oh, ow, h + 2 * pad, w + 2 * pad), 3)
    end
    local top = rand_int(rng, h + 2 * pad - oh + 1)
    local left = rand_int(rng, w + 2 * pad - ow + 1)
    return back(crop_fill(x, top - pad, left - pad, oh, ow))
  end, {kind = "crop", size = {oh, ow}, padding = pad, random = true})
end

--- transforms.center_crop(size): the centred window (zero-filled where larger than the image)
function transforms.center_crop(size)
  local fn = "transforms.center_crop"
  local oh, ow = size_pair(fn, size)
  return new_transform(("center_crop(%dx%d)"):format(oh, ow), function(_, img)
    local x, back = as_chw(fn, img)
    local h, w = x.shape[x.ndim - 1], x.shape[x.ndim]
    return back(crop_fill(x, (h - oh) // 2, (w - ow) // 2, oh, ow))
  end, {kind = "crop", size = {oh, ow}, padding = 0, random = false})
end

--- transforms.random_affine_shift(max): translate by up to max pixels ({dy, dx} or one
-- number) in each direction, zero fill
function transforms.random_affine_shift(max)
  local fn = "transforms.random_affine_shift"
  local my, mx
  if is_int(max) and max >= 0 then my, mx = max, max
  elseif type(max) == "table" and #max == 2 and is_int(max[1]) and is_int(max[2]) and max[1] >= 0 and max[2] >= 0 then
    my, mx = max[1], max[2]
  else
    error(fn .. ": max must be a non-negative integer or {dy, dx}", 2)
  end
  return new_transform(("random_affine_shift(%d, %d)"):format(my, mx), function(_, img, rng)
    local x, back = as_chw(fn, img)
    local dy = rand_int(rng, 2 * my + 1) - my
    local dx = rand_int(rng, 2 * mx + 1) - mx
    local h, w = x.shape[x.ndim - 1], x.shape[x.ndim]
    return back(crop_fill(x, -dy, -dx, h, w))
  end, {kind = "shift", max = {my, mx}})
end

--- transforms.resize(size, {mode="bilinear"}): size {h, w}, or a number for the shorter side.
-- Not compiled into the C loader (a dataset with it is loaded through Lua).
function transforms.resize(size, opts)
  local fn = "transforms.resize"
  local o = check_opts(fn, opts, {mode = true, align_corners = true})
  if not ((is_int(size) and size > 0) or (type(size) == "table" and #size == 2)) then
    error(fn .. ": size must be a positive integer or {height, width}", 2)
  end
  return new_transform("resize", function(_, img)
    return require("aiart.image").resize(img, {size = size, mode = o.mode, align_corners = o.align_corners})
  end, nil)
end

-- A list of transforms and functions as one list of Transform objects.
local function flatten_transforms(fn, t, out)
  out = out or {}
  if t == nil or t == false then return out end
  if is_transform(t) then
    if t.list then for _, e in ipairs(t.list) do out[#out + 1] = e end
    else out[#out + 1] = t end
  elseif type(t) == "function" then
    out[#out + 1] = new_transform("function", function(_, img, rng) return t(img, rng) end, nil)
  elseif type(t) == "table" and not is_tensor(t) then
    for i = 1, #t do flatten_transforms(fn, t[i], out) end
  else
    error(("%s: a transform must be a transform, a function or a list of them, got %s"):format(fn, type(t)), 3)
  end
  return out
end

--- transforms.compose{t1, t2, ...}: one transform applying each in turn (functions allowed)
function transforms.compose(list)
  local l = flatten_transforms("transforms.compose", list)
  local names = {}
  for i, t in ipairs(l) do names[i] = t.name end
  local c = new_transform("compose{" .. table.concat(names, ", ") .. "}", function(_, img, rng)
    for _, t in ipairs(l) do img = t:apply(img, rng) end
    return img
  end, nil)
  c.list = l
  return c
end

-- The C augmentation specs of a list of transforms, or nil when one cannot run in C.
local function compile(list)
  local augs = {}
  for i, t in ipairs(list) do
    if not t.aug then return nil end
    augs[i] = t.aug
  end
  return augs
end

local function apply_list(list, x, rng)
  for _, t in ipairs(list) do x = t:apply(x, rng) end
  return x
end

-- ================================================================ datasets

local Dataset = {}
Dataset.__index = Dataset
Dataset.__name = "Dataset"
Dataset.__len = function(self) return self:len() end
Dataset.__tostring = function(self) return ("%s (%d samples)"):format(self.kind or "Dataset", #self) end
data.Dataset = Dataset

local function dataset(kind, fields)
  fields.kind = kind
  return setmetatable(fields, Dataset)
end

function Dataset:len() return self.n end

-- checks i and returns it as an integer
local function check_index(ds, i, level)
  if not is_int(i) then
    if type(i) == "number" and i == math.floor(i) then i = math.tointeger(i)
    else error(("%s:get: index must be an integer, got %s"):format(ds.kind, tostring(i)), level + 1) end
  end
  local n = #ds
  if i < 1 or i > n then error(("%s:get: index %d out of range 1..%d"):format(ds.kind, i, n), level + 1) end
  return i
end

--- ds:map(fn): a dataset whose get(i) is fn(ds:get(i, rng)..., rng)
function Dataset:map(fn)
  if type(fn) ~= "function" and not (type(fn) == "table" and getmetatable(fn) and getmetatable(fn).__call) then
    error("Dataset:map: expected a function, got " .. type(fn), 2)
  end
  local parent = self
  return dataset("MappedDataset", {
    n = #parent,
    get = function(_, i, rng)
      rng = rng or data.global_rng()
      local x, y = parent:get(i, rng)
      return fn(x, y, rng)
    end,
  })
end

-- Tensor-backed datasets: ds.data N x ..., ds.targets (or nil), ds.divisor (nil: no conversion),
-- ds.transform_list; ds:_source() describes them to the DataLoader.
local TensorBacked = setmetatable({}, {__index = Dataset})
TensorBacked.__index = TensorBacked
TensorBacked.__len = Dataset.__len
TensorBacked.__tostring = Dataset.__tostring
TensorBacked.__name = "Dataset"

function TensorBacked:get(i, rng)
  i = check_index(self, i, 2)
  local x = self.data[i]
  if self.divisor then
    x = x:float()
    if self.divisor ~= 1 then x = x / self.divisor end
  end
  if #self.transform_list > 0 then x = apply_list(self.transform_list, x, rng or data.global_rng()) end
  local y = self.targets
  if y == nil then return x end
  if self.label_numbers then return x, y[i]:item() end
  return x, y[i]
end

function TensorBacked:_source()
  return {data = self.data, labels = self.targets, divisor = self.divisor, transforms = self.transform_list}
end

local function tensor_dataset(kind, fields)
  fields.kind = kind
  fields.n = fields.data.shape[1]
  fields.transform_list = fields.transform_list or {}
  return setmetatable(fields, TensorBacked)
end

--- data.TensorDataset(x[, y][, {transform=, divisor=}]): sample i is x[i] (and y[i]); with a
-- transform or a divisor, x[i] becomes f32 (x[i] / divisor) before the transforms.
function data.TensorDataset(x, y, opts)
  local fn = "TensorDataset"
  if not is_tensor(x) then error(fn .. ": x must be a tensor, got " .. type(x), 2) end
  if x.ndim < 1 then error(fn .. ": x must have a sample dimension", 2) end
  if y ~= nil and not is_tensor(y) then
    if opts == nil and type(y) == "table" then opts, y = y, nil
    else error(fn .. ": y must be a tensor, got " .. type(y), 2) end
  end
  if y and (y.ndim < 1 or y.shape[1] ~= x.shape[1]) then
    error(("%s: x has %d rows but y is %s"):format(fn, x.shape[1], shape_str(y)), 2)
  end
  local o = check_opts(fn, opts, {transform = true, divisor = true})
  local list = flatten_transforms(fn, o.transform)
  local divisor = o.divisor
  if divisor == nil and #list > 0 then divisor = x.dtype == "u8" and 255 or 1 end
  return tensor_dataset(fn, {data = x, targets = y, divisor = divisor, transform_list = list})
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- The decoded IDX tensors, shared while alive (a second dataset on the same files costs nothing).
local idx_cache = setmetatable({}, {__mode = "v"})

local function read_idx(path)
  local t = idx_cache[path]
  if t then return t end
  local io_ = rawget(ai, "io")
  if not io_ then error("aiart.data: the file-format layer ai.io is not built into this aiart", 4) end
  t = io_.read_idx(path)
  idx_cache[path] = t
  return t
end

local function find_idx(root, name)
  for _, suffix in ipairs{".gz", ""} do
    local p = root .. "/" .. name .. suffix
    if file_exists(p) then return p end
  end
  return nil
end

local function mnist_like(fn, opts, default_root, package_hint, classes)
  local o = check_opts(fn, opts, {split = true, root = true, transform = true, train = true}, 3)
  local split = o.split or (o.train == false and "test") or "train"
  if split ~= "train" and split ~= "test" then
    error(("%s: split must be 'train' or 'test', got '%s'"):format(fn, tostring(split)), 3)
  end
  local root = o.root or default_root
  if type(root) ~= "string" then error(fn .. ": root must be a string", 3) end
  local prefix = split == "train" and "train" or "t10k"
  local ipath = find_idx(root, prefix .. "-images-idx3-ubyte")
  local lpath = find_idx(root, prefix .. "-labels-idx1-ubyte")
  if not ipath or not lpath then
    error(("%s: cannot find %s-images-idx3-ubyte(.gz) and %s-labels-idx1-ubyte(.gz) in %s; %s"):format(
      fn, prefix, prefix, root, package_hint), 3)
  end
  local images, labels = read_idx(ipath), read_idx(lpath)
  if images.ndim ~= 3 or images.dtype ~= "u8" then
    error(("%s: %s holds %s %s, expected u8 N x H x W images"):format(fn, ipath, images.dtype, shape_str(images)), 3)
  end
  if labels.ndim ~= 1 or labels.shape[1] ~= images.shape[1] then
    error(("%s: %s holds %s labels for %d images"):format(fn, lpath, shape_str(labels), images.shape[1]), 3)
  end
  local n, h, w = images.shape[1], images.shape[2], images.shape[3]
  local transform = o.transform
  if transform == nil then transform = transforms.normalize(0.5, 0.5) end
  local ds = tensor_dataset(fn, {
    data = images:view(n, 1, h, w),
    images = images,
    targets = labels:long() + 1,
    divisor = 255,
    transform_list = flatten_transforms(fn, transform),
    label_numbers = true,
    classes = classes,
    split = split,
    root = root,
  })
  return ds
end

local FASHION_CLASSES = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"}

--- data.fashion_mnist{split="train", root=, transform=}
function data.fashion_mnist(opts)
  return mnist_like("fashion_mnist", opts, "/usr/share/datasets/fashion-mnist",
    "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass root=",
    FASHION_CLASSES)
end

--- data.mnist{split="train", root=, transform=}
function data.mnist(opts)
  return mnist_like("mnist", opts, "/usr/share/datasets/mnist",
    "no Debian package ships MNIST: put the four IDX files (e.g. train-images-idx3-ubyte.gz) in a folder and pass root=",
    {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"})
end

-- ---------------------------------------------------------------- ImageFolder

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- channel conversion of a C x H x W image in [0, 1]
local function to_channels(img, c)
  local have = img.shape[1]
  if have == c then return img end
  if have == 2 or have == 4 then -- drop alpha
    img = img:narrow(1, 1, have - 1)
    have = have - 1
  end
  if have == c then return img end
  if c == 1 then -- ITU-R 601 luma, as PIL's "L"
    return (img[1] * 0.299 + img[2] * 0.587 + img[3] * 0.114):unsqueeze(1)
  end
  if c == 3 then return img:expand(3, img.shape[2], img.shape[3]):contiguous() end
  if c == 4 then
    local rgb = have == 1 and img:expand(3, img.shape[2], img.shape[3]) or img
    return ai.cat({rgb, ai.ones(1, img.shape[2], img.shape[3])}, 1)
  end
  error("ImageFolder: channels must be 1, 3 or 4", 3)
end

local function load_image(self, path)
  local img = ai.io.load_png(path)
  img = to_channels(img, self.channels)
  if self.size then
    local image = require "aiart.image"
    local h, w = img.shape[2], img.shape[3]
    local oh, ow = image.target_size(self.size, h, w)
    if oh ~= h or ow ~= w then
      local mode = self.resize_mode or ((oh < h or ow < w) and "area" or "bilinear")
      img = image.resize(img, {size = {oh, ow}, mode = mode})
    end
    if is_int(self.size) then
      local s = self.size
      img = crop_fill(img, (img.shape[2] - s) // 2, (img.shape[3] - s) // 2, s, s)
    end
    img = img:contiguous()
  end
  return img
end

--- data.ImageFolder{root=, size=, channels=3, transform=, preload=false, resize_mode=}
function data.ImageFolder(opts)
  local fn = "ImageFolder"
  local o = check_opts(fn, opts, {root = true, size = true, channels = true, transform = true, preload = true,
                                  resize_mode = true})
  local root = o.root
  if type(root) ~= "string" then error(fn .. ": root must be a string (a folder)", 2) end
  root = root:gsub("/+$", "")
  if root == "" then root = "/" end
  local channels = o.channels or 3
  if channels ~= 1 and channels ~= 3 and channels ~= 4 then error(fn .. ": channels must be 1, 3 or 4", 2) end
  if o.size ~= nil and not ((is_int(o.size) and o.size > 0) or (type(o.size) == "table" and #o.size == 2)) then
    error(fn .. ": size must be a positive integer or {height, width}", 2)
  end
  local p = io.popen("find -L " .. shell_quote(root) .. " -type f -iname '*.png' 2>/dev/null")
  local files = {}
  for line in p:lines() do files[#files + 1] = line end
  p:close()
  if #files == 0 then
    local f = io.open(root, "r")
    if not f then error(("%s: folder %s does not exist"):format(fn, root), 2) end
    f:close()
    error(("%s: no PNG files under %s"):format(fn, root), 2)
  end
  table.sort(files)
  local class_of, classes = {}, {}
  local rels = {}
  local prefix = root == "/" and "/" or root .. "/"
  for i, f in ipairs(files) do
    local rel = f:sub(#prefix + 1)
    local cls = rel:match("^([^/]+)/") or ""
    rels[i] = cls
    if not class_of[cls] then class_of[cls] = true; classes[#classes + 1] = cls end
  end
  table.sort(classes)
  local index = {}
  for i, c in ipairs(classes) do index[c] = i end
  local targets = {}
  for i = 1, #files do targets[i] = index[rels[i]] end
  local transform = o.transform
  if transform == nil then transform = transforms.normalize(0.5, 0.5) end
  local list = flatten_transforms(fn, transform)
  local base = {files = files, classes = classes, channels = channels, size = o.size, resize_mode = o.resize_mode,
                root = root}
  if o.preload then
    local imgs = {}
    for i, f in ipairs(files) do
      imgs[i] = load_image(base, f)
      if i > 1 and shape_str(imgs[i]) ~= shape_str(imgs[1]) then
        error(("%s: preload needs images of one size: %s is %s, %s is %s (give size=)"):format(
          fn, files[1], shape_str(imgs[1]), f, shape_str(imgs[i])), 2)
      end
    end
    local ds = tensor_dataset(fn, {data = ai.stack(imgs, 1), targets = ai.tensor(targets, {dtype = "i64"}),
                                   divisor = 1, transform_list = list, label_numbers = true})
    for k, v in pairs(base) do ds[k] = v end
    return ds
  end
  base.targets_list = targets
  base.transform_list = list
  base.n = #files
  base.get = function(self, i, rng)
    i = check_index(self, i, 2)
    local img = load_image(self, self.files[i])
    if #self.transform_list > 0 then img = apply_list(self.transform_list, img, rng or data.global_rng()) end
    return img, self.targets_list[i]
  end
  return dataset(fn, base)
end

-- ---------------------------------------------------------------- composition

local function index_list(fn, indices, n)
  local list
  if is_tensor(indices) then
    if indices.ndim ~= 1 then error(fn .. ": indices must be a 1-D tensor or a list", 3) end
    list = indices:long():tolist()
  elseif type(indices) == "table" then
    list = {}
    for i = 1, #indices do list[i] = indices[i] end
  else
    error(fn .. ": indices must be a list or a tensor of 1-based indices", 3)
  end
  for i, v in ipairs(list) do
    if not is_int(v) then
      if type(v) == "number" and v == math.floor(v) then list[i] = math.tointeger(v)
      else error(("%s: index %d is not an integer"):format(fn, i), 3) end
    end
    if list[i] < 1 or list[i] > n then error(("%s: index %d out of range 1..%d"):format(fn, list[i], n), 3) end
  end
  return list
end

--- data.Subset(ds, indices)
function data.Subset(ds, indices)
  local fn = "Subset"
  if type(ds) ~= "table" or not ds.get then error(fn .. ": expected a dataset", 2) end
  local list = index_list(fn, indices, #ds)
  local sub = dataset(fn, {dataset = ds, indices = list, n = #list})
  sub.get = function(self, i, rng)
    i = check_index(self, i, 2)
    return ds:get(list[i], rng)
  end
  if ds._source then
    sub._source = function()
      local src = ds:_source()
      if not src then return nil end
      local s = {}
      for k, v in pairs(src) do s[k] = v end
      local mine = ai.tensor(list, {dtype = "i64"}) - 1
      s.index = src.index and src.index:index_select(1, mine + 1) or mine
      return s
    end
  end
  return sub
end

--- data.ConcatDataset{ds1, ds2, ...}
function data.ConcatDataset(list)
  local fn = "ConcatDataset"
  if type(list) ~= "table" or #list == 0 then error(fn .. ": expected a non-empty list of datasets", 2) end
  local ends, total = {}, 0
  for i, ds in ipairs(list) do
    if type(ds) ~= "table" or not ds.get then error(("%s: element %d is not a dataset"):format(fn, i), 2) end
    total = total + #ds
    ends[i] = total
  end
  local cat = dataset(fn, {datasets = list, n = total, cumulative_sizes = ends})
  cat.get = function(self, i, rng)
    i = check_index(self, i, 2)
    local lo, hi = 1, #ends
    while lo < hi do
      local mid = (lo + hi) // 2
      if ends[mid] >= i then hi = mid else lo = mid + 1 end
    end
    return list[lo]:get(i - (ends[lo] - #list[lo]), rng)
  end
  return cat
end

--- data.random_split(ds, lengths, {seed=}) -> {Subset, ...}; lengths are counts summing to
-- #ds or fractions summing to 1 (the remainder goes round-robin, as PyTorch does)
function data.random_split(ds, lengths, opts)
  local fn = "random_split"
  if type(ds) ~= "table" or not ds.get then error(fn .. ": expected a dataset", 2) end
  if type(lengths) ~= "table" or #lengths == 0 then error(fn .. ": lengths must be a non-empty list", 2) end
  local o = check_opts(fn, opts, {seed = true})
  local n = #ds
  local counts, sum, all_int = {}, 0, true
  for i, v in ipairs(lengths) do
    if type(v) ~= "number" or v < 0 then error(("%s: lengths[%d] must be a non-negative number"):format(fn, i), 2) end
    if not is_int(v) then all_int = false end
    sum = sum + v
  end
  if all_int then
    for i, v in ipairs(lengths) do counts[i] = v end
    if sum ~= n then error(("%s: lengths sum to %d but the dataset has %d samples"):format(fn, sum, n), 2) end
  elseif math.abs(sum - 1) < 1e-6 then
    local used = 0
    for i, f in ipairs(lengths) do counts[i] = math.floor(n * f); used = used + counts[i] end
    local i = 1
    while used < n do counts[i] = counts[i] + 1; used = used + 1; i = i % #counts + 1 end
  else
    error(("%s: lengths must be counts summing to %d or fractions summing to 1"):format(fn, n), 2)
  end
  local perm
  if o.seed ~= nil then
    if not is_int(o.seed) then error(fn .. ": seed must be an integer", 2) end
    perm = seeded_perm0(n, mix64(o.seed)) + 1
  else
    perm = ai.randperm(n)
  end
  local p = perm:tolist()
  local out, at = {}, 0
  for i, c in ipairs(counts) do
    local idx = table.move(p, at + 1, at + c, 1, {})
    out[i] = data.Subset(ds, idx)
    at = at + c
  end
  return out
end

-- ================================================================ collate

--- data.collate(samples) -> one batch per field: samples[i] = {x, y, ...}; tensors are stacked,
-- integers become an i64 tensor, other numbers f32, booleans u8, tables are collated by key
function data.collate(samples)
  local n = #samples
  if n == 0 then error("collate: empty batch", 2) end
  local function field(values)
    local v1 = values[1]
    if is_tensor(v1) then return ai.stack(values, 1) end
    local t = type(v1)
    if t == "number" then
      local all_int = true
      for _, v in ipairs(values) do if not is_int(v) then all_int = false break end end
      return ai.tensor(values, {dtype = all_int and "i64" or "f32"})
    end
    if t == "boolean" then
      local b = {}
      for i, v in ipairs(values) do b[i] = v and 1 or 0 end
      return ai.tensor(b, {dtype = "u8"})
    end
    if t == "table" then
      local out = {}
      for k in pairs(v1) do
        local col = {}
        for i, v in ipairs(values) do col[i] = v[k] end
        out[k] = field(col)
      end
      return out
    end
    return values -- strings and other values: the list
  end
  local width = 0
  for _, s in ipairs(samples) do if #s > width then width = #s end end
  local out = {}
  for j = 1, width do
    local col = {}
    for i = 1, n do col[i] = samples[i][j] end
    if col[1] ~= nil then out[j] = field(col) end
  end
  return table.unpack(out, 1, width)
end

-- ================================================================ DataLoader

local DataLoader = {}
DataLoader.__index = DataLoader
DataLoader.__name = "DataLoader"
data.DataLoader_class = DataLoader

local LOADER_OPTS = set{"batch_size", "shuffle", "drop_last", "collate", "seed", "transform", "prefetch", "fast",
                        "copy", "shard"}

-- The shard option -> rank, world_size
local function check_shard(fn, shard)
  if shard == nil or shard == false then return 1, 1 end
  if shard == true then
    local dist = ai.dist
    if not dist.initialized() and dist.launched_size() > 1 then
      error(fn .. ": shard=true under mpirun needs ai.dist.init() first", 3)
    end
    return dist.rank(), dist.world_size()
  end
  if type(shard) ~= "table" then error(fn .. ": shard must be true or {rank=, world_size=}", 3) end
  for k in pairs(shard) do
    if k ~= "rank" and k ~= "world_size" then error(("%s: shard has an unknown field '%s' (known: rank, world_size)"):format(fn, tostring(k)), 3) end
  end
  local r, n = shard.rank, shard.world_size
  if not is_int(n) or n < 1 then error(fn .. ": shard.world_size must be a positive integer, got " .. tostring(n), 3) end
  if not is_int(r) or r < 1 or r > n then
    error(("%s: shard.rank must be an integer in 1..%d, got %s"):format(fn, n, tostring(r)), 3)
  end
  return r, n
end

--- data.DataLoader(ds, opts)
function data.DataLoader(ds, opts)
  local fn = "DataLoader"
  if type(ds) ~= "table" or type(ds.get) ~= "function" then
    error(fn .. ": expected a dataset (a table with get and a length)", 2)
  end
  local o = check_opts(fn, opts, LOADER_OPTS)
  local bs = o.batch_size or 1
  if not is_int(bs) or bs < 1 then error(fn .. ": batch_size must be a positive integer, got " .. tostring(bs), 2) end
  if o.collate ~= nil and type(o.collate) ~= "function" then error(fn .. ": collate must be a function", 2) end
  local prefetch = o.prefetch
  if prefetch == nil or prefetch == true then prefetch = 3
  elseif prefetch == false then prefetch = 0
  elseif not is_int(prefetch) or prefetch < 0 or prefetch > 16 then
    error(fn .. ": prefetch must be a boolean or a number of batches 0..16", 2)
  end
  local rank, world = check_shard(fn, o.shard)
  local seed = o.seed
  if seed == nil then
    if world > 1 and o.shuffle then
      error(fn .. ": a sharded loader that shuffles needs seed= (the same on every rank), so that the ranks share one order", 2)
    end
    seed = draw_seed()
  elseif not is_int(seed) then error(fn .. ": seed must be an integer", 2) end
  local self = setmetatable({
    dataset = ds, batch_size = bs, shuffle = o.shuffle and true or false, drop_last = o.drop_last and true or false,
    collate = o.collate, seed = seed, prefetch = prefetch, copy = o.copy, rank = rank, world_size = world,
    transform_list = flatten_transforms(fn, o.transform),
    _epoch = 0, _pos = 0, _resume = false,
  }, DataLoader)
  self.fast_reason = nil
  local src = self:_fast_source()
  if o.fast == true and not src then error(fn .. ": fast=true but " .. self.fast_reason, 2) end
  self.fast = o.fast ~= false and src ~= nil
  return self
end

-- The C loader's view of the dataset, or nil (with self.fast_reason).
function DataLoader:_fast_source()
  local ds = self.dataset
  if self.collate then self.fast_reason = "a collate function is given"; return nil end
  if type(ds._source) ~= "function" then self.fast_reason = "the dataset is not stored in tensors"; return nil end
  local src = ds:_source()
  if not src then self.fast_reason = "the dataset is not stored in tensors"; return nil end
  local list = {}
  for _, t in ipairs(src.transforms or {}) do list[#list + 1] = t end
  for _, t in ipairs(self.transform_list) do list[#list + 1] = t end
  local augs = compile(list)
  if not augs then self.fast_reason = "a transform cannot run in C (resize or a function)"; return nil end
  local convert = src.divisor ~= nil or #list > 0
  if convert and src.data.dtype ~= "u8" and src.data.dtype ~= "f32" then
    self.fast_reason = "transformed data must be u8 or f32"
    return nil
  end
  src.convert = convert
  src.divisor = src.divisor or 1 -- loader transforms of an unconverted dataset see f32 raw values
  src.augs = augs
  return src
end

-- The samples of this rank's shard of an epoch.
local function shard_len(self)
  local n, w = #self.dataset, self.world_size
  if self.drop_last then return n // w end
  return (n + w - 1) // w
end

function DataLoader:__len()
  local n = shard_len(self)
  if self.drop_last then return n // self.batch_size end
  return (n + self.batch_size - 1) // self.batch_size
end

function DataLoader:__tostring()
  local shard = self.world_size > 1 and (", shard %d of %d"):format(self.rank, self.world_size) or ""
  return ("DataLoader(%d samples, batch_size=%d, %d batches%s, %s)"):format(#self.dataset, self.batch_size, #self,
    shard, self.fast and "C prefetcher" or "Lua")
end

--- loader:order(epoch) -> i64 tensor of the epoch's 0-based dataset positions (this rank's
-- shard of them when sharded)
function DataLoader:order(epoch)
  local n = #self.dataset
  local order = self.shuffle and seeded_perm0(n, mix64(self.seed ~ mix64(epoch))) or ai.arange(0, n)
  if self.world_size == 1 or n == 0 then return order end
  local pos = (ai.arange(0, shard_len(self)) * self.world_size + (self.rank - 1)) % n
  return order:index_select(1, pos + 1)
end

-- Starts (or resumes) an epoch: returns epoch, first batch.
local function begin_epoch(self)
  local nb = #self
  if self._resume and self._epoch > 0 and self._pos < nb then
    self._resume = false
  else
    self._resume = false
    self._epoch = self._epoch + 1
    self._pos = 0
  end
  return self._epoch, self._pos
end

local function fast_iter(self, epoch, start, token)
  local src = self:_fast_source()
  local order = self:order(epoch)
  if src.index then order = src.index:index_select(1, order + 1) end
  local ld = K().new(src.data, src.labels, order, {
    batch_size = self.batch_size, drop_last = self.drop_last, seed = self.seed, epoch = epoch, start = start,
    pos_offset = self.rank - 1, pos_stride = self.world_size,
    prefetch = self.prefetch, convert = src.convert, divisor = src.divisor, augs = src.augs,
    copy = self.copy ~= false,
  })
  local function step()
    local x, y = ld:next()
    if x == nil then
      ld:close()
      return nil
    end
    if self._token == token then self._pos = self._pos + 1 end
    return x, y
  end
  return step, ld
end

local function lua_iter(self, epoch, start, token)
  local ds, bs = self.dataset, self.batch_size
  local order = self:order(epoch):tolist()
  local n, nb = #order, #self
  local k = start
  local collate = self.collate or data.collate
  local list = self.transform_list
  local seed = self.seed
  local off, stride = self.rank - 1, self.world_size
  local function step()
    if k >= nb then return nil end
    local first = k * bs
    local last = math.min(first + bs, n) - 1
    local samples = {}
    for p = first, last do
      local rng = data.sample_rng(seed, epoch, off + p * stride)
      local s = table.pack(ds:get(order[p + 1] + 1, rng))
      if #list > 0 then
        local x = s[1]
        if is_tensor(x) and x.dtype ~= "f32" and x.dtype ~= "f64" then x = x:float() end
        s[1] = apply_list(list, x, rng)
      end
      samples[#samples + 1] = s
    end
    k = k + 1
    if self._token == token then self._pos = k end
    return collate(samples)
  end
  return step, nil
end

--- loader:iter() -> an iterator over the batches of the next epoch (or of the unfinished epoch
-- after load_state_dict): for x, y in loader:iter() do ... end. Leaving the loop early (break,
-- error) stops the prefetching thread.
function DataLoader:iter()
  local epoch, start = begin_epoch(self)
  local token = {}
  self._token = token
  local step, closer
  if self.fast then step, closer = fast_iter(self, epoch, start, token)
  else step, closer = lua_iter(self, epoch, start, token) end
  return step, nil, nil, closer
end

-- for x, y in loader do ... end: each loop is an epoch (a first call with control nil starts it)
function DataLoader:__call(_, control)
  if control == nil then
    if self._call_closer then self._call_closer:close() end
    self._call_step, _, _, self._call_closer = self:iter()
  end
  local step = self._call_step
  if not step then return nil end
  return step()
end

--- loader:state_dict() -> {epoch=, position=, seed=, ...}: position counts the batches of the
-- current epoch handed out so far
function DataLoader:state_dict()
  return {epoch = self._epoch, position = self._pos, seed = self.seed, batches = #self, samples = #self.dataset,
          shuffle = self.shuffle, batch_size = self.batch_size, world_size = self.world_size}
end

--- loader:load_state_dict(sd): the next iter() continues epoch sd.epoch after batch sd.position
function DataLoader:load_state_dict(sd)
  local fn = "DataLoader:load_state_dict"
  if type(sd) ~= "table" then error(fn .. ": expected a table from state_dict()", 2) end
  local function int(k)
    local v = sd[k]
    if type(v) == "number" and v == math.floor(v) then return math.tointeger(v) end
    error(("%s: '%s' must be an integer, got %s"):format(fn, k, tostring(v)), 3)
  end
  local epoch, pos, seed = int("epoch"), int("position"), int("seed")
  if sd.samples ~= nil and sd.samples ~= #self.dataset then
    error(("%s: the state is for a dataset of %s samples, this one has %d"):format(fn, tostring(sd.samples), #self.dataset), 2)
  end
  -- positions count batches of batch_size x world_size samples: those must agree
  local sd_world = sd.world_size or 1
  if sd.batch_size ~= nil and sd.batch_size * sd_world ~= self.batch_size * self.world_size then
    if sd_world == 1 and self.world_size == 1 then
      error(("%s: the state is for batch_size %s, this loader has %d"):format(fn, tostring(sd.batch_size), self.batch_size), 2)
    end
    error(("%s: the state is for batch_size %s on %d ranks (%s in all), this loader has %d on %d (%d in all)"):format(fn,
      tostring(sd.batch_size), sd_world, tostring(sd.batch_size * sd_world), self.batch_size, self.world_size,
      self.batch_size * self.world_size), 2)
  end
  if epoch < 0 or pos < 0 or pos > #self then error(fn .. ": epoch or position out of range", 2) end
  self._epoch, self._pos, self.seed = epoch, pos, seed
  if sd.shuffle ~= nil then self.shuffle = sd.shuffle and true or false end
  self._resume = true
  self._token = nil
end

--- loader:epoch() -> the current epoch (1 during the first)
function DataLoader:epoch() return self._epoch end

data.DataLoader_mt = DataLoader

return data
