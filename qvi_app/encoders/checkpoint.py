"""One file per model: weights, architecture, front-end settings, provenance and version.

The front end is rebuilt from the settings stored next to the weights, so a model and its
preprocessing can never drift apart.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch

from qvi_app.errors import EncoderError

FORMAT = "qvi-encoder"
FORMAT_VERSION = 1


def save_checkpoint(path, *, encoder: str, version: str, arch: dict, frontend: dict,
                    state_dict: dict, **extra) -> Path:
    """Write a checkpoint atomically (temp file + rename)."""
    path = Path(path)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "encoder": encoder,
               "version": version, "arch": arch, "frontend": frontend,
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
    if payload.get("format_version") != FORMAT_VERSION:
        raise EncoderError(f"{path}: checkpoint format {payload.get('format_version')} is not supported "
                           f"(this qvi reads format {FORMAT_VERSION}); upgrade qvi or re-export the model")
    if expect_encoder and payload.get("encoder") != expect_encoder:
        raise EncoderError(f"{path}: holds a '{payload.get('encoder')}' model, not '{expect_encoder}'")
    payload["digest"] = file_digest(path)
    return payload


def file_digest(path, n: int = 10) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


def encoder_name_of(path, default: str = "cnn") -> str:
    """The encoder a qvi checkpoint holds ('cnn', 'passt'), read without loading its tensors."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return default                  # not readable here: load_checkpoint will say why
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        return str(payload.get("encoder", default))
    return default
