#!/bin/sh
# CLI tests for `vidcap classify`: results on the samples, batch behaviour with bad inputs, bad models.
# usage: classify.sh VIDCAP SRCDIR WORKDIR
set -u
vidcap=$1 src=$2 work=$3
fail=0
mkdir -p "$work"
ok() { printf 'ok   %s\n' "$1"; }
bad() { printf 'FAIL %s\n' "$1"; fail=1; }

models=${VIDCAP_MODEL_DIR:-$src/models}

# 1. every Fashion-MNIST sample is labelled as its file name says (the shipped model, top-1)
for f in "$src"/samples/sneaker.png "$src"/samples/pullover.png "$src"/samples/trouser.png \
         "$src"/samples/bag.jpg "$src"/samples/ankle-boot.jpg; do
    want=$(basename "$f" | sed 's/\.[a-z]*$//; s/-/ /g')
    line=$("$vidcap" classify -np -k 1 "$f" 2>"$work/err") || { bad "classify $f exited non-zero: $(cat "$work/err")"; continue; }
    got=$(printf '%s' "$line" | sed 's/^[^:]*: //; s/ [0-9.]*$//; s/\//-/g; s/-/ /g')
    want_norm=$(printf '%s' "$want" | sed 's/-/ /g')
    [ "$got" = "$want_norm" ] && ok "top-1 of $(basename "$f") is $got" || bad "top-1 of $f: got '$got', want '$want_norm' ($line)"
done

# 2. output format: "path: label p, label p, ..." with k entries, probabilities descending
line=$("$vidcap" classify -np -k 3 "$src/samples/sneaker.png")
n=$(printf '%s\n' "$line" | tr ',' '\n' | wc -l)
[ "$n" -eq 3 ] && ok "-k 3 prints 3 classes" || bad "-k 3 printed $n classes: $line"
printf '%s' "$line" | grep -q "^$src/samples/sneaker.png: " && ok "line starts with the path" || bad "line format: $line"

# 3. --json: one valid JSON object per input
"$vidcap" classify -np --json -k 2 "$src/samples/sneaker.png" "$src/samples/bag.jpg" >"$work/out.json" 2>"$work/err"
/usr/bin/python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2, lines
for l in lines:
    o = json.loads(l)
    assert len(o["top"]) == 2 and o["top"][0]["prob"] >= o["top"][1]["prob"], o
' "$work/out.json" && ok "--json lines parse" || bad "--json output: $(cat "$work/out.json")"

# 4. a batch with bad inputs: each bad file named on one stderr line, good ones still classified, exit 10
: >"$work/empty.png"
mkdir -p "$work/a-directory.jpg"
set -- "$src/samples/sneaker.png"
for f in "$src"/tests/assets/images/bad/*; do [ -f "$f" ] && set -- "$@" "$f"; done
set -- "$@" "$work/empty.png" "$work/a-directory.jpg" "$work/missing.png" "$src/samples/bag.jpg"
nbad=$(($# - 2))
"$vidcap" classify -np -k 1 "$@" >"$work/out" 2>"$work/err"
rc=$?
[ "$rc" -eq 10 ] && ok "batch with bad inputs exits 10" || bad "batch exit code $rc"
[ "$(wc -l <"$work/out")" -eq 2 ] && ok "both good images classified" || bad "stdout: $(cat "$work/out")"
[ "$(wc -l <"$work/err")" -eq "$nbad" ] && ok "one stderr line per bad input ($nbad)" || bad "stderr has $(wc -l <"$work/err") lines for $nbad bad inputs: $(cat "$work/err")"
shift
while [ $# -gt 1 ]; do
    grep -qF "$1" "$work/err" && ok "error names $(basename "$1")" || bad "no error line names $1"
    shift
done

# 5. bad models: one line naming the file and the reason, exit 3
/usr/bin/python3 "$src/tests/cli/make_bad_models.py" "$models/fashion-nest.safetensors" "$work/models" || bad "make_bad_models.py"
check_model() { # file expected-substring
    "$vidcap" classify -np -m "$work/models/$1" "$src/samples/sneaker.png" >"$work/out" 2>"$work/err"
    rc=$?
    if [ "$rc" -eq 3 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -qF "$1" "$work/err" && grep -qF "$2" "$work/err"; then
        ok "model $1 rejected: $(cat "$work/err")"
    else
        bad "model $1: exit $rc, stderr: $(cat "$work/err")"
    fi
    [ -s "$work/out" ] && bad "model $1 printed results"
}
check_model wrong-arch.safetensors "needs a NesT classifier"
check_model contradicting-config.safetensors "contradict"
check_model wrong-shapes.safetensors "has shape"
check_model wrong-labels.safetensors "vidcap.labels"
check_model newer-format.safetensors "newer"
check_model nan-weight.safetensors "non-finite"
check_model not-nest.safetensors "not a NesT model"
check_model no-head.safetensors "missing tensor head.weight"
check_model truncated.safetensors "truncated.safetensors"

# 6. argument errors
"$vidcap" classify -k 0 "$src/samples/sneaker.png" >/dev/null 2>&1; [ $? -eq 1 ] && ok "-k 0 rejected" || bad "-k 0 accepted"
"$vidcap" classify >/dev/null 2>&1; [ $? -eq 2 ] && ok "no inputs exits 2" || bad "no inputs"
"$vidcap" classify --bogus x >/dev/null 2>&1; [ $? -eq 1 ] && ok "unknown option exits 1" || bad "unknown option"

[ $fail -eq 0 ] && echo "classify cli: all passed" || echo "classify cli: FAILED"
exit $fail
