"""tests/parity/make_parity.py: the PyTorch numbers that tests/test_parity.lua checks aiart-lua
against (run with a python3 that has torch; `make test` itself needs no PyTorch):
    /usr/bin/python3 tests/parity/make_parity.py > tests/parity/parity.json
Each case is named; values are plain lists, gradients included; inf and NaN are strings."""
import json
import math
import torch

cases = {}


def bce(name, p, y, weight=None, reduction="mean"):
    p = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(y, dtype=torch.float64, requires_grad=True)
    w = torch.tensor(weight, dtype=torch.float64) if weight is not None else None
    loss = torch.nn.functional.binary_cross_entropy(p, y, weight=w, reduction=reduction)
    loss.backward()
    cases[name] = {"p": p.tolist(), "y": y.tolist(), "weight": weight, "reduction": reduction,
                   "loss": loss.item(), "grad_p": p.grad.tolist(), "grad_y": y.grad.tolist()}


# the survey's GAN: sigmoid outputs that are exactly 0 or 1, against targets 0 and 1
bce("bce_edges", [0.0, 1.0, 0.0, 1.0, 0.5, 1e-30], [0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
bce("bce_sum_weighted", [0.25, 0.75, 1.0, 0.0], [1.0, 0.0, 1.0, 1.0], weight=[1.0, 2.0, 0.5, 3.0], reduction="sum")
bce("bce_soft_targets", [0.1, 0.9, 0.999999, 1e-7], [0.3, 0.7, 0.9, 0.1])

# the type-promotion table: result dtype of a + b for tensors with dims, 0-dim tensors and numbers
DT = {"u8": torch.uint8, "i64": torch.int64, "f32": torch.float32, "f64": torch.float64}
NAMES = {v: k for k, v in DT.items()}
promotion = {}
operands = {}
for k, d in DT.items():
    operands[k] = torch.ones(3, dtype=d)
    operands[k + "_0d"] = torch.ones((), dtype=d)
operands["int"] = 2
operands["float"] = 2.5
for a, va in operands.items():
    for b, vb in operands.items():
        if isinstance(va, torch.Tensor) or isinstance(vb, torch.Tensor):
            promotion[a + "+" + b] = NAMES[torch.result_type(va, vb)]
cases["promotion"] = promotion

# integer arithmetic: floor division and remainder round toward -inf, as Lua's // and %
ia = [7, -7, 7, -7, 0, 9223372036854775807, -9223372036854775808]
ib = [2, 2, -2, -2, 3, 2, 3]
ta, tb = torch.tensor(ia), torch.tensor(ib)
cases["int_arith"] = {"a": ia, "b": ib,
                      "floor_divide": torch.div(ta, tb, rounding_mode="floor").tolist(),
                      "remainder": torch.remainder(ta, tb).tolist(),
                      "add_wrap": (ta + tb).tolist(), "mul_wrap": (ta * tb).tolist()}


# the unary maths of the registry: values and first gradients at a few points of each domain
math_x = {"tan": [-1.2, -0.3, 0.0, 0.7, 1.3], "asin": [-0.99, -0.5, 0.0, 0.3, 0.9],
          "acos": [-0.99, -0.5, 0.0, 0.3, 0.9], "atan": [-5.0, -0.5, 0.0, 0.5, 20.0],
          "sinh": [-3.0, -0.5, 0.0, 0.5, 4.0], "cosh": [-3.0, -0.5, 0.0, 0.5, 4.0],
          "asinh": [-30.0, -0.5, 0.0, 0.5, 4.0], "acosh": [1.0001, 1.5, 3.0, 10.0, 1e6],
          "atanh": [-0.99, -0.5, 0.0, 0.5, 0.9], "erfinv": [-0.999999, -0.9, -0.3, 0.0, 0.5, 0.99, 0.9999999],
          "lgamma": [0.001, 0.5, 1.0, 2.5, 7.0, 100.0, -0.5, -2.5], "digamma": [0.001, 0.5, 1.0, 2.5, 7.0, 100.0, -0.5, -2.5]}
unary = {}
for name, xs in math_x.items():
    x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    y = getattr(torch, name)(x)
    y.sum().backward()
    unary[name] = {"x": xs, "y": y.tolist(), "grad": x.grad.tolist()}
x32 = torch.tensor(math_x["erfinv"], dtype=torch.float32)
unary["erfinv"]["y_f32"] = torch.erfinv(x32).tolist()
t = torch.tensor(math_x["digamma"], dtype=torch.float64)
unary["trigamma"] = {"x": math_x["digamma"], "y": torch.polygamma(1, t).tolist()}
cases["unary_math"] = unary
ba = [-1000.0, -2.0, 0.0, 1.5, 30.0, 0.0]
bb = [-1000.0, 3.0, 0.0, -2.5, 1e-3, -1e4]
binary = {}
for name in ["logaddexp", "hypot"]:
    a = torch.tensor(ba, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(bb, dtype=torch.float64, requires_grad=True)
    y = getattr(torch, name)(a, b)
    y.sum().backward()
    binary[name] = {"a": ba, "b": bb, "y": y.tolist(), "grad_a": a.grad.tolist(), "grad_b": b.grad.tolist()}
cases["binary_math"] = binary


# advanced indexing (torch is 0-based: the Lua side adds 1 to every position)
a = torch.arange(1, 25).view(2, 3, 4)
ix = {
    "rows": a[torch.tensor([1, 0, 1])].tolist(),
    "pairs": a[torch.tensor([0, 1]), torch.tensor([2, 0]), torch.tensor([3, 1])].tolist(),
    "apart": a[torch.tensor([0, 1]), :, torch.tensor([0, 3])].tolist(),
    "adjacent": a[:, torch.tensor([0, 2]), torch.tensor([1, 1])].tolist(),
    "broadcast": a[torch.tensor([[0], [1]]), torch.tensor([0, 2])].tolist(),
    "mask_range": a[torch.tensor([True, False]), 1:3].tolist(),
}
w = torch.arange(12, dtype=torch.float64).view(3, 4).requires_grad_(True)
(w[torch.tensor([2, 0, 2]), torch.tensor([1, 1, 3])] * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
ix["grad"] = w.grad.tolist()
cases["indexing"] = ix


# sorting (1-based on the Lua side: add 1 to every index); stable ties, NaN sorted last
nan = float("nan")
x = torch.tensor([[3.0, 1.0, 2.0, 1.0, 7.0], [nan, -1.0, 5.0, 2.0, -1.0]], dtype=torch.float64)
sv, si = torch.sort(x, dim=1, stable=True)
dv, di = torch.sort(x, dim=1, descending=True, stable=True)
tv, ti = torch.topk(x, 3, dim=1)
kv, ki = torch.kthvalue(x[0], 2)
mv, mi = torch.median(x, dim=1)
q = torch.tensor([0.0, 0.3, 0.5, 1.0], dtype=torch.float64)
y = torch.tensor([4.0, 1.0, 3.0, 2.0, 8.0], dtype=torch.float64)
u, uinv, ucnt = torch.unique(torch.tensor([3, 1, 3, 2, 1, 7]), sorted=True, return_inverse=True, return_counts=True)
seq = torch.tensor([1.0, 3.0, 3.0, 5.0, 7.0], dtype=torch.float64)
vals = torch.tensor([0.0, 3.0, 4.0, 7.0, 9.0], dtype=torch.float64)
cases["sorting"] = {
    "x": [[v if v == v else "nan" for v in row] for row in x.tolist()],
    "sort_v": sv.tolist(), "sort_i": si.tolist(), "sortd_v": dv.tolist(), "sortd_i": di.tolist(),
    "topk_v": tv.tolist(), "topk_i": ti.tolist(), "kth_v": kv.item(), "kth_i": ki.item(),
    "median_v": mv.tolist(), "median_i": mi.tolist(), "median_all": torch.median(y).item(),
    "y": y.tolist(), "q": q.tolist(),
    "quantile": {m: torch.quantile(y, q, interpolation=m).tolist() for m in ["linear", "lower", "higher", "nearest", "midpoint"]},
    "unique": [u.tolist(), uinv.tolist(), ucnt.tolist()],
    "seq": seq.tolist(), "vals": vals.tolist(),
    "searchsorted": torch.searchsorted(seq, vals).tolist(),
    "searchsorted_right": torch.searchsorted(seq, vals, right=True).tolist(),
}


# samplers on a toy denoiser whose data is N(0, s^2) per element: D(x, sigma) = x s^2 / (s^2 +
# sigma^2). A plain transcription of DPM-Solver++(2M) (Lu et al. 2022, as k-diffusion writes it),
# Euler and Heun, in float64, on Karras sigmas; the Lua samplers must give the same numbers.
def karras(n, lo, hi, rho=7.0):
    a, b = hi ** (1 / rho), lo ** (1 / rho)
    return [(a + i / (n - 1) * (b - a)) ** rho for i in range(n)] + [0.0]


def toy(x, sigma, s2=0.25):
    return x * s2 / (s2 + sigma * sigma)


def euler(x, sig):
    for i in range(len(sig) - 1):
        d = (x - toy(x, sig[i])) / sig[i]
        x = x + d * (sig[i + 1] - sig[i])
    return x


def heun(x, sig):
    for i in range(len(sig) - 1):
        s, s1 = sig[i], sig[i + 1]
        d = (x - toy(x, s)) / s
        if s1 == 0:
            x = x + d * (s1 - s)
        else:
            x2 = x + d * (s1 - s)
            d2 = (x2 - toy(x2, s1)) / s1
            x = x + (d + d2) * (s1 - s) / 2
    return x


def dpmpp_2m(x, sig):
    old = None
    h_last = None
    for i in range(len(sig) - 1):
        den = toy(x, sig[i])
        if sig[i + 1] == 0:
            x = den
        else:
            t, t_next = -math.log(sig[i]), -math.log(sig[i + 1])
            h = t_next - t
            if old is None:
                x = (sig[i + 1] / sig[i]) * x - math.expm1(-h) * den
            else:
                r = h_last / h
                dd = (1 + 1 / (2 * r)) * den - (1 / (2 * r)) * old
                x = (sig[i + 1] / sig[i]) * x - math.expm1(-h) * dd
            h_last = h
        old = den
    return x


sig = karras(10, 0.03, 15.0)
xt = torch.tensor([-20.0, -3.0, 0.5, 7.0, 15.0], dtype=torch.float64)
cases["samplers"] = {"sigmas": sig, "x": xt.tolist(), "s2": 0.25,
                     "dpmpp_2m": dpmpp_2m(xt, sig).tolist(), "euler": euler(xt, sig).tolist(),
                     "heun": heun(xt, sig).tolist(),
                     "exact": (xt * math.sqrt(0.25 / (0.25 + 15.0 ** 2))).tolist()}
# the port ops (tests/test_port_ops.lua): values and gradients of the shape ops, lerp, cdist,
# baddbmm and einsum, and the tests of values. Inputs are f64 and sin-valued (the Lua side
# makes the same: vals(shape, k) holds sin(0.7 i + k) for i = 1..n in row-major order); the
# gradients are those of (y * vals(y.shape, 9)).sum().
def vals(shape, k):
    n = 1
    for d in shape:
        n *= d
    return torch.sin(torch.arange(1, n + 1, dtype=torch.float64) * 0.7 + k).reshape(shape)


def grads(f, *shapes):
    xs = [vals(sh, i + 1).requires_grad_() for i, sh in enumerate(shapes)]
    y = f(*xs)
    (y * vals(list(y.shape), 9)).sum().backward()
    return {"y": y.detach().flatten().tolist(), "shape": list(y.shape), "inputs": shapes,
            "grads": [x.grad.flatten().tolist() for x in xs]}


port = {}
port["flip"] = grads(lambda x: torch.flip(x, [0, 2]), [2, 3, 4])
port["roll"] = grads(lambda x: torch.roll(x, (1, -2), (0, 2)), [2, 3, 4])
port["roll_flat"] = grads(lambda x: torch.roll(x, 5), [2, 3, 4])
port["tile"] = grads(lambda x: x.repeat(2, 1, 3), [2, 3])
port["tile_short"] = grads(lambda x: torch.tile(x, (2,)), [2, 3])
port["repeat_interleave"] = grads(lambda x: torch.repeat_interleave(x, 2, dim=1), [2, 3])
port["repeat_interleave_counts"] = grads(lambda x: torch.repeat_interleave(x, torch.tensor([1, 0, 3]), dim=1), [2, 3])
port["repeat_interleave_flat"] = grads(lambda x: torch.repeat_interleave(x, 2), [2, 3])
port["tril"] = grads(lambda x: torch.tril(x, -1), [2, 3, 4])
port["triu"] = grads(lambda x: torch.triu(x, 1), [3, 4])
port["diag_vector"] = grads(lambda x: torch.diag(x, -2), [3])
port["diag_matrix"] = grads(lambda x: torch.diag(x, 1), [3, 4])
port["diagonal"] = grads(lambda x: torch.diagonal(x, -1, 0, 2), [3, 2, 4])
port["trace"] = grads(lambda x: torch.trace(x), [3, 4])
port["outer"] = grads(lambda a, b: torch.outer(a, b), [3], [4])
port["kron"] = grads(lambda a, b: torch.kron(a, b), [2, 3], [2, 2])
port["kron_dims"] = grads(lambda a, b: torch.kron(a, b), [2], [2, 3])
port["lerp_number"] = grads(lambda a, b: torch.lerp(a, b, 0.3), [2, 3], [2, 3])
port["lerp_number_high"] = grads(lambda a, b: torch.lerp(a, b, 0.8), [2, 3], [2, 3])
port["lerp_tensor"] = grads(lambda a, b, w: torch.lerp(a, b, w), [2, 3], [2, 3], [2, 3])
port["baddbmm"] = grads(lambda i, b1, b2: torch.baddbmm(i, b1, b2, beta=0.5, alpha=2), [2, 3, 4], [2, 3, 5], [2, 5, 4])
port["baddbmm_broadcast"] = grads(lambda i, b1, b2: torch.baddbmm(i, b1, b2), [4], [2, 3, 5], [2, 5, 4])
cdist = {}
for p_ in ["2", "1", "0.5", "3", "inf"]:
    cdist[p_] = grads(lambda a, b: torch.cdist(a, b, p=float(p_)), [2, 4, 3], [2, 5, 3])
cdist["mm"] = grads(lambda a, b: torch.cdist(a, b, compute_mode="use_mm_for_euclid_dist"), [4, 3], [5, 3])
cdist["large"] = grads(lambda a, b: torch.cdist(a, b), [30, 3], [2, 3])
cdist["zero"] = {"y": torch.cdist(vals([4, 3], 1).round(), vals([5, 3], 2).round(), p=0).flatten().tolist()}
port["cdist"] = cdist
port["einsum"] = []
for eq, shapes in [("ij,jk->ik", [[3, 4], [4, 5]]), ("bij,bjk->bik", [[2, 3, 4], [2, 4, 5]]),
                   ("ii->i", [[3, 3]]), ("ii", [[3, 3]]), ("ij->", [[3, 4]]), ("ij->ji", [[3, 4]]),
                   ("i,j->ij", [[3], [4]]), ("bn,anm,bm->ba", [[2, 3], [4, 3, 5], [2, 5]]),
                   ("...ij,...jk", [[5, 1, 2, 3], [4, 3, 6]]), ("bA,a", [[2, 3], [2]]),
                   ("iij->j", [[3, 3, 2]]), ("ij,ij->ij", [[2, 1], [2, 6]]), ("i,i", [[3], [3]]),
                   ("abc,cd,bd->a", [[2, 3, 4], [4, 5], [3, 5]]), ("...ij->ij", [[2, 3, 4]])]:
    port["einsum"].append(dict(grads(lambda *xs: torch.einsum(eq, *xs), *shapes), eq=eq))
# tests of values: 0/1 results as lists
m = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])
port["all_any"] = {"x": m.tolist(), "all": torch.all(m).item(), "any": torch.any(m).item(),
                   "all_1": torch.all(m, 1).int().tolist(), "any_0": torch.any(m, 0).int().tolist(),
                   "nonzero": (torch.nonzero(m) + 1).tolist()}
a = [1.0, 1.0001, float("inf"), float("inf"), float("nan"), 5.0, 0.0, -1e-9]
b = [1.0, 1.0, float("inf"), float("-inf"), float("nan"), float("inf"), 1e-9, 0.0]
ta, tb = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
port["isclose"] = {"a": a, "b": b, "default": torch.isclose(ta, tb).int().tolist(),
                   "loose": torch.isclose(ta, tb, rtol=1e-3, atol=0.0, equal_nan=True).int().tolist(),
                   "exact": torch.isclose(ta, tb, rtol=0.0, atol=0.0).int().tolist(),
                   "int": torch.isclose(torch.tensor([100, 5]), torch.tensor([101, 9]), rtol=0.1, atol=0).int().tolist(),
                   "allclose": torch.allclose(ta[:2], tb[:2], rtol=1e-3),
                   "equal_mixed": torch.equal(torch.tensor([1, 2]), torch.tensor([1.0, 2.0]))}
cases["port_ops"] = port


def finite_json(v):
    """JSON has no inf or NaN: they are written as the strings "inf", "-inf", "nan"."""
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return "nan" if v != v else ("inf" if v > 0 else "-inf")
    if isinstance(v, list):
        return [finite_json(e) for e in v]
    if isinstance(v, dict):
        return {k: finite_json(e) for k, e in v.items()}
    return v


print(json.dumps(finite_json(cases), indent=1, sort_keys=True))
