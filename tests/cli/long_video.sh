#!/bin/sh
# A 20-minute video through `vidcap` (the captioner's overlapping windows, merged): events over the whole
# length, in time order, no duplicates from the overlaps (no repeated event, and no denser events where
# windows overlap), and the events found as well at the end as at the start (recall at tIoU 0.5 against
# the joined reference, per first and last 5 minutes).
# usage: long_video.sh VIDCAP SRCDIR WORKDIR BUNDLE
set -u
vidcap=$1 src=$2 work=$3 bundle=$4
[ -f "$bundle" ] || { echo "SKIP: no bundle at $bundle"; exit 77; }
mkdir -p "$work"
[ -f "$work/long.mp4" ] || /usr/bin/python3 "$src/tools/make_long_video.py" --minutes 20 --out "$work/long.mp4" \
    --work "$work/parts" || { echo "FAIL make_long_video.py"; exit 1; }
"$vidcap" -np -m "$bundle" -oj -of "$work/out" "$work/long.mp4" >"$work/stdout" 2>"$work/err" ||
    { echo "FAIL vidcap: $(cat "$work/err")"; exit 1; }
/usr/bin/python3 - "$work/out.json" "$work/long.json" "$bundle" <<'EOF'
import json, struct, sys
res = json.load(open(sys.argv[1]))["results"]["long"]
ref = json.load(open(sys.argv[2]))["long"]
with open(sys.argv[3], "rb") as f:
    meta = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))["__metadata__"]
# Within a window NMS keeps pairs up to nms_tiou (measured on the float proposals; the written, quantised
# times can overlap a little more). The same event found by two overlapping windows would come out twice
# at a near-identical span: that is what the merge must prevent.
limit = max(json.loads(meta["captioner.vidcap.inference"])["nms_tiou"] + 0.15, 0.8)
fail = 0
def check(cond, what):
    global fail
    print(("ok   " if cond else "FAIL ") + what)
    fail |= not cond
def tiou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / (a[1] - a[0] + b[1] - b[0] - inter)
starts = [r["timestamp"][0] for r in res]
check(starts == sorted(starts), f"{len(res)} events in time order")
check(res and res[-1]["timestamp"][1] > ref["duration"] - 120, "events reach the last two minutes")
dups = [(a, b) for i, a in enumerate(res) for b in res[i + 1:i + 40]
        if a["sentence"] == b["sentence"] and tiou(a["timestamp"], b["timestamp"]) > limit]
check(not dups, f"no event twice (same sentence, tIoU > {limit:.2f}: {len(dups)})")
def recall(t0, t1):
    gt = [g for g in ref["timestamps"] if t0 <= g[0] < t1]
    hit = sum(any(tiou(g, r["timestamp"]) >= 0.5 for r in res) for g in gt)
    return hit / max(1, len(gt))
# the overlaps of neighbouring windows (the last quarter of each) must not hold more events than elsewhere
cfg = json.loads(meta["captioner.vidcap.config"])
W = cfg["window"] / cfg["fps"]
S = W - (cfg["window"] // 4) / cfg["fps"]
mids = [(r["timestamp"][0] + r["timestamp"][1]) / 2 for r in res]
n_zones = int(ref["duration"] // S)
in_ov = sum(1 for m in mids if m >= S and m % S < W - S)
ov_len = n_zones * (W - S)
ratio = (in_ov / ov_len) / max(1e-9, (len(mids) - in_ov) / (ref["duration"] - ov_len))
check(0.7 <= ratio <= 1.25, f"events per second in window overlaps / elsewhere = {ratio:.2f}")
first, last = recall(0, 300), recall(ref["duration"] - 300, ref["duration"])
check(first >= 0.5 and last >= 0.5 and abs(first - last) <= 0.25,
      f"recall@0.5 first 5 min {first:.2f}, last 5 min {last:.2f}")
sys.exit(fail)
EOF
