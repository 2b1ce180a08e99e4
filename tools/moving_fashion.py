"""Moving Fashion: generates the demo world for dense video captioning (specs/moving_fashion.md), videos of
Fashion-MNIST items that enter, leave, move, appear and disappear, with exact ground-truth dense captions.

    /usr/bin/python3 tools/moving_fashion.py --split train --count 2000 --jobs 2 --out /tmp/mf
        writes /tmp/mf/train_00000.mp4 ... and /tmp/mf/train.json (ActivityNet Captions format)
    /usr/bin/python3 tools/moving_fashion.py --sample samples/moving-fashion.mp4 --split test --index 12
        writes the committed sample (31.9 s, 8 events, all five kinds) and samples/moving-fashion.json

Python API (the encoder trainer imports it): CLASS_WORDS, COLOURS, video_id(split, index),
make_video(split, index, seed=0) -> dict with frames [N, 96, 96, 3] uint8 RGB, fps, duration, events,
items and tracks [N, n_items, 6] float32 (class, colour, centre x, centre y, size, alpha; see TRACK_FIELDS).
encode_mp4(frames, path) and reference_entry(video) are what the CLI uses.

Decisions where the spec is open:
- 96x96 canvas, 10 fps, N frames: frame k is shown at k/10 s and the video lasts N/10 s. An event starts at
  the frame where its motion or fade starts and ends at the frame where it stops (multiples of 0.1 s).
- Each video first draws its event count K (3-8), then its length, 3.5K-5.5K s clamped to 12-40 s, so
  events stay dense enough to overlap; K start frames are drawn at least 0.5 s apart. Every event lasts
  1.5-6 s (fades 1.5-4 s); motion runs at 6-45 px/s, a move covers 16-64 px. An event that cannot be placed
  at its start (every item busy, no room) is dropped; a plan with fewer than 3 events is drawn again.
- 0-2 items are already on the canvas at t=0 (no event says so, as in real video); an item that leaves
  or disappears is gone for good; items of one video have distinct (class, colour) pairs, so "the red
  sneaker" always names one item. At most 3 items are on the canvas at any time.
- Items keep apart: the boxes around their visible pixels (1 px margin) may overlap by at most 8 % of the
  smaller box at any frame, checked for the whole remaining video whenever a plan changes.
- Motion is drawn with sub-pixel bilinear placement, so slow moves are smooth; each event is linear or
  ease-in-out (cosine) at random. Tinting multiplies the colour by the item's intensity, which is also
  its alpha; fades scale that alpha.
- Background: a per-video static grey noise field plus light per-frame noise (sensor-like), around 8/255.
- One grid place phrase per 3x3 cell ("in the top left corner", "at the top", "in the middle", ...);
  the verbs vary (3 phrasings per kind). Colour words come before the class word; "a" for enter and
  appear (the item is new), "the" otherwise.
- The class word is used as a singular noun phrase ("a red trousers enters"), so every class takes the
  same verbs and the vocabulary stays at 50 whitespace-separated words.
- Randomness: numpy PCG64 seeded from (seed, split, index); the planner, the sentences and the noise use
  separate child streams. x264 (-preset veryfast -crf 18, about 37 dB PSNR) runs single-threaded per
  video, so with the same ffmpeg build the files are byte-identical too, whatever --jobs is.
- Measured on the shared 2-core machine: 100 train videos with --jobs 2 in about 35 s (27 s of CPU);
  1000 train videos hold 5440 events of 1.5-6.0 s (mean 3.1 s).
"""
import argparse
import gzip
import json
import math
import multiprocessing as mp
import os
import struct
import subprocess
import sys
import time

import numpy as np

DATA_DIR = "/usr/share/datasets/fashion-mnist"
WIDTH = HEIGHT = 96
FPS = 10
CLASS_WORDS = ["t-shirt", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
               "ankle boot"]
COLOURS = [("white", (255, 255, 255)), ("red", (255, 48, 48)), ("green", (48, 224, 48)),
           ("blue", (64, 112, 255)), ("yellow", (255, 224, 32))]
KINDS = ("enter", "leave", "move", "appear", "disappear")
TRACK_FIELDS = ("class", "colour", "cx", "cy", "size", "alpha")
# split -> (IDX file prefix, first image, end image): splits never share item images
SPLITS = {"train": ("train", 0, 50000), "val": ("train", 50000, 60000), "test": ("t10k", 0, 10000)}
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}

MIN_EVENTS, MAX_EVENTS = 3, 8
MIN_SECONDS, MAX_SECONDS = 12.0, 40.0
MIN_LEN, MAX_LEN, MAX_FADE_LEN = 15, 60, 40  # event lengths in frames
GAP = 5  # frames an item stays still between two of its events
MIN_SPEED, MAX_SPEED = 6.0, 45.0  # px/s
MIN_MOVE, MAX_MOVE = 16.0, 64.0  # px along each moving axis
MAX_ITEMS_ON = 3
OVERLAP = 0.08
# how often each kind is tried first; moves fail more often (no room) and new items are easy to place,
# so these weights even out the kinds over a split
KIND_WEIGHT = {"enter": 0.55, "appear": 0.55, "leave": 1.4, "move": 1.8, "disappear": 1.4}

EDGES = ("left", "right", "top", "bottom")
EDGE_AT = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}
# (dx, dy) in image coordinates (y grows downwards) -> (plain words, place words)
DIRECTIONS = [((0, -1), "up", "top"), ((0, 1), "down", "bottom"), ((-1, 0), "left", "left"),
              ((1, 0), "right", "right"), ((-1, -1), "up and to the left", "top left"),
              ((1, -1), "up and to the right", "top right"), ((-1, 1), "down and to the left", "bottom left"),
              ((1, 1), "down and to the right", "bottom right")]
PLACES = [["in the top left corner", "at the top", "in the top right corner"],
          ["on the left", "in the middle", "on the right"],
          ["in the bottom left corner", "at the bottom", "in the bottom right corner"]]
TEMPLATES = {
    "enter": ["a {item} enters from the {edge}", "a {item} slides in from the {edge} side",
              "a {item} comes in from the {edge}"],
    "leave": ["the {item} leaves to the {edge}", "the {item} exits {edge_at}",
              "the {item} slides out to the {edge}"],
    "move": ["the {item} moves {dir}", "the {item} drifts towards the {dir_place}",
             "the {item} travels towards the {dir_place}"],
    "appear": ["a {item} appears {place}", "a {item} comes into view {place}", "a {item} shows up {place}"],
    "disappear": ["the {item} fades away", "the {item} disappears", "the {item} fades out"],
}

_DATA = {}  # IDX prefix -> (images [n, 28, 28] uint8, labels [n] uint8), loaded once per process


def video_id(split, index):
    """The file stem of a video, and its key in the ActivityNet reference: "test_00007"."""
    if split not in SPLITS:
        raise ValueError(f"moving_fashion: unknown split {split!r} (train, val, test)")
    return f"{split}_{int(index):05d}"


def _read_idx(path):
    if not os.path.exists(path):
        raise ValueError(f"{path}: not found (Debian package dataset-fashion-mnist, or --data DIR)")
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{path}: too short for an IDX header")
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim not in (1, 3) or len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic 0x{magic:08x})")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {int(np.prod(dims))} bytes of data, found {body.size}")
    return body.reshape(dims)


def load_split(split, data_dir=DATA_DIR):
    """(images, labels, first, end) of the split's item pool; images are indexed by their IDX index."""
    prefix, lo, hi = SPLITS[split]
    key = (data_dir, prefix)
    if key not in _DATA:
        images = _read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
        labels = _read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
        if images.shape[1:] != (28, 28) or len(labels) != len(images) or len(images) < hi:
            raise ValueError(f"{data_dir}: {prefix} files are not Fashion-MNIST ({images.shape}, {len(labels)})")
        _DATA[key] = (images, labels)
    images, labels = _DATA[key]
    return images, labels, lo, hi


def _resize(img, size):
    """Bilinear resize of a square grey image, pixel centres aligned (no antialiasing: 0.8x at the least)."""
    n = img.shape[0]
    src = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    w = src - i0
    a = img.astype(np.float64)
    rows = a[i0] * (1 - w)[:, None] + a[i1] * w[:, None]
    return rows[:, i0] * (1 - w)[None, :] + rows[:, i1] * w[None, :]


class _Item:
    def __init__(self, image_index, cls, colour, scale, image, n_frames):
        self.image_index, self.cls, self.colour, self.scale = image_index, cls, colour, scale
        self.size = int(round(28 * scale))
        self.alpha_map = _resize(image, self.size) / 255.0  # alpha = intensity
        ys, xs = np.nonzero(self.alpha_map > 0.1)
        # visible-pixel box (x0, y0, x1, y1) relative to the item's centre, 1 px margin, for the keep-apart rule
        h = self.size / 2
        if len(xs):
            self.box = (xs.min() - h - 1, ys.min() - h - 1, xs.max() + 1 - h + 1, ys.max() + 1 - h + 1)
        else:
            self.box = (-h, -h, h, h)
        self.area = (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])
        self.x = np.zeros(n_frames)
        self.y = np.zeros(n_frames)
        self.f = np.zeros(n_frames)  # fade alpha; 0 while the item is not in the video
        self.state = "new"  # new -> on -> gone
        self.free_from = 0  # first frame a new event of this item may start

    def info(self):
        return {"image_index": int(self.image_index), "class": int(self.cls), "word": CLASS_WORDS[self.cls],
                "colour": int(self.colour), "colour_name": COLOURS[self.colour][0], "scale": float(self.scale),
                "size": self.size, "box": [float(b) for b in self.box]}


def _ease(u, smooth):
    return 0.5 - 0.5 * np.cos(np.pi * u) if smooth else u


def _length_range(dist, start, n_frames, lo=MIN_LEN, hi=MAX_LEN):
    """Frame-length bounds for travelling dist px at MIN_SPEED..MAX_SPEED, inside the video."""
    lo = max(lo, math.ceil(dist / MAX_SPEED * FPS))
    hi = min(hi, math.floor(dist / MIN_SPEED * FPS), n_frames - 1 - start)
    return lo, hi


class _Planner:
    def __init__(self, rng, n_frames, images, labels, lo, hi):
        self.rng, self.n, self.images, self.labels, self.lo, self.hi = rng, n_frames, images, labels, lo, hi
        self.items, self.events = [], []

    def new_item(self):
        used = {(it.cls, it.colour) for it in self.items}
        while True:
            idx = int(self.rng.integers(self.lo, self.hi))
            cls, colour = int(self.labels[idx]), int(self.rng.integers(len(COLOURS)))
            if (cls, colour) not in used:
                return _Item(idx, cls, colour, float(self.rng.uniform(0.8, 1.5)), self.images[idx], self.n)

    def fits(self, item, s, x, y, f):
        """True if item, following x, y, f from frame s to the end, keeps apart from every other item."""
        a = item.box
        for o in self.items:
            if o is item:
                continue
            both = (f > 0) & (o.f[s:] > 0)
            if not both.any():
                continue
            b = o.box
            ox, oy = o.x[s:], o.y[s:]
            ix = np.minimum(np.minimum(x + a[2], ox + b[2]), WIDTH) - np.maximum(np.maximum(x + a[0], ox + b[0]), 0)
            iy = np.minimum(np.minimum(y + a[3], oy + b[3]), HEIGHT) - np.maximum(np.maximum(y + a[1], oy + b[1]), 0)
            inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
            if (inter[both] > OVERLAP * min(item.area, o.area)).any():
                return False
        return True

    def others_on(self, item, s):
        """Most other items on the canvas at any frame from s on."""
        on = [o.f[s:] > 0 for o in self.items if o is not item]
        return int(np.sum(on, axis=0).max()) if on else 0

    def path(self, s, length, p0, p1, f0, f1):
        """Positions and fades from frame s to the end: the event's curve, then still."""
        smooth = bool(self.rng.integers(2))
        u = _ease(np.arange(length + 1) / length, smooth)
        rest = self.n - s - length - 1
        seg = [np.concatenate([p0[k] + (p1[k] - p0[k]) * u, np.full(rest, float(p1[k]))]) for k in range(2)]
        fade = np.concatenate([f0 + (f1 - f0) * u, np.full(rest, float(f1))])
        for arr, end in ((seg[0], p1[0]), (seg[1], p1[1]), (fade, f1)):
            arr[length] = end  # exact, so "fully outside" at the end frame holds without rounding slack
        return seg[0], seg[1], fade, smooth

    def try_event(self, item, kind, s):
        """Draws the parameters of one event of item at frame s; returns the event or None if no try fits."""
        rng, h = self.rng, item.size / 2
        for _ in range(12):
            detail = {}
            if kind in ("enter", "appear") and self.others_on(item, s) >= MAX_ITEMS_ON:
                return None
            if kind == "enter":
                edge = EDGES[rng.integers(4)]
                x1, y1 = rng.uniform(h, WIDTH - h), rng.uniform(h, HEIGHT - h)
                x0, y0 = {"left": (-h, y1), "right": (WIDTH + h, y1), "top": (x1, -h), "bottom": (x1, HEIGHT + h)}[edge]
                dist = abs(x1 - x0) + abs(y1 - y0)
                f0 = f1 = 1.0
                detail["edge"] = edge
            elif kind == "leave":
                edge = EDGES[rng.integers(4)]
                x0, y0 = item.x[s], item.y[s]
                x1, y1 = {"left": (-h, y0), "right": (WIDTH + h, y0), "top": (x0, -h), "bottom": (x0, HEIGHT + h)}[edge]
                dist = abs(x1 - x0) + abs(y1 - y0)
                f0 = f1 = 1.0
                detail["edge"] = edge
            elif kind == "move":
                x0, y0 = item.x[s], item.y[s]
                (dx, dy), words, place = DIRECTIONS[rng.integers(len(DIRECTIONS))]
                room = [(WIDTH - h - x0) if dx > 0 else (x0 - h) if dx < 0 else math.inf,
                        (HEIGHT - h - y0) if dy > 0 else (y0 - h) if dy < 0 else math.inf]
                most = min(min(room), MAX_MOVE)
                if most < MIN_MOVE:
                    continue
                d = rng.uniform(MIN_MOVE, most)
                x1, y1 = x0 + dx * d, y0 + dy * d
                dist = math.hypot(x1 - x0, y1 - y0)
                f0 = f1 = 1.0
                detail.update(direction=words, direction_place=place, dx=dx, dy=dy)
            elif kind == "appear":
                r, c = int(rng.integers(3)), int(rng.integers(3))
                cell = WIDTH / 3
                x0 = x1 = float(np.clip((c + 0.5) * cell + rng.uniform(-4, 4), h, WIDTH - h))
                y0 = y1 = float(np.clip((r + 0.5) * cell + rng.uniform(-4, 4), h, HEIGHT - h))
                assert int(x1 // cell) == c and int(y1 // cell) == r
                dist, f0, f1 = None, 0.0, 1.0
                detail.update(place=PLACES[r][c], row=r, col=c)
            else:  # disappear
                x0 = x1 = item.x[s]
                y0 = y1 = item.y[s]
                dist, f0, f1 = None, 1.0, 0.0
            if dist is None:
                lo, hi = MIN_LEN, min(MAX_FADE_LEN, self.n - 1 - s)
            else:
                lo, hi = _length_range(dist, s, self.n)
            if lo > hi:
                continue
            length = int(rng.integers(lo, hi + 1))
            x, y, f, smooth = self.path(s, length, (x0, y0), (x1, y1), f0, f1)
            if kind == "leave":  # the item is out of the video once fully outside
                f[length + 1:] = 0.0
            if not self.fits(item, s, x, y, f):
                continue
            item.x[s:], item.y[s:], item.f[s:] = x, y, f
            if item.state == "new":  # a still, invisible position before the item's first event
                item.x[:s], item.y[:s] = x[0], y[0]
            item.state = "gone" if kind in ("leave", "disappear") else "on"
            item.free_from = s + length + GAP
            return dict(kind=kind, start_frame=s, end_frame=s + length, smooth=smooth, **detail)
        return None

    def place_initial(self, item):
        h = item.size / 2
        for _ in range(30):
            x, y = self.rng.uniform(h, WIDTH - h), self.rng.uniform(h, HEIGHT - h)
            xs, ys, f = np.full(self.n, x), np.full(self.n, y), np.ones(self.n)
            if self.fits(item, 0, xs, ys, f):
                item.x[:], item.y[:], item.f[:] = xs, ys, f
                item.state = "on"
                return True
        return False

    def plan(self, n_events, n_initial):
        for _ in range(n_initial):
            item = self.new_item()
            if self.place_initial(item):
                self.items.append(item)
        last = self.n - 1 - MIN_LEN
        starts = None
        for _ in range(100):
            cand = np.sort(self.rng.choice(last + 1, size=n_events, replace=False))
            if (np.diff(cand) >= GAP).all():
                starts = cand
                break
        if starts is None:
            return
        for s in starts.tolist():
            # every (item, kind) that the item's state allows
            options = []
            free = [it for it in self.items if it.state == "on" and it.free_from <= s]
            for kind in ("leave", "move", "disappear"):
                options += [(it, kind, KIND_WEIGHT[kind] / len(free)) for it in free]
            if sum(o.state == "on" for o in self.items) < MAX_ITEMS_ON:
                options += [(None, kind, KIND_WEIGHT[kind]) for kind in ("enter", "appear")]
            if not options:
                continue
            w = np.array([o[2] for o in options])
            order = self.rng.choice(len(options), size=len(options), replace=False, p=w / w.sum())
            for k in order.tolist():
                item, kind, _ = options[k]
                fresh = item is None
                if fresh:
                    item = self.new_item()
                    self.items.append(item)
                ev = self.try_event(item, kind, s)
                if ev is not None:
                    ev["item"] = self.items.index(item)
                    self.events.append(ev)
                    break
                if fresh:
                    self.items.pop()


def _sentence(rng, item, ev):
    words = dict(item=f"{COLOURS[item.colour][0]} {CLASS_WORDS[item.cls]}", edge=ev.get("edge"),
                 edge_at=EDGE_AT.get(ev.get("edge")), dir=ev.get("direction"), dir_place=ev.get("direction_place"),
                 place=ev.get("place"))
    templates = TEMPLATES[ev["kind"]]
    return templates[int(rng.integers(len(templates)))].format(**words)


def _render(items, n_frames, rng):
    """Frames [n, H, W, 3] uint8: grey noise background, items composited in order with sub-pixel placement."""
    static = rng.standard_normal((HEIGHT, WIDTH), dtype=np.float32)
    grey = 8.0 + 3.0 * static + 2.0 * rng.standard_normal((n_frames, HEIGHT, WIDTH), dtype=np.float32)
    video = np.empty((n_frames, HEIGHT, WIDTH, 3), np.float32)
    video[:] = grey[:, :, :, None]
    sprites = []
    for it in items:
        # the item's alpha on a (size+1)^2 grid, and its copies shifted by one pixel right, down and both:
        # a bilinear blend of the four places the item at any sub-pixel offset
        a = np.zeros((it.size + 1, it.size + 1), np.float32)
        a[:it.size, :it.size] = it.alpha_map
        right, down = np.roll(a, 1, axis=1), np.roll(a, 1, axis=0)
        sprites.append((a, right, down, np.roll(down, 1, axis=1), np.array(COLOURS[it.colour][1], np.float32)))
    for k in range(n_frames):
        canvas = video[k]
        for it, (a, right, down, both, colour) in zip(items, sprites):
            fade = it.f[k]
            if fade <= 0:
                continue
            x0, y0 = it.x[k] - it.size / 2, it.y[k] - it.size / 2
            ix, iy = math.floor(x0), math.floor(y0)
            fx, fy = x0 - ix, y0 - iy
            cx0, cy0 = max(ix, 0), max(iy, 0)
            cx1, cy1 = min(ix + it.size + 1, WIDTH), min(iy + it.size + 1, HEIGHT)
            if cx0 >= cx1 or cy0 >= cy1:
                continue
            w = np.float32([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy]) * np.float32(fade)
            win = (slice(cy0 - iy, cy1 - iy), slice(cx0 - ix, cx1 - ix))
            al = (w[0] * a[win] + w[1] * right[win] + w[2] * down[win] + w[3] * both[win])[:, :, None]
            region = canvas[cy0:cy1, cx0:cx1]
            region *= 1 - al
            region += colour * al
    np.rint(video, out=video)
    return np.clip(video, 0, 255).astype(np.uint8)


def make_video(split, index, seed=0, data_dir=DATA_DIR, render=True):
    """One Moving Fashion video, deterministic in (seed, split, index). render=False skips the frames
    (planning alone, for statistics)."""
    images, labels, lo, hi = load_split(split, data_dir)
    root = np.random.SeedSequence([int(seed), _SPLIT_CODE[split], int(index)])
    plan_ss, text_ss, noise_ss = root.spawn(3)
    rng = np.random.Generator(np.random.PCG64(plan_ss))
    while True:
        n_events = int(rng.integers(MIN_EVENTS, MAX_EVENTS + 1))
        seconds = float(np.clip(rng.uniform(3.5 * n_events, 5.5 * n_events), MIN_SECONDS, MAX_SECONDS))
        n_frames = int(round(seconds * FPS))
        n_initial = int(rng.choice(3, p=[0.3, 0.45, 0.25]))
        planner = _Planner(rng, n_frames, images, labels, lo, hi)
        planner.plan(n_events, n_initial)
        if len(planner.events) >= MIN_EVENTS:
            break
    items = planner.items
    text_rng = np.random.Generator(np.random.PCG64(text_ss))
    events = []
    for ev in sorted(planner.events, key=lambda e: (e["start_frame"], e["end_frame"])):
        ev["start"] = round(ev["start_frame"] / FPS, 1)
        ev["end"] = round(ev["end_frame"] / FPS, 1)
        ev["sentence"] = _sentence(text_rng, items[ev["item"]], ev)
        events.append(ev)
    tracks = np.zeros((n_frames, len(items), len(TRACK_FIELDS)), np.float32)
    for j, it in enumerate(items):
        h = it.size / 2
        on_canvas = (it.x + h > 0) & (it.x - h < WIDTH) & (it.y + h > 0) & (it.y - h < HEIGHT)
        tracks[:, j, 0], tracks[:, j, 1] = it.cls, it.colour
        tracks[:, j, 2], tracks[:, j, 3], tracks[:, j, 4] = it.x, it.y, it.size
        tracks[:, j, 5] = np.where(on_canvas, it.f, 0.0)
    video = {"video_id": video_id(split, index), "split": split, "index": int(index), "seed": int(seed),
             "fps": FPS, "width": WIDTH, "height": HEIGHT, "n_frames": n_frames, "duration": n_frames / FPS,
             "events": events, "items": [it.info() for it in items], "tracks": tracks,
             "track_fields": TRACK_FIELDS}
    if render:
        video["frames"] = _render(items, n_frames, np.random.Generator(np.random.PCG64(noise_ss)))
    return video


def reference_entry(video):
    """The video's entry in an ActivityNet Captions reference file (events are already sorted by start)."""
    return {"duration": video["duration"], "timestamps": [[e["start"], e["end"]] for e in video["events"]],
            "sentences": [e["sentence"] for e in video["events"]]}


def encode_mp4(frames, path, fps=FPS, crf=18):
    """H.264 yuv420p MP4 through the ffmpeg binary; written to a temporary name, renamed when complete."""
    n, h, w, _ = frames.shape
    tmp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.{os.getpid()}.tmp")
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", "-an", "-c:v", "libx264", "-preset", "veryfast",
           "-crf", str(crf), "-threads", "1", "-pix_fmt", "yuv420p", "-colorspace", "smpte170m",
           "-color_primaries", "smpte170m", "-color_trc", "smpte170m", "-color_range", "tv",
           "-movflags", "+faststart", "-f", "mp4", tmp]
    try:
        res = subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(), stderr=subprocess.PIPE)
        if res.returncode != 0:
            raise RuntimeError(f"{path}: ffmpeg failed: {res.stderr.decode(errors='replace').strip()}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json_atomic(reference, path):
    """An ActivityNet reference, one video a line; written to a temporary name, renamed when complete."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write("{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in reference.items()) + "\n}\n")
    os.replace(tmp, path)


def _job(args):
    split, index, seed, out, data_dir = args
    video = make_video(split, index, seed, data_dir)
    encode_mp4(video["frames"], os.path.join(out, video["video_id"] + ".mp4"))
    return video["video_id"], reference_entry(video)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=sorted(SPLITS), default="test")
    ap.add_argument("--count", type=int, help="number of videos")
    ap.add_argument("--start", type=int, default=0, help="first video index")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", help="output folder: <video id>.mp4 files and <split>.json")
    ap.add_argument("--sample", metavar="PATH.mp4", help="write one video (--index) and PATH.json")
    ap.add_argument("--index", type=int, default=0, help="video index for --sample")
    ap.add_argument("--data", default=DATA_DIR, help="folder of the Fashion-MNIST IDX .gz files")
    a = ap.parse_args(argv)
    try:
        if a.sample:
            video = make_video(a.split, a.index, a.seed, a.data)
            encode_mp4(video["frames"], a.sample)
            write_json_atomic({video["video_id"]: reference_entry(video)}, os.path.splitext(a.sample)[0] + ".json")
            print(f"{a.sample}: {video['video_id']}, {video['duration']:.1f} s, {len(video['events'])} events",
                  file=sys.stderr)
            return 0
        if a.count is None or a.out is None or a.count < 0 or a.start < 0 or a.jobs < 1:
            ap.error("--count N (>= 0), --out DIR and --jobs >= 1 are needed (or --sample PATH.mp4)")
        load_split(a.split, a.data)  # fail early, and let forked workers share the arrays
        os.makedirs(a.out, exist_ok=True)
        jobs = [(a.split, i, a.seed, a.out, a.data) for i in range(a.start, a.start + a.count)]
        reference, t0 = {}, time.time()
        with mp.get_context("fork").Pool(a.jobs) as pool:
            for done, (vid, entry) in enumerate(pool.imap_unordered(_job, jobs), 1):
                reference[vid] = entry
                if done % 50 == 0 or done == len(jobs):
                    print(f"moving_fashion: {done}/{len(jobs)} {a.split} videos, {time.time() - t0:.1f} s",
                          file=sys.stderr)
        path = os.path.join(a.out, f"{a.split}.json")
        write_json_atomic(dict(sorted(reference.items())), path)
        print(f"moving_fashion: wrote {path}", file=sys.stderr)
        return 0
    except (OSError, ValueError, RuntimeError) as e:
        print(f"moving_fashion: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
