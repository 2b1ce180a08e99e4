"""Helpers for PyTorch parity fixtures: collect named inputs, outputs and input gradients, and write them
as one safetensors file that the C side reads with tests/parity/harness.c.

Conventions (what harness.c and the C parity tests expect):
  * names are "<case>.<tensor>": inputs by their role (`linear.x`, `linear.w`), outputs `.y` (or a named
    output such as `.probs`), the upstream gradient `.dy` (the random r of L = sum(y * r)) and input
    gradients `.d<input>` (`linear.dx`, `attn.dqkv`);
  * non-tensor parameters go in the metadata as "<case>.<param>" -> string (`conv2d_a.stride` -> "2");
  * tensors are stored float32, in vidcap's layouts (channels-last images: see to_hwc / from_hwc).

Inputs are drawn in float32 (the values the C side sees) and the oracle runs in float64, so the stored
outputs carry PyTorch's semantics without PyTorch's own float32 rounding.
"""
import os
import sys
import types

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from safetensors_io import save  # noqa: E402


class Fixture:
    """Named float32 tensors plus string metadata, written with safetensors_io.save."""

    def __init__(self, seed):
        self.tensors = {}
        self.meta = {"seed": str(seed)}
        self.gen = torch.Generator().manual_seed(seed)

    def rand(self, *shape, lo=-1.0, hi=1.0):
        """Uniform float32 values in [lo, hi), as float64 for the oracle (exactly the values stored)."""
        t = torch.rand(*shape, generator=self.gen, dtype=torch.float32) * (hi - lo) + lo
        return t.double()

    def add(self, name, t):
        if name in self.tensors:
            raise ValueError(f"duplicate tensor name {name}")
        self.tensors[name] = t.detach().to(torch.float32).contiguous().clone()

    def add_case(self, case, tensors, **params):
        """Adds tensors as "<case>.<key>" and params as metadata "<case>.<key>" -> str(value)."""
        for k, t in tensors.items():
            self.add(f"{case}.{k}", t)
        for k, v in params.items():
            self.meta[f"{case}.{k}"] = str(v)

    def save(self, path):
        save(path, self.tensors, self.meta)


def vjp(fn, inputs, wrt, fixture=None, dy=None):
    """Runs fn(**inputs) and the gradients of L = sum(y * dy) w.r.t. the inputs named in `wrt`.

    fn returns y, or a tuple (y, extra...) whose extras are kept but not differentiated. dy defaults to
    uniform [-1, 1) noise of y's shape, drawn from the fixture's generator so the stored `.dy` is
    reproducible. Returns a namespace with y, extra (tuple), dy and grads ({name: gradient})."""
    args = {k: (v.detach().clone().requires_grad_(k in wrt) if isinstance(v, torch.Tensor) else v)
            for k, v in inputs.items()}
    out = fn(**args)
    extra = ()
    if isinstance(out, tuple):
        out, extra = out[0], tuple(e.detach() for e in out[1:])
    if dy is None:
        gen = fixture.gen if fixture is not None else None
        dy = (torch.rand(out.shape, generator=gen, dtype=torch.float32) * 2 - 1).to(out.dtype)
    (out * dy).sum().backward()
    grads = {k: args[k].grad.detach() for k in wrt}
    return types.SimpleNamespace(y=out.detach(), extra=extra, dy=dy, grads=grads)


def to_hwc(x):
    """PyTorch image [1, C, H, W] (or [C, H, W]) -> vidcap channels-last [H, W, C]."""
    if x.dim() == 4:
        x = x[0]
    return x.permute(1, 2, 0).contiguous()


def from_hwc(x):
    """vidcap channels-last [H, W, C] -> PyTorch [1, C, H, W]."""
    return x.permute(2, 0, 1).unsqueeze(0).contiguous()


def to_tc(x):
    """PyTorch sequence [1, C, T] -> vidcap channels-last [T, C]."""
    return x[0].t().contiguous()


def from_tc(x):
    """vidcap channels-last [T, C] -> PyTorch [1, C, T]."""
    return x.t().unsqueeze(0).contiguous()
