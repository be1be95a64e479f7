"""The PaSST backbone (Koutini et al., 2022; AudioSet transformer) through hear21passt.

hear21passt's own model and preprocessing: 32 kHz, 128-band mel (window 800, hop 320, FFT
1024), PaSST-S (patch 16, stride 10, trained on AudioSet, mAP .476, SWA). The embedding is its
768-d scene embedding (the token before the classifier), averaged over 10 s windows for longer
clips. Its row in :data:`qvi_app.encoders.model.BACKBONES` builds it; this module only knows
PaSST. Weights: ``--weights PATH``, else torch's hub cache (where hear21passt's own download
puts them), else hear21passt downloads them unless ``QVI_OFFLINE`` is set.
hear21passt prints debug lines while building and on the first forward; they are swallowed.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from qvi_app.errors import EncoderError

WEIGHTS_FILE = "passt-s-f128-p16-s10-ap.476-swa.pt"
WEIGHTS_URL = f"https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/{WEIGHTS_FILE}"
ARCH = "passt_s_swa_p16_128_ap476"
#: PaSST-S's positional embeddings cover 10 s (998 frames at 100 frames per second).
MAX_FRAMES = 998


def hub_weights_path() -> Path:
    """Where torch (and so hear21passt's download) keeps the checkpoint."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


@contextlib.contextmanager
def quiet():
    """Silence hear21passt's prints and warnings."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _hear21passt():
    try:
        from hear21passt import base
    except ImportError as exc:
        raise EncoderError(f"the passt encoder needs hear21passt (pip install hear21passt==0.0.26): {exc}") from None
    return base


@dataclass(frozen=True)
class PasstMelSettings:
    """hear21passt 0.0.26's mel front end as ``get_basic_model`` configures it; fixed by the weights."""

    sample_rate: int = 32000
    n_mels: int = 128
    win_length: int = 800
    hop_length: int = 320
    n_fft: int = 1024

    def __post_init__(self):
        if (self.sample_rate, self.n_mels, self.win_length, self.hop_length, self.n_fft) != (32000, 128, 800, 320, 1024):
            raise ValueError("PaSST's front end is fixed by its weights (32 kHz, 128 mel bands, hop 320)")

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length


@dataclass(frozen=True)
class PasstSettings:
    arch: str = ARCH

    def __post_init__(self):
        if self.arch != ARCH:
            raise ValueError(f"only PaSST architecture {ARCH} is supported, not {self.arch!r}")


class PasstFrontEnd(torch.nn.Module):
    """Waveforms (B, N) at 32 kHz → hear21passt mel (B, 1, T, 128), time before frequency like the cnn's."""

    def __init__(self, settings: PasstMelSettings = PasstMelSettings()):
        super().__init__()
        self.settings = settings
        with quiet():
            self.mel = _hear21passt().AugmentMelSTFT(
                n_mels=settings.n_mels, sr=settings.sample_rate, win_length=settings.win_length,
                hopsize=settings.hop_length, n_fft=settings.n_fft, freqm=48, timem=192, htk=False, fmin=0.0,
                fmax=None, norm=1, fmin_aug_range=10, fmax_aug_range=2000).eval()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() == 1:
            wave = wave.unsqueeze(0)
        if wave.shape[-1] < self.settings.sample_rate // 2:            # PaSST needs a few patches of input
            wave = F.pad(wave, (0, self.settings.sample_rate // 2 - wave.shape[-1]))
        with quiet():
            return self.mel(wave).transpose(1, 2).unsqueeze(1)


class PasstBackbone(torch.nn.Module):
    """PaSST-S: mel (B, 1, T, 128) → scene embedding (B, 768), averaged over 10 s windows (hop 5 s)."""

    dim = 768

    def __init__(self, settings: PasstSettings = PasstSettings()):
        super().__init__()
        with quiet():
            self.net = _hear21passt().get_model_passt(arch=settings.arch, pretrained=False)
        self.blocks = self.net.blocks           # frozen from the bottom by the training code

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        starts = range(0, max(1, mel.shape[2] - MAX_FRAMES // 2), MAX_FRAMES // 2) if mel.shape[2] > MAX_FRAMES else [0]
        outs = []
        with quiet():
            for s in starts:
                _, features = self.net(mel[:, :, s:s + MAX_FRAMES].transpose(2, 3))
                outs.append(features)
        return torch.stack(outs).mean(dim=0)


def load_weights(backbone: PasstBackbone, path: Path) -> None:
    """hear21passt's published checkpoint (a state dict of PaSST-S) into ``backbone``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EncoderError(f"{path}: not a readable PaSST checkpoint ({exc.__class__.__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        backbone.net.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise EncoderError(f"{path}: these weights do not fit PaSST-S ({str(exc).splitlines()[0]}); "
                           f"expected {WEIGHTS_FILE}") from None


def default_weights(allow_download: bool | None = None) -> Path:
    """The hub-cached weights; downloaded by hear21passt first when missing and allowed."""
    path = hub_weights_path()
    if path.is_file():
        return path
    if allow_download is None:
        allow_download = os.environ.get("QVI_OFFLINE", "") not in ("1", "true", "yes")
    if not allow_download:
        raise EncoderError(missing_message())
    try:
        with quiet():
            _hear21passt().get_model_passt(arch=ARCH, pretrained=True)
    except Exception as exc:  # no network, proxy, HTTP error: all end the same way for a user
        raise EncoderError(f"{missing_message()} (download failed: {exc.__class__.__name__})") from None
    if not path.is_file():
        raise EncoderError(missing_message())
    return path


def missing_message() -> str:
    return (f"the passt encoder needs its weights, {WEIGHTS_FILE} (330 MB): download {WEIGHTS_URL} and "
            f"put it in {hub_weights_path().parent}/ or pass --weights PATH")
