"""How much sound vs. sight drove each segment's scores: Shapley values over the two modalities.

For every segment and class c the fused model is run four times in one batch: with both
modalities, without audio, without vision and without either (a modality is removed by
its mask, as for a file that lacks it). With p_AV, p_A, p_V, p_0 the probabilities of c,
the two-player Shapley values are

    phi_audio  = ((p_AV - p_V) + (p_A - p_0)) / 2
    phi_visual = ((p_AV - p_A) + (p_V - p_0)) / 2

and the audio share is phi_audio / (phi_audio + phi_visual), each phi clipped at 0. A class
that needs both modalities (an AND, like an AVE event) gets about 0.5; one that sound
alone decides gets about 1. It is 0.5 when neither modality raises p(c), 0 where the audio
is missing, and 1 where the video is. This works for every fusion variant alike.
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
    # with both modalities hidden every input is masked out, so p_0 is the same for every
    # sample: one extra row stands for all of them
    out = model(
        torch.cat([visual] * 3 + [visual[:1]]), torch.cat([audio] * 3 + [audio[:1]]),
        torch.cat([vp, vp, none, none[:1]]), torch.cat([ap, none, ap, none[:1]]),
    )
    probs = torch.softmax(out.segment_logits.float(), dim=-1)[..., :-1]  # drop background
    p_av, p_v, p_a, p_0 = probs[:B], probs[B : 2 * B], probs[2 * B : 3 * B], probs[3 * B :]
    phi_a = (((p_av - p_v) + (p_a - p_0)) / 2).clamp_min(0)
    phi_v = (((p_av - p_a) + (p_v - p_0)) / 2).clamp_min(0)
    total = phi_a + phi_v
    share = torch.where(total > 1e-6, phi_a / total.clamp_min(1e-12), torch.full_like(total, 0.5))
    share = torch.where(ap.unsqueeze(-1), share, torch.zeros_like(share))
    share = torch.where(vp.unsqueeze(-1) | ~ap.unsqueeze(-1), share, torch.ones_like(share))
    full = FusionOutput(out.segment_logits[:B], out.clip_logits[:B], out.embeddings[:B])
    return full, share
