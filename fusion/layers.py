"""Building blocks shared by the fusion variants.

Masks are boolean with True meaning *present*. Attention never sees a row of keys
that is entirely masked (``attend_mask`` unmasks such rows and the caller zeroes their
output), so a missing modality cannot produce NaNs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def attend_mask(present: Tensor) -> Tensor:
    """Key-padding mask for ``nn.MultiheadAttention`` (True = ignore) from a presence mask.

    Rows with nothing present attend to everything instead (their results are discarded).
    """
    empty = ~present.any(dim=1, keepdim=True)
    return ~(present | empty)


def masked_mean(x: Tensor, present: Tensor, dim: int) -> Tensor:
    """Mean of ``x`` over ``dim`` counting only present entries (zeros where none are)."""
    w = present.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(dim) / w.sum(dim).clamp_min(1.0)


class TokenEmbed(nn.Module):
    """Project one modality's tokens to the model width and add position embeddings.

    (B, W, N, D_in) -> (B, W*N, dim); learned embeddings for segment index, token index
    within the segment, and the modality.
    """

    def __init__(self, in_dim: int, tokens: int, window: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, dim))
        self.time = nn.Parameter(torch.zeros(window, 1, dim))
        self.token = nn.Parameter(torch.zeros(1, tokens, dim))
        self.modality = nn.Parameter(torch.zeros(1, 1, dim))
        for p in (self.time, self.token, self.modality):
            nn.init.trunc_normal_(p, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        B, W, N, _ = x.shape
        x = self.proj(x) + self.time[:W] + self.token + self.modality  # (B, W, N, dim)
        return x.reshape(B, W * N, -1)


class Block(nn.Module):
    """Pre-norm transformer block; ``context`` given makes it cross-attention."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim * mlp_ratio, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, present: Tensor, context: Tensor | None = None,
                context_present: Tensor | None = None, attn_mask: Tensor | None = None) -> Tensor:
        """x: (B, L, dim), present: (B, L); context: (B, L', dim) or None for self-attention;
        attn_mask: (L, L') bool, True where a query may not look (every row must allow some key
        that is present, or be a row the caller discards)."""
        h = self.norm1(x)
        if context is None:
            kv, kv_present = h, present
        else:
            kv, kv_present = self.norm1(context), context_present
        attended, _ = self.attn(h, kv, kv, key_padding_mask=attend_mask(kv_present), attn_mask=attn_mask,
                                need_weights=False)
        if context is not None:  # nothing to attend to: no update
            attended = attended * kv_present.any(dim=1).to(x.dtype)[:, None, None]
        x = x + self.drop(attended)
        x = x + self.drop(self.mlp(self.norm2(x)))
        return x * present.unsqueeze(-1).to(x.dtype)


def segment_pool(tokens: Tensor, present: Tensor, window: int) -> Tensor:
    """(B, W*N, dim) tokens -> (B, W, dim): masked mean of each segment's N tokens."""
    B, L, D = tokens.shape
    n = L // window
    return masked_mean(tokens.view(B, window, n, D), present.view(B, window, n), dim=2)


def expand_mask(segment_present: Tensor, tokens: int) -> Tensor:
    """(B, W) segment mask -> (B, W*tokens) token mask."""
    return segment_present.repeat_interleave(tokens, dim=1)
