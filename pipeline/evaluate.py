"""``avfuse eval``: a model against annotated videos, through the same path as ``detect``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline.annotations import clip_label, match_videos, read_annotations, segment_targets
from pipeline.detect import analyse
from pipeline.inference import Predictor, VideoScores
from pipeline.metrics import Counts, event_based, mean_average_precision, segment_based
from pipeline.model import AVModel


@dataclass
class ClassScores:
    segment_f1: float
    segment_precision: float
    segment_recall: float
    event_f1: float
    event_precision: float
    event_recall: float
    n_reference_events: int


@dataclass
class EvalReport:
    n_videos: int
    n_segments: int
    segment_accuracy: float
    clip_accuracy: float
    clip_map: float
    segment_f1: float
    segment_precision: float
    segment_recall: float
    event_f1: float
    event_precision: float
    event_recall: float
    collar_s: float
    per_class: dict[str, ClassScores] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Scorer:
    """Accumulates per-video predictions against annotations into an ``EvalReport``."""

    def __init__(self, labels: list[str], collar: float = 0.2) -> None:
        self.labels, self.collar = labels, collar
        self.correct = self.total = 0
        self.clip_scores: list[np.ndarray] = []
        self.clip_targets: list[int] = []
        self.seg = {k: Counts() for k in labels}
        self.evt = {k: Counts() for k in labels}
        self.n_ref = {k: 0 for k in labels}
        self.n_videos = 0

    def add(self, annotations, scores: VideoScores) -> None:  # noqa: ANN001 - tuple of Annotation
        target = segment_targets(annotations, scores.starts, scores.ends, self.labels)
        self.correct += int((scores.probs.argmax(axis=1) == target).sum())
        self.total += len(target)
        clip_probs = np.mean([c.probs for c in scores.clips], axis=0)
        self.clip_scores.append(clip_probs)
        self.clip_targets.append(clip_label(annotations, self.labels))
        ref = [(a.label, a.onset, a.offset) for a in annotations]
        est = [(e.label, e.start_s, e.end_s) for e in scores.events]
        duration = float(scores.ends[-1]) if len(scores.ends) else 0.0
        for label, counts in segment_based(ref, est, duration, self.labels).items():
            self.seg[label] += counts
        for label, counts in event_based(ref, est, self.labels, self.collar).items():
            self.evt[label] += counts
        for a in annotations:
            self.n_ref[a.label] += 1
        self.n_videos += 1

    def report(self) -> EvalReport:
        seg_all, evt_all = Counts(), Counts()
        for k in self.labels:
            seg_all += self.seg[k]
            evt_all += self.evt[k]
        scores = np.stack(self.clip_scores) if self.clip_scores else np.zeros((0, len(self.labels)))
        targets = np.array(self.clip_targets)
        per_class = {
            k: ClassScores(self.seg[k].f1, self.seg[k].precision, self.seg[k].recall,
                           self.evt[k].f1, self.evt[k].precision, self.evt[k].recall, self.n_ref[k])
            for k in self.labels
        }
        return EvalReport(
            n_videos=self.n_videos, n_segments=self.total,
            segment_accuracy=self.correct / max(self.total, 1),
            clip_accuracy=float((scores.argmax(axis=1) == targets).mean()) if len(targets) else 0.0,
            clip_map=mean_average_precision(scores, targets) if len(targets) else 0.0,
            segment_f1=seg_all.f1, segment_precision=seg_all.precision, segment_recall=seg_all.recall,
            event_f1=evt_all.f1, event_precision=evt_all.precision, event_recall=evt_all.recall,
            collar_s=self.collar, per_class=per_class,
        )


def evaluate(model: AVModel, videos: str | Path, annotations: str | Path, *, device: str = "auto",
             collar: float = 0.2, on_video: Callable[[int], None] | None = None) -> EvalReport:
    """Run ``model`` on every annotated video and score it; label mismatches are refused up front."""
    ann = read_annotations(annotations)
    ann.check_labels(model.labels)
    files = match_videos(ann, videos)
    predictor = Predictor(model, device=device)
    scorer = Scorer(model.labels, collar)
    for name, path in files.items():
        result = analyse(path, model, predictor)
        scorer.add(ann.videos[name], result.scores)
        if on_video:
            on_video(1)
    return scorer.report()
