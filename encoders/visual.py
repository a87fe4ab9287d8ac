"""Visual encoders: uint8 RGB frames of one segment -> tokens.

Every encoder takes ``frames`` uint8 ``(B, F, S, S, 3)`` (the decoder's layout, so
frames travel to the device as bytes) and returns ``(B, tokens, dim)``; it normalises
on the device with its contract's mean and std. Architecture only: weights are loaded
by ``encoders.weights`` after building.
"""

from __future__ import annotations

from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from encoders.contracts import IMAGENET_MEAN, IMAGENET_STD, KINETICS_MEAN, KINETICS_STD, VisualContract


class VisualEncoder(nn.Module):
    """Base: holds the contract and the (non-persistent) normalisation constants."""

    contract: VisualContract

    def __init__(self, contract: VisualContract) -> None:
        super().__init__()
        self.contract = contract
        self.register_buffer("mean", torch.tensor(contract.mean).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(contract.std).view(1, 1, 3, 1, 1), persistent=False)

    def normalise(self, frames: Tensor) -> Tensor:
        """uint8 (B, F, S, S, 3) -> float (B, F, 3, S, S), normalised."""
        x = frames.permute(0, 1, 4, 2, 3).to(self.mean.dtype) / 255.0
        return (x - self.mean) / self.std


def grid_tokens(features: Tensor, batch: int, frames: int, grid: int) -> Tensor:
    """(B*F, C, h, w) feature maps -> (B, grid*grid, C) tokens, averaged over frames."""
    pooled = F.adaptive_avg_pool2d(features, grid)  # (B*F, C, g, g)
    pooled = pooled.view(batch, frames, pooled.shape[1], grid * grid).mean(dim=1)  # (B, C, g*g)
    return pooled.transpose(1, 2)  # (B, g*g, C)


class SmallVisualCNN(VisualEncoder):
    """A four-stage CNN trained from scratch: fast on a CPU, enough for small data.

    frames (B, F, S, S, 3) -> per frame: 4 x [conv3x3-BN-ReLU, maxpool] -> (C, S/16, S/16)
    -> pooled to a grid x grid map, averaged over F -> (B, grid^2, C) -> Linear -> dim
    """

    def __init__(self, contract: VisualContract, width: int = 32, grid: int = 2) -> None:
        super().__init__(contract)
        self.grid = grid
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.proj = nn.Linear(chans[-1], contract.dim)

    def forward(self, frames: Tensor) -> Tensor:
        B, Fr = frames.shape[:2]
        x = self.normalise(frames).flatten(0, 1)  # (B*F, 3, S, S)
        tokens = grid_tokens(self.features(x), B, Fr, self.grid)  # (B, g*g, C)
        return self.proj(tokens)  # (B, g*g, dim)


class ResNet18Visual(VisualEncoder):
    """torchvision ResNet-18 per frame; ``grid x grid`` spatial tokens of width 512.

    ``self.backbone`` is torchvision's own module, so its state-dict keys are torchvision's
    and any ResNet-18 checkpoint loads as it is (the unused ``fc`` included).
    """

    def __init__(self, contract: VisualContract, grid: int = 2) -> None:
        super().__init__(contract)
        from torchvision.models import resnet18

        self.grid = grid
        self.backbone = resnet18(weights=None)

    def forward(self, frames: Tensor) -> Tensor:
        B, Fr = frames.shape[:2]
        x = self.normalise(frames).flatten(0, 1)
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        x = b.layer4(b.layer3(b.layer2(b.layer1(x))))  # (B*F, 512, S/32, S/32)
        return grid_tokens(x, B, Fr, self.grid)  # (B, g*g, 512)


class R2Plus1DVisual(VisualEncoder):
    """torchvision R(2+1)D-18 over the frames of a segment; ``grid x grid`` tokens of width 512."""

    def __init__(self, contract: VisualContract, grid: int = 2) -> None:
        super().__init__(contract)
        from torchvision.models.video import r2plus1d_18

        self.grid = grid
        self.backbone = r2plus1d_18(weights=None)

    def forward(self, frames: Tensor) -> Tensor:
        x = self.normalise(frames).transpose(1, 2)  # (B, 3, F, S, S)
        b = self.backbone
        x = b.layer4(b.layer3(b.layer2(b.layer1(b.stem(x)))))  # (B, 512, T', h, w)
        x = F.adaptive_avg_pool2d(x.mean(dim=2), self.grid)  # (B, 512, g, g)
        return x.flatten(2).transpose(1, 2)  # (B, g*g, 512)


def small_cnn(*, dim: int = 128, frame_size: int = 48, fps: Fraction | int | str = 2,
              grid: int = 2, width: int = 16) -> SmallVisualCNN:
    """Small CNN from scratch (default: 2 frames/s at 48x48, 4 tokens of 128; ~8 M MACs a frame)."""
    contract = VisualContract(Fraction(fps), frame_size, IMAGENET_MEAN, IMAGENET_STD, dim, grid * grid)
    return SmallVisualCNN(contract, width=width, grid=grid)


def resnet18(*, frame_size: int = 224, fps: Fraction | int | str = 1, grid: int = 2) -> ResNet18Visual:
    """torchvision ResNet-18 (ImageNet normalisation; 1 frame/s at 224x224 by default)."""
    contract = VisualContract(Fraction(fps), frame_size, IMAGENET_MEAN, IMAGENET_STD, 512, grid * grid)
    return ResNet18Visual(contract, grid=grid)


def r2plus1d_18(*, frame_size: int = 112, fps: Fraction | int | str = 8, grid: int = 2) -> R2Plus1DVisual:
    """torchvision R(2+1)D-18 video model (Kinetics normalisation; 8 frames/s at 112x112)."""
    contract = VisualContract(Fraction(fps), frame_size, KINETICS_MEAN, KINETICS_STD, 512, grid * grid)
    return R2Plus1DVisual(contract, grid=grid)


def torchvision_weights_enum(name: str):  # noqa: ANN201 - a torchvision enum class
    """The torchvision weights enum behind a visual encoder name, if any."""
    from torchvision.models import ResNet18_Weights
    from torchvision.models.video import R2Plus1D_18_Weights

    return {"resnet18": ResNet18_Weights, "r2plus1d_18": R2Plus1D_18_Weights}.get(name)
