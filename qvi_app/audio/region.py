"""A part of a sound file saved as a file of its own: the one footstep of ten, the second of an
ambience that loops, for a project.

The part is read from the file itself, not from what qvi plays (mono, levelled): its channels,
rate and bit depth are kept (16-, 24-bit and float WAV, AIFF and FLAC as they are; a lossy or
other source as 24-bit), and its samples are the file's. Always written as WAV, which every
editor reads, through a temporary file, so a failed save leaves nothing half-written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import soundfile as sf

import qvi_app.audio.container as container
from qvi_app.audio.load import MAX_DECODED_BYTES, MAX_DURATION_S, check_header, resample
from qvi_app.audio.quiet import decoder_quiet
from qvi_app.errors import AudioError

#: Source subtypes written as they are; anything else (Vorbis, MP3, 8-bit…) as 24-bit.
KEPT_SUBTYPES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")


def save_region(src, start_s: float, end_s: float, dest, semitones: int = 0) -> float:
    """Write ``src`` from ``start_s`` to ``end_s`` (seconds; clipped to the sound) to ``dest`` as
    WAV; returns the seconds written. ``semitones``: the part as it was heard played that much
    higher (or lower), like tape: shorter (longer) with it, at the file's own rate (band-limited
    resampling). Raises :class:`AudioError` with a reason."""
    src, dest = Path(src), Path(dest)
    speed = 2.0 ** (semitones / 12)
    if container.reads(src):       # M4A, MP4, WMA...: lossy, written as 24-bit
        sr, part, subtype = *_container_part(src, start_s, end_s, speed), "PCM_24"
    else:
        sr, part, subtype = _sndfile_part(src, start_s, end_s, speed)
    if semitones:
        part = resample(part.T, max(1, round(sr * speed)), sr).T   # as if its samples came that much faster
    write_wav(part, sr, dest, subtype, what="the part")
    return len(part) / sr


def _sndfile_part(src: Path, start_s: float, end_s: float, speed: float):
    """The part read from a file libsndfile reads: its rate, samples and subtype to write."""
    try:
        with open(src, "rb") as fh, decoder_quiet(fh), sf.SoundFile(fh) as snd:
            sr, channels = snd.samplerate, snd.channels
            first = max(0, int(round(start_s * sr)))
            last = min(snd.frames, int(round(end_s * sr)))
            if last <= first:
                raise AudioError(src, f"nothing to save between {start_s:.2f} s and {end_s:.2f} s")
            if (last - first) * channels * 4 * max(1.0, 1 / speed) > MAX_DECODED_BYTES:   # two octaves down: 4x
                raise AudioError(src, "the part is too large to save at once; select a shorter one")
            subtype = snd.subtype if snd.subtype in KEPT_SUBTYPES else "PCM_24"
            snd.seek(first)
            part = snd.read(last - first, dtype="float64" if subtype == "DOUBLE" else "float32", always_2d=True)
    except AudioError:
        raise
    except (OSError, RuntimeError, sf.LibsndfileError) as exc:
        raise AudioError(src, f"cannot read the part ({exc})") from None
    return sr, part, subtype


def _container_part(src: Path, start_s: float, end_s: float, speed: float):
    """The part read from an M4A, MP4... file, every channel kept: its rate and samples. Decoded
    from the start up to the part's end (these seek by packets, not samples; a part of a long
    clip's first seconds decodes only those)."""
    def check(rate, channels, seconds):
        check_header(src, rate, channels, None, MAX_DURATION_S)          # any length: only the part is read
        if (end_s - start_s) * rate * channels * 4 * max(1.0, 1 / speed) > MAX_DECODED_BYTES:
            raise AudioError(src, "the part is too large to save at once; select a shorter one")

    samples, sr = container.read(src, "all", MAX_DURATION_S, MAX_DECODED_BYTES, check, until_s=end_s)
    first, last = max(0, int(round(start_s * sr))), min(len(samples), int(round(end_s * sr)))
    if last <= first:
        raise AudioError(src, f"nothing to save between {start_s:.2f} s and {end_s:.2f} s")
    return sr, samples[first:last].copy()


def write_wav(samples, sr: int, dest, subtype: str = "PCM_24", what: str = "the sound") -> None:
    """``samples`` (frames, or frames × channels) written to ``dest`` as a WAV file, through a
    temporary file beside it: a failed write (a full disk, a folder not writable) leaves nothing
    half-written and raises :class:`AudioError` saying ``what`` was not saved."""
    dest = Path(dest)
    tmp = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.stem}.", suffix=".tmp.wav")
        os.close(fd)
        sf.write(tmp, samples, sr, subtype=subtype, format="WAV")
        os.replace(tmp, dest)
    except (OSError, sf.LibsndfileError) as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise AudioError(dest, f"cannot save {what} here ({getattr(exc, 'strerror', None) or exc})") from None
