"""Preprocessing oracle for tests/test_preprocess_parity.c: runs PIL + torchvision on every image in samples/
and on synthetic images with awkward sizes (written next to the output), and stores the results
channels-last as "<image>.timm" [224,224,3] and "<image>.fashion" [32,32,1] in preprocess.safetensors.
Metadata: "images" (comma-separated names), "path.<image>" (file to decode).

timm  : timm's ImageNet eval: Resize(256, bicubic), CenterCrop(224), ToTensor, Normalize(ImageNet)
fashion: the shipped Fashion-MNIST model: convert('L'), Resize(28, bicubic), CenterCrop(28), Pad(2),
         ToTensor, Normalize(0.2860, 0.3530)
usage: /usr/bin/python3 tests/parity/gen_preprocess.py --samples samples --outdir BUILD/preprocess_parity
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image, ImageOps
from torchvision import transforms as T

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from safetensors_io import save  # noqa: E402

BICUBIC = T.InterpolationMode.BICUBIC
TIMM = T.Compose([T.Resize(256, interpolation=BICUBIC), T.CenterCrop(224), T.ToTensor(),
                  T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
FASHION = T.Compose([T.Resize(28, interpolation=BICUBIC), T.CenterCrop(28), T.Pad(2), T.ToTensor(),
                     T.Normalize((0.2860,), (0.3530,))])


def synthetic(outdir):
    """Sizes chosen for the resampler's branches: downscale by a non-integer factor, upscale of the short
    side, no resize at all (short side already 256), a single pass (one side unchanged), odd crop offsets
    (half-to-even rounding), tiny and extreme aspect ratios; noise makes every rounding visible."""
    rng = np.random.default_rng(7)
    paths = []
    for w, h in [(517, 389), (97, 300), (256, 300), (257, 256), (28, 40), (3, 2), (1000, 31), (29, 28), (259, 256), (31, 28)]:
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        # half the picture smooth, so both ringing at edges and flat areas are covered
        y, x = np.mgrid[0:h, 0:w]
        smooth = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 127 // max(w + h - 2, 1)], -1)
        a[:, : w // 2] = smooth[:, : w // 2].astype(np.uint8)
        p = os.path.join(outdir, f"noise-{w}x{h}.png")
        Image.fromarray(a, "RGB").save(p)
        paths.append(p)
    p = os.path.join(outdir, "gray-40x60.png")
    Image.fromarray(rng.integers(0, 256, (60, 40), dtype=np.uint8), "L").save(p)
    paths.append(p)
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", required=True)
    ap.add_argument("--outdir", required=True)
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)

    # samples/ also holds videos and notes: take the still-image formats vision/image.c reads
    exts = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".ppm", ".pgm")
    paths = [os.path.join(args.samples, f) for f in sorted(os.listdir(args.samples))
             if f.lower().endswith(exts) and os.path.isfile(os.path.join(args.samples, f))]
    if not paths:
        sys.exit(f"{args.samples}: no sample images")
    paths += synthetic(args.outdir)

    tensors, names = {}, []
    meta = {}
    for p in paths:
        name = os.path.basename(p)
        # what vision/image.c hands to the preprocessor: viewer orientation, RGB
        rgb = ImageOps.exif_transpose(Image.open(p)).convert("RGB")
        tensors[name + ".timm"] = TIMM(rgb).permute(1, 2, 0)
        tensors[name + ".fashion"] = FASHION(rgb.convert("L")).permute(1, 2, 0)
        names.append(name)
        meta["path." + name] = os.path.abspath(p)
    meta["images"] = ",".join(names)
    out = os.path.join(args.outdir, "preprocess.safetensors")
    save(out, tensors, meta)
    print(f"{out}: {len(names)} images")


if __name__ == "__main__":
    main()
