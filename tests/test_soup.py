"""Weight soups: several training runs of one recipe averaged into one model (``qvi soup``).

Runs can be averaged only when they started from the same weights, the head's random ones
included (``head_seed``); the soup is then the element-wise mean of their weights, and anything
that cannot be averaged is refused in one line, the runs untouched."""

from __future__ import annotations

import shutil

import pytest
import torch

from qvi_app.cli import main as qvi
from qvi_app.encoders import load_encoder
from qvi_app.encoders.checkpoint import load_checkpoint
from qvi_app.encoders.model import load_model, save_model
from qvi_app.paths import DEMO_LIBRARY, ZERO_SHOT_CNN
from qvi_app.training.config import TrainConfig
from qvi_app.training.loop import starting_model

TINY = ["--set", "clip_seconds=1.5", "--set", "max_seconds=2.5", "--set", "simulated_per_reference=2",
        "--set", "val_fraction=0.34", "--set", "test_fraction=0.0", "--set", "freeze_blocks=3",
        "--set", "head_hidden=64", "--batch-size", "8", "--epochs", "1", "--quiet"]


def _head(cfg: TrainConfig) -> torch.Tensor:
    return starting_model(cfg)[0].network.head.fc1.weight.detach().clone()


def test_a_head_seed_gives_every_training_seed_the_same_starting_head():
    shared = [TrainConfig(seed=s, head_seed=0, head_hidden=64) for s in (1, 2)]
    assert torch.equal(_head(shared[0]), _head(shared[1]))
    own = [TrainConfig(seed=s, head_hidden=64) for s in (1, 2)]            # the default: the head follows --seed
    torch.manual_seed(1)
    a = _head(own[0])
    torch.manual_seed(2)
    assert not torch.equal(a, _head(own[1]))
    # the rest of a run's randomness still follows its own seed: the head's draw leaves it alone
    torch.manual_seed(5)
    before = torch.rand(3)
    torch.manual_seed(5)
    starting_model(shared[0])
    assert torch.equal(torch.rand(3), before)


@pytest.fixture(scope="module")
def tiny_library(tmp_path_factory):
    """12 real demo sounds in 2 categories."""
    root = tmp_path_factory.mktemp("soup") / "lib"
    for cat in ("birds", "vehicles"):
        for f in sorted((DEMO_LIBRARY / cat).iterdir())[:6]:
            (root / cat).mkdir(parents=True, exist_ok=True)
            shutil.copy(f, root / cat / f.name)
    return root


@pytest.fixture(scope="module")
def runs(tiny_library, tmp_path_factory):
    """Two one-epoch runs of one recipe, seeds 1 and 2, sharing their starting head."""
    out = tmp_path_factory.mktemp("runs")
    paths = [out / f"s{s}.pt" for s in (1, 2)]
    for s, p in zip((1, 2), paths):
        assert qvi(["train", str(tiny_library), "--out", str(p), "--seed", str(s), "--set", "head_seed=0", *TINY]) == 0
    return paths


def test_soup_is_the_mean_of_the_runs_weights(runs, tmp_path, capsys):
    out = tmp_path / "soup.pt"
    assert qvi(["soup", str(out), *map(str, runs)]) == 0
    assert "soup of 2 runs" in capsys.readouterr().out
    members = [load_checkpoint(p) for p in runs]
    soup = load_checkpoint(out)
    a, b = (m["state_dict"] for m in members)
    assert not torch.equal(a["head.fc1.weight"], b["head.fc1.weight"])            # the runs did differ
    for k, v in soup["state_dict"].items():
        if v.is_floating_point():
            assert torch.allclose(v, (a[k] + b[k]) / 2, atol=1e-6), k
        else:
            assert torch.equal(v, a[k])
    assert soup["settings"] == members[0]["settings"] and soup["encoder"] == "cnn"
    assert [m["seed"] for m in soup["training"]["soup"]] == [1, 2]
    assert [m["digest"] for m in soup["training"]["soup"]] == [m["digest"] for m in members]
    # it trained on every sound any run trained on; only sounds no run saw stay held out
    trained = set(members[0]["split"]["train"]) | set(members[1]["split"]["train"])
    assert set(soup["split"]["train"]) == trained
    assert not (set(soup["split"]["val"]) | set(soup["split"]["test"])) & trained
    assert set(soup["split"]["val"]) == set(members[0]["split"]["val"]) & set(members[1]["split"]["val"])
    # it is a model like any other: it embeds
    wave = torch.randn(22050).numpy() * 0.1
    v = load_encoder("cnn", out).embed(wave, 22050)
    assert v.shape == (1024,)


def _fake_run(path, *, head_seed=0, head_hidden=64, init_digest=None, seed=0):
    """A checkpoint as ``qvi train`` writes it, without the training."""
    model, meta = load_model(ZERO_SHOT_CNN)
    cfg = TrainConfig(seed=seed, head_seed=head_seed, head_hidden=head_hidden)
    torch.manual_seed(head_seed if head_seed >= 0 else seed)
    net = starting_model(cfg)[0]
    save_model(path, net, "ntxent-ft1", split={"train": ["a"], "val": ["b"], "test": []},
               training={"config": cfg.to_dict(), "best": {"epoch": 1, "val_mrr": 0.5},
                         "init": {"version": meta["version"], "digest": init_digest or load_checkpoint(ZERO_SHOT_CNN)["digest"]}})
    return path


def test_a_run_of_the_default_head_seed_averages_with_runs_whose_head_seed_is_its_seed(tmp_path, capsys):
    """With head_seed -1 a run's head comes from its --seed: seed 0 starts as head_seed 0 does
    (the bundled model is such a run)."""
    legacy = _fake_run(tmp_path / "legacy.pt", head_seed=-1, seed=0)
    shared = _fake_run(tmp_path / "shared.pt", head_seed=0, seed=7)
    assert torch.equal(load_checkpoint(legacy)["state_dict"]["head.fc1.weight"],
                       load_checkpoint(shared)["state_dict"]["head.fc1.weight"])
    assert qvi(["soup", str(tmp_path / "soup.pt"), str(legacy), str(shared)]) == 0
    assert "soup of 2 runs (seeds 0, 7)" in capsys.readouterr().out


@pytest.mark.parametrize("case, message", [
    ("own heads", "head started from seed 2"),
    ("other head seeds", "head started from seed 3"),
    ("other shapes", "settings"),
    ("other start", "started from"),
    ("one run", "at least two"),
    ("not a checkpoint", "not a readable qvi checkpoint"),
    ("no training record", "not a qvi train run"),
    ("out is a run", "would overwrite"),
])
def test_soup_refuses_what_cannot_be_averaged_in_one_line(case, message, tmp_path, capsys):
    a = _fake_run(tmp_path / "a.pt", seed=1)
    b = {
        "own heads": lambda p: _fake_run(p, head_seed=-1, seed=2),
        "other head seeds": lambda p: _fake_run(p, head_seed=3, seed=2),
        "other shapes": lambda p: _fake_run(p, head_hidden=32, seed=2),
        "other start": lambda p: _fake_run(p, init_digest="0123456789", seed=2),
        "one run": None,
        "not a checkpoint": lambda p: (p.write_bytes(b"RIFF....WAVE not a model"), p)[1],
        "no training record": lambda p: (shutil.copy(ZERO_SHOT_CNN, p), p)[1],
        "out is a run": lambda p: _fake_run(p, seed=2),
    }[case]
    members = [a] if b is None else [a, b(tmp_path / "b.pt")]
    out = members[-1] if case == "out is a run" else tmp_path / "soup.pt"
    before = [p.read_bytes() for p in members]
    if case == "own heads":
        members = [_fake_run(tmp_path / "a.pt", head_seed=-1, seed=1), members[1]]
        before = [p.read_bytes() for p in members]
    assert qvi(["soup", str(out), *map(str, members)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert [p.read_bytes() for p in members] == before                    # the runs are untouched
    if case != "out is a run":
        assert not out.exists()


def test_evaluating_a_split_the_soup_holds_nothing_in_says_so(runs, tiny_library, tmp_path, capsys):
    out = tmp_path / "soup.pt"
    assert qvi(["soup", str(out), *map(str, runs)]) == 0
    assert load_checkpoint(out)["split"]["test"] == []
    assert qvi(["evaluate", str(tiny_library), "--checkpoint", str(out), "--split", "test", "--quiet",
                "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds no test references" in err and len(err.splitlines()) == 1, err
