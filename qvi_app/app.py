"""The application layer: what the CLI and the window call; neither computes features itself."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from qvi_app.audio import AUDIO_EXTENSIONS, audition_gain, clipped_share, isolate_sound, load_audio, unread_format
from qvi_app.audio.load import CUT_ABOVE_FLOOR_DB, to_mono
from qvi_app.encoders import DEFAULT_ENCODER, Encoder, load_encoder
from qvi_app.encoders.model import backbone
from qvi_app.errors import AudioError, QviError, printable
from qvi_app.features.display import DisplaySpectrogram, display_spectrogram
from qvi_app.index import (NO_FILTERS, BuildReport, Filters, IndexingCancelled, Length,
                           LibraryChanges, ReferenceIndex, SearchHit, describe, peek, pending_changes, update_index)
from qvi_app.paths import DEMO_INDEX, data_dir, default_index_dir
from qvi_app.ranking.feedback import FeedbackSettings, moved_query, shortlist_scores
from qvi_app.ranking.where import Match, locate

#: The relevance-feedback rule the window and ``qvi search --like/--dislike`` use (docs/FEEDBACK.md).
FEEDBACK = FeedbackSettings()

#: The shortest part of a query (or of a library sound) that can be searched on its own; a
#: shorter drag on a plot is a click, not a selection.
PART_MIN_S = 0.1

#: A query whose peak is under this (about -60 dBFS) is treated as a silent recording.
SILENT_PEAK = 1e-3
MIN_QUERY_S = 0.05
#: A query with more of its samples in flat tops than this was driven past full scale.
CLIPPED_SHARE = 0.001


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    query_duration: float                       # seconds of audio after trimming
    timings_ms: dict[str, float] = field(default_factory=dict)
    query_vector: np.ndarray | None = None      # kept so new filters re-rank without re-embedding
    filters: Filters = NO_FILTERS               # what the list was narrowed to
    query_wave: np.ndarray | None = None        # the trimmed query audio (for replay, display, feedback)
    clipped: float = 0.0                        # the query's share of flat tops (audio.clipped_share)
    listed: int | None = None                   # a list without a query: how many sounds the filters keep

    @property
    def total_ms(self) -> float:
        return sum(self.timings_ms.values())


class QviSession:
    """One open library: its index and the encoder that built it, kept loaded between queries."""

    def __init__(self, index_dir=None, checkpoint=None, use_adapter: bool = True):
        self.index_dir = Path(index_dir) if index_dir else DEMO_INDEX
        self.index = ReferenceIndex.open(self.index_dir)  # names the encoder to load
        self.encoder: Encoder = load_encoder(self.index.meta["encoder_name"], checkpoint)
        self.index.require_encoder(self.encoder.id)
        #: The user's query adapter for this model (learned from their ratings), when there is one.
        self.adapter = None
        self.adapter_report: dict | None = None
        if use_adapter:
            self.load_adapter()

    @property
    def adapter_file(self) -> Path:
        from qvi_app.feedback.adapter import adapter_path
        from qvi_app.settings import feedback_db_path

        return adapter_path(feedback_db_path(), self.model_id)

    def load_adapter(self) -> bool:
        """Use the adapter learned for this model, if there is one (a damaged one is reported)."""
        from qvi_app.feedback.adapter import load_adapter

        if self.adapter_file.is_file():
            self.adapter, self.adapter_report = load_adapter(self.adapter_file, self.model_id)
        return self.adapter is not None

    def learn_from_ratings(self, store, progress=None, settings=None):
        """Train a query adapter on the ratings in ``store`` (a FeedbackStore) and keep it only if it
        helps on held-out ratings; returns the AdaptReport. Nothing is re-indexed."""
        from qvi_app.data.simulate import simulate_imitation
        from qvi_app.feedback.adapter import (AdaptSettings, RatedQuery, query_bank_anchors, save_adapter,
                                              train_adapter)

        settings = settings or AdaptSettings()
        by_query: dict[str, dict] = {}
        for r in store.ratings():
            try:
                row = self.index.row_of(r.result_path)
            except QviError:
                continue                              # a sound of another library
            q = by_query.setdefault(r.query_hash, {"path": r.query_path, "liked": [], "disliked": []})
            q["liked" if r.rating > 0 else "disliked"].append(row)
        rated = []
        for q in by_query.values():
            try:
                wave, sr = load_audio(q["path"])
            except AudioError:
                continue
            rated.append(RatedQuery(self.encoder.embed(self._prepare(wave, sr), sr, role="query"), q["liked"],
                                    q["disliked"]))
        rng = np.random.default_rng(settings.seed)
        simulated = []
        for row in rng.choice(len(self.index), size=min(settings.simulated_pairs, len(self.index)), replace=False):
            try:
                wave, sr = load_audio(self.index.library_root / self.index.items[int(row)].path)
            except AudioError:
                continue
            imitation = simulate_imitation(isolate_sound(wave, sr, above_floor_db=self.index.cut_above_floor_db), sr,
                                           int(row))
            simulated.append((self.encoder.embed(self._prepare(imitation, 16000), 16000, role="query"), int(row)))
        anchors = query_bank_anchors(self.encoder, self.index.blocks)
        adapter, report = train_adapter(rated, np.asarray(self.index.embeddings), self.index.blocks, settings,
                                        simulated, progress, anchors=anchors)
        if adapter is not None:
            report.path = save_adapter(self.adapter_file, adapter, self.model_id, report)
            self.adapter, self.adapter_report = adapter, {"mrr_before": report.mrr_before, "mrr_after": report.mrr_after}
        return report

    def forget_adapter(self, delete: bool = False) -> None:
        """Stop using the adapter (``delete``: remove its file too)."""
        self.adapter = None
        self.adapter_report = None
        if delete:
            self.adapter_file.unlink(missing_ok=True)

    def categories(self) -> dict[str, int]:
        return self.index.categories()

    def length_counts(self) -> dict[Length, int]:
        """How many sounds each of the window's lengths keeps (blocking the first time: every
        sound's length is read from the index, about half a second at a million)."""
        return self.index.facets().lengths

    @property
    def model_id(self) -> str:
        return self.encoder.id

    @property
    def model_name(self) -> str:
        """The model in plain words (the window's status bar), not its digest."""
        return describe_encoder(self.encoder)

    @property
    def library_root(self) -> Path:
        return self.index.library_root

    def library_gone(self) -> str | None:
        """One line when the library folder itself is gone (moved, renamed, a disk not connected):
        the index still ranks and names its sounds, but none can be played. One stat, so cheap."""
        root = self.index.library_root
        if root.is_dir():
            return None
        return (f"the library folder {printable(str(root))} no longer exists (moved, renamed, or on a disk that is "
                f"not connected): its sounds are named but cannot be played; index the folder where it is now "
                f"(qvi index FOLDER, or File > Open library folder)")

    def index_outdated(self) -> str | None:
        """One line when the index was made by an older qvi whose preparation has improved since:
        it still searches as it did, but made again it finds imitated sounds more often."""
        if not self.index.cut_outdated:
            return None
        return (f"This library was indexed by an older qvi, which cut each sound {self.index.cut_above_floor_db:g} "
                f"dB over its noise floor instead of {CUT_ABOVE_FLOOR_DB:g}. It searches as before; indexed again, "
                "it finds imitated sounds more often (real imitations among the demo library: 0.163 -> 0.204, "
                "docs/TRAINING.md row 65)")

    def library_changes(self) -> LibraryChanges | None:
        """What changed in the library folder since it was indexed (a walk of the folder; files
        whose date alone changed are compared by content); None when the folder is gone
        (:meth:`library_gone` says so)."""
        if not self.index.library_root.is_dir():
            return None
        return pending_changes(self.index)

    def info(self) -> dict:
        out = {**describe(self.index), "encoder_model": self.encoder.describe()}
        if self.adapter is not None:
            out["adapter"] = f"{self.adapter_file} (learned from your ratings)"
        return out

    def search_file(self, path, filters: Filters = NO_FILTERS, top_k: int = 20) -> SearchResult:
        self._require_sounds()
        t0 = time.perf_counter()
        wave, sr = load_audio(path)
        return self.search_wave(wave, sr, filters, top_k, _t_load=(time.perf_counter() - t0) * 1e3)

    def search_wave(self, wave: np.ndarray, sr: int, filters: Filters = NO_FILTERS, top_k: int = 20,
                    _t_load: float = 0.0, clipped: float | None = None) -> SearchResult:
        """Trim, embed and rank a query waveform (N,) at ``sr`` Hz; only the sounds ``filters``
        keep. ``clipped``: the share of flat tops, when the caller read it before filtering the
        recording (else read here)."""
        self._require_sounds()
        if clipped is None:
            clipped = clipped_share(wave)
        t0 = time.perf_counter()
        trimmed = self._prepare(wave, sr)
        t1 = time.perf_counter()
        vec = self.encoder.embed(trimmed, sr, role="query")
        if self.adapter is not None:
            vec = self.adapter.apply(vec)
        t2 = time.perf_counter()
        hits = self.index.search(vec, filters, top_k)
        t3 = time.perf_counter()
        timings = {"load": _t_load, "trim": (t1 - t0) * 1e3, "embed": (t2 - t1) * 1e3, "rank": (t3 - t2) * 1e3}
        return SearchResult(hits, len(trimmed) / sr, timings, vec, filters, trimmed, clipped)

    def rerank(self, result: SearchResult, filters: Filters = NO_FILTERS, top_k: int = 20) -> SearchResult:
        """The same query ranked again with other filters or list length (no re-embedding)."""
        t0 = time.perf_counter()
        hits = self.index.search(result.query_vector, filters, top_k)
        timings = {"rank": (time.perf_counter() - t0) * 1e3}
        return replace(result, hits=hits, timings_ms=timings, filters=filters)

    def _prepare(self, wave: np.ndarray, sr: int) -> np.ndarray:
        """A query cut as this library's sounds were (:func:`prepare_query` at the index's cut)."""
        return prepare_query(wave, sr, self.index.cut_above_floor_db)

    def _require_sounds(self) -> None:
        if len(self.index) == 0:
            root = printable(str(self.index.library_root))
            raise QviError(f"the library {root} has no sounds: add sound files to it, then index it again "
                           f"(qvi index {root}, or File > Open library folder)")

    def listing(self, filters: Filters, top_k: int = 20) -> SearchResult:
        """The sounds ``filters`` keep, in the library's order, with no query to rank them by
        (browsing by name, category or length); ``listed`` is how many they keep."""
        t0 = time.perf_counter()
        hits, total = self.index.listing(filters, top_k)
        return SearchResult(hits, 0.0, {"list": (time.perf_counter() - t0) * 1000}, filters=filters, listed=total)

    def similar(self, path, filters: Filters = NO_FILTERS, top_k: int = 20, also=()) -> SearchResult:
        """"More like this": the library ranked by a library sound's stored embedding (no audio
        is embedded again); the sound itself comes first unless a filter leaves it out. With
        ``also`` (more library sounds), by the mean of their embeddings: what they share."""
        t0 = time.perf_counter()
        vec = self.index.vector(self.index.row_of(path))
        if also:
            vec = vec + sum(self.index.vector(self.index.row_of(p)) for p in also)
            vec = (vec / max(float(np.linalg.norm(vec)), 1e-12)).astype(np.float32)
        hits = self.index.search(vec, filters, top_k)
        return SearchResult(hits, 0.0, {"rank": (time.perf_counter() - t0) * 1e3}, vec, filters)

    def similar_part(self, path, start_s: float, end_s: float, filters: Filters = NO_FILTERS,
                     top_k: int = 20) -> SearchResult:
        """"More like this part": the library ranked by a part of one of its sounds (the bird in
        an ambience), embedded as indexing embeds a sound: cut at the index's cut, as a reference."""
        t0 = time.perf_counter()
        wave, sr = self.load_reference(self.index.hit(1, self.index.row_of(path), 1.0))   # a library sound
        part = wave[max(0, int(start_s * sr)): max(0, int(end_s * sr))]
        if len(part) < PART_MIN_S * sr:
            raise QviError(f"select a longer part of the sound ({PART_MIN_S:.1f} s or more)")
        t1 = time.perf_counter()
        vec = self.encoder.embed(isolate_sound(part, sr, above_floor_db=self.index.cut_above_floor_db), sr)
        t2 = time.perf_counter()
        hits = self.index.search(vec, filters, top_k)
        timings = {"load": (t1 - t0) * 1e3, "embed": (t2 - t1) * 1e3, "rank": (time.perf_counter() - t2) * 1e3}
        return SearchResult(hits, len(part) / sr, timings, vec, filters)

    def with_feedback(self, result: SearchResult, ratings: dict, top_k: int | None = None,
                      settings: FeedbackSettings = FEEDBACK) -> SearchResult:
        """The same query re-ranked by its ratings ({path or relpath: +1 or -1}) at once.

        Liked sounds are pinned at the top and disliked ones at the bottom of the list, each
        keeping its mark; the rest is re-ranked by the feedback rule (docs/FEEDBACK.md)."""
        if result.query_vector is None:
            raise ValueError("this result has no query vector to re-rank")
        t0 = time.perf_counter()
        top_k = top_k or len([h for h in result.hits if not h.rating]) or 20
        rows = {self.index.row_of(p): r for p, r in ratings.items() if r in (-1, 1)}
        liked = [r for r, v in rows.items() if v > 0]
        disliked = [r for r, v in rows.items() if v < 0]
        q = result.query_vector
        L = np.stack([self.index.vector(r) for r in liked]) if liked else np.zeros((0, len(q)), np.float32)
        D = np.stack([self.index.vector(r) for r in disliked]) if disliked else np.zeros((0, len(q)), np.float32)
        blocks = self.index.blocks
        want = top_k + len(rows)
        if not rows:
            order = [(h.row, h.score) for h in self.index.search(q, result.filters, want)]
        elif settings.rule == "shortlist":
            base = self.index.search(q, result.filters, max(settings.shortlist, want))
            cand = np.array([h.row for h in base], dtype=np.int64)      # none, when the filters keep nothing
            new = shortlist_scores(np.array([h.score for h in base]), np.asarray(self.index.embeddings[cand]),
                                   q, L, D, settings, blocks, categories=self.index.category_codes(cand),
                                   liked_categories=self.index.category_codes(liked)) if len(cand) else np.zeros(0)
            order = [(int(cand[i]), float(new[i])) for i in np.argsort(-new, kind="stable")]
        else:
            moved = moved_query(q, L, D, settings, blocks)
            order = [(h.row, h.score) for h in self.index.search(moved, result.filters, want)]
        unrated = [(row, score) for row, score in order if row not in rows][:top_k]
        # A rated sound still moves the others, but is pinned only where the filters keep it: a
        # 30 s ambience liked before "under 1 s" was chosen no longer tops the short sounds.
        rated = np.fromiter(rows, dtype=np.int64, count=len(rows))
        shown = set(rated[self.index.keeps(result.filters, rated)].tolist())
        pinned = [(r, 1) for r in liked if r in shown] + [(r, 0) for r, _ in unrated] + \
            [(r, -1) for r in disliked if r in shown]
        scores = dict(order)
        hits = [replace(self.index.hit(rank, row, scores.get(row, float("nan"))), rating=rating)
                for rank, (row, rating) in enumerate(pinned, 1)]
        return replace(result, hits=hits, timings_ms={"rank": (time.perf_counter() - t0) * 1e3}, query_vector=q)

    def load_reference(self, hit: SearchHit, stereo: bool = False) -> tuple[np.ndarray, int]:
        """The audio of a library sound (``stereo``: a stereo file's two channels, for listening);
        a clear error if it has gone."""
        if not hit.path.is_file():
            raise AudioError(hit.path, "this sound is no longer in the library folder (moved or deleted?); "
                                       "re-index the library to update the list")
        return load_audio(hit.path, stereo=stereo)

    def where_it_matches(self, result: SearchResult, wave: np.ndarray, sr: int, stop=None,
                         on_best=None) -> Match | None:
        """Where in a library sound (its audio ``wave``, stereo or mono, at ``sr`` Hz) the query
        of ``result`` matches best (:mod:`qvi_app.ranking.where`, ``on_best`` as there); None
        when ``stop()`` turned true first."""
        if result.query_vector is None:
            raise ValueError("this result has no query vector to match")
        return locate(to_mono(wave), sr, result.query_duration, lambda part: self.encoder.embed(part, sr),
                      lambda vectors: self.index.scores_of(vectors, result.query_vector), stop, on_best)


@dataclass(frozen=True)
class KnownLibrary:
    index_dir: Path
    library: Path          # the folder of sounds
    sounds: int


def known_libraries() -> list[KnownLibrary]:
    """The libraries indexed on this computer (the indexes in the data folder), the most recently
    indexed or updated first, then the bundled demo library. Read from the indexes themselves, so
    nothing is remembered twice; an index that cannot be read is left out."""
    found = []
    folder = data_dir() / "indexes"
    for index_dir in sorted(folder.iterdir()) if folder.is_dir() else []:
        try:
            library, sounds = peek(index_dir)
            found.append(((index_dir / "CURRENT").stat().st_mtime, KnownLibrary(index_dir, library, sounds)))
        except (QviError, OSError):
            continue
    found.sort(key=lambda pair: -pair[0])
    library, sounds = peek(DEMO_INDEX)
    return [known for _, known in found] + [KnownLibrary(DEMO_INDEX, library, sounds)]


def forget_library(where) -> tuple[list[KnownLibrary], int]:
    """Delete the indexes of a library indexed on this computer, named by its folder of sounds
    (every index of it) or by one index folder; the sounds are not touched. Only an index in the
    data folder's ``indexes/`` goes (never the demo library's, never a folder a link there
    points to). Returns the indexes removed and the bytes freed."""
    where = Path(where).expanduser().resolve()
    if where in (DEMO_INDEX.resolve(), peek(DEMO_INDEX)[0].resolve()):
        raise QviError("the demo library's index comes with qvi and stays: nothing was removed")
    known = [k for k in known_libraries()[:-1] if where in (k.index_dir.resolve(), k.library.resolve())]
    if not known:
        raise QviError(f"no index of {printable(str(where))} to forget (qvi libraries lists them): nothing was removed")
    home = (data_dir() / "indexes").resolve()
    for k in known:                                  # all checked before any is removed
        if k.index_dir.resolve().parent != home:
            raise QviError(f"{printable(str(k.index_dir))} leads out of {printable(str(home))} "
                           f"(to {printable(str(k.index_dir.resolve()))}), not one of qvi's indexes: nothing was removed")
    freed = 0
    for k in known:
        freed += folder_bytes(k.index_dir)
        shutil.rmtree(k.index_dir.resolve())
    return known, freed


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder`` (links not followed)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def size_text(n: int) -> str:
    """Bytes as a person reads them: "120 kB", "3.1 MB", "1.2 GB"."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}" if n < 10 * scale else f"{n / scale:.0f} {unit}"
    return f"{n} B"


def describe_encoder(encoder: Encoder) -> str:
    """'qvi sound-effects CNN (fine-tuned on 3,343 sounds, Nov 2026) + CQT/2DFT', from the
    checkpoint's provenance where there is one."""
    parts = getattr(encoder, "parts", [encoder])
    names = []
    for part in parts:
        if part.name == "2dft":
            names.append("CQT/2DFT")
            continue
        title = (getattr(part, "metadata", {}).get("provenance") or {}).get("title")
        names.append(title or f"{_label(part.name)} ({part.version})")
    return " + ".join(names)


def _label(encoder_name: str) -> str:
    """A backbone's name for people ("sound-effects CNN"); other encoders keep their own."""
    try:
        return backbone(encoder_name).label
    except ValueError:
        return encoder_name


def clipping_advice(share: float) -> str | None:
    """What to say about a query with ``share`` of its samples in flat tops; None when clean."""
    if share <= CLIPPED_SHARE:
        return None
    # Real imitations driven past full scale, then searched (docs/TRAINING.md row 62).
    return (f"the query looks clipped ({100 * share:.1f}% of it flat at its peak), which costs matches: "
            "real imitations clipped 6 dB over found their sound about a quarter less often among the "
            "library, 12 dB over half as often. Record it again further from the microphone or with its "
            "input level lower (the meter should stay out of the red)")


def prepare_query(wave: np.ndarray, sr: int, above_floor_db: float = CUT_ABOVE_FLOOR_DB) -> np.ndarray:
    """Cut the imitation out of a recorded or loaded query (:func:`isolate_sound`, as the library
    it is searched in was cut: ``above_floor_db``); refuse silence and blips with a message a
    user can act on."""
    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) == 0 or float(np.abs(wave).max()) < SILENT_PEAK:
        raise AudioError("query", "the recording is silent: check that the microphone is connected, "
                                  "selected and not muted, then record again")
    trimmed = isolate_sound(wave, sr, above_floor_db=above_floor_db, query=True)
    if len(trimmed) < MIN_QUERY_S * sr:
        raise AudioError("query", f"too short after trimming silence (under {MIN_QUERY_S * 1000:.0f} ms); "
                                  "record a longer imitation")
    return trimmed


def spectrogram(wave: np.ndarray, sr: int) -> DisplaySpectrogram:
    """What the window plots for a query or a result (same axes for both)."""
    return display_spectrogram(wave, sr)


def build_index(library, index_dir=None, encoder_name: str = DEFAULT_ENCODER, checkpoint=None, categories_csv=None,
                **kwargs) -> BuildReport:
    """Index (or update the index of) a library folder; see :func:`qvi_app.index.update_index`."""
    encoder = load_encoder(encoder_name, checkpoint)
    index_dir = Path(index_dir) if index_dir else default_index_dir(Path(library), encoder_name)
    return update_index(library, index_dir, encoder, categories_csv=categories_csv, **kwargs)


#: What the window and the CLI use of qvi, in one place (some names re-exported from lower layers).
__all__ = ["AUDIO_EXTENSIONS", "DEFAULT_ENCODER", "DEMO_INDEX", "FEEDBACK", "IndexingCancelled", "QviSession",
           "ReferenceIndex", "SearchHit", "SearchResult", "audition_gain", "build_index", "clipping_advice",
           "default_index_dir", "describe_encoder", "load_audio", "prepare_query", "spectrogram", "unread_format"]
