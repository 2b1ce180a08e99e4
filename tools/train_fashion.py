"""Trains the shipped classifier models/fashion-nest.safetensors on Debian's dataset-fashion-mnist.

    /usr/bin/python3 tools/train_fashion.py --epochs 8 --seed 0 --out models/fashion-nest.safetensors

A small 3-level NesT on 32x32 grey inputs (the 28x28 item padded by 2 px of background), patch 2, block 4x4
tokens; AdamW + one-cycle cosine, horizontal flips and +-2 px translations. The model card in models/ records
the command, seed, time and the accuracy the C engine measures.
"""
import argparse
import ctypes
import gzip
import os
import sys
import time


def _select_blas_kernels():
    """Debian 12's OpenBLAS falls back to generic Prescott kernels on CPUs it does not know (3x slower
    matmuls here); like the vidcap CLI, re-execute once with the core the CPU supports."""
    if os.environ.get("OPENBLAS_CORETYPE"):
        return
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        core = lib.openblas_get_corename().decode()
    except OSError:
        return
    flags = open("/proc/cpuinfo").read().split("flags", 1)[-1].split("\n", 1)[0].split()
    want = ("SkylakeX" if all(f in flags for f in ("avx512f", "avx512bw", "avx512dq", "avx512vl"))
            else "Haswell" if "avx2" in flags and "fma" in flags else None)
    if want and core.lower() in ("prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "barcelona"):
        os.environ["OPENBLAS_CORETYPE"] = want
        os.execv(sys.executable, [sys.executable] + sys.argv)


import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from nest_ref import Nest, metadata  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
LABELS = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
MEAN, STD = 0.2860, 0.3530
CONFIG = dict(img_size=32, in_chans=1, patch_size=2, num_levels=3, embed_dims=[32, 64, 128], num_heads=[1, 2, 4],
              depths=[1, 2, 3], num_classes=10, mlp_ratio=4.0, pad_type="same")
# What vision/preprocess.c does to any image before this model: grey (PIL 'L'), shorter side to 28 with
# antialiased bicubic, center crop 28, pad 2 px of black, scale to [0,1], normalise.
PREPROCESS = dict(channels=1, resize=28, interpolation="bicubic", crop=28, pad=2, mean=[MEAN], std=[STD])


def read_idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def to_input(images_u8):
    x = torch.from_numpy(images_u8.astype(np.float32) / 255.0).unsqueeze(1)
    x = F.pad(x, (2, 2, 2, 2))
    return (x - MEAN) / STD


def augment(x, gen):
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = F.pad(x, (2, 2, 2, 2), value=-MEAN / STD)
    out = torch.empty_like(x)
    dy = torch.randint(0, 5, (x.shape[0],), generator=gen)
    dx = torch.randint(0, 5, (x.shape[0],), generator=gen)
    for i in range(x.shape[0]):
        out[i] = pad[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
    return out


def evaluate(model, x, y):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], 500):
            correct += (model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item()
    return correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="models/fashion-nest.safetensors")
    a = ap.parse_args()
    _select_blas_kernels()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(a.seed)

    xtr = to_input(read_idx("train-images-idx3-ubyte.gz"))
    ytr = torch.from_numpy(read_idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = to_input(read_idx("t10k-images-idx3-ubyte.gz"))
    yte = torch.from_numpy(read_idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))

    model = Nest(CONFIG, drop_path_rate=0.05)
    print(f"params {sum(p.numel() for p in model.parameters())}, OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(default)')}", flush=True)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "pos_embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "pos_embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr)
    steps = a.epochs * (xtr.shape[0] // a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps, pct_start=0.1)
    t0 = time.time()
    for ep in range(a.epochs):
        model.train()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        total = 0.0
        for s in range(xtr.shape[0] // a.batch):
            idx = perm[s * a.batch:(s + 1) * a.batch]
            loss = F.cross_entropy(model(augment(xtr[idx], gen)), ytr[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
            if s % 100 == 0:
                print(f"epoch {ep + 1} step {s} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
        acc = evaluate(model, xte, yte)
        print(f"epoch {ep + 1}: train loss {total / (s + 1):.4f} test top-1 {acc * 100:.2f}% "
              f"time {time.time() - t0:.0f}s", flush=True)
    meta = metadata(CONFIG, LABELS, PREPROCESS)
    meta["vidcap.trained_on"] = "Fashion-MNIST (Debian dataset-fashion-mnist), 28x28 grey clothing items"
    meta["vidcap.train_command"] = " ".join(["tools/train_fashion.py"] + sys.argv[1:])
    safetensors_io.save(a.out, model.state_dict(), meta)
    print(f"saved {a.out}; training time {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
