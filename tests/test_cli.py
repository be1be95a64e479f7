import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from qvi_app.cli import main
from qvi_app.index import LENGTH_PRESETS
from qvi_app.paths import DEMO_LIBRARY
from tests.conftest import SR, tone, write, write_encoded


def qvi(*args):
    return subprocess.run([sys.executable, "-m", "qvi_app", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_search_json_shape_on_the_bundled_library():
    query = DEMO_LIBRARY / "birds" / sorted(p.name for p in (DEMO_LIBRARY / "birds").iterdir())[0]
    r = qvi("search", query, "--top", "3", "--json")
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert set(hits[0]) == {"rank", "path", "category", "score", "duration"}
    assert hits[0]["path"] == str(query) and hits[0]["category"] == "birds"
    assert hits[0]["duration"] == pytest.approx(sf.info(query).duration, abs=1e-3)
    r = qvi("search", query, "--category", "weather", "--top", "2", "--json")
    assert {h["category"] for h in json.loads(r.stdout)} == {"weather"}


def test_search_by_length():
    """--length keeps the sounds whose file lasts that long, alone or with a category; the text
    list shows each sound's length; a length that cannot be read or holds nothing is one line."""
    query = DEMO_LIBRARY / "birds" / sorted(p.name for p in (DEMO_LIBRARY / "birds").iterdir())[0]
    whole = json.loads(qvi("search", query, "--top", "604", "--json").stdout)
    for given, keep in (("-1", lambda d: d < 1), ("1-3", lambda d: 1 <= d < 3), ("10-", lambda d: d >= 10),
                        (">3", lambda d: d >= 3)):
        r = qvi("search", query, "--length", given, "--top", "604", "--json")
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)
        want = [h["path"] for h in whole if keep(sf.info(h["path"]).duration)]    # the files, read again
        assert [h["path"] for h in got] == want and 0 < len(want) < len(whole)
    both = json.loads(qvi("search", query, "--length", "-1", "--category", "birds", "--top", "50", "--json").stdout)
    assert both and all(h["category"] == "birds" and h["duration"] < 1 for h in both)
    text = qvi("search", query, "--length", "10-", "--top", "3")
    assert text.returncode == 0 and all(float(line.split()[-3]) >= 10 for line in text.stdout.splitlines())
    assert text.stdout.splitlines()[0].split()[-2] == "s"
    for bad, says in (("3-1", "holds no sound"), ("long", "cannot read the length")):
        r = qvi("search", query, "--length", bad)
        assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1 and not r.stdout
    none = qvi("search", query, "--length", "900-", "--category", "birds")
    assert none.returncode == 0 and "no sound in birds lasting 900 s or more" in none.stderr


def test_search_says_where_each_long_result_matches(tmp_path):
    """--where: each result several times as long as the imitation gets the part it matches best
    (as long as the imitation, inside the sound) and the other places it matches, in the JSON and
    on its text line; a short one none; a sound gone from the folder is a warning and the list still comes."""
    wave, sr = sf.read(DEMO_LIBRARY / "ambience" / "amb_port_02.ogg", dtype="float32")
    query = write(tmp_path / "take.wav", wave[3 * sr: 5 * sr], sr)
    r = qvi("search", query, "--length", "3-", "--top", "6", "--where", "--json")
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)
    long = [h for h in hits if h["duration"] >= 4.0]
    assert long and all("match" in h for h in long) and not any("match" in h for h in hits if h["duration"] < 4.0)
    for h in long:
        places = [h["match"], *h["also"]]                     # the other places J would go to, apart
        assert len(places) <= 5 and all(a1 <= b0 or b1 <= a0 for i, (a0, a1) in enumerate(places)
                                        for b0, b1 in places[:i])
        for start, end in places:
            assert 0 <= start < end <= h["duration"] + 0.01 and end - start == pytest.approx(2.0, abs=0.02)
    assert any(h["also"] for h in long)
    text = qvi("search", query, "--length", "3-", "--top", "6", "--where")
    first = text.stdout.splitlines()[0]
    assert text.returncode == 0 and f"(matches at {long[0]['match'][0]:.1f}–" in first
    assert (f"; also {long[0]['also'][0][0]:.1f}–" in first) == bool(long[0]["also"])

    lib = tmp_path / "lib"
    shutil.copytree(DEMO_LIBRARY / "ambience", lib / "ambience")
    assert qvi("index", lib, "--index", tmp_path / "ix", "--quiet").returncode == 0
    (lib / "ambience" / "amb_port_02.ogg").unlink()
    r = qvi("search", query, "--index", tmp_path / "ix", "--top", "3", "--where")
    assert r.returncode == 0 and "warning: where the query matches was not found" in r.stderr
    assert len(r.stdout.splitlines()) == 3


def test_search_and_similar_by_name_as_well(capsys):
    """--name keeps the sounds whose path holds every word, in any case; none is said in a line."""
    query = DEMO_LIBRARY / "birds" / sorted(p.name for p in (DEMO_LIBRARY / "birds").iterdir())[0]
    assert main(["search", str(query), "--name", "AMB_FARM", "--top", "50", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert sorted(h["path"] for h in hits) == sorted(map(str, (DEMO_LIBRARY / "ambience").glob("amb_farm_*.ogg")))
    assert main(["search", str(query), "--name", "farm 02", "--top", "50"]) == 0
    out = capsys.readouterr().out.splitlines()              # a folder's name and a file's: both words held
    assert len(out) >= 2 and all("farm" in line and "02" in line for line in out)
    assert any("farm_animals" in line for line in out) and any("amb_farm_02" in line for line in out)
    rel = str(query.relative_to(DEMO_LIBRARY))
    assert main(["similar", rel, "--name", query.stem, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["path"] == str(query)
    # A part of a long ambience: more like that part, which is not the whole sound's ranking.
    amb = "ambience/amb_farm_01.ogg"
    assert main(["similar", amb, "--top", "5", "--json"]) == 0
    whole = [h["path"] for h in json.loads(capsys.readouterr().out)]
    assert main(["similar", amb, "--part", "1.0", "3.0", "--top", "5", "--json"]) == 0
    part = [h["path"] for h in json.loads(capsys.readouterr().out)]
    assert len(part) == 5 and part != whole
    assert main(["similar", amb, "--part", "3.0", "3.01"]) == 2 and "longer part" in capsys.readouterr().err
    # several sounds: ranked by what they share, both first
    owl, cow = "birds/owl_01.ogg", "farm_animals/cow_01.ogg"
    assert main(["similar", owl, cow, "--top", "5", "--json"]) == 0
    shared = [h["path"] for h in json.loads(capsys.readouterr().out)]
    assert set(shared[:2]) == {str(DEMO_LIBRARY / owl), str(DEMO_LIBRARY / cow)}
    assert main(["similar", owl, cow, "--part", "0.1", "0.6"]) == 2 and "one PATH" in capsys.readouterr().err
    assert main(["similar", amb, "--length", "-1", "--top", "5", "--json"]) == 0      # the long one is left out
    short = json.loads(capsys.readouterr().out)
    assert len(short) == 5 and all(h["duration"] < 1 and sf.info(h["path"]).duration < 1 for h in short)
    assert main(["search", str(query), "--name", "no such sound"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no sound" in captured.err and "'no such sound'" in captured.err


def test_categories_and_info(capsys):
    assert main(["categories"]) == 0
    lines = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert len(lines) >= 12 and int(lines["birds"]) > 10
    # where the words' sounds are: each category's count of the files whose path holds them
    paths = [p.relative_to(DEMO_LIBRARY).as_posix().lower() for p in DEMO_LIBRARY.rglob("*.ogg")]
    assert main(["categories", "--name", "-bird 02"]) == 0
    counted = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    want: dict[str, int] = {}
    for path in paths:
        if "02" in path and "bird" not in path:
            want[path.split("/")[0]] = want.get(path.split("/")[0], 0) + 1
    assert {c: int(n) for c, n in counted.items()} == want and "birds" not in counted
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "qvi/cnn-" in out and "items" in out and str(DEMO_LIBRARY) in out
    import av                                                    # which formats this install reads, and through what

    reads = next(x for x in out.splitlines() if x.startswith("reads "))
    assert "WAV," in reads and "M4A, MP4, QuickTime" in reads and reads.endswith(f"(FFmpeg, through PyAV {av.__version__})")
    # how many sounds each of the window's lengths keeps: the files' own lengths, counted again
    lengths = [sf.info(p).duration for p in DEMO_LIBRARY.rglob("*") if p.suffix in (".ogg", ".wav", ".flac")]
    counts = [sum(1 for d in lengths if p.holds(d)) for p in LENGTH_PRESETS]
    assert len(lengths) == 604 and sum(counts) == 604
    line = next(x for x in out.splitlines() if x.startswith("lengths "))
    assert line.split(None, 1)[1] == (f"median {np.median(lengths):.1f} s, {min(lengths):.2f} to {max(lengths):.1f} s; "
                                      + ", ".join(f"{p.describe()}: {n}" for p, n in zip(LENGTH_PRESETS, counts)))


def test_index_then_search_own_folder(tmp_path, data_dir):
    write(tmp_path / "lib/tones/a440.wav", tone(440))
    write(tmp_path / "lib/tones/a880.wav", tone(880))
    r = qvi("index", tmp_path / "lib", "--encoder", "2dft", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "indexed 2 sounds" in r.stdout
    index_dir = next((data_dir / "indexes").iterdir())             # default: the user's data dir
    r = qvi("search", tmp_path / "lib/tones/a880.wav", "--index", index_dir, "--json")
    assert json.loads(r.stdout)[0]["path"].endswith("a880.wav")


def test_a_folder_without_sounds_is_said_when_indexed_and_searched(tmp_path, data_dir):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "notes.txt").write_text("no sounds here")
    r = qvi("index", tmp_path / "lib", "--encoder", "2dft", "--index", tmp_path / "idx", "--quiet")
    assert r.returncode == 0 and "no sound files found" in r.stdout and ".wav" in r.stdout
    r = qvi("search", write(tmp_path / "q.wav", tone(440)), "--index", tmp_path / "idx")
    assert r.returncode == 2 and "has no sounds" in r.stderr and "qvi index" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_library_folder_that_is_gone_is_said_with_the_results(tmp_path, data_dir):
    write(tmp_path / "lib/tones/a440.wav", tone(440))
    write(tmp_path / "lib/tones/a880.wav", tone(880))
    assert qvi("index", tmp_path / "lib", "--encoder", "2dft", "--index", tmp_path / "idx", "--quiet").returncode == 0
    (tmp_path / "lib").rename(tmp_path / "moved")                   # renamed, or a disk not mounted
    r = qvi("search", write(tmp_path / "q.wav", tone(440)), "--index", tmp_path / "idx")
    assert r.returncode == 0 and "a440.wav" in r.stdout              # the names still help
    assert "no longer exists" in r.stderr and str(tmp_path / "lib") in r.stderr and "qvi index" in r.stderr


def test_several_queries_get_a_list_each_and_a_bad_one_loses_nothing(tmp_path, capsys):
    """A folder of imitations searched at once (qvi search takes/*.wav): a list per query; a file
    that is not audio gets its one line and the others are still searched; exit 2 says so."""
    birds = sorted((DEMO_LIBRARY / "birds").glob("*.ogg"))[:2]
    bad = tmp_path / "take3.wav"
    bad.write_text("not a sound\n")
    assert main(["search", str(birds[0]), str(bad), str(birds[1]), "--top", "3"]) == 2
    out, err = capsys.readouterr()
    blocks = out.strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == [f"== {birds[0]}", f"== {birds[1]}"]
    assert all(len(b.splitlines()) == 4 and str(q) in b.splitlines()[1] for b, q in zip(blocks, birds))
    assert len([line for line in err.splitlines() if line.startswith("qvi: ")]) == 1 and str(bad) in err
    assert main(["search", str(birds[0]), str(bad), "--top", "2", "--json"]) == 2
    lists = json.loads(capsys.readouterr().out)
    assert [x["query"] for x in lists] == [str(birds[0]), str(bad)]
    assert lists[0]["results"][0]["path"] == str(birds[0]) and len(lists[0]["results"]) == 2
    assert "not a readable audio file" in lists[1]["error"] and "results" not in lists[1]
    assert main(["search", str(birds[0]), "--top", "1", "--json"]) == 0         # one query: the list itself, as before
    assert json.loads(capsys.readouterr().out)[0]["rank"] == 1
    assert main(["search", str(birds[0]), str(birds[1]), "--like", str(birds[0])]) == 2
    assert "one QUERY" in capsys.readouterr().err


def test_a_folder_of_takes_is_searched_file_by_file(tmp_path, capsys):
    """qvi search takes/: every sound file in the folder and its subfolders (sorted; hidden ones
    and other files left out) is a query of its own, as if each were named."""
    birds = sorted((DEMO_LIBRARY / "birds").glob("*.ogg"))[:3]
    takes = tmp_path / "takes"
    (takes / "monday").mkdir(parents=True)
    (takes / ".trash").mkdir()
    copies = [takes / "b.ogg", takes / "monday" / "a.ogg"]
    for src, dst in zip(birds, copies):
        dst.write_bytes(src.read_bytes())
    (takes / ".trash" / "old.ogg").write_bytes(birds[2].read_bytes())
    (takes / "notes.txt").write_text("take 2 was best\n")
    assert main(["search", str(takes), "--top", "2", "--json"]) == 0
    lists = json.loads(capsys.readouterr().out)
    assert [x["query"] for x in lists] == [str(takes / "b.ogg"), str(takes / "monday" / "a.ogg")]
    assert [x["results"][0]["path"] for x in lists] == [str(birds[0]), str(birds[1])]  # each finds its original
    assert main(["search", str(takes), str(birds[2]), "--top", "1"]) == 0           # a folder among files
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("== ")] == [
        f"== {takes / 'b.ogg'}", f"== {takes / 'monday' / 'a.ogg'}", f"== {birds[2]}"]
    assert main(["search", str(takes), "--like", str(birds[0])]) == 2              # a folder is several queries
    assert "one QUERY" in capsys.readouterr().err


def test_takes_recorded_on_a_phone_are_searched_and_a_bad_one_is_said_among_the_others(tmp_path, capsys):
    """A folder of takes holding a phone's voice memos: the memos were passed over without a word
    (0.10), then said not to be read (0.11). A memo of a demo sound finds it, as its OGG does; a
    memo that is not one gets its line, the rest go on."""
    from qvi_app.audio import load_audio

    takes = tmp_path / "takes"
    takes.mkdir()
    owl = DEMO_LIBRARY / "birds" / "owl_01.ogg"
    (takes / "a.ogg").write_bytes(owl.read_bytes())
    write_encoded(takes / "b memo.m4a", *load_audio(owl))
    (takes / "c memo.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(400))
    assert main(["search", str(takes), "--top", "1"]) == 2                     # one take failed, the rest shown
    out, err = capsys.readouterr()
    lists = out.split("== ")[1:]
    assert [block.splitlines()[0] for block in lists] == [str(takes / "a.ogg"), str(takes / "b memo.m4a")]
    assert all("birds/owl_01.ogg" in block.splitlines()[1] for block in lists)        # each finds the owl first
    assert f"qvi: {takes / 'c memo.m4a'}: not a readable M4A file (invalid data found when processing input)" \
        in err.splitlines()


def test_info_verify_says_what_changed_in_the_library_since_indexing(tmp_path, capsys):
    lib, ix = tmp_path / "lib", tmp_path / "ix"
    for name, freq in (("a/one.wav", 300), ("a/two.wav", 500), ("b/three.wav", 900)):
        write(lib / name, tone(freq))
    assert main(["index", str(lib), "--index", str(ix), "--encoder", "2dft", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["info", "--index", str(ix), "--verify"]) == 0
    assert "changes     none since indexing" in capsys.readouterr().out
    write(lib / "b/four.wav", tone(1300))
    (lib / "a/two.wav").unlink()
    assert main(["info", "--index", str(ix), "--verify"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("changes"))
    assert "1 new, 1 removed since indexing" in line and f"qvi index {lib.resolve()} --index" in line


def test_a_clipped_query_file_gets_a_warning_and_its_results(tmp_path):
    import numpy as np
    import soundfile as sf

    t = tone(330, 1.5)
    clean = write(tmp_path / "clean.wav", t / np.abs(t).max())
    shouted = tmp_path / "shouted.wav"
    sf.write(shouted, np.clip(6 * t / np.abs(t).max(), -1, 1).astype(np.float32), SR, subtype="FLOAT")
    r = qvi("search", str(shouted), "--top", "2")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2
    assert "warning: the query looks clipped" in r.stderr and "Traceback" not in r.stderr
    assert "clipped" not in qvi("search", str(clean), "--top", "2").stderr


def test_liked_lists_the_thumbs_up_and_copies_them(tmp_path, data_dir, capsys):
    from qvi_app.feedback import FeedbackStore
    from qvi_app.settings import feedback_db_path

    assert main(["liked"]) == 2 and "no ratings yet" in capsys.readouterr().err
    birds = sorted((DEMO_LIBRARY / "birds").glob("*.ogg"))[:3]
    store = FeedbackStore(feedback_db_path())
    store.rate(wave=tone(440), sr=SR, result_path=str(birds[1]), rank=1, score=0.5, rating=-1,
               category_filter=None, model_id="m")
    # ratings, but no thumbs up: said, not an empty answer
    assert main(["liked"]) == 0
    said = capsys.readouterr()
    assert said.out == "" and said.err == "qvi: no sound has a thumbs up yet (1 rating, all thumbs down)\n"
    assert main(["liked", "--copy-to", str(tmp_path / "none")]) == 0
    assert capsys.readouterr().err == "qvi: no sound has a thumbs up yet (1 rating, all thumbs down): nothing copied\n"
    assert not (tmp_path / "none").exists()
    for path, rating in zip(birds[::2], (1, 1)):
        store.rate(wave=tone(440), sr=SR, result_path=str(path), rank=1, score=0.5, rating=rating,
                   category_filter=None, model_id="m")
    store.close()
    assert main(["liked"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(birds[0]), str(birds[2])]
    assert main(["liked", "--copy-to", str(tmp_path / "pull")]) == 0
    assert "copied 2 liked sounds" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "pull").iterdir()) == sorted(["ATTRIBUTION.csv", birds[0].name,
                                                                            birds[2].name])


def test_info_says_an_index_from_an_older_qvi_can_be_made_again(tmp_path, capsys):
    import sqlite3

    from qvi_app.index.store import current_generation

    lib, ix = tmp_path / "lib", tmp_path / "ix"
    write(lib / "a" / "one.wav", tone(300))
    assert main(["index", str(lib), "--index", str(ix), "--encoder", "2dft", "--quiet"]) == 0
    assert main(["info", "--index", str(ix)]) == 0
    out, err = capsys.readouterr()
    assert "cut         each sound from 15 dB" in out and "older qvi" not in err
    con = sqlite3.connect(current_generation(ix) / "meta.sqlite")                 # as 0.11 wrote it
    con.execute("DELETE FROM meta WHERE key = 'cut_above_floor_db'")
    con.commit()
    con.close()
    assert main(["info", "--index", str(ix)]) == 0
    out, err = capsys.readouterr()
    assert "from 10 dB" in out and "older qvi" in err and f"qvi index {lib.resolve()} --index" in err


@pytest.mark.parametrize("args,words", [
    (["search", "/nonexistent/q.wav"], "no such file"),
    (["search", "{empty}"], "empty file"),
    (["search", "{good}", "--category", "nope"], "unknown category"),
    (["search", "{good}", "--index", "{tmp}"], "no index at"),
    (["index", "/nonexistent/folder"], "library folder not found"),
    (["index", "{good}"], "is a file, not a folder"),
    (["search", "{tmp}/none"], "no sound files found in"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, words):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "notes.txt").write_text("takes go here\n")
    good = write(tmp_path / "good.wav", tone(440))
    args = [a.format(empty=tmp_path / "empty.wav", good=good, tmp=tmp_path) for a in args]
    r = qvi(*args)
    assert r.returncode == 2 and words in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_output_cut_short_by_its_reader_ends_quietly():
    """`qvi search takes/ | head`: the reader goes away. qvi said "qvi: : Broken pipe" and exited
    2; it now ends as a killed writer does (128 + SIGPIPE), without a word."""
    query = DEMO_LIBRARY / "birds" / sorted(p.name for p in (DEMO_LIBRARY / "birds").iterdir())[0]
    proc = subprocess.Popen([sys.executable, "-m", "qvi_app", "search", *[str(query)] * 8, "--top", "604"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)    # 8 lists: more than a pipe holds
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(300) == 141 and first.strip(), (first, err)
    assert b"Broken pipe" not in err and b"Traceback" not in err, err        # (its timing lines stay)


def test_names_the_terminal_cannot_show_are_escaped_not_a_traceback(tmp_path, data_dir):
    """A terminal in a legacy encoding (here ASCII) and a library with non-ASCII names: qvi
    stopped with a UnicodeEncodeError traceback."""
    import os

    write(tmp_path / "lib/日本/grüße.wav", tone(440))
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    run = [sys.executable, "-m", "qvi_app"]
    r = subprocess.run([*run, "index", tmp_path / "lib", "--encoder", "2dft", "--index", tmp_path / "ix"], env=env,
                       capture_output=True, timeout=300)
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr[-600:]
    r = subprocess.run([*run, "search", tmp_path / "lib/日本/grüße.wav", "--index", tmp_path / "ix"], env=env,
                       capture_output=True, timeout=300)
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr[-600:]
    assert b"\\u65e5\\u672c/gr\\xfc\\xdfe.wav" in r.stdout, r.stdout


def test_usage_errors_exit_2_with_one_line():
    """A mistyped option is one line that names it and where the help is, as every other bad
    input is (argparse printed its whole usage block first: five lines for `--top 0`)."""
    for args, says in [(("search",), "qvi: give a sound file"),
                       (("index", "x", "--encoder", "nope"), "qvi index: argument --encoder: invalid choice: 'nope'"),
                       (("search", "q.wav", "--top", "0"), "qvi search: argument --top: must be at least 1"),
                       (("similar", "a.wav", "--part", "5-1"), "qvi similar: argument --part: expected 2 arguments"),
                       (("nope",), "qvi: argument command: invalid choice: 'nope'")]:
        r = qvi(*args)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, (args, r.stderr)
        assert r.stderr.startswith(says), (args, r.stderr)
    r = qvi("list", "--top", "-3")
    assert r.stderr.strip().endswith("(qvi list --help)"), r.stderr


def test_main_without_a_display_says_how_to_use_the_terminal():
    import os
    import subprocess
    import sys

    from qvi_app.paths import REPO_ROOT

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    p = subprocess.run([sys.executable, str(REPO_ROOT / "main.py")], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2
    assert "needs a graphical display" in p.stderr and "qvi search" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow
def test_search_records_from_the_microphone_when_told(desktop, tmp_path, data_dir):
    """Without a screen the window cannot record; `qvi search --record` imitates from the terminal:
    it records until the sound is over (or Ctrl+C), keeps the take if asked, and ranks."""
    import os
    import signal
    import time

    import soundfile as sf

    from qvi_app.audio import load_audio

    wave, sr = load_audio(DEMO_LIBRARY / "birds/peacock_call_01.ogg")
    imitation = write(tmp_path / "peacock.wav", wave, sr)
    take = tmp_path / "takes" / "take.wav"
    env = {**os.environ, **desktop.env}
    cmd = [sys.executable, "-m", "qvi_app", "search", "--record", "--keep", str(take), "--top", "3"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    line = proc.stderr.readline()                                          # says it is listening
    assert "recording" in line and time.monotonic() < deadline, line
    desktop.play_into_microphone(imitation).wait(20)
    out, err = proc.communicate(timeout=40)                               # ends by itself after the sound
    assert proc.returncode == 0, err
    assert out.splitlines()[0].split()[-1].endswith("peacock_call_01.ogg") and "recorded" in err
    assert 1.5 < sf.info(take).duration < 10.0

    # A take that cannot be kept is said, and still searched.
    proc = subprocess.Popen(cmd[:-4] + ["--keep", str(tmp_path), "--top", "3"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert "recording" in proc.stderr.readline()
    desktop.play_into_microphone(imitation).wait(20)
    out, err = proc.communicate(timeout=40)
    assert proc.returncode == 0 and "not kept" in err and out.splitlines()[0].split()[-1].endswith("peacock_call_01.ogg")

    # Ctrl+C while recording ends the recording, not the search; nothing heard is one clear line.
    proc = subprocess.Popen(cmd[:4] + ["--record"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert "recording" in proc.stderr.readline()
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and out == "" and err.strip().splitlines()[-1].startswith("qvi: ")
    assert "Traceback" not in err and "silent" in err.splitlines()[-1]


@pytest.mark.slow
def test_recording_in_a_terminal_shows_a_live_level_and_countdown(desktop, tmp_path, data_dir):
    """In a terminal (not a pipe) `--record` redraws one line: the level as the window's meter
    shows it, the time, and once the sound is over, when it will stop."""
    import os
    import pty
    import select
    import time

    from qvi_app.audio import load_audio

    wave, sr = load_audio(DEMO_LIBRARY / "birds/peacock_call_01.ogg")
    imitation = write(tmp_path / "peacock.wav", wave, sr)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "qvi_app", "search", "--record", "--top", "1"], stdout=subprocess.PIPE,
                            stderr=follower, env={**os.environ, **desktop.env}, text=True)
    os.close(follower)
    seen, player, deadline = b"", None, time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:                                                # the process closed its end
                break
            if not chunk:
                break
            seen += chunk
        if player is None and b"recording at" in seen:
            player = desktop.play_into_microphone(imitation)
    out, _ = proc.communicate(timeout=30)
    os.close(leader)
    text = seen.decode("utf-8", "replace")
    assert proc.returncode == 0 and out.split()[-1].endswith("peacock_call_01.ogg")
    lines = text.split("\r")
    assert any("stops in" in line for line in lines) and any("#####" in line for line in lines)
    assert "recorded" in text


def test_search_needs_a_query_or_the_microphone(capsys):
    assert main(["search"]) == 2
    assert "a sound file" in capsys.readouterr().err
    assert main(["search", "--record", "x.wav"]) == 2
    assert "--record" in capsys.readouterr().err


def test_libraries_are_listed_and_one_can_be_forgotten_without_touching_its_sounds(tmp_path, data_dir):
    """An index of a folder since deleted stayed in File ▸ Libraries, and on disk, for good:
    `qvi libraries` lists them with their size, --forget removes one index (never the sounds,
    never the demo library's, never a folder that is not one of qvi's indexes)."""
    from qvi_app import app
    from qvi_app.errors import QviError
    from qvi_app.paths import DEMO_INDEX

    lib = tmp_path / "Foley Library"
    for i in range(3):
        write(lib / "doors" / f"door{i}.wav", tone(300 + 100 * i, 0.6))
    app.build_index(lib, encoder_name="2dft", show_progress=False)
    index_dir = app.default_index_dir(lib, "2dft")
    assert index_dir.parent == data_dir / "indexes"
    r = qvi("libraries")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(str(lib.resolve()) in line and "3 sounds" in line and "kB" in line for line in lines), r.stdout
    assert any("demo library" in line and "604 sounds" in line for line in lines), r.stdout

    for target, why in ((DEMO_INDEX, "demo"), (DEMO_LIBRARY, "demo"), (tmp_path, "no index of")):
        r = qvi("libraries", "--forget", target)
        assert r.returncode == 2 and why in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert DEMO_INDEX.is_dir()
    outside = tmp_path / "outside-index"                                   # a link in qvi's indexes to elsewhere
    shutil.copytree(index_dir, outside)
    (data_dir / "indexes" / "linked").symlink_to(outside)
    with pytest.raises(QviError, match="leads out of"):
        app.forget_library(data_dir / "indexes" / "linked")
    assert (outside / "CURRENT").exists()
    (data_dir / "indexes" / "linked").unlink()
    r = qvi("libraries", "--forget", lib)                                  # named by its folder of sounds
    assert r.returncode == 0 and "forgot" in r.stdout and "kB" in r.stdout, r.stdout + r.stderr
    assert not index_dir.exists() and len(list(lib.rglob("*.wav"))) == 3   # the sounds stay
    assert [k.library for k in app.known_libraries()] == [app.peek(DEMO_INDEX)[0]]
    r = qvi("libraries", "--forget", lib)
    assert r.returncode == 2 and "no index" in r.stderr, r.stderr


def test_qvi_list_prints_the_sounds_the_filters_keep_without_a_query(capsys, monkeypatch):
    """Browsing without an imitation: every sound a category, words or a length keep, by path,
    as search prints them without a score; JSON too; printed in chunks (here 2 at a time, so the
    chunks' seams are crossed) with ranks running on; nothing kept is said in a line."""
    import qvi_app.cli as cli

    monkeypatch.setattr(cli, "_LIST_CHUNK", 2)
    goats = sorted(str(p) for p in (DEMO_LIBRARY / "farm_animals").glob("*goat*.ogg"))
    assert main(["list", "--name", "GOAT"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in out] == goats and [line.split()[0] for line in out] == ["1", "2", "3", "4", "5"]
    assert all("farm_animals" in line for line in out)
    assert main(["list", "--name", "goat", "--top", "3", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [h["path"] for h in listed] == goats[:3] and [h["rank"] for h in listed] == [1, 2, 3]
    assert all(h["score"] is None for h in listed)
    assert main(["list", "--category", "birds", "--length", "-0.5", "--json"]) == 0
    short = json.loads(capsys.readouterr().out)
    assert short and all(h["duration"] < 0.5 and h["category"] == "birds" for h in short)
    assert main(["list", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(list(DEMO_LIBRARY.rglob("*.ogg")))
    assert main(["list", "--name", "zzz"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == "qvi: no sound has 'zzz' in its name, folder or description"
    assert main(["list", "--name", "zzz", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []
    assert main(["list", "--category", "nope"]) == 2 and "unknown category 'nope'" in capsys.readouterr().err
    assert main(["list", "--name", "-mountain", "--json"]) == 0                # a first word to leave out
    listed = [h["path"] for h in json.loads(capsys.readouterr().out)]
    assert len(listed) == len(list(DEMO_LIBRARY.rglob("*.ogg"))) - 1 and not any("mountain" in p for p in listed)
    assert main(["list", "--name", "-mountain goat"]) == 0 and len(capsys.readouterr().out.splitlines()) == 4
