"""Find the sound files of a library folder and give each a category.

Category, first match wins: an explicit CSV (columns ``path,category``, paths relative to
the library root), a UCS CatID file-name prefix (``DOORWood_Creak_01.wav`` → ``DOORWood``),
the first sub-folder under the root, else ``uncategorized`` here; indexing then gives an
uncategorized sound the CatID its library tool wrote into the file, if any
(:func:`qvi_app.audio.tags.library_category`, read with the file's description).
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from qvi_app.audio import AUDIO_EXTENSIONS, unread_format
from qvi_app.errors import QviError

UNCATEGORIZED = "uncategorized"

#: Category codes of the Universal Category System (UCS v8) that open a CatID.
UCS_CODES = frozenset("""
AERO AIR ALRM AMB ANML ARCH BEEP BELL BIRD BLLT BOAT BRKN BUBL CERM CHAIN CHEM CLOCK CLOTH COMM
COMP CREA CROWD DEST DIRT DOOR DRWR DSGN ELEC EQUIP EXPL FART FGHT FIRE FIRWRK FOLY FOOD FEET
GAME GEOT GLAS GORE GUNS HORN HUMN ICE LASR LETH LIQ MACH MAGC MECH METL MOTR MOVE MUSC NATDIS
OBJ PAPR PLAS RAIN ROBO ROCK ROPE RUBR SCIF SNOW SPRT SWSH SWTH TOOL TOY TRAN TRNS UI VEH VOX
WATR WEAP WTHR WHSH WIND WINDW WING WOOD
""".split())
_CATID = re.compile(r"^([A-Z]{2,6})([A-Z][a-z][A-Za-z]*)[_-]")


@dataclass(frozen=True)
class LibraryFile:
    relpath: str          # POSIX path relative to the library root
    category: str
    size: int             # bytes
    mtime: float          # seconds since the epoch


def path_to_db(relpath: str) -> str | bytes:
    """A relative path as SQLite keeps it: text, or the raw bytes of a name that is not UTF-8
    (Python gives such names as lone surrogates, which SQLite's text cannot hold)."""
    try:
        relpath.encode("utf-8")
        return relpath
    except UnicodeEncodeError:
        return os.fsencode(relpath)


def path_from_db(value: str | bytes) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value


def ucs_catid(filename: str) -> str | None:
    """The UCS CatID that opens ``filename`` (``VEHCar_...`` → ``VEHCar``), or None."""
    m = _CATID.match(filename)
    if m and m.group(1) in UCS_CODES:
        return m.group(1) + m.group(2)
    return None


def category_for(relpath: str, explicit: dict[str, str] | None = None) -> str:
    if explicit and relpath in explicit:
        return explicit[relpath]
    parts = relpath.split("/")
    return ucs_catid(parts[-1]) or (parts[0] if len(parts) > 1 else UNCATEGORIZED)


def read_category_csv(path) -> dict[str, str]:
    """``path,category`` rows (header required) → {relpath: category}."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise QviError(f"{path}: cannot read category CSV ({exc})") from None
    if rows and not {"path", "category"} <= set(rows[0]):
        raise QviError(f"{path}: category CSV needs the columns 'path' and 'category'")
    return {r["path"].replace("\\", "/").removeprefix("./"): r["category"].strip() for r in rows if r["category"].strip()}


def nothing_found(folder) -> str:
    """What to say when a folder holds no sound file qvi reads (indexing it, or searching it)."""
    return f"no sound files found in {folder} (qvi reads {', '.join(sorted(AUDIO_EXTENSIONS))}, in subfolders too)"


def scan_library(root, categories_csv=None, unread: list[LibraryFile] | None = None) -> list[LibraryFile]:
    """All audio files under ``root`` (recursive, hidden folders skipped), sorted by path; files
    in a format qvi knows it does not read (M4A, WMA...) are added to ``unread`` when it is given.

    Symbolic links to folders are followed (libraries are often assembled from links), but
    each real folder is visited once: a link back up the tree (``ln -s .. lib/cat/up``) made
    one file appear 41 times, and two such links never ended."""
    root = Path(root)
    if root.is_file():
        raise QviError(f"{root} is a file, not a folder: index the folder that holds your sounds")
    if not root.is_dir():
        raise QviError(f"library folder not found: {root}")
    explicit = read_category_csv(categories_csv) if categories_csv else None
    found = []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:              # a folder already walked, reached again by a link
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                into = found
            elif unread is not None and unread_format(name):
                into = unread
            else:
                continue
            full = Path(dirpath) / name
            try:
                st = full.stat()
            except OSError:
                continue  # vanished or a broken link; nothing to index
            rel = full.relative_to(root).as_posix()
            into.append(LibraryFile(rel, category_for(rel, explicit), st.st_size, st.st_mtime))
    found.sort(key=lambda f: f.relpath)
    if unread is not None:
        unread.sort(key=lambda f: f.relpath)
    return found
