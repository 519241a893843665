"""Pépite reports: what the API and the command line read from the classifier's rollups."""
