"""A demo clip with noise, a 3-semitone pitch shift or a 10% time stretch finds itself at rank 1."""

import random

import numpy as np
import pytest

from qvi_app.app import QviSession, build_index
from qvi_app.audio import load_audio
from qvi_app.audio.transform import add_noise, pitch_shift, time_stretch
from qvi_app.paths import DEMO_INDEX

SAMPLE = 12
DISTORTIONS = {
    "noise 20 dB SNR": lambda w, sr: add_noise(w, 20.0, np.random.default_rng(0)),
    "pitch +3 semitones": lambda w, sr: pitch_shift(w, sr, 3.0),
    "pitch -3 semitones": lambda w, sr: pitch_shift(w, sr, -3.0),
    "stretch 10% faster": lambda w, sr: time_stretch(w, 1.1),
    "stretch 10% slower": lambda w, sr: time_stretch(w, 1 / 1.1),
}


@pytest.fixture(scope="module", params=["cnn", "2dft"])
def session(request, tmp_path_factory):
    if request.param == "cnn":
        return QviSession(DEMO_INDEX)
    index_dir = tmp_path_factory.mktemp("ix2dft")
    build_index(QviSession(DEMO_INDEX).index.library_root, index_dir, "2dft", show_progress=False)
    return QviSession(index_dir)


@pytest.mark.parametrize("distortion", list(DISTORTIONS))
def test_distorted_clip_ranks_first(session, distortion):
    items = session.index.items
    sample = random.Random(7).sample(items, SAMPLE)
    misses = []
    for it in sample:
        wave, sr = load_audio(session.index.library_root / it.path)
        hits = session.search_wave(DISTORTIONS[distortion](wave, sr), sr, top_k=3).hits
        if hits[0].relpath != it.path:
            misses.append((it.path, [h.relpath for h in hits]))
    assert not misses, f"{session.encoder.name}, {distortion}: {misses}"
