--[[ aiart.doc: the documentation of the aiart functions, used by help(f) and ?f in the REPL.

Where a doc comes from (aiart.repl's find_doc, in this order):
  1. ai._doc[f], then the entries of ai._doc and of this table under each name of f;
  2. for a Lua function, the comment block directly above its definition (D.source_doc: the
     `---` / `--` lines ending on the line before `function ...`); for a class (a callable
     table with a __name, such as ai.nn.Linear), the comment above its init method or above the
     line that creates it (D.class_doc);
  3. for a class's init, the class's doc; for a method without a doc of its own, the doc of the
     method it overrides in a parent class (nn.Linear.forward -> nn.Module.forward).
So this table holds the C functions, which have no Lua source, and the few Lua functions and
classes that have no comment above their definition. The first line of a doc (continued while a
signature or a sentence runs on) is what listings such as help(ai.nn) show.

Keys are names relative to the module `ai`: "randn", "nn.Linear", "nn.Module.forward",
"io.save_png"; tensor methods are "Tensor:sum" and tensor properties "Tensor.shape"; aiart.models
and aiart.diffusion are "models.UNet", "diffusion.loss". When a module function and a method
share a name (ai.sum(x) and x:sum()), one entry under the plain name documents both. help(f)
finds the names of a function by identity (walking `ai`, its sub-tables, the loaded aiart.*
modules and the tensor method table), so an entry here for a function that does not exist is
never shown for a function; it only answers help "name".

The fields `help`, `source_doc` and `class_doc` are functions, not doc strings (ai.help =
require("aiart.doc").help). Libraries may document their own functions without editing this
file, through the table ai._doc (function or name -> doc string), which help() consults first:
    ai._doc = ai._doc or {}
    ai._doc[myfunction] = "ai.myfunction(x) -> ..."
or simply with a `---` comment above the function's definition.
Indices and dims are 1-based; negative dims count from the end. dtypes: f32 (default), f64,
i64, u8 (also bool). Options are tables: ai.conv2d(x, w, b, {stride=2, padding=1}).
]]

local D = {}

-- construction -------------------------------------------------------------------------------
D["tensor"] = "ai.tensor(data [, {dtype=, requires_grad=false}]) -> a new tensor from a number, a boolean, a nested table (numbers -> f32, booleans -> u8) or a copy of a tensor"
D["empty"] = "ai.empty(d1, d2, ... | {shape} [, {dtype=\"f32\", requires_grad=false}]) -> an uninitialised tensor"
D["zeros"] = "ai.zeros(d1, d2, ... | {shape} [, {dtype=\"f32\", requires_grad=false}]) -> a tensor of zeros"
D["ones"] = "ai.ones(d1, d2, ... | {shape} [, {dtype=\"f32\", requires_grad=false}]) -> a tensor of ones"
D["full"] = "ai.full({shape}, value [, {dtype=, requires_grad=false}]) -> a tensor filled with value (f32, or u8 for a boolean value)"
D["rand"] = "ai.rand(d1, d2, ... | {shape} [, {dtype=\"f32\"|\"f64\", requires_grad=false}]) -> uniform samples in [0, 1)"
D["randn"] = "ai.randn(d1, d2, ... | {shape} [, {dtype=\"f32\"|\"f64\", requires_grad=false}]) -> samples of the standard normal N(0, 1)"
D["randint"] = "ai.randint(lo, hi, d1, d2, ... | {shape} [, {dtype=\"i64\"}]) -> random integers in [lo, hi], both included"
D["randperm"] = "ai.randperm(n) -> a random permutation of 1..n (i64)"
D["arange"] = "ai.arange(stop) | ai.arange(start, stop [, step]) [, {dtype=, requires_grad=false}] -> values from start (default 0) up to stop, stop excluded (i64 when all are integers, else f32)"
D["range"] = "ai.range(a, b [, step=1] [, {dtype=}]) -> values from a to b, b included, like a numeric for (i64 when all are integers, else f32)"
D["linspace"] = "ai.linspace(a, b, n [, {dtype=\"f32\", requires_grad=false}]) -> n values evenly spaced from a to b inclusive"
D["eye"] = "ai.eye(n [, m=n] [, {dtype=\"f32\"}]) -> the n x m identity matrix"
D["empty_like"] = "ai.empty_like(x [, {dtype=, requires_grad=false}]) -> an uninitialised tensor of x's shape and dtype"
D["zeros_like"] = "ai.zeros_like(x [, {dtype=, requires_grad=false}]) / x:zeros_like() -> zeros of x's shape and dtype"
D["ones_like"] = "ai.ones_like(x [, {dtype=, requires_grad=false}]) / x:ones_like() -> ones of x's shape and dtype"
D["full_like"] = "ai.full_like(x, value [, {dtype=, requires_grad=false}]) -> x's shape and dtype filled with value"
D["rand_like"] = "ai.rand_like(x [, {dtype=, requires_grad=false}]) -> uniform [0, 1) samples of x's shape (x must be f32 or f64, or give a float dtype)"
D["randn_like"] = "ai.randn_like(x [, {dtype=, requires_grad=false}]) -> N(0, 1) samples of x's shape (x must be f32 or f64, or give a float dtype)"
D["free"] = "ai.free(x) / x:free() -> releases x's memory now; using x afterwards is an error"
D["bernoulli"] = "ai.bernoulli(p) / p:bernoulli() -> 0/1 draws with the per-element probabilities of the tensor p, in p's float dtype (f32 for integer p)"

-- random numbers, threads, memory ------------------------------------------------------------
D["manual_seed"] = "ai.manual_seed(seed) -> seeds the random generator (Philox-4x32-10): draws become reproducible"
D["get_rng_state"] = "ai.get_rng_state() -> the generator state {seed=, offset=}"
D["set_rng_state"] = "ai.set_rng_state({seed=, offset=}) -> restores a state from get_rng_state"
D["set_num_threads"] = "ai.set_num_threads(n) -> sets the number of threads used by the kernels (1..1024)"
D["get_num_threads"] = "ai.get_num_threads() -> the number of threads used by the kernels"
D["clock"] = "ai.clock() -> seconds of wall time from a monotonic clock (for timing; os.clock is CPU time)"
D["memory"] = "ai.memory() -> {live=, cached=, peak=}: bytes of tensor memory in use, cached by the allocator, and the peak"
D["alloc_fail_after"] = "ai.alloc_fail_after(n) -> (testing) makes the n-th tensor allocation from now fail; 0 disables"
D["normal"] = "ai.normal(mean, std, d1, d2, ... | {shape}) -> f32 samples of N(mean, std^2) / ai.normal(mean, std) with mean or std a tensor (the other a tensor or a number) -> samples of their broadcast shape and dtype; no gradient to mean or std, as torch.normal (for one, write mean + std * ai.randn_like(mean))"
D["empty_cache"] = "ai.empty_cache() -> returns the allocator's cached memory to the system"

-- a long run's process: signals that ask it to stop, the lock of its folder --------------------
D["trap_signals"] = "ai.trap_signals() -> true: SIGINT and SIGTERM are only recorded from now on (ai.pending_signal says, between steps, that one came); a second one ends the process at once. The actions before (the host's Ctrl-C handler) are kept for ai.untrap_signals"
D["untrap_signals"] = "ai.untrap_signals() -> puts back the signal actions that were in place before ai.trap_signals, forgetting a pending signal"
D["pending_signal"] = "ai.pending_signal() -> \"SIGINT\" or \"SIGTERM\" and its number when one came since ai.trap_signals, else nil"
D["lock_file"] = "ai.lock_file(path) -> lock, or nil and {pid=, host=, message=} when another process holds it: a file naming this process, held (flock) until lock:release(), __close or __gc; the file of a holder that died is taken over (lock:stale() -> its pid and host)"

-- tensor properties and conversion -----------------------------------------------------------
D["Tensor.shape"] = "x.shape -> the sizes as a table {d1, d2, ...}"
D["Tensor.dtype"] = "x.dtype -> the element type: \"f32\", \"f64\", \"i64\" or \"u8\""
D["Tensor.ndim"] = "x.ndim -> the number of dimensions"
D["Tensor.grad"] = "x.grad -> the gradient accumulated by backward (nil if none); x.grad = g sets it (same shape and dtype), x.grad = nil clears it"
D["Tensor.grad_fn"] = "x.grad_fn -> the name of the operation that made x (nil for leaves)"
D["Tensor.is_leaf"] = "x.is_leaf -> true when x was not made by a recorded operation"
D["Tensor.T"] = "x.T -> x with its last two dims swapped (a view)"
D["Tensor.requires_grad"] = "x.requires_grad -> whether gradients are recorded for x (a boolean); x.requires_grad = true sets it, as x:requires_grad_(true) does"
D["Tensor.data"] = "x.data -> x detached (the same storage, no gradient), as PyTorch's .data; x.data = y gives x y's values, dtype and shape, keeping x itself (x:set_(y))"
D["Tensor:size"] = "x:size([dim]) -> the shape as a table, or the size of one dim"
D["Tensor:dim"] = "x:dim() -> the number of dimensions"
D["Tensor:numel"] = "x:numel() / x:nelement() -> the number of elements"
D["Tensor:nelement"] = "x:nelement() -> the number of elements (as numel)"
D["Tensor:stride"] = "x:stride([dim]) -> the strides in elements, as a table or for one dim"
D["Tensor:is_contiguous"] = "x:is_contiguous() -> whether the elements are dense in row-major order"
D["Tensor:item"] = "x:item() -> the value of a one-element tensor as a Lua number (an integer for i64 and u8)"
D["Tensor:tolist"] = "x:tolist() -> the values as nested Lua tables (a number for 0-dim)"
D["Tensor:float"] = "x:float() -> x converted to f32 (x itself if already f32)"
D["Tensor:double"] = "x:double() -> x converted to f64"
D["Tensor:long"] = "x:long() -> x converted to i64"
D["Tensor:byte"] = "x:byte() -> x converted to u8"
D["Tensor:to"] = "x:to(dtype | {dtype=}) -> x converted to dtype (\"f32\", \"f64\", \"i64\", \"u8\" or an alias such as \"float\", \"long\", \"bool\")"
D["Tensor:type"] = "x:type() -> the dtype name"

-- views ----------------------------------------------------------------------------------------
D["Tensor:view"] = "x:view(d1, d2, ... | {shape}) -> a view with another shape (one size may be -1); needs compatible strides"
D["Tensor:reshape"] = "x:reshape(d1, d2, ... | {shape}) -> like view, copying when the strides do not allow a view"
D["Tensor:view_as"] = "x:view_as(y) -> x reshaped to y's shape"
D["Tensor:permute"] = "x:permute(d1, d2, ... | {dims}) -> a view with the dims reordered (1-based, negative from the end)"
D["Tensor:transpose"] = "x:transpose([d0=1 [, d1=2]]) -> a view with two dims swapped"
D["Tensor:t"] = "x:t() -> the transpose of a matrix (at most 2 dims)"
D["Tensor:narrow"] = "x:narrow(dim, start, length) -> a view of length entries from start (1-based, negative from the end) along dim"
D["Tensor:select"] = "x:select(dim, i) -> a view of index i (1-based, negative from the end) along dim, that dim removed"
D["Tensor:slice"] = "x:slice(dim [, first=1 [, last=-1 [, step=1]]]) -> a view of first..last (inclusive, negative from the end) along dim"
D["Tensor:expand"] = "x:expand(d1, d2, ... | {shape}) -> a broadcast view (-1 keeps a size)"
D["Tensor:expand_as"] = "x:expand_as(y) -> x broadcast to y's shape"
D["Tensor:squeeze"] = "x:squeeze([dim]) -> removes size-1 dims (all, or only dim)"
D["Tensor:unsqueeze"] = "x:unsqueeze(dim) -> inserts a size-1 dim at dim (1..ndim+1, negative from the end)"
D["Tensor:flatten"] = "x:flatten([start=1 [, end=-1]]) -> dims start..end merged into one"
D["Tensor:contiguous"] = "x:contiguous() -> x if contiguous, else a contiguous copy"
D["Tensor:clone"] = "x:clone() -> a copy with its own memory (differentiable)"
D["Tensor:detach"] = "x:detach() / ai.detach(x) -> a view of x outside the autograd graph"

-- in-place -----------------------------------------------------------------------------------
D["Tensor:copy_"] = "x:copy_(y) -> copies y (a tensor, broadcast and converted, or a number) into x; returns x"
D["Tensor:fill_"] = "x:fill_(v) -> sets every element to v (a number or a boolean); returns x"
D["Tensor:zero_"] = "x:zero_() -> sets every element to 0; returns x"
D["Tensor:add_"] = "x:add_(y) -> x = x + y in place (y a tensor or a number); returns x"
D["Tensor:sub_"] = "x:sub_(y) -> x = x - y in place (y a tensor or a number); returns x"
D["Tensor:mul_"] = "x:mul_(y) -> x = x * y in place (y a tensor or a number); returns x"
D["Tensor:div_"] = "x:div_(y) -> x = x / y in place (y a tensor or a number); returns x"
D["Tensor:pow_"] = "x:pow_(y) -> x = x ^ y in place (y a tensor or a number); returns x"
D["Tensor:remainder_"] = "x:remainder_(y) -> x = x % y in place; returns x"
D["Tensor:maximum_"] = "x:maximum_(y) -> x = maximum(x, y) in place; returns x"
D["Tensor:minimum_"] = "x:minimum_(y) -> x = minimum(x, y) in place; returns x"
D["Tensor:clamp_"] = "x:clamp_(lo, hi | {min=, max=}) -> clamps x in place (nil: no bound); returns x"
D["Tensor:masked_fill_"] = "x:masked_fill_(mask, v) -> sets v where the u8 mask is 1; returns x"
D["Tensor:uniform_"] = "x:uniform_([lo=0 [, hi=1]]) -> fills x with uniform samples in [lo, hi); returns x"
D["Tensor:normal_"] = "x:normal_([mean=0 [, std=1]]) -> fills x with normal samples; returns x"
D["Tensor:bernoulli_"] = "x:bernoulli_([p=0.5]) -> fills x with 1 with probability p, else 0; returns x"
D["Tensor:random_"] = "x:random_(lo, hi) -> fills x with random integers in [lo, hi] inclusive; returns x"
D["Tensor:requires_grad_"] = "x:requires_grad_([on=true]) -> marks a leaf for gradient recording (or not); returns x"

-- elementwise --------------------------------------------------------------------------------
D["add"] = "ai.add(a, b) / a:add(b) / a + b -> elementwise sum, broadcasting (either side may be a number)"
D["sub"] = "ai.sub(a, b) / a:sub(b) / a - b -> elementwise difference, broadcasting (either side may be a number)"
D["mul"] = "ai.mul(a, b) / a:mul(b) / a * b -> elementwise product, broadcasting (either side may be a number)"
D["div"] = "ai.div(a, b) / a:div(b) / a / b -> elementwise quotient, broadcasting (either side may be a number)"
D["pow"] = "ai.pow(a, b) / a:pow(b) / a ^ b -> elementwise power (either side may be a number)"
D["remainder"] = "ai.remainder(a, b) / a:remainder(b) / a % b -> elementwise remainder with the sign of b (as Lua's %); also ai.fmod"
D["fmod"] = "ai.fmod(a, b) -> elementwise remainder with the sign of b (the same function as ai.remainder)"
D["floor_divide"] = "ai.floor_divide(a, b) / a:floor_divide(b) / a // b -> elementwise floor(a / b) (not differentiable)"
D["erf"] = "ai.erf(x) / x:erf() -> elementwise error function"
D["maximum"] = "ai.maximum(a, b) / a:maximum(b) -> elementwise maximum, broadcasting"
D["minimum"] = "ai.minimum(a, b) / a:minimum(b) -> elementwise minimum, broadcasting"
D["tan"] = "ai.tan(x) / x:tan() -> elementwise tangent"
D["asin"] = "ai.asin(x) / x:asin() -> elementwise arcsine (NaN outside [-1, 1])"
D["acos"] = "ai.acos(x) / x:acos() -> elementwise arccosine (NaN outside [-1, 1])"
D["atan"] = "ai.atan(x) / x:atan() -> elementwise arctangent"
D["sinh"] = "ai.sinh(x) / x:sinh() -> elementwise hyperbolic sine"
D["cosh"] = "ai.cosh(x) / x:cosh() -> elementwise hyperbolic cosine"
D["asinh"] = "ai.asinh(x) / x:asinh() -> elementwise inverse hyperbolic sine"
D["acosh"] = "ai.acosh(x) / x:acosh() -> elementwise inverse hyperbolic cosine (NaN below 1)"
D["atanh"] = "ai.atanh(x) / x:atanh() -> elementwise inverse hyperbolic tangent (+-inf at +-1)"
D["erfinv"] = "ai.erfinv(x) / x:erfinv() -> elementwise inverse error function: erf(erfinv(x)) = x on (-1, 1)"
D["lgamma"] = "ai.lgamma(x) / x:lgamma() -> elementwise log |Gamma(x)|"
D["digamma"] = "ai.digamma(x) / x:digamma() -> elementwise digamma, the derivative of lgamma (-inf at 0, NaN at negative integers); its gradient is first-order only"
D["trigamma"] = "ai.trigamma(x) / x:trigamma() -> elementwise trigamma, the derivative of digamma (not differentiable)"
D["isnan"] = "ai.isnan(x) / x:isnan() -> elementwise x ~= x, as u8 (0/1)"
D["isinf"] = "ai.isinf(x) / x:isinf() -> elementwise: x is +-inf, as u8 (0/1)"
D["isfinite"] = "ai.isfinite(x) / x:isfinite() -> elementwise: x is neither inf nor NaN, as u8 (0/1)"
D["logaddexp"] = "ai.logaddexp(a, b) / a:logaddexp(b) -> elementwise log(e^a + e^b), without overflow"
D["hypot"] = "ai.hypot(a, b) / a:hypot(b) -> elementwise sqrt(a^2 + b^2), without overflow"
D["atan2"] = "ai.atan2(a, b) / a:atan2(b) -> elementwise atan2(a, b)"
D["eq"] = "ai.eq(a, b) / a:eq(b) -> u8 mask of a == b"
D["ne"] = "ai.ne(a, b) / a:ne(b) -> u8 mask of a ~= b"
D["lt"] = "ai.lt(a, b) / a:lt(b) -> u8 mask of a < b"
D["le"] = "ai.le(a, b) / a:le(b) -> u8 mask of a <= b"
D["gt"] = "ai.gt(a, b) / a:gt(b) -> u8 mask of a > b"
D["ge"] = "ai.ge(a, b) / a:ge(b) -> u8 mask of a >= b"
D["logical_and"] = "ai.logical_and(a, b) / a:logical_and(b) -> u8 mask of a and b"
D["logical_or"] = "ai.logical_or(a, b) / a:logical_or(b) -> u8 mask of a or b"
D["logical_not"] = "ai.logical_not(a) / a:logical_not() -> u8 mask of not a"
D["neg"] = "ai.neg(x) / x:neg() / -x -> elementwise negation"
D["abs"] = "ai.abs(x) / x:abs() -> elementwise absolute value"
D["sign"] = "ai.sign(x) / x:sign() -> elementwise sign (-1, 0, 1)"
D["exp"] = "ai.exp(x) / x:exp() -> elementwise e^x"
D["log"] = "ai.log(x) / x:log() -> elementwise natural logarithm"
D["log1p"] = "ai.log1p(x) / x:log1p() -> elementwise log(1 + x)"
D["log2"] = "ai.log2(x) / x:log2() -> elementwise base-2 logarithm"
D["expm1"] = "ai.expm1(x) / x:expm1() -> elementwise e^x - 1"
D["sqrt"] = "ai.sqrt(x) / x:sqrt() -> elementwise square root"
D["rsqrt"] = "ai.rsqrt(x) / x:rsqrt() -> elementwise 1 / sqrt(x)"
D["square"] = "ai.square(x) / x:square() -> elementwise x * x"
D["reciprocal"] = "ai.reciprocal(x) / x:reciprocal() -> elementwise 1 / x"
D["sin"] = "ai.sin(x) / x:sin() -> elementwise sine"
D["cos"] = "ai.cos(x) / x:cos() -> elementwise cosine"
D["tanh"] = "ai.tanh(x) / x:tanh() -> elementwise hyperbolic tangent"
D["sigmoid"] = "ai.sigmoid(x) / x:sigmoid() -> elementwise 1 / (1 + e^-x)"
D["relu"] = "ai.relu(x) / x:relu() -> elementwise max(x, 0)"
D["silu"] = "ai.silu(x) / x:silu() -> elementwise x * sigmoid(x)"
D["gelu"] = "ai.gelu(x) / x:gelu() -> elementwise GELU (the exact, erf form; F.gelu has the tanh approximation)"
D["leaky_relu"] = "ai.leaky_relu(x [, slope=0.01 | {negative_slope=0.01}]) / x:leaky_relu(...) -> elementwise x if x > 0 else slope * x"
D["softplus"] = "ai.softplus(x [, beta=1 [, threshold=20]] | {beta=1, threshold=20}) / x:softplus(...) -> elementwise log(1 + e^(beta x)) / beta, x itself where beta x > threshold"
D["floor"] = "ai.floor(x) / x:floor() -> elementwise floor"
D["ceil"] = "ai.ceil(x) / x:ceil() -> elementwise ceiling"
D["round"] = "ai.round(x) / x:round() -> elementwise rounding to the nearest integer"
D["clamp"] = "ai.clamp(x, lo, hi | {min=, max=}) / x:clamp(...) -> x limited to [lo, hi] (nil: no bound); also ai.clip"
D["clip"] = "ai.clip(x, lo, hi | {min=, max=}) -> x limited to [lo, hi] (nil: no bound); the same function as ai.clamp"
D["where"] = "ai.where(cond, a, b) / cond:where(a, b) -> a where the u8 mask cond is 1, else b (broadcasting; a or b may be a number)"
D["masked_fill"] = "ai.masked_fill(x, mask, v) / x:masked_fill(mask, v) -> a copy of x with the number v where the u8 mask is 1"
D["sort"] = "ai.sort(x[, dim=-1][, {descending=false}]) / x:sort(...) -> values, indices: sorted along dim (stable; NaN last, first when descending; integers exact); indices 1-based; the values carry gradients"
D["argsort"] = "ai.argsort(x[, dim=-1][, {descending=false}]) / x:argsort(...) -> the 1-based indices that sort x along dim (stable)"
D["topk"] = "ai.topk(x, k[, dim=-1][, {largest=true}]) / x:topk(...) -> values, indices: the k largest (or smallest) along dim, sorted; indices 1-based"
D["kthvalue"] = "ai.kthvalue(x, k[, dim=-1][, {keepdim=true}]) / x:kthvalue(...) -> values, indices: the k-th smallest along dim (k 1-based)"
D["median"] = "ai.median(x) -> the lower median of all elements / ai.median(x, dim[, {keepdim=true}]) -> values, indices along dim; a row with a NaN has median NaN, as PyTorch"
D["quantile"] = "ai.quantile(x, q[, dim][, {keepdim=false, interpolation=\"linear\"|\"lower\"|\"higher\"|\"nearest\"|\"midpoint\"}]) / x:quantile(...) -> the q-quantiles (q a number, a list or a tensor in [0, 1]) over dim or all elements; a 1-D q's dim comes first; differentiable"
D["unique"] = "ai.unique(x[, {return_inverse=false, return_counts=false}]) / x:unique(...) -> the sorted distinct values (flattened)[, the 1-based position of each element's value][, the counts]"
D["searchsorted"] = "ai.searchsorted(sorted_sequence, values[, {right=false}]) -> for each value, the 1-based position where it would go to keep the 1-D sequence sorted (before equal elements; after them when right)"
D["masked_select"] = "ai.masked_select(x, mask) / x:masked_select(mask) / x[mask] -> the elements where the u8 mask (broadcast) is 1, as a 1-d tensor"

-- reductions ---------------------------------------------------------------------------------
-- dims: one dim or a table of dims (1-based, negative from the end); without dims the result
-- is a 0-dim tensor. keepdim defaults to true when dims are given (Torch7's convention).
D["sum"] = "ai.sum(x [, dim | {dims}] [, {keepdim=true}]) / x:sum(...) -> the sum of all elements (0-dim), or along dims"
D["mean"] = "ai.mean(x [, dim | {dims}] [, {keepdim=true}]) / x:mean(...) -> the mean of all elements (0-dim), or along dims"
D["prod"] = "ai.prod(x [, dim | {dims}] [, {keepdim=true}]) / x:prod(...) -> the product of all elements (0-dim), or along dims"
D["max"] = "ai.max(x) -> the maximum (0-dim) / ai.max(x, dim [, {keepdim=true}]) -> values, 1-based indices / ai.max(a, b) -> elementwise maximum; also x:max(...)"
D["min"] = "ai.min(x) -> the minimum (0-dim) / ai.min(x, dim [, {keepdim=true}]) -> values, 1-based indices / ai.min(a, b) -> elementwise minimum; also x:min(...)"
D["amax"] = "ai.amax(x [, dim | {dims}] [, {keepdim=true}]) / x:amax(...) -> the maximum over dims (values only)"
D["amin"] = "ai.amin(x [, dim | {dims}] [, {keepdim=true}]) / x:amin(...) -> the minimum over dims (values only)"
D["logsumexp"] = "ai.logsumexp(x [, dim | {dims}] [, {keepdim=true}]) / x:logsumexp(...) -> log(sum(exp(x))) computed stably"
D["var"] = "ai.var(x [, dim | {dims}] [, {unbiased=true, keepdim=true}]) / x:var(...) -> the variance"
D["std"] = "ai.std(x [, dim | {dims}] [, {unbiased=true, keepdim=true}]) / x:std(...) -> the standard deviation"
D["norm"] = "ai.norm(x [, p=2 | \"inf\" | \"-inf\" | \"fro\" [, dim | {dims} [, {keepdim=true}]]]) / x:norm(...) -> the p-norm"
D["argmax"] = "ai.argmax(x [, dim [, {keepdim=true}]]) / x:argmax(...) -> the 1-based i64 index of the maximum (of the flattened x without dim)"
D["argmin"] = "ai.argmin(x [, dim [, {keepdim=true}]]) / x:argmin(...) -> the 1-based i64 index of the minimum (of the flattened x without dim)"
D["cumsum"] = "ai.cumsum(x, dim) / x:cumsum(dim) -> the running sum along dim"
D["cumprod"] = "ai.cumprod(x, dim) / x:cumprod(dim) -> the running product along dim"
D["softmax"] = "ai.softmax(x, dim) / x:softmax(dim) -> exp(x) / sum(exp(x)) along dim"
D["log_softmax"] = "ai.log_softmax(x, dim) / x:log_softmax(dim) -> log(softmax(x, dim)) computed stably"

-- linear algebra, joining, indexing ----------------------------------------------------------
D["matmul"] = "ai.matmul(a, b) / a:matmul(b) -> the matrix product (vectors, matrices, batched with broadcasting)"
D["mm"] = "ai.mm(a, b) / a:mm(b) -> the product of two matrices (2-d only)"
D["bmm"] = "ai.bmm(a, b) / a:bmm(b) -> batched matrix product of two 3-d tensors"
D["dot"] = "ai.dot(a, b) / a:dot(b) -> the dot product of two 1-d tensors (0-dim)"
D["linalg.eigh"] = "ai.linalg.eigh(A) -> eigenvalues (1-d, ascending), eigenvectors (the columns of a matrix) of the symmetric float matrix A, by LAPACK dsyev in f64; returned in A's dtype, not differentiable"
D["cat"] = "ai.cat({x1, x2, ...} [, dim=1]) -> the tensors joined along an existing dim"
D["stack"] = "ai.stack({x1, x2, ...} [, dim=1]) -> the tensors joined along a new dim"
D["split"] = "ai.split(x, size | {sizes} [, dim=1]) / x:split(...) -> a table of views: pieces of size entries (the last may be smaller), or of the given sizes, along dim"
D["chunk"] = "ai.chunk(x, n [, dim=1]) / x:chunk(...) -> a table of at most n equal views along dim (the last may be smaller)"
D["index_select"] = "ai.index_select(x, dim, index) / x:index_select(dim, index) -> the entries at index (1-based: an i64 tensor or a table of integers) along dim"
D["gather"] = "ai.gather(x, dim, index) / x:gather(dim, index) -> out[i][j] = x[index[i][j]][j] for dim 1 (index: 1-based i64 tensor or table)"
D["scatter"] = "ai.scatter(x, dim, index, src) / x:scatter(...) -> a copy of x with src (a tensor or a number) written at the 1-based index along dim"
D["scatter_add"] = "ai.scatter_add(x, dim, index, src) / x:scatter_add(...) -> a copy of x with src (a tensor or a number) added at the 1-based index along dim"
D["index_add"] = "ai.index_add(x, dim, index, src) / x:index_add(...) -> a copy of x with src's slices added at the 1-based index along dim"

-- shape ops, tests of values, maths (src/core/shape.c, compare.c, maths.c) --------------------
D["flip"] = "ai.flip(x, dim | {dims}) / x:flip(...) -> a copy of x with the order of the entries reversed along each of the dims (also x:flip(1, 2))"
D["roll"] = "ai.roll(x, shifts [, dims]) / x:roll(...) -> x shifted circularly by shifts along dims (integers or lists of one length); without dims, the flattened x is rolled and shaped back"
D["tile"] = "ai.tile(x, r1, r2, ... | {reps}) / x:tile(...) -> x repeated r_i times along each dim (PyTorch's x.repeat(...), a Lua keyword here, and torch.tile): reps and dims aligned to the right, the shorter padded with 1s"
D["repeat_interleave"] = "ai.repeat_interleave(x, repeats [, dim]) / x:repeat_interleave(...) -> each entry along dim repeated `repeats` times (an integer, or an i64 tensor of one count per entry); without dim, of the flattened x"
D["tril"] = "ai.tril(x [, diagonal=0]) / x:tril(...) -> a copy of x (at least 2-D) with the elements above diagonal `diagonal` of the last two dims set to 0 (1: one above the main diagonal, -1: one below)"
D["triu"] = "ai.triu(x [, diagonal=0]) / x:triu(...) -> a copy of x (at least 2-D) with the elements below diagonal `diagonal` of the last two dims set to 0"
D["diag"] = "ai.diag(x [, diagonal=0]) / x:diag(...) -> for a 1-D x, the square matrix with x on diagonal `diagonal` (1: above the main one, -1: below); for a 2-D x, that diagonal as a 1-D tensor"
D["diagonal"] = "ai.diagonal(x [, offset=0 [, dim1=1 [, dim2=2]]]) / x:diagonal(...) -> diagonal `offset` of the planes (dim1, dim2) of x, as its last dim (a view when dim1, dim2 are the last two dims of a contiguous x, else a copy)"
D["trace"] = "ai.trace(x) / x:trace() -> the sum of the main diagonal of the 2-D x (0-dim; i64 for integer x)"
D["outer"] = "ai.outer(a, b) / a:outer(b) -> the matrix a_i b_j of two 1-D tensors"
D["kron"] = "ai.kron(a, b) / a:kron(b) -> the Kronecker product (dims aligned to the right; at most 4)"
D["unbind"] = "ai.unbind(x [, dim=1]) / x:unbind(...) -> the slices of x along dim, as several returns (views): local r, g, b = img:unbind(1)"
D["meshgrid"] = "ai.meshgrid(x1, x2, ... | {x1, x2, ...} [, {indexing=\"ij\"|\"xy\"}]) -> the coordinate grids of the 0-D or 1-D tensors, as several returns (expanded views); \"xy\" swaps the first two dims of the grid (numpy's Cartesian indexing)"
D["all"] = "ai.all(x [, dim | {dims}] [, {keepdim=true}]) / x:all(...) -> u8: whether every element is nonzero (true for none), of all x (0-dim) or along dims"
D["any"] = "ai.any(x [, dim | {dims}] [, {keepdim=true}]) / x:any(...) -> u8: whether any element is nonzero, of all x (0-dim) or along dims"
D["nonzero"] = "ai.nonzero(x [, {as_tuple=false}]) / x:nonzero(...) -> the 1-based indices of the nonzero elements, an n x ndim i64 tensor in row-major order; as_tuple: ndim 1-D tensors, one per dim, as several returns"
D["equal"] = "ai.equal(a, b) / a:equal(b) -> true when a and b have the same shape and the same values (compared after type promotion), else false"
D["isclose"] = "ai.isclose(a, b [, {rtol=1e-5, atol=1e-8, equal_nan=false}]) / a:isclose(...) -> u8: |a - b| <= atol + rtol |b| elementwise (one dtype, broadcast); equal infinities are close, NaNs only with equal_nan"
D["allclose"] = "ai.allclose(a, b [, {rtol=1e-5, atol=1e-8, equal_nan=false}]) / a:allclose(...) -> true when isclose holds everywhere"
D["lerp"] = "ai.lerp(a, b, w) / a:lerp(b, w) -> a + w (b - a), w a number or a tensor (broadcast; one float dtype)"
D["multinomial"] = "ai.multinomial(probs, n [, {replacement=false}]) / probs:multinomial(...) -> n 1-based i64 category indices drawn from each row of probs (K or B x K non-negative weights, normalised here): n or B x n"
D["cdist"] = "ai.cdist(x1, x2 [, {p=2, compute_mode=\"use_mm_for_euclid_dist_if_necessary\"}]) -> the p-norm distances between the rows of x1 (... x P x M) and x2 (... x R x M): ... x P x R; p = 2 runs on one matmul for more than 25 rows, as PyTorch"
D["baddbmm"] = "ai.baddbmm(input, batch1, batch2 [, {beta=1, alpha=1}]) / input:baddbmm(...) -> beta input + alpha (batch1 @ batch2) for 3-D batch1 (B x n x m), batch2 (B x m x p); input broadcast to B x n x p, ignored when beta = 0"

-- autograd -----------------------------------------------------------------------------------
D["Tensor:backward"] = "y:backward([grad] [, {retain_graph=false, create_graph=false}]) -> accumulates dy/dx into x.grad of every leaf x that requires grad (grad: dy, needed unless y has one element)"
D["grad"] = "ai.grad(outputs, inputs [, grad_outputs] [, {grad_outputs=, retain_graph=create_graph, create_graph=false, allow_unused=false}]) -> the gradients of outputs w.r.t. inputs, without .grad accumulation: one tensor for a single input, else a table (nil for unused inputs)"
D["no_grad"] = "ai.no_grad(f, ...) -> calls f(...) without recording operations for autograd; returns its results"
D["Tensor:register_hook"] = "x:register_hook(fn) -> fn(grad) runs when x's gradient of a backward is known (a leaf's: all of it, before .grad); it returns nil to keep it or a tensor of its shape to use instead"
D["Tensor:retain_grad"] = "x:retain_grad() -> a non-leaf keeps its gradients in .grad, as a leaf does; returns x"
D["autograd"] = "ai.autograd: functions with a backward written in Lua: ai.autograd.Function{forward=, backward=}"
D["enable_grad"] = "ai.enable_grad(f, ...) -> calls f(...) with gradient recording on; returns its results"
D["set_grad_enabled"] = "ai.set_grad_enabled(on) -> turns gradient recording on or off (a boolean); returns the previous state"
D["is_grad_enabled"] = "ai.is_grad_enabled() -> whether operations are recorded for autograd"

-- neural-network ops (also ai.F.*, ai.nn.F.*) --------------------------------------------------
-- Images are N x C x H x W; sizes (kernel, stride, padding, ...) are a number or {h, w};
-- reduction is "mean" (default), "sum" or "none"; class indices are 1-based i64.
D["linear"] = "ai.linear(x, weight [, bias]) -> x @ weight^T + bias (weight: out_features x in_features)"
D["conv2d"] = "ai.conv2d(x, weight [, bias] [, {stride=1, padding=0, dilation=1, groups=1}]) -> the 2-d convolution of x (N x C x H x W) with weight (out x C/groups x kh x kw); sizes are numbers or {h, w}"
D["conv_transpose2d"] = "ai.conv_transpose2d(x, weight [, bias] [, {stride=1, padding=0, output_padding=0, dilation=1, groups=1}]) -> the transposed convolution of x (N x C x H x W) with weight (C x out/groups x kh x kw)"
D["max_pool2d"] = "ai.max_pool2d(x, kernel_size [, {stride=kernel_size, padding=0, dilation=1, ceil_mode=false}]) -> the maximum over each window of x (N x C x H x W)"
D["avg_pool2d"] = "ai.avg_pool2d(x, kernel_size [, {stride=kernel_size, padding=0, ceil_mode=false, count_include_pad=true}]) -> the mean over each window of x (N x C x H x W)"
D["adaptive_avg_pool2d"] = "ai.adaptive_avg_pool2d(x, output_size) -> x (N x C x H x W) averaged down to output_size (a number or {h, w})"
D["upsample"] = "ai.upsample(x, {size= | scale_factor=, mode=\"nearest\"|\"bilinear\", align_corners=false}) -> x (N x C x H x W) resized to size (number or {h, w}) or scaled; also ai.interpolate"
D["interpolate"] = "ai.interpolate(x, {size= | scale_factor=, mode=\"nearest\"|\"bilinear\", align_corners=false}) -> x (N x C x H x W) resized (the same function as ai.upsample)"
D["pad"] = "ai.pad(x, {left, right [, top, bottom]} [, {mode=\"constant\"|\"reflect\"|\"replicate\", value=0}]) -> x padded on its last dim, or on the last two (reflect and replicate: N x C x H x W)"
D["batch_norm"] = "ai.batch_norm(x, running_mean, running_var, weight, bias [, {training=false, momentum=0.1, eps=1e-5}]) -> x (N x C x ...) normalised per channel (any of the four may be nil); training uses the batch statistics and updates the running ones in place"
D["group_norm"] = "ai.group_norm(x, num_groups, weight, bias [, {eps=1e-5}]) -> x (N x C x ...) normalised over groups of channels; weight and bias (C) may be nil"
D["instance_norm"] = "ai.instance_norm(x, weight, bias [, {eps=1e-5}]) -> each (sample, channel) plane of x (N x C x ...) normalised on its own; weight and bias (C) may be nil"
D["layer_norm"] = "ai.layer_norm(x, normalized_shape, weight, bias [, {eps=1e-5}]) -> x normalised over its last dims (normalized_shape: a size or a table of sizes matching them); weight and bias may be nil"
D["dropout"] = "ai.dropout(x [, p=0.5 [, training=true]]) -> x with elements zeroed with probability p and the rest scaled by 1/(1-p); x itself when not training"
D["embedding"] = "ai.embedding(indices, weight) -> the rows of weight (num x dim) at the 1-based i64 indices: indices.shape .. {dim}"
D["scaled_dot_product_attention"] = "ai.scaled_dot_product_attention(q, k, v [, {mask=}]) -> softmax(q k^T / sqrt(d)) v over the last two dims (... x L x d); mask: u8 (1 = attend) or a float mask added to the scores"
D["mse_loss"] = "ai.mse_loss(input, target [, {reduction=\"mean\"|\"sum\"|\"none\"}]) -> the mean squared error"
D["l1_loss"] = "ai.l1_loss(input, target [, {reduction=\"mean\"|\"sum\"|\"none\"}]) -> the mean absolute error"
D["smooth_l1_loss"] = "ai.smooth_l1_loss(input, target [, {beta=1, reduction=\"mean\"}]) -> the Huber-like smooth L1 loss (quadratic below beta)"
D["bce_loss"] = "ai.bce_loss(p, target [, {weight=, reduction=\"mean\"}]) -> the binary cross-entropy of probabilities p; also ai.binary_cross_entropy"
D["binary_cross_entropy"] = "ai.binary_cross_entropy(p, target [, {weight=, reduction=\"mean\"}]) -> the binary cross-entropy of probabilities p (the same function as ai.bce_loss)"
D["bce_with_logits"] = "ai.bce_with_logits(logits, target [, {pos_weight=, reduction=\"mean\"}]) -> sigmoid + binary cross-entropy in one stable op; also ai.binary_cross_entropy_with_logits"
D["binary_cross_entropy_with_logits"] = "ai.binary_cross_entropy_with_logits(logits, target [, {pos_weight=, reduction=\"mean\"}]) -> sigmoid + binary cross-entropy (the same function as ai.bce_with_logits)"
D["cross_entropy"] = "ai.cross_entropy(logits, target [, {weight=, ignore_index=, label_smoothing=0, reduction=\"mean\"}]) -> the cross-entropy of logits (N x C [x ...]) against 1-based i64 class targets (N [x ...])"
D["nll_loss"] = "ai.nll_loss(logp, target [, {weight=, ignore_index=, reduction=\"mean\"}]) -> the negative log-likelihood of log-probabilities (N x C [x ...]) at 1-based i64 class targets"
D["kl_div"] = "ai.kl_div(input, target [, {reduction=\"mean\"|\"batchmean\"|\"sum\"|\"none\", log_target=false}]) -> the KL divergence, input holding log-probabilities (\"batchmean\" is the true KL)"

-- neural networks (aiart.nn); most of ai.nn is documented by the comments in lua/aiart/nn ----
D["nn.Module"] = "ai.nn.Module -> the base class of layers: Name = nn.Module:extend(\"Name\"), then define Name:init(...) and Name:forward(...); objects have parameters(), zero_grad(), train(), eval(), state_dict(), ..."
D["nn.Linear"] = "ai.nn.Linear(in_features, out_features [, {bias=true, dtype=\"f32\"}]) -> a module computing y = x W^T + b"
D["nn.Conv2d"] = "ai.nn.Conv2d(in_channels, out_channels, kernel_size [, {stride=1, padding=0 | \"same\" | \"valid\", dilation=1, groups=1, bias=true, padding_mode=\"zeros\"|\"reflect\"|\"replicate\", dtype=\"f32\"}]) -> 2-d convolution over N x C x H x W input"
D["nn.Sequential"] = "ai.nn.Sequential(m1, m2, ...) or ai.nn.Sequential{m1, m2, ...} -> applies the modules in order; seq[1] is the first (named \"0\")"
D["nn.ReLU"] = "ai.nn.ReLU() -> a module applying relu"
D["nn.Embedding"] = "ai.nn.Embedding(num_embeddings, embedding_dim [, {padding_idx=, dtype=\"f32\"}]) -> rows of a learned table for 1-based i64 indices"
D["nn.LayerNorm"] = "ai.nn.LayerNorm(normalized_shape [, {eps=1e-5, elementwise_affine=true, bias=true, dtype=\"f32\"}]) -> normalises the trailing dims (a size or a table of sizes), learned scale and shift"
D["nn.Dropout"] = "ai.nn.Dropout([p=0.5]) -> zeroes elements with probability p in training mode (scaling the rest by 1/(1-p)); the identity in evaluation"
D["nn.mse_loss"] = "ai.nn.mse_loss(input, target [, {reduction=\"mean\"}]) -> the mean squared error (ai.F.mse_loss, ai.mse_loss)"
D["nn.cross_entropy"] = "ai.nn.cross_entropy(logits, target [, {weight=, ignore_index=, label_smoothing=0, reduction=\"mean\"}]) -> the cross-entropy with 1-based class targets (ai.F.cross_entropy)"
D["optim.SGD"] = "ai.optim.SGD(params [, {lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=false, maximize=false}]) -> stochastic gradient descent; :step(), :zero_grad()"
D["optim.Adam"] = "ai.optim.Adam(params [, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0, amsgrad=false, maximize=false}]) -> the Adam optimiser; :step(), :zero_grad()"

-- input/output -------------------------------------------------------------------------------
D["save"] = "ai.save(path, {name = tensor, ...} [, metadata]) -> path: writes the tensors to a safetensors file, atomically (metadata: {key = string|number|boolean})"
D["load"] = "ai.load(path) -> {name = tensor, ...}, {key = \"value\", ...}: the tensors and metadata of a safetensors file"
D["json.encode"] = "ai.json.encode(value [, {indent=false | true | n, sort_keys=true}]) -> a JSON string (tables with keys 1..n are arrays, others objects; ai.json.null is null)"
D["json.decode"] = "ai.json.decode(text) -> the Lua value of a JSON text (arrays as sequences, objects as tables, null as ai.json.null)"
D["io.read_idx"] = "ai.io.read_idx(path) -> the tensor in an IDX file (MNIST format, gzipped or not): u8 stays u8, other integers i64, floats f32/f64"
D["io.write_idx"] = "ai.io.write_idx(path, t) -> writes the u8 tensor t as an IDX file (gzipped when path ends in .gz)"
D["io.load_png"] = "ai.io.load_png(path | png_bytes) -> an f32 C x H x W tensor in [0, 1] (C: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA)"
D["io.save_png"] = "ai.io.save_png(path, t) -> writes t (H x W or C x H x W, C = 1..4; floats in [0, 1], clamped, or u8) as a PNG file"
D["io.png_bytes"] = "ai.io.png_bytes(t) -> a string holding the PNG file of t (H x W or C x H x W, as save_png)"
D["io.save_gif"] = "ai.io.save_gif(path, frames [, {delay=100}]) -> writes an animated GIF: frames a list of H x W / C x H x W tensors of one shape, or an N x H x W / N x C x H x W tensor; delay in ms per frame"
D["io.save_safetensors"] = "ai.io.save_safetensors(path, {name = tensor, ...} [, {key = \"value\", ...}]) -> writes the tensors (and string metadata) to a safetensors file, atomically"
D["io.load_safetensors"] = "ai.io.load_safetensors(path) -> {name = tensor, ...}, {key = \"value\", ...} (F16/BF16 load as f32, I32/I16/I8 as i64, BOOL as u8)"

-- Lua functions whose definition has no comment above it -------------------------------------
-- (the others are documented by the `---` comment above their definition; see D.source_doc)

-- nn.Module and the layers' common methods (a layer's forward, extra_repr and init without a
-- comment of their own show these, or the class's doc for init)
D["nn.Module.init"] = "m:init(...) -> the constructor's body: Class(...) makes the object and calls it; the default does nothing"
D["nn.Module.forward"] = "m:forward(input, ...) -> the module's output; calling m(input, ...) runs it (each layer defines its own)"
D["nn.Module.extra_repr"] = "m:extra_repr() -> the text inside the parentheses when the module is printed (its options)"
D["nn.Module.eval"] = "m:eval() -> m, with evaluation mode set on m and every descendant (m:train(false))"
D["nn.Module.float"] = "m:float() -> m, its floating parameters and buffers converted to f32 (m:to(\"f32\"))"
D["nn.Module.double"] = "m:double() -> m, its floating parameters and buffers converted to f64 (m:to(\"f64\"))"
D["nn.Module.buffers"] = "m:buffers([{recurse=true}]) -> a list of the buffer tensors (shared ones once)"
D["nn.Module.named_buffers"] = "for name, b in m:named_buffers([{prefix=, recurse=true}]) do ... end -> the buffers with their dotted names"
D["nn.Module.named_children"] = "for name, child in m:named_children() do ... end -> the direct child modules with their names"
D["nn.Module.named_modules"] = "for name, sub in m:named_modules([{prefix=}]) do ... end -> m (name \"\") and every descendant, pre-order"
D["nn.is_module"] = "ai.nn.is_module(v) -> whether v is a module object (an instance of nn.Module or of a subclass)"
D["nn.is_parameter"] = "ai.nn.is_parameter(t) -> whether the tensor t was marked a parameter by nn.Parameter (or m:param)"
D["nn.init.zeros_"] = "init.zeros_(t) -> t, filled with 0 in place (not recorded by autograd)"
D["nn.init.ones_"] = "init.ones_(t) -> t, filled with 1 in place (not recorded by autograd)"

D["nn.Linear.reset_parameters"] = "m:reset_parameters() -> re-initialises weight by kaiming_uniform_(a=sqrt(5)) and bias by U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as PyTorch"
D["nn.Conv2d.reset_parameters"] = "m:reset_parameters() -> re-initialises weight by kaiming_uniform_(a=sqrt(5)) and bias by U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as PyTorch"
D["nn.ConvTranspose2d.reset_parameters"] = "m:reset_parameters() -> re-initialises weight by kaiming_uniform_(a=sqrt(5)) and bias by U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as PyTorch"
D["nn.Embedding.reset_parameters"] = "m:reset_parameters() -> weight drawn from N(0, 1), the padding_idx row (if any) set to 0"
D["nn.BatchNorm1d.reset_parameters"] = "m:reset_parameters() -> resets the running statistics, weight to 1 and bias to 0"
D["nn.BatchNorm2d.reset_parameters"] = "m:reset_parameters() -> resets the running statistics, weight to 1 and bias to 0"
D["nn.BatchNorm1d.reset_running_stats"] = "m:reset_running_stats() -> running_mean = 0, running_var = 1, num_batches_tracked = 0"
D["nn.BatchNorm2d.reset_running_stats"] = "m:reset_running_stats() -> running_mean = 0, running_var = 1, num_batches_tracked = 0"

-- classes made by helper functions (no comment above their creation)
D["nn.Identity"] = "ai.nn.Identity(...) -> a module returning its input (constructor arguments are ignored, as PyTorch)"
D["nn.SiLU"] = "ai.nn.SiLU() -> a module applying x * sigmoid(x)"
D["nn.Tanh"] = "ai.nn.Tanh() -> a module applying tanh"
D["nn.Sigmoid"] = "ai.nn.Sigmoid() -> a module applying 1 / (1 + e^-x)"
D["nn.Mish"] = "ai.nn.Mish() -> a module applying x * tanh(softplus(x))"
D["nn.Hardswish"] = "ai.nn.Hardswish() -> a module applying x * relu6(x + 3) / 6"
D["nn.Softmax"] = "ai.nn.Softmax(dim) or ai.nn.Softmax{dim=} -> a module applying softmax along dim (required)"
D["nn.LogSoftmax"] = "ai.nn.LogSoftmax(dim) or ai.nn.LogSoftmax{dim=} -> a module applying log_softmax along dim (required)"
D["nn.ZeroPad2d"] = "ai.nn.ZeroPad2d(padding) -> a module padding the last two dims with zeros (padding: a number or {left, right, top, bottom})"
D["nn.ConstantPad2d"] = "ai.nn.ConstantPad2d(padding [, value=0]) -> a module padding the last two dims with value (padding: a number or {left, right, top, bottom})"
D["nn.ReflectionPad2d"] = "ai.nn.ReflectionPad2d(padding) -> a module padding N x C x H x W input by reflection (padding: a number or {left, right, top, bottom})"
D["nn.ReplicationPad2d"] = "ai.nn.ReplicationPad2d(padding) -> a module padding N x C x H x W input by repeating the edges (padding: a number or {left, right, top, bottom})"
D["nn.MSELoss"] = "ai.nn.MSELoss([{reduction=\"mean\"|\"sum\"|\"none\"}]) -> a module: loss(input, target) is the mean squared error"
D["nn.L1Loss"] = "ai.nn.L1Loss([{reduction=\"mean\"|\"sum\"|\"none\"}]) -> a module: loss(input, target) is the mean absolute error"

-- containers
D["nn.Sequential.forward"] = "seq:forward(x) / seq(x) -> x passed through each module in turn"
D["nn.Sequential.append"] = "seq:append(m) / seq:add(m) / list:append(m) -> adds the module m at the end; returns the container"
D["nn.Sequential.add"] = D["nn.Sequential.append"]
D["nn.ModuleList.append"] = D["nn.Sequential.append"]
D["nn.ModuleList.forward"] = "list:forward() -> an error: a ModuleList has no forward; iterate over it with ipairs(list)"
D["nn.ModuleDict.forward"] = "d:forward() -> an error: a ModuleDict has no forward; index it by name"
D["nn.ModuleDict.values"] = "d:values() -> a list of the modules, in order"
D["nn.ModuleDict.items"] = "for name, m in d:items() do ... end -> the modules with their names, in order"
D["nn.ModuleDict.contains"] = "d:contains(name) -> whether a module is registered under name"

-- functional
D["F.relu6"] = "F.relu6(x) -> min(max(x, 0), 6), elementwise"
D["F.hardswish"] = "F.hardswish(x) -> x * hardsigmoid(x) = x * relu6(x + 3) / 6"

-- optim
D["optim.Optimizer"] = "ai.optim.Optimizer -> the base class of the optimizers: a subclass's init calls Optimizer.init(self, params, defaults, opts) and it defines update_group(group) (and init_state, check_group); objects have step(), zero_grad(), add_param_group(), state_dict(), load_state_dict()"
D["optim.Optimizer.update_group"] = "opt:update_group(group) -> (each optimizer's own) applies one update to the parameters of group that have a gradient; step() calls it"
D["optim.Optimizer.repr"] = "opt:repr() -> the optimizer and the options of its parameter groups as text (tostring(opt))"
D["optim.SGD.init_state"] = "opt:init_state(p, group) -> the new state of parameter p: {} (momentum_buffer is added at the first step with momentum)"
D["optim.Adam.init_state"] = "opt:init_state(p, group) -> the new state of parameter p: {step=0, exp_avg=zeros, exp_avg_sq=zeros}"
D["optim.RMSprop.init_state"] = "opt:init_state(p, group) -> the new state of parameter p: {step=0, square_avg=zeros}"
D["optim.Adagrad.init_state"] = "opt:init_state(p, group) -> the new state of parameter p: {step=0, sum=initial_accumulator_value}"
D["optim.EMA.restore"] = "ema:restore([model]) -> puts back the training weights saved by ema:apply_to"
D["optim.EMA.load_state_dict"] = "ema:load_state_dict(sd) -> restores the averages (and decay, num_updates, warmup) from ema:state_dict()"
D["optim.EMA.repr"] = "ema:repr() -> \"EMA(decay=..., n tensors, n updates)\" (tostring(ema))"

-- sched
D["sched.LRScheduler"] = "ai.sched.LRScheduler -> the base class of the schedulers: a subclass defines init(optimizer, opts), which calls self:setup(optimizer, last_epoch), and lr_at(epoch, base_lr, group_index)"
D["sched.LRScheduler.load_state_dict"] = "sched:load_state_dict(sd) -> restores the state saved by sched:state_dict() (sub-schedulers included)"
D["sched.OneCycleLR.anneal"] = "sched:anneal(start, stop, pct) -> the value pct (0..1) of the way from start to stop, by the anneal_strategy (\"cos\" or \"linear\")"
D["sched.ReduceLROnPlateau.is_better"] = "sched:is_better(a, best) -> whether the metric a improves on best, by mode (\"min\"/\"max\") and threshold_mode (\"rel\"/\"abs\")"

-- data, image, plot, progress, config
D["data.Dataset.len"] = "ds:len() / #ds -> the number of samples"
D["data.is_transform"] = "ai.data.is_transform(v) -> whether v is a transform made by ai.data.transforms"
D["image.target_size"] = "ai.image.target_size(size, h, w) -> height, width that an h x w image is resized to: size a number (the shorter side, keeping the aspect ratio) or {height, width}"
D["plot.canvas"] = "ai.plot.canvas(w, h) -> a blank w x h canvas: :rect, :line, :text draw on it by colour {r, g, b}, :render() -> a 3 x h x w image"
D["plot.text_width"] = "ai.plot.text_width(str, s) -> the width in pixels of str in the plots' 3x5 pixel font at scale s"
D["plot.tick_label"] = "ai.plot.tick_label(v, step) -> the axis label of tick value v for ticks step apart"
D["progress.now"] = "ai.progress.now() -> seconds of a monotonic clock (for rates and ETAs)"
D["progress.format_time"] = "ai.progress.format_time(seconds) -> \"MM:SS\" or \"H:MM:SS\" (\"?\" when unknown)"
D["config.help_text"] = "ai.config.help_text(defaults, opts [, script]) -> the --help text of config.parse: usage line, then each key with its default (and opts.descriptions)"

-- aiart.models
D["models.ResBlock"] = "models.ResBlock(cin, cout [, tdim=128]) -> the UNet's residual block (GroupNorm-SiLU-Conv twice, the timestep embedding added in between); block(x, temb)"
D["models.ResBlock.forward"] = "block:forward(x, temb) / block(x, temb) -> the block's output for x (N x cin x H x W) and the timestep embedding temb (N x tdim)"
D["models.Attention"] = "models.Attention(c) -> self-attention over the pixels of an N x c x H x W map, with a residual connection"
D["models.Attention.forward"] = "attn:forward(x) / attn(x) -> x + the attention of its pixels"
D["models.UNet.forward"] = "unet:forward(x, t) / unet(x, t) -> the predicted noise for images x (N x C x H x W) at timesteps t (N, 0-based floats as diffusion.loss passes them)"
D["models.Classifier.features"] = "net:features(x) -> the 256-d penultimate features of x (N x 1 x 28 x 28)"
D["models.Classifier.forward"] = "net:forward(x) / net(x) -> the class logits of x (N x classes)"

------------------------------------------------------------------------------------------------
-- Docs read from the Lua sources
------------------------------------------------------------------------------------------------
-- A Lua function without an entry above is documented by the comment block directly above its
-- definition: the contiguous `---` / `--` lines (or one --[[ ]] block) that end on the line
-- before `function ...`. A ruler (a line of 4 or more dashes) ends the block. File contents are
-- read once and cached. A class (a table whose metatable has __call, such as ai.nn.Linear) is
-- documented by the comment above its init method, else by the one above the line that creates
-- it (Module:extend("Name"), class("Name", ...), closed_form("Name", ...)).
-- These helpers are functions, not doc strings: D.source_doc, D.class_doc and D.help.

local file_cache = {} -- path -> array of lines, or false when unreadable

local function file_lines(path)
  local lines = file_cache[path]
  if lines == nil then
    lines = false
    local fh = io.open(path, "r")
    if fh then
      lines = {}
      for l in fh:lines() do lines[#lines + 1] = l end
      fh:close()
    end
    file_cache[path] = lines
  end
  return lines or nil
end

local function is_ruler(l) return l:match("^%s*%-%-%-%-") ~= nil end

-- The comment block ending on line n - 1 of lines, as text without the comment markers.
local function comment_above(lines, n)
  local i = n - 1
  local l = lines[i]
  if not l then return nil end
  local body = {}
  if l:match("%]%]%s*$") and not l:match("^%s*%-%-") then
    -- the end of a multi-line --[[ ... ]] block
    local j = i
    while j >= 1 and j > i - 200 and not lines[j]:match("^%s*%-%-%[=*%[") do j = j - 1 end
    if j < 1 or j <= i - 200 then return nil end
    for k = j, i do body[#body + 1] = lines[k] end
    body[1] = body[1]:gsub("^%s*%-%-%[=*%[%s*", "")
    body[#body] = body[#body]:gsub("%]=*%]%s*$", "")
  else
    local first = i + 1
    while i >= 1 and lines[i]:match("^%s*%-%-") and not is_ruler(lines[i]) do
      first = i
      i = i - 1
    end
    for k = first, n - 1 do
      local t = lines[k]:gsub("^%s*%-%-%[=*%[", ""):gsub("%]=*%]%s*$", "")
      t = t:gsub("^%s*%-%-%-?", "")
      body[#body + 1] = t
    end
  end
  -- common indentation off, blank lines at both ends off
  local indent
  for _, t in ipairs(body) do
    if t:match("%S") then
      local sp = #t:match("^ *")
      if not indent or sp < indent then indent = sp end
    end
  end
  for k, t in ipairs(body) do body[k] = t:sub((indent or 0) + 1):gsub("%s+$", "") end
  while body[1] == "" do table.remove(body, 1) end
  while body[#body] == "" do body[#body] = nil end
  if #body == 0 then return nil end
  return table.concat(body, "\n")
end

local function source_of(f)
  f = require("aiart.util").unwrap(f) -- the comment above the function, not above its argument-count check
  local info = debug.getinfo(f, "S")
  if not info or info.what ~= "Lua" or info.source:sub(1, 1) ~= "@" then return nil end
  return info.source:sub(2), info.linedefined
end

-- D.source_doc(f) -> the comment above the definition of the Lua function f, or nil.
function D.source_doc(f)
  if type(f) ~= "function" then return nil end
  local path, line = source_of(f)
  if not path or not line or line < 2 then return nil end
  local lines = file_lines(path)
  return lines and comment_above(lines, line) or nil
end

local function callable(t)
  local mt = getmetatable(t)
  return type(mt) == "table" and rawget(mt, "__call") ~= nil
end

-- D.class_doc(cls) -> the constructor doc of a class table (init's comment, or the comment
-- above the line that creates the class), or nil.
function D.class_doc(cls)
  if type(cls) ~= "table" or not callable(cls) then return nil end
  local init = rawget(cls, "init")
  local d = D.source_doc(init)
  if d then return d end
  local name = rawget(cls, "__name")
  if type(name) ~= "string" then return nil end
  local files, order = {}, {}
  local function add_file(f)
    local path = type(f) == "function" and source_of(f)
    if path and not files[path] then files[path] = true; order[#order + 1] = path end
  end
  add_file(init)
  for _, v in pairs(cls) do add_file(v) end
  local mt = getmetatable(cls)
  add_file(rawget(mt, "__call"))
  table.sort(order)
  local q = "[\"']" .. name:gsub("%p", "%%%0") .. "[\"']"
  local patterns = { "extend%(%s*" .. q .. "%s*%)", "class%(%s*" .. q, "^[%w_][%w_.%s=]*[%w_.:]%(%s*" .. q }
  for _, pat in ipairs(patterns) do
    for _, path in ipairs(order) do
      local lines = file_lines(path) or {}
      for n, l in ipairs(lines) do
        if l:find(pat) then
          d = comment_above(lines, n)
          if d then return d end
        end
      end
    end
  end
  return nil
end

-- D.help (not a string either): ai.help(f) outside the REPL, the same as help(f) and ?f in it.
-- l_aiart.c makes ai.help load it lazily.
D.help = function(...) return require("aiart.repl").help(...) end

D["doc.help"] = "ai.help([f | \"name\" | table | tensor]) -> prints the doc of a function or class, the functions of a table, or a tensor's shape and dtype (the REPL's help(x) and ?x)"
D["doc.source_doc"] = "require(\"aiart.doc\").source_doc(f) -> the comment block directly above the definition of the Lua function f, or nil"
D["doc.class_doc"] = "require(\"aiart.doc\").class_doc(cls) -> the constructor doc of a class table (its init's comment, or the comment above the line that creates it), or nil"

return D
