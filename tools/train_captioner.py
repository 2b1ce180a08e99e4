"""Trains, tunes and runs the End-to-end Masked Transformer captioner (tools/masked_transformer.py) on frame
features files (<features dir>/<video id>.safetensors, the contract's format) and ActivityNet-format
references ({"<video id>": {"duration", "timestamps", "sentences"}}).

    train      --features DIR --train train.json --val val.json --out model.safetensors [--val-features DIR]
               [--epochs 4 --batch 32 --lr 1e-3 --seed 0 --max-minutes 28 --tune] [--config '{"d_model": 128}']
    predict    --model M --features DIR --ref split.json --out submission.json [--beam N] [--min-score ...]
    caption-gt --model M --features DIR --ref split.json --out submission.json    (GT segments, P = 1)
    tune       --model M --features DIR --ref val.json [--write]                  (sets vidcap.inference)
    score      --ref split.json --submission submission.json                      (recall/precision, exact match)
    smoke      --work DIR [--count 600 --epochs 12]                               (spec 5.6 smoke test)

Training follows specs/masked_transformer.md section 5 with the contract's model: an example is one (video,
event) pair with 10 positive (tIoU >= 0.7) and 10 negative (max tIoU < 0.3) anchors, sampled without
replacement when there are enough and topped up with replacement otherwise; loss = 1 BCE(event) +
10 SmoothL1(theta_l, theta_c of the positives) + 0.25 CE(caption) + 1 BCE(mask logits, B_p), the caption mask
built from one randomly chosen positive's live predicted window; Adam, gradient clipping 1.0.

Decisions where the spec is open:
- Batches are groups of whole videos: a video that fits in the window is one view whose unmasked pass
  (embedding, encoder, proposal branches) is shared by all its events' examples; only the masked pass and the
  decoder run per example. A longer video gives one random window-length crop containing the event per
  example. An epoch still visits every (video, event) pair once.
- An anchor is a positive of every event it overlaps by tIoU >= 0.7 (densecap gives it to the first such
  event only); events with no positive anchor are left out of training and counted on stderr.
- Anchors of all kernels <= window are used in training; those sticking out past the real frames are scored
  tIoU 0 against every event and so can be negatives (densecap does the same).
- Adam with a linear warm-up (200 steps) then a cosine decay to 5 % of the peak over the planned steps; a
  time budget (--max-minutes) ends training early and keeps the best model by validation loss. Peak lr 1e-3:
  on synthetic 2048-d features with the shipped size, 7 epochs reached val loss 0.215 at 1e-3 against 0.309
  at 5e-4 (both stable).
- Dropout 0.1 on E + PE, word embeddings and residual branches; none on attention probabilities by default
  (densecap: 0.2): on CPU the [B, heads, T, T] dropout masks were the largest forward cost in a profile.
- Validation loss is computed in eval mode with a fixed anchor-sampling seed, so epochs are comparable.
- Features are kept in memory as float16 (real runs: thousands of [160, 2048] windows) and widened per batch.
- Tuning scores every (min_score, nms_tiou, max_events) of a grid by the mean over tIoU 0.3/0.5/0.7/0.9 of
  (recall + precision) / 2 with the 2018 evaluator's matching (strict tIoU > threshold, union = min(span,
  sum of lengths)); a video with no prediction has recall and precision 0.
"""
import argparse
import json
import math
import os
import sys
import time

# On 2 cores shared with other jobs, OpenMP threads that spin at barriers made a training step up to 10x
# slower than one thread (measured); passive waiting keeps 2 threads useful. Must precede the torch import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_fashion import _select_blas_kernels  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import masked_transformer as mt  # noqa: E402
import safetensors_io  # noqa: E402

N_POS, N_NEG = 10, 10
POS_TIOU, NEG_TIOU = 0.7, 0.3
W_EVENT, W_REG, W_CAP, W_MASK = 1.0, 10.0, 0.25, 1.0
TIOUS = (0.3, 0.5, 0.7, 0.9)
WARMUP = 200
GRID_MIN_SCORE = [round(0.05 * i, 2) for i in range(1, 20)] + [0.97, 0.98, 0.99, 0.995]
GRID_NMS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
GRID_MAX_EVENTS = list(range(1, 21))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------------
# data

class Video:
    """One video: features (float16) and times, its fps and duration, GT events in steps and seconds."""

    def __init__(self, vid, features, times, fps, duration, segments, sentences):
        self.vid, self.features, self.times = vid, features, times
        self.fps, self.duration = fps, duration
        self.segments = segments                     # [(start, end)] seconds, as in the reference
        self.sentences = sentences
        t0 = float(times[0]) if len(times) else 0.0
        self.events = np.array([[(min(s, e) - t0) * fps, (max(s, e) - t0) * fps] for s, e in segments],
                               dtype=np.float64).reshape(-1, 2)
        self.tokens = None


def read_json(path):
    with open(path) as f:
        return json.load(f)


def write_json_atomic(obj, path):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def load_videos(features_dir, ref, fps):
    """Videos of the reference that have a features file (the others are counted on stderr)."""
    videos, missing = [], 0
    for vid in sorted(ref):
        path = os.path.join(features_dir, vid + ".safetensors")
        if not os.path.exists(path):
            missing += 1
            continue
        tensors, meta = safetensors_io.load(path)
        info = json.loads(meta.get("vidcap.features", "{}"))
        if "features" not in tensors or "times" not in tensors or "fps" not in info:
            raise ValueError(f"{path}: not a features file (features, times, vidcap.features fps)")
        vfps = float(info["fps"])
        if abs(vfps - fps) > 1e-6:
            raise ValueError(f"{path}: features at {vfps} fps, the model expects {fps}")
        entry = ref[vid]
        duration = float(entry.get("duration", info.get("duration", 0.0)))
        videos.append(Video(vid, tensors["features"].numpy().astype(np.float16),
                            tensors["times"].numpy().astype(np.float64), vfps, duration,
                            [tuple(map(float, t)) for t in entry["timestamps"]], list(entry["sentences"])))
    if missing:
        log(f"{features_dir}: {missing} videos of the reference have no features file")
    if not videos:
        raise ValueError(f"{features_dir}: no features files for the reference's videos")
    return videos


# ----------------------------------------------------------------------------------------------------------
# anchors and training examples

class Anchors:
    """The training anchor grid of one window (all kernels <= window) and its per-anchor windows."""

    def __init__(self, cfg):
        T = cfg["window"]
        self.T = T
        self.n_branches = mt.branches_up_to(cfg["kernels"], T)
        self.centre, self.length = mt.anchor_grid(cfg, self.n_branches)
        self.start, self.end = self.centre - self.length / 2, self.centre + self.length / 2
        bounds = [mt.anchor_bounds(c, l, T) for c, l in zip(self.centre, self.length)]
        self.bound = torch.tensor(bounds, dtype=torch.float32)
        self.window = mt.window_masks(bounds, T)
        self.centre_t = torch.tensor(self.centre, dtype=torch.float32)
        self.length_t = torch.tensor(self.length, dtype=torch.float32)

    def tiou(self, L, events):
        """[N, n] tIoU of every anchor with every event; anchors past the L real steps score 0."""
        s, e = events[:, 0][None, :], events[:, 1][None, :]
        a_s, a_e = self.start[:, None], self.end[:, None]
        inter = np.clip(np.minimum(a_e, e) - np.maximum(a_s, s), 0, None)
        union = (a_e - a_s) + (e - s) - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        iou[self.end > L] = 0.0
        return iou

    def offsets(self, idx, event):
        """Regression targets (theta_l, theta_c) of anchors idx for one event (start, end) in steps."""
        l_gt, c_gt = event[1] - event[0], (event[0] + event[1]) / 2
        return np.stack([np.log(l_gt / self.length[idx]), (c_gt - self.centre[idx]) / self.length[idx]], -1)


def sample_anchors(idx, n, rng):
    if len(idx) >= n:
        return rng.choice(idx, n, replace=False)
    return np.concatenate([idx, rng.choice(idx, n - len(idx), replace=True)])


def view_of(video, T, event, rng):
    """(first step, number of real steps) of the window an example sees: the whole video when it fits,
    otherwise a random crop of T steps that contains `event` (None when the event is longer than T)."""
    L = len(video.features)
    if L <= T:
        return 0, L
    s, e = video.events[event]
    lo, hi = max(0, math.ceil(e) - T), min(math.floor(s), L - T)
    if lo > hi:
        return None
    return int(rng.integers(lo, hi + 1)), T


def all_jobs(videos, T):
    """(video, event) pairs; event None stands for every event of a video that fits the window."""
    jobs = []
    for vi, v in enumerate(videos):
        if len(v.features) <= T:
            jobs.append((vi, None))
        else:
            jobs.extend((vi, j) for j in range(len(v.events)))
    return jobs


def epoch_jobs(videos, T, rng):
    jobs = all_jobs(videos, T)
    order = rng.permutation(len(jobs))
    return [jobs[i] for i in order]


def job_examples(video, job_event, anchors, rng):
    """Builds one view and its examples. Returns (s0, L, [example dicts]) or None."""
    T = anchors.T
    first = 0 if job_event is None else job_event
    view = view_of(video, T, first, rng)
    if view is None:
        return None
    s0, L = view
    ev = np.clip(video.events - s0, 0, L)
    present = ev[:, 1] > ev[:, 0]
    if not present.any():
        return None
    iou = anchors.tiou(L, np.where(present[:, None], ev, -1.0))
    neg = np.flatnonzero(iou.max(1) < NEG_TIOU)
    wanted = range(len(ev)) if job_event is None else [job_event]
    examples = []
    for j in wanted:
        pos = np.flatnonzero(iou[:, j] >= POS_TIOU)
        if not present[j] or len(pos) == 0 or len(neg) == 0:
            continue
        p = sample_anchors(pos, N_POS, rng)
        examples.append({"pos": p, "neg": sample_anchors(neg, N_NEG, rng), "offsets": anchors.offsets(p, ev[j]),
                         "chosen": int(rng.integers(N_POS)), "tokens": video.tokens[j]})
    return s0, L, examples


def make_batch(jobs, videos, anchors, rng):
    """Tensors of one batch: frames [V, T, d_in] of the views and per-example anchors, targets, tokens."""
    frames, view_index, pos, neg, offs, chosen, tokens = [], [], [], [], [], [], []
    for vi, j in jobs:
        built = job_examples(videos[vi], j, anchors, rng)
        if built is None or not built[2]:
            continue
        s0, L, examples = built
        x = np.zeros((anchors.T, videos[vi].features.shape[1]), dtype=np.float32)
        x[:L] = videos[vi].features[s0:s0 + L]
        for ex in examples:
            view_index.append(len(frames))
            pos.append(ex["pos"])
            neg.append(ex["neg"])
            offs.append(ex["offsets"])
            chosen.append(ex["chosen"])
            tokens.append(ex["tokens"])
        frames.append(x)
    if len(view_index) < 2:  # BatchNorm in training mode needs two examples
        return None
    return {"frames": torch.from_numpy(np.stack(frames)), "view": torch.tensor(view_index),
            "pos": torch.from_numpy(np.stack(pos)).long(), "neg": torch.from_numpy(np.stack(neg)).long(),
            "offsets": torch.from_numpy(np.stack(offs)).float(), "chosen": torch.tensor(chosen),
            "tokens": torch.tensor(np.stack(tokens)).long()}


def batches(jobs, videos, anchors, batch_size, rng):
    """Groups jobs until each batch holds at least batch_size examples (a job may hold several)."""
    group, n = [], 0
    for job in jobs:
        group.append(job)
        n += 1 if job[1] is not None else len(videos[job[0]].events)
        if n >= batch_size:
            b = make_batch(group, videos, anchors, rng)
            if b is not None:
                yield b
            group, n = [], 0
    if group:
        b = make_batch(group, videos, anchors, rng)
        if b is not None:
            yield b


def count_unusable(videos, anchors):
    """Events without any positive anchor in their own view (left out of training)."""
    rng = np.random.default_rng(0)
    bad = 0
    for v in videos:
        for j in range(len(v.events)):
            view = view_of(v, anchors.T, j, rng)
            if view is None:
                bad += 1
                continue
            s0, L = view
            ev = np.clip(v.events[j:j + 1] - s0, 0, L)
            bad += int(ev[0, 1] <= ev[0, 0] or not (anchors.tiou(L, ev)[:, 0] >= POS_TIOU).any())
    return bad


# ----------------------------------------------------------------------------------------------------------
# the losses

def batch_losses(model, batch, anchors):
    """The four losses of one batch (spec 5.2): event BCE, offset SmoothL1, caption CE, mask BCE."""
    T = anchors.T
    E = model.embed(batch["frames"])
    H = model.encode(E)
    out = model.anchor_outputs(H[-1], anchors.n_branches)
    view = batch["view"]
    o_pos = out[view[:, None], batch["pos"]]
    o_neg = out[view[:, None], batch["neg"]]
    logits = torch.cat([o_pos[..., 0], o_neg[..., 0]], 1)
    event = F.binary_cross_entropy_with_logits(logits, torch.cat([torch.ones_like(o_pos[..., 0]),
                                                                  torch.zeros_like(o_neg[..., 0])], 1))
    reg = F.smooth_l1_loss(o_pos[..., 2:4], batch["offsets"])
    rows = torch.arange(len(view))
    o = o_pos[rows, batch["chosen"]]
    a = batch["pos"][rows, batch["chosen"]]
    start, end = mt.decode_proposal(anchors.centre_t[a], anchors.length_t[a], o[:, 2:4])
    with torch.no_grad():
        w_s = torch.floor(start.clamp(0, T - 1))
        w_e = torch.ceil(end.clamp(1, T))
        steps = torch.arange(T, dtype=start.dtype)
        B_p = ((steps >= w_s[:, None]) & (steps < w_e[:, None])).to(start.dtype)
    g = model.continuous_mask_logits(model.mask_input(start, end, anchors.bound[a, 0], anchors.bound[a, 1],
                                                      anchors.window[a]))
    mask = F.binary_cross_entropy_with_logits(g, B_p)
    M = model.gated_mask(torch.sigmoid(o[:, 0]), B_p, g)
    masked = model.encode(E[view], M)
    tokens = batch["tokens"]
    cap_logits = model.caption_logits(tokens[:, :-1], masked)
    cap = F.cross_entropy(cap_logits.reshape(-1, cap_logits.shape[-1]), tokens[:, 1:].reshape(-1),
                          ignore_index=mt.PAD)
    total = W_EVENT * event + W_REG * reg + W_CAP * cap + W_MASK * mask
    return total, {"event": float(event), "reg": float(reg), "cap": float(cap), "mask": float(mask)}


@torch.no_grad()
def validation_loss(model, videos, anchors, batch_size, seed):
    model.eval()
    rng = np.random.default_rng(seed)
    jobs = all_jobs(videos, anchors.T)
    total, parts, n = 0.0, {}, 0
    for b in batches(jobs, videos, anchors, batch_size, rng):
        k = len(b["view"])
        loss, p = batch_losses(model, b, anchors)
        total += float(loss) * k
        for key, v in p.items():
            parts[key] = parts.get(key, 0.0) + v * k
        n += k
    return total / max(n, 1), {k: v / max(n, 1) for k, v in parts.items()}


# ----------------------------------------------------------------------------------------------------------
# training

def learning_rate(step, total, peak):
    if step < WARMUP:
        return peak * (step + 1) / WARMUP
    u = min(1.0, (step - WARMUP) / max(1, total - WARMUP))
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * u)))


def train(a):
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    t_start = time.time()
    train_ref, val_ref = read_json(a.train), read_json(a.val)
    overrides = json.loads(a.config) if a.config else {}
    fps = overrides.get("fps", mt.default_config()["fps"])
    train_videos = load_videos(a.features, train_ref, fps)
    overrides.setdefault("d_in", int(train_videos[0].features.shape[1]))
    cfg = mt.default_config(**overrides)
    val_videos = load_videos(a.val_features or a.features, val_ref, cfg["fps"])
    sentences = [s for v in train_videos + val_videos for s in v.sentences]
    vocab = mt.build_vocab(sentences)
    stoi = {w: i for i, w in enumerate(vocab)}
    for v in train_videos + val_videos:
        v.tokens = np.array([mt.encode_sentence(s, stoi, cfg["max_tokens"]) for s in v.sentences],
                            dtype=np.int64).reshape(-1, cfg["max_tokens"])
    anchors = Anchors(cfg)
    n_examples = sum(len(v.events) for v in train_videos)
    log(f"train: {len(train_videos)} videos, {n_examples} events ({count_unusable(train_videos, anchors)} "
        f"without a positive anchor); val: {len(val_videos)} videos; vocab {len(vocab)}; "
        f"{len(anchors.centre)} anchors; loaded in {time.time() - t_start:.0f} s")
    model = mt.MaskedTransformer(cfg, vocab, dropout=a.dropout, attn_dropout=a.attn_dropout)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f} M parameters, config {mt.config_to_json(cfg)}")
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    planned = max(1, a.epochs * math.ceil(n_examples / a.batch))
    if a.max_steps:
        planned = min(planned, a.max_steps)
    best, step, stop = None, 0, False
    deadline = t_start + 60 * a.max_minutes if a.max_minutes else None
    history = []
    for epoch in range(a.epochs):
        model.train()
        t_epoch, cpu_epoch, seen, run = time.time(), time.process_time(), 0, {}
        for b in batches(epoch_jobs(train_videos, cfg["window"], rng), train_videos, anchors, a.batch, rng):
            for group in opt.param_groups:
                group["lr"] = learning_rate(step, planned, a.lr)
            loss, parts = batch_losses(model, b, anchors)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            seen += len(b["view"])
            for k, v in parts.items():
                run[k] = 0.9 * run.get(k, v) + 0.1 * v
            if step % a.log_every == 0:
                rate = seen / (time.time() - t_epoch)
                log(f"epoch {epoch + 1} step {step}/{planned} {seen}/{n_examples} ex, {rate:.1f} ex/s, "
                    f"lr {opt.param_groups[0]['lr']:.2e}, " + ", ".join(f"{k} {v:.3f}" for k, v in run.items()))
            if (a.max_steps and step >= a.max_steps) or (deadline and time.time() > deadline):
                stop = True
                break
        rate = seen / max(time.time() - t_epoch, 1e-9)
        cpu_rate = seen / max(time.process_time() - cpu_epoch, 1e-9)
        val, vparts = validation_loss(model, val_videos, anchors, a.batch, a.seed + 1)
        history.append({"epoch": epoch + 1, "steps": step, "val_loss": round(val, 5), "ex_per_s": round(rate, 2)})
        log(f"epoch {epoch + 1}: {seen} examples at {rate:.1f} ex/s ({cpu_rate:.1f} per CPU second); "
            f"val loss {val:.4f} (" + ", ".join(f"{k} {v:.3f}" for k, v in vparts.items())
            + f"); {time.time() - t_start:.0f} s")
        if best is None or val < best:
            best = val
            training = {"seed": a.seed, "epochs_run": epoch + 1, "steps": step, "val_loss": round(val, 5),
                        "batch": a.batch, "lr": a.lr, "dropout": a.dropout, "attn_dropout": a.attn_dropout,
                        "history": history,
                        "minutes": round((time.time() - t_start) / 60, 1)}
            mt.save(model, a.out, {"vidcap.training": training})
            log(f"{a.out}: best so far, written")
        if stop:
            break
    model = mt.load(a.out)
    if a.tune:
        params, table = tune(model, val_videos)
        model.inference_params = params
        extra = extra_metadata(model)
        training = json.loads(extra.get("vidcap.training", "{}"))
        training["tuning"] = table
        extra["vidcap.training"] = json.dumps(training)
        mt.save(model, a.out, extra)
        log(f"{a.out}: vidcap.inference {json.dumps(params)} ({table})")
    log(f"done in {(time.time() - t_start) / 60:.1f} min")


def extra_metadata(model):
    """The loaded file's metadata that mt.save does not regenerate (vidcap.training, ...)."""
    own = mt.metadata(model)
    return {k: v for k, v in getattr(model, "file_metadata", {}).items() if k not in own}


# ----------------------------------------------------------------------------------------------------------
# detection metrics (2018 evaluator rules) and tuning

def eval_tiou(a, b):
    """densevid_eval's tIoU: union = min(span, sum of lengths)."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = min(max(a[1], b[1]) - min(a[0], b[0]), (a[1] - a[0]) + (b[1] - b[0]))
    return inter / (union + 1e-8)


def hit_table(pred, gt):
    """[n_pred, n_gt, len(TIOUS)] booleans: tIoU > threshold."""
    h = np.zeros((len(pred), len(gt), len(TIOUS)), dtype=bool)
    for i, p in enumerate(pred):
        for j, g in enumerate(gt):
            h[i, j] = eval_tiou(p, g) > np.array(TIOUS)
    return h


def video_recall_precision(hits):
    """Recall and precision per threshold of one video's predictions (zero predictions: 0 and 0)."""
    if hits.shape[0] == 0 or hits.shape[1] == 0:
        return np.zeros(len(TIOUS)), np.zeros(len(TIOUS))
    return hits.any(0).mean(0), hits.any(1).mean(0)


@torch.no_grad()
def window_proposals(model, video):
    """Per window of the video: (first time, L, anchor scores, starts, ends) of the proposal decoder."""
    T = model.config["window"]
    out = []
    for s0 in range(0, len(video.features), T):
        frames, L = model._window_frames(video.features[s0:s0 + T].astype(np.float32))
        _, _, _, _, _, score, start, end = model.propose(frames, L)
        out.append((float(video.times[s0]), L, score, start, end))
    return out


def window_candidates(model, video, proposals, nms, max_events, min_score):
    """Per window: kept proposals (score, start s, end s) in score order, as infer() keeps them."""
    out = []
    for t0, L, score, start, end in proposals:
        kept = model._select_proposals(score, start, end, L, min_score, nms, max_events)
        out.append([(float(score[k]), min(t0 + ws / video.fps, video.duration),
                     min(t0 + we / video.fps, video.duration)) for k, ws, we in kept])
    return out


def tune(model, videos):
    """Grid search of vidcap.inference on a split by mean over tIoUs of (recall + precision) / 2."""
    model.eval()
    kmax = max(GRID_MAX_EVENTS)
    n_v, n_t = len(videos), len(TIOUS)
    best = None
    proposals = [window_proposals(model, v) for v in videos]
    for nms in GRID_NMS:
        # per video, the kept list of the loosest setting; every stricter setting keeps a prefix of it
        scores = np.full((n_v, kmax), -np.inf)
        R = np.zeros((n_v, kmax + 1, n_t))
        P = np.zeros((n_v, kmax + 1, n_t))
        multi = {}
        for vi, v in enumerate(videos):
            wins = window_candidates(model, v, proposals[vi], nms, kmax, min(GRID_MIN_SCORE))
            if len(wins) > 1:
                multi[vi] = [(np.array([c[0] for c in w]), hit_table([c[1:] for c in w], v.segments)) for w in wins]
                continue
            w = wins[0]
            scores[vi, :len(w)] = [c[0] for c in w]
            hits = hit_table([c[1:] for c in w], v.segments)
            for n in range(1, kmax + 1):
                R[vi, n], P[vi, n] = video_recall_precision(hits[:n])
        for ms in GRID_MIN_SCORE:
            count = (scores >= ms).sum(1)
            for me in GRID_MAX_EVENTS:
                n = np.minimum(count, me)
                rec, prec = R[np.arange(n_v), n], P[np.arange(n_v), n]
                for vi, wl in multi.items():
                    sel = [h[:min(int((s >= ms).sum()), me)] for s, h in wl]
                    rec[vi], prec[vi] = video_recall_precision(np.concatenate(sel, 0))
                value = float((rec.mean(0) + prec.mean(0)).mean() / 2)
                if best is None or value > best[0] + 1e-12:
                    best = (value, {"min_score": ms, "nms_tiou": nms, "max_events": me},
                            rec.mean(0), prec.mean(0))
    value, params, rec, prec = best
    table = (f"objective {value:.4f}; recall " + " ".join(f"{r:.3f}" for r in rec) + f" (mean {rec.mean():.3f}); "
             f"precision " + " ".join(f"{p:.3f}" for p in prec) + f" (mean {prec.mean():.3f}) at tIoU {TIOUS}")
    return params, table


# ----------------------------------------------------------------------------------------------------------
# submissions

def submission(results, details):
    return {"version": "VERSION 1.0", "results": results, "external_data": {"used": False, "details": details}}


def predict(model, videos, beam=1, min_score=None, nms_tiou=None, max_events=None):
    results = {}
    t0 = time.time()
    for i, v in enumerate(videos):
        events = model.infer_video(v.features.astype(np.float32), v.times, v.fps, min_score, nms_tiou,
                                   max_events, beam, duration=v.duration)
        events.sort(key=lambda e: (e["start"], e["end"]))
        results[v.vid] = [{"sentence": e["sentence"], "timestamp": [round(e["start"], 3), round(e["end"], 3)],
                           "proposal_score": round(e["score"], 5)} for e in events]
        if (i + 1) % 100 == 0:
            log(f"predict: {i + 1}/{len(videos)} videos, {(time.time() - t0) / (i + 1):.2f} s/video")
    return results


def caption_ground_truth(model, videos, beam=1):
    """The upper-bound baseline: the caption decoder on every GT segment, the GT window as the mask (P = 1)."""
    T = model.config["window"]
    results = {}
    for v in videos:
        L = len(v.features)
        entries = []
        for (s, e), (a, b) in zip(v.segments, v.events):
            s0 = 0 if L <= T else int(np.clip(math.floor((a + b) / 2 - T / 2), 0, L - T))
            sent = model.caption_segments(v.features[s0:s0 + T].astype(np.float32), v.times[s0:s0 + T], v.fps,
                                          [(s, e)], beam)[0]
            entries.append({"sentence": sent, "timestamp": [s, e]})
        results[v.vid] = entries
    return results


def score(ref, results):
    """Recall/precision per tIoU (2018 rules, best-matching prediction) and the caption exact-match rate of GT
    events whose best prediction overlaps them by tIoU >= 0.5."""
    rec, prec = [], []
    matched = correct = n_gt = 0
    for vid, entry in ref.items():
        preds = results.get(vid, [])
        gts = [tuple(t) for t in entry["timestamps"]]
        hits = hit_table([p["timestamp"] for p in preds], gts)
        r, p = video_recall_precision(hits)
        rec.append(r)
        prec.append(p)
        for g, sent in zip(gts, entry["sentences"]):
            n_gt += 1
            if not preds:
                continue
            ious = [eval_tiou(pr["timestamp"], g) for pr in preds]
            k = int(np.argmax(ious))
            if ious[k] >= 0.5:
                matched += 1
                correct += int(mt.tokenize(preds[k]["sentence"]) == mt.tokenize(sent))
    rec, prec = np.mean(rec, 0), np.mean(prec, 0)
    return {"recall": dict(zip(TIOUS, rec.round(4).tolist())),
            "precision": dict(zip(TIOUS, prec.round(4).tolist())),
            "mean_recall": round(float(rec.mean()), 4), "mean_precision": round(float(prec.mean()), 4),
            "gt_events": n_gt, "matched_at_0.5": matched,
            "exact_captions_of_matched": round(correct / max(matched, 1), 4),
            "exact_captions_of_all": round(correct / max(n_gt, 1), 4)}


def smoke(a):
    """Spec 5.6: synthetic features with planted events (tools/synthetic_events.py), a tiny model trained for
    a few minutes, then recall and exact-caption rate on a held-out split, learned proposals and GT segments."""
    import synthetic_events
    for split, count in (("train", a.count), ("val", a.count // 6), ("test", a.count // 6)):
        if not os.path.exists(os.path.join(a.work, f"{split}.json")):
            synthetic_events.write_split(a.work, split, count, a.d_in, a.seed)
    out = os.path.join(a.work, "smoke.safetensors")
    train(argparse.Namespace(
        features=os.path.join(a.work, "train"), val_features=os.path.join(a.work, "val"),
        train=os.path.join(a.work, "train.json"), val=os.path.join(a.work, "val.json"), out=out,
        config=json.dumps({"d_model": 64, "d_ff": 128}), epochs=a.epochs, batch=32, lr=1e-3, dropout=0.1,
        attn_dropout=0.0, seed=a.seed, max_minutes=a.max_minutes, max_steps=0, log_every=50, tune=True))
    model = mt.load(out)
    ref = read_json(os.path.join(a.work, "test.json"))
    videos = load_videos(os.path.join(a.work, "test"), ref, model.config["fps"])
    for name, results in (("learned proposals", predict(model, videos)),
                          ("ground-truth segments", caption_ground_truth(model, videos))):
        s = score(ref, results)
        print(f"smoke test, {name}: recall@0.5 {s['recall'][0.5]:.3f}, precision@0.5 {s['precision'][0.5]:.3f}, "
              f"mean recall {s['mean_recall']:.3f}, mean precision {s['mean_precision']:.3f}; exact captions "
              f"{s['exact_captions_of_matched']:.3f} of the {s['matched_at_0.5']} GT events matched at tIoU 0.5 "
              f"({s['gt_events']} GT events)")


# ----------------------------------------------------------------------------------------------------------
# command line

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--features", required=True)
    t.add_argument("--val-features")
    t.add_argument("--train", required=True)
    t.add_argument("--val", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--config", help="JSON overrides of the default config, e.g. '{\"d_model\": 128}'")
    t.add_argument("--epochs", type=int, default=4)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--dropout", type=float, default=0.1)
    t.add_argument("--attn-dropout", type=float, default=0.0,
                   help="dropout on attention probabilities (densecap 0.2; 0 is much cheaper on CPU)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-minutes", type=float, default=0)
    t.add_argument("--max-steps", type=int, default=0)
    t.add_argument("--log-every", type=int, default=25)
    t.add_argument("--tune", action="store_true", help="tune vidcap.inference on the validation split")
    for name in ("predict", "caption-gt", "tune"):
        p = sub.add_parser(name)
        p.add_argument("--model", required=True)
        p.add_argument("--prefix", default="")
        p.add_argument("--features", required=True)
        p.add_argument("--ref", "--references", dest="ref", required=True)
        if name != "tune":
            p.add_argument("--out", required=True)
            p.add_argument("--beam", type=int, default=1)
        if name == "predict":
            p.add_argument("--min-score", type=float)
            p.add_argument("--nms-tiou", type=float)
            p.add_argument("--max-events", type=int)
        if name == "tune":
            p.add_argument("--write", action="store_true", help="store the tuned values in the model file")
    k = sub.add_parser("smoke")
    k.add_argument("--work", required=True, help="directory for the synthetic data and the model")
    k.add_argument("--count", type=int, default=600, help="training videos (val and test get a sixth)")
    k.add_argument("--d-in", type=int, default=64)
    k.add_argument("--epochs", type=int, default=12)
    k.add_argument("--max-minutes", type=float, default=0, help="wall-clock budget (default none: 12 epochs)")
    k.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("score")
    s.add_argument("--ref", required=True)
    s.add_argument("--submission", required=True)
    for p in (t, s, k) + tuple(sub.choices[n] for n in ("predict", "caption-gt", "tune")):
        p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    a = ap.parse_args(argv)

    _select_blas_kernels()
    torch.set_num_threads(a.threads)
    if a.cmd == "train":
        train(a)
        return
    if a.cmd == "smoke":
        smoke(a)
        return
    if a.cmd == "score":
        print(json.dumps(score(read_json(a.ref), read_json(a.submission)["results"]), indent=1))
        return
    model = mt.load(a.model, a.prefix)
    videos = load_videos(a.features, read_json(a.ref), model.config["fps"])
    if a.cmd == "tune":
        params, table = tune(model, videos)
        print(json.dumps(params))
        log(table)
        if a.write:
            if a.prefix:
                raise SystemExit("tune --write: rewrite a bundle with the bundle tool, not here")
            model.inference_params = params
            mt.save(model, a.model, extra_metadata(model))
        return
    if a.cmd == "predict":
        results = predict(model, videos, a.beam, a.min_score, a.nms_tiou, a.max_events)
        details = f"vidcap masked transformer, {os.path.basename(a.model)}, beam {a.beam}"
    else:
        results = caption_ground_truth(model, videos, a.beam)
        details = f"vidcap masked transformer on ground-truth segments, {os.path.basename(a.model)}, beam {a.beam}"
    write_json_atomic(submission(results, details), a.out)
    log(f"{a.out}: {sum(len(r) for r in results.values())} events for {len(results)} videos")


if __name__ == "__main__":
    main()
