--[[ aiart.data.loader: collate and the DataLoader of ai.data: epoch orders, shards, resumable
positions, and the two paths to a batch (the C prefetcher for tensor-backed datasets whose
transforms compile, ds:get + collate otherwise), which give the same batches.
]]
local ai = require "aiart"
local util = require "aiart.util"
local random = require "aiart.data.random"
local T = require "aiart.data.transforms"

local is_tensor, check_opts = util.is_tensor, util.check_opts
local error = util.error -- positions name the caller's line (see util.error)
local flatten_transforms, compile, apply_list = T.flatten, T.compile, T.apply_list
local seeded_perm0, draw_seed, sample_rng, mix64 = random.seeded_perm0, random.draw_seed, random.sample_rng, util.mix64

local function set(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

local M = {}

-- ================================================================ collate

--- data.collate(samples) -> one batch per field: samples[i] = {x, y, ...}; tensors are stacked,
-- integers become an i64 tensor, other numbers f32, booleans u8, tables are collated by key
function M.collate(samples)
  local n = #samples
  if n == 0 then error("collate: empty batch", 2) end
  local function field(values)
    local v1 = values[1]
    if is_tensor(v1) then return ai.stack(values, 1) end
    local t = type(v1)
    if t == "number" then
      local all_int = true
      -- the values' own types decide (a float 2.0 is data, not an argument)
      for _, v in ipairs(values) do if math.type(v) ~= "integer" then all_int = false break end end
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
DataLoader.__name = "DataLoader"

-- A loader is no list of batches: ipairs(loader) and pairs(loader) would run zero times (or
-- over nothing) without a word; they fail before the first batch, naming the loop that works.
local function not_a_sequence()
  error("DataLoader: a loader is not a list of batches (#loader counts them); loop over an epoch with " ..
    "for x, y in loader:iter() do ... end", 3)
end
DataLoader.__index = function(_, k)
  if type(k) == "number" then not_a_sequence() end
  return DataLoader[k]
end
DataLoader.__pairs = not_a_sequence

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
  local n = util.int(fn, "shard.world_size", shard.world_size, 1)
  local r = util.int(fn, "shard.rank", shard.rank)
  if r < 1 or r > n then error(("%s: shard.rank must be an integer in 1..%d, got %s"):format(fn, n, r), 3) end
  return r, n
end

--- data.DataLoader(ds, opts)
function M.DataLoader(ds, opts)
  local fn = "DataLoader"
  if type(ds) ~= "table" or type(ds.get) ~= "function" then
    error(fn .. ": expected a dataset (a table with get and a length)", 2)
  end
  local o = check_opts(fn, opts, LOADER_OPTS)
  local bs = util.int(fn, "batch_size", o.batch_size or 1, 1)
  if o.collate ~= nil and type(o.collate) ~= "function" then error(fn .. ": collate must be a function", 2) end
  local prefetch = o.prefetch
  if prefetch == nil or prefetch == true then prefetch = 3
  elseif prefetch == false then prefetch = 0
  elseif util.to_integer(prefetch) == nil or prefetch < 0 or prefetch > 16 then
    error(fn .. ": prefetch must be a boolean or a number of batches 0..16, got " .. tostring(prefetch), 2)
  else
    prefetch = util.to_integer(prefetch)
  end
  local rank, world = check_shard(fn, o.shard)
  local seed = o.seed
  if seed == nil then
    if world > 1 and o.shuffle then
      error(fn .. ": a sharded loader that shuffles needs seed= (the same on every rank), so that the ranks share one order", 2)
    end
    seed = draw_seed()
  else
    seed = util.int(fn, "seed", seed)
  end
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
  epoch = util.int("DataLoader:order", "epoch", epoch, nil)
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
  local ld = random.c_loader().new(src.data, src.labels, order, {
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
  local collate = self.collate or M.collate
  local list = self.transform_list
  local seed = self.seed
  local off, stride = self.rank - 1, self.world_size
  local function step()
    if k >= nb then return nil end
    local first = k * bs
    local last = math.min(first + bs, n) - 1
    local samples = {}
    for p = first, last do
      local rng = sample_rng(seed, epoch, off + p * stride)
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
  local function int(k) return util.int(fn, "'" .. k .. "'", sd[k]) end
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


-- Arguments beyond a function's or a method's parameters are errors (loader:iter(epoch), ...).
util.strict_args(M, "data.")
util.strict_args(DataLoader, "DataLoader:", true)

M.DataLoader_class = DataLoader
return M
