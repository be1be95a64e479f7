"""A real (virtual) desktop for GUI tests: an Xvfb screen and a PulseAudio null sink.

Whatever is played into the sink ``qvi_test_sink`` is what the default microphone hears (the
sink's monitor is the default source), and what the app plays can be recorded from the monitor.
The test command installs the programs (scripts/setup.sh --test); a missing one fails loudly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SINK = "qvi_test_sink"
PROGRAMS = ("Xvfb", "xdotool", "pulseaudio", "pactl", "paplay", "parecord", "xprop")


@dataclass
class Desktop:
    display: str
    env: dict            # environment for child processes (DISPLAY, XDG_RUNTIME_DIR)
    xvfb: subprocess.Popen
    runtime_dir: Path

    def play_into_microphone(self, wav: Path) -> subprocess.Popen:
        """Start playing a WAV file into the sink the default microphone listens to."""
        return subprocess.Popen(["paplay", f"--device={SINK}", str(wav)], env=self.env)

    def record_output(self, wav: Path) -> subprocess.Popen:
        """Start recording what is played to the default output; terminate() to stop."""
        return subprocess.Popen(["parecord", f"--device={SINK}.monitor", "--file-format=wav", str(wav)],
                                env=self.env)

    def stop(self) -> None:
        subprocess.run(["pulseaudio", "--kill"], env=self.env, capture_output=True)
        self.xvfb.terminate()
        self.xvfb.wait(10)
        shutil.rmtree(self.runtime_dir, ignore_errors=True)


def _free_display() -> int:
    for n in range(90, 400):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number between :90 and :399")


def _wait(what: str, ok, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ok():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def start_screen(width: int, height: int, dpi: int | None = None) -> tuple[int, subprocess.Popen]:
    """An Xvfb screen of that size (no window manager), at Xvfb's own resolution unless ``dpi`` is
    given: its display number and process."""
    n = _free_display()
    xvfb = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"]
                            + (["-dpi", str(dpi)] if dpi else []),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(f"Xvfb on :{n}", lambda: Path(f"/tmp/.X11-unix/X{n}").exists() or xvfb.poll() is not None)
    if xvfb.poll() is not None:
        raise RuntimeError(f"Xvfb :{n} exited with code {xvfb.returncode}")
    return n, xvfb


def start_desktop() -> Desktop:
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        raise RuntimeError(f"GUI tests need {', '.join(missing)}: run `bash scripts/setup.sh --test` "
                           "(installs xvfb, xdotool, pulseaudio, x11-utils)")
    n, xvfb = start_screen(1280, 800)
    runtime = Path(tempfile.mkdtemp(prefix="qvi-pulse-"))
    runtime.chmod(0o700)
    env = {**os.environ, "DISPLAY": f":{n}", "XDG_RUNTIME_DIR": str(runtime)}
    env.pop("PULSE_SERVER", None)
    subprocess.run(["pulseaudio", "-D", "--exit-idle-time=-1", "-n", f"--load=module-null-sink sink_name={SINK}",
                    "--load=module-native-protocol-unix"], env=env, check=True, capture_output=True)
    _wait("PulseAudio", lambda: subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0)
    for cmd in (["pactl", "set-default-sink", SINK], ["pactl", "set-default-source", f"{SINK}.monitor"]):
        subprocess.run(cmd, env=env, check=True, capture_output=True)
    return Desktop(f":{n}", env, xvfb, runtime)
