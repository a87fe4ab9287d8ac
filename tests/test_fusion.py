"""Every fusion variant: shapes, gradients, masks (missing modalities), attribution."""

from __future__ import annotations

import pytest
import torch

from fusion.attribution import with_modality_shares
from fusion.config import FusionConfig
from fusion.graph import modality_time_adjacency, normalised_adjacency
from fusion.models import build_fusion, list_fusion

CFG = FusionConfig(num_classes=5, visual_dim=12, audio_dim=10, visual_tokens=3, audio_tokens=2,
                   window=6, dim=16, heads=2, dropout=0.0)
B, W = 3, 6


def inputs(seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(B, W, 3, 12, generator=g)
    a = torch.randn(B, W, 2, 10, generator=g)
    vp = torch.ones(B, W, dtype=torch.bool)
    ap = torch.ones(B, W, dtype=torch.bool)
    ap[1] = False  # sample 1: a file without audio
    vp[2, :2] = False  # sample 2: video starts late ...
    ap[2, 5] = False  # ... and the audio ends early
    return v, a, vp, ap


SEGMENT_SCOPE = FusionConfig(**{**CFG.to_dict(), "bottleneck_scope": "segment"})


def test_segment_scoped_bottleneck_reads_only_its_segment() -> None:
    from fusion.models import segment_scope_mask

    mask = segment_scope_mask(3, 2, 1, torch.device("cpu"))  # 6 modality tokens, 3 bottleneck tokens
    assert mask.shape == (9, 9) and not mask[:6].any()
    assert mask[6].tolist() == [False, False, True, True, True, True, False, False, False]
    torch.manual_seed(0)
    model = build_fusion("hybrid", SEGMENT_SCOPE).eval()
    v, a, vp, ap = inputs()
    with torch.no_grad():
        out = model(v, a, vp, ap)
        a2 = a.clone()
        a2[1] = 50.0  # no audio in sample 1: still no influence
        assert torch.allclose(out.segment_logits, model(v, a2, vp, ap).segment_logits, atol=1e-5)
    assert torch.isfinite(out.segment_logits).all()
    none = torch.zeros_like(vp)
    with torch.no_grad():
        assert torch.isfinite(model(v, a, none, none).segment_logits).all()


def test_summary_initialised_bottleneck_ignores_absent_modalities_and_trains() -> None:
    cfg = FusionConfig(**{**SEGMENT_SCOPE.to_dict(), "bottleneck_init": "summary"})
    torch.manual_seed(0)
    model = build_fusion("hybrid", cfg)
    v, a, vp, ap = inputs()
    out = model(v, a, vp, ap)
    out.segment_logits.sum().backward()
    assert model.summary[1].weight.grad is not None and model.summary[1].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        a2 = a.clone()
        a2[1] = 50.0  # sample 1 has no audio: its audio tokens must not reach the bottleneck
        assert torch.allclose(model(v, a, vp, ap).segment_logits, model(v, a2, vp, ap).segment_logits, atol=1e-5)
        none = torch.zeros_like(vp)
        assert torch.isfinite(model(v, a, none, none).segment_logits).all()
    with pytest.raises(ValueError, match="bottleneck_init"):
        build_fusion("hybrid", FusionConfig(**{**CFG.to_dict(), "bottleneck_init": "random"}))


def test_all_six_variants_are_registered() -> None:
    assert list_fusion() == ["hybrid", "early", "late", "cross_attention", "graph", "concat"]
    with pytest.raises(ValueError, match="known: hybrid, early"):
        build_fusion("transformer_xl", CFG)


@pytest.mark.parametrize("name", list_fusion())
def test_shapes_gradients_and_no_nans(name: str) -> None:
    torch.manual_seed(0)
    model = build_fusion(name, CFG)
    v, a, vp, ap = inputs()
    out = model(v, a, vp, ap)
    assert out.segment_logits.shape == (B, W, CFG.num_classes + 1)
    assert out.clip_logits.shape == (B, CFG.num_classes)
    assert out.embeddings.shape[:2] == (B, W)
    for t in (out.segment_logits, out.clip_logits, out.embeddings):
        assert torch.isfinite(t).all()
    (out.segment_logits.logsumexp(-1).mean() + out.clip_logits.logsumexp(-1).mean()).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    assert sum(float(g.abs().sum()) for g in grads.values() if g is not None) > 0


@pytest.mark.parametrize("name", list_fusion())
def test_a_masked_modality_has_no_influence(name: str) -> None:
    torch.manual_seed(0)
    model = build_fusion(name, CFG).eval()
    v, a, vp, ap = inputs()
    with torch.no_grad():
        base = model(v, a, vp, ap)
        a2 = a.clone()
        a2[1] = torch.randn_like(a2[1]) * 100  # sample 1 has no audio: its values must not matter
        v2 = v.clone()
        v2[2, :2] = 7.0  # nor the visual tokens of sample 2's first, missing, segments
        other = model(v2, a2, vp, ap)
    assert torch.allclose(base.segment_logits, other.segment_logits, atol=1e-5)
    assert torch.allclose(base.clip_logits, other.clip_logits, atol=1e-5)


@pytest.mark.parametrize("name", list_fusion())
def test_every_modality_missing_everywhere_is_not_a_crash(name: str) -> None:
    model = build_fusion(name, CFG).eval()
    v, a, _, _ = inputs()
    none = torch.zeros(B, W, dtype=torch.bool)
    with torch.no_grad():
        only_audio = model(v, a, none, torch.ones_like(none))
        nothing = model(v, a, none, none)
    assert torch.isfinite(only_audio.segment_logits).all() and torch.isfinite(nothing.segment_logits).all()


@pytest.mark.parametrize("name", list_fusion())
def test_modality_shares(name: str) -> None:
    model = build_fusion(name, CFG).eval()
    v, a, vp, ap = inputs()
    out, share = with_modality_shares(model, v, a, vp, ap)
    assert share.shape == (B, W, CFG.num_classes)
    assert ((share >= 0) & (share <= 1)).all()
    assert (share[1] == 0).all()  # no audio track: vision drove everything
    assert (share[2, :2] == 1).all()  # no video yet: sound drove everything
    with torch.no_grad():
        direct = model(v, a, vp, ap)
    assert torch.allclose(out.segment_logits, direct.segment_logits, atol=1e-5)


@pytest.mark.parametrize("name", list_fusion())
def test_with_nothing_present_the_output_does_not_depend_on_the_input(name: str) -> None:
    """Why attribution computes p(class | no modality) once per batch."""
    model = build_fusion(name, CFG).eval()
    v, a, _, _ = inputs(0)
    v2, a2, _, _ = inputs(1)
    none = torch.zeros(B, W, dtype=torch.bool)
    with torch.no_grad():
        one, two = model(v, a, none, none), model(v2 * 3, a2 - 1, none, none)
    assert torch.allclose(one.segment_logits, two.segment_logits, atol=1e-5)
    assert torch.allclose(one.segment_logits[0, 0], one.segment_logits[-1, -1], atol=1e-5)


def test_modality_dropout_hides_one_present_modality() -> None:
    from fusion.models import drop_modalities

    vp = torch.ones(1000, 6, dtype=torch.bool)
    ap = vp.clone()
    ap[:100] = False  # no audio at all: vision is never dropped for these
    g = torch.Generator().manual_seed(0)
    vp2, ap2 = drop_modalities(vp, ap, 0.5, generator=g)
    lost_v, lost_a = ~vp2.any(1), (~ap2.any(1)) & ap.any(1)
    assert not (lost_v & lost_a).any()  # never both
    assert not lost_v[:100].any()
    assert 0.35 < (lost_v | lost_a)[100:].float().mean() < 0.65
    assert torch.equal(drop_modalities(vp, ap, 0.0)[0], vp)


def test_graph_adjacency() -> None:
    adj = modality_time_adjacency(4, 1)
    assert adj.shape == (8, 8) and torch.equal(adj, adj.T) and adj.diagonal().sum() == 0
    assert adj[0, 1] == 1 and adj[0, 2] == 0 and adj[0, 4] == 1 and adj[0, 5] == 0
    present = torch.tensor([[1, 1, 1, 1, 0, 0, 0, 0]], dtype=torch.bool)  # audio missing
    a_hat = normalised_adjacency(adj, present)[0]
    assert (a_hat[:, 4:] == 0).all() and (a_hat[4:] == 0).all()
    # D^-1/2 (A + I) D^-1/2 on the visual chain: end nodes have degree 2, inner ones 3
    assert a_hat[0, 0] == pytest.approx(0.5) and a_hat[1, 1] == pytest.approx(1 / 3)
    assert a_hat[0, 1] == pytest.approx(1 / (2 * 3) ** 0.5)


def test_config_validation_lists_every_problem() -> None:
    bad = FusionConfig(num_classes=0, visual_dim=0, audio_dim=4, visual_tokens=1, audio_tokens=1,
                       dim=10, heads=3)
    with pytest.raises(ValueError) as err:
        build_fusion("early", bad)
    msg = str(err.value)
    assert "num_classes" in msg and "divisible" in msg and "visual_dim" in msg
