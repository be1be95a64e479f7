"""Every break of the hostile audit (issue 13), reproduced and kept fixed: bad input gets one clear
line (exit 2), the rest of the work goes on, nothing is lost, memory stays bounded, and nothing
from a file a user received runs code. The corpus comes from tests/hostile.py."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hostile import SR, bad_audio, code_running_pickle, hostile_library, tone
from qvi_app.audio import load_audio
from qvi_app.bench.process import run_measured
from qvi_app.cli import main as qvi
from qvi_app.encoders import load_encoder
from qvi_app.encoders.checkpoint import save_checkpoint
from qvi_app.errors import AudioError, EncoderError, QviError
from qvi_app.feedback import FeedbackStore
from qvi_app.paths import REPO_ROOT, ZERO_SHOT_CNN

REFUSED = {
    "zero_bytes": "empty file", "header_only": "no audio samples", "text_named_wav": "not a readable audio file",
    "one_sample": "too short", "nan": "NaN or infinite", "inf": "NaN or infinite", "channels_65": "channel count",
    "silent": "silent", "too_large_to_decode": "too large to decode",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return bad_audio(tmp_path_factory.mktemp("hostile") / "files")


def _qvi_subprocess(*args, timeout=180, env=None):
    """``qvi ARGS`` as its own process: exit code, stdout, stderr and its own peak RSS (MB)."""
    r = run_measured([sys.executable, "-m", "qvi_app", *args], timeout=timeout, env=env)
    return r.returncode, r.stdout, r.stderr, r.peak_rss_mb


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- sound files ----------------------------------------------------------------------------------
def test_every_bad_file_is_refused_with_its_reason_and_odd_good_ones_load(corpus):
    for name, path in corpus.items():
        if name in REFUSED:
            with pytest.raises(AudioError, match=REFUSED[name]):
                load_audio(path)
        elif name.startswith("truncated"):
            try:                                     # what survives of a cut file may be readable
                wave, _ = load_audio(path)
                assert np.isfinite(wave).all()
            except AudioError:
                pass
        else:
            wave, sr = load_audio(path)
            assert np.isfinite(wave).all() and 0 < np.abs(wave).max() <= 1.0, name


def test_a_huge_decode_is_refused_from_the_header_in_bounded_memory(corpus):
    """The audit's FLAC decoded to 5 GB inside qvi search; now the header is enough to refuse it."""
    code, _, err, peak_mb = _qvi_subprocess("search", corpus["too_large_to_decode"], "--index", REPO_ROOT / "assets/index")
    assert code == 2 and "too large to decode" in _one_line(err)
    assert peak_mb < 1500, peak_mb


def test_a_long_query_is_analysed_only_up_to_its_stated_length(tmp_path):
    """599 s of noise as a query took 45 s and 3.3 GB; only its first 30 s are analysed now."""
    rng = np.random.default_rng(0)
    path = tmp_path / "noise599.wav"
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        for _ in range(599):
            f.write((0.3 * rng.standard_normal(SR)).astype(np.float32))
    t0 = time.monotonic()
    code, out, err, peak_mb = _qvi_subprocess("search", path, "--index", REPO_ROOT / "assets/index", "--json")
    assert code == 0, err
    assert len(json.loads(out)) == 10 and peak_mb < 1500, peak_mb
    assert time.monotonic() - t0 < 60


# -- a library of them ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory):
    root = hostile_library(tmp_path_factory.mktemp("hostile-lib") / "lib")
    ix = root.parent / "ix"
    code, out, err, peak_mb = _qvi_subprocess("index", root, "--index", ix, "--encoder", "2dft", "--quiet")
    return root, ix, code, out, err, peak_mb


def test_a_hostile_library_indexes_its_good_files_once_each(hostile_index):
    root, ix, code, out, err, peak_mb = hostile_index
    assert code == 0, err
    from qvi_app.index import ReferenceIndex

    idx = ReferenceIndex.open(ix)
    paths = sorted(it.path for it in idx.items)
    assert len(paths) == len(set(paths))                                   # symlink loops: each file once
    assert not any("/up/" in p or "/loop/" in p for p in paths)
    assert sum(p.startswith(("birds/", "doors/")) for p in paths) == 6
    assert any(os.fsencode(p).endswith(b"ok_caf\xe9.wav") for p in paths)   # a name that is not UTF-8
    reasons = {Path(s.path).name: s.reason for s in idx.skipped}
    assert "too large to decode" in reasons["huge8ch.flac"] and "channel count" in reasons["ch65.wav"]
    assert "\x1b" not in out and "skipped" in out                          # names printed escaped
    assert peak_mb < 1500


def test_names_are_printed_escaped_and_tabs_cannot_break_columns(hostile_index, capsys):
    _, ix, *_ = hostile_index
    assert qvi(["categories", "--index", str(ix)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert all(len(line.split("\t")) == 2 for line in out.splitlines())
    assert "esc\\x1b[31mred\\x09cat\t1" in out


def test_hostile_queries_get_one_line_each(hostile_index, corpus, capsys):
    _, ix, *_ = hostile_index
    for name, path in corpus.items():
        code = qvi(["search", str(path), "--index", str(ix), "--json"])
        captured = capsys.readouterr()
        if name in REFUSED:
            assert code == 2 and REFUSED[name] in _one_line(captured.err), name
        elif name.endswith("_ok"):
            assert code == 0 and len(json.loads(captured.out)) > 0, (name, captured.err)


def test_a_second_index_run_on_one_folder_says_another_holds_it(hostile_index, capsys):
    root, ix, *_ = hostile_index
    with open(ix / ".lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert qvi(["index", str(root), "--index", str(ix), "--encoder", "2dft", "--quiet"]) == 2
    assert "another qvi index run is updating" in _one_line(capsys.readouterr().err)


def test_index_folders_named_with_hash_or_percent_open_and_update(tmp_path, capsys):
    (tmp_path / "lib" / "a").mkdir(parents=True)
    lib = tmp_path / "lib"
    for i in range(3):
        sf.write(lib / "a" / f"t{i}.wav", tone(300 + 100 * i, 0.5), SR)
    for name in ("ix#1", "ix%25"):
        ix = tmp_path / name
        assert qvi(["index", str(lib), "--index", str(ix), "--encoder", "2dft", "--quiet"]) == 0
        capsys.readouterr()
        assert qvi(["search", str(lib / "a/t1.wav"), "--index", str(ix), "--top", "1", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["path"].endswith("t1.wav")
        assert qvi(["index", str(lib), "--index", str(ix), "--encoder", "2dft", "--quiet"]) == 0
        assert "3 unchanged" in capsys.readouterr().out                     # not rebuilt from scratch


def test_orphaned_workers_die_with_a_killed_qvi_index(tmp_path):
    """Pool workers hold both ends of their queues, so once their parent is killed nothing ever
    ends their wait: they lived on at about 700 MB each."""
    lib = tmp_path / "lib"
    (lib / "a").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(30):                                  # long enough to be killed mid-run
        sf.write(lib / "a" / f"t{i}.wav", (0.3 * rng.standard_normal(60 * SR)).astype(np.float32), SR,
                 subtype="PCM_16")
    proc = subprocess.Popen([sys.executable, "-m", "qvi_app", "index", str(lib), "--index", str(tmp_path / "ix"),
                             "--encoder", "cnn", "--workers", "2", "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        children = []
        end = time.monotonic() + 120
        while time.monotonic() < end and len(children) < 2:
            time.sleep(0.2)
            children = [int(p) for p in _children(proc.pid)]
        assert len(children) >= 2, "the workers never started"
        time.sleep(3)                                   # they load the model and start embedding
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        end = time.monotonic() + 10
        while time.monotonic() < end and any(_alive(c) for c in children):
            time.sleep(0.2)
        assert not any(_alive(c) for c in children), "workers outlived the killed qvi index"
    finally:
        if proc.poll() is None:
            proc.kill()


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# -- damaged index files --------------------------------------------------------------------------
@pytest.fixture
def small_index(tmp_path):
    lib = tmp_path / "lib"
    for i in range(6):
        (lib / "a").mkdir(parents=True, exist_ok=True)
        sf.write(lib / "a" / f"t{i}.wav", tone(250 + 90 * i, 0.7), SR)
    ix = tmp_path / "ix"
    assert qvi(["index", str(lib), "--index", str(ix), "--encoder", "2dft", "--quiet"]) == 0
    gen = ix / (ix / "CURRENT").read_text().strip()
    return lib, ix, gen


def _meta(gen: Path, key: str, value):
    con = sqlite3.connect(gen / "meta.sqlite")
    if value is None:
        con.execute("DELETE FROM meta WHERE key=?", (key,))
    else:
        con.execute("UPDATE meta SET value=? WHERE key=?", (value, key))
    con.commit()
    con.close()


DAMAGE = {
    "damaged npy header": lambda gen: (gen / "embeddings.npy").write_bytes(b"\x93NUMPY garbage"),
    "float16 embeddings": lambda gen: np.save(gen / "embeddings.npy", np.load(gen / "embeddings.npy").astype(np.float16)),
    "float64 embeddings": lambda gen: np.save(gen / "embeddings.npy", np.load(gen / "embeddings.npy").astype(np.float64)),
    "missing dim": lambda gen: _meta(gen, "dim", None),
    "non-numeric created": lambda gen: _meta(gen, "created", "yesterday"),
    "NaN row": lambda gen: _set_row(gen, np.nan),
    "flipped bytes": lambda gen: _flip(gen),
    "CURRENT elsewhere": lambda gen: (gen.parent / "CURRENT").write_text("../../../etc\n"),
}


def _set_row(gen: Path, value) -> None:
    emb = np.load(gen / "embeddings.npy")
    emb[2] = value
    np.save(gen / "embeddings.npy", emb)


def _flip(gen: Path) -> None:
    raw = bytearray((gen / "embeddings.npy").read_bytes())
    for i in range(200, len(raw), 997):
        raw[i] ^= 0x7F
    (gen / "embeddings.npy").write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_index_files_are_one_line_with_the_repair(small_index, damage, capsys):
    lib, ix, gen = small_index
    DAMAGE[damage](gen)
    code = qvi(["search", str(lib / "a/t1.wav"), "--index", str(ix), "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (damage, out)
    line = _one_line(err)
    assert "damaged" in line and "qvi index" in line, (damage, line)


def test_the_checksum_finds_silent_damage(small_index, capsys):
    lib, ix, gen = small_index
    assert qvi(["info", "--index", str(ix), "--verify"]) == 0
    assert "checksum    ok" in capsys.readouterr().out
    emb = np.load(gen / "embeddings.npy")
    emb[1, 3] *= 0.999                                                 # still a plausible vector
    np.save(gen / "embeddings.npy", emb)
    assert qvi(["search", str(lib / "a/t1.wav"), "--index", str(ix)]) == 0      # search cannot tell
    capsys.readouterr()
    assert qvi(["info", "--index", str(ix), "--verify"]) == 2
    assert "do not match their checksum" in _one_line(capsys.readouterr().err)


# -- checkpoints -----------------------------------------------------------------------------------
def _bad_settings(**change):
    settings = {"backbone": "cnn", "frontend": {}, "network": {}, "towers": 0, "head_hidden": 0}
    for key, value in change.items():
        group, _, name = key.partition("__")
        if name:
            settings[group] = {**settings[group], name: value}
        else:
            settings[group] = value
    return settings


@pytest.mark.parametrize("case, payload, words", [
    ("unknown front-end key", {"settings": _bad_settings(frontend__warp=3)}, "unknown front-end setting"),
    ("base_channels 200000", {"settings": _bad_settings(network__base_channels=200000)}, "base_channels must be"),
    ("n_fft 2**31", {"settings": _bad_settings(frontend__n_fft=2 ** 31)}, "n_fft must be"),
    ("settings not a mapping", {"settings": [1, 2]}, "not a mapping"),
    ("missing version", {"version": None}, "no version"),
    ("format 1, arch not a mapping", {"format_version": 1, "arch": "big", "frontend": {}}, "not a mapping"),
])
def test_bad_checkpoints_are_one_line_before_anything_is_built(tmp_path, case, payload, words, capsys):
    path = save_checkpoint(tmp_path / "bad.pt", encoder="cnn", version="x", settings=_bad_settings(), state_dict={})
    ck = torch.load(path, weights_only=True)
    ck.update(payload)
    torch.save(ck, path)
    with pytest.raises(EncoderError, match=words):
        load_encoder("cnn", path)
    lib = tmp_path / "lib"
    (lib / "a").mkdir(parents=True)
    sf.write(lib / "a" / "t.wav", tone(), SR)
    assert qvi(["index", str(lib), "--index", str(tmp_path / "ix"), "--encoder", "cnn", "--checkpoint", str(path),
                "--quiet"]) == 2
    assert words in _one_line(capsys.readouterr().err)


def test_a_pickled_checkpoint_cannot_run_code(tmp_path):
    marker = code_running_pickle(tmp_path / "evil.pt", "qvi-encoder")
    with pytest.raises(EncoderError, match="not a readable qvi checkpoint"):
        load_encoder("cnn", tmp_path / "evil.pt")
    assert not marker.exists()
    assert ZERO_SHOT_CNN.is_file()


# -- the feedback store -----------------------------------------------------------------------------
def _rate(store, wave, result="lib/a.ogg", rating=1):
    return store.rate(wave=wave, sr=SR, result_path=result, rank=1, score=0.5, rating=rating, category_filter=None,
                      model_id="m")


def test_two_processes_rating_one_query_lose_nothing(tmp_path):
    db = tmp_path / "fb" / "feedback.sqlite"
    script = (f"import numpy as np, sys\nfrom qvi_app.feedback import FeedbackStore\n"
              f"s = FeedbackStore({str(db)!r})\nw = np.sin(np.arange(22050) * 0.05).astype(np.float32)\n"
              "for i in range(20):\n    s.rate(wave=w, sr=22050, result_path=f'{sys.argv[1]}{i}.ogg', rank=1, "
              "score=0.5, rating=1, category_filter=None, model_id='m')\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, who], stderr=subprocess.PIPE, text=True)
             for who in ("a", "b")]
    for p in procs:
        assert p.wait(60) == 0, p.stderr.read()
    assert len(FeedbackStore(db).ratings()) == 40
    assert not list((db.parent / "queries").glob("*.tmp.wav")) and len(list((db.parent / "queries").glob("*.wav"))) == 1


def test_a_new_database_is_never_seen_without_its_tables(tmp_path):
    for i in range(20):
        db = tmp_path / str(i) / "feedback.sqlite"
        FeedbackStore(db).close()
        names = [r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")]
        assert "ratings" in names
        assert not [p for p in db.parent.iterdir() if p.name.startswith(".")]        # no temporary file left


def test_a_damaged_database_and_killed_writes(tmp_path):
    db = tmp_path / "feedback.sqlite"
    store = FeedbackStore(db)
    _rate(store, tone())
    store.close()
    stale = db.parent / "queries" / "0123456789abcdef.x1.tmp.wav"
    stale.write_bytes(b"half a wav")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    FeedbackStore(db).close()
    assert not stale.exists()                                          # left by a killed write: swept
    db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    with pytest.raises(QviError, match="damaged"):
        FeedbackStore(db).export_csv(tmp_path / "out.csv")


@pytest.fixture
def mounted(tmp_path):
    """A tmpfs of its own (skipped where mounting is not allowed)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_read_only_data_folder_still_reads_and_exports(mounted, tmp_path):
    db = mounted / "feedback.sqlite"
    store = FeedbackStore(db)
    _rate(store, tone())
    store.close()
    assert subprocess.run(["mount", "-o", "remount,ro", str(mounted)], capture_output=True).returncode == 0
    ro = FeedbackStore(db)
    assert ro.read_only and len(ro.ratings()) == 1
    assert ro.export_csv(tmp_path / "out.csv") == 1
    with pytest.raises(QviError, match="cannot save ratings"):
        _rate(ro, tone(500))


@pytest.mark.parametrize("version", [2, 3])
def test_an_older_database_on_read_only_media_still_reads(mounted, tmp_path, version):
    """A version-2 or -3 database cannot be given its name or length column there: it is read
    as it is."""
    from tests.test_feedback import V2_RATINGS, V3_RATINGS
    con = sqlite3.connect(mounted / "feedback.sqlite")
    con.executescript(V2_RATINGS if version == 2 else V3_RATINGS)
    con.close()
    assert subprocess.run(["mount", "-o", "remount,ro", str(mounted)], capture_output=True).returncode == 0
    ro = FeedbackStore(mounted / "feedback.sqlite")
    assert ro.read_only
    assert [(r.result_path, r.category_filter, r.name_filter, r.length_filter) for r in ro.ratings()] == [
        ("lib/old.ogg", "birds", None if version == 2 else "owl", None)]
    assert ro.export_csv(tmp_path / "out.csv") == 1


def test_a_full_disk_is_named_as_such(mounted):
    store = FeedbackStore(mounted / "feedback.sqlite")
    (mounted / "filler").write_bytes(b"\0" * (200 << 10))
    with pytest.raises(QviError, match="the disk is full"):
        for i in range(20):
            _rate(store, tone(300 + i, 2.0))


def test_processes_opening_an_older_database_at_once_all_can_rate(tmp_path):
    """Two or more qvi processes started together on a version-2 database: each sees it old and
    upgrades it; the one that comes second must find it done, not fail into read-only mode."""
    from tests.test_feedback import V2_RATINGS

    script = ("import sys, time, pathlib, numpy as np\nfrom qvi_app.feedback import FeedbackStore\n"
              "d = pathlib.Path(sys.argv[1]); (d / f'ready-{sys.argv[2]}').touch()\n"
              "while not (d / 'go').exists(): time.sleep(0.001)\n"
              "s = FeedbackStore(d / 'feedback.sqlite')\n"
              "s.rate(wave=np.full(100, 0.1, np.float32), sr=8000, result_path=f'r{sys.argv[2]}.ogg', rank=1, "
              "score=0.5, rating=1, category_filter=None, model_id='m')\n")
    for trial in range(6):
        d = tmp_path / str(trial)
        d.mkdir()
        con = sqlite3.connect(d / "feedback.sqlite")
        con.executescript(V2_RATINGS)
        con.close()
        procs = [subprocess.Popen([sys.executable, "-c", script, str(d), who], stderr=subprocess.PIPE, text=True)
                 for who in "abcd"]
        deadline = time.monotonic() + 60
        while len(list(d.glob("ready-*"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        (d / "go").touch()
        for p in procs:
            assert p.wait(60) == 0, p.stderr.read()
        assert sorted(r.result_path for r in FeedbackStore(d / "feedback.sqlite").ratings()) == [
            "lib/old.ogg", "ra.ogg", "rb.ogg", "rc.ogg", "rd.ogg"]
