"""End-to-end parity on the shipped bundle: `vidcap` on the sample video against the PyTorch reference
(tools/masked_transformer.py) run on the frame features vidcap itself extracted from the same video. Same
events after NMS (times within 1e-3 s, same scores to 1e-4) and token-identical captions, greedy and beam 3.
usage: check_caption_sample.py VIDCAP BUNDLE VIDEO WORKDIR"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import masked_transformer as mt  # noqa: E402
import safetensors_io  # noqa: E402


def main():
    vidcap, bundle, video, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    feat = os.path.join(work, "sample.safetensors")
    subprocess.run([vidcap, "features", "-np", "-m", bundle, video, "-o", feat], check=True)
    t, meta = safetensors_io.load(feat)
    duration = json.loads(meta["vidcap.features"])["duration"]
    model = mt.load(bundle, prefix="captioner.")
    fps = model.config["fps"]
    assert t["features"].shape[0] <= model.config["window"], "the sample must fit one window"
    fail = 0
    for beam in (1, 3):
        base = os.path.join(work, f"beam{beam}")
        subprocess.run([vidcap, "-np", "-m", bundle, "--beam", str(beam), "-oj", "-of", base, video], check=True,
                       stdout=subprocess.DEVNULL)
        got = json.load(open(base + ".json"))["results"]
        got = next(iter(got.values()))
        want, _ = model.infer(t["features"], t["times"], fps, beam=beam, duration=duration)
        want = sorted(want, key=lambda e: (e["start"], e["end"], -e["score"]))
        ok = len(got) == len(want) and len(want) > 0
        for g, w in zip(got, want):
            ok &= abs(g["timestamp"][0] - w["start"]) < 1e-3 and abs(g["timestamp"][1] - w["end"]) < 1e-3
            ok &= g["sentence"] == w["sentence"] and abs(g["proposal_score"] - w["score"]) < 1e-4
        print(("ok   " if ok else "FAIL ") + f"beam {beam}: {len(got)} events from vidcap, {len(want)} from PyTorch")
        if not ok:
            for g in got:
                print("  vidcap ", g["timestamp"], round(g["proposal_score"], 5), g["sentence"])
            for w in want:
                print("  pytorch", [round(w["start"], 3), round(w["end"], 3)], round(w["score"], 5), w["sentence"])
        fail |= not ok
    sys.exit(fail)


if __name__ == "__main__":
    main()
