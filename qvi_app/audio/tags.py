"""The words a sound file carries about itself: its title, comment, album and genre tags, a
Broadcast WAV file's description and a recorder's iXML note.

Sound libraries are described inside their files more than in their names: a field recorder
writes the take's note into the BWF ``bext`` chunk, a library tool writes a title and a comment
into RIFF INFO, Vorbis comments or ID3. The name filter searches these words with the path, so
"gate" finds ``ZOOM0042.WAV`` whose description says "iron gate slam".

Everything here reads a file a user received, so it is bounded and passive: the tags come from
libsndfile's string fields (which it caps itself), the ``bext`` description and ``iXML`` text from
at most :data:`MAX_CHUNKS` chunk headers, 256 bytes and :data:`MAX_IXML` bytes; nothing is
interpreted but text, and a damaged or hostile file gives no description, never an error.
"""

from __future__ import annotations

import html
import re
import struct

import soundfile as sf

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


def file_description(path) -> str:
    """The file's own description, its tags joined by " · " in the order of :data:`FIELDS`
    then the BWF description, each once; "" when it has none or cannot be read."""
    parts: list[str] = []
    try:
        with open(path, "rb") as fh:
            try:
                with sf.SoundFile(fh) as snd:
                    parts.extend(getattr(snd, field, "") or "" for field in FIELDS)
            except Exception:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
                pass
            fh.seek(0)
            bext, ixml = riff_descriptions(fh)
            parts += [recorder_note(bext), ixml_note(ixml)]
    except (OSError, ValueError):
        return ""
    return join_parts(parts)


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


def riff_descriptions(fh) -> tuple[str, str]:
    """(the ``bext`` chunk's Description field, the ``iXML`` chunk's text) of a RIFF/RF64 file
    read from ``fh`` (a binary file at its start), "" for one it has not. Stops at the data chunk
    when its size is unknown (RF64) and after :data:`MAX_CHUNKS` chunks; a chunk size past the
    end ends the walk; at most :data:`MAX_IXML` bytes of iXML are read."""
    bext = ixml = ""
    head = fh.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64", b"BW64") or head[8:12] != b"WAVE":
        return bext, ixml
    for _ in range(MAX_CHUNKS):
        header = fh.read(8)
        if len(header) < 8:
            break
        cid, size = header[:4], struct.unpack("<I", header[4:])[0]
        if cid in (b"bext", b"iXML"):
            want = min(size, _BEXT_DESCRIPTION if cid == b"bext" else MAX_IXML)
            raw = fh.read(want)
            if len(raw) < want:                            # cut short: the file ends inside it
                break
            text = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
            bext, ixml = (text, ixml) if cid == b"bext" else (bext, text)
            fh.seek(size - want, 1)
        elif cid == b"data" and size == 0xFFFFFFFF:        # RF64: the real size is in ds64
            break
        else:
            fh.seek(size, 1)
        fh.seek(size & 1, 1)                               # chunks are word-aligned
    return bext, ixml


def ixml_note(xml: str) -> str:
    """The words of an iXML chunk, as :func:`recorder_note` gives a bext description's: the note,
    "scene 12", "take 3", the tape, the project and the tracks' names. Read by pattern, not by an
    XML parser: no entity a DTD defines is expanded and nothing is fetched; only character
    references (``&amp;``, ``&#233;``) are read as the characters they stand for."""
    def first(tag: str, within: str = xml) -> str:
        m = re.search(rf"<{tag}>([^<]*)</{tag}>", within)
        return html.unescape(m[1]).strip() if m else ""

    return _recorded({tag: first(tag) for tag in _RECORDER_FIELDS},
                     [first("NAME", track) for track in re.findall(r"<TRACK>(.*?)</TRACK>", xml, re.S)])


__all__ = ["FIELDS", "MAX_DESCRIPTION", "file_description", "ixml_note", "join_parts", "recorder_note",
           "riff_descriptions", "shortened"]
