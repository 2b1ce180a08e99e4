"""Minimal safetensors reader/writer for the Python tools (Debian ships no safetensors package).

Writes what vidcap's C reader expects: '{' first, header padded with spaces to 8 bytes, tensors sorted by
name and tiled without holes, F32 little-endian.
"""
import json
import struct

import numpy as np
import torch


def save(path, tensors, metadata=None):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        t = tensors[name]
        a = (t.detach().cpu().contiguous().float().numpy() if isinstance(t, torch.Tensor)
             else np.ascontiguousarray(t, dtype=np.float32))
        b = a.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    import os
    os.replace(tmp, path)


def load(path):
    """Returns (dict name -> torch.Tensor float32, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", f"{path}: {name}: only F32 supported here"
        b, e = info["data_offsets"]
        a = np.frombuffer(data[base + b:base + e], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(a.copy())
    return out, meta
