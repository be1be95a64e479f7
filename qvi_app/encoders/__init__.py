"""Encoders behind one interface: ``embed(waveform, sr) -> unit vector``, ``name``, ``version``."""

from __future__ import annotations

from qvi_app.encoders.base import Encoder

ENCODER_NAMES = ("cnn", "2dft", "passt")


def load_encoder(name: str = "cnn", checkpoint=None) -> Encoder:
    """Build the named encoder. Learned ones (``cnn``, ``passt``) read ``checkpoint``: a qvi
    checkpoint, or weights published for that backbone; by default the bundled model (cnn) or
    PaSST's weights in torch's hub cache (downloaded when missing and online)."""
    from qvi_app.encoders.runtime import tune_allocator

    tune_allocator()
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


__all__ = ["ENCODER_NAMES", "Encoder", "load_encoder"]
