import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from qvi_app.audio import load_audio, resample
from qvi_app.encoders import load_encoder
from qvi_app.encoders.checkpoint import load_checkpoint, save_checkpoint
from qvi_app.encoders.cnn_model import SfxCNN, state_dict_from_aisfx
from qvi_app.encoders.model import CnnSettings, ModelSettings, build_model, save_model
from qvi_app.errors import EncoderError
from qvi_app.features import LogMelSettings
from qvi_app.paths import BUNDLED_CNN, DEMO_LIBRARY, ZERO_SHOT_CNN
from tests.conftest import tone


@pytest.mark.parametrize("name", ["cnn", "2dft"])
def test_embed_is_unit_norm_deterministic_and_rate_independent(name):
    enc = load_encoder(name)
    w, sr = load_audio(DEMO_LIBRARY / "farm_animals/cattle_01.ogg")
    a, b = enc.embed(w, sr), enc.embed(w, sr)
    assert a.shape == (enc.dim,) and a.dtype == np.float32
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(a, b)
    same_at_other_rate = enc.embed(resample(w, sr, 48000), 48000)
    assert a @ same_at_other_rate > 0.98
    assert enc.id.startswith(f"{name}/{enc.version}/")


def test_bundled_checkpoint_carries_its_preprocessing_and_credit():
    ckpt = load_checkpoint(BUNDLED_CNN, expect_encoder="cnn")
    assert LogMelSettings(**ckpt["settings"]["frontend"]) == load_encoder("cnn").settings.frontend
    assert "CC BY 4.0" in ckpt["provenance"]["license"]
    assert (BUNDLED_CNN.parent / "MODEL_CARD.md").is_file()
    # The bundled model was fine-tuned from the zero-shot one by qvi train, with the same preprocessing.
    zero = load_checkpoint(ZERO_SHOT_CNN, expect_encoder="cnn")
    assert ckpt["settings"]["frontend"] == zero["settings"]["frontend"]
    assert ckpt["training"]["init"]["version"] == zero["version"]
    assert ckpt["split"]["test"] and ckpt["training"]["best"]["val_mrr"] > ckpt["training"]["log"][0]["val_mrr"]


def test_checkpoint_round_trip_restores_weights_and_settings(tmp_path):
    settings = ModelSettings("cnn", LogMelSettings(n_mels=64, f_max=16000.0), CnnSettings(4, "max"), towers=1,
                             head_hidden=8)
    model = build_model(settings)
    path = save_model(tmp_path / "m.pt", model, "test-1")
    enc = load_encoder("cnn", path)
    assert enc.settings == settings and enc.dim == 32 and enc.version == "test-1"
    for k, v in model.network.state_dict().items():
        assert torch.equal(enc.model.network.state_dict()[k], v)
    assert enc.embed(tone(500, 1.0, 16000), 16000).shape == (32,)


def test_a_format_1_checkpoint_reads_as_the_same_model(tmp_path):
    """0.2 and 0.3 wrote ``arch`` + ``frontend`` (format 1); they still load, as the same network."""
    ckpt = load_checkpoint(BUNDLED_CNN)
    s = ckpt["settings"]
    old = {"format": "qvi-encoder", "format_version": 1, "encoder": "cnn", "version": ckpt["version"],
           "arch": {**s["network"], "towers": s["towers"], "head_hidden": s["head_hidden"]},
           "frontend": s["frontend"], "state_dict": ckpt["state_dict"]}
    torch.save(old, tmp_path / "old.pt")
    then, now = load_encoder("cnn", tmp_path / "old.pt"), load_encoder("cnn", BUNDLED_CNN)
    assert then.settings == now.settings
    wave = tone(440, 2.0, 44100)
    assert np.array_equal(then.embed(wave, 44100), now.embed(wave, 44100))


def test_bad_checkpoints_are_refused_with_the_path(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    for path, words in [(junk, "not a readable"), (tmp_path / "none.pt", "not found")]:
        with pytest.raises(EncoderError, match=words) as err:
            load_encoder("cnn", path)
        assert str(path) in str(err.value)
    other = save_checkpoint(tmp_path / "o.pt", encoder="passt", version="x", settings={}, state_dict={})
    with pytest.raises(EncoderError, match="holds a 'passt' model"):
        load_encoder("cnn", other)
    with pytest.raises(ValueError, match="unknown encoder"):
        load_encoder("vggish")


@pytest.mark.skipif(importlib.util.find_spec("aisfx") is None, reason="aisfx wheel not installed")
def test_zero_shot_weights_equal_the_aisfx_wheel():
    spec = importlib.util.find_spec("aisfx")
    src = Path(list(spec.submodule_search_locations)[0]) / "models" / "checkpoint.pth"
    weights, _ = torch.load(src, map_location="cpu", weights_only=False)
    ours = load_checkpoint(ZERO_SHOT_CNN)["state_dict"]
    theirs = {f"backbone.{k}": v for k, v in state_dict_from_aisfx(weights).items()}
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_max_and_mean_pooling_concatenates_two_unit_halves():
    torch.manual_seed(0)
    maxonly, both = SfxCNN(base_channels=4).eval(), SfxCNN(base_channels=4, pooling="max+mean").eval()
    both.load_state_dict(maxonly.state_dict())
    x = torch.randn(2, 1, 120, 96)
    with torch.no_grad():
        frames, m, b = maxonly.feature_map(x), maxonly(x), both(x)
    assert both.dim == 64 and b.shape == (2, 64)
    assert torch.allclose(b[:, :32], torch.nn.functional.normalize(m, dim=1), atol=1e-6)
    assert torch.allclose(b[:, 32:], torch.nn.functional.normalize(frames.mean(dim=2), dim=1), atol=1e-6)
    with pytest.raises(ValueError, match="pooling"):
        SfxCNN(pooling="median")


def test_a_model_without_a_title_is_named_from_the_backbone_table():
    from qvi_app.app import describe_encoder
    from qvi_app.encoders.model import backbone

    enc = load_encoder("cnn", ZERO_SHOT_CNN)                    # the zero-shot file carries no title
    assert not (enc.metadata.get("provenance") or {}).get("title")
    assert describe_encoder(enc) == f"{backbone('cnn').label} ({enc.version})" and backbone("cnn").label
    assert describe_encoder(load_encoder("2dft")) == "CQT/2DFT"
