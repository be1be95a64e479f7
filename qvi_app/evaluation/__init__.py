"""Retrieval metrics and the evaluation pipeline (``qvi evaluate``)."""
