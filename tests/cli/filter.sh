#!/bin/sh
# CLI tests for the token filter: `vidcap filter-fit` on a folder of PNGs, then classify with --keep.
# usage: filter.sh VIDCAP SRCDIR WORKDIR
set -u
vidcap=$1 src=$2 work=$3
models=${VIDCAP_MODEL_DIR:-$src/models}
fail=0
rm -rf "$work"
mkdir -p "$work"
ok() { printf 'ok   %s\n' "$1"; }
bad() { printf 'FAIL %s\n' "$1"; fail=1; }

/usr/bin/python3 "$src/tests/cli/make_fit_folder.py" "$work/train" 8 || bad "make_fit_folder.py"

# 1. fit: one line on stdout, skipped inputs reported on stderr with their names, a filter file written
"$vidcap" filter-fit -np --epochs 5 -o "$work/f.safetensors" "$work/train" >"$work/out" 2>"$work/err"
rc=$?
[ $rc -eq 0 ] && [ -s "$work/f.safetensors" ] && ok "filter-fit wrote $(cat "$work/out")" || bad "filter-fit rc=$rc: $(cat "$work/err")"
grep -q "fitted on 80 images (2 skipped)" "$work/out" && ok "80 images used, 2 skipped" || bad "counts: $(cat "$work/out")"
grep -q "corrupt.png" "$work/err" && grep -q "not-a-class" "$work/err" && ok "skipped inputs named" || bad "stderr: $(cat "$work/err")"

# 2. classify with the filter: --keep 1 is the plain model; --keep 0.5 runs and still answers
"$vidcap" classify -np -k 1 "$src/samples/sneaker.png" >"$work/plain" 2>&1
"$vidcap" classify -np -k 1 --filter "$work/f.safetensors" --keep 1 "$src/samples/sneaker.png" >"$work/k1" 2>&1
cmp -s "$work/plain" "$work/k1" && ok "--keep 1 equals no filter" || bad "--keep 1: $(cat "$work/k1") vs $(cat "$work/plain")"
"$vidcap" classify -np -k 1 --filter "$work/f.safetensors" --keep 0.5 "$src/samples/sneaker.png" >"$work/k05" 2>"$work/err"
[ $? -eq 0 ] && grep -q "sneaker.png: " "$work/k05" && ok "--keep 0.5: $(cat "$work/k05")" || bad "--keep 0.5: $(cat "$work/err")"

# 3. bad input: one line, non-zero exit
expect_fail() { # name substring args...
    name=$1 want=$2
    shift 2
    "$vidcap" "$@" >"$work/out" 2>"$work/err"
    rc=$?
    if [ $rc -ne 0 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -qF "$want" "$work/err"; then
        ok "$name: $(cat "$work/err")"
    else
        bad "$name: exit $rc, stderr: $(cat "$work/err")"
    fi
}
expect_fail "keep 0" "must be in (0, 1]" classify -np --keep 0 "$src/samples/sneaker.png"
expect_fail "keep 1.5" "must be in (0, 1]" classify -np --keep 1.5 "$src/samples/sneaker.png"
/usr/bin/python3 -c '
import sys
sys.path.insert(0, sys.argv[3] + "/tools")
import safetensors_io
sd, meta = safetensors_io.load(sys.argv[1])
safetensors_io.save(sys.argv[2], {k: v for k, v in sd.items() if not k.startswith("filter.")},
                    {k: v for k, v in meta.items() if not k.startswith("filter.")})
' "$models/fashion-nest.safetensors" "$work/plain.safetensors" "$src"
expect_fail "keep without a filter" "needs a token filter" classify -np -m "$work/plain.safetensors" --keep 0.5 "$src/samples/sneaker.png"
expect_fail "a model as the filter" "not a token filter" classify -np --filter "$models/fashion-nest.safetensors" --keep 0.5 "$src/samples/sneaker.png"
/usr/bin/python3 -c '
import json, sys
sys.path.insert(0, sys.argv[3] + "/tools")
import safetensors_io, torch
sd, meta = safetensors_io.load(sys.argv[1])
sd["fc1.weight"] = torch.zeros(sd["fc1.weight"].shape[0], sd["fc1.weight"].shape[1] * 2)
safetensors_io.save(sys.argv[2], sd, meta)
' "$work/f.safetensors" "$work/wide.safetensors" "$src"
expect_fail "a filter for another backbone" "does the filter fit this backbone" classify -np --filter "$work/wide.safetensors" --keep 0.5 "$src/samples/sneaker.png"
mkdir -p "$work/empty"
expect_fail "no class folders" "no usable images" filter-fit -np -o "$work/g.safetensors" "$work/empty"
[ ! -e "$work/g.safetensors" ] && ok "no filter file after a failed fit" || bad "a filter file was left"

[ $fail -eq 0 ] && echo "filter cli: all passed" || echo "filter cli: FAILED"
exit $fail
