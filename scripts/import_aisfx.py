#!/usr/bin/env python
"""Build models/aisfx-cnn.pt (the zero-shot backbone qvi fine-tunes) from the aisfx wheel's checkpoint (``pip install --no-deps aisfx==0.1.2``).

Reads ``aisfx/models/checkpoint.pth`` from the installed package (without importing aisfx),
keeps the 9-layer CNN body, and saves it with qvi's log-mel settings and provenance.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qvi_app.encoders.cnn_model import state_dict_from_aisfx  # noqa: E402
from qvi_app.encoders.model import ModelSettings, build_model, save_model  # noqa: E402
from qvi_app.paths import ZERO_SHOT_CNN  # noqa: E402

PROVENANCE = {
    "source": "aisfx 0.1.2 (PyPI), aisfx/models/checkpoint.pth, model X-Sequential-CE",
    "paper": "Alison B. Ma, Alexander Lerch: 'Representation Learning for the Automatic Indexing of "
             "Sound Effects Libraries', ISMIR 2022, pp. 866-875",
    "license": "CC BY 4.0",
    "credit": "Weights by Alison B. Ma and Alexander Lerch (aisfx, github.com/alisonbma/aisfx); "
              "converted for qvi without changes to the CNN weights (qvi pools time by max and mean).",
}


def aisfx_checkpoint_path() -> Path:
    spec = importlib.util.find_spec("aisfx")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("aisfx is not installed: pip install --no-deps aisfx==0.1.2")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "checkpoint.pth"


def convert(out: Path) -> Path:
    weights, _datasets = torch.load(aisfx_checkpoint_path(), map_location="cpu", weights_only=False)
    model = build_model(ModelSettings.default("cnn"))          # the plain backbone: towers 0, no head
    model.network.backbone.load_state_dict(state_dict_from_aisfx(weights))  # strict: every tensor must fit
    return save_model(out, model, "aisfx-0.1.2-maxmean", provenance=PROVENANCE, training=None)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ZERO_SHOT_CNN)
    print(convert(ap.parse_args().out))
