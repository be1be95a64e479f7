"""What the window knows and decides, without tkinter (the split porcupine's plugins make).

The window (:mod:`qvi_app.gui.window`) only wires widgets to a :class:`Workbench`: it calls the
blocking methods (``open``, ``search``, ``refine``, ``rate``, ``more_like``) from worker
threads, the quick ones on the Tk thread, and draws what they return. Everything here is
tested without a display (tests/test_workbench.py).

State: the open library (a :class:`~qvi_app.app.QviSession`), the current query and its first
ranking, the user's ratings of it and the list shown (re-ranked by those ratings at once), the
category, name filter and length of the list, what "more like this" started from, the last message and
the files the last indexing left out, and the recording state machine.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qvi_app.app import PART_MIN_S, QviSession, SearchResult, size_text
from qvi_app.audio.region import save_region, write_wav
from qvi_app.credits import append_attribution, demo_credit
from qvi_app.errors import DeviceError, QviError, StaleIndexError, counted, printable
from qvi_app.feedback import FeedbackStore
from qvi_app.feedback.adapter import AdaptSettings
from qvi_app.feedback.liked import LikedCopy, copy_liked_sounds
from qvi_app.index import NO_FILTERS, Filters, SearchHit, SkippedFile
from qvi_app.ranking.where import Match, worth_locating
from qvi_app.settings import AppSettings

#: After recording stops by itself (at its limit, or when the sound is over), a Space within this
#: many seconds was meant as "stop" by someone who had not noticed: it is ignored rather than
#: starting a new recording.
SPACE_GRACE_S = 2.0

#: Learning by itself again after this many more queries with a liked result (each attempt
#: takes seconds to a minute in the background: 16 s for 300 rated queries, BENCHMARKS.md).
LEARN_EVERY = 4

#: How many lists Back returns through, and the most query audio they may hold together: a
#: list holds its hits (kilobytes) and its query's audio (1.8 MB for a 10 s recording; lists of
#: one query share it, but a 600 s file searched 20 times would hold 2 GB).
HISTORY = 20
HISTORY_AUDIO_BYTES = 256 << 20
#: Where a part selected on a result's waveform is written ahead of a drag, in the parts folder.
READY_FOLDER = ".ready"
#: How many long results keep where they matched their query (a Match is a few kilobytes).
MATCHES_KEPT = 32
#: The name of a query recorded in the window (a file opened as the query goes by its name).
RECORDING_LABEL = "your recording"


class TimeLeft:
    """How long a long job (indexing) has left, from its pace since this started watching it:
    what an earlier run or an old index already did arrives at once and is not counted as pace.
    Says nothing for its first 5 s or 10 items (the first files include starting the workers)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._start: tuple[float, int] | None = None

    def __call__(self, done: int, total: int) -> float | None:
        now = self.clock()
        if self._start is None or done < self._start[1]:
            self._start = (now, done)
            return None
        t0, d0 = self._start
        if done >= total:
            return 0.0
        if now - t0 < 5.0 or done - d0 < 10:
            return None
        return (total - done) * (now - t0) / (done - d0)


def say_duration(seconds: float) -> str:
    """A time left as a person says it: "about 40 s", "about 2 min", "about 1 h 5 min"."""
    if seconds < 10:
        return "a few seconds"
    if seconds < 60:
        return f"about {int(seconds // 10 * 10)} s"
    minutes = round(seconds / 60)
    return f"about {minutes} min" if minutes < 60 else f"about {minutes // 60} h {minutes % 60} min"


@dataclass(frozen=True)
class Query:
    wave: np.ndarray          # the imitation as searched (trimmed), mono float32
    sr: int
    label: str                # RECORDING_LABEL, a file name, "part of <name>", "more like <name>"

    @property
    def seconds(self) -> float:
        return len(self.wave) / self.sr if self.sr else 0.0


@dataclass(frozen=True)
class View:
    """A list as it was shown, to come back to (Back)."""

    query: Query | None
    base: SearchResult
    result: SearchResult
    ratings: dict
    filters: Filters
    similar_to: SearchHit | None
    similar_part: tuple[float, float] | None
    similar_also: tuple[SearchHit, ...] = ()


@dataclass(frozen=True)
class Notice:
    """A message line: an error (shown until something succeeds) or information."""

    text: str
    error: bool = False
    action: str | None = None          # the button it offers: "Rebuild index", "Show skipped files"
    details: tuple[str, ...] = ()      # what that button shows


@dataclass(frozen=True)
class _ReadyPart:
    """A part written ahead of a drag (Workbench.prepare_part)."""

    part: tuple                        # (sound, start s, end s, dest, semitones): what it is
    file: Path                         # where it was written
    seconds: float


@dataclass
class Workbench:
    settings: AppSettings
    feedback_path: Path
    clock: callable = time.monotonic
    session: QviSession | None = None
    query: Query | None = None
    base: SearchResult | None = None        # the first ranking of the current query
    result: SearchResult | None = None      # the list shown: ``base`` re-ranked by the ratings
    ratings: dict[str, int] = field(default_factory=dict)   # relpath → +1/-1, for the current query
    filters: Filters = NO_FILTERS           # category, name words and length of the list
    similar_to: SearchHit | None = None     # the list is "more like" this sound
    similar_part: tuple[float, float] | None = None   # ... this part of it (seconds)
    similar_also: tuple[SearchHit, ...] = ()            # ... and these sounds (what they share)
    notice: Notice | None = None
    history: list[View] = field(default_factory=list)        # the lists before this one, for Back
    future: list[View] = field(default_factory=list)         # the lists Back left, for Forward
    skipped: list[SkippedFile] = field(default_factory=list)  # of the last indexing
    recording: bool = False
    _self_stop_at: float | None = None
    _feedback: FeedbackStore | None = None
    _feedback_lock: threading.Lock = field(default_factory=threading.Lock)
    _parts_lock: threading.Lock = field(default_factory=threading.Lock)
    _part_ticket: int = 0                                   # the last part asked to be written ahead
    _ready_part: _ReadyPart | None = None      # the part written ahead of a drag
    _matches: dict = field(default_factory=dict)            # (query, sound) → Match, the last few
    _matches_lock: threading.Lock = field(default_factory=threading.Lock)

    # -- library ------------------------------------------------------------------------------------
    def open(self, index_dir) -> QviSession:
        """Load an index and its encoder, and the user's adapter unless switched off (blocking)."""
        return QviSession(index_dir, use_adapter=self.settings.use_adapter)

    def opened(self, session: QviSession) -> bool:
        """Make ``session`` the open library. The ranking of another library is gone; returns
        True when there is a query to search again in this one."""
        self.session = session
        self.base = self.result = None
        with self._matches_lock:
            self._matches.clear()               # a sound of this library may sit where one of the last did
        self.similar_to = self.similar_part = None
        self.similar_also = ()
        self.ratings = {}
        self.history, self.future = [], []      # their hits belong to the library before
        if self.filters.category not in session.categories():
            self.filters = self.filters.but(category=None)
        if self.notice and self.notice.error and not self.notice.details:
            self.notice = None
        return self.query is not None and not self.query.label.startswith("more like ")

    def library_failed(self, index_dir, exc: BaseException) -> Notice:
        if isinstance(exc, StaleIndexError):
            return self.tell(f"This library's index was made by another model version, so it cannot be searched "
                             f"with the current one. ({exc})", error=True, action="Rebuild index")
        return self.failed(exc, "The library cannot be opened: ")

    def indexed(self, skipped: list[SkippedFile]) -> Notice | None:
        """After indexing: the files left out stay visible (a button lists every one)."""
        self.skipped = list(skipped)
        if not skipped:
            return None
        shown = "; ".join(f"{printable(s.path)}: {s.reason}" for s in skipped[:2])
        more = f" and {len(skipped) - 2} more" if len(skipped) > 2 else ""
        return self.tell(f"{len(skipped)} file(s) could not be used and were left out: {shown}{more}", error=True,
                         action="Show skipped files",
                         details=tuple(f"{printable(s.path)}: {s.reason}" for s in skipped))

    # -- searching ----------------------------------------------------------------------------------
    @property
    def top_n(self) -> int:
        return self.settings.top_n

    def search(self, wave: np.ndarray, sr: int, clipped: float | None = None) -> SearchResult:
        """Trim, embed and rank (blocking); ``clipped`` as the recorder read it."""
        return self._session().search_wave(wave, sr, self.filters, self.top_n, clipped=clipped)

    def searched(self, result: SearchResult, sr: int, label: str) -> SearchResult:
        """A new query's first ranking: ratings start afresh, an error line is cleared."""
        self._remember_view()
        self.query = Query(result.query_wave, sr, label)
        self.base = self.result = result
        self.ratings = {}
        self.similar_to = self.similar_part = None
        self.similar_also = ()
        self._succeeded()
        return result

    def query_part(self, start_s: float, end_s: float) -> Query:
        """The part of the query on screen between two times of its plot, to search on its own:
        the one good take of several, without the cough or the laugh the automatic cut kept."""
        if self.query is None:
            raise QviError("search first, then select a part of the query")
        q = self.query
        start_s, end_s = sorted((start_s, end_s))
        i, j = max(0, int(round(start_s * q.sr))), min(len(q.wave), int(round(end_s * q.sr)))
        if j - i < PART_MIN_S * q.sr:
            raise QviError(f"select at least {PART_MIN_S} s of the query to search with")
        label = q.label if q.label.startswith("part of ") else f"part of {q.label}"
        return Query(q.wave[i:j].copy(), q.sr, label)

    def refine(self, filters: Filters = NO_FILTERS, top_n: int | None = None) -> SearchResult | None:
        """Other filters or list length for the current list, at once (no re-recording); the
        ratings still apply."""
        self.filters = filters
        if top_n is not None:
            self.settings.top_n = max(1, min(int(top_n), 1000))
        if self.base is None or self.listing:
            # no query: the filters list the sounds they keep (browsing); none, no list
            narrowed = self.session is not None and filters != NO_FILTERS
            self.base = self.result = self.session.listing(filters, self.top_n) if narrowed else None
            return self.result
        session = self._session()
        if self.similar_to is not None and self.similar_part is None:
            self.base = session.similar(self.similar_to.path, self.filters, self.top_n,
                                        also=[h.path for h in self.similar_also])
        else:
            self.base = session.rerank(self.base, self.filters, self.top_n)
        self.result = session.with_feedback(self.base, self.ratings, self.top_n) if self.ratings else self.base
        return self.result

    def prepare_name(self, name: str) -> int | None:
        """Find the sounds a name filter keeps (blocking: it reads the whole item table, 0.3-0.8 s
        at a million sounds), so that :meth:`refine` with it is quick on the Tk thread. Returns
        how many there are in the library; None for a blank filter or no library."""
        rows = self.session.index.named_rows(name) if self.session is not None else None
        return None if rows is None else len(rows)

    def prepare_length(self) -> None:
        """Read every sound's length (blocking: about half a second at a million sounds), so that
        :meth:`refine` with a length is quick on the Tk thread."""
        if self.session is not None:
            self.session.index.durations()

    def rate(self, hit: SearchHit, rating: int) -> SearchResult:
        """Save a rating (raises QviError when it cannot be) and re-rank the list by every rating
        of this query at once: liked sounds pinned on top, disliked at the bottom. The rating the
        sound already has takes it back (saved as such), as a thumb pressed twice does."""
        if self.base is None or self.query is None:
            raise QviError("imitate a sound (Space) or open a query first, then rate how well a result matches it")
        session = self._session()
        if self.ratings.get(hit.relpath) == rating:
            self.feedback().unrate(wave=self.query.wave, sr=self.query.sr, result_path=hit.path)
            del self.ratings[hit.relpath]
        else:
            shown = self.base.filters                  # what the rating is only understood with
            self.feedback().rate(wave=self.query.wave, sr=self.query.sr, result_path=hit.path, rank=hit.rank,
                                 score=hit.score, rating=rating, category_filter=shown.category,
                                 name_filter=shown.name, model_id=session.model_id,
                                 length_filter=shown.length.describe() if shown.length else None)
            self.ratings[hit.relpath] = rating
        self.result = session.with_feedback(self.base, self.ratings, self.top_n) if self.ratings else self.base
        return self.result

    def original_ranking(self) -> SearchResult | None:
        """Back to the first ranking (the ratings stay saved and marked)."""
        if self.base is None:
            return None
        self.result = self.base
        return self.result

    @property
    def listing(self) -> bool:
        """Whether the list shown is the sounds the filters keep, with no query ranking them."""
        return self.base is not None and self.base.listed is not None

    @property
    def reranked(self) -> bool:
        return self.result is not None and self.result is not self.base

    def more_like(self, hit: SearchHit, part: tuple[float, float] | None = None,
                  also: tuple[SearchHit, ...] = ()) -> SearchResult:
        """The library ranked by one of its sounds (its stored embedding): the sound first. With
        ``part`` (start, end seconds), by that part of it (embedded now): the bird in an ambience.
        With ``also`` (more sounds picked with it), by what they share (their embeddings' mean).
        Blocking: :meth:`rank_like` then :meth:`show_like`."""
        return self.show_like(hit, part, also, self.rank_like(hit, part, also))

    def rank_like(self, hit: SearchHit, part: tuple[float, float] | None = None,
                  also: tuple[SearchHit, ...] = ()) -> SearchResult:
        """:meth:`more_like`'s ranking, changing nothing (a worker's part: the window makes it the
        list on its own thread with :meth:`show_like`, unless another list came meanwhile)."""
        session = self._session()
        if part is not None and also:
            raise QviError("a part is searched from one sound: pick one result to search a part of it")
        if part is not None:
            return session.similar_part(hit.path, *part, self.filters, self.top_n)
        return session.similar(hit.path, self.filters, self.top_n, also=[h.path for h in also])

    def show_like(self, hit: SearchHit, part: tuple[float, float] | None, also: tuple[SearchHit, ...],
                  result: SearchResult) -> SearchResult:
        """:meth:`rank_like`'s list made the current one; the one before goes behind it."""
        self._remember_view()
        self.similar_to, self.similar_part, self.similar_also = hit, part, tuple(also)
        self.base = self.result = result
        self.ratings = {}
        self._succeeded()
        return result

    def _view(self) -> View | None:
        if self.base is None or self.result is None:
            return None
        return View(self.query, self.base, self.result, dict(self.ratings), self.filters, self.similar_to,
                    self.similar_part, self.similar_also)

    def _remember_view(self) -> None:
        """A new list replaces this one: this one goes behind it, and what was ahead is dropped."""
        self.future = []
        self._push_history(self._view())

    def _push_history(self, view: View | None) -> None:
        if view is None:
            return
        self.history.append(view)
        del self.history[:-HISTORY]
        while len(self.history) > 1 and self._history_audio_bytes() > HISTORY_AUDIO_BYTES:
            del self.history[0]

    def _history_audio_bytes(self) -> int:
        waves = {id(a): a.nbytes for v in self.history + self.future
                 for a in (v.query.wave if v.query else None, v.base.query_wave) if a is not None}
        return sum(waves.values())

    def _show_view(self, v: View) -> SearchResult:
        self.query, self.base, self.result, self.ratings = v.query, v.base, v.result, dict(v.ratings)
        self.filters, self.similar_to, self.similar_part = v.filters, v.similar_to, v.similar_part
        self.similar_also = v.similar_also
        return self.result

    def back(self) -> SearchResult | None:
        """The list before this one (a query's, or a "more like"), as it was shown: its query,
        filters and ratings. None when there is none."""
        if not self.history:
            return None
        current = self._view()
        if current is not None:
            self.future.append(current)
        return self._show_view(self.history.pop())

    def forward(self) -> SearchResult | None:
        """Undo a Back: the list that was left, as it was left. None when none is ahead."""
        if not self.future:
            return None
        self._push_history(self._view())
        return self._show_view(self.future.pop())

    def rating_of(self, hit: SearchHit) -> int:
        return self.ratings.get(hit.relpath, 0)

    # -- recording ----------------------------------------------------------------------------------
    def space(self) -> str:
        """What Space means now: 'start', 'stop' or 'ignore' (just after it stopped by itself)."""
        if self.recording:
            return "stop"
        if self._self_stop_at is not None and self.clock() - self._self_stop_at < SPACE_GRACE_S:
            self._self_stop_at = None
            return "ignore"
        return "start"

    def recording_started(self) -> None:
        self.recording = True
        self._self_stop_at = None
        if self.notice and self.notice.error and not self.notice.details:
            self.notice = None

    def recording_stopped(self, by_itself: bool) -> None:
        self.recording = False
        self._self_stop_at = self.clock() if by_itself else None

    # -- messages -----------------------------------------------------------------------------------
    def tell(self, text: str, error: bool = False, action: str | None = None, details=()) -> Notice:
        self.notice = Notice(text, error, action, tuple(details))
        return self.notice

    def failed(self, exc: BaseException, prefix: str = "") -> Notice:
        """A user's error as a line they can act on; a bug as a short line (details go to the log)."""
        if isinstance(exc, DeviceError):
            return self.tell(prefix + device_advice(exc), error=True)
        if isinstance(exc, QviError):
            return self.tell(prefix + str(exc).replace("query: ", "", 1), error=True)
        return self.tell(f"Something went wrong inside qvi ({type(exc).__name__}: {exc}). "
                         "Details are in the terminal; please report them.", error=True)

    def _succeeded(self) -> None:
        """A search or a list shown: a problem it got past is gone, and so is news (a note); a list
        of skipped files stays until dismissed."""
        if self.notice and not (self.notice.error and self.notice.details):
            self.notice = None

    def forgotten(self, gone, freed: int) -> Notice:
        """A library's index deleted (``app.forget_library``): said until the next search."""
        return self.tell(f"Forgot the index of {printable(str(gone[0].library))} ({size_text(freed)} freed); "
                         "the sounds themselves are untouched.")

    def status_line(self, last_ms: float | None = None) -> str:
        s = self.session
        if s is None:
            return "no library open"
        parts = [f"{counted(len(s.index), 'sound')} in {counted(len(s.categories()), 'category', 'categories')}",
                 f"library {s.library_root}",
                 f"model: {s.model_name}" + (", adapted to your voice" if s.adapter is not None else "")]
        if self.listing:
            n, total = len(self.base.hits), self.base.listed
            shown = f"{n} of {counted(total, 'sound')}" if n < total else counted(total, "sound")
            parts.insert(0, f"{shown} kept by the filters, by name: imitate one (Space) to rank them")
        elif last_ms is not None:
            parts.append(f"last query {last_ms:.0f} ms")
        return "  ·  ".join(parts)

    # -- the adapter --------------------------------------------------------------------------------
    def learn(self, progress=None):
        """Learn an adapter from every rating so far (blocking); the AdaptReport says if it was kept.
        Call :meth:`learning_started` first, so the attempt is counted."""
        return self._session().learn_from_ratings(self.feedback(), progress)

    def learning_due(self) -> bool:
        """Whether to learn by itself now: at least the adapter's minimum of queries with a liked
        result (8), and ``LEARN_EVERY`` more than at the last attempt; never when switched off."""
        if not self.settings.learn_automatically or self.session is None:
            return False
        liked = self.feedback().liked_queries()
        return liked >= AdaptSettings().min_queries and liked >= self.settings.learned_from + LEARN_EVERY

    def learning_started(self) -> int:
        """Remember how many liked queries this attempt learns from (returned)."""
        self.settings.learned_from = self.feedback().liked_queries()
        return self.settings.learned_from

    def use_adapter(self, on: bool) -> bool:
        """Switch the learned adapter on or off (remembered); returns whether one is in use."""
        self.settings.use_adapter = on
        session = self._session()
        if on:
            session.load_adapter()
        else:
            session.forget_adapter()
        return session.adapter is not None

    def delete_adapter(self) -> None:
        self._session().forget_adapter(delete=True)

    # -- feedback -----------------------------------------------------------------------------------
    def feedback(self) -> FeedbackStore:
        """The feedback store, opened once (the window's history writer runs on another thread)."""
        with self._feedback_lock:
            if self._feedback is None:
                self._feedback = FeedbackStore(self.feedback_path)
            return self._feedback

    def copy_liked(self, folder) -> LikedCopy:
        """Copy every sound given a thumbs up into ``folder`` (blocking; see feedback.liked)."""
        return copy_liked_sounds(self.feedback(), folder)

    def save_part(self, path, start_s: float, end_s: float, dest, semitones: int = 0) -> str:
        """Save a part of a library sound as a WAV file of its own (blocking; see audio.region), at
        the pitch it was heard at; a demo sound's author and licence go into ``ATTRIBUTION.csv``
        beside it. Returns what to tell the user."""
        dest = Path(dest)
        return self._credited(path, dest, save_region(path, start_s, end_s, dest, semitones), semitones)

    def save_query(self, dest) -> str:
        """Save the query as searched (the imitation cut out of its recording, what ▶ Query plays)
        as a WAV file: a vocal sketch is a scratch track for an edit, or a query to search again
        another day. 24-bit, or 32-bit float when it goes past full scale (a file opened as the
        query may), so that nothing is clipped. Returns what to tell the user."""
        q = self.query
        if q is None:
            raise QviError("there is no query to save yet: record one (Space) or open a sound file")
        dest = Path(dest)
        peak = float(np.abs(q.wave).max()) if len(q.wave) else 0.0
        write_wav(q.wave, q.sr, dest, "FLOAT" if peak > 1.0 else "PCM_24", what="the query")
        return f"saved the query ({q.seconds:.2f} s, {printable(q.label)}) as {printable(str(dest))}"

    def prepare_part(self, path, start_s: float, end_s: float, dest, semitones: int = 0) -> None:
        """Write a part ahead of a drag (blocking: run it on a worker when the part is selected),
        into a hidden ``.ready`` folder beside ``dest``. A drag must name its file at once, on the
        Tk thread; :meth:`drag_part` then only moves this one into place. Only the part selected
        last is kept there (older ones, and any a crash left, are removed)."""
        dest = Path(dest)
        with self._parts_lock:
            self._part_ticket += 1
            ticket = self._part_ticket
        ahead = dest.parent / READY_FOLDER / dest.name
        seconds = save_region(path, start_s, end_s, ahead, semitones)
        with self._parts_lock:
            if ticket != self._part_ticket:             # another part was selected meanwhile
                ahead.unlink(missing_ok=True)
                return
            self._ready_part = _ReadyPart((Path(path), start_s, end_s, dest, semitones), ahead, seconds)
            for old in ahead.parent.glob("*.wav"):      # hidden temporary files (".name.tmp.wav") are others' work
                if old != ahead and not old.name.startswith("."):
                    old.unlink(missing_ok=True)

    def drag_part(self, path, start_s: float, end_s: float, dest, semitones: int = 0) -> str:
        """``dest`` written for a drag: the file :meth:`prepare_part` wrote for this very part moved
        into place (a rename: the Tk thread waits for no decoding), else written now, as
        :meth:`save_part`. Returns what to tell the user."""
        dest = Path(dest)
        with self._parts_lock:
            ready, self._ready_part = self._ready_part, None
        if ready is not None and ready.part == (Path(path), start_s, end_s, dest, semitones):
            try:
                os.replace(ready.file, dest)
                return self._credited(path, dest, ready.seconds, semitones)
            except OSError:
                pass                                    # gone meanwhile: written now, as without it
        elif ready is not None:
            ready.file.unlink(missing_ok=True)
        return self.save_part(path, start_s, end_s, dest, semitones)

    def _credited(self, path, dest: Path, seconds: float, semitones: int = 0) -> str:
        """What to say of a part saved at ``dest``; a demo sound's credit written beside it."""
        heard = f" ({semitones:+d} st, as heard)" if semitones else ""
        said = f"saved {seconds:.2f} s of {printable(Path(path).name)}{heard} as {printable(str(dest))}"
        credit = demo_credit(path)
        if credit:
            try:
                append_attribution(dest.parent / "ATTRIBUTION.csv", [{"file": dest.name, **credit}])
            except OSError as exc:
                return f"{said}; its credit could not be written to ATTRIBUTION.csv ({exc.strerror or exc})"
            said += f"; credit {credit['author']} ({credit['license']}): in ATTRIBUTION.csv beside it"
        return said

    # -- where a long sound matches ------------------------------------------------------------------
    def locates(self, seconds: float) -> bool:
        """Whether a result this long is searched for the part that matches the list's query."""
        result = self.result
        return result is not None and result.query_vector is not None and \
            worth_locating(seconds, result.query_duration)

    def where_it_matches(self, hit: SearchHit, wave: np.ndarray, sr: int, stop=None, on_best=None) -> Match | None:
        """Where in ``hit`` (its audio, as loaded to be heard) the list's query matches best
        (blocking: 1.5 s for 30 s of sound on 2 cores, :mod:`qvi_app.ranking.where`). None for a
        sound too short to need it, or when ``stop()`` turned true. The last few are kept: going
        up and down the list finds them again at once. ``on_best``: see :func:`ranking.where.locate`."""
        result, session = self.result, self._session()
        if result is None or result.query_vector is None or not worth_locating(len(wave) / sr,
                                                                                result.query_duration):
            return None
        key = (hash(result.query_vector.tobytes()), result.query_duration, hit.path)
        with self._matches_lock:
            if key in self._matches:
                return self._matches[key]
        match = session.where_it_matches(result, wave, sr, stop, on_best)
        if match is not None:
            with self._matches_lock:
                self._matches[key] = match
                while len(self._matches) > MATCHES_KEPT:
                    del self._matches[next(iter(self._matches))]
        return match

    def close(self) -> None:
        with self._parts_lock:
            ready, self._ready_part = self._ready_part, None
        if ready is not None:
            ready.file.unlink(missing_ok=True)
        if self._feedback is not None:
            self._feedback.close()
            self._feedback = None

    def _session(self) -> QviSession:
        if self.session is None:
            raise QviError("open a library first (File ▸ Open library folder…)")
        return self.session


def device_advice(exc: DeviceError) -> str:
    """PortAudio's words ("Illegal combination of I/O devices [PaErrorCode -9993]") as plain ones."""
    text = str(exc)
    low = text.lower()
    if "-9993" in low or "illegal combination" in low or "-9996" in low or "invalid device" in low \
            or "-9997" in low or "host error" in low:
        return ("The sound device is gone (was it unplugged, or did the sound server restart?). Choose a "
                "microphone and speaker in Audio ▸ Devices, or reconnect it; qvi picks it up again.")
    return text
