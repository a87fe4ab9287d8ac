"""Segments grouped into analysis windows of W segments, starting every ``hop``.

Windows start at 0, hop, 2*hop, ...; when the media ends inside a stretch no
window reached yet, one last window is aligned to the end (so it is as full as
the media allows). Scores of segments covered by several windows are averaged
downstream.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Iterator

import numpy as np

from pipeline.config import WindowSettings
from pipeline.decode import Segment


@dataclass(frozen=True, eq=False)
class Window:
    """``segments`` of one analysis window (fewer than W only when the media is shorter)."""

    index: int
    segments: tuple[Segment, ...]

    @property
    def first(self) -> int:
        return self.segments[0].index

    @property
    def start(self) -> Fraction:
        return self.segments[0].start

    @property
    def end(self) -> Fraction:
        return self.segments[-1].end

    def __len__(self) -> int:
        return len(self.segments)


def window_starts(n_segments: int, settings: WindowSettings) -> list[int]:
    """First segment of every window over ``n_segments`` segments.

    >>> window_starts(25, WindowSettings(segments=10, hop=10))
    [0, 10, 15]
    >>> window_starts(4, WindowSettings(segments=10, hop=5))
    [0]
    """
    W, hop = settings.segments, settings.hop
    starts = list(range(0, max(n_segments - W, 0) + 1, hop))
    if starts[-1] + W < n_segments:
        starts.append(n_segments - W)
    return starts


def iter_windows(segments: Iterable[Segment], settings: WindowSettings) -> Iterator[Window]:
    """Group a stream of segments into windows, holding at most W segments."""
    W, hop = settings.segments, settings.hop
    held: deque[Segment] = deque(maxlen=W)
    index = 0
    next_start = 0
    last_emitted_end = 0  # one past the last segment index already covered
    for seg in segments:
        held.append(seg)
        if seg.index == next_start + W - 1:
            yield Window(index, tuple(held))
            index += 1
            last_emitted_end = seg.index + 1
            next_start += hop
    if held and (index == 0 or held[-1].index + 1 > last_emitted_end):
        yield Window(index, tuple(held))


def segment_mask(window: Window, W: int) -> np.ndarray:
    """bool (W,): True for the real segments of a window padded to W."""
    mask = np.zeros(W, dtype=bool)
    mask[: len(window)] = True
    return mask
