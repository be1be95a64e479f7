import csv
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from qvi_app.feedback import FeedbackStore
from tests.conftest import SR, tone, write


def _rate(store, wave, result="lib/a.ogg", rating=1, rank=1):
    return store.rate(wave=wave, sr=SR, result_path=result, rank=rank, score=0.9, rating=rating,
                      category_filter=None, model_id="cnn/x/123")


def test_rating_is_stored_changed_and_exported(tmp_path):
    db = tmp_path / "fb" / "feedback.sqlite"
    store = FeedbackStore(db)
    q = tone(440)
    _rate(store, q, rating=1)
    _rate(store, q, "lib/b.ogg", rating=-1, rank=2)
    _rate(store, q, rating=-1)                                   # changed mind: replaces, not adds
    rows = store.ratings()
    assert [(r.result_path, r.rating) for r in rows] == [("lib/a.ogg", -1), ("lib/b.ogg", -1)]
    assert len(list((db.parent / "queries").glob("*.wav"))) == 1   # the query audio, saved once
    assert store.export_csv(tmp_path / "out.csv") == 2
    with open(tmp_path / "out.csv") as f:
        exported = list(csv.DictReader(f))
    assert exported[0]["result_path"] == "lib/a.ogg" and exported[0]["model_id"] == "cnn/x/123"
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(ValueError):
        _rate(store, q, rating=0)


def test_a_rating_is_taken_back(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    q = tone(440)
    _rate(store, q, rating=1)
    _rate(store, q, "lib/b.ogg", rating=-1)
    assert store.unrate(wave=q, sr=SR, result_path="lib/a.ogg")
    assert not store.unrate(wave=q, sr=SR, result_path="lib/a.ogg")      # nothing left to take back
    assert not store.unrate(wave=tone(880), sr=SR, result_path="lib/b.ogg")   # another query's
    assert [(r.result_path, r.rating) for r in store.ratings()] == [("lib/b.ogg", -1)]
    assert store.liked_queries() == 0
    store.close()
    assert FeedbackStore(tmp_path / "feedback.sqlite").ratings()[0].result_path == "lib/b.ogg"   # committed


def test_ratings_survive_a_killed_process(tmp_path):
    db = tmp_path / "feedback.sqlite"
    script = f"""
import os, signal, numpy as np
from qvi_app.feedback import FeedbackStore
s = FeedbackStore({str(db)!r})
for i in range(5):
    s.rate(wave=np.full(100, 0.1 * (i + 1), np.float32), sr=8000, result_path=f"r{{i}}.ogg", rank=i + 1,
           score=0.5, rating=1, category_filter="birds", model_id="m")
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    assert [r.result_path for r in FeedbackStore(db).ratings()] == [f"r{i}.ogg" for i in range(5)]


def test_recent_queries_are_kept_and_an_older_database_gains_them(tmp_path):
    db = tmp_path / "feedback.sqlite"
    con = sqlite3.connect(db)                                   # a version-1 database, as qvi 0.1 wrote it
    con.executescript("CREATE TABLE ratings (id INTEGER PRIMARY KEY, created REAL NOT NULL, query_hash TEXT NOT NULL, "
                      "query_path TEXT NOT NULL, result_path TEXT NOT NULL, rank INTEGER NOT NULL, score REAL NOT NULL, "
                      "rating INTEGER NOT NULL, category_filter TEXT, model_id TEXT NOT NULL, "
                      "UNIQUE (query_hash, result_path)); PRAGMA user_version=1;")
    con.close()
    store = FeedbackStore(db)
    assert store.recent_queries() == []
    store.remember_query(tone(440), SR, "your recording")
    store.remember_query(tone(550), SR, "cat.wav")
    store.remember_query(tone(440), SR, "your recording")      # the same audio again: listed once, newest
    recent = store.recent_queries()
    assert [label for _, label, _ in recent] == ["your recording", "cat.wav"]
    assert all(Path(p).is_file() for _, _, p in recent)
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == 4


V2_RATINGS = ("CREATE TABLE ratings (id INTEGER PRIMARY KEY, created REAL NOT NULL, query_hash TEXT NOT NULL, "
              "query_path TEXT NOT NULL, result_path TEXT NOT NULL, rank INTEGER NOT NULL, score REAL NOT NULL, "
              "rating INTEGER NOT NULL CHECK (rating IN (-1, 1)), category_filter TEXT, model_id TEXT NOT NULL, "
              "UNIQUE (query_hash, result_path)); "
              "CREATE TABLE history (id INTEGER PRIMARY KEY, created REAL NOT NULL, query_hash TEXT NOT NULL, "
              "query_path TEXT NOT NULL, label TEXT NOT NULL); "
              "INSERT INTO ratings VALUES (1, 1700000000.0, 'h', 'q.wav', 'lib/old.ogg', 3, 0.5, 1, 'birds', 'm'); "
              "PRAGMA user_version=2;")


def test_a_rating_keeps_the_name_and_length_filters_it_was_made_under(tmp_path):
    """A rating made while the list was narrowed by name or length is only understood with those
    filters: it is stored and exported with them."""
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    store.rate(wave=tone(440), sr=SR, result_path="lib/door_wood.ogg", rank=1, score=0.9, rating=1,
               category_filter="foley", name_filter="door wood", model_id="m", length_filter="1–3 s")
    _rate(store, tone(440), "lib/b.ogg", rating=-1)
    assert [(r.category_filter, r.name_filter, r.length_filter) for r in store.ratings()] == [
        ("foley", "door wood", "1–3 s"), (None, None, None)]
    store.export_csv(tmp_path / "out.csv")
    with open(tmp_path / "out.csv", encoding="utf-8") as f:
        exported = list(csv.DictReader(f))
    assert [(r["name_filter"], r["length_filter"]) for r in exported] == [("door wood", "1–3 s"), ("", "")]


V3_RATINGS = V2_RATINGS.replace("category_filter TEXT, model_id TEXT NOT NULL,",
                                "category_filter TEXT, model_id TEXT NOT NULL, name_filter TEXT,") \
    .replace("'birds', 'm');", "'birds', 'm', 'owl');").replace("user_version=2", "user_version=3")


def test_a_version_3_database_gains_the_length_column_and_loses_no_rating(tmp_path):
    db = tmp_path / "feedback.sqlite"
    con = sqlite3.connect(db)                                   # as qvi 0.12-0.15 wrote it
    con.executescript(V3_RATINGS)
    con.close()
    store = FeedbackStore(db)
    assert [(r.result_path, r.category_filter, r.name_filter, r.length_filter) for r in store.ratings()] == [
        ("lib/old.ogg", "birds", "owl", None)]
    store.rate(wave=tone(440), sr=SR, result_path="lib/new.ogg", rank=1, score=0.9, rating=-1,
               category_filter=None, name_filter=None, model_id="m", length_filter="under 1 s")
    store.close()
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == 4
    assert [r.length_filter for r in FeedbackStore(db).ratings()] == [None, "under 1 s"]


def test_an_older_database_gains_the_name_column_and_loses_no_rating(tmp_path):
    db = tmp_path / "feedback.sqlite"
    con = sqlite3.connect(db)                                   # a version-2 database, as qvi 0.3-0.11 wrote it
    con.executescript(V2_RATINGS)
    con.close()
    store = FeedbackStore(db)
    old = store.ratings()
    assert [(r.result_path, r.rank, r.rating, r.category_filter, r.name_filter) for r in old] == [
        ("lib/old.ogg", 3, 1, "birds", None)]
    store.rate(wave=tone(440), sr=SR, result_path="lib/new.ogg", rank=1, score=0.9, rating=-1,
               category_filter=None, name_filter="rain", model_id="m")
    assert [r.name_filter for r in store.ratings()] == [None, "rain"]
    store.close()
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == 4
    assert [r.name_filter for r in FeedbackStore(db).ratings()] == [None, "rain"]   # opened again: as it was


def test_liked_sounds_are_copied_to_a_folder_with_their_attribution(tmp_path):
    """File > Copy liked sounds: every sound given a thumbs up (for any query, once), copied with
    its name; two liked sounds of one name both kept; a sound only disliked, or gone, is not
    copied; demo sounds carry their author and licence in ATTRIBUTION.csv; running it again
    copies nothing twice."""
    from qvi_app.feedback.liked import copy_liked_sounds
    from qvi_app.paths import DEMO_LIBRARY

    store = FeedbackStore(tmp_path / "fb" / "feedback.sqlite")
    demo = DEMO_LIBRARY / "birds" / "peacock_call_01.ogg"
    mine_a = write(tmp_path / "lib" / "a" / "boom.wav", tone(100))
    mine_b = write(tmp_path / "lib" / "b" / "boom.wav", tone(150))
    gone = write(tmp_path / "lib" / "gone.wav", tone(200))
    disliked = write(tmp_path / "lib" / "meh.wav", tone(300))
    for q, result, rating in ((440, demo, 1), (550, demo, 1), (440, mine_a, 1), (550, mine_b, 1), (440, gone, 1),
                              (440, disliked, -1)):
        _rate(store, tone(q), str(result), rating=rating)
    gone.unlink()
    out = tmp_path / "picked"
    report = copy_liked_sounds(store, out)
    assert sorted(p.name for p in out.iterdir()) == ["ATTRIBUTION.csv", "boom-2.wav", "boom.wav",
                                                      "peacock_call_01.ogg"]
    assert (report.copied, report.missing, report.attributed) == (3, 1, 1)
    assert (out / "peacock_call_01.ogg").read_bytes() == demo.read_bytes()
    assert {(out / n).read_bytes() for n in ("boom.wav", "boom-2.wav")} == {mine_a.read_bytes(), mine_b.read_bytes()}
    with open(out / "ATTRIBUTION.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["file"], r["license"]) for r in rows] == [("peacock_call_01.ogg", "CC-BY-SA-3.0")] and rows[0]["author"]
    again = copy_liked_sounds(store, out)
    assert (again.copied, again.already) == (0, 3) and len(list(out.iterdir())) == 4
    assert "3 liked sounds" in report.summary() and "1 could not be found" in report.summary()
