"""One file per model: weights, model settings, provenance and version.

The front end is rebuilt from the settings stored next to the weights, so a model and its
preprocessing can never drift apart. Format 2 keeps one ``settings`` mapping (see
:class:`qvi_app.encoders.model.ModelSettings`); format 1 files (``arch`` + ``frontend``, the
first fine-tuned model) are read and converted. Files are read with ``weights_only=True``:
nothing in a checkpoint can run code.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch

from qvi_app.errors import EncoderError

FORMAT = "qvi-encoder"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


def save_checkpoint(path, *, encoder: str, version: str, settings: dict, state_dict: dict, **extra) -> Path:
    """Write a checkpoint atomically (temp file + rename)."""
    path = Path(path)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "encoder": encoder,
               "version": version, "settings": settings,
               "state_dict": {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(path, expect_encoder: str | None = None) -> dict:
    """Read and validate a checkpoint; adds ``digest`` (sha256 of the file, 10 hex digits)."""
    path = Path(path)
    if not path.is_file():
        raise EncoderError(f"model checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EncoderError(f"{path}: not a readable qvi checkpoint ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise EncoderError(f"{path}: not a qvi encoder checkpoint")
    if payload.get("format_version") not in READABLE_VERSIONS:
        raise EncoderError(f"{path}: checkpoint format {payload.get('format_version')!r} is not supported "
                           f"(this qvi reads formats {', '.join(map(str, READABLE_VERSIONS))}); upgrade qvi or "
                           "re-export the model")
    if expect_encoder and payload.get("encoder") != expect_encoder:
        raise EncoderError(f"{path}: holds a '{payload.get('encoder')}' model, not '{expect_encoder}'")
    if not isinstance(payload.get("version"), str) or not isinstance(payload.get("state_dict"), dict):
        raise EncoderError(f"{path}: damaged checkpoint (no version or no weights); re-export the model")
    if payload["format_version"] == 1:
        payload = _from_format_1(payload, path)
    payload["digest"] = file_digest(path)
    return payload


def _from_format_1(payload: dict, path) -> dict:
    """``arch`` + ``frontend`` (format 1) → ``settings``; a plain backbone's weights move under ``backbone.``."""
    arch, frontend = payload.get("arch"), payload.get("frontend")
    if not isinstance(arch, dict) or not isinstance(frontend, dict):
        raise EncoderError(f"{path}: damaged checkpoint (arch or frontend is not a mapping); re-export the model")
    name = payload.get("encoder")
    network = {k: arch[k] for k in ("base_channels", "pooling") if k in arch} if name == "cnn" else {}
    if name == "passt":
        frontend = {}
    plain = "towers" not in arch
    payload = {k: v for k, v in payload.items() if k not in ("arch", "frontend")}
    payload["settings"] = {"backbone": name, "frontend": frontend, "network": network,
                           "towers": 0 if plain else arch["towers"], "head_hidden": 0 if plain else arch.get("head_hidden", 0)}
    if plain:
        payload["state_dict"] = {f"backbone.{k}": v for k, v in payload["state_dict"].items()}
    return payload


def is_qvi_checkpoint(path) -> bool:
    """Whether ``path`` is a qvi checkpoint file (read without loading its tensors)."""
    return encoder_name_of(path, default="") != ""


def file_digest(path, n: int = 10) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


def encoder_name_of(path, default: str = "cnn") -> str:
    """The encoder a qvi checkpoint holds ('cnn', 'passt'), read without loading its tensors."""
    return str(checkpoint_field(path, "encoder", default))


def checkpoint_field(path, key: str, default=None):
    """One top-level entry of a qvi checkpoint, read without loading its tensors; ``default``
    when the file is not a readable checkpoint (load_checkpoint will say why) or lacks it."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return default
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        return payload.get(key, default)
    return default
