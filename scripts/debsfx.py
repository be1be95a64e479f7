"""Sound effects out of Debian packages: download, unpack, convert, find duplicates, read licences.

Shared by ``build_demo_library.py`` (the bundled demo library) and ``build_training_set.py``
(the training corpus). Packages are fetched with ``apt-get download`` (no install, no root
needed for the download) and unpacked with ``dpkg-deb -x``; nothing here runs code from them.
"""

from __future__ import annotations

import fnmatch
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from qvi_app.audio import resample, to_mono, trim_silence  # noqa: E402

RATE = 22050
MAX_SECONDS = 10.0
MIN_SECONDS = 0.25
MAX_SEGMENTS = 3           # segments cut from one long ambience


def fetch_deb(package: str, cache: Path) -> Path:
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if not debs:
        print(f"apt-get download {package}", flush=True)
        subprocess.run(["apt-get", "download", package], cwd=cache, check=True)
        debs = sorted(cache.glob(f"{package}_*.deb"))
    return debs[-1]


def unpack(package: str, cache: Path) -> Path:
    root = cache / "x" / package
    if not root.exists():
        deb = fetch_deb(package, cache)
        tmp = root.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
        tmp.rename(root)
    return root


def label_of(original: str) -> str:
    """Variant-free label: ``cattle_03.ogg`` → ``cattle``, ``"Ship horn". By ...`` → ``ship_horn``."""
    quoted = re.match(r'^"([^"]+)"', original)  # OpenSFX entry names open with the quoted title
    stem = quoted.group(1) if quoted else Path(original).stem
    stem = re.sub(r"[\s_.\-]*\(?\d+[a-z]?\)?$", "", stem.lower())
    stem = re.sub(r"[^a-z0-9]+", "_", stem).strip("_")
    if len(stem) < 3:  # e.g. 0 A.D.'s fire/c_11.ogg: name it by its folder
        stem = f"{Path(original).parent.name}_{stem}".strip("_")
    return stem or "sound"


def segments(wave: np.ndarray, sr: int) -> list[np.ndarray]:
    """Trimmed pieces of at most MAX_SECONDS; long ambiences give up to MAX_SEGMENTS pieces."""
    wave = trim_silence(wave, sr, threshold_db=-50.0)
    n = int(MAX_SECONDS * sr)
    if len(wave) <= n * 1.2:
        return [wave[:n]]
    return [wave[i:i + n] for i in range(0, len(wave) - n + 1, n)][:MAX_SEGMENTS]


def convert(data: bytes) -> list[np.ndarray]:
    """Encoded audio → mono RATE-Hz pieces, trimmed, faded, peak ≤ 1 (none if too short or silent)."""
    audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    wave = resample(to_mono(audio), sr, RATE)
    out = []
    for seg in segments(wave, RATE):
        peak = float(np.max(np.abs(seg))) if len(seg) else 0.0
        if len(seg) >= MIN_SECONDS * RATE and peak > 1e-3 and np.isfinite(peak):
            fade = min(len(seg) // 4, int(0.01 * RATE))  # 10 ms fades: no clicks at the cuts
            seg = seg.copy()
            seg[:fade] *= np.linspace(0, 1, fade, dtype=np.float32)
            seg[len(seg) - fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
            out.append(seg / max(peak, 1.0))
    return out


FRAME = 1024


def fingerprint(seg: np.ndarray) -> np.ndarray:
    """Log energy in 16 bands per 46 ms frame, (frames, 16): equal for re-encodes of one recording."""
    n = len(seg) // FRAME
    frames = np.abs(np.fft.rfft(seg[: n * FRAME].reshape(n, FRAME) * np.hanning(FRAME), axis=1))
    return np.log(frames[:, 1:513].reshape(n, 16, 32).sum(axis=2) + 1e-6)


class DuplicateIndex:
    """Finds a recording already seen, under another name, gain, encoding or cut.

    A candidate is fingerprinted at four phases (0, 1/4, 1/2, 3/4 of a frame): a piece cut
    from a longer sound starts anywhere, and half a frame of misalignment alone dropped the
    correlation of a cut piece to 0.9. Two tests on :func:`fingerprint`\\ s (gain-independent:
    each is centred per band):

    * *same recording*: lengths within 2 frames, the same average spectrum (RMS difference of
      the level-free mean log band energies under 0.2; a re-encode at another gain: 0.00004)
      and correlation above ``exact`` (0.995);
    * *near duplicate*: one contains the other (same sound cut shorter, or one segment of a
      longer ambience), found by sliding the shorter over the longer, correlation above
      ``near`` (0.97) over at least ``min_frames`` frames (0.74 s: shorter impulsive sounds,
      two different gunshots say, share a generic onset-and-decay shape and matched falsely).
      Only pairs whose average spectra differ by under 1.0 RMS are slid (a piece of a
      decaying sound differs from the whole by about 0.33; 31% of random corpus pairs pass).
    """

    def __init__(self, exact: float = 0.995, near: float | None = 0.97, min_frames: int = 16, phases: int = 4):
        """``near=None`` and ``phases=1``: only the same recording, aligned (the demo library's rule)."""
        self.exact, self.near, self.min_frames, self.phases = exact, near, min_frames, phases
        self._fps: list[np.ndarray] = []
        self._means: list[np.ndarray] = []
        self.names: list[str] = []

    def __len__(self) -> int:
        return len(self._fps)

    def add(self, wave: np.ndarray, name: str) -> None:
        fp = fingerprint(wave)
        self._fps.append(fp - fp.mean(axis=0))
        self._means.append(_shape(fp))
        self.names.append(name)

    def find(self, wave: np.ndarray) -> str | None:
        """The name of a kept recording ``wave`` duplicates, or None."""
        for phase in range(0, FRAME, FRAME // self.phases):
            match = self._find(fingerprint(wave[phase:]))
            if match:
                return match
        return None

    def _find(self, fp: np.ndarray) -> str | None:
        if len(fp) < 2:
            return None
        centred = fp - fp.mean(axis=0)
        shape = _shape(fp)
        for other, mean, name in zip(self._fps, self._means, self.names):
            apart = float(np.sqrt(np.mean((shape - mean) ** 2)))
            if apart > 1.0:
                continue
            if abs(len(other) - len(centred)) <= 2 and apart < 0.2:
                n = min(len(centred), len(other))
                if _corr(centred[:n], other[:n]) > self.exact:
                    return name
            if self.near is None:
                continue
            short, long_ = (centred, other) if len(centred) <= len(other) else (other, centred)
            if len(short) >= self.min_frames and _best_slide(short, long_) > self.near:
                return name
        return None


def _shape(fp: np.ndarray) -> np.ndarray:
    """The average spectrum without its level: mean log energy per band, centred."""
    m = fp.mean(axis=0)
    return m - m.mean()


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def _best_slide(short: np.ndarray, long_: np.ndarray) -> float:
    """Highest correlation of ``short`` with any equally long stretch of ``long_`` (frames, bands)."""
    windows = np.lib.stride_tricks.sliding_window_view(long_, short.shape).reshape(-1, short.size)
    windows = windows - windows.mean(axis=1, keepdims=True)
    s = short.ravel() - short.mean()
    corr = windows @ s / (np.linalg.norm(windows, axis=1) * np.linalg.norm(s) + 1e-12)
    return float(corr.max())


# -- licences ------------------------------------------------------------------------------------
class CopyrightFile:
    """A package's ``debian/copyright``: the licence and holders of a path, as well as it can tell.

    Machine-readable (DEP-5) files are matched stanza by stanza, the last match winning as the
    format says. Their ``Files:`` globs name paths in the *source* tree while we see installed
    paths (``usr/share/games/x/...``, or an entry inside a .pk3), so a glob matches when its
    tail (at least its last folder and the file pattern) matches the tail of the path. Free-form
    files give one package-wide answer. Debian's main archive only holds DFSG-free works.
    """

    def __init__(self, path: Path):
        self.path = path
        try:
            self.text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:                  # absent, or a link into another package's folder
            self.text = ""
        self.stanzas: list[tuple[list[str], str, str]] = []
        if self.text.startswith("Format:"):
            for block in re.split(r"\n\s*\n", self.text):
                fields = _dep5_fields(block)
                if "files" in fields and "license" in fields:
                    lic = next((ln.strip() for ln in fields["license"].splitlines() if ln.strip()), "unstated")
                    self.stanzas.append((fields["files"].split(), lic, " ".join(fields.get("copyright", "").split())))

    def lookup(self, original: str) -> tuple[str, str]:
        """(licence, copyright holders) for a path inside the package."""
        found = None
        for globs, lic, holders in self.stanzas:
            if any(_tail_match(original, g) for g in globs):
                found = (lic, holders)
        if found:
            return found
        for lic in ("CC0", "CC-BY-SA", "CC-BY", "GPL-3", "GPL-2", "GPL", "LGPL", "BSD", "Artistic", "public domain"):
            if lic.lower() in self.text.lower():
                return f"{lic} (see the package's copyright file)", ""
        return "see the package's copyright file", ""


def _dep5_fields(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = None
    for line in block.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            fields[key] = value.strip()
    return fields


def _tail_match(path: str, glob: str) -> bool:
    if glob == "*":
        return True
    parts = path.replace("!", "/").split("/")
    gparts = glob.split("/")
    # the glob's tails that keep at least one folder and the file pattern (a bare pattern: itself)
    for j in range(max(1, len(gparts) - 1)):
        pattern = "/".join(gparts[j:])
        if any(fnmatch.fnmatchcase("/".join(parts[i:]), pattern) for i in range(len(parts))):
            return True
    return False
