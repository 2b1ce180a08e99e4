"""Writes a folder of Fashion-MNIST training images as PNGs, one sub-folder per class (named by label, one
by index to exercise both), plus one junk folder and one corrupt image unless --clean: the input of
`vidcap filter-fit`.
    make_fit_folder.py OUTDIR PER_CLASS [--clean]"""
import os
import sys

from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from train_fashion import LABELS, read_idx  # noqa: E402

out, per = sys.argv[1], int(sys.argv[2])
images, labels = read_idx("train-images-idx3-ubyte.gz"), read_idx("train-labels-idx1-ubyte.gz")
counts = [0] * 10
for img, lab in zip(images, labels):
    if counts[lab] >= per:
        continue
    folder = os.path.join(out, str(lab) if lab == 9 else LABELS[lab].replace("/", "-"))
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(img).save(os.path.join(folder, f"{counts[lab]:04d}.png"))
    counts[lab] += 1
    if min(counts) >= per:
        break
if "--clean" in sys.argv:
    sys.exit(0)
os.makedirs(os.path.join(out, "not-a-class"), exist_ok=True)
Image.fromarray(images[0]).save(os.path.join(out, "not-a-class", "x.png"))
with open(os.path.join(out, "bag", "corrupt.png"), "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n broken")
