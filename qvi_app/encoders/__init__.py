"""Encoders behind one interface: ``embed(waveform, sr) -> unit vector``, ``name``, ``version``."""

from __future__ import annotations

from qvi_app.encoders.base import Encoder

from qvi_app.paths import DEMO_ENCODER

ENCODER_NAMES = ("qvi", "cnn", "2dft", "passt")
#: What qvi index / search / the window use unless told otherwise (the bundled index's encoder).
DEFAULT_ENCODER = DEMO_ENCODER


def load_encoder(name: str = DEFAULT_ENCODER, checkpoint=None) -> Encoder:
    """Build the named encoder. ``qvi`` is the learned model with the ranking it carries (with
    CQT+2DFT fused in and hubs damped if its checkpoint says so; the bundled model carries none,
    so the CNN alone: :mod:`qvi_app.encoders.fused`). Learned ones (``cnn``, ``passt``)
    read ``checkpoint``: a qvi checkpoint, or weights published for that backbone; by default
    the bundled model (cnn) or PaSST's weights in torch's hub cache (downloaded when missing
    and online)."""
    from qvi_app.encoders.runtime import tune_allocator

    tune_allocator()
    if name == "qvi":
        from qvi_app.encoders.fused import load_fused

        return load_fused(checkpoint)
    if name == "2dft":
        from qvi_app.encoders.twodft import TwoDFTEncoder

        if checkpoint is not None:
            raise ValueError("the 2dft encoder has no weights; drop --checkpoint")
        return TwoDFTEncoder()
    if name not in ENCODER_NAMES:
        raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODER_NAMES)}")
    from qvi_app.encoders.model import backbone
    from qvi_app.encoders.neural import NeuralEncoder

    return NeuralEncoder.from_file(name, checkpoint if checkpoint is not None else backbone(name).default_weights())


__all__ = ["DEFAULT_ENCODER", "ENCODER_NAMES", "Encoder", "load_encoder"]
