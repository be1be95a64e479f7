"""Feature front ends: log-mel (for the CNN), constant-Q transform and its 2D Fourier magnitude."""

from qvi_app.features.cqt import CQT, CQTSettings
from qvi_app.features.logmel import LogMelFrontEnd, LogMelSettings
from qvi_app.features.twodft import TwoDFTSettings, twodft_features

__all__ = ["CQT", "CQTSettings", "LogMelFrontEnd", "LogMelSettings", "TwoDFTSettings", "twodft_features"]
