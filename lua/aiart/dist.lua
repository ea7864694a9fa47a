--[[ aiart.dist (ai.dist): data-parallel training over MPI (Open MPI).

Every rank runs the same script: `mpirun -np 2 aiart-lua train.lua`. Without mpirun (or in a
build without MPI) the module runs in single-process mode: rank 1 of 1, and every collective
is the identity, so the same script runs either way. Ranks are 1-based.

  dist.init([{threads=}])      -> rank, world_size. Under mpirun: MPI_Init and, unless
                                  OMP_NUM_THREADS or threads= says otherwise, each rank gets
                                  its share of the host's cores. Idempotent.
  dist.rank()  dist.world_size()  dist.local_rank()  dist.local_size()  (ranks on this host)
  dist.is_main()               rank 1: the one that writes files and prints
  dist.initialized()  dist.available() (built with MPI)  dist.hint (how to enable it)
  dist.launched_size()         > 0 under an MPI launcher (its world size), -1 size unknown, 0 not
  dist.barrier()
  dist.broadcast(t[, {src=1}])           t in place from rank src; returns t
  dist.all_reduce(t[, {op="sum"}])       in place: "sum", "mean", "max" or "min"; returns t.
                                         A number gives the reduced number.
  dist.all_gather(t)                     -> world_size x t's shape; out[r] is rank r's t
  dist.broadcast_string(s[, {src=1}])    -> rank src's string on every rank
  dist.broadcast_params(module or list[, {src=1}])  parameters and buffers, one call per dtype
  dist.sync_grads(params[, {values=, bucket_mb=}])  -> means of values: every .grad averaged
  dist.DataParallel(module[, {bucket_mb=1, overlap=true, broadcast=true}]) -> ddp
      ddp:backward(loss[, values]) -> means   loss:backward() with the gradient buckets reduced
                                              while backward goes on (overlap=false: after it)
      ddp:sync_grads([values]) -> means       after a backward of your own
      ddp(...) calls the module; ddp.module; ddp:info() the buckets
    values: a table of numbers (or 1-element tensors) such as {loss = l}; they travel in the
    gradients' last bucket and come back averaged over the ranks, under the same keys, so
    that every rank logs and decides (NaN guard, time limit) on the same numbers.
  dist.split_rng()             gives each rank its own random stream (rank 1 keeps the current
                               one): call it after building the model, and after a resume
  dist.main_only(fn, ...)      fn(...) on rank 1 only (nil elsewhere), with the random
                               generator's state put back afterwards, so that rank 1's extra
                               work (samples) leaves the training streams in step
  dist.load_checkpoint(path, targets)   ai.checkpoint.load on every rank from rank 1's file
                                        (no shared file system needed)
  dist.finalize()              MPI_Finalize (also done at exit; an error exit aborts the job)
  dist.wtime()                 seconds of a monotonic clock (ai.clock)

Gradients are averaged with one all_reduce per bucket (about bucket_mb each; the DDPM UNet's
522,145 gradients make 2), started from the gradient-ready hooks of the backward engine as
soon as a bucket is complete, on a communication thread.
]]
local ai = require "aiart"
local util = require "aiart.util"

local dist = {}

local C = rawget(ai, "_dist")
local is_tensor = util.is_tensor
local error = util.error -- positions name the caller's line (see util.error)

local S = {initialized = false, finalized = false, rank = 1, size = 1, local_rank = 1, local_size = 1}

dist.hint = C.hint

--- dist.available() -> true when this aiart-lua is built with MPI (dist.hint: how to enable it)
function dist.available() return C.available() end
--- dist.launched_size() -> the world size announced by mpirun (or srun) in the environment;
-- -1 when launched with an unknown size, 0 when not launched by an MPI launcher
function dist.launched_size() return C.launched_size() end
--- dist.initialized() -> whether dist.init() has run (in either mode)
function dist.initialized() return S.initialized end
--- dist.rank() -> this process's rank, 1..world_size (1 in single-process mode)
function dist.rank() return S.rank end
--- dist.world_size() -> the number of ranks (1 in single-process mode)
function dist.world_size() return S.size end
--- dist.local_rank() -> the rank among the ranks on this host, 1..local_size
function dist.local_rank() return S.local_rank end
--- dist.local_size() -> the number of ranks on this host
function dist.local_size() return S.local_size end
--- dist.is_main() -> true on rank 1, the rank that writes files and prints
function dist.is_main() return S.rank == 1 end
--- dist.wtime() -> seconds of a monotonic clock (MPI's name for ai.clock)
function dist.wtime() return ai.clock() end
--- dist.comm_seconds() -> seconds the communication thread has spent in MPI so far
function dist.comm_seconds() return C.comm_seconds() end
--- dist.library() -> the MPI library's version ("" without MPI)
function dist.library() return C.library() end

local check_opts = util.check_opts

--- dist.init([{threads=}]) -> rank, world_size
function dist.init(opts)
  local o = check_opts("dist.init", opts, {threads = true})
  if S.finalized then error("dist.init: MPI was finalized; it cannot be initialised again", 2) end
  if S.initialized then return S.rank, S.size end
  local launched = C.launched_size()
  if launched == 0 or (launched == 1 and not C.available()) then
    S.initialized = true -- single-process mode
    return S.rank, S.size
  end
  if not C.available() then
    error(("dist.init: launched by an MPI launcher with %s processes, but %s"):format(
      launched > 0 and tostring(launched) or "several", C.hint), 2)
  end
  local ok, rank, size, lrank, lsize = pcall(C.init)
  if not ok then util.rethrow(rank) end
  S.initialized, S.rank, S.size, S.local_rank, S.local_size, S.mpi = true, rank, size, lrank, lsize, true
  local threads = o.threads
  if threads ~= nil then
    ai.set_num_threads(util.int("dist.init", "threads", threads, 1))
  elseif not os.getenv("OMP_NUM_THREADS") then
    -- mpirun binds each rank to its cores when there are enough (then those are ours);
    -- otherwise the host's cores are shared among its ranks
    local mine, online = C.cpus()
    ai.set_num_threads(mine < online and mine or math.max(1, online // lsize))
  end
  return S.rank, S.size
end

--- dist.finalize(): every rank must call it (or simply exit normally)
function dist.finalize()
  if S.mpi and not S.finalized then C.finalize() end
  if S.initialized then S.finalized = true end
end

local function multi(fn)
  if S.finalized and S.mpi then error(fn .. ": MPI was finalized", 3) end
  return S.mpi and S.size > 1
end

local OPS = {sum = true, mean = true, max = true, min = true}

local function src_rank(fn, opts)
  local o = check_opts(fn, opts, {src = true})
  local src = util.int(fn, "src", o.src or 1)
  if src < 1 or src > S.size then error(("%s: src must be a rank in 1..%d, got %s"):format(fn, S.size, src), 3) end
  return src
end

--- dist.barrier(): returns when every rank has called it
function dist.barrier()
  if multi("dist.barrier") then C.barrier() end
end

--- dist.broadcast(t[, {src=1}]) -> t, in place
function dist.broadcast(t, opts)
  if not is_tensor(t) then error("dist.broadcast: expected a tensor, got " .. type(t), 2) end
  local src = src_rank("dist.broadcast", opts)
  if multi("dist.broadcast") then C.broadcast(t, src) end
  return t
end

--- dist.all_reduce(t[, {op="sum"}]) -> t reduced in place (or the reduced number)
function dist.all_reduce(t, opts)
  local fn = "dist.all_reduce"
  local o = check_opts(fn, opts, {op = true})
  local op = o.op or "sum"
  if not OPS[op] then error(("%s: op must be sum, mean, max or min, got %s"):format(fn, tostring(op)), 2) end
  if type(t) == "number" then
    if not multi(fn) then return t end
    local int = math.type(t) == "integer" and op ~= "mean"
    local x = ai.tensor({t}, {dtype = int and "i64" or "f64"})
    C.all_reduce(x, op)
    local v = x[1]:item()
    return int and math.tointeger(v) or v
  end
  if not is_tensor(t) then error(fn .. ": expected a tensor or a number, got " .. type(t), 2) end
  if op == "mean" and t.dtype ~= "f32" and t.dtype ~= "f64" then
    error(fn .. ": op 'mean' needs a f32 or f64 tensor, got " .. t.dtype, 2)
  end
  if multi(fn) then
    local ok, err = pcall(C.all_reduce, t, op)
    if not ok then util.rethrow(err) end
  end
  return t
end

--- dist.all_gather(t) -> a new tensor of world_size x t's shape
function dist.all_gather(t)
  if not is_tensor(t) then error("dist.all_gather: expected a tensor, got " .. type(t), 2) end
  if multi("dist.all_gather") then
    local ok, out = pcall(C.all_gather, t)
    if not ok then util.rethrow(out) end
    return out
  end
  return ai.stack({t})
end

--- dist.broadcast_string(s[, {src=1}]) -> s of rank src
function dist.broadcast_string(s, opts)
  local src = src_rank("dist.broadcast_string", opts)
  if S.rank == src and type(s) ~= "string" then
    error("dist.broadcast_string: expected a string on rank " .. src .. ", got " .. type(s), 2)
  end
  if multi("dist.broadcast_string") then return C.broadcast_string(s, src) end
  return s
end

-- The tensors of a module (its parameters, and with buffers its buffers too) or of a list.
local function tensors_of(fn, m, buffers)
  if type(m) ~= "table" then error(fn .. ": expected a module or a list of tensors, got " .. type(m), 3) end
  local list = {}
  if type(m.parameters) == "function" then
    for _, p in ipairs(m:parameters()) do list[#list + 1] = p end
    if buffers and type(m.buffers) == "function" then
      for _, b in ipairs(m:buffers()) do list[#list + 1] = b end
    end
  else
    for i, t in ipairs(m) do
      if not is_tensor(t) then error(("%s: element %d is not a tensor (got %s)"):format(fn, i, type(t)), 3) end
      list[i] = t
    end
  end
  return list
end

--- dist.broadcast_params(module or list[, {src=1}]): rank src's values on every rank
function dist.broadcast_params(m, opts)
  local fn = "dist.broadcast_params"
  local list = tensors_of(fn, m, true)
  local src = src_rank(fn, opts)
  if not multi(fn) then return m end
  local by_dtype, order = {}, {}
  local seen = {}
  for _, t in ipairs(list) do
    if not seen[t] then
      seen[t] = true
      if not by_dtype[t.dtype] then by_dtype[t.dtype] = {}; order[#order + 1] = t.dtype end
      table.insert(by_dtype[t.dtype], t)
    end
  end
  ai.no_grad(function()
    for _, dt in ipairs(order) do
      local ts = by_dtype[dt]
      local flat = {}
      for i, t in ipairs(ts) do flat[i] = t:reshape(-1) end
      local all = ai.cat(flat, 1)
      C.broadcast(all, src)
      local off = 1
      for _, t in ipairs(ts) do
        local n = t:numel()
        if n > 0 then t:copy_(all:narrow(1, off, n):view(t.shape)) end
        off = off + n
      end
    end
  end)
  return m
end

-- values {name = number or 1-element tensor} -> sorted keys, list of numbers
local function pack(fn, values)
  if values == nil then return nil, nil end
  if type(values) ~= "table" or is_tensor(values) then error(fn .. ": values must be a table of numbers", 3) end
  local keys = {}
  for k, v in pairs(values) do
    if is_tensor(v) then
      if v:numel() ~= 1 then error(("%s: value '%s' is a tensor of %d elements; expected a number"):format(fn, tostring(k), v:numel()), 3) end
    elseif type(v) ~= "number" then
      error(("%s: value '%s' must be a number, got %s"):format(fn, tostring(k), type(v)), 3)
    end
    keys[#keys + 1] = k
  end
  if #keys > 32 then error(fn .. ": at most 32 values", 3) end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local list = {}
  for i, k in ipairs(keys) do
    local v = values[k]
    list[i] = is_tensor(v) and v:item() or v
  end
  return keys, list
end

local function unpack_means(keys, means)
  if not keys then return nil end
  local out = {}
  for i, k in ipairs(keys) do out[k] = means[i] end
  return out
end

local BUCKET_OPTS = {bucket_mb = true, overlap = true, broadcast = true}

local function bucket_bytes(fn, o)
  local mb = o.bucket_mb or 1
  if type(mb) ~= "number" or mb <= 0 then error(fn .. ": bucket_mb must be a positive number", 3) end
  return math.max(1, math.floor(mb * 1048576))
end

--- dist.sync_grads(params[, {values=, bucket_mb=1}]) -> means of values
function dist.sync_grads(params, opts)
  local fn = "dist.sync_grads"
  local o = check_opts(fn, opts, {values = true, bucket_mb = true})
  local list = tensors_of(fn, params)
  local keys, vals = pack(fn, o.values)
  local bytes = bucket_bytes(fn, o)
  if not multi(fn) then return unpack_means(keys, vals) end
  local b <close> = C.buckets(list, bytes, false)
  b:start(vals)
  return unpack_means(keys, b:finish())
end

-- ---------------------------------------------------------------- DataParallel

local DataParallel = {}
DataParallel.__index = DataParallel
DataParallel.__name = "DataParallel"
dist.DataParallel_class = DataParallel

function DataParallel.__call(self, ...) return self.module(...) end

function DataParallel.__tostring(self)
  local i = self:info()
  return ("DataParallel(rank %d of %d, %d parameters, %d buckets, overlap=%s)"):format(S.rank, S.size, i.parameters,
    i.buckets, tostring(self.overlap))
end

--- dist.DataParallel(module[, {bucket_mb=1, overlap=true, broadcast=true}]) -> ddp
function dist.DataParallel(module, opts)
  local fn = "DataParallel"
  local o = check_opts(fn, opts, BUCKET_OPTS)
  local params = tensors_of(fn, module)
  local bytes = bucket_bytes(fn, o)
  local self = setmetatable({module = module, params = params, overlap = o.overlap ~= false}, DataParallel)
  if multi(fn) then
    if o.broadcast ~= false then dist.broadcast_params(module) end
    local ok, b = pcall(C.buckets, params, bytes, true)
    if not ok then util.rethrow(b) end
    self._buckets = b
  end
  return self
end

--- ddp:backward(loss[, values]) -> means of values: loss:backward(), gradients averaged
function DataParallel:backward(loss, values)
  local fn = "DataParallel:backward"
  if not is_tensor(loss) then error(fn .. ": expected a loss tensor, got " .. type(loss), 2) end
  local keys, vals = pack(fn, values)
  local b = self._buckets
  if not b then
    loss:backward()
    return unpack_means(keys, vals)
  end
  if not self.overlap then
    loss:backward()
    b:start(vals)
    return unpack_means(keys, b:finish())
  end
  b:start(vals)
  local ok, err = pcall(loss.backward, loss)
  local ok2, means = pcall(b.finish, b) -- the other ranks expect every bucket
  if not ok then util.rethrow(err) end
  if not ok2 then util.rethrow(means) end
  return unpack_means(keys, means)
end

--- ddp:sync_grads([values]) -> means of values, after a backward of your own
function DataParallel:sync_grads(values)
  local keys, vals = pack("DataParallel:sync_grads", values)
  local b = self._buckets
  if not b then return unpack_means(keys, vals) end
  b:start(vals)
  local ok, means = pcall(b.finish, b)
  if not ok then util.rethrow(means) end
  return unpack_means(keys, means)
end

--- ddp:info() -> {buckets=, parameters=, elements=, bytes={...}, overlapped=}: overlapped counts
-- the buckets of the last step whose all_reduce started while backward was still running
function DataParallel:info()
  if self._buckets then return self._buckets:info() end
  local n = 0
  for _, p in ipairs(self.params) do n = n + p:numel() end
  return {buckets = 0, parameters = #self.params, elements = n, bytes = {}, overlapped = 0}
end

-- ---------------------------------------------------------------- randomness and files

local mix64 = util.mix64

--- dist.split_rng(): rank r > 1 moves to its own stream {hash(seed, r), same offset}. As all
-- ranks draw the same amounts, rank 1's state (the one a checkpoint holds) determines all.
function dist.split_rng()
  if S.rank == 1 then return end
  local st = ai.get_rng_state()
  ai.set_rng_state{seed = mix64(st.seed ~ mix64(S.rank)), offset = st.offset}
end

--- dist.main_only(fn, ...) -> fn's results on rank 1, nil elsewhere; the generator is restored
function dist.main_only(fn, ...)
  if type(fn) ~= "function" then error("dist.main_only: expected a function, got " .. type(fn), 2) end
  if S.rank ~= 1 then return nil end
  local st = ai.get_rng_state()
  local r = table.pack(pcall(fn, ...))
  ai.set_rng_state(st)
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

--- dist.load_checkpoint(path, targets) -> info, as ai.checkpoint.load, on every rank from the
-- bytes of rank 1's file
function dist.load_checkpoint(path, targets)
  local fn = "dist.load_checkpoint"
  if type(path) ~= "string" then error(fn .. ": path must be a string, got " .. type(path), 2) end
  if not multi(fn) then
    local f = io.open(path, "rb")
    if not f then error(("%s: no checkpoint at %s"):format(fn, path), 2) end
    f:close()
    local ok, info = pcall(ai.checkpoint.load, path, targets)
    if not ok then util.rethrow(info) end
    return info
  end
  local payload
  if S.rank == 1 then
    local f = io.open(path, "rb")
    payload = "0"
    if f then payload = "1" .. f:read("a"); f:close() end
  end
  payload = C.broadcast_string(payload, 1)
  if payload:sub(1, 1) ~= "1" then error(("%s: no checkpoint at %s (on rank 1)"):format(fn, path), 2) end
  local file = path
  if S.rank ~= 1 then
    file = os.tmpname()
    local f = assert(io.open(file, "wb"))
    f:write(payload:sub(2))
    f:close()
  end
  payload = nil -- luacheck: ignore
  local ok, info = pcall(ai.checkpoint.load, file, targets)
  if file ~= path then os.remove(file) end
  if not ok then util.rethrow(info) end
  return info
end

util.strict_args(dist, "dist.")
util.strict_args(DataParallel, "DataParallel:", true)

return dist
