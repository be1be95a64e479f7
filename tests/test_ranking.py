"""Ranking pieces against brute-force definitions (seeded random data), the real-imitation reader,
and qvi evaluate's settings (references alone, among distractors) and query groups."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import tone, write
from qvi_app.cli import main as qvi
from qvi_app.data import open_dataset
from qvi_app.data.datasets import DatasetError
from qvi_app.evaluation.metrics import hubness, k_occurrence
from qvi_app.ranking import RankingSettings, fused_scores, hub_penalty, zscore


def _unit_rows(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_k_occurrence_and_hubness_match_a_loop_over_queries():
    rng = np.random.default_rng(0)
    scores = rng.random((40, 25))
    scores[:, 7] += 0.8                                   # candidate 7 is a hub: in every top 10
    expect = np.zeros(25, int)
    for row in scores:
        for c in sorted(range(25), key=lambda j: (-row[j], j))[:10]:
            expect[c] += 1
    assert k_occurrence(scores, 10).tolist() == expect.tolist()
    h = hubness(scores, 10)
    assert h["candidate"] == 7 and h["max_share"] == expect[7] / 40 == 1.0
    assert hubness(rng.random((5, 3)), 10)["max_share"] == 1.0      # fewer candidates than k: all in the top


def test_hub_penalty_is_the_mean_of_the_k_nearest_bank_cosines():
    rng = np.random.default_rng(1)
    refs, bank = _unit_rows(rng, 30, 8), _unit_rows(rng, 50, 8)
    got = hub_penalty(refs, bank, k=5, chunk=7)                       # chunks do not change the answer
    expect = [np.mean(sorted(bank @ r)[-5:]) for r in refs]
    np.testing.assert_allclose(got, expect, rtol=1e-5)
    own = hub_penalty(refs, refs, k=3, exclude_self=True)
    expect_own = [np.mean(sorted(np.delete(refs @ r, i))[-3:]) for i, r in enumerate(refs)]
    np.testing.assert_allclose(own, expect_own, rtol=1e-5)
    assert hub_penalty(refs[:1], refs[:1], k=3, exclude_self=True).tolist() == [0.0]     # nothing to compare with


def test_fused_scores_are_weighted_z_scores_of_penalised_cosines():
    rng = np.random.default_rng(2)
    a, b = rng.random((4, 12)), rng.random((4, 12)) * 5
    pen = {"cnn": rng.random(12) * 0.1, "2dft": rng.random(12) * 0.1}
    one = RankingSettings(encoders=("cnn",))
    np.testing.assert_array_equal(fused_scores({"cnn": a}, one), a)                  # plain cosines, unchanged
    both = RankingSettings(encoders=("cnn", "2dft"), weights=(0.7, 0.3), hub_bank="library", hub_weight=0.5)
    expect = 0.7 * zscore(a - 0.5 * pen["cnn"]) + 0.3 * zscore(b - 0.5 * pen["2dft"])
    np.testing.assert_allclose(fused_scores({"cnn": a, "2dft": b}, both, pen), expect)
    z = zscore(a)
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=1), 1, atol=1e-12)
    assert zscore(np.ones((2, 3))).tolist() == [[0, 0, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="one weight per encoder"):
        RankingSettings(encoders=("cnn", "2dft"), weights=(1.0,))
    with pytest.raises(ValueError, match="hub_bank"):
        RankingSettings(hub_bank="elsewhere")


@pytest.fixture
def real_like(tmp_path):
    """A pairs.csv folder as ../shared/real-imitations-dev lays it out: 3 references (one never
    imitated), imitations in two generations, and a small distractor library."""
    root = tmp_path / "real"
    for name, f in (("beep", 880), ("hum", 150), ("whine", 2400)):
        write(root / "references" / f"{name}.flac", tone(f, 1.0))
    rows = ["label,reference,imitation,generation"]
    for name, f, gen in (("beep", 900, 1), ("beep", 860, 2), ("hum", 160, 1), ("hum", 140, 2), ("hum", 155, 2)):
        path = f"imitations/gen{gen}/{name}-{f}.flac"
        write(root / path, tone(f, 1.2))
        rows.append(f"{name},references/{name}.flac,{path},{gen}")
    (root / "pairs.csv").write_text("\n".join(rows) + "\n")
    lib = tmp_path / "lib"
    for i, f in enumerate((300, 500, 1200, 3000)):
        write(lib / ("low" if f < 1000 else "high") / f"t{i}.wav", tone(f, 1.0))
    return root, lib


def test_pairs_reader_keeps_generations_and_unimitated_references(real_like, tmp_path):
    root, _ = real_like
    ds = open_dataset(root)
    assert ds.kind == "pairs"
    by_id = {r.id: r for r in ds.references}
    assert set(by_id) == {"references/beep.flac", "references/hum.flac", "references/whine.flac"}
    assert by_id["references/hum.flac"].groups == ("gen1", "gen2", "gen2")
    assert by_id["references/whine.flac"].imitations == ()                 # a candidate nobody imitated
    assert by_id["references/beep.flac"].category == "beep"
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "pairs.csv").write_text("who,what\n1,2\n")
    with pytest.raises(DatasetError, match="no imitation, label, reference column"):
        open_dataset(tmp_path / "bad")


def test_evaluate_reports_settings_groups_and_hubness(real_like, tmp_path):
    root, lib = real_like
    prefix = tmp_path / "ev"
    ranking = json.dumps({"2dft, CSLS": {"encoders": ["2dft"], "weights": [1.0], "hub_bank": "library", "hub_k": 2}})
    assert qvi(["evaluate", str(root), "--distractors", str(lib), "--out", str(prefix), "--quiet",
                "--ranking", ranking]) == 0
    rep = json.loads(prefix.with_suffix(".json").read_text())
    assert rep["groups"] == {"all": 5, "gen1": 2, "gen2": 3} and rep["distractors"]["sounds"] == 4
    bundled = "qvi cnn (bundled), cnn, CSLS k=10, weight 0.5, against the model's query bank"   # the ranking it ships with
    assert set(rep["systems"]) == {"qvi cnn (bundled)", bundled, "2dft, CSLS", "zero-shot aisfx cnn", "CQT + 2DFT",
                                   "random"}
    for label, r in rep["systems"].items():
        assert set(r["settings"]) == {"references", "with distractors"}
        for setting, n in (("references", 3), ("with distractors", 7)):
            for group, q in rep["groups"].items():
                x = r["settings"][setting][group]
                assert x["queries"] == q and x["candidates"] == n
                assert 1 / n <= x["item"]["mrr"] <= 1 and 0 < x["hubness"]["max_share"] <= 1
        assert r["item"] == r["settings"]["references"]["all"]["item"]      # the headline is refs alone, all
    assert "CSLS k=2, weight 1, against the library" in rep["systems"]["2dft, CSLS"]["ranking"]
    md = prefix.with_suffix(".md").read_text()
    assert "**gen2, among 4 distractors" in md and "hubness@10" in md
    assert qvi(["evaluate", str(root), "--ranking", "{not json", "--quiet", "--out", str(prefix)]) == 2
