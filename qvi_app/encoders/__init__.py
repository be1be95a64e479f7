"""Encoders behind one interface: ``embed(waveform, sr) -> unit vector``, ``name``, ``version``."""

from __future__ import annotations

from qvi_app.encoders.base import Encoder

ENCODER_NAMES = ("cnn", "2dft", "passt")


def load_encoder(name: str = "cnn", checkpoint=None) -> Encoder:
    """Build the named encoder; ``cnn`` reads ``checkpoint`` (default: the bundled model),
    ``passt`` reads its weights from ``checkpoint`` (default: torch's hub cache, else download)."""
    from qvi_app.encoders.runtime import tune_allocator

    tune_allocator()
    if name == "cnn":
        from qvi_app.encoders.cnn import CnnEncoder
        from qvi_app.paths import BUNDLED_CNN

        return CnnEncoder(checkpoint or BUNDLED_CNN)
    if name == "2dft":
        from qvi_app.encoders.twodft import TwoDFTEncoder

        if checkpoint is not None:
            raise ValueError("the 2dft encoder has no weights; drop --checkpoint")
        return TwoDFTEncoder()
    if name == "passt":
        from qvi_app.encoders.passt import PasstEncoder

        return PasstEncoder(checkpoint)
    raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODER_NAMES)}")


__all__ = ["ENCODER_NAMES", "Encoder", "load_encoder"]
