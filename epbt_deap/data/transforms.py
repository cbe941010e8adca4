"""Per-batch transforms that run on the training device: normalisation and augmentation."""
from __future__ import annotations

import torch
import torch.nn.functional as F

def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 ``(x / 255 - mean) / std`` with per-channel (C,) mean and std."""
    return images.float().sub_(mean.view(-1, 1, 1) * 255).div_(std.view(-1, 1, 1) * 255)


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Per image: zero-pad by ``padding``, crop back to H x W at a random offset, flip with p = 1/2."""
    batch, channels, height, width = images.shape
    device = images.device
    padded = F.pad(images, (padding,) * 4)
    shift_y, shift_x = torch.randint(0, 2 * padding + 1, (2, batch, 1, 1, 1), generator=generator, device=device)
    flip = torch.randint(0, 2, (batch, 1, 1, 1), generator=generator, device=device).bool()
    rows = shift_y + torch.arange(height, device=device).view(1, 1, height, 1)
    cropped = padded.gather(2, rows.expand(batch, channels, height, width + 2 * padding))
    cols = torch.arange(width, device=device).view(1, 1, 1, width)
    cols = torch.where(flip, width - 1 - cols, cols) + shift_x
    return cropped.gather(3, cols.expand(batch, channels, height, width))
