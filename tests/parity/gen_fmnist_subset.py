"""Writes the first N Fashion-MNIST test images (uint8 values as float, [N, 28, 28]) and labels to a
safetensors file, for C tests that need real data.  gen_fmnist_subset.py OUT [N]"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import safetensors_io  # noqa: E402
from train_fashion import read_idx as idx  # noqa: E402


out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 500
safetensors_io.save(out, {"images": idx("t10k-images-idx3-ubyte.gz")[:n].astype(np.float32),
                          "labels": idx("t10k-labels-idx1-ubyte.gz")[:n].astype(np.float32)})
