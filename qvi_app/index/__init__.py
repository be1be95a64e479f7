"""Reference index: scan a library, embed it, store it atomically, search it."""

from qvi_app.index.build import BuildReport, IndexingCancelled, LibraryChanges, pending_changes, update_index
from qvi_app.index.filters import LENGTH_PRESETS, NO_FILTERS, Filters, Length
from qvi_app.index.scan import LibraryFile, scan_library
from qvi_app.index.store import Facets, IndexItem, ReferenceIndex, SearchHit, SkippedFile, describe, peek

__all__ = ["LENGTH_PRESETS", "NO_FILTERS", "BuildReport", "Facets", "Filters", "IndexItem", "IndexingCancelled", "Length",
           "LibraryChanges", "LibraryFile", "ReferenceIndex", "SearchHit", "SkippedFile", "describe", "peek",
           "pending_changes", "scan_library", "update_index"]
