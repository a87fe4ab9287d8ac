"""The one config every fusion variant is built from (stored in checkpoints as a dict)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class FusionConfig:
    """Dimensions and sizes of a fusion model.

    >>> FusionConfig(num_classes=8, visual_dim=128, audio_dim=128, visual_tokens=4, audio_tokens=4).window
    10
    """

    num_classes: int  # C event classes; segment heads add a background class (C + 1)
    visual_dim: int  # width of the visual encoder's tokens
    audio_dim: int  # width of the audio encoder's tokens
    visual_tokens: int  # visual tokens per segment (Nv)
    audio_tokens: int  # audio tokens per segment (Na)
    window: int = 10  # W segments per window (size of the temporal position table)
    dim: int = 128  # model width
    heads: int = 4  # attention heads
    modality_layers: int = 1  # modality-specific layers before fusion
    fusion_layers: int = 2  # fusion layers (bottleneck, cross-attention, joint or graph)
    bottleneck_tokens: int = 4  # hybrid: bottleneck tokens per segment
    late_heads: bool = True  # hybrid: average per-modality late heads with the fused head
    bottleneck_scope: str = "segment"  # hybrid: what a segment's bottleneck tokens read: "segment" or "window"
    bottleneck_init: str = "summary"  # hybrid: bottleneck tokens start from a "summary" of both modalities, or "learned" only
    graph_neighbours: int = 1  # graph: temporal edges reach this many segments each way
    mlp_ratio: int = 2  # feed-forward width / dim
    dropout: float = 0.1
    modality_dropout: float = 0.0  # training: chance that a sample loses one modality (see drop_modalities)
    multilabel: bool = False  # clip head: independent sigmoids instead of one softmax

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FusionConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown fusion settings {unknown}; known: {sorted(known)}")
        return cls(**d)

    def problems(self) -> list[str]:
        out = []
        if self.num_classes < 1:
            out.append("num_classes must be >= 1")
        if self.dim % self.heads:
            out.append(f"dim {self.dim} must be divisible by heads {self.heads}")
        for name in ("visual_dim", "audio_dim", "visual_tokens", "audio_tokens", "window", "dim", "heads"):
            if getattr(self, name) < 1:
                out.append(f"{name} must be >= 1")
        if self.bottleneck_scope not in ("window", "segment"):
            out.append(f"bottleneck_scope must be 'window' or 'segment', not {self.bottleneck_scope!r}")
        if self.bottleneck_init not in ("learned", "summary"):
            out.append(f"bottleneck_init must be 'learned' or 'summary', not {self.bottleneck_init!r}")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.modality_dropout < 1.0:
            out.append("dropout and modality_dropout must be in [0, 1)")
        return out
