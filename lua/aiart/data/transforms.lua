--[[ aiart.data.transforms: the transforms of ai.data.transforms (one image, C x H x W or
H x W), and what datasets and the loader do with lists of them: flatten, apply, compile into
the C loader's augmentation specs.
]]
local ai = require "aiart"
local util = require "aiart.util"
local random = require "aiart.data.random"

local is_tensor, shape_str, check_opts, to_integer = util.is_tensor, util.shape_str, util.check_opts, util.to_integer
local error = util.error -- positions name the caller's line (see util.error)

local transforms = {}

local Transform = {}
Transform.__index = Transform
Transform.__name = "Transform"
Transform.__call = function(self, img, rng) return self:apply(img, rng or random.global_rng()) end
Transform.__tostring = function(self) return "Transform(" .. self.name .. ")" end

local function new_transform(name, apply, aug)
  return setmetatable({name = name, apply = apply, aug = aug}, Transform)
end

local function is_transform(v) return getmetatable(v) == Transform end

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

-- {a, b} as two integers >= min from a whole number or a pair of them, or nil
local function int_pair(v, min)
  local a, b
  if type(v) == "table" then
    if #v ~= 2 then return nil end
    a, b = to_integer(v[1]), to_integer(v[2])
  else
    a = to_integer(v)
    b = a
  end
  if a and b and a >= min and b >= min then return a, b end
  return nil
end

local function size_pair(fn, size)
  local h, w = int_pair(size, 1)
  if not h then error(fn .. ": size must be a positive integer or {height, width}", 3) end
  return h, w
end

--- transforms.random_crop(size, {padding=0}): zero padding on every side, then a random window
function transforms.random_crop(size, opts)
  local fn = "transforms.random_crop"
  local oh, ow = size_pair(fn, size)
  local o = check_opts(fn, opts, {padding = true})
  local pad = util.int(fn, "padding", o.padding or 0, 0)
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
  local my, mx = int_pair(max, 0)
  if not my then error(fn .. ": max must be a non-negative integer or {dy, dx}", 2) end
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
  if type(size) ~= "table" then size = select(1, size_pair(fn, size)) else size = {size_pair(fn, size)} end
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

util.strict_args(transforms, "transforms.")

return {transforms = transforms, Transform = Transform, new = new_transform, is_transform = is_transform,
        flatten = flatten_transforms, compile = compile, apply_list = apply_list, crop_fill = crop_fill}
