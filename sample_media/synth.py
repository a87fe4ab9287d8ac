"""The synthetic event classes: how each one looks and how it sounds.

Every class has a shape-and-colour appearance and a characteristic sound, so
that a model must see *and* hear it; neither alone tells where the event is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Shape = Callable[[np.ndarray, np.ndarray], np.ndarray]
Sound = Callable[[int, int, np.random.Generator], np.ndarray]


def _circle(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x**2 + y**2 <= 1.0


def _square(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (np.abs(x) <= 0.8) & (np.abs(y) <= 0.8)


def _triangle(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (y <= 0.9) & (np.abs(x) <= (y + 0.9) / 2.0)


def _diamond(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.abs(x) + np.abs(y) <= 1.0


def _ring(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r2 = x**2 + y**2
    return (r2 <= 1.0) & (r2 >= 0.35)


def _cross(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return ((np.abs(x) <= 0.3) & (np.abs(y) <= 1.0)) | ((np.abs(y) <= 0.3) & (np.abs(x) <= 1.0))


def _saltire(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return ((np.abs(x - y) <= 0.4) | (np.abs(x + y) <= 0.4)) & (np.abs(x) <= 0.9) & (np.abs(y) <= 0.9)


def _stripes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (np.abs(x) <= 0.9) & (np.abs(y) <= 0.9) & (np.floor((x + 1.0) * 3.0) % 2 == 0)


def _t(n: int, sr: int) -> np.ndarray:
    return np.arange(n) / sr


def _bell(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(n, sr)
    phase = (t + rng.uniform(0, 0.5)) % 0.5  # struck every half second
    env = np.exp(-phase * 9.0)
    f0 = 880.0 * rng.uniform(0.97, 1.03)
    tone = sum(a * np.sin(2 * np.pi * f0 * m * t) for a, m in ((1.0, 1.0), (0.5, 2.5), (0.3, 4.1)))
    return env * tone


def _drum(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(n, sr)
    phase = (t + rng.uniform(0, 0.25)) % 0.25  # four hits a second
    # a sine whose pitch falls from 140 to 60 Hz, restarted at each hit (integrated pitch)
    hit_phase = 2 * np.pi * (60.0 * phase + 80.0 * (1 - np.exp(-phase * 30.0)) / 30.0)
    return np.exp(-phase * 18.0) * np.sin(hit_phase) * 1.4


def _siren(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(n, sr)
    rate = rng.uniform(1.2, 1.8)
    inst = 1000.0 + 300.0 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.28))
    return np.sin(2 * np.pi * np.cumsum(inst) / sr)


def _bird(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(n, sr)
    period = 0.2
    phase = (t + rng.uniform(0, period)) % period
    on = phase < 0.07
    inst = 3000.0 + 2000.0 * (phase / 0.07)
    sig = np.sin(2 * np.pi * np.cumsum(inst) / sr)
    return sig * on * np.sin(np.pi * np.clip(phase / 0.07, 0, 1))


def _engine(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(n, sr)
    f0 = 85.0 * rng.uniform(0.95, 1.05)
    buzz = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 9))
    return buzz * (0.7 + 0.3 * np.sin(2 * np.pi * 8.0 * t)) * 0.8


def _whistle(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(n, sr)
    inst = 2400.0 * rng.uniform(0.97, 1.03) + 60.0 * np.sin(2 * np.pi * 5.0 * t)
    return np.sin(2 * np.pi * np.cumsum(inst) / sr) * 0.8


def _dog(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(n, sr)
    phase = (t + rng.uniform(0, 0.5)) % 0.5
    on = phase < 0.15
    f0 = 420.0 * rng.uniform(0.9, 1.1)
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    noise = rng.standard_normal(n) * 0.3
    return (tone + noise) * on * np.sin(np.pi * np.clip(phase / 0.15, 0, 1))


def _rain(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(n)
    hiss = np.diff(noise, prepend=0.0) * 0.5  # first difference: a high-passed hiss
    drops = (rng.random(n) < 30.0 / sr) * rng.uniform(0.5, 1.5, n)
    return hiss + np.convolve(drops, np.exp(-np.arange(200) / 20.0), mode="same") * 0.5


@dataclass(frozen=True)
class EventClass:
    """One synthetic class: its label, appearance and sound."""

    label: str
    shape: Shape
    colour: tuple[int, int, int]
    sound: Sound


CLASSES: tuple[EventClass, ...] = (
    EventClass("bell", _circle, (240, 200, 30), _bell),
    EventClass("drum", _square, (220, 40, 40), _drum),
    EventClass("siren", _triangle, (40, 80, 230), _siren),
    EventClass("bird", _diamond, (40, 190, 60), _bird),
    EventClass("engine", _ring, (150, 150, 150), _engine),
    EventClass("whistle", _cross, (40, 220, 220), _whistle),
    EventClass("dog", _saltire, (230, 60, 220), _dog),
    EventClass("rain", _stripes, (245, 245, 245), _rain),
)
LABELS: tuple[str, ...] = tuple(c.label for c in CLASSES)
BY_LABEL = {c.label: c for c in CLASSES}


def draw(canvas: np.ndarray, cls: EventClass, cx: float, cy: float, radius: float,
         colour: tuple[int, int, int]) -> None:
    """Draw ``cls``'s shape centred at (cx, cy) pixels, in place on an (H, W, 3) canvas."""
    H, W, _ = canvas.shape
    x0, x1 = max(int(cx - radius), 0), min(int(cx + radius) + 1, W)
    y0, y1 = max(int(cy - radius), 0), min(int(cy + radius) + 1, H)
    if x1 <= x0 or y1 <= y0:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    # shape coordinates in [-1, 1], y pointing up
    mask = cls.shape((xs - cx) / radius, (cy - ys) / radius)
    canvas[y0:y1, x0:x1][mask] = colour
