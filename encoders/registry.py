"""Registry of encoders by modality and name; builders validate their arguments up front.

>>> sorted(list_encoders("audio"))
['cnn14', 'cnn14_16k', 'small_cnn']
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch import nn

from encoders import audio, visual
from encoders.weights import resolve


@dataclass(frozen=True)
class EncoderSpec:
    modality: str  # "visual" or "audio"
    name: str
    builder: Callable[..., nn.Module]
    weights_enum: Callable[[], Any] | None = None  # torchvision enum, resolved lazily
    ignore_prefixes: tuple[str, ...] = ()  # checkpoint keys that belong to a rebuilt front end


_REGISTRY: dict[tuple[str, str], EncoderSpec] = {}


def register(spec: EncoderSpec) -> None:
    key = (spec.modality, spec.name)
    if key in _REGISTRY:
        raise ValueError(f"{spec.modality} encoder {spec.name!r} is already registered")
    _REGISTRY[key] = spec


def list_encoders(modality: str) -> list[str]:
    return [name for (m, name) in _REGISTRY if m == modality]


def get_spec(modality: str, name: str) -> EncoderSpec:
    if modality not in ("visual", "audio"):
        raise ValueError(f"modality must be 'visual' or 'audio', not {modality!r}")
    try:
        return _REGISTRY[(modality, name)]
    except KeyError:
        known = ", ".join(sorted(list_encoders(modality)))
        raise ValueError(f"unknown {modality} encoder {name!r}; known: {known}") from None


def check_kwargs(builder: Callable[..., Any], kwargs: dict[str, Any], what: str) -> None:
    """Reject every argument the builder does not take, in one error."""
    params = inspect.signature(builder).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        allowed = ", ".join(sorted(params))
        raise TypeError(f"{what} does not take {', '.join(map(repr, unknown))}; it takes: {allowed}")


def build_encoder(modality: str, name: str, *, weights: str | Path | None = None, **kwargs: Any) -> nn.Module:
    """Build an encoder by name, then load ``weights`` (a torchvision name or a file) if given."""
    spec = get_spec(modality, name)
    check_kwargs(spec.builder, kwargs, f"{modality} encoder {name!r}")
    module = spec.builder(**kwargs)
    enum = spec.weights_enum() if spec.weights_enum is not None else None
    # torchvision-backed encoders keep torchvision's module as ``backbone``: its keys are
    # what torchvision's weights and files saved from torchvision models hold
    resolve(getattr(module, "backbone", module), weights, enum, spec.ignore_prefixes)
    return module


register(EncoderSpec("visual", "small_cnn", visual.small_cnn))
register(EncoderSpec("visual", "resnet18", visual.resnet18, lambda: visual.torchvision_weights_enum("resnet18")))
register(EncoderSpec("visual", "r2plus1d_18", visual.r2plus1d_18,
                     lambda: visual.torchvision_weights_enum("r2plus1d_18")))
register(EncoderSpec("audio", "small_cnn", audio.small_cnn))
register(EncoderSpec("audio", "cnn14", audio.cnn14, ignore_prefixes=audio.PANNS_FRONTEND_PREFIXES))
register(EncoderSpec("audio", "cnn14_16k", audio.cnn14_16k, ignore_prefixes=audio.PANNS_FRONTEND_PREFIXES))
