"""Graph fusion: a GCN over modality x time nodes.

Nodes are the 2W per-segment summaries (W visual, W audio). Edges join a node to the
same modality up to ``graph_neighbours`` segments away and to the other modality at the
same segment. Each layer computes H' = LayerNorm(H + relu(A_hat H W)) with
A_hat = D^-1/2 (A + I) D^-1/2 over the nodes present (missing ones lose their edges).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusion.config import FusionConfig
from fusion.heads import FusionOutput, Heads
from fusion.layers import segment_pool
from fusion.models import TowerFusion


def modality_time_adjacency(window: int, neighbours: int) -> Tensor:
    """(2W, 2W) 0/1 adjacency without self loops: temporal within modality, cross at same time."""
    idx = torch.arange(window)
    temporal = ((idx[:, None] - idx[None, :]).abs() <= neighbours).float() - torch.eye(window)
    eye = torch.eye(window)
    return torch.cat([torch.cat([temporal, eye], 1), torch.cat([eye, temporal], 1)], 0)


def normalised_adjacency(adj: Tensor, present: Tensor) -> Tensor:
    """A_hat for each sample: (2W, 2W) adjacency, (B, 2W) presence -> (B, 2W, 2W)."""
    p = present.to(adj.dtype)
    a = adj.unsqueeze(0) * p[:, :, None] * p[:, None, :] + torch.diag_embed(p)
    d = a.sum(-1).clamp_min(1e-6).rsqrt()  # (B, 2W)
    return d[:, :, None] * a * d[:, None, :]


class GraphFusion(TowerFusion):
    name = "graph"

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__(cfg)
        self.register_buffer("adjacency", modality_time_adjacency(cfg.window, cfg.graph_neighbours),
                             persistent=False)
        self.weights = nn.ModuleList(nn.Linear(cfg.dim, cfg.dim) for _ in range(cfg.fusion_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(cfg.dim) for _ in range(cfg.fusion_layers))
        self.drop = nn.Dropout(cfg.dropout)
        self.merge = nn.Linear(2 * cfg.dim, cfg.dim)
        self.heads = Heads(cfg.dim, cfg.num_classes, cfg.dropout)

    def fuse(self, visual: Tensor, audio: Tensor, vp: Tensor, ap: Tensor) -> FusionOutput:
        W = visual.shape[1]
        v, a, pv, pa = self.towers(visual, audio, vp, ap)
        h = torch.cat([segment_pool(v, pv, W), segment_pool(a, pa, W)], dim=1)  # (B, 2W, dim)
        present = torch.cat([vp, ap], dim=1)  # (B, 2W)
        adj = self.adjacency
        if W != self.cfg.window:  # a shorter window uses the top-left part of the graph
            adj = modality_time_adjacency(W, self.cfg.graph_neighbours).to(h)
        a_hat = normalised_adjacency(adj, present)
        for lin, norm in zip(self.weights, self.norms):
            h = norm(h + self.drop(torch.relu(a_hat @ lin(h))))  # H' = relu(A_hat H W)
            h = h * present.unsqueeze(-1).to(h.dtype)
        emb = self.merge(torch.cat([h[:, :W], h[:, W:]], dim=-1))
        return self.heads(emb, vp | ap)
