"""The heads every fusion variant shares, and what a fusion model returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fusion.layers import masked_mean


@dataclass
class FusionOutput:
    """segment_logits (B, W, C+1), last index = background; clip_logits (B, C);
    embeddings (B, W, E) the fused per-segment representation."""

    segment_logits: Tensor
    clip_logits: Tensor
    embeddings: Tensor


class Heads(nn.Module):
    """Per-segment labels over C classes + background, and a clip label from attention pooling.

    (B, W, E) segment embeddings, (B, W) presence -> FusionOutput
    """

    def __init__(self, in_dim: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.segment = nn.Sequential(nn.LayerNorm(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, num_classes + 1))
        self.pool_score = nn.Linear(in_dim, 1)
        self.clip = nn.Sequential(nn.LayerNorm(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, num_classes))

    def forward(self, emb: Tensor, present: Tensor) -> FusionOutput:
        seg = self.segment(emb)  # (B, W, C+1)
        score = self.pool_score(emb).squeeze(-1).masked_fill(~present, -1e4)  # (B, W)
        weights = torch.softmax(score, dim=1) * present.any(dim=1, keepdim=True)
        pooled = (weights.unsqueeze(-1) * emb).sum(dim=1)  # (B, E)
        return FusionOutput(seg, self.clip(pooled), emb)


def average_outputs(outputs: list[FusionOutput], present: list[Tensor]) -> FusionOutput:
    """Average segment and clip logits of several heads, each counted where it is present.

    outputs[i] fields are (B, W, ...); present[i] is (B, W). Embeddings are averaged the same way.
    """
    w = torch.stack([p.to(outputs[0].segment_logits.dtype) for p in present])  # (H, B, W)
    denom = w.sum(0).clamp_min(1.0)  # (B, W)
    seg = (torch.stack([o.segment_logits for o in outputs]) * w.unsqueeze(-1)).sum(0) / denom.unsqueeze(-1)
    emb = (torch.stack([o.embeddings for o in outputs]) * w.unsqueeze(-1)).sum(0) / denom.unsqueeze(-1)
    wc = w.any(dim=2).to(seg.dtype)  # (H, B): the head saw anything in this window
    clip = (torch.stack([o.clip_logits for o in outputs]) * wc.unsqueeze(-1)).sum(0) / wc.sum(0).clamp_min(1.0).unsqueeze(-1)
    return FusionOutput(seg, clip, emb)


__all__ = ["FusionOutput", "Heads", "average_outputs", "masked_mean"]
