"""Checks tools/moving_fashion.py: determinism, split item pools, event timing and geometry against the
tracks, tracks against the pixels, sentences against their items, and one encoded MP4 via ffprobe.

usage: /usr/bin/python3 tests/moving_fashion/test_generator.py [source root]
"""
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(SRC, "tools"))
import moving_fashion as mf  # noqa: E402

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}", file=sys.stderr)


def labels_of(prefix):
    # read independently of the generator, so a wrong label mapping cannot check itself
    with gzip.open(os.path.join(mf.DATA_DIR, f"{prefix}-labels-idx1-ubyte.gz"), "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=8)


def frames_hash(v):
    return hashlib.sha256(v["frames"].tobytes()).hexdigest()


def inside(t):  # t: one track row (class, colour, cx, cy, size, alpha)
    h = t[4] / 2
    return t[2] - h >= -1e-3 and t[2] + h <= mf.WIDTH + 1e-3 and t[3] - h >= -1e-3 and t[3] + h <= mf.HEIGHT + 1e-3


def outside(t):
    h = t[4] / 2
    return (t[2] + h <= 1e-3 or t[2] - h >= mf.WIDTH - 1e-3 or t[3] + h <= 1e-3 or t[3] - h >= mf.HEIGHT - 1e-3)


def check_video(v, labels, lo, hi):
    vid, tr, ev, fps = v["video_id"], v["tracks"], v["events"], v["fps"]
    n, n_items = tr.shape[0], tr.shape[1]
    check(fps == 10 and abs(v["duration"] - n / fps) < 1e-9, f"{vid}: duration {v['duration']} != {n}/{fps}")
    check(12.0 <= v["duration"] <= 40.0, f"{vid}: duration {v['duration']} outside 12-40 s")
    check(3 <= len(ev) <= 8, f"{vid}: {len(ev)} events")
    check([e["start"] for e in ev] == sorted(e["start"] for e in ev), f"{vid}: events not sorted by start")
    check(int((tr[:, :, 5] > 0).sum(1).max()) <= 3, f"{vid}: more than 3 items visible")
    for j, it in enumerate(v["items"]):
        check(lo <= it["image_index"] < hi, f"{vid}: item image {it['image_index']} outside [{lo}, {hi})")
        check(labels[it["image_index"]] == it["class"] == tr[0, j, 0], f"{vid}: item {j} class != its label")
        check((tr[:, j, 0] == it["class"]).all() and (tr[:, j, 1] == it["colour"]).all(), f"{vid}: track ids")
    moving = np.zeros((n, n_items), bool)  # frame k -> k+1 belongs to an event of the item
    for e in ev:
        s, t, j, kind = round(e["start"] * fps), round(e["end"] * fps), e["item"], e["kind"]
        check(abs(e["start"] * fps - s) < 1e-6 and abs(e["end"] * fps - t) < 1e-6, f"{vid}: off-frame times")
        check(0 <= e["start"] < e["end"] <= v["duration"], f"{vid}: event {e['start']}-{e['end']} outside video")
        check(15 <= t - s <= 60, f"{vid}: event length {(t - s) / fps} s outside 1.5-6 s")
        moving[s:t, j] = True
        a, b = tr[s, j], tr[t, j]
        it = v["items"][j]
        item_words = f"{mf.COLOURS[it['colour']][0]} {mf.CLASS_WORDS[it['class']]}"
        sent = e["sentence"]
        check(sent == sent.lower() and not sent.endswith("."), f"{vid}: sentence case/period: {sent!r}")
        article = "a" if kind in ("enter", "appear") else "the"
        check(sent.startswith(f"{article} {item_words} "), f"{vid}: {sent!r} does not name {article} {item_words}")
        if kind == "enter":
            check(outside(a) and a[5] == 0 and inside(b) and b[5] == 1, f"{vid}: enter not outside->inside")
            check(e["edge"] in sent, f"{vid}: {sent!r} lacks edge {e['edge']}")
            side = {"left": a[2] < 0, "right": a[2] > mf.WIDTH, "top": a[3] < 0, "bottom": a[3] > mf.HEIGHT}
            check(side[e["edge"]], f"{vid}: enter from {e['edge']} starts elsewhere")
        elif kind == "leave":
            check(inside(a) and a[5] == 1 and outside(b) and b[5] == 0, f"{vid}: leave not inside->outside")
            check(e["edge"] in sent, f"{vid}: {sent!r} lacks edge {e['edge']}")
            check((tr[t:, j, 5] == 0).all(), f"{vid}: item visible after leaving")
        elif kind == "move":
            check(all(inside(tr[k, j]) for k in range(s, t + 1)), f"{vid}: move leaves the canvas")
            dx, dy = b[2] - a[2], b[3] - a[3]
            check(np.sign(round(dx, 3)) == e["dx"] and np.sign(round(dy, 3)) == e["dy"]
                  and max(abs(dx), abs(dy)) >= 16, f"{vid}: move ({dx:.1f}, {dy:.1f}) is not {e['direction']}")
            check(e["direction"] in sent or e["direction_place"] in sent, f"{vid}: {sent!r} lacks direction")
        elif kind in ("appear", "disappear"):
            check(a[2] == b[2] and a[3] == b[3] and inside(a), f"{vid}: {kind} moved the item")
            fades = (a[5], b[5]) == ((0, 1) if kind == "appear" else (1, 0))
            check(fades, f"{vid}: {kind} alpha {a[5]} -> {b[5]}")
            if kind == "appear":
                check(e["place"] in sent and int(b[2] // 32) == e["col"] and int(b[3] // 32) == e["row"],
                      f"{vid}: {sent!r} at ({b[2]:.0f}, {b[3]:.0f}) not {e['place']}")
    # items are still between their events
    step = np.abs(np.diff(tr[:, :, 2:4], axis=0)).max(axis=2) + np.abs(np.diff(tr[:, :, 5], axis=0))
    check(not (step[~moving[:-1]] > 0).any(), f"{vid}: an item moves or fades outside its events")
    # items keep apart: the boxes around their visible pixels (on the canvas) overlap by at most 8 %
    boxes = [it["box"] for it in v["items"]]
    area = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    for p in range(n_items):
        for q in range(p + 1, n_items):
            both = (tr[:, p, 5] > 0) & (tr[:, q, 5] > 0)
            if not both.any():
                continue
            inter = np.ones(n)
            for c, lim in ((0, mf.WIDTH), (1, mf.HEIGHT)):
                lo_ = np.maximum(np.maximum(tr[:, p, 2 + c] + boxes[p][c], tr[:, q, 2 + c] + boxes[q][c]), 0)
                hi_ = np.minimum(np.minimum(tr[:, p, 2 + c] + boxes[p][c + 2], tr[:, q, 2 + c] + boxes[q][c + 2]),
                                 lim)
                inter *= np.clip(hi_ - lo_, 0, None)
            worst = float((inter[both] / min(area[p], area[q])).max())
            check(worst <= 0.08 + 1e-3, f"{vid}: items {p} and {q} overlap by {worst:.0%}")


def check_pixels(v):
    """Bright pixels only where the tracks put a visible item; a fully visible item has bright pixels."""
    vid, tr, fr = v["video_id"], v["tracks"], v["frames"]
    for k in range(0, len(fr), 3):
        mask = np.zeros(fr.shape[1:3], bool)
        for t in tr[k]:
            if t[5] > 0:
                h = t[4] / 2
                x0, x1 = int(max(np.floor(t[2] - h), 0)), int(min(np.ceil(t[2] + h) + 1, mf.WIDTH))
                y0, y1 = int(max(np.floor(t[3] - h), 0)), int(min(np.ceil(t[3] + h) + 1, mf.HEIGHT))
                if t[5] == 1 and inside(t):
                    check(fr[k, y0:y1, x0:x1].max() > 100, f"{vid}: visible item missing at frame {k}")
                mask[max(y0, 0):y1, max(x0, 0):x1] = True
        stray = fr[k].max(axis=2)[~mask]
        if stray.size and stray.max() > 45:
            check(False, f"{vid}: bright pixel {stray.max()} outside every item at frame {k}")
            return


def main():
    labels = {"train": labels_of("train"), "test": labels_of("t10k")}
    labels["val"] = labels["train"]

    a, b = mf.make_video("train", 3, seed=0), mf.make_video("train", 3, seed=0)
    check(frames_hash(a) == frames_hash(b) and np.array_equal(a["tracks"], b["tracks"])
          and json.dumps(a["events"]) == json.dumps(b["events"]), "same (seed, split, index) differs")
    check(frames_hash(a) != frames_hash(mf.make_video("train", 4, seed=0)), "index 4 == index 3")
    check(frames_hash(a) != frames_hash(mf.make_video("train", 3, seed=1)), "seed 1 == seed 0")
    check(mf.video_id("test", 7) == "test_00007", "video_id")
    check(len(mf.CLASS_WORDS) == 10 and mf.CLASS_WORDS[0] == "t-shirt" and mf.CLASS_WORDS[9] == "ankle boot",
          "CLASS_WORDS")
    check_pixels(a)

    lens = []
    for split, (lo, hi) in (("train", (0, 50000)), ("val", (50000, 60000)), ("test", (0, 10000))):
        for i in range(30):
            v = mf.make_video(split, i, render=False)
            check_video(v, labels[split], lo, hi)
            lens += [e["end"] - e["start"] for e in v["events"]]
    check(max(lens) - min(lens) > 3.0, "event lengths barely vary")

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "mf")
        r = subprocess.run([sys.executable, os.path.join(SRC, "tools", "moving_fashion.py"), "--split", "val",
                            "--count", "1", "--start", "2", "--jobs", "1", "--out", out], capture_output=True)
        check(r.returncode == 0, f"CLI failed: {r.stderr.decode(errors='replace')}")
        v = mf.make_video("val", 2)
        check_pixels(v)
        with open(os.path.join(out, "val.json")) as f:
            ref = json.load(f)
        check(ref == {"val_00002": mf.reference_entry(v)}, "val.json differs from make_video")
        path = os.path.join(out, "val_00002.mp4")
        probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                                "stream=codec_name,pix_fmt,width,height,nb_read_frames,duration,avg_frame_rate",
                                "-of", "json", path], capture_output=True, text=True)
        check(probe.returncode == 0, f"ffprobe failed: {probe.stderr}")
        st = json.loads(probe.stdout)["streams"][0]
        n = v["frames"].shape[0]
        check(st["codec_name"] == "h264" and st["pix_fmt"] == "yuv420p" and (st["width"], st["height"]) == (96, 96),
              f"stream {st}")
        check(int(st["nb_read_frames"]) == n, f"{st['nb_read_frames']} frames decoded, {n} expected")
        check(abs(float(st["duration"]) - n / 10) < 1e-3 and st["avg_frame_rate"] == "10/1",
              f"duration {st['duration']} at {st['avg_frame_rate']}, {n / 10} expected")
        dec = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                             capture_output=True)
        got = np.frombuffer(dec.stdout, np.uint8)
        check(got.size == v["frames"].size, f"decoded {got.size} bytes, {v['frames'].size} expected")
        if got.size == v["frames"].size:
            mse = np.mean((got.astype(np.float64) - v["frames"].reshape(-1)) ** 2)
            psnr = 10 * np.log10(255 ** 2 / max(mse, 1e-12))
            check(psnr > 32, f"decoded video PSNR {psnr:.1f} dB against the generated frames")

    if failures:
        print(f"moving_fashion: {len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("moving_fashion: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
