"""Tiny media files for tests, written with PyAV on the fly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from sample_media.writer import audio_rate_for, write_media


def level_frames(n: int, height: int = 48, width: int = 64) -> list[np.ndarray]:
    """Frame i is a flat grey of level 20 + 20*(i % 11), so a sample tells its source frame."""
    return [np.full((height, width, 3), 20 + 20 * (i % 11), np.uint8) for i in range(n)]


def level_of(frame: np.ndarray) -> int:
    """Inverse of ``level_frames``: the source frame index modulo 11."""
    return int(round((float(frame.mean()) - 20) / 20))


def tone(duration: float, sample_rate: int, start: float = 0.0, freq: float = 1000.0,
         channels: int = 2) -> np.ndarray:
    """float32 (channels, n): silence, then a sine from ``start`` seconds on."""
    t = np.arange(int(round(duration * sample_rate))) / sample_rate
    sig = np.where(t >= start, 0.5 * np.sin(2 * np.pi * freq * t), 0.0).astype(np.float32)
    return np.stack([sig] * channels)


def av_clip(path: Path, duration: float = 3.0, fps: int = 10, sample_rate: int = 44_100,
            tone_start: float = 0.0, **kw) -> Path:
    """Video of level frames plus a tone, in the container ``path``'s extension picks."""
    rate = audio_rate_for(path, sample_rate)
    return write_media(
        path,
        frames=level_frames(int(round(duration * fps))),
        fps=fps,
        audio=tone(duration, rate, tone_start),
        sample_rate=rate,
        **kw,
    )


def cut(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def unknown_codec_mkv(dst: Path, tmp: Path) -> Path:
    """An MKV whose video codec ID no FFmpeg knows (patched from a valid H.264 MKV)."""
    src = write_media(tmp / "valid_for_patch.mkv", frames=level_frames(5), fps=5)
    data = src.read_bytes()
    assert data.count(b"V_MPEG4/ISO/AVC") == 1
    dst.write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/AVC"))
    return dst


def copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


