"""The 9-layer CNN sound-effects encoder (architecture of aisfx, Ma et al., ISMIR 2021).

Four blocks of two 3x3 conv + batch-norm + ReLU layers (64, 128, 256, 512 channels), 2x2
max-pooling after the first three; frequency is averaged, then time is pooled: ``max`` (aisfx's
choice, 512-d) or ``max+mean`` (each half L2-normalised, 1024-d), which qvi uses because the
mean half keeps a time-stretched copy of a sound closer to the original. Input is a log-mel
spectrogram (B, 1, T, F).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, pool: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.max_pool2d(x, 2) if self.pool else x


class SfxCNN(nn.Module):
    """Log-mel (B, 1, T, F) → (B, dim) embedding; dim = 8 * base_channels per pooled statistic."""

    POOLINGS = ("max", "max+mean")

    def __init__(self, base_channels: int = 64, pooling: str = "max"):
        super().__init__()
        if pooling not in self.POOLINGS:
            raise ValueError(f"pooling must be one of {self.POOLINGS}, not {pooling!r}")
        c = base_channels
        self.blocks = nn.Sequential(
            ConvBlock(1, c, pool=True),
            ConvBlock(c, 2 * c, pool=True),
            ConvBlock(2 * c, 4 * c, pool=True),
            ConvBlock(4 * c, 8 * c, pool=False),
        )
        self.pooling = pooling
        self.dim = 8 * c * len(pooling.split("+"))

    def feature_map(self, logmel: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, F) → frame embeddings (B, dim, T / 8)."""
        return self.blocks(logmel).mean(dim=3)

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        frames = self.feature_map(logmel)
        if self.pooling == "max":
            return frames.amax(dim=2)
        return torch.cat([F.normalize(frames.amax(dim=2), dim=1), F.normalize(frames.mean(dim=2), dim=1)], dim=1)


def state_dict_from_aisfx(aisfx_weights: dict) -> dict:
    """Rename the ``embedding_net.conv_blockN.*`` tensors of an aisfx checkpoint to SfxCNN's names.

    The classifier heads (``fc.*``, trained on the authors' private label sets) are dropped.
    """
    out = {}
    for key, value in aisfx_weights.items():
        if not key.startswith("embedding_net.conv_block"):
            continue
        block, rest = key[len("embedding_net.conv_block"):].split(".", 1)
        out[f"blocks.{int(block) - 1}.{rest}"] = value
    return out
