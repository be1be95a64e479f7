"""A faster CPU runtime for the learned CNN, optional: the same network, exported to ONNX in
memory and run by ONNX Runtime (``pip install -e '.[fast]'``: onnxruntime and onnx).

Measured on the 2-core development machine, 150 demo-library clips through the network alone:
torch eager 2.85–3.13 s, torch channels-last 2.43 s, TorchScript frozen 2.71 s, ONNX Runtime
1.99 s (1.5x), largest difference to torch 1.8e-7, smallest cosine 0.9999999. The network is
81% of indexing time on torch (decoding 8%, resampling 6%, log-mel 3%); indexing the demo
library gained 1.07–1.13x in one process and 1.25–1.27x in two single-threaded ones, which
overlap one file's decoding with another's network (docs/BENCHMARKS.md).

Nothing is written to disk (the model is exported to bytes and loaded from them), so there is
no cached file that could go stale or be swapped. Each runtime is checked against torch on a
probe input when it is made; a mismatch keeps torch.
"""

from __future__ import annotations

import importlib.util
import io
import warnings

import numpy as np
import torch

RUNTIMES = ("auto", "torch", "onnx")
#: The largest difference to torch's output on the probe input that still counts as the same model.
TOLERANCE = 1e-4


def available() -> bool:
    """Whether ONNX Runtime and the exporter's onnx package are installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


class OnnxNetwork:
    """``network(features, role)`` for one role, run by ONNX Runtime on ``threads`` threads."""

    def __init__(self, network: torch.nn.Module, role: str, n_mels: int, threads: int):
        import onnxruntime as ort

        class _Role(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.network = network

            def forward(self, x):
                return self.network(x, role)

        probe = torch.randn(1, 1, 130, n_mels, generator=torch.Generator().manual_seed(0))
        buf = io.BytesIO()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")          # the TorchScript exporter's deprecation notice
            torch.onnx.export(_Role().eval(), (probe,), buf, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {2: "frames"}}, dynamo=False, opset_version=17)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # ONNX Runtime's threads spin after each run by default and took the cores from the
        # decoding and log-mel work between files: indexing was no faster than torch with it.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])
        with torch.no_grad():
            want = network(probe, role).numpy()
        got = self.session.run(None, {"x": probe.numpy()})[0]
        if got.shape != want.shape or not np.abs(got - want).max() < TOLERANCE:
            raise RuntimeError("ONNX Runtime's output differs from torch's on the probe input")

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(features.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {"x": x})[0])
