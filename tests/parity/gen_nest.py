"""NesT parity fixtures: reference weights and expected activations from tools/nest_ref.py.

For each case writes CASE.model.safetensors (the weights, with vidcap metadata unless --timm) and
CASE.expect.safetensors (input channels-last, every level's output map channels-last, logits).
Weights are random at realistic scale (timm's init plus perturbed norms and biases), so every op matters.
    /usr/bin/python3 tests/parity/gen_nest.py --outdir DIR [--shipped models/fashion-nest.safetensors]
"""
import argparse
import json
import os
import sys

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import safetensors_io  # noqa: E402
from gradcat_ref import gradcat  # noqa: E402
from nest_ref import NEST_TINY, Nest, TokenFilter, forward_filtered, forward_filtered_batched, keep_topk, metadata  # noqa: E402,E501

SMALL = dict(img_size=48, in_chans=3, patch_size=3, num_levels=3, embed_dims=[20, 36, 44], num_heads=[2, 3, 4],
             depths=[1, 2, 1], num_classes=7, mlp_ratio=3.0, pad_type="")


def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
            elif "norm" in name:
                p.copy_(1.0 + torch.randn(p.shape, generator=gen) * 0.1)
            elif name.endswith("pos_embed"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)


def expect(model, x):
    """Input, every level's map, logits, and d log p_c / d map for c = the top class (GradCAT's objective)."""
    model.eval()
    maps = model.forward_levels(x)
    for m in maps:
        m.retain_grad()
    logits = model.head_from_map(maps[-1])
    target = int(logits[0].argmax())
    torch.log_softmax(logits, dim=1)[0, target].backward()
    out = {"input": x[0].permute(1, 2, 0), "logits": logits[0].detach(), "target": torch.tensor([float(target)])}
    for i, m in enumerate(maps):
        out[f"level{i}"] = m[0].detach().permute(1, 2, 0)
        out[f"grad{i}"] = m.grad[0].permute(1, 2, 0)
    # GradCAT on the second-best class, so the walk is not just the prediction's
    second = int(logits[0].argsort(descending=True)[1])
    _, scores, path = gradcat(model, x, target=second)
    out["gradcat.target"] = torch.tensor([float(second)])
    out["gradcat.path"] = torch.tensor([[lv, by, bx, sc] for lv, by, bx, sc in path], dtype=torch.float32)
    for i, s in enumerate(scores):
        out[f"gradcat.score{i}"] = s
    # the token filter's forward with about half the top-level tokens kept
    top = maps[-1].shape[-1]
    keep = torch.rand(top, top, generator=torch.Generator().manual_seed(7)) < 0.5
    keep[0, 0] = True
    with torch.no_grad():
        fmaps, flogits = forward_filtered(model, x, keep)
    out["filtered.keep"] = keep.float()
    _, fscores, fpath = gradcat(model, x, target=second, keep=keep)   # GradCAT through the filtered forward
    out["fgradcat.target"] = torch.tensor([float(second)])
    out["fgradcat.path"] = torch.tensor([[lv, by, bx, sc] for lv, by, bx, sc in fpath], dtype=torch.float32)
    for i, sc in enumerate(fscores):
        out[f"fgradcat.score{i}"] = sc
    loo, grad = token_impact(model, x, target)
    if loo is not None:
        out["impact.loo"] = loo
    out["impact.grad"] = grad
    out["filtered.logits"] = flogits[0]
    for i, m in enumerate(fmaps):
        out[f"filtered.level{i}"] = m[0].permute(1, 2, 0)
    return out


def token_impact(model, x, label):
    """Loss change per top-level token group when its patch embeddings are zeroed (position embeddings
    kept): exactly (leave-one-out, skipped above 64 groups) and by gradient x input."""
    model.eval()
    L = len(model.levels)
    e = model.patch_embed.proj(x).detach()

    def loss_from(embed):
        h = embed
        for lvl in model.levels:
            h = lvl(h)
        return torch.nn.functional.cross_entropy(model.head_from_map(h), torch.tensor([label]))

    side = 2 ** (L - 1)
    top = e.shape[-1] // side
    er = e.clone().requires_grad_(True)
    base = loss_from(er)
    base.backward()
    gi = -(er * er.grad)[0].sum(0)                       # (H0, W0)
    grad = gi.reshape(top, side, top, side).sum((1, 3)).flatten().detach()
    if top * top > 64:
        return None, grad
    loo = []
    with torch.no_grad():
        for g in range(top * top):
            m = e.clone()
            m[:, :, (g // top) * side:(g // top + 1) * side, (g % top) * side:(g % top + 1) * side] = 0
            loo.append(float(loss_from(m) - base))
    return torch.tensor(loo), grad


def filter_expect(model, x, weights, meta):
    """The shipped filter in PyTorch: its scores, keep mask and the filtered logits, for the C side."""
    cfg = json.loads(meta["filter.vidcap.config"])
    filt = TokenFilter(model.config["embed_dims"][0], cfg["hidden"], cfg["context"])
    filt.load_state_dict({k[len("filter."):]: v for k, v in weights.items() if k.startswith("filter.")})
    with torch.no_grad():
        scores = filt(model, x)
        keep = keep_topk(scores, cfg["keep"])
        logits = forward_filtered_batched(model, x, keep)
    return {"filter.scores": scores[0].flatten(), "filter.keep": keep[0].flatten().float(), "filter.logits": logits[0]}


def case(outdir, name, config, timm_keys, gen, weights=None, meta=None):
    model = Nest(config)
    if weights is None:
        randomize(model, gen)
        sd = model.state_dict()
        meta = None if timm_keys else metadata(config, [f"c{i}" for i in range(config["num_classes"])], dict(
            channels=config["in_chans"], resize=config["img_size"], interpolation="bicubic",
            crop=config["img_size"], pad=0, mean=[0.5] * config["in_chans"], std=[0.25] * config["in_chans"]))
        safetensors_io.save(os.path.join(outdir, f"{name}.model.safetensors"), sd, meta)
    else:
        model.load_state_dict({k: v for k, v in weights.items() if not k.startswith("filter.")})
    x = torch.randn(1, config["in_chans"], config["img_size"], config["img_size"], generator=gen)
    out = expect(model, x)
    if weights is not None and "filter.fc1.weight" in weights:
        out.update(filter_expect(model, x, weights, meta))
    safetensors_io.save(os.path.join(outdir, f"{name}.expect.safetensors"), out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--shipped")
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(1234)
    case(a.outdir, "small", SMALL, False, gen)
    case(a.outdir, "nest_tiny", NEST_TINY, True, gen)
    if a.shipped:
        sd, meta = safetensors_io.load(a.shipped)
        case(a.outdir, "shipped", json.loads(meta["vidcap.config"]), False, gen, weights=sd, meta=meta)
        link = os.path.join(a.outdir, "shipped.model.safetensors")  # the C side reads the shipped file itself
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(os.path.abspath(a.shipped), link)


if __name__ == "__main__":
    main()
