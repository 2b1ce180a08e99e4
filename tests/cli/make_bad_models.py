"""Writes broken variants of the shipped model for the CLI tests: wrong architecture, metadata that
contradicts the tensors, wrong label count, a NaN weight, a truncated file, a non-NesT tensor set.
    /usr/bin/python3 tests/cli/make_bad_models.py SHIPPED OUTDIR"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import safetensors_io  # noqa: E402

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
sd, meta = safetensors_io.load(src)


def variant(name, tensors=sd, **changes):
    m = dict(meta)
    m.update(changes)
    safetensors_io.save(os.path.join(out, name), tensors, m)


cfg = json.loads(meta["vidcap.config"])
variant("wrong-arch.safetensors", **{"vidcap.arch": "masked_transformer"})
deeper = dict(cfg, depths=[d + 1 for d in cfg["depths"]])
variant("contradicting-config.safetensors", **{"vidcap.config": json.dumps(deeper)})
wider = dict(cfg, embed_dims=[d * 2 for d in cfg["embed_dims"]], num_heads=cfg["num_heads"])
variant("wrong-shapes.safetensors", **{"vidcap.config": json.dumps(wider)})
variant("wrong-labels.safetensors", **{"vidcap.labels": json.dumps(["a", "b"])})
variant("newer-format.safetensors", **{"vidcap.format": "99"})
nan = dict(sd)
nan["head.weight"] = sd["head.weight"].clone()
nan["head.weight"][0, 0] = float("nan")
variant("nan-weight.safetensors", nan)
headless = {k: v for k, v in sd.items() if not k.startswith("head.")}
variant("no-head.safetensors", headless)
safetensors_io.save(os.path.join(out, "not-nest.safetensors"), {"foo": torch.zeros(3)})
with open(src, "rb") as f:
    data = f.read()
with open(os.path.join(out, "truncated.safetensors"), "wb") as f:
    f.write(data[: len(data) // 2])
