"""The passt encoder: architecture without downloads, determinism, the offline error path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tone
from qvi_app.cli import main as qvi
from qvi_app.encoders import load_encoder
from qvi_app.encoders.neural import NeuralEncoder
from qvi_app.encoders.passt import WEIGHTS_FILE
from qvi_app.errors import EncoderError


@pytest.fixture(scope="module")
def random_passt():
    return NeuralEncoder.untrained("passt")


@pytest.mark.slow
def test_passt_architecture_shapes_and_determinism(random_passt, capsys):
    enc = random_passt
    assert (enc.name, enc.sample_rate, enc.dim) == ("passt", 32000, 768)
    assert not enc.model.network.training
    a = enc.embed(tone(440, 1.5, 22050), 22050)
    b = enc.embed(tone(440, 1.5, 22050), 22050)
    assert a.shape == (768,) and abs(np.linalg.norm(a) - 1) < 1e-5
    np.testing.assert_array_equal(a, b)                        # eval mode: no patchout, no mel jitter
    c = enc.embed(tone(2000, 1.5, 22050), 22050)
    assert not np.allclose(a, c)
    short = enc.embed(tone(440, 0.1, 22050), 22050)            # shorter than a patch: padded, still works
    assert np.isfinite(short).all()
    assert capsys.readouterr().out == ""                       # hear21passt's debug prints are swallowed


def test_offline_without_weights_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("QVI_OFFLINE", "1")
    with pytest.raises(EncoderError, match=WEIGHTS_FILE) as info:
        load_encoder("passt")
    assert str(tmp_path / "torch") in str(info.value) and "--weights" in str(info.value)
    with pytest.raises(EncoderError, match="not found at"):
        load_encoder("passt", tmp_path / "nowhere.pt")


def test_bad_weights_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / WEIGHTS_FILE
    torch.save({"something": torch.zeros(3)}, bad)
    with pytest.raises(EncoderError, match="do not fit PaSST"):
        load_encoder("passt", bad)
    lib = tmp_path / "lib"
    lib.mkdir()
    assert qvi(["index", str(lib), "--encoder", "passt", "--weights", str(tmp_path / "missing.pt"),
                "--index", str(tmp_path / "ix"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "PaSST weights not found" in err and "Traceback" not in err


@pytest.mark.slow
def test_weights_file_round_trip(random_passt, tmp_path):
    """Weights saved from one PaSST load into another and give the same embeddings."""
    path = tmp_path / WEIGHTS_FILE
    torch.save(random_passt.model.network.backbone.net.state_dict(), path)
    enc = load_encoder("passt", path)
    w = tone(660, 1.0, 32000)
    np.testing.assert_allclose(enc.embed(w, 32000), random_passt.embed(w, 32000), atol=1e-5)
    assert enc.id.startswith("passt/") and enc.digest != "random"


@pytest.mark.slow
def test_train_with_a_passt_backbone_smoke(tmp_path):
    """A CPU smoke run of `qvi train --backbone passt` (random PaSST weights: no download)."""
    import shutil

    from qvi_app.encoders.checkpoint import load_checkpoint
    from qvi_app.paths import DEMO_LIBRARY

    lib = tmp_path / "lib"
    for cat in ("birds", "weapons"):
        (lib / cat).mkdir(parents=True)
        for f in sorted((DEMO_LIBRARY / cat).iterdir())[:3]:
            shutil.copy(f, lib / cat / f.name)
    out = tmp_path / "passt-ft.pt"
    assert qvi(["train", str(lib), "--backbone", "passt", "--out", str(out), "--epochs", "1", "--batch-size", "4",
                "--set", "init=random", "--set", "clip_seconds=1.0", "--set", "max_seconds=1.5",
                "--set", "simulated_per_reference=1", "--set", "val_imitations=1", "--set", "val_fraction=0.34",
                "--set", "test_fraction=0", "--set", "freeze_blocks=11", "--set", "head_hidden=64",
                "--quiet"]) == 0
    ck = load_checkpoint(out)
    assert ck["encoder"] == "passt" and (ck["settings"]["head_hidden"], ck["settings"]["towers"]) == (64, 1)
    assert ck["settings"]["frontend"]["sample_rate"] == 32000 and ck["split"]["val"]
    enc = load_encoder("passt", out)
    v = enc.embed(tone(440, 1.0, 32000), 32000, role="query")
    assert v.shape == (768,) and abs(np.linalg.norm(v) - 1) < 1e-5
    # qvi evaluate recognises the checkpoint's encoder and evaluates it on its own split.
    prefix = tmp_path / "ev"
    assert qvi(["evaluate", str(lib), "--checkpoint", str(out), "--split", "val", "--imitations", "1",
                "--no-baselines", "--out", str(prefix), "--quiet"]) == 0
    assert (prefix.with_suffix(".json")).is_file()
