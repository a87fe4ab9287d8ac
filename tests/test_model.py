"""The model bundle and its checkpoint file."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import torch

from pipeline.errors import CheckpointError
from pipeline.model import create_model, load_checkpoint, save_checkpoint

LABELS = ["dog", "bell", "siren"]
TINY = dict(visual_kwargs=dict(dim=16, frame_size=32, width=4), audio_kwargs=dict(dim=16, width=4),
            fusion_config=dict(dim=16, heads=2, dropout=0.0))


def tiny_model(**kw):
    torch.manual_seed(0)
    return create_model(LABELS, **{**TINY, **kw})


def fake_batch(model, B: int = 2):
    s = model.decode_settings
    W = model.window.segments
    frames = torch.randint(0, 255, (B, W, s.frames_per_segment, s.frame_size, s.frame_size, 3), dtype=torch.uint8)
    audio = torch.randn(B, W, s.samples_per_segment) * 0.1
    present = torch.ones(B, W, dtype=torch.bool)
    return frames, audio, present, present.clone()


def test_decode_settings_come_from_the_encoder_contracts() -> None:
    m = tiny_model()
    s = m.decode_settings
    assert (s.fps, s.frame_size, s.sample_rate, s.segment_s) == (Fraction(2), 32, 16000, 1)  # from TINY
    assert s.decode_video and s.decode_audio
    audio_only = tiny_model(modalities=["audio"])
    assert not audio_only.decode_settings.decode_video


@pytest.mark.parametrize("fusion", ["hybrid", "graph", "concat"])
def test_checkpoint_round_trip_is_bit_exact(tmp_path: Path, fusion: str) -> None:
    m = tiny_model(fusion=fusion).eval()
    m.trained = True
    path = save_checkpoint(m, tmp_path / "m.pt", provenance={"epochs": 3, "data": "abc"})
    loaded = load_checkpoint(path)
    assert loaded.labels == LABELS and loaded.fusion_name == fusion and loaded.trained
    assert loaded.provenance["epochs"] == 3
    assert loaded.contracts() == m.contracts()
    a, b = m.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    batch = fake_batch(m)
    with torch.no_grad():
        assert torch.equal(m(*batch).segment_logits, loaded(*batch).segment_logits)
    assert len(loaded.model_id) == 16


def test_model_files_from_before_a_fusion_setting_existed_load_as_trained(tmp_path: Path) -> None:
    """A file that does not record ``bottleneck_scope``/``bottleneck_init`` was trained when they
    were "window"/"learned": it loads so, whatever today's defaults are."""
    m = tiny_model(fusion_config={**TINY["fusion_config"], "bottleneck_scope": "window",
                                  "bottleneck_init": "learned"}).eval()
    path = save_checkpoint(m, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    for key in ("bottleneck_scope", "bottleneck_init"):
        del payload["config"]["fusion"]["config"][key]
    torch.save(payload, tmp_path / "old.pt")
    old = load_checkpoint(tmp_path / "old.pt")
    assert (old.fusion.cfg.bottleneck_scope, old.fusion.cfg.bottleneck_init) == ("window", "learned")
    batch = fake_batch(m)
    with torch.no_grad():
        assert torch.equal(m(*batch).segment_logits, old(*batch).segment_logits)


def test_pickled_code_checkpoint_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):  # noqa: ANN204
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    torch.save({"format": "avfuse-model", "hook": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


def test_wrong_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "text.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="format marker"):
        load_checkpoint(tmp_path / "other.pt")
    m = tiny_model()
    path = save_checkpoint(m, tmp_path / "m.pt")
    data = torch.load(path, weights_only=True)
    data["format_version"] = 99
    torch.save(data, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "future.pt")
    data["format_version"] = 1
    data["state_dict"].pop(next(iter(data["state_dict"])))
    torch.save(data, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match="cannot be rebuilt"):
        load_checkpoint(tmp_path / "broken.pt")


def test_unimodal_model_ignores_the_other_modality() -> None:
    m = tiny_model(modalities=["visual"]).eval()
    frames, audio, vp, ap = fake_batch(m)
    with torch.no_grad():
        out1 = m(frames, audio, vp, ap).segment_logits
        out2 = m(frames, audio * 50 + 1, vp, ap).segment_logits
    assert torch.equal(out1, out2)
