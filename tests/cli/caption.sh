#!/bin/sh
# CLI tests for dense captioning (`vidcap VIDEO...`): the stdout listing, the four output files and their
# names, batches with bad videos, unwritable outputs, a video shorter than one step, heatmaps, bad bundles.
# usage: caption.sh VIDCAP SRCDIR WORKDIR BUNDLE
set -u
vidcap=$1 src=$2 work=$3 bundle=$4
[ -f "$bundle" ] || { echo "SKIP: no bundle at $bundle"; exit 77; }
fail=0
rm -rf "$work"
mkdir -p "$work"
ok() { printf 'ok   %s\n' "$1"; }
bad() { printf 'FAIL %s\n' "$1"; fail=1; }
cp "$src/samples/moving-fashion.mp4" "$work/clip.mp4"

# 1. stdout: whisper-cli lines, at least one event, in time order, nothing else on stdout
"$vidcap" -np -m "$bundle" "$work/clip.mp4" >"$work/stdout" 2>"$work/err"
rc=$?
[ "$rc" -eq 0 ] && ok "exit 0" || bad "exit $rc: $(cat "$work/err")"
n=$(wc -l <"$work/stdout")
[ "$n" -ge 1 ] && ok "$n events" || bad "no events"
grep -vqE '^\[[0-9]{2}:[0-5][0-9]:[0-5][0-9]\.[0-9]{3} --> [0-9]{2}:[0-5][0-9]:[0-5][0-9]\.[0-9]{3}\]  [a-z]' "$work/stdout" &&
    bad "a line is not '[HH:MM:SS.mmm --> HH:MM:SS.mmm]  sentence': $(cat "$work/stdout")" || ok "line format"
cut -c2-13 "$work/stdout" | sort -c 2>/dev/null && ok "time order" || bad "events not in time order"
[ ! -s "$work/err" ] && ok "-np: nothing on stderr" || bad "-np stderr: $(cat "$work/err")"

# 2. the four files beside the input (input stem, extension replaced), the same events as stdout
"$vidcap" -np -m "$bundle" -otxt -osrt -ovtt -oj "$work/clip.mp4" >/dev/null 2>"$work/err" || bad "-o* run: $(cat "$work/err")"
for e in txt srt vtt json; do [ -f "$work/clip.$e" ] && ok "wrote clip.$e" || bad "no clip.$e"; done
[ ! -e "$work/clip.mp4.srt" ] || bad "clip.mp4.srt written"
[ "$(wc -l <"$work/clip.txt")" -eq "$n" ] && ok "txt: one line per event" || bad "txt lines"
[ "$(head -1 "$work/clip.vtt")" = "WEBVTT" ] && ok "vtt header" || bad "vtt header"
/usr/bin/python3 - "$work" "$n" <<'EOF' && ok "srt, vtt and json agree with stdout" || bad "srt/vtt/json content"
import json, re, sys
work, n = sys.argv[1], int(sys.argv[2])
lines = open(f"{work}/stdout").read().splitlines()
events = [(m.group(1), m.group(2), m.group(3)) for m in
          (re.match(r"\[(\S+) --> (\S+)\]  (.*)", l) for l in lines)]
srt = open(f"{work}/clip.srt").read().strip().split("\n\n")
assert len(srt) == n
for i, (block, (a, b, s)) in enumerate(zip(srt, events)):
    idx, times, text = block.split("\n")
    assert idx == str(i + 1) and times == f"{a.replace('.', ',')} --> {b.replace('.', ',')}" and text == s, block
j = json.load(open(f"{work}/clip.json"))
assert set(j) >= {"version", "results", "external_data"}, j.keys()
res = j["results"]["clip"]
assert len(res) == n
def sec(t):
    h, m, s = t.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)
for r, (a, b, s) in zip(res, events):
    assert r["sentence"] == s and abs(r["timestamp"][0] - sec(a)) < 1e-3 and abs(r["timestamp"][1] - sec(b)) < 1e-3, r
EOF

# 3. -of BASE; an unwritable output: one error line, exit 10, no file and no temporary left behind
"$vidcap" -np -m "$bundle" -osrt -of "$work/named" "$work/clip.mp4" >/dev/null 2>&1
[ -f "$work/named.srt" ] && ok "-of BASE" || bad "-of BASE: no named.srt"
"$vidcap" -np -m "$bundle" -osrt -of "$work/no/such/dir/x" "$work/clip.mp4" >/dev/null 2>"$work/err"
rc=$?
[ "$rc" -eq 10 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -q "no/such/dir/x.srt" "$work/err" &&
    ok "unwritable output: one line, exit 10" || bad "unwritable output: rc $rc, $(cat "$work/err")"
[ ! -e "$work/no" ] && ok "nothing created" || bad "created $(find "$work/no")"

# 4. a batch with bad videos: one line each, the good one still captioned, exit 10
printf 'not a video\n' >"$work/notes.mp4"
"$vidcap" -np -m "$bundle" "$work/notes.mp4" "$work/missing.mp4" "$src/tests/assets/video/audio.m4a" "$work/clip.mp4" \
    >"$work/stdout2" 2>"$work/err"
rc=$?
[ "$rc" -eq 10 ] && ok "batch exits 10" || bad "batch exit $rc"
[ "$(wc -l <"$work/err")" -eq 3 ] && ok "three error lines" || bad "errors: $(cat "$work/err")"
cmp -s "$work/stdout" "$work/stdout2" && ok "the good video's events unchanged" || bad "batch stdout differs"

# 5. a video shorter than one sampling step: no events, clean exit
ffmpeg -v error -y -i "$work/clip.mp4" -frames:v 1 -c:v libx264 "$work/short.mp4"
"$vidcap" -np -m "$bundle" -oj "$work/short.mp4" >"$work/stdout3" 2>"$work/err"
rc=$?
[ "$rc" -eq 0 ] && [ ! -s "$work/stdout3" ] && ok "0.1 s video: no events, exit 0" || bad "short video: rc $rc $(cat "$work/err")"
grep -q '"short":[[:space:]]*\[\]' "$work/short.json" && ok "short.json has an empty list" || bad "short.json: $(cat "$work/short.json")"

# 6. --heatmaps: one PNG per event
mkdir -p "$work/heat"
"$vidcap" -np -m "$bundle" --heatmaps "$work/heat" "$work/clip.mp4" >/dev/null 2>"$work/err"
[ "$(ls "$work/heat" | grep -c '^clip\.event[0-9][0-9]\.png$')" -eq "$n" ] && ok "$n heatmap PNGs" ||
    bad "heatmaps: $(ls "$work/heat") $(cat "$work/err")"

# 7. bad bundles: one line naming the file and the reason, exit 3
/usr/bin/python3 "$src/tests/cli/make_bad_bundles.py" "$bundle" "$work/bundles" || bad "make_bad_bundles.py"
check_bundle() { # file expected-substring
    "$vidcap" -np -m "$1" "$work/clip.mp4" >/dev/null 2>"$work/err"
    rc=$?
    if [ "$rc" -eq 3 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -qF "$1" "$work/err" && grep -q "$2" "$work/err"; then
        ok "$(basename "$1"): $2"
    else
        bad "$(basename "$1"): rc $rc, $(cat "$work/err")"
    fi
}
check_bundle "$work/bundles/no-captioner.safetensors" "no captioner"
check_bundle "$work/bundles/no-filter.safetensors" "no token filter"
check_bundle "$work/bundles/vocab-mismatch.safetensors" "vocab"
check_bundle "$work/bundles/encoder-only.safetensors" "captioning needs a bundle"
exit $fail
