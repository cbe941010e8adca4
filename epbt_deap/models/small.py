"""Small CNN for 1x8x8 scikit-learn digits images."""
from __future__ import annotations

from torch import nn

from epbt_deap.models.resnet import conv_bn, init_he


def digits_cnn(num_classes: int, in_channels: int = 1) -> nn.Sequential:
    """Three conv-BN-ReLU layers (8x8 -> 4x4 -> 2x2), global average pool, linear."""
    model = nn.Sequential(
        conv_bn(in_channels, 32),
        nn.ReLU(),
        conv_bn(32, 64, stride=2),
        nn.ReLU(),
        conv_bn(64, 128, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, num_classes),
    )
    init_he(model)
    return model
