"""The training recipe: losses, optimiser, schedule and the epoch loop, over tensors.

It knows nothing of files or decoding: ``forward(batch) -> FusionOutput`` is given by the
caller (an encoder+fusion bundle on raw windows, or fusion alone on cached features),
and data is a dict of equally long tensors with ``segment_target`` (B, W) and
``clip_target`` (B,) among them (-100 = ignore).

    recipe = FusionRecipe(model, forward, RecipeConfig(epochs=20))
    history = recipe.fit(train_tensors, validate=lambda: accuracy(...))
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusion.heads import FusionOutput

IGNORE = -100


@dataclass(frozen=True)
class RecipeConfig:
    epochs: int = 30
    batch_size: int = 16
    lr: float = 2e-3  # peak learning rate (AdamW), reached after warm-up, then cosine decay
    encoder_lr_scale: float = 1.0  # learning rate of parameters named "visual."/"audio." (0.1 to fine-tune)
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    clip_weight: float = 0.5  # weight of the clip-classification loss against the segment loss
    grad_clip: float = 1.0
    multilabel: bool = False  # clip loss: BCE on one-hot targets instead of cross-entropy
    seed: int = 0

    def problems(self) -> list[str]:
        out = []
        if self.epochs < 1 or self.batch_size < 1:
            out.append("epochs and batch_size must be >= 1")
        if not self.lr > 0:
            out.append("lr must be > 0")
        return out


@dataclass
class EpochStats:
    epoch: int
    loss: float
    segment_loss: float
    clip_loss: float
    seconds: float
    validation: float | None = None


@dataclass
class History:
    epochs: list[EpochStats] = field(default_factory=list)
    best_epoch: int = -1
    best_validation: float | None = None


def losses(out: FusionOutput, batch: dict[str, Tensor], multilabel: bool) -> tuple[Tensor, Tensor]:
    """Segment cross-entropy over C+1 classes and the clip loss, both ignoring IGNORE targets."""
    seg_t = batch["segment_target"].to(out.segment_logits.device)
    seg = F.cross_entropy(out.segment_logits.flatten(0, 1).float(), seg_t.flatten(), ignore_index=IGNORE)
    clip_t = batch["clip_target"].to(out.clip_logits.device)
    keep = clip_t != IGNORE
    if not keep.any():
        return seg, out.clip_logits.sum() * 0.0
    logits = out.clip_logits[keep].float()
    if multilabel:
        clip = F.binary_cross_entropy_with_logits(logits, F.one_hot(clip_t[keep], logits.shape[1]).float())
    else:
        clip = F.cross_entropy(logits, clip_t[keep])
    return seg, clip


class FusionRecipe:
    """setup (optimiser, schedule) -> fit (epochs, best-on-validation) -> the trained module."""

    def __init__(self, model: nn.Module, forward: Callable[[dict[str, Tensor]], FusionOutput],
                 cfg: RecipeConfig) -> None:
        problems = cfg.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self.model, self.forward, self.cfg = model, forward, cfg
        encoder = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith(("visual.", "audio."))]
        other = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith(("visual.", "audio."))]
        groups = [{"params": other, "lr": cfg.lr}]
        if encoder:
            groups.append({"params": encoder, "lr": cfg.lr * cfg.encoder_lr_scale})
        self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.base_lrs = [g["lr"] for g in groups]
        self.step = 0
        self.total_steps = 1

    def _set_lr(self) -> None:
        warm = max(1, int(self.cfg.warmup_fraction * self.total_steps))
        if self.step < warm:
            scale = (self.step + 1) / warm
        else:
            progress = (self.step - warm) / max(1, self.total_steps - warm)
            scale = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * scale

    def fit(self, data: dict[str, Tensor], validate: Callable[[], float] | None = None,
            on_epoch: Callable[[EpochStats], None] | None = None,
            on_step: Callable[[int], None] | None = None,
            prepare: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None) -> History:
        """Train for ``cfg.epochs``; keeps the weights of the best validation score (higher is better).

        ``prepare`` turns each training batch into what the model sees and is scored on
        (augmentation, modality dropout and the targets that go with it).
        """
        cfg = self.cfg
        n = len(data["segment_target"])
        per_epoch = math.ceil(n / cfg.batch_size)
        self.total_steps = per_epoch * cfg.epochs
        gen = torch.Generator().manual_seed(cfg.seed)
        history = History()
        best_state = None
        for epoch in range(cfg.epochs):
            self.model.train()
            t0 = time.perf_counter()
            order = torch.randperm(n, generator=gen)
            sums = [0.0, 0.0, 0.0]
            for b in range(per_epoch):
                rows = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                if len(rows) < 2 and n > 1:
                    continue  # batch norm needs more than one sample
                batch = {k: v[rows] for k, v in data.items()}
                if prepare is not None:
                    batch = prepare(batch)
                self._set_lr()
                out = self.forward(batch)
                seg, clip = losses(out, batch, cfg.multilabel)
                loss = seg + cfg.clip_weight * clip
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.optimizer.step()
                self.step += 1
                for i, v in enumerate((loss, seg, clip)):
                    sums[i] += float(v.detach())
                if on_step:
                    on_step(1)
            stats = EpochStats(epoch + 1, sums[0] / per_epoch, sums[1] / per_epoch, sums[2] / per_epoch,
                               time.perf_counter() - t0)
            if validate is not None:
                self.model.eval()
                stats.validation = float(validate())
                if history.best_validation is None or stats.validation >= history.best_validation:
                    history.best_validation, history.best_epoch = stats.validation, stats.epoch
                    best_state = copy.deepcopy(self.model.state_dict())
            history.epochs.append(stats)
            if on_epoch:
                on_epoch(stats)
        if best_state is not None:
            self.model.load_state_dict(best_state)
        else:
            history.best_epoch = cfg.epochs
        self.model.eval()
        return history
