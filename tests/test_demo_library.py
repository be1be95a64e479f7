"""The bundled demo library: size, categories, attribution, and a fresh index."""

import csv

from qvi_app.audio.tags import READER
from qvi_app.encoders import load_encoder
from qvi_app.index import ReferenceIndex, scan_library
from qvi_app.paths import ASSETS_DIR, DEMO_INDEX, DEMO_LIBRARY

FREE_LICENSES = {"CC0-1.0", "CC-BY-3.0", "CC-BY-SA-3.0", "GPL-2", "GPL-2+"}


def test_library_size_and_categories():
    files = scan_library(DEMO_LIBRARY)
    cats = {f.category for f in files}
    assert len(files) >= 600 and len(cats) >= 12
    size = sum(f.size for f in files)
    assert 10e6 < size < 25e6


def test_every_clip_has_attribution_and_a_free_licence():
    with open(ASSETS_DIR / "ATTRIBUTION.csv", newline="", encoding="utf-8") as f:
        rows = {r["clip"]: r for r in csv.DictReader(f)}
    clips = {f.relpath for f in scan_library(DEMO_LIBRARY)}
    assert clips == set(rows)
    for r in rows.values():
        assert r["source_package"] and r["original_path"] and r["author"]
        assert r["license"] in FREE_LICENSES, r


def test_bundled_index_is_fresh_for_the_bundled_model():
    """Built with the default encoder: the bundled model with the ranking its checkpoint carries."""
    from qvi_app.encoders import DEFAULT_ENCODER

    idx = ReferenceIndex.open(DEMO_INDEX, encoder_id=load_encoder(DEFAULT_ENCODER).id)
    on_disk = {f.relpath: f for f in scan_library(DEMO_LIBRARY)}
    assert {it.path for it in idx.items} == set(on_disk)
    assert all(on_disk[it.path].size == it.size for it in idx.items)
    assert idx.library_root.resolve() == DEMO_LIBRARY.resolve()
    assert not idx.cut_outdated
    assert idx.items.reader == READER                     # its files' descriptions read by today's reader
