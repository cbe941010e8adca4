"""Per-batch transforms that run on the training device: normalisation and augmentation."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 ``(x / 255 - mean) / std`` with per-channel (C,) mean and std;
    float features (B, D, 1, 1) -> ``(x - mean) / std``, a copy."""
    if images.dtype == torch.uint8:
        return images.float().sub_(mean.view(-1, 1, 1) * 255).div_(std.view(-1, 1, 1) * 255)
    return images.to(torch.float32, copy=True).sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1))


class CropFlip(NamedTuple):
    """Random draws for a batch: crop offsets (B, 1, 1, 1) and flip flags (B, 1, 1, 1)."""

    shift_y: torch.Tensor
    shift_x: torch.Tensor
    flip: torch.Tensor

    @classmethod
    def draw(cls, batch: int, generator: torch.Generator, padding: int = 4) -> CropFlip:
        """Offsets in [0, 2 * padding] and a flip with p = 1/2 per image, from ``generator``."""
        device = generator.device
        shift_y, shift_x = torch.randint(0, 2 * padding + 1, (2, batch, 1, 1, 1), generator=generator, device=device)
        flip = torch.randint(0, 2, (batch, 1, 1, 1), generator=generator, device=device).bool()
        return cls(shift_y, shift_x, flip)

    @classmethod
    def concatenate(cls, draws: list[CropFlip]) -> CropFlip:
        """One draw for the images of several batches laid end to end."""
        return cls(*(torch.cat(parts) for parts in zip(*draws)))

    def apply(self, images: torch.Tensor, padding: int = 4) -> torch.Tensor:
        """Zero-pad ``images`` by ``padding``, crop back to H x W at the drawn offsets, flip."""
        batch, channels, height, width = images.shape
        device = images.device
        padded = F.pad(images, (padding,) * 4)
        rows = self.shift_y + torch.arange(height, device=device).view(1, 1, height, 1)
        cropped = padded.gather(2, rows.expand(batch, channels, height, width + 2 * padding))
        cols = torch.arange(width, device=device).view(1, 1, 1, width)
        cols = torch.where(self.flip, width - 1 - cols, cols) + self.shift_x
        return cropped.gather(3, cols.expand(batch, channels, height, width))


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Per image: zero-pad by ``padding``, crop back to H x W at a random offset, flip with p = 1/2."""
    return CropFlip.draw(len(images), generator, padding).apply(images, padding)
