#!/bin/sh
# Reproduces models/fashion-nest.safetensors from Debian's dataset-fashion-mnist, start to finish:
#   1. train the NesT backbone (PyTorch, tools/train_fashion.py, seed 0);
#   2. fit its token filter with the C engine (vidcap filter-fit) on 200 training images per class;
#   3. fine-tune the backbone with the filter in place at keep 0.5 (tools/finetune_filtered.py), one epoch.
#   sh tools/make_fashion_model.sh [BUILD_DIR]      (needs `make` first; about an hour on 2 cores)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t0=$(date +%s)
/usr/bin/python3 tools/train_fashion.py --epochs 12 --seed 0 --out "$work/backbone.safetensors"
t1=$(date +%s)
/usr/bin/python3 tests/cli/make_fit_folder.py "$work/fit" 200 --clean
"$build/vidcap" filter-fit -m "$work/backbone.safetensors" --keep 0.5 -o "$work/filter.safetensors" "$work/fit"
t2=$(date +%s)
/usr/bin/python3 tools/finetune_filtered.py --model "$work/backbone.safetensors" --filter "$work/filter.safetensors" \
    --keep 0.5 --epochs 1 --seed 0 --out models/fashion-nest.safetensors
t3=$(date +%s)
echo "times: training $((t1 - t0)) s, filter-fit $((t2 - t1)) s, fine-tuning $((t3 - t2)) s" >&2
