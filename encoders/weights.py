"""Loading pretrained weights, kept apart from the architectures.

``weights`` is either a torchvision weights name (``"DEFAULT"``, ``"IMAGENET1K_V1"``, or a
full ``"ResNet18_Weights.IMAGENET1K_V1"``) resolved through torchvision's weights API,
or a path to a local file. Files are read with ``torch.load(weights_only=True)``: a file
that needs arbitrary unpickling is refused, never executed.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a checkpoint file: a plain state dict, or one under 'model'/'state_dict'."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"{path}: refused to load: the file holds pickled Python objects, not just tensors "
            f"(torch.load(weights_only=True) failed: {str(exc).splitlines()[0]})"
        ) from exc
    except Exception as exc:  # truncated zip, not a torch file at all
        raise ValueError(f"{path}: not a readable PyTorch weights file ({exc})") from exc
    for key in ("model", "state_dict"):
        if isinstance(data, Mapping) and key in data and isinstance(data[key], Mapping):
            data = data[key]
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ValueError(f"{path}: no state dict of tensors found in this file")
    return dict(data)


def torchvision_state_dict(builder_weights: Any, name: str) -> dict[str, torch.Tensor]:
    """Resolve ``name`` on a torchvision weights enum and fetch its state dict.

    Uses torchvision's cache (``$TORCH_HOME/hub/checkpoints``) before the network.
    """
    enum = builder_weights
    key = name.split(".")[-1]
    try:
        weights = enum[key] if key != "DEFAULT" else enum.DEFAULT
    except KeyError:
        known = ", ".join(["DEFAULT", *enum.__members__])
        raise ValueError(f"unknown weights {name!r} for {enum.__name__}; known: {known}") from None
    try:
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # no network, blocked host, partial download
        raise RuntimeError(
            f"could not fetch torchvision weights {enum.__name__}.{weights.name} ({exc}); on a machine "
            f"without network, copy the file into $TORCH_HOME/hub/checkpoints or pass weights=PATH"
        ) from exc


def load_into(module: nn.Module, state: Mapping[str, torch.Tensor], source: str,
              ignore_prefixes: tuple[str, ...] = ()) -> None:
    """Strictly load ``state`` into ``module``; mismatches are reported by name and shape."""
    state = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys (e.g. {unexpected[:3]})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} shape mismatches (e.g. {k}: file {tuple(state[k].shape)}, "
                f"model {tuple(own[k].shape)})"
            )
        raise ValueError(f"weights from {source} do not fit {type(module).__name__}: " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


def resolve(module: nn.Module, weights: str | Path | None, enum: Any = None,
            ignore_prefixes: tuple[str, ...] = ()) -> None:
    """Load ``weights`` (None, a torchvision name, or a file path) into ``module``."""
    if weights is None:
        return
    text = str(weights)
    looks_like_file = Path(text).suffix in (".pt", ".pth", ".bin", ".ckpt") or Path(text).exists()
    if looks_like_file:
        load_into(module, read_state_dict(text), text, ignore_prefixes)
    elif enum is not None:
        load_into(module, torchvision_state_dict(enum, text), f"torchvision {text}", ignore_prefixes)
    else:
        raise ValueError(f"weights={text!r}: not a file, and this encoder has no named weights")
