--[[ aiart.data.random: the random streams of ai.data: the global generator's, the per-sample
streams that the Lua path shares with the C loader (counter-based on seed, epoch and position),
and permutations from a private generator state.
]]
local ai = require "aiart"
local util = require "aiart.util"

local R = {}

-- ai._loader, the C loader: its batches and the per-sample uniforms that the Lua path shares
local function K()
  local k = rawget(ai, "_loader")
  if not k then util.error("aiart.data: the C loader ai._loader is missing (lai_open_data is not registered)", 2) end
  return k
end
R.c_loader = K

-- A seed drawn from the global generator (so it follows ai.manual_seed).
local function draw_seed() return ai.randint(0, 0x7fffffff, 1)[1]:item() end

-- A permutation of 0..n-1 (i64) from a private generator state {seed, 0}; the global state is
-- left as it was.
local function seeded_perm0(n, seed)
  local saved = ai.get_rng_state()
  ai.set_rng_state{seed = seed, offset = 0}
  local ok, p = pcall(ai.randperm, n)
  ai.set_rng_state(saved)
  if not ok then util.rethrow(p) end
  return p - 1
end
R.draw_seed = draw_seed
R.seeded_perm0 = seeded_perm0

--- data.global_rng() -> rng drawing from the global generator
function R.global_rng()
  return function() return ai.rand(1)[1]:item() end
end

--- data.sample_rng(seed, epoch, pos) -> the stream of the sample at 0-based position pos
function R.sample_rng(seed, epoch, pos)
  local fn = "data.sample_rng"
  seed, epoch, pos = util.int(fn, "seed", seed, nil), util.int(fn, "epoch", epoch, nil), util.int(fn, "pos", pos, 0)
  local uniform = K().uniform
  local k = -1
  return function()
    k = k + 1
    return uniform(seed, epoch, pos, k)
  end
end

return R
