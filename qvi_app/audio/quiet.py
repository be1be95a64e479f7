"""Keep the MP3 decoder's own lines off the terminal.

libsndfile decodes MP3 with libmpg123, which writes a line to the process's stderr for every
damaged frame it skips ("[src/libmpg123/layer3.c:...] error: dequantization failed!") and for
every odd header ("Warning: Xing stream size off by more than 1%..."). The file still decodes; qvi
reads what it can and refuses what it cannot, with one line of its own. A library with a few
cut-short downloads printed dozens of such lines through `qvi index`'s progress bar.

libsndfile offers no switch for them, so while an MP3 is opened and decoded, file descriptor 2
points at a temporary file; afterwards the decoder's messages are dropped (logged at debug level)
and anything else written meanwhile (another thread's warning) is written to stderr as it was.
Several threads may decode at once: the first one in redirects, the last one out restores.
Python writes a line and its newline apart, so another thread's line can be cut by the switch,
or carry a decoder message after its start: each message is cut out from its marker to the
end of its line, and what was held is written back before the switch back, so that the rest of
such a line follows it. POSIX only (it reads the held text with ``os.pread``).

A process started meanwhile would inherit the held-back stderr for good (its own errors lost
in a deleted file): whatever starts one (the indexing workers) does so inside
:func:`unredirected`, which waits for the decodes under way (milliseconds) and holds new ones
back until the process is started.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading

log = logging.getLogger(__name__)

#: libmpg123's messages, from their marker to the end of their line: its source-file prefix, and
#: the notes and warnings of its parser ("Note: Trying to resync...", "Warning: Xing stream...").
_DECODER_MESSAGE = re.compile(rb"(?:\[src/libmpg123/|\[[\w/.]*mpg123[\w/.]*:|(?<![A-Za-z])Note: |"
                              rb"(?<![A-Za-z])Warning: )[^\n]*\n?")
#: At most this much of what was written meanwhile is looked at (a damaged hour of MP3: a few MB).
_MAX_KEPT = 8 << 20

_lock = threading.RLock()
_restored = threading.Condition(_lock)
_depth = 0
_saved_fd: int | None = None
_capture = None


def is_mpeg(fh) -> bool:
    """Whether an open binary file looks like MP3 (an ID3 tag or an MPEG frame sync at its start);
    its position is left where it was."""
    try:
        at = fh.tell()
        head = fh.read(3)
        fh.seek(at)
    except (OSError, ValueError):
        return False
    return head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


@contextlib.contextmanager
def unredirected():
    """While held, stderr is the process's own and no decode holds it back: for starting a
    process, which inherits it."""
    with _restored:
        _restored.wait_for(lambda: _saved_fd is None)
        yield


@contextlib.contextmanager
def decoder_quiet(fh):
    """While open, the MP3 decoder's stderr lines are held back (when ``fh`` is an MP3 file)."""
    if not is_mpeg(fh):
        yield
        return
    _enter()
    try:
        yield
    finally:
        _leave()


def _flush() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()


def _enter() -> None:
    global _depth, _saved_fd, _capture
    with _lock:
        _depth += 1
        if _depth > 1 or not hasattr(os, "pread"):
            return
        try:
            capture = tempfile.TemporaryFile()
        except OSError:                       # no writable temporary folder: the lines show, no harm
            return
        try:
            saved = os.dup(2)                 # no stderr at all (a windowed app): nothing to guard
        except OSError:
            capture.close()
            return
        _flush()
        os.dup2(capture.fileno(), 2)
        _saved_fd, _capture = saved, capture


def _leave() -> None:
    global _depth, _saved_fd, _capture
    with _lock:
        _depth -= 1
        if _depth > 0 or _saved_fd is None:
            return
        _flush()
        capture, saved = _capture, _saved_fd
        _saved_fd, _capture = None, None
        with capture:
            held = os.pread(capture.fileno(), _MAX_KEPT, 0)
            said = [_write_back(held, saved)]
            os.dup2(saved, 2)
            os.close(saved)
            late = os.pread(capture.fileno(), _MAX_KEPT, len(held))    # written during the write-back
            said.append(_write_back(late, 2))
        _restored.notify_all()
    said = b"".join(said).decode("utf-8", "replace").strip()
    if said:
        log.debug("the MP3 decoder said: %s", said)


def _write_back(held: bytes, fd: int) -> bytes:
    """Write ``held`` to ``fd`` without the decoder's messages; returns those."""
    messages = b"".join(m.group() for m in _DECODER_MESSAGE.finditer(held))
    rest = _DECODER_MESSAGE.sub(b"", held)
    with contextlib.suppress(OSError):
        while rest:
            rest = rest[os.write(fd, rest):]
    return messages
