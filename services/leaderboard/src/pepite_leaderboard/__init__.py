"""Pépite leaderboard service."""
