"""What a list is narrowed to: a category, words of the name, a length. One value, passed whole.

The category and name filters were threaded one by one through the index, the session, the
window's workbench, its Back history and the command line; a third (length) would have been a
third parameter in each. A :class:`Filters` is what every one of them passes instead, and what a
list remembers it was made with (Back, "nothing found", a rating's context).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from qvi_app.errors import QviError


@dataclass(frozen=True)
class Length:
    """Sounds from ``shortest`` to under ``longest`` seconds (either end open when None).

    The end is excluded so that presets meet without overlap: "1-3 s" and "3-10 s" share no sound."""

    shortest: float | None = None
    longest: float | None = None

    def __post_init__(self):
        for end in (self.shortest, self.longest):
            if end is not None and not (math.isfinite(end) and end >= 0):
                raise QviError(f"a length is a number of seconds, 0 or more (not {end})")
        if self.shortest is not None and self.longest is not None and self.longest <= self.shortest:
            raise QviError(f"a length from {_sec(self.shortest)} to {_sec(self.longest)} holds no sound: "
                           "give the shorter end first (0.5-2)")

    def holds(self, seconds):
        """Whether ``seconds`` (a number or a NumPy array) is in the range."""
        ok = True if self.shortest is None else seconds >= self.shortest
        return ok if self.longest is None else ok & (seconds < self.longest)

    def describe(self) -> str:
        """ "under 1 s", "1-3 s", "10 s or more" (the window's words for its presets)."""
        if self.shortest in (None, 0) and self.longest is not None:
            return f"under {_sec(self.longest)}"
        if self.longest is None:
            return f"{_sec(self.shortest)} or more" if self.shortest else "any length"
        return f"{_num(self.shortest)}–{_sec(self.longest)}"

    @classmethod
    def parse(cls, text: str | None) -> Length | None:
        """A length as typed on the command line: "0.5-2" (from 0.5 to under 2 s), "2-" or "2+"
        (2 s or more), "-1" or "<1" (under 1 s), ">10" (10 s or more); seconds, with or without
        an "s"; also as :meth:`describe` writes it ("10 s or more", a rating's in the feedback
        file). None for a blank one (any length)."""
        if text is None or not text.strip():
            return None
        t = text.strip().lower().replace(" ", "").replace("–", "-").replace("..", "-")
        t = re.sub(r"(?<=[\d.s])to(?=[\d.])", "-", t)           # "1 to 3"
        num = r"(\d+(?:\.\d*)?|\.\d+)s?"
        if m := re.fullmatch(rf"(?:<|under){num}", t):
            return cls(None, float(m[1]))
        if m := re.fullmatch(rf"(?:>=?|over){num}", t) or re.fullmatch(rf"{num}(?:ormore|\+)", t):
            return cls(float(m[1]), None)
        if m := re.fullmatch(rf"(?:{num})?-(?:{num})?", t):
            if m[1] is None and m[2] is None:
                return None
            return cls(None if m[1] is None else float(m[1]), None if m[2] is None else float(m[2]))
        raise QviError(f"cannot read the length {text.strip()!r}: give seconds as 0.5-2 (from 0.5 to under 2 s), "
                       "2- (2 s or more) or -1 (under 1 s)")


#: The window's length choices: a quarter to a third of the demo library's 604 sounds each, but for
#: the long ambiences (under 1 s: 32%, 1-3 s: 38%, 3-10 s: 19%, 10 s or more: 11%).
LENGTH_PRESETS = (Length(None, 1.0), Length(1.0, 3.0), Length(3.0, 10.0), Length(10.0, None))


#: Words a name filter may hold. Each is one test in the SQL query, and SQLite refuses a query
#: deeper than 1,000 terms; a paragraph pasted into the field matches no file name anyway.
MAX_NAME_WORDS = 64
#: A term of a name filter: an optional "-" (leave out what holds it), then a "quoted phrase"
#: (its closing quote optional: while it is being typed) or a word.
_TERM = re.compile(r'(-?)(?:"([^"]*)"?|(\S+))')


def _terms(name: str | None) -> tuple[tuple[str, bool], ...]:
    terms = []
    for minus, phrase, word in _TERM.findall(name or ""):
        text = " ".join((phrase if phrase or not word else word).split()).casefold()
        if text and text != "-":
            terms.append((text, not minus))
    return tuple(dict.fromkeys(terms))


def name_words(name: str | None) -> tuple[tuple[str, bool], ...]:
    """The terms of a name filter as typed, case-folded, each once: (text, True) for a word or a
    "quoted phrase" the sound must hold, (text, False) for one after a "-" it must not hold
    (``door -car "slam shut"``); none for a blank one. A lone "-" or empty quotes are nothing
    yet (being typed)."""
    terms = _terms(name)
    if len(terms) > MAX_NAME_WORDS:
        raise QviError(f"the name filter takes at most {MAX_NAME_WORDS} words ({len(terms)} given)")
    return terms


@dataclass(frozen=True)
class Filters:
    """Only the sounds of ``category``, whose path or own description (audio.tags) holds every
    word of ``name`` (any case), and whose file lasts ``length``; each left out (None) keeps every
    sound."""

    category: str | None = None
    name: str | None = None
    length: Length | None = None

    def __post_init__(self):
        if self.name is not None and not _terms(self.name):
            object.__setattr__(self, "name", None)          # a blank name filter is none (or a lone "-" typed)

    def but(self, **changes) -> Filters:
        """These filters with some changed: ``filters.but(category="birds")``."""
        return replace(self, **changes)

    def nothing_found(self) -> str:
        """Why a list made with these filters is empty, in their words (the window and the
        terminal say the same)."""
        where = f" in {self.category}" if self.category else ""
        lasting = f" lasting {self.length.describe()}" if self.length else ""
        if self.name:
            plain = not any(c in self.name for c in '"-')          # words only: "has them"; else it "matches"
            verb = "has" if plain else "matches"
            return f"no sound{where}{lasting} {verb} {self.name.strip()!r} in its name, folder or description"
        return f"no sound{where}{lasting}" if (where or lasting) else "no sound to show"


NO_FILTERS = Filters()


def _num(seconds: float) -> str:
    return f"{seconds:g}"


def _sec(seconds: float) -> str:
    return f"{seconds:g} s"
