"""Packs a frame encoder (a NesT file with its token filter under "filter.") and a captioner (a
masked_transformer file) into the one bundle `vidcap VIDEO` loads (DESIGN.md, Model files): tensors and
metadata keys under "encoder.", "filter." and "captioner."; the top level says vidcap.arch = bundle.

    /usr/bin/python3 tools/make_bundle.py --encoder ENCODER.safetensors --captioner CAPTIONER.safetensors \
        --out models/moving-fashion.safetensors
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


def bundle(encoder_path, captioner_path, out_path):
    enc, enc_meta = safetensors_io.load(encoder_path)
    cap, cap_meta = safetensors_io.load(captioner_path)
    if enc_meta.get("vidcap.arch") != "nest":
        raise SystemExit(f"{encoder_path}: not a NesT frame encoder (vidcap.arch is {enc_meta.get('vidcap.arch')})")
    if cap_meta.get("vidcap.arch") != "masked_transformer":
        raise SystemExit(f"{captioner_path}: not a captioner (vidcap.arch is {cap_meta.get('vidcap.arch')})")
    tensors, meta = {}, {"vidcap.format": "1", "vidcap.arch": "bundle"}
    for k, v in enc.items():
        tensors[k if k.startswith("filter.") else "encoder." + k] = v
    for k, v in cap.items():
        tensors["captioner." + k] = v
    for k, v in enc_meta.items():
        meta[k if k.startswith("filter.") else "encoder." + k] = v
    for k, v in cap_meta.items():
        meta["captioner." + k] = v
    fps = json.loads(cap_meta["vidcap.config"])["fps"]
    meta["encoder.vidcap.video"] = json.dumps({"fps": fps})
    d_in = json.loads(cap_meta["vidcap.config"])["d_in"]
    cfg = json.loads(enc_meta["vidcap.config"])
    grid = cfg["img_size"] // cfg["patch_size"] // 2 ** (cfg["num_levels"] - 1)
    if grid * grid * cfg["embed_dims"][-1] != d_in:
        raise SystemExit(f"the captioner reads {d_in} features a frame, the encoder gives "
                         f"{grid * grid * cfg['embed_dims'][-1]}")
    meta["vidcap.description"] = ("Moving Fashion dense captioner: NesT frame encoder + token filter + "
                                  "Masked Transformer")
    safetensors_io.save(out_path, tensors, meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--captioner", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    bundle(a.encoder, a.captioner, a.out)
    print(f"saved {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
