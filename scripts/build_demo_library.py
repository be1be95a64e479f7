#!/usr/bin/env python
"""Build qvi's bundled demo library (assets/library + assets/ATTRIBUTION.csv) from Debian packages.

Every clip is a real recorded or designed sound effect from a freely licensed Debian package,
fetched with ``apt-get download`` (no install, no root needed for the download itself) and
unpacked with ``dpkg-deb -x``. Clips are mixed to mono, resampled to 22.05 kHz, trimmed of
silence, cut to at most 10 s (long ambiences into several segments) and written as OGG Vorbis.

Categories come from one reviewed table, ``RULES``: (package, regex on the original path,
category). The first matching rule wins; category ``None`` leaves the file out.

    python scripts/build_demo_library.py [--cache DIR] [--out assets]
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import struct
import sys
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from debsfx import RATE, DuplicateIndex, convert, label_of, unpack  # noqa: E402

MAX_PER_LABEL = 4          # near-duplicate variants kept per label (e.g. cattle_01..07 → 4)
VORBIS_QUALITY = 0.4       # soundfile compression_level: 0 = best quality, 1 = smallest

# (package, regex on the original path inside the package, category or None to leave out)
RULES: list[tuple[str, str, str | None]] = [
    # --- 0 A.D. (audio/ inside public.zip) ---
    ("0ad-data", r"^audio/(voice|music|interface|groups)/", None),
    ("0ad-data", r"^audio/actor/fauna/.*(chicken|peacock|flamingo)", "birds"),
    ("0ad-data", r"^audio/actor/fauna/.*(elephant|lion)", "wild_animals"),
    ("0ad-data", r"^audio/actor/fauna/", "farm_animals"),
    ("0ad-data", r"^audio/actor/mounted/movement/", "footsteps"),
    ("0ad-data", r"^audio/actor/mounted/death/", "farm_animals"),
    ("0ad-data", r"^audio/actor/gate/", "doors_gates"),
    ("0ad-data", r"^audio/actor/human/death/", "human"),
    ("0ad-data", r"^audio/actor/(human/movement|singlesteps)/", "footsteps"),
    ("0ad-data", r"^audio/actor/ship/", "vehicles"),
    ("0ad-data", r"^audio/ambient/water/", "water"),
    ("0ad-data", r"^audio/ambient/weather/", "weather"),
    ("0ad-data", r"^audio/ambient/(building|dayscape)/", "ambience"),
    ("0ad-data", r"^audio/attack/destruction/", "explosions_crashes"),
    ("0ad-data", r"^audio/attack/fire/", "fire"),
    ("0ad-data", r"^audio/attack/impact/(flesh)", "impacts"),
    ("0ad-data", r"^audio/attack/impact/", "impacts"),
    ("0ad-data", r"^audio/attack/siege/", "weapons"),
    ("0ad-data", r"^audio/attack/weapon/", "weapons"),
    ("0ad-data", r"^audio/resource/(construction|lumbering|mining)/", "tools_machines"),
    ("0ad-data", r"^audio/resource/(farming|foraging|gathering)/", "foley"),
    # --- OpenTTD OpenSFX (names carry the credits) ---
    ("openttd-opensfx", r"(?i)toyland|unused|beep|morse|good year|bad year|oooh|splat|cash till", None),
    ("openttd-opensfx", r"(?i)sheep|cow|horse", "farm_animals"),
    ("openttd-opensfx", r"(?i)tropical: bird", "birds"),
    ("openttd-opensfx", r"(?i)lion|monkey", "wild_animals"),
    ("openttd-opensfx", r"(?i)level crossing|factory whistle", "bells_alarms"),
    ("openttd-opensfx", r"(?i)applause", "human"),
    ("openttd-opensfx", r"(?i)heavy wind|^\"wind", "weather"),
    ("openttd-opensfx", r"(?i)explosion|crash|breakdown", "explosions_crashes"),
    ("openttd-opensfx", r"(?i)jackhammer|sawmill|chainsaw|mining|building bridge|sparking|steam \(",
     "tools_machines"),
    ("openttd-opensfx", r"(?i)tree", "impacts"),
    ("openttd-opensfx", r".", "vehicles"),  # trains, planes, helicopter, buses, horns, ships
    # --- Minetest ---
    ("minetest-data", r"/(devtest|soundstuff)|player_damage|place_node|dug_node|dig_|_dig\.|_dug\.|item_smoke", None),
    ("minetest-data", r"doors_|xpanes_.*door|chest_", "doors_gates"),
    ("minetest-data", r"tnt_explode", "explosions_crashes"),
    ("minetest-data", r"fire_|tnt_|lava|furnace", "fire"),
    ("minetest-data", r"env_sounds_water|water_footstep", "water"),
    ("minetest-data", r"break_glass|glass_footstep", "household"),
    ("minetest-data", r"_footstep", "footsteps"),
    ("minetest-data", r"carts_", "vehicles"),
    ("minetest-data", r"tool_breaks", "impacts"),
    # --- freedesktop sound theme (designed UI/phone/bell sounds) ---
    ("sound-theme-freedesktop", r"audio-channel|audio-test|service-log|network-|device-|power-|dialog-|"
                                r"window-|audio-volume|message|suspend|complete", None),
    ("sound-theme-freedesktop", r"camera-shutter|screen-capture|trash-empty", "household"),
    ("sound-theme-freedesktop", r".", "bells_alarms"),  # alarm clock, bell, phones
    # --- Widelands ---
    ("widelands-data", r"^animals/bird", "birds"),
    ("widelands-data", r"^animals/crickets", "insects_frogs"),
    ("widelands-data", r"^animals/frog", "insects_frogs"),
    ("widelands-data", r"^animals/", "wild_animals"),
    ("widelands-data", r"^farm/scythe", "foley"),
    ("widelands-data", r"^farm/", "farm_animals"),
    ("widelands-data", r"^(atlanteans|hammering|metal|sawmill|smiths|stonecutting|woodcutting|"
                       r"barbarians/(blackwood|mortar|stonegrind|weaver)|mill)/", "tools_machines"),
    ("widelands-data", r"^(empire/(beer|wine)bubble)", "water"),
    ("widelands-data", r"^(barbarians/taverns|empire/taverns)/", "human"),
    ("widelands-data", r"^(fisher|other)/", "foley"),
    ("widelands-data", r".", None),  # UI clicks, messages, military jingles
    # --- Tux Paint stamps (spoken *_desc files and translations are never read) ---
    ("tuxpaint-stamps-default", r"/animals/birds/", "birds"),
    ("tuxpaint-stamps-default", r"/animals/(insects|amphibians)/", "insects_frogs"),
    ("tuxpaint-stamps-default", r"/animals/mammals/(bovines|equines|pig|ferret|camel)|/dogs/dog|blackcat",
     "farm_animals"),
    ("tuxpaint-stamps-default", r"/animals/", "wild_animals"),
    ("tuxpaint-stamps-default", r"/household/(dishes|kettle|toilet|vacuum|Washing|rubberduck|arttools)", "household"),
    ("tuxpaint-stamps-default", r"/household/tools/", "tools_machines"),
    ("tuxpaint-stamps-default", r"/vehicles/emergency/", "bells_alarms"),
    ("tuxpaint-stamps-default", r"/naturalforces/lightning", "weather"),
    ("tuxpaint-stamps-default", r"fireworks", "explosions_crashes"),
    ("tuxpaint-stamps-default", r"bat_left", "wild_animals"),
    ("tuxpaint-stamps-default", r".", None),
]

FREEDESKTOP_CREDITS = {
    "alarm-clock-elapsed": ("Tim/corsica_s", "CC-BY-SA-3.0"),
    "bell": ("Dr. Richard Boulanger et al", "CC-BY-3.0"),
    "trash-empty": ("Dr. Richard Boulanger et al", "CC-BY-3.0"),
    "camera-shutter": ("freesound user horsthorstensen", "CC-BY-SA-3.0"),
    "screen-capture": ("freesound user horsthorstensen", "CC-BY-SA-3.0"),
    "phone-incoming-call": ("Damien Sandras", "GPL-2+"),
    "phone-outgoing-busy": ("Damien Sandras", "GPL-2+"),
    "phone-outgoing-calling": ("Damien Sandras", "GPL-2+"),
}


@dataclass
class Source:
    package: str
    original: str          # path inside the package (or entry name)
    data: bytes
    author: str
    license: str


def category_of(package: str, original: str) -> str | None:
    for pkg, pattern, category in RULES:
        if pkg == package and re.search(pattern, original):
            return category
    return None


def sources_0ad(root: Path):
    with zipfile.ZipFile(root / "usr/share/games/0ad/mods/public/public.zip") as z:
        for name in sorted(z.namelist()):
            if name.startswith("audio/") and name.endswith(".ogg"):
                yield Source("0ad-data", name, z.read(name), "Wildfire Games", "CC-BY-SA-3.0")


def sources_opensfx(root: Path):
    """opensfx.cat: a table of (uint32 offset, uint32 length); each entry is a length-prefixed name, then a WAV."""
    data = (root / "usr/share/games/openttd/baseset/opensfx/opensfx.cat").read_bytes()
    count = (struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF) // 8
    for i in range(count):
        offset, length = struct.unpack_from("<II", data, 8 * i)
        offset &= 0x7FFFFFFF
        name_len = data[offset]
        name = data[offset + 1:offset + 1 + name_len].rstrip(b"\0").decode("latin-1")
        wav = data[offset + 1 + name_len:offset + length]
        by = re.search(r'(?:Original .*? by|By) "?([^".]+(?:\.[a-z]+)?)"?', name)
        lic = re.search(r"License: ([^.]+(?:\.\d)?)", name)
        yield Source("openttd-opensfx", name, wav, by.group(1).strip() if by else "OpenSFX authors",
                     _short_license(lic.group(1) if lic else "CC-BY-SA-3.0"))


def _short_license(text: str) -> str:
    t = text.lower()
    if "zero" in t or "cc0" in t:
        return "CC0-1.0"
    if "sharealike" in t.replace("-", ""):
        return "CC-BY-SA-3.0"
    if "attribution" in t:
        return "CC-BY-3.0"
    return text.strip()


def sources_files(package: str, root: Path, pattern: str, credit):
    for path in sorted(root.rglob(pattern)):
        rel = path.relative_to(root).as_posix()
        author, lic = credit(rel)
        yield Source(package, rel, path.read_bytes(), author, lic)


def minetest_credit(rel: str):
    name = Path(rel).name
    if name.startswith("doors_"):
        return "Minetest Game contributors (doors mod)", "CC-BY-3.0"
    if name.startswith("tnt_"):
        return "Minetest Game contributors (tnt mod)", "CC0-1.0"
    return "Minetest Game contributors", "CC-BY-SA-3.0"


def all_sources(cache: Path):
    yield from sources_0ad(unpack("0ad-data", cache))
    yield from sources_opensfx(unpack("openttd-opensfx", cache))
    yield from sources_files("minetest-data", unpack("minetest-data", cache), "*.ogg", minetest_credit)
    yield from sources_files("sound-theme-freedesktop", unpack("sound-theme-freedesktop", cache), "*.oga",
                             lambda rel: FREEDESKTOP_CREDITS.get(Path(rel).stem, ("freedesktop.org", "CC-BY-SA-3.0")))
    yield from sources_files("widelands-data", unpack("widelands-data", cache) / "usr/share/games/widelands/data/sound",
                             "*.ogg", lambda rel: ("Widelands Development Team", "GPL-2+"))
    yield from (s for s in sources_files("tuxpaint-stamps-default", unpack("tuxpaint-stamps-default", cache),
                                         "*.ogg", lambda rel: ("Tux Paint stamps contributors", "GPL-2"))
                if _tuxpaint_effect(s.original))


def _tuxpaint_effect(rel: str) -> bool:
    """Sound effects only: no spoken descriptions (``*_desc*``) and no per-language spoken names."""
    stem = Path(rel).stem
    return "_desc" not in stem and not re.search(r"_[a-z]{2}(_[A-Za-z]{2})?$", stem) and "/stamps/" in rel


def build(cache: Path, out: Path) -> None:
    library = out / "library"
    shutil.rmtree(library, ignore_errors=True)
    per_label: dict[tuple[str, str], int] = defaultdict(int)
    rows = []
    kept = DuplicateIndex(near=None, phases=1)    # the same recording only, as when the library was built
    duplicates = 0
    for src in all_sources(cache):
        category = category_of(src.package, src.original)
        if category is None:
            continue
        label = label_of(src.original)
        key = (category, label)
        if per_label[key] >= MAX_PER_LABEL:
            continue
        try:
            pieces = convert(src.data)
        except Exception as exc:  # a damaged file in a package: report and go on
            print(f"skip {src.package}:{src.original}: {exc}", file=sys.stderr)
            continue
        for seg in pieces:
            if per_label[key] >= MAX_PER_LABEL:
                break
            if kept.find(seg):
                duplicates += 1
                continue
            kept.add(seg, src.original)
            per_label[key] += 1
            clip = f"{category}/{label}_{per_label[key]:02d}.ogg"
            (library / category).mkdir(parents=True, exist_ok=True)
            sf.write(library / clip, seg, RATE, format="OGG", subtype="VORBIS", compression_level=VORBIS_QUALITY)
            rows.append({"clip": clip, "category": category, "source_package": src.package,
                         "original_path": src.original if src.package != "openttd-opensfx" else
                         f"opensfx.cat: {src.original}", "author": src.author, "license": src.license,
                         "duration_s": f"{len(seg) / RATE:.2f}"})
    with open(out / "ATTRIBUTION.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(sorted(rows, key=lambda r: r["clip"]))
    cats = defaultdict(int)
    for r in rows:
        cats[r["category"]] += 1
    size = sum(p.stat().st_size for p in library.rglob("*.ogg"))
    print(f"{len(rows)} clips, {len(cats)} categories, {size / 1e6:.1f} MB ({duplicates} duplicates left out)")
    for c, n in sorted(cats.items()):
        print(f"  {c:<20} {n}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "qvi-debs",
                    help="where the .deb files are downloaded and unpacked")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "assets")
    a = ap.parse_args()
    a.cache.mkdir(parents=True, exist_ok=True)
    build(a.cache.resolve(), a.out)
