"""Pépite kit: the plumbing every service shares."""
