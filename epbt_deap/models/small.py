"""Small networks: a CNN for 1x8x8 scikit-learn digits images, an MLP for features."""
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


def mlp(num_classes: int, in_channels: int, hidden: tuple[int, ...] | list[int] = (64, 64)) -> nn.Sequential:
    """Linear-ReLU layers of ``hidden`` sizes on ``in_channels`` features (N x D x 1 x 1, or flattened), then linear."""
    sizes = [in_channels, *hidden]
    layers: list[nn.Module] = [nn.Flatten()]
    for size_in, size_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(size_in, size_out), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(sizes[-1], num_classes))
    init_he(model)
    return model
