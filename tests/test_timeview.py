"""Which stretch of a long result its plots show (qvi_app.gui.timeview), without a display."""

from __future__ import annotations

import pytest

from qvi_app.gui.timeview import MIN_SECONDS, WHEEL_FACTOR, TimeView


def test_the_wheel_zooms_around_the_pointer_and_back_out_to_the_whole_sound():
    view = TimeView.whole(600.0)
    assert view.is_whole and view.seconds == 600.0
    zoomed = view.zoomed(at=150.0, factor=WHEEL_FACTOR)
    assert zoomed.seconds == pytest.approx(400.0)
    # The moment under the pointer stays where it was on the screen (a quarter of the way along).
    assert (150.0 - zoomed.start) / zoomed.seconds == pytest.approx(0.25)
    for _ in range(40):
        zoomed = zoomed.zoomed(at=150.0, factor=WHEEL_FACTOR)
    assert zoomed.seconds == pytest.approx(MIN_SECONDS) and zoomed.start <= 150.0 <= zoomed.end
    for _ in range(40):
        zoomed = zoomed.zoomed(at=150.0, factor=1 / WHEEL_FACTOR)
    assert zoomed == view


def test_a_view_never_leaves_the_sound():
    view = TimeView.whole(10.0).zoomed(at=10.0, factor=4)         # at the end: 2.5 s, ending there
    assert view.end == 10.0 and view.seconds == pytest.approx(2.5)
    assert view.panned(3.0) == view                                # already at the end
    back = view.panned(-10.0)
    assert back.start == 0.0 and back.seconds == pytest.approx(2.5)
    moved = back.panned(0.2)
    assert moved.start == pytest.approx(0.5) and moved.end == pytest.approx(3.0)
    assert not moved.is_whole


def test_a_part_is_shown_with_a_margin_and_a_sound_shorter_than_the_narrowest_view_stays_whole():
    view = TimeView.whole(600.0).around(300.0, 302.0)
    assert (view.start, view.end) == pytest.approx((299.5, 302.5))
    assert view.overlaps(302.4, 400.0) and not view.overlaps(302.5, 400.0)
    assert TimeView.whole(600.0).around(599.0, 600.0).end == 600.0       # at the end: kept inside
    tiny = TimeView.whole(0.05)
    assert tiny.zoomed(at=0.02, factor=10) == tiny and tiny.around(0.0, 0.01) == tiny
    assert TimeView.whole(0.0).zoomed(at=0.0, factor=2) == TimeView.whole(0.0)


def test_z_zooms_to_the_part_and_again_to_the_whole_sound():
    whole = TimeView.whole(60.0)
    part = whole.toggled((10.0, 12.0))
    assert (part.start, part.end) == pytest.approx((9.5, 12.5))
    assert part.toggled((10.0, 12.0)) == whole                  # again: the whole sound
    assert whole.zoomed(at=30.0, factor=2).toggled(None) == whole
    assert whole.toggled(None) is None                           # nothing to zoom to: said, not done


def test_j_to_a_place_out_of_a_zoom_moves_the_view_there_at_the_same_width():
    view = TimeView.whole(60.0).around(10.0, 12.0)               # 9.5–12.5 s
    assert view.showing(10.5, 11.5) == view                       # already in view: nothing moves
    moved = view.showing(40.0, 42.0)
    assert (moved.start, moved.end) == pytest.approx((39.5, 42.5)) and moved.seconds == pytest.approx(view.seconds)
    assert view.showing(58.0, 60.0).end == 60.0                   # at the end: kept inside
    wider = view.showing(20.0, 25.0)                               # wider than the zoom: around it
    assert wider.start <= 20.0 and wider.end >= 25.0
    assert TimeView.whole(60.0).showing(40.0, 42.0) == TimeView.whole(60.0)
