#!/bin/sh
# Top-1 accuracy of a Fashion-MNIST model on the 10,000 test images, measured by the C engine.
#   tools/eval_fashion.sh [VIDCAP] [MODEL]     (defaults: build/vidcap, the shipped model)
set -eu
vidcap=${1:-build/vidcap}
model=${2:-$(dirname "$0")/../models/fashion-nest.safetensors}
data=/usr/share/datasets/fashion-mnist
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gunzip -c "$data/t10k-images-idx3-ubyte.gz" >"$tmp/images"
gunzip -c "$data/t10k-labels-idx1-ubyte.gz" >"$tmp/labels"
"$vidcap" classify -m "$model" --eval-idx "$tmp/images" "$tmp/labels"
