"""``qvi index --engine ray``: a real local Ray cluster embeds the library and the index is the
one the local worker pool makes; a cluster that cannot be reached is one line, at once."""

import numpy as np
import pytest

from qvi_app.app import build_index
from qvi_app.cli import main as qvi
from qvi_app.index import ReferenceIndex
from tests.conftest import tone, write

ray = pytest.importorskip("ray", reason="Ray is installed with the test extras (setup.cfg)")
pytestmark = pytest.mark.slow


@pytest.fixture
def library(small_library):
    lib = small_library
    for extra in list(lib.rglob("*.ogg"))[8:]:          # 8 real sounds, a tone and a bad file
        extra.unlink()
    write(lib / "tones" / "a440.wav", tone(440, 1.5))
    (lib / "tones" / "broken.wav").write_text("not audio")
    return lib


def test_a_ray_cluster_indexes_as_the_local_pool_does(library, tmp_path):
    try:
        remote = build_index(library, tmp_path / "ray", engine="ray", workers=2, show_progress=False)
    finally:
        ray.shutdown()
    local = build_index(library, tmp_path / "local", workers=1, show_progress=False)
    assert (remote.embedded, len(remote.skipped)) == (local.embedded, len(local.skipped)) == (9, 1)
    a, b = ReferenceIndex.open(tmp_path / "ray"), ReferenceIndex.open(tmp_path / "local")
    assert [(i.path, i.category, i.content_hash) for i in a.items] == [(i.path, i.category, i.content_hash) for i in b.items]
    np.testing.assert_allclose(np.asarray(a.embeddings), np.asarray(b.embeddings), atol=1e-6)
    assert [(s.path, s.reason) for s in a.skipped] == [(s.path, s.reason) for s in b.skipped]


def test_an_unreachable_cluster_is_one_line_at_once(library, tmp_path, capsys):
    assert qvi(["index", str(library), "--index", str(tmp_path / "ix"), "--engine", "ray",
                "--ray-address", "127.0.0.1:1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach the Ray cluster at 127.0.0.1:1" in err[0]
    assert not ray.is_initialized() and not (tmp_path / "ix" / "CURRENT").exists()
