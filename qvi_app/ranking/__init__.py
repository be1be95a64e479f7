"""How a query's scores against the library are made: fusion of encoders, hubness correction,
relevance feedback. Pure functions of embeddings, shared by the index and the evaluation."""

from qvi_app.ranking.score import RankingSettings, fused_scores, hub_penalty, zscore

__all__ = ["RankingSettings", "fused_scores", "hub_penalty", "zscore"]
