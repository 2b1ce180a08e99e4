#!/bin/sh
# Top-1 accuracy of a Fashion-MNIST model on the 10,000 test images, measured by the C engine.
#   tools/eval_fashion.sh [VIDCAP] [MODEL] [CLASSIFY OPTIONS...]   (defaults: build/vidcap, the shipped model)
#   e.g. tools/eval_fashion.sh build/vidcap models/fashion-nest.safetensors --keep 0.5 --filter random
set -eu
vidcap=${1:-build/vidcap}
model=${2:-$(dirname "$0")/../models/fashion-nest.safetensors}
[ $# -ge 2 ] && shift 2 || set --
data=/usr/share/datasets/fashion-mnist
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gunzip -c "$data/t10k-images-idx3-ubyte.gz" >"$tmp/images"
gunzip -c "$data/t10k-labels-idx1-ubyte.gz" >"$tmp/labels"
"$vidcap" classify -np -m "$model" "$@" --eval-idx "$tmp/images" "$tmp/labels"
