"""Masked Transformer parity fixtures: random-weight small captioners from tools/masked_transformer.py and the
reference's trace of one window, for tests/test_captioner_parity.c.

For each case writes CASE.model.safetensors (mt.save, with vidcap.inference) and CASE.expect.safetensors:
  features [L, d_in], times [L];  every trace tensor of model.infer(..., trace=True) under its own name;
  events.window [K, 2], events.proposal [K, 2], events.time [K, 2] (seconds, clipped), events.score [K],
  events.anchor [K], events.tokens.<p> [n_p] (float ids, before <eos>);
  metadata: L, beam, min_score, nms_tiou, max_events, duration, prefix, n_events, sentences (JSON list).
Weights are random at realistic scale with randomised BatchNorm statistics; the features carry planted
events (a constant offset on a random direction inside a few segments) so that the anchor scores have
structure and several proposals survive NMS. The oracle runs in float64 (the values C sees are the float32
ones stored), so parity errors are the C side's.
    /usr/bin/python3 tests/parity/gen_captioner.py --outdir DIR [--bench]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import masked_transformer as mt  # noqa: E402
import safetensors_io  # noqa: E402

WORDS = ("a the red blue green yellow sneaker bag shirt boot dress coat enters leaves moves appears "
         "disappears from left right top bottom and slowly quickly small large").split()

# kernels with strides above 1 (stride_factor 4) and a window the last kernel does not fill
SMALL = dict(d_in=24, d_model=32, n_heads=4, d_ff=48, n_layers=2, window=40, fps=4,
             kernels=[3, 4, 6, 8, 10, 13, 17], stride_factor=4, pe_mask_dim=8, max_tokens=9, time_dropout=0.1)
# one layer, odd sizes, three heads of 8
ODD = dict(d_in=17, d_model=24, n_heads=3, d_ff=40, n_layers=1, window=33, fps=2,
           kernels=[2, 5, 7, 12], stride_factor=5, pe_mask_dim=6, max_tokens=7, time_dropout=0.2)


def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or name.endswith("beta"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
            elif name.endswith("gamma") or (p.dim() == 1 and name.endswith("weight")):  # LN / BN scales
                p.copy_(1.0 + torch.randn(p.shape, generator=gen) * 0.2)
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=gen) * 0.3)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=gen) * 1.5 + 0.5)


def planted_features(L, d_in, gen, n_events=3):
    x = torch.randn(L, d_in, generator=gen) * 0.5
    for _ in range(n_events):
        length = int(torch.randint(3, max(4, L // 3), (1,), generator=gen))
        start = int(torch.randint(0, max(1, L - length), (1,), generator=gen))
        direction = torch.randn(d_in, generator=gen)
        x[start:start + length] += 1.5 * direction
    return x.float()


def build(cfg, seed):
    gen = torch.Generator().manual_seed(seed)
    model = mt.MaskedTransformer(mt.default_config(**cfg), mt.SPECIALS + WORDS)
    randomize(model, gen)
    model.eval()
    return model, gen


def teach_decoder(model, features, gen, steps=60):
    """A random decoder says the same word whatever the memory (its tied embedding feeds the last word
    back), which would make "token-identical captions" a weak check. So the decoder alone (encoder, branches
    and mask network stay random) is fitted for a few Adam steps to caption window masks with sentences
    that depend on where the window is and how long it is: captions then differ between proposals, end at
    different lengths, and a wrong memory shows up as a wrong word."""
    cfg = model.config
    T, L, n_words = cfg["window"], features.shape[0], cfg["max_tokens"] - 2
    n = 48
    starts = torch.randint(0, L - 1, (n,), generator=gen)
    ends = torch.minimum(starts + 1 + torch.randint(0, max(2, L // 2), (n,), generator=gen), torch.tensor(L))
    windows = torch.stack([starts, ends], 1)
    vocab = model.vocab[4:]
    sentences = []
    for s, e in windows.tolist():
        k = 1 + (s * 7 + e) % n_words
        sentences.append(" ".join(vocab[(s * 3 + (e - s) * 5 + 2 * i) % len(vocab)] for i in range(k)))
    tokens = torch.tensor([mt.encode_sentence(x, model.stoi, cfg["max_tokens"]) for x in sentences])
    # the longest sentences never end: decoding must stop at max_tokens - 1 words without an <eos>
    run_on = tokens[:, -1] == mt.EOS
    tokens[run_on, -1] = model.stoi[vocab[0]]
    frames = torch.zeros(1, T, cfg["d_in"])
    frames[0, :L] = features
    with torch.no_grad():
        E = model.embed(frames)
        masked = model.encode(E.expand(n, -1, -1), mt.window_masks(windows.tolist(), T))
    params = list(model.cap_model.decoder.parameters())
    opt = torch.optim.Adam(params, lr=1e-2)
    for _ in range(steps):
        logits = model.caption_logits(tokens[:, :-1], masked)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1),
                                                 ignore_index=mt.PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss)


def write_case(outdir, name, model, features, times, L, params, prefix="", dtype=torch.float64):
    """Saves the model (float32, as shipped), runs the reference in `dtype` on the float32 values and writes
    the expectations. Returns the events."""
    model_path = os.path.join(outdir, f"{name}.model.safetensors")
    inference = {k: params[k] for k in ("min_score", "nms_tiou", "max_events")}
    mt.save(model, model_path, {"vidcap.inference": inference}, prefix=prefix)
    ref = mt.load(model_path, prefix=prefix).to(dtype)
    fps = ref.config["fps"]
    events, tr = ref.infer(features.to(dtype), times.double(), fps, params["min_score"], params["nms_tiou"],
                           params["max_events"], beam=params["beam"], trace=True)
    check_margins(name, tr, events, L, params)
    duration = float(times[L - 1]) + 1.0 / fps if L else 0.0
    out = {"features": features, "times": times}
    out.update({k: v.detach().float() for k, v in tr.items() if k != "input"})
    K = len(events)
    out["events.window"] = torch.tensor([e["window"] for e in events], dtype=torch.float32).reshape(K, 2)
    out["events.proposal"] = torch.tensor([e["proposal"] for e in events], dtype=torch.float32).reshape(K, 2)
    out["events.time"] = torch.tensor([[e["start"], e["end"]] for e in events], dtype=torch.float64).reshape(K, 2)
    out["events.score"] = torch.tensor([e["score"] for e in events], dtype=torch.float32)
    out["events.anchor"] = torch.tensor([e["anchor"] for e in events], dtype=torch.float32)
    for p, e in enumerate(events):
        out[f"events.tokens.{p}"] = torch.tensor(e["tokens"], dtype=torch.float32)
    meta = {"L": str(L), "beam": str(params["beam"]), "min_score": repr(params["min_score"]),
            "nms_tiou": repr(params["nms_tiou"]), "max_events": str(params["max_events"]),
            "duration": repr(duration), "prefix": prefix, "n_events": str(K),
            "sentences": json.dumps([e["sentence"] for e in events])}
    safetensors_io.save(os.path.join(outdir, f"{name}.expect.safetensors"), out, meta)
    steps = [len(e["tokens"]) for e in events]
    print(f"{name}: L={L} anchors={tr['anchors.output'].shape[0]} kept={K} beam={params['beam']} "
          f"caption lengths={steps}")
    return events


def check_margins(name, tr, events, L, params, eps=1e-4):
    """The fixture must not sit on a decision boundary that float32 rounding in C could flip: anchor scores
    against min_score, proposal bounds against 0 and L + 1, the quantisation's floor and ceil, the NMS
    threshold, and the greedy argmax."""
    score, start, end = tr["anchors.score"], tr["anchors.start"], tr["anchors.end"]
    near = lambda x, v: bool(((x - v).abs() < eps).any())  # noqa: E731
    assert not near(score, params["min_score"]), f"{name}: an anchor score is at min_score"
    assert not near(start, 0.0) and not near(end, float(L + 1)), f"{name}: a proposal bound is at the limit"
    assert not near(start, end), f"{name}: a proposal has (almost) zero length"
    kept = [(e["proposal"], e["window"]) for e in events]
    for (s, e), _ in kept:
        assert abs(s - round(s)) > eps and abs(e - round(e)) > eps, f"{name}: a kept bound is on an integer"
    # every candidate against the windows kept before it
    order = sorted(range(len(score)), key=lambda a: -float(score[a]))
    kept_windows = []
    for a in order:
        if len(kept_windows) >= params["max_events"]:
            break
        s, e = float(start[a]), float(end[a])
        if not (s < e and s >= 0 and e <= L + 1 and float(score[a]) >= params["min_score"]):
            continue
        ious = [mt.segment_tiou(s, e, ks, ke) for ks, ke in kept_windows]
        assert all(abs(i - params["nms_tiou"]) > eps for i in ious), f"{name}: a tIoU is at nms_tiou"
        if all(i <= params["nms_tiou"] for i in ious):
            kept_windows.append(mt.quantised_window(s, e, min(L + 1, tr["embedding"].shape[0])))
    if params["beam"] == 1:
        for p in range(len(events)):
            top2 = tr[f"decoder.logits.{p}"].topk(2, -1).values
            assert bool((top2[:, 0] - top2[:, 1] > 1e-3).all()), f"{name}: a greedy step is a near tie"


def min_score_for(model, features, L, keep=0.35):
    """A threshold that lets about `keep` of the valid anchors through (random weights put scores anywhere)."""
    with torch.no_grad():
        _, tr = model.double().infer(features.double(), torch.arange(L, dtype=torch.float64) / model.config["fps"],
                                     model.config["fps"], 0.0, 1.0, 0, trace=True)
        model.float()
    s = tr["anchors.score"]
    ok = (tr["anchors.start"] < tr["anchors.end"]) & (tr["anchors.start"] >= 0) & (tr["anchors.end"] <= L + 1)
    valid = s[ok].sort(descending=True).values
    if len(valid) < 2:
        return 0.5
    # halfway across a gap between two scores near the quantile, never on one: float32 rounding on the C
    # side must not flip a candidate
    target = min(int(len(valid) * keep), len(valid) - 2)
    for i in sorted(range(len(valid) - 1), key=lambda i: abs(i - target)):
        if float(valid[i] - valid[i + 1]) > 1e-3:
            return float(valid[i] + valid[i + 1]) / 2
    return 0.5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--bench", action="store_true", help="also write the shipped-size model for --bench")
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    torch.set_num_threads(1)  # the same fixture on every run: no thread-order float differences

    model, gen = build(SMALL, 20240611)
    T, fps = SMALL["window"], SMALL["fps"]
    full = planted_features(T, SMALL["d_in"], gen)
    teach_decoder(model, full, gen)
    times = (torch.arange(T, dtype=torch.float64) / fps + 3.0).float()  # a window 3 s into a video
    ms = min_score_for(model, full, T)
    base = dict(min_score=ms, nms_tiou=0.5, max_events=7)
    ev = write_case(args.outdir, "greedy", model, full, times, T, dict(base, beam=1))
    assert len(ev) >= 4, "the greedy case needs several proposals"
    assert any(len(e["tokens"]) < SMALL["max_tokens"] - 2 for e in ev), "some caption should end early"
    ev = write_case(args.outdir, "beam", model, full, times, T, dict(base, beam=3))
    assert len(ev) >= 4
    # L < window: zero-padded steps, branches cut at the first kernel longer than L, inside a bundle
    L = 15
    part = planted_features(L, SMALL["d_in"], gen, n_events=2)
    ms_pad = min_score_for(model, part, L, keep=0.5)
    ev = write_case(args.outdir, "pad", model, part, times[:L], L, dict(min_score=ms_pad, nms_tiou=0.6,
                                                                        max_events=20, beam=2),
                    prefix="captioner.")
    assert len(ev) >= 2
    # nothing passes min_score: zero events
    ev = write_case(args.outdir, "empty", model, full, times, T, dict(min_score=0.999999, nms_tiou=0.5,
                                                                      max_events=7, beam=1))
    assert not ev
    # shorter than the shortest kernel: no branch runs, no anchors, zero events
    ev = write_case(args.outdir, "short", model, full[:2], times[:2], 2, dict(base, beam=1))
    assert not ev
    # another shape: one layer, 3 heads of 8, odd sizes
    odd, gen2 = build(ODD, 7)
    T2 = ODD["window"]
    f2 = planted_features(T2 - 4, ODD["d_in"], gen2)
    teach_decoder(odd, f2, gen2)
    t2 = (torch.arange(T2 - 4, dtype=torch.float64) / ODD["fps"]).float()
    ev = write_case(args.outdir, "odd", odd, f2, t2, T2 - 4,
                    dict(min_score=min_score_for(odd, f2, T2 - 4), nms_tiou=0.7, max_events=12, beam=4))
    assert len(ev) >= 2

    if args.bench:
        shipped, g3 = build(dict(d_in=2048, window=160), 11)
        f3 = planted_features(160, 2048, g3)
        mt.save(shipped, os.path.join(args.outdir, "bench.model.safetensors"),
                {"vidcap.inference": {"min_score": 0.0, "nms_tiou": 1.0, "max_events": 10}})
        safetensors_io.save(os.path.join(args.outdir, "bench.features.safetensors"),
                            {"features": f3, "times": torch.arange(160, dtype=torch.float32) / 4}, {})
        print("bench: shipped-size model (d_in 2048, d 192, window 160) written")


if __name__ == "__main__":
    main()
