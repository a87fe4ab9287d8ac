"""The model bundle: encoders + fusion + labels + input contracts, and its checkpoint file.

A checkpoint is one ``torch.save`` file holding only plain data and tensors::

    {"format": "avfuse-model", "format_version": 1,
     "config": {visual, audio, fusion, segment_s, window, modalities},  # rebuilds the model
     "labels": [...], "contracts": {visual, audio}, "events": {...},
     "provenance": {...}, "trained": bool, "state_dict": {...}}

It is read with ``torch.load(weights_only=True)``; a file that needs anything more is refused.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from encoders.registry import build_encoder
from fusion.config import FusionConfig
from fusion.heads import FusionOutput
from fusion.models import build_fusion
from pipeline.config import DecodeSettings, WindowSettings
from pipeline.errors import CheckpointError
from pipeline.events import EventSettings

FORMAT = "avfuse-model"
FORMAT_VERSION = 1
# Fusion settings added after format version 1 was fixed, with the value a model file that
# does not record them was trained with (their default before they existed).
FUSION_SETTINGS_BEFORE = {"bottleneck_scope": "window", "bottleneck_init": "learned"}
MODALITIES = ("visual", "audio")


def _plain(value: Any) -> Any:
    """Make builder kwargs storable without pickling (Fractions become "a/b" strings)."""
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)  # subclasses such as torch.__version__'s TorchVersion need pickling
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)  # numpy.float64 is a float subclass
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _plain(value.item())
    raise TypeError(f"cannot store {type(value).__name__} value {value!r} in a checkpoint config")


class AVModel(nn.Module):
    """Everything needed to turn decoded windows into scores, as one module.

    forward(frames uint8 (B, W, F, S, S, 3), audio float32 (B, W, N),
            visual_present (B, W) bool, audio_present (B, W) bool) -> FusionOutput
    """

    def __init__(
        self,
        *,
        labels: Sequence[str],
        visual: dict[str, Any],
        audio: dict[str, Any],
        fusion: dict[str, Any],
        segment_s: Fraction | str = Fraction(1),
        window: dict[str, int] | None = None,
        modalities: Sequence[str] = MODALITIES,
        events: dict[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
        trained: bool = False,
    ) -> None:
        super().__init__()
        bad = sorted(set(modalities) - set(MODALITIES))
        if bad or not modalities:
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {list(modalities)}")
        if len(set(labels)) != len(labels) or not labels:
            raise ValueError("labels must be a non-empty list of distinct names")
        self.labels = list(labels)
        self.modalities = tuple(m for m in MODALITIES if m in modalities)
        self.segment_s = Fraction(segment_s)
        self.window = WindowSettings(**(window or {}))
        self.visual_spec = {"name": visual["name"], "kwargs": dict(visual.get("kwargs", {}))}
        self.audio_spec = {"name": audio["name"], "kwargs": dict(audio.get("kwargs", {}))}
        self.visual = build_encoder("visual", visual["name"], **self.visual_spec["kwargs"])
        self.audio = build_encoder("audio", audio["name"], **self.audio_spec["kwargs"])
        vc, ac = self.visual.contract, self.audio.contract
        fusion_cfg = FusionConfig(
            num_classes=len(self.labels),
            visual_dim=vc.dim, audio_dim=ac.dim,
            visual_tokens=vc.tokens, audio_tokens=ac.tokens,
            window=self.window.segments,
            **dict(fusion.get("config", {})),
        )
        self.fusion_name = fusion["name"]
        self.fusion = build_fusion(self.fusion_name, fusion_cfg)
        self.events = EventSettings.from_dict(events or {})
        self.provenance = dict(provenance or {})
        self.trained = trained
        self.model_id = "unsaved"  # the first 16 hex digits of the checkpoint's SHA-256 once loaded
        self.checkpoint_path: str | None = None

    # ---- contracts ------------------------------------------------------------------
    @property
    def uses_visual(self) -> bool:
        return "visual" in self.modalities

    @property
    def uses_audio(self) -> bool:
        return "audio" in self.modalities

    @property
    def decode_settings(self) -> DecodeSettings:
        """What the decoder must produce for this model, read from the encoders' contracts."""
        vc, ac = self.visual.contract, self.audio.contract
        return DecodeSettings(
            fps=vc.fps, frame_size=vc.frame_size, sample_rate=ac.sample_rate, segment_s=self.segment_s,
            decode_video=self.uses_visual, decode_audio=self.uses_audio,
        )

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    # ---- compute --------------------------------------------------------------------
    def encode(self, frames: Tensor, audio: Tensor) -> tuple[Tensor, Tensor]:
        """(B, W, F, S, S, 3) uint8 and (B, W, N) float -> (B, W, Nv, Dv), (B, W, Na, Da)."""
        B, W = audio.shape[:2]
        vc, ac = self.visual.contract, self.audio.contract
        device = audio.device
        if self.uses_visual:
            v = self.visual(frames.flatten(0, 1)).view(B, W, vc.tokens, vc.dim)
        else:
            v = torch.zeros(B, W, vc.tokens, vc.dim, device=device)
        if self.uses_audio:
            a = self.audio(audio.flatten(0, 1)).view(B, W, ac.tokens, ac.dim)
        else:
            a = torch.zeros(B, W, ac.tokens, ac.dim, device=device)
        return v, a

    def forward(self, frames: Tensor, audio: Tensor, visual_present: Tensor, audio_present: Tensor) -> FusionOutput:
        v, a = self.encode(frames, audio)
        vp, ap = self.effective_masks(visual_present, audio_present)
        return self.fusion(v, a, vp, ap)

    def effective_masks(self, vp: Tensor, ap: Tensor) -> tuple[Tensor, Tensor]:
        """A modality the model does not use counts as missing."""
        return vp & self.uses_visual, ap & self.uses_audio

    # ---- checkpoint -----------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {
            "visual": _plain(self.visual_spec),
            "audio": _plain(self.audio_spec),
            "fusion": {"name": self.fusion_name, "config": self._fusion_overrides()},
            "segment_s": _plain(self.segment_s),
            "window": asdict(self.window),
            "modalities": list(self.modalities),
        }

    def _fusion_overrides(self) -> dict[str, Any]:
        d = self.fusion.cfg.to_dict()
        for derived in ("num_classes", "visual_dim", "audio_dim", "visual_tokens", "audio_tokens", "window"):
            d.pop(derived)
        return d

    def contracts(self) -> dict[str, Any]:
        return {"visual": self.visual.contract.to_dict(), "audio": self.audio.contract.to_dict()}


def create_model(
    labels: Sequence[str],
    *,
    visual: str = "small_cnn",
    audio: str = "small_cnn",
    fusion: str = "hybrid",
    visual_kwargs: dict[str, Any] | None = None,
    audio_kwargs: dict[str, Any] | None = None,
    fusion_config: dict[str, Any] | None = None,
    visual_weights: str | Path | None = None,
    audio_weights: str | Path | None = None,
    segment_s: Fraction = Fraction(1),
    window: WindowSettings = WindowSettings(),
    modalities: Sequence[str] = MODALITIES,
    events: dict[str, Any] | None = None,
) -> AVModel:
    """Build an untrained model; pretrained encoder weights are loaded here, not in __init__."""
    model = AVModel(
        labels=labels,
        visual={"name": visual, "kwargs": visual_kwargs or {}},
        audio={"name": audio, "kwargs": audio_kwargs or {}},
        fusion={"name": fusion, "config": fusion_config or {}},
        segment_s=segment_s,
        window=asdict(window),
        modalities=modalities,
        events=events,
    )
    for modality, weights in (("visual", visual_weights), ("audio", audio_weights)):
        if weights is not None:
            spec = model.visual_spec if modality == "visual" else model.audio_spec
            loaded = build_encoder(modality, spec["name"], weights=weights, **spec["kwargs"])
            getattr(model, modality).load_state_dict(loaded.state_dict())
            model.provenance[f"{modality}_weights"] = str(weights)
    return model


def save_checkpoint(model: AVModel, path: str | Path, provenance: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    prov = {**model.provenance, **(provenance or {})}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config(),
        "labels": list(model.labels),
        "contracts": model.contracts(),
        "events": model.events.to_dict(),
        "provenance": _plain(prov),
        "trained": bool(model.trained),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    try:  # a file that weights_only loading would refuse must never be written
        torch.load(tmp, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        tmp.unlink()
        raise TypeError(f"checkpoint payload is not plain data and tensors: {exc}") from exc
    tmp.replace(path)
    return path


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> AVModel:
    """Rebuild a model from its checkpoint; unsafe or mismatched files raise ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: model file not found; pass --model FILE or train one with `avfuse train`")
    return load_checkpoint_bytes(path.read_bytes(), str(path), map_location)


def load_checkpoint_bytes(data: bytes, name: str = "<bytes>",
                          map_location: str | torch.device = "cpu") -> AVModel:
    """``load_checkpoint`` from the file's bytes (how Ray actors receive the model)."""
    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{name}: refused to load: the file holds pickled Python objects, not only tensors and "
            "plain data, and loading it could run arbitrary code"
        ) from exc
    except Exception as exc:
        raise CheckpointError(f"{name}: not a readable avfuse model file ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{name}: not an avfuse model file (no '{FORMAT}' format marker)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{name}: model format version {payload.get('format_version')} is not supported "
            f"(this avfuse reads version {FORMAT_VERSION}); upgrade avfuse or retrain"
        )
    cfg = payload["config"]
    try:
        fusion = {**cfg["fusion"], "config": {**FUSION_SETTINGS_BEFORE, **cfg["fusion"].get("config", {})}}
        model = AVModel(
            labels=payload["labels"], visual=cfg["visual"], audio=cfg["audio"], fusion=fusion,
            segment_s=cfg["segment_s"], window=cfg["window"], modalities=cfg["modalities"],
            events=payload.get("events"), provenance=payload.get("provenance"),
            trained=bool(payload.get("trained")),
        )
        model.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{name}: the model in this file cannot be rebuilt: {exc}") from exc
    if model.contracts() != payload.get("contracts"):
        raise CheckpointError(
            f"{name}: the encoders' input contracts differ from the ones recorded at training time; "
            "this avfuse version builds the encoders differently"
        )
    model.checkpoint_path = name
    model.model_id = hashlib.sha256(data).hexdigest()[:16]
    return model.eval()
