"""One way to build a learned encoder: a table of backbones, typed settings, one builder.

As whisper keeps ``dims`` next to its weights, a qvi checkpoint keeps :class:`ModelSettings`
(backbone name, its front-end settings, its network settings, towers, head) next to the
network's weights, and :func:`build_model` turns settings into a :class:`Model` (front end +
network). Training, the encoders, ``qvi inspect``, ``qvi bench`` and the indexing workers all
go through here; adding a backbone is one row of :data:`BACKBONES`.

The network is a dual encoder: a backbone, then (``towers`` ≥ 1) a residual projection head
whose last layer starts at zero, so fine-tuning starts exactly at the backbone. ``towers=0`` is
the plain backbone (the zero-shot model), ``1`` shares every weight between imitations and
references (Siamese), ``2`` gives the imitation side its own backbone and head.

Settings are validated with bounds before anything is allocated: a checkpoint received from
someone else cannot ask for a 200,000-channel network or a 2**31-point FFT.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from qvi_app.encoders.checkpoint import load_checkpoint, save_checkpoint
from qvi_app.errors import EncoderError

ROLES = ("reference", "query")


# -- the backbones ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CnnSettings:
    """The aisfx 9-layer CNN (:mod:`qvi_app.encoders.cnn_model`)."""

    base_channels: int = 64
    pooling: str = "max+mean"

    def __post_init__(self):
        from qvi_app.encoders.cnn_model import SfxCNN

        _check_int("base_channels", self.base_channels, 1, 256)
        if self.pooling not in SfxCNN.POOLINGS:
            raise ValueError(f"pooling must be one of {SfxCNN.POOLINGS}, not {self.pooling!r}")


@dataclass(frozen=True)
class Backbone:
    """A row of the backbone table: how to make its front end and network, and where it starts."""

    frontend_settings: type                      # frozen dataclass, validated in __post_init__
    network_settings: type
    make_frontend: Callable[[Any], nn.Module]    # waveform (B, N) → features (B, 1, T, F)
    make_network: Callable[[Any], nn.Module]     # features → (B, dim); has .dim and .blocks
    start_weights: Callable[[], Path]            # what training starts from by default
    default_weights: Callable[[], Path]          # what ``load_encoder(name)`` reads by default
    #: Reads weights published outside qvi (PaSST's own file) into the network; None: qvi files only.
    load_foreign: Callable[[nn.Module, Path], None] | None = None
    #: Run on CUDA when present (PaSST); the CNN answers one query as fast on the CPU.
    prefers_gpu: bool = False
    credit: str = ""
    title: str = ""                              # for messages
    label: str = ""                              # what a user calls it: a model's name in the window
    weights_hint: str = ""                       # where a user gets the weights


def _cnn_row() -> Backbone:
    from qvi_app.encoders.cnn_model import SfxCNN
    from qvi_app.features.logmel import LogMelFrontEnd, LogMelSettings
    from qvi_app.paths import BUNDLED_CNN, ZERO_SHOT_CNN

    return Backbone(LogMelSettings, CnnSettings, LogMelFrontEnd,
                    lambda s: SfxCNN(s.base_channels, s.pooling), lambda: ZERO_SHOT_CNN, lambda: BUNDLED_CNN,
                    credit="aisfx CNN (Ma et al., ISMIR 2021), CC BY 4.0", title="cnn model",
                    label="sound-effects CNN")


def _passt_row() -> Backbone:
    from qvi_app.encoders import passt

    return Backbone(passt.PasstMelSettings, passt.PasstSettings, passt.PasstFrontEnd, passt.PasstBackbone,
                    passt.default_weights, passt.default_weights, load_foreign=passt.load_weights, prefers_gpu=True,
                    credit="PaSST-S (Koutini et al. 2022) via hear21passt 0.0.26, Apache-2.0", title="PaSST",
                    label="PaSST", weights_hint=f"download {passt.WEIGHTS_URL}")


#: name → row, built on first use (PaSST's row imports hear21passt only when asked for).
_ROWS: dict[str, Callable[[], Backbone]] = {"cnn": _cnn_row, "passt": _passt_row}
BACKBONES = tuple(_ROWS)


def backbone(name: str) -> Backbone:
    if name not in _ROWS:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return _ROWS[name]()


# -- settings -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSettings:
    """Everything that shapes a model's output besides its weights; saved in every checkpoint."""

    backbone: str
    frontend: Any                 # the backbone's front-end settings object
    network: Any                  # the backbone's network settings object
    towers: int = 0               # 0 plain backbone, 1 shared weights + head, 2 separate query tower
    head_hidden: int = 0          # projection head width (towers ≥ 1; 0 = no head)

    def __post_init__(self):
        row = backbone(self.backbone)
        if not isinstance(self.frontend, row.frontend_settings) or not isinstance(self.network, row.network_settings):
            raise ValueError(f"settings do not belong to the {self.backbone!r} backbone")
        _check_int("towers", self.towers, 0, 2)
        _check_int("head_hidden", self.head_hidden, 0, 8192)

    @classmethod
    def default(cls, name: str, **kw) -> "ModelSettings":
        row = backbone(name)
        return cls(name, row.frontend_settings(), row.network_settings(), **kw)

    def to_dict(self) -> dict:
        return {"backbone": self.backbone, "frontend": asdict(self.frontend), "network": asdict(self.network),
                "towers": self.towers, "head_hidden": self.head_hidden}

    @classmethod
    def from_dict(cls, d) -> "ModelSettings":
        """Validated settings; ValueError names the first thing wrong."""
        if not isinstance(d, dict):
            raise ValueError("model settings are not a mapping")
        _known(d, {f.name for f in fields(cls)}, "model setting")
        name = d.get("backbone")
        if not isinstance(name, str):
            raise ValueError("model settings name no backbone")
        row = backbone(name)
        return cls(name, _typed(row.frontend_settings, d.get("frontend", {}), "front-end setting"),
                   _typed(row.network_settings, d.get("network", {}), "network setting"),
                   towers=d.get("towers", 0), head_hidden=d.get("head_hidden", 0))

    def with_head(self, towers: int, head_hidden: int) -> "ModelSettings":
        return replace(self, towers=towers, head_hidden=head_hidden)


def _known(d: dict, names: set, what: str) -> None:
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {what}(s): {', '.join(sorted(map(str, unknown)))}")


def _typed(cls: type, d, what: str):
    """``cls(**d)`` with every value checked against the field's declared type (bounds are the
    settings class's own ``__post_init__``)."""
    if not isinstance(d, dict):
        raise ValueError(f"{what}s are not a mapping")
    declared = {f.name: str(f.type) for f in fields(cls)}
    _known(d, set(declared), what)
    for key, value in d.items():
        allowed = {t.strip().split("[")[0] for t in declared[key].split("|")}
        ok = ((value is None and "None" in allowed)
              or (isinstance(value, bool) and "bool" in allowed)
              or (not isinstance(value, bool) and (
                  (isinstance(value, int) and ({"int", "float"} & allowed))
                  or (isinstance(value, float) and "float" in allowed)
                  or (isinstance(value, str) and "str" in allowed)
                  or (isinstance(value, (list, tuple)) and "tuple" in allowed))))
        if not ok:
            raise ValueError(f"{what} {key}={value!r} is not a {declared[key]}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _check_int(name: str, value, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, not {value!r}")


# -- the network --------------------------------------------------------------------------------
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
    """Features (B, 1, T, F) and a role ('reference' or 'query') → unit embeddings (B, dim)."""

    def __init__(self, net: nn.Module, towers: int = 1, head_hidden: int = 1024):
        super().__init__()
        self.backbone = net
        self.head = ProjectionHead(net.dim, head_hidden) if towers and head_hidden else None
        self.towers = towers
        self.dim = net.dim
        if towers == 2:
            self.query_backbone = copy.deepcopy(self.backbone)
            self.query_head = copy.deepcopy(self.head)

    def load_backbone(self, state_dict: dict) -> None:
        """Start every tower from a plain backbone state dict."""
        self.backbone.load_state_dict(state_dict)
        if self.towers == 2:
            self.query_backbone.load_state_dict(state_dict)

    def backbones(self) -> list[nn.Module]:
        return [self.backbone] + ([self.query_backbone] if self.towers == 2 else [])

    def forward(self, features: torch.Tensor, role: str = "reference") -> torch.Tensor:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        query_side = role == "query" and self.towers == 2
        x = (self.query_backbone if query_side else self.backbone)(features)
        head = self.query_head if query_side else self.head
        return head(x) if head is not None else F.normalize(x, dim=-1)


@dataclass
class Model:
    """A front end and the network it feeds, built from one :class:`ModelSettings`."""

    settings: ModelSettings
    frontend: nn.Module
    network: DualEncoder

    @property
    def sample_rate(self) -> int:
        return self.settings.frontend.sample_rate

    @property
    def dim(self) -> int:
        return self.network.dim


def build_model(settings: ModelSettings) -> Model:
    """Front end and network for ``settings``, with fresh weights (the head starts as identity)."""
    row = backbone(settings.backbone)
    net = row.make_network(settings.network)
    return Model(settings, row.make_frontend(settings.frontend).eval(),
                 DualEncoder(net, settings.towers, settings.head_hidden).eval())


def load_model(path, expect_backbone: str | None = None) -> tuple[Model, dict]:
    """The model a qvi checkpoint holds, weights loaded, in eval mode; and the checkpoint's metadata
    (version, digest, provenance, split, training; no tensors). Refuses with the path what it cannot use."""
    ckpt = load_checkpoint(path, expect_encoder=expect_backbone)
    model = build_model(_settings_of(ckpt, path))
    try:
        model.network.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EncoderError(f"{path}: weights do not fit the architecture ({first})") from None
    return model, {k: v for k, v in ckpt.items() if k != "state_dict"}


def save_model(path, model: Model, version: str, **extra) -> Path:
    """Write ``model`` as a qvi checkpoint (atomic): settings + weights + ``extra`` metadata."""
    return save_checkpoint(path, encoder=model.settings.backbone, version=version,
                           settings=model.settings.to_dict(), state_dict=model.network.state_dict(), **extra)


def start_model(name: str, init: str, towers: int, head_hidden: int) -> tuple[Model, dict]:
    """A model to fine-tune: the backbone of ``init`` (a qvi checkpoint, weights published for
    that backbone, '' = its default starting weights, 'random' = untrained) under a fresh head.
    The network is built once, then the backbone weights are loaded into every tower.

    Returns the model and what it started from (``version``, ``digest``, ``provenance``)."""
    from qvi_app.encoders.checkpoint import file_digest, is_qvi_checkpoint

    row = backbone(name)
    settings, state, foreign = ModelSettings.default(name), None, None
    meta = {"version": "random", "digest": "random", "provenance": {"backbone": row.credit}}
    if init != "random":
        path = Path(init) if init else row.start_weights()
        if is_qvi_checkpoint(path) or row.load_foreign is None:
            ckpt = load_checkpoint(path, expect_encoder=name)
            settings = _settings_of(ckpt, path)
            state = {k[len("backbone."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("backbone.")}
            meta = {"version": ckpt["version"], "digest": ckpt["digest"],
                    "provenance": dict(ckpt.get("provenance") or meta["provenance"])}
        elif path.is_file():
            foreign = path
            meta = {**meta, "version": path.name, "digest": file_digest(path)}
        else:
            raise EncoderError(f"starting weights not found: {path}")
    model = build_model(settings.with_head(towers, head_hidden))
    try:
        if state is not None:
            model.network.load_backbone(state)
        elif foreign is not None:
            for net in model.network.backbones():
                row.load_foreign(net, foreign)
    except (RuntimeError, TypeError) as exc:
        raise EncoderError(f"{init}: weights do not fit the {name} backbone ({str(exc).splitlines()[0]})") from None
    return model, meta


def _settings_of(ckpt: dict, path) -> ModelSettings:
    try:
        return ModelSettings.from_dict(ckpt["settings"])
    except (ValueError, TypeError) as exc:
        raise EncoderError(f"{path}: bad model settings ({exc}); re-export the model") from None
