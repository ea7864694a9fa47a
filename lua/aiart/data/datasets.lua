--[[ aiart.data.datasets: the datasets of ai.data: the Dataset base (#ds, ds:get(i[, rng]),
ds:map), tensor-backed datasets (which the DataLoader can hand to the C loader), MNIST and
Fashion-MNIST from IDX files, ImageFolder, and composition (Subset, ConcatDataset,
random_split).
]]
local ai = require "aiart"
local util = require "aiart.util"
local random = require "aiart.data.random"
local T = require "aiart.data.transforms"

local is_tensor, shape_str, check_opts, shell_quote = util.is_tensor, util.shape_str, util.check_opts, util.shell_quote
local to_integer = util.to_integer
local error = util.error -- positions name the caller's line (see util.error)
local transforms, flatten_transforms, apply_list, crop_fill = T.transforms, T.flatten, T.apply_list, T.crop_fill
local seeded_perm0, mix64 = random.seeded_perm0, util.mix64

local D = {}

local Dataset = {}
Dataset.__name = "Dataset"
Dataset.__len = function(self) return self:len() end
Dataset.__tostring = function(self) return ("%s (%d samples)"):format(self.kind or "Dataset", #self) end

-- A sample that ds[i] gives: the list {x, y, ...} of what ds:get(i) returns (as collate takes
-- samples). Naming a field of it is a mistake (local x, y = ds[i] makes x the list): say so.
local Sample = {__name = "Sample"}
Sample.__index = function(_, k)
  if type(k) == "string" then
    error(("ds[i] is the sample {x, y, ...} (a list), which has no field '%s': write local x, y = ds:get(i) " ..
      "or table.unpack(ds[i])"):format(k), 2)
  end
end

-- ds[i] with i in 1..#ds: the sample, as ds:get(i) gives it, in a list; ds[#ds + 1] is nil, so
-- that for i, s in ipairs(ds) ends there; other indices are errors, as for ds:get(i).
local function sample_at(ds, i)
  local k = to_integer(i)
  if k ~= nil and k == #ds + 1 then return nil end
  local s = table.pack(ds:get(i))
  s.n = nil
  return setmetatable(s, Sample)
end

-- The __index of a dataset class: numbers are samples, names the class's fields.
local function dataset_index(cls)
  return function(ds, k)
    if type(k) == "number" then return sample_at(ds, k) end
    return cls[k]
  end
end
Dataset.__index = dataset_index(Dataset)

-- pairs(ds) walks the samples, as ipairs(ds) does
function Dataset.__pairs(ds)
  return function(d, i)
    i = i + 1
    local s = d[i]
    if s ~= nil then return i, s end
  end, ds, 0
end

local function dataset(kind, fields)
  fields.kind = kind
  return setmetatable(fields, Dataset)
end

function Dataset:len() return self.n end

-- checks i and returns it as an integer
local function check_index(ds, i)
  local fn = ds.kind .. ":get"
  i = util.int(fn, "index", i, nil)
  local n = #ds
  if i < 1 or i > n then error(("%s: index %d out of range 1..%d"):format(fn, i, n), 2) end
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
      rng = rng or random.global_rng()
      local x, y = parent:get(i, rng)
      return fn(x, y, rng)
    end,
  })
end

-- Tensor-backed datasets: ds.data N x ..., ds.targets (or nil), ds.divisor (nil: no conversion),
-- ds.transform_list; ds:_source() describes them to the DataLoader.
local TensorBacked = setmetatable({}, {__index = Dataset})
TensorBacked.__index = dataset_index(TensorBacked)
TensorBacked.__len = Dataset.__len
TensorBacked.__tostring = Dataset.__tostring
TensorBacked.__pairs = Dataset.__pairs
TensorBacked.__name = "Dataset"

function TensorBacked:get(i, rng)
  i = check_index(self, i)
  if rng ~= nil and type(rng) ~= "function" then util.error("get: rng must be a function or nil, got " .. type(rng), 2) end
  local x = self.data[i]
  if self.divisor then
    x = x:float()
    if self.divisor ~= 1 then x = x / self.divisor end
  end
  if #self.transform_list > 0 then x = apply_list(self.transform_list, x, rng or random.global_rng()) end
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
function D.TensorDataset(x, y, opts)
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
  if not io_ then error("aiart.data: the file-format layer ai.io is not built into this aiart", 2) end
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
  local o = check_opts(fn, opts, {split = true, root = true, transform = true, train = true})
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
function D.fashion_mnist(opts)
  return mnist_like("fashion_mnist", opts, "/usr/share/datasets/fashion-mnist",
    "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass root=",
    FASHION_CLASSES)
end

--- data.mnist{split="train", root=, transform=}
function D.mnist(opts)
  return mnist_like("mnist", opts, "/usr/share/datasets/mnist",
    "no Debian package ships MNIST: put the four IDX files (e.g. train-images-idx3-ubyte.gz) in a folder and pass root=",
    {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"})
end

-- ---------------------------------------------------------------- ImageFolder

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
  error("ImageFolder: channels must be 1, 3 or 4", 2)
end

-- a PNG decoded, or nil and the reason
local function read_png(path)
  local ok, img = pcall(ai.io.load_png, path)
  if ok then return img end
  return nil, (tostring(img):gsub("^load_png: ", ""))
end

-- bad_files: every file decoded once, for its channels and size (ds.summary) and to leave out
-- (skip) or stop at (error) those that cannot be read, before the first batch rather than in it
local function scan_files(fn, files, policy)
  local kept, skipped, sm = {}, {}, {channels = {}}
  for _, f in ipairs(files) do
    local img, why = read_png(f)
    if img then
      kept[#kept + 1] = f
      local c, h, w = img.shape[1], img.shape[2], img.shape[3]
      sm.channels[c] = (sm.channels[c] or 0) + 1
      if not sm.smallest or h * w < sm.smallest[1] * sm.smallest[2] then sm.smallest = {h, w} end
      if not sm.largest or h * w > sm.largest[1] * sm.largest[2] then sm.largest = {h, w} end
    elseif policy == "error" then
      error(("%s: cannot read %s: %s (bad_files=skip leaves such files out)"):format(fn, f, why), 0)
    else
      skipped[#skipped + 1] = {path = f, error = why}
    end
  end
  if #kept == 0 then
    error(("%s: none of the %d PNG files could be read (%s: %s)"):format(fn, #files, skipped[1].path,
      skipped[1].error), 0)
  end
  return kept, skipped, sm
end

local function load_image(self, path)
  local img, why = read_png(path)
  if not img then error(("ImageFolder: cannot read %s: %s"):format(path, why), 0) end
  img = to_channels(img, self.channels)
  if self.size then
    local image = require "aiart.image"
    local h, w = img.shape[2], img.shape[3]
    local oh, ow = image.target_size(self.size, h, w)
    if oh ~= h or ow ~= w then
      local mode = self.resize_mode or ((oh < h or ow < w) and "area" or "bilinear")
      img = image.resize(img, {size = {oh, ow}, mode = mode})
    end
    if math.type(self.size) == "integer" then -- the shorter side, then a centred square
      local s = self.size
      img = crop_fill(img, (img.shape[2] - s) // 2, (img.shape[3] - s) // 2, s, s)
    end
    img = img:contiguous()
  end
  return img
end

--- data.ImageFolder{root=, size=, channels=3, transform=, preload=false, resize_mode=, bad_files=}
-- bad_files = "skip" or "error": every file is decoded once at the start; those that cannot be
-- read are left out (listed in ds.skipped as {path=, error=}) or stop with an error naming the
-- file; ds.summary = {channels = {[c] = count}, smallest = {h, w}, largest = {h, w}} (by area)
-- describes the files as they are. Without it, files are read when used, and a file that
-- cannot be read is an error naming it.
function D.ImageFolder(opts)
  local fn = "ImageFolder"
  local o = check_opts(fn, opts, {root = true, size = true, channels = true, transform = true, preload = true,
                                  resize_mode = true, bad_files = true})
  if o.bad_files ~= nil and o.bad_files ~= "skip" and o.bad_files ~= "error" then
    error(fn .. ": bad_files must be \"skip\" or \"error\", got " .. tostring(o.bad_files), 2)
  end
  local root = o.root
  if type(root) ~= "string" then error(fn .. ": root must be a string (a folder)", 2) end
  root = root:gsub("/+$", "")
  if root == "" then root = "/" end
  local channels = o.channels or 3
  if channels ~= 1 and channels ~= 3 and channels ~= 4 then error(fn .. ": channels must be 1, 3 or 4", 2) end
  local size = o.size
  if size ~= nil then
    local h, w
    if type(size) == "table" and #size == 2 then h, w = to_integer(size[1]), to_integer(size[2])
    else h = to_integer(size) w = h end
    if not (h and w and h > 0 and w > 0) then error(fn .. ": size must be a positive integer or {height, width}", 2) end
    size = type(size) == "table" and {h, w} or h
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
  local skipped, summary
  if o.bad_files then
    local ok, kept, sk, sm = pcall(scan_files, fn, files, o.bad_files)
    if not ok then error(kept, 0) end -- about a file, not a line of the caller's
    files, skipped, summary = kept, sk, sm
  end
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
  local base = {files = files, classes = classes, channels = channels, size = size, resize_mode = o.resize_mode,
                root = root, skipped = skipped, summary = summary}
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
    i = check_index(self, i)
    local img = load_image(self, self.files[i])
    if #self.transform_list > 0 then img = apply_list(self.transform_list, img, rng or random.global_rng()) end
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
    local k = util.int(fn, ("indices[%d]"):format(i), v)
    if k < 1 or k > n then error(("%s: index %d out of range 1..%d"):format(fn, k, n), 3) end
    list[i] = k
  end
  return list
end

--- data.Subset(ds, indices)
function D.Subset(ds, indices)
  local fn = "Subset"
  if type(ds) ~= "table" or not ds.get then error(fn .. ": expected a dataset", 2) end
  local list = index_list(fn, indices, #ds)
  local sub = dataset(fn, {dataset = ds, indices = list, n = #list})
  sub.get = function(self, i, rng)
    i = check_index(self, i)
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
function D.ConcatDataset(list)
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
    i = check_index(self, i)
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
function D.random_split(ds, lengths, opts)
  local fn = "random_split"
  if type(ds) ~= "table" or not ds.get then error(fn .. ": expected a dataset", 2) end
  if type(lengths) ~= "table" or #lengths == 0 then error(fn .. ": lengths must be a non-empty list", 2) end
  local o = check_opts(fn, opts, {seed = true})
  local n = #ds
  local counts, sum, all_int = {}, 0, true
  for i, v in ipairs(lengths) do
    if type(v) ~= "number" or not (v >= 0) then error(("%s: lengths[%d] must be a non-negative number"):format(fn, i), 2) end
    counts[i] = to_integer(v) -- whole numbers (5 or 5.0) are counts, as in Lua
    if not counts[i] then all_int = false end
    sum = sum + v
  end
  if all_int and sum == n then -- counts
  elseif all_int and sum ~= 1 then
    error(("%s: lengths sum to %d but the dataset has %d samples"):format(fn, math.tointeger(sum) or sum, n), 2)
  elseif math.abs(sum - 1) < 1e-6 then -- fractions (PyTorch's rule; {1, 0} too)
    counts = {}
    local used = 0
    for i, f in ipairs(lengths) do counts[i] = math.floor(n * f); used = used + counts[i] end
    local i = 1
    while used < n do counts[i] = counts[i] + 1; used = used + 1; i = i % #counts + 1 end
  else
    error(("%s: lengths must be counts summing to %d or fractions summing to 1"):format(fn, n), 2)
  end
  local perm
  if o.seed ~= nil then
    perm = seeded_perm0(n, mix64(util.int(fn, "seed", o.seed))) + 1
  else
    perm = ai.randperm(n)
  end
  local p = perm:tolist()
  local out, at = {}, 0
  for i, c in ipairs(counts) do
    local idx = table.move(p, at + 1, at + c, 1, {})
    out[i] = D.Subset(ds, idx)
    at = at + c
  end
  return out
end


-- Arguments beyond a function's or a method's parameters are errors.
util.strict_args(D, "data.")
util.strict_args(Dataset, "Dataset:", true)
util.strict_args(TensorBacked, "Dataset:", true)

D.Dataset = Dataset
return D
