"""Batched on-device augmentations (IIC, IMSAT, DAC): one random transform per image, no Python
loop over samples — a batch of affine matrices goes through ``affine_grid``/``grid_sample``.

Lesson: ``notebooks/05_iic_mutual_information.ipynb`` (augmentations shown as image grids).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Augment", "SHIFT_ROTATE", "random_affine", "resolve_augment"]


def _uniform(n: int, low: float, high: float, like: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, device=like.device, dtype=like.dtype, generator=gen) * (high - low) + low


def random_affine(
    x: torch.Tensor,
    *,
    degrees: float = 25.0,
    scale: tuple[float, float] = (0.8, 1.2),
    shear: float = 10.0,
    translate: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Rotate, scale, shear and shift each image of an (n, C, H, W) batch independently."""
    n = len(x)
    angle = _uniform(n, -degrees, degrees, x, generator) * math.pi / 180
    shear_a = _uniform(n, -shear, shear, x, generator) * math.pi / 180
    s = _uniform(n, scale[0], scale[1], x, generator)
    tx, ty = _uniform(n, -translate, translate, x, generator) * 2, _uniform(n, -translate, translate, x, generator) * 2
    cos, sin = torch.cos(angle), torch.sin(angle)
    # grid_sample maps output -> input coordinates, so the matrix is the inverse transform
    theta = torch.stack([
        torch.stack([cos / s, (-sin + torch.tan(shear_a) * cos) / s, tx], dim=1),
        torch.stack([sin / s, cos / s, ty], dim=1),
    ], dim=1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass
class Augment:
    """The course's default augmentation g(x): random affine + contrast jitter + Gaussian noise.

    Call it on a batch already on the device: ``x_aug = Augment()(x, generator)``.
    """

    degrees: float = 25.0
    scale: tuple[float, float] = (0.8, 1.2)
    shear: float = 10.0
    translate: float = 0.1
    contrast: float = 0.3
    noise: float = 0.0

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"Augment expects images (n, C, H, W), got shape {tuple(x.shape)}.")
        out = random_affine(x, degrees=self.degrees, scale=self.scale, shear=self.shear,
                            translate=self.translate, generator=generator)
        n = len(x)
        if self.contrast:
            factor = _uniform(n, 1 - self.contrast, 1 + self.contrast, x, generator).view(n, 1, 1, 1)
            mean = out.mean(dim=(1, 2, 3), keepdim=True)
            out = (out - mean) * factor + mean
        if self.noise:
            out = out + self.noise * torch.randn(out.shape, device=x.device, dtype=x.dtype, generator=generator)
        return out.clamp(0.0, 1.0)


# DEC-DA's augmentation (Guo et al., 2018): shifts of up to 10 % and rotations of up to 10°, nothing
# else. Used to pretrain autoencoders (``pretrain_augment=True``): on 5,000 digits a longer plain
# pretraining overfits, a longer augmented one keeps improving the clusters (benchmarks/RESULTS.md).
SHIFT_ROTATE = Augment(degrees=10.0, scale=(1.0, 1.0), shear=0.0, translate=0.1, contrast=0.0)


def resolve_augment(augment: Augment | bool | None, default: Augment = SHIFT_ROTATE) -> Augment | None:
    """``True`` -> ``default``, ``False``/``None`` -> no augmentation, an ``Augment`` -> itself."""
    if augment is True:
        return default
    if augment is None or augment is False:
        return None
    if not callable(augment):
        raise TypeError(f"augment must be True, False, None or an Augment, got {augment!r}.")
    return augment
