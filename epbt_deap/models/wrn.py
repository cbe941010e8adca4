"""Wide ResNets of Zagoruyko & Komodakis 2016 for CIFAR-sized input (depth 6n+4, pre-activation blocks)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from epbt_deap.models.resnet import init_he

STEM_CHANNELS = 16
STAGE_CHANNELS = (16, 32, 64)  # times the widen factor


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3 twice, with an identity or 1x1-conv shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        changes_shape = stride != 1 or in_ch != out_ch
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False) if changes_shape else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)  # a 1x1 conv sees the activated input
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + shortcut


class WideResNet(nn.Module):
    """WRN-depth-widen: conv stem, three stages of (depth - 4) / 6 blocks, BN-ReLU, average pool, linear."""

    def __init__(self, depth: int, widen: int, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        if (depth - 4) % 6 or depth < 10:
            raise ValueError(f"WideResNet depth must be 6n + 4 with n >= 1, got {depth}")
        n = (depth - 4) // 6
        self.stem = nn.Conv2d(in_channels, STEM_CHANNELS, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        in_ch = STEM_CHANNELS
        for stage, channels in enumerate(STAGE_CHANNELS):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(PreActBlock(in_ch, channels * widen, stride))
                in_ch = channels * widen
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(in_ch)
        self.fc = nn.Linear(in_ch, num_classes)
        init_he(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.blocks(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def wrn16_8(num_classes: int, in_channels: int = 3) -> WideResNet:
    """WRN-16-8 (n=2, stages of 128/256/512 channels), about 11M parameters on CIFAR-10."""
    return WideResNet(16, 8, num_classes, in_channels)
