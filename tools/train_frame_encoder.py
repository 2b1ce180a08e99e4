"""Trains the Moving Fashion frame encoder: a NesT whose top-level token grid knows what is where, with its
one-shot token filter, written as one model file (the filter under "filter.").

    /usr/bin/python3 tools/train_frame_encoder.py --videos DIR --count 600 --epochs 6 --seed 0 \
        --out models/moving-fashion-encoder.safetensors

Task: for every cell of the top level's 4x4 token grid, which item classes and which tint colours are in it
(multi-label, binary cross-entropy; a fading item counts with its alpha as a soft target). The head is one
linear layer applied to each top-level token after the final norm, so the frame feature the captioner reads
(the normalised top-level grid, flattened HWC) is the representation trained to answer it; vidcap's
`classify` on a frame averages the per-cell logits (the head is linear), i.e. "what is in the frame".

Frames: the generator's MP4 files of the train split (tools/moving_fashion.py), decoded by ffmpeg and scaled
to 64x64 with the same libswscale settings as video/decode.c, so the encoder sees exactly what vidcap
feeds it (H.264 artefacts included); labels come from the generator's per-frame item tracks.

Token filter (specs/token_filter.md, the token-filter issue's method): leave-one-out token-impact labels
(the frame's loss change when one top-level token's patch embeddings are zeroed, position embeddings
kept; label 1 when the loss rises by more than IMPACT_EPS and the token is among the frame's LABEL_TOP most
impactful: on these frames almost every token moves the multi-label loss a little, and "any rise" labels
85 % of tokens, which leaves the filter nothing to learn), the filter MLP fitted on them with BCE and Adam,
then the backbone fine-tuned with the filter in place at keep ratios cycled 1.0 / KEEP.

    /usr/bin/python3 tools/train_frame_encoder.py --videos DIR --refit-filter ENCODER --count 150 --out OUT
refits only the filter of a trained encoder (the same labels and fit, no backbone training).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moving_fashion as mf  # noqa: E402
import safetensors_io  # noqa: E402
from nest_ref import Nest, TokenFilter, filtered_top_tokens, keep_topk, metadata  # noqa: E402
from train_fashion import _select_blas_kernels  # noqa: E402

SIDE = 64
GRID = 4                      # top-level tokens per side
SWS_FLAGS = "bicubic+accurate_rnd+bitexact+full_chroma_int"   # what video/decode.c asks libswscale for
MEAN, STD = [0.05, 0.05, 0.05], [0.2, 0.2, 0.2]
CONFIG = dict(img_size=SIDE, in_chans=3, patch_size=4, num_levels=3, embed_dims=[32, 64, 128],
              num_heads=[1, 2, 4], depths=[1, 1, 2], num_classes=len(mf.CLASS_WORDS) + len(mf.COLOURS),
              mlp_ratio=4.0, pad_type="same")
PREPROCESS = dict(channels=3, resize=SIDE, interpolation="bicubic", crop=SIDE, mean=MEAN, std=STD)
COVER = 0.08                  # an item is "in" a cell when its square covers this share of the cell
IMPACT_EPS = 1e-3
LABEL_TOP = 0.4               # ... and is among the frame's 40 % most impactful top-level tokens


def decode_frames(path, n_frames):
    """All frames of an MP4 as uint8 (N, 64, 64, 3), through libswscale like vidcap."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-vf", f"scale={SIDE}:{SIDE}:flags={SWS_FLAGS}",
                          "-pix_fmt", "rgb24", "-f", "rawvideo", "-"], check=True, capture_output=True).stdout
    frames = np.frombuffer(out, np.uint8).reshape(-1, SIDE, SIDE, 3)
    return frames[:n_frames]


def cell_targets(tracks, canvas):
    """tracks (N, items, 6): class, colour, cx, cy, size, alpha -> soft targets (N, GRID, GRID, 15)."""
    N = tracks.shape[0]
    t = np.zeros((N, GRID, GRID, len(mf.CLASS_WORDS) + len(mf.COLOURS)), np.float32)
    cell = canvas / GRID
    edges = np.arange(GRID + 1) * cell
    for n in range(N):
        for cls, col, cx, cy, size, alpha in tracks[n]:
            if alpha <= 0:
                continue
            ox = np.clip(np.minimum(edges[1:], cx + size / 2) - np.maximum(edges[:-1], cx - size / 2), 0, None)
            oy = np.clip(np.minimum(edges[1:], cy + size / 2) - np.maximum(edges[:-1], cy - size / 2), 0, None)
            cover = np.outer(oy, ox) / (cell * cell) >= COVER            # (GRID rows, GRID cols)
            for j in (int(cls), len(mf.CLASS_WORDS) + int(col)):
                t[n, :, :, j] = np.maximum(t[n, :, :, j], cover * alpha)
    return t


def load_split(split, videos, first, count, every, seed):
    xs, ys = [], []
    for i in range(first, first + count):
        v = mf.make_video(split, i, seed, render=False)
        frames = decode_frames(os.path.join(videos, mf.video_id(split, i) + ".mp4"), v["n_frames"])
        pick = np.arange(i % every, len(frames), every)
        xs.append(frames[pick])
        ys.append(cell_targets(v["tracks"][pick], v["width"]))
        if (i - first + 1) % 50 == 0:
            print(f"{split}: {i - first + 1}/{count} videos decoded", file=sys.stderr, flush=True)
    x = torch.from_numpy(np.concatenate(xs)).permute(0, 3, 1, 2).float().div_(255)
    x = (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    return x, torch.from_numpy(np.concatenate(ys))


def cell_logits(model, x, keep_top=None):
    """Per-cell logits (B, GRID, GRID, 15) from the normalised top-level grid, optionally filtered."""
    if keep_top is None:
        top = model.forward_levels(x)[-1]
    else:
        top = forward_filtered_grid(model, x, keep_top)
    return model.head(model.norm(top.permute(0, 2, 3, 1)))


def forward_filtered_grid(model, x, keep_top):
    """The top-level map (NCHW) of the filtered forward, so per-cell heads can be trained with the filter in
    place (dropped cells come out unchanged; vidcap writes zeros there and masked_loss skips them)."""
    t, _ = filtered_top_tokens(model, x, keep_top)
    G = keep_top.shape[1]
    return t.reshape(t.shape[0], G, G, -1).permute(0, 3, 1, 2)


def masked_loss(logits, y, keep_top=None):
    loss = F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(-1)     # (B, G, G)
    if keep_top is None:
        return loss.mean()
    # a dropped cell has no feature (vidcap writes zeros there): only kept cells are scored
    return (loss * keep_top).sum() / keep_top.sum()


def evaluate(model, x, y, filt=None, keep=1.0):
    """Per-label accuracy over cells (threshold 0.5 on both sides), frame-level class-set exact match."""
    model.eval()
    hit = total = exact = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], 256):
            xb, yb = x[i:i + 256], y[i:i + 256] > 0.5
            kt = keep_topk(filt(model, xb), keep) if filt is not None and keep < 1 else None
            p = cell_logits(model, xb, kt) > 0
            if kt is not None:
                p &= kt[..., None]
            hit += (p == yb).sum().item()
            total += yb.numel()
            nc = len(mf.CLASS_WORDS)
            exact += (p[..., :nc].any(2).any(1) == yb[..., :nc].any(2).any(1)).all(-1).sum().item()
    return hit / total, exact / x.shape[0]


def train(model, x, y, epochs, lr, batch, gen, filt=None, mix=(1.0,)):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.05)
    steps = max(1, epochs * (x.shape[0] // batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    t0, s = time.time(), 0
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(x.shape[0], generator=gen)
        for b in range(x.shape[0] // batch):
            idx = perm[b * batch:(b + 1) * batch]
            xb, yb = x[idx], y[idx]
            if torch.rand(1, generator=gen).item() < 0.5:                    # mirror: cells mirror too
                xb, yb = xb.flip(3), yb.flip(2)
            k = mix[s % len(mix)]
            kt = None
            if filt is not None and k < 1:
                with torch.no_grad():
                    kt = keep_topk(filt(model, xb), k)
            loss = masked_loss(cell_logits(model, xb, kt), yb, kt)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            s += 1
            if b % 50 == 0:
                print(f"epoch {ep + 1}/{epochs} step {b} loss {loss.item():.4f} {time.time() - t0:.0f}s",
                      file=sys.stderr, flush=True)


def impact_labels(model, x, y):
    """Leave-one-out per top-level token: loss(frame with the token's patch embeddings zeroed) - loss(frame)."""
    model.eval()
    L = len(model.levels)
    side = 2 ** (L - 1)
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], 64):
            xb, yb = x[i:i + 64], y[i:i + 64]
            e = model.patch_embed.proj(xb)

            def loss_from(emb):
                h = emb
                for lvl in model.levels:
                    h = lvl(h)
                lg = model.head(model.norm(h.permute(0, 2, 3, 1)))
                return F.binary_cross_entropy_with_logits(lg, yb, reduction="none").mean((1, 2, 3))
            base = loss_from(e)
            d = torch.zeros(xb.shape[0], GRID, GRID)
            for gy in range(GRID):
                for gx in range(GRID):
                    em = e.clone()
                    em[:, :, gy * side:(gy + 1) * side, gx * side:(gx + 1) * side] = 0
                    d[:, gy, gx] = loss_from(em) - base
            out.append(d)
    return torch.cat(out)


def impact_to_labels(impact):
    """1 for tokens whose masking raises the loss by more than IMPACT_EPS and that rank in the frame's top
    LABEL_TOP by that rise."""
    flat = impact.reshape(impact.shape[0], -1)
    k = max(1, int(round(LABEL_TOP * flat.shape[1])))
    kth = flat.topk(k, dim=1).values[:, -1:]
    return ((flat >= kth) & (flat > IMPACT_EPS)).float().reshape(impact.shape)


def fit_filter(model, x, labels, hidden, epochs, lr, gen):
    filt = TokenFilter(model.config["embed_dims"][0], hidden, context=True)
    opt = torch.optim.Adam(filt.parameters(), lr=lr)
    for ep in range(epochs):
        perm = torch.randperm(x.shape[0], generator=gen)
        for b in range(0, x.shape[0], 256):
            idx = perm[b:b + 256]
            loss = F.binary_cross_entropy_with_logits(filt(model, x[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        print(f"filter epoch {ep + 1}/{epochs} loss {loss.item():.4f}", file=sys.stderr, flush=True)
    return filt


def occupied_kept(model, filt, x, y, keep):
    """Share of the cells that hold an item which the filter keeps at this ratio."""
    with torch.no_grad():
        kept = keep_topk(filt(model, x), keep)
        needed = (y > 0.5).any(-1)
        return (kept & needed).sum().item() / max(1, needed.sum().item())


def refit_filter(a):
    gen = torch.Generator().manual_seed(a.seed)
    sd, meta = safetensors_io.load(a.refit_filter)
    model = Nest(json.loads(meta["vidcap.config"]))
    model.load_state_dict({k: v for k, v in sd.items() if not k.startswith("filter.")})
    xtr, ytr = load_split("train", a.videos, 0, a.count, a.every, a.seed)
    xte, yte = load_split("test", a.videos, 0, a.test_count, a.every, a.seed)
    labels = impact_to_labels(impact_labels(model, xtr, ytr))
    print(f"impact labels: {labels.mean().item() * 100:.1f}% of tokens matter", file=sys.stderr, flush=True)
    for p in model.parameters():
        p.requires_grad_(False)
    filt = fit_filter(model, xtr, labels, hidden=64, epochs=30, lr=3e-3, gen=gen)
    report = json.loads(meta.get("vidcap.encoder_report", "{}"))
    acck, exk = evaluate(model, xte, yte, filt, a.keep)
    report.update(cell_accuracy_keep=round(acck * 100, 2), class_set_exact_keep=round(exk * 100, 2), keep=a.keep,
                  occupied_cells_kept=round(occupied_kept(model, filt, xte, yte, a.keep) * 100, 2),
                  filter_refit_frames=int(xtr.shape[0]))
    print(json.dumps(report), file=sys.stderr, flush=True)
    out = {k: v for k, v in sd.items() if not k.startswith("filter.")}
    out.update({f"filter.{k}": v.detach() for k, v in filt.state_dict().items()})
    meta = dict(meta)
    meta["filter.vidcap.config"] = json.dumps({"hidden": 64, "context": True, "keep": a.keep})
    meta["vidcap.encoder_report"] = json.dumps(report)
    meta["vidcap.filter_command"] = " ".join(["tools/train_frame_encoder.py"] + sys.argv[1:])
    safetensors_io.save(a.out, out, meta)
    print(f"saved {a.out}", file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", required=True, help="directory with the train and test split MP4 files")
    ap.add_argument("--count", type=int, default=600, help="train videos to take frames from")
    ap.add_argument("--test-count", type=int, default=100)
    ap.add_argument("--every", type=int, default=5, help="take every N-th frame")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--finetune-epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--keep", type=float, default=0.5, help="the filter's default keep ratio")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--refit-filter", metavar="ENCODER", help="refit only the filter of this trained encoder")
    a = ap.parse_args()
    _select_blas_kernels()
    torch.manual_seed(a.seed)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(a.seed)
    t_start = time.time()

    if a.refit_filter:
        return refit_filter(a)
    xtr, ytr = load_split("train", a.videos, 0, a.count, a.every, a.seed)
    xte, yte = load_split("test", a.videos, 0, a.test_count, a.every, a.seed)
    print(f"{xtr.shape[0]} train frames, {xte.shape[0]} test frames", file=sys.stderr, flush=True)

    model = Nest(CONFIG, drop_path_rate=0.05)
    train(model, xtr, ytr, a.epochs, a.lr, a.batch, gen)
    acc, exact = evaluate(model, xte, yte)
    print(f"backbone: per-cell label accuracy {acc * 100:.2f}%, frame class-set exact {exact * 100:.2f}%",
          file=sys.stderr, flush=True)

    sub = torch.randperm(xtr.shape[0], generator=gen)[:4000]
    impact = impact_labels(model, xtr[sub], ytr[sub])
    labels = impact_to_labels(impact)
    print(f"impact labels: {labels.mean().item() * 100:.1f}% of tokens matter", file=sys.stderr, flush=True)
    for p in model.parameters():
        p.requires_grad_(False)
    filt = fit_filter(model, xtr[sub], labels, hidden=64, epochs=30, lr=3e-3, gen=gen)
    for p in filt.parameters():
        p.requires_grad_(False)
    for n, p in model.named_parameters():
        p.requires_grad_(not (n.startswith("patch_embed") or n == "levels.0.pos_embed"))
    train(model, xtr, ytr, a.finetune_epochs, a.lr / 4, a.batch, gen, filt, mix=(1.0, a.keep))
    acc1, ex1 = evaluate(model, xte, yte)
    acck, exk = evaluate(model, xte, yte, filt, a.keep)
    covered = occupied_kept(model, filt, xte, yte, a.keep)
    report = dict(frames_train=int(xtr.shape[0]), frames_test=int(xte.shape[0]),
                  cell_accuracy_keep1=round(acc1 * 100, 2), class_set_exact_keep1=round(ex1 * 100, 2),
                  cell_accuracy_keep=round(acck * 100, 2), class_set_exact_keep=round(exk * 100, 2),
                  keep=a.keep, occupied_cells_kept=round(covered * 100, 2),
                  train_seconds=round(time.time() - t_start))
    print(json.dumps(report), file=sys.stderr, flush=True)

    out = dict(model.state_dict())
    out.update({f"filter.{k}": v for k, v in filt.state_dict().items()})
    labels_meta = [w for w in mf.CLASS_WORDS] + [c[0] for c in mf.COLOURS]
    meta = metadata(CONFIG, labels_meta, PREPROCESS)
    meta["filter.vidcap.config"] = json.dumps({"hidden": 64, "context": True, "keep": a.keep})
    meta["vidcap.trained_on"] = "Moving Fashion frames (tools/moving_fashion.py, train split), 64x64 RGB"
    meta["vidcap.train_command"] = " ".join(["tools/train_frame_encoder.py"] + sys.argv[1:])
    meta["vidcap.feature"] = json.dumps({"grid": [GRID, GRID], "channels": CONFIG["embed_dims"][-1],
                                         "normalised": True})
    meta["vidcap.encoder_report"] = json.dumps(report)
    meta["vidcap.video"] = json.dumps({"fps": 4})   # the captioner's sampling rate (4 steps a second)
    safetensors_io.save(a.out, out, meta)
    print(f"saved {a.out}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
