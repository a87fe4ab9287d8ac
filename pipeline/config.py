"""Frozen settings for decoding and windowing, validated all at once.

Settings come from dataclass defaults, then the model's input contracts, then
explicit overrides; ``validate`` collects every problem before any work starts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

DEFAULT_MODEL = "avfuse-synthetic-v2.pt"


def default_model_path() -> Path:
    """The bundled model (trained on the synthetic sample classes); here, not in ``pipeline.model``,
    so that finding it does not import torch."""
    return Path(str(resources.files("pipeline") / "assets" / DEFAULT_MODEL))


# Analysis windows per model call unless told otherwise. With ResNet-18 at 224 px on an H100 the
# model alone scored 6.4k video-s/s at 16 windows, 20.0k at 64 and 21.8k at 256; on 2 CPU cores
# 8 and 16 were alike (benchmarks/pipeline.py --batch-size 16,64,256)
BATCH_WINDOWS = {"cpu": 16, "cuda": 64}


def default_batch_windows(device: str) -> int:
    """``device``: "cpu", "cuda" or "cuda:N"."""
    return BATCH_WINDOWS["cuda" if device.startswith("cuda") else "cpu"]


def as_fraction(value: Any, name: str, problems: list[str]) -> Fraction | None:
    """Parse ints, floats, "1/2" strings or Fractions exactly; record a problem otherwise."""
    try:
        if isinstance(value, float):
            return Fraction(value).limit_denominator(1_000_000)
        return Fraction(value)
    except (TypeError, ValueError, ZeroDivisionError):
        problems.append(f"{name}={value!r} is not a number")
        return None


@dataclass(frozen=True)
class DecodeSettings:
    """How a file becomes arrays.

    >>> DecodeSettings(fps=Fraction(2), frame_size=64).frames_per_segment
    2
    """

    fps: Fraction = Fraction(4)  # frames sampled per second of media
    frame_size: int = 112  # S: every sampled frame is resized to S x S RGB
    sample_rate: int = 16_000  # audio is downmixed to mono and resampled to this rate
    segment_s: Fraction = Fraction(1)  # length of one segment, the unit of labelling
    keyframes_only: bool = False  # fast mode: decode keyframes only (frames jump in time)
    decode_video: bool = True  # False skips the video stream entirely
    decode_audio: bool = True  # False skips the audio stream entirely
    threads: int = 0  # video decoder threads; 0 = one per CPU core this process may use

    @property
    def frames_per_segment(self) -> int:
        return int(self.fps * self.segment_s)

    @property
    def samples_per_segment(self) -> int:
        return int(self.sample_rate * self.segment_s)

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.segment_s <= 0:
            out.append(f"segment_s must be > 0 (got {float(self.segment_s)})")
        if self.fps <= 0:
            out.append(f"fps must be > 0 (got {float(self.fps)})")
        elif self.segment_s > 0 and (self.fps * self.segment_s).denominator != 1:
            out.append(
                f"fps x segment_s must be a whole number of frames per segment "
                f"(fps={self.fps}, segment_s={self.segment_s})"
            )
        if not 8 <= self.frame_size <= 1024:
            out.append(f"frame_size must be between 8 and 1024 pixels (got {self.frame_size})")
        if not 4000 <= self.sample_rate <= 96_000:
            out.append(f"sample_rate must be between 4000 and 96000 Hz (got {self.sample_rate})")
        elif self.segment_s > 0 and (self.sample_rate * self.segment_s).denominator != 1:
            out.append("sample_rate x segment_s must be a whole number of samples per segment")
        if self.threads < 0:
            out.append(f"threads must be >= 0 (got {self.threads})")
        if not (self.decode_video or self.decode_audio):
            out.append("at least one of decode_video, decode_audio must be true")
        return out


@dataclass(frozen=True)
class WindowSettings:
    """Windows of ``segments`` consecutive segments, starting every ``hop`` segments."""

    segments: int = 10  # W
    hop: int = 10  # hop < W makes windows overlap; overlapping scores are averaged

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.segments < 1:
            out.append(f"window segments must be >= 1 (got {self.segments})")
        if not 1 <= self.hop <= max(self.segments, 1):
            out.append(f"hop must be between 1 and the window length {self.segments} (got {self.hop})")
        return out


def validate(*settings: Any) -> None:
    """Raise one ``ConfigError`` listing every problem in every settings object."""
    problems: list[str] = []
    for s in settings:
        problems.extend(s.problems())
    if problems:
        raise ConfigError(problems)


def override(settings: Any, **changes: Any) -> Any:
    """Copy ``settings`` with the non-None ``changes`` applied; unknown names are errors."""
    known = {f.name for f in fields(settings)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ConfigError(
            [f"unknown setting {name!r}; known: {', '.join(sorted(known))}" for name in unknown]
        )
    return replace(settings, **{k: v for k, v in changes.items() if v is not None})
