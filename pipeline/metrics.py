"""Evaluation metrics, written out so their definitions are visible and tested.

- segment accuracy (AVE): the fraction of segments whose predicted class (C classes +
  background) is the annotated one;
- clip accuracy and mAP over clip-level scores;
- segment-based P/R/F1 (DCASE): per class and 1-second block (``resolution``), a block is
  active when an event overlaps it; counts are summed over classes and videos (micro);
- event-based P/R/F1 (DCASE): an estimated event matches a reference event of the same
  label when the onsets differ by at most ``collar`` and the offsets by at most
  max(collar, ``offset_ratio`` x reference length), sed_eval's default rule; each event
  matches at most once (maximum bipartite matching).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

EventTuple = tuple[str, float, float]  # (label, onset, offset)


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __iadd__(self, other: Counts) -> Counts:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        return self

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denom if denom else 0.0


def segment_accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    return float((np.asarray(pred) == np.asarray(target)).mean()) if len(target) else 0.0


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """AP: the mean of the precision at the rank of each positive (ties broken by order)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    pos = np.asarray(positive, bool)[order]
    if not pos.any():
        return float("nan")
    hits = np.cumsum(pos)
    return float((hits[pos] / (np.flatnonzero(pos) + 1)).mean())


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """mAP over the classes that have a positive; scores (V, C), targets (V,) class indices."""
    aps = [average_precision(scores[:, c], targets == c) for c in range(scores.shape[1])]
    aps = [a for a in aps if not math.isnan(a)]
    return float(np.mean(aps)) if aps else 0.0


def _blocks(events: Sequence[EventTuple], label: str, n: int, resolution: float) -> np.ndarray:
    active = np.zeros(n, bool)
    for lab, on, off in events:
        if lab == label and off > on:
            first = int(math.floor(on / resolution))
            last = int(math.ceil(off / resolution)) - 1  # a block overlapped by a positive length
            active[max(first, 0) : min(last, n - 1) + 1] = True
    return active


def segment_based(ref: Sequence[EventTuple], est: Sequence[EventTuple], duration: float,
                  labels: Sequence[str], resolution: float = 1.0) -> dict[str, Counts]:
    """Per-class block counts for one file."""
    n = max(1, int(math.ceil(duration / resolution - 1e-9)))
    out = {}
    for label in labels:
        r, e = _blocks(ref, label, n, resolution), _blocks(est, label, n, resolution)
        out[label] = Counts(int((r & e).sum()), int((e & ~r).sum()), int((r & ~e).sum()))
    return out


def _max_matching(valid: np.ndarray) -> int:
    """Size of a maximum matching in a bipartite graph given as a (R, E) bool matrix (Kuhn)."""
    match_of_est = [-1] * valid.shape[1]

    def augment(r: int, seen: list[bool]) -> bool:
        for e in np.flatnonzero(valid[r]):
            if not seen[e]:
                seen[e] = True
                if match_of_est[e] == -1 or augment(match_of_est[e], seen):
                    match_of_est[e] = r
                    return True
        return False

    return sum(augment(r, [False] * valid.shape[1]) for r in range(valid.shape[0]))


def event_based(ref: Sequence[EventTuple], est: Sequence[EventTuple], labels: Sequence[str],
                collar: float = 0.2, offset_ratio: float = 0.5) -> dict[str, Counts]:
    """Per-class event counts for one file."""
    out = {}
    for label in labels:
        r = [(on, off) for lab, on, off in ref if lab == label]
        e = [(on, off) for lab, on, off in est if lab == label]
        valid = np.zeros((len(r), len(e)), bool)
        for i, (ron, roff) in enumerate(r):
            off_collar = max(collar, offset_ratio * (roff - ron))
            for j, (eon, eoff) in enumerate(e):
                valid[i, j] = abs(ron - eon) <= collar + 1e-9 and abs(roff - eoff) <= off_collar + 1e-9
        tp = _max_matching(valid) if valid.size else 0
        out[label] = Counts(tp, len(e) - tp, len(r) - tp)
    return out
