"""Audio I/O: load, mix down, resample and trim sound files, and level them for listening."""

from qvi_app.audio.level import audition_gain
from qvi_app.audio.load import (AUDIO_EXTENSIONS, clipped_share, isolate_sound, load_audio, remove_offset, resample,
                                to_mono, trim_silence, unread_format)

__all__ = ["AUDIO_EXTENSIONS", "audition_gain", "clipped_share", "isolate_sound", "load_audio", "remove_offset",
           "resample", "to_mono", "trim_silence", "unread_format"]
