"""Input contracts: what an encoder expects, published so the pipeline hard-codes none of it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


@dataclass(frozen=True)
class VisualContract:
    """Frames in: uint8 RGB ``(B, F, S, S, 3)``; tokens out: ``(B, tokens, dim)``."""

    fps: Fraction  # frames per second of media to sample
    frame_size: int  # S
    mean: tuple[float, float, float]  # per-channel normalisation of [0, 1] pixels
    std: tuple[float, float, float]
    dim: int  # token width
    tokens: int  # tokens per segment

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VisualContract:
        return cls(
            fps=Fraction(d["fps"]),
            frame_size=int(d["frame_size"]),
            mean=tuple(d["mean"]),
            std=tuple(d["std"]),
            dim=int(d["dim"]),
            tokens=int(d["tokens"]),
        )


@dataclass(frozen=True)
class AudioContract:
    """Waveform in: float32 mono ``(B, N)`` at ``sample_rate``; tokens out: ``(B, tokens, dim)``."""

    sample_rate: int
    n_fft: int
    win_length: int
    hop_length: int
    n_mels: int
    f_min: float
    f_max: float
    dim: int
    tokens: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AudioContract:
        return cls(**{k: type(getattr(_AUDIO_EXAMPLE, k))(v) for k, v in d.items()})


_AUDIO_EXAMPLE = AudioContract(16000, 512, 512, 160, 64, 50.0, 8000.0, 128, 4)
