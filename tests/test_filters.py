"""Filters: a category, name words and a length, as one value, read from what a user types."""

import numpy as np
import pytest

from qvi_app.errors import QviError
from qvi_app.index import LENGTH_PRESETS, NO_FILTERS, Filters, Length


@pytest.mark.parametrize("typed, want", [
    ("0.5-2", Length(0.5, 2.0)), (" 0.5 - 2 s ", Length(0.5, 2.0)), ("0.5s-2s", Length(0.5, 2.0)),
    ("1–3", Length(1.0, 3.0)), ("1..3", Length(1.0, 3.0)), ("1 to 3", Length(1.0, 3.0)), ("1s to 3s", Length(1.0, 3.0)), ("2-", Length(2.0, None)), ("-1", Length(None, 1.0)),
    ("<1", Length(None, 1.0)), ("under .5", Length(None, 0.5)), (">10", Length(10.0, None)),
    (">=10", Length(10.0, None)), ("over 3s", Length(3.0, None)), ("", None), ("  ", None), (None, None), ("-", None),
])
def test_a_length_is_read_as_typed(typed, want):
    assert Length.parse(typed) == want


@pytest.mark.parametrize("typed, says", [
    ("long", "cannot read the length"), ("1-2-3", "cannot read the length"), ("-1-", "cannot read the length"),
    ("3-1", "holds no sound"), ("2-2", "holds no sound"), ("9" * 400 + "-", "a number of seconds"), ("1e3-", "cannot read the length"),
])
def test_a_length_that_cannot_be_is_one_clear_line(typed, says):
    with pytest.raises(QviError, match=says) as err:
        Length.parse(typed)
    assert "\n" not in str(err.value)


def test_a_length_holds_its_start_and_not_its_end():
    """Presets meet without overlap: a 1.0 s sound is in "1-3 s", not in "under 1 s"."""
    seconds = np.array([0.0, 0.999, 1.0, 2.999, 3.0, 10.0, 600.0], np.float32)
    held = [[bool(x) for x in p.holds(seconds)] for p in LENGTH_PRESETS]
    assert held == [[True, True, False, False, False, False, False],
                    [False, False, True, True, False, False, False],
                    [False, False, False, False, True, False, False],
                    [False, False, False, False, False, True, True]]
    assert np.all(np.sum(held, axis=0) == 1)                              # each sound in exactly one preset
    assert Length(2.0, None).holds(2.0) and not Length(None, 2.0).holds(2.0)


def test_presets_read_as_the_window_shows_them():
    assert [p.describe() for p in LENGTH_PRESETS] == ["under 1 s", "1–3 s", "3–10 s", "10 s or more"]
    assert Length(0.5, 2.0).describe() == "0.5–2 s" and Length(0.0, 2.0).describe() == "under 2 s"
    assert Length.parse("10-") == LENGTH_PRESETS[-1] == Length.parse("10+")   # the command line names the same sets
    for length in LENGTH_PRESETS + (Length(0.5, 2.0), Length(0.25, None)):
        assert Length.parse(length.describe()) == length       # as a rating's filter is written, read back


def test_what_an_empty_list_says_names_every_filter():
    assert NO_FILTERS.nothing_found() == "no sound to show"
    assert Filters("birds").nothing_found() == "no sound in birds"
    assert Filters(length=Length(None, 1.0)).nothing_found() == "no sound lasting under 1 s"
    assert Filters("birds", " owl ", Length(10.0, None)).nothing_found() == \
        "no sound in birds lasting 10 s or more has 'owl' in its name, folder or description"
    assert Filters(name="   ") == NO_FILTERS                        # a blank name field filters nothing
    assert Filters(name=" - ") == Filters(name="\"\"") == NO_FILTERS     # nor the start of "-car" or of a phrase
    assert Filters("birds").but(category=None, name="owl") == Filters(name="owl")


@pytest.mark.parametrize("filters", [
    NO_FILTERS, Filters(name="01"), Filters(name="bird -owl"), Filters(category="birds"),
    Filters(length=LENGTH_PRESETS[0]), Filters("farm_animals", "02", LENGTH_PRESETS[1]), Filters(name="zzz no such"),
])
def test_facets_count_each_choice_among_what_the_other_filters_keep(filters):
    """The category box and the length box count, for each of their choices, the sounds that
    choice would keep with the other filters as they are: against the definition, sound by sound."""
    from qvi_app.index import ReferenceIndex
    from qvi_app.paths import DEMO_INDEX

    index = ReferenceIndex.open(DEMO_INDEX)
    kept = lambda f: set(range(len(index))) if index.kept_rows(f) is None else set(index.kept_rows(f).tolist())
    facets = index.facets(filters)
    assert list(facets.categories) == sorted(index.categories())
    for category, n in facets.categories.items():
        assert n == len(kept(filters.but(category=category))), category
    for length, n in facets.lengths.items():
        assert n == len(kept(filters.but(length=length))), length.describe()
    if filters == NO_FILTERS:
        assert facets.categories == index.categories() and sum(facets.categories.values()) == len(index)
