"""The local analyzer: hashed n-gram heads for every message, offline."""

from pepite_classifier.analysis.local.analyzer import LocalAnalyzer

__all__ = ["LocalAnalyzer"]
