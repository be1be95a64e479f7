"""A faster CPU runtime for the learned CNN, optional: the same network, exported to ONNX in
memory and run by ONNX Runtime (``pip install -e '.[fast]'``: onnxruntime and onnx).

Measured on the 2-core development machine, 150 demo-library clips through the network alone:
torch eager 2.85–3.13 s, torch channels-last 2.43 s, TorchScript frozen 2.71 s, ONNX Runtime
1.99 s (1.5x), largest difference to torch 1.8e-7, smallest cosine 0.9999999. The network is
81% of indexing time on torch (decoding 8%, resampling 6%, log-mel 3%); indexing the demo
library gained 1.07–1.13x in one process and 1.25–1.27x in two single-threaded ones, which
overlap one file's decoding with another's network (docs/BENCHMARKS.md).

Nothing is kept on disk (the model is exported to bytes and loaded from them), so there is no
cached file that could go stale or be swapped. Each runtime is checked against torch on a probe
input when it is made; a mismatch keeps torch.

``int8`` (opt-in, ``qvi index --runtime int8``): the same ONNX graph statically quantised to 8
bits (per-channel weights, activations calibrated on log-mels of :data:`CALIBRATION_CLIPS`
seeded clips of the bundled demo library, so the same model always quantises the same way).
Measured on 150 demo clips through the network alone, one thread: float 4.0 s, int8 1.1 s (3.7x;
this CPU has VNNI). Agreement with the float network over the 604 demo sounds: cosine 0.9931 at
worst, 0.9988 median; 96% of each sound's 10 nearest library neighbours unchanged. Retrieval with
an int8 library and float queries (what ``--runtime int8`` gives): real-dev refs g1/g2 0.642 /
0.523 (float 0.646 / 0.525), among the library 0.151 / 0.086 (0.163 / 0.086), simulated
demo-library imitations 0.085 / 0.123 (0.084 / 0.121): all within the sets' noise. Quantising
takes about 6 s per process (decoding the calibration clips, then onnxruntime's quantiser on a
temporary copy), so it pays from a few hundred files.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

RUNTIMES = ("auto", "torch", "onnx", "int8")
#: The largest difference to torch's output on the probe input that still counts as the same model.
TOLERANCE = 1e-4
#: int8: demo-library clips whose log-mels set the activation ranges, and the least cosine to
#: torch's output on one of them that still counts as the same model (measured worst: 0.996).
CALIBRATION_CLIPS = 32
INT8_MIN_COSINE = 0.98
#: ... with ranges at the 0.001st/99.999th percentiles of each activation's histogram (min/max
#: ranges depended on which clips were drawn: worst cosine 0.971-0.995 over three draws of 64
#: clips; percentiles 0.996-0.997), on clips repeated or cut to CALIBRATION_FRAMES frames.
CALIBRATION_METHOD = "Percentile"
CALIBRATION_FRAMES = 300


def available() -> bool:
    """Whether ONNX Runtime and the exporter's onnx package are installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


class OnnxNetwork:
    """``network(features, role)`` for one role, run by ONNX Runtime on ``threads`` threads."""

    def __init__(self, network: torch.nn.Module, role: str, n_mels: int, threads: int,
                 calibration: list[np.ndarray] | None = None, model_bytes: bytes | None = None):
        """``calibration``: log-mel inputs (1, 1, T, n_mels); given, the network is quantised to int8.
        ``model_bytes``: a model this class made and checked in another process (a worker gets
        its parent's, so a pool exports and quantises once); only its output shape is checked."""

        class _Role(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.network = network

            def forward(self, x):
                return self.network(x, role)

        probe = torch.randn(1, 1, 130, n_mels, generator=torch.Generator().manual_seed(0))
        prepared = model_bytes is not None
        if not prepared:
            buf = io.BytesIO()
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")          # the TorchScript exporter's deprecation notice
                torch.onnx.export(_Role().eval(), (probe,), buf, input_names=["x"], output_names=["y"],
                                  dynamic_axes={"x": {2: "frames"}}, dynamo=False, opset_version=17)
            model_bytes = buf.getvalue()
            if calibration is not None:
                model_bytes = _quantised(model_bytes, calibration)
                probe = torch.from_numpy(calibration[0])      # int8 is only close on inputs like real sounds
        self.model_bytes = model_bytes
        self.session = _session(model_bytes, threads)
        with torch.no_grad():
            want = network(probe, role).numpy()
        got = self.session.run(None, {"x": probe.numpy()})[0]
        if got.shape != want.shape:
            raise RuntimeError("ONNX Runtime's output has another shape than torch's")
        if prepared:
            return
        if calibration is None and not np.abs(got - want).max() < TOLERANCE:
            raise RuntimeError("ONNX Runtime's output differs from torch's on the probe input")
        if calibration is not None and not _cosine(got, want) >= INT8_MIN_COSINE:
            raise RuntimeError(f"the int8 network's output is too far from torch's (cosine {_cosine(got, want):.4f})")

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(features.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {"x": x})[0])


def _session(model: bytes, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # ONNX Runtime's threads spin after each run by default and took the cores from the
    # decoding and log-mel work between files: indexing was no faster than torch with it.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def _quantised(model: bytes, calibration: list[np.ndarray]) -> bytes:
    """``model`` statically quantised (QDQ, per-channel int8 weights, uint8 activations with
    :data:`CALIBRATION_METHOD` ranges from ``calibration``). onnxruntime's quantiser works on
    files: a private temporary folder, removed at once."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._inputs = iter([{"x": x} for x in calibration])

        def get_next(self):
            return next(self._inputs, None)

    with tempfile.TemporaryDirectory(prefix="qvi-int8-") as tmp, warnings.catch_warnings(), \
            contextlib.redirect_stdout(io.StringIO()):              # the calibrator prints its progress
        warnings.simplefilter("ignore")
        src, pre, out = Path(tmp) / "float.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(model)
        quant_pre_process(str(src), str(pre))
        quantize_static(str(pre), str(out), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        calibrate_method=getattr(CalibrationMethod, CALIBRATION_METHOD))
        return out.read_bytes()


def calibration_features(encoder, n: int | None = None, seed: int = 0) -> list[np.ndarray]:
    """Log-mels (1, 1, T, F) of ``n`` seeded clips of the bundled demo library, prepared as indexing
    prepares a sound (cut, resampled): the same clips for the same model, wherever it runs."""
    from qvi_app.audio import isolate_sound, load_audio, resample
    from qvi_app.encoders.base import MAX_ANALYSED_S
    from qvi_app.errors import EncoderError
    from qvi_app.paths import DEMO_LIBRARY

    n = n or CALIBRATION_CLIPS
    files = sorted(DEMO_LIBRARY.rglob("*.ogg"))
    if len(files) < n:
        raise EncoderError(f"int8 needs {n} calibration clips from {DEMO_LIBRARY}; found {len(files)}")
    picks = np.random.default_rng(seed).choice(len(files), size=n, replace=False)
    out = []
    for i in sorted(picks):
        wave, sr = load_audio(files[i])
        wave = resample(isolate_sound(wave, sr)[: int(MAX_ANALYSED_S["reference"] * sr)], sr, encoder.sample_rate)
        with torch.inference_mode():
            x = encoder.features(torch.from_numpy(np.ascontiguousarray(wave, np.float32))).numpy()
        # one length for all (the histogram calibrators stack them): the clip repeated, then cut
        out.append(np.ascontiguousarray(np.tile(x, (1, 1, -(-CALIBRATION_FRAMES // x.shape[2]), 1))
                                        [:, :, :CALIBRATION_FRAMES], np.float32))
    return out
