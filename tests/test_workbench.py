"""The window's logic without a display (qvi_app/workbench.py)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SR, tone, write
from qvi_app.app import build_index
from qvi_app.errors import DeviceError, QviError, StaleIndexError
from qvi_app.index import NO_FILTERS, Filters, Length, SkippedFile
from qvi_app.settings import AppSettings
from qvi_app.workbench import SPACE_GRACE_S, Workbench, device_advice


@pytest.fixture
def libraries(tmp_path):
    """Two small libraries (2dft indexes: quick to build)."""
    out = []
    for name, cats in (("one", ("low", "mid", "high")), ("two", ("low", "hum"))):
        lib = tmp_path / name
        for cat, base in zip(cats, (200, 700, 2500)):
            for i in range(4):
                write(lib / cat / f"{cat}{i}.wav", tone(base * (1 + 0.08 * i), 1.0) + 0.2 * tone(base * 2.1, 1.0))
        build_index(lib, tmp_path / f"ix-{name}", "2dft", show_progress=False)
        out.append(tmp_path / f"ix-{name}")
    return out


@pytest.fixture
def bench(tmp_path, libraries):
    b = Workbench(AppSettings(top_n=6), tmp_path / "data" / "feedback.sqlite")
    b.opened(b.open(libraries[0]))
    return b


def _search(b, freq=230.0):
    return b.searched(b.search(tone(freq, 1.2), SR), SR, "your recording")


def test_search_refine_and_a_new_library_runs_the_query_again(bench, libraries):
    result = _search(bench)
    assert len(result.hits) == 6 and bench.query.label == "your recording" and bench.query.seconds > 1
    mid = bench.refine(Filters("mid"))
    assert {h.category for h in mid.hits} == {"mid"} and bench.filters.category == "mid"
    assert len(bench.refine(Filters("mid"), top_n=2).hits) == 2 and bench.settings.top_n == 2
    assert bench.opened(bench.open(libraries[1])) is True             # the query is searched again there
    assert bench.result is None and bench.filters.category is None                 # "mid" is not a category there
    again = bench.searched(bench.search(bench.query.wave, bench.query.sr), bench.query.sr, bench.query.label)
    assert {h.path.parent.parent for h in again.hits} == {libraries[1].parent / "two"}


def test_a_name_filter_narrows_the_list_and_holds_through_ratings_and_more_like(bench):
    _search(bench)
    assert bench.prepare_name("HIGH") == 4 and bench.prepare_name(" ") is None
    named = bench.refine(Filters(name="HIGH2"))
    assert [h.relpath for h in named.hits] == ["high/high2.wav"] and bench.filters.name == "HIGH2"
    assert bench.refine(Filters("low", "high")).hits == []                    # both filters apply
    shown = bench.refine(Filters(name="mid"))
    assert {h.category for h in shown.hits} == {"mid"} and len(shown.hits) == 4
    rated = bench.rate(shown.hits[2], 1)
    assert rated.hits[0].relpath == shown.hits[2].relpath and {h.category for h in rated.hits} == {"mid"}
    saved = bench.feedback().ratings()[-1]
    assert (saved.result_path, saved.name_filter) == (str(shown.hits[2].path), "mid")   # the filter is kept with it
    similar = bench.more_like(shown.hits[1])
    assert {h.category for h in similar.hits} == {"mid"}
    assert len(bench.refine(NO_FILTERS).hits) == 6 and bench.filters.name is None       # cleared: the whole library again


def test_a_length_narrows_the_list_and_holds_through_more_like_back_and_another_library(tmp_path, libraries):
    """Sounds of 0.4, 2 and 6 s: a length keeps those of that length (the file's length, as the
    list shows it), with a category too; More like this and Back keep it; another library keeps
    it (a length means the same in every library, a category may not exist there)."""
    lib = tmp_path / "lengths"
    for cat, base in (("low", 220), ("high", 2200)):
        for seconds in (0.4, 2.0, 6.0):
            write(lib / cat / f"{cat}-{seconds:g}s.wav", tone(base * (1 + seconds / 10), seconds))
    build_index(lib, tmp_path / "ix-lengths", "2dft", show_progress=False)
    b = Workbench(AppSettings(top_n=6), tmp_path / "data" / "feedback.sqlite")
    b.opened(b.open(tmp_path / "ix-lengths"))
    first = _search(b)
    b.prepare_length()
    long_one = next(h for h in first.hits if h.duration > 5)
    b.rate(long_one, 1)                                         # liked before the length was chosen
    short = b.refine(Filters(length=Length(None, 1.0)))         # pinned, but not of that length: not shown
    assert sorted(h.relpath for h in short.hits) == ["high/high-0.4s.wav", "low/low-0.4s.wav"]
    assert all(h.duration == pytest.approx(0.4, abs=0.01) for h in short.hits)
    b.rate(short.hits[1], -1)
    assert b.feedback().ratings()[-1].length_filter == "under 1 s"       # kept with the rating
    assert b.result.hits[-1].rating == -1 and len(b.result.hits) == 2
    both = b.refine(Filters("high", length=Length(1.0, None)))
    assert sorted(h.relpath for h in both.hits) == ["high/high-2s.wav", "high/high-6s.wav"]
    like = b.more_like(both.hits[0])
    assert {h.relpath for h in like.hits} == {"high/high-2s.wav", "high/high-6s.wav"}
    b.refine(NO_FILTERS)
    assert len(b.result.hits) == 6
    b.back()
    assert b.filters == Filters("high", length=Length(1.0, None)) and len(b.result.hits) == 2
    none = b.refine(Filters("low", length=Length(10.0, None)))
    assert none.hits == [] and none.filters.nothing_found() == "no sound in low lasting 10 s or more"
    b.refine(Filters("high", length=Length(None, 1.0)))
    b.opened(b.open(libraries[0]))                              # 1 s tones only, and a "high" category too
    assert b.filters == Filters("high", length=Length(None, 1.0))
    again = b.searched(b.search(b.query.wave, b.query.sr), b.query.sr, b.query.label)
    assert again.hits == [] and b.refine(Filters(length=Length(0.5, 1.5))).hits


def test_a_part_of_the_query_is_searched_on_its_own(bench):
    """A take with a second try in it: the part selected on the query's plot (seconds on that
    plot) is the new query, and it finds what that part sounds like."""
    import numpy as np

    low, high = tone(210, 0.8) + 0.2 * tone(441, 0.8), tone(2500, 0.8) + 0.2 * tone(5250, 0.8)
    take = np.concatenate([low, np.zeros(int(0.1 * SR), np.float32), high])
    whole = bench.searched(bench.search(take, SR), SR, "your recording")
    seconds = bench.query.seconds
    part = bench.query_part(seconds - 0.7, seconds)                       # the last 0.7 s: the high tone
    assert part.label == "part of your recording" and abs(part.seconds - 0.7) < 0.01
    found = bench.searched(bench.search(part.wave, part.sr), part.sr, part.label)
    assert found.hits[0].category == "high" and found.hits[0].category != whole.hits[0].category
    again = bench.query_part(0.1, 0.4)                                    # a part of the part: one "part of"
    assert again.label == "part of your recording" and abs(again.seconds - 0.3) < 0.01
    with pytest.raises(QviError, match="at least"):
        bench.query_part(0.2, 0.25)


def test_learning_is_due_after_enough_liked_queries_and_again_after_more(bench):
    """Learning from ratings by itself: once 8 queries have a liked result (the adapter's
    minimum), then after every 4 more; never when switched off. The count is remembered."""
    def like(freq):
        result = bench.searched(bench.search(tone(freq, 1.0), SR), SR, f"take {freq}")
        bench.rate(result.hits[0], 1)

    for i in range(7):
        like(200 + 40 * i)
    bench.rate(bench.result.hits[-1], -1)                                  # a dislike is not a liked query
    assert not bench.learning_due()
    like(900)
    assert bench.learning_due()
    assert bench.learning_started() == 8 and bench.settings.learned_from == 8 and not bench.learning_due()
    for i in range(3):
        like(1000 + 50 * i)
    assert not bench.learning_due()
    like(1300)
    assert bench.learning_due()
    bench.settings.learn_automatically = False
    assert not bench.learning_due()


def test_the_libraries_indexed_here_are_listed_newest_first_and_a_broken_one_is_left_out(tmp_path, data_dir):
    """File > Libraries: every library indexed on this computer (its folder, its sounds) and the
    demo library, read from the indexes themselves, so nothing is remembered twice."""
    import os
    import time

    from qvi_app.app import known_libraries
    from qvi_app.paths import DEMO_INDEX, DEMO_LIBRARY

    libs = []
    for name, n in (("foley", 3), ("ambiences", 2)):
        for i in range(n):
            write(tmp_path / name / f"s{i}.wav", tone(300 + 100 * i, 0.5))
        build_index(tmp_path / name, None, "2dft", show_progress=False)        # into the data folder
        libs.append(tmp_path / name)
        time.sleep(0.05)
    broken = data_dir / "indexes" / "broken-0000-cnn"
    broken.mkdir(parents=True)
    (broken / "CURRENT").write_text("gen-1")                              # names a generation that is not there
    found = known_libraries()
    assert [(k.library, k.sounds) for k in found[:2]] == [(libs[1].resolve(), 2), (libs[0].resolve(), 3)]
    assert found[-1].index_dir == DEMO_INDEX and found[-1].library == DEMO_LIBRARY.resolve() and found[-1].sounds == 604
    assert len(found) == 3 and all(k.index_dir.is_dir() for k in found)
    os.utime(found[1].index_dir / "CURRENT")                                # opened or updated last
    assert known_libraries()[0].library == libs[0].resolve()


def test_ratings_rerank_at_once_and_the_original_comes_back(bench):
    first = _search(bench)
    liked, disliked = first.hits[3], first.hits[0]
    bench.rate(liked, 1)
    shown = bench.rate(disliked, -1)
    assert (shown.hits[0].relpath, shown.hits[0].rating) == (liked.relpath, 1)
    assert (shown.hits[-1].relpath, shown.hits[-1].rating) == (disliked.relpath, -1)
    assert bench.reranked and [r.rating for r in bench.feedback().ratings()] == [1, -1]
    assert bench.refine(Filters("low")).hits[0].rating in (0, 1)                   # ratings still apply after a filter
    bench.refine(NO_FILTERS)
    assert bench.original_ranking() is bench.base and not bench.reranked
    assert bench.rating_of(liked) == 1
    _search(bench, 700)
    assert bench.ratings == {}                                             # a new query starts afresh


def test_the_same_rating_again_takes_it_back(bench):
    """A ▲ given by mistake pinned the sound on top and taught the adapter for good: there was
    no way to take a rating back. The same rating again clears it, everywhere."""
    first = _search(bench)
    liked, disliked = first.hits[3], first.hits[0]
    bench.rate(liked, 1)
    bench.rate(disliked, -1)
    shown = bench.rate(liked, 1)                                           # again: taken back
    assert bench.rating_of(liked) == 0 and liked.relpath not in bench.ratings
    assert [(r.result_path, r.rating) for r in bench.feedback().ratings()] == [(str(disliked.path), -1)]
    assert all(h.rating == 0 for h in shown.hits if h.relpath == liked.relpath)
    assert shown.hits[-1].relpath == disliked.relpath and bench.reranked  # the other rating still holds
    shown = bench.rate(disliked, -1)
    assert bench.feedback().ratings() == [] and shown is bench.base and not bench.reranked
    assert [h.relpath for h in shown.hits] == [h.relpath for h in first.hits]


def test_more_like_this_puts_the_sound_first_and_keeps_the_filter(bench):
    first = _search(bench)
    target = first.hits[2]
    similar = bench.more_like(target)
    assert similar.hits[0].relpath == target.relpath and bench.similar_to == target
    assert all(h.category == "high" for h in bench.refine(Filters("high")).hits)
    assert bench.query.label == "your recording"            # the imitation is still there to search again


def test_more_like_several_sounds_ranks_by_what_they_share(bench):
    """Several results picked (Ctrl+click) and M: the library ranked by the mean of their stored
    embeddings, the picked sounds first; the filters still apply, and Back and Forward keep it."""
    listed = bench.refine(Filters(name="0.wav"))                      # low0, mid0, high0: no query needed
    low, high = (next(h for h in listed.hits if h.category == c) for c in ("low", "high"))
    both = bench.more_like(low, also=(high,))
    assert {h.relpath for h in both.hits[:2]} == {low.relpath, high.relpath}
    assert bench.similar_to == low and bench.similar_also == (high,) and not bench.listing
    index = bench.session.index
    mean = index.vector(low.row) + index.vector(high.row)
    want = [h.relpath for h in index.search(mean / np.linalg.norm(mean), Filters(name="0.wav"), top_k=6)]
    assert [h.relpath for h in both.hits] == want                       # as the definition ranks them
    narrowed = bench.refine(Filters("high", "0.wav"))
    assert [h.relpath for h in narrowed.hits] == ["high/high0.wav"] and bench.similar_also == (high,)
    single = bench.more_like(high)
    assert single.hits[0].relpath == high.relpath and bench.similar_also == ()
    bench.back()
    assert bench.similar_to == low and bench.similar_also == (high,)
    with pytest.raises(QviError, match="one sound"):
        bench.more_like(low, part=(0.1, 0.5), also=(high,))


def test_space_after_the_automatic_stop_is_not_a_new_recording():
    now = [100.0]
    b = Workbench(AppSettings(), None, clock=lambda: now[0])
    assert b.space() == "start"
    b.recording_started()
    assert b.space() == "stop"
    b.recording_stopped(by_itself=True)
    now[0] += 0.8
    assert b.space() == "ignore"                                           # meant as "stop"
    assert b.space() == "start"                                            # the next one is a real start
    b.recording_stopped(by_itself=True)
    now[0] += SPACE_GRACE_S + 0.1
    assert b.space() == "start"


def test_messages_clear_on_success_but_skipped_files_stay_listed(bench, tmp_path):
    bench.failed(QviError("query: the recording is silent"))
    assert bench.notice.error and bench.notice.text == "the recording is silent"
    _search(bench)
    assert bench.notice is None                                            # a later success clears it
    skipped = [SkippedFile(f"junk/{i}.wav", 1, 0.0, "silent") for i in range(5)]
    n = bench.indexed(skipped)
    assert n.action == "Show skipped files" and len(n.details) == 5 and "and 3 more" in n.text
    bench.opened(bench.session)
    assert bench.notice is n                                               # still visible after the library opens
    stale = bench.library_failed(tmp_path, StaleIndexError("built by x"))
    assert stale.action == "Rebuild index"
    with pytest.raises(QviError, match="imitate a sound"):
        Workbench(AppSettings(), tmp_path / "fb.sqlite").rate(None, 1)


def test_device_errors_are_plain_words():
    raw = DeviceError("the microphone cannot be opened: Illegal combination of I/O devices [PaErrorCode -9993]")
    assert "Audio ▸ Devices" in device_advice(raw) and "PaErrorCode" not in device_advice(raw)
    b = Workbench(AppSettings(), None)
    assert "PaErrorCode" not in b.failed(raw).text
    assert b.failed(ValueError("boom")).text.startswith("Something went wrong inside qvi")
    assert Workbench(AppSettings(), None).status_line() == "no library open"
    assert device_advice(DeviceError("no microphone found")) == "no microphone found"


def test_the_status_line_names_the_model_in_words(bench, tmp_path):
    line = bench.status_line(12.0)
    assert "model: CQT/2DFT" in line and "12 sounds in 3 categories" in line and "last query 12 ms" in line
    write(tmp_path / "single" / "take.wav", tone(440, 1.0))                  # a field recorder's one take
    build_index(tmp_path / "single", tmp_path / "ix-single", "2dft", show_progress=False)
    bench.opened(bench.open(tmp_path / "ix-single"))
    assert bench.status_line().startswith("1 sound in 1 category  ·  "), bench.status_line()


def test_a_damaged_settings_file_keeps_what_is_usable_and_defaults_the_rest(data_dir):
    """settings.json edited by hand, or written by another version: a number where a path was
    stopped the window at start with a TypeError traceback."""
    import json

    AppSettings.path().parent.mkdir(parents=True, exist_ok=True)
    AppSettings.path().write_text(json.dumps({
        "index_dir": 42, "top_n": "abc", "volume": "loud", "even_loudness": "no", "max_record_s": -5,
        "input_device": [1, 2], "learned_from": 3.5, "use_adapter": 1,              # wrong type or out of range
        "output_device": 4, "last_folder": "/tmp", "learn_automatically": False, "future_setting": 1}))
    s, d = AppSettings.load(), AppSettings()
    assert (s.index_dir, s.top_n, s.volume, s.even_loudness, s.max_record_s, s.input_device, s.learned_from,
            s.use_adapter) == (d.index_dir, d.top_n, d.volume, d.even_loudness, d.max_record_s, d.input_device,
                               d.learned_from, d.use_adapter)
    assert (s.output_device, s.last_folder, s.learn_automatically) == (4, "/tmp", False)       # kept
    AppSettings.path().write_text('{"volume": 0.5, "top_n": 50}')
    assert (AppSettings.load().volume, AppSettings.load().top_n) == (0.5, 50)
    for text in ("[1, 2]", "null", "{", ""):
        AppSettings.path().write_text(text)
        assert AppSettings.load() == AppSettings()


def test_a_part_of_a_sound_is_saved_with_its_credit_when_it_is_a_demo_sound(bench, tmp_path):
    import csv

    import soundfile as sf

    from qvi_app.paths import DEMO_LIBRARY

    said = bench.save_part(DEMO_LIBRARY / "birds/peacock_call_01.ogg", 0.3, 1.3, tmp_path / "out" / "peacock part.wav")
    assert abs(sf.info(tmp_path / "out" / "peacock part.wav").duration - 1.0) < 0.01
    (row,) = csv.DictReader(open(tmp_path / "out" / "ATTRIBUTION.csv", encoding="utf-8"))
    assert row["file"] == "peacock part.wav" and row["author"] and row["license"] and row["author"] in said
    mine = write(tmp_path / "mine.wav", tone(300, 2.0), SR)
    said = bench.save_part(mine, 0.0, 0.5, tmp_path / "own" / "mine part.wav")
    assert "saved 0.50 s of mine.wav" in said and not (tmp_path / "own" / "ATTRIBUTION.csv").exists()


def test_the_query_is_saved_as_searched_and_a_loud_one_is_not_clipped(bench, tmp_path):
    import numpy as np
    import soundfile as sf

    with pytest.raises(QviError, match="no query to save yet"):
        bench.save_query(tmp_path / "none.wav")
    _search(bench)
    said = bench.save_query(tmp_path / "takes" / "vroom.wav")
    saved, sr = sf.read(tmp_path / "takes" / "vroom.wav", dtype="float32")
    assert sr == bench.query.sr and sf.info(tmp_path / "takes" / "vroom.wav").subtype == "PCM_24"
    assert np.abs(saved - bench.query.wave).max() < 1e-5                   # the samples searched, not the recording
    assert said.startswith(f"saved the query ({bench.query.seconds:.2f} s, your recording)")
    loud = 3.0 * tone(230.0, 1.2)                                        # a float file opened as the query
    bench.searched(bench.search(loud, SR), SR, "loud.wav")
    bench.save_query(tmp_path / "loud.wav")
    saved, _ = sf.read(tmp_path / "loud.wav", dtype="float32")
    assert sf.info(tmp_path / "loud.wav").subtype == "FLOAT" and np.abs(saved - bench.query.wave).max() < 1e-6
    (tmp_path / "a file").write_text("")
    with pytest.raises(QviError, match="cannot save the query here"):
        bench.save_query(tmp_path / "a file" / "under it.wav")
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == ["loud.wav"]      # nothing half-written


def test_a_part_written_ahead_is_moved_into_place_by_its_drag(bench, tmp_path, monkeypatch):
    """A part selected is written ahead (a worker's job) in parts/.ready; its drag only moves it
    (credit and all), and only the part selected last is kept there. A drag of another part, or
    after the file went, writes it then, as before; closing removes what is left ahead."""
    import csv

    import soundfile as sf

    import qvi_app.workbench as wb
    from qvi_app.paths import DEMO_LIBRARY

    peacock = DEMO_LIBRARY / "birds/peacock_call_01.ogg"
    parts = tmp_path / "parts"
    first, second = parts / "peacock 0.30-1.30 s.wav", parts / "peacock 0.50-1.00 s.wav"
    (parts / ".ready").mkdir(parents=True)
    (parts / ".ready" / "left by a crash.wav").write_bytes(b"RIFF")
    bench.prepare_part(peacock, 0.3, 1.3, first)
    bench.prepare_part(peacock, 0.5, 1.0, second)
    assert sorted(p.name for p in (parts / ".ready").iterdir()) == [second.name]
    decoded = []
    monkeypatch.setattr(wb, "save_region", lambda *a: decoded.append(a) or 0.0)
    said = bench.drag_part(peacock, 0.5, 1.0, second)
    assert decoded == [] and abs(sf.info(second).duration - 0.5) < 0.01 and "saved 0.50 s of peacock" in said
    (row,) = csv.DictReader(open(parts / "ATTRIBUTION.csv", encoding="utf-8"))
    assert row["file"] == second.name and row["license"] and list((parts / ".ready").iterdir()) == []
    bench.drag_part(peacock, 0.3, 1.3, first)                   # nothing ahead for it: written now
    assert len(decoded) == 1 and decoded[0][1:3] == (0.3, 1.3)
    monkeypatch.undo()
    bench.prepare_part(peacock, 0.3, 1.3, first)
    bench.drag_part(peacock, 0.3, 1.4, parts / "peacock 0.30-1.40 s.wav")   # another part: the one ahead goes
    assert list((parts / ".ready").iterdir()) == [] and (parts / "peacock 0.30-1.40 s.wav").is_file()
    bench.prepare_part(peacock, 0.3, 1.3, first)
    (parts / ".ready" / first.name).unlink()                    # gone meanwhile: written now
    assert "saved 1.00 s" in bench.drag_part(peacock, 0.3, 1.3, first) and first.is_file()
    # heard an octave down: the part written ahead is the one heard, and one at another pitch is not it
    low = parts / "peacock 0.50-1.00 s -12 st.wav"
    bench.prepare_part(peacock, 0.5, 1.0, low, -12)
    monkeypatch.setattr(wb, "save_region", lambda *a: decoded.append(a) or 0.0)
    said = bench.drag_part(peacock, 0.5, 1.0, low, -12)
    assert len(decoded) == 1 and abs(sf.info(low).duration - 1.0) < 0.01
    assert "saved 1.00 s of peacock_call_01.ogg (-12 st, as heard)" in said
    monkeypatch.undo()
    bench.prepare_part(peacock, 0.5, 1.0, second, -12)
    monkeypatch.setattr(wb, "save_region", lambda *a: decoded.append(a) or 0.0)
    bench.drag_part(peacock, 0.5, 1.0, second)                  # at its own pitch now: written now
    assert len(decoded) == 2 and decoded[1][1:] == (0.5, 1.0, second, 0)
    monkeypatch.undo()
    bench.prepare_part(peacock, 0.5, 1.0, second)
    bench.close()
    assert list((parts / ".ready").iterdir()) == []


def test_more_like_a_part_of_a_sound_finds_what_that_part_sounds_like(tmp_path):
    """A long take with a low hum, then a high whistle: more like its second half ranks the high
    sounds first, more like the whole sound ranks itself first; a filter keeps the part."""
    import numpy as np

    lib = tmp_path / "lib"
    for cat, base in (("low", 200), ("high", 2500)):
        for i in range(3):
            write(lib / cat / f"{cat}{i}.wav", tone(base * (1 + 0.08 * i), 1.0) + 0.2 * tone(base * 2.1, 1.0))
    take = np.concatenate([tone(210, 2.0) + 0.2 * tone(441, 2.0), tone(2600, 1.0) + 0.2 * tone(5460, 1.0)])
    write(lib / "takes" / "take.wav", take)
    build_index(lib, tmp_path / "ix", "2dft", show_progress=False)
    b = Workbench(AppSettings(top_n=7), tmp_path / "data" / "feedback.sqlite")
    b.opened(b.open(tmp_path / "ix"))
    whole = b.session.similar(lib / "takes" / "take.wav", top_k=7)
    hit = whole.hits[0]
    assert hit.relpath == "takes/take.wav"
    part = b.more_like(hit, (2.0, 3.0))
    assert [h.category for h in part.hits[:3]] == ["high"] * 3 and b.similar_part == (2.0, 3.0)
    assert [h.category for h in b.refine(Filters("low")).hits] == ["low"] * 3      # a filter: the part still ranks
    assert b.refine(NO_FILTERS).hits[0].category == "high"
    with pytest.raises(QviError, match="longer part"):
        b.more_like(hit, (1.0, 1.05))
    assert b.more_like(hit).hits[0].relpath == "takes/take.wav" and b.similar_part is None


def test_back_returns_to_the_lists_before_as_they_were(bench, libraries):
    """Imitation → more like the third → more like its second → Back, Back: each list comes back
    with its query, filter and ratings, as a browser's Back does."""
    first = _search(bench)
    bench.rate(first.hits[1], 1)
    shown_first = [h.relpath for h in bench.result.hits]
    bench.refine(Filters("mid"))
    filtered = [h.relpath for h in bench.result.hits]
    like = bench.more_like(bench.result.hits[2])
    bench.more_like(like.hits[1])
    assert bench.similar_to.relpath == like.hits[1].relpath and len(bench.history) == 2
    back = bench.back()
    assert [h.relpath for h in back.hits] == [h.relpath for h in like.hits] and bench.similar_to.relpath == filtered[2]
    back = bench.back()
    assert [h.relpath for h in back.hits] == filtered and bench.filters.category == "mid"
    assert bench.ratings == {first.hits[1].relpath: 1} and bench.similar_to is None
    assert bench.query.label == "your recording" and bench.reranked
    assert bench.back() is None and bench.history == []
    assert bench.refine(NO_FILTERS) and [h.relpath for h in bench.result.hits] == shown_first   # still the same query
    _search(bench, 700)
    assert len(bench.history) == 1                                         # a new query: Back returns to this one
    bench.opened(bench.open(libraries[1]))
    assert bench.history == []                                             # another library: its lists are gone


def test_forward_undoes_back_until_a_new_list_is_made(bench):
    """Back, Back, Forward, Forward: the lists come again in order, each as it was left (a rating
    given after going back is kept); a new list after Back drops what was ahead, as a browser does."""
    first = _search(bench)
    like = bench.more_like(first.hits[2])
    bench.more_like(like.hits[1])
    third = [h.relpath for h in bench.result.hits]
    assert bench.forward() is None                                         # nothing ahead yet
    bench.back()
    bench.rate(bench.result.hits[3], -1)                                   # the second list, rated now
    rated = [h.relpath for h in bench.result.hits]
    bench.back()
    assert bench.similar_to is None and len(bench.future) == 2
    again = bench.forward()
    assert [h.relpath for h in again.hits] == rated and bench.ratings == {like.hits[3].relpath: -1}
    assert bench.similar_to.relpath == first.hits[2].relpath
    assert [h.relpath for h in bench.forward().hits] == third and bench.forward() is None
    assert len(bench.history) == 2 and bench.future == []
    bench.back()
    bench.more_like(bench.result.hits[0])                                  # a new list: the third is gone
    assert bench.future == [] and bench.forward() is None and len(bench.history) == 2
    bench.back()
    _search(bench, 700)                                                    # a new query does the same
    assert bench.future == []
    bench.back()
    assert len(bench.future) == 1
    bench.opened(bench.open(bench.session.index_dir))                      # a library opened: none ahead
    assert bench.future == [] and bench.forward() is None


def test_back_holds_a_bounded_amount_of_query_audio(bench, monkeypatch):
    import qvi_app.workbench as wb

    monkeypatch.setattr(wb, "HISTORY_AUDIO_BYTES", 3 * 4 * int(1.2 * SR) + 100)   # three 1.2 s queries
    for i in range(8):
        _search(bench, 230 + 10 * i)
    kept = len(bench.history)
    assert 1 <= kept <= 3 and bench._history_audio_bytes() <= wb.HISTORY_AUDIO_BYTES   # not all 7 queries
    for _ in range(4):
        bench.more_like(bench.result.hits[0])                              # one query's lists share its audio:
    assert len(bench.history) == kept + 3                                  # one older query gave way, not four
    assert len({id(v.query.wave) for v in bench.history[-4:]}) == 1
    for i in range(30):
        bench.more_like(bench.result.hits[1])
    assert len(bench.history) == wb.HISTORY


def test_time_left_follows_the_pace_since_work_began_and_says_it_plainly():
    """Indexing a large library takes minutes to hours: the window says about how long is left,
    from the pace so far (not counting what an earlier run or the old index already did)."""
    from qvi_app.workbench import TimeLeft, say_duration

    now = [100.0]
    left = TimeLeft(clock=lambda: now[0])
    assert left(5000, 50_000) is None                                      # resumed at 5,000: no pace yet
    now[0] += 2.0
    assert left(5040, 50_000) is None                                      # too soon to say
    now[0] += 8.0
    assert left(5300, 50_000) == pytest.approx((50_000 - 5300) / 30.0)   # 300 files in 10 s
    now[0] += 10.0
    assert left(50_000, 50_000) == 0
    assert left(10, 20) is None                                            # a new job: a new pace
    assert [say_duration(s) for s in (4, 44, 95, 61 * 60, 4 * 3600 + 50 * 60)] == \
        ["a few seconds", "about 40 s", "about 2 min", "about 1 h 1 min", "about 4 h 50 min"]


def test_where_a_long_result_matches_is_found_once_per_query_and_sound(bench, monkeypatch):
    """Only a result several times as long as the query is searched for its match; going back
    to it finds the match kept, until another query."""
    import numpy as np

    hit = _search(bench).hits[0]                     # a 1.2 s query: 1.2 s windows
    assert not bench.locates(2.0) and bench.locates(2.4)
    assert bench.where_it_matches(hit, tone(230.0, 2.0), SR) is None
    calls = []
    real = bench.session.where_it_matches
    monkeypatch.setattr(bench.session, "where_it_matches", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    wave = np.concatenate([tone(2500.0, 3.0), 0 * tone(1, 3.0), tone(230.0, 1.2)])
    first = bench.where_it_matches(hit, wave, SR)
    assert first is not None and len(first.centres) > 5 and np.isneginf(first.scores).any()   # the silence
    assert bench.where_it_matches(hit, wave, SR) is first and len(calls) == 1
    assert bench.where_it_matches(hit, wave, SR, stop=lambda: True) is first           # kept: nothing to stop
    bench.opened(bench.session)                      # the library opened again (re-indexed, say): found anew
    bench.searched(bench.search(tone(230.0, 1.2), SR), SR, "again")
    assert bench.where_it_matches(hit, wave, SR) is not first and len(calls) == 2
    _search(bench, 700.0)
    assert bench.where_it_matches(bench.result.hits[0], wave, SR, stop=lambda: True) is None and len(calls) == 3


def test_words_or_a_category_without_an_imitation_list_the_sounds_they_keep(bench):
    """Before any imitation, narrowing the library lists the sounds it keeps in the library's
    order (browsing by name, category or length); clearing the filters ends the list; an
    imitation then ranks within them, and Back returns to the list; More like this works from it."""
    assert bench.refine(NO_FILTERS) is None and bench.result is None          # nothing to list
    listed = bench.refine(Filters(name="high"))
    assert [h.relpath for h in listed.hits] == [f"high/high{i}.wav" for i in range(4)]
    assert bench.listing and listed.listed == 4 and all(h.score != h.score for h in listed.hits)   # no score
    assert "4 sounds" in bench.status_line() and "imitate" in bench.status_line()
    shown = bench.refine(Filters(), top_n=3)                                   # filters cleared: no list
    assert shown is None and bench.result is None and not bench.listing
    some = bench.refine(Filters("mid"))
    assert [h.relpath for h in some.hits] == [f"mid/mid{i}.wav" for i in range(3)] and some.listed == 4
    assert "3 of 4 sounds" in bench.status_line()
    with pytest.raises(QviError, match="imitate"):                              # a rating needs a query
        bench.rate(some.hits[0], 1)
    like = bench.more_like(some.hits[1])
    assert like.hits[0].relpath == "mid/mid1.wav" and not bench.listing
    assert bench.back() is some and bench.listing
    ranked = _search(bench, 700.0)
    assert not bench.listing and {h.category for h in ranked.hits} == {"mid"}
    assert bench.back() is some and bench.listing and bench.query is None
    assert bench.refine(Filters("mid"), top_n=6).listed == 4                   # a listing refined stays one
