"""The ``passt`` encoder: PaSST (Koutini et al., 2022; AudioSet transformer) through hear21passt.

hear21passt's own model and preprocessing: 32 kHz, 128-band mel (window 800, hop 320, FFT
1024), PaSST-S (patch 16, stride 10, trained on AudioSet, mAP .476, SWA). The embedding is its
768-d scene embedding (the token before the classifier), averaged over 10 s windows, L2-normalised;
CUDA when available. Weights: ``--weights PATH``, else torch's hub cache (where hear21passt's
own download puts them), else hear21passt downloads them when ``allow_download`` is set.
hear21passt prints debug lines while building and on the first forward; they are swallowed.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import torch
from torch.nn import functional as F

from qvi_app.encoders.base import Encoder
from qvi_app.encoders.checkpoint import encoder_name_of, file_digest
from qvi_app.errors import EncoderError

WEIGHTS_FILE = "passt-s-f128-p16-s10-ap.476-swa.pt"
WEIGHTS_URL = f"https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/{WEIGHTS_FILE}"
ARCH = "passt_s_swa_p16_128_ap476"


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


def build_passt_mel() -> torch.nn.Module:
    """hear21passt's mel front end as its ``get_basic_model`` configures it (eval mode: no jitter)."""
    with quiet():
        return _hear21passt().AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024,
                                             freqm=48, timem=192, htk=False, fmin=0.0, fmax=None, norm=1,
                                             fmin_aug_range=10, fmax_aug_range=2000).eval()


def build_passt(pretrained_download: bool = False) -> torch.nn.Module:
    """hear21passt's wrapper (mel + PaSST-S) in 'embed_only' mode; random weights unless downloading."""
    base = _hear21passt()
    mel = build_passt_mel()
    with quiet():
        net = base.get_model_passt(arch=ARCH, pretrained=pretrained_download)
        return base.PasstBasicWrapper(mel=mel, net=net, mode="embed_only").eval()


def load_weights(model: torch.nn.Module, path: Path) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EncoderError(f"{path}: not a readable PaSST checkpoint ({exc.__class__.__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        model.net.load_state_dict(state)
    except RuntimeError as exc:
        raise EncoderError(f"{path}: these weights do not fit PaSST-S ({str(exc).splitlines()[0]}); "
                           f"expected {WEIGHTS_FILE}") from None


PASST_FRONTEND = {"sample_rate": 32000, "n_mels": 128, "win_length": 800, "hop_length": 320, "n_fft": 1024,
                  "preprocessing": "hear21passt 0.0.26 AugmentMelSTFT (eval mode)"}


class PasstFrontEnd(torch.nn.Module):
    """Waveforms (B, N) at 32 kHz → hear21passt mel (B, 1, T, 128), time before frequency like the cnn's."""

    class settings:  # noqa: N801 - read like LogMelSettings by the training code
        sample_rate, hop_length, frames_per_second = 32000, 320, 100.0

    def __init__(self, mel: torch.nn.Module | None = None):
        super().__init__()
        self.mel = (mel if mel is not None else build_passt_mel()).eval()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() == 1:
            wave = wave.unsqueeze(0)
        if wave.shape[-1] < 16000:
            wave = F.pad(wave, (0, 16000 - wave.shape[-1]))
        with quiet():
            return self.mel(wave).transpose(1, 2).unsqueeze(1)


class PasstBackbone(torch.nn.Module):
    """PaSST-S as a backbone for the dual encoder: mel (B, 1, T, 128) → scene embedding (B, 768)."""

    dim = 768

    def __init__(self, net: torch.nn.Module | None = None):
        super().__init__()
        self.net = net if net is not None else build_passt().net
        self.blocks = self.net.blocks           # frozen from the bottom by the training code

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        with quiet():
            _, features = self.net(mel.transpose(2, 3))
        return features


class PasstEncoder(Encoder):
    name = "passt"
    version = "hear21passt-0.0.26-s-swa-476"
    sample_rate = 32000
    dim = 768

    def __init__(self, weights=None, *, allow_download: bool | None = None, pretrained: bool = True):
        """``pretrained=False`` builds the architecture with random weights (tests, smoke runs)."""
        if allow_download is None:
            allow_download = os.environ.get("QVI_OFFLINE", "") not in ("1", "true", "yes")
        self.checkpoint_path = None
        if not pretrained:
            self.model = build_passt()
            self._digest = "random"
        else:
            path = Path(weights) if weights else hub_weights_path()
            if path.is_file() and encoder_name_of(path, default="") == "passt":
                self._load_fine_tuned(path)
            elif path.is_file():
                self.model = build_passt()
                load_weights(self.model, path)
                self.checkpoint_path = path
                self._digest = file_digest(path)
            elif weights:
                raise EncoderError(f"PaSST weights not found at {path}; download {WEIGHTS_URL}")
            elif not allow_download:
                raise EncoderError(self.missing_message())
            else:
                try:
                    self.model = build_passt(pretrained_download=True)
                except Exception as exc:  # no network, proxy, HTTP error: all end the same way for a user
                    raise EncoderError(f"{self.missing_message()} (download failed: "
                                       f"{exc.__class__.__name__})") from None
                self._digest = file_digest(path) if path.is_file() else "downloaded"
                self.checkpoint_path = path if path.is_file() else None
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)

    def _load_fine_tuned(self, path: Path) -> None:
        """A dual encoder with a PaSST backbone trained by ``qvi train --backbone passt``."""
        from qvi_app.encoders.checkpoint import load_checkpoint
        from qvi_app.encoders.dual_model import DualEncoder

        ckpt = load_checkpoint(path, expect_encoder="passt")
        self.dual = DualEncoder(**ckpt["arch"]).eval()
        self.model = self.dual                            # what .to(device) moves
        try:
            self.dual.load_state_dict(ckpt["state_dict"])
        except RuntimeError as exc:
            raise EncoderError(f"{path}: weights do not fit the architecture ({str(exc).splitlines()[0]})") from None
        self.frontend = PasstFrontEnd()
        self.version = ckpt["version"]
        self.checkpoint_path = path
        self._digest = ckpt["digest"]

    @staticmethod
    def missing_message() -> str:
        return (f"the passt encoder needs its weights, {WEIGHTS_FILE} (330 MB): download {WEIGHTS_URL} and "
                f"put it in {hub_weights_path().parent}/ or pass --weights PATH")

    @property
    def digest(self) -> str:
        return self._digest

    def embed_tensor(self, wave: torch.Tensor, role: str = "reference") -> torch.Tensor:
        wave = wave.to(self.device)
        if len(wave) < self.sample_rate // 2:                  # PaSST needs a few patches of input
            wave = F.pad(wave, (0, self.sample_rate // 2 - len(wave)))
        if getattr(self, "dual", None) is not None:
            return self.dual(self.frontend.to(self.device)(wave), role)[0].float().cpu()
        with quiet():
            return self.model.get_scene_embeddings(wave.unsqueeze(0))[0].float().cpu()
