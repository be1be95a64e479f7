"""Sound in formats libsndfile does not read, decoded by FFmpeg through PyAV when it is installed:
a phone's voice memo (M4A), a video's sound (MP4, QuickTime, WebM), WMA, WavPack, AC-3...

A phone is where an imitation is often recorded, and a video editor's sounds come in the clips
they cut; "M4A (AAC) is not a format qvi reads: convert it with ffmpeg" (0.11 to 0.21) sent them
to a terminal. Without PyAV the formats are still named and refused as before.

Everything here reads a file a user received, so, as for the formats libsndfile reads
(``load.py``): the file is opened by Python and handed to FFmpeg as a file object, with the
demuxer its name says (FFmpeg does not probe: a playlist or a concat list renamed ``.m4a`` cannot
make it open other files or addresses, and QuickTime's external references stay off, FFmpeg's
default); what its header says is checked (rate, channels, length, decoded size) before anything
is decoded; decoding goes a frame at a time, mixed down as it goes, and stops at the length
limit whatever the header said; FFmpeg's own messages are not printed (PyAV's default).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from qvi_app.errors import AudioError

log = logging.getLogger("qvi.audio")

#: By file name: what the format is called, and FFmpeg's demuxer for it.
FORMATS = {".m4a": ("M4A", "mp4"), ".mp4": ("MP4", "mp4"), ".m4v": ("MP4", "mp4"), ".mov": ("QuickTime", "mov"),
           ".3gp": ("3GP", "mp4"), ".aac": ("AAC", "aac"), ".webm": ("WebM", "matroska"),
           ".mkv": ("Matroska", "matroska"), ".mka": ("Matroska", "matroska"), ".wma": ("WMA", "asf"),
           ".amr": ("AMR", "amr"), ".wv": ("WavPack", "wv"), ".ape": ("Monkey's Audio", "ape"),
           ".ac3": ("AC-3", "ac3")}
#: Codecs as a sound designer names them (FFmpeg's name otherwise, upper case).
_CODECS = {"aac": "AAC", "alac": "ALAC", "mp3": "MP3", "mp3float": "MP3", "opus": "Opus", "vorbis": "Vorbis",
           "flac": "FLAC", "wmav1": "WMA", "wmav2": "WMA", "wmapro": "WMA Pro", "ac3": "AC-3", "eac3": "E-AC-3",
           "amrnb": "AMR", "amrwb": "AMR-WB", "wavpack": "WavPack", "ape": "Monkey's Audio"}
#: The tags that describe a sound, as FFmpeg names them in MP4 (iTunes), Matroska and ASF files.
_TAGS = ("title", "album", "genre", "comment", "description", "synopsis", "keywords", "subject")


@functools.cache
def available() -> bool:
    """PyAV is installed (nothing is imported: the window starts as fast without it). Looked up
    once a process: every file read asks."""
    try:
        return importlib.util.find_spec("av") is not None
    except (ImportError, ValueError):           # a broken or blocked install: as if absent
        return False


def label(path) -> str | None:
    """What the format of ``path`` is called ("M4A"), by its name; None for another."""
    row = FORMATS.get(Path(path).suffix.lower())
    return row[0] if row else None


def reads(path) -> bool:
    """FFmpeg reads ``path`` here: its name is one of :data:`FORMATS` and PyAV is installed."""
    return label(path) is not None and available()


class Opened:
    """A container file open for reading: its first sound track and what its header says."""

    def __init__(self, path: Path, container, stream):
        self.path, self.container, self.stream = path, container, stream
        codec = stream.codec_context
        if codec is None:                                # a track in a codec this FFmpeg has no decoder for
            raise AudioError(path, "its sound is in a codec qvi cannot decode")
        self.rate = int(codec.sample_rate or 0)
        self.channels = int(codec.channels or 0)
        self.codec = _codec_name(codec.name)

    @property
    def seconds(self) -> float | None:
        """The length its header gives (None when it gives none, as a raw AAC stream may not)."""
        if self.stream.duration is not None and self.stream.time_base is not None:
            return float(self.stream.duration * self.stream.time_base)
        if self.container.duration is not None:
            return self.container.duration / 1_000_000          # AV_TIME_BASE
        return None

    def blocks(self):
        """The track decoded, a frame at a time, as float32 arrays (channels, samples). A packet
        that does not decode (a damaged frame) is passed over, as libmpg123 does in an MP3: a
        voice memo with a bad frame is still heard, one bad frame shorter. Raises FFmpeg's error
        when nothing decodes at all."""
        import av

        to_float = av.AudioResampler(format="fltp")      # planar float at the track's own rate and layout
        decoded, bad = 0, None
        for packet in self.container.demux(self.stream):
            try:
                frames = packet.decode()
            except av.InvalidDataError as exc:
                bad = bad or exc
                continue
            for frame in frames:
                for out in to_float.resample(frame):
                    decoded += 1
                    yield out.to_ndarray()
        for out in to_float.resample(None):
            decoded += 1
            yield out.to_ndarray()
        if bad is not None:
            if not decoded:
                raise bad
            log.debug("%s: damaged frames passed over (%s)", self.path, bad)


@contextmanager
def opened(path):
    """``path`` opened with the demuxer its name says; :class:`AudioError` when it cannot be, or
    holds no sound track (a video without sound)."""
    import av

    path = Path(path)
    name, demuxer = FORMATS[path.suffix.lower()]
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise AudioError(path, f"cannot open ({exc.strerror or exc})") from None
    with fh:
        try:
            container = av.open(fh, format=demuxer, metadata_errors="replace")     # a damaged tag is not a damaged file
        except (av.FFmpegError, ValueError, OSError) as exc:
            raise AudioError(path, f"not a readable {name} file ({_first_line(exc)})") from None
        try:
            if not container.streams.audio:
                raise AudioError(path, f"this {name} file has no sound track")
            yield Opened(path, container, container.streams.audio[0])
        finally:
            container.close()


def read(path, channels: str, max_duration_s: float, max_bytes: int, check_header,
         until_s: float | None = None) -> tuple[np.ndarray, int]:
    """The sound track of ``path`` as float32 samples and its rate: mixed down to one channel
    (``channels="mono"``), a stereo track kept as (frames, 2) (``"two"``: others mixed down), or
    every channel as (frames, channels) (``"all"``). ``check_header(rate, channels, seconds)``
    refuses what the header says before anything is decoded (load.py's, as for every format);
    decoding stops past ``max_duration_s`` or ``max_bytes`` whatever the header said, and quietly
    once ``until_s`` seconds are decoded (a part near the start of a long clip)."""
    import av

    with opened(path) as snd:
        rate, n_channels = snd.rate, snd.channels
        check_header(rate, n_channels, snd.seconds)
        keep = channels == "all" or (channels == "two" and n_channels == 2)
        max_frames = int(max_duration_s * rate) + 1
        enough = None if until_s is None else int(until_s * rate) + 1
        parts, n = [], 0
        try:
            for block in snd.blocks():
                if not np.isfinite(block).all():
                    raise AudioError(path, "contains NaN or infinite samples")
                if keep and len(block) != n_channels:      # the layout changes partway (a spliced AC-3): fitted
                    block = np.repeat(block.mean(axis=0, keepdims=True, dtype=np.float32), n_channels, axis=0)
                parts.append(block.T.copy() if keep else block.mean(axis=0, dtype=np.float32))
                n += block.shape[1]
                if n > max_frames or n * (block.shape[0] if keep else 1) * 4 > max_bytes:
                    raise AudioError(path, f"too long (more than {max_duration_s:.0f} s of audio)")
                if enough is not None and n >= enough:
                    break
        except av.FFmpegError as exc:
            raise AudioError(path, f"cannot decode audio ({_first_line(exc)})") from None
    if not parts:
        return np.zeros((0, n_channels) if keep else 0, np.float32), rate
    return np.concatenate(parts).astype(np.float32, copy=False), rate


def facts(path) -> str:
    """Its rate, channels and codec from the header ("44.1 kHz · mono · AAC (M4A)"); "" when it
    cannot be read (nothing is decoded)."""
    try:
        with opened(path) as snd:
            rate, channels, codec = snd.rate, snd.channels, snd.codec
    except Exception:  # noqa: BLE001 - a damaged or hostile file has no facts, never an error
        return ""
    layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels} channels")
    kind = codec if codec == label(path) else f"{codec} ({label(path)})"        # "AC-3", "AAC (M4A)"
    return f"{rate / 1000:g} kHz · {layout} · {kind}"


def tags(path) -> list[str]:
    """The words its tags say of it (title, album, genre, comment, description, keywords...), the
    file's and then its sound track's; [] when it says none or cannot be read."""
    try:
        with opened(path) as snd:
            found = []
            for metadata in (snd.container.metadata, snd.stream.metadata):
                lower = {str(k).lower(): str(v) for k, v in dict(metadata).items()}
                found += [lower[k] for k in _TAGS if lower.get(k)]
            return found
    except Exception:  # noqa: BLE001 - as for facts
        return []


#: PyAV's errors carry FFmpeg's code and the file's name ("[Errno 1094995529] Invalid data found
#: when processing input: 'memo.m4a'"); the path is in qvi's message already.
_ERRNO, _FILENAME = re.compile(r"^\[Errno -?\d+\]\s*"), re.compile(r":\s*'[^']*'$")


def _codec_name(name: str) -> str:
    """"AAC", "WMA"; PCM as a sound designer says it ("pcm_s24le": "24-bit PCM")."""
    pcm = re.fullmatch(r"pcm_([suf])(\d+)(?:le|be)?(?:_planar)?", name)
    if pcm:
        return f"{pcm[2]}-bit {'float ' if pcm[1] == 'f' else ''}PCM"
    return _CODECS.get(name, name.upper())


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    line = _FILENAME.sub("", _ERRNO.sub("", text[0])) if text else type(exc).__name__
    return line[:1].lower() + line[1:] if line[:2] != line[:2].upper() else line
