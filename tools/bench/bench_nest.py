"""Side-by-side speed of nest_tiny at 224 px: vidcap vs PyTorch eager vs ONNX Runtime, and vidcap vs sgemm.

    /usr/bin/python3 tools/bench/bench_nest.py --vidcap build/vidcap-bench      (what `make bench` runs)

One run: seeded random weights at realistic scale (timm keys, no metadata, so vidcap reads it as
nest_tiny_jx) and one random input go to tools/bench/.work/; the reference (tools/nest_ref.py) is exported
to ONNX; then for each thread count every engine runs in its own process, one after the other, with a
warm-up and the median of --iters timed forwards at batch 1. All logits must agree with PyTorch's
(max |diff| / max |logit| <= 1e-4). vidcap's GFLOP/s is nest_tiny's analytic FLOP count (2 x MACs) over
its time; sgemm's is OpenBLAS cblas_sgemm on N x N at the same thread count. A benchmark, not a test:
it prints ratios and never fails on a timing; it exits non-zero only when an engine fails or disagrees.
"""
import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
import warnings

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from nest_ref import NEST_TINY, Nest  # noqa: E402
import safetensors_io  # noqa: E402

TIMM_GMACS = 5.83  # timm's model card for nest_tiny (224 px)
RTOL = 1e-4


# ---- the model under test ----

def random_nest(config, seed):
    """nest_tiny with deterministic random weights at the scale of a trained network: matrices N(0, 1/fan_in),
    LayerNorm weights near 1, small biases, pos_embed N(0, 0.02)."""
    model = Nest(config).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("pos_embed"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
            elif p.ndim >= 2:  # Linear (out, in) and Conv2d (out, in, kh, kw)
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:  # biases
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
    return model


def nest_macs(c):
    """Multiply-accumulates of one forward, by layer kind, from the config alone (batch 1)."""
    L, dims, heads, depths = c["num_levels"], c["embed_dims"], c["num_heads"], c["depths"]
    grid = c["img_size"] // c["patch_size"]
    num_blocks0 = 4 ** (L - 1)
    block = int(grid // math.sqrt(num_blocks0))
    seq = block * block
    hidden = [int(d * c.get("mlp_ratio", 4.0)) for d in dims]
    m = {"patch_embed": grid * grid * dims[0] * c["in_chans"] * c["patch_size"] ** 2,
         "convpool": 0, "linears": 0, "attention": 0, "head": dims[-1] * c["num_classes"]}
    side = grid
    for i in range(L):
        if i > 0:  # ConvPool: 3x3 conv (pad 1) at the previous level's resolution, then 2x pool
            m["convpool"] += side * side * dims[i] * dims[i - 1] * 9
            side = (side + 1) // 2
        tokens, d = side * side, dims[i]
        nb = tokens // seq
        per_layer_lin = tokens * (d * 3 * d + d * d + d * hidden[i] + hidden[i] * d)  # qkv, proj, fc1, fc2
        per_layer_att = 2 * nb * heads[i] * seq * seq * (d // heads[i])               # QK^T and PV
        m["linears"] += depths[i] * per_layer_lin
        m["attention"] += depths[i] * per_layer_att
    m["total"] = sum(m.values())
    return m


# ---- preparation ----

def prepare(work, seed):
    os.makedirs(work, exist_ok=True)
    paths = {k: os.path.join(work, v) for k, v in dict(
        st="nest_tiny_random.safetensors", onnx="nest_tiny_random.onnx",
        nchw="input_nchw.f32", hwc="input_hwc.f32").items()}
    model = random_nest(NEST_TINY, seed)
    safetensors_io.save(paths["st"], model.state_dict())  # no metadata: vidcap sees a timm nest_tiny_jx
    x = torch.randn((1, 3, 224, 224), generator=torch.Generator().manual_seed(seed + 1))
    x.numpy().astype("<f4").tofile(paths["nchw"])
    x[0].permute(1, 2, 0).contiguous().numpy().astype("<f4").tofile(paths["hwc"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings: shapes are static at 224 px, batch 1
        torch.onnx.export(model, x, paths["onnx"], opset_version=17, input_names=["input"],
                          output_names=["logits"], do_constant_folding=True)
    return paths


def ensure_onnxruntime():
    if os.path.isdir(os.path.join(HERE, "node_modules", "onnxruntime-node")):
        return
    print("installing onnxruntime-node into tools/bench/node_modules (npm, --ignore-scripts)", flush=True)
    subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=HERE, check=True)


# ---- engines: each timed in its own process so no thread pool outlives its turn ----

def run_json(cmd, what):
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        sys.exit(f"bench_nest: {what} failed (exit {r.returncode}): {' '.join(cmd)}\n{r.stderr.strip()}")
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if not line:
        sys.exit(f"bench_nest: {what} printed no JSON line:\n{r.stdout}\n{r.stderr}")
    res = json.loads(line[-1])
    res["wall_s"] = round(time.time() - t0, 1)
    return res, r.stderr


def torch_child(model_path, input_path, threads, iters, out_path):
    """Runs in a child process: PyTorch eager, batch 1, no_grad, warm-up, median of `iters`."""
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    sd, _ = safetensors_io.load(model_path)
    model = Nest(NEST_TINY).eval()
    model.load_state_dict(sd, strict=True)
    x = torch.from_numpy(np.fromfile(input_path, dtype="<f4").reshape(1, 3, 224, 224))
    with torch.no_grad():
        y = model(x)
        t = []
        for _ in range(iters):
            t0 = time.perf_counter()
            y = model(x)
            t.append((time.perf_counter() - t0) * 1e3)
    y[0].numpy().astype("<f4").tofile(out_path)
    print(json.dumps({"ms_per_image": round(float(np.median(t)), 3), "ms_mean": round(float(np.mean(t)), 3),
                      "ms_min": round(float(np.min(t)), 3), "threads": threads, "iters": iters,
                      "torch": torch.__version__}))


def rel_diff(a, ref):
    return float(np.max(np.abs(a - ref)) / max(float(np.max(np.abs(ref))), 1e-30))


def cpuinfo(field):
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_name():
    return cpuinfo("model name") or platform.processor() or "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vidcap", default=os.path.join(ROOT, "build", "vidcap-bench"), help="vidcap-bench binary")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--iters", type=int, default=20, help="timed forwards per engine and thread count")
    ap.add_argument("--sgemm-n", type=int, default=1024, help="sgemm matrix side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=os.path.join(HERE, ".work"), help="scratch dir (gitignored)")
    ap.add_argument("--openblas-coretype", metavar="CORE",
                    help="set OPENBLAS_CORETYPE (e.g. SkylakeX, Haswell) for every engine; default: what "
                         "OpenBLAS detects, as users get it")
    ap.add_argument("--torch-child", nargs=5, metavar=("MODEL", "INPUT", "THREADS", "ITERS", "OUT"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_child:
        m, i, t, n, o = a.torch_child
        torch_child(m, i, int(t), int(n), o)
        return 0

    threads = [int(t) for t in a.threads.split(",") if t.strip()]
    if a.openblas_coretype:
        os.environ["OPENBLAS_CORETYPE"] = a.openblas_coretype  # inherited by vidcap, sgemm and PyTorch
    if not os.access(a.vidcap, os.X_OK):
        sys.exit(f"bench_nest: {a.vidcap}: not an executable; build it with cmake --build build --target vidcap-bench")
    ensure_onnxruntime()

    load = os.getloadavg()[0]
    print(f"# nest_tiny 224 px, batch 1 | {cpu_name()}, {os.cpu_count()} CPUs | torch {torch.__version__} | "
          f"load average {load:.2f} before start")
    if load > 0.5:
        print(f"# WARNING: load average {load:.2f}: another job is using the cores; timings are not representative")
    macs = nest_macs(NEST_TINY)
    gflop = 2 * macs["total"] / 1e9
    print(f"# FLOPs (2 x MACs, analytic): {gflop:.3f} GFLOP = {macs['total'] / 1e9:.3f} GMACs "
          f"(timm reports {TIMM_GMACS} GMACs); GMACs by kind: " +
          ", ".join(f"{k} {v / 1e9:.3f}" for k, v in macs.items() if k != "total"))

    t0 = time.time()
    p = prepare(a.work, a.seed)
    print(f"# weights, input and ONNX export ready in {time.time() - t0:.1f} s ({a.work})", flush=True)

    ref, rows, bad = None, [], []
    for t in threads:
        out = {e: os.path.join(a.work, f"logits_{e}_t{t}.f32") for e in ("vidcap", "torch", "ort")}
        res = {}
        res["vidcap"], info = run_json([a.vidcap, "nest", p["st"], p["hwc"], str(t), str(a.iters), out["vidcap"]],
                                       f"vidcap-bench nest at {t} threads")
        res["torch"], _ = run_json([sys.executable, os.path.abspath(__file__), "--torch-child", p["st"], p["nchw"],
                                    str(t), str(a.iters), out["torch"]], f"PyTorch at {t} threads")
        res["ort"], _ = run_json(["node", os.path.join(HERE, "ort_bench.js"), p["onnx"], p["nchw"], str(t),
                                  str(a.iters), out["ort"]], f"ONNX Runtime at {t} threads")
        res["sgemm"], _ = run_json([a.vidcap, "sgemm", str(a.sgemm_n), str(t), str(max(a.iters, 10))],
                                   f"sgemm at {t} threads")
        if t == threads[0]:
            sysinfo = [ln for ln in info.splitlines() if ln.startswith("system_info")]
            print("# vidcap " + (sysinfo[0] if sysinfo else "system_info: (not printed)"))
            core = res["sgemm"].get("core", "?")
            vcore = re.search(r"\(core ([^)]+)\)", sysinfo[0]) if sysinfo else None
            if vcore and vcore.group(1) != core:
                print(f"# WARNING: vidcap ran OpenBLAS core '{vcore.group(1)}' but the sgemm baseline ran '{core}': "
                      "the % of sgemm column compares different kernels")
            sse_only = ("Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Katmai", "Northwood")
            if core in sse_only and "avx2" in cpuinfo("flags").split():
                print(f"# WARNING: OpenBLAS chose its '{core}' (SSE) kernels on a CPU with AVX2/AVX-512: it does "
                      "not know this CPU model. vidcap, PyTorch's linears and sgemm all run SSE code; "
                      "try --openblas-coretype SkylakeX (AVX-512) or Haswell (AVX2)")
        for k, v in res.items():
            print(f"# t={t} {k}: {json.dumps(v)}", flush=True)

        logits = {e: np.fromfile(f, dtype="<f4") for e, f in out.items()}
        if ref is None:
            ref = logits["torch"]
        for e, v in logits.items():
            d = rel_diff(v, ref) if v.shape == ref.shape else float("inf")
            print(f"# t={t} {e} logits vs PyTorch (t={threads[0]}): max|diff|/max|logit| = {d:.2e}")
            if not d <= RTOL:
                bad.append(f"{e} at {t} threads: {d:.2e}")
        rows.append((t, res))

    print()
    print("| threads | vidcap img/s | PyTorch img/s | ORT img/s | vidcap/ORT | vidcap/PyTorch "
          "| vidcap GFLOP/s | sgemm GFLOP/s | vidcap % of sgemm |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t, r in rows:
        ms_v, ms_t, ms_o = (r[e]["ms_per_image"] for e in ("vidcap", "torch", "ort"))
        gf_v = gflop / (ms_v / 1e3)
        gf_s = r["sgemm"]["gflops"]
        print(f"| {t} | {1e3 / ms_v:.2f} | {1e3 / ms_t:.2f} | {1e3 / ms_o:.2f} | {ms_o / ms_v:.2f}x "
              f"| {ms_t / ms_v:.2f}x | {gf_v:.1f} | {gf_s:.1f} | {100 * gf_v / gf_s:.0f} % |")
    print()
    print(f"# img/s from the median of {a.iters} forwards after a warm-up; sgemm {a.sgemm_n}x{a.sgemm_n} median, "
          f"OpenBLAS core {rows[0][1]['sgemm'].get('core', '?')}"
          f"{' (OPENBLAS_CORETYPE=' + a.openblas_coretype + ')' if a.openblas_coretype else ''}")
    print("# targets: vidcap/ORT >= 1x, vidcap/PyTorch >= 2x at every thread count, vidcap >= 60 % of sgemm")
    load_end = os.getloadavg()[0]
    if load_end > max(threads) + 0.5:
        print(f"# WARNING: load average {load_end:.2f} at the end: something else ran beside the benchmark")
    if bad:
        print("bench_nest: logits disagree with PyTorch beyond " f"{RTOL:g}: " + "; ".join(bad), file=sys.stderr)
        return 1
    print(f"# logits: vidcap, PyTorch and ONNX Runtime agree within {RTOL:g} (relative to max |logit|)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
