"""Training and evaluation: loss, metrics, simulator, dataset readers, split, checkpoint, tiny runs."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import SR, tone, write
from qvi_app.cli import main as qvi
from qvi_app.data import open_dataset, open_datasets, split_references
from qvi_app.data.datasets import DatasetError
from qvi_app.data.simulate import SimulatorSettings, analyse, simulate_imitation
from qvi_app.encoders import load_encoder
from qvi_app.encoders.checkpoint import load_checkpoint
from qvi_app.encoders.model import ModelSettings, build_model, load_model, save_model
from qvi_app.evaluation.metrics import (class_ranks, mrr_interval, ndcg, paired_difference, random_mrr, retrieval_report,
                                       summarise, target_ranks)
from qvi_app.features.invert import logmel_to_wave
from qvi_app.features.logmel import LogMelFrontEnd, LogMelSettings
from qvi_app.paths import DEMO_LIBRARY, ZERO_SHOT_CNN
from qvi_app.training.augment import AugmentSettings, augment_logmel, stretch_frames
from qvi_app.training.config import TrainConfig
from qvi_app.training.loss import nt_xent
from qvi_app.training.loop import TrainingError, state_path, train


# --- NT-Xent ---------------------------------------------------------------------------------

def _nt_xent_by_hand(q, r, tau):
    q = [v / np.linalg.norm(v) for v in q]
    r = [v / np.linalg.norm(v) for v in r]
    n = len(q)
    total = 0.0
    for i in range(n):
        row = [math.exp(float(np.dot(q[i], r[j])) / tau) for j in range(n)]
        col = [math.exp(float(np.dot(q[j], r[i])) / tau) for j in range(n)]
        total += -math.log(row[i] / sum(row)) - math.log(col[i] / sum(col))
    return total / (2 * n)


@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_nt_xent_matches_a_direct_computation(tau):
    g = torch.Generator().manual_seed(1)
    q, r = torch.randn(6, 16, generator=g, dtype=torch.float64), torch.randn(6, 16, generator=g, dtype=torch.float64)
    ours = float(nt_xent(q, r, tau))
    assert ours == pytest.approx(_nt_xent_by_hand(q.numpy(), r.numpy(), tau), rel=1e-9)
    # Perfectly matched, well-separated pairs give a loss near zero; swapping pairs makes it large.
    eye = torch.eye(6, dtype=torch.float64)
    assert float(nt_xent(eye, eye, 0.05)) < 1e-6
    assert float(nt_xent(eye, eye.roll(1, 0), 0.05)) > 10


# --- metrics ---------------------------------------------------------------------------------

def test_metrics_on_hand_made_rankings():
    # 3 queries, 4 candidates (categories a, a, b, b). Query 0's reference is candidate 0 (ranked 1st),
    # query 1's is candidate 3 (ranked 3rd), query 2's is candidate 2 (ranked 4th).
    scores = np.array([[0.9, 0.5, 0.1, 0.0],
                       [0.8, 0.1, 0.9, 0.2],
                       [0.7, 0.6, 0.1, 0.5]])
    targets = np.array([0, 3, 2])
    ranks = target_ranks(scores, targets)
    assert ranks.tolist() == [1, 3, 4]
    s = summarise(ranks)
    assert s["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 4) / 3)
    assert (s["top1"], s["top5"]) == (pytest.approx(1 / 3), 1.0)
    qc, cc = ["a", "b", "b"], ["a", "a", "b", "b"]
    # Class-wise: query 1 (b) finds candidate 2 (b) at rank 1; query 2 (b) finds candidate 3 (b) at rank 3.
    assert class_ranks(scores, qc, cc).tolist() == [1, 1, 3]
    # NDCG of query 2: relevant at ranks 3 and 4 → (1/log2 4 + 1/log2 5) / (1 + 1/log2 3).
    expect = (1 / math.log2(4) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg(scores, qc, cc)[2] == pytest.approx(expect)
    assert ndcg(scores, qc, cc)[0] == pytest.approx(1.0)
    rep = retrieval_report(scores, targets, qc, cc)
    assert rep["categories"]["b"]["queries"] == 2
    assert rep["categories"]["b"]["mrr"] == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert rep["macro_mrr"] == pytest.approx((1.0 + (1 / 3 + 1 / 4) / 2) / 2)


def test_ties_count_against_the_target_and_random_mrr():
    assert target_ranks(np.array([[0.5, 0.5, 0.5]]), np.array([1])).tolist() == [3]
    assert random_mrr(4) == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)


def test_mrr_interval_resamples_queries():
    ranks = np.array([1, 2, 4, 10, 1, 1, 3, 5, 2, 7])
    lo, hi = mrr_interval(ranks)
    assert lo < np.mean(1 / ranks) < hi and 0 < lo and hi <= 1
    assert mrr_interval(ranks) == (lo, hi)                               # seeded: the same report twice
    assert mrr_interval(np.full(6, 2)) == (0.5, 0.5)                     # no spread, no uncertainty
    lo4, hi4 = mrr_interval(np.tile(ranks, 4))                           # 4x the queries: about half as wide
    assert 0.4 < (hi4 - lo4) / (hi - lo) < 0.6
    assert mrr_interval(np.array([], int)) == (0.0, 0.0)


def test_mrr_interval_resamples_whole_sounds_when_told_which():
    # 4 sounds, 10 imitations each, every imitation of a sound at the same rank: resampling sounds
    # is resampling 4 values, and far wider than pretending the 40 imitations are independent.
    ranks, sounds = np.repeat([1, 2, 5, 1], 10), np.repeat([7, 3, 9, 4], 10)
    assert mrr_interval(ranks, sounds) == mrr_interval(np.array([1, 2, 5, 1]))
    lo, hi = mrr_interval(ranks, sounds)
    qlo, qhi = mrr_interval(ranks)
    assert hi - lo > 2.5 * (qhi - qlo)
    # Sounds with different numbers of imitations: the brute-force definition, resample by resample.
    ranks, sounds = np.array([1, 1, 1, 4, 2, 3, 10, 1, 1]), np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    idx = np.random.default_rng(0).integers(0, 3, (2000, 3))
    means = [np.mean(1 / np.concatenate([ranks[sounds == c] for c in row])) for row in idx]
    assert mrr_interval(ranks, sounds) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))


def test_paired_difference_compares_query_by_query():
    a, b = np.array([1, 1, 2, 1, 3, 1]), np.array([2, 3, 4, 2, 5, 2])   # a ranks every query higher
    d = paired_difference(a, b)
    assert d["mrr_diff"] == pytest.approx(np.mean(1 / a) - np.mean(1 / b))
    assert d["ci95"][0] > 0 and d["share_better"] == 1.0
    assert paired_difference(b, a)["share_better"] == 0.0
    same = paired_difference(a, a)
    assert same["mrr_diff"] == 0.0 and same["ci95"] == [0.0, 0.0] and same["share_better"] == 0.0
    # One query swings it: a wins one query by a lot and loses five by a little → not a sure thing.
    mixed = paired_difference(np.array([1, 3, 3, 3, 3, 3]), np.array([10, 2, 2, 2, 2, 2]))
    assert mixed["ci95"][0] < 0 < mixed["ci95"][1] and 0 < mixed["share_better"] < 1
    with pytest.raises(ValueError, match="same queries"):
        paired_difference(a, b[:3])
    # Resampling sounds: one sound where a wins big, one where it loses a little, is a coin toss.
    two = paired_difference(np.array([1, 1, 1, 3, 3, 3]), np.array([10, 10, 10, 2, 2, 2]), np.repeat([0, 1], 3))
    assert two["ci95"][0] < 0 < two["ci95"][1] and 0.6 < two["share_better"] < 0.9


def test_evaluation_table_gives_intervals_and_the_paired_comparison():
    from qvi_app.evaluation.run import to_markdown

    rng = np.random.default_rng(0)
    targets = np.arange(40) % 4                                       # 4 sounds, 10 imitations each
    good = rng.random((40, 4)) + 2.0 * np.eye(4)[targets]           # the target usually first
    bad = rng.random((40, 4))
    cats = ["a", "b", "c", "d"]
    systems = {}
    for label, scores in (("good", good), ("bad", bad)):
        rep = retrieval_report(scores, targets, [cats[t] for t in targets], cats)
        systems[label] = {**rep, "settings": {"references": {"all": rep}}, "ranking": "cosine", "ms_per_clip": 1.0}
    report = {"data": "d", "dataset_kind": "pairs", "split": "all", "references": 4, "categories": 4, "queries": 40,
              "query_source": "recorded", "groups": {"all": 40}, "targets": {"all": targets.tolist()}, "systems": systems,
              "random_expected_mrr": 0.52}
    lo, hi = systems["good"]["item"]["mrr_ci95"]
    assert lo <= systems["good"]["item"]["mrr"] <= hi and len(systems["good"]["item_ranks"]) == 40
    assert (lo, hi) == mrr_interval(systems["good"]["item_ranks"], targets)       # resampling the 4 sounds
    rows = {line.split(" | ")[0].strip("| "): line for line in to_markdown(report).splitlines() if line.startswith("| ")}
    assert f"{lo:.3f}–{hi:.3f}" in rows["good"] and "| – |" in rows["good"]      # the first row compares to nothing
    d = paired_difference(systems["bad"]["item_ranks"], systems["good"]["item_ranks"], targets)   # by sound
    assert d["mrr_diff"] < 0 and d["ci95"][1] < 0 and d["share_better"] == 0.0
    assert f"{d['mrr_diff']:+.3f} ({d['ci95'][0]:+.3f} to {d['ci95'][1]:+.3f}; 0%)" in rows["bad"]


def test_evaluation_report_lists_each_category_among_the_distractors_too():
    """Which imitated sound a change moves is what decides whether it is kept (TRAINING.md row 59:
    one reference carried the whole loss), and that shows among the library, not only among the
    references."""
    from qvi_app.evaluation.run import to_markdown

    rng = np.random.default_rng(1)
    targets = np.arange(20) % 2
    cats, with_lib = ["a", "b"], ["a", "b"] + ["x"] * 8
    refs_scores = rng.random((20, 2)) + 2.0 * np.eye(2)[targets]
    lib_scores = np.concatenate([refs_scores, rng.random((20, 8)) + 1.5], axis=1)
    lib_scores[targets == 1, 1] += 3.0                                  # sound b stays first among the library
    refs = retrieval_report(refs_scores, targets, [cats[t] for t in targets], cats)
    lib = retrieval_report(lib_scores, targets, [cats[t] for t in targets], with_lib)
    systems = {"sys": {**refs, "settings": {"references": {"all": refs}, "with distractors": {"all": lib}},
                       "ranking": "cosine", "ms_per_clip": 1.0}}
    report = {"data": "d", "dataset_kind": "pairs", "split": "all", "references": 2, "categories": 2, "queries": 20,
              "query_source": "recorded", "groups": {"all": 20}, "targets": {"all": targets.tolist()},
              "systems": systems, "random_expected_mrr": 0.75, "distractors": {"folder": "lib", "sounds": 8}}
    text = to_markdown(report)
    assert "Item MRR per category (among 8 distractors, all queries):" in text
    table = text.split("Item MRR per category (among 8 distractors, all queries):")[1]
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert rows["b"].endswith(f"| {lib['categories']['b']['mrr']:.3f} |") and lib["categories"]["b"]["mrr"] == 1.0
    assert rows["a"].endswith(f"| {lib['categories']['a']['mrr']:.3f} |")
    assert lib["categories"]["a"]["mrr"] < refs["categories"]["a"]["mrr"] == 1.0      # not the references-alone figure
    # Which sound is the hub, by name: the figure alone did not say whether to worry about it.
    lib_scores[:, 7] += 10.0                                            # x5.ogg in every query's top 10
    hub = retrieval_report(lib_scores, targets, [cats[t] for t in targets], with_lib)
    hub["hubness"] = {"k": 10, "max_share": 1.0, "candidate": 7}
    systems["sys"]["settings"]["with distractors"]["all"] = hub
    report["candidates"] = ["a.flac", "b.flac"] + [f"lib/x{i}.ogg" for i in range(8)]
    assert "Most often in the top 10 of these queries: sys: lib/x5.ogg (100%)." in to_markdown(report)


# --- simulator -------------------------------------------------------------------------------

def _glide(sr=SR, seconds=1.5, f0=2500.0, f1=4000.0):
    t = np.arange(int(seconds * sr)) / sr
    freq = f0 + (f1 - f0) * t / seconds
    return (0.5 * np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.minimum(1, 20 * t)).astype(np.float32)


def test_simulator_is_deterministic_and_varies_with_the_seed():
    ref = _glide()
    a, b = simulate_imitation(ref, SR, seed=3), simulate_imitation(ref, SR, seed=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, simulate_imitation(ref, SR, seed=4))
    assert a.dtype == np.float32 and np.isfinite(a).all() and 0.2 < np.abs(a).max() <= 1.0


def test_simulator_length_follows_the_reference_within_human_timing():
    s = SimulatorSettings()
    for seconds in (0.5, 2.0, 4.0):
        ref = _glide(seconds=seconds)
        stretch = s.short_stretch[1] if seconds < s.short_s else 1.0
        for seed in range(6):
            n = len(simulate_imitation(ref, SR, seed)) / s.sample_rate
            # tempo ±25%, short sounds drawn out up to 3x; plus a reaction delay, a tail, pauses between
            # syllables, room decay, perhaps a breath and a click (under 1.5 s together)
            assert seconds / 1.3 < n < seconds * stretch / (1 - s.tempo_spread) + 1.5 + 0.3 * seconds, (seconds, seed, n)
    long = np.tile(_glide(seconds=2.0), 5)                      # 10 s: only max_seconds are imitated
    assert len(simulate_imitation(long, SR, 0)) / s.sample_rate < s.max_seconds / 0.75 + 2.5


def _voiced(out, level=-20, periodic=0.7):
    tr = analyse(out, 16000)
    loud = tr.level_db > level
    return tr, loud & (tr.periodicity > periodic), loud


def test_each_strategy_imitates_as_it_says():
    ref = _glide(f0=2500, f1=4000)                              # a tonal sound far above any voice
    for seed in range(4):
        tr, voiced, loud = _voiced(simulate_imitation(ref, SR, seed, strategy="follow"))
        assert voiced.sum() > 0.2 * loud.sum(), seed              # a tonal sound is followed with voice
        assert 65 < np.median(tr.f0_hz[voiced]) < 1250, seed     # folded into the human pitch range
        tr, voiced, loud = _voiced(simulate_imitation(ref, SR, seed, strategy="tonal"), periodic=0.6)
        assert voiced.sum() > 0.4 * loud.sum(), seed              # a whistle or a hum: periodic throughout
        tr, voiced, loud = _voiced(simulate_imitation(ref, SR, seed, strategy="hiss"))
        assert voiced.sum() < 0.3 * loud.sum() and np.median(tr.flatness[loud]) > 0.05, seed
    # Three separate events become three syllables, with silence between them (when the person pauses).
    t = np.arange(int(1.8 * SR)) / SR
    knocks = (np.sin(2 * np.pi * 300 * t) * ((t % 0.6) < 0.15) * np.exp(-8 * (t % 0.6))).astype(np.float32)
    pausing = SimulatorSettings(pause_prob=1.0, breath_prob=0.0, extra_sound_prob=0.0)
    for seed in range(4):
        tr = analyse(simulate_imitation(knocks, SR, seed, pausing, strategy="syllables"), 16000)
        assert np.sum(np.diff(_smooth_loud(tr.level_db).astype(int)) == 1) == 3, seed


def _smooth_loud(level_db):
    return np.convolve(level_db > -25, np.ones(5) / 5, "same") > 0.5


def test_simulator_imitates_noise_with_noise_when_it_follows_or_hisses():
    rng = np.random.default_rng(0)
    ref = (0.3 * rng.standard_normal(int(1.5 * SR))).astype(np.float32)
    for strategy in ("follow", "hiss"):
        tr, voiced, loud = _voiced(simulate_imitation(ref, SR, 1, strategy=strategy))
        assert voiced.sum() < 0.3 * loud.sum() and np.mean(tr.flatness[loud]) > 0.05, strategy
    with pytest.raises(ValueError, match="strategy"):
        simulate_imitation(ref, SR, 1, strategy="yodel")


def test_strategy_odds_follow_the_sound():
    from qvi_app.data.simulate import STRATEGIES, strategy_odds

    s = SimulatorSettings()
    odds = {name: dict(zip(STRATEGIES, strategy_odds(analyse(w, SR), s))) for name, w in (
        ("tone", _glide(f0=400, f1=500)),
        ("noise", (0.3 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)))}
    assert odds["tone"]["tonal"] > odds["tone"]["hiss"]
    assert odds["noise"]["hiss"] > odds["noise"]["tonal"]


# --- dataset readers ---------------------------------------------------------------------------

def _wav(path, freq=440.0, seconds=0.4):
    return write(path, tone(freq, seconds, 16000), 16000)


def test_vimsketch_reader(tmp_path):
    root = tmp_path / "vimsketch"
    for name in ("001Animal_Cat_Meow.wav", "002Vehicle_Car_Horn.wav"):
        _wav(root / "references" / name)
    for who in ("p1", "p2", "p3"):
        _wav(root / "vocal_imitations" / f"{who}_001Animal_Cat_Meow.wav")
    _wav(root / "vocal_imitations" / "p1_002Vehicle_Car_Horn.wav")
    _wav(root / "vocal_imitations" / "p9_unknown_reference.wav")            # ignored: no such reference
    (root / "reference_file_names.csv").write_text("001Animal_Cat_Meow.wav\n002Vehicle_Car_Horn.wav\n")
    ds = open_dataset(root)
    assert ds.kind == "vimsketch"
    by_id = {r.id: r for r in ds.references}
    cat = by_id["references/001Animal_Cat_Meow.wav"]
    assert cat.category == "Animal" and len(cat.imitations) == 3
    assert by_id["references/002Vehicle_Car_Horn.wav"].category == "Vehicle"
    assert ds.has_recorded_imitations


def test_vocalsketch_reader(tmp_path):
    root = tmp_path / "vocalsketch"
    _wav(root / "sound_recordings" / "bell.wav")
    _wav(root / "sound_recordings" / "synth.wav")
    (root / "sound_recordings.csv").write_text(
        "id,sound_label,sound_label_id,filename,audio_concept_subset\n"
        "1,bell,10,bell.wav,everyday\n2,pad,11,synth.wav,commercial_synths\n")
    for name in ("i1.wav", "i2.wav", "i3.wav"):
        _wav(root / "vocal_imitations" / "included" / name)
    (root / "vocal_imitations.csv").write_text(
        "id,filename,stimulus_type,included,sound_recording,sound_recording_id\n"
        "1,i1.wav,sound recording,True,bell.wav,1\n2,i2.wav,sound recording,True,synth.wav,2\n"
        "3,i3.wav,sound recording,False,synth.wav,2\n")
    ds = open_dataset(root)
    assert ds.kind == "vocalsketch"
    by_id = {r.id: r for r in ds.references}
    assert by_id["sound_recordings/bell.wav"].category == "everyday"
    assert [p.name for p in by_id["sound_recordings/synth.wav"].imitations] == ["i2.wav"]  # i3 excluded


def test_vocal_imitation_set_reader(tmp_path):
    root = tmp_path / "vis"
    _wav(root / "original_recordings" / "001Dog_bark.wav")
    _wav(root / "original_recordings" / "002Siren.wav")
    for name in ("001_a.wav", "001_b.wav", "002_a.wav"):
        _wav(root / "vocal_imitations" / "included" / name)
    (root / "vocal_imitations.txt").write_text(
        "imitation_id\timitation_filename\tcategory_id\tcategory_d1\treference_filename\tincluded\n"
        "1\t001_a.wav\t1\tAnimal\t001Dog_bark.wav\tTrue\n2\t001_b.wav\t1\tAnimal\t001Dog_bark.wav\tTrue\n"
        "3\t002_a.wav\t2\tSounds of things\t002Siren.wav\tTrue\n")
    ds = open_dataset(root)
    assert ds.kind == "vis"
    by_id = {r.id: r for r in ds.references}
    assert len(by_id["original_recordings/001Dog_bark.wav"].imitations) == 2
    assert by_id["original_recordings/002Siren.wav"].category == "Sounds of things"


def test_library_reader_and_errors(tmp_path):
    _wav(tmp_path / "lib" / "doors" / "a.wav")
    _wav(tmp_path / "lib" / "birds" / "b.wav")
    ds = open_dataset(tmp_path / "lib")
    assert ds.kind == "library" and ds.categories() == {"birds": 1, "doors": 1}
    assert not ds.has_recorded_imitations
    with pytest.raises(DatasetError, match="no such folder"):
        open_dataset(tmp_path / "missing")
    with pytest.raises(DatasetError, match="a.wav is a file, not a folder: give the folder that holds"):
        open_dataset(tmp_path / "lib" / "doors" / "a.wav")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no reference sounds"):
        open_dataset(tmp_path / "empty")


def test_several_folders_train_as_one_with_their_names_in_front(tmp_path):
    _wav(tmp_path / "corpus" / "doors" / "a.wav")
    _wav(tmp_path / "train-sfx" / "doors" / "a.wav")
    _wav(tmp_path / "train-sfx" / "birds" / "b.wav")
    ds = open_datasets([tmp_path / "corpus", tmp_path / "train-sfx"])
    assert [r.id for r in ds.references] == ["corpus/doors/a.wav", "train-sfx/birds/b.wav", "train-sfx/doors/a.wav"]
    assert ds.categories() == {"birds": 1, "doors": 2}
    assert open_datasets([tmp_path / "corpus"]).references[0].id == "doors/a.wav"       # one folder: ids as before
    (tmp_path / "x").mkdir()
    _wav(tmp_path / "x" / "corpus" / "c" / "d.wav")
    with pytest.raises(DatasetError, match="different names"):
        open_datasets([tmp_path / "corpus", tmp_path / "x" / "corpus"])
    assert TrainConfig(data=str(tmp_path / "corpus")).data == (str(tmp_path / "corpus"),)


def test_split_is_by_reference_seeded_and_stratified(demo_items):
    ds = open_dataset(DEMO_LIBRARY)
    a = split_references(ds.references, seed=7)
    assert a == split_references(ds.references, seed=7)
    assert a != split_references(ds.references, seed=8)
    sets = [set(v) for v in a.values()]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert sum(map(len, sets)) == len(ds.references)
    cats = {r.id: r.category for r in ds.references}
    assert {cats[i] for i in a["test"]} == set(cats.values())      # every category has a test reference


# --- augmentation, inversion -----------------------------------------------------------------

def test_augmentations_change_the_input_and_off_is_identity():
    fe = LogMelFrontEnd()
    m = fe(torch.from_numpy(tone(880, 2.0, 44100)))[0]
    rng = np.random.default_rng(0)
    assert torch.equal(augment_logmel(m, rng, AugmentSettings.off()), m)
    assert stretch_frames(m, 1.25).shape[1] == round(m.shape[1] / 1.25)
    masked = augment_logmel(m, rng, AugmentSettings(stretch_prob=0, time_masks=2, freq_masks=2,
                                                    time_mask_frames=10, freq_mask_bands=10))
    assert masked.shape == m.shape and (masked == 0).sum() > (m == 0).sum()


def test_griffin_lim_brings_back_a_tone():
    s = LogMelSettings()
    m = LogMelFrontEnd(s)(torch.from_numpy(tone(1000, 1.0, s.sample_rate)))[0, 0]
    wave = logmel_to_wave(m, s, n_iter=16)
    spec = np.abs(np.fft.rfft(wave))
    peak = np.fft.rfftfreq(len(wave), 1 / s.sample_rate)[spec.argmax()]
    assert abs(peak - 1000) < 120          # mel bands near 1 kHz are about 100 Hz wide


# --- model, checkpoint, tiny runs --------------------------------------------------------------

def test_dual_encoder_starts_as_the_backbone_and_two_towers_differ():
    x = torch.rand(2, 1, 100, 96)
    plain = load_model(ZERO_SHOT_CNN)[0].network
    dual = build_model(ModelSettings.default("cnn", towers=2, head_hidden=64)).network
    dual.load_backbone(plain.backbone.state_dict())
    with torch.no_grad():
        expect = plain(x)
        assert torch.allclose(dual(x, "reference"), expect, atol=1e-5)
        assert torch.allclose(dual(x, "query"), expect, atol=1e-5)
        dual.query_head.fc2.bias.add_(0.1)
        assert not torch.allclose(dual(x, "query"), dual(x, "reference"), atol=1e-3)
    with pytest.raises(ValueError, match="role"):
        dual(x, "imitation")


@pytest.fixture(scope="module")
def tiny_library(tmp_path_factory):
    """24 real demo sounds in 4 categories."""
    root = tmp_path_factory.mktemp("tiny") / "lib"
    for cat in ("birds", "doors_gates", "vehicles", "weapons"):
        for f in sorted((DEMO_LIBRARY / cat).iterdir())[:6]:
            (root / cat).mkdir(parents=True, exist_ok=True)
            shutil.copy(f, root / cat / f.name)
    return root


TINY = ["--set", "clip_seconds=1.5", "--set", "max_seconds=2.5", "--set", "simulated_per_reference=3",
        "--set", "val_fraction=0.34", "--set", "test_fraction=0.0", "--set", "freeze_blocks=3",
        "--set", "lr_head=3e-3", "--set", "lr_backbone=3e-4", "--set", "head_hidden=256",
        "--batch-size", "8", "--seed", "1", "--quiet"]


@pytest.fixture(scope="module")
def tiny_run(tiny_library, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "tiny.pt"
    assert qvi(["train", str(tiny_library), "--out", str(out), "--epochs", "4", *TINY]) == 0
    return out


@pytest.mark.slow
def test_tiny_train_improves_and_writes_log_plot_and_state(tiny_run):
    ck = load_checkpoint(tiny_run)
    log = ck["training"]["log"]
    best = ck["training"]["best"]
    assert [r["epoch"] for r in log] == list(range(best["epoch"] + 1))      # saved at its best epoch
    assert best["epoch"] >= 1 and best["val_mrr"] > log[0]["val_mrr"]        # better than where it started
    assert all(np.isfinite(r["train_loss"]) for r in log[1:])
    csv_lines = tiny_run.with_suffix(".log.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,train_loss,val_loss,val_mrr") and len(csv_lines) == 1 + 1 + 4  # header, epoch 0, 4 epochs
    png = tiny_run.with_suffix(".log.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert state_path(tiny_run).is_file()


@pytest.mark.slow
def test_checkpoint_round_trip_restores_preprocessing_and_split(tiny_run, tiny_library):
    ck = load_checkpoint(tiny_run)
    init = load_checkpoint(ZERO_SHOT_CNN)
    assert ck["settings"] == {**init["settings"], "head_hidden": 256, "towers": 1}
    assert set(ck["split"]) == {"train", "val", "test"} and ck["split"]["val"]
    assert not set(ck["split"]["train"]) & set(ck["split"]["val"])
    assert ck["training"]["config"]["seed"] == 1
    enc = load_encoder("cnn", tiny_run)
    assert enc.settings.frontend == LogMelSettings(**init["settings"]["frontend"])
    # Named from the backbone table, and shown so in the window's status line.
    from qvi_app.app import describe_encoder
    assert ck["provenance"]["title"].startswith("qvi sound-effects CNN (fine-tuned on ")
    assert describe_encoder(enc) == ck["provenance"]["title"]
    wave, sr = sf.read(next(tiny_library.rglob("*.ogg")), dtype="float32")
    v = enc.embed(wave if wave.ndim == 1 else wave.mean(1), sr)
    assert v.shape == (1024,) and abs(np.linalg.norm(v) - 1) < 1e-5


def test_front_end_settings_travel_with_the_weights(tmp_path, tiny_library):
    """A starting model with other preprocessing yields a trained model with that preprocessing."""
    model, meta = load_model(ZERO_SHOT_CNN)
    model.settings = dataclasses.replace(model.settings, frontend=LogMelSettings(floor_db=-30.0))
    path = save_model(tmp_path / "init.pt", model, meta["version"])
    out = tmp_path / "t.pt"
    assert qvi(["train", str(tiny_library), "--out", str(out), "--epochs", "1", "--set", f"init={path}",
                *TINY]) == 0
    assert load_encoder("cnn", out).settings.frontend.floor_db == -30.0


@pytest.mark.slow
def test_tiny_evaluate_reports_the_model_and_baselines(tiny_run, tiny_library, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-cache"))      # PaSST weights absent → skipped
    prefix = tmp_path / "eval"
    assert qvi(["evaluate", str(tiny_library), "--checkpoint", str(tiny_run), "--split", "val",
                "--imitations", "2", "--out", str(prefix), "--quiet"]) == 0
    rep = json.loads(prefix.with_suffix(".json").read_text())
    assert rep["split"] == "val" and rep["query_source"] == "simulated"
    assert rep["references"] == len(load_checkpoint(tiny_run)["split"]["val"])
    assert set(rep["systems"]) == {f"model {tiny_run}", "zero-shot aisfx cnn", "CQT + 2DFT", "random"}
    for r in rep["systems"].values():
        assert 0 < r["item"]["mrr"] <= 1 and r["class"]["mrr"] >= r["item"]["mrr"] - 1e-9
    md = prefix.with_suffix(".md").read_text()
    assert "| system | item MRR" in md and "ms per clip" in md and "zero-shot aisfx cnn" in md
    assert "Skipped zero-shot PaSST" in md and "zero-shot PaSST" in rep["skipped"]
    assert "item MRR" in capsys.readouterr().out


def test_evaluate_needs_a_saved_split(tiny_library, capsys):
    assert qvi(["evaluate", str(tiny_library), "--checkpoint", str(ZERO_SHOT_CNN), "--split", "test",
                "--quiet"]) == 2
    assert "no saved split" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_continues_to_the_same_model(tiny_library, tmp_path):
    straight, resumed = tmp_path / "a.pt", tmp_path / "b.pt"
    assert qvi(["train", str(tiny_library), "--out", str(straight), "--epochs", "2", *TINY]) == 0
    assert qvi(["train", str(tiny_library), "--out", str(resumed), "--epochs", "1", *TINY]) == 0
    # Same settings apart from the epoch count are refused; the same settings continue.
    assert qvi(["train", str(tiny_library), "--out", str(resumed), "--epochs", "2", "--resume", *TINY]) == 2
    state = torch.load(state_path(resumed), weights_only=False)
    state["config"]["epochs"] = 2
    torch.save(state, state_path(resumed))
    assert qvi(["train", str(tiny_library), "--out", str(resumed), "--epochs", "2", "--resume", *TINY]) == 0
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert a["training"]["log"][-1]["val_mrr"] == pytest.approx(b["training"]["log"][-1]["val_mrr"])
    sa, sb = torch.load(state_path(straight), weights_only=False), torch.load(state_path(resumed), weights_only=False)
    for k, v in sa["model"].items():
        assert torch.allclose(v, sb["model"][k], atol=1e-6), k


def test_a_state_written_before_a_setting_existed_resumes_with_its_default(tiny_library, tmp_path):
    # 0.10 wrote no head_seed (added in 0.11, default -1: the draw 0.10 made); an interrupted 0.10
    # run must continue after an upgrade, not be refused as "written with other settings".
    out = tmp_path / "old.pt"
    assert qvi(["train", str(tiny_library), "--out", str(out), "--epochs", "1", *TINY]) == 0
    state = torch.load(state_path(out), weights_only=False)
    del state["config"]["head_seed"]
    state["config"]["epochs"] = 2
    torch.save(state, state_path(out))
    assert qvi(["train", str(tiny_library), "--out", str(out), "--epochs", "2", "--resume", *TINY]) == 0
    assert torch.load(state_path(out), weights_only=False)["epoch"] == 2


def test_inspect_writes_stats_grid_and_audio(tiny_library, tmp_path, capsys):
    out = tmp_path / "insp"
    assert qvi(["inspect", str(tiny_library), "--out", str(out), "--pairs", "2", "--set", "clip_seconds=1.5"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    for side in stats["batch"].values():
        assert side["nan"] == 0 and side["silent_items"] == 0 and side["shape"][0] == 2
    assert sum(stats["category_balance"]["train"].values()) == stats["split_sizes"]["train"]
    assert (out / "pairs.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("pair0_imitation.wav", "pair1_reference_griffinlim.wav", "pair1_imitation_griffinlim.wav"):
        wave, sr = sf.read(out / name)
        assert sr > 0 and len(wave) > sr // 4 and np.abs(wave).max() > 0.1   # a clip, not a blip (cut 15 dB over its floor: 0.48 s)
    assert "reference_augmented" in capsys.readouterr().out


def test_set_fills_a_list_setting_that_starts_empty():
    # feedback and data start as () and used to crash --set with an IndexError traceback.
    cfg = TrainConfig().with_overrides(["feedback=a.sqlite,b.csv", "augment.noise_snr_db=10,30"])
    assert cfg.feedback == ("a.sqlite", "b.csv")
    assert cfg.augment.noise_snr_db == (10.0, 30.0)


def test_training_imitates_with_the_follow_strategy_unless_told_otherwise():
    # Measured on real voices (docs/TRAINING.md row 46): the full strategy mix trains worse
    # models than "follow" alone, so training defaults to "follow"; evaluation keeps the mix.
    follow = (1.0, 0.0, 0.0, 0.0)
    assert TrainConfig().simulator.strategy_weights == follow
    assert SimulatorSettings().strategy_weights != follow
    # a partial simulator section in a JSON config keeps the training default for the rest
    cfg = TrainConfig.from_dict({"simulator": {"snr_db": [30, 60]}})
    assert cfg.simulator.strategy_weights == follow and cfg.simulator.snr_db == (30, 60)
    mix = TrainConfig().with_overrides(["simulator.strategy_weights=1,1.6,0.7,0.4"])
    assert mix.simulator.strategy_weights == SimulatorSettings().strategy_weights


def test_train_refuses_bad_settings_and_missing_resume(tiny_library, tmp_path, capsys):
    assert qvi(["train", str(tiny_library), "--set", "no_such_thing=1", "--quiet"]) == 2
    assert "unknown training setting" in capsys.readouterr().err
    assert qvi(["train", str(tiny_library), "--out", str(tmp_path / "x.pt"), "--resume", "--quiet"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    with pytest.raises(TrainingError, match="training and"):
        train(TrainConfig(data=str(tiny_library), out=str(tmp_path / "y.pt"), val_fraction=0.0), progress=False)


class _RunsCode:
    """Unpickling this runs ``os.system``: what a crafted training-state file would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


def test_resume_never_runs_code_from_a_state_file(tiny_library, tmp_path, capsys):
    out, marker = tmp_path / "m.pt", tmp_path / "code-ran"
    torch.save({"config": _RunsCode(marker)}, state_path(out))          # a plain pickle, as torch writes them
    assert qvi(["train", str(tiny_library), "--out", str(out), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert "not a usable training state" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    # A state that unpickles safely but holds the wrong things is refused too, not a traceback.
    torch.save({"config": {}, "model": [1, 2]}, state_path(out))
    assert qvi(["train", str(tiny_library), "--out", str(out), "--resume", "--quiet"]) == 2
    assert "damaged training state" in capsys.readouterr().err


def test_large_pair_sets_are_kept_in_half_precision(tiny_library, monkeypatch):
    from qvi_app.data import open_dataset as od
    from qvi_app.training import pairs

    refs = od(tiny_library).references[:3]
    monkeypatch.setattr(pairs, "COMPACT_ABOVE_BYTES", 1)
    src = pairs.PairSource(refs, 44100, n_simulated=2, namespace="t", seed=0, max_seconds=1.0, progress=False)
    assert src.compact and all(p.reference.dtype == np.float16 and p.imitations[1].dtype == np.float16
                               for p in src.pairs)
    fe = LogMelFrontEnd()
    imi, ref = pairs.make_batch(src, [0, 1, 2], fe, np.random.default_rng(0), AugmentSettings(), 1.0)
    assert imi.dtype == torch.float32 and torch.isfinite(ref).all() and ref.shape == (3, 1, 44, 96)


def test_unwritable_output_is_a_clear_error(tiny_library, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should be")
    assert qvi(["train", str(tiny_library), "--out", str(blocker / "m.pt"), "--epochs", "1", *TINY]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err


def test_evaluate_leaves_out_unreadable_files(tiny_library, tmp_path):
    from qvi_app.evaluation.run import evaluate

    lib = tmp_path / "lib"
    shutil.copytree(tiny_library / "birds", lib / "birds")
    (lib / "birds" / "broken.wav").write_bytes(b"RIFF not really audio")
    rep = evaluate(lib, imitations=1, baselines=False, models={"m": ZERO_SHOT_CNN}, progress=False)
    assert rep["references"] == 6 and any("broken.wav" in f for f in rep["unreadable_files"])


@pytest.mark.slow
def test_train_and_evaluate_on_recorded_imitations(tmp_path):
    """A VimSketch-layout dataset: its recorded imitations are used, none are simulated."""
    root = tmp_path / "vimsketch"
    rng = np.random.default_rng(0)
    for i in range(8):
        f0 = 150.0 * 1.3 ** i
        name = f"{i:03d}{'Animal' if i % 2 else 'Vehicle'}_sound{i}.wav"
        write(root / "references" / name, tone(f0, 1.0, 16000) * np.hanning(16000).astype(np.float32), 16000)
        for who in ("a", "b"):
            hum = tone(f0 * rng.uniform(0.9, 1.1), 0.8, 16000) + 0.02 * rng.standard_normal(12800).astype(np.float32)
            write(root / "vocal_imitations" / f"{who}_{name}", hum.astype(np.float32), 16000)
    out = tmp_path / "vs.pt"
    assert qvi(["train", str(root), "--out", str(out), "--epochs", "1", "--batch-size", "4", "--set",
                "val_fraction=0.25", "--set", "test_fraction=0.25", "--set", "freeze_blocks=3",
                "--set", "clip_seconds=1.0", "--quiet"]) == 0
    ck = load_checkpoint(out)
    assert "recorded imitations" in ck["provenance"]["fine_tuned"]
    prefix = tmp_path / "ev"
    assert qvi(["evaluate", str(root), "--checkpoint", str(out), "--split", "test", "--no-baselines",
                "--out", str(prefix), "--quiet"]) == 0
    rep = json.loads(prefix.with_suffix(".json").read_text())
    assert rep["query_source"] == "recorded" and rep["dataset_kind"] == "vimsketch"
    assert rep["queries"] == 2 * rep["references"] and rep["references"] == len(ck["split"]["test"])


def test_report_that_cannot_be_written_is_one_line(tiny_library, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert qvi(["inspect", str(tiny_library), "--out", str(blocker / "insp"), "--pairs", "1"]) == 2
    err = capsys.readouterr().err
    assert "qvi:" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_users_ratings_join_training_as_real_pairs(tiny_library, tmp_path, capsys):
    from qvi_app.feedback import FeedbackStore

    store = FeedbackStore(tmp_path / "fb" / "feedback.sqlite")
    sounds = sorted(tiny_library.rglob("*.ogg"))
    for i, sound in enumerate(sounds[:3]):
        store.rate(wave=tone(300 + 50 * i, 1.0, 16000), sr=16000, result_path=sound, rank=1, score=0.5,
                   rating=1, category_filter=None, model_id="m")
    store.rate(wave=tone(900, 1.0, 16000), sr=16000, result_path=sounds[5], rank=2, score=0.1, rating=-1,
               category_filter=None, model_id="m")
    store.export_csv(tmp_path / "other-user.csv")
    store.close()
    out = tmp_path / "fb.pt"
    assert qvi(["train", str(tiny_library), "--out", str(out), "--epochs", "1", "--feedback",
                str(tmp_path / "fb" / "feedback.sqlite"), str(tmp_path / "other-user.csv"), *TINY]) == 0
    ck = load_checkpoint(out)
    rated = [i for i in ck["split"]["train"] if i.startswith("feedback/")]
    assert len(rated) == 3 and not any(i.startswith("feedback/") for i in ck["split"]["val"] + ck["split"]["test"])
    assert ck["training"]["config"]["feedback"] == [str(tmp_path / "fb" / "feedback.sqlite"),
                                                    str(tmp_path / "other-user.csv")] or \
        tuple(ck["training"]["config"]["feedback"]) == (str(tmp_path / "fb" / "feedback.sqlite"),
                                                        str(tmp_path / "other-user.csv"))
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    assert qvi(["train", str(tiny_library), "--out", str(out), "--feedback", str(tmp_path / "notes.csv"), *TINY]) == 2
    assert "not a qvi feedback export" in capsys.readouterr().err
