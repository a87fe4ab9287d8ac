"""How much sound vs. sight drove each segment's scores, measured by masking.

For every segment and class c, the fused model is run three times in one batch: with
both modalities, without audio, without vision. The audio share of class c is the drop
of p(c) when audio is hidden, over the sum of both drops:

    share_audio = relu(p - p_no_audio) / (relu(p - p_no_audio) + relu(p - p_no_visual))

It is 0.5 when neither removal lowers p(c) (both redundant), 0 where the audio is
missing, and 1 where the video is. This works for every fusion variant alike.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fusion.heads import FusionOutput
from fusion.models import FusionModel


@torch.no_grad()
def with_modality_shares(model: FusionModel, visual: Tensor, audio: Tensor, vp: Tensor,
                         ap: Tensor) -> tuple[FusionOutput, Tensor]:
    """Run ``model`` and return its output and the audio share (B, W, C) of every class."""
    B = visual.shape[0]
    none = torch.zeros_like(vp)
    out = model(
        torch.cat([visual] * 3), torch.cat([audio] * 3),
        torch.cat([vp, vp, none]), torch.cat([ap, none, ap]),
    )
    probs = torch.softmax(out.segment_logits.float(), dim=-1)[..., :-1]  # drop background
    p, p_no_audio, p_no_visual = probs[:B], probs[B : 2 * B], probs[2 * B :]
    drop_a = (p - p_no_audio).clamp_min(0)
    drop_v = (p - p_no_visual).clamp_min(0)
    total = drop_a + drop_v
    share = torch.where(total > 1e-6, drop_a / total.clamp_min(1e-12), torch.full_like(total, 0.5))
    share = torch.where(ap.unsqueeze(-1), share, torch.zeros_like(share))
    share = torch.where(vp.unsqueeze(-1) | ~ap.unsqueeze(-1), share, torch.ones_like(share))
    full = FusionOutput(out.segment_logits[:B], out.clip_logits[:B], out.embeddings[:B])
    return full, share
