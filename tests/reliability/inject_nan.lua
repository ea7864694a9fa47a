-- tests/reliability/inject_nan.lua: a NaN injected into an unmodified training script, for the
-- tests of its on_nan guard. Loaded before the script through LUA_INIT:
--   LUA_INIT=@tests/reliability/inject_nan.lua AIART_NAN_ITEM=5 aiart-lua scripts/train_gan.lua ...
-- makes the 5th :item() of a tensor that has a grad_fn (a loss being read) return NaN, as a
-- diverging run would. train_gan.lua reads two losses per step (D, then G), train_ddpm.lua one.
local ai = require "aiart"
local n = tonumber(os.getenv("AIART_NAN_ITEM") or "")
if n then
  local item, count = ai.Tensor.item, 0
  ai.Tensor.item = function(self, ...)
    local v = item(self, ...)
    if self.grad_fn then
      count = count + 1
      if count == n then return 0 / 0 end
    end
    return v
  end
end
