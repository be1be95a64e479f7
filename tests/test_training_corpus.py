"""scripts/build_training_set.py on a tiny fake Debian package: categories, speech and music left
out, sounds inside a game archive, duplicates of the demo library (exact, other gain, a cut
piece) and inside the corpus left out by content, per-file licences from a DEP-5 copyright file."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from qvi_app.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import build_training_set  # noqa: E402
from debsfx import CopyrightFile, DuplicateIndex  # noqa: E402

SR = 22050
PKG = "qvi-fake-sfx-data"
COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2020 Fake Games
License: GPL-2+

Files: data/sounds/dog*
Copyright: 2019 A. Barker
License: CC0-1.0
"""


def sound(kind: str, seconds: float, seed: int) -> np.ndarray:
    """Distinct synthetic sounds: each kind has its own spectrum and rhythm."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    if kind == "barks":              # 4 bursts of a 600 Hz harmonic tone
        env = (np.sin(2 * np.pi * 2 * t) > 0.6).astype(float)
        return (0.5 * env * np.sign(np.sin(2 * np.pi * 600 * t))).astype(np.float32)
    if kind == "boom":               # decaying low noise
        noise = np.convolve(rng.standard_normal(len(t)), np.ones(30) / 30, "same")
        return (0.8 * noise * np.exp(-3 * t) / np.abs(noise).max()).astype(np.float32)
    if kind == "shot":               # a click then bright hiss
        return (0.7 * rng.standard_normal(len(t)) * np.exp(-12 * t)).astype(np.float32)
    if kind == "chirps":             # rising sweeps
        return (0.4 * np.sin(2 * np.pi * (2000 + 3000 * (t % 0.5)) * t)).astype(np.float32)
    if kind == "speech":
        return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    raise ValueError(kind)


def write(path: Path, wave: np.ndarray, fmt: str = "WAV") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, SR, format=fmt)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb not available")
    tmp = tmp_path_factory.mktemp("corpus")
    library = tmp / "library"
    demo_a = write(library / "vehicles" / "engine_01.wav", sound("boom", 3.0, 1) + 0.2 * sound("chirps", 3.0, 0))
    demo_b = write(library / "weather" / "rain_01.wav", sound("shot", 6.0, 2) * 0 + np.random.default_rng(3)
                   .standard_normal(6 * SR).astype(np.float32) * 0.3 * (1 + np.sin(np.arange(6 * SR) / SR * 3)))

    root = tmp / "pkg"
    games = root / "usr/share/games/fake"
    write(games / "data/sounds/dog_bark1.wav", sound("barks", 2.0, 0))
    write(games / "data/sounds/explosion.wav", sound("boom", 2.5, 7))
    write(games / "data/sounds/voices/hello.wav", sound("speech", 1.5, 0))            # speech: left out
    write(games / "data/music/theme.wav", sound("chirps", 3.0, 5))                    # music: left out
    write(games / "data/sounds/engine_loop.wav", 0.5 * sf.read(demo_a, dtype="float32")[0])   # demo, other gain
    rain, _ = sf.read(demo_b, dtype="float32")
    write(games / "data/sounds/truck_idle.wav", rain[SR:5 * SR])                       # a piece of a demo clip
    write(games / "data/sounds/horn.flac", sound("barks", 2.0, 0), "FLAC")            # = dog_bark1 re-encoded
    pk3 = games / "data.pk3"
    shot = write(tmp / "shotgun_fire.wav", sound("shot", 1.0, 9))
    with zipfile.ZipFile(pk3, "w") as z:
        z.write(shot, "sound/weapons/shotgun_fire.wav")
    doc = root / "usr/share/doc" / PKG
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text(f"Package: {PKG}\nVersion: 1.0-1\nArchitecture: all\n"
                                         "Maintainer: qvi tests <qvi@example.org>\nDescription: fake sounds\n")
    cache = tmp / "cache"
    (cache / "debs").mkdir(parents=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(cache / "debs" / f"{PKG}_1.0-1_all.deb")],
                   check=True, capture_output=True)
    out = tmp / "corpus"
    assert build_training_set.main(["--cache", str(cache), "--out", str(out), "--packages", PKG,
                                    "--exclude-library", str(library)]) == 0
    rows = list(csv.DictReader(open(out / "ATTRIBUTION.tsv", encoding="utf-8"), delimiter="\t"))
    left = list(csv.DictReader(open(out / "LEFT_OUT.tsv", encoding="utf-8"), delimiter="\t"))
    return out, {r["original_path"].split("/")[-1]: r for r in rows}, {r["original_path"].split("/")[-1]: r for r in left}


def test_sounds_are_categorised_and_written(built):
    out, rows, _ = built
    assert {name: r["category"] for name, r in rows.items()} == {
        "dog_bark1.wav": "animal_domestic", "explosion.wav": "explosion", "shotgun_fire.wav": "gunfire"}
    for r in rows.values():
        wave, sr = sf.read(out / r["path"], dtype="float32")
        assert sr == SR and wave.ndim == 1 and np.abs(wave).max() <= 1.0
        assert r["package"] == PKG and r["package_version"] == "1.0-1"
    assert rows["shotgun_fire.wav"]["original_path"].endswith("data.pk3!sound/weapons/shotgun_fire.wav")


def test_speech_music_and_duplicates_are_left_out_with_the_reason(built):
    _, _, left = built
    assert left["hello.wav"]["reason"] == left["theme.wav"]["reason"] == "speech, music or uncategorised"
    assert left["engine_loop.wav"]["reason"] == "duplicates of the demo library"
    assert left["engine_loop.wav"]["match"] == "library:vehicles/engine_01.wav"
    assert left["truck_idle.wav"]["reason"] == "duplicates of the demo library"        # a cut piece
    assert left["horn.flac"]["reason"] == "duplicates inside the corpus"
    assert left["horn.flac"]["match"].endswith("dog_bark_01.flac")


def test_licences_come_from_the_matching_copyright_stanza(built):
    _, rows, _ = built
    assert rows["dog_bark1.wav"]["license"] == "CC0-1.0" and "A. Barker" in rows["dog_bark1.wav"]["copyright"]
    assert rows["explosion.wav"]["license"] == "GPL-2+"
    assert rows["shotgun_fire.wav"]["license"] == "GPL-2+"


def test_copyright_stanza_matching_uses_the_tail_of_source_globs(tmp_path):
    path = tmp_path / "copyright"
    path.write_text(COPYRIGHT + "\nFiles: share/hedgewars/Data/Sounds/*\nCopyright: x\nLicense: GFDL-1.3\n")
    c = CopyrightFile(path)
    assert c.lookup("usr/share/games/hedgewars/Data/Sounds/bee.ogg")[0] == "GFDL-1.3"
    assert c.lookup("usr/share/games/other/x.ogg")[0] == "GPL-2+"
    free_form = tmp_path / "free"
    free_form.write_text("This package is under the GNU GPL-2 or later.\n")
    assert CopyrightFile(free_form).lookup("a.wav")[0].startswith("GPL-2")


def test_duplicate_index_tolerates_gain_and_cuts_but_not_other_sounds():
    a = sound("boom", 3.0, 1) + 0.2 * sound("chirps", 3.0, 0)
    index = DuplicateIndex()
    index.add(a, "a")
    assert index.find(0.3 * a) == "a"
    assert index.find(a[SR // 2: int(2.5 * SR)]) == "a"                # cut mid-frame
    assert index.find(sound("barks", 3.0, 0)) is None
    assert index.find(sound("shot", 3.0, 4)) is None
