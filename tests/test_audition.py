"""What is heard, without a window (qvi_app/audition.py), on the test session's real (null) sound card."""

from __future__ import annotations

import queue
import time

import numpy as np
import pytest

from qvi_app.audition import MAX_PITCH, Audition
from qvi_app.index import SearchHit
from qvi_app.settings import AppSettings
from tests.conftest import tone

pytestmark = pytest.mark.slow          # a real (null) sound card: outside the fast tier


def _hit(name: str) -> SearchHit:
    return SearchHit(1, f"/lib/{name}", name, "test", 0.5, 4.0)


def _until(check, seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


@pytest.fixture
def audition(desktop):
    ended: queue.Queue[int] = queue.Queue()
    a = Audition(AppSettings(even_loudness=False), ended.put)
    yield a, ended
    a.stop()


def test_a_result_plays_on_from_where_it_is_at_another_pitch(audition):
    """]: the result playing starts again from its position, twice as fast an octave up; the
    replaced playback's end is not the end of the one playing; the query is never pitched."""
    a, ended = audition
    wave, sr = tone(440, 4.0), 16000
    first = a.play(_hit("a.wav"), wave, sr)
    assert a.playing.relpath == "a.wav" and a.player._rate == sr
    _until(lambda: a.position_s > 0.3)
    assert a.change_pitch(12) and a.pitch == 12 and a.speed == 2.0
    assert a.player._rate == 2 * sr and a.position_s >= 0.3               # on from where it was
    assert a.ticket == first + 1 and a.playing.relpath == "a.wav"
    replaced = ended.get(timeout=5)
    assert replaced == first and not a.ended(replaced) and a.playing is not None   # not the one playing
    assert a.pitch_words() == "12 semitones up ([ ] to change, \\ to reset)"
    assert not a.change_pitch(MAX_PITCH) or a.pitch == MAX_PITCH
    assert not a.change_pitch(1) and a.pitch == MAX_PITCH                  # at the limit: nothing changes
    assert a.change_pitch(0) and a.pitch == 0 and a.pitch_words() == ""
    query = a.play_query(tone(300, 1.0), sr)
    assert a.playing is None and a.player._rate == sr                      # as recorded
    a.stop()
    while ended.get(timeout=5) != query:                                  # the ends before it, then its own
        pass
    assert a.ended(query) and a.playing is None


def test_a_part_plays_and_loops_and_its_end_is_the_end(audition):
    a, ended = audition
    wave, sr = tone(440, 2.0), 16000
    a.set_loop(True)
    ticket = a.play(_hit("b.wav"), wave, sr, start_s=0.5, end_s=0.7, loop_from_s=0.4)
    assert a.player.loop and (a.player._end, a.player._loop_from) == (11200, 6400) and a.position_s >= 0.4
    assert a.change_pitch(-12) and a.player._loop_from == 6400 and a.player._end == 11200   # the part, lower
    a.set_loop(False)                                                       # the pass playing is the last
    assert not a.player.loop and not a.settings.loop_playback
    done = ended.get(timeout=5)
    while done != a.ticket:
        done = ended.get(timeout=5)
    assert done > ticket and a.ended(done) and a.playing is None


def test_the_volume_and_the_device_are_the_settings(audition):
    a, _ = audition
    a.set_volume(250)
    assert a.player.volume == a.settings.volume == 1.0
    a.set_volume(25)
    assert a.player.volume == pytest.approx(0.25)
    a.play(_hit("c.wav"), tone(440, 2.0), 16000)
    old = a.player
    a.use_device(None)
    assert a.player is not old and a.playing is None and not old.playing and a.player.volume == pytest.approx(0.25)


def test_at_one_loudness_a_quiet_result_is_raised_and_a_loud_one_lowered(desktop):
    from qvi_app.app import audition_gain

    quiet, loud = 0.01 * tone(440, 1.0), 0.9 * tone(440, 1.0)
    a = Audition(AppSettings(even_loudness=True), lambda t: None)
    assert np.allclose(a.leveled(quiet, 16000), quiet * audition_gain(quiet, 16000))
    assert np.abs(a.leveled(quiet, 16000)).max() > np.abs(quiet).max()
    assert np.abs(a.leveled(loud, 16000)).max() <= 1.0
    a.settings.even_loudness = False
    assert a.leveled(quiet, 16000) is quiet
