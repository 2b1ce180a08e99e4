#!/bin/sh
# The token filter's trade-off, measured by the C engine in one run: top-1 on the 10,000 Fashion-MNIST
# test images and images per second at keep 1.0, 0.7, 0.5, 0.3, with the model's learned filter and with
# the random-keep baseline; and images per second for nest_tiny at 224 (random weights, random keep: the
# cost does not depend on which tokens are kept).
#   sh tools/bench/tradeoff.sh [BUILD_DIR [MODEL]]     (make tradeoff; MODEL must carry a filter)
set -eu
cd "$(dirname "$0")/../.."
build=${1:-build}
model=${2:-models/fashion-nest.safetensors}
work=tools/bench/.work
mkdir -p "$work"
/usr/bin/python3 -c "
import numpy as np
np.random.seed(0)
np.random.randn(32 * 32).astype('<f4').tofile('$work/in32.f32')
np.random.randn(224 * 224 * 3).astype('<f4').tofile('$work/in224.f32')"
[ -f "$work/nest_tiny.safetensors" ] || /usr/bin/python3 -c "
import sys; sys.path.insert(0, 'tests/parity'); sys.path.insert(0, 'tools')
import torch, safetensors_io
from gen_nest import randomize
from nest_ref import NEST_TINY, Nest
m = Nest(NEST_TINY); randomize(m, torch.Generator().manual_seed(0))
safetensors_io.save('$work/nest_tiny.safetensors', m.state_dict())"
if ! "$build/vidcap" classify -np -m "$model" --keep 0.5 samples/bag.jpg >/dev/null; then
    echo "tradeoff: $model carries no token filter: give a model fine-tuned with one (see the README)" >&2
    exit 1
fi
ms() { "$build/vidcap-bench" nest "$@" 2>/dev/null | sed 's/.*"ms_per_image": \([0-9.]*\).*/\1/'; }
acc() { sh tools/eval_fashion.sh "$build/vidcap" "$model" "$@" 2>/dev/null | sed -n 's/top-1 accuracy: \([0-9.]*\)%.*/\1/p'; }
echo "| keep | top-1, learned filter | top-1, random keep | Fashion model img/s (1 thread) | speed-up | nest_tiny img/s (1 thread) | speed-up |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
base_s= base_t=
for keep in 1.0 0.7 0.5 0.3; do
    if [ "$keep" = 1.0 ]; then
        a=$(acc); r=$a
        s=$(ms $model "$work/in32.f32" 1 300 "$work/lg")
        t=$(ms "$work/nest_tiny.safetensors" "$work/in224.f32" 1 10 "$work/lg")
        base_s=$s base_t=$t
    else
        a=$(acc --keep $keep); r=$(acc --keep $keep --filter random)
        s=$(ms $model "$work/in32.f32" 1 300 "$work/lg" $keep)
        t=$(ms "$work/nest_tiny.safetensors" "$work/in224.f32" 1 10 "$work/lg" $keep random)
    fi
    awk -v k=$keep -v a=$a -v r=$r -v s=$s -v t=$t -v bs=$base_s -v bt=$base_t 'BEGIN {
        printf "| %s | %.2f %% | %.2f %% | %.0f | %.2fx | %.2f | %.2fx |\n", k, a, r, 1000 / s, bs / s, 1000 / t, bt / t }'
done
