"""What is heard: one sound at a time through the output device, at one pitch and one loudness.

The window's audition state, without Tk (as :mod:`qvi_app.workbench` is its search state): which
result is playing, the pitch results play at (like tape, [ and ] in the window: a roar heard an
octave down before it goes into an edit), what was last started (so that a pitch change goes on
from where the sound is), and a ticket for each playback, so that the end of a playback that was
replaced is not taken for the end of the one playing now. The window draws what this says
(the playing row, the playhead, the caption) and hands the end of a playback to its own thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qvi_app.app import audition_gain
from qvi_app.audio.devices import Player
from qvi_app.errors import counted
from qvi_app.index import SearchHit
from qvi_app.settings import AppSettings

#: How far the pitch goes: two octaves either way (a quarter and four times the speed).
MAX_PITCH = 24


@dataclass(frozen=True)
class _Started:
    """A result's playback as it was started, to start again at another pitch."""

    hit: SearchHit
    wave: np.ndarray
    sr: int
    end_s: float | None
    loop_from_s: float             # where a loop goes back to (the start, unless given)


class Audition:
    """Plays results and the query on one :class:`~qvi_app.audio.devices.Player`.

    ``on_end(ticket)`` runs on the audio thread when a playback ends or is stopped; the window
    posts it to its own thread and calls :meth:`ended` with it."""

    def __init__(self, settings: AppSettings, on_end: Callable[[int], None]):
        self.settings = settings
        self._on_end = on_end
        self.player = Player(settings.output_device, settings.volume)
        #: The result playing (None: nothing, or the query).
        self.playing: SearchHit | None = None
        #: Semitones results play up (+) or down (-) at, their length with it. Not remembered.
        self.pitch = 0
        self.ticket = 0                         # the playback started last
        self._started: _Started | None = None

    @property
    def speed(self) -> float:
        return 2.0 ** (self.pitch / 12)

    @property
    def position_s(self) -> float:
        return self.player.position_s

    def leveled(self, wave: np.ndarray, sr: int) -> np.ndarray:
        """``wave`` at one loudness (Audio ▸ Play at one loudness): a quiet match heard as well as a
        loud one, and the query as loud as the results, to compare them by ear (audio/level.py)."""
        return wave * audition_gain(wave, sr) if self.settings.even_loudness else wave

    def play(self, hit: SearchHit, wave: np.ndarray, sr: int, start_s: float = 0.0, end_s: float | None = None,
             loop_from_s: float | None = None) -> int:
        """Play a result (levelled, looped when the settings say so, at :attr:`pitch`) from
        ``start_s``; with ``end_s``, only up to there (a part, looped from ``loop_from_s``).
        Returns its ticket; raises QviError when the device refuses."""
        ticket = self._start(wave, sr, start_s=start_s, loop=self.settings.loop_playback, end_s=end_s,
                             loop_from_s=loop_from_s, speed=self.speed)
        self._started = _Started(hit, wave, sr, end_s, start_s if loop_from_s is None else loop_from_s)
        self.playing = hit
        return ticket

    def play_query(self, wave: np.ndarray, sr: int) -> int:
        """The query, as recorded (never at another pitch: it is what the results are compared
        with) and levelled like the results."""
        ticket = self._start(wave, sr)
        self.playing = self._started = None
        return ticket

    def _start(self, wave: np.ndarray, sr: int, **how) -> int:
        self.ticket += 1
        ticket = self.ticket
        self.player.play(self.leveled(wave, sr), sr, on_done=lambda: self._on_end(ticket), **how)
        return ticket

    def ended(self, ticket: int) -> bool:
        """A playback ended: True when it is the one playing now (which then plays no more);
        False for one that another replaced."""
        if ticket != self.ticket:
            return False
        self.playing = None
        return True

    def stop(self) -> None:
        self.player.stop()
        self.playing = None

    def change_pitch(self, step: int) -> bool:
        """Results play ``step`` semitones higher (lower when negative; 0: at their own pitch
        again), within :data:`MAX_PITCH`; a result playing goes on from where it is at the new
        pitch. False when the pitch stays (at a limit already)."""
        pitch = 0 if step == 0 else max(-MAX_PITCH, min(MAX_PITCH, self.pitch + step))
        if pitch == self.pitch:
            return False
        self.pitch = pitch
        s = self._started
        if self.playing is not None and s is not None and self.player.playing:
            self.play(s.hit, s.wave, s.sr, start_s=self.player.position_s, end_s=s.end_s, loop_from_s=s.loop_from_s)
        return True

    def pitch_words(self) -> str:
        """The pitch in words ("2 semitones down ..."), "" at the sounds' own pitch."""
        if not self.pitch:
            return ""
        return (f"{counted(abs(self.pitch), 'semitone')} {'up' if self.pitch > 0 else 'down'} "
                "([ ] to change, \\ to reset)")

    def set_loop(self, on: bool) -> None:
        """Loop playback (L), applied to the result playing at once; off, its pass is the last."""
        self.settings.loop_playback = on
        if self.playing is not None:
            self.player.loop = on

    def set_volume(self, percent: float) -> None:
        self.player.volume = self.settings.volume = max(0.0, min(percent / 100.0, 1.0))

    def use_device(self, device: str | None) -> None:
        """Another output device (a lost one comes back when chosen again): what plays stops."""
        self.stop()
        self.settings.output_device = device
        self.player = Player(device, self.settings.volume)


__all__ = ["MAX_PITCH", "Audition"]
