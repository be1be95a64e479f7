"""The words a sound file carries about itself: its title, comment, album and genre tags, a
Broadcast WAV file's description, a recorder's iXML note and what a library tool wrote.

Sound libraries are described inside their files more than in their names: a field recorder
writes the take's note into the BWF ``bext`` chunk, a library tool writes a title and a comment
into RIFF INFO, Vorbis comments or ID3, and its name, description, keywords and category into
iXML (Soundminer and BaseHead in ``<USER>``, the ASWG extension in ``<ASWG>``). The name filter
searches these words with the path, so "gate" finds ``ZOOM0042.WAV`` whose description says
"iron gate slam", and "creak" finds ``Track 07.wav`` whose FXNAME is "Barn Door Creak".

Everything here reads a file a user received, so it is bounded and passive: the tags come from
libsndfile's string fields (which it caps itself), the ``bext`` description, ``iXML`` text and
RIFF INFO keywords from at most :data:`MAX_CHUNKS` chunk headers, 256 bytes, :data:`MAX_IXML`
and :data:`MAX_INFO` bytes, each text gone over once; nothing is interpreted but text, and a
damaged or hostile file gives no description, never an error.
"""

from __future__ import annotations

import html
import re
import struct
from typing import NamedTuple

import soundfile as sf

import qvi_app.audio.container as container
from qvi_app.audio.quiet import decoder_quiet

#: Which reader wrote an index's descriptions (its meta ``descriptions``): 1 in 0.19; 2 reads
#: library tools' iXML and RIFF INFO keywords too. An index read by an older one is read again
#: at its next update (nothing embedded again).
READER = 2
#: The tag fields that describe a sound (not who made it, when, or under which licence).
FIELDS = ("title", "album", "genre", "comment")
#: At most this many characters are kept of one file's description (a BWF description is 256
#: bytes; a pasted essay in a comment tag need not be searched whole).
MAX_DESCRIPTION = 500
#: Chunk headers walked looking for ``bext``; a RIFF file has a handful (fmt, bext, iXML, data…).
MAX_CHUNKS = 64
_BEXT_DESCRIPTION = 256
#: Bytes of an iXML chunk read (a recorder's is a few kilobytes; its words come first).
MAX_IXML = 64 << 10
#: Bytes of a RIFF ``LIST`` chunk read for its INFO keywords and subject (each a line or two).
MAX_INFO = 8 << 10
#: RIFF INFO entries libsndfile does not give and that say what the sound is: keywords, subject.
_INFO_IDS = (b"IKEY", b"ISBJ")


class FileTags(NamedTuple):
    """What a sound file says of itself ("" where it says nothing)."""
    description: str = ""          # its words, as :func:`file_description` joins them
    category: str = ""             # the UCS CatID (or category) a library tool wrote into it


def file_tags(path) -> FileTags:
    """The file's own description and category; empty when it has none or cannot be read.

    The description is joined by " · ", each part once: its tags in the order of :data:`FIELDS`,
    the BWF description, a library tool's iXML words, RIFF INFO keywords and subject, then a
    recorder's iXML note. The category is :func:`library_category` of its iXML."""
    if container.reads(path):        # M4A, MP4, WMA...: their tags, through FFmpeg
        return FileTags(join_parts(container.tags(path)))
    parts: list[str] = []
    try:
        with open(path, "rb") as fh:
            try:
                with decoder_quiet(fh), sf.SoundFile(fh) as snd:
                    parts.extend(getattr(snd, field, "") or "" for field in FIELDS)
            except Exception:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
                pass
            fh.seek(0)
            riff = riff_descriptions(fh)
            library = _library_blocks(riff.ixml)                # read once for words and category
            parts += [recorder_note(riff.bext), *_words_of(library), *riff.info, ixml_note(riff.ixml)]
    except (OSError, ValueError):
        return FileTags()
    return FileTags(join_parts(parts), _category_of(library))


def file_description(path) -> str:
    """The file's own description (:func:`file_tags`); "" when it has none or cannot be read."""
    return file_tags(path).description


def join_parts(parts) -> str:
    """Non-empty ``parts`` as one line: control characters and runs of spaces made one space,
    repeats left out (a title copied into the comment), cut at :data:`MAX_DESCRIPTION`."""
    seen, kept = set(), []
    for part in parts:
        text = " ".join("".join(c if c.isprintable() else " " for c in str(part)).split())
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            kept.append(text)
    return " · ".join(kept)[:MAX_DESCRIPTION]


#: A field recorder's description: one ``xKEY=value`` line per field, ``x`` a maker's letter
#: (Sound Devices ``s``, Zoom ``z``...): "sSPEED=024.000-ND\r\nsTAKE=03\r\n...\r\nsNOTE=door slam".
_RECORDER_LINE = re.compile(r"[a-z]([A-Z][A-Z0-9_]*)=(.*)")
#: Of those fields (and of iXML's elements, named alike), what says what was recorded, in this
#: order; the rest (speed, user bits, firmware, time code rate...) would fill the line before the
#: note is reached.
_RECORDER_FIELDS = ("NOTE", "SCENE", "TAKE", "TAPE", "PROJECT")


def recorder_note(text: str) -> str:
    """A field recorder's ``xKEY=value`` description as words: its note, "scene 12", "take 3",
    the tape and project, then its tracks' names ("Boom", "Lav"); any other text as it is."""
    lines = [line.strip() for line in text.replace("\r", "\n").split("\n") if line.strip()]
    fields = [_RECORDER_LINE.fullmatch(line) for line in lines]
    if not lines or not all(fields):
        return text
    found = {m[1]: m[2].strip() for m in fields}
    return _recorded(found, [value for key, value in found.items() if re.fullmatch(r"TRK\d+", key)])


def _recorded(found: dict[str, str], tracks: list[str]) -> str:
    """What a recorder says was recorded (bext lines or iXML alike): the note, "scene 12",
    "take 3", the tape and project (of :data:`_RECORDER_FIELDS` in ``found``), the tracks' names."""
    words = [found["NOTE"]] if found.get("NOTE") else []
    words += [f"{key.lower()} {found[key]}" for key in _RECORDER_FIELDS[1:] if found.get(key)]
    return " · ".join(words + [name for name in tracks if name])


def shortened(text: str, most: int) -> str:
    """``text`` cut to ``most`` characters with an ellipsis, for a line that has room for a part."""
    return text if len(text) <= most else text[:most - 1].rstrip() + "…"


class RiffText(NamedTuple):
    """The words a RIFF/RF64 file holds outside libsndfile's tags ("" or () where it has none)."""
    bext: str = ""                 # the bext chunk's Description field
    ixml: str = ""                 # the iXML chunk's text
    info: tuple[str, ...] = ()     # RIFF INFO keywords and subject (of :data:`_INFO_IDS`)


def riff_descriptions(fh) -> RiffText:
    """The :class:`RiffText` of a RIFF/RF64 file read from ``fh`` (a binary file at its start).
    Stops at the data chunk when its size is unknown (RF64) and after :data:`MAX_CHUNKS` chunks;
    a chunk size past the end ends the walk; at most :data:`MAX_IXML` bytes of iXML and
    :data:`MAX_INFO` of each LIST chunk are read."""
    found = {}
    head = fh.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64", b"BW64") or head[8:12] != b"WAVE":
        return RiffText()
    for _ in range(MAX_CHUNKS):
        header = fh.read(8)
        if len(header) < 8:
            break
        cid, size = header[:4], struct.unpack("<I", header[4:])[0]
        most = {b"bext": _BEXT_DESCRIPTION, b"iXML": MAX_IXML, b"LIST": MAX_INFO}.get(cid)
        if most is not None:
            want = min(size, most)
            raw = fh.read(want)
            if len(raw) < want:                            # cut short: the file ends inside it
                break
            if cid == b"LIST":
                found.update(_info_entries(raw))
            else:
                found[cid] = _text(raw)
            fh.seek(size - want, 1)
        elif cid == b"data" and size == 0xFFFFFFFF:        # RF64: the real size is in ds64
            break
        else:
            fh.seek(size, 1)
        fh.seek(size & 1, 1)                               # chunks are word-aligned
    return RiffText(found.get(b"bext", ""), found.get(b"iXML", ""),
                    tuple(found[key] for key in _INFO_IDS if found.get(key)))


def _text(raw: bytes) -> str:
    """A chunk's text up to its first NUL: UTF-8 (its byte-order mark dropped), or UTF-16 when
    it opens with that byte-order mark (iXML may be written in any Unicode encoding)."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text = raw[:len(raw) & ~1].decode("utf-16", "replace")
    else:
        text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    return text.split("\0", 1)[0]


def _info_entries(raw: bytes) -> dict[bytes, str]:
    """The :data:`_INFO_IDS` entries of a ``LIST`` chunk's body when it is an INFO list; an entry
    cut short by the end of what was read ends the list."""
    found, at = {}, 4
    if raw[:4] != b"INFO":
        return found
    while at + 8 <= len(raw):
        eid, size = raw[at:at + 4], struct.unpack("<I", raw[at + 4:at + 8])[0]
        if at + 8 + size > len(raw):
            break
        if eid in _INFO_IDS:
            found[eid] = raw[at + 8:at + 8 + size].split(b"\0", 1)[0].decode("utf-8", "replace")
        at += 8 + size + (size & 1)
    return found


def _element(tag: str, within: str) -> str:
    """The text of the first ``<tag>text</tag>`` in ``within``, character references read
    (``&amp;``, ``&#233;``); "" for none. ``[^<]*`` stops at the next tag: one pass."""
    m = re.search(rf"<{tag}>([^<]*)</{tag}>", within)
    return html.unescape(m[1]).strip() if m else ""


def _blocks(xml: str, tag: str):
    """The text inside each closed ``<tag>…</tag>`` of ``xml``, found by splitting, so that
    64 KB of unclosed openings is gone over once (a lazy pattern tried at each took 1.8 s)."""
    for piece in xml.split(f"<{tag}>")[1:]:
        inside, closed, _ = piece.partition(f"</{tag}>")
        if closed:
            yield inside


def ixml_note(xml: str) -> str:
    """The words of an iXML chunk, as :func:`recorder_note` gives a bext description's: the note,
    "scene 12", "take 3", the tape, the project and the tracks' names. Read by pattern, not by an
    XML parser: no entity a DTD defines is expanded and nothing is fetched; only character
    references (``&amp;``, ``&#233;``) are read as the characters they stand for."""
    return _recorded({tag: _element(tag, xml) for tag in _RECORDER_FIELDS},
                     [_element("NAME", track) for track in _blocks(xml, "TRACK")])


#: What a library tool's iXML block says a sound is, in this order (element names compared in
#: capitals: Soundminer writes FXNAME, the ASWG extension fxName; CATEGORYFULL, "DOORS-WOOD", is
#: made of CATEGORY and SUBCATEGORY where a tool wrote only those); its microphone, designer,
#: rights and loudness say how it was made, not what it is.
_LIBRARY_FIELDS = ("FXNAME", "TRACKTITLE", "DESCRIPTION", "KEYWORDS", "CATEGORYFULL", "NOTES", "LIBRARY")


#: A category taken from a file: a plain word, as UCS CatIDs ("DOORWood") and categories
#: ("WEAPONS-SWORD") are; anything else a received file holds is not made a category.
_CATEGORY = re.compile(r"[A-Za-z][A-Za-z0-9_-]{1,39}")


def _library_blocks(xml: str) -> list[dict[str, str]]:
    """The elements of the first ``<USER>`` (Soundminer, BaseHead) and ``<ASWG>`` blocks of an
    iXML text, each block as {NAME IN CAPITALS: text} (the first of a name kept), with
    CATEGORYFULL made of CATEGORY and SUBCATEGORY where a tool wrote only those."""
    blocks = []
    for block in filter(None, (next(_blocks(xml, "USER"), ""), next(_blocks(xml, "ASWG"), ""))):
        found = {tag.upper(): html.unescape(text).strip()
                 for tag, text in reversed(re.findall(r"<([A-Za-z]+)>([^<]*)</\1>", block))}
        if not found.get("CATEGORYFULL"):
            found["CATEGORYFULL"] = "-".join(filter(None, (found.get("CATEGORY"), found.get("SUBCATEGORY"))))
        blocks.append(found)
    return blocks


def library_category(xml: str) -> str:
    """The category a library tool wrote into iXML: the UCS CatID (Soundminer's ``CATID``, the
    ASWG ``catId``), else its category and subcategory ("WEAPONS-SWORD"); "" for none, or for
    one that is not a plain word."""
    return _category_of(_library_blocks(xml))


def _category_of(blocks: list[dict[str, str]]) -> str:
    for found in blocks:
        for category in (found.get("CATID"), found["CATEGORYFULL"]):
            if category and _CATEGORY.fullmatch(category):
                return category
    return ""


def library_words(xml: str) -> list[str]:
    """The words a library tool wrote into iXML: of its first ``<USER>`` (Soundminer, BaseHead)
    and ``<ASWG>`` blocks, the effect's name, title, description, keywords, category
    ("DOORS-WOOD"), notes and library. Read by pattern like :func:`ixml_note`."""
    return _words_of(_library_blocks(xml))


def _words_of(blocks: list[dict[str, str]]) -> list[str]:
    return [found[key] for found in blocks for key in _LIBRARY_FIELDS if found.get(key)]


__all__ = ["FIELDS", "MAX_DESCRIPTION", "MAX_INFO", "MAX_IXML", "READER", "FileTags", "RiffText", "file_description",
           "file_tags", "ixml_note", "join_parts", "library_category", "library_words", "recorder_note",
           "riff_descriptions", "shortened"]
