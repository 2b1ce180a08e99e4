#!/bin/sh
# CLI tests for `vidcap features`: the feature file of the sample video, batches with bad videos, option
# errors. Any NesT works as a frame encoder; MODEL is the one under test.
# usage: features.sh VIDCAP SRCDIR WORKDIR MODEL
set -u
vidcap=$1 src=$2 work=$3 model=$4
fail=0
rm -rf "$work"
mkdir -p "$work"
ok() { printf 'ok   %s\n' "$1"; }
bad() { printf 'FAIL %s\n' "$1"; fail=1; }
sample=$src/samples/moving-fashion.mp4

# 1. the sample: one row per 1/4 s of its 31.9 s (the model's rate), times k/4, the top grid's width
"$vidcap" features -np -m "$model" --fps 4 "$sample" -o "$work/f.safetensors" 2>"$work/err" ||
    bad "features of the sample failed: $(cat "$work/err")"
/usr/bin/python3 - "$work/f.safetensors" "$model" <<'EOF' && ok "sample: 128 rows at k/4 s, grid x channels features" || bad "sample feature file"
import json, struct, sys
def header(p):
    with open(p, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))
h, m = header(sys.argv[1]), header(sys.argv[2])
cfg = json.loads(m["__metadata__"].get("vidcap.config") or m["__metadata__"]["encoder.vidcap.config"])
grid = cfg["img_size"] // cfg["patch_size"] // 2 ** (cfg["num_levels"] - 1)
meta = json.loads(h["__metadata__"]["vidcap.features"])
assert h["__metadata__"]["vidcap.arch"] == "features"
assert h["features"]["shape"] == [128, grid * grid * cfg["embed_dims"][-1]], h["features"]
assert h["times"]["shape"] == [128]
assert abs(meta["duration"] - 31.9) < 0.05 and meta["fps"] == 4, meta
import array
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    f.seek(8 + n + h["times"]["data_offsets"][0])
    t = array.array("f", f.read(4 * 128))
assert all(abs(t[k] - k / 4) < 1e-6 for k in range(128)), list(t[:5])
EOF

# 2. the same run twice gives the same bytes
"$vidcap" features -np -m "$model" --fps 4 "$sample" -o "$work/g.safetensors" 2>/dev/null
cmp -s "$work/f.safetensors" "$work/g.safetensors" && ok "deterministic" || bad "two runs differ"

# 3. a batch with bad videos: one line each naming the file, the good ones still written, exit 10,
#    no output (or temporary file) for the bad ones
mkdir -p "$work/batch" "$work/out"
printf 'not a video\n' >"$work/batch/notes.mp4"
: >"$work/batch/empty.mp4"
head -c 3000 "$src/tests/assets/video/cfr.mp4" >"$work/batch/truncated.mp4"
cp "$src/tests/assets/video/audio.m4a" "$work/batch/audio-only.m4a"
"$vidcap" features -np -m "$model" "$sample" "$work/batch/notes.mp4" "$work/batch/empty.mp4" \
    "$work/batch/missing.mp4" "$work/batch/audio-only.m4a" "$work/batch/truncated.mp4" "$src/tests/assets/video/cfr.mp4" \
    -o "$work/out" >"$work/stdout" 2>"$work/err"
rc=$?
[ "$rc" -eq 10 ] && ok "batch with bad videos exits 10" || bad "batch exit code $rc"
[ -f "$work/out/moving-fashion.safetensors" ] && [ -f "$work/out/cfr.safetensors" ] && ok "good videos written" ||
    bad "good videos missing: $(ls "$work/out")"
for f in notes empty missing audio-only truncated; do
    [ "$(grep -c "$f" "$work/err")" -eq 1 ] && ok "one error line names $f" || bad "error lines for $f: $(cat "$work/err")"
    [ ! -e "$work/out/$f.safetensors" ] || bad "output written for bad $f"
done
grep -q "audio-only.m4a: .*no video stream" "$work/err" && ok "audio-only: no video stream" || bad "audio-only message: $(cat "$work/err")"
[ -z "$(ls "$work/out" | grep -v '\.safetensors$')" ] && ok "no temporary files left" || bad "left behind: $(ls "$work/out")"
[ ! -s "$work/stdout" ] && ok "nothing on stdout" || bad "stdout: $(cat "$work/stdout")"

# 4. option errors: exit 1 with one line
"$vidcap" features -m "$model" --keep 0 "$sample" 2>"$work/err"
[ $? -eq 1 ] && grep -q "keep ratio" "$work/err" && ok "--keep 0 refused" || bad "--keep 0: $(cat "$work/err")"
"$vidcap" features -m "$model" "$sample" "$sample" -o "$work/one.safetensors" 2>"$work/err"
[ $? -eq 1 ] && ok "-o FILE with two videos refused" || bad "-o with two videos: $(cat "$work/err")"
"$vidcap" features -m "$model" 2>"$work/err"
[ $? -eq 2 ] && ok "no input exits 2" || bad "no input: $(cat "$work/err")"
"$vidcap" features -m "$work/batch/notes.mp4" "$sample" 2>"$work/err"
[ $? -eq 3 ] && ok "a bad model exits 3" || bad "bad model: $(cat "$work/err")"
exit $fail
