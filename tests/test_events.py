"""Segment scores -> events, on hand-made score sequences."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import WindowSettings
from pipeline.events import EventSettings, SegmentScores, detect_events, median_filter, merge_runs, runs
from pipeline.windows import window_starts

LABELS = ["dog", "bell"]


def scores(dog: list[float], bell: list[float] | None = None) -> np.ndarray:
    """(N, 3) probabilities: dog, bell, background (the rest)."""
    d = np.array(dog, float)
    b = np.zeros_like(d) if bell is None else np.array(bell, float)
    return np.stack([d, b, 1 - d - b], axis=1)


def detect(probs: np.ndarray, settings: EventSettings = EventSettings(), shares: np.ndarray | None = None,
           end: float | None = None):
    n = len(probs)
    starts = np.arange(n, dtype=float)
    ends = starts + 1
    if end is not None:
        ends[-1] = end
    shares = np.full((n, 2), 0.5) if shares is None else shares
    return detect_events(probs, shares, starts, ends, LABELS, settings)


def test_threshold_makes_one_event_with_scores_and_times() -> None:
    events = detect(scores([0.1, 0.7, 0.9, 0.6, 0.2]))
    assert len(events) == 1
    e = events[0]
    assert (e.label, e.start_s, e.end_s, e.duration_s) == ("dog", 1.0, 4.0, 3.0)
    assert e.score == pytest.approx((0.7 + 0.9 + 0.6) / 3) and e.peak_score == 0.9


def test_per_class_thresholds() -> None:
    probs = scores([0.45, 0.45, 0.0, 0.0], [0.0, 0.0, 0.35, 0.35])
    assert detect(probs) == []
    events = detect(probs, EventSettings(threshold=0.4, thresholds={"bell": 0.3}))
    assert [(e.label, e.start_s, e.end_s) for e in events] == [("dog", 0, 2), ("bell", 2, 4)]


def test_median_filter_removes_blips_and_fills_holes() -> None:
    active = np.array([0, 1, 0, 0, 1, 1, 0, 1, 1, 0, 0], bool)
    assert median_filter(active, 3).astype(int).tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0]
    assert median_filter(active, 1).tolist() == active.tolist()
    events = detect(scores([0, 0.9, 0, 0, 0.9, 0.9, 0.2, 0.9, 0.9, 0, 0]), EventSettings(median=3))
    assert [(e.start_s, e.end_s) for e in events] == [(4, 9)]
    # per-class lengths: only the bell is filtered
    probs = scores([0, 0.9, 0, 0, 0], [0, 0, 0, 0.6, 0])
    events = detect(probs, EventSettings(medians={"bell": 3}))
    assert [(e.label, e.start_s) for e in events] == [("dog", 1)]


def test_merge_gaps() -> None:
    assert merge_runs([(0, 1), (3, 4), (8, 9)], max_gap=1) == [(0, 4), (8, 9)]
    assert merge_runs([(0, 1), (3, 4)], max_gap=0) == [(0, 1), (3, 4)]
    events = detect(scores([0.9, 0.9, 0.1, 0.9, 0.1, 0.1, 0.9]), EventSettings(max_gap=1))
    assert [(e.start_s, e.end_s) for e in events] == [(0, 4), (6, 7)]


def test_events_touching_both_ends_and_the_partial_last_segment() -> None:
    events = detect(scores([0.8, 0.8, 0.1, 0.7, 0.9]), end=4.4)
    assert [(e.start_s, e.end_s) for e in events] == [(0.0, 2.0), (3.0, 4.4)]
    assert runs(np.array([1, 1, 0, 1], bool)) == [(0, 1), (3, 3)]
    assert detect(scores([0.9])) and detect(scores([0.9]))[0].end_s == 1.0


def test_min_segments_and_audio_share_weighting() -> None:
    probs = scores([0.9, 0.0, 0.6, 0.9, 0.0])
    shares = np.array([[0.2, 0.5], [0.5, 0.5], [0.0, 0.5], [1.0, 0.5], [0.5, 0.5]])
    events = detect(probs, EventSettings(min_segments=2), shares=shares)
    assert [(e.start_s, e.end_s) for e in events] == [(2, 4)]
    assert events[0].audio_share == pytest.approx((0.6 * 0.0 + 0.9 * 1.0) / 1.5)
    assert events[0].visual_share == pytest.approx(1 - events[0].audio_share)


def test_overlapping_windows_are_averaged() -> None:
    acc = SegmentScores(2)
    W = 4
    starts = window_starts(6, WindowSettings(segments=W, hop=2))
    assert starts == [0, 2]
    acc.add(0, scores([0.2, 0.2, 0.8, 0.8]), np.zeros((4, 2)))
    acc.add(2, scores([0.4, 0.4, 0.9, 0.9]), np.ones((4, 2)))
    probs, shares = acc.result()
    assert probs[:, 0].tolist() == pytest.approx([0.2, 0.2, 0.6, 0.6, 0.9, 0.9])
    assert shares[:, 0].tolist() == pytest.approx([0, 0, 0.5, 0.5, 1, 1])
    events = detect_events(probs, shares, np.arange(6.0), np.arange(6.0) + 1, LABELS)
    assert [(e.start_s, e.end_s) for e in events] == [(2, 6)]


def test_settings_validation() -> None:
    problems = EventSettings(threshold=0, median=2, thresholds={"cat": 0.5}).problems(LABELS)
    assert len(problems) == 3 and any("cat" in p for p in problems)
