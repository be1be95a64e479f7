"""The dual (Siamese) encoder: shared CNN backbone + projection head → L2-normalised embedding.

``towers=1`` shares every weight between imitations and references (Siamese); ``towers=2``
gives the imitation side its own backbone and head (both start from the same weights).
The head is residual with its last layer zero-initialised, so an untrained head is the
identity and fine-tuning starts exactly at the zero-shot backbone.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from qvi_app.encoders.cnn_model import SfxCNN

ROLES = ("reference", "query")


class ProjectionHead(nn.Module):
    """x → normalize(x + MLP(x)); identity at initialisation."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x + self.fc2(F.relu(self.fc1(x))), dim=-1)


class DualEncoder(nn.Module):
    """Log-mel (B, 1, T, F) and a role ('reference' or 'query') → unit embeddings (B, dim)."""

    def __init__(self, base_channels: int = 64, pooling: str = "max+mean", head_hidden: int = 1024,
                 towers: int = 1, backbone: str = "cnn"):
        super().__init__()
        if towers not in (1, 2):
            raise ValueError(f"towers must be 1 (shared weights) or 2, not {towers}")
        if backbone == "passt":
            from qvi_app.encoders.passt import PasstBackbone

            self.backbone = PasstBackbone()
        elif backbone == "cnn":
            self.backbone = SfxCNN(base_channels, pooling)
        else:
            raise ValueError(f"backbone must be 'cnn' or 'passt', not {backbone!r}")
        self.backbone_name = backbone
        self.head = ProjectionHead(self.backbone.dim, head_hidden) if head_hidden else None
        self.towers = towers
        self.dim = self.backbone.dim
        if towers == 2:
            self.query_backbone = copy.deepcopy(self.backbone)
            self.query_head = copy.deepcopy(self.head)

    def arch(self) -> dict:
        head = {"head_hidden": self.head.fc1.out_features if self.head else 0, "towers": self.towers}
        if self.backbone_name == "passt":
            return {"backbone": "passt", **head}
        return {"base_channels": self.backbone.blocks[0].conv1.out_channels, "pooling": self.backbone.pooling, **head}

    def load_backbone(self, state_dict: dict) -> None:
        """Start every tower from a plain backbone state dict (the zero-shot model)."""
        self.backbone.load_state_dict(state_dict)
        if self.towers == 2:
            self.query_backbone.load_state_dict(state_dict)

    def forward(self, logmel: torch.Tensor, role: str = "reference") -> torch.Tensor:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        query_side = role == "query" and self.towers == 2
        backbone = self.query_backbone if query_side else self.backbone
        head = self.query_head if query_side else self.head
        x = backbone(logmel)
        return head(x) if head is not None else F.normalize(x, dim=-1)
