"""Thumbs up/down on search results, kept in a local SQLite file."""

from qvi_app.feedback.store import FeedbackStore, Rating

__all__ = ["FeedbackStore", "Rating"]
