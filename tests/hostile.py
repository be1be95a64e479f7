"""A hostile corpus: files and folders an attacker or an unlucky user hands qvi.

Every case of the audit in issue 13 (and those that already held) is written small enough to
run in every CI: :func:`bad_audio` gives the sound files, :func:`hostile_library` a library
folder holding them beside good sounds, and the index/checkpoint/feedback cases are made by the
tests from a real index, checkpoint or database. docs/RELIABILITY.md lists what each must give.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050


def tone(freq: float = 440.0, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _write(path: Path, wave, sr: int = SR, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, sr, **kw)
    return path


def truncated(path: Path, src: Path, keep: float = 0.3) -> Path:
    data = src.read_bytes()
    path.write_bytes(data[: max(60, int(len(data) * keep))])
    return path


def huge_decoded_flac(path: Path, seconds: float = 90.0, channels: int = 8, sr: int = 192_000) -> Path:
    """A small FLAC (a near-constant square wave compresses well) whose samples decode to
    more than 512 MB: 8 channels x 192 kHz x 90 s x 4 bytes = 553 MB."""
    block = np.full((sr, channels), 0.25, np.float32)
    block[: sr // 2] *= -1
    with sf.SoundFile(path, "w", sr, channels, format="FLAC", subtype="PCM_16") as f:
        for _ in range(int(seconds)):
            f.write(block)
    return path


def bad_audio(folder: Path) -> dict[str, Path]:
    """name → path of every bad or strange sound file; each is refused with a reason or, where
    marked ``ok_`` in its name, accepted."""
    folder.mkdir(parents=True, exist_ok=True)
    good = _write(folder / "src.wav", tone(330, 1.0))
    ogg = _write(folder / "src.ogg", tone(330, 1.0), format="OGG", subtype="VORBIS")
    flac = _write(folder / "src.flac", tone(330, 1.0), format="FLAC")
    cases = {
        "zero_bytes": folder / "zero.wav",
        "header_only": folder / "header_only.wav",
        "truncated_wav": truncated(folder / "trunc.wav", good, 0.02),
        "truncated_ogg": truncated(folder / "trunc.ogg", ogg),
        "truncated_flac": truncated(folder / "trunc.flac", flac, 0.1),
        "text_named_wav": folder / "text.wav",
        "one_sample": _write(folder / "one.wav", np.array([0.5], np.float32)),
        "nan": _write(folder / "nan.wav", np.full(2000, np.nan, np.float32), subtype="FLOAT"),
        "inf": _write(folder / "inf.wav", np.concatenate([tone(300, 0.2), [np.inf]]).astype(np.float32),
                      subtype="FLOAT"),
        "channels_65": _write(folder / "ch65.wav", np.zeros((2000, 65), np.float32) + 0.1),
        "rate_1khz_ok": _write(folder / "ok_rate1k.wav", tone(200, 1.0, 1000), 1000),
        "rate_192khz_ok": _write(folder / "ok_rate192k.wav", tone(440, 1.0, 192_000), 192_000),
        "silent": _write(folder / "silent.wav", np.zeros(SR, np.float32)),
        "huge_samples_ok": _write(folder / "ok_huge.wav", tone(440, 1.0) * np.float32(1e30), subtype="FLOAT"),
        "long_name_ok": _write(folder / ("ok_" + "n" * 240 + ".wav"), tone(500, 0.5)),
        "too_large_to_decode": huge_decoded_flac(folder / "huge8ch.flac"),
    }
    cases["zero_bytes"].write_bytes(b"")
    cases["header_only"].write_bytes(good.read_bytes()[:44])
    cases["text_named_wav"].write_text("this is not audio\n" * 20)
    nonutf8 = os.fsencode(folder) + b"/ok_caf\xe9.wav"
    with open(nonutf8, "wb") as f:
        f.write(good.read_bytes())
    cases["non_utf8_name_ok"] = Path(os.fsdecode(nonutf8))
    for helper in (good, ogg, flac):
        helper.unlink()
    return cases


def hostile_library(root: Path) -> Path:
    """Good sounds in two categories, every bad file of :func:`bad_audio`, names with terminal
    escapes and tabs, and two symbolic links that loop back up the tree."""
    for i, f in enumerate((300, 450, 600)):
        _write(root / "birds" / f"good{i}.wav", tone(f, 1.0))
        _write(root / "doors" / f"good{i}.wav", tone(f * 3, 0.8))
    bad_audio(root / "junk")
    _write(root / "esc\x1b[31mred\tcat" / "tab\tname.wav", tone(700, 0.6))
    os.symlink("..", root / "birds" / "up")
    os.symlink("../..", root / "junk" / "loop")
    return root


class _RunsCode:
    """Unpickling this runs ``touch MARKER``: what a file sent by someone else could carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def code_running_pickle(path: Path, file_format: str) -> Path:
    """A torch file that claims ``file_format`` and runs code when unpickled; returns the marker
    file that exists afterwards if it ran."""
    import torch

    marker = path.with_suffix(".ran")
    torch.save({"format": file_format, "evil": _RunsCode(marker)}, path)
    return marker
