"""Writes the PyTorch oracle for every op in nn/nn.h (inputs, outputs, input gradients) to one safetensors
file, in vidcap's layouts; tests/test_ops_parity.c runs the C ops on the same inputs and compares.

Usage: /usr/bin/python3 tests/parity/gen_ops.py --out ops_parity.safetensors
"""
import argparse

import torch
import torch.nn.functional as F

from parity import Fixture, from_hwc, from_tc, to_hwc, to_tc, vjp

SEED = 20240611


def linear(fx, case, rows, cin, cout, bias):
    inp = {"x": fx.rand(rows, cin), "w": fx.rand(cout, cin), "b": fx.rand(cout) if bias else None}
    r = vjp(lambda x, w, b: F.linear(x, w, b), inp, ["x"], fx)
    t = {"x": inp["x"], "w": inp["w"], "y": r.y, "dy": r.dy, "dx": r.grads["x"]}
    if bias:
        t["b"] = inp["b"]
    fx.add_case(case, t)


def layernorm(fx, case, rows, C, eps):
    inp = {"x": fx.rand(rows, C, lo=-2, hi=2), "gamma": fx.rand(C, lo=0.5, hi=1.5),
           "beta": fx.rand(C, lo=-0.5, hi=0.5)}
    r = vjp(lambda x, gamma, beta: F.layer_norm(x, (C,), gamma, beta, eps), inp, ["x"], fx)
    fx.add_case(case, dict(inp, y=r.y, dy=r.dy, dx=r.grads["x"]), eps=repr(eps))


def softmax(fx, case, rows, n):
    inp = {"x": fx.rand(rows, n, lo=-4, hi=4)}
    r = vjp(lambda x: torch.softmax(x, -1), inp, ["x"], fx)
    fx.add_case(case, dict(inp, y=r.y, dy=r.dy, dx=r.grads["x"]))


def gelu(fx, case, n):
    inp = {"x": fx.rand(n, lo=-6, hi=6)}
    r = vjp(lambda x: F.gelu(x, approximate="none"), inp, ["x"], fx)
    fx.add_case(case, dict(inp, y=r.y, dy=r.dy, dx=r.grads["x"]))


def attention(fx, case, blocks, tokens, heads, head_dim, merge):
    """NesT/ViT attention on the output of a fused qkv Linear; merge "dim_major" is timm NesT's e*H+h."""
    dim = heads * head_dim

    def fn(qkv):
        q, k, v = qkv.reshape(blocks, tokens, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        probs = ((q * head_dim ** -0.5) @ k.transpose(-2, -1)).softmax(-1)  # [blocks, heads, tokens, tokens]
        o = probs @ v  # [blocks, heads, tokens, head_dim]
        o = o.permute(0, 2, 3, 1) if merge == "dim_major" else o.permute(0, 2, 1, 3)
        return o.reshape(blocks, tokens, dim), probs

    inp = {"qkv": fx.rand(blocks, tokens, 3 * dim, lo=-2, hi=2)}
    r = vjp(fn, inp, ["qkv"], fx)
    fx.add_case(case, dict(inp, y=r.y, probs=r.extra[0], dy=r.dy, dqkv=r.grads["qkv"]), heads=heads,
                merge=merge)


def conv2d(fx, case, h, w, cin, cout, k, stride, pad):
    inp = {"x": fx.rand(h, w, cin), "w": fx.rand(cout, cin, k, k, lo=-0.5, hi=0.5),
           "b": fx.rand(cout, lo=-0.5, hi=0.5)}
    r = vjp(lambda x, w, b: to_hwc(F.conv2d(from_hwc(x), w, b, stride=stride, padding=pad)), inp, ["x"], fx)
    fx.add_case(case, dict(inp, y=r.y, dy=r.dy, dx=r.grads["x"]), stride=stride, pad=pad)


def maxpool(fx, case, h, w, c, pad, ties=False):
    """3x3 stride-2 max-pool, -inf padding: MaxPool2d(3, 2, 1), or timm's MaxPool2dSame (TF-SAME).
    ties: inputs on four levels, so windows tie and the gradient follows PyTorch's first-maximum rule."""

    def fn(x):
        x = from_hwc(x)
        if pad == "same":
            ph = max((-(-h // 2) - 1) * 2 + 3 - h, 0)
            pw = max((-(-w // 2) - 1) * 2 + 3 - w, 0)
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=float("-inf"))
            return to_hwc(F.max_pool2d(x, 3, 2, 0))
        return to_hwc(F.max_pool2d(x, 3, 2, 1))

    x = fx.rand(h, w, c, lo=-2, hi=-1)  # all negative: zero padding would show
    inp = {"x": torch.floor(x * 4) / 4 if ties else x}
    r = vjp(fn, inp, ["x"], fx)
    fx.add_case(case, dict(inp, y=r.y, dy=r.dy, dx=r.grads["x"]), pad=pad)


def meanpool(fx, case, rows, C):
    inp = {"x": fx.rand(rows, C)}
    r = vjp(lambda x: x.mean(0), inp, ["x"], fx)
    fx.add_case(case, dict(inp, y=r.y, dy=r.dy, dx=r.grads["x"]))


def conv1d_depthwise(fx, case, T, C, K, pad, bias):
    inp = {"x": fx.rand(T, C), "w": fx.rand(C, 1, K), "b": fx.rand(C) if bias else None}
    r = vjp(lambda x, w, b: to_tc(F.conv1d(from_tc(x), w, b, padding=pad, groups=C)), inp, ["x"], fx)
    t = {"x": inp["x"], "w": inp["w"], "y": r.y, "dy": r.dy, "dx": r.grads["x"]}
    if bias:
        t["b"] = inp["b"]
    fx.add_case(case, t, pad=pad)


def batchnorm(fx, case, rows, C, eps):
    inp = {"x": fx.rand(rows, C, lo=-2, hi=2), "mean": fx.rand(C), "var": fx.rand(C, lo=0.01, hi=2),
           "gamma": fx.rand(C, lo=-1.5, hi=1.5), "beta": fx.rand(C, lo=-0.5, hi=0.5)}
    def fn(x, mean, var, gamma, beta):
        return F.batch_norm(x, mean, var, gamma, beta, training=False, eps=eps)

    r = vjp(fn, inp, ["x"], fx)
    fx.add_case(case, dict(inp, y=r.y, dy=r.dy, dx=r.grads["x"]), eps=repr(eps))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_grad_enabled(True)
    fx = Fixture(SEED)
    linear(fx, "linear_a", 7, 33, 17, True)
    linear(fx, "linear_nobias", 13, 5, 3, False)
    layernorm(fx, "layernorm_eps1e-6", 13, 33, 1e-6)
    layernorm(fx, "layernorm_eps1e-5", 7, 5, 1e-5)
    softmax(fx, "softmax_a", 7, 17)
    gelu(fx, "gelu_a", 1001)
    attention(fx, "attn_dim_major", 2, 17, 3, 5, "dim_major")
    attention(fx, "attn_head_major", 3, 7, 3, 8, "head_major")
    conv2d(fx, "conv2d_k3s1p1", 9, 7, 5, 6, 3, 1, 1)
    conv2d(fx, "conv2d_k4s4p0", 16, 12, 3, 8, 4, 4, 0)
    conv2d(fx, "conv2d_k3s2p1", 9, 8, 5, 7, 3, 2, 1)
    conv2d(fx, "conv2d_k1s1p0", 5, 7, 3, 4, 1, 1, 0)
    maxpool(fx, "maxpool_symmetric", 9, 8, 5, "symmetric")
    maxpool(fx, "maxpool_same", 9, 8, 5, "same")
    maxpool(fx, "maxpool_same_even", 8, 6, 3, "same")
    maxpool(fx, "maxpool_symmetric_ties", 7, 8, 3, "symmetric", ties=True)
    maxpool(fx, "maxpool_same_ties", 8, 7, 3, "same", ties=True)
    meanpool(fx, "meanpool_a", 13, 33)
    conv1d_depthwise(fx, "conv1d_k3p1", 17, 5, 3, 1, True)
    conv1d_depthwise(fx, "conv1d_k5p2_nobias", 7, 33, 5, 2, False)
    conv1d_depthwise(fx, "conv1d_k5p0", 6, 4, 5, 0, True)
    batchnorm(fx, "batchnorm_a", 13, 33, 1e-5)
    fx.save(args.out)
    print(f"{args.out}: {len(fx.tensors)} tensors")


if __name__ == "__main__":
    main()
