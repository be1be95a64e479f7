"""Recording and playback through sounddevice, with errors a user can act on.

Explicit ``InputStream`` / ``OutputStream`` objects are used (never the module-level
``sd.play``/``sd.rec``, which share one stream), so auditioning a result never cuts a recording.
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from qvi_app.audio.endpoint import EndOfSound
from qvi_app.audio.load import clipped_share, remove_offset
from qvi_app.errors import DeviceError


def _sd():
    try:
        import sounddevice
    except OSError as exc:  # libportaudio missing
        raise DeviceError(f"audio is unavailable: the PortAudio library cannot be loaded ({exc}); "
                          "install libportaudio2") from None
    return sounddevice


def _device_error(kind: str, exc: Exception) -> DeviceError:
    text = str(exc)
    low = text.lower()
    if "device matching" in low:
        return DeviceError(f"no {kind} matching the one in qvi's settings was found ({text}); "
                           "connect it or choose another")
    if "unavailable" in low or "busy" in low:
        return DeviceError(f"the {kind} is busy (is another program using it?): {text}")
    if "querying device -1" in low or "no default" in low or "invalid device" in low:
        what = "microphone (input device)" if kind == "microphone" else "speaker (output device)"
        return DeviceError(f"no {what} found: connect one, or check the system's sound settings")
    return DeviceError(f"the {kind} cannot be opened: {text}")


def list_devices() -> tuple[list[str], list[str]]:
    """Names of the input and the output devices PortAudio sees now (re-read each time, so a
    device plugged in again appears)."""
    sd = _sd()
    try:
        sd._terminate()            # PortAudio lists devices when it starts: restart it to see changes
        sd._initialize()
        devices = sd.query_devices()
    except (sd.PortAudioError, AttributeError) as exc:
        raise _device_error("sound device", exc) from None
    inputs = [d["name"] for d in devices if d["max_input_channels"] > 0]
    outputs = [d["name"] for d in devices if d["max_output_channels"] > 0]
    return inputs, outputs


class Recorder:
    """Records mono audio from an input device until stopped or ``max_seconds`` have passed.

    ``level`` (dBFS of the latest block) and ``elapsed`` may be read from any thread while
    recording; ``on_limit`` is called (from the audio thread) when the maximum is reached. With
    ``quiet_s``, recording also ends ``quiet_s`` after the sound does (``audio.endpoint``), and
    ``on_quiet`` is called instead; ``stopped_by`` then says which ("limit" or "quiet").
    """

    def __init__(self, max_seconds: float = 10.0, device=None, on_limit: Callable[[], None] | None = None,
                 quiet_s: float = 0.0, on_quiet: Callable[[], None] | None = None):
        self.max_seconds = max_seconds
        self.device = device
        self.on_limit = on_limit
        self.quiet_s = quiet_s
        self.on_quiet = on_quiet
        self.stopped_by: str | None = None
        self._end: EndOfSound | None = None
        self.sample_rate = 0
        self.level = -120.0
        self.clipped = 0.0                  # share of flat tops of the last recording (before offset removal)
        self._blocks: list[np.ndarray] = []
        self._frames = 0
        self._stream = None
        self._lock = threading.Lock()

    @property
    def recording(self) -> bool:
        return self._stream is not None and self._stream.active

    @property
    def elapsed(self) -> float:
        return self._frames / self.sample_rate if self.sample_rate else 0.0

    @property
    def stops_in(self) -> float | None:
        """Seconds until recording ends by itself because the sound is over (``quiet_s``); None
        while no sound was heard, or the voice goes on."""
        end = self._end
        if end is None or end.quiet_for is None or end.quiet_for < 0.2:
            return None
        return max(0.0, self.quiet_s - end.quiet_for)

    def countdown(self) -> str:
        """What is left, as the window and the terminal show it: "stops in 1.2 s" once the sound
        is over, else "8.1 s left"."""
        stops_in = self.stops_in
        if stops_in is not None:
            return f"stops in {stops_in:3.1f} s"
        return f"{max(0.0, self.max_seconds - self.elapsed):4.1f} s left"

    def start(self) -> None:
        sd = _sd()
        try:
            info = sd.query_devices(self.device, kind="input")
            self.sample_rate = int(info["default_samplerate"])
            self._blocks, self._frames, self.level, self.stopped_by = [], 0, -120.0, None
            self._end = EndOfSound(self.sample_rate, self.quiet_s) if self.quiet_s > 0 else None
            self._stream = sd.InputStream(device=self.device, channels=1, samplerate=self.sample_rate,
                                          dtype="float32", callback=self._callback)
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            self._stream = None
            raise _device_error("microphone", exc) from None

    def _callback(self, indata, frames, time, status):
        block = indata[:, 0].copy()
        limit = int(self.max_seconds * self.sample_rate)
        with self._lock:
            block = block[: max(0, limit - self._frames)]
            self._blocks.append(block)
            self._frames += len(block)
        if len(block):                      # the meter shows sound, not the interface's offset
            self.level = float(20 * np.log10(np.std(block) + 1e-6))
        if self._frames >= limit:
            self.stopped_by = "limit"
            if self.on_limit:
                self.on_limit()
            raise _sd().CallbackStop
        if self._end is not None and self._end.feed(block):
            self.stopped_by = "quiet"
            if self.on_quiet:
                self.on_quiet()
            raise _sd().CallbackStop

    def stop(self) -> tuple[np.ndarray, int]:
        """Stop and return (waveform, sample rate); ``clipped`` says how much of it was driven
        past full scale, read before the offset is removed (which blurs flat tops)."""
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except _sd().PortAudioError:
                pass
            self._stream = None
        with self._lock:
            wave = np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.float32)
        self.clipped = clipped_share(wave)
        return remove_offset(wave, self.sample_rate) if self.sample_rate else wave, self.sample_rate


def _stretched(wave: np.ndarray, factor: float) -> np.ndarray:
    """``wave`` (frames, or frames x channels) made ``factor`` times as long by linear interpolation."""
    n = max(1, round(len(wave) * factor))
    at = np.linspace(0, len(wave) - 1, n)
    if wave.ndim == 1:
        return np.interp(at, np.arange(len(wave)), wave).astype(np.float32)
    return np.stack([np.interp(at, np.arange(len(wave)), wave[:, c]) for c in range(wave.shape[1])],
                    axis=1).astype(np.float32)


class Player:
    """Plays one waveform at a time on an output device; ``play`` replaces what is playing.

    ``volume`` (0..1) applies at once, also to what is playing, and so does ``loop`` (played
    again from the start until stopped; switched off, the pass playing is the last);
    ``position_s`` is where the playback is (for a playhead), read from any thread."""

    def __init__(self, device=None, volume: float = 1.0):
        self.device = device
        self.volume = volume
        self.loop = False
        self._stream = None
        self._wave = np.zeros(0, np.float32)
        self._pos = self._end = self._loop_from = 0
        self._sr = 1                  # frames of _wave per second of the sound
        self._rate = 1                # frames per second sent to the device

    @property
    def position_s(self) -> float:
        return min(self._pos, len(self._wave)) / self._sr

    @property
    def playing(self) -> bool:
        return self._stream is not None and self._stream.active

    def play(self, wave: np.ndarray, sr: int, on_done: Callable[[], None] | None = None,
             start_s: float = 0.0, loop: bool = False, end_s: float | None = None,
             loop_from_s: float | None = None, speed: float = 1.0) -> None:
        """Start playing (mono, or stereo as (frames, 2); float) from ``start_s``; ``on_done`` runs
        on the audio thread when it ends or is stopped. With ``end_s``, only the part from
        ``start_s`` (or ``loop_from_s``, where a loop goes back to) to ``end_s`` plays (and loops);
        ``position_s`` stays on the whole sound's time. ``speed``: played faster or slower like
        tape, its pitch with it (2: an octave up)."""
        self.stop()
        self.loop = loop
        sd = _sd()
        self._wave = np.ascontiguousarray(wave, dtype=np.float32)
        self._sr = self._rate = int(sr)
        if speed != 1.0:
            self._rate = max(1, round(sr * speed))               # the device plays it faster or slower
        def own_rate():
            # A device that takes no rate but its own: the sound stretched here instead (linear
            # interpolation: a preview of the pitch, not a render of it).
            self._wave, self._sr, self._rate = _stretched(self._wave, 1.0 / speed), sr / speed, int(sr)

        def one_channel():
            self._wave = np.ascontiguousarray(self._wave.mean(axis=1))      # a speaker with one channel

        # as it is; then each way round what a device may refuse, one after the other
        tries = [lambda: None] + ([own_rate] if self._rate != sr else []) + \
            ([one_channel] if self._wave.ndim == 2 else [])
        try:
            for n, adapt in enumerate(tries, 1):
                adapt()
                try:
                    self._stream = self._open(sd, on_done)
                    break
                except (sd.PortAudioError, ValueError):
                    if n == len(tries):
                        raise
            self._pos = min(max(0, int(start_s * self._sr)), len(self._wave))
            self._end = len(self._wave) if end_s is None else \
                min(max(self._pos, int(end_s * self._sr)), len(self._wave))
            # a sound loops whole, a part as a part (from its start)
            self._loop_from = 0 if end_s is None else \
                min(self._pos, int((start_s if loop_from_s is None else loop_from_s) * self._sr))
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            self._stream = None
            raise _device_error("speaker", exc) from None

    def _open(self, sd, on_done):
        channels = 1 if self._wave.ndim == 1 else self._wave.shape[1]
        return sd.OutputStream(device=self.device, channels=channels, samplerate=self._rate, dtype="float32",
                               callback=self._callback, finished_callback=on_done or (lambda: None))

    def _callback(self, outdata, frames, time, status):
        done, n = 0, self._end
        while done < frames:
            chunk = self._wave[self._pos:min(n, self._pos + frames - done)]
            outdata[done: done + len(chunk)] = (chunk if chunk.ndim == 2 else chunk[:, None]) * self.volume
            done += len(chunk)
            self._pos += len(chunk)
            if self._pos < n or not self.loop or n <= self._loop_from:
                break
            self._pos = self._loop_from         # looping: on from the start in the same block
        outdata[done:] = 0
        if self._pos >= n:
            raise _sd().CallbackStop

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except _sd().PortAudioError:
                pass
