"""The CNN on ONNX Runtime (the [fast] extra): the same embeddings as torch, in process, in worker
processes and in an index; refused or left for torch with a clear reason."""

import numpy as np
import pytest
import torch

from qvi_app.app import build_index
from qvi_app.audio import load_audio
from qvi_app.encoders import load_encoder, onnx_runtime
from qvi_app.errors import EncoderError
from qvi_app.index import ReferenceIndex
from qvi_app.paths import DEMO_LIBRARY

pytestmark = pytest.mark.skipif(not onnx_runtime.available(), reason="onnxruntime/onnx not installed ([fast] extra)")


def test_onnx_runtime_embeds_as_torch_does():
    enc = load_encoder("qvi")
    wave, sr = load_audio(DEMO_LIBRARY / "farm_animals/cattle_01.ogg")
    short = wave[: sr]                                  # padded to the minimum frames, another input length
    want = [enc.embed(wave, sr), enc.embed(short, sr, role="query")]
    assert enc.use_runtime("onnx") == "onnx"
    assert enc.parts[0]._onnx                           # the network really is ONNX Runtime's now
    got = [enc.embed(wave, sr), enc.embed(short, sr, role="query")]
    for a, b in zip(want, got):
        assert np.abs(a - b).max() < 1e-5
        assert float(a @ b) > 0.99999
    assert enc.use_runtime("torch") == "torch" and not enc.parts[0]._onnx
    assert load_encoder("2dft").use_runtime("onnx") == "torch"     # nothing to run there


def test_an_index_built_on_onnx_workers_equals_one_built_on_torch(tmp_path, small_library):
    build_index(small_library, tmp_path / "torch", show_progress=False, workers=1, runtime="torch")
    build_index(small_library, tmp_path / "onnx", show_progress=False, workers=2, runtime="onnx")
    a, b = ReferenceIndex.open(tmp_path / "torch"), ReferenceIndex.open(tmp_path / "onnx")
    assert a.meta["encoder_id"] == b.meta["encoder_id"] and [i.path for i in a.items] == [i.path for i in b.items]
    np.testing.assert_allclose(np.asarray(a.embeddings), np.asarray(b.embeddings), atol=1e-5)
    assert not np.array_equal(np.asarray(a.embeddings), np.asarray(b.embeddings))   # the workers ran ONNX
    np.testing.assert_allclose(a.penalties, b.penalties, atol=1e-5)


def test_missing_or_mismatching_runtime(monkeypatch):
    enc = load_encoder("cnn")
    monkeypatch.setattr(onnx_runtime, "available", lambda: False)
    assert enc.use_runtime("auto") == "torch"
    with pytest.raises(EncoderError, match=r"pip install -e '\.\[fast\]'"):
        enc.use_runtime("onnx")
    monkeypatch.undo()
    monkeypatch.setattr(onnx_runtime, "TOLERANCE", -1.0)       # no output can match: torch stays
    with pytest.warns(UserWarning, match="ONNX Runtime not used"):
        assert enc.use_runtime("onnx") == "torch"
    with pytest.raises(ValueError, match="runtime must be one of"):
        enc.use_runtime("tensorrt")


def test_int8_runtime_is_quantised_calibrated_and_close_to_torch(tmp_path, small_library):
    """``--runtime int8``: the CNN quantised to 8 bits (calibrated on the bundled demo clips), in
    worker processes too; every embedding within the measured agreement of torch's, but not equal."""
    enc = load_encoder("cnn")
    wave, sr = load_audio(DEMO_LIBRARY / "farm_animals/cattle_01.ogg")
    want = enc.embed(wave, sr)
    assert enc.use_runtime("int8") == "int8"
    ops = {n.op_type for n in __import__("onnx").load_from_string(enc._onnx["reference"].model_bytes).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops                # a quantised graph, not the float one
    got = enc.embed(wave, sr)
    assert 0.98 < float(want @ got) < 0.999999
    enc.use_runtime("torch")
    build_index(small_library, tmp_path / "torch", show_progress=False, workers=1, runtime="torch")
    build_index(small_library, tmp_path / "int8", show_progress=False, workers=2, runtime="int8")
    a, b = ReferenceIndex.open(tmp_path / "torch"), ReferenceIndex.open(tmp_path / "int8")
    cos = np.sum(np.asarray(a.embeddings) * np.asarray(b.embeddings), axis=1)
    assert cos.min() > 0.98 and cos.max() < 0.999999


def test_the_parent_embeds_files_too_and_results_keep_their_order(small_library, monkeypatch):
    """With two processes this one embeds a file whenever the pool has its share queued (so the
    seconds a spawned worker spends starting are not lost); results still come in path order,
    each equal to a one-process run's, and bad files are reported the same way."""
    from qvi_app.index import workers

    paths = sorted(small_library.rglob("*.ogg"))
    bad = small_library / "bad.wav"
    bad.write_bytes(b"RIFF not really")
    paths.insert(5, bad)
    enc = load_encoder("cnn")
    alone = list(workers.embed_files(enc, paths, 1, runtime="onnx"))
    here, threads = [], torch.get_num_threads()
    real = workers.embed_file
    monkeypatch.setattr(workers, "embed_file", lambda e, p: here.append(p) or real(e, p))
    both = list(workers.embed_files(enc, paths, 2, runtime="onnx"))
    assert 0 < len(here) <= len(paths) - workers.IN_FLIGHT       # the pool had its share
    assert [r[0] for r in both] == [r[0] for r in alone] and both[5] == alone[5] and alone[5][0] == "skip"
    for a, b in zip(alone, both):
        if a[0] == "ok":
            np.testing.assert_allclose(a[1], b[1], atol=1e-5)
            assert a[2:] == b[2:]
    assert not enc._onnx and torch.get_num_threads() == threads  # back on torch, its threads restored


def test_a_runtime_that_cannot_be_made_stops_a_pool_with_one_clear_error(small_library, capfd):
    """The workers start before this process makes the runtime; if making it fails, the error
    is raised here once, and the workers, which wait for it, print no traceback of their own."""
    from qvi_app.index import workers

    paths = sorted(small_library.rglob("*.ogg"))
    with pytest.raises(ValueError, match="runtime must be one of"):
        list(workers.embed_files(load_encoder("cnn"), paths, 2, runtime="fastest"))
    assert "Traceback" not in capfd.readouterr().err
