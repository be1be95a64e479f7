"""Readers for query-by-vocal-imitation datasets, as users download them, and for plain libraries.

Each yields :class:`Reference` items: a reference sound, its recorded imitations (empty for a
plain library: those are simulated) and a category. ``Reference.id`` is the path relative to
the dataset root, the key that splits are saved under.

Layouts read (folder names as in the public releases):

* ``vimsketch``: ``references/``, ``vocal_imitations/`` (optionally ``reference_file_names.csv``,
  ``vocal_imitation_file_names.csv``); an imitation's file name minus its first ``_``-separated
  token is its reference's file name. Category: the reference name's first ``_`` token with
  leading digits removed (VimSketch has no category column).
* ``vocalsketch``: ``sound_recordings/`` + ``sound_recordings.csv`` (``id``, ``filename``,
  ``audio_concept_subset``), ``vocal_imitations/included/`` (or ``vocal_imitations/``) +
  ``vocal_imitations.csv`` (``filename``, ``sound_recording_id`` or ``sound_recording``,
  ``included``). Category: ``audio_concept_subset``.
* ``vis`` (Vocal Imitation Set): ``original_recordings/`` (or ``reference_recordings/``),
  ``vocal_imitations/included/`` (or ``vocal_imitations/``), ``vocal_imitations.txt``
  (tab-separated ``imitation_filename``, ``reference_filename``, ``category_d1``) and/or a
  category look-up (``reference_audio_categories.txt`` or ``category_lookup.csv`` with
  ``reference_filename``/``filename`` and ``category_d1``/``category``).
* ``pairs``: ``pairs.csv`` (``label``, ``reference``, ``imitation``, ``generation``; paths relative
  to the folder), and any further candidates in ``references/``. Category: ``label``; each
  imitation's group is ``gen<generation>`` (qvi evaluate reports groups apart). This is the
  layout of ../shared/real-imitations-dev.
* ``library``: any folder of sounds, category = sub-folder (see :mod:`qvi_app.index.scan`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from qvi_app.audio import AUDIO_EXTENSIONS
from qvi_app.errors import QviError

DATASET_KINDS = ("auto", "library", "vimsketch", "vocalsketch", "vis", "pairs")


class DatasetError(QviError):
    """A dataset folder cannot be read as the layout asked for."""


@dataclass(frozen=True)
class Reference:
    id: str                                  # path relative to the dataset root (POSIX)
    path: Path
    category: str
    imitations: tuple[Path, ...] = ()        # recorded imitations; none → simulated
    groups: tuple[str, ...] = ()             # per imitation, a group reported apart (e.g. "gen1")


@dataclass
class QbvDataset:
    kind: str
    root: Path
    references: list[Reference] = field(default_factory=list)

    @property
    def has_recorded_imitations(self) -> bool:
        return any(r.imitations for r in self.references)

    def categories(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.references:
            out[r.category] = out.get(r.category, 0) + 1
        return dict(sorted(out.items()))

    def subset(self, ids) -> "QbvDataset":
        keep = set(ids)
        return QbvDataset(self.kind, self.root, [r for r in self.references if r.id in keep])


def open_dataset(root, kind: str = "auto") -> QbvDataset:
    """Read ``root`` as the given layout (``auto``: recognise it by its folders)."""
    root = Path(root)
    if root.is_file():
        raise DatasetError(f"{root} is a file, not a folder: give the folder that holds the sounds")
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    if kind == "auto":
        kind = detect_kind(root)
    readers = {"library": read_library, "vimsketch": read_vimsketch, "vocalsketch": read_vocalsketch,
               "vis": read_vocal_imitation_set, "pairs": read_pairs}
    if kind not in readers:
        raise DatasetError(f"unknown dataset kind {kind!r}; choose one of {', '.join(DATASET_KINDS)}")
    refs = readers[kind](root)
    if not refs:
        raise DatasetError(f"{root}: no reference sounds found (read as '{kind}')")
    return QbvDataset(kind, root, sorted(refs, key=lambda r: r.id))


def open_datasets(roots, kind: str = "auto") -> QbvDataset:
    """Several dataset folders as one: each reference's id gets its folder's name in front
    (``train-sfx/bird/owl.ogg``) so ids stay unique. One folder: :func:`open_dataset` unchanged."""
    roots = [Path(r) for r in ([roots] if isinstance(roots, (str, Path)) else roots)]
    if len(roots) == 1:
        return open_dataset(roots[0], kind)
    names = [r.resolve().name for r in roots]
    if len(set(names)) < len(names):
        raise DatasetError(f"dataset folders must have different names to keep their sounds apart: {', '.join(names)}")
    refs = []
    for root, name in zip(roots, names):
        refs += [replace(r, id=f"{name}/{r.id}") for r in open_dataset(root, kind).references]
    return QbvDataset("mixed", roots[0], sorted(refs, key=lambda r: r.id))


def detect_kind(root: Path) -> str:
    if (root / "pairs.csv").is_file():
        return "pairs"
    if (root / "references").is_dir() and (root / "vocal_imitations").is_dir():
        return "vimsketch"
    if (root / "sound_recordings").is_dir() and (root / "vocal_imitations").is_dir():
        return "vocalsketch"
    if any((root / d).is_dir() for d in ("original_recordings", "reference_recordings")):
        return "vis"
    return "library"


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _first_existing(root: Path, *names: str) -> Path | None:
    return next((root / n for n in names if (root / n).exists()), None)


def _read_table(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        sample = f.read(4096)
        f.seek(0)
        delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
        return [{(k or "").strip(): (v or "").strip() for k, v in row.items()}
                for row in csv.DictReader(f, delimiter=delimiter)]


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "t", "y", "")


def read_pairs(root: Path) -> list[Reference]:
    table = root / "pairs.csv"
    if not table.is_file():
        raise DatasetError(f"{root}: the pairs layout needs pairs.csv")
    rows = _read_table(table)
    missing = {"label", "reference", "imitation"} - set(rows[0] if rows else {})
    if missing:
        raise DatasetError(f"{table}: no {', '.join(sorted(missing))} column")
    refs: dict[str, dict] = {}
    for path in _audio_files(root / "references") if (root / "references").is_dir() else []:
        refs[_rel(root, path)] = {"label": path.stem, "imitations": [], "groups": []}
    for row in rows:
        ref = refs.setdefault(row["reference"], {"label": row["label"], "imitations": [], "groups": []})
        ref["label"] = row["label"] or ref["label"]
        if (root / row["imitation"]).is_file():
            ref["imitations"].append(root / row["imitation"])
            ref["groups"].append(f"gen{row['generation']}" if row.get("generation") else "all")
    return [Reference(rel, root / rel, r["label"], tuple(r["imitations"]), tuple(r["groups"]))
            for rel, r in refs.items() if (root / rel).is_file()]


def read_library(root: Path) -> list[Reference]:
    from qvi_app.index.scan import scan_library

    return [Reference(f.relpath, root / f.relpath, f.category) for f in scan_library(root)]


def read_vimsketch(root: Path) -> list[Reference]:
    refs = {p.name: p for p in _audio_files(root / "references")}
    imitations: dict[str, list[Path]] = {name: [] for name in refs}
    for p in _audio_files(root / "vocal_imitations"):
        parts = p.name.split("_", 1)
        if len(parts) == 2 and parts[1] in refs:
            imitations[parts[1]].append(p)
    out = []
    for name, path in refs.items():
        head = re.sub(r"^\d+", "", Path(name).stem.split("_", 1)[0]).strip()
        out.append(Reference(_rel(root, path), path, head or "uncategorised", tuple(imitations[name])))
    return out


def read_vocalsketch(root: Path) -> list[Reference]:
    rec_csv, imi_csv = root / "sound_recordings.csv", root / "vocal_imitations.csv"
    for f in (rec_csv, imi_csv):
        if not f.is_file():
            raise DatasetError(f"{root}: VocalSketch layout needs {f.name}")
    by_id, by_name = {}, {}
    for row in _read_table(rec_csv):
        path = root / "sound_recordings" / row["filename"]
        if path.is_file():
            by_id[row.get("id", "")] = by_name[row["filename"]] = (path, row.get("audio_concept_subset") or "uncategorised")
    imi_dir = _first_existing(root, "vocal_imitations/included", "vocal_imitations")
    imitations: dict[Path, list[Path]] = {p: [] for p, _ in by_id.values()}
    for row in _read_table(imi_csv):
        if not _truthy(row.get("included", "")):
            continue
        target = by_id.get(row.get("sound_recording_id", "")) or by_name.get(row.get("sound_recording", ""))
        path = imi_dir / row["filename"]
        if target and path.is_file():
            imitations[target[0]].append(path)
    return [Reference(_rel(root, p), p, cat, tuple(imitations[p])) for p, cat in by_id.values()]


def read_vocal_imitation_set(root: Path) -> list[Reference]:
    ref_dir = _first_existing(root, "original_recordings", "reference_recordings")
    imi_dir = _first_existing(root, "vocal_imitations/included", "vocal_imitations", "included")
    refs = {p.name: p for p in _audio_files(ref_dir)}
    categories: dict[str, str] = {}
    lookup = _first_existing(root, "reference_audio_categories.txt", "category_lookup.csv")
    if lookup:
        for row in _read_table(lookup):
            name = row.get("reference_filename") or row.get("filename", "")
            categories[name] = row.get("category_d1") or row.get("category") or ""
    imitations: dict[str, list[Path]] = {name: [] for name in refs}
    table = root / "vocal_imitations.txt"
    if table.is_file():
        for row in _read_table(table):
            name = row.get("reference_filename", "")
            path = imi_dir / row.get("imitation_filename", "") if imi_dir else None
            if name in refs and path is not None and path.is_file() and _truthy(row.get("included", "")):
                imitations[name].append(path)
                categories.setdefault(name, row.get("category_d1", ""))
    elif imi_dir:  # no table: imitation names start with their reference's name stem
        stems = {Path(n).stem: n for n in refs}
        for p in _audio_files(imi_dir):
            match = next((n for s, n in stems.items() if p.stem.startswith(s)), None)
            if match:
                imitations[match].append(p)
    return [Reference(_rel(root, p), p, categories.get(n) or "uncategorised", tuple(imitations[n]))
            for n, p in refs.items()]
