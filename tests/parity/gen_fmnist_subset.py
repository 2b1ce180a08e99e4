"""Writes the first N Fashion-MNIST test images (uint8 values as float, [N, 28, 28]) and labels to a
safetensors file, for C tests that need real data.  gen_fmnist_subset.py OUT [N]"""
import gzip
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import safetensors_io  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"


def idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        d = f.read()
    nd = d[3]
    dims = [int.from_bytes(d[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(d, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 500
safetensors_io.save(out, {"images": idx("t10k-images-idx3-ubyte.gz")[:n].astype(np.float32),
                          "labels": idx("t10k-labels-idx1-ubyte.gz")[:n].astype(np.float32)})
