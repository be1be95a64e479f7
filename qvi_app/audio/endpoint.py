"""When an imitation is over, so that recording can stop by itself: press Space, imitate, and
the results come without reaching for the keyboard again (speech recognisers call this
end-pointing).

The rule is the cut's own (``sound_threshold``, which ``isolate_sound`` applies to the whole
recording afterwards), applied to the recording so far after every block: a 20 ms frame belongs
to the sound when it is over that threshold. Once something clearly louder than the room has been
heard (``HEARD_DB`` over its floor, for ``MIN_SOUND_S`` or more, so a key's click does not count),
``QUIET_S`` of frames under the threshold end it.

``QUIET_S``, measured on the 116 real imitations of ../shared/real-imitations-dev, each streamed
frame by frame and followed by its own room's silence: pauses inside an imitation ("tss … tss",
a motor revved twice) last up to 0.99 s for 90% of them and 1.94 s for 99%. Stopping after 1.5 s
of quiet would have cut 5 of the 116 short of where the cut ends them; after 2.0 s, one, a
12.6 s gen-2 imitation with a 4.4 s pause, which is longer than the 10 s a recording may last
anyway. Every real imitation was 31 dB or more over its floor (median 55), so ``HEARD_DB`` 20 leaves
room for a noisy room without stopping on a fan's hum; where the voice is not that far over the
noise, recording runs to Space or its limit as before.

The 2 s of room left at the end cost nothing measurable: the 116 imitations with 2 s of their
own quietest frames appended rank as with 0.3 s appended (a prompt Space): gen-1 among the demo
library 0.192 and 0.193, against the 10 references 0.648 and 0.635 (docs/TRAINING.md row 68).
"""

from __future__ import annotations

import numpy as np

from qvi_app.audio.load import sound_threshold

QUIET_S = 2.0
HEARD_DB = 20.0
MIN_SOUND_S = 0.15          # isolate_sound's shortest part kept at an end: shorter is a click
FRAME_S = 0.02


class EndOfSound:
    """Fed the recording block by block (any sizes); ``feed`` answers True from the block in
    which the sound has been over for ``quiet_s``. Keeps one level per 20 ms frame (600 s of
    recording: 30,000 floats)."""

    def __init__(self, sample_rate: int, quiet_s: float = QUIET_S):
        self.frame = max(1, int(round(FRAME_S * sample_rate)))
        self.quiet_frames = max(1, int(round(quiet_s / FRAME_S)))
        self.ended = False
        #: Seconds of quiet since the sound (None until a sound was heard): what the window counts down.
        self.quiet_for: float | None = None
        self._levels = np.zeros(0, np.float32)
        self._rest = np.zeros(0, np.float32)

    def feed(self, block: np.ndarray) -> bool:
        if self.ended:
            return True
        x = np.concatenate([self._rest, np.asarray(block, np.float32).reshape(-1)])
        n = len(x) // self.frame
        self._rest = x[n * self.frame:]
        if n == 0:
            return False
        # The standard deviation, not the RMS: a sound card's offset is not sound (as the meter).
        frames = x[: n * self.frame].reshape(n, self.frame)
        self._levels = np.concatenate([self._levels, 20 * np.log10(frames.std(axis=1) + 1e-6)])
        level = self._levels
        if len(level) <= self.quiet_frames or level.max() - np.percentile(level, 10) < HEARD_DB:
            return False
        active = np.flatnonzero(level > sound_threshold(level))
        if len(active) * FRAME_S < MIN_SOUND_S:
            return False
        quiet = len(level) - 1 - active[-1]
        self.quiet_for = quiet * FRAME_S
        self.ended = quiet >= self.quiet_frames
        return self.ended
