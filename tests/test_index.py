import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from qvi_app.app import QviSession, build_index
from qvi_app.errors import LibraryIndexError, QviError, StaleIndexError
from qvi_app.index import Filters, ReferenceIndex, scan_library
from qvi_app.index.scan import category_for, ucs_catid
from qvi_app.paths import DEMO_LIBRARY
from tests.conftest import SR, tone, write, write_encoded


def test_categories_from_folder_ucs_and_csv(tmp_path):
    assert category_for("birds/owl.wav") == "birds"
    assert category_for("loose.wav") == "uncategorized"
    assert category_for("misc/DOORWood_Creak Slow_JD_01.wav") == "DOORWood"
    assert ucs_catid("VEHCar_Pass By.wav") == "VEHCar" and ucs_catid("HELLO_World.wav") is None
    write(tmp_path / "lib/a/x.wav", tone(300))
    write(tmp_path / "lib/a/sub/y.wav", tone(400))
    write(tmp_path / "lib/z.wav", tone(500))
    (tmp_path / "lib/notes.txt").write_text("not audio")
    csv_path = tmp_path / "cats.csv"
    with open(csv_path, "w", newline="") as f:
        csv.writer(f).writerows([["path", "category"], ["z.wav", "custom"]])
    files = scan_library(tmp_path / "lib", csv_path)
    assert [(f.relpath, f.category) for f in files] == [("a/sub/y.wav", "a"), ("a/x.wav", "a"), ("z.wav", "custom")]


def test_voice_memos_and_video_sounds_in_a_library_are_indexed(tmp_path):
    """A library with voice memos (M4A) and a video's sound (MOV): left out without a word (0.10),
    then listed as unread (0.11). Indexed now, and found by themselves; a file that only has the
    name of one is skipped with its line, as a broken WAV is."""
    write(tmp_path / "lib/doors/creak.wav", tone(300))
    write_encoded(tmp_path / "lib/voice/Memo 1.m4a", tone(500, 1.5))
    write_encoded(tmp_path / "lib/voice/Memo 2.M4A", tone(900, 0.7) + tone(1800, 0.7, amp=0.2))
    write_encoded(tmp_path / "lib/clips/door.mov", np.stack([tone(200), tone(200)], axis=1), container="mov")
    (tmp_path / "lib/old").mkdir()
    (tmp_path / "lib/old/door.wma").write_bytes(b"not read")
    report = build_index(tmp_path / "lib", tmp_path / "ix", "2dft", show_progress=False)
    assert report.embedded == report.total == 4 and not report.unread
    assert [(f.path, f.reason) for f in report.skipped] == [
        ("old/door.wma", "not a readable WMA file (invalid data found when processing input)")]
    index = ReferenceIndex.open(tmp_path / "ix")
    assert sorted(index.categories()) == ["clips", "doors", "voice"]
    hit = QviSession(tmp_path / "ix").search_file(tmp_path / "lib/voice/Memo 2.M4A", top_k=1).hits[0]
    assert hit.relpath == "voice/Memo 2.M4A" and hit.score > 0.99


def test_without_pyav_a_librarys_memos_are_said_not_silently_dropped(tmp_path):
    """PyAV missing: the memos and WMA files are listed as unread, with what to do, and a folder
    of nothing else is not "no sound files found"."""
    write(tmp_path / "lib/doors/creak.wav", tone(300))
    for name in ("voice/Memo 1.m4a", "voice/Memo 2.M4A", "old/door.wma", ".hidden/x.m4a"):
        (tmp_path / "lib" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "lib" / name).write_bytes(b"not read")
    code = f"""
import json, sys
sys.modules["av"] = None
from pathlib import Path
from qvi_app.app import build_index
from qvi_app.index import ReferenceIndex, pending_changes
lib = Path({str(tmp_path / "lib")!r})
report = build_index(lib, lib.parent / "ix", "2dft", show_progress=False)
changes = pending_changes(ReferenceIndex.open(lib.parent / "ix"))
(lib / "doors/creak.wav").unlink()
empty = build_index(lib, lib.parent / "ix2", "2dft", show_progress=False)
print(json.dumps([report.total, len(report.skipped), [[u.path, u.reason] for u in report.unread], report.summary(),
                  bool(changes), empty.total, len(empty.unread), empty.summary()]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    total, skipped, unread, text, changes, empty_total, empty_unread, empty_text = json.loads(out.splitlines()[-1])
    assert total == 1 and skipped == 0 and not changes                    # nothing to update for them
    said = "is not a format qvi reads without PyAV: pip install av, or save it as WAV or FLAC"
    assert unread == [["old/door.wma", f"WMA {said}"], ["voice/Memo 1.m4a", f"M4A {said}"],
                      ["voice/Memo 2.M4A", f"M4A {said}"]]
    assert f"left out voice/Memo 1.m4a: M4A {said}" in text
    assert "(1 embedded, 0 unchanged, 0 removed, 0 skipped, 3 in formats qvi does not read)" in text
    assert empty_total == 0 and empty_unread == 3 and "no sound files found" not in empty_text


def test_build_search_and_category_filter(tmp_path, small_library):
    report = build_index(small_library, tmp_path / "ix", "cnn", show_progress=False)      # scores are cosines
    assert report.embedded == report.total == 24 and not report.skipped
    idx = ReferenceIndex.open(tmp_path / "ix")
    first = sorted(small_library.rglob("*.ogg"))[0]
    session = QviSession(tmp_path / "ix")
    hits = session.search_file(first, top_k=5).hits
    assert hits[0].path == first and hits[0].score > 0.99
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    cat = sorted(idx.categories())[-1]
    filtered = session.search_file(first, Filters(cat), top_k=50).hits
    assert len(filtered) == 3 and {h.category for h in filtered} == {cat}
    shouted = session.search_file(first, Filters(cat.upper()), top_k=50).hits   # typed as the user remembers it
    assert [h.path for h in shouted] == [h.path for h in filtered]
    with pytest.raises(LibraryIndexError, match="unknown category"):
        idx.search(np.ones(idx.embeddings.shape[1], np.float32), Filters("nope"))


def test_name_filter_ranks_as_the_brute_force_definition(tmp_path, small_library):
    """Words typed beside the imitation ("wood door"): only sounds whose path holds every word,
    in any case, ranked exactly as the whole library is ranked; with a category as well."""
    build_index(small_library, tmp_path / "ix", "cnn", show_progress=False)
    idx = ReferenceIndex.open(tmp_path / "ix")
    paths = [it.path for it in idx.items]
    rng = np.random.default_rng(0)
    query = rng.standard_normal(idx.embeddings.shape[1]).astype(np.float32)
    query /= np.linalg.norm(query)
    scores = idx.scores(query)
    word = paths[0].split("/")[0]                                  # a folder's name: several sounds
    part = paths[5].rsplit("/", 1)[1][:4].upper()                  # part of a file name, typed in capitals
    for name in (word, part, f"{word} {part}", f"  {part}  "):
        wanted = [i for i, p in enumerate(paths) if all(w.casefold() in p.casefold() for w in name.split())]
        best = sorted(wanted, key=lambda i: (-scores[i], i))[:5]
        hits = idx.search(query, Filters(name=name), top_k=5)
        assert [h.row for h in hits] == best and [h.rank for h in hits] == list(range(1, len(best) + 1))
    cat = idx.items[5].category
    both = idx.search(query, Filters(cat, part), top_k=50)
    assert both and all(h.category == cat and part.casefold() in h.relpath.casefold() for h in both)
    assert idx.search(query, Filters(name="no such sound zzz"), top_k=5) == []
    assert len(idx.search(query, Filters(name="   "), top_k=50)) == len(paths)     # blank: no filter


def test_name_filter_takes_odd_words_and_names_literally(tmp_path):
    """SQL's wildcards and quotes are plain letters to it; a file name that is not UTF-8 (kept as
    bytes in the index) is found by its readable part; accents fold as in a word processor."""
    lib = tmp_path / "lib"
    names = ["100%_done.wav", "it's_a_door.wav", "under_score.wav", "Straße_Auto.wav", "plain.wav"]
    for i, n in enumerate(names):
        write(lib / n, tone(300 + 90 * i))
    raw = os.fsencode(str(lib)) + b"/caf\xe9_latin1.wav"                 # not UTF-8
    os.rename(os.fsencode(write(lib / "latin1.wav", tone(900))), raw)   # soundfile cannot write that name itself
    build_index(lib, tmp_path / "ix", "2dft", show_progress=False)
    idx = ReferenceIndex.open(tmp_path / "ix")
    q = np.asarray(idx.embeddings[0], np.float32)

    def found(name):
        return sorted(h.relpath for h in idx.search(q, Filters(name=name), top_k=20))

    assert found("%") == ["100%_done.wav"]
    assert found("_") == sorted([n for n in names if "_" in n] + [os.fsdecode(b"caf\xe9_latin1.wav")])
    assert found("it's") == ["it's_a_door.wav"] and found("'; drop table items; --") == []
    assert found("STRASSE auto") == ["Straße_Auto.wav"]                    # ß folds to ss
    assert found("latin1") == [os.fsdecode(b"caf\xe9_latin1.wav")]
    assert len(idx) == 6 and found("plain") == ["plain.wav"]              # the table is untouched
    with pytest.raises(QviError, match="at most 64 words") as caught:            # a paragraph pasted in
        found(" ".join(f"w{i}" for i in range(2000)))
    assert "damaged" not in str(caught.value)
    assert found(" ".join(["done"] * 2000)) == ["100%_done.wav"]           # the same word many times is one


def test_a_word_after_a_minus_leaves_sounds_out_and_quotes_keep_a_phrase(tmp_path):
    """``door -car`` keeps the doors that are not car doors; ``"door slam"`` the sounds whose
    name or description holds those words together, in that order; a lone "-" or an unclosed
    quote while typing changes nothing yet. Checked against the definition on every term set."""
    from tests.test_tags import tagged

    lib = tmp_path / "lib"
    names = {"house door slam.wav": "", "car door slam.wav": "", "door_creak.wav": "",
             "car_engine.wav": "", "slam the door.wav": "", "x-ray buzz.wav": ""}
    for i, n in enumerate(names):
        write(lib / n, tone(300 + 90 * i))
    tagged(lib / "take_07.flac", tone(1300), title="Heavy DOOR SLAM, barn")
    build_index(lib, tmp_path / "ix", "2dft", show_progress=False)
    idx = ReferenceIndex.open(tmp_path / "ix")
    q = np.asarray(idx.embeddings[0], np.float32)
    text = {h.relpath: f"{h.relpath}\n{h.description}".casefold() for h in idx.search(q, top_k=20)}

    def found(name):
        return sorted(h.relpath for h in idx.search(q, Filters(name=name), top_k=20))

    def defined(held=(), left_out=()):
        return sorted(p for p, t in text.items() if all(w in t for w in held) and not any(w in t for w in left_out))

    assert found("door -car") == defined(["door"], ["car"]) == \
        ["door_creak.wav", "house door slam.wav", "slam the door.wav", "take_07.flac"]
    assert found('"door slam"') == defined(["door slam"]) == ["car door slam.wav", "house door slam.wav",
                                                              "take_07.flac"]
    assert found("door slam") == defined(["door", "slam"])                  # words: any order
    assert found('-car "DOOR  slam"') == defined(["door slam"], ["car"])
    assert found('"door sl') == defined(["door sl"])                        # the closing quote not typed yet
    assert found("door -") == found("door") and found('door ""') == found("door")
    assert found("-door -car") == ["x-ray buzz.wav"] and found("x-ray") == ["x-ray buzz.wav"]
    assert Filters(name="door -car").nothing_found() == "no sound matches 'door -car' in its name, folder or description"


def test_fused_index_ranks_as_the_brute_force_definition(tmp_path, small_library):
    """A qvi index whose model carries a fused ranking (the 0.2 default: CNN .7 + CQT+2DFT .3,
    CSLS): blocks per encoder, hubness penalties, z-score fusion, all as the ranking module
    defines them, with and without a category filter."""
    from qvi_app.encoders import load_encoder
    from qvi_app.encoders.checkpoint import load_checkpoint, save_checkpoint
    from qvi_app.paths import BUNDLED_CNN
    from qvi_app.ranking import RankingSettings, hub_penalty, zscore

    fused = RankingSettings(encoders=("cnn", "2dft"), weights=(0.7, 0.3), hub_bank="library", hub_k=10)
    ckpt = load_checkpoint(BUNDLED_CNN)
    ckpt["ranking"] = fused.to_dict()
    model = save_checkpoint(tmp_path / "fused.pt", **{k: v for k, v in ckpt.items() if k not in ("format", "format_version")})
    build_index(small_library, tmp_path / "ix", checkpoint=model, show_progress=False)
    idx = ReferenceIndex.open(tmp_path / "ix")
    enc = load_encoder("qvi", model)
    assert idx.meta["encoder_id"] == enc.id and idx.ranking == enc.ranking == fused and len(idx.blocks) == 2
    emb = np.asarray(idx.embeddings)
    for j, (name, a, b) in enumerate(idx.blocks):
        assert np.allclose(np.linalg.norm(emb[:, a:b], axis=1), 1, atol=1e-5)
        np.testing.assert_allclose(idx.penalties[:, j], hub_penalty(emb[:, a:b], emb[:, a:b], idx.ranking.hub_k,
                                                                    exclude_self=True), rtol=1e-5)
    wave = tone(523, 1.5) + 0.3 * tone(1046, 1.5)
    query = enc.embed(wave, SR, role="query")

    def brute(rows):
        total = 0
        for j, (name, a, b) in enumerate(idx.blocks):
            cos = emb[rows, a:b] @ query[a:b] - idx.ranking.hub_weight * idx.penalties[rows, j]
            total = total + idx.ranking.weights[j] * zscore(cos)
        return total

    everything = np.arange(len(emb))
    hits = idx.search(query, top_k=len(emb))
    np.testing.assert_allclose([h.score for h in hits], np.sort(brute(everything))[::-1], rtol=1e-5, atol=1e-5)
    assert [idx.items.index(next(it for it in idx.items if it.path == h.relpath)) for h in hits][:5] == \
        list(np.argsort(-brute(everything), kind="stable")[:5])
    cat = sorted(idx.categories())[0]
    rows = np.array([i for i, it in enumerate(idx.items) if it.category == cat])
    filtered = idx.search(query, Filters(cat), top_k=10)
    np.testing.assert_allclose([h.score for h in filtered], np.sort(brute(rows))[::-1], rtol=1e-5, atol=1e-5)


def test_incremental_update_embeds_only_changes(tmp_path, small_library):
    build_index(small_library, tmp_path / "ix", show_progress=False)
    before = ReferenceIndex.open(tmp_path / "ix")
    files = sorted(small_library.rglob("*.ogg"))
    files[0].unlink()                                             # removed
    shutil.move(files[1], small_library / "renamed.ogg")          # moved: same content, new path
    write(small_library / "new/tone.wav", tone(660))              # added
    os.utime(files[2], (time.time() + 5, time.time() + 5))        # touched, content unchanged
    report = build_index(small_library, tmp_path / "ix", show_progress=False)
    assert (report.embedded, report.removed, report.total) == (1, 2, 24)
    after = ReferenceIndex.open(tmp_path / "ix")
    old = {it.path: before.embeddings[i] for i, it in enumerate(before.items)}
    new = {it.path: after.embeddings[i] for i, it in enumerate(after.items)}
    rel1 = files[1].relative_to(small_library).as_posix()
    assert np.array_equal(new["renamed.ogg"], old[rel1])
    assert after.categories()["new"] == 1 and after.categories()["uncategorized"] == 1


def test_an_update_without_the_category_csv_keeps_the_categories_it_gave(tmp_path, small_library):
    """Indexed once with --categories FILE, then updated with a plain `qvi index FOLDER` (or the
    window's re-index, which has no CSV): the sounds already indexed keep their categories, new
    ones take their folder's; a CSV given again decides anew."""
    files = sorted(p.relative_to(small_library).as_posix() for p in small_library.rglob("*.ogg"))
    table = tmp_path / "cats.csv"
    with open(table, "w", newline="") as f:
        csv.writer(f).writerows([["path", "category"], *[[rel, "mine"] for rel in files[:5]]])
    build_index(small_library, tmp_path / "ix", "2dft", categories_csv=table, show_progress=False)
    assert ReferenceIndex.open(tmp_path / "ix").categories()["mine"] == 5
    write(small_library / "new" / "tone.wav", tone(660))                          # added
    os.utime(small_library / files[0], (time.time() + 5, time.time() + 5))       # touched
    build_index(small_library, tmp_path / "ix", "2dft", show_progress=False)
    after = ReferenceIndex.open(tmp_path / "ix")
    got = {it.path: it.category for it in after.items}
    assert [got[rel] for rel in files[:5]] == ["mine"] * 5
    assert got["new/tone.wav"] == "new" and got[files[5]] == files[5].split("/")[0]
    build_index(small_library, tmp_path / "ix", "cnn", show_progress=False)          # rebuilt for another model
    rebuilt = {it.path: it.category for it in ReferenceIndex.open(tmp_path / "ix").items}
    assert rebuilt == got
    with open(table, "w", newline="") as f:
        csv.writer(f).writerows([["path", "category"], [files[1], "other"]])
    build_index(small_library, tmp_path / "ix", "2dft", categories_csv=table, show_progress=False)
    got = {it.path: it.category for it in ReferenceIndex.open(tmp_path / "ix").items}
    assert got[files[1]] == "other" and got[files[0]] == files[0].split("/")[0]


def test_the_changes_since_indexing_are_what_an_update_would_do(tmp_path, small_library):
    """pending_changes: files added, edited and removed since the index was built, found without
    embedding anything; a file only touched (a copied or freshly checked-out library has new
    dates throughout) is compared by content and not counted; a bad file left alone stays
    left out. After the update there is nothing pending."""
    from qvi_app.index import pending_changes

    (small_library / "bad").mkdir()
    (small_library / "bad" / "broken.wav").write_bytes(b"RIFF not really")
    build_index(small_library, tmp_path / "ix", "2dft", show_progress=False)
    idx = ReferenceIndex.open(tmp_path / "ix")
    assert not pending_changes(idx) and pending_changes(idx).summary() == "no changes"
    files = sorted(p.relative_to(small_library).as_posix() for p in small_library.rglob("*.ogg"))
    for rel in files:                                                     # every date new, no content
        os.utime(small_library / rel, (time.time() + 9, time.time() + 9))
    assert not pending_changes(idx)
    (small_library / files[0]).unlink()
    edited = small_library / files[1]
    data = bytearray(edited.read_bytes())
    data[-1] ^= 1                                                          # same size, other content
    edited.write_bytes(bytes(data))
    write(small_library / "new" / "tone.wav", tone(660))
    write(small_library / ".hidden" / "tone.wav", tone(770))                # not a library file
    changes = pending_changes(idx)
    assert (changes.new, changes.changed, changes.removed) == (("new/tone.wav",), (files[1],), (files[0],))
    assert changes.summary() == "1 new, 1 changed, 1 removed"
    assert pending_changes(idx, hash_budget_bytes=0).changed == tuple(files[1:])  # past the budget: not compared
    build_index(small_library, tmp_path / "ix", "2dft", show_progress=False)
    assert not pending_changes(ReferenceIndex.open(tmp_path / "ix"))


def test_several_folders_are_one_library_through_a_folder_of_links(tmp_path):
    """Libraries on several disks or folders, searched as one: a folder holding a link to each is
    indexed (each link's name is the category of its sounds), the sounds play from where they
    are, and a sound added to one of them is seen as a change."""
    from qvi_app.index import pending_changes

    for name, freqs in (("boom", (120, 160)), ("field", (2400, 3100))):
        for f in freqs:
            write(tmp_path / "disks" / name / f"{f}.wav", tone(f))
    everything = tmp_path / "all"
    everything.mkdir()
    os.symlink(tmp_path / "disks" / "boom", everything / "boom")
    os.symlink(tmp_path / "disks" / "field", everything / "field")
    build_index(everything, tmp_path / "ix", "2dft", show_progress=False)
    session = QviSession(tmp_path / "ix")
    assert session.categories() == {"boom": 2, "field": 2}
    hits = session.search_wave(tone(2400), SR, top_k=4).hits
    assert hits[0].relpath == "field/2400.wav" and all(h.path.is_file() for h in hits)
    write(tmp_path / "disks" / "boom" / "200.wav", tone(200))
    assert pending_changes(session.index).new == ("boom/200.wav",)


def test_an_index_from_before_the_15_db_cut_keeps_its_cut_until_an_update_rebuilds_it(tmp_path, small_library):
    """Since 0.12 sounds and queries are cut 15 dB over their noise floor (TRAINING.md row 65),
    not 10. An index made before says nothing of its cut: its queries are still cut at 10 dB,
    so its sounds and the queries match as before, and updating it embeds every sound again
    with the new cut (said in the report) instead of mixing two cuts in one index."""
    import sqlite3

    from qvi_app.audio import isolate_sound
    from qvi_app.audio.load import CUT_ABOVE_FLOOR_DB
    from qvi_app.index.store import current_generation

    ix = tmp_path / "ix"
    first = sorted(p.relative_to(small_library).as_posix() for p in small_library.rglob("*.ogg"))[0]
    table = tmp_path / "cats.csv"
    table.write_text(f"path,category\n{first},mine\n")
    build_index(small_library, ix, "2dft", categories_csv=table, show_progress=False)
    assert CUT_ABOVE_FLOOR_DB == 15.0 and ReferenceIndex.open(ix).cut_above_floor_db == 15.0
    con = sqlite3.connect(current_generation(ix) / "meta.sqlite")          # as 0.11 wrote it
    con.execute("DELETE FROM meta WHERE key = 'cut_above_floor_db'")
    con.commit()
    con.close()
    rng = np.random.default_rng(0)
    query = 10 ** (-60 / 20) * rng.standard_normal(int(1.6 * SR)).astype(np.float32)   # a room 60 dB down
    body, tail = tone(440, 0.6), 10 ** (-38 / 20) * tone(440, 0.5)                      # a tail 38 dB down
    query[int(0.3 * SR):int(0.3 * SR) + len(body)] += body
    query[int(0.3 * SR) + len(body):int(0.3 * SR) + len(body) + len(tail)] += tail
    at10, at15 = (len(isolate_sound(query, SR, above_floor_db=f, query=True)) for f in (10.0, 15.0))
    assert at10 - at15 > 0.3 * SR                                          # the tail: kept at 10 dB, cut at 15
    old = QviSession(ix)
    assert old.index.cut_above_floor_db == 10.0
    assert round(old.search_wave(query, SR).query_duration * SR) == at10
    report = build_index(small_library, ix, "2dft", show_progress=False)
    assert report.embedded == 24 and report.reused == 0 and "cut" in report.rebuilt_reason
    new = QviSession(ix)
    assert new.index.cut_above_floor_db == 15.0 and round(new.search_wave(query, SR).query_duration * SR) == at15
    assert {it.path: it.category for it in new.index.items}[first] == "mine"       # categories outlive the rebuild


def test_the_embedder_is_a_choice_passed_in(tmp_path, small_library):
    """update_index hands any Embedder exactly the files that need embedding, in scan order, and
    writes what it returns; an unknown engine name is one clear error."""
    from qvi_app.encoders import load_encoder
    from qvi_app.errors import QviError
    from qvi_app.index import update_index
    from qvi_app.index.embedders import LocalEmbedder, make_embedder

    class Recording:
        def __init__(self, inner):
            self.inner, self.paths, self.sizes = inner, [], []

        def embed(self, paths, n_files):
            self.sizes.append(n_files)

            def seen():
                for p in paths:
                    self.paths.append(p.relative_to(small_library).as_posix())
                    yield p
            return self.inner.embed(seen(), n_files)

    enc = load_encoder("cnn")
    first = Recording(LocalEmbedder(enc, workers=1, runtime="torch"))
    update_index(small_library, tmp_path / "ix", enc, show_progress=False, embedder=first)
    assert first.paths == sorted(first.paths) and len(first.paths) == 24 and first.sizes == [24]
    write(small_library / "new/tone.wav", tone(660))
    second = Recording(LocalEmbedder(enc, workers=1, runtime="torch"))
    report = update_index(small_library, tmp_path / "ix", enc, show_progress=False, embedder=second)
    assert second.paths == ["new/tone.wav"] and second.sizes == [1] and report.embedded == 1
    reference = build_index(small_library, tmp_path / "ix2", show_progress=False, workers=1)
    a, b = ReferenceIndex.open(tmp_path / "ix"), ReferenceIndex.open(tmp_path / "ix2")
    assert [it.path for it in a.items] == [it.path for it in b.items] and reference.total == 25
    np.testing.assert_allclose(np.asarray(a.embeddings), np.asarray(b.embeddings), atol=1e-5)
    with pytest.raises(QviError, match="unknown engine 'spark'"):
        make_embedder("spark", enc)


def test_index_of_another_encoder_is_refused(tmp_path, small_library):
    build_index(small_library, tmp_path / "ix", encoder_name="2dft", show_progress=False)
    with pytest.raises(StaleIndexError, match="was built by encoder 2dft/"):
        ReferenceIndex.open(tmp_path / "ix", encoder_id="cnn/aisfx-0.1.2/0000000000")
    report = build_index(small_library, tmp_path / "ix", encoder_name="cnn", show_progress=False)
    assert report.rebuilt_reason and report.embedded == 24
    assert ReferenceIndex.open(tmp_path / "ix").meta["encoder_name"] == "cnn"


def _hostile_folder(root):
    write(root / "good/tone.wav", tone(440))
    write(root / "good/chirp.flac", np.sin(2 * np.pi * np.cumsum(np.linspace(200, 2000, SR)) / SR).astype(np.float32))
    (root / "bad").mkdir()
    (root / "bad/empty.wav").write_bytes(b"")
    (root / "bad/text.wav").write_text("hello, I am not a wave file\n")
    (root / "bad/corrupt.ogg").write_bytes(b"OggS" + os.urandom(4000))
    write(root / "bad/silent.wav", np.zeros(SR, np.float32))
    write(root / "bad/one_sample.wav", np.array([0.3], np.float32))
    write(root / "odd/eight_channels_96k.wav", np.tile(tone(523, 1.0, 96000)[:, None], (1, 8)), 96000)
    locked = write(root / "bad/locked.wav", tone(300))
    locked.chmod(0)


def test_hostile_folder_indexes_without_crash(tmp_path):
    _hostile_folder(tmp_path / "lib")
    report = build_index(tmp_path / "lib", tmp_path / "ix", show_progress=False)
    reasons = {s.path: s.reason for s in report.skipped}
    expected = {"bad/empty.wav": "empty", "bad/text.wav": "not a readable audio file",
                "bad/corrupt.ogg": "not a readable audio file", "bad/silent.wav": "silent",
                "bad/one_sample.wav": "too short"}
    if os.geteuid() != 0:
        expected["bad/locked.wav"] = "permission denied"
    for path, reason in expected.items():
        assert reason in reasons[path], (path, reasons.get(path))
    assert "bad/empty.wav: empty" in report.summary().replace("skipped ", "")
    session = QviSession(tmp_path / "ix")
    good = {h.relpath for h in session.search_file(tmp_path / "lib/good/tone.wav", top_k=10).hits}
    assert {"good/tone.wav", "good/chirp.flac", "odd/eight_channels_96k.wav"} <= good
    again = build_index(tmp_path / "lib", tmp_path / "ix", show_progress=False)
    assert again.embedded == 0 and len(again.skipped) == len(report.skipped)   # bad files not retried


def test_killing_qvi_index_midway_leaves_the_previous_index_usable(tmp_path, small_library):
    build_index(small_library, tmp_path / "ix", show_progress=False)
    before = ReferenceIndex.open(tmp_path / "ix")
    for i, rel in enumerate(sorted(DEMO_LIBRARY.rglob("*.ogg"))[:150]):
        (small_library / "more").mkdir(exist_ok=True)
        shutil.copy2(rel, small_library / "more" / f"{i:03d}.ogg")
    proc = subprocess.Popen([sys.executable, "-m", "qvi_app", "index", str(small_library), "--index",
                             str(tmp_path / "ix")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, buf, done = time.time() + 120, "", 0
    while time.time() < deadline and done < 60:   # well into the new files, before the end
        buf += proc.stderr.read(32)
        done = max([int(n) for n in re.findall(r"(\d+)/174", buf)] or [0])
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 60 <= done < 174, buf[-500:]
    after = ReferenceIndex.open(tmp_path / "ix")
    assert after.gen_dir == before.gen_dir and len(after) == 24
    assert np.array_equal(np.asarray(after.embeddings), np.asarray(before.embeddings))
    first = sorted(small_library.rglob("*.ogg"))[0]
    assert QviSession(tmp_path / "ix").search_file(first, top_k=1).hits[0].path == first   # still answers
    report = build_index(small_library, tmp_path / "ix", show_progress=False)   # and it recovers
    assert report.total == 174 and len(list((tmp_path / "ix").glob("gen-*"))) == 1


def test_unwritable_index_location_is_a_clear_error(tmp_path, small_library):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the index folder should go")
    with pytest.raises(LibraryIndexError, match="cannot write the index at"):
        build_index(small_library, blocker / "ix", show_progress=False)


def _synthetic_items(n: int, dim: int = 32, seed: int = 0):
    from qvi_app.index import IndexItem

    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    items = [IndexItem(f"c{i % 7}/s{i:06d}.wav", f"cat{i % 7}", 1.0 + i % 5, 44100, 10, 0.0, f"{i:064x}")
             for i in range(n)]
    return items, emb


def test_large_index_reads_only_the_rows_it_shows(tmp_path):
    """Opening builds no per-item objects: rows come from SQLite as asked for, categories from a
    column. Checked against the brute-force definition on 50,000 items."""
    from qvi_app.index.store import write_index

    items, emb = _synthetic_items(50_000)
    encoder = {"id": "t/1/x", "name": "t", "version": "1", "dim": 32}
    write_index(tmp_path / "ix", encoder=encoder, library_root=tmp_path, items=items, embeddings=emb, skipped=[])
    idx = ReferenceIndex.open(tmp_path / "ix")
    assert len(idx) == 50_000 and idx.categories() == {f"cat{c}": len(range(c, 50_000, 7)) for c in range(7)}
    q = emb[123] * 0.6 + emb[4567] * 0.4
    q /= np.linalg.norm(q)
    for cat in (None, "cat3"):
        rows = np.arange(50_000) if cat is None else np.arange(3, 50_000, 7)
        want = rows[np.argsort(-(emb[rows] @ q), kind="stable")[:10]]
        hits = idx.search(q, Filters(cat), 10)
        assert [h.row for h in hits] == list(want)
        assert [h.relpath for h in hits] == [items[r].path for r in want]
        assert all(h.category == items[h.row].category and h.duration == items[h.row].duration for h in hits)
    assert idx.items[-1] == items[-1] and idx.items[10:13] == items[10:13]
    assert idx.row_of(items[31_337].path) == 31_337 and idx.row_of(tmp_path / items[7].path) == 7
    with pytest.raises(LibraryIndexError, match="not in the library"):
        idx.row_of("c1/nothing.wav")
    assert sum(1 for _ in idx.items) == 50_000


def test_index_without_category_column_still_opens(tmp_path):
    """Indexes written by qvi 0.2.0 have no categories.npy: the column is read from SQLite."""
    from qvi_app.index.store import current_generation, write_index

    items, emb = _synthetic_items(300)
    write_index(tmp_path / "ix", encoder={"id": "t/1/x", "name": "t", "version": "1", "dim": 32},
                library_root=tmp_path, items=items, embeddings=emb, skipped=[])
    (current_generation(tmp_path / "ix") / "categories.npy").unlink()
    idx = ReferenceIndex.open(tmp_path / "ix")
    assert idx.categories()["cat0"] == 43 and {h.category for h in idx.search(emb[5], Filters("cat5"), 20)} == {"cat5"}


def test_category_column_that_does_not_fit_is_damage(tmp_path):
    from qvi_app.index.store import current_generation, write_index

    items, emb = _synthetic_items(300)
    write_index(tmp_path / "ix", encoder={"id": "t/1/x", "name": "t", "version": "1", "dim": 32},
                library_root=tmp_path, items=items, embeddings=emb, skipped=[])
    np.save(current_generation(tmp_path / "ix") / "categories.npy", np.full(300, 99, np.int32))
    with pytest.raises(LibraryIndexError, match="damaged"):
        ReferenceIndex.open(tmp_path / "ix")


def test_ranking_by_a_stored_embedding_warns_nothing():
    """More like this ranks by a row of the read-only memory map; torch warned of a non-writable
    array on the first such query of each process (a UserWarning in the log and the terminal).
    Its own process: torch says it once per process, so an earlier test could hide it here."""
    code = ("import warnings, numpy as np; warnings.simplefilter('error')\n"
            "from qvi_app.index.store import _scores\n"
            "m = np.ones((4, 3), np.float32)\n"
            "q = np.ones(3, np.float32); q.flags.writeable = False\n"
            "print(_scores(m, q).tolist())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[3.0, 3.0, 3.0, 3.0]", r.stderr[-800:]
