"""Pépite classifier service."""
