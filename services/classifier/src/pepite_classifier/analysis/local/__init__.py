"""The local analyzer: hashed n-gram heads for every message, embeddings for insights."""

from pepite_classifier.analysis.local.analyzer import EMBED_MIN_WORDS, LocalAnalyzer

__all__ = ["EMBED_MIN_WORDS", "LocalAnalyzer"]
