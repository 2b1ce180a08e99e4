#!/bin/sh
# make demo: show what the build can do on the shipped samples.
set -eu
vidcap=${1:-build/vidcap}
cd "$(dirname "$0")/.."
echo "== $vidcap version" >&2
"$vidcap" version
echo "== $vidcap classify samples/*.png samples/*.jpg" >&2
"$vidcap" classify -k 3 samples/*.png samples/*.jpg
