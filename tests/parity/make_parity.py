"""tests/parity/make_parity.py: the PyTorch numbers that tests/test_parity.lua checks aiart-lua
against (run with a python3 that has torch; `make test` itself needs no PyTorch):
    /usr/bin/python3 tests/parity/make_parity.py > tests/parity/parity.json
Each case is named; values are plain lists, gradients included; inf and NaN are strings."""
import json
import torch

torch.set_default_dtype(torch.float64)
cases = {}


def bce(name, p, y, weight=None, reduction="mean"):
    p = torch.tensor(p, requires_grad=True)
    y = torch.tensor(y, requires_grad=True)
    w = torch.tensor(weight) if weight is not None else None
    loss = torch.nn.functional.binary_cross_entropy(p, y, weight=w, reduction=reduction)
    loss.backward()
    cases[name] = {"p": p.tolist(), "y": y.tolist(), "weight": weight, "reduction": reduction,
                   "loss": loss.item(), "grad_p": p.grad.tolist(), "grad_y": y.grad.tolist()}


# the survey's GAN: sigmoid outputs that are exactly 0 or 1, against targets 0 and 1
bce("bce_edges", [0.0, 1.0, 0.0, 1.0, 0.5, 1e-30], [0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
bce("bce_sum_weighted", [0.25, 0.75, 1.0, 0.0], [1.0, 0.0, 1.0, 1.0], weight=[1.0, 2.0, 0.5, 3.0], reduction="sum")
bce("bce_soft_targets", [0.1, 0.9, 0.999999, 1e-7], [0.3, 0.7, 0.9, 0.1])

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
