"""Fine-tunes a NesT with its token filter in place (Wang et al.: the light model comes from fine-tuning the
backbone with the filter in place), and writes one model file carrying both (the filter under "filter.").

    /usr/bin/python3 tools/finetune_filtered.py --model models/fashion-nest.safetensors \
        --filter fashion-nest.filter.safetensors --keep 0.5 --epochs 1 --out models/fashion-nest.safetensors

The filter, the patch embedding and the level-0 position embedding (the filter's inputs) stay frozen; each
step keeps the filter's top `keep` of the top-level tokens per image, as vidcap does at inference.

--fill trains the token filter's other option for dropped tokens below the top level, a learned fill token
per level in place of passing them through. Measured once, from the unfiltered shipped model with the same
1-epoch recipe at keep 0.5: fill 87.46 % at keep 0.5 (90.54 % at keep 1) against pass-through 90.61 %
(92.01 %), so vidcap implements pass-through and this flag exists to reproduce the comparison.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from nest_ref import Nest, TokenFilter, forward_filtered_batched, keep_topk  # noqa: E402
from train_fashion import _select_blas_kernels, augment, read_idx, to_input  # noqa: E402


def evaluate(model, filt, x, y, keep, fill=None):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], 500):
            xb = x[i:i + 500]
            logits = (model(xb) if keep >= 1
                      else forward_filtered_batched(model, xb, keep_topk(filt(model, xb), keep), fill))
            correct += (logits.argmax(1) == y[i:i + 500]).sum().item()
    return correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--filter", required=True)
    ap.add_argument("--keep", type=float, default=0.5)
    ap.add_argument("--fill", action="store_true",
                    help="replace dropped tokens below the top level by learned fill tokens (saved as "
                         "filter.fill.<level>) instead of passing them through")
    ap.add_argument("--keep-mix", default=None,
                    help="comma-separated keep ratios cycled step by step (e.g. 1,0.5), so every ratio stays sharp")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    _select_blas_kernels()
    torch.manual_seed(a.seed)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(a.seed)

    sd, meta = safetensors_io.load(a.model)
    sd = {k: v for k, v in sd.items() if not k.startswith("filter.")}
    model = Nest(json.loads(meta["vidcap.config"]))
    model.load_state_dict(sd)
    fsd, fmeta = safetensors_io.load(a.filter)
    fcfg = json.loads(fmeta["vidcap.config"])
    filt = TokenFilter(model.config["embed_dims"][0], fcfg["hidden"], fcfg["context"])
    filt.load_state_dict(fsd)
    for p in list(filt.parameters()) + list(model.patch_embed.parameters()) + [model.levels[0].pos_embed]:
        p.requires_grad_(False)

    xtr = to_input(read_idx("train-images-idx3-ubyte.gz"))
    ytr = torch.from_numpy(read_idx("train-labels-idx1-ubyte.gz").astype("int64"))
    xte = to_input(read_idx("t10k-images-idx3-ubyte.gz"))
    yte = torch.from_numpy(read_idx("t10k-labels-idx1-ubyte.gz").astype("int64"))
    print(f"before: top-1 {evaluate(model, filt, xte, yte, 1.0) * 100:.2f}% at keep 1, "
          f"{evaluate(model, filt, xte, yte, a.keep) * 100:.2f}% at keep {a.keep}", flush=True)

    fill = None
    if a.fill:   # one learned vector per level below the top, starting at zero
        fill = [torch.nn.Parameter(torch.zeros(d)) for d in model.config["embed_dims"][:-1]]
    params = [p for p in model.parameters() if p.requires_grad] + (fill or [])
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.05)
    steps = a.epochs * (xtr.shape[0] // a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps, pct_start=0.1)
    mix = [float(k) for k in a.keep_mix.split(",")] if a.keep_mix else [a.keep]
    t0 = time.time()
    for ep in range(a.epochs):
        model.train()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        for s in range(xtr.shape[0] // a.batch):
            idx = perm[s * a.batch:(s + 1) * a.batch]
            xb = augment(xtr[idx], gen)
            k = mix[s % len(mix)]
            if k >= 1:
                logits = model(xb)
            else:
                with torch.no_grad():
                    keep = keep_topk(filt(model, xb), k)
                logits = forward_filtered_batched(model, xb, keep, fill)
            loss = F.cross_entropy(logits, ytr[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if s % 100 == 0:
                print(f"epoch {ep + 1} step {s} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
    acc1, acck = evaluate(model, filt, xte, yte, 1.0), evaluate(model, filt, xte, yte, a.keep, fill)
    print(f"after: top-1 {acc1 * 100:.2f}% at keep 1, {acck * 100:.2f}% at keep {a.keep}; "
          f"time {time.time() - t0:.0f}s", flush=True)
    out = dict(model.state_dict())
    out.update({f"filter.{k}": v for k, v in filt.state_dict().items()})
    for i, f in enumerate(fill or []):
        out[f"filter.fill.{i}"] = f.detach()
    meta = dict(meta)
    meta["filter.vidcap.config"] = json.dumps(dict(fcfg, keep=a.keep))
    meta["vidcap.finetune_command"] = " ".join(["tools/finetune_filtered.py"] + sys.argv[1:])
    safetensors_io.save(a.out, out, meta)
    print(f"saved {a.out}", flush=True)


if __name__ == "__main__":
    main()
