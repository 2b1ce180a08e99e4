"""Synthetic frame features with planted events, for the captioner's smoke test (specs/masked_transformer.md
5.6): catches anchor, target, mask and decoding bugs before real data is spent.

    /usr/bin/python3 tools/synthetic_events.py --out /tmp/syn --split train --count 400 --d-in 64 --seed 0
        writes /tmp/syn/train/<video id>.safetensors (the contract's features files) and /tmp/syn/train.json

World: videos of 12-40 s at 4 fps with 3-8 events of 1.5-6 s that may overlap. Each event has a colour, an
item and an action; inside the event every feature row gets a constant offset, the sum of one fixed random
direction per attribute (the same world for every split and seed), on top of a per-video static vector and
per-step noise. The sentence is one template, "the <colour> <item> <action>", so a caption is right exactly
when the model read all three attributes from the masked frames.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

FPS = 4
COLOURS = ["white", "red", "green", "blue", "yellow"]
ITEMS = ["t-shirt", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
ACTIONS = ["enters from the left", "leaves to the right", "moves up", "appears in the middle", "fades away"]
MIN_EVENTS, MAX_EVENTS = 3, 8
MIN_SECONDS, MAX_SECONDS = 12.0, 40.0
MIN_EVENT, MAX_EVENT = 1.5, 6.0
SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
WORLD_SEED = 20180601
NOISE, STATIC, AMPLITUDE = 0.5, 0.5, 1.0


def world(d_in):
    """One unit-variance direction per attribute value, shared by all splits."""
    rng = np.random.default_rng(WORLD_SEED)
    return {name: rng.standard_normal((len(vals), d_in)).astype(np.float32)
            for name, vals in (("colour", COLOURS), ("item", ITEMS), ("action", ACTIONS))}


def sentence(colour, item, action):
    return f"the {COLOURS[colour]} {ITEMS[item]} {ACTIONS[action]}"


def make_video(split, index, d_in, seed=0, dirs=None):
    """Returns (features [L, d_in] float32, times [L], duration, events [(start, end, sentence)])."""
    dirs = dirs if dirs is not None else world(d_in)
    rng = np.random.default_rng([seed, SPLIT_CODE[split], index])
    n_events = int(rng.integers(MIN_EVENTS, MAX_EVENTS + 1))
    duration = round(float(np.clip(rng.uniform(3.5 * n_events, 5.5 * n_events), MIN_SECONDS, MAX_SECONDS)), 1)
    L = int(round(duration * FPS))
    times = np.arange(L, dtype=np.float64) / FPS
    x = (STATIC * rng.standard_normal(d_in)[None, :] + NOISE * rng.standard_normal((L, d_in))).astype(np.float32)
    events = []
    for _ in range(n_events):
        length = round(float(rng.uniform(MIN_EVENT, MAX_EVENT)), 1)
        start = round(float(rng.uniform(0.0, duration - length)), 1)
        c, i, a = int(rng.integers(len(COLOURS))), int(rng.integers(len(ITEMS))), int(rng.integers(len(ACTIONS)))
        inside = (times >= start) & (times < start + length)
        x[inside] += AMPLITUDE * (dirs["colour"][c] + dirs["item"][i] + dirs["action"][a]) / np.sqrt(3.0)
        events.append((start, round(start + length, 1), sentence(c, i, a)))
    events.sort()
    return x, times, duration, events


def video_id(split, index):
    return f"{split}_{index:05d}"


def write_split(out, split, count, d_in, seed=0):
    """Writes out/<split>/<id>.safetensors and out/<split>.json; returns the reference dict."""
    os.makedirs(os.path.join(out, split), exist_ok=True)
    dirs = world(d_in)
    ref = {}
    for index in range(count):
        x, times, duration, events = make_video(split, index, d_in, seed, dirs)
        vid = video_id(split, index)
        meta = {"vidcap.arch": "features",
                "vidcap.features": json.dumps({"fps": FPS, "duration": duration, "source": "synthetic_events"})}
        safetensors_io.save(os.path.join(out, split, vid + ".safetensors"), {"features": x, "times": times}, meta)
        ref[vid] = {"duration": duration, "timestamps": [[s, e] for s, e, _ in events],
                    "sentences": [t for _, _, t in events]}
    tmp = os.path.join(out, f"{split}.json.tmp")
    with open(tmp, "w") as f:
        json.dump(ref, f)
    os.replace(tmp, os.path.join(out, f"{split}.json"))
    return ref


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--split", choices=sorted(SPLIT_CODE), required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--d-in", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    ref = write_split(a.out, a.split, a.count, a.d_in, a.seed)
    n = sum(len(v["timestamps"]) for v in ref.values())
    print(f"{a.out}: {a.split}: {len(ref)} videos, {n} events, d_in {a.d_in}", file=sys.stderr)


if __name__ == "__main__":
    main()
