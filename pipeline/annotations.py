"""Labelled data: AVE and DCASE annotation files, matched to the videos in a folder.

AVE (``Annotations.txt``): ``Category&VideoID&Quality&StartTime&EndTime`` per line, a
header line of those names optional; the video is ``VideoID.*`` in the folder.
DCASE event list (TSV): ``filename<TAB>onset<TAB>offset<TAB>event_label``, header
optional; the video is ``filename`` in the folder (or a file with that stem).
The format is detected from the file's content.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.errors import AnnotationError

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".flv",
                    ".wmv", ".3gp", ".ogv", ".m4a", ".wav", ".mp3", ".flac", ".ogg", ".opus")
MAX_REPORTED = 10


@dataclass(frozen=True)
class Annotation:
    """One labelled span of one video, in seconds."""

    video: str  # the AVE VideoID, or the DCASE filename
    label: str
    onset: float
    offset: float


@dataclass(frozen=True)
class AnnotationSet:
    """Every annotation of a file, grouped by video, in file order."""

    path: str
    format: str  # "ave" or "dcase"
    videos: dict[str, tuple[Annotation, ...]]

    @property
    def labels(self) -> list[str]:
        """The distinct labels, sorted (so that two files with the same classes agree)."""
        return sorted({a.label for anns in self.videos.values() for a in anns})

    def check_labels(self, known: Sequence[str]) -> None:
        unknown = sorted(set(self.labels) - set(known))
        if unknown:
            raise AnnotationError(
                f"{self.path}: labels {unknown} are not among the model's labels {list(known)}"
            )


def _detect_format(lines: list[str], path: Path) -> str:
    for line in lines:
        if not line.strip():
            continue
        if line.count("&") >= 4 and "\t" not in line:
            return "ave"
        if line.count("\t") >= 3:
            return "dcase"
        raise AnnotationError(
            f"{path}:1: cannot tell the format: expected AVE 'Category&VideoID&Quality&StartTime&EndTime' "
            f"or DCASE 'filename<TAB>onset<TAB>offset<TAB>event_label', got {line.strip()[:80]!r}"
        )
    raise AnnotationError(f"{path}: the annotation file is empty")


def read_annotations(path: str | Path) -> AnnotationSet:
    """Parse an AVE or DCASE annotation file; every malformed line is reported (up to 10)."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file not found")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    fmt = _detect_format(lines, path)
    videos: dict[str, list[Annotation]] = {}
    problems: list[str] = []
    for n, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if fmt == "ave":
            parts = line.split("&")
            if n == 1 and parts[0].strip() == "Category":
                continue
            if len(parts) != 5:
                problems.append(f"line {n}: expected 5 '&'-separated fields, got {len(parts)}")
                continue
            label, video, _quality, start, end = (p.strip() for p in parts)
        else:
            parts = line.split("\t")
            if n == 1 and parts[0].strip() == "filename":
                continue
            if len(parts) != 4:
                problems.append(f"line {n}: expected 4 tab-separated fields, got {len(parts)}")
                continue
            video, start, end, label = (p.strip() for p in parts)
        try:
            onset, offset = float(start), float(end)
        except ValueError:
            problems.append(f"line {n}: start/end {start!r}, {end!r} are not numbers")
            continue
        if not label or not video:
            problems.append(f"line {n}: empty label or video name")
        elif onset < 0 or offset <= onset:
            problems.append(f"line {n}: need 0 <= start < end, got {onset} .. {offset}")
        else:
            videos.setdefault(video, []).append(Annotation(video, label, onset, offset))
    if problems:
        shown = "; ".join(problems[:MAX_REPORTED])
        more = f" (and {len(problems) - MAX_REPORTED} more)" if len(problems) > MAX_REPORTED else ""
        raise AnnotationError(f"{path}: {len(problems)} malformed lines: {shown}{more}")
    if not videos:
        raise AnnotationError(f"{path}: no annotations found")
    return AnnotationSet(str(path), fmt, {k: tuple(v) for k, v in videos.items()})


def match_videos(annotations: AnnotationSet, folder: str | Path) -> dict[str, Path]:
    """The file of every annotated video; all videos that cannot be found are reported at once."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AnnotationError(f"{folder}: videos folder not found")
    by_name: dict[str, Path] = {}
    by_stem: dict[str, list[Path]] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
            by_name.setdefault(p.name, p)
            by_stem.setdefault(p.stem, []).append(p)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for video in annotations.videos:
        if annotations.format == "dcase" and video in by_name:
            found[video] = by_name[video]
        elif Path(video).stem in by_stem:
            found[video] = by_stem[Path(video).stem][0]
        else:
            missing.append(video)
    if missing:
        shown = ", ".join(missing[:MAX_REPORTED])
        more = f" and {len(missing) - MAX_REPORTED} more" if len(missing) > MAX_REPORTED else ""
        raise AnnotationError(
            f"{annotations.path}: {len(missing)} annotated videos are not in {folder}: {shown}{more}"
        )
    return found


def segment_targets(annotations: Sequence[Annotation], starts: np.ndarray, ends: np.ndarray,
                    labels: Sequence[str]) -> np.ndarray:
    """int64 (N,) class per segment: the label covering most of it (at least half), else background.

    Background is ``len(labels)``.
    """
    C = len(labels)
    index = {label: i for i, label in enumerate(labels)}
    overlap = np.zeros((len(starts), C + 1))
    for a in annotations:
        if a.label not in index:
            raise AnnotationError(f"label {a.label!r} of video {a.video} is not among {list(labels)}")
        overlap[:, index[a.label]] += np.clip(np.minimum(ends, a.offset) - np.maximum(starts, a.onset), 0, None)
    length = np.maximum(ends - starts, 1e-9)
    best = overlap[:, :C].argmax(axis=1) if C else np.zeros(len(starts), int)
    covered = overlap[np.arange(len(starts)), best] >= 0.5 * length
    return np.where(covered, best, C).astype(np.int64)


def clip_label(annotations: Sequence[Annotation], labels: Sequence[str]) -> int:
    """The class with the most annotated time in the video (AVE videos have one)."""
    totals = {a.label: 0.0 for a in annotations}
    for a in annotations:
        totals[a.label] += a.offset - a.onset
    return list(labels).index(max(totals, key=totals.__getitem__))
