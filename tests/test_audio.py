import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from qvi_app.audio import load_audio, resample, to_mono, trim_silence
from qvi_app.audio.transform import add_noise, pitch_shift, time_stretch
from qvi_app.errors import AudioError
from tests.conftest import SR, tone, write, write_encoded


# Every format the bundled libsndfile reads, and the rate each is written at (Opus has its own).
# Opus, Apple's CAF, Wave64, RF64 (WAV past 4 GB, from field recorders) and AU were read, but a
# library of them was "no sound files found".
FORMATS = [(".wav", {}, SR), (".flac", {}, SR), (".ogg", {"format": "OGG", "subtype": "VORBIS"}, SR), (".aiff", {}, SR),
           (".mp3", {"format": "MP3"}, SR), (".opus", {"format": "OGG", "subtype": "OPUS"}, 48000),
           (".caf", {"format": "CAF"}, SR), (".w64", {"format": "W64"}, SR), (".rf64", {"format": "RF64"}, SR),
           (".au", {"format": "AU"}, SR)]


@pytest.mark.parametrize("ext,kw,rate", FORMATS)
def test_reads_each_format_as_mono_float32(tmp_path, ext, kw, rate):
    stereo = np.stack([tone(440, sr=rate), tone(440, sr=rate) * 0.5], axis=1)
    path = write(tmp_path / f"a{ext}", stereo, rate, **kw)
    wave, sr = load_audio(path)
    assert sr == rate and wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - rate) < 0.1 * rate  # mp3 adds encoder padding
    assert 0.3 < np.max(np.abs(wave)) < 0.45  # mean of 0.5 and 0.25 amplitudes


def test_a_library_finds_every_format_it_can_read(tmp_path):
    from qvi_app.index import scan_library

    names = [f"{ext[1:]}/a{ext.upper() if ext == '.caf' else ext}" for ext, _, _ in FORMATS]   # any case
    for name, (_, kw, rate) in zip(names, FORMATS):
        write(tmp_path / "lib" / name, tone(440, sr=rate), rate, **kw)
    (tmp_path / "lib" / "notes.txt").write_text("not a sound")
    assert sorted(f.relpath for f in scan_library(tmp_path / "lib")) == sorted(names)


def test_resampling_keeps_frequency(tmp_path):
    wave, sr = load_audio(write(tmp_path / "t.wav", tone(1000)), target_sr=44100)
    assert sr == 44100 and abs(len(wave) - 44100) <= 2
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * sr / len(wave) - 1000) < 2


def test_to_mono_and_resample_identity():
    assert to_mono(np.ones((10, 3), np.float32)).shape == (10,)
    w = tone(300)
    assert np.array_equal(resample(w, SR, SR), w)


def _bad_files(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio\n" * 20)
    good = write(tmp_path / "good.wav", tone(440))
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(good.read_bytes()[:30] + os.urandom(2000))
    write(tmp_path / "silent.wav", np.zeros(SR, np.float32))
    write(tmp_path / "one.wav", np.array([0.5], np.float32))
    locked = write(tmp_path / "locked.wav", tone(440))
    locked.chmod(0)
    (tmp_path / "folder.wav").mkdir()
    return {"empty.wav": "empty", "text.wav": "not a readable audio file", "corrupt.wav": "",
            "folder.wav": "a folder, not an audio file",
            "silent.wav": "silent", "one.wav": "too short", "locked.wav": "permission denied",
            "missing.wav": "no such file"}


def test_bad_files_raise_typed_errors_with_path(tmp_path):
    expected = _bad_files(tmp_path)
    if os.geteuid() == 0:
        expected.pop("locked.wav")  # root reads files whatever their permissions
    for name, reason in expected.items():
        with pytest.raises(AudioError) as err:
            load_audio(tmp_path / name)
        assert name in str(err.value) and reason in err.value.reason


def test_an_unreadable_file_is_said_without_libsndfile_internals(tmp_path):
    _bad_files(tmp_path)
    with pytest.raises(AudioError) as err:
        load_audio(tmp_path / "text.wav")
    # libsndfile's own text names a Python object: "Error opening <_io.BufferedReader name=...>: ..."
    assert "BufferedReader" not in str(err.value) and "Error opening" not in str(err.value)
    assert err.value.reason == "not a readable audio file (format not recognised)"


def test_a_phone_voice_memo_and_a_video_sound_are_read(tmp_path):
    """A phone's voice memo (M4A) was "format not recognised", then (0.11) "not a format qvi reads:
    convert it with ffmpeg". Decoded through FFmpeg (PyAV) now, as a WAV is: its sound, its length,
    its channels for listening, its facts and its tags."""
    from qvi_app.audio.load import file_facts, unread_format
    from qvi_app.audio.tags import file_tags

    memo = write_encoded(tmp_path / "Voice Memo 12.M4A", tone(440, 2.0), tags={"title": "door slam", "comment": "wood"})
    wave, sr = load_audio(memo)
    assert sr == SR and wave.ndim == 1 and abs(len(wave) / SR - 2.0) < 0.15        # an encoder's priming at most
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * SR / len(wave) - 440) < 5                    # the tone, not noise
    assert file_facts(memo) == "22.05 kHz · mono · AAC (M4A)" and file_tags(memo).description == "door slam · wood"
    clip = write_encoded(tmp_path / "clip.mov", np.stack([tone(440), tone(660, amp=0.2)], axis=1), container="mov")
    both, _ = load_audio(clip, stereo=True)
    assert both.shape[1] == 2 and np.std(both[:, 0]) > 2 * np.std(both[:, 1])    # each channel its own
    assert file_facts(clip) == "22.05 kHz · stereo · AAC (QuickTime)" and unread_format(memo) is None
    for name, container, codec, said in (("old.wma", "asf", "wmav2", "WMA"), ("take.wv", "wv", "wavpack", "WavPack"),
                                         ("take.mkv", "matroska", "pcm_s16le", "16-bit PCM (Matroska)")):
        other = write_encoded(tmp_path / name, tone(440, 1.0, sr=44100), 44100, container, codec, bit_rate=128_000)
        wave, _ = load_audio(other)
        assert abs(len(wave) / 44100 - 1.0) < 0.05 and file_facts(other) == f"44.1 kHz · mono · {said}"


def test_a_damaged_or_bogus_memo_is_one_clear_line_or_what_decodes(tmp_path):
    """Frames overwritten (a bad copy): what still decodes is the sound, as for a damaged MP3. Not
    an MP4 at all under its name, or a playlist renamed .m4a (FFmpeg is never left to guess the
    format: a playlist would open other files): one line naming the format."""
    memo = write_encoded(tmp_path / "memo.m4a", tone(440, 2.0))
    whole, _ = load_audio(memo)
    data = bytearray(memo.read_bytes())
    sound, header = data.index(b"mdat"), data.index(b"moov")              # the coded sound, then the index
    assert sound < header
    for i in range((sound + header) // 2, header - 8, 50):                # its second half overwritten
        data[i] ^= 0xFF
    (tmp_path / "damaged.m4a").write_bytes(bytes(data))
    wave, _ = load_audio(tmp_path / "damaged.m4a")
    assert 0.2 * len(whole) < len(wave) < len(whole)
    (tmp_path / "noise.M4A").write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00" + os.urandom(4000))
    (tmp_path / "list.m4a").write_bytes(b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n")
    for name in ("noise.M4A", "list.m4a"):
        with pytest.raises(AudioError) as err:
            load_audio(tmp_path / name)
        assert err.value.reason == "not a readable M4A file (invalid data found when processing input)"
    import av

    with av.open(str(tmp_path / "screen.mp4"), "w", format="mp4") as out:      # a video without sound
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for _ in range(5):
            out.mux(video.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")))
        out.mux(video.encode(None))
    with pytest.raises(AudioError, match="this MP4 file has no sound track"):
        load_audio(tmp_path / "screen.mp4")


def test_a_memo_cut_short_anywhere_or_spliced_is_a_clear_line_or_its_sound(tmp_path):
    """Found by a mutation run of 3,200 files (M4A, MOV, AC-3, MKV, AAC): a QuickTime file cut
    inside its index left a sound track without a decoder (AttributeError), and an AC-3 stream
    whose channels change partway (two files joined) could not be saved in part (ValueError).
    Every cut of a memo's index, and both joins, give the sound or one line."""
    from qvi_app.audio.load import file_facts
    from qvi_app.audio.region import save_region
    from qvi_app.audio.tags import file_tags

    clip = write_encoded(tmp_path / "clip.mov", np.stack([tone(300), tone(500)], axis=1), container="mov")
    data = clip.read_bytes()
    for end in range(data.index(b"moov") - 4, len(data), 7):             # every cut through its index
        cut = tmp_path / "cut.mov"
        cut.write_bytes(data[:end])
        for read in (load_audio, lambda p: load_audio(p, stereo=True), lambda p: save_region(p, 0.1, 0.5, tmp_path / "p.wav")):
            try:
                read(cut)
            except AudioError:
                pass
        assert isinstance(file_facts(cut), str) and file_tags(cut).description == ""
    mono = write_encoded(tmp_path / "m.ac3", tone(440, 1.0, sr=44100), 44100, container="ac3", codec="ac3")
    two = write_encoded(tmp_path / "s.ac3", np.stack([tone(440, 1.0, sr=44100)] * 2, axis=1), 44100, container="ac3",
                        codec="ac3")
    for first, then in ((mono, two), (two, mono)):
        joined = tmp_path / "joined.ac3"
        joined.write_bytes(first.read_bytes() + then.read_bytes())
        assert abs(save_region(joined, 0.5, 1.5, tmp_path / "part.wav") - 1.0) < 0.01
        wave, _ = load_audio(joined, stereo=True)
        assert np.isfinite(wave).all() and len(wave) > 1.9 * 44100


def test_a_memo_is_held_to_the_limits_of_every_format(tmp_path):
    """Length refused from its header; decoding stops at the size limit whatever the header says."""
    from qvi_app.audio import container
    from qvi_app.audio.load import check_header

    memo = write_encoded(tmp_path / "memo.m4a", tone(440, 3.0))
    with pytest.raises(AudioError, match=r"too long \(3 s > 2 s\)"):
        load_audio(memo, max_duration_s=2.0)
    with pytest.raises(AudioError, match="too long"):                 # the header passed, the samples did not
        container.read(memo, "mono", 600.0, 4 * SR, lambda *header: check_header(memo, *header, 600.0))


def test_without_pyav_those_formats_are_named_with_what_to_do(tmp_path):
    """PyAV missing (a stripped install): the memo is refused by name, with what to do, and a
    library's memos are listed as unread, not as broken."""
    memo = write_encoded(tmp_path / "memo.m4a", tone(440))
    code = (f"import sys; sys.modules['av'] = None\n"
            f"from qvi_app.audio import load_audio, AUDIO_EXTENSIONS\n"
            f"from qvi_app.errors import AudioError\n"
            f"assert '.m4a' not in AUDIO_EXTENSIONS and '.wav' in AUDIO_EXTENSIONS\n"
            f"try:\n    load_audio({str(memo)!r})\nexcept AudioError as e:\n    print(e.reason)\n"
            f"from qvi_app.audio.load import formats_read\nprint(formats_read())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    refused, reads = out.strip().splitlines()
    assert refused == "M4A is not a format qvi reads without PyAV: pip install av, or save it as WAV or FLAC"
    assert reads.startswith("WAV, BWF") and reads.endswith("; not M4A, MP4, QuickTime, 3GP, AAC, WebM, Matroska, "
                                                           "WMA, AMR, WavPack, Monkey's Audio, AC-3 (pip install av reads them)")


def test_many_channels_high_rate_file_loads(tmp_path):
    data = np.tile(tone(440, 0.5, 96000)[:, None], (1, 8))
    wave, sr = load_audio(write(tmp_path / "8ch.wav", data, 96000), target_sr=22050)
    assert sr == 22050 and wave.ndim == 1 and abs(len(wave) - 11025) <= 2


def test_trim_silence_cuts_both_ends():
    w = np.concatenate([np.zeros(SR), tone(500, 0.5), np.zeros(SR)])
    out = trim_silence(w, SR, pad_s=0.0)
    assert abs(len(out) - SR // 2) < 0.05 * SR


def test_transforms_shape_and_effect():
    rng = np.random.default_rng(0)
    w = tone(440, 1.0)
    noisy = add_noise(w, 10.0, rng)
    snr = 10 * np.log10(np.mean(w ** 2) / np.mean((noisy - w) ** 2))
    assert abs(snr - 10.0) < 0.5
    up = pitch_shift(w, SR, 12)
    assert len(up) == len(w)
    spectrum = np.abs(np.fft.rfft(up[2048:-2048]))
    assert abs(np.argmax(spectrum) * SR / len(up[2048:-2048]) - 880) < 10
    assert abs(len(time_stretch(w, 1.1)) - len(w) / 1.1) <= 1


def test_isolate_sound_cuts_away_clicks_breaths_and_room_noise():
    from qvi_app.audio import isolate_sound

    sr = 16000
    rng = np.random.default_rng(0)

    def at(seconds):
        return int(seconds * sr)

    rec = 0.003 * rng.standard_normal(at(3.0)).astype(np.float32)               # room noise, about -50 dB
    rec[at(0.20):at(0.21)] += 0.5 * rng.standard_normal(at(0.01))               # a mouse click
    t = np.arange(at(1.2)) / sr
    syllables = 0.5 * np.sin(2 * np.pi * 220 * t) * ((t % 0.3) < 0.2)           # the imitation: 4 syllables
    syllables[at(0.6):at(0.8)] *= 0.05                                           # one 26 dB quieter: kept
    rec[at(0.8):at(2.0)] += syllables
    rec[at(2.6):at(2.68)] += 0.2 * rng.standard_normal(at(0.08))                # a short breath after it
    out = isolate_sound(rec, sr)
    start = np.flatnonzero(np.isin(rec, out[:50]))[0] / sr if len(out) else None
    assert abs(len(out) / sr - (1.1 + 0.1)) < 0.08, len(out) / sr            # 0.8 .. 1.9 s, plus 50 ms each side
    assert abs(start - 0.75) < 0.03
    one = 0.4 * np.sin(2 * np.pi * 300 * np.arange(sr) / sr).astype(np.float32)
    assert len(isolate_sound(one, sr)) == len(one)                          # nothing around it: unchanged


def test_a_query_padded_with_digital_silence_is_cut_as_without_it():
    """A query file with digital silence around the imitation (exported with a fixed length, or
    silence inserted in an editor): the zeros must not drag the noise-floor estimate down, or the
    room noise is kept (30 real imitations padded so: embedding cosine 0.954 on average, 0.089 at
    worst). A recording without such silence is cut exactly as before, and so is every library
    file (the index was made with that cut)."""
    from qvi_app.app import prepare_query
    from qvi_app.audio import isolate_sound

    sr = 16000
    rng = np.random.default_rng(1)
    rec = 0.006 * rng.standard_normal(2 * sr).astype(np.float32)               # room noise, 35 dB under the voice
    rec[sr // 2: sr // 2 + sr] += 0.5 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr).astype(np.float32)
    padded = np.concatenate([np.zeros(sr, np.float32), rec, np.zeros(sr // 2, np.float32)])
    plain = prepare_query(rec, sr)
    assert np.array_equal(plain, isolate_sound(rec, sr))                      # no digital silence: as before
    assert abs(len(plain) / sr - 1.1) < 0.05                                    # the tone, 50 ms each side
    cut = prepare_query(padded, sr)
    assert abs(len(cut) - len(plain)) <= 0.02 * sr and np.allclose(cut[: len(plain) // 2], plain[: len(plain) // 2])
    assert len(isolate_sound(padded, sr)) > len(cut) + 0.8 * sr                 # the library's cut keeps the noise


def test_clipping_is_found_by_its_flat_tops():
    """A recording driven past full scale has runs of samples stuck at its peak; a loud clean one
    (peak-normalised: its peak is one sample here and there) has none. On the real-dev imitations
    and the demo library: 0 of 720 files flagged; the imitations driven 6 dB past full scale:
    96 of 116."""
    from qvi_app.audio import clipped_share

    t = np.arange(SR) / SR
    clean = (0.99 * np.sin(2 * np.pi * 220 * t) + 0.01 * np.sin(2 * np.pi * 1234 * t)).astype(np.float32)
    assert clipped_share(clean) == 0.0 and clipped_share(np.zeros(100, np.float32)) == 0.0
    driven = np.clip(4 * clean, -1, 1)
    assert clipped_share(driven) > 0.5
    once = clean.copy()
    once[100:103] = 1.0                                                     # one short flat top: a blip, not clipping
    assert clipped_share(once) < 0.001


def test_results_are_auditioned_at_one_loudness():
    from qvi_app.audio.level import AUDITION_DB, active_level_db, audition_gain

    def level_after(wave):
        return active_level_db(wave * audition_gain(wave, SR), SR)

    quiet, loud = tone(440, amp=0.02), tone(440, amp=0.5)                  # -37 and -9 dBFS RMS
    assert abs(active_level_db(quiet, SR) - (-37.0)) < 0.1
    assert abs(level_after(quiet) - AUDITION_DB) < 0.1 and abs(level_after(loud) - AUDITION_DB) < 0.1
    half_silent = np.concatenate([np.zeros(SR, np.float32), tone(440, amp=0.02)])
    assert abs(active_level_db(half_silent, SR) - active_level_db(quiet, SR)) < 0.1   # silence does not count
    clicked = tone(440, amp=0.01)
    clicked[100] = 0.9                                                     # one spike near full scale
    assert np.max(np.abs(clicked * audition_gain(clicked, SR))) <= 0.99   # never clipped
    hiss = (np.random.default_rng(0).standard_normal(SR) * 1e-5).astype(np.float32)   # -100 dBFS
    assert audition_gain(hiss, SR) == pytest.approx(10 ** 1.5)             # raised 30 dB at most
    assert audition_gain(np.zeros(SR, np.float32), SR) == 1.0 and audition_gain(np.zeros(0, np.float32), SR) == 1.0
    long = np.tile(tone(440, amp=0.05), 600)                               # 600 s: measured on every n-th frame
    assert abs(active_level_db(long, SR) - active_level_db(tone(440, amp=0.05), SR)) < 0.1


def _stream(detector, wave, block):
    """Feed ``wave`` in blocks of ``block`` samples; the time (s) at which the detector fired, or None."""
    for start in range(0, len(wave), block):
        if detector.feed(wave[start:start + block]):
            return (start + block) / SR
    return None


def _room(seconds, db=-60.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(seconds * SR)) * 10 ** (db / 20)).astype(np.float32)


@pytest.mark.parametrize("block", [256, 1024, 4410])
def test_recording_ends_two_seconds_after_the_sound_does(block):
    from qvi_app.audio.endpoint import QUIET_S, EndOfSound

    # Room noise, a 1 s imitation 40 dB over it, then the room again: over QUIET_S after the sound.
    wave = np.concatenate([_room(0.5), 0.3 * tone(300, 1.0), _room(6, seed=1)])
    detector = EndOfSound(SR)
    at = _stream(detector, wave, block)
    assert at is not None and 1.5 + QUIET_S <= at <= 1.5 + QUIET_S + 0.05 + block / SR
    assert QUIET_S <= detector.quiet_for < QUIET_S + 0.05 + block / SR     # what the window counts down


def test_a_pause_inside_an_imitation_does_not_end_it_and_a_voice_at_once_counts():
    from qvi_app.audio.endpoint import EndOfSound

    # "tss … tss … tss" with 1.5 s pauses, starting with no lead-in: ends after the last one only.
    burst = 0.3 * tone(2000, 0.4)
    wave = np.concatenate([burst, _room(1.5), burst, _room(1.5, seed=2), burst, _room(4, seed=3)])
    at = _stream(EndOfSound(SR), wave, 1024)
    assert at is not None and at > 3 * 0.4 + 2 * 1.5 + 1.9


def test_room_noise_a_quiet_voice_or_a_click_never_end_a_recording():
    from qvi_app.audio.endpoint import EndOfSound

    # Silence, or a fan: nothing was imitated yet, and no countdown shown.
    fan = EndOfSound(SR)
    assert _stream(fan, _room(8, db=-40), 1024) is None and fan.quiet_for is None
    assert _stream(EndOfSound(SR), np.zeros(8 * SR, np.float32), 1024) is None
    # A voice only 12 dB over a noisy room: not told apart reliably, so Space or the limit ends it.
    voice = tone(300, 1.0, amp=np.sqrt(2) * 10 ** (-18 / 20)) + _room(1, -30, 4)
    noisy = np.concatenate([_room(1, -30), voice, _room(5, -30, 5)])
    assert _stream(EndOfSound(SR), noisy, 1024) is None
    # The click of the Record key (5 ms), then the person takes their time.
    click = np.concatenate([_room(0.2), np.full(int(0.005 * SR), 0.5, np.float32), _room(6, seed=6)])
    assert _stream(EndOfSound(SR), click, 1024) is None


def test_a_looped_sound_plays_on_from_its_start_until_the_loop_is_switched_off():
    import sounddevice as sd

    from qvi_app.audio.devices import Player

    player = Player()
    player._wave, player._sr, player._pos, player._end = np.arange(1, 6, dtype=np.float32), 5, 3, 5   # 1..5, from the 4th
    player.loop = True
    heard = []
    for _ in range(3):
        out = np.full((4, 1), -1.0, np.float32)
        player._callback(out, 4, None, None)
        heard += list(out[:, 0])
    assert heard == [4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5]                   # around, within one block too
    player.loop = False                                                    # the pass playing is the last
    out = np.full((4, 1), -1.0, np.float32)
    player._callback(out, 4, None, None)
    out2 = np.full((4, 1), -1.0, np.float32)
    with pytest.raises(sd.CallbackStop):
        player._callback(out2, 4, None, None)
    assert list(out[:, 0]) + list(out2[:, 0]) == [1, 2, 3, 4, 5, 0, 0, 0]


@pytest.mark.parametrize("ext,kw,subtype", [(".wav", {"subtype": "PCM_16"}, "PCM_16"),
                                            (".flac", {"subtype": "PCM_24"}, "PCM_24"),
                                            (".ogg", {"format": "OGG", "subtype": "VORBIS"}, "PCM_24"),
                                            (".wav", {"subtype": "FLOAT"}, "FLOAT")])
def test_a_part_of_a_sound_is_saved_as_it_is_in_the_file(tmp_path, ext, kw, subtype):
    """A part of a result (one footstep of ten) for a project: its channels, rate and bit depth
    kept (lossy sources as 24-bit), the samples those of the file."""
    from qvi_app.audio.region import save_region

    rate = 48000
    left, right = tone(440, 3.0, sr=rate), tone(660, 3.0, sr=rate, amp=0.25)
    src = write(tmp_path / f"src{ext}", np.stack([left, right], axis=1), rate, **kw)
    out = tmp_path / "parts" / "part.wav"
    assert save_region(src, 1.0, 1.5, out) == pytest.approx(0.5, abs=1e-3)
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.subtype, info.format) == (rate, 2, subtype, "WAV")
    assert abs(info.frames - rate // 2) <= 1
    part, _ = sf.read(out, dtype="float32")
    whole, _ = sf.read(src, dtype="float32")
    tolerance = 1e-4 if ext != ".ogg" else 1e-3
    assert np.max(np.abs(part - whole[rate: rate + len(part)])) < tolerance


def test_a_part_of_a_video_clip_is_saved_and_only_what_it_needs_is_decoded(tmp_path, monkeypatch):
    """A part of a QuickTime clip's sound: both channels, its rate, as 24-bit WAV (a lossy source),
    the samples those decoded; a part of the first second of a 20 s clip decodes that second,
    not the clip."""
    from qvi_app.audio import container
    from qvi_app.audio.region import save_region

    rate = 48000
    both = np.stack([tone(440, 20.0, sr=rate), tone(660, 20.0, sr=rate, amp=0.25)], axis=1)
    src = write_encoded(tmp_path / "clip.mov", both, rate, container="mov")
    whole, _ = load_audio(src, stereo=True)
    decoded = []
    blocks = container.Opened.blocks
    monkeypatch.setattr(container.Opened, "blocks", lambda self: (decoded.append(b) or b for b in blocks(self)))
    out = tmp_path / "part.wav"
    assert save_region(src, 0.5, 1.0, out) == pytest.approx(0.5, abs=1e-3)
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.subtype) == (rate, 2, "PCM_24")
    part, _ = sf.read(out, dtype="float32")
    assert np.max(np.abs(part - whole[rate // 2: rate // 2 + len(part)])) < 1e-4
    assert sum(b.shape[1] for b in decoded) < 1.2 * rate                   # about a second of 20 decoded


def test_a_part_is_saved_at_the_pitch_it_was_heard_at(tmp_path, monkeypatch):
    """Auditioned an octave up ([ and ] in the window), a part is saved as heard: half as long,
    an octave higher, at the file's own rate, channels and depth."""
    from qvi_app.audio.region import save_region

    rate = 48000
    src = write(tmp_path / "src.wav", np.stack([tone(440, 3.0, sr=rate), tone(660, 3.0, sr=rate)], axis=1), rate,
                subtype="PCM_24")
    assert save_region(src, 1.0, 3.0, tmp_path / "up.wav", semitones=12) == pytest.approx(1.0, abs=1e-3)
    assert save_region(src, 1.0, 2.0, tmp_path / "down.wav", semitones=-7) == pytest.approx(2 ** (7 / 12), abs=1e-3)
    for name, left in (("up.wav", 880), ("down.wav", 440 * 2 ** (-7 / 12))):
        info = sf.info(tmp_path / name)
        assert (info.samplerate, info.channels, info.subtype) == (rate, 2, "PCM_24")
        part, _ = sf.read(tmp_path / name, dtype="float32")
        middle = part[len(part) // 4: 3 * len(part) // 4]
        for channel, want in ((0, left), (1, left * 1.5)):
            spectrum = np.abs(np.fft.rfft(middle[:, channel] * np.hanning(len(middle))))
            assert abs(np.argmax(spectrum) * rate / len(middle) - want) < 3, (name, channel)
    # memory stays bounded by what is written: two octaves down, a part is four times as long
    import qvi_app.audio.region as region

    monkeypatch.setattr(region, "MAX_DECODED_BYTES", 2 * rate * 2 * 4)            # 2 s of stereo float
    assert save_region(src, 0.0, 1.0, tmp_path / "ok.wav") == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(AudioError, match="too large"):
        save_region(src, 0.0, 1.0, tmp_path / "deep.wav", semitones=-24)


def test_a_part_past_the_end_or_nowhere_to_write_is_one_clear_error(tmp_path):
    from qvi_app.audio.region import save_region

    src = write(tmp_path / "a.wav", tone(440, 2.0), SR)
    assert save_region(src, 1.5, 9.0, tmp_path / "end.wav") == pytest.approx(0.5, abs=1e-3)   # up to its end
    with pytest.raises(AudioError, match="nothing"):
        save_region(src, 2.5, 3.0, tmp_path / "none.wav")
    (tmp_path / "file").write_text("x")
    with pytest.raises(AudioError, match="cannot save"):
        save_region(src, 0.0, 1.0, tmp_path / "file" / "under-a-file.wav")
    assert not list(tmp_path.glob("**/*.tmp*"))


def test_a_part_plays_and_loops_as_a_part_on_the_whole_sound_s_time():
    import sounddevice as sd

    from qvi_app.audio.devices import Player

    player = Player()
    player._stream = None
    wave = np.arange(1, 11, dtype=np.float32)                              # 10 samples at 10 Hz
    # What play() sets up, without a sound card: from 0.3 s to 0.6 s, looping.
    player._wave, player._sr, player._pos, player._end, player._loop_from = wave, 10, 3, 6, 3
    player.loop = True
    out = np.zeros((7, 1), np.float32)
    player._callback(out, 7, None, None)
    assert list(out[:, 0]) == [4, 5, 6, 4, 5, 6, 4] and player.position_s == pytest.approx(0.4)
    player.loop = False
    out = np.zeros((4, 1), np.float32)
    with pytest.raises(sd.CallbackStop):
        player._callback(out, 4, None, None)
    assert list(out[:, 0]) == [5, 6, 0, 0]


def test_a_result_played_faster_is_sent_at_a_higher_rate_or_stretched_for_a_device_that_takes_none(monkeypatch):
    """Tape-like pitch ([ and ] in the window): the device is asked for the sound's rate times the
    speed; a device that refuses that rate gets the sound stretched instead. Either way the part
    played, its loop start and the playhead stay on the sound's own time."""
    import sounddevice as sd

    from qvi_app.audio.devices import Player

    class Stream:
        active = True

        def start(self):
            pass

        def abort(self):
            pass

        def close(self):
            pass

    asked = []

    def opened(player, sd_module, on_done, refuse_odd=False):
        asked.append(player._rate)
        if refuse_odd and player._rate != 1000:
            raise sd.PortAudioError("Invalid sample rate")
        return Stream()

    wave = np.arange(2000, dtype=np.float32) / 2000                  # 2 s at 1 kHz
    player = Player()
    monkeypatch.setattr(Player, "_open", lambda self, sd_, done: opened(self, sd_, done))
    player.play(wave, 1000, start_s=0.5, end_s=1.5, loop_from_s=0.25, speed=2.0)
    assert asked == [2000] and len(player._wave) == 2000                # the device plays it twice as fast
    assert (player._pos, player._end, player._loop_from) == (500, 1500, 250) and player.position_s == 0.5
    asked.clear()
    monkeypatch.setattr(Player, "_open", lambda self, sd_, done: opened(self, sd_, done, refuse_odd=True))
    player.play(np.stack([wave, -wave], axis=1), 1000, start_s=0.5, end_s=1.5, speed=2.0)
    assert asked == [2000, 1000]                                         # refused, then its own rate
    assert player._wave.shape == (1000, 2) and player._wave[0, 1] == 0 and player._wave[-1, 0] == wave[-1]
    assert (player._pos, player._end, player._loop_from) == (250, 750, 250) and player.position_s == 0.5
    out = np.zeros((4, 2), np.float32)
    player._callback(out, 4, None, None)
    assert player.position_s == pytest.approx(0.508)                     # 4 frames of a sound made half as long

    def mono_only(self, sd_, done):                                      # a speaker with one channel, own rate
        asked.append((self._rate, self._wave.ndim))
        if self._rate != 1000 or self._wave.ndim != 1:
            raise sd.PortAudioError("Invalid number of channels")
        return Stream()

    asked.clear()
    monkeypatch.setattr(Player, "_open", mono_only)
    player.play(np.stack([wave, -wave], axis=1), 1000, speed=2.0)
    assert asked == [(2000, 2), (1000, 2), (1000, 1)] and player._wave.shape == (1000,)


def test_a_files_facts_name_its_rate_channels_and_format(tmp_path):
    """What a sound designer checks before using a sound: its rate, channels and depth or codec."""
    from qvi_app.audio.load import file_facts

    stereo = np.stack([tone(440, 0.5, sr=48000), tone(660, 0.5, sr=48000)], axis=1)
    sf.write(tmp_path / "a.wav", stereo, 48000, subtype="PCM_24")
    sf.write(tmp_path / "b.flac", tone(440, 0.5), SR, subtype="PCM_16")
    sf.write(tmp_path / "c.ogg", tone(440, 0.5, sr=44100), 44100, format="OGG", subtype="VORBIS")
    sf.write(tmp_path / "d.wav", np.zeros((4800, 6), np.float32), 96000, subtype="FLOAT")
    assert file_facts(tmp_path / "a.wav") == "48 kHz · stereo · 24-bit WAV"
    assert file_facts(tmp_path / "b.flac") == f"{SR / 1000:g} kHz · mono · 16-bit FLAC"
    assert file_facts(tmp_path / "c.ogg") == "44.1 kHz · mono · Ogg Vorbis"
    assert file_facts(tmp_path / "d.wav") == "96 kHz · 6 channels · 32-bit float WAV"
    (tmp_path / "e.wav").write_bytes(b"not audio")
    assert file_facts(tmp_path / "e.wav") == "" and file_facts(tmp_path / "gone.wav") == ""


def test_a_stereo_file_can_be_read_in_stereo_for_listening(tmp_path):
    """Searching uses one channel; listening keeps a stereo file's two (an ambience auditioned in
    mono lost its width). More channels than two are mixed down, as for searching."""
    left, right = tone(440, 0.5), 0.25 * tone(880, 0.5)
    sf.write(tmp_path / "st.wav", np.stack([left, right], axis=1), SR, subtype="PCM_24")
    sf.write(tmp_path / "six.wav", np.stack([left] * 6, axis=1), SR)
    sf.write(tmp_path / "mono.wav", left, SR)
    wave, sr = load_audio(tmp_path / "st.wav", stereo=True)
    assert wave.shape == (len(left), 2) and sr == SR and wave.dtype == np.float32
    assert np.allclose(wave[:, 0], left, atol=1e-4) and np.allclose(wave[:, 1], right, atol=1e-4)
    assert load_audio(tmp_path / "st.wav")[0].ndim == 1                   # for searching: one channel
    assert load_audio(tmp_path / "six.wav", stereo=True)[0].shape == (len(left),)
    assert load_audio(tmp_path / "mono.wav", stereo=True)[0].shape == (len(left),)
    half, sr2 = load_audio(tmp_path / "st.wav", target_sr=SR // 2, stereo=True)
    assert sr2 == SR // 2 and half.shape[1] == 2 and abs(len(half) - len(left) // 2) <= 1
    sf.write(tmp_path / "loud.wav", np.stack([4 * left, right], axis=1), SR, subtype="FLOAT")
    assert np.max(np.abs(load_audio(tmp_path / "loud.wav", stereo=True)[0])) == pytest.approx(1.0)


def test_a_stereo_sounds_level_is_its_channels_mean_power():
    from qvi_app.audio.level import active_level_db, audition_gain

    x = tone(440, 1.0)
    both = np.stack([x, x], axis=1)
    assert active_level_db(both, SR) == pytest.approx(active_level_db(x, SR), abs=1e-6)
    one_side = np.stack([x, np.zeros_like(x)], axis=1)                     # half the power: 3 dB lower
    assert active_level_db(one_side, SR) == pytest.approx(active_level_db(x, SR) - 3.01, abs=0.01)
    assert audition_gain(one_side, SR) == pytest.approx(audition_gain(x, SR) * 10 ** (3.01 / 20), rel=1e-3)


def _damaged_mp3(path):
    """An MP3 with a few frames overwritten (what a cut-short download or a bad copy leaves):
    it still decodes, and libmpg123 reports each bad frame on the process's stderr."""
    write(path, np.sin(np.arange(44100) / 10).astype(np.float32), 44100, format="MP3")
    data = bytearray(path.read_bytes())
    for i in range(1600, len(data), 700):
        data[i:i + 4] = b"\x12\x34\x56\x78"
    path.write_bytes(bytes(data))
    return path


def test_a_damaged_mp3_is_read_without_the_decoders_own_lines(tmp_path):
    """The decoder's lines ("[src/libmpg123/layer3.c:...] error: dequantization failed!") went to
    the terminal on every bad frame, through `qvi index`'s progress bar: dozens of lines for one
    file of a library. What the process itself writes to stderr around and during it still shows."""
    import subprocess
    import sys

    path = _damaged_mp3(tmp_path / "damaged.mp3")
    code = ("import sys; from qvi_app.audio import load_audio; from qvi_app.audio.load import file_facts; from qvi_app.audio.tags import file_tags\n"
            "print('before', file=sys.stderr, flush=True)\n"
            f"w, sr = load_audio({str(path)!r}); file_facts({str(path)!r}); file_tags({str(path)!r})\n"
            "print('after', len(w) > 0, file=sys.stderr, flush=True)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "libmpg123" not in r.stderr, r.stderr
    assert r.stderr.split() == ["before", "after", "True"]


def test_decoding_mp3s_in_threads_keeps_what_else_is_written_meanwhile(tmp_path):
    """While one thread's MP3 decode holds the decoder's lines back, another thread's own lines
    (a warning, a log line) are written as they were; the last decode out puts stderr back."""
    import subprocess
    import sys

    path = _damaged_mp3(tmp_path / "damaged.mp3")
    code = ("import sys, threading; from qvi_app.audio import load_audio\n"
            "def decode():\n"
            f"    for _ in range(15): load_audio({str(path)!r})\n"
            "threads = [threading.Thread(target=decode) for _ in range(3)]\n"
            "[t.start() for t in threads]\n"
            "for i in range(200): print(f'line {i}', file=sys.stderr, flush=True)\n"
            "[t.join() for t in threads]\n"
            "print('end', file=sys.stderr, flush=True)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert "libmpg123" not in r.stderr, r.stderr[:2000]
    assert sorted(lines) == sorted([f"line {i}" for i in range(200)] + ["end"])
    assert lines[-1] == "end"


def test_a_process_is_started_only_while_stderr_is_the_processs_own(tmp_path):
    """A process started while a decode holds stderr back would inherit the held-back file for
    good (its errors lost): :func:`unredirected` waits for the decode to end."""
    import threading
    import time

    from qvi_app.audio.quiet import decoder_quiet, unredirected

    path = _damaged_mp3(tmp_path / "damaged.mp3")
    own = os.fstat(2)
    inside, seen = threading.Event(), []

    def decode():
        with open(path, "rb") as fh, decoder_quiet(fh):
            inside.set()
            time.sleep(0.3)                                   # a long decode

    t = threading.Thread(target=decode)
    t.start()
    inside.wait(5)
    assert (os.fstat(2).st_ino, os.fstat(2).st_dev) != (own.st_ino, own.st_dev)    # held back now
    start = time.monotonic()
    with unredirected():
        seen.append((time.monotonic() - start, os.fstat(2)))
    t.join()
    waited, fd2 = seen[0]
    assert waited > 0.15 and (fd2.st_ino, fd2.st_dev) == (own.st_ino, own.st_dev)
