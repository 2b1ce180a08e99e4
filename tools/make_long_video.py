"""Joins generated Moving Fashion videos into one long video (FFmpeg's concat demuxer, no re-encoding) and
writes its ActivityNet reference: each part's events shifted by the parts before it. Used by the long-video
test (windows of the captioner merged over 20 minutes) and the memory benchmark.

    /usr/bin/python3 tools/make_long_video.py --minutes 20 --out long.mp4 [--seed 7] [--work DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moving_fashion as mf  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--split", default="test")
    ap.add_argument("--work", default=None, help="where the parts go (default: a temporary folder)")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp()
    os.makedirs(work, exist_ok=True)
    total, parts, ref = 0.0, [], {"timestamps": [], "sentences": []}
    i = 0
    while total < a.minutes * 60:
        v = mf.make_video(a.split, i, a.seed)
        path = os.path.join(work, f"part_{i:04d}.mp4")
        if not os.path.exists(path):
            mf.encode_mp4(v["frames"], path)
        for e in v["events"]:
            ref["timestamps"].append([round(total + e["start"], 3), round(total + e["end"], 3)])
            ref["sentences"].append(e["sentence"])
        parts.append(path)
        total += v["duration"]
        i += 1
    listing = os.path.join(work, "parts.txt")
    with open(listing, "w") as f:
        f.writelines(f"file '{os.path.abspath(p)}'\n" for p in parts)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", listing, "-c", "copy",
                    a.out], check=True)
    ref["duration"] = round(total, 3)
    stem = os.path.splitext(os.path.basename(a.out))[0]
    with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
        json.dump({stem: ref}, f)
    print(f"{a.out}: {len(parts)} parts, {total:.1f} s, {len(ref['sentences'])} events", file=sys.stderr)


if __name__ == "__main__":
    main()
