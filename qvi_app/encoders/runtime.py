"""Process settings for a fast query path (applied once, when the first encoder is loaded)."""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_done = False


def tune_allocator() -> None:
    """Keep the CNN's large activation buffers on glibc's heap instead of fresh mmaps.

    By default glibc maps every buffer over 128 kB afresh and unmaps it on free, so each
    forward pass page-faults its activations in again; measured here, a 10 s query's CNN pass
    took 111 ms with the default and 80 ms with these thresholds. No effect off glibc.
    """
    global _done
    if _done or not sys.platform.startswith("linux"):
        return
    _done = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 256 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 512 << 20)
    except (OSError, AttributeError):
        pass
