-- tests/test_optim.lua: ai.optim: each optimizer against its update rule written out by hand
-- (PyTorch's formulas, element by element in plain Lua numbers), parameter groups, state
-- dicts, L-BFGS, the fused kernels' checks, and EMA.
local T = require "helper"
local ai = require "aiart"
local nn, optim = ai.nn, ai.optim

local function t64(v) return ai.tensor(v, {dtype = "f64"}) end

-- The test problem: loss = sum(a * p^2 / 2 + b * p), so grad = a * p + b.
local P0, A, B = {0.5, -1.5, 2.0}, {1.0, 3.0, 0.5}, {0.2, -0.1, 1.0}

-- Runs `steps` optimizer steps on the test problem; returns the parameter as a list.
local function run(make, steps, dtype)
  local p = ai.tensor(P0, {dtype = dtype or "f64", requires_grad = true})
  local opt = make({p})
  local a, b = ai.tensor(A, {dtype = p.dtype}), ai.tensor(B, {dtype = p.dtype})
  for _ = 1, steps do
    opt:zero_grad()
    local loss = ((a * p * p) * 0.5 + b * p):sum()
    loss:backward()
    opt:step()
  end
  return p:tolist(), opt
end

-- The reference: update(i, p, g, s, t) applies one step to element i (state table s, step t).
local function reference(steps, update)
  local p, state = {table.unpack(P0)}, {{}, {}, {}}
  for t = 1, steps do
    for i = 1, #p do p[i] = update(p[i], A[i] * p[i] + B[i], state[i], t) end
  end
  return p
end

------------------------------------------------------------------------------------------ SGD

local function sgd_rule(o)
  return function(p, g, s, t)
    if o.maximize then g = -g end
    g = g + (o.weight_decay or 0) * p
    local mom = o.momentum or 0
    if mom ~= 0 then
      if t == 1 then s.buf = g else s.buf = mom * s.buf + (1 - (o.dampening or 0)) * g end
      if o.nesterov then g = g + mom * s.buf else g = s.buf end
    end
    return p - o.lr * g
  end
end

T.test("SGD: plain, momentum, dampening, nesterov, weight decay, maximize", function()
  local cases = {
    {lr = 0.1},
    {lr = 0.1, momentum = 0.9},
    {lr = 0.05, momentum = 0.9, dampening = 0.3, weight_decay = 0.01},
    {lr = 0.05, momentum = 0.8, nesterov = true, weight_decay = 0.1},
    {lr = 0.02, momentum = 0.5, maximize = true},
  }
  for _, o in ipairs(cases) do
    local got = run(function(ps) return optim.SGD(ps, o) end, 6)
    T.near(got, reference(6, sgd_rule(o)), 1e-12)
  end
end)

------------------------------------------------------------------------------------------ Adam

local function adam_rule(o)
  local b1, b2 = table.unpack(o.betas or {0.9, 0.999})
  local eps, wd = o.eps or 1e-8, o.weight_decay or 0
  return function(p, g, s, t)
    if o.maximize then g = -g end
    if o.decoupled then p = p * (1 - o.lr * wd) else g = g + wd * p end
    s.m = b1 * (s.m or 0) + (1 - b1) * g
    s.v = b2 * (s.v or 0) + (1 - b2) * g * g
    local v = s.v
    if o.amsgrad then s.vmax = math.max(s.vmax or 0, s.v); v = s.vmax end
    local denom = math.sqrt(v) / math.sqrt(1 - b2 ^ t) + eps
    return p - o.lr / (1 - b1 ^ t) * s.m / denom
  end
end

T.test("Adam: defaults, betas, L2 weight decay, amsgrad, maximize", function()
  local cases = {
    {lr = 0.1},
    {lr = 0.05, betas = {0.5, 0.999}},
    {lr = 0.05, weight_decay = 0.1, eps = 1e-6},
    {lr = 0.1, amsgrad = true, betas = {0.9, 0.9}},
    {lr = 0.01, maximize = true},
  }
  for _, o in ipairs(cases) do
    local got = run(function(ps) return optim.Adam(ps, o) end, 8)
    T.near(got, reference(8, adam_rule(o)), 1e-12)
  end
end)

T.test("AdamW: decoupled weight decay (default 1e-2)", function()
  for _, o in ipairs({{lr = 0.1}, {lr = 0.05, weight_decay = 0.5, amsgrad = true}}) do
    local got, opt = run(function(ps) return optim.AdamW(ps, o) end, 8)
    local ref = {lr = o.lr, weight_decay = o.weight_decay or 1e-2, amsgrad = o.amsgrad, decoupled = true}
    T.near(got, reference(8, adam_rule(ref)), 1e-12)
    T.eq(opt.param_groups[1].weight_decay, o.weight_decay or 1e-2)
  end
end)

--------------------------------------------------------------------------------------- RMSprop

local function rmsprop_rule(o)
  local alpha, eps, mom = o.alpha or 0.99, o.eps or 1e-8, o.momentum or 0
  return function(p, g, s, t)
    if o.maximize then g = -g end
    g = g + (o.weight_decay or 0) * p
    s.sq = alpha * (s.sq or 0) + (1 - alpha) * g * g
    local avg
    if o.centered then
      s.ga = alpha * (s.ga or 0) + (1 - alpha) * g
      avg = math.sqrt(s.sq - s.ga * s.ga) + eps
    else
      avg = math.sqrt(s.sq) + eps
    end
    if mom > 0 then
      s.buf = mom * (s.buf or 0) + g / avg
      return p - o.lr * s.buf
    end
    return p - o.lr * g / avg
  end
end

T.test("RMSprop: plain, centered, momentum, weight decay", function()
  local cases = {
    {lr = 0.01},
    {lr = 0.01, alpha = 0.9, centered = true},
    {lr = 0.005, momentum = 0.9, weight_decay = 0.1},
    {lr = 0.005, momentum = 0.5, centered = true, maximize = true},
  }
  for _, o in ipairs(cases) do
    local got = run(function(ps) return optim.RMSprop(ps, o) end, 7)
    T.near(got, reference(7, rmsprop_rule(o)), 1e-12)
  end
end)

--------------------------------------------------------------------------------------- Adagrad

local function adagrad_rule(o)
  local eps = o.eps or 1e-10
  return function(p, g, s, t)
    if o.maximize then g = -g end
    g = g + (o.weight_decay or 0) * p
    s.sum = (s.sum or o.initial_accumulator_value or 0) + g * g
    local clr = o.lr / (1 + (t - 1) * (o.lr_decay or 0))
    return p - clr * g / (math.sqrt(s.sum) + eps)
  end
end

T.test("Adagrad: lr decay, weight decay, initial accumulator", function()
  local cases = {{lr = 0.1}, {lr = 0.5, lr_decay = 0.1, weight_decay = 0.05, initial_accumulator_value = 0.3}}
  for _, o in ipairs(cases) do
    local got, opt = run(function(ps) return optim.Adagrad(ps, o) end, 7)
    T.near(got, reference(7, adagrad_rule(o)), 1e-12)
    T.eq(opt:state_dict().state[1].step, 7)
  end
end)

T.test("optimizers: f32 parameters follow the f64 sequence; large tensors (threaded path) too", function()
  local makers = {
    function(ps) return optim.SGD(ps, {lr = 0.1, momentum = 0.9}) end,
    function(ps) return optim.Adam(ps, {lr = 0.1}) end,
    function(ps) return optim.RMSprop(ps, {lr = 0.01, centered = true, momentum = 0.5}) end,
    function(ps) return optim.Adagrad(ps, {lr = 0.1}) end,
  }
  for _, make in ipairs(makers) do T.near(run(make, 5, "f32"), run(make, 5, "f64"), 1e-5) end
  -- 100000 elements: the kernel runs on several threads; compare with tensor arithmetic
  ai.manual_seed(9)
  local n = 100000
  local p = ai.randn(n, {dtype = "f64", requires_grad = true})
  local a, b = ai.rand(n, {dtype = "f64"}), ai.randn(n, {dtype = "f64"})
  local ref, m, v = p:detach():clone(), ai.zeros(n, {dtype = "f64"}), ai.zeros(n, {dtype = "f64"})
  local opt = optim.Adam({p}, {lr = 0.01, weight_decay = 0.1})
  for t = 1, 3 do
    opt:zero_grad()
    local loss = ((a * p * p) * 0.5 + b * p):sum()
    loss:backward()
    opt:step()
    local g = a * ref + b + ref * 0.1
    m = m * 0.9 + g * 0.1
    v = v * 0.999 + g * g * 0.001
    ref = ref - (m / (1 - 0.9 ^ t)) / ((v / (1 - 0.999 ^ t)):sqrt() + 1e-8) * 0.01
  end
  T.ok((p - ref):abs():max():item() < 1e-12)
end)

------------------------------------------------------------------------------------- groups

T.test("parameter groups: per-group options over the defaults; zero_grad; add_param_group", function()
  local a = ai.zeros(2, {dtype = "f64", requires_grad = true})
  local b = ai.zeros(2, {dtype = "f64", requires_grad = true})
  local opt = optim.SGD({{params = {a}}, {params = {b}, lr = 0.5}}, {lr = 0.1, momentum = 0.9})
  T.eq(opt.param_groups[1].lr, 0.1)
  T.eq(opt.param_groups[2].lr, 0.5)
  T.eq(opt.param_groups[2].momentum, 0.9)
  a.grad = ai.ones(2, {dtype = "f64"}); b.grad = ai.ones(2, {dtype = "f64"})
  opt:step()
  T.near(a, {-0.1, -0.1}, 1e-15)
  T.near(b, {-0.5, -0.5}, 1e-15)
  opt:zero_grad()
  T.ok(a.grad == nil and b.grad == nil)
  local adam = optim.Adam({{params = {a}, betas = {0.5, 0.9}}, {params = {b}}}, {lr = 2e-4, betas = {0.5, 0.999}})
  T.eq(adam.param_groups[1].betas, {0.5, 0.9})
  T.eq(adam.param_groups[2].betas, {0.5, 0.999})
  T.ok(adam.param_groups[2].betas ~= adam.defaults.betas) -- groups own their tables
  local c = ai.zeros(1, {requires_grad = true})
  adam:add_param_group({params = {c}, lr = 1})
  T.eq(#adam.param_groups, 3)
  T.eq(adam.param_groups[3].eps, 1e-8)
  -- a module or a single tensor may stand for its parameters
  T.eq(#optim.Adam(nn.Linear(2, 2)).param_groups[1].params, 2)
  T.eq(#optim.SGD(c, {lr = 1}).param_groups[1].params, 1)
  T.ok(tostring(adam):find("Parameter Group 0", 1, true))
end)

T.test("optimizers: argument errors are clear", function()
  local p = ai.zeros(2, {requires_grad = true})
  T.expect_error("Adam: invalid learning rate: -1", function() optim.Adam({p}, {lr = -1}) end)
  T.expect_error("Adam: invalid beta parameter at index 1: 1.0", function() optim.Adam({p}, {betas = {1.0, 0.9}}) end)
  T.expect_error("Adam: unknown option 'learning_rate'", function() optim.Adam({p}, {learning_rate = 1}) end)
  T.expect_error("SGD: nesterov momentum requires a momentum and zero dampening", function() optim.SGD({p}, {nesterov = true}) end)
  T.expect_error("SGD: params[1] appears in more than one parameter group",
    function() optim.SGD({{params = {p}}, {params = {p}}}) end)
  T.expect_error("not a leaf tensor", function() optim.SGD({p * 2}) end)
  T.expect_error("empty parameter list", function() optim.SGD({}) end)
  T.expect_error("only f32 and f64 tensors can be optimized", function() optim.SGD({ai.zeros(2, {dtype = "i64"})}) end)
  T.expect_error("RMSprop: invalid alpha value: -0.5", function() optim.RMSprop({p}, {alpha = -0.5}) end)
  T.expect_error("LBFGS: step needs a closure", function() optim.LBFGS({p}):step() end)
end)

T.test("fused kernels: wrong dtype, shape or layout are Lua errors naming the argument", function()
  local K = ai._optim
  local p, g = ai.zeros(2, 3), ai.zeros(2, 3)
  local o = {lr = 0.1, step = 1}
  T.expect_error("adam_step: grad is f64 but the parameter is f32",
    function() K.adam_step(p, g:double(), ai.zeros(2, 3), ai.zeros(2, 3), nil, o) end)
  T.expect_error("adam_step: exp_avg has shape 3x2 but the parameter has shape 2x3",
    function() K.adam_step(p, g, ai.zeros(3, 2), ai.zeros(2, 3), nil, o) end)
  T.expect_error("adam_step: param must be contiguous",
    function() K.adam_step(ai.zeros(3, 2):t(), g, ai.zeros(2, 3), ai.zeros(2, 3), nil, o) end)
  T.expect_error("adam_step: param must be f32 or f64, got i64",
    function() K.adam_step(ai.zeros(2, 3, {dtype = "i64"}), g, g, g, nil, o) end)
  T.expect_error("adam_step: option 'lr' must be a number", function() K.adam_step(p, g, ai.zeros(2, 3), ai.zeros(2, 3), nil, {step = 1}) end)
  T.expect_error("sgd_step: momentum needs a momentum_buffer", function() K.sgd_step(p, g, nil, {lr = 1, momentum = 0.9}) end)
  T.expect_error("rmsprop_step: square_avg must be a tensor", function() K.rmsprop_step(p, g, nil, nil, nil, {lr = 1}) end)
  local m = ai.zeros(2, 3)
  T.expect_error("adam_step: exp_avg and exp_avg_sq share memory", function() K.adam_step(p, g, m, m, nil, o) end)
  T.expect_error("lerp_: dst and src share memory", function() K.lerp_(p, p, 0.5) end)
  -- a strided gradient is fine (it is only read)
  local q = ai.zeros(3, 2)
  K.sgd_step(q, ai.ones(2, 3):t(), nil, {lr = 1})
  T.near(q, {{-1, -1}, {-1, -1}, {-1, -1}})
  -- the version counter moves, so autograd notices the in-place update
  local w = ai.ones(2, {requires_grad = true})
  local y = (w * w):sum()
  ai.no_grad(function() K.sgd_step(w, ai.ones(2), nil, {lr = 1}) end)
  T.expect_error("modified in place", function() y:backward() end)
end)

--------------------------------------------------------------------------------- state dicts

T.test("state_dict round trip: a resumed optimizer continues identically", function()
  local makers = {
    function(ps) return optim.Adam(ps, {lr = 1e-2, amsgrad = true}) end,
    function(ps) return optim.SGD(ps, {lr = 1e-2, momentum = 0.9, nesterov = true}) end,
    function(ps) return optim.RMSprop(ps, {lr = 1e-3, centered = true, momentum = 0.5}) end,
    function(ps) return optim.Adagrad(ps, {lr = 1e-2, lr_decay = 0.01}) end,
    function(ps) return optim.AdamW({{params = {ps[1], ps[2]}}, {params = {ps[3], ps[4]}, lr = 1e-3}}, {lr = 1e-2}) end,
  }
  ai.manual_seed(3)
  local x, y = ai.randn(8, 3), ai.randn(8, 1)
  local function make() return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)) end
  local function train(m, opt, n)
    for _ = 1, n do
      opt:zero_grad()
      nn.MSELoss()(m(x), y):backward()
      opt:step()
    end
  end
  for _, make_opt in ipairs(makers) do
    local m1, m2 = make(), make()
    local o1 = make_opt(m1:parameters())
    train(m1, o1, 3)
    m2:load_state_dict(m1:state_dict())
    local o2 = make_opt(m2:parameters())
    o2.param_groups[1].lr = 123 -- overwritten by the load
    o2:load_state_dict(o1:state_dict())
    T.eq(o2.param_groups[1].lr, o1.param_groups[1].lr)
    train(m1, o1, 4)
    train(m2, o2, 4)
    local p1, p2 = m1:parameters(), m2:parameters()
    for i = 1, #p1 do T.near(p2[i], p1[i], 1e-7) end
  end
end)

T.test("state_dict: layout (1-based parameter numbers, plain hyperparameters) and load errors", function()
  local a = ai.zeros(2, {requires_grad = true})
  local b = ai.zeros(3, {requires_grad = true})
  local opt = optim.Adam({{params = {a}}, {params = {b}, lr = 0.5}})
  a.grad = ai.ones(2)
  opt:step()
  local sd = opt:state_dict()
  T.eq(sd.param_groups[1].params, {1})
  T.eq(sd.param_groups[2].params, {2})
  T.eq(sd.param_groups[2].lr, 0.5)
  T.eq(sd.param_groups[1].betas, {0.9, 0.999})
  T.eq(sd.state[1].step, 1)
  T.eq(sd.state[1].exp_avg.shape, {2})
  T.ok(sd.state[2] == nil) -- b had no gradient yet
  T.expect_error("the state dict has 2 parameter groups, the optimizer 1",
    function() optim.Adam({a}):load_state_dict(sd) end)
  T.expect_error("group 2 has 1 parameters in the state dict, 2 in the optimizer",
    function() optim.Adam({{params = {a}}, {params = {b, ai.zeros(1, {requires_grad = true})}}}):load_state_dict(sd) end)
  -- loaded state is a copy cast to the parameter's dtype
  local a64 = ai.zeros(2, {dtype = "f64", requires_grad = true})
  local o64 = optim.Adam({{params = {a64}}, {params = {ai.zeros(3, {dtype = "f64", requires_grad = true})}}})
  o64:load_state_dict(sd)
  T.eq(o64.state[a64].exp_avg.dtype, "f64")
  T.ok(o64.state[a64].exp_avg ~= opt.state[a].exp_avg)
end)

----------------------------------------------------------------------------------------- LBFGS

T.test("LBFGS with strong Wolfe line search minimises Rosenbrock", function()
  local x = ai.tensor({-1.5, 2}, {dtype = "f64", requires_grad = true})
  local opt = optim.LBFGS({x}, {lr = 1, max_iter = 100, line_search_fn = "strong_wolfe",
    tolerance_grad = 1e-12, tolerance_change = 1e-15})
  local function closure()
    opt:zero_grad()
    local a, b = x[1], x[2]
    local loss = (1 - a) ^ 2 + (b - a * a) ^ 2 * 100
    loss:backward()
    return loss
  end
  local first = opt:step(closure):item()
  T.near(first, 2.5 ^ 2 + 100 * 0.25 ^ 2, 1e-12) -- step returns the loss before the update
  for _ = 1, 4 do opt:step(closure) end
  T.near(x, {1, 1}, 1e-6)
  T.ok(opt.state[x].func_evals > 10 and opt.state[x].n_iter > 10)
end)

T.test("LBFGS without line search solves a convex quadratic; history is bounded", function()
  local diag, target = t64({1, 2, 3, 4, 5}), t64({1, -1, 2, 0.5, 3})
  local x = ai.zeros(5, {dtype = "f64", requires_grad = true})
  local opt = optim.LBFGS({x}, {max_iter = 50, history_size = 3, tolerance_change = 1e-15, tolerance_grad = 1e-12})
  local function closure()
    opt:zero_grad()
    local loss = (diag * (x - target) ^ 2):sum() * 0.5
    loss:backward()
    return loss
  end
  opt:step(closure)
  T.near(x, target, 1e-6)
  T.ok(#opt.state[x].old_dirs <= 3)
  T.expect_error("LBFGS: only line_search_fn 'strong_wolfe' is supported",
    function() optim.LBFGS({x}, {line_search_fn = "armijo"}) end)
end)

T.test("step(closure) runs the closure with grad enabled, even inside no_grad", function()
  local p = ai.tensor({1, 2}, {dtype = "f64", requires_grad = true})
  local opt = optim.SGD({p}, {lr = 0.5})
  local loss = ai.no_grad(function()
    return opt:step(function()
      opt:zero_grad()
      local l = (p * p):sum()
      l:backward()
      return l
    end)
  end)
  T.near(loss:item(), 5, 1e-15)
  T.near(p, {0, 0}, 1e-15)
end)

------------------------------------------------------------------------------------------- EMA

T.test("EMA: the average by hand, swapping weights in and out, state dict", function()
  local lin = nn.Linear(2, 1, {dtype = "f64"})
  local function set(w) ai.no_grad(function() lin.weight:copy_(t64({w})); lin.bias:fill_(w[1]) end) end
  set({1, 2})
  local ema = optim.EMA(lin, {decay = 0.9})
  set({3, 4}); ema:update()
  set({5, 0}); ema:update()
  local e1 = 0.9 * (0.9 * 1 + 0.1 * 3) + 0.1 * 5
  local e2 = 0.9 * (0.9 * 2 + 0.1 * 4) + 0.1 * 0
  T.near(ema.shadow.weight, {{e1, e2}}, 1e-12)
  T.near(ema.shadow.bias, {e1}, 1e-12)
  local out = ema:with_averaged(function(m, extra)
    T.near(m.weight, {{e1, e2}}, 1e-12)
    return extra * 2
  end, 21)
  T.eq(out, 42)
  T.near(lin.weight, {{5, 0}}, 1e-15) -- the training weights are back
  T.expect_error("boom", function() ema:with_averaged(function() error("boom") end) end)
  T.near(lin.weight, {{5, 0}}, 1e-15) -- restored after an error too
  ema:apply_to()
  T.expect_error("already applied", function() ema:apply_to() end)
  ema:restore()
  T.expect_error("nothing to restore", function() ema:restore() end)
  -- a fresh EMA on another model resumes from the state dict
  local other = nn.Linear(2, 1, {dtype = "f64"})
  local ema2 = optim.EMA(other, {decay = 0.5})
  ema2:load_state_dict(ema:state_dict())
  T.eq(ema2.decay, 0.9)
  T.eq(ema2.num_updates, 2)
  ema2:copy_to(other)
  T.near(other.weight, {{e1, e2}}, 1e-12)
end)

T.test("EMA: warm-up decay min(decay, (1 + n) / (10 + n))", function()
  local lin = nn.Linear(1, 1, {bias = false, dtype = "f64"})
  ai.no_grad(function() lin.weight:fill_(0) end)
  local ema = optim.EMA(lin, {decay = 0.999, warmup = true})
  T.near(ema:current_decay(), 2 / 11, 1e-15)
  ai.no_grad(function() lin.weight:fill_(1) end)
  ema:update()
  T.near(ema.shadow.weight, {{1 - 2 / 11}}, 1e-12)
  ema.num_updates = 10000 -- (1 + n) / (10 + n) passes 0.999 after n = 8991
  T.eq(ema:current_decay(), 0.999)
  T.expect_error("EMA: expected a module", function() optim.EMA({}) end)
end)
