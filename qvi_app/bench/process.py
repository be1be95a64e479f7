"""A command run in its own process, measured: exit code, output, wall time and its own peak RSS.

The command runs as the grandchild of a small Python wrapper that reports ``RUSAGE_CHILDREN``.
Measuring a child started straight from a big process (pytest, a benchmark holding a memory map)
is wrong on Linux: a process carries the high-water mark of the memory it replaced at exec, so
pytest's own 1.5 GB showed up as the peak of every ``qvi search`` it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

_WRAPPER = ("import json, resource, subprocess, sys, time; t = time.perf_counter(); "
            "code = subprocess.call(sys.argv[2:]); w = time.perf_counter() - t; "
            "open(sys.argv[1], 'w').write(json.dumps({'rc': code, 'wall': w, "
            "'rss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_mb: float


def run_measured(argv, timeout: float | None = None, env: dict | None = None) -> Measured:
    """Run ``argv`` (its output captured, undecodable bytes escaped) and measure it; on timeout
    the whole process group is killed and ``subprocess.TimeoutExpired`` raised."""
    with tempfile.TemporaryDirectory(prefix="qvi-measure-") as tmp:
        report = Path(tmp) / "report.json"
        proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, str(report), *map(str, argv)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        r = json.loads(report.read_text()) if report.is_file() else {"rc": proc.returncode, "wall": 0.0, "rss_kb": 0}
    return Measured(r["rc"], out.decode(errors="backslashreplace"), err.decode(errors="backslashreplace"),
                    r["wall"], r["rss_kb"] / 1024)


__all__ = ["Measured", "run_measured"]
