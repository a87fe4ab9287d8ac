"""Windows -> model inputs -> per-segment scores, and per-video accumulation of them.

``stack_windows`` pads windows to W segments and stacks them as numpy arrays (what a
Ray block carries); ``Predictor`` runs the model (on the GPU when there is one: pinned
host memory, non-blocking copies, bf16 autocast) and returns numpy arrays;
``VideoAccumulator`` averages overlapping windows per segment and turns them into events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from fusion.attribution import with_modality_shares
from pipeline.config import DecodeSettings
from pipeline.events import Event, SegmentScores, detect_events
from pipeline.model import AVModel
from pipeline.windows import Window


@dataclass
class WindowBatch:
    """B windows padded to W segments.

    frames uint8 (B, W, F, S, S, 3); audio float32 (B, W, N); visual_present /
    audio_present bool (B, W) (False on padding); first_segment, lengths int64 (B,);
    starts / ends float64 (B, W) segment times (NaN on padding).
    """

    frames: np.ndarray
    audio: np.ndarray
    visual_present: np.ndarray
    audio_present: np.ndarray
    first_segment: np.ndarray
    lengths: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)

    def to_dict(self) -> dict[str, np.ndarray]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WindowBatch:
        return cls(**{k: np.asarray(d[k]) for k in cls.__dataclass_fields__})

    def take(self, rows: slice) -> WindowBatch:
        return WindowBatch(**{k: getattr(self, k)[rows] for k in self.__dataclass_fields__})


def stack_windows(windows: Sequence[Window], W: int, settings: DecodeSettings) -> WindowBatch:
    B, F, S, N = len(windows), settings.frames_per_segment, settings.frame_size, settings.samples_per_segment
    frames = np.zeros((B, W, F, S, S, 3), np.uint8)
    audio = np.zeros((B, W, N), np.float32)
    vp = np.zeros((B, W), bool)
    ap = np.zeros((B, W), bool)
    starts = np.full((B, W), np.nan)
    ends = np.full((B, W), np.nan)
    for b, win in enumerate(windows):
        for w, seg in enumerate(win.segments):
            frames[b, w] = seg.frames
            audio[b, w] = seg.audio
            vp[b, w], ap[b, w] = seg.has_video, seg.has_audio
            starts[b, w], ends[b, w] = seg.start_s, seg.end_s
    first = np.array([w.first for w in windows], np.int64)
    lengths = np.array([len(w) for w in windows], np.int64)
    return WindowBatch(frames, audio, vp, ap, first, lengths, starts, ends)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch sees no CUDA device; use --device cpu or auto")
    return torch.device(device)


class Predictor:
    """Run an ``AVModel`` on ``WindowBatch``es; load once, call many times.

    A batch that runs the GPU out of memory is split in halves, and later batches are cut to
    the size that fitted (``max_windows``): a batch size chosen for a large GPU still runs on
    a small one, a little slower, instead of failing its videos.
    """

    def __init__(self, model: AVModel, device: str = "auto", attribution: bool = True,
                 embeddings: bool = False) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.attribution = attribution
        self.embeddings = embeddings
        self.cuda = self.device.type == "cuda"
        self.max_windows: int | None = None  # set by the first out-of-memory error

    def __call__(self, batch: WindowBatch) -> dict[str, np.ndarray]:
        """-> probs (B, W, C+1), shares (B, W, C), clip_probs (B, C), [embeddings (B, W, E)]."""
        step = self.max_windows or len(batch)
        if len(batch) > step:
            parts = [self(batch.take(slice(i, i + step))) for i in range(0, len(batch), step)]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        try:
            return self.run(batch)
        except torch.OutOfMemoryError:
            if len(batch) == 1:
                raise
            if self.cuda:
                torch.cuda.empty_cache()
            self.max_windows = len(batch) // 2
            return self(batch)

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(array))
        if self.cuda:
            return t.pin_memory().to(self.device, non_blocking=True)
        return t

    @torch.inference_mode()
    def run(self, batch: WindowBatch) -> dict[str, np.ndarray]:
        """One forward pass over the whole batch (``__call__`` splits it when it does not fit)."""
        m = self.model
        frames, audio = self._to_device(batch.frames), self._to_device(batch.audio)
        vp, ap = self._to_device(batch.visual_present), self._to_device(batch.audio_present)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda):
            v, a = m.encode(frames, audio)
            vp, ap = m.effective_masks(vp, ap)
            if self.attribution:
                out, shares = with_modality_shares(m.fusion, v, a, vp, ap)
            else:
                out = m.fusion(v, a, vp, ap)
                shares = ap.unsqueeze(-1).float().expand(*ap.shape, m.num_classes) * 0.5
        probs = torch.softmax(out.segment_logits.float(), dim=-1)
        clip = out.clip_logits.float()
        clip_probs = torch.sigmoid(clip) if m.fusion.cfg.multilabel else torch.softmax(clip, dim=-1)
        result = {
            "probs": probs.cpu().numpy(),
            "shares": shares.float().cpu().numpy(),
            "clip_probs": clip_probs.cpu().numpy(),
        }
        if self.embeddings:
            result["embeddings"] = out.embeddings.float().cpu().numpy()
        return result


@dataclass
class ClipScore:
    """One analysis window's clip-level prediction."""

    index: int
    first_segment: int
    start_s: float
    end_s: float
    probs: np.ndarray  # (C,)


@dataclass
class VideoScores:
    """Everything the model said about one video, per segment and per window."""

    starts: np.ndarray  # (N,) seconds
    ends: np.ndarray
    has_video: np.ndarray  # (N,) bool
    has_audio: np.ndarray
    probs: np.ndarray  # (N, C+1)
    shares: np.ndarray  # (N, C)
    clips: list[ClipScore]
    events: list[Event]
    embeddings: np.ndarray | None = None  # (N, E)


@dataclass
class VideoAccumulator:
    """Collects one video's window predictions in any order, then finishes it."""

    model: AVModel
    scores: SegmentScores = field(init=False)
    meta: dict[int, tuple[float, float, bool, bool]] = field(default_factory=dict)
    clips: list[ClipScore] = field(default_factory=list)
    _emb_sum: dict[int, np.ndarray] = field(default_factory=dict)
    _emb_count: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scores = SegmentScores(self.model.num_classes)

    def add(self, batch: WindowBatch, pred: dict[str, np.ndarray], rows: Sequence[int] | None = None) -> None:
        for b in rows if rows is not None else range(len(batch)):
            self.add_window(
                int(batch.first_segment[b]), int(batch.lengths[b]), batch.starts[b], batch.ends[b],
                batch.visual_present[b], batch.audio_present[b], pred["probs"][b], pred["shares"][b],
                pred["clip_probs"][b], pred["embeddings"][b] if "embeddings" in pred else None,
            )

    def add_window(self, first: int, n: int, starts: np.ndarray, ends: np.ndarray, vp: np.ndarray,
                   ap: np.ndarray, probs: np.ndarray, shares: np.ndarray, clip_probs: np.ndarray,
                   embeddings: np.ndarray | None = None) -> None:
        """One window's predictions: probs (W, C+1), shares (W, C), clip_probs (C,); n real segments."""
        self.scores.add(first, probs[:n], shares[:n])
        for w in range(n):
            k = first + w
            self.meta[k] = (float(starts[w]), float(ends[w]), bool(vp[w]), bool(ap[w]))
            if embeddings is not None:
                self._emb_sum[k] = self._emb_sum.get(k, 0) + embeddings[w]
                self._emb_count[k] = self._emb_count.get(k, 0) + 1
        self.clips.append(ClipScore(len(self.clips), first, float(starts[0]), float(ends[n - 1]), clip_probs))

    def finish(self) -> VideoScores:
        probs, shares = self.scores.result()
        n = len(probs)
        meta = [self.meta[k] for k in range(n)]
        starts = np.array([m[0] for m in meta], np.float64)
        ends = np.array([m[1] for m in meta], np.float64)
        events = detect_events(probs, shares, starts, ends, self.model.labels, self.model.events)
        emb = None
        if self._emb_sum:
            emb = np.stack([self._emb_sum[k] / self._emb_count[k] for k in range(n)]).astype(np.float32)
        clips = sorted(self.clips, key=lambda c: c.first_segment)
        for i, c in enumerate(clips):
            c.index = i
        return VideoScores(
            starts=starts, ends=ends,
            has_video=np.array([m[2] for m in meta], bool), has_audio=np.array([m[3] for m in meta], bool),
            probs=probs, shares=shares, clips=clips, events=events, embeddings=emb,
        )
