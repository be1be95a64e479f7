"""Which stretch of a result its plots show: the whole sound, or a stretch zoomed into with the
mouse wheel (around the pointer), moved along with Shift+wheel, or fitted to a part (Z).

A ten-minute field recording drawn across 500 pixels gives each pixel 1.2 s: one footstep, or
the bark the imitation matched, is a pixel wide and cannot be dragged across. Tk-free, so that
the arithmetic is tested without a display (tests/test_timeview.py).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The narrowest stretch shown: 8 columns of the display spectrogram (11.6 ms each) and 100 of
#: the waveform's 1 ms peaks, still more than a pixel each on a 500-pixel plot.
MIN_SECONDS = 0.1
#: One notch of the wheel shows this many times less (or more) of the sound.
WHEEL_FACTOR = 1.5
#: One notch with Shift moves along by this share of what is shown.
PAN_SHARE = 0.2
#: A part zoomed to (Z) is shown with this share of its length either side, to see it begin and end.
MARGIN_SHARE = 0.25


@dataclass(frozen=True)
class TimeView:
    """``start`` to ``end`` seconds of a sound ``total`` seconds long."""

    start: float
    end: float
    total: float

    @classmethod
    def whole(cls, total: float) -> "TimeView":
        return cls(0.0, max(float(total), 0.0), max(float(total), 0.0))

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def is_whole(self) -> bool:
        return self.start <= 0.0 and self.end >= self.total

    def zoomed(self, at: float, factor: float) -> "TimeView":
        """``factor`` times less of the sound (more, under 1), the moment ``at`` staying where it
        is on the screen."""
        width = min(max(self.seconds / factor, min(MIN_SECONDS, self.total)), self.total)
        share = (at - self.start) / self.seconds if self.seconds > 0 else 0.5
        share = min(max(share, 0.0), 1.0)
        return self._placed(at - share * width, width)

    def panned(self, shares: float) -> "TimeView":
        """Moved along by ``shares`` of the stretch shown (negative: back), never past an end."""
        return self._placed(self.start + shares * self.seconds, self.seconds)

    def around(self, start: float, end: float) -> "TimeView":
        """The part ``start``–``end`` with a margin either side."""
        start, end = sorted((start, end))
        width = min(max((end - start) * (1 + 2 * MARGIN_SHARE), min(MIN_SECONDS, self.total)), self.total)
        return self._placed((start + end) / 2 - width / 2, width)

    def showing(self, start: float, end: float) -> "TimeView":
        """This view when it shows all of ``start``–``end``; else one as wide, centred on it (or
        :meth:`around` it, when it is wider than this view)."""
        if self.start <= start and end <= self.end:
            return self
        if end - start > self.seconds:
            return self.around(start, end)
        return self._placed((start + end) / 2 - self.seconds / 2, self.seconds)

    def toggled(self, part: tuple[float, float] | None) -> "TimeView | None":
        """Z: from a zoom, the whole sound again; from the whole sound, ``part`` (None: there is
        no part to zoom to)."""
        if not self.is_whole:
            return TimeView.whole(self.total)
        return self.around(*part) if part is not None else None

    def overlaps(self, start: float, end: float) -> bool:
        return start < self.end and end > self.start

    def _placed(self, start: float, width: float) -> "TimeView":
        start = min(max(start, 0.0), self.total - width)
        end = self.total if start + width >= self.total - 1e-9 else start + width
        return TimeView(start, end, self.total)
