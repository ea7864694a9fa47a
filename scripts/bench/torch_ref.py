#!/usr/bin/env python3
"""scripts/bench/torch_ref.py: the reference workloads of shared/reference-models.md in PyTorch,
timed exactly as scripts/bench.lua times aiart-lua (which runs this script in the same run).

  python3 scripts/bench/torch_ref.py --workload NAME [threads=2 steps=N seconds=12 warmup=3 data=real]
  python3 scripts/bench/torch_ref.py --micro [threads=2 quick=true micro_seconds=0.3 only=conv2d,...]
  python3 scripts/bench/torch_ref.py --list

Prints one JSON line per workload (or per microbenchmark) with "impl": "pytorch". The models are
written from the reference document (same layers, shapes, optimizers, batch sizes); real batches
come from Fashion-MNIST, drawn before the timing starts (a pool of 16, cycled), as in bench.lua.
"""
import gzip
import json
import math
import os
import statistics
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
POOL = 16
ORDER = ["mlp_gan_b32", "mlp_gan_b64", "dcgan_b64", "ddpm_unet_b64", "ddpm_unet_b64_infer", "ddpm_unet_cond_b64",
         "ddpm_guided_sample_b64", "style_vgg19_256"]
WORKLOAD_KEYS = ["workload", "impl", "ms_per_step", "peak_rss_mb", "gflop_per_step", "gflops", "steps", "warmup",
                 "threads", "data"]
MICRO_KEYS = ["micro", "impl", "op", "shape", "threads", "ms", "gflops", "gbps", "us_per_op", "pct_of_sgemm", "ns_per_element"]


def parse_args(argv):
    mode, name, opts = "list", None, {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--workload":
            mode, name = "workload", argv[i + 1]
            i += 1
        elif a == "--micro":
            mode = "micro"
        elif a == "--list":
            mode = "list"
        elif "=" in a:
            k, v = a.split("=", 1)
            opts[k] = v
        else:
            sys.exit("torch_ref.py: unknown argument " + a)
        i += 1
    return mode, name, opts


MODE, NAME, OPTS = parse_args(sys.argv[1:])
THREADS = int(OPTS.get("threads", 2))
torch.set_num_threads(THREADS)
QUICK = OPTS.get("quick", "false") in ("true", "1", "yes")


def now():
    return time.perf_counter()


def proc_status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return None


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def emit(rec, keys):
    out = {k: rec[k] for k in keys if k in rec}
    for k in sorted(rec):
        if k not in out:
            out[k] = rec[k]
    for k, v in out.items():
        if isinstance(v, float):
            out[k] = float("%.6g" % v)
    print(json.dumps(out), flush=True)


# ------------------------------------------------------------------------------------- FLOPs

def conv_macs(cin, cout, k, hout, wout):
    return cin * cout * k * k * hout * wout


def flops_mlp_gan(b):
    G = 100 * 128 + 128 * 256 + 256 * 512 + 512 * 784
    D = 784 * 512 + 512 * 256 + 256 * 1
    return 3 * 2 * b * (G + 3 * D)


def flops_dcgan(b):
    G = 100 * 6272 + conv_macs(128, 64, 4, 7, 7) + conv_macs(64, 1, 4, 14, 14)
    D = conv_macs(1, 64, 4, 14, 14) + conv_macs(64, 128, 4, 7, 7) + 6272
    return 3 * 2 * b * (G + 3 * D)


def flops_unet_forward(b):
    def res(cin, cout, hw):
        return (conv_macs(cin, cout, 3, hw, hw) + 128 * cout + conv_macs(cout, cout, 3, hw, hw)
                + (conv_macs(cin, cout, 1, hw, hw) if cin != cout else 0))
    u = (2 * 128 * 128 + conv_macs(1, 32, 3, 28, 28) + res(32, 32, 28) + conv_macs(32, 32, 3, 14, 14)
         + res(32, 64, 14) + conv_macs(64, 64, 3, 7, 7) + res(64, 64, 7) + conv_macs(64, 192, 1, 7, 7)
         + conv_macs(64, 64, 1, 7, 7) + res(64, 64, 7) + res(128, 64, 14) + res(96, 32, 28)
         + conv_macs(32, 1, 3, 28, 28))
    return 2 * b * u


def flops_vgg_forward():
    v = (conv_macs(3, 64, 3, 256, 256) + conv_macs(64, 64, 3, 256, 256) + conv_macs(64, 128, 3, 128, 128)
         + conv_macs(128, 128, 3, 128, 128) + conv_macs(128, 256, 3, 64, 64) + 3 * conv_macs(256, 256, 3, 64, 64)
         + conv_macs(256, 512, 3, 32, 32))
    return 2 * v


# ------------------------------------------------------------------------------------- data

def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    assert zero == 0 and dtype == 0x08, "expected an unsigned-byte IDX file"
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8)
    return data.view(*shape)


def batch_source(b, image, data):
    source = data
    if data == "real" and not os.path.exists(FMNIST):
        print("torch_ref.py: %s is missing; using random data" % FMNIST, file=sys.stderr)
        source = "random"
    if source == "real":
        imgs = read_idx(FMNIST)
        batches = [(imgs[torch.randint(0, imgs.shape[0], (b,))].float() / 127.5 - 1).contiguous()
                   for _ in range(POOL)]
        del imgs
    else:
        batches = [torch.rand(b, 784) * 2 - 1 for _ in range(POOL)]
    batches = [x.view(b, 1, 28, 28) if image else x.view(b, 784) for x in batches]
    state = {"k": 0}

    def next_batch():
        state["k"] = (state["k"] + 1) % POOL
        return batches[state["k"]]
    return next_batch, source


# ------------------------------------------------------------------------------------- models

def mlp_gan_models():
    G = nn.Sequential(
        nn.Linear(100, 128), nn.LeakyReLU(0.2),
        nn.Linear(128, 256), nn.BatchNorm1d(256), nn.LeakyReLU(0.2),
        nn.Linear(256, 512), nn.BatchNorm1d(512), nn.LeakyReLU(0.2),
        nn.Linear(512, 784), nn.Tanh())
    D = nn.Sequential(
        nn.Linear(784, 512), nn.LeakyReLU(0.2),
        nn.Linear(512, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 1), nn.Sigmoid())
    return G, D


def dcgan_models():
    G = nn.Sequential(
        nn.Linear(100, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())
    D = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1))
    return G, D


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(10000) / half))
    args = t.float().view(-1, 1) * freqs.view(1, -1)
    return torch.cat([args.sin(), args.cos()], 1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, tdim=128):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(tdim, cout)
        self.norm2 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.cout = cout

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x))) + self.temb(temb).view(-1, self.cout, 1, 1)
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.GroupNorm(8, c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.out = nn.Conv2d(c, c, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).view(n, 3, c, h * w).transpose(2, 3)  # n, 3, hw, c
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=-1)  # 1.13 has no F.sdpa
        o = a @ v  # n, hw, c
        return x + self.out(o.transpose(1, 2).reshape(n, c, h, w))


class UNet(nn.Module):
    """models.UNet; classes = n > 0 adds its label embedding (labels 0..n-1 here, n the null label)."""
    def __init__(self, ch=32, mults=(1, 2), cin=1, classes=0):
        super().__init__()
        self.time_mlp = nn.Sequential(nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 128))
        self.label_emb = nn.Embedding(classes + 1, 128) if classes > 0 else None
        self.null_label = classes
        self.inc = nn.Conv2d(cin, ch, 3, padding=1)
        self.enc, self.down, self.dec = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        widths, c = [], ch
        for m in mults:
            widths.append(ch * m)
            self.enc.append(ResBlock(c, widths[-1]))
            self.down.append(nn.Conv2d(widths[-1], widths[-1], 3, stride=2, padding=1))
            c = widths[-1]
        self.mid1, self.attn, self.mid2 = ResBlock(c, c), Attention(c), ResBlock(c, c)
        for w in reversed(widths):
            self.dec.append(ResBlock(c + w, w))
            c = w
        self.out = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, cin, 3, padding=1))
        self.levels = len(mults)

    def forward(self, x, t, labels=None):
        temb = self.time_mlp(timestep_embedding(t, 128))
        if self.label_emb is not None:
            temb = temb + self.label_emb(labels)
        h, skips = self.inc(x), []
        for l in range(self.levels):
            h = self.enc[l](h, temb)
            skips.append(h)
            h = self.down[l](h)
        h = self.mid2(self.attn(self.mid1(h, temb)), temb)
        for k in range(self.levels):
            h = self.dec[k](torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), skips[-1 - k]], 1), temb)
        return self.out(h)


def vgg19_to_relu4_1():
    cfg, layers, c = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512], [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.AvgPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
            c = v
    return nn.Sequential(*layers)


# ------------------------------------------------------------------------------------- workloads

def setup_mlp_gan(b):
    def setup(data):
        next_batch, source = batch_source(b, False, data)
        G, D = mlp_gan_models()
        optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.9, 0.999))
        optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.9, 0.999))
        ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)

        def step():
            real = next_batch()
            fake = G(torch.randn(b, 100))
            optD.zero_grad()
            lossD = F.binary_cross_entropy(D(real), ones) + F.binary_cross_entropy(D(fake.detach()), zeros)
            lossD.backward()
            optD.step()
            optG.zero_grad()
            lossG = F.binary_cross_entropy(D(fake), ones)
            lossG.backward()
            optG.step()
        return step, flops_mlp_gan(b) / 1e9, source
    return setup


def setup_dcgan(data):
    b = 64
    next_batch, source = batch_source(b, True, data)
    G, D = dcgan_models()
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)

    def step():
        real = next_batch()
        fake = G(torch.randn(b, 100))
        optD.zero_grad()
        lossD = (F.binary_cross_entropy_with_logits(D(real), ones)
                 + F.binary_cross_entropy_with_logits(D(fake.detach()), zeros))
        lossD.backward()
        optD.step()
        optG.zero_grad()
        lossG = F.binary_cross_entropy_with_logits(D(fake), ones)
        lossG.backward()
        optG.step()
    return step, flops_dcgan(b) / 1e9, source


# the DDPM workloads' linear schedule, and the conditional ones' classes and guidance, as bench.lua
DDPM_T, CLASSES, P_UNCOND, GUIDANCE = 1000, 10, 0.1, 3


def unet_and_schedule(classes=0):
    """The reference UNet (with classes: the class-conditional one) and the linear schedule's abar."""
    net = UNet(classes=classes)
    assert sum(p.numel() for p in net.parameters()) == 522145 + ((classes + 1) * 128 if classes else 0)
    return net, torch.cumprod(1 - torch.linspace(1e-4, 0.02, DDPM_T), 0)


def setup_ddpm(train, classes=0):
    def setup(data):
        b, T = 64, DDPM_T
        next_batch, source = batch_source(b, True, data)
        net, abar = unet_and_schedule(classes)
        opt = torch.optim.Adam(net.parameters(), lr=2e-4) if train else None

        def noised():
            x0 = next_batch()
            t = torch.randint(1, T + 1, (b,))  # 1..T, as bench.lua (the 1-based index of abar)
            eps = torch.randn(b, 1, 28, 28)
            a = abar[t - 1].view(b, 1, 1, 1)
            labels = None
            if classes:  # label dropout, as diffusion.drop_labels
                labels = torch.randint(0, classes, (b,))
                labels = torch.where(torch.rand(b) < P_UNCOND, torch.full((b,), net.null_label), labels)
            return a.sqrt() * x0 + (1 - a).sqrt() * eps, t, eps, labels

        if train:
            def step():
                xt, t, eps, labels = noised()
                opt.zero_grad()
                loss = F.mse_loss(net(xt, t, labels), eps)
                loss.backward()
                opt.step()
        else:
            net.eval()

            def step():
                with torch.no_grad():
                    xt, t, _, labels = noised()
                    net(xt, t, labels)
        return step, (3 if train else 1) * flops_unet_forward(b) / 1e9, source
    return setup


def setup_guided_sample(data):
    """One guided DDIM step (eta 0) of 64 from t = 500 to 480, the two predictions in one batch of 128."""
    b, t0, t1, w = 64, 500, 480, GUIDANCE
    net, abar = unet_and_schedule(CLASSES)
    net.eval()
    a, a1 = abar[t0 - 1].item(), abar[t1 - 1].item()
    x = torch.randn(b, 1, 28, 28)
    labels = torch.randint(0, CLASSES, (b,))
    t = torch.full((b,), t0)

    def step():
        with torch.no_grad():
            both = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, torch.full((b,), net.null_label)]))
            eps = (1 + w) * both[:b] - w * both[b:]
            x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
            return math.sqrt(a1) * x0 + math.sqrt(1 - a1) * eps
    return step, flops_unet_forward(2 * b) / 1e9, "random"


def setup_style(data):
    vgg = vgg19_to_relu4_1()
    for p in vgg.parameters():
        p.requires_grad_(False)
    vgg.eval()

    def gram(f):
        _, c, h, w = f.shape
        m = f.view(c, h * w)
        return (m @ m.t()) / (c * h * w)
    with torch.no_grad():
        target = gram(vgg(torch.rand(1, 3, 256, 256)))
    img = torch.rand(1, 3, 256, 256).requires_grad_(True)
    opt = torch.optim.Adam([img], lr=1e-2)

    def step():
        opt.zero_grad()
        loss = F.mse_loss(gram(vgg(img)), target)
        loss.backward()
        opt.step()
    return step, 2 * flops_vgg_forward() / 1e9, "random"


WORKLOADS = {
    "mlp_gan_b32": setup_mlp_gan(32), "mlp_gan_b64": setup_mlp_gan(64), "dcgan_b64": setup_dcgan,
    "ddpm_unet_b64": setup_ddpm(True), "ddpm_unet_b64_infer": setup_ddpm(False),
    "ddpm_unet_cond_b64": setup_ddpm(True, CLASSES), "ddpm_guided_sample_b64": setup_guided_sample,
    "style_vgg19_256": setup_style,
}


def run_workload(name):
    if name not in WORKLOADS:
        sys.exit("torch_ref.py: unknown workload %r (known: %s)" % (name, ", ".join(ORDER)))
    torch.manual_seed(1234)
    step, gflop, source = WORKLOADS[name](OPTS.get("data", "real"))
    rss_reset = reset_peak_rss()
    warmup = int(OPTS.get("warmup", 3))
    wt = []
    for _ in range(warmup):
        t0 = now()
        step()
        wt.append(now() - t0)
    if "steps" in OPTS:
        steps = int(OPTS["steps"])
    else:
        est = min(wt[1:]) if len(wt) > 1 else None
        if est is None:
            t0 = now()
            step()
            est = now() - t0
        steps = max(5, min(5000, int(float(OPTS.get("seconds", 12)) / max(est, 1e-6))))
    cap = math.inf if "steps" in OPTS else float(OPTS.get("max_seconds", 2 * float(OPTS.get("seconds", 12))))
    times = []
    t_all = now()
    for i in range(steps):
        t0 = now()
        step()
        times.append(now() - t0)
        if i >= 4 and t0 - t_all > cap:
            break
    t_all = now() - t_all
    steps = len(times)
    times_sorted = sorted(times)
    med = statistics.median(times)
    emit({
        "workload": name, "impl": "pytorch", "ms_per_step": med * 1e3, "peak_rss_mb": proc_status_mb("VmHWM"),
        "gflop_per_step": gflop, "gflops": gflop / med, "steps": steps, "warmup": warmup, "threads": THREADS,
        "data": source, "mean_ms": sum(times) / len(times) * 1e3, "min_ms": times_sorted[0] * 1e3,
        "max_ms": times_sorted[-1] * 1e3, "p90_ms": times_sorted[max(0, math.ceil(len(times) * 0.9) - 1)] * 1e3,
        "total_s": t_all, "clock": "monotonic", "rss_reset_after_data": rss_reset,
        "torch_version": torch.__version__,
    }, WORKLOAD_KEYS)


# ------------------------------------------------------------------------------------- micro

MICRO_SECONDS = float(OPTS.get("micro_seconds", 0.02 if QUICK else 0.3))


LAST_MEDIAN = [None]


def time_fn(f, min_reps=None):
    """Seconds per call: the fastest repetition, as bench.lua (the median goes to LAST_MEDIAN)."""
    f()
    t0 = now()
    f()
    one = max(now() - t0, 1e-7)
    reps = max(min_reps or (2 if QUICK else 5), min(1000, int(MICRO_SECONDS / one)))
    ts = []
    for _ in range(reps):
        a = now()
        f()
        ts.append(now() - a)
    LAST_MEDIAN[0] = statistics.median(ts)
    return min(ts)


ONLY = set(OPTS["only"].split(",")) if "only" in OPTS else None


def want(group):
    return ONLY is None or group in ONLY


def run_micro():
    def out(rec):
        rec["impl"] = "pytorch"
        rec.setdefault("threads", THREADS)
        rec["median_ms"] = LAST_MEDIAN[0] * 1e3
        emit(rec, MICRO_KEYS)

    sgemm_ref = {}
    gemms = [(1024, 1024, 1024), (64, 784, 512), (12544, 64, 288), (256, 4096, 2304)]
    if QUICK:
        gemms = [(256, 256, 256), (64, 784, 512)]
    if not want("sgemm"):
        gemms = []
    for nt in sorted({1, THREADS}):
        torch.set_num_threads(nt)
        for i, (M, N, K) in enumerate(gemms):
            a, b = torch.randn(M, K), torch.randn(K, N)
            s = time_fn(lambda: a @ b)
            gf = 2 * M * N * K / s / 1e9
            if i == 0:
                sgemm_ref[nt] = gf
            out({"micro": "sgemm", "op": "matmul", "shape": "%dx%dx%d" % (M, N, K), "threads": nt, "ms": s * 1e3,
                 "gflops": gf})
    torch.set_num_threads(THREADS)
    ref = sgemm_ref.get(THREADS, sgemm_ref.get(1, math.nan))

    def grad_of(y, wrt, g):
        return lambda: torch.autograd.grad(y, wrt, grad_outputs=g, retain_graph=True)

    lins = [(64, 100, 128), (64, 256, 512), (64, 512, 784), (64, 784, 512), (32, 784, 512), (64, 100, 6272),
            (64, 6272, 1)]
    if QUICK:
        lins = [(64, 784, 512)]
    if not want("linear"):
        lins = []
    for B, I, O in lins:
        x = torch.randn(B, I, requires_grad=True)
        w = (torch.randn(O, I) * 0.05).requires_grad_(True)
        bias = torch.zeros(O, requires_grad=True)
        fl = 2 * B * I * O
        shape = "%dx%d->%d" % (B, I, O)
        with torch.no_grad():
            s = time_fn(lambda: F.linear(x, w, bias))
        out({"micro": "linear", "op": "forward", "shape": shape, "ms": s * 1e3, "gflops": fl / s / 1e9,
             "pct_of_sgemm": 100 * fl / s / 1e9 / ref})
        y = F.linear(x, w, bias)
        s = time_fn(grad_of(y, (x, w, bias), torch.randn(B, O)))
        out({"micro": "linear", "op": "backward", "shape": shape, "ms": s * 1e3, "gflops": 2 * fl / s / 1e9,
             "pct_of_sgemm": 100 * 2 * fl / s / 1e9 / ref})

    convs = [("unet", 64, 32, 32, 28, 3, 1, 1), ("unet", 64, 32, 64, 14, 3, 1, 1), ("unet", 64, 64, 64, 14, 3, 1, 1),
             ("unet", 64, 64, 64, 7, 3, 1, 1), ("unet", 64, 128, 64, 14, 3, 1, 1), ("unet", 64, 96, 32, 28, 3, 1, 1),
             ("unet", 64, 32, 32, 28, 3, 2, 1), ("unet", 64, 96, 32, 28, 1, 1, 0),
             ("vgg", 1, 64, 64, 256, 3, 1, 1), ("vgg", 1, 128, 128, 128, 3, 1, 1), ("vgg", 1, 256, 256, 64, 3, 1, 1),
             ("vgg", 1, 256, 512, 32, 3, 1, 1),
             ("dcgan", 64, 1, 64, 28, 4, 2, 1), ("dcgan", 64, 64, 128, 14, 4, 2, 1)]
    if QUICK:
        convs = [("unet", 8, 32, 64, 14, 3, 1, 1)]
    if not want("conv2d"):
        convs = []
    for model, N, Cin, Cout, H, k, st, pad in convs:
        Ho = (H + 2 * pad - k) // st + 1
        fl = 2 * N * Cout * Ho * Ho * Cin * k * k
        shape = "%dx%dx%dx%d->%d k%d s%d" % (N, Cin, H, H, Cout, k, st)
        x = torch.randn(N, Cin, H, H)
        w, b = torch.randn(Cout, Cin, k, k) * 0.05, torch.zeros(Cout)

        def rec(op, sec):
            out({"micro": "conv2d", "model": model, "op": op, "shape": shape, "ms": sec * 1e3,
                 "gflops": fl / sec / 1e9, "pct_of_sgemm": 100 * fl / sec / 1e9 / ref})
        with torch.no_grad():
            rec("forward", time_fn(lambda: F.conv2d(x, w, b, st, pad)))
        g = torch.randn(N, Cout, Ho, Ho)
        xg = x.clone().requires_grad_(True)
        rec("backward_input", time_fn(grad_of(F.conv2d(xg, w, b, st, pad), (xg,), g)))
        wg, bg = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
        rec("backward_weight", time_fn(grad_of(F.conv2d(x, wg, bg, st, pad), (wg, bg), g)))

    convts = [(64, 128, 64, 7), (64, 64, 1, 14)]
    if QUICK:
        convts = [(8, 128, 64, 7)]
    if not want("conv_transpose2d"):
        convts = []
    for N, Cin, Cout, H in convts:
        fl = 2 * N * Cin * H * H * Cout * 16
        shape = "%dx%dx%dx%d->%d k4 s2" % (N, Cin, H, H, Cout)
        x = torch.randn(N, Cin, H, H)
        w, b = torch.randn(Cin, Cout, 4, 4) * 0.05, torch.zeros(Cout)

        def rec(op, sec):
            out({"micro": "conv_transpose2d", "model": "dcgan", "op": op, "shape": shape, "ms": sec * 1e3,
                 "gflops": fl / sec / 1e9, "pct_of_sgemm": 100 * fl / sec / 1e9 / ref})
        with torch.no_grad():
            rec("forward", time_fn(lambda: F.conv_transpose2d(x, w, b, 2, 1)))
        g = torch.randn(N, Cout, 2 * H, 2 * H)
        xg = x.clone().requires_grad_(True)
        rec("backward_input", time_fn(grad_of(F.conv_transpose2d(xg, w, b, 2, 1), (xg,), g)))
        wg, bg = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
        rec("backward_weight", time_fn(grad_of(F.conv_transpose2d(x, wg, bg, 2, 1), (wg, bg), g)))

    gns = [(64, 32, 28), (64, 64, 14), (64, 128, 14), (64, 96, 28)]
    if QUICK:
        gns = [(8, 32, 28)]
    if not want("group_norm"):
        gns = []
    for N, C, H in gns:
        n = N * C * H * H
        x = torch.randn(N, C, H, H)
        w, b = torch.ones(C), torch.zeros(C)
        shape = "%dx%dx%dx%d g8" % (N, C, H, H)
        with torch.no_grad():
            s = time_fn(lambda: F.group_norm(x, 8, w, b))
        out({"micro": "group_norm", "op": "forward", "shape": shape, "ms": s * 1e3, "gbps": 2 * n * 4 / s / 1e9})
        xg, wg, bg = x.clone().requires_grad_(True), w.clone().requires_grad_(True), b.clone().requires_grad_(True)
        y = F.group_norm(xg, 8, wg, bg)
        s = time_fn(grad_of(y, (xg, wg, bg), torch.randn(N, C, H, H)))
        out({"micro": "group_norm", "op": "backward", "shape": shape, "ms": s * 1e3, "gbps": 3 * n * 4 / s / 1e9})

    sms = [(64, 49, 49), (1, 4096, 1024)]
    if QUICK:
        sms = [(64, 49, 49)]
    if not want("softmax"):
        sms = []
    for c in sms:
        x = torch.randn(*c)
        n = c[0] * c[1] * c[2]
        with torch.no_grad():
            s = time_fn(lambda: torch.softmax(x, -1))
        out({"micro": "softmax", "op": "forward", "shape": "x".join(map(str, c)), "ms": s * 1e3,
             "gbps": 2 * n * 4 / s / 1e9})

    n = 65536 if QUICK else 1048576
    x, y = torch.randn(n), torch.randn(n)
    if want("elementwise"):
        with torch.no_grad():
            s = time_fn(lambda: x + y)
            out({"micro": "elementwise", "op": "add", "shape": str(n), "ms": s * 1e3, "gbps": 3 * n * 4 / s / 1e9})
            s = time_fn(lambda: x * y)
            out({"micro": "elementwise", "op": "mul", "shape": str(n), "ms": s * 1e3, "gbps": 3 * n * 4 / s / 1e9})
            s = time_fn(lambda: F.silu(x))
            out({"micro": "elementwise", "op": "silu", "shape": str(n), "ms": s * 1e3, "gbps": 2 * n * 4 / s / 1e9})

    if want("random"):  # 1M float32 draws into an existing tensor, one thread and all
        n = 65536 if QUICK else 1048576
        x = torch.empty(n)
        for nt in [1, THREADS]:
            torch.set_num_threads(nt)
            s = time_fn(lambda: x.normal_())
            out({"micro": "random", "op": "randn", "shape": str(n), "threads": nt, "ms": s * 1e3, "ns_per_element": s / n * 1e9, "gbps": 4 * n / s / 1e9})
            s = time_fn(lambda: x.uniform_())
            out({"micro": "random", "op": "rand", "shape": str(n), "threads": nt, "ms": s * 1e3, "ns_per_element": s / n * 1e9, "gbps": 4 * n / s / 1e9})
            if nt == THREADS:
                break
        torch.set_num_threads(THREADS)

    if want("adam"):
        p = torch.randn(n, requires_grad=True)
        p.grad = torch.randn(n)
        opt = torch.optim.Adam([p], lr=1e-3)
        s = time_fn(opt.step)
        out({"micro": "adam", "op": "step", "shape": str(n), "ms": s * 1e3, "gbps": 7 * n * 4 / s / 1e9})

    if not want("overhead"):
        return
    iters = 2000 if QUICK else 200000
    a, b = torch.randn(16), torch.randn(16)
    ag = torch.randn(16, requires_grad=True)

    def loop(x1, y1):
        def f():
            r = None
            for _ in range(iters):
                r = x1 + y1
            return r
        return f
    with torch.no_grad():
        s = time_fn(loop(a, b), 3)
    out({"micro": "overhead", "op": "add16", "shape": "16", "ms": s * 1e3, "us_per_op": s / iters * 1e6})
    s = time_fn(loop(ag, b), 3)
    out({"micro": "overhead", "op": "add16_recording", "shape": "16", "ms": s * 1e3, "us_per_op": s / iters * 1e6})


if __name__ == "__main__":
    if MODE == "list":
        print("\n".join(ORDER))
    elif MODE == "workload":
        run_workload(NAME)
    else:
        run_micro()
