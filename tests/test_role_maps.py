"""Role maps: one affine map per role between backbone and head, started at domain whitening."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qvi_app.cli import main as qvi
from qvi_app.encoders import load_encoder
from qvi_app.encoders.checkpoint import load_checkpoint
from qvi_app.encoders.model import ModelSettings, build_model, load_model, whitening_map
from qvi_app.paths import ZERO_SHOT_CNN
from qvi_app.training.config import TrainConfig
from qvi_app.training.loop import embed_waves, fit_role_maps, state_path
from qvi_app.training.pairs import PairSource
from test_training import TINY, tiny_library  # noqa: F401  (the fixture, shared)


def _by_hand(x: np.ndarray, power: float, shrink: float) -> tuple[np.ndarray, np.ndarray]:
    """y = U diag((λ + shrink·mean λ)^(-power/2)) Uᵀ (x − mean), written out with numpy."""
    mean = x.mean(0)
    cov = (x - mean).T @ (x - mean) / len(x)
    lam, u = np.linalg.eigh(cov)
    lam = np.clip(lam, 0, None)
    w = u @ np.diag((lam + shrink * lam.mean()) ** (-power / 2)) @ u.T
    return w, -w @ mean


@pytest.mark.parametrize("power,shrink", [(1.0, 0.0), (0.5, 1.0), (0.0, 1.0)])
def test_whitening_map_is_the_textbook_definition(power, shrink):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 12, generator=g) @ torch.randn(12, 12, generator=g) + 2.0
    weight, bias = whitening_map(x, power, shrink)
    w, b = _by_hand(x.double().numpy(), power, shrink)
    assert np.allclose(weight.numpy(), w, atol=1e-4) and np.allclose(bias.numpy(), b, atol=1e-4)
    y = (x @ weight.T + bias).double()
    assert y.mean(0).abs().max() < 1e-4                         # centred, whatever the power
    if power == 1.0 and shrink == 0.0:                           # fully whitened: covariance = identity
        assert torch.allclose(y.T @ y / len(y), torch.eye(12, dtype=torch.float64), atol=1e-3)
    if power == 0.0:                                             # power 0 only centres
        assert np.allclose(weight.numpy(), np.eye(12), atol=1e-6)


def test_role_map_settings_travel_and_old_files_have_none():
    with_maps = ModelSettings.default("cnn", towers=1, head_hidden=64, role_maps=True)
    assert with_maps.to_dict()["role_maps"] is True
    assert ModelSettings.from_dict(with_maps.to_dict()) == with_maps
    old = load_checkpoint(ZERO_SHOT_CNN)["settings"]             # written before role maps existed
    assert "role_maps" not in old and ModelSettings.from_dict(old).role_maps is False
    assert "role_maps" not in ModelSettings.default("cnn", towers=1, head_hidden=64).to_dict()
    with pytest.raises(ValueError, match="dual encoder"):
        ModelSettings.default("cnn", role_maps=True)              # the plain backbone has no roles
    with pytest.raises(ValueError, match="true or false"):
        ModelSettings.from_dict({**with_maps.to_dict(), "role_maps": "yes"})
    with pytest.raises(ValueError, match="power in 0..1"):
        TrainConfig(role_maps=2.0)


def test_role_maps_start_as_the_identity_and_then_separate_the_roles():
    x = torch.rand(2, 1, 100, 96)
    plain = load_model(ZERO_SHOT_CNN)[0].network
    dual = build_model(ModelSettings.default("cnn", towers=1, head_hidden=64, role_maps=True)).network
    dual.load_backbone(plain.backbone.state_dict())
    with torch.no_grad():
        expect = plain(x)
        assert torch.allclose(dual(x, "query"), expect, atol=1e-5)
        assert torch.allclose(dual(x, "reference"), expect, atol=1e-5)
        dual.set_role_map("query", 2 * torch.eye(dual.dim), torch.full((dual.dim,), 0.01))
        assert torch.allclose(dual(x, "reference"), expect, atol=1e-5)
        assert not torch.allclose(dual(x, "query"), expect, atol=1e-3)


def test_fit_role_maps_centres_each_role_on_its_own_training_sounds(tiny_library):  # noqa: F811
    from qvi_app.data import open_dataset
    from qvi_app.training.config import TRAINING_SIMULATOR

    model = build_model(ModelSettings.default("cnn", towers=1, head_hidden=64, role_maps=True))
    model.network.load_backbone(load_model(ZERO_SHOT_CNN)[0].network.backbone.state_dict())
    refs = open_dataset(tiny_library).references[:8]
    src = PairSource(refs, model.sample_rate, n_simulated=2, namespace="t", seed=0, max_seconds=2.0,
                     sim=TRAINING_SIMULATOR, progress=False)
    fit_role_maps(model.network, model.frontend, src, 0.5, "cpu", np.random.default_rng(0))
    maps = model.network.role_maps
    with torch.no_grad():                    # the embeddings the maps were fitted on, mapped by each role's map
        raw = {role: embed_waves_unmapped(model, waves) for role, waves in (
            ("reference", [(p.reference, p.reference_sr) for p in src.pairs]),
            ("query", [(w, p.imitation_sr) for p in src.pairs for w in p.imitations]))}
        for role, other in (("reference", "query"), ("query", "reference")):
            own = maps[role](raw[role]).mean(0).abs().max()
            crossed = maps[other](raw[role]).mean(0).abs().max()
            assert own < 1e-3 < crossed, role          # centred by its own statistics, not the other role's


def embed_waves_unmapped(model, waves) -> torch.Tensor:
    """Unit backbone outputs: what the role maps see."""
    saved, model.network.role_maps = model.network.role_maps, None
    try:
        return embed_waves(model.network, model.frontend, waves, "reference", "cpu")
    finally:
        model.network.role_maps = saved


@pytest.mark.slow
def test_a_run_with_role_maps_embeds_each_role_its_own_way_and_resumes(tiny_library, tmp_path):  # noqa: F811
    out = tmp_path / "maps.pt"
    args = ["train", str(tiny_library), "--out", str(out), "--set", "role_maps=0.5", *TINY]
    assert qvi([*args, "--epochs", "1"]) == 0
    ck = load_checkpoint(out)
    assert ck["settings"]["role_maps"] is True and ck["training"]["config"]["role_maps"] == 0.5
    enc = load_encoder("cnn", out)
    wave = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    q, r = enc.embed(wave, 16000, role="query"), enc.embed(wave, 16000, role="reference")
    assert abs(np.linalg.norm(q) - 1) < 1e-5 and float(q @ r) < 0.999     # the roles are mapped apart
    # A state written before role maps existed (no such key) resumes: missing settings are defaults.
    state = torch.load(state_path(out), weights_only=False)
    state["config"]["epochs"] = 2
    torch.save(state, state_path(out))
    assert qvi([*args, "--epochs", "2", "--resume"]) == 0
    no_maps = tmp_path / "plain.pt"
    assert qvi(["train", str(tiny_library), "--out", str(no_maps), "--epochs", "1", *TINY]) == 0
    state = torch.load(state_path(no_maps), weights_only=False)
    del state["config"]["role_maps"]
    state["config"]["epochs"] = 2
    torch.save(state, state_path(no_maps))
    assert qvi(["train", str(tiny_library), "--out", str(no_maps), "--epochs", "2", "--resume", *TINY]) == 0
