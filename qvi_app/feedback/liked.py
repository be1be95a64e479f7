"""The sounds a user liked, gathered in one folder: a pull for a project.

Every sound given a thumbs up (for any query) is copied once, under its own name; demo-library
sounds take their author and licence along in ``ATTRIBUTION.csv`` (their licences ask for it).
"""

from __future__ import annotations

import filecmp
import shutil
from dataclasses import dataclass
from pathlib import Path

from qvi_app.credits import append_attribution, demo_credit
from qvi_app.errors import QviError, counted, printable
from qvi_app.feedback.store import FeedbackStore


@dataclass(frozen=True)
class LikedCopy:
    folder: Path
    copied: int          # files written now
    already: int         # liked sounds the folder already held (the same bytes)
    missing: int         # liked sounds whose file is gone
    attributed: int      # rows added to ATTRIBUTION.csv
    nothing: str = ""    # why nothing was copied: no sound has a thumbs up (nothing_liked)

    def summary(self) -> str:
        if self.nothing:
            return f"{self.nothing}: nothing copied"
        parts = [f"copied {counted(self.copied, 'liked sound')} to {printable(str(self.folder))}"]
        if self.already:
            parts.append(f"{self.already} were there already")
        if self.attributed:
            parts.append(f"authors and licences of {self.attributed} demo sounds in ATTRIBUTION.csv")
        if self.missing:
            parts.append(f"{self.missing} could not be found (moved or deleted)")
        return "; ".join(parts)


def liked_paths(store: FeedbackStore) -> list[Path]:
    """Each sound given a thumbs up for any query, once, in the order first liked."""
    seen: dict[str, None] = {}
    for r in store.ratings():
        if r.rating > 0:
            seen.setdefault(r.result_path, None)
    return [Path(p) for p in seen]


def nothing_liked(store: FeedbackStore) -> str:
    """Why there is no liked sound to list or copy, in words; "" when there is one. An empty
    answer said nothing: was it the wrong data folder, or were the ratings all ▼?"""
    ratings = store.ratings()
    if any(r.rating > 0 for r in ratings):
        return ""
    n = len(ratings)
    return "no sound has a thumbs up yet" + (f" ({counted(n, 'rating')}, all thumbs down)" if n else "")


def copy_liked_sounds(store: FeedbackStore, folder) -> LikedCopy:
    """Copy every liked sound into ``folder`` (made if needed). A name already taken by other
    bytes gets ``-2``, ``-3``...; a file already there with the same bytes is not copied again."""
    folder = Path(folder)
    nothing = nothing_liked(store)
    if nothing:
        return LikedCopy(folder, 0, 0, 0, 0, nothing=nothing)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QviError(f"cannot make the folder {printable(str(folder))}: {exc.strerror or exc}") from None
    copied = already = missing = 0
    attribution = []
    for src in liked_paths(store):
        if not src.is_file():
            missing += 1
            continue
        dest, same = _destination(folder, src)
        if same:
            already += 1
            continue
        try:
            shutil.copyfile(src, dest)
        except OSError as exc:
            raise QviError(f"cannot copy {printable(src.name)} to {printable(str(folder))}: "
                           f"{exc.strerror or exc}") from None
        copied += 1
        credit = demo_credit(src)
        if credit:
            attribution.append({"file": dest.name, **credit})
    if attribution:
        append_attribution(folder / "ATTRIBUTION.csv", attribution)
    return LikedCopy(folder, copied, already, missing, len(attribution))


def _destination(folder: Path, src: Path) -> tuple[Path, bool]:
    """Where ``src`` goes in ``folder``, and whether that file already holds its bytes."""
    size = src.stat().st_size
    for n in range(1, 10_000):
        dest = folder / (src.name if n == 1 else f"{src.stem}-{n}{src.suffix}")
        if not dest.exists():
            return dest, False
        if dest.stat().st_size == size and filecmp.cmp(dest, src, shallow=False):
            return dest, True
    raise QviError(f"too many files named like {printable(src.name)} in {printable(str(folder))}")
