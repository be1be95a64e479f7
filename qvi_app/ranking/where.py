"""Where in a long library sound the query matches: the bark in a minute of farmyard.

The index has one embedding per sound, so a 45 s ambience is found, but not the seconds of it
that were imitated. Here the sound is cut into short overlapping windows, each embedded as a
library sound is (role "reference", no cut: a window is heard as it is) and scored against the
query as the index scores sounds. The best window's middle is where the query matches; the part
offered to play, drag out or save is as long as the query, around it.

Measured on real voices (``scripts/measure_where.py``, docs/TRAINING.md "Where it matches"):
each of the 42 gen-1 imitations of ../shared/real-imitations-dev was searched in three made-up
scenes (its reference among 3 demo-library sounds at random levels; seeds 0-2, 378 scenes). The
best window's middle fell inside the reference in 71% of them with 0.5 s windows, 62% with 1 s,
51% with windows as long as the query; the loudest window 19%, chance (the reference's share of
a scene) 21%. Windows of the query's length added to the short ones find an exact copy of a
sound more often (96% against 90% of 120 scenes) but real imitations less often (68% against
75% of 126 other scenes), so they are not. Averaging neighbouring windows did not help (70%),
nor did one pass of the CNN over the whole sound pooled per window (42% at the query's length):
each window is peak-normalised on its own, as a sound is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

#: How long a window scored is (s), and how far apart windows start (a share of it).
WINDOW_S = 0.5
HOP = 0.5
#: The windows one pass scores, at most. A window of up to 2 s costs about 13 ms on 2 cores (the
#: CNN pads a short one to 100 frames), so a sound of up to 30 s is scanned in 1.5 s. A longer one
#: is scanned first in longer windows that still cover it, then its best stretch again in 0.5 s
#: windows, and so are the other places J goes to: a minute in 2.1 s (1.7 s for the best place
#: alone), a ten-minute field recording in 9.4 s (7.3 s; 10 s windows cost more).
MOST_WINDOWS = 120
#: The part played (and dragged out) is as long as the query's imitation, within these bounds
#: (s); a list with no query length ("more like this" a whole sound) plays :data:`PART_NO_QUERY_S`.
PART_S = (1.0, 5.0)
PART_NO_QUERY_S = 2.0
#: A sound is searched for its match when it is at least this many parts long; a shorter one is
#: heard whole in about the time a match takes to find.
LONGER_THAN = 2.0
#: A window quieter than this (peak, about -80 dBFS) is digital silence: not embedded, never the match.
SILENT_PEAK = 1e-4
#: How many places a sound offers where it matches (J goes from one to the next, best first).
MOST_PLACES = 5
#: In a long sound scanned coarsely, how many of its other places are found again finely, at
#: most (each a pass of a coarse window's length: 0.5 s for 10 s, on 2 cores).
REFINED_MORE = 2 * (MOST_PLACES - 1)


@dataclass(frozen=True)
class Match:
    """How well each stretch of a sound of ``seconds`` matches (the ``scores`` of windows whose
    middles are ``centres``, s; -inf where it is silent), and where it matches best (``centre``,
    s, found finely in a long sound)."""

    centres: np.ndarray
    scores: np.ndarray
    centre: float
    part_s: float
    seconds: float
    #: In a long sound scanned coarsely: a coarse window's index → where, scanned again finely in
    #: 0.5 s windows, its stretch matches best (the windows that :meth:`places` offers).
    fine: dict = field(default_factory=dict)

    @property
    def best(self) -> tuple[float, float]:
        """The part to hear (start, end seconds): ``part_s`` around ``centre``, inside the sound."""
        return self._part(self.centre)

    def places(self, most: int = MOST_PLACES) -> list[tuple[float, float]]:
        """Where it matches, best first: :attr:`best`, then the parts around the next best-scoring
        windows that overlap no part already chosen; up to ``most``. Only peaks of the score line
        were tried too: with the reference twice in real-voice scenes both copies came first less
        often (0.397, 0.437, gen-2 0.383 against 0.413, 0.460, 0.392; three copies 0.278 against
        0.333; docs/TRAINING.md "Where it matches"). In a long sound scanned coarsely each place is
        where its coarse window was found again finely (:attr:`fine`; past ``REFINED_MORE`` passes,
        as coarse as its window)."""
        return [part for _, part in self._chosen(most)]

    def _chosen(self, most: int) -> list[tuple[int | None, tuple[float, float]]]:
        """The places with the index of the window each comes from (None: the best)."""
        chosen: list[tuple[int | None, tuple[float, float]]] = [(None, self.best)]
        for i in np.argsort(-self.scores, kind="stable"):
            if len(chosen) >= most or not np.isfinite(self.scores[i]):
                break
            part = self._part(self.fine.get(int(i), float(self.centres[i])))
            if all(part[1] <= a or part[0] >= b for _, (a, b) in chosen):
                chosen.append((int(i), part))
        return chosen

    def place_after(self, part: tuple[float, float] | None) -> tuple[int, tuple[float, float]]:
        """J: the place after ``part`` among :meth:`places` (its number from 0, and the place),
        back to the best after the last; the best when ``part`` is none of them (a drag)."""
        places = self.places()
        at = places.index(part) + 1 if part in places else 0
        return at % len(places), places[at % len(places)]

    def _part(self, centre: float) -> tuple[float, float]:
        start = min(max(centre - self.part_s / 2, 0.0), max(self.seconds - self.part_s, 0.0))
        return start, min(start + self.part_s, self.seconds)


def part_seconds(query_s: float | None) -> float:
    if not query_s:
        return PART_NO_QUERY_S
    return float(min(max(query_s, PART_S[0]), PART_S[1]))


def worth_locating(sound_s: float, query_s: float | None) -> bool:
    return sound_s >= LONGER_THAN * part_seconds(query_s)


def window_starts(start: float, end: float, window_s: float, most: int = MOST_WINDOWS) -> np.ndarray:
    """Evenly spaced window starts from ``start`` to the last full window before ``end``,
    ``HOP`` windows apart or further."""
    span = end - start - window_s
    if span <= 0:
        return np.array([float(start)])
    return start + np.linspace(0.0, span, min(most, int(np.ceil(span / (HOP * window_s))) + 1))


def locate(wave: np.ndarray, sr: int, query_s: float | None, embed: Callable[[np.ndarray], np.ndarray],
           score: Callable[[np.ndarray], np.ndarray], stop: Callable[[], bool] | None = None,
           on_best: Callable[[Match], None] | None = None) -> Match | None:
    """Where in ``wave`` (mono) the query matches: ``embed(part)`` gives a part's unit vector as
    the library's are made, ``score(vectors)`` their scores as the index ranks sounds. None when
    ``stop()`` turns true between windows (another sound was selected). In a long sound whose
    other places are still to be found finely, ``on_best(match)`` is handed the match as soon as
    its best place is (its other places still coarse), to be shown meanwhile."""
    seconds = len(wave) / sr
    window = max(WINDOW_S, seconds / (HOP * MOST_WINDOWS))      # every stretch of the sound in a window
    starts = window_starts(0.0, seconds, window)
    scores = _scores(wave, sr, starts, window, embed, score, stop)
    if scores is None:
        return None
    best = int(np.argmax(scores))
    centre = float(starts[best]) + window / 2
    match = Match(starts + window / 2, scores, centre, part_seconds(query_s), seconds)
    if window > WINDOW_S and np.isfinite(scores[best]):      # a long sound: its places again, finely
        def finely(start: float, end: float) -> float | None:
            fine_starts = window_starts(max(0.0, start), min(seconds, end), WINDOW_S)
            fine = _scores(wave, sr, fine_starts, WINDOW_S, embed, score, stop)
            return None if fine is None else float(fine_starts[int(np.argmax(fine))]) + WINDOW_S / 2

        centre = finely(centre - window, centre + window)
        if centre is None:
            return None
        match = Match(match.centres, scores, centre, match.part_s, seconds)
        if on_best is not None:
            on_best(match)
        # J's next places: each coarse window offered is found again finely (its own stretch and
        # a fine window either side); one that then falls on a place already offered (the coarse
        # neighbour of a howl, on the howl) gives way to the next, within a bounded number of passes.
        for _ in range(REFINED_MORE):
            todo = [i for i, _ in match._chosen(MOST_PLACES)[1:] if i not in match.fine]
            if not todo:
                break
            at = float(match.centres[todo[0]])
            found = finely(at - window / 2 - WINDOW_S, at + window / 2 + WINDOW_S)
            if found is None:
                return None
            match = Match(match.centres, scores, centre, match.part_s, seconds, {**match.fine, todo[0]: found})
    return match


def _scores(wave, sr, starts, window_s, embed, score, stop) -> np.ndarray | None:
    """Each window's score; -inf for a silent one."""
    n = int(round(window_s * sr))
    vectors, kept = [], []
    for i, start in enumerate(starts):
        if stop is not None and stop():
            return None
        part = wave[int(round(start * sr)): int(round(start * sr)) + n]
        if len(part) and float(np.abs(part).max()) >= SILENT_PEAK:
            vectors.append(embed(part))
            kept.append(i)
    scores = np.full(len(starts), -np.inf)
    if kept:
        scores[kept] = np.asarray(score(np.stack(vectors)), dtype=np.float64)
    return scores
