"""Helpers shared by the benchmarks: timing, tables, test files made by the ffmpeg CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable, Sequence


def need_ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise SystemExit("this benchmark needs the ffmpeg CLI: apt-get install ffmpeg")
    return exe


def lavfi_video(path: Path, seconds: float, width: int, height: int, fps: int = 30) -> Path:
    """An H.264/AAC MP4 of FFmpeg's moving test pattern with a tone (made once, then reused)."""
    if path.exists():
        return path
    tmp = path.with_suffix(".part.mp4")
    subprocess.run(
        [need_ffmpeg(), "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-g", str(2 * fps),
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-shortest", str(tmp)],
        check=True,
    )
    tmp.rename(path)
    return path


def best_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """Best wall time of ``repeats`` runs (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
