"""Encoders: contracts, shapes, gradients, weights loading (files and torchvision's API)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from encoders.audio import cnn14
from encoders.registry import build_encoder, list_encoders
from encoders.weights import read_state_dict

torch.manual_seed(0)

TINY = {
    ("visual", "small_cnn"): dict(dim=16, frame_size=32, fps=2, width=4),
    ("visual", "resnet18"): dict(frame_size=32, fps=1),
    ("visual", "r2plus1d_18"): dict(frame_size=32, fps=2),
    ("audio", "small_cnn"): dict(dim=16, width=4, tokens=3),
    ("audio", "cnn14"): dict(width=1 / 16),
    ("audio", "cnn14_16k"): dict(width=1 / 16, tokens=3),
}


def test_registry_lists_every_encoder() -> None:
    assert set(list_encoders("visual")) == {"small_cnn", "resnet18", "r2plus1d_18"}
    assert set(list_encoders("audio")) == {"small_cnn", "cnn14", "cnn14_16k"}


@pytest.mark.parametrize("modality, name", list(TINY))
def test_encoder_forward_backward_and_contract(modality: str, name: str) -> None:
    enc = build_encoder(modality, name, **TINY[(modality, name)])
    c = enc.contract
    if modality == "visual":
        F = int(c.fps)  # one-second segments
        x = torch.randint(0, 256, (2, F, c.frame_size, c.frame_size, 3), dtype=torch.uint8)
    else:
        x = torch.randn(2, c.sample_rate) * 0.1
    out = enc(x)
    assert out.shape == (2, c.tokens, c.dim)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    grads = [p.grad for p in enc.parameters() if p.requires_grad and p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_unknown_names_and_arguments_are_rejected_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: .*resnet18"):
        build_encoder("visual", "resnet1000")
    with pytest.raises(TypeError, match="'colour', 'depth'.*it takes"):
        build_encoder("visual", "small_cnn", depth=3, colour=True)


# The official PANNs Cnn14 (AudioSet, Cnn14_mAP=0.431.pth) parameter names and shapes,
# without the STFT / mel front-end buffers that avfuse rebuilds with torchaudio.
def _official_cnn14() -> dict[str, tuple[int, ...]]:
    keys: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, n: int) -> None:
        keys.update({f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
                     f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()})

    bn("bn0", 64)
    chans = [1, 64, 128, 256, 512, 1024, 2048]
    for i in range(1, 7):
        cin, cout = chans[i - 1], chans[i]
        keys[f"conv_block{i}.conv1.weight"] = (cout, cin, 3, 3)
        keys[f"conv_block{i}.conv2.weight"] = (cout, cout, 3, 3)
        bn(f"conv_block{i}.bn1", cout)
        bn(f"conv_block{i}.bn2", cout)
    keys.update({"fc1.weight": (2048, 2048), "fc1.bias": (2048,),
                 "fc_audioset.weight": (527, 2048), "fc_audioset.bias": (527,)})
    return keys


def test_cnn14_state_dict_matches_the_official_keys_and_shapes() -> None:
    model = cnn14()  # the full size (80M parameters, a second to build)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == _official_cnn14()
    c = model.contract
    assert (c.sample_rate, c.n_fft, c.hop_length, c.n_mels, c.f_min, c.f_max) == (32000, 1024, 320, 64, 50.0, 14000.0)


def test_cnn14_loads_an_official_style_checkpoint(tmp_path: Path) -> None:
    src = build_encoder("audio", "cnn14", width=1 / 16)
    state = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in src.state_dict().items()}
    # the official files also hold the torchlibrosa front end, which avfuse rebuilds
    state["spectrogram_extractor.stft.conv_real.weight"] = torch.zeros(513, 1, 1024)
    state["logmel_extractor.melW"] = torch.zeros(513, 64)
    path = tmp_path / "Cnn14_tiny.pth"
    torch.save({"model": state, "iteration": 1000}, path)
    enc = build_encoder("audio", "cnn14", width=1 / 16, weights=path)
    for k, v in enc.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_resnet18_weights_from_a_local_file(tmp_path: Path) -> None:
    import torchvision

    donor = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18_custom.pth"
    torch.save(donor.state_dict(), path)
    enc = build_encoder("visual", "resnet18", weights=path, frame_size=32)
    for k, v in donor.state_dict().items():
        assert torch.equal(enc.backbone.state_dict()[k], v), k


def test_torchvision_weights_api_uses_its_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """weights="DEFAULT" goes through torchvision's API; a cached file stands in for the download."""
    import torchvision
    from torchvision.models import ResNet18_Weights

    donor = torchvision.models.resnet18(weights=None)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(donor.state_dict(), cache / os.path.basename(ResNet18_Weights.DEFAULT.url))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    enc = build_encoder("visual", "resnet18", weights="DEFAULT", frame_size=32)
    assert torch.equal(enc.backbone.conv1.weight, donor.conv1.weight)
    with pytest.raises(ValueError, match="unknown weights 'IMAGENET9K'"):
        build_encoder("visual", "resnet18", weights="IMAGENET9K", frame_size=32)


def test_missing_torchvision_download_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty cache: torchvision would download
    monkeypatch.setattr("torch.hub.download_url_to_file",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("network unreachable")))
    with pytest.raises(RuntimeError, match="weights=PATH"):
        build_encoder("visual", "resnet18", weights="IMAGENET1K_V1", frame_size=32)


def test_mismatched_weights_are_reported_by_key(tmp_path: Path) -> None:
    import torchvision

    state = torchvision.models.resnet18(weights=None).state_dict()
    state["fc.weight"] = torch.zeros(10, 512)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"fc\.weight: file \(10, 512\), model \(1000, 512\)"):
        build_encoder("visual", "resnet18", weights=path, frame_size=32)


class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.marker, "w"))


def test_pickled_code_is_refused_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "x": _Payload(str(marker))}, path)
    with pytest.raises(ValueError, match="refused"):
        read_state_dict(path)
    assert not marker.exists()
