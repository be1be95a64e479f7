"""``qvi``: index a sound library and search it by an audio query.

Exit codes: 0 ok, 2 bad usage or input (one line on stderr), 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import time
from pathlib import Path

from qvi_app import __version__
from qvi_app.audio.tags import shortened
from qvi_app.encoders import DEFAULT_ENCODER, ENCODER_NAMES
from qvi_app.encoders.onnx_runtime import RUNTIMES
from qvi_app.errors import QviError, printable
from qvi_app.index.embedders import ENGINES


class _Parser(argparse.ArgumentParser):
    """A usage mistake is one line, as every other bad input is: what is wrong and where the help
    is (argparse printed its usage block first: five lines for `--top 0`). Sub-commands' parsers
    are of this class too (argparse makes them of their parent's)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} ({self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="qvi", description="Find sound effects by imitating them with your voice.")
    p.add_argument("--version", action="version", version=f"qvi {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    ix = sub.add_parser("index", help="index (or update the index of) a folder of sounds")
    ix.add_argument("library", type=Path, metavar="DIR")
    ix.add_argument("--index", type=Path, metavar="INDEX_DIR",
                    help="where to keep the index (default: the user's data directory; "
                         "the bundled index for the demo library)")
    ix.add_argument("--encoder", choices=ENCODER_NAMES, default=DEFAULT_ENCODER,
                    help="qvi (default: the learned model ranked as its checkpoint says; the bundled one: the CNN "
                         "alone), cnn (the learned model alone, whatever its checkpoint says), 2dft, passt")
    ix.add_argument("--checkpoint", "--weights", type=Path, dest="checkpoint",
                    help="model file (default: the bundled model) or PaSST weights for --encoder passt")
    ix.add_argument("--categories", type=Path, metavar="CSV", help="CSV with columns path,category")
    ix.add_argument("--workers", type=_positive_int, metavar="N",
                    help="processes embedding files (default: one per core for 200+ new files, else 1)")
    ix.add_argument("--engine", choices=ENGINES, default=ENGINES[0],
                    help="where files are embedded: processes on this machine (default) or a Ray cluster")
    ix.add_argument("--ray-address", metavar="ADDR",
                    help="with --engine ray: the cluster to join (e.g. auto, or HEAD_IP:6379; default: start a "
                         "local one); the library and model must be at the same path on every node")
    ix.add_argument("--runtime", choices=RUNTIMES, default="auto",
                    help="what runs the CNN: ONNX Runtime (about 1.4x faster on CPU; pip install -e '.[fast]'), "
                         "int8 (ONNX Runtime quantised to 8 bits: the network 3.7x faster, embeddings within "
                         "0.007 cosine of float; docs/BENCHMARKS.md), torch, or auto (ONNX Runtime when "
                         "installed, from 50 new files; default)")
    ix.add_argument("--quiet", action="store_true", help="no progress bar")

    se = sub.add_parser("search", help="rank the library by similarity to an audio file")
    se.add_argument("query", type=Path, nargs="*", metavar="QUERY",
                    help="a sound file of your imitation (WAV, FLAC, OGG, MP3, ...; silence and clicks at the ends are "
                         "cut); several, or a folder of them: a list for each")
    se.add_argument("--record", action="store_true",
                    help="imitate into the microphone instead (the one chosen in the window, else the default): "
                         "recording ends 2 s after the sound does, at Ctrl+C, or after 10 s")
    se.add_argument("--keep", type=Path, metavar="FILE.wav", help="with --record: also save the take as a WAV file")
    _index_args(se)
    se.add_argument("--category", help="only this category (see: qvi categories)")
    se.add_argument("--name", metavar="WORDS", help=_NAME_HELP)
    se.add_argument("--length", metavar="SECONDS", help=_LENGTH_HELP)
    se.add_argument("--top", type=_positive_int, default=10, metavar="N", help="how many results (default 10)")
    se.add_argument("--json", action="store_true", help="print a JSON list of {rank, path, category, score, duration} (and description, when the file has one)")
    se.add_argument("--like", type=Path, action="append", default=[], metavar="PATH",
                    help="a result you liked (as an earlier search printed it): the list is re-ranked toward it")
    se.add_argument("--dislike", type=Path, action="append", default=[], metavar="PATH",
                    help="a result you disliked: the list is re-ranked away from it")
    se.add_argument("--no-adapter", action="store_true", help="ignore the adapter learned from your ratings")
    se.add_argument("--where", action="store_true",
                    help="for each result several times as long as the imitation, where in it the imitation "
                         "matches best, and up to 4 other places it matches (about 1.5 s per 30 s sound on 2 "
                         "cores; JSON: match [start, end], also [[start, end], …])")

    si = sub.add_parser("similar", help="more like this: rank the library by one of its sounds (no re-embedding)")
    si.add_argument("sound", type=Path, nargs="+", metavar="PATH",
                    help="a library sound, as qvi search prints it; several: ranked by what they share")
    si.add_argument("--part", type=float, nargs=2, metavar=("START", "END"),
                    help="more like this part of it only (seconds), as a drag across its waveform in the window")
    _index_args(si)
    si.add_argument("--category", help="only this category")
    si.add_argument("--name", metavar="WORDS", help=_NAME_HELP)
    si.add_argument("--length", metavar="SECONDS", help=_LENGTH_HELP)
    si.add_argument("--top", type=_positive_int, default=10, metavar="N", help="how many results (default 10)")
    si.add_argument("--json", action="store_true", help="print a JSON list of {rank, path, category, score, duration} (and description, when the file has one)")

    ad = sub.add_parser("adapt", help="learn your voice from your ratings: a query adapter, kept only if it helps")
    _index_args(ad)
    ad.add_argument("--delete", action="store_true", help="delete the adapter learned for this model instead")
    ad.add_argument("--quiet", action="store_true")

    li = sub.add_parser("liked", help="list the sounds you gave a thumbs up, or copy them to a folder")
    li.add_argument("--copy-to", type=Path, metavar="DIR",
                    help="copy them into DIR (made if needed; demo sounds with their authors and licences)")

    lb = sub.add_parser("libraries", help="list the libraries indexed on this computer, or forget one's index")
    lb.add_argument("--forget", type=Path, metavar="FOLDER",
                    help="delete the index of this library (its folder of sounds, or its index folder); "
                         "the sounds are not touched")

    ls = sub.add_parser("list", help="list the library's sounds that a category, words or a length keep (no query)")
    ls.add_argument("--index", type=Path, metavar="INDEX_DIR", help="index folder (default: the bundled demo index)")
    ls.add_argument("--category", help="only this category")
    ls.add_argument("--name", metavar="WORDS", help=_NAME_HELP)
    ls.add_argument("--length", metavar="SECONDS", help=_LENGTH_HELP)
    ls.add_argument("--top", type=_positive_int, metavar="N", help="at most N sounds (default: every one kept)")
    ls.add_argument("--json", action="store_true", help="print a JSON list of {rank, path, category, score (null), duration} (and description)")

    ca = sub.add_parser("categories", help="list the library's categories, each with its number of sounds "
                                           "(of those that --name and --length keep)")
    _index_args(ca)
    ca.add_argument("--name", metavar="WORDS", help="count only " + _NAME_HELP.removeprefix("only "))
    ca.add_argument("--length", metavar="SECONDS", help="count only " + _LENGTH_HELP.removeprefix("only "))
    ca.set_defaults(category=None)                 # each category is counted: none is chosen

    inf = sub.add_parser("info", help="show the library, the encoder and counts")
    _index_args(inf)
    inf.add_argument("--verify", action="store_true",
                     help="also check the embeddings against the checksum written with them (reads the whole file) "
                          "and the library folder for sounds added, changed or removed since indexing")

    be = sub.add_parser("bench", help="measure query latency, indexing and ranking speed (see docs/BENCHMARKS.md)")
    be.add_argument("--quick", action="store_true", help="smaller sizes; under 3 minutes on 2 cores")
    be.add_argument("--json", type=Path, default=Path("qvi-bench.json"), metavar="FILE",
                    help="where to write the results (default: qvi-bench.json)")
    be.add_argument("--scale", type=int, nargs="+", metavar="N",
                    help="instead: a synthetic library of N sounds (e.g. 1000000): index build, cold qvi search "
                         "call (wall, peak RSS), warm query, --category, recall@10 (docs/BENCHMARKS.md)")
    be.add_argument("--work", type=Path, metavar="DIR", help="with --scale: where the temporary index goes")

    tr = sub.add_parser("train", help="fine-tune the encoder on a dataset (NT-Xent; see docs/TRAINING.md)")
    tr.add_argument("data", type=Path, nargs="+", metavar="DATA_DIR", help="a VimSketch / VocalSketch / Vocal "
                    "Imitation Set folder, or any folder of sounds (imitations are then simulated); several are "
                    "trained on as one")
    _train_args(tr)
    tr.add_argument("--out", help="checkpoint to write (default: qvi-trained.pt)")
    tr.add_argument("--epochs", type=_positive_int)
    tr.add_argument("--batch-size", type=_positive_int)
    tr.add_argument("--seed", type=int)
    tr.add_argument("--device", choices=("auto", "cpu", "cuda"))
    tr.add_argument("--towers", type=int, choices=(1, 2), help="1: shared weights (Siamese), 2: separate towers")
    tr.add_argument("--backbone", choices=("cnn", "passt"), help="cnn (default) or passt (fine-tune on a GPU)")
    tr.add_argument("--exclude-library", metavar="DIR", help="drop training sounds whose audio is also in DIR")
    tr.add_argument("--feedback", nargs="+", metavar="DB_OR_CSV",
                    help="users' ratings (feedback.sqlite or exported CSVs): liked pairs join training as real pairs")
    tr.add_argument("--resume", action="store_true", help="continue an interrupted run with the same settings")
    tr.add_argument("--quiet", action="store_true", help="no progress bars")

    bk = sub.add_parser("bank", help="give a model a query bank for the hubness correction (see docs/TRAINING.md)")
    bk.add_argument("model", type=Path, metavar="MODEL", help="a qvi checkpoint")
    bk.add_argument("data", type=Path, nargs="+", metavar="DATA_DIR",
                    help="folders of sounds to simulate imitations of (not the library the model will search)")
    bk.add_argument("--out", type=Path, help="checkpoint to write (default: MODEL, in place)")
    bk.add_argument("--strategy", default="follow", help="simulator strategy: follow (default), syllables, "
                    "tonal, hiss, or mix (drawn per sound)")
    bk.add_argument("--per-reference", type=_positive_int, default=1, help="imitations per sound (default 1)")
    bk.add_argument("--hub-k", type=_positive_int, default=10, help="nearest bank imitations averaged (default 10)")
    bk.add_argument("--hub-weight", type=float, default=0.5, help="weight of the penalty (default 0.5)")
    bk.add_argument("--seed", type=int, default=0)
    bk.add_argument("--quiet", action="store_true", help="no progress bar")

    so = sub.add_parser("soup", help="average several training runs of one recipe into one model (see docs/TRAINING.md)")
    so.add_argument("out", type=Path, metavar="OUT", help="checkpoint to write")
    so.add_argument("runs", type=Path, nargs="+", metavar="RUN",
                    help="checkpoints of qvi train runs that share a head_seed (--set head_seed=0)")

    ev = sub.add_parser("evaluate", help="MRR / top-k / NDCG of models and baselines on held-out references")
    ev.add_argument("data", type=Path, metavar="DATA_DIR")
    ev.add_argument("--dataset", default="auto", help="layout: auto, library, vimsketch, vocalsketch, vis")
    ev.add_argument("--checkpoint", type=Path, action="append", metavar="MODEL",
                    help="cnn model to evaluate (repeatable; default: the bundled model)")
    ev.add_argument("--split", choices=("all", "test", "val", "train"), default="all",
                    help="which references: all of DATA, or a split saved in a checkpoint (default: all)")
    ev.add_argument("--split-from", type=Path, metavar="MODEL",
                    help="checkpoint whose saved split to use (default: the first --checkpoint)")
    ev.add_argument("--imitations", type=_positive_int, default=2,
                    help="simulated imitations per reference when DATA has no recorded ones (default 2)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--no-baselines", action="store_true", help="skip zero-shot, CQT+2DFT and random")
    ev.add_argument("--distractors", type=Path, metavar="DIR",
                    help="also rank the references among every sound of this library (e.g. assets/library)")
    ev.add_argument("--ranking", metavar="JSON", help="more systems: a JSON file or string mapping a label to "
                    "ranking settings, e.g. '{\"cnn+2dft\": {\"encoders\": [\"cnn\", \"2dft\"], \"weights\": [0.6, 0.4], "
                    "\"hub_bank\": \"library\"}}' (the cnn is the first --checkpoint)")
    ev.add_argument("--out", type=Path, default=Path("qvi-evaluation"), metavar="PREFIX",
                    help="writes PREFIX.json and PREFIX.md (default: qvi-evaluation)")
    ev.add_argument("--quiet", action="store_true")

    ins = sub.add_parser("inspect", help="batch statistics, spectrogram grid and audio of training pairs")
    ins.add_argument("data", type=Path, nargs="+", metavar="DATA_DIR")
    _train_args(ins)
    ins.add_argument("--out", type=Path, default=Path("qvi-inspect"), metavar="DIR")
    ins.add_argument("--pairs", type=_positive_int, default=6)
    return p


def _train_args(p):
    p.add_argument("--config", type=Path, metavar="JSON", help="training settings (fields of TrainConfig)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override one setting, e.g. --set lr_head=3e-4 --set augment.noise_prob=0.2")


def _train_config(a):
    from qvi_app.training.config import TrainConfig

    try:
        cfg = TrainConfig.from_file(a.config) if a.config else TrainConfig()
        flags = {"data": [str(p) for p in a.data]}
        for name in ("out", "epochs", "batch_size", "seed", "device", "towers", "backbone", "exclude_library", "feedback"):
            if getattr(a, name, None) is not None:
                flags[name] = getattr(a, name)
        return TrainConfig.from_dict({**cfg.to_dict(), **flags}).with_overrides(a.set)
    except (ValueError, TypeError, OSError) as exc:
        raise QviError(f"training settings: {exc}") from None


def _index_args(p):
    p.add_argument("--index", type=Path, metavar="INDEX_DIR", help="index folder (default: the bundled demo index)")
    p.add_argument("--checkpoint", "--weights", type=Path, dest="checkpoint",
                   help="cnn model file (default: the bundled model), or PaSST weights for a passt index")


_NAME_HELP = ("only sounds whose path or description (the file's tags, BWF, iXML) holds every one of these words, "
              "in any case; -word leaves out those that hold it, \"two words\" keeps a phrase: 'door -car \"slam shut\"'")
_LENGTH_HELP = ("only sounds of this length in seconds: 0.5-2 or '0.5 to 2' (from 0.5 to under 2 s), 2- (2 s or more), "
                "-1 (under 1 s)")


def _filters(a):
    """The --category, --name and --length of a search as one value (a length checked here)."""
    from qvi_app.index.filters import Filters, Length

    return Filters(a.category, a.name, Length.parse(a.length))


def _positive_int(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _cmd_index(a) -> int:
    from qvi_app.app import build_index

    report = build_index(a.library, a.index, a.encoder, a.checkpoint, a.categories, show_progress=not a.quiet,
                         workers=a.workers, engine=a.engine, ray_address=a.ray_address, runtime=a.runtime)
    print(report.summary())
    return 0


def _cmd_search(a) -> int:
    from qvi_app.app import QviSession

    if a.record and a.query:
        raise QviError("--record imitates into the microphone: give no QUERY file with it")
    if not a.record and not a.query:
        raise QviError("give a sound file of your imitation (or --record to imitate into the microphone)")
    if a.keep and not a.record:
        raise QviError("--keep saves a take made with --record")
    one = a.record or (len(a.query) == 1 and not a.query[0].is_dir())
    if (a.like or a.dislike) and not one:
        raise QviError("--like and --dislike rate the results of one query: give one QUERY with them")
    filters = _filters(a)                   # a length that cannot be read stops before the model loads
    queries = [query for given in a.query for query in _query_files(given)]
    session = QviSession(a.index, a.checkpoint, use_adapter=not a.no_adapter)
    _warn_if_gone(session)
    if one:
        if a.record:                        # the model is loaded first: the search follows the take at once
            wave, sr, clipped = _record(a.keep)
            result = session.search_wave(wave, sr, filters, a.top, clipped=clipped)
        else:
            result = session.search_file(a.query[0], filters, a.top)
        _warn_if_clipped(result)
        if a.like or a.dislike:
            ratings = {**{p: 1 for p in a.like}, **{p: -1 for p in a.dislike}}
            result = session.with_feedback(result, ratings, a.top)
        return _print_hits(result, a.json, _where(session, result) if a.where else None)
    # Several queries (a folder of takes): a list each; a file that fails gets its line, the rest go on.
    failed, shown, lists = 0, 0, []
    for query in queries:
        try:
            result = session.search_file(query, filters, a.top)
        except QviError as exc:
            failed += 1
            _say_error(exc)
            lists.append({"query": str(query), "error": str(exc)})
            continue
        _warn_if_clipped(result, query)
        where = _where(session, result) if a.where else None
        if a.json:
            lists.append({"query": str(query), "results": _hit_dicts(result, where)})
        else:
            print(("\n" if shown else "") + f"== {printable(str(query))}")
            _print_hits(result, False, where)
        shown += 1
    if a.json:
        print(json.dumps(lists, indent=2, allow_nan=False))
    return 2 if failed else 0


def _record(keep: Path | None):
    """A take from the microphone, as the window records one: until the sound has been over for
    2 s (``audio.endpoint``), Ctrl+C, or the time limit. Returns (wave, rate, clipped share)."""
    from qvi_app.audio.devices import Recorder
    from qvi_app.audio.endpoint import QUIET_S
    from qvi_app.settings import AppSettings

    settings = AppSettings.load()
    rec = Recorder(settings.max_record_s, settings.input_device, quiet_s=QUIET_S)
    rec.start()
    print(f"qvi: recording at {rec.sample_rate} Hz: imitate the sound; it stops {QUIET_S:.0f} s after you do "
          f"(Ctrl+C: now; {settings.max_record_s:.0f} s at most)", file=sys.stderr, flush=True)
    live = sys.stderr.isatty()              # a level meter on one line, redrawn; a pipe gets none
    try:
        while rec.recording:
            if live:
                print("\r" + _meter_line(rec), end="", file=sys.stderr, flush=True)
            time.sleep(0.05)
    except KeyboardInterrupt:               # ends the take, as Space does in the window
        pass
    if live:
        print("\r\033[K", end="", file=sys.stderr)
    wave, sr = rec.stop()
    print(f"qvi: recorded {len(wave) / max(sr, 1):.1f} s", file=sys.stderr, flush=True)
    if keep is not None:
        import soundfile as sf

        try:
            keep.parent.mkdir(parents=True, exist_ok=True)
            sf.write(keep, wave, sr, subtype="FLOAT", format="WAV")
        except (OSError, sf.LibsndfileError) as exc:    # the take is still searched: said, not fatal
            print(f"qvi: warning: the take was not kept as {printable(str(keep))}: {printable(str(exc))}",
                  file=sys.stderr)
    return wave, sr, rec.clipped


def _meter_line(rec) -> str:
    """The window's level meter and countdown as a line of text: "[#########.......]  2.3 s  stops in 1.4 s"."""
    bars = 20
    filled = round(bars * min(max((rec.level + 60.0) / 60.0, 0.0), 1.0))     # -60..0 dBFS, as the window's
    return f"[{'#' * filled}{'.' * (bars - filled)}] {rec.elapsed:4.1f} s  {rec.countdown()}"


def _query_files(given: Path) -> list[Path]:
    """A query as named, or for a folder every sound file in it and its subfolders (the walk
    that indexing uses: sorted, hidden ones left out, each real folder once). Files in a format
    qvi does not read (a phone's M4A memo) are queries too, whose failure says so."""
    if not given.is_dir():
        return [given]
    from qvi_app.index.scan import nothing_found, scan_library

    unread = []
    found = sorted(f.relpath for f in scan_library(given, unread=unread) + unread)
    if not found:
        raise QviError(nothing_found(given))
    return [given / rel for rel in found]


def _cmd_similar(a) -> int:
    from qvi_app.app import QviSession

    filters = _filters(a)
    session = QviSession(a.index, a.checkpoint)
    _warn_if_gone(session)
    first, *also = a.sound
    if a.part:
        if also:
            raise QviError("--part searches a part of one sound: give one PATH with it")
        return _print_hits(session.similar_part(first, *a.part, filters, a.top), a.json)
    return _print_hits(session.similar(first, filters, a.top, also=also), a.json)


def _say_error(exc: QviError) -> None:
    """A user's error as the one line on stderr that every command prints."""
    print(f"qvi: {printable(str(exc))}", file=sys.stderr)


def _warn_if_gone(session) -> None:
    gone = session.library_gone()
    if gone:
        print(f"qvi: warning: {gone}", file=sys.stderr)


def _warn_if_clipped(result, query=None) -> None:
    from qvi_app.app import clipping_advice

    advice = clipping_advice(result.clipped)
    if advice:
        advice = advice if query is None else advice.replace("the query", f"the query {printable(str(query))}", 1)
        print(f"qvi: warning: {advice}", file=sys.stderr)


def _where(session, result) -> dict[int, list[tuple[float, float]]]:
    """rank → the parts (start, end s) of each long result where the query matches, best first
    (Match.places); a sound that cannot be read is said and left out."""
    from qvi_app.ranking.where import worth_locating

    out = {}
    for h in result.hits:
        if worth_locating(h.duration, result.query_duration):
            try:
                out[h.rank] = session.where_it_matches(result, *session.load_reference(h)).places()
            except QviError as exc:
                print(f"qvi: warning: where the query matches was not found: {printable(str(exc))}", file=sys.stderr)
    return out


def _hit_dicts(result, where: dict | None) -> list[dict]:
    def places(parts):                      # "match": the best part; "also": the other places, best first
        parts = [[round(x, 2) for x in part] for part in parts]
        return {"match": parts[0], "also": parts[1:]}

    return [{**h.to_dict(), **(places(where[h.rank]) if where and h.rank in where else {})} for h in result.hits]


def _where_text(parts: list[tuple[float, float]]) -> str:
    also = f"; also {', '.join(f'{a:.1f}–{b:.1f}' for a, b in parts[1:])} s" if len(parts) > 1 else ""
    return f"  (matches at {parts[0][0]:.1f}–{parts[0][1]:.1f} s{also})"


def _print_hits(result, as_json: bool, where: dict | None = None) -> int:
    if as_json:
        print(json.dumps(_hit_dicts(result, where), indent=2, allow_nan=False))
        return 0
    if not result.hits:
        print(f"qvi: {result.filters.nothing_found()}", file=sys.stderr)
        return 0
    marks = {1: "▲", -1: "▼", 0: " "}
    for h in result.hits:
        at = _where_text(where[h.rank]) if where and h.rank in where else ""
        told = f"  · {printable(shortened(h.description, 60))}" if h.description else ""
        print(f"{h.rank:3d} {marks[h.rating]} {h.score:6.3f}  {printable(h.category):<18} {h.duration:5.1f} s  "
              f"{printable(str(h.path))}{told}{at}")
    print(f"({result.total_ms:.0f} ms: " + ", ".join(f"{k} {v:.0f}" for k, v in result.timings_ms.items()) + ")",
          file=sys.stderr)
    return 0


def _cmd_liked(a) -> int:
    from qvi_app.feedback import FeedbackStore
    from qvi_app.feedback.liked import copy_liked_sounds, liked_paths, nothing_liked
    from qvi_app.settings import feedback_db_path

    if not feedback_db_path().is_file():
        raise QviError(f"no ratings yet ({feedback_db_path()} does not exist): rate some results first")
    store = FeedbackStore(feedback_db_path())
    try:
        if a.copy_to is not None:
            report = copy_liked_sounds(store, a.copy_to)
            print(f"qvi: {report.summary()}" if report.nothing else report.summary(),
                  file=sys.stderr if report.nothing else sys.stdout)
            return 0
        nothing = nothing_liked(store)
        if nothing:
            print(f"qvi: {nothing}", file=sys.stderr)
        for path in liked_paths(store):
            print(printable(str(path)))
        return 0
    finally:
        store.close()


def _cmd_libraries(a) -> int:
    from qvi_app import app

    if a.forget is not None:
        gone, freed = app.forget_library(a.forget)
        for k in gone:
            print(f"forgot the index of {printable(str(k.library))} ({k.sounds:,} sounds, {k.index_dir.name})")
        print(f"{app.size_text(freed)} freed; the sounds themselves are untouched")
        return 0
    for k in app.known_libraries():
        what = "demo library" if k.index_dir == app.DEMO_INDEX else \
            ("folder not found" if not k.library.is_dir() else "")
        print(f"{k.sounds:>8,} sounds  {app.size_text(app.folder_bytes(k.index_dir)):>9}  {printable(str(k.library))}"
              + (f"  ({what})" if what else ""))
    return 0


def _cmd_adapt(a) -> int:
    from qvi_app.app import QviSession
    from qvi_app.feedback import FeedbackStore
    from qvi_app.settings import feedback_db_path

    session = QviSession(a.index, a.checkpoint, use_adapter=False)
    if a.delete:
        existed = session.adapter_file.is_file()
        session.forget_adapter(delete=True)
        print(f"deleted {session.adapter_file}" if existed else "there was no adapter for this model")
        return 0
    if not feedback_db_path().is_file():
        raise QviError(f"no ratings yet ({feedback_db_path()} does not exist): rate some results in the window first")
    bar = None
    if not a.quiet:
        from tqdm import tqdm

        bar = tqdm(total=100, desc="learning from your ratings", unit="%", leave=False)
    report = session.learn_from_ratings(FeedbackStore(feedback_db_path()),
                                        progress=(lambda f: bar.update(round(100 * f) - bar.n)) if bar else None)
    if bar:
        bar.close()
    print(report.summary() + (f"; saved as {report.path}" if report.path else ""))
    return 0


#: Sounds read from the index at a time by ``qvi list``: a million-sound library is printed
#: without holding a million results.
_LIST_CHUNK = 10_000


def _cmd_list(a) -> int:
    """The sounds the filters keep, by path, as ``qvi search`` prints results (no score)."""
    from qvi_app.index import ReferenceIndex
    from qvi_app.paths import DEMO_INDEX

    filters = _filters(a)
    index = ReferenceIndex.open(a.index or DEMO_INDEX)
    if not index.library_root.is_dir():
        print(f"qvi: warning: the library folder {printable(str(index.library_root))} no longer exists: "
              "its sounds are listed but cannot be played", file=sys.stderr)
    start, most, printed = 0, a.top, 0
    print("[" if a.json else "", end="")
    while True:
        hits, total = index.listing(filters, min(_LIST_CHUNK, (most or _LIST_CHUNK)), start)
        most = None if most is None else most - len(hits)
        for h in hits:
            if a.json:
                print(("," if printed else "") + "\n  " + json.dumps(h.to_dict(), allow_nan=False), end="")
            else:
                told = f"  · {printable(shortened(h.description, 60))}" if h.description else ""
                print(f"{h.rank:3d}  {printable(h.category):<18} {h.duration:5.1f} s  {printable(str(h.path))}{told}")
            printed += 1
        start += len(hits)
        if not hits or start >= total or most == 0:
            break
    if a.json:
        print("\n]" if printed else "]")
    elif not printed:
        print(f"qvi: {filters.nothing_found()}", file=sys.stderr)
    return 0


def _cmd_categories(a) -> int:
    from qvi_app.app import QviSession
    from qvi_app.index import NO_FILTERS

    session = QviSession(a.index, a.checkpoint)
    filters = _filters(a)
    if filters == NO_FILTERS:                       # every category, without reading every length
        counts = session.categories()
    else:
        counts = {c: n for c, n in session.index.facets(filters).categories.items() if n}
    for name, n in counts.items():
        print(f"{printable(name)}\t{n}")
    return 0


def _cmd_info(a) -> int:
    import numpy as np

    from qvi_app.app import QviSession
    from qvi_app.audio.load import formats_read

    session = QviSession(a.index, a.checkpoint)
    info = session.info()
    model = info.pop("encoder_model")
    for k, v in info.items():
        print(f"{k:<11} {printable(str(v))}")
    print(f"{'model':<11} {model['id']} ({model['dim']}-d, {model['sample_rate']} Hz)")
    print(f"{'cut':<11} each sound from {session.index.cut_above_floor_db:g} dB over its noise floor")
    print(f"{'reads':<11} {formats_read()}")
    if len(session.index):
        seconds = session.index.durations()
        counts = ", ".join(f"{p.describe()}: {n}" for p, n in session.length_counts().items())
        print(f"{'lengths':<11} median {np.median(seconds):.1f} s, {seconds.min():.2f} to {seconds.max():.1f} s; "
              f"{counts}")
    outdated = session.index_outdated()
    if outdated:
        print(f"qvi: warning: {outdated}: {session.index.update_command}", file=sys.stderr)
    if a.verify:
        problem = session.index.verify()
        if problem:
            raise QviError(problem)
        print(f"{'checksum':<11} " + ("ok" if session.index.has_checksum else
                                     "none (built by qvi before 0.2; rebuild the index to add one)"))
        changes = session.library_changes()
        if changes is None:
            print(f"qvi: warning: {session.library_gone()}", file=sys.stderr)
        else:
            print(f"{'changes':<11} " + (f"{changes.summary()} since indexing; {session.index.update_command} updates it"
                                         if changes else "none since indexing"))
    return 0


def _cmd_bench(a) -> int:
    from qvi_app.bench import BenchConfig, run

    if a.scale:
        from qvi_app.bench.scale import bench_scale, format_scale

        if min(a.scale) < 1:
            raise QviError("--scale needs a number of sounds of at least 1")
        rows = [bench_scale(n, a.work) for n in a.scale]
        print("\n" + format_scale(rows))
        a.json.write_text(json.dumps({"scale": rows}, indent=2))
        print(f"\nwrote {a.json}")
        return 0
    run(BenchConfig.make(a.quick), a.json)
    return 0


def _cmd_train(a) -> int:
    from qvi_app.training.loop import train

    r = train(_train_config(a), resume=a.resume, progress=not a.quiet)
    print(f"{r.checkpoint}: best validation MRR {r.best_val_mrr:.3f} at epoch {r.best_epoch} "
          f"(start {r.start_val_mrr:.3f}); {r.epochs_run} epochs in {r.seconds / 60:.1f} min; "
          f"log {r.log_csv}, plot {r.plot_png}")
    return 0


def _cmd_bank(a) -> int:
    from qvi_app.data.simulate import STRATEGIES
    from qvi_app.training.query_bank import add_query_bank

    if a.strategy != "mix" and a.strategy not in STRATEGIES:
        raise QviError(f"--strategy must be mix or one of {', '.join(STRATEGIES)}, not {a.strategy!r}")
    r = add_query_bank(a.model, a.data, a.out, strategy=None if a.strategy == "mix" else a.strategy,
                       per_reference=a.per_reference, hub_k=a.hub_k, hub_weight=a.hub_weight, seed=a.seed,
                       progress=not a.quiet)
    print(f"{a.out or a.model}: query bank of {r['imitations']} simulated imitations "
          f"({r['unusable_sounds']} sounds unusable); ranking: {r['ranking']}")
    return 0


def _cmd_soup(a) -> int:
    from qvi_app.training.soup import make_soup

    r = make_soup(a.runs, a.out)
    print(f"{r['out']}: soup of {r['runs']} runs (seeds {', '.join(map(str, r['seeds']))}); "
          f"qvi bank adds the query bank of the hubness correction")
    return 0


def _cmd_evaluate(a) -> int:
    from qvi_app.evaluation.run import evaluate, to_markdown, write_reports

    models = {f"model {p}": p for p in a.checkpoint} if a.checkpoint else None
    split_from = a.split_from or (a.checkpoint[0] if a.checkpoint else None)
    if split_from is None and a.split != "all":
        from qvi_app.paths import BUNDLED_CNN

        split_from = BUNDLED_CNN
    rankings = None
    if a.ranking:
        try:
            text = Path(a.ranking).read_text() if Path(a.ranking).is_file() else a.ranking
            rankings = json.loads(text)
            if not isinstance(rankings, dict):
                raise ValueError("expected a mapping of label to settings")
        except (ValueError, OSError) as exc:
            raise QviError(f"--ranking: {exc}") from None
    try:
        report = evaluate(a.data, dataset_kind=a.dataset, split=a.split, split_from=split_from, models=models,
                          baselines=not a.no_baselines, imitations=a.imitations, seed=a.seed,
                          progress=not a.quiet, distractors=a.distractors, rankings=rankings)
    except (ValueError, TypeError) as exc:
        raise QviError(f"--ranking: {exc}") from None
    js, md = write_reports(report, a.out)
    print(to_markdown(report))
    print(f"written: {js}, {md} ({report['seconds']:.0f} s)", file=sys.stderr)
    return 0


def _cmd_inspect(a) -> int:
    from qvi_app.training.inspect import inspect

    stats = inspect(_train_config(a), a.out, n_pairs=a.pairs)
    for side, st in stats["batch"].items():
        print(f"{side:<20} {str(tuple(st['shape'])):<18} min {st['min']:.3f} max {st['max']:.3f} "
              f"mean {st['mean']:.3f} nan {st['nan']} silent {st['silent_items']}")
    print(f"splits {stats['split_sizes']}; written to {a.out}/ (stats.json, pairs.png, *.wav)")
    return 0


def _name_values_joined(argv: list[str]) -> list[str]:
    """``--name -car`` as ``--name=-car``: a name filter may open with a word to leave out, which
    argparse would take for an option and refuse ("expected one argument")."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--name" and arg.startswith("-"):
            out[-1] = f"--name={arg}"
        else:
            out.append(arg)
    return out


def main(argv=None) -> int:
    for stream in (sys.stdout, sys.stderr):         # a name the terminal's encoding lacks: escaped, not a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = _parser().parse_args(_name_values_joined(sys.argv[1:] if argv is None else list(argv)))
    handler = {"index": _cmd_index, "search": _cmd_search, "similar": _cmd_similar, "adapt": _cmd_adapt,
               "liked": _cmd_liked, "libraries": _cmd_libraries,
               "categories": _cmd_categories, "list": _cmd_list,
               "info": _cmd_info,
               "bench": _cmd_bench, "train": _cmd_train, "bank": _cmd_bank, "soup": _cmd_soup, "evaluate": _cmd_evaluate, "inspect": _cmd_inspect}
    try:
        return handler[args.command](args)
    except QviError as exc:
        _say_error(exc)
        return 2
    except KeyboardInterrupt:
        print("qvi: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:          # the reader went away (`qvi search … | head`): end as a killed writer does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())     # so that the last flush is silent
        return 128 + getattr(signal, "SIGPIPE", 13)
    except OSError as exc:           # writing a report or an inspect folder: full disk, no permission
        full = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
        print(f"qvi: {exc.filename or ''}: {exc.strerror or exc}{full}", file=sys.stderr)
        return 2


#: Commands that only read: their process may end without the interpreter's teardown.
_READ_ONLY = frozenset({"search", "similar", "categories", "info"})   # not "libraries": --forget deletes


def run() -> None:
    """The ``qvi`` executable. A read-only command's process ends with ``os._exit`` once its
    output is flushed: tearing the interpreter down after torch was imported took 0.4 s of a
    1.7 s ``qvi search`` (``python -c "import torch"``: 1.33 s; with ``os._exit(0)``: 0.94 s),
    and a read-only command has nothing left to finish."""
    code = main()
    if len(sys.argv) > 1 and sys.argv[1] in _READ_ONLY:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (BrokenPipeError, ValueError):       # a reader that went away: nothing more to say
            pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
