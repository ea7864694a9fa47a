--[[ aiart.nn: ai.nn, the neural-network library: the Module base class, layers, containers,
losses, weight initialisation (nn.init), the functional forms (nn.F, also ai.F) and
nn.utils (gradient clipping). Each family lives in its own file under lua/aiart/nn/.

    local nn = ai.nn
    local net = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    print(net)                       -- the module tree, as PyTorch prints it
    local logits = net(x)            -- calling a module runs its forward
    for name, p in net:named_parameters() do print(name, p.shape) end   -- "0.weight", ...
]]
local module = require "aiart.nn.module"

local nn = {
  Module = module.Module,
  Parameter = module.Parameter,
  is_parameter = module.is_parameter,
  is_module = module.is_module,
  isinstance = module.isinstance,
  init = require "aiart.nn.weight_init",
  F = require "aiart.nn.functional",
  utils = require "aiart.nn.utils",
}
nn.functional = nn.F

for _, family in ipairs({"aiart.nn.layers", "aiart.nn.containers", "aiart.nn.loss"}) do
  for name, cls in pairs(require(family)) do nn[name] = cls end
end

-- The functional forms are reachable from nn as well (nn.mse_loss is F.mse_loss), as Torch7
-- users and the help entries expect; F is their home.
require("aiart.util").strict_args(nn, "nn.")
return setmetatable(nn, {__index = nn.F})
