"""``avfuse train``: labelled videos -> a trained model file.

Clips are decoded once (cached on disk), cut into labelled windows, split by clip into
training and validation sets, and fitted with ``fusion.recipe.FusionRecipe``. Encoders
are trained with the fusion model (``train``), fine-tuned at a tenth of the learning
rate (``finetune``), or frozen (``freeze``): then their tokens are computed once and only
the fusion model trains, in seconds.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from fusion.config import FusionConfig
from fusion.heads import FusionOutput
from fusion.models import drop_modalities
from fusion.recipe import EpochStats, FusionRecipe, History, RecipeConfig
from pipeline.annotations import match_videos, read_annotations, segment_targets
from pipeline.config import WindowSettings
from pipeline.dataset import IGNORE, WindowSet, build_windows, decode_many
from pipeline.errors import ConfigError
from pipeline.events import EventSettings, SegmentScores, detect_events
from pipeline.inference import resolve_device
from pipeline.metrics import Counts, event_based, segment_based
from pipeline.model import AVModel, create_model, save_checkpoint

ENCODER_MODES = ("train", "finetune", "freeze")
MODALITY_CHOICES = {"audio+visual": ("visual", "audio"), "audio": ("audio",), "visual": ("visual",)}


@dataclass(frozen=True)
class TrainSettings:
    videos: Path
    annotations: Path
    out: Path
    fusion: str = "hybrid"
    modalities: str = "audio+visual"
    visual: str = "small_cnn"
    audio: str = "small_cnn"
    visual_weights: str | None = None
    audio_weights: str | None = None
    encoders: str = "train"
    epochs: int = 30
    batch_size: int = 16
    lr: float = 2e-3
    seed: int = 0
    val_fraction: float = 0.1
    device: str = "auto"
    window: int = 10
    hop: int = 10
    modality_dropout: float = 0.1  # chance that a training window loses one modality
    # what a window that lost a modality is labelled: "background" (an audio-visual event needs
    # both), "keep" (the label stands on one modality), or "auto": background for AVE
    # annotations (audio-visual events by definition), keep for DCASE (sound events)
    dropped_target: str = "auto"
    augment: bool = True  # random horizontal flips of frames and gain changes of audio
    tune_events: bool = True  # pick event thresholds / filters that maximise event F1 on validation
    fusion_config: dict[str, Any] = field(default_factory=dict)
    visual_kwargs: dict[str, Any] = field(default_factory=dict)  # encoder builder arguments
    audio_kwargs: dict[str, Any] = field(default_factory=dict)
    cache_dir: Path | None = None
    workers: int = 0

    def problems(self) -> list[str]:
        out = []
        if self.modalities not in MODALITY_CHOICES:
            out.append(f"--modalities must be one of {', '.join(MODALITY_CHOICES)}, not {self.modalities!r}")
        if self.dropped_target not in ("auto", "keep", "background"):
            out.append(f"--dropped-target must be auto, keep or background, not {self.dropped_target!r}")
        if not 0 <= self.modality_dropout < 1:
            out.append(f"--modality-dropout must be in [0, 1), not {self.modality_dropout}")
        if self.encoders not in ENCODER_MODES:
            out.append(f"--encoders must be one of {', '.join(ENCODER_MODES)}, not {self.encoders!r}")
        if not 0 <= self.val_fraction < 1:
            out.append(f"--val-fraction must be in [0, 1), not {self.val_fraction}")
        if self.epochs < 1:
            out.append("--epochs must be >= 1")
        if self.batch_size < 2:
            out.append("--batch-size must be >= 2")
        out += WindowSettings(self.window, self.hop).problems()
        return out


@dataclass
class TrainReport:
    model_path: Path
    model: AVModel
    history: History
    n_train_clips: int
    n_val_clips: int
    n_windows: int
    decode_seconds: float
    train_seconds: float
    validation_accuracy: float | None
    validation_event_f1: float | None = None


def data_fingerprint(paths: Sequence[Path], annotations: Path) -> str:
    h = hashlib.sha256(Path(annotations).read_bytes())
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p.name}|{st.st_size}".encode())
    return h.hexdigest()[:16]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_tensors(ws: WindowSet) -> dict[str, torch.Tensor]:
    return {
        "frames": torch.from_numpy(ws.frames),
        "audio": torch.from_numpy(ws.audio),
        "visual_present": torch.from_numpy(ws.visual_present),
        "audio_present": torch.from_numpy(ws.audio_present),
        "segment_target": torch.from_numpy(ws.segment_target),
        "clip_target": torch.from_numpy(ws.clip_target),
    }


@torch.no_grad()
def encode_all(model: AVModel, data: dict[str, torch.Tensor], device: torch.device,
               batch: int = 32) -> dict[str, torch.Tensor]:
    """Frozen encoders: replace raw frames/audio with their tokens, computed once."""
    model.eval()
    v_all, a_all = [], []
    n = len(data["segment_target"])
    for i in range(0, n, batch):
        v, a = model.encode(data["frames"][i : i + batch].to(device), data["audio"][i : i + batch].float().to(device))
        v_all.append(v.cpu())
        a_all.append(a.cpu())
    rest = {k: v for k, v in data.items() if k not in ("frames", "audio")}
    return {**rest, "visual_tokens": torch.cat(v_all), "audio_tokens": torch.cat(a_all)}


def augment_batch(frames: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per window: a horizontal flip of every frame (half the time) and an audio gain of +-6 dB."""
    B = frames.shape[0]
    flip = torch.rand(B, device=frames.device) < 0.5
    frames = torch.where(flip.view(B, 1, 1, 1, 1, 1), frames.flip(-2), frames)  # (B, W, F, S, S, 3)
    gain = 10 ** (torch.empty(B, 1, 1, device=audio.device).uniform_(-6, 6) / 20)
    return frames, audio * gain


def make_forward(model: AVModel, device: torch.device, frozen: bool) -> Callable[[dict], FusionOutput]:
    def forward(batch: dict[str, torch.Tensor]) -> FusionOutput:
        vp, ap = model.effective_masks(batch["visual_present"].to(device), batch["audio_present"].to(device))
        if frozen:
            return model.fusion(batch["visual_tokens"].to(device), batch["audio_tokens"].to(device), vp, ap)
        v, a = model.encode(batch["frames"].to(device), batch["audio"].to(device).float())
        return model.fusion(v, a, vp, ap)

    return forward


def make_prepare(model: AVModel, augment: bool, dropout: float, background_when_dropped: bool,
                 seed: int) -> Callable[[dict], dict]:
    """Training-time changes to a batch: augmentation, then modality dropout and its targets."""
    gen = torch.Generator().manual_seed(seed + 1)
    C = model.num_classes

    def prepare(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = dict(batch)
        if augment and "frames" in batch:
            batch["frames"], batch["audio"] = augment_batch(batch["frames"], batch["audio"].float())
        if dropout > 0:
            vp, ap = model.effective_masks(batch["visual_present"], batch["audio_present"])
            vp2, ap2 = drop_modalities(vp, ap, dropout, generator=gen)
            batch["visual_present"], batch["audio_present"] = vp2, ap2
            if background_when_dropped:
                dropped = (vp2 != vp).any(dim=1) | (ap2 != ap).any(dim=1)  # (B,)
                seg = batch["segment_target"].clone()
                seg[dropped.unsqueeze(1) & (seg >= 0) & (seg < C)] = C
                clip = batch["clip_target"].clone()
                clip[dropped] = IGNORE
                batch["segment_target"], batch["clip_target"] = seg, clip
        return batch

    return prepare


@torch.no_grad()
def clip_probabilities(forward: Callable[[dict], FusionOutput], data: dict[str, torch.Tensor],
                       ws: WindowSet, n_classes: int, batch: int = 64) -> dict[int, np.ndarray]:
    """Per clip: (N, C+1) segment probabilities, overlapping windows averaged."""
    probs = []
    for i in range(0, len(ws), batch):
        part = {k: v[i : i + batch] for k, v in data.items()}
        probs.append(torch.softmax(forward(part).segment_logits.float(), -1).cpu().numpy())
    all_probs = np.concatenate(probs)
    per_clip: dict[int, SegmentScores] = {}
    for m in range(len(ws)):
        n = int((ws.segment_target[m] != IGNORE).sum())
        acc = per_clip.setdefault(int(ws.clip_index[m]), SegmentScores(n_classes))
        acc.add(int(ws.first_segment[m]), all_probs[m, :n], np.zeros((n, n_classes)))
    return {k: v.result()[0] for k, v in per_clip.items()}


EVENT_GRID = [
    EventSettings(threshold=t, median=k, min_segments=n, max_gap=g)
    for t in (0.3, 0.4, 0.5, 0.6, 0.7) for k in (1, 3) for n in (1, 2) for g in (0, 1)
]


def tune_event_settings(probs: dict[int, np.ndarray], clips: Sequence, annotations: Sequence,
                        labels: list[str]) -> tuple[EventSettings, float]:
    """The event settings of ``EVENT_GRID`` with the best event F1 (then segment F1) on validation."""
    best, best_key = EventSettings(), (-1.0, -1.0)
    for settings in EVENT_GRID:
        evt, seg = Counts(), Counts()
        for i, p in probs.items():
            c = clips[i]
            est = [(e.label, e.start_s, e.end_s)
                   for e in detect_events(p, np.zeros((len(p), len(labels))), c.starts, c.ends, labels, settings)]
            ref = [(a.label, a.onset, a.offset) for a in annotations[i]]
            for counts in event_based(ref, est, labels).values():
                evt += counts
            for counts in segment_based(ref, est, float(c.ends[-1]), labels).values():
                seg += counts
        key = (evt.f1, seg.f1)
        if key > best_key:
            best, best_key = settings, key
    return best, best_key[0]


@torch.no_grad()
def window_accuracy(forward: Callable[[dict], FusionOutput], data: dict[str, torch.Tensor], batch: int = 64) -> float:
    """Segment accuracy (C classes + background) over real segments of ``data``."""
    correct = total = 0
    n = len(data["segment_target"])
    for i in range(0, n, batch):
        part = {k: v[i : i + batch] for k, v in data.items()}
        pred = forward(part).segment_logits.argmax(-1).cpu()
        t = part["segment_target"]
        keep = t != IGNORE
        correct += int((pred[keep] == t[keep]).sum())
        total += int(keep.sum())
    return correct / max(total, 1)


def split_clips(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction)) if n > 1 else 0
    if val_fraction > 0 and n > 1:
        n_val = max(1, n_val)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def train(s: TrainSettings, *, on_decoded: Callable[[int], None] | None = None,
          on_step: Callable[[int], None] | None = None,
          on_epoch: Callable[[EpochStats], None] | None = None,
          on_stage: Callable[[str, int], None] | None = None) -> TrainReport:
    """Fit a model as ``s`` says and write it to ``s.out``; callbacks drive progress bars."""
    problems = s.problems()
    unknown = sorted(set(s.fusion_config) - set(FusionConfig.__dataclass_fields__))
    if unknown:
        problems.append(f"unknown fusion settings {unknown}; known: {sorted(FusionConfig.__dataclass_fields__)}")
    if problems:
        raise ConfigError(problems)
    seed_everything(s.seed)
    ann = read_annotations(s.annotations)
    files = match_videos(ann, s.videos)
    labels = ann.labels
    device = resolve_device(s.device)
    try:
        model = create_model(
            labels, visual=s.visual, audio=s.audio, fusion=s.fusion,
            visual_kwargs=s.visual_kwargs, audio_kwargs=s.audio_kwargs,
            fusion_config={"modality_dropout": s.modality_dropout, **s.fusion_config},  # recorded in the model
            visual_weights=s.visual_weights, audio_weights=s.audio_weights,
            window=WindowSettings(s.window, s.hop), modalities=MODALITY_CHOICES[s.modalities],
        )
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:  # bad encoder/fusion settings, weights
        raise ConfigError(str(exc)) from exc
    names = list(files)
    paths = [files[k] for k in names]
    settings = model.decode_settings
    cache = s.cache_dir if s.cache_dir is not None else Path(".cache") / "avfuse" / "decoded"
    if on_stage:
        on_stage("decode", len(paths))
    t0 = time.perf_counter()
    clips = decode_many(paths, settings, cache, workers=s.workers, on_done=on_decoded)
    decode_seconds = time.perf_counter() - t0
    targets = [segment_targets(ann.videos[k], c.starts, c.ends, labels) for k, c in zip(names, clips)]
    windows = build_windows(clips, targets, model.window, len(labels))
    train_ids, val_ids = split_clips(len(clips), s.val_fraction, s.seed)
    tr = to_tensors(windows.subset(np.isin(windows.clip_index, train_ids)))
    va = to_tensors(windows.subset(np.isin(windows.clip_index, val_ids))) if len(val_ids) else None

    model.to(device)
    frozen = s.encoders == "freeze"
    if frozen:
        for p in list(model.visual.parameters()) + list(model.audio.parameters()):
            p.requires_grad_(False)
        tr = encode_all(model, tr, device)
        va = encode_all(model, va, device) if va is not None else None
    forward = make_forward(model, device, frozen)
    background_when_dropped = s.dropped_target == "background" or (s.dropped_target == "auto" and ann.format == "ave")
    prepare = make_prepare(model, s.augment and not frozen, s.modality_dropout, background_when_dropped, s.seed)
    recipe = FusionRecipe(model, forward, RecipeConfig(
        epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, seed=s.seed,
        encoder_lr_scale=0.1 if s.encoders == "finetune" else 1.0,
        multilabel=model.fusion.cfg.multilabel,
    ))
    if on_stage:
        on_stage("train", s.epochs * -(-len(tr["segment_target"]) // s.batch_size))
    t1 = time.perf_counter()
    validate = (lambda: window_accuracy(forward, va)) if va is not None else None
    history = recipe.fit(tr, validate=validate, on_epoch=on_epoch, on_step=on_step, prepare=prepare)
    train_seconds = time.perf_counter() - t1
    val_event_f1 = None
    if va is not None and s.tune_events:
        val_rows = np.isin(windows.clip_index, val_ids)
        probs = clip_probabilities(forward, va, windows.subset(val_rows), len(labels))
        model.events, val_event_f1 = tune_event_settings(
            probs, clips, [ann.videos[k] for k in names], labels)

    model.trained = True
    model.cpu()
    provenance = {
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data_fingerprint": data_fingerprint(paths, s.annotations),
        "annotations": str(s.annotations),
        "annotation_format": ann.format,
        "n_clips": len(clips),
        "n_train_clips": int(len(train_ids)),
        "n_val_clips": int(len(val_ids)),
        "settings": {k: (str(v) if isinstance(v, (Path, Fraction)) else v)
                     for k, v in asdict(s).items() if k not in ("out", "cache_dir")},
        "best_epoch": history.best_epoch,
        "validation_segment_accuracy": history.best_validation,
        "validation_event_f1": val_event_f1,
        "dropped_modality_target": "background" if background_when_dropped else "keep",
        "event_settings": model.events.to_dict(),
        "torch": torch.__version__,
    }
    path = save_checkpoint(model, s.out, provenance)
    return TrainReport(path, model, history, int(len(train_ids)), int(len(val_ids)), len(windows),
                       decode_seconds, train_seconds, history.best_validation, val_event_f1)
