"""Training data: decoded clips cached on disk, cut into labelled windows.

Decoding is the slow part of training, so every decoded clip is stored once (one
``.npz`` per clip and decode setting, keyed by path, size and mtime); later epochs, other
fusion variants and later runs reuse it. Training clips are held whole in memory as
arrays (frames uint8, audio float16), which suits clip-sized training data, not
hour-long recordings.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pipeline.config import DecodeSettings, WindowSettings
from pipeline.decode import StreamingDecoder, available_cpus
from pipeline.windows import window_starts

IGNORE = -100  # target of padded segments / windows without a clip label


@dataclass
class DecodedClip:
    """All segments of one clip. frames uint8 (N, F, S, S, 3); audio float16 (N, samples)."""

    frames: np.ndarray
    audio: np.ndarray
    has_video: np.ndarray  # (N,) bool
    has_audio: np.ndarray
    starts: np.ndarray  # (N,) float64 seconds
    ends: np.ndarray
    truncated: bool


def cache_key(path: Path, settings: DecodeSettings) -> str:
    st = path.stat()
    fields = {k: str(v) for k, v in asdict(settings).items() if k != "threads"}
    text = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{sorted(fields.items())}"
    return hashlib.sha1(text.encode()).hexdigest()


def decode_clip(path: Path, settings: DecodeSettings) -> DecodedClip:
    segs = []
    with StreamingDecoder(path, settings) as dec:
        segs = list(dec.segments())
        truncated = dec.report.truncated
    return DecodedClip(
        frames=np.stack([s.frames for s in segs]),
        audio=np.stack([s.audio for s in segs]).astype(np.float16),
        has_video=np.array([s.has_video for s in segs]),
        has_audio=np.array([s.has_audio for s in segs]),
        starts=np.array([s.start_s for s in segs]),
        ends=np.array([s.end_s for s in segs]),
        truncated=truncated,
    )


def load_or_decode(path: Path, settings: DecodeSettings, cache_dir: Path | None) -> DecodedClip:
    """The decoded clip, from ``cache_dir`` when it was decoded before with the same settings."""
    if cache_dir is None:
        return decode_clip(path, settings)
    file = cache_dir / f"{cache_key(path, settings)}.npz"
    if file.is_file():
        try:
            with np.load(file) as z:
                return DecodedClip(**{k: z[k] for k in z.files if k != "truncated"},
                                   truncated=bool(z["truncated"]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            file.unlink(missing_ok=True)  # a cache file cut short by a kill: decode again
    clip = decode_clip(path, settings)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **{k: v for k, v in asdict(clip).items()})
    tmp.replace(file)
    return clip


def _decode_job(args: tuple[Path, DecodeSettings, Path | None]) -> DecodedClip:
    return load_or_decode(*args)


def decode_many(paths: Sequence[Path], settings: DecodeSettings, cache_dir: Path | None,
                workers: int = 0, on_done: Callable[[int], None] | None = None) -> list[DecodedClip]:
    """Decode (or load) every clip, in parallel processes with one decoder thread each."""
    workers = workers or available_cpus()
    one_thread = replace(settings, threads=1)
    jobs = [(Path(p), one_thread, cache_dir) for p in paths]
    if workers <= 1 or len(jobs) <= 1:
        out = []
        for job in jobs:
            out.append(_decode_job(job))
            if on_done:
                on_done(1)
        return out
    with ProcessPoolExecutor(max_workers=workers) as pool:
        out = []
        for clip in pool.map(_decode_job, jobs, chunksize=4):
            out.append(clip)
            if on_done:
                on_done(1)
        return out


@dataclass
class WindowSet:
    """Labelled windows, padded to W segments (M windows).

    frames uint8 (M, W, F, S, S, 3); audio float16 (M, W, N); visual_present / audio_present
    bool (M, W); segment_target int64 (M, W), IGNORE on padding; clip_target int64 (M,),
    IGNORE for windows without an event; clip_index int64 (M,): the clip each came from;
    first_segment int64 (M,): the clip segment each window starts at.
    """

    frames: np.ndarray
    audio: np.ndarray
    visual_present: np.ndarray
    audio_present: np.ndarray
    segment_target: np.ndarray
    clip_target: np.ndarray
    clip_index: np.ndarray
    first_segment: np.ndarray

    def __len__(self) -> int:
        return len(self.clip_index)

    def subset(self, rows: np.ndarray) -> WindowSet:
        return WindowSet(**{k: v[rows] for k, v in self.__dict__.items()})


def build_windows(clips: Sequence[DecodedClip], targets: Sequence[np.ndarray], window: WindowSettings,
                  num_classes: int) -> WindowSet:
    """Cut each clip into windows (as inference does) with per-segment and per-window targets."""
    W = window.segments
    rows: list[tuple[int, int]] = [
        (i, s) for i, clip in enumerate(clips) for s in window_starts(len(clip.starts), window)
    ]
    M = len(rows)
    c0 = clips[0]
    frames = np.zeros((M, W, *c0.frames.shape[1:]), np.uint8)
    audio = np.zeros((M, W, c0.audio.shape[1]), np.float16)
    vp = np.zeros((M, W), bool)
    ap = np.zeros((M, W), bool)
    seg_t = np.full((M, W), IGNORE, np.int64)
    clip_t = np.full(M, IGNORE, np.int64)
    for m, (i, s) in enumerate(rows):
        clip, t = clips[i], targets[i]
        n = min(W, len(clip.starts) - s)
        frames[m, :n] = clip.frames[s : s + n]
        audio[m, :n] = clip.audio[s : s + n]
        vp[m, :n], ap[m, :n] = clip.has_video[s : s + n], clip.has_audio[s : s + n]
        seg_t[m, :n] = t[s : s + n]
        fg = t[s : s + n][t[s : s + n] < num_classes]
        if fg.size:
            clip_t[m] = np.bincount(fg, minlength=num_classes).argmax()
    return WindowSet(frames, audio, vp, ap, seg_t, clip_t, np.array([r[0] for r in rows], np.int64),
                     np.array([r[1] for r in rows], np.int64))
