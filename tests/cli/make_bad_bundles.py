"""Writes broken copies of a captioning bundle for the CLI tests: each is missing a part or contradicts itself.
usage: make_bad_bundles.py BUNDLE OUTDIR"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import safetensors_io  # noqa: E402


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    t, m = safetensors_io.load(src)

    def save(name, tensors, meta):
        safetensors_io.save(os.path.join(out, name + ".safetensors"), tensors, meta)

    save("no-captioner", {k: v for k, v in t.items() if not k.startswith("captioner.")},
         {k: v for k, v in m.items() if not k.startswith("captioner.")})
    save("no-filter", {k: v for k, v in t.items() if not k.startswith("filter.")},
         {k: v for k, v in m.items() if not k.startswith("filter.")})
    vocab = json.loads(m["captioner.vidcap.vocab"])
    save("vocab-mismatch", t, dict(m, **{"captioner.vidcap.vocab": json.dumps(vocab[:-3])}))
    enc = {k[len("encoder."):]: v for k, v in t.items() if k.startswith("encoder.")}
    enc.update({k: v for k, v in t.items() if k.startswith("filter.")})
    meta = {k[len("encoder."):]: v for k, v in m.items() if k.startswith("encoder.")}
    meta.update({k: v for k, v in m.items() if k.startswith("filter.")})
    save("encoder-only", enc, meta)


if __name__ == "__main__":
    main()
