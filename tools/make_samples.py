"""Writes the sample images in samples/: a few Fashion-MNIST test images (first test index of each class
used) at their native 28x28 or upscaled, and a synthetic colour picture for resize tests.

usage: /usr/bin/python3 tools/make_samples.py [--mnist t10k-images-idx3-ubyte.gz] [--out samples]
"""
import argparse
import gzip
import os
import struct

import numpy as np
from PIL import Image, ImageDraw

LABELS = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim not in (1, 3):
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic 0x{magic:08x})")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {np.prod(dims)} bytes of data, found {body.size}")
    return body.reshape(dims)


def first_of(labels, cls):
    return int(np.nonzero(labels == cls)[0][0])


def synthetic_photo(w, h):
    """A smooth colour gradient with a few hard-edged shapes: exercises both the antialiasing and the
    ringing of bicubic resampling, and 4:2:0 chroma in JPEG."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 255 * x / (w - 1)
    g = 255 * y / (h - 1)
    b = 128 + 100 * np.sin(x / 17.0) * np.cos(y / 11.0)
    im = Image.fromarray(np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    d.ellipse([w * 0.1, h * 0.15, w * 0.4, h * 0.6], fill=(240, 240, 30))
    d.rectangle([w * 0.55, h * 0.2, w * 0.9, h * 0.45], fill=(20, 30, 200))
    d.polygon([(w * 0.5, h * 0.95), (w * 0.7, h * 0.55), (w * 0.95, h * 0.9)], fill=(200, 20, 60))
    d.line([(0, h - 1), (w - 1, 0)], fill=(255, 255, 255), width=2)
    return im


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", default="/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples"))
    args = ap.parse_args()
    images = read_idx(args.mnist)
    labels = read_idx(args.mnist.replace("images-idx3", "labels-idx1"))
    os.makedirs(args.out, exist_ok=True)

    def mnist(cls, size):
        i = first_of(labels, cls)
        im = Image.fromarray(images[i], "L")
        if size != 28:
            im = im.resize((size, size), Image.BICUBIC)
        return im, i

    written = []
    for name, cls, size in [("sneaker.png", 7, 28), ("bag.jpg", 8, 112), ("trouser.png", 1, 84),
                            ("ankle-boot.jpg", 9, 28), ("pullover.png", 2, 28)]:
        im, i = mnist(cls, size)
        path = os.path.join(args.out, name)
        if name.endswith(".jpg"):
            im.save(path, quality=95)
        else:
            im.save(path, optimize=True)
        written.append((name, f"Fashion-MNIST test #{i}, label {cls} ({LABELS[cls]}), {size}x{size}"))

    synthetic_photo(300, 200).save(os.path.join(args.out, "gradient.jpg"), quality=90)
    written.append(("gradient.jpg", "synthetic colour picture, 300x200"))
    synthetic_photo(150, 331).save(os.path.join(args.out, "tall.png"), optimize=True)
    written.append(("tall.png", "synthetic colour picture, portrait 150x331"))

    total = 0
    for name, what in written:
        n = os.path.getsize(os.path.join(args.out, name))
        total += n
        print(f"{name:16s} {n:6d} bytes  {what}")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
