"""What a decode pass yields: segments of arrays, and a report on how it went."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from pipeline.errors import TruncatedMediaError


@dataclass(frozen=True, eq=False)
class Segment:
    """One segment ``[start, end)`` of decoded media (seconds from the start of the file).

    ``frames``: uint8 (F, S, S, 3) RGB, F = fps x segment_s; all zero when ``has_video`` is false.
    ``frame_times``: float64 (F,) time of the source frame behind each sample; NaN where none.
    ``audio``: float32 (N,) mono, N = sample_rate x segment_s; zero past ``end`` and where
    the file has no sound.
    The last segment of a file is partial: its ``end`` is the true end of the media.
    """

    index: int
    start: Fraction
    end: Fraction
    frames: np.ndarray
    frame_times: np.ndarray
    audio: np.ndarray
    has_video: bool
    has_audio: bool

    @property
    def start_s(self) -> float:
        return float(self.start)

    @property
    def end_s(self) -> float:
        return float(self.end)


@dataclass(frozen=True)
class DecodeReport:
    """How decoding went, available once ``segments()`` is exhausted."""

    path: str
    declared_s: Fraction | None  # duration the container declares
    decoded_s: Fraction  # end of the last decoded frame or sample
    n_segments: int
    video_frames_decoded: int
    frames_sampled: int
    audio_samples: int
    decode_errors: int
    truncated: bool
    detail: str = ""

    def raise_if_truncated(self) -> None:
        if self.truncated:
            raise TruncatedMediaError(
                self.path,
                self.detail,
                decoded_s=float(self.decoded_s),
                expected_s=None if self.declared_s is None else float(self.declared_s),
            )
