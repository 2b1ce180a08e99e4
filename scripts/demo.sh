#!/bin/sh
# make demo: show what the build can do on the shipped samples: dense captions of the sample video (the
# default command), then image classification and a GradCAT heatmap.
set -eu
vidcap=${1:-build/vidcap}
cd "$(dirname "$0")/.."
out=$(dirname "$vidcap")
echo "== $vidcap version" >&2
"$vidcap" version
echo "== $vidcap -pp samples/moving-fashion.mp4 -osrt -of $out/moving-fashion" >&2
"$vidcap" -pp samples/moving-fashion.mp4 -osrt -of "$out/moving-fashion"
echo "== $vidcap classify -k 3 samples/*" >&2
"$vidcap" classify -k 3 samples/*.png samples/*.jpg
echo "== $vidcap explain samples/bag.jpg -o $out/bag.gradcat.png" >&2
"$vidcap" explain -np samples/bag.jpg -o "$out/bag.gradcat.png"
