"""Pépite digest service."""
