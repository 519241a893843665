"""Pépite api service."""
