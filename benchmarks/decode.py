"""Decode speed and memory: avfuse's streaming decode path against FFmpeg's own.

    python benchmarks/decode.py [--workdir .cache/bench] [--long-minutes 10]

Prints video-seconds decoded per wall-second for (a) ``ffmpeg -threads N -i FILE -f null -``
and (b) ``StreamingDecoder`` as ``avfuse run`` uses it for the bundled model (2 frames/s at
48x48, audio to mono 16 kHz), and with 4 frames/s at 112x112, on the same 60 s H.264/AAC
files at 720p and 360p, as ratios b/a; then the peak memory (max RSS) of decoding a long
720p file against a 10 s one, each in a fresh process. Goals: ratio >= 0.9; memory < 1.3.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataclasses import replace  # noqa: E402
from fractions import Fraction  # noqa: E402

from benchmarks.common import (  # noqa: E402
    best_time,
    cpu_count,
    lavfi_video,
    need_ffmpeg,
    print_table,
)
from pipeline.config import DecodeSettings  # noqa: E402
from pipeline.decode import StreamingDecoder  # noqa: E402


def decode_pipeline(path: Path, settings: DecodeSettings) -> int:
    with StreamingDecoder(path, settings) as dec:
        n = sum(1 for _ in dec.segments())
        dec.report.raise_if_truncated()
    return n


def decode_ffmpeg(path: Path, threads: int) -> None:
    subprocess.run(
        [need_ffmpeg(), "-v", "error", "-threads", str(threads), "-i", str(path), "-f", "null", "-"],
        check=True,
    )


def peak_rss_mb(path: Path, settings: DecodeSettings) -> float:
    """Max RSS of a fresh interpreter that imports the decoder (not torch) and decodes ``path``."""
    code = (
        "import sys, json; sys.path.insert(0, %r); from fractions import Fraction;"
        "from benchmarks.decode import decode_pipeline; from pipeline.config import DecodeSettings;"
        "decode_pipeline(%r, DecodeSettings(fps=Fraction(%r), frame_size=%d, sample_rate=%d));"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (big) parent across exec
        "print(json.dumps([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0]))"
    ) % (str(Path(__file__).resolve().parents[1]), str(path), str(settings.fps), settings.frame_size,
         settings.sample_rate)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1]) / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=".cache/bench")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--long-minutes", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    threads = cpu_count()
    from pipeline.detect import load_model

    model_settings = load_model(None).decode_settings
    big = DecodeSettings(fps=Fraction(4), frame_size=112)
    rows = []
    for label, (w, h) in {"720p": (1280, 720), "360p": (640, 360)}.items():
        path = lavfi_video(work / f"bench_{label}_{args.seconds}s.mp4", args.seconds, w, h)
        t_ff = best_time(lambda: decode_ffmpeg(path, threads), args.repeats)
        t_m = best_time(lambda: decode_pipeline(path, model_settings), args.repeats)
        t_b = best_time(lambda: decode_pipeline(path, big), args.repeats)
        kf = replace(model_settings, keyframes_only=True)
        t_kf = best_time(lambda: decode_pipeline(path, kf), args.repeats)
        rows.append([
            f"{label} H.264 {args.seconds}s", f"{args.seconds / t_ff:.1f}",
            f"{args.seconds / t_m:.1f}", f"{t_ff / t_m:.2f}x",
            f"{args.seconds / t_b:.1f}", f"{t_ff / t_b:.2f}x",
            f"{args.seconds / t_kf:.1f}",
        ])
    print(f"\nDecode speed, video-seconds per wall-second ({threads} CPU cores, best of {args.repeats}); "
          f"audio -> mono {model_settings.sample_rate} Hz in every avfuse column\n")
    m = f"{float(model_settings.fps):g} fps {model_settings.frame_size}px"
    print_table(
        ["file", f"ffmpeg -threads {threads} -f null", f"avfuse ({m}, bundled model)", "ratio",
         "avfuse (4 fps 112px)", "ratio", "keyframes-only"],
        rows,
    )
    short = lavfi_video(work / "bench_720p_10s.mp4", 10, 1280, 720)
    long_s = int(args.long_minutes * 60)
    long = lavfi_video(work / f"bench_720p_{long_s}s.mp4", long_s, 1280, 720)
    m_short, m_long = peak_rss_mb(short, model_settings), peak_rss_mb(long, model_settings)
    print("\nPeak memory (max RSS of a fresh process decoding one file)\n")
    print_table(
        ["file", "max RSS MB", "ratio"],
        [["720p 10 s", f"{m_short:.0f}", "1.00"],
         [f"720p {long_s} s", f"{m_long:.0f}", f"{m_long / m_short:.2f}"]],
    )


if __name__ == "__main__":
    main()
