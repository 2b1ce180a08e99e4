#!/bin/sh
# The dense captioner's quality on the held-out Moving Fashion test split, computed from vidcap's own output
# files: `vidcap -oj` on every test video, the per-video ActivityNet files merged into one submission, and
# the 2018 ActivityNet protocol (tools/densecap_eval.py) beside its two baselines: one whole-video event
# with the most frequent training sentence, and the captioner on the ground-truth segments (upper bound
# of the caption decoder alone, from the PyTorch reference on vidcap's features).
#   sh tools/eval_captioner.sh VIDCAP BUNDLE DATA_DIR [N_VIDEOS]
# DATA_DIR holds the generator's test_*.mp4, test.json and train.json (tools/moving_fashion.py).
set -eu
vidcap=$1 bundle=$2 data=$3 n=${4:-300}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ls "$data"/test_*.mp4 | sort | head -n "$n" >"$work/videos"
start=$(date +%s.%N)
# shellcheck disable=SC2046
"$vidcap" -np -m "$bundle" -oj $(sed "s|.*/\(.*\)\.mp4|-of $work/\1|" "$work/videos" | tr '\n' ' ') \
    $(cat "$work/videos") >/dev/null
end=$(date +%s.%N)
/usr/bin/python3 - "$work" "$data/test.json" <<'EOF'
import json, os, sys
work, ref = sys.argv[1], sys.argv[2]
results = {}
for name in sorted(os.listdir(work)):
    if name.endswith(".json"):
        results.update(json.load(open(os.path.join(work, name)))["results"])
refs = json.load(open(ref))
refs = {k: v for k, v in refs.items() if k in results}
json.dump(refs, open(os.path.join(work, "refs.json"), "w"))
json.dump({"version": "VERSION 1.0", "results": results, "external_data": {"used": False, "details": ""}},
          open(os.path.join(work, "submission.json"), "w"))
EOF
echo "== vidcap on $(wc -l <"$work/videos") test videos ($(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s)"
/usr/bin/python3 tools/densecap_eval.py -r "$work/refs.json" -s "$work/submission.json"
echo "== baseline: one whole-video event, the most frequent training sentence"
/usr/bin/python3 tools/densecap_eval.py --make-baseline whole-video --train-references "$data/train.json" \
    -r "$work/refs.json" -o "$work/whole.json"
/usr/bin/python3 tools/densecap_eval.py -r "$work/refs.json" -s "$work/whole.json"
echo "== upper bound: the captioner on the ground-truth segments"
mkdir -p "$work/feat"
# shellcheck disable=SC2046
"$vidcap" features -np -m "$bundle" $(cat "$work/videos") -o "$work/feat"
/usr/bin/python3 tools/train_captioner.py caption-gt --model "$bundle" --prefix captioner. \
    --features "$work/feat" --references "$work/refs.json" --out "$work/gt.json"
/usr/bin/python3 tools/densecap_eval.py -r "$work/refs.json" -s "$work/gt.json"
