"""scripts/reproduce_bundled_model.sh: the bundled model's own code (commit 2efe9a3) checked out in
a temporary worktree and trained with this checkout's .venv. Here on six synthetic sounds for
one epoch: the script's mechanics (worktree, old code on today's packages, checkpoint written,
worktree removed), not the 8-minute run whose figures docs/TRAINING.md row 45 gives."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from qvi_app.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "reproduce_bundled_model.sh"
COMMIT = "2efe9a3e8b5366eaf7e142ca3cb5c72548f56940"


def _has_commit() -> bool:
    return subprocess.run(["git", "-C", str(REPO_ROOT), "cat-file", "-e", f"{COMMIT}^{{commit}}"],
                          capture_output=True).returncode == 0


def _worktrees() -> str:
    return subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "list"], capture_output=True, text=True).stdout


def _sounds(root: Path) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(int(1.5 * 22050)) / 22050
    for cat in ("tones", "noises"):
        (root / cat).mkdir(parents=True)
        for k in range(3):
            if cat == "tones":
                wave = np.sin(2 * np.pi * (220 * (k + 1) + 300 * t) * t)
            else:
                wave = rng.standard_normal(len(t)) * np.exp(-t * (k + 1))
            sf.write(root / cat / f"{cat}_{k}.wav", (0.5 * wave / np.abs(wave).max()).astype(np.float32), 22050)


@pytest.mark.slow
@pytest.mark.skipif(not _has_commit(), reason="commit 2efe9a3 is not in this clone (shallow?)")
def test_script_trains_with_the_old_code_and_cleans_up(tmp_path):
    _sounds(tmp_path / "sfx")
    before = _worktrees()
    out = tmp_path / "reproduced.pt"
    done = subprocess.run(["bash", str(SCRIPT), str(out), str(tmp_path / "sfx"), "--", "--epochs", "1",
                           "--batch-size", "2", "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "reproduce: wrote" in done.stdout
    ckpt = torch.load(out, map_location="cpu", weights_only=False)
    # written by that day's code: its config has no simulator v2 fields, and its split is of our sounds
    assert ckpt["training"]["config"]["seed"] == 0 and "strategy_weights" not in ckpt["training"]["config"]["simulator"]
    assert {Path(p).parent.name for p in ckpt["split"]["train"]} <= {"tones", "noises"}
    assert _worktrees() == before                    # the temporary worktree is gone


def test_script_says_what_is_missing(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "x.pt"), str(tmp_path / "nothing-here")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == f"reproduce: no training sounds at {tmp_path / 'nothing-here'}"
    assert not (tmp_path / "x.pt").exists()


def test_flags_after_the_output_alone_are_passed_on(tmp_path):
    """``OUT -- FLAGS`` (no data folder): the default folder is used, not ``--``. A copy of the
    script in a folder without .venv stops at that check, after reading its arguments."""
    (tmp_path / "scripts").mkdir()
    copy = tmp_path / "scripts" / SCRIPT.name
    copy.write_text(SCRIPT.read_text())
    done = subprocess.run(["bash", str(copy), str(tmp_path / "x.pt"), "--", "--epochs", "1"],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr.strip()) == (2, "reproduce: run bash scripts/setup.sh first")


def test_paths_are_read_from_where_it_is_called(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT), "out.pt", "sfx"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stderr.strip()) == (2, f"reproduce: no training sounds at {tmp_path / 'sfx'}")
