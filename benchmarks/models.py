"""Fusion variants at default size: parameters, CPU forward time per 10-second window, peak memory.

    python benchmarks/models.py [--repeats 5]

For each variant the full default model (small_cnn encoders + the fusion model, 8
classes, W = 10 one-second segments) is timed on random inputs in inference mode at
batch 1 and batch 16, and the fusion model alone on precomputed tokens. Peak memory is
the max RSS of a fresh process that builds the model and runs the batch-16 forward,
minus that of a process that only imports torch and avfuse. Ratios are against the
``concat`` baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_table  # noqa: E402

LABELS = ["bell", "drum", "siren", "bird", "engine", "whistle", "dog", "rain"]


def measure(fusion: str, repeats: int) -> dict:
    import torch

    from pipeline.model import create_model

    torch.manual_seed(0)
    m = create_model(LABELS, fusion=fusion).eval()
    s = m.decode_settings
    W = m.window.segments
    out = {"params": sum(p.numel() for p in m.parameters()),
           "fusion_params": sum(p.numel() for p in m.fusion.parameters())}
    for B in (1, 16):
        frames = torch.randint(0, 255, (B, W, s.frames_per_segment, s.frame_size, s.frame_size, 3), dtype=torch.uint8)
        audio = torch.randn(B, W, s.samples_per_segment) * 0.1
        present = torch.ones(B, W, dtype=torch.bool)
        with torch.inference_mode():
            m(frames, audio, present, present)  # warm-up
            best = min(_timed(lambda: m(frames, audio, present, present)) for _ in range(repeats))
            v, a = m.encode(frames, audio)
            m.fusion(v, a, present, present)
            fbest = min(_timed(lambda: m.fusion(v, a, present, present)) for _ in range(repeats))
        out[f"ms_per_window_b{B}"] = best / B * 1000
        out[f"fusion_ms_per_window_b{B}"] = fbest / B * 1000
    return out


def _timed(fn) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def peak_rss_mb(fusion: str | None) -> float:
    code = (
        "import sys, torch; sys.path.insert(0, %r)\n"
        "from pipeline.model import create_model\n"
        "if %r:\n"
        "    m = create_model(%r, fusion=%r).eval(); s = m.decode_settings\n"
        "    f = torch.randint(0, 255, (16, 10, s.frames_per_segment, s.frame_size, s.frame_size, 3), dtype=torch.uint8)\n"
        "    a = torch.randn(16, 10, s.samples_per_segment); p = torch.ones(16, 10, dtype=torch.bool)\n"
        "    with torch.inference_mode(): m(f, a, p, p)\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
        "print([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
    ) % (str(ROOT), fusion is not None, LABELS, fusion)
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(res.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import torch

    from fusion.models import list_fusion

    base_rss = peak_rss_mb(None)
    results = {}
    for name in list_fusion():
        r = measure(name, args.repeats)
        r["peak_mb"] = peak_rss_mb(name) - base_rss
        results[name] = r
    if args.json:
        print(json.dumps(results, indent=2))
        return
    ref = results["concat"]
    rows = []
    for name, r in results.items():
        rows.append([
            name, f"{r['params'] / 1e6:.2f} M", f"{r['fusion_params'] / 1e6:.2f} M",
            f"{r['ms_per_window_b1']:.1f}", f"{r['ms_per_window_b16']:.1f}",
            f"{r['fusion_ms_per_window_b1']:.2f}", f"{r['fusion_ms_per_window_b16']:.2f}",
            f"{r['ms_per_window_b16'] / ref['ms_per_window_b16']:.2f}x", f"{r['peak_mb']:.0f}",
        ])
    print(f"\nDefault model (small_cnn encoders, 8 classes, W=10 x 1 s), CPU, {torch.get_num_threads()} threads, "
          f"best of {args.repeats}; ms per 10-second window\n")
    print_table(["fusion", "params", "fusion params", "model b1", "model b16", "fusion b1", "fusion b16",
                 "b16 vs concat", "peak MB (b16)"], rows)


if __name__ == "__main__":
    main()
