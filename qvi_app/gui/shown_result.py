"""The window's selected result: its plots and facts, hearing it (from a point, a part, looped,
at another pitch), where a long one matches the query (J), zooming into it (Z), and a part of it
saved or dragged out.

A part of :class:`~qvi_app.gui.window.QviWindow` (a mixin: the window is one object to its menus,
keys and tests), kept apart because it is one idea. What is heard and at which pitch is the
tk-free :class:`~qvi_app.audition.Audition`; where a long sound matches and how a part is written
are the :class:`~qvi_app.workbench.Workbench`'s; here they run on workers and are drawn.
"""

from __future__ import annotations

import logging
from pathlib import Path
from tkinter import filedialog

import numpy as np

from qvi_app import app
from qvi_app.audio.load import file_facts, to_mono
from qvi_app.audio.tags import shortened
from qvi_app.credits import credit_line
from qvi_app.errors import QviError
from qvi_app.paths import data_dir

log = logging.getLogger("qvi.gui")


def _part_name(hit, part: tuple[float, float], semitones: int) -> str:
    """A saved part's file name: "dog_bark 1.20-2.05 s", "dog_bark 1.20-2.05 s -12 st"."""
    return f"{hit.path.stem} {part[0]:.2f}-{part[1]:.2f} s" + (f" {semitones:+d} st" if semitones else "")


class ShownResultMixin:
    def _init_shown_result(self) -> None:
        self._quiet_hit = None   # the best match, selected for display after a search, not auditioned
        self._shown_wave: tuple[app.SearchHit, np.ndarray, int] | None = None     # its waveform, as heard
        self._part_ahead: tuple | None = None        # the part (and pitch) last written ahead of a drag
        self._match_token = 0                         # the long result whose match is being found

    def _on_select(self, _event=None) -> None:
        hit = self.results.selection_added()
        if hit is None:
            return
        plays = hit is not self._quiet_hit
        if plays:
            self._quiet_hit = None
        self.tasks.submit(lambda: self._load_hit(hit), lambda loaded: self._hit_loaded(hit, loaded, plays),
                          self._search_failed)

    def _load_hit(self, hit):
        """A result's audio as it is heard (a stereo file in stereo), its plot and its facts."""
        wave, sr = self.session.load_reference(hit, stereo=True)
        told = hit.description and f"“{shortened(hit.description, 90)}”"      # as indexed, as the list shows it
        about = tuple(x for x in (file_facts(hit.path), credit_line(hit.path), told) if x)
        return wave, sr, app.spectrogram(to_mono(wave), sr), about

    def _hit_loaded(self, hit, loaded, play: bool) -> None:
        wave, sr, spec, about = loaded
        if self.results.selected() is not hit:
            return
        scored = f" · {hit.score:.3f}" if np.isfinite(hit.score) else ""            # a listing has no scores
        self.spectrograms.show("result", spec, f"#{hit.rank} {hit.path.name} · {hit.category}{scored}", about)
        self.spectrograms.show_wave(wave, sr)
        self._shown_wave = (hit, wave, sr)
        self._find_match(hit, wave, sr)
        if play:
            self._play(hit, wave, sr)

    def _find_match(self, hit, wave, sr: int) -> None:
        """A long result: where in it the query matches, found on a worker (1.5 s for 30 s of sound,
        7 s for ten minutes to the best place, 9 s to all, on 2 cores) and outlined on its
        waveform; J plays it."""
        self._match_token += 1
        token = self._match_token
        if not self.bench.locates(len(wave) / sr):
            return
        self.spectrograms.show_match(None, finding=True)
        best_first = lambda match: self.tasks.post(self._match_found, token, hit, match, None, True)   # noqa: E731
        self.tasks.submit(lambda: self.bench.where_it_matches(hit, wave, sr, stop=lambda: token != self._match_token,
                                                              on_best=best_first),
                          lambda match: self._match_found(token, hit, match),
                          lambda exc: self._match_found(token, hit, None, exc))

    def _match_found(self, token: int, hit, match, exc: BaseException | None = None, more: bool = False) -> None:
        """The match shown; ``more``: its best place only, the others still being found (a long
        sound: its best place shows about 2 s sooner in ten minutes)."""
        if token != self._match_token or not self._showing_selected() or self._shown_wave[0] is not hit:
            return                                  # another sound is shown now
        self.spectrograms.show_match(match, finding=more)
        if exc is not None:
            self._failed(exc, "Where the query matches in this sound was not found: ")

    def play_match(self) -> None:
        """J: the part of a long result where the query matches best, selected (to drag out, save
        with Ctrl+S or search more like it with M) and played; J again: the next place it matches
        (a dog that barks three times in a minute of farmyard), back to the best after the last."""
        wave = self.spectrograms.wave
        match = wave.match if self._showing_selected() else None
        if match is None:
            self.say("still finding where the query matches in this sound…" if self._showing_selected() and wave.finding
                     else "J plays where a long result matches the query: select one several times as long as the query")
            return
        k, (start, end) = (0, match.best) if wave.finding else match.place_after(wave.selection)
        view = self.spectrograms.view
        if (there := view.showing(start, end)) != view:       # zoomed elsewhere: the view goes to the place
            self.spectrograms.set_view(there)
        wave.select_part((start, end))
        many = len(wave.places)
        if many > 1 and self.playing is self._shown_wave[0]:
            self.say(f"{'best match' if k == 0 else f'match {k + 1} of {many}'}: {start:.1f}–{end:.1f} s of "
                     f"{self._shown_wave[0].path.name}  ·  J: the next  ·  Ctrl+S saves it")

    def zoom(self) -> None:
        """Z: the result's spectrogram and waveform zoomed to the part dragged across it (or where a
        long result matches), to see and drag across what is a few pixels of the whole sound;
        again: the whole sound. The wheel over them zooms anywhere."""
        wave = self.spectrograms.wave
        part = wave.selection or (wave.match.best if wave.match is not None else None)
        view = self.spectrograms.view.toggled(part) if self._showing_selected() and wave.seconds else None
        if view is None:
            self.say("Z zooms into a result's plots: drag across its waveform first (a long result's best match "
                     "needs no drag), or turn the mouse wheel over them")
            return
        self.spectrograms.set_view(view)

    def _showing_selected(self) -> bool:
        """The waveform shown is the selected result's (not another's, the selected one loading)."""
        return self._shown_wave is not None and self._shown_wave[0] is self.results.selected()

    def _part_selected(self) -> tuple[float, float] | None:
        """The part dragged across the waveform of the result selected (start, end seconds)."""
        return self.spectrograms.wave.selection if self._showing_selected() else None

    def play_selected(self) -> None:
        """Enter: the result again; the part selected on its waveform, when there is one."""
        part = self._part_selected()
        if part is not None:
            self.play_part(*part)
        else:
            self.play_selected_from(0.0)

    def play_part(self, start_s: float, end_s: float) -> None:
        """A drag across the result's waveform: that part played (and looped, with L), to be
        saved on its own (Ctrl+S)."""
        if not self._showing_selected():
            return
        hit, wave, sr = self._shown_wave
        if self._play(hit, wave, sr, start_s=start_s, end_s=end_s):
            self.say(f"playing {end_s - start_s:.2f} s of {hit.path.name} from {start_s:.2f} s  ·  "
                     "Ctrl+S saves this part as a file")
        self._write_part_ahead(hit, start_s, end_s)

    def _write_part_ahead(self, hit, start_s: float, end_s: float) -> None:
        """The part selected, written on a worker for a drag of its handle (as heard: at the pitch
        results play at)."""
        pitch = self.pitch
        if self._part_ahead != (hit, start_s, end_s, pitch):
            self._part_ahead = (hit, start_s, end_s, pitch)
            dest = self._part_file(hit, (start_s, end_s), pitch)
            self.tasks.submit(lambda: self.bench.prepare_part(hit.path, start_s, end_s, dest, pitch), lambda _: None,
                              lambda exc: log.info("the part was not written ahead of a drag: %s", exc))

    def save_part_dialog(self) -> None:
        """Ctrl+S: the part selected on the result's waveform, saved as a WAV file of its own."""
        part = self._part_selected()
        if part is None:
            self.error("Drag across the result's waveform (under the plots) to select the part to save.")
            return
        hit, (start, end), pitch = self._shown_wave[0], part, self.pitch
        path = filedialog.asksaveasfilename(parent=self.root, title="Save the selected part as",
                                            defaultextension=".wav", filetypes=[("WAV", "*.wav")],
                                            initialdir=self.settings.last_folder or str(Path.home()),
                                            initialfile=f"{_part_name(hit, part, pitch)}.wav")
        if not path:
            return
        self._remember_folder(str(Path(path).parent))
        self.tasks.submit(lambda: self.bench.save_part(hit.path, start, end, path, pitch), self.say,
                          lambda exc: self._failed(exc, "The part was not saved: "))

    def play_selected_from(self, seconds: float) -> None:
        hit = self.results.selected()
        if hit is None:
            return
        if self._shown_wave is not None and self._shown_wave[0] is hit:
            self._play(hit, *self._shown_wave[1:], start_s=seconds)
            return
        self.tasks.submit(lambda: self.session.load_reference(hit, stereo=True),
                          lambda loaded: self._play(hit, *loaded, start_s=seconds), self._search_failed)

    def _play(self, hit, wave, sr, start_s: float = 0.0, end_s: float | None = None,
              loop_from_s: float | None = None) -> bool:
        """Play a result (levelled, looped with L, at the pitch chosen with [ and ]); False when
        it could not start."""
        if self.recorder is not None:
            return False  # never play into a recording
        try:
            ticket = self.audition.play(hit, wave, sr, start_s=start_s, end_s=end_s, loop_from_s=loop_from_s)
        except QviError as exc:
            self._failed(exc, "Cannot play: ")
            return False
        self._now_playing(hit, ticket)
        return True

    def _now_playing(self, hit, ticket: int) -> None:
        self.results.mark_playing(hit)
        self.say(f"playing {hit.relpath}" + (f" {self.audition.pitch_words()}" if self.pitch else ""))
        self._tick_playhead(ticket)

    def change_pitch(self, step: int) -> None:
        """Results play ``step`` semitones higher (lower when negative; 0: at their own pitch
        again), within two octaves; what is playing goes on from where it is at the new pitch."""
        try:
            if not self.audition.change_pitch(step):
                return
        except QviError as exc:
            self._failed(exc, "Cannot play: ")
        pitch = self.pitch
        # said in the waveform's caption: the row of buttons has no room left at 1024 px
        self.spectrograms.wave.show_pitch(f"{pitch:+d} st" if pitch else "")
        part = self._part_selected()
        if part is not None:                    # a drag of its handle gives the part as now heard
            self._write_part_ahead(self._shown_wave[0], *part)
        if self.playing is not None and self.player.playing:
            self._now_playing(self.playing, self.audition.ticket)
        else:
            self.say(f"results play {self.audition.pitch_words()}" if pitch else "results play at their own pitch")

    def _tick_playhead(self, ticket: int) -> None:
        if ticket != self.audition.ticket or self.playing is None:
            self.spectrograms.move_playhead(None)
            return
        self.spectrograms.move_playhead(self.audition.position_s)
        self.root.after(50, lambda: self._tick_playhead(ticket))

    def _play_ended(self, ticket: int) -> None:
        if self.audition.ended(ticket):
            self.results.mark_playing(None)
            self.spectrograms.move_playhead(None)

    def stop_playing(self) -> None:
        self.audition.stop()
        self.results.mark_playing(None)
        self.spectrograms.move_playhead(None)

    def replay_query(self) -> None:
        if self.bench.query is None or self.recorder is not None:
            return
        try:
            self.audition.play_query(self.bench.query.wave, self.bench.query.sr)
        except QviError as exc:
            self._failed(exc, "Cannot play: ")
            return
        self.results.mark_playing(None)

    def _drag_part(self) -> tuple[str, ...]:
        """The part selected on the result's waveform, written to the data folder's parts/ (kept:
        an editor may use a dropped file where it lies) to be dragged out; () when it cannot be."""
        part = self._part_selected()
        if part is None:
            return ()
        hit = self._shown_wave[0]
        dest = self._part_file(hit, part, self.pitch)
        try:
            self.say(self.bench.drag_part(hit.path, *part, dest, self.pitch))
        except QviError as exc:
            self._failed(exc, "The part cannot be dragged out: ")
            return ()
        return (str(dest),)

    @staticmethod
    def _part_file(hit, part: tuple[float, float], semitones: int = 0) -> Path:
        """Where a part dragged out is written: the data folder's parts/ (kept there: an editor may
        use a dropped file where it lies)."""
        return data_dir() / "parts" / f"{_part_name(hit, part, semitones)}.wav"
