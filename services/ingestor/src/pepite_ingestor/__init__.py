"""Pépite ingestor service."""
