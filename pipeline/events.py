"""Segment scores -> events: overlap averaging, thresholds, median filtering, merging.

Scores are per segment over C classes + background (softmax probabilities). A class is
active in a segment when its probability reaches its threshold; the activity is median
filtered (per-class length, in segments), runs of activity become events, and runs of
the same label separated by at most ``max_gap`` segments are merged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class EventSettings:
    """How segment scores become events.

    >>> EventSettings(threshold=0.4, thresholds={"dog": 0.6}).threshold_for("dog")
    0.6
    """

    threshold: float = 0.5  # default probability a segment needs for a class to be active
    thresholds: dict[str, float] = field(default_factory=dict)  # per-class overrides
    median: int = 1  # default median filter length in segments (odd; 1 = off)
    medians: dict[str, int] = field(default_factory=dict)  # per-class overrides
    max_gap: int = 0  # merge same-label events separated by at most this many segments
    min_segments: int = 1  # drop events shorter than this

    def threshold_for(self, label: str) -> float:
        return float(self.thresholds.get(label, self.threshold))

    def median_for(self, label: str) -> int:
        return int(self.medians.get(label, self.median))

    def problems(self, labels: Sequence[str] = ()) -> list[str]:
        out = []
        for name, thr in [("threshold", self.threshold), *self.thresholds.items()]:
            if not 0.0 < thr <= 1.0:
                out.append(f"threshold for {name} must be in (0, 1], got {thr}")
        for name, k in [("median", self.median), *self.medians.items()]:
            if k < 1 or k % 2 == 0:
                out.append(f"median filter length for {name} must be odd and >= 1, got {k}")
        if labels:
            unknown = sorted((set(self.thresholds) | set(self.medians)) - set(labels))
            if unknown:
                out.append(f"per-class settings name unknown labels {unknown}; labels: {list(labels)}")
        if self.max_gap < 0 or self.min_segments < 1:
            out.append("max_gap must be >= 0 and min_segments >= 1")
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EventSettings:
        return cls(**{k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()})


@dataclass(frozen=True)
class Event:
    """One detected event; times in seconds from the start of the file."""

    label: str
    start_s: float
    end_s: float
    score: float  # mean probability over the event's segments
    peak_score: float
    audio_share: float  # how much sound drove it (0..1); visual_share = 1 - audio_share
    first_segment: int
    last_segment: int

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def visual_share(self) -> float:
        return 1.0 - self.audio_share


class SegmentScores:
    """Accumulates window predictions per segment; overlapping windows are averaged.

    probs: (N, C+1) softmax over classes + background; shares: (N, C) audio share per class.
    """

    def __init__(self, num_classes: int) -> None:
        self.C = num_classes
        self._probs: list[np.ndarray] = []
        self._shares: list[np.ndarray] = []
        self._counts: list[int] = []

    def _grow(self, n: int) -> None:
        while len(self._counts) < n:
            self._probs.append(np.zeros(self.C + 1))
            self._shares.append(np.zeros(self.C))
            self._counts.append(0)

    def add(self, first_segment: int, probs: np.ndarray, shares: np.ndarray) -> None:
        """Add one window's (W', C+1) probabilities and (W', C) shares starting at ``first_segment``."""
        self._grow(first_segment + len(probs))
        for i in range(len(probs)):
            k = first_segment + i
            self._probs[k] = self._probs[k] + probs[i]
            self._shares[k] = self._shares[k] + shares[i]
            self._counts[k] += 1

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._counts:
            return np.zeros((0, self.C + 1)), np.zeros((0, self.C))
        counts = np.maximum(np.array(self._counts, dtype=np.float64), 1.0)[:, None]
        if (np.array(self._counts) == 0).any():
            raise ValueError("some segments were never scored")
        return np.stack(self._probs) / counts, np.stack(self._shares) / counts


def median_filter(active: np.ndarray, length: int) -> np.ndarray:
    """Median of a boolean sequence over ``length`` (odd) segments; edges repeat the end values."""
    if length <= 1 or active.size == 0:
        return active.copy()
    half = length // 2
    padded = np.pad(active.astype(np.float32), half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, length)
    return windows.mean(axis=1) > 0.5


def runs(active: np.ndarray) -> list[tuple[int, int]]:
    """[first, last] index pairs of the True runs of a boolean sequence."""
    if active.size == 0:
        return []
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


def merge_runs(spans: list[tuple[int, int]], max_gap: int) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in spans:
        if merged and first - merged[-1][1] - 1 <= max_gap:
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def detect_events(
    probs: np.ndarray,
    shares: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    labels: Sequence[str],
    settings: EventSettings = EventSettings(),
) -> list[Event]:
    """Events from per-segment scores, sorted by start time then label.

    probs (N, C+1), shares (N, C), starts/ends (N,) seconds of each segment.
    """
    events: list[Event] = []
    for c, label in enumerate(labels):
        p = probs[:, c]
        active = median_filter(p >= settings.threshold_for(label), settings.median_for(label))
        for first, last in merge_runs(runs(active), settings.max_gap):
            if last - first + 1 < settings.min_segments:
                continue
            span = p[first : last + 1]
            weights = np.maximum(span, 1e-9)
            share = float(np.average(shares[first : last + 1, c], weights=weights))
            events.append(Event(
                label=label,
                start_s=float(starts[first]),
                end_s=float(ends[last]),
                score=float(span.mean()),
                peak_score=float(span.max()),
                audio_share=share,
                first_segment=first,
                last_segment=last,
            ))
    events.sort(key=lambda e: (e.start_s, e.label))
    return events
