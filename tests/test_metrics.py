"""Metrics against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.metrics import (
    Counts,
    average_precision,
    event_based,
    mean_average_precision,
    segment_accuracy,
    segment_based,
)

LABELS = ["dog", "bell"]


def test_segment_accuracy() -> None:
    assert segment_accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])) == 0.75


def test_average_precision_by_hand() -> None:
    # ranking: pos, neg, pos, neg -> precisions at positives 1/1 and 2/3
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 0, 1, 0])) == pytest.approx((1 + 2 / 3) / 2)
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    # class 0: positives rows 0, 2 ranked 1st, 2nd -> AP 1; class 1: positive row 1 ranked 1st -> AP 1
    assert mean_average_precision(scores, np.array([0, 1, 0])) == 1.0
    # class 0 positives rows 0,1 (scores .9,.2; row 2 .6 ranks 2nd) -> (1 + 2/3)/2; class 1 row 2: .4 ranks 2nd -> 1/2
    assert mean_average_precision(scores, np.array([0, 0, 1])) == pytest.approx(((1 + 2 / 3) / 2 + 0.5) / 2)


def test_segment_based_by_hand() -> None:
    ref = [("dog", 1.0, 3.0), ("bell", 5.5, 6.2)]
    est = [("dog", 2.0, 4.5), ("bell", 0.0, 0.5)]
    c = segment_based(ref, est, duration=8.0, labels=LABELS)
    # dog: ref blocks {1,2}, est blocks {2,3,4} -> TP 1 (block 2), FP 2, FN 1
    assert (c["dog"].tp, c["dog"].fp, c["dog"].fn) == (1, 2, 1)
    # bell: ref blocks {5,6}, est block {0} -> TP 0, FP 1, FN 2
    assert (c["bell"].tp, c["bell"].fp, c["bell"].fn) == (0, 1, 2)
    total = Counts()
    for v in c.values():
        total += v
    assert total.f1 == pytest.approx(2 * 1 / (2 * 1 + 3 + 3))


def test_event_based_collars_by_hand() -> None:
    ref = [("dog", 1.0, 3.0), ("dog", 5.0, 9.0), ("bell", 2.0, 2.5)]
    est = [
        ("dog", 1.15, 3.2),  # onset within 0.2, offset within 0.2 -> match
        ("dog", 5.3, 9.0),  # onset 0.3 off -> no match
        ("bell", 2.1, 2.9),  # offset 0.4 off; collar max(0.2, 0.5*0.5=0.25) -> no match
        ("bell", 2.0, 2.6),  # match
    ]
    c = event_based(ref, est, LABELS, collar=0.2)
    assert (c["dog"].tp, c["dog"].fp, c["dog"].fn) == (1, 1, 1)
    assert (c["bell"].tp, c["bell"].fp, c["bell"].fn) == (1, 1, 0)
    # a long reference tolerates an offset error of half its length
    c = event_based([("dog", 0.0, 4.0)], [("dog", 0.1, 5.9)], LABELS)
    assert c["dog"].tp == 1


def test_event_matching_is_one_to_one_and_maximal() -> None:
    # est A fits both refs, est B only the first: a greedy match of A to the first ref would lose one
    ref = [("dog", 0.0, 1.0), ("dog", 0.1, 1.1)]
    est = [("dog", 0.05, 1.05), ("dog", 0.0, 0.9)]
    c = event_based(ref, est, LABELS, collar=0.2)
    assert (c["dog"].tp, c["dog"].fp, c["dog"].fn) == (2, 0, 0)
    c = event_based([("dog", 0.0, 1.0)], [("dog", 0.0, 1.0), ("dog", 0.0, 1.0)], LABELS)
    assert (c["dog"].tp, c["dog"].fp) == (1, 1)


def test_counts() -> None:
    c = Counts(3, 1, 2)
    assert (c.precision, c.recall, c.f1) == (0.75, 0.6, pytest.approx(6 / 9))
    assert Counts().f1 == 0.0
