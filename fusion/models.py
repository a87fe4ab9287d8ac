"""The fusion family: one interface, six variants, selectable by name.

Every variant maps per-segment tokens of both modalities to a ``FusionOutput``::

    visual (B, W, Nv, Dv) --+                       +--> segment_logits (B, W, C+1)
    audio  (B, W, Na, Da) --+--> variant --> Heads -+--> clip_logits    (B, C)
    visual_present, audio_present (B, W) bool       +--> embeddings     (B, W, E)

A missing modality (no audio track, no video stream, a padded segment) is a False in
its presence mask; no variant crashes or produces NaN on it.

Variants (``build_fusion(name, cfg)``):
  hybrid           modality layers, then fusion only through B bottleneck tokens per
                   segment (attention bottlenecks, started from a summary of both
                   modalities), plus per-modality late heads whose logits are averaged
                   with the fused head's
  early            joint self-attention over all tokens of both modalities
  late             separate towers and heads; logits averaged
  cross_attention  modality layers, then each modality attends to the other
  graph            GCN H' = relu(A_hat H W) over modality x time nodes (fusion/graph.py)
  concat           project each modality, concatenate, classify (the plain baseline)
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import Tensor, nn

from fusion.config import FusionConfig
from fusion.heads import FusionOutput, Heads, average_outputs
from fusion.layers import Block, TokenEmbed, expand_mask, masked_mean, segment_pool


class FusionModel(nn.Module):
    """Base: validates the config; each variant implements ``fuse``."""

    name = "base"

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        problems = cfg.problems()
        if problems:
            raise ValueError("invalid fusion config: " + "; ".join(problems))
        self.cfg = cfg

    def forward(self, visual: Tensor, audio: Tensor, visual_present: Tensor, audio_present: Tensor) -> FusionOutput:
        return self.fuse(visual, audio, visual_present, audio_present)

    def fuse(self, visual: Tensor, audio: Tensor, vp: Tensor, ap: Tensor) -> FusionOutput:
        raise NotImplementedError

    # helpers shared by the transformer variants
    def _tower(self, layers: int) -> nn.ModuleList:
        c = self.cfg
        return nn.ModuleList(Block(c.dim, c.heads, c.mlp_ratio, c.dropout) for _ in range(layers))


def drop_modalities(vp: Tensor, ap: Tensor, p: float, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Modality dropout: per sample, with probability ``p``, hide one modality (only if the other is there).

    Training applies it (``cfg.modality_dropout``) so that a missing modality at inference is
    nothing new; what the targets of a dropped sample become is the training recipe's call.
    """
    B = vp.shape[0]
    drop = torch.rand(B, generator=generator).to(vp.device) < p
    which_audio = torch.rand(B, generator=generator).to(vp.device) < 0.5
    has_v, has_a = vp.any(dim=1), ap.any(dim=1)
    drop_a = drop & which_audio & has_v
    drop_v = drop & ~which_audio & has_a
    return vp & ~drop_v[:, None], ap & ~drop_a[:, None]


def _token_masks(cfg: FusionConfig, vp: Tensor, ap: Tensor) -> tuple[Tensor, Tensor]:
    return expand_mask(vp, cfg.visual_tokens), expand_mask(ap, cfg.audio_tokens)


class TowerFusion(FusionModel):
    """Base of the variants that begin with modality-specific transformer layers."""

    def __init__(self, cfg: FusionConfig, layers: int | None = None) -> None:
        super().__init__(cfg)
        layers = cfg.modality_layers if layers is None else layers
        self.embed_v = TokenEmbed(cfg.visual_dim, cfg.visual_tokens, cfg.window, cfg.dim)
        self.embed_a = TokenEmbed(cfg.audio_dim, cfg.audio_tokens, cfg.window, cfg.dim)
        self.self_v, self.self_a = self._tower(layers), self._tower(layers)

    def towers(self, visual: Tensor, audio: Tensor, vp: Tensor, ap: Tensor) -> tuple[Tensor, ...]:
        """-> visual tokens (B, W*Nv, dim), audio tokens (B, W*Na, dim) and their token masks."""
        pv, pa = _token_masks(self.cfg, vp, ap)
        v, a = self.embed_v(visual), self.embed_a(audio)
        for blk_v, blk_a in zip(self.self_v, self.self_a):
            v, a = blk_v(v, pv), blk_a(a, pa)
        return v, a, pv, pa


class ConcatFusion(FusionModel):
    """Baseline: per segment, mean tokens of each modality, project, concatenate, classify."""

    name = "concat"

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__(cfg)
        self.proj_v = nn.Sequential(nn.LayerNorm(cfg.visual_dim), nn.Linear(cfg.visual_dim, cfg.dim))
        self.proj_a = nn.Sequential(nn.LayerNorm(cfg.audio_dim), nn.Linear(cfg.audio_dim, cfg.dim))
        self.heads = Heads(2 * cfg.dim, cfg.num_classes, cfg.dropout)

    def fuse(self, visual: Tensor, audio: Tensor, vp: Tensor, ap: Tensor) -> FusionOutput:
        v = self.proj_v(visual.mean(dim=2)) * vp.unsqueeze(-1)  # (B, W, dim)
        a = self.proj_a(audio.mean(dim=2)) * ap.unsqueeze(-1)
        return self.heads(torch.cat([v, a], dim=-1), vp | ap)


class EarlyFusion(FusionModel):
    """Joint self-attention over the tokens of both modalities from the first layer."""

    name = "early"

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__(cfg)
        self.embed_v = TokenEmbed(cfg.visual_dim, cfg.visual_tokens, cfg.window, cfg.dim)
        self.embed_a = TokenEmbed(cfg.audio_dim, cfg.audio_tokens, cfg.window, cfg.dim)
        self.blocks = self._tower(cfg.modality_layers + cfg.fusion_layers)
        self.heads = Heads(cfg.dim, cfg.num_classes, cfg.dropout)

    def fuse(self, visual: Tensor, audio: Tensor, vp: Tensor, ap: Tensor) -> FusionOutput:
        W = visual.shape[1]
        pv, pa = _token_masks(self.cfg, vp, ap)
        x = torch.cat([self.embed_v(visual), self.embed_a(audio)], dim=1)  # (B, W*(Nv+Na), dim)
        present = torch.cat([pv, pa], dim=1)
        for blk in self.blocks:
            x = blk(x, present)
        nv = pv.shape[1]
        v = segment_pool(x[:, :nv], pv, W)  # (B, W, dim)
        a = segment_pool(x[:, nv:], pa, W)
        emb = masked_mean(torch.stack([v, a], dim=2), torch.stack([vp, ap], dim=2), dim=2)
        return self.heads(emb, vp | ap)


class LateFusion(TowerFusion):
    """Separate transformer towers and heads per modality; logits averaged where present."""

    name = "late"

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__(cfg, layers=cfg.modality_layers + cfg.fusion_layers)
        self.heads_v = Heads(cfg.dim, cfg.num_classes, cfg.dropout)
        self.heads_a = Heads(cfg.dim, cfg.num_classes, cfg.dropout)

    def fuse(self, visual: Tensor, audio: Tensor, vp: Tensor, ap: Tensor) -> FusionOutput:
        W = visual.shape[1]
        v, a, pv, pa = self.towers(visual, audio, vp, ap)
        out_v = self.heads_v(segment_pool(v, pv, W), vp)
        out_a = self.heads_a(segment_pool(a, pa, W), ap)
        return average_outputs([out_v, out_a], [vp, ap])


class CrossAttentionFusion(TowerFusion):
    """Modality layers, then layers where each modality attends to the other."""

    name = "cross_attention"

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__(cfg)
        self.cross_v, self.cross_a = self._tower(cfg.fusion_layers), self._tower(cfg.fusion_layers)
        self.merge = nn.Linear(2 * cfg.dim, cfg.dim)
        self.heads = Heads(cfg.dim, cfg.num_classes, cfg.dropout)

    def fuse(self, visual: Tensor, audio: Tensor, vp: Tensor, ap: Tensor) -> FusionOutput:
        W = visual.shape[1]
        v, a, pv, pa = self.towers(visual, audio, vp, ap)
        for blk_v, blk_a in zip(self.cross_v, self.cross_a):
            v, a = blk_v(v, pv, context=a, context_present=pa), blk_a(a, pa, context=v, context_present=pv)
        emb = self.merge(torch.cat([segment_pool(v, pv, W), segment_pool(a, pa, W)], dim=-1))
        return self.heads(emb, vp | ap)


class HybridFusion(TowerFusion):
    """Attention-bottleneck fusion plus late heads (the default).

    Modality-specific layers; then fusion layers in which each modality's tokens attend
    to themselves and to B bottleneck tokens per segment, the bottleneck being the only
    path between modalities (its per-modality updates are averaged over the modalities
    present). The fused head reads the bottleneck and both modalities; per-modality late
    heads read the modality layers' output; their logits are averaged.
    ``bottleneck_scope="segment"`` (default): a segment's bottleneck tokens read only that
    segment's modality tokens (already given temporal context by the modality layers) and
    the other bottleneck tokens, so they hold a per-segment view of both modalities, where
    an event that needs both is decided; ``"window"``: they read the whole window.
    ``bottleneck_init="summary"`` (default): they start from a projection of the segment's
    pooled modality tokens (plus the learned tokens), so the first fusion layer already
    combines both modalities; ``"learned"``: from the learned tokens alone (as in MBT).
    On the synthetic ablation (300 clips, 3 seeds) segment scope + summary start took the
    hybrid from below early fusion to above it; see the README's benchmark section.
    """

    name = "hybrid"

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__(cfg)
        self.fuse_v, self.fuse_a = self._tower(cfg.fusion_layers), self._tower(cfg.fusion_layers)
        self.bottleneck = nn.Parameter(torch.zeros(1, cfg.bottleneck_tokens, cfg.dim))
        self.bottleneck_time = nn.Parameter(torch.zeros(cfg.window, 1, cfg.dim))
        nn.init.trunc_normal_(self.bottleneck, std=0.02)
        nn.init.trunc_normal_(self.bottleneck_time, std=0.02)
        if cfg.bottleneck_init == "summary":
            self.summary = nn.Sequential(nn.LayerNorm(2 * cfg.dim), nn.Linear(2 * cfg.dim, cfg.bottleneck_tokens * cfg.dim))
        self.merge = nn.Linear(3 * cfg.dim, cfg.dim)
        self.heads = Heads(cfg.dim, cfg.num_classes, cfg.dropout)
        self.heads_v = Heads(cfg.dim, cfg.num_classes, cfg.dropout)
        self.heads_a = Heads(cfg.dim, cfg.num_classes, cfg.dropout)

    def fuse(self, visual: Tensor, audio: Tensor, vp: Tensor, ap: Tensor) -> FusionOutput:
        B, W = visual.shape[:2]
        nb = self.cfg.bottleneck_tokens
        v, a, pv, pa = self.towers(visual, audio, vp, ap)
        seg_v, seg_a = segment_pool(v, pv, W), segment_pool(a, pa, W)  # (B, W, dim), zero where absent
        late_v, late_a = self.heads_v(seg_v, vp), self.heads_a(seg_a, ap)
        z = (self.bottleneck + self.bottleneck_time[:W]).reshape(1, W * nb, -1).expand(B, -1, -1)
        if self.cfg.bottleneck_init == "summary":  # each segment's tokens start from both modalities there
            z = z + self.summary(torch.cat([seg_v, seg_a], dim=-1)).reshape(B, W * nb, -1)
        pz = expand_mask(vp | ap, nb)
        zw_v = expand_mask(vp, nb).unsqueeze(-1).to(z.dtype)  # which modality updates which bottleneck
        zw_a = expand_mask(ap, nb).unsqueeze(-1).to(z.dtype)
        nv, na = v.shape[1], a.shape[1]
        mask_v = mask_a = None
        if self.cfg.bottleneck_scope == "segment":
            mask_v = segment_scope_mask(W, self.cfg.visual_tokens, nb, v.device)
            mask_a = segment_scope_mask(W, self.cfg.audio_tokens, nb, v.device)
        for blk_v, blk_a in zip(self.fuse_v, self.fuse_a):
            xv = blk_v(torch.cat([v, z], dim=1), torch.cat([pv, pz], dim=1), attn_mask=mask_v)
            xa = blk_a(torch.cat([a, z], dim=1), torch.cat([pa, pz], dim=1), attn_mask=mask_a)
            v, zv = xv[:, :nv], xv[:, nv:]
            a, za = xa[:, :na], xa[:, na:]
            z = (zv * zw_v + za * zw_a) / (zw_v + zw_a).clamp_min(1.0)
        fused = torch.cat([segment_pool(z, pz, W), segment_pool(v, pv, W), segment_pool(a, pa, W)], dim=-1)
        out = self.heads(self.merge(fused), vp | ap)
        if not self.cfg.late_heads:
            return out
        return average_outputs([out, late_v, late_a], [vp | ap, vp, ap])


@functools.lru_cache(maxsize=16)  # the same few shapes on every forward pass
def segment_scope_mask(window: int, tokens: int, bottleneck: int, device: torch.device) -> Tensor:
    """(L, L) bool, True = may not attend, over [W*tokens modality tokens, W*bottleneck tokens]:
    bottleneck tokens of segment k see segment k's modality tokens and every bottleneck token;
    modality tokens see everything."""
    seg_m = torch.arange(window, device=device).repeat_interleave(tokens)
    seg_z = torch.arange(window, device=device).repeat_interleave(bottleneck)
    L_m = len(seg_m)
    mask = torch.zeros(L_m + len(seg_z), L_m + len(seg_z), dtype=torch.bool, device=device)
    mask[L_m:, :L_m] = seg_z[:, None] != seg_m[None, :]
    return mask


def _graph() -> type[FusionModel]:
    from fusion.graph import GraphFusion

    return GraphFusion


_FUSION: dict[str, Callable[[], type[FusionModel]]] = {
    "hybrid": lambda: HybridFusion,
    "early": lambda: EarlyFusion,
    "late": lambda: LateFusion,
    "cross_attention": lambda: CrossAttentionFusion,
    "graph": _graph,
    "concat": lambda: ConcatFusion,
}


def list_fusion() -> list[str]:
    return list(_FUSION)


def build_fusion(name: str, cfg: FusionConfig) -> FusionModel:
    """Build the fusion variant ``name``; unknown names are rejected with the known ones."""
    try:
        cls = _FUSION[name]()
    except KeyError:
        raise ValueError(f"unknown fusion {name!r}; known: {', '.join(_FUSION)}") from None
    return cls(cfg)
