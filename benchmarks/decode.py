"""Decode speed and memory: avfuse's streaming decode path against FFmpeg's own.

    python benchmarks/decode.py [--workdir .cache/bench] [--long-minutes 10]

Prints video-seconds decoded per wall-second for (a) ``ffmpeg -threads N -i FILE -f null -``
and (b) ``StreamingDecoder`` with the default settings (4 frames/s sampled and resized to
112x112, audio to mono 16 kHz), on the same 60 s H.264/AAC files at 720p and 360p, as a
ratio b/a; then the peak memory (max RSS) of decoding a long 720p file against a 10 s one,
each in a fresh process. Goals: ratio >= 0.9; memory ratio < 1.3.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import best_time, cpu_count, lavfi_video, need_ffmpeg, print_table  # noqa: E402
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


def peak_rss_mb(path: Path) -> float:
    """Max RSS of a fresh interpreter that imports avfuse and decodes ``path``."""
    code = (
        "import sys, json, resource; sys.path.insert(0, %r);"
        "from benchmarks.decode import decode_pipeline; from pipeline.config import DecodeSettings;"
        "decode_pipeline(%r, DecodeSettings());"
        "print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))"
    ) % (str(Path(__file__).resolve().parents[1]), str(path))
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
    settings = DecodeSettings()
    rows = []
    for label, (w, h) in {"720p": (1280, 720), "360p": (640, 360)}.items():
        path = lavfi_video(work / f"bench_{label}_{args.seconds}s.mp4", args.seconds, w, h)
        t_ff = best_time(lambda: decode_ffmpeg(path, threads), args.repeats)
        t_av = best_time(lambda: decode_pipeline(path, settings), args.repeats)
        kf = DecodeSettings(keyframes_only=True)
        t_kf = best_time(lambda: decode_pipeline(path, kf), args.repeats)
        rows.append([
            f"{label} H.264 {args.seconds}s",
            f"{args.seconds / t_ff:.1f}",
            f"{args.seconds / t_av:.1f}",
            f"{t_ff / t_av:.2f}x",
            f"{args.seconds / t_kf:.1f}",
        ])
    print(f"\nDecode speed, video-seconds per wall-second ({threads} CPU cores, best of {args.repeats})")
    print(f"avfuse path: {float(settings.fps):g} frames/s sampled -> {settings.frame_size}x"
          f"{settings.frame_size} RGB, audio -> mono {settings.sample_rate} Hz\n")
    print_table(
        ["file", f"ffmpeg -threads {threads} -f null", "avfuse decode", "ratio", "avfuse keyframes-only"],
        rows,
    )
    short = lavfi_video(work / "bench_720p_10s.mp4", 10, 1280, 720)
    long_s = int(args.long_minutes * 60)
    long = lavfi_video(work / f"bench_720p_{long_s}s.mp4", long_s, 1280, 720)
    m_short, m_long = peak_rss_mb(short), peak_rss_mb(long)
    print("\nPeak memory (max RSS of a fresh process decoding one file)\n")
    print_table(
        ["file", "max RSS MB", "ratio"],
        [["720p 10 s", f"{m_short:.0f}", "1.00"],
         [f"720p {long_s} s", f"{m_long:.0f}", f"{m_long / m_short:.2f}"]],
    )


if __name__ == "__main__":
    main()
