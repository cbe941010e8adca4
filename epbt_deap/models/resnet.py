"""CIFAR ResNets of He et al. 2016, Section 4.2 (depth 6n+2, option-A shortcuts)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STAGE_CHANNELS = (16, 32, 64)


def init_he(module: nn.Module) -> None:
    """He-initialise convs (fan_out) and linears (fan_in); zero biases; BN to identity."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def conv_bn(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (no bias) followed by batch normalisation."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
    )


class PadShortcut(nn.Module):
    """Parameter-free shortcut: stride-2 subsampling plus zero channel padding."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        extra = out_ch - in_ch
        self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, *self.pad))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity or option-A shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv_bn(in_ch, out_ch, stride)
        self.conv2 = conv_bn(out_ch, out_ch)
        changes_shape = stride != 1 or in_ch != out_ch
        self.shortcut = PadShortcut(in_ch, out_ch, stride) if changes_shape else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.conv1(x)))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet with 6n+2 weighted layers: stem, three stages of n blocks, classifier."""

    def __init__(self, n: int, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = conv_bn(in_channels, STAGE_CHANNELS[0])
        blocks: list[nn.Module] = []
        in_ch = STAGE_CHANNELS[0]
        for stage, out_ch in enumerate(STAGE_CHANNELS):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(in_ch, out_ch, stride))
                in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(in_ch, num_classes)
        init_he(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.relu(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def resnet8(num_classes: int, in_channels: int = 3) -> CifarResNet:
    """ResNet-8 (n=1), small enough for CPU runs."""
    return CifarResNet(1, num_classes, in_channels)


def resnet20(num_classes: int, in_channels: int = 3) -> CifarResNet:
    """ResNet-20 (n=3)."""
    return CifarResNet(3, num_classes, in_channels)


def resnet32(num_classes: int, in_channels: int = 3) -> CifarResNet:
    """ResNet-32 (n=5), about 0.46M parameters on CIFAR-10."""
    return CifarResNet(5, num_classes, in_channels)


def resnet56(num_classes: int, in_channels: int = 3) -> CifarResNet:
    """ResNet-56 (n=9)."""
    return CifarResNet(9, num_classes, in_channels)
