"""Ratings that re-rank at once and "more like this": the rules against their definitions, the
pinned list the window shows, and both through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import SR, tone, write
from qvi_app.app import QviSession, build_index
from qvi_app.cli import main as qvi
from qvi_app.ranking.feedback import FeedbackSettings, moved_query, shortlist_scores


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_rocchio_and_weighted_move_the_query_as_defined():
    rng = np.random.default_rng(0)
    q, L, D = _unit(rng.standard_normal(6)), _unit(rng.standard_normal((1, 6))), _unit(rng.standard_normal((2, 6)))
    s = FeedbackSettings("rocchio", alpha=1.0, beta=0.5, gamma=0.25)
    np.testing.assert_allclose(moved_query(q, L, D, s), _unit(q + 0.5 * L.mean(0) - 0.25 * D.mean(0)), rtol=1e-5)
    w = FeedbackSettings("weighted", beta=0.5, gamma=0.3)
    cl = np.clip((D @ q + 1) / 2, 0, 1)                       # closer disliked sounds push harder
    np.testing.assert_allclose(moved_query(q, np.zeros((0, 6)), D, w), _unit(q - 0.3 * (cl[:, None] * D).sum(0)),
                               rtol=1e-5)
    blocks = [("a", 0, 2), ("b", 2, 6)]
    moved = moved_query(q, L, D, s, blocks)
    assert np.allclose([np.linalg.norm(moved[0:2]), np.linalg.norm(moved[2:6])], 1)      # each block a unit vector
    with pytest.raises(ValueError, match="feedback rule"):
        FeedbackSettings("telepathy")


def test_shortlist_rule_rescores_as_defined():
    rng = np.random.default_rng(1)
    cand, q = _unit(rng.standard_normal((8, 5))), _unit(rng.standard_normal(5))
    L, D = cand[[2]], cand[[5, 6]]
    scores = cand @ q
    s = FeedbackSettings("shortlist", beta=0.5, gamma=0.3)
    spread = scores.std()
    w = np.clip((D @ q + 1) / 2, 0, 1)
    expect = scores + 0.5 * spread * (cand @ L.T).max(1) / 0.5 - 0.3 * spread * ((cand @ D.T) * w).sum(1) / 0.5
    np.testing.assert_allclose(shortlist_scores(scores, cand, q, L, D, s), expect, rtol=1e-6)


def test_shortlist_rule_lifts_the_liked_sounds_category_as_defined():
    """A ▲ also says "this kind of sound": candidates of a liked sound's category gain
    category_beta spreads; other categories, and a rule with category_beta 0, are as before."""
    rng = np.random.default_rng(2)
    cand, q = _unit(rng.standard_normal((8, 5))), _unit(rng.standard_normal(5))
    cats = np.array([0, 1, 1, 2, 0, 1, 2, 2])
    L, D = cand[[1]], cand[[3]]
    scores = cand @ q
    plain = FeedbackSettings("shortlist", beta=0.5, gamma=0.5, category_beta=0.0)
    s = FeedbackSettings("shortlist", beta=0.5, gamma=0.5, category_beta=1.0)
    base = shortlist_scores(scores, cand, q, L, D, plain)
    got = shortlist_scores(scores, cand, q, L, D, s, categories=cats, liked_categories=cats[[1]])
    np.testing.assert_allclose(got, base + 1.0 * scores.std() * (cats == 1) / 0.5, rtol=1e-6)
    np.testing.assert_allclose(shortlist_scores(scores, cand, q, L, D, plain, categories=cats,
                                                liked_categories=cats[[1]]), base, rtol=1e-6)
    assert FeedbackSettings().category_beta == 1.0            # the default (docs/FEEDBACK.md)


@pytest.fixture
def tone_index(tmp_path):
    lib = tmp_path / "lib"
    for cat, base in (("low", 200), ("mid", 700), ("high", 2500)):
        for i in range(5):
            write(lib / cat / f"{cat}{i}.wav", tone(base * (1 + 0.07 * i), 1.0) + 0.2 * tone(base * 2.1, 1.0))
    ix = tmp_path / "ix"
    build_index(lib, ix, "2dft", show_progress=False)
    return lib, ix


def test_ratings_pin_liked_on_top_and_disliked_at_the_bottom(tone_index):
    lib, ix = tone_index
    session = QviSession(ix)
    first = session.search_wave(tone(230, 1.2), SR, top_k=8)
    liked, disliked = first.hits[2].relpath, first.hits[0].relpath
    again = session.with_feedback(first, {liked: 1, disliked: -1}, top_k=8)
    assert (again.hits[0].relpath, again.hits[0].rating) == (liked, 1)
    assert (again.hits[-1].relpath, again.hits[-1].rating) == (disliked, -1)
    assert [h.rank for h in again.hits] == list(range(1, 11)) and all(h.rating == 0 for h in again.hits[1:-1])
    # the unrated middle is the shortlist re-scored by the rule, best first
    base = session.index.search(first.query_vector, top_k=100)
    cand = np.asarray(session.index.embeddings[[h.row for h in base]])
    rows = [session.index.row_of(p) for p in (liked, disliked)]
    new = shortlist_scores(np.array([h.score for h in base]), cand, first.query_vector,
                           np.asarray(session.index.embeddings[rows[:1]]), np.asarray(session.index.embeddings[rows[1:]]),
                           FeedbackSettings(), categories=np.array([h.category for h in base]),
                           liked_categories=np.array([first.hits[2].category]))
    expect = [base[i].relpath for i in np.argsort(-new, kind="stable") if base[i].relpath not in (liked, disliked)]
    assert [h.relpath for h in again.hits[1:-1]] == expect[:8]
    assert session.with_feedback(again, {}, top_k=8).hits[0].relpath == first.hits[0].relpath     # back to the start


def test_cli_like_dislike_and_similar(tone_index, capsys):
    lib, ix = tone_index
    query = write(lib.parent / "q.wav", tone(720, 1.0))
    assert qvi(["search", str(query), "--index", str(ix), "--top", "5", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert qvi(["search", str(query), "--index", str(ix), "--top", "5", "--json",
                "--like", first[3]["path"], "--dislike", first[0]["path"]]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again[0]["path"] == first[3]["path"] and again[0]["rating"] == 1
    assert again[-1]["path"] == first[0]["path"] and again[-1]["rating"] == -1 and len(again) == 7
    target = first[1]["path"]
    assert qvi(["similar", target, "--index", str(ix), "--top", "3", "--json"]) == 0
    similar = json.loads(capsys.readouterr().out)
    assert similar[0]["path"] == target and len(similar) == 3
    assert qvi(["similar", target, "--index", str(ix), "--category", "high", "--json"]) == 0
    assert {h["category"] for h in json.loads(capsys.readouterr().out)} == {"high"}
    assert qvi(["similar", str(lib.parent / "elsewhere.wav"), "--index", str(ix)]) == 2
    assert "is not in the library" in capsys.readouterr().err
