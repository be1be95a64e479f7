"""Reference index: scan a library, embed it, store it atomically, search it."""

from qvi_app.index.build import BuildReport, IndexingCancelled, update_index
from qvi_app.index.scan import LibraryFile, scan_library
from qvi_app.index.store import IndexItem, ReferenceIndex, SearchHit, SkippedFile, describe, peek

__all__ = ["BuildReport", "IndexItem", "IndexingCancelled", "LibraryFile", "ReferenceIndex", "SearchHit",
           "SkippedFile", "describe", "peek", "scan_library", "update_index"]
