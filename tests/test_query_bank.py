"""A model's query bank (simulated imitations carried in its checkpoint) and the hubness correction
against it: written by ``qvi bank``, applied at indexing exactly as its definition says."""

import numpy as np
import pytest
import torch

from qvi_app.app import QviSession, build_index, prepare_query
from qvi_app.audio import isolate_sound, load_audio
from qvi_app.cli import main
from qvi_app.data.simulate import SimulatorSettings, imitation_seed, simulate_imitation
from qvi_app.encoders import load_encoder
from qvi_app.encoders.checkpoint import load_checkpoint, save_checkpoint
from qvi_app.errors import EncoderError
from qvi_app.index import ReferenceIndex
from qvi_app.paths import BUNDLED_CNN
from qvi_app.ranking import RankingSettings, hub_penalty
from tests.conftest import SR, tone, write


@pytest.fixture
def bank_sounds(tmp_path):
    """A few real sound files that are not in the library: tones, a chirp, noise bursts."""
    rng = np.random.default_rng(3)
    root = tmp_path / "bank-sounds"
    t = np.arange(SR) / SR
    write(root / "tonal/low.wav", tone(220, 1.2))
    write(root / "tonal/high.wav", tone(880, 1.2))
    write(root / "tonal/chirp.wav", 0.5 * np.sin(2 * np.pi * (300 + 600 * t) * t).astype(np.float32))
    write(root / "noise/burst.wav", (0.3 * rng.standard_normal(SR) * (t < 0.5)).astype(np.float32))
    write(root / "noise/hiss.wav", (0.2 * rng.standard_normal(SR)).astype(np.float32))
    return root


def test_qvi_bank_writes_the_models_own_query_embeddings(tmp_path, bank_sounds, capsys):
    out = tmp_path / "banked.pt"
    assert main(["bank", str(BUNDLED_CNN), str(bank_sounds), "--out", str(out), "--hub-k", "3",
                 "--hub-weight", "0.5", "--quiet"]) == 0
    assert "query bank of 5 simulated imitations" in capsys.readouterr().out
    ckpt = load_checkpoint(out)
    assert ckpt["ranking"] == RankingSettings(encoders=("cnn",), hub_bank="queries", hub_k=3, hub_weight=0.5).to_dict()
    bank = ckpt["query_bank"]
    assert bank.dtype == torch.float16 and tuple(bank.shape) == (5, 1024)
    assert ckpt["query_bank_info"]["strategy"] == "follow"
    # the row of one sound is that sound's simulated imitation, prepared and embedded as a search would
    enc = load_encoder("cnn", BUNDLED_CNN)
    wave, sr = load_audio(bank_sounds / "tonal/high.wav")
    sim = SimulatorSettings()
    imitation = simulate_imitation(isolate_sound(wave, sr), sr, imitation_seed("tonal/high.wav", 0, "bank", 0), sim,
                                   "follow")
    expected = enc.embed(prepare_query(imitation, sim.sample_rate), sim.sample_rate, role="query")
    cos = bank.float().numpy() @ expected
    assert cos.max() > 0.999 and np.sum(cos > 0.999) == 1
    # the weights are untouched
    before = load_checkpoint(BUNDLED_CNN)["state_dict"]
    assert all(torch.equal(before[k], v) for k, v in ckpt["state_dict"].items())


def test_index_penalises_each_sound_by_its_nearest_bank_imitations(tmp_path, bank_sounds, small_library):
    model = tmp_path / "banked.pt"
    main(["bank", str(BUNDLED_CNN), str(bank_sounds), "--out", str(model), "--hub-k", "3", "--quiet"])
    build_index(small_library, tmp_path / "ix", checkpoint=model, show_progress=False)
    idx = ReferenceIndex.open(tmp_path / "ix")
    bank = load_checkpoint(model)["query_bank"].float().numpy()
    emb = np.asarray(idx.embeddings)
    # brute force: the mean cosine of each sound to its 3 nearest bank imitations
    expected = np.sort(emb @ bank.T, axis=1)[:, -3:].mean(axis=1)
    np.testing.assert_allclose(idx.penalties[:, 0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hub_penalty(emb, bank, 3), expected, rtol=1e-5, atol=1e-6)
    # and a search ranks by cosine minus half the penalty
    session = QviSession(tmp_path / "ix", checkpoint=model)
    query = sorted(small_library.rglob("*.ogg"))[5]
    hits = session.search_file(query, top_k=len(emb)).hits
    q = session.encoder.embed(prepare_query(*load_audio(query)), load_audio(query)[1], role="query")
    score = emb @ q - 0.5 * expected
    np.testing.assert_allclose([h.score for h in hits], np.sort(score)[::-1], rtol=1e-4, atol=1e-4)


def test_a_ranking_that_needs_a_bank_the_model_lacks_is_refused_at_load(tmp_path):
    ckpt = load_checkpoint(BUNDLED_CNN)
    ckpt["ranking"] = RankingSettings(hub_bank="queries").to_dict()
    ckpt.pop("query_bank", None)
    keep = {k: v for k, v in ckpt.items() if k not in ("format", "format_version", "digest")}
    save_checkpoint(tmp_path / "nobank.pt", **keep)
    with pytest.raises(EncoderError, match="query bank it does not carry"):
        load_encoder("qvi", tmp_path / "nobank.pt")
    keep["query_bank"] = torch.zeros(4, 7, dtype=torch.float16)            # wrong width
    save_checkpoint(tmp_path / "badbank.pt", **keep)
    with pytest.raises(EncoderError, match="damaged query bank"):
        load_encoder("qvi", tmp_path / "badbank.pt")


def test_big_libraries_use_the_banks_principal_directions(tmp_path, monkeypatch):
    """From PENALTY_EXACT_MAX sounds the penalties go through the bank's first PENALTY_RANK
    directions: close to the exact ones (the bundled bank and the demo library's embeddings)."""
    from qvi_app.index import store
    from qvi_app.paths import DEMO_INDEX
    from qvi_app.ranking.score import low_rank

    bank = load_checkpoint(BUNDLED_CNN)["query_bank"].float().numpy()
    emb = np.array(ReferenceIndex.open(DEMO_INDEX).embeddings, np.float32)
    exact = hub_penalty(emb, bank, 10)
    basis, coords = low_rank(bank, 128)
    assert basis.shape == (128, 1024) and np.allclose(basis @ basis.T, np.eye(128), atol=1e-4)
    approx = hub_penalty(emb, bank, 10, rank=128)
    assert np.abs(approx - exact).max() < 0.01 and not np.array_equal(approx, exact)
    monkeypatch.setattr(store, "PENALTY_EXACT_MAX", 100)
    ranking = RankingSettings(hub_bank="queries", hub_k=10, hub_weight=0.5)
    got = store.library_penalties(emb, [("cnn", 0, 1024)], ranking, query_banks={"cnn": bank})
    np.testing.assert_allclose(got[:, 0], approx, rtol=1e-5, atol=1e-6)


def test_an_update_measures_the_penalties_of_new_sounds_only(tmp_path, bank_sounds, small_library, monkeypatch):
    """Against a query bank a sound's penalty depends on it and the model alone: an update keeps
    the penalties of the sounds it keeps, computes the new ones, and equals a build from scratch."""
    import shutil

    from qvi_app.index import store

    model = tmp_path / "banked.pt"
    main(["bank", str(BUNDLED_CNN), str(bank_sounds), "--out", str(model), "--hub-k", "3", "--quiet"])
    library = tmp_path / "lib"
    shutil.copytree(small_library, library)
    build_index(library, tmp_path / "ix", checkpoint=model, show_progress=False)
    before = ReferenceIndex.open(tmp_path / "ix")
    n_before = len(before.items)
    write(library / "new" / "added.wav", tone(660, 1.0))
    measured = []
    real = store.hub_penalty
    monkeypatch.setattr(store, "hub_penalty", lambda refs, *a, **k: measured.append(len(refs)) or real(refs, *a, **k))
    build_index(library, tmp_path / "ix", checkpoint=model, show_progress=False)
    assert measured == [1]
    idx = ReferenceIndex.open(tmp_path / "ix")
    assert len(idx.items) == n_before + 1
    bank = load_checkpoint(model)["query_bank"].float().numpy()
    expected = np.sort(np.asarray(idx.embeddings) @ bank.T, axis=1)[:, -3:].mean(axis=1)
    np.testing.assert_allclose(idx.penalties[:, 0], expected, rtol=1e-5, atol=1e-6)
