#!/bin/sh
# CLI tests for `vidcap explain`: PNG per image, JSON path, output naming, bad classes and paths.
# usage: explain.sh VIDCAP SRCDIR WORKDIR
set -u
vidcap=$1 src=$2 work=$3
fail=0
rm -rf "$work"
mkdir -p "$work"
ok() { printf 'ok   %s\n' "$1"; }
bad() { printf 'FAIL %s\n' "$1"; fail=1; }
is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }

# 1. -o writes one PNG at the image's aspect, upscaled for a 28 px image
"$vidcap" explain -np "$src/samples/sneaker.png" -o "$work/heat.png" >"$work/out" 2>"$work/err"
[ $? -eq 0 ] && is_png "$work/heat.png" && ok "-o wrote a PNG" || bad "-o: $(cat "$work/err")"
grep -q "sneaker.png: sneaker" "$work/out" && ok "text line names the target" || bad "text: $(cat "$work/out")"

# 2. several images, default names <stem>.gradcat.png in the current folder, --json with the path
(cd "$work" && "$vidcap" explain -np --json "$src/samples/bag.jpg" "$src/samples/tall.png" >json 2>err)
rc=$?
[ $rc -eq 0 ] && is_png "$work/bag.gradcat.png" && is_png "$work/tall.gradcat.png" && ok "default names" || bad "default names rc=$rc: $(cat "$work/err")"
/usr/bin/python3 -c '
import json, sys
from PIL import Image
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2
for l in lines:
    o = json.loads(l)
    path = o["path"]
    assert len(path) == 3 and [p["level"] for p in path] == [2, 1, 0], path
    for parent, child in zip(path, path[1:]):   # nested boxes
        a, b = parent["box"], child["box"]
        assert a[0] <= b[0] and a[1] <= b[1] and b[2] <= a[2] and b[3] <= a[3], (a, b)
    assert o["target"]["label"] == o["top"][0]["label"]
assert Image.open(sys.argv[3]).size == (224, 224)   # the 28 px sample, upscaled x8
tall = json.loads(lines[1])
w, h = Image.open(sys.argv[2]).size
assert (w, h) == (150 * 2, 331 * 2), (w, h)        # original aspect, upscaled x2 (150 px is under 224)
assert tall["path"][0]["box"][2] <= 150 and tall["path"][0]["box"][3] <= 331
' "$work/json" "$work/tall.gradcat.png" "$work/heat.png" && ok "JSON path nested, picture at the original aspect" || bad "json: $(cat "$work/json")"

# 3. --class by name and by index; -of per image
"$vidcap" explain -np --json -c bag "$src/samples/sneaker.png" -of "$work/by-name" >"$work/j1" 2>"$work/err" &&
"$vidcap" explain -np --json -c 8 "$src/samples/sneaker.png" -of "$work/by-index" >"$work/j2" 2>>"$work/err"
grep -q '"target":{"index":8,"label":"bag"' "$work/j1" && cmp -s "$work/by-name.png" "$work/by-index.png" &&
    ok "--class by name equals by index" || bad "--class: $(cat "$work/j1" "$work/err")"

# 4. bad classes, bad outputs: one line, non-zero exit, no PNG left behind
expect_fail() { # name expected-substring args...
    name=$1 want=$2
    shift 2
    "$vidcap" explain -np "$@" >"$work/out" 2>"$work/err"
    rc=$?
    if [ $rc -ne 0 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -qF "$want" "$work/err"; then
        ok "$name: $(cat "$work/err")"
    else
        bad "$name: exit $rc, stderr: $(cat "$work/err")"
    fi
}
expect_fail "unknown class" "unknown class 'cat'" -c cat "$src/samples/sneaker.png" -o "$work/x.png"
expect_fail "class index out of range" "unknown class '10'" -c 10 "$src/samples/sneaker.png" -o "$work/x.png"
expect_fail "unwritable output" "cannot write" "$src/samples/sneaker.png" -o "$work/no/such/dir/x.png"
expect_fail "-o with two images" "one file" "$src/samples/sneaker.png" "$src/samples/bag.jpg" -o "$work/x.png"
[ ! -e "$work/x.png" ] && ok "no PNG after failures" || bad "a PNG was left behind"
: >"$work/empty.png"
expect_fail "empty image" "empty.png" "$work/empty.png" -o "$work/y.png"
[ ! -e "$work/y.png" ] && ok "no PNG for a bad image" || bad "PNG written for a bad image"
ls "$work" | grep -q '\.tmp\.' && bad "temporary file left behind" || ok "no temporary files"

# --keep: GradCAT through the filtered network (the shipped model carries its filter): the same class, a
# picture, and --keep 1 identical to no filter
"$vidcap" explain -np -c "ankle boot" "$src/samples/ankle-boot.jpg" -o "$work/k1.png" >"$work/full" 2>&1
"$vidcap" explain -np -c "ankle boot" --keep 1 "$src/samples/ankle-boot.jpg" -o "$work/k1.png" >"$work/keep1" 2>&1
cmp -s "$work/full" "$work/keep1" && ok "explain --keep 1 equals no filter" || bad "--keep 1: $(cat "$work/keep1")"
"$vidcap" explain -np --keep 0.5 "$src/samples/ankle-boot.jpg" -o "$work/k05.png" >"$work/keep05" 2>"$work/err"
[ $? -eq 0 ] && grep -q "ankle boot" "$work/keep05" && [ -s "$work/k05.png" ] && ok "explain --keep 0.5: $(cat "$work/keep05")" ||
    bad "explain --keep 0.5: $(cat "$work/err")"
expect_fail "explain keep 0" "must be in (0, 1]" --keep 0 "$src/samples/sneaker.png" -o "$work/z.png"

[ $fail -eq 0 ] && echo "explain cli: all passed" || echo "explain cli: FAILED"
exit $fail
