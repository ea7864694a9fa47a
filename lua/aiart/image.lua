--[[ aiart.image (ai.image): images as tensors.

  ai.image.load(path)                     -> f32 C x H x W in [0, 1] (PNG; C = 1, 2, 3 or 4)
  ai.image.save(path, t)                  t: H x W, C x H x W (C = 1, 2, 3, 4) or 1 x C x H x W;
                                          floats are clamped to [0, 1]; u8 is taken as 0..255;
                                          PNG: a path ending in another extension (.jpg) is
                                          refused rather than given PNG bytes
  ai.image.grid(batch, {nrow=8, padding=2, normalize=false, range={lo, hi}, scale_each=false,
                pad_value=0})             -> C x H' x W' (torchvision's make_grid, except that
                                          1-channel images stay 1-channel; batch is N x C x H x W,
                                          a list of C x H x W, or one C x H x W / H x W image)
  ai.image.resize(t, {size=, mode="bilinear"|"area"|"nearest"})
                                          size: {h, w}, or a number for the shorter side
  ai.image.show(t)                        a hook for notebooks: calls ai.image.display_hook(png
                                          bytes, t) when set, else saves a temporary PNG and
                                          prints its path (returned)
]]
local ai = require "aiart"
local util = require "aiart.util"

local image = {}

local is_tensor = util.is_tensor
local error = util.error -- positions name the caller's line (see util.error)

local io_lib = util.io_lib

local function check_tensor(fn, t, what)
  if not is_tensor(t) then error(("%s: %s must be a tensor, got %s"):format(fn, what or "argument", type(t)), 3) end
  return t
end

local shape_str = util.shape_str

--- image.load(path) -> f32 C x H x W in [0, 1]
function image.load(path)
  if type(path) ~= "string" then error("image.load: path must be a string, got " .. type(path), 2) end
  return io_lib("image.load").load_png(path)
end

-- A detached tensor ready for the PNG writer: H x W or C x H x W.
local function as_image(fn, t)
  check_tensor(fn, t, "image")
  t = t:detach() -- shares the storage; drops any graph
  if t.ndim == 4 and t.shape[1] == 1 then t = t[1] end
  if t.ndim == 2 then return t end
  if t.ndim == 3 and t.shape[1] >= 1 and t.shape[1] <= 4 then return t end
  if t.ndim == 4 then
    error(("%s: got a batch of %d images (%s); make one image with ai.image.grid"):format(fn, t.shape[1], shape_str(t)), 3)
  end
  error(("%s: expected H x W or C x H x W with C in 1..4, got %s"):format(fn, shape_str(t)), 3)
end

-- The formats image.save writes, by file extension (lower case).
local WRITES = {png = true}

--- image.save(path, t): PNG, 8 bits per sample
function image.save(path, t)
  if type(path) ~= "string" then error("image.save: path must be a string, got " .. type(path), 2) end
  local ext = path:match("%.([^./]+)$")
  if ext and not WRITES[ext:lower()] then
    local names = {}
    for k in pairs(WRITES) do names[#names + 1] = "." .. k end
    table.sort(names)
    error(("image.save: cannot write '.%s' files (%s): it writes %s"):format(ext, path, table.concat(names, ", ")), 2)
  end
  t = as_image("image.save", t)
  if t.dtype == "f64" or t.dtype == "i64" then t = t:float() end
  io_lib("image.save").save_png(path, t)
  return path
end

--- image.png_bytes(t) -> the PNG file as a string
function image.png_bytes(t)
  t = as_image("image.png_bytes", t)
  if t.dtype == "f64" or t.dtype == "i64" then t = t:float() end
  return io_lib("image.png_bytes").png_bytes(t)
end

local function opt(o, k, def)
  local v = o[k]
  if v == nil then return def end
  return v
end

local check_opts = util.check_opts

local GRID_OPTS = {nrow = true, padding = true, normalize = true, range = true, value_range = true,
                   scale_each = true, pad_value = true}

-- (t - lo) / (hi - lo) after clamping, as torchvision's norm_ip
local function norm_range(t, lo, hi)
  t = t:clamp(lo, hi)
  return (t - lo) / math.max(hi - lo, 1e-5)
end

--- image.grid(batch, opts) -> C x H' x W': the images in rows of nrow, padding pixels apart
function image.grid(batch, opts)
  local fn = "image.grid"
  local o = check_opts(fn, opts, GRID_OPTS)
  if type(batch) == "table" and not is_tensor(batch) then
    if #batch == 0 then error(fn .. ": empty list of images", 2) end
    for i, t in ipairs(batch) do check_tensor(fn, t, "image " .. i) end
    batch = ai.stack(batch, 1)
  end
  check_tensor(fn, batch, "batch")
  local t = batch
  t = t:detach() -- shares the storage; drops any graph
  if t.ndim == 2 then t = t:unsqueeze(1) end -- H x W: one gray image
  if t.ndim == 3 then t = t:unsqueeze(1) end -- C x H x W: one image (as torchvision)
  if t.ndim ~= 4 then error(("%s: expected N x C x H x W, got %s"):format(fn, shape_str(batch)), 2) end
  if t.dtype ~= "f32" then
    t = t.dtype == "u8" and t:float() / 255 or t:float()
  end
  local nrow = opt(o, "nrow", 8)
  local padding = opt(o, "padding", 2)
  local pad_value = opt(o, "pad_value", 0)
  nrow = util.int(fn, "nrow", nrow, 1)
  padding = util.int(fn, "padding", padding, 0)
  local range = o.range or o.value_range
  if o.normalize then
    if range ~= nil and (type(range) ~= "table" or #range ~= 2) then
      error(fn .. ": range must be {lo, hi}", 2)
    end
    if o.scale_each then
      local parts = {}
      for i = 1, t.shape[1] do
        local img = t[i]
        local lo, hi = range and range[1] or img:min():item(), range and range[2] or img:max():item()
        parts[i] = norm_range(img, lo, hi)
      end
      t = ai.stack(parts, 1)
    else
      local lo, hi = range and range[1] or t:min():item(), range and range[2] or t:max():item()
      t = norm_range(t, lo, hi)
    end
  end
  local n, c, h, w = t.shape[1], t.shape[2], t.shape[3], t.shape[4]
  local xmaps = math.min(nrow, n)
  local ymaps = (n + xmaps - 1) // xmaps
  local H, W = h + padding, w + padding
  local grid = ai.full({c, ymaps * H + padding, xmaps * W + padding}, pad_value)
  local k = 1
  for y = 0, ymaps - 1 do
    for x = 0, xmaps - 1 do
      if k > n then break end
      local top, left = y * H + padding, x * W + padding
      grid[{{}, {top + 1, top + h}, {left + 1, left + w}}] = t[k]
      k = k + 1
    end
  end
  return grid
end

local RESIZE_OPTS = {size = true, mode = true, align_corners = true}

-- The target size of an h x w image for `size` (a number: the shorter side; or {h, w}).
local function target_size(fn, size, h, w)
  local s = util.to_integer(size)
  if s then
    if s < 1 then error(fn .. ": size must be positive", 3) end
    if h <= w then return s, math.max(1, math.floor(w * s / h + 0.5)) end
    return math.max(1, math.floor(h * s / w + 0.5)), s
  end
  if type(size) == "table" and #size == 2 then
    local a, b = util.to_integer(size[1]), util.to_integer(size[2])
    if a and b and a > 0 and b > 0 then return a, b end
  end
  error(fn .. ": size must be a positive integer (the shorter side) or {height, width}", 3)
end
image.target_size = function(size, h, w) return target_size("image.target_size", size, h, w) end

--- image.resize(t, {size=, mode="bilinear"}): t is H x W, C x H x W or N x C x H x W
function image.resize(t, opts)
  local fn = "image.resize"
  check_tensor(fn, t, "image")
  local o = check_opts(fn, opts, RESIZE_OPTS)
  if o.size == nil then error(fn .. ": option 'size' is required", 2) end
  local nd = t.ndim
  if nd < 2 or nd > 4 then error(("%s: expected H x W, C x H x W or N x C x H x W, got %s"):format(fn, shape_str(t)), 2) end
  local x = t
  if x.dtype ~= "f32" and x.dtype ~= "f64" then x = x:float() end
  while x.ndim < 4 do x = x:unsqueeze(1) end
  local h, w = x.shape[3], x.shape[4]
  local oh, ow = target_size(fn, o.size, h, w)
  local mode = o.mode or "bilinear"
  local r
  if oh == h and ow == w then
    r = x
  elseif mode == "bilinear" or mode == "nearest" then
    r = ai.upsample(x, {size = {oh, ow}, mode = mode, align_corners = o.align_corners or false})
  elseif mode == "area" then
    r = ai.adaptive_avg_pool2d(x, {oh, ow})
  else
    error(fn .. ": mode must be 'bilinear', 'area' or 'nearest', got '" .. tostring(mode) .. "'", 2)
  end
  for _ = nd, 3 do r = r[1] end
  return r
end

--- image.show(t[, opts]): hands PNG bytes to image.display_hook, or writes a temporary file
function image.show(t, opts)
  check_tensor("image.show", t, "image")
  util.check_opts("image.show", opts, GRID_OPTS)
  if t.ndim == 4 and t.shape[1] > 1 then t = image.grid(t, opts) end
  local hook = rawget(image, "display_hook")
  if hook then
    hook(image.png_bytes(t), t)
    return nil
  end
  local path = os.tmpname()
  os.remove(path)
  path = path .. ".png"
  image.save(path, t)
  print(path)
  return path
end

return util.strict_args(image, "image.")
